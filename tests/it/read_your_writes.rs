//! A mutation's answer says whether the read models showed its write in time
//! (`extensions.readYourWrites`), tested by holding one projector back.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;

const FIRST: &str = "0193a4b0-0000-7000-8000-000000000a01";
const SECOND: &str = "0193a4b0-0000-7000-8000-000000000a02";
const STOCK_WITH_KEY: &str = "mutation Stock($input: StockVehicleInput!, $key: String) {
  stockVehicle(input: $input, idempotencyKey: $key) { position replayed vehicle { id } }
}";

fn report(response: &Value) -> &Value {
    &response["extensions"]["readYourWrites"]
}

#[tokio::test]
async fn a_mutation_whose_read_models_lag_says_so_and_names_them() {
    let dir = temp_dir();
    let mut settings = serve_args(&dir.path().join("autosalon.db"));
    settings.read_your_writes_timeout_ms = 1_500;
    let app = spawn_with(settings).await;
    let before = app.event_count().await;

    // Caught up: the flag says so, at the position the payload states.
    let first = app
        .graphql(
            STOCK_WITH_KEY,
            json!({ "input": vehicle_input(FIRST, "XTA210990Y2766389", "Vesta", "1500000.00"), "key": "first" }),
        )
        .await;
    let written = first["data"]["stockVehicle"]["position"].as_i64().unwrap();
    assert_eq!(first["data"]["stockVehicle"]["vehicle"]["id"], FIRST);
    assert_eq!(report(&first)["caughtUp"], true, "{first:#}");
    assert_eq!(report(&first)["position"], written);
    assert!(report(&first)["reached"].as_i64().unwrap() >= written);
    assert_eq!(report(&first)["lagging"], json!([]));

    // The catalog is held back: the write is durable, the answer cannot show it, and says so.
    let held = app.projections.hold_back("catalog").await.unwrap();
    let started = Instant::now();
    let second = app
        .graphql(
            STOCK_WITH_KEY,
            json!({ "input": vehicle_input(SECOND, "XW8ZZZ5NZNG123456", "Tiguan", "3150000.00"), "key": "second" }),
        )
        .await;
    let waited = started.elapsed();
    assert!(second.get("errors").is_none(), "{second:#}");
    let position = second["data"]["stockVehicle"]["position"].as_i64().unwrap();
    assert!(position > written);
    assert_eq!(
        second["data"]["stockVehicle"]["vehicle"],
        Value::Null,
        "the catalog cannot show a vehicle it has not applied"
    );
    assert_eq!(report(&second)["caughtUp"], false, "{second:#}");
    assert_eq!(report(&second)["position"], position);
    // Every read model reached the first write; the catalog is held there.
    assert_eq!(report(&second)["reached"], written);
    // Others may still be applying on a busy machine; the catalog is certainly behind.
    assert!(
        report(&second)["lagging"]
            .as_array()
            .unwrap()
            .contains(&json!("catalog")),
        "{second:#}"
    );
    assert!(
        waited >= Duration::from_millis(1_500),
        "answered after {waited:?}, before the configured wait"
    );
    // A query does not wait and carries no flag; its readModels show the lag too.
    let query = app
        .graphql(
            &format!("{{ vehicle(id: \"{SECOND}\") {{ id }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(error_codes(&query), ["NOT_FOUND"]);
    assert!(report(&query).is_null(), "{query:#}");
    assert_eq!(query["extensions"]["readModels"]["catalog"], written);
    assert_eq!(
        app.event_count().await,
        before + 2,
        "the lagging write is in the log"
    );

    // Released, the catalog catches up; a replay of the same write now answers caught up.
    drop(held);
    let replay = app
        .graphql(
            STOCK_WITH_KEY,
            json!({ "input": vehicle_input(SECOND, "XW8ZZZ5NZNG123456", "Tiguan", "3150000.00"), "key": "second" }),
        )
        .await;
    assert_eq!(replay["data"]["stockVehicle"]["replayed"], true);
    assert_eq!(replay["data"]["stockVehicle"]["vehicle"]["id"], SECOND);
    assert_eq!(report(&replay)["caughtUp"], true, "{replay:#}");
    assert_eq!(report(&replay)["position"], position);
    assert_eq!(report(&replay)["lagging"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn one_lagging_field_of_several_makes_the_whole_answer_not_caught_up() {
    let dir = temp_dir();
    let mut settings = serve_args(&dir.path().join("autosalon.db"));
    settings.read_your_writes_timeout_ms = 200;
    let app = spawn_with(settings).await;
    let held = app.projections.hold_back("customers").await.unwrap();
    let both = app
        .graphql(
            "mutation($vehicle: StockVehicleInput!, $customer: RegisterCustomerInput!) {
               stockVehicle(input: $vehicle) { position vehicle { id } }
               registerCustomer(input: $customer) { position customer { id } }
             }",
            json!({
                "vehicle": vehicle_input(FIRST, "XTA210990Y2766389", "Vesta", "1500000.00"),
                "customer": customer_input("0193a4b0-0000-7000-8000-000000000ac1"),
            }),
        )
        .await;
    assert!(both.get("errors").is_none(), "{both:#}");
    assert_eq!(both["data"]["registerCustomer"]["customer"], Value::Null);
    let last = both["data"]["registerCustomer"]["position"]
        .as_i64()
        .unwrap();
    assert!(last > both["data"]["stockVehicle"]["position"].as_i64().unwrap());
    assert_eq!(report(&both)["caughtUp"], false, "{both:#}");
    assert_eq!(report(&both)["position"], last);
    let first = both["data"]["stockVehicle"]["position"].as_i64().unwrap();
    assert!(
        report(&both)["reached"].as_i64().unwrap() < first,
        "customers applied nothing of this request: {both:#}"
    );
    assert!(
        report(&both)["lagging"]
            .as_array()
            .unwrap()
            .contains(&json!("customers")),
        "{both:#}"
    );
    drop(held);
    app.stop().await;
}
