//! The projector runtime (see the crate docs for the guarantees).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use eventstore::{Backend, Database, RecordedEvent, StoreError, Upcasters};
use futures::future::BoxFuture;
use sqlx::AnyConnection;
use tokio::sync::watch;

/// Events applied per transaction: bounds how long a projector holds SQLite's write lock (and, on
/// PostgreSQL, its row locks).
pub const BATCH_EVENTS: u32 = 256;
/// Safety-net poll when no append signal arrives; also how often a server asks for the lease of a
/// projector another server runs (so it takes over within about this long after that server dies).
const POLL_INTERVAL_MS: u64 = 1_000;
/// Back-off after a failure, doubling up to the maximum, so a broken projector does not spin.
const RETRY_FIRST_MS: u64 = 500;
const RETRY_MAX_MS: u64 = 30_000;

/// Why a projector could not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("read-model database error: {0}")]
    Sql(#[from] sqlx::Error),
    /// The event contradicts the read model (e.g. an update for a row that was never inserted).
    #[error("event at position {position} ({event_type}) cannot be applied: {reason}")]
    Inconsistent {
        position: i64,
        event_type: String,
        reason: String,
    },
    #[error("no projector named {0:?}")]
    UnknownProjector(String),
    /// A fault injected by a test between applying a batch and committing it.
    #[error("injected fault: {0}")]
    Injected(String),
}

/// A named, versioned consumer of the global log that keeps its own read-model tables.
pub trait Projector: Send + Sync + 'static {
    /// Stable name: the checkpoint key and the `autosalon rebuild NAME` argument.
    fn name(&self) -> &'static str;
    /// Bump when the tables or the meaning of their rows change: a new version rebuilds from 0.
    fn version(&self) -> i64;
    /// The tables this projector owns (dropped by a rebuild).
    fn tables(&self) -> &'static [&'static str];
    /// Statements that create the tables and indexes (`IF NOT EXISTS`).
    fn schema(&self) -> &'static [&'static str];
    /// The aggregate types whose events it applies, or `None` for every event. A batch holding none
    /// of these is not handed to it at all (no savepoint, no apply): only its checkpoint moves, in
    /// the batch's one guarded update. `apply` must ignore every other type, as if never called.
    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        None
    }
    /// Applies one event inside the batch's transaction. Events it does not care about are ignored.
    fn apply<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        event: &'a RecordedEvent,
    ) -> BoxFuture<'a, Result<(), ProjectionError>>;
}

/// Every read model of the application, in the order they are run.
pub fn all_projectors() -> Vec<Arc<dyn Projector>> {
    vec![
        Arc::new(crate::catalog::Catalog),
        Arc::new(crate::customers::Customers),
        Arc::new(crate::orders::Orders),
        Arc::new(crate::policies::Policies),
        Arc::new(crate::bookings::Bookings),
        Arc::new(crate::loans::Loans),
        Arc::new(crate::payments::Payments),
        Arc::new(crate::reports::Reports),
        Arc::new(crate::ledger::Ledger),
        Arc::new(crate::customer_history::CustomerHistory),
        Arc::new(crate::accounts::Accounts),
        Arc::new(crate::promotions::Promotions),
    ]
}

/// What one projector has done so far, as health checks and GraphQL report it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProjectorStatus {
    /// Every event up to and including this position has been applied.
    pub position: i64,
    /// The event it is stuck on, and why, while it is failing.
    pub failure: Option<(i64, String)>,
    /// Whether this server runs it (holds its lease); otherwise another server does and this one
    /// follows its checkpoint.
    pub runs_here: bool,
}

/// The outcome of one [`Projections::step`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Applied this many events and moved the checkpoint.
    Advanced(usize),
    /// Nothing after the checkpoint.
    CaughtUp,
}

struct Entry {
    projector: Arc<dyn Projector>,
    status: watch::Sender<ProjectorStatus>,
    /// Every batch holds it shared; [`Projections::hold_back`] holds it exclusively, so a held
    /// projector applies nothing until released.
    gate: Arc<tokio::sync::RwLock<()>>,
}

