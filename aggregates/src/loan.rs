//! Loan: financing for one vehicle order, from application to payoff or default.
//!
//! Status machine (`NotApplied` before the first event), all of it in one function, `transition`:
//!
//! ```text
//! NotApplied --Apply--> Draft --Update--> Draft
//!                       Draft --Submit--> Submitted --StartReview--> UnderReview
//!                       UnderReview --Decide--> Approved | Rejected (by the credit policy)
//!                       Submitted, UnderReview, Approved --Reject--> Rejected (by staff, with a reason)
//!                       Approved --Disburse--> Active
//!                       Active --RecordRepayment, RepayEarly(partial), AssessArrears--> Active
//!                       Active --last instalment paid, RepayEarly(full)--> Completed
//!                       Active --AssessArrears (more than 60 days past due)--> Defaulted
//! ```
//!
//! Invariants (`handle` enforces them, `apply` re-asserts them with `debug_assert!`):
//! - `loan amount = vehicle price − down payment > 0`, every amount in the price's currency;
//! - the schedule's principal parts sum exactly to the principal still to be scheduled, every
//!   amount is ≥ 0, and the last instalment leaves a balance of exactly zero (see [`schedule`]);
//! - principal repaid never exceeds the loan amount; `Completed`, `Rejected` and `Defaulted` are
//!   terminal.
//!
//! Rules decided here (what a dealership's finance desk expects; the credit policy itself is a
//! table in [`credit`]):
//! - **Application.** One loan per application, for one order; the command layer takes the vehicle
//!   price from the order's total. The credit score must be 300–850, the term within the type's
//!   limits, the income not negative, and the down payment at least 0 and below the price. The
//!   details can be changed only while the application is a draft.
//! - **Interest** is counted by actual days (see [`schedule`] for the formula, the year split, the
//!   annuity payment, the first instalment's irregular period and the last instalment's
//!   adjustment): `balance × annual rate × days / 365 or 366`. The day count is fixed in the
//!   approval ([`DayCount`]) for the loan's whole life: loans approved before it (`LoanApproved`
//!   1.0) keep the legacy "monthly, 1/12" rule and the schedules their events carry.
//! - **Decision.** Made only under review, by [`credit::decide`]. An approval fixes the rate, the
//!   schedule kind, the day count and the whole schedule in the event (so a later change to the
//!   policy or to rounding never rewrites an issued schedule); a refusal records every failed rule.
//!   The schedule is the offer: its first period runs from the decision's business date (the
//!   command carries it: the dealership's calendar day, not UTC's). The first due date comes in
//!   the command and must be after the decision date and at most [`MAX_FIRST_DUE_MONTHS`] months
//!   after it. Staff may reject by hand, with a reason, at any point before disbursement.
//! - **Disbursement** must be dated before the first due date. Money lent on another day than the
//!   decision re-issues the schedule in `LoanDisbursed` (same payment or principal part, same due
//!   dates, the first period from the disbursement), so no day is charged before the money is lent
//!   and none is left out.
//! - **Repayments** pay the oldest instalment not yet fully paid first, and within an instalment
//!   its interest before its principal; an amount beyond what is left to pay on the whole schedule is
//!   refused. Paying the last instalment completes the loan. A payment may run ahead of the schedule
//!   (it pays the following instalments as scheduled; it is not an early repayment).
//! - **Early repayment** is refused while any instalment due before the payment date is unpaid
//!   (`LOAN_IN_ARREARS`: pay the arrears first) or while the next instalment is partly paid
//!   (`INSTALMENT_PARTLY_PAID`: pay the rest of it first).
//!   - *Accrued interest* on a date is the interest on the outstanding principal by actual days from
//!     the start of the period in progress (the previous due date, the disbursement, or the last
//!     partial early repayment, whichever is latest) to that date, clamped to the period, rounded
//!     once to kopecks by [`KOPECK_ROUNDING`](crate::money::KOPECK_ROUNDING). Paying instalments
//!     ahead of time moves the period in progress forward, so a repayment before it starts accrues
//!     nothing.
//!   - *Partial*: the amount pays the interest accrued to its date first and the rest reduces the
//!     principal, which must stay above zero; an amount not above the accrued interest is refused
//!     (`EARLY_REPAYMENT_BELOW_ACCRUED_INTEREST`). Civil Code art. 809 p. 4 (as amended by Federal
//!     Law 284-FZ of 19 October 2011): on an early repayment, in full or in part, the lender is
//!     owed the interest accrued up to the day of repayment, so nothing accrued is forgiven. The schedule is then recalculated from the next unpaid
//!     instalment (same numbers and due dates) on the reduced balance, that instalment's period
//!     running from the repayment date. `SHORTEN_TERM` keeps the payment (annuity) or the principal
//!     part (differentiated) and drops instalments from the end; `LOWER_PAYMENT` keeps the number of
//!     instalments and lowers the payment. The new schedule is carried in the event.
//!   - *Full*: the payoff is the outstanding principal plus the interest accrued to the date: the
//!     same interest a partial repayment that day pays first. The amount paid must equal the payoff
//!     (`PAYOFF_AMOUNT_MISMATCH` tells the expected amount; [`Loan::payoff`] and the `payoff(on)`
//!     query quote it); the loan is then completed.
//!   - Legacy "monthly, 1/12" loans keep their old rules: a partial amount goes wholly to principal
//!     and the next instalment takes a month's interest on the reduced balance; the accrued
//!     interest of a payoff is `principal × annual rate / 12 × elapsed days / days in period`.
//! - **Arrears.** `AssessArrears { as_of }` (staff or a daily job) marks every instalment unpaid
//!   after its due date as overdue. When the oldest unpaid instalment is more than
//!   [`DEFAULT_AFTER_DAYS_PAST_DUE`] (60) calendar days past due, the loan is defaulted: the threshold
//!   of Federal Law 353-FZ art. 14, after which a Russian lender may demand the whole loan back.
//!   Repaying an overdue instalment clears it; a defaulted loan accepts no further command
//!   (collection happens outside this ledger).
//! - Dates (`decided_on`, `paid_on`, `as_of`, `disbursed_on`) come in commands: the business dates
//!   of the command layer's one clock.

