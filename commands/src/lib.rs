//! The command side: validating input, sending commands to aggregates with their metadata, and the
//! GraphQL mutations.
//!
//! # Layout
//! - [`dealership`]: [`Dealership`], one cqrs-es framework per aggregate; idempotency, conflict
//!   retries, and the operations that span aggregates.
//! - [`mutations`]: the GraphQL mutation root.
//! - [`payments`]: [`Payments`], taking and refunding money, recording it on orders, handover.
//! - [`guards`]: constraints across aggregates kept by the database (one vehicle per VIN).
//! - [`clock`], [`context`]: time, ids and the caller, injected from outside.
//! - [`error`]: [`CommandError`] and its client codes.

pub mod clock;
pub mod context;
pub mod dealership;
pub mod error;
pub mod guards;
pub mod mutations;
pub mod payments;
pub mod sender;

pub use context::RequestContext;
pub use dealership::Dealership;
pub use error::CommandError;
pub use mutations::MutationSettings;
pub use payments::Payments;
pub use sender::{Call, Idempotency, Sender, Written};

/// Every mutation: one part per area of the dealership.
#[derive(async_graphql::MergedObject, Default)]
pub struct MutationRoot(mutations::SalesMutation, payments::PaymentsMutation);
