//! The inverted index of the exact search: for each term, the slots whose vectors hold it with the weight
//! there, heaviest first (ties to the lower slot), so that a list's prefix holds the articles the term
//! matters most to. Built from the vectors on all cores at index time and stored in the snapshot
//! (`{generation}.postings.bin`, see [`crate::flat_file`]), so that opening a snapshot maps it instead of
//! rebuilding it.
//!
//! **Heads and tails.** Each list is split after its first [`HEAD_LENGTH`] entries, and the file holds
//! every term's head one after another, then every term's tail: two CSR blocks. The pruned scan of the
//! query path reads exactly the heads, so they stay mapped once read; the tails, which only an exact
//! scan of a large archive reads, are handed back to the page cache after the open. At a million
//! articles the tails are 72 % of the postings, and lying between the heads they were mapped anyway:
//! the kernel maps the page cache in folios of up to 2 MB.

use std::ops::Range;
use std::path::Path;

use bytemuck::{Pod, Zeroable};
use rayon::prelude::*;

use super::Slot;
use crate::error::Result;
use crate::flat_file::{FlatArray, FlatReader, FlatWriter, Residency};
use crate::sparse::TermId;
use crate::vector_table::VectorTable;

/// Suffix of a snapshot's postings file.
pub const POSTINGS_SUFFIX: &str = ".postings.bin";

/// Entries of a list kept in its head: what the pruned scan of the query path reads per term.
pub const HEAD_LENGTH: usize = 2_048;

/// One entry of a posting list.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct Posting {
    /// The article's slot.
    pub slot: Slot,
    /// The term's weight in that article's vector.
    pub weight: f32,
}

/// One term's posting list, heaviest first: its head, then its tail.
#[derive(Clone, Copy, Debug)]
pub struct PostingList<'a> {
    head: &'a [Posting],
    tail: &'a [Posting],
}

impl<'a> PostingList<'a> {
    /// True for a term no vector holds.
    pub fn is_empty(self) -> bool {
        self.head.is_empty()
    }

    /// The first `n` entries, as the part in the head and the part in the tail.
    pub fn prefix(self, n: usize) -> [&'a [Posting]; 2] {
        let tail = n.saturating_sub(self.head.len()).min(self.tail.len());
        [&self.head[..n.min(self.head.len())], &self.tail[..tail]]
    }

    /// Every entry, heaviest first.
    pub fn iter(self) -> impl Iterator<Item = &'a Posting> {
        self.head.iter().chain(self.tail)
    }
}

/// Every term's posting list, heaviest first, as heads and tails.
#[derive(Debug, PartialEq)]
pub struct Postings {
    /// `term_count + 1` entries: term `t`'s head is `head_offsets[t]..head_offsets[t + 1]` of `heads`.
    head_offsets: FlatArray<u64>,
    heads: FlatArray<Posting>,
    /// `term_count + 1` entries: term `t`'s tail is `tail_offsets[t]..tail_offsets[t + 1]` of `tails`.
    tail_offsets: FlatArray<u64>,
    tails: FlatArray<Posting>,
}

impl Postings {
    /// Inverts `vectors`, whose term ids are below `term_count`. The lists are sized by a counting pass,
    /// filled in slot order and sorted on all cores when `parallel` (not inside a search, which may run in
    /// a rayon task that a nested parallel build could steal from).
    pub fn build(vectors: &VectorTable, term_count: usize, parallel: bool) -> Self {
        let offsets = list_offsets(vectors, term_count);
        let entries = gather(vectors, &offsets, 0..term_count, parallel);
        let lists =
            || (0..term_count).map(|term| split_list(&entries[offsets[term] as usize..offsets[term + 1] as usize]));
        let heads: Vec<Posting> = lists().flat_map(|(head, _)| head).copied().collect();
        let tails: Vec<Posting> = lists().flat_map(|(_, tail)| tail).copied().collect();
        let (head_offsets, tail_offsets) = split_offsets(&offsets);
        Self {
            head_offsets: head_offsets.into(),
            heads: heads.into(),
            tail_offsets: tail_offsets.into(),
            tails: tails.into(),
        }
    }

