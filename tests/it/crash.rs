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
