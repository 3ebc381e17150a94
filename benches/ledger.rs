//! The ledger's benchmark: every figure of the write path and the read side, each beside a ceiling
//! measured in the same run (a ratio, because this machine's fsync speed changes from day to day)
//! and the target it is held to.
//!
//! `cargo bench --bench ledger` measures the embedded SQLite store at full size; with
//! `AUTOSALON_BENCH_DATABASE_URL=postgres://USER@HOST:PORT/DATABASE` (an empty database) it measures
//! PostgreSQL as well. Run without `--bench` (as `cargo test` runs it) it measures a tiny size, so
//! the test suite keeps it working; `AUTOSALON_BENCH_SIZE=tiny|full` (or `--size tiny|full`)
//! chooses either way. `AUTOSALON_BENCH_ONLY=rebuild,load,commands,http,catalog` (any of them)
//! measures only those sections (the ceilings and the import always run), and
//! `AUTOSALON_BENCH_RUN_MS` sets how long each timed run lasts at most, so one section can be run
//! long under a profiler. Under `cargo test` with `AUTOSALON_TEST_DATABASE_URL` (the PostgreSQL test
//! cluster) it also runs on a database of its own there.
//!
//! What it measures, per backend:
//! - ceilings, with the application's pool and durability settings: raw one-row commits (1 and 16
//!   writers), raw 100-row commits, the log read in order and decoded with serde as a projector
//!   reads it; on PostgreSQL, autocommit single-row INSERTs from 4 clients (pgbench-like);
//! - a generated log (whole-dealership scenarios copied with fresh ids, a large stock of cars and
//!   three long streams) brought in with `import_events`, and every projector rebuilt over it;
//! - the time to load an aggregate of 10 / 1k / 10k events, after the import and after a command;
//! - commands through the real command services with 1 / 4 / 16 writers, on distinct aggregates
//!   and on one hot aggregate, with and without the wait for read models a mutation does;
//! - the same mutation over GraphQL/HTTP (the application in this process, 127.0.0.1, port 0), one
//!   client and 16;
//! - the catalog (`vehicles(first: 10)` with filters, `vehicleCounts`) idle and while cars are
//!   stocked.
//!
//! It prints a table and writes JSON (to `AUTOSALON_BENCH_JSON`, by default
//! `target/bench-ledger/ledger-<size>.json`; the path is printed). The staff account it signs in
//! with is created at start with a random password, as the tests do.

#[path = "../tests/it/helpers.rs"]
#[allow(dead_code)]
mod helpers;
#[path = "../tests/it/rows.rs"]
#[allow(dead_code)]
mod rows;
#[path = "../tests/it/scenario/mod.rs"]
#[allow(dead_code)]
mod scenario;

#[path = "ledger/ceilings.rs"]
mod ceilings;
#[path = "ledger/log.rs"]
mod log;
#[path = "ledger/report.rs"]
mod report;
#[path = "ledger/writers.rs"]
mod writers;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use aggregates::vehicle::Vehicle;
use autosalon::{Application, ServeArgs};
use commands::Dealership;
use commands::clock::{SystemClock, UuidV7};
use cqrs_es::EventStore;
use eventstore::{Backend, Database, Upcasters};

use report::{BackendReport, Figure, Latency, Target};
use writers::{Services, Workload};

/// How much one run measures.
#[derive(Clone, Debug)]
pub struct Size {
    pub name: &'static str,
    /// Stories of the scenario played once and copied.
    pub seed_stories: usize,
    /// Scenario seeds tried until one reaches every aggregate of the mix (`log::MIX`).
    pub seed_tries: u64,
    /// Scenario events in the generated log (copies of the played scenario).
    pub log_events: i64,
    /// Cars in the catalog.
    pub catalog_vehicles: usize,
    /// Lengths of the long streams whose loading is timed.
    pub stream_lengths: [usize; 3],
    /// Upper bound of each timed run (commits, commands, requests).
    pub run_time: Duration,
    /// Upper bound of raw commits per ceiling run.
    pub raw_commits: usize,
    /// Upper bound of commands per run.
    pub commands_max: usize,
    /// Loads of each long aggregate.
    pub loads: usize,
    /// Catalog requests of each kind.
    pub catalog_queries: usize,
    /// The sections measured (`AUTOSALON_BENCH_ONLY`, comma-separated; all by default).
    pub only: Option<Vec<String>>,
}

