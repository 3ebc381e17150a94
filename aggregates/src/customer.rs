//! Customer: a buyer the dealership knows, and how to reach them.
//!
//! Invariants (`handle` enforces them, `apply` re-asserts them with `debug_assert!`):
//! - a customer is registered once, and every later command needs the registration;
//! - the full name and address are never empty and are stored trimmed; the email and phone are
//!   valid by construction ([`Email`], [`Phone`]).
//!
//! Rules:
//! - ChangeContactDetails carries only the details to change (`None` keeps the current one). The
//!   event records only the details that actually differ from the current ones; when none differ,
//!   the command is refused with [`CustomerError::NothingToChange`] so the caller can tell the
//!   clerk nothing was saved.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::contact::{Email, Phone};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum CustomerCommand {
    Register {
        full_name: String,
        email: Email,
        phone: Phone,
        address: String,
        /// When the customer was registered; supplied by the caller's clock.
        registered_at: DateTime<Utc>,
    },
    ChangeContactDetails {
        email: Option<Email>,
        phone: Option<Phone>,
        address: Option<String>,
    },
}

/// What happened to a customer. The payloads are a public contract: see [`crate::upcasters`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum CustomerEvent {
    CustomerRegistered {
        full_name: String,
        email: Email,
        phone: Phone,
        address: String,
        registered_at: DateTime<Utc>,
    },
    /// Only the details that changed are `Some`.
    CustomerContactDetailsChanged {
        email: Option<Email>,
        phone: Option<Phone>,
        address: Option<String>,
    },
}

impl DomainEvent for CustomerEvent {
    fn event_type(&self) -> String {
        let name = match self {
            CustomerEvent::CustomerRegistered { .. } => "CustomerRegistered",
            CustomerEvent::CustomerContactDetailsChanged { .. } => "CustomerContactDetailsChanged",
        };
        name.to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

/// Why a customer command was refused. Nothing was emitted; the customer is unchanged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CustomerError {
    /// The customer was never registered. The caller reports "not found" (a wrong id).
    #[error("customer not found")]
    NotRegistered,
    /// The customer is already registered. The caller reports a conflict; registering is not
    /// retried (contact details are changed with their own command).
    #[error("customer is already registered")]
    AlreadyRegistered,
    /// A required text field is blank. The caller asks for it and submits again.
    #[error("{field} must not be empty")]
    EmptyField { field: &'static str },
    /// The new contact details equal the current ones. The caller tells the clerk nothing was
    /// saved because nothing changed.
    #[error("the contact details are unchanged: nothing to save")]
    NothingToChange,
}

impl CustomerError {
    /// A stable, machine-readable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            CustomerError::NotRegistered => "NOT_FOUND",
            CustomerError::AlreadyRegistered => "CUSTOMER_ALREADY_REGISTERED",
            CustomerError::EmptyField { .. } | CustomerError::NothingToChange => "VALIDATION",
        }
    }
}

/// The state a customer's decisions need: the current details, to compare changes against.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    /// `None` until registered.
    details: Option<Details>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Details {
    full_name: String,
    email: Email,
    phone: Phone,
    address: String,
}

impl Customer {
    pub fn is_registered(&self) -> bool {
        self.details.is_some()
    }

    pub fn full_name(&self) -> Option<&str> {
        self.details.as_ref().map(|d| d.full_name.as_str())
    }

    pub fn email(&self) -> Option<&Email> {
        self.details.as_ref().map(|d| &d.email)
    }

    pub fn phone(&self) -> Option<&Phone> {
        self.details.as_ref().map(|d| &d.phone)
    }

    pub fn address(&self) -> Option<&str> {
        self.details.as_ref().map(|d| d.address.as_str())
    }

    fn decide(&self, command: CustomerCommand) -> Result<CustomerEvent, CustomerError> {
        match (command, &self.details) {
            (CustomerCommand::Register { .. }, Some(_)) => Err(CustomerError::AlreadyRegistered),
            (
                CustomerCommand::Register {
                    full_name,
                    email,
                    phone,
                    address,
                    registered_at,
                },
                None,
            ) => Ok(CustomerEvent::CustomerRegistered {
                full_name: required(&full_name, "full_name")?,
                email,
                phone,
                address: required(&address, "address")?,
                registered_at,
            }),
            (CustomerCommand::ChangeContactDetails { .. }, None) => {
                Err(CustomerError::NotRegistered)
            }
            (
                CustomerCommand::ChangeContactDetails {
                    email,
                    phone,
                    address,
                },
                Some(current),
            ) => {
                let address = address
                    .map(|address| required(&address, "address"))
                    .transpose()?;
                let email = email.filter(|email| *email != current.email);
                let phone = phone.filter(|phone| *phone != current.phone);
                let address = address.filter(|address| *address != current.address);
                if email.is_none() && phone.is_none() && address.is_none() {
                    return Err(CustomerError::NothingToChange);
                }
                Ok(CustomerEvent::CustomerContactDetailsChanged {
                    email,
                    phone,
                    address,
                })
            }
        }
    }
}

/// `value` trimmed, or [`CustomerError::EmptyField`] naming `field` when nothing is left.
fn required(value: &str, field: &'static str) -> Result<String, CustomerError> {
    let value = value.trim();
    if value.is_empty() {
        Err(CustomerError::EmptyField { field })
    } else {
        Ok(value.to_owned())
    }
}

impl Aggregate for Customer {
    const TYPE: &'static str = "Customer";
    type Command = CustomerCommand;
    type Event = CustomerEvent;
    type Error = CustomerError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let event = self.decide(command)?;
        sink.write(event, self).await;
        Ok(())
    }

    /// Folds an event in. Never fails: stored history is the truth.
    fn apply(&mut self, event: Self::Event) {
        match event {
            CustomerEvent::CustomerRegistered {
                full_name,
                email,
                phone,
                address,
                ..
            } => {
                debug_assert!(self.details.is_none(), "registered twice");
                self.details = Some(Details {
                    full_name,
                    email,
                    phone,
                    address,
                });
            }
            CustomerEvent::CustomerContactDetailsChanged {
                email,
                phone,
                address,
            } => {
                debug_assert!(self.details.is_some(), "changed before registration");
                let Some(details) = self.details.as_mut() else {
                    return;
                };
                if let Some(email) = email {
                    details.email = email;
                }
                if let Some(phone) = phone {
                    details.phone = phone;
                }
                if let Some(address) = address {
                    details.address = address;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
