//! The credit decision: a pure function of the application, written down as the finance desk's
//! policy.
//!
//! # Policy
//!
//! Annual rate by credit score band (per cent a year; leasing is cheaper because the lessor keeps
//! title to the car; the instalment plan is the dealer's 0% offer, only for good scores):
//!
//! | score     | CAR_LOAN | LEASING | INSTALMENT |
//! |-----------|----------|---------|------------|
//! | 300–579   | refused  | refused | refused    |
//! | 580–669   | 27.9     | 25.9    | refused    |
//! | 670–739   | 22.9     | 20.9    | 0          |
//! | 740–799   | 18.9     | 16.9    | 0          |
//! | 800–850   | 14.9     | 12.9    | 0          |
//!
//! Per financing type:
//!
//! | type        | minimum down payment | term, months |
//! |-------------|----------------------|--------------|
//! | CAR_LOAN    | 15% of the price     | 12–84        |
//! | LEASING     | 20% of the price     | 12–60        |
//! | INSTALMENT  | 0%                   | 3–24         |
//!
//! The minimum down payment is the percentage of the vehicle price rounded to kopecks by
//! [`KOPECK_ROUNDING`](crate::money::KOPECK_ROUNDING). The term limits are also checked when an
//! application is made or changed (a term outside them is invalid input, not a credit matter).
//!
//! Payment to income (PTI): the first instalment of the schedule that would be issued (the annuity
//! payment, or the first — largest — differentiated instalment) may be at most this share of the
//! declared monthly income:
//!
//! | employment     | maximum PTI |
//! |----------------|-------------|
//! | EMPLOYED       | 40%         |
//! | RETIRED        | 40% (a pension is a steady income) |
//! | SELF_EMPLOYED  | 35% (income varies month to month) |
//! | UNEMPLOYED     | refused     |
//!
//! Every rule is checked, so a refusal lists every reason at once (a customer can fix the down
//! payment and the term in one go); an approval lists every check that passed.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::schedule::{self, ScheduleKind};
use super::{EmploymentStatus, LoanDetails, LoanType};

/// Which rule a finding is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CreditRule {
    CreditScore,
    Employment,
    DownPayment,
    Term,
    PaymentToIncome,
    /// A member of staff rejected the application by hand.
    StaffDecision,
}

impl CreditRule {
    pub fn as_str(self) -> &'static str {
        match self {
            CreditRule::CreditScore => "CREDIT_SCORE",
            CreditRule::Employment => "EMPLOYMENT",
            CreditRule::DownPayment => "DOWN_PAYMENT",
            CreditRule::Term => "TERM",
            CreditRule::PaymentToIncome => "PAYMENT_TO_INCOME",
            CreditRule::StaffDecision => "STAFF_DECISION",
        }
    }
}

/// One rule checked, and what was found, in words a customer can be shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditFinding {
    pub rule: CreditRule,
    pub detail: String,
}

impl CreditFinding {
    fn new(rule: CreditRule, detail: String) -> Self {
        Self { rule, detail }
    }
}

/// The outcome of [`decide`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CreditDecision {
    Approved {
        annual_rate_percent: Decimal,
        checks: Vec<CreditFinding>,
    },
    Refused {
        reasons: Vec<CreditFinding>,
    },
}

/// Lowest and highest credit score a bureau reports.
pub const SCORE_RANGE: (u16, u16) = (300, 850);

/// The term limits for `loan_type`, in months, inclusive.
pub fn term_limits(loan_type: LoanType) -> (u32, u32) {
    match loan_type {
        LoanType::CarLoan => (12, 84),
        LoanType::Leasing => (12, 60),
        LoanType::Instalment => (3, 24),
    }
}

/// The minimum down payment for `loan_type`, in per cent of the vehicle price.
pub fn minimum_down_payment_percent(loan_type: LoanType) -> Decimal {
    match loan_type {
        LoanType::CarLoan => Decimal::from(15),
        LoanType::Leasing => Decimal::from(20),
        LoanType::Instalment => Decimal::ZERO,
    }
}

