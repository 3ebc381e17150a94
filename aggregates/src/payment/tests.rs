use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use cqrs_es::test::{AggregateTestExecutor, TestFramework};
use proptest::prelude::*;
use rust_decimal::Decimal;
use uuid::Uuid;

use super::*;
use crate::money::{Currency, Money};
use crate::test_support::execute;

mod model;

fn rub(amount: &str) -> Money {
    Money::new(amount.parse::<Decimal>().unwrap(), Currency::RUB).unwrap()
}

fn at(instant: &str) -> DateTime<Utc> {
    instant.parse().unwrap()
}

fn order() -> Uuid {
    Uuid::from_u128(10)
}

fn customer() -> Uuid {
    Uuid::from_u128(11)
}

fn refund_id(n: u128) -> Uuid {
    Uuid::from_u128(100 + n)
}

fn card() -> PaymentMethod {
    PaymentMethod::Card {
        last4: CardLast4::parse("4242").unwrap(),
    }
}

fn credit() -> PaymentMethod {
    PaymentMethod::Credit {
        loan_id: Uuid::from_u128(12),
    }
}

fn initiate(amount: Money, method: PaymentMethod) -> PaymentCommand {
    PaymentCommand::Initiate {
        order_id: order(),
        customer_id: customer(),
        amount,
        method,
        initiated_at: at("2024-03-05T10:00:00Z"),
    }
}

fn initiated(amount: Money, method: PaymentMethod) -> PaymentEvent {
    PaymentEvent::PaymentInitiated {
        order_id: order(),
        customer_id: customer(),
        amount,
        method,
        initiated_at: at("2024-03-05T10:00:00Z"),
    }
}

fn start_processing(gateway: &str) -> PaymentCommand {
    PaymentCommand::StartProcessing {
        gateway_transaction_id: gateway.into(),
        started_at: at("2024-03-05T10:01:00Z"),
    }
}

fn processing_started(gateway: &str) -> PaymentEvent {
    PaymentEvent::PaymentProcessingStarted {
        gateway_transaction_id: gateway.into(),
        started_at: at("2024-03-05T10:01:00Z"),
    }
}

fn complete() -> PaymentCommand {
    PaymentCommand::Complete {
        completed_at: at("2024-03-05T10:02:00Z"),
    }
}

fn completed() -> PaymentEvent {
    PaymentEvent::PaymentCompleted {
        completed_at: at("2024-03-05T10:02:00Z"),
    }
}

fn fail(reason: &str) -> PaymentCommand {
    PaymentCommand::Fail {
        reason: reason.into(),
        failed_at: at("2024-03-05T10:03:00Z"),
    }
}

fn failed(reason: &str) -> PaymentEvent {
    PaymentEvent::PaymentFailed {
        reason: reason.into(),
        failed_at: at("2024-03-05T10:03:00Z"),
    }
}

fn cancel(reason: &str) -> PaymentCommand {
    PaymentCommand::Cancel {
        reason: reason.into(),
        cancelled_at: at("2024-03-05T10:03:00Z"),
    }
}

fn cancelled(reason: &str) -> PaymentEvent {
    PaymentEvent::PaymentCancelled {
        reason: reason.into(),
        cancelled_at: at("2024-03-05T10:03:00Z"),
    }
}

fn refund(n: u128, amount: Money, reason: &str) -> PaymentCommand {
    PaymentCommand::Refund {
        refund_id: refund_id(n),
        amount,
        reason: reason.into(),
        refunded_at: at("2024-03-06T10:00:00Z"),
    }
}

fn refunded(n: u128, amount: Money, reason: &str, total: Money) -> PaymentEvent {
    PaymentEvent::PaymentRefunded {
        refund_id: refund_id(n),
        amount,
        reason: reason.into(),
        refunded_total: total,
        refunded_at: at("2024-03-06T10:00:00Z"),
    }
}

fn given(events: Vec<PaymentEvent>) -> AggregateTestExecutor<Payment> {
    TestFramework::<Payment>::with(()).given(events)
}

/// A card payment of 1 000 000 roubles, completed through the gateway.
fn a_completed_card_payment() -> Vec<PaymentEvent> {
    vec![
        initiated(rub("1000000"), card()),
        processing_started("gw-1"),
        completed(),
    ]
}

fn invalid(from: PaymentStatus, action: &'static str) -> PaymentError {
    PaymentError::InvalidTransition { from, action }
}

// --- Card last four digits --------------------------------------------------------------------

