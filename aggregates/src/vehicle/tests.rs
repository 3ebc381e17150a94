use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use cqrs_es::test::{AggregateTestExecutor, TestFramework};
use proptest::prelude::*;
use uuid::Uuid;

use super::*;
use crate::money::{Currency, Money};
use crate::test_support::execute;

mod model;
use crate::vin::Vin;

fn rub(roubles: i64) -> Money {
    Money::from_minor_units(roubles * 100, Currency::RUB)
}

fn order(number: u128) -> Uuid {
    Uuid::from_u128(number)
}

fn stocked_at() -> DateTime<Utc> {
    "2024-03-01T10:00:00Z".parse().unwrap()
}

fn stock() -> StockVehicle {
    StockVehicle {
        vin: Vin::parse("XTA210990Y2766389").unwrap(),
        brand: "Lada".into(),
        model: "Vesta".into(),
        year: 2024,
        trim: "Comfort".into(),
        colour: "White".into(),
        mileage_km: 12,
        condition: Condition::New,
        location: "Lot A".into(),
        list_price: rub(1_500_000),
        specifications: BTreeMap::from([("engine".into(), "1.6 l".into())]),
        stocked_at: stocked_at(),
    }
}

fn stocked() -> VehicleEvent {
    let s = stock();
    VehicleEvent::VehicleStocked {
        vin: s.vin,
        brand: s.brand,
        model: s.model,
        year: s.year,
        trim: s.trim,
        colour: s.colour,
        mileage_km: s.mileage_km,
        condition: s.condition,
        location: s.location,
        list_price: s.list_price,
        specifications: s.specifications,
        stocked_at: s.stocked_at,
    }
}

fn reserved(number: u128) -> VehicleEvent {
    VehicleEvent::VehicleReserved {
        order_id: order(number),
    }
}

fn given(events: Vec<VehicleEvent>) -> AggregateTestExecutor<Vehicle> {
    TestFramework::<Vehicle>::with(()).given(events)
}

fn sold() -> Vec<VehicleEvent> {
    vec![
        stocked(),
        reserved(1),
        VehicleEvent::VehicleSold { order_id: order(1) },
    ]
}

fn withdrawn() -> Vec<VehicleEvent> {
    vec![
        stocked(),
        VehicleEvent::VehicleWithdrawn {
            reason: "flood damage".into(),
        },
    ]
}

// --- Stock -----------------------------------------------------------------------------------

#[test]
fn stocking_a_vehicle_records_it_as_available() {
    given(vec![])
        .when(VehicleCommand::Stock(stock()))
        .then_expect_events(vec![stocked()]);
}

#[test]
fn stocking_trims_every_text_field_and_specification() {
    let padded = StockVehicle {
        brand: " Lada ".into(),
        model: "Vesta\t".into(),
        trim: " Comfort".into(),
        colour: "White ".into(),
        location: "  Lot A ".into(),
        specifications: BTreeMap::from([(" engine ".into(), " 1.6 l ".into())]),
        ..stock()
    };
    given(vec![])
        .when(VehicleCommand::Stock(padded))
        .then_expect_events(vec![stocked()]);
}

#[test]
fn stocking_a_vehicle_twice_is_refused() {
    given(vec![stocked()])
        .when(VehicleCommand::Stock(stock()))
        .then_expect_error(VehicleError::AlreadyStocked);
}

#[test]
fn stocking_with_a_blank_required_field_is_refused_naming_the_field() {
    type Blank = fn(&mut StockVehicle);
    let cases: [(&str, Blank); 6] = [
        ("brand", |s| s.brand = " ".into()),
        ("model", |s| s.model = String::new()),
        ("trim", |s| s.trim = "\t".into()),
        ("colour", |s| s.colour = String::new()),
        ("location", |s| s.location = "  ".into()),
        ("specification name", |s| {
            s.specifications.insert(" ".into(), "x".into());
        }),
    ];
    for (field, blank) in cases {
        let mut command = stock();
        blank(&mut command);
        given(vec![])
            .when(VehicleCommand::Stock(command))
            .then_expect_error(VehicleError::EmptyField { field });
    }
}

#[test]
fn stocking_a_model_year_before_the_first_car_is_refused() {
    given(vec![])
        .when(VehicleCommand::Stock(StockVehicle {
            year: 1885,
            ..stock()
        }))
        .then_expect_error(VehicleError::InvalidYear { year: 1885 });
}

