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

#[tokio::test]
async fn concurrent_confirmations_for_one_vehicle_reserve_it_once() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    let customer = "0193a4b0-0000-7000-8000-0000000000e2";
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
    let orders: Vec<String> = (0..6)
        .map(|n| format!("0193a4b0-0000-7000-8000-0000000001e{n}"))
        .collect();
    for order in &orders {
        app.ok(
            DRAFT_ORDER,
            json!({ "input": { "id": order, "customerId": customer, "vehicleId": VEHICLE } }),
        )
        .await;
    }
    let confirmations = orders
        .iter()
        .map(|order| app.graphql(CONFIRM_ORDER, json!({ "id": order })));
    let responses = futures::future::join_all(confirmations).await;
    let winners = responses
        .iter()
        .filter(|r| r.get("errors").is_none())
        .count();
    let losers: Vec<_> = responses.iter().flat_map(error_codes).collect();
    assert_eq!(winners, 1, "{responses:#?}");
    assert!(
        losers
            .iter()
            .all(|code| code == "VEHICLE_NOT_AVAILABLE" || code == "CONFLICT"),
        "{losers:?}"
    );
    let vehicle = app
        .ok(
            &format!("{{ vehicle(id: \"{VEHICLE}\") {{ status reservedForOrderId }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(vehicle["vehicle"]["status"], "RESERVED");
    let holder = vehicle["vehicle"]["reservedForOrderId"]
        .as_str()
        .unwrap()
        .to_string();
    for (order, response) in orders.iter().zip(&responses) {
        let confirmed = response.get("errors").is_none();
        assert_eq!(
            confirmed,
            *order == holder,
            "only the holder of the reservation is confirmed"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn duplicate_confirmations_racing_each_other_keep_the_car_reserved() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    let customer = "0193a4b0-0000-7000-8000-0000000000e3";
    let order = "0193a4b0-0000-7000-8000-0000000002e0";
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
    app.ok(
        DRAFT_ORDER,
        json!({ "input": { "id": order, "customerId": customer, "vehicleId": VEHICLE } }),
    )
    .await;
    // The same confirmation sent four times at once (a client retrying impatiently, without a key).
    let confirmations = (0..4).map(|_| app.graphql(CONFIRM_ORDER, json!({ "id": order })));
    let responses = futures::future::join_all(confirmations).await;
    for response in &responses {
        for code in error_codes(response) {
            assert!(
                code == "INVALID_ORDER_TRANSITION" || code == "CONFLICT",
                "{response:#}"
            );
        }
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
        "a losing duplicate must not release the winner's reservation"
    );
    app.stop().await;
}

#[tokio::test]
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
    let book = "mutation($id: UUID!, $s: DateTime!, $e: DateTime!) {
      bookService(input: { id: $id, customerId: \"0193a4b0-0000-7000-8000-0000000000e4\",
        vehicleId: \"0193a4b0-0000-7000-8000-0000000000e1\", mechanicId: \"M-050\", kind: REPAIR,
        start: $s, end: $e }) { booking { status } } }";
    let same = json!({ "id": "0193a4b0-0000-7000-8000-0000000003e0",
                       "s": "2030-04-02T07:00:00Z", "e": "2030-04-02T09:00:00Z" });
    let duplicates = (0..4).map(|_| app.graphql(book, same.clone()));
    let responses = futures::future::join_all(duplicates).await;
    assert!(
        responses.iter().any(|r| r.get("errors").is_none()),
        "{responses:#?}"
    );
    // The slot is still held: an overlapping booking for the same mechanic is refused.
    let rival = json!({ "id": "0193a4b0-0000-7000-8000-0000000003e1",
                        "s": "2030-04-02T08:00:00Z", "e": "2030-04-02T10:00:00Z" });
    assert_eq!(
        error_codes(&app.graphql(book, rival).await),
        vec!["MECHANIC_BUSY"]
    );
    app.stop().await;
}
