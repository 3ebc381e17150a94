use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::test::{AggregateTestExecutor, TestFramework};
use proptest::prelude::*;
use rust_decimal::Decimal;
use uuid::Uuid;

use super::*;
use crate::money::{Currency, Money};
use crate::policy::tariffs::{Driver, Region, VehicleFacts};
use crate::test_support::execute;

fn rub(amount: &str) -> Money {
    Money::new(amount.parse().unwrap(), Currency::RUB).unwrap()
}

fn at(instant: &str) -> DateTime<Utc> {
    instant.parse().unwrap()
}

fn day(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

fn customer() -> Uuid {
    Uuid::from_u128(0xc1)
}

fn vehicle() -> Uuid {
    Uuid::from_u128(1)
}

fn claim_id() -> Uuid {
    Uuid::from_u128(0xa1)
}

const NUMBER: &str = "ASL-KASKO-2026-00000000000000000000000000000001";

fn terms() -> QuoteTerms {
    QuoteTerms {
        product: Product::Kasko,
        vehicle: VehicleFacts {
            brand: "Lada".into(),
            model: "Vesta".into(),
            year: 2024,
            value: rub("1500000"),
            power_hp: 106,
        },
        driver: Driver {
            age: 35,
            experience_years: 10,
            region: Region::Moscow,
            bonus_malus_class: 3,
        },
        deductible: rub("30000"),
        quote_year: 2026,
    }
}

fn offer(insurer: &str, premium: &str) -> Offer {
    Offer {
        insurer: insurer.into(),
        premium: rub(premium),
        coverage: rub("1500000"),
        deductible: rub("30000"),
        commission_percent: Decimal::from(15),
    }
}

fn request_quote() -> PolicyCommand {
    PolicyCommand::RequestQuote(RequestQuote {
        customer_id: customer(),
        vehicle_id: vehicle(),
        vehicle_vin: "XTA210990Y2766389".into(),
        terms: terms(),
        offers: vec![offer("SEVER", "59400.00"), offer("URAL", "55440.00")],
        unanswered: vec!["TAIGA".into()],
        requested_at: at("2026-01-10T09:00:00Z"),
    })
}

fn quote_requested() -> PolicyEvent {
    PolicyEvent::QuoteRequested {
        customer_id: customer(),
        vehicle_id: vehicle(),
        vehicle_vin: "XTA210990Y2766389".into(),
        terms: terms(),
        offers: vec![offer("SEVER", "59400.00"), offer("URAL", "55440.00")],
        unanswered: vec!["TAIGA".into()],
        requested_at: at("2026-01-10T09:00:00Z"),
    }
}

fn issue(insurer: &str, start: &str) -> PolicyCommand {
    PolicyCommand::Issue {
        insurer: insurer.into(),
        start: day(start),
        policy_number: NUMBER.into(),
        issued_at: at("2026-01-11T10:00:00Z"),
        signature: "c2lnbmF0dXJl".into(),
        key_id: "key-1".into(),
    }
}

fn issued() -> PolicyEvent {
    let document = PolicyDocument {
        policy_number: NUMBER.into(),
        insurer: "SEVER".into(),
        product: Product::Kasko,
        holder: customer(),
        vehicle_vin: "XTA210990Y2766389".into(),
        period_start: day("2026-01-11"),
        period_end: day("2027-01-11"),
        coverage: rub("1500000"),
        premium: rub("59400.00"),
        deductible: rub("30000"),
        issued_at: at("2026-01-11T10:00:00Z"),
    };
    PolicyEvent::PolicyIssued {
        policy_number: NUMBER.into(),
        insurer: "SEVER".into(),
        product: Product::Kasko,
        holder: customer(),
        vehicle_id: vehicle(),
        vehicle_vin: "XTA210990Y2766389".into(),
        period_start: day("2026-01-11"),
        period_end: day("2027-01-11"),
        coverage: rub("1500000"),
        premium: rub("59400.00"),
        deductible: rub("30000"),
        commission_percent: Decimal::from(15),
        commission: rub("8910.00"),
        issued_at: at("2026-01-11T10:00:00Z"),
        document: document.canonical(),
        signature: "c2lnbmF0dXJl".into(),
        key_id: "key-1".into(),
    }
}

fn premium_paid() -> PolicyEvent {
    PolicyEvent::PolicyPremiumPaid {
        amount: rub("59400.00"),
        paid_at: at("2026-01-11T11:00:00Z"),
    }
}

fn file_claim(incident: &str, claimed: &str) -> PolicyCommand {
    PolicyCommand::FileClaim {
        claim_id: claim_id(),
        incident_on: day(incident),
        description: "rear bumper dented in a car park".into(),
        claimed: rub(claimed),
        today: day("2026-06-01"),
        filed_at: at("2026-06-01T10:00:00Z"),
    }
}

fn claim_filed(claimed: &str) -> PolicyEvent {
    PolicyEvent::ClaimFiled {
        claim_id: claim_id(),
        incident_on: day("2026-05-30"),
        description: "rear bumper dented in a car park".into(),
        claimed: rub(claimed),
        filed_at: at("2026-06-01T10:00:00Z"),
    }
}

fn review_started() -> PolicyEvent {
    PolicyEvent::ClaimReviewStarted {
        claim_id: claim_id(),
        at: at("2026-06-02T10:00:00Z"),
    }
}

fn approve(amount: &str) -> PolicyCommand {
    PolicyCommand::ApproveClaim {
        claim_id: claim_id(),
        amount: rub(amount),
        at: at("2026-06-03T10:00:00Z"),
    }
}

fn approved(amount: &str) -> PolicyEvent {
    PolicyEvent::ClaimApproved {
        claim_id: claim_id(),
        amount: rub(amount),
        at: at("2026-06-03T10:00:00Z"),
    }
}

fn cancel(today: &str) -> PolicyCommand {
    PolicyCommand::Cancel {
        reason: "vehicle sold".into(),
        today: day(today),
        cancelled_at: at("2026-07-01T10:00:00Z"),
    }
}

fn cancelled(today: &str, refund: &str) -> PolicyEvent {
    PolicyEvent::PolicyCancelled {
        reason: "vehicle sold".into(),
        cancelled_on: day(today),
        refund: rub(refund),
        cancelled_at: at("2026-07-01T10:00:00Z"),
    }
}

fn given(events: Vec<PolicyEvent>) -> AggregateTestExecutor<Policy> {
    TestFramework::<Policy>::with(()).given(events)
}

fn quoted() -> Vec<PolicyEvent> {
    vec![quote_requested()]
}

fn issued_policy() -> Vec<PolicyEvent> {
    vec![quote_requested(), issued()]
}

fn active() -> Vec<PolicyEvent> {
    vec![quote_requested(), issued(), premium_paid()]
}

fn with(mut history: Vec<PolicyEvent>, tail: &[PolicyEvent]) -> Vec<PolicyEvent> {
    history.extend(tail.iter().cloned());
    history
}

fn invalid(from: PolicyStatus, action: &'static str) -> PolicyError {
    PolicyError::InvalidTransition { from, action }
}

// --- Quote -----------------------------------------------------------------------------------

#[test]
fn requesting_a_quote_records_every_offer_and_the_insurers_that_did_not_answer() {
    given(vec![])
        .when(request_quote())
        .then_expect_events(quoted());
}

#[test]
fn a_quote_id_cannot_be_used_twice() {
    given(quoted())
        .when(request_quote())
        .then_expect_error(PolicyError::AlreadyQuoted);
}

#[test]
fn a_quote_without_offers_is_refused() {
    let PolicyCommand::RequestQuote(mut request) = request_quote() else {
        unreachable!()
    };
    request.offers.clear();
    given(vec![])
        .when(PolicyCommand::RequestQuote(request))
        .then_expect_error(PolicyError::NoOffers);
}

#[test]
fn a_quote_for_an_impossible_driver_is_refused() {
    let PolicyCommand::RequestQuote(mut request) = request_quote() else {
        unreachable!()
    };
    request.terms.driver.age = 17;
    given(vec![])
        .when(PolicyCommand::RequestQuote(request))
        .then_expect_error(PolicyError::InvalidTerms(
            "driver age must be 18 to 100, got 17".into(),
        ));
}

// --- Issue -----------------------------------------------------------------------------------

#[test]
fn selecting_a_recorded_offer_issues_the_policy_with_its_commission_and_signed_document() {
    given(quoted())
        .when(issue("SEVER", "2026-01-11"))
        .then_expect_events(vec![issued()]);
}

#[test]
fn selecting_an_insurer_that_made_no_offer_is_refused() {
    given(quoted())
        .when(issue("TAIGA", "2026-01-11"))
        .then_expect_error(PolicyError::OfferNotFound {
            insurer: "TAIGA".into(),
        });
}

#[test]
fn a_policy_cannot_start_before_it_is_issued() {
    given(quoted())
        .when(issue("SEVER", "2026-01-10"))
        .then_expect_error(PolicyError::StartDateOutOfRange {
            earliest: day("2026-01-11"),
            latest: day("2026-03-12"),
        });
}

#[test]
fn an_offer_older_than_thirty_days_cannot_be_selected() {
    let command = PolicyCommand::Issue {
        insurer: "SEVER".into(),
        start: day("2026-02-15"),
        policy_number: NUMBER.into(),
        issued_at: at("2026-02-15T10:00:00Z"),
        signature: "c2ln".into(),
        key_id: "key-1".into(),
    };
    given(quoted())
        .when(command)
        .then_expect_error(PolicyError::QuoteExpired {
            quoted_on: day("2026-01-10"),
        });
}

#[test]
fn an_unsigned_policy_is_not_issued() {
    let PolicyCommand::Issue {
        insurer,
        start,
        policy_number,
        issued_at,
        key_id,
        ..
    } = issue("SEVER", "2026-01-11")
    else {
        unreachable!()
    };
    given(quoted())
        .when(PolicyCommand::Issue {
            insurer,
            start,
            policy_number,
            issued_at,
            signature: " ".into(),
            key_id,
        })
        .then_expect_error(PolicyError::Invalid(
            "an issued policy must be signed".into(),
        ));
}

#[test]
fn a_policy_is_issued_only_once() {
    given(issued_policy())
        .when(issue("URAL", "2026-01-11"))
        .then_expect_error(invalid(PolicyStatus::Issued, "issue the policy"));
}

#[test]
fn issuing_an_unknown_quote_is_not_found() {
    given(vec![])
        .when(issue("SEVER", "2026-01-11"))
        .then_expect_error(PolicyError::NotQuoted);
}

// --- Premium ---------------------------------------------------------------------------------

#[test]
fn paying_the_premium_activates_the_policy() {
    given(issued_policy())
        .when(PolicyCommand::PayPremium {
            amount: rub("59400.00"),
            paid_at: at("2026-01-11T11:00:00Z"),
        })
        .then_expect_events(vec![premium_paid()]);
}

#[test]
fn paying_another_amount_than_the_premium_is_refused() {
    given(issued_policy())
        .when(PolicyCommand::PayPremium {
            amount: rub("59399.99"),
            paid_at: at("2026-01-11T11:00:00Z"),
        })
        .then_expect_error(PolicyError::PremiumAmountMismatch {
            expected: rub("59400.00"),
            found: rub("59399.99"),
        });
}

#[test]
fn the_premium_is_paid_only_once() {
    given(active())
        .when(PolicyCommand::PayPremium {
            amount: rub("59400.00"),
            paid_at: at("2026-01-11T11:00:00Z"),
        })
        .then_expect_error(invalid(PolicyStatus::Active, "pay the premium"));
}

#[test]
fn a_quote_has_no_premium_to_pay() {
    given(quoted())
        .when(PolicyCommand::PayPremium {
            amount: rub("59400.00"),
            paid_at: at("2026-01-11T11:00:00Z"),
        })
        .then_expect_error(invalid(PolicyStatus::Quoted, "pay the premium"));
}

// --- Cancel ----------------------------------------------------------------------------------

#[test]
fn cancelling_refunds_the_unused_days_pro_rata() {
    // 365 days; cancelled on 2026-07-01, covered through that day: 193 unused days.
    // 59400 × 193 / 365 = 31408.767… → 31408.77.
    given(active())
        .when(cancel("2026-07-01"))
        .then_expect_events(vec![cancelled("2026-07-01", "31408.77")]);
}

#[test]
fn cancelling_an_unpaid_policy_refunds_nothing() {
    given(issued_policy())
        .when(cancel("2026-07-01"))
        .then_expect_events(vec![cancelled("2026-07-01", "0.00")]);
}

#[test]
fn cancelling_after_a_claim_was_approved_refunds_nothing() {
    given(with(
        active(),
        &[claim_filed("50000"), review_started(), approved("40000")],
    ))
    .when(cancel("2026-07-01"))
    .then_expect_events(vec![cancelled("2026-07-01", "0.00")]);
}

#[test]
fn cancelling_needs_a_reason() {
    given(active())
        .when(PolicyCommand::Cancel {
            reason: "  ".into(),
            today: day("2026-07-01"),
            cancelled_at: at("2026-07-01T10:00:00Z"),
        })
        .then_expect_error(PolicyError::Invalid(
            "a reason for cancelling is required".into(),
        ));
}

#[test]
fn cancelling_after_the_period_ended_is_refused() {
    given(active())
        .when(cancel("2027-01-11"))
        .then_expect_error(PolicyError::PeriodEnded {
            period_end: day("2027-01-11"),
        });
}

#[test]
fn a_cancelled_policy_cannot_be_cancelled_again() {
    given(with(active(), &[cancelled("2026-07-01", "31408.77")]))
        .when(cancel("2026-07-02"))
        .then_expect_error(invalid(PolicyStatus::Cancelled, "cancel"));
}

// --- Expire ----------------------------------------------------------------------------------

#[test]
fn a_policy_expires_once_its_period_has_ended() {
    given(active())
        .when(PolicyCommand::Expire {
            today: day("2027-01-11"),
        })
        .then_expect_events(vec![PolicyEvent::PolicyExpired {
            expired_on: day("2027-01-11"),
        }]);
}

#[test]
fn a_policy_does_not_expire_before_its_end() {
    given(active())
        .when(PolicyCommand::Expire {
            today: day("2027-01-10"),
        })
        .then_expect_error(PolicyError::PeriodNotEnded {
            period_end: day("2027-01-11"),
        });
}

#[test]
fn a_quote_cannot_expire() {
    given(quoted())
        .when(PolicyCommand::Expire {
            today: day("2027-01-10"),
        })
        .then_expect_error(invalid(PolicyStatus::Quoted, "expire"));
}

// --- Claims ----------------------------------------------------------------------------------

#[test]
fn filing_a_claim_for_an_incident_inside_the_period_records_it() {
    given(active())
        .when(file_claim("2026-05-30", "50000"))
        .then_expect_events(vec![claim_filed("50000")]);
}

#[test]
fn a_claim_on_an_unpaid_policy_is_refused() {
    given(issued_policy())
        .when(file_claim("2026-05-30", "50000"))
        .then_expect_error(invalid(PolicyStatus::Issued, "file a claim"));
}

#[test]
fn a_claim_for_an_incident_before_the_start_is_refused() {
    given(active())
        .when(file_claim("2026-01-10", "50000"))
        .then_expect_error(PolicyError::IncidentOutsidePeriod {
            incident_on: day("2026-01-10"),
            start: day("2026-01-11"),
            covered_until: day("2027-01-10"),
        });
}

#[test]
fn cancelling_while_a_claim_is_open_refunds_nothing() {
    given(with(active(), &[claim_filed("50000")]))
        .when(cancel("2026-07-01"))
        .then_expect_events(vec![cancelled("2026-07-01", "0.00")]);
}

#[test]
fn a_cancelled_policy_whose_premium_was_refunded_takes_no_claims() {
    given(with(active(), &[cancelled("2026-07-01", "31408.77")]))
        .when(file_claim("2026-05-30", "50000"))
        .then_expect_error(PolicyError::PremiumRefunded {
            refund: rub("31408.77"),
        });
}

#[test]
fn a_claim_on_a_cancelled_policy_is_accepted_for_an_incident_while_it_covered() {
    // Cancelled without a refund (a claim had been paid), so later claims for earlier incidents stand.
    given(with(active(), &[cancelled("2026-07-01", "0.00")]))
        .when(PolicyCommand::FileClaim {
            claim_id: claim_id(),
            incident_on: day("2026-05-30"),
            description: "rear bumper dented in a car park".into(),
            claimed: rub("50000"),
            today: day("2026-08-01"),
            filed_at: at("2026-06-01T10:00:00Z"),
        })
        .then_expect_events(vec![claim_filed("50000")]);
}

#[test]
fn a_claim_on_a_cancelled_policy_for_an_incident_after_cancellation_is_refused() {
    let command = PolicyCommand::FileClaim {
        claim_id: claim_id(),
        incident_on: day("2026-07-02"),
        description: "hail".into(),
        claimed: rub("50000"),
        today: day("2026-08-01"),
        filed_at: at("2026-08-01T10:00:00Z"),
    };
    given(with(active(), &[cancelled("2026-07-01", "0.00")]))
        .when(command)
        .then_expect_error(PolicyError::IncidentOutsidePeriod {
            incident_on: day("2026-07-02"),
            start: day("2026-01-11"),
            covered_until: day("2026-07-01"),
        });
}

#[test]
fn a_claim_for_an_incident_in_the_future_is_refused() {
    given(active())
        .when(file_claim("2026-06-02", "50000"))
        .then_expect_error(PolicyError::Invalid(
            "incident date 2026-06-02 is in the future".into(),
        ));
}

#[test]
fn a_claim_above_coverage_less_deductible_is_refused() {
    given(active())
        .when(file_claim("2026-05-30", "1470000.01"))
        .then_expect_error(PolicyError::ClaimExceedsCoverage {
            amount: rub("1470000.01"),
            remaining: rub("1470000.00"),
        });
}

#[test]
fn a_claim_needs_a_description_and_a_positive_amount() {
    given(active())
        .when(file_claim("2026-05-30", "0"))
        .then_expect_error(PolicyError::Invalid(
            "the amount claimed must be greater than zero".into(),
        ));
}

#[test]
fn a_claim_id_is_used_once_per_policy() {
    given(with(active(), &[claim_filed("50000")]))
        .when(file_claim("2026-05-30", "50000"))
        .then_expect_error(PolicyError::ClaimAlreadyFiled {
            claim_id: claim_id(),
        });
}

#[test]
fn starting_a_review_puts_the_claim_under_review() {
    given(with(active(), &[claim_filed("50000")]))
        .when(PolicyCommand::StartClaimReview {
            claim_id: claim_id(),
            at: at("2026-06-02T10:00:00Z"),
        })
        .then_expect_events(vec![review_started()]);
}

#[test]
fn reviewing_an_unknown_claim_is_not_found() {
    given(active())
        .when(PolicyCommand::StartClaimReview {
            claim_id: claim_id(),
            at: at("2026-06-02T10:00:00Z"),
        })
        .then_expect_error(PolicyError::ClaimNotFound {
            claim_id: claim_id(),
        });
}

#[test]
fn approving_a_claim_under_review_records_the_amount() {
    given(with(active(), &[claim_filed("50000"), review_started()]))
        .when(approve("45000"))
        .then_expect_events(vec![approved("45000")]);
}

#[test]
fn a_claim_must_be_reviewed_before_it_is_approved() {
    given(with(active(), &[claim_filed("50000")]))
        .when(approve("45000"))
        .then_expect_error(PolicyError::InvalidClaimTransition {
            from: ClaimStatus::Filed,
            action: "approve",
        });
}

#[test]
fn approving_more_than_was_claimed_is_refused() {
    given(with(active(), &[claim_filed("50000"), review_started()]))
        .when(approve("50000.01"))
        .then_expect_error(PolicyError::ApprovalExceedsClaim {
            approved: rub("50000.01"),
            claimed: rub("50000"),
        });
}

#[test]
fn approvals_together_cannot_exceed_coverage_less_deductible() {
    // Limit 1 500 000 − 30 000 = 1 470 000; 1 000 000 approved leaves 470 000.
    let second = Uuid::from_u128(0xa2);
    given(with(
        active(),
        &[
            claim_filed("1000000"),
            PolicyEvent::ClaimFiled {
                claim_id: second,
                incident_on: day("2026-05-31"),
                description: "theft of wheels".into(),
                claimed: rub("500000"),
                filed_at: at("2026-06-01T12:00:00Z"),
            },
            review_started(),
            approved("1000000"),
            PolicyEvent::ClaimReviewStarted {
                claim_id: second,
                at: at("2026-06-02T12:00:00Z"),
            },
        ],
    ))
    .when(PolicyCommand::ApproveClaim {
        claim_id: second,
        amount: rub("470000.01"),
        at: at("2026-06-03T12:00:00Z"),
    })
    .then_expect_error(PolicyError::ClaimExceedsCoverage {
        amount: rub("470000.01"),
        remaining: rub("470000"),
    });
}

#[test]
fn rejecting_a_claim_needs_a_reason_and_records_it() {
    let history = with(active(), &[claim_filed("50000"), review_started()]);
    given(history.clone())
        .when(PolicyCommand::RejectClaim {
            claim_id: claim_id(),
            reason: "damage predates the policy".into(),
            at: at("2026-06-03T10:00:00Z"),
        })
        .then_expect_events(vec![PolicyEvent::ClaimRejected {
            claim_id: claim_id(),
            reason: "damage predates the policy".into(),
            at: at("2026-06-03T10:00:00Z"),
        }]);
    given(history)
        .when(PolicyCommand::RejectClaim {
            claim_id: claim_id(),
            reason: "".into(),
            at: at("2026-06-03T10:00:00Z"),
        })
        .then_expect_error(PolicyError::Invalid(
            "a reason for rejecting is required".into(),
        ));
}

#[test]
fn paying_an_approved_claim_pays_the_approved_amount() {
    given(with(
        active(),
        &[claim_filed("50000"), review_started(), approved("45000")],
    ))
    .when(PolicyCommand::PayClaim {
        claim_id: claim_id(),
        at: at("2026-06-04T10:00:00Z"),
    })
    .then_expect_events(vec![PolicyEvent::ClaimPaid {
        claim_id: claim_id(),
        amount: rub("45000"),
        at: at("2026-06-04T10:00:00Z"),
    }]);
}

#[test]
fn a_claim_is_paid_only_once() {
    given(with(
        active(),
        &[
            claim_filed("50000"),
            review_started(),
            approved("45000"),
            PolicyEvent::ClaimPaid {
                claim_id: claim_id(),
                amount: rub("45000"),
                at: at("2026-06-04T10:00:00Z"),
            },
        ],
    ))
    .when(PolicyCommand::PayClaim {
        claim_id: claim_id(),
        at: at("2026-06-05T10:00:00Z"),
    })
    .then_expect_error(PolicyError::InvalidClaimTransition {
        from: ClaimStatus::Paid,
        action: "pay",
    });
}

#[test]
fn event_types_are_the_variant_names_at_version_one() {
    for event in with(active(), &[claim_filed("1")]) {
        let json = serde_json::to_value(&event).unwrap();
        let tag = json.as_object().unwrap().keys().next().unwrap().clone();
        assert_eq!(event.event_type(), tag);
        assert_eq!(event.event_version(), "1.0");
    }
}

#[test]
fn policy_numbers_name_the_product_year_and_id() {
    assert_eq!(
        policy_number(
            Product::Osago,
            2026,
            Uuid::from_u128(0x0193a4b0_0000_7000_8000_0000000000e1)
        ),
        "ASL-OSAGO-2026-0193A4B00000700080000000000000E1"
    );
}

// --- Properties ------------------------------------------------------------------------------

fn premium_units() -> impl Strategy<Value = i64> {
    1..=100_000_000i64
}

proptest! {
    #[test]
    fn a_refund_never_exceeds_the_premium_and_is_full_before_the_start_and_zero_on_the_last_day(
        units in premium_units(),
        start_offset in 0..3_000i64,
        cancel_offset in -30..400i64,
    ) {
        let premium = Money::from_minor_units(units, Currency::RUB);
        let start = day("2020-01-01") + chrono::Duration::days(start_offset);
        let end = start.checked_add_months(Months::new(12)).unwrap();
        let cancelled_on = start + chrono::Duration::days(cancel_offset);
        let refund = pro_rata_refund(premium, start, end, cancelled_on);
        prop_assert!(!refund.is_negative());
        prop_assert!(refund.amount() <= premium.amount());
        if cancelled_on < start {
            prop_assert_eq!(refund, premium);
        }
        if cancelled_on >= end.pred_opt().unwrap() {
            prop_assert!(refund.is_zero());
        }
    }

    #[test]
    fn claims_never_exceed_coverage_less_deductible_and_replaying_reproduces_state(
        steps in proptest::collection::vec((0..4u8, 0..4u128, 1..80_000_000_i64), 1..40),
    ) {
        let mut policy = Policy::default();
        let mut events = Vec::new();
        for event in active() {
            policy.apply(event.clone());
            events.push(event);
        }
        for (kind, claim, units) in steps {
            let claim_id = Uuid::from_u128(claim);
            let amount = Money::from_minor_units(units, Currency::RUB);
            let when = at("2026-06-01T10:00:00Z");
            let command = match kind {
                0 => PolicyCommand::FileClaim {
                    claim_id,
                    incident_on: day("2026-05-01"),
                    description: "damage".into(),
                    claimed: amount,
                    today: day("2026-06-01"),
                    filed_at: when,
                },
                1 => PolicyCommand::StartClaimReview { claim_id, at: when },
                2 => PolicyCommand::ApproveClaim { claim_id, amount, at: when },
                _ => PolicyCommand::PayClaim { claim_id, at: when },
            };
            if let Ok(emitted) = execute(&mut policy, command, &()) {
                events.extend(emitted);
            }
            let terms = policy.terms().unwrap();
            prop_assert!(policy.claims().committed(Currency::RUB).amount() <= terms.limit().amount());
            prop_assert!(policy.claims().paid(Currency::RUB).amount() <= terms.limit().amount());
        }
        let mut replayed = Policy::default();
        for event in events {
            replayed.apply(event);
        }
        prop_assert_eq!(replayed, policy);
    }
}

#[test]
fn a_claim_must_be_reviewed_before_it_is_rejected() {
    given(with(active(), &[claim_filed("50000")]))
        .when(PolicyCommand::RejectClaim {
            claim_id: claim_id(),
            reason: "not covered".into(),
            at: at("2026-06-03T10:00:00Z"),
        })
        .then_expect_error(PolicyError::InvalidClaimTransition {
            from: ClaimStatus::Filed,
            action: "reject",
        });
}

#[test]
fn a_claim_in_another_currency_is_refused() {
    given(active())
        .when(PolicyCommand::FileClaim {
            claim_id: claim_id(),
            incident_on: day("2026-05-30"),
            description: "hail".into(),
            claimed: Money::from_minor_units(100, Currency::EUR),
            today: day("2026-06-01"),
            filed_at: at("2026-06-01T10:00:00Z"),
        })
        .then_expect_error(PolicyError::Invalid(
            "the amount claimed is in EUR but the policy is in RUB".into(),
        ));
}

#[test]
fn a_cancelled_policy_does_not_expire() {
    given(with(active(), &[cancelled("2026-07-01", "31408.77")]))
        .when(PolicyCommand::Expire {
            today: day("2027-02-01"),
        })
        .then_expect_error(invalid(PolicyStatus::Cancelled, "expire"));
}

#[test]
fn cancelling_before_the_start_refunds_the_whole_premium() {
    let refund = pro_rata_refund(
        rub("59400.00"),
        day("2026-01-11"),
        day("2027-01-11"),
        day("2026-01-10"),
    );
    assert_eq!(refund, rub("59400.00"));
    let last_day = pro_rata_refund(
        rub("59400.00"),
        day("2026-01-11"),
        day("2027-01-11"),
        day("2027-01-10"),
    );
    assert!(last_day.is_zero());
}

#[test]
fn claims_on_an_expired_policy_are_accepted_for_incidents_in_the_period() {
    given(with(
        active(),
        &[PolicyEvent::PolicyExpired {
            expired_on: day("2027-01-11"),
        }],
    ))
    .when(PolicyCommand::FileClaim {
        claim_id: claim_id(),
        incident_on: day("2026-05-30"),
        description: "rear bumper dented in a car park".into(),
        claimed: rub("50000"),
        today: day("2027-02-01"),
        filed_at: at("2026-06-01T10:00:00Z"),
    })
    .then_expect_events(vec![claim_filed("50000")]);
}
