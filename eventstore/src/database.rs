//! Opening the database: durability pragmas set on every connection and asserted once at start-up,
//! embedded migrations, and the in-process "events were appended" signal.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::watch;

/// The SQL backend. Read-model SQL above this crate is written against this alias (with `$N`
/// placeholders and portable types), never against a driver by name.
pub type Db = sqlx::Sqlite;
/// A pool of connections to [`Db`].
pub type DbPool = sqlx::Pool<Db>;

/// How long a connection waits for SQLite's single write lock before giving up.
const BUSY_TIMEOUT_MS: u64 = 5_000;
/// SQLite serves readers in parallel (WAL) and one writer; more connections only queue.
const MAX_CONNECTIONS: u32 = 8;
/// `PRAGMA synchronous` reports FULL as 2.
const SYNCHRONOUS_FULL: i64 = 2;

/// Failures of the store itself (never of a domain rule).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL could not be parsed; the operator fixes the configuration.
    #[error("invalid database URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// A durability setting is not what an acknowledged command needs to survive power loss.
    #[error("durability check failed: PRAGMA {pragma} is {found}, expected {expected}")]
    Durability {
        pragma: &'static str,
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

/// The event store's database: a connection pool plus the append signal that wakes projectors.
#[derive(Clone, Debug)]
pub struct Database {
    pool: DbPool,
    /// Bumped after every successful append in this process, so consumers wake at once instead of
    /// waiting for their safety-net poll.
    appended: watch::Sender<u64>,
}

impl Database {
    /// Opens (creating if missing) the database at `url`, e.g. `sqlite://autosalon.db`, with WAL,
    /// `synchronous=FULL`, a busy timeout and foreign keys on every connection, then asserts the
    /// durability pragmas actually took effect.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|err| StoreError::InvalidUrl {
                url: url.to_string(),
                reason: err.to_string(),
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options)
            .await?;
        let database = Self {
            pool,
            appended: watch::channel(0).0,
        };
        database.assert_durability().await?;
        Ok(database)
    }

    /// Refuses to run when the settings that make an acknowledged command durable are off.
    pub async fn assert_durability(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await?;
        if !journal.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Durability {
                pragma: "journal_mode",
                expected: "wal".into(),
                found: journal,
            });
        }
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut *conn)
            .await?;
        if synchronous != SYNCHRONOUS_FULL {
            return Err(StoreError::Durability {
                pragma: "synchronous",
                expected: "2 (FULL)".into(),
                found: synchronous.to_string(),
            });
        }
        let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&mut *conn)
            .await?;
        if foreign_keys != 1 {
            return Err(StoreError::Durability {
                pragma: "foreign_keys",
                expected: "1".into(),
                found: foreign_keys.to_string(),
            });
        }
        Ok(())
    }

    /// Applies the embedded event-store migrations (idempotent).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("./migrations").run(&self.pool).await?;
        Ok(())
    }

    /// The connection pool, for read models and the log readers.
    pub fn pool(&self) -> &DbPool {
        &self.pool
    }

    /// Tells in-process consumers that new events were committed.
    pub fn notify_appended(&self) {
        self.appended
            .send_modify(|count| *count = count.wrapping_add(1));
    }

    /// A receiver that changes whenever [`Database::notify_appended`] is called.
    pub fn subscribe_appended(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }

    /// Closes the pool, waiting for connections to be returned (used at shutdown and in tests that
    /// reopen the same file).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
