//! What the door's refusals cost, beside the cheapest request the server answers.
//!
//! `cargo bench --bench door` starts the real server (embedded SQLite, port 0) and, over HTTP with
//! one keep-alive connection, times `{ __typename }` (the ceiling: all of HTTP, JSON and GraphQL
//! for one field) and the attacks the door refuses: the 31-level fragment bomb, 1,000 aliased
//! `registerCustomer`, and a `text/plain` POST. Each line gives p50/p99 and the p50 as a multiple
//! of the ceiling's. Then, for scale, what async-graphql's own validation costs on smaller bombs
//! when nothing measures them first (the schema executed directly): it doubles with every level.

use std::time::{Duration, Instant};

use autosalon::{Application, ServeArgs};
use serde_json::json;

const ROUNDS: usize = 200;

fn fragment_bomb(levels: usize) -> String {
    let mut query = format!(
        "query {{ ...F{} }} fragment F0 on QueryRoot {{ __typename }}",
        levels - 1
    );
    for level in 1..levels {
        query.push_str(&format!(
            " fragment F{level} on QueryRoot {{ ...F{0} ...F{0} }}",
            level - 1
        ));
    }
    query
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("bench.db");
    let settings = ServeArgs::new(
        format!("sqlite://{}", path.display()),
        "127.0.0.1:0".parse().unwrap(),
    );
    let app = Application::build(settings)
        .await
        .expect("the server builds");
    let url = format!("http://{}/graphql", app.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run(async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();

    let aliased = format!(
        "mutation {{ {} }}",
        (0..1_000)
            .map(|i| format!(
                "c{i}: registerCustomer(input: {{ fullName: \"B {i}\", email: \"b{i}@example.ru\", \
                 phone: \"+7916{i:07}\", address: \"Kazan\" }}) {{ position }} "
            ))
            .collect::<String>()
    );
    let cases: Vec<(&str, String, &str, u16)> = vec![
        (
            "{ __typename } (ceiling)",
            json!({ "query": "{ __typename }" }).to_string(),
            "application/json",
            200,
        ),
        (
            "31-level fragment bomb",
            json!({ "query": fragment_bomb(31) }).to_string(),
            "application/json",
            400,
        ),
        (
            "1,000 aliased registerCustomer",
            json!({ "query": aliased }).to_string(),
            "application/json",
            400,
        ),
        (
            "text/plain mutation",
            json!({ "query": "mutation { x }" }).to_string(),
            "text/plain",
            415,
        ),
    ];
    println!("{ROUNDS} requests each, one keep-alive connection");
    println!(
        "{:<34} {:>8} {:>8} {:>10}",
        "request", "p50 ms", "p99 ms", "p50/ceil"
    );
    let mut ceiling = None;
    for (name, body, content_type, status) in &cases {
        let mut latencies = Vec::with_capacity(ROUNDS);
        for round in 0..ROUNDS + 10 {
            let started = Instant::now();
            let response = client
                .post(&url)
                .header("content-type", *content_type)
                .body(body.clone())
                .send()
                .await
                .expect("answered");
            assert_eq!(response.status().as_u16(), *status, "{name}");
            response.bytes().await.expect("a body");
            if round >= 10 {
                latencies.push(started.elapsed());
            }
        }
        latencies.sort();
        let p50 = percentile(&latencies, 0.5);
        let ceiling = *ceiling.get_or_insert(p50);
        println!(
            "{:<34} {:>8.3} {:>8.3} {:>10.2}",
            name,
            ms(p50),
            ms(percentile(&latencies, 0.99)),
            p50.as_secs_f64() / ceiling.as_secs_f64()
        );
    }

    println!("\nasync-graphql alone (schema executed directly, no measuring first):");
    println!(
        "{:<10} {:>14} {:>10} {:>10}",
        "levels", "selections", "ms", "x ceil"
    );
    let schema = autosalon::schema::builder().finish();
    for levels in [14, 16, 18] {
        let started = Instant::now();
        let response = schema.execute(fragment_bomb(levels)).await;
        let took = started.elapsed();
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        println!(
            "{:<10} {:>14} {:>10.1} {:>10.0}",
            levels,
            3u64 * (1 << (levels - 1)) - 1,
            ms(took),
            took.as_secs_f64() / ceiling.unwrap_or(Duration::from_millis(1)).as_secs_f64()
        );
    }

    let _ = stop.send(());
    server
        .await
        .expect("the server task")
        .expect("the server stops");
}
