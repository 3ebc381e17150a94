//! `catalog`: every vehicle with its status, price, location and specifications, for search and
//! for counts per brand and model.
//!
//! Tables `catalog_vehicles` (one row per stocked vehicle, with whether it is available and when it
//! was sold or withdrawn, so days in stock can be computed), `catalog_price_history` (one row per
//! reprice) and `catalog_counts` (how many vehicles there are per brand, model, condition and status,
//! kept in the same transaction as the vehicles, so counts never read `catalog_vehicles`). See
//! docs/read-models.md for the contract.
//!
//! Indexes follow the catalog's filter shapes (`queries::vehicles` builds its `WHERE` from the
//! filters given): the list is ordered by arrival (`stocked_position, vehicle_id`), so each equality
//! filter has an index ending in that order (status; condition; brand; brand and model), a page is
//! read in index order and stops after the page; year and price ranges have their own.

use aggregates::vehicle::{Condition, VehicleEvent, VehicleStatus};
use eventstore::RecordedEvent;
use futures::future::BoxFuture;
use sqlx::AnyConnection;

use crate::runtime::{ProjectionError, Projector};

pub struct Catalog;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS catalog_vehicles (
        vehicle_id            text    PRIMARY KEY,
        vin                   text    NOT NULL UNIQUE,
        brand                 text    NOT NULL,
        model                 text    NOT NULL,
        year                  integer NOT NULL,
        trim                  text    NOT NULL,
        colour                text    NOT NULL,
        mileage_km            integer NOT NULL,
        condition             text    NOT NULL,
        location              text    NOT NULL,
        status                text    NOT NULL,
        reserved_for_order_id text,
        list_price            text    NOT NULL,
        list_price_minor      integer NOT NULL,
        currency              text    NOT NULL,
        specifications        text    NOT NULL,
        available             integer NOT NULL,
        stocked_at            text    NOT NULL,
        sold_at               text,
        withdrawn_at          text,
        stocked_position      integer NOT NULL,
        updated_at            text    NOT NULL,
        last_position         integer NOT NULL,
        brand_key             text    NOT NULL,
        model_key             text    NOT NULL
    ) STRICT",
    "CREATE INDEX IF NOT EXISTS catalog_vehicles_arrival ON catalog_vehicles (stocked_position, vehicle_id)",
    "CREATE INDEX IF NOT EXISTS catalog_vehicles_status_arrival
        ON catalog_vehicles (status, stocked_position, vehicle_id)",
    "CREATE INDEX IF NOT EXISTS catalog_vehicles_condition_arrival
        ON catalog_vehicles (condition, stocked_position, vehicle_id)",
    "CREATE INDEX IF NOT EXISTS catalog_vehicles_brand_arrival
        ON catalog_vehicles (brand_key, stocked_position, vehicle_id)",
    "CREATE INDEX IF NOT EXISTS catalog_vehicles_model_arrival
        ON catalog_vehicles (brand_key, model_key, stocked_position, vehicle_id)",
    "CREATE INDEX IF NOT EXISTS catalog_vehicles_year ON catalog_vehicles (year)",
    "CREATE INDEX IF NOT EXISTS catalog_vehicles_price ON catalog_vehicles (currency, list_price_minor)",
    "CREATE INDEX IF NOT EXISTS catalog_vehicles_available ON catalog_vehicles (available)",
    "CREATE TABLE IF NOT EXISTS catalog_counts (
        brand     text    NOT NULL,
        model     text    NOT NULL,
        brand_key text    NOT NULL,
        model_key text    NOT NULL,
        condition text    NOT NULL,
        status    text    NOT NULL,
        vehicles  integer NOT NULL,
        PRIMARY KEY (brand, model, condition, status)
    ) STRICT",
    "CREATE TABLE IF NOT EXISTS catalog_price_history (
        vehicle_id      text    NOT NULL,
        position        integer NOT NULL,
        currency        text    NOT NULL,
        old_price       text    NOT NULL,
        old_price_minor integer NOT NULL,
        new_price       text    NOT NULL,
        new_price_minor integer NOT NULL,
        recorded_at     text    NOT NULL,
        PRIMARY KEY (vehicle_id, position)
    ) STRICT",
];

