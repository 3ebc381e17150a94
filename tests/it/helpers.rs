//! `spawn_app()` and a small GraphQL client.
//!
//! Every test server starts with a first admin (`AUTOSALON_BOOTSTRAP_ADMIN`, [`ADMIN_EMAIL`]), and
//! the app's client sends that admin's access token with every request, so tests about the
//! dealership act as a signed-in admin. [`TestApp::sign_in_as`] gives tokens for other roles, and
//! [`TestApp::graphql_as`] sends a request with any token or none.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use autosalon::{Application, ServeArgs};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The first admin of every test server.
pub const ADMIN_EMAIL: &str = "admin@autosalon.test";
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";

/// Events every test server's log starts with: the first admin's `UserCreated`.
pub const ADMIN_EVENTS: i64 = 1;

/// A running server on its own database file.
pub struct TestApp {
    pub addr: SocketAddr,
    /// Sends the admin's access token with every request.
    pub client: reqwest::Client,
    /// The server's projectors, for tests that hold one back.
    pub projections: std::sync::Arc<projections::Projections>,
    /// The server's database, for tests that read how many of its appends were contended.
    pub db: eventstore::Database,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

/// A temporary directory holding the test's database; keep it alive for the test's length.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

/// The PostgreSQL cluster the tests run against, when `AUTOSALON_TEST_DATABASE_URL` names one
/// (`postgres://USER@HOST:PORT/DB`, a user allowed to create databases); SQLite otherwise.
pub fn postgres_admin_url() -> Option<String> {
    std::env::var("AUTOSALON_TEST_DATABASE_URL")
        .ok()
        .filter(|url| url.starts_with("postgres"))
}

/// The database a test keeps at `path`: the SQLite file itself, or on PostgreSQL a database of its
/// own named after the path (created on first use), so reopening the same path reopens the same data.
pub fn database_url(path: &Path) -> String {
    match postgres_admin_url() {
        None => format!("sqlite://{}", path.display()),
        Some(admin) => {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            path.hash(&mut hasher);
            let name = format!("autosalon_test_{:016x}", hasher.finish());
            create_database(&admin, &name);
            let (server, _) = admin.rsplit_once('/').expect("a database URL");
            format!("{server}/{name}")
        }
    }
}

/// Creates a database on the test cluster unless it exists. Blocking (a thread with its own runtime),
/// so [`database_url`] stays a plain function.
fn create_database(admin: &str, name: &str) {
    static CREATED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    if CREATED.lock().unwrap().iter().any(|known| known == name) {
        return;
    }
    let (admin, name_owned) = (admin.to_string(), name.to_string());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .expect("the test cluster answers");
            let created = sqlx::query(&format!("CREATE DATABASE {name_owned}"))
                .execute(&mut conn)
                .await;
            if let Err(err) = created {
                let exists = err
                    .as_database_error()
                    .and_then(|db| db.code())
                    .is_some_and(|code| code == "42P04");
                assert!(exists, "creating test database {name_owned}: {err}");
            }
        });
    })
    .join()
    .expect("creating the test database");
    CREATED.lock().unwrap().push(name.to_string());
}

/// Starts the application on a fresh database in `dir`.
pub async fn spawn_app(dir: &tempfile::TempDir) -> TestApp {
    spawn_app_on(dir.path().join("autosalon.db")).await
}

/// Starts the application on the database at `path` (which may already hold data).
pub async fn spawn_app_on(database_path: PathBuf) -> TestApp {
    spawn_with(serve_args(&database_path)).await
}

/// Settings for a server on the database kept at `path`, on port 0, its signing key beside `path`.
/// On SQLite that is where [`ServeArgs::new`] puts it; a PostgreSQL URL names no file, so there it
/// would fall back to one shared key in the working directory, which tests would overwrite under
/// each other: each test keeps its own, as on SQLite.
pub fn serve_args(database_path: &Path) -> ServeArgs {
    let mut settings = ServeArgs::new(database_url(database_path), "127.0.0.1:0".parse().unwrap());
    if postgres_admin_url().is_some() {
        settings.signing_key_file =
            PathBuf::from(format!("{}.signing.key", database_path.display()));
        settings.token_key_file = PathBuf::from(format!("{}.token.key", database_path.display()));
    }
    settings
}

