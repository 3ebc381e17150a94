//! The loan's reference model: the credit policy from its tables, schedules, allocation, early
//! repayment and arrears from the module docs, all on integer kopecks.
//!
//! What it shares with the aggregate: the data types, and the annuity payment
//! ([`schedule::annuity_payment`]), whose formula needs `(1 + r)^n` beyond integer range and which
//! the worked examples check against Python. Everything else — the rate table, every instalment's
//! interest and principal, the shortened term, the order repayments are allocated in, the payoff,
//! the arrears — is computed again here, exactly, with integers.

use chrono::{Datelike, Months};
use proptest::prelude::*;

use super::super::credit::{CreditFinding, CreditRule};
use super::super::schedule::{self, Instalment, ScheduleKind};
use super::super::*;
use super::{at, customer, day, order, rub};
use crate::test_support::{Model, assert_reached, reached, run_against_model, run_alone};

use LoanStatus::{
    Active, Approved, Completed, Defaulted, Draft, NotApplied, Rejected, Submitted, UnderReview,
};

/// `numerator / denominator` rounded to a whole number, halves away from zero (the kopeck rule).
fn round_half_away(numerator: i128, denominator: i128) -> i64 {
    let (quotient, remainder) = (numerator / denominator, numerator % denominator);
    let rounded = if 2 * remainder.abs() >= denominator.abs() {
        quotient + numerator.signum() * denominator.signum()
    } else {
        quotient
    };
    i64::try_from(rounded).expect("within range")
}

/// A month's interest on `balance` kopecks at `rate` hundredths of a per cent a year:
/// `balance × rate / 100 / 100 / 12`.
fn monthly_interest(balance: i64, rate: i64) -> i64 {
    round_half_away(i128::from(balance) * i128::from(rate), 120_000)
}

/// Interest on `balance` kopecks at `rate` hundredths of a per cent a year for the days after
/// `from` up to and including `to`, by actual days: each day adds `balance × rate / 10 000 /
/// (366 or 365, its year's length)`, summed exactly over a common denominator and rounded once.
fn actual_day_interest(balance: i64, rate: i64, from: NaiveDate, to: NaiveDate) -> i64 {
    // 1/365 = 366/133 590 and 1/366 = 365/133 590.
    let mut weight: i128 = 0;
    let mut day = from;
    while day < to {
        day = day.succ_opt().expect("within the calendar");
        let leap = NaiveDate::from_ymd_opt(day.year(), 2, 29).is_some();
        weight += if leap { 365 } else { 366 };
    }
    round_half_away(
        i128::from(balance) * i128::from(rate) * weight,
        10_000 * 133_590,
    )
}

/// The policy table of [`credit`]: the annual rate in hundredths of a per cent.
fn rate_for(loan_type: LoanType, score: u16) -> Option<i64> {
    let band = match score {
        800..=850 => 0,
        740..=799 => 1,
        670..=739 => 2,
        580..=669 => 3,
        _ => return None,
    };
    match loan_type {
        LoanType::CarLoan => Some([1490, 1890, 2290, 2790][band]),
        LoanType::Leasing => Some([1290, 1690, 2090, 2590][band]),
        LoanType::Instalment if band <= 2 => Some(0),
        LoanType::Instalment => None,
    }
}

fn rate_decimal(rate: i64) -> Decimal {
    Decimal::new(rate, 2).normalize()
}

fn term_limits(loan_type: LoanType) -> (u32, u32) {
    match loan_type {
        LoanType::CarLoan => (12, 84),
        LoanType::Leasing => (12, 60),
        LoanType::Instalment => (3, 24),
    }
}

/// What stays fixed from one instalment to the next, in kopecks.
#[derive(Clone, Copy, Debug)]
enum Fixed {
    Payment(i64),
    Principal(i64),
}

impl Fixed {
    fn for_kind(
        kind: ScheduleKind,
        opening: i64,
        rate: i64,
        months: u32,
        currency: Currency,
    ) -> Fixed {
        match kind {
            ScheduleKind::Annuity if rate == 0 => {
                Fixed::Payment(round_half_away(opening.into(), months.into()))
            }
            ScheduleKind::Annuity => Fixed::Payment(
                schedule::annuity_payment(
                    Money::from_minor_units(opening, currency),
                    rate_decimal(rate),
                    months,
                )
                .minor_units(),
            ),
            ScheduleKind::Differentiated => {
                Fixed::Principal(round_half_away(opening.into(), months.into()))
            }
        }
    }

    fn kopecks(self) -> i64 {
        match self {
            Fixed::Payment(amount) | Fixed::Principal(amount) => amount,
        }
    }

    fn principal_after(self, interest: i64) -> i64 {
        match self {
            Fixed::Payment(payment) => payment - interest,
            Fixed::Principal(part) => part,
        }
    }
}

fn due(first_due: NaiveDate, number: u32) -> NaiveDate {
    first_due
        .checked_add_months(Months::new(number - 1))
        .unwrap_or(NaiveDate::MAX)
}

/// The principal part of instalment `number` on `balance` with `interest`: the first one computed
/// (`number == first`) takes a regular month's under a fixed payment, the others the rest of it.
fn principal_part(fixed: Fixed, first: bool, balance: i64, rate: i64, interest: i64) -> i64 {
    if first {
        fixed.principal_after(monthly_interest(balance, rate))
    } else {
        fixed.principal_after(interest)
    }
}

/// Instalments `first, first + 1, ...` paying off `opening`, at most `count`, the last taking
/// whatever is left; due dates counted in months from instalment 1's; the first period from
/// `from`, the others from the previous due date, interest by actual days.
#[allow(clippy::too_many_arguments)]
fn instalments(
    opening: i64,
    rate: i64,
    fixed: Fixed,
    first: u32,
    count: u32,
    first_due: NaiveDate,
    from: NaiveDate,
    currency: Currency,
) -> Vec<Instalment> {
    let money = |minor| Money::from_minor_units(minor, currency);
    let mut balance = opening;
    let mut rows = Vec::new();
    for number in first..first + count.max(1) {
        if balance <= 0 {
            break;
        }
        let start = if number == first {
            from
        } else {
            due(first_due, number - 1)
        };
        let interest = actual_day_interest(balance, rate, start, due(first_due, number));
        let principal = if number + 1 == first + count.max(1) {
            balance
        } else {
            principal_part(fixed, number == first, balance, rate, interest).clamp(0, balance)
        };
        balance -= principal;
        rows.push(Instalment {
            number,
            due_date: due(first_due, number),
            principal: money(principal),
            interest: money(interest),
            total: money(principal + interest),
            remaining: money(balance),
        });
    }
    rows
}

