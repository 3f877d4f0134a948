//! The search path for large archives: candidates from the HNSW graph over the dense projections and from
//! the query's heaviest terms, re-ranked by the exact sparse cosine, so that scores, floors and explanations
//! mean what they mean on the exact path.
//!
//! **Why two candidate sources.** Measured with `cargo bench --bench candidates` on generated archives
//! (`benches/scale/README.md`, recall@10 against the full exact scan, 1,000 sources). At 100,000 articles
//! the 200 nearest LSA projections (256 dimensions) alone hold only 0.47 of the exact top 10: the
//! projection keeps topics and loses the rare names a news story is about. A pruned postings scan keeps
//! exactly those names: the query's 64 heaviest terms, each read only through its 256 heaviest postings,
//! 200 candidates kept, holds 0.927 in 0.5 ms. Together they hold 0.979 (0.996 at 10,000 articles); reading
//! 1,024 postings per term instead gives 0.986 for three times the cost. The scan's cost is bounded by
//! terms × postings per term, so it does not grow with the archive; the graph's grows with its logarithm.
//! At 1,000,000 articles such prefixes are not enough: they cover less of each list as
//! the archive grows. Measured there (300 sources, in process, one thread, a throwaway probe over the
//! snapshot of `benches/scale`): 64 terms × 512 postings with 200 kept hold 0.911 (scan 0.40 ms), with the
//! graph's 100 candidates 0.921; 64 × 2,048 with 400 kept hold 0.946 (scan 1.15 ms), with the graph 0.955;
//! 64 × 4,096 hold 0.957 alone for 2.6 ms. Those are the defaults now (0.984 at 100,000). Reading the
//! postings score-at-a-time instead (one budget for all terms, the largest query weight × stored weight
//! first, in chunks of 32) was tried and kept less at every budget: 0.907 for 32,768 postings against
//! 0.911 for 64 × 512, 0.925 for 65,536 against 0.946 for 64 × 2,048 — an article's nearest neighbours
//! share many middling terms rather than a few heavy ones.

use std::sync::Arc;
use std::time::Instant;

use indicatif::ProgressBar;

use super::postings::HEAD_LENGTH;
use super::{ExactIndex, HnswIndex, HnswParams, Neighbor, NeighborIndex, PruneLimits, Slot};
use crate::error::Result;
use crate::projection::{DenseVectors, Projection, ProjectionConfig};
use crate::sparse::SparseVector;
use crate::vector_table::VectorTable;

/// Candidates taken from the graph (at least `k`, and at least `ef_search`). The graph is walked without
/// the filter, which lets the walk stop early, and the filter is applied to what it returns; only when fewer
/// than `k` pass is the graph walked again with the filter inside (slow for a strict filter: the walk then
/// visits much of the graph).
pub const GRAPH_CANDIDATES: usize = 100;
/// How much of the postings the second set of candidates reads.
pub const TERM_PRUNING: PruneLimits = PruneLimits {
    terms: 64,
    postings_per_term: HEAD_LENGTH,
};
/// Candidates taken from the pruned postings scan.
pub const TERM_CANDIDATES: usize = 400;

/// How many candidates [`ApproximateIndex::search_with`] gathers from each source before re-ranking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CandidateLimits {
    /// Candidates taken from the graph (at least `k` and `ef_search` are taken).
    pub graph_candidates: usize,
    /// The graph's search list length.
    pub ef_search: usize,
    /// How much of the postings the pruned scan reads.
    pub pruning: PruneLimits,
    /// Candidates kept from the pruned scan (at least `k`).
    pub term_candidates: usize,
}

impl CandidateLimits {
    /// The defaults ([`GRAPH_CANDIDATES`], [`TERM_PRUNING`], [`TERM_CANDIDATES`]) with this `ef_search`.
    pub fn with_ef_search(ef_search: usize) -> Self {
        Self {
            graph_candidates: GRAPH_CANDIDATES,
            ef_search,
            pruning: TERM_PRUNING,
            term_candidates: TERM_CANDIDATES,
        }
    }
}

/// The graph over dense projections, with the exact index that re-ranks its candidates.
pub struct ApproximateIndex {
    exact: Arc<ExactIndex>,
    projection: Projection,
    dense: Arc<DenseVectors>,
    graph: HnswIndex,
}

impl ApproximateIndex {
    /// Fits the projection on the vectors of `exact` (term ids below `term_count`), projects every vector
    /// and builds the graph over the projections.
    pub fn build(
        exact: Arc<ExactIndex>,
        term_count: usize,
        projection: &ProjectionConfig,
        params: HnswParams,
        progress: &ProgressBar,
    ) -> Result<Self> {
        params.validate()?;
        let (projection, dense) = Self::project(exact.vectors(), term_count, projection)?;
        let dense = Arc::new(dense);
        let graph = HnswIndex::build(Arc::clone(&dense), params, progress)?;
        Ok(Self::from_parts(exact, projection, dense, graph))
    }

    /// Fits the projection on `vectors` (term ids below `term_count`) and projects every one of them: the
    /// first half of [`ApproximateIndex::build`].
    pub fn project(
        vectors: &VectorTable,
        term_count: usize,
        config: &ProjectionConfig,
    ) -> Result<(Projection, DenseVectors)> {
        let started = Instant::now();
        let projection = Projection::fit(vectors, term_count, config)?;
        let fitted = started.elapsed().as_secs_f64();
        let dense = projection.project_all(vectors);
        let projected = started.elapsed().as_secs_f64();
        tracing::info!(
            dimensions = projection.dimensions(),
            terms = projection.term_count(),
            fit_seconds = format!("{fitted:.1}"),
            project_seconds = format!("{:.1}", projected - fitted),
            "fitted the projection and projected every article"
        );
        Ok((projection, dense))
    }

