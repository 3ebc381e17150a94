//! `customer_history`: every event that touches a customer, across all aggregates, in global order,
//! each with a one-line summary in plain English; and one summary row per customer (money in it per
//! currency).
//!
//! # Which events touch a customer
//! - `Customer`: every event of the customer's own stream.
//! - `Order`: every event of an order whose `OrderDrafted.customer_id` is the customer.
//! - `Payment`: every event of a payment whose `PaymentInitiated.customer_id` is the customer.
//! - `Loan`: every event of a loan whose `LoanApplied.customer_id` is the customer.
//! - `Policy`: every event (quotes, the policy, its claims) of a policy stream whose
//!   `QuoteRequested.customer_id` is the customer; `PolicyIssued.holder` names the holder from then
//!   on (the same person in practice; if not, the later events go to the holder).
//! - `Booking`: every event of a booking whose `ServiceBooked.customer_id` is the customer.
//! - `Vehicle`: only `VehicleReserved`, `VehicleReservationReleased` and `VehicleSold` whose
//!   `order_id` is one of the customer's orders, and `VehicleServiceRecorded` whose `booking_id` is
//!   one of the customer's bookings. Stocking, repricing, relocation and withdrawal concern the
//!   dealership's stock, not a customer.
//! - `MechanicDay` (the workshop's calendar): none; the booking's own events already say it.
//!
//! An event whose stream's owner is not known (e.g. a vehicle reserved for an order the log never
//! drafted) touches nobody and is skipped.
//!
//! # Tables
//! `customer_history` (one row per event per customer), `customer_summary` (one row per registered
//! customer) and `customer_summary_money` (its money, one row per currency), plus this projector's
//! own lookup tables `customer_history_orders`, `customer_history_payments`, `customer_history_loans`, `customer_history_policies`,
//! `customer_history_claims` and `customer_history_bookings` (who owns what, and the state the summary
//! is counted from). See docs/read-models.md.

use aggregates::bookings::BookingEvent;
use aggregates::customer::CustomerEvent;
use aggregates::loan::LoanEvent;
use aggregates::money::Money;
use aggregates::order::{Discount, OrderEvent};
use aggregates::payment::{PaymentEvent, PaymentMethod};
use aggregates::policy::PolicyEvent;
use aggregates::vehicle::VehicleEvent;
use eventstore::RecordedEvent;
use futures::future::BoxFuture;
use sqlx::AnyConnection;

use crate::runtime::{ProjectionError, Projector};

pub struct CustomerHistory;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS customer_history (
        customer_id    text    NOT NULL,
        position       integer NOT NULL,
        recorded_at    text    NOT NULL,
        aggregate_type text    NOT NULL,
        aggregate_id   text    NOT NULL,
        event_type     text    NOT NULL,
        summary        text    NOT NULL,
        PRIMARY KEY (customer_id, position)
    ) STRICT",
    "CREATE TABLE IF NOT EXISTS customer_summary (
        customer_id                 text    PRIMARY KEY,
        orders_count                integer NOT NULL,
        orders_completed            integer NOT NULL,
        active_loans                integer NOT NULL,
        active_policies             integer NOT NULL,
        open_claims                 integer NOT NULL,
        scheduled_bookings          integer NOT NULL,
        next_booking_start          text,
        updated_at                  text    NOT NULL,
        last_position               integer NOT NULL
    ) STRICT",
    "CREATE TABLE IF NOT EXISTS customer_summary_money (
        customer_id                 text    NOT NULL,
        currency                    text    NOT NULL,
        total_paid_minor            integer NOT NULL,
        outstanding_principal_minor integer NOT NULL,
        PRIMARY KEY (customer_id, currency)
    ) STRICT",
    "CREATE TABLE IF NOT EXISTS customer_history_orders (
        order_id         text    PRIMARY KEY,
        customer_id      text    NOT NULL,
        status           text    NOT NULL,
        currency         text    NOT NULL,
        paid_total_minor integer NOT NULL
    ) STRICT",
    "CREATE INDEX IF NOT EXISTS customer_history_orders_customer ON customer_history_orders (customer_id)",
    "CREATE TABLE IF NOT EXISTS customer_history_payments (
        payment_id  text    PRIMARY KEY,
        customer_id text    NOT NULL,
        order_id    text    NOT NULL,
        amount      text    NOT NULL,
        method      text    NOT NULL
    ) STRICT",
    "CREATE TABLE IF NOT EXISTS customer_history_loans (
        loan_id                     text    PRIMARY KEY,
        customer_id                 text    NOT NULL,
        status                      text    NOT NULL,
        currency                    text    NOT NULL,
        loan_amount                 text    NOT NULL,
        term_months                 integer NOT NULL,
        outstanding_principal_minor integer NOT NULL
    ) STRICT",
    "CREATE INDEX IF NOT EXISTS customer_history_loans_customer ON customer_history_loans (customer_id)",
    "CREATE TABLE IF NOT EXISTS customer_history_policies (
        policy_id     text PRIMARY KEY,
        customer_id   text NOT NULL,
        status        text NOT NULL,
        policy_number text
    ) STRICT",
    "CREATE INDEX IF NOT EXISTS customer_history_policies_customer ON customer_history_policies (customer_id)",
    "CREATE TABLE IF NOT EXISTS customer_history_claims (
        policy_id   text NOT NULL,
        claim_id    text NOT NULL,
        customer_id text NOT NULL,
        status      text NOT NULL,
        PRIMARY KEY (policy_id, claim_id)
    ) STRICT",
    "CREATE INDEX IF NOT EXISTS customer_history_claims_customer ON customer_history_claims (customer_id)",
    "CREATE TABLE IF NOT EXISTS customer_history_bookings (
        booking_id  text PRIMARY KEY,
        customer_id text NOT NULL,
        status      text NOT NULL,
        slot_start  text NOT NULL
    ) STRICT",
    "CREATE INDEX IF NOT EXISTS customer_history_bookings_customer ON customer_history_bookings (customer_id, status, slot_start)",
];

