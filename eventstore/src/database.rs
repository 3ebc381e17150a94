//! Opening the database: the backend chosen by the URL, durability settings asserted at start-up,
//! embedded migrations, and the "events were appended" / "a checkpoint moved" signals (in-process,
//! and across processes by LISTEN/NOTIFY on PostgreSQL).
//!
//! Two pools point at the same database. The *native* pool (`sqlx::Sqlite` or `sqlx::Postgres`) is
//! what sqlite-es or postgres-es appends through. The [`DbPool`] (`sqlx::Any`) is what everything
//! above this crate uses: the log readers, the projectors and the queries. Their SQL is written once,
//! with `$N` placeholders and types both backends share (TEXT, BIGINT/INTEGER), never against a
//! driver by name; [`Backend`] covers the few statements that must differ.

use std::str::FromStr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Executor, Transaction};
use tokio::sync::watch;

use crate::leases::Leases;

/// The SQL interface every layer above the store uses, whatever the backend.
pub type Db = sqlx::Any;
/// A pool of connections to [`Db`].
pub type DbPool = sqlx::AnyPool;

/// How long a connection waits for SQLite's single write lock before giving up.
const BUSY_TIMEOUT_MS: u64 = 5_000;
/// SQLite serves readers in parallel (WAL) and one writer; more connections only queue.
const SQLITE_MAX_CONNECTIONS: u32 = 8;
/// PostgreSQL connections per pool and server (two pools: appends, and reads/projections).
const POSTGRES_MAX_CONNECTIONS: u32 = 10;
/// How long a request waits for a free connection before it fails.
const ACQUIRE_TIMEOUT_SECS: u64 = 10;
/// `PRAGMA synchronous` reports FULL as 2.
pub(crate) const SYNCHRONOUS_FULL: i64 = 2;
/// Connections of the read side's pool on SQLite: one projector batch writes at a time (the write
/// turn), the second is for `rebuild` or a test stepping a projector beside the run loop.
const SQLITE_READ_SIDE_CONNECTIONS: u32 = 2;

/// NOTIFY channel of the append trigger (PostgreSQL migration `0001`).
pub const EVENTS_CHANNEL: &str = "autosalon_events";
/// NOTIFY channel of the checkpoint trigger (PostgreSQL migration `0001`).
pub const CHECKPOINTS_CHANNEL: &str = "autosalon_checkpoints";
/// First key of every advisory lock the application takes (`'AUTO'` as an int4), so its locks never
/// collide with another application's in the same database.
pub const LOCK_NAMESPACE: i32 = 0x4155_544f;
/// Second key of the advisory lock that serialises schema changes (read-model resets, guards).
const SCHEMA_LOCK: i32 = 2;

/// Failures of the store itself (never of a domain rule).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL could not be parsed; the operator fixes the configuration.
    #[error("invalid database URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// A durability setting is not what an acknowledged command needs to survive power loss.
    #[error("durability check failed: {setting} is {found}, expected {expected}")]
    Durability {
        setting: &'static str,
        expected: String,
        found: String,
    },
    /// Applying the embedded migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Any other database failure (I/O, lock time-out, constraint).
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    /// A stored row does not decode (corrupt or from an unknown schema).
    #[error("stored event at position {position} does not decode: {reason}")]
    Decode { position: i64, reason: String },
}

/// Which database the URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The embedded file (`sqlite://PATH`): one machine, one writer.
    Sqlite,
    /// A PostgreSQL server (`postgres://…`): several servers may share it.
    Postgres,
}

impl Backend {
    /// The backend a database URL names.
    pub fn from_url(url: &str) -> Result<Self, StoreError> {
        Self::from_scheme(url.split(':').next().unwrap_or_default()).ok_or_else(|| {
            StoreError::InvalidUrl {
                url: redact(url),
                reason: "expected sqlite://PATH or postgres://USER@HOST/DATABASE".into(),
            }
        })
    }

    /// The backend a [`DbPool`] is connected to.
    pub fn of(pool: &DbPool) -> Self {
        Self::from_scheme(pool.connect_options().database_url.scheme())
            .expect("pools are opened only for URLs `from_url` accepted")
    }

    fn from_scheme(scheme: &str) -> Option<Self> {
        match scheme {
            "sqlite" => Some(Self::Sqlite),
            "postgres" | "postgresql" => Some(Self::Postgres),
            _ => None,
        }
    }

