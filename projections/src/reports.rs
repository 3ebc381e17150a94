//! `reports`: fact tables for analysts — sales, payments, loans, policies, workshop bookings and
//! inventory — one row per business object, with the keys reports group by (business day, month,
//! brand, model, method, insurer, mechanic) stored beside the amounts.
//!
//! The projector reads only the log and its own tables. Facts it needs from other aggregates (a
//! vehicle's brand and model for a sale, an order's amounts when it is handed over, a loan's
//! instalments for what is overdue) come from its own lookup tables `report_orders` and
//! `report_loan_instalments`, and from `report_inventory`, which is both a fact table and the vehicle
//! lookup.
//!
//! Business day: the calendar date of a business time in Moscow (`aggregates::calendar`,
//! Europe/Moscow); `report_*` tables say which time each day comes from (docs/read-models.md). Money is integer
//! kopecks with the row's currency.

use aggregates::bookings::{BookingEvent, BookingStatus};
use aggregates::loan::{LoanEvent, LoanStatus};
use aggregates::order::OrderEvent;
use aggregates::payment::{PaymentEvent, PaymentStatus};
use aggregates::policy::{PolicyEvent, PolicyStatus};
use aggregates::vehicle::VehicleEvent;
use chrono::{DateTime, NaiveDate, Utc};
use eventstore::RecordedEvent;
use futures::future::BoxFuture;
use sqlx::AnyConnection;

use crate::runtime::{ProjectionError, Projector};

pub struct Reports;

type Query<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// The dealership's business day: the date of `at` in Moscow ([`aggregates::calendar`]).
pub fn business_day(at: DateTime<Utc>) -> NaiveDate {
    aggregates::calendar::business_date(at)
}

/// `YYYY-MM` of a date.
fn month(day: NaiveDate) -> String {
    day.format("%Y-%m").to_string()
}

const SCHEMA: &[&str] = &[
    // Lookup: what each order sells, for the sale row written at handover.
    "CREATE TABLE IF NOT EXISTS report_orders (
        order_id       text    PRIMARY KEY,
        vehicle_id     text    NOT NULL,
        customer_id    text    NOT NULL,
        currency       text    NOT NULL,
        price_minor    integer NOT NULL,
        discount_minor integer NOT NULL,
        total_minor    integer NOT NULL
    ) STRICT",
    // Lookup: each loan's instalments in force, to count the overdue ones.
    "CREATE TABLE IF NOT EXISTS report_loan_instalments (
        loan_id     text    NOT NULL,
        number      integer NOT NULL,
        total_minor integer NOT NULL,
        paid_minor  integer NOT NULL,
        overdue     integer NOT NULL,
        PRIMARY KEY (loan_id, number)
    ) STRICT",
    "CREATE TABLE IF NOT EXISTS report_inventory (
        vehicle_id  text PRIMARY KEY,
        brand       text NOT NULL,
        model       text NOT NULL,
        stocked_at  text NOT NULL,
        stocked_day text NOT NULL,
        left_day    text,
        left_reason text
    ) STRICT",
    "CREATE INDEX IF NOT EXISTS report_inventory_model ON report_inventory (brand, model)",
    "CREATE TABLE IF NOT EXISTS report_sales (
        order_id       text    PRIMARY KEY,
        day            text    NOT NULL,
        month          text    NOT NULL,
        brand          text    NOT NULL,
        model          text    NOT NULL,
        vehicle_id     text    NOT NULL,
        customer_id    text    NOT NULL,
        currency       text    NOT NULL,
        price_minor    integer NOT NULL,
        discount_minor integer NOT NULL,
        revenue_minor  integer NOT NULL,
        position       integer NOT NULL
    ) STRICT",
    "CREATE INDEX IF NOT EXISTS report_sales_day ON report_sales (day)",
    "CREATE TABLE IF NOT EXISTS report_payments (
        payment_id     text    PRIMARY KEY,
        order_id       text    NOT NULL,
        day            text    NOT NULL,
        method         text    NOT NULL,
        status         text    NOT NULL,
        currency       text    NOT NULL,
        amount_minor   integer NOT NULL,
        refunded_minor integer NOT NULL
    ) STRICT",
    "CREATE INDEX IF NOT EXISTS report_payments_day ON report_payments (day)",
    "CREATE TABLE IF NOT EXISTS report_loans (
        loan_id                     text    PRIMARY KEY,
        order_id                    text    NOT NULL,
        status                      text    NOT NULL,
        currency                    text    NOT NULL,
        principal_minor             integer NOT NULL,
        originated_day              text,
        outstanding_principal_minor integer NOT NULL,
        interest_earned_minor       integer NOT NULL,
        overdue_instalments         integer NOT NULL,
        defaulted                   integer NOT NULL,
        defaulted_day               text,
        completed_day               text
    ) STRICT",
    "CREATE TABLE IF NOT EXISTS report_policies (
        policy_id         text    PRIMARY KEY,
        insurer           text    NOT NULL,
        product           text    NOT NULL,
        issued_day        text    NOT NULL,
        issue_month       text    NOT NULL,
        status            text    NOT NULL,
        currency          text    NOT NULL,
        premium_minor     integer NOT NULL,
        commission_minor  integer NOT NULL,
        refund_minor      integer NOT NULL,
        cancelled_on      text,
        premium_paid_day  text,
        cancelled_day     text,
        claims_paid_minor integer NOT NULL
    ) STRICT",
    "CREATE INDEX IF NOT EXISTS report_policies_month ON report_policies (issue_month, insurer)",
    "CREATE TABLE IF NOT EXISTS report_bookings (
        booking_id     text    PRIMARY KEY,
        mechanic_id    text    NOT NULL,
        day            text    NOT NULL,
        booked_minutes integer NOT NULL,
        status         text    NOT NULL
    ) STRICT",
    "CREATE INDEX IF NOT EXISTS report_bookings_day ON report_bookings (day, mechanic_id)",
];

