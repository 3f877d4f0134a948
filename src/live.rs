//! How do writes reach the index while it serves? [`LiveIndex`] wraps an [`Engine`] with the durable
//! change log ([`crate::store`]): a write is appended to the log (fsync), then applied to the engine's
//! delta, and only then acknowledged — visible to the next query, without rebuilding anything.
//!
//! **Rebuilds.** The delta is searched exactly and scored with the base's idf (terms the base lacks get
//! theirs from live document frequencies, see [`crate::tfidf::LiveTerms`]), so as it grows, queries slow
//! down and idf drifts from the live corpus. When the changes since the base reach both
//! [`RebuildPolicy::min_changes`] and [`RebuildPolicy::ratio`] of the live articles, a background thread
//! learns the vocabulary and idf again from every live article's stored token counts (no text is
//! re-analysed), re-weights the vectors, fits the projection, builds a new graph and snapshot (the second
//! half of `weitere index` on the live corpus), loads that snapshot (so that bodies stay on disk), replays
//! the changes that arrived meanwhile (all but the last [`CATCH_UP_UNDER_LOCK`] while writers go on, those
//! under the commit lock) and publishes the new engine. Queries are served from the old engine throughout.
//! The build runs at [`RebuildPolicy::niceness`] (default 0, the serving threads' priority: a higher value
//! leaves serving more CPU, but while queries keep both cores busy the build then hardly moves, see
//! README); the catch-up always runs at the writers' priority, to keep pace with them.
//! Idf drifts from the live corpus by at most the share of changed articles, so the change ratio bounds
//! the drift too.
//!
//! **Group commit.** A writer checks, encodes and vectorises its changes in its own thread and queues
//! them. One queued writer at a time leads: it takes the commit lock, appends everything queued by then in
//! one transaction of the log (one fsync), applies it in that order and answers each writer; the others
//! only wait for their answer, and when the leader is done, one whose write it did not take leads the
//! next commit. Writers that arrive while a commit is flushing thus share the next one, nobody queues
//! behind commits of other writers' changes, and each is acknowledged only after the fsync that covers
//! its write. An upsert identical to the live article (metadata and body) is accepted without a change.
//!
//! **Readers never wait.** Queries read an immutable version of the engine ([`LiveIndex::read`], an
//! `arc-swap` load): a commit applies its changes to a clone (cheap: the snapshot is shared and the delta
//! is a persistent value) and publishes it, and a rebuild publishes its new engine the same way. No lock
//! is shared between readers and writers, so a panicking write cannot poison reads; it closes the log as a
//! failed commit would, and the next write reopens and replays it.
//!
//! **Rebuild failures** are logged and counted ([`LiveStats::rebuilds`]); the next attempt waits
//! [`REBUILD_BACKOFF_FIRST`], doubling with each failure in a row up to [`REBUILD_BACKOFF_MAX`].
//!
//! **A lost or damaged log.** At open the log must be the one the snapshot's manifest names (see
//! [`crate::store`]); otherwise opening fails, unless [`LostLog::SetAside`] says to accept the loss: then
//! the log is renamed aside, a new one is started, and the loss is logged at WARN.
//!
//! **Write health.** A failed commit (a full disk, say) closes the log; the next write at least
//! [`REOPEN_INTERVAL`] later reopens it, applies any change that reached the disk although its commit
//! reported an error, and writes resume. [`LiveIndex::write_health`] says which state holds, and
//! [`LiveIndex::watch_write_health`] reports every change, for health checks.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use rayon::iter::{IntoParallelIterator, ParallelIterator};
use tokio::sync::watch;

use crate::article::{Article, DEFAULT_MAX_BODY_BYTES, MAX_ID_BYTES, check_id, check_text};
use crate::background;
use crate::engine::{self, Engine, PreparedChange, Stats};
use crate::error::{Error, QUOTED_BYTES, Result, prefix};
use crate::flat_file::Residency;
use crate::recommend::{Explanation, Recommendation, RelatedQuery, Source};
use crate::snapshot;
use crate::store::{self, Change, ChangeLog, ChangeSeq, LOG_FILE, Record};

/// When the background rebuild starts.
#[derive(Clone, Debug, PartialEq)]
pub struct RebuildPolicy {
    /// Never rebuild for fewer changes than this.
    pub min_changes: usize,
    /// Rebuild once the changes reach this share of the live articles (and `min_changes`).
    pub ratio: f64,
    /// The nice value (0 to 19) of the threads that build the new index ([`crate::background`]): above 0
    /// the build yields the CPU to queries and writes, and takes longer the busier they keep it.
    pub niceness: i32,
}

impl Default for RebuildPolicy {
    fn default() -> Self {
        Self {
            min_changes: 1_000,
            ratio: 0.05,
            niceness: 0,
        }
    }
}

/// Outcome of one article of a write request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteOutcome {
    /// The article id.
    pub id: String,
    /// Why it was not written; `None` when it was.
    pub rejected: Option<String>,
}

impl WriteOutcome {
    /// An accepted write.
    pub fn accepted(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            rejected: None,
        }
    }

    /// A rejection; an id over [`MAX_ID_BYTES`] is echoed by its first [`QUOTED_BYTES`] bytes only.
    pub fn rejected(id: &str, reason: impl Into<String>) -> Self {
        let echoed = if id.len() > MAX_ID_BYTES {
            prefix(id, QUOTED_BYTES)
        } else {
            id
        };
        Self {
            id: echoed.to_owned(),
            rejected: Some(reason.into()),
        }
    }
}

