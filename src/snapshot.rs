//! How does an index outlive the process? A snapshot is a directory holding everything the server needs:
//!
//! - `manifest.json`: format version, tool version, build time, counts, HNSW parameters, the change log
//!   it expects beside it and, for every data file, its size and CRC-32. Human-readable, so `cat` tells
//!   what a snapshot is. File names in it must be plain names inside the directory.
//! - `{generation}.corpus.bin`: analysis settings, compound lexicon, TF-IDF settings, vocabulary with idf,
//!   article metadata, body offsets and checksums, and the fitted projection (postcard, streamed to the
//!   file as it is encoded).
//! - `{generation}.bodies.bin`: the article bodies, read on demand, each with its checksum in the corpus
//!   file ([`crate::bodies`]).
//! - `{generation}.vectors.bin`: the articles' TF-IDF vectors as one CSR block ([`crate::vector_table`]).
//! - `{generation}.postings.bin`: the inverted index over them ([`crate::index::Postings`]), stored so
//!   that opening a snapshot does not rebuild it.
//! - `{generation}.dense.bin`: the articles' dense projections, the vectors of the graph ([`crate::dense_file`]).
//! - `{generation}.graph.bin`: the HNSW graph's links, layer by layer ([`crate::index::HnswIndex`]).
//! - `{generation}.counts.bin` and `{generation}.tokens.bin`: every article's token counts, title and body
//!   apart, over every token of the corpus ([`crate::tfidf::TokenCounts`]): what a rebuild learns from
//!   instead of tokenising the text again. Read only by a rebuild ([`StoredCounts`]).
//! - `{generation}.copies.bin`: every article's copy signature ([`crate::signature_file`]).
//!
//! **Atomicity.** Data files carry a fresh generation name, so writing them never touches the files the
//! current manifest points to. The manifest is written to a temporary file, synced and renamed over the old
//! one: that rename is the commit point. A crash before it leaves the previous snapshot intact; files of
//! other generations are removed after it. Loading verifies the format version and every checksum before
//! anything is decoded, so a damaged or truncated snapshot is a typed error, never a panic or garbage. The
//! bodies and the token counts are the exception, since the query path never reads them: their files'
//! lengths are checked at load, each body's own checksum when it is read, the counts' checksums when a
//! rebuild reads them.

use std::borrow::Cow;
use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::analysis::{AnalyzerConfig, Lexicon};
use crate::article_table::ArticleTable;
use crate::bodies::{self, BODIES_SUFFIX, BodyFile, BodyIndex};
use crate::dense_file::{self, DENSE_SUFFIX};
use crate::error::{Error, Result, quote};
use crate::index::{ApproximateIndex, ExactIndex, GRAPH_SUFFIX, HnswIndex, HnswParams, POSTINGS_SUFFIX, Postings};
use crate::near_copy::SignatureTable;
use crate::projection::{DenseVectors, Projection, ProjectionConfig};
use crate::signature_file::{self, SIGNATURES_SUFFIX};
use crate::store::LogBinding;
use crate::string_table::StringTable;
use crate::tfidf::{TfidfConfig, TokenCounts, Vocabulary};
use crate::vector_table::{VECTORS_SUFFIX, VectorTable};

/// Format version this build writes and reads. Bump on any change to the files' layout.
///
/// - 1: weitere 0.1.
/// - 2: publication times keep their nanoseconds.
/// - 3: bodies in a file of their own, read on demand.
/// - 4: the graph holds dense projections (LSA), stored with the projection and a dense vector file.
/// - 5: vectors and postings in flat files of their own, read straight into memory; the dense file
///   gained the flat files' header.
/// - 6: the graph's links in a flat file of their own instead of hnsw_rs's dump; a checksum per body.
/// - 7: every array of a flat file starts at a multiple of 8 bytes, so that vectors, postings and dense
///   vectors are served from a memory map; the article metadata, the vocabulary's words as columns.
/// - 8: the compound splitter's lexicon as a string table with counts.
/// - 9: each posting list split into a head (what the pruned scan reads) and a tail, all heads before all
///   tails, so that the tails stay out of a server's resident memory.
/// - 10: every article's token counts and every token of the corpus, in files of their own, so that a
///   rebuild learns from them instead of tokenising the text again.
/// - 11: every article's copy signature ([`crate::near_copy`]) in a file of its own.
///
/// Older snapshots are refused with [`Error::IncompatibleSnapshot`]; rebuild them from the archive with
/// `weitere index`.
pub const FORMAT_VERSION: u32 = 11;

