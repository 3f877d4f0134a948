//! Approximate nearest neighbours with an HNSW graph over the articles' dense projections
//! ([`crate::projection`]). hnsw_rs builds the graph, with its SIMD dot-product distance (`DistDot`,
//! feature `simdeez_f`); its links are then copied into flat arrays ([`GraphLayers`]), which are what is
//! searched, written and read, and hnsw_rs's own structure is dropped.
//!
//! **Why the graph stores slots, not vectors.** hnsw_rs would keep a `Vec<f32>` of its own per point. Each
//! point it builds holds a single [`Slot`] instead and the distance, [`SlotDot`], reads the vectors from the
//! shared flat table ([`DenseVectors`]): the vectors exist once, in one allocation.
//!
//! Our names map to hnsw_rs's as: `m` = `max_nb_connection`, `ef_construction` = `ef_construction`,
//! `max_layer` = `max_layer` (`NB_LAYER_MAX` caps it at 16). `ef_search` is the result list of our own
//! search ([`GraphLayers::search`]). A point keeps at most `2 m` links in layer 0 and `m` above, the nearest
//! ones, as the paper's `M_max0` and `M_max`; hnsw_rs can hold more for a while, and also records links
//! in layers above a point's own, which a search never follows and the copy leaves out.
//!
//! hnsw_rs seeds its layer sampler with a fixed constant, so with serial insertion the graph depends only
//! on the insertion order, which [`HnswParams::seed`] fixes by a seeded shuffle. Parallel insertion, the
//! default, uses every core and gives a slightly different graph each time; the manifest records which.

use std::path::Path;
use std::sync::Arc;

use hnsw_rs::anndists::dist::{DistDot, Distance};
use hnsw_rs::hnsw::{Hnsw, Point};
use indicatif::ProgressBar;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::layers::GraphLayers;
use super::{Neighbor, Slot};
use crate::error::{Error, Result};
use crate::projection::DenseVectors;

/// hnsw_rs exits the process for more connections than this; we reject such settings first.
const MAX_M: usize = 256;

/// Layers of the graph (hnsw_rs caps this at 16).
const MAX_LAYER: usize = 16;

/// Points handed to one `parallel_insert_slice` call, so that the progress bar moves during a long build.
const PARALLEL_CHUNK: usize = 10_000;

/// Default `m`. With the graph as one of two candidate sources re-ranked exactly, `m` 16 and
/// `ef_construction` 64 kept the same recall@10 as 24 and 200 on the generated 10,000-article archive
/// (0.998 either way, `weitere eval --label story --search hnsw`) and built 20 % faster.
pub const DEFAULT_M: usize = 16;
/// Default `ef_construction`. Up to `2 m` candidates, hnsw_rs keeps them all as links in layer 0; above
/// that it applies the paper's diversity heuristic, which on the LSA projections keeps about 5 links per
/// point and keeps links between clusters. 24 builds the graph faster (100k generated articles,
/// 2026-12-02: 15.1 s against 26.1 s, recall@10 after re-ranking 0.967 against 0.968; 1M: 324 to 363 s
/// against 667 s), but without the heuristic a parallel build can leave a cluster unreachable: on the
/// clustered table of `agrees_with_a_brute_force_scan_on_a_small_table` the graph missed true
/// neighbours in 4 of 15 parallel builds with 24 and in none of 15 with 40. So 40 it is.
pub const DEFAULT_EF_CONSTRUCTION: usize = 40;
/// Default `ef_search`.
pub const DEFAULT_EF_SEARCH: usize = 128;
/// Default seed of the insertion order.
pub const DEFAULT_SEED: u64 = 0x0057_4549_5445_5245;

/// How points were put into the graph; recorded in the snapshot manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InsertionMode {
    /// One point after another in seeded order: the same input and seed give the same graph.
    Serial,
    /// Across all cores: faster, but the graph differs from run to run.
    Parallel,
}

/// HNSW construction and search parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HnswParams {
    m: usize,
    ef_construction: usize,
    ef_search: usize,
    seed: u64,
    insertion: InsertionMode,
}