/// What [`LiveIndex::open_with`] does with a change log that is not the one the snapshot expects, or
/// that holds a damaged record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LostLog {
    /// Refuse to open: acknowledged writes would be lost silently.
    #[default]
    Refuse,
    /// Accept the loss: rename the log aside (`changes.redb.lost-<unix seconds>`), start a new one and
    /// log a warning.
    SetAside,
}

/// Whether writes can be made durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteHealth {
    /// The change log takes commits.
    Available,
    /// The last commit failed and the log could not be reopened yet; writes are refused. The reason is
    /// the error.
    Unavailable(String),
}

/// Live size and provenance, with the state of the write path.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveStats {
    /// Size and provenance of the live index.
    pub index: Stats,
    /// Whether writes can be made durable.
    pub writes: WriteHealth,
    /// Changes applied since the snapshot was built: what the next rebuild folds in.
    pub changes_since_snapshot: u64,
    /// Background rebuilds since the server started.
    pub rebuilds: RebuildCounts,
    /// Commits of the change log since the server started; one covers every write that arrived while
    /// the one before was being flushed (group commit).
    pub log_commits: u64,
    /// Live articles of the snapshot: those neither replaced nor deleted since it was built.
    pub base_articles: u64,
    /// Articles upserted since the snapshot was built (new ones and new versions of its articles).
    pub fresh_articles: u64,
}

/// What a [`LiveIndex`] reports while it works, for monitoring; the service's metrics implement it
/// ([`LiveIndex::report_events_to`]). Called on the committing and rebuilding threads: keep it quick.
pub trait LiveEvents: Send + Sync {
    /// A commit of the change log (append and fsync) succeeded and took `took`.
    fn change_log_committed(&self, took: Duration);
    /// A background rebuild started.
    fn rebuild_started(&self);
    /// A background rebuild ended after `took`: swapped in when `succeeded`, failed otherwise.
    fn rebuild_ended(&self, took: Duration, succeeded: bool);
}

/// Background rebuilds since the server started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RebuildCounts {
    /// Rebuilds started.
    pub started: u64,
    /// Rebuilds that swapped a new index in.
    pub finished: u64,
    /// Rebuilds that failed; the old index kept serving.
    pub failed: u64,
}

/// Wait after a failed rebuild before the next may start; it doubles with each failure in a row, up to
/// [`REBUILD_BACKOFF_MAX`], so that a rebuild that cannot succeed (a full disk, say) is not retried on
/// every write.
pub const REBUILD_BACKOFF_FIRST: Duration = Duration::from_secs(30);

/// Longest wait between two failing rebuilds.
pub const REBUILD_BACKOFF_MAX: Duration = Duration::from_secs(3_600);

/// The background rebuild: its thread, its counts, and when the next may start after failures.
#[derive(Default)]
struct RebuildState {
    thread: Option<JoinHandle<()>>,
    counts: RebuildCounts,
    failures_in_a_row: u32,
    not_before: Option<Instant>,
}

impl RebuildState {
    /// Records the end of a rebuild; after a failure, returns how long the next must wait.
    fn record(&mut self, outcome: &Result<()>) -> Option<Duration> {
        match outcome {
            Ok(()) => {
                self.counts.finished += 1;
                self.failures_in_a_row = 0;
                self.not_before = None;
                None
            }
            Err(_) => {
                self.counts.failed += 1;
                self.failures_in_a_row += 1;
                let doublings = (self.failures_in_a_row - 1).min(16);
                let wait = (REBUILD_BACKOFF_FIRST * 2u32.pow(doublings)).min(REBUILD_BACKOFF_MAX);
                self.not_before = Some(Instant::now() + wait);
                Some(wait)
            }
        }
    }
}

/// Least time between two attempts to reopen a failed change log, so that a client retrying in a loop
/// does not make the server recover the file on every call.
pub const REOPEN_INTERVAL: Duration = Duration::from_millis(500);

/// A write waiting for a group commit: its changes encoded for the log and made ready to apply, and where
/// its outcome goes.
struct PendingWrite {
    records: Vec<Record>,
    prepared: Vec<PreparedChange>,
    /// The engine `prepared` was analysed against: if a rebuild has swapped another vocabulary in since,
    /// the commit analyses the write again.
    prepared_in: Arc<Engine>,
    reply: SyncSender<Result<()>>,
}

/// Writes waiting for the next commit, and whether a writer leads it.
#[derive(Default)]
struct CommitQueue {
    writes: Vec<PendingWrite>,
    /// A writer has taken the turn to commit what is queued (see [`LiveIndex::commit`]).
    led: bool,
}

/// A writer's turn to lead the commit; when it ends (even by a panic), another writer may lead.
struct LeaderTurn<'a>(&'a LiveIndex);

impl Drop for LeaderTurn<'_> {
    fn drop(&mut self) {
        self.0.lock_queue().led = false;
        self.0.answered.notify_all();
    }
}