const MANIFEST: &str = "manifest.json";
const CORPUS_SUFFIX: &str = ".corpus.bin";
const COUNTS_SUFFIX: &str = ".counts.bin";
const TOKENS_SUFFIX: &str = ".tokens.bin";
/// The data files of a snapshot, by suffix, in the order they are written and listed in the manifest.
const DATA_SUFFIXES: [&str; 9] = [
    CORPUS_SUFFIX,
    BODIES_SUFFIX,
    VECTORS_SUFFIX,
    POSTINGS_SUFFIX,
    DENSE_SUFFIX,
    GRAPH_SUFFIX,
    COUNTS_SUFFIX,
    TOKENS_SUFFIX,
    SIGNATURES_SUFFIX,
];
/// Data files of earlier formats (hnsw_rs's dump, up to format 5), removed with the generation they belong to.
const RETIRED_SUFFIXES: [&str; 2] = [".hnsw.graph", ".hnsw.data"];

/// `manifest.json`: what a snapshot is and how to check it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    /// See [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Version of weitere that wrote the snapshot.
    pub tool_version: String,
    /// Prefix of this snapshot's data files.
    pub generation: String,
    /// Build time, seconds since the Unix epoch.
    pub built_at: i64,
    /// Articles in the snapshot.
    pub article_count: u64,
    /// Terms in the vocabulary.
    pub vocabulary_size: u64,
    /// Parameters the HNSW graph was built with (its insertion mode among them).
    pub hnsw: HnswParams,
    /// Settings the dense projection was fitted with.
    pub projection: ProjectionConfig,
    /// Newest change-log entry (see [`crate::store`]) the snapshot includes; 0 when built from files.
    #[serde(default)]
    pub applied_change: u64,
    /// The change log a server keeps beside this snapshot: written when the server opens the log, when it
    /// stops and with each rebuild; `None` until a server has run on the directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_log: Option<LogBinding>,
    /// Every data file with its size and checksum.
    pub files: Vec<FileEntry>,
}

/// One data file of a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// File name inside the snapshot directory.
    pub name: String,
    /// Size in bytes.
    pub bytes: u64,
    /// CRC-32 (IEEE) of the whole file.
    pub crc32: u32,
}

/// What the corpus file stores besides the bodies' index, borrowed from an engine for writing.
pub struct CorpusParts<'a> {
    /// Analysis settings.
    pub analyzer: &'a AnalyzerConfig,
    /// Compound splitter lexicon.
    pub lexicon: &'a Lexicon,
    /// Weighting settings.
    pub tfidf: &'a TfidfConfig,
    /// Vocabulary with idf.
    pub vocabulary: &'a Vocabulary,
    /// Article metadata, slot order (bodies are written separately).
    pub articles: &'a ArticleTable,
    /// The fitted projection.
    pub projection: &'a Projection,
}

/// What a snapshot stores besides the graph and the bodies, borrowed from a live engine for writing.
pub struct SnapshotRef<'a> {
    /// Settings, vocabulary, article metadata and projection.
    pub corpus: CorpusParts<'a>,
    /// The article vectors with their postings (streamed from the vectors if they were not built).
    pub exact: &'a ExactIndex,
    /// The token counts the vectors were learned from, slot order.
    pub counts: &'a TokenCounts,
    /// The articles' copy signatures, slot order.
    pub signatures: &'a SignatureTable,
}

/// The corpus file as written.
#[derive(Serialize)]
struct CorpusRef<'a> {
    analyzer: &'a AnalyzerConfig,
    lexicon: &'a Lexicon,
    tfidf: &'a TfidfConfig,
    vocabulary: &'a Vocabulary,
    articles: &'a ArticleTable,
    bodies: &'a BodyIndex,
    projection: &'a Projection,
}

