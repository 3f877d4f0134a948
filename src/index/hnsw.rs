//! Approximate nearest neighbours with an HNSW graph (hnsw_rs) over the articles' dense projections
//! ([`crate::projection`]), compared with hnsw_rs's SIMD dot-product distance (`DistDot`, feature
//! `simdeez_f`).
//!
//! **Why the graph stores slots, not vectors.** hnsw_rs would keep a `Vec<f32>` of its own per point. Each
//! graph point holds a single [`Slot`] instead and the distance, [`SlotDot`], reads the vectors from the
//! shared flat table ([`DenseVectors`]): the vectors exist once, in one allocation, and the dump stays small
//! and fixed-size. A query vector that is not in the table travels in a thread-local under the reserved slot
//! [`QUERY_SLOT`]; hnsw_rs runs one search on the calling thread, so the distance finds it there.
//!
//! Our names map to hnsw_rs's as: `m` = `max_nb_connection`, `ef_construction` = `ef_construction`,
//! `ef_search` = the `ef_arg` of `search_filter`, `max_layer` = `max_layer` (`NB_LAYER_MAX` caps it at 16).
//!
//! hnsw_rs seeds its layer sampler with a fixed constant, so with serial insertion the graph depends only
//! on the insertion order, which [`HnswParams::seed`] fixes by a seeded shuffle. Parallel insertion, the
//! default, uses every core and gives a slightly different graph each time; the manifest records which.

use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;

use hnsw_rs::anndists::dist::{DistDot, Distance};
use hnsw_rs::api::AnnT;
use hnsw_rs::hnsw::Hnsw;
use hnsw_rs::hnswio::HnswIo;
use indicatif::ProgressBar;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::{Neighbor, Slot, rank_neighbors};
use crate::error::{Error, Result};
use crate::projection::DenseVectors;

/// Reserved slot that stands for the current thread's query vector.
const QUERY_SLOT: Slot = Slot::MAX;

/// hnsw_rs exits the process for more connections than this; we reject such settings first.
const MAX_M: usize = 256;

/// Layers of the graph (hnsw_rs caps this at 16).
const MAX_LAYER: usize = 16;

/// Points handed to one `parallel_insert_slice` call, so that the progress bar moves during a long build.
const PARALLEL_CHUNK: usize = 10_000;

thread_local! {
    static QUERY: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Default `m`. With the graph as one of two candidate sources re-ranked exactly, `m` 16 and
/// `ef_construction` 64 kept the same recall@10 as 24 and 200 on the generated 10,000-article archive
/// (0.998 either way, `weitere eval --label story --search hnsw`) and built 20 % faster.
pub const DEFAULT_M: usize = 16;
/// Default `ef_construction`. On the generated 100,000-article archive (2026-12-02, 2 cores) the graph over
/// 256 dimensions took 96 s with 100 and 44 s with 40, for recall@10 (after re-ranking, with the pruned
/// postings scan beside the graph) of 0.977 and 0.970; over 128 dimensions with 40, 35 s and 0.969. The
/// graph is the largest phase at a million articles (695 of 1,002 s), and 24 builds it a third faster
/// there (461 s), but below 2 × `m` hnsw_rs keeps more links per point: the 1M graph file grew from 303 to
/// 670 MB, serving memory by 1.5 KB per article and the open by about 12 s, for recall@10 0.907 against
/// 0.911 (100k: 24 and 32 gave graph files of 68 and 76 MB against 31 MB with 40). So 40 it is.
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
        match (a[0], b[0]) {
            (QUERY_SLOT, stored) | (stored, QUERY_SLOT) => {
                QUERY.with_borrow(|query| DistDot.eval(query, self.dense.row(stored as usize)))
            }
            (a, b) => DistDot.eval(self.dense.row(a as usize), self.dense.row(b as usize)),
        }
    }
}

type SlotGraph<'a> = Hnsw<'a, Slot, SlotDot>;

self_cell::self_cell!(
    /// A graph reloaded from a dump, kept together with the loader it borrows from (hnsw_rs issue #19).
    struct LoadedGraph {
        owner: HnswIo,
        #[not_covariant]
        dependent: SlotGraph,
    }
);