pub mod credit;
pub mod full_cost;
mod repayment;
pub mod schedule;

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::money::{Currency, Money};
use credit::{CreditDecision, CreditFinding, CreditRule};
pub use repayment::{accrued_interest, period_in_progress_start};
use schedule::{Accrual, DayCount, Instalment, Rule, ScheduleKind};

/// The first instalment falls due at most this many months after the decision (see
/// [`LoanError::FirstDueDateTooLate`]).
pub const MAX_FIRST_DUE_MONTHS: u32 = 2;

/// The latest first due date a decision on `decided_on` allows.
pub fn latest_first_due_date(decided_on: NaiveDate) -> NaiveDate {
    decided_on
        .checked_add_months(chrono::Months::new(MAX_FIRST_DUE_MONTHS))
        .unwrap_or(NaiveDate::MAX)
}

/// The first due date when the decision names none: one month after the decision (the same day of the
/// month, or the month's last day).
pub fn default_first_due_date(decided_on: NaiveDate) -> NaiveDate {
    decided_on
        .checked_add_months(chrono::Months::new(1))
        .unwrap_or(NaiveDate::MAX)
}

/// The version of `LoanApproved` and `LoanDisbursed` since actual-day interest (see
/// [`upcasters`]).
pub const LOAN_EVENT_VERSION_2: &str = "2.0";

/// Upcasters of loan events stored at version 1.0: `LoanApproved` gains the legacy day count and
/// the UTC date of its `decided_at` as `accrues_from` (what 1.0 computed its schedule with);
/// `LoanDisbursed` gains an empty `schedule` (the approved one stands).
pub fn upcasters() -> Vec<Box<dyn cqrs_es::persist::EventUpcaster>> {
    use cqrs_es::persist::SemanticVersionEventUpcaster;
    use serde_json::{Value, json};
    let approved = SemanticVersionEventUpcaster::new(
        "LoanApproved",
        LOAN_EVENT_VERSION_2,
        Box::new(|mut payload: Value| {
            if let Some(body) = payload
                .get_mut("LoanApproved")
                .and_then(Value::as_object_mut)
            {
                let decided_on = body
                    .get("decided_at")
                    .and_then(Value::as_str)
                    .and_then(|at| at.get(..10))
                    .map(str::to_owned);
                body.insert("day_count".into(), json!("MonthlyTwelfth"));
                if let Some(decided_on) = decided_on {
                    body.insert("accrues_from".into(), json!(decided_on));
                }
            }
            payload
        }),
    );
    let disbursed = SemanticVersionEventUpcaster::new(
        "LoanDisbursed",
        LOAN_EVENT_VERSION_2,
        Box::new(|mut payload: Value| {
            if let Some(body) = payload
                .get_mut("LoanDisbursed")
                .and_then(Value::as_object_mut)
            {
                body.insert("schedule".into(), json!([]));
            }
            payload
        }),
    );
    vec![Box::new(approved), Box::new(disbursed)]
}

/// An instalment unpaid for more than this many calendar days after its due date defaults the loan.
pub const DEFAULT_AFTER_DAYS_PAST_DUE: i64 = 60;

/// What kind of financing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LoanType {
    /// A bank car loan through the dealership ("автокредит").
    CarLoan,
    /// Leasing: the lessor owns the car until the last payment.
    Leasing,
    /// The dealer's own interest-free instalment plan ("рассрочка"), short terms only.
    Instalment,
}

impl LoanType {
    pub fn as_str(self) -> &'static str {
        match self {
            LoanType::CarLoan => "CAR_LOAN",
            LoanType::Leasing => "LEASING",
            LoanType::Instalment => "INSTALMENT",
        }
    }
}

/// How the applicant earns a living.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EmploymentStatus {
    Employed,
    SelfEmployed,
    Retired,
    Unemployed,
}

impl EmploymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EmploymentStatus::Employed => "EMPLOYED",
            EmploymentStatus::SelfEmployed => "SELF_EMPLOYED",
            EmploymentStatus::Retired => "RETIRED",
            EmploymentStatus::Unemployed => "UNEMPLOYED",
        }
    }
}

/// Where a loan is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum LoanStatus {
    /// No event yet: the loan does not exist as far as the ledger knows.
    #[default]
    NotApplied,
    Draft,
    Submitted,
    UnderReview,
    Approved,
    Rejected,
    Active,
    Completed,
    Defaulted,
}

impl LoanStatus {
    /// The stable upper-case name used by the API and the read models.
    pub fn as_str(self) -> &'static str {
        match self {
            LoanStatus::NotApplied => "NOT_APPLIED",
            LoanStatus::Draft => "DRAFT",
            LoanStatus::Submitted => "SUBMITTED",
            LoanStatus::UnderReview => "UNDER_REVIEW",
            LoanStatus::Approved => "APPROVED",
            LoanStatus::Rejected => "REJECTED",
            LoanStatus::Active => "ACTIVE",
            LoanStatus::Completed => "COMPLETED",
            LoanStatus::Defaulted => "DEFAULTED",
        }
    }

    /// Rejected, completed and defaulted loans accept no further command.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            LoanStatus::Rejected | LoanStatus::Completed | LoanStatus::Defaulted
        )
    }
}

impl fmt::Display for LoanStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the applicant asks for and declares.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Application {
    pub down_payment: Money,
    pub loan_type: LoanType,
    pub term_months: u32,
    pub employment: EmploymentStatus,
    pub monthly_income: Money,
    pub credit_score: u16,
}

