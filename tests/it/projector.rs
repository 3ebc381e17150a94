//! The projector runtime's guarantees, with the real projectors over real commands.

use std::sync::Arc;

use aggregates::money::{Currency, Money};
use aggregates::vehicle::{Condition, StockVehicle};
use aggregates::vin::Vin;
use autosalon::Ledger;
use commands::clock::{SystemClock, UuidV7};
use commands::{Dealership, RequestContext};
use projections::{ProjectionError, Step};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::helpers::{database_url, temp_dir};

async fn open(path: &std::path::Path) -> (Ledger, Dealership) {
    let ledger = Ledger::open(&database_url(path)).await.unwrap();
    let dealership = Dealership::new(
        ledger.db.clone(),
        ledger.upcasters.clone(),
        Arc::new(SystemClock),
        Arc::new(UuidV7),
    );
    (ledger, dealership)
}

/// Writes `vehicles` vehicles and a few changes to each: more events than one projector batch.
async fn write_history(dealership: &Dealership, first: usize, vehicles: usize) {
    let ctx = RequestContext::default();
    for n in first..first + vehicles {
        let id = Uuid::from_u128(0x1000 + n as u128);
        let vin = Vin::parse(&format!("XTA2109900{n:07}")).unwrap();
        let price =
            Money::new(Decimal::new(100_000_000 + n as i64 * 100, 2), Currency::RUB).unwrap();
        let stock = StockVehicle {
            vin,
            brand: if n % 3 == 0 { "Lada" } else { "Haval" }.into(),
            model: format!("Model {}", n % 5),
            year: 2020 + (n % 5) as i32,
            trim: "Base".into(),
            colour: "grey".into(),
            mileage_km: (n * 1000) as u32,
            condition: if n % 2 == 0 {
                Condition::New
            } else {
                Condition::Used
            },
            location: "Lot 1".into(),
            list_price: price,
            specifications: Default::default(),
            stocked_at: dealership.now(),
        };
        dealership
            .stock_vehicle(&ctx, id, stock, None)
            .await
            .unwrap();
        let cheaper = Money::new(Decimal::new(90_000_000 + n as i64, 2), Currency::RUB).unwrap();
        dealership
            .reprice_vehicle(&ctx, id, cheaper, None)
            .await
            .unwrap();
        dealership
            .relocate_vehicle(&ctx, id, format!("Lot {}", n % 4 + 2), None)
            .await
            .unwrap();
        if n % 7 == 0 {
            dealership
                .withdraw_vehicle(&ctx, id, "hail damage".into(), None)
                .await
                .unwrap();
        }
    }
}

/// Every row of every table of every projector, as text, in a stable order.
async fn dump(ledger: &Ledger) -> Vec<String> {
    let mut rows = Vec::new();
    for projector in projections::all_projectors() {
        for table in projector.tables() {
            rows.extend(crate::rows::prefixed_rows(ledger.db.pool(), table).await);
        }
    }
    rows
}

#[tokio::test]
async fn a_crash_between_applying_a_batch_and_committing_it_applies_nothing_twice() {
    let dir = temp_dir();
    let path = dir.path().join("ledger.db");
    {
        let (ledger, dealership) = open(&path).await;
        write_history(&dealership, 0, 120).await;
        // One clean batch, then a crash after the second batch was applied but before it committed.
        assert!(matches!(
            ledger.projections.step("catalog").await.unwrap(),
            Step::Advanced(_)
        ));
        let committed = ledger
            .projections
            .statuses()
            .into_iter()
            .find(|(name, _)| *name == "catalog")
            .map(|(_, status)| status.position)
            .unwrap();
        let crashed = ledger
            .projections
            .step_with_fault("catalog", projections::BATCH_EVENTS, || {
                Err(ProjectionError::Injected("power cut".into()))
            })
            .await;
        assert!(matches!(crashed, Err(ProjectionError::Injected(_))));
        let checkpoint: i64 =
            sqlx::query_scalar("SELECT position FROM log_checkpoints WHERE consumer = 'catalog'")
                .fetch_one(ledger.db.pool())
                .await
                .unwrap();
        assert_eq!(checkpoint, committed, "the checkpoint did not move");
        let updated_past: i64 =
            sqlx::query_scalar("SELECT count(*) FROM catalog_vehicles WHERE last_position > $1")
                .bind(committed)
                .fetch_one(ledger.db.pool())
                .await
                .unwrap();
        assert_eq!(updated_past, 0, "no row reflects an uncommitted event");
        ledger.db.close().await;
    }
    // Restart: the projector resumes from its checkpoint.
    let (ledger, _) = open(&path).await;
    ledger.projections.catch_up_all().await.unwrap();
    let live = dump(&ledger).await;
    assert!(live.len() >= 120);
    for name in ledger.projections.names() {
        ledger.projections.rebuild(name, |_, _| {}).await.unwrap();
    }
    assert_eq!(
        dump(&ledger).await,
        live,
        "the resumed read model equals a from-scratch rebuild"
    );
}

