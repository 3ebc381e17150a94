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

/// Why a batch was not committed.
enum BatchFailure {
    /// Before or after applying events (database, injected fault): nothing to blame on an event.
    Before(ProjectionError),
    /// The event at `position` failed after `applied` events of the batch had applied cleanly.
    At {
        position: i64,
        applied: usize,
        error: ProjectionError,
    },
}

fn before(err: sqlx::Error) -> BatchFailure {
    BatchFailure::Before(err.into())
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
}

/// Runs the projectors against one database.
pub struct Projections {
    db: Database,
    upcasters: Upcasters,
    entries: BTreeMap<&'static str, Entry>,
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
        match self.apply_batch(entry, limit, before_commit).await {
            Ok(step) => Ok(step),
            Err(BatchFailure::Before(err)) => Err(err),
            Err(BatchFailure::At {
                position,
                applied,
                error,
            }) => {
                // Keep the events before the failing one, so the projector stops exactly there.
                if applied > 0 {
                    if let Err(BatchFailure::Before(err) | BatchFailure::At { error: err, .. }) =
                        self.apply_batch(entry, applied as u32, || Ok(())).await
                    {
                        tracing::error!(projector = name, error = %err, "could not keep the events before a failing one");
                    }
                }
                self.record_failure(entry, position, &error).await;
                Err(error)
            }
        }
    }

    /// Applies up to `limit` events after the checkpoint and moves it, in one transaction.
    async fn apply_batch(
        &self,
        entry: &Entry,
        limit: u32,
        before_commit: impl FnOnce() -> Result<(), ProjectionError>,
    ) -> Result<Step, BatchFailure> {
        let projector = entry.projector.as_ref();
        let name = projector.name();
        // On SQLite this takes the write lock up front, so the checkpoint read below cannot go stale;
        // on PostgreSQL another server that moved it meanwhile makes the guarded move below fail.
        let mut tx = self
            .db
            .pool()
            .begin_with(self.db.backend().begin_write())
            .await
            .map_err(before)?;
        // On PostgreSQL, FOR UPDATE makes a second server stepping the same projector (a lease lost
        // an instant ago, `autosalon rebuild` beside a server) wait here and then read the moved
        // checkpoint, instead of colliding with this batch's rows.
        let read_checkpoint = match self.db.backend() {
            Backend::Sqlite => "SELECT position FROM log_checkpoints WHERE consumer = $1",
            Backend::Postgres => {
                "SELECT position FROM log_checkpoints WHERE consumer = $1 FOR UPDATE"
            }
        };
        let position: i64 = sqlx::query_scalar(read_checkpoint)
            .bind(name)
            .fetch_one(&mut *tx)
            .await
            .map_err(before)?;
        let batch = eventstore::log::read_after(
            &mut *tx,
            self.db.backend(),
            &self.upcasters,
            position,
            limit,
        )
        .await
        .map_err(|err| BatchFailure::Before(err.into()))?;
        let Some(last) = batch.last().map(|event| event.position) else {
            tx.rollback().await.map_err(before)?;
            entry.status.send_if_modified(|status| {
                let changed = status.position != position;
                status.position = position;
                changed
            });
            return Ok(Step::CaughtUp);
        };
        for (applied, event) in batch.iter().enumerate() {
            if let Err(error) = projector.apply(&mut tx, event).await {
                tx.rollback().await.map_err(before)?;
                return Err(BatchFailure::At {
                    position: event.position,
                    applied,
                    error,
                });
            }
        }
        // Guarded move: only from the position this batch was read after.
        let moved = sqlx::query(
            "UPDATE log_checkpoints
                SET position = $1, updated_at = $4, failed_position = NULL, last_error = NULL
              WHERE consumer = $2 AND position = $3 AND version = $5",
        )
        .bind(last)
        .bind(name)
        .bind(position)
        .bind(now_text())
        .bind(projector.version())
        .execute(&mut *tx)
        .await
        .map_err(before)?;
        if moved.rows_affected() != 1 {
            tx.rollback().await.map_err(before)?;
            return Ok(Step::Advanced(0));
        }
        before_commit().map_err(BatchFailure::Before)?;
        tx.commit().await.map_err(before)?;
        entry.status.send_modify(|status| {
            status.position = last;
            status.failure = None;
        });
        Ok(Step::Advanced(batch.len()))
    }

    async fn record_failure(&self, entry: &Entry, position: i64, err: &ProjectionError) {
        let name = entry.projector.name();
        tracing::error!(projector = name, position, error = %err, "projector stopped on an event");
        let message = err.to_string();
        let recorded = sqlx::query(
            "UPDATE log_checkpoints SET failed_position = $1, last_error = $2
              WHERE consumer = $3 AND position < $1 AND version = $4",
        )
        .bind(position)
        .bind(&message)
        .bind(name)
        .bind(entry.projector.version())
        .execute(self.db.pool())
        .await;
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
        mut progress: impl FnMut(i64, i64),
    ) -> Result<i64, ProjectionError> {
        let entry = self.entry(name)?;
        let mut tx = self.db.begin_exclusive().await?;
        reset(&mut tx, self.db.backend(), entry.projector.as_ref()).await?;
        tx.commit().await?;
        entry.status.send_replace(ProjectorStatus::default());
        let head = eventstore::log::head(self.db.pool()).await?;
        progress(0, head);
        while let Step::Advanced(_) = self.step(name).await? {
            progress(entry.status.borrow().position, head);
        }
        Ok(entry.status.borrow().position)
    }

    /// The current status of every projector.
    pub fn statuses(&self) -> Vec<(&'static str, ProjectorStatus)> {
        self.entries
            .iter()
            .map(|(name, entry)| (*name, entry.status.borrow().clone()))
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

    /// Runs every projector in the background until `shutdown` turns true: each catches up, then
    /// sleeps until an append signal or the safety-net poll.
    pub fn spawn(
        self: &Arc<Self>,
        shutdown: watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        self.names()
            .into_iter()
            .map(|name| {
                let this = Arc::clone(self);
                let shutdown = shutdown.clone();
                tokio::spawn(async move { this.run(name, shutdown).await })
            })
            .collect()
    }

    async fn run(&self, name: &'static str, mut shutdown: watch::Receiver<bool>) {
        let mut appended = self.db.subscribe_appended();
        let mut checkpoints = self.db.subscribe_checkpoints();
        let mut retry_ms = RETRY_FIRST_MS;
        let mut ask_for_lease = tokio::time::Instant::now();
        while !*shutdown.borrow() {
            let now = tokio::time::Instant::now();
            let runs_here = now >= ask_for_lease && self.db.leases().hold(name).await;
            if let Ok(entry) = self.entry(name) {
                entry.status.send_if_modified(|status| {
                    let changed = status.runs_here != runs_here;
                    status.runs_here = runs_here;
                    changed
                });
            }
            if !runs_here {
                // Another server runs this projector: follow its progress (read-your-writes here
                // waits on it) and ask for the lease again at the next poll.
                if now >= ask_for_lease {
                    ask_for_lease = now + Duration::from_millis(POLL_INTERVAL_MS);
                }
                if let Err(err) = self.follow(name).await {
                    tracing::warn!(projector = name, error = %err, "could not read the checkpoint");
                }
                tokio::select! {
                    _ = checkpoints.changed() => {}
                    _ = shutdown.changed() => {}
                    _ = tokio::time::sleep_until(ask_for_lease) => {}
                }
                continue;
            }
            let wait_ms = match self.step(name).await {
                Ok(Step::Advanced(_)) => {
                    retry_ms = RETRY_FIRST_MS;
                    continue;
                }
                Ok(Step::CaughtUp) => {
                    retry_ms = RETRY_FIRST_MS;
                    POLL_INTERVAL_MS
                }
                Err(_) => {
                    // Already logged and recorded; try the same event again later, never skip it.
                    let wait = retry_ms;
                    retry_ms = (retry_ms * 2).min(RETRY_MAX_MS);
                    wait
                }
            };
            tokio::select! {
                _ = appended.changed() => {}
                _ = shutdown.changed() => {}
                _ = tokio::time::sleep(Duration::from_millis(wait_ms)) => {}
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
