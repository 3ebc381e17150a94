//! Repayments, early repayments and arrears of an active loan (the rules are in the docs of
//! [`crate::loan`]).

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::schedule::{self, Instalment, Rule, ScheduleKind};
use super::{
    Action, Allocation, DEFAULT_AFTER_DAYS_PAST_DUE, EarlyRepayment, Loan, LoanError, LoanEvent,
    LoanStatus, Recalculation, ScheduledInstalment, transition,
};
use crate::money::{Money, round_to_kopecks};

/// Interest accrued on `principal` from `period_start` to `on` in a period ending on `period_end`:
/// `principal × annual rate / 12 × elapsed days / days in period`, the elapsed days clamped to the
/// period, rounded to kopecks by [`KOPECK_ROUNDING`](crate::money::KOPECK_ROUNDING). The interest
/// part of a full early repayment's payoff.
pub fn accrued_interest(
    principal: Money,
    annual_rate_percent: Decimal,
    period_start: NaiveDate,
    period_end: NaiveDate,
    on: NaiveDate,
) -> Money {
    let period_days = (period_end - period_start).num_days().max(1);
    let elapsed = (on - period_start).num_days().clamp(0, period_days);
    let exact = principal.amount() * annual_rate_percent * Decimal::from(elapsed)
        / (Decimal::from(1200) * Decimal::from(period_days));
    // At most one month's interest on a valid amount: always within range.
    Money::new(round_to_kopecks(exact), principal.currency())
        .unwrap_or_else(|_| Money::zero(principal.currency()))
}

impl Loan {
    /// What a full early repayment on `paid_on` costs: outstanding principal plus the interest
    /// accrued in the current period by actual days (see the module docs). `None` unless active.
    pub fn payoff(&self, paid_on: NaiveDate) -> Option<Money> {
        if self.status != LoanStatus::Active {
            return None;
        }
        let principal = self.outstanding_principal()?;
        let rate = self.annual_rate_percent?;
        let next = self.instalments.iter().find(|i| !i.is_paid())?;
        let period_start = self
            .instalments
            .iter()
            .find(|i| i.instalment.number + 1 == next.instalment.number)
            .map(|i| i.instalment.due_date)
            .or(self.disbursed_on)?;
        let accrued = accrued_interest(
            principal,
            rate,
            period_start,
            next.instalment.due_date,
            paid_on,
        );
        principal.checked_add(accrued).ok()
    }

    /// The interest part of [`Loan::payoff`].
    fn accrued_interest(&self, paid_on: NaiveDate) -> Option<Money> {
        let payoff = self.payoff(paid_on)?;
        payoff.checked_sub(self.outstanding_principal()?).ok()
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
                if amount.minor_units() >= outstanding_principal.minor_units() {
                    return Err(LoanError::EarlyRepaymentTooLarge {
                        amount,
                        outstanding_principal,
                    });
                }
                let (schedule, fixed_part) =
                    self.recalculate(outstanding_principal, amount, next, recalculation)?;
                Ok(vec![LoanEvent::LoanRepaidEarly {
                    paid_on,
                    amount,
                    principal: amount,
                    interest: Money::zero(amount.currency()),
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
                    schedule::count_to_pay_off(opening, rate, rule, remaining),
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
        );
        Ok((schedule, rule.amount()))
    }
}
