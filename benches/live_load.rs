//! Load test of the live write path, over gRPC against a real `weitere serve` process (release build):
//! acknowledged upsert throughput one article per call, in batches and over the client stream; time from
//! an upsert's ack until `Related` returns the article; and `Related` latency without writes and during
//! sustained writes (which also trigger background rebuilds).
//!
//! The first half of the corpus is indexed as the snapshot; upserts are articles of the second half under
//! ids of their own, inserted on the first pass and updated on later ones. The visibility probes come
//! first, so that each probes an insert. Run with `cargo bench --bench live_load` (`-- --help` lists the knobs). Not run in CI.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use indicatif::ProgressBar;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use weitere::article::Article;
use weitere::engine::{BuildConfig, Engine};
use weitere::ingest::{self, IngestOptions};
use weitere::service::proto::related_stories_client::RelatedStoriesClient;
use weitere::service::proto::{self, RelatedRequest, UpsertArticlesRequest, related_request};

const TOKEN: &str = "live-load-token";
const K: u32 = 10;

/// Load test of the live write path.
#[derive(Debug, Parser)]
struct Args {
    /// JSON Lines corpus; the first half is indexed, the second half is upserted.
    #[arg(long, default_value = "../shared/data/gnad10k/gnad10k-test.jsonl.gz")]
    input: PathBuf,
    /// Upserts of one article per call.
    #[arg(long, default_value_t = 300)]
    single: usize,
    /// Concurrent writers of the group-commit phase (one article per call each).
    #[arg(long, default_value_t = 16)]
    writers: usize,
    /// Upserts of one article per call in the group-commit phase, over all writers.
    #[arg(long, default_value_t = 4_000)]
    concurrent_upserts: usize,
    /// Articles per batched call (and per stream message).
    #[arg(long, default_value_t = 100)]
    batch_size: usize,
    /// Batched calls (and stream messages).
    #[arg(long, default_value_t = 20)]
    batches: usize,
    /// Upserts whose time from ack to visible is measured.
    #[arg(long, default_value_t = 200)]
    probes: usize,
    /// Length of each read phase, in seconds.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// Concurrent readers in the read phases.
    #[arg(long, default_value_t = 2)]
    readers: usize,
    /// Extra arguments for `weitere serve`, e.g. "--rebuild-min-changes 1000000" to measure writes without
    /// background rebuilds.
    #[arg(long, num_args = 1.., allow_hyphen_values = true)]
    serve_args: Vec<String>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// `weitere serve` as a child process.
struct Server {
    child: Child,
    log: PathBuf,
}

impl Server {
    fn start(model: &Path, addr: &str, extra: &[String], log: PathBuf) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_weitere"))
            .args(["serve", "--model"])
            .arg(model)
            .args(["--addr", addr, "--write-token", TOKEN, "--log-format", "json"])
            .args(extra)
            .env("RUST_LOG", "weitere=info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("create the server log"))
            .spawn()
            .expect("start weitere serve");
        Self { child, log }
    }

    /// Background rebuilds started so far, and the durations of those finished, from the server log.
    fn rebuilds(&self) -> (usize, Vec<f64>) {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut started = 0;
        let mut finished = Vec::new();
        for line in log.lines() {
            let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let fields = &event["fields"];
            match fields["message"].as_str() {
                Some("rebuilding the index") => started += 1,
                Some("index rebuilt and swapped in") => finished.push(fields["seconds"].as_f64().unwrap_or(f64::NAN)),
                _ => {}
            }
        }
        (started, finished)
    }

    async fn wait_for_idle(&self) {
        loop {
            let (started, finished) = self.rebuilds();
            if started == finished.len() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn terminate(mut self) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().expect("kill -TERM");
        let status = self.child.wait().expect("wait for the server");
        assert!(status.success(), "server exit after SIGTERM: {status}");
    }
}

/// Articles from the second half of the corpus under ids of their own: inserts on the first pass, then
/// updates (the same id, the text revised by a line per pass), as a CMS re-saving edited stories sends
/// them. (An unchanged text would be accepted without a commit.)
struct Supply {
    articles: Vec<Article>,
    next: AtomicUsize,
}

impl Supply {
    fn take(&self) -> proto::Article {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let article = &self.articles[n % self.articles.len()];
        let pass = n / self.articles.len();
        let body = match pass {
            0 => article.body.clone(),
            pass => format!("{}\n\nAktualisiert (Fassung {}).", article.body, pass + 1),
        };
        proto::Article {
            id: format!("{}~live", article.id),
            title: article.title.clone(),
            body,
            url: article.url.clone(),
            section: article.section.clone(),
            lang: article.lang.clone(),
            published_at: article.published_at.map(|at| prost_types::Timestamp {
                seconds: at.seconds(),
                nanos: at.nanos() as i32,
            }),
        }
    }

