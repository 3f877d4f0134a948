//! Where do article bodies live? Bodies are most of an archive's bytes, but the query path never reads
//! them: only `GetArticle`, rebuilds and evaluation do. So a snapshot keeps them in a file of their own
//! (`{generation}.bodies.bin`: the UTF-8 bodies one after another; the corpus file records where each
//! one lies and its CRC-32, a [`BodyIndex`]), written as a stream, and a loaded engine reads one body from
//! it when asked ([`BodyFile::read`]), instead of holding every body in memory.
//!
//! **Why a checksum per body.** Opening a snapshot checks the file's length against the offsets, so a
//! truncated file is refused there. Its contents are checked body by body as they are read: a damaged
//! body is [`Error::CorruptSnapshot`] for the request that reads it. Checking the whole file at open meant
//! reading 2.7 GB at a million articles for bodies the query path never touches.

use std::borrow::Cow;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::article::Article;
use crate::error::{Error, Result};

/// Suffix of a snapshot's body file.
pub const BODIES_SUFFIX: &str = ".bodies.bin";

/// Where each body of a body file lies, and its checksum.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BodyIndex {
    /// `offsets[slot]..offsets[slot + 1]` is the body of `slot`.
    offsets: Vec<u64>,
    /// CRC-32 (IEEE) of each body.
    crc32s: Vec<u32>,
}

/// Writes `count` bodies, `body(i)` for each slot in order, to `path` and returns where each lies, with
/// its checksum. The file is synced before this returns.
pub fn write<'a>(path: &Path, count: usize, body: impl Fn(usize) -> Result<Cow<'a, str>>) -> Result<BodyIndex> {
    let file = File::create(path).map_err(|err| Error::io(path, err))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut index = BodyIndex {
        offsets: Vec::with_capacity(count + 1),
        crc32s: Vec::with_capacity(count),
    };
    let mut offset = 0u64;
    index.offsets.push(offset);
    for slot in 0..count {
        let text = body(slot)?;
        out.write_all(text.as_bytes()).map_err(|err| Error::io(path, err))?;
        offset += text.len() as u64;
        index.offsets.push(offset);
        index.crc32s.push(crc32fast::hash(text.as_bytes()));
    }
    let file = out.into_inner().map_err(|err| Error::io(path, err.into_error()))?;
    file.sync_all().map_err(|err| Error::io(path, err))?;
    Ok(index)
}

/// Moves the bodies of `articles` to a scratch file in `dir` and returns it opened; every body is left
/// empty. The file is unlinked as soon as it is open (the handle keeps it readable), so nothing is left
/// behind. An index build uses it to keep bodies out of memory between analysis and the snapshot write.
pub fn spill(dir: &Path, articles: &mut [Article]) -> Result<BodyFile> {
    fs::create_dir_all(dir).map_err(|err| Error::io(dir, err))?;
    let path = dir.join(format!(".spill-{}{BODIES_SUFFIX}", std::process::id()));
    let index = write(&path, articles.len(), |slot| {
        Ok(Cow::Borrowed(articles[slot].body.as_str()))
    });
    let opened = index.and_then(|index| BodyFile::open(&path, index));
    let _ = fs::remove_file(&path);
    let bodies = opened?;
    for article in articles.iter_mut() {
        article.body = String::new();
    }
    Ok(bodies)
}

/// The bodies of a loaded snapshot, read from their file on demand.
#[derive(Debug)]
pub struct BodyFile {
    file: File,
    path: PathBuf,
    index: BodyIndex,
}