const TABLES: &[&str] = &[
    "customer_history",
    "customer_summary",
    "customer_summary_money",
    "customer_history_orders",
    "customer_history_payments",
    "customer_history_loans",
    "customer_history_policies",
    "customer_history_claims",
    "customer_history_bookings",
];

impl Projector for CustomerHistory {
    fn name(&self) -> &'static str {
        "customer_history"
    }

    fn version(&self) -> i64 {
        1
    }

    fn tables(&self) -> &'static [&'static str] {
        TABLES
    }

    fn schema(&self) -> &'static [&'static str] {
        SCHEMA
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        // The aggregate types `apply` dispatches on; every other event leaves its tables alone.
        Some(&[
            "Customer", "Order", "Payment", "Loan", "Policy", "Booking", "Vehicle",
        ])
    }

    fn apply<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        event: &'a RecordedEvent,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(apply(conn, event))
    }
}

/// Money as people read it: `1 211 250.00 RUB` (thousands grouped by spaces, two places).
pub fn money_text(money: &Money) -> String {
    let amount = money.amount().round_dp(2);
    let text = format!("{amount:.2}");
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text.as_str()),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "00"));
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(' ');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped}.{fraction} {}", money.currency().code())
}

fn method_text(method: &PaymentMethod) -> String {
    match method {
        PaymentMethod::Card { last4 } => format!("card ending {}", last4.as_str()),
        PaymentMethod::BankTransfer => "bank transfer".into(),
        PaymentMethod::Cash => "cash".into(),
        PaymentMethod::Credit { loan_id } => format!("credit from loan {loan_id}"),
    }
}

fn lowercase(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', " ")
}

async fn apply(conn: &mut AnyConnection, event: &RecordedEvent) -> Result<(), ProjectionError> {
    let touched = match event.aggregate_type.as_str() {
        "Customer" => customer(conn, event).await?,
        "Order" => order(conn, event).await?,
        "Payment" => payment(conn, event).await?,
        "Loan" => loan(conn, event).await?,
        "Policy" => policy(conn, event).await?,
        "Booking" => booking(conn, event).await?,
        "Vehicle" => vehicle(conn, event).await?,
        _ => None,
    };
    let Some((customer_id, summary)) = touched else {
        return Ok(());
    };
    sqlx::query(
        "INSERT INTO customer_history (customer_id, position, recorded_at, aggregate_type, aggregate_id,
            event_type, summary)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&customer_id)
    .bind(event.position)
    .bind(crate::rfc3339(event.recorded_at))
    .bind(&event.aggregate_type)
    .bind(&event.aggregate_id)
    .bind(&event.event_type)
    .bind(summary)
    .execute(&mut *conn)
    .await?;
    refresh_summary(conn, event, &customer_id).await
}

