//! `promotions`: each promotion's terms and uses, and the orders whose price a promo code set, so
//! a report can show each promotion's effect (seed 004 §1.1(6), "effectiveness of promotions").
//!
//! Tables `promotions` (one row per promotion) and `promotion_orders` (one row per order carrying
//! a promo code's discount); see docs/read-models.md. The order's own `DiscountApplied` (which
//! names its promotion) is the source of an order's discount and total here, and
//! `OrderCancelled` marks it cancelled: a cancelled order counts in no effect, as its use is given
//! back.

use aggregates::order::{Discount, OrderEvent};
use aggregates::promotion::PromotionEvent;
use aggregates::vehicle::Condition;
use eventstore::RecordedEvent;
use futures::future::BoxFuture;
use sqlx::AnyConnection;

use crate::runtime::{ProjectionError, Projector};

pub struct Promotions;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS promotions (
        promotion_id          text    PRIMARY KEY,
        code                  text    NOT NULL UNIQUE,
        name                  text    NOT NULL,
        discount_kind         text    NOT NULL,
        discount_percent      text,
        discount_amount       text,
        discount_amount_minor integer,
        discount_currency     text,
        valid_from            text    NOT NULL,
        valid_until           text    NOT NULL,
        brands                text    NOT NULL,
        models                text    NOT NULL,
        conditions            text    NOT NULL,
        total_uses            integer NOT NULL,
        uses_per_customer     integer NOT NULL,
        uses                  integer NOT NULL,
        status                text    NOT NULL,
        end_reason            text,
        created_at            text    NOT NULL,
        ended_at              text,
        last_position         integer NOT NULL
    ) STRICT",
    "CREATE TABLE IF NOT EXISTS promotion_orders (
        order_id              text    PRIMARY KEY,
        promotion_id          text    NOT NULL,
        currency              text    NOT NULL,
        discount_amount_minor integer NOT NULL,
        total_minor           integer NOT NULL,
        cancelled             integer NOT NULL,
        last_position         integer NOT NULL
    ) STRICT",
    "CREATE INDEX IF NOT EXISTS promotion_orders_promotion ON promotion_orders (promotion_id)",
];

impl Projector for Promotions {
    fn name(&self) -> &'static str {
        "promotions"
    }

    fn version(&self) -> i64 {
        1
    }

    fn tables(&self) -> &'static [&'static str] {
        &["promotions", "promotion_orders"]
    }

    fn schema(&self) -> &'static [&'static str] {
        SCHEMA
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        // The aggregate types `apply` dispatches on; every other event leaves its tables alone.
        Some(&["Promotion", "Order"])
    }

    fn apply<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        event: &'a RecordedEvent,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(apply(conn, event))
    }
}

/// The stable name of a vehicle condition, as the catalog shows it.
fn condition_name(condition: Condition) -> &'static str {
    match condition {
        Condition::New => "NEW",
        Condition::Used => "USED",
    }
}

async fn apply(conn: &mut AnyConnection, event: &RecordedEvent) -> Result<(), ProjectionError> {
    match event.aggregate_type.as_str() {
        "Promotion" => apply_promotion(conn, event).await,
        "Order" => apply_order(conn, event).await,
        _ => Ok(()),
    }
}

async fn apply_promotion(
    conn: &mut AnyConnection,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
    let id = event.aggregate_id.as_str();
    let done = match event.decode::<PromotionEvent>()? {
        PromotionEvent::PromotionCreated { terms, created_at } => {
            let (kind, percent, amount) = match &terms.discount {
                Discount::Percentage { percent } => ("PERCENTAGE", Some(percent.to_string()), None),
                Discount::Fixed { amount } => ("FIXED", None, Some(*amount)),
            };
            let conditions: Vec<&str> = terms
                .conditions
                .iter()
                .map(|c| condition_name(*c))
                .collect();
            sqlx::query(
                "INSERT INTO promotions (promotion_id, code, name, discount_kind, discount_percent,
                    discount_amount, discount_amount_minor, discount_currency, valid_from, valid_until,
                    brands, models, conditions, total_uses, uses_per_customer, uses, status, end_reason,
                    created_at, ended_at, last_position)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 0, 'ACTIVE',
                    NULL, $16, NULL, $17)",
            )
            .bind(id)
            .bind(&terms.code)
            .bind(&terms.name)
            .bind(kind)
            .bind(percent)
            .bind(amount.map(|a| a.amount().to_string()))
            .bind(amount.map(|a| a.minor_units()))
            .bind(amount.map(|a| a.currency().code().to_string()))
            .bind(terms.valid_from.to_string())
            .bind(terms.valid_until.to_string())
            .bind(terms.brands.join("\n"))
            .bind(terms.models.join("\n"))
            .bind(conditions.join("\n"))
            .bind(i64::from(terms.total_uses))
            .bind(i64::from(terms.uses_per_customer))
            .bind(crate::rfc3339(created_at))
            .bind(event.position)
            .execute(&mut *conn)
            .await?
        }
        PromotionEvent::PromotionEnded { reason, ended_at } => {
            sqlx::query(
                "UPDATE promotions SET status = 'ENDED', end_reason = $1, ended_at = $2,
                    last_position = $3 WHERE promotion_id = $4",
            )
            .bind(reason)
            .bind(crate::rfc3339(ended_at))
            .bind(event.position)
            .bind(id)
            .execute(&mut *conn)
            .await?
        }
        PromotionEvent::PromoCodeRedeemed { uses, .. }
        | PromotionEvent::PromoCodeReleased { uses, .. } => {
            sqlx::query(
                "UPDATE promotions SET uses = $1, last_position = $2 WHERE promotion_id = $3",
            )
            .bind(i64::from(uses))
            .bind(event.position)
            .bind(id)
            .execute(&mut *conn)
            .await?
        }
    };
    crate::expect_one_row(event, done.rows_affected())
}

async fn apply_order(
    conn: &mut AnyConnection,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
    let id = event.aggregate_id.as_str();
    match event.decode::<OrderEvent>()? {
        OrderEvent::DiscountApplied {
            discount_amount,
            total,
            promotion_id: Some(promotion_id),
            ..
        } => {
            // A code's discount is applied once per order (nothing replaces it), so this inserts;
            // a desk discount before it left no row.
            let done = sqlx::query(
                "INSERT INTO promotion_orders (order_id, promotion_id, currency, discount_amount_minor,
                    total_minor, cancelled, last_position)
                 VALUES ($1, $2, $3, $4, $5, 0, $6)",
            )
            .bind(id)
            .bind(promotion_id.to_string())
            .bind(total.currency().code())
            .bind(discount_amount.minor_units())
            .bind(total.minor_units())
            .bind(event.position)
            .execute(&mut *conn)
            .await?;
            crate::expect_one_row(event, done.rows_affected())
        }
        OrderEvent::OrderCancelled { .. } => {
            // Only orders that carry a code have a row; others update nothing.
            sqlx::query(
                "UPDATE promotion_orders SET cancelled = 1, last_position = $1 WHERE order_id = $2",
            )
            .bind(event.position)
            .bind(id)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }
        _ => Ok(()),
    }
}