#[test]
fn stocking_a_model_year_more_than_a_year_ahead_is_refused() {
    given(vec![])
        .when(VehicleCommand::Stock(StockVehicle {
            year: 2026,
            ..stock()
        }))
        .then_expect_error(VehicleError::InvalidYear { year: 2026 });
}

#[test]
fn stocking_next_years_model_is_accepted() {
    let events = given(vec![])
        .when(VehicleCommand::Stock(StockVehicle {
            year: 2025,
            ..stock()
        }))
        .inspect_result()
        .unwrap();
    assert!(matches!(
        events[..],
        [VehicleEvent::VehicleStocked { year: 2025, .. }]
    ));
}

#[test]
fn stocking_at_a_zero_or_negative_price_is_refused() {
    for list_price in [rub(0), rub(-1)] {
        given(vec![])
            .when(VehicleCommand::Stock(StockVehicle {
                list_price,
                ..stock()
            }))
            .then_expect_error(VehicleError::NonPositivePrice);
    }
}

#[test]
fn every_command_on_a_vehicle_never_stocked_is_refused_as_not_found() {
    let commands = [
        VehicleCommand::Reprice { price: rub(1) },
        VehicleCommand::Relocate {
            location: "Lot B".into(),
        },
        VehicleCommand::Reserve { order_id: order(1) },
        VehicleCommand::ReleaseReservation { order_id: order(1) },
        VehicleCommand::Sell { order_id: order(1) },
        VehicleCommand::Withdraw {
            reason: "damaged".into(),
        },
        record_service(booking(1), 100, &["oil"]),
    ];
    for command in commands {
        given(vec![])
            .when(command)
            .then_expect_error(VehicleError::NotStocked);
    }
}

// --- Reprice ---------------------------------------------------------------------------------

#[test]
fn repricing_an_available_vehicle_records_the_old_and_new_price() {
    given(vec![stocked()])
        .when(VehicleCommand::Reprice {
            price: rub(1_400_000),
        })
        .then_expect_events(vec![VehicleEvent::VehicleRepriced {
            old_price: rub(1_500_000),
            new_price: rub(1_400_000),
        }]);
}

#[test]
fn repricing_a_reserved_vehicle_is_allowed() {
    given(vec![stocked(), reserved(1)])
        .when(VehicleCommand::Reprice {
            price: rub(1_600_000),
        })
        .then_expect_events(vec![VehicleEvent::VehicleRepriced {
            old_price: rub(1_500_000),
            new_price: rub(1_600_000),
        }]);
}

#[test]
fn repricing_to_the_current_price_changes_nothing() {
    given(vec![stocked()])
        .when(VehicleCommand::Reprice {
            price: rub(1_500_000),
        })
        .then_expect_events(vec![]);
}

#[test]
fn repricing_to_zero_or_less_is_refused() {
    for price in [rub(0), rub(-5)] {
        given(vec![stocked()])
            .when(VehicleCommand::Reprice { price })
            .then_expect_error(VehicleError::NonPositivePrice);
    }
}

#[test]
fn repricing_a_sold_or_withdrawn_vehicle_is_refused() {
    for (history, status) in [
        (sold(), VehicleStatus::Sold),
        (withdrawn(), VehicleStatus::Withdrawn),
    ] {
        given(history)
            .when(VehicleCommand::Reprice { price: rub(1) })
            .then_expect_error(VehicleError::NotAvailable { status });
    }
}

// --- Relocate --------------------------------------------------------------------------------

#[test]
fn relocating_records_where_the_car_moved_from_and_to() {
    given(vec![stocked(), reserved(1)])
        .when(VehicleCommand::Relocate {
            location: " Showroom ".into(),
        })
        .then_expect_events(vec![VehicleEvent::VehicleRelocated {
            from: "Lot A".into(),
            to: "Showroom".into(),
        }]);
}

#[test]
fn relocating_to_the_current_location_changes_nothing() {
    given(vec![stocked()])
        .when(VehicleCommand::Relocate {
            location: " Lot A ".into(),
        })
        .then_expect_events(vec![]);
}

#[test]
fn relocating_to_a_blank_location_is_refused() {
    given(vec![stocked()])
        .when(VehicleCommand::Relocate {
            location: "  ".into(),
        })
        .then_expect_error(VehicleError::EmptyField { field: "location" });
}

