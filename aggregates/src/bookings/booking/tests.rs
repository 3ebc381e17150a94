use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use cqrs_es::test::{AggregateTestExecutor, TestFramework};
use uuid::Uuid;

use super::*;
use crate::bookings::SlotError;
use crate::money::{Currency, Money};

mod model;

fn at(instant: &str) -> DateTime<Utc> {
    instant.parse().unwrap()
}

fn rub(amount: &str) -> Money {
    Money::new(amount.parse().unwrap(), Currency::RUB).unwrap()
}

fn mechanic(code: &str) -> MechanicCode {
    MechanicCode::parse(code).unwrap()
}

/// `from`..`to` o'clock on 15 March 2030, dealership time (UTC+3).
fn slot(from: u32, to: u32) -> Slot {
    let instant = |hour: u32| at(&format!("2030-03-15T{:02}:00:00Z", hour - 3));
    Slot::new(instant(from), instant(to)).unwrap()
}

fn booked_at() -> DateTime<Utc> {
    at("2030-03-01T09:00:00Z")
}

fn book() -> BookService {
    BookService {
        customer_id: Uuid::from_u128(0xc1),
        vehicle_id: Uuid::from_u128(0x01),
        mechanic: mechanic("M-017"),
        kind: ServiceKind::Maintenance,
        slot: slot(10, 12),
        notes: "  oil change, customer waits  ".into(),
        booked_at: booked_at(),
    }
}

fn booked() -> BookingEvent {
    BookingEvent::ServiceBooked {
        customer_id: Uuid::from_u128(0xc1),
        vehicle_id: Uuid::from_u128(0x01),
        mechanic: mechanic("M-017"),
        kind: ServiceKind::Maintenance,
        slot: slot(10, 12),
        notes: "oil change, customer waits".into(),
        booked_at: booked_at(),
    }
}

fn started() -> BookingEvent {
    BookingEvent::BookingStarted {
        started_at: at("2030-03-15T07:05:00Z"),
    }
}

fn complete(mileage_km: u32, work: &[&str], cost: Money) -> BookingCommand {
    BookingCommand::Complete(CompleteService {
        mileage_km,
        work: work.iter().map(|line| line.to_string()).collect(),
        cost,
        completed_at: at("2030-03-15T09:00:00Z"),
    })
}

fn completed(mileage_km: u32, work: &[&str], cost: Money) -> BookingEvent {
    BookingEvent::BookingCompleted {
        mileage_km,
        work: work.iter().map(|line| line.to_string()).collect(),
        cost,
        completed_at: at("2030-03-15T09:00:00Z"),
    }
}

fn cancel(reason: &str) -> BookingCommand {
    BookingCommand::Cancel {
        reason: reason.into(),
        cancelled_at: at("2030-03-10T09:00:00Z"),
    }
}

fn cancelled() -> BookingEvent {
    BookingEvent::BookingCancelled {
        reason: "customer is abroad".into(),
        cancelled_at: at("2030-03-10T09:00:00Z"),
    }
}

fn no_show_at(instant: &str) -> BookingCommand {
    BookingCommand::MarkNoShow {
        marked_at: at(instant),
    }
}

fn no_show() -> BookingEvent {
    BookingEvent::BookingMarkedNoShow {
        marked_at: at("2030-03-15T08:00:00Z"),
    }
}

fn reschedule(code: &str, slot: Slot) -> BookingCommand {
    BookingCommand::Reschedule {
        mechanic: mechanic(code),
        slot,
        rescheduled_at: at("2030-03-05T09:00:00Z"),
    }
}

fn start() -> BookingCommand {
    BookingCommand::Start {
        started_at: at("2030-03-15T07:05:00Z"),
    }
}

fn given(events: Vec<BookingEvent>) -> AggregateTestExecutor<Booking> {
    TestFramework::<Booking>::with(()).given(events)
}

fn invalid(from: BookingStatus, action: &'static str) -> BookingError {
    BookingError::InvalidTransition { from, action }
}

fn done() -> Vec<BookingEvent> {
    vec![
        booked(),
        started(),
        completed(42_000, &["oil and filter"], rub("8500")),
    ]
}

