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
//!
//! **Integrity.** Each log has a random identity, and each record carries a CRC-32 of its encoded bytes,
//! checked whenever it is read: a damaged record stops the start with its sequence number. The snapshot
//! manifest binds the log it expects ([`LogBinding`]: identity and newest sequence known to be in it), so
//! a log that is missing, empty, from another directory or older than expected is refused
//! ([`check_binding`]) instead of silently dropping acknowledged writes.
//!
//! **I/O errors.** After a failed commit redb refuses every further write ("previous I/O error"), so the
//! handle is closed ([`ChangeLog::close_after_failure`]) and reopened on a later write
//! ([`ChangeLog::reopen`]); writes resume once the disk has room again, without a restart.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use redb::{
    Builder, ConcurrencyMode, Database, DatabaseError, ReadTransaction, ReadableDatabase, ReadableTable,
    ReadableTableMetadata, TableDefinition,
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
const LOG_ID: &str = "log_id";
const FORMAT: &str = "format";

/// Record format this build writes and reads: 2 = a CRC-32 (little-endian) before each postcard record.
/// Logs of format 1 (weitere 0.1: no checksums, whole-second times) are refused if they hold records.
pub const LOG_FORMAT: u64 = 2;

/// Changes dropped per transaction after a rebuild (see [`ChangeLog::drop_through`]).
pub const DROP_CHUNK: ChangeSeq = 1_024;

/// Which change log a snapshot expects beside it; recorded in its manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogBinding {
    /// The log's random identity, as 16 hex digits.
    pub log_id: String,
    /// Newest sequence number known to be in the log when the binding was written; the log may only be
    /// newer.
    pub last_seq: ChangeSeq,
}

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
    /// `None` after a failed commit, until [`ChangeLog::reopen`] succeeds.
    /// Shared so that reads and the rebuild's clean-up run beside appends instead of queuing behind the
    /// mutex, which only guards closing and reopening the handle.
    db: Mutex<Option<Arc<Database>>>,
    path: PathBuf,
    id: u64,
}

impl ChangeLog {
    /// Opens the log at `path`, creating it (with a new identity, numbering from `first_seq + 1`) if it is
    /// missing. A damaged log, or one in an older format that still holds records, is refused.
    pub fn open(path: &Path, first_seq: ChangeSeq) -> Result<Self> {
        let db = builder().create(path).map_err(|err| Error::store(path, err))?;
        let id = prepare(&db, path, first_seq)?;
        Ok(Self {
            db: Mutex::new(Some(Arc::new(db))),
            path: path.to_owned(),
            id,
        })
    }

    /// The log's identity.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Where the log lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A binding to this log as it is now, for a snapshot manifest.
    pub fn binding(&self) -> Result<LogBinding> {
        Ok(LogBinding {
            log_id: format_log_id(self.id),
            last_seq: self.last_seq()?,
        })
    }

    /// Appends `records` in one durable transaction (one fsync) and returns their sequence numbers. When
    /// this returns `Ok`, the changes are on disk; on `Err`, none of them is acknowledged (after an I/O
    /// error redb may still have written them; [`ChangeLog::reopen`] tells).
    pub fn append(&self, records: &[Record]) -> Result<RangeInclusive<ChangeSeq>> {
        self.with_db(|db| self.append_to(db, records))
    }

    fn append_to(&self, db: &Database, records: &[Record]) -> Result<RangeInclusive<ChangeSeq>> {
        let txn = db.begin_write().map_err(|err| self.error(err))?;
        let first = {
            let mut meta = txn.open_table(META).map_err(|err| self.error(err))?;
            let last = meta
                .get(LAST_SEQ)
                .map_err(|err| self.error(err))?
                .map_or(0, |seq| seq.value());
            let mut table = txn.open_table(CHANGES).map_err(|err| self.error(err))?;
            for (offset, record) in records.iter().enumerate() {
                table
                    .insert(last + 1 + offset as u64, record.0.as_slice())
                    .map_err(|err| self.error(err))?;
            }
            meta.insert(LAST_SEQ, last + records.len() as u64)
                .map_err(|err| self.error(err))?;
            last + 1
        };
        txn.commit().map_err(|err| self.error(err))?;
        Ok(first..=first + records.len() as u64 - 1)
    }