/// One instalment of the schedule in force and what has been paid on it.
#[derive(Clone, Debug, PartialEq)]
struct Row {
    instalment: Instalment,
    paid_principal: i64,
    paid_interest: i64,
    overdue: bool,
}

impl Row {
    fn interest_due(&self) -> i64 {
        self.instalment.interest.minor_units() - self.paid_interest
    }

    fn principal_due(&self) -> i64 {
        self.instalment.principal.minor_units() - self.paid_principal
    }

    fn unpaid(&self) -> i64 {
        self.interest_due() + self.principal_due()
    }
}

/// The terms an approval fixed.
#[derive(Clone, Debug)]
struct Terms {
    rate: i64,
    kind: ScheduleKind,
    first_due: NaiveDate,
    fixed: Fixed,
    /// The decision date the offer's first period starts from.
    decided_on: NaiveDate,
}

#[derive(Clone, Debug, Default)]
struct LoanModel {
    status: LoanStatus,
    parties: Option<(Uuid, Uuid)>,
    details: Option<LoanDetails>,
    terms: Option<Terms>,
    rows: Vec<Row>,
    disbursed_on: Option<NaiveDate>,
    principal_repaid: i64,
    interest_paid: i64,
    /// The last partial early repayment: interest is paid up to it.
    last_early: Option<NaiveDate>,
}

fn validate(price: Money, application: &Application) -> Result<LoanDetails, LoanError> {
    if price.minor_units() <= 0 {
        return Err(LoanError::NonPositivePrice);
    }
    for amount in [application.down_payment, application.monthly_income] {
        if amount.currency() != price.currency() {
            return Err(LoanError::CurrencyMismatch {
                expected: price.currency(),
                found: amount.currency(),
            });
        }
    }
    if !(300..=850).contains(&application.credit_score) {
        return Err(LoanError::CreditScoreOutOfRange {
            score: application.credit_score,
        });
    }
    let (min, max) = term_limits(application.loan_type);
    if !(min..=max).contains(&application.term_months) {
        return Err(LoanError::TermOutOfRange {
            loan_type: application.loan_type,
            term_months: application.term_months,
            min,
            max,
        });
    }
    if application.monthly_income.minor_units() < 0 {
        return Err(LoanError::NegativeIncome);
    }
    if application.down_payment.minor_units() < 0 {
        return Err(LoanError::NegativeDownPayment);
    }
    if application.down_payment.minor_units() >= price.minor_units() {
        return Err(LoanError::DownPaymentNotBelowPrice {
            down_payment: application.down_payment,
            price,
        });
    }
    Ok(LoanDetails {
        vehicle_price: price,
        down_payment: application.down_payment,
        loan_amount: Money::from_minor_units(
            price.minor_units() - application.down_payment.minor_units(),
            price.currency(),
        ),
        loan_type: application.loan_type,
        term_months: application.term_months,
        employment: application.employment,
        monthly_income: application.monthly_income,
        credit_score: application.credit_score,
    })
}

/// The credit policy: the rate, or the rules that failed (details are compared elsewhere).
fn credit(
    details: &LoanDetails,
    kind: ScheduleKind,
) -> Result<(i64, Vec<CreditRule>), Vec<CreditRule>> {
    let rate = rate_for(details.loan_type, details.credit_score);
    let pti_percent = match details.employment {
        EmploymentStatus::Employed | EmploymentStatus::Retired => Some(40),
        EmploymentStatus::SelfEmployed => Some(35),
        EmploymentStatus::Unemployed => None,
    };
    let down_percent = match details.loan_type {
        LoanType::CarLoan => 15,
        LoanType::Leasing => 20,
        LoanType::Instalment => 0,
    };
    let minimum_down = round_half_away(
        i128::from(details.vehicle_price.minor_units()) * down_percent,
        100,
    );
    let (min, max) = term_limits(details.loan_type);
    let mut checks = vec![
        (CreditRule::CreditScore, rate.is_some()),
        (CreditRule::Employment, pti_percent.is_some()),
        (
            CreditRule::DownPayment,
            details.down_payment.minor_units() >= minimum_down,
        ),
        (CreditRule::Term, (min..=max).contains(&details.term_months)),
    ];
    if let (Some(rate), Some(percent)) = (rate, pti_percent) {
        let principal = details.loan_amount.minor_units();
        let fixed = Fixed::for_kind(
            kind,
            principal,
            rate,
            details.term_months,
            details.loan_amount.currency(),
        );
        // A regular month's first instalment: a month's interest plus the principal part.
        let month = monthly_interest(principal, rate);
        let largest = if details.term_months == 1 {
            principal + month
        } else {
            fixed.principal_after(month).clamp(0, principal) + month
        };
        let allowed = round_half_away(
            i128::from(details.monthly_income.minor_units()) * percent,
            100,
        );
        checks.push((CreditRule::PaymentToIncome, largest <= allowed));
    }
    let rules = |passed: bool| {
        checks
            .iter()
            .filter(|c| c.1 == passed)
            .map(|c| c.0)
            .collect::<Vec<_>>()
    };
    match rate {
        Some(rate) if rules(false).is_empty() => Ok((rate, rules(true))),
        _ => Err(rules(false)),
    }
}

fn findings(rules: Vec<CreditRule>) -> Vec<CreditFinding> {
    rules
        .into_iter()
        .map(|rule| CreditFinding {
            rule,
            detail: String::new(),
        })
        .collect()
}

impl LoanModel {
    fn currency(&self) -> Currency {
        self.details
            .as_ref()
            .map(|d| d.vehicle_price.currency())
            .unwrap_or_default()
    }

    fn money(&self, minor: i64) -> Money {
        Money::from_minor_units(minor, self.currency())
    }

    fn principal(&self) -> i64 {
        self.details
            .as_ref()
            .map_or(0, |d| d.loan_amount.minor_units())
    }

    fn outstanding_principal(&self) -> i64 {
        self.principal() - self.principal_repaid
    }

    fn outstanding(&self) -> i64 {
        self.rows.iter().map(Row::unpaid).sum()
    }

    fn next_unpaid(&self) -> Option<&Row> {
        self.rows.iter().find(|row| row.unpaid() > 0)
    }

    fn unpaid_before(&self, date: NaiveDate) -> Vec<u32> {
        self.rows
            .iter()
            .filter(|row| row.unpaid() > 0 && row.instalment.due_date < date)
            .map(|row| row.instalment.number)
            .collect()
    }

    fn refuse(&self, action: &'static str) -> LoanError {
        match self.status {
            NotApplied => LoanError::NotApplied,
            from => LoanError::InvalidTransition { from, action },
        }
    }

    /// Refused unless active, then unless on or after the disbursement.
    fn active_on(&self, action: &'static str, date: NaiveDate) -> Result<(), LoanError> {
        if self.status != Active {
            return Err(self.refuse(action));
        }
        let disbursed_on = self.disbursed_on.expect("an active loan was disbursed");
        if date < disbursed_on {
            return Err(LoanError::DateBeforeDisbursement { date, disbursed_on });
        }
        Ok(())
    }

