//! A scenario's plan as steps in time: each story's steps at virtual times (minutes after
//! midnight UTC of the first day), merged across stories.

use chrono::{Months, NaiveDate, TimeDelta};

use super::super::plan::*;
use super::{customer_story, first_day};

/// One step of one story.
/// One step of one story.
#[derive(Clone, Debug)]
pub(super) enum Action {
    Sale(SaleStep),
    Loan(LoanStep),
    Policy(PolicyStep),
    Workshop(WorkshopStep),
    Accounts(AccountStep),
}

/// Customers, cars, orders and the money paid towards them.
#[derive(Clone, Debug)]
pub(super) enum SaleStep {
    RegisterCustomer,
    ChangeContactDetails,
    StockVehicle,
    RepriceVehicle,
    RelocateVehicle,
    WithdrawVehicle,
    DraftOrder,
    ApplyDiscount(Discount),
    ConfirmOrder,
    CancelOrder,
    DraftRivalOrder,
    ConfirmRivalOrder,
    CancelRivalOrder,
    Overpay,
    HandOverTooEarly,
    /// Pays part `n` of the down payment (or the whole deposit of a cancelled order).
    Pay(PaymentPlan, usize),
    RefundDeposit,
    /// The part a refused loan would have financed, by bank transfer.
    PayWithoutLoan,
    RefundPart(RefundPlan),
    PayRefundedAgain,
    HandOver,
}

impl From<SaleStep> for Action {
    fn from(step: SaleStep) -> Self {
        Action::Sale(step)
    }
}

/// A loan, from application to its end.
#[derive(Clone, Debug)]
pub(super) enum LoanStep {
    ApplyForLoan(LoanPlan),
    ChangeLoanTerm(u32),
    SubmitLoan,
    ReviewLoan,
    DecideLoan(LoanPlan),
    RejectLoanByHand,
    DisburseLoan,
    RepayNextInstalment,
    RepayEarlyPartly { percent: u32, lower_payment: bool },
    PayOff,
    RepayEverything,
    AssessArrears,
}

impl From<LoanStep> for Action {
    fn from(step: LoanStep) -> Self {
        Action::Loan(step)
    }
}

/// The story's policy `p` (0 or 1), and its claims by number.
#[derive(Clone, Debug)]
pub(super) enum PolicyStep {
    RequestQuote(usize, InsurancePlan),
    SelectOffer(usize),
    PayWrongPremium(usize),
    PayPremium(usize),
    CancelPolicy(usize),
    ExpirePolicy(usize),
    FileClaim(usize, usize, ClaimPlan),
    ReviewClaim(usize, usize),
    ApproveClaim(usize, usize, u32),
    RejectClaim(usize, usize),
    PayClaim(usize, usize),
}

impl From<PolicyStep> for Action {
    fn from(step: PolicyStep) -> Self {
        Action::Policy(step)
    }
}

/// Bookings by number.
#[derive(Clone, Debug)]
pub(super) enum WorkshopStep {
    Book(usize, BookingPlan),
    DoubleBook(usize),
    Reschedule(usize, u32),
    StartBooking(usize),
    CompleteBooking(usize, i64),
    CancelBooking(usize),
    MarkNoShow(usize),
}

impl From<WorkshopStep> for Action {
    fn from(step: WorkshopStep) -> Self {
        Action::Workshop(step)
    }
}

/// The story's account and partner key.
#[derive(Clone, Debug)]
pub(super) enum AccountStep {
    CreateAccount(AccountPlan),
    GrantRole(usize),
    /// A staff role granted to a client's account: refused.
    GrantStaffRoleToClient(usize),
    RevokeFirstRole,
    ResetPassword,
    ChangeOwnPassword,
    LockOut,
    DisableAccount,
    IssuePartnerKey(usize),
    RevokePartnerKey,
}

impl From<AccountStep> for Action {
    fn from(step: AccountStep) -> Self {
        Action::Accounts(step)
    }
}

