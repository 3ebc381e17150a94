use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::DomainEvent;
use cqrs_es::test::{AggregateTestExecutor, TestFramework};
use uuid::Uuid;

use super::*;
use crate::bookings::mechanic_day_id;

mod model;

fn at(instant: &str) -> DateTime<Utc> {
    instant.parse().unwrap()
}

fn mechanic() -> MechanicCode {
    MechanicCode::parse("M-017").unwrap()
}

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2030, 3, 15).unwrap()
}

fn booking(number: u128) -> Uuid {
    Uuid::from_u128(number)
}

/// `from`..`to` on 15 March 2030, in dealership hours (UTC+3), e.g. `slot(10, 12)`.
fn slot(from: u32, to: u32) -> Slot {
    let instant = |hour: u32| at(&format!("2030-03-15T{:02}:00:00Z", hour - 3));
    Slot::new(instant(from), instant(to)).unwrap()
}

fn claimed_at() -> DateTime<Utc> {
    at("2030-03-01T09:00:00Z")
}

fn claim(number: u128, slot: Slot) -> MechanicDayCommand {
    MechanicDayCommand::Claim {
        mechanic: mechanic(),
        day: day(),
        booking_id: booking(number),
        slot,
        claimed_at: claimed_at(),
    }
}

fn claimed(number: u128, slot: Slot) -> MechanicDayEvent {
    MechanicDayEvent::SlotClaimed {
        mechanic: mechanic(),
        day: day(),
        booking_id: booking(number),
        slot,
        claimed_at: claimed_at(),
    }
}

fn release(number: u128, slot: Slot) -> MechanicDayCommand {
    MechanicDayCommand::Release {
        booking_id: booking(number),
        slot,
        released_at: claimed_at(),
    }
}

fn released(number: u128, slot: Slot) -> MechanicDayEvent {
    MechanicDayEvent::SlotReleased {
        booking_id: booking(number),
        slot,
        released_at: claimed_at(),
    }
}

fn given(events: Vec<MechanicDayEvent>) -> AggregateTestExecutor<MechanicDay> {
    TestFramework::<MechanicDay>::with(()).given(events)
}

// --- Claim -----------------------------------------------------------------------------------

#[test]
fn claiming_a_free_slot_records_the_booking_on_the_mechanics_day() {
    given(vec![])
        .when(claim(1, slot(10, 12)))
        .then_expect_events(vec![claimed(1, slot(10, 12))]);
}

#[test]
fn a_slot_overlapping_another_bookings_claim_is_refused_naming_the_holder() {
    for wanted in [
        slot(10, 12),
        slot(11, 13),
        slot(9, 11),
        slot(8, 16),
        slot(10, 11),
    ] {
        given(vec![claimed(1, slot(10, 12))])
            .when(claim(2, wanted))
            .then_expect_error(MechanicDayError::Busy {
                booking_id: booking(1),
                slot: slot(10, 12),
            });
    }
}

#[test]
fn back_to_back_slots_do_not_overlap() {
    given(vec![claimed(1, slot(10, 12))])
        .when(claim(2, slot(12, 14)))
        .then_expect_events(vec![claimed(2, slot(12, 14))]);
    given(vec![claimed(1, slot(10, 12))])
        .when(claim(2, slot(8, 10)))
        .then_expect_events(vec![claimed(2, slot(8, 10))]);
}

#[test]
fn claiming_a_slot_the_booking_already_holds_changes_nothing() {
    given(vec![claimed(1, slot(10, 12))])
        .when(claim(1, slot(10, 12)))
        .then_expect_events(vec![]);
}

#[test]
fn a_booking_may_claim_a_slot_overlapping_its_own_while_it_is_rescheduled() {
    given(vec![claimed(1, slot(10, 12))])
        .when(claim(1, slot(11, 13)))
        .then_expect_events(vec![claimed(1, slot(11, 13))]);
}

#[test]
fn a_released_slot_can_be_claimed_by_another_booking() {
    given(vec![claimed(1, slot(10, 12)), released(1, slot(10, 12))])
        .when(claim(2, slot(10, 12)))
        .then_expect_events(vec![claimed(2, slot(10, 12))]);
}

