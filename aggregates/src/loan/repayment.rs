//! Repayments, early repayments and arrears of an active loan (the rules are in the docs of
//! [`crate::loan`]).

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::schedule::{self, Accrual, DayCount, Instalment, Rule, ScheduleKind};
use super::{
    Action, Allocation, DEFAULT_AFTER_DAYS_PAST_DUE, EarlyRepayment, Loan, LoanError, LoanEvent,
    LoanStatus, Recalculation, ScheduledInstalment, transition,
};
use crate::money::{Money, round_to_kopecks};

/// Interest accrued on `principal` from `period_start` to `on` in a period ending on `period_end`,
/// `on` clamped to the period: the interest part of an early repayment (see the docs of
/// [`crate::loan`]).
/// - [`DayCount::ActualDays`]: [`schedule::actual_day_interest`] over the elapsed days, 365 or 366
///   a year, rounded once to kopecks by [`KOPECK_ROUNDING`](crate::money::KOPECK_ROUNDING);
/// - [`DayCount::MonthlyTwelfth`] (legacy): `principal × annual rate / 12 × elapsed days / days in
///   period`, rounded the same way.
pub fn accrued_interest(
    day_count: DayCount,
    principal: Money,
    annual_rate_percent: Decimal,
    period_start: NaiveDate,
    period_end: NaiveDate,
    on: NaiveDate,
) -> Money {
    match day_count {
        DayCount::ActualDays => schedule::actual_day_interest(
            principal,
            annual_rate_percent,
            period_start,
            on.min(period_end),
        ),
        DayCount::MonthlyTwelfth => {
            let period_days = (period_end - period_start).num_days().max(1);
            let elapsed = (on - period_start).num_days().clamp(0, period_days);
            let exact = principal.amount() * annual_rate_percent * Decimal::from(elapsed)
                / (Decimal::from(1200) * Decimal::from(period_days));
            // At most one month's interest on a valid amount: always within range.
            Money::new(round_to_kopecks(exact), principal.currency())
                .unwrap_or_else(|_| Money::zero(principal.currency()))
        }
    }
}

/// Where the period in progress accrues from: the previous due date (or the disbursement), or,
/// for an actual-day loan, the last partial early repayment if later (interest up to it is paid).
pub fn period_in_progress_start(
    day_count: DayCount,
    previous_due_or_disbursed: NaiveDate,
    last_early_repayment_on: Option<NaiveDate>,
) -> NaiveDate {
    match (day_count, last_early_repayment_on) {
        (DayCount::ActualDays, Some(repaid_on)) => previous_due_or_disbursed.max(repaid_on),
        _ => previous_due_or_disbursed,
    }
}

impl Loan {
    /// What a full early repayment on `paid_on` costs: outstanding principal plus the interest
    /// accrued in the current period (see the module docs). `None` unless active.
    pub fn payoff(&self, paid_on: NaiveDate) -> Option<Money> {
        let principal = self.outstanding_principal()?;
        principal.checked_add(self.accrued_interest(paid_on)?).ok()
    }

    /// The start of the period in progress (the next unpaid instalment's).
    fn period_start(&self, next: &ScheduledInstalment) -> Option<NaiveDate> {
        let previous = self
            .instalments
            .iter()
            .find(|i| i.instalment.number + 1 == next.instalment.number)
            .map(|i| i.instalment.due_date)
            .or(self.disbursed_on)?;
        Some(period_in_progress_start(
            self.day_count?,
            previous,
            self.last_early_repayment_on,
        ))
    }

    /// The interest accrued on the outstanding principal from the start of the period in progress
    /// to `paid_on`. `None` unless active.
    fn accrued_interest(&self, paid_on: NaiveDate) -> Option<Money> {
        if self.status != LoanStatus::Active {
            return None;
        }
        let next = self.instalments.iter().find(|i| !i.is_paid())?;
        Some(accrued_interest(
            self.day_count?,
            self.outstanding_principal()?,
            self.annual_rate_percent?,
            self.period_start(next)?,
            next.instalment.due_date,
            paid_on,
        ))
    }