/// Changes to a draft application: only the fields given change.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplicationChanges {
    pub down_payment: Option<Money>,
    pub loan_type: Option<LoanType>,
    pub term_months: Option<u32>,
    pub employment: Option<EmploymentStatus>,
    pub monthly_income: Option<Money>,
    pub credit_score: Option<u16>,
}

/// An application's details as recorded: the application plus the price and the loan amount.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoanDetails {
    pub vehicle_price: Money,
    pub down_payment: Money,
    /// `vehicle_price − down_payment`, recorded, not recomputed on replay.
    pub loan_amount: Money,
    pub loan_type: LoanType,
    pub term_months: u32,
    pub employment: EmploymentStatus,
    pub monthly_income: Money,
    pub credit_score: u16,
}

impl LoanDetails {
    /// Validates `application` against `vehicle_price` and computes the loan amount.
    pub fn new(vehicle_price: Money, application: Application) -> Result<LoanDetails, LoanError> {
        let Application {
            down_payment,
            loan_type,
            term_months,
            employment,
            monthly_income,
            credit_score,
        } = application;
        if !vehicle_price.is_positive() {
            return Err(LoanError::NonPositivePrice);
        }
        for amount in [down_payment, monthly_income] {
            if amount.currency() != vehicle_price.currency() {
                return Err(LoanError::CurrencyMismatch {
                    expected: vehicle_price.currency(),
                    found: amount.currency(),
                });
            }
        }
        let (low, high) = credit::SCORE_RANGE;
        if !(low..=high).contains(&credit_score) {
            return Err(LoanError::CreditScoreOutOfRange {
                score: credit_score,
            });
        }
        let (min, max) = credit::term_limits(loan_type);
        if !(min..=max).contains(&term_months) {
            return Err(LoanError::TermOutOfRange {
                loan_type,
                term_months,
                min,
                max,
            });
        }
        if monthly_income.is_negative() {
            return Err(LoanError::NegativeIncome);
        }
        if down_payment.is_negative() {
            return Err(LoanError::NegativeDownPayment);
        }
        if down_payment.amount() >= vehicle_price.amount() {
            return Err(LoanError::DownPaymentNotBelowPrice {
                down_payment,
                price: vehicle_price,
            });
        }
        let loan_amount = vehicle_price
            .checked_sub(down_payment)
            .map_err(|_| LoanError::NegativeDownPayment)?;
        Ok(LoanDetails {
            vehicle_price,
            down_payment,
            loan_amount,
            loan_type,
            term_months,
            employment,
            monthly_income,
            credit_score,
        })
    }

    /// The application these details came from.
    pub fn application(&self) -> Application {
        Application {
            down_payment: self.down_payment,
            loan_type: self.loan_type,
            term_months: self.term_months,
            employment: self.employment,
            monthly_income: self.monthly_income,
            credit_score: self.credit_score,
        }
    }
}

/// How the rest of the schedule changes after a partial early repayment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Recalculation {
    /// Keep the payment, pay off sooner.
    ShortenTerm,
    /// Keep the number of instalments, pay less each time.
    LowerPayment,
}

impl Recalculation {
    pub fn as_str(self) -> &'static str {
        match self {
            Recalculation::ShortenTerm => "SHORTEN_TERM",
            Recalculation::LowerPayment => "LOWER_PAYMENT",
        }
    }
}

/// An early repayment as the customer asks for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EarlyRepayment {
    /// `amount` off the principal, the schedule recalculated.
    Partial {
        amount: Money,
        recalculation: Recalculation,
    },
    /// The whole loan; `amount` must equal the payoff (principal + accrued interest).
    Full { amount: Money },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LoanCommand {
    Apply {
        order_id: Uuid,
        customer_id: Uuid,
        /// The order's total, looked up by the command layer.
        vehicle_price: Money,
        application: Application,
        applied_at: DateTime<Utc>,
    },
    UpdateApplication {
        changes: ApplicationChanges,
    },
    Submit {
        submitted_at: DateTime<Utc>,
    },
    StartReview {
        started_at: DateTime<Utc>,
    },
    /// Runs the credit policy; approves with a fixed schedule or rejects with reasons.
    Decide {
        schedule_kind: ScheduleKind,
        first_due_date: NaiveDate,
        decided_at: DateTime<Utc>,
        /// The business date of the decision (the dealership's calendar day of `decided_at`):
        /// the offer's first period starts on it.
        decided_on: NaiveDate,
    },
    Reject {
        reason: String,
        rejected_at: DateTime<Utc>,
    },
    Disburse {
        disbursed_on: NaiveDate,
    },
    RecordRepayment {
        amount: Money,
        paid_on: NaiveDate,
    },
    RepayEarly {
        repayment: EarlyRepayment,
        paid_on: NaiveDate,
    },
    AssessArrears {
        as_of: NaiveDate,
    },
}

/// What one repayment paid on one instalment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    pub instalment: u32,
    pub principal: Money,
    pub interest: Money,
}