#[tokio::test]
async fn a_projector_stops_on_an_event_it_cannot_apply_and_says_so() {
    let dir = temp_dir();
    let (ledger, dealership) = open(&dir.path().join("ledger.db")).await;
    write_history(&dealership, 0, 2).await;
    // A reprice for a vehicle the catalog never saw stocked: the read model cannot apply it.
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('Vehicle', 'ghost', 1, 'VehicleRepriced', '1.0',
                 '{\"VehicleRepriced\":{\"old_price\":{\"amount\":\"1.00\",\"currency\":\"RUB\"},\"new_price\":{\"amount\":\"2.00\",\"currency\":\"RUB\"}}}', '{}')",
    )
    .execute(ledger.db.pool())
    .await
    .unwrap();
    let bad_position = eventstore::log::head(ledger.db.pool()).await.unwrap();
    write_history(&dealership, 2, 3).await;

    let err = ledger.projections.catch_up("catalog").await.unwrap_err();
    assert!(
        matches!(err, ProjectionError::Inconsistent { position, .. } if position == bad_position)
    );
    let (_, status) = ledger
        .projections
        .statuses()
        .into_iter()
        .find(|(n, _)| *n == "catalog")
        .unwrap();
    assert_eq!(
        status.position,
        bad_position - 1,
        "it stopped just before the bad event"
    );
    assert_eq!(status.failure.as_ref().map(|(p, _)| *p), Some(bad_position));
    let recorded: (Option<i64>, Option<String>) = sqlx::query_as(
        "SELECT failed_position, last_error FROM log_checkpoints WHERE consumer = 'catalog'",
    )
    .fetch_one(ledger.db.pool())
    .await
    .unwrap();
    assert_eq!(recorded.0, Some(bad_position));
    assert!(recorded.1.unwrap().contains("expected to update 1 row"));
    // Retrying does not skip it.
    assert!(ledger.projections.catch_up("catalog").await.is_err());
    // Other projectors are not held back by it.
    ledger.projections.catch_up("orders").await.unwrap();
}

#[tokio::test]
async fn long_streams_are_snapshotted_and_load_to_the_same_state() {
    let dir = temp_dir();
    let (ledger, dealership) = open(&dir.path().join("ledger.db")).await;
    write_history(&dealership, 1, 1).await; // vehicle 1 stays on sale (every 7th is withdrawn)
    let id = Uuid::from_u128(0x1001);
    let ctx = RequestContext::default();
    for n in 1..=250_i64 {
        let price = Money::new(Decimal::new(100_000_000 + n, 2), Currency::RUB).unwrap();
        dealership
            .reprice_vehicle(&ctx, id, price, None)
            .await
            .unwrap();
    }
    let snapshot_at: i64 = sqlx::query_scalar(
        "SELECT last_sequence FROM snapshots WHERE aggregate_type = 'Vehicle' AND aggregate_id = $1",
    )
    .bind(id.to_string())
    .fetch_one(ledger.db.pool())
    .await
    .unwrap();
    assert_eq!(snapshot_at, 200, "a snapshot every 100 events");
    let vehicle = dealership.vehicle(id).await.unwrap();
    let expected = Money::new(Decimal::new(100_000_250, 2), Currency::RUB).unwrap();
    assert_eq!(
        vehicle.list_price(),
        Some(expected),
        "snapshot + later events give the current state"
    );
}