pub async fn spawn_with(mut settings: ServeArgs) -> TestApp {
    with_admin(&mut settings);
    let admin = admin_of(&settings);
    start(
        Application::build(settings)
            .await
            .expect("the application builds"),
        admin,
    )
    .await
}

/// Starts the application with `settings` and these insurers (asked with the settings' timeout).
pub async fn spawn_with_insurers(
    settings: ServeArgs,
    insurers: Vec<std::sync::Arc<dyn commands::insurers::Insurer>>,
) -> TestApp {
    let mut settings = settings;
    with_admin(&mut settings);
    let admin = admin_of(&settings);
    start(
        Application::build_with_insurers(settings, insurers)
            .await
            .expect("the application builds"),
        admin,
    )
    .await
}

/// The first admin, unless the settings name one already.
fn with_admin(settings: &mut ServeArgs) {
    if settings.bootstrap_admin.is_none() {
        settings.bootstrap_admin = Some(autosalon::config::BootstrapAdmin(format!(
            "{ADMIN_EMAIL}:{ADMIN_PASSWORD}"
        )));
    }
    // Tests sign in many times from one address; a test of the limit sets its own.
    if settings.login_attempts_per_minute == 10 {
        settings.login_attempts_per_minute = 1_000;
    }
}

/// The email and password the settings create the first admin with.
fn admin_of(settings: &ServeArgs) -> (String, String) {
    let spec = &settings.bootstrap_admin.as_ref().expect("a first admin").0;
    let (email, password) = spec.split_once(':').expect("email:password");
    (email.to_owned(), password.to_owned())
}

/// Starts the application on a fresh database in `dir`, its dealership commands reading "now" from
/// `clock`.
pub async fn spawn_with_clock(
    dir: &tempfile::TempDir,
    clock: std::sync::Arc<dyn commands::clock::Clock>,
) -> TestApp {
    spawn_with_clock_settings(serve_args(&dir.path().join("autosalon.db")), clock).await
}

/// [`spawn_with_clock`] with these settings.
pub async fn spawn_with_clock_settings(
    mut settings: ServeArgs,
    clock: std::sync::Arc<dyn commands::clock::Clock>,
) -> TestApp {
    with_admin(&mut settings);
    let admin = admin_of(&settings);
    let insurers = commands::insurers::InsurerPanel::partner_tariffs();
    start(
        Application::build_with_clock(settings, insurers, clock)
            .await
            .expect("the application builds"),
        admin,
    )
    .await
}

async fn start(app: Application, (email, password): (String, String)) -> TestApp {
    let addr = app.local_addr();
    let projections = app.projections();
    let db = app.database();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run(async {
        let _ = stopped.await;
    }));
    let anonymous = reqwest::Client::new();
    let admin_token = login(&anonymous, addr, &email, &password)
        .await
        .expect("the test admin signs in");
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {admin_token}").parse().unwrap(),
    );
    TestApp {
        addr,
        client: reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap(),
        projections,
        db,
        stop: Some(stop),
        server: Some(server),
    }
}

