use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use cqrs_es::test::{AggregateTestExecutor, TestFramework};
use proptest::prelude::*;

use super::*;
use crate::contact::{Email, Phone};
use crate::test_support::execute;

mod model;

fn email(address: &str) -> Email {
    Email::parse(address).unwrap()
}

fn phone(number: &str) -> Phone {
    Phone::parse(number).unwrap()
}

fn registered_at() -> DateTime<Utc> {
    "2024-03-01T10:00:00Z".parse().unwrap()
}

fn register_as(full_name: &str, address: &str) -> CustomerCommand {
    CustomerCommand::Register {
        full_name: full_name.into(),
        email: email("ivan@example.ru"),
        phone: phone("+7 916 123 45 67"),
        address: address.into(),
        registered_at: registered_at(),
    }
}

fn register() -> CustomerCommand {
    register_as("Ivan Petrov", "Moscow, Tverskaya 1")
}

fn registered() -> CustomerEvent {
    CustomerEvent::CustomerRegistered {
        full_name: "Ivan Petrov".into(),
        email: email("ivan@example.ru"),
        phone: phone("+7 916 123 45 67"),
        address: "Moscow, Tverskaya 1".into(),
        registered_at: registered_at(),
    }
}

fn change(email: Option<Email>, phone: Option<Phone>, address: Option<&str>) -> CustomerCommand {
    CustomerCommand::ChangeContactDetails {
        email,
        phone,
        address: address.map(str::to_owned),
    }
}

fn changed(email: Option<Email>, phone: Option<Phone>, address: Option<&str>) -> CustomerEvent {
    CustomerEvent::CustomerContactDetailsChanged {
        email,
        phone,
        address: address.map(str::to_owned),
    }
}

fn given(events: Vec<CustomerEvent>) -> AggregateTestExecutor<Customer> {
    TestFramework::<Customer>::with(()).given(events)
}

// --- Register --------------------------------------------------------------------------------

#[test]
fn registering_a_customer_records_their_details() {
    given(vec![])
        .when(register())
        .then_expect_events(vec![registered()]);
}

#[test]
fn registering_trims_the_name_and_address() {
    given(vec![])
        .when(CustomerCommand::Register {
            full_name: "  Ivan Petrov ".into(),
            email: email("ivan@example.ru"),
            phone: phone("8 (916) 123-45-67"),
            address: "\tMoscow, Tverskaya 1 ".into(),
            registered_at: registered_at(),
        })
        .then_expect_events(vec![registered()]);
}

#[test]
fn registering_a_customer_twice_is_refused() {
    given(vec![registered()])
        .when(register())
        .then_expect_error(CustomerError::AlreadyRegistered);
}

#[test]
fn registering_without_a_name_is_refused() {
    given(vec![])
        .when(register_as(" ", "Moscow, Tverskaya 1"))
        .then_expect_error(CustomerError::EmptyField { field: "full_name" });
}

#[test]
fn registering_without_an_address_is_refused() {
    given(vec![])
        .when(register_as("Ivan Petrov", ""))
        .then_expect_error(CustomerError::EmptyField { field: "address" });
}

// --- ChangeContactDetails --------------------------------------------------------------------

#[test]
fn changing_the_email_records_only_the_email() {
    given(vec![registered()])
        .when(change(Some(email("ivan@petrov.ru")), None, None))
        .then_expect_events(vec![changed(Some(email("ivan@petrov.ru")), None, None)]);
}

#[test]
fn changing_every_contact_detail_records_them_all() {
    given(vec![registered()])
        .when(change(
            Some(email("ivan@petrov.ru")),
            Some(phone("+7 495 123 45 67")),
            Some(" Kazan, Baumana 5 "),
        ))
        .then_expect_events(vec![changed(
            Some(email("ivan@petrov.ru")),
            Some(phone("+7 495 123 45 67")),
            Some("Kazan, Baumana 5"),
        )]);
}

#[test]
fn details_equal_to_the_current_ones_are_left_out_of_the_event() {
    given(vec![registered()])
        .when(change(
            Some(email("ivan@EXAMPLE.ru")),
            Some(phone("+7 495 123 45 67")),
            Some(" Moscow, Tverskaya 1"),
        ))
        .then_expect_events(vec![changed(None, Some(phone("+7 495 123 45 67")), None)]);
}

#[test]
fn a_change_to_the_same_details_is_refused_as_nothing_to_change() {
    given(vec![registered()])
        .when(change(
            Some(email("ivan@example.ru")),
            Some(phone("8 916 123 45 67")),
            Some("Moscow, Tverskaya 1"),
        ))
        .then_expect_error(CustomerError::NothingToChange);
}

