//! Where do the base articles' TF-IDF vectors live? In one CSR block: every article's term ids one after
//! another in one array, their weights in another, and `count + 1` offsets saying where each article's
//! entries begin. A million articles are three allocations instead of two million, with no per-vector
//! header or allocator slack, and the block reaches disk and comes back as flat arrays
//! (`{generation}.vectors.bin`, see [`crate::flat_file`]), served from a memory map once read.

use std::path::Path;

use crate::error::Result;
use crate::flat_file::{FlatArray, FlatReader, FlatWriter, Residency};
use crate::prefetch::prefetch_slice;
use crate::sparse::{SparseRef, SparseVector, TermId};

/// Suffix of a snapshot's vector file.
pub const VECTORS_SUFFIX: &str = ".vectors.bin";

/// The vectors of the base articles, slot order; row `i` belongs to slot `i`.
#[derive(Clone, Debug, PartialEq)]
pub struct VectorTable {
    /// `len() + 1` entries: row `i` is `offsets[i]..offsets[i + 1]` of `terms` and `weights`.
    offsets: FlatArray<u64>,
    terms: FlatArray<TermId>,
    weights: FlatArray<f32>,
}

impl Default for VectorTable {
    fn default() -> Self {
        Self {
            offsets: vec![0].into(),
            terms: FlatArray::default(),
            weights: FlatArray::default(),
        }
    }
}

impl VectorTable {
    /// Appends `vector` as the next row (a table read from a file is copied onto the heap first).
    pub fn push(&mut self, vector: SparseRef<'_>) {
        self.terms.to_mut().extend_from_slice(vector.terms());
        self.weights.to_mut().extend_from_slice(vector.weights());
        self.offsets.to_mut().push(self.terms.len() as u64);
    }

    /// Appends the entries `pairs` (terms increasing, each once) as the next row.
    pub fn push_pairs(&mut self, pairs: &[(TermId, f32)]) {
        debug_assert!(pairs.is_sorted_by(|a, b| a.0 < b.0));
        self.terms.to_mut().extend(pairs.iter().map(|&(term, _)| term));
        self.weights.to_mut().extend(pairs.iter().map(|&(_, weight)| weight));
        self.offsets.to_mut().push(self.terms.len() as u64);
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    /// True when there is no row.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries over all rows.
    pub fn entry_count(&self) -> usize {
        self.terms.len()
    }

    /// The vector of `slot`; panics beyond [`VectorTable::len`].
    pub fn get(&self, slot: usize) -> SparseRef<'_> {
        let range = self.offsets[slot] as usize..self.offsets[slot + 1] as usize;
        SparseRef::new(&self.terms[range.clone()], &self.weights[range])
    }

    /// Asks the CPU to load where row `slot` lies ([`VectorTable::prefetch_row`] reads it); a hint.
    pub fn prefetch_row_bounds(&self, slot: usize) {
        if let Some(bounds) = self.offsets.get(slot..slot + 2) {
            prefetch_slice(bounds);
        }
    }

    /// Asks the CPU to load row `slot`'s terms and weights, for a dot product soon; a hint.
    pub fn prefetch_row(&self, slot: usize) {
        if slot < self.len() {
            let row = self.get(slot);
            prefetch_slice(row.terms());
            prefetch_slice(row.weights());
        }
    }