/// A projector kept from applying anything until this is dropped (see [`Projections::hold_back`]).
#[must_use = "the projector runs again as soon as this is dropped"]
pub struct HeldBack {
    _gate: tokio::sync::OwnedRwLockWriteGuard<()>,
    wake: Arc<tokio::sync::Notify>,
}

impl Drop for HeldBack {
    fn drop(&mut self) {
        // The run loop skipped the projector while it was held: step it now, not at the next poll.
        self.wake.notify_one();
    }
}

/// Runs the projectors against one database.
pub struct Projections {
    db: Database,
    upcasters: Upcasters,
    entries: BTreeMap<&'static str, Entry>,
    /// Wakes the run loop when a held-back projector is released.
    wake: Arc<tokio::sync::Notify>,
    /// Consumers of the log that keep no read model (the integration-event relay): reported beside
    /// the projectors, never waited for by mutations and never making the server unready.
    followers: std::sync::RwLock<Vec<(&'static str, watch::Receiver<ProjectorStatus>)>>,
}

impl Projections {
    pub fn new(db: Database, upcasters: Upcasters, projectors: Vec<Arc<dyn Projector>>) -> Self {
        let entries = projectors
            .into_iter()
            .map(|projector| {
                let entry = Entry {
                    projector,
                    status: watch::channel(ProjectorStatus::default()).0,
                    gate: Arc::new(tokio::sync::RwLock::new(())),
                };
                (entry.projector.name(), entry)
            })
            .collect();
        Self {
            db,
            upcasters,
            entries,
            wake: Arc::default(),
            followers: std::sync::RwLock::default(),
        }
    }

    /// Names of the registered projectors.
    pub fn names(&self) -> Vec<&'static str> {
        self.entries.keys().copied().collect()
    }

    fn entry(&self, name: &str) -> Result<&Entry, ProjectionError> {
        self.entries
            .get(name)
            .ok_or_else(|| ProjectionError::UnknownProjector(name.to_string()))
    }

    /// Creates missing tables and checkpoints; a projector whose stored version differs from its code
    /// is reset to position 0 (its tables dropped and recreated), so it rebuilds as it runs.
    pub async fn prepare(&self) -> Result<(), ProjectionError> {
        for entry in self.entries.values() {
            let projector = &entry.projector;
            let mut tx = self.db.begin_exclusive().await?;
            let stored: Option<(i64, i64, Option<i64>, Option<String>)> = sqlx::query_as(
                "SELECT version, position, failed_position, last_error FROM log_checkpoints WHERE consumer = $1",
            )
            .bind(projector.name())
            .fetch_optional(&mut *tx)
            .await?;
            let status = match stored {
                Some((version, position, failed, error)) if version == projector.version() => {
                    // Its tables exist unless someone dropped one. Never touch the DDL of a read
                    // model another server may be writing: on PostgreSQL even `CREATE INDEX IF NOT
                    // EXISTS` locks the table and can deadlock with that server's batch.
                    if !tables_exist(&mut tx, self.db.backend(), projector.as_ref()).await? {
                        create_tables(&mut tx, self.db.backend(), projector.as_ref()).await?;
                    }
                    ProjectorStatus {
                        position,
                        failure: failed.zip(error),
                        runs_here: false,
                    }
                }
                Some((version, ..)) => {
                    tracing::warn!(
                        projector = projector.name(),
                        stored_version = version,
                        code_version = projector.version(),
                        "projector version changed: rebuilding from position 0"
                    );
                    reset(&mut tx, self.db.backend(), projector.as_ref()).await?;
                    ProjectorStatus::default()
                }
                None => {
                    reset(&mut tx, self.db.backend(), projector.as_ref()).await?;
                    ProjectorStatus::default()
                }
            };
            tx.commit().await?;
            entry.status.send_replace(status);
        }
        Ok(())
    }

