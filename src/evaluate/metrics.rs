//! How is one recommendation list scored? Pure ranking metrics over a list of hits (is item `i` relevant?)
//! and the size of the relevant set, plus the word-set similarity used to spot near-duplicates. The same
//! definitions are implemented by the baselines script (`benches/baselines/`), so figures compare.

use std::collections::HashSet;

/// Share of the `k` slots filled with a relevant item; missing slots count as misses.
pub fn precision_at_k(hits: &[bool], k: usize) -> f64 {
    if k == 0 {
        return 0.0;
    }
    count_hits(hits, k) as f64 / k as f64
}

/// Share of the relevant set found in the first `k` items; `None` when nothing is relevant.
pub fn recall_at_k(hits: &[bool], k: usize, relevant_count: usize) -> Option<f64> {
    (relevant_count > 0).then(|| count_hits(hits, k) as f64 / relevant_count as f64)
}

/// Binary nDCG: DCG of the list over the DCG of an ideal list with `min(k, relevant_count)` relevant items
/// on top; `None` when nothing is relevant.
pub fn ndcg_at_k(hits: &[bool], k: usize, relevant_count: usize) -> Option<f64> {
    if relevant_count == 0 {
        return None;
    }
    let dcg: f64 = hits
        .iter()
        .take(k)
        .enumerate()
        .filter(|(_, hit)| **hit)
        .map(|(rank, _)| discount(rank))
        .sum();
    let ideal: f64 = (0..k.min(relevant_count)).map(discount).sum();
    Some(dcg / ideal)
}

/// 1 / rank of the first relevant item, 0 when there is none.
pub fn reciprocal_rank(hits: &[bool]) -> f64 {
    hits.iter()
        .position(|hit| *hit)
        .map_or(0.0, |rank| 1.0 / (rank + 1) as f64)
}

/// Nearest-rank percentile of sorted values; 0 for no values.
pub fn percentile(sorted: &[f64], quantile: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (quantile * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Median of unsorted values; `None` for no values.
pub fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    Some(if values.len() % 2 == 0 {
        (values[middle - 1] + values[middle]) / 2.0
    } else {
        values[middle]
    })
}

/// The lower-cased whitespace-separated words of a text: a system-independent view of an article for
/// near-duplicate detection and intra-list similarity.
pub fn word_set(text: &str) -> HashSet<String> {
    text.split_whitespace().map(str::to_lowercase).collect()
}

/// Jaccard similarity of two word sets; 0 when both are empty.
pub fn jaccard(a: &HashSet<String>, b: &HashSet<String>) -> f64 {
    let union = a.union(b).count();
    if union == 0 {
        return 0.0;
    }
    a.intersection(b).count() as f64 / union as f64
}

fn count_hits(hits: &[bool], k: usize) -> usize {
    hits.iter().take(k).filter(|hit| **hit).count()
}

fn discount(rank: usize) -> f64 {
    1.0 / ((rank + 2) as f64).log2()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPSILON: f64 = 1e-12;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < EPSILON
    }

    #[test]
    fn precision_counts_missing_slots_as_misses() {
        assert!(close(precision_at_k(&[true, false, true], 4), 0.5));
        assert!(close(precision_at_k(&[true, true, true], 2), 1.0));
        assert!(close(precision_at_k(&[], 5), 0.0));
    }

    #[test]
    fn recall_is_undefined_without_relevant_items() {
        assert_eq!(recall_at_k(&[false, false], 2, 0), None);
        assert_eq!(recall_at_k(&[true, false, true], 3, 4), Some(0.5));
    }

    #[test]
    fn recall_reaches_one_when_k_exceeds_the_corpus() {
        // Three relevant items, all found, in a list shorter than k.
        assert_eq!(recall_at_k(&[true, true, false, true], 100, 3), Some(1.0));
    }

    #[test]
    fn ndcg_matches_a_hand_computed_list() {
        // Hits at ranks 1 and 3 of 3, two relevant items in all:
        // DCG = 1/log2(2) + 1/log2(4) = 1.5; IDCG = 1/log2(2) + 1/log2(3) = 1.6309297535714575.
        let ndcg = ndcg_at_k(&[true, false, true], 3, 2).unwrap();
        assert!(close(ndcg, 1.5 / (1.0 + 1.0 / 3f64.log2())));
        assert!(close(ndcg, 0.9197207891481876));
    }

    #[test]
    fn ndcg_ideal_is_capped_by_k_and_by_the_relevant_set() {
        assert_eq!(ndcg_at_k(&[true, true], 2, 10), Some(1.0));
        assert_eq!(ndcg_at_k(&[true, false, false], 3, 1), Some(1.0));
        assert_eq!(ndcg_at_k(&[false, true], 2, 0), None);
        assert_eq!(ndcg_at_k(&[], 5, 3), Some(0.0));
    }

    #[test]
    fn reciprocal_rank_uses_the_first_hit_only() {
        assert!(close(reciprocal_rank(&[false, false, true, true]), 1.0 / 3.0));
        assert!(close(reciprocal_rank(&[true]), 1.0));
        assert!(close(reciprocal_rank(&[false, false]), 0.0));
        assert!(close(reciprocal_rank(&[]), 0.0));
    }

    #[test]
    fn percentile_uses_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.5), 50.0);
        assert_eq!(percentile(&values, 0.99), 99.0);
        assert_eq!(percentile(&[3.0], 0.99), 3.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn median_averages_the_middle_pair() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(Vec::new()), None);
    }

    #[test]
    fn jaccard_ignores_case_and_repetition() {
        let a = word_set("Der Hund  bellt der Hund");
        let b = word_set("der hund schläft");
        assert!(close(jaccard(&a, &b), 2.0 / 4.0));
        assert!(close(jaccard(&word_set(""), &word_set("")), 0.0));
    }
}