#[test]
fn relocating_a_sold_or_withdrawn_vehicle_is_refused() {
    for (history, status) in [
        (sold(), VehicleStatus::Sold),
        (withdrawn(), VehicleStatus::Withdrawn),
    ] {
        given(history)
            .when(VehicleCommand::Relocate {
                location: "Lot B".into(),
            })
            .then_expect_error(VehicleError::NotAvailable { status });
    }
}

// --- Reserve ---------------------------------------------------------------------------------

#[test]
fn reserving_an_available_vehicle_holds_it_for_the_order() {
    given(vec![stocked()])
        .when(VehicleCommand::Reserve { order_id: order(1) })
        .then_expect_events(vec![reserved(1)]);
}

#[test]
fn reserving_again_for_the_order_that_holds_it_changes_nothing() {
    given(vec![stocked(), reserved(1)])
        .when(VehicleCommand::Reserve { order_id: order(1) })
        .then_expect_events(vec![]);
}

#[test]
fn reserving_a_vehicle_already_reserved_for_another_order_is_refused() {
    given(vec![stocked(), reserved(1)])
        .when(VehicleCommand::Reserve { order_id: order(2) })
        .then_expect_error(VehicleError::ReservedByAnotherOrder { order_id: order(1) });
}

#[test]
fn reserving_a_sold_or_withdrawn_vehicle_is_refused() {
    for (history, status) in [
        (sold(), VehicleStatus::Sold),
        (withdrawn(), VehicleStatus::Withdrawn),
    ] {
        given(history)
            .when(VehicleCommand::Reserve { order_id: order(1) })
            .then_expect_error(VehicleError::NotAvailable { status });
    }
}

// --- ReleaseReservation ----------------------------------------------------------------------

#[test]
fn releasing_a_reservation_makes_the_vehicle_available_to_other_orders() {
    let released = VehicleEvent::VehicleReservationReleased { order_id: order(1) };
    given(vec![stocked(), reserved(1)])
        .when(VehicleCommand::ReleaseReservation { order_id: order(1) })
        .then_expect_events(vec![released.clone()]);
    given(vec![stocked(), reserved(1), released])
        .when(VehicleCommand::Reserve { order_id: order(2) })
        .then_expect_events(vec![reserved(2)]);
}

#[test]
fn releasing_a_reservation_held_by_another_order_is_refused() {
    given(vec![stocked(), reserved(1)])
        .when(VehicleCommand::ReleaseReservation { order_id: order(2) })
        .then_expect_error(VehicleError::NotReservedForOrder { order_id: order(2) });
}

#[test]
fn releasing_a_vehicle_that_is_not_reserved_is_refused() {
    given(vec![stocked()])
        .when(VehicleCommand::ReleaseReservation { order_id: order(1) })
        .then_expect_error(VehicleError::NotReservedForOrder { order_id: order(1) });
}

// --- Sell ------------------------------------------------------------------------------------

#[test]
fn selling_to_the_order_holding_the_reservation_records_the_sale() {
    given(vec![stocked(), reserved(1)])
        .when(VehicleCommand::Sell { order_id: order(1) })
        .then_expect_events(vec![VehicleEvent::VehicleSold { order_id: order(1) }]);
}

#[test]
fn selling_to_an_order_that_does_not_hold_the_reservation_is_refused() {
    given(vec![stocked(), reserved(1)])
        .when(VehicleCommand::Sell { order_id: order(2) })
        .then_expect_error(VehicleError::NotReservedForOrder { order_id: order(2) });
}

#[test]
fn selling_a_vehicle_that_is_not_reserved_is_refused() {
    given(vec![stocked()])
        .when(VehicleCommand::Sell { order_id: order(1) })
        .then_expect_error(VehicleError::NotReservedForOrder { order_id: order(1) });
}

#[test]
fn selling_a_sold_vehicle_again_is_refused() {
    given(sold())
        .when(VehicleCommand::Sell { order_id: order(1) })
        .then_expect_error(VehicleError::NotReservedForOrder { order_id: order(1) });
}

// --- Withdraw --------------------------------------------------------------------------------

#[test]
fn withdrawing_an_available_vehicle_records_the_reason() {
    given(vec![stocked()])
        .when(VehicleCommand::Withdraw {
            reason: " flood damage ".into(),
        })
        .then_expect_events(vec![VehicleEvent::VehicleWithdrawn {
            reason: "flood damage".into(),
        }]);
}