/// Records every position it is handed, whatever the event, so the test sees exactly what the
/// runtime gave it; it declares that it concerns one aggregate type.
struct TypeRecorder {
    name: &'static str,
    table: &'static [&'static str],
    schema: &'static [&'static str],
    types: &'static [&'static str],
}

impl projections::Projector for TypeRecorder {
    fn name(&self) -> &'static str {
        self.name
    }
    fn version(&self) -> i64 {
        1
    }
    fn tables(&self) -> &'static [&'static str] {
        self.table
    }
    fn schema(&self) -> &'static [&'static str] {
        self.schema
    }
    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(self.types)
    }
    fn apply<'a>(
        &'a self,
        conn: &'a mut sqlx::AnyConnection,
        event: &'a eventstore::RecordedEvent,
    ) -> futures::future::BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(async move {
            sqlx::query(&format!(
                "INSERT INTO {} (position) VALUES ($1)",
                self.table[0]
            ))
            .bind(event.position)
            .execute(conn)
            .await?;
            Ok(())
        })
    }
}

#[tokio::test]
async fn a_projector_is_handed_only_its_aggregate_types_and_its_checkpoint_still_moves() {
    let dir = temp_dir();
    let db = eventstore::Database::connect(&database_url(&dir.path().join("ledger.db")))
        .await
        .unwrap();
    db.migrate().await.unwrap();
    let cars = TypeRecorder {
        name: "test_cars",
        table: &["test_cars_seen"],
        schema: &[
            "CREATE TABLE IF NOT EXISTS test_cars_seen (position INTEGER PRIMARY KEY) STRICT",
        ],
        types: &["Vehicle"],
    };
    let people = TypeRecorder {
        name: "test_people",
        table: &["test_people_seen"],
        schema: &[
            "CREATE TABLE IF NOT EXISTS test_people_seen (position INTEGER PRIMARY KEY) STRICT",
        ],
        types: &["Customer"],
    };
    let projections = Arc::new(projections::Projections::new(
        db.clone(),
        Arc::new(Vec::new()),
        vec![Arc::new(cars), Arc::new(people)],
    ));
    projections.prepare().await.unwrap();
    let append = |aggregate_type: &'static str, id: String| {
        let db = db.clone();
        async move {
            sqlx::query(
                "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
                 VALUES ($1, $2, 1, 'Tested', '1.0', '{}', '{}')",
            )
            .bind(aggregate_type)
            .bind(id)
            .execute(db.pool())
            .await
            .unwrap();
            eventstore::log::head(db.pool()).await.unwrap()
        }
    };
    // A mixed stretch, then a stretch of customers only: the cars' projector has nothing to do in
    // the second, and must still stand at the head afterwards (or read-your-writes would wait on it).
    let mut car_positions = Vec::new();
    let mut people_positions = Vec::new();
    for n in 0..6 {
        if n % 2 == 0 {
            car_positions.push(append("Vehicle", format!("car-{n}")).await);
        } else {
            people_positions.push(append("Customer", format!("person-{n}")).await);
        }
    }
    projections
        .rebuild_together(&["test_cars", "test_people"], |_, _| {})
        .await
        .unwrap();
    for n in 0..5 {
        people_positions.push(append("Customer", format!("later-{n}")).await);
    }
    let head = eventstore::log::head(db.pool()).await.unwrap();
    // The run loop steps caught-up projectors together, one batch for both.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let tasks = projections.spawn(stopped);
    assert!(
        projections
            .wait_for(head, std::time::Duration::from_secs(10))
            .await,
        "both checkpoints reach the head: {:?}",
        projections.statuses()
    );
    stop.send(true).unwrap();
    for task in tasks {
        task.await.unwrap();
    }
    for (table, expected) in [
        ("test_cars_seen", &car_positions),
        ("test_people_seen", &people_positions),
    ] {
        let seen: Vec<i64> =
            sqlx::query_scalar(&format!("SELECT position FROM {table} ORDER BY position"))
                .fetch_all(db.pool())
                .await
                .unwrap();
        assert_eq!(&seen, expected, "{table} was handed only its own type");
    }
    let stored: Vec<i64> = sqlx::query_scalar(
        "SELECT position FROM log_checkpoints WHERE consumer IN ('test_cars', 'test_people')",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    assert_eq!(stored, vec![head, head], "both stored checkpoints moved");
    db.close().await;
}
