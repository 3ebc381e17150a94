//! `loans`: each loan application and loan, and its repayment schedule.
//!
//! Tables `loans` (one row per loan) and `loan_instalments` (one row per instalment of the schedule
//! in force); see docs/read-models.md. A recalculation after an early repayment replaces the rows of
//! the instalments it recalculated; paid instalments keep theirs.

use aggregates::loan::full_cost::full_cost;
use aggregates::loan::schedule::Instalment;
use aggregates::loan::{LoanDetails, LoanEvent, LoanStatus};
use aggregates::money::{Currency, Money};
use eventstore::RecordedEvent;
use futures::future::BoxFuture;
use sqlx::AnyConnection;

use crate::runtime::{ProjectionError, Projector};

pub struct Loans;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS loans (
        loan_id                    text    PRIMARY KEY,
        order_id                   text    NOT NULL,
        customer_id                text    NOT NULL,
        status                     text    NOT NULL,
        loan_type                  text    NOT NULL,
        currency                   text    NOT NULL,
        vehicle_price_minor        integer NOT NULL,
        down_payment_minor         integer NOT NULL,
        loan_amount_minor          integer NOT NULL,
        term_months                integer NOT NULL,
        employment_status          text    NOT NULL,
        monthly_income_minor       integer NOT NULL,
        credit_score               integer NOT NULL,
        annual_rate_percent        text,
        schedule_kind              text,
        first_due_date             text,
        fixed_part_minor           integer,
        day_count                  text,
        full_cost_percent          text,
        full_cost_minor            integer,
        last_early_repayment_on    text,
        instalment_count           integer NOT NULL,
        outstanding_principal_minor integer NOT NULL,
        principal_repaid_minor     integer NOT NULL,
        interest_paid_minor        integer NOT NULL,
        overdue_count              integer NOT NULL,
        decision_reasons           text,
        applied_at                 text    NOT NULL,
        submitted_at               text,
        review_started_at          text,
        decided_at                 text,
        disbursed_on               text,
        completed_on               text,
        defaulted_on               text,
        applied_position           integer NOT NULL,
        updated_at                 text    NOT NULL,
        last_position              integer NOT NULL
    ) STRICT",
    "CREATE INDEX IF NOT EXISTS loans_order ON loans (order_id)",
    "CREATE INDEX IF NOT EXISTS loans_status ON loans (status, applied_position)",
    "CREATE TABLE IF NOT EXISTS loan_instalments (
        loan_id              text    NOT NULL,
        number               integer NOT NULL,
        due_date             text    NOT NULL,
        currency             text    NOT NULL,
        principal_minor      integer NOT NULL,
        interest_minor       integer NOT NULL,
        total_minor          integer NOT NULL,
        remaining_minor      integer NOT NULL,
        paid_principal_minor integer NOT NULL,
        paid_interest_minor  integer NOT NULL,
        overdue              integer NOT NULL,
        status               text    NOT NULL,
        last_paid_on         text,
        PRIMARY KEY (loan_id, number)
    ) STRICT",
];

impl Projector for Loans {
    fn name(&self) -> &'static str {
        "loans"
    }

    fn version(&self) -> i64 {
        // 2: `day_count` and `last_early_repayment_on`; schedules re-issued at disbursement.
        // 3: `full_cost_percent` and `full_cost_minor`.
        3
    }

    fn tables(&self) -> &'static [&'static str] {
        &["loans", "loan_instalments"]
    }

    fn schema(&self) -> &'static [&'static str] {
        SCHEMA
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        // The aggregate types `apply` dispatches on; every other event leaves its tables alone.
        Some(&["Loan"])
    }

    fn apply<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        event: &'a RecordedEvent,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(apply(conn, event))
    }
}

