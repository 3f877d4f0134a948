//! Which candidate generator can replace the full exact scan at archive scale? For 1,000 seeded sources,
//! measures how much of the exact top 10 (full sparse cosine) survives when candidates come from
//!
//! - the nearest LSA projections (a brute-force scan of the dense vectors: what a perfect graph returns),
//! - a pruned postings scan: the query's heaviest terms, each read only as far as its first (heaviest)
//!   postings, and
//! - both together,
//!
//! and are re-ranked by the full sparse cosine, with the pruned scan's cost per query (single-threaded).
//!
//! `cargo bench --bench candidates` runs on the shipped sample; `WEITERE_ARCHIVE=path.jsonl.gz` picks
//! another archive (e.g. one from `benches/scale/generate.py`). Prints one line per setting.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use indicatif::ProgressBar;
use weitere::engine::BuildConfig;
use weitere::index::{ExactIndex, Neighbor, NeighborIndex, PruneLimits, Slot};
use weitere::ingest::{self, IngestOptions};
use weitere::projection::{Projection, ProjectionConfig};
use weitere::sparse::SparseVector;
use weitere::tfidf::Vectorizer;
use weitere::vector_table::VectorTable;

/// Sources measured, spread evenly over the archive.
const SOURCES: usize = 1_000;
/// Neighbours compared.
const K: usize = 10;
/// Dense candidates (LSA, 256 dimensions) measured.
const DENSE_CANDIDATES: [usize; 3] = [0, 100, 200];
/// (query terms, postings per term) of the pruned scan; `usize::MAX` reads everything.
const PRUNINGS: [(usize, usize); 7] = [
    (16, usize::MAX),
    (64, usize::MAX),
    (64, 256),
    (64, 1_024),
    (usize::MAX, 256),
    (usize::MAX, 1_024),
    (128, 4_096),
];
/// Candidates kept from the pruned scan.
const TERM_CANDIDATES: [usize; 2] = [50, 200];

fn main() {
    let path =
        std::env::var_os("WEITERE_ARCHIVE").map_or_else(|| PathBuf::from("data/gnad-sample.jsonl.gz"), PathBuf::from);
    let corpus = ingest::read_files(std::slice::from_ref(&path), IngestOptions::default()).unwrap();
    let config = BuildConfig::default();
    let started = Instant::now();
    let (vectorizer, vectors) =
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
    let queries: Vec<SparseVector> = sources.iter().map(|&source| vectors.get(source).to_vector()).collect();

    let started = Instant::now();
    let exact: Vec<Vec<Neighbor>> = sources
        .iter()
        .zip(&queries)
        .map(|(&source, query)| index.search(query, K, &|slot: Slot| slot as usize != source))
        .collect();
    let per_query = |started: Instant| started.elapsed().as_secs_f64() * 1_000.0 / sources.len() as f64;
    println!("full exact scan: {:.3} ms per query", per_query(started));
    assert!(exact.iter().any(|hits| hits.len() == K), "no source has {K} neighbours");

    let dense = dense_nearest(&vectors, vectorizer.vocabulary().len(), &sources);
    for (terms, per_term) in PRUNINGS {
        let limits = PruneLimits {
            terms,
            postings_per_term: per_term,
        };
        for term_candidates in TERM_CANDIDATES {
            let started = Instant::now();
            let by_terms: Vec<Vec<Slot>> = sources
                .iter()
                .zip(&queries)
                .map(|(&source, query)| {
                    let hits =
                        index.search_pruned(query, limits, term_candidates, &|slot: Slot| slot as usize != source);
                    hits.iter().map(|hit| hit.slot).collect()
                })
                .collect();
            let cost = per_query(started);
            let recalls: Vec<String> = DENSE_CANDIDATES
                .iter()
                .map(|&dense_candidates| {
                    let (mut found, mut wanted) = (0, 0);
                    for (i, query) in queries.iter().enumerate() {
                        let mut union = by_terms[i].clone();
                        union.extend(&dense[i][..dense_candidates.min(dense[i].len())]);
                        union.sort_unstable();
                        union.dedup();
                        let kept: HashSet<Slot> = index
                            .search_among(query, &union, K)
                            .iter()
                            .map(|hit| hit.slot)
                            .collect();
                        wanted += exact[i].len();
                        found += exact[i].iter().filter(|hit| kept.contains(&hit.slot)).count();
                    }
                    format!("+{dense_candidates} LSA {:.3}", found as f64 / wanted as f64)
                })
                .collect();
            println!(
                "terms {:>4}, postings/term {:>5}, {term_candidates:>3} kept: {cost:.3} ms; recall@{K} {}",
                show(terms),
                show(per_term),
                recalls.join(", ")
            );
        }
    }
}

/// For each source, the nearest articles by LSA projection (256 dimensions), best first, by brute force.
fn dense_nearest(vectors: &VectorTable, term_count: usize, sources: &[usize]) -> Vec<Vec<Slot>> {
    let started = Instant::now();
    let projection = Projection::fit(vectors, term_count, &ProjectionConfig::default()).unwrap();
    let fitted = started.elapsed().as_secs_f64();
    let dense = projection.project_all(vectors);
    println!(
        "LSA 256: fit {fitted:.1} s, projecting {:.1} s ({} terms)",
        started.elapsed().as_secs_f64() - fitted,
        projection.term_count()
    );
    let most = DENSE_CANDIDATES.into_iter().max().unwrap_or(0);
    sources
        .iter()
        .map(|&source| {
            let query = dense.row(source);
            let mut scored: Vec<(f32, Slot)> = (0..vectors.len())
                .filter(|&slot| slot != source)
                .map(|slot| {
                    (
                        dense.row(slot).iter().zip(query).map(|(a, b)| a * b).sum(),
                        slot as Slot,
                    )
                })
                .collect();
            let nth = most.min(scored.len() - 1);
            scored.select_nth_unstable_by(nth, |a, b| b.0.total_cmp(&a.0));
            scored.truncate(most);
            scored.sort_by(|a, b| b.0.total_cmp(&a.0));
            scored.into_iter().map(|(_, slot)| slot).collect()
        })
        .collect()
}

fn show(limit: usize) -> String {
    if limit == usize::MAX {
        "all".into()
    } else {
        limit.to_string()
    }
}