#[test]
fn a_slot_on_another_day_than_the_command_names_is_refused() {
    let next_day = Slot::new(at("2030-03-16T07:00:00Z"), at("2030-03-16T08:00:00Z")).unwrap();
    given(vec![]).when(claim(1, next_day)).then_expect_error(
        MechanicDayError::NotThisMechanicDay {
            mechanic: mechanic(),
            day: day(),
            slot: next_day,
        },
    );
}

#[test]
fn a_claim_naming_another_mechanic_than_the_stream_holds_is_refused() {
    let other = MechanicCode::parse("M-018").unwrap();
    given(vec![claimed(1, slot(10, 12))])
        .when(MechanicDayCommand::Claim {
            mechanic: other.clone(),
            day: day(),
            booking_id: booking(2),
            slot: slot(14, 15),
            claimed_at: claimed_at(),
        })
        .then_expect_error(MechanicDayError::NotThisMechanicDay {
            mechanic: other,
            day: day(),
            slot: slot(14, 15),
        });
}

// --- Release ---------------------------------------------------------------------------------

#[test]
fn releasing_a_held_claim_frees_the_slot() {
    given(vec![claimed(1, slot(10, 12))])
        .when(release(1, slot(10, 12)))
        .then_expect_events(vec![released(1, slot(10, 12))]);
}

#[test]
fn releasing_a_claim_that_is_not_held_changes_nothing() {
    given(vec![claimed(1, slot(10, 12))])
        .when(release(2, slot(10, 12)))
        .then_expect_events(vec![]);
    given(vec![claimed(1, slot(10, 12))])
        .when(release(1, slot(12, 14)))
        .then_expect_events(vec![]);
    given(vec![])
        .when(release(1, slot(10, 12)))
        .then_expect_events(vec![]);
}

// --- State, ids, errors, events --------------------------------------------------------------

#[test]
fn the_day_exposes_its_mechanic_date_and_live_claims() {
    let mut mechanic_day = MechanicDay::default();
    mechanic_day.apply(claimed(1, slot(10, 12)));
    mechanic_day.apply(claimed(2, slot(12, 14)));
    mechanic_day.apply(released(1, slot(10, 12)));
    assert_eq!(mechanic_day.mechanic(), Some(&mechanic()));
    assert_eq!(mechanic_day.day(), Some(day()));
    assert_eq!(
        mechanic_day.claims(),
        &[Claim {
            booking_id: booking(2),
            slot: slot(12, 14),
            claimed_at: claimed_at()
        }]
    );
}

#[test]
fn the_stream_id_is_a_stable_uuid_v5_of_mechanic_and_day() {
    let id = mechanic_day_id(&mechanic(), day());
    assert_eq!(id.get_version_num(), 5);
    assert_eq!(
        id,
        mechanic_day_id(&MechanicCode::parse(" m-017 ").unwrap(), day())
    );
    assert_ne!(
        id,
        mechanic_day_id(&MechanicCode::parse("M-018").unwrap(), day())
    );
    assert_ne!(id, mechanic_day_id(&mechanic(), day().succ_opt().unwrap()));
    // Pinned (the value Python's uuid.uuid5 gives for the same namespace and name): stored streams
    // are named by it, so it must never change.
    assert_eq!(id.to_string(), "444a5a1b-e81f-584e-8046-dfbe75d11f6d");
}

#[test]
fn every_error_has_a_stable_code_and_a_readable_message() {
    let busy = MechanicDayError::Busy {
        booking_id: booking(1),
        slot: slot(10, 12),
    };
    assert_eq!(busy.code(), "MECHANIC_BUSY");
    assert_eq!(
        busy.to_string(),
        "the mechanic is already booked for 2030-03-15T07:00:00Z .. 2030-03-15T09:00:00Z \
         (booking 00000000-0000-0000-0000-000000000001)"
    );
    let foreign = MechanicDayError::NotThisMechanicDay {
        mechanic: mechanic(),
        day: day(),
        slot: slot(10, 12),
    };
    assert_eq!(foreign.code(), "VALIDATION");
}

#[test]
fn event_types_name_the_serialized_variant_at_version_1_0() {
    for event in [claimed(1, slot(10, 12)), released(1, slot(10, 12))] {
        let json = serde_json::to_value(&event).unwrap();
        let tag = json.as_object().unwrap().keys().next().unwrap().clone();
        assert_eq!(event.event_type(), tag);
        assert_eq!(event.event_version(), "1.0");
        assert_eq!(
            serde_json::from_value::<MechanicDayEvent>(json).unwrap(),
            event
        );
    }
}
