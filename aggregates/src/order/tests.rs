use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use cqrs_es::test::{AggregateTestExecutor, TestFramework};
use proptest::prelude::*;
use rust_decimal::Decimal;
use uuid::Uuid;

use super::*;
use crate::money::{Currency, Money};
use crate::payment::PaymentMethodKind;
use crate::test_support::execute;

mod model;
mod sale;

fn d(literal: &str) -> Decimal {
    literal.parse().unwrap()
}

fn rub(amount: &str) -> Money {
    Money::new(d(amount), Currency::RUB).unwrap()
}

fn at(instant: &str) -> DateTime<Utc> {
    instant.parse().unwrap()
}

fn customer() -> Uuid {
    Uuid::from_u128(1)
}

fn vehicle() -> Uuid {
    Uuid::from_u128(2)
}

fn draft(price: Money) -> OrderCommand {
    OrderCommand::Draft {
        customer_id: customer(),
        vehicle_id: vehicle(),
        price,
        drafted_at: at("2024-03-01T10:00:00Z"),
    }
}

fn drafted(price: Money) -> OrderEvent {
    OrderEvent::OrderDrafted {
        customer_id: customer(),
        vehicle_id: vehicle(),
        price,
        drafted_at: at("2024-03-01T10:00:00Z"),
    }
}

/// The usual history: a draft for 1 500 000 roubles.
fn a_draft() -> Vec<OrderEvent> {
    vec![drafted(rub("1500000"))]
}

fn percent(value: &str) -> Discount {
    Discount::Percentage { percent: d(value) }
}

fn fixed(amount: Money) -> Discount {
    Discount::Fixed { amount }
}

fn apply_discount(discount: Discount) -> OrderCommand {
    OrderCommand::ApplyDiscount {
        discount,
        promotion_id: None,
    }
}

fn discount_applied(discount: Discount, amount: &str, total: &str) -> OrderEvent {
    OrderEvent::DiscountApplied {
        discount,
        discount_amount: rub(amount),
        total: rub(total),
        promotion_id: None,
    }
}

fn confirm() -> OrderCommand {
    OrderCommand::Confirm {
        confirmed_at: at("2024-03-02T10:00:00Z"),
    }
}

fn confirmed() -> OrderEvent {
    OrderEvent::OrderConfirmed {
        confirmed_at: at("2024-03-02T10:00:00Z"),
    }
}

fn cancel(reason: &str) -> OrderCommand {
    OrderCommand::Cancel {
        reason: reason.into(),
        cancelled_at: at("2024-03-03T10:00:00Z"),
    }
}

fn cancelled(reason: &str) -> OrderEvent {
    OrderEvent::OrderCancelled {
        reason: reason.into(),
        cancelled_at: at("2024-03-03T10:00:00Z"),
    }
}

fn given(events: Vec<OrderEvent>) -> AggregateTestExecutor<Order> {
    TestFramework::<Order>::with(()).given(events)
}

fn history(tail: &[OrderEvent]) -> Vec<OrderEvent> {
    a_draft().into_iter().chain(tail.iter().cloned()).collect()
}

fn invalid(from: OrderStatus, action: &'static str) -> OrderError {
    OrderError::InvalidTransition { from, action }
}

// --- Draft -----------------------------------------------------------------------------------

#[test]
fn drafting_an_order_records_the_customer_vehicle_and_price() {
    given(vec![])
        .when(draft(rub("1500000")))
        .then_expect_events(a_draft());
}

#[test]
fn drafting_an_order_that_already_exists_is_refused() {
    for events in [a_draft(), history(&[cancelled("changed mind")])] {
        given(events)
            .when(draft(rub("1500000")))
            .then_expect_error(OrderError::AlreadyDrafted);
    }
}

#[test]
fn drafting_at_a_zero_or_negative_price_is_refused() {
    for price in [rub("0"), rub("-1")] {
        given(vec![])
            .when(draft(price))
            .then_expect_error(OrderError::NonPositivePrice);
    }
}

#[test]
fn every_command_on_an_order_never_drafted_is_refused_as_not_found() {
    for command in [apply_discount(percent("5")), confirm(), cancel("no reason")] {
        given(vec![])
            .when(command)
            .then_expect_error(OrderError::NotDrafted);
    }
}

// --- ApplyDiscount ---------------------------------------------------------------------------

#[test]
fn a_percentage_discount_is_computed_from_the_price() {
    given(a_draft())
        .when(apply_discount(percent("7")))
        .then_expect_events(vec![discount_applied(percent("7"), "105000", "1395000")]);
}