#[test]
fn only_exactly_four_ascii_digits_are_a_cards_last_four() {
    assert_eq!(CardLast4::parse("0042").unwrap().as_str(), "0042");
    for text in [
        "",
        "123",
        "12345",
        "12a4",
        " 1234",
        "١٢٣٤",
        "4111111111111111",
    ] {
        assert_eq!(
            CardLast4::parse(text),
            Err(CardLast4Error::NotFourDigits),
            "{text:?}"
        );
    }
}

#[test]
fn a_stored_card_with_more_than_four_digits_does_not_deserialize() {
    let json = r#"{"Card":{"last4":"4111111111111111"}}"#;
    assert!(serde_json::from_str::<PaymentMethod>(json).is_err());
    let json = r#"{"Card":{"last4":"1111"}}"#;
    assert!(serde_json::from_str::<PaymentMethod>(json).is_ok());
}

// --- Initiate --------------------------------------------------------------------------------

#[test]
fn initiating_a_payment_records_the_order_customer_amount_and_method() {
    for method in [
        card(),
        PaymentMethod::BankTransfer,
        PaymentMethod::Cash,
        credit(),
    ] {
        given(vec![])
            .when(initiate(rub("500000"), method.clone()))
            .then_expect_events(vec![initiated(rub("500000"), method)]);
    }
}

#[test]
fn initiating_a_payment_of_zero_or_less_is_refused() {
    for amount in [rub("0"), rub("-1")] {
        given(vec![])
            .when(initiate(amount, PaymentMethod::Cash))
            .then_expect_error(PaymentError::NonPositiveAmount);
    }
}

#[test]
fn initiating_a_payment_that_already_exists_is_refused() {
    given(vec![initiated(rub("1"), PaymentMethod::Cash)])
        .when(initiate(rub("1"), PaymentMethod::Cash))
        .then_expect_error(PaymentError::AlreadyInitiated);
}

#[test]
fn every_command_on_a_payment_never_initiated_is_refused_as_not_found() {
    for command in [
        start_processing("gw"),
        complete(),
        fail("declined"),
        cancel("changed mind"),
        refund(1, rub("1"), "returned"),
    ] {
        given(vec![])
            .when(command)
            .then_expect_error(PaymentError::NotInitiated);
    }
}

// --- StartProcessing -------------------------------------------------------------------------

#[test]
fn starting_to_process_a_card_or_bank_transfer_records_the_gateway_transaction() {
    for method in [card(), PaymentMethod::BankTransfer] {
        given(vec![initiated(rub("1000"), method)])
            .when(start_processing("  gw-77 "))
            .then_expect_events(vec![processing_started("gw-77")]);
    }
}

#[test]
fn starting_to_process_again_with_the_same_gateway_transaction_changes_nothing() {
    given(vec![
        initiated(rub("1000"), card()),
        processing_started("gw-77"),
    ])
    .when(start_processing("gw-77"))
    .then_expect_events(vec![]);
}

#[test]
fn starting_to_process_again_with_another_gateway_transaction_is_refused() {
    given(vec![
        initiated(rub("1000"), card()),
        processing_started("gw-77"),
    ])
    .when(start_processing("gw-78"))
    .then_expect_error(invalid(PaymentStatus::Processing, "start processing"));
}

#[test]
fn cash_and_credit_never_go_through_a_gateway() {
    for method in [PaymentMethod::Cash, credit()] {
        given(vec![initiated(rub("1000"), method)])
            .when(start_processing("gw-1"))
            .then_expect_error(invalid(PaymentStatus::Pending, "start processing"));
    }
}

#[test]
fn an_empty_or_over_long_gateway_transaction_id_is_refused() {
    for gateway in [
        " ".to_string(),
        "x".repeat(MAX_GATEWAY_TRANSACTION_ID_CHARS + 1),
    ] {
        given(vec![initiated(rub("1000"), card())])
            .when(start_processing(&gateway))
            .then_expect_error(PaymentError::InvalidGatewayTransactionId);
    }
}

// --- Complete --------------------------------------------------------------------------------

#[test]
fn completing_a_processing_card_payment_is_allowed() {
    given(vec![
        initiated(rub("1000"), card()),
        processing_started("gw-1"),
    ])
    .when(complete())
    .then_expect_events(vec![completed()]);
}

#[test]
fn cash_and_credit_complete_straight_from_pending() {
    for method in [PaymentMethod::Cash, credit()] {
        given(vec![initiated(rub("1000"), method)])
            .when(complete())
            .then_expect_events(vec![completed()]);
    }
}