/// An engine that accepts durable upserts and deletes while serving queries.
pub struct LiveIndex {
    dir: PathBuf,
    /// The version queries read; each commit and each rebuild publishes a new one.
    engine: ArcSwap<Engine>,
    log: ChangeLog,
    /// The newest change applied; held by whoever commits, so that log order is apply order.
    writes: Mutex<ChangeSeq>,
    /// Writes waiting for the next commit.
    queue: Mutex<CommitQueue>,
    /// Signalled when a commit has answered its writers and when a leader's turn ends.
    answered: Condvar,
    /// Commits of the change log so far.
    log_commits: AtomicU64,
    rebuild_policy: RebuildPolicy,
    rebuilds: Mutex<RebuildState>,
    closing: AtomicBool,
    max_body_bytes: usize,
    write_health: watch::Sender<WriteHealth>,
    last_reopen: Mutex<Option<Instant>>,
    /// Where commits and rebuilds are reported, once a server has asked for them.
    events: OnceLock<Arc<dyn LiveEvents>>,
}

impl LiveIndex {
    /// Wraps `engine` (loaded from the snapshot in `dir`) with the change log in `dir`, replaying every
    /// logged change the snapshot does not include. A log that is missing, empty, foreign or older than
    /// the snapshot expects, or that holds a damaged record, is an [`Error::CorruptChangeLog`].
    pub fn open(dir: &Path, engine: Engine, rebuild_policy: RebuildPolicy) -> Result<Self> {
        Self::open_with(dir, engine, rebuild_policy, LostLog::Refuse)
    }

    /// Like [`LiveIndex::open`], with `lost_log` saying what to do with a log that does not pass the checks.
    pub fn open_with(dir: &Path, mut engine: Engine, rebuild_policy: RebuildPolicy, lost_log: LostLog) -> Result<Self> {
        let path = dir.join(LOG_FILE);
        let (log, changes) = match open_log(&path, &engine) {
            Ok(opened) => opened,
            Err(err @ Error::CorruptChangeLog { .. }) if lost_log == LostLog::SetAside => {
                let aside = match set_aside(&path)? {
                    Some(aside) => aside.display().to_string(),
                    None => "none (there was no file)".to_owned(),
                };
                tracing::warn!(
                    %err,
                    set_aside = %aside,
                    "accepting the loss of the change log: writes acknowledged since the snapshot are gone"
                );
                (ChangeLog::open(&path, engine.base_change())?, Vec::new())
            }
            Err(err) => return Err(err),
        };
        replay(&mut engine, changes);
        let applied = engine.base_change().max(log.last_seq()?);
        snapshot::bind_change_log(dir, &log.binding()?)?;
        tracing::info!(
            replayed = engine.delta().change_count(),
            base_change = engine.base_change(),
            last_change = applied,
            "change log replayed"
        );
        Ok(Self {
            dir: dir.to_owned(),
            engine: ArcSwap::from_pointee(engine),
            log,
            writes: Mutex::new(applied),
            queue: Mutex::new(CommitQueue::default()),
            answered: Condvar::new(),
            log_commits: AtomicU64::new(0),
            rebuild_policy,
            rebuilds: Mutex::new(RebuildState::default()),
            closing: AtomicBool::new(false),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            write_health: watch::Sender::new(WriteHealth::Available),
            last_reopen: Mutex::new(None),
            events: OnceLock::new(),
        })
    }

    /// Whether writes can be made durable now.
    pub fn write_health(&self) -> WriteHealth {
        self.write_health.borrow().clone()
    }

    /// Reports every change of [`LiveIndex::write_health`].
    pub fn watch_write_health(&self) -> watch::Receiver<WriteHealth> {
        self.write_health.subscribe()
    }

    fn set_write_health(&self, health: WriteHealth) {
        self.write_health.send_if_modified(|current| {
            let changed = *current != health;
            *current = health;
            changed
        });
    }

    /// Reports every later commit and rebuild to `events`. Only the first call takes effect (one server
    /// reports one index); returns false for a later one.
    pub fn report_events_to(&self, events: Arc<dyn LiveEvents>) -> bool {
        self.events.set(events).is_ok()
    }

    /// Longest article or draft body accepted, in UTF-8 bytes: longer upserts are rejected one by one,
    /// longer drafts fail the query with an invalid-argument error.
    pub fn with_max_body_bytes(mut self, max_body_bytes: usize) -> Self {
        self.max_body_bytes = max_body_bytes;
        self
    }

    /// The engine as of the newest commit, for reading. Never waits: commits and rebuilds publish new
    /// versions instead of changing this one.
    pub fn read(&self) -> Arc<Engine> {
        self.engine.load_full()
    }

    /// Related stories for `query`, including every acknowledged change.
    pub fn related(&self, query: &RelatedQuery) -> Result<Vec<Recommendation>> {
        self.related_until(query, None)
    }

    /// Like [`LiveIndex::related`], but gives up with [`Error::DeadlineExceeded`] once `deadline` has
    /// passed, so that a call whose client has gone stops using the CPU.
    pub fn related_until(&self, query: &RelatedQuery, deadline: Option<Instant>) -> Result<Vec<Recommendation>> {
        self.check_draft_body(query)?;
        self.read().related_until(query, deadline)
    }

