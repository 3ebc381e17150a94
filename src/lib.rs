//! Autosalon Ledger: an event-sourced CQRS ledger for a car dealership.
//!
//! This crate is the thin top: configuration, the HTTP/GraphQL wiring and start-up. The domain lives
//! in `aggregates`, the store in `eventstore`, read models in `projections`, the GraphQL read side in
//! `queries` and the write side in `commands` (see ARCHITECTURE.md).
//!
//! # Layout
//! - [`access_log`]: request ids, trace context and one log line per request.
//! - [`config`]: flags and environment variables.
//! - [`app`]: [`app::Ledger`] (database, migrations, projectors) and [`app::Application`] (the server).
//! - [`export`]: `autosalon export`, a read model's tables with the position they reflect.
//! - [`http`]: the routes, request limits and error codes before GraphQL runs.
//! - [`integration`]: the integration events other systems subscribe to, mapped from domain events.
//! - [`logging`]: the log format and filter, checked before anything starts.
//! - [`limits`]: what a GraphQL request may cost, measured before async-graphql expands it.
//! - [`policy`]: the permission matrix, enforced before any resolver runs.
//! - `relay` (feature `amqp`): publishes integration events to RabbitMQ from the committed log.
//! - [`schema`]: the GraphQL schema and its SDL.
//! - [`server`]: the connection loop (header deadline, connection cap, bounded drain).
//! - [`snapshots`]: snapshots for long streams after `import-events` and `rebuild`.
//! - [`transfer`]: `autosalon export-events` / `import-events`, moving a ledger between databases.

pub mod access_log;
pub mod app;
pub mod config;
pub mod export;
pub mod http;
pub mod integration;
pub mod limits;
pub mod logging;
pub mod policy;
#[cfg(feature = "amqp")]
pub mod relay;
pub mod schema;
pub mod server;
pub mod snapshots;
pub mod transfer;

pub use app::{Application, Ledger};
pub use config::ServeArgs;

/// `0.1.0 (commit 1a2b3c4d5e6f)`: the package version and the git commit it was built from
/// (`unknown` when built outside a git checkout; see build.rs).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("AUTOSALON_GIT_COMMIT"),
    ")"
);