#[test]
fn a_card_or_bank_transfer_cannot_complete_before_processing() {
    for method in [card(), PaymentMethod::BankTransfer] {
        given(vec![initiated(rub("1000"), method)])
            .when(complete())
            .then_expect_error(invalid(PaymentStatus::Pending, "complete"));
    }
}

#[test]
fn completing_a_completed_payment_is_refused() {
    given(a_completed_card_payment())
        .when(complete())
        .then_expect_error(invalid(PaymentStatus::Completed, "complete"));
}

// --- Fail and Cancel -------------------------------------------------------------------------

#[test]
fn a_pending_or_processing_payment_can_fail_with_a_reason() {
    given(vec![
        initiated(rub("1000"), card()),
        processing_started("gw-1"),
    ])
    .when(fail(" declined by the issuer "))
    .then_expect_events(vec![failed("declined by the issuer")]);
    given(vec![initiated(rub("1000"), PaymentMethod::Cash)])
        .when(fail("counterfeit notes"))
        .then_expect_events(vec![failed("counterfeit notes")]);
}

#[test]
fn a_completed_payment_cannot_fail() {
    given(a_completed_card_payment())
        .when(fail("late decline"))
        .then_expect_error(invalid(PaymentStatus::Completed, "fail"));
}

#[test]
fn a_pending_payment_can_be_cancelled_with_a_reason() {
    given(vec![initiated(rub("1000"), PaymentMethod::BankTransfer)])
        .when(cancel("customer pays by card instead"))
        .then_expect_events(vec![cancelled("customer pays by card instead")]);
}

#[test]
fn a_processing_payment_cannot_be_cancelled() {
    given(vec![
        initiated(rub("1000"), card()),
        processing_started("gw-1"),
    ])
    .when(cancel("too slow"))
    .then_expect_error(invalid(PaymentStatus::Processing, "cancel"));
}

#[test]
fn failing_or_cancelling_without_a_reason_is_refused() {
    for command in [fail(" "), cancel("")] {
        given(vec![initiated(rub("1000"), PaymentMethod::Cash)])
            .when(command)
            .then_expect_error(PaymentError::EmptyReason);
    }
}

#[test]
fn failed_and_cancelled_payments_accept_nothing_more() {
    for end in [failed("declined"), cancelled("changed mind")] {
        let from = if matches!(end, PaymentEvent::PaymentFailed { .. }) {
            PaymentStatus::Failed
        } else {
            PaymentStatus::Cancelled
        };
        given(vec![
            initiated(rub("1000"), PaymentMethod::Cash),
            end.clone(),
        ])
        .when(complete())
        .then_expect_error(invalid(from, "complete"));
        given(vec![initiated(rub("1000"), PaymentMethod::Cash), end])
            .when(refund(1, rub("1"), "back"))
            .then_expect_error(invalid(from, "refund"));
    }
}

// --- Refund ----------------------------------------------------------------------------------

#[test]
fn a_partial_refund_keeps_the_payment_completed_and_adds_up() {
    given(a_completed_card_payment())
        .when(refund(1, rub("100000"), " option not fitted "))
        .then_expect_events(vec![refunded(
            1,
            rub("100000"),
            "option not fitted",
            rub("100000"),
        )]);
    let mut history = a_completed_card_payment();
    history.push(refunded(1, rub("100000"), "option", rub("100000")));
    given(history)
        .when(refund(2, rub("50000"), "goodwill"))
        .then_expect_events(vec![refunded(2, rub("50000"), "goodwill", rub("150000"))]);
}

#[test]
fn refunding_the_rest_makes_the_payment_refunded() {
    let mut history = a_completed_card_payment();
    history.push(refunded(1, rub("100000"), "option", rub("100000")));
    given(history.clone())
        .when(refund(2, rub("900000"), "order cancelled"))
        .then_expect_events(vec![refunded(
            2,
            rub("900000"),
            "order cancelled",
            rub("1000000"),
        )]);
    let mut payment = Payment::default();
    history.push(refunded(
        2,
        rub("900000"),
        "order cancelled",
        rub("1000000"),
    ));
    for event in history {
        payment.apply(event);
    }
    assert_eq!(payment.status(), PaymentStatus::Refunded);
    assert_eq!(payment.net_paid(), Some(rub("0")));
}