    fn take_batch(&self, size: usize) -> Vec<proto::Article> {
        (0..size).map(|_| self.take()).collect()
    }
}

fn authorised<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let value: MetadataValue<_> = format!("Bearer {TOKEN}").parse().expect("ASCII token");
    request.metadata_mut().insert("authorization", value);
    request
}

async fn upsert(client: &mut RelatedStoriesClient<Channel>, articles: Vec<proto::Article>) {
    let results = client
        .upsert_articles(authorised(UpsertArticlesRequest { articles }))
        .await
        .expect("upsert")
        .into_inner()
        .results;
    assert!(results.iter().all(|result| result.accepted), "rejected: {results:?}");
}

async fn related_ids(client: &mut RelatedStoriesClient<Channel>, source: related_request::Source) -> Vec<String> {
    let request = RelatedRequest {
        source: Some(source),
        k: K,
        filter: None,
    };
    let stories = client.related(request).await.expect("related").into_inner().stories;
    stories.into_iter().map(|story| story.id).collect()
}

/// Commits of the server's change log so far.
async fn change_log_commits(client: &mut RelatedStoriesClient<Channel>) -> u64 {
    client
        .stats(proto::StatsRequest {})
        .await
        .expect("stats")
        .into_inner()
        .change_log_commits
}

/// Median, p99 and max of `samples`, in milliseconds.
struct Summary {
    count: usize,
    median: f64,
    p99: f64,
    max: f64,
}

impl Summary {
    fn of(mut samples: Vec<Duration>) -> Self {
        assert!(!samples.is_empty());
        samples.sort();
        let at = |quantile: f64| {
            let index = ((samples.len() as f64 * quantile).ceil() as usize).clamp(1, samples.len()) - 1;
            samples[index].as_secs_f64() * 1e3
        };
        Self {
            count: samples.len(),
            median: at(0.5),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "n {:>6}  median {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
            self.count, self.median, self.p99, self.max
        )
    }
}

/// A flag that turns true after `seconds`.
fn stop_after(seconds: u64) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        flag.store(true, Ordering::Relaxed);
    });
    stop
}