enum Graph {
    Built(SlotGraph<'static>),
    Loaded(LoadedGraph),
}

/// HNSW graph over a shared table of dense vectors.
pub struct HnswIndex {
    graph: Graph,
    params: HnswParams,
}

impl HnswIndex {
    /// Builds the graph over every vector of `vectors`; `progress` advances once per inserted point.
    pub fn build(vectors: Arc<DenseVectors>, params: HnswParams, progress: &ProgressBar) -> Result<Self> {
        params.validate()?;
        let distance = SlotDot {
            dense: Arc::clone(&vectors),
        };
        let mut graph = Hnsw::new(
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
        graph.set_searching_mode(true);
        Ok(Self {
            graph: Graph::Built(graph),
            params,
        })
    }

    /// Writes the graph as `{basename}.hnsw.graph` and `{basename}.hnsw.data` into `dir`; returns both paths.
    pub fn save(&self, dir: &Path, basename: &str) -> Result<[std::path::PathBuf; 2]> {
        let dumped = match &self.graph {
            Graph::Built(graph) => graph.file_dump(dir, basename),
            Graph::Loaded(loaded) => loaded.with_dependent(|_, graph| graph.file_dump(dir, basename)),
        }
        .map_err(|err| Error::Index(format!("cannot write graph to {}: {err}", dir.display())))?;
        if dumped != basename {
            return Err(Error::Index(format!(
                "graph written as {dumped:?}, expected {basename:?}"
            )));
        }
        Ok(graph_files(dir, basename))
    }

    /// Reloads a graph written by [`HnswIndex::save`]. hnsw_rs exits the process on some damaged dumps and
    /// panics on others, so the files are checked first (the caller verifies their checksums; the data file
    /// is also parsed here, since a dump with a matching checksum can still be wrong), a panic inside
    /// hnsw_rs is caught, and every loaded point and link must name a slot of `vectors`. Any failure is
    /// [`Error::CorruptSnapshot`].
    pub fn load(dir: &Path, basename: &str, vectors: Arc<DenseVectors>, params: HnswParams) -> Result<Self> {
        params.validate()?;
        let point_count = vectors.len();
        let [graph_path, data_path] = graph_files(dir, basename);
        check_data_file(&data_path, point_count)?;
        let distance = SlotDot { dense: vectors };
        let loading = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            LoadedGraph::try_new(HnswIo::new(dir, basename), |io| io.load_hnsw_with_dist(distance))
        }));
        let corrupt = |reason: String| Error::CorruptSnapshot {
            path: graph_path.clone(),
            reason,
        };
        let mut loaded = match loading {
            Ok(Ok(loaded)) => loaded,
            Ok(Err(err)) => return Err(corrupt(format!("hnsw_rs cannot load it: {err}"))),
            Err(_) => return Err(corrupt("hnsw_rs panicked while loading it".into())),
        };
        let graph_points = loaded.with_dependent_mut(|_, graph| {
            graph.set_searching_mode(true);
            graph.get_nb_point()
        });
        if graph_points != point_count {
            return Err(corrupt(format!(
                "{graph_points} points, the snapshot has {point_count} vectors"
            )));
        }
        loaded
            .with_dependent(|_, graph| check_links(graph, point_count))
            .map_err(corrupt)?;
        Ok(Self {
            graph: Graph::Loaded(loaded),
            params,
        })
    }

    /// The parameters the index was built with.
    pub fn params(&self) -> &HnswParams {
        &self.params
    }

    /// Up to `n` stored vectors nearest to the dense `query`, with a candidate list of `ef_search` (at
    /// least `n`); similarity is the dense cosine. The walk stops early, as HNSW does.
    pub fn search_unfiltered(&self, query: &[f32], n: usize, ef_search: usize) -> Vec<Neighbor> {
        self.walk(query, n, ef_search, None)
    }

    /// Up to `n` stored vectors nearest to the dense `query` among the slots `accept` lets through. hnsw_rs
    /// checks the filter inside the walk and then never stops early, so this visits most of the graph:
    /// for when [`HnswIndex::search_unfiltered`] found too few accepted vectors.
    pub fn search(&self, query: &[f32], n: usize, ef_search: usize, accept: &dyn Fn(Slot) -> bool) -> Vec<Neighbor> {
        let filter = |id: &usize| accept(*id as Slot);
        self.walk(query, n, ef_search, Some(&filter))
    }

    fn walk(
        &self,
        query: &[f32],
        n: usize,
        ef_search: usize,
        filter: Option<&dyn hnsw_rs::filter::FilterT>,
    ) -> Vec<Neighbor> {
        QUERY.with_borrow_mut(|current| {
            current.clear();
            current.extend_from_slice(query);
        });
        let ef = ef_search.max(n);
        let found = match &self.graph {
            Graph::Built(graph) => graph.search_filter(&[QUERY_SLOT], n, ef, filter),
            Graph::Loaded(loaded) => {
                loaded.with_dependent(|_, graph| graph.search_filter(&[QUERY_SLOT], n, ef, filter))
            }
        };
        let hits = found
            .into_iter()
            .map(|neighbour| Neighbor {
                slot: neighbour.get_origin_id() as Slot,
                similarity: 1.0 - neighbour.get_distance(),
            })
            .collect();
        rank_neighbors(hits, n)
    }
}

/// Names of the two files hnsw_rs writes for `basename`.
pub fn graph_file_names(basename: &str) -> [String; 2] {
    [format!("{basename}.hnsw.graph"), format!("{basename}.hnsw.data")]
}

fn graph_files(dir: &Path, basename: &str) -> [std::path::PathBuf; 2] {
    graph_file_names(basename).map(|name| dir.join(name))
}

/// Magic number of hnsw_rs's data file and of each point in it (`hnswio::MAGICDATAP`).
const DATA_MAGIC: u32 = 0xa67f_0000;

