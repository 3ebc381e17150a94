//! `ledger`: the dealership's double-entry journal, posted from the financial events of the log.
//!
//! Tables `ledger_accounts` (the chart, see [`accounts`]), `ledger_entries` (one row per source
//! event that moved money, keyed by that event's global position) and `ledger_lines` (the entry's
//! debit and credit lines), plus lookup tables this projector keeps for itself (`ledger_orders`,
//! `ledger_payments`, `ledger_loans`, `ledger_policies`, `ledger_bookings`); see
//! docs/read-models.md.
//!
//! # Postings (one balanced entry per event; events without a money effect post nothing)
//! | Event | Debit | Credit |
//! |---|---|---|
//! | `PaymentCompleted` (card, bank transfer, cash) | 1000 cash | 2100 customer advances |
//! | `PaymentCompleted` (CREDIT) | — nothing: the loan's `LoanDisbursed` posts it | |
//! | `PaymentRefunded` (any method) | 2100 customer advances | 1000 cash |
//! | `LoanDisbursed` | 1200 loan receivable | 2100 customer advances |
//! | `OrderHandedOver` | 2100 advances (total) + 4010 discounts (price − total) | 4000 sales (price) |
//! | `LoanRepaymentRecorded` | 1000 cash (amount) | 1200 (principal) + 4100 interest (interest) |
//! | `LoanRepaidEarly` | 1000 cash (amount) | 1200 (principal) + 4100 interest (interest) |
//! | `PolicyPremiumPaid` | 1000 cash (premium) + 2200-INSURER (commission) | 2200-INSURER (premium) + 4300 commission |
//! | `PolicyCancelled` with a refund | 2200-INSURER (refund − claw-back) + 4300 (claw-back) | 1000 cash (refund) |
//! | `ClaimApproved` | 2200-INSURER | 2400 claims payable |
//! | `ClaimPaid` | 2400 claims payable | 1000 cash |
//! | `BookingCompleted` with a cost | 1100 customer receivables | 4200 service revenue |
//!
//! # Decisions
//! - **Money received before handover is an advance** (a liability to the customer); the sale is
//!   recognised at handover, net of its discount shown on the contra-income account 4010.
//! - **A loan pays the order once.** The credit payment that records the loan on the order and the
//!   loan's disbursement are the same money; the disbursement posts it (so 1200 always equals the
//!   outstanding principal of the disbursed loans), the CREDIT payment posts nothing. A refund of a
//!   CREDIT payment is paid to the customer in cash; the loan is unaffected.
//! - **Interest is recognised when received** (cash basis): each repayment carries its allocation
//!   between principal and interest, and only the interest part is income. No accrual, no write-off
//!   on default (a defaulted loan stays in 1200 until repaid).
//! - **The dealership is the insurers' agent.** A premium it collects is owed to the insurer (one
//!   sub-account 2200-INSURER per insurer). Its commission is earned when the premium is collected
//!   and withheld from what is owed. A cancellation refund is paid to the customer in cash; the
//!   commission is clawed back in proportion, `commission × refund / premium` rounded to kopecks by
//!   `KOPECK_ROUNDING`, the rest of the refund is borne by the insurer.
//! - **Claims are the insurer's liability, paid out by the dealership on its behalf.** Approval owes
//!   the amount to the customer (2400) and charges it to the insurer's account; paying it settles
//!   the claim from cash. The insurer's account is thus its running settlement balance (premiums
//!   collected − commission − refunds − claims): a debit balance is a receivable from the insurer.
//! - **Services are sold on account.** A completed booking with a cost is owed by the customer;
//!   nothing in the domain records that payment yet, so 1100 only grows.
//! - **Business date** of an entry: the event's own business time (`completed_at`, `handed_over_at`,
//!   `paid_at`, `cancelled_at`, claim `at`, `refunded_at`) as a Moscow date (`aggregates::calendar`, Europe/Moscow), or the
//!   event's own date (`disbursed_on`, `paid_on`) for loans.
//! - Every entry is asserted balanced per currency (and every line one-sided and positive) before
//!   it is written; an unbalanced entry is an `Inconsistent` error and stops the projector.

pub mod accounts;