#[test]
fn a_percentage_discount_rounds_half_a_kopeck_away_from_zero() {
    // 12.5% of 1 000 000.20 is 125 000.025: banker's rounding would give .02.
    given(vec![drafted(rub("1000000.20"))])
        .when(apply_discount(percent("12.5")))
        .then_expect_events(vec![discount_applied(
            percent("12.5"),
            "125000.03",
            "875000.17",
        )]);
}

#[test]
fn a_fixed_discount_reduces_the_total() {
    given(a_draft())
        .when(apply_discount(fixed(rub("50000"))))
        .then_expect_events(vec![discount_applied(
            fixed(rub("50000")),
            "50000",
            "1450000",
        )]);
}

#[test]
fn a_new_discount_replaces_the_previous_one_and_is_computed_from_the_price() {
    given(history(&[discount_applied(
        percent("10"),
        "150000",
        "1350000",
    )]))
    .when(apply_discount(fixed(rub("20000"))))
    .then_expect_events(vec![discount_applied(
        fixed(rub("20000")),
        "20000",
        "1480000",
    )]);
}

#[test]
fn applying_the_discount_already_in_force_changes_nothing() {
    given(history(&[discount_applied(
        percent("10"),
        "150000",
        "1350000",
    )]))
    .when(apply_discount(percent("10.0")))
    .then_expect_events(vec![]);
}

#[test]
fn a_discount_of_the_whole_price_brings_the_total_to_zero() {
    given(a_draft())
        .when(apply_discount(percent("100")))
        .then_expect_events(vec![discount_applied(percent("100"), "1500000", "0")]);
    given(a_draft())
        .when(apply_discount(fixed(rub("1500000"))))
        .then_expect_events(vec![discount_applied(
            fixed(rub("1500000")),
            "1500000",
            "0",
        )]);
}

#[test]
fn a_percentage_of_zero_or_less_or_above_100_is_refused() {
    for value in ["0", "-5", "100.01", "250"] {
        given(a_draft())
            .when(apply_discount(percent(value)))
            .then_expect_error(OrderError::InvalidPercentage { percent: d(value) });
    }
}

#[test]
fn a_fixed_discount_of_zero_or_less_is_refused() {
    for amount in [rub("0"), rub("-100")] {
        given(a_draft())
            .when(apply_discount(fixed(amount)))
            .then_expect_error(OrderError::NonPositiveDiscount);
    }
}

#[test]
fn a_fixed_discount_larger_than_the_price_is_refused() {
    given(a_draft())
        .when(apply_discount(fixed(rub("1500000.01"))))
        .then_expect_error(OrderError::DiscountExceedsPrice {
            discount: rub("1500000.01"),
            price: rub("1500000"),
        });
}

#[test]
fn a_fixed_discount_in_another_currency_is_refused() {
    let dollars = Money::from_minor_units(10_000, Currency::USD);
    given(a_draft())
        .when(apply_discount(fixed(dollars)))
        .then_expect_error(OrderError::CurrencyMismatch {
            expected: Currency::RUB,
            found: Currency::USD,
        });
}

#[test]
fn discounting_a_confirmed_or_cancelled_order_is_refused() {
    for (tail, status) in [
        (vec![confirmed()], OrderStatus::Confirmed),
        (vec![cancelled("changed mind")], OrderStatus::Cancelled),
    ] {
        given(history(&tail))
            .when(apply_discount(percent("5")))
            .then_expect_error(invalid(status, "apply a discount"));
    }
}

// --- Confirm ---------------------------------------------------------------------------------

#[test]
fn confirming_a_draft_records_when_it_was_confirmed() {
    given(a_draft())
        .when(confirm())
        .then_expect_events(vec![confirmed()]);
}

#[test]
fn confirming_a_confirmed_or_cancelled_order_is_refused() {
    for (tail, status) in [
        (vec![confirmed()], OrderStatus::Confirmed),
        (vec![cancelled("changed mind")], OrderStatus::Cancelled),
    ] {
        given(history(&tail))
            .when(confirm())
            .then_expect_error(invalid(status, "confirm"));
    }
}

// --- Cancel ----------------------------------------------------------------------------------

#[test]
fn cancelling_a_draft_records_the_trimmed_reason() {
    given(a_draft())
        .when(cancel("  changed mind "))
        .then_expect_events(vec![cancelled("changed mind")]);
}

#[test]
fn cancelling_a_confirmed_order_is_allowed() {
    given(history(&[confirmed()]))
        .when(cancel("financing fell through"))
        .then_expect_events(vec![cancelled("financing fell through")]);
}

#[test]
fn cancelling_without_a_reason_is_refused() {
    given(a_draft())
        .when(cancel(" \n"))
        .then_expect_error(OrderError::EmptyReason);
}

