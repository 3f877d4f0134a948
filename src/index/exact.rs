//! Exact nearest neighbours: the recall oracle, and the faster choice for small indexes or heavily filtered
//! candidate sets. Vectors sharing no term with the query (similarity 0) are never returned.

use std::sync::Arc;

use super::{Neighbor, NeighborIndex, Slot, rank_neighbors};
use crate::sparse::SparseVector;

/// Exact cosine search over a shared vector table through an inverted index: a query touches only the
/// postings of its own terms, so cost grows with how common its terms are, not with every stored vector's
/// length.
pub struct ExactIndex {
    vectors: Arc<Vec<SparseVector>>,
    /// For each term id, the slots whose vectors contain it, with the weight there.
    postings: Vec<Vec<(Slot, f32)>>,
}

impl ExactIndex {
    /// An index over `vectors`; slot `i` is `vectors[i]`.
    pub fn new(vectors: Arc<Vec<SparseVector>>) -> Self {
        let term_count = vectors
            .iter()
            .flat_map(|vector| vector.iter().map(|(term, _)| term as usize + 1))
            .max()
            .unwrap_or(0);
        let mut postings = vec![Vec::new(); term_count];
        for (slot, vector) in vectors.iter().enumerate() {
            for (term, weight) in vector.iter() {
                postings[term as usize].push((slot as Slot, weight));
            }
        }
        Self { vectors, postings }
    }

    /// The `k` vectors among `slots` most similar to `query`, ranked like [`NeighborIndex::search`]; for
    /// small candidate sets, where a dot product per slot beats walking the postings.
    pub fn search_among(&self, query: &SparseVector, slots: &[Slot], k: usize) -> Vec<Neighbor> {
        let hits = slots
            .iter()
            .map(|&slot| Neighbor {
                slot,
                similarity: query.dot(&self.vectors[slot as usize]),
            })
            .filter(|hit| hit.similarity > 0.0)
            .collect();
        rank_neighbors(hits, k)
    }
}

impl NeighborIndex for ExactIndex {
    fn search(&self, query: &SparseVector, k: usize, accept: &dyn Fn(Slot) -> bool) -> Vec<Neighbor> {
        let mut scores = vec![0.0f32; self.vectors.len()];
        for (term, weight) in query.iter() {
            for &(slot, stored) in self.postings.get(term as usize).map_or(&[][..], Vec::as_slice) {
                scores[slot as usize] += weight * stored;
            }
        }
        let hits = scores
            .into_iter()
            .enumerate()
            .filter(|&(slot, similarity)| similarity > 0.0 && accept(slot as Slot))
            .map(|(slot, similarity)| Neighbor {
                slot: slot as Slot,
                similarity,
            })
            .collect();
        rank_neighbors(hits, k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_most_similar_accepted_vectors_in_order() {
        let vectors = Arc::new(vec![
            SparseVector::from_pairs(vec![(0, 1.0)]),
            SparseVector::from_pairs(vec![(0, 1.0), (1, 1.0)]),
            SparseVector::from_pairs(vec![(1, 1.0)]),
            SparseVector::from_pairs(vec![(0, 1.0)]),
        ]);
        let index = ExactIndex::new(vectors);
        let query = SparseVector::from_pairs(vec![(0, 1.0)]);
        let hits = index.search(&query, 3, &|slot| slot != 3);
        let slots: Vec<Slot> = hits.iter().map(|hit| hit.slot).collect();
        assert_eq!(slots, vec![0, 1], "slot 2 shares no term with the query");
        assert!((hits[0].similarity - 1.0).abs() < 1e-6);
        assert_eq!(
            index.search_among(&query, &[2, 3, 1], 2),
            index.search(&query, 2, &|slot| slot != 0)
        );
    }

    #[test]
    fn postings_score_exactly_like_dot_products() {
        let vectors: Vec<SparseVector> = (0..50u32)
            .map(|seed| {
                SparseVector::from_pairs(
                    (0..8)
                        .map(|i| ((seed * 7 + i * 13) % 40, 1.0 + (seed + i) as f32))
                        .collect(),
                )
            })
            .collect();
        let index = ExactIndex::new(Arc::new(vectors.clone()));
        for query in &vectors {
            let by_postings = index.search(query, 10, &|_| true);
            for hit in &by_postings {
                assert_eq!(hit.similarity, query.dot(&vectors[hit.slot as usize]));
            }
        }
    }
}
