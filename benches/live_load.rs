//! Load test of the live write path, over gRPC against a real `weitere serve` process (release build):
//! acknowledged upsert throughput one article per call, from concurrent writers (group commit), in
//! batches and over the client stream; time from an upsert's ack until `Related` returns the article;
//! `Related` latency without writes, during paced writes (`--write-rate`) and during a background
//! rebuild, with the server's resident memory while serving and at its peak during the rebuild.
//!
//! By default the first half of `--input` is indexed as the snapshot and the second half is upserted. For
//! a large archive, index it once with `weitere index` and pass `--model` (served from hard links, so it
//! stays as it was) and `--upserts`. Upserts go in under ids of their own, inserted on the first pass and
//! updated on later ones; the visibility probes come first, so that each probes an insert. The bench sets
//! the server's rebuild policy so that no rebuild runs until the rebuild phase, whose first write triggers
//! one. Run with `cargo bench --bench live_load` (`-- --help` lists the knobs). Not run in CI.
//!
//! Readers are closed-loop by default (`--readers` tasks, each sending its next query when the last is
//! answered), which saturates the CPU; `--read-rate` sends queries on a clock instead, as pages rendered by
//! a CMS arrive, each latency counted from when the query was due.

use std::io::{BufRead, BufReader};
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
use weitere::store::LOG_FILE;

const TOKEN: &str = "live-load-token";
const K: u32 = 10;

/// Load test of the live write path.
#[derive(Debug, Parser)]
struct Args {
    /// JSON Lines corpus; the first half is indexed, the second half is upserted. With --model, the
    /// archive the model was indexed from: only its ids are read, to ask `Related` about.
    #[arg(long, default_value = "../shared/data/gnad10k/gnad10k-test.jsonl.gz")]
    input: PathBuf,
    /// Snapshot directory to serve instead of indexing half of --input (needs --upserts). Its files are
    /// hard-linked into a scratch directory and its change log is copied, so the model is not changed.
    #[arg(long, requires = "upserts")]
    model: Option<PathBuf>,
    /// JSON Lines articles to upsert instead of the second half of --input.
    #[arg(long)]
    upserts: Option<PathBuf>,
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
    /// Length of the read phases without writes and with paced writes, in seconds.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// Upserts per second (one per call, sent on a clock whatever the acks' latency) during the paced
    /// write phase and the rebuild phase.
    #[arg(long, default_value_t = 200)]
    write_rate: u32,
    /// Longest wait for the background rebuild of the rebuild phase, in seconds.
    #[arg(long, default_value_t = 1_800)]
    rebuild_timeout: u64,
    /// Concurrent closed-loop readers in the read phases (unless --read-rate is given).
    #[arg(long, default_value_t = 2)]
    readers: usize,
    /// `Related` queries per second in the read phases, sent on a clock whatever their latency (open
    /// loop) instead of by closed-loop readers.
    #[arg(long)]
    read_rate: Option<u32>,
    /// The weitere binary to serve with (default: the one built with this bench), to compare two builds
    /// side by side.
    #[arg(long)]
    binary: Option<PathBuf>,
    /// Extra arguments for `weitere serve` (not the rebuild policy, which the bench sets).
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
    terminated: bool,
}