#[test]
fn withdrawing_a_reserved_vehicle_is_refused_until_it_is_released() {
    given(vec![stocked(), reserved(1)])
        .when(VehicleCommand::Withdraw {
            reason: "damaged".into(),
        })
        .then_expect_error(VehicleError::NotAvailable {
            status: VehicleStatus::Reserved,
        });
}

#[test]
fn withdrawing_without_a_reason_is_refused() {
    given(vec![stocked()])
        .when(VehicleCommand::Withdraw { reason: " ".into() })
        .then_expect_error(VehicleError::EmptyField { field: "reason" });
}

#[test]
fn withdrawing_a_sold_or_withdrawn_vehicle_is_refused() {
    for (history, status) in [
        (sold(), VehicleStatus::Sold),
        (withdrawn(), VehicleStatus::Withdrawn),
    ] {
        given(history)
            .when(VehicleCommand::Withdraw {
                reason: "damaged".into(),
            })
            .then_expect_error(VehicleError::NotAvailable { status });
    }
}

// --- RecordService -------------------------------------------------------------------------

fn booking(number: u128) -> Uuid {
    Uuid::from_u128(0xb000 + number)
}

fn serviced_at() -> DateTime<Utc> {
    "2025-03-15T09:00:00Z".parse().unwrap()
}

fn record_service(booking_id: Uuid, mileage_km: u32, work: &[&str]) -> VehicleCommand {
    VehicleCommand::RecordService {
        booking_id,
        serviced_at: serviced_at(),
        mileage_km,
        work: work.iter().map(|line| line.to_string()).collect(),
        cost: rub(8_500),
    }
}

fn service_recorded(booking_id: Uuid, mileage_km: u32, work: &[&str]) -> VehicleEvent {
    VehicleEvent::VehicleServiceRecorded {
        booking_id,
        serviced_at: serviced_at(),
        mileage_km,
        work: work.iter().map(|line| line.to_string()).collect(),
        cost: rub(8_500),
    }
}

#[test]
fn recording_a_service_appends_it_with_trimmed_work_and_moves_the_odometer() {
    given(vec![stocked()])
        .when(record_service(
            booking(1),
            15_000,
            &[" oil and filter ", " ", "wipers"],
        ))
        .then_expect_events(vec![service_recorded(
            booking(1),
            15_000,
            &["oil and filter", "wipers"],
        )]);
    let mut vehicle = Vehicle::default();
    vehicle.apply(stocked());
    assert_eq!(vehicle.mileage_km(), 12);
    vehicle.apply(service_recorded(booking(1), 15_000, &["oil"]));
    assert_eq!(vehicle.mileage_km(), 15_000);
    assert_eq!(vehicle.service_count(), 1);
}

#[test]
fn a_sold_or_withdrawn_car_can_still_be_serviced() {
    for history in [sold(), withdrawn()] {
        given(history)
            .when(record_service(booking(1), 12, &["oil"]))
            .then_expect_events(vec![service_recorded(booking(1), 12, &["oil"])]);
    }
}

#[test]
fn a_service_mileage_below_the_last_recorded_one_is_refused() {
    given(vec![stocked()])
        .when(record_service(booking(1), 11, &["oil"]))
        .then_expect_error(VehicleError::MileageBelowLastRecorded {
            last_km: 12,
            given_km: 11,
        });
    given(vec![
        stocked(),
        service_recorded(booking(1), 20_000, &["oil"]),
    ])
    .when(record_service(booking(2), 19_999, &["oil"]))
    .then_expect_error(VehicleError::MileageBelowLastRecorded {
        last_km: 20_000,
        given_km: 19_999,
    });
}

#[test]
fn recording_the_same_service_again_changes_nothing() {
    given(vec![
        stocked(),
        service_recorded(booking(1), 20_000, &["oil"]),
    ])
    .when(record_service(booking(1), 20_000, &[" oil "]))
    .then_expect_events(vec![]);
}

#[test]
fn recording_a_different_service_for_the_same_booking_is_refused() {
    given(vec![
        stocked(),
        service_recorded(booking(1), 20_000, &["oil"]),
    ])
    .when(record_service(booking(1), 20_001, &["oil"]))
    .then_expect_error(VehicleError::ServiceAlreadyRecorded {
        booking_id: booking(1),
    });
}

#[test]
fn recording_a_service_without_work_is_refused() {
    given(vec![stocked()])
        .when(record_service(booking(1), 100, &["  "]))
        .then_expect_error(VehicleError::EmptyField { field: "work" });
}