/// What happened to a loan. The payloads are a public contract: see [`crate::upcasters`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LoanEvent {
    LoanApplied {
        order_id: Uuid,
        customer_id: Uuid,
        details: LoanDetails,
        applied_at: DateTime<Utc>,
    },
    /// The full details after the change.
    LoanApplicationUpdated {
        details: LoanDetails,
    },
    LoanApplicationSubmitted {
        submitted_at: DateTime<Utc>,
    },
    LoanReviewStarted {
        started_at: DateTime<Utc>,
    },
    /// The terms and the whole schedule, fixed. Version 2.0 added `day_count` and `accrues_from`
    /// (1.0 payloads are upcast to the legacy [`DayCount::MonthlyTwelfth`] and the UTC date of
    /// `decided_at`, what 1.0 computed with).
    LoanApproved {
        annual_rate_percent: Decimal,
        schedule_kind: ScheduleKind,
        first_due_date: NaiveDate,
        /// The annuity payment (ANNUITY: the total of every instalment but the first and the last) or
        /// the principal part (DIFFERENTIATED: of every instalment but the last).
        fixed_part: Money,
        schedule: Vec<Instalment>,
        checks: Vec<CreditFinding>,
        decided_at: DateTime<Utc>,
        /// How every period's interest of this loan is counted, for its whole life.
        day_count: DayCount,
        /// The day the schedule's first period starts from (the decision's business date): the
        /// offer assumes the money is lent that day.
        accrues_from: NaiveDate,
    },
    /// Refused by the credit policy (its failed rules) or by staff (one `STAFF_DECISION` reason).
    LoanRejected {
        reasons: Vec<CreditFinding>,
        rejected_at: DateTime<Utc>,
    },
    /// Version 2.0 added `schedule` (1.0 payloads are upcast with none).
    LoanDisbursed {
        disbursed_on: NaiveDate,
        principal: Money,
        /// The schedule re-issued from the disbursement date when the money is lent on another
        /// day than the approved schedule assumed (actual-day loans only: the first period's
        /// interest runs from the disbursement); empty when the approved schedule stands.
        schedule: Vec<Instalment>,
    },
    LoanRepaymentRecorded {
        amount: Money,
        paid_on: NaiveDate,
        allocations: Vec<Allocation>,
    },
    /// `principal + interest = amount`. A partial repayment carries the recalculated instalments
    /// (from the next unpaid one) and the new fixed part; a full one carries no schedule.
    LoanRepaidEarly {
        paid_on: NaiveDate,
        amount: Money,
        principal: Money,
        interest: Money,
        recalculation: Option<Recalculation>,
        fixed_part: Option<Money>,
        schedule: Vec<Instalment>,
    },
    InstalmentsFellOverdue {
        as_of: NaiveDate,
        instalments: Vec<u32>,
    },
    LoanDefaulted {
        as_of: NaiveDate,
        overdue_instalments: Vec<u32>,
        days_past_due: i64,
    },
    LoanCompleted {
        completed_on: NaiveDate,
    },
}

impl DomainEvent for LoanEvent {
    fn event_type(&self) -> String {
        let name = match self {
            LoanEvent::LoanApplied { .. } => "LoanApplied",
            LoanEvent::LoanApplicationUpdated { .. } => "LoanApplicationUpdated",
            LoanEvent::LoanApplicationSubmitted { .. } => "LoanApplicationSubmitted",
            LoanEvent::LoanReviewStarted { .. } => "LoanReviewStarted",
            LoanEvent::LoanApproved { .. } => "LoanApproved",
            LoanEvent::LoanRejected { .. } => "LoanRejected",
            LoanEvent::LoanDisbursed { .. } => "LoanDisbursed",
            LoanEvent::LoanRepaymentRecorded { .. } => "LoanRepaymentRecorded",
            LoanEvent::LoanRepaidEarly { .. } => "LoanRepaidEarly",
            LoanEvent::InstalmentsFellOverdue { .. } => "InstalmentsFellOverdue",
            LoanEvent::LoanDefaulted { .. } => "LoanDefaulted",
            LoanEvent::LoanCompleted { .. } => "LoanCompleted",
        };
        name.to_owned()
    }

    fn event_version(&self) -> String {
        match self {
            LoanEvent::LoanApproved { .. } | LoanEvent::LoanDisbursed { .. } => {
                LOAN_EVENT_VERSION_2.to_owned()
            }
            _ => "1.0".to_owned(),
        }
    }
}