/// The full cost of credit of `schedule`, `principal` lent on `lent_on` (see
/// `aggregates::loan::full_cost`): the contract's figure, kept when a later early repayment
/// recalculates the schedule. NULL when it is beyond the range of money (no figure to show).
async fn set_full_cost(
    conn: &mut AnyConnection,
    id: &str,
    principal: Money,
    lent_on: chrono::NaiveDate,
    schedule: &[Instalment],
) -> Result<(), ProjectionError> {
    if schedule.is_empty() {
        return Ok(());
    }
    let cost = full_cost(principal, lent_on, schedule);
    sqlx::query("UPDATE loans SET full_cost_percent = $1, full_cost_minor = $2 WHERE loan_id = $3")
        .bind(cost.map(|cost| cost.percent.to_string()))
        .bind(cost.map(|cost| cost.amount.minor_units()))
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The schedule as the table holds it, by number, in `currency` (the disbursement of a loan whose
/// approved schedule stands: nothing is paid on it yet).
async fn stored_schedule(
    conn: &mut AnyConnection,
    event: &RecordedEvent,
    currency: Currency,
) -> Result<Vec<Instalment>, ProjectionError> {
    let rows: Vec<(i64, String, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT number, due_date, principal_minor, interest_minor, total_minor, remaining_minor
           FROM loan_instalments WHERE loan_id = $1 ORDER BY number",
    )
    .bind(event.aggregate_id.as_str())
    .fetch_all(&mut *conn)
    .await?;
    let inconsistent = |reason: String| ProjectionError::Inconsistent {
        position: event.position,
        event_type: event.event_type.clone(),
        reason,
    };
    rows.into_iter()
        .map(
            |(number, due_date, principal, interest, total, remaining)| {
                let money = |minor| Money::from_minor_units(minor, currency);
                Ok(Instalment {
                    number: u32::try_from(number)
                        .map_err(|_| inconsistent(format!("stored instalment number {number}")))?,
                    due_date: due_date
                        .parse()
                        .map_err(|_| inconsistent(format!("stored due date {due_date:?}")))?,
                    principal: money(principal),
                    interest: money(interest),
                    total: money(total),
                    remaining: money(remaining),
                })
            },
        )
        .collect()
}

/// An instalment's status from what is paid on it and whether an assessment found it overdue.
const REFRESH_INSTALMENT_STATUS: &str = "UPDATE loan_instalments SET status = CASE
        WHEN paid_principal_minor + paid_interest_minor = total_minor THEN 'PAID'
        WHEN overdue = 1 THEN 'OVERDUE'
        WHEN paid_principal_minor + paid_interest_minor > 0 THEN 'PARTLY_PAID'
        ELSE 'PENDING' END
      WHERE loan_id = $1";

/// The loan row's counts from its instalments.
const REFRESH_LOAN_COUNTS: &str = "UPDATE loans SET
        overdue_count = (SELECT count(*) FROM loan_instalments i WHERE i.loan_id = loans.loan_id AND i.status = 'OVERDUE'),
        instalment_count = (SELECT count(*) FROM loan_instalments i WHERE i.loan_id = loans.loan_id)
      WHERE loan_id = $1";

async fn apply(conn: &mut AnyConnection, event: &RecordedEvent) -> Result<(), ProjectionError> {
    if event.aggregate_type != "Loan" {
        return Ok(());
    }
    let id = event.aggregate_id.as_str();
    let at = crate::rfc3339(event.recorded_at);
    let position = event.position;
    let done = match event.decode::<LoanEvent>()? {
        LoanEvent::LoanApplied {
            order_id,
            customer_id,
            details,
            applied_at,
        } => {
            sqlx::query(
                "INSERT INTO loans (loan_id, order_id, customer_id, status, loan_type, currency, vehicle_price_minor,
                    down_payment_minor, loan_amount_minor, term_months, employment_status, monthly_income_minor,
                    credit_score, instalment_count, outstanding_principal_minor, principal_repaid_minor,
                    interest_paid_minor, overdue_count, applied_at, applied_position, updated_at, last_position)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 0, $9, 0, 0, 0, $14, $15, $16, $15)",
            )
            .bind(id)
            .bind(order_id.to_string())
            .bind(customer_id.to_string())
            .bind(LoanStatus::Draft.as_str())
            .bind(details.loan_type.as_str())
            .bind(details.vehicle_price.currency().code())
            .bind(details.vehicle_price.minor_units())
            .bind(details.down_payment.minor_units())
            .bind(details.loan_amount.minor_units())
            .bind(i64::from(details.term_months))
            .bind(details.employment.as_str())
            .bind(details.monthly_income.minor_units())
            .bind(i64::from(details.credit_score))
            .bind(crate::rfc3339(applied_at))
            .bind(position)
            .bind(&at)
            .execute(&mut *conn)
            .await?
        }
        LoanEvent::LoanApplicationUpdated { details } => {
            update_details(conn, id, &details, &at, position).await?
        }
        LoanEvent::LoanApplicationSubmitted { submitted_at } => {
            set_status(
                conn,
                id,
                LoanStatus::Submitted,
                "submitted_at",
                crate::rfc3339(submitted_at),
                &at,
                position,
            )
            .await?
        }
        LoanEvent::LoanReviewStarted { started_at } => {
            set_status(
                conn,
                id,
                LoanStatus::UnderReview,
                "review_started_at",
                crate::rfc3339(started_at),
                &at,
                position,
            )
            .await?
        }
        LoanEvent::LoanApproved {
            annual_rate_percent,
            schedule_kind,
            first_due_date,
            fixed_part,
            schedule,
            checks,
            decided_at,
            day_count,
            accrues_from,
        } => {
            insert_instalments(conn, id, &schedule).await?;
            // The principal: the schedule's principal parts sum to it exactly.
            if let Some(first) = schedule.first() {
                let principal = schedule.iter().map(|i| i.principal.minor_units()).sum();
                let principal = Money::from_minor_units(principal, first.principal.currency());
                set_full_cost(conn, id, principal, accrues_from, &schedule).await?;
            }
            let done = sqlx::query(
                "UPDATE loans SET status = $1, annual_rate_percent = $2, schedule_kind = $3, first_due_date = $4,
                    fixed_part_minor = $5, decision_reasons = $6, decided_at = $7, updated_at = $8, last_position = $9,
                    day_count = $10
                  WHERE loan_id = $11",
            )
            .bind(LoanStatus::Approved.as_str())
            .bind(annual_rate_percent.to_string())
            .bind(schedule_kind.as_str())
            .bind(first_due_date.to_string())
            .bind(fixed_part.minor_units())
            .bind(reasons_json(&checks))
            .bind(crate::rfc3339(decided_at))
            .bind(&at)
            .bind(position)
            .bind(day_count.as_str())
            .bind(id)
            .execute(&mut *conn)
            .await?;
            refresh(conn, id).await?;
            done
        }
        LoanEvent::LoanRejected {
            reasons,
            rejected_at,
        } => {
            sqlx::query(
                "UPDATE loans SET status = $1, decision_reasons = $2, decided_at = $3, updated_at = $4, last_position = $5
                  WHERE loan_id = $6",
            )
            .bind(LoanStatus::Rejected.as_str())
            .bind(reasons_json(&reasons))
            .bind(crate::rfc3339(rejected_at))
            .bind(&at)
            .bind(position)
            .bind(id)
            .execute(&mut *conn)
            .await?
        }
        LoanEvent::LoanDisbursed {
            disbursed_on,
            principal,
            schedule,
        } => {
            if schedule.is_empty() {
                // The approved schedule stands, but the money is lent today: the full cost counts
                // from the day it is lent (a legacy loan disbursed after its decision date).
                let stored = stored_schedule(conn, event, principal.currency()).await?;
                set_full_cost(conn, id, principal, disbursed_on, &stored).await?;
            } else {
                // Re-issued from the disbursement date: it replaces the approved schedule.
                sqlx::query("DELETE FROM loan_instalments WHERE loan_id = $1")
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
                insert_instalments(conn, id, &schedule).await?;
                set_full_cost(conn, id, principal, disbursed_on, &schedule).await?;
                refresh(conn, id).await?;
            }
            set_status(
                conn,
                id,
                LoanStatus::Active,
                "disbursed_on",
                disbursed_on.to_string(),
                &at,
                position,
            )
            .await?
        }
        LoanEvent::LoanRepaymentRecorded {
            paid_on,
            allocations,
            ..
        } => {
            let (mut principal, mut interest) = (0i64, 0i64);
            for allocation in &allocations {
                let updated = sqlx::query(
                    "UPDATE loan_instalments SET paid_principal_minor = paid_principal_minor + $1,
                        paid_interest_minor = paid_interest_minor + $2, last_paid_on = $3
                      WHERE loan_id = $4 AND number = $5",
                )
                .bind(allocation.principal.minor_units())
                .bind(allocation.interest.minor_units())
                .bind(paid_on.to_string())
                .bind(id)
                .bind(i64::from(allocation.instalment))
                .execute(&mut *conn)
                .await?;
                crate::expect_one_row(event, updated.rows_affected())?;
                principal += allocation.principal.minor_units();
                interest += allocation.interest.minor_units();
            }
            let done = add_repaid(conn, id, principal, interest, &at, position).await?;
            refresh(conn, id).await?;
            done
        }
        LoanEvent::LoanRepaidEarly {
            principal,
            interest,
            fixed_part,
            schedule,
            paid_on,
            recalculation,
            ..
        } => {
            if recalculation.is_some() {
                // Interest is settled up to a partial early repayment (see `payoff`).
                sqlx::query("UPDATE loans SET last_early_repayment_on = $1 WHERE loan_id = $2")
                    .bind(paid_on.to_string())
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
            }
            match schedule.first() {
                Some(first) => {
                    sqlx::query("DELETE FROM loan_instalments WHERE loan_id = $1 AND number >= $2")
                        .bind(id)
                        .bind(i64::from(first.number))
                        .execute(&mut *conn)
                        .await?;
                    insert_instalments(conn, id, &schedule).await?;
                }
                None => {
                    // Repaid in full: the instalments not yet paid will never fall due.
                    sqlx::query(
                        "DELETE FROM loan_instalments
                          WHERE loan_id = $1 AND paid_principal_minor + paid_interest_minor < total_minor",
                    )
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
                }
            }
            if let Some(fixed_part) = fixed_part {
                sqlx::query("UPDATE loans SET fixed_part_minor = $1 WHERE loan_id = $2")
                    .bind(fixed_part.minor_units())
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
            }
            let done = add_repaid(
                conn,
                id,
                principal.minor_units(),
                interest.minor_units(),
                &at,
                position,
            )
            .await?;
            refresh(conn, id).await?;
            done
        }
        LoanEvent::InstalmentsFellOverdue { instalments, .. } => {
            for number in &instalments {
                let updated = sqlx::query(
                    "UPDATE loan_instalments SET overdue = 1 WHERE loan_id = $1 AND number = $2",
                )
                .bind(id)
                .bind(i64::from(*number))
                .execute(&mut *conn)
                .await?;
                crate::expect_one_row(event, updated.rows_affected())?;
            }
            refresh(conn, id).await?;
            touch(conn, id, &at, position).await?
        }
        LoanEvent::LoanDefaulted { as_of, .. } => {
            set_status(
                conn,
                id,
                LoanStatus::Defaulted,
                "defaulted_on",
                as_of.to_string(),
                &at,
                position,
            )
            .await?
        }
        LoanEvent::LoanCompleted { completed_on } => {
            set_status(
                conn,
                id,
                LoanStatus::Completed,
                "completed_on",
                completed_on.to_string(),
                &at,
                position,
            )
            .await?
        }
    };
    crate::expect_one_row(event, done.rows_affected())
}

