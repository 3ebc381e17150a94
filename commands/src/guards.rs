//! Write-side guards: constraints across aggregates that optimistic concurrency on one stream cannot
//! enforce, kept by the database in the same transaction as the events that establish them.
//!
//! `vehicle_vins`: one vehicle per VIN. An AFTER INSERT trigger on `events` claims the VIN of every
//! `VehicleStocked` event; a second vehicle with the same VIN fails the UNIQUE constraint and its
//! whole append rolls back, so two concurrent requests can never both stock one VIN (on PostgreSQL,
//! from any server).

use eventstore::{Backend, Database};

use crate::CommandError;

/// The table, the same on both backends (see [`Backend::ddl`]).
const TABLE: &str = "CREATE TABLE IF NOT EXISTS vehicle_vins (
        vin        text NOT NULL UNIQUE,
        vehicle_id text NOT NULL PRIMARY KEY
    ) STRICT";

const SQLITE_TRIGGER: &str = "CREATE TRIGGER IF NOT EXISTS vehicle_vins_claim
        AFTER INSERT ON events
        WHEN NEW.aggregate_type = 'Vehicle' AND NEW.event_type = 'VehicleStocked'
     BEGIN
        INSERT INTO vehicle_vins (vin, vehicle_id)
        VALUES (json_extract(NEW.payload, '$.VehicleStocked.vin'), NEW.aggregate_id);
     END";

const POSTGRES_FUNCTION: &str = "CREATE OR REPLACE FUNCTION vehicle_vins_claim() RETURNS trigger
        LANGUAGE plpgsql AS
     $$
     BEGIN
        INSERT INTO vehicle_vins (vin, vehicle_id)
        VALUES (NEW.payload -> 'VehicleStocked' ->> 'vin', NEW.aggregate_id);
        RETURN NULL;
     END;
     $$";

const POSTGRES_TRIGGER: &str = "CREATE OR REPLACE TRIGGER vehicle_vins_claim
        AFTER INSERT ON events
        FOR EACH ROW
        WHEN (NEW.aggregate_type = 'Vehicle' AND NEW.event_type = 'VehicleStocked')
        EXECUTE FUNCTION vehicle_vins_claim()";

/// Claims the VINs of vehicles stocked before the guard existed. Run once, when the trigger is
/// installed: afterwards the trigger claims every VIN as it is stocked, so re-scanning the whole
/// event log at every start would only cost time.
const SQLITE_BACKFILL: &str = "INSERT INTO vehicle_vins (vin, vehicle_id)
     SELECT json_extract(payload, '$.VehicleStocked.vin'), aggregate_id
       FROM events
      WHERE aggregate_type = 'Vehicle' AND event_type = 'VehicleStocked'
     ON CONFLICT DO NOTHING";

const POSTGRES_BACKFILL: &str = "INSERT INTO vehicle_vins (vin, vehicle_id)
     SELECT payload -> 'VehicleStocked' ->> 'vin', aggregate_id
       FROM events
      WHERE aggregate_type = 'Vehicle' AND event_type = 'VehicleStocked'
     ON CONFLICT DO NOTHING";

/// Whether the trigger exists yet.
fn installed_sql(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => {
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name = 'vehicle_vins_claim'"
        }
        Backend::Postgres => "SELECT count(*) FROM pg_trigger WHERE tgname = 'vehicle_vins_claim'",
    }
}

/// Creates the guards (idempotent). Several servers starting at once take turns (an exclusive
/// transaction), and the one-time backfill runs only where the trigger was missing.
pub async fn install(db: &Database) -> Result<(), CommandError> {
    let backend = db.backend();
    let mut tx = db.begin_exclusive().await?;
    let installed: i64 = sqlx::query_scalar(installed_sql(backend))
        .fetch_one(&mut *tx)
        .await?;
    let (statements, backfill): (&[&str], &str) = match backend {
        Backend::Sqlite => (&[TABLE, SQLITE_TRIGGER], SQLITE_BACKFILL),
        Backend::Postgres => (
            &[TABLE, POSTGRES_FUNCTION, POSTGRES_TRIGGER],
            POSTGRES_BACKFILL,
        ),
    };
    if installed == 0 {
        for statement in statements {
            sqlx::query(&backend.ddl(statement))
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(backfill).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}
