//! `orders`: each sales order's status, price, discount and total.
//!
//! Table `orders`, one row per order (see docs/read-models.md). Version 2 added the paid total,
//! `paid_at` and `handed_over_at`.

use aggregates::order::{Discount, OrderEvent, OrderStatus};
use eventstore::RecordedEvent;
use futures::future::BoxFuture;
use sqlx::AnyConnection;

use crate::runtime::{ProjectionError, Projector};

pub struct Orders;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS orders (
        order_id              text    PRIMARY KEY,
        customer_id           text    NOT NULL,
        vehicle_id            text    NOT NULL,
        status                text    NOT NULL,
        currency              text    NOT NULL,
        price                 text    NOT NULL,
        price_minor           integer NOT NULL,
        discount_kind         text,
        discount_percent      text,
        discount_amount       text    NOT NULL,
        discount_amount_minor integer NOT NULL,
        total                 text    NOT NULL,
        total_minor           integer NOT NULL,
        paid_total            text    NOT NULL,
        paid_total_minor      integer NOT NULL,
        cancellation_reason   text,
        drafted_at            text    NOT NULL,
        confirmed_at          text,
        paid_at               text,
        handed_over_at        text,
        cancelled_at          text,
        updated_at            text    NOT NULL,
        last_position         integer NOT NULL
    ) STRICT",
    "CREATE INDEX IF NOT EXISTS orders_customer ON orders (customer_id)",
    "CREATE INDEX IF NOT EXISTS orders_vehicle ON orders (vehicle_id)",
];

impl Projector for Orders {
    fn name(&self) -> &'static str {
        "orders"
    }

    fn version(&self) -> i64 {
        2
    }

    fn tables(&self) -> &'static [&'static str] {
        &["orders"]
    }

    fn schema(&self) -> &'static [&'static str] {
        SCHEMA
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        // The aggregate types `apply` dispatches on; every other event leaves its tables alone.
        Some(&["Order"])
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
    if event.aggregate_type != "Order" {
        return Ok(());
    }
    let id = event.aggregate_id.as_str();
    let at = crate::rfc3339(event.recorded_at);
    let done = match event.decode::<OrderEvent>()? {
        OrderEvent::OrderDrafted {
            customer_id,
            vehicle_id,
            price,
            drafted_at,
        } => {
            sqlx::query(
                "INSERT INTO orders (order_id, customer_id, vehicle_id, status, currency, price, price_minor,
                    discount_kind, discount_percent, discount_amount, discount_amount_minor, total, total_minor,
                    paid_total, paid_total_minor, cancellation_reason, drafted_at, confirmed_at, paid_at,
                    handed_over_at, cancelled_at, updated_at, last_position)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, NULL, '0.00', 0, $6, $7, '0.00', 0, NULL, $8, NULL, NULL,
                    NULL, NULL, $9, $10)",
            )
            .bind(id)
            .bind(customer_id.to_string())
            .bind(vehicle_id.to_string())
            .bind(OrderStatus::Draft.as_str())
            .bind(price.currency().code())
            .bind(price.amount().to_string())
            .bind(price.minor_units())
            .bind(crate::rfc3339(drafted_at))
            .bind(&at)
            .bind(event.position)
            .execute(&mut *conn)
            .await?
        }
        OrderEvent::DiscountApplied {
            discount,
            discount_amount,
            total,
            ..
        } => {
            let (kind, percent) = match &discount {
                Discount::Percentage { percent } => ("PERCENTAGE", Some(percent.to_string())),
                Discount::Fixed { .. } => ("FIXED", None),
            };
            sqlx::query(
                "UPDATE orders SET discount_kind = $1, discount_percent = $2, discount_amount = $3,
                    discount_amount_minor = $4, total = $5, total_minor = $6, updated_at = $7, last_position = $8
                  WHERE order_id = $9",
            )
            .bind(kind)
            .bind(percent)
            .bind(discount_amount.amount().to_string())
            .bind(discount_amount.minor_units())
            .bind(total.amount().to_string())
            .bind(total.minor_units())
            .bind(&at)
            .bind(event.position)
            .bind(id)
            .execute(&mut *conn)
            .await?
        }
        OrderEvent::OrderConfirmed { confirmed_at } => {
            sqlx::query(
                "UPDATE orders SET status = $1, confirmed_at = $2, updated_at = $3, last_position = $4
                  WHERE order_id = $5",
            )
            .bind(OrderStatus::Confirmed.as_str())
            .bind(crate::rfc3339(confirmed_at))
            .bind(&at)
            .bind(event.position)
            .bind(id)
            .execute(&mut *conn)
            .await?
        }
        OrderEvent::OrderCancelled {
            reason,
            cancelled_at,
        } => {
            sqlx::query(
                "UPDATE orders SET status = $1, cancellation_reason = $2, cancelled_at = $3, updated_at = $4,
                    last_position = $5 WHERE order_id = $6",
            )
            .bind(OrderStatus::Cancelled.as_str())
            .bind(reason)
            .bind(crate::rfc3339(cancelled_at))
            .bind(&at)
            .bind(event.position)
            .bind(id)
            .execute(&mut *conn)
            .await?
        }
        OrderEvent::OrderPaymentRecorded { paid_total, .. }
        | OrderEvent::OrderRefundRecorded { paid_total, .. } => {
            sqlx::query(
                "UPDATE orders SET paid_total = $1, paid_total_minor = $2, updated_at = $3, last_position = $4
                  WHERE order_id = $5",
            )
            .bind(paid_total.amount().to_string())
            .bind(paid_total.minor_units())
            .bind(&at)
            .bind(event.position)
            .bind(id)
            .execute(&mut *conn)
            .await?
        }
        OrderEvent::OrderPaid { paid_at } => {
            sqlx::query(
                "UPDATE orders SET status = $1, paid_at = $2, updated_at = $3, last_position = $4
                  WHERE order_id = $5",
            )
            .bind(OrderStatus::Paid.as_str())
            .bind(crate::rfc3339(paid_at))
            .bind(&at)
            .bind(event.position)
            .bind(id)
            .execute(&mut *conn)
            .await?
        }
        OrderEvent::OrderBalanceReopened { .. } => {
            sqlx::query(
                "UPDATE orders SET status = $1, paid_at = NULL, updated_at = $2, last_position = $3
                  WHERE order_id = $4",
            )
            .bind(OrderStatus::Confirmed.as_str())
            .bind(&at)
            .bind(event.position)
            .bind(id)
            .execute(&mut *conn)
            .await?
        }
        OrderEvent::OrderHandedOver { handed_over_at } => {
            sqlx::query(
                "UPDATE orders SET status = $1, handed_over_at = $2, updated_at = $3, last_position = $4
                  WHERE order_id = $5",
            )
            .bind(OrderStatus::Completed.as_str())
            .bind(crate::rfc3339(handed_over_at))
            .bind(&at)
            .bind(event.position)
            .bind(id)
            .execute(&mut *conn)
            .await?
        }
    };
    crate::expect_one_row(event, done.rows_affected())
}