    /// Applies one batch after the checkpoint, in one transaction with the checkpoint move.
    pub async fn step(&self, name: &str) -> Result<Step, ProjectionError> {
        self.step_with_fault(name, BATCH_EVENTS, || Ok(())).await
    }

    /// [`Projections::step`] for a batch of at most `limit` events (1 to [`BATCH_EVENTS`]), with a
    /// hook run after the batch is applied and the checkpoint moved but before the commit. Returning
    /// an error rolls everything back: tests use it to prove that a crash at that instant, after any
    /// number of events, loses nothing and applies nothing twice.
    pub async fn step_with_fault(
        &self,
        name: &str,
        limit: u32,
        before_commit: impl FnOnce() -> Result<(), ProjectionError>,
    ) -> Result<Step, ProjectionError> {
        let entry = self.entry(name)?;
        let _gate = entry.gate.read().await;
        let limit = limit.clamp(1, BATCH_EVENTS);
        let batch = self.apply_together(&[entry], limit, before_commit).await?;
        if let Some((_, position, error)) = batch.failed.into_iter().next() {
            self.record_failure(entry, position, &error).await;
            return Err(error);
        }
        Ok(match batch.applied {
            0 if batch.caught_up => Step::CaughtUp,
            applied => Step::Advanced(applied),
        })
    }

