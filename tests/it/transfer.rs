//! Moving a ledger between databases: `export-events` from the embedded file, `import-events` into
//! the test backend (PostgreSQL when `AUTOSALON_TEST_DATABASE_URL` is set, another file otherwise).

use serde_json::json;

use crate::helpers::*;

const VESTA: &str = "0193a4b0-0000-7000-8000-00000000e0a1";
const NIVA: &str = "0193a4b0-0000-7000-8000-00000000e0a2";
const ANNA: &str = "0193a4b0-0000-7000-8000-00000000e0c1";
const ORDER: &str = "0193a4b0-0000-7000-8000-00000000e0d1";

const READ_BACK: &str = "query ReadBack($order: UUID!) {
  vehicles(first: 10) { totalCount edges { node { id vin status listPrice { amount currency } } } }
  order(id: $order) { status total { amount } customer { fullName } vehicle { vin status } }
  events(first: 100) { totalCount edges { node { position aggregateType aggregateId eventType eventVersion sequence recordedAt metadata } } }
}";

async fn export(source: &str) -> String {
    let db = eventstore::Database::connect(source).await.unwrap();
    let mut out = Vec::new();
    autosalon::transfer::export_events(db.pool(), &mut out)
        .await
        .unwrap();
    db.close().await;
    String::from_utf8(out).unwrap()
}

/// As `autosalon import-events` does it: the store's migrations only, then the import.
async fn import(target: &str, file: &str) -> anyhow::Result<i64> {
    let db = eventstore::Database::connect(target).await.unwrap();
    db.migrate().await.unwrap();
    let imported = autosalon::transfer::import_events(&db, &mut std::io::Cursor::new(file)).await;
    db.close().await;
    imported
}

#[tokio::test]
async fn an_embedded_ledger_moves_to_another_database_event_for_event() {
    let dir = temp_dir();
    // The source is always the embedded file, as on a dealership's first machine.
    let source = format!("sqlite://{}", dir.path().join("embedded.db").display());
    let app = spawn_with(autosalon::ServeArgs::new(
        source.clone(),
        "127.0.0.1:0".parse().unwrap(),
    ))
    .await;
    for (id, vin, model) in [
        (VESTA, "XTA210990Y2766301", "Vesta"),
        (NIVA, "XTA212140K1234502", "Niva"),
    ] {
        app.ok(
            STOCK_VEHICLE,
            json!({ "input": vehicle_input(id, vin, model, "1500000.00") }),
        )
        .await;
    }
    app.ok(REGISTER_CUSTOMER, json!({ "input": customer_input(ANNA) }))
        .await;
    app.ok(
        DRAFT_ORDER,
        json!({ "input": { "id": ORDER, "customerId": ANNA, "vehicleId": VESTA } }),
    )
    .await;
    app.ok(CONFIRM_ORDER, json!({ "id": ORDER })).await;
    let before = app.ok(READ_BACK, json!({ "order": ORDER })).await;
    app.stop().await;

    let file = export(&source).await;
    let target = database_url(&dir.path().join("target.db"));
    let imported = import(&target, &file).await.unwrap();
    assert_eq!(
        imported,
        before["events"]["totalCount"].as_i64().unwrap(),
        "every event moved"
    );

    // The new database answers exactly as the old one did: same events at the same positions with
    // the same times and metadata, and read models rebuilt from them.
    let moved = spawn_app_on(dir.path().join("target.db")).await;
    caught_up(&moved).await;
    let after = moved.ok(READ_BACK, json!({ "order": ORDER })).await;
    assert_eq!(after, before);
    assert_eq!(after["order"]["vehicle"]["status"], "RESERVED");

    // A second import into the same database is refused, and changes nothing.
    moved.stop().await;
    let refused = import(&target, &file).await.unwrap_err();
    assert!(refused.to_string().contains("already holds"), "{refused:#}");
    let moved = spawn_app_on(dir.path().join("target.db")).await;
    assert_eq!(moved.event_count().await, imported);
    moved.stop().await;
}

/// Waits until the projectors have built every read model from the imported log.
async fn caught_up(app: &TestApp) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let body: serde_json::Value = app
            .client
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let behind = body["projections"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["eventsBehind"] != 0);
        if !behind {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{body:#}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_damaged_event_file_is_refused_and_imports_nothing() {
    let dir = temp_dir();
    let source = format!("sqlite://{}", dir.path().join("embedded.db").display());
    let app = spawn_with(autosalon::ServeArgs::new(
        source.clone(),
        "127.0.0.1:0".parse().unwrap(),
    ))
    .await;
    for (id, vin) in [(VESTA, "XTA210990Y2766311"), (NIVA, "XTA212140K1234512")] {
        app.ok(
            STOCK_VEHICLE,
            json!({ "input": vehicle_input(id, vin, "Vesta", "1500000.00") }),
        )
        .await;
    }
    app.stop().await;
    let file = export(&source).await;
    let lines: Vec<&str> = file.lines().collect();
    assert_eq!(lines.len(), 4, "a header, the first admin and two events");

    let damaged = [
        ("", "empty"),
        (
            "{\"format\":\"other\",\"version\":1,\"events\":0}\n",
            "unsupported",
        ),
        // A missing event breaks the chain before the positions are compared.
        (&*format!("{}\n{}\n", lines[0], lines[2]), "position 1: gap"),
        // One changed digit of an amount: the chain names the event.
        (
            &*format!(
                "{}\n{}\n{}\n{}\n",
                lines[0],
                lines[1],
                lines[2].replacen("1500000.00", "1500001.00", 1),
                lines[3]
            ),
            "position 2: hash mismatch",
        ),
        (&*format!("{}\n{}\n", lines[0], lines[1]), "announces 3"),
        (
            &*format!("{}\n{}\nnot json\n", lines[0], lines[1]),
            "line 3",
        ),
    ];
    for (n, (content, expected)) in damaged.iter().enumerate() {
        let target = database_url(&dir.path().join(format!("target-{n}.db")));
        let err = import(&target, content).await.unwrap_err();
        assert!(
            format!("{err:#}").contains(expected),
            "{expected:?} not in {err:#}"
        );
        let db = eventstore::Database::connect(&target).await.unwrap();
        let head = eventstore::log::head(db.pool()).await.unwrap();
        assert_eq!(head, 0, "a refused import left events behind");
        db.close().await;
    }
}