    /// Numbers of the instalments due before `date` and not fully paid.
    fn unpaid_before(&self, date: NaiveDate) -> Vec<u32> {
        self.instalments
            .iter()
            .filter(|i| !i.is_paid() && i.instalment.due_date < date)
            .map(|i| i.instalment.number)
            .collect()
    }

    /// Records a repayment: the oldest unpaid instalment first, interest before principal.
    pub(super) fn record_repayment(
        &self,
        amount: Money,
        paid_on: NaiveDate,
    ) -> Result<Vec<LoanEvent>, LoanError> {
        transition(self.status, Action::Repay)?;
        self.require_currency(amount)?;
        if !amount.is_positive() {
            return Err(LoanError::NonPositiveAmount);
        }
        self.require_after_disbursement(paid_on)?;
        let outstanding = self.outstanding();
        if amount.minor_units() > outstanding.minor_units() {
            return Err(LoanError::RepaymentExceedsOutstanding {
                amount,
                outstanding,
            });
        }
        let currency = amount.currency();
        let mut left = amount.minor_units();
        let mut allocations = Vec::new();
        for scheduled in self.instalments.iter().filter(|i| !i.is_paid()) {
            if left == 0 {
                break;
            }
            let interest = left.min(scheduled.interest_due());
            left -= interest;
            let principal = left.min(scheduled.principal_due());
            left -= principal;
            allocations.push(Allocation {
                instalment: scheduled.instalment.number,
                principal: Money::from_minor_units(principal, currency),
                interest: Money::from_minor_units(interest, currency),
            });
        }
        let mut events = vec![LoanEvent::LoanRepaymentRecorded {
            amount,
            paid_on,
            allocations,
        }];
        if amount == outstanding {
            events.push(LoanEvent::LoanCompleted {
                completed_on: paid_on,
            });
        }
        Ok(events)
    }

