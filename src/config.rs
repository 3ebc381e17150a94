//! Configuration: flags and environment variables, with defaults that work on a fresh machine.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::limits::Limits;
use crate::policy::Introspection;

/// `email:password` of the first admin. `Debug` never shows the password.
#[derive(Clone)]
pub struct BootstrapAdmin(pub String);

impl std::fmt::Debug for BootstrapAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let email = self.0.split_once(':').map_or("?", |(email, _)| email);
        write!(f, "BootstrapAdmin({email}:***)")
    }
}

/// The RabbitMQ URL integration events are published to (`amqp://USER:PASSWORD@HOST:PORT/VHOST`).
/// `Debug` never shows the password.
#[derive(Clone)]
pub struct AmqpUrl(pub String);

impl std::fmt::Debug for AmqpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AmqpUrl({})", eventstore::database::redact(&self.0))
    }
}

impl AmqpUrl {
    /// The environment variable the broker URL is read from.
    pub const ENV: &str = "AUTOSALON_AMQP_URL";

    /// `AUTOSALON_AMQP_URL`, when set and not empty; an error names the variable, never its value.
    pub fn from_env() -> Result<Option<Self>, String> {
        match std::env::var(Self::ENV) {
            Ok(text) if text.trim().is_empty() => Ok(None),
            Ok(text) => Self::parse(text).map(Some),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(format!("{} is not UTF-8", Self::ENV)),
        }
    }

    /// Checks the scheme (`amqp`; `amqps` needs TLS, which this build does not have) and the length.
    pub fn parse(text: String) -> Result<Self, String> {
        if text.len() > 2_048 {
            return Err(format!("{} is longer than 2048 bytes", Self::ENV));
        }
        match url::Url::parse(&text) {
            Ok(url) if url.scheme() == "amqp" && url.host().is_some() => Ok(Self(text)),
            Ok(url) if url.scheme() == "amqps" => Err(format!(
                "{}: amqps (TLS) is not supported by this build; use amqp on a trusted network",
                Self::ENV
            )),
            _ => Err(format!(
                "{} must be amqp://USER:PASSWORD@HOST:PORT/VHOST",
                Self::ENV
            )),
        }
    }
}

impl BootstrapAdmin {
    /// The environment variable the first admin is read from.
    pub const ENV: &str = "AUTOSALON_BOOTSTRAP_ADMIN";

    /// `AUTOSALON_BOOTSTRAP_ADMIN`, when set; an error names the variable, never its value.
    pub fn from_env() -> Result<Option<Self>, String> {
        match std::env::var(Self::ENV) {
            Ok(text) => text
                .parse()
                .map(Some)
                .map_err(|err| format!("{}: {err}", Self::ENV)),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(format!("{} is not valid UTF-8", Self::ENV))
            }
        }
    }
}

impl std::str::FromStr for BootstrapAdmin {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.split_once(':') {
            Some((email, password)) if !email.trim().is_empty() && !password.is_empty() => {
                Ok(Self(text.to_owned()))
            }
            _ => Err("expected email:password".into()),
        }
    }
}

