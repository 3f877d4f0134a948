//! How do acknowledged writes survive a crash? The live index's change log: every upsert and delete is
//! appended to a redb database in one durable transaction (redb's default `Durability::Immediate` fsyncs
//! before `commit` returns) before the write is acknowledged or applied. On start the changes newer than
//! the snapshot are replayed; once a rebuilt snapshot includes them, they are dropped from the log.
//!
//! redb gives atomic, checksummed commits: after `kill -9` at any moment the log holds every committed
//! batch whole and nothing of an uncommitted one.
//!
//! The server opens the log in redb's single-writer mode: it is the one writer, and offline commands in
//! other processes ([`read_after`], for `weitere batch` and `weitere related`) read its commits while it
//! runs. A second writer, such as another server on the same directory, is refused.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use redb::{
    Builder, ConcurrencyMode, Database, DatabaseError, ReadTransaction, ReadableDatabase, ReadableTable,
    TableDefinition,
};
use serde::{Deserialize, Serialize};

use crate::article::Article;
use crate::error::{Error, Result};

/// Sequence number of a change; the first change is 1, numbers never repeat.
pub type ChangeSeq = u64;

/// File name of the log inside a snapshot directory.
pub const LOG_FILE: &str = "changes.redb";

const CHANGES: TableDefinition<ChangeSeq, &[u8]> = TableDefinition::new("changes");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const LAST_SEQ: &str = "last_seq";

/// One write to the live index.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Change {
    /// Insert the article, or replace the stored one with the same id.
    Upsert(Article),
    /// Remove the article with this id.
    Delete(String),
}

/// The durable, ordered log of changes.
pub struct ChangeLog {
    db: Database,
    path: PathBuf,
}

impl ChangeLog {
    /// Opens the log at `path`, creating it if missing.
    pub fn open(path: &Path) -> Result<Self> {
        let db = builder().create(path).map_err(|err| Error::store(path, err))?;
        let log = Self {
            db,
            path: path.to_owned(),
        };
        let txn = log.db.begin_write().map_err(|err| log.error(err))?;
        txn.open_table(CHANGES).map_err(|err| log.error(err))?;
        txn.open_table(META).map_err(|err| log.error(err))?;
        txn.commit().map_err(|err| log.error(err))?;
        Ok(log)
    }

    /// Appends `changes` in one durable transaction and returns their sequence numbers. When this returns
    /// `Ok`, the changes are on disk; on `Err`, none of them is.
    pub fn append(&self, changes: &[Change]) -> Result<RangeInclusive<ChangeSeq>> {
        let txn = self.db.begin_write().map_err(|err| self.error(err))?;
        let first = {
            let mut meta = txn.open_table(META).map_err(|err| self.error(err))?;
            let last = meta
                .get(LAST_SEQ)
                .map_err(|err| self.error(err))?
                .map_or(0, |seq| seq.value());
            let mut table = txn.open_table(CHANGES).map_err(|err| self.error(err))?;
            for (offset, change) in changes.iter().enumerate() {
                let bytes = postcard::to_stdvec(change).expect("changes serialise");
                table
                    .insert(last + 1 + offset as u64, bytes.as_slice())
                    .map_err(|err| self.error(err))?;
            }
            meta.insert(LAST_SEQ, last + changes.len() as u64)
                .map_err(|err| self.error(err))?;
            last + 1
        };
        txn.commit().map_err(|err| self.error(err))?;
        Ok(first..=first + changes.len() as u64 - 1)
    }

    /// Every change with a sequence number above `after`, in order.
    pub fn since(&self, after: ChangeSeq) -> Result<Vec<(ChangeSeq, Change)>> {
        let (changes, _) = read_changes(&self.db, &self.path, after)?;
        Ok(changes)
    }

    /// Sequence number of the newest change ever appended (0 for none), even if it was dropped since.
    pub fn last_seq(&self) -> Result<ChangeSeq> {
        let txn = self.db.begin_read().map_err(|err| self.error(err))?;
        last_seq_in(&txn, &self.path)
    }

    /// Drops the changes up to and including `through`: a snapshot now holds them.
    pub fn drop_through(&self, through: ChangeSeq) -> Result<()> {
        let txn = self.db.begin_write().map_err(|err| self.error(err))?;
        txn.open_table(CHANGES)
            .map_err(|err| self.error(err))?
            .retain_in(..=through, |_, _| false)
            .map_err(|err| self.error(err))?;
        txn.commit().map_err(|err| self.error(err))
    }

    fn error(&self, source: impl Into<redb::Error>) -> Error {
        Error::store(&self.path, source)
    }
}