/// The corpus file as read: the owned mirror of [`CorpusRef`] (same fields, same order).
#[derive(Deserialize)]
struct Corpus {
    analyzer: AnalyzerConfig,
    lexicon: Lexicon,
    tfidf: TfidfConfig,
    vocabulary: Vocabulary,
    articles: ArticleTable,
    bodies: BodyIndex,
    projection: Projection,
}

/// What [`read`] returns besides the graph.
pub struct SnapshotData {
    /// Analysis settings.
    pub analyzer: AnalyzerConfig,
    /// Compound splitter lexicon.
    pub lexicon: Lexicon,
    /// Weighting settings.
    pub tfidf: TfidfConfig,
    /// Vocabulary with idf.
    pub vocabulary: Vocabulary,
    /// Article metadata, slot order; [`SnapshotData::bodies`] holds the bodies.
    pub articles: ArticleTable,
    /// The bodies, read on demand.
    pub bodies: BodyFile,
    /// The exact index: the article vectors with their postings.
    pub exact: ExactIndex,
    /// The fitted projection.
    pub projection: Projection,
    /// The articles' dense projections, slot order; shared with the graph.
    pub dense: Arc<DenseVectors>,
    /// The graph over them.
    pub graph: HnswIndex,
    /// The token counts, left on disk.
    pub counts: StoredCounts,
    /// The articles' copy signatures, slot order.
    pub signatures: SignatureTable,
}

/// A snapshot's token counts, on disk until a rebuild reads them ([`StoredCounts::load`]).
#[derive(Clone, Debug)]
pub struct StoredCounts {
    counts: (PathBuf, FileEntry),
    tokens: (PathBuf, FileEntry),
    article_count: usize,
}

impl StoredCounts {
    /// Reads the counts, checking both files against the manifest and the counts against each other.
    pub fn load(&self) -> Result<TokenCounts> {
        let (counts_path, counts_entry) = &self.counts;
        let (rows, bytes, crc32) = VectorTable::read(counts_path, 2 * self.article_count)?;
        check_file(counts_path, counts_entry, &entry_as_found(counts_entry, bytes, crc32))?;
        let (tokens_path, tokens_entry) = &self.tokens;
        let (token_bytes, bytes, crc32) = read_whole(tokens_path)?;
        check_file(tokens_path, tokens_entry, &entry_as_found(tokens_entry, bytes, crc32))?;
        let keys: StringTable =
            postcard::from_bytes(&token_bytes).map_err(|err| corrupt(tokens_path, format!("cannot decode: {err}")))?;
        TokenCounts::from_parts(keys, rows).map_err(|err| corrupt(counts_path, err.to_string()))
    }
}

/// `entry`'s name with the size and checksum found.
fn entry_as_found(entry: &FileEntry, bytes: u64, crc32: u32) -> FileEntry {
    FileEntry {
        name: entry.name.clone(),
        bytes,
        crc32,
    }
}

/// Writes a snapshot into `dir` (created if missing), replacing any snapshot there atomically; `body(slot)`
/// gives the body of each article.
pub fn write<'b>(
    dir: &Path,
    built_at: i64,
    applied_change: u64,
    change_log: Option<&LogBinding>,
    data: &SnapshotRef<'_>,
    body: impl Fn(usize) -> Result<Cow<'b, str>>,
    index: &ApproximateIndex,
) -> Result<Manifest> {
    let mut snapshot = SnapshotWriter::create(dir)?;
    snapshot.corpus(&data.corpus, body)?;
    snapshot.vectors(data.exact)?;
    snapshot.dense(index.dense())?;
    snapshot.graph(index.graph())?;
    snapshot.counts(data.counts)?;
    snapshot.signatures(data.signatures)?;
    snapshot.commit(built_at, applied_change, change_log)
}

/// A snapshot being written one part at a time: each data file goes to disk under the new generation's
/// name as soon as its part is ready, so that a rebuild can let a part go before it builds the next
/// ([`crate::engine::Engine::rebuild`]). [`SnapshotWriter::commit`] writes the manifest, the commit point;
/// a writer dropped before it leaves files of a generation no manifest names, which the next snapshot
/// written into the directory removes.
pub struct SnapshotWriter {
    dir: PathBuf,
    generation: String,
    /// Each data file once written, in the order of [`DATA_SUFFIXES`].
    files: [Option<FileEntry>; DATA_SUFFIXES.len()],
    /// Articles, terms and projection settings, known once the corpus is written.
    corpus: Option<(u64, u64, ProjectionConfig)>,
    /// The graph's parameters, known once it is written.
    hnsw: Option<HnswParams>,
}