    /// Like [`LiveIndex::related_until`], with the candidates left out and why
    /// ([`Engine::related_explained_until`]).
    pub fn related_explained_until(&self, query: &RelatedQuery, deadline: Option<Instant>) -> Result<Explanation> {
        self.check_draft_body(query)?;
        self.read().related_explained_until(query, deadline)
    }

    fn check_draft_body(&self, query: &RelatedQuery) -> Result<()> {
        if let Source::Draft(draft) = &query.source {
            check_text(&draft.body, self.max_body_bytes, true)
                .map_err(|reason| Error::invalid("draft.body", reason))?;
        }
        Ok(())
    }

    /// The live article with this id.
    pub fn article(&self, id: &str) -> Result<Article> {
        check_id(id).map_err(|reason| Error::invalid("id", reason))?;
        self.read().article(id)
    }

    /// Live size and provenance, and whether writes can be made durable.
    pub fn stats(&self) -> LiveStats {
        // The engine is let go before the rebuild lock is taken: a rebuild retiring it waits for every holder.
        let (index, changes, base_articles, fresh_articles) = {
            let engine = self.read();
            let delta = engine.delta();
            (
                engine.stats(),
                delta.change_count(),
                engine.articles().len() - delta.masked_count(),
                delta.fresh_count(),
            )
        };
        LiveStats {
            index,
            writes: self.write_health(),
            changes_since_snapshot: changes as u64,
            rebuilds: self.lock_rebuilds().counts,
            log_commits: self.log_commits.load(Ordering::Relaxed),
            base_articles: base_articles as u64,
            fresh_articles: fresh_articles as u64,
        }
    }

    /// Inserts or replaces `articles`. Invalid ones are rejected one by one (with the reason); the rest are
    /// durable and visible when this returns `Ok`. On `Err` nothing of this call was written. An article
    /// identical to the live one with its id (metadata and body) is accepted without a change.
    pub fn upsert(self: &Arc<Self>, articles: Vec<Article>) -> Result<Vec<WriteOutcome>> {
        let mut outcomes = Vec::with_capacity(articles.len());
        let mut changes = Vec::with_capacity(articles.len());
        let write = {
            let engine = self.read();
            let mut upserting = HashSet::new();
            for article in articles {
                match article.rejection_reason(self.max_body_bytes) {
                    Some(reason) => outcomes.push(WriteOutcome::rejected(&article.id, reason)),
                    None => {
                        outcomes.push(WriteOutcome::accepted(&article.id));
                        // A later version in the same call is written even if it equals the live one.
                        let first_version = upserting.insert(article.id.clone());
                        if !(first_version && engine.holds_identical(&article)) {
                            changes.push(Change::Upsert(article));
                        }
                    }
                }
            }
            self.pending_write(&engine, changes)
        };
        if let Some((write, answer)) = write {
            self.commit(write, answer)?;
        }
        Ok(outcomes)
    }

    /// Deletes the articles with `ids`. Unknown ids are reported one by one; the others are deleted,
    /// durably, when this returns `Ok`.
    pub fn delete(self: &Arc<Self>, ids: Vec<String>) -> Result<Vec<WriteOutcome>> {
        // Checked against the engine under the write lock, so that no other delete comes between; the
        // upserts waiting for the same commit cannot make a live id unknown.
        let writes = self.lock_writes();
        let mut outcomes = Vec::with_capacity(ids.len());
        let mut changes = Vec::with_capacity(ids.len());
        let write = {
            let engine = self.read();
            let mut deleting = HashSet::new();
            for id in ids {
                if let Err(reason) = check_id(&id) {
                    outcomes.push(WriteOutcome::rejected(&id, format!("id: {reason}")));
                } else if engine.slot(&id).is_err() || !deleting.insert(id.clone()) {
                    outcomes.push(WriteOutcome::rejected(&id, "unknown article id"));
                } else {
                    outcomes.push(WriteOutcome::accepted(&id));
                    changes.push(Change::Delete(id));
                }
            }
            self.pending_write(&engine, changes)
        };
        match write {
            Some((write, answer)) => {
                self.lock_queue().writes.push(write);
                self.commit_group(writes);
                self.outcome(answer)?;
            }
            None => drop(writes),
        }
        Ok(outcomes)
    }

    /// Encodes `changes` for the log and vectorises their articles against `engine`, in the writer's own
    /// thread, so that the commit that takes them only appends and applies. `None` for no change.
    fn pending_write(
        &self,
        engine: &Arc<Engine>,
        changes: Vec<Change>,
    ) -> Option<(PendingWrite, Receiver<Result<()>>)> {
        if changes.is_empty() {
            return None;
        }
        let (reply, answer) = mpsc::sync_channel(1);
        let write = PendingWrite {
            records: changes.iter().map(Record::encode).collect(),
            prepared: changes.into_iter().map(|change| engine.prepare(change)).collect(),
            prepared_in: Arc::clone(engine),
            reply,
        };
        Some((write, answer))
    }