/// Why a loan command was refused. Nothing was emitted; the loan is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoanError {
    /// No application with this id. The caller reports "not found" (a wrong id).
    #[error("loan not found")]
    NotApplied,
    /// A loan with this id already exists. The caller reports a conflict (a reused id).
    #[error("loan already exists")]
    AlreadyApplied,
    /// A credit score outside 300–850. The caller asks for the bureau's score.
    #[error("credit score {score} is outside 300–850")]
    CreditScoreOutOfRange { score: u16 },
    /// A term outside the type's limits. The caller asks for a term within them.
    #[error("a {} term must be {min} to {max} months, not {term_months}", loan_type.as_str())]
    TermOutOfRange {
        loan_type: LoanType,
        term_months: u32,
        min: u32,
        max: u32,
    },
    /// The price (the order's total) is zero or less. The caller cannot finance this order.
    #[error("the vehicle price must be greater than zero")]
    NonPositivePrice,
    /// A negative down payment. The caller asks for zero or more.
    #[error("the down payment must not be negative")]
    NegativeDownPayment,
    /// A down payment of the whole price or more: there is nothing to finance.
    #[error("down payment {down_payment} is not below the price {price}")]
    DownPaymentNotBelowPrice { down_payment: Money, price: Money },
    /// A negative monthly income. The caller asks for the declared income.
    #[error("the monthly income must not be negative")]
    NegativeIncome,
    /// An amount in another currency than the loan's. The caller converts it first.
    #[error("amount is in {found} but the loan is in {expected}")]
    CurrencyMismatch { expected: Currency, found: Currency },
    /// The first due date is not after the decision. The caller picks a later date.
    #[error("the first due date {first_due_date} must be after the decision date {decided_on}")]
    FirstDueDateNotAfterDecision {
        first_due_date: NaiveDate,
        decided_on: NaiveDate,
    },
    /// The first due date is more than [`MAX_FIRST_DUE_MONTHS`] months after the decision: the
    /// dealership's credit policy does not defer the first repayment longer. The caller picks an
    /// earlier date.
    #[error("the first due date {first_due_date} is too late: at most {latest}")]
    FirstDueDateTooLate {
        first_due_date: NaiveDate,
        latest: NaiveDate,
    },
    /// Disbursing on or after the first due date. Staff re-decide the loan with a later first due
    /// date (reject and apply again).
    #[error(
        "cannot disburse on {disbursed_on}: the first instalment falls due on {first_due_date}"
    )]
    DisbursementNotBeforeFirstDueDate {
        disbursed_on: NaiveDate,
        first_due_date: NaiveDate,
    },
    /// A payment or assessment dated before the disbursement. The caller checks the date.
    #[error("{date} is before the disbursement on {disbursed_on}")]
    DateBeforeDisbursement {
        date: NaiveDate,
        disbursed_on: NaiveDate,
    },
    /// An amount of zero or less. The caller asks for a positive amount.
    #[error("the amount must be greater than zero")]
    NonPositiveAmount,
    /// Rejecting without a reason. The caller asks for one.
    #[error("a reason for rejecting is required")]
    EmptyReason,
    /// A repayment larger than everything still to pay on the schedule. The caller takes the
    /// outstanding amount at most (or an early repayment).
    #[error("repayment {amount} exceeds the outstanding {outstanding}")]
    RepaymentExceedsOutstanding { amount: Money, outstanding: Money },
    /// Instalments due before the payment date are unpaid. The caller records a repayment first.
    #[error("instalments {overdue:?} are unpaid past their due dates; pay them first")]
    InArrears { overdue: Vec<u32> },
    /// The next instalment is partly paid. The caller pays the rest of it first.
    #[error("instalment {number} is partly paid; pay the rest of it first")]
    InstalmentPartlyPaid { number: u32 },
    /// A partial early repayment of the whole outstanding principal or more. The caller makes a
    /// full early repayment instead.
    #[error(
        "early repayment {amount} is not below the outstanding principal {outstanding_principal}; repay in full instead"
    )]
    EarlyRepaymentTooLarge {
        amount: Money,
        outstanding_principal: Money,
    },
    /// A partial early repayment that does not exceed the interest accrued to its date, so nothing
    /// would come off the principal. The caller pays more than `accrued_interest` (or waits for the
    /// next instalment).
    #[error(
        "early repayment {amount} does not exceed the interest accrued to its date, {accrued_interest}"
    )]
    EarlyRepaymentNotAboveAccruedInterest {
        amount: Money,
        accrued_interest: Money,
    },
    /// A full early repayment of another amount than the payoff. The caller pays `expected`.
    #[error("the payoff on this date is {expected}, not {offered}")]
    PayoffAmountMismatch { expected: Money, offered: Money },
    /// The loan's status does not allow this. The caller shows the status; retrying will not help.
    #[error("cannot {action}: the loan is {from}")]
    InvalidTransition {
        from: LoanStatus,
        action: &'static str,
    },
}

impl LoanError {
    /// A stable, machine-readable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            LoanError::NotApplied => "NOT_FOUND",
            LoanError::AlreadyApplied => "LOAN_ALREADY_EXISTS",
            LoanError::CreditScoreOutOfRange { .. }
            | LoanError::TermOutOfRange { .. }
            | LoanError::NonPositivePrice
            | LoanError::NegativeDownPayment
            | LoanError::DownPaymentNotBelowPrice { .. }
            | LoanError::NegativeIncome
            | LoanError::CurrencyMismatch { .. }
            | LoanError::FirstDueDateNotAfterDecision { .. }
            | LoanError::FirstDueDateTooLate { .. }
            | LoanError::DisbursementNotBeforeFirstDueDate { .. }
            | LoanError::DateBeforeDisbursement { .. }
            | LoanError::NonPositiveAmount
            | LoanError::EmptyReason => "VALIDATION",
            LoanError::RepaymentExceedsOutstanding { .. } => "REPAYMENT_EXCEEDS_OUTSTANDING",
            LoanError::InArrears { .. } => "LOAN_IN_ARREARS",
            LoanError::InstalmentPartlyPaid { .. } => "INSTALMENT_PARTLY_PAID",
            LoanError::EarlyRepaymentTooLarge { .. } => "EARLY_REPAYMENT_TOO_LARGE",
            LoanError::EarlyRepaymentNotAboveAccruedInterest { .. } => {
                "EARLY_REPAYMENT_BELOW_ACCRUED_INTEREST"
            }
            LoanError::PayoffAmountMismatch { .. } => "PAYOFF_AMOUNT_MISMATCH",
            LoanError::InvalidTransition { .. } => "INVALID_LOAN_TRANSITION",
        }
    }
}

/// What a command asks the status machine to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Apply,
    Update,
    Submit,
    StartReview,
    Approve,
    Reject,
    Disburse,
    Repay,
    AssessArrears,
    Complete,
    Default,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Apply => "apply",
            Action::Update => "change the application",
            Action::Submit => "submit",
            Action::StartReview => "start the review",
            Action::Approve => "decide",
            Action::Reject => "reject",
            Action::Disburse => "disburse",
            Action::Repay => "take a repayment",
            Action::AssessArrears => "assess arrears",
            Action::Complete => "complete",
            Action::Default => "default",
        }
    }
}

/// The whole status machine: where `action` takes a loan in status `from`, or why it may not.
fn transition(from: LoanStatus, action: Action) -> Result<LoanStatus, LoanError> {
    use LoanStatus::*;
    match (from, action) {
        (NotApplied, Action::Apply) => Ok(Draft),
        (_, Action::Apply) => Err(LoanError::AlreadyApplied),
        (NotApplied, _) => Err(LoanError::NotApplied),
        (Draft, Action::Update) => Ok(Draft),
        (Draft, Action::Submit) => Ok(Submitted),
        (Submitted, Action::StartReview) => Ok(UnderReview),
        (UnderReview, Action::Approve) => Ok(Approved),
        (Submitted | UnderReview | Approved, Action::Reject) => Ok(Rejected),
        (Approved, Action::Disburse) => Ok(Active),
        (Active, Action::Repay | Action::AssessArrears) => Ok(Active),
        (Active, Action::Complete) => Ok(Completed),
        (Active, Action::Default) => Ok(Defaulted),
        (from, action) => Err(LoanError::InvalidTransition {
            from,
            action: action.name(),
        }),
    }
}

