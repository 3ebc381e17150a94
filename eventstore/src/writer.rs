//! The appender: one task per process owns appending, and commands that append at the same time
//! share one transaction and one commit (group commit).
//!
//! A command hands its events (and cqrs-es's snapshot update) to the queue and waits. The task takes
//! whatever is queued (at most [`MAX_GROUP`] appends), waits for the process's write turn
//! ([`Database::write_turn`](crate::Database::write_turn); SQLite only), opens one write transaction
//! ([`Backend::begin_write`]) and writes each append inside its own savepoint: an append whose stream
//! moved on (SQLite 1555 or PostgreSQL 23505 on the events' primary key, or a snapshot row that
//! moved) or that a guard refuses is rolled back to its savepoint and answered alone; the others
//! stay. After `COMMIT` returns — durable: SQLite `synchronous=FULL`, PostgreSQL `fsync` and
//! `synchronous_commit`, both asserted at start-up, and on SQLite `PRAGMA synchronous` read again in
//! every group's transaction — each append of the group is answered. When the
//! commit fails, or a failure leaves the transaction unusable (SQLite rolls the whole transaction back
//! on a full disk or an I/O error), every append of the group is answered with that failure: nothing
//! of it is in the log, and an idempotent retry writes it once the cause is gone. On PostgreSQL the
//! first insert of a group takes the append lock (ARCHITECTURE.md, "The global log"), so a group
//! costs one lock and one commit, however many commands it carries. Before the commit the group's
//! events are chained ([`crate::chain::extend`]: one read of the chain's head, one read of the new
//! events, one insert), so every committed event has its chain row.
//!
//! The statements are sqlite-es's and postgres-es's own (their columns, their snapshot rule), so what
//! is written reads back through them unchanged, and errors map to cqrs-es the way they map them.
//! One difference: sqlite-es commits the events before it checks that the snapshot row was where it
//! expected, so its "conflict" may follow a committed append; here that check is inside the append's
//! savepoint, and a conflict means nothing was written.

use cqrs_es::persist::{PersistenceError, SerializedEvent};
use serde_json::Value;
use sqlx::Transaction;
use tokio::sync::{Mutex, mpsc, oneshot};

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Backend, Db, DbPool};

/// Appends committed together at most. A group is whatever queued while the previous one committed,
/// so one writer alone is never delayed; the cap bounds how long one transaction holds the lock.
pub const MAX_GROUP: usize = 64;
/// Appends waiting at most; a command beyond it waits for room (back-pressure, never unbounded memory).
const QUEUE: usize = 1_024;

/// cqrs-es's snapshot update: aggregate id, the aggregate as JSON, the snapshot's number.
pub(crate) type SnapshotUpdate = Option<(String, Value, usize)>;

/// One command's append, and where its answer goes.
struct Append {
    aggregate_type: &'static str,
    events: Vec<SerializedEvent>,
    snapshot: SnapshotUpdate,
    answer: oneshot::Sender<Result<(), PersistenceError>>,
}

/// The queue to the appender task. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Writer {
    queue: mpsc::Sender<Append>,
    commits: Arc<AtomicU64>,
    /// Appends the queue has accepted (tests wait on it: an accepted append is either queued or in
    /// the group the appender holds while it waits for the write turn).
    #[cfg(test)]
    accepted: Arc<std::sync::atomic::AtomicUsize>,
}

impl Writer {
    /// Starts the appender over `pool`, taking `gate` (SQLite's write turn) around every
    /// transaction. It runs until the last [`Writer`] is dropped.
    pub(crate) fn spawn(pool: DbPool, backend: Backend, gate: Option<Arc<Mutex<()>>>) -> Self {
        let (queue, received) = mpsc::channel(QUEUE);
        let commits = Arc::new(AtomicU64::new(0));
        tokio::spawn(run(pool, backend, gate, received, commits.clone()));
        Self {
            queue,
            commits,
            #[cfg(test)]
            accepted: Arc::default(),
        }
    }

