//! A retry with the same idempotency key and input returns the first result; the same key with
//! another input is refused; both hold across a restart.

use serde_json::json;

use crate::helpers::*;

const REPRICE: &str = "mutation Reprice($id: UUID!, $amount: Decimal!, $key: String) {
  repriceVehicle(id: $id, price: { amount: $amount }, idempotencyKey: $key) { position replayed vehicle { listPrice { amount } } }
}";
const VEHICLE: &str = "0193a4b0-0000-7000-8000-0000000000e1";

#[tokio::test]
async fn retries_with_one_key_write_once_even_across_a_restart() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    app.ok(
        STOCK_VEHICLE,
        json!({ "input": vehicle_input(VEHICLE, "XTA210990Y2766389", "Vesta", "1500000.00") }),
    )
    .await;

    let vars = json!({ "id": VEHICLE, "amount": "1450000.00", "key": "reprice-2026-11-22" });
    let first = app.ok(REPRICE, vars.clone()).await["repriceVehicle"].clone();
    assert_eq!(first["replayed"], false);
    let retry = app.ok(REPRICE, vars.clone()).await["repriceVehicle"].clone();
    assert_eq!(retry["replayed"], true);
    assert_eq!(retry["position"], first["position"]);
    assert_eq!(app.event_count().await, ADMIN_EVENTS + 2);

    let other_input = json!({ "id": VEHICLE, "amount": "1.00", "key": "reprice-2026-11-22" });
    let response = app.graphql(REPRICE, other_input.clone()).await;
    assert_eq!(error_codes(&response), vec!["IDEMPOTENCY_KEY_REUSED"]);

    app.stop().await;
    let app = spawn_app(&dir).await;
    let after_restart = app.ok(REPRICE, vars).await["repriceVehicle"].clone();
    assert_eq!(after_restart["replayed"], true);
    assert_eq!(after_restart["position"], first["position"]);
    assert_eq!(
        after_restart["vehicle"]["listPrice"]["amount"],
        "1450000.00"
    );
    assert_eq!(
        error_codes(&app.graphql(REPRICE, other_input).await),
        vec!["IDEMPOTENCY_KEY_REUSED"]
    );
    assert_eq!(app.event_count().await, ADMIN_EVENTS + 2);

    // Without a key, the same change is simply a no-op on the aggregate: no event.
    app.ok(REPRICE, json!({ "id": VEHICLE, "amount": "1450000.00" }))
        .await;
    assert_eq!(app.event_count().await, ADMIN_EVENTS + 2);
    app.stop().await;
}

#[tokio::test]
async fn a_retried_create_without_a_client_id_returns_the_first_object() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    let mut input = vehicle_input("", "XTA210990Y2766389", "Vesta", "1500000.00");
    input.as_object_mut().unwrap().remove("id");
    let query = "mutation($input: StockVehicleInput!, $key: String) {
      stockVehicle(input: $input, idempotencyKey: $key) { replayed vehicle { id } } }";
    let vars = json!({ "input": input, "key": "stock-once" });
    let first = app.ok(query, vars.clone()).await["stockVehicle"].clone();
    let retry = app.ok(query, vars).await["stockVehicle"].clone();
    assert_eq!(first["replayed"], false);
    assert_eq!(retry["replayed"], true);
    assert_eq!(retry["vehicle"]["id"], first["vehicle"]["id"]);
    assert_eq!(app.event_count().await, ADMIN_EVENTS + 1);
    app.stop().await;
}

/// A vehicle of its own for one round (a Russian WMI: no check digit), in stock.
async fn stocked(app: &TestApp, round: usize) -> String {
    let vehicle = uuid::Uuid::now_v7().to_string();
    let vin = format!("XTA2109900{round:07}");
    app.ok(
        STOCK_VEHICLE,
        json!({ "input": vehicle_input(&vehicle, &vin, "Vesta", "1500000.00") }),
    )
    .await;
    vehicle
}

