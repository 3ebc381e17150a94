//! The hash chain over the global log: tamper evidence anyone can check with standard tools.
//!
//! Every position `p` of the log has a row in `event_chain` holding
//! `hash(p) = SHA-256(hash(p - 1) || canonical(p))`, with `hash(0)` 32 zero bytes, where `canonical(p)`
//! is the RFC 8785 (JSON Canonicalization Scheme) serialisation of the object
//! `{"aggregate_id", "aggregate_type", "event_type", "event_version", "metadata", "payload",
//! "position", "recorded_at", "sequence"}` of the stored event (never upcast), `recorded_at` written
//! as RFC 3339 UTC with exactly six fractional digits and a `Z`. docs/audit.md gives the form byte for
//! byte. Hashes are stored and published as lowercase hex.
//!
//! The appender extends the chain inside each group's transaction, after the group's events are in
//! (so on PostgreSQL it holds the append lock): one read of the chain's head per group, then one
//! read of the events after it and one insert of their chain rows. Whatever is in the log and not yet
//! chained (a log older than the chain, an event an import wrote) is chained by the same step, so the
//! chain never has a hole that a later append would paper over. An append rolled back to its
//! savepoint is gone before the chain is extended, so it leaves no mark in it.

use std::sync::Arc;

use chrono::SecondsFormat;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Row};

use crate::log::{self, MAX_BATCH_EVENTS, RecordedEvent};
use crate::{Backend, Database, DbPool, StoreError, Upcasters};

/// The hash before position 1.
pub const GENESIS: [u8; 32] = [0; 32];

/// Second key of the append lock (PostgreSQL migration `0001`, `events_serialise_append`).
const APPEND_LOCK: i32 = 1;

/// Events chained per transaction when a whole log is chained at once (after the migration).
const BACKFILL_BATCH: u32 = 1_000;

/// The newest chained position and its hash (position 0 and [`GENESIS`] for an empty chain).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    pub position: i64,
    pub hash: [u8; 32],
}

impl Head {
    pub const EMPTY: Head = Head {
        position: 0,
        hash: GENESIS,
    };

    pub fn hash_hex(&self) -> String {
        to_hex(&self.hash)
    }
}

/// The canonical bytes of one stored event (RFC 8785 JSON; see the module docs).
pub fn canonical_bytes(event: &RecordedEvent) -> Vec<u8> {
    let object = json!({
        "aggregate_id": event.aggregate_id,
        "aggregate_type": event.aggregate_type,
        "event_type": event.event_type,
        "event_version": event.event_version,
        "metadata": event.metadata,
        "payload": event.payload,
        "position": event.position,
        "recorded_at": event.recorded_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        "sequence": event.sequence,
    });
    canonical_json(&object)
}

/// RFC 8785 serialisation of a JSON value. Serialising a `serde_json::Value` cannot fail (its keys
/// are strings and its numbers finite), so a failure would be a bug in the serialiser.
fn canonical_json(value: &Value) -> Vec<u8> {
    serde_jcs::to_vec(value).expect("a serde_json::Value always has a canonical form")
}

/// `SHA-256(previous || canonical_bytes(event))`.
pub fn link(previous: &[u8; 32], event: &RecordedEvent) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(canonical_bytes(event));
    hasher.finalize().into()
}

/// Lowercase hex.
pub fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// Parses 64 hex digits (either case).
pub fn from_hex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// The stored form: events as they were written, never upcast.
fn raw() -> Upcasters {
    Arc::new(Vec::new())
}

/// The chain's newest row (read inside the caller's transaction).
pub async fn head(conn: &mut AnyConnection) -> Result<Head, StoreError> {
    let row = sqlx::query(
        "SELECT global_position, hash FROM event_chain ORDER BY global_position DESC LIMIT 1",
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(Head::EMPTY);
    };
    let position: i64 = row.try_get("global_position")?;
    let hash: String = row.try_get("hash")?;
    let hash = from_hex(&hash).ok_or_else(|| StoreError::Decode {
        position,
        reason: format!("the chain's hash {hash:?} is not 64 hex digits"),
    })?;
    Ok(Head { position, hash })
}

