//! The inverted index of the exact search: for each term, the slots whose vectors hold it with the weight
//! there, heaviest first (ties to the lower slot), so that a list's prefix holds the articles the term
//! matters most to. One CSR block, like [`VectorTable`]: built from the vectors on all cores at index
//! time and stored in the snapshot (`{generation}.postings.bin`, see [`crate::flat_file`]), so that opening
//! a snapshot maps it instead of rebuilding it. A list's prefix is what the pruned scan reads, so the tails
//! of the long lists stay on disk until an exact scan asks for them.

use std::ops::Range;
use std::path::Path;

use bytemuck::{Pod, Zeroable};
use rayon::prelude::*;

use super::Slot;
use crate::error::Result;
use crate::flat_file::{FlatArray, FlatReader, FlatWriter};
use crate::sparse::TermId;
use crate::vector_table::VectorTable;

/// Suffix of a snapshot's postings file.
pub const POSTINGS_SUFFIX: &str = ".postings.bin";

/// One entry of a posting list.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct Posting {
    /// The article's slot.
    pub slot: Slot,
    /// The term's weight in that article's vector.
    pub weight: f32,
}

/// Every term's posting list, heaviest first.
#[derive(Debug, PartialEq)]
pub struct Postings {
    /// `term_count + 1` entries: term `t`'s list is `offsets[t]..offsets[t + 1]` of `entries`.
    offsets: FlatArray<u64>,
    entries: FlatArray<Posting>,
}

impl Postings {
    /// Inverts `vectors`, whose term ids are below `term_count`. The lists are sized by a counting pass,
    /// filled in slot order and sorted on all cores when `parallel` (not inside a search, which may run in
    /// a rayon task that a nested parallel build could steal from).
    pub fn build(vectors: &VectorTable, term_count: usize, parallel: bool) -> Self {
        let offsets = list_offsets(vectors, term_count);
        let entries = gather(vectors, &offsets, 0..term_count, parallel);
        Self {
            offsets: offsets.into(),
            entries: entries.into(),
        }
    }

    /// Writes the postings of `vectors` to `path`, as [`Postings::build`] and [`Postings::write`] would,
    /// without holding them all: terms are taken in ranges whose lists hold at most `budget` entries
    /// together (a longer list is a range of its own), each range gathered by one pass over the vectors,
    /// sorted on all cores and appended. An index build uses it so that the postings never share memory
    /// with the graph.
    pub fn write_streamed(vectors: &VectorTable, term_count: usize, budget: usize, path: &Path) -> Result<()> {
        let offsets = list_offsets(vectors, term_count);
        let entry_count = offsets[term_count];
        let mut out = FlatWriter::create(path, &[term_count as u64, entry_count])?;
        out.array(&offsets)?;
        let mut first = 0;
        while first < term_count {
            let mut end = first + 1;
            while end < term_count && offsets[end + 1] - offsets[first] <= budget as u64 {
                end += 1;
            }
            out.array(&gather(vectors, &offsets, first..end, true))?;
            first = end;
        }
        out.finish()
    }

    /// The posting list of `term`, heaviest first; empty for a term no vector holds.
    pub fn list(&self, term: TermId) -> &[Posting] {
        match (self.offsets.get(term as usize), self.offsets.get(term as usize + 1)) {
            (Some(&start), Some(&end)) => &self.entries[start as usize..end as usize],
            _ => &[],
        }
    }

    /// Number of terms with a (possibly empty) list.
    pub fn term_count(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Writes the postings to `path` and syncs the file.
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut out = FlatWriter::create(path, &[self.term_count() as u64, self.entries.len() as u64])?;
        out.array(&self.offsets)?;
        out.array(&self.entries)?;
        out.finish()
    }

    /// Reads the postings at `path`, which must point into `slot_count` slots; returns them with the
    /// file's size and CRC-32, for the caller to check against the manifest. Offsets and slots are
    /// checked here, so a damaged file is an error, never a panic later.
    pub fn read(path: &Path, slot_count: usize) -> Result<(Self, u64, u32)> {
        let (mut file, header) = FlatReader::open(path, 2)?;
        let (term_count, entry_count) = (header[0] as usize, header[1] as usize);
        let offsets = file.mapped(term_count.saturating_add(1))?;
        let entries = file.mapped(entry_count)?;
        let postings = Self { offsets, entries };
        if let Some(reason) = postings.shape_error(slot_count) {
            return Err(file.corrupt(reason));
        }
        let (length, crc32) = file.finish()?;
        Ok((postings, length, crc32))
    }

