//! Where do the bodies and token counts of fresh articles live? Neither is read by a query: the body only
//! by `GetArticle`, an identical-upsert check and a rebuild's snapshot write, the token counts only by a
//! rebuild. Yet they were more than half of a fresh article's heap (at 100,000 generated articles, 2.6 KB
//! of body and 5.0 KB of tokens of 13.9 KB). So each base keeps them in a scratch file of its own
//! ([`FreshTexts`]): a writer appends an upsert's body and tokens while it prepares the change, outside
//! the commit lock, and the fresh article keeps only where they lie ([`FreshText::Stored`]).
//!
//! The file is created on the first upsert in the directory the base was loaded from (the system's
//! temporary directory for an engine built in memory) and unlinked at once, so it disappears with the
//! base and a crash leaves nothing behind: the change log holds every fresh article anyway. Appends
//! reserve their range with an atomic counter and write it with `pwrite`, so writers do not wait for each
//! other; every version of the delta shares the file, and bytes of changes that were never applied (a
//! failed commit, or one prepared again against a newer base) are never read. If the file cannot be
//! created or written (a full disk), the text stays in memory ([`FreshText::InMemory`]) and the failure
//! is logged (once): a write never fails for it, and an offline command on a read-only snapshot directory
//! still replays the log.

use std::borrow::Cow;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::tfidf::ArticleTokens;

/// A fresh article's body and token counts: where they lie in the base's [`FreshTexts`], or, if they could
/// not be written there, the values themselves.
#[derive(Clone, Debug, PartialEq)]
pub enum FreshText {
    /// In the scratch file.
    Stored(StoredText),
    /// In memory, because the scratch file could not be written.
    InMemory(Box<(String, ArticleTokens)>),
}

/// Where one article's text lies in a [`FreshTexts`] file: the body's UTF-8 bytes, then its tokens
/// (postcard), with a CRC-32 over both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredText {
    offset: u64,
    body_len: u32,
    tokens_len: u32,
    crc32: u32,
}

/// The scratch file of one base's fresh texts.
#[derive(Debug)]
pub struct FreshTexts {
    /// Where the file is created: the directory the base came from, or `None` for the temporary directory.
    dir: Option<PathBuf>,
    /// Created on the first append; the error is kept, so that a failing directory is tried once.
    file: OnceLock<std::result::Result<File, String>>,
    /// Bytes reserved so far.
    end: AtomicU64,
    /// Whether a failure to store has been logged (only the first is, as every later write would fail too).
    failure_logged: AtomicBool,
}

impl FreshTexts {
    /// A store whose file will be created in `dir` (the temporary directory for `None`).
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self {
            dir,
            file: OnceLock::new(),
            end: AtomicU64::new(0),
            failure_logged: AtomicBool::new(false),
        }
    }

    /// Stores `body` and `tokens`; in memory if the file cannot be written (logged).
    pub fn store(&self, body: &str, tokens: ArticleTokens) -> FreshText {
        match self.append(body, &tokens) {
            Ok(stored) => FreshText::Stored(stored),
            Err(err) => {
                if !self.failure_logged.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        %err,
                        "fresh articles' texts stay in memory until the next rebuild (further failures are not logged)"
                    );
                }
                FreshText::InMemory(Box::new((body.to_owned(), tokens)))
            }
        }
    }

    /// The body of `text`.
    pub fn body<'a>(&self, text: &'a FreshText) -> Result<Cow<'a, str>> {
        match text {
            FreshText::InMemory(held) => Ok(Cow::Borrowed(&held.0)),
            FreshText::Stored(stored) => {
                let bytes = self.read(stored)?;
                let body = bytes[..stored.body_len as usize].to_vec();
                String::from_utf8(body)
                    .map(Cow::Owned)
                    .map_err(|_| self.corrupt("a fresh body is not UTF-8".into()))
            }
        }
    }

    /// The token counts of `text`.
    pub fn tokens<'a>(&self, text: &'a FreshText) -> Result<Cow<'a, ArticleTokens>> {
        match text {
            FreshText::InMemory(held) => Ok(Cow::Borrowed(&held.1)),
            FreshText::Stored(stored) => {
                let bytes = self.read(stored)?;
                postcard::from_bytes(&bytes[stored.body_len as usize..])
                    .map(Cow::Owned)
                    .map_err(|err| self.corrupt(format!("cannot decode fresh token counts: {err}")))
            }
        }
    }

    fn append(&self, body: &str, tokens: &ArticleTokens) -> Result<StoredText> {
        let file = self.file()?;
        let encoded_tokens = postcard::to_allocvec(tokens)
            .map_err(|err| Error::Index(format!("cannot encode fresh token counts: {err}")))?;
        let mut crc = crc32fast::Hasher::new();
        crc.update(body.as_bytes());
        crc.update(&encoded_tokens);
        let stored = StoredText {
            offset: self
                .end
                .fetch_add((body.len() + encoded_tokens.len()) as u64, Ordering::Relaxed),
            body_len: length(body.len())?,
            tokens_len: length(encoded_tokens.len())?,
            crc32: crc.finalize(),
        };
        let write = |bytes: &[u8], at: u64| file.write_all_at(bytes, at).map_err(|err| self.io_error(err));
        write(body.as_bytes(), stored.offset)?;
        write(&encoded_tokens, stored.offset + u64::from(stored.body_len))?;
        Ok(stored)
    }

    /// The bytes of `stored`, checked against their checksum.
    fn read(&self, stored: &StoredText) -> Result<Vec<u8>> {
        let file = self.file()?;
        let mut bytes = vec![0; stored.body_len as usize + stored.tokens_len as usize];
        file.read_exact_at(&mut bytes, stored.offset)
            .map_err(|err| self.io_error(err))?;
        if crc32fast::hash(&bytes) != stored.crc32 {
            return Err(self.corrupt(format!(
                "the fresh text at offset {} does not match its checksum",
                stored.offset
            )));
        }
        Ok(bytes)
    }

    fn file(&self) -> Result<&File> {
        let created = self.file.get_or_init(|| {
            let file = match &self.dir {
                Some(dir) => tempfile::tempfile_in(dir),
                None => tempfile::tempfile(),
            };
            file.map_err(|err| err.to_string())
        });
        created.as_ref().map_err(|reason| Error::Io {
            path: self.shown_dir(),
            source: std::io::Error::other(format!("cannot create the fresh texts' scratch file: {reason}")),
        })
    }

    fn shown_dir(&self) -> PathBuf {
        self.dir.clone().unwrap_or_else(std::env::temp_dir)
    }

    fn io_error(&self, err: std::io::Error) -> Error {
        Error::io(self.shown_dir(), err)
    }

    fn corrupt(&self, reason: String) -> Error {
        Error::CorruptSnapshot {
            path: self.shown_dir(),
            reason,
        }
    }
}