/// One instalment of the schedule in force and what has been paid on it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledInstalment {
    pub instalment: Instalment,
    pub paid_principal: Money,
    pub paid_interest: Money,
    /// Marked by an arrears assessment; cleared when paid.
    pub overdue: bool,
}

impl ScheduledInstalment {
    fn new(instalment: Instalment) -> Self {
        let zero = Money::zero(instalment.total.currency());
        Self {
            instalment,
            paid_principal: zero,
            paid_interest: zero,
            overdue: false,
        }
    }

    fn interest_due(&self) -> i64 {
        self.instalment.interest.minor_units() - self.paid_interest.minor_units()
    }

    fn principal_due(&self) -> i64 {
        self.instalment.principal.minor_units() - self.paid_principal.minor_units()
    }

    /// What is left to pay on it, in minor units.
    pub fn unpaid_minor(&self) -> i64 {
        self.interest_due() + self.principal_due()
    }

    pub fn is_paid(&self) -> bool {
        self.unpaid_minor() == 0
    }

    pub fn is_untouched(&self) -> bool {
        self.paid_principal.is_zero() && self.paid_interest.is_zero()
    }
}

/// The state a loan's decisions need.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Loan {
    status: LoanStatus,
    order_id: Option<Uuid>,
    customer_id: Option<Uuid>,
    details: Option<LoanDetails>,
    annual_rate_percent: Option<Decimal>,
    schedule_kind: Option<ScheduleKind>,
    /// The due date of instalment 1: every due date, also after recalculation, counts from it.
    first_due_date: Option<NaiveDate>,
    /// Kept by SHORTEN_TERM, replaced by LOWER_PAYMENT.
    fixed_part: Option<Money>,
    /// How this loan counts interest (from its approval).
    day_count: Option<DayCount>,
    /// The day the approved schedule's first period starts from.
    accrues_from: Option<NaiveDate>,
    /// The date of the last partial early repayment: interest is settled up to it (actual-day
    /// loans), so the period in progress accrues from it.
    last_early_repayment_on: Option<NaiveDate>,
    instalments: Vec<ScheduledInstalment>,
    disbursed_on: Option<NaiveDate>,
    /// Principal repaid so far (instalments and early repayments), in minor units.
    principal_repaid_minor: i64,
    /// Interest paid so far, in minor units.
    interest_paid_minor: i64,
}

impl Loan {
    pub fn status(&self) -> LoanStatus {
        self.status
    }

    pub fn order_id(&self) -> Option<Uuid> {
        self.order_id
    }

    pub fn customer_id(&self) -> Option<Uuid> {
        self.customer_id
    }

    pub fn details(&self) -> Option<&LoanDetails> {
        self.details.as_ref()
    }

    /// The amount lent (`price − down payment`), once applied.
    pub fn principal(&self) -> Option<Money> {
        self.details.as_ref().map(|details| details.loan_amount)
    }

    pub fn annual_rate_percent(&self) -> Option<Decimal> {
        self.annual_rate_percent
    }

    pub fn schedule_kind(&self) -> Option<ScheduleKind> {
        self.schedule_kind
    }

    pub fn disbursed_on(&self) -> Option<NaiveDate> {
        self.disbursed_on
    }

    /// How this loan counts interest, once approved.
    pub fn day_count(&self) -> Option<DayCount> {
        self.day_count
    }

    /// The schedule in force: paid instalments as issued, the rest as last recalculated.
    pub fn instalments(&self) -> &[ScheduledInstalment] {
        &self.instalments
    }

    fn currency(&self) -> Currency {
        self.details
            .as_ref()
            .map(|details| details.vehicle_price.currency())
            .unwrap_or_default()
    }

    /// Principal not yet repaid.
    pub fn outstanding_principal(&self) -> Option<Money> {
        self.principal().map(|principal| {
            Money::from_minor_units(
                principal.minor_units() - self.principal_repaid_minor,
                principal.currency(),
            )
        })
    }

    /// Interest paid so far.
    pub fn interest_paid(&self) -> Money {
        Money::from_minor_units(self.interest_paid_minor, self.currency())
    }

    /// Everything left to pay on the schedule in force.
    pub fn outstanding(&self) -> Money {
        Money::from_minor_units(
            self.instalments.iter().map(|i| i.unpaid_minor()).sum(),
            self.currency(),
        )
    }

    fn require_currency(&self, amount: Money) -> Result<(), LoanError> {
        if amount.currency() != self.currency() {
            return Err(LoanError::CurrencyMismatch {
                expected: self.currency(),
                found: amount.currency(),
            });
        }
        Ok(())
    }

    fn require_after_disbursement(&self, date: NaiveDate) -> Result<(), LoanError> {
        match self.disbursed_on {
            Some(disbursed_on) if date < disbursed_on => {
                Err(LoanError::DateBeforeDisbursement { date, disbursed_on })
            }
            _ => Ok(()),
        }
    }

