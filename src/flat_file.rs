//! How do the large arrays of a snapshot reach disk and come back quickly? A flat file is a byte-order
//! mark, a few `u64` header fields, then arrays of plain numbers, each written exactly as it lies in
//! memory. It is written as a stream, and each array is read straight into its own allocation with the
//! CRC-32 computed on the way, so gigabytes load at disk speed and every file is read once. A file written
//! on a host of the other byte order is refused, not misread.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use bytemuck::Pod;

use crate::error::{Error, Result};

/// Written as a native `u64`; reads back as this value only on a host of the same byte order.
const BYTE_ORDER_MARK: u64 = 0x0102_0304_0506_0708;
const CHUNK_BYTES: usize = 1 << 20;

/// Streams a flat file: [`FlatWriter::create`] writes the header, [`FlatWriter::array`] each array in
/// order, [`FlatWriter::finish`] syncs it.
pub struct FlatWriter {
    out: BufWriter<File>,
    path: PathBuf,
}

impl FlatWriter {
    /// Creates `path` and writes the byte-order mark and `header`.
    pub fn create(path: &Path, header: &[u64]) -> Result<Self> {
        let file = File::create(path).map_err(|err| Error::io(path, err))?;
        let mut writer = Self {
            out: BufWriter::with_capacity(CHUNK_BYTES, file),
            path: path.to_owned(),
        };
        writer.array(&[BYTE_ORDER_MARK, header.len() as u64])?;
        writer.array(header)?;
        Ok(writer)
    }

    /// Appends `values` as they lie in memory.
    pub fn array<T: Pod>(&mut self, values: &[T]) -> Result<()> {
        self.out
            .write_all(bytemuck::cast_slice(values))
            .map_err(|err| Error::io(&self.path, err))
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

/// Reads a flat file written by [`FlatWriter`], checking on the way that it is as long as its arrays say.
pub struct FlatReader {
    file: File,
    path: PathBuf,
    hasher: crc32fast::Hasher,
    length: u64,
    position: u64,
}

impl FlatReader {
    /// Opens `path` and reads its header, which must have `fields` fields.
    pub fn open(path: &Path, fields: usize) -> Result<(Self, Vec<u64>)> {
        let file = File::open(path).map_err(|err| Error::io(path, err))?;
        let length = file.metadata().map_err(|err| Error::io(path, err))?.len();
        let mut reader = Self {
            file,
            path: path.to_owned(),
            hasher: crc32fast::Hasher::new(),
            length,
            position: 0,
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

    /// Reads the next array, of `len` values.
    pub fn array<T: Pod>(&mut self, len: usize) -> Result<Vec<T>> {
        let bytes = (len as u64).saturating_mul(size_of::<T>() as u64);
        let remaining = self.length - self.position;
        if bytes > remaining {
            return Err(self.corrupt(format!(
                "is truncated: {} bytes, the next array needs {bytes} from byte {}",
                self.length, self.position
            )));
        }
        let mut values = vec![T::zeroed(); len];
        for chunk in bytemuck::cast_slice_mut::<T, u8>(&mut values).chunks_mut(CHUNK_BYTES) {
            self.file.read_exact(chunk).map_err(|err| Error::io(&self.path, err))?;
            self.hasher.update(chunk);
        }
        self.position += bytes;
        Ok(values)
    }

    /// Checks that nothing follows the last array; returns the file's size and CRC-32, for the caller to
    /// check against the manifest before trusting what it read.
    pub fn finish(self) -> Result<(u64, u32)> {
        if self.position != self.length {
            return Err(self.corrupt(format!(
                "has {} bytes after its last array",
                self.length - self.position
            )));
        }
        Ok((self.length, self.hasher.finalize()))
    }

    /// A [`Error::CorruptSnapshot`] about this file.
    pub fn corrupt(&self, reason: String) -> Error {
        Error::CorruptSnapshot {
            path: self.path.clone(),
            reason,
        }
    }
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
        writer.array(&[0.5f32, -1.0]).unwrap();
        writer.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let (mut reader, header) = FlatReader::open(&path, 2).unwrap();
        assert_eq!(header, [3, 2]);
        assert_eq!(reader.array::<u64>(3).unwrap(), [1, 2, 3]);
        assert_eq!(reader.array::<f32>(2).unwrap(), [0.5, -1.0]);
        assert_eq!(reader.finish().unwrap(), (bytes.len() as u64, crc32fast::hash(&bytes)));
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
