//! The core loop over HTTP, then a restart on the same file.

use serde_json::{Value, json};

use crate::helpers::*;

const VESTA: &str = "0193a4b0-0000-7000-8000-0000000000a1";
const NIVA: &str = "0193a4b0-0000-7000-8000-0000000000a2";
const ANNA: &str = "0193a4b0-0000-7000-8000-0000000000c1";
const FIRST_ORDER: &str = "0193a4b0-0000-7000-8000-0000000000d1";
const SECOND_ORDER: &str = "0193a4b0-0000-7000-8000-0000000000d2";

const READ_BACK: &str = "query ReadBack($vesta: UUID!, $order: UUID!, $second: UUID!) {
  vehicles(filter: { brand: \"lada\" }) { totalCount edges { node { id vin model status listPrice { amount currency } } } }
  vehicleCounts { brand model count }
  vehicle(id: $vesta) { status reservedForOrderId location }
  order(id: $order) { status cancellationReason total { amount } customer { fullName phone } vehicle { vin } }
  second: order(id: $second) { status }
  events(first: 200) { totalCount edges { node { position aggregateType eventType eventVersion sequence metadata } } }
  aggregateEvents(aggregateType: ORDER, id: $order) { edges { node { sequence eventType } } }
}";

#[tokio::test]
async fn a_sale_is_placed_refused_for_a_second_buyer_cancelled_and_survives_a_restart() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;

    let vesta = app
        .ok(
            STOCK_VEHICLE,
            json!({ "input": vehicle_input(VESTA, "XTA210990Y2766389", "Vesta", "1500000.00") }),
        )
        .await;
    assert_eq!(vesta["stockVehicle"]["vehicle"]["status"], "AVAILABLE");
    assert_eq!(
        vesta["stockVehicle"]["vehicle"]["listPrice"],
        json!({ "amount": "1500000.00", "currency": "RUB" })
    );
    app.ok(
        STOCK_VEHICLE,
        json!({ "input": vehicle_input(NIVA, "XTA212140K1234567", "Niva", "1100000.00") }),
    )
    .await;

    let anna = app
        .ok(REGISTER_CUSTOMER, json!({ "input": customer_input(ANNA) }))
        .await;
    assert_eq!(
        anna["registerCustomer"]["customer"]["phone"],
        "+79161234567"
    );

    let draft = app
        .ok(
            DRAFT_ORDER,
            json!({ "input": { "id": FIRST_ORDER, "customerId": ANNA, "vehicleId": VESTA } }),
        )
        .await;
    assert_eq!(draft["draftOrder"]["order"]["status"], "DRAFT");
    assert_eq!(
        draft["draftOrder"]["order"]["total"]["amount"],
        "1500000.00"
    );

    let discounted = app
        .ok(
            "mutation { applyOrderDiscount(id: \"0193a4b0-0000-7000-8000-0000000000d1\", discount: { percent: \"5\" }) {
                order { total { amount } discount { kind percent amount { amount } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        discounted["applyOrderDiscount"]["order"]["total"]["amount"],
        "1425000.00"
    );
    assert_eq!(
        discounted["applyOrderDiscount"]["order"]["discount"]["amount"]["amount"],
        "75000.00"
    );

    let confirmed = app.ok(CONFIRM_ORDER, json!({ "id": FIRST_ORDER })).await;
    assert_eq!(confirmed["confirmOrder"]["order"]["status"], "CONFIRMED");
    assert_eq!(
        confirmed["confirmOrder"]["order"]["vehicle"],
        json!({ "status": "RESERVED", "reservedForOrderId": FIRST_ORDER })
    );

    // A second buyer for the same car: the draft is allowed, the confirmation is not.
    app.ok(
        DRAFT_ORDER,
        json!({ "input": { "id": SECOND_ORDER, "customerId": ANNA, "vehicleId": VESTA } }),
    )
    .await;
    let events_before = app.event_count().await;
    let refused = app
        .graphql(CONFIRM_ORDER, json!({ "id": SECOND_ORDER }))
        .await;
    assert_eq!(error_codes(&refused), vec!["VEHICLE_NOT_AVAILABLE"]);
    assert_eq!(
        app.event_count().await,
        events_before,
        "a refused confirmation writes nothing"
    );

    let cancelled = app
        .ok(
            CANCEL_ORDER,
            json!({ "id": FIRST_ORDER, "reason": "customer changed their mind" }),
        )
        .await;
    assert_eq!(cancelled["cancelOrder"]["order"]["status"], "CANCELLED");
    assert_eq!(
        cancelled["cancelOrder"]["order"]["vehicle"]["status"],
        "AVAILABLE"
    );

    // Now the second buyer can have it.
    let second = app.ok(CONFIRM_ORDER, json!({ "id": SECOND_ORDER })).await;
    assert_eq!(second["confirmOrder"]["order"]["status"], "CONFIRMED");

    let variables = json!({ "vesta": VESTA, "order": FIRST_ORDER, "second": SECOND_ORDER });
    let before = app.ok(READ_BACK, variables.clone()).await;
    check_read_back(&before);

    app.stop().await;
    let restarted = spawn_app(&dir).await;
    let after = restarted.ok(READ_BACK, variables).await;
    assert_eq!(before, after, "a restart on the same file answers the same");
    restarted.stop().await;
}

fn check_read_back(data: &Value) {
    assert_eq!(data["vehicles"]["totalCount"], 2);
    assert_eq!(
        data["vehicleCounts"],
        json!([{ "brand": "Lada", "model": "Niva", "count": 1 }, { "brand": "Lada", "model": "Vesta", "count": 1 }])
    );
    assert_eq!(data["vehicle"]["status"], "RESERVED");
    assert_eq!(data["vehicle"]["reservedForOrderId"], SECOND_ORDER);
    assert_eq!(data["order"]["status"], "CANCELLED");
    assert_eq!(
        data["order"]["cancellationReason"],
        "customer changed their mind"
    );
    assert_eq!(data["order"]["customer"]["fullName"], "Anna Petrova");
    assert_eq!(data["order"]["vehicle"]["vin"], "XTA210990Y2766389");
    assert_eq!(data["second"]["status"], "CONFIRMED");

    let events = data["events"]["edges"].as_array().unwrap();
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["node"]["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        vec![
            "UserCreated",
            "VehicleStocked",
            "VehicleStocked",
            "CustomerRegistered",
            "OrderDrafted",
            "DiscountApplied",
            "VehicleReserved",
            "OrderConfirmed",
            "OrderDrafted",
            "OrderCancelled",
            "VehicleReservationReleased",
            "VehicleReserved",
            "OrderConfirmed",
        ]
    );
    let positions: Vec<i64> = events
        .iter()
        .map(|e| e["node"]["position"].as_i64().unwrap())
        .collect();
    assert_eq!(
        positions,
        (1..=13).collect::<Vec<_>>(),
        "positions are gap-free and in commit order"
    );
    for event in events {
        let metadata = &event["node"]["metadata"];
        for key in [
            "actor_id",
            "actor_role",
            "correlation_id",
            "causation_id",
            "command",
        ] {
            assert!(
                metadata[key].is_string(),
                "metadata {key} missing in {event}"
            );
        }
        // `DiscountApplied` names its promotion since version 2.0.
        let version = if event["node"]["eventType"] == "DiscountApplied" {
            "2.0"
        } else {
            "1.0"
        };
        assert_eq!(event["node"]["eventVersion"], version, "{event}");
    }
    assert_eq!(
        events[6]["node"]["metadata"]["command"], "ConfirmOrder",
        "the reservation names its cause"
    );
    let order_stream: Vec<&str> = data["aggregateEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(
        order_stream,
        vec![
            "OrderDrafted",
            "DiscountApplied",
            "OrderConfirmed",
            "OrderCancelled"
        ]
    );
}

#[tokio::test]
async fn the_actor_recorded_is_the_signed_in_account_whatever_the_headers_claim() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    let sales = app
        .sign_in_as("olga@autosalon.test", &["SALES"], None)
        .await;
    let me = app
        .graphql_as(Some(&sales), "{ me { actorId account { id } } }", json!({}))
        .await;
    let account = me["data"]["me"]["account"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(me["data"]["me"]["actorId"], format!("user:{account}"));
    let before = app.event_count().await;
    let response: Value = reqwest::Client::new()
        .post(app.url("/graphql"))
        .bearer_auth(&sales)
        .header("x-actor-id", "clerk-17")
        .header("x-actor-role", "admin")
        .header("x-correlation-id", "visit-2026-11-22-001")
        .json(
            &json!({ "query": REGISTER_CUSTOMER, "variables": { "input": customer_input(ANNA) } }),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(response.get("errors").is_none(), "{response}");
    let events = app
        .ok(
            "query($after: Position) { events(afterPosition: $after) { edges { node { metadata } } } }",
            json!({ "after": before }),
        )
        .await;
    let metadata = &events["events"]["edges"][0]["node"]["metadata"];
    assert_eq!(metadata["actor_id"], format!("user:{account}"));
    assert_eq!(metadata["actor_role"], "sales");
    assert_eq!(metadata["correlation_id"], "visit-2026-11-22-001");
    assert_eq!(metadata["command"], "RegisterCustomer");
    app.stop().await;
}

#[tokio::test]
async fn catalog_filters_and_pages_through_vehicles() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    let vins = [
        "XTA210990Y2766381",
        "XTA210990Y2766382",
        "XTA210990Y2766383",
        "XTA210990Y2766384",
    ];
    let prices = ["900000.00", "1200000.00", "1500000.00", "2100000.00"];
    for (n, (vin, price)) in vins.iter().zip(prices).enumerate() {
        let id = format!("0193a4b0-0000-7000-8000-00000000010{n}");
        let model = if n % 2 == 0 { "Vesta" } else { "Granta" };
        app.ok(
            STOCK_VEHICLE,
            json!({ "input": vehicle_input(&id, vin, model, price) }),
        )
        .await;
    }
    let filtered = app
        .ok(
            "{ vehicles(filter: { model: \"Vesta\", priceFrom: \"1000000\", priceTo: \"2000000.00\" }) {
                totalCount edges { node { vin } } } }",
            json!({}),
        )
        .await;
    assert_eq!(filtered["vehicles"]["totalCount"], 1);
    let stated = app
        .ok("{ vehicles { totalCount reflectsPosition } }", json!({}))
        .await;
    assert_eq!(
        stated["vehicles"],
        json!({ "totalCount": 4, "reflectsPosition": ADMIN_EVENTS + 4 }),
        "four stockings, four events: the count reflects all of them"
    );
    assert_eq!(
        filtered["vehicles"]["edges"][0]["node"]["vin"],
        "XTA210990Y2766383"
    );

    let first = app
        .ok("{ vehicles(first: 3) { totalCount pageInfo { hasNextPage endCursor } edges { node { vin } } } }", json!({}))
        .await;
    assert_eq!(first["vehicles"]["totalCount"], 4);
    assert_eq!(first["vehicles"]["pageInfo"]["hasNextPage"], true);
    let cursor = first["vehicles"]["pageInfo"]["endCursor"].as_str().unwrap();
    let rest = app
        .ok(
            "query($after: String) { vehicles(first: 3, after: $after) { pageInfo { hasNextPage } edges { node { vin } } } }",
            json!({ "after": cursor }),
        )
        .await;
    assert_eq!(rest["vehicles"]["pageInfo"]["hasNextPage"], false);
    assert_eq!(
        rest["vehicles"]["edges"],
        json!([{ "node": { "vin": "XTA210990Y2766384" } }])
    );

    let by_brand = app
        .ok(
            "{ vehicleCounts(groupBy: BRAND) { brand model count } }",
            json!({}),
        )
        .await;
    assert_eq!(
        by_brand["vehicleCounts"],
        json!([{ "brand": "Lada", "model": null, "count": 4 }])
    );
    let by_year = app
        .ok("{ vehicles(filter: { yearFrom: 2025, status: AVAILABLE, condition: NEW }) { totalCount } }", json!({}))
        .await;
    assert_eq!(by_year["vehicles"]["totalCount"], 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_vin_is_stocked_once_even_when_two_requests_race() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    let mut tally = crate::race::Tally::new(&app.db);
    let rounds = crate::race::rounds();
    for round in 0..rounds {
        // Two vehicles, one VIN (Russian WMI: no check digit), both sent at once.
        let vin = format!("XTA2109900{round:07}");
        let ids = [uuid::Uuid::now_v7(), uuid::Uuid::now_v7()].map(|id| id.to_string());
        let first = vehicle_input(&ids[0], &vin, "Vesta", "1500000.00");
        let second = vehicle_input(&ids[1], &vin, "Vesta", "1500000.00");
        let (a, b) = tally
            .round(async {
                tokio::join!(
                    app.graphql(STOCK_VEHICLE, json!({ "input": first })),
                    app.graphql(STOCK_VEHICLE, json!({ "input": second }))
                )
            })
            .await;
        let mut codes = [error_codes(&a), error_codes(&b)];
        codes.sort();
        assert_eq!(
            codes,
            [vec![], vec!["VIN_ALREADY_STOCKED".to_string()]],
            "round {round}: {a:#} {b:#}"
        );
    }
    tally.assert_contended("two stockings of one VIN");
    assert_eq!(
        app.event_count().await,
        ADMIN_EVENTS + rounds as i64,
        "one vehicle per VIN"
    );
    app.stop().await;
}

#[tokio::test]
async fn every_answer_states_the_log_position_its_read_models_reflect() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    let stocked = app
        .ok(
            STOCK_VEHICLE,
            json!({ "input": vehicle_input(VESTA, "XTA210990Y2766389", "Vesta", "1500000.00") }),
        )
        .await;
    let written = stocked["stockVehicle"]["position"].as_i64().unwrap();
    let answer = app
        .graphql(
            &format!("{{ vehicle(id: \"{VESTA}\") {{ status }} }}"),
            json!({}),
        )
        .await;
    let positions = answer["extensions"]["readModels"].as_object().unwrap();
    assert_eq!(positions.len(), projections::all_projectors().len());
    for (projector, position) in positions {
        assert!(
            position.as_i64().unwrap() >= written,
            "{projector} reflects {position}, before the write at {written} the client already saw"
        );
    }
    app.stop().await;
}
