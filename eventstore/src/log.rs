//! Reading the global log: every event of every aggregate, in commit order, each with its stable
//! `global_position`, upcast to its current schema.

use chrono::{DateTime, Utc};
use cqrs_es::persist::{EventUpcaster, SerializedEvent};
use serde::de::DeserializeOwned;
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Backend, Db, DbPool, StoreError, Upcasters};

/// The most events one read returns: bounds memory and transaction length for every consumer.
pub const MAX_BATCH_EVENTS: u32 = 1_000;

/// One stored event as the global log presents it.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedEvent {
    /// Position in the global, commit-ordered log (1-based, gap-free on both backends, never reused).
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// Position within its aggregate's stream (1-based).
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Value,
    /// The [`crate::CommandMetadata`] of the command that produced it, as a JSON object.
    pub metadata: Value,
    /// Server-assigned time of the append (UTC).
    pub recorded_at: DateTime<Utc>,
}

impl RecordedEvent {
    /// Decodes the payload as the aggregate's event enum.
    pub fn decode<E: DeserializeOwned>(&self) -> Result<E, StoreError> {
        serde_json::from_value(self.payload.clone()).map_err(|err| StoreError::Decode {
            position: self.position,
            reason: err.to_string(),
        })
    }

    /// A metadata value by key (see [`crate::metadata::keys`]).
    pub fn metadata_value(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).and_then(Value::as_str)
    }
}

const SELECT_RECORDED_SQLITE: &str = "
SELECT l.global_position, e.aggregate_type, e.aggregate_id, e.sequence, e.event_type,
       e.event_version, e.payload, e.metadata, e.recorded_at
  FROM event_log l
  JOIN events e ON e.aggregate_type = l.aggregate_type
               AND e.aggregate_id = l.aggregate_id
               AND e.sequence = l.sequence";

/// PostgreSQL keeps payloads as `json` and `recorded_at` as `timestamptz`; both are read as text in
/// the same shapes SQLite stores them (the JSON text, RFC 3339 UTC with a `Z`).
const SELECT_RECORDED_POSTGRES: &str = r#"
SELECT l.global_position, e.aggregate_type, e.aggregate_id, e.sequence, e.event_type,
       e.event_version, CAST(e.payload AS TEXT) AS payload, CAST(e.metadata AS TEXT) AS metadata,
       to_char(e.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS recorded_at
  FROM event_log l
  JOIN events e ON e.aggregate_type = l.aggregate_type
               AND e.aggregate_id = l.aggregate_id
               AND e.sequence = l.sequence"#;

pub(crate) fn select_recorded(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => SELECT_RECORDED_SQLITE,
        Backend::Postgres => SELECT_RECORDED_POSTGRES,
    }
}

/// Reads the global log. Cheap to clone.
#[derive(Clone)]
pub struct EventLog {
    pool: DbPool,
    backend: Backend,
    upcasters: Upcasters,
}

impl EventLog {
    pub fn new(pool: DbPool, upcasters: Upcasters) -> Self {
        let backend = Backend::of(&pool);
        Self {
            pool,
            backend,
            upcasters,
        }
    }

    /// Up to `limit` (capped at [`MAX_BATCH_EVENTS`]) events after `after`, in commit order.
    pub async fn read_after(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        read_after(&self.pool, self.backend, &self.upcasters, after, limit).await
    }

    /// The position of the newest event, 0 for an empty log.
    pub async fn head(&self) -> Result<i64, StoreError> {
        head(&self.pool).await
    }