#[test]
fn recording_a_service_at_a_negative_cost_is_refused() {
    given(vec![stocked()])
        .when(VehicleCommand::RecordService {
            booking_id: booking(1),
            serviced_at: serviced_at(),
            mileage_km: 100,
            work: vec!["oil".into()],
            cost: rub(-1),
        })
        .then_expect_error(VehicleError::NegativeServiceCost);
}

// --- State, errors, events -------------------------------------------------------------------

#[test]
fn the_vehicle_exposes_its_status_price_location_and_reservation() {
    let mut vehicle = Vehicle::default();
    assert_eq!(vehicle.status(), VehicleStatus::NotStocked);
    assert_eq!(vehicle.vin(), None);
    vehicle.apply(stocked());
    vehicle.apply(reserved(7));
    assert_eq!(vehicle.status(), VehicleStatus::Reserved);
    assert_eq!(vehicle.reserved_for(), Some(order(7)));
    assert_eq!(vehicle.list_price(), Some(rub(1_500_000)));
    assert_eq!(vehicle.location(), Some("Lot A"));
    assert_eq!(vehicle.vin().map(Vin::as_str), Some("XTA210990Y2766389"));
}

#[test]
fn every_error_has_a_stable_code_and_a_readable_message() {
    let cases = [
        (VehicleError::NotStocked, "NOT_FOUND"),
        (VehicleError::AlreadyStocked, "VEHICLE_ALREADY_STOCKED"),
        (VehicleError::EmptyField { field: "brand" }, "VALIDATION"),
        (VehicleError::InvalidYear { year: 1 }, "VALIDATION"),
        (VehicleError::NonPositivePrice, "VALIDATION"),
        (
            VehicleError::NotAvailable {
                status: VehicleStatus::Sold,
            },
            "VEHICLE_NOT_AVAILABLE",
        ),
        (
            VehicleError::ReservedByAnotherOrder { order_id: order(1) },
            "VEHICLE_NOT_AVAILABLE",
        ),
        (
            VehicleError::NotReservedForOrder { order_id: order(1) },
            "VEHICLE_NOT_RESERVED_FOR_ORDER",
        ),
        (
            VehicleError::MileageBelowLastRecorded {
                last_km: 2,
                given_km: 1,
            },
            "MILEAGE_BELOW_LAST_RECORDED",
        ),
        (VehicleError::NegativeServiceCost, "VALIDATION"),
        (
            VehicleError::ServiceAlreadyRecorded {
                booking_id: order(1),
            },
            "SERVICE_ALREADY_RECORDED",
        ),
    ];
    for (error, code) in cases {
        assert_eq!(error.code(), code, "{error:?}");
    }
    assert_eq!(
        VehicleError::NotAvailable {
            status: VehicleStatus::Sold
        }
        .to_string(),
        "vehicle is not available: it is SOLD"
    );
    assert_eq!(
        VehicleError::EmptyField { field: "brand" }.to_string(),
        "brand must not be empty"
    );
}

#[test]
fn statuses_have_stable_names_and_only_sold_and_withdrawn_are_terminal() {
    use VehicleStatus::*;
    let names: Vec<_> = [NotStocked, Available, Reserved, Sold, Withdrawn]
        .map(|status| (status.as_str(), status.is_terminal()))
        .to_vec();
    assert_eq!(
        names,
        [
            ("NOT_STOCKED", false),
            ("AVAILABLE", false),
            ("RESERVED", false),
            ("SOLD", true),
            ("WITHDRAWN", true)
        ]
    );
}

#[test]
fn event_types_name_the_serialized_variant_at_version_1_0() {
    let events = [
        stocked(),
        VehicleEvent::VehicleRepriced {
            old_price: rub(2),
            new_price: rub(1),
        },
        VehicleEvent::VehicleRelocated {
            from: "a".into(),
            to: "b".into(),
        },
        reserved(1),
        VehicleEvent::VehicleReservationReleased { order_id: order(1) },
        VehicleEvent::VehicleSold { order_id: order(1) },
        VehicleEvent::VehicleWithdrawn { reason: "r".into() },
        service_recorded(booking(1), 1, &["oil"]),
    ];
    for event in events {
        let json = serde_json::to_value(&event).unwrap();
        let tag = json.as_object().unwrap().keys().next().unwrap().clone();
        assert_eq!(event.event_type(), tag);
        assert_eq!(event.event_version(), "1.0");
        assert_eq!(serde_json::from_value::<VehicleEvent>(json).unwrap(), event);
    }
}

