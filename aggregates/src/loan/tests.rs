use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::DomainEvent;
use cqrs_es::test::{AggregateTestExecutor, TestFramework};
use proptest::prelude::*;
use rust_decimal::Decimal;
use uuid::Uuid;

use super::credit::{CreditFinding, CreditRule};
use super::schedule::{self, Instalment, ScheduleKind};
use super::*;
use crate::money::{Currency, Money};
use crate::test_support::execute;

mod model;

fn d(literal: &str) -> Decimal {
    literal.parse().unwrap()
}

fn rub(amount: &str) -> Money {
    Money::new(d(amount), Currency::RUB).unwrap()
}

fn at(instant: &str) -> DateTime<Utc> {
    instant.parse().unwrap()
}

fn day(date: &str) -> NaiveDate {
    date.parse().unwrap()
}

fn order() -> Uuid {
    Uuid::from_u128(0xd1)
}

fn customer() -> Uuid {
    Uuid::from_u128(0xc1)
}

/// The usual application: 1 500 000 car, 15% down, five years, employed on 150 000 a month, score 700.
fn application() -> Application {
    Application {
        down_payment: rub("225000"),
        loan_type: LoanType::CarLoan,
        term_months: 60,
        employment: EmploymentStatus::Employed,
        monthly_income: rub("150000"),
        credit_score: 700,
    }
}

fn details() -> LoanDetails {
    LoanDetails::new(rub("1500000"), application()).unwrap()
}

fn apply(application: Application) -> LoanCommand {
    LoanCommand::Apply {
        order_id: order(),
        customer_id: customer(),
        vehicle_price: rub("1500000"),
        application,
        applied_at: at("2026-11-20T10:00:00Z"),
    }
}

fn applied(details: LoanDetails) -> LoanEvent {
    LoanEvent::LoanApplied {
        order_id: order(),
        customer_id: customer(),
        details,
        applied_at: at("2026-11-20T10:00:00Z"),
    }
}

fn submitted() -> LoanEvent {
    LoanEvent::LoanApplicationSubmitted {
        submitted_at: at("2026-11-20T11:00:00Z"),
    }
}

fn review_started() -> LoanEvent {
    LoanEvent::LoanReviewStarted {
        started_at: at("2026-11-21T09:00:00Z"),
    }
}

fn decide(kind: ScheduleKind) -> LoanCommand {
    LoanCommand::Decide {
        schedule_kind: kind,
        first_due_date: day("2026-12-31"),
        decided_at: at("2026-11-22T10:00:00Z"),
        decided_on: day("2026-11-22"),
    }
}

fn actual_days_from(from: &str) -> Accrual {
    Accrual {
        day_count: DayCount::ActualDays,
        from: day(from),
    }
}

/// The offer: the first period from the decision on 22 November.
fn the_schedule(kind: ScheduleKind) -> Vec<Instalment> {
    schedule::build(
        kind,
        rub("1275000"),
        d("22.9"),
        60,
        day("2026-12-31"),
        actual_days_from("2026-11-22"),
    )
}

/// The schedule re-issued when the money is lent on 30 November.
fn the_issued_schedule() -> Vec<Instalment> {
    schedule::build(
        ScheduleKind::Annuity,
        rub("1275000"),
        d("22.9"),
        60,
        day("2026-12-31"),
        actual_days_from("2026-11-30"),
    )
}

fn approved_as(kind: ScheduleKind) -> LoanEvent {
    let fixed_part = match kind {
        ScheduleKind::Annuity => rub("35869.63"),
        ScheduleKind::Differentiated => rub("21250.00"),
    };
    LoanEvent::LoanApproved {
        annual_rate_percent: d("22.9"),
        schedule_kind: kind,
        first_due_date: day("2026-12-31"),
        fixed_part,
        schedule: the_schedule(kind),
        checks: credit_checks(kind),
        decided_at: at("2026-11-22T10:00:00Z"),
        day_count: DayCount::ActualDays,
        accrues_from: day("2026-11-22"),
    }
}

fn credit_checks(kind: ScheduleKind) -> Vec<CreditFinding> {
    match credit::decide(&details(), kind) {
        credit::CreditDecision::Approved { checks, .. } => checks,
        refused => panic!("the usual application is approved: {refused:?}"),
    }
}

fn disbursed() -> LoanEvent {
    LoanEvent::LoanDisbursed {
        disbursed_on: day("2026-11-30"),
        principal: rub("1275000"),
        schedule: the_issued_schedule(),
    }
}

fn a_draft() -> Vec<LoanEvent> {
    vec![applied(details())]
}

fn under_review() -> Vec<LoanEvent> {
    vec![applied(details()), submitted(), review_started()]
}

fn approved() -> Vec<LoanEvent> {
    let mut events = under_review();
    events.push(approved_as(ScheduleKind::Annuity));
    events
}

fn active() -> Vec<LoanEvent> {
    let mut events = approved();
    events.push(disbursed());
    events
}

fn with(mut events: Vec<LoanEvent>, tail: &[LoanEvent]) -> Vec<LoanEvent> {
    events.extend(tail.iter().cloned());
    events
}

fn given(events: Vec<LoanEvent>) -> AggregateTestExecutor<Loan> {
    TestFramework::<Loan>::with(()).given(events)
}

fn replay(events: &[LoanEvent]) -> Loan {
    let mut loan = Loan::default();
    for event in events {
        loan.apply(event.clone());
    }
    loan
}

fn invalid(from: LoanStatus, action: &'static str) -> LoanError {
    LoanError::InvalidTransition { from, action }
}

fn repay(amount: &str, paid_on: &str) -> LoanCommand {
    LoanCommand::RecordRepayment {
        amount: rub(amount),
        paid_on: day(paid_on),
    }
}

fn repaid(amount: &str, paid_on: &str, allocations: &[(u32, &str, &str)]) -> LoanEvent {
    LoanEvent::LoanRepaymentRecorded {
        amount: rub(amount),
        paid_on: day(paid_on),
        allocations: allocations
            .iter()
            .map(|&(instalment, principal, interest)| Allocation {
                instalment,
                principal: rub(principal),
                interest: rub(interest),
            })
            .collect(),
    }
}

/// The first instalment of the usual annuity as issued on 30 November: 31 days' interest,
/// 24 797.88, plus a regular month's principal part, 11 538.38 (see the actual-day examples).
fn first_instalment_paid() -> LoanEvent {
    repaid("36336.26", "2026-12-30", &[(1, "11538.38", "24797.88")])
}

// --- Worked examples -------------------------------------------------------------------------

/// The legacy day count, "monthly, 1/12", of loans approved under `LoanApproved` 1.0 (the dates
/// do not enter it).
const LEGACY_MONTHLY: Accrual = Accrual {
    day_count: DayCount::MonthlyTwelfth,
    from: NaiveDate::MIN,
};

