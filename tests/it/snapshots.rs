//! Long streams keep a current snapshot after `import-events` and `autosalon rebuild`, so a
//! 10,000-event aggregate loads from its snapshot instead of replaying every event, and what it loads
//! is exactly what a full replay gives.

use aggregates::money::{Currency, Money};
use aggregates::vehicle::{Vehicle, VehicleEvent};
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{DomainEvent, EventStore};
use eventstore::repository::{EventRepository, SNAPSHOT_EVERY_EVENTS};
use serde_json::{Value, json};

use crate::helpers::*;

const CAMRY: &str = "0193a4b0-0000-7000-8000-00000000f0a1";
const EVENTS: usize = 10_000;

/// An export whose vehicle has `EVENTS` events: stocked by the application, then repriced
/// `EVENTS - 1` times (each line as `export-events` writes one).
async fn long_stream_export() -> String {
    let dir = temp_dir();
    let source = format!("sqlite://{}", dir.path().join("source.db").display());
    let app = spawn_with(autosalon::ServeArgs::new(
        source.clone(),
        "127.0.0.1:0".parse().unwrap(),
    ))
    .await;
    app.ok(
        STOCK_VEHICLE,
        json!({ "input": vehicle_input(CAMRY, "XTA210990Y2766601", "Vesta", "1000000.00") }),
    )
    .await;
    app.stop().await;
    let db = eventstore::Database::connect(&source).await.unwrap();
    let mut out = Vec::new();
    autosalon::transfer::export_events(db.pool(), &mut out)
        .await
        .unwrap();
    db.close().await;
    let text = String::from_utf8(out).unwrap();
    let mut lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let stocked = lines
        .iter()
        .find(|line| line["aggregate_id"] == CAMRY)
        .expect("the stocking event")
        .clone();
    let mut position = lines.last().unwrap()["position"].as_i64().unwrap();
    for sequence in 2..=EVENTS as i64 {
        let event = VehicleEvent::VehicleRepriced {
            old_price: Money::from_minor_units(100_000_000 + sequence - 1, Currency::RUB),
            new_price: Money::from_minor_units(100_000_000 + sequence, Currency::RUB),
        };
        position += 1;
        let mut line = stocked.clone();
        line["position"] = json!(position);
        line["sequence"] = json!(sequence);
        line["event_type"] = json!(event.event_type());
        line["event_version"] = json!(event.event_version());
        line["payload"] = serde_json::to_value(&event).unwrap();
        lines.push(line);
    }
    lines[0]["events"] = json!(position);
    // The made-up events get the links a store would have given them (docs/audit.md).
    let mut previous = eventstore::chain::GENESIS;
    for line in lines.iter_mut().skip(1) {
        let text = |key: &str| line[key].as_str().unwrap().to_string();
        let event = eventstore::RecordedEvent {
            position: line["position"].as_i64().unwrap(),
            aggregate_type: text("aggregate_type"),
            aggregate_id: text("aggregate_id"),
            sequence: line["sequence"].as_i64().unwrap(),
            event_type: text("event_type"),
            event_version: text("event_version"),
            payload: line["payload"].clone(),
            metadata: line["metadata"].clone(),
            recorded_at: text("recorded_at").parse().unwrap(),
        };
        previous = eventstore::chain::link(&previous, &event);
        line["hash"] = json!(eventstore::chain::to_hex(&previous));
    }
    lines
        .iter()
        .map(|line| format!("{line}\n"))
        .collect::<String>()
}

/// The snapshot rows of the vehicle: (last sequence, snapshot version).
async fn snapshot_rows(db: &eventstore::Database) -> Vec<(i64, i64)> {
    sqlx::query_as(
        "SELECT CAST(last_sequence AS BIGINT), CAST(current_snapshot AS BIGINT) FROM snapshots
          WHERE aggregate_type = 'Vehicle' AND aggregate_id = $1",
    )
    .bind(CAMRY)
    .fetch_all(db.pool())
    .await
    .unwrap()
}

