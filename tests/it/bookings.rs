//! The workshop: booking, rescheduling, completing (the vehicle's history and odometer follow),
//! cancelling, racing bookings for one mechanic, and bad input.

use std::sync::Arc;

use aggregates::bookings::{BookingError, BookingStatus, MechanicDay, MechanicDayCommand};
use aggregates::bookings::{MechanicCode, MechanicDayError, ServiceKind, Slot, WorkshopError};
use aggregates::contact::{Email, Phone};
use aggregates::customer::CustomerCommand;
use aggregates::money::{Currency, Money};
use aggregates::vehicle::{Condition, StockVehicle};
use aggregates::vin::Vin;
use autosalon::Ledger;
use chrono::{DateTime, Duration, Utc};
use commands::bookings::BookingRequest;
use commands::clock::{FixedClock, SystemClock, UuidV7};
use commands::{Bookings, CommandError, Dealership, RequestContext};
use serde_json::{Value, json};
use tokio::sync::Barrier;
use uuid::Uuid;

use crate::helpers::*;

const VEHICLE: &str = "0193a4b0-0000-7000-8000-000000000001";
const CUSTOMER: &str = "0193a4b0-0000-7000-8000-0000000000c1";
const FIRST: &str = "0193a4b0-0000-7000-8000-0000000000e1";
const SECOND: &str = "0193a4b0-0000-7000-8000-0000000000e2";
const THIRD: &str = "0193a4b0-0000-7000-8000-0000000000e3";
const UNKNOWN: &str = "0193a4b0-0000-7000-8000-00000000ffff";

const BOOK: &str = "mutation Book($input: BookServiceInput!) {
  bookService(input: $input) { position replayed booking { id status mechanicId kind start end day notes
    customer { fullName } vehicle { vin } } }
}";

const RESCHEDULE: &str = "mutation Reschedule($id: UUID!, $mechanic: String!, $start: DateTime!, $end: DateTime!) {
  rescheduleBooking(id: $id, mechanicId: $mechanic, start: $start, end: $end) { booking { status mechanicId start end } }
}";

const START: &str =
    "mutation Start($id: UUID!) { startBooking(id: $id) { booking { status startedAt } } }";

const COMPLETE: &str =
    "mutation Complete($id: UUID!, $input: CompleteBookingInput!, $key: String!) {
  completeBooking(id: $id, input: $input, idempotencyKey: $key) {
    replayed booking { status mileageKm work cost { amount currency } completedAt } }
}";

const CANCEL: &str = "mutation Cancel($id: UUID!, $reason: String!) {
  cancelBooking(id: $id, reason: $reason) { booking { status cancellationReason } }
}";

const SCHEDULE: &str = "query Schedule($mechanic: String!, $date: String!) {
  mechanicSchedule(mechanicId: $mechanic, date: $date) { id status start end }
}";

/// `from`..`to` o'clock on 15 March 2030, Moscow time (UTC+3), as UTC instants.
fn slot(from: u32, to: u32) -> (String, String) {
    let at = |hour: u32| format!("2030-03-15T{:02}:00:00Z", hour - 3);
    (at(from), at(to))
}

fn booking_input(id: &str, mechanic: &str, (start, end): (String, String)) -> Value {
    json!({
        "id": id, "customerId": CUSTOMER, "vehicleId": VEHICLE, "mechanicId": mechanic,
        "kind": "MAINTENANCE", "start": start, "end": end, "notes": " 15 000 km service "
    })
}

async fn seed(app: &TestApp, mileage_km: i64) {
    let mut vehicle = vehicle_input(VEHICLE, "XTA210990Y2766389", "Vesta", "1500000.00");
    vehicle["mileageKm"] = json!(mileage_km);
    app.ok(STOCK_VEHICLE, json!({ "input": vehicle })).await;
    app.ok(
        REGISTER_CUSTOMER,
        json!({ "input": customer_input(CUSTOMER) }),
    )
    .await;
}

async fn book(app: &TestApp, id: &str, mechanic: &str, hours: (u32, u32)) -> Value {
    app.ok(
        BOOK,
        json!({ "input": booking_input(id, mechanic, slot(hours.0, hours.1)) }),
    )
    .await["bookService"]
        .clone()
}