/// Parses the data file hnsw_rs wrote — `magic, dimension`, then per point `magic, origin id, byte length,
/// bytes`, native-endian — and checks that it holds `point_count` points of one in-range [`Slot`] each.
/// hnsw_rs itself exits or allocates whatever length a damaged file claims.
fn check_data_file(path: &Path, point_count: usize) -> Result<()> {
    let bytes = std::fs::read(path).map_err(|err| Error::io(path, err))?;
    let corrupt = |reason: String| Error::CorruptSnapshot {
        path: path.to_owned(),
        reason,
    };
    let mut rest = bytes.as_slice();
    let mut take = |len: usize, what: &str| -> Result<&[u8]> {
        if rest.len() < len {
            return Err(corrupt(format!("ends inside {what}")));
        }
        let (taken, after) = rest.split_at(len);
        rest = after;
        Ok(taken)
    };
    let u32_at = |bytes: &[u8]| u32::from_ne_bytes(bytes.try_into().expect("four bytes"));
    let u64_at = |bytes: &[u8]| u64::from_ne_bytes(bytes.try_into().expect("eight bytes"));
    if u32_at(take(4, "the header")?) != DATA_MAGIC {
        return Err(corrupt("not an hnsw_rs data file (wrong magic number)".into()));
    }
    let dimension = u64_at(take(8, "the header")?);
    if dimension != 1 {
        return Err(corrupt(format!("dimension {dimension}, expected 1 slot per point")));
    }
    for point in 0..point_count {
        if u32_at(take(4, "a point")?) != DATA_MAGIC {
            return Err(corrupt(format!("point {point} has a wrong magic number")));
        }
        let origin = u64_at(take(8, "a point")?);
        let length = u64_at(take(8, "a point")?);
        if length != std::mem::size_of::<Slot>() as u64 {
            return Err(corrupt(format!(
                "point {point} holds {length} bytes, expected one slot"
            )));
        }
        let slot = u32_at(take(4, "a point")?);
        if origin >= point_count as u64 || u64::from(slot) != origin {
            return Err(corrupt(format!(
                "point {point} names slot {slot} (origin {origin}) of {point_count}"
            )));
        }
    }
    if !rest.is_empty() {
        return Err(corrupt(format!("{} bytes after the last point", rest.len())));
    }
    Ok(())
}

/// Checks that every point of a loaded graph and every link names a slot below `point_count`, so that no
/// search can index outside the vector table.
fn check_links(graph: &SlotGraph<'_>, point_count: usize) -> std::result::Result<(), String> {
    for point in graph.get_point_indexation() {
        let slot = point.get_v().first().copied().unwrap_or(Slot::MAX) as usize;
        if point.get_origin_id() >= point_count || slot != point.get_origin_id() {
            return Err(format!("a point names slot {slot} of {point_count}"));
        }
        for layer in point.get_neighborhood_id() {
            if let Some(link) = layer.iter().find(|link| link.d_id >= point_count) {
                return Err(format!("a link names slot {} of {point_count}", link.d_id));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_damaged_data_file_with_a_valid_layout_is_refused_not_fatal() {
        let table = vectors(50);
        let params = serial().m(4);
        let index = HnswIndex::build(Arc::clone(&table), params.clone(), &ProgressBar::hidden()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let [_, data] = index.save(dir.path(), "graph").unwrap();
        let pristine = std::fs::read(&data).unwrap();
        // The first point's byte length (header 12 bytes, then magic 4 and origin 8).
        let mut huge_length = pristine.clone();
        huge_length[24..32].copy_from_slice(&u64::MAX.to_ne_bytes());
        // The first point's slot, out of range.
        let mut bad_slot = pristine.clone();
        bad_slot[32..36].copy_from_slice(&999u32.to_ne_bytes());
        for (case, bytes) in [
            ("length", huge_length),
            ("slot", bad_slot),
            ("truncated", pristine[..40].to_vec()),
        ] {
            std::fs::write(&data, bytes).unwrap();
            let err = HnswIndex::load(dir.path(), "graph", Arc::clone(&table), params.clone())
                .err()
                .unwrap_or_else(|| panic!("{case}: a damaged graph loaded"));
            assert!(matches!(err, Error::CorruptSnapshot { .. }), "{case}: {err}");
        }
        std::fs::write(&data, pristine).unwrap();
        assert!(HnswIndex::load(dir.path(), "graph", table, params).is_ok());
    }

    #[test]
    fn serial_insertion_with_one_seed_gives_one_graph_and_the_dump_round_trips() {
        let table = vectors(200);
        let params = serial().ef_search(16).m(4);
        let first = HnswIndex::build(Arc::clone(&table), params.clone(), &ProgressBar::hidden()).unwrap();
        let second = HnswIndex::build(Arc::clone(&table), params.clone(), &ProgressBar::hidden()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        first.save(dir.path(), "graph").unwrap();
        let reloaded = HnswIndex::load(dir.path(), "graph", Arc::clone(&table), params).unwrap();
        for probe in 0..200 {
            let query = table.row(probe);
            let expected = first.search(query, 5, 16, &|_| true);
            assert_eq!(second.search(query, 5, 16, &|_| true), expected, "probe {probe}");
            assert_eq!(reloaded.search(query, 5, 16, &|_| true), expected, "probe {probe}");
        }
    }
}