#[test]
fn cancelling_a_cancelled_order_is_refused() {
    given(history(&[cancelled("changed mind")]))
        .when(cancel("again"))
        .then_expect_error(invalid(OrderStatus::Cancelled, "cancel"));
}

// --- The status machine ----------------------------------------------------------------------

#[test]
fn a_paid_order_cannot_be_cancelled_until_refunds_exist() {
    assert_eq!(
        transition(OrderStatus::Paid, Action::Cancel),
        Err(invalid(OrderStatus::Paid, "cancel"))
    );
}

#[test]
fn completed_and_cancelled_orders_refuse_every_action() {
    for from in [OrderStatus::Completed, OrderStatus::Cancelled] {
        for action in [
            Action::Draft,
            Action::ApplyDiscount,
            Action::Confirm,
            Action::Cancel,
        ] {
            assert!(transition(from, action).is_err(), "{from} {action:?}");
        }
    }
}

#[test]
fn statuses_have_stable_names_and_only_completed_and_cancelled_are_terminal() {
    use OrderStatus::*;
    let names = [NotDrafted, Draft, Confirmed, Paid, Completed, Cancelled]
        .map(|status| (status.as_str(), status.is_terminal()));
    assert_eq!(
        names,
        [
            ("NOT_DRAFTED", false),
            ("DRAFT", false),
            ("CONFIRMED", false),
            ("PAID", false),
            ("COMPLETED", true),
            ("CANCELLED", true)
        ]
    );
}

// --- State, errors, events -------------------------------------------------------------------

#[test]
fn the_order_exposes_its_parties_price_discount_and_total() {
    let mut order = Order::default();
    assert_eq!(
        (order.status(), order.total()),
        (OrderStatus::NotDrafted, None)
    );
    for event in history(&[discount_applied(percent("10"), "150000", "1350000")]) {
        order.apply(event);
    }
    assert_eq!(order.status(), OrderStatus::Draft);
    assert_eq!(order.customer_id(), Some(customer()));
    assert_eq!(order.vehicle_id(), Some(vehicle()));
    assert_eq!(order.price(), Some(rub("1500000")));
    assert_eq!(order.discount(), Some(&percent("10")));
    assert_eq!(order.total(), Some(rub("1350000")));
}

#[test]
fn every_error_has_a_stable_code_and_a_readable_message() {
    let cases = [
        (OrderError::NotDrafted, "NOT_FOUND"),
        (OrderError::AlreadyDrafted, "ORDER_ALREADY_EXISTS"),
        (OrderError::NonPositivePrice, "VALIDATION"),
        (
            OrderError::InvalidPercentage { percent: d("0") },
            "VALIDATION",
        ),
        (OrderError::NonPositiveDiscount, "VALIDATION"),
        (
            OrderError::CurrencyMismatch {
                expected: Currency::RUB,
                found: Currency::EUR,
            },
            "VALIDATION",
        ),
        (OrderError::EmptyReason, "VALIDATION"),
        (
            OrderError::DiscountExceedsPrice {
                discount: rub("2"),
                price: rub("1"),
            },
            "DISCOUNT_EXCEEDS_PRICE",
        ),
        (
            invalid(OrderStatus::Cancelled, "confirm"),
            "INVALID_ORDER_TRANSITION",
        ),
    ];
    for (error, code) in cases {
        assert_eq!(error.code(), code, "{error:?}");
    }
    assert_eq!(
        invalid(OrderStatus::Cancelled, "confirm").to_string(),
        "cannot confirm: the order is CANCELLED"
    );
    assert_eq!(
        OrderError::DiscountExceedsPrice {
            discount: rub("2"),
            price: rub("1")
        }
        .to_string(),
        "discount 2.00 RUB exceeds the price 1.00 RUB"
    );
}

#[test]
fn event_types_name_the_serialized_variant_and_its_version() {
    let events = history(&[
        discount_applied(percent("10"), "150000", "1350000"),
        confirmed(),
        cancelled("changed mind"),
    ]);
    for event in events {
        let json = serde_json::to_value(&event).unwrap();
        let tag = json.as_object().unwrap().keys().next().unwrap().clone();
        assert_eq!(event.event_type(), tag);
        let version = match event {
            OrderEvent::DiscountApplied { .. } => "2.0",
            _ => "1.0",
        };
        assert_eq!(event.event_version(), version, "{tag}");
        assert_eq!(serde_json::from_value::<OrderEvent>(json).unwrap(), event);
    }
}

// --- Properties over random command sequences ------------------------------------------------