    /// Writes the postings of `vectors` to `path`, as [`Postings::build`] and [`Postings::write`] would,
    /// without holding them all: terms are taken in ranges whose lists hold at most `budget` entries
    /// together (a longer list is a range of its own), each range gathered by one pass over the vectors and
    /// sorted on all cores; the heads are written in one round over the ranges, the tails in a second. An
    /// index build uses it so that the postings never share memory with the graph.
    pub fn write_streamed(vectors: &VectorTable, term_count: usize, budget: usize, path: &Path) -> Result<()> {
        let offsets = list_offsets(vectors, term_count);
        let (head_offsets, tail_offsets) = split_offsets(&offsets);
        let header = [term_count as u64, head_offsets[term_count], tail_offsets[term_count]];
        let mut out = FlatWriter::create(path, &header)?;
        let mut ranges = Vec::new();
        let mut first = 0;
        while first < term_count {
            let mut end = first + 1;
            while end < term_count && offsets[end + 1] - offsets[first] <= budget as u64 {
                end += 1;
            }
            ranges.push(first..end);
            first = end;
        }
        for (part_offsets, tails) in [(&head_offsets, false), (&tail_offsets, true)] {
            out.array(part_offsets)?;
            for terms in &ranges {
                let entries = gather(vectors, &offsets, terms.clone(), true);
                let base = offsets[terms.start];
                for term in terms.clone() {
                    let list = &entries[(offsets[term] - base) as usize..(offsets[term + 1] - base) as usize];
                    let (head, tail) = split_list(list);
                    out.array(if tails { tail } else { head })?;
                }
            }
        }
        out.finish()
    }

    /// The posting list of `term`, heaviest first; empty for a term no vector holds.
    pub fn list(&self, term: TermId) -> PostingList<'_> {
        let part = |offsets: &[u64]| -> Range<usize> {
            match (offsets.get(term as usize), offsets.get(term as usize + 1)) {
                (Some(&start), Some(&end)) => start as usize..end as usize,
                _ => 0..0,
            }
        };
        PostingList {
            head: &self.heads[part(&self.head_offsets)],
            tail: &self.tails[part(&self.tail_offsets)],
        }
    }

    /// Number of terms with a (possibly empty) list.
    pub fn term_count(&self) -> usize {
        self.head_offsets.len() - 1
    }

    /// Writes the postings to `path` and syncs the file.
    pub fn write(&self, path: &Path) -> Result<()> {
        let header = [
            self.term_count() as u64,
            self.heads.len() as u64,
            self.tails.len() as u64,
        ];
        let mut out = FlatWriter::create(path, &header)?;
        out.array(&self.head_offsets)?;
        out.array(&self.heads)?;
        out.array(&self.tail_offsets)?;
        out.array(&self.tails)?;
        out.finish()
    }

    /// Reads the postings at `path`, which must point into `slot_count` slots; returns them with the
    /// file's size and CRC-32, for the caller to check against the manifest. Offsets and slots are
    /// checked here, so a damaged file is an error, never a panic later. The heads stay mapped; the
    /// tails' pages are handed back once checked.
    pub fn read(path: &Path, slot_count: usize) -> Result<(Self, u64, u32)> {
        let (mut file, header) = FlatReader::open(path, 3)?;
        let [term_count, head_count, tail_count] = [0, 1, 2].map(|field| header[field] as usize);
        let offsets_len = term_count.saturating_add(1);
        let head_offsets = file.mapped(offsets_len)?;
        let heads = file.mapped(head_count)?;
        let tail_offsets = file.mapped(offsets_len)?;
        let tails = file.mapped_cold(tail_count)?;
        let postings = Self {
            head_offsets,
            heads,
            tail_offsets,
            tails,
        };
        if let Some(reason) = postings.shape_error(slot_count) {
            return Err(file.corrupt(reason));
        }
        let (length, crc32) = file.finish()?;
        Ok((postings, length, crc32))
    }

    /// Hands the pages of mapped postings back, or maps those the query path reads (all but the tails,
    /// which stay cold either way) ([`Residency`]).
    pub fn set_residency(&self, residency: Residency) -> std::io::Result<()> {
        self.head_offsets.set_residency(residency)?;
        self.heads.set_residency(residency)?;
        self.tail_offsets.set_residency(residency)?;
        if residency == Residency::Cold {
            self.tails.set_residency(residency)?;
        }
        Ok(())
    }

    /// What breaks the postings' invariants, if anything.
    fn shape_error(&self, slot_count: usize) -> Option<String> {
        let partitions = |offsets: &[u64], entries: &[Posting]| {
            offsets.first() == Some(&0)
                && offsets.last() == Some(&(entries.len() as u64))
                && offsets.windows(2).all(|pair| pair[0] <= pair[1])
        };
        if !partitions(&self.head_offsets, &self.heads) || !partitions(&self.tail_offsets, &self.tails) {
            return Some("offsets do not partition the entries".into());
        }
        let term_count = self.term_count();
        let misshapen = (0..term_count).find(|&term| {
            let head = self.head_offsets[term + 1] - self.head_offsets[term];
            let tail = self.tail_offsets[term + 1] - self.tail_offsets[term];
            head > HEAD_LENGTH as u64 || (tail > 0 && head < HEAD_LENGTH as u64)
        });
        if let Some(term) = misshapen {
            return Some(format!("term {term}'s list is not split after {HEAD_LENGTH} entries"));
        }
        if self
            .heads
            .iter()
            .chain(self.tails.iter())
            .any(|posting| posting.slot as usize >= slot_count || !posting.weight.is_finite())
        {
            return Some(format!(
                "an entry names a slot beyond {slot_count} or a weight that is not finite"
            ));
        }
        None
    }
}