    /// Every change with a sequence number above `after`, in order; each record's checksum is verified.
    pub fn since(&self, after: ChangeSeq) -> Result<Vec<(ChangeSeq, Change)>> {
        self.since_at_most(after, usize::MAX)
    }

    /// The first `limit` changes with a sequence number above `after`, in order, checked as by
    /// [`ChangeLog::since`].
    pub fn since_at_most(&self, after: ChangeSeq, limit: usize) -> Result<Vec<(ChangeSeq, Change)>> {
        self.with_db(|db| Ok(read_changes(db, &self.path, after, None, limit)?.0))
    }

    /// Sequence number of the newest change ever appended (0 for none), even if it was dropped since.
    pub fn last_seq(&self) -> Result<ChangeSeq> {
        self.with_db(|db| {
            let txn = db.begin_read().map_err(|err| self.error(err))?;
            last_seq_in(&txn, &self.path)
        })
    }

    /// Drops the changes up to and including `through`: a snapshot now holds them. They go
    /// [`DROP_CHUNK`] at a time, one transaction each, so that appends wait for one chunk at most.
    pub fn drop_through(&self, through: ChangeSeq) -> Result<()> {
        self.with_db(|db| {
            loop {
                let txn = db.begin_write().map_err(|err| self.error(err))?;
                let dropped_all = {
                    let mut table = txn.open_table(CHANGES).map_err(|err| self.error(err))?;
                    let oldest = table
                        .first()
                        .map_err(|err| self.error(err))?
                        .map(|(seq, _)| seq.value());
                    match oldest {
                        Some(oldest) if oldest <= through => {
                            let last = through.min(oldest + DROP_CHUNK - 1);
                            table
                                .retain_in(oldest..=last, |_, _| false)
                                .map_err(|err| self.error(err))?;
                            last == through
                        }
                        _ => true,
                    }
                };
                txn.commit().map_err(|err| self.error(err))?;
                if dropped_all {
                    return Ok(());
                }
            }
        })
    }

    /// Closes the database after a failed commit: redb refuses every write after an I/O error, and only a
    /// fresh open (which recovers the file) clears that.
    pub fn close_after_failure(&self) {
        *self.lock() = None;
    }

    /// True while the database is open (it is closed after a failed commit until reopened).
    pub fn is_open(&self) -> bool {
        self.lock().is_some()
    }

