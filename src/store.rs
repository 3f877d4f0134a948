//! How do acknowledged writes survive a crash? The live index's change log: every upsert and delete is
//! appended to a redb database in one durable transaction (redb's default `Durability::Immediate` fsyncs
//! before `commit` returns) before the write is acknowledged or applied. On start the changes newer than
//! the snapshot are replayed; once a rebuilt snapshot includes them, they are dropped from the log.
//!
//! redb gives atomic, checksummed commits: after `kill -9` at any moment the log holds every committed
//! batch whole and nothing of an uncommitted one.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
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
        let db = Database::create(path).map_err(|err| Error::store(path, err))?;
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
        let txn = self.db.begin_read().map_err(|err| self.error(err))?;
        let table = txn.open_table(CHANGES).map_err(|err| self.error(err))?;
        let mut changes = Vec::new();
        for entry in table.range(after + 1..).map_err(|err| self.error(err))? {
            let (seq, bytes) = entry.map_err(|err| self.error(err))?;
            let change = postcard::from_bytes(bytes.value()).map_err(|err| Error::CorruptSnapshot {
                path: self.path.clone(),
                reason: format!("change {} cannot be decoded: {err}", seq.value()),
            })?;
            changes.push((seq.value(), change));
        }
        Ok(changes)
    }

    /// Sequence number of the newest change ever appended (0 for none), even if it was dropped since.
    pub fn last_seq(&self) -> Result<ChangeSeq> {
        let txn = self.db.begin_read().map_err(|err| self.error(err))?;
        let meta = txn.open_table(META).map_err(|err| self.error(err))?;
        Ok(meta
            .get(LAST_SEQ)
            .map_err(|err| self.error(err))?
            .map_or(0, |seq| seq.value()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::article::test_article;

    fn article(id: &str) -> Article {
        Article {
            published_at: Some(1_700_000_000),
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
}