impl SnapshotWriter {
    /// Starts a snapshot in `dir` (created if missing) under a new generation name.
    pub fn create(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir).map_err(|err| Error::io(dir, err))?;
        Ok(Self {
            dir: dir.to_owned(),
            generation: new_generation_name(),
            files: Default::default(),
            corpus: None,
            hnsw: None,
        })
    }

    /// Writes the bodies (`body(slot)` gives each article's) and the corpus file.
    pub fn corpus<'b>(&mut self, data: &CorpusParts<'_>, body: impl Fn(usize) -> Result<Cow<'b, str>>) -> Result<()> {
        let bodies_path = self.path(BODIES_SUFFIX);
        let body_index = bodies::write(&bodies_path, data.articles.len(), body)?;
        self.record(BODIES_SUFFIX, &bodies_path)?;
        let corpus_path = self.path(CORPUS_SUFFIX);
        let corpus = CorpusRef {
            analyzer: data.analyzer,
            lexicon: data.lexicon,
            tfidf: data.tfidf,
            vocabulary: data.vocabulary,
            articles: data.articles,
            bodies: &body_index,
            projection: data.projection,
        };
        write_postcard_synced(&corpus_path, &corpus)?;
        self.record(CORPUS_SUFFIX, &corpus_path)?;
        self.corpus = Some((
            data.articles.len() as u64,
            data.vocabulary.len() as u64,
            data.projection.config().clone(),
        ));
        Ok(())
    }

    /// Writes the article vectors and their postings (streamed from the vectors if none were built).
    pub fn vectors(&mut self, exact: &ExactIndex) -> Result<()> {
        let vectors_path = self.path(VECTORS_SUFFIX);
        exact.vectors().write(&vectors_path)?;
        self.record(VECTORS_SUFFIX, &vectors_path)?;
        let postings_path = self.path(POSTINGS_SUFFIX);
        exact.write_postings(&postings_path)?;
        self.record(POSTINGS_SUFFIX, &postings_path)
    }

    /// Writes the articles' dense projections.
    pub fn dense(&mut self, dense: &DenseVectors) -> Result<()> {
        let path = self.path(DENSE_SUFFIX);
        dense_file::write(&path, dense)?;
        self.record(DENSE_SUFFIX, &path)
    }

    /// Writes the graph's links.
    pub fn graph(&mut self, graph: &HnswIndex) -> Result<()> {
        let path = self.path(GRAPH_SUFFIX);
        graph.save(&path)?;
        self.record(GRAPH_SUFFIX, &path)?;
        self.hnsw = Some(graph.params().clone());
        Ok(())
    }

    /// Writes the token counts the vectors were learned from.
    pub fn counts(&mut self, counts: &TokenCounts) -> Result<()> {
        let counts_path = self.path(COUNTS_SUFFIX);
        counts.write_rows(&counts_path)?;
        self.record(COUNTS_SUFFIX, &counts_path)?;
        let tokens_path = self.path(TOKENS_SUFFIX);
        write_postcard_synced(&tokens_path, counts.keys())?;
        self.record(TOKENS_SUFFIX, &tokens_path)
    }

    /// Writes the articles' copy signatures.
    pub fn signatures(&mut self, signatures: &SignatureTable) -> Result<()> {
        let path = self.path(SIGNATURES_SUFFIX);
        signature_file::write(&path, signatures)?;
        self.record(SIGNATURES_SUFFIX, &path)
    }

    /// Writes the manifest, which makes this the directory's snapshot, and removes the files of every other
    /// generation. Every part must have been written.
    pub fn commit(self, built_at: i64, applied_change: u64, change_log: Option<&LogBinding>) -> Result<Manifest> {
        let missing = || Error::Index(format!("snapshot {} is incomplete", self.generation));
        let files = self
            .files
            .iter()
            .cloned()
            .collect::<Option<Vec<_>>>()
            .ok_or_else(missing)?;
        let (article_count, vocabulary_size, projection) = self.corpus.clone().ok_or_else(missing)?;
        let hnsw = self.hnsw.clone().ok_or_else(missing)?;
        let manifest = Manifest {
            format_version: FORMAT_VERSION,
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
            generation: self.generation,
            built_at,
            article_count,
            vocabulary_size,
            hnsw,
            projection,
            applied_change,
            change_log: change_log.cloned(),
            files,
        };
        write_manifest(&self.dir, &manifest)?;
        remove_other_generations(&self.dir, &manifest);
        Ok(manifest)
    }

    fn path(&self, suffix: &str) -> PathBuf {
        self.dir.join(format!("{}{suffix}", self.generation))
    }

    /// Notes the size and checksum of the data file just written at `path`.
    fn record(&mut self, suffix: &str, path: &Path) -> Result<()> {
        let position = DATA_SUFFIXES
            .iter()
            .position(|known| *known == suffix)
            .expect("a data file's suffix");
        self.files[position] = Some(describe_file(path)?);
        Ok(())
    }
}

