//! The one error type of the engine. Every fallible public function returns [`Result`]; the gRPC layer maps
//! each variant to a status code in a single `match` (`service::status`), the CLI to an exit code.

use std::path::{Path, PathBuf};
use std::time::Instant;

/// How many bytes of offending input an error message quotes at most.
pub const QUOTED_BYTES: usize = 64;

/// `text` for an error message: escaped, and cut after its first [`QUOTED_BYTES`] bytes (at a character
/// boundary) with its full length, so that no input makes an error message long.
pub fn quote(text: &str) -> String {
    if text.len() <= QUOTED_BYTES {
        return format!("{text:?}");
    }
    format!("{:?}… ({} bytes)", prefix(text, QUOTED_BYTES), text.len())
}

/// The longest start of `text` that holds at most `max_bytes` bytes and ends at a character boundary.
pub fn prefix(text: &str, max_bytes: usize) -> &str {
    let mut end = max_bytes.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Result with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the engine, with the data a caller needs to act on it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request named an article id that is not in the index.
    #[error("unknown article id {}", quote(.0))]
    UnknownArticle(String),

    /// A request or setting is malformed; `field` names the offending field.
    #[error("invalid {field}: {reason}")]
    InvalidArgument {
        /// The request field or setting, e.g. `k` or `filter.published_after`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A line of an input file could not be read as an article.
    #[error("{}:{line}: {}{reason}", path.display(), field.as_ref().map(|f| format!("field {f:?}: ")).unwrap_or_default())]
    MalformedInput {
        /// The input file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The JSON field at fault, when one is.
        field: Option<String>,
        /// Why the line was not accepted.
        reason: String,
    },

    /// An input held no article that could be indexed.
    #[error("no article to index: {0}")]
    EmptyCorpus(String),

    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A snapshot file does not match its checksum or cannot be decoded: it is damaged.
    #[error("snapshot {} is corrupt: {reason}", path.display())]
    CorruptSnapshot {
        /// The damaged file.
        path: PathBuf,
        /// What did not match.
        reason: String,
    },

    /// A snapshot was written in a format this build cannot read.
    #[error("snapshot {} has format version {found}, this build reads version {expected}; rebuild it with `weitere index`", path.display())]
    IncompatibleSnapshot {
        /// The snapshot directory.
        path: PathBuf,
        /// Version found in the manifest.
        found: u32,
        /// Version this build writes and reads.
        expected: u32,
    },

    /// The nearest-neighbour index failed in a way that is not the caller's fault.
    #[error("index error: {0}")]
    Index(String),

    /// A request lacks the token its call needs, or presents a wrong one; the text says which.
    #[error("{0}")]
    Unauthenticated(&'static str),

    /// A request's deadline passed; the text says when, and what was skipped.
    #[error("the deadline passed {0}")]
    DeadlineExceeded(&'static str),

    /// The change log is not the one the snapshot expects (missing, empty, from another directory, older
    /// than acknowledged writes) or holds a damaged record: serving would silently lose acknowledged writes.
    #[error("change log {}: {}{reason}", path.display(), seq.map(|seq| format!("change {seq}: ")).unwrap_or_default())]
    CorruptChangeLog {
        /// The log file.
        path: PathBuf,
        /// The damaged record's sequence number, when one is at fault.
        seq: Option<u64>,
        /// What is wrong.
        reason: String,
    },

    /// The change log is closed after a failed commit (a full disk, say) and could not be reopened yet;
    /// writes are refused until it can.
    #[error("change log {} is unavailable: {reason}", path.display())]
    ChangeLogUnavailable {
        /// The log file.
        path: PathBuf,
        /// Why.
        reason: String,
    },

    /// The durable change log could not be opened, read or written; a write that fails here is not
    /// acknowledged.
    #[error("change log {}: {source}", path.display())]
    Store {
        /// The database file.
        path: PathBuf,
        /// The underlying redb error.
        #[source]
        source: Box<redb::Error>,
    },
}

/// Fails with [`Error::DeadlineExceeded`] when `deadline` has passed; `when` completes the message
/// ("the deadline passed {when}"), saying what was being done and what was skipped.
pub fn check_deadline(deadline: Option<Instant>, when: &'static str) -> Result<()> {
    match deadline {
        Some(deadline) if Instant::now() >= deadline => Err(Error::DeadlineExceeded(when)),
        _ => Ok(()),
    }
}

impl Error {
    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::Store`].
    pub fn store(path: impl Into<PathBuf>, source: impl Into<redb::Error>) -> Self {
        Error::Store {
            path: path.into(),
            source: Box::new(source.into()),
        }
    }

    /// Shorthand for [`Error::CorruptChangeLog`].
    pub fn corrupt_log(path: &Path, seq: Option<u64>, reason: String) -> Self {
        Error::CorruptChangeLog {
            path: path.to_owned(),
            seq,
            reason,
        }
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_passed_deadline_is_deadline_exceeded() {
        assert!(check_deadline(None, "now").is_ok());
        assert!(check_deadline(Some(Instant::now() + Duration::from_secs(5)), "now").is_ok());
        let passed = check_deadline(Some(Instant::now() - Duration::from_millis(1)), "before the search").unwrap_err();
        assert!(matches!(passed, Error::DeadlineExceeded(_)));
        assert_eq!(passed.to_string(), "the deadline passed before the search");
    }
}
