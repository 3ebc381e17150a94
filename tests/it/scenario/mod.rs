//! One scenario generator for the whole dealership.
//!
//! A [`plan::Scenario`] is a few months of the dealership: cars stocked, repriced, moved and
//! withdrawn; customers registered, coming back and moving house; orders drafted, discounted,
//! confirmed, cancelled, paid in parts by card, bank transfer and cash (some attempts failing or
//! cancelled), refunded and paid again, and handed over; loans applied for, changed, refused by the
//! credit policy or by hand, approved, disbursed, repaid on time, early in part or in full, all at
//! once, or not at all until they fall into arrears and default; OSAGO and KASKO policies from all
//! five insurers, paid or not, cancelled with a pro-rata refund, claimed on (filed, reviewed,
//! rejected, approved, paid) and expired; workshop bookings made, moved, started, completed at a
//! cost, cancelled and missed; and refusals tried along the way (an overpayment, a handover before
//! payment, a rival order for a reserved car, a double-booked mechanic, a wrong premium), each of
//! which must write nothing. Accounts are created for customers and staff, granted and revoked
//! roles, given new passwords by an admin and by their holders, locked out and disabled, and
//! partner insurers' API keys are issued and revoked: none of that moves money, but it is played,
//! rebuilt and crash-tested with the rest.
//!
//! [`drive::run`] plays a scenario against a server over GraphQL in time order and keeps a
//! [`shadow::Shadow`] ledger from its own inputs and the documented posting rules: prices,
//! discounts, payments, refunds, repayments, claims and service costs are the scenario's own;
//! premiums and commissions come from the insurers' published tariffs ([`tariffs`]), refunds and
//! claw-backs from the documented formulas, the payoff from the documented accrual rule. The only
//! thing learnt from the application is the loan schedule the dealership fixes (from the
//! `LoanApproved` / `LoanRepaidEarly` events in the log, never from a read model).
//!
//! The tests built on it: the ledger property (`ledger_props`), rebuild-equals-live and event
//! coverage (`rebuild`), crash injection (`crash`).

pub mod drive;
pub mod events;
pub mod plan;
pub mod server;
pub mod shadow;
pub mod tariffs;

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// An environment variable's number, or `default`.
pub fn env_count(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// The base seed of the runs (`AUTOSALON_SCENARIO_SEED`, fixed by default so CI is reproducible).
pub fn base_seed() -> u64 {
    env_count("AUTOSALON_SCENARIO_SEED", 0x5eed_2026_0009)
}

/// The scenario of `seed`: the same seed always gives the same scenario.
pub fn generate(seed: u64, stories: std::ops::RangeInclusive<usize>) -> plan::Scenario {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
    );
    plan::scenario(stories)
        .new_tree(&mut runner)
        .expect("a scenario")
        .current()
}

/// A scenario played against a server of its own, which has been stopped since.
pub struct Played {
    /// Keeps the database for the test's length.
    pub dir: tempfile::TempDir,
    pub outcome: drive::Outcome,
}

impl Played {
    pub fn database_url(&self) -> String {
        crate::helpers::database_url(&self.dir.path().join("autosalon.db"))
    }

    /// The store and projectors of the played database, every projector caught up.
    pub async fn ledger(&self) -> autosalon::Ledger {
        let ledger = autosalon::Ledger::open(&self.database_url()).await.unwrap();
        ledger.projections.catch_up_all().await.unwrap();
        ledger
    }
}

/// A temporary directory for a scenario's SQLite database: in memory-backed `/dev/shm` where the
/// machine has one. What the scenarios check is what the ledger records, not the disk: on a busy
/// machine the fsyncs of ten projectors committing after every event otherwise take most of a
/// run. (Durability itself is asserted at start-up and tested elsewhere; a SIGKILL of the server
/// loses nothing the kernel already holds, tmpfs or not.)
pub fn scenario_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if crate::helpers::postgres_admin_url().is_none()
        && shm.is_dir()
        && let Ok(dir) = tempfile::Builder::new()
            .prefix("autosalon-")
            .tempdir_in(shm)
    {
        return dir;
    }
    crate::helpers::temp_dir()
}

/// Plays `scenario` on a fresh database, the server's clock set to each step's time.
pub async fn play(scenario: &plan::Scenario) -> Played {
    let dir = scenario_dir();
    let clock = drive::ScenarioClock::new();
    let app = crate::helpers::spawn_with_clock(&dir, clock.clone()).await;
    let target = drive::Target::of(&app);
    let outcome = drive::run(scenario, &target, drive::Time::Scenario(clock)).await;
    app.stop().await;
    Played { dir, outcome }
}

/// `(aggregate type, event type)` of every event in the log.
pub async fn logged_event_types(
    pool: &eventstore::DbPool,
) -> std::collections::BTreeSet<(String, String)> {
    sqlx::query_as("SELECT DISTINCT aggregate_type, event_type FROM events")
        .fetch_all(pool)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

/// Every row of every table of `projector`, by table.
pub async fn projector_rows(
    pool: &eventstore::DbPool,
    projector: &dyn projections::Projector,
) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut rows = std::collections::BTreeMap::new();
    for table in projector.tables() {
        rows.insert(
            table.to_string(),
            crate::rows::table_rows(pool, table).await,
        );
    }
    rows
}
