//! The fresh segment's postings: for each term, the fresh slots whose vector holds it, with its weight
//! there. One append-only store is shared by every version of a delta: a commit appends to it and copies
//! nothing, and each version reads only the slots below its own end, so a query on an older version sees
//! exactly that version's postings while later commits add more.
//!
//! A term's postings are a chain of chunks, newest first. Chunk capacities double from
//! [`FIRST_CHUNK`] to [`LARGEST_CHUNK`], so a rare term wastes little and a frequent one is read in long
//! contiguous runs. Entries are atomics written before the chunk's length is published (release/acquire),
//! so readers never lock and never see a half-written posting.

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::index::Slot;
use crate::sparse::{SparseVector, TermId};

/// Capacity of a term's first chunk.
const FIRST_CHUNK: usize = 2;

/// Capacity chunks stop doubling at.
const LARGEST_CHUNK: usize = 64;

/// Postings of the fresh segment, appended in slot order and shared by all versions of one delta.
#[derive(Default)]
pub struct FreshPostings {
    /// Per term id: 1 + the index of the term's newest chunk in `chunks`, 0 while it has none.
    heads: boxcar::Vec<AtomicU32>,
    chunks: boxcar::Vec<Chunk>,
    /// Held while appending (appends come one at a time); the lowest slot no append has used yet.
    next_slot: Mutex<Slot>,
}

struct Chunk {
    /// `slot << 32 | weight bits`; the first `len` are written.
    entries: Box<[AtomicU64]>,
    len: AtomicU32,
    /// 1 + the index of the term's next older chunk, 0 for its first.
    older: u32,
}

impl Chunk {
    fn new(capacity: usize, first: u64, older: u32) -> Self {
        let entries: Box<[AtomicU64]> = (0..capacity).map(|_| AtomicU64::new(0)).collect();
        entries[0].store(first, Ordering::Relaxed);
        Self {
            entries,
            len: AtomicU32::new(1),
            older,
        }
    }
}

fn pack(slot: Slot, weight: f32) -> u64 {
    (u64::from(slot) << 32) | u64::from(weight.to_bits())
}

fn unpack(entry: u64) -> (Slot, f32) {
    ((entry >> 32) as Slot, f32::from_bits(entry as u32))
}

impl FreshPostings {
    /// Appends `vector`'s terms for one article and returns its slot: `lowest`, or a later one if an
    /// append (by a version since discarded, e.g. a commit that failed) already used `lowest`. Slots
    /// are never reused, so no version reads postings that were not its own.
    pub fn append(&self, lowest: Slot, vector: &SparseVector) -> Slot {
        let mut next_slot = self.next_slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let slot = lowest.max(*next_slot);
        // Burn the slot first: a panic below leaves partial postings only on a slot nobody will use.
        *next_slot = slot + 1;
        for (term, weight) in vector.iter() {
            self.push(term, pack(slot, weight));
        }
        slot
    }

    fn push(&self, term: TermId, entry: u64) {
        let term = term as usize;
        while self.heads.count() <= term {
            self.heads.push(AtomicU32::new(0));
        }
        let head = &self.heads[term];
        let newest = head.load(Ordering::Acquire);
        let mut capacity = FIRST_CHUNK;
        if newest > 0 {
            let chunk = &self.chunks[newest as usize - 1];
            let len = chunk.len.load(Ordering::Relaxed) as usize;
            if len < chunk.entries.len() {
                chunk.entries[len].store(entry, Ordering::Relaxed);
                chunk.len.store(len as u32 + 1, Ordering::Release);
                return;
            }
            capacity = (chunk.entries.len() * 2).min(LARGEST_CHUNK);
        }
        let index = self.chunks.push(Chunk::new(capacity, entry, newest));
        head.store(index as u32 + 1, Ordering::Release);
    }

