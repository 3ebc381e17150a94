//! PostgreSQL only: the guarantees that exist because several transactions, processes and servers
//! share one database. They need a PostgreSQL 15 cluster: `.ci/run` starts one and runs them with
//! `AUTOSALON_TEST_DATABASE_URL=postgres://… cargo test --workspace -- --include-ignored`; on
//! SQLite there is nothing of this to test (one writer, one process), so they are ignored there.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aggregates::vehicle::{Vehicle, VehicleEvent};
use cqrs_es::{AggregateError, EventStore};
use eventstore::{Database, RecordedEvent, Upcasters};
use futures::future::BoxFuture;
use projections::{ProjectionError, Projections, Projector};
use serde_json::{Value, json};
use sqlx::AnyConnection;
use tokio::sync::Barrier;

use crate::helpers::{database_url, error_codes, temp_dir, vehicle_input};

/// Fails loudly when no cluster is configured: these tests never pass by doing nothing.
fn require_postgres() {
    assert!(
        crate::helpers::postgres_admin_url().is_some(),
        "this test needs PostgreSQL: set AUTOSALON_TEST_DATABASE_URL=postgres://USER@HOST:PORT/postgres \
         (`eval \"$(.ci/postgres start)\"` starts a throwaway cluster)"
    );
}

/// A fresh PostgreSQL database for one test.
fn postgres_database(dir: &tempfile::TempDir) -> String {
    require_postgres();
    database_url(&dir.path().join("postgres"))
}

/// Records every position it is given in a table whose primary key refuses a second application.
struct Recorder;

impl Projector for Recorder {
    fn name(&self) -> &'static str {
        "test_recorder"
    }
    fn version(&self) -> i64 {
        1
    }
    fn tables(&self) -> &'static [&'static str] {
        &["test_recorded"]
    }
    fn schema(&self) -> &'static [&'static str] {
        &["CREATE TABLE IF NOT EXISTS test_recorded (position INTEGER PRIMARY KEY) STRICT"]
    }
    fn apply<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        event: &'a RecordedEvent,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(async move {
            sqlx::query("INSERT INTO test_recorded (position) VALUES ($1)")
                .bind(event.position)
                .execute(conn)
                .await?;
            Ok(())
        })
    }
}

const APPEND: &str = "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
     VALUES ($1, $2, 1, 'Tested', '1.0', '{}', '{}')";