    /// Takes the commit lock. If a commit panicked while holding it, what that commit appended may not be
    /// applied: the log is then closed as after a failed commit, so that this write reopens it and applies
    /// whatever reached it first ([`LiveIndex::recover`]).
    fn lock_writes(&self) -> MutexGuard<'_, ChangeSeq> {
        self.writes.lock().unwrap_or_else(|poisoned| {
            self.writes.clear_poison();
            self.log.close_after_failure();
            tracing::error!("a commit panicked part-way; the change log is reopened and replayed");
            self.set_write_health(WriteHealth::Unavailable("a commit failed part-way".into()));
            poisoned.into_inner()
        })
    }

    fn lock_queue(&self) -> MutexGuard<'_, CommitQueue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `write` for the next commit and returns its outcome. If no writer leads a commit, this one
    /// does: it takes the commit lock and commits everything queued by then. Otherwise it waits until its
    /// answer comes, or until the leader is done without having taken its write, and then leads.
    fn commit(self: &Arc<Self>, write: PendingWrite, answer: Receiver<Result<()>>) -> Result<()> {
        let mut queue = self.lock_queue();
        queue.writes.push(write);
        loop {
            match answer.try_recv() {
                Ok(outcome) => return outcome,
                Err(TryRecvError::Disconnected) => return Err(self.unanswered()),
                Err(TryRecvError::Empty) => {}
            }
            if queue.led {
                queue = self.answered.wait(queue).unwrap_or_else(PoisonError::into_inner);
            } else {
                queue.led = true;
                drop(queue);
                let turn = LeaderTurn(self);
                self.commit_group(self.lock_writes());
                drop(turn);
                queue = self.lock_queue();
            }
        }
    }

    /// The outcome of a queued write, once the commit that took it has answered.
    fn outcome(&self, answer: Receiver<Result<()>>) -> Result<()> {
        answer.recv().unwrap_or_else(|_| Err(self.unanswered()))
    }

    /// The error of a write whose commit dropped it without an answer.
    fn unanswered(&self) -> Error {
        Error::ChangeLogUnavailable {
            path: self.log.path().to_owned(),
            reason: "the commit that took this write failed part-way; it may still be replayed".into(),
        }
    }

    /// Commits every queued write in one transaction of the log (one fsync), applies them in that order
    /// and answers each writer; `writes` serialises commits. Nothing to do if an earlier commit took them.
    fn commit_group(self: &Arc<Self>, mut writes: MutexGuard<'_, ChangeSeq>) {
        let group = std::mem::take(&mut self.lock_queue().writes);
        if group.is_empty() {
            return;
        }
        let mut records = Vec::new();
        let mut prepared = Vec::new();
        let mut replies = Vec::with_capacity(group.len());
        let engine = self.read();
        for write in group {
            records.extend(write.records);
            replies.push(write.reply);
            if write.prepared_in.shares_snapshot_with(&engine) {
                prepared.extend(write.prepared);
            } else {
                prepared.extend(write.prepared.into_iter().map(|change| engine.prepare(change.into())));
            }
        }
        drop(engine);
        let committed = self.append_and_apply(&mut writes, &records, prepared);
        drop(writes);
        for reply in replies {
            // A writer that has gone (its thread panicked) needs no answer.
            let _ = reply.send(committed.as_ref().map(|_| ()).map_err(copy_for_writer));
        }
        // Taken so that a writer between checking its answer and waiting cannot miss the signal.
        drop(self.lock_queue());
        self.answered.notify_all();
        if committed.is_ok_and(|rebuild_due| rebuild_due) {
            self.start_rebuild();
        }
    }

    /// Appends `records` durably, then applies `prepared` (the same changes); returns whether a rebuild is
    /// due. `applied` is the newest change applied.
    fn append_and_apply(
        &self,
        applied: &mut ChangeSeq,
        records: &[Record],
        prepared: Vec<PreparedChange>,
    ) -> Result<bool> {
        if !self.log.is_open() {
            self.recover(applied)?;
        }
        let began = Instant::now();
        let seqs = match self.log.append(records) {
            Ok(seqs) => {
                if let Some(events) = self.events.get() {
                    events.change_log_committed(began.elapsed());
                }
                seqs
            }
            Err(err) => {
                self.log.close_after_failure();
                tracing::error!(%err, "change log commit failed: writes are refused until the log reopens");
                self.set_write_health(WriteHealth::Unavailable(err.to_string()));
                return Err(err);
            }
        };
        self.log_commits.fetch_add(1, Ordering::Relaxed);
        *applied = *seqs.end();
        Ok(self.publish(|engine| {
            for change in prepared {
                engine.apply(change);
            }
            self.rebuild_due(engine)
        }))
    }

    /// Makes the next version of the engine with `change` and publishes it; the caller holds the commit
    /// lock. Queries still reading the previous version finish on it.
    fn publish<T>(&self, change: impl FnOnce(&mut Engine) -> T) -> T {
        let mut next = Engine::clone(&self.engine.load());
        let outcome = change(&mut next);
        self.engine.store(Arc::new(next));
        outcome
    }

    /// Reopens the change log after a failed commit (at most once per [`REOPEN_INTERVAL`]) and applies the
    /// changes that reached the disk although their commit reported an error; `applied` is the newest
    /// change applied to the engine.
    fn recover(&self, applied: &mut ChangeSeq) -> Result<()> {
        {
            let mut last = self.last_reopen.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if last.is_some_and(|at| at.elapsed() < REOPEN_INTERVAL) {
                let reason = match self.write_health() {
                    WriteHealth::Unavailable(reason) => reason,
                    WriteHealth::Available => "being reopened".into(),
                };
                return Err(Error::ChangeLogUnavailable {
                    path: self.log.path().to_owned(),
                    reason,
                });
            }
            *last = Some(Instant::now());
        }
        if let Err(err) = self.log.reopen() {
            tracing::warn!(%err, "the change log cannot be reopened yet");
            self.set_write_health(WriteHealth::Unavailable(err.to_string()));
            return Err(err);
        }
        let reached_disk = self.log.since(*applied)?;
        if !reached_disk.is_empty() {
            tracing::warn!(
                changes = reached_disk.len(),
                "changes whose commit reported an error had reached the disk; applying them"
            );
            self.publish(|engine| replay(engine, reached_disk));
        }
        *applied = (*applied).max(self.log.last_seq()?);
        tracing::info!(last_change = *applied, "change log reopened: writes resume");
        self.set_write_health(WriteHealth::Available);
        Ok(())
    }

    fn rebuild_due(&self, engine: &Engine) -> bool {
        let changes = engine.delta().change_count();
        let live = engine.stats().article_count as f64;
        changes >= self.rebuild_policy.min_changes && changes as f64 >= self.rebuild_policy.ratio * live
    }

    fn lock_rebuilds(&self) -> MutexGuard<'_, RebuildState> {
        // Every update of the state is a few assignments that a panic cannot leave half-done.
        self.rebuilds.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a background rebuild, unless one is running, the index is closing or a failed one's
    /// back-off has not passed.
    fn start_rebuild(self: &Arc<Self>) {
        let mut rebuilds = self.lock_rebuilds();
        let running = rebuilds.thread.as_ref().is_some_and(|handle| !handle.is_finished());
        let backing_off = rebuilds.not_before.is_some_and(|at| Instant::now() < at);
        if running || backing_off || self.closing.load(Ordering::Acquire) {
            return;
        }
        rebuilds.counts.started += 1;
        let events = self.events.get().cloned();
        if let Some(events) = &events {
            events.rebuild_started();
        }
        let live = Arc::clone(self);
        rebuilds.thread = Some(std::thread::spawn(move || {
            let began = Instant::now();
            let outcome = live.rebuild();
            if let Some(events) = &events {
                events.rebuild_ended(began.elapsed(), outcome.is_ok());
            }
            let mut rebuilds = live.lock_rebuilds();
            if let Some(wait) = rebuilds.record(&outcome) {
                let err = outcome.expect_err("a wait follows a failure");
                tracing::error!(
                    %err,
                    failed = rebuilds.counts.failed,
                    in_a_row = rebuilds.failures_in_a_row,
                    retry_after_seconds = wait.as_secs(),
                    "background rebuild failed; serving the old index"
                );
            }
        }));
    }

    /// Prepares a clean exit once the server has stopped taking requests: lets a running background
    /// rebuild finish (an interrupted one would only be redone, but its work would be lost), starts no new
    /// one, and waits for writes still in progress. Every acknowledged write is already durable; the
    /// change log closes when the last handle to the index is dropped.
    pub fn shut_down(&self) {
        self.closing.store(true, Ordering::Release);
        let rebuild = self.lock_rebuilds().thread.take();
        if let Some(handle) = rebuild {
            if !handle.is_finished() {
                tracing::info!("waiting for the background rebuild to finish");
            }
            if handle.join().is_err() {
                tracing::error!("the background rebuild panicked");
            }
        }
        let last_change = *self.lock_writes();
        // Record the exact end of the log, so that the next start can tell an older copy from it.
        if self.log.is_open() {
            if let Err(err) = self
                .log
                .binding()
                .and_then(|binding| snapshot::bind_change_log(&self.dir, &binding))
            {
                tracing::error!(%err, "cannot record the end of the change log in the manifest");
            }
        }
        tracing::info!(last_change, "live index shut down cleanly");
    }

    /// Rebuilds the index from the live articles, writes it as the new snapshot, folds in the changes that
    /// arrived meanwhile and swaps it in. Blocks the caller (the background thread) for the build.
    pub fn rebuild(&self) -> Result<()> {
        let started = Instant::now();
        let (engine, seq) = {
            let writes = self.lock_writes();
            (self.read(), *writes)
        };
        let article_count = engine.live_count();
        tracing::info!(articles = article_count, through_change = seq, "rebuilding the index");
        // Built at the rebuild's nice value; the catch-up below runs at the writers', to keep pace with them.
        let build = background::low_priority_pool("rebuild", self.rebuild_policy.niceness)?;
        let mut rebuilt = build.install(|| engine.rebuild(&self.dir, seq, Some(&self.log.binding()?)))?;
        drop(build);
        rebuilt.set_policy(engine.policy().clone())?;
        rebuilt.set_search(engine.search());
        // The version the rebuild read from is not needed any more; readers hold their own.
        drop(engine);
        // Catch up on the changes that arrived meanwhile while writers go on, then take the commit lock
        // only for the last few.
        let mut caught_up = seq;
        loop {
            let changes = self.log.since_at_most(caught_up, REPLAY_BATCH)?;
            if changes.len() <= CATCH_UP_UNDER_LOCK {
                break;
            }
            caught_up = changes.last().map_or(caught_up, |(seq, _)| *seq);
            replay(&mut rebuilt, changes);
        }
        let replaced = {
            let _writes = self.lock_writes();
            replay(&mut rebuilt, self.log.since(caught_up)?);
            self.engine.swap(Arc::new(rebuilt))
        };
        retire(replaced);
        let trimming = Instant::now();
        engine::return_freed_memory();
        let trim_seconds = trimming.elapsed().as_secs_f64();
        // Opened cold (see `Engine::rebuild`); now that the engine it replaced is gone, map what queries read.
        self.read().set_residency(Residency::Warm);
        self.log.drop_through(seq)?;
        tracing::info!(
            articles = article_count,
            through_change = seq,
            seconds = started.elapsed().as_secs_f64(),
            trim_seconds,
            "index rebuilt and swapped in"
        );
        Ok(())
    }
}