/// Chains every event after the chain's head, at most `limit` of them (`None`: all), inside the
/// caller's write transaction; returns the new head. On PostgreSQL the caller holds the append lock
/// (an insert into `events` took it, or [`lock_appends`]).
pub async fn extend(
    conn: &mut AnyConnection,
    backend: Backend,
    limit: Option<u32>,
) -> Result<Head, StoreError> {
    let mut head = head(conn).await?;
    let raw = raw();
    let mut left = limit;
    loop {
        let batch = left.unwrap_or(MAX_BATCH_EVENTS).min(MAX_BATCH_EVENTS);
        if batch == 0 {
            return Ok(head);
        }
        let events = log::read_after(&mut *conn, backend, &raw, head.position, batch).await?;
        if events.is_empty() {
            return Ok(head);
        }
        let mut rows = Vec::with_capacity(events.len());
        for event in &events {
            head = Head {
                position: event.position,
                hash: link(&head.hash, event),
            };
            rows.push((head.position, to_hex(&head.hash)));
        }
        insert_rows(conn, &rows).await?;
        if let Some(left) = left.as_mut() {
            *left -= events.len() as u32;
        }
        if events.len() < batch as usize {
            return Ok(head);
        }
    }
}

async fn insert_rows(conn: &mut AnyConnection, rows: &[(i64, String)]) -> Result<(), StoreError> {
    // At most MAX_BATCH_EVENTS rows: 2,000 parameters, under both backends' limits.
    let mut sql = String::from("INSERT INTO event_chain (global_position, hash) VALUES ");
    for i in 0..rows.len() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("(${}, ${})", 2 * i + 1, 2 * i + 2));
    }
    let mut query = sqlx::query(&sql);
    for (position, hash) in rows {
        query = query.bind(*position).bind(hash.as_str());
    }
    query.execute(&mut *conn).await?;
    Ok(())
}

/// Takes PostgreSQL's append lock (ARCHITECTURE.md, "The global log") in the caller's transaction,
/// so no append chains the same positions meanwhile. SQLite's write lock does that there.
pub async fn lock_appends(conn: &mut AnyConnection, backend: Backend) -> Result<(), StoreError> {
    if backend == Backend::Postgres {
        sqlx::query(&format!(
            "SELECT CAST(pg_advisory_xact_lock({}, {APPEND_LOCK}) AS TEXT)",
            crate::database::LOCK_NAMESPACE
        ))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Chains whatever the log holds beyond the chain (a log written before the chain existed), in
/// transactions of [`BACKFILL_BATCH`] events. Returns the head. Run after the migrations.
pub async fn backfill(db: &Database) -> Result<Head, StoreError> {
    loop {
        let mut tx = db.begin_write().await?;
        lock_appends(&mut tx, db.backend()).await?;
        let before = head(&mut tx).await?;
        let after = extend(&mut tx, db.backend(), Some(BACKFILL_BATCH)).await?;
        tx.commit().await?;
        if after.position - before.position < i64::from(BACKFILL_BATCH) {
            return Ok(after);
        }
    }
}

/// Why the chain does not verify, at the first position that does not match.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Break {
    /// The event's recomputed hash is not the stored one: the event (or one before it whose hash fed
    /// this one) was changed after it was written.
    #[error("position {position}: hash mismatch: stored {stored}, computed {computed}")]
    HashMismatch {
        position: i64,
        stored: String,
        computed: String,
    },
    /// The log skips from one position to a later one: an event was removed (or renumbered).
    #[error("position {expected}: gap: the log goes on at position {found}")]
    Gap { expected: i64, found: i64 },
    /// An event has no chain row.
    #[error("position {position}: missing chain row")]
    MissingChainRow { position: i64 },
    /// A chain row beyond the log's last event: the event was removed.
    #[error("position {position}: chain row without an event (the log ends at {head})")]
    ChainBeyondLog { position: i64, head: i64 },
    /// The stored event cannot be read at all (its JSON or its time was damaged).
    #[error("position {position}: unreadable event: {reason}")]
    Unreadable { position: i64, reason: String },
}

impl Break {
    /// The first position that does not match.
    pub fn position(&self) -> i64 {
        match self {
            Break::HashMismatch { position, .. }
            | Break::MissingChainRow { position }
            | Break::ChainBeyondLog { position, .. }
            | Break::Unreadable { position, .. } => *position,
            Break::Gap { expected, .. } => *expected,
        }
    }
}

/// What a whole chain that verifies comes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verified {
    pub events: i64,
    pub head: Head,
}

