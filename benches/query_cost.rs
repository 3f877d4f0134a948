//! What does one `Related` by id cost the CPU, in process? Opens a snapshot and answers `--sources`
//! articles evenly spaced over it (k = 10), once to map the pages the queries read and once measured, and
//! prints the CPU time per query of the measured pass.
//!
//! The measured queries run inside [`answer_all`], so that valgrind counts their instructions alone, free
//! of the noise of a shared machine (wall-clock latency moves by ±20 % between runs there):
//!
//! ```sh
//! cargo build --release --bench query_cost
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='query_cost::answer_all' \
//!     target/release/deps/query_cost-<hash> --model M --sources 200 [--dense-weight 0]
//! ```
//!
//! Not run in CI.

#[path = "common/mod.rs"]
mod common;

use std::path::PathBuf;

use clap::Parser;
use weitere::engine::Engine;
use weitere::recommend::{RelatedQuery, Source};

/// Stories per query.
const K: usize = 10;

/// CPU cost of in-process `Related` by id.
#[derive(Debug, Parser)]
struct Args {
    /// Snapshot directory (`weitere index --out`).
    #[arg(long)]
    model: PathBuf,
    /// Source articles, evenly spaced over the snapshot.
    #[arg(long, default_value_t = 200)]
    sources: usize,
    /// The ranking's dense weight (`--dense-weight`); weitere's default when not given.
    #[arg(long)]
    dense_weight: Option<f32>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() {
    let args = Args::parse();
    let mut engine = Engine::open(&args.model).expect("open the snapshot");
    if let Some(weight) = args.dense_weight {
        let mut policy = engine.policy().clone();
        policy.dense_weight = weight;
        engine.set_policy(policy).expect("a valid --dense-weight");
    }
    let articles = engine.articles().len();
    let step = (articles / args.sources.max(1)).max(1);
    let queries: Vec<RelatedQuery> = (0..articles)
        .step_by(step)
        .take(args.sources)
        .map(|slot| RelatedQuery::new(Source::Article(engine.articles().id(slot).to_owned()), K))
        .collect();
    for query in &queries {
        engine.related(query).expect("related");
    }
    let began = common::cpu_seconds();
    let answered = answer_all(&engine, &queries);
    let took = common::cpu_seconds() - began;
    println!(
        "{} queries on {articles} articles, {answered} stories: {:.3} CPU-ms per query",
        queries.len(),
        took * 1e3 / queries.len().max(1) as f64
    );
}

/// Answers every query; returns how many stories they gave.
#[inline(never)]
fn answer_all(engine: &Engine, queries: &[RelatedQuery]) -> usize {
    queries
        .iter()
        .map(|query| engine.related(query).expect("related").len())
        .sum()
}
