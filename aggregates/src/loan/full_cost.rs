//! The full cost of credit (полная стоимость потребительского кредита, ПСК) of a schedule, by the
//! formula of Federal Law No. 353-FZ of 21 December 2013 "On consumer credit (loans)", article 6.
//!
//! Part 1 of the article requires the full cost both in per cent a year and in money (and, in its
//! current wording, the per-cent figure to three decimal places); parts 2 and 2.1 (as worded by
//! Federal Law No. 229-FZ of 21 July 2014) give the per-cent figure:
//!
//! - `ПСК = i × ЧБП × 100`, where `ЧБП` is the number of base periods in a calendar year, the year
//!   taken as 365 days, and `i` the rate of the base period as a decimal fraction;
//! - `i` is the smallest positive solution of `Σ ДП_k / ((1 + e_k·i)(1 + i)^q_k) = 0` over the
//!   loan's cash flows `ДП_k`: the money lent to the borrower on the day it is lent counts minus,
//!   every repayment of principal and payment of interest plus; `q_k` is the number of whole base
//!   periods from the day the money is lent to the day of flow `k`, and `e_k` the rest of that time
//!   as a fraction of a base period.
//!
//! How this ledger applies it (each a decision the finance desk can check by hand):
//! - **The flows** are the principal lent, minus, on the day the schedule's first period starts
//!   (the disbursement; for an approval's schedule, the decision date it assumes), and each
//!   instalment's total, plus, on its due date. The dealership's loans carry no fees, no payments
//!   to third parties that the contract requires, and no insurance the contract makes a condition,
//!   so nothing else enters.
//! - **The base period is the month**, `ЧБП = 12`: the base period is the standard interval that
//!   occurs most often in the schedule, and every interval of a schedule but the first is one
//!   calendar month (terms are at least 3 instalments, see [`term_limits`](super::credit::term_limits)).
//! - **Whole months** `q_k` are counted as due dates are ([`due_date`](super::schedule::due_date)):
//!   `q_k` is the largest `m` for which the lending day plus `m` calendar months (clamped to the end
//!   of a shorter month) is not after flow `k`'s day.
//! - **The rest** `e_k` is the number of days from the lending day plus `q_k` months to flow `k`'s
//!   day over the days of a base period, `365 / ЧБП` (the law's 365-day year in twelve equal
//!   months): `e_k = days × 12 / 365`.
//! - **Solving.** The sum falls as `i` rises (one outflow, at the start, and inflows after), so the
//!   solution is unique; it is found by bisection in `Decimal` (28 significant digits) to within
//!   10⁻¹⁶ of a month's rate, far below what the three decimals of the result can show. A schedule
//!   whose payments do not exceed the principal (a rate of 0) costs 0.000 per cent.
//! - **Rounding.** `i × 12 × 100` is rounded to three decimal places half away from zero
//!   ([`FULL_COST_ROUNDING`]): the law fixes the precision, not the rule, and this is the rule the
//!   ledger uses for kopecks too.
//! - **In money**: the sum of the flows the per-cent figure is computed from, the principal lent
//!   counted minus, which is what the borrower pays above the principal: here the schedule's
//!   interest.
//!
//! The figure is the contract's, computed from the schedule as issued at approval and again on the
//! day the money is lent (the disbursement, whether it re-issues the schedule or not). That an early
//! repayment leaves the figure shown as it was is a decision of this ledger, not a rule of the law:
//! the figure describes the contract the borrower signed, and the recalculated schedule is shown
//! beside it.
//!
//! **Range.** [`full_cost`] answers `None` when the interest a schedule charges is beyond what
//! [`Money`] holds (some 9.2 × 10¹⁶ roubles), where no figure can be shown.

use chrono::NaiveDate;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use super::schedule::{Instalment, due_date};
use crate::money::Money;

/// Base periods a year: the month (see the module docs).
const BASE_PERIODS_A_YEAR: i64 = 12;

/// Days in a year for `e_k`, as the law fixes it.
const DAYS_IN_YEAR: i64 = 365;

/// How the per-cent figure is rounded to its three decimal places.
pub const FULL_COST_ROUNDING: RoundingStrategy = RoundingStrategy::MidpointAwayFromZero;