    /// Puts together the parts of a loaded snapshot.
    pub fn from_parts(
        exact: Arc<ExactIndex>,
        projection: Projection,
        dense: Arc<DenseVectors>,
        graph: HnswIndex,
    ) -> Self {
        Self {
            exact,
            projection,
            dense,
            graph,
        }
    }

    /// The fitted projection.
    pub fn projection(&self) -> &Projection {
        &self.projection
    }

    /// The dense projection of every stored vector, slot order.
    pub fn dense(&self) -> &Arc<DenseVectors> {
        &self.dense
    }

    /// The graph.
    pub fn graph(&self) -> &HnswIndex {
        &self.graph
    }

    /// The parameters the graph was built with.
    pub fn params(&self) -> &HnswParams {
        self.graph.params()
    }

    /// Like [`NeighborIndex::search`] with an explicit graph `ef_search` (for recall/latency sweeps).
    pub fn search_with_ef(
        &self,
        query: &SparseVector,
        k: usize,
        ef_search: usize,
        accept: &dyn Fn(Slot) -> bool,
    ) -> Vec<Neighbor> {
        self.search_with(query, k, &CandidateLimits::with_ef_search(ef_search), accept)
    }

    /// Like [`NeighborIndex::search`] with explicit candidate limits (for recall/latency sweeps).
    pub fn search_with(
        &self,
        query: &SparseVector,
        k: usize,
        limits: &CandidateLimits,
        accept: &dyn Fn(Slot) -> bool,
    ) -> Vec<Neighbor> {
        self.search_projected_with(query, &self.projection.project(query), k, limits, accept)
    }

    /// Like [`NeighborIndex::search`] for a query whose projection (by [`ApproximateIndex::projection`])
    /// the caller has already made, so that it is not made again.
    pub fn search_projected(
        &self,
        query: &SparseVector,
        projected: &[f32],
        k: usize,
        accept: &dyn Fn(Slot) -> bool,
    ) -> Vec<Neighbor> {
        let limits = CandidateLimits::with_ef_search(self.graph.params().current_ef_search());
        self.search_projected_with(query, projected, k, &limits, accept)
    }

    fn search_projected_with(
        &self,
        query: &SparseVector,
        projected: &[f32],
        k: usize,
        limits: &CandidateLimits,
        accept: &dyn Fn(Slot) -> bool,
    ) -> Vec<Neighbor> {
        let ef_search = limits.ef_search;
        let wanted = limits.graph_candidates.max(k).max(ef_search);
        let mut candidates: Vec<Slot> = self
            .graph
            .search_unfiltered(projected, wanted, ef_search)
            .iter()
            .map(|hit| hit.slot)
            .filter(|&slot| accept(slot))
            .collect();
        if candidates.len() < k {
            candidates = self
                .graph
                .search(projected, wanted, ef_search, accept)
                .iter()
                .map(|hit| hit.slot)
                .collect();
        }
        let by_terms = self
            .exact
            .search_pruned(query, limits.pruning, limits.term_candidates.max(k), accept);
        candidates.extend(by_terms.iter().map(|hit| hit.slot));
        candidates.sort_unstable();
        candidates.dedup();
        self.exact.search_among(query, &candidates, k)
    }
}

impl NeighborIndex for ApproximateIndex {
    fn search(&self, query: &SparseVector, k: usize, accept: &dyn Fn(Slot) -> bool) -> Vec<Neighbor> {
        self.search_projected(query, &self.projection.project(query), k, accept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vector_table::VectorTable;

    /// Articles on 9 topics (6 shared words each), with a name shared by every 40th article of a topic.
    fn vectors() -> Arc<VectorTable> {
        let vectors: Vec<SparseVector> = (0..600u32)
            .map(|i| {
                let topic = i % 9;
                let mut pairs: Vec<(u32, f32)> = (0..6).map(|w| (topic * 6 + w, 1.0 + ((i + w) % 4) as f32)).collect();
                pairs.push((100 + i % 40, 2.5));
                pairs.push((200 + i, 0.4));
                SparseVector::from_pairs(pairs)
            })
            .collect();
        Arc::new(vectors.iter().collect())
    }

    #[test]
    fn finds_what_the_exact_search_finds_with_the_same_scores() {
        let table = vectors();
        let exact = Arc::new(ExactIndex::new(Arc::clone(&table)));
        let approximate = ApproximateIndex::build(
            Arc::clone(&exact),
            800,
            &ProjectionConfig::default().dimensions(16),
            HnswParams::default(),
            &ProgressBar::hidden(),
        )
        .unwrap();
        let (mut found, mut wanted) = (0, 0);
        for probe in (0..600).step_by(7) {
            let not_probe = |slot: Slot| slot != probe;
            let query = table.get(probe as usize).to_vector();
            let want = exact.search(&query, 10, &not_probe);
            let got = approximate.search(&query, 10, &not_probe);
            assert!(got.iter().all(|hit| hit.slot != probe));
            for hit in &got {
                assert_eq!(hit.similarity, query.view().dot(table.get(hit.slot as usize)));
            }
            wanted += want.len();
            found += want.iter().filter(|hit| got.iter().any(|g| g.slot == hit.slot)).count();
        }
        assert!(found as f64 >= 0.95 * wanted as f64, "recall {found}/{wanted}");
    }
}
