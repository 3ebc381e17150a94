//! Integration tests: the real application on a fresh SQLite file and port 0, spoken to over HTTP as
//! a client would, plus store-level guarantees that need every crate together.

mod access;
mod bad_input;
mod bookings;
mod catalog;
mod conflicts;
mod crash;
mod customer_history;
mod customer_journey;
mod door;
mod export;
mod helpers;
mod idempotency;
mod input_hygiene;
mod insurance;
mod integration_events;
mod journey;
mod ledger;
mod ledger_props;
mod loans;
mod ops;
mod payments;
mod postgres;
mod projector;
mod promotions;
mod race;
mod read_your_writes;
mod readme;
mod rebuild;
mod reports;
mod rows;
mod scenario;
mod schema;
mod snapshots;
mod storage;
mod transfer;
