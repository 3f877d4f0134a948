//! The hostile-client probes of the hardening issue, each against a real server: tokens, a lost or
//! damaged change log, a full disk, unbounded requests, timestamps, damaged snapshots and TLS keys.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use prost_types::Timestamp;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use weitere::engine::Engine;
use weitere::error::Error;
use weitere::live::{LiveIndex, RebuildPolicy};
use weitere::service::proto::related_request::Source;
use weitere::service::proto::related_stories_client::RelatedStoriesClient;
use weitere::service::proto::{self, Draft, Filter, GetArticleRequest, RelatedRequest, StatsRequest};
use weitere::service::{Access, ServerOptions, WRITE_HEALTH_SERVICE};
use weitere::store::LOG_FILE;

use crate::common::build_sample_engine;
use crate::crash::{Server, TOKEN, story};
use crate::grpc::{TestServer, WRITE_TOKEN, by_id, is_stored};
use crate::live::{union_story, upsert, with_token};

/// Exit code of a configuration error (sysexits' EX_USAGE).
const EXIT_USAGE: i32 = 64;

/// `weitere serve` with `args` that must exit at once; its output.
fn serve_refusing(model: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weitere"))
        .args(["serve", "--addr", "127.0.0.1:0", "--model"])
        .arg(model)
        .args(args)
        .envs(env.iter().copied())
        .env("RUST_LOG", "weitere=info")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn saved_sample() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    build_sample_engine().save(&model).unwrap();
    (dir, model)
}

#[test]
fn an_empty_or_blank_token_is_a_configuration_error() {
    let (_dir, model) = saved_sample();
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 5] = [
        (&["--write-token", ""], &[], "--write-token (WEITERE_WRITE_TOKEN)"),
        (
            &[],
            &[("WEITERE_WRITE_TOKEN", "")],
            "--write-token (WEITERE_WRITE_TOKEN)",
        ),
        (&["--write-token", "  "], &[], "--write-token (WEITERE_WRITE_TOKEN)"),
        (
            &[],
            &[("WEITERE_WRITE_TOKEN", " \t")],
            "--write-token (WEITERE_WRITE_TOKEN)",
        ),
        (
            &["--write-token", "w", "--read-token", ""],
            &[],
            "--read-token (WEITERE_READ_TOKEN)",
        ),
    ];
    for (args, env, named) in cases {
        let output = serve_refusing(&model, args, env);
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(EXIT_USAGE), "{args:?} {env:?}: {message}");
        assert!(message.contains(named), "{args:?} {env:?}: {message}");
        assert!(!message.contains("serving"), "{message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bearer_scheme_is_case_insensitive_and_one_authorization_value_is_required() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut lower_case = tonic::Request::new(proto::UpsertArticlesRequest {
        articles: vec![union_story("lower-case")],
    });
    let value = format!("bearer {WRITE_TOKEN}").parse().unwrap();
    lower_case.metadata_mut().insert("authorization", value);
    assert!(client.upsert_articles(lower_case).await.unwrap().get_ref().results[0].accepted);

    let mut twice = upsert(vec![union_story("twice")]);
    let value = format!("Bearer {WRITE_TOKEN}").parse().unwrap();
    twice.metadata_mut().append("authorization", value);
    let status = client.upsert_articles(twice).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status}");
    assert!(!is_stored(&mut client, "twice").await);

    let empty = with_token(
        proto::DeleteArticlesRequest {
            ids: vec!["lower-case".into()],
        },
        "",
    );
    assert_eq!(
        client.delete_articles(empty).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    assert!(is_stored(&mut client, "lower-case").await);
    server.shutdown().await;
}

/// Starts a server on `model`, writes 3 upserts and deletes `retracted`, and stops it with SIGTERM.
async fn serve_and_write(model: &Path, prefix: &str, retracted: &str) {
    let (server, mut client) = Server::start(model).await;
    for n in 0..3 {
        let reply = client.upsert_articles(story(&format!("{prefix}-{n}"))).await.unwrap();
        assert!(reply.get_ref().results[0].accepted);
    }
    let delete = with_token(
        proto::DeleteArticlesRequest {
            ids: vec![retracted.into()],
        },
        TOKEN,
    );
    assert!(client.delete_articles(delete).await.unwrap().get_ref().results[0].accepted);
    assert!(server.terminate().success());
}