/// How many appends are queued behind the append lock right now.
async fn waiting_appends(db: &Database) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks
          WHERE locktype = 'advisory' AND NOT granted
            AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_one(db.pool())
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL (AUTOSALON_TEST_DATABASE_URL); .ci/run runs it"]
async fn a_projector_never_moves_past_an_append_that_commits_late() {
    const ROUNDS: usize = 1_000;
    const LATER: usize = 3;
    let dir = temp_dir();
    let db = Database::connect(&postgres_database(&dir)).await.unwrap();
    db.migrate().await.unwrap();
    let upcasters: Upcasters = Arc::new(Vec::new());
    let projections = Projections::new(db.clone(), upcasters, vec![Arc::new(Recorder)]);
    projections.prepare().await.unwrap();
    let mut committed = 0_i64;
    for round in 0..ROUNDS {
        // One append, held open: its event has a position but is not committed.
        let mut held = db.pool().begin().await.unwrap();
        sqlx::query(APPEND)
            .bind("Held")
            .bind(format!("held-{round}"))
            .execute(&mut *held)
            .await
            .unwrap();
        // Later appends from other connections.
        let later: Vec<_> = (0..LATER)
            .map(|k| {
                let pool = db.pool().clone();
                tokio::spawn(async move {
                    sqlx::query(APPEND)
                        .bind("Later")
                        .bind(format!("later-{round}-{k}"))
                        .execute(&pool)
                        .await
                        .unwrap();
                })
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(10);
        while waiting_appends(&db).await < LATER as i64 {
            assert!(
                Instant::now() < deadline,
                "round {round}: the later appends neither queued nor committed"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // While it is held, the projector sees nothing past what was committed before it.
        let position = projections.catch_up("test_recorder").await.unwrap();
        assert_eq!(
            position, committed,
            "round {round}: moved past a held append"
        );
        if round % 2 == 0 {
            held.commit().await.unwrap();
            committed += 1;
        } else {
            held.rollback().await.unwrap();
        }
        for task in later {
            task.await.unwrap();
        }
        committed += LATER as i64;
        let position = projections.catch_up("test_recorder").await.unwrap();
        assert_eq!(position, committed, "round {round}: did not continue");
    }
    // Every committed event was applied exactly once, none skipped: positions 1..=n, each once.
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT position FROM test_recorded ORDER BY position")
            .fetch_all(db.pool())
            .await
            .unwrap();
    let logged: Vec<i64> =
        sqlx::query_scalar("SELECT global_position FROM event_log ORDER BY global_position")
            .fetch_all(db.pool())
            .await
            .unwrap();
    assert_eq!(logged, (1..=committed).collect::<Vec<_>>());
    assert_eq!(applied, logged);
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL (AUTOSALON_TEST_DATABASE_URL); .ci/run runs it"]
async fn of_32_commands_on_one_aggregate_version_exactly_one_wins_and_the_rest_conflict() {
    const ROUNDS: usize = 1_000;
    const RACERS: usize = 32;
    let dir = temp_dir();
    let db = Database::connect(&postgres_database(&dir)).await.unwrap();
    db.migrate().await.unwrap();
    let upcasters: Upcasters = Arc::new(aggregates::upcasters());
    let store = Arc::new(db.store::<Vehicle>(&upcasters));
    let id = uuid::Uuid::new_v4().to_string();
    let relocate = |to: String| {
        vec![VehicleEvent::VehicleRelocated {
            from: "Yard".into(),
            to,
        }]
    };
    let first = store.load_aggregate(&id).await.unwrap();
    store
        .commit(relocate("Bay 0".into()), first, HashMap::new())
        .await
        .unwrap();
    for round in 0..ROUNDS {
        // Every racer decides on the same version of the aggregate…
        let mut contexts = Vec::with_capacity(RACERS);
        for _ in 0..RACERS {
            contexts.push(store.load_aggregate(&id).await.unwrap());
        }
        // …and all commit at once.
        let barrier = Arc::new(Barrier::new(RACERS));
        let racers: Vec<_> = contexts
            .into_iter()
            .enumerate()
            .map(|(k, context)| {
                let (store, barrier) = (store.clone(), barrier.clone());
                let events = relocate(format!("Bay {round}-{k}"));
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.commit(events, context, HashMap::new()).await
                })
            })
            .collect();
        let (mut wins, mut conflicts) = (0, 0);
        for racer in racers {
            match racer.await.unwrap() {
                Ok(_) => wins += 1,
                Err(AggregateError::AggregateConflict) => conflicts += 1,
                Err(other) => panic!("round {round}: an error other than a conflict: {other}"),
            }
        }
        assert_eq!(
            (wins, conflicts),
            (1, RACERS - 1),
            "round {round}: one winner, the rest conflicts"
        );
    }
    let length: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = 'Vehicle'")
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!(
        length,
        ROUNDS as i64 + 1,
        "one event per round, nothing more"
    );
    // What a client is told when its command keeps losing such races.
    let api: queries::ApiError = commands::CommandError::Conflict {
        aggregate: "Vehicle",
    }
    .into();
    assert_eq!(api.code, "CONFLICT");
    db.close().await;
}

/// A server process of the real binary, so it can be killed with SIGKILL.
struct ServerProcess {
    child: Child,
    base: String,
}

impl ServerProcess {
    fn start(database_url: &str, dir: &tempfile::TempDir, name: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_autosalon"))
            .arg("serve")
            .env("AUTOSALON_DATABASE_URL", database_url)
            .env("AUTOSALON_LISTEN", format!("127.0.0.1:{port}"))
            .env("AUTOSALON_SIGNING_KEY_FILE", dir.path().join("signing.key"))
            // One token key for both servers: a token one issues is accepted by the other.
            .env("AUTOSALON_TOKEN_KEY_FILE", dir.path().join("token.key"))
            .env(
                "AUTOSALON_BOOTSTRAP_ADMIN",
                format!(
                    "{}:{}",
                    crate::helpers::ADMIN_EMAIL,
                    crate::helpers::ADMIN_PASSWORD
                ),
            )
            .env("AUTOSALON_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(dir.path().join(format!("{name}.log")))
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
            )
            .spawn()
            .expect("the autosalon binary starts");
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn readyz(&self, client: &reqwest::Client) -> Option<Value> {
        let response = client
            .get(format!("{}/readyz", self.base))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?;
        response.json().await.ok()
    }

    /// Waits until the server answers and, when `runs_all`, until it runs every projector.
    async fn wait(&self, client: &reqwest::Client, runs_all: bool, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            if let Some(body) = self.readyz(client).await {
                let all_here = body["projections"]
                    .as_array()
                    .is_some_and(|p| p.iter().all(|p| p["runsHere"] == true));
                if !runs_all || all_here {
                    return body;
                }
            }
            assert!(
                Instant::now() < deadline,
                "server at {} not ready in time",
                self.base
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn kill(&mut self) {
        // SIGKILL: no shutdown hook runs, the sessions just vanish.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The answer of `base`, or `None` when the request never got one (the server died before or while
/// answering: a failover). A server that answers must answer GraphQL JSON.
async fn post(
    client: &reqwest::Client,
    base: &str,
    query: &str,
    variables: Value,
) -> Option<Value> {
    let response = client
        .post(format!("{base}/graphql"))
        .json(&json!({ "query": query, "variables": variables }))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .ok()?;
    let body = response.text().await.ok()?;
    Some(
        serde_json::from_str(&body).unwrap_or_else(|err| {
            panic!("{base} answered something that is not JSON ({err}): {body}")
        }),
    )
}

/// Stocks `count` vehicles through `servers` (round robin), each with its own idempotency key;
/// a request a server cannot answer is retried, with the same key, on the others. Returns the ids.
/// Only what a failover produces is retried: no answer at all (the server died), or
/// `STORAGE_UNAVAILABLE` (its database restarting). Anything else — `INTERNAL` included — fails the test.
/// With `read_your_writes`, every answer must already show its vehicle, whichever server gave it.
async fn stock_through(
    client: reqwest::Client,
    servers: Arc<Vec<String>>,
    worker: usize,
    count: usize,
    read_your_writes: bool,
) -> Vec<String> {
    let mut ids = Vec::new();
    let (mut unanswered, mut unavailable) = (0, 0);
    for n in 0..count {
        let id = uuid::Uuid::new_v4().to_string();
        let vin = format!("XTA{worker:02}{n:012}");
        let variables = json!({
            "input": vehicle_input(&id, &vin, "Vesta", "1500000.00"),
            "key": format!("stock-{worker}-{n}"),
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut attempt = n + worker;
        loop {
            let base = &servers[attempt % servers.len()];
            attempt += 1;
            match post(&client, base, STOCK_WITH_KEY, variables.clone()).await {
                Some(body) if body.get("errors").is_none() => {
                    if read_your_writes {
                        assert_eq!(
                            body["data"]["stockVehicle"]["vehicle"]["id"], id,
                            "the answer of {base} does not show its own write: {body:#}"
                        );
                    }
                    break;
                }
                Some(body) => {
                    let codes = error_codes(&body);
                    assert!(
                        !codes.is_empty() && codes.iter().all(|c| c == "STORAGE_UNAVAILABLE"),
                        "{base} answered with an error a failover does not explain: {body:#}"
                    );
                    unavailable += 1;
                }
                None => unanswered += 1,
            }
            assert!(Instant::now() < deadline, "vehicle {id} was never stocked");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        ids.push(id);
    }
    eprintln!(
        "worker {worker}: retried {unanswered} unanswered and {unavailable} STORAGE_UNAVAILABLE requests"
    );
    ids
}

/// The log holds one `VehicleStocked` for every acknowledged vehicle, and for nothing else.
async fn assert_stocked_exactly_once(db: &Database, acknowledged: &BTreeSet<String>) {
    let per_vehicle: Vec<(String, i64)> = sqlx::query_as(
        "SELECT aggregate_id, count(*) FROM events
          WHERE aggregate_type = 'Vehicle' AND event_type = 'VehicleStocked'
          GROUP BY aggregate_id",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    let per_vehicle: BTreeMap<String, i64> = per_vehicle.into_iter().collect();
    assert_eq!(
        &per_vehicle.keys().cloned().collect::<BTreeSet<_>>(),
        acknowledged
    );
    assert!(per_vehicle.values().all(|&n| n == 1), "{per_vehicle:?}");
}

const STOCK_WITH_KEY: &str = "mutation Stock($input: StockVehicleInput!, $key: String) {
  stockVehicle(input: $input, idempotencyKey: $key) { position vehicle { id } }
}";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL (AUTOSALON_TEST_DATABASE_URL); .ci/run runs it"]
async fn two_servers_share_one_database_and_one_takes_over_the_projectors_when_the_other_dies() {
    const WORKERS: usize = 4;
    const PER_WORKER: usize = 40;
    let dir = temp_dir();
    let url = postgres_database(&dir);
    let anonymous = reqwest::Client::new();
    let mut first = ServerProcess::start(&url, &dir, "first");
    first.wait(&anonymous, true, Duration::from_secs(60)).await;
    let second = ServerProcess::start(&url, &dir, "second");
    let body = second
        .wait(&anonymous, false, Duration::from_secs(60))
        .await;
    // Signed in on the first server; the second accepts its token (one shared token key file).
    let token = crate::helpers::login(
        &anonymous,
        first.base.trim_start_matches("http://").parse().unwrap(),
        crate::helpers::ADMIN_EMAIL,
        crate::helpers::ADMIN_PASSWORD,
    )
    .await
    .expect("the admin signs in on the first server");
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    let client = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap();
    let me = post(&client, &second.base, "{ me { roles } }", json!({}))
        .await
        .unwrap();
    assert_eq!(me["data"]["me"]["roles"], json!(["ADMIN"]), "{me}");
    assert_eq!(body["backend"], "postgres");
    assert!(
        body["projections"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["runsHere"] == false),
        "the second server must not run projectors the first one holds: {body:#}"
    );

    // Load through both servers; half-way through, the one running the projectors is killed.
    let servers = Arc::new(vec![first.base.clone(), second.base.clone()]);
    let workers: Vec<_> = (0..WORKERS)
        .map(|worker| {
            tokio::spawn(stock_through(
                client.clone(),
                servers.clone(),
                worker,
                PER_WORKER,
                true,
            ))
        })
        .collect();
    let head = |db: Database| async move { eventstore::log::head(db.pool()).await.unwrap() };
    let observer = Database::connect(&url).await.unwrap();
    while head(observer.clone()).await < (WORKERS * PER_WORKER / 2) as i64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        workers.iter().all(|worker| !worker.is_finished()),
        "the kill must come while every client is still sending"
    );
    first.kill();
    let killed_at = Instant::now();
    second.wait(&client, true, Duration::from_secs(30)).await;
    let takeover = killed_at.elapsed();
    eprintln!("the second server runs every projector {takeover:?} after the first was killed");
    assert!(
        takeover < Duration::from_secs(10),
        "the second server took {takeover:?} to take the projectors over"
    );
    let mut stocked = BTreeSet::new();
    for worker in workers {
        stocked.extend(worker.await.unwrap());
    }
    assert_eq!(stocked.len(), WORKERS * PER_WORKER);

    // Every acknowledged vehicle was stocked exactly once, and the survivor's read models caught up.
    assert_stocked_exactly_once(&observer, &stocked).await;
    let head = head(observer.clone()).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body = second.readyz(&client).await.unwrap_or_default();
        if body["projections"]
            .as_array()
            .is_some_and(|p| p.iter().all(|p| p["position"] == head))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "read models never caught up: {body:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut second = second;
    second.terminate();

    // No event was applied twice anywhere: every read model equals its rebuild from position 0.
    let ledger = autosalon::Ledger::open(&url).await.unwrap();
    for projector in projections::all_projectors() {
        let live = crate::rebuild::dump(ledger.db.pool(), projector.tables()).await;
        ledger
            .projections
            .rebuild(projector.name(), |_, _| {})
            .await
            .unwrap();
        let rebuilt = crate::rebuild::dump(ledger.db.pool(), projector.tables()).await;
        assert_eq!(
            live,
            rebuilt,
            "{} differs from its rebuild",
            projector.name()
        );
    }
    ledger.db.close().await;
    observer.close().await;
}

/// A PostgreSQL cluster of its own (restarting the shared one would disturb every other test).
struct OwnCluster {
    admin_url: String,
    pg_ctl: String,
    dir: String,
}

impl OwnCluster {
    fn start() -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/postgres");
        let output = Command::new(script).arg("start").output().unwrap();
        assert!(
            output.status.success(),
            "starting a cluster: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let exports: HashMap<String, String> = String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .filter_map(|line| line.strip_prefix("export "))
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self {
            admin_url: exports["AUTOSALON_TEST_DATABASE_URL"].clone(),
            pg_ctl: exports["AUTOSALON_TEST_PG_CTL"].clone(),
            dir: exports["AUTOSALON_TEST_PG_DIR"].clone(),
        }
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/postgres");
        let _ = Command::new(script).args(["stop", &self.dir]).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL (AUTOSALON_TEST_DATABASE_URL); .ci/run runs it"]
async fn a_crash_restart_of_postgres_under_load_loses_no_acknowledged_command() {
    const WORKERS: usize = 4;
    const PER_WORKER: usize = 50;
    // Same precondition as the other PostgreSQL tests, though this one runs its own cluster.
    require_postgres();
    let cluster = OwnCluster::start();
    // The cluster's own `postgres` database is the application's here.
    let dir = temp_dir();
    let mut settings =
        autosalon::ServeArgs::new(cluster.admin_url.clone(), "127.0.0.1:0".parse().unwrap());
    // Both keys in the test's own directory: a PostgreSQL URL names no file to put them beside, and
    // the default would write them into the working directory (the repository).
    settings.signing_key_file = dir.path().join("signing.key");
    settings.token_key_file = dir.path().join("token.key");
    let app = crate::helpers::spawn_with(settings).await;
    // Signed in as the admin; while PostgreSQL restarts, even checking the session fails, and the
    // server says so as a retryable STORAGE_UNAVAILABLE, never UNAUTHENTICATED or INTERNAL.
    let client = app.client.clone();
    let servers = Arc::new(vec![app.url("")]);
    let workers: Vec<_> = (0..WORKERS)
        .map(|worker| {
            tokio::spawn(stock_through(
                client.clone(),
                servers.clone(),
                worker,
                PER_WORKER,
                // A mutation that commits while PostgreSQL restarts may answer before its read model
                // catches up; what counts here is that nothing acknowledged is lost or doubled.
                false,
            ))
        })
        .collect();
    let observer = Database::connect(&cluster.admin_url).await.unwrap();
    while eventstore::log::head(observer.pool()).await.unwrap() < (WORKERS * PER_WORKER / 3) as i64
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    observer.close().await;
    assert!(
        workers.iter().all(|worker| !worker.is_finished()),
        "the restart must come while every client is still sending"
    );
    // Crash-stop and restart: committed transactions are recovered from the WAL, nothing else.
    let restarted = Command::new(&cluster.pg_ctl)
        .args(["restart", "--mode=immediate", "--wait"])
        .output()
        .unwrap();
    assert!(
        restarted.status.success(),
        "{}",
        String::from_utf8_lossy(&restarted.stderr)
    );
    let mut acknowledged = BTreeSet::new();
    for worker in workers {
        acknowledged.extend(worker.await.unwrap());
    }
    assert_eq!(acknowledged.len(), WORKERS * PER_WORKER);

    // The same server, never restarted, answers; every acknowledged vehicle is there exactly once,
    // in the log and in the read model.
    let observer = Database::connect(&cluster.admin_url).await.unwrap();
    assert_stocked_exactly_once(&observer, &acknowledged).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let listed = app
            .graphql("{ vehicles(first: 1) { totalCount } }", json!({}))
            .await;
        if listed["data"]["vehicles"]["totalCount"] == acknowledged.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the catalog never showed every vehicle: {listed:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    observer.close().await;
    app.stop().await;
    drop(cluster);
}

#[tokio::test]
#[ignore = "needs PostgreSQL (AUTOSALON_TEST_DATABASE_URL); .ci/run runs it"]
async fn a_database_that_could_lose_acknowledged_commits_is_refused_at_start() {
    let dir = temp_dir();
    let url = postgres_database(&dir);
    let db = Database::connect(&url).await.unwrap();
    let name: String = sqlx::query_scalar("SELECT CAST(current_database() AS TEXT)")
        .fetch_one(db.pool())
        .await
        .unwrap();
    sqlx::query(&format!(
        "ALTER DATABASE {name} SET synchronous_commit = off"
    ))
    .execute(db.pool())
    .await
    .unwrap();
    db.close().await;
    let refused = Database::connect(&url).await.unwrap_err();
    assert_eq!(
        refused.to_string(),
        "durability check failed: synchronous_commit is off, expected on (or local, remote_write, remote_apply)"
    );
    // Nor does the server start on it: the operator reads why.
    let app =
        autosalon::Application::build(crate::helpers::serve_args(&dir.path().join("postgres")))
            .await;
    let err = format!("{:#}", app.err().expect("the server refuses to start"));
    assert!(err.contains("synchronous_commit is off"), "{err}");
}

#[tokio::test]
#[ignore = "needs PostgreSQL (AUTOSALON_TEST_DATABASE_URL); .ci/run runs it"]
async fn stored_events_cannot_be_changed_deleted_or_truncated() {
    let dir = temp_dir();
    let db = Database::connect(&postgres_database(&dir)).await.unwrap();
    db.migrate().await.unwrap();
    sqlx::query(APPEND)
        .bind("Vehicle")
        .bind("a")
        .execute(db.pool())
        .await
        .unwrap();
    for sql in [
        "UPDATE events SET event_type = 'Forged'",
        "DELETE FROM events",
        "TRUNCATE events CASCADE",
        "UPDATE event_log SET global_position = 9",
        "DELETE FROM event_log",
        "TRUNCATE event_log",
    ] {
        let err = sqlx::query(sql).execute(db.pool()).await.unwrap_err();
        assert!(err.to_string().contains("immutable"), "{sql}: {err}");
    }
    let log = eventstore::EventLog::new(db.pool().clone(), Arc::new(Vec::new()));
    let events = log.read_after(0, 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, "Tested");
    assert!(events[0].recorded_at <= chrono::Utc::now());
    db.close().await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL (AUTOSALON_TEST_DATABASE_URL); .ci/run runs it"]
async fn an_append_or_a_checkpoint_move_in_one_server_wakes_the_others() {
    let dir = temp_dir();
    let url = postgres_database(&dir);
    let writer = Database::connect(&url).await.unwrap();
    writer.migrate().await.unwrap();
    let other = Database::connect(&url).await.unwrap();
    let mut appended = other.subscribe_appended();
    let mut checkpoints = other.subscribe_checkpoints();
    // The listener signals once when it is subscribed (a notification may have been missed before);
    // from then on only a notification signals.
    let deadline = Instant::now() + Duration::from_secs(10);
    while *appended.borrow() == 0 || *checkpoints.borrow() == 0 {
        assert!(Instant::now() < deadline, "the listener never subscribed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    appended.borrow_and_update();
    checkpoints.borrow_and_update();

    sqlx::query(APPEND)
        .bind("Vehicle")
        .bind("woken")
        .execute(writer.pool())
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), appended.changed())
        .await
        .expect("the other server heard of the append")
        .unwrap();
    assert!(
        !checkpoints.has_changed().unwrap(),
        "an append is not a checkpoint move"
    );

    sqlx::query("INSERT INTO log_checkpoints (consumer, version, position) VALUES ('woken', 1, 1)")
        .execute(writer.pool())
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), checkpoints.changed())
        .await
        .expect("the other server heard of the checkpoint move")
        .unwrap();
    other.close().await;
    writer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL (AUTOSALON_TEST_DATABASE_URL); .ci/run runs it"]
async fn two_servers_stepping_one_projector_at_once_apply_each_event_once_and_record_no_failure() {
    const EVENTS: usize = 600;
    let dir = temp_dir();
    let url = postgres_database(&dir);
    let mut steppers = Vec::new();
    for _ in 0..2 {
        let db = Database::connect(&url).await.unwrap();
        db.migrate().await.unwrap();
        let projections = Arc::new(Projections::new(
            db.clone(),
            Arc::new(Vec::new()),
            vec![Arc::new(Recorder)],
        ));
        projections.prepare().await.unwrap();
        steppers.push((db, projections));
    }
    let writer = steppers[0].0.clone();
    let appends = tokio::spawn(async move {
        for n in 0..EVENTS {
            sqlx::query(APPEND)
                .bind("Raced")
                .bind(format!("raced-{n}"))
                .execute(writer.pool())
                .await
                .unwrap();
        }
    });
    // Both step as fast as they can, as two servers would if both believed they held the lease.
    let racers: Vec<_> = steppers
        .iter()
        .map(|(_, projections)| {
            let projections = projections.clone();
            tokio::spawn(async move {
                let mut errors = Vec::new();
                for _ in 0..400 {
                    if let Err(err) = projections.step("test_recorder").await {
                        errors.push(err.to_string());
                    }
                    tokio::task::yield_now().await;
                }
                errors
            })
        })
        .collect();
    appends.await.unwrap();
    for racer in racers {
        let errors = racer.await.unwrap();
        assert!(errors.is_empty(), "a stepper failed: {errors:?}");
    }
    steppers[0].1.catch_up("test_recorder").await.unwrap();
    let (db, _) = &steppers[0];
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT position FROM test_recorded ORDER BY position")
            .fetch_all(db.pool())
            .await
            .unwrap();
    assert_eq!(applied, (1..=EVENTS as i64).collect::<Vec<_>>());
    let failure: (Option<i64>, Option<String>) = sqlx::query_as(
        "SELECT failed_position, last_error FROM log_checkpoints WHERE consumer = 'test_recorder'",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!(failure, (None, None));
    for (db, _) in steppers {
        db.close().await;
    }
}