    /// Opens the database again after [`ChangeLog::close_after_failure`], recovering it as a start would,
    /// and checks that it is still this log. Fails (to be retried) while a read still holds the old handle.
    pub fn reopen(&self) -> Result<()> {
        let mut db = self.lock();
        if db.is_some() {
            return Ok(());
        }
        let reopened = builder().create(&self.path).map_err(|err| self.error(err))?;
        let id = prepare(&reopened, &self.path, 0)?;
        if id != self.id {
            return Err(Error::corrupt_log(
                &self.path,
                None,
                format!(
                    "was replaced while the server ran: identity {}, expected {}",
                    format_log_id(id),
                    format_log_id(self.id)
                ),
            ));
        }
        *db = Some(Arc::new(reopened));
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Option<Arc<Database>>> {
        // A panic while holding the guard cannot leave the Option half-written.
        self.db.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `work` on the open database, or fails while it is closed after a failure.
    fn with_db<T>(&self, work: impl FnOnce(&Database) -> Result<T>) -> Result<T> {
        let db = self.lock().clone();
        match db {
            Some(db) => work(&db),
            None => Err(Error::ChangeLogUnavailable {
                path: self.path.clone(),
                reason: "closed after a failed commit; it is reopened on the next write".into(),
            }),
        }
    }

    fn error(&self, source: impl Into<redb::Error>) -> Error {
        Error::store(&self.path, source)
    }
}

/// Creates the tables of a new log (identity, format, numbering after `first_seq`) or checks an existing
/// one, and returns its identity. A log in format 1 without records is brought to the current format.
fn prepare(db: &Database, path: &Path, first_seq: ChangeSeq) -> Result<u64> {
    let txn = db.begin_write().map_err(|err| Error::store(path, err))?;
    let id = {
        let changes = txn.open_table(CHANGES).map_err(|err| Error::store(path, err))?;
        let mut meta = txn.open_table(META).map_err(|err| Error::store(path, err))?;
        let format = meta
            .get(FORMAT)
            .map_err(|err| Error::store(path, err))?
            .map(|value| value.value());
        let holds_records = !changes.is_empty().map_err(|err| Error::store(path, err))?;
        match format {
            Some(LOG_FORMAT) => {}
            Some(other) => {
                return Err(Error::corrupt_log(
                    path,
                    None,
                    format!("has record format {other}, this build reads format {LOG_FORMAT}"),
                ));
            }
            None if holds_records => {
                return Err(Error::corrupt_log(
                    path,
                    None,
                    "holds records of weitere 0.1 (format 1, without checksums), which this build cannot \
                     read; rebuild the snapshot with that version's server running, or start with \
                     --accept-change-log-loss to set the log aside"
                        .into(),
                ));
            }
            None => {
                meta.insert(FORMAT, LOG_FORMAT).map_err(|err| Error::store(path, err))?;
            }
        }
        if meta.get(LAST_SEQ).map_err(|err| Error::store(path, err))?.is_none() {
            meta.insert(LAST_SEQ, first_seq)
                .map_err(|err| Error::store(path, err))?;
        }
        let existing = meta
            .get(LOG_ID)
            .map_err(|err| Error::store(path, err))?
            .map(|value| value.value());
        match existing {
            Some(id) => id,
            None => {
                let id = rand::random::<u64>();
                meta.insert(LOG_ID, id).map_err(|err| Error::store(path, err))?;
                id
            }
        }
    };
    txn.commit().map_err(|err| Error::store(path, err))?;
    Ok(id)
}

/// 16 hex digits: how a log identity appears in manifests and messages.
fn format_log_id(id: u64) -> String {
    format!("{id:016x}")
}

/// Checks the log at `path` against the `expected` binding of a snapshot whose base includes the log up
/// to `base_change`, before it is opened: a log that a snapshot expects must exist, be non-empty and not
/// be older than expected (a snapshot rebuilt from live changes, `base_change > 0`, always expects one).
/// Whether it is the same log is checked by [`check_identity`] once it is open.
pub fn check_binding(path: &Path, expected: Option<&LogBinding>, base_change: ChangeSeq) -> Result<()> {
    let size = match std::fs::metadata(path) {
        Ok(metadata) => Some(metadata.len()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => return Err(Error::io(path, err)),
    };
    let expects_log = expected.is_some() || base_change > 0;
    let problem = match size {
        None if expects_log => "is missing",
        Some(0) if expects_log => "is empty (0 bytes)",
        _ => return Ok(()),
    };
    let expected = expected.map_or_else(
        || format!("changes after {base_change}"),
        |binding| format!("log {} with changes through {}", binding.log_id, binding.last_seq),
    );
    Err(Error::corrupt_log(
        path,
        None,
        format!("{problem}, but the snapshot expects {expected}: acknowledged writes would be lost"),
    ))
}

/// Checks that the open log `id` with newest sequence `last_seq` is the one `expected` names, and no older.
pub fn check_identity(path: &Path, id: u64, last_seq: ChangeSeq, expected: Option<&LogBinding>) -> Result<()> {
    let Some(expected) = expected else {
        return Ok(());
    };
    if format_log_id(id) != expected.log_id {
        return Err(Error::corrupt_log(
            path,
            None,
            format!(
                "is log {}, but the snapshot expects log {}: it belongs to another model directory",
                format_log_id(id),
                expected.log_id
            ),
        ));
    }
    if last_seq < expected.last_seq {
        return Err(Error::corrupt_log(
            path,
            None,
            format!(
                "ends at change {last_seq}, but changes through {} were acknowledged: it is an older copy",
                expected.last_seq
            ),
        ));
    }
    Ok(())
}

/// A change encoded for the log: the CRC-32 of its postcard bytes, little-endian, then the bytes. Encoded
/// by each writer before it waits for a commit, so that the one committing for a group only copies bytes.
#[derive(Clone, Debug)]
pub struct Record(Vec<u8>);

impl Record {
    /// Encodes `change`.
    pub fn encode(change: &Change) -> Self {
        let bytes = postcard::to_stdvec(change).expect("changes serialise");
        let mut record = Vec::with_capacity(4 + bytes.len());
        record.extend_from_slice(&crc32fast::hash(&bytes).to_le_bytes());
        record.extend_from_slice(&bytes);
        Self(record)
    }
}

/// The change in a record written by [`Record::encode`], or why it is damaged.
fn decode(record: &[u8]) -> std::result::Result<Change, String> {
    let Some((checksum, bytes)) = record.split_first_chunk::<4>() else {
        return Err(format!("{} bytes, too short for a record", record.len()));
    };
    let (expected, found) = (u32::from_le_bytes(*checksum), crc32fast::hash(bytes));
    if expected != found {
        return Err(format!("checksum {found:08x}, expected {expected:08x}"));
    }
    postcard::from_bytes(bytes).map_err(|err| format!("cannot be decoded: {err}"))
}

/// Every change above `after` in the log at `path`, read without taking its write lock, so also beside a
/// running server. `Ok(None)` when the log no longer holds all of them: a rebuild has folded them into a
/// newer snapshot, which the caller should load before asking again. The log is checked against the
/// snapshot's `expected` binding and `base_change` as at a start ([`check_binding`]); a missing log that
/// no snapshot expects holds no changes.
pub fn read_after(
    path: &Path,
    after: ChangeSeq,
    expected: Option<&LogBinding>,
) -> Result<Option<Vec<(ChangeSeq, Change)>>> {
    check_binding(path, expected, after)?;
    if !path.exists() {
        return Ok(Some(Vec::new()));
    }
    let (changes, last_seq) = match builder().open_read_only(path) {
        Ok(db) => read_changes(&db, path, after, Some(expected), usize::MAX)?,
        // The last writer was killed and no server has reopened the log since: recover it as the
        // server would on start (a writer open repairs; a read-only one may not).
        Err(DatabaseError::RepairAborted) => {
            tracing::info!(path = %path.display(), "the change log was not closed cleanly; recovering it");
            let db = builder().open(path).map_err(|err| Error::store(path, err))?;
            read_changes(&db, path, after, Some(expected), usize::MAX)?
        }
        Err(err) => return Err(Error::store(path, err)),
    };
    let complete = changes.iter().map(|(seq, _)| *seq).eq(after + 1..=last_seq);
    Ok(complete.then_some(changes))
}

/// Bytes of log pages redb keeps in memory. Its default (1 GiB) let the cache grow with every record
/// until a rebuild dropped them: 3.6 KB per upsert at 100,000 generated articles, a quarter of a fresh
/// article's memory. Appends touch only the newest pages, and records are read back only by a
/// rebuild's catch-up and at start.
const CACHE_BYTES: usize = 16 << 20;

/// How every handle opens the log: one writing process, any number of reading ones.
fn builder() -> Builder {
    let mut builder = Builder::new();
    builder.set_concurrency_mode(ConcurrencyMode::SingleWriter);
    builder.set_cache_size(CACHE_BYTES);
    builder
}

/// The changes above `after`, in order, and the newest sequence number ever appended, from one read
/// transaction; with `check`, the log's identity is first checked against that expected binding.
fn read_changes(
    db: &impl ReadableDatabase,
    path: &Path,
    after: ChangeSeq,
    check: Option<Option<&LogBinding>>,
    limit: usize,
) -> Result<(Vec<(ChangeSeq, Change)>, ChangeSeq)> {
    let txn = db.begin_read().map_err(|err| Error::store(path, err))?;
    if let Some(expected) = check {
        let meta = txn.open_table(META).map_err(|err| Error::store(path, err))?;
        let id = meta
            .get(LOG_ID)
            .map_err(|err| Error::store(path, err))?
            .map(|id| id.value());
        let Some(id) = id else {
            return Err(Error::corrupt_log(
                path,
                None,
                "has no identity: it is not a change log of this build".into(),
            ));
        };
        check_identity(path, id, last_seq_in(&txn, path)?, expected)?;
    }
    let table = txn.open_table(CHANGES).map_err(|err| Error::store(path, err))?;
    let mut changes = Vec::new();
    for entry in table
        .range(after + 1..)
        .map_err(|err| Error::store(path, err))?
        .take(limit)
    {
        let (seq, record) = entry.map_err(|err| Error::store(path, err))?;
        let change = decode(record.value()).map_err(|reason| Error::corrupt_log(path, Some(seq.value()), reason))?;
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

    fn records<const N: usize>(changes: [Change; N]) -> Vec<Record> {
        changes.iter().map(Record::encode).collect()
    }

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
            let log = ChangeLog::open(&path, 0).unwrap();
            assert_eq!(
                log.append(&records([Change::Upsert(article("a")), Change::Upsert(article("b"))]))
                    .unwrap(),
                1..=2
            );
            assert_eq!(log.append(&records([Change::Delete("a".into())])).unwrap(), 3..=3);
        }
        let log = ChangeLog::open(&path, 0).unwrap();
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
        let log = ChangeLog::open(&dir.path().join(LOG_FILE), 0).unwrap();
        log.append(&records([Change::Upsert(article("a")), Change::Upsert(article("b"))]))
            .unwrap();
        log.drop_through(2).unwrap();
        assert!(log.since(0).unwrap().is_empty());
        assert_eq!(log.append(&records([Change::Delete("b".into())])).unwrap(), 3..=3);
        assert_eq!(log.since(0).unwrap().len(), 1);
    }

    #[test]
    fn changes_are_read_a_limited_number_at_a_time_and_dropped_in_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let log = ChangeLog::open(&dir.path().join(LOG_FILE), 0).unwrap();
        let count = 2 * DROP_CHUNK + 10;
        let deletes: Vec<Record> = (0..count)
            .map(|i| Record::encode(&Change::Delete(format!("a-{i}"))))
            .collect();
        log.append(&deletes).unwrap();
        let first = log.since_at_most(5, 3).unwrap();
        assert_eq!(first.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(), [6, 7, 8]);
        log.drop_through(count - 3).unwrap();
        let left = log.since(0).unwrap();
        assert_eq!(
            left.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
            [count - 2, count - 1, count]
        );
        log.drop_through(count - 3).unwrap();
        assert_eq!(log.since(0).unwrap().len(), 3, "dropping again drops nothing more");
    }

    #[test]
    fn a_reader_beside_the_writer_sees_its_commits_and_notices_dropped_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_FILE);
        assert_eq!(read_after(&path, 0, None).unwrap(), Some(Vec::new()), "no log yet");
        let log = ChangeLog::open(&path, 0).unwrap();
        log.append(&records([Change::Upsert(article("a")), Change::Upsert(article("b"))]))
            .unwrap();
        assert_eq!(
            read_after(&path, 1, None).unwrap(),
            Some(vec![(2, Change::Upsert(article("b")))])
        );
        log.drop_through(2).unwrap();
        assert_eq!(read_after(&path, 0, None).unwrap(), None, "changes 1 and 2 are gone");
        assert_eq!(read_after(&path, 2, None).unwrap(), Some(Vec::new()));
        log.append(&records([Change::Delete("a".into())])).unwrap();
        assert_eq!(
            read_after(&path, 2, None).unwrap(),
            Some(vec![(3, Change::Delete("a".into()))])
        );
        assert_eq!(read_after(&path, 1, None).unwrap(), None);
    }

    #[test]
    fn a_second_writer_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_FILE);
        let _writer = ChangeLog::open(&path, 0).unwrap();
        let error = ChangeLog::open(&path, 0).err().expect("a second writer opened the log");
        assert!(error.to_string().contains(LOG_FILE), "{error}");
    }

    #[test]
    fn a_damaged_record_is_refused_with_its_sequence_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_FILE);
        let log = ChangeLog::open(&path, 0).unwrap();
        log.append(&records([Change::Upsert(article("a")), Change::Upsert(article("b"))]))
            .unwrap();
        drop(log);
        // Flip one byte of record 2 inside redb (a write that bypasses our encoding).
        let db = builder().open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut table = txn.open_table(CHANGES).unwrap();
            let mut record = table.get(2).unwrap().unwrap().value().to_vec();
            *record.last_mut().unwrap() ^= 0x20;
            table.insert(2, record.as_slice()).unwrap();
        }
        txn.commit().unwrap();
        drop(db);
        let log = ChangeLog::open(&path, 0).unwrap();
        let err = log.since(0).unwrap_err();
        assert!(matches!(err, Error::CorruptChangeLog { seq: Some(2), .. }), "{err}");
        assert!(err.to_string().contains("change 2: checksum"), "{err}");
    }

    #[test]
    fn a_missing_empty_foreign_or_older_log_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_FILE);
        let log = ChangeLog::open(&path, 0).unwrap();
        log.append(&records([Change::Upsert(article("a"))])).unwrap();
        let binding = log.binding().unwrap();
        assert_eq!(binding.last_seq, 1);
        assert!(check_binding(&path, Some(&binding), 0).is_ok());
        assert!(check_identity(&path, log.id(), 1, Some(&binding)).is_ok());
        drop(log);

        let missing = dir.path().join("other.redb");
        let err = check_binding(&missing, Some(&binding), 0).unwrap_err();
        assert!(err.to_string().contains("is missing"), "{err}");
        assert!(err.to_string().contains(&binding.log_id), "{err}");
        let err = check_binding(&missing, None, 7).unwrap_err();
        assert!(
            err.to_string().contains("changes after 7"),
            "a rebuilt snapshot expects a log: {err}"
        );
        assert!(check_binding(&missing, None, 0).is_ok(), "nothing expects a log yet");
        std::fs::write(&missing, b"").unwrap();
        let err = check_binding(&missing, Some(&binding), 0).unwrap_err();
        assert!(err.to_string().contains("is empty"), "{err}");

        let foreign = ChangeLog::open(&dir.path().join("foreign.redb"), 0).unwrap();
        let err = check_identity(foreign.path(), foreign.id(), 5, Some(&binding)).unwrap_err();
        assert!(err.to_string().contains("another model directory"), "{err}");
        let older = LogBinding {
            last_seq: 9,
            ..binding.clone()
        };
        let err = check_identity(
            &path,
            u64::from_str_radix(&binding.log_id, 16).unwrap(),
            1,
            Some(&older),
        )
        .unwrap_err();
        assert!(err.to_string().contains("older copy"), "{err}");
        assert!(matches!(
            read_after(&missing, 0, Some(&binding)),
            Err(Error::CorruptChangeLog { .. })
        ));
    }

    #[test]
    fn a_new_log_numbers_after_the_snapshot_and_keeps_its_identity() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_FILE);
        let log = ChangeLog::open(&path, 41).unwrap();
        assert_eq!(log.append(&records([Change::Delete("a".into())])).unwrap(), 42..=42);
        let id = log.id();
        log.close_after_failure();
        assert!(!log.is_open());
        assert!(matches!(
            log.append(&records([])),
            Err(Error::ChangeLogUnavailable { .. })
        ));
        log.reopen().unwrap();
        assert_eq!(log.id(), id);
        assert_eq!(log.last_seq().unwrap(), 42);
        drop(log);
        assert_eq!(ChangeLog::open(&path, 0).unwrap().id(), id);
    }
}
