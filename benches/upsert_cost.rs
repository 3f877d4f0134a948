//! What does one acknowledged upsert cost the server's CPU, without gRPC? Builds an engine in process from
//! the first `--base` articles of `--archive`, opens a live index over it in a scratch directory, and
//! upserts the first `--count` articles of `--upserts` one per call, as single-article writers do: each is
//! tokenised, analysed, logged (fsync) and applied. Prints the CPU time per upsert.
//!
//! The upserts run inside [`upsert_all`], so that valgrind counts their instructions alone, free of the
//! noise of a shared machine:
//!
//! ```sh
//! cargo build --release --bench upsert_cost
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='upsert_cost::upsert_all' \
//!     target/release/deps/upsert_cost-<hash> --archive A --upserts U
//! ```
//!
//! Not run in CI.

#[path = "common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;
use indicatif::ProgressBar;
use weitere::article::Article;
use weitere::engine::{BuildConfig, Engine};
use weitere::ingest::{self, IngestOptions};
use weitere::live::{LiveIndex, RebuildPolicy};

/// CPU cost of single-article upserts into a live index.
#[derive(Debug, Parser)]
struct Args {
    /// JSON Lines archive whose first `--base` articles are indexed.
    #[arg(long)]
    archive: PathBuf,
    /// Articles of `--archive` to index.
    #[arg(long, default_value_t = 5_000)]
    base: usize,
    /// JSON Lines articles to upsert.
    #[arg(long)]
    upserts: PathBuf,
    /// Articles of `--upserts` to upsert, one per call.
    #[arg(long, default_value_t = 1_000)]
    count: usize,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() {
    let args = Args::parse();
    let read = |path: &PathBuf, count: usize| -> Vec<Article> {
        let mut articles = ingest::read_files(std::slice::from_ref(path), IngestOptions::default())
            .expect("read the articles")
            .articles;
        articles.truncate(count);
        articles
    };
    let base = read(&args.archive, args.base);
    let upserts = read(&args.upserts, args.count);
    let engine = Engine::build(base, &BuildConfig::default(), &ProgressBar::hidden()).expect("build the engine");
    let dir = tempfile::tempdir().expect("a scratch directory");
    let policy = RebuildPolicy {
        min_changes: usize::MAX,
        ..RebuildPolicy::default()
    };
    let index = Arc::new(LiveIndex::open(dir.path(), engine, policy).expect("open the live index"));
    let count = upserts.len();
    let began = common::cpu_seconds();
    upsert_all(&index, upserts);
    let took = common::cpu_seconds() - began;
    println!(
        "{count} upserts, one per call: {:.3} CPU-ms per upsert",
        took * 1e3 / count.max(1) as f64
    );
}

/// Upserts `articles` one per call.
#[inline(never)]
fn upsert_all(index: &Arc<LiveIndex>, articles: Vec<Article>) {
    for article in articles {
        let outcomes = index.upsert(vec![article]).expect("the upsert is written");
        assert!(
            outcomes.iter().all(|outcome| outcome.rejected.is_none()),
            "{outcomes:?}"
        );
    }
}