/// Records in the manifest of the snapshot in `dir` which change log it expects beside it. A directory
/// without a snapshot (a live index over an engine built in memory) has no manifest to record it in.
pub fn bind_change_log(dir: &Path, binding: &LogBinding) -> Result<()> {
    if !dir.join(MANIFEST).exists() {
        return Ok(());
    }
    let mut manifest = read_manifest(dir)?;
    if manifest.change_log.as_ref() == Some(binding) {
        return Ok(());
    }
    manifest.change_log = Some(binding.clone());
    write_manifest(dir, &manifest)
}

/// Replaces `manifest.json` atomically: a temporary file, synced, renamed over it, directory synced.
fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<()> {
    let json = serde_json::to_vec_pretty(manifest).expect("a manifest always serialises");
    let temporary = dir.join(format!("{MANIFEST}.tmp"));
    write_synced(&temporary, &json)?;
    let manifest_path = dir.join(MANIFEST);
    fs::rename(&temporary, &manifest_path).map_err(|err| Error::io(&manifest_path, err))?;
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(|err| Error::io(dir, err))
}

/// Reads and verifies the snapshot in `dir`, on all cores: the vectors, the dense vectors then the graph,
/// the postings and the corpus, each read once, checked against the manifest and decoded from the same
/// bytes. The bodies stay on disk: their file's length is checked here, each body's checksum when it is
/// read ([`crate::bodies`]).
pub fn read(dir: &Path) -> Result<(Manifest, SnapshotData)> {
    let manifest = read_manifest(dir)?;
    let [
        corpus_name,
        bodies_name,
        vectors_name,
        postings_name,
        dense_name,
        graph_name,
        counts_name,
        tokens_name,
        signatures_name,
    ] = DATA_SUFFIXES.map(|suffix| format!("{}{suffix}", manifest.generation));
    for name in [
        &corpus_name,
        &bodies_name,
        &vectors_name,
        &postings_name,
        &dense_name,
        &graph_name,
        &counts_name,
        &tokens_name,
        &signatures_name,
    ] {
        if !manifest.files.iter().any(|entry| entry.name == *name) {
            return Err(corrupt(&dir.join(MANIFEST), format!("lists no {name}")));
        }
    }
    let article_count = usize::try_from(manifest.article_count).unwrap_or(usize::MAX);
    let entry = |name: &str| {
        manifest
            .files
            .iter()
            .find(|entry| entry.name == name)
            .expect("listed, checked above")
    };
    let verify = |name: &str, (bytes, crc32): (u64, u32)| {
        check_file(&dir.join(name), entry(name), &entry_as_found(entry(name), bytes, crc32))
    };
    let (left, right) = rayon::join(
        || {
            rayon::join(
                || VectorTable::read(&dir.join(&vectors_name), article_count),
                || -> Result<(Arc<DenseVectors>, HnswIndex)> {
                    let (dense, bytes, crc32) = dense_file::read(&dir.join(&dense_name), article_count)?;
                    verify(&dense_name, (bytes, crc32))?;
                    let dense = Arc::new(dense);
                    let (graph, bytes, crc32) =
                        HnswIndex::load(&dir.join(&graph_name), Arc::clone(&dense), manifest.hnsw.clone())?;
                    verify(&graph_name, (bytes, crc32))?;
                    Ok((dense, graph))
                },
            )
        },
        || {
            rayon::join(
                || Postings::read(&dir.join(&postings_name), article_count),
                || -> Result<Corpus> {
                    let (corpus_bytes, bytes, crc32) = read_whole(&dir.join(&corpus_name))?;
                    verify(&corpus_name, (bytes, crc32))?;
                    postcard::from_bytes(&corpus_bytes)
                        .map_err(|err| corrupt(&dir.join(&corpus_name), format!("cannot decode: {err}")))
                },
            )
        },
    );
    let ((vectors, graph_side), (postings, corpus)) = (left, right);
    let (vectors, bytes, crc32) = vectors?;
    verify(&vectors_name, (bytes, crc32))?;
    let (postings, bytes, crc32) = postings?;
    verify(&postings_name, (bytes, crc32))?;
    let (dense, graph) = graph_side?;
    let corpus = corpus?;
    let left_on_disk = |name: &str| -> Result<(PathBuf, FileEntry)> {
        let path = dir.join(name);
        let length = fs::metadata(&path).map_err(|err| Error::io(&path, err))?.len();
        let listed = entry(name);
        if listed.bytes != length {
            return Err(corrupt(
                &path,
                format!("{length} bytes, the manifest says {}", listed.bytes),
            ));
        }
        Ok((path, listed.clone()))
    };
    let (bodies_path, _) = left_on_disk(&bodies_name)?;
    let bodies = BodyFile::open(&bodies_path, corpus.bodies)?;
    let counts = StoredCounts {
        counts: left_on_disk(&counts_name)?,
        tokens: left_on_disk(&tokens_name)?,
        article_count,
    };
    let (signatures, bytes, crc32) = signature_file::read(&dir.join(&signatures_name), article_count)?;
    verify(&signatures_name, (bytes, crc32))?;
    let data = SnapshotData {
        analyzer: corpus.analyzer,
        lexicon: corpus.lexicon,
        tfidf: corpus.tfidf,
        vocabulary: corpus.vocabulary,
        articles: corpus.articles,
        bodies,
        exact: ExactIndex::with_postings(Arc::new(vectors), postings),
        projection: corpus.projection,
        dense,
        graph,
        counts,
        signatures,
    };
    let counts_agree = data.exact.vectors().len() == data.articles.len() && data.bodies.len() == data.articles.len();
    if data.articles.len() as u64 != manifest.article_count || !counts_agree {
        return Err(corrupt(
            &dir.join(&corpus_name),
            format!(
                "{} articles and {} vectors, manifest says {}",
                data.articles.len(),
                data.exact.vectors().len(),
                manifest.article_count
            ),
        ));
    }
    if data.dense.dimensions() != data.projection.dimensions() {
        return Err(corrupt(
            &dir.join(&dense_name),
            format!(
                "vectors of {} dimensions, the projection makes {}",
                data.dense.dimensions(),
                data.projection.dimensions()
            ),
        ));
    }
    Ok((manifest, data))
}

