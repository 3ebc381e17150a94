//! `autosalon export-events` and `autosalon import-events`: the whole event log as JSON Lines, to move a
//! ledger from one database to another (the embedded file to PostgreSQL, or back).
//!
//! The file holds the events exactly as stored (never upcast): a first line
//! `{"format": "autosalon-events", "version": 2, "events": N}`, then one object per event in log
//! order: `position`, `aggregate_type`, `aggregate_id`, `sequence`, `event_type`, `event_version`,
//! `payload`, `metadata`, `recorded_at` (RFC 3339 UTC) and `hash`, the event's link in the hash chain
//! (lowercase hex; docs/audit.md). Version 1 files (before the chain) have no `hash` and are still
//! imported; the chain is then computed afresh.
//!
//! An import goes into a database whose log is empty, in one transaction: either every event lands,
//! at the very position it had, with its original `recorded_at`, or nothing does. A version 2 file
//! whose chain breaks is refused, naming the first position that does not match, and the chain the
//! target computes for what it stored must end at the file's last hash. Snapshots are not
//! copied (they are a cache): once the log is in, every stream longer than the snapshot interval gets
//! one at its last sequence ([`crate::snapshots`]). Read models are rebuilt from the log by the
//! projectors when the server starts.

use std::io::{BufRead, Write};
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::{DateTime, SecondsFormat, Utc};
use eventstore::{Backend, Database, DbPool};
use serde::{Deserialize, Serialize};
use serde_json::Value;

const FORMAT: &str = "autosalon-events";
const FORMAT_VERSION: u32 = 2;
/// The format before the hash chain: accepted by `import-events`, never written.
const FORMAT_VERSION_UNCHAINED: u32 = 1;
/// Events read per query while exporting.
const EXPORT_BATCH: u32 = 1_000;

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
    events: i64,
}

#[derive(Serialize, Deserialize)]
struct Line {
    position: i64,
    aggregate_type: String,
    aggregate_id: String,
    sequence: i64,
    event_type: String,
    event_version: String,
    payload: Value,
    metadata: Value,
    recorded_at: DateTime<Utc>,
    /// The event's chain hash (lowercase hex); absent in version 1 files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hash: Option<String>,
}

impl Line {
    fn event(&self) -> eventstore::RecordedEvent {
        eventstore::RecordedEvent {
            position: self.position,
            aggregate_type: self.aggregate_type.clone(),
            aggregate_id: self.aggregate_id.clone(),
            sequence: self.sequence,
            event_type: self.event_type.clone(),
            event_version: self.event_version.clone(),
            payload: self.payload.clone(),
            metadata: self.metadata.clone(),
            recorded_at: self.recorded_at,
        }
    }
}

/// Writes every event of the log to `out`, read in one snapshot. Returns how many.
pub async fn export_events(pool: &DbPool, out: &mut dyn Write) -> anyhow::Result<i64> {
    let backend = Backend::of(pool);
    let raw: eventstore::Upcasters = Arc::new(Vec::new());
    let mut tx = pool
        .begin_with(backend.begin_snapshot())
        .await
        .context("opening a read transaction")?;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM event_log")
        .fetch_one(&mut *tx)
        .await?;
    let header = Header {
        format: FORMAT.into(),
        version: FORMAT_VERSION,
        events: count,
    };
    writeln!(out, "{}", serde_json::to_string(&header)?)?;
    let mut after = 0;
    let mut written = 0;
    loop {
        let batch =
            eventstore::log::read_after(&mut *tx, backend, &raw, after, EXPORT_BATCH).await?;
        let Some(last) = batch.last() else { break };
        let hashes: std::collections::HashMap<i64, String> = sqlx::query_as(
            "SELECT global_position, hash FROM event_chain
              WHERE global_position > $1 AND global_position <= $2",
        )
        .bind(after)
        .bind(last.position)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
        after = last.position;
        for event in batch {
            let hash = hashes.get(&event.position).cloned().with_context(|| {
                format!(
                    "event {} has no chain row: run `autosalon verify`",
                    event.position
                )
            })?;
            let line = Line {
                position: event.position,
                aggregate_type: event.aggregate_type,
                aggregate_id: event.aggregate_id,
                sequence: event.sequence,
                event_type: event.event_type,
                event_version: event.event_version,
                payload: event.payload,
                metadata: event.metadata,
                recorded_at: event.recorded_at,
                hash: Some(hash),
            };
            writeln!(out, "{}", serde_json::to_string(&line)?)?;
            written += 1;
        }
    }
    tx.rollback().await?;
    out.flush()?;
    if written != count {
        bail!("the log changed while it was read: counted {count} events, wrote {written}");
    }
    Ok(written)
}