// --- Properties over random command sequences ------------------------------------------------

fn command() -> impl Strategy<Value = VehicleCommand> {
    let order_id = (1..=3u128).prop_map(order);
    prop_oneof![
        prop_oneof![
            Just(stock()),
            Just(StockVehicle {
                brand: " ".into(),
                ..stock()
            }),
            Just(StockVehicle {
                year: 1800,
                ..stock()
            }),
        ]
        .prop_map(VehicleCommand::Stock),
        prop_oneof![
            Just(rub(-1)),
            Just(rub(0)),
            Just(rub(1_400_000)),
            Just(rub(1_500_000)),
            Just(Money::from_minor_units(2_000_000, Currency::USD)),
        ]
        .prop_map(|price| VehicleCommand::Reprice { price }),
        prop::sample::select(vec!["Lot A", " Lot A ", "Showroom", ""]).prop_map(|location| {
            VehicleCommand::Relocate {
                location: location.into(),
            }
        }),
        order_id
            .clone()
            .prop_map(|order_id| VehicleCommand::Reserve { order_id }),
        order_id
            .clone()
            .prop_map(|order_id| VehicleCommand::ReleaseReservation { order_id }),
        order_id.prop_map(|order_id| VehicleCommand::Sell { order_id }),
        prop::sample::select(vec!["damaged", " "]).prop_map(|reason| VehicleCommand::Withdraw {
            reason: reason.into()
        }),
        (
            (1..=3u128),
            prop::sample::select(vec![0u32, 12, 5_000, 20_000])
        )
            .prop_map(|(number, mileage_km)| record_service(
                booking(number),
                mileage_km,
                &["oil"]
            )),
    ]
}

/// One command's effect: the state before and after, and what `handle` returned.
struct Step {
    before: Vehicle,
    after: Vehicle,
    outcome: Result<Vec<VehicleEvent>, VehicleError>,
}

fn run(commands: Vec<VehicleCommand>) -> Vec<Step> {
    let mut vehicle = Vehicle::default();
    commands
        .into_iter()
        .map(|command| {
            let before = vehicle.clone();
            let outcome = execute(&mut vehicle, command, &());
            Step {
                before,
                after: vehicle.clone(),
                outcome,
            }
        })
        .collect()
}

proptest! {
    #[test]
    fn a_sold_or_withdrawn_vehicle_never_changes_again(commands in prop::collection::vec(command(), 0..40)) {
        for step in run(commands) {
            let serviced = step.outcome.as_ref().is_ok_and(|events| {
                events.iter().all(|event| matches!(event, VehicleEvent::VehicleServiceRecorded { .. }))
            });
            if step.before.status().is_terminal() && !serviced {
                prop_assert!(step.outcome.is_err(), "{:?}", step.outcome);
                prop_assert_eq!(step.before, step.after);
            }
        }
    }

    #[test]
    fn a_vehicle_is_never_reserved_for_two_orders(commands in prop::collection::vec(command(), 0..40)) {
        for step in run(commands) {
            let vehicle = step.after;
            prop_assert_eq!(vehicle.reserved_for().is_some(), vehicle.status() == VehicleStatus::Reserved);
            if let (Some(before), Some(after)) = (step.before.reserved_for(), vehicle.reserved_for()) {
                prop_assert_eq!(before, after, "reservation passed between orders without a release");
            }
        }
    }

    #[test]
    fn the_odometer_never_goes_backwards(commands in prop::collection::vec(command(), 0..40)) {
        for step in run(commands) {
            prop_assert!(step.after.mileage_km() >= step.before.mileage_km() || step.before.status() == VehicleStatus::NotStocked);
        }
    }

    #[test]
    fn events_and_snapshots_survive_a_json_round_trip(commands in prop::collection::vec(command(), 0..40)) {
        for step in run(commands) {
            for event in step.outcome.unwrap_or_default() {
                let json = serde_json::to_string(&event).unwrap();
                prop_assert_eq!(serde_json::from_str::<VehicleEvent>(&json).unwrap(), event);
            }
            let json = serde_json::to_string(&step.after).unwrap();
            prop_assert_eq!(serde_json::from_str::<Vehicle>(&json).unwrap(), step.after);
        }
    }
}