    /// Calls `visit(slot, weight)` for `term`'s postings on slots below `end`, newest first, at most
    /// `limit` of them.
    pub fn visit_newest(&self, term: TermId, end: Slot, limit: usize, mut visit: impl FnMut(Slot, f32)) {
        let Some(head) = self.heads.get(term as usize) else {
            return;
        };
        let mut next = head.load(Ordering::Acquire);
        let mut left = limit;
        while next > 0 && left > 0 {
            let chunk = &self.chunks[next as usize - 1];
            let len = chunk.len.load(Ordering::Acquire) as usize;
            for entry in chunk.entries[..len].iter().rev() {
                let (slot, weight) = unpack(entry.load(Ordering::Relaxed));
                if slot >= end {
                    continue;
                }
                visit(slot, weight);
                left -= 1;
                if left == 0 {
                    return;
                }
            }
            next = chunk.older;
        }
    }
}

impl fmt::Debug for FreshPostings {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("FreshPostings")
            .field("terms", &self.heads.count())
            .field("chunks", &self.chunks.count())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn postings_of(postings: &FreshPostings, term: TermId, end: Slot, limit: usize) -> Vec<(Slot, f32)> {
        let mut seen = Vec::new();
        postings.visit_newest(term, end, limit, |slot, weight| seen.push((slot, weight)));
        seen
    }

    #[test]
    fn postings_come_back_newest_first_across_chunks() {
        let postings = FreshPostings::default();
        for slot in 10..300 {
            let vector = SparseVector::from_pairs(vec![(3, 1.0), (70_000, 1.0)]);
            assert_eq!(postings.append(slot, &vector), slot);
        }
        let slots = |term, limit| -> Vec<Slot> {
            postings_of(&postings, term, Slot::MAX, limit)
                .into_iter()
                .map(|(slot, _)| slot)
                .collect()
        };
        let newest_first: Vec<Slot> = (10..300).rev().collect();
        assert_eq!(slots(3, usize::MAX), newest_first);
        assert_eq!(slots(3, 100), newest_first[..100]);
        assert_eq!(slots(70_000, usize::MAX), newest_first);
        assert!(slots(4, usize::MAX).is_empty());
        assert!(slots(80_000, usize::MAX).is_empty());
        let weight = postings_of(&postings, 3, Slot::MAX, 1)[0].1;
        assert!((weight - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
    }

    #[test]
    fn a_reader_sees_only_slots_below_its_end() {
        let postings = FreshPostings::default();
        for slot in 0..20 {
            postings.append(slot, &SparseVector::from_pairs(vec![(1, 1.0)]));
        }
        let slots: Vec<Slot> = postings_of(&postings, 1, 12, 5)
            .into_iter()
            .map(|(slot, _)| slot)
            .collect();
        assert_eq!(
            slots,
            [11, 10, 9, 8, 7],
            "the budget counts only the slots the reader may see"
        );
    }

    #[test]
    fn a_used_slot_is_never_handed_out_again() {
        let postings = FreshPostings::default();
        let vector = SparseVector::from_pairs(vec![(1, 1.0)]);
        assert_eq!(postings.append(5, &vector), 5);
        assert_eq!(postings.append(5, &vector), 6, "a discarded version's slot stays used");
        assert_eq!(postings.append(9, &vector), 9);
    }

    #[test]
    fn readers_during_appends_see_whole_postings_in_order() {
        let postings = FreshPostings::default();
        let written = AtomicU32::new(0);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                for slot in 0..20_000 {
                    postings.append(slot, &SparseVector::from_pairs(vec![(slot % 7, 1.0), (9, 1.0)]));
                    written.store(slot + 1, Ordering::Release);
                }
            });
            for _ in 0..2 {
                scope.spawn(|| {
                    while written.load(Ordering::Acquire) < 20_000 {
                        let end = written.load(Ordering::Acquire);
                        let seen = postings_of(&postings, 9, end, usize::MAX);
                        assert_eq!(seen.len(), end as usize, "every slot below the end, once");
                        assert!(
                            seen.iter()
                                .zip((0..end).rev())
                                .all(|(&(slot, _), expected)| slot == expected)
                        );
                    }
                });
            }
        });
    }
}