/// Legacy ("monthly, 1/12") annuity examples computed independently of this code, with Python's
/// `decimal` module at 50 significant digits: `A = P·r/(1 − (1+r)^−n)` with `r = rate/1200`, rounded half up to kopecks;
/// each month's interest `= balance × rate / 1200` rounded half up; principal `= A − interest`; the
/// last instalment pays the rest. Columns: principal, months, annual %, payment, first interest,
/// first principal, total interest, last total.
/// (principal, months, annual %, payment, first interest, first principal, total interest, last total)
type WorkedAnnuity = (
    &'static str,
    u32,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

const WORKED_ANNUITIES: &[WorkedAnnuity] = &[
    // P = 1 000 000.00, 12 months, 12% → payment 88 848.79 (the textbook example)
    (
        "1000000.00",
        12,
        "12",
        "88848.79",
        "10000.00",
        "78848.79",
        "66185.45",
        "88848.76",
    ),
    (
        "1275000.00",
        60,
        "22.9",
        "35869.63",
        "24331.25",
        "11538.38",
        "877178.36",
        "35870.19",
    ),
    (
        "2000000.00",
        36,
        "18.9",
        "73210.96",
        "31500.00",
        "41710.96",
        "635594.54",
        "73210.94",
    ),
    (
        "500000.00",
        84,
        "27.9",
        "13597.37",
        "11625.00",
        "1972.37",
        "642177.94",
        "13596.23",
    ),
    (
        "1211250.00",
        36,
        "14.9",
        "41929.09",
        "15039.69",
        "26889.40",
        "298197.14",
        "41928.99",
    ),
];

// Actual-day examples: every figure below is printed by `tests/actual_days_oracle.py` (exact
// rational arithmetic, one rounding to kopecks half up per amount, written from the docs of
// `schedule`, not from this code). 8 497 359.60 at 18.9% is the loan of the finance desk's audit.

#[test]
fn actual_day_interest_counts_the_period_s_days_over_the_year_s_length() {
    let (p, r) = (rub("8497359.60"), d("18.9"));
    let interest = |from: &str, to: &str| schedule::actual_day_interest(p, r, day(from), day(to));
    // 10 days in 2026: × 10/365 (the legacy rule charged a month's, 133 833.41).
    assert_eq!(interest("2026-11-22", "2026-12-02"), rub("44000.03"));
    // 62 days across a year end, both years common: 30/365 + 32/365.
    assert_eq!(interest("2026-12-01", "2027-02-01"), rub("272800.16"));
    // Into a leap year: 16/365 of 2027 + 15/366 of 2028.
    assert_eq!(interest("2027-12-15", "2028-01-15"), rub("136219.75"));
    // All of February 2028: 29/366.
    assert_eq!(interest("2028-01-31", "2028-02-29"), rub("127251.44"));
    // No days, no interest.
    assert_eq!(interest("2027-01-10", "2027-01-10"), rub("0"));
}

/// (lent on, first due, months, payment, first principal, first interest, first total,
/// second interest, total interest, last due, last total), for 8 497 359.60 at 18.9% unless the
/// principal and rate are given.
type WorkedActualDays = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    u32,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

const WORKED_ACTUAL_DAYS: &[WorkedActualDays] = &[
    // A first period of 10 days: the first instalment is below the payment.
    (
        "8497359.60",
        "18.9",
        "2026-11-22",
        "2026-12-02",
        60,
        "219958.90",
        "86125.49",
        "44000.03",
        "130125.52",
        "135017.59",
        "4608966.90",
        "2031-11-02",
        "218584.78",
    ),
    // A first period of 62 days across a year end: above it.
    (
        "8497359.60",
        "18.9",
        "2026-12-01",
        "2027-02-01",
        60,
        "219958.90",
        "86125.49",
        "272800.16",
        "358925.65",
        "121951.37",
        "4824721.24",
        "2032-01-01",
        "205538.99",
    ),
    // Across into the leap year 2028.
    (
        "1275000.00",
        "22.9",
        "2027-12-15",
        "2028-01-15",
        36,
        "49288.47",
        "24957.22",
        "24765.09",
        "49722.31",
        "24246.05",
        "498865.60",
        "2030-12-15",
        "48335.31",
    ),
];

#[test]
fn actual_day_schedules_match_independently_computed_examples() {
    for &(
        principal,
        rate,
        lent_on,
        first_due,
        months,
        payment,
        first_principal,
        first_interest,
        first_total,
        second_interest,
        total_interest,
        last_due,
        last_total,
    ) in WORKED_ACTUAL_DAYS
    {
        let rows = schedule::build(
            ScheduleKind::Annuity,
            rub(principal),
            d(rate),
            months,
            day(first_due),
            actual_days_from(lent_on),
        );
        let case = format!("{principal} at {rate}% lent on {lent_on}");
        assert_eq!(
            schedule::annuity_payment(rub(principal), d(rate), months),
            rub(payment),
            "{case}"
        );
        assert_eq!(rows.len(), months as usize, "{case}");
        assert_eq!(
            (rows[0].principal, rows[0].interest, rows[0].total),
            (rub(first_principal), rub(first_interest), rub(first_total)),
            "{case}"
        );
        assert_eq!(rows[1].interest, rub(second_interest), "{case}");
        assert!(
            rows[1..rows.len() - 1]
                .iter()
                .all(|r| r.total == rub(payment)),
            "{case}"
        );
        let interest_sum: i64 = rows.iter().map(|r| r.interest.minor_units()).sum();
        assert_eq!(
            Money::from_minor_units(interest_sum, Currency::RUB),
            rub(total_interest),
            "{case}"
        );
        let last = rows.last().unwrap();
        assert_eq!(
            (last.due_date, last.total, last.remaining),
            (day(last_due), rub(last_total), rub("0")),
            "{case}"
        );
    }
}

#[test]
fn money_lent_after_the_decision_re_issues_the_schedule_from_the_disbursement() {
    // The offer counted 39 days from 22 November; lent on 30 November, the first period is 31 days:
    // 24 797.88 interest instead of 31 197.33, the same payment and due dates (oracle).
    let events = execute(
        &mut replay(&approved()),
        LoanCommand::Disburse {
            disbursed_on: day("2026-11-30"),
        },
        &(),
    )
    .unwrap();
    assert_eq!(events, vec![disbursed()]);
    let issued = the_issued_schedule();
    assert_eq!(
        (issued[0].principal, issued[0].interest, issued[0].total),
        (rub("11538.38"), rub("24797.88"), rub("36336.26"))
    );
    assert_eq!(issued.last().unwrap().total, rub("34146.08"));
    let loan = replay(&active());
    assert_eq!(loan.instalments()[0].instalment, issued[0]);
    // Lent the day of the decision: the offer stands, nothing is re-issued.
    let same_day = execute(
        &mut replay(&approved()),
        LoanCommand::Disburse {
            disbursed_on: day("2026-11-22"),
        },
        &(),
    )
    .unwrap();
    assert!(matches!(
        same_day.as_slice(),
        [LoanEvent::LoanDisbursed { schedule, .. }] if schedule.is_empty()
    ));
}

#[test]
fn a_mid_period_partial_prepayment_charges_the_interest_accrued_to_its_date() {
    // 500 000.00 on 19 January, day 19 of the period 31 December → 31 January, on 1 263 461.62:
    // it pays the 15 061.15 accrued to that day first, exactly what a full payoff that day charges
    // (the legacy rule forgave 5 848.12 of it, the interest on the prepaid amount); 484 938.85 come
    // off the principal, and the next instalment accrues from 19 January (oracle).
    let history = with(active(), &[first_instalment_paid()]);
    let loan = replay(&history);
    assert_eq!(loan.payoff(day("2027-01-19")), Some(rub("1278522.77")));
    let events = execute(
        &mut loan.clone(),
        early("500000", Recalculation::ShortenTerm, "2027-01-19"),
        &(),
    )
    .unwrap();
    let [
        LoanEvent::LoanRepaidEarly {
            principal,
            interest,
            schedule,
            ..
        },
    ] = events.as_slice()
    else {
        panic!("expected one early repayment, got {events:?}");
    };
    assert_eq!((*principal, *interest), (rub("484938.85"), rub("15061.15")));
    assert_eq!(schedule.len(), 29);
    assert_eq!(
        (
            schedule[0].principal,
            schedule[0].interest,
            schedule[0].total
        ),
        (rub("21012.82"), rub("5861.32"), rub("26874.14"))
    );
    let last = schedule.last().unwrap();
    assert_eq!(
        (last.due_date, last.total),
        (day("2029-05-31"), rub("9377.15"))
    );
    let after = replay(&with(history, &events));
    assert_eq!(after.outstanding_principal(), Some(rub("778522.77")));
    // Interest is settled to 19 January: a payoff that day adds nothing, one on 29 January
    // adds 10 days on the reduced balance.
    assert_eq!(after.payoff(day("2027-01-19")), Some(rub("778522.77")));
    let ten_days = schedule::actual_day_interest(
        rub("778522.77"),
        d("22.9"),
        day("2027-01-19"),
        day("2027-01-29"),
    );
    assert_eq!(
        after.payoff(day("2027-01-29")),
        rub("778522.77").checked_add(ten_days).ok()
    );
}

#[test]
fn a_loan_approved_under_the_monthly_rule_keeps_it() {
    // A `LoanApproved` 1.0 payload as stored before actual-day interest, upcast on load.
    let mut stored = serde_json::to_value(approved_as(ScheduleKind::Annuity)).unwrap();
    let body = stored["LoanApproved"].as_object_mut().unwrap();
    body.remove("day_count");
    body.remove("accrues_from");
    body.insert(
        "schedule".into(),
        serde_json::to_value(schedule::build(
            ScheduleKind::Annuity,
            rub("1275000"),
            d("22.9"),
            60,
            day("2026-12-31"),
            LEGACY_MONTHLY,
        ))
        .unwrap(),
    );
    let upcast = upcast("LoanApproved", stored);
    let LoanEvent::LoanApproved {
        day_count,
        accrues_from,
        ..
    } = &upcast
    else {
        panic!("{upcast:?}");
    };
    assert_eq!(
        (*day_count, *accrues_from),
        (DayCount::MonthlyTwelfth, day("2026-11-22"))
    );
    let mut disbursed = serde_json::to_value(disbursed()).unwrap();
    disbursed["LoanDisbursed"]
        .as_object_mut()
        .unwrap()
        .remove("schedule");
    let disbursed = upcast_as("LoanDisbursed", disbursed);
    let history = with(under_review(), &[upcast, disbursed]);
    let loan = replay(&history);
    // The stored schedule stands (a month's interest, 24 331.25), and so does the 1/12 payoff.
    assert_eq!(loan.instalments()[0].instalment.interest, rub("24331.25"));
    assert_eq!(loan.payoff(day("2026-12-10")), Some(rub("1282848.79")));
    // A partial repayment on a legacy loan still goes wholly to principal.
    let events = execute(
        &mut loan.clone(),
        early("300000", Recalculation::ShortenTerm, "2026-12-10"),
        &(),
    )
    .unwrap();
    assert!(matches!(
        events.as_slice(),
        [LoanEvent::LoanRepaidEarly { principal, interest, .. }]
            if *principal == rub("300000") && interest.is_zero()
    ));
}

fn upcast_as(event_type: &str, payload: serde_json::Value) -> LoanEvent {
    upcast(event_type, payload)
}

/// `payload` stored at version 1.0, through the registered upcasters.
fn upcast(event_type: &str, payload: serde_json::Value) -> LoanEvent {
    let mut event = cqrs_es::persist::SerializedEvent {
        aggregate_id: "loan".into(),
        sequence: 1,
        aggregate_type: "Loan".into(),
        event_type: event_type.into(),
        event_version: "1.0".into(),
        payload,
        metadata: serde_json::json!({}),
    };
    for upcaster in crate::upcasters() {
        if upcaster.can_upcast(&event.event_type, &event.event_version) {
            event = upcaster.upcast(event);
        }
    }
    serde_json::from_value(event.payload).unwrap()
}

#[test]
fn legacy_monthly_annuity_schedules_match_independently_computed_examples() {
    for &(principal, months, rate, payment, interest, first_principal, total_interest, last) in
        WORKED_ANNUITIES
    {
        let principal = rub(principal);
        assert_eq!(
            schedule::annuity_payment(principal, d(rate), months),
            rub(payment),
            "{principal} {months} {rate}"
        );
        let rows = schedule::build(
            ScheduleKind::Annuity,
            principal,
            d(rate),
            months,
            day("2027-01-15"),
            LEGACY_MONTHLY,
        );
        assert_eq!(rows.len(), months as usize);
        assert_eq!(rows[0].interest, rub(interest));
        assert_eq!(rows[0].principal, rub(first_principal));
        let interest_sum: i64 = rows.iter().map(|r| r.interest.minor_units()).sum();
        assert_eq!(
            Money::from_minor_units(interest_sum, Currency::RUB),
            rub(total_interest)
        );
        assert_eq!(rows.last().unwrap().total, rub(last));
    }
}

#[test]
fn a_legacy_differentiated_schedule_has_equal_principal_parts_and_falling_totals() {
    // P = 120 000.00 over 12 months at 12%: 10 000.00 principal a month; interest 1 200.00 on the
    // full balance, then 100.00 less each month (1% of 10 000.00), by hand.
    let rows = schedule::build(
        ScheduleKind::Differentiated,
        rub("120000"),
        d("12"),
        12,
        day("2027-01-15"),
        LEGACY_MONTHLY,
    );
    assert_eq!(rows[0].total, rub("11200.00"));
    assert_eq!(rows[1].total, rub("11100.00"));
    assert_eq!(rows[11].total, rub("10100.00"));
    assert!(rows.iter().all(|r| r.principal == rub("10000.00")));
}

#[test]
fn an_interest_free_instalment_plan_divides_the_price_evenly_and_the_last_takes_the_rest() {
    let rows = schedule::build(
        ScheduleKind::Annuity,
        rub("100000"),
        d("0"),
        3,
        day("2027-01-15"),
        actual_days_from("2026-12-15"),
    );
    let totals: Vec<Money> = rows.iter().map(|r| r.total).collect();
    assert_eq!(
        totals,
        vec![rub("33333.33"), rub("33333.33"), rub("33333.34")]
    );
    assert!(rows.iter().all(|r| r.interest.is_zero()));
}

#[test]
fn due_dates_keep_the_day_of_month_and_clamp_to_shorter_months() {
    let first = day("2027-01-31");
    let dates: Vec<NaiveDate> = (1..=5).map(|n| schedule::due_date(first, n)).collect();
    assert_eq!(
        dates,
        vec![
            day("2027-01-31"),
            day("2027-02-28"),
            day("2027-03-31"),
            day("2027-04-30"),
            day("2027-05-31")
        ]
    );
    assert_eq!(schedule::due_date(day("2028-01-31"), 2), day("2028-02-29"));
}

// --- Apply -----------------------------------------------------------------------------------

#[test]
fn applying_records_the_order_the_customer_and_the_loan_amount() {
    given(vec![])
        .when(apply(application()))
        .then_expect_events(a_draft());
    assert_eq!(details().loan_amount, rub("1275000"));
}

#[test]
fn applying_twice_under_one_id_is_refused() {
    given(a_draft())
        .when(apply(application()))
        .then_expect_error(LoanError::AlreadyApplied);
}

#[test]
fn a_credit_score_outside_300_to_850_is_refused() {
    for score in [0, 200, 299, 851] {
        given(vec![])
            .when(apply(Application {
                credit_score: score,
                ..application()
            }))
            .then_expect_error(LoanError::CreditScoreOutOfRange { score });
    }
}

#[test]
fn a_term_outside_the_limits_of_its_type_is_refused() {
    for (loan_type, term_months, min, max) in [
        (LoanType::CarLoan, 500, 12, 84),
        (LoanType::CarLoan, 6, 12, 84),
        (LoanType::Leasing, 72, 12, 60),
        (LoanType::Instalment, 36, 3, 24),
    ] {
        given(vec![])
            .when(apply(Application {
                loan_type,
                term_months,
                ..application()
            }))
            .then_expect_error(LoanError::TermOutOfRange {
                loan_type,
                term_months,
                min,
                max,
            });
    }
}

#[test]
fn a_negative_income_is_refused() {
    given(vec![])
        .when(apply(Application {
            monthly_income: rub("-1"),
            ..application()
        }))
        .then_expect_error(LoanError::NegativeIncome);
}

#[test]
fn a_down_payment_of_the_whole_price_or_more_is_refused() {
    for down in ["1500000", "1600000"] {
        given(vec![])
            .when(apply(Application {
                down_payment: rub(down),
                ..application()
            }))
            .then_expect_error(LoanError::DownPaymentNotBelowPrice {
                down_payment: rub(down),
                price: rub("1500000"),
            });
    }
}

#[test]
fn a_negative_down_payment_is_refused() {
    given(vec![])
        .when(apply(Application {
            down_payment: rub("-1"),
            ..application()
        }))
        .then_expect_error(LoanError::NegativeDownPayment);
}

#[test]
fn an_order_with_nothing_to_pay_cannot_be_financed() {
    given(vec![])
        .when(LoanCommand::Apply {
            order_id: order(),
            customer_id: customer(),
            vehicle_price: rub("0"),
            application: application(),
            applied_at: at("2026-11-20T10:00:00Z"),
        })
        .then_expect_error(LoanError::NonPositivePrice);
}

#[test]
fn amounts_in_another_currency_than_the_price_are_refused() {
    given(vec![])
        .when(apply(Application {
            monthly_income: Money::from_minor_units(100, Currency::USD),
            ..application()
        }))
        .then_expect_error(LoanError::CurrencyMismatch {
            expected: Currency::RUB,
            found: Currency::USD,
        });
}

// --- Update ----------------------------------------------------------------------------------

#[test]
fn changing_a_draft_records_the_full_new_details() {
    let changed = LoanDetails::new(
        rub("1500000"),
        Application {
            down_payment: rub("300000"),
            term_months: 48,
            ..application()
        },
    )
    .unwrap();
    given(a_draft())
        .when(LoanCommand::UpdateApplication {
            changes: ApplicationChanges {
                down_payment: Some(rub("300000")),
                term_months: Some(48),
                ..ApplicationChanges::default()
            },
        })
        .then_expect_events(vec![LoanEvent::LoanApplicationUpdated { details: changed }]);
}

#[test]
fn changing_nothing_emits_nothing() {
    given(a_draft())
        .when(LoanCommand::UpdateApplication {
            changes: ApplicationChanges {
                credit_score: Some(700),
                ..ApplicationChanges::default()
            },
        })
        .then_expect_events(vec![]);
}

#[test]
fn changes_are_validated_like_an_application() {
    given(a_draft())
        .when(LoanCommand::UpdateApplication {
            changes: ApplicationChanges {
                term_months: Some(500),
                ..ApplicationChanges::default()
            },
        })
        .then_expect_error(LoanError::TermOutOfRange {
            loan_type: LoanType::CarLoan,
            term_months: 500,
            min: 12,
            max: 84,
        });
}

#[test]
fn a_submitted_application_can_no_longer_be_changed() {
    given(with(a_draft(), &[submitted()]))
        .when(LoanCommand::UpdateApplication {
            changes: ApplicationChanges::default(),
        })
        .then_expect_error(invalid(LoanStatus::Submitted, "change the application"));
}

#[test]
fn changing_an_unknown_loan_is_refused() {
    given(vec![])
        .when(LoanCommand::UpdateApplication {
            changes: ApplicationChanges::default(),
        })
        .then_expect_error(LoanError::NotApplied);
}

// --- Submit and review -----------------------------------------------------------------------

#[test]
fn submitting_a_draft_sends_it_for_review() {
    given(a_draft())
        .when(LoanCommand::Submit {
            submitted_at: at("2026-11-20T11:00:00Z"),
        })
        .then_expect_events(vec![submitted()]);
}

#[test]
fn submitting_twice_is_refused() {
    given(with(a_draft(), &[submitted()]))
        .when(LoanCommand::Submit {
            submitted_at: at("2026-11-20T11:00:00Z"),
        })
        .then_expect_error(invalid(LoanStatus::Submitted, "submit"));
}

#[test]
fn starting_the_review_of_a_submitted_application() {
    given(with(a_draft(), &[submitted()]))
        .when(LoanCommand::StartReview {
            started_at: at("2026-11-21T09:00:00Z"),
        })
        .then_expect_events(vec![review_started()]);
}

#[test]
fn a_draft_cannot_be_reviewed_before_it_is_submitted() {
    given(a_draft())
        .when(LoanCommand::StartReview {
            started_at: at("2026-11-21T09:00:00Z"),
        })
        .then_expect_error(invalid(LoanStatus::Draft, "start the review"));
}

// --- Decide ----------------------------------------------------------------------------------

#[test]
fn a_good_application_is_approved_with_its_whole_schedule_fixed() {
    given(under_review())
        .when(decide(ScheduleKind::Annuity))
        .then_expect_events(vec![approved_as(ScheduleKind::Annuity)]);
    // The offer's first period: 39 days from the decision on 22 November (oracle:
    // 31 197.33 interest + a regular month's 11 538.38 principal).
    let schedule = the_schedule(ScheduleKind::Annuity);
    assert_eq!(schedule[0].interest, rub("31197.33"));
    assert_eq!(schedule[0].principal, rub("11538.38"));
    assert_eq!(schedule[0].total, rub("42735.71"));
    assert_eq!(schedule[1].total, rub("35869.63"));
    assert_eq!(schedule[1].due_date, day("2027-01-31"));
    assert_eq!(schedule[2].due_date, day("2027-02-28"));
    assert_eq!(schedule[3].due_date, day("2027-03-31"));
}

#[test]
fn a_differentiated_schedule_can_be_chosen_on_approval() {
    given(under_review())
        .when(decide(ScheduleKind::Differentiated))
        .then_expect_events(vec![approved_as(ScheduleKind::Differentiated)]);
}

#[test]
fn a_low_credit_score_is_rejected_with_the_reason() {
    let low = LoanDetails::new(
        rub("1500000"),
        Application {
            credit_score: 550,
            ..application()
        },
    )
    .unwrap();
    let refused = TestFramework::<Loan>::with(())
        .given(vec![applied(low), submitted(), review_started()])
        .when(decide(ScheduleKind::Annuity));
    let events = refused.inspect_result().unwrap();
    let [LoanEvent::LoanRejected { reasons, .. }] = events.as_slice() else {
        panic!("expected one rejection, got {events:?}");
    };
    let rules: Vec<CreditRule> = reasons.iter().map(|r| r.rule).collect();
    assert_eq!(rules, vec![CreditRule::CreditScore]);
}

#[test]
fn every_failed_rule_is_listed_in_a_rejection() {
    let weak = Application {
        down_payment: rub("100000"),
        employment: EmploymentStatus::Unemployed,
        ..application()
    };
    let events = execute(
        &mut replay(&[
            applied(LoanDetails::new(rub("1500000"), weak).unwrap()),
            submitted(),
            review_started(),
        ]),
        decide(ScheduleKind::Annuity),
        &(),
    )
    .unwrap();
    let [LoanEvent::LoanRejected { reasons, .. }] = events.as_slice() else {
        panic!("expected one rejection, got {events:?}");
    };
    let rules: Vec<CreditRule> = reasons.iter().map(|r| r.rule).collect();
    assert_eq!(rules, vec![CreditRule::Employment, CreditRule::DownPayment]);
}

#[test]
fn an_instalment_above_the_payment_to_income_limit_is_rejected() {
    // 35 869.63 a month against 40% of 80 000.00 = 32 000.00.
    let stretched = Application {
        monthly_income: rub("80000"),
        ..application()
    };
    let events = execute(
        &mut replay(&[
            applied(LoanDetails::new(rub("1500000"), stretched).unwrap()),
            submitted(),
            review_started(),
        ]),
        decide(ScheduleKind::Annuity),
        &(),
    )
    .unwrap();
    let [LoanEvent::LoanRejected { reasons, .. }] = events.as_slice() else {
        panic!("expected one rejection, got {events:?}");
    };
    assert_eq!(reasons.len(), 1);
    assert_eq!(reasons[0].rule, CreditRule::PaymentToIncome);
    assert!(
        reasons[0].detail.contains("35869.63"),
        "{}",
        reasons[0].detail
    );
}

#[test]
fn the_policy_table_gives_these_rates() {
    use credit::annual_rate_percent as rate;
    assert_eq!(rate(LoanType::CarLoan, 579), None);
    assert_eq!(rate(LoanType::CarLoan, 580), Some(d("27.9")));
    assert_eq!(rate(LoanType::CarLoan, 700), Some(d("22.9")));
    assert_eq!(rate(LoanType::Leasing, 750), Some(d("16.9")));
    assert_eq!(rate(LoanType::CarLoan, 850), Some(d("14.9")));
    assert_eq!(rate(LoanType::Instalment, 669), None);
    assert_eq!(rate(LoanType::Instalment, 670), Some(Decimal::ZERO));
}

#[test]
fn the_first_due_date_must_be_after_the_decision() {
    given(under_review())
        .when(LoanCommand::Decide {
            schedule_kind: ScheduleKind::Annuity,
            first_due_date: day("2026-11-22"),
            decided_at: at("2026-11-22T10:00:00Z"),
            decided_on: day("2026-11-22"),
        })
        .then_expect_error(LoanError::FirstDueDateNotAfterDecision {
            first_due_date: day("2026-11-22"),
            decided_on: day("2026-11-22"),
        });
}

#[test]
fn a_first_due_date_more_than_two_months_after_the_decision_is_refused() {
    given(under_review())
        .when(LoanCommand::Decide {
            schedule_kind: ScheduleKind::Annuity,
            first_due_date: day("2027-01-23"),
            decided_at: at("2026-11-22T10:00:00Z"),
            decided_on: day("2026-11-22"),
        })
        .then_expect_error(LoanError::FirstDueDateTooLate {
            first_due_date: day("2027-01-23"),
            latest: day("2027-01-22"),
        });
}

#[test]
fn deciding_before_the_review_has_started_is_refused() {
    given(with(a_draft(), &[submitted()]))
        .when(decide(ScheduleKind::Annuity))
        .then_expect_error(invalid(LoanStatus::Submitted, "decide"));
}

// --- Reject ----------------------------------------------------------------------------------

fn staff_rejected(reason: &str) -> LoanEvent {
    LoanEvent::LoanRejected {
        reasons: vec![CreditFinding {
            rule: CreditRule::StaffDecision,
            detail: reason.into(),
        }],
        rejected_at: at("2026-11-22T12:00:00Z"),
    }
}

fn reject(reason: &str) -> LoanCommand {
    LoanCommand::Reject {
        reason: reason.into(),
        rejected_at: at("2026-11-22T12:00:00Z"),
    }
}

#[test]
fn staff_can_reject_an_application_by_hand_with_a_reason() {
    for history in [with(a_draft(), &[submitted()]), under_review(), approved()] {
        given(history)
            .when(reject(" passport does not match "))
            .then_expect_events(vec![staff_rejected("passport does not match")]);
    }
}

#[test]
fn rejecting_without_a_reason_is_refused() {
    given(under_review())
        .when(reject("  "))
        .then_expect_error(LoanError::EmptyReason);
}

#[test]
fn a_disbursed_loan_can_no_longer_be_rejected() {
    given(active())
        .when(reject("too late"))
        .then_expect_error(invalid(LoanStatus::Active, "reject"));
}

// --- Disburse --------------------------------------------------------------------------------

#[test]
fn disbursing_an_approved_loan_makes_it_active() {
    given(approved())
        .when(LoanCommand::Disburse {
            disbursed_on: day("2026-11-30"),
        })
        .then_expect_events(vec![disbursed()]);
}

#[test]
fn disbursing_on_or_after_the_first_due_date_is_refused() {
    given(approved())
        .when(LoanCommand::Disburse {
            disbursed_on: day("2026-12-31"),
        })
        .then_expect_error(LoanError::DisbursementNotBeforeFirstDueDate {
            disbursed_on: day("2026-12-31"),
            first_due_date: day("2026-12-31"),
        });
}

#[test]
fn a_rejected_loan_cannot_be_disbursed() {
    given(with(under_review(), &[staff_rejected("no")]))
        .when(LoanCommand::Disburse {
            disbursed_on: day("2026-11-30"),
        })
        .then_expect_error(invalid(LoanStatus::Rejected, "disburse"));
}

// --- Repayments ------------------------------------------------------------------------------

#[test]
fn a_repayment_pays_the_oldest_instalment_interest_first() {
    given(active())
        .when(repay("30000", "2026-12-30"))
        .then_expect_events(vec![repaid(
            "30000",
            "2026-12-30",
            &[(1, "5202.12", "24797.88")],
        )]);
}

#[test]
fn a_repayment_beyond_one_instalment_pays_the_next_ones_in_order() {
    // Instalment 2: 31 days of January on 1 263 461.62 at 22.9% / 365 = 24 573.46.
    given(active())
        .when(repay("40000", "2026-12-30"))
        .then_expect_events(vec![repaid(
            "40000",
            "2026-12-30",
            &[(1, "11538.38", "24797.88"), (2, "0.00", "3663.74")],
        )]);
    assert_eq!(the_issued_schedule()[1].interest, rub("24573.46"));
}

#[test]
fn a_repayment_beyond_everything_outstanding_is_refused() {
    let loan = replay(&active());
    let outstanding = loan.outstanding();
    let too_much = Money::from_minor_units(outstanding.minor_units() + 1, Currency::RUB);
    given(active())
        .when(LoanCommand::RecordRepayment {
            amount: too_much,
            paid_on: day("2026-12-30"),
        })
        .then_expect_error(LoanError::RepaymentExceedsOutstanding {
            amount: too_much,
            outstanding,
        });
}

#[test]
fn paying_everything_left_on_the_schedule_completes_the_loan() {
    let loan = replay(&active());
    let outstanding = loan.outstanding();
    let events = execute(
        &mut loan.clone(),
        LoanCommand::RecordRepayment {
            amount: outstanding,
            paid_on: day("2027-01-10"),
        },
        &(),
    )
    .unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(
        events[1],
        LoanEvent::LoanCompleted {
            completed_on: day("2027-01-10")
        }
    );
    let done = replay(&with(active(), &events));
    assert_eq!(done.status(), LoanStatus::Completed);
    assert_eq!(done.outstanding_principal(), Some(rub("0")));
}

#[test]
fn a_repayment_of_nothing_is_refused() {
    given(active())
        .when(repay("0", "2026-12-30"))
        .then_expect_error(LoanError::NonPositiveAmount);
}

#[test]
fn a_repayment_in_another_currency_is_refused() {
    given(active())
        .when(LoanCommand::RecordRepayment {
            amount: Money::from_minor_units(100, Currency::EUR),
            paid_on: day("2026-12-30"),
        })
        .then_expect_error(LoanError::CurrencyMismatch {
            expected: Currency::RUB,
            found: Currency::EUR,
        });
}

#[test]
fn a_repayment_dated_before_the_disbursement_is_refused() {
    given(active())
        .when(repay("100", "2026-11-29"))
        .then_expect_error(LoanError::DateBeforeDisbursement {
            date: day("2026-11-29"),
            disbursed_on: day("2026-11-30"),
        });
}

#[test]
fn repayments_are_taken_only_on_active_loans() {
    given(approved())
        .when(repay("100", "2026-12-30"))
        .then_expect_error(invalid(LoanStatus::Approved, "take a repayment"));
}

// --- Early repayment -------------------------------------------------------------------------

fn early(amount: &str, recalculation: Recalculation, paid_on: &str) -> LoanCommand {
    LoanCommand::RepayEarly {
        repayment: EarlyRepayment::Partial {
            amount: rub(amount),
            recalculation,
        },
        paid_on: day(paid_on),
    }
}

#[test]
fn a_partial_early_repayment_shortening_the_term_keeps_the_payment() {
    // 300 000.00 on 10 January, after instalment 1: it pays the 7 926.92 accrued on 1 263 461.62
    // over the 10 days since 31 December, the other 292 073.08 come off the principal; the next
    // period runs from 10 January, and the payment stays (all figures from the oracle).
    let history = with(active(), &[first_instalment_paid()]);
    let events = execute(
        &mut replay(&history),
        early("300000", Recalculation::ShortenTerm, "2027-01-10"),
        &(),
    )
    .unwrap();
    let [
        LoanEvent::LoanRepaidEarly {
            schedule,
            principal,
            interest,
            fixed_part,
            ..
        },
    ] = events.as_slice()
    else {
        panic!("expected one early repayment, got {events:?}");
    };
    assert_eq!((*principal, *interest), (rub("292073.08"), rub("7926.92")));
    assert_eq!(*fixed_part, Some(rub("35869.63")));
    assert_eq!(schedule.len(), 39);
    let next = &schedule[0];
    assert_eq!((next.number, next.due_date), (2, day("2027-01-31")));
    assert_eq!(
        (next.principal, next.interest, next.total),
        (rub("17332.30"), rub("12798.38"), rub("30130.68"))
    );
    assert!(
        schedule[1..schedule.len() - 1]
            .iter()
            .all(|i| i.total == rub("35869.63"))
    );
    let last = schedule.last().unwrap();
    assert_eq!(
        (last.due_date, last.total, last.remaining),
        (day("2030-03-31"), rub("15547.73"), rub("0"))
    );
    given(history)
        .when(early("300000", Recalculation::ShortenTerm, "2027-01-10"))
        .then_expect_events(events);
}

#[test]
fn a_partial_early_repayment_lowering_the_payment_keeps_the_term() {
    let history = with(active(), &[first_instalment_paid()]);
    let events = execute(
        &mut replay(&history),
        early("300000", Recalculation::LowerPayment, "2027-01-10"),
        &(),
    )
    .unwrap();
    let [
        LoanEvent::LoanRepaidEarly {
            schedule,
            fixed_part,
            ..
        },
    ] = events.as_slice()
    else {
        panic!("expected one early repayment, got {events:?}");
    };
    // Oracle: the payment on 971 388.54 over 59 months; the next instalment from 10 January.
    assert_eq!(schedule.len(), 59);
    assert_eq!(*fixed_part, Some(rub("27577.69")));
    assert_eq!(schedule[0].total, rub("21838.74"));
    let last = schedule.last().unwrap();
    assert_eq!(
        (last.due_date, last.total),
        (day("2031-11-30"), rub("25188.63"))
    );
    let loan = replay(&with(history, &events));
    assert_eq!(loan.outstanding_principal(), Some(rub("971388.54")));
}

#[test]
fn a_full_early_repayment_pays_principal_and_the_days_of_interest_accrued_and_completes() {
    // 1 275 000.00 × 22.9% × 10/365 days since the disbursement (30 Nov → 10 Dec) = 7 999.32
    // (oracle; the legacy 1/12 rule said 7 848.79).
    let payoff = rub("1282999.32");
    assert_eq!(replay(&active()).payoff(day("2026-12-10")), Some(payoff));
    given(active())
        .when(LoanCommand::RepayEarly {
            repayment: EarlyRepayment::Full { amount: payoff },
            paid_on: day("2026-12-10"),
        })
        .then_expect_events(vec![
            LoanEvent::LoanRepaidEarly {
                paid_on: day("2026-12-10"),
                amount: payoff,
                principal: rub("1275000"),
                interest: rub("7999.32"),
                recalculation: None,
                fixed_part: None,
                schedule: vec![],
            },
            LoanEvent::LoanCompleted {
                completed_on: day("2026-12-10"),
            },
        ]);
}

#[test]
fn a_full_early_repayment_of_another_amount_than_the_payoff_is_refused() {
    given(active())
        .when(LoanCommand::RepayEarly {
            repayment: EarlyRepayment::Full {
                amount: rub("1275000"),
            },
            paid_on: day("2026-12-10"),
        })
        .then_expect_error(LoanError::PayoffAmountMismatch {
            expected: rub("1282999.32"),
            offered: rub("1275000"),
        });
}

#[test]
fn a_partial_early_repayment_of_the_whole_principal_is_refused() {
    // The whole principal plus the 7 999.32 accrued by 10 December is the payoff, not a partial.
    given(active())
        .when(early(
            "1282999.32",
            Recalculation::ShortenTerm,
            "2026-12-10",
        ))
        .then_expect_error(LoanError::EarlyRepaymentTooLarge {
            amount: rub("1282999.32"),
            outstanding_principal: rub("1275000"),
        });
    given(active())
        .when(early(
            "1282999.31",
            Recalculation::ShortenTerm,
            "2026-12-10",
        ))
        .then_expect_events(
            execute(
                &mut replay(&active()),
                early("1282999.31", Recalculation::ShortenTerm, "2026-12-10"),
                &(),
            )
            .unwrap(),
        );
}

#[test]
fn a_partial_early_repayment_not_above_the_interest_accrued_is_refused() {
    // 7 999.32 accrued by 10 December: paying just that would take nothing off the principal.
    given(active())
        .when(early("7999.32", Recalculation::ShortenTerm, "2026-12-10"))
        .then_expect_error(LoanError::EarlyRepaymentNotAboveAccruedInterest {
            amount: rub("7999.32"),
            accrued_interest: rub("7999.32"),
        });
}

#[test]
fn an_early_repayment_is_refused_while_instalments_are_in_arrears() {
    given(active())
        .when(early("1000", Recalculation::LowerPayment, "2027-01-05"))
        .then_expect_error(LoanError::InArrears { overdue: vec![1] });
}

#[test]
fn an_early_repayment_is_refused_while_the_next_instalment_is_partly_paid() {
    given(with(
        active(),
        &[repaid("1000", "2026-12-05", &[(1, "0.00", "1000.00")])],
    ))
    .when(early("1000", Recalculation::LowerPayment, "2026-12-10"))
    .then_expect_error(LoanError::InstalmentPartlyPaid { number: 1 });
}

#[test]
fn an_early_repayment_of_nothing_is_refused() {
    given(active())
        .when(early("0", Recalculation::LowerPayment, "2026-12-10"))
        .then_expect_error(LoanError::NonPositiveAmount);
}

// --- Arrears ---------------------------------------------------------------------------------

fn assess(as_of: &str) -> LoanCommand {
    LoanCommand::AssessArrears { as_of: day(as_of) }
}

#[test]
fn an_instalment_unpaid_after_its_due_date_falls_overdue() {
    given(active())
        .when(assess("2027-01-01"))
        .then_expect_events(vec![LoanEvent::InstalmentsFellOverdue {
            as_of: day("2027-01-01"),
            instalments: vec![1],
        }]);
}

#[test]
fn assessing_again_with_nothing_new_emits_nothing() {
    given(with(
        active(),
        &[LoanEvent::InstalmentsFellOverdue {
            as_of: day("2027-01-01"),
            instalments: vec![1],
        }],
    ))
    .when(assess("2027-01-02"))
    .then_expect_events(vec![]);
}

#[test]
fn a_loan_paid_on_time_has_no_arrears() {
    given(with(active(), &[first_instalment_paid()]))
        .when(assess("2027-01-15"))
        .then_expect_events(vec![]);
}

#[test]
fn an_instalment_more_than_60_days_past_due_defaults_the_loan() {
    given(active())
        .when(assess("2027-03-02"))
        .then_expect_events(vec![
            LoanEvent::InstalmentsFellOverdue {
                as_of: day("2027-03-02"),
                instalments: vec![1, 2, 3],
            },
            LoanEvent::LoanDefaulted {
                as_of: day("2027-03-02"),
                overdue_instalments: vec![1, 2, 3],
                days_past_due: 61,
            },
        ]);
    // Exactly 60 days past due is not yet a default.
    let events = execute(&mut replay(&active()), assess("2027-03-01"), &()).unwrap();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, LoanEvent::LoanDefaulted { .. }))
    );
}