impl Size {
    fn full() -> Self {
        Self {
            name: "full",
            seed_stories: 4,
            seed_tries: 12,
            log_events: 250_000,
            catalog_vehicles: 100_000,
            stream_lengths: [10, 1_000, 10_000],
            run_time: Duration::from_secs(4),
            raw_commits: 20_000,
            commands_max: 50_000,
            loads: 50,
            catalog_queries: 100,
            only: None,
        }
    }

    fn tiny() -> Self {
        Self {
            name: "tiny",
            seed_stories: 1,
            seed_tries: 1,
            log_events: 500,
            catalog_vehicles: 200,
            stream_lengths: [10, 100, 1_000],
            run_time: Duration::from_millis(50),
            raw_commits: 30,
            commands_max: 30,
            loads: 3,
            catalog_queries: 7,
            only: None,
        }
    }

    /// The same with `factor` times fewer raw commits.
    pub fn fewer(&self, factor: usize) -> Self {
        Self {
            raw_commits: (self.raw_commits / factor).max(1),
            ..self.clone()
        }
    }

    /// Whether `section` is measured. The ceilings and the import always are: every ratio needs
    /// the first, every later section the data of the second.
    pub fn on(&self, section: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|only| only.iter().any(|s| s == section))
    }

    fn chosen() -> Self {
        let mut size = Self::named();
        if let Ok(only) = std::env::var("AUTOSALON_BENCH_ONLY") {
            let only: Vec<String> = only.split(',').map(|s| s.trim().to_string()).collect();
            for section in &only {
                assert!(
                    SECTIONS.contains(&section.as_str()),
                    "unknown section {section:?} in AUTOSALON_BENCH_ONLY: one of {SECTIONS:?}"
                );
            }
            size.only = Some(only);
        }
        if let Some(ms) = std::env::var("AUTOSALON_BENCH_RUN_MS")
            .ok()
            .and_then(|ms| ms.parse().ok())
        {
            size.run_time = Duration::from_millis(ms);
        }
        size
    }

    fn named() -> Self {
        let args: Vec<String> = std::env::args().collect();
        let flag = args
            .iter()
            .position(|a| a == "--size")
            .and_then(|i| args.get(i + 1).cloned())
            .or_else(|| {
                args.iter()
                    .find_map(|a| a.strip_prefix("--size=").map(str::to_string))
            });
        let named = flag.or_else(|| std::env::var("AUTOSALON_BENCH_SIZE").ok());
        match named.as_deref() {
            Some("full") => Self::full(),
            Some("tiny") => Self::tiny(),
            Some(other) => panic!("unknown bench size {other:?}: tiny or full"),
            // `cargo bench` passes `--bench`; `cargo test` does not.
            None if args.iter().any(|a| a == "--bench") => Self::full(),
            None => Self::tiny(),
        }
    }
}

/// The sections `AUTOSALON_BENCH_ONLY` may name.
const SECTIONS: [&str; 5] = ["rebuild", "load", "commands", "http", "catalog"];

fn ms(latency: &Latency) -> f64 {
    latency.p50_ms
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let size = Size::chosen();
    let started_at = chrono::Utc::now();
    let began = Instant::now();
    let machine = report::Machine::this();
    println!(
        "ledger bench, size {}: {} CPUs ({}), kernel {}, load average {}",
        size.name, machine.cpus, machine.cpu_model, machine.kernel, machine.load_average
    );

    let seed = log::play_seed(size.seed_stories, size.seed_tries).await;
    let generated = log::generate(&seed, &size);
    println!(
        "generated log: {} events ({} of scenarios: {} played and copied), {} cars, streams of {:?} events ({:.1} s so far)",
        generated.events,
        generated.scenario_events,
        seed.len(),
        generated.vehicles,
        size.stream_lengths,
        began.elapsed().as_secs_f64()
    );

    let mut mix = std::collections::BTreeMap::<String, usize>::new();
    for event in &seed {
        *mix.entry(event["aggregate_type"].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
    }
    println!("played scenario, events by aggregate: {mix:?}");
    let missing: Vec<_> = log::MIX.iter().filter(|a| !mix.contains_key(**a)).collect();
    if !missing.is_empty() {
        // Only a tiny run may settle for less; a full one must measure the whole mix.
        assert!(
            size.name == "tiny",
            "no scenario seed tried reached {missing:?}"
        );
        println!("(the played scenario has no {missing:?} events: a tiny run goes on without)");
    }

    let work = tempfile::tempdir().expect("a temporary directory");
    let mut urls = vec![format!(
        "sqlite://{}",
        work.path().join("bench.db").display()
    )];
    if let Ok(url) = std::env::var("AUTOSALON_BENCH_DATABASE_URL") {
        assert!(
            url.starts_with("postgres"),
            "AUTOSALON_BENCH_DATABASE_URL names a PostgreSQL database"
        );
        urls.push(url);
    } else if helpers::postgres_admin_url().is_some() {
        urls.push(helpers::database_url(&work.path().join("bench-pg")));
    }

    let mut backends = Vec::new();
    for (n, url) in urls.iter().enumerate() {
        let dir = work.path().join(format!("backend-{n}"));
        std::fs::create_dir_all(&dir).expect("a directory");
        backends.push(run_backend(url, &dir, &generated, &size).await);
    }

    println!();
    report::print_header();
    for backend in &backends {
        backend.print();
    }
    let run = report::RunReport {
        size: size.name.into(),
        started_at: started_at.to_rfc3339(),
        machine,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        backends,
    };
    let path = std::env::var_os("AUTOSALON_BENCH_JSON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            target_dir()
                .join("bench-ledger")
                .join(format!("ledger-{}.json", size.name))
        });
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("the JSON's directory");
    }
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&run).expect("the report serialises"),
    )
    .expect("writes the JSON");
    let markdown = path.with_extension("md");
    std::fs::write(&markdown, run.markdown()).expect("writes the Markdown table");
    println!(
        "\nwrote {} and {} ({:.1} s in all)",
        markdown.display(),
        path.display(),
        began.elapsed().as_secs_f64()
    );
}