    /// Applies up to `limit` events after the checkpoint of `members` — every one of which is at
    /// the same position, or is left out of this batch — to each of them, in one transaction that
    /// also moves each one's checkpoint. The events are read and decoded once. Each projector
    /// applies inside its own savepoint: one that fails on an event is rolled back to it, keeps the
    /// events before the failing one, and stays there; the others go on. Nothing to apply is found
    /// out by a read, without a write transaction.
    async fn apply_together<'e>(
        &self,
        members: &[&'e Entry],
        limit: u32,
        before_commit: impl FnOnce() -> Result<(), ProjectionError>,
    ) -> Result<Together<'e>, ProjectionError> {
        let mut outcome = Together::default();
        let known = members
            .iter()
            .map(|entry| entry.status.borrow().position)
            .min()
            .unwrap_or(0);
        if eventstore::log::head(self.db.pool()).await? <= known {
            outcome.caught_up = true;
            return Ok(outcome);
        }
        // On SQLite this is the process's write turn and then the write lock (on the read side's
        // connection, committing at `synchronous=NORMAL`), so the checkpoints read below cannot go
        // stale; on PostgreSQL another server that moved one meanwhile makes its
        // guarded move below fail.
        let mut tx = self.db.begin_read_side().await?;
        // One statement reads every member's checkpoint (see `read_checkpoints`: on PostgreSQL it
        // locks them, in name order).
        let names: Vec<&'static str> = members.iter().map(|entry| entry.projector.name()).collect();
        let stored = read_checkpoints(&mut tx, self.db.backend(), &names).await?;
        let mut at = Vec::with_capacity(members.len());
        for entry in members {
            let Some(&(_, position, version)) = stored
                .iter()
                .find(|(consumer, ..)| consumer == entry.projector.name())
            else {
                return Err(sqlx::Error::RowNotFound.into());
            };
            // A checkpoint another server has reset to another version of the projector is not this
            // code's to move: left out, as the guarded move would refuse it.
            if version == entry.projector.version() {
                at.push((*entry, position));
            }
        }
        let Some(from) = at.iter().map(|(_, position)| *position).min() else {
            return Ok(outcome);
        };
        // Those another stepper has moved past `from` wait for a later batch.
        for (entry, position) in &at {
            if *position != from {
                entry.status.send_if_modified(|status| {
                    let changed = status.position != *position;
                    status.position = *position;
                    changed
                });
            }
        }
        let batch =
            eventstore::log::read_after(&mut *tx, self.db.backend(), &self.upcasters, from, limit)
                .await?;
        if batch.is_empty() {
            tx.rollback().await?;
            for (entry, _) in at.iter().filter(|(_, position)| *position == from) {
                entry.status.send_if_modified(|status| {
                    let changed = status.position != from;
                    status.position = from;
                    changed
                });
            }
            outcome.caught_up = true;
            return Ok(outcome);
        }
        let last = batch[batch.len() - 1].position;
        // Each member's new checkpoint and how many events it has taken (applied, or passed over as
        // none of its concern); moved together by one guarded statement below.
        let mut moves: Vec<(&'e Entry, i64, usize)> = Vec::with_capacity(at.len());
        for (entry, _) in at.into_iter().filter(|(_, position)| *position == from) {
            let projector = entry.projector.as_ref();
            let types = projector.aggregate_types();
            let concerns = |event: &RecordedEvent| {
                types.is_none_or(|types| types.contains(&event.aggregate_type.as_str()))
            };
            if !batch.iter().any(concerns) {
                // Nothing here for it: no savepoint and no apply, only its checkpoint moves.
                moves.push((entry, last, batch.len()));
                continue;
            }
            sqlx::query("SAVEPOINT projector").execute(&mut *tx).await?;
            let mut failed = None;
            for (applied, event) in batch.iter().enumerate() {
                if !concerns(event) {
                    continue;
                }
                if let Err(error) = projector.apply(&mut tx, event).await {
                    failed = Some((applied, event.position, error));
                    break;
                }
            }
            let kept = match failed {
                None => batch.len(),
                Some((applied, position, error)) => {
                    // Keep the events before the failing one, so the projector stops exactly there.
                    sqlx::query("ROLLBACK TO projector")
                        .execute(&mut *tx)
                        .await?;
                    let mut kept = 0;
                    for event in &batch[..applied] {
                        if concerns(event)
                            && let Err(again) = projector.apply(&mut tx, event).await
                        {
                            tracing::error!(projector = projector.name(), error = %again, "could not keep the events before a failing one");
                            sqlx::query("ROLLBACK TO projector")
                                .execute(&mut *tx)
                                .await?;
                            kept = 0;
                            break;
                        }
                        kept += 1;
                    }
                    outcome.failed.push((entry, position, error));
                    kept
                }
            };
            sqlx::query("RELEASE projector").execute(&mut *tx).await?;
            if kept > 0 {
                moves.push((entry, batch[kept - 1].position, kept));
            }
        }
        if !moves.is_empty() {
            // Guarded move: only from the position this batch was read after, at this code's
            // version. On SQLite the write lock, on PostgreSQL the rows locked above, keep any other
            // stepper out meanwhile, so a count short of the members means the checkpoints were
            // not what they were read as: nothing of this batch is kept, and the next batch reads
            // them again.
            let updated = move_checkpoints(&mut tx, from, &moves).await?;
            if updated != moves.len() as u64 {
                tx.rollback().await?;
                tracing::warn!(
                    projectors = ?moves.iter().map(|(entry, ..)| entry.projector.name()).collect::<Vec<_>>(),
                    moved = updated,
                    from,
                    "a checkpoint moved under a projector batch: rolled back"
                );
                outcome.caught_up = batch.len() < limit as usize;
                return Ok(outcome);
            }
        }
        before_commit()?;
        tx.commit().await?;
        for (entry, to, kept) in moves {
            let cleared = !outcome
                .failed
                .iter()
                .any(|(failed, ..)| std::ptr::eq(*failed, entry));
            entry.status.send_modify(|status| {
                status.position = to;
                if cleared {
                    status.failure = None;
                }
            });
            outcome.applied = outcome.applied.max(kept);
        }
        // A short batch read everything committed when it was read.
        outcome.caught_up = batch.len() < limit as usize;
        Ok(outcome)
    }