fn command() -> impl Strategy<Value = OrderCommand> {
    let price =
        prop::sample::select(vec!["-1", "0", "1000000.20", "1500000", "0.01"]).prop_map(rub);
    let percentage = prop::sample::select(vec!["-5", "0", "10", "12.5", "33.333", "100", "101"])
        .prop_map(percent);
    let fixed_amount = prop_oneof![
        prop::sample::select(vec!["0", "0.01", "50000", "1000000.20", "2000000"]).prop_map(rub),
        Just(Money::from_minor_units(10_000, Currency::USD)),
    ]
    .prop_map(fixed);
    prop_oneof![
        price.prop_map(draft),
        prop_oneof![percentage, fixed_amount].prop_map(apply_discount),
        Just(confirm()),
        prop::sample::select(vec!["changed mind", " "]).prop_map(cancel),
    ]
}

/// One command's effect: the state before and after, and what `handle` returned.
struct Step {
    before: Order,
    after: Order,
    outcome: Result<Vec<OrderEvent>, OrderError>,
}

fn run(commands: Vec<OrderCommand>) -> Vec<Step> {
    let mut order = Order::default();
    commands
        .into_iter()
        .map(|command| {
            let before = order.clone();
            let outcome = execute(&mut order, command, &());
            Step {
                before,
                after: order.clone(),
                outcome,
            }
        })
        .collect()
}

proptest! {
    #[test]
    fn a_completed_or_cancelled_order_never_changes_again(commands in prop::collection::vec(command(), 0..30)) {
        for step in run(commands) {
            if step.before.status().is_terminal() {
                prop_assert!(step.outcome.is_err(), "{:?}", step.outcome);
                prop_assert_eq!(step.before, step.after);
            }
        }
    }

    #[test]
    fn the_total_is_never_negative_and_never_exceeds_the_price(commands in prop::collection::vec(command(), 0..30)) {
        for step in run(commands) {
            let order = step.after;
            prop_assert_eq!(order.total().is_some(), order.price().is_some());
            if let (Some(total), Some(price)) = (order.total(), order.price()) {
                prop_assert!(!total.is_negative(), "total {}", total);
                prop_assert_eq!(total.currency(), price.currency());
                prop_assert!(total.amount() <= price.amount(), "total {} above price {}", total, price);
                prop_assert_eq!(total.amount().scale(), 2);
            }
        }
    }

    #[test]
    fn events_and_snapshots_survive_a_json_round_trip(commands in prop::collection::vec(command(), 0..30)) {
        for step in run(commands) {
            for event in step.outcome.unwrap_or_default() {
                let json = serde_json::to_string(&event).unwrap();
                prop_assert_eq!(serde_json::from_str::<OrderEvent>(&json).unwrap(), event);
            }
            let json = serde_json::to_string(&step.after).unwrap();
            prop_assert_eq!(serde_json::from_str::<Order>(&json).unwrap(), step.after);
        }
    }
}

// --- Payments, refunds and handover ----------------------------------------------------------

fn payment(n: u128) -> Uuid {
    Uuid::from_u128(1000 + n)
}

fn refund_id(n: u128) -> Uuid {
    Uuid::from_u128(2000 + n)
}

fn record_payment(n: u128, amount: &str) -> OrderCommand {
    OrderCommand::RecordPayment {
        payment_id: payment(n),
        amount: rub(amount),
        method: PaymentMethodKind::Card,
        recorded_at: at("2024-03-04T10:00:00Z"),
    }
}

fn payment_recorded(n: u128, amount: &str, paid_total: &str) -> OrderEvent {
    OrderEvent::OrderPaymentRecorded {
        payment_id: payment(n),
        amount: rub(amount),
        method: PaymentMethodKind::Card,
        paid_total: rub(paid_total),
        recorded_at: at("2024-03-04T10:00:00Z"),
    }
}

fn paid() -> OrderEvent {
    OrderEvent::OrderPaid {
        paid_at: at("2024-03-04T10:00:00Z"),
    }
}

fn record_refund(n: u128, refund: u128, amount: &str) -> OrderCommand {
    OrderCommand::RecordRefund {
        payment_id: payment(n),
        refund_id: refund_id(refund),
        amount: rub(amount),
        recorded_at: at("2024-03-05T10:00:00Z"),
    }
}

fn refund_recorded(n: u128, refund: u128, amount: &str, paid_total: &str) -> OrderEvent {
    OrderEvent::OrderRefundRecorded {
        payment_id: payment(n),
        refund_id: refund_id(refund),
        amount: rub(amount),
        paid_total: rub(paid_total),
        recorded_at: at("2024-03-05T10:00:00Z"),
    }
}

fn reopened() -> OrderEvent {
    OrderEvent::OrderBalanceReopened {
        reopened_at: at("2024-03-05T10:00:00Z"),
    }
}