type Done = sqlx::any::AnyQueryResult;

async fn update_details(
    conn: &mut AnyConnection,
    id: &str,
    details: &LoanDetails,
    at: &str,
    position: i64,
) -> Result<Done, sqlx::Error> {
    sqlx::query(
        "UPDATE loans SET loan_type = $1, vehicle_price_minor = $2, down_payment_minor = $3, loan_amount_minor = $4,
            outstanding_principal_minor = $4, term_months = $5, employment_status = $6, monthly_income_minor = $7,
            credit_score = $8, updated_at = $9, last_position = $10
          WHERE loan_id = $11",
    )
    .bind(details.loan_type.as_str())
    .bind(details.vehicle_price.minor_units())
    .bind(details.down_payment.minor_units())
    .bind(details.loan_amount.minor_units())
    .bind(i64::from(details.term_months))
    .bind(details.employment.as_str())
    .bind(details.monthly_income.minor_units())
    .bind(i64::from(details.credit_score))
    .bind(at)
    .bind(position)
    .bind(id)
    .execute(&mut *conn)
    .await
}

/// Moves the loan to `status` and records when in `column` (one of this module's own names).
async fn set_status(
    conn: &mut AnyConnection,
    id: &str,
    status: LoanStatus,
    column: &'static str,
    when: String,
    at: &str,
    position: i64,
) -> Result<Done, sqlx::Error> {
    let sql = format!(
        "UPDATE loans SET status = $1, {column} = $2, updated_at = $3, last_position = $4 WHERE loan_id = $5"
    );
    sqlx::query(&sql)
        .bind(status.as_str())
        .bind(when)
        .bind(at)
        .bind(position)
        .bind(id)
        .execute(&mut *conn)
        .await
}