#[test]
fn paying_an_overdue_instalment_clears_it() {
    let history = with(
        active(),
        &[
            LoanEvent::InstalmentsFellOverdue {
                as_of: day("2027-01-01"),
                instalments: vec![1],
            },
            repaid("36336.26", "2027-01-03", &[(1, "11538.38", "24797.88")]),
        ],
    );
    assert!(!replay(&history).instalments()[0].overdue);
}

#[test]
fn a_defaulted_loan_takes_no_more_commands() {
    let history = with(
        active(),
        &[LoanEvent::LoanDefaulted {
            as_of: day("2027-03-02"),
            overdue_instalments: vec![1, 2, 3],
            days_past_due: 61,
        }],
    );
    given(history.clone())
        .when(assess("2027-04-01"))
        .then_expect_error(invalid(LoanStatus::Defaulted, "assess arrears"));
    given(history)
        .when(repay("100", "2027-04-01"))
        .then_expect_error(invalid(LoanStatus::Defaulted, "take a repayment"));
}

#[test]
fn arrears_cannot_be_assessed_as_of_a_date_before_the_disbursement() {
    given(active())
        .when(assess("2026-11-01"))
        .then_expect_error(LoanError::DateBeforeDisbursement {
            date: day("2026-11-01"),
            disbursed_on: day("2026-11-30"),
        });
}

