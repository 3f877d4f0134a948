//! How do the articles' copy signatures ([`crate::near_copy`]) reach disk and come back? As one flat file
//! (`{generation}.copies.bin`, see [`crate::flat_file`]): the signature length and the article count, then
//! every signature's hashes, slot order, served from a memory map once the CRC-32 is checked.

use std::path::Path;

use crate::error::Result;
use crate::flat_file::{FlatReader, FlatWriter};
use crate::near_copy::{SIGNATURE_LEN, SignatureTable};

/// Suffix of a snapshot's signature file.
pub const SIGNATURES_SUFFIX: &str = ".copies.bin";

/// Writes `signatures` to `path` and syncs the file.
pub fn write(path: &Path, signatures: &SignatureTable) -> Result<()> {
    let mut out = FlatWriter::create(path, &[SIGNATURE_LEN as u64, signatures.len() as u64])?;
    out.array(signatures.as_flat())?;
    out.finish()
}

/// Reads the file at `path`, which must hold `count` signatures; returns them with the file's size and
/// CRC-32, for the caller to check against the manifest before trusting them.
pub fn read(path: &Path, count: usize) -> Result<(SignatureTable, u64, u32)> {
    let (mut file, header) = FlatReader::open(path, 2)?;
    let (length, stored) = (header[0], header[1]);
    if stored != count as u64 || length != SIGNATURE_LEN as u64 {
        return Err(file.corrupt(format!(
            "holds {stored} signatures of {length} hashes; expected {count} of {SIGNATURE_LEN}"
        )));
    }
    let values = file.mapped::<u32>(count.saturating_mul(SIGNATURE_LEN))?;
    let (bytes, crc32) = file.finish()?;
    Ok((SignatureTable::from_flat(values), bytes, crc32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::near_copy::CopySignature;

    #[test]
    fn round_trips_and_refuses_a_wrong_count_or_a_truncated_file() {
        let signatures: SignatureTable = [CopySignature::of("Biles zieht zurück", ""), CopySignature::of("", "")]
            .into_iter()
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.copies.bin");
        write(&path, &signatures).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let (read_back, length, crc) = read(&path, 2).unwrap();
        assert_eq!(read_back, signatures);
        assert_eq!((length, crc), (bytes.len() as u64, crc32fast::hash(&bytes)));
        assert!(matches!(read(&path, 3), Err(Error::CorruptSnapshot { .. })));
        std::fs::write(&path, &bytes[..bytes.len() - 4]).unwrap();
        assert!(matches!(read(&path, 2), Err(Error::CorruptSnapshot { .. })));
    }
}
