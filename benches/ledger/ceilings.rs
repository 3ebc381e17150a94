//! The ceilings: what the database does with the application's own pool and durability settings
//! (`Database::connect`: WAL and `synchronous=FULL` on SQLite) when nothing of the ledger runs —
//! plain rows committed, and the log read in order and decoded with serde as a projector reads it.

use std::time::Instant;

use eventstore::{Backend, Database, EventLog, RecordedEvent, StoreError, Upcasters};

use crate::Size;
use crate::report::{Figure, Latency};

/// A row about the size of a stored event's payload.
const PAYLOAD: &str = r#"{"VehicleRelocated":{"from":"Showroom A","to":"Yard 7, bay 12"},"metadata":{"actor_id":"0193a4b0-0000-7000-8000-000000000001","actor_role":"admin","correlation_id":"0193a4b0-0000-7000-8000-0000000000e1","causation_id":"0193a4b0-0000-7000-8000-0000000000e2","command":"RelocateVehicle"}}"#;

pub struct Ceilings {
    /// Raw one-row commits per second, one writer.
    pub one_row: Figure,
    /// The same, 16 writers.
    pub one_row_16: Figure,
    /// Rows per second in 100-row commits.
    pub hundred_rows: Figure,
    /// PostgreSQL only: autocommit single-row INSERTs per second from 4 clients (pgbench-like).
    pub insert_4_clients: Option<Figure>,
}

async fn create_table(db: &Database) {
    let ddl = match db.backend() {
        Backend::Sqlite => {
            "CREATE TABLE bench_ceiling (id INTEGER PRIMARY KEY AUTOINCREMENT, payload TEXT NOT NULL)"
        }
        Backend::Postgres => {
            "CREATE TABLE bench_ceiling (id BIGSERIAL PRIMARY KEY, payload TEXT NOT NULL)"
        }
    };
    sqlx::query("DROP TABLE IF EXISTS bench_ceiling")
        .execute(db.pool())
        .await
        .expect("drops the ceiling table");
    sqlx::query(ddl)
        .execute(db.pool())
        .await
        .expect("creates the ceiling table");
}

/// `writers` tasks each committing transactions of `rows` rows, as the application begins its
/// write transactions, until `commits` in all or the size's time budget. Returns rows per second
/// and the latency of one commit.
async fn commit_rows(db: &Database, writers: usize, rows: usize, size: &Size) -> (f64, Latency) {
    let commits_each = size.raw_commits.div_ceil(writers);
    let budget = size.run_time;
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(commits_each);
                let begun = Instant::now();
                for _ in 0..commits_each {
                    if begun.elapsed() > budget {
                        break;
                    }
                    let at = Instant::now();
                    let mut tx = db
                        .pool()
                        .begin_with(db.backend().begin_write())
                        .await
                        .expect("begins");
                    for _ in 0..rows {
                        sqlx::query("INSERT INTO bench_ceiling (payload) VALUES ($1)")
                            .bind(PAYLOAD)
                            .execute(&mut *tx)
                            .await
                            .expect("inserts");
                    }
                    tx.commit().await.expect("commits");
                    latencies.push(at.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("a writer"));
    }
    let rate = (latencies.len() * rows) as f64 / started.elapsed().as_secs_f64();
    (rate, Latency::of(latencies))
}