#[test]
fn arrears_are_assessed_only_on_active_loans() {
    given(approved())
        .when(assess("2027-01-01"))
        .then_expect_error(invalid(LoanStatus::Approved, "assess arrears"));
}

// --- Events ----------------------------------------------------------------------------------

#[test]
fn event_types_are_the_variant_names_and_payloads_round_trip() {
    let mut events = active();
    events.extend([
        first_instalment_paid(),
        staff_rejected("x"),
        LoanEvent::InstalmentsFellOverdue {
            as_of: day("2027-01-01"),
            instalments: vec![1],
        },
        LoanEvent::LoanDefaulted {
            as_of: day("2027-03-02"),
            overdue_instalments: vec![1],
            days_past_due: 61,
        },
        LoanEvent::LoanCompleted {
            completed_on: day("2027-01-01"),
        },
        LoanEvent::LoanApplicationUpdated { details: details() },
    ]);
    for event in events {
        let json = serde_json::to_value(&event).unwrap();
        let tag = json.as_object().unwrap().keys().next().unwrap().clone();
        assert_eq!(event.event_type(), tag);
        let version = match event {
            LoanEvent::LoanApproved { .. } | LoanEvent::LoanDisbursed { .. } => "2.0",
            _ => "1.0",
        };
        assert_eq!(event.event_version(), version, "{tag}");
        assert_eq!(serde_json::from_value::<LoanEvent>(json).unwrap(), event);
    }
}

