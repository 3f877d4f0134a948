//! How do the large arrays of a snapshot reach disk and come back quickly? A flat file is a byte-order
//! mark, a few `u64` header fields, then arrays of plain numbers, each written exactly as it lies in
//! memory and starting at a multiple of 8 bytes. It is written as a stream. It is read through a memory
//! map: a large array is served straight from the page cache ([`FlatArray`]), so opening a snapshot
//! neither zeroes nor copies gigabytes. The CRC-32 and the shape checks read every byte once at open. The
//! arrays the query path reads stay mapped after that, so that the first queries do not pay a page fault
//! per first touch; the arrays it does not read are read as cold ([`FlatReader::mapped_cold`]) and their
//! pages handed back to the page cache after the checks, so that they do not count towards the
//! process's resident memory. (A kernel that keeps the page cache in large folios maps a whole folio,
//! up to 2 MB, per touch, measured on 6.18: cold data must lie apart from hot data, not between it.) A
//! file written on a host of the other byte order is refused, not misread.
//!
//! **The mapping's contract.** A mapped file must not change while it is mapped. A snapshot's data files
//! are written under a new generation's names and never rewritten in place; a superseded generation is
//! unlinked, which leaves a mapping of it intact until the last array drops. Truncating a data file of a
//! running server by hand would make the next read of a lost page fail with `SIGBUS`.

use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytemuck::Pod;
use memmap2::{Advice, Mmap, UncheckedAdvice};

use crate::error::{Error, Result};

/// Written as a native `u64`; reads back as this value only on a host of the same byte order.
const BYTE_ORDER_MARK: u64 = 0x0102_0304_0506_0708;
const CHUNK_BYTES: usize = 1 << 20;
/// Every array starts at a multiple of this many bytes, so that a mapped array is aligned for any element.
const ARRAY_ALIGNMENT: usize = 8;
/// Bytes of the byte-order mark and the header-length field.
const PREAMBLE_BYTES: u64 = 16;

/// Streams a flat file: [`FlatWriter::create`] writes the header, [`FlatWriter::array`] each array in
/// order, [`FlatWriter::finish`] syncs it.
pub struct FlatWriter {
    out: BufWriter<File>,
    path: PathBuf,
    written: usize,
}

impl FlatWriter {
    /// Creates `path` and writes the byte-order mark and `header`.
    pub fn create(path: &Path, header: &[u64]) -> Result<Self> {
        let file = File::create(path).map_err(|err| Error::io(path, err))?;
        let mut writer = Self {
            out: BufWriter::with_capacity(CHUNK_BYTES, file),
            path: path.to_owned(),
            written: 0,
        };
        writer.array(&[BYTE_ORDER_MARK, header.len() as u64])?;
        writer.array(header)?;
        Ok(writer)
    }

    /// Appends `values` as they lie in memory, after the zero bytes that align their start.
    pub fn array<T: Pod>(&mut self, values: &[T]) -> Result<()> {
        self.begin_array()?;
        self.extend(values)
    }

    /// Writes the zero bytes that align the start of the next array, whose values [`FlatWriter::extend`]
    /// then appends part by part.
    pub fn begin_array(&mut self) -> Result<()> {
        let padding = self.written.next_multiple_of(ARRAY_ALIGNMENT) - self.written;
        self.write_bytes(&[0; ARRAY_ALIGNMENT][..padding])
    }

    /// Appends `values` as they lie in memory to the array being written.
    pub fn extend<T: Pod>(&mut self, values: &[T]) -> Result<()> {
        self.write_bytes(bytemuck::cast_slice(values))
    }

    fn write_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write_all(bytes).map_err(|err| Error::io(&self.path, err))?;
        self.written += bytes.len();
        Ok(())
    }

    /// Flushes and syncs the file.
    pub fn finish(self) -> Result<()> {
        let path = self.path;
        let file = self
            .out
            .into_inner()
            .map_err(|err| Error::io(&path, err.into_error()))?;
        file.sync_all().map_err(|err| Error::io(&path, err))
    }
}

/// An array of numbers, owned (built in memory) or mapped from a flat file ([`FlatReader::mapped`]);
/// either way a slice.
pub struct FlatArray<T: Pod> {
    storage: Storage<T>,
}

enum Storage<T> {
    Owned(Vec<T>),
    Mapped { map: Arc<Mmap>, start: usize, len: usize },
}

