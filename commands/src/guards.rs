//! Write-side guards: constraints across aggregates that optimistic concurrency on one stream cannot
//! enforce, kept by the database in the same transaction as the events that establish them.
//!
//! `vehicle_vins`: one vehicle per VIN. An AFTER INSERT trigger on `events` claims the VIN of every
//! `VehicleStocked` event; a second vehicle with the same VIN fails the UNIQUE constraint and its
//! whole append rolls back, so two concurrent requests can never both stock one VIN.

pub const STATEMENTS: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS vehicle_vins (
        vin        text NOT NULL UNIQUE,
        vehicle_id text NOT NULL PRIMARY KEY
    ) STRICT",
    "CREATE TRIGGER IF NOT EXISTS vehicle_vins_claim
        AFTER INSERT ON events
        WHEN NEW.aggregate_type = 'Vehicle' AND NEW.event_type = 'VehicleStocked'
     BEGIN
        INSERT INTO vehicle_vins (vin, vehicle_id)
        VALUES (json_extract(NEW.payload, '$.VehicleStocked.vin'), NEW.aggregate_id);
     END",
];

/// Claims the VINs of vehicles stocked before the guard existed. Run once, when the trigger is
/// installed: afterwards the trigger claims every VIN as it is stocked, so re-scanning the whole
/// event log at every start would only cost time.
pub const BACKFILL: &str = "INSERT OR IGNORE INTO vehicle_vins (vin, vehicle_id)
     SELECT json_extract(payload, '$.VehicleStocked.vin'), aggregate_id
       FROM events
      WHERE aggregate_type = 'Vehicle' AND event_type = 'VehicleStocked'";

/// The trigger whose presence says the guard is installed.
pub const TRIGGER: &str = "vehicle_vins_claim";
