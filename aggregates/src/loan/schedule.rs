//! Repayment schedules: the instalments of a loan, computed exactly in `Decimal` and kept to the kopeck.
//!
//! Conventions (each a decision the finance desk can read and check by hand):
//! - **Day count: actual days** ([`DayCount::ActualDays`], every loan approved since event version
//!   2.0 of `LoanApproved`). Interest for a period is `balance × annual rate × days / days in the
//!   year`, with the actual number of calendar days from the period's start (exclusive) to its end
//!   (inclusive) and the actual length of the year, 365 or 366; a period that spans a year end is
//!   split at 31 December/1 January and each part takes its own year's length. `balance` is the
//!   principal outstanding during the period. Source: the convention of Bank of Russia
//!   Regulation No. 39-P of 26 June 1998 on banks' interest accrual (interest on the actual
//!   calendar days, a year of 365 or 366 days), with the Bank of Russia's letter No. 361-T of
//!   27 December 1999, item 1, for a period across years of different lengths (the days in a
//!   365-day year at 365 a year, those in a 366-day year at 366). The regulation no longer binds:
//!   it was repealed from 23 November 2015 (Bank of Russia Ordinance No. 3817-U of 12 October
//!   2015), and the day count is a term of the loan contract (Civil Code art. 809 p. 1); this
//!   ledger's contracts keep that convention. The exact sum over the year parts is rounded once
//!   per period to kopecks by [`KOPECK_ROUNDING`](crate::money::KOPECK_ROUNDING) (half away from
//!   zero).
//! - **Periods.** Instalment `k`'s period runs from instalment `k − 1`'s due date to its own; the
//!   first period runs from the date the money is lent (the disbursement; an approval's schedule, the
//!   offer, assumes the decision date) to the first due date, on its actual length whatever it is
//!   (10 days or 62). After a partial early repayment the next period runs from the repayment date.
//! - **Legacy day count "monthly, 1/12"** ([`DayCount::MonthlyTwelfth`]): loans approved before
//!   actual-day interest (`LoanApproved` version 1.0) keep it for their whole life: every period's
//!   interest is `balance × annual rate / 12`, whatever its length.
//! - **Due dates.** Instalment `k` falls due `k − 1` calendar months after the first due date, always
//!   counted from the first due date (never from the previous instalment), and clamped to the last day
//!   of a shorter month: a first due date of 31 January gives 28 (or 29) February, then 31 March,
//!   30 April, 31 May... So a schedule never drifts to the 28th.
//! - **Annuity** (the default): the payment `A = P·r / (1 − (1 + r)^−n)` with `r` = annual rate / 12
//!   (the formula Russian lenders quote; the day count does not enter it), computed in `Decimal`
//!   ((1 + r)^n by repeated multiplication at 28 significant digits) and rounded to kopecks by
//!   [`KOPECK_ROUNDING`](crate::money::KOPECK_ROUNDING); at a rate of 0, `A = P / n` rounded the
//!   same way. Every instalment but the first and the last totals `A`: its principal is
//!   `A − the period's interest` (by actual days). **The first instalment** a schedule computes
//!   (instalment 1, or the next one after a partial early repayment) covers an irregular period:
//!   its principal part is a regular month's, `A − balance × annual rate / 12` (rounded to kopecks
//!   by [`KOPECK_ROUNDING`](crate::money::KOPECK_ROUNDING)), and its interest is the period's by
//!   actual days, so its total is `A` minus a month's interest plus the actual period's: a 10-day
//!   first period pays less than `A`, a 62-day one more, and the principal amortises as in a
//!   regular month either way (no balloon at the end).
//! - **Differentiated**: equal principal parts `P / n` rounded to kopecks by
//!   [`KOPECK_ROUNDING`](crate::money::KOPECK_ROUNDING), plus the period's interest, so totals fall
//!   over time.
//! - **The last instalment takes the rest**: its principal is whatever is still outstanding, plus its
//!   period's interest, so the principal parts sum exactly to the loan and the balance ends at
//!   exactly zero. Besides the first, only the last total differs from `A`: by the rounding kopecks
//!   and, with actual days, by the accumulated difference between each period's actual-day interest
//!   and a twelfth of a year's (months of 28 to 31 days, years of 365 or 366): in the worked
//!   examples of the tests from 1.7 to 6.6 per cent of `A`, either way.
//! - A principal part is never negative and never more than the balance: should rounding ever make
//!   an earlier instalment pay off the balance, that instalment becomes the last.