// --- Properties ------------------------------------------------------------------------------

fn principal() -> impl Strategy<Value = Money> {
    (100_000i64..=2_000_000_000).prop_map(|kopecks| Money::from_minor_units(kopecks, Currency::RUB))
}

fn rate() -> impl Strategy<Value = Decimal> {
    (0i64..=4000).prop_map(|hundredths| Decimal::new(hundredths, 2))
}

fn kind() -> impl Strategy<Value = ScheduleKind> {
    prop_oneof![
        Just(ScheduleKind::Annuity),
        Just(ScheduleKind::Differentiated)
    ]
}

fn first_due() -> impl Strategy<Value = NaiveDate> {
    (0i64..730).prop_map(|offset| day("2026-12-01") + chrono::Days::new(offset as u64))
}

/// The schedule properties: principal parts sum to `opening`, nothing negative, each remaining
/// balance is the previous less the principal, the last balance is zero, annuity totals equal but
/// the first (a regular month's principal part) and the last, numbers consecutive.
fn check_schedule(
    rows: &[Instalment],
    opening: Money,
    kind: ScheduleKind,
    fixed: Money,
    rate: Decimal,
) -> Result<(), TestCaseError> {
    prop_assert!(!rows.is_empty());
    let principal_sum: i64 = rows.iter().map(|r| r.principal.minor_units()).sum();
    prop_assert_eq!(principal_sum, opening.minor_units());
    let mut balance = opening.minor_units();
    for (index, row) in rows.iter().enumerate() {
        prop_assert!(
            !row.principal.is_negative() && !row.interest.is_negative(),
            "{:?}",
            row
        );
        prop_assert_eq!(
            row.total.minor_units(),
            row.principal.minor_units() + row.interest.minor_units()
        );
        balance -= row.principal.minor_units();
        prop_assert_eq!(row.remaining.minor_units(), balance);
        prop_assert!(balance >= 0);
        prop_assert_eq!(row.number, rows[0].number + index as u32);
        let is_last = index + 1 == rows.len();
        if !is_last {
            match kind {
                // The first covers an irregular period: a regular month's principal part.
                ScheduleKind::Annuity if index == 0 => {
                    let month = schedule::monthly_interest(opening, rate).minor_units();
                    prop_assert_eq!(
                        row.principal.minor_units(),
                        (fixed.minor_units() - month).clamp(0, opening.minor_units())
                    );
                }
                ScheduleKind::Annuity => prop_assert_eq!(row.total, fixed),
                ScheduleKind::Differentiated => prop_assert_eq!(row.principal, fixed),
            }
        }
    }
    prop_assert_eq!(balance, 0);
    Ok(())
}