impl Projector for Reports {
    fn name(&self) -> &'static str {
        "reports"
    }

    fn version(&self) -> i64 {
        3
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "report_orders",
            "report_loan_instalments",
            "report_inventory",
            "report_sales",
            "report_payments",
            "report_loans",
            "report_policies",
            "report_bookings",
        ]
    }

    fn schema(&self) -> &'static [&'static str] {
        SCHEMA
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        // The aggregate types `apply` dispatches on; every other event leaves its tables alone.
        Some(&["Vehicle", "Order", "Payment", "Loan", "Policy", "Booking"])
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
        "Vehicle" => apply_vehicle(conn, event).await,
        "Order" => apply_order(conn, event).await,
        "Payment" => apply_payment(conn, event).await,
        "Loan" => apply_loan(conn, event).await,
        "Policy" => apply_policy(conn, event).await,
        "Booking" => apply_booking(conn, event).await,
        _ => Ok(()),
    }
}

/// Runs one statement that must change exactly one row.
async fn one<'q>(
    conn: &mut AnyConnection,
    event: &RecordedEvent,
    query: Query<'q>,
) -> Result<(), ProjectionError> {
    let done = query.execute(&mut *conn).await?;
    crate::expect_one_row(event, done.rows_affected())
}

async fn apply_vehicle(
    conn: &mut AnyConnection,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
    let id = event.aggregate_id.as_str();
    let (reason, order_id) = match event.decode::<VehicleEvent>()? {
        VehicleEvent::VehicleStocked {
            brand,
            model,
            stocked_at,
            ..
        } => {
            let query = sqlx::query(
                "INSERT INTO report_inventory (vehicle_id, brand, model, stocked_at, stocked_day, left_day,
                    left_reason) VALUES ($1, $2, $3, $4, $5, NULL, NULL)",
            )
            .bind(id)
            .bind(brand)
            .bind(model)
            .bind(crate::rfc3339(stocked_at))
            .bind(business_day(stocked_at).to_string());
            return one(conn, event, query).await;
        }
        // A sold car leaves stock on the business day of its order's handover (recorded just
        // before); a withdrawal carries no business time of its own, so the store's time is used.
        VehicleEvent::VehicleSold { order_id } => ("SOLD", Some(order_id.to_string())),
        VehicleEvent::VehicleWithdrawn { .. } => ("WITHDRAWN", None),
        _ => return Ok(()),
    };
    let query = sqlx::query(
        "UPDATE report_inventory
            SET left_day = coalesce((SELECT day FROM report_sales WHERE order_id = $4), $1), left_reason = $2
          WHERE vehicle_id = $3",
    )
    .bind(business_day(event.recorded_at).to_string())
    .bind(reason)
    .bind(id)
    .bind(order_id);
    one(conn, event, query).await
}