#[test]
fn a_refund_larger_than_what_is_left_is_refused() {
    let mut history = a_completed_card_payment();
    history.push(refunded(1, rub("600000"), "option", rub("600000")));
    given(history)
        .when(refund(2, rub("400000.01"), "too much"))
        .then_expect_error(PaymentError::RefundExceedsPaid {
            amount: rub("400000.01"),
            refundable: rub("400000"),
        });
}

#[test]
fn recording_the_same_refund_again_changes_nothing() {
    let mut history = a_completed_card_payment();
    history.push(refunded(1, rub("100000"), "option", rub("100000")));
    given(history)
        .when(refund(1, rub("100000"), "option"))
        .then_expect_events(vec![]);
}

#[test]
fn reusing_a_refund_id_for_another_refund_is_refused() {
    let mut history = a_completed_card_payment();
    history.push(refunded(1, rub("100000"), "option", rub("100000")));
    given(history)
        .when(refund(1, rub("200000"), "option"))
        .then_expect_error(PaymentError::RefundIdReused {
            refund_id: refund_id(1),
        });
}

#[test]
fn a_refund_of_a_payment_not_completed_is_refused() {
    for history in [
        vec![initiated(rub("1000"), card())],
        vec![initiated(rub("1000"), card()), processing_started("gw")],
    ] {
        let from = if history.len() == 1 {
            PaymentStatus::Pending
        } else {
            PaymentStatus::Processing
        };
        given(history)
            .when(refund(1, rub("1"), "back"))
            .then_expect_error(invalid(from, "refund"));
    }
}

#[test]
fn a_fully_refunded_payment_takes_no_more_refunds() {
    let mut history = a_completed_card_payment();
    history.push(refunded(1, rub("1000000"), "cancelled", rub("1000000")));
    given(history)
        .when(refund(2, rub("1"), "again"))
        .then_expect_error(invalid(PaymentStatus::Refunded, "refund"));
}

#[test]
fn a_refund_of_zero_in_another_currency_or_without_reason_is_refused() {
    given(a_completed_card_payment())
        .when(refund(1, rub("0"), "nothing"))
        .then_expect_error(PaymentError::NonPositiveAmount);
    given(a_completed_card_payment())
        .when(refund(
            1,
            Money::from_minor_units(100, Currency::EUR),
            "euros",
        ))
        .then_expect_error(PaymentError::CurrencyMismatch {
            expected: Currency::RUB,
            found: Currency::EUR,
        });
    given(a_completed_card_payment())
        .when(refund(1, rub("1"), "  "))
        .then_expect_error(PaymentError::EmptyReason);
}

// --- State, errors, events -------------------------------------------------------------------

#[test]
fn the_payment_exposes_what_it_is_for_and_how_it_was_paid() {
    let mut payment = Payment::default();
    assert_eq!(payment.net_paid(), None);
    for event in a_completed_card_payment() {
        payment.apply(event);
    }
    assert_eq!(payment.status(), PaymentStatus::Completed);
    assert_eq!(payment.order_id(), Some(order()));
    assert_eq!(payment.customer_id(), Some(customer()));
    assert_eq!(payment.amount(), Some(rub("1000000")));
    assert_eq!(payment.method(), Some(&card()));
    assert_eq!(payment.gateway_transaction_id(), Some("gw-1"));
    assert_eq!(payment.refunded_total(), Some(rub("0")));
    assert_eq!(payment.net_paid(), Some(rub("1000000")));
    assert_eq!(payment.refunds().count(), 0);
}

#[test]
fn statuses_and_methods_have_stable_names() {
    use PaymentStatus::*;
    let names = [
        NotInitiated,
        Pending,
        Processing,
        Completed,
        Failed,
        Cancelled,
        Refunded,
    ]
    .map(|status| (status.as_str(), status.is_terminal()));
    assert_eq!(
        names,
        [
            ("NOT_INITIATED", false),
            ("PENDING", false),
            ("PROCESSING", false),
            ("COMPLETED", false),
            ("FAILED", true),
            ("CANCELLED", true),
            ("REFUNDED", true)
        ]
    );
    let kinds = [
        card(),
        PaymentMethod::BankTransfer,
        PaymentMethod::Cash,
        credit(),
    ]
    .map(|method| method.kind().as_str());
    assert_eq!(kinds, ["CARD", "BANK_TRANSFER", "CASH", "CREDIT"]);
}

