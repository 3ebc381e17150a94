//! Storage that refuses writes: a full disk (a small tmpfs, filled). Every mutation is answered
//! `STORAGE_UNAVAILABLE` with nothing written, never a success; `/readyz` answers 503 while writes
//! fail; once space returns the same server takes the same keyed retries, each exactly once.

use serde_json::{Value, json};

use crate::helpers::*;

#[path = "../support/tmpfs.rs"]
mod tmpfs;
use tmpfs::Tmpfs;

const STOCK: &str = "mutation($input: StockVehicleInput!, $key: String) {
  stockVehicle(input: $input, idempotencyKey: $key) { position replayed vehicle { id } } }";
const REGISTER: &str = "mutation($input: RegisterCustomerInput!, $key: String) {
  registerCustomer(input: $input, idempotencyKey: $key) { position replayed customer { id } } }";
const PAY: &str = "mutation($id: UUID!, $order: UUID!, $key: String!) {
  initiatePayment(idempotencyKey: $key, input: { id: $id, orderId: $order, amount: { amount: \"100000\" }, method: CASH }) {
    position replayed payment { id } } }";

async fn readyz(app: &TestApp) -> (u16, Value) {
    let response = reqwest::get(app.url("/readyz"))
        .await
        .expect("readyz answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

#[tokio::test]
async fn a_full_disk_is_answered_storage_unavailable_and_the_same_server_recovers() {
    if postgres_admin_url().is_some() {
        eprintln!("SKIPPED on PostgreSQL: this fills the disk under the SQLite file");
        return;
    }
    let Some(fs) = Tmpfs::mount("16m") else {
        return;
    };
    let app = spawn_app_on(fs.path().join("autosalon.db")).await;
    let (customer, vehicle, order) = (
        "0193a0c0-0000-7000-8000-00000000c001",
        "0193a0c0-0000-7000-8000-00000000a001",
        "0193a0c0-0000-7000-8000-00000000d001",
    );
    app.ok(
        REGISTER_CUSTOMER,
        json!({ "input": customer_input(customer) }),
    )
    .await;
    app.ok(
        STOCK_VEHICLE,
        json!({ "input": vehicle_input(vehicle, "XTA21099043456789", "Vesta", "1500000") }),
    )
    .await;
    app.ok(
        DRAFT_ORDER,
        json!({ "input": { "id": order, "customerId": customer, "vehicleId": vehicle } }),
    )
    .await;
    app.ok(CONFIRM_ORDER, json!({ "id": order })).await;
    let events_before = app.event_count().await;
    assert_eq!(readyz(&app).await.0, 200);

    let writes = [
        (
            "stockVehicle",
            STOCK,
            json!({ "key": "stock-2", "input": vehicle_input(
                "0193a0c0-0000-7000-8000-00000000a002", "XTA21099043456790", "Granta", "900000") }),
        ),
        (
            "registerCustomer",
            REGISTER,
            json!({ "key": "register-2", "input": customer_input("0193a0c0-0000-7000-8000-00000000c002") }),
        ),
        (
            "initiatePayment",
            PAY,
            json!({ "key": "pay-1", "id": "0193a0c0-0000-7000-8000-00000000e001", "order": order }),
        ),
    ];

    let filler = fs.fill();
    for round in 1..=3 {
        for (name, query, variables) in &writes {
            let answer = app.graphql(query, variables.clone()).await;
            assert_eq!(
                error_codes(&answer),
                vec!["STORAGE_UNAVAILABLE"],
                "{name}, round {round}, disk full: never a success, always the retryable code: {answer:#}"
            );
            assert!(answer["data"].is_null(), "{name}: {answer:#}");
            let message = answer["errors"][0]["message"].as_str().unwrap();
            assert!(
                !message.contains("disk") && !message.contains(".db"),
                "the detail stays in the log: {message}"
            );
        }
        let (status, body) = readyz(&app).await;
        assert_eq!(status, 503, "not ready while writes fail: {body:#}");
        assert_eq!(body["writes"], false, "{body:#}");
    }

    std::fs::remove_file(filler).unwrap();
    let (status, body) = readyz(&app).await;
    assert_eq!(
        status, 200,
        "ready again once writes commit, without a restart: {body:#}"
    );
    assert_eq!(
        app.event_count().await,
        events_before,
        "nothing of the refused writes"
    );

    for (name, query, variables) in &writes {
        let first = app.ok(query, variables.clone()).await[*name].clone();
        assert_eq!(
            first["replayed"], false,
            "{name} is carried out now: {first:#}"
        );
        let position = first["position"].as_i64().unwrap();
        assert!(position > events_before, "{name}: {first:#}");
        let again = app.ok(query, variables.clone()).await[*name].clone();
        assert_eq!(again["replayed"], true, "{name}: {again:#}");
        assert_eq!(again["position"].as_i64(), Some(position), "{name}");
    }
    assert_eq!(
        app.event_count().await,
        events_before + 3,
        "each retried write exactly once"
    );
    app.stop().await;
}
