//! The customer's reference model: its rules, written down again from the module docs.

use proptest::prelude::*;

use super::super::*;
use super::{email, phone, registered_at};
use crate::test_support::{Model, assert_reached, reached, run_against_model};

/// The details a registered customer has, as plain strings.
#[derive(Clone, Debug, PartialEq)]
struct Registered {
    full_name: String,
    email: Email,
    phone: Phone,
    address: String,
}

/// `None` until registered.
#[derive(Clone, Debug, Default)]
struct CustomerModel(Option<Registered>);

/// A text field as the rules store it: trimmed, and never blank.
fn filled(value: &str, field: &'static str) -> Result<String, CustomerError> {
    match value.trim() {
        "" => Err(CustomerError::EmptyField { field }),
        trimmed => Ok(trimmed.to_owned()),
    }
}

impl Model<Customer> for CustomerModel {
    type Step = CustomerCommand;

    fn command(&self, step: &CustomerCommand) -> CustomerCommand {
        step.clone()
    }

    fn step(&mut self, command: &CustomerCommand) -> Result<Vec<CustomerEvent>, CustomerError> {
        match command {
            CustomerCommand::Register {
                full_name,
                email,
                phone,
                address,
                registered_at,
            } => {
                if self.0.is_some() {
                    return Err(CustomerError::AlreadyRegistered);
                }
                let registered = Registered {
                    full_name: filled(full_name, "full_name")?,
                    email: email.clone(),
                    phone: phone.clone(),
                    address: filled(address, "address")?,
                };
                let event = CustomerEvent::CustomerRegistered {
                    full_name: registered.full_name.clone(),
                    email: email.clone(),
                    phone: phone.clone(),
                    address: registered.address.clone(),
                    registered_at: *registered_at,
                };
                self.0 = Some(registered);
                Ok(vec![event])
            }
            CustomerCommand::ChangeContactDetails {
                email,
                phone,
                address,
            } => {
                let Some(current) = self.0.as_mut() else {
                    return Err(CustomerError::NotRegistered);
                };
                let address = match address {
                    Some(address) => Some(filled(address, "address")?),
                    None => None,
                };
                let email = email.clone().filter(|email| *email != current.email);
                let phone = phone.clone().filter(|phone| *phone != current.phone);
                let address = address.filter(|address| *address != current.address);
                if (&email, &phone, &address) == (&None, &None, &None) {
                    return Err(CustomerError::NothingToChange);
                }
                current.email = email.clone().unwrap_or(current.email.clone());
                current.phone = phone.clone().unwrap_or(current.phone.clone());
                current.address = address.clone().unwrap_or(current.address.clone());
                Ok(vec![CustomerEvent::CustomerContactDetailsChanged {
                    email,
                    phone,
                    address,
                }])
            }
        }
    }

    fn check(&self, customer: &Customer) -> Result<(), TestCaseError> {
        let model = self.0.as_ref();
        prop_assert_eq!(customer.is_registered(), model.is_some());
        prop_assert_eq!(customer.full_name(), model.map(|m| m.full_name.as_str()));
        prop_assert_eq!(customer.email(), model.map(|m| &m.email));
        prop_assert_eq!(customer.phone(), model.map(|m| &m.phone));
        prop_assert_eq!(customer.address(), model.map(|m| m.address.as_str()));
        Ok(())
    }
}

fn command() -> impl Strategy<Value = CustomerCommand> {
    let text = |values: Vec<&'static str>| prop::sample::select(values).prop_map(str::to_owned);
    // Parsed once: parsing a phone number loads its country's metadata, which is slow.
    let email = prop::sample::select(
        ["ivan@example.ru", "ivan@petrov.ru", "anna@example.ru"]
            .map(self::email)
            .to_vec(),
    );
    let phone = prop::sample::select(
        ["+79161234567", "+7 916 123 45 67", "+74951234567"]
            .map(self::phone)
            .to_vec(),
    );
    let register = (
        text(vec!["Ivan Petrov", "  Anna Ivanova ", " \t"]),
        email.clone(),
        phone.clone(),
        text(vec!["Moscow, Tverskaya 1", " Kazan ", ""]),
    )
        .prop_map(
            |(full_name, email, phone, address)| CustomerCommand::Register {
                full_name,
                email,
                phone,
                address,
                registered_at: registered_at(),
            },
        );
    let change = (
        prop::option::of(email),
        prop::option::of(phone),
        prop::option::of(text(vec![
            "Moscow, Tverskaya 1",
            " Kazan ",
            "Kazan",
            "Kazan, Baumana 5",
            " ",
        ])),
    )
        .prop_map(
            |(email, phone, address)| CustomerCommand::ChangeContactDetails {
                email,
                phone,
                address,
            },
        );
    prop_oneof![1 => register, 4 => change]
}

fn commands() -> impl Strategy<Value = Vec<CustomerCommand>> {
    prop::collection::vec(command(), 0..30)
}

proptest! {
    /// Every decision and every detail shown equal the model's. Guards (each checked by changing
    /// the aggregate so, and seeing this fail): a new address compared with the current one before
    /// trimming (an unchanged " Kazan " recorded as a change), an event that carries an unchanged
    /// email, `apply` forgetting a new phone, a second registration overwriting the first.
    #[test]
    fn a_customer_decides_and_shows_what_the_model_does(steps in commands()) {
        run_against_model::<Customer, _>(CustomerModel::default(), &steps)?;
    }
}

/// The generator reaches every event and every refusal, so the property above compares them all.
#[test]
fn the_generated_commands_reach_every_event_and_refusal() {
    let seen = reached::<Customer, _, _>(CustomerModel::default(), commands(), 256);
    assert_reached(
        &seen,
        &[
            "CustomerRegistered",
            "CustomerContactDetailsChanged",
            "NotRegistered",
            "AlreadyRegistered",
            "EmptyField",
            "NothingToChange",
        ],
    );
}
