//! Exact nearest neighbours by scanning every stored vector: the recall oracle, and the faster choice for
//! small or heavily filtered candidate sets.

use std::sync::Arc;

use super::{Neighbor, NeighborIndex, Slot, rank_neighbors};
use crate::sparse::SparseVector;

/// Brute-force cosine search over a shared vector table.
pub struct ExactIndex {
    vectors: Arc<Vec<SparseVector>>,
}

impl ExactIndex {
    /// An index over `vectors`; slot `i` is `vectors[i]`.
    pub fn new(vectors: Arc<Vec<SparseVector>>) -> Self {
        Self { vectors }
    }
}

impl ExactIndex {
    /// The `k` vectors among `slots` most similar to `query`, ranked like [`NeighborIndex::search`].
    pub fn search_among(&self, query: &SparseVector, slots: &[Slot], k: usize) -> Vec<Neighbor> {
        let hits = slots
            .iter()
            .map(|&slot| Neighbor {
                slot,
                similarity: query.dot(&self.vectors[slot as usize]),
            })
            .collect();
        rank_neighbors(hits, k)
    }
}

impl NeighborIndex for ExactIndex {
    fn search(&self, query: &SparseVector, k: usize, accept: &dyn Fn(Slot) -> bool) -> Vec<Neighbor> {
        let hits = self
            .vectors
            .iter()
            .enumerate()
            .filter(|&(slot, _)| accept(slot as Slot))
            .map(|(slot, vector)| Neighbor {
                slot: slot as Slot,
                similarity: query.dot(vector),
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
        assert_eq!(slots, vec![0, 1, 2]);
        assert!((hits[0].similarity - 1.0).abs() < 1e-6);
    }
}