impl Default for HnswParams {
    fn default() -> Self {
        Self {
            m: DEFAULT_M,
            ef_construction: DEFAULT_EF_CONSTRUCTION,
            ef_search: DEFAULT_EF_SEARCH,
            seed: DEFAULT_SEED,
            insertion: InsertionMode::Parallel,
        }
    }
}

impl HnswParams {
    /// `m`: links kept per point and layer. More links raise recall and memory; 2 to 256.
    pub fn m(mut self, m: usize) -> Self {
        self.m = m;
        self
    }

    /// `ef_construction`: candidate list size while inserting. Larger builds a better graph, more slowly.
    pub fn ef_construction(mut self, ef_construction: usize) -> Self {
        self.ef_construction = ef_construction;
        self
    }

    /// `ef_search`: candidate list size while searching (at least `k` is used). Larger raises recall and
    /// latency.
    pub fn ef_search(mut self, ef_search: usize) -> Self {
        self.ef_search = ef_search;
        self
    }

    /// Seed of the insertion order; with [`InsertionMode::Serial`] the same seed gives the same graph.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Serial (reproducible) or parallel (faster) insertion.
    pub fn insertion(mut self, insertion: InsertionMode) -> Self {
        self.insertion = insertion;
        self
    }

    /// The current `ef_search`.
    pub fn current_ef_search(&self) -> usize {
        self.ef_search
    }

    /// Checks the parameters before they reach hnsw_rs, which exits the process on some bad values.
    pub fn validate(&self) -> Result<()> {
        if !(2..=MAX_M).contains(&self.m) {
            return Err(Error::invalid("m", format!("must be in 2..={MAX_M}, got {}", self.m)));
        }
        if self.ef_construction == 0 {
            return Err(Error::invalid("ef_construction", "must be at least 1"));
        }
        if self.ef_search == 0 {
            return Err(Error::invalid("ef_search", "must be at least 1"));
        }
        Ok(())
    }
}

/// Dot-product distance (1 − cosine for unit vectors) between the dense vectors of two slots.
#[derive(Clone)]
struct SlotDot {
    dense: Arc<DenseVectors>,
}

impl Distance<Slot> for SlotDot {
    fn eval(&self, a: &[Slot], b: &[Slot]) -> f32 {
        DistDot.eval(self.dense.row(a[0] as usize), self.dense.row(b[0] as usize))
    }
}

/// HNSW graph over a shared table of dense vectors.
pub struct HnswIndex {
    layers: GraphLayers,
    dense: Arc<DenseVectors>,
    params: HnswParams,
}

impl HnswIndex {
    /// Builds the graph over every vector of `vectors`; `progress` advances once per inserted point.
    pub fn build(vectors: Arc<DenseVectors>, params: HnswParams, progress: &ProgressBar) -> Result<Self> {
        params.validate()?;
        let distance = SlotDot {
            dense: Arc::clone(&vectors),
        };
        let graph = Hnsw::new(
            params.m,
            vectors.len().max(1),
            MAX_LAYER,
            params.ef_construction,
            distance,
        );
        let mut order: Vec<Slot> = (0..vectors.len() as Slot).collect();
        order.shuffle(&mut StdRng::seed_from_u64(params.seed));
        match params.insertion {
            InsertionMode::Serial => {
                for slot in &order {
                    graph.insert_slice((std::slice::from_ref(slot), *slot as usize));
                    progress.inc(1);
                }
            }
            InsertionMode::Parallel => {
                for chunk in order.chunks(PARALLEL_CHUNK) {
                    let points: Vec<(&[Slot], usize)> = chunk
                        .iter()
                        .map(|slot| (std::slice::from_ref(slot), *slot as usize))
                        .collect();
                    graph.parallel_insert_slice(&points);
                    progress.inc(points.len() as u64);
                }
            }
        }
        let layers = copy_links(&graph, vectors.len(), params.m)?;
        Ok(Self {
            layers,
            dense: vectors,
            params,
        })
    }