impl<T: Pod> FlatArray<T> {
    /// The array's vector, to grow it; a mapped array is copied into one first.
    pub fn to_mut(&mut self) -> &mut Vec<T> {
        if let Storage::Mapped { .. } = self.storage {
            self.storage = Storage::Owned(self.to_vec());
        }
        match &mut self.storage {
            Storage::Owned(values) => values,
            Storage::Mapped { .. } => unreachable!("copied above"),
        }
    }
}

/// Whether a mapped array's pages count towards the process's resident memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Residency {
    /// Handed back: they stay in the page cache and are faulted in again where the array is read.
    Cold,
    /// Mapped, all of them, now.
    Warm,
}

impl<T: Pod> FlatArray<T> {
    /// Hands a mapped array's pages back or maps them all ([`Residency`]); an owned array stays as it
    /// is. Only residency changes, never what the array reads.
    pub fn set_residency(&self, residency: Residency) -> std::io::Result<()> {
        let Storage::Mapped { map, start, len } = &self.storage else {
            return Ok(());
        };
        let (start, end) = (*start, *start + len * size_of::<T>());
        let page = page_size();
        match residency {
            Residency::Cold => {
                // Whole pages inside the array only: a page it shares with its neighbours stays.
                let (start, end) = (start.next_multiple_of(page), end - end % page);
                if start < end {
                    // SAFETY: dropping the pages of a read-only shared file mapping only unmaps them; the
                    // next access faults the same file contents back in.
                    unsafe { map.unchecked_advise_range(UncheckedAdvice::DontNeed, start, end - start) }?;
                }
                Ok(())
            }
            Residency::Warm => {
                let start = start - start % page;
                if start < end {
                    map.advise_range(Advice::PopulateRead, start, end - start)?;
                }
                Ok(())
            }
        }
    }
}

impl<T: Pod> Deref for FlatArray<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        match &self.storage {
            Storage::Owned(values) => values,
            Storage::Mapped { map, start, len } => bytemuck::cast_slice(&map[*start..*start + len * size_of::<T>()]),
        }
    }
}

impl<T: Pod> From<Vec<T>> for FlatArray<T> {
    fn from(values: Vec<T>) -> Self {
        Self {
            storage: Storage::Owned(values),
        }
    }
}

impl<T: Pod> Default for FlatArray<T> {
    fn default() -> Self {
        Vec::new().into()
    }
}

impl<T: Pod> Clone for FlatArray<T> {
    fn clone(&self) -> Self {
        let storage = match &self.storage {
            Storage::Owned(values) => Storage::Owned(values.clone()),
            Storage::Mapped { map, start, len } => Storage::Mapped {
                map: Arc::clone(map),
                start: *start,
                len: *len,
            },
        };
        Self { storage }
    }
}

impl<T: Pod + PartialEq> PartialEq for FlatArray<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for FlatArray<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

/// Reads a flat file written by [`FlatWriter`] through a memory map, checking on the way that it is as
/// long as its arrays say.
pub struct FlatReader {
    map: Arc<Mmap>,
    path: PathBuf,
    position: usize,
    /// Byte ranges of the arrays read by [`FlatReader::mapped_cold`].
    cold: Vec<(usize, usize)>,
}

impl FlatReader {
    /// Maps `path` and reads its header, which must have `fields` fields.
    pub fn open(path: &Path, fields: usize) -> Result<(Self, Vec<u64>)> {
        let file = File::open(path).map_err(|err| Error::io(path, err))?;
        let length = file.metadata().map_err(|err| Error::io(path, err))?.len();
        if length < PREAMBLE_BYTES {
            return Err(Error::CorruptSnapshot {
                path: path.to_owned(),
                reason: format!("is truncated: {length} bytes"),
            });
        }
        // SAFETY: the map is read-only and snapshot data files are never modified in place while mapped
        // (see the module docs).
        let map = unsafe { Mmap::map(&file) }.map_err(|err| Error::io(path, err))?;
        let mut reader = Self {
            map: Arc::new(map),
            path: path.to_owned(),
            position: 0,
            cold: Vec::new(),
        };
        let preamble: Vec<u64> = reader.array(2)?;
        if preamble[0] != BYTE_ORDER_MARK {
            return Err(reader.corrupt(if preamble[0] == BYTE_ORDER_MARK.swap_bytes() {
                "was written on a host of the other byte order".into()
            } else {
                "is not a weitere flat file (no byte-order mark)".into()
            }));
        }
        if preamble[1] != fields as u64 {
            return Err(reader.corrupt(format!("has {} header fields, expected {fields}", preamble[1])));
        }
        let header = reader.array(fields)?;
        Ok((reader, header))
    }