fn hand_over() -> OrderCommand {
    OrderCommand::HandOver {
        handed_over_at: at("2024-03-06T10:00:00Z"),
    }
}

fn handed_over() -> OrderEvent {
    OrderEvent::OrderHandedOver {
        handed_over_at: at("2024-03-06T10:00:00Z"),
    }
}

/// A confirmed order for 1 500 000 with 500 000 paid by payment 1.
fn partly_paid() -> Vec<OrderEvent> {
    history(&[confirmed(), payment_recorded(1, "500000", "500000")])
}

/// A confirmed order for 1 500 000 paid in two parts.
fn fully_paid() -> Vec<OrderEvent> {
    history(&[
        confirmed(),
        payment_recorded(1, "500000", "500000"),
        payment_recorded(2, "1000000", "1500000"),
        paid(),
    ])
}

#[test]
fn a_payment_on_a_confirmed_order_raises_the_paid_total() {
    given(history(&[confirmed()]))
        .when(record_payment(1, "500000"))
        .then_expect_events(vec![payment_recorded(1, "500000", "500000")]);
}

#[test]
fn the_payment_that_covers_the_total_makes_the_order_paid() {
    given(partly_paid())
        .when(record_payment(2, "1000000"))
        .then_expect_events(vec![payment_recorded(2, "1000000", "1500000"), paid()]);
}

#[test]
fn recording_a_payment_again_changes_nothing_even_after_handover() {
    given(partly_paid())
        .when(record_payment(1, "500000"))
        .then_expect_events(vec![]);
    let mut completed = fully_paid();
    completed.push(handed_over());
    given(completed)
        .when(record_payment(2, "1000000"))
        .then_expect_events(vec![]);
}

#[test]
fn a_payment_larger_than_the_balance_is_refused() {
    given(partly_paid())
        .when(record_payment(2, "1000000.01"))
        .then_expect_error(OrderError::PaymentExceedsBalance {
            amount: rub("1000000.01"),
            balance: rub("1000000"),
        });
}

#[test]
fn a_payment_of_zero_or_in_another_currency_is_refused() {
    given(history(&[confirmed()]))
        .when(record_payment(1, "0"))
        .then_expect_error(OrderError::NonPositiveAmount);
    given(history(&[confirmed()]))
        .when(OrderCommand::RecordPayment {
            payment_id: payment(1),
            amount: Money::from_minor_units(100, Currency::USD),
            method: PaymentMethodKind::Cash,
            recorded_at: at("2024-03-04T10:00:00Z"),
        })
        .then_expect_error(OrderError::CurrencyMismatch {
            expected: Currency::RUB,
            found: Currency::USD,
        });
}

#[test]
fn only_a_confirmed_order_takes_payments() {
    for (tail, status) in [
        (vec![], OrderStatus::Draft),
        (vec![cancelled("changed mind")], OrderStatus::Cancelled),
    ] {
        given(history(&tail))
            .when(record_payment(1, "1"))
            .then_expect_error(invalid(status, "record a payment"));
    }
    given(fully_paid())
        .when(record_payment(3, "1"))
        .then_expect_error(invalid(OrderStatus::Paid, "record a payment"));
    given(vec![])
        .when(record_payment(1, "1"))
        .then_expect_error(OrderError::NotDrafted);
}

#[test]
fn a_refund_lowers_the_paid_total() {
    given(partly_paid())
        .when(record_refund(1, 1, "200000"))
        .then_expect_events(vec![refund_recorded(1, 1, "200000", "300000")]);
}

#[test]
fn a_refund_of_a_paid_order_takes_it_back_to_confirmed() {
    given(fully_paid())
        .when(record_refund(2, 1, "0.01"))
        .then_expect_events(vec![
            refund_recorded(2, 1, "0.01", "1499999.99"),
            reopened(),
        ]);
}

#[test]
fn recording_a_refund_again_changes_nothing() {
    let mut events = partly_paid();
    events.push(refund_recorded(1, 1, "200000", "300000"));
    given(events)
        .when(record_refund(1, 1, "200000"))
        .then_expect_events(vec![]);
}

#[test]
fn reusing_a_refund_id_for_another_payment_or_amount_is_refused() {
    let mut events = fully_paid();
    events.push(refund_recorded(1, 1, "200000", "1300000"));
    events.push(reopened());
    for command in [record_refund(2, 1, "200000"), record_refund(1, 1, "1")] {
        given(events.clone())
            .when(command)
            .then_expect_error(OrderError::RefundIdReused {
                refund_id: refund_id(1),
            });
    }
}