/// A start on `model` that must be refused because of the change log; returns its message.
fn refused_start(model: &Path) -> String {
    let output = serve_refusing(model, &["--write-token", TOKEN], &[]);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(message.contains("change log"), "{message}");
    assert!(!message.contains("serving"), "{message}");
    message
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_foreign_older_or_damaged_change_log_stops_the_start() {
    let (dir, model) = saved_sample();
    let log = model.join(LOG_FILE);
    serve_and_write(&model, "first", "gnad-test-00000").await;
    let after_first = dir.path().join("after-first.redb");
    std::fs::copy(&log, &after_first).unwrap();
    serve_and_write(&model, "second", "gnad-test-00002").await;
    let intact = std::fs::read(&log).unwrap();

    std::fs::write(&log, b"").unwrap();
    assert!(refused_start(&model).contains("is empty"));
    std::fs::remove_file(&log).unwrap();
    assert!(refused_start(&model).contains("is missing"));
    std::fs::copy(&after_first, &log).unwrap();
    assert!(refused_start(&model).contains("older copy"));

    let (_other_dir, other) = saved_sample();
    serve_and_write(&other, "foreign", "gnad-test-00000").await;
    std::fs::copy(other.join(LOG_FILE), &log).unwrap();
    assert!(refused_start(&model).contains("another model directory"));

    // One byte of a logged title, edited in every copy redb keeps of it.
    let mut edited = intact.clone();
    let title = b"All-in-Rechner second-1";
    let mut edits = 0;
    for at in 0..edited.len() - title.len() {
        if &edited[at..at + title.len()] == title {
            edited[at] = b'a';
            edits += 1;
        }
    }
    assert!(edits > 0, "the title is not in the log file");
    std::fs::write(&log, &edited).unwrap();
    let message = refused_start(&model);
    assert!(message.contains("checksum"), "{message}");

    std::fs::write(&log, &intact).unwrap();
    let (server, mut client) = Server::start(&model).await;
    for n in 0..3 {
        assert!(is_stored(&mut client, &format!("second-{n}")).await);
    }
    assert!(
        !is_stored(&mut client, "gnad-test-00000").await,
        "the delete was replayed"
    );
    server.kill_hard();

    // Accepting the loss is explicit, warned about, and keeps the old file.
    std::fs::write(&log, b"").unwrap();
    let serve_log = dir.path().join("accept.log");
    let (server, mut client) = Server::start_with(&model, &["--accept-change-log-loss"], Some(&serve_log)).await;
    assert!(!is_stored(&mut client, "second-0").await);
    assert!(is_stored(&mut client, "gnad-test-00000").await);
    assert!(server.terminate().success());
    let message = std::fs::read_to_string(&serve_log).unwrap();
    assert!(
        message.contains("WARN") && message.contains("accepting the loss"),
        "{message}"
    );
    let set_aside = std::fs::read_dir(&model)
        .unwrap()
        .flatten()
        .any(|entry| entry.file_name().to_string_lossy().starts_with("changes.redb.lost-"));
    assert!(set_aside, "the lost log was not kept aside");
}

/// A tmpfs of `megabytes` mounted on a fresh directory, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(megabytes: usize) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        mounted.then_some(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

async fn write_health(server: &TestServer) -> ServingStatus {
    let mut health = HealthClient::new(server.channel().await);
    let request = HealthCheckRequest {
        service: WRITE_HEALTH_SERVICE.into(),
    };
    let status = health.check(request).await.unwrap().into_inner().status;
    ServingStatus::try_from(status).unwrap()
}

/// The write health once it is `wanted`, or as it is after 5 s. The health service learns of a change
/// through a watch channel, a moment after the call that caused it has returned.
async fn write_health_becoming(server: &TestServer, wanted: ServingStatus) -> ServingStatus {
    for _ in 0..100 {
        let status = write_health(server).await;
        if status == wanted {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    write_health(server).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_recover_after_the_disk_was_full_and_health_says_so_meanwhile() {
    let Some(disk) = SmallDisk::mount(12) else {
        eprintln!("SKIPPED writes_recover_after_the_disk_was_full: mounting a tmpfs is not permitted here");
        return;
    };
    let model = disk.path().join("model");
    build_sample_engine().save(&model).unwrap();
    let engine = Engine::open(&model).unwrap();
    let index = Arc::new(LiveIndex::open(&model, engine, RebuildPolicy::default()).unwrap());
    let options = ServerOptions {
        access: Access {
            write_token: Some(WRITE_TOKEN.into()),
            read_token: None,
        },
        ..ServerOptions::default()
    };
    let server = TestServer::serve(index, options).await;
    let mut client = server.client().await;
    assert_eq!(write_health(&server).await, ServingStatus::Serving);

    // Fill the disk, then write until a commit fails.
    let filler = disk.path().join("filler");
    let mut file = std::fs::File::create(&filler).unwrap();
    let block = vec![0u8; 64 << 10];
    while std::io::Write::write_all(&mut file, &block).is_ok() {}
    drop(file);
    let body = "Gewerkschaft fordert mehr Transparenz. ".repeat(2_000);
    let mut acked = Vec::new();
    let failure = loop {
        let id = format!("full-{}", acked.len());
        let article = proto::Article {
            body: body.clone(),
            ..union_story(&id)
        };
        match client.upsert_articles(upsert(vec![article])).await {
            Ok(_) => acked.push(id),
            Err(status) => break status,
        }
        assert!(acked.len() < 1_000, "the disk never filled up");
    };
    assert_eq!(failure.code(), Code::Unavailable, "{failure}");
    assert_eq!(
        write_health_becoming(&server, ServingStatus::NotServing).await,
        ServingStatus::NotServing
    );
    let stats = client.stats(StatsRequest {}).await.unwrap().into_inner();
    assert!(!stats.writes_available && !stats.writes_unavailable_reason.is_empty());
    assert!(client.related(by_id("gnad-test-00000", 5)).await.is_ok(), "reads go on");

    std::fs::remove_file(&filler).unwrap();
    let mut resumed = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if client
            .upsert_articles(upsert(vec![union_story("after-full")]))
            .await
            .is_ok()
        {
            resumed = true;
            break;
        }
    }
    assert!(resumed, "writes did not resume once the disk had room");
    assert_eq!(
        write_health_becoming(&server, ServingStatus::Serving).await,
        ServingStatus::Serving
    );
    let stats = client.stats(StatsRequest {}).await.unwrap().into_inner();
    assert!(stats.writes_available && stats.writes_unavailable_reason.is_empty());
    for id in acked.iter().chain([&"after-full".to_string()]) {
        assert!(is_stored(&mut client, id).await, "acknowledged {id} lost");
    }
    server.shutdown().await;
}

/// Upserts `article` alone with the write token; its result.
async fn upsert_one(client: &mut RelatedStoriesClient<Channel>, article: proto::Article) -> proto::WriteResult {
    let reply = client.upsert_articles(upsert(vec![article])).await.unwrap();
    reply.into_inner().results.remove(0)
}

fn draft(title: String, body: String) -> RelatedRequest {
    RelatedRequest {
        source: Some(Source::Draft(Draft {
            title,
            body,
            lang: "de".into(),
        })),
        k: 5,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_buys_unbounded_work_or_an_unbounded_answer() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let short_message = |status: &tonic::Status| assert!(status.message().len() < 300, "{}", status.message());

    let status = client
        .related(draft("Atom ".repeat(6_000_000), String::new()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{}", status.message());
    assert!(status.message().starts_with("draft.title"), "{}", status.message());
    short_message(&status);

    let mut late = tonic::Request::new(draft("Gewerkschaft".into(), "Gewerkschaft fordert. ".repeat(40_000)));
    late.set_timeout(Duration::from_millis(1));
    let status = client.related(late).await.unwrap_err();
    assert!(
        matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{status}"
    );

    let huge_title = proto::Article {
        title: "Gewerkschaft ".repeat(900_000),
        ..union_story("huge-title")
    };
    let result = upsert_one(&mut client, huge_title).await;
    assert!(
        !result.accepted && result.error.starts_with("title: 11700000 bytes"),
        "{:?}",
        result.error
    );
    assert!(result.error.len() < 300);

    for bad_id in ["x".repeat(17_000), "a\nb".into(), "\0".into(), " leading".into()] {
        let status = client.related(by_id(&bad_id, 5)).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{}", status.message());
        short_message(&status);
        let status = client
            .get_article(GetArticleRequest { id: bad_id.clone() })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        short_message(&status);
        let result = upsert_one(&mut client, union_story(&bad_id)).await;
        assert!(
            !result.accepted && result.error.starts_with("id: "),
            "{:?}",
            result.error
        );
        assert!(result.id.len() <= 512);
    }
    let unknown = "u".repeat(500);
    let status = client.related(by_id(&unknown, 5)).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    short_message(&status);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_keep_nanoseconds_and_filters_compare_with_them() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let at = |seconds, nanos| Some(Timestamp { seconds, nanos });
    let dated = |id: &str, published_at| proto::Article {
        published_at,
        ..union_story(id)
    };
    let results = client
        .upsert_articles(upsert(vec![
            dated("on-the-second", at(1_800_000_000, 0)),
            dated("later-that-second", at(1_800_000_000, 700_000_000)),
            dated("bad-nanos", at(1_800_000_000, 1_000_000_000)),
            dated("negative-nanos", at(1_800_000_000, -1)),
        ]))
        .await
        .unwrap()
        .into_inner()
        .results;
    assert!(results[0].accepted && results[1].accepted);
    assert!(!results[2].accepted && results[2].error.starts_with("published_at: nanos"));
    assert!(!results[3].accepted);

    let stored = client
        .get_article(GetArticleRequest {
            id: "later-that-second".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.published_at, at(1_800_000_000, 700_000_000));

    let mut request = by_id("gnad-test-00000", 10);
    request.filter = Some(Filter {
        published_after: at(1_800_000_000, 500_000_000),
        ..Filter::default()
    });
    let stories = client.related(request).await.unwrap().into_inner().stories;
    let ids: Vec<_> = stories.iter().map(|story| story.id.as_str()).collect();
    assert_eq!(
        ids,
        ["later-that-second"],
        "published_after X.5 s includes only what is after it"
    );
    assert_eq!(stories[0].published_at, at(1_800_000_000, 700_000_000));
    server.shutdown().await;
}

/// Rewrites `manifest.json` in `model` through `edit`, keeping it valid JSON.
fn edit_manifest(model: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = model.join("manifest.json");
    let mut manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut manifest);
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
}

#[test]
fn damaged_snapshots_are_refused_with_a_typed_error_never_a_panic_or_a_path_outside() {
    let (_dir, model) = saved_sample();
    // A graph file damaged with its checksum updated: it passes the checksum, not the loader.
    let graph_name = std::fs::read_dir(&model)
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .find(|name| name.ends_with(".graph.bin"))
        .unwrap();
    let graph_path = model.join(&graph_name);
    let mut graph = std::fs::read(&graph_path).unwrap();
    // Byte-order mark and field count, then the header (points, layers, entry), two sizes per layer, layer
    // 0's offsets (points + 1), then its first link, each array starting at a multiple of 8 bytes.
    let field = |at: usize| u64::from_ne_bytes(graph[at..at + 8].try_into().unwrap()) as usize;
    let (points, layers) = (field(16), field(24));
    let first_link = (16 + 24 + 16 * layers + 4 * (points + 1)).next_multiple_of(8);
    graph[first_link..first_link + 4].copy_from_slice(&u32::MAX.to_ne_bytes());
    std::fs::write(&graph_path, &graph).unwrap();
    edit_manifest(&model, |manifest| {
        for file in manifest["files"].as_array_mut().unwrap() {
            if file["name"] == graph_name.as_str() {
                file["crc32"] = crc32fast::hash(&graph).into();
            }
        }
    });
    let err = Engine::open(&model).err().expect("a damaged graph loaded");
    assert!(matches!(err, Error::CorruptSnapshot { .. }), "{err}");
    let output = Command::new(env!("CARGO_BIN_EXE_weitere"))
        .args(["related", "--id", "gnad-test-00000", "--model"])
        .arg(&model)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("corrupt"), "{}", stderr(&output));

    let (_dir, model) = saved_sample();
    edit_manifest(&model, |manifest| {
        manifest["files"][0]["name"] = "../../etc/passwd".into()
    });
    let err = Engine::open(&model).err().expect("a manifest pointing outside loaded");
    assert!(err.to_string().contains("not a plain file name"), "{err}");
}

#[test]
fn a_tls_key_that_does_not_match_its_certificate_is_refused_before_serving() {
    let (dir, model) = saved_sample();
    let write = |name: &str, pem: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, pem).unwrap();
        path.to_string_lossy().into_owned()
    };
    let first = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let second = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert = write("cert.pem", first.cert.pem());
    let other_key = write("other-key.pem", second.signing_key.serialize_pem());
    let not_pem = write("not.pem", "hello".into());
    for (key, expected) in [
        (&other_key, "does not belong to the certificate"),
        (&not_pem, "no usable PEM private key"),
    ] {
        let output = serve_refusing(&model, &["--tls-cert", &cert, "--tls-key", key], &[]);
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(EXIT_USAGE), "{message}");
        assert!(
            message.contains("--tls-key (WEITERE_TLS_KEY)") && message.contains(expected),
            "{message}"
        );
        assert!(!message.contains("serving"), "{message}");
    }
}