/// Appends every event of `input` to the empty log of `db`, in one transaction, each at its original
/// position. Returns how many. Refuses a non-empty log, a malformed file, or a file whose positions
/// are not 1, 2, 3, … in order.
pub async fn import_events(db: &Database, input: &mut dyn BufRead) -> anyhow::Result<i64> {
    let backend = db.backend();
    let (header, events) = read_file(input)?;
    if header.format != FORMAT
        || ![FORMAT_VERSION, FORMAT_VERSION_UNCHAINED].contains(&header.version)
    {
        bail!(
            "unsupported file: format {:?} version {}, expected {FORMAT:?} version {FORMAT_VERSION}",
            header.format,
            header.version
        );
    }
    let mut tx = db.begin_exclusive().await?;
    let existing: i64 = sqlx::query_scalar("SELECT count(*) FROM event_log")
        .fetch_one(&mut *tx)
        .await?;
    if existing > 0 {
        bail!(
            "the target database already holds {existing} events; import only into an empty database"
        );
    }
    let insert = match backend {
        Backend::Sqlite => {
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                                 payload, metadata, recorded_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        }
        Backend::Postgres => {
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                                 payload, metadata, recorded_at)
             VALUES ($1, $2, $3, $4, $5, CAST($6 AS json), CAST($7 AS json), CAST($8 AS timestamptz))"
        }
    };
    let chained = header.version == FORMAT_VERSION;
    let mut walk = eventstore::chain::Walk::new();
    let mut imported = 0;
    for event in events {
        let (number, event) = event?;
        if chained {
            walk.step(&event.event(), event.hash.as_deref())
                .with_context(|| {
                    format!("line {number}: the file's hash chain breaks; nothing was imported")
                })?;
        }
        let expected = imported + 1;
        if event.position != expected {
            bail!(
                "line {number}: event at position {}, expected {expected}: the file is not a whole log in order",
                event.position
            );
        }
        sqlx::query(insert)
            .bind(&event.aggregate_type)
            .bind(&event.aggregate_id)
            .bind(event.sequence)
            .bind(&event.event_type)
            .bind(&event.event_version)
            .bind(serde_json::to_string(&event.payload)?)
            .bind(serde_json::to_string(&event.metadata)?)
            .bind(stored_time(backend, event.recorded_at))
            .execute(&mut *tx)
            .await
            .with_context(|| format!("line {number}: appending event {}", event.position))?;
        let position: i64 = sqlx::query_scalar(
            "SELECT global_position FROM event_log
              WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3",
        )
        .bind(&event.aggregate_type)
        .bind(&event.aggregate_id)
        .bind(event.sequence)
        .fetch_one(&mut *tx)
        .await?;
        if position != event.position {
            bail!(
                "line {number}: event {} landed at position {position}; nothing was imported",
                event.position
            );
        }
        imported += 1;
    }
    if imported != header.events {
        bail!(
            "the header announces {} events but the file holds {imported}; nothing was imported",
            header.events
        );
    }
    // The target chains what it stored; that must be the chain the file carries (it covers the
    // stored bytes, so a time or a number the target kept differently would show here).
    eventstore::chain::lock_appends(&mut tx, backend).await?;
    let head = eventstore::chain::extend(&mut tx, backend, None)
        .await
        .context("chaining the imported events")?;
    if chained && head != walk.finish().head {
        bail!(
            "the imported events chain to {} at position {}, the file to {} at {}; nothing was imported",
            head.hash_hex(),
            head.position,
            walk.finish().head.hash_hex(),
            walk.finish().head.position
        );
    }
    tx.commit().await?;
    db.notify_appended();
    // The log is complete: long streams get their snapshot now, not on their first slow load.
    crate::snapshots::refresh_long_streams(db)
        .await
        .context("writing snapshots for long streams")?;
    Ok(imported)
}

/// `recorded_at` as the target stores it: SQLite's own text form has milliseconds, PostgreSQL keeps
/// microseconds. A time with sub-millisecond digits (from PostgreSQL) keeps them on SQLite too, so
/// the stored time, and the chain over it, are the ones the file carries.
fn stored_time(backend: Backend, at: DateTime<Utc>) -> String {
    let precision = match backend {
        Backend::Sqlite if at.timestamp_subsec_nanos().is_multiple_of(1_000_000) => {
            SecondsFormat::Millis
        }
        _ => SecondsFormat::Micros,
    };
    at.to_rfc3339_opts(precision, true)
}

/// The file's header line, unchecked, and its event lines in order as `(line number, event)`, blank
/// lines skipped, one line in memory at a time.
fn read_file(
    input: &mut dyn BufRead,
) -> anyhow::Result<(
    Header,
    impl Iterator<Item = anyhow::Result<(usize, Line)>> + '_,
)> {
    let mut lines = input.lines();
    let header = lines
        .next()
        .context("the file is empty: expected an autosalon-events header line")??;
    let header: Header = serde_json::from_str(&header)
        .context("the first line is not an autosalon-events header")?;
    let events = lines.enumerate().filter_map(|(index, line)| {
        let number = index + 2;
        let line = match line.with_context(|| format!("reading line {number}")) {
            Ok(line) => line,
            Err(err) => return Some(Err(err)),
        };
        if line.trim().is_empty() {
            return None;
        }
        Some(
            serde_json::from_str(&line)
                .map(|event| (number, event))
                .with_context(|| format!("line {number} is not an event")),
        )
    });
    Ok((header, events))
}

/// What `autosalon verify --from FILE` found: the file's chain walked line by line (one line in
/// memory at a time).
pub fn verify_file(input: &mut dyn BufRead) -> anyhow::Result<eventstore::chain::Verified> {
    let (header, events) = read_file(input)?;
    if header.format != FORMAT || header.version != FORMAT_VERSION {
        bail!(
            "unsupported file: format {:?} version {}, expected {FORMAT:?} version {FORMAT_VERSION} (version 1 files carry no chain)",
            header.format,
            header.version
        );
    }
    let mut walk = eventstore::chain::Walk::new();
    for event in events {
        let (number, event) = event?;
        walk.step(&event.event(), event.hash.as_deref())
            .with_context(|| format!("line {number}"))?;
    }
    let verified = walk.finish();
    if verified.events != header.events {
        bail!(
            "the header announces {} events but the file's chain holds {}",
            header.events,
            verified.events
        );
    }
    Ok(verified)
}