    async fn record_failure(&self, entry: &Entry, position: i64, err: &ProjectionError) {
        let name = entry.projector.name();
        tracing::error!(projector = name, position, error = %err, "projector stopped on an event");
        let message = err.to_string();
        let recorded = {
            let _turn = self.db.write_turn().await;
            sqlx::query(
                "UPDATE log_checkpoints SET failed_position = $1, last_error = $2
                  WHERE consumer = $3 AND position < $1 AND version = $4",
            )
            .bind(position)
            .bind(&message)
            .bind(name)
            .bind(entry.projector.version())
            .execute(self.db.pool())
            .await
        };
        match recorded {
            // Another stepper (another server, a rebuild) has already applied it: not a failure.
            Ok(result) if result.rows_affected() == 0 => return,
            Ok(_) => {}
            Err(store_err) => {
                tracing::error!(projector = name, error = %store_err, "could not record the projector failure");
            }
        }
        entry
            .status
            .send_modify(|status| status.failure = Some((position, message)));
    }

    /// Keeps one projector from applying anything until the returned guard is dropped: a batch in
    /// progress finishes first, later ones wait (so do `catch_up`, `rebuild` and shutdown). Tests
    /// use it to show what a client sees while a read model lags behind the log.
    pub async fn hold_back(&self, name: &str) -> Result<HeldBack, ProjectionError> {
        let gate = self.entry(name)?.gate.clone();
        Ok(HeldBack {
            _gate: gate.write_owned().await,
            wake: self.wake.clone(),
        })
    }

    /// Steps one projector until it has applied everything committed so far.
    pub async fn catch_up(&self, name: &str) -> Result<i64, ProjectionError> {
        while let Step::Advanced(_) = self.step(name).await? {}
        Ok(self.entry(name)?.status.borrow().position)
    }

    /// Steps every projector until caught up.
    pub async fn catch_up_all(&self) -> Result<(), ProjectionError> {
        for name in self.names() {
            self.catch_up(name).await?;
        }
        Ok(())
    }

    /// Drops the projector's tables, resets its checkpoint to 0 and replays the whole log, calling
    /// `progress(position, head)` after every batch.
    pub async fn rebuild(
        &self,
        name: &str,
        progress: impl FnMut(i64, i64),
    ) -> Result<i64, ProjectionError> {
        self.rebuild_together(&[name], progress).await
    }

    /// Rebuilds several projectors in one pass over the log: their tables dropped and their
    /// checkpoints reset in one transaction, then each event read and decoded once and applied to
    /// every one of them, in transactions of [`eventstore::log::MAX_BATCH_EVENTS`] events.
    /// `progress(position, head)` is called after every batch. Stops at the first projector that
    /// fails on an event (the others have then reached at least that batch), returning its error.
    pub async fn rebuild_together(
        &self,
        names: &[&str],
        mut progress: impl FnMut(i64, i64),
    ) -> Result<i64, ProjectionError> {
        let entries = names
            .iter()
            .map(|name| self.entry(name))
            .collect::<Result<Vec<_>, _>>()?;
        let _gates = futures::future::join_all(entries.iter().map(|entry| entry.gate.read())).await;
        let mut tx = self.db.begin_exclusive().await?;
        for entry in &entries {
            reset(&mut tx, self.db.backend(), entry.projector.as_ref()).await?;
        }
        tx.commit().await?;
        for entry in &entries {
            entry.status.send_replace(ProjectorStatus::default());
        }
        let head = eventstore::log::head(self.db.pool()).await?;
        progress(0, head);
        loop {
            let batch = self
                .apply_together(&entries, eventstore::log::MAX_BATCH_EVENTS, || Ok(()))
                .await?;
            if let Some((entry, position, error)) = batch.failed.into_iter().next() {
                self.record_failure(entry, position, &error).await;
                return Err(error);
            }
            let reached = self.lowest(&entries);
            if batch.caught_up || batch.applied == 0 {
                return Ok(reached);
            }
            progress(reached, head);
        }
    }

    fn lowest(&self, entries: &[&Entry]) -> i64 {
        entries
            .iter()
            .map(|entry| entry.status.borrow().position)
            .min()
            .unwrap_or(0)
    }

    /// The current status of every projector.
    pub fn statuses(&self) -> Vec<(&'static str, ProjectorStatus)> {
        self.entries
            .iter()
            .map(|(name, entry)| (*name, entry.status.borrow().clone()))
            .collect()
    }

