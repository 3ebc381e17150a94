//! Start-up: open and migrate the database, prepare the projectors, bind the listener; then serve
//! until a shutdown signal, stopping the projectors cleanly.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use commands::accounts::oidc::{OidcSettings, OidcVerifier};
use commands::accounts::tokens::TokenKeys;
use commands::accounts::{AccountSettings, Accounts};
use commands::clock::{Clock, SystemClock, UuidV7};
use commands::insurance::Insurance;
use commands::insurers::{Insurer, InsurerPanel};
use commands::signing::PolicySigner;
use commands::{Bookings, Dealership, MutationSettings, Payments};
use eventstore::{Database, EventLog, Upcasters};
use projections::Projections;
use queries::ReadModels;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower_http::cors::CorsLayer;

use crate::config::ServeArgs;
use crate::http::{AppState, cors_layer, router};
use crate::server::ConnectionLimits;

/// Everything a subcommand needs from the database: the store, its log readers and the projectors.
pub struct Ledger {
    pub db: Database,
    pub upcasters: Upcasters,
    pub projections: Arc<Projections>,
}

impl Ledger {
    /// Connects (asserting durability), applies migrations and write-side guards, and prepares every
    /// projector (a projector whose version changed is reset to rebuild).
    pub async fn open(database_url: &str) -> anyhow::Result<Self> {
        let db = Database::connect(database_url).await.with_context(|| {
            format!(
                "opening the database {}",
                eventstore::database::redact(database_url)
            )
        })?;
        db.migrate()
            .await
            .context("applying event-store migrations")?;
        Dealership::install_guards(&db)
            .await
            .context("installing write-side guards")?;
        Accounts::install(&db)
            .await
            .context("creating the sign-in session tables")?;
        let upcasters: Upcasters = Arc::new(aggregates::upcasters());
        let projections = Arc::new(Projections::new(
            db.clone(),
            upcasters.clone(),
            projections::all_projectors(),
        ));
        projections
            .prepare()
            .await
            .context("preparing projectors")?;
        Ok(Self {
            db,
            upcasters,
            projections,
        })
    }
}

/// A server ready to run: the listener is bound, so the port is known before `run`.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    cors: CorsLayer,
    connections: ConnectionLimits,
    /// Its receivers are the mutations running on their own tasks (see `AppState::in_flight`).
    in_flight: watch::Sender<()>,
    /// Publishes integration events, when a broker is configured.
    #[cfg(feature = "amqp")]
    relay: Option<Arc<crate::relay::Relay>>,
}

impl Application {
    /// A server quoting with the five insurers' built-in tariff models.
    pub async fn build(settings: ServeArgs) -> anyhow::Result<Self> {
        Self::build_with_insurers(settings, InsurerPanel::partner_tariffs()).await
    }