/// Changes since a rebuild began that it may still replay under the commit lock; more are replayed
/// first, while writers go on.
const CATCH_UP_UNDER_LOCK: usize = 100;

/// Changes read from the log and analysed at a time by a rebuild's catch-up (and by [`replay`]), so that
/// a long backlog is never in memory at once, neither as records nor analysed.
const REPLAY_BATCH: usize = 1_000;

/// How often [`open_current`] reads the snapshot again when a rebuild replaces it during the read.
const SNAPSHOT_READ_ATTEMPTS: usize = 3;

/// The snapshot in `dir` with every logged change applied: what a server on `dir` serves now, or served
/// when it stopped. For the offline commands (`weitere related`, `weitere batch`), so that they too never
/// return a deleted story. The log is read without its write lock, so this works beside a running
/// server; if the server's background rebuild swaps the snapshot meanwhile, the new one is read.
pub fn open_current(dir: &Path) -> Result<Engine> {
    let log = dir.join(LOG_FILE);
    for attempt in 1..=SNAPSHOT_READ_ATTEMPTS {
        let mut engine = match Engine::open(dir) {
            Ok(engine) => engine,
            // A rebuild removes the previous snapshot's data files once the new one is in place.
            Err(Error::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound && attempt < SNAPSHOT_READ_ATTEMPTS =>
            {
                continue;
            }
            Err(err) => return Err(err),
        };
        if let Some(changes) = store::read_after(&log, engine.base_change(), engine.change_log())? {
            replay(&mut engine, changes);
            return Ok(engine);
        }
        tracing::info!(
            attempt,
            "a rebuild replaced the snapshot during the read; reading again"
        );
    }
    Err(Error::Index(format!(
        "{}: every read of the snapshot was overtaken by a rebuild",
        dir.display()
    )))
}

/// Opens the log at `path` for `engine`'s snapshot and reads the changes its base does not include,
/// checking that it is the log the snapshot expects and that every record is intact.
fn open_log(path: &Path, engine: &Engine) -> Result<(ChangeLog, Vec<(ChangeSeq, Change)>)> {
    let expected = engine.change_log();
    store::check_binding(path, expected, engine.base_change())?;
    let log = ChangeLog::open(path, engine.base_change())?;
    store::check_identity(path, log.id(), log.last_seq()?, expected)?;
    let changes = log.since(engine.base_change())?;
    Ok((log, changes))
}

/// Renames the log at `path` (if there is one) aside and returns its new path.
fn set_aside(path: &Path) -> Result<Option<PathBuf>> {
    if !path.exists() {
        return Ok(None);
    }
    let seconds = chrono::Utc::now().timestamp();
    let aside = path.with_extension(format!("redb.lost-{seconds}"));
    std::fs::rename(path, &aside).map_err(|err| Error::io(path, err))?;
    Ok(Some(aside))
}

/// The error of a failed group commit, for each of its writers (errors are not `Clone`): the variant
/// kept where it says more than that the log is unavailable.
fn copy_for_writer(err: &Error) -> Error {
    match err {
        Error::CorruptChangeLog { path, seq, reason } => Error::corrupt_log(path, *seq, reason.clone()),
        Error::ChangeLogUnavailable { path, reason } => Error::ChangeLogUnavailable {
            path: path.clone(),
            reason: reason.clone(),
        },
        Error::Store { path, source } => Error::ChangeLogUnavailable {
            path: path.clone(),
            reason: source.to_string(),
        },
        other => Error::Index(other.to_string()),
    }
}

/// Applies logged `changes` on top of `engine`, in order.
/// Frees an engine a rebuild replaced on the calling (background) thread, once the queries still reading
/// it are done: neither the commit lock nor the query that happens to let go of it last pays for freeing
/// a delta of many thousand articles.
fn retire(mut engine: Arc<Engine>) {
    loop {
        match Arc::try_unwrap(engine) {
            Ok(engine) => return drop(engine),
            Err(shared) => engine = shared,
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Applies `changes` in order, [`REPLAY_BATCH`] at a time. A batch's analysis (most of the cost) runs on
/// every core first, as writers analyse their own changes before a commit applies them, so that a
/// rebuild's catch-up outpaces the writes that go on meanwhile and a start replays a long log quickly.
fn replay(engine: &mut Engine, changes: Vec<(ChangeSeq, Change)>) {
    let mut changes = changes.into_iter().map(|(_, change)| change);
    loop {
        let batch: Vec<Change> = changes.by_ref().take(REPLAY_BATCH).collect();
        if batch.is_empty() {
            return;
        }
        let prepared: Vec<PreparedChange> = batch.into_par_iter().map(|change| engine.prepare(change)).collect();
        for change in prepared {
            engine.apply(change);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::article::test_article;
    use crate::engine::BuildConfig;
    use indicatif::ProgressBar;

    fn small_live_index(dir: &Path, rebuild_policy: RebuildPolicy) -> Arc<LiveIndex> {
        let articles = (0..30)
            .map(|i| {
                test_article(
                    &format!("a-{i}"),
                    &format!("Meldung {i}"),
                    &format!("Text über Thema {}", i % 5),
                )
            })
            .collect();
        let engine = Engine::build(articles, &BuildConfig::default(), &ProgressBar::hidden()).unwrap();
        Arc::new(LiveIndex::open(dir, engine, rebuild_policy).unwrap())
    }

    #[test]
    fn writers_that_arrive_during_a_commit_share_the_next_one() {
        let dir = tempfile::tempdir().unwrap();
        let index = small_live_index(dir.path(), RebuildPolicy::default());
        const WRITERS: usize = 16;
        std::thread::scope(|scope| {
            // Held as a commit in progress would hold it, until every writer is waiting.
            let writes = index.lock_writes();
            for writer in 0..WRITERS {
                let index = &index;
                scope.spawn(move || {
                    let article = test_article(&format!("new-{writer}"), "Neue Meldung", "Text über Thema 1");
                    index.upsert(vec![article]).unwrap()
                });
            }
            while index.queue.lock().unwrap().writes.len() < WRITERS {
                std::thread::yield_now();
            }
            drop(writes);
        });
        let stats = index.stats();
        assert_eq!(stats.log_commits, 1, "one commit for all sixteen");
        assert_eq!(stats.changes_since_snapshot, WRITERS as u64);
        assert_eq!(index.log.last_seq().unwrap(), WRITERS as u64);
        for writer in 0..WRITERS {
            assert!(index.article(&format!("new-{writer}")).is_ok());
        }
    }

    #[test]
    fn a_commit_that_panics_poisons_neither_reads_nor_later_writes() {
        let dir = tempfile::tempdir().unwrap();
        let index = small_live_index(dir.path(), RebuildPolicy::default());
        let panicking = Arc::clone(&index);
        let commit = std::thread::spawn(move || {
            let _writes = panicking.lock_writes();
            panic!("a commit panics part-way");
        });
        assert!(commit.join().is_err());
        let query = RelatedQuery::new(Source::Article("a-1".into()), 3);
        assert!(
            index.related(&query).is_ok() && index.article("a-1").is_ok(),
            "reads go on"
        );
        index
            .upsert(vec![test_article("after", "Nachher", "Text über Thema 1")])
            .unwrap();
        assert!(index.article("after").is_ok());
        assert_eq!(index.write_health(), WriteHealth::Available, "the log was reopened");
    }

    #[test]
    fn upserting_an_identical_article_again_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let index = small_live_index(dir.path(), RebuildPolicy::default());
        let stored = index.article("a-3").unwrap();
        index.upsert(vec![stored.clone()]).unwrap();
        let fresh = test_article("fresh", "Frisch", "Ganz neuer Text");
        index.upsert(vec![fresh.clone()]).unwrap();
        let outcomes = index.upsert(vec![fresh.clone(), stored.clone()]).unwrap();
        assert!(outcomes.iter().all(|outcome| outcome.rejected.is_none()), "accepted");
        let stats = index.stats();
        assert_eq!(stats.changes_since_snapshot, 1, "only the new article is a change");
        assert_eq!((stats.log_commits, index.log.last_seq().unwrap()), (1, 1));

        let edited = Article {
            section: "Kultur".into(),
            ..stored.clone()
        };
        index.upsert(vec![edited, stored.clone()]).unwrap();
        assert_eq!(
            index.article("a-3").unwrap(),
            stored,
            "a later version in one call is written"
        );
        assert_eq!(index.stats().changes_since_snapshot, 3);
    }

    #[test]
    fn a_failing_rebuild_backs_off_instead_of_retrying_on_every_write() {
        let dir = tempfile::tempdir().unwrap();
        let policy = RebuildPolicy {
            min_changes: 1,
            ratio: 0.0,
            ..RebuildPolicy::default()
        };
        let index = small_live_index(dir.path(), policy);
        // With every article deleted there is nothing to build: the rebuild fails.
        index.delete((0..30).map(|i| format!("a-{i}")).collect()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while index.stats().rebuilds.failed == 0 {
            assert!(Instant::now() < deadline, "the rebuild did not fail");
            std::thread::sleep(Duration::from_millis(10));
        }
        for i in 0..5 {
            let id = format!("b-{i}");
            index.upsert(vec![test_article(&id, "Kurz", "Text")]).unwrap();
            index.delete(vec![id]).unwrap();
        }
        let rebuilds = index.stats().rebuilds;
        assert_eq!(
            rebuilds,
            RebuildCounts {
                started: 1,
                finished: 0,
                failed: 1
            },
            "no new attempt during the back-off"
        );
        assert_eq!(index.stats().index.article_count, 0);
    }
}
