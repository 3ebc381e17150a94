//! Commands through the real command services (in-process) and through GraphQL over HTTP, and the
//! catalog read while they write.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aggregates::contact::{Email, Phone};
use aggregates::customer::CustomerCommand;
use aggregates::money::{Currency, Money};
use aggregates::vehicle::{Condition, StockVehicle};
use aggregates::vin::Vin;
use commands::Dealership;
use commands::context::RequestContext;
use commands::error::CommandError;
use eventstore::Database;
use projections::Projections;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::Size;
use crate::report::Latency;

/// What the in-process runs need of the running application.
#[derive(Clone)]
pub struct Services {
    pub dealership: Arc<Dealership>,
    pub projections: Arc<Projections>,
    pub db: Database,
    /// How long a mutation waits for its read models (the application's setting).
    pub read_your_writes_timeout: Duration,
}

#[derive(Clone, Copy, Debug)]
pub enum Workload {
    /// Every command creates its own customer.
    Distinct,
    /// Every command relocates this one car.
    Hot(Uuid),
}

pub struct CommandRun {
    pub per_second: f64,
    pub latency: Latency,
    /// Optimistic-lock conflicts per command.
    pub conflict_rate: f64,
    /// Commands that gave up after their conflict retries.
    pub failed: usize,
    /// Commands whose read models had not caught up within the timeout.
    pub lagging: usize,
}

/// VINs for cars stocked while the bench runs (the generated log uses small numbers).
static NEXT_VIN: AtomicU64 = AtomicU64::new(1_000_000_000);

pub fn stock(n: u64) -> StockVehicle {
    StockVehicle {
        vin: Vin::parse(&crate::log::vin(NEXT_VIN.fetch_add(1, Ordering::Relaxed)))
            .expect("a generated VIN"),
        brand: "Lada".into(),
        model: "Vesta".into(),
        year: 2024,
        trim: "Comfort".into(),
        colour: "white".into(),
        mileage_km: 0,
        condition: Condition::New,
        location: format!("Lot {}", n % 12),
        list_price: Money::new(Decimal::from(1_500_000), Currency::RUB).expect("a price"),
        specifications: Default::default(),
        stocked_at: chrono::Utc::now(),
    }
}

fn register(services: &Services) -> CustomerCommand {
    CustomerCommand::Register {
        full_name: "Anna Petrova".into(),
        email: Email::parse("anna@example.ru").expect("an email"),
        phone: Phone::parse("+7 916 123-45-67").expect("a phone"),
        address: "Moscow, Tverskaya 1".into(),
        registered_at: services.dealership.now(),
    }
}

/// One command of the workload; with `read_your_writes`, also the wait for every read model to
/// reach it, as a mutation waits before it answers.
async fn one_command(
    services: &Services,
    workload: Workload,
    n: u64,
    read_your_writes: bool,
) -> Result<bool, CommandError> {
    let ctx = RequestContext::system("bench");
    let written = match workload {
        Workload::Distinct => {
            services
                .dealership
                .register_customer(&ctx, Uuid::now_v7(), register(services), None)
                .await?
        }
        Workload::Hot(id) => {
            services
                .dealership
                .relocate_vehicle(&ctx, id, format!("Bay {n}"), None)
                .await?
        }
    };
    if read_your_writes {
        return Ok(services
            .projections
            .wait_for(written.position, services.read_your_writes_timeout)
            .await);
    }
    Ok(true)
}

pub async fn run_commands(
    services: &Services,
    writers: usize,
    workload: Workload,
    read_your_writes: bool,
    size: &Size,
) -> CommandRun {
    let contended_before = services.db.contended_appends();
    let each = size.commands_max.div_ceil(writers);
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|writer| {
            let services = services.clone();
            let budget = size.run_time;
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let (mut failed, mut lagging) = (0, 0);
                for n in 0..each {
                    if started.elapsed() > budget {
                        break;
                    }
                    let at = Instant::now();
                    let n = (writer * each + n) as u64;
                    match one_command(&services, workload, n, read_your_writes).await {
                        Ok(caught_up) => {
                            latencies.push(at.elapsed());
                            lagging += usize::from(!caught_up);
                        }
                        Err(CommandError::Conflict { .. }) => failed += 1,
                        Err(other) => panic!("a bench command failed: {other}"),
                    }
                }
                (latencies, failed, lagging)
            })
        })
        .collect();
    let (mut latencies, mut failed, mut lagging) = (Vec::new(), 0, 0);
    for task in tasks {
        let (l, f, g) = task.await.expect("a writer");
        latencies.extend(l);
        failed += f;
        lagging += g;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let attempted = latencies.len() + failed;
    let contended = services.db.contended_appends() - contended_before;
    CommandRun {
        per_second: latencies.len() as f64 / elapsed,
        latency: Latency::of(latencies),
        conflict_rate: contended as f64 / attempted.max(1) as f64,
        failed,
        lagging,
    }
}

