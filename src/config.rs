//! Configuration: flags and environment variables, with defaults that work on a fresh machine.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

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
    #[arg(long, env = "AUTOSALON_BOOTSTRAP_ADMIN", hide_env_values = true)]
    pub bootstrap_admin: Option<BootstrapAdmin>,
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
            max_query_complexity: 2_000,
            max_batch: 10,
            read_your_writes_timeout_ms: 5_000,
            signing_key_file: beside("signing.key", "autosalon-signing.key"),
            insurer_timeout_ms: 2_000,
            token_key_file: beside("token.key", "autosalon-token.key"),
            token_issuer: "autosalon-ledger".into(),
            access_token_ttl_secs: 900,
            session_ttl_secs: 43_200,
            login_attempts_per_minute: 10,
            bootstrap_admin: None,
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
}

impl ServeArgs {
    pub fn access_token_ttl(&self) -> Duration {
        Duration::from_secs(self.access_token_ttl_secs)
    }

    pub fn session_ttl(&self) -> Duration {
        Duration::from_secs(self.session_ttl_secs)
    }
}