async fn draft(app: &TestApp, customer: &str, vehicle: &str) -> String {
    let order = uuid::Uuid::now_v7().to_string();
    app.ok(
        DRAFT_ORDER,
        json!({ "input": { "id": order, "customerId": customer, "vehicleId": vehicle } }),
    )
    .await;
    order
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_confirmations_for_one_vehicle_reserve_it_once() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    let customer = "0193a4b0-0000-7000-8000-0000000000e2";
    app.ok(
        REGISTER_CUSTOMER,
        json!({ "input": customer_input(customer) }),
    )
    .await;
    let mut tally = crate::race::Tally::new(&app.db);
    for round in 0..crate::race::rounds() {
        let vehicle = stocked(&app, round).await;
        let mut orders = Vec::new();
        for _ in 0..6 {
            orders.push(draft(&app, customer, &vehicle).await);
        }
        let confirmations = orders
            .iter()
            .map(|order| app.graphql(CONFIRM_ORDER, json!({ "id": order })));
        let responses = tally.round(futures::future::join_all(confirmations)).await;
        let winners = responses
            .iter()
            .filter(|r| r.get("errors").is_none())
            .count();
        let losers: Vec<_> = responses.iter().flat_map(error_codes).collect();
        assert_eq!(winners, 1, "round {round}: {responses:#?}");
        assert!(
            losers
                .iter()
                .all(|code| code == "VEHICLE_NOT_AVAILABLE" || code == "CONFLICT"),
            "round {round}: {losers:?}"
        );
        let state = app
            .ok(
                &format!("{{ vehicle(id: \"{vehicle}\") {{ status reservedForOrderId }} }}"),
                json!({}),
            )
            .await;
        assert_eq!(state["vehicle"]["status"], "RESERVED");
        let holder = state["vehicle"]["reservedForOrderId"].as_str().unwrap();
        for (order, response) in orders.iter().zip(&responses) {
            assert_eq!(
                response.get("errors").is_none(),
                order == holder,
                "round {round}: only the holder of the reservation is confirmed"
            );
        }
    }
    tally.assert_contended("six confirmations for one vehicle");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicate_confirmations_racing_each_other_keep_the_car_reserved() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    let customer = "0193a4b0-0000-7000-8000-0000000000e3";
    app.ok(
        REGISTER_CUSTOMER,
        json!({ "input": customer_input(customer) }),
    )
    .await;
    let mut tally = crate::race::Tally::new(&app.db);
    for round in 0..crate::race::rounds() {
        let vehicle = stocked(&app, round).await;
        let order = draft(&app, customer, &vehicle).await;
        // The same confirmation sent four times at once (a client retrying impatiently, without a
        // key): one confirms; a duplicate that ran alongside answers with that confirmation, one
        // that came after is told the order is no longer a draft.
        let confirmations = (0..4).map(|_| app.graphql(CONFIRM_ORDER, json!({ "id": order })));
        let responses = tally.round(futures::future::join_all(confirmations)).await;
        let stream = app
            .ok(
                "query($id: UUID!) { aggregateEvents(aggregateType: ORDER, id: $id) { edges { node { eventType } } } }",
                json!({ "id": order }),
            )
            .await;
        let confirmed = stream["aggregateEvents"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|edge| edge["node"]["eventType"] == "OrderConfirmed")
            .count();
        assert_eq!(confirmed, 1, "round {round}: {stream:#} {responses:#?}");
        for code in responses.iter().flat_map(error_codes) {
            assert!(
                code == "INVALID_ORDER_TRANSITION" || code == "CONFLICT",
                "round {round}: {responses:#?}"
            );
        }
        let state = app
            .ok(
                &format!(
                    "{{ order(id: \"{order}\") {{ status vehicle {{ status reservedForOrderId }} }} }}"
                ),
                json!({}),
            )
            .await;
        assert_eq!(
            state["order"],
            json!({ "status": "CONFIRMED", "vehicle": { "status": "RESERVED", "reservedForOrderId": order } }),
            "round {round}: a losing duplicate must not release the winner's reservation"
        );
    }
    tally.assert_contended("four duplicate confirmations");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicate_bookings_racing_each_other_keep_the_mechanics_slot() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    let customer = "0193a4b0-0000-7000-8000-0000000000e4";
    app.ok(
        STOCK_VEHICLE,
        json!({ "input": vehicle_input(VEHICLE, "XTA210990Y2766389", "Vesta", "1500000.00") }),
    )
    .await;
    app.ok(
        REGISTER_CUSTOMER,
        json!({ "input": customer_input(customer) }),
    )
    .await;
    let book = "mutation($id: UUID!, $m: String!, $s: DateTime!, $e: DateTime!) {
      bookService(input: { id: $id, customerId: \"0193a4b0-0000-7000-8000-0000000000e4\",
        vehicleId: \"0193a4b0-0000-7000-8000-0000000000e1\", mechanicId: $m, kind: REPAIR,
        start: $s, end: $e }) { booking { status } } }";
    let mut tally = crate::race::Tally::new(&app.db);
    for round in 0..crate::race::rounds() {
        let mechanic = format!("M-{round:03}");
        let same = json!({ "id": uuid::Uuid::now_v7().to_string(), "m": mechanic,
                           "s": "2030-04-02T07:00:00Z", "e": "2030-04-02T09:00:00Z" });
        let duplicates = (0..4).map(|_| app.graphql(book, same.clone()));
        let responses = tally.round(futures::future::join_all(duplicates)).await;
        let winners = responses
            .iter()
            .filter(|r| r.get("errors").is_none())
            .count();
        assert_eq!(winners, 1, "round {round}: {responses:#?}");
        for code in responses.iter().flat_map(error_codes) {
            assert!(
                code == "BOOKING_ALREADY_EXISTS" || code == "CONFLICT",
                "round {round}: {responses:#?}"
            );
        }
        // The slot is still held: an overlapping booking for the same mechanic is refused.
        let rival = json!({ "id": uuid::Uuid::now_v7().to_string(), "m": mechanic,
                            "s": "2030-04-02T08:00:00Z", "e": "2030-04-02T10:00:00Z" });
        assert_eq!(
            error_codes(&app.graphql(book, rival).await),
            vec!["MECHANIC_BUSY"],
            "round {round}"
        );
    }
    tally.assert_contended("four duplicate bookings");
    app.stop().await;
}