/// The key a brand or model is matched by: its lower case (Unicode), the same on both backends.
pub fn match_key(name: &str) -> String {
    name.to_lowercase()
}

/// The SQL spelling of a condition (also what GraphQL filters compare against).
pub fn condition_str(condition: Condition) -> &'static str {
    match condition {
        Condition::New => "NEW",
        Condition::Used => "USED",
    }
}

impl Projector for Catalog {
    fn name(&self) -> &'static str {
        "catalog"
    }

    /// 2: `mileage_km` follows the odometer at each recorded service.
    /// 3: `available`, `sold_at`, `withdrawn_at` and the table `catalog_price_history`.
    /// 4: `brand_key`, `model_key`, indexes per filter shape and the table `catalog_counts`.
    fn version(&self) -> i64 {
        4
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "catalog_vehicles",
            "catalog_price_history",
            "catalog_counts",
        ]
    }

    fn schema(&self) -> &'static [&'static str] {
        SCHEMA
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        // The aggregate types `apply` dispatches on; every other event leaves its tables alone.
        Some(&["Vehicle"])
    }

    fn apply<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        event: &'a RecordedEvent,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(apply(conn, event))
    }
}

async fn apply(conn: &mut AnyConnection, event: &RecordedEvent) -> Result<(), ProjectionError> {
    if event.aggregate_type != "Vehicle" {
        return Ok(());
    }
    let id = event.aggregate_id.as_str();
    let at = crate::rfc3339(event.recorded_at);
    match event.decode::<VehicleEvent>()? {
        VehicleEvent::VehicleStocked {
            vin,
            brand,
            model,
            year,
            trim,
            colour,
            mileage_km,
            condition,
            location,
            list_price,
            specifications,
            stocked_at,
        } => {
            let specifications = serde_json::to_string(&specifications)
                .map_err(|err| crate::inconsistent(event, err.to_string()))?;
            let group = Group {
                brand_key: match_key(&brand),
                model_key: match_key(&model),
                brand: brand.clone(),
                model: model.clone(),
                condition: condition_str(condition).to_string(),
            };
            sqlx::query(
                "INSERT INTO catalog_vehicles (vehicle_id, vin, brand, model, year, trim, colour, mileage_km,
                    condition, location, status, reserved_for_order_id, list_price, list_price_minor, currency,
                    specifications, available, stocked_at, sold_at, withdrawn_at, stocked_position, updated_at,
                    last_position, brand_key, model_key)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, $12, $13, $14, $15, 1, $16, NULL, NULL,
                    $17, $18, $17, $19, $20)",
            )
            .bind(id)
            .bind(vin.as_str())
            .bind(brand)
            .bind(model)
            .bind(i64::from(year))
            .bind(trim)
            .bind(colour)
            .bind(i64::from(mileage_km))
            .bind(condition_str(condition))
            .bind(location)
            .bind(VehicleStatus::Available.as_str())
            .bind(list_price.amount().to_string())
            .bind(list_price.minor_units())
            .bind(list_price.currency().code())
            .bind(specifications)
            .bind(crate::rfc3339(stocked_at))
            .bind(event.position)
            .bind(&at)
            .bind(&group.brand_key)
            .bind(&group.model_key)
            .execute(&mut *conn)
            .await?;
            count(conn, &group, VehicleStatus::Available.as_str(), 1).await?;
            return Ok(());
        }
        VehicleEvent::VehicleRepriced {
            old_price,
            new_price,
        } => {
            sqlx::query(
                "INSERT INTO catalog_price_history (vehicle_id, position, currency, old_price, old_price_minor,
                    new_price, new_price_minor, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(id)
            .bind(event.position)
            .bind(new_price.currency().code())
            .bind(old_price.amount().to_string())
            .bind(old_price.minor_units())
            .bind(new_price.amount().to_string())
            .bind(new_price.minor_units())
            .bind(&at)
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "UPDATE catalog_vehicles SET list_price = $1, list_price_minor = $2, currency = $3,
                    updated_at = $4, last_position = $5 WHERE vehicle_id = $6",
            )
            .bind(new_price.amount().to_string())
            .bind(new_price.minor_units())
            .bind(new_price.currency().code())
            .bind(&at)
            .bind(event.position)
            .bind(id)
            .execute(&mut *conn)
            .await
        }
        VehicleEvent::VehicleRelocated { to, .. } => {
            sqlx::query(
                "UPDATE catalog_vehicles SET location = $1, updated_at = $2, last_position = $3 WHERE vehicle_id = $4",
            )
            .bind(to)
            .bind(&at)
            .bind(event.position)
            .bind(id)
            .execute(&mut *conn)
            .await
        }
        VehicleEvent::VehicleReserved { order_id } => {
            set_status(conn, event, VehicleStatus::Reserved, Some(order_id.to_string())).await
        }
        VehicleEvent::VehicleReservationReleased { .. } => {
            set_status(conn, event, VehicleStatus::Available, None).await
        }
        VehicleEvent::VehicleSold { order_id } => {
            set_status(conn, event, VehicleStatus::Sold, Some(order_id.to_string())).await
        }
        VehicleEvent::VehicleWithdrawn { .. } => {
            set_status(conn, event, VehicleStatus::Withdrawn, None).await
        }
        VehicleEvent::VehicleServiceRecorded { mileage_km, .. } => {
            sqlx::query(
                "UPDATE catalog_vehicles SET mileage_km = $1, updated_at = $2, last_position = $3 WHERE vehicle_id = $4",
            )
            .bind(i64::from(mileage_km))
            .bind(&at)
            .bind(event.position)
            .bind(id)
            .execute(&mut *conn)
            .await
        }
    }
    .map_err(ProjectionError::from)
    .and_then(|done| crate::expect_one_row(event, done.rows_affected()))
}