    /// Its name, as health checks report it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }

    /// The statement opening a transaction that writes read models. SQLite's IMMEDIATE takes the write
    /// lock up front, so a value read at the start cannot go stale; PostgreSQL locks rows as it goes.
    pub fn begin_write(self) -> &'static str {
        match self {
            Self::Sqlite => "BEGIN IMMEDIATE",
            Self::Postgres => "BEGIN",
        }
    }

    /// The statement opening a read-only transaction whose every statement sees one instant. SQLite's
    /// WAL gives any transaction that; PostgreSQL needs REPEATABLE READ.
    pub fn begin_snapshot(self) -> &'static str {
        match self {
            Self::Sqlite => "BEGIN",
            Self::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        }
    }

    /// Rewrites a read-model `CREATE TABLE` written for SQLite (STRICT, INTEGER, REAL, BLOB) for this
    /// backend: PostgreSQL gets BIGINT for INTEGER (every integer column holds an `i64`), DOUBLE
    /// PRECISION for REAL and BYTEA for BLOB. Other statements pass through unchanged.
    pub fn ddl(self, statement: &str) -> String {
        match self {
            Self::Sqlite => statement.to_string(),
            Self::Postgres => postgres_ddl(statement),
        }
    }
}

fn postgres_ddl(statement: &str) -> String {
    let mut out = String::with_capacity(statement.len() + 16);
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let replaced = match word.to_ascii_uppercase().as_str() {
            "INTEGER" | "INT" => "BIGINT",
            "REAL" => "DOUBLE PRECISION",
            "BLOB" => "BYTEA",
            "STRICT" => "",
            _ => word.as_str(),
        };
        out.push_str(replaced);
        word.clear();
    };
    let mut quoted = false;
    for ch in statement.chars() {
        if ch == '\'' {
            quoted = !quoted;
        }
        if !quoted && (ch.is_ascii_alphanumeric() || ch == '_') {
            word.push(ch);
        } else {
            flush(&mut word, &mut out);
            out.push(ch);
        }
    }
    flush(&mut word, &mut out);
    out.trim_end().trim_end_matches(',').trim_end().to_string()
}

/// The driver-specific pool the cqrs-es repository appends through.
#[derive(Clone, Debug)]
pub(crate) enum NativePool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Signals shared by every clone of a [`Database`].
#[derive(Debug)]
struct Signals {
    /// Bumped after every append this process makes, or hears of (NOTIFY).
    appended: watch::Sender<u64>,
    /// Bumped when another process reports that a projector moved its checkpoint (NOTIFY).
    checkpoints: watch::Sender<u64>,
    /// Appends of this process refused because a concurrent one got there first.
    contended: std::sync::atomic::AtomicU64,
    /// Set when a write failed because the storage refused it (disk full, read-only, I/O error,
    /// unreachable); cleared by the next write that commits. `/readyz` answers 503 while it is set.
    writes_failing: std::sync::atomic::AtomicBool,
}

/// The event store's database: the pools, the backend, the wake-up signals and the projector leases.
#[derive(Clone, Debug)]
pub struct Database {
    backend: Backend,
    pool: DbPool,
    native: NativePool,
    signals: Arc<Signals>,
    leases: Arc<Leases>,
    listener: Arc<std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
    /// SQLite's one write lock, taken in this process before SQLite's own: whoever writes waits here,
    /// woken the instant the previous writer finishes, instead of sleeping in SQLite's busy handler
    /// (which polls at 1, 2, 5, 10 … ms and is not woken when the lock frees). Unused on PostgreSQL,
    /// which has row locks and the append lock.
    write_gate: Arc<tokio::sync::Mutex<()>>,
    /// The appender (group commit).
    writer: crate::writer::Writer,
    /// Where projector batches write: on SQLite its own connection, committing at
    /// `synchronous=NORMAL` (see [`Database::begin_read_side`]); on PostgreSQL the same pool.
    read_side: DbPool,
}