    /// How many group transactions have committed since the appender started.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Appends the queue has accepted since the appender started.
    #[cfg(test)]
    pub(crate) fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Appends `events` (and the snapshot update) durably; returns once they are committed, or why not.
    pub(crate) async fn append(
        &self,
        aggregate_type: &'static str,
        events: &[SerializedEvent],
        snapshot: SnapshotUpdate,
    ) -> Result<(), PersistenceError> {
        let (answer, answered) = oneshot::channel();
        let append = Append {
            aggregate_type,
            events: events.to_vec(),
            snapshot,
            answer,
        };
        if self.queue.send(append).await.is_err() {
            return Err(stopped());
        }
        #[cfg(test)]
        self.accepted.fetch_add(1, Ordering::SeqCst);
        answered.await.unwrap_or_else(|_| Err(stopped()))
    }
}

/// The appender is gone (the runtime shutting down): nothing was written.
fn stopped() -> PersistenceError {
    PersistenceError::ConnectionError(Box::new(std::io::Error::other(
        "the appender has stopped: nothing was written",
    )))
}

async fn run(
    pool: DbPool,
    backend: Backend,
    gate: Option<Arc<Mutex<()>>>,
    mut received: mpsc::Receiver<Append>,
    commits: Arc<AtomicU64>,
) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = received.recv().await {
        group.push(first);
        take_queued(&mut received, &mut group);
        let turn = match &gate {
            Some(gate) => Some(gate.lock().await),
            None => None,
        };
        // Whatever queued while the turn was taken joins this group.
        take_queued(&mut received, &mut group);
        if commit_group(&pool, backend, &mut group).await {
            commits.fetch_add(1, Ordering::Relaxed);
        }
        drop(turn);
    }
}

fn take_queued(received: &mut mpsc::Receiver<Append>, group: &mut Vec<Append>) {
    while group.len() < MAX_GROUP {
        match received.try_recv() {
            Ok(append) => group.push(append),
            Err(_) => break,
        }
    }
}

