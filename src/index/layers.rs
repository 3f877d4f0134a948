//! The HNSW graph as flat arrays, and the search over it. [`HnswIndex`](super::HnswIndex) builds the graph
//! with hnsw_rs and copies its links into [`GraphLayers`]; from then on the graph is searched, written and
//! read here, and hnsw_rs's own structure is dropped.
//!
//! **Why not search hnsw_rs's graph.** hnsw_rs keeps, per point, a `Vec` for each of its 16 layers behind
//! a lock and an `Arc` per link, and reloads a dump point by point: at a million articles that took about
//! 20 s to open and most of the serving memory left beside the vectors. Here a link is one [`Slot`]. Each
//! layer is one CSR block: layer 0 holds every slot and is indexed by it; an upper layer holds about one
//! point in `m` of the layer below, listed in ascending order and found by binary search. The file is read
//! straight into those arrays ([`crate::flat_file`]), and a search reuses per-thread scratch (a visited
//! bitset and two heaps) instead of allocating.
//!
//! The search is the one of the HNSW paper (Malkov and Yashunin, algorithms 2 and 5): a greedy walk down the
//! upper layers from the entry point, then a best-first search of layer 0 with a list of `ef` results.

use std::cell::RefCell;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::path::Path;

use super::{Neighbor, Slot, rank_neighbors};
use crate::error::Result;
use crate::flat_file::{FlatReader, FlatWriter};
use crate::prefetch::prefetch_slice;
use crate::projection::DenseVectors;

/// Suffix of a snapshot's graph file.
pub const GRAPH_SUFFIX: &str = ".graph.bin";

/// One layer's links in CSR form.
#[derive(Debug, Default, PartialEq)]
struct Layer {
    /// The slots in this layer, ascending; empty in layer 0, which holds every slot.
    members: Vec<Slot>,
    /// `links[offsets[i]..offsets[i + 1]]` are the links of member `i` (of slot `i` in layer 0).
    offsets: Vec<u32>,
    /// Linked slots, nearest first for each member.
    links: Vec<Slot>,
}

impl Layer {
    fn new() -> Self {
        Self {
            offsets: vec![0],
            ..Self::default()
        }
    }

    /// Index of `slot` among the members, if it is one.
    fn position(&self, layer: usize, slot: Slot) -> Option<usize> {
        if layer == 0 {
            Some(slot as usize).filter(|&position| position + 1 < self.offsets.len())
        } else {
            self.members.binary_search(&slot).ok()
        }
    }

    fn links_at(&self, position: usize) -> &[Slot] {
        &self.links[self.offsets[position] as usize..self.offsets[position + 1] as usize]
    }
}

/// The links of an HNSW graph over `point_count` slots, layer by layer.
#[derive(Debug, PartialEq)]
pub struct GraphLayers {
    point_count: usize,
    entry: Slot,
    layers: Vec<Layer>,
}

impl GraphLayers {
    /// Collects the graph from `adjacency(slot)`, called once per slot in ascending order: the slot's links
    /// in each layer it belongs to, layer 0 first, nearest first (every slot is in layer 0, linked or not).
    /// `entry` is where searches start; it must belong to the top layer.
    pub fn from_adjacency(
        point_count: usize,
        entry: Slot,
        mut adjacency: impl FnMut(Slot) -> Vec<Vec<Slot>>,
    ) -> std::result::Result<Self, String> {
        let mut layers: Vec<Layer> = Vec::new();
        for slot in 0..point_count as Slot {
            let mut per_layer = adjacency(slot);
            if per_layer.is_empty() {
                per_layer.push(Vec::new());
            }
            for (layer, links) in per_layer.into_iter().enumerate() {
                if layers.len() == layer {
                    layers.push(Layer::new());
                }
                let target = &mut layers[layer];
                if layer > 0 {
                    target.members.push(slot);
                }
                target.links.extend(links);
                let end = u32::try_from(target.links.len()).map_err(|_| "more than 2^32 links in a layer")?;
                target.offsets.push(end);
            }
        }
        let graph = Self {
            point_count,
            entry,
            layers,
        };
        graph.check()?;
        Ok(graph)
    }

    /// Links stored in all layers.
    #[cfg(test)]
    pub(super) fn link_count(&self) -> usize {
        self.layers.iter().map(|layer| layer.links.len()).sum()
    }

    /// The links of `slot` in `layer`; empty when it is not in that layer.
    fn links(&self, layer: usize, slot: Slot) -> &[Slot] {
        let layer_links = &self.layers[layer];
        match layer_links.position(layer, slot) {
            Some(position) => layer_links.links_at(position),
            None => &[],
        }
    }