/// `readers` tasks query `Related` by id of stored articles until `stop`; returns their latencies.
async fn read_load(
    channel: &Channel,
    base_ids: &Arc<Vec<String>>,
    readers: usize,
    stop: &Arc<AtomicBool>,
) -> Vec<Duration> {
    let tasks: Vec<_> = (0..readers)
        .map(|reader| {
            let mut client = RelatedStoriesClient::new(channel.clone());
            let (ids, stop) = (Arc::clone(base_ids), Arc::clone(stop));
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = reader * 7_919;
                while !stop.load(Ordering::Relaxed) {
                    let id = ids[n % ids.len()].clone();
                    n += 13;
                    let started = Instant::now();
                    related_ids(&mut client, related_request::Source::ArticleId(id)).await;
                    latencies.push(started.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("reader"));
    }
    latencies
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = Args::parse();
    let input = if args.input.exists() {
        args.input.clone()
    } else {
        eprintln!("{} not found; using the sample in data/", args.input.display());
        PathBuf::from("data/gnad-sample.jsonl.gz")
    };
    let mut articles = ingest::read_files(std::slice::from_ref(&input), IngestOptions::default())
        .expect("read the corpus")
        .articles;
    let upserts = articles.split_off(articles.len() / 2);
    let base_ids: Arc<Vec<String>> = Arc::new(articles.iter().map(|article| article.id.clone()).collect());
    println!(
        "corpus {}: {} articles indexed, {} used for upserts",
        input.display(),
        articles.len(),
        upserts.len()
    );

    let dir = tempfile::tempdir().expect("temporary directory");
    let model = dir.path().join("model");
    Engine::build(articles, &BuildConfig::default(), &ProgressBar::hidden())
        .expect("index the first half")
        .save(&model)
        .expect("save the snapshot");
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .to_string();
    let server = Server::start(&model, &addr, &args.serve_args, dir.path().join("serve.log"));
    let channel = loop {
        match Channel::from_shared(format!("http://{addr}"))
            .expect("uri")
            .connect()
            .await
        {
            Ok(channel) => break channel,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let mut client = RelatedStoriesClient::new(channel.clone());
    let supply = Arc::new(Supply {
        articles: upserts,
        next: AtomicUsize::new(0),
    });

    let mut ack_to_visible = Vec::new();
    let mut first_query_hits = 0;
    for _ in 0..args.probes {
        let article = supply.take();
        // The title alone: related to the article but not a near-identical version of it, which the
        // ranking would treat as the draft's own saved copy and leave out.
        let (id, draft) = (
            article.id.clone(),
            proto::Draft {
                title: article.title.clone(),
                body: String::new(),
                lang: article.lang.clone(),
            },
        );
        upsert(&mut client, vec![article]).await;
        let acked = Instant::now();
        for attempt in 0.. {
            let found = related_ids(&mut client, related_request::Source::Draft(draft.clone())).await;
            if found.contains(&id) {
                first_query_hits += usize::from(attempt == 0);
                break;
            }
            assert!(
                acked.elapsed() < Duration::from_secs(5),
                "{id} not visible 5 s after its ack"
            );
        }
        ack_to_visible.push(acked.elapsed());
    }
    println!(
        "ack → visible in Related:        {}  (found by the first query: {first_query_hits}/{})",
        Summary::of(ack_to_visible),
        args.probes
    );

    let started = Instant::now();
    for _ in 0..args.single {
        upsert(&mut client, vec![supply.take()]).await;
    }
    let single_rate = args.single as f64 / started.elapsed().as_secs_f64();
    println!(
        "upsert, 1 article per call:      {single_rate:>8.0} articles/s ({} calls)",
        args.single
    );

    let commits_before = change_log_commits(&mut client).await;
    let started = Instant::now();
    let writers: Vec<_> = (0..args.writers)
        .map(|writer| {
            let (mut client, supply) = (client.clone(), Arc::clone(&supply));
            let calls =
                args.concurrent_upserts / args.writers + usize::from(writer < args.concurrent_upserts % args.writers);
            tokio::spawn(async move {
                for _ in 0..calls {
                    upsert(&mut client, vec![supply.take()]).await;
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer");
    }
    let concurrent_rate = args.concurrent_upserts as f64 / started.elapsed().as_secs_f64();
    let commits = change_log_commits(&mut client).await - commits_before;
    println!(
        "upsert, 1 per call, {} writers:  {concurrent_rate:>8.0} articles/s ({} calls, {commits} commits)",
        args.writers, args.concurrent_upserts
    );

    let started = Instant::now();
    for _ in 0..args.batches {
        upsert(&mut client, supply.take_batch(args.batch_size)).await;
    }
    let batched = args.batches * args.batch_size;
    let batched_rate = batched as f64 / started.elapsed().as_secs_f64();
    println!(
        "upsert, {} articles per call:    {batched_rate:>8.0} articles/s ({batched} articles)",
        args.batch_size
    );

    let messages: Vec<_> = (0..args.batches)
        .map(|_| UpsertArticlesRequest {
            articles: supply.take_batch(args.batch_size),
        })
        .collect();
    let started = Instant::now();
    let results = client
        .upsert_articles_stream(authorised(tokio_stream::iter(messages)))
        .await
        .expect("stream upsert")
        .into_inner()
        .results;
    let stream_rate = results.len() as f64 / started.elapsed().as_secs_f64();
    assert!(results.iter().all(|result| result.accepted));
    println!(
        "upsert stream, {} per message:   {stream_rate:>8.0} articles/s ({} articles)",
        args.batch_size,
        results.len()
    );

    server.wait_for_idle().await;
    let quiet = read_load(&channel, &base_ids, args.readers, &stop_after(args.seconds)).await;
    println!("Related, {} readers, no writes:  {}", args.readers, Summary::of(quiet));

    let rebuilds_before = server.rebuilds().1.len();
    let stop = stop_after(args.seconds);
    let writer = tokio::spawn({
        let (mut client, supply, stop) = (client.clone(), Arc::clone(&supply), Arc::clone(&stop));
        async move {
            let mut written = 0usize;
            while !stop.load(Ordering::Relaxed) {
                upsert(&mut client, vec![supply.take()]).await;
                written += 1;
            }
            written
        }
    });
    let busy = read_load(&channel, &base_ids, args.readers, &stop).await;
    let written = writer.await.expect("writer");
    server.wait_for_idle().await;
    println!(
        "Related, {} readers, 1 writer:   {}  (writer: {:.0} articles/s; {} rebuilds)",
        args.readers,
        Summary::of(busy),
        written as f64 / args.seconds as f64,
        server.rebuilds().1.len() - rebuilds_before
    );
    let (_, mut rebuild_seconds) = server.rebuilds();
    server.terminate();
    rebuild_seconds.sort_by(f64::total_cmp);
    println!(
        "{} articles upserted; {} background rebuilds of {}..{} articles, median {:.2} s; clean exit on SIGTERM",
        supply.next.load(Ordering::Relaxed),
        rebuild_seconds.len(),
        base_ids.len(),
        base_ids.len() + supply.articles.len(),
        rebuild_seconds
            .get(rebuild_seconds.len() / 2)
            .copied()
            .unwrap_or(f64::NAN)
    );
}
