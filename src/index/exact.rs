//! Exact nearest neighbours: the recall oracle, and the faster choice for small indexes or heavily filtered
//! candidate sets. Vectors sharing no term with the query (similarity 0) are never returned.

use std::cell::RefCell;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use bytemuck::Zeroable;

use super::postings::{Posting, Postings};
use super::{Neighbor, NeighborIndex, Slot, rank_neighbors};
use crate::error::Result;
use crate::flat_file::Residency;
use crate::prefetch::prefetch;
use crate::sparse::{QueryWeights, SparseVector, TermId};
use crate::vector_table::VectorTable;

/// Postings gathered at a time by [`ExactIndex::write_postings`] when none were built: 256 MB.
pub const POSTINGS_WRITE_BUDGET: usize = 32 << 20;

/// How far [`ExactIndex::search_pruned`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PruneLimits {
    /// Query terms used, heaviest first.
    pub terms: usize,
    /// Postings read per term, heaviest first.
    pub postings_per_term: usize,
}

/// Per-thread score accumulator, reused across queries so that a search allocates nothing per posting.
#[derive(Default)]
struct Accumulator {
    /// Partial dot product per slot (of the whole table, or of one block of it); all zero between
    /// searches. Its length only grows.
    scores: Vec<f32>,
    /// Slots (or offsets in the block) whose score is no longer zero, in the first entries (the count is
    /// per block); its length only grows.
    touched: Vec<Slot>,
    /// The touched slots with their scores, ranked before the filter sees them.
    hits: Vec<Neighbor>,
    /// The postings' contributions (`weight × stored weight` in place of the stored weight), grouped by
    /// block of slots, in the order the lists were read within a block.
    staged: Vec<Posting>,
    /// Where each block's contributions end in `staged`.
    block_ends: Vec<usize>,
}

impl Accumulator {
    /// Sums the contributions of `lists` (each with its query weight) into one score per slot of a table of
    /// `slot_count` slots, and puts the slots that scored into `hits`.
    fn add(&mut self, lists: &[(&[Posting], f32)], slot_count: usize) {
        self.hits.clear();
        let postings: usize = lists.iter().map(|(list, _)| list.len()).sum();
        if slot_count > BLOCKED_FROM_SLOTS && postings <= STAGED_POSTINGS_LIMIT {
            self.add_by_block(lists, slot_count, postings);
        } else {
            self.add_directly(lists, slot_count, postings);
        }
    }

    /// Adds straight into one score per slot of the table, asking early for the scores ahead.
    fn add_directly(&mut self, lists: &[(&[Posting], f32)], slot_count: usize, postings: usize) {
        if self.scores.len() < slot_count {
            self.scores.resize(slot_count, 0.0);
        }
        // Room for one write per posting, never more than one per slot and the one after the last.
        self.grow_touched((postings + 1).min(slot_count + 1));
        let mut touched_count = 0;
        for &(list, weight) in lists {
            for (position, posting) in list.iter().enumerate() {
                if let Some(ahead) = list.get(position + PREFETCH_DISTANCE) {
                    prefetch(self.scores.as_ptr().wrapping_add(ahead.slot as usize));
                }
                add_score(
                    &mut self.scores,
                    &mut self.touched,
                    &mut touched_count,
                    posting.slot,
                    weight * posting.weight,
                );
            }
        }
        self.drain(touched_count, 0);
    }

