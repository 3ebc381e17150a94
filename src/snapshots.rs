//! Snapshots for long streams after `autosalon import-events` and `autosalon rebuild`.
//!
//! Commands write a snapshot each time a stream crosses a multiple of
//! [`SNAPSHOT_EVERY_EVENTS`](eventstore::repository::SNAPSHOT_EVERY_EVENTS) (cqrs-es, in the append's
//! transaction). Events that arrive another way — an import copies the log, never its snapshots —
//! leave a long stream without one, and every load of that aggregate replays it from its first event.
//! [`refresh_long_streams`] gives every stream longer than the interval a snapshot at its last
//! sequence: the aggregate's state replayed from all its events (upcast as on any load), written in
//! the layout sqlite-es and postgres-es read (one row per aggregate in `snapshots`). A stream already
//! snapshotted at or after that sequence is left as it is.
//!
//! The write takes the same lock appends take (SQLite's write lock; on PostgreSQL the advisory lock
//! of the `events` insert trigger), so it never races a command's own snapshot: a command that
//! loaded the previous snapshot and then crosses the interval finds its snapshot version moved and
//! is refused as a concurrent change, like any other, and decided again.

use anyhow::Context;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, EventStore};
use eventstore::repository::{EventRepository, SNAPSHOT_EVERY_EVENTS};
use eventstore::{Backend, Database};

/// How many snapshots [`refresh_long_streams`] wrote, and how many streams it found long enough.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Refreshed {
    pub long_streams: usize,
    pub written: usize,
}

/// Gives every stream of more than `SNAPSHOT_EVERY_EVENTS` events a snapshot at its last sequence
/// (see the module docs).
pub async fn refresh_long_streams(db: &Database) -> anyhow::Result<Refreshed> {
    let streams: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT aggregate_type, aggregate_id, CAST(max(sequence) AS BIGINT) FROM events
          GROUP BY aggregate_type, aggregate_id HAVING count(*) > $1
          ORDER BY aggregate_type, aggregate_id",
    )
    .bind(SNAPSHOT_EVERY_EVENTS as i64)
    .fetch_all(db.pool())
    .await
    .context("finding long streams")?;
    let mut refreshed = Refreshed {
        long_streams: streams.len(),
        written: 0,
    };
    for (aggregate_type, aggregate_id, last_sequence) in streams {
        let snapshotted: Option<i64> = sqlx::query_scalar(
            "SELECT CAST(last_sequence AS BIGINT) FROM snapshots WHERE aggregate_type = $1 AND aggregate_id = $2",
        )
        .bind(&aggregate_type)
        .bind(&aggregate_id)
        .fetch_optional(db.pool())
        .await?;
        if snapshotted.is_some_and(|at| at >= last_sequence) {
            continue;
        }
        use aggregates::*;
        let written = match aggregate_type.as_str() {
            vehicle::Vehicle::TYPE => snapshot::<vehicle::Vehicle>(db, &aggregate_id).await?,
            customer::Customer::TYPE => snapshot::<customer::Customer>(db, &aggregate_id).await?,
            order::Order::TYPE => snapshot::<order::Order>(db, &aggregate_id).await?,
            payment::Payment::TYPE => snapshot::<payment::Payment>(db, &aggregate_id).await?,
            loan::Loan::TYPE => snapshot::<loan::Loan>(db, &aggregate_id).await?,
            policy::Policy::TYPE => snapshot::<policy::Policy>(db, &aggregate_id).await?,
            bookings::Booking::TYPE => snapshot::<bookings::Booking>(db, &aggregate_id).await?,
            bookings::MechanicDay::TYPE => {
                snapshot::<bookings::MechanicDay>(db, &aggregate_id).await?
            }
            user::User::TYPE => snapshot::<user::User>(db, &aggregate_id).await?,
            partner_key::PartnerKey::TYPE => {
                snapshot::<partner_key::PartnerKey>(db, &aggregate_id).await?
            }
            other => {
                tracing::warn!(
                    aggregate_type = other,
                    "no aggregate of this type: its long streams keep no snapshot"
                );
                false
            }
        };
        refreshed.written += usize::from(written);
    }
    Ok(refreshed)
}

/// Replays aggregate `A` `id` from all its events and stores the state as its snapshot at the last
/// sequence, unless a snapshot as recent exists by then. Whether it wrote one.
async fn snapshot<A: Aggregate>(db: &Database, id: &str) -> anyhow::Result<bool> {
    let replay: PersistedEventStore<EventRepository, A> =
        PersistedEventStore::new_event_store(db.event_repository())
            .with_upcasters(aggregates::upcasters());
    let context = replay
        .load_aggregate(id)
        .await
        .map_err(|err| anyhow::anyhow!("replaying {} {id}: {err}", A::TYPE))?;
    let last_sequence = context.current_sequence as i64;
    let payload = serde_json::to_string(&context.aggregate)?;
    let mut tx = db.begin_exclusive().await?;
    let backend = db.backend();
    if backend == Backend::Postgres {
        // The lock every append takes (the `events` insert trigger of the store's migration).
        sqlx::query(&format!(
            "SELECT CAST(pg_advisory_xact_lock({}, 1) AS TEXT)",
            eventstore::database::LOCK_NAMESPACE
        ))
        .execute(&mut *tx)
        .await?;
    }
    let current: Option<(i64, i64)> = sqlx::query_as(
        "SELECT CAST(current_snapshot AS BIGINT), CAST(last_sequence AS BIGINT) FROM snapshots
          WHERE aggregate_type = $1 AND aggregate_id = $2",
    )
    .bind(A::TYPE)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let payload_sql = match backend {
        Backend::Sqlite => "$3",
        Backend::Postgres => "CAST($3 AS json)",
    };
    let written = match current {
        Some((_, at)) if at >= last_sequence => false,
        Some((version, _)) => {
            sqlx::query(&format!(
                "UPDATE snapshots SET last_sequence = $4, payload = {payload_sql}, current_snapshot = $5
                  WHERE aggregate_type = $1 AND aggregate_id = $2 AND current_snapshot = $6"
            ))
            .bind(A::TYPE)
            .bind(id)
            .bind(&payload)
            .bind(last_sequence)
            .bind(version + 1)
            .bind(version)
            .execute(&mut *tx)
            .await?;
            true
        }
        None => {
            sqlx::query(&format!(
                "INSERT INTO snapshots (aggregate_type, aggregate_id, last_sequence, current_snapshot, payload)
                 VALUES ($1, $2, $4, 1, {payload_sql})"
            ))
            .bind(A::TYPE)
            .bind(id)
            .bind(&payload)
            .bind(last_sequence)
            .execute(&mut *tx)
            .await?;
            true
        }
    };
    tx.commit().await?;
    Ok(written)
}