impl Server {
    fn start(binary: &Path, model: &Path, addr: &str, extra: &[String], log: PathBuf) -> Self {
        let child = Command::new(binary)
            .args(["serve", "--model"])
            .arg(model)
            .args(["--addr", addr, "--write-token", TOKEN, "--log-format", "json"])
            .args(extra)
            .env("RUST_LOG", "weitere=info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("create the server log"))
            .spawn()
            .expect("start weitere serve");
        Self {
            child,
            log,
            terminated: false,
        }
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

    fn terminate(mut self) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().expect("kill -TERM");
        let status = self.child.wait().expect("wait for the server");
        self.terminated = true;
        assert!(status.success(), "server exit after SIGTERM: {status}");
    }
}

impl Drop for Server {
    /// A bench that failed part-way leaves no server behind (holding gigabytes at 1M).
    fn drop(&mut self) {
        if !self.terminated {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
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
        ..Default::default()
    };
    let stories = client.related(request).await.expect("related").into_inner().stories;
    stories.into_iter().map(|story| story.id).collect()
}

/// A made-up proper name for probe `n`, distinct for every `n` and made only of letters, so that the
/// analysis keeps it as one new term.
fn invented_name(n: usize) -> String {
    const CONSONANTS: &[u8] = b"bdfgklmnprstvz";
    const VOWELS: &[u8] = b"aeiou";
    let mut name = String::from("Zy");
    let mut rest = n;
    loop {
        name.push(char::from(CONSONANTS[rest % CONSONANTS.len()]));
        rest /= CONSONANTS.len();
        name.push(char::from(VOWELS[rest % VOWELS.len()]));
        rest /= VOWELS.len();
        if rest == 0 {
            break;
        }
    }
    name.push_str("rax");
    name
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

/// Queries `Related` by id of stored articles until `stop`: from `readers` closed-loop tasks, or `rate`
/// queries a second on a clock if a rate is given; returns their latencies.
async fn read_load(
    channel: Channel,
    base_ids: Arc<Vec<String>>,
    readers: usize,
    rate: Option<u32>,
    stop: Arc<AtomicBool>,
) -> Vec<Duration> {
    if let Some(rate) = rate {
        let client = RelatedStoriesClient::new(channel);
        let mut n = 0;
        return paced(rate, stop, usize::MAX, || {
            let (mut client, id) = (client.clone(), base_ids[n % base_ids.len()].clone());
            n += 13;
            async move {
                related_ids(&mut client, related_request::Source::ArticleId(id)).await;
            }
        })
        .await;
    }
    let tasks: Vec<_> = (0..readers)
        .map(|reader| {
            let mut client = RelatedStoriesClient::new(channel.clone());
            let (ids, stop) = (Arc::clone(&base_ids), Arc::clone(&stop));
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

/// Upserts one article per call, `rate` calls a second, until `stop` or `limit` calls; returns the
/// calls' latencies (see [`paced`]).
async fn paced_writes(
    client: RelatedStoriesClient<Channel>,
    supply: Arc<Supply>,
    rate: u32,
    stop: Arc<AtomicBool>,
    limit: usize,
) -> Vec<Duration> {
    paced(rate, stop, limit, || {
        let (mut client, article) = (client.clone(), supply.take());
        async move { upsert(&mut client, vec![article]).await }
    })
    .await
}

/// Starts `call()` `rate` times a second on a clock (each call its own task, so a slow answer does not
/// delay the next) until `stop` or `limit` calls; returns each call's latency counted from when the clock
/// made it due, so that a stall shows in every call it delays (no coordinated omission).
async fn paced<F>(rate: u32, stop: Arc<AtomicBool>, limit: usize, mut call: impl FnMut() -> F) -> Vec<Duration>
where
    F: Future<Output = ()> + Send + 'static,
{
    let mut clock = tokio::time::interval(Duration::from_secs(1) / rate);
    let mut calls = Vec::new();
    while !stop.load(Ordering::Relaxed) && calls.len() < limit {
        let due = clock.tick().await;
        let call = call();
        calls.push(tokio::spawn(async move {
            call.await;
            due.elapsed()
        }));
    }
    let mut latencies = Vec::with_capacity(calls.len());
    for call in calls {
        latencies.push(call.await.expect("paced call"));
    }
    latencies
}

/// The ids of the articles in a JSON Lines file (plain or `.gz`), read line by line.
fn ids_in(path: &Path) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Id {
        id: String,
    }
    let file = std::fs::File::open(path).unwrap_or_else(|err| panic!("open {}: {err}", path.display()));
    let reader: Box<dyn BufRead> = if path.extension().is_some_and(|ext| ext == "gz") {
        Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(file)))
    } else {
        Box::new(BufReader::new(file))
    };
    reader
        .lines()
        .map(|line| line.expect("read a line"))
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str::<Id>(&line).expect("a JSON object with an id").id)
        .collect()
}

fn articles_in(path: &Path) -> Vec<Article> {
    ingest::read_files(&[path.to_path_buf()], IngestOptions::default())
        .expect("read the corpus")
        .articles
}

/// A servable copy of the snapshot in `model`: its files hard-linked into `dir` (a snapshot's files are
/// never changed in place), its change log copied.
fn link_model(model: &Path, dir: &Path) {
    std::fs::create_dir_all(dir).expect("create the model copy");
    for entry in std::fs::read_dir(model).expect("list the model") {
        let entry = entry.expect("a model file");
        let to = dir.join(entry.file_name());
        if entry.file_name() == LOG_FILE {
            std::fs::copy(entry.path(), to).expect("copy the change log");
        } else {
            std::fs::hard_link(entry.path(), to).expect("hard-link a snapshot file");
        }
    }
}

/// User plus system CPU seconds that process `process` (a pid, or `self`) has used, from `/proc`.
fn cpu_seconds(process: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{process}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces: the state first,
    // then utime and stime as the 12th and 13th.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<f64> = after_name
        .split_whitespace()
        .map(|field| field.parse().unwrap_or(0.0))
        .collect();
    // SAFETY: sysconf only reads a system setting.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (fields.get(11).unwrap_or(&0.0) + fields.get(12).unwrap_or(&0.0)) / ticks_per_second
}

/// Resident memory of a process, in bytes: all of it, and the anonymous part (the heap, as against pages of
/// mapped snapshot files, which the kernel can drop and read again).
#[derive(Clone, Copy, Debug, Default)]
struct Resident {
    all: u64,
    anonymous: u64,
}

impl Resident {
    fn of(pid: u32) -> Self {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| {
            let kilobytes = status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .unwrap_or(0);
            kilobytes * 1024
        };
        Self {
            all: field("VmRSS:"),
            anonymous: field("RssAnon:"),
        }
    }