    /// Every row in slot order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = SparseRef<'_>> + '_ {
        (0..self.len()).map(|slot| self.get(slot))
    }

    /// One more than the largest term id any row holds (0 when there is none).
    pub fn term_count(&self) -> usize {
        self.terms.iter().max().map_or(0, |&term| term as usize + 1)
    }

    /// Hands the pages of a mapped table back, or maps them all ([`Residency`]).
    pub fn set_residency(&self, residency: Residency) -> std::io::Result<()> {
        self.offsets.set_residency(residency)?;
        self.terms.set_residency(residency)?;
        self.weights.set_residency(residency)
    }

    /// Writes the table to `path` and syncs the file.
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut out = FlatWriter::create(path, &[self.len() as u64, self.terms.len() as u64])?;
        out.array(&self.offsets)?;
        out.array(&self.terms)?;
        out.array(&self.weights)?;
        out.finish()
    }

    /// Writes the rows that `rows` yields, as [`VectorTable::write`] writes a table holding them, without
    /// gathering them in memory: `rows` is called once per pass over them (four passes).
    pub fn write_rows<'a, I>(path: &Path, rows: impl Fn() -> I) -> Result<()>
    where
        I: Iterator<Item = SparseRef<'a>>,
    {
        let (count, entries) = rows().fold((0u64, 0u64), |(count, entries), row| {
            (count + 1, entries + row.len() as u64)
        });
        let mut out = FlatWriter::create(path, &[count, entries])?;
        out.begin_array()?;
        let mut offset = 0u64;
        out.extend(&[offset])?;
        for row in rows() {
            offset += row.len() as u64;
            out.extend(&[offset])?;
        }
        out.begin_array()?;
        for row in rows() {
            out.extend(row.terms())?;
        }
        out.begin_array()?;
        for row in rows() {
            out.extend(row.weights())?;
        }
        out.finish()
    }

    /// Reads the table at `path`, which must hold `count` rows; returns it with the file's size and CRC-32,
    /// for the caller to check against the manifest. The rows' shape is checked here (offsets increasing,
    /// terms increasing within a row, weights finite), so a damaged file is an error, never a panic later.
    pub fn read(path: &Path, count: usize) -> Result<(Self, u64, u32)> {
        let (mut file, header) = FlatReader::open(path, 2)?;
        let (rows, entries) = (header[0], header[1]);
        if rows != count as u64 {
            return Err(file.corrupt(format!("holds {rows} vectors; expected {count}")));
        }
        let offsets = file.mapped(count.saturating_add(1))?;
        let terms = file.mapped(entries as usize)?;
        let weights = file.mapped(entries as usize)?;
        let table = Self {
            offsets,
            terms,
            weights,
        };
        if let Some(reason) = table.shape_error() {
            return Err(file.corrupt(reason));
        }
        let (length, crc32) = file.finish()?;
        Ok((table, length, crc32))
    }

    /// What breaks the table's invariants, if anything.
    fn shape_error(&self) -> Option<String> {
        if self.offsets.first() != Some(&0) || self.offsets.last() != Some(&(self.terms.len() as u64)) {
            return Some("offsets do not span the entries".into());
        }
        if let Some(slot) = self.offsets.windows(2).position(|pair| pair[0] > pair[1]) {
            return Some(format!("offsets decrease at vector {slot}"));
        }
        if let Some(slot) = (0..self.len()).find(|&slot| !self.get(slot).terms().is_sorted_by(|a, b| a < b)) {
            return Some(format!("vector {slot} has terms out of order"));
        }
        if self.weights.iter().any(|weight| !weight.is_finite()) {
            return Some("holds a weight that is not a finite number".into());
        }
        None
    }
}

impl<'a> FromIterator<&'a SparseVector> for VectorTable {
    fn from_iter<I: IntoIterator<Item = &'a SparseVector>>(vectors: I) -> Self {
        let mut table = Self::default();
        for vector in vectors {
            table.push(vector.view());
        }
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    fn table() -> (Vec<SparseVector>, VectorTable) {
        let vectors = vec![
            SparseVector::from_pairs(vec![(3, 1.0), (1, 2.0)]),
            SparseVector::default(),
            SparseVector::from_pairs(vec![(7, 0.5)]),
        ];
        let table = vectors.iter().collect();
        (vectors, table)
    }

    #[test]
    fn rows_are_the_vectors_pushed() {
        let (vectors, table) = table();
        assert_eq!(table.len(), 3);
        assert_eq!(table.entry_count(), 3);
        assert_eq!(table.term_count(), 8);
        for (row, vector) in table.iter().zip(&vectors) {
            assert_eq!(row, vector.view());
        }
        assert!(VectorTable::default().is_empty());
    }

    #[test]
    fn round_trips_and_refuses_a_wrong_count_or_damaged_rows() {
        let (_, table) = table();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.vectors.bin");
        table.write(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let (read_back, length, crc) = VectorTable::read(&path, 3).unwrap();
        assert_eq!(read_back, table);
        assert_eq!((length, crc), (bytes.len() as u64, crc32fast::hash(&bytes)));
        assert!(matches!(
            VectorTable::read(&path, 2),
            Err(Error::CorruptSnapshot { .. })
        ));

        let mut swapped_terms = table.clone();
        swapped_terms.terms.to_mut().swap(0, 1);
        swapped_terms.write(&path).unwrap();
        let error = VectorTable::read(&path, 3).unwrap_err();
        assert!(error.to_string().contains("out of order"), "{error}");
    }
}