/// A file's bytes, with its size and CRC-32.
fn read_whole(path: &Path) -> Result<(Vec<u8>, u64, u32)> {
    let bytes = fs::read(path).map_err(|err| Error::io(path, err))?;
    let (length, crc32) = (bytes.len() as u64, crc32fast::hash(&bytes));
    Ok((bytes, length, crc32))
}

/// Reads `manifest.json`, checking the format version before the rest of the layout.
pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST);
    let bytes = fs::read(&path).map_err(|err| Error::io(&path, err))?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|err| corrupt(&path, format!("not valid JSON: {err}")))?;
    let found = value
        .get("format_version")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| corrupt(&path, "no format_version".into()))?;
    if found != u64::from(FORMAT_VERSION) {
        return Err(Error::IncompatibleSnapshot {
            path: dir.to_path_buf(),
            found: u32::try_from(found).unwrap_or(u32::MAX),
            expected: FORMAT_VERSION,
        });
    }
    let manifest: Manifest =
        serde_json::from_value(value).map_err(|err| corrupt(&path, format!("unexpected layout: {err}")))?;
    let names = std::iter::once(&manifest.generation).chain(manifest.files.iter().map(|entry| &entry.name));
    for name in names {
        if !is_plain_file_name(name) {
            return Err(corrupt(
                &path,
                format!(
                    "names {}, which is not a plain file name inside the snapshot directory",
                    quote(name)
                ),
            ));
        }
    }
    Ok(manifest)
}