#[tokio::test]
async fn a_service_is_booked_rescheduled_completed_and_shows_in_the_vehicles_history() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    seed(&app, 12).await;

    let booked = book(&app, FIRST, " m-017 ", (10, 12)).await;
    assert_eq!(booked["replayed"], false);
    assert_eq!(
        booked["booking"],
        json!({
            "id": FIRST, "status": "SCHEDULED", "mechanicId": "M-017", "kind": "MAINTENANCE",
            "start": "2030-03-15T07:00:00.000Z", "end": "2030-03-15T09:00:00.000Z", "day": "2030-03-15",
            "notes": "15 000 km service", "customer": { "fullName": "Anna Petrova" },
            "vehicle": { "vin": "XTA210990Y2766389" }
        })
    );
    let schedule = app
        .ok(
            SCHEDULE,
            json!({ "mechanic": "M-017", "date": "2030-03-15" }),
        )
        .await;
    assert_eq!(schedule["mechanicSchedule"][0]["id"], FIRST);

    // Rescheduling to another mechanic frees the first mechanic's slot.
    let (start, end) = slot(14, 16);
    let moved = app
        .ok(
            RESCHEDULE,
            json!({ "id": FIRST, "mechanic": "M-020", "start": start, "end": end }),
        )
        .await;
    assert_eq!(
        moved["rescheduleBooking"]["booking"],
        json!({ "status": "SCHEDULED", "mechanicId": "M-020",
                "start": "2030-03-15T11:00:00.000Z", "end": "2030-03-15T13:00:00.000Z" })
    );
    let schedule = app
        .ok(
            SCHEDULE,
            json!({ "mechanic": "M-017", "date": "2030-03-15" }),
        )
        .await;
    assert_eq!(schedule["mechanicSchedule"], json!([]));
    assert_eq!(
        book(&app, SECOND, "M-017", (10, 12)).await["booking"]["status"],
        "SCHEDULED"
    );

    // Start and complete: the vehicle's history and the catalog's odometer follow.
    let started = app.ok(START, json!({ "id": FIRST })).await;
    assert_eq!(started["startBooking"]["booking"]["status"], "IN_PROGRESS");
    let completion = json!({
        "id": FIRST, "key": "complete-e1",
        "input": { "mileageKm": 15020, "work": [" oil and filter ", "cabin filter"],
                   "cost": { "amount": "8500.00", "currency": "RUB" } }
    });
    let completed = app.ok(COMPLETE, completion.clone()).await;
    let booking = &completed["completeBooking"]["booking"];
    assert_eq!(booking["status"], "COMPLETED");
    assert_eq!(booking["mileageKm"], 15020);
    assert_eq!(booking["work"], json!(["oil and filter", "cabin filter"]));
    assert_eq!(
        booking["cost"],
        json!({ "amount": "8500.00", "currency": "RUB" })
    );
    let events = app.event_count().await;
    let again = app.ok(COMPLETE, completion).await;
    assert_eq!(again["completeBooking"]["replayed"], true);
    assert_eq!(app.event_count().await, events, "a retry writes nothing");

    let history = app
        .ok(
            "query History($id: UUID!) {
               serviceHistory(vehicleId: $id) { bookingId mileageKm work cost { amount } }
               vehicle(id: $id) { mileageKm }
               bookings(filter: { vehicleId: $id }) { totalCount edges { node { id status } } }
               completed: bookings(filter: { status: COMPLETED, mechanicId: \"m-020\" }) { totalCount }
               march: bookings(filter: { from: \"2030-03-15T10:00:00Z\", to: \"2030-03-16T00:00:00Z\" }) { totalCount }
             }",
            json!({ "id": VEHICLE }),
        )
        .await;
    assert_eq!(
        history["serviceHistory"],
        json!([{ "bookingId": FIRST, "mileageKm": 15020, "work": ["oil and filter", "cabin filter"],
                 "cost": { "amount": "8500.00" } }])
    );
    assert_eq!(history["vehicle"]["mileageKm"], 15020);
    assert_eq!(history["bookings"]["totalCount"], 2);
    assert_eq!(history["completed"]["totalCount"], 1);
    assert_eq!(history["march"]["totalCount"], 1);

    // Cancelling frees the slot for another customer.
    let cancelled = app
        .ok(
            CANCEL,
            json!({ "id": SECOND, "reason": "customer is abroad" }),
        )
        .await;
    assert_eq!(
        cancelled["cancelBooking"]["booking"],
        json!({ "status": "CANCELLED", "cancellationReason": "customer is abroad" })
    );
    assert_eq!(
        book(&app, THIRD, "M-017", (10, 11)).await["booking"]["status"],
        "SCHEDULED"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_two_racing_bookings_for_one_mechanic_slot_one_wins_and_the_other_is_busy() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    seed(&app, 0).await;
    let mut tally = crate::race::Tally::new(&app.db);
    for round in 0..crate::race::rounds() {
        // A mechanic of its own each round, so every round starts from a free day.
        let mechanic = format!("M-{round:03}");
        let ids = [Uuid::now_v7(), Uuid::now_v7()].map(|id| id.to_string());
        let first = json!({ "query": BOOK, "variables": { "input": booking_input(&ids[0], &mechanic, slot(10, 12)) } });
        let second = json!({ "query": BOOK, "variables": { "input": booking_input(&ids[1], &mechanic, slot(11, 13)) } });
        let (a, b) = tally
            .round(async { tokio::join!(app.post_json(&first), app.post_json(&second)) })
            .await;
        let mut codes = [error_codes(&a), error_codes(&b)];
        codes.sort();
        assert_eq!(
            codes,
            [vec![], vec!["MECHANIC_BUSY".to_string()]],
            "round {round}: {a:#} {b:#}"
        );
        let listed = app
            .ok(
                "query($m: String!) { bookings(filter: { mechanicId: $m }) { totalCount } }",
                json!({ "m": mechanic }),
            )
            .await;
        assert_eq!(listed["bookings"]["totalCount"], 1, "round {round}");
    }
    tally.assert_contended("two bookings of one mechanic's slot over HTTP");
    app.stop().await;
}

/// Sends `body`, expects exactly the error `code`, and checks the log did not grow.
async fn refused(app: &TestApp, query: &str, variables: Value, code: &str) {
    let before = app.event_count().await;
    let response = app.graphql(query, variables).await;
    assert_eq!(
        error_codes(&response),
        vec![code.to_string()],
        "{response:#}"
    );
    assert_eq!(app.event_count().await, before, "nothing may be written");
}

#[tokio::test]
async fn bad_bookings_are_refused_with_their_codes_and_write_nothing() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    seed(&app, 41_200).await;

    let with = |change: &dyn Fn(&mut Value)| {
        let mut input = booking_input(FIRST, "M-017", slot(10, 12));
        change(&mut input);
        json!({ "input": input })
    };
    let cases: [(Value, &str); 8] = [
        (
            with(&|i| {
                i["start"] = json!("2030-03-15T09:00:00Z");
                i["end"] = json!("2030-03-15T07:00:00Z");
            }),
            "INVALID_SLOT",
        ),
        (
            with(&|i| i["start"] = json!("2030-03-15T07:15:00Z")),
            "INVALID_SLOT",
        ),
        (
            with(&|i| {
                i["start"] = json!("2030-03-15T16:00:00Z");
                i["end"] = json!("2030-03-15T18:00:00Z");
            }),
            "OUTSIDE_WORKING_HOURS",
        ),
        (
            with(&|i| {
                i["start"] = json!("2020-03-16T07:00:00Z");
                i["end"] = json!("2020-03-16T09:00:00Z");
            }),
            "SLOT_IN_THE_PAST",
        ),
        (with(&|i| i["customerId"] = json!(UNKNOWN)), "NOT_FOUND"),
        (with(&|i| i["vehicleId"] = json!(UNKNOWN)), "NOT_FOUND"),
        (with(&|i| i["mechanicId"] = json!("M 017")), "VALIDATION"),
        (with(&|i| i["kind"] = json!("WASH")), "VALIDATION"),
    ];
    for (variables, code) in cases {
        refused(&app, BOOK, variables, code).await;
    }

    // The odometer never goes backwards: the vehicle came in with 41 200 km.
    book(&app, FIRST, "M-017", (10, 12)).await;
    app.ok(START, json!({ "id": FIRST })).await;
    let backwards = json!({
        "id": FIRST, "key": "complete-backwards",
        "input": { "mileageKm": 40000, "work": ["oil"], "cost": { "amount": "100.00" } }
    });
    refused(&app, COMPLETE, backwards, "MILEAGE_BELOW_LAST_RECORDED").await;
    let not_started = json!({ "id": SECOND, "key": "k", "input": { "mileageKm": 50000, "work": ["oil"], "cost": { "amount": "1.00" } } });
    refused(&app, COMPLETE, not_started, "NOT_FOUND").await;
    refused(
        &app,
        CANCEL,
        json!({ "id": FIRST, "reason": "too late" }),
        "INVALID_BOOKING_TRANSITION",
    )
    .await;
    refused(
        &app,
        SCHEDULE,
        json!({ "mechanic": "M-017", "date": "15.03.2030" }),
        "VALIDATION",
    )
    .await;
    refused(
        &app,
        "query($id: UUID!) { serviceHistory(vehicleId: $id) { bookingId } }",
        json!({ "id": UNKNOWN }),
        "NOT_FOUND",
    )
    .await;
    refused(
        &app,
        "{ bookings(filter: { from: \"2030-03-16T00:00:00Z\", to: \"2030-03-15T00:00:00Z\" }) { totalCount } }",
        json!({}),
        "VALIDATION",
    )
    .await;
    refused(
        &app,
        "query($id: UUID!) { booking(id: $id) { id } }",
        json!({ "id": UNKNOWN }),
        "NOT_FOUND",
    )
    .await;
    app.stop().await;
}

// ----- The boundary, straight against the service on one SQLite file -----

struct Workshop {
    ledger: Ledger,
    bookings: Arc<Bookings>,
    customer_id: Uuid,
    vehicle_id: Uuid,
}

async fn workshop(dir: &tempfile::TempDir) -> Workshop {
    let ledger = Ledger::open(&database_url(&dir.path().join("workshop.db")))
        .await
        .unwrap();
    let dealership = Dealership::new(
        ledger.db.clone(),
        ledger.upcasters.clone(),
        Arc::new(SystemClock),
        Arc::new(UuidV7),
    );
    let ctx = RequestContext::default();
    let (customer_id, vehicle_id) = (Uuid::now_v7(), Uuid::now_v7());
    dealership
        .register_customer(
            &ctx,
            customer_id,
            CustomerCommand::Register {
                full_name: "Anna Petrova".into(),
                email: Email::parse("anna@example.ru").unwrap(),
                phone: Phone::parse("+79161234567").unwrap(),
                address: "Moscow".into(),
                registered_at: Utc::now(),
            },
            None,
        )
        .await
        .unwrap();
    dealership
        .stock_vehicle(
            &ctx,
            vehicle_id,
            StockVehicle {
                vin: Vin::parse("XTA210990Y2766389").unwrap(),
                brand: "Lada".into(),
                model: "Vesta".into(),
                year: 2024,
                trim: "Comfort".into(),
                colour: "white".into(),
                mileage_km: 0,
                condition: Condition::New,
                location: "Workshop".into(),
                list_price: Money::new("1500000".parse().unwrap(), Currency::RUB).unwrap(),
                specifications: Default::default(),
                stocked_at: Utc::now(),
            },
            None,
        )
        .await
        .unwrap();
    let bookings = Arc::new(Bookings::new(
        ledger.db.clone(),
        ledger.upcasters.clone(),
        Arc::new(SystemClock),
        Arc::new(UuidV7),
    ));
    Workshop {
        ledger,
        bookings,
        customer_id,
        vehicle_id,
    }
}

/// Books every slot at once, each from its own task, released together by a barrier.
async fn book_concurrently(
    workshop: &Workshop,
    slots: Vec<Slot>,
) -> Vec<Result<Uuid, CommandError>> {
    let barrier = Arc::new(Barrier::new(slots.len()));
    let tasks: Vec<_> = slots
        .into_iter()
        .map(|slot| {
            let (bookings, barrier) = (workshop.bookings.clone(), barrier.clone());
            let request = BookingRequest {
                customer_id: workshop.customer_id,
                vehicle_id: workshop.vehicle_id,
                mechanic: MechanicCode::parse("M-017").unwrap(),
                kind: ServiceKind::Repair,
                slot,
                notes: String::new(),
            };
            tokio::spawn(async move {
                let id = Uuid::now_v7();
                barrier.wait().await;
                bookings
                    .book_service(&RequestContext::default(), id, request, None)
                    .await
                    .map(|written| written.id)
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    outcomes
}

/// Half-hour steps from 08:00 Moscow time on 15 March 2030.
fn steps(from: i64, to: i64) -> Slot {
    steps_on(0, from, to)
}

/// Half-hour steps from 08:00 Moscow time, `days` after 15 March 2030.
fn steps_on(days: usize, from: i64, to: i64) -> Slot {
    let opening: DateTime<Utc> = "2030-03-15T05:00:00Z".parse().unwrap();
    let opening = opening + Duration::days(days as i64);
    Slot::new(
        opening + Duration::minutes(30 * from),
        opening + Duration::minutes(30 * to),
    )
    .unwrap()
}

async fn rows(workshop: &Workshop) -> i64 {
    workshop.ledger.projections.catch_up_all().await.unwrap();
    sqlx::query_scalar("SELECT count(*) FROM bookings WHERE mechanic_id = 'M-017'")
        .fetch_one(workshop.ledger.db.pool())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_racing_bookings_of_overlapping_slots_for_one_mechanic_yield_exactly_one() {
    let dir = temp_dir();
    let workshop = workshop(&dir).await;
    let mut tally = crate::race::Tally::new(&workshop.ledger.db);
    let rounds = crate::race::rounds();
    for round in 0..rounds {
        // One day per round. Every slot contains 10:00-10:30, so any two overlap.
        let slots = (0..16)
            .map(|i| steps_on(round, 4 - (i % 5), 5 + (i % 4)))
            .collect();
        let outcomes = tally.round(book_concurrently(&workshop, slots)).await;
        let winners = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
        assert_eq!(winners, 1, "round {round}: {outcomes:?}");
        for outcome in outcomes.iter().filter(|outcome| outcome.is_err()) {
            assert!(
                matches!(
                    outcome,
                    Err(CommandError::Workshop(WorkshopError::MechanicDay(
                        MechanicDayError::Busy { .. }
                    )))
                ),
                "round {round}: {outcome:?}"
            );
        }
        let day = workshop
            .bookings
            .mechanic_day(
                &MechanicCode::parse("M-017").unwrap(),
                steps_on(round, 0, 1).day(),
            )
            .await
            .unwrap();
        assert_eq!(day.claims().len(), 1, "round {round}");
    }
    tally.assert_contended("sixteen bookings of overlapping slots");
    assert_eq!(rows(&workshop).await, rounds as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_racing_bookings_of_separate_slots_for_one_mechanic_all_succeed() {
    let dir = temp_dir();
    let workshop = workshop(&dir).await;
    let mut tally = crate::race::Tally::new(&workshop.ledger.db);
    let rounds = crate::race::rounds();
    for round in 0..rounds {
        let slots = (0..16).map(|i| steps_on(round, i, i + 1)).collect();
        let outcomes = tally.round(book_concurrently(&workshop, slots)).await;
        assert!(
            outcomes.iter().all(|outcome| outcome.is_ok()),
            "round {round}: {outcomes:?}"
        );
    }
    // Every claim goes to one stream per day: the racers collide there and are re-decided.
    tally.assert_contended("sixteen bookings of separate slots");
    assert_eq!(rows(&workshop).await, 16 * rounds as i64);
}

fn request(workshop: &Workshop, mechanic: &str, slot: Slot) -> BookingRequest {
    BookingRequest {
        customer_id: workshop.customer_id,
        vehicle_id: workshop.vehicle_id,
        mechanic: MechanicCode::parse(mechanic).unwrap(),
        kind: ServiceKind::Maintenance,
        slot,
        notes: String::new(),
    }
}

/// The workshop's service with its clock stopped at `now`.
fn service_at(workshop: &Workshop, now: &str) -> Bookings {
    Bookings::new(
        workshop.ledger.db.clone(),
        workshop.ledger.upcasters.clone(),
        Arc::new(FixedClock(now.parse().unwrap())),
        Arc::new(UuidV7),
    )
}

fn is_busy(outcome: &Result<commands::Written, CommandError>) -> bool {
    matches!(
        outcome,
        Err(CommandError::Workshop(WorkshopError::MechanicDay(
            MechanicDayError::Busy { .. }
        )))
    )
}

#[tokio::test]
async fn a_no_show_frees_the_slot_and_rescheduling_within_the_day_moves_the_claim() {
    let dir = temp_dir();
    let workshop = workshop(&dir).await;
    let before = service_at(&workshop, "2030-03-01T09:00:00Z");
    let during = service_at(&workshop, "2030-03-15T08:00:00Z");
    let ctx = RequestContext::default();
    let mechanic = MechanicCode::parse("M-017").unwrap();
    let (first, second) = (Uuid::now_v7(), Uuid::now_v7());

    before
        .book_service(&ctx, first, request(&workshop, "M-017", steps(4, 8)), None)
        .await
        .unwrap();
    // Moving to an overlapping later slot on the same day: the old claim is released.
    before
        .reschedule_booking(&ctx, first, mechanic.clone(), steps(6, 10), None)
        .await
        .unwrap();
    let day = before
        .mechanic_day(&mechanic, steps(0, 1).day())
        .await
        .unwrap();
    let claimed: Vec<_> = day.claims().iter().map(|claim| claim.slot).collect();
    assert_eq!(claimed, vec![steps(6, 10)]);
    let early = before
        .book_service(&ctx, second, request(&workshop, "M-017", steps(4, 6)), None)
        .await;
    assert!(early.is_ok(), "{early:?}");

    // Too early for a no-show before the slot starts; once it has, the slot is freed.
    let refused = before.mark_booking_no_show(&ctx, first, None).await;
    assert!(
        matches!(
            refused,
            Err(CommandError::Workshop(WorkshopError::Booking(
                BookingError::NoShowBeforeStart { .. }
            )))
        ),
        "{refused:?}"
    );
    during
        .mark_booking_no_show(&ctx, first, None)
        .await
        .unwrap();
    assert_eq!(
        during.booking(first).await.unwrap().status(),
        BookingStatus::NoShow
    );
    let day = during
        .mechanic_day(&mechanic, steps(0, 1).day())
        .await
        .unwrap();
    assert_eq!(
        day.claims().len(),
        1,
        "only the second booking's claim is left"
    );
    assert_eq!(rows(&workshop).await, 2);
}

#[tokio::test]
async fn a_claim_left_behind_by_a_booking_that_never_came_to_exist_is_freed_once_stale() {
    let dir = temp_dir();
    let workshop = workshop(&dir).await;
    let mechanic = MechanicCode::parse("M-017").unwrap();
    // A request that claimed the slot and then died before recording its booking.
    let days = workshop
        .ledger
        .db
        .framework::<MechanicDay>(&workshop.ledger.upcasters, ());
    let day_id = aggregates::bookings::mechanic_day_id(&mechanic, steps(0, 1).day());
    days.execute(
        &day_id.to_string(),
        MechanicDayCommand::Claim {
            mechanic: mechanic.clone(),
            day: steps(0, 1).day(),
            booking_id: Uuid::now_v7(),
            slot: steps(4, 8),
            claimed_at: "2030-03-01T09:00:00Z".parse().unwrap(),
        },
    )
    .await
    .unwrap();
    let ctx = RequestContext::default();

    // Within the grace period the claim may belong to a booking being recorded right now.
    let soon = service_at(&workshop, "2030-03-01T09:04:00Z");
    let outcome = soon
        .book_service(
            &ctx,
            Uuid::now_v7(),
            request(&workshop, "M-017", steps(5, 6)),
            None,
        )
        .await;
    assert!(is_busy(&outcome), "{outcome:?}");

    let later = service_at(&workshop, "2030-03-01T09:06:00Z");
    let id = Uuid::now_v7();
    later
        .book_service(&ctx, id, request(&workshop, "M-017", steps(5, 6)), None)
        .await
        .unwrap();
    let day = later
        .mechanic_day(&mechanic, steps(0, 1).day())
        .await
        .unwrap();
    let holders: Vec<_> = day.claims().iter().map(|claim| claim.booking_id).collect();
    assert_eq!(holders, vec![id]);
}
