use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tonic::transport::Channel;
use weitere::service::proto::related_stories_client::RelatedStoriesClient;
use weitere::service::proto::{self, UpsertArticlesRequest};

use crate::common::{SAMPLE_ARTICLES, build_sample_engine, ids, query};
use crate::grpc::{by_id, is_stored};
use crate::live::{union_story, with_token};

pub const TOKEN: &str = "crash-test-token";
/// `kill -9` cycles of [`kill_dash_nine_loses_no_acknowledged_write`].
const CYCLES: usize = 10;
/// Concurrent writers in each cycle.
const WRITERS: usize = 8;

/// `weitere serve` as a child process on a port it picks itself (`--addr 127.0.0.1:0`), read back from
/// its log: a port reserved by the test and freed for the child could be taken by another test's
/// listener in between, and the client would then talk to that one.
pub struct Server {
    child: Child,
    addr: String,
    /// Keeps the log file of a server started without one of the caller's.
    _log_dir: Option<tempfile::TempDir>,
}

impl Server {
    pub async fn start(model: &Path) -> (Self, RelatedStoriesClient<Channel>) {
        Self::start_with(model, &[], None).await
    }

    async fn start_logging_to(model: &Path, log: &Path) -> (Self, RelatedStoriesClient<Channel>) {
        Self::start_with(model, &[], Some(log)).await
    }

