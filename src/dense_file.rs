//! How does the table of dense projections reach disk and come back quickly? As one flat file
//! (`{generation}.dense.bin`): the dimension (u32) and the vector count (u64), then every value as a
//! little-endian f32, vector after vector. It is written as a stream and read straight into the table's
//! own allocation in one pass, the CRC-32 computed on the way, so a million vectors load at disk speed.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;

use crate::error::{Error, Result};
use crate::projection::DenseVectors;

/// Suffix of a snapshot's dense vector file.
pub const DENSE_SUFFIX: &str = ".dense.bin";

const HEADER_BYTES: usize = 12;
const CHUNK_BYTES: usize = 1 << 20;

/// Writes `vectors` to `path` and syncs the file.
pub fn write(path: &Path, vectors: &DenseVectors) -> Result<()> {
    let file = File::create(path).map_err(|err| Error::io(path, err))?;
    let mut out = BufWriter::with_capacity(CHUNK_BYTES, file);
    let mut header = Vec::with_capacity(HEADER_BYTES);
    header.extend_from_slice(&(vectors.dimensions() as u32).to_le_bytes());
    header.extend_from_slice(&(vectors.len() as u64).to_le_bytes());
    out.write_all(&header).map_err(|err| Error::io(path, err))?;
    for value in vectors.as_flat() {
        out.write_all(&value.to_le_bytes())
            .map_err(|err| Error::io(path, err))?;
    }
    let file = out.into_inner().map_err(|err| Error::io(path, err.into_error()))?;
    file.sync_all().map_err(|err| Error::io(path, err))
}

/// Reads the file at `path`, which must hold `count` vectors; returns them with the file's size and
/// CRC-32, for the caller to check against the manifest before trusting them.
pub fn read(path: &Path, count: usize) -> Result<(DenseVectors, u64, u32)> {
    let corrupt = |reason: String| Error::CorruptSnapshot {
        path: path.to_owned(),
        reason,
    };
    let mut file = File::open(path).map_err(|err| Error::io(path, err))?;
    let length = file.metadata().map_err(|err| Error::io(path, err))?.len();
    let mut header = [0u8; HEADER_BYTES];
    file.read_exact(&mut header)
        .map_err(|_| corrupt(format!("{length} bytes, too short for its header")))?;
    let dimensions = u32::from_le_bytes(header[..4].try_into().expect("four bytes")) as usize;
    let stored = u64::from_le_bytes(header[4..].try_into().expect("eight bytes"));
    let expected = (HEADER_BYTES as u64).checked_add(stored.saturating_mul(dimensions as u64).saturating_mul(4));
    if stored != count as u64 || dimensions == 0 || expected != Some(length) {
        return Err(corrupt(format!(
            "{length} bytes holding {stored} vectors of {dimensions} dimensions; expected {count} vectors"
        )));
    }
    let mut values = vec![0.0f32; count * dimensions];
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&header);
    for chunk in bytemuck::cast_slice_mut::<f32, u8>(&mut values).chunks_mut(CHUNK_BYTES) {
        file.read_exact(chunk).map_err(|err| Error::io(path, err))?;
        hasher.update(chunk);
    }
    if cfg!(target_endian = "big") {
        for value in &mut values {
            *value = f32::from_bits(u32::from_le(value.to_bits()));
        }
    }
    if values.iter().any(|value| !value.is_finite()) {
        return Err(corrupt("holds a value that is not a finite number".into()));
    }
    Ok((DenseVectors::from_flat(dimensions, values)?, length, hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_a_wrong_count_or_a_truncated_file() {
        let vectors = DenseVectors::from_flat(3, vec![0.5, -1.0, 2.0, 0.0, 1.5, -0.25]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.dense.bin");
        write(&path, &vectors).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let (read_back, length, crc) = read(&path, 2).unwrap();
        assert_eq!(read_back, vectors);
        assert_eq!((length, crc), (bytes.len() as u64, crc32fast::hash(&bytes)));
        assert!(matches!(read(&path, 3), Err(Error::CorruptSnapshot { .. })));
        std::fs::write(&path, &bytes[..bytes.len() - 4]).unwrap();
        assert!(matches!(read(&path, 2), Err(Error::CorruptSnapshot { .. })));
    }
}