/// The operator's OpenID Connect provider, when staff sign in there.
#[derive(Args, Clone, Debug, Default)]
pub struct OidcArgs {
    /// The provider's issuer (`iss` of its tokens), e.g. https://sso.example.ru/realms/dealer.
    /// Unset: no external provider.
    #[arg(long, env = "AUTOSALON_OIDC_ISSUER", requires_all = ["oidc_audience", "oidc_jwks_url"])]
    pub oidc_issuer: Option<String>,
    /// The audience (`aud`) its tokens must carry for this ledger.
    #[arg(long, env = "AUTOSALON_OIDC_AUDIENCE")]
    pub oidc_audience: Option<String>,
    /// Where the provider publishes its signing keys (its JWKS URL).
    #[arg(long, env = "AUTOSALON_OIDC_JWKS_URL")]
    pub oidc_jwks_url: Option<String>,
    /// The claim holding the caller's roles (a dotted path, e.g. realm_access.roles).
    #[arg(long, env = "AUTOSALON_OIDC_ROLES_CLAIM", default_value = "roles")]
    pub oidc_roles_claim: String,
    /// Provider role to ledger role, `provider=ledger,…`; unset: provider roles are ledger roles.
    #[arg(long, env = "AUTOSALON_OIDC_ROLE_MAP")]
    pub oidc_role_map: Option<String>,
}

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
    /// Highest cost of one request: every field, fragment spread and inline fragment counts 1, a
    /// connection's edges and nodes once per item of the page; a batch shares one budget. Also the
    /// most selections one request may write.
    #[arg(long, env = "AUTOSALON_MAX_QUERY_COMPLEXITY", default_value_t = 5_000)]
    pub max_query_complexity: u64,
    /// Most operations in one batched request.
    #[arg(long, env = "AUTOSALON_MAX_BATCH", default_value_t = 10)]
    pub max_batch: usize,
    /// Most mutation fields one request may run, aliases and batches included (each is a command).
    #[arg(long, env = "AUTOSALON_MAX_MUTATION_FIELDS", default_value_t = 5)]
    pub max_mutation_fields: u64,
    /// Web origins whose pages may call the API from a browser (CORS), comma-separated, e.g.
    /// `https://crm.example.ru,http://localhost:3000`. None by default: browsers then refuse every
    /// cross-origin call.
    #[arg(
        long,
        env = "AUTOSALON_CORS_ALLOWED_ORIGINS",
        value_delimiter = ',',
        num_args = 0..
    )]
    pub cors_allowed_origins: Vec<String>,
    /// How long a client may take to send a request's headers, in milliseconds; then the connection
    /// is closed.
    #[arg(
        long,
        env = "AUTOSALON_HEADER_READ_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub header_read_timeout_ms: u64,
    /// How long a client may take to send a request's whole body, in milliseconds (408 after).
    #[arg(long, env = "AUTOSALON_BODY_READ_TIMEOUT_MS", default_value_t = 10_000)]
    pub body_read_timeout_ms: u64,
    /// How long a GraphQL request may run, in milliseconds (503 `TIMEOUT` after). A query is then
    /// cancelled; a mutation is never cut off halfway: it completes, and a retry with its
    /// idempotency key tells the outcome. Must exceed the read-your-writes timeout.
    #[arg(long, env = "AUTOSALON_REQUEST_TIMEOUT_MS", default_value_t = 30_000)]
    pub request_timeout_ms: u64,
    /// After SIGTERM or Ctrl-C: how long in-flight requests may take to finish, in milliseconds.
    /// New connections are refused at once; when the deadline passes the process exits anyway.
    #[arg(long, env = "AUTOSALON_SHUTDOWN_DEADLINE_MS", default_value_t = 20_000)]
    pub shutdown_deadline_ms: u64,
    /// Most client connections open at once; further ones are closed on accept.
    #[arg(long, env = "AUTOSALON_MAX_CONNECTIONS", default_value_t = 512)]
    pub max_connections: usize,
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
    /// The Ed25519 key that signs access tokens (hex seed, owner-only). Created with mode 0600 if
    /// missing; refused if readable by others. Servers sharing a database share this file.
    #[arg(
        long,
        env = "AUTOSALON_TOKEN_KEY_FILE",
        default_value = "autosalon-token.key"
    )]
    pub token_key_file: PathBuf,
    /// The issuer and audience of access tokens (the same on every server of one ledger).
    #[arg(
        long,
        env = "AUTOSALON_TOKEN_ISSUER",
        default_value = "autosalon-ledger"
    )]
    pub token_issuer: String,
    /// How long an access token is valid, in seconds.
    #[arg(long, env = "AUTOSALON_ACCESS_TOKEN_TTL_SECS", default_value_t = 900)]
    pub access_token_ttl_secs: u64,
    /// How long a sign-in session (and its refresh tokens) lasts at most, in seconds.
    #[arg(long, env = "AUTOSALON_SESSION_TTL_SECS", default_value_t = 43_200)]
    pub session_ttl_secs: u64,
    /// Sign-in attempts one client address may make per minute.
    #[arg(
        long,
        env = "AUTOSALON_LOGIN_ATTEMPTS_PER_MINUTE",
        default_value_t = 10
    )]
    pub login_attempts_per_minute: u32,
    /// `email:password` of a first admin, created at start-up only while the store has no account.
    /// Read from the environment only (`AUTOSALON_BOOTSTRAP_ADMIN`, see
    /// [`BootstrapAdmin::from_env`]), never a command-line argument: arguments show in `ps` and
    /// shell history.
    #[arg(skip)]
    pub bootstrap_admin: Option<BootstrapAdmin>,
    /// Where integration events are published (RabbitMQ). Read from the environment only
    /// (`AUTOSALON_AMQP_URL`, see [`AmqpUrl::from_env`]): it holds a password. None: nothing is
    /// published and nothing waits.
    #[arg(skip)]
    pub amqp_url: Option<AmqpUrl>,
    /// Who may introspect the schema (and so use GraphiQL).
    #[arg(long, env = "AUTOSALON_INTROSPECTION", value_enum, default_value_t = Introspection::Staff)]
    pub introspection: Introspection,
    #[command(flatten)]
    pub oidc: OidcArgs,
}