async fn apply_order(
    conn: &mut AnyConnection,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
    let id = event.aggregate_id.as_str();
    let query = match event.decode::<OrderEvent>()? {
        OrderEvent::OrderDrafted {
            customer_id,
            vehicle_id,
            price,
            ..
        } => sqlx::query(
            "INSERT INTO report_orders (order_id, vehicle_id, customer_id, currency, price_minor, discount_minor,
                total_minor) VALUES ($1, $2, $3, $4, $5, 0, $5)",
        )
        .bind(id)
        .bind(vehicle_id.to_string())
        .bind(customer_id.to_string())
        .bind(price.currency().code())
        .bind(price.minor_units()),
        OrderEvent::DiscountApplied {
            discount_amount,
            total,
            ..
        } => sqlx::query(
            "UPDATE report_orders SET discount_minor = $1, total_minor = $2 WHERE order_id = $3",
        )
        .bind(discount_amount.minor_units())
        .bind(total.minor_units())
        .bind(id),
        OrderEvent::OrderHandedOver { handed_over_at } => {
            let day = business_day(handed_over_at);
            sqlx::query(
                "INSERT INTO report_sales (order_id, day, month, brand, model, vehicle_id, customer_id, currency,
                    price_minor, discount_minor, revenue_minor, position)
                 SELECT o.order_id, $2, $3, v.brand, v.model, o.vehicle_id, o.customer_id, o.currency,
                        o.price_minor, o.discount_minor, o.total_minor, $4
                   FROM report_orders o JOIN report_inventory v ON v.vehicle_id = o.vehicle_id
                  WHERE o.order_id = $1",
            )
            .bind(id)
            .bind(day.to_string())
            .bind(month(day))
            .bind(event.position)
        }
        _ => return Ok(()),
    };
    one(conn, event, query).await
}

async fn apply_payment(
    conn: &mut AnyConnection,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
    let id = event.aggregate_id.as_str();
    let status = |status: PaymentStatus| {
        sqlx::query("UPDATE report_payments SET status = $1 WHERE payment_id = $2")
            .bind(status.as_str())
            .bind(id)
    };
    let query = match event.decode::<PaymentEvent>()? {
        PaymentEvent::PaymentInitiated {
            order_id,
            amount,
            method,
            initiated_at,
            ..
        } => sqlx::query(
            "INSERT INTO report_payments (payment_id, order_id, day, method, status, currency, amount_minor,
                refunded_minor) VALUES ($1, $2, $3, $4, $5, $6, $7, 0)",
        )
        .bind(id)
        .bind(order_id.to_string())
        .bind(business_day(initiated_at).to_string())
        .bind(method.kind().as_str())
        .bind(PaymentStatus::Pending.as_str())
        .bind(amount.currency().code())
        .bind(amount.minor_units()),
        PaymentEvent::PaymentProcessingStarted { .. } => status(PaymentStatus::Processing),
        PaymentEvent::PaymentCompleted { .. } => status(PaymentStatus::Completed),
        PaymentEvent::PaymentFailed { .. } => status(PaymentStatus::Failed),
        PaymentEvent::PaymentCancelled { .. } => status(PaymentStatus::Cancelled),
        PaymentEvent::PaymentRefunded { refunded_total, .. } => sqlx::query(
            "UPDATE report_payments SET refunded_minor = $1,
                status = CASE WHEN $1 >= amount_minor THEN $2 ELSE status END
              WHERE payment_id = $3",
        )
        .bind(refunded_total.minor_units())
        .bind(PaymentStatus::Refunded.as_str())
        .bind(id),
    };
    one(conn, event, query).await
}