/// The full cost of credit of a schedule: per cent a year to three decimals, and in money.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FullCost {
    pub percent: Decimal,
    pub amount: Money,
}

/// One cash flow in whole base periods and the rest, as the equation takes it.
struct Flow {
    amount: Decimal,
    whole_periods: u32,
    rest: Decimal,
}

/// The full cost of lending `principal` on `lent_on` and being repaid by `schedule`; `None` when the
/// amount is beyond [`Money`]'s range.
pub fn full_cost(
    principal: Money,
    lent_on: NaiveDate,
    schedule: &[Instalment],
) -> Option<FullCost> {
    let mut flows = vec![Flow {
        amount: -principal.amount(),
        whole_periods: 0,
        rest: Decimal::ZERO,
    }];
    let mut repaid = Decimal::ZERO;
    for instalment in schedule {
        let (whole_periods, rest) = periods_between(lent_on, instalment.due_date);
        flows.push(Flow {
            amount: instalment.total.amount(),
            whole_periods,
            rest,
        });
        repaid = repaid.checked_add(instalment.total.amount())?;
    }
    let amount = Money::new(
        repaid.checked_sub(principal.amount())?,
        principal.currency(),
    )
    .ok()?;
    let rate = base_period_rate(&flows);
    let mut percent = (rate * Decimal::from(BASE_PERIODS_A_YEAR * 100))
        .round_dp_with_strategy(3, FULL_COST_ROUNDING);
    // Always three places, also for 0 (`0.000`, not `0`): the figure is shown as the law writes it.
    percent.rescale(3);
    Some(FullCost { percent, amount })
}

/// `q_k` and `e_k` for a flow on `day` of money lent on `lent_on` (see the module docs).
fn periods_between(lent_on: NaiveDate, day: NaiveDate) -> (u32, Decimal) {
    let mut whole = 0u32;
    // `due_date(lent_on, m + 1)` is the lending day plus `m` months, clamped like due dates.
    while whole < 10_000 && due_date(lent_on, whole + 2) <= day {
        whole += 1;
    }
    let start = due_date(lent_on, whole + 1);
    let days = (day - start).num_days().max(0);
    let rest = Decimal::from(days * BASE_PERIODS_A_YEAR) / Decimal::from(DAYS_IN_YEAR);
    (whole, rest)
}

/// `Σ ДП_k / ((1 + e_k·i)(1 + i)^q_k)` at `rate`.
fn present_value(flows: &[Flow], rate: Decimal) -> Decimal {
    let discount = Decimal::ONE / (Decimal::ONE + rate);
    let mut powers = vec![Decimal::ONE];
    flows
        .iter()
        .map(|flow| {
            while powers.len() <= flow.whole_periods as usize {
                let next = powers[powers.len() - 1] * discount;
                powers.push(next);
            }
            flow.amount * powers[flow.whole_periods as usize] / (Decimal::ONE + flow.rest * rate)
        })
        .sum()
}

/// The smallest positive root of [`present_value`]; 0 when there is none (payments not above the
/// principal).
fn base_period_rate(flows: &[Flow]) -> Decimal {
    if present_value(flows, Decimal::ZERO) <= Decimal::ZERO {
        return Decimal::ZERO;
    }
    let mut low = Decimal::ZERO;
    // A month's rate of 100 % (1 200 % a year) is far above any loan the credit policy approves.
    let mut high = Decimal::ONE;
    while present_value(flows, high) > Decimal::ZERO && high < Decimal::from(1_000) {
        low = high;
        high *= Decimal::TWO;
    }
    // Past a month's rate of 1 024 (no schedule of this ledger comes near) the bisection below
    // would answer the bound itself.
    debug_assert!(
        present_value(flows, high) <= Decimal::ZERO,
        "a base-period rate above {high}"
    );
    let precision = Decimal::new(1, 16);
    while high - low > precision {
        let middle = (low + high) / Decimal::TWO;
        if present_value(flows, middle) > Decimal::ZERO {
            low = middle;
        } else {
            high = middle;
        }
    }
    (low + high) / Decimal::TWO
}