use chrono::{Datelike, Months, NaiveDate};
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

/// How a period's interest is counted (see the module docs). Fixed for a loan's whole life at its
/// approval.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DayCount {
    /// `balance × annual rate / 12` every period: loans approved under `LoanApproved` 1.0.
    MonthlyTwelfth,
    /// `balance × annual rate × days / days in the year (365 or 366)`, split by calendar year.
    ActualDays,
}

impl DayCount {
    pub fn as_str(self) -> &'static str {
        match self {
            DayCount::MonthlyTwelfth => "MONTHLY_TWELFTH",
            DayCount::ActualDays => "ACTUAL_DAYS",
        }
    }
}

/// Where a schedule's interest starts: the day count, and the start of the first period it
/// computes (later periods start on the previous due date).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accrual {
    pub day_count: DayCount,
    pub from: NaiveDate,
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

/// Interest for one period on `balance`: `balance × annual rate / 12`, rounded to kopecks by
/// [`KOPECK_ROUNDING`](crate::money::KOPECK_ROUNDING) (the legacy day count, and the "regular month"
/// the credit policy's payment-to-income test uses).
pub fn monthly_interest(balance: Money, annual_rate_percent: Decimal) -> Money {
    let exact = balance.amount() * annual_rate_percent / Decimal::from(1200);
    money(exact, balance.currency())
}

/// `365 × 366`: the common denominator of a day of a common year (1/365 = 366/133 590) and of a leap
/// year (1/366 = 365/133 590), so a period across a year end is one exact fraction.
const YEAR_DAYS_COMMON_DENOMINATOR: i64 = 365 * 366;

/// The days from `from` (exclusive) to `to` (inclusive), each weighted by `133 590 / days in its
/// year`: `Σ days × 133 590 / 365 or 366`, so `days / days in year = weighted / 133 590` exactly.
/// Zero when `to` is not after `from`.
fn year_weighted_days(from: NaiveDate, to: NaiveDate) -> i64 {
    let mut weighted = 0;
    let mut start = from;
    while start < to {
        // The days after `start` up to the end of the year of the first of them, or `to` if sooner.
        let Some(first_day) = start.succ_opt() else {
            break;
        };
        let year = first_day.year();
        let year_end = NaiveDate::from_ymd_opt(year, 12, 31).unwrap_or(NaiveDate::MAX);
        let end = year_end.min(to);
        let year_length = if NaiveDate::from_ymd_opt(year, 2, 29).is_some() {
            366
        } else {
            365
        };
        weighted += (end - start).num_days() * (YEAR_DAYS_COMMON_DENOMINATOR / year_length);
        start = end;
    }
    weighted
}

/// Interest on `balance` for the days from `from` (exclusive) to `to` (inclusive) by actual days:
/// `balance × annual rate × days / days in year`, each calendar year's days over its own length
/// (365 or 366), summed exactly and rounded once to kopecks by
/// [`KOPECK_ROUNDING`](crate::money::KOPECK_ROUNDING) (half away from zero). Zero when `to` is not
/// after `from`.
pub fn actual_day_interest(
    balance: Money,
    annual_rate_percent: Decimal,
    from: NaiveDate,
    to: NaiveDate,
) -> Money {
    let weighted = Decimal::from(year_weighted_days(from, to));
    // rate% / 100 × weighted / 133 590, in one division so the result is exact or non-terminating.
    let exact = balance.amount() * annual_rate_percent * weighted
        / Decimal::from(100 * YEAR_DAYS_COMMON_DENOMINATOR);
    money(exact, balance.currency())
}

