//! Races run many times, with evidence that they really raced: a round counts as contended when
//! one of its appends was beaten by a concurrent one (the store counts those:
//! `Database::contended_appends`), so a race test cannot pass on rounds that ran one after the
//! other.

use std::future::Future;

use eventstore::Database;

/// Rounds per race test: `AUTOSALON_RACE_ROUNDS`, or a modest default that keeps CI quick.
pub fn rounds() -> usize {
    std::env::var("AUTOSALON_RACE_ROUNDS")
        .ok()
        .and_then(|rounds| rounds.parse().ok())
        .filter(|&rounds| rounds > 0)
        .unwrap_or(12)
}

/// How many rounds of one race were run, and in how many the racers collided.
pub struct Tally {
    db: Database,
    rounds: usize,
    contended: usize,
}

impl Tally {
    pub fn new(db: &Database) -> Self {
        Self {
            db: db.clone(),
            rounds: 0,
            contended: 0,
        }
    }

    /// Runs one round; it is contended when an append made during it lost to a concurrent one.
    pub async fn round<T>(&mut self, round: impl Future<Output = T>) -> T {
        let before = self.db.contended_appends();
        let outcome = round.await;
        self.rounds += 1;
        if self.db.contended_appends() > before {
            self.contended += 1;
        }
        outcome
    }

    /// Fails unless at least one round really raced.
    pub fn assert_contended(&self, race: &str) {
        eprintln!(
            "{race}: the racers collided in {} of {} rounds",
            self.contended, self.rounds
        );
        assert!(
            self.contended > 0,
            "{race}: in none of {} rounds did the racers collide; the test proved nothing",
            self.rounds
        );
    }
}
