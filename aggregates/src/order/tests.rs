use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use cqrs_es::test::{AggregateTestExecutor, TestFramework};
use proptest::prelude::*;
use rust_decimal::Decimal;
use uuid::Uuid;

use super::*;
use crate::money::{Currency, Money};
use crate::test_support::execute;

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
    OrderCommand::ApplyDiscount { discount }
}

fn discount_applied(discount: Discount, amount: &str, total: &str) -> OrderEvent {
    OrderEvent::DiscountApplied {
        discount,
        discount_amount: rub(amount),
        total: rub(total),
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
fn event_types_name_the_serialized_variant_at_version_1_0() {
    let events = history(&[
        discount_applied(percent("10"), "150000", "1350000"),
        confirmed(),
        cancelled("changed mind"),
    ]);
    for event in events {
        let json = serde_json::to_value(&event).unwrap();
        let tag = json.as_object().unwrap().keys().next().unwrap().clone();
        assert_eq!(event.event_type(), tag);
        assert_eq!(event.event_version(), "1.0");
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
    fn replaying_the_emitted_events_reproduces_the_state(commands in prop::collection::vec(command(), 0..30)) {
        let steps = run(commands);
        let mut replayed = Order::default();
        for event in steps.iter().filter_map(|step| step.outcome.as_ref().ok()).flatten() {
            replayed.apply(event.clone());
        }
        let last = steps.last().map(|step| step.after.clone()).unwrap_or_default();
        prop_assert_eq!(replayed, last);
    }

    #[test]
    fn a_refused_command_leaves_the_order_unchanged(commands in prop::collection::vec(command(), 0..30)) {
        for step in run(commands) {
            if step.outcome.is_err() {
                prop_assert_eq!(step.before, step.after);
            }
        }
    }

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