// --- Book ------------------------------------------------------------------------------------

#[test]
fn booking_a_service_schedules_it_with_trimmed_notes() {
    given(vec![])
        .when(BookingCommand::Book(book()))
        .then_expect_events(vec![booked()]);
}

#[test]
fn booking_an_id_that_already_exists_is_refused() {
    for history in [vec![booked()], vec![booked(), cancelled()]] {
        given(history)
            .when(BookingCommand::Book(book()))
            .then_expect_error(BookingError::AlreadyBooked);
    }
}

#[test]
fn booking_a_slot_that_has_already_started_is_refused() {
    given(vec![])
        .when(BookingCommand::Book(BookService {
            booked_at: at("2030-03-15T07:30:00Z"),
            ..book()
        }))
        .then_expect_error(BookingError::SlotInPast {
            start: slot(10, 12).start(),
        });
}

#[test]
fn booking_with_notes_over_the_limit_is_refused() {
    given(vec![])
        .when(BookingCommand::Book(BookService {
            notes: "x".repeat(MAX_NOTES_CHARS + 1),
            ..book()
        }))
        .then_expect_error(BookingError::NotesTooLong);
}

#[test]
fn every_command_on_a_booking_never_made_is_refused_as_not_found() {
    for command in [
        reschedule("M-017", slot(14, 16)),
        start(),
        complete(1, &["x"], rub("1")),
        cancel("reason"),
        no_show_at("2030-03-15T08:00:00Z"),
    ] {
        given(vec![])
            .when(command)
            .then_expect_error(BookingError::NotBooked);
    }
}

// --- Reschedule ------------------------------------------------------------------------------

#[test]
fn rescheduling_records_the_old_and_new_mechanic_and_slot() {
    given(vec![booked()])
        .when(reschedule("M-020", slot(14, 16)))
        .then_expect_events(vec![BookingEvent::BookingRescheduled {
            from_mechanic: mechanic("M-017"),
            from_slot: slot(10, 12),
            mechanic: mechanic("M-020"),
            slot: slot(14, 16),
            rescheduled_at: at("2030-03-05T09:00:00Z"),
        }]);
}

#[test]
fn rescheduling_to_the_same_mechanic_and_slot_changes_nothing() {
    given(vec![booked()])
        .when(reschedule("M-017", slot(10, 12)))
        .then_expect_events(vec![]);
}

#[test]
fn rescheduling_into_the_past_is_refused() {
    given(vec![booked()])
        .when(BookingCommand::Reschedule {
            mechanic: mechanic("M-017"),
            slot: slot(14, 16),
            rescheduled_at: at("2030-03-15T12:00:00Z"),
        })
        .then_expect_error(BookingError::SlotInPast {
            start: slot(14, 16).start(),
        });
}

#[test]
fn rescheduling_is_refused_once_the_booking_left_scheduled() {
    for (history, status) in [
        (vec![booked(), started()], BookingStatus::InProgress),
        (done(), BookingStatus::Completed),
        (vec![booked(), cancelled()], BookingStatus::Cancelled),
        (vec![booked(), no_show()], BookingStatus::NoShow),
    ] {
        given(history)
            .when(reschedule("M-017", slot(14, 16)))
            .then_expect_error(invalid(status, "reschedule"));
    }
}

// --- Start -----------------------------------------------------------------------------------

#[test]
fn starting_a_scheduled_booking_puts_it_in_progress() {
    given(vec![booked()])
        .when(start())
        .then_expect_events(vec![started()]);
}

#[test]
fn starting_a_started_booking_changes_nothing() {
    given(vec![booked(), started()])
        .when(start())
        .then_expect_events(vec![]);
}

#[test]
fn starting_a_finished_booking_is_refused() {
    for (history, status) in [
        (done(), BookingStatus::Completed),
        (vec![booked(), cancelled()], BookingStatus::Cancelled),
        (vec![booked(), no_show()], BookingStatus::NoShow),
    ] {
        given(history)
            .when(start())
            .then_expect_error(invalid(status, "start"));
    }
}

// --- Complete --------------------------------------------------------------------------------