    /// Sorts the contributions by block of [`BLOCK_SLOTS`] slots first (a counting sort), then adds each
    /// block's into scores that stay in the first-level cache.
    fn add_by_block(&mut self, lists: &[(&[Posting], f32)], slot_count: usize, postings: usize) {
        let blocks = slot_count.div_ceil(BLOCK_SLOTS);
        self.block_ends.clear();
        self.block_ends.resize(blocks + 1, 0);
        for (list, _) in lists {
            for posting in list.iter() {
                self.block_ends[block_of(posting.slot) + 1] += 1;
            }
        }
        for block in 1..=blocks {
            self.block_ends[block] += self.block_ends[block - 1];
        }
        // Each block's start, moved to its end as its contributions are placed.
        self.staged.resize(postings, Posting::zeroed());
        for &(list, weight) in lists {
            for posting in list.iter() {
                let next = &mut self.block_ends[block_of(posting.slot)];
                self.staged[*next] = Posting {
                    slot: posting.slot,
                    weight: weight * posting.weight,
                };
                *next += 1;
            }
        }
        if self.scores.len() < BLOCK_SLOTS {
            self.scores.resize(BLOCK_SLOTS, 0.0);
        }
        self.grow_touched((postings + 1).min(BLOCK_SLOTS + 1));
        let mut start = 0;
        for block in 0..blocks {
            let end = self.block_ends[block];
            let mut touched_count = 0;
            for posting in &self.staged[start..end] {
                let offset = posting.slot & BLOCK_MASK;
                add_score(
                    &mut self.scores,
                    &mut self.touched,
                    &mut touched_count,
                    offset,
                    posting.weight,
                );
            }
            self.drain(touched_count, (block * BLOCK_SLOTS) as Slot);
            start = end;
        }
    }

    fn grow_touched(&mut self, room: usize) {
        if self.touched.len() < room {
            self.touched.resize(room, 0);
        }
    }

    /// Moves the first `touched_count` touched scores (of slots `base + offset`) into `hits`, zeroing them.
    fn drain(&mut self, touched_count: usize, base: Slot) {
        for &offset in &self.touched[..touched_count] {
            let similarity = std::mem::take(&mut self.scores[offset as usize]);
            if similarity > 0.0 {
                self.hits.push(Neighbor {
                    slot: base + offset,
                    similarity,
                });
            }
        }
    }
}

/// Adds `contribution` to `scores[offset]`, noting the offset in `touched` if it was zero.
#[inline(always)]
fn add_score(scores: &mut [f32], touched: &mut [Slot], touched_count: &mut usize, offset: Slot, contribution: f32) {
    let score = &mut scores[offset as usize];
    // Noted without a branch: whether a slot is new is a coin toss the predictor loses.
    touched[*touched_count] = offset;
    *touched_count += usize::from(*score == 0.0);
    *score += contribution;
}

/// Slots per block of [`Accumulator::add_by_block`]: 32 KB of scores, within the first-level cache.
const BLOCK_BITS: u32 = 13;
const BLOCK_SLOTS: usize = 1 << BLOCK_BITS;
const BLOCK_MASK: Slot = (1 << BLOCK_BITS) - 1;

fn block_of(slot: Slot) -> usize {
    (slot >> BLOCK_BITS) as usize
}

/// Tables up to this many slots are added into directly: their scores stay in the second-level cache.
const BLOCKED_FROM_SLOTS: usize = 1 << 17;

/// Most postings a search stages by block (16 MB); an exact scan that reads more adds directly.
const STAGED_POSTINGS_LIMIT: usize = 1 << 21;

thread_local! {
    static ACCUMULATOR: RefCell<Accumulator> = RefCell::new(Accumulator::default());
    /// The query's weights while [`ExactIndex::search_among`] runs.
    static QUERY_WEIGHTS: RefCell<QueryWeights> = RefCell::new(QueryWeights::default());
}

/// Exact cosine search over a shared vector table through an inverted index: a query touches only the
/// postings of its own terms, so cost grows with how common its terms are, not with every stored vector's
/// length.
pub struct ExactIndex {
    vectors: Arc<VectorTable>,
    /// Number of term ids the vectors use (the largest + 1).
    term_count: usize,
    /// Built on first use or by [`ExactIndex::prepare`] (a build that only writes a snapshot builds them
    /// just before writing them), or read from a snapshot.
    postings: OnceLock<Postings>,
}

impl ExactIndex {
    /// An index over `vectors`; slot `i` is row `i`. The postings are built at the first search, or
    /// earlier by [`ExactIndex::prepare`].
    pub fn new(vectors: Arc<VectorTable>) -> Self {
        Self {
            term_count: vectors.term_count(),
            vectors,
            postings: OnceLock::new(),
        }
    }