    /// `weitere serve --model model --write-token TOKEN` plus `extra` arguments, logging to `log` (a
    /// scratch file if `None`).
    pub async fn start_with(model: &Path, extra: &[&str], log: Option<&Path>) -> (Self, RelatedStoriesClient<Channel>) {
        let log_dir = log.is_none().then(|| tempfile::tempdir().unwrap());
        let log = log.map_or_else(|| log_dir.as_ref().unwrap().path().join("serve.log"), Path::to_owned);
        let child = Command::new(env!("CARGO_BIN_EXE_weitere"))
            .args(["serve", "--model"])
            .arg(model)
            .args(["--addr", "127.0.0.1:0", "--write-token", TOKEN])
            .args(extra)
            .env("RUST_LOG", "weitere=info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let addr = bound_address(&log).await;
        let server = Self {
            child,
            addr,
            _log_dir: log_dir,
        };
        let client = server.connect().await;
        (server, client)
    }

    async fn connect(&self) -> RelatedStoriesClient<Channel> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(channel) = Channel::from_shared(format!("http://{}", self.addr))
                .unwrap()
                .connect()
                .await
            {
                return RelatedStoriesClient::new(channel);
            }
            assert!(Instant::now() < deadline, "server did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, then waits for the process to exit.
    pub fn terminate(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        self.child.wait().unwrap()
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill_hard(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// The gRPC address a server logging to `log` says it serves on, once it says so.
async fn bound_address(log: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let serving = text
            .lines()
            .find(|line| line.contains("serving weitere.v1.RelatedStories"));
        if let Some(addr) =
            serving.and_then(|line| line.split_whitespace().find_map(|field| field.strip_prefix("addr=")))
        {
            return addr.to_owned();
        }
        assert!(Instant::now() < deadline, "server did not come up:\n{text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An upsert of one union story whose title names `id`, so that no two are near-identical.
pub fn story(id: &str) -> tonic::Request<UpsertArticlesRequest> {
    let article = proto::Article {
        title: format!("Gewerkschaft GPA-djp startet All-in-Rechner {id}"),
        ..union_story(id)
    };
    with_token(
        UpsertArticlesRequest {
            articles: vec![article],
        },
        TOKEN,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    build_sample_engine().save(dir.path()).unwrap();
    let mut acked: Vec<String> = Vec::new();
    for cycle in 0..CYCLES {
        let (server, mut client) = Server::start(dir.path()).await;
        for id in &acked {
            assert!(is_stored(&mut client, id).await, "cycle {cycle}: acked {id} lost");
        }
        // The base answers, and the newest recovered write can be a source. Its related stories may all be
        // hidden: every upsert here is a copy of one story, and a fast machine writes thousands of them, so
        // the copies can fill the whole candidate window (they are collapsed as duplicates).
        let stories = client.related(by_id("gnad-test-00000", 5)).await;
        assert!(
            !stories.unwrap().into_inner().stories.is_empty(),
            "cycle {cycle}: not searchable"
        );
        if let Some(last) = acked.last() {
            let from_recovered = client.related(by_id(last, 5)).await;
            assert!(
                from_recovered.is_ok(),
                "cycle {cycle}: {last} is not a source: {from_recovered:?}"
            );
        }

        // Upsert from several tasks at once and kill the server while their writes are in flight: once
        // the first write is acknowledged (a loaded machine may take a while), and a little later.
        let acked_so_far = Arc::new(AtomicUsize::new(0));
        let writers: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let mut client = client.clone();
                let acked_so_far = Arc::clone(&acked_so_far);
                tokio::spawn(async move {
                    let mut acked_now = Vec::new();
                    for n in 0.. {
                        let id = format!("crash-{cycle}-{writer}-{n}");
                        match client.upsert_articles(story(&id)).await {
                            Ok(response) if response.get_ref().results[0].accepted => {
                                acked_now.push(id);
                                acked_so_far.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(response) => panic!("rejected: {:?}", response.get_ref().results),
                            Err(_) => break,
                        }
                    }
                    acked_now
                })
            })
            .collect();
        let waiting_since = Instant::now();
        while acked_so_far.load(Ordering::Relaxed) == 0 {
            assert!(
                waiting_since.elapsed() < Duration::from_secs(60),
                "cycle {cycle}: no write acknowledged in 60 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(100 + 50 * cycle as u64)).await;
        server.kill_hard();
        let mut acked_in_cycle = 0;
        for writer in writers {
            let acked_now = writer.await.unwrap();
            acked_in_cycle += acked_now.len();
            acked.extend(acked_now);
        }
        assert!(
            acked_in_cycle > 0,
            "cycle {cycle}: no write was acknowledged before the kill"
        );
    }
    let (server, mut client) = Server::start(dir.path()).await;
    for id in &acked {
        assert!(is_stored(&mut client, id).await, "acked {id} lost");
    }
    server.kill_hard();
    eprintln!(
        "{CYCLES} kill -9 cycles with {WRITERS} writers, {} acknowledged upserts, 0 lost",
        acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_requests_in_flight_finish_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (model, log_path) = (dir.path().join("model"), dir.path().join("serve.log"));
    build_sample_engine().save(&model).unwrap();
    let (server, client) = Server::start_logging_to(&model, &log_path).await;

    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let mut client = client.clone();
            tokio::spawn(async move {
                let mut acked = Vec::new();
                for n in 0.. {
                    let id = format!("term-{writer}-{n}");
                    match client.upsert_articles(story(&id)).await {
                        Ok(response) => {
                            assert!(response.get_ref().results[0].accepted);
                            acked.push(id);
                        }
                        Err(_) => return (acked, id),
                    }
                }
                unreachable!()
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let exit = server.terminate();
    assert!(exit.success(), "exit after SIGTERM: {exit}");

    let (mut acked, mut failed) = (Vec::new(), Vec::new());
    for writer in writers {
        // The client reports a call made after the server stopped accepting in several ways (unavailable,
        // cancelled, GOAWAY, broken pipe); what matters is that the server never processed it (below).
        let (acked_by_writer, failed_id) = writer.await.unwrap();
        acked.extend(acked_by_writer);
        failed.push(failed_id);
    }
    assert!(!acked.is_empty());
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("live index shut down cleanly"), "{log}");

    let (server, mut client) = Server::start(&model).await;
    for id in &acked {
        assert!(is_stored(&mut client, id).await, "acked {id} lost");
    }
    for id in &failed {
        assert!(
            !is_stored(&mut client, id).await,
            "{id} was written but its answer was cut off by the shutdown"
        );
    }
    server.kill_hard();
}

/// Runs `weitere batch` on `model` as its own process and returns each source id with its related ids.
fn batch_links(model: &Path, out: &Path) -> std::collections::HashMap<String, Vec<String>> {
    let run = Command::new(env!("CARGO_BIN_EXE_weitere"))
        .args(["batch", "--k", "5", "--model"])
        .arg(model)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "weitere batch: {}\n{stderr}", run.status);
    std::fs::read_to_string(out)
        .unwrap()
        .lines()
        .map(|line| {
            let source: serde_json::Value = serde_json::from_str(line).unwrap();
            let related = source["related"].as_array().unwrap();
            let ids = related.iter().map(|story| story["id"].as_str().unwrap().to_owned());
            (source["id"].as_str().unwrap().to_owned(), ids.collect())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_beside_a_running_or_killed_server_sees_its_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (model, out) = (dir.path().join("model"), dir.path().join("links.jsonl"));
    let engine = build_sample_engine();
    engine.save(&model).unwrap();
    let source = engine.articles().id(0);
    let retracted = ids(engine.related(&query(source, 5)).unwrap()).remove(0);

    let (server, mut client) = Server::start(&model).await;
    for id in ["offline-1", "offline-2"] {
        client.upsert_articles(story(id)).await.unwrap();
    }
    let delete = proto::DeleteArticlesRequest {
        ids: vec![retracted.clone()],
    };
    let deleted = client.delete_articles(with_token(delete, TOKEN)).await.unwrap();
    assert!(deleted.get_ref().results[0].accepted);

    let running = batch_links(&model, &out);
    server.kill_hard();
    let killed = batch_links(&model, &out);
    for (when, links) in [("running", &running), ("killed", &killed)] {
        assert_eq!(links.len(), SAMPLE_ARTICLES + 1, "{when}: 2 upserted, 1 deleted");
        assert!(
            !links["offline-1"].is_empty() && !links["offline-2"].is_empty(),
            "{when}"
        );
        let upserted = |id: &String| id.starts_with("offline-");
        assert!(
            links.values().flatten().any(upserted),
            "{when}: upserts are not recommended"
        );
        assert!(!links.contains_key(&retracted), "{when}: {retracted} is a source");
        assert!(
            links.values().flatten().all(|id| *id != retracted),
            "{when}: {retracted} is recommended"
        );
    }
}