    /// Up to `n` slots of `vectors` nearest to the unit vector `query` by dot product, among those `accept`
    /// lets through (all with `None`), with a result list of `ef` (at least `n`). Without a filter the walk
    /// stops once no candidate can improve the list. With one, rejected slots are still walked through but
    /// never listed, so a strict filter makes the walk visit much of the graph.
    pub fn search(
        &self,
        vectors: &DenseVectors,
        query: &[f32],
        n: usize,
        ef: usize,
        accept: Option<&dyn Fn(Slot) -> bool>,
    ) -> Vec<Neighbor> {
        if self.point_count == 0 || n == 0 {
            return Vec::new();
        }
        let similarity = |slot: Slot| dot(query, vectors.row(slot as usize));
        let mut entry = Scored {
            similarity: similarity(self.entry),
            slot: self.entry,
        };
        for layer in (1..self.layers.len()).rev() {
            entry = self.greedy(layer, entry, &similarity);
        }
        SCRATCH.with_borrow_mut(|scratch| {
            let hits = scratch.search_layer0(self, vectors, entry, ef.max(n), &similarity, accept);
            rank_neighbors(hits, n)
        })
    }

    /// Moves from `start` to a linked slot of `layer` nearer the query while there is one.
    fn greedy(&self, layer: usize, start: Scored, similarity: &dyn Fn(Slot) -> f32) -> Scored {
        let mut best = start;
        loop {
            let before = best.slot;
            for &link in self.links(layer, before) {
                let candidate = Scored {
                    similarity: similarity(link),
                    slot: link,
                };
                if candidate > best {
                    best = candidate;
                }
            }
            if best.slot == before {
                return best;
            }
        }
    }

    /// Writes the graph to `path` and syncs the file: the header (slots, layers, entry), each layer's
    /// member and link counts, then per layer its members (upper layers only), offsets and links.
    pub fn write(&self, path: &Path) -> Result<()> {
        let header = [self.point_count as u64, self.layers.len() as u64, u64::from(self.entry)];
        let mut out = FlatWriter::create(path, &header)?;
        let sizes: Vec<u64> = self
            .layers
            .iter()
            .flat_map(|layer| [layer.members.len() as u64, layer.links.len() as u64])
            .collect();
        out.array(&sizes)?;
        for layer in &self.layers {
            out.array(&layer.members)?;
            out.array(&layer.offsets)?;
            out.array(&layer.links)?;
        }
        out.finish()
    }

    /// Reads a graph written by [`GraphLayers::write`] that must link `point_count` slots in at most
    /// `max_layers` layers; returns it with the file's size and CRC-32, for the caller to check against the
    /// manifest. A file that does not describe such a graph is [`crate::error::Error::CorruptSnapshot`].
    pub fn read(path: &Path, point_count: usize, max_layers: usize) -> Result<(Self, u64, u32)> {
        let (mut file, header) = FlatReader::open(path, 3)?;
        let (stored, layer_count) = (header[0], header[1]);
        if stored != point_count as u64 || layer_count > max_layers as u64 || (point_count > 0) != (layer_count > 0) {
            return Err(file.corrupt(format!(
                "holds {stored} points in {layer_count} layers; expected {point_count} points in at most \
                 {max_layers} layers"
            )));
        }
        let entry = Slot::try_from(header[2]).map_err(|_| file.corrupt(format!("entry point {}", header[2])))?;
        let sizes: Vec<u64> = file.array(2 * layer_count as usize)?;
        let mut layers = Vec::with_capacity(layer_count as usize);
        for (layer, size) in sizes.chunks_exact(2).enumerate() {
            let member_count = size[0];
            if (layer == 0 && member_count != 0) || member_count > point_count as u64 {
                return Err(file.corrupt(format!("layer {layer} lists {member_count} members")));
            }
            let rows = if layer == 0 { point_count } else { member_count as usize };
            layers.push(Layer {
                members: file.array(member_count as usize)?,
                offsets: file.array(rows + 1)?,
                links: file.array(usize::try_from(size[1]).unwrap_or(usize::MAX))?,
            });
        }
        let graph = Self {
            point_count,
            entry,
            layers,
        };
        graph.check().map_err(|reason| file.corrupt(reason))?;
        let (length, crc32) = file.finish()?;
        Ok((graph, length, crc32))
    }

