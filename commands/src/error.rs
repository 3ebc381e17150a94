//! Why a command was not carried out, and the code a client sees for it.

use aggregates::bookings::WorkshopError;
use aggregates::customer::CustomerError;
use aggregates::loan::LoanError;
use aggregates::order::OrderError;
use aggregates::partner_key::PartnerKeyError;
use aggregates::payment::PaymentError;
use aggregates::policy::PolicyError;
use aggregates::promotion::PromotionError;
use aggregates::user::UserError;
use aggregates::vehicle::VehicleError;
use queries::{ApiError, codes};

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Vehicle(#[from] VehicleError),
    #[error(transparent)]
    Customer(#[from] CustomerError),
    #[error(transparent)]
    Order(#[from] OrderError),
    /// A promotion or promo code refused; see [`PromotionError`].
    #[error(transparent)]
    Promotion(#[from] PromotionError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// A booking, a mechanic's day or a slot refused; see [`WorkshopError`].
    #[error(transparent)]
    Workshop(#[from] WorkshopError),
    #[error(transparent)]
    Loan(#[from] LoanError),
    #[error(transparent)]
    Payment(#[from] PaymentError),
    /// An account command refused; see [`UserError`].
    #[error(transparent)]
    User(#[from] UserError),
    #[error(transparent)]
    PartnerKey(#[from] PartnerKeyError),
    /// Wrong email or password (also for an unknown email or a disabled account: the answer never
    /// tells which). The caller asks again.
    #[error("the email or password is wrong")]
    InvalidCredentials,
    /// Too many failed sign-ins: the account refuses sign-ins until then.
    #[error("too many failed sign-ins; try again after {until}")]
    AccountLocked { until: String },
    /// Too many sign-in attempts from this address; wait a minute.
    #[error("too many sign-in attempts from this address; wait a minute")]
    TooManyRequests,
    /// Every password check is busy (a flood of sign-ins); retry shortly.
    #[error("the server is busy checking passwords; retry shortly")]
    PasswordChecksBusy,
    /// No valid credentials (a refresh token unknown, spent or of an ended session). Sign in again.
    #[error("{0}")]
    Unauthenticated(String),
    /// The input is malformed; nothing was written.
    #[error("{0}")]
    Validation(String),
    /// The object the command names does not exist.
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    /// Another vehicle already carries this VIN.
    #[error("VIN {vin} is already stocked as vehicle {vehicle_id}")]
    VinAlreadyStocked { vin: String, vehicle_id: String },
    /// The order's vehicle could not be reserved; the order stays as it was.
    #[error("vehicle {vehicle_id} cannot be reserved for this order: {reason}")]
    VehicleNotAvailable { vehicle_id: String, reason: String },
    /// A concurrent command changed the aggregate first, several times in a row; re-read and retry.
    #[error("the {aggregate} was changed concurrently; retry")]
    Conflict { aggregate: &'static str },
    /// The idempotency key was used before with a different input.
    #[error("idempotency key {key:?} was already used with a different input")]
    IdempotencyKeyReused { key: String },
    /// The database could not be reached or refused to write (disk full, read-only, I/O error); the
    /// detail is logged, not sent. Retry with the same idempotency key: the command may or may not
    /// have been carried out.
    #[error("storage unavailable: {0}")]
    StorageUnavailable(String),
    /// A store failure; the detail is logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl CommandError {
    /// A failure of the store while running a command: [`CommandError::StorageUnavailable`] when the
    /// database could not be reached or refused to write, else [`CommandError::Internal`].
    pub fn from_aggregate<T: std::error::Error>(
        context: impl std::fmt::Display,
        err: cqrs_es::AggregateError<T>,
    ) -> Self {
        let unavailable = match &err {
            cqrs_es::AggregateError::DatabaseConnectionError(_) => true,
            cqrs_es::AggregateError::UnexpectedError(inner) => inner
                .downcast_ref::<sqlx::Error>()
                .is_some_and(eventstore::database::is_unavailable),
            _ => false,
        };
        if unavailable {
            CommandError::StorageUnavailable(format!("{context}: {err}"))
        } else {
            CommandError::Internal(format!("{context}: {err}"))
        }
    }
}

impl From<CommandError> for ApiError {
    fn from(err: CommandError) -> Self {
        let message = err.to_string();
        match err {
            CommandError::Vehicle(e) => ApiError::new(e.code(), message),
            CommandError::Customer(e) => ApiError::new(e.code(), message),
            CommandError::Order(e) => ApiError::new(e.code(), message),
            CommandError::Promotion(e) => ApiError::new(e.code(), message),
            CommandError::Policy(e) => ApiError::new(e.code(), message),
            CommandError::Workshop(e) => ApiError::new(e.code(), message),
            CommandError::Loan(e) => ApiError::new(e.code(), message),
            CommandError::Payment(e) => ApiError::new(e.code(), message),
            CommandError::User(e) => ApiError::new(e.code(), message),
            CommandError::PartnerKey(e) => ApiError::new(e.code(), message),
            CommandError::InvalidCredentials => ApiError::new("INVALID_CREDENTIALS", message),
            CommandError::AccountLocked { .. } => ApiError::new("ACCOUNT_LOCKED", message),
            CommandError::TooManyRequests | CommandError::PasswordChecksBusy => {
                ApiError::new("TOO_MANY_REQUESTS", message)
            }
            CommandError::Unauthenticated(_) => ApiError::new(codes::UNAUTHENTICATED, message),
            CommandError::Validation(_) => ApiError::new(codes::VALIDATION, message),
            CommandError::NotFound { .. } => ApiError::new(codes::NOT_FOUND, message),
            CommandError::VinAlreadyStocked { .. } => ApiError::new("VIN_ALREADY_STOCKED", message),
            CommandError::VehicleNotAvailable { .. } => {
                ApiError::new("VEHICLE_NOT_AVAILABLE", message)
            }
            CommandError::Conflict { .. } => ApiError::new(codes::CONFLICT, message),
            CommandError::IdempotencyKeyReused { .. } => {
                ApiError::new(codes::IDEMPOTENCY_KEY_REUSED, message)
            }
            CommandError::StorageUnavailable(detail) => ApiError::storage_unavailable(detail),
            CommandError::Internal(detail) => ApiError::internal(detail),
        }
    }
}

impl From<eventstore::StoreError> for CommandError {
    fn from(err: eventstore::StoreError) -> Self {
        if err.is_unavailable() {
            CommandError::StorageUnavailable(err.to_string())
        } else {
            CommandError::Internal(err.to_string())
        }
    }
}

impl From<sqlx::Error> for CommandError {
    fn from(err: sqlx::Error) -> Self {
        if eventstore::database::is_unavailable(&err) {
            CommandError::StorageUnavailable(err.to_string())
        } else {
            CommandError::Internal(err.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Failure = cqrs_es::AggregateError<std::io::Error>;

    #[test]
    fn a_store_failure_is_unavailable_only_when_the_database_could_not_be_reached() {
        let unreachable: Failure =
            cqrs_es::AggregateError::UnexpectedError(Box::new(sqlx::Error::PoolTimedOut));
        assert!(matches!(
            CommandError::from_aggregate("loading", unreachable),
            CommandError::StorageUnavailable(_)
        ));
        let dropped: Failure = cqrs_es::AggregateError::DatabaseConnectionError(Box::new(
            std::io::Error::from(std::io::ErrorKind::ConnectionReset),
        ));
        assert!(matches!(
            CommandError::from_aggregate("loading", dropped),
            CommandError::StorageUnavailable(_)
        ));
        let broken: Failure =
            cqrs_es::AggregateError::UnexpectedError(Box::new(sqlx::Error::RowNotFound));
        assert!(matches!(
            CommandError::from_aggregate("loading", broken),
            CommandError::Internal(_)
        ));
        let garbled: Failure = cqrs_es::AggregateError::DeserializationError(Box::new(
            std::io::Error::other("bad JSON"),
        ));
        assert!(matches!(
            CommandError::from_aggregate("loading", garbled),
            CommandError::Internal(_)
        ));
        let code = |err: CommandError| ApiError::from(err).code;
        assert_eq!(
            code(CommandError::StorageUnavailable("x".into())),
            codes::STORAGE_UNAVAILABLE
        );
        assert_eq!(code(CommandError::Internal("x".into())), codes::INTERNAL);
    }
}