    /// A partial or full early repayment.
    pub(super) fn repay_early(
        &self,
        repayment: EarlyRepayment,
        paid_on: NaiveDate,
    ) -> Result<Vec<LoanEvent>, LoanError> {
        transition(self.status, Action::Repay)?;
        self.require_after_disbursement(paid_on)?;
        let offered = match &repayment {
            EarlyRepayment::Partial { amount, .. } | EarlyRepayment::Full { amount } => *amount,
        };
        self.require_currency(offered)?;
        if !offered.is_positive() {
            return Err(LoanError::NonPositiveAmount);
        }
        let overdue = self.unpaid_before(paid_on);
        if !overdue.is_empty() {
            return Err(LoanError::InArrears { overdue });
        }
        let next =
            self.instalments
                .iter()
                .find(|i| !i.is_paid())
                .ok_or(LoanError::InvalidTransition {
                    from: self.status,
                    action: Action::Repay.name(),
                })?;
        if !next.is_untouched() {
            return Err(LoanError::InstalmentPartlyPaid {
                number: next.instalment.number,
            });
        }
        let outstanding_principal = self.outstanding_principal().ok_or(LoanError::NotApplied)?;
        match repayment {
            EarlyRepayment::Full { amount } => {
                let expected = self.payoff(paid_on).ok_or(LoanError::NotApplied)?;
                if amount != expected {
                    return Err(LoanError::PayoffAmountMismatch {
                        expected,
                        offered: amount,
                    });
                }
                Ok(vec![
                    LoanEvent::LoanRepaidEarly {
                        paid_on,
                        amount,
                        principal: outstanding_principal,
                        interest: self
                            .accrued_interest(paid_on)
                            .ok_or(LoanError::NotApplied)?,
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
                // Actual-day loans: the amount pays the interest accrued to its date first (Civil
                // Code art. 809 p. 4), the rest reduces the principal, and the next period accrues from
                // `paid_on`. Legacy monthly loans: the whole amount is principal.
                let (day_count, from) = match self.day_count {
                    Some(DayCount::ActualDays) => {
                        let from = self.period_start(next).ok_or(LoanError::NotApplied)?;
                        (DayCount::ActualDays, from.max(paid_on))
                    }
                    _ => (
                        DayCount::MonthlyTwelfth,
                        self.period_start(next).ok_or(LoanError::NotApplied)?,
                    ),
                };
                let interest = match day_count {
                    DayCount::ActualDays => self
                        .accrued_interest(paid_on)
                        .ok_or(LoanError::NotApplied)?,
                    DayCount::MonthlyTwelfth => Money::zero(amount.currency()),
                };
                if amount.minor_units() <= interest.minor_units() {
                    return Err(LoanError::EarlyRepaymentNotAboveAccruedInterest {
                        amount,
                        accrued_interest: interest,
                    });
                }
                let principal = Money::from_minor_units(
                    amount.minor_units() - interest.minor_units(),
                    amount.currency(),
                );
                if principal.minor_units() >= outstanding_principal.minor_units() {
                    return Err(LoanError::EarlyRepaymentTooLarge {
                        amount,
                        outstanding_principal,
                    });
                }
                let (schedule, fixed_part) = self.recalculate(
                    outstanding_principal,
                    principal,
                    next,
                    recalculation,
                    Accrual { day_count, from },
                )?;
                Ok(vec![LoanEvent::LoanRepaidEarly {
                    paid_on,
                    amount,
                    principal,
                    interest,
                    recalculation: Some(recalculation),
                    fixed_part: Some(fixed_part),
                    schedule,
                }])
            }
        }
    }

    /// Marks instalments overdue as of `as_of`, and defaults the loan past the threshold.
    pub(super) fn assess_arrears(&self, as_of: NaiveDate) -> Result<Vec<LoanEvent>, LoanError> {
        transition(self.status, Action::AssessArrears)?;
        self.require_after_disbursement(as_of)?;
        let mut events = Vec::new();
        let newly_overdue: Vec<u32> = self
            .instalments
            .iter()
            .filter(|i| !i.is_paid() && !i.overdue && i.instalment.due_date < as_of)
            .map(|i| i.instalment.number)
            .collect();
        if !newly_overdue.is_empty() {
            events.push(LoanEvent::InstalmentsFellOverdue {
                as_of,
                instalments: newly_overdue,
            });
        }
        let overdue = self.unpaid_before(as_of);
        let oldest = self
            .instalments
            .iter()
            .find(|i| !i.is_paid() && i.instalment.due_date < as_of);
        if let Some(oldest) = oldest {
            let days_past_due = (as_of - oldest.instalment.due_date).num_days();
            if days_past_due > DEFAULT_AFTER_DAYS_PAST_DUE {
                events.push(LoanEvent::LoanDefaulted {
                    as_of,
                    overdue_instalments: overdue,
                    days_past_due,
                });
            }
        }
        Ok(events)
    }

    /// The schedule from `next` on after `amount` comes off `outstanding_principal`.
    fn recalculate(
        &self,
        outstanding_principal: Money,
        amount: Money,
        next: &ScheduledInstalment,
        recalculation: Recalculation,
        accrual: Accrual,
    ) -> Result<(Vec<Instalment>, Money), LoanError> {
        let (Some(rate), Some(kind), Some(first_due_date), Some(fixed_part)) = (
            self.annual_rate_percent,
            self.schedule_kind,
            self.first_due_date,
            self.fixed_part,
        ) else {
            return Err(LoanError::NotApplied);
        };
        let opening = outstanding_principal.checked_sub(amount).map_err(|_| {
            LoanError::EarlyRepaymentTooLarge {
                amount,
                outstanding_principal,
            }
        })?;
        let remaining = self
            .instalments
            .iter()
            .filter(|i| i.instalment.number >= next.instalment.number)
            .count() as u32;
        let (rule, count) = match recalculation {
            Recalculation::LowerPayment => {
                (Rule::for_kind(kind, opening, rate, remaining), remaining)
            }
            Recalculation::ShortenTerm => {
                let rule = match kind {
                    ScheduleKind::Annuity => Rule::Payment(fixed_part),
                    ScheduleKind::Differentiated => Rule::Principal(fixed_part),
                };
                (
                    rule,
                    schedule::count_to_pay_off(
                        opening,
                        rate,
                        rule,
                        next.instalment.number,
                        remaining,
                        first_due_date,
                        accrual,
                    ),
                )
            }
        };
        let schedule = schedule::generate(
            opening,
            rate,
            rule,
            next.instalment.number,
            count,
            first_due_date,
            accrual,
        );
        Ok((schedule, rule.amount()))
    }
}