impl ServeArgs {
    /// Settings for a test or an embedding: everything default but the database and the address.
    /// The signing and token keys go beside the database file (`<db>.signing.key`,
    /// `<db>.token.key`).
    pub fn new(database_url: impl Into<String>, listen: SocketAddr) -> Self {
        let database_url = database_url.into();
        let database_file = database_url
            .strip_prefix("sqlite://")
            .map(|path| path.split('?').next().unwrap_or(path))
            .filter(|path| !path.is_empty() && !path.contains(":memory:"))
            .map(PathBuf::from);
        let beside = |suffix: &str, default: &str| {
            database_file
                .as_ref()
                .map(|path| PathBuf::from(format!("{}.{suffix}", path.display())))
                .unwrap_or_else(|| PathBuf::from(default))
        };
        Self {
            database: DatabaseArgs { database_url },
            listen,
            graphiql: true,
            max_body_bytes: 1_048_576,
            max_query_depth: 16,
            max_query_complexity: 5_000,
            max_batch: 10,
            max_mutation_fields: 5,
            cors_allowed_origins: Vec::new(),
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 10_000,
            request_timeout_ms: 30_000,
            shutdown_deadline_ms: 20_000,
            max_connections: 512,
            read_your_writes_timeout_ms: 5_000,
            signing_key_file: beside("signing.key", "autosalon-signing.key"),
            insurer_timeout_ms: 2_000,
            token_key_file: beside("token.key", "autosalon-token.key"),
            token_issuer: "autosalon-ledger".into(),
            access_token_ttl_secs: 900,
            session_ttl_secs: 43_200,
            login_attempts_per_minute: 10,
            bootstrap_admin: None,
            amqp_url: None,
            introspection: Introspection::Staff,
            oidc: OidcArgs {
                oidc_roles_claim: "roles".into(),
                ..OidcArgs::default()
            },
        }
    }

    pub fn insurer_timeout(&self) -> Duration {
        Duration::from_millis(self.insurer_timeout_ms)
    }

    pub fn read_your_writes_timeout(&self) -> Duration {
        Duration::from_millis(self.read_your_writes_timeout_ms)
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }

    pub fn body_read_timeout(&self) -> Duration {
        Duration::from_millis(self.body_read_timeout_ms)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn shutdown_deadline(&self) -> Duration {
        Duration::from_millis(self.shutdown_deadline_ms)
    }

    /// The GraphQL limits every request is measured against.
    pub fn limits(&self) -> Limits {
        Limits {
            max_depth: self.max_query_depth,
            max_complexity: self.max_query_complexity,
            max_mutation_fields: self.max_mutation_fields,
        }
    }

    /// Refuses settings that would leave the door open or make it useless: a zero or absurd limit
    /// or timeout, a request timeout that would cut off every mutation still waiting for its read
    /// models, or an origin that is not one.
    pub fn validate(&self) -> anyhow::Result<()> {
        let timeouts = [
            ("header read timeout", self.header_read_timeout_ms),
            ("body read timeout", self.body_read_timeout_ms),
            ("request timeout", self.request_timeout_ms),
            ("shutdown deadline", self.shutdown_deadline_ms),
        ];
        for (what, ms) in timeouts {
            anyhow::ensure!(
                (1..=MAX_TIMEOUT_MS).contains(&ms),
                "the {what} must be between 1 and {MAX_TIMEOUT_MS} ms, got {ms}"
            );
        }
        anyhow::ensure!(
            self.request_timeout_ms > self.read_your_writes_timeout_ms,
            "the request timeout ({} ms) must exceed the read-your-writes timeout ({} ms), or \
             every mutation waiting for its read models would time out",
            self.request_timeout_ms,
            self.read_your_writes_timeout_ms
        );
        let counts = [
            ("max body bytes", self.max_body_bytes as u64),
            ("max query depth", self.max_query_depth as u64),
            ("max query complexity", self.max_query_complexity),
            ("max batch", self.max_batch as u64),
            ("max mutation fields", self.max_mutation_fields),
            ("max connections", self.max_connections as u64),
        ];
        for (what, value) in counts {
            anyhow::ensure!(value >= 1, "{what} must be at least 1");
        }
        anyhow::ensure!(
            self.max_connections <= MAX_CONNECTIONS,
            "max connections must be at most {MAX_CONNECTIONS}, got {}",
            self.max_connections
        );
        self.cors_origins()?;
        Ok(())
    }

    /// The CORS allow-list as `Origin` header values (`scheme://host[:port]`). Refuses a wildcard
    /// and anything with a path, query or credentials: an origin is exactly what a browser sends.
    pub fn cors_origins(&self) -> anyhow::Result<Vec<axum::http::HeaderValue>> {
        self.cors_allowed_origins
            .iter()
            .map(|origin| origin.trim())
            .filter(|origin| !origin.is_empty())
            .map(|origin| {
                anyhow::ensure!(
                    origin != "*",
                    "a CORS origin of \"*\" would let every web page call the API; list the origins"
                );
                let url = url::Url::parse(origin)
                    .map_err(|err| anyhow::anyhow!("CORS origin {origin:?}: {err}"))?;
                anyhow::ensure!(
                    matches!(url.scheme(), "http" | "https")
                        && url.host().is_some()
                        && url.path() == "/"
                        && !origin.ends_with('/')
                        && url.query().is_none()
                        && url.fragment().is_none()
                        && url.username().is_empty()
                        && url.password().is_none(),
                    "CORS origin {origin:?} is not an origin: write scheme://host[:port], e.g. \
                     https://crm.example.ru"
                );
                let serialised = url.origin().ascii_serialization();
                axum::http::HeaderValue::from_str(&serialised)
                    .map_err(|err| anyhow::anyhow!("CORS origin {origin:?}: {err}"))
            })
            .collect()
    }
}

impl ServeArgs {
    pub fn access_token_ttl(&self) -> Duration {
        Duration::from_secs(self.access_token_ttl_secs)
    }