/// `len` as a stored length: a text is at most the body limit, far below 4 GiB.
fn length(len: usize) -> Result<u32> {
    u32::try_from(len).map_err(|_| Error::Index(format!("a fresh text of {len} bytes does not fit the store")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::article::test_article;

    fn tokens_of(body: &str) -> ArticleTokens {
        ArticleTokens::gather(&test_article("x", "Titel", body), false)
    }

    #[test]
    fn stored_texts_read_back_and_leave_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let texts = FreshTexts::new(Some(dir.path().to_owned()));
        let bodies = ["Erster Text über Wahlen", "", "Dritter Text mit Umlauten: äöü"];
        let stored: Vec<FreshText> = bodies.iter().map(|body| texts.store(body, tokens_of(body))).collect();
        for (text, body) in stored.iter().zip(bodies) {
            assert!(matches!(text, FreshText::Stored(_)));
            assert_eq!(texts.body(text).unwrap(), body);
            assert_eq!(*texts.tokens(text).unwrap(), tokens_of(body));
        }
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "the scratch file is unlinked"
        );
    }

    #[test]
    fn concurrent_writers_do_not_overwrite_each_other() {
        let texts = FreshTexts::new(None);
        let stored: Vec<(String, FreshText)> = std::thread::scope(|scope| {
            let writers: Vec<_> = (0..4)
                .map(|writer| {
                    let texts = &texts;
                    scope.spawn(move || {
                        (0..50)
                            .map(|i| {
                                let body = format!("Meldung {writer}-{i} {}", "Text ".repeat(i));
                                let text = texts.store(&body, tokens_of(&body));
                                (body, text)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            writers.into_iter().flat_map(|writer| writer.join().unwrap()).collect()
        });
        for (body, text) in &stored {
            assert_eq!(texts.body(text).unwrap(), *body);
        }
    }

    #[test]
    fn a_directory_that_cannot_hold_the_file_keeps_texts_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let texts = FreshTexts::new(Some(dir.path().join("missing")));
        let text = texts.store("Ein Text", tokens_of("Ein Text"));
        assert!(matches!(text, FreshText::InMemory(_)));
        assert_eq!(texts.body(&text).unwrap(), "Ein Text");
        assert_eq!(*texts.tokens(&text).unwrap(), tokens_of("Ein Text"));
    }

    #[test]
    fn a_damaged_text_is_refused() {
        let texts = FreshTexts::new(None);
        let text = texts.store("Ein Text", tokens_of("Ein Text"));
        let FreshText::Stored(stored) = &text else {
            panic!("stored in the file")
        };
        texts.file().unwrap().write_all_at(b"X", stored.offset).unwrap();
        assert!(matches!(texts.body(&text), Err(Error::CorruptSnapshot { .. })));
    }
}
