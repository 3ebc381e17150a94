//! Every event type of every aggregate, read from the aggregates' own event enums.
//!
//! serde's derived `Deserialize` for an enum hands the deserializer the list of its variant names
//! (`deserialize_enum(name, VARIANTS, ..)`). [`variants`] offers it a deserializer that only
//! records that list, so the names come from the enums themselves: a variant added to an enum is
//! in the list the moment it compiles. The event type stored in the log is the variant name (each
//! aggregate's tests pin that).

use std::collections::BTreeSet;

use cqrs_es::Aggregate;
use serde::de::{self, Deserialize, Deserializer, Visitor};

/// The deserializer that records the variant names it is shown, and deserializes nothing.
struct VariantNames<'a>(&'a mut Vec<&'static str>);

#[derive(Debug)]
struct Recorded;

impl std::fmt::Display for Recorded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("variant names recorded")
    }
}

impl std::error::Error for Recorded {}

impl de::Error for Recorded {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Recorded
    }
}

impl<'de> Deserializer<'de> for VariantNames<'_> {
    type Error = Recorded;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Recorded> {
        Err(Recorded)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Recorded> {
        self.0.extend_from_slice(variants);
        Err(Recorded)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

/// The variant names of the enum `E`.
pub fn variants<'de, E: Deserialize<'de>>() -> Vec<&'static str> {
    let mut names = Vec::new();
    let _ = E::deserialize(VariantNames(&mut names));
    assert!(
        !names.is_empty(),
        "{} is not an enum",
        std::any::type_name::<E>()
    );
    names
}

fn of<A>() -> impl Iterator<Item = (String, String)>
where
    A: Aggregate,
    A::Event: for<'de> Deserialize<'de>,
{
    variants::<A::Event>()
        .into_iter()
        .map(|variant| (A::TYPE.to_string(), variant.to_string()))
}

/// `(aggregate type, event type)` of every event any aggregate can emit.
pub fn every_event_type() -> BTreeSet<(String, String)> {
    use aggregates::bookings::{Booking, MechanicDay};
    use aggregates::{
        customer::Customer, loan::Loan, order::Order, partner_key::PartnerKey, payment::Payment,
        policy::Policy, promotion::Promotion, user::User, vehicle::Vehicle,
    };
    of::<Vehicle>()
        .chain(of::<Customer>())
        .chain(of::<Order>())
        .chain(of::<Payment>())
        .chain(of::<Loan>())
        .chain(of::<Policy>())
        .chain(of::<Booking>())
        .chain(of::<MechanicDay>())
        .chain(of::<User>())
        .chain(of::<PartnerKey>())
        .chain(of::<Promotion>())
        .collect()
}

#[test]
fn the_event_types_are_read_from_the_enums() {
    let all = every_event_type();
    // Spot checks that the enumeration reads real enums, one per aggregate.
    for (aggregate, event) in [
        ("Vehicle", "VehicleStocked"),
        ("Customer", "CustomerContactDetailsChanged"),
        ("Order", "OrderBalanceReopened"),
        ("Payment", "PaymentCancelled"),
        ("Loan", "LoanDefaulted"),
        ("Policy", "ClaimRejected"),
        ("Booking", "BookingMarkedNoShow"),
        ("MechanicDay", "SlotReleased"),
        ("User", "UserLockedOut"),
        ("PartnerKey", "PartnerKeyRevoked"),
        ("Promotion", "PromoCodeReleased"),
    ] {
        assert!(
            all.contains(&(aggregate.to_string(), event.to_string())),
            "{aggregate}/{event} missing from {all:?}"
        );
    }
    // Every aggregate the log can hold (the auditors' `AggregateType`, which names each stored
    // type): an aggregate added there and not here fails.
    let aggregates: BTreeSet<&str> = all.iter().map(|(a, _)| a.as_str()).collect();
    let stored: BTreeSet<&str> =
        <queries::audit::AggregateType as async_graphql::resolver_utils::EnumType>::items()
            .iter()
            .map(|item| item.value.stored_name())
            .collect();
    assert_eq!(aggregates, stored);
}