    pub fn session_ttl(&self) -> Duration {
        Duration::from_secs(self.session_ttl_secs)
    }
}

/// No timeout is configured above an hour: a typo should not disable one.
const MAX_TIMEOUT_MS: u64 = 3_600_000;
/// Far above what one process's file descriptors allow; a larger number is a typo.
const MAX_CONNECTIONS: usize = 100_000;

#[cfg(test)]
mod tests {
    use super::ServeArgs;

    fn with_origins(origins: &[&str]) -> ServeArgs {
        let mut settings = ServeArgs::new("sqlite://x.db", "127.0.0.1:0".parse().unwrap());
        settings.cors_allowed_origins = origins.iter().map(|o| o.to_string()).collect();
        settings
    }

    #[test]
    fn defaults_are_valid_and_allow_no_origin() {
        let settings = with_origins(&[]);
        settings.validate().unwrap();
        assert!(settings.cors_origins().unwrap().is_empty());
    }

    #[test]
    fn origins_are_normalised_and_anything_else_is_refused() {
        let settings = with_origins(&["https://CRM.example.ru", " http://localhost:3000 "]);
        let origins = settings.cors_origins().unwrap();
        assert_eq!(origins, ["https://crm.example.ru", "http://localhost:3000"]);
        for bad in [
            "*",
            "crm.example.ru",
            "https://crm.example.ru/",
            "https://crm.example.ru/app",
            "https://user:pw@crm.example.ru",
            "ftp://crm.example.ru",
            "https://crm.example.ru?x=1",
        ] {
            assert!(with_origins(&[bad]).validate().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn origins_and_timeouts_are_read_from_the_command_line() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            serve: ServeArgs,
        }
        let cli = Cli::try_parse_from([
            "autosalon",
            "--cors-allowed-origins",
            "https://crm.example.ru,http://localhost:3000",
            "--shutdown-deadline-ms",
            "1500",
            "--max-mutation-fields",
            "3",
        ])
        .unwrap();
        assert_eq!(
            cli.serve.cors_allowed_origins,
            ["https://crm.example.ru", "http://localhost:3000"]
        );
        assert_eq!(cli.serve.shutdown_deadline_ms, 1_500);
        assert_eq!(cli.serve.limits().max_mutation_fields, 3);
        let defaults = Cli::try_parse_from(["autosalon"]).unwrap().serve;
        assert!(defaults.cors_allowed_origins.is_empty());
        assert_eq!(defaults.max_mutation_fields, 5);
        assert_eq!(defaults.max_query_complexity, 5_000);
    }

    #[test]
    fn a_request_timeout_shorter_than_read_your_writes_is_refused() {
        let mut settings = with_origins(&[]);
        settings.request_timeout_ms = settings.read_your_writes_timeout_ms;
        assert!(settings.validate().is_err());
        settings.request_timeout_ms = 0;
        assert!(settings.validate().is_err());
        let mut settings = with_origins(&[]);
        settings.max_mutation_fields = 0;
        assert!(settings.validate().is_err());
    }
}