    fn same_currency(&self, amount: Money) -> Result<(), LoanError> {
        if amount.currency() != self.currency() {
            return Err(LoanError::CurrencyMismatch {
                expected: self.currency(),
                found: amount.currency(),
            });
        }
        Ok(())
    }

    /// Where the period in progress accrues from: the previous due date (or the disbursement),
    /// or the last partial early repayment if later.
    fn period_start(&self) -> Option<NaiveDate> {
        let next = self.next_unpaid()?;
        let start = self
            .rows
            .iter()
            .find(|row| row.instalment.number + 1 == next.instalment.number)
            .map(|row| row.instalment.due_date)
            .or(self.disbursed_on)?;
        Some(self.last_early.map_or(start, |early| start.max(early)))
    }

    /// The interest accrued in the current period until `on`, by actual days.
    fn accrued(&self, on: NaiveDate) -> Option<i64> {
        let terms = self.terms.as_ref()?;
        let next = self.next_unpaid()?;
        Some(actual_day_interest(
            self.outstanding_principal(),
            terms.rate,
            self.period_start()?,
            on.min(next.instalment.due_date),
        ))
    }

    fn payoff(&self, on: NaiveDate) -> Option<i64> {
        if self.status != Active {
            return None;
        }
        Some(self.outstanding_principal() + self.accrued(on)?)
    }

    fn repay(&mut self, amount: Money, paid_on: NaiveDate) -> Result<Vec<LoanEvent>, LoanError> {
        if self.status != Active {
            return Err(self.refuse("take a repayment"));
        }
        self.same_currency(amount)?;
        if amount.minor_units() <= 0 {
            return Err(LoanError::NonPositiveAmount);
        }
        self.active_on("take a repayment", paid_on)?;
        let outstanding = self.outstanding();
        if amount.minor_units() > outstanding {
            return Err(LoanError::RepaymentExceedsOutstanding {
                amount,
                outstanding: self.money(outstanding),
            });
        }
        let mut left = amount.minor_units();
        let mut allocations = Vec::new();
        for row in self.rows.iter_mut().filter(|row| row.unpaid() > 0) {
            if left == 0 {
                break;
            }
            let interest = left.min(row.interest_due());
            let principal = (left - interest).min(row.principal_due());
            left -= interest + principal;
            row.paid_interest += interest;
            row.paid_principal += principal;
            if row.unpaid() == 0 {
                row.overdue = false;
            }
            allocations.push((row.instalment.number, principal, interest));
        }
        self.principal_repaid += allocations.iter().map(|a| a.1).sum::<i64>();
        self.interest_paid += allocations.iter().map(|a| a.2).sum::<i64>();
        let mut events = vec![LoanEvent::LoanRepaymentRecorded {
            amount,
            paid_on,
            allocations: allocations
                .into_iter()
                .map(|(instalment, principal, interest)| Allocation {
                    instalment,
                    principal: self.money(principal),
                    interest: self.money(interest),
                })
                .collect(),
        }];
        if amount.minor_units() == outstanding {
            self.status = Completed;
            events.push(LoanEvent::LoanCompleted {
                completed_on: paid_on,
            });
        }
        Ok(events)
    }

    fn repay_early(
        &mut self,
        repayment: &EarlyRepayment,
        paid_on: NaiveDate,
    ) -> Result<Vec<LoanEvent>, LoanError> {
        self.active_on("take a repayment", paid_on)?;
        let (EarlyRepayment::Partial { amount, .. } | EarlyRepayment::Full { amount }) = repayment;
        let amount = *amount;
        self.same_currency(amount)?;
        if amount.minor_units() <= 0 {
            return Err(LoanError::NonPositiveAmount);
        }
        let overdue = self.unpaid_before(paid_on);
        if !overdue.is_empty() {
            return Err(LoanError::InArrears { overdue });
        }
        let next = self
            .next_unpaid()
            .expect("an active loan has something to pay")
            .clone();
        if next.paid_principal != 0 || next.paid_interest != 0 {
            return Err(LoanError::InstalmentPartlyPaid {
                number: next.instalment.number,
            });
        }
        let outstanding_principal = self.outstanding_principal();
        match *repayment {
            EarlyRepayment::Full { amount } => {
                let expected = self.payoff(paid_on).expect("active");
                if amount.minor_units() != expected {
                    return Err(LoanError::PayoffAmountMismatch {
                        expected: self.money(expected),
                        offered: amount,
                    });
                }
                let interest = expected - outstanding_principal;
                self.principal_repaid += outstanding_principal;
                self.interest_paid += interest;
                self.rows.retain(|row| row.unpaid() == 0);
                self.status = Completed;
                Ok(vec![
                    LoanEvent::LoanRepaidEarly {
                        paid_on,
                        amount,
                        principal: self.money(outstanding_principal),
                        interest: self.money(interest),
                        recalculation: None,
                        fixed_part: None,
                        schedule: vec![],
                    },
                    LoanEvent::LoanCompleted {
                        completed_on: paid_on,
                    },
                ])
            }
            EarlyRepayment::Partial {
                amount,
                recalculation,
            } => {
                let interest = self.accrued(paid_on).expect("active");
                if amount.minor_units() <= interest {
                    return Err(LoanError::EarlyRepaymentNotAboveAccruedInterest {
                        amount,
                        accrued_interest: self.money(interest),
                    });
                }
                let principal = amount.minor_units() - interest;
                if principal >= outstanding_principal {
                    return Err(LoanError::EarlyRepaymentTooLarge {
                        amount,
                        outstanding_principal: self.money(outstanding_principal),
                    });
                }
                let from_date = self.period_start().expect("active").max(paid_on);
                let terms = self.terms.clone().expect("an active loan has terms");
                let opening = outstanding_principal - principal;
                let from = next.instalment.number;
                let remaining = self
                    .rows
                    .iter()
                    .filter(|row| row.instalment.number >= from)
                    .count() as u32;
                let (fixed, count) = match recalculation {
                    Recalculation::LowerPayment => (
                        Fixed::for_kind(
                            terms.kind,
                            opening,
                            terms.rate,
                            remaining,
                            self.currency(),
                        ),
                        remaining,
                    ),
                    Recalculation::ShortenTerm => {
                        let fixed = terms.fixed;
                        // The shortened term: months until the fixed amount pays `opening` off.
                        let (mut balance, mut months) = (opening, 0);
                        while balance > 0 && months < remaining {
                            let number = from + months;
                            let start = if months == 0 {
                                from_date
                            } else {
                                due(terms.first_due, number - 1)
                            };
                            let interest = actual_day_interest(
                                balance,
                                terms.rate,
                                start,
                                due(terms.first_due, number),
                            );
                            months += 1;
                            let principal =
                                principal_part(fixed, months == 1, balance, terms.rate, interest);
                            if principal <= 0 {
                                months = remaining;
                                break;
                            }
                            balance -= principal;
                        }
                        (fixed, months.max(1))
                    }
                };
                let rows = instalments(
                    opening,
                    terms.rate,
                    fixed,
                    from,
                    count,
                    terms.first_due,
                    from_date,
                    self.currency(),
                );
                self.principal_repaid += principal;
                self.interest_paid += interest;
                self.last_early = Some(paid_on);
                self.rows.retain(|row| row.instalment.number < from);
                self.rows.extend(rows.iter().cloned().map(|instalment| Row {
                    instalment,
                    paid_principal: 0,
                    paid_interest: 0,
                    overdue: false,
                }));
                self.terms = Some(Terms { fixed, ..terms });
                Ok(vec![LoanEvent::LoanRepaidEarly {
                    paid_on,
                    amount,
                    principal: self.money(principal),
                    interest: self.money(interest),
                    recalculation: Some(recalculation),
                    fixed_part: Some(self.money(fixed.kopecks())),
                    schedule: rows,
                }])
            }
        }
    }