    /// Writes the graph to `path` ([`GraphLayers::write`]) and syncs it.
    pub fn save(&self, path: &Path) -> Result<()> {
        self.layers.write(path)
    }

    /// Reads a graph written by [`HnswIndex::save`] over `vectors`; returns it with the file's size and
    /// CRC-32, for the caller to check against the manifest. A file that does not describe a graph over
    /// exactly these vectors is [`Error::CorruptSnapshot`].
    pub fn load(path: &Path, vectors: Arc<DenseVectors>, params: HnswParams) -> Result<(Self, u64, u32)> {
        params.validate()?;
        let (layers, length, crc32) = GraphLayers::read(path, vectors.len(), MAX_LAYER)?;
        let index = Self {
            layers,
            dense: vectors,
            params,
        };
        Ok((index, length, crc32))
    }

    /// The parameters the index was built with.
    pub fn params(&self) -> &HnswParams {
        &self.params
    }

    /// Up to `n` stored vectors nearest to the dense `query`, with a result list of `ef_search` (at least
    /// `n`); similarity is the dense cosine. The walk stops early, as HNSW does.
    pub fn search_unfiltered(&self, query: &[f32], n: usize, ef_search: usize) -> Vec<Neighbor> {
        self.layers.search(&self.dense, query, n, ef_search, None)
    }

    /// Up to `n` stored vectors nearest to the dense `query` among the slots `accept` lets through. Rejected
    /// slots are walked through but not listed, so a strict filter makes this visit much of the graph: for
    /// when [`HnswIndex::search_unfiltered`] found too few accepted vectors.
    pub fn search(&self, query: &[f32], n: usize, ef_search: usize, accept: &dyn Fn(Slot) -> bool) -> Vec<Neighbor> {
        self.layers.search(&self.dense, query, n, ef_search, Some(accept))
    }
}

