//! The command side: validating input, sending commands to aggregates with their metadata, and the
//! GraphQL mutations.
//!
//! # Layout
//! - [`dealership`]: [`Dealership`], one cqrs-es framework per aggregate; idempotency, conflict
//!   retries, and the operations that span aggregates.
//! - [`mutations`]: the GraphQL mutation root.
//! - [`insurance`]: [`insurance::Insurance`] (quotes, signed policies, claims) and its mutations;
//!   [`insurers`]: the partner insurers behind one trait; [`signing`]: the Ed25519 policy key.
//! - [`bookings`]: [`Bookings`], the workshop's commands across bookings, mechanics' days and
//!   vehicles, and their mutations.
//! - [`loans`]: [`loans::Loans`], car financing from application to payoff, and its mutations.
//! - [`payments`]: [`Payments`], taking and refunding money, recording it on orders, handover.
//! - [`promotions`]: the promotion and promo-code mutations (their commands are
//!   [`Dealership`]'s, in `dealership::promotions`: a code spans the promotion and the order).
//! - [`accounts`]: [`Accounts`]: accounts and partner keys (events), sign-in, sessions, tokens,
//!   and the verified identity of a request.
//! - [`key_file`]: secret key files (owner-only), shared by the policy and token keys.
//! - [`guards`]: constraints across aggregates kept by the database (one vehicle per VIN).
//! - [`read_your_writes`]: the `extensions.readYourWrites` report of whether a mutation's answer
//!   shows its own write.
//! - [`clock`], [`context`]: time, ids and the caller, injected from outside.
//! - [`error`]: [`CommandError`] and its client codes.

pub mod accounts;
pub mod bookings;
pub mod clock;
pub mod context;
pub mod dealership;
pub mod error;
pub mod guards;
pub mod insurance;
pub mod insurers;
pub mod key_file;
pub mod loans;
pub mod mutations;
pub mod payments;
pub mod promotions;
pub mod read_your_writes;
pub mod sender;
pub mod signing;

pub use accounts::Accounts;
pub use bookings::Bookings;
pub use context::RequestContext;
pub use dealership::Dealership;
pub use error::CommandError;
pub use mutations::MutationSettings;
pub use payments::Payments;
pub use read_your_writes::ReadYourWrites;
pub use sender::{Call, Idempotency, Sender, Written};

/// Every mutation: one part per area of the dealership.
#[derive(async_graphql::MergedObject, Default)]
pub struct MutationRoot(
    mutations::SalesMutation,
    payments::PaymentsMutation,
    promotions::PromotionsMutation,
    loans::LoansMutation,
    insurance::InsuranceMutation,
    bookings::BookingsMutation,
    accounts::mutations::AccountsMutation,
);