    /// Copies the next array, of `len` values, into a vector: for the small arrays.
    pub fn array<T: Pod>(&mut self, len: usize) -> Result<Vec<T>> {
        Ok(self.mapped::<T>(len)?.to_vec())
    }

    /// The next array, of `len` values, served from the map: for the large arrays. Its pages stay mapped
    /// after [`FlatReader::finish`].
    pub fn mapped<T: Pod>(&mut self, len: usize) -> Result<FlatArray<T>> {
        let start = self.position.next_multiple_of(ARRAY_ALIGNMENT).min(self.map.len());
        let bytes = (len as u64).saturating_mul(size_of::<T>() as u64);
        let remaining = (self.map.len() - start) as u64;
        if bytes > remaining {
            return Err(self.corrupt(format!(
                "is truncated: {} bytes, the next array needs {bytes} from byte {start}",
                self.map.len()
            )));
        }
        self.position = start + bytes as usize;
        Ok(FlatArray {
            storage: Storage::Mapped {
                map: Arc::clone(&self.map),
                start,
                len,
            },
        })
    }

    /// Like [`FlatReader::mapped`], for an array the query path does not read: its pages are handed back
    /// by [`FlatReader::finish`], and later faulted in only where it is read.
    pub fn mapped_cold<T: Pod>(&mut self, len: usize) -> Result<FlatArray<T>> {
        let array = self.mapped(len)?;
        self.cold.push((self.position - len * size_of::<T>(), self.position));
        Ok(array)
    }

    /// Checks that nothing follows the last array and computes the file's CRC-32, then hands back the
    /// pages of the cold arrays (they stay in the page cache). Returns the file's size and CRC-32, for the
    /// caller to check against the manifest before trusting what it read.
    pub fn finish(self) -> Result<(u64, u32)> {
        if self.position != self.map.len() {
            return Err(self.corrupt(format!(
                "has {} bytes after its last array",
                self.map.len() - self.position
            )));
        }
        let crc32 = crc32fast::hash(&self.map);
        let page = page_size();
        for &(start, end) in &self.cold {
            let (start, end) = (start.next_multiple_of(page), end - end % page);
            if start < end {
                // SAFETY: dropping the pages of a read-only shared file mapping only unmaps them; the next
                // access faults the same file contents back in, so no reference into the map sees
                // different bytes.
                unsafe {
                    self.map
                        .unchecked_advise_range(UncheckedAdvice::DontNeed, start, end - start)
                }
                .map_err(|err| Error::io(&self.path, err))?;
            }
        }
        Ok((self.map.len() as u64, crc32))
    }

    /// A [`Error::CorruptSnapshot`] about this file.
    pub fn corrupt(&self, reason: String) -> Error {
        Error::CorruptSnapshot {
            path: self.path.clone(),
            reason,
        }
    }
}

