//! weitere's side of the scale benchmark (issue 10; `benches/scale/README.md` runs it for each archive
//! size together with the scikit-learn and tantivy anchors). For one archive it measures, with the release
//! binary as a user runs it:
//!
//! - `weitere index`: wall and CPU seconds (user + system, from `wait4`), articles per CPU-second, peak RSS;
//!   snapshot bytes per article;
//! - `weitere serve`: seconds from spawn until a `Stats` call answers, resident bytes per article after the
//!   load below, and how many of them are pages of the mapped snapshot files (`RssFile`);
//! - `Related` by id (k = 10) over gRPC: p50/p99 at concurrency 1, and p50/p99 with requests per second at
//!   concurrency 8; the server's CPU time per request in each (from `/proc/PID/stat`, 10 ms ticks), which
//!   against the in-process latency tells the search from the transport and the hand-offs;
//! - in process, on the loaded snapshot: `Related` p50/p99 with `--search auto`, exact and approximate
//!   search p50 (the crossover of `auto`), and recall@10 of the approximate search against the exact one;
//! - `weitere batch --k 10`: articles per second.
//!
//! Sources are 1,000 articles evenly spaced over the archive. One JSON object goes to stdout (and to
//! `--json-out`, appended as a line). Not run in CI:
//!
//! ```sh
//! cargo build --release && cargo bench --bench scale -- --archive target/scale/archive-100k.jsonl.gz
//! ```

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::json;
use tonic::transport::Channel;
use weitere::engine::{Engine, SearchStrategy};
use weitere::evaluate::metrics::percentile;
use weitere::index::{NeighborIndex, Slot};
use weitere::recommend::{RelatedQuery, Source};
use weitere::service::proto::related_stories_client::RelatedStoriesClient;
use weitere::service::proto::{RelatedRequest, StatsRequest, related_request};

const K: usize = 10;

/// weitere's side of the scale benchmark.
#[derive(Debug, Parser)]
struct Args {
    /// Archive to index (JSON Lines, gzip if it ends in .gz).
    #[arg(long)]
    archive: PathBuf,
    /// Directory for the snapshot and outputs (replaced).
    #[arg(long, default_value = "target/scale/run")]
    work: PathBuf,
    /// The weitere binary to measure.
    #[arg(long, default_value = "target/release/weitere")]
    binary: PathBuf,
    /// Source articles for latency and recall.
    #[arg(long, default_value_t = 1_000)]
    sources: usize,
    /// Requests per client at concurrency 8.
    #[arg(long, default_value_t = 1_000)]
    requests_per_client: usize,
    /// Append the JSON figures as one line to this file.
    #[arg(long)]
    json_out: Option<PathBuf>,
    /// Measure this snapshot (built from `--archive` by an earlier run) instead of indexing; the index
    /// figures are then null.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Extra arguments for `weitere index` (e.g. "--serial-insert").
    #[arg(long, allow_hyphen_values = true, num_args = 1..)]
    index_args: Vec<String>,
    /// The ranking's dense weight (`--dense-weight`) for every measurement: in process, `serve` and
    /// `batch`; weitere's default when not given. 0 leaves the blend out.
    #[arg(long)]
    dense_weight: Option<f32>,
    /// Extra arguments for `weitere batch`, e.g. "--section Kultur" to time a twentieth of a 1M archive
    /// (articles/s counts the sources written).
    #[arg(long, allow_hyphen_values = true, num_args = 1..)]
    batch_args: Vec<String>,
}

/// Wall time, CPU time and peak RSS of a finished child process.
struct Usage {
    wall_s: f64,
    cpu_s: f64,
    peak_rss_bytes: u64,
}

/// Runs `command` to completion and measures it.
fn run_measured(command: &mut Command) -> Usage {
    let started = Instant::now();
    let child = command.stdout(Stdio::null()).spawn().expect("start the command");
    let (status, cpu_s, peak_rss_bytes) = wait_with_usage(child);
    assert!(status == 0, "{command:?} failed with status {status}");
    Usage {
        wall_s: started.elapsed().as_secs_f64(),
        cpu_s,
        peak_rss_bytes,
    }
}

/// Waits for `child` with `wait4`, returning its raw status, CPU seconds and peak RSS in bytes.
fn wait_with_usage(child: Child) -> (i32, f64, u64) {
    let mut status = 0;
    // SAFETY: `rusage` is plain data that `wait4` fills in; the pid is our own child's.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        let pid = libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage);
        assert!(pid > 0, "wait4 failed");
        usage
    };
    let seconds = |time: libc::timeval| time.tv_sec as f64 + time.tv_usec as f64 / 1e6;
    let cpu = seconds(usage.ru_utime) + seconds(usage.ru_stime);
    (status, cpu, usage.ru_maxrss as u64 * 1024)
}

/// A value of `/proc/PID/status` in bytes (e.g. `VmRSS`).
fn proc_status_bytes(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    let line = status
        .lines()
        .find(|line| line.starts_with(key))
        .expect("key in /proc status");
    let kilobytes: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("a number");
    kilobytes * 1024
}

