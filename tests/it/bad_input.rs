//! Every bad input gets a clear error with a stable code, and nothing is written.

use serde_json::{Value, json};

use crate::helpers::*;

const VEHICLE: &str = "0193a4b0-0000-7000-8000-0000000000b1";
const UNKNOWN: &str = "0193a4b0-0000-7000-8000-00000000ffff";

/// Sends `body`, expects exactly the error `code`, and checks the log did not grow.
async fn refused(app: &TestApp, body: Value, code: &str) -> Value {
    let before = app.event_count().await;
    let response = app.post_json(&body).await;
    assert_eq!(
        error_codes(&response),
        vec![code.to_string()],
        "{response:#}"
    );
    let message = response["errors"][0]["message"].as_str().unwrap();
    assert!(!message.is_empty());
    assert_eq!(
        app.event_count().await,
        before,
        "nothing may be written: {response:#}"
    );
    response
}

fn stock(input: Value) -> Value {
    json!({ "query": STOCK_VEHICLE, "variables": { "input": input } })
}

#[tokio::test]
async fn malformed_values_are_refused_with_their_codes() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;

    let mut short_vin = vehicle_input(VEHICLE, "XTA21099", "Vesta", "1500000.00");
    let response = refused(&app, stock(short_vin.clone()), "VALIDATION").await;
    assert!(
        response["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("17")
    );
    short_vin["vin"] = json!("XTA210990Y276638O");
    refused(&app, stock(short_vin.clone()), "VALIDATION").await;
    short_vin["vin"] = json!("1M8GDM9A1KP042788");
    let response = refused(&app, stock(short_vin), "VALIDATION").await;
    assert!(
        response["errors"][0]["message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("check digit")
    );

    let negative = vehicle_input(VEHICLE, "XTA210990Y2766389", "Vesta", "-1.00");
    refused(&app, stock(negative), "VALIDATION").await;
    let too_precise = vehicle_input(VEHICLE, "XTA210990Y2766389", "Vesta", "1.005");
    refused(&app, stock(too_precise), "VALIDATION").await;

    let mut float_price = vehicle_input(VEHICLE, "XTA210990Y2766389", "Vesta", "0");
    float_price["listPrice"]["amount"] = json!(1500000.5);
    let response = refused(&app, stock(float_price), "VALIDATION").await;
    assert!(
        response["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not a JSON number")
    );

    let mut wrong_type = vehicle_input(VEHICLE, "XTA210990Y2766389", "Vesta", "1500000.00");
    wrong_type["year"] = json!("twenty twenty-four");
    refused(&app, stock(wrong_type), "VALIDATION").await;

    let mut future = vehicle_input(VEHICLE, "XTA210990Y2766389", "Vesta", "1500000.00");
    future["year"] = json!(2999);
    refused(&app, stock(future), "VALIDATION").await;

    let bad_phone = json!({ "query": REGISTER_CUSTOMER, "variables": { "input": {
        "fullName": "Ivan", "email": "ivan@example.ru", "phone": "12", "address": "Kazan" } } });
    refused(&app, bad_phone, "VALIDATION").await;
    let bad_email = json!({ "query": REGISTER_CUSTOMER, "variables": { "input": {
        "fullName": "Ivan", "email": "not-an-email", "phone": "+79161234567", "address": "Kazan" } } });
    refused(&app, bad_email, "VALIDATION").await;

    refused(
        &app,
        json!({ "query": "{ vehicle(id: \"not-a-uuid\") { vin } }" }),
        "VALIDATION",
    )
    .await;
    refused(
        &app,
        json!({ "query": "{ vehicles { edges { node { noSuchField } } } }" }),
        "VALIDATION",
    )
    .await;
    refused(
        &app,
        json!({ "query": "{ vehicles(first: 1000) { totalCount } }" }),
        "VALIDATION",
    )
    .await;
    refused(
        &app,
        json!({ "query": "{ vehicles(after: \"garbage\") { totalCount } }" }),
        "VALIDATION",
    )
    .await;
    refused(&app, json!({ "query": "mutation {" }), "VALIDATION").await;
    app.stop().await;
}

#[tokio::test]
async fn unknown_ids_are_not_found() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    for query in [
        format!("{{ vehicle(id: \"{UNKNOWN}\") {{ vin }} }}"),
        format!("{{ customer(id: \"{UNKNOWN}\") {{ fullName }} }}"),
        format!("{{ order(id: \"{UNKNOWN}\") {{ status }} }}"),
        format!("mutation {{ confirmOrder(id: \"{UNKNOWN}\") {{ position }} }}"),
        format!(
            "mutation {{ repriceVehicle(id: \"{UNKNOWN}\", price: {{ amount: \"1.00\" }}) {{ position }} }}"
        ),
        format!(
            "mutation {{ draftOrder(input: {{ customerId: \"{UNKNOWN}\", vehicleId: \"{UNKNOWN}\" }}) {{ position }} }}"
        ),
    ] {
        refused(&app, json!({ "query": query }), "NOT_FOUND").await;
    }
    app.stop().await;
}