#[test]
fn completing_records_mileage_trimmed_work_and_cost() {
    given(vec![booked(), started()])
        .when(complete(
            42_000,
            &["  oil and filter ", "", "  ", "wipers"],
            rub("8500"),
        ))
        .then_expect_events(vec![completed(
            42_000,
            &["oil and filter", "wipers"],
            rub("8500"),
        )]);
}

#[test]
fn completing_at_zero_cost_is_accepted_for_warranty_work() {
    given(vec![booked(), started()])
        .when(complete(42_000, &["warranty: sensor"], rub("0")))
        .then_expect_events(vec![completed(42_000, &["warranty: sensor"], rub("0"))]);
}

#[test]
fn completing_a_booking_that_was_not_started_is_refused() {
    given(vec![booked()])
        .when(complete(42_000, &["oil"], rub("1")))
        .then_expect_error(invalid(BookingStatus::Scheduled, "complete"));
}

#[test]
fn completing_again_with_the_same_record_changes_nothing() {
    given(done())
        .when(complete(42_000, &["oil and filter"], rub("8500")))
        .then_expect_events(vec![]);
}

#[test]
fn completing_again_with_another_record_is_refused() {
    given(done())
        .when(complete(42_001, &["oil and filter"], rub("8500")))
        .then_expect_error(invalid(BookingStatus::Completed, "complete"));
}

#[test]
fn completing_without_work_is_refused() {
    given(vec![booked(), started()])
        .when(complete(42_000, &[" ", ""], rub("1")))
        .then_expect_error(BookingError::NoWorkRecorded);
}

#[test]
fn completing_with_too_much_work_is_refused() {
    let long_line = "x".repeat(MAX_WORK_LINE_CHARS + 1);
    let many: Vec<&str> = vec!["line"; MAX_WORK_LINES + 1];
    for work in [vec![long_line.as_str()], many] {
        given(vec![booked(), started()])
            .when(complete(42_000, &work, rub("1")))
            .then_expect_error(BookingError::WorkTooLong);
    }
}

#[test]
fn completing_at_a_negative_cost_is_refused() {
    given(vec![booked(), started()])
        .when(complete(42_000, &["oil"], rub("-0.01")))
        .then_expect_error(BookingError::NegativeCost);
}

// --- Cancel ----------------------------------------------------------------------------------

#[test]
fn cancelling_a_scheduled_booking_records_the_reason() {
    given(vec![booked()])
        .when(cancel("  customer is abroad "))
        .then_expect_events(vec![cancelled()]);
}

#[test]
fn cancelling_without_a_reason_is_refused() {
    given(vec![booked()])
        .when(cancel("  "))
        .then_expect_error(BookingError::EmptyReason);
}

#[test]
fn cancelling_a_cancelled_booking_changes_nothing() {
    given(vec![booked(), cancelled()])
        .when(cancel("again"))
        .then_expect_events(vec![]);
}

#[test]
fn cancelling_work_that_has_started_or_finished_is_refused() {
    for (history, status) in [
        (vec![booked(), started()], BookingStatus::InProgress),
        (done(), BookingStatus::Completed),
        (vec![booked(), no_show()], BookingStatus::NoShow),
    ] {
        given(history)
            .when(cancel("reason"))
            .then_expect_error(invalid(status, "cancel"));
    }
}

// --- MarkNoShow ------------------------------------------------------------------------------

#[test]
fn a_customer_who_did_not_come_is_marked_no_show_once_the_slot_started() {
    given(vec![booked()])
        .when(no_show_at("2030-03-15T08:00:00Z"))
        .then_expect_events(vec![no_show()]);
}

#[test]
fn marking_a_no_show_before_the_slot_starts_is_refused() {
    given(vec![booked()])
        .when(no_show_at("2030-03-15T06:59:59Z"))
        .then_expect_error(BookingError::NoShowBeforeStart {
            start: slot(10, 12).start(),
        });
}

#[test]
fn marking_a_no_show_twice_changes_nothing() {
    given(vec![booked(), no_show()])
        .when(no_show_at("2030-03-15T09:00:00Z"))
        .then_expect_events(vec![]);
}