/// A write transaction. On SQLite it holds the write gate until it commits, rolls back or is dropped,
/// so no other writer of this process is ever turned away by SQLite's lock.
pub struct WriteTx {
    // Declared first, so it is dropped (rolled back) before the turn is given up.
    tx: Transaction<'static, Db>,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl WriteTx {
    /// Commits; the gate is released once the commit has returned.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    /// Rolls back.
    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

/// Like a [`Transaction`], it is used as its connection: `&mut *tx`.
impl std::ops::Deref for WriteTx {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

/// This process's turn to write (see [`Database::write_turn`]).
pub struct WriteTurn {
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Database {
    /// Opens the database at `url`:
    /// - `sqlite://PATH` (created if missing) with WAL, `synchronous=FULL`, a busy timeout and foreign
    ///   keys on every connection;
    /// - `postgres://USER:PASSWORD@HOST:PORT/DATABASE` (the database must exist), listening for other
    ///   servers' appends and checkpoint moves.
    ///
    /// Either way the durability settings are asserted before anything else happens.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let invalid = |err: sqlx::Error| StoreError::InvalidUrl {
            url: redact(url),
            reason: err.to_string(),
        };
        let signals = Arc::new(Signals {
            appended: watch::channel(0).0,
            checkpoints: watch::channel(0).0,
            contended: std::sync::atomic::AtomicU64::new(0),
            writes_failing: std::sync::atomic::AtomicBool::new(false),
        });
        let database = match backend {
            Backend::Sqlite => {
                let options = SqliteConnectOptions::from_str(url)
                    .map_err(invalid)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))
                    .foreign_keys(true);
                let native = SqlitePoolOptions::new()
                    .max_connections(SQLITE_MAX_CONNECTIONS)
                    .acquire_timeout(Duration::from_secs(ACQUIRE_TIMEOUT_SECS))
                    .after_release(|conn, _| Box::pin(async move { Ok(reusable(&*conn)) }))
                    .connect_with(options)
                    .await?;
                // The file exists now; the Any driver takes its options from the URL only, so the
                // same pragmas are set on each of its connections as it opens.
                let pool = any_sqlite_pool(url, SQLITE_MAX_CONNECTIONS, "FULL").await?;
                // Projector batches only: their rows and checkpoints, never an event. `NORMAL` in WAL
                // skips the commit's fsync; the next append's `FULL` commit syncs the WAL with every
                // frame before its own, and a power loss can only take the read side back to an
                // earlier consistent checkpoint, re-applied from the durable log (ARCHITECTURE.md,
                // "One writer on SQLite; group commit").
                let read_side =
                    any_sqlite_pool(url, SQLITE_READ_SIDE_CONNECTIONS, "NORMAL").await?;
                let write_gate = Arc::new(tokio::sync::Mutex::new(()));
                let writer =
                    crate::writer::Writer::spawn(pool.clone(), backend, Some(write_gate.clone()));
                Self {
                    backend,
                    pool,
                    native: NativePool::Sqlite(native),
                    signals,
                    leases: Arc::new(Leases::local()),
                    listener: Arc::default(),
                    write_gate,
                    writer,
                    read_side,
                }
            }
            Backend::Postgres => {
                let options = PgConnectOptions::from_str(url)
                    .map_err(invalid)?
                    .application_name("autosalon");
                let native = PgPoolOptions::new()
                    .max_connections(POSTGRES_MAX_CONNECTIONS)
                    .acquire_timeout(Duration::from_secs(ACQUIRE_TIMEOUT_SECS))
                    .after_release(|conn, _| Box::pin(async move { Ok(reusable(&*conn)) }))
                    .connect_with(options.clone())
                    .await?;
                let pool = AnyPoolOptions::new()
                    .max_connections(POSTGRES_MAX_CONNECTIONS)
                    .acquire_timeout(Duration::from_secs(ACQUIRE_TIMEOUT_SECS))
                    .after_release(|conn, _| Box::pin(async move { Ok(reusable(&*conn)) }))
                    .connect(url)
                    .await?;
                let writer = crate::writer::Writer::spawn(pool.clone(), backend, None);
                Self {
                    backend,
                    read_side: pool.clone(),
                    pool,
                    native: NativePool::Postgres(native),
                    signals,
                    leases: Arc::new(Leases::postgres(options)),
                    listener: Arc::default(),
                    write_gate: Arc::default(),
                    writer,
                }
            }
        };
        database.assert_durability().await?;
        if let NativePool::Postgres(pool) = &database.native {
            let task = tokio::spawn(listen(pool.clone(), Arc::downgrade(&database.signals)));
            *database.listener.lock().expect("listener slot") = Some(task);
        }
        Ok(database)
    }

    /// The backend this database runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Refuses to run when the settings that make an acknowledged command durable are off.
    pub async fn assert_durability(&self) -> Result<(), StoreError> {
        match &self.native {
            NativePool::Sqlite(pool) => assert_sqlite_durability(pool).await,
            NativePool::Postgres(pool) => assert_postgres_durability(pool).await,
        }
    }

    /// Applies the embedded event-store migrations of this backend (idempotent; on PostgreSQL several
    /// servers starting at once take turns, under sqlx's migration lock), then chains whatever the
    /// log holds that the hash chain does not cover yet (a log written before the chain existed; see
    /// [`crate::chain::backfill`]).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.native {
            NativePool::Sqlite(pool) => sqlx::migrate!("./migrations/sqlite").run(pool).await?,
            NativePool::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await?,
        }
        crate::chain::backfill(self).await?;
        Ok(())
    }

    /// The connection pool, for read models and the log readers.
    pub fn pool(&self) -> &DbPool {
        &self.pool
    }

    pub(crate) fn native(&self) -> &NativePool {
        &self.native
    }

    /// Which projectors this server runs (see [`Leases`]).
    pub fn leases(&self) -> &Leases {
        &self.leases
    }

    pub(crate) fn writer(&self) -> &crate::writer::Writer {
        &self.writer
    }

    /// Waits for this process's turn to write. On SQLite, every write of the process takes it before
    /// SQLite's lock (appends, projector batches, sessions, schema changes), so writers queue here and
    /// never in SQLite's busy handler; on PostgreSQL it is free.
    pub async fn write_turn(&self) -> WriteTurn {
        WriteTurn {
            _turn: self.take_turn().await,
        }
    }

    async fn take_turn(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        match self.backend {
            Backend::Sqlite => Some(self.write_gate.clone().lock_owned().await),
            Backend::Postgres => None,
        }
    }

    /// Opens a write transaction ([`Backend::begin_write`]) in this process's turn to write.
    pub async fn begin_write(&self) -> Result<WriteTx, sqlx::Error> {
        let turn = self.take_turn().await;
        let tx = self.pool.begin_with(self.backend.begin_write()).await?;
        Ok(WriteTx { tx, _turn: turn })
    }

    /// Opens a write transaction for a projector batch (read-model rows and checkpoints only, never an
    /// event), in this process's turn to write. On SQLite it runs on the read side's own connection,
    /// which commits at `synchronous=NORMAL`: in WAL that commit skips its fsync, and the next
    /// append's `FULL` commit syncs the WAL with it. No append ever runs on that connection (the
    /// appender holds the main pool and checks `PRAGMA synchronous` in every group). On PostgreSQL it
    /// is [`Database::begin_write`].
    pub async fn begin_read_side(&self) -> Result<WriteTx, sqlx::Error> {
        let turn = self.take_turn().await;
        let tx = self
            .read_side
            .begin_with(self.backend.begin_write())
            .await?;
        Ok(WriteTx { tx, _turn: turn })
    }

    /// The read side's pool (see [`Database::begin_read_side`]), for tests of its settings.
    pub fn read_side_pool(&self) -> &DbPool {
        &self.read_side
    }

    /// Opens a transaction for changing read-model schemas and checkpoints (resets, rebuilds, guards).
    /// On SQLite it holds the write lock; on PostgreSQL it also takes an advisory lock, so several
    /// servers starting together change one schema at a time.
    pub async fn begin_exclusive(&self) -> Result<WriteTx, sqlx::Error> {
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            sqlx::query(&format!(
                "SELECT CAST(pg_advisory_xact_lock({LOCK_NAMESPACE}, {SCHEMA_LOCK}) AS TEXT)"
            ))
            .execute(&mut *tx)
            .await?;
        }
        Ok(tx)
    }

    /// Counts an append refused because a concurrent append got there first: the stream's version
    /// moved on (optimistic lock), or a guard's unique key was taken. The command layer reports it,
    /// whether the command is then re-decided or refused.
    pub fn note_contended_append(&self) {
        self.signals
            .contended
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// How many appends of this process a concurrent append has beaten since it started: the
    /// evidence race tests use that their racers really interleaved.
    pub fn contended_appends(&self) -> u64 {
        self.signals
            .contended
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Records that a write failed because the storage refused it ([`is_unavailable`]): until a
    /// write commits again, [`Database::writes_ok`] probes the storage before saying yes.
    pub fn note_write_failed(&self) {
        self.signals
            .writes_failing
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Records that a write committed: the storage takes writes.
    pub fn note_write_committed(&self) {
        self.signals
            .writes_failing
            .store(false, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the storage takes writes. Answered from memory while no write has failed since the
    /// last one that committed; after a failure, by committing a probe write (which clears the
    /// failure when it commits), so recovery is seen without waiting for a client's write.
    pub async fn writes_ok(&self) -> bool {
        if !self
            .signals
            .writes_failing
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return true;
        }
        match self.probe_write().await {
            Ok(()) => {
                self.note_write_committed();
                true
            }
            Err(err) => {
                tracing::warn!(error = %err, "the storage still refuses writes");
                false
            }
        }
    }

    /// Commits a write that changes nothing anyone reads, durably, as every event is committed.
    /// SQLite: rewrites `user_version` (unused by the schema) with its own value, so a page of the
    /// file is written, synced and committed. PostgreSQL: a transaction that is given an id, so
    /// its commit record is written and flushed (a read-only server refuses it).
    async fn probe_write(&self) -> Result<(), sqlx::Error> {
        let mut tx = self.begin_write().await?;
        match self.backend {
            Backend::Sqlite => {
                let version: i64 = sqlx::query_scalar("PRAGMA user_version")
                    .fetch_one(&mut *tx)
                    .await?;
                sqlx::query(&format!("PRAGMA user_version = {version}"))
                    .execute(&mut *tx)
                    .await?;
            }
            Backend::Postgres => {
                sqlx::query("SELECT CAST(txid_current() AS TEXT)")
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await
    }

    /// Tells in-process consumers that new events were committed.
    pub fn notify_appended(&self) {
        bump(&self.signals.appended);
    }

    /// A receiver that changes whenever events are appended (by this process or, on PostgreSQL, any).
    pub fn subscribe_appended(&self) -> watch::Receiver<u64> {
        self.signals.appended.subscribe()
    }

    /// A receiver that changes whenever another server reports a projector's checkpoint moved.
    pub fn subscribe_checkpoints(&self) -> watch::Receiver<u64> {
        self.signals.checkpoints.subscribe()
    }

    /// Closes the pools and stops listening, waiting for connections to be returned (used at shutdown
    /// and in tests that reopen the same database).
    pub async fn close(&self) {
        if let Some(task) = self.listener.lock().expect("listener slot").take() {
            task.abort();
        }
        self.leases.release_all().await;
        self.pool.close().await;
        self.read_side.close().await;
        match &self.native {
            NativePool::Sqlite(pool) => pool.close().await,
            NativePool::Postgres(pool) => pool.close().await,
        }
    }
}

/// An Any-driver pool on the SQLite file at `url` with `max` connections, each opened with the
/// ledger's pragmas and `synchronous` at `synchronous` (`FULL` for appends, `NORMAL` for the read
/// side): the Any driver takes its options from the URL only, so they are set as each one opens.
async fn any_sqlite_pool(
    url: &str,
    max: u32,
    synchronous: &'static str,
) -> Result<sqlx::AnyPool, sqlx::Error> {
    AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(ACQUIRE_TIMEOUT_SECS))
        .after_release(|conn, _| Box::pin(async move { Ok(reusable(&*conn)) }))
        .after_connect(move |conn, _| {
            Box::pin(async move {
                let pragmas = format!(
                    "PRAGMA busy_timeout = 5000; PRAGMA synchronous = {synchronous}; \
                     PRAGMA foreign_keys = ON; PRAGMA journal_mode = WAL;"
                );
                conn.execute(pragmas.as_str()).await?;
                Ok(())
            })
        })
        .connect(url)
        .await
}

/// Whether a connection handed back to its pool may be handed out again: not while sqlx still counts
/// it inside a transaction. When a COMMIT fails (SQLite on a full disk: `SQLITE_FULL`), SQLite has
/// already rolled the transaction back, the ROLLBACK sqlx then sends fails, and sqlx's count stays
/// at one. Reused, that connection would open every later transaction as a SAVEPOINT and "commit"
/// it with a RELEASE that commits nothing, holding the write lock forever: the success answered
/// with nothing written. Such a connection is closed instead (closing rolls back whatever it
/// holds), and the pool opens a fresh one.
fn reusable<C: sqlx::Connection>(conn: &C) -> bool {
    let clean = !conn.is_in_transaction();
    if !clean {
        tracing::warn!(
            "closing a database connection left inside a transaction (a failed commit or rollback)"
        );
    }
    clean
}

fn bump(signal: &watch::Sender<u64>) {
    signal.send_modify(|count| *count = count.wrapping_add(1));
}

impl StoreError {
    /// Whether the database could not be reached (see [`is_unavailable`]).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Sql(err) if is_unavailable(err))
    }
}

/// Whether `err` says the storage could not take the request — the database could not be reached or
/// is going away (a restart, a failover, a pool with no connection to give), or it refused to write
/// (disk full, read-only file or server, I/O error) — rather than that the statement or the data is
/// wrong. Retrying later may succeed; for a write, the outcome of an interrupted commit is unknown,
/// which an idempotency key resolves.
pub fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            let code = code.as_ref();
            // PostgreSQL: class 08 (connection exception), 57P01 admin shutdown, 57P02 crash
            // shutdown, 57P03 cannot connect now (starting up, recovering), 53100 disk full,
            // 53200 out of memory, 53300 too many connections, 58030 I/O error, 25006 read-only
            // transaction (a standby, or a server set read-only).
            code.starts_with("08")
                || matches!(
                    code,
                    "57P01" | "57P02" | "57P03" | "53100" | "53200" | "53300" | "58030" | "25006"
                )
                || sqlite_storage_failure(code)
        }),
        _ => false,
    }
}

