//! Append throughput and latency of the event store, through cqrs-es exactly as commands append.
//!
//! `cargo bench --bench append` measures the embedded SQLite store; with
//! `AUTOSALON_BENCH_DATABASE_URL=postgres://USER@HOST:PORT/DATABASE` (an empty database) it measures
//! PostgreSQL, where appends are serialised by the append lock (ARCHITECTURE.md, "The global log").
//! Each writer appends one event per command to its own aggregate, as concurrent clients do.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aggregates::vehicle::{Vehicle, VehicleEvent};
use cqrs_es::EventStore;
use eventstore::{Database, Upcasters};

const APPENDS_PER_RUN: usize = 2_000;
const WRITERS: [usize; 3] = [1, 4, 16];

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = std::env::var("AUTOSALON_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("bench.db").display()));
    let db = Database::connect(&url).await.expect("the database opens");
    db.migrate().await.expect("migrations apply");
    let upcasters: Upcasters = Arc::new(aggregates::upcasters());
    let store = Arc::new(db.store::<Vehicle>(&upcasters));
    println!(
        "backend: {}, {APPENDS_PER_RUN} appends per run, one event each",
        db.backend().name()
    );
    println!("writers  appends/s  p50 ms  p99 ms");
    for (run, writers) in WRITERS.into_iter().enumerate() {
        let per_writer = APPENDS_PER_RUN / writers;
        let started = Instant::now();
        let tasks: Vec<_> = (0..writers)
            .map(|writer| {
                let store = store.clone();
                tokio::spawn(async move {
                    let id = format!("bench-{run}-{writer}");
                    let mut latencies = Vec::with_capacity(per_writer);
                    for n in 0..per_writer {
                        let began = Instant::now();
                        let context = store.load_aggregate(&id).await.expect("loads");
                        let event = VehicleEvent::VehicleRelocated {
                            from: "Yard".into(),
                            to: format!("Bay {n}"),
                        };
                        store
                            .commit(vec![event], context, HashMap::new())
                            .await
                            .expect("appends");
                        latencies.push(began.elapsed());
                    }
                    latencies
                })
            })
            .collect();
        let mut latencies: Vec<Duration> = Vec::with_capacity(APPENDS_PER_RUN);
        for task in tasks {
            latencies.extend(task.await.expect("a writer"));
        }
        let elapsed = started.elapsed();
        latencies.sort();
        let percentile = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
        println!(
            "{writers:>7}  {:>9.0}  {:>6.2}  {:>6.2}",
            latencies.len() as f64 / elapsed.as_secs_f64(),
            percentile(50).as_secs_f64() * 1e3,
            percentile(99).as_secs_f64() * 1e3,
        );
    }
    db.close().await;
}
