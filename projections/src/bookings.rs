//! `bookings`: the workshop's bookings and each vehicle's service history.
//!
//! Tables (see docs/read-models.md):
//! - `bookings`, one row per booking, from the `Booking` stream;
//! - `vehicle_service_history`, one row per recorded service, from the `Vehicle` stream's
//!   `VehicleServiceRecorded` (the car's own history, sold cars included).
//!
//! The `MechanicDay` streams are the write side's overlap guard; their claims are not a read model
//! (a mechanic's schedule is that day's rows in `bookings`).

use aggregates::bookings::{BookingEvent, BookingStatus, Slot};
use aggregates::money::Money;
use aggregates::vehicle::VehicleEvent;
use eventstore::RecordedEvent;
use futures::future::BoxFuture;
use sqlx::AnyConnection;

use crate::runtime::{ProjectionError, Projector};

pub struct Bookings;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS bookings (
        booking_id          text    PRIMARY KEY,
        customer_id         text    NOT NULL,
        vehicle_id          text    NOT NULL,
        mechanic_id         text    NOT NULL,
        kind                text    NOT NULL,
        status              text    NOT NULL,
        starts_at           text    NOT NULL,
        ends_at             text    NOT NULL,
        day                 text    NOT NULL,
        notes               text    NOT NULL,
        booked_at           text    NOT NULL,
        rescheduled_at      text,
        started_at          text,
        completed_at        text,
        cancelled_at        text,
        cancellation_reason text,
        no_show_at          text,
        mileage_km          integer,
        work                text,
        cost                text,
        cost_minor          integer,
        currency            text,
        updated_at          text    NOT NULL,
        last_position       integer NOT NULL
    ) STRICT",
    "CREATE INDEX IF NOT EXISTS bookings_mechanic_day ON bookings (mechanic_id, day, starts_at)",
    "CREATE INDEX IF NOT EXISTS bookings_customer ON bookings (customer_id)",
    "CREATE INDEX IF NOT EXISTS bookings_vehicle ON bookings (vehicle_id)",
    "CREATE INDEX IF NOT EXISTS bookings_start ON bookings (starts_at, booking_id)",
    "CREATE TABLE IF NOT EXISTS vehicle_service_history (
        vehicle_id        text    NOT NULL,
        booking_id        text    NOT NULL,
        serviced_at       text    NOT NULL,
        mileage_km        integer NOT NULL,
        work              text    NOT NULL,
        cost              text    NOT NULL,
        cost_minor        integer NOT NULL,
        currency          text    NOT NULL,
        recorded_position integer NOT NULL,
        PRIMARY KEY (vehicle_id, booking_id)
    ) STRICT",
];

impl Projector for Bookings {
    fn name(&self) -> &'static str {
        "bookings"
    }

    fn version(&self) -> i64 {
        1
    }

    fn tables(&self) -> &'static [&'static str] {
        &["bookings", "vehicle_service_history"]
    }

    fn schema(&self) -> &'static [&'static str] {
        SCHEMA
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        // The aggregate types `apply` dispatches on; every other event leaves its tables alone.
        Some(&["Booking", "Vehicle"])
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
    match event.aggregate_type.as_str() {
        "Booking" => apply_booking(conn, event).await,
        "Vehicle" => apply_vehicle(conn, event).await,
        _ => Ok(()),
    }
}

fn work_json(event: &RecordedEvent, work: &[String]) -> Result<String, ProjectionError> {
    serde_json::to_string(work).map_err(|err| crate::inconsistent(event, err.to_string()))
}

async fn apply_vehicle(
    conn: &mut AnyConnection,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
    let VehicleEvent::VehicleServiceRecorded {
        booking_id,
        serviced_at,
        mileage_km,
        work,
        cost,
    } = event.decode::<VehicleEvent>()?
    else {
        // Every other vehicle event is the catalog's.
        return Ok(());
    };
    let done = sqlx::query(
        "INSERT INTO vehicle_service_history (vehicle_id, booking_id, serviced_at, mileage_km, work, cost,
            cost_minor, currency, recorded_position)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&event.aggregate_id)
    .bind(booking_id.to_string())
    .bind(crate::rfc3339(serviced_at))
    .bind(i64::from(mileage_km))
    .bind(work_json(event, &work)?)
    .bind(cost.amount().to_string())
    .bind(cost.minor_units())
    .bind(cost.currency().code())
    .bind(event.position)
    .execute(&mut *conn)
    .await?;
    crate::expect_one_row(event, done.rows_affected())
}