use aggregates::bookings::BookingEvent;
use aggregates::loan::LoanEvent;
use aggregates::money::{Money, round_to_kopecks};
use aggregates::order::OrderEvent;
use aggregates::payment::{PaymentEvent, PaymentMethodKind};
use aggregates::policy::PolicyEvent;
use chrono::{DateTime, NaiveDate, Utc};
use eventstore::RecordedEvent;
use futures::future::BoxFuture;
use rust_decimal::Decimal;
use sqlx::{AnyConnection, Row};

use crate::runtime::{ProjectionError, Projector};
use accounts::*;

pub struct Ledger;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS ledger_accounts (
        code         text PRIMARY KEY,
        name         text NOT NULL,
        account_type text NOT NULL,
        normal_side  text NOT NULL,
        parent_code  text,
        insurer      text
    ) STRICT",
    "INSERT INTO ledger_accounts (code, name, account_type, normal_side) VALUES
        ('1000', 'Cash and bank', 'ASSET', 'DEBIT'),
        ('1100', 'Customer receivables', 'ASSET', 'DEBIT'),
        ('1200', 'Loan receivable', 'ASSET', 'DEBIT'),
        ('2100', 'Customer advances', 'LIABILITY', 'CREDIT'),
        ('2400', 'Claims payable', 'LIABILITY', 'CREDIT'),
        ('4000', 'Vehicle sales revenue', 'INCOME', 'CREDIT'),
        ('4010', 'Sales discounts', 'CONTRA_INCOME', 'DEBIT'),
        ('4100', 'Interest income', 'INCOME', 'CREDIT'),
        ('4200', 'Service revenue', 'INCOME', 'CREDIT'),
        ('4300', 'Commission income', 'INCOME', 'CREDIT')
     ON CONFLICT DO NOTHING",
    "CREATE TABLE IF NOT EXISTS ledger_entries (
        position       integer PRIMARY KEY,
        business_date  text    NOT NULL,
        description    text    NOT NULL,
        customer_id    text,
        aggregate_type text    NOT NULL,
        aggregate_id   text    NOT NULL,
        event_type     text    NOT NULL,
        recorded_at    text    NOT NULL
    ) STRICT",
    "CREATE INDEX IF NOT EXISTS ledger_entries_date ON ledger_entries (business_date, position)",
    "CREATE TABLE IF NOT EXISTS ledger_lines (
        position     integer NOT NULL,
        line_no      integer NOT NULL,
        account_code text    NOT NULL,
        debit_minor  integer NOT NULL,
        credit_minor integer NOT NULL,
        currency     text    NOT NULL,
        customer_id  text,
        PRIMARY KEY (position, line_no)
    ) STRICT",
    "CREATE INDEX IF NOT EXISTS ledger_lines_account ON ledger_lines (account_code, position)",
    "CREATE INDEX IF NOT EXISTS ledger_lines_customer ON ledger_lines (customer_id, position)",
    "CREATE TABLE IF NOT EXISTS ledger_orders (
        order_id    text    PRIMARY KEY,
        customer_id text    NOT NULL,
        currency    text    NOT NULL,
        price_minor integer NOT NULL,
        total_minor integer NOT NULL
    ) STRICT",
    "CREATE TABLE IF NOT EXISTS ledger_payments (
        payment_id  text PRIMARY KEY,
        order_id    text NOT NULL,
        customer_id text NOT NULL,
        method      text NOT NULL,
        currency    text NOT NULL,
        amount_minor integer NOT NULL
    ) STRICT",
    "CREATE TABLE IF NOT EXISTS ledger_loans (
        loan_id     text PRIMARY KEY,
        order_id    text NOT NULL,
        customer_id text NOT NULL
    ) STRICT",
    "CREATE TABLE IF NOT EXISTS ledger_policies (
        policy_id        text    PRIMARY KEY,
        customer_id      text    NOT NULL,
        insurer          text    NOT NULL,
        currency         text    NOT NULL,
        premium_minor    integer NOT NULL,
        commission_minor integer NOT NULL
    ) STRICT",
    "CREATE TABLE IF NOT EXISTS ledger_bookings (
        booking_id  text PRIMARY KEY,
        customer_id text NOT NULL
    ) STRICT",
];