/// A GraphQL client signed in with `token`.
pub fn client(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().expect("a header value"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("a client")
}

/// Posts one operation; panics on an error, as the bench must measure successes only.
pub async fn graphql(
    client: &reqwest::Client,
    addr: SocketAddr,
    query: &str,
    variables: Value,
) -> Value {
    let answer: Value = client
        .post(format!("http://{addr}/graphql"))
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("the server answers")
        .json()
        .await
        .expect("the answer is JSON");
    assert!(answer.get("errors").is_none(), "errors: {answer}");
    answer
}

/// `clients` clients (a connection each) registering customers over GraphQL until the run's
/// budget. Returns mutations per second and their latency.
pub async fn http_mutations(
    addr: SocketAddr,
    token: &str,
    clients: usize,
    size: &Size,
) -> (f64, Latency) {
    let each = size.commands_max.div_ceil(clients);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let client = client(token);
            let budget = size.run_time;
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                for _ in 0..each {
                    if started.elapsed() > budget {
                        break;
                    }
                    let at = Instant::now();
                    let input = crate::helpers::customer_input(&Uuid::now_v7().to_string());
                    graphql(
                        &client,
                        addr,
                        crate::helpers::REGISTER_CUSTOMER,
                        json!({ "input": input }),
                    )
                    .await;
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

/// The cheapest request the server answers: all of HTTP, JSON and GraphQL for one field.
pub async fn typename(addr: SocketAddr, token: &str, rounds: usize) -> Latency {
    let client = client(token);
    let mut latencies = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let at = Instant::now();
        graphql(&client, addr, "{ __typename }", json!({})).await;
        latencies.push(at.elapsed());
    }
    Latency::of(latencies)
}

const VEHICLES: &str = "query($filter: VehicleFilter) { vehicles(filter: $filter, first: 10) {
  totalCount edges { node { id vin brand model year status listPrice { amount currency } } } } }";
const COUNTS: &str = "query($filter: VehicleFilter, $by: CatalogGrouping!) {
  vehicleCounts(filter: $filter, groupBy: $by) { brand model count } }";

/// The filter shapes a catalog page is asked with.
fn filters(brand: &str, model: &str) -> Vec<Value> {
    vec![
        json!(null),
        json!({ "brand": brand }),
        json!({ "brand": brand, "model": model }),
        json!({ "yearFrom": 2020, "yearTo": 2022 }),
        json!({ "priceFrom": "1000000", "priceTo": "1500000" }),
        json!({ "status": "AVAILABLE", "condition": "USED" }),
        json!({ "brand": brand, "status": "AVAILABLE", "yearFrom": 2018 }),
    ]
}

/// p50/p99 of `vehicles(first: 10)` over the filter shapes, and of `vehicleCounts`.
pub async fn catalog(
    addr: SocketAddr,
    token: &str,
    sample: &(String, String),
    rounds: usize,
) -> (Latency, Latency) {
    let client = client(token);
    let shapes = filters(&sample.0, &sample.1);
    let (mut pages, mut counts) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let filter = &shapes[round % shapes.len()];
        let at = Instant::now();
        graphql(&client, addr, VEHICLES, json!({ "filter": filter })).await;
        pages.push(at.elapsed());
        let by = if round % 2 == 0 {
            "BRAND"
        } else {
            "BRAND_AND_MODEL"
        };
        let at = Instant::now();
        graphql(&client, addr, COUNTS, json!({ "filter": filter, "by": by })).await;
        counts.push(at.elapsed());
    }
    (Latency::of(pages), Latency::of(counts))
}

/// Writers stocking cars (each waiting for its read models) until the returned flag is set.
pub fn background_stocking(
    services: &Services,
    writers: usize,
) -> (Arc<AtomicBool>, Vec<tokio::task::JoinHandle<usize>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let handles = (0..writers)
        .map(|writer| {
            let services = services.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let ctx = RequestContext::system("bench");
                let mut written = 0;
                // Bounded in count as well as by the flag.
                for n in 0..1_000_000u64 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let done = services
                        .dealership
                        .stock_vehicle(&ctx, Uuid::now_v7(), stock(n + writer as u64), None)
                        .await
                        .expect("a car is stocked");
                    services
                        .projections
                        .wait_for(done.position, services.read_your_writes_timeout)
                        .await;
                    written += 1;
                }
                written
            })
        })
        .collect();
    (stop, handles)
}