    /// An index over `vectors` with their postings, as a snapshot stores them.
    pub fn with_postings(vectors: Arc<VectorTable>, postings: Postings) -> Self {
        let index = Self {
            term_count: postings.term_count(),
            vectors,
            postings: OnceLock::new(),
        };
        let _ = index.postings.set(postings);
        index
    }

    /// Builds the postings now, on all cores, so that no search waits for them.
    pub fn prepare(&self) {
        self.postings
            .get_or_init(|| Postings::build(&self.vectors, self.term_count, true));
    }

    /// Writes the postings to `path`: the built ones, or, when none were built (an index build that only
    /// writes a snapshot), streamed from the vectors in ranges of at most [`POSTINGS_WRITE_BUDGET`]
    /// entries, so that they are never all in memory.
    pub fn write_postings(&self, path: &Path) -> Result<()> {
        match self.postings.get() {
            Some(postings) => postings.write(path),
            None => Postings::write_streamed(&self.vectors, self.term_count, POSTINGS_WRITE_BUDGET, path),
        }
    }

    /// The postings; built here, on this thread, if nothing built them yet (not on all cores: a search may
    /// run inside a rayon task, where a nested parallel build could steal a search that waits for it).
    pub fn postings(&self) -> &Postings {
        self.postings
            .get_or_init(|| Postings::build(&self.vectors, self.term_count, false))
    }

    /// Hands the pages of mapped vectors and postings back, or maps those the query path reads
    /// ([`Residency`]).
    pub fn set_residency(&self, residency: Residency) -> std::io::Result<()> {
        self.vectors.set_residency(residency)?;
        match self.postings.get() {
            Some(postings) => postings.set_residency(residency),
            None => Ok(()),
        }
    }

    /// The vector table, slot order.
    pub fn vectors(&self) -> &Arc<VectorTable> {
        &self.vectors
    }

    /// The `k` vectors among `slots` most similar to `query`, ranked like [`NeighborIndex::search`]; for
    /// small candidate sets, where a dot product per slot beats walking the postings.
    pub fn search_among(&self, query: &SparseVector, slots: &[Slot], k: usize) -> Vec<Neighbor> {
        QUERY_WEIGHTS.with_borrow_mut(|weights| {
            weights.load(query);
            let mut hits = Vec::with_capacity(slots.len());
            for (position, &slot) in slots.iter().enumerate() {
                if let Some(&ahead) = slots.get(position + ROW_PREFETCH_DISTANCE) {
                    self.vectors.prefetch_row(ahead as usize);
                }
                if let Some(&further) = slots.get(position + 2 * ROW_PREFETCH_DISTANCE) {
                    self.vectors.prefetch_row_bounds(further as usize);
                }
                let similarity = self.vectors.get(slot as usize).dot_with(weights);
                if similarity > 0.0 {
                    hits.push(Neighbor { slot, similarity });
                }
            }
            rank_neighbors(hits, k)
        })
    }

