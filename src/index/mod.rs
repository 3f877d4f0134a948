//! Which stored articles are nearest to a vector? The [`NeighborIndex`] trait with two implementations:
//! [`ExactIndex`], exact cosine search over an inverted index that serves as the oracle, and
//! [`ApproximateIndex`], which re-ranks candidates from [`HnswIndex`] (a graph over dense projections, built
//! by hnsw_rs in the only module that touches it, searched over flat arrays) and from the query's heaviest
//! terms. Recall tests and evaluation measure the second against the first.

mod approximate;
mod exact;
mod hnsw;
mod layers;
mod postings;

pub use approximate::{ApproximateIndex, CandidateLimits, GRAPH_CANDIDATES, TERM_CANDIDATES, TERM_PRUNING};
pub use exact::{ExactIndex, POSTINGS_WRITE_BUDGET, PruneLimits};
pub use hnsw::{
    DEFAULT_EF_CONSTRUCTION, DEFAULT_EF_SEARCH, DEFAULT_M, DEFAULT_SEED, HnswIndex, HnswParams, InsertionMode,
};
pub use layers::GRAPH_SUFFIX;
pub(crate) use layers::dot as dense_dot;
pub use postings::{POSTINGS_SUFFIX, Posting, Postings};

use crate::sparse::SparseVector;

/// Position of an article's vector in the snapshot's vector table.
pub type Slot = u32;

/// One search hit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Neighbor {
    /// The stored vector's slot.
    pub slot: Slot,
    /// Cosine similarity to the query, in [0, 1] for TF-IDF vectors.
    pub similarity: f32,
}

/// A nearest-neighbour index over a fixed table of L2-normalised sparse vectors.
pub trait NeighborIndex: Send + Sync {
    /// Up to `k` stored vectors most similar to `query` among the slots `accept` lets through, most similar
    /// first; ties go to the lower slot, so results are deterministic.
    fn search(&self, query: &SparseVector, k: usize, accept: &dyn Fn(Slot) -> bool) -> Vec<Neighbor>;
}

/// Keeps the best `k` hits, sorted by descending similarity, then ascending slot.
pub fn rank_neighbors(mut hits: Vec<Neighbor>, k: usize) -> Vec<Neighbor> {
    let order = |a: &Neighbor, b: &Neighbor| b.similarity.total_cmp(&a.similarity).then(a.slot.cmp(&b.slot));
    if k == 0 {
        return Vec::new();
    }
    if hits.len() > k {
        hits.select_nth_unstable_by(k - 1, order);
        hits.truncate(k);
    }
    hits.sort_by(order);
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(slot: Slot, similarity: f32) -> Neighbor {
        Neighbor { slot, similarity }
    }

    #[test]
    fn ties_go_to_the_lower_slot_whatever_the_input_order() {
        let hits = vec![hit(9, 0.5), hit(4, 0.7), hit(2, 0.5), hit(7, 0.5), hit(1, 0.1)];
        let slots = |ranked: Vec<Neighbor>| ranked.iter().map(|hit| hit.slot).collect::<Vec<_>>();
        assert_eq!(slots(rank_neighbors(hits.clone(), 3)), [4, 2, 7]);
        assert_eq!(slots(rank_neighbors(hits.clone(), 10)), [4, 2, 7, 9, 1]);
        assert!(rank_neighbors(hits, 0).is_empty());
    }
}
