//! The dealership's domain: aggregates that decide on commands and the events they emit.
//!
//! Each aggregate is a [`cqrs_es::Aggregate`]: `handle` checks a command against the current state
//! and either refuses it with a specific error or emits events; `apply` folds an event into the
//! state. Deciding never mutates anything but the aggregate, and applying never fails.
//!
//! # Layout
//!
//! - [`money`]: [`money::Money`] (a `Decimal` amount with an ISO 4217 [`money::Currency`], always to
//!   the kopeck) and the one rounding rule, [`money::KOPECK_ROUNDING`].
//! - [`vin`]: [`vin::Vin`], a validated vehicle identification number.
//! - [`contact`]: [`contact::Email`] and [`contact::Phone`] (E.164), validated on the way in.
//! - [`vehicle`]: the [`vehicle::Vehicle`] aggregate, a car on the lot from stocking to sale.
//! - [`customer`]: the [`customer::Customer`] aggregate, a buyer and how to reach them.
//! - [`order`]: the [`order::Order`] aggregate, one customer buying one vehicle.
//! - [`policy`]: the [`policy::Policy`] aggregate, a motor insurance policy from quote to claims,
//!   with the partner insurers' tariffs and the signed electronic policy document.
//! - [`bookings`]: the workshop: [`bookings::Booking`] (one service visit) and
//!   [`bookings::MechanicDay`] (one mechanic's claimed slots on one day).
//! - [`loan`]: the [`loan::Loan`] aggregate, financing for one order from application to payoff;
//!   its credit policy in [`loan::credit`] and its schedule maths in [`loan::schedule`].
//! - [`payment`]: the [`payment::Payment`] aggregate, money paid towards an order and its refunds.
//! - [`promotion`]: the [`promotion::Promotion`] aggregate, a discount under one promo code and the
//!   orders holding its uses.
//! - [`user`]: the [`user::User`] aggregate, an account that signs in, and its [`user::Role`]s;
//!   [`partner_key`]: [`partner_key::PartnerKey`], a partner insurer's API key (its digest only).
//!
//! Each aggregate lives in one file with its commands, events and errors; its given/when/then
//! tests and property tests sit beside it in `<aggregate>/tests.rs`.
//!
//! # Architecture invariants
//!
//! - **No I/O.** Nothing here touches a database, the network, the clock or a random number
//!   generator. Facts from the outside world (the current time, ids) arrive inside commands, so
//!   every decision is a pure function of the history and the command.
//! - **No floating point.** Money is `rust_decimal::Decimal` with two decimal places; there is no
//!   binary floating-point type anywhere in this crate.
//! - **Events are a public contract.** Stored events are never rewritten. An event whose schema
//!   changes gets a new `event_version`, and an upcaster registered in [`upcasters`] turns the old
//!   payloads into the new shape when they are loaded.

pub mod bookings;
pub mod calendar;
pub mod contact;
pub mod customer;
pub mod loan;
pub mod money;
pub mod order;
pub mod partner_key;
pub mod payment;
pub mod policy;
pub mod promotion;
pub mod user;
pub mod vehicle;
pub mod vin;

#[cfg(test)]
mod test_support;

use cqrs_es::persist::EventUpcaster;

/// The upcasters for every event schema that has changed since it was first stored.
///
/// This is the one place where upcasters are registered: the event store wires exactly this list
/// into its repository. When an event's payload changes, bump its `event_version` and add an
/// upcaster here that rewrites payloads of the old version into the new one; never edit stored
/// events. Registered: `LoanApproved` and `LoanDisbursed` 1.0 → 2.0 (actual-day interest, see
/// [`loan::upcasters`]); `DiscountApplied` 1.0 → 2.0 (the promotion it came from, see
/// [`order::upcasters`]).
pub fn upcasters() -> Vec<Box<dyn EventUpcaster>> {
    let mut all = loan::upcasters();
    all.extend(order::upcasters());
    all
}