    fn assess(&mut self, as_of: NaiveDate) -> Result<Vec<LoanEvent>, LoanError> {
        self.active_on("assess arrears", as_of)?;
        let mut events = vec![];
        let mut newly = vec![];
        for row in self.rows.iter_mut() {
            if row.unpaid() > 0 && !row.overdue && row.instalment.due_date < as_of {
                row.overdue = true;
                newly.push(row.instalment.number);
            }
        }
        if !newly.is_empty() {
            events.push(LoanEvent::InstalmentsFellOverdue {
                as_of,
                instalments: newly,
            });
        }
        let overdue = self.unpaid_before(as_of);
        if let Some(&oldest) = overdue.first() {
            let due = self
                .rows
                .iter()
                .find(|row| row.instalment.number == oldest)
                .unwrap()
                .instalment
                .due_date;
            let days_past_due = (as_of - due).num_days();
            if days_past_due > 60 {
                self.status = Defaulted;
                events.push(LoanEvent::LoanDefaulted {
                    as_of,
                    overdue_instalments: overdue,
                    days_past_due,
                });
            }
        }
        Ok(events)
    }
}

/// A generated step. Amounts and dates that only make sense against the loan as it stands ("the
/// next instalment", "the payoff", "15 days after the next due date") are resolved by the model.
#[derive(Clone, Debug)]
pub(super) enum Step {
    Apply {
        price: Money,
        application: Application,
    },
    Update(ApplicationChanges),
    Submit,
    StartReview,
    /// First due date this many days after the decision on 22 November 2026.
    Decide {
        kind: ScheduleKind,
        first_due_in_days: u64,
        too_early: bool,
    },
    Reject(&'static str),
    /// Disbursed this many days before the first due date (zero or less is refused).
    Disburse {
        days_before_first_due: i64,
    },
    Repay(Amount, When),
    RepayEarlyPartly {
        percent_of_principal: i64,
        recalculation: Recalculation,
        when: When,
    },
    RepayEarlyFully {
        kopecks_off_the_payoff: i64,
        when: When,
    },
    Assess(When),
}

#[derive(Clone, Copy, Debug)]
pub(super) enum Amount {
    /// What is left to pay on the next instalment.
    NextInstalment,
    /// Half of that.
    HalfOfNextInstalment,
    /// Everything outstanding on the schedule, plus this many kopecks (a kopeck short, exact, a
    /// kopeck over).
    Everything(i64),
    Fixed(Money),
}

#[derive(Clone, Copy, Debug)]
pub(super) enum When {
    /// This many days after (negative: before) the next unpaid instalment's due date.
    FromNextDue(i64),
    /// The day before the disbursement.
    BeforeDisbursement,
}

impl LoanModel {
    fn date(&self, when: When) -> NaiveDate {
        let disbursed = self.disbursed_on.unwrap_or(day("2026-11-30"));
        match when {
            When::BeforeDisbursement => disbursed - chrono::Days::new(1),
            When::FromNextDue(days) => {
                let due = self
                    .next_unpaid()
                    .map_or(day("2026-12-31"), |row| row.instalment.due_date);
                due + chrono::Duration::days(days)
            }
        }
    }
}

impl Model<Loan> for LoanModel {
    type Step = Step;

    fn command(&self, step: &Step) -> LoanCommand {
        let next = self.next_unpaid().map_or(100_000, Row::unpaid);
        match step {
            Step::Apply { price, application } => LoanCommand::Apply {
                order_id: order(),
                customer_id: customer(),
                vehicle_price: *price,
                application: application.clone(),
                applied_at: at("2026-11-20T10:00:00Z"),
            },
            Step::Update(changes) => LoanCommand::UpdateApplication {
                changes: changes.clone(),
            },
            Step::Submit => LoanCommand::Submit {
                submitted_at: at("2026-11-20T11:00:00Z"),
            },
            Step::StartReview => LoanCommand::StartReview {
                started_at: at("2026-11-21T09:00:00Z"),
            },
            Step::Decide {
                kind,
                first_due_in_days,
                too_early,
            } => {
                let decided_on = day("2026-11-22");
                let first_due_date = if *too_early {
                    decided_on - chrono::Days::new(*first_due_in_days % 2)
                } else {
                    decided_on + chrono::Days::new(*first_due_in_days)
                };
                LoanCommand::Decide {
                    schedule_kind: *kind,
                    first_due_date,
                    decided_at: at("2026-11-22T10:00:00Z"),
                    decided_on,
                }
            }
            Step::Reject(reason) => LoanCommand::Reject {
                reason: (*reason).to_owned(),
                rejected_at: at("2026-11-23T10:00:00Z"),
            },
            Step::Disburse {
                days_before_first_due,
            } => {
                let first_due = self
                    .terms
                    .as_ref()
                    .map_or(day("2026-12-31"), |t| t.first_due);
                LoanCommand::Disburse {
                    disbursed_on: first_due - chrono::Duration::days(*days_before_first_due),
                }
            }
            Step::Repay(amount, when) => LoanCommand::RecordRepayment {
                amount: match *amount {
                    Amount::NextInstalment => self.money(next),
                    Amount::HalfOfNextInstalment => self.money((next / 2).max(1)),
                    Amount::Everything(extra) => self.money(self.outstanding() + extra),
                    Amount::Fixed(money) => money,
                },
                paid_on: self.date(*when),
            },
            Step::RepayEarlyPartly {
                percent_of_principal,
                recalculation,
                when,
            } => LoanCommand::RepayEarly {
                repayment: EarlyRepayment::Partial {
                    amount: self
                        .money((self.outstanding_principal() * percent_of_principal / 100).max(1)),
                    recalculation: *recalculation,
                },
                paid_on: self.date(*when),
            },
            Step::RepayEarlyFully {
                kopecks_off_the_payoff,
                when,
            } => {
                let paid_on = self.date(*when);
                let payoff = self.payoff(paid_on).unwrap_or(100_000);
                LoanCommand::RepayEarly {
                    repayment: EarlyRepayment::Full {
                        amount: self.money(payoff + kopecks_off_the_payoff),
                    },
                    paid_on,
                }
            }
            Step::Assess(when) => LoanCommand::AssessArrears {
                as_of: self.date(*when),
            },
        }
    }