/// Every change above `after` in the log at `path`, read without taking its write lock, so also beside a
/// running server. `Ok(None)` when the log no longer holds all of them: a rebuild has folded them into a
/// newer snapshot, which the caller should load before asking again. A missing log holds no changes.
pub fn read_after(path: &Path, after: ChangeSeq) -> Result<Option<Vec<(ChangeSeq, Change)>>> {
    if !path.exists() {
        return Ok(Some(Vec::new()));
    }
    let (changes, last_seq) = match builder().open_read_only(path) {
        Ok(db) => read_changes(&db, path, after)?,
        // The last writer was killed and no server has reopened the log since: recover it as the
        // server would on start (a writer open repairs; a read-only one may not).
        Err(DatabaseError::RepairAborted) => {
            tracing::info!(path = %path.display(), "the change log was not closed cleanly; recovering it");
            let db = builder().open(path).map_err(|err| Error::store(path, err))?;
            read_changes(&db, path, after)?
        }
        Err(err) => return Err(Error::store(path, err)),
    };
    let complete = changes.iter().map(|(seq, _)| *seq).eq(after + 1..=last_seq);
    Ok(complete.then_some(changes))
}

/// How every handle opens the log: one writing process, any number of reading ones.
fn builder() -> Builder {
    let mut builder = Builder::new();
    builder.set_concurrency_mode(ConcurrencyMode::SingleWriter);
    builder
}

/// The changes above `after`, in order, and the newest sequence number ever appended, from one read
/// transaction.
fn read_changes(
    db: &impl ReadableDatabase,
    path: &Path,
    after: ChangeSeq,
) -> Result<(Vec<(ChangeSeq, Change)>, ChangeSeq)> {
    let txn = db.begin_read().map_err(|err| Error::store(path, err))?;
    let table = txn.open_table(CHANGES).map_err(|err| Error::store(path, err))?;
    let mut changes = Vec::new();
    for entry in table.range(after + 1..).map_err(|err| Error::store(path, err))? {
        let (seq, bytes) = entry.map_err(|err| Error::store(path, err))?;
        let change = postcard::from_bytes(bytes.value()).map_err(|err| Error::CorruptSnapshot {
            path: path.to_owned(),
            reason: format!("change {} cannot be decoded: {err}", seq.value()),
        })?;
        changes.push((seq.value(), change));
    }
    Ok((changes, last_seq_in(&txn, path)?))
}

/// The newest sequence number ever appended, as `txn` sees it.
fn last_seq_in(txn: &ReadTransaction, path: &Path) -> Result<ChangeSeq> {
    let meta = txn.open_table(META).map_err(|err| Error::store(path, err))?;
    Ok(meta
        .get(LAST_SEQ)
        .map_err(|err| Error::store(path, err))?
        .map_or(0, |seq| seq.value()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::article::test_article;

    fn article(id: &str) -> Article {
        Article {
            published_at: Some(crate::article::Timestamp::from_seconds(1_700_000_000)),
            section: "Inland".into(),
            ..test_article(id, &format!("Titel {id}"), "Text")
        }
    }

    #[test]
    fn changes_come_back_in_order_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_FILE);
        {
            let log = ChangeLog::open(&path).unwrap();
            assert_eq!(
                log.append(&[Change::Upsert(article("a")), Change::Upsert(article("b"))])
                    .unwrap(),
                1..=2
            );
            assert_eq!(log.append(&[Change::Delete("a".into())]).unwrap(), 3..=3);
        }
        let log = ChangeLog::open(&path).unwrap();
        let changes = log.since(1).unwrap();
        assert_eq!(
            changes,
            vec![(2, Change::Upsert(article("b"))), (3, Change::Delete("a".into()))]
        );
        assert_eq!(log.last_seq().unwrap(), 3);
    }

    #[test]
    fn dropped_changes_never_reuse_their_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let log = ChangeLog::open(&dir.path().join(LOG_FILE)).unwrap();
        log.append(&[Change::Upsert(article("a")), Change::Upsert(article("b"))])
            .unwrap();
        log.drop_through(2).unwrap();
        assert!(log.since(0).unwrap().is_empty());
        assert_eq!(log.append(&[Change::Delete("b".into())]).unwrap(), 3..=3);
        assert_eq!(log.since(0).unwrap().len(), 1);
    }

    #[test]
    fn a_reader_beside_the_writer_sees_its_commits_and_notices_dropped_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_FILE);
        assert_eq!(read_after(&path, 0).unwrap(), Some(Vec::new()), "no log yet");
        let log = ChangeLog::open(&path).unwrap();
        log.append(&[Change::Upsert(article("a")), Change::Upsert(article("b"))])
            .unwrap();
        assert_eq!(
            read_after(&path, 1).unwrap(),
            Some(vec![(2, Change::Upsert(article("b")))])
        );
        log.drop_through(2).unwrap();
        assert_eq!(read_after(&path, 0).unwrap(), None, "changes 1 and 2 are gone");
        assert_eq!(read_after(&path, 2).unwrap(), Some(Vec::new()));
        log.append(&[Change::Delete("a".into())]).unwrap();
        assert_eq!(
            read_after(&path, 2).unwrap(),
            Some(vec![(3, Change::Delete("a".into()))])
        );
        assert_eq!(read_after(&path, 1).unwrap(), None);
    }

    #[test]
    fn a_second_writer_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_FILE);
        let _writer = ChangeLog::open(&path).unwrap();
        let error = ChangeLog::open(&path).err().expect("a second writer opened the log");
        assert!(error.to_string().contains(LOG_FILE), "{error}");
    }
}