    /// Reports another consumer of the log (see [`Projections::follower_statuses`]).
    pub fn add_follower(&self, name: &'static str, status: watch::Receiver<ProjectorStatus>) {
        self.followers
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((name, status));
    }

    /// The current status of every consumer that keeps no read model (the relay): shown by the
    /// `projections` query and `/readyz`, but not part of [`Projections::statuses`], so no mutation
    /// waits for it and its lag never makes the server unready.
    pub fn follower_statuses(&self) -> Vec<(&'static str, ProjectorStatus)> {
        self.followers
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(name, status)| (*name, status.borrow().clone()))
            .collect()
    }

    /// The lowest position every projector has reached: every read model reflects at least this.
    pub fn consistent_position(&self) -> i64 {
        self.entries
            .values()
            .map(|entry| entry.status.borrow().position)
            .min()
            .unwrap_or(0)
    }

    /// Waits until every projector has applied `position`, or `timeout` passes. Returns whether they
    /// did. Mutations call this so a client's next query sees its own write.
    pub async fn wait_for(&self, position: i64, timeout: Duration) -> bool {
        let all = async {
            for entry in self.entries.values() {
                let mut status = entry.status.subscribe();
                if status.wait_for(|s| s.position >= position).await.is_err() {
                    return false;
                }
            }
            true
        };
        tokio::time::timeout(timeout, all).await.unwrap_or(false)
    }

    /// Runs every projector in the background until `shutdown` turns true, in one task: the
    /// projectors this server runs that stand at the same position advance together, one
    /// transaction per batch ([`Projections::apply_together`]); then it sleeps until an append
    /// signal, a projector released, a retry due or the safety-net poll.
    pub fn spawn(
        self: &Arc<Self>,
        shutdown: watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let this = Arc::clone(self);
        vec![tokio::spawn(async move { this.run(shutdown).await })]
    }

    async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        let mut appended = self.db.subscribe_appended();
        let mut checkpoints = self.db.subscribe_checkpoints();
        let now = tokio::time::Instant::now();
        let mut pace: BTreeMap<&'static str, Pace> = self
            .entries
            .keys()
            .map(|name| (*name, Pace::new(now)))
            .collect();
        while !*shutdown.borrow() {
            let now = tokio::time::Instant::now();
            // Which projectors run here, and which are due.
            let mut due: BTreeMap<i64, Vec<(&Entry, tokio::sync::OwnedRwLockReadGuard<()>)>> =
                BTreeMap::new();
            for (name, entry) in &self.entries {
                let pace = pace.get_mut(name).expect("a pace per projector");
                let runs_here = now >= pace.ask_for_lease && self.db.leases().hold(name).await;
                entry.status.send_if_modified(|status| {
                    let changed = status.runs_here != runs_here;
                    status.runs_here = runs_here;
                    changed
                });
                if !runs_here {
                    // Another server runs this projector: follow its progress (read-your-writes
                    // here waits on it) and ask for the lease again at the next poll.
                    if now >= pace.ask_for_lease {
                        pace.ask_for_lease = now + Duration::from_millis(POLL_INTERVAL_MS);
                    }
                    if let Err(err) = self.follow(name).await {
                        tracing::warn!(projector = *name, error = %err, "could not read the checkpoint");
                    }
                    continue;
                }
                if pace.retry_at.is_some_and(|at| now < at) {
                    continue;
                }
                // Held back (tests): skipped until released, which wakes this loop.
                let Ok(gate) = entry.gate.clone().try_read_owned() else {
                    continue;
                };
                let position = entry.status.borrow().position;
                due.entry(position).or_default().push((entry, gate));
            }
            let mut advanced = false;
            for group in due.into_values() {
                let members: Vec<&Entry> = group.iter().map(|(entry, _)| *entry).collect();
                match self.apply_together(&members, BATCH_EVENTS, || Ok(())).await {
                    Ok(batch) => {
                        advanced |= batch.applied > 0;
                        for entry in &members {
                            let failed = batch
                                .failed
                                .iter()
                                .any(|(failed, ..)| std::ptr::eq(*failed, *entry));
                            let pace = pace.get_mut(entry.projector.name()).expect("a pace");
                            if failed {
                                pace.failed(now);
                            } else {
                                pace.succeeded();
                            }
                        }
                        for (entry, position, error) in batch.failed {
                            // Logged and recorded; tried again later, never skipped.
                            self.record_failure(entry, position, &error).await;
                        }
                    }
                    Err(err) => {
                        tracing::error!(projectors = ?members.iter().map(|e| e.projector.name()).collect::<Vec<_>>(), error = %err, "projector batch failed");
                        for entry in &members {
                            pace.get_mut(entry.projector.name())
                                .expect("a pace")
                                .failed(now);
                        }
                    }
                }
            }
            if advanced {
                continue;
            }
            let poll = now + Duration::from_millis(POLL_INTERVAL_MS);
            let wake_at = pace
                .values()
                .filter_map(|pace| pace.retry_at)
                .chain(std::iter::once(poll))
                .chain(
                    pace.values()
                        .map(|pace| pace.ask_for_lease)
                        .filter(|at| *at > now),
                )
                .min()
                .unwrap_or(poll);
            tokio::select! {
                _ = appended.changed() => {}
                _ = checkpoints.changed() => {}
                _ = self.wake.notified() => {}
                _ = shutdown.changed() => {}
                _ = tokio::time::sleep_until(wake_at) => {}
            }
        }
    }

    /// Reads a projector's checkpoint as another server left it.
    async fn follow(&self, name: &str) -> Result<(), ProjectionError> {
        let entry = self.entry(name)?;
        let stored: Option<(i64, Option<i64>, Option<String>)> = sqlx::query_as(
            "SELECT position, failed_position, last_error FROM log_checkpoints WHERE consumer = $1",
        )
        .bind(name)
        .fetch_optional(self.db.pool())
        .await?;
        if let Some((position, failed, error)) = stored {
            entry.status.send_if_modified(|status| {
                let next = ProjectorStatus {
                    position,
                    failure: failed.zip(error),
                    runs_here: status.runs_here,
                };
                let changed = *status != next;
                *status = next;
                changed
            });
        }
        Ok(())
    }
}