    fn step(&mut self, command: &LoanCommand) -> Result<Vec<LoanEvent>, LoanError> {
        let event = match command {
            LoanCommand::Apply {
                order_id,
                customer_id,
                vehicle_price,
                application,
                applied_at,
            } => {
                if self.status != NotApplied {
                    return Err(LoanError::AlreadyApplied);
                }
                let details = validate(*vehicle_price, application)?;
                self.status = Draft;
                self.parties = Some((*order_id, *customer_id));
                self.details = Some(details.clone());
                LoanEvent::LoanApplied {
                    order_id: *order_id,
                    customer_id: *customer_id,
                    details,
                    applied_at: *applied_at,
                }
            }
            LoanCommand::UpdateApplication { changes } => {
                if self.status != Draft {
                    return Err(self.refuse("change the application"));
                }
                let current = self.details.clone().expect("a draft has details");
                let application = Application {
                    down_payment: changes.down_payment.unwrap_or(current.down_payment),
                    loan_type: changes.loan_type.unwrap_or(current.loan_type),
                    term_months: changes.term_months.unwrap_or(current.term_months),
                    employment: changes.employment.unwrap_or(current.employment),
                    monthly_income: changes.monthly_income.unwrap_or(current.monthly_income),
                    credit_score: changes.credit_score.unwrap_or(current.credit_score),
                };
                let details = validate(current.vehicle_price, &application)?;
                if details == current {
                    return Ok(vec![]);
                }
                self.details = Some(details.clone());
                LoanEvent::LoanApplicationUpdated { details }
            }
            LoanCommand::Submit { submitted_at } => {
                if self.status != Draft {
                    return Err(self.refuse("submit"));
                }
                self.status = Submitted;
                LoanEvent::LoanApplicationSubmitted {
                    submitted_at: *submitted_at,
                }
            }
            LoanCommand::StartReview { started_at } => {
                if self.status != Submitted {
                    return Err(self.refuse("start the review"));
                }
                self.status = UnderReview;
                LoanEvent::LoanReviewStarted {
                    started_at: *started_at,
                }
            }
            LoanCommand::Decide {
                schedule_kind,
                first_due_date,
                decided_at,
                decided_on,
            } => {
                if self.status != UnderReview {
                    return Err(self.refuse("decide"));
                }
                let decided_on = *decided_on;
                if *first_due_date <= decided_on {
                    return Err(LoanError::FirstDueDateNotAfterDecision {
                        first_due_date: *first_due_date,
                        decided_on,
                    });
                }
                let latest = decided_on.checked_add_months(Months::new(2)).unwrap();
                if *first_due_date > latest {
                    return Err(LoanError::FirstDueDateTooLate {
                        first_due_date: *first_due_date,
                        latest,
                    });
                }
                let details = self.details.clone().expect("under review");
                match credit(&details, *schedule_kind) {
                    Ok((rate, passed)) => {
                        let principal = details.loan_amount.minor_units();
                        let fixed = Fixed::for_kind(
                            *schedule_kind,
                            principal,
                            rate,
                            details.term_months,
                            self.currency(),
                        );
                        let rows = instalments(
                            principal,
                            rate,
                            fixed,
                            1,
                            details.term_months,
                            *first_due_date,
                            decided_on,
                            self.currency(),
                        );
                        self.status = Approved;
                        self.terms = Some(Terms {
                            rate,
                            kind: *schedule_kind,
                            first_due: *first_due_date,
                            fixed,
                            decided_on,
                        });
                        self.rows = rows
                            .iter()
                            .cloned()
                            .map(|instalment| Row {
                                instalment,
                                paid_principal: 0,
                                paid_interest: 0,
                                overdue: false,
                            })
                            .collect();
                        LoanEvent::LoanApproved {
                            annual_rate_percent: rate_decimal(rate),
                            schedule_kind: *schedule_kind,
                            first_due_date: *first_due_date,
                            fixed_part: self.money(fixed.kopecks()),
                            schedule: rows,
                            checks: findings(passed),
                            decided_at: *decided_at,
                            day_count: schedule::DayCount::ActualDays,
                            accrues_from: decided_on,
                        }
                    }
                    Err(failed) => {
                        self.status = Rejected;
                        LoanEvent::LoanRejected {
                            reasons: findings(failed),
                            rejected_at: *decided_at,
                        }
                    }
                }
            }
            LoanCommand::Reject {
                reason,
                rejected_at,
            } => {
                if !matches!(self.status, Submitted | UnderReview | Approved) {
                    return Err(self.refuse("reject"));
                }
                if reason.trim().is_empty() {
                    return Err(LoanError::EmptyReason);
                }
                self.status = Rejected;
                LoanEvent::LoanRejected {
                    reasons: vec![CreditFinding {
                        rule: CreditRule::StaffDecision,
                        detail: reason.trim().to_owned(),
                    }],
                    rejected_at: *rejected_at,
                }
            }
            LoanCommand::Disburse { disbursed_on } => {
                if self.status != Approved {
                    return Err(self.refuse("disburse"));
                }
                let first_due_date = self.terms.as_ref().expect("approved").first_due;
                if *disbursed_on >= first_due_date {
                    return Err(LoanError::DisbursementNotBeforeFirstDueDate {
                        disbursed_on: *disbursed_on,
                        first_due_date,
                    });
                }
                self.status = Active;
                self.disbursed_on = Some(*disbursed_on);
                let terms = self.terms.clone().expect("approved");
                // Lent on another day than the offer assumed: the schedule again, from that day.
                let schedule = if terms.decided_on == *disbursed_on {
                    vec![]
                } else {
                    let term = self.details.as_ref().expect("approved").term_months;
                    instalments(
                        self.principal(),
                        terms.rate,
                        terms.fixed,
                        1,
                        term,
                        terms.first_due,
                        *disbursed_on,
                        self.currency(),
                    )
                };
                if !schedule.is_empty() {
                    self.rows = schedule
                        .iter()
                        .cloned()
                        .map(|instalment| Row {
                            instalment,
                            paid_principal: 0,
                            paid_interest: 0,
                            overdue: false,
                        })
                        .collect();
                }
                LoanEvent::LoanDisbursed {
                    disbursed_on: *disbursed_on,
                    principal: self.money(self.principal()),
                    schedule,
                }
            }
            LoanCommand::RecordRepayment { amount, paid_on } => {
                return self.repay(*amount, *paid_on);
            }
            LoanCommand::RepayEarly { repayment, paid_on } => {
                return self.repay_early(repayment, *paid_on);
            }
            LoanCommand::AssessArrears { as_of } => return self.assess(*as_of),
        };
        Ok(vec![event])
    }

