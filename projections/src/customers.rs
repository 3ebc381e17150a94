//! `customers`: each registered customer's current contact details.
//!
//! Table `customers`, one row per customer (see docs/read-models.md).

use aggregates::customer::CustomerEvent;
use eventstore::RecordedEvent;
use futures::future::BoxFuture;
use sqlx::AnyConnection;

use crate::runtime::{ProjectionError, Projector};

pub struct Customers;

const SCHEMA: &[&str] = &["CREATE TABLE IF NOT EXISTS customers (
        customer_id   text    PRIMARY KEY,
        full_name     text    NOT NULL,
        email         text    NOT NULL,
        phone         text    NOT NULL,
        address       text    NOT NULL,
        registered_at text    NOT NULL,
        updated_at    text    NOT NULL,
        last_position integer NOT NULL
    ) STRICT"];

impl Projector for Customers {
    fn name(&self) -> &'static str {
        "customers"
    }

    fn version(&self) -> i64 {
        1
    }

    fn tables(&self) -> &'static [&'static str] {
        &["customers"]
    }

    fn schema(&self) -> &'static [&'static str] {
        SCHEMA
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        // The aggregate types `apply` dispatches on; every other event leaves its tables alone.
        Some(&["Customer"])
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
    if event.aggregate_type != "Customer" {
        return Ok(());
    }
    let at = crate::rfc3339(event.recorded_at);
    let done = match event.decode::<CustomerEvent>()? {
        CustomerEvent::CustomerRegistered {
            full_name,
            email,
            phone,
            address,
            registered_at,
        } => {
            sqlx::query(
                "INSERT INTO customers (customer_id, full_name, email, phone, address, registered_at, updated_at, last_position)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&event.aggregate_id)
            .bind(full_name)
            .bind(email.as_str())
            .bind(phone.as_str())
            .bind(address)
            .bind(crate::rfc3339(registered_at))
            .bind(&at)
            .bind(event.position)
            .execute(&mut *conn)
            .await?
        }
        CustomerEvent::CustomerContactDetailsChanged {
            email,
            phone,
            address,
        } => {
            sqlx::query(
                "UPDATE customers SET email = coalesce($1, email), phone = coalesce($2, phone),
                    address = coalesce($3, address), updated_at = $4, last_position = $5
                  WHERE customer_id = $6",
            )
            .bind(email.as_ref().map(|e| e.as_str()))
            .bind(phone.as_ref().map(|p| p.as_str()))
            .bind(address)
            .bind(&at)
            .bind(event.position)
            .bind(&event.aggregate_id)
            .execute(&mut *conn)
            .await?
        }
    };
    crate::expect_one_row(event, done.rows_affected())
}