#[test]
fn marking_a_no_show_after_the_car_arrived_is_refused() {
    for (history, status) in [
        (vec![booked(), started()], BookingStatus::InProgress),
        (done(), BookingStatus::Completed),
        (vec![booked(), cancelled()], BookingStatus::Cancelled),
    ] {
        given(history)
            .when(no_show_at("2030-03-15T09:00:00Z"))
            .then_expect_error(invalid(status, "mark a no-show"));
    }
}

// --- Slots -----------------------------------------------------------------------------------

#[test]
fn slots_follow_the_workshop_hours_in_moscow_time() {
    let utc = |text: &str| at(text);
    // 08:00-20:00 Moscow time is 05:00-17:00 UTC.
    assert!(Slot::new(utc("2030-03-15T05:00:00Z"), utc("2030-03-15T13:00:00Z")).is_ok());
    assert!(Slot::new(utc("2030-03-15T16:30:00Z"), utc("2030-03-15T17:00:00Z")).is_ok());
    let cases = [
        (
            "2030-03-15T10:00:00Z",
            "2030-03-15T10:00:00Z",
            "INVALID_SLOT",
        ),
        (
            "2030-03-15T10:00:00Z",
            "2030-03-15T09:00:00Z",
            "INVALID_SLOT",
        ),
        (
            "2030-03-15T10:15:00Z",
            "2030-03-15T11:00:00Z",
            "INVALID_SLOT",
        ),
        (
            "2030-03-15T10:00:01Z",
            "2030-03-15T11:00:00Z",
            "INVALID_SLOT",
        ),
        (
            "2030-03-15T05:00:00Z",
            "2030-03-15T13:30:00Z",
            "INVALID_SLOT",
        ),
        (
            "2030-03-15T04:30:00Z",
            "2030-03-15T06:00:00Z",
            "OUTSIDE_WORKING_HOURS",
        ),
        (
            "2030-03-15T16:30:00Z",
            "2030-03-15T17:30:00Z",
            "OUTSIDE_WORKING_HOURS",
        ),
        (
            "2030-03-15T20:00:00Z",
            "2030-03-15T22:00:00Z",
            "OUTSIDE_WORKING_HOURS",
        ),
    ];
    for (start, end, code) in cases {
        let err = Slot::new(utc(start), utc(end)).unwrap_err();
        assert_eq!(err.code(), code, "{start} .. {end}: {err}");
    }
    assert_eq!(
        Slot::new(utc("2030-03-15T05:00:00Z"), utc("2030-03-15T14:00:00Z")),
        Err(SlotError::TooLong { minutes: 540 })
    );
}

#[test]
fn a_slots_day_is_its_date_in_dealership_time() {
    let early = Slot::new(at("2030-03-14T21:00:00Z"), at("2030-03-14T22:00:00Z"));
    // 00:00 Moscow time is outside working hours, so no slot straddles the UTC date line wrongly.
    assert_eq!(early, Err(SlotError::OutsideWorkingHours));
    assert_eq!(slot(8, 9).day().to_string(), "2030-03-15");
    assert!(slot(10, 12).overlaps(&slot(11, 13)));
    assert!(!slot(10, 12).overlaps(&slot(12, 13)));
    assert_eq!(slot(10, 12).duration().num_minutes(), 120);
}

#[test]
fn mechanic_codes_are_short_upper_case_staff_codes() {
    assert_eq!(MechanicCode::parse(" m-017 ").unwrap().as_str(), "M-017");
    for bad in ["", "  ", "M 017", "M_017", "Механик", "ABCDEFGHIJKLMNOPQ"] {
        assert!(MechanicCode::parse(bad).is_err(), "{bad:?}");
    }
}

// --- State, errors, events -------------------------------------------------------------------