/// A loan history up to disbursement for the given terms (bypassing the credit policy, which
/// limits rates; the schedule maths must hold for any rate from 0 to 40%).
fn active_loan(
    kind: ScheduleKind,
    principal: Money,
    rate: Decimal,
    months: u32,
    first: NaiveDate,
) -> Vec<LoanEvent> {
    let price = principal.checked_add(rub("1")).unwrap();
    let details = LoanDetails {
        vehicle_price: price,
        down_payment: rub("1"),
        loan_amount: principal,
        loan_type: LoanType::CarLoan,
        term_months: months,
        employment: EmploymentStatus::Employed,
        monthly_income: rub("1000000"),
        credit_score: 800,
    };
    let rule = schedule::Rule::for_kind(kind, principal, rate, months);
    vec![
        applied(details),
        submitted(),
        review_started(),
        LoanEvent::LoanApproved {
            annual_rate_percent: rate,
            schedule_kind: kind,
            first_due_date: first,
            fixed_part: rule.amount(),
            schedule: schedule::generate(
                principal,
                rate,
                rule,
                1,
                months,
                first,
                actual_days_from("2026-11-30"),
            ),
            checks: vec![],
            decided_at: at("2026-11-22T10:00:00Z"),
            day_count: DayCount::ActualDays,
            accrues_from: day("2026-11-30"),
        },
        LoanEvent::LoanDisbursed {
            disbursed_on: day("2026-11-30"),
            principal,
            schedule: vec![],
        },
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn every_schedule_adds_up_to_the_loan_and_ends_at_zero(
        kind in kind(), principal in principal(), rate in rate(), months in 3u32..=84, first in first_due(),
        first_period_days in 1u64..=62,
    ) {
        let rule = schedule::Rule::for_kind(kind, principal, rate, months);
        let lent_on = first - chrono::Days::new(first_period_days);
        let rows = schedule::build(kind, principal, rate, months, first, Accrual {
            day_count: DayCount::ActualDays,
            from: lent_on,
        });
        prop_assert_eq!(rows.len(), months as usize);
        check_schedule(&rows, principal, kind, rule.amount(), rate)?;
        for row in &rows {
            prop_assert_eq!(row.due_date, schedule::due_date(first, row.number));
        }
    }

    #[test]
    fn an_early_repayment_leaves_a_schedule_that_still_adds_up(
        kind in kind(), principal in principal(), rate in rate(), months in 12u32..=84,
        paid in 0usize..6, share in 1u32..100, shorten in any::<bool>(),
    ) {
        let first = day("2026-12-31");
        let mut loan = replay(&active_loan(kind, principal, rate, months, first));
        for number in 0..paid {
            let due = loan.instalments()[number].instalment.clone();
            execute(&mut loan, LoanCommand::RecordRepayment { amount: due.total, paid_on: due.due_date }, &()).unwrap();
        }
        let outstanding = loan.outstanding_principal().unwrap();
        let amount = Money::from_minor_units((outstanding.minor_units() * i64::from(share) / 100).max(1), Currency::RUB);
        let recalculation = if shorten { Recalculation::ShortenTerm } else { Recalculation::LowerPayment };
        let paid_on = loan.instalments()[paid].instalment.due_date - chrono::Days::new(3);
        let accrued = loan.payoff(paid_on).unwrap().checked_sub(outstanding).unwrap();
        let repaid = match execute(&mut loan, LoanCommand::RepayEarly {
            repayment: EarlyRepayment::Partial { amount, recalculation }, paid_on,
        }, &()) {
            Err(LoanError::EarlyRepaymentNotAboveAccruedInterest { accrued_interest, .. }) => {
                // Too little to reach the principal: refused, and only then.
                prop_assert_eq!(accrued_interest, accrued);
                prop_assert!(amount.minor_units() <= accrued.minor_units());
                return Ok(());
            }
            other => other.unwrap(),
        };
        let [LoanEvent::LoanRepaidEarly { schedule: rows, fixed_part: Some(fixed), principal: repaid_principal, interest, .. }] = repaid.as_slice() else {
            panic!("expected one early repayment, got {repaid:?}");
        };
        // The interest accrued to the day is paid first, the rest comes off the principal.
        prop_assert_eq!(*interest, accrued);
        prop_assert_eq!(repaid_principal.minor_units(), amount.minor_units() - accrued.minor_units());
        let opening = outstanding.checked_sub(*repaid_principal).unwrap();
        check_schedule(rows, opening, kind, *fixed, rate)?;
        prop_assert_eq!(rows[0].number as usize, paid + 1);
        prop_assert!(rows.len() <= months as usize - paid);
        if !shorten {
            prop_assert_eq!(rows.len(), months as usize - paid);
        }
        // The loan can still be repaid to the kopeck and completes.
        let rest = loan.outstanding();
        let done = execute(&mut loan, LoanCommand::RecordRepayment { amount: rest, paid_on }, &()).unwrap();
        let completed = matches!(done.last(), Some(LoanEvent::LoanCompleted { .. }));
        prop_assert!(completed, "{:?}", done);
        prop_assert_eq!(loan.outstanding_principal(), Some(Money::zero(Currency::RUB)));
    }
}

// --- Random command sequences ----------------------------------------------------------------

fn command() -> impl Strategy<Value = LoanCommand> {
    let dates = (0u64..500).prop_map(|offset| day("2026-11-15") + chrono::Days::new(offset));
    let amounts =
        prop::sample::select(vec!["0", "1000", "35869.63", "100000", "2000000"]).prop_map(rub);
    prop_oneof![
        prop::sample::select(vec![200u16, 550, 700, 820]).prop_map(|credit_score| apply(
            Application {
                credit_score,
                ..application()
            }
        )),
        (
            prop::option::of(12u32..=90),
            prop::option::of(prop::sample::select(vec!["0", "100000", "300000"]).prop_map(rub))
        )
            .prop_map(
                |(term_months, down_payment)| LoanCommand::UpdateApplication {
                    changes: ApplicationChanges {
                        term_months,
                        down_payment,
                        ..ApplicationChanges::default()
                    }
                }
            ),
        Just(LoanCommand::Submit {
            submitted_at: at("2026-11-20T11:00:00Z")
        }),
        Just(LoanCommand::StartReview {
            started_at: at("2026-11-21T09:00:00Z")
        }),
        kind().prop_map(decide),
        prop::sample::select(vec!["fraud suspected", " "]).prop_map(reject),
        dates
            .clone()
            .prop_map(|disbursed_on| LoanCommand::Disburse { disbursed_on }),
        (amounts.clone(), dates.clone())
            .prop_map(|(amount, paid_on)| LoanCommand::RecordRepayment { amount, paid_on }),
        (amounts, any::<bool>(), dates.clone()).prop_map(|(amount, shorten, paid_on)| {
            LoanCommand::RepayEarly {
                repayment: EarlyRepayment::Partial {
                    amount,
                    recalculation: if shorten {
                        Recalculation::ShortenTerm
                    } else {
                        Recalculation::LowerPayment
                    },
                },
                paid_on,
            }
        }),
        dates.prop_map(|as_of| LoanCommand::AssessArrears { as_of }),
    ]
}

struct Step {
    before: Loan,
    after: Loan,
    outcome: Result<Vec<LoanEvent>, LoanError>,
}

fn run(commands: Vec<LoanCommand>) -> Vec<Step> {
    let mut loan = Loan::default();
    commands
        .into_iter()
        .map(|command| {
            let before = loan.clone();
            let outcome = execute(&mut loan, command, &());
            Step {
                before,
                after: loan.clone(),
                outcome,
            }
        })
        .collect()
}

proptest! {
    #[test]
    fn principal_repaid_never_exceeds_the_loan_and_a_finished_loan_never_changes(commands in prop::collection::vec(command(), 0..40)) {
        for step in run(commands) {
            if let (Some(outstanding), Some(principal)) = (step.after.outstanding_principal(), step.after.principal()) {
                prop_assert!(!outstanding.is_negative() && outstanding.amount() <= principal.amount());
            }
            if step.before.status().is_terminal() {
                prop_assert!(step.outcome.is_err());
            }
            let json = serde_json::to_string(&step.after).unwrap();
            prop_assert_eq!(serde_json::from_str::<Loan>(&json).unwrap(), step.after);
        }
    }
}

// The full cost of credit (353-FZ art. 6): every figure below is printed by
// `tests/full_cost_oracle.py` (its own bisection at 60 digits over the schedules of
// `actual_days_oracle.py`, written from the docs of `full_cost`, not from this code).

/// (principal, rate, lent on, first due, months, kind, per cent a year, in money).
type WorkedFullCost = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    u32,
    ScheduleKind,
    &'static str,
    &'static str,
);