#[test]
fn a_refund_larger_than_the_payment_still_contributes_is_refused() {
    let mut events = partly_paid();
    events.push(refund_recorded(1, 1, "200000", "300000"));
    given(events)
        .when(record_refund(1, 2, "300000.01"))
        .then_expect_error(OrderError::RefundExceedsPaid {
            amount: rub("300000.01"),
            recorded: rub("300000"),
        });
}

#[test]
fn a_refund_of_a_payment_not_recorded_here_is_refused() {
    given(partly_paid())
        .when(record_refund(9, 1, "1"))
        .then_expect_error(OrderError::PaymentNotRecorded {
            payment_id: payment(9),
        });
}

#[test]
fn a_refund_of_zero_is_refused() {
    given(partly_paid())
        .when(record_refund(1, 1, "0"))
        .then_expect_error(OrderError::NonPositiveAmount);
}

#[test]
fn a_refund_after_handover_is_refused() {
    let mut completed = fully_paid();
    completed.push(handed_over());
    given(completed)
        .when(record_refund(1, 1, "1"))
        .then_expect_error(invalid(OrderStatus::Completed, "record a refund"));
}

#[test]
fn handing_over_a_paid_order_completes_it() {
    given(fully_paid())
        .when(hand_over())
        .then_expect_events(vec![handed_over()]);
}

#[test]
fn handing_over_an_order_not_paid_is_refused() {
    for (events, status) in [
        (a_draft(), OrderStatus::Draft),
        (partly_paid(), OrderStatus::Confirmed),
        (history(&[cancelled("x")]), OrderStatus::Cancelled),
    ] {
        given(events)
            .when(hand_over())
            .then_expect_error(invalid(status, "hand over"));
    }
    let mut completed = fully_paid();
    completed.push(handed_over());
    given(completed)
        .when(hand_over())
        .then_expect_error(invalid(OrderStatus::Completed, "hand over"));
}

#[test]
fn cancelling_an_order_that_holds_money_requires_refunds() {
    given(partly_paid())
        .when(cancel("customer walked away"))
        .then_expect_error(OrderError::RefundsRequired {
            paid_total: rub("500000"),
        });
    given(fully_paid())
        .when(cancel("customer walked away"))
        .then_expect_error(OrderError::RefundsRequired {
            paid_total: rub("1500000"),
        });
}

#[test]
fn a_fully_refunded_order_can_be_cancelled() {
    let mut events = fully_paid();
    events.extend([
        refund_recorded(1, 1, "500000", "1000000"),
        reopened(),
        refund_recorded(2, 2, "1000000", "0"),
    ]);
    given(events)
        .when(cancel("customer walked away"))
        .then_expect_events(vec![cancelled("customer walked away")]);
}

#[test]
fn the_order_exposes_its_paid_total_balance_and_recorded_payments() {
    let mut order = Order::default();
    for event in partly_paid() {
        order.apply(event);
    }
    order.apply(refund_recorded(1, 1, "100000", "400000"));
    assert_eq!(order.paid_total(), Some(rub("400000")));
    assert_eq!(order.balance_due(), Some(rub("1100000")));
    assert_eq!(order.recorded_payment(payment(1)), Some(rub("400000")));
    assert_eq!(order.recorded_payment(payment(2)), None);
    assert!(order.has_refund(refund_id(1)));
    assert!(!order.has_refund(refund_id(2)));
}

#[test]
fn a_snapshot_taken_before_payments_existed_still_loads_with_nothing_paid() {
    let mut order = Order::default();
    for event in history(&[confirmed()]) {
        order.apply(event);
    }
    let mut json = serde_json::to_value(&order).unwrap();
    let fields = json.as_object_mut().unwrap();
    for field in ["paid_total", "payments", "refunds"] {
        fields.remove(field);
    }
    let mut old: Order = serde_json::from_value(json).unwrap();
    assert_eq!(old.paid_total(), Some(rub("0")));
    assert_eq!(old.balance_due(), Some(rub("1500000")));
    assert_eq!(
        execute(&mut old, record_payment(1, "1500000"), &()).unwrap(),
        vec![payment_recorded(1, "1500000", "1500000"), paid()]
    );
}