#[test]
fn a_change_with_no_details_is_refused_as_nothing_to_change() {
    given(vec![registered()])
        .when(change(None, None, None))
        .then_expect_error(CustomerError::NothingToChange);
}

#[test]
fn changing_the_address_to_a_blank_one_is_refused() {
    given(vec![registered()])
        .when(change(Some(email("ivan@petrov.ru")), None, Some("  ")))
        .then_expect_error(CustomerError::EmptyField { field: "address" });
}

#[test]
fn changing_the_details_of_an_unregistered_customer_is_refused_as_not_found() {
    given(vec![])
        .when(change(Some(email("ivan@petrov.ru")), None, None))
        .then_expect_error(CustomerError::NotRegistered);
}

#[test]
fn a_later_change_builds_on_the_earlier_one() {
    given(vec![
        registered(),
        changed(Some(email("ivan@petrov.ru")), None, None),
    ])
    .when(change(Some(email("ivan@petrov.ru")), None, Some("Kazan")))
    .then_expect_events(vec![changed(None, None, Some("Kazan"))]);
}

// --- State, errors, events -------------------------------------------------------------------

#[test]
fn the_customer_exposes_their_current_details() {
    let mut customer = Customer::default();
    assert!(!customer.is_registered());
    assert_eq!(customer.full_name(), None);
    customer.apply(registered());
    customer.apply(changed(None, Some(phone("+7 495 123 45 67")), None));
    assert!(customer.is_registered());
    assert_eq!(customer.full_name(), Some("Ivan Petrov"));
    assert_eq!(customer.email(), Some(&email("ivan@example.ru")));
    assert_eq!(customer.phone().map(Phone::as_str), Some("+74951234567"));
    assert_eq!(customer.address(), Some("Moscow, Tverskaya 1"));
}

#[test]
fn every_error_has_a_stable_code_and_a_readable_message() {
    let cases = [
        (CustomerError::NotRegistered, "NOT_FOUND"),
        (
            CustomerError::AlreadyRegistered,
            "CUSTOMER_ALREADY_REGISTERED",
        ),
        (CustomerError::EmptyField { field: "address" }, "VALIDATION"),
        (CustomerError::NothingToChange, "VALIDATION"),
    ];
    for (error, code) in cases {
        assert_eq!(error.code(), code, "{error:?}");
    }
    assert_eq!(
        CustomerError::EmptyField { field: "address" }.to_string(),
        "address must not be empty"
    );
}

#[test]
fn event_types_name_the_serialized_variant_at_version_1_0() {
    for event in [registered(), changed(None, None, Some("Kazan"))] {
        let json = serde_json::to_value(&event).unwrap();
        let tag = json.as_object().unwrap().keys().next().unwrap().clone();
        assert_eq!(event.event_type(), tag);
        assert_eq!(event.event_version(), "1.0");
        assert_eq!(
            serde_json::from_value::<CustomerEvent>(json).unwrap(),
            event
        );
    }
}

// --- Properties over random command sequences ------------------------------------------------

fn command() -> impl Strategy<Value = CustomerCommand> {
    let email = prop::option::of(
        prop::sample::select(vec!["ivan@example.ru", "ivan@petrov.ru"]).prop_map(self::email),
    );
    let phone = prop::option::of(
        prop::sample::select(vec!["+79161234567", "+74951234567"]).prop_map(self::phone),
    );
    let address = prop::option::of(prop::sample::select(vec![
        "Moscow, Tverskaya 1",
        " Kazan ",
        "Kazan",
        "",
    ]));
    prop_oneof![
        1 => Just(register()),
        4 => (email, phone, address).prop_map(|(email, phone, address)| change(email, phone, address)),
    ]
}

proptest! {
    #[test]
    fn events_only_carry_details_that_differ_from_the_current_ones(commands in prop::collection::vec(command(), 0..30)) {
        let mut customer = Customer::default();
        for command in commands {
            let before = customer.clone();
            for event in execute(&mut customer, command, &()).unwrap_or_default() {
                if let CustomerEvent::CustomerContactDetailsChanged { email, phone, address } = event {
                    prop_assert!(email.is_some() || phone.is_some() || address.is_some());
                    prop_assert!(email.is_none_or(|email| Some(&email) != before.email()));
                    prop_assert!(phone.is_none_or(|phone| Some(&phone) != before.phone()));
                    prop_assert!(address.is_none_or(|address| Some(address.as_str()) != before.address()));
                }
            }
            let json = serde_json::to_string(&customer).unwrap();
            prop_assert_eq!(serde_json::from_str::<Customer>(&json).unwrap(), customer.clone());
        }
    }
}
