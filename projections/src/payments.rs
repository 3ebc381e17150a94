//! `payments`: every payment towards an order, its status and refunds, and whether its order has
//! recorded it.
//!
//! Tables `payments` (one row per payment) and `payment_refunds` (one row per refund), see
//! docs/read-models.md. Besides the payment events it reads the order's `OrderPaymentRecorded` and
//! `OrderRefundRecorded`, so a completed payment its order has not (yet) recorded is visible.

use aggregates::order::OrderEvent;
use aggregates::payment::{PaymentEvent, PaymentMethod, PaymentStatus};
use eventstore::RecordedEvent;
use futures::future::BoxFuture;
use sqlx::AnyConnection;

use crate::runtime::{ProjectionError, Projector};

pub struct Payments;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS payments (
        payment_id             text    PRIMARY KEY,
        order_id               text    NOT NULL,
        customer_id            text    NOT NULL,
        method                 text    NOT NULL,
        status                 text    NOT NULL,
        currency               text    NOT NULL,
        amount                 text    NOT NULL,
        amount_minor           integer NOT NULL,
        refunded_total         text    NOT NULL,
        refunded_total_minor   integer NOT NULL,
        card_last4             text,
        gateway_transaction_id text,
        loan_id                text,
        failure_reason         text,
        cancellation_reason    text,
        initiated_at           text    NOT NULL,
        processing_started_at  text,
        completed_at           text,
        failed_at              text,
        cancelled_at           text,
        recorded_on_order_at   text,
        initiated_position     integer NOT NULL,
        updated_at             text    NOT NULL,
        last_position          integer NOT NULL
    ) STRICT",
    "CREATE INDEX IF NOT EXISTS payments_order ON payments (order_id, initiated_position)",
    "CREATE INDEX IF NOT EXISTS payments_customer ON payments (customer_id, initiated_position)",
    "CREATE INDEX IF NOT EXISTS payments_position ON payments (initiated_position)",
    "CREATE TABLE IF NOT EXISTS payment_refunds (
        refund_id            text    NOT NULL,
        payment_id           text    NOT NULL,
        order_id             text    NOT NULL,
        currency             text    NOT NULL,
        amount               text    NOT NULL,
        amount_minor         integer NOT NULL,
        reason               text    NOT NULL,
        refunded_at          text    NOT NULL,
        recorded_on_order_at text,
        refund_position      integer NOT NULL,
        updated_at           text    NOT NULL,
        last_position        integer NOT NULL,
        PRIMARY KEY (payment_id, refund_id)
    ) STRICT",
    "CREATE INDEX IF NOT EXISTS payment_refunds_order ON payment_refunds (order_id, refund_position)",
];

impl Projector for Payments {
    fn name(&self) -> &'static str {
        "payments"
    }

    fn version(&self) -> i64 {
        1
    }

    fn tables(&self) -> &'static [&'static str] {
        &["payments", "payment_refunds"]
    }

    fn schema(&self) -> &'static [&'static str] {
        SCHEMA
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        // The aggregate types `apply` dispatches on; every other event leaves its tables alone.
        Some(&["Payment", "Order"])
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
        "Payment" => apply_payment(conn, event).await,
        "Order" => apply_order(conn, event).await,
        _ => Ok(()),
    }
}

/// Sets `status` and one business-time column of the payment's row.
async fn set_status(
    conn: &mut AnyConnection,
    event: &RecordedEvent,
    status: PaymentStatus,
    column: &str,
    at: chrono::DateTime<chrono::Utc>,
    reason: Option<(&str, String)>,
) -> Result<u64, ProjectionError> {
    // `column` and the reason's column are literals from this file, never input.
    let (reason_column, reason) = reason.unzip();
    let reason_set = reason_column
        .map(|column| format!(", {column} = $6"))
        .unwrap_or_default();
    let sql = format!(
        "UPDATE payments SET status = $1, {column} = $2, updated_at = $3, last_position = $4{reason_set}
          WHERE payment_id = $5"
    );
    let mut query = sqlx::query(&sql)
        .bind(status.as_str())
        .bind(crate::rfc3339(at))
        .bind(crate::rfc3339(event.recorded_at))
        .bind(event.position)
        .bind(event.aggregate_id.as_str());
    if let Some(reason) = reason {
        query = query.bind(reason);
    }
    Ok(query.execute(&mut *conn).await?.rows_affected())
}