/// Walks one position at a time, comparing each with the hash stored or published for it. Shared by
/// the database walk and the walk over an `export-events` file.
#[derive(Debug, Default)]
pub struct Walk {
    head: Option<Head>,
    events: i64,
}

impl Walk {
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks the next event against `stored` (its chain row, `None` when it has none).
    pub fn step(&mut self, event: &RecordedEvent, stored: Option<&str>) -> Result<(), Break> {
        let head = self.head.unwrap_or(Head::EMPTY);
        let expected = head.position + 1;
        if event.position != expected {
            return Err(Break::Gap {
                expected,
                found: event.position,
            });
        }
        let Some(stored) = stored else {
            return Err(Break::MissingChainRow {
                position: event.position,
            });
        };
        let computed = link(&head.hash, event);
        if from_hex(stored) != Some(computed) {
            return Err(Break::HashMismatch {
                position: event.position,
                stored: stored.to_string(),
                computed: to_hex(&computed),
            });
        }
        self.head = Some(Head {
            position: event.position,
            hash: computed,
        });
        self.events += 1;
        Ok(())
    }

    pub fn finish(&self) -> Verified {
        Verified {
            events: self.events,
            head: self.head.unwrap_or(Head::EMPTY),
        }
    }
}

/// Why verification stopped: the chain breaks, or the database could not be read.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Break(#[from] Break),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for VerifyError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Decode { position, reason } => {
                VerifyError::Break(Break::Unreadable { position, reason })
            }
            other => VerifyError::Store(other),
        }
    }
}

impl From<sqlx::Error> for VerifyError {
    fn from(err: sqlx::Error) -> Self {
        VerifyError::Store(StoreError::from(err))
    }
}

/// Walks the stored chain from position 1 up to the log's head as it is when the walk starts,
/// reading [`MAX_BATCH_EVENTS`] events at a time (bounded memory, however long the log).
pub async fn verify(pool: &DbPool) -> Result<Verified, VerifyError> {
    let mut conn = pool.acquire().await?;
    verify_on(&mut conn, Backend::of(pool)).await
}

/// [`verify`] on one connection (inside a transaction of the caller's, if it likes).
pub async fn verify_on(
    conn: &mut AnyConnection,
    backend: Backend,
) -> Result<Verified, VerifyError> {
    let raw = raw();
    let log_head = log::head(&mut *conn).await?;
    let sql = format!(
        "{}
  LEFT JOIN event_chain c ON c.global_position = l.global_position
  WHERE l.global_position > $1 AND l.global_position <= $2
  ORDER BY l.global_position
  LIMIT $3",
        log::select_recorded(backend).replacen("SELECT ", "SELECT c.hash AS chain_hash, ", 1)
    );
    let mut walk = Walk::new();
    let mut after = 0;
    loop {
        let rows = sqlx::query(&sql)
            .bind(after)
            .bind(log_head)
            .bind(i64::from(MAX_BATCH_EVENTS))
            .fetch_all(&mut *conn)
            .await?;
        let Some(last) = rows.last() else { break };
        after = last.try_get("global_position")?;
        for row in rows {
            let stored: Option<String> = row.try_get("chain_hash")?;
            let event = log::decode_row(&raw, row)?;
            walk.step(&event, stored.as_deref())?;
        }
    }
    let verified = walk.finish();
    let beyond: Option<i64> = sqlx::query_scalar(
        "SELECT min(global_position) FROM event_chain WHERE global_position > $1",
    )
    .bind(verified.head.position)
    .fetch_one(&mut *conn)
    .await?;
    if let Some(position) = beyond {
        // A chain row past the verified head whose event is missing, or one whose event appeared
        // after the walk started (an append meanwhile): only the first is a break.
        let chained_event: i64 =
            sqlx::query_scalar("SELECT count(*) FROM event_log WHERE global_position = $1")
                .bind(position)
                .fetch_one(&mut *conn)
                .await?;
        if chained_event == 0 {
            return Err(Break::ChainBeyondLog {
                position,
                head: verified.head.position,
            }
            .into());
        }
    }
    Ok(verified)
}
