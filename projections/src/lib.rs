//! Durable projections: named, versioned consumers of the global event log that keep read-model tables.
//!
//! Read models are NOT built by cqrs-es queries (those run in-process after commit, so a crash in
//! between loses the update). A projector reads a bounded batch after its checkpoint and applies it to
//! its tables in the same database transaction that moves the checkpoint: each event takes effect
//! exactly once, across crashes. A projector that fails on an event stops there and says so.
//!
//! # Layout
//! - [`runtime`]: the [`Projector`] trait and [`Projections`], which prepares, runs, rebuilds and
//!   reports on projectors, and lets a mutation wait until its write is visible.
//! - [`policies`]: insurance quotes, offers, policies and claims.
//! - [`promotions`]: promotions, their uses, and the orders a promo code priced.
//! - [`reports`]: fact tables for analysts (sales, payments, loans, policies, bookings, inventory).
//! - [`ledger`]: the double-entry journal and its chart of accounts.
//! - [`customer_history`]: every event touching a customer, with a summary per customer.
//! - [`accounts`]: accounts, their roles, and partner insurers' API keys (no credentials).
//! - [`catalog`], [`customers`], [`orders`], [`payments`], [`bookings`], [`loans`]: the read models,
//!   each owning its tables (DDL beside the code that writes them). Their table layouts are a
//!   documented contract for analysts.

pub mod accounts;
pub mod bookings;
pub mod catalog;
pub mod customer_history;
pub mod customers;
pub mod ledger;
pub mod loans;
pub mod orders;
pub mod payments;
pub mod policies;
pub mod promotions;
pub mod reports;
pub mod runtime;

pub use runtime::{
    BATCH_EVENTS, HeldBack, ProjectionError, Projections, Projector, ProjectorStatus, Step,
    all_projectors,
};

/// Timestamps in read models: RFC 3339, UTC, milliseconds, `Z` (sorts as text).
pub fn rfc3339(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn inconsistent(event: &eventstore::RecordedEvent, reason: String) -> ProjectionError {
    ProjectionError::Inconsistent {
        position: event.position,
        event_type: event.event_type.clone(),
        reason,
    }
}

/// An update event must find exactly the row its creation event inserted; anything else means the
/// read model and the log disagree, and the projector must stop rather than guess.
fn expect_one_row(event: &eventstore::RecordedEvent, rows: u64) -> Result<(), ProjectionError> {
    if rows == 1 {
        Ok(())
    } else {
        Err(inconsistent(
            event,
            format!("expected to update 1 row, updated {rows}"),
        ))
    }
}