const WORKED_FULL_COST: &[WorkedFullCost] = &[
    // A first period of 10 days.
    (
        "8497359.60",
        "18.9",
        "2026-11-22",
        "2026-12-02",
        60,
        ScheduleKind::Annuity,
        "18.886",
        "4608966.90",
    ),
    // 62 days, across a year end: q = 2 whole months and no rest.
    (
        "8497359.60",
        "18.9",
        "2026-12-01",
        "2027-02-01",
        60,
        ScheduleKind::Annuity,
        "18.886",
        "4824721.24",
    ),
    // Exactly one month.
    (
        "8497359.60",
        "18.9",
        "2026-12-15",
        "2027-01-15",
        60,
        ScheduleKind::Annuity,
        "18.897",
        "4694801.46",
    ),
    // The usual offer of the tests: 39 days from the decision to the first due date.
    (
        "1275000.00",
        "22.9",
        "2026-11-22",
        "2026-12-31",
        60,
        ScheduleKind::Annuity,
        "22.878",
        "882320.33",
    ),
    (
        "8497359.60",
        "18.9",
        "2026-11-22",
        "2026-12-02",
        60,
        ScheduleKind::Differentiated,
        "18.885",
        "3991495.25",
    ),
    // Lent on 31 January: the months end on 28 February, 31 March, 30 April..., while the due
    // dates, counted from 28 February, fall on the 28th, so from March on each flow is a whole
    // month short by 3 days or less (e = 0.92 for 28 February to 28 March).
    (
        "1000000.00",
        "27.9",
        "2027-01-31",
        "2027-02-28",
        84,
        ScheduleKind::Annuity,
        "27.854",
        "1275750.56",
    ),
    // No interest, no cost.
    (
        "600000.00",
        "0",
        "2026-12-15",
        "2027-01-15",
        12,
        ScheduleKind::Annuity,
        "0.000",
        "0.00",
    ),
];