    fn check(&self, loan: &Loan) -> Result<(), TestCaseError> {
        let applied = self.details.is_some();
        prop_assert_eq!(loan.status(), self.status);
        prop_assert_eq!(loan.order_id(), self.parties.map(|p| p.0));
        prop_assert_eq!(loan.customer_id(), self.parties.map(|p| p.1));
        prop_assert_eq!(loan.details(), self.details.as_ref());
        prop_assert_eq!(
            loan.principal(),
            self.details.as_ref().map(|d| d.loan_amount)
        );
        prop_assert_eq!(
            loan.annual_rate_percent(),
            self.terms.as_ref().map(|t| rate_decimal(t.rate))
        );
        prop_assert_eq!(loan.schedule_kind(), self.terms.as_ref().map(|t| t.kind));
        prop_assert_eq!(loan.disbursed_on(), self.disbursed_on);
        let rows: Vec<ScheduledInstalment> = self
            .rows
            .iter()
            .map(|row| ScheduledInstalment {
                instalment: row.instalment.clone(),
                paid_principal: self.money(row.paid_principal),
                paid_interest: self.money(row.paid_interest),
                overdue: row.overdue,
            })
            .collect();
        prop_assert_eq!(loan.instalments(), rows.as_slice());
        prop_assert_eq!(
            loan.outstanding_principal(),
            applied.then(|| self.money(self.outstanding_principal()))
        );
        prop_assert_eq!(loan.interest_paid(), self.money(self.interest_paid));
        prop_assert_eq!(loan.outstanding(), self.money(self.outstanding()));
        for when in [
            When::FromNextDue(-40),
            When::FromNextDue(-10),
            When::FromNextDue(0),
            When::FromNextDue(5),
        ] {
            let on = self.date(when);
            prop_assert_eq!(
                loan.payoff(on),
                self.payoff(on).map(|minor| self.money(minor)),
                "payoff on {}",
                on
            );
        }
        Ok(())
    }

    /// Credit findings are compared by rule; their wording is the given/when/then tests' concern.
    fn comparable(event: &LoanEvent) -> LoanEvent {
        let blank = |findings: &[CreditFinding]| -> Vec<CreditFinding> {
            findings
                .iter()
                .map(|finding| CreditFinding {
                    rule: finding.rule,
                    detail: if finding.rule == CreditRule::StaffDecision {
                        finding.detail.clone()
                    } else {
                        String::new()
                    },
                })
                .collect()
        };
        match event {
            LoanEvent::LoanApproved { checks, .. } => {
                let mut event = event.clone();
                if let LoanEvent::LoanApproved {
                    checks: blanked, ..
                } = &mut event
                {
                    *blanked = blank(checks);
                }
                event
            }
            LoanEvent::LoanRejected {
                reasons,
                rejected_at,
            } => LoanEvent::LoanRejected {
                reasons: blank(reasons),
                rejected_at: *rejected_at,
            },
            other => other.clone(),
        }
    }
}

fn application() -> impl Strategy<Value = (Money, Application)> {
    let usual = Application {
        down_payment: rub("225000"),
        loan_type: LoanType::CarLoan,
        term_months: 60,
        employment: EmploymentStatus::Employed,
        monthly_income: rub("150000"),
        credit_score: 700,
    };
    // Each kind of financing with a term and down payment its policy accepts.
    let financing = prop::sample::select(vec![
        (LoanType::Leasing, 36, rub("300000")),
        (LoanType::Instalment, 12, rub("0")),
        (LoanType::Instalment, 24, rub("225000")),
        (LoanType::CarLoan, 84, rub("225000")),
    ]);
    let term = prop::sample::select(vec![3u32, 12, 24, 36, 60, 84, 2, 90]);
    let down = prop::sample::select(vec![
        "0",
        "100000",
        "225000",
        "300000",
        "1499999.99",
        "1500000",
        "-1",
    ])
    .prop_map(rub);
    let employment = prop::sample::select(vec![
        EmploymentStatus::Employed,
        EmploymentStatus::SelfEmployed,
        EmploymentStatus::Retired,
        EmploymentStatus::Unemployed,
    ]);
    let income = prop::sample::select(vec!["150000", "400000", "20000", "0", "-1"]).prop_map(rub);
    // Every edge of the rate table, and beyond the bureau's range.
    let score = prop::sample::select(vec![
        700u16, 760, 820, 579, 580, 669, 670, 739, 740, 799, 800, 850, 299, 851,
    ]);
    // The usual application with a few of its fields changed, so most stay valid and reach the
    // credit policy, whose every edge (score bands, down payment, term, income) is then tried.
    use prop::option::weighted;
    let application = (
        weighted(0.15, down),
        weighted(0.4, financing),
        weighted(0.15, term),
        weighted(0.15, employment),
        weighted(0.15, income),
        weighted(0.6, score),
    )
        .prop_map(move |(down, financing, term, employment, income, score)| {
            let (loan_type, term_months, down_payment) =
                financing.unwrap_or((usual.loan_type, usual.term_months, usual.down_payment));
            Application {
                down_payment: down.unwrap_or(down_payment),
                loan_type,
                term_months: term.unwrap_or(term_months),
                employment: employment.unwrap_or(usual.employment),
                monthly_income: income.unwrap_or(usual.monthly_income),
                credit_score: score.unwrap_or(usual.credit_score),
            }
        });
    let price = prop_oneof![
        18 => Just(rub("1500000")),
        1 => Just(rub("0")),
        1 => Just(Money::from_minor_units(150_000_000, Currency::USD)),
    ];
    (price, application)
}

fn changes() -> impl Strategy<Value = ApplicationChanges> {
    (
        prop::option::of(prop::sample::select(vec!["0", "225000", "300000", "-1"]).prop_map(rub)),
        prop::option::of(prop::sample::select(vec![
            LoanType::CarLoan,
            LoanType::Leasing,
            LoanType::Instalment,
        ])),
        prop::option::of(prop::sample::select(vec![12u32, 24, 60, 90])),
        prop::option::of(Just(EmploymentStatus::SelfEmployed)),
        prop::option::of(prop::sample::select(vec!["150000", "30000"]).prop_map(rub)),
        prop::option::of(prop::sample::select(vec![700u16, 820, 900])),
    )
        .prop_map(
            |(down_payment, loan_type, term_months, employment, monthly_income, credit_score)| {
                ApplicationChanges {
                    down_payment,
                    loan_type,
                    term_months,
                    employment,
                    monthly_income,
                    credit_score,
                }
            },
        )
}

fn when() -> impl Strategy<Value = When> {
    prop_oneof![
        12 => prop::sample::select(vec![-40i64, -20, -3, -3, 0, 0, 1, 15, 45]).prop_map(When::FromNextDue),
        2 => prop::sample::select(vec![60i64, 61, 62, 100]).prop_map(When::FromNextDue),
        1 => Just(When::BeforeDisbursement),
    ]
}

fn kind() -> impl Strategy<Value = ScheduleKind> {
    prop::sample::select(vec![ScheduleKind::Annuity, ScheduleKind::Differentiated])
}

fn recalculation() -> impl Strategy<Value = Recalculation> {
    prop::sample::select(vec![
        Recalculation::ShortenTerm,
        Recalculation::LowerPayment,
    ])
}

fn decide() -> impl Strategy<Value = Step> {
    let first_due_in_days = prop_oneof![
        6 => prop::sample::select(vec![39u64, 1, 30, 61]),
        1 => prop::sample::select(vec![62u64, 120]),
    ];
    (kind(), first_due_in_days, prop::bool::weighted(0.05)).prop_map(
        |(kind, first_due_in_days, too_early)| Step::Decide {
            kind,
            first_due_in_days,
            too_early,
        },
    )
}

fn disburse() -> impl Strategy<Value = Step> {
    prop_oneof![6 => prop::sample::select(vec![31i64, 8, 1]), 1 => prop::sample::select(vec![0i64, -3])]
        .prop_map(|days_before_first_due| Step::Disburse { days_before_first_due })
}

fn active_step() -> impl Strategy<Value = Step> {
    let amount = prop_oneof![
        4 => Just(Amount::NextInstalment),
        2 => Just(Amount::HalfOfNextInstalment),
        1 => prop::sample::select(vec![0i64, 1, -1]).prop_map(Amount::Everything),
        1 => prop::sample::select(vec![rub("0"), rub("100000"), Money::from_minor_units(100, Currency::USD)]).prop_map(Amount::Fixed),
    ];
    prop_oneof![
        8 => (amount, when()).prop_map(|(amount, when)| Step::Repay(amount, when)),
        3 => (prop::sample::select(vec![1i64, 10, 50, 99, 100, 0]), recalculation(), when()).prop_map(
            |(percent_of_principal, recalculation, when)| Step::RepayEarlyPartly { percent_of_principal, recalculation, when },
        ),
        1 => (prop::sample::select(vec![0i64, 0, 1, -1]), when()).prop_map(
            |(kopecks_off_the_payoff, when)| Step::RepayEarlyFully { kopecks_off_the_payoff, when },
        ),
        3 => when().prop_map(Step::Assess),
    ]
}

fn any_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => application().prop_map(|(price, application)| Step::Apply { price, application }),
        1 => changes().prop_map(Step::Update),
        1 => Just(Step::Submit),
        1 => Just(Step::StartReview),
        1 => decide(),
        1 => prop::sample::select(vec!["fraud suspected", " "]).prop_map(Step::Reject),
        1 => disburse(),
        20 => active_step(),
    ]
}