    /// Candidates from a pruned scan: only the query's `limits.terms` heaviest terms (as More-Like-This
    /// picks its query terms), and for each only the first `limits.postings_per_term` entries of its
    /// heaviest-first postings (its "champion list"). Returns the `n` accepted slots with the largest
    /// partial dot product; the cost is bounded by `terms × postings_per_term` whatever the archive's size.
    pub fn search_pruned(
        &self,
        query: &SparseVector,
        limits: PruneLimits,
        n: usize,
        accept: &dyn Fn(Slot) -> bool,
    ) -> Vec<Neighbor> {
        let mut entries: Vec<(TermId, f32)> = query.iter().collect();
        if entries.len() > limits.terms && limits.terms > 0 {
            entries.select_nth_unstable_by(limits.terms - 1, |a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        }
        entries.truncate(limits.terms);
        self.accumulate(entries.into_iter(), limits.postings_per_term, n, accept)
    }

    /// Sums `weight × stored weight` over the first `per_term` postings of each of `entries`, then ranks
    /// the accepted slots.
    fn accumulate(
        &self,
        entries: impl Iterator<Item = (TermId, f32)>,
        per_term: usize,
        n: usize,
        accept: &dyn Fn(Slot) -> bool,
    ) -> Vec<Neighbor> {
        let postings = self.postings();
        let lists: Vec<(&[Posting], f32)> = entries
            .flat_map(|(term, weight)| postings.list(term).prefix(per_term).map(|list| (list, weight)))
            .filter(|(list, _)| !list.is_empty())
            .collect();
        ACCUMULATOR.with_borrow_mut(|accumulator| {
            accumulator.add(&lists, self.vectors.len());
            best_accepted(&mut accumulator.hits, n, accept)
        })
    }
}

/// How many candidates ahead [`ExactIndex::search_among`] asks for a stored vector, and twice as far ahead
/// for where it lies: the candidates are scattered over the whole table, a few cache misses each, and
/// asking early overlaps them (re-ranking 521 candidates at 1M articles: 0.78 → 0.39 ms).
const ROW_PREFETCH_DISTANCE: usize = 4;

/// How many postings ahead [`Accumulator::add_directly`] asks for the score it will add to: the scores are one
/// array over every slot (4 MB at a million articles), so each posting's score is a cache miss, and asking
/// early lets several misses overlap.
const PREFETCH_DISTANCE: usize = 16;

/// The `n` best of `hits` that `accept` lets through, ranked like [`rank_neighbors`]. The filter is asked
/// about the best hits first, in growing batches, so it sees about `n` slots rather than every touched one
/// (it may read the article's metadata: a cache miss each). Reorders `hits`.
fn best_accepted(hits: &mut [Neighbor], n: usize, accept: &dyn Fn(Slot) -> bool) -> Vec<Neighbor> {
    let order = |a: &Neighbor, b: &Neighbor| b.similarity.total_cmp(&a.similarity).then(a.slot.cmp(&b.slot));
    let mut kept = Vec::with_capacity(n.min(hits.len()));
    let (mut start, mut batch) = (0, n.max(8).saturating_mul(2));
    while kept.len() < n && start < hits.len() {
        let rest = &mut hits[start..];
        let end = batch.min(rest.len());
        if end < rest.len() {
            let front = move_best_to_front(rest, end);
            rest[..front].select_nth_unstable_by(end - 1, order);
        }
        rest[..end].sort_unstable_by(order);
        kept.extend(rest[..end].iter().filter(|hit| accept(hit.slot)).take(n - kept.len()));
        start += end;
        batch = batch.saturating_mul(2);
    }
    kept
}

/// Hits from which [`move_best_to_front`] sorts them into buckets first; below, selecting among all of
/// them costs less than clearing and reading the buckets.
const BUCKETED_FROM_HITS: usize = 4_096;

/// Bits of a score's sort key (sign, exponent and the top three bits of the mantissa) that pick its bucket:
/// each bucket spans an eighth of a power of two.
const BUCKET_BITS: u32 = 12;

/// Moves the hits that may be among the `count` best to the front of `hits` and returns how many those are
/// (at least `count`, or all of them): every hit in a bucket above the one that holds the `count`-th best
/// score, and every hit of that bucket. Selecting the best among those alone is the same as among all: a
/// pruned scan touches tens of thousands of slots for a few hundred candidates, and one counting pass and
/// one partitioning pass over them cost less than a selection over all. On the generated 100,000-article
/// archive (14,600 touched slots a query) a `Related` took 7.7 → 7.1 million instructions
/// (`benches/query_cost.rs` under callgrind), but the cycles it saves are fewer, since the counting pass
/// waits on its own stores: the selection's share of a `batch` run's CPU samples went from 7.1 to 5.5 %
/// (`perf`), and `batch`'s CPU time moved within the noise.
fn move_best_to_front(hits: &mut [Neighbor], count: usize) -> usize {
    if hits.len() < BUCKETED_FROM_HITS || count >= hits.len() {
        return hits.len();
    }
    let bucket = |hit: &Neighbor| (sort_key(hit.similarity) >> (u32::BITS - BUCKET_BITS)) as usize;
    let mut sizes = [0u32; 1 << BUCKET_BITS];
    for hit in hits.iter() {
        sizes[bucket(hit)] += 1;
    }
    let mut at_or_above = 0;
    let mut lowest_kept = 0;
    for (index, &size) in sizes.iter().enumerate().rev() {
        at_or_above += size as usize;
        if at_or_above >= count {
            lowest_kept = index;
            break;
        }
    }
    let mut front = 0;
    for position in 0..hits.len() {
        if bucket(&hits[position]) >= lowest_kept {
            hits.swap(front, position);
            front += 1;
        }
    }
    front
}

/// A key whose unsigned order is the order of [`f32::total_cmp`]: a negative value's bits all flipped, a
/// positive value's sign bit set (without a branch: the arithmetic shift spreads the sign bit).
fn sort_key(value: f32) -> u32 {
    let bits = value.to_bits();
    bits ^ (((bits as i32 >> 31) as u32) | 1 << 31)
}

impl NeighborIndex for ExactIndex {
    fn search(&self, query: &SparseVector, k: usize, accept: &dyn Fn(Slot) -> bool) -> Vec<Neighbor> {
        self.accumulate(query.iter(), usize::MAX, k, accept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(vectors: &[SparseVector]) -> Arc<VectorTable> {
        Arc::new(vectors.iter().collect())
    }

    #[test]
    fn finds_the_most_similar_accepted_vectors_in_order() {
        let index = ExactIndex::new(table(&[
            SparseVector::from_pairs(vec![(0, 1.0)]),
            SparseVector::from_pairs(vec![(0, 1.0), (1, 1.0)]),
            SparseVector::from_pairs(vec![(1, 1.0)]),
            SparseVector::from_pairs(vec![(0, 1.0)]),
        ]));
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
    fn the_filter_is_asked_best_first_and_only_as_far_as_needed() {
        let hits: Vec<Neighbor> = (0..1_000u32)
            .map(|slot| Neighbor {
                slot,
                similarity: 1.0 / (1 + slot % 500) as f32,
            })
            .collect();
        let asked = std::cell::Cell::new(0);
        let odd_only = |slot: Slot| {
            asked.set(asked.get() + 1);
            slot % 2 == 1
        };
        let kept = best_accepted(&mut hits.clone(), 5, &odd_only);
        let expected: Vec<Neighbor> = rank_neighbors(hits.iter().copied().filter(|hit| hit.slot % 2 == 1).collect(), 5);
        assert_eq!(kept, expected);
        assert!(asked.get() <= 16, "asked about {} slots", asked.get());
        let none_accepted = best_accepted(&mut hits.clone(), 5, &|_| false);
        assert!(none_accepted.is_empty());
    }

    #[test]
    fn sort_keys_order_like_total_cmp() {
        let values = [
            f32::NEG_INFINITY,
            -2.5,
            -1e-30,
            -0.0,
            0.0,
            1e-30,
            0.25,
            0.2500001,
            3.0,
            f32::INFINITY,
        ];
        for a in values {
            for b in values {
                assert_eq!(sort_key(a).cmp(&sort_key(b)), a.total_cmp(&b), "{a} against {b}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn the_best_accepted_are_those_of_a_full_ranking(
            scores in proptest::collection::vec(0u32..50_000, 0..12_000),
            n in 1usize..600,
            modulus in 1u32..4,
        ) {
            // Scores from a small set of values, so that buckets and ties are crowded.
            let hits: Vec<Neighbor> = scores
                .iter()
                .enumerate()
                .map(|(slot, &score)| Neighbor { slot: slot as Slot, similarity: score as f32 / 50_000.0 })
                .collect();
            let accept = |slot: Slot| slot % modulus == 0;
            let expected = rank_neighbors(hits.iter().copied().filter(|hit| accept(hit.slot)).collect(), n);
            proptest::prop_assert_eq!(best_accepted(&mut hits.clone(), n, &accept), expected);
        }
    }

    #[test]
    fn adding_by_block_scores_exactly_like_adding_directly() {
        let slot_count = 5 * BLOCK_SLOTS + 123;
        let lists: Vec<Vec<Posting>> = (0..7u32)
            .map(|term| {
                (0..900u32)
                    .map(|i| Posting {
                        slot: (i * 7_919 + term * 104_729) % slot_count as Slot,
                        weight: 0.1 + ((i + term) % 13) as f32 / 7.0,
                    })
                    .collect()
            })
            .collect();
        let weighted: Vec<(&[Posting], f32)> = lists
            .iter()
            .zip(1..)
            .map(|(list, term)| (list.as_slice(), 0.3 * term as f32))
            .collect();
        let postings = weighted.iter().map(|(list, _)| list.len()).sum();
        let ranked = |accumulator: &mut Accumulator| rank_neighbors(std::mem::take(&mut accumulator.hits), usize::MAX);
        let mut accumulator = Accumulator::default();
        accumulator.add_directly(&weighted, slot_count, postings);
        let direct = ranked(&mut accumulator);
        accumulator.add_by_block(&weighted, slot_count, postings);
        let by_block = ranked(&mut accumulator);
        assert!(direct.len() > 5_000, "{} slots scored", direct.len());
        assert_eq!(by_block, direct, "the same sums in the same order");
        assert!(
            accumulator.scores.iter().all(|&score| score == 0.0),
            "scores are left zeroed"
        );
    }

    #[test]
    fn prepared_and_lazily_built_postings_answer_alike() {
        let vectors: Vec<SparseVector> = (0..60u32)
            .map(|seed| SparseVector::from_pairs((0..6).map(|i| ((seed * 5 + i * 11) % 30, 1.0 + i as f32)).collect()))
            .collect();
        let lazy = ExactIndex::new(table(&vectors));
        let prepared = ExactIndex::new(table(&vectors));
        prepared.prepare();
        let stored = ExactIndex::with_postings(table(&vectors), Postings::build(&table(&vectors), 30, true));
        for query in &vectors {
            assert_eq!(
                stored.search(query, 10, &|_| true),
                prepared.search(query, 10, &|_| true)
            );
            assert_eq!(lazy.search(query, 10, &|_| true), prepared.search(query, 10, &|_| true));
        }
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
        let index = ExactIndex::new(table(&vectors));
        for query in &vectors {
            let by_postings = index.search(query, 10, &|_| true);
            for hit in &by_postings {
                assert_eq!(hit.similarity, query.dot(&vectors[hit.slot as usize]));
            }
        }
    }

    #[test]
    fn a_pruned_scan_without_limits_is_the_exact_search_and_limits_read_the_heaviest_postings() {
        let index = ExactIndex::new(table(&[
            SparseVector::from_pairs(vec![(0, 1.0), (1, 1.0)]),
            SparseVector::from_pairs(vec![(0, 4.0), (1, 1.0)]),
            SparseVector::from_pairs(vec![(0, 1.0), (2, 3.0)]),
            SparseVector::from_pairs(vec![(1, 1.0), (2, 1.0)]),
        ]));
        let query = SparseVector::from_pairs(vec![(0, 2.0), (1, 1.0)]);
        let unlimited = PruneLimits {
            terms: usize::MAX,
            postings_per_term: usize::MAX,
        };
        assert_eq!(
            index.search_pruned(&query, unlimited, 3, &|_| true),
            index.search(&query, 3, &|_| true)
        );
        let heaviest_term_only = PruneLimits {
            terms: 1,
            postings_per_term: 1,
        };
        let hits = index.search_pruned(&query, heaviest_term_only, 3, &|_| true);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].slot, 1, "term 0 weighs most in slot 1");
    }
}