async fn run_backend(
    url: &str,
    dir: &Path,
    generated: &log::Generated,
    size: &Size,
) -> BackendReport {
    let db = Database::connect(url).await.expect("the database opens");
    db.migrate().await.expect("migrations apply");
    let backend = db.backend();
    let mut report = BackendReport {
        backend: backend.name(),
        figures: Vec::new(),
    };
    println!("\n== {} ==", backend.name());
    report::print_header();
    let upcasters: Upcasters = Arc::new(aggregates::upcasters());

    // Ceilings.
    let ceilings = ceilings::measure(&db, size).await;
    let one_row = report.push(ceilings.one_row.clone());
    let one_row_latency = report.push(Figure::new(
        "ceiling",
        "raw one-row commit latency (p50), 1 writer",
        ms(ceilings.one_row.latency.as_ref().expect("a latency")),
        "ms",
    ));
    report.push(ceilings.one_row_16.clone().against(&one_row));
    let hundred = report.push(ceilings.hundred_rows.clone().against(&one_row));
    let insert_4 = ceilings.insert_4_clients.map(|f| report.push(f));

    // The generated log, imported as `autosalon import-events` does.
    let at = Instant::now();
    let file = std::fs::File::open(generated.file.path()).expect("the generated log");
    let imported = autosalon::transfer::import_events(&db, &mut std::io::BufReader::new(file))
        .await
        .expect("the generated log imports");
    assert_eq!(imported, generated.events);
    report.push(
        Figure::new(
            "import",
            format!("import-events, {imported} events"),
            imported as f64 / at.elapsed().as_secs_f64(),
            "events/s",
        )
        .against(&hundred),
    );
    let read = report.push(ceilings::read_and_decode(&db, &upcasters).await);

    // Every projector rebuilt over the log.
    let ledger = autosalon::Ledger::open(url)
        .await
        .expect("the ledger opens");
    let mut total = Duration::ZERO;
    if !size.on("rebuild") {
        ledger
            .projections
            .catch_up_all()
            .await
            .expect("the projectors catch up");
    }
    for name in ledger
        .projections
        .names()
        .into_iter()
        .filter(|_| size.on("rebuild"))
    {
        let at = Instant::now();
        let position = ledger
            .projections
            .rebuild(name, |_, _| {})
            .await
            .unwrap_or_else(|err| panic!("rebuilding {name}: {err}"));
        let took = at.elapsed();
        assert_eq!(position, imported, "{name} reached the head");
        total += took;
        report.push(
            Figure::new(
                "rebuild",
                format!("rebuild {name}"),
                imported as f64 / took.as_secs_f64(),
                "events/s",
            )
            .against(&read),
        );
    }
    if size.on("rebuild") {
        report.push(
            Figure::new(
                "rebuild",
                format!(
                    "rebuild all {} projectors",
                    ledger.projections.names().len()
                ),
                imported as f64 / total.as_secs_f64(),
                "events/s",
            )
            .against(&read)
            .target(Target::RatioAndFloor {
                ratio: 0.25,
                floor: 100_000.0,
            }),
        );
    }

    // Long aggregates, loaded as a command loads them.
    let store = ledger.db.store::<Vehicle>(&upcasters);
    if size.on("load") {
        load_streams(
            &mut report,
            &store,
            &ledger.db,
            &upcasters,
            generated,
            size,
            "after import and rebuild",
            true,
        )
        .await;
    }
    // A sales manager's account (registers customers, stocks cars) with a password made up now,
    // created as `autosalon users create` does.
    let password = format!("bench-{}", uuid::Uuid::new_v4());
    create_account(&ledger, BENCH_EMAIL, &password).await;
    ledger.db.close().await;

    // The application, in this process.
    let mut settings = ServeArgs::new(url.to_string(), "127.0.0.1:0".parse().unwrap());
    settings.signing_key_file = dir.join("signing.key");
    settings.token_key_file = dir.join("token.key");
    let read_your_writes_timeout = settings.read_your_writes_timeout();
    let app = Application::build(settings)
        .await
        .expect("the application builds");
    let addr = app.local_addr();
    let services = Services {
        dealership: Arc::new(Dealership::new(
            app.database(),
            upcasters.clone(),
            Arc::new(SystemClock),
            Arc::new(UuidV7),
        )),
        projections: app.projections(),
        db: app.database(),
        read_your_writes_timeout,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run(async {
        let _ = stopped.await;
    }));
    let token = helpers::login(&reqwest::Client::new(), addr, BENCH_EMAIL, &password)
        .await
        .expect("the bench's account signs in");

    // One command on each long aggregate, then its load again.
    for (_, id) in &generated.streams {
        services
            .dealership
            .relocate_vehicle(
                &commands::RequestContext::system("bench"),
                *id,
                "Showroom B".into(),
                None,
            )
            .await
            .expect("relocates");
    }
    let store = services.db.store::<Vehicle>(&upcasters);
    if size.on("load") {
        load_streams(
            &mut report,
            &store,
            &services.db,
            &upcasters,
            generated,
            size,
            "after a command",
            false,
        )
        .await;
    }

    // Commands in-process.
    let hot = generated.streams[0].1;
    for read_your_writes in [true, false].into_iter().filter(|_| size.on("commands")) {
        for (workload, label) in [
            (Workload::Distinct, "registerCustomer, distinct customers"),
            (Workload::Hot(hot), "relocateVehicle, one hot car"),
        ] {
            for writers in [1usize, 4, 16] {
                let run =
                    writers::run_commands(&services, writers, workload, read_your_writes, size)
                        .await;
                let name = format!(
                    "{label}, {writers:>2} writers, {}",
                    if read_your_writes {
                        "read-your-writes"
                    } else {
                        "no wait"
                    }
                );
                let mut figure =
                    Figure::new("commands", name, run.per_second, "cmds/s").latency(run.latency);
                if matches!(workload, Workload::Hot(_)) {
                    figure = figure.conflicts(run.conflict_rate, run.failed);
                }
                let is_target = writers == 16 && matches!(workload, Workload::Distinct);
                figure = match (&insert_4, backend) {
                    (Some(insert_4), Backend::Postgres) => {
                        let f = figure.against(insert_4);
                        if is_target {
                            f.target(Target::RatioAtLeast { ratio: 1.0 })
                        } else {
                            f
                        }
                    }
                    _ => {
                        let f = figure.against(&one_row);
                        if is_target && read_your_writes {
                            f.target(Target::RatioAtLeast { ratio: 2.0 })
                        } else {
                            f
                        }
                    }
                };
                if run.lagging > 0 {
                    println!(
                        "  ({} commands' read models had not caught up within {:?})",
                        run.lagging, read_your_writes_timeout
                    );
                }
                report.push(figure);
            }
        }
    }

    // Over HTTP.
    let typename = writers::typename(addr, &token, size.catalog_queries).await;
    let typename = report.push(
        Figure::new(
            "http",
            "{ __typename } over HTTP (p50)",
            typename.p50_ms,
            "ms",
        )
        .latency(typename),
    );
    if size.on("http") {
        let (_, latency) = writers::http_mutations(addr, &token, 1, size).await;
        report.push(
            Figure::new(
                "http",
                "registerCustomer, 1 client (p50)",
                latency.p50_ms,
                "ms",
            )
            .latency(latency)
            .against(&one_row_latency)
            .target(Target::RatioAtMost { ratio: 5.0 }),
        );
        let (rate, latency) = writers::http_mutations(addr, &token, 16, size).await;
        report.push(
            Figure::new("http", "registerCustomer, 16 clients", rate, "cmds/s")
                .latency(latency)
                .against(&one_row)
                .target(Target::RatioAndP99 {
                    ratio: 1.0,
                    ms: 25.0,
                }),
        );
    }

    // The catalog, idle and while cars are stocked.
    for under_writes in [false, true].into_iter().filter(|_| size.on("catalog")) {
        let background = under_writes.then(|| writers::background_stocking(&services, 4));
        let (pages, counts) =
            writers::catalog(addr, &token, &generated.sample_model, size.catalog_queries).await;
        let mut stocked = 0;
        if let Some((flag, handles)) = background {
            flag.store(true, Ordering::Relaxed);
            for handle in handles {
                stocked += handle.await.expect("a stocking writer");
            }
        }
        let when = if under_writes {
            format!("under 4 stocking writers ({stocked} cars)")
        } else {
            "idle".to_string()
        };
        for (name, latency) in [
            ("vehicles(first: 10), filter mix", pages),
            ("vehicleCounts", counts),
        ] {
            report.push(
                Figure::new(
                    "catalog",
                    format!("{name}, {} cars, {when}", generated.vehicles),
                    latency.p50_ms,
                    "ms",
                )
                .latency(latency)
                .against(&typename)
                .target(Target::P99AtMost { ms: 5.0 }),
            );
        }
    }

    let _ = stop.send(());
    server
        .await
        .expect("the server task")
        .expect("the server stops");
    db.close().await;
    report
}

