//! How good are the recommendations? Offline evaluation against a labelled corpus: every sampled article is a
//! source, the other articles with the same label are its relevant set (leave-one-out), and the engine's
//! answers — through the same [`Engine::related`] the service calls — are scored with ranking metrics, list
//! quality measures, HNSW recall against exact search, and query latency.

pub mod metrics;
pub mod split;
pub mod sweep;

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::Serialize;

use crate::article::Article;
use crate::article_table::ArticleRef;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::index::{Neighbor, NeighborIndex, Slot};
use crate::recommend::{RelatedQuery, Source};
use metrics::{jaccard, median, ndcg_at_k, percentile, precision_at_k, recall_at_k, reciprocal_rank, word_set};
pub use split::Split;

/// Two articles whose word sets overlap at least this much (Jaccard) are near-duplicates.
pub const NEAR_DUPLICATE_JACCARD: f64 = 0.8;

const SECONDS_PER_DAY: f64 = 86_400.0;

/// Which label defines relevance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Label {
    /// Same story (event cluster).
    Story,
    /// Same category.
    Category,
}

impl Label {
    fn of(self, article: ArticleRef<'_>) -> Option<&str> {
        match self {
            Label::Story => article.story,
            Label::Category => article.category,
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
    /// Seed of the sample; the same seed gives the same sources.
    pub seed: u64,
    /// Which half of the corpus the sources come from (all candidates stay in the index).
    pub split: Split,
}

/// Evaluation figures; field names are the JSON keys scripts rely on.
#[derive(Clone, Debug, Serialize)]
pub struct EvalReport {
    /// Which sources: `all`, `dev` or `test` (see [`split`]).
    pub split: &'static str,
    /// Sources evaluated.
    pub sources: usize,
    /// Sources left out of the relevance metrics because no other article shares their label.
    pub sources_without_relevant: usize,
    /// List size.
    pub k: usize,
    /// Mean share of the k slots filled with a relevant article (missing slots are misses).
    pub precision_at_k: f64,
    /// Like [`EvalReport::precision_at_k`], but a relevant article counts only when it is not a
    /// near-duplicate of the source or of an article above it: relevant and distinct.
    pub distinct_precision_at_k: f64,
    /// Mean share of each source's relevant set found in its list.
    pub recall_at_k: f64,
    /// Mean binary nDCG of the lists.
    pub ndcg_at_k: f64,
    /// Mean reciprocal rank of the first relevant article (0 when none).
    pub mrr: f64,
    /// Share of sources that get a full block of k stories above the score floor.
    pub coverage: f64,
    /// Share of blocks holding a near-duplicate of the source, or two near-duplicates of each other.
    pub duplicate_rate: f64,
    /// Share of recommended stories that near-duplicate the source or a story above them in the list.
    pub duplicate_item_rate: f64,
    /// Mean pairwise word-set Jaccard inside lists of two or more stories (lower = more varied).
    pub intra_list_similarity: f64,
    /// Median age gap between source and recommended story in days; `null` when the corpus has no dates.
    pub median_age_gap_days: Option<f64>,
    /// Times a source was recommended for itself (must be 0).
    pub self_recommendations: usize,
    /// Precision of plain exact k-nearest neighbours without the ranking policy, comparable with a TF-IDF +
    /// cosine baseline; over the same sources as [`EvalReport::precision_at_k`] (those with a relevant
    /// article).
    pub knn_precision_at_k: f64,
    /// Mean share of the exact top k that HNSW also returns.
    pub ann_recall_at_k: f64,
    /// Median [`Engine::related`] latency in milliseconds.
    pub latency_p50_ms: f64,
    /// 99th percentile [`Engine::related`] latency in milliseconds.
    pub latency_p99_ms: f64,
}

/// Removes articles whose title and body repeat an earlier article exactly (the first is kept), so that
/// copies do not count as easy hits. Returns the kept articles and how many were dropped.
pub fn drop_exact_duplicates(articles: Vec<Article>) -> (Vec<Article>, usize) {
    let mut seen = HashSet::new();
    let before = articles.len();
    let kept: Vec<Article> = articles
        .into_iter()
        .filter(|article| seen.insert((article.title.clone(), article.body.clone())))
        .collect();
    let dropped = before - kept.len();
    (kept, dropped)
}

/// The labelled slots to evaluate, in slot order: all of them, or a seeded sample.
pub fn select_sources(engine: &Engine, options: &EvalOptions) -> Result<Vec<Slot>> {
    let mut sources: Vec<Slot> = (0..engine.articles().len() as Slot)
        .filter(|&slot| {
            let article = engine.articles().get(slot as usize);
            options.label.of(article).is_some() && options.split.holds(article)
        })
        .collect();
    if sources.is_empty() {
        return Err(Error::invalid("label", "no article carries this label"));
    }
    if let Some(sample) = options.sample {
        sources.shuffle(&mut StdRng::seed_from_u64(options.seed));
        sources.truncate(sample);
        sources.sort_unstable();
    }
    Ok(sources)
}

/// Running sums over the evaluated sources.
#[derive(Default)]
struct Totals {
    judged: usize,
    precision: f64,
    distinct_precision: f64,
    recall: f64,
    ndcg: f64,
    reciprocal_rank: f64,
    full_lists: usize,
    recommended: usize,
    duplicates: usize,
    blocks_with_duplicates: usize,
    intra_list_lists: usize,
    intra_list_similarity: f64,
    age_gaps_days: Vec<f64>,
    self_recommendations: usize,
    knn_precision: f64,
    ann_recall: f64,
    latencies_ms: Vec<f64>,
}

/// Evaluates `engine` on its own articles.
pub fn evaluate(engine: &Engine, options: &EvalOptions) -> Result<EvalReport> {
    if options.k == 0 {
        return Err(Error::invalid("k", "must be at least 1"));
    }
    let articles = engine.articles();
    let sources = select_sources(engine, options)?;
    let mut label_sizes: HashMap<&str, usize> = HashMap::new();
    for label in articles.iter().filter_map(|article| options.label.of(article)) {
        *label_sizes.entry(label).or_default() += 1;
    }
    let word_sets: Vec<HashSet<String>> = (0..articles.len() as Slot)
        .map(|slot| {
            Ok(word_set(&format!(
                "{} {}",
                articles.get(slot as usize).title,
                engine.body(slot)?
            )))
        })
        .collect::<Result<_>>()?;

    let mut totals = Totals::default();
    for &source in &sources {
        let article = articles.get(source as usize);
        let query = RelatedQuery::new(Source::Article(article.id.to_owned()), options.k);
        let started = Instant::now();
        let recommended = engine.related(&query)?;
        totals.latencies_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        let list: Vec<Slot> = recommended
            .iter()
            .map(|story| engine.slot(&story.id))
            .collect::<Result<_>>()?;

        let label = options.label.of(article).expect("sources are labelled");
        let is_relevant = |slot: Slot| slot != source && options.label.of(articles.get(slot as usize)) == Some(label);
        let hits: Vec<bool> = list.iter().map(|&slot| is_relevant(slot)).collect();
        let relevant_count = label_sizes[label] - 1;
        let near_duplicates = near_duplicate_flags(source, &list, &word_sets);
        let distinct_hits: Vec<bool> = hits
            .iter()
            .zip(&near_duplicates)
            .map(|(&hit, &copy)| hit && !copy)
            .collect();
        let vector = engine.vectors().get(source as usize).to_vector();
        let not_source = |slot: Slot| slot != source;
        let exact = engine.exact().search(&vector, options.k, &not_source);
        if let (Some(recall), Some(ndcg)) = (
            recall_at_k(&hits, options.k, relevant_count),
            ndcg_at_k(&hits, options.k, relevant_count),
        ) {
            totals.judged += 1;
            totals.precision += precision_at_k(&hits, options.k);
            totals.distinct_precision += precision_at_k(&distinct_hits, options.k);
            let exact_hits: Vec<bool> = exact.iter().map(|hit| is_relevant(hit.slot)).collect();
            totals.knn_precision += precision_at_k(&exact_hits, options.k);
            totals.recall += recall;
            totals.ndcg += ndcg;
            totals.reciprocal_rank += reciprocal_rank(&hits);
        }

        totals.full_lists += usize::from(list.len() == options.k);
        totals.recommended += list.len();
        let duplicates = near_duplicates.iter().filter(|&&copy| copy).count();
        totals.duplicates += duplicates;
        totals.blocks_with_duplicates += usize::from(duplicates > 0);
        if list.len() >= 2 {
            totals.intra_list_lists += 1;
            totals.intra_list_similarity += mean_pairwise_jaccard(&list, &word_sets);
        }
        totals.age_gaps_days.extend(list.iter().filter_map(|&slot| {
            let gap = (article.published_at?.seconds()).abs_diff(articles.get(slot as usize).published_at?.seconds());
            Some(gap as f64 / SECONDS_PER_DAY)
        }));
        totals.self_recommendations += list.iter().filter(|&&slot| slot == source).count();

        let approximate = engine.approximate().search(&vector, options.k, &not_source);
        totals.ann_recall += overlap(&exact, &approximate);
    }
    Ok(report(totals, sources.len(), options))
}

/// Means over the sources: the relevance figures over the judged ones (with a relevant article), the
/// list figures over all evaluated ones.
fn report(mut totals: Totals, sources: usize, options: &EvalOptions) -> EvalReport {
    let k = options.k;
    let judged = totals.judged.max(1) as f64;
    let evaluated = sources.max(1) as f64;
    totals.latencies_ms.sort_by(f64::total_cmp);
    EvalReport {
        split: options.split.name(),
        sources,
        sources_without_relevant: sources - totals.judged,
        k,
        precision_at_k: totals.precision / judged,
        distinct_precision_at_k: totals.distinct_precision / judged,
        recall_at_k: totals.recall / judged,
        ndcg_at_k: totals.ndcg / judged,
        mrr: totals.reciprocal_rank / judged,
        coverage: totals.full_lists as f64 / evaluated,
        duplicate_rate: ratio(totals.blocks_with_duplicates, sources),
        duplicate_item_rate: ratio(totals.duplicates, totals.recommended),
        intra_list_similarity: if totals.intra_list_lists == 0 {
            0.0
        } else {
            totals.intra_list_similarity / totals.intra_list_lists as f64
        },
        median_age_gap_days: median(totals.age_gaps_days),
        self_recommendations: totals.self_recommendations,
        knn_precision_at_k: totals.knn_precision / judged,
        ann_recall_at_k: totals.ann_recall / evaluated,
        latency_p50_ms: percentile(&totals.latencies_ms, 0.50),
        latency_p99_ms: percentile(&totals.latencies_ms, 0.99),
    }
}

/// For each list item: does it near-duplicate the source or an item ranked above it?
fn near_duplicate_flags(source: Slot, list: &[Slot], word_sets: &[HashSet<String>]) -> Vec<bool> {
    let words = |slot: Slot| &word_sets[slot as usize];
    list.iter()
        .enumerate()
        .map(|(position, &slot)| {
            std::iter::once(source)
                .chain(list[..position].iter().copied())
                .any(|earlier| jaccard(words(earlier), words(slot)) >= NEAR_DUPLICATE_JACCARD)
        })
        .collect()
}

fn mean_pairwise_jaccard(list: &[Slot], word_sets: &[HashSet<String>]) -> f64 {
    let mut sum = 0.0;
    let mut pairs = 0;
    for (position, &a) in list.iter().enumerate() {
        for &b in &list[position + 1..] {
            sum += jaccard(&word_sets[a as usize], &word_sets[b as usize]);
            pairs += 1;
        }
    }
    sum / pairs as f64
}

/// Share of `truth` that `found` contains; 1 when `truth` is empty.
pub fn overlap(truth: &[Neighbor], found: &[Neighbor]) -> f64 {
    if truth.is_empty() {
        return 1.0;
    }
    let hits = truth
        .iter()
        .filter(|wanted| found.iter().any(|hit| hit.slot == wanted.slot))
        .count();
    hits as f64 / truth.len() as f64
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 { 0.0 } else { part as f64 / whole as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::article::test_article as article;

    #[test]
    fn exact_copies_are_dropped_and_counted() {
        let (kept, dropped) = drop_exact_duplicates(vec![
            article("a", "T", "B"),
            article("b", "T", "B"),
            article("c", "T", "other"),
        ]);
        assert_eq!(dropped, 1);
        assert_eq!(kept.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), ["a", "c"]);
    }

    #[test]
    fn near_duplicates_count_against_source_and_earlier_items() {
        let word_sets: Vec<HashSet<String>> = ["a b c d e", "a b c d e", "v w x y z", "v w x y z f"]
            .iter()
            .map(|text| word_set(text))
            .collect();
        // Slot 1 copies the source, slot 3 nearly copies slot 2 (5/6 > 0.8).
        assert_eq!(near_duplicate_flags(0, &[1, 2, 3], &word_sets), [true, false, true]);
        assert_eq!(near_duplicate_flags(0, &[2], &word_sets), [false]);
    }

    #[test]
    fn overlap_is_the_share_of_truth_found() {
        let neighbor = |slot| Neighbor { slot, similarity: 0.5 };
        assert_eq!(overlap(&[neighbor(1), neighbor(2)], &[neighbor(2), neighbor(3)]), 0.5);
        assert_eq!(overlap(&[], &[neighbor(1)]), 1.0);
    }
}
