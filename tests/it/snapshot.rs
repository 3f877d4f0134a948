use std::fs;
use std::path::{Path, PathBuf};

use weitere::engine::Engine;
use weitere::error::Error;
use weitere::snapshot::{FORMAT_VERSION, SnapshotWriter, read_manifest};

use indicatif::ProgressBar;
use weitere::engine::BuildConfig;
use weitere::ingest::{self, IngestOptions};

use crate::common::{SAMPLE, query, sample_articles, sample_engine};

fn saved_sample(dir: &Path) {
    sample_engine().save(dir).unwrap();
}

#[test]
fn round_trip_gives_identical_answers() {
    let dir = tempfile::tempdir().unwrap();
    saved_sample(dir.path());
    let reopened = Engine::open(dir.path()).unwrap();
    assert_eq!(reopened.stats(), sample_engine().stats());
    for article in sample_engine().articles().iter().step_by(25) {
        let expected = sample_engine().related(&query(article.id, 10)).unwrap();
        assert_eq!(
            reopened.related(&query(article.id, 10)).unwrap(),
            expected,
            "source {}",
            article.id
        );
    }
}

#[test]
fn a_loaded_engine_reads_bodies_from_disk_and_saves_them_again() {
    let dir = tempfile::tempdir().unwrap();
    saved_sample(dir.path());
    let reopened = Engine::open(dir.path()).unwrap();
    for (slot, original) in sample_articles().iter().enumerate().step_by(50) {
        assert_eq!(reopened.article(&original.id).unwrap(), *original);
        assert_eq!(reopened.body(slot as u32).unwrap(), original.body);
    }
    let again = tempfile::tempdir().unwrap();
    reopened.save(again.path()).unwrap();
    let twice = Engine::open(again.path()).unwrap();
    let last = sample_articles().last().unwrap();
    assert_eq!(twice.article(&last.id).unwrap(), *last);
}

#[test]
fn an_engine_built_with_spilled_bodies_answers_and_saves_like_one_built_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = ingest::read_gzip_bytes(SAMPLE, "gnad-sample.jsonl.gz", IngestOptions::default()).unwrap();
    let spilled = Engine::build_spilling_bodies(
        corpus.articles,
        &BuildConfig::default(),
        &ProgressBar::hidden(),
        dir.path(),
    )
    .unwrap();
    // Saved before any search, so its postings are streamed from the vectors, never built: the file
    // must equal the one an engine built in memory writes.
    spilled.save(dir.path()).unwrap();
    let in_memory = tempfile::tempdir().unwrap();
    sample_engine().save(in_memory.path()).unwrap();
    let postings_file = |dir: &Path| {
        let manifest = read_manifest(dir).unwrap();
        fs::read(dir.join(format!("{}.postings.bin", manifest.generation))).unwrap()
    };
    assert_eq!(postings_file(dir.path()), postings_file(in_memory.path()));
    for original in sample_articles().iter().step_by(50) {
        assert_eq!(spilled.article(&original.id).unwrap(), *original);
        assert_eq!(
            spilled.related(&query(&original.id, 10)).unwrap(),
            sample_engine().related(&query(&original.id, 10)).unwrap()
        );
    }
    let reopened = Engine::open(dir.path()).unwrap();
    let last = sample_articles().last().unwrap();
    assert_eq!(reopened.article(&last.id).unwrap(), *last);
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".spill"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn saving_again_replaces_the_snapshot_and_leaves_no_stale_files() {
    let dir = tempfile::tempdir().unwrap();
    saved_sample(dir.path());
    let first = read_manifest(dir.path()).unwrap();
    saved_sample(dir.path());
    let second = read_manifest(dir.path()).unwrap();
    assert_ne!(first.generation, second.generation);
    let mut names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut expected: Vec<String> = second.files.iter().map(|file| file.name.clone()).collect();
    expected.push("manifest.json".into());
    expected.sort();
    assert_eq!(names, expected);
    Engine::open(dir.path()).unwrap();
}

/// Saves the sample into `dir` and applies `damage` to its data file whose name ends with `suffix`; returns
/// that file's path.
fn save_and_damage(dir: &Path, suffix: &str, damage: impl Fn(&mut Vec<u8>)) -> PathBuf {
    saved_sample(dir);
    let manifest = read_manifest(dir).unwrap();
    let name = &manifest
        .files
        .iter()
        .find(|file| file.name.ends_with(suffix))
        .unwrap()
        .name;
    let path = dir.join(name);
    let mut bytes = fs::read(&path).unwrap();
    damage(&mut bytes);
    fs::write(&path, bytes).unwrap();
    path
}

fn flip_middle_byte(bytes: &mut [u8]) {
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
}

/// Applies `damage` to the file of the snapshot whose name ends with `suffix`, then expects `open` to fail
/// with a corruption error naming that file.
fn assert_detects_damage(suffix: &str, damage: impl Fn(&mut Vec<u8>)) {
    let dir = tempfile::tempdir().unwrap();
    let path = save_and_damage(dir.path(), suffix, damage);
    match Engine::open(dir.path()) {
        Err(Error::CorruptSnapshot { path: reported, .. }) => assert_eq!(reported, path),
        Err(other) => panic!("expected CorruptSnapshot for {suffix}, got {other}"),
        Ok(_) => panic!("damaged {suffix} was accepted"),
    }
}