/// What one [`Projections::apply_together`] did.
#[derive(Default)]
struct Together<'a> {
    /// The most events any member applied (0: none moved).
    applied: usize,
    /// Nothing was left after the batch (or there was nothing to apply).
    caught_up: bool,
    /// Members that stopped on an event: the position and why.
    failed: Vec<(&'a Entry, i64, ProjectionError)>,
}

/// When the run loop next steps one projector or asks for its lease.
struct Pace {
    ask_for_lease: tokio::time::Instant,
    retry_at: Option<tokio::time::Instant>,
    retry_ms: u64,
}

impl Pace {
    fn new(now: tokio::time::Instant) -> Self {
        Self {
            ask_for_lease: now,
            retry_at: None,
            retry_ms: RETRY_FIRST_MS,
        }
    }

    fn succeeded(&mut self) {
        self.retry_at = None;
        self.retry_ms = RETRY_FIRST_MS;
    }

    /// Back-off, doubling up to the maximum, so a broken projector does not spin.
    fn failed(&mut self, now: tokio::time::Instant) {
        self.retry_at = Some(now + Duration::from_millis(self.retry_ms));
        self.retry_ms = (self.retry_ms * 2).min(RETRY_MAX_MS);
    }
}

async fn create_tables(
    conn: &mut AnyConnection,
    backend: Backend,
    projector: &dyn Projector,
) -> Result<(), sqlx::Error> {
    for statement in projector.schema() {
        sqlx::query(&backend.ddl(statement))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Whether every table of the projector exists.
async fn tables_exist(
    conn: &mut AnyConnection,
    backend: Backend,
    projector: &dyn Projector,
) -> Result<bool, sqlx::Error> {
    let sql = match backend {
        Backend::Sqlite => "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = $1",
        Backend::Postgres => {
            "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = $1"
        }
    };
    for table in projector.tables() {
        let found: i64 = sqlx::query_scalar(sql)
            .bind(*table)
            .fetch_one(&mut *conn)
            .await?;
        if found == 0 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Every named consumer's `(consumer, position, version)`, in one statement. On PostgreSQL the rows
/// are locked `FOR UPDATE`, so a second server stepping the same projector (a lease lost an instant
/// ago, `autosalon rebuild` beside a server) waits here and then reads the moved checkpoint instead
/// of colliding with this batch's rows; they are locked in byte order of the names (`COLLATE "C"`,
/// the order of the entries), so two servers never wait on each other.
async fn read_checkpoints(
    conn: &mut AnyConnection,
    backend: Backend,
    names: &[&str],
) -> Result<Vec<(String, i64, i64)>, sqlx::Error> {
    let list = (1..=names.len())
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = match backend {
        Backend::Sqlite => format!(
            "SELECT consumer, position, version FROM log_checkpoints WHERE consumer IN ({list})"
        ),
        Backend::Postgres => format!(
            "SELECT consumer, position, version FROM log_checkpoints WHERE consumer IN ({list})
              ORDER BY consumer COLLATE \"C\" FOR UPDATE"
        ),
    };
    let mut query = sqlx::query_as(&sql);
    for name in names {
        query = query.bind(*name);
    }
    query.fetch_all(&mut *conn).await
}

/// Moves each `(entry, to, _)` checkpoint from `from` to its `to`, in one statement guarded by the
/// position it was read at and by the projector's version; returns how many rows moved.
async fn move_checkpoints(
    conn: &mut AnyConnection,
    from: i64,
    moves: &[(&Entry, i64, usize)],
) -> Result<u64, sqlx::Error> {
    // $1 = from, $2 = now; then per member: name, new position, version.
    let mut cases = String::new();
    let mut guards = Vec::with_capacity(moves.len());
    for n in 0..moves.len() {
        let (name, to, version) = (3 + 3 * n, 4 + 3 * n, 5 + 3 * n);
        cases.push_str(&format!(" WHEN ${name} THEN ${to}"));
        guards.push(format!("(consumer = ${name} AND version = ${version})"));
    }
    let sql = format!(
        "UPDATE log_checkpoints
            SET position = CASE consumer{cases} END, updated_at = $2,
                failed_position = NULL, last_error = NULL
          WHERE position = $1 AND ({})",
        guards.join(" OR ")
    );
    let mut query = sqlx::query(&sql).bind(from).bind(now_text());
    for (entry, to, _) in moves {
        query = query
            .bind(entry.projector.name())
            .bind(*to)
            .bind(entry.projector.version());
    }
    Ok(query.execute(&mut *conn).await?.rows_affected())
}

/// Now, as the checkpoint table stores it (RFC 3339 UTC, milliseconds, `Z`).
fn now_text() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// Drops and recreates the projector's tables and sets its checkpoint to 0 at its current version.
async fn reset(
    conn: &mut AnyConnection,
    backend: Backend,
    projector: &dyn Projector,
) -> Result<(), sqlx::Error> {
    for table in projector.tables() {
        sqlx::query(&format!("DROP TABLE IF EXISTS {table}"))
            .execute(&mut *conn)
            .await?;
    }
    create_tables(conn, backend, projector).await?;
    sqlx::query(
        "INSERT INTO log_checkpoints (consumer, version, position, updated_at) VALUES ($1, $2, 0, $3)
         ON CONFLICT (consumer) DO UPDATE
            SET version = excluded.version, position = 0, failed_position = NULL, last_error = NULL,
                updated_at = excluded.updated_at",
    )
    .bind(projector.name())
    .bind(projector.version())
    .bind(now_text())
    .execute(&mut *conn)
    .await?;
    Ok(())
}