/// The interest for the period from `from` to `to` on `balance` under `day_count`.
pub fn period_interest(
    day_count: DayCount,
    balance: Money,
    annual_rate_percent: Decimal,
    from: NaiveDate,
    to: NaiveDate,
) -> Money {
    match day_count {
        DayCount::MonthlyTwelfth => monthly_interest(balance, annual_rate_percent),
        DayCount::ActualDays => actual_day_interest(balance, annual_rate_percent, from, to),
    }
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

    /// The principal part (before clamping to the balance) of an instalment on `balance` whose
    /// period's interest is `interest`. The first instalment a schedule computes covers an
    /// irregular period (from the disbursement, or from a partial early repayment), so under
    /// `Payment` its principal part is a regular month's, `payment − balance × rate / 12`, and its
    /// total moves with the period's length; every later one totals the payment.
    fn principal_part(
        self,
        first_computed: bool,
        balance: Money,
        annual_rate_percent: Decimal,
        interest: Decimal,
    ) -> Decimal {
        match self {
            Rule::Payment(payment) if first_computed => {
                payment.amount() - monthly_interest(balance, annual_rate_percent).amount()
            }
            Rule::Payment(payment) => payment.amount() - interest,
            Rule::Principal(part) => part.amount(),
        }
    }
}

/// A full schedule for a new loan: instalments `1..=months` from `first_due_date`, the first period
/// starting at `accrual.from`.
pub fn build(
    kind: ScheduleKind,
    principal: Money,
    annual_rate_percent: Decimal,
    months: u32,
    first_due_date: NaiveDate,
    accrual: Accrual,
) -> Vec<Instalment> {
    let rule = Rule::for_kind(kind, principal, annual_rate_percent, months);
    generate(
        principal,
        annual_rate_percent,
        rule,
        1,
        months,
        first_due_date,
        accrual,
    )
}

/// The start of instalment `number`'s period: `accrual.from` for the first one computed
/// (`first_number`), the previous due date after it.
fn period_start(
    accrual: Accrual,
    first_due_date: NaiveDate,
    first_number: u32,
    number: u32,
) -> NaiveDate {
    if number == first_number {
        accrual.from
    } else {
        due_date(first_due_date, number - 1)
    }
}

/// Instalments `first_number, first_number + 1, ...` paying off `opening` under `rule`, at most
/// `max_count` of them (the last takes whatever is outstanding). Due dates keep the loan's anchor,
/// `first_due_date` (the due date of instalment 1); the first computed period starts at
/// `accrual.from`.
pub fn generate(
    opening: Money,
    annual_rate_percent: Decimal,
    rule: Rule,
    first_number: u32,
    max_count: u32,
    first_due_date: NaiveDate,
    accrual: Accrual,
) -> Vec<Instalment> {
    let currency = opening.currency();
    let mut balance = opening.amount();
    let mut instalments = Vec::new();
    for index in 0..max_count.max(1) {
        if balance <= Decimal::ZERO {
            break;
        }
        let number = first_number + index;
        let due = due_date(first_due_date, number);
        let interest = period_interest(
            accrual.day_count,
            money(balance, currency),
            annual_rate_percent,
            period_start(accrual, first_due_date, first_number, number),
            due,
        )
        .amount();
        let is_last = index + 1 == max_count.max(1);
        let principal = if is_last {
            balance
        } else {
            rule.principal_part(
                index == 0,
                money(balance, currency),
                annual_rate_percent,
                interest,
            )
            .max(Decimal::ZERO)
            .min(balance)
        };
        balance -= principal;
        instalments.push(Instalment {
            number,
            due_date: due,
            principal: money(principal, currency),
            interest: money(interest, currency),
            total: money(principal + interest, currency),
            remaining: money(balance, currency),
        });
    }
    instalments
}

/// How many instalments `rule` needs to pay off `opening` (the shortened term), at most `max_count`,
/// numbered from `first_number` with the periods of [`generate`].
pub fn count_to_pay_off(
    opening: Money,
    annual_rate_percent: Decimal,
    rule: Rule,
    first_number: u32,
    max_count: u32,
    first_due_date: NaiveDate,
    accrual: Accrual,
) -> u32 {
    let mut balance = opening.amount();
    let mut count = 0;
    while balance > Decimal::ZERO && count < max_count {
        let number = first_number + count;
        count += 1;
        let interest = period_interest(
            accrual.day_count,
            money(balance, opening.currency()),
            annual_rate_percent,
            period_start(accrual, first_due_date, first_number, number),
            due_date(first_due_date, number),
        )
        .amount();
        let principal = rule.principal_part(
            count == 1,
            money(balance, opening.currency()),
            annual_rate_percent,
            interest,
        );
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