impl Projector for Ledger {
    fn name(&self) -> &'static str {
        "ledger"
    }

    fn version(&self) -> i64 {
        1
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "ledger_accounts",
            "ledger_entries",
            "ledger_lines",
            "ledger_orders",
            "ledger_payments",
            "ledger_loans",
            "ledger_policies",
            "ledger_bookings",
        ]
    }

    fn schema(&self) -> &'static [&'static str] {
        SCHEMA
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        // The aggregate types `apply` dispatches on; every other event leaves its tables alone.
        Some(&["Order", "Payment", "Loan", "Policy", "Booking"])
    }

    fn apply<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        event: &'a RecordedEvent,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(apply(conn, event))
    }
}

/// One line of an entry: exactly one of `debit`/`credit` is positive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub account: String,
    pub debit_minor: i64,
    pub credit_minor: i64,
    pub currency: String,
    pub customer_id: Option<String>,
}

/// A journal entry before it is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub business_date: NaiveDate,
    pub description: String,
    pub customer_id: Option<String>,
    pub lines: Vec<Line>,
}

impl Entry {
    fn new(business_date: NaiveDate, description: String, customer_id: Option<String>) -> Self {
        Entry {
            business_date,
            description,
            customer_id,
            lines: Vec::new(),
        }
    }

    /// Adds a debit line (zero amounts are left out).
    fn debit(mut self, account: &str, minor: i64, currency: &str, customer: Option<&str>) -> Self {
        if minor != 0 {
            self.lines.push(Line {
                account: account.to_owned(),
                debit_minor: minor,
                credit_minor: 0,
                currency: currency.to_owned(),
                customer_id: customer.map(str::to_owned),
            });
        }
        self
    }

    /// Adds a credit line (zero amounts are left out).
    fn credit(mut self, account: &str, minor: i64, currency: &str, customer: Option<&str>) -> Self {
        if minor != 0 {
            self.lines.push(Line {
                account: account.to_owned(),
                debit_minor: 0,
                credit_minor: minor,
                currency: currency.to_owned(),
                customer_id: customer.map(str::to_owned),
            });
        }
        self
    }

    /// Why the entry must not be posted, if it must not: a negative or two-sided line, or debits
    /// and credits that differ in some currency.
    pub fn unbalanced(&self) -> Option<String> {
        let mut totals: std::collections::BTreeMap<&str, (i128, i128)> = Default::default();
        for line in &self.lines {
            if line.debit_minor < 0
                || line.credit_minor < 0
                || (line.debit_minor > 0) == (line.credit_minor > 0)
            {
                return Some(format!(
                    "line on {} is not one positive amount on one side (debit {}, credit {})",
                    line.account, line.debit_minor, line.credit_minor
                ));
            }
            let total = totals.entry(line.currency.as_str()).or_default();
            total.0 += i128::from(line.debit_minor);
            total.1 += i128::from(line.credit_minor);
        }
        totals
            .into_iter()
            .find(|(_, (debit, credit))| debit != credit)
            .map(|(currency, (debit, credit))| {
                format!(
                    "unbalanced entry: debits {debit} != credits {credit} {currency} (minor units)"
                )
            })
    }
}

/// The Moscow calendar date of an instant ([`aggregates::calendar::business_date`]).
pub fn moscow_date(at: DateTime<Utc>) -> NaiveDate {
    aggregates::calendar::business_date(at)
}

async fn apply(conn: &mut AnyConnection, event: &RecordedEvent) -> Result<(), ProjectionError> {
    let entry = match event.aggregate_type.as_str() {
        "Order" => order(conn, event).await?,
        "Payment" => payment(conn, event).await?,
        "Loan" => loan(conn, event).await?,
        "Policy" => policy(conn, event).await?,
        "Booking" => booking(conn, event).await?,
        _ => None,
    };
    match entry {
        Some(entry) => post(conn, event, entry).await,
        None => Ok(()),
    }
}