#[tokio::test]
async fn domain_refusals_carry_domain_codes() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    app.ok(
        STOCK_VEHICLE,
        json!({ "input": vehicle_input(VEHICLE, "XTA210990Y2766389", "Vesta", "1500000.00") }),
    )
    .await;
    let again = vehicle_input(VEHICLE, "XTA210990Y2766388", "Vesta", "1500000.00");
    refused(&app, stock(again), "VEHICLE_ALREADY_STOCKED").await;
    let same_vin = vehicle_input(
        "0193a4b0-0000-7000-8000-0000000000b2",
        "XTA210990Y2766389",
        "Vesta",
        "1.00",
    );
    refused(&app, stock(same_vin), "VIN_ALREADY_STOCKED").await;

    let customer = "0193a4b0-0000-7000-8000-0000000000c9";
    app.ok(
        REGISTER_CUSTOMER,
        json!({ "input": customer_input(customer) }),
    )
    .await;
    let order = "0193a4b0-0000-7000-8000-0000000000d9";
    app.ok(
        DRAFT_ORDER,
        json!({ "input": { "id": order, "customerId": customer, "vehicleId": VEHICLE } }),
    )
    .await;
    let too_much = format!(
        "mutation {{ applyOrderDiscount(id: \"{order}\", discount: {{ amount: {{ amount: \"2000000.00\" }} }}) {{ position }} }}"
    );
    refused(&app, json!({ "query": too_much }), "DISCOUNT_EXCEEDS_PRICE").await;
    let both = format!(
        "mutation {{ applyOrderDiscount(id: \"{order}\", discount: {{ percent: \"5\", amount: {{ amount: \"1.00\" }} }}) {{ position }} }}"
    );
    refused(&app, json!({ "query": both }), "VALIDATION").await;
    app.ok(
        CANCEL_ORDER,
        json!({ "id": order, "reason": "no longer wanted" }),
    )
    .await;
    refused(
        &app,
        json!({ "query": CONFIRM_ORDER, "variables": { "id": order } }),
        "INVALID_ORDER_TRANSITION",
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn oversize_bodies_deep_queries_big_batches_and_mutations_over_get_are_refused() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;

    let huge = "x".repeat(2 * 1024 * 1024);
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body(format!(
            "{{\"query\": \"{{ vehicles {{ totalCount }} }}\", \"padding\": \"{huge}\"}}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_codes(&body), vec!["PAYLOAD_TOO_LARGE"]);

    // 4 levels to reach a type, then 14 nested `ofType`: deeper than the limit of 16.
    let too_deep = format!(
        "{{ __schema {{ types {{ fields {{ type {{ {} name {} }} }} }} }} }}",
        "ofType { ".repeat(14),
        "} ".repeat(14)
    );
    refused(&app, json!({ "query": too_deep }), "QUERY_TOO_COMPLEX").await;

    let batch: Vec<Value> = (0..11)
        .map(|_| json!({ "query": "{ events { totalCount } }" }))
        .collect();
    refused(&app, Value::Array(batch), "QUERY_TOO_COMPLEX").await;
    let small_batch: Vec<Value> = (0..2)
        .map(|_| json!({ "query": "{ events { totalCount } }" }))
        .collect();
    let answers = app.post_json(&Value::Array(small_batch)).await;
    assert_eq!(answers.as_array().map(Vec::len), Some(2));

    let response = app
        .client
        .get(app.url("/graphql"))
        .query(&[(
            "query",
            format!(
                "mutation {{ stockVehicle(input: {}) {{ position }} }}",
                "{}"
            ),
        )])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_codes(&body), vec!["METHOD_NOT_ALLOWED"]);
    let response: Value = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", "{ events { totalCount } }")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(response["data"]["events"]["totalCount"], ADMIN_EVENTS);

    let response = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_codes(&body), vec!["BAD_REQUEST"]);
    assert_eq!(app.event_count().await, ADMIN_EVENTS);
    app.stop().await;
}

#[tokio::test]
async fn health_endpoints_answer() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    let live = app.client.get(app.url("/livez")).send().await.unwrap();
    assert_eq!(live.status(), 200);
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["ready"], true);
    assert_eq!(
        body["projections"].as_array().unwrap().len(),
        projections::all_projectors().len()
    );
    app.stop().await;
}
