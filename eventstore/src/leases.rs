//! Which server runs which log consumer. On PostgreSQL several servers share one database, and each
//! projector must run in exactly one of them at a time: a server runs a consumer while it holds a
//! session-level advisory lock named after it, on one dedicated connection. When that server dies,
//! PostgreSQL ends its session and releases the locks, and the next server that asks takes over.
//!
//! The lock decides who does the work; it is not what keeps a read model correct. Every batch reads
//! its checkpoint `FOR UPDATE` and moves it with a guarded UPDATE in the same transaction as its rows,
//! so even two servers that briefly both believe they hold a lease (a connection dropped an instant
//! ago) cannot apply an event twice: the second waits for the first's batch and continues after it.
//!
//! On SQLite there is one machine and one writer: every consumer always runs locally.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tokio::sync::Mutex;

use crate::database::LOCK_NAMESPACE;

/// First key of the lease locks: apart from the store's own locks (append, schema), so no consumer
/// name can ever hash onto one of them.
const LEASE_NAMESPACE: i32 = LOCK_NAMESPACE + 1;

/// How stale the last proof of a live lease connection may be before it is checked again.
const LIVENESS_CHECK: Duration = Duration::from_millis(500);

/// The consumers this server holds, and the connection that holds them.
#[derive(Debug)]
pub struct Leases {
    inner: Option<Mutex<PgLeases>>,
}

struct PgLeases {
    options: PgConnectOptions,
    conn: Option<PgConnection>,
    held: BTreeSet<String>,
    checked_at: Instant,
}

impl Leases {
    /// Every consumer runs here (SQLite).
    pub(crate) fn local() -> Self {
        Self { inner: None }
    }

    /// Consumers run where their advisory lock is held (PostgreSQL).
    pub(crate) fn postgres(options: PgConnectOptions) -> Self {
        Self {
            inner: Some(Mutex::new(PgLeases {
                // Named after this process, so an operator sees in pg_stat_activity which server
                // holds which lease. A process that dies closes its socket and PostgreSQL releases
                // its leases at once; a host that vanishes (power, network) sends nothing, so the
                // server probes this session and drops it within about 15 s, not the OS's 2 hours.
                options: options
                    .application_name(&format!("autosalon-leases-{}", std::process::id()))
                    .options([
                        ("tcp_keepalives_idle", "5"),
                        ("tcp_keepalives_interval", "2"),
                        ("tcp_keepalives_count", "3"),
                        ("tcp_user_timeout", "15000"),
                    ]),
                conn: None,
                held: BTreeSet::new(),
                checked_at: Instant::now(),
            })),
        }
    }

    /// Whether this server may run `consumer` now: it already holds the lease on a live connection, or
    /// it just took the lease over. `false` means another server runs it (or the database is out of
    /// reach); ask again later.
    pub async fn hold(&self, consumer: &str) -> bool {
        let Some(inner) = &self.inner else {
            return true;
        };
        let mut leases = inner.lock().await;
        match leases.hold(consumer).await {
            Ok(held) => held,
            Err(err) => {
                tracing::warn!(consumer, error = %err, "lease connection failed; leases dropped");
                leases.drop_connection();
                false
            }
        }
    }

    /// Gives every lease up (shutdown), so another server takes over at once.
    pub(crate) async fn release_all(&self) {
        if let Some(inner) = &self.inner {
            let mut leases = inner.lock().await;
            if let Some(conn) = leases.conn.take()
                && let Err(err) = conn.close().await
            {
                tracing::debug!(error = %err, "closing the lease connection");
            }
            leases.held.clear();
        }
    }
}

/// Never prints the connect options: they hold the password.
impl std::fmt::Debug for PgLeases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgLeases")
            .field("connected", &self.conn.is_some())
            .field("held", &self.held)
            .finish_non_exhaustive()
    }
}

impl PgLeases {
    async fn hold(&mut self, consumer: &str) -> Result<bool, sqlx::Error> {
        if self.conn.is_none() {
            self.held.clear();
            self.conn = Some(PgConnection::connect_with(&self.options).await?);
            self.checked_at = Instant::now();
        }
        let conn = self.conn.as_mut().expect("connected above");
        if self.held.contains(consumer) {
            if self.checked_at.elapsed() >= LIVENESS_CHECK {
                sqlx::query("SELECT 1").execute(&mut *conn).await?;
                self.checked_at = Instant::now();
            }
            return Ok(true);
        }
        let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext($2))")
            .bind(LEASE_NAMESPACE)
            .bind(consumer)
            .fetch_one(&mut *conn)
            .await?;
        self.checked_at = Instant::now();
        if taken {
            tracing::info!(consumer, "this server now runs the consumer");
            self.held.insert(consumer.to_string());
        }
        Ok(taken)
    }

    fn drop_connection(&mut self) {
        self.conn = None;
        self.held.clear();
    }
}