/// An application carried part or all of the way to disbursement, then anything at all: most cases
/// reach an active loan, where most of the rules are.
fn steps() -> impl Strategy<Value = Vec<Step>> {
    let lifecycle = (
        application(),
        prop::option::weighted(0.2, changes()),
        decide(),
        disburse(),
        prop_oneof![1 => 1..=4usize, 4 => Just(5usize)],
    )
        .prop_map(
            |((price, application), update, decide, disburse, reached)| {
                let mut steps = vec![Step::Apply { price, application }];
                steps.extend(update.map(Step::Update));
                steps.extend([Step::Submit, Step::StartReview, decide, disburse]);
                steps.truncate(reached + usize::from(steps.len() == 6));
                steps
            },
        );
    (lifecycle, prop::collection::vec(any_step(), 0..30)).prop_map(|(mut steps, rest)| {
        steps.extend(rest);
        steps
    })
}

/// `credit::decide` gives the model's rate or the model's failed rules for every credit score of
/// every kind of financing, and on both sides of the down-payment and payment-to-income limits.
/// Deterministic, not random: the edges are few and known. Guards: a score band or the
/// instalment plan's 670 moved by one, `>=` written `>` for the minimum down payment, `<=` written
/// `<` for the payment-to-income limit, the self-employed limit taken for the employed.
#[test]
fn the_credit_policy_decides_as_its_tables_say_at_every_edge() {
    let price = rub("1500000");
    let decide = |details: &LoanDetails, kind: ScheduleKind| {
        let by_rule =
            |findings: Vec<CreditFinding>| findings.into_iter().map(|f| f.rule).collect::<Vec<_>>();
        let aggregate = match credit::decide(details, kind) {
            credit::CreditDecision::Approved {
                annual_rate_percent,
                checks,
            } => Ok((annual_rate_percent, by_rule(checks))),
            credit::CreditDecision::Refused { reasons } => Err(by_rule(reasons)),
        };
        let model = credit(details, kind).map(|(rate, passed)| (rate_decimal(rate), passed));
        assert_eq!(aggregate, model, "{details:?} as {kind:?}");
    };
    let financings = [
        (LoanType::CarLoan, 60, 15),
        (LoanType::CarLoan, 84, 15),
        (LoanType::Leasing, 36, 20),
        (LoanType::Instalment, 3, 0),
        (LoanType::Instalment, 24, 0),
    ];
    for (loan_type, term_months, down_percent) in financings {
        let minimum = round_half_away(i128::from(price.minor_units()) * down_percent, 100);
        let details = |down: i64, employment, income: i64, credit_score| {
            validate(
                price,
                &Application {
                    down_payment: Money::from_minor_units(down, Currency::RUB),
                    loan_type,
                    term_months,
                    employment,
                    monthly_income: Money::from_minor_units(income, Currency::RUB),
                    credit_score,
                },
            )
            .expect("a valid application")
        };
        for credit_score in 300..=850 {
            decide(
                &details(
                    minimum,
                    EmploymentStatus::Employed,
                    50_000_000,
                    credit_score,
                ),
                ScheduleKind::Annuity,
            );
        }
        for kind in [ScheduleKind::Annuity, ScheduleKind::Differentiated] {
            for employment in [
                EmploymentStatus::Employed,
                EmploymentStatus::SelfEmployed,
                EmploymentStatus::Retired,
                EmploymentStatus::Unemployed,
            ] {
                for credit_score in [579, 580, 669, 670, 739, 740, 799, 800, 850] {
                    for down in [minimum, minimum - 1].into_iter().filter(|down| *down >= 0) {
                        decide(&details(down, employment, 50_000_000, credit_score), kind);
                    }
                    // The lowest income whose share covers the first instalment, and a kopeck less.
                    let Some(rate) = rate_for(loan_type, credit_score) else {
                        continue;
                    };
                    let percent = if employment == EmploymentStatus::SelfEmployed {
                        35
                    } else {
                        40
                    };
                    let principal = price.minor_units() - minimum;
                    let fixed = Fixed::for_kind(kind, principal, rate, term_months, Currency::RUB);
                    // A regular month's first instalment (the payment-to-income test's).
                    let month = monthly_interest(principal, rate);
                    let first = fixed.principal_after(month).clamp(0, principal) + month;
                    let allowed = |income: i64| round_half_away(i128::from(income) * percent, 100);
                    let mut income = first * 100 / i64::try_from(percent).unwrap() - 3;
                    while allowed(income) < first {
                        income += 1;
                    }
                    for income in [income, income - 1] {
                        decide(&details(minimum, employment, income, credit_score), kind);
                    }
                }
            }
        }
    }
}