/// Copies the links of every point of `graph` into flat layers: per point, the layers up to its own level,
/// at most `2 m` links in layer 0 and `m` above, nearest first.
fn copy_links(graph: &Hnsw<'_, Slot, SlotDot>, point_count: usize, m: usize) -> Result<GraphLayers> {
    let copy_failed = |reason| Error::Index(format!("hnsw_rs built a graph that cannot be copied: {reason}"));
    if point_count == 0 {
        // hnsw_rs's point iterator panics on a graph without an entry point.
        return GraphLayers::from_adjacency(0, 0, |_| Vec::new()).map_err(copy_failed);
    }
    let indexation = graph.get_point_indexation();
    let mut points: Vec<Option<Arc<Point<'_, Slot>>>> = vec![None; point_count];
    for point in indexation {
        let slot = point.get_origin_id();
        points[slot] = Some(point);
    }
    let top_level = usize::from(indexation.get_max_level_observed());
    let entry = indexation
        .get_layer_iterator(top_level)
        .next()
        .map_or(0, |point| point.get_origin_id() as Slot);
    let adjacency = |slot: Slot| {
        let Some(point) = &points[slot as usize] else {
            return Vec::new();
        };
        let level = usize::from(point.get_point_id().0);
        point
            .get_neighborhood_id()
            .into_iter()
            .take(level + 1)
            .enumerate()
            .map(|(layer, links)| {
                let most = if layer == 0 { 2 * m } else { m };
                links
                    .iter()
                    .filter(|link| link.d_id != slot as usize && usize::from(link.p_id.0) >= layer)
                    .take(most)
                    .map(|link| link.d_id as Slot)
                    .collect()
            })
            .collect()
    };
    GraphLayers::from_adjacency(point_count, entry, adjacency).map_err(copy_failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::rank_neighbors;

    const DIMENSIONS: usize = 16;

    /// Unit vectors around 7 topic directions, generated deterministically.
    fn vectors(count: usize) -> Arc<DenseVectors> {
        let mut values = Vec::with_capacity(count * DIMENSIONS);
        for i in 0..count {
            let mut vector: Vec<f32> = (0..DIMENSIONS)
                .map(|d| ((i * 31 + d * 17) % 23) as f32 / 23.0 * 0.3)
                .collect();
            vector[i % 7] += 2.0;
            vector[7 + i % 5] += 0.7;
            let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
            values.extend(vector.iter().map(|v| v / norm));
        }
        Arc::new(DenseVectors::from_flat(DIMENSIONS, values).unwrap())
    }

    fn brute_force(table: &DenseVectors, query: &[f32], n: usize, accept: &dyn Fn(Slot) -> bool) -> Vec<Neighbor> {
        let hits = (0..table.len() as Slot)
            .filter(|&slot| accept(slot))
            .map(|slot| Neighbor {
                slot,
                similarity: 1.0 - DistDot.eval(query, table.row(slot as usize)),
            })
            .collect();
        rank_neighbors(hits, n)
    }

    fn serial() -> HnswParams {
        HnswParams::default().insertion(InsertionMode::Serial)
    }

    #[test]
    fn rejects_parameters_that_would_kill_the_process() {
        let err = HnswParams::default().m(300).validate().unwrap_err();
        assert!(err.to_string().contains("m"));
        assert!(HnswParams::default().ef_search(0).validate().is_err());
    }

    #[test]
    fn agrees_with_a_brute_force_scan_on_a_small_table() {
        let table = vectors(300);
        for params in [serial(), HnswParams::default()] {
            let hnsw = HnswIndex::build(Arc::clone(&table), params, &ProgressBar::hidden()).unwrap();
            for probe in [0usize, 17, 123, 299] {
                let query = table.row(probe);
                let accept = |slot: Slot| slot as usize != probe;
                let got = hnsw.search(query, 10, 64, &accept);
                let want = brute_force(&table, query, 10, &accept);
                assert_eq!(got.len(), 10);
                assert!(got.iter().all(|hit| hit.slot as usize != probe));
                let threshold = want[9].similarity - 1e-5;
                assert!(got.iter().all(|hit| hit.similarity >= threshold), "probe {probe}");
            }
        }
    }

    #[test]
    fn keeps_at_most_two_m_links_in_layer_0_and_m_above() {
        let table = vectors(400);
        let m = 4;
        let index = HnswIndex::build(Arc::clone(&table), serial().m(m), &ProgressBar::hidden()).unwrap();
        let layers = &index.layers;
        assert!(layers.link_count() > 0);
        assert!(
            layers.link_count() <= 400 * 2 * m + 400 * m,
            "{} links",
            layers.link_count()
        );
    }

    #[test]
    fn serial_insertion_with_one_seed_gives_one_graph_and_the_file_round_trips() {
        let table = vectors(200);
        let params = serial().ef_search(16).m(4);
        let first = HnswIndex::build(Arc::clone(&table), params.clone(), &ProgressBar::hidden()).unwrap();
        let second = HnswIndex::build(Arc::clone(&table), params.clone(), &ProgressBar::hidden()).unwrap();
        assert_eq!(first.layers, second.layers);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("graph.bin");
        first.save(&path).unwrap();
        let (reloaded, _, _) = HnswIndex::load(&path, Arc::clone(&table), params.clone()).unwrap();
        assert_eq!(reloaded.layers, first.layers);
        for probe in 0..200 {
            let query = table.row(probe);
            let expected = first.search(query, 5, 16, &|_| true);
            assert_eq!(reloaded.search(query, 5, 16, &|_| true), expected, "probe {probe}");
        }
        let other_table = vectors(201);
        let err = HnswIndex::load(&path, other_table, params).err().unwrap();
        assert!(matches!(err, Error::CorruptSnapshot { .. }), "{err}");
    }

    #[test]
    fn an_empty_table_gives_an_empty_graph() {
        let empty = Arc::new(DenseVectors::from_flat(DIMENSIONS, Vec::new()).unwrap());
        let index = HnswIndex::build(empty, serial(), &ProgressBar::hidden()).unwrap();
        assert!(index.search_unfiltered(&[0.0; DIMENSIONS], 5, 16).is_empty());
    }
}
