use std::io::IsTerminal;

use anyhow::Context;
use autosalon::config::{DatabaseArgs, ServeArgs};
use autosalon::logging::LogFormat;
use autosalon::{Application, Ledger};
use clap::{Parser, Subcommand};

/// Autosalon Ledger: an event-sourced ledger for a car dealership, served over GraphQL.
#[derive(Parser)]
#[command(version = autosalon::VERSION, about)]
struct Cli {
    /// How log lines are written to standard error. Which lines: the AUTOSALON_LOG filter
    /// (default "info"; a filter that does not parse stops start-up).
    #[arg(
        long,
        global = true,
        env = "AUTOSALON_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the GraphQL server (migrates the database and starts the projectors first).
    Serve(Box<ServeArgs>),
    /// Apply the database migrations and exit.
    Migrate(DatabaseArgs),
    /// Rebuild read models from position 0 of the event log, showing progress.
    Rebuild {
        /// The projector to rebuild; all of them when absent.
        name: Option<String>,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Manage accounts from the server's machine (e.g. the first admin).
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Write every table of one read model, with the global position its rows reflect.
    ///
    /// The rows and the position are read in one transaction. jsonl: a first line
    /// {"projection", "version", "position", "tables"}, then one {"table", "row"} object per row
    /// (NULL as null); to --output FILE, DIR/<projection>.jsonl, or standard output. csv: in the
    /// directory --output (default "."), one <table>.csv per table (header row first, RFC 4180
    /// quoting, an empty field is NULL) and <projection>.position holding the position.
    Export {
        /// The read model (projector) to export, e.g. customer_history or catalog.
        #[arg(long)]
        projection: String,
        #[arg(long, value_enum)]
        format: autosalon::export::ExportFormat,
        /// jsonl: a file or a directory; csv: a directory (created if missing).
        #[arg(long)]
        output: Option<std::path::PathBuf>,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Write the whole event log, exactly as stored, as JSON Lines (to move a ledger to another
    /// database with import-events). Read in one snapshot; a server may keep running.
    ExportEvents {
        /// The file to write; standard output when absent.
        #[arg(long)]
        output: Option<std::path::PathBuf>,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Append an export-events file to a database whose log is empty, every event at its original
    /// position, in one transaction (all or nothing). Read models are built from it by the projectors
    /// at the next `serve` (or `rebuild`).
    ImportEvents {
        /// The file export-events wrote.
        #[arg(long)]
        input: std::path::PathBuf,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Walk the hash chain over the event log (the database's, or an export-events file's) and name
    /// the first position that does not match. Reads only; a server may keep running. Exits 0 with a
    /// one-line summary when the chain holds, 1 when it breaks (docs/audit.md).
    Verify {
        /// An export-events file to verify instead of the database.
        #[arg(long = "from")]
        from: Option<std::path::PathBuf>,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Create an account. The password is read from a prompt (or, when standard input is not a
    /// terminal, its first line): never from an argument, where other users and shell history see it.
    Create {
        #[arg(long)]
        email: String,
        /// A role: admin, sales, finance, insurance, service, auditor, analyst, client (repeatable).
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// The name shown for the account (default: the email).
        #[arg(long)]
        display_name: Option<String>,
        /// The customer a client account belongs to.
        #[arg(long)]
        customer_id: Option<uuid::Uuid>,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

/// The password for a new account: a hidden prompt on a terminal, else the first line of stdin.
fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ").context("reading the password")?;
        let again =
            rpassword::prompt_password("Password again: ").context("reading the password")?;
        anyhow::ensure!(first == again, "the passwords differ");
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        Ok(line.trim_end_matches(['\n', '\r']).to_owned())
    }
}

/// `autosalon verify`: exit 0 and one summary line, or exit 1 naming the first break.
async fn verify(from: Option<std::path::PathBuf>, database: DatabaseArgs) -> anyhow::Result<()> {
    let verified = match &from {
        Some(path) => {
            let file =
                std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
            match autosalon::transfer::verify_file(&mut std::io::BufReader::new(file)) {
                Ok(verified) => verified,
                Err(err) => {
                    eprintln!("the chain does not verify: {err:#}");
                    std::process::exit(1);
                }
            }
        }
        None => {
            let db = eventstore::Database::connect(&database.database_url).await?;
            let verified = eventstore::chain::verify(db.pool()).await;
            db.close().await;
            match verified {
                Ok(verified) => verified,
                Err(eventstore::chain::VerifyError::Break(broken)) => {
                    eprintln!("the chain does not verify: {broken}");
                    std::process::exit(1);
                }
                Err(err) => return Err(err).context("reading the log"),
            }
        }
    };
    println!(
        "chain verified: {} events, head position {}, head hash {}",
        verified.events,
        verified.head.position,
        verified.head.hash_hex()
    );
    Ok(())
}

async fn create_user(command: UsersCommand) -> anyhow::Result<()> {
    let UsersCommand::Create {
        email,
        roles,
        display_name,
        customer_id,
        database,
    } = command;
    let roles = roles
        .iter()
        .map(|name| {
            aggregates::user::Role::parse(name).with_context(|| format!("{name:?} is not a role"))
        })
        .collect::<anyhow::Result<_>>()?;
    let email = aggregates::contact::Email::parse(&email)?;
    let password = read_password()?;
    let ledger = Ledger::open(&database.database_url).await?;
    // The token key is not needed to create an account: an ephemeral one stands in.
    let tokens = commands::accounts::tokens::TokenKeys::from_seed(
        &rand_seed(),
        "autosalon-ledger",
        "autosalon-ledger",
        std::time::Duration::from_secs(1),
    );
    let accounts = commands::Accounts::new(
        ledger.db.clone(),
        ledger.upcasters.clone(),
        std::sync::Arc::new(commands::clock::SystemClock),
        std::sync::Arc::new(tokens),
        None,
        commands::accounts::AccountSettings::default(),
    );
    let display_name = display_name.unwrap_or_else(|| email.as_str().to_owned());
    let written = accounts
        .create(
            &commands::RequestContext::system("cli"),
            commands::accounts::NewAccount {
                email,
                display_name,
                roles,
                customer_id,
                password: commands::accounts::passwords::Password::new(password),
            },
        )
        .await
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    ledger.db.close().await;
    eprintln!(
        "created account {} (position {})",
        written.id, written.position
    );
    Ok(())
}

fn rand_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    for (i, byte) in uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .chain(uuid::Uuid::new_v4().as_bytes())
        .enumerate()
    {
        seed[i] = *byte;
    }
    seed
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Err(err) = autosalon::logging::init(cli.log_format) {
        // Nothing has started yet; the message alone says what to fix (no backtrace).
        eprintln!("autosalon: {err:#}");
        std::process::exit(2);
    }
    match cli.command {
        Command::Serve(mut settings) => {
            tracing::info!(version = autosalon::VERSION, "autosalon starting");
            settings.bootstrap_admin =
                autosalon::config::BootstrapAdmin::from_env().map_err(anyhow::Error::msg)?;
            settings.amqp_url =
                autosalon::config::AmqpUrl::from_env().map_err(anyhow::Error::msg)?;
            let app = Application::build(*settings).await?;
            app.run(shutdown_signal()).await
        }
        Command::Migrate(database) => {
            Ledger::open(&database.database_url).await?;
            eprintln!(
                "migrations applied to {}",
                eventstore::database::redact(&database.database_url)
            );
            Ok(())
        }
        Command::Rebuild { name, database } => {
            let ledger = Ledger::open(&database.database_url).await?;
            let names: Vec<String> = match name {
                Some(name) => vec![name],
                None => ledger
                    .projections
                    .names()
                    .into_iter()
                    .map(str::to_string)
                    .collect(),
            };
            // One pass over the log for all of them: each event is read and decoded once.
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let label = names.join(", ");
            let position = ledger
                .projections
                .rebuild_together(&names, |position, head| {
                    eprintln!("rebuilding: {position}/{head} events")
                })
                .await
                .with_context(|| format!("rebuilding {label}"))?;
            eprintln!("{label}: rebuilt up to position {position}");
            let refreshed = autosalon::snapshots::refresh_long_streams(&ledger.db)
                .await
                .context("writing snapshots for long streams")?;
            eprintln!(
                "snapshots: {} written for {} streams of more than {} events",
                refreshed.written,
                refreshed.long_streams,
                eventstore::repository::SNAPSHOT_EVERY_EVENTS
            );
            Ok(())
        }
        Command::ExportEvents { output, database } => {
            let db = eventstore::Database::connect(&database.database_url).await?;
            let written = match &output {
                Some(path) => {
                    let file = std::fs::File::create(path)
                        .with_context(|| format!("creating {}", path.display()))?;
                    let mut out = std::io::BufWriter::new(file);
                    autosalon::transfer::export_events(db.pool(), &mut out).await?
                }
                None => {
                    let mut out = std::io::stdout().lock();
                    autosalon::transfer::export_events(db.pool(), &mut out).await?
                }
            };
            eprintln!("exported {written} events");
            Ok(())
        }
        Command::ImportEvents { input, database } => {
            let file = std::fs::File::open(&input)
                .with_context(|| format!("opening {}", input.display()))?;
            // Only the store's own migrations: the write-side guards and the read models come at the
            // next start, built from the imported log (a log may predate a guard it would trip).
            let db = eventstore::Database::connect(&database.database_url).await?;
            db.migrate()
                .await
                .context("applying event-store migrations")?;
            let imported =
                autosalon::transfer::import_events(&db, &mut std::io::BufReader::new(file)).await?;
            db.close().await;
            eprintln!(
                "imported {imported} events into {}; read models are built at the next serve",
                eventstore::database::redact(&database.database_url)
            );
            Ok(())
        }
        Command::Verify { from, database } => verify(from, database).await,
        Command::Users { command } => create_user(command).await,
        Command::Schema => {
            print!("{}", autosalon::schema::sdl());
            Ok(())
        }
        Command::Export {
            projection,
            format,
            output,
            database,
        } => {
            // Read only: no migrations, no projector preparation (which could reset a read model
            // a running server is using).
            let db = eventstore::Database::connect(&database.database_url).await?;
            let exported =
                autosalon::export::export(db.pool(), &projection, format, output.as_deref())
                    .await?;
            for (table, rows) in &exported.rows {
                eprintln!("{projection}: {table}: {rows} rows");
            }
            for file in &exported.files {
                eprintln!("wrote {}", file.display());
            }
            eprintln!("{projection}: as of position {}", exported.position);
            Ok(())
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