/// Recounts the customer's summary row and money totals from this projector's own lookup tables.
async fn refresh_summary(
    conn: &mut AnyConnection,
    event: &RecordedEvent,
    customer_id: &str,
) -> Result<(), ProjectionError> {
    let updated = sqlx::query(
        "UPDATE customer_summary SET
            orders_count = (SELECT count(*) FROM customer_history_orders WHERE customer_id = $1),
            orders_completed = (SELECT count(*) FROM customer_history_orders
                                 WHERE customer_id = $1 AND status = 'COMPLETED'),
            active_loans = (SELECT count(*) FROM customer_history_loans
                             WHERE customer_id = $1 AND status = 'ACTIVE'),
            active_policies = (SELECT count(*) FROM customer_history_policies
                                WHERE customer_id = $1 AND status = 'ACTIVE'),
            open_claims = (SELECT count(*) FROM customer_history_claims
                            WHERE customer_id = $1 AND status IN ('FILED', 'UNDER_REVIEW', 'APPROVED')),
            scheduled_bookings = (SELECT count(*) FROM customer_history_bookings
                                   WHERE customer_id = $1 AND status = 'SCHEDULED'),
            next_booking_start = (SELECT min(slot_start) FROM customer_history_bookings
                                   WHERE customer_id = $1 AND status = 'SCHEDULED'),
            updated_at = $2, last_position = $3
          WHERE customer_id = $1",
    )
    .bind(customer_id)
    .bind(crate::rfc3339(event.recorded_at))
    .bind(event.position)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    crate::expect_one_row(event, updated)?;
    // Money is summed per currency: a customer may buy one car in roubles and another in yuan.
    sqlx::query("DELETE FROM customer_summary_money WHERE customer_id = $1")
        .bind(customer_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO customer_summary_money (customer_id, currency, total_paid_minor, outstanding_principal_minor)
         SELECT $1, currency, CAST(sum(paid) AS BIGINT), CAST(sum(outstanding) AS BIGINT) FROM (
             SELECT currency, paid_total_minor AS paid, 0 AS outstanding
               FROM customer_history_orders WHERE customer_id = $1
             UNION ALL
             SELECT currency, 0, outstanding_principal_minor
               FROM customer_history_loans WHERE customer_id = $1 AND status IN ('ACTIVE', 'DEFAULTED'))
             AS amounts
          GROUP BY currency
         HAVING sum(paid) <> 0 OR sum(outstanding) <> 0",
    )
    .bind(customer_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

type Touched = Option<(String, String)>;

async fn owner(
    conn: &mut AnyConnection,
    table: &str,
    key: &str,
    id: &str,
) -> Result<Option<String>, ProjectionError> {
    // `table` and `key` are literals from this file, never input.
    Ok(
        sqlx::query_scalar(&format!("SELECT customer_id FROM {table} WHERE {key} = $1"))
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// The owner of an existing stream: an update event for a stream this projector never saw created
/// means the log and the read model disagree.
async fn known_owner(
    conn: &mut AnyConnection,
    event: &RecordedEvent,
    table: &str,
    key: &str,
) -> Result<String, ProjectionError> {
    owner(conn, table, key, &event.aggregate_id)
        .await?
        .ok_or_else(|| {
            crate::inconsistent(
                event,
                format!("no {key} {} seen before", event.aggregate_id),
            )
        })
}

async fn set_status(
    conn: &mut AnyConnection,
    event: &RecordedEvent,
    table: &str,
    key: &str,
    status: &str,
) -> Result<(), ProjectionError> {
    // `table` and `key` are literals from this file, never input.
    let rows = sqlx::query(&format!("UPDATE {table} SET status = $1 WHERE {key} = $2"))
        .bind(status)
        .bind(&event.aggregate_id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    crate::expect_one_row(event, rows)
}

async fn customer(
    conn: &mut AnyConnection,
    event: &RecordedEvent,
) -> Result<Touched, ProjectionError> {
    let id = event.aggregate_id.clone();
    let summary = match event.decode::<CustomerEvent>()? {
        CustomerEvent::CustomerRegistered { full_name, .. } => {
            sqlx::query(
                "INSERT INTO customer_summary (customer_id, orders_count, orders_completed, active_loans,
                    active_policies, open_claims, scheduled_bookings, next_booking_start, updated_at,
                    last_position)
                 VALUES ($1, 0, 0, 0, 0, 0, 0, NULL, $2, $3)",
            )
            .bind(&id)
            .bind(crate::rfc3339(event.recorded_at))
            .bind(event.position)
            .execute(&mut *conn)
            .await?;
            format!("Registered as a customer: {full_name}")
        }
        CustomerEvent::CustomerContactDetailsChanged {
            email,
            phone,
            address,
        } => {
            let changed: Vec<&str> = [
                email.is_some().then_some("email"),
                phone.is_some().then_some("phone"),
                address.is_some().then_some("address"),
            ]
            .into_iter()
            .flatten()
            .collect();
            format!("Contact details changed: {}", changed.join(", "))
        }
    };
    Ok(Some((id, summary)))
}

async fn order(
    conn: &mut AnyConnection,
    event: &RecordedEvent,
) -> Result<Touched, ProjectionError> {
    let id = event.aggregate_id.as_str();
    let decoded = event.decode::<OrderEvent>()?;
    if let OrderEvent::OrderDrafted {
        customer_id,
        vehicle_id,
        price,
        ..
    } = &decoded
    {
        sqlx::query(
            "INSERT INTO customer_history_orders (order_id, customer_id, status, currency, paid_total_minor)
             VALUES ($1, $2, 'DRAFT', $3, 0)",
        )
        .bind(id)
        .bind(customer_id.to_string())
        .bind(price.currency().code())
        .execute(&mut *conn)
        .await?;
        let summary = format!(
            "Order {id} drafted for vehicle {vehicle_id} at {}",
            money_text(price)
        );
        return Ok(Some((customer_id.to_string(), summary)));
    }
    let customer_id = known_owner(conn, event, "customer_history_orders", "order_id").await?;
    let summary = match decoded {
        OrderEvent::OrderDrafted { .. } => unreachable!("handled above"),
        OrderEvent::DiscountApplied {
            discount,
            discount_amount,
            total,
            ..
        } => {
            let how = match discount {
                Discount::Percentage { percent } => format!(" ({percent}%)"),
                Discount::Fixed { .. } => String::new(),
            };
            format!(
                "Discount of {}{how} applied to order {id}: total now {}",
                money_text(&discount_amount),
                money_text(&total)
            )
        }
        OrderEvent::OrderConfirmed { .. } => {
            set_status(
                conn,
                event,
                "customer_history_orders",
                "order_id",
                "CONFIRMED",
            )
            .await?;
            format!("Order {id} confirmed")
        }
        OrderEvent::OrderCancelled { reason, .. } => {
            set_status(
                conn,
                event,
                "customer_history_orders",
                "order_id",
                "CANCELLED",
            )
            .await?;
            format!("Order {id} cancelled: {reason}")
        }
        OrderEvent::OrderPaymentRecorded {
            amount,
            method,
            paid_total,
            ..
        } => {
            set_paid(conn, event, &paid_total).await?;
            format!(
                "Order {id} recorded a {} payment of {}: {} paid so far",
                lowercase(method.as_str()),
                money_text(&amount),
                money_text(&paid_total)
            )
        }
        OrderEvent::OrderPaid { .. } => {
            set_status(conn, event, "customer_history_orders", "order_id", "PAID").await?;
            format!("Order {id} fully paid")
        }
        OrderEvent::OrderRefundRecorded {
            amount, paid_total, ..
        } => {
            set_paid(conn, event, &paid_total).await?;
            format!(
                "Order {id} recorded a refund of {}: {} paid so far",
                money_text(&amount),
                money_text(&paid_total)
            )
        }
        OrderEvent::OrderBalanceReopened { .. } => {
            set_status(
                conn,
                event,
                "customer_history_orders",
                "order_id",
                "CONFIRMED",
            )
            .await?;
            format!("Order {id} has a balance due again after a refund")
        }
        OrderEvent::OrderHandedOver { .. } => {
            set_status(
                conn,
                event,
                "customer_history_orders",
                "order_id",
                "COMPLETED",
            )
            .await?;
            format!("Order {id} completed: the car was handed over")
        }
    };
    Ok(Some((customer_id, summary)))
}

async fn set_paid(
    conn: &mut AnyConnection,
    event: &RecordedEvent,
    paid_total: &Money,
) -> Result<(), ProjectionError> {
    let rows = sqlx::query(
        "UPDATE customer_history_orders SET paid_total_minor = $1 WHERE order_id = $2 AND currency = $3",
    )
    .bind(paid_total.minor_units())
    .bind(&event.aggregate_id)
    .bind(paid_total.currency().code())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    crate::expect_one_row(event, rows)
}

async fn payment(
    conn: &mut AnyConnection,
    event: &RecordedEvent,
) -> Result<Touched, ProjectionError> {
    let id = event.aggregate_id.as_str();
    let decoded = event.decode::<PaymentEvent>()?;
    if let PaymentEvent::PaymentInitiated {
        order_id,
        customer_id,
        amount,
        method,
        ..
    } = &decoded
    {
        let method = method_text(method);
        sqlx::query(
            "INSERT INTO customer_history_payments (payment_id, customer_id, order_id, amount, method)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(customer_id.to_string())
        .bind(order_id.to_string())
        .bind(money_text(amount))
        .bind(&method)
        .execute(&mut *conn)
        .await?;
        let summary = format!(
            "Payment of {} by {method} started towards order {order_id}",
            money_text(amount)
        );
        return Ok(Some((customer_id.to_string(), summary)));
    }
    let (customer_id, order_id, amount, method): (String, String, String, String) = sqlx::query_as(
        "SELECT customer_id, order_id, amount, method FROM customer_history_payments WHERE payment_id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| crate::inconsistent(event, format!("no payment {id} seen before")))?;
    let summary = match decoded {
        PaymentEvent::PaymentInitiated { .. } => unreachable!("handled above"),
        PaymentEvent::PaymentProcessingStarted {
            gateway_transaction_id,
            ..
        } => format!(
            "Payment of {amount} by {method} sent to the gateway (transaction {gateway_transaction_id})"
        ),
        PaymentEvent::PaymentCompleted { .. } => {
            format!("Paid {amount} by {method} towards order {order_id}")
        }
        PaymentEvent::PaymentFailed { reason, .. } => {
            format!("Payment of {amount} by {method} failed: {reason}")
        }
        PaymentEvent::PaymentCancelled { reason, .. } => {
            format!("Payment of {amount} by {method} cancelled: {reason}")
        }
        PaymentEvent::PaymentRefunded {
            amount: refund,
            reason,
            ..
        } => format!(
            "Refunded {} of the {amount} payment by {method}: {reason}",
            money_text(&refund)
        ),
    };
    Ok(Some((customer_id, summary)))
}

async fn loan(conn: &mut AnyConnection, event: &RecordedEvent) -> Result<Touched, ProjectionError> {
    let id = event.aggregate_id.as_str();
    let decoded = event.decode::<LoanEvent>()?;
    if let LoanEvent::LoanApplied {
        order_id,
        customer_id,
        details,
        ..
    } = &decoded
    {
        sqlx::query(
            "INSERT INTO customer_history_loans (loan_id, customer_id, status, currency, loan_amount,
                term_months, outstanding_principal_minor)
             VALUES ($1, $2, 'DRAFT', $3, $4, $5, 0)",
        )
        .bind(id)
        .bind(customer_id.to_string())
        .bind(details.loan_amount.currency().code())
        .bind(money_text(&details.loan_amount))
        .bind(i64::from(details.term_months))
        .execute(&mut *conn)
        .await?;
        let summary = format!(
            "Loan applied for: {} over {} months towards order {order_id}",
            money_text(&details.loan_amount),
            details.term_months
        );
        return Ok(Some((customer_id.to_string(), summary)));
    }
    let customer_id = known_owner(conn, event, "customer_history_loans", "loan_id").await?;
    let (loan_amount, term_months): (String, i64) = sqlx::query_as(
        "SELECT loan_amount, term_months FROM customer_history_loans WHERE loan_id = $1",
    )
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    let summary = match decoded {
        LoanEvent::LoanApplied { .. } => unreachable!("handled above"),
        LoanEvent::LoanApplicationUpdated { details } => {
            let rows = sqlx::query(
                "UPDATE customer_history_loans SET loan_amount = $1, term_months = $2 WHERE loan_id = $3",
            )
            .bind(money_text(&details.loan_amount))
            .bind(i64::from(details.term_months))
            .bind(id)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            crate::expect_one_row(event, rows)?;
            format!(
                "Loan application updated: {} over {} months",
                money_text(&details.loan_amount),
                details.term_months
            )
        }
        LoanEvent::LoanApplicationSubmitted { .. } => {
            set_status(
                conn,
                event,
                "customer_history_loans",
                "loan_id",
                "SUBMITTED",
            )
            .await?;
            format!("Loan application for {loan_amount} submitted")
        }
        LoanEvent::LoanReviewStarted { .. } => {
            set_status(
                conn,
                event,
                "customer_history_loans",
                "loan_id",
                "UNDER_REVIEW",
            )
            .await?;
            format!("Loan application for {loan_amount} under review")
        }
        LoanEvent::LoanApproved {
            annual_rate_percent,
            schedule_kind,
            ..
        } => {
            set_status(conn, event, "customer_history_loans", "loan_id", "APPROVED").await?;
            format!(
                "Loan approved: {loan_amount} at {}% for {term_months} months ({} schedule)",
                annual_rate_percent.normalize(),
                lowercase(schedule_kind.as_str())
            )
        }
        LoanEvent::LoanRejected { reasons, .. } => {
            set_status(conn, event, "customer_history_loans", "loan_id", "REJECTED").await?;
            let rules: Vec<String> = reasons
                .iter()
                .map(|finding| lowercase(finding.rule.as_str()))
                .collect();
            format!("Loan for {loan_amount} rejected: {}", rules.join(", "))
        }
        LoanEvent::LoanDisbursed {
            disbursed_on,
            principal,
            ..
        } => {
            let rows = sqlx::query(
                "UPDATE customer_history_loans SET status = 'ACTIVE', outstanding_principal_minor = $1
                  WHERE loan_id = $2",
            )
            .bind(principal.minor_units())
            .bind(id)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            crate::expect_one_row(event, rows)?;
            format!(
                "Loan disbursed: {} paid out on {disbursed_on}",
                money_text(&principal)
            )
        }
        LoanEvent::LoanRepaymentRecorded {
            amount,
            paid_on,
            allocations,
        } => {
            let principal: i64 = allocations.iter().map(|a| a.principal.minor_units()).sum();
            repay(conn, event, principal).await?;
            format!("Loan repayment of {} on {paid_on}", money_text(&amount))
        }
        LoanEvent::LoanRepaidEarly {
            paid_on,
            amount,
            principal,
            interest,
            recalculation,
            ..
        } => {
            repay(conn, event, principal.minor_units()).await?;
            let how = if recalculation.is_some() {
                "partly"
            } else {
                "in full"
            };
            format!(
                "Loan repaid early {how} on {paid_on}: {} ({} principal, {} interest)",
                money_text(&amount),
                money_text(&principal),
                money_text(&interest)
            )
        }
        LoanEvent::InstalmentsFellOverdue {
            as_of, instalments, ..
        } => {
            let numbers: Vec<String> = instalments.iter().map(u32::to_string).collect();
            format!(
                "Loan instalments {} overdue as of {as_of}",
                numbers.join(", ")
            )
        }
        LoanEvent::LoanDefaulted {
            as_of,
            days_past_due,
            ..
        } => {
            set_status(
                conn,
                event,
                "customer_history_loans",
                "loan_id",
                "DEFAULTED",
            )
            .await?;
            format!("Loan defaulted as of {as_of}: {days_past_due} days past due")
        }
        LoanEvent::LoanCompleted { completed_on } => {
            set_status(
                conn,
                event,
                "customer_history_loans",
                "loan_id",
                "COMPLETED",
            )
            .await?;
            format!("Loan repaid in full on {completed_on}")
        }
    };
    Ok(Some((customer_id, summary)))
}

async fn repay(
    conn: &mut AnyConnection,
    event: &RecordedEvent,
    principal_minor: i64,
) -> Result<(), ProjectionError> {
    let rows = sqlx::query(
        "UPDATE customer_history_loans SET outstanding_principal_minor = outstanding_principal_minor - $1
          WHERE loan_id = $2",
    )
    .bind(principal_minor)
    .bind(&event.aggregate_id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    crate::expect_one_row(event, rows)
}

async fn policy(
    conn: &mut AnyConnection,
    event: &RecordedEvent,
) -> Result<Touched, ProjectionError> {
    let id = event.aggregate_id.as_str();
    let decoded = event.decode::<PolicyEvent>()?;
    if let PolicyEvent::QuoteRequested {
        customer_id,
        terms,
        offers,
        vehicle_vin,
        ..
    } = &decoded
    {
        sqlx::query(
            "INSERT INTO customer_history_policies (policy_id, customer_id, status, policy_number)
             VALUES ($1, $2, 'QUOTED', NULL)",
        )
        .bind(id)
        .bind(customer_id.to_string())
        .execute(&mut *conn)
        .await?;
        let summary = format!(
            "{} insurance quote requested for VIN {vehicle_vin}: {} offers",
            terms.product.as_str(),
            offers.len()
        );
        return Ok(Some((customer_id.to_string(), summary)));
    }
    let number: Option<Option<String>> = sqlx::query_scalar(
        "SELECT policy_number FROM customer_history_policies WHERE policy_id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let number = number
        .ok_or_else(|| crate::inconsistent(event, format!("no policy {id} seen before")))?
        .unwrap_or_else(|| id.to_string());
    let summary = match decoded {
        PolicyEvent::QuoteRequested { .. } => unreachable!("handled above"),
        PolicyEvent::PolicyIssued {
            policy_number,
            insurer,
            product,
            holder,
            period_start,
            period_end,
            coverage,
            premium,
            ..
        } => {
            let rows = sqlx::query(
                "UPDATE customer_history_policies SET customer_id = $1, status = 'ISSUED', policy_number = $2
                  WHERE policy_id = $3",
            )
            .bind(holder.to_string())
            .bind(&policy_number)
            .bind(id)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            crate::expect_one_row(event, rows)?;
            format!(
                "{} policy {policy_number} issued by {insurer} for {period_start} to {period_end}: premium {}, coverage {}",
                product.as_str(),
                money_text(&premium),
                money_text(&coverage)
            )
        }
        PolicyEvent::PolicyPremiumPaid { amount, .. } => {
            set_status(
                conn,
                event,
                "customer_history_policies",
                "policy_id",
                "ACTIVE",
            )
            .await?;
            format!(
                "Premium of {} paid: policy {number} is active",
                money_text(&amount)
            )
        }
        PolicyEvent::PolicyCancelled {
            reason,
            cancelled_on,
            refund,
            ..
        } => {
            set_status(
                conn,
                event,
                "customer_history_policies",
                "policy_id",
                "CANCELLED",
            )
            .await?;
            format!(
                "Policy {number} cancelled on {cancelled_on} with {} refunded: {reason}",
                money_text(&refund)
            )
        }
        PolicyEvent::PolicyExpired { expired_on } => {
            set_status(
                conn,
                event,
                "customer_history_policies",
                "policy_id",
                "EXPIRED",
            )
            .await?;
            format!("Policy {number} expired on {expired_on}")
        }
        PolicyEvent::ClaimFiled {
            claim_id,
            incident_on,
            claimed,
            ..
        } => {
            sqlx::query(
                "INSERT INTO customer_history_claims (policy_id, claim_id, customer_id, status)
                 SELECT policy_id, $1, customer_id, 'FILED' FROM customer_history_policies WHERE policy_id = $2",
            )
            .bind(claim_id.to_string())
            .bind(id)
            .execute(&mut *conn)
            .await?;
            format!(
                "Claim {claim_id} filed on policy {number} for {} (incident on {incident_on})",
                money_text(&claimed)
            )
        }
        PolicyEvent::ClaimReviewStarted { claim_id, .. } => {
            claim_status(conn, event, claim_id, "UNDER_REVIEW").await?;
            format!("Claim {claim_id} on policy {number} under review")
        }
        PolicyEvent::ClaimApproved {
            claim_id, amount, ..
        } => {
            claim_status(conn, event, claim_id, "APPROVED").await?;
            format!(
                "Claim {claim_id} on policy {number} approved for {}",
                money_text(&amount)
            )
        }
        PolicyEvent::ClaimRejected {
            claim_id, reason, ..
        } => {
            claim_status(conn, event, claim_id, "REJECTED").await?;
            format!("Claim {claim_id} on policy {number} rejected: {reason}")
        }
        PolicyEvent::ClaimPaid {
            claim_id, amount, ..
        } => {
            claim_status(conn, event, claim_id, "PAID").await?;
            format!(
                "Claim {claim_id} on policy {number} paid: {}",
                money_text(&amount)
            )
        }
    };
    let customer_id = known_owner(conn, event, "customer_history_policies", "policy_id").await?;
    Ok(Some((customer_id, summary)))
}

async fn claim_status(
    conn: &mut AnyConnection,
    event: &RecordedEvent,
    claim_id: impl std::fmt::Display,
    status: &str,
) -> Result<(), ProjectionError> {
    let rows = sqlx::query(
        "UPDATE customer_history_claims SET status = $1 WHERE policy_id = $2 AND claim_id = $3",
    )
    .bind(status)
    .bind(&event.aggregate_id)
    .bind(claim_id.to_string())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    crate::expect_one_row(event, rows)
}

async fn booking(
    conn: &mut AnyConnection,
    event: &RecordedEvent,
) -> Result<Touched, ProjectionError> {
    let id = event.aggregate_id.as_str();
    let decoded = event.decode::<BookingEvent>()?;
    if let BookingEvent::ServiceBooked {
        customer_id,
        vehicle_id,
        mechanic,
        kind,
        slot,
        ..
    } = &decoded
    {
        sqlx::query(
            "INSERT INTO customer_history_bookings (booking_id, customer_id, status, slot_start)
             VALUES ($1, $2, 'SCHEDULED', $3)",
        )
        .bind(id)
        .bind(customer_id.to_string())
        .bind(crate::rfc3339(slot.start()))
        .execute(&mut *conn)
        .await?;
        let summary = format!(
            "{} booked for vehicle {vehicle_id} with mechanic {mechanic}, {slot}",
            capitalised(&lowercase(kind.as_str()))
        );
        return Ok(Some((customer_id.to_string(), summary)));
    }
    let customer_id = known_owner(conn, event, "customer_history_bookings", "booking_id").await?;
    let summary = match decoded {
        BookingEvent::ServiceBooked { .. } => unreachable!("handled above"),
        BookingEvent::BookingRescheduled { mechanic, slot, .. } => {
            let rows = sqlx::query(
                "UPDATE customer_history_bookings SET slot_start = $1 WHERE booking_id = $2",
            )
            .bind(crate::rfc3339(slot.start()))
            .bind(id)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            crate::expect_one_row(event, rows)?;
            format!("Service booking rescheduled to mechanic {mechanic}, {slot}")
        }
        BookingEvent::BookingStarted { .. } => {
            set_status(
                conn,
                event,
                "customer_history_bookings",
                "booking_id",
                "IN_PROGRESS",
            )
            .await?;
            "Service started in the workshop".to_string()
        }
        BookingEvent::BookingCompleted {
            mileage_km,
            work,
            cost,
            ..
        } => {
            set_status(
                conn,
                event,
                "customer_history_bookings",
                "booking_id",
                "COMPLETED",
            )
            .await?;
            format!(
                "Service completed at {mileage_km} km for {}: {}",
                money_text(&cost),
                work.join("; ")
            )
        }
        BookingEvent::BookingCancelled { reason, .. } => {
            set_status(
                conn,
                event,
                "customer_history_bookings",
                "booking_id",
                "CANCELLED",
            )
            .await?;
            format!("Service booking cancelled: {reason}")
        }
        BookingEvent::BookingMarkedNoShow { .. } => {
            set_status(
                conn,
                event,
                "customer_history_bookings",
                "booking_id",
                "NO_SHOW",
            )
            .await?;
            "Did not come to the service booking".to_string()
        }
    };
    Ok(Some((customer_id, summary)))
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

async fn vehicle(
    conn: &mut AnyConnection,
    event: &RecordedEvent,
) -> Result<Touched, ProjectionError> {
    let id = event.aggregate_id.as_str();
    let (customer_id, summary) = match event.decode::<VehicleEvent>()? {
        VehicleEvent::VehicleReserved { order_id } => (
            owner(
                conn,
                "customer_history_orders",
                "order_id",
                &order_id.to_string(),
            )
            .await?,
            format!("Vehicle {id} reserved for order {order_id}"),
        ),
        VehicleEvent::VehicleReservationReleased { order_id } => (
            owner(
                conn,
                "customer_history_orders",
                "order_id",
                &order_id.to_string(),
            )
            .await?,
            format!("Vehicle {id} released from order {order_id}"),
        ),
        VehicleEvent::VehicleSold { order_id } => (
            owner(
                conn,
                "customer_history_orders",
                "order_id",
                &order_id.to_string(),
            )
            .await?,
            format!("Vehicle {id} sold under order {order_id}"),
        ),
        VehicleEvent::VehicleServiceRecorded {
            booking_id,
            mileage_km,
            cost,
            ..
        } => (
            owner(
                conn,
                "customer_history_bookings",
                "booking_id",
                &booking_id.to_string(),
            )
            .await?,
            format!(
                "Service recorded in vehicle {id}'s history at {mileage_km} km for {}",
                money_text(&cost)
            ),
        ),
        _ => return Ok(None),
    };
    Ok(customer_id.map(|customer_id| (customer_id, summary)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aggregates::money::Currency;
    use rust_decimal::Decimal;

    #[test]
    fn money_reads_with_thousands_grouped_and_two_places() {
        let text = |minor: i64| money_text(&Money::from_minor_units(minor, Currency::RUB));
        assert_eq!(text(121_125_000), "1 211 250.00 RUB");
        assert_eq!(text(42_500_000), "425 000.00 RUB");
        assert_eq!(text(99_999), "999.99 RUB");
        assert_eq!(text(5), "0.05 RUB");
        assert_eq!(text(-100_000), "-1 000.00 RUB");
        let exact = Money::new(Decimal::new(1_000_000, 0), Currency::RUB).unwrap();
        assert_eq!(money_text(&exact), "1 000 000.00 RUB");
    }
}
