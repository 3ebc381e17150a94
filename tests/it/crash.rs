//! Crashes, injected and real, never make a read model differ from a rebuild from the log.
//!
//! - A fault injected between applying a batch and committing it, at random points (batches of
//!   random size, every other one or so rolled back, restarts of the runtime in between), for every
//!   projector, the accumulating ones first: their tables, every one of them, equal a rebuild.
//! - The real binary, killed with SIGKILL twice in the middle of a scenario and restarted: no
//!   acknowledged write is lost or duplicated (the shadow ledger still matches the ledger exactly)
//!   and every projector's tables equal a rebuild.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use projections::{ProjectionError, Projections, Step};

use crate::scenario::{self, drive, shadow};

/// xorshift64*: small and deterministic, to pick batch sizes and faults.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// The projectors in the order they are crash-tested: those that accumulate (sums, running
/// balances, append-only rows) first, where a batch applied twice would show.
fn accumulating_first() -> Vec<Arc<dyn projections::Projector>> {
    let mut all = projections::all_projectors();
    let rank = |name: &str| match name {
        "ledger" => 0,
        "reports" => 1,
        "customer_history" => 2,
        _ => 3,
    };
    all.sort_by_key(|p| rank(p.name()));
    all
}

async fn checkpoint(pool: &eventstore::DbPool, name: &str) -> i64 {
    sqlx::query_scalar("SELECT position FROM log_checkpoints WHERE consumer = $1")
        .bind(name)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// How many scenarios each crash test plays (`AUTOSALON_CRASH_SEEDS`, 1 by default).
fn seeds() -> u64 {
    scenario::env_count("AUTOSALON_CRASH_SEEDS", 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_between_applying_and_committing_at_random_points_leaves_every_projector_equal_to_a_rebuild()
 {
    for n in 0..seeds() {
        faults_in_every_projector(scenario::base_seed().wrapping_add(n)).await;
    }
}

async fn faults_in_every_projector(seed: u64) {
    let plan = scenario::generate(seed, 6..=8);
    let played = scenario::play(&plan).await;
    let ledger = played.ledger().await;
    let pool = ledger.db.pool().clone();
    let head = eventstore::log::head(&pool).await.unwrap();
    let mut dice = Dice(seed | 1);
    for projector in accumulating_first() {
        let name = projector.name();
        ledger.projections.rebuild(name, |_, _| {}).await.unwrap();
        let rebuilt = scenario::projector_rows(&pool, projector.as_ref()).await;

        // From position 0 again: its checkpoint gone, start-up resets it.
        sqlx::query("DELETE FROM log_checkpoints WHERE consumer = $1")
            .bind(name)
            .execute(&pool)
            .await
            .unwrap();
        let mut runtime = Projections::new(
            ledger.db.clone(),
            ledger.upcasters.clone(),
            vec![projector.clone()],
        );
        runtime.prepare().await.unwrap();
        let (mut faults, mut batches) = (0, 0);
        loop {
            assert!(batches < 10 * head + 100, "{name} never caught up");
            batches += 1;
            let limit = 1 + dice.below(24) as u32;
            // Faults at random, and surely one before the first commit.
            if dice.below(10) < 4 || faults == 0 {
                let before = checkpoint(&pool, name).await;
                let crashed = runtime
                    .step_with_fault(name, limit, || {
                        Err(ProjectionError::Injected("power cut".into()))
                    })
                    .await;
                match crashed {
                    Err(ProjectionError::Injected(_)) => faults += 1,
                    // Nothing after the checkpoint: the fault never ran.
                    Ok(Step::CaughtUp) => break,
                    other => panic!("{name}: an injected fault gave {other:?}"),
                }
                assert_eq!(
                    checkpoint(&pool, name).await,
                    before,
                    "{name}: a rolled-back batch moved the checkpoint"
                );
                if dice.below(4) == 0 {
                    // A restart: a new runtime, state only from the database.
                    runtime = Projections::new(
                        ledger.db.clone(),
                        ledger.upcasters.clone(),
                        vec![projector.clone()],
                    );
                    runtime.prepare().await.unwrap();
                }
            } else if runtime
                .step_with_fault(name, limit, || Ok(()))
                .await
                .unwrap()
                == Step::CaughtUp
            {
                break;
            }
        }
        assert_eq!(checkpoint(&pool, name).await, head, "{name} caught up");
        assert!(faults > 0, "{name}: no fault was injected");
        assert_eq!(
            scenario::projector_rows(&pool, projector.as_ref()).await,
            rebuilt,
            "seed {seed}: {name} after {faults} injected faults in {batches} batches differs from a rebuild"
        );
    }
    ledger.db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_with_sigkill_mid_scenario_loses_and_duplicates_nothing() {
    for n in 0..seeds() {
        killed_twice((scenario::base_seed() ^ 0x9_c0de).wrapping_add(n)).await;
    }
}

async fn killed_twice(seed: u64) {
    let plan = scenario::generate(seed, 6..=8);
    let dir = scenario::scenario_dir();
    let url = crate::helpers::database_url(&dir.path().join("autosalon.db"));
    let mut server = scenario::server::ServerProcess::start(&url, dir.path(), "server").await;
    let base = Arc::new(RwLock::new(server.base.clone()));
    let target = Arc::new(drive::Target::restartable(
        base.clone(),
        server.admin_client().await,
    ));

    let driver = {
        let (plan, target) = (plan.clone(), target.clone());
        tokio::spawn(async move { drive::run(&plan, &target, drive::Time::Wall).await })
    };
    // Two kills, at points chosen by the seed, each while the scenario is still sending.
    let mut dice = Dice(seed | 1);
    let mut kills = 0;
    for _ in 0..2 {
        let at =
            target.sent.load(std::sync::atomic::Ordering::Relaxed) + 10 + dice.below(30) as usize;
        let deadline = std::time::Instant::now() + Duration::from_secs(300);
        while target.sent.load(std::sync::atomic::Ordering::Relaxed) < at && !driver.is_finished() {
            assert!(std::time::Instant::now() < deadline, "the scenario stalled");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if driver.is_finished() {
            break;
        }
        server.kill();
        kills += 1;
        server = scenario::server::ServerProcess::start(&url, dir.path(), "server").await;
        *base.write().unwrap() = server.base.clone();
    }
    let outcome = tokio::time::timeout(Duration::from_secs(600), driver)
        .await
        .expect("the scenario finishes")
        .expect("the scenario ran without a failed step");
    server.terminate();
    assert_eq!(kills, 2, "both kills landed while the scenario was running");
    assert!(outcome.accepted > 50, "the scenario did something");
    assert!(outcome.refused > 0, "the scenario tried refusals too");

    let ledger = autosalon::Ledger::open(&url).await.unwrap();
    ledger.projections.catch_up_all().await.unwrap();
    let pool = ledger.db.pool();
    shadow::reconcile(
        pool,
        &outcome.shadow,
        &format!("seed {seed}, after {kills} kills"),
    )
    .await;
    for projector in accumulating_first() {
        let live = scenario::projector_rows(pool, projector.as_ref()).await;
        ledger
            .projections
            .rebuild(projector.name(), |_, _| {})
            .await
            .unwrap();
        assert_eq!(
            scenario::projector_rows(pool, projector.as_ref()).await,
            live,
            "seed {seed}: {} after SIGKILLs differs from a rebuild",
            projector.name()
        );
    }
    ledger.db.close().await;
}

/// Sixteen clients register customers as fast as the server takes them, each request with its own
/// idempotency key, and the server is killed with SIGKILL while their appends are being committed
/// in groups; three times, at points chosen by the dice. After every restart: each acknowledged
/// registration is in the log exactly once, an unacknowledged one at most once (never half of a
/// group), every event has its position, and resending the unacknowledged ones with their keys
/// writes each of them once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_group_commits_under_16_writers_loses_and_duplicates_nothing() {
    const WRITERS: usize = 16;
    const REGISTER: &str = "mutation Register($input: RegisterCustomerInput!, $key: String) {
      registerCustomer(input: $input, idempotencyKey: $key) { position }
    }";
    let dir = scenario::scenario_dir();
    let url = crate::helpers::database_url(&dir.path().join("autosalon.db"));
    let mut dice = Dice(scenario::base_seed() | 1);
    // key → (customer id, acknowledged)
    let mut sent: std::collections::BTreeMap<String, (String, bool)> = Default::default();
    for round in 0..3 {
        let mut server = scenario::server::ServerProcess::start(&url, dir.path(), "server").await;
        let client = server.admin_client().await;
        let endpoint = format!("{}/graphql", server.base);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let acked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let writers: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let (client, endpoint, stop, acked) = (
                    client.clone(),
                    endpoint.clone(),
                    stop.clone(),
                    acked.clone(),
                );
                tokio::spawn(async move {
                    let mut requests = Vec::new();
                    let mut n = 0;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 2_000 {
                        let key = format!("kill-{round}-{writer}-{n}");
                        let id = uuid::Uuid::new_v4().to_string();
                        n += 1;
                        let body = serde_json::json!({ "query": REGISTER, "variables": {
                            "input": crate::helpers::customer_input(&id), "key": key } });
                        let answer = client
                            .post(&endpoint)
                            .json(&body)
                            .timeout(Duration::from_secs(10))
                            .send()
                            .await;
                        let ok = match answer {
                            Ok(response) => response
                                .json::<serde_json::Value>()
                                .await
                                .is_ok_and(|v| v["data"]["registerCustomer"]["position"].is_i64()),
                            Err(_) => false,
                        };
                        if ok {
                            acked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        requests.push((key, id, ok));
                        if !ok {
                            // The server is gone: this writer stops with what it has sent.
                            break;
                        }
                    }
                    requests
                })
            })
            .collect();
        // Kill once a few hundred registrations (a different number each round) are acknowledged.
        let kill_after = 100 + dice.below(300) as usize;
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while acked.load(std::sync::atomic::Ordering::Relaxed) < kill_after {
            assert!(std::time::Instant::now() < deadline, "the writers stalled");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        server.kill();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for writer in writers {
            for (key, id, ok) in writer.await.unwrap() {
                sent.insert(key, (id, ok));
            }
        }
        assert!(
            sent.values().any(|(_, ok)| !ok),
            "round {round}: the kill landed while requests were in flight"
        );

        // Restarted: what the log holds for each key.
        server = scenario::server::ServerProcess::start(&url, dir.path(), "server").await;
        let db = eventstore::Database::connect(&url).await.unwrap();
        let written: Vec<(String, String)> = sqlx::query_as(
            "SELECT e.idempotency_key, e.aggregate_id FROM events e
              WHERE e.aggregate_type = 'Customer' AND e.idempotency_key LIKE 'kill-%'",
        )
        .fetch_all(db.pool())
        .await
        .unwrap();
        let mut per_key: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        for (key, id) in &written {
            per_key.entry(key).or_default().push(id);
        }
        for (key, (id, ok)) in &sent {
            let found = per_key.get(key.as_str()).map(Vec::as_slice).unwrap_or(&[]);
            if *ok {
                assert_eq!(found, [id.as_str()], "round {round}: acknowledged {key}");
            } else {
                assert!(
                    found.len() <= 1,
                    "round {round}: {key} written {} times",
                    found.len()
                );
            }
        }
        let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(db.pool())
            .await
            .unwrap();
        let positions: i64 = sqlx::query_scalar("SELECT count(*) FROM event_log")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(
            events, positions,
            "round {round}: every event has its position"
        );

        // The clients retry what they were not told about, with the same keys.
        let client = server.admin_client().await;
        let endpoint = format!("{}/graphql", server.base);
        for (key, (id, ok)) in sent.iter_mut().filter(|(_, (_, ok))| !*ok) {
            let body = serde_json::json!({ "query": REGISTER, "variables": {
                "input": crate::helpers::customer_input(id), "key": key } });
            let answer: serde_json::Value = client
                .post(&endpoint)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert!(
                answer["data"]["registerCustomer"]["position"].is_i64(),
                "round {round}: retry of {key}: {answer}"
            );
            *ok = true;
        }
        let keyed: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE aggregate_type = 'Customer' AND idempotency_key LIKE 'kill-%'",
        )
        .fetch_one(db.pool())
        .await
        .unwrap();
        assert_eq!(
            keyed as usize,
            sent.len(),
            "round {round}: after the retries every registration is in the log exactly once"
        );
        db.close().await;
        server.terminate();
    }
}