async fn apply_loan(
    conn: &mut AnyConnection,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
    let id = event.aggregate_id.as_str();
    let status = |status: LoanStatus| {
        sqlx::query("UPDATE report_loans SET status = $1 WHERE loan_id = $2")
            .bind(status.as_str())
            .bind(id)
    };
    let query = match event.decode::<LoanEvent>()? {
        LoanEvent::LoanApplied {
            order_id, details, ..
        } => sqlx::query(
            "INSERT INTO report_loans (loan_id, order_id, status, currency, principal_minor, originated_day,
                outstanding_principal_minor, interest_earned_minor, overdue_instalments, defaulted,
                defaulted_day, completed_day) VALUES ($1, $2, $3, $4, $5, NULL, 0, 0, 0, 0, NULL, NULL)",
        )
        .bind(id)
        .bind(order_id.to_string())
        .bind(LoanStatus::Draft.as_str())
        .bind(details.loan_amount.currency().code())
        .bind(details.loan_amount.minor_units()),
        LoanEvent::LoanApplicationUpdated { details } => sqlx::query(
            "UPDATE report_loans SET principal_minor = $1, currency = $2 WHERE loan_id = $3",
        )
        .bind(details.loan_amount.minor_units())
        .bind(details.loan_amount.currency().code())
        .bind(id),
        LoanEvent::LoanApplicationSubmitted { .. } => status(LoanStatus::Submitted),
        LoanEvent::LoanReviewStarted { .. } => status(LoanStatus::UnderReview),
        LoanEvent::LoanRejected { .. } => status(LoanStatus::Rejected),
        LoanEvent::LoanApproved { schedule, .. } => {
            insert_instalments(conn, id, &schedule).await?;
            status(LoanStatus::Approved)
        }
        LoanEvent::LoanDisbursed {
            disbursed_on,
            principal,
            schedule,
        } => {
            if !schedule.is_empty() {
                // Re-issued from the disbursement date: it replaces the approved schedule.
                sqlx::query("DELETE FROM report_loan_instalments WHERE loan_id = $1")
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
                insert_instalments(conn, id, &schedule).await?;
            }
            sqlx::query(
            "UPDATE report_loans SET status = $1, originated_day = $2, principal_minor = $3,
                outstanding_principal_minor = $3 WHERE loan_id = $4",
        )
        .bind(LoanStatus::Active.as_str())
        .bind(disbursed_on.to_string())
        .bind(principal.minor_units())
        .bind(id)
        },
        LoanEvent::LoanRepaymentRecorded { allocations, .. } => {
            let (mut principal, mut interest) = (0_i64, 0_i64);
            for allocation in &allocations {
                let paid = allocation.principal.minor_units() + allocation.interest.minor_units();
                let query = sqlx::query(
                    "UPDATE report_loan_instalments SET paid_minor = paid_minor + $1
                      WHERE loan_id = $2 AND number = $3",
                )
                .bind(paid)
                .bind(id)
                .bind(i64::from(allocation.instalment));
                one(conn, event, query).await?;
                principal += allocation.principal.minor_units();
                interest += allocation.interest.minor_units();
            }
            repaid(id, principal, interest)
        }
        LoanEvent::LoanRepaidEarly {
            principal,
            interest,
            schedule,
            ..
        } => {
            match schedule.first() {
                Some(first) => {
                    sqlx::query(
                        "DELETE FROM report_loan_instalments WHERE loan_id = $1 AND number >= $2",
                    )
                    .bind(id)
                    .bind(i64::from(first.number))
                    .execute(&mut *conn)
                    .await?;
                    insert_instalments(conn, id, &schedule).await?;
                }
                None => {
                    // Repaid in full: the unpaid instalments will never fall due.
                    sqlx::query(
                        "DELETE FROM report_loan_instalments WHERE loan_id = $1 AND paid_minor < total_minor",
                    )
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
                }
            }
            repaid(id, principal.minor_units(), interest.minor_units())
        }
        LoanEvent::InstalmentsFellOverdue { instalments, .. } => {
            for number in &instalments {
                let query = sqlx::query(
                    "UPDATE report_loan_instalments SET overdue = 1 WHERE loan_id = $1 AND number = $2",
                )
                .bind(id)
                .bind(i64::from(*number));
                one(conn, event, query).await?;
            }
            sqlx::query("UPDATE report_loans SET status = status WHERE loan_id = $1").bind(id)
        }
        LoanEvent::LoanDefaulted { as_of, .. } => sqlx::query(
            "UPDATE report_loans SET status = $1, defaulted = 1, defaulted_day = $2 WHERE loan_id = $3",
        )
        .bind(LoanStatus::Defaulted.as_str())
        .bind(as_of.to_string())
        .bind(id),
        LoanEvent::LoanCompleted { completed_on } => sqlx::query(
            "UPDATE report_loans SET status = $1, completed_day = $2 WHERE loan_id = $3",
        )
        .bind(LoanStatus::Completed.as_str())
        .bind(completed_on.to_string())
        .bind(id),
    };
    one(conn, event, query).await?;
    // Overdue instalments: found overdue by an assessment and not yet paid in full.
    sqlx::query(
        "UPDATE report_loans SET overdue_instalments = (SELECT count(*) FROM report_loan_instalments i
            WHERE i.loan_id = $1 AND i.overdue = 1 AND i.paid_minor < i.total_minor) WHERE loan_id = $1",
    )
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn repaid(id: &str, principal: i64, interest: i64) -> Query<'_> {
    sqlx::query(
        "UPDATE report_loans SET outstanding_principal_minor = outstanding_principal_minor - $1,
            interest_earned_minor = interest_earned_minor + $2 WHERE loan_id = $3",
    )
    .bind(principal)
    .bind(interest)
    .bind(id)
}