/// The vehicle as commands load it (snapshot, then the events after it) and as a full replay of
/// every event gives it, with the sequence each reached and whether a snapshot was used.
async fn loaded_and_replayed(
    db: &eventstore::Database,
) -> (Vehicle, Value, Value, usize, Option<usize>) {
    let upcasters: eventstore::Upcasters = std::sync::Arc::new(aggregates::upcasters());
    let loaded = db
        .store::<Vehicle>(&upcasters)
        .load_aggregate(CAMRY)
        .await
        .unwrap();
    let replay: PersistedEventStore<EventRepository, Vehicle> =
        PersistedEventStore::new_event_store(db.event_repository())
            .with_upcasters(aggregates::upcasters());
    let replayed = replay.load_aggregate(CAMRY).await.unwrap();
    assert_eq!(replayed.current_sequence, EVENTS);
    (
        loaded.aggregate.clone(),
        serde_json::to_value(&loaded.aggregate).unwrap(),
        serde_json::to_value(&replayed.aggregate).unwrap(),
        loaded.current_sequence,
        loaded.current_snapshot,
    )
}

#[tokio::test]
async fn a_ten_thousand_event_stream_loads_from_a_current_snapshot_after_import_and_after_rebuild()
{
    const { assert!(EVENTS > SNAPSHOT_EVERY_EVENTS) };
    let file = long_stream_export().await;
    let dir = temp_dir();
    let path = dir.path().join("imported.db");
    let target = database_url(&path);
    let db = eventstore::Database::connect(&target).await.unwrap();
    db.migrate().await.unwrap();
    let imported = autosalon::transfer::import_events(&db, &mut std::io::Cursor::new(&file))
        .await
        .unwrap();
    assert!(imported > EVENTS as i64);

    // Imported: one snapshot, at the stream's last sequence.
    assert_eq!(snapshot_rows(&db).await, vec![(EVENTS as i64, 1)]);
    let (vehicle, loaded, replayed, sequence, snapshot) = loaded_and_replayed(&db).await;
    assert_eq!(
        loaded, replayed,
        "the snapshot holds the state a full replay gives"
    );
    assert_eq!(
        vehicle.list_price(),
        Some(Money::from_minor_units(100_010_000, Currency::RUB)),
        "the last reprice counts"
    );
    assert_eq!((sequence, snapshot), (EVENTS, Some(1)));

    // A ledger that lost it (or never had one): `autosalon rebuild` writes it again.
    sqlx::query("DELETE FROM snapshots")
        .execute(db.pool())
        .await
        .unwrap();
    assert!(snapshot_rows(&db).await.is_empty());
    let rebuild = std::process::Command::new(env!("CARGO_BIN_EXE_autosalon"))
        .args(["rebuild", "catalog", "--database-url", &target])
        .output()
        .unwrap();
    assert!(
        rebuild.status.success(),
        "rebuild: {}",
        String::from_utf8_lossy(&rebuild.stderr)
    );
    assert_eq!(snapshot_rows(&db).await, vec![(EVENTS as i64, 1)]);
    let (_, loaded, replayed, sequence, snapshot) = loaded_and_replayed(&db).await;
    assert_eq!(loaded, replayed);
    assert_eq!((sequence, snapshot), (EVENTS, Some(1)));

    // A snapshot already current is left alone; a stale one is moved to the last sequence.
    sqlx::query(
        "UPDATE snapshots SET last_sequence = 200, current_snapshot = 2, payload = (
            SELECT payload FROM snapshots WHERE aggregate_id = $1) WHERE aggregate_id = $1",
    )
    .bind(CAMRY)
    .execute(db.pool())
    .await
    .unwrap();
    let refreshed = autosalon::snapshots::refresh_long_streams(&db)
        .await
        .unwrap();
    assert_eq!(refreshed.written, 1);
    assert_eq!(snapshot_rows(&db).await, vec![(EVENTS as i64, 3)]);
    let again = autosalon::snapshots::refresh_long_streams(&db)
        .await
        .unwrap();
    assert_eq!(again.written, 0);
    db.close().await;
}