/// SQLite result codes (sqlx reports the extended code; its low byte is the primary one) that say
/// the storage, not the statement, failed: SQLITE_BUSY (5, the busy timeout ran out), SQLITE_LOCKED
/// (6), SQLITE_READONLY (8, a read-only file or directory), SQLITE_IOERR (10, every I/O error),
/// SQLITE_FULL (13, disk full), SQLITE_CANTOPEN (14, the file or its WAL cannot be opened).
/// SQLite's codes have at most four digits; a PostgreSQL SQLSTATE always has five characters.
fn sqlite_storage_failure(code: &str) -> bool {
    code.len() <= 4
        && code
            .parse::<u32>()
            .is_ok_and(|extended| matches!(extended & 0xff, 5 | 6 | 8 | 10 | 13 | 14))
}

/// The URL without its password (in the authority or a `password=` parameter), for error messages
/// and logs. A URL that does not parse is not shown at all.
pub fn redact(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return "<unparseable database URL>".into();
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("***"));
    }
    let has_secret = parsed
        .query_pairs()
        .any(|(key, _)| key.eq_ignore_ascii_case("password"));
    if has_secret {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(key, value)| {
                let value = if key.eq_ignore_ascii_case("password") {
                    "***".to_string()
                } else {
                    value.into_owned()
                };
                (key.into_owned(), value)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

async fn assert_sqlite_durability(pool: &SqlitePool) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await?;
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut *conn)
        .await?;
    if !journal.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Durability {
            setting: "PRAGMA journal_mode",
            expected: "wal".into(),
            found: journal,
        });
    }
    let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(&mut *conn)
        .await?;
    if synchronous != SYNCHRONOUS_FULL {
        return Err(StoreError::Durability {
            setting: "PRAGMA synchronous",
            expected: "2 (FULL)".into(),
            found: synchronous.to_string(),
        });
    }
    let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(&mut *conn)
        .await?;
    if foreign_keys != 1 {
        return Err(StoreError::Durability {
            setting: "PRAGMA foreign_keys",
            expected: "1".into(),
            found: foreign_keys.to_string(),
        });
    }
    Ok(())
}