/// Autocommit single-row INSERTs from `clients` connections (what pgbench's one-INSERT script does).
async fn autocommit_inserts(db: &Database, clients: usize, size: &Size) -> (f64, Latency) {
    let each = size.raw_commits.div_ceil(clients) * 2;
    let budget = size.run_time;
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move {
                let mut conn = db.pool().acquire().await.expect("a connection");
                let mut latencies = Vec::with_capacity(each);
                let begun = Instant::now();
                for _ in 0..each {
                    if begun.elapsed() > budget {
                        break;
                    }
                    let at = Instant::now();
                    sqlx::query("INSERT INTO bench_ceiling (payload) VALUES ($1)")
                        .bind(PAYLOAD)
                        .execute(&mut *conn)
                        .await
                        .expect("inserts");
                    latencies.push(at.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("a client"));
    }
    let rate = latencies.len() as f64 / started.elapsed().as_secs_f64();
    (rate, Latency::of(latencies))
}

pub async fn measure(db: &Database, size: &Size) -> Ceilings {
    create_table(db).await;
    let (rate, latency) = commit_rows(db, 1, 1, size).await;
    let one_row =
        Figure::new("ceiling", "raw one-row commit, 1 writer", rate, "rows/s").latency(latency);
    let (rate, latency) = commit_rows(db, 16, 1, size).await;
    let one_row_16 =
        Figure::new("ceiling", "raw one-row commit, 16 writers", rate, "rows/s").latency(latency);
    let (rate, latency) = commit_rows(db, 1, 100, &size.fewer(10)).await;
    let hundred_rows =
        Figure::new("ceiling", "raw 100-row commit, 1 writer", rate, "rows/s").latency(latency);
    let insert_4_clients = match db.backend() {
        Backend::Postgres => {
            let (rate, latency) = autocommit_inserts(db, 4, size).await;
            Some(
                Figure::new("ceiling", "single-row INSERT, 4 clients", rate, "rows/s")
                    .latency(latency),
            )
        }
        Backend::Sqlite => None,
    };
    sqlx::query("DROP TABLE bench_ceiling")
        .execute(db.pool())
        .await
        .expect("drops the ceiling table");
    Ceilings {
        one_row,
        one_row_16,
        hundred_rows,
        insert_4_clients,
    }
}

/// Decodes an event's payload as its aggregate's event enum, as the projectors do.
pub fn decode(event: &RecordedEvent) -> Result<(), StoreError> {
    use aggregates::*;
    match event.aggregate_type.as_str() {
        "Vehicle" => event.decode::<vehicle::VehicleEvent>().map(drop),
        "Customer" => event.decode::<customer::CustomerEvent>().map(drop),
        "Order" => event.decode::<order::OrderEvent>().map(drop),
        "Payment" => event.decode::<payment::PaymentEvent>().map(drop),
        "Loan" => event.decode::<loan::LoanEvent>().map(drop),
        "Policy" => event.decode::<policy::PolicyEvent>().map(drop),
        "Booking" => event.decode::<bookings::BookingEvent>().map(drop),
        "MechanicDay" => event.decode::<bookings::MechanicDayEvent>().map(drop),
        "User" => event.decode::<user::UserEvent>().map(drop),
        "PartnerKey" => event.decode::<partner_key::PartnerKeyEvent>().map(drop),
        other => panic!("an aggregate type the bench does not know: {other}"),
    }
}

/// The whole log read in order in the largest batches the log hands out, each event decoded:
/// events per second.
pub async fn read_and_decode(db: &Database, upcasters: &Upcasters) -> Figure {
    let log = EventLog::new(db.pool().clone(), upcasters.clone());
    let started = Instant::now();
    let mut after = 0;
    let mut read = 0usize;
    loop {
        let batch = log
            .read_after(after, eventstore::log::MAX_BATCH_EVENTS)
            .await
            .expect("reads the log");
        let Some(last) = batch.last() else { break };
        after = last.position;
        for event in &batch {
            decode(event).expect("every event decodes");
        }
        read += batch.len();
    }
    let rate = read as f64 / started.elapsed().as_secs_f64();
    Figure::new(
        "ceiling",
        "raw ordered read + decode of the log",
        rate,
        "events/s",
    )
}

/// How long reading and decoding one aggregate's stream takes, straight from the log.
pub async fn read_stream(
    db: &Database,
    upcasters: &Upcasters,
    aggregate_type: &str,
    id: &str,
    rounds: usize,
) -> Latency {
    let log = EventLog::new(db.pool().clone(), upcasters.clone());
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let at = Instant::now();
        let mut after = 0;
        loop {
            let batch = log
                .stream(aggregate_type, id, after, eventstore::log::MAX_BATCH_EVENTS)
                .await
                .expect("reads the stream");
            let Some(last) = batch.last() else { break };
            after = last.sequence;
            for event in &batch {
                decode(event).expect("decodes");
            }
        }
        samples.push(at.elapsed());
    }
    Latency::of(samples)
}
