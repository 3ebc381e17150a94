//! A hot aggregate: commands that lose an optimistic-lock conflict reload and decide again after a
//! random back-off, so many writers on one car all get through instead of giving up after a few
//! immediate retries that meet again in the same group.

use std::sync::Arc;

use aggregates::money::{Currency, Money};
use aggregates::vehicle::{Condition, StockVehicle};
use aggregates::vin::Vin;
use autosalon::Ledger;
use commands::clock::{SystemClock, UuidV7};
use commands::{Dealership, RequestContext};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::helpers::{database_url, temp_dir};

const WRITERS: usize = 16;
// Each writer may lose once to each of the others: the bound must cover them all.
const _: () = assert!(commands::sender::CONFLICT_ATTEMPTS >= WRITERS);

/// Sixteen writers relocate one car at once, three rounds: every command succeeds (each loses at most
/// once to each of the other fifteen, within `CONFLICT_ATTEMPTS`), the stream holds exactly one
/// event per command, and the writers really collided.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_writers_on_one_car_all_get_through_after_their_conflicts() {
    let dir = temp_dir();
    let ledger = Ledger::open(&database_url(&dir.path().join("ledger.db")))
        .await
        .unwrap();
    let dealership = Arc::new(Dealership::new(
        ledger.db.clone(),
        ledger.upcasters.clone(),
        Arc::new(SystemClock),
        Arc::new(UuidV7),
    ));
    let ctx = RequestContext::default();
    let id = Uuid::now_v7();
    let stock = StockVehicle {
        vin: Vin::parse("XTA21099000000042").unwrap(),
        brand: "Lada".into(),
        model: "Vesta".into(),
        year: 2024,
        trim: "Base".into(),
        colour: "white".into(),
        mileage_km: 0,
        condition: Condition::New,
        location: "Lot 1".into(),
        list_price: Money::new(Decimal::new(150_000_000, 2), Currency::RUB).unwrap(),
        specifications: Default::default(),
        stocked_at: dealership.now(),
    };
    dealership
        .stock_vehicle(&ctx, id, stock, None)
        .await
        .unwrap();
    let contended_before = ledger.db.contended_appends();
    let rounds = 3;
    for round in 0..rounds {
        let start = Arc::new(tokio::sync::Barrier::new(WRITERS));
        let racers: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let dealership = dealership.clone();
                let start = start.clone();
                tokio::spawn(async move {
                    start.wait().await;
                    dealership
                        .relocate_vehicle(
                            &RequestContext::default(),
                            id,
                            format!("Bay {round}-{writer}"),
                            None,
                        )
                        .await
                })
            })
            .collect();
        for racer in racers {
            let outcome = racer.await.unwrap();
            assert!(outcome.is_ok(), "a writer did not get through: {outcome:?}");
        }
    }
    let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE aggregate_id = $1")
        .bind(id.to_string())
        .fetch_one(ledger.db.pool())
        .await
        .unwrap();
    assert_eq!(
        events,
        1 + (rounds * WRITERS) as i64,
        "one event per command"
    );
    assert!(
        ledger.db.contended_appends() > contended_before,
        "the writers never collided; the test proved nothing"
    );
}
