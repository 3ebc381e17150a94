//! The ledger property: after any scenario of the whole dealership, the `ledger` read model holds
//! exactly the entries the documented posting rules give for what the scenario did, kept by the
//! scenario itself (see `scenario`), and so every account of the chart reconciles.
//!
//! Each case is one to four stories (cars and the customers around them). `AUTOSALON_LEDGER_CASES`
//! sets the number of cases (12 by default; 256 or more for a long run),
//! `AUTOSALON_SCENARIO_SEED` the random seed (fixed by default, so a run is reproducible). A failing
//! case is shrunk and its seed saved in `tests/proptest-regressions/ledger_props.txt`, which replays
//! it first on the next run. That the scenarios move every account and insure with all five
//! insurers is asserted with the rebuild comparison (`rebuild`), over a fixed set of scenarios.

use proptest::test_runner::{Config, FileFailurePersistence, RngSeed, TestCaseError, TestRunner};

use crate::scenario::{self, shadow};

#[test]
fn the_ledger_is_the_posting_rules_applied_to_every_step_of_any_scenario() {
    let cases = scenario::env_count("AUTOSALON_LEDGER_CASES", 12) as u32;
    let mut runner = TestRunner::new(Config {
        cases,
        source_file: Some(file!()),
        failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel(
            "proptest-regressions",
        ))),
        rng_seed: RngSeed::Fixed(scenario::base_seed()),
        // Each case is a whole dealership over HTTP: shrink, but not for ever.
        max_shrink_iters: 64,
        max_shrink_time: 300_000,
        ..Config::default()
    });
    let result = runner.run(&scenario::plan::scenario(1..=4), |scenario| {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let played = scenario::play(&scenario).await;
            let ledger = played.ledger().await;
            shadow::reconcile(ledger.db.pool(), &played.outcome.shadow, "the ledger").await;
            ledger.db.close().await;
        });
        Ok::<(), TestCaseError>(())
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}