#[test]
fn the_new_errors_have_stable_codes() {
    let cases = [
        (OrderError::NonPositiveAmount, "VALIDATION"),
        (
            OrderError::RefundIdReused {
                refund_id: refund_id(1),
            },
            "VALIDATION",
        ),
        (
            OrderError::PaymentExceedsBalance {
                amount: rub("2"),
                balance: rub("1"),
            },
            "PAYMENT_EXCEEDS_BALANCE",
        ),
        (
            OrderError::PaymentNotRecorded {
                payment_id: payment(1),
            },
            "PAYMENT_NOT_RECORDED",
        ),
        (
            OrderError::RefundExceedsPaid {
                amount: rub("2"),
                recorded: rub("1"),
            },
            "REFUND_EXCEEDS_PAID",
        ),
        (
            OrderError::RefundsRequired {
                paid_total: rub("1"),
            },
            "REFUNDS_REQUIRED",
        ),
    ];
    for (error, code) in cases {
        assert_eq!(error.code(), code, "{error:?}");
    }
}

#[test]
fn the_new_event_types_name_the_serialized_variant_at_version_1_0() {
    let events = vec![
        payment_recorded(1, "1", "1"),
        paid(),
        refund_recorded(1, 1, "1", "0"),
        reopened(),
        handed_over(),
    ];
    for event in events {
        let json = serde_json::to_value(&event).unwrap();
        let tag = json.as_object().unwrap().keys().next().unwrap().clone();
        assert_eq!(event.event_type(), tag);
        let version = match event {
            OrderEvent::DiscountApplied { .. } => "2.0",
            _ => "1.0",
        };
        assert_eq!(event.event_version(), version, "{tag}");
        assert_eq!(serde_json::from_value::<OrderEvent>(json).unwrap(), event);
    }
}

// --- Properties over random payments and refunds ---------------------------------------------

use crate::payment::{Payment, PaymentCommand, PaymentMethod, PaymentStatus};

/// One step of a sale's money, as the command layer performs it.
#[derive(Clone, Debug)]
enum MoneyStep {
    /// Initiate and complete payment `n` for `amount`, then record it on the order.
    Pay {
        n: u128,
        amount: &'static str,
    },
    /// Refund `amount` of payment `n` under refund id `refund`, then record it on the order.
    Refund {
        n: u128,
        refund: u128,
        amount: &'static str,
    },
    HandOver,
    Cancel,
}

fn money_step() -> impl Strategy<Value = MoneyStep> {
    let amount = prop::sample::select(vec!["0.01", "100000", "250000.50", "500000", "1000000"]);
    prop_oneof![
        (0..4u128, amount.clone()).prop_map(|(n, amount)| MoneyStep::Pay { n, amount }),
        (0..4u128, 0..6u128, amount).prop_map(|(n, refund, amount)| MoneyStep::Refund {
            n,
            refund,
            amount
        }),
        Just(MoneyStep::HandOver),
        Just(MoneyStep::Cancel),
    ]
}

/// A sale of a 1 500 000 car: the order, its payments, and every event the order emitted.
struct Sale {
    order: Order,
    payments: std::collections::BTreeMap<u128, Payment>,
    order_events: Vec<OrderEvent>,
}

fn sell(steps: Vec<MoneyStep>) -> Vec<Sale> {
    let mut order = Order::default();
    let mut order_events = Vec::new();
    for command in [draft(rub("1500000")), confirm()] {
        order_events.extend(execute(&mut order, command, &()).unwrap());
    }
    let mut payments = std::collections::BTreeMap::<u128, Payment>::new();
    let mut sales = Vec::new();
    for step in steps {
        match step {
            MoneyStep::Pay { n, amount } => {
                // The command layer checks the order would take the payment before taking money.
                let record = record_payment(n, amount);
                if execute(&mut order.clone(), record.clone(), &()).is_err() {
                    continue;
                }
                let payment = payments.entry(n).or_default();
                let initiate = PaymentCommand::Initiate {
                    order_id: Uuid::from_u128(9),
                    customer_id: customer(),
                    amount: rub(amount),
                    method: PaymentMethod::Cash,
                    initiated_at: at("2024-03-04T09:00:00Z"),
                };
                let complete = PaymentCommand::Complete {
                    completed_at: at("2024-03-04T09:30:00Z"),
                };
                if execute(payment, initiate, &()).is_err()
                    || execute(payment, complete, &()).is_err()
                {
                    continue;
                }
                order_events.extend(execute(&mut order, record, &()).unwrap());
            }
            MoneyStep::Refund { n, refund, amount } => {
                let record = record_refund(n, refund, amount);
                if execute(&mut order.clone(), record.clone(), &()).is_err() {
                    continue;
                }
                let Some(payment) = payments.get_mut(&n) else {
                    continue;
                };
                let command = PaymentCommand::Refund {
                    refund_id: refund_id(refund),
                    amount: rub(amount),
                    reason: "returned".into(),
                    refunded_at: at("2024-03-05T09:00:00Z"),
                };
                if execute(payment, command, &()).is_err() {
                    continue;
                }
                order_events.extend(execute(&mut order, record, &()).unwrap());
            }
            MoneyStep::HandOver => {
                order_events.extend(execute(&mut order, hand_over(), &()).unwrap_or_default());
            }
            MoneyStep::Cancel => {
                order_events.extend(execute(&mut order, cancel("gone"), &()).unwrap_or_default());
            }
        }
        sales.push(Sale {
            order: order.clone(),
            payments: payments.clone(),
            order_events: order_events.clone(),
        });
    }
    sales
}