    /// What `command` would emit against the current state, or why it is refused; changes nothing
    /// (`handle` writes exactly these events). The command layer uses it to check a step before a
    /// step on another aggregate depends on it.
    pub fn decide(&self, command: LoanCommand) -> Result<Vec<LoanEvent>, LoanError> {
        match command {
            LoanCommand::Apply {
                order_id,
                customer_id,
                vehicle_price,
                application,
                applied_at,
            } => {
                transition(self.status, Action::Apply)?;
                Ok(vec![LoanEvent::LoanApplied {
                    order_id,
                    customer_id,
                    details: LoanDetails::new(vehicle_price, application)?,
                    applied_at,
                }])
            }
            LoanCommand::UpdateApplication { changes } => {
                transition(self.status, Action::Update)?;
                let current = self.details.as_ref().ok_or(LoanError::NotApplied)?;
                let mut application = current.application();
                let ApplicationChanges {
                    down_payment,
                    loan_type,
                    term_months,
                    employment,
                    monthly_income,
                    credit_score,
                } = changes;
                application.down_payment = down_payment.unwrap_or(application.down_payment);
                application.loan_type = loan_type.unwrap_or(application.loan_type);
                application.term_months = term_months.unwrap_or(application.term_months);
                application.employment = employment.unwrap_or(application.employment);
                application.monthly_income = monthly_income.unwrap_or(application.monthly_income);
                application.credit_score = credit_score.unwrap_or(application.credit_score);
                let details = LoanDetails::new(current.vehicle_price, application)?;
                if &details == current {
                    return Ok(vec![]);
                }
                Ok(vec![LoanEvent::LoanApplicationUpdated { details }])
            }
            LoanCommand::Submit { submitted_at } => {
                transition(self.status, Action::Submit)?;
                Ok(vec![LoanEvent::LoanApplicationSubmitted { submitted_at }])
            }
            LoanCommand::StartReview { started_at } => {
                transition(self.status, Action::StartReview)?;
                Ok(vec![LoanEvent::LoanReviewStarted { started_at }])
            }
            LoanCommand::Decide {
                schedule_kind,
                first_due_date,
                decided_at,
                decided_on,
            } => {
                transition(self.status, Action::Approve)?;
                let details = self.details.as_ref().ok_or(LoanError::NotApplied)?;
                if first_due_date <= decided_on {
                    return Err(LoanError::FirstDueDateNotAfterDecision {
                        first_due_date,
                        decided_on,
                    });
                }
                let latest = latest_first_due_date(decided_on);
                if first_due_date > latest {
                    return Err(LoanError::FirstDueDateTooLate {
                        first_due_date,
                        latest,
                    });
                }
                match credit::decide(details, schedule_kind) {
                    CreditDecision::Approved {
                        annual_rate_percent,
                        checks,
                    } => {
                        let rule = Rule::for_kind(
                            schedule_kind,
                            details.loan_amount,
                            annual_rate_percent,
                            details.term_months,
                        );
                        let accrual = Accrual {
                            day_count: DayCount::ActualDays,
                            from: decided_on,
                        };
                        let schedule = schedule::generate(
                            details.loan_amount,
                            annual_rate_percent,
                            rule,
                            1,
                            details.term_months,
                            first_due_date,
                            accrual,
                        );
                        Ok(vec![LoanEvent::LoanApproved {
                            annual_rate_percent,
                            schedule_kind,
                            first_due_date,
                            fixed_part: rule.amount(),
                            schedule,
                            checks,
                            decided_at,
                            day_count: accrual.day_count,
                            accrues_from: decided_on,
                        }])
                    }
                    CreditDecision::Refused { reasons } => Ok(vec![LoanEvent::LoanRejected {
                        reasons,
                        rejected_at: decided_at,
                    }]),
                }
            }
            LoanCommand::Reject {
                reason,
                rejected_at,
            } => {
                transition(self.status, Action::Reject)?;
                let reason = reason.trim();
                if reason.is_empty() {
                    return Err(LoanError::EmptyReason);
                }
                Ok(vec![LoanEvent::LoanRejected {
                    reasons: vec![CreditFinding {
                        rule: CreditRule::StaffDecision,
                        detail: reason.to_owned(),
                    }],
                    rejected_at,
                }])
            }
            LoanCommand::Disburse { disbursed_on } => {
                transition(self.status, Action::Disburse)?;
                let first_due_date = self.first_due_date.ok_or(LoanError::NotApplied)?;
                if disbursed_on >= first_due_date {
                    return Err(LoanError::DisbursementNotBeforeFirstDueDate {
                        disbursed_on,
                        first_due_date,
                    });
                }
                let principal = self.principal().ok_or(LoanError::NotApplied)?;
                Ok(vec![LoanEvent::LoanDisbursed {
                    disbursed_on,
                    principal,
                    schedule: self.reissued_schedule(principal, disbursed_on)?,
                }])
            }
            LoanCommand::RecordRepayment { amount, paid_on } => {
                self.record_repayment(amount, paid_on)
            }
            LoanCommand::RepayEarly { repayment, paid_on } => self.repay_early(repayment, paid_on),
            LoanCommand::AssessArrears { as_of } => self.assess_arrears(as_of),
        }
    }

    /// The schedule re-issued for money lent on `disbursed_on`: the approved rule (same payment or
    /// principal part, same due dates) with the first period from the disbursement. Empty when the
    /// approved schedule already starts that day, and for legacy monthly loans (whose first
    /// period's interest does not depend on its length).
    fn reissued_schedule(
        &self,
        principal: Money,
        disbursed_on: NaiveDate,
    ) -> Result<Vec<Instalment>, LoanError> {
        let (Some(rate), Some(kind), Some(first_due_date), Some(fixed_part), Some(day_count)) = (
            self.annual_rate_percent,
            self.schedule_kind,
            self.first_due_date,
            self.fixed_part,
            self.day_count,
        ) else {
            return Err(LoanError::NotApplied);
        };
        if day_count != DayCount::ActualDays || self.accrues_from == Some(disbursed_on) {
            return Ok(vec![]);
        }
        let rule = match kind {
            ScheduleKind::Annuity => Rule::Payment(fixed_part),
            ScheduleKind::Differentiated => Rule::Principal(fixed_part),
        };
        let months = self.details.as_ref().map_or(1, |d| d.term_months);
        Ok(schedule::generate(
            principal,
            rate,
            rule,
            1,
            months,
            first_due_date,
            Accrual {
                day_count,
                from: disbursed_on,
            },
        ))
    }