async fn insert_instalments(
    conn: &mut AnyConnection,
    id: &str,
    schedule: &[aggregates::loan::schedule::Instalment],
) -> Result<(), ProjectionError> {
    for instalment in schedule {
        sqlx::query(
            "INSERT INTO report_loan_instalments (loan_id, number, total_minor, paid_minor, overdue)
             VALUES ($1, $2, $3, 0, 0)",
        )
        .bind(id)
        .bind(i64::from(instalment.number))
        .bind(instalment.total.minor_units())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn apply_policy(
    conn: &mut AnyConnection,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
    let id = event.aggregate_id.as_str();
    let query = match event.decode::<PolicyEvent>()? {
        PolicyEvent::PolicyIssued {
            insurer,
            product,
            premium,
            commission,
            issued_at,
            ..
        } => {
            let day = business_day(issued_at);
            sqlx::query(
                "INSERT INTO report_policies (policy_id, insurer, product, issued_day, issue_month, status, currency,
                    premium_minor, commission_minor, refund_minor, cancelled_on, claims_paid_minor)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, NULL, 0)",
            )
            .bind(id)
            .bind(insurer)
            .bind(product.as_str())
            .bind(day.to_string())
            .bind(month(day))
            .bind(PolicyStatus::Issued.as_str())
            .bind(premium.currency().code())
            .bind(premium.minor_units())
            .bind(commission.minor_units())
        }
        PolicyEvent::PolicyPremiumPaid { paid_at, .. } => sqlx::query(
            "UPDATE report_policies SET status = $1, premium_paid_day = $2 WHERE policy_id = $3",
        )
        .bind(PolicyStatus::Active.as_str())
        .bind(business_day(paid_at).to_string())
        .bind(id),
        PolicyEvent::PolicyCancelled {
            cancelled_on,
            refund,
            cancelled_at,
            ..
        } => sqlx::query(
            "UPDATE report_policies SET status = $1, refund_minor = $2, cancelled_on = $3, cancelled_day = $4
              WHERE policy_id = $5",
        )
        .bind(PolicyStatus::Cancelled.as_str())
        .bind(refund.minor_units())
        .bind(cancelled_on.to_string())
        .bind(business_day(cancelled_at).to_string())
        .bind(id),
        PolicyEvent::PolicyExpired { .. } => {
            sqlx::query("UPDATE report_policies SET status = $1 WHERE policy_id = $2")
                .bind(PolicyStatus::Expired.as_str())
                .bind(id)
        }
        PolicyEvent::ClaimPaid { amount, .. } => sqlx::query(
            "UPDATE report_policies SET claims_paid_minor = claims_paid_minor + $1 WHERE policy_id = $2",
        )
        .bind(amount.minor_units())
        .bind(id),
        _ => return Ok(()),
    };
    one(conn, event, query).await
}

async fn apply_booking(
    conn: &mut AnyConnection,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
    let id = event.aggregate_id.as_str();
    let status = |status: BookingStatus| {
        sqlx::query("UPDATE report_bookings SET status = $1 WHERE booking_id = $2")
            .bind(status.as_str())
            .bind(id)
    };
    let query = match event.decode::<BookingEvent>()? {
        BookingEvent::ServiceBooked { mechanic, slot, .. } => sqlx::query(
            "INSERT INTO report_bookings (booking_id, mechanic_id, day, booked_minutes, status)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(mechanic.as_str().to_owned())
        .bind(slot.day().to_string())
        .bind(slot.duration().num_minutes())
        .bind(BookingStatus::Scheduled.as_str()),
        BookingEvent::BookingRescheduled { mechanic, slot, .. } => sqlx::query(
            "UPDATE report_bookings SET mechanic_id = $1, day = $2, booked_minutes = $3 WHERE booking_id = $4",
        )
        .bind(mechanic.as_str().to_owned())
        .bind(slot.day().to_string())
        .bind(slot.duration().num_minutes())
        .bind(id),
        BookingEvent::BookingStarted { .. } => status(BookingStatus::InProgress),
        BookingEvent::BookingCompleted { .. } => status(BookingStatus::Completed),
        BookingEvent::BookingCancelled { .. } => status(BookingStatus::Cancelled),
        BookingEvent::BookingMarkedNoShow { .. } => status(BookingStatus::NoShow),
    };
    one(conn, event, query).await
}
