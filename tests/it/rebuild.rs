//! For every projector: after whole-dealership scenarios (see `scenario`), its live tables equal the
//! tables rebuilt from position 0, row for row, and the tables rebuilt with every event handed to it
//! (so its declared `aggregate_types` leave out nothing it applies); and the scenarios together reach every event type
//! of every aggregate, move every account of the chart (each insurer's included) and insure with
//! every insurer both products, so that neither this comparison nor the ledger's reconciliation
//! (checked for each scenario too) holds for want of cases.
//!
//! The seeds run in turn from `AUTOSALON_SCENARIO_SEED` (fixed by default): at least
//! `AUTOSALON_REBUILD_SEEDS` of them (3 by default), and more until everything above is reached, up
//! to [`MAX_SEEDS_FOR_COVERAGE`]. A failure names its seed; that seed alone reproduces it.

use std::collections::{BTreeMap, BTreeSet};

use crate::scenario::{self, events, shadow, tariffs};

/// Every row of `tables`, as text, in a stable order.
pub(crate) async fn dump(
    pool: &eventstore::DbPool,
    tables: &[&str],
) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for table in tables {
        out.insert(
            table.to_string(),
            crate::rows::table_rows(pool, table).await,
        );
    }
    out
}

/// A projector handed every event of the log, whatever aggregate types it declares.
struct EveryEvent(std::sync::Arc<dyn projections::Projector>);

impl projections::Projector for EveryEvent {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn version(&self) -> i64 {
        self.0.version()
    }
    fn tables(&self) -> &'static [&'static str] {
        self.0.tables()
    }
    fn schema(&self) -> &'static [&'static str] {
        self.0.schema()
    }
    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        None
    }
    fn apply<'a>(
        &'a self,
        conn: &'a mut sqlx::AnyConnection,
        event: &'a eventstore::RecordedEvent,
    ) -> futures::future::BoxFuture<'a, Result<(), projections::ProjectionError>> {
        self.0.apply(conn, event)
    }
}

/// The generator must reach everything within this many scenarios.
const MAX_SEEDS_FOR_COVERAGE: u64 = 12;

/// What `all` holds and `got` does not.
fn never<T: Ord + std::fmt::Debug>(all: &BTreeSet<T>, got: &BTreeSet<T>) -> Vec<String> {
    all.difference(got).map(|x| format!("{x:?}")).collect()
}

/// (insurer, product) of every policy issued.
async fn insured(pool: &eventstore::DbPool) -> BTreeSet<(String, String)> {
    let payloads: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(payload AS TEXT) FROM events WHERE event_type = 'PolicyIssued'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    payloads
        .iter()
        .map(|payload| match serde_json::from_str(payload).unwrap() {
            aggregates::policy::PolicyEvent::PolicyIssued {
                insurer, product, ..
            } => (insurer, product.as_str().to_string()),
            other => panic!("not a PolicyIssued: {other:?}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_model_rebuilt_from_zero_equals_the_live_one_over_scenarios_that_reach_everything()
 {
    let at_least = scenario::env_count("AUTOSALON_REBUILD_SEEDS", 3);
    let every_event = events::every_event_type();
    let every_account: BTreeSet<String> = shadow::CHART
        .iter()
        .map(|a| a.to_string())
        .chain(
            tariffs::INSURERS
                .iter()
                .map(|i| shadow::premiums_payable(i.id)),
        )
        .collect();
    let every_product: BTreeSet<(String, String)> = tariffs::INSURERS
        .iter()
        .flat_map(|i| ["OSAGO", "KASKO"].map(|p| (i.id.to_string(), p.to_string())))
        .collect();
    let mut reached = BTreeSet::new();
    let mut moved = BTreeSet::new();
    let mut products = BTreeSet::new();
    let mut filled = BTreeSet::new();
    let mut refusals = 0;
    let covered = |reached: &BTreeSet<_>, moved: &BTreeSet<_>, products: &BTreeSet<_>| {
        every_event.is_subset(reached)
            && every_account.is_subset(moved)
            && every_product.is_subset(products)
    };
    let mut seeds = 0;
    while seeds < at_least
        || (!covered(&reached, &moved, &products) && seeds < MAX_SEEDS_FOR_COVERAGE)
    {
        let seed = scenario::base_seed().wrapping_add(seeds);
        seeds += 1;
        let plan = scenario::generate(seed, 4..=6);
        let played = scenario::play(&plan).await;
        let ledger = played.ledger().await;
        let pool = ledger.db.pool();
        shadow::reconcile(pool, &played.outcome.shadow, &format!("seed {seed}")).await;
        reached.extend(scenario::logged_event_types(pool).await);
        moved.extend(played.outcome.shadow.accounts_moved());
        refusals += played.outcome.refused;
        products.extend(insured(pool).await);
        for projector in projections::all_projectors() {
            let live = scenario::projector_rows(pool, projector.as_ref()).await;
            if live.values().any(|rows| !rows.is_empty()) {
                filled.insert(projector.name());
            }
            ledger
                .projections
                .rebuild(projector.name(), |_, _| {})
                .await
                .unwrap();
            let rebuilt = scenario::projector_rows(pool, projector.as_ref()).await;
            assert_eq!(
                live,
                rebuilt,
                "seed {seed}: projector {} rebuilt differs from live",
                projector.name()
            );
            // Handed every event, not only its declared aggregate types, it builds the same rows:
            // the list leaves out nothing its `apply` acts on.
            let every = projections::Projections::new(
                ledger.db.clone(),
                ledger.upcasters.clone(),
                vec![std::sync::Arc::new(EveryEvent(projector.clone()))],
            );
            every.prepare().await.unwrap();
            every.rebuild(projector.name(), |_, _| {}).await.unwrap();
            assert_eq!(
                live,
                scenario::projector_rows(pool, projector.as_ref()).await,
                "seed {seed}: projector {} handed every event differs from live: its \
                 aggregate_types() leaves out a type it applies",
                projector.name()
            );
        }
        ledger.db.close().await;
        eprintln!(
            "seed {seed}: {} event types, {} accounts, {} insurer products still unreached",
            never(&every_event, &reached).len(),
            never(&every_account, &moved).len(),
            never(&every_product, &products).len()
        );
    }
    eprintln!("{seeds} scenarios compared");
    assert!(
        refusals > 0,
        "no scenario tried a command that must be refused"
    );
    for projector in projections::all_projectors() {
        assert!(
            filled.contains(projector.name()),
            "no scenario gave projector {} a row: its comparison held vacuously",
            projector.name()
        );
    }
    assert_eq!(
        never(&every_event, &reached),
        Vec::<String>::new(),
        "event types the scenarios of {seeds} seeds never reached"
    );
    assert_eq!(
        never(&every_account, &moved),
        Vec::<String>::new(),
        "accounts the scenarios of {seeds} seeds never moved"
    );
    assert_eq!(
        never(&every_product, &products),
        Vec::<String>::new(),
        "insurers and products the scenarios of {seeds} seeds never issued"
    );
}