    /// Moves to `to`, re-asserting that the status machine allows it.
    fn advance(&mut self, action: Action, to: LoanStatus) {
        debug_assert_eq!(transition(self.status, action), Ok(to), "{action:?}");
        self.status = to;
    }

    /// Re-asserts the money invariants after an event.
    fn check_invariants(&self) {
        if let Some(principal) = self.principal() {
            debug_assert!(
                self.principal_repaid_minor <= principal.minor_units(),
                "principal repaid beyond the loan"
            );
            if !self.instalments.is_empty() {
                let scheduled: i64 = self
                    .instalments
                    .iter()
                    .map(|i| i.instalment.principal.minor_units())
                    .sum::<i64>();
                let repaid_early = self.principal_repaid_minor
                    - self
                        .instalments
                        .iter()
                        .map(|i| i.paid_principal.minor_units())
                        .sum::<i64>();
                debug_assert_eq!(
                    scheduled + repaid_early,
                    principal.minor_units(),
                    "schedule does not add up to the loan"
                );
            }
        }
    }
}

impl Aggregate for Loan {
    const TYPE: &'static str = "Loan";
    type Command = LoanCommand;
    type Event = LoanEvent;
    type Error = LoanError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    /// Folds an event in. Never fails: stored history is the truth.
    fn apply(&mut self, event: Self::Event) {
        match event {
            LoanEvent::LoanApplied {
                order_id,
                customer_id,
                details,
                ..
            } => {
                self.advance(Action::Apply, LoanStatus::Draft);
                self.order_id = Some(order_id);
                self.customer_id = Some(customer_id);
                self.details = Some(details);
            }
            LoanEvent::LoanApplicationUpdated { details } => {
                self.advance(Action::Update, LoanStatus::Draft);
                self.details = Some(details);
            }
            LoanEvent::LoanApplicationSubmitted { .. } => {
                self.advance(Action::Submit, LoanStatus::Submitted);
            }
            LoanEvent::LoanReviewStarted { .. } => {
                self.advance(Action::StartReview, LoanStatus::UnderReview);
            }
            LoanEvent::LoanApproved {
                annual_rate_percent,
                schedule_kind,
                first_due_date,
                fixed_part,
                schedule,
                day_count,
                accrues_from,
                ..
            } => {
                self.advance(Action::Approve, LoanStatus::Approved);
                self.day_count = Some(day_count);
                self.accrues_from = Some(accrues_from);
                self.annual_rate_percent = Some(annual_rate_percent);
                self.schedule_kind = Some(schedule_kind);
                self.first_due_date = Some(first_due_date);
                self.fixed_part = Some(fixed_part);
                self.instalments = schedule.into_iter().map(ScheduledInstalment::new).collect();
            }
            LoanEvent::LoanRejected { .. } => {
                self.advance(Action::Reject, LoanStatus::Rejected);
            }
            LoanEvent::LoanDisbursed {
                disbursed_on,
                schedule,
                ..
            } => {
                self.advance(Action::Disburse, LoanStatus::Active);
                self.disbursed_on = Some(disbursed_on);
                if !schedule.is_empty() {
                    self.instalments = schedule.into_iter().map(ScheduledInstalment::new).collect();
                }
            }
            LoanEvent::LoanRepaymentRecorded { allocations, .. } => {
                self.advance(Action::Repay, LoanStatus::Active);
                for allocation in allocations {
                    if let Some(scheduled) = self
                        .instalments
                        .iter_mut()
                        .find(|i| i.instalment.number == allocation.instalment)
                    {
                        scheduled.paid_principal = Money::from_minor_units(
                            scheduled.paid_principal.minor_units()
                                + allocation.principal.minor_units(),
                            allocation.principal.currency(),
                        );
                        scheduled.paid_interest = Money::from_minor_units(
                            scheduled.paid_interest.minor_units()
                                + allocation.interest.minor_units(),
                            allocation.interest.currency(),
                        );
                        debug_assert!(scheduled.unpaid_minor() >= 0, "instalment overpaid");
                        if scheduled.is_paid() {
                            scheduled.overdue = false;
                        }
                    }
                    self.principal_repaid_minor += allocation.principal.minor_units();
                    self.interest_paid_minor += allocation.interest.minor_units();
                }
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
                self.advance(Action::Repay, LoanStatus::Active);
                if recalculation.is_some() {
                    self.last_early_repayment_on = Some(paid_on);
                }
                self.principal_repaid_minor += principal.minor_units();
                self.interest_paid_minor += interest.minor_units();
                let from = schedule.first().map(|i| i.number);
                match from {
                    Some(from) => {
                        self.instalments.retain(|i| i.instalment.number < from);
                        self.instalments
                            .extend(schedule.into_iter().map(ScheduledInstalment::new));
                    }
                    // Repaid in full: nothing more falls due.
                    None => self.instalments.retain(|i| i.is_paid()),
                }
                if let Some(fixed_part) = fixed_part {
                    self.fixed_part = Some(fixed_part);
                }
            }
            LoanEvent::InstalmentsFellOverdue { instalments, .. } => {
                self.advance(Action::AssessArrears, LoanStatus::Active);
                for scheduled in self.instalments.iter_mut() {
                    if instalments.contains(&scheduled.instalment.number) {
                        scheduled.overdue = true;
                    }
                }
            }
            LoanEvent::LoanDefaulted { .. } => {
                self.advance(Action::Default, LoanStatus::Defaulted);
            }
            LoanEvent::LoanCompleted { .. } => {
                self.advance(Action::Complete, LoanStatus::Completed);
            }
        }
        self.check_invariants();
    }
}

#[cfg(test)]
mod tests;
