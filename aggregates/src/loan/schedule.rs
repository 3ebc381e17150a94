//! Repayment schedules: the instalments of a loan, computed exactly in `Decimal` and kept to the kopeck.
//!
//! Conventions (each a decision the finance desk can read and check by hand):
//! - **Day count: "monthly, 1/12".** Interest for one instalment period is
//!   `balance × annual rate / 12`, whatever the number of days in the month, where `balance` is the
//!   principal outstanding after the previous instalment (or at disbursement, for the first). The
//!   product is computed exactly and rounded to kopecks by
//!   [`KOPECK_ROUNDING`](crate::money::KOPECK_ROUNDING) (half away from zero).
//! - **Due dates.** Instalment `k` falls due `k − 1` calendar months after the first due date, always
//!   counted from the first due date (never from the previous instalment), and clamped to the last day
//!   of a shorter month: a first due date of 31 January gives 28 (or 29) February, then 31 March,
//!   30 April, 31 May... So a schedule never drifts to the 28th.
//! - **Annuity** (the default): equal totals `A = P·r / (1 − (1 + r)^−n)` with `r` = annual rate / 12,
//!   computed in `Decimal` ((1 + r)^n by repeated multiplication at 28 significant digits) and rounded
//!   to kopecks; at a rate of 0, `A = P / n` rounded to kopecks. Each instalment's principal is
//!   `A − interest`.
//! - **Differentiated**: equal principal parts `P / n` rounded to kopecks, plus the period's interest,
//!   so totals fall over time.
//! - **The last instalment takes the rest**: its principal is whatever is still outstanding, so the
//!   principal parts sum exactly to the loan and the balance ends at exactly zero; only the last total
//!   differs from the others (by the accumulated rounding, a few kopecks).
//! - A principal part is never negative and never more than the balance: should rounding ever make
//!   an earlier instalment pay off the balance, that instalment becomes the last.

use chrono::{Months, NaiveDate};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::money::{Currency, Money, round_to_kopecks};

/// How the instalments are shaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum ScheduleKind {
    /// Equal totals (the usual Russian car loan: "аннуитетный платёж").
    #[default]
    Annuity,
    /// Equal principal parts, interest on the falling balance ("дифференцированный платёж").
    Differentiated,
}

impl ScheduleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleKind::Annuity => "ANNUITY",
            ScheduleKind::Differentiated => "DIFFERENTIATED",
        }
    }
}

/// One line of a schedule. `total = principal + interest`; `remaining` is the principal outstanding
/// once this instalment is paid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instalment {
    /// 1-based, stable across recalculations (a recalculated schedule continues the numbering).
    pub number: u32,
    pub due_date: NaiveDate,
    pub principal: Money,
    pub interest: Money,
    pub total: Money,
    pub remaining: Money,
}

/// The due date of instalment `number` (1-based) when the first falls due on `first`: calendar
/// months counted from `first`, clamped to the end of shorter months.
pub fn due_date(first: NaiveDate, number: u32) -> NaiveDate {
    first
        .checked_add_months(Months::new(number.saturating_sub(1)))
        .unwrap_or(NaiveDate::MAX)
}

/// The monthly rate `r` as a fraction: `annual_rate_percent / 100 / 12`.
fn monthly_rate(annual_rate_percent: Decimal) -> Decimal {
    annual_rate_percent / Decimal::from(1200)
}

/// Interest for one period on `balance`: `balance × annual rate / 12`, rounded to kopecks.
pub fn monthly_interest(balance: Money, annual_rate_percent: Decimal) -> Money {
    let exact = balance.amount() * annual_rate_percent / Decimal::from(1200);
    money(exact, balance.currency())
}

/// The annuity payment for `principal` over `months` at `annual_rate_percent`, rounded to kopecks.
pub fn annuity_payment(principal: Money, annual_rate_percent: Decimal, months: u32) -> Money {
    let months = months.max(1);
    let p = principal.amount();
    if annual_rate_percent.is_zero() {
        return money(p / Decimal::from(months), principal.currency());
    }
    let r = monthly_rate(annual_rate_percent);
    let growth = (0..months).fold(Decimal::ONE, |acc, _| acc * (Decimal::ONE + r));
    // P·r/(1 − (1+r)^−n) = P·r·(1+r)^n / ((1+r)^n − 1)
    let exact = p * r * growth / (growth - Decimal::ONE);
    money(exact, principal.currency())
}