    /// How many events the log holds.
    pub async fn count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM event_log")
            .fetch_one(&self.pool)
            .await?)
    }

    /// One aggregate's stream: up to `limit` events with sequence > `after_sequence`, in order.
    pub async fn stream(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after_sequence: i64,
        limit: u32,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql = format!(
            "{}
  WHERE l.aggregate_type = $1 AND l.aggregate_id = $2 AND l.sequence > $3
  ORDER BY l.sequence
  LIMIT $4",
            select_recorded(self.backend)
        );
        let rows = sqlx::query(&sql)
            .bind(aggregate_type)
            .bind(aggregate_id)
            .bind(after_sequence)
            .bind(i64::from(limit.min(MAX_BATCH_EVENTS)))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|row| decode_row(&self.upcasters, row))
            .collect()
    }

    /// How many events one aggregate's stream holds.
    pub async fn stream_length(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT count(*) FROM event_log WHERE aggregate_type = $1 AND aggregate_id = $2",
        )
        .bind(aggregate_type)
        .bind(aggregate_id)
        .fetch_one(&self.pool)
        .await?)
    }

    /// The global position of the newest event of one aggregate, if it has any.
    pub async fn last_position_of(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT max(global_position) FROM event_log WHERE aggregate_type = $1 AND aggregate_id = $2",
        )
        .bind(aggregate_type)
        .bind(aggregate_id)
        .fetch_one(&self.pool)
        .await?)
    }

    /// The newest event written under an idempotency key, if any.
    pub async fn find_by_idempotency_key(
        &self,
        key: &str,
    ) -> Result<Option<RecordedEvent>, StoreError> {
        let sql = format!(
            "{}
  WHERE e.idempotency_key = $1
  ORDER BY l.global_position DESC
  LIMIT 1",
            select_recorded(self.backend)
        );
        let row = sqlx::query(&sql)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| decode_row(&self.upcasters, row)).transpose()
    }
}

/// Up to `limit` events after `after`, in commit order, read through any executor (a projector
/// reads inside the transaction that will move its checkpoint).
pub async fn read_after<'e, E>(
    executor: E,
    backend: Backend,
    upcasters: &Upcasters,
    after: i64,
    limit: u32,
) -> Result<Vec<RecordedEvent>, StoreError>
where
    E: sqlx::Executor<'e, Database = Db>,
{
    let sql = format!(
        "{}
  WHERE l.global_position > $1
  ORDER BY l.global_position
  LIMIT $2",
        select_recorded(backend)
    );
    let rows = sqlx::query(&sql)
        .bind(after)
        .bind(i64::from(limit.min(MAX_BATCH_EVENTS)))
        .fetch_all(executor)
        .await?;
    rows.into_iter()
        .map(|row| decode_row(upcasters, row))
        .collect()
}

/// The position of the newest event, 0 for an empty log.
pub async fn head<'e, E>(executor: E) -> Result<i64, StoreError>
where
    E: sqlx::Executor<'e, Database = Db>,
{
    Ok(
        sqlx::query_scalar("SELECT coalesce(max(global_position), 0) FROM event_log")
            .fetch_one(executor)
            .await?,
    )
}

pub(crate) fn decode_row(upcasters: &Upcasters, row: AnyRow) -> Result<RecordedEvent, StoreError> {
    let position: i64 = row.try_get("global_position")?;
    let recorded_at: String = row.try_get("recorded_at")?;
    let recorded_at = DateTime::parse_from_rfc3339(&recorded_at)
        .map_err(|err| StoreError::Decode {
            position,
            reason: format!("recorded_at {recorded_at:?}: {err}"),
        })?
        .with_timezone(&Utc);
    let sequence: i64 = row.try_get("sequence")?;
    let stored = SerializedEvent {
        aggregate_id: row.try_get("aggregate_id")?,
        sequence: usize::try_from(sequence).map_err(|_| StoreError::Decode {
            position,
            reason: format!("negative sequence {sequence}"),
        })?,
        aggregate_type: row.try_get("aggregate_type")?,
        event_type: row.try_get("event_type")?,
        event_version: row.try_get("event_version")?,
        payload: json(position, "payload", row.try_get("payload")?)?,
        metadata: json(position, "metadata", row.try_get("metadata")?)?,
    };
    let current = upcast(upcasters, stored);
    Ok(RecordedEvent {
        position,
        aggregate_type: current.aggregate_type,
        aggregate_id: current.aggregate_id,
        sequence,
        event_type: current.event_type,
        event_version: current.event_version,
        payload: current.payload,
        metadata: current.metadata,
        recorded_at,
    })
}

fn json(position: i64, column: &str, text: String) -> Result<Value, StoreError> {
    serde_json::from_str(&text).map_err(|err| StoreError::Decode {
        position,
        reason: format!("{column} is not JSON: {err}"),
    })
}

/// Applies every matching upcaster in turn, so an event several versions old reaches the current one.
pub(crate) fn upcast(
    upcasters: &[Box<dyn EventUpcaster>],
    mut event: SerializedEvent,
) -> SerializedEvent {
    for upcaster in upcasters {
        if upcaster.can_upcast(&event.event_type, &event.event_version) {
            event = upcaster.upcast(event);
        }
    }
    event
}