/// CPU seconds (user + system) that process `pid` has used so far, from `/proc/PID/stat`.
fn process_cpu_s(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc stat");
    // Fields after the command name (which may hold spaces) start at the state, field 3; utime and stime
    // are fields 14 and 15, in clock ticks.
    let after_name = &stat[stat.rfind(')').expect("a command name") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    // SAFETY: sysconf has no preconditions.
    let ticks_per_s = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks as f64 / ticks_per_s
}

fn directory_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("read the snapshot directory")
        .flatten()
        .filter_map(|entry| entry.metadata().ok())
        .filter(|metadata| metadata.is_file())
        .map(|metadata| metadata.len())
        .sum()
}

/// p50 and p99 (nearest rank, as `weitere eval` reports them) of `samples`, in milliseconds.
fn percentiles(samples: Vec<Duration>) -> (f64, f64) {
    let mut milliseconds: Vec<f64> = samples.iter().map(|sample| sample.as_secs_f64() * 1e3).collect();
    milliseconds.sort_by(f64::total_cmp);
    (percentile(&milliseconds, 0.5), percentile(&milliseconds, 0.99))
}

fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

async fn related(client: &mut RelatedStoriesClient<Channel>, id: &str) -> Duration {
    let request = RelatedRequest {
        source: Some(related_request::Source::ArticleId(id.to_owned())),
        k: K as u32,
        ..Default::default()
    };
    let started = Instant::now();
    client.related(request).await.expect("related");
    started.elapsed()
}