/// The data files read whole at open: any damage to them is found there. The bodies and token-count files
/// are checked for their length at open, the bodies body by body when read
/// (`a_damaged_body_is_found_when_read`), the counts when a rebuild reads them
/// (`damaged_token_counts_are_found_by_the_rebuild`).
const READ_AT_OPEN: [&str; 5] = [
    ".corpus.bin",
    ".vectors.bin",
    ".postings.bin",
    ".dense.bin",
    ".graph.bin",
];

#[test]
fn a_flipped_byte_is_detected_in_every_file() {
    for suffix in READ_AT_OPEN {
        assert_detects_damage(suffix, |bytes| flip_middle_byte(bytes));
    }
}

#[test]
fn truncation_is_detected_in_every_file() {
    for suffix in READ_AT_OPEN
        .into_iter()
        .chain([".bodies.bin", ".counts.bin", ".tokens.bin"])
    {
        assert_detects_damage(suffix, |bytes| bytes.truncate(bytes.len() / 3));
    }
}

#[test]
fn a_damaged_body_is_found_when_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = save_and_damage(dir.path(), ".bodies.bin", |bytes| flip_middle_byte(bytes));
    let middle = fs::metadata(&path).unwrap().len() as usize / 2;
    // Bodies lie in slot order; find the article whose body holds the damaged byte.
    let articles = sample_articles();
    let mut end = 0;
    let damaged = articles
        .iter()
        .position(|article| {
            end += article.body.len();
            end > middle
        })
        .unwrap();
    let engine = Engine::open(dir.path()).unwrap();
    match engine.article(&articles[damaged].id) {
        Err(Error::CorruptSnapshot { path: reported, reason }) => {
            assert_eq!(reported, path);
            assert!(reason.contains("checksum"), "{reason}");
        }
        other => panic!("a damaged body read as {other:?}"),
    }
    let intact = (damaged + 1) % articles.len();
    assert_eq!(
        engine.article(&articles[intact].id).unwrap().body,
        articles[intact].body
    );
}

#[test]
fn damaged_token_counts_are_found_by_the_rebuild() {
    for suffix in [".counts.bin", ".tokens.bin"] {
        let dir = tempfile::tempdir().unwrap();
        let path = save_and_damage(dir.path(), suffix, |bytes| flip_middle_byte(bytes));
        let engine = Engine::open(dir.path()).unwrap();
        let target = tempfile::tempdir().unwrap();
        match engine.rebuild(target.path(), 0, None) {
            Err(Error::CorruptSnapshot { path: reported, .. }) => assert_eq!(reported, path, "{suffix}"),
            Err(other) => panic!("expected CorruptSnapshot for {suffix}, got {other}"),
            Ok(_) => panic!("damaged {suffix} was accepted"),
        }
    }
}

#[test]
fn a_snapshot_written_part_by_part_counts_only_once_complete_and_committed() {
    let dir = tempfile::tempdir().unwrap();
    saved_sample(dir.path());
    let before = read_manifest(dir.path()).unwrap();
    let engine = Engine::open(dir.path()).unwrap();
    let mut partial = SnapshotWriter::create(dir.path()).unwrap();
    partial.dense(engine.approximate().dense()).unwrap();
    partial.graph(engine.approximate().graph()).unwrap();
    assert!(
        matches!(partial.commit(0, 0, None), Err(Error::Index(_))),
        "a snapshot without its vectors, counts and corpus is refused"
    );
    assert_eq!(read_manifest(dir.path()).unwrap().generation, before.generation);
    let source = &sample_articles()[7].id;
    let reopened = Engine::open(dir.path()).unwrap();
    assert_eq!(
        reopened.related(&query(source, 10)).unwrap(),
        engine.related(&query(source, 10)).unwrap()
    );

    let after = engine.save(dir.path()).unwrap();
    let mut names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut expected: Vec<String> = after.files.iter().map(|file| file.name.clone()).collect();
    expected.push("manifest.json".into());
    expected.sort();
    assert_eq!(names, expected, "the next snapshot removes the partial one's files");
}

#[test]
fn wrong_format_version_is_reported_as_incompatible() {
    let dir = tempfile::tempdir().unwrap();
    saved_sample(dir.path());
    let path = dir.path().join("manifest.json");
    let manifest = fs::read_to_string(&path).unwrap();
    let newer = FORMAT_VERSION + 1;
    fs::write(
        &path,
        manifest.replace(
            &format!("\"format_version\": {FORMAT_VERSION}"),
            &format!("\"format_version\": {newer}"),
        ),
    )
    .unwrap();
    match Engine::open(dir.path()) {
        Err(Error::IncompatibleSnapshot { found, expected, .. }) => {
            assert_eq!((found, expected), (newer, FORMAT_VERSION));
        }
        Err(other) => panic!("expected IncompatibleSnapshot, got {other}"),
        Ok(_) => panic!("a future format was accepted"),
    }
}

#[test]
fn a_garbled_or_missing_manifest_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    saved_sample(dir.path());
    let path = dir.path().join("manifest.json");
    fs::write(&path, "{\"format_version\": 1, \"generation\": ").unwrap();
    assert!(matches!(Engine::open(dir.path()), Err(Error::CorruptSnapshot { .. })));
    fs::remove_file(&path).unwrap();
    match Engine::open(dir.path()) {
        Err(Error::Io { source, .. }) => assert_eq!(source.kind(), std::io::ErrorKind::NotFound),
        Err(other) => panic!("expected a not-found error, got {other}"),
        Ok(_) => panic!("a snapshot without manifest was accepted"),
    }
}