proptest! {
    /// Every decision (credit findings by rule) and everything the loan shows (the schedule in
    /// force with what is paid on each instalment, principal repaid, interest paid, what is
    /// outstanding, the payoff on several dates) equal the model's. Guards (each checked by
    /// changing the aggregate so, and seeing this fail): a rate band boundary moved by one,
    /// interest rounded half to even, a repayment allocated principal before interest, a
    /// recalculation that counts one instalment too few, LOWER_PAYMENT keeping the old payment, a
    /// payoff that charges the whole month's interest, a default at 60 days instead of after them,
    /// an overdue mark that survives the payment, interest paid counted twice.
    #[test]
    fn a_loan_decides_and_shows_what_the_model_does(steps in steps()) {
        run_against_model::<Loan, _>(LoanModel::default(), &steps)?;
    }

    /// The money of a loan always adds up, read from the aggregate alone: principal repaid never
    /// exceeds the principal; the schedule's principal parts plus the principal repaid early sum
    /// exactly to the principal; every schedule's balance ends at zero; the interest paid is the
    /// interest of every repayment event; a completed loan owes nothing. Guards: an early
    /// repayment that recalculates from the full principal, a last instalment that does not take
    /// the rest, interest paid counted twice by `apply`, a repayment of half of what is
    /// outstanding taken as completing the loan.
    #[test]
    fn a_loans_principal_is_repaid_exactly_once_and_the_schedule_adds_up(steps in steps()) {
        let outcomes = run_alone::<Loan, _>(LoanModel::default(), &steps);
        let (mut early_principal, mut interest) = (0i64, 0i64);
        for outcome in outcomes {
            for event in outcome.result.as_deref().unwrap_or_default() {
                match event {
                    LoanEvent::LoanRepaymentRecorded { amount, allocations, .. } => {
                        let allocated: i64 = allocations.iter().map(|a| a.principal.minor_units() + a.interest.minor_units()).sum();
                        prop_assert_eq!(allocated, amount.minor_units(), "allocations do not add up to the repayment");
                        interest += allocations.iter().map(|a| a.interest.minor_units()).sum::<i64>();
                    }
                    LoanEvent::LoanRepaidEarly { amount, principal, interest: accrued, recalculation, schedule, .. } => {
                        prop_assert_eq!(principal.minor_units() + accrued.minor_units(), amount.minor_units());
                        if recalculation.is_some() {
                            early_principal += principal.minor_units();
                        }
                        interest += accrued.minor_units();
                        if let Some(last) = schedule.last() {
                            prop_assert!(last.remaining.is_zero(), "a recalculated schedule ends at {}", last.remaining);
                        }
                    }
                    LoanEvent::LoanApproved { schedule, .. } => {
                        prop_assert!(schedule.last().is_some_and(|last| last.remaining.is_zero()));
                    }
                    _ => {}
                }
            }
            let loan = outcome.after;
            let Some(principal) = loan.principal().map(|p| p.minor_units()) else { continue };
            let outstanding = loan.outstanding_principal().unwrap().minor_units();
            prop_assert!((0..=principal).contains(&outstanding), "outstanding {} of {}", outstanding, principal);
            prop_assert_eq!(loan.interest_paid().minor_units(), interest);
            if !loan.instalments().is_empty() && loan.status() != Completed {
                let scheduled: i64 = loan.instalments().iter().map(|i| i.instalment.principal.minor_units()).sum();
                prop_assert_eq!(scheduled + early_principal, principal, "the schedule does not add up to the loan");
                let unpaid_principal: i64 = loan.instalments().iter().map(|i| i.instalment.principal.minor_units() - i.paid_principal.minor_units()).sum();
                prop_assert_eq!(unpaid_principal, outstanding);
            }
            if loan.status() == Completed {
                prop_assert_eq!(outstanding, 0);
                prop_assert!(loan.outstanding().is_zero());
            }
        }
    }
}

/// The generator reaches every event and every refusal, so the properties above compare them all.
#[test]
fn the_generated_commands_reach_every_event_and_refusal() {
    let seen = reached::<Loan, _, _>(LoanModel::default(), steps(), 512);
    assert_reached(
        &seen,
        &[
            "LoanApplied",
            "LoanApplicationUpdated",
            "LoanApplicationSubmitted",
            "LoanReviewStarted",
            "LoanApproved",
            "LoanRejected",
            "LoanDisbursed",
            "LoanRepaymentRecorded",
            "LoanRepaidEarly",
            "InstalmentsFellOverdue",
            "LoanDefaulted",
            "LoanCompleted",
            "NotApplied",
            "AlreadyApplied",
            "CreditScoreOutOfRange",
            "TermOutOfRange",
            "NonPositivePrice",
            "NegativeDownPayment",
            "DownPaymentNotBelowPrice",
            "NegativeIncome",
            "CurrencyMismatch",
            "FirstDueDateNotAfterDecision",
            "FirstDueDateTooLate",
            "DisbursementNotBeforeFirstDueDate",
            "DateBeforeDisbursement",
            "NonPositiveAmount",
            "EmptyReason",
            "RepaymentExceedsOutstanding",
            "InArrears",
            "InstalmentPartlyPaid",
            "EarlyRepaymentTooLarge",
            "EarlyRepaymentNotAboveAccruedInterest",
            "PayoffAmountMismatch",
            "InvalidTransition",
        ],
    );
}