/// True for a name that stays inside its directory: one normal path component, no separator.
fn is_plain_file_name(name: &str) -> bool {
    let mut components = Path::new(name).components();
    matches!(components.next(), Some(std::path::Component::Normal(_)))
        && components.next().is_none()
        && !name.contains(['/', '\\', '\0'])
}

fn corrupt(path: &Path, reason: String) -> Error {
    Error::CorruptSnapshot {
        path: path.to_path_buf(),
        reason,
    }
}

fn new_generation_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    format!("g{nanos:x}-{}", std::process::id())
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = File::create(path).map_err(|err| Error::io(path, err))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|err| Error::io(path, err))
}

/// Streams the postcard encoding of `value` to `path` and syncs it; the encoding is never whole in memory
/// (at a million articles it is a few gigabytes).
fn write_postcard_synced<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let file = File::create(path).map_err(|err| Error::io(path, err))?;
    let mut out = KeepError {
        inner: BufWriter::with_capacity(1 << 20, file),
        error: None,
    };
    if let Err(err) = postcard::to_io(value, &mut out) {
        return Err(match out.error {
            Some(io_error) => Error::io(path, io_error),
            None => Error::Index(format!("cannot encode snapshot: {err}")),
        });
    }
    let file = out
        .inner
        .into_inner()
        .map_err(|err| Error::io(path, err.into_error()))?;
    file.sync_all().map_err(|err| Error::io(path, err))
}

/// A writer that keeps the first I/O error, which postcard would otherwise report only as "buffer full".
struct KeepError<W> {
    inner: W,
    error: Option<std::io::Error>,
}

impl<W: Write> Write for KeepError<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.inner.write(bytes).inspect_err(|err| {
            self.error
                .get_or_insert_with(|| std::io::Error::new(err.kind(), err.to_string()));
        })
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Size and CRC-32 of the file at `path`, read as a stream.
fn describe_file(path: &Path) -> Result<FileEntry> {
    let mut file = File::open(path).map_err(|err| Error::io(path, err))?;
    let mut hasher = crc32fast::Hasher::new();
    let mut buffer = vec![0; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let read = file.read(&mut buffer).map_err(|err| Error::io(path, err))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        bytes += read as u64;
    }
    Ok(FileEntry {
        name: path
            .file_name()
            .expect("snapshot files have names")
            .to_string_lossy()
            .into_owned(),
        bytes,
        crc32: hasher.finalize(),
    })
}

/// Checks what was `found` in the file at `path` against its manifest `entry`.
fn check_file(path: &Path, entry: &FileEntry, found: &FileEntry) -> Result<()> {
    if found.bytes != entry.bytes {
        return Err(corrupt(
            path,
            format!("{} bytes, expected {} (truncated?)", found.bytes, entry.bytes),
        ));
    }
    if found.crc32 != entry.crc32 {
        return Err(corrupt(
            path,
            format!("checksum {:08x}, expected {:08x}", found.crc32, entry.crc32),
        ));
    }
    Ok(())
}

/// Removes data files of other generations (older snapshots, or leftovers of an interrupted write).
fn remove_other_generations(dir: &Path, manifest: &Manifest) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_data_file = name.starts_with('g')
            && DATA_SUFFIXES
                .iter()
                .chain(&RETIRED_SUFFIXES)
                .any(|suffix| name.ends_with(suffix));
        let is_current = manifest.files.iter().any(|file| file.name == name);
        if is_data_file && !is_current {
            if let Err(err) = fs::remove_file(entry.path()) {
                tracing::warn!(file = %entry.path().display(), %err, "cannot remove stale snapshot file");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_stay_inside_the_directory() {
        for good in ["g1a2b.corpus.bin", "manifest.json", "a..b"] {
            assert!(is_plain_file_name(good), "{good}");
        }
        for bad in ["", ".", "..", "../../etc/passwd", "/etc/passwd", "a/b", "a\\b", "a\0"] {
            assert!(!is_plain_file_name(bad), "{bad:?}");
        }
    }
}