#[test]
fn every_error_has_a_stable_code_and_a_readable_message() {
    let cases = [
        (PaymentError::NotInitiated, "NOT_FOUND"),
        (PaymentError::AlreadyInitiated, "PAYMENT_ALREADY_EXISTS"),
        (PaymentError::NonPositiveAmount, "VALIDATION"),
        (
            PaymentError::CurrencyMismatch {
                expected: Currency::RUB,
                found: Currency::USD,
            },
            "VALIDATION",
        ),
        (PaymentError::InvalidGatewayTransactionId, "VALIDATION"),
        (PaymentError::EmptyReason, "VALIDATION"),
        (
            PaymentError::RefundIdReused {
                refund_id: refund_id(1),
            },
            "VALIDATION",
        ),
        (
            PaymentError::RefundExceedsPaid {
                amount: rub("2"),
                refundable: rub("1"),
            },
            "REFUND_EXCEEDS_PAID",
        ),
        (
            invalid(PaymentStatus::Pending, "refund"),
            "INVALID_PAYMENT_TRANSITION",
        ),
    ];
    for (error, code) in cases {
        assert_eq!(error.code(), code, "{error:?}");
    }
    assert_eq!(
        PaymentError::RefundExceedsPaid {
            amount: rub("2"),
            refundable: rub("1")
        }
        .to_string(),
        "refund 2.00 RUB exceeds what can still be refunded (1.00 RUB)"
    );
}

#[test]
fn event_types_name_the_serialized_variant_at_version_1_0() {
    let events = vec![
        initiated(rub("1000"), card()),
        initiated(rub("1000"), credit()),
        processing_started("gw"),
        completed(),
        failed("x"),
        cancelled("y"),
        refunded(1, rub("1"), "z", rub("1")),
    ];
    for event in events {
        let json = serde_json::to_value(&event).unwrap();
        let tag = json.as_object().unwrap().keys().next().unwrap().clone();
        assert_eq!(event.event_type(), tag);
        assert_eq!(event.event_version(), "1.0");
        assert_eq!(serde_json::from_value::<PaymentEvent>(json).unwrap(), event);
    }
}

// --- Properties over random command sequences ------------------------------------------------

fn command() -> impl Strategy<Value = PaymentCommand> {
    let amount = prop::sample::select(vec!["-1", "0", "0.01", "500000", "1000000"]).prop_map(rub);
    let method = prop::sample::select(vec![
        card(),
        PaymentMethod::BankTransfer,
        PaymentMethod::Cash,
        credit(),
    ]);
    let refund_amount = prop::sample::select(vec![
        "0",
        "0.01",
        "100000",
        "250000.50",
        "500000",
        "1000000",
    ])
    .prop_map(rub);
    prop_oneof![
        (amount, method).prop_map(|(amount, method)| initiate(amount, method)),
        prop::sample::select(vec!["gw-1", "gw-2", " "]).prop_map(start_processing),
        Just(complete()),
        Just(fail("declined")),
        Just(cancel("changed mind")),
        (0..4u128, refund_amount).prop_map(|(n, amount)| refund(n, amount, "returned")),
    ]
}

/// One command's effect: the state before and after, and what `handle` returned.
struct Step {
    before: Payment,
    after: Payment,
    outcome: Result<Vec<PaymentEvent>, PaymentError>,
}

fn run(commands: Vec<PaymentCommand>) -> Vec<Step> {
    let mut payment = Payment::default();
    commands
        .into_iter()
        .map(|command| {
            let before = payment.clone();
            let outcome = execute(&mut payment, command, &());
            Step {
                before,
                after: payment.clone(),
                outcome,
            }
        })
        .collect()
}

proptest! {
    #[test]
    fn a_terminal_payment_never_changes_again(commands in prop::collection::vec(command(), 0..30)) {
        for step in run(commands) {
            if step.before.status().is_terminal() {
                prop_assert_eq!(step.outcome.map(|events| events.is_empty()).unwrap_or(true), true);
                prop_assert_eq!(step.before, step.after);
            }
        }
    }

    #[test]
    fn events_and_snapshots_survive_a_json_round_trip(commands in prop::collection::vec(command(), 0..30)) {
        for step in run(commands) {
            for event in step.outcome.unwrap_or_default() {
                let json = serde_json::to_string(&event).unwrap();
                prop_assert_eq!(serde_json::from_str::<PaymentEvent>(&json).unwrap(), event);
            }
            let json = serde_json::to_string(&step.after).unwrap();
            prop_assert_eq!(serde_json::from_str::<Payment>(&json).unwrap(), step.after);
        }
    }
}