/// The counting group of one vehicle (everything of `catalog_counts` but the status).
struct Group {
    brand: String,
    model: String,
    brand_key: String,
    model_key: String,
    condition: String,
}

/// Adds `delta` to the vehicles of `group` in `status`.
async fn count(
    conn: &mut AnyConnection,
    group: &Group,
    status: &str,
    delta: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO catalog_counts (brand, model, brand_key, model_key, condition, status, vehicles)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (brand, model, condition, status)
         DO UPDATE SET vehicles = catalog_counts.vehicles + excluded.vehicles",
    )
    .bind(&group.brand)
    .bind(&group.model)
    .bind(&group.brand_key)
    .bind(&group.model_key)
    .bind(&group.condition)
    .bind(status)
    .bind(delta)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Moves the vehicle to `status`, and its count from its previous status to the new one.
async fn set_status(
    conn: &mut AnyConnection,
    event: &RecordedEvent,
    status: VehicleStatus,
    order_id: Option<String>,
) -> Result<sqlx::any::AnyQueryResult, sqlx::Error> {
    let before: Option<(String, String, String, String, String, String)> = sqlx::query_as(
        "SELECT brand, model, brand_key, model_key, condition, status FROM catalog_vehicles WHERE vehicle_id = $1",
    )
    .bind(&event.aggregate_id)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some((brand, model, brand_key, model_key, condition, previous)) = before {
        let group = Group {
            brand,
            model,
            brand_key,
            model_key,
            condition,
        };
        count(conn, &group, &previous, -1).await?;
        count(conn, &group, status.as_str(), 1).await?;
    }
    sqlx::query(
        "UPDATE catalog_vehicles SET status = $1, reserved_for_order_id = $2, updated_at = $3, last_position = $4,
            available = $6,
            sold_at = CASE WHEN $1 = 'SOLD' THEN $3 ELSE sold_at END,
            withdrawn_at = CASE WHEN $1 = 'WITHDRAWN' THEN $3 ELSE withdrawn_at END
          WHERE vehicle_id = $5",
    )
    .bind(status.as_str())
    .bind(order_id)
    .bind(crate::rfc3339(event.recorded_at))
    .bind(event.position)
    .bind(&event.aggregate_id)
    .bind(i64::from(status == VehicleStatus::Available))
    .execute(&mut *conn)
    .await
}
