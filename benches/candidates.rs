//! Which candidate generator can replace the full exact scan at archive scale? Measures how often the
//! exact top 10 survives when the query keeps only its heaviest terms (as More-Like-This does) and a
//! candidate list is re-ranked by the full sparse cosine, against the cost per query, single-threaded.
//!
//! `cargo bench --bench candidates` runs on the shipped sample; `WEITERE_ARCHIVE=path.jsonl.gz` picks
//! another archive (e.g. one from `benches/scale/generate.py`). Prints one line per setting.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use indicatif::ProgressBar;
use weitere::engine::BuildConfig;
use weitere::index::{ExactIndex, Neighbor, NeighborIndex, Slot};
use weitere::ingest::{self, IngestOptions};
use weitere::sparse::SparseVector;
use weitere::tfidf::Vectorizer;

/// Sources measured, spread evenly over the archive.
const SOURCES: usize = 1_000;
/// Neighbours compared.
const K: usize = 10;
/// Query terms kept, and candidates re-ranked.
const QUERY_TERMS: [usize; 3] = [16, 32, 64];
const CANDIDATES: [usize; 3] = [10, 50, 200];

fn main() {
    let path =
        std::env::var_os("WEITERE_ARCHIVE").map_or_else(|| PathBuf::from("data/gnad-sample.jsonl.gz"), PathBuf::from);
    let corpus = ingest::read_files(std::slice::from_ref(&path), IngestOptions::default()).unwrap();
    let config = BuildConfig::default();
    let started = Instant::now();
    let (_, vectors) =
        Vectorizer::fit(&corpus.articles, config.analysis, config.tfidf, &ProgressBar::hidden()).unwrap();
    println!(
        "{}: {} articles, fit {:.1} s",
        path.display(),
        vectors.len(),
        started.elapsed().as_secs_f64()
    );
    let vectors = Arc::new(vectors);
    let index = ExactIndex::new(Arc::clone(&vectors));
    let sources: Vec<usize> = (0..vectors.len()).step_by((vectors.len() / SOURCES).max(1)).collect();

    let started = Instant::now();
    let exact: Vec<Vec<Neighbor>> = sources
        .iter()
        .map(|&source| index.search(&vectors[source], K, &|slot: Slot| slot as usize != source))
        .collect();
    let per_query = |started: Instant| started.elapsed().as_secs_f64() * 1_000.0 / sources.len() as f64;
    println!("full exact scan: {:.3} ms per query", per_query(started));
    assert!(exact.iter().any(|hits| hits.len() == K), "no source has {K} neighbours");

    for terms in QUERY_TERMS {
        for candidates in CANDIDATES {
            let started = Instant::now();
            let (mut found, mut wanted) = (0, 0);
            for (&source, expected) in sources.iter().zip(&exact) {
                let query = &vectors[source];
                let pruned = heaviest_terms(query, terms);
                let not_source = |slot: Slot| slot as usize != source;
                let mut reranked: Vec<(f32, Slot)> = index
                    .search(&pruned, candidates, &not_source)
                    .iter()
                    .map(|hit| (query.dot(&vectors[hit.slot as usize]), hit.slot))
                    .collect();
                reranked.sort_by(|a, b| b.0.total_cmp(&a.0));
                let kept: HashSet<Slot> = reranked.iter().take(K).map(|&(_, slot)| slot).collect();
                wanted += expected.len();
                found += expected.iter().filter(|hit| kept.contains(&hit.slot)).count();
            }
            println!(
                "top {terms:>2} query terms, {candidates:>3} candidates re-ranked: recall@{K} {:.3}, {:.3} ms per query",
                found as f64 / wanted as f64,
                per_query(started)
            );
        }
    }
}

/// `vector` with only its `n` heaviest terms (renormalised; the ranking does not depend on it).
fn heaviest_terms(vector: &SparseVector, n: usize) -> SparseVector {
    let mut pairs: Vec<(u32, f32)> = vector.iter().collect();
    if pairs.len() > n {
        pairs.select_nth_unstable_by(n - 1, |a, b| b.1.total_cmp(&a.1));
        pairs.truncate(n);
    }
    SparseVector::from_pairs(pairs)
}