    /// What breaks the postings' invariants, if anything.
    fn shape_error(&self, slot_count: usize) -> Option<String> {
        let spans = self.offsets.first() == Some(&0) && self.offsets.last() == Some(&(self.entries.len() as u64));
        if !spans || self.offsets.windows(2).any(|pair| pair[0] > pair[1]) {
            return Some("offsets do not partition the entries".into());
        }
        if self
            .entries
            .iter()
            .any(|posting| posting.slot as usize >= slot_count || !posting.weight.is_finite())
        {
            return Some(format!(
                "an entry names a slot beyond {slot_count} or a weight that is not finite"
            ));
        }
        None
    }
}

/// Where each term's list starts in the entries (`term_count + 1` offsets), by counting.
fn list_offsets(vectors: &VectorTable, term_count: usize) -> Vec<u64> {
    let mut offsets = vec![0u64; term_count + 1];
    for vector in vectors.iter() {
        for &term in vector.terms() {
            offsets[term as usize + 1] += 1;
        }
    }
    for term in 0..term_count {
        offsets[term + 1] += offsets[term];
    }
    offsets
}

/// The lists of `terms`, one after another, each heaviest first (ties to the lower slot): filled in slot
/// order by one pass over the vectors, then sorted (on all cores when `parallel`).
fn gather(vectors: &VectorTable, offsets: &[u64], terms: Range<usize>, parallel: bool) -> Vec<Posting> {
    let base = offsets[terms.start];
    let mut next: Vec<u64> = offsets[terms.clone()].iter().map(|offset| offset - base).collect();
    let mut entries = vec![Posting { slot: 0, weight: 0.0 }; (offsets[terms.end] - base) as usize];
    for (slot, vector) in vectors.iter().enumerate() {
        for (term, weight) in vector.iter() {
            if let Some(cursor) = (term as usize)
                .checked_sub(terms.start)
                .and_then(|index| next.get_mut(index))
            {
                entries[*cursor as usize] = Posting {
                    slot: slot as Slot,
                    weight,
                };
                *cursor += 1;
            }
        }
    }
    let mut lists = Vec::with_capacity(terms.len());
    let mut rest = entries.as_mut_slice();
    for pair in offsets[terms.start..=terms.end].windows(2) {
        let (list, tail) = rest.split_at_mut((pair[1] - pair[0]) as usize);
        lists.push(list);
        rest = tail;
    }
    let heaviest_first = |list: &mut &mut [Posting]| {
        list.sort_unstable_by(|a, b| b.weight.total_cmp(&a.weight).then(a.slot.cmp(&b.slot)))
    };
    if parallel {
        lists.par_iter_mut().for_each(heaviest_first);
    } else {
        lists.iter_mut().for_each(heaviest_first);
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::sparse::SparseVector;

    fn vectors() -> VectorTable {
        [
            SparseVector::from_pairs(vec![(0, 1.0), (2, 1.0)]),
            SparseVector::from_pairs(vec![(0, 3.0), (2, 1.0)]),
            SparseVector::from_pairs(vec![(2, 1.0)]),
        ]
        .iter()
        .collect()
    }

    #[test]
    fn lists_are_heaviest_first_with_ties_to_the_lower_slot() {
        let postings = Postings::build(&vectors(), 4, true);
        let slots = |term| postings.list(term).iter().map(|p| p.slot).collect::<Vec<_>>();
        assert_eq!(slots(0), [1, 0]);
        assert_eq!(slots(1), [] as [Slot; 0]);
        assert_eq!(slots(2), [2, 0, 1], "slot 2 holds only term 2: weight 1");
        assert!(postings.list(99).is_empty());
        assert_eq!(Postings::build(&vectors(), 4, false), postings);
    }

    #[test]
    fn round_trips_and_refuses_slots_beyond_the_table() {
        let postings = Postings::build(&vectors(), 3, true);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.postings.bin");
        postings.write(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let (read_back, length, crc) = Postings::read(&path, 3).unwrap();
        assert_eq!(read_back, postings);
        assert_eq!((length, crc), (bytes.len() as u64, crc32fast::hash(&bytes)));
        assert!(matches!(Postings::read(&path, 2), Err(Error::CorruptSnapshot { .. })));
        for budget in [0, 1, 2, 100] {
            let streamed = dir.path().join(format!("s{budget}.postings.bin"));
            Postings::write_streamed(&vectors(), 3, budget, &streamed).unwrap();
            assert_eq!(std::fs::read(&streamed).unwrap(), bytes, "budget {budget}");
        }
    }
}