proptest! {
    #[test]
    fn the_paid_total_is_completed_payments_less_refunds(steps in prop::collection::vec(money_step(), 0..40)) {
        for sale in sell(steps) {
            let net: i64 = sale
                .payments
                .values()
                .filter_map(Payment::net_paid)
                .map(|m| m.minor_units())
                .sum();
            let paid_total = sale.order.paid_total().unwrap();
            prop_assert_eq!(paid_total.minor_units(), net);
            prop_assert!(paid_total.minor_units() >= 0);
            // Readers take the paid total from the latest payment or refund event, never adding up.
            let recorded = sale.order_events.iter().rev().find_map(|event| match event {
                OrderEvent::OrderPaymentRecorded { paid_total, .. }
                | OrderEvent::OrderRefundRecorded { paid_total, .. } => Some(*paid_total),
                _ => None,
            });
            prop_assert_eq!(recorded.unwrap_or(rub("0")), paid_total);
            for payment in sale.payments.values() {
                let (amount, refunded) = (payment.amount().unwrap(), payment.refunded_total().unwrap());
                prop_assert!(refunded.minor_units() <= amount.minor_units());
                prop_assert!(matches!(payment.status(), PaymentStatus::Completed | PaymentStatus::Refunded));
            }
        }
    }

    #[test]
    fn an_order_is_paid_exactly_when_payments_cover_its_total(steps in prop::collection::vec(money_step(), 0..40)) {
        for sale in sell(steps) {
            let order = &sale.order;
            let covered = order.paid_total().unwrap().minor_units() >= order.total().unwrap().minor_units();
            match order.status() {
                OrderStatus::Paid | OrderStatus::Completed => prop_assert!(covered),
                OrderStatus::Confirmed => prop_assert!(!covered),
                OrderStatus::Cancelled => prop_assert!(order.paid_total().unwrap().is_zero()),
                other => prop_assert!(false, "unexpected status {}", other),
            }
            prop_assert!(order.balance_due().unwrap().minor_units() >= 0);
        }
    }
}

#[test]
fn a_promo_codes_discount_replaces_the_desks_but_nothing_replaces_it() {
    let promotion_id = Uuid::from_u128(7);
    let by_code = OrderEvent::DiscountApplied {
        discount: percent("10"),
        discount_amount: rub("150000"),
        total: rub("1350000"),
        promotion_id: Some(promotion_id),
    };
    let with = |event: OrderEvent| {
        let mut given = a_draft();
        given.push(event);
        given
    };
    TestFramework::<Order>::with(())
        .given(with(discount_applied(percent("5"), "75000", "1425000")))
        .when(OrderCommand::ApplyDiscount {
            discount: percent("10"),
            promotion_id: Some(promotion_id),
        })
        .then_expect_events(vec![by_code.clone()]);
    TestFramework::<Order>::with(())
        .given(with(by_code.clone()))
        .when(apply_discount(percent("20")))
        .then_expect_error(OrderError::PromoCodeApplied { promotion_id });
    TestFramework::<Order>::with(())
        .given(with(by_code))
        .when(OrderCommand::ApplyDiscount {
            discount: percent("10"),
            promotion_id: Some(promotion_id),
        })
        .then_expect_events(vec![]);
}

#[test]
fn a_discount_stored_at_version_1_is_read_as_the_desks() {
    use cqrs_es::persist::SerializedEvent;
    let stored = SerializedEvent {
        aggregate_id: "o".into(),
        sequence: 2,
        aggregate_type: "Order".into(),
        event_type: "DiscountApplied".into(),
        event_version: "1.0".into(),
        payload: serde_json::json!({"DiscountApplied": {
            "discount": {"Percentage": {"percent": "5"}},
            "discount_amount": {"amount": "75000.00", "currency": "RUB"},
            "total": {"amount": "1425000.00", "currency": "RUB"}
        }}),
        metadata: serde_json::json!({}),
    };
    let upcaster = &crate::order::upcasters()[0];
    assert!(upcaster.can_upcast(&stored.event_type, &stored.event_version));
    let event: OrderEvent = serde_json::from_value(upcaster.upcast(stored).payload).unwrap();
    assert_eq!(event, discount_applied(percent("5"), "75000", "1425000"));
}