#[derive(Clone, Debug)]
pub(super) struct Step {
    /// Minutes after midnight UTC of the first day.
    pub(super) at: i64,
    pub(super) story: usize,
    pub(super) seq: usize,
    pub(super) action: Action,
    /// Only meaningful once time has passed (left out on the wall clock).
    pub(super) needs_time: bool,
}

const DAY: i64 = 1440;

fn day_of(date: NaiveDate) -> i64 {
    (date - first_day().date_naive()).num_days()
}

fn date_of(day: i64) -> NaiveDate {
    first_day().date_naive() + TimeDelta::days(day)
}

/// The steps being laid out.
struct Steps {
    steps: Vec<Step>,
    story: usize,
}

impl Steps {
    /// `action` of the current story on `day` at `minute` (past midnight UTC; may run over).
    fn push(&mut self, day: i64, minute: i64, action: impl Into<Action>, needs_time: bool) {
        let seq = self.steps.len();
        self.steps.push(Step {
            at: day * DAY + minute,
            story: self.story,
            seq,
            action: action.into(),
            needs_time,
        });
    }
}

/// The steps of every story, in the order they run.
pub(super) fn expand(scenario: &Scenario) -> Vec<Step> {
    let mut out = Steps {
        steps: Vec::new(),
        story: 0,
    };
    for (k, story) in scenario.stories.iter().enumerate() {
        out.story = k;
        let d0 = i64::from(story.start_day);
        // 06:00 UTC (09:00 in Moscow) plus the story's stagger, where the UTC and Moscow dates
        // agree for every same-day step; or from 20:30 UTC, where the later steps of a day fall on
        // the next Moscow day (the last is at most about an hour and a half later, before 24:00).
        let m0 = if story.late_evening {
            1230 + i64::from(story.stagger_minutes) / 3
        } else {
            360 + i64::from(story.stagger_minutes)
        };
        if customer_story(&scenario.stories, k) == k {
            out.push(d0, m0, SaleStep::RegisterCustomer, false);
        }
        out.push(d0, m0 + 1, SaleStep::StockVehicle, false);
        if story.changes_contact_details {
            out.push(d0, m0 + 2, SaleStep::ChangeContactDetails, false);
        }
        if story.vehicle.repriced_minor.is_some() {
            out.push(d0, m0 + 3, SaleStep::RepriceVehicle, false);
        }
        if story.vehicle.relocated {
            out.push(d0, m0 + 4, SaleStep::RelocateVehicle, false);
        }
        let mut withdrawn = false;
        match &story.fate {
            Fate::Unsold => {}
            Fate::Withdrawn => {
                withdrawn = true;
                out.push(d0, m0 + 5, SaleStep::WithdrawVehicle, false);
            }
            Fate::Cancelled(plan) => {
                out.push(d0, m0 + 10, SaleStep::DraftOrder, false);
                if let Some(discount) = &plan.discount {
                    out.push(
                        d0,
                        m0 + 11,
                        SaleStep::ApplyDiscount(discount.clone()),
                        false,
                    );
                }
                if plan.confirmed {
                    out.push(d0, m0 + 12, SaleStep::ConfirmOrder, false);
                }
                if let Some(deposit) = &plan.deposit {
                    out.push(d0, m0 + 13, SaleStep::Pay(deposit.clone(), 0), false);
                    out.push(d0, m0 + 20, SaleStep::RefundDeposit, false);
                }
                out.push(d0, m0 + 25, SaleStep::CancelOrder, false);
                if plan.then_withdrawn {
                    withdrawn = true;
                    out.push(d0, m0 + 26, SaleStep::WithdrawVehicle, false);
                }
            }
            Fate::Sold(plan) => {
                out.push(d0, m0 + 10, SaleStep::DraftOrder, false);
                for (n, discount) in plan.discounts.iter().enumerate() {
                    out.push(
                        d0,
                        m0 + 11 + n as i64,
                        SaleStep::ApplyDiscount(discount.clone()),
                        false,
                    );
                }
                if plan.rival_order {
                    out.push(d0, m0 + 15, SaleStep::DraftRivalOrder, false);
                }
                out.push(d0, m0 + 16, SaleStep::ConfirmOrder, false);
                if plan.rival_order {
                    out.push(d0, m0 + 17, SaleStep::ConfirmRivalOrder, false);
                    out.push(d0, m0 + 18, SaleStep::CancelRivalOrder, false);
                }
                if plan.refusals {
                    out.push(d0, m0 + 19, SaleStep::Overpay, false);
                    out.push(d0, m0 + 20, SaleStep::HandOverTooEarly, false);
                }
                let approved = plan
                    .loan
                    .as_ref()
                    .is_some_and(|l| matches!(l.decision, Decision::Approved));
                if let Some(loan) = &plan.loan {
                    out.push(d0, m0 + 21, LoanStep::ApplyForLoan(loan.clone()), false);
                    if let Some(term) = loan.changed_term_months {
                        out.push(d0, m0 + 22, LoanStep::ChangeLoanTerm(term), false);
                    }
                    out.push(d0, m0 + 23, LoanStep::SubmitLoan, false);
                    out.push(d0, m0 + 24, LoanStep::ReviewLoan, false);
                    match loan.decision {
                        Decision::RejectedByStaff => {
                            out.push(d0, m0 + 25, LoanStep::RejectLoanByHand, false)
                        }
                        _ => out.push(d0, m0 + 25, LoanStep::DecideLoan(loan.clone()), false),
                    }
                }
                for (n, payment) in plan.payments.iter().enumerate() {
                    out.push(
                        d0,
                        m0 + 30 + 4 * n as i64,
                        SaleStep::Pay(payment.clone(), n),
                        false,
                    );
                }
                if plan.loan.is_some() && !approved {
                    out.push(d0, m0 + 45, SaleStep::PayWithoutLoan, false);
                }
                if approved {
                    out.push(d0, m0 + 50, LoanStep::DisburseLoan, false);
                }
                let mut paid = true;
                if let Some(refund) = &plan.refund {
                    out.push(d0, m0 + 55, SaleStep::RefundPart(refund.clone()), false);
                    if refund.paid_again {
                        out.push(d0, m0 + 56, SaleStep::PayRefundedAgain, false);
                    } else {
                        paid = false;
                    }
                }
                if plan.handed_over && paid {
                    out.push(d0, m0 + 60, SaleStep::HandOver, false);
                }
                if let Some(loan) = plan.loan.as_ref().filter(|_| approved) {
                    // The decision names the first due date 30 days on; later ones fall monthly.
                    let first_due = date_of(d0) + TimeDelta::days(30);
                    let due =
                        |n: u32| day_of(first_due.checked_add_months(Months::new(n - 1)).unwrap());
                    let on_time = loan.on_time.min(loan.term_months);
                    for n in 1..=on_time {
                        out.push(due(n), m0, LoanStep::RepayNextInstalment, false);
                    }
                    // The current period begins at the last due date paid (or the disbursement,
                    // later on its day: so a day after it); steps in it keep clear of its end.
                    let (mut period_start, mut earliest) = if on_time == 0 {
                        (d0, 1)
                    } else {
                        (due(on_time), 0)
                    };
                    let mut next = on_time + 1;
                    let mut ending = Some(&loan.ending);
                    if on_time >= loan.term_months {
                        // Repaid on schedule to the end: completed.
                        ending = None;
                    } else if let Some(defaults) = loan.arrears {
                        let missed = due(on_time + 1);
                        out.push(missed + 5, m0 + 1, LoanStep::AssessArrears, true);
                        if defaults {
                            out.push(missed + 65, m0 + 1, LoanStep::AssessArrears, true);
                            // A defaulted loan takes no further command.
                            ending = None;
                        } else {
                            out.push(missed + 7, m0 + 1, LoanStep::RepayNextInstalment, true);
                            (period_start, earliest) = (missed, 8);
                            next += 1;
                        }
                    }
                    let at = |days: i64| period_start + days.max(earliest);
                    let next_due = due(next);
                    match ending.unwrap_or(&LoanEnding::Active) {
                        LoanEnding::Active => {}
                        LoanEnding::PartialEarly {
                            percent,
                            lower_payment,
                            then_next_instalment,
                        } => {
                            out.push(
                                at(5),
                                m0 + 2,
                                LoanStep::RepayEarlyPartly {
                                    percent: *percent,
                                    lower_payment: *lower_payment,
                                },
                                false,
                            );
                            if *then_next_instalment {
                                out.push(
                                    next_due.max(at(6)),
                                    m0 + 3,
                                    LoanStep::RepayNextInstalment,
                                    false,
                                );
                            }
                        }
                        LoanEnding::PaidOff { days_in } => {
                            out.push(at(i64::from(*days_in)), m0 + 2, LoanStep::PayOff, false);
                        }
                        LoanEnding::RepaidAtOnce => {
                            out.push(at(1), m0 + 2, LoanStep::RepayEverything, false);
                        }
                    }
                }
            }
        }
        for (p, plan) in story.insurance.iter().enumerate().filter(|_| !withdrawn) {
            let m0 = m0 + 4 * p as i64;
            let issue = d0 + 1;
            out.push(issue, m0, PolicyStep::RequestQuote(p, plan.clone()), false);
            out.push(issue, m0 + 1, PolicyStep::SelectOffer(p), false);
            if plan.wrong_premium_first {
                out.push(issue, m0 + 2, PolicyStep::PayWrongPremium(p), false);
            }
            if plan.premium_paid {
                out.push(issue, m0 + 3, PolicyStep::PayPremium(p), false);
            }
            let start = issue + i64::from(plan.start_delay_days);
            let end = day_of(date_of(start).checked_add_months(Months::new(12)).unwrap());
            match &plan.then {
                PolicyEnding::Kept => {}
                PolicyEnding::Cancelled { days_after_start } => {
                    let day = (start + i64::from(*days_after_start)).clamp(issue, end - 1);
                    out.push(day, m0 + 30, PolicyStep::CancelPolicy(p), day > issue);
                }
                PolicyEnding::Claims {
                    claims,
                    then_cancelled,
                    then_expired,
                } => {
                    let mut last = issue;
                    if plan.premium_paid {
                        for (n, claim) in claims.iter().enumerate() {
                            let incident = start + i64::from(claim.incident_day);
                            let filed = incident + 1;
                            // On the wall clock only an incident today can be filed.
                            let wait = plan.start_delay_days > 0 || claim.incident_day > 0;
                            let minute = m0 + 40 + 10 * n as i64;
                            out.push(
                                filed,
                                minute,
                                PolicyStep::FileClaim(p, n, claim.clone()),
                                wait,
                            );
                            last = filed;
                            match claim.outcome {
                                ClaimOutcome::LeftFiled => {}
                                ClaimOutcome::LeftUnderReview => {
                                    out.push(filed + 1, minute, PolicyStep::ReviewClaim(p, n), wait)
                                }
                                ClaimOutcome::Rejected => {
                                    out.push(
                                        filed + 1,
                                        minute,
                                        PolicyStep::ReviewClaim(p, n),
                                        wait,
                                    );
                                    out.push(
                                        filed + 2,
                                        minute,
                                        PolicyStep::RejectClaim(p, n),
                                        wait,
                                    );
                                    last = filed + 2;
                                }
                                ClaimOutcome::Approved { percent, paid } => {
                                    out.push(
                                        filed + 1,
                                        minute,
                                        PolicyStep::ReviewClaim(p, n),
                                        wait,
                                    );
                                    out.push(
                                        filed + 2,
                                        minute,
                                        PolicyStep::ApproveClaim(p, n, percent),
                                        wait,
                                    );
                                    last = filed + 2;
                                    if paid {
                                        out.push(
                                            filed + 3,
                                            minute,
                                            PolicyStep::PayClaim(p, n),
                                            wait,
                                        );
                                        last = filed + 3;
                                    }
                                }
                            }
                        }
                    }
                    if *then_cancelled {
                        let day = (last + 1).min(end - 1);
                        out.push(day, m0 + 35, PolicyStep::CancelPolicy(p), day > issue);
                    }
                    if *then_expired {
                        out.push(
                            end.max(last + 1),
                            m0 + 30,
                            PolicyStep::ExpirePolicy(p),
                            true,
                        );
                    }
                }
                PolicyEnding::Expired => out.push(end, m0 + 30, PolicyStep::ExpirePolicy(p), true),
            }
        }
        for (n, plan) in story.bookings.iter().enumerate() {
            let booked = d0 + 2 + i64::from(plan.booked_day);
            let minute = m0 + 50 + 5 * n as i64;
            out.push(booked, minute, WorkshopStep::Book(n, plan.clone()), false);
            if plan.double_booked {
                out.push(booked, minute + 1, WorkshopStep::DoubleBook(n), false);
            }
            let mut slot_day = booked + i64::from(plan.slot_in_days);
            if let Some(by) = plan.rescheduled_by_days {
                out.push(booked, minute + 2, WorkshopStep::Reschedule(n, by), false);
                slot_day += i64::from(by);
            }
            let start = slot_day * DAY + 300 + 30 * i64::from(plan.slot_start_half_hours);
            let end = start + 30 * i64::from(plan.slot_half_hours);
            let at = |minute: i64| (minute.div_euclid(DAY), minute.rem_euclid(DAY));
            match plan.outcome {
                BookingOutcome::Scheduled => {}
                BookingOutcome::Started => {
                    let (d, m) = at(start - 30);
                    out.push(d, m, WorkshopStep::StartBooking(n), false);
                }
                BookingOutcome::Completed { cost_minor } => {
                    let (d, m) = at(start - 30);
                    out.push(d, m, WorkshopStep::StartBooking(n), false);
                    let (d, m) = at(end);
                    out.push(d, m, WorkshopStep::CompleteBooking(n, cost_minor), false);
                }
                BookingOutcome::Cancelled => {
                    out.push(booked, minute + 3, WorkshopStep::CancelBooking(n), false)
                }
                BookingOutcome::NoShow => {
                    let (d, m) = at(start + 30);
                    out.push(d, m, WorkshopStep::MarkNoShow(n), true);
                }
            }
        }
        // The next day, after the customer (if it is their account) registered the day before.
        if let Some(plan) = &story.account {
            let (d, m) = (d0 + 1, m0 + 60);
            out.push(d, m, AccountStep::CreateAccount(plan.clone()), false);
            let client = plan.client && customer_story(&scenario.stories, k) == k;
            match plan.granted {
                Some(role) if client => {
                    out.push(d, m + 1, AccountStep::GrantStaffRoleToClient(role), false)
                }
                Some(role) => out.push(d, m + 1, AccountStep::GrantRole(role), false),
                None => {}
            }
            if plan.revoked && !client {
                out.push(d, m + 2, AccountStep::RevokeFirstRole, false);
            }
            if plan.password_reset {
                out.push(d, m + 3, AccountStep::ResetPassword, false);
            }
            if plan.password_changed {
                out.push(d, m + 4, AccountStep::ChangeOwnPassword, false);
            }
            if plan.locked_out {
                out.push(d, m + 5, AccountStep::LockOut, false);
            }
            if plan.disabled {
                out.push(d, m + 6, AccountStep::DisableAccount, false);
            }
        }
        if let Some(key) = &story.partner_key {
            out.push(
                d0 + 1,
                m0 + 70,
                AccountStep::IssuePartnerKey(key.insurer),
                false,
            );
            if key.revoked {
                out.push(d0 + 2, m0 + 70, AccountStep::RevokePartnerKey, false);
            }
        }
    }
    let mut steps = out.steps;
    steps.sort_by_key(|s| (s.at, s.story, s.seq));
    steps
}
