//! How does the table of dense projections reach disk and come back quickly? As one flat file
//! (`{generation}.dense.bin`, see [`crate::flat_file`]): the dimension and the vector count, then every
//! value, vector after vector, served from a memory map once the CRC-32 and the values are checked.

use std::path::Path;

use crate::error::Result;
use crate::flat_file::{FlatReader, FlatWriter};
use crate::projection::DenseVectors;

/// Suffix of a snapshot's dense vector file.
pub const DENSE_SUFFIX: &str = ".dense.bin";

/// Writes `vectors` to `path` and syncs the file.
pub fn write(path: &Path, vectors: &DenseVectors) -> Result<()> {
    let mut out = FlatWriter::create(path, &[vectors.dimensions() as u64, vectors.len() as u64])?;
    out.array(vectors.as_flat())?;
    out.finish()
}

/// Reads the file at `path`, which must hold `count` vectors; returns them with the file's size and
/// CRC-32, for the caller to check against the manifest before trusting them.
pub fn read(path: &Path, count: usize) -> Result<(DenseVectors, u64, u32)> {
    let (mut file, header) = FlatReader::open(path, 2)?;
    let (dimensions, stored) = (header[0] as usize, header[1]);
    if stored != count as u64 || dimensions == 0 {
        return Err(file.corrupt(format!(
            "holds {stored} vectors of {dimensions} dimensions; expected {count} vectors"
        )));
    }
    let values = file.mapped::<f32>(count.saturating_mul(dimensions))?;
    if values.iter().any(|value| !value.is_finite()) {
        return Err(file.corrupt("holds a value that is not a finite number".into()));
    }
    let (length, crc32) = file.finish()?;
    Ok((DenseVectors::from_flat(dimensions, values)?, length, crc32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

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