    /// Checks what a search relies on: offsets that stay inside the links, members in ascending order and
    /// each in the layer below, links only to slots of their own layer, and an entry in the top layer.
    fn check(&self) -> std::result::Result<(), String> {
        let n = self.point_count;
        for (index, layer) in self.layers.iter().enumerate() {
            let rows = if index == 0 { n } else { layer.members.len() };
            let offsets_fit = layer.offsets.len() == rows + 1
                && layer.offsets[0] == 0
                && layer.offsets.windows(2).all(|pair| pair[0] <= pair[1])
                && layer.offsets[rows] as usize == layer.links.len();
            if !offsets_fit {
                return Err(format!("layer {index}: offsets do not partition its links"));
            }
            if !layer.members.windows(2).all(|pair| pair[0] < pair[1]) {
                return Err(format!("layer {index}: members out of order"));
            }
            if index > 0 {
                let below = &self.layers[index - 1];
                if let Some(slot) = layer
                    .members
                    .iter()
                    .find(|&&slot| below.position(index - 1, slot).is_none())
                {
                    return Err(format!("layer {index}: slot {slot} is missing from the layer below"));
                }
            }
            if let Some(link) = layer.links.iter().find(|&&link| layer.position(index, link).is_none()) {
                return Err(format!(
                    "layer {index}: a link to slot {link}, which is not in the layer"
                ));
            }
        }
        match self.layers.last() {
            Some(top) if top.position(self.layers.len() - 1, self.entry).is_none() => {
                Err(format!("the entry point {} is not in the top layer", self.entry))
            }
            _ => Ok(()),
        }
    }
}

/// A slot with its similarity to the query; orders by similarity, then the lower slot first, so that
/// searches are deterministic.
#[derive(Clone, Copy, Debug)]
struct Scored {
    similarity: f32,
    slot: Slot,
}

impl Ord for Scored {
    fn cmp(&self, other: &Self) -> Ordering {
        self.similarity
            .total_cmp(&other.similarity)
            .then(other.slot.cmp(&self.slot))
    }
}

impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Scored {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Scored {}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// What one search of layer 0 needs besides the graph, kept per thread between searches.
#[derive(Default)]
struct Scratch {
    visited: VisitedSet,
    /// Slots still to expand, most similar on top.
    candidates: BinaryHeap<Scored>,
    /// The best accepted slots so far, least similar on top.
    results: BinaryHeap<Reverse<Scored>>,
}

impl Scratch {
    fn search_layer0(
        &mut self,
        graph: &GraphLayers,
        vectors: &DenseVectors,
        entry: Scored,
        ef: usize,
        similarity: &dyn Fn(Slot) -> f32,
        accept: Option<&dyn Fn(Slot) -> bool>,
    ) -> Vec<Neighbor> {
        let accepted = |slot: Slot| accept.is_none_or(|accept| accept(slot));
        self.visited.clear(graph.point_count);
        self.candidates.clear();
        self.results.clear();
        self.visited.insert(entry.slot);
        self.candidates.push(entry);
        if accepted(entry.slot) {
            self.results.push(Reverse(entry));
        }
        while let Some(current) = self.candidates.pop() {
            let worst = self.results.peek().map(|Reverse(worst)| *worst);
            if self.results.len() >= ef && worst.is_some_and(|worst| current < worst) {
                break;
            }
            let links = graph.links(0, current.slot);
            // The neighbours' vectors lie anywhere in the table: ask for all of them before the first
            // distance, so that their cache misses overlap instead of following one another.
            for &link in links {
                if !self.visited.contains(link) {
                    prefetch_slice(vectors.row(link as usize));
                }
            }
            for &link in links {
                if !self.visited.insert(link) {
                    continue;
                }
                let candidate = Scored {
                    similarity: similarity(link),
                    slot: link,
                };
                let full = self.results.len() >= ef;
                if full && self.results.peek().is_some_and(|Reverse(worst)| candidate < *worst) {
                    continue;
                }
                self.candidates.push(candidate);
                if accepted(link) {
                    self.results.push(Reverse(candidate));
                    if self.results.len() > ef {
                        self.results.pop();
                    }
                }
            }
        }
        self.results
            .drain()
            .map(|Reverse(hit)| Neighbor {
                slot: hit.slot,
                similarity: hit.similarity,
            })
            .collect()
    }
}

/// A set of slots as a bitset, cleared by resetting only the words a search touched.
#[derive(Default)]
struct VisitedSet {
    words: Vec<u64>,
    touched: Vec<usize>,
}

impl VisitedSet {
    /// Empties the set and makes room for slots below `len`.
    fn clear(&mut self, len: usize) {
        for word in self.touched.drain(..) {
            self.words[word] = 0;
        }
        let needed = len.div_ceil(64);
        if self.words.len() < needed {
            self.words.resize(needed, 0);
        }
    }

    /// True when `slot` is in the set.
    fn contains(&self, slot: Slot) -> bool {
        self.words[slot as usize / 64] >> (slot % 64) & 1 == 1
    }

    /// Adds `slot`; false when it was already there.
    fn insert(&mut self, slot: Slot) -> bool {
        let (word, bit) = (slot as usize / 64, 1u64 << (slot % 64));
        let value = &mut self.words[word];
        if *value & bit != 0 {
            return false;
        }
        if *value == 0 {
            self.touched.push(word);
        }
        *value |= bit;
        true
    }
}

/// Dot product of two vectors of one length. Eight running sums let the compiler keep them in SIMD
/// registers (a single sum would have to be added in order).
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (a_chunks, b_chunks) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    let mut sums = [0.0f32; 8];
    for (x, y) in a_chunks.zip(b_chunks) {
        for lane in 0..8 {
            sums[lane] += x[lane] * y[lane];
        }
    }
    sums.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    /// Slots 0..6 on a ring in layer 0; slots 0, 2 and 4 in layer 1; slot 4 alone in layer 2.
    fn ring() -> GraphLayers {
        GraphLayers::from_adjacency(6, 4, |slot| {
            let ring = vec![(slot + 1) % 6, (slot + 5) % 6];
            match slot {
                0 | 2 => vec![ring, vec![if slot == 0 { 2 } else { 4 }]],
                4 => vec![ring, vec![0, 2], vec![]],
                _ => vec![ring],
            }
        })
        .unwrap()
    }

    /// Six unit vectors at angles 0°, 60°, … 300°.
    fn circle() -> DenseVectors {
        let values: Vec<f32> = (0..6)
            .flat_map(|i| {
                let angle = i as f32 * std::f32::consts::PI / 3.0;
                [angle.cos(), angle.sin()]
            })
            .collect();
        DenseVectors::from_flat(2, values).unwrap()
    }

    #[test]
    fn dot_matches_a_plain_sum_for_every_tail_length() {
        for len in [0usize, 1, 7, 8, 9, 16, 131] {
            let a: Vec<f32> = (0..len).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..len).map(|i| (i as f32 * 0.11).cos()).collect();
            let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - plain).abs() < 1e-4, "length {len}");
        }
    }

    #[test]
    fn walks_down_to_the_nearest_slot_and_honours_the_filter() {
        let (graph, vectors) = (ring(), circle());
        // At 50°: slot 1 (60°) is 10° away, slot 0 50°, slot 2 70°, slot 5 110° and slot 3 130°.
        let angle = 50f32.to_radians();
        let query = [angle.cos(), angle.sin()];
        let all = graph.search(&vectors, &query, 3, 6, None);
        assert_eq!(all.iter().map(|hit| hit.slot).collect::<Vec<_>>(), [1, 0, 2]);
        assert!((all[0].similarity - 10f32.to_radians().cos()).abs() < 1e-6);
        let odd = |slot: Slot| slot % 2 == 1;
        let filtered = graph.search(&vectors, &query, 3, 6, Some(&odd));
        assert_eq!(filtered.iter().map(|hit| hit.slot).collect::<Vec<_>>(), [1, 5, 3]);
        assert!(graph.search(&vectors, &query, 0, 6, None).is_empty());
    }

    #[test]
    fn round_trips_through_a_file() {
        let graph = ring();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("g{GRAPH_SUFFIX}"));
        graph.write(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let (read_back, length, crc) = GraphLayers::read(&path, 6, 16).unwrap();
        assert_eq!(read_back, graph);
        assert_eq!((length, crc), (bytes.len() as u64, crc32fast::hash(&bytes)));
        assert_eq!(graph.link_count(), 12 + 4, "the ring, layer 1, nothing in layer 2");
    }

    #[test]
    fn a_graph_that_would_mislead_the_search_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("g{GRAPH_SUFFIX}"));
        ring().write(&path).unwrap();
        let pristine = std::fs::read(&path).unwrap();
        let is_corrupt = |result: Result<(GraphLayers, u64, u32)>| matches!(result, Err(Error::CorruptSnapshot { .. }));
        assert!(is_corrupt(GraphLayers::read(&path, 7, 16)), "another point count");
        assert!(is_corrupt(GraphLayers::read(&path, 6, 2)), "too many layers");
        std::fs::write(&path, &pristine[..pristine.len() - 4]).unwrap();
        assert!(is_corrupt(GraphLayers::read(&path, 6, 16)), "truncated");
        let mut beyond = ring();
        beyond.layers[0].links[3] = 99;
        beyond.write(&path).unwrap();
        assert!(is_corrupt(GraphLayers::read(&path, 6, 16)), "a link beyond the slots");
        let mut lost_entry = ring();
        lost_entry.entry = 1;
        lost_entry.write(&path).unwrap();
        assert!(
            is_corrupt(GraphLayers::read(&path, 6, 16)),
            "an entry outside the top layer"
        );
        let not_in_layer = GraphLayers::from_adjacency(3, 0, |slot| match slot {
            0 => vec![vec![1], vec![1]],
            _ => vec![vec![0]],
        });
        assert!(not_in_layer.unwrap_err().contains("not in the layer"));
    }
}