impl BodyFile {
    /// Opens the body file at `path` with the index the corpus file recorded: its offsets must be
    /// non-decreasing and end at the file's length, with a checksum per body.
    pub fn open(path: &Path, index: BodyIndex) -> Result<Self> {
        let file = File::open(path).map_err(|err| Error::io(path, err))?;
        let length = file.metadata().map_err(|err| Error::io(path, err))?.len();
        let offsets = &index.offsets;
        let ordered = offsets.first() == Some(&0) && offsets.windows(2).all(|pair| pair[0] <= pair[1]);
        if !ordered || offsets.last() != Some(&length) || index.crc32s.len() + 1 != offsets.len() {
            return Err(Error::CorruptSnapshot {
                path: path.to_owned(),
                reason: format!("{length} bytes, which the recorded body offsets do not delimit"),
            });
        }
        Ok(Self {
            file,
            path: path.to_owned(),
            index,
        })
    }

    /// Number of bodies.
    pub fn len(&self) -> usize {
        self.index.crc32s.len()
    }

    /// True when the file holds no body.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The body of `slot` (below [`BodyFile::len`]); [`Error::CorruptSnapshot`] when it does not match
    /// its checksum.
    pub fn read(&self, slot: usize) -> Result<String> {
        let (start, end) = (self.index.offsets[slot], self.index.offsets[slot + 1]);
        let mut bytes = vec![0; (end - start) as usize];
        self.file
            .read_exact_at(&mut bytes, start)
            .map_err(|err| Error::io(&self.path, err))?;
        let corrupt = |reason: String| Error::CorruptSnapshot {
            path: self.path.clone(),
            reason,
        };
        let (found, expected) = (crc32fast::hash(&bytes), self.index.crc32s[slot]);
        if found != expected {
            return Err(corrupt(format!(
                "the body of slot {slot} has checksum {found:08x}, expected {expected:08x}"
            )));
        }
        String::from_utf8(bytes)
            .map_err(|err| corrupt(format!("the body of slot {slot} is not UTF-8: {}", err.utf8_error())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_round_trip_and_bad_offsets_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("g{BODIES_SUFFIX}"));
        let texts = ["Erster Text", "", "Dritter Text mit Umlauten: äöü"];
        let index = write(&path, texts.len(), |slot| Ok(Cow::Borrowed(texts[slot]))).unwrap();
        assert_eq!(index.offsets.len(), 4);
        let bodies = BodyFile::open(&path, index.clone()).unwrap();
        assert_eq!(bodies.len(), 3);
        for (slot, text) in texts.iter().enumerate() {
            assert_eq!(bodies.read(slot).unwrap(), *text);
        }
        let mut short = index.clone();
        *short.offsets.last_mut().unwrap() -= 1;
        assert!(matches!(
            BodyFile::open(&path, short),
            Err(Error::CorruptSnapshot { .. })
        ));
        let mut disordered = index.clone();
        disordered.offsets[1] = 20;
        assert!(BodyFile::open(&path, disordered).is_err());
    }

    #[test]
    fn a_damaged_body_is_refused_when_read_and_the_others_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("g{BODIES_SUFFIX}"));
        let texts = ["Erster Text", "Zweiter Text"];
        let index = write(&path, texts.len(), |slot| Ok(Cow::Borrowed(texts[slot]))).unwrap();
        let mut bytes = fs::read(&path).unwrap();
        bytes[0] ^= 0x01;
        fs::write(&path, bytes).unwrap();
        let bodies = BodyFile::open(&path, index).unwrap();
        let err = bodies.read(0).unwrap_err();
        assert!(matches!(err, Error::CorruptSnapshot { .. }), "{err}");
        assert!(err.to_string().contains("checksum"), "{err}");
        assert_eq!(bodies.read(1).unwrap(), "Zweiter Text");
    }

    #[test]
    fn spilled_bodies_are_read_back_and_leave_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut articles = vec![
            crate::article::test_article("1", "Eins", "Erster Text"),
            crate::article::test_article("2", "Zwei", "Zweiter Text: äöü"),
        ];
        let bodies = spill(dir.path(), &mut articles).unwrap();
        assert!(articles.iter().all(|article| article.body.is_empty()));
        assert_eq!(bodies.read(1).unwrap(), "Zweiter Text: äöü");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