#[tokio::test]
async fn a_database_that_cannot_be_reached_is_answered_unavailable_not_internal() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    // The pools close as at shutdown: every statement now fails without reaching the database.
    app.db.close().await;
    // Signed in: checking the session is the first statement that fails. That is the server's
    // failure, so the answer says retry, never UNAUTHENTICATED (sign in again) or INTERNAL.
    let vars = json!({ "id": VEHICLE, "amount": "1.00", "key": "reprice-unreachable" });
    let write = app.graphql(REPRICE, vars).await;
    assert_eq!(error_codes(&write), ["STORAGE_UNAVAILABLE"], "{write:#}");
    let message = write["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("retry"), "{message}");
    assert!(
        !message.to_lowercase().contains("pool"),
        "no detail: {message}"
    );
    let read = app
        .graphql(
            &format!("{{ vehicle(id: \"{VEHICLE}\") {{ id }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(error_codes(&read), ["STORAGE_UNAVAILABLE"], "{read:#}");
    // Anonymous: no session to check, so it is the catalog query itself that fails.
    let browse = app
        .graphql_as(None, "{ vehicles(first: 1) { totalCount } }", json!({}))
        .await;
    assert_eq!(error_codes(&browse), ["STORAGE_UNAVAILABLE"], "{browse:#}");
    app.stop().await;
}