/// The annual rate in per cent for `score` and `loan_type`, or `None` when the score is refused.
pub fn annual_rate_percent(loan_type: LoanType, score: u16) -> Option<Decimal> {
    let (car_loan, leasing) = match score {
        800..=850 => ("14.9", "12.9"),
        740..=799 => ("18.9", "16.9"),
        670..=739 => ("22.9", "20.9"),
        580..=669 => ("27.9", "25.9"),
        _ => return None,
    };
    let rate = match loan_type {
        LoanType::CarLoan => car_loan,
        LoanType::Leasing => leasing,
        LoanType::Instalment if score >= 670 => "0",
        LoanType::Instalment => return None,
    };
    rate.parse().ok()
}

/// The largest share of monthly income an instalment may take, in per cent; `None`: no credit.
pub fn maximum_payment_to_income_percent(employment: EmploymentStatus) -> Option<Decimal> {
    match employment {
        EmploymentStatus::Employed | EmploymentStatus::Retired => Some(Decimal::from(40)),
        EmploymentStatus::SelfEmployed => Some(Decimal::from(35)),
        EmploymentStatus::Unemployed => None,
    }
}

/// Decides on `details` for a schedule of `kind`, by the policy above.
pub fn decide(details: &LoanDetails, kind: ScheduleKind) -> CreditDecision {
    let mut passed = Vec::new();
    let mut failed = Vec::new();
    let mut record = |ok: bool, finding: CreditFinding| {
        if ok {
            passed.push(finding)
        } else {
            failed.push(finding)
        }
    };

    let rate = annual_rate_percent(details.loan_type, details.credit_score);
    record(
        rate.is_some(),
        CreditFinding::new(
            CreditRule::CreditScore,
            match rate {
                Some(rate) => format!(
                    "credit score {} qualifies for {} at {rate}% a year",
                    details.credit_score,
                    details.loan_type.as_str()
                ),
                None => format!(
                    "credit score {} is below the minimum for {}",
                    details.credit_score,
                    details.loan_type.as_str()
                ),
            },
        ),
    );

    let pti_limit = maximum_payment_to_income_percent(details.employment);
    record(
        pti_limit.is_some(),
        CreditFinding::new(
            CreditRule::Employment,
            match pti_limit {
                Some(_) => format!("employment status {}", details.employment.as_str()),
                None => "no credit without an income from employment, business or pension".into(),
            },
        ),
    );

    let minimum_percent = minimum_down_payment_percent(details.loan_type);
    let minimum_down = details.vehicle_price.percentage(minimum_percent);
    record(
        details.down_payment.amount() >= minimum_down.amount(),
        CreditFinding::new(
            CreditRule::DownPayment,
            format!(
                "down payment {} against a minimum of {} ({minimum_percent}% of {})",
                details.down_payment, minimum_down, details.vehicle_price
            ),
        ),
    );

    let (min_term, max_term) = term_limits(details.loan_type);
    record(
        (min_term..=max_term).contains(&details.term_months),
        CreditFinding::new(
            CreditRule::Term,
            format!(
                "term of {} months within {min_term}–{max_term}",
                details.term_months
            ),
        ),
    );

    if let (Some(rate), Some(limit)) = (rate, pti_limit) {
        // The first instalment of a regular month (interest = a month's, 1/12 of the annual
        // rate): the annuity payment, or the largest differentiated one. The test does not depend
        // on the first period's length or the decision date, which only move interest between
        // the first instalment and the last. (The last annuity instalment may differ; it does
        // not count.)
        let largest = schedule::build(
            kind,
            details.loan_amount,
            rate,
            details.term_months,
            chrono::NaiveDate::MIN,
            schedule::Accrual {
                day_count: schedule::DayCount::MonthlyTwelfth,
                from: chrono::NaiveDate::MIN,
            },
        )
        .first()
        .map(|instalment| instalment.total.amount())
        .unwrap_or_default();
        let allowed = details.monthly_income.percentage(limit);
        record(
            largest <= allowed.amount(),
            CreditFinding::new(
                CreditRule::PaymentToIncome,
                format!(
                    "monthly payment {largest} {} against {limit}% of monthly income {} ({allowed})",
                    details.loan_amount.currency(),
                    details.monthly_income,
                ),
            ),
        );
    }

    match rate {
        Some(annual_rate_percent) if failed.is_empty() => CreditDecision::Approved {
            annual_rate_percent,
            checks: passed,
        },
        _ => CreditDecision::Refused { reasons: failed },
    }
}