/// The equal principal part of a differentiated schedule: `principal / months`, rounded to kopecks.
pub fn principal_part(principal: Money, months: u32) -> Money {
    money(
        principal.amount() / Decimal::from(months.max(1)),
        principal.currency(),
    )
}

/// What stays fixed from one instalment to the next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Every total is this amount (annuity); principal = amount − interest.
    Payment(Money),
    /// Every principal part is this amount (differentiated).
    Principal(Money),
}

impl Rule {
    /// The rule that produces `kind` for `principal` over `months`.
    pub fn for_kind(
        kind: ScheduleKind,
        principal: Money,
        annual_rate_percent: Decimal,
        months: u32,
    ) -> Rule {
        match kind {
            ScheduleKind::Annuity => {
                Rule::Payment(annuity_payment(principal, annual_rate_percent, months))
            }
            ScheduleKind::Differentiated => Rule::Principal(principal_part(principal, months)),
        }
    }

    /// The fixed amount: the annuity payment or the principal part.
    pub fn amount(self) -> Money {
        match self {
            Rule::Payment(amount) | Rule::Principal(amount) => amount,
        }
    }
}

/// A full schedule for a new loan: instalments `1..=months` from `first_due_date`.
pub fn build(
    kind: ScheduleKind,
    principal: Money,
    annual_rate_percent: Decimal,
    months: u32,
    first_due_date: NaiveDate,
) -> Vec<Instalment> {
    let rule = Rule::for_kind(kind, principal, annual_rate_percent, months);
    generate(
        principal,
        annual_rate_percent,
        rule,
        1,
        months,
        first_due_date,
    )
}

/// Instalments `first_number, first_number + 1, ...` paying off `opening` under `rule`, at most
/// `max_count` of them (the last takes whatever is outstanding). Due dates keep the loan's anchor,
/// `first_due_date` (the due date of instalment 1).
pub fn generate(
    opening: Money,
    annual_rate_percent: Decimal,
    rule: Rule,
    first_number: u32,
    max_count: u32,
    first_due_date: NaiveDate,
) -> Vec<Instalment> {
    let currency = opening.currency();
    let mut balance = opening.amount();
    let mut instalments = Vec::new();
    for index in 0..max_count.max(1) {
        if balance <= Decimal::ZERO {
            break;
        }
        let number = first_number + index;
        let interest = monthly_interest(money(balance, currency), annual_rate_percent).amount();
        let is_last = index + 1 == max_count.max(1);
        let principal = if is_last {
            balance
        } else {
            let wanted = match rule {
                Rule::Payment(payment) => payment.amount() - interest,
                Rule::Principal(part) => part.amount(),
            };
            wanted.max(Decimal::ZERO).min(balance)
        };
        balance -= principal;
        instalments.push(Instalment {
            number,
            due_date: due_date(first_due_date, number),
            principal: money(principal, currency),
            interest: money(interest, currency),
            total: money(principal + interest, currency),
            remaining: money(balance, currency),
        });
    }
    instalments
}

/// How many instalments `rule` needs to pay off `opening` (the shortened term), at most `max_count`.
pub fn count_to_pay_off(
    opening: Money,
    annual_rate_percent: Decimal,
    rule: Rule,
    max_count: u32,
) -> u32 {
    let mut balance = opening.amount();
    let mut count = 0;
    while balance > Decimal::ZERO && count < max_count {
        count += 1;
        let interest =
            monthly_interest(money(balance, opening.currency()), annual_rate_percent).amount();
        let principal = match rule {
            Rule::Payment(payment) => payment.amount() - interest,
            Rule::Principal(part) => part.amount(),
        };
        if principal <= Decimal::ZERO {
            return max_count;
        }
        balance -= principal;
    }
    count.max(1)
}

/// `amount` rounded to kopecks as [`Money`].
///
/// Every amount here is at most the loan's principal plus one period's interest on it, and the
/// principal is a valid [`Money`], so the result is always within range.
fn money(amount: Decimal, currency: Currency) -> Money {
    Money::new(round_to_kopecks(amount), currency)
        .unwrap_or_else(|error| panic!("schedule amount {amount} out of range: {error}"))
}
