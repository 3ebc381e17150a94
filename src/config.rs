//! Configuration: flags and environment variables, with defaults that work on a fresh machine.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

/// Where the data lives. Shared by every subcommand.
#[derive(Args, Clone, Debug)]
pub struct DatabaseArgs {
    /// The event store and read models: `sqlite://PATH` (created if missing) or
    /// `postgres://USER:PASSWORD@HOST:PORT/DATABASE` (an existing database).
    #[arg(
        long,
        env = "AUTOSALON_DATABASE_URL",
        default_value = "sqlite://autosalon.db"
    )]
    pub database_url: String,
}

/// How `serve` runs.
#[derive(Args, Clone, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "AUTOSALON_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Serve GraphiQL at GET /graphql for browsers.
    #[arg(long, env = "AUTOSALON_GRAPHIQL", default_value_t = true, action = clap::ArgAction::Set)]
    pub graphiql: bool,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "AUTOSALON_MAX_BODY_BYTES", default_value_t = 1_048_576)]
    pub max_body_bytes: usize,
    /// Deepest selection nesting accepted.
    #[arg(long, env = "AUTOSALON_MAX_QUERY_DEPTH", default_value_t = 16)]
    pub max_query_depth: usize,
    /// Highest query complexity accepted (one per selected field).
    #[arg(long, env = "AUTOSALON_MAX_QUERY_COMPLEXITY", default_value_t = 2_000)]
    pub max_query_complexity: usize,
    /// Most operations in one batched request.
    #[arg(long, env = "AUTOSALON_MAX_BATCH", default_value_t = 10)]
    pub max_batch: usize,
    /// How long a mutation waits for the read models to show its write, in milliseconds.
    #[arg(
        long,
        env = "AUTOSALON_READ_YOUR_WRITES_TIMEOUT_MS",
        default_value_t = 5_000
    )]
    pub read_your_writes_timeout_ms: u64,
    /// The Ed25519 key that signs electronic policies (hex seed, owner-only permissions). Created
    /// with mode 0600 if missing; refused if readable by others or malformed.
    #[arg(
        long,
        env = "AUTOSALON_SIGNING_KEY_FILE",
        default_value = "autosalon-signing.key"
    )]
    pub signing_key_file: PathBuf,
    /// How long each partner insurer may take to answer a quote request, in milliseconds.
    #[arg(long, env = "AUTOSALON_INSURER_TIMEOUT_MS", default_value_t = 2_000)]
    pub insurer_timeout_ms: u64,
}

impl ServeArgs {
    /// Settings for a test or an embedding: everything default but the database and the address.
    /// The signing key goes beside the database file (`<db>.signing.key`).
    pub fn new(database_url: impl Into<String>, listen: SocketAddr) -> Self {
        let database_url = database_url.into();
        let signing_key_file = database_url
            .strip_prefix("sqlite://")
            .map(|path| path.split('?').next().unwrap_or(path))
            .filter(|path| !path.is_empty() && !path.contains(":memory:"))
            .map(|path| PathBuf::from(format!("{path}.signing.key")))
            .unwrap_or_else(|| PathBuf::from("autosalon-signing.key"));
        Self {
            database: DatabaseArgs { database_url },
            listen,
            graphiql: true,
            max_body_bytes: 1_048_576,
            max_query_depth: 16,
            max_query_complexity: 2_000,
            max_batch: 10,
            read_your_writes_timeout_ms: 5_000,
            signing_key_file,
            insurer_timeout_ms: 2_000,
        }
    }

    pub fn insurer_timeout(&self) -> Duration {
        Duration::from_millis(self.insurer_timeout_ms)
    }

    pub fn read_your_writes_timeout(&self) -> Duration {
        Duration::from_millis(self.read_your_writes_timeout_ms)
    }
}