#[test]
fn the_booking_exposes_its_parties_mechanic_slot_and_mileage() {
    let mut booking = Booking::default();
    assert_eq!(booking.status(), BookingStatus::NotBooked);
    for event in done() {
        booking.apply(event);
    }
    assert_eq!(booking.status(), BookingStatus::Completed);
    assert_eq!(booking.customer_id(), Some(Uuid::from_u128(0xc1)));
    assert_eq!(booking.vehicle_id(), Some(Uuid::from_u128(0x01)));
    assert_eq!(booking.mechanic(), Some(&mechanic("M-017")));
    assert_eq!(booking.kind(), Some(ServiceKind::Maintenance));
    assert_eq!(booking.slot(), Some(slot(10, 12)));
    assert_eq!(booking.completed_mileage_km(), Some(42_000));
}

#[test]
fn every_error_has_a_stable_code_and_a_readable_message() {
    let cases = [
        (BookingError::NotBooked, "NOT_FOUND"),
        (BookingError::AlreadyBooked, "BOOKING_ALREADY_EXISTS"),
        (
            BookingError::SlotInPast { start: booked_at() },
            "SLOT_IN_THE_PAST",
        ),
        (BookingError::NotesTooLong, "VALIDATION"),
        (BookingError::NoWorkRecorded, "VALIDATION"),
        (BookingError::WorkTooLong, "VALIDATION"),
        (BookingError::NegativeCost, "VALIDATION"),
        (BookingError::EmptyReason, "VALIDATION"),
        (
            BookingError::NoShowBeforeStart { start: booked_at() },
            "NO_SHOW_BEFORE_START",
        ),
        (
            invalid(BookingStatus::Completed, "cancel"),
            "INVALID_BOOKING_TRANSITION",
        ),
    ];
    for (error, code) in cases {
        assert_eq!(error.code(), code, "{error:?}");
        assert!(!error.to_string().is_empty());
    }
    assert_eq!(
        invalid(BookingStatus::Completed, "cancel").to_string(),
        "cannot cancel: the booking is COMPLETED"
    );
}

#[test]
fn statuses_and_kinds_have_stable_names() {
    use BookingStatus::*;
    let names = [
        NotBooked, Scheduled, InProgress, Completed, Cancelled, NoShow,
    ]
    .map(|status| (status.as_str(), status.is_terminal()));
    assert_eq!(
        names,
        [
            ("NOT_BOOKED", false),
            ("SCHEDULED", false),
            ("IN_PROGRESS", false),
            ("COMPLETED", true),
            ("CANCELLED", true),
            ("NO_SHOW", true)
        ]
    );
    assert_eq!(ServiceKind::Maintenance.as_str(), "MAINTENANCE");
    assert_eq!(ServiceKind::Repair.as_str(), "REPAIR");
}

#[test]
fn event_types_name_the_serialized_variant_at_version_1_0() {
    let events = [
        booked(),
        BookingEvent::BookingRescheduled {
            from_mechanic: mechanic("M-017"),
            from_slot: slot(10, 12),
            mechanic: mechanic("M-020"),
            slot: slot(14, 16),
            rescheduled_at: booked_at(),
        },
        started(),
        completed(1, &["x"], rub("1")),
        cancelled(),
        no_show(),
    ];
    for event in events {
        let json = serde_json::to_value(&event).unwrap();
        let tag = json.as_object().unwrap().keys().next().unwrap().clone();
        assert_eq!(event.event_type(), tag);
        assert_eq!(event.event_version(), "1.0");
        assert_eq!(serde_json::from_value::<BookingEvent>(json).unwrap(), event);
    }
}

#[test]
fn workshop_errors_carry_the_code_of_what_refused() {
    use crate::bookings::{InvalidMechanicCode, MechanicDayError, WorkshopError};
    let busy = MechanicDayError::Busy {
        booking_id: Uuid::from_u128(1),
        slot: slot(10, 12),
    };
    let cases = [
        (
            WorkshopError::from(BookingError::AlreadyBooked),
            "BOOKING_ALREADY_EXISTS",
        ),
        (WorkshopError::from(busy), "MECHANIC_BUSY"),
        (
            WorkshopError::from(SlotError::OutsideWorkingHours),
            "OUTSIDE_WORKING_HOURS",
        ),
        (
            WorkshopError::from(InvalidMechanicCode("M 1".into())),
            "VALIDATION",
        ),
    ];
    for (error, code) in cases {
        assert_eq!(error.code(), code, "{error:?}");
    }
}