/// `fsync` and `full_page_writes` must be on, and `synchronous_commit` anything but `off` (`local`,
/// `remote_write`, `on` and `remote_apply` all flush the commit record to this server's disk before
/// acknowledging it).
async fn assert_postgres_durability(pool: &PgPool) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await?;
    for (setting, allowed, expected) in [
        ("fsync", &["on"][..], "on"),
        ("full_page_writes", &["on"][..], "on"),
        (
            "synchronous_commit",
            &["on", "local", "remote_write", "remote_apply"][..],
            "on (or local, remote_write, remote_apply)",
        ),
    ] {
        let found: String = sqlx::query_scalar("SELECT current_setting($1)")
            .bind(setting)
            .fetch_one(&mut *conn)
            .await?;
        if !allowed.contains(&found.as_str()) {
            return Err(StoreError::Durability {
                setting,
                expected: expected.into(),
                found,
            });
        }
    }
    Ok(())
}

/// Turns other servers' NOTIFYs into this process's signals. Notifications sent while the connection
/// was down are lost, so every (re)connection also bumps both signals; the consumers' poll is the last
/// safety net. Ends when the last [`Database`] clone is gone (or at [`Database::close`]).
async fn listen(pool: PgPool, signals: Weak<Signals>) {
    const RECONNECT_MS: u64 = 500;
    const ALIVE_CHECK_SECS: u64 = 5;
    while signals.strong_count() > 0 {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(err) => {
                tracing::warn!(error = %err, "LISTEN connection failed; retrying");
                tokio::time::sleep(Duration::from_millis(RECONNECT_MS)).await;
                continue;
            }
        };
        if let Err(err) = listener
            .listen_all([EVENTS_CHANNEL, CHECKPOINTS_CHANNEL])
            .await
        {
            tracing::warn!(error = %err, "LISTEN failed; retrying");
            tokio::time::sleep(Duration::from_millis(RECONNECT_MS)).await;
            continue;
        }
        let mut missed = true;
        loop {
            let Some(shared) = signals.upgrade() else {
                return;
            };
            if std::mem::take(&mut missed) {
                bump(&shared.appended);
                bump(&shared.checkpoints);
            }
            drop(shared);
            let received =
                tokio::time::timeout(Duration::from_secs(ALIVE_CHECK_SECS), listener.try_recv())
                    .await;
            match received {
                Err(_elapsed) => {}
                Ok(Ok(Some(notification))) => {
                    let Some(shared) = signals.upgrade() else {
                        return;
                    };
                    if notification.channel() == CHECKPOINTS_CHANNEL {
                        bump(&shared.checkpoints);
                    } else {
                        bump(&shared.appended);
                    }
                }
                Ok(Ok(None)) => {
                    // The connection dropped; the next receive reconnects.
                    tracing::warn!("LISTEN connection lost; reconnecting");
                    missed = true;
                }
                Ok(Err(err)) => {
                    tracing::warn!(error = %err, "LISTEN connection failed; reconnecting");
                    tokio::time::sleep(Duration::from_millis(RECONNECT_MS)).await;
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod ddl_tests {
    use super::*;

    #[test]
    fn sqlite_ddl_becomes_postgres_ddl() {
        let sqlite = "CREATE TABLE IF NOT EXISTS t (id text PRIMARY KEY, n INTEGER NOT NULL DEFAULT 0, \
                      note text DEFAULT 'INTEGER STRICT', r REAL, b blob) STRICT";
        assert_eq!(
            Backend::Postgres.ddl(sqlite),
            "CREATE TABLE IF NOT EXISTS t (id text PRIMARY KEY, n BIGINT NOT NULL DEFAULT 0, \
                      note text DEFAULT 'INTEGER STRICT', r DOUBLE PRECISION, b BYTEA)"
        );
        assert_eq!(Backend::Sqlite.ddl(sqlite), sqlite);
    }

    #[test]
    fn urls_select_the_backend_and_passwords_never_show() {
        assert_eq!(Backend::from_url("sqlite://a.db").unwrap(), Backend::Sqlite);
        assert_eq!(
            Backend::from_url("postgres://u:p@h/db").unwrap(),
            Backend::Postgres
        );
        let err = Backend::from_url("mysql://u:secret@h/db").unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u:p%40ss@h/db"), "postgres://u:***@h/db");
        assert_eq!(
            redact("postgres://u@h/db?sslmode=require&password=secret"),
            "postgres://u@h/db?sslmode=require&password=***"
        );
        assert_eq!(redact("sqlite://autosalon.db"), "sqlite://autosalon.db");
        assert!(!redact("postgres://u:p@ss@h/db").contains("p@"));
    }
}