async fn touch(
    conn: &mut AnyConnection,
    id: &str,
    at: &str,
    position: i64,
) -> Result<Done, sqlx::Error> {
    sqlx::query("UPDATE loans SET updated_at = $1, last_position = $2 WHERE loan_id = $3")
        .bind(at)
        .bind(position)
        .bind(id)
        .execute(&mut *conn)
        .await
}

async fn add_repaid(
    conn: &mut AnyConnection,
    id: &str,
    principal_minor: i64,
    interest_minor: i64,
    at: &str,
    position: i64,
) -> Result<Done, sqlx::Error> {
    sqlx::query(
        "UPDATE loans SET principal_repaid_minor = principal_repaid_minor + $1,
            outstanding_principal_minor = outstanding_principal_minor - $1,
            interest_paid_minor = interest_paid_minor + $2, updated_at = $3, last_position = $4
          WHERE loan_id = $5",
    )
    .bind(principal_minor)
    .bind(interest_minor)
    .bind(at)
    .bind(position)
    .bind(id)
    .execute(&mut *conn)
    .await
}

async fn insert_instalments(
    conn: &mut AnyConnection,
    id: &str,
    schedule: &[Instalment],
) -> Result<(), sqlx::Error> {
    for instalment in schedule {
        let minor = |money: Money| money.minor_units();
        sqlx::query(
            "INSERT INTO loan_instalments (loan_id, number, due_date, currency, principal_minor, interest_minor,
                total_minor, remaining_minor, paid_principal_minor, paid_interest_minor, overdue, status, last_paid_on)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, 0, 0, 'PENDING', NULL)",
        )
        .bind(id)
        .bind(i64::from(instalment.number))
        .bind(instalment.due_date.to_string())
        .bind(instalment.total.currency().code())
        .bind(minor(instalment.principal))
        .bind(minor(instalment.interest))
        .bind(minor(instalment.total))
        .bind(minor(instalment.remaining))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn refresh(conn: &mut AnyConnection, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query(REFRESH_INSTALMENT_STATUS)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(REFRESH_LOAN_COUNTS)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The findings of a decision as a JSON array of `{"rule": "...", "detail": "..."}`.
fn reasons_json(findings: &[aggregates::loan::credit::CreditFinding]) -> String {
    serde_json::Value::Array(
        findings
            .iter()
            .map(|finding| {
                serde_json::json!({ "rule": finding.rule.as_str(), "detail": finding.detail })
            })
            .collect(),
    )
    .to_string()
}