/// Bytes in a page of memory.
fn page_size() -> usize {
    // SAFETY: sysconf only reads a system setting.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_round_trip_with_the_files_crc() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.bin");
        let mut writer = FlatWriter::create(&path, &[3, 2]).unwrap();
        writer.array(&[1u64, 2, 3]).unwrap();
        writer.array(&[0.5f32, -1.0, 2.0]).unwrap();
        writer.array(&[7u64, 8]).unwrap();
        writer.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(
            bytes.len(),
            16 + 16 + 24 + 16 + 16,
            "the u64s after three f32s start 4 bytes later"
        );
        let (mut reader, header) = FlatReader::open(&path, 2).unwrap();
        assert_eq!(header, [3, 2]);
        assert_eq!(reader.array::<u64>(3).unwrap(), [1, 2, 3]);
        let cold = reader.mapped_cold::<f32>(3).unwrap();
        let mapped = reader.mapped::<u64>(2).unwrap();
        assert_eq!(reader.finish().unwrap(), (bytes.len() as u64, crc32fast::hash(&bytes)));
        assert_eq!(*mapped, [7, 8], "a mapped array outlives its reader");
        assert_eq!(
            *cold,
            [0.5, -1.0, 2.0],
            "a cold array reads the same after its pages were handed back"
        );
        let mut grown = mapped.clone();
        grown.to_mut().push(9);
        assert_eq!((&*grown, &*mapped), (&[7, 8, 9][..], &[7, 8][..]));
    }

    #[test]
    fn cold_arrays_over_many_pages_read_back_after_their_pages_are_handed_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.bin");
        let (hot, cold): (Vec<u64>, Vec<u32>) = ((0..3_000).collect(), (0..50_000).rev().collect());
        let mut writer = FlatWriter::create(&path, &[]).unwrap();
        writer.array(&hot).unwrap();
        writer.array(&cold).unwrap();
        writer.array(&hot).unwrap();
        writer.finish().unwrap();
        let (mut reader, _) = FlatReader::open(&path, 0).unwrap();
        let arrays = (
            reader.mapped::<u64>(3_000).unwrap(),
            reader.mapped_cold::<u32>(50_000).unwrap(),
            reader.mapped::<u64>(3_000).unwrap(),
        );
        reader.finish().unwrap();
        assert_eq!((&*arrays.0, &*arrays.1, &*arrays.2), (&hot[..], &cold[..], &hot[..]));
    }

    /// Resident kilobytes of the mapping that holds `address`, from `/proc/self/smaps`.
    fn resident_kb_of_mapping(address: usize) -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut inside = false;
        for line in smaps.lines() {
            let range = line.split_whitespace().next().unwrap_or("");
            if let Some((start, end)) = range.split_once('-')
                && let (Ok(start), Ok(end)) = (usize::from_str_radix(start, 16), usize::from_str_radix(end, 16))
            {
                inside = (start..end).contains(&address);
            } else if inside && let Some(rest) = line.strip_prefix("Rss:") {
                return rest.trim().trim_end_matches("kB").trim().parse().unwrap();
            }
        }
        panic!("no mapping holds {address:#x}");
    }

    #[test]
    fn residency_hands_pages_back_and_maps_them_again_without_changing_a_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.bin");
        let values: Vec<u32> = (0..1_000_000).collect();
        let mut writer = FlatWriter::create(&path, &[]).unwrap();
        writer.array(&values).unwrap();
        writer.finish().unwrap();
        let (mut reader, _) = FlatReader::open(&path, 0).unwrap();
        let array = reader.mapped::<u32>(values.len()).unwrap();
        reader.finish().unwrap();
        let address = array.as_ptr() as usize;
        assert!(resident_kb_of_mapping(address) >= 3_900, "checked at open, so mapped");

        array.set_residency(Residency::Cold).unwrap();
        assert!(resident_kb_of_mapping(address) < 100, "handed back");
        assert_eq!(array[123_456], 123_456, "faulted in again where read");

        array.set_residency(Residency::Warm).unwrap();
        assert!(resident_kb_of_mapping(address) >= 3_900, "all mapped again");
        assert_eq!(*array, values[..]);

        let owned: FlatArray<u32> = values.clone().into();
        owned.set_residency(Residency::Cold).unwrap();
        assert_eq!(*owned, values[..], "an owned array is left as it is");
    }

    #[test]
    fn truncated_padded_foreign_and_misshapen_files_are_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.bin");
        let mut writer = FlatWriter::create(&path, &[4]).unwrap();
        writer.array(&[7u32; 4]).unwrap();
        writer.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let is_corrupt = |result: Result<Vec<u32>>| matches!(result, Err(Error::CorruptSnapshot { .. }));

        assert!(matches!(FlatReader::open(&path, 2), Err(Error::CorruptSnapshot { .. })));
        let (mut reader, _) = FlatReader::open(&path, 1).unwrap();
        assert!(
            is_corrupt(reader.array(u64::MAX as usize)),
            "a huge count is refused before allocating"
        );

        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        let (mut reader, _) = FlatReader::open(&path, 1).unwrap();
        assert!(is_corrupt(reader.array(4)));

        std::fs::write(&path, [&bytes[..], &[0]].concat()).unwrap();
        let (mut reader, _) = FlatReader::open(&path, 1).unwrap();
        reader.array::<u32>(4).unwrap();
        assert!(matches!(reader.finish(), Err(Error::CorruptSnapshot { .. })));

        let mut swapped = bytes.clone();
        swapped[..8].reverse();
        std::fs::write(&path, &swapped).unwrap();
        let error = FlatReader::open(&path, 1).err().unwrap();
        assert!(error.to_string().contains("other byte order"), "{error}");
    }
}
