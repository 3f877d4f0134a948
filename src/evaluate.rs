//! How good are the recommendations? Offline evaluation against a labelled corpus: every sampled article is a
//! source, the other articles with the same label are its relevant set (leave-one-out), and the engine's
//! answers are scored. Also measures the HNSW index against exact search and the query latency.

use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::Serialize;

use crate::article::Article;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::index::{NeighborIndex, Slot};
use crate::recommend::{Filter, RelatedQuery, Source};

/// Which label defines relevance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Label {
    /// Same story (event cluster).
    Story,
    /// Same category.
    Category,
}

impl Label {
    fn of(self, article: &Article) -> Option<&str> {
        match self {
            Label::Story => article.story.as_deref(),
            Label::Category => article.category.as_deref(),
        }
    }
}

/// What to evaluate.
#[derive(Clone, Debug)]
pub struct EvalOptions {
    /// Relevance label.
    pub label: Label,
    /// Size of each recommendation list.
    pub k: usize,
    /// Evaluate a random sample of this many labelled sources instead of all.
    pub sample: Option<usize>,
    /// Seed of the sample.
    pub seed: u64,
}

/// Evaluation figures; field names are the JSON keys scripts rely on.
#[derive(Clone, Debug, Serialize)]
pub struct EvalReport {
    /// Sources evaluated.
    pub sources: usize,
    /// List size.
    pub k: usize,
    /// Mean share of the k slots filled with a relevant article, through the full engine (index + policy).
    pub precision_at_k: f64,
    /// The same for plain exact k-nearest neighbours without ranking policy (comparable to a TF-IDF + cosine
    /// baseline).
    pub knn_precision_at_k: f64,
    /// Times a source was recommended for itself (must be 0).
    pub self_recommendations: usize,
    /// Mean share of the exact top k that HNSW also returns.
    pub ann_recall_at_k: f64,
    /// Median `related` latency in milliseconds.
    pub latency_p50_ms: f64,
    /// 99th percentile `related` latency in milliseconds.
    pub latency_p99_ms: f64,
}

/// Evaluates `engine` on its own articles.
pub fn evaluate(engine: &Engine, options: &EvalOptions) -> Result<EvalReport> {
    if options.k == 0 {
        return Err(Error::invalid("k", "must be at least 1"));
    }
    let articles = engine.articles();
    let mut sources: Vec<Slot> = (0..articles.len() as Slot)
        .filter(|&slot| options.label.of(&articles[slot as usize]).is_some())
        .collect();
    if sources.is_empty() {
        return Err(Error::invalid("label", "no article carries this label"));
    }
    if let Some(sample) = options.sample {
        sources.shuffle(&mut StdRng::seed_from_u64(options.seed));
        sources.truncate(sample);
        sources.sort_unstable();
    }
    let relevant = |source: Slot, candidate: Slot| {
        options.label.of(&articles[source as usize]) == options.label.of(&articles[candidate as usize])
    };
    let mut precision_sum = 0.0;
    let mut knn_precision_sum = 0.0;
    let mut recall_sum = 0.0;
    let mut self_recommendations = 0;
    let mut latencies_ms = Vec::with_capacity(sources.len());
    for &source in &sources {
        let query = RelatedQuery {
            source: Source::Article(articles[source as usize].id.clone()),
            k: options.k,
            filter: Filter::default(),
        };
        let started = Instant::now();
        let recommended = engine.related(&query)?;
        latencies_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        let slots: Vec<Slot> = recommended
            .iter()
            .map(|story| engine.slot(&story.id))
            .collect::<Result<_>>()?;
        self_recommendations += slots.iter().filter(|&&slot| slot == source).count();
        precision_sum += slots.iter().filter(|&&slot| relevant(source, slot)).count() as f64 / options.k as f64;

        let vector = &engine.vectors()[source as usize];
        let not_source = |slot: Slot| slot != source;
        let exact = engine.exact().search(vector, options.k, &not_source);
        knn_precision_sum += exact.iter().filter(|hit| relevant(source, hit.slot)).count() as f64 / options.k as f64;
        let approximate = engine.hnsw().search(vector, options.k, &not_source);
        recall_sum += overlap(&exact, &approximate);
    }
    let count = sources.len() as f64;
    latencies_ms.sort_by(f64::total_cmp);
    Ok(EvalReport {
        sources: sources.len(),
        k: options.k,
        precision_at_k: precision_sum / count,
        knn_precision_at_k: knn_precision_sum / count,
        self_recommendations,
        ann_recall_at_k: recall_sum / count,
        latency_p50_ms: percentile(&latencies_ms, 0.50),
        latency_p99_ms: percentile(&latencies_ms, 0.99),
    })
}

/// Share of `truth` that `found` contains; 1 when `truth` is empty.
fn overlap(truth: &[crate::index::Neighbor], found: &[crate::index::Neighbor]) -> f64 {
    if truth.is_empty() {
        return 1.0;
    }
    let hits = truth
        .iter()
        .filter(|wanted| found.iter().any(|hit| hit.slot == wanted.slot))
        .count();
    hits as f64 / truth.len() as f64
}

/// Nearest-rank percentile of sorted values; 0 for no values.
pub fn percentile(sorted: &[f64], quantile: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (quantile * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_uses_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.5), 50.0);
        assert_eq!(percentile(&values, 0.99), 99.0);
        assert_eq!(percentile(&[3.0], 0.99), 3.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