/// Signs in over HTTP and returns the access token, or the whole answer when refused.
pub async fn login(
    client: &reqwest::Client,
    addr: SocketAddr,
    email: &str,
    password: &str,
) -> Result<String, Value> {
    let answer: Value = client
        .post(format!("http://{addr}/graphql"))
        .json(&json!({
            "query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }",
            "variables": { "e": email, "p": password }
        }))
        .send()
        .await
        .expect("the server answers")
        .json()
        .await
        .expect("the answer is JSON");
    answer["data"]["login"]["accessToken"]
        .as_str()
        .map(str::to_owned)
        .ok_or(answer)
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// POSTs a GraphQL operation and returns the whole JSON response.
    pub async fn graphql(&self, query: &str, variables: Value) -> Value {
        self.post_json(&json!({ "query": query, "variables": variables }))
            .await
    }

    /// POSTs a GraphQL operation with `token` as bearer (`None`: no credentials at all).
    pub async fn graphql_as(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = reqwest::Client::new()
            .post(self.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request
            .send()
            .await
            .expect("the server answers")
            .json()
            .await
            .expect("the answer is JSON")
    }

    /// Creates an account with `roles` (and, for `CLIENT`, its customer) as the admin, signs it in
    /// and returns its access token.
    pub async fn sign_in_as(
        &self,
        email: &str,
        roles: &[&str],
        customer_id: Option<&str>,
    ) -> String {
        let password = "a long enough password";
        self.ok(
            "mutation($input: CreateAccountInput!) { createAccount(input: $input) { account { id } } }",
            json!({ "input": {
                "email": email, "displayName": email, "roles": roles,
                "customerId": customer_id, "password": password
            }}),
        )
        .await;
        login(&reqwest::Client::new(), self.addr, email, password)
            .await
            .expect("the new account signs in")
    }

    pub async fn post_json(&self, body: &Value) -> Value {
        self.client
            .post(self.url("/graphql"))
            .json(body)
            .send()
            .await
            .expect("the server answers")
            .json()
            .await
            .expect("the answer is JSON")
    }

    /// Runs an operation that must succeed and returns its `data`.
    pub async fn ok(&self, query: &str, variables: Value) -> Value {
        let response = self.graphql(query, variables).await;
        assert!(
            response.get("errors").is_none(),
            "unexpected errors: {response:#}"
        );
        response["data"].clone()
    }

    /// How many events the log holds, read over GraphQL.
    pub async fn event_count(&self) -> i64 {
        self.ok("{ events(first: 1) { totalCount } }", json!({}))
            .await["events"]["totalCount"]
            .as_i64()
            .unwrap()
    }

    /// Stops the server and waits until it has released the database.
    pub async fn stop(mut self) {
        self.shutdown().await;
    }

    async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("the server task")
                .expect("the server stops cleanly");
        }
    }
}

/// The codes of every error in a response, in order.
pub fn error_codes(response: &Value) -> Vec<String> {
    response["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    e["extensions"]["code"]
                        .as_str()
                        .unwrap_or("<none>")
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default()
}

pub const STOCK_VEHICLE: &str = "mutation Stock($input: StockVehicleInput!) {
  stockVehicle(input: $input) { position vehicle { id vin status location listPrice { amount currency } reservedForOrderId } }
}";

pub const REGISTER_CUSTOMER: &str = "mutation Register($input: RegisterCustomerInput!) {
  registerCustomer(input: $input) { position customer { id fullName email phone } }
}";

pub const DRAFT_ORDER: &str = "mutation Draft($input: DraftOrderInput!) {
  draftOrder(input: $input) { position order { id status total { amount currency } } }
}";

pub const CONFIRM_ORDER: &str = "mutation Confirm($id: UUID!) {
  confirmOrder(id: $id) { position order { id status vehicle { status reservedForOrderId } } }
}";

pub const CANCEL_ORDER: &str = "mutation Cancel($id: UUID!, $reason: String!) {
  cancelOrder(id: $id, reason: $reason) { position order { id status cancellationReason vehicle { status } } }
}";

/// A valid vehicle input with the given id and VIN.
pub fn vehicle_input(id: &str, vin: &str, model: &str, amount: &str) -> Value {
    json!({
        "id": id, "vin": vin, "brand": "Lada", "model": model, "year": 2024, "trim": "Comfort",
        "colour": "white", "mileageKm": 0, "condition": "NEW", "location": "Showroom A",
        "listPrice": { "amount": amount, "currency": "RUB" },
        "specifications": [{ "name": "engine", "value": "1.6 petrol" }]
    })
}

pub fn customer_input(id: &str) -> Value {
    json!({
        "id": id, "fullName": "Anna Petrova", "email": "anna@example.ru",
        "phone": "8 (916) 123-45-67", "address": "Moscow, Tverskaya 1"
    })
}

/// Today's business date as the server decides it: the Moscow date of the wall clock.
pub fn business_today() -> chrono::NaiveDate {
    commands::clock::business_date(chrono::Utc::now())
}
