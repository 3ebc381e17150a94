//! The event store: cqrs-es over sqlite-es (embedded) or postgres-es (PostgreSQL), plus what those crates do not give us — one global,
//! commit-ordered log over every aggregate, a server-assigned `recorded_at`, command metadata on every
//! event, immutability enforced by the database, and durability pragmas asserted at start-up.
//!
//! # Layout
//! - [`database`]: connecting (pragmas, assertions), migrations, the append notification.
//! - [`repository`]: the backend seam. [`EventRepository`] is what cqrs-es persists through; a new
//!   backend is a new variant there and in [`Database`], nothing above this crate changes.
//! - [`writer`]: the embedded store's appender (group commit).
//! - [`chain`]: the hash chain over the log (tamper evidence) and its verification.
//! - [`log`]: reading the global log ([`RecordedEvent`]) and single aggregate streams.
//! - [`metadata`]: who did what, and why: the metadata every command writes into its events.
//!
//! Architecture invariant: this crate knows no domain. It is generic over cqrs-es aggregates and never
//! names an aggregate, an event type or a read model.

pub mod chain;
pub mod database;
pub mod leases;
pub mod log;
pub mod metadata;
pub mod repository;
pub mod writer;

pub use database::{Backend, Database, Db, DbPool, StoreError, WriteTurn, WriteTx};
pub use leases::Leases;
pub use log::{EventLog, RecordedEvent};
pub use metadata::CommandMetadata;
pub use repository::{Cqrs, EventRepository, Store};

/// Upcasters shared by the command side (loading aggregates) and the log readers (projections,
/// auditors), so both see every stored event in its current schema.
pub type Upcasters = std::sync::Arc<Vec<Box<dyn cqrs_es::persist::EventUpcaster>>>;

#[cfg(test)]
mod tests;