/// Asserts the entry balances, then writes it and its lines.
async fn post(
    conn: &mut AnyConnection,
    event: &RecordedEvent,
    entry: Entry,
) -> Result<(), ProjectionError> {
    if entry.lines.is_empty() {
        return Ok(());
    }
    if let Some(reason) = entry.unbalanced() {
        return Err(crate::inconsistent(event, reason));
    }
    sqlx::query(
        "INSERT INTO ledger_entries (position, business_date, description, customer_id, aggregate_type,
            aggregate_id, event_type, recorded_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(event.position)
    .bind(entry.business_date.to_string())
    .bind(&entry.description)
    .bind(&entry.customer_id)
    .bind(&event.aggregate_type)
    .bind(&event.aggregate_id)
    .bind(&event.event_type)
    .bind(crate::rfc3339(event.recorded_at))
    .execute(&mut *conn)
    .await?;
    for (number, line) in entry.lines.iter().enumerate() {
        sqlx::query(
            "INSERT INTO ledger_lines (position, line_no, account_code, debit_minor, credit_minor,
                currency, customer_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(event.position)
        .bind(number as i64 + 1)
        .bind(&line.account)
        .bind(line.debit_minor)
        .bind(line.credit_minor)
        .bind(&line.currency)
        .bind(&line.customer_id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// A lookup row the event's own creation event must have written.
fn missing(event: &RecordedEvent, what: &str) -> ProjectionError {
    crate::inconsistent(
        event,
        format!("no {what} {} in the ledger", event.aggregate_id),
    )
}

async fn order(
    conn: &mut AnyConnection,
    event: &RecordedEvent,
) -> Result<Option<Entry>, ProjectionError> {
    let id = event.aggregate_id.as_str();
    match event.decode::<OrderEvent>()? {
        OrderEvent::OrderDrafted {
            customer_id, price, ..
        } => {
            sqlx::query(
                "INSERT INTO ledger_orders (order_id, customer_id, currency, price_minor, total_minor)
                 VALUES ($1, $2, $3, $4, $4)",
            )
            .bind(id)
            .bind(customer_id.to_string())
            .bind(price.currency().code())
            .bind(price.minor_units())
            .execute(&mut *conn)
            .await?;
            Ok(None)
        }
        OrderEvent::DiscountApplied { total, .. } => {
            let rows = sqlx::query("UPDATE ledger_orders SET total_minor = $1 WHERE order_id = $2")
                .bind(total.minor_units())
                .bind(id)
                .execute(&mut *conn)
                .await?
                .rows_affected();
            crate::expect_one_row(event, rows)?;
            Ok(None)
        }
        OrderEvent::OrderHandedOver { handed_over_at } => {
            let row = sqlx::query(
                "SELECT customer_id, currency, price_minor, total_minor FROM ledger_orders WHERE order_id = $1",
            )
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| missing(event, "order"))?;
            let customer: String = row.get(0);
            let currency: String = row.get(1);
            let price: i64 = row.get(2);
            let total: i64 = row.get(3);
            let c = Some(customer.as_str());
            Ok(Some(
                Entry::new(
                    moscow_date(handed_over_at),
                    format!("Vehicle sale: order {id} handed over"),
                    Some(customer.clone()),
                )
                .debit(CUSTOMER_ADVANCES, total, &currency, c)
                .debit(SALES_DISCOUNTS, price - total, &currency, None)
                .credit(VEHICLE_SALES, price, &currency, None),
            ))
        }
        _ => Ok(None),
    }
}

/// order id, customer id, method, currency, amount (minor units) of a payment.
type PaymentRow = (String, String, String, String, i64);

async fn payment_lookup(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<PaymentRow>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT order_id, customer_id, method, currency, amount_minor FROM ledger_payments
          WHERE payment_id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|row| (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4))))
}

async fn loan_customer(conn: &mut AnyConnection, id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT customer_id FROM ledger_loans WHERE loan_id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
}

async fn payment(
    conn: &mut AnyConnection,
    event: &RecordedEvent,
) -> Result<Option<Entry>, ProjectionError> {
    let id = event.aggregate_id.as_str();
    match event.decode::<PaymentEvent>()? {
        PaymentEvent::PaymentInitiated {
            order_id,
            customer_id,
            amount,
            method,
            ..
        } => {
            sqlx::query(
                "INSERT INTO ledger_payments (payment_id, order_id, customer_id, method, currency, amount_minor)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id)
            .bind(order_id.to_string())
            .bind(customer_id.to_string())
            .bind(method.kind().as_str())
            .bind(amount.currency().code())
            .bind(amount.minor_units())
            .execute(&mut *conn)
            .await?;
            Ok(None)
        }
        PaymentEvent::PaymentCompleted { completed_at } => {
            let (order_id, customer, method, currency, amount) = payment_lookup(conn, id)
                .await?
                .ok_or_else(|| missing(event, "payment"))?;
            if method == PaymentMethodKind::Credit.as_str() {
                return Ok(None);
            }
            let c = Some(customer.as_str());
            Ok(Some(
                Entry::new(
                    moscow_date(completed_at),
                    format!("Payment {id} ({method}) received for order {order_id}"),
                    Some(customer.clone()),
                )
                .debit(CASH, amount, &currency, None)
                .credit(CUSTOMER_ADVANCES, amount, &currency, c),
            ))
        }
        PaymentEvent::PaymentRefunded {
            refund_id,
            amount,
            refunded_at,
            ..
        } => {
            let (order_id, customer, _, _, _) = payment_lookup(conn, id)
                .await?
                .ok_or_else(|| missing(event, "payment"))?;
            let currency = amount.currency().code();
            let c = Some(customer.as_str());
            Ok(Some(
                Entry::new(
                    moscow_date(refunded_at),
                    format!("Refund {refund_id} of payment {id} for order {order_id}"),
                    Some(customer.clone()),
                )
                .debit(CUSTOMER_ADVANCES, amount.minor_units(), currency, c)
                .credit(CASH, amount.minor_units(), currency, None),
            ))
        }
        _ => Ok(None),
    }
}

fn sum_minor<'a>(amounts: impl Iterator<Item = &'a Money>) -> i64 {
    amounts.map(Money::minor_units).sum()
}

async fn loan(
    conn: &mut AnyConnection,
    event: &RecordedEvent,
) -> Result<Option<Entry>, ProjectionError> {
    let id = event.aggregate_id.as_str();
    match event.decode::<LoanEvent>()? {
        LoanEvent::LoanApplied {
            order_id,
            customer_id,
            ..
        } => {
            sqlx::query(
                "INSERT INTO ledger_loans (loan_id, order_id, customer_id) VALUES ($1, $2, $3)",
            )
            .bind(id)
            .bind(order_id.to_string())
            .bind(customer_id.to_string())
            .execute(&mut *conn)
            .await?;
            Ok(None)
        }
        LoanEvent::LoanDisbursed {
            disbursed_on,
            principal,
            ..
        } => {
            let customer = loan_customer(conn, id)
                .await?
                .ok_or_else(|| missing(event, "loan"))?;
            let currency = principal.currency().code();
            let c = Some(customer.as_str());
            Ok(Some(
                Entry::new(
                    disbursed_on,
                    format!("Loan {id} disbursed to pay its order"),
                    Some(customer.clone()),
                )
                .debit(LOAN_RECEIVABLE, principal.minor_units(), currency, c)
                .credit(CUSTOMER_ADVANCES, principal.minor_units(), currency, c),
            ))
        }
        LoanEvent::LoanRepaymentRecorded {
            amount,
            paid_on,
            allocations,
        } => {
            let customer = loan_customer(conn, id)
                .await?
                .ok_or_else(|| missing(event, "loan"))?;
            let principal = sum_minor(allocations.iter().map(|a| &a.principal));
            let interest = sum_minor(allocations.iter().map(|a| &a.interest));
            Ok(Some(repayment(
                id,
                &customer,
                paid_on,
                "Repayment",
                amount,
                principal,
                interest,
            )))
        }
        LoanEvent::LoanRepaidEarly {
            paid_on,
            amount,
            principal,
            interest,
            ..
        } => {
            let customer = loan_customer(conn, id)
                .await?
                .ok_or_else(|| missing(event, "loan"))?;
            Ok(Some(repayment(
                id,
                &customer,
                paid_on,
                "Early repayment",
                amount,
                principal.minor_units(),
                interest.minor_units(),
            )))
        }
        _ => Ok(None),
    }
}

fn repayment(
    loan_id: &str,
    customer: &str,
    paid_on: NaiveDate,
    what: &str,
    amount: Money,
    principal: i64,
    interest: i64,
) -> Entry {
    let currency = amount.currency().code();
    Entry::new(
        paid_on,
        format!("{what} of loan {loan_id}"),
        Some(customer.to_owned()),
    )
    .debit(CASH, amount.minor_units(), currency, None)
    .credit(LOAN_RECEIVABLE, principal, currency, Some(customer))
    .credit(INTEREST_INCOME, interest, currency, None)
}

async fn policy(
    conn: &mut AnyConnection,
    event: &RecordedEvent,
) -> Result<Option<Entry>, ProjectionError> {
    let id = event.aggregate_id.as_str();
    let decoded = event.decode::<PolicyEvent>()?;
    if let PolicyEvent::PolicyIssued {
        insurer,
        holder,
        premium,
        commission,
        ..
    } = &decoded
    {
        sqlx::query(
            "INSERT INTO ledger_policies (policy_id, customer_id, insurer, currency, premium_minor,
                commission_minor)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(holder.to_string())
        .bind(insurer)
        .bind(premium.currency().code())
        .bind(premium.minor_units())
        .bind(commission.minor_units())
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "INSERT INTO ledger_accounts (code, name, account_type, normal_side, parent_code, insurer)
             VALUES ($1, $2, 'LIABILITY', 'CREDIT', $3, $4)
             ON CONFLICT DO NOTHING",
        )
        .bind(premiums_payable(insurer))
        .bind(format!("Insurance premiums payable to {insurer}"))
        .bind(PREMIUMS_PAYABLE)
        .bind(insurer)
        .execute(&mut *conn)
        .await?;
        return Ok(None);
    }
    let money_event = matches!(
        decoded,
        PolicyEvent::PolicyPremiumPaid { .. }
            | PolicyEvent::PolicyCancelled { .. }
            | PolicyEvent::ClaimApproved { .. }
            | PolicyEvent::ClaimPaid { .. }
    );
    if !money_event {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT customer_id, insurer, premium_minor, commission_minor FROM ledger_policies
          WHERE policy_id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| missing(event, "policy"))?;
    let customer: String = row.get(0);
    let insurer: String = row.get(1);
    let premium: i64 = row.get(2);
    let commission: i64 = row.get(3);
    let payable = premiums_payable(&insurer);
    let entry =
        |at: NaiveDate, description: String| Entry::new(at, description, Some(customer.clone()));
    let c = Some(customer.as_str());
    Ok(match decoded {
        PolicyEvent::PolicyPremiumPaid { amount, paid_at } => {
            let currency = amount.currency().code();
            Some(
                entry(
                    moscow_date(paid_at),
                    format!("Premium of policy {id} collected for {insurer}, commission withheld"),
                )
                .debit(CASH, amount.minor_units(), currency, None)
                .credit(&payable, amount.minor_units(), currency, None)
                .debit(&payable, commission, currency, None)
                .credit(COMMISSION_INCOME, commission, currency, None),
            )
        }
        PolicyEvent::PolicyCancelled {
            refund,
            cancelled_at,
            ..
        } if refund.is_positive() => {
            let currency = refund.currency().code();
            let claw_back = claw_back(commission, refund.minor_units(), premium);
            Some(
                entry(
                    moscow_date(cancelled_at),
                    format!("Policy {id} cancelled: premium refunded, commission clawed back"),
                )
                .debit(&payable, refund.minor_units() - claw_back, currency, None)
                .debit(COMMISSION_INCOME, claw_back, currency, None)
                .credit(CASH, refund.minor_units(), currency, None),
            )
        }
        PolicyEvent::ClaimApproved {
            claim_id,
            amount,
            at,
        } => {
            let currency = amount.currency().code();
            Some(
                entry(
                    moscow_date(at),
                    format!("Claim {claim_id} on policy {id} approved by {insurer}"),
                )
                .debit(&payable, amount.minor_units(), currency, None)
                .credit(CLAIMS_PAYABLE, amount.minor_units(), currency, c),
            )
        }
        PolicyEvent::ClaimPaid {
            claim_id,
            amount,
            at,
        } => {
            let currency = amount.currency().code();
            Some(
                entry(
                    moscow_date(at),
                    format!("Claim {claim_id} on policy {id} paid out for {insurer}"),
                )
                .debit(CLAIMS_PAYABLE, amount.minor_units(), currency, c)
                .credit(CASH, amount.minor_units(), currency, None),
            )
        }
        _ => None,
    })
}

