//! Where do article bodies live? Bodies are most of an archive's bytes, but the query path never reads
//! them: only `GetArticle`, rebuilds and evaluation do. So a snapshot keeps them in a file of their own
//! (`{generation}.bodies.bin`: the UTF-8 bodies one after another, with the offsets in the corpus file),
//! written as a stream, and a loaded engine reads one body from it when asked ([`BodyFile::read`]),
//! instead of holding every body in memory.

use std::borrow::Cow;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::article::Article;
use crate::error::{Error, Result};

/// Suffix of a snapshot's body file.
pub const BODIES_SUFFIX: &str = ".bodies.bin";

/// Writes `count` bodies, `body(i)` for each slot in order, to `path` and returns the `count + 1` byte
/// offsets that delimit them. The file is synced before this returns.
pub fn write<'a>(path: &Path, count: usize, body: impl Fn(usize) -> Result<Cow<'a, str>>) -> Result<Vec<u64>> {
    let file = File::create(path).map_err(|err| Error::io(path, err))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut offsets = Vec::with_capacity(count + 1);
    let mut offset = 0u64;
    offsets.push(offset);
    for slot in 0..count {
        let text = body(slot)?;
        out.write_all(text.as_bytes()).map_err(|err| Error::io(path, err))?;
        offset += text.len() as u64;
        offsets.push(offset);
    }
    let file = out.into_inner().map_err(|err| Error::io(path, err.into_error()))?;
    file.sync_all().map_err(|err| Error::io(path, err))?;
    Ok(offsets)
}

/// Moves the bodies of `articles` to a scratch file in `dir` and returns it opened; every body is left
/// empty. The file is unlinked as soon as it is open (the handle keeps it readable), so nothing is left
/// behind. An index build uses it to keep bodies out of memory between analysis and the snapshot write.
pub fn spill(dir: &Path, articles: &mut [Article]) -> Result<BodyFile> {
    fs::create_dir_all(dir).map_err(|err| Error::io(dir, err))?;
    let path = dir.join(format!(".spill-{}{BODIES_SUFFIX}", std::process::id()));
    let offsets = write(&path, articles.len(), |slot| {
        Ok(Cow::Borrowed(articles[slot].body.as_str()))
    });
    let opened = offsets.and_then(|offsets| BodyFile::open(&path, offsets));
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
    /// `offsets[slot]..offsets[slot + 1]` is the body of `slot`.
    offsets: Vec<u64>,
}

impl BodyFile {
    /// Opens the body file at `path` with the offsets the corpus file recorded; they must be
    /// non-decreasing and end at the file's length.
    pub fn open(path: &Path, offsets: Vec<u64>) -> Result<Self> {
        let file = File::open(path).map_err(|err| Error::io(path, err))?;
        let length = file.metadata().map_err(|err| Error::io(path, err))?.len();
        let ordered = offsets.first() == Some(&0) && offsets.windows(2).all(|pair| pair[0] <= pair[1]);
        if !ordered || offsets.last() != Some(&length) {
            return Err(Error::CorruptSnapshot {
                path: path.to_owned(),
                reason: format!("{length} bytes, which the recorded body offsets do not delimit"),
            });
        }
        Ok(Self {
            file,
            path: path.to_owned(),
            offsets,
        })
    }

    /// Number of bodies.
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    /// True when the file holds no body.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The body of `slot` (below [`BodyFile::len`]).
    pub fn read(&self, slot: usize) -> Result<String> {
        let (start, end) = (self.offsets[slot], self.offsets[slot + 1]);
        let mut bytes = vec![0; (end - start) as usize];
        self.file
            .read_exact_at(&mut bytes, start)
            .map_err(|err| Error::io(&self.path, err))?;
        String::from_utf8(bytes).map_err(|err| Error::CorruptSnapshot {
            path: self.path.clone(),
            reason: format!("the body of slot {slot} is not UTF-8: {}", err.utf8_error()),
        })
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
        let offsets = write(&path, texts.len(), |slot| Ok(Cow::Borrowed(texts[slot]))).unwrap();
        assert_eq!(offsets.len(), 4);
        let bodies = BodyFile::open(&path, offsets.clone()).unwrap();
        assert_eq!(bodies.len(), 3);
        for (slot, text) in texts.iter().enumerate() {
            assert_eq!(bodies.read(slot).unwrap(), *text);
        }
        let mut short = offsets.clone();
        *short.last_mut().unwrap() -= 1;
        assert!(matches!(
            BodyFile::open(&path, short),
            Err(Error::CorruptSnapshot { .. })
        ));
        assert!(BodyFile::open(&path, vec![0, 20, 5, *offsets.last().unwrap()]).is_err());
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