/// A list's head (its first [`HEAD_LENGTH`] entries) and its tail.
fn split_list(list: &[Posting]) -> (&[Posting], &[Posting]) {
    list.split_at(list.len().min(HEAD_LENGTH))
}

/// Splits list offsets into the offsets of the heads and of the tails.
fn split_offsets(offsets: &[u64]) -> (Vec<u64>, Vec<u64>) {
    let (mut heads, mut tails) = (vec![0], vec![0]);
    for pair in offsets.windows(2) {
        let length = pair[1] - pair[0];
        let head = length.min(HEAD_LENGTH as u64);
        heads.push(heads.last().unwrap() + head);
        tails.push(tails.last().unwrap() + length - head);
    }
    (heads, tails)
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

    /// Term 0 in every vector (a list with a tail), term 1 in every third (a head only), term 2 in one.
    fn long_lists() -> VectorTable {
        let vectors: Vec<SparseVector> = (0..HEAD_LENGTH as u32 + 700)
            .map(|slot| {
                let mut pairs = vec![(0, 1.0 + (slot % 97) as f32)];
                if slot % 3 == 0 {
                    pairs.push((1, 1.0));
                }
                if slot == 5 {
                    pairs.push((2, 1.0));
                }
                SparseVector::from_pairs(pairs)
            })
            .collect();
        vectors.iter().collect()
    }

    #[test]
    fn long_lists_are_split_after_their_head_and_read_back_whole() {
        let vectors = long_lists();
        let postings = Postings::build(&vectors, 3, true);
        let list = postings.list(0);
        let [head, tail] = list.prefix(usize::MAX);
        assert_eq!((head.len(), tail.len()), (HEAD_LENGTH, 700));
        let weights: Vec<f32> = list.iter().map(|posting| posting.weight).collect();
        assert!(
            weights.windows(2).all(|pair| pair[0] >= pair[1]),
            "heaviest first across the split"
        );
        let [head, tail] = list.prefix(HEAD_LENGTH + 10);
        assert_eq!((head.len(), tail.len()), (HEAD_LENGTH, 10));
        assert_eq!(list.prefix(5)[1], [] as [Posting; 0]);
        assert_eq!(postings.list(1).prefix(usize::MAX)[1], [] as [Posting; 0]);
        assert_eq!(postings.list(2).iter().count(), 1);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("long.postings.bin");
        postings.write(&path).unwrap();
        assert_eq!(Postings::read(&path, vectors.len()).unwrap().0, postings);
        for budget in [1, 1_000, 10_000] {
            let streamed = dir.path().join(format!("s{budget}.postings.bin"));
            Postings::write_streamed(&vectors, 3, budget, &streamed).unwrap();
            assert_eq!(
                std::fs::read(&streamed).unwrap(),
                std::fs::read(&path).unwrap(),
                "budget {budget}"
            );
        }
    }

    #[test]
    fn a_list_split_before_its_head_is_full_is_refused() {
        let mut postings = Postings::build(&long_lists(), 3, true);
        let moved = postings.heads.to_mut().pop().unwrap();
        postings.tails.to_mut().insert(0, moved);
        for offset in &mut postings.head_offsets.to_mut()[1..] {
            *offset -= 1;
        }
        for offset in &mut postings.tail_offsets.to_mut()[1..] {
            *offset += 1;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.postings.bin");
        postings.write(&path).unwrap();
        let error = Postings::read(&path, 3_000).unwrap_err();
        assert!(error.to_string().contains("not split after"), "{error}");
    }
}