/// Starts `weitere serve` on the snapshot and waits until it answers; returns it, a channel and the
/// seconds it took.
#[expect(
    clippy::zombie_processes,
    reason = "the child is returned, and the caller waits for it"
)]
async fn serve(binary: &Path, model: &Path, ranking: &[(&str, String)], log: &Path) -> (Child, Channel, f64) {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .to_string();
    let started = Instant::now();
    let mut child = Command::new(binary)
        .args(["serve", "--model"])
        .arg(model)
        .args(["--addr", &addr])
        .envs(ranking.iter().cloned())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("create the server log"))
        .spawn()
        .expect("start weitere serve");
    loop {
        if let Ok(channel) = Channel::from_shared(format!("http://{addr}"))
            .expect("uri")
            .connect()
            .await
        {
            let mut client = RelatedStoriesClient::new(channel.clone());
            if client.stats(StatsRequest {}).await.is_ok() {
                return (child, channel, started.elapsed().as_secs_f64());
            }
        }
        if started.elapsed() > Duration::from_secs(600) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server did not answer within 600 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = Args::parse();
    if args.model.is_none() {
        let _ = std::fs::remove_dir_all(&args.work);
    }
    std::fs::create_dir_all(&args.work).expect("create the work directory");
    let model = args.model.clone().unwrap_or_else(|| args.work.join("model"));
    let index = if args.model.is_some() {
        eprintln!("reusing the snapshot in {}", model.display());
        None
    } else {
        eprintln!("indexing {}", args.archive.display());
        Some(run_measured(
            Command::new(&args.binary)
                .args(["index", "--input"])
                .arg(&args.archive)
                .arg("--out")
                .arg(&model)
                .args(&args.index_args),
        ))
    };

    eprintln!("loading the snapshot in process");
    let started = Instant::now();
    let engine = Engine::open(&model).expect("open the snapshot");
    let open_in_process_s = started.elapsed().as_secs_f64();
    let articles = engine.articles().len();
    let step = (articles / args.sources).max(1);
    let sources: Vec<Slot> = (0..articles)
        .step_by(step)
        .take(args.sources)
        .map(|slot| slot as Slot)
        .collect();
    let ids: Arc<Vec<String>> = Arc::new(
        sources
            .iter()
            .map(|&slot| engine.articles().id(slot as usize).to_owned())
            .collect(),
    );

    eprintln!("in-process queries");
    let mut engine = engine;
    let ranking: Vec<(&str, String)> = args
        .dense_weight
        .map(|weight| ("WEITERE_DENSE_WEIGHT", weight.to_string()))
        .into_iter()
        .collect();
    if let Some(weight) = args.dense_weight {
        let mut policy = engine.policy().clone();
        policy.dense_weight = weight;
        engine.set_policy(policy).expect("a valid --dense-weight");
    }
    let time_related = |engine: &Engine| -> (f64, f64) {
        let latencies = ids
            .iter()
            .map(|id| {
                let query = RelatedQuery::new(Source::Article(id.clone()), K);
                let started = Instant::now();
                engine.related(&query).expect("related");
                started.elapsed()
            })
            .collect();
        percentiles(latencies)
    };
    let auto = time_related(&engine);
    engine.set_search(SearchStrategy::Exact);
    let exact = time_related(&engine);
    engine.set_search(SearchStrategy::Hnsw);
    let approximate = time_related(&engine);
    let (mut found, mut wanted) = (0, 0);
    for &source in &sources {
        let vector = engine.vectors().get(source as usize).to_vector();
        let not_source = |slot: Slot| slot != source;
        let truth = engine.exact().search(&vector, K, &not_source);
        let got = engine.approximate().search(&vector, K, &not_source);
        wanted += truth.len();
        found += truth
            .iter()
            .filter(|hit| got.iter().any(|g| g.slot == hit.slot))
            .count();
    }
    let recall = found as f64 / wanted.max(1) as f64;
    drop(engine);

    eprintln!("serving");
    let (server, channel, start_s) = serve(&args.binary, &model, &ranking, &args.work.join("serve.log")).await;
    let mut client = RelatedStoriesClient::new(channel.clone());
    let mut serial = Vec::with_capacity(ids.len());
    let server_cpu_before = process_cpu_s(server.id());
    for id in ids.iter() {
        serial.push(related(&mut client, id).await);
    }
    let server_cpu_c1_ms = (process_cpu_s(server.id()) - server_cpu_before) * 1e3 / serial.len() as f64;
    let grpc_c1 = percentiles(serial);
    let server_cpu_before = process_cpu_s(server.id());
    let started = Instant::now();
    let tasks: Vec<_> = (0..8)
        .map(|worker| {
            let (mut client, ids) = (RelatedStoriesClient::new(channel.clone()), Arc::clone(&ids));
            let requests = args.requests_per_client;
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(requests);
                for n in 0..requests {
                    latencies.push(related(&mut client, &ids[(worker * 125 + n) % ids.len()]).await);
                }
                latencies
            })
        })
        .collect();
    let mut concurrent = Vec::new();
    for task in tasks {
        concurrent.extend(task.await.expect("client task"));
    }
    let c8_rps = concurrent.len() as f64 / started.elapsed().as_secs_f64();
    let server_cpu_c8_ms = (process_cpu_s(server.id()) - server_cpu_before) * 1e3 / concurrent.len() as f64;
    let grpc_c8 = percentiles(concurrent);
    let serving_rss = proc_status_bytes(server.id(), "VmRSS:");
    let serving_rss_file = proc_status_bytes(server.id(), "RssFile:");
    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .expect("kill -TERM");
    let (status, _, _) = wait_with_usage(server);
    assert!(status == 0, "the server exited with status {status}");

    eprintln!("batch");
    let batch = run_measured(
        Command::new(&args.binary)
            .args(["batch", "--model"])
            .arg(&model)
            .arg("--out")
            .arg(args.work.join("related.jsonl"))
            .args(["--k", "10"])
            .envs(ranking.iter().cloned())
            .args(&args.batch_args),
    );
    let batch_sources = std::fs::read_to_string(args.work.join("related.jsonl"))
        .expect("read the batch output")
        .lines()
        .count();

    let per_article = |bytes: u64| round(bytes as f64 / articles as f64, 0);
    let figures = json!({
        "archive": args.archive.display().to_string(),
        "dense_weight": args.dense_weight.map(|weight| round(f64::from(weight), 3)),
        "articles": articles,
        "index_wall_s": index.as_ref().map(|index| round(index.wall_s, 1)),
        "index_cpu_s": index.as_ref().map(|index| round(index.cpu_s, 1)),
        "index_articles_per_cpu_s": index.as_ref().map(|index| round(articles as f64 / index.cpu_s, 0)),
        "index_peak_rss_mb": index.as_ref().map(|index| round(index.peak_rss_bytes as f64 / 1e6, 0)),
        "snapshot_bytes_per_article": per_article(directory_bytes(&model)),
        "open_in_process_s": round(open_in_process_s, 2),
        "serve_start_s": round(start_s, 2),
        "serving_rss_bytes_per_article": per_article(serving_rss),
        "serving_rss_file_bytes_per_article": per_article(serving_rss_file),
        "grpc_c1_p50_ms": round(grpc_c1.0, 2),
        "grpc_c1_p99_ms": round(grpc_c1.1, 2),
        "grpc_c8_p50_ms": round(grpc_c8.0, 2),
        "grpc_c8_p99_ms": round(grpc_c8.1, 2),
        "grpc_c8_rps": round(c8_rps, 0),
        "grpc_c1_server_cpu_ms_per_request": round(server_cpu_c1_ms, 3),
        "grpc_c8_server_cpu_ms_per_request": round(server_cpu_c8_ms, 3),
        "in_process_auto_p50_ms": round(auto.0, 3),
        "in_process_auto_p99_ms": round(auto.1, 3),
        "in_process_exact_p50_ms": round(exact.0, 3),
        "in_process_approximate_p50_ms": round(approximate.0, 3),
        "in_process_approximate_p99_ms": round(approximate.1, 3),
        "recall_at_10": round(recall, 4),
        "batch_articles_per_s": round(batch_sources as f64 / batch.wall_s, 0),
        "batch_sources": batch_sources,
        "batch_cpu_s": round(batch.cpu_s, 1),
        "sources": sources.len(),
    });
    println!("{figures}");
    if let Some(path) = &args.json_out {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open --json-out");
        writeln!(file, "{figures}").expect("write --json-out");
    }
}