/// Writes and commits one group, answering every append in it (and leaving `group` empty). Returns
/// whether a transaction committed.
async fn commit_group(pool: &DbPool, backend: Backend, group: &mut Vec<Append>) -> bool {
    let mut tx = match pool.begin_with(backend.begin_write()).await {
        Ok(tx) => tx,
        Err(err) => {
            answer_all(group.drain(..), &err);
            return false;
        }
    };
    if let Err(err) = assert_full_sync(&mut tx, backend).await {
        let _ = tx.rollback().await;
        answer_all(group.drain(..), &err);
        return false;
    }
    let mut written = Vec::with_capacity(group.len());
    // Appends refused alone (a conflict, a guard), answered only once the group has committed: what
    // a refused command then reads (the winner of its race, the holder of a VIN) is in the database.
    let mut refused: Vec<(Append, PersistenceError)> = Vec::new();
    // Events known to exist (committed before, or written by this group): an append of the group
    // that would insert one of them again is a conflict, refused without another round trip. Many
    // commands deciding on one version of a hot aggregate cost one failed insert, not one each.
    let mut existing: HashSet<(&'static str, String, usize)> = HashSet::new();
    let mut pending = group.drain(..);
    while let Some(append) = pending.next() {
        let key = |event: &SerializedEvent| {
            (
                append.aggregate_type,
                event.aggregate_id.clone(),
                event.sequence,
            )
        };
        if append
            .events
            .iter()
            .any(|event| existing.contains(&key(event)))
        {
            refused.push((append, PersistenceError::OptimisticLockError));
            continue;
        }
        match in_savepoint(&mut tx, backend, &append).await {
            Ok(()) => {
                existing.extend(append.events.iter().map(key));
                written.push(append);
            }
            Err(Failure::Conflict(taken)) => {
                if let Some(sequence) = taken
                    && let Some(event) = append.events.iter().find(|e| e.sequence == sequence)
                {
                    existing.insert(key(event));
                }
                refused.push((append, PersistenceError::OptimisticLockError));
            }
            Err(Failure::Alone(err)) => refused.push((append, err)),
            Err(Failure::Group(err)) => {
                // The transaction is gone (or going): nothing of the group will commit.
                let _ = tx.rollback().await;
                let everyone = written
                    .into_iter()
                    .chain(refused.into_iter().map(|(append, _)| append))
                    .chain(std::iter::once(append))
                    .chain(pending);
                answer_all(everyone, &err);
                return false;
            }
        }
    }
    if !written.is_empty() {
        // The group's events are in (and on PostgreSQL its first insert holds the append lock): chain
        // them, in this transaction, so no event is ever committed without its chain row.
        if let Err(err) = crate::chain::extend(&mut tx, backend, None).await {
            let _ = tx.rollback().await;
            let err = match err {
                crate::StoreError::Sql(err) => err,
                other => sqlx::Error::Protocol(other.to_string()),
            };
            tracing::error!(error = %err, appends = written.len(), "chaining the group's events failed");
            let everyone = written
                .into_iter()
                .chain(refused.into_iter().map(|(append, _)| append));
            answer_all(everyone, &err);
            return false;
        }
    }
    let committed = if written.is_empty() {
        let _ = tx.rollback().await;
        false
    } else {
        match tx.commit().await {
            Ok(()) => true,
            Err(err) => {
                // Nothing of the group is in the log: every one of them is told the storage failed,
                // and a retry decides again.
                tracing::error!(error = %err, appends = written.len(), "the group's commit failed");
                let everyone = written
                    .into_iter()
                    .chain(refused.into_iter().map(|(append, _)| append));
                answer_all(everyone, &err);
                return false;
            }
        }
    };
    for append in written {
        let _ = append.answer.send(Ok(()));
    }
    for (append, err) in refused {
        let _ = append.answer.send(Err(err));
    }
    committed
}

/// Refuses a group whose transaction would not commit at `synchronous=FULL` on SQLite: the read
/// side's connection commits at NORMAL (`Database::begin_read_side`), and an append that ever ran on
/// such a connection could be acknowledged and then lost with the power. One `PRAGMA` per group.
async fn assert_full_sync(
    tx: &mut Transaction<'static, Db>,
    backend: Backend,
) -> Result<(), sqlx::Error> {
    if backend != Backend::Sqlite {
        return Ok(());
    }
    let level: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(&mut **tx)
        .await?;
    if level == crate::database::SYNCHRONOUS_FULL {
        return Ok(());
    }
    tracing::error!(
        synchronous = level,
        "an append transaction is not at synchronous=FULL; refused"
    );
    Err(sqlx::Error::Protocol(format!(
        "appends commit only at synchronous=FULL (2), this connection is at {level}"
    )))
}

/// Why one append failed: a conflict or another error of its own (rolled back to its savepoint, the
/// group goes on), or with the whole transaction.
enum Failure {
    /// The stream moved on; with the sequence whose event already exists, when that is what failed.
    Conflict(Option<usize>),
    Alone(PersistenceError),
    Group(sqlx::Error),
}

async fn in_savepoint(
    tx: &mut Transaction<'static, Db>,
    backend: Backend,
    append: &Append,
) -> Result<(), Failure> {
    sqlx::query("SAVEPOINT append")
        .execute(&mut **tx)
        .await
        .map_err(Failure::Group)?;
    match write(tx, backend, append).await {
        Ok(()) => {
            sqlx::query("RELEASE append")
                .execute(&mut **tx)
                .await
                .map_err(Failure::Group)?;
            Ok(())
        }
        Err(err) => {
            // If SQLite has already rolled the whole transaction back (SQLITE_FULL, SQLITE_IOERR …),
            // the savepoint is gone too, and so is every append before this one.
            let undone = async {
                sqlx::query("ROLLBACK TO append").execute(&mut **tx).await?;
                sqlx::query("RELEASE append").execute(&mut **tx).await
            }
            .await;
            match (undone, err) {
                (Ok(_), WriteError::Conflict(taken)) => Err(Failure::Conflict(taken)),
                (Ok(_), WriteError::Sql(err)) if !crate::database::is_unavailable(&err) => {
                    Err(Failure::Alone(crate_error(err)))
                }
                (Ok(_), WriteError::Sql(err)) | (Err(_), WriteError::Sql(err)) => {
                    Err(Failure::Group(err))
                }
                (Err(err), WriteError::Conflict(_)) => Err(Failure::Group(err)),
            }
        }
    }
}

enum WriteError {
    /// With the sequence of the event that already exists, when an event's insert failed.
    Conflict(Option<usize>),
    Sql(sqlx::Error),
}

/// Another append took this stream's sequence number first, as each crate recognises it: SQLite
/// SQLITE_CONSTRAINT_PRIMARYKEY (sqlite-es), PostgreSQL unique_violation (postgres-es, which reads
/// every 23505 as one — the VIN guard's too, which the command layer tells apart).
fn conflict(backend: Backend, err: &sqlx::Error) -> bool {
    let code = match err {
        sqlx::Error::Database(db) => db.code(),
        _ => None,
    };
    match backend {
        Backend::Sqlite => code.as_deref() == Some("1555"),
        Backend::Postgres => code.as_deref() == Some("23505"),
    }
}

/// The crates' statements, in their order. JSON is bound as its text: what sqlx's SQLite driver
/// stores for a `serde_json::Value`, and cast to `json` on PostgreSQL.
async fn write(
    tx: &mut Transaction<'static, Db>,
    backend: Backend,
    append: &Append,
) -> Result<(), WriteError> {
    let sql_error = |sequence: Option<usize>| {
        move |err: sqlx::Error| {
            if conflict(backend, &err) {
                WriteError::Conflict(sequence)
            } else {
                WriteError::Sql(err)
            }
        }
    };
    let (insert_event, insert_snapshot, update_snapshot) = match backend {
        Backend::Sqlite => (
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            "INSERT INTO snapshots (aggregate_type, aggregate_id, last_sequence, current_snapshot, payload)
             VALUES ($1, $2, $3, $4, $5)",
            "UPDATE snapshots SET last_sequence = $1, payload = $2, current_snapshot = $3
              WHERE aggregate_type = $4 AND aggregate_id = $5 AND current_snapshot = $6",
        ),
        Backend::Postgres => (
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
             VALUES ($1, $2, $3, $4, $5, CAST($6 AS json), CAST($7 AS json))",
            "INSERT INTO snapshots (aggregate_type, aggregate_id, last_sequence, current_snapshot, payload)
             VALUES ($1, $2, $3, $4, CAST($5 AS json))",
            "UPDATE snapshots SET last_sequence = $1, payload = CAST($2 AS json), current_snapshot = $3
              WHERE aggregate_type = $4 AND aggregate_id = $5 AND current_snapshot = $6",
        ),
    };
    let mut last_sequence = 0;
    for event in &append.events {
        last_sequence = event.sequence;
        sqlx::query(insert_event)
            .bind(append.aggregate_type)
            .bind(event.aggregate_id.as_str())
            .bind(event.sequence as i64)
            .bind(event.event_type.as_str())
            .bind(event.event_version.as_str())
            .bind(event.payload.to_string())
            .bind(event.metadata.to_string())
            .execute(&mut **tx)
            .await
            .map_err(sql_error(Some(event.sequence)))?;
    }
    let Some((aggregate_id, payload, current_snapshot)) = &append.snapshot else {
        return Ok(());
    };
    if *current_snapshot == 1 {
        sqlx::query(insert_snapshot)
            .bind(append.aggregate_type)
            .bind(aggregate_id.as_str())
            .bind(last_sequence as i64)
            .bind(*current_snapshot as i64)
            .bind(payload.to_string())
            .execute(&mut **tx)
            .await
            .map_err(sql_error(None))?;
    } else {
        let moved = sqlx::query(update_snapshot)
            .bind(last_sequence as i64)
            .bind(payload.to_string())
            .bind(*current_snapshot as i64)
            .bind(append.aggregate_type)
            .bind(aggregate_id.as_str())
            .bind(*current_snapshot as i64 - 1)
            .execute(&mut **tx)
            .await
            .map_err(sql_error(None))?;
        if moved.rows_affected() != 1 {
            return Err(WriteError::Conflict(None));
        }
    }
    Ok(())
}

/// An error as sqlite-es and postgres-es report it to cqrs-es (so the command layer tells the cases
/// apart as it always has: a conflict, the storage unavailable, anything else internal).
fn crate_error(err: sqlx::Error) -> PersistenceError {
    match err {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
            PersistenceError::ConnectionError(Box::new(err))
        }
        _ => PersistenceError::UnknownError(Box::new(err)),
    }
}

/// The same failure for an append that shared the group with the one that failed. A storage failure
/// stays one (retryable); anything else is internal.
fn persistence_error(err: &sqlx::Error) -> PersistenceError {
    let message = std::io::Error::other(format!("the group's transaction failed: {err}"));
    if crate::database::is_unavailable(err) {
        PersistenceError::ConnectionError(Box::new(message))
    } else {
        PersistenceError::UnknownError(Box::new(message))
    }
}

fn answer_all(appends: impl Iterator<Item = Append>, err: &sqlx::Error) {
    for append in appends {
        let _ = append.answer.send(Err(persistence_error(err)));
    }
}