/// Loads each long aggregate as a command loads it (through the store, its snapshot if any).
#[allow(clippy::too_many_arguments)]
async fn load_streams(
    report: &mut BackendReport,
    store: &eventstore::Store<Vehicle>,
    db: &Database,
    upcasters: &Upcasters,
    generated: &log::Generated,
    size: &Size,
    when: &str,
    with_ceiling: bool,
) {
    for (length, id) in &generated.streams {
        let id = id.to_string();
        let snapshot = has_snapshot(db, &id).await;
        let mut samples = Vec::with_capacity(size.loads);
        for _ in 0..size.loads {
            let at = Instant::now();
            store.load_aggregate(&id).await.expect("loads");
            samples.push(at.elapsed());
        }
        let latency = Latency::of(samples);
        let mut figure = Figure::new(
            "load",
            format!(
                "load {length}-event aggregate {when} (snapshot: {})",
                if snapshot { "yes" } else { "no" }
            ),
            latency.p50_ms,
            "ms",
        )
        .latency(latency);
        if with_ceiling {
            let raw = ceilings::read_stream(db, upcasters, "Vehicle", &id, size.loads).await;
            let ceiling = report.push(Figure::new(
                "ceiling",
                format!("raw read + decode of {length} events (p50)"),
                raw.p50_ms,
                "ms",
            ));
            figure = figure.against(&ceiling);
        }
        if *length >= 10_000 {
            figure = figure.target(Target::AtMostMs { ms: 2.0 });
        }
        report.push(figure);
    }
}