#[test]
fn the_full_cost_of_credit_matches_the_worked_examples() {
    for &(principal, rate, lent_on, first_due, months, kind, percent, amount) in WORKED_FULL_COST {
        let accrual = schedule::Accrual {
            day_count: schedule::DayCount::ActualDays,
            from: day(lent_on),
        };
        let instalments = schedule::build(
            kind,
            rub(principal),
            d(rate),
            months,
            day(first_due),
            accrual,
        );
        let cost = full_cost::full_cost(rub(principal), day(lent_on), &instalments).unwrap();
        // As text: three places always, `0.000` too.
        assert_eq!(
            (cost.percent.to_string(), cost.amount),
            (percent.to_owned(), rub(amount)),
            "{principal} at {rate}% lent on {lent_on}, first due {first_due}, {kind:?}"
        );
    }
}

#[test]
fn a_legacy_schedule_on_whole_months_costs_its_nominal_rate() {
    // The oracle's "monthly 1/12, regular months": 1 275 000.00 at 22.9 %, 60 months, lent on
    // 15 December 2026, first due 15 January 2027.
    let accrual = schedule::Accrual {
        day_count: schedule::DayCount::MonthlyTwelfth,
        from: day("2026-12-15"),
    };
    let instalments = schedule::build(
        ScheduleKind::Annuity,
        rub("1275000.00"),
        d("22.9"),
        60,
        day("2027-01-15"),
        accrual,
    );
    let cost = full_cost::full_cost(rub("1275000.00"), day("2026-12-15"), &instalments).unwrap();
    assert_eq!(cost.percent.to_string(), "22.900");
    assert_eq!(cost.amount, rub("877178.36"));
}

#[test]
fn a_full_cost_beyond_the_money_range_is_none_not_a_panic() {
    // 0.6 of the largest amount at 39.9 % over 84 months: its interest, about twice the principal,
    // is beyond the range.
    let huge = Money::from_minor_units(i64::MAX / 10 * 6, Currency::RUB);
    let accrual = schedule::Accrual {
        day_count: schedule::DayCount::ActualDays,
        from: day("2027-01-15"),
    };
    let instalments = schedule::build(
        ScheduleKind::Annuity,
        huge,
        d("39.9"),
        84,
        day("2027-02-15"),
        accrual,
    );
    assert_eq!(
        full_cost::full_cost(huge, day("2027-01-15"), &instalments),
        None
    );
}

proptest! {
    /// With interest of a twelfth of the year's rate every month and every period a whole month,
    /// the schedule's internal rate is the contract's monthly rate, so the full cost is the
    /// nominal rate, give or take the kopecks the instalments are rounded to.
    #[test]
    fn on_whole_months_at_a_twelfth_a_month_the_full_cost_is_the_nominal_rate(
        principal in 100_000i64..20_000_000,
        rate_tenths in 1u32..400,
        months in 12u32..=84,
        start_day in 1u32..=28,
    ) {
        let principal = Money::from_minor_units(principal * 100, Currency::RUB);
        let rate = Decimal::new(i64::from(rate_tenths), 1);
        let lent_on = NaiveDate::from_ymd_opt(2026, 3, start_day).unwrap();
        let first_due = schedule::due_date(lent_on, 2);
        let accrual = schedule::Accrual {
            day_count: schedule::DayCount::MonthlyTwelfth,
            from: lent_on,
        };
        let instalments =
            schedule::build(ScheduleKind::Annuity, principal, rate, months, first_due, accrual);
        let cost = full_cost::full_cost(principal, lent_on, &instalments).unwrap();
        prop_assert!((cost.percent - rate).abs() <= Decimal::new(1, 3), "{} vs {}", cost.percent, rate);
        let interest: Decimal = instalments.iter().map(|i| i.interest.amount()).sum();
        prop_assert_eq!(cost.amount.amount(), interest);
    }
}