    fn max(self, other: Self) -> Self {
        Self {
            all: self.all.max(other.all),
            anonymous: self.anonymous.max(other.anonymous),
        }
    }
}

impl std::fmt::Display for Resident {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.2} GB ({:.2} GB anonymous)",
            self.all as f64 / 1e9,
            self.anonymous as f64 / 1e9
        )
    }
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
    let dir = tempfile::tempdir_in("target").expect("scratch directory");
    let model = dir.path().join("model");
    let (base_ids, upserts) = match &args.model {
        Some(original) => {
            link_model(original, &model);
            let upserts = articles_in(args.upserts.as_deref().expect("clap requires --upserts"));
            (ids_in(&input), upserts)
        }
        None => {
            let mut articles = articles_in(&input);
            let second_half = articles.split_off(articles.len() / 2);
            let upserts = args.upserts.as_deref().map_or(second_half, articles_in);
            let ids = articles.iter().map(|article| article.id.clone()).collect();
            Engine::build(articles, &BuildConfig::default(), &ProgressBar::hidden())
                .expect("index the first half")
                .save(&model)
                .expect("save the snapshot");
            (ids, upserts)
        }
    };
    let base_ids = Arc::new(base_ids);
    println!(
        "model of {} articles ({}), {} articles for upserts",
        base_ids.len(),
        args.model.as_deref().unwrap_or(&input).display(),
        upserts.len()
    );

    // No rebuild until the rebuild phase: its first write is the one past this many changes.
    let paced_writes_planned = args.write_rate as usize * args.seconds as usize;
    let writes_before_rebuild =
        args.probes + args.single + args.concurrent_upserts + 2 * args.batches * args.batch_size + paced_writes_planned;
    let mut serve_args = vec![
        "--rebuild-min-changes".to_string(),
        (writes_before_rebuild + 1).to_string(),
        "--rebuild-ratio".to_string(),
        "0".to_string(),
    ];
    serve_args.extend(args.serve_args.iter().cloned());
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .to_string();
    let started = Instant::now();
    let binary = args
        .binary
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_weitere")));
    let server = Server::start(&binary, &model, &addr, &serve_args, dir.path().join("serve.log"));
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
    println!("server serving after {:.1} s", started.elapsed().as_secs_f64());
    let mut client = RelatedStoriesClient::new(channel.clone());
    let supply = Arc::new(Supply {
        articles: upserts,
        next: AtomicUsize::new(0),
    });
    let mut ack_to_visible = Vec::new();
    let mut first_query_hits = 0;
    for probe in 0..args.probes {
        // Each probe article carries a name nobody wrote before, as breaking news does, in its title and
        // its body, and the draft asks for that name alone. The article's own title would not do: in a
        // large archive the generated versions of the same story outrank it, and a short article is
        // nearly identical to its title, which the ranking treats as the draft's own saved copy and
        // leaves out.
        let mut article = supply.take();
        let name = invented_name(probe);
        article.title = format!("{name}: {}", article.title);
        article.body = format!("{name} meldet: {}", article.body);
        let (id, draft) = (
            article.id.clone(),
            proto::Draft {
                title: name,
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
    let server_process = server.child.id().to_string();
    let cpu_before = [cpu_seconds(&server_process), cpu_seconds("self")];
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
    let [server_cpu, bench_cpu] = [
        cpu_seconds(&server_process) - cpu_before[0],
        cpu_seconds("self") - cpu_before[1],
    ]
    .map(|seconds| 1e3 * seconds / args.concurrent_upserts as f64);
    let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
    println!(
        "  CPU per acked article: server {server_cpu:.3} ms, load generator {bench_cpu:.3} ms \
         (all {cores} cores busy with both: at most {:.0} articles/s)",
        1e3 * cores as f64 / (server_cpu + bench_cpu)
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

    let pid = server.child.id();
    let serving = Resident::of(pid);
    let reads = |stop| {
        read_load(
            channel.clone(),
            Arc::clone(&base_ids),
            args.readers,
            args.read_rate,
            stop,
        )
    };
    let quiet = Summary::of(reads(stop_after(args.seconds)).await);
    let readers = match args.read_rate {
        Some(rate) => format!("{rate} reads/s"),
        None => format!("{} readers", args.readers),
    };
    println!("Related, {readers}, no writes:  {quiet}");

    let stop = stop_after(args.seconds);
    let writer = tokio::spawn(paced_writes(
        client.clone(),
        Arc::clone(&supply),
        args.write_rate,
        Arc::clone(&stop),
        paced_writes_planned,
    ));
    let busy = Summary::of(reads(stop).await);
    let writes = Summary::of(writer.await.expect("writer"));
    println!(
        "Related, {readers}, {} writes/s: {busy}  ({:.2}× the p99 without writes; the writes: {writes})",
        args.write_rate,
        busy.p99 / quiet.p99
    );

    let (rebuilds_started, finished) = server.rebuilds();
    assert_eq!(
        (rebuilds_started, finished.len()),
        (0, 0),
        "a rebuild ran before the rebuild phase"
    );
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(paced_writes(
        client.clone(),
        Arc::clone(&supply),
        args.write_rate,
        Arc::clone(&stop),
        usize::MAX,
    ));
    let rebuild_readers = tokio::spawn(reads(Arc::clone(&stop)));
    let started = Instant::now();
    let mut peak = serving;
    while server.rebuilds().1.is_empty() {
        peak = peak.max(Resident::of(pid));
        assert!(
            started.elapsed() < Duration::from_secs(args.rebuild_timeout),
            "the rebuild took longer than {} s",
            args.rebuild_timeout
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let during_rebuild = Summary::of(rebuild_readers.await.expect("readers"));
    let writes = Summary::of(writer.await.expect("writer"));
    let (_, rebuild_seconds) = server.rebuilds();
    // Serving the rebuilt engine, which holds the articles written during the rebuild too.
    let after = Resident::of(pid);
    println!(
        "Related during a rebuild:        {during_rebuild}  ({:.2}× the p99 without writes; {} writes/s go on: {writes})",
        during_rebuild.p99 / quiet.p99,
        args.write_rate
    );
    println!(
        "rebuild of {} live articles: {:.1} s; server resident memory serving {serving}, peak during the rebuild {peak} ({:.2}× in all, {:.2}× anonymous), serving after it {after} (peak {:.2}× that)",
        base_ids.len() + supply.articles.len().min(supply.next.load(Ordering::Relaxed)),
        rebuild_seconds[0],
        peak.all as f64 / serving.all as f64,
        peak.anonymous as f64 / serving.anonymous as f64,
        peak.all as f64 / after.all as f64
    );
    server.terminate();
    println!(
        "{} upserts in all; clean exit on SIGTERM",
        supply.next.load(Ordering::Relaxed)
    );
}