async fn apply_payment(
    conn: &mut AnyConnection,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
    let id = event.aggregate_id.as_str();
    let at = crate::rfc3339(event.recorded_at);
    let rows = match event.decode::<PaymentEvent>()? {
        PaymentEvent::PaymentInitiated {
            order_id,
            customer_id,
            amount,
            method,
            initiated_at,
        } => {
            let (card_last4, loan_id) = match &method {
                PaymentMethod::Card { last4 } => (Some(last4.as_str().to_owned()), None),
                PaymentMethod::Credit { loan_id } => (None, Some(loan_id.to_string())),
                PaymentMethod::BankTransfer | PaymentMethod::Cash => (None, None),
            };
            sqlx::query(
                "INSERT INTO payments (payment_id, order_id, customer_id, method, status, currency, amount,
                    amount_minor, refunded_total, refunded_total_minor, card_last4, gateway_transaction_id,
                    loan_id, failure_reason, cancellation_reason, initiated_at, processing_started_at,
                    completed_at, failed_at, cancelled_at, recorded_on_order_at, initiated_position,
                    updated_at, last_position)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, '0.00', 0, $9, NULL, $10, NULL, NULL, $11, NULL, NULL,
                    NULL, NULL, NULL, $12, $13, $12)",
            )
            .bind(id)
            .bind(order_id.to_string())
            .bind(customer_id.to_string())
            .bind(method.kind().as_str())
            .bind(PaymentStatus::Pending.as_str())
            .bind(amount.currency().code())
            .bind(amount.amount().to_string())
            .bind(amount.minor_units())
            .bind(card_last4)
            .bind(loan_id)
            .bind(crate::rfc3339(initiated_at))
            .bind(event.position)
            .bind(&at)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        }
        PaymentEvent::PaymentProcessingStarted {
            gateway_transaction_id,
            started_at,
        } => sqlx::query(
            "UPDATE payments SET status = $1, gateway_transaction_id = $2, processing_started_at = $3,
                updated_at = $4, last_position = $5 WHERE payment_id = $6",
        )
        .bind(PaymentStatus::Processing.as_str())
        .bind(gateway_transaction_id)
        .bind(crate::rfc3339(started_at))
        .bind(&at)
        .bind(event.position)
        .bind(id)
        .execute(&mut *conn)
        .await?
        .rows_affected(),
        PaymentEvent::PaymentCompleted { completed_at } => {
            set_status(
                conn,
                event,
                PaymentStatus::Completed,
                "completed_at",
                completed_at,
                None,
            )
            .await?
        }
        PaymentEvent::PaymentFailed { reason, failed_at } => {
            set_status(
                conn,
                event,
                PaymentStatus::Failed,
                "failed_at",
                failed_at,
                Some(("failure_reason", reason)),
            )
            .await?
        }
        PaymentEvent::PaymentCancelled {
            reason,
            cancelled_at,
        } => {
            set_status(
                conn,
                event,
                PaymentStatus::Cancelled,
                "cancelled_at",
                cancelled_at,
                Some(("cancellation_reason", reason)),
            )
            .await?
        }
        PaymentEvent::PaymentRefunded {
            refund_id,
            amount,
            reason,
            refunded_total,
            refunded_at,
        } => {
            let updated = sqlx::query(
                "UPDATE payments SET refunded_total = $1, refunded_total_minor = $2,
                    status = CASE WHEN $2 = amount_minor THEN $3 ELSE status END,
                    updated_at = $4, last_position = $5
                  WHERE payment_id = $6",
            )
            .bind(refunded_total.amount().to_string())
            .bind(refunded_total.minor_units())
            .bind(PaymentStatus::Refunded.as_str())
            .bind(&at)
            .bind(event.position)
            .bind(id)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            crate::expect_one_row(event, updated)?;
            sqlx::query(
                "INSERT INTO payment_refunds (refund_id, payment_id, order_id, currency, amount, amount_minor,
                    reason, refunded_at, recorded_on_order_at, refund_position, updated_at, last_position)
                 SELECT $1, payment_id, order_id, currency, $2, $3, $4, $5, NULL, $6, $7, $6
                   FROM payments WHERE payment_id = $8",
            )
            .bind(refund_id.to_string())
            .bind(amount.amount().to_string())
            .bind(amount.minor_units())
            .bind(reason)
            .bind(crate::rfc3339(refunded_at))
            .bind(event.position)
            .bind(&at)
            .bind(id)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        }
    };
    crate::expect_one_row(event, rows)
}

async fn apply_order(
    conn: &mut AnyConnection,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
    let at = crate::rfc3339(event.recorded_at);
    let rows = match event.decode::<OrderEvent>()? {
        OrderEvent::OrderPaymentRecorded {
            payment_id,
            recorded_at,
            ..
        } => sqlx::query(
            "UPDATE payments SET recorded_on_order_at = $1, updated_at = $2, last_position = $3
              WHERE payment_id = $4 AND order_id = $5",
        )
        .bind(crate::rfc3339(recorded_at))
        .bind(&at)
        .bind(event.position)
        .bind(payment_id.to_string())
        .bind(event.aggregate_id.as_str())
        .execute(&mut *conn)
        .await?
        .rows_affected(),
        OrderEvent::OrderRefundRecorded {
            payment_id,
            refund_id,
            recorded_at,
            ..
        } => sqlx::query(
            "UPDATE payment_refunds SET recorded_on_order_at = $1, updated_at = $2, last_position = $3
              WHERE payment_id = $4 AND refund_id = $5 AND order_id = $6",
        )
        .bind(crate::rfc3339(recorded_at))
        .bind(&at)
        .bind(event.position)
        .bind(payment_id.to_string())
        .bind(refund_id.to_string())
        .bind(event.aggregate_id.as_str())
        .execute(&mut *conn)
        .await?
        .rows_affected(),
        _ => return Ok(()),
    };
    crate::expect_one_row(event, rows)
}