async fn apply_booking(
    conn: &mut AnyConnection,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
    let id = event.aggregate_id.as_str();
    let at = crate::rfc3339(event.recorded_at);
    let done = match event.decode::<BookingEvent>()? {
        BookingEvent::ServiceBooked {
            customer_id,
            vehicle_id,
            mechanic,
            kind,
            slot,
            notes,
            booked_at,
        } => {
            sqlx::query(
                "INSERT INTO bookings (booking_id, customer_id, vehicle_id, mechanic_id, kind, status, starts_at,
                    ends_at, day, notes, booked_at, updated_at, last_position)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            )
            .bind(id)
            .bind(customer_id.to_string())
            .bind(vehicle_id.to_string())
            .bind(mechanic.as_str())
            .bind(kind.as_str())
            .bind(BookingStatus::Scheduled.as_str())
            .bind(crate::rfc3339(slot.start()))
            .bind(crate::rfc3339(slot.end()))
            .bind(day(&slot))
            .bind(notes)
            .bind(crate::rfc3339(booked_at))
            .bind(&at)
            .bind(event.position)
            .execute(&mut *conn)
            .await?
        }
        BookingEvent::BookingRescheduled {
            mechanic,
            slot,
            rescheduled_at,
            ..
        } => {
            sqlx::query(
                "UPDATE bookings SET mechanic_id = $1, starts_at = $2, ends_at = $3, day = $4, rescheduled_at = $5,
                    updated_at = $6, last_position = $7 WHERE booking_id = $8",
            )
            .bind(mechanic.as_str())
            .bind(crate::rfc3339(slot.start()))
            .bind(crate::rfc3339(slot.end()))
            .bind(day(&slot))
            .bind(crate::rfc3339(rescheduled_at))
            .bind(&at)
            .bind(event.position)
            .bind(id)
            .execute(&mut *conn)
            .await?
        }
        BookingEvent::BookingStarted { started_at } => {
            set_status(conn, event, BookingStatus::InProgress, "started_at", started_at).await?
        }
        BookingEvent::BookingCompleted {
            mileage_km,
            work,
            cost,
            completed_at,
        } => {
            let cost: Money = cost;
            sqlx::query(
                "UPDATE bookings SET status = $1, completed_at = $2, mileage_km = $3, work = $4, cost = $5,
                    cost_minor = $6, currency = $7, updated_at = $8, last_position = $9 WHERE booking_id = $10",
            )
            .bind(BookingStatus::Completed.as_str())
            .bind(crate::rfc3339(completed_at))
            .bind(i64::from(mileage_km))
            .bind(work_json(event, &work)?)
            .bind(cost.amount().to_string())
            .bind(cost.minor_units())
            .bind(cost.currency().code())
            .bind(&at)
            .bind(event.position)
            .bind(id)
            .execute(&mut *conn)
            .await?
        }
        BookingEvent::BookingCancelled {
            reason,
            cancelled_at,
        } => {
            sqlx::query(
                "UPDATE bookings SET status = $1, cancelled_at = $2, cancellation_reason = $3, updated_at = $4,
                    last_position = $5 WHERE booking_id = $6",
            )
            .bind(BookingStatus::Cancelled.as_str())
            .bind(crate::rfc3339(cancelled_at))
            .bind(reason)
            .bind(&at)
            .bind(event.position)
            .bind(id)
            .execute(&mut *conn)
            .await?
        }
        BookingEvent::BookingMarkedNoShow { marked_at } => {
            set_status(conn, event, BookingStatus::NoShow, "no_show_at", marked_at).await?
        }
    };
    crate::expect_one_row(event, done.rows_affected())
}

/// The slot's calendar day in dealership time, `YYYY-MM-DD`.
fn day(slot: &Slot) -> String {
    slot.day().format("%Y-%m-%d").to_string()
}

/// Sets the status and the business time of the step in `column` (a fixed column name, never input).
async fn set_status(
    conn: &mut AnyConnection,
    event: &RecordedEvent,
    status: BookingStatus,
    column: &'static str,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<sqlx::any::AnyQueryResult, sqlx::Error> {
    let sql = format!(
        "UPDATE bookings SET status = $1, {column} = $2, updated_at = $3, last_position = $4 WHERE booking_id = $5"
    );
    sqlx::query(&sql)
        .bind(status.as_str())
        .bind(crate::rfc3339(at))
        .bind(crate::rfc3339(event.recorded_at))
        .bind(event.position)
        .bind(&event.aggregate_id)
        .execute(&mut *conn)
        .await
}