const BENCH_EMAIL: &str = "bench-sales@autosalon.test";

async fn create_account(ledger: &autosalon::Ledger, email: &str, password: &str) {
    let mut seed = [0u8; 32];
    seed[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    seed[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    // Tokens are issued by the application's own key; this one only stands in to create the account.
    let tokens = commands::accounts::tokens::TokenKeys::from_seed(
        &seed,
        "autosalon-ledger",
        "autosalon-ledger",
        Duration::from_secs(1),
    );
    let accounts = commands::Accounts::new(
        ledger.db.clone(),
        ledger.upcasters.clone(),
        Arc::new(SystemClock),
        Arc::new(tokens),
        None,
        commands::accounts::AccountSettings::default(),
    );
    accounts
        .create(
            &commands::RequestContext::system("bench"),
            commands::accounts::NewAccount {
                email: aggregates::contact::Email::parse(email).expect("an email"),
                display_name: "Bench sales manager".into(),
                roles: std::collections::BTreeSet::from([aggregates::user::Role::Sales]),
                customer_id: None,
                password: commands::accounts::passwords::Password::new(password.to_string()),
            },
        )
        .await
        .map_err(|err| err.to_string())
        .expect("the bench's account is created");
}

async fn has_snapshot(db: &Database, id: &str) -> bool {
    let count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM snapshots WHERE aggregate_type = 'Vehicle' AND aggregate_id = $1",
    )
    .bind(id)
    .fetch_one(db.pool())
    .await
    .expect("reads the snapshots");
    count > 0
}