    /// Like [`Application::build`], with the insurers given (tests inject slow and failing ones),
    /// each asked with the configured `insurer_timeout_ms`.
    pub async fn build_with_insurers(
        settings: ServeArgs,
        insurers: Vec<Arc<dyn Insurer>>,
    ) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, insurers, Arc::new(SystemClock)).await
    }

    /// Like [`Application::build_with_insurers`], with the clock every dealership command reads
    /// "now" from (tests move it forward to let loans fall due, policies expire and booked slots
    /// begin). Accounts keep the system clock: sign-ins and tokens live in real time.
    pub async fn build_with_clock(
        settings: ServeArgs,
        insurers: Vec<Arc<dyn Insurer>>,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        settings.validate().context("checking the settings")?;
        let insurers = InsurerPanel::new(insurers, settings.insurer_timeout());
        let (signer, created) = PolicySigner::load_or_create(&settings.signing_key_file)
            .context("loading the policy signing key")?;
        tracing::info!(
            path = %std::path::absolute(&settings.signing_key_file)
                .unwrap_or_else(|_| settings.signing_key_file.clone())
                .display(),
            created,
            key_id = signer.public().key_id(),
            public_key = %signer.public().base64(),
            "electronic policies are signed with this Ed25519 key"
        );
        let signer = Arc::new(signer);
        let (tokens, created) = TokenKeys::load_or_create(
            &settings.token_key_file,
            &settings.token_issuer,
            &settings.token_issuer,
            settings.access_token_ttl(),
        )
        .context("loading the access-token key")?;
        tracing::info!(
            path = %std::path::absolute(&settings.token_key_file)
                .unwrap_or_else(|_| settings.token_key_file.clone())
                .display(),
            created,
            key_id = tokens.key_id(),
            "access tokens are signed with this Ed25519 key"
        );
        let oidc = oidc_verifier(&settings)?;
        let ledger = Ledger::open(&settings.database.database_url).await?;
        let accounts = Arc::new(Accounts::new(
            ledger.db.clone(),
            ledger.upcasters.clone(),
            Arc::new(SystemClock),
            Arc::new(tokens),
            oidc,
            AccountSettings {
                session_ttl: settings.session_ttl(),
                login_attempts_per_address_per_minute: settings.login_attempts_per_minute,
            },
        ));
        match &settings.bootstrap_admin {
            Some(spec) => match accounts
                .bootstrap_admin(&spec.0)
                .await
                .context("creating the first admin from AUTOSALON_BOOTSTRAP_ADMIN")?
            {
                Some(id) => tracing::info!(account = %id, "created the first admin account"),
                None => tracing::info!(
                    "AUTOSALON_BOOTSTRAP_ADMIN ignored: the ledger already has accounts"
                ),
            },
            None => {
                if !accounts
                    .any_account()
                    .await
                    .map_err(|err| anyhow::anyhow!("{err}"))?
                {
                    tracing::warn!(
                        "no account exists yet: create the first admin with \
                         `autosalon users create --email … --role admin` or AUTOSALON_BOOTSTRAP_ADMIN"
                    );
                }
            }
        }
        let dealership = Arc::new(Dealership::new(
            ledger.db.clone(),
            ledger.upcasters.clone(),
            clock.clone(),
            Arc::new(UuidV7),
        ));
        let insurance = Arc::new(Insurance::new(
            ledger.db.clone(),
            ledger.upcasters.clone(),
            clock.clone(),
            Arc::new(UuidV7),
            insurers,
            signer.clone(),
        ));
        let bookings = Arc::new(Bookings::new(
            ledger.db.clone(),
            ledger.upcasters.clone(),
            clock.clone(),
            Arc::new(UuidV7),
        ));
        let loans = Arc::new(commands::loans::Loans::new(
            ledger.db.clone(),
            ledger.upcasters.clone(),
            clock.clone(),
            Arc::new(UuidV7),
        ));
        let payments = Arc::new(Payments::new(
            ledger.db.clone(),
            ledger.upcasters.clone(),
            clock.clone(),
            Arc::new(UuidV7),
        ));
        let read_models = ReadModels::new(
            ledger.db.pool().clone(),
            EventLog::new(ledger.db.pool().clone(), ledger.upcasters.clone()),
            ledger.projections.clone(),
        );
        let schema = crate::schema::builder()
            .data(read_models)
            .data(dealership)
            .data(insurance)
            .data(signer.public().clone())
            .data(bookings)
            .data(loans)
            .data(payments)
            .data(accounts.clone())
            .data(MutationSettings {
                read_your_writes_timeout: settings.read_your_writes_timeout(),
            })
            .extension(crate::policy::Enforce {
                introspection: settings.introspection,
            })
            .finish();
        #[cfg(feature = "amqp")]
        let relay = match &settings.amqp_url {
            Some(url) => {
                let relay = crate::relay::Relay::prepare(
                    ledger.db.clone(),
                    ledger.upcasters.clone(),
                    url.0.clone(),
                )
                .await
                .context("preparing the integration-event relay")?;
                ledger
                    .projections
                    .add_follower(crate::relay::CONSUMER, relay.status());
                tracing::info!(broker = %crate::relay::redact(&url.0), "integration events go to this broker");
                Some(Arc::new(relay))
            }
            None => None,
        };
        #[cfg(not(feature = "amqp"))]
        if settings.amqp_url.is_some() {
            anyhow::bail!("AUTOSALON_AMQP_URL is set but this build has no `amqp` feature");
        }
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("binding {}", settings.listen))?;
        // No receiver until a mutation subscribes: `closed` then means none is running.
        let (in_flight, _) = watch::channel(());
        Ok(Self {
            listener,
            state: AppState {
                schema,
                db: ledger.db,
                projections: ledger.projections,
                accounts,
                limits: settings.limits(),
                max_body_bytes: settings.max_body_bytes,
                max_batch: settings.max_batch,
                graphiql: settings.graphiql,
                body_read_timeout: settings.body_read_timeout(),
                request_timeout: settings.request_timeout(),
                in_flight: in_flight.clone(),
                parsing: Arc::new(Semaphore::new(
                    std::thread::available_parallelism().map_or(1, |cpus| cpus.get()),
                )),
            },
            cors: cors_layer(settings.cors_origins()?),
            connections: ConnectionLimits {
                header_read_timeout: settings.header_read_timeout(),
                max_connections: settings.max_connections,
                shutdown_deadline: settings.shutdown_deadline(),
            },
            in_flight,
            #[cfg(feature = "amqp")]
            relay,
        })
    }

    /// The server's database (tests read its contention count).
    pub fn database(&self) -> Database {
        self.state.db.clone()
    }

    /// The projectors this server runs (tests hold one back to see what clients see meanwhile).
    pub fn projections(&self) -> Arc<Projections> {
        self.state.projections.clone()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has a local address")
    }

    /// Serves until `shutdown` completes; then, within the shutdown deadline: stops accepting,
    /// lets in-flight requests and background mutations finish, stops the projectors (they were
    /// needed until then: a mutation waits for its read models) and closes the database. Whatever
    /// is still running at the deadline is abandoned, as a crash would: every command is durable
    /// or not written, and a retry with its idempotency key completes it.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop_projectors, stopped) = watch::channel(false);
        #[allow(unused_mut)]
        let mut workers = self.state.projections.spawn(stopped.clone());
        #[cfg(feature = "amqp")]
        if let Some(relay) = &self.relay {
            workers.push(relay.clone().spawn(stopped));
        }
        let db = self.state.db.clone();
        tracing::info!(address = %self.local_addr(), "serving GraphQL at /graphql");
        let router = router(self.state, self.cors);
        let served = crate::server::serve(self.listener, router, self.connections, shutdown).await;
        let deadline = served.signalled_at + self.connections.shutdown_deadline;
        if tokio::time::timeout_at(deadline, self.in_flight.closed())
            .await
            .is_err()
        {
            tracing::warn!(
                running = self.in_flight.receiver_count(),
                "shutdown deadline passed with mutations still running; abandoning them"
            );
        }
        stop_projectors.send_replace(true);
        let finished = tokio::time::timeout_at(deadline, async {
            for worker in workers {
                if let Err(err) = worker.await {
                    tracing::error!(error = %err, "a projector task ended abnormally");
                }
            }
            db.close().await;
        })
        .await;
        if finished.is_err() {
            tracing::warn!("shutdown deadline passed before the projectors stopped; exiting");
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// The external OpenID Connect provider, when one is configured.
fn oidc_verifier(settings: &ServeArgs) -> anyhow::Result<Option<Arc<OidcVerifier>>> {
    let oidc = &settings.oidc;
    let (Some(issuer), Some(audience), Some(jwks_url)) =
        (&oidc.oidc_issuer, &oidc.oidc_audience, &oidc.oidc_jwks_url)
    else {
        return Ok(None);
    };
    let role_map = match &oidc.oidc_role_map {
        Some(text) => OidcSettings::parse_role_map(text)
            .map_err(|err| anyhow::anyhow!("AUTOSALON_OIDC_ROLE_MAP: {err}"))?,
        None => Vec::new(),
    };
    let verifier = OidcVerifier::new(OidcSettings {
        issuer: issuer.clone(),
        audience: audience.clone(),
        jwks_url: jwks_url.clone(),
        roles_claim: oidc.oidc_roles_claim.clone(),
        role_map,
    })
    .map_err(|err| anyhow::anyhow!("the OpenID Connect provider: {err}"))?;
    tracing::info!(issuer = %issuer, "accepting tokens of this OpenID Connect provider");
    Ok(Some(Arc::new(verifier)))
}