/// The commission clawed back by a cancellation refund: `commission × refund / premium` in minor
/// units, rounded to kopecks by `KOPECK_ROUNDING`.
pub fn claw_back(commission_minor: i64, refund_minor: i64, premium_minor: i64) -> i64 {
    if premium_minor == 0 {
        return 0;
    }
    let share = Decimal::from(commission_minor) * Decimal::from(refund_minor)
        / Decimal::from(premium_minor);
    // Minor units are whole kopecks: rounding to kopecks of the rouble value is rounding to an
    // integer here.
    let roubles = round_to_kopecks(share / Decimal::from(100));
    (roubles * Decimal::from(100))
        .trunc()
        .try_into()
        .unwrap_or(0)
}

async fn booking(
    conn: &mut AnyConnection,
    event: &RecordedEvent,
) -> Result<Option<Entry>, ProjectionError> {
    let id = event.aggregate_id.as_str();
    match event.decode::<BookingEvent>()? {
        BookingEvent::ServiceBooked { customer_id, .. } => {
            sqlx::query("INSERT INTO ledger_bookings (booking_id, customer_id) VALUES ($1, $2)")
                .bind(id)
                .bind(customer_id.to_string())
                .execute(&mut *conn)
                .await?;
            Ok(None)
        }
        BookingEvent::BookingCompleted {
            cost, completed_at, ..
        } if cost.is_positive() => {
            let customer = sqlx::query_scalar::<_, String>(
                "SELECT customer_id FROM ledger_bookings WHERE booking_id = $1",
            )
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| missing(event, "booking"))?;
            let currency = cost.currency().code();
            let c = Some(customer.as_str());
            Ok(Some(
                Entry::new(
                    moscow_date(completed_at),
                    format!("Service booking {id} completed"),
                    Some(customer.clone()),
                )
                .debit(CUSTOMER_RECEIVABLES, cost.minor_units(), currency, c)
                .credit(SERVICE_REVENUE, cost.minor_units(), currency, None),
            ))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(account: &str, debit: i64, credit: i64) -> Line {
        Line {
            account: account.into(),
            debit_minor: debit,
            credit_minor: credit,
            currency: "RUB".into(),
            customer_id: None,
        }
    }

    fn entry(lines: Vec<Line>) -> Entry {
        Entry {
            business_date: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            description: "test".into(),
            customer_id: None,
            lines,
        }
    }

    #[test]
    fn a_balanced_entry_is_accepted() {
        assert_eq!(
            entry(vec![line(CASH, 100, 0), line(CUSTOMER_ADVANCES, 0, 100)]).unbalanced(),
            None
        );
    }

    #[test]
    fn an_unbalanced_entry_is_refused() {
        assert!(
            entry(vec![line(CASH, 100, 0), line(CUSTOMER_ADVANCES, 0, 99)])
                .unbalanced()
                .is_some()
        );
    }

    #[test]
    fn a_two_sided_or_negative_line_is_refused() {
        assert!(entry(vec![line(CASH, 100, 100)]).unbalanced().is_some());
        assert!(
            entry(vec![line(CASH, -5, 0), line(CUSTOMER_ADVANCES, -5, 0)])
                .unbalanced()
                .is_some()
        );
    }

    #[test]
    fn commission_is_clawed_back_in_proportion_rounded_to_kopecks() {
        // 10 % commission on 10 000.00, half refunded: 500.00 back.
        assert_eq!(claw_back(100_000, 500_000, 1_000_000), 50_000);
        // 1/3 of 100.00 commission: 33.333… → 33.33.
        assert_eq!(claw_back(10_000, 1, 3), 3_333);
        // Midpoint away from zero: 0.005 → 0.01.
        assert_eq!(claw_back(1, 1, 2), 1);
        assert_eq!(claw_back(0, 5, 10), 0);
    }

    #[test]
    fn the_table_of_accounts_holds_exactly_the_documented_chart() {
        let inserts = SCHEMA
            .iter()
            .find(|statement| statement.starts_with("INSERT INTO ledger_accounts"))
            .unwrap();
        for account in CHART {
            let row = format!(
                "('{}', '{}', '{}', '{}')",
                account.code,
                account.name,
                account.account_type.as_str(),
                account.account_type.normal_side().as_str()
            );
            assert!(inserts.contains(&row), "{row} missing from {inserts}");
        }
        assert_eq!(inserts.matches("('").count(), CHART.len());
    }

    #[test]
    fn business_dates_are_moscow_dates() {
        let late = "2026-03-01T22:30:00Z".parse::<DateTime<Utc>>().unwrap();
        assert_eq!(
            moscow_date(late),
            NaiveDate::from_ymd_opt(2026, 3, 2).unwrap()
        );
    }
}
