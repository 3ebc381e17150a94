//! Errors as GraphQL clients see them: a message for people and a stable `extensions.code` for
//! programs. Codes are a public contract (listed in the README); messages may be reworded.
//! Anything unexpected is logged with its detail and answered as `INTERNAL` with none.

use async_graphql::ErrorExtensions;

/// Stable error codes.
pub mod codes {
    /// The request is malformed or a value is out of range; fix the input.
    pub const VALIDATION: &str = "VALIDATION";
    /// No such object.
    pub const NOT_FOUND: &str = "NOT_FOUND";
    /// Someone else changed the object first; re-read and retry.
    pub const CONFLICT: &str = "CONFLICT";
    /// The idempotency key was already used with a different input.
    pub const IDEMPOTENCY_KEY_REUSED: &str = "IDEMPOTENCY_KEY_REUSED";
    /// The request body is larger than the server accepts.
    pub const PAYLOAD_TOO_LARGE: &str = "PAYLOAD_TOO_LARGE";
    /// The request could not be parsed as GraphQL over HTTP.
    pub const BAD_REQUEST: &str = "BAD_REQUEST";
    /// Mutations are refused over GET.
    pub const METHOD_NOT_ALLOWED: &str = "METHOD_NOT_ALLOWED";
    /// The query is too deep, too complex, the batch too large, or it holds too many mutation
    /// fields; split it.
    pub const QUERY_TOO_COMPLEX: &str = "QUERY_TOO_COMPLEX";
    /// A POST body that is not `application/json` (or `application/graphql-response+json`).
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "UNSUPPORTED_MEDIA_TYPE";
    /// The client did not send the whole request body in time.
    pub const REQUEST_TIMEOUT: &str = "REQUEST_TIMEOUT";
    /// The request did not finish in time. A query was cancelled; a mutation may still complete:
    /// retry it with the same idempotency key to learn its outcome.
    pub const TIMEOUT: &str = "TIMEOUT";
    /// No valid credentials: a token is missing, malformed, expired or revoked. Sign in (again).
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    /// Signed in, but no role held may run this operation.
    pub const FORBIDDEN: &str = "FORBIDDEN";
    /// A free-text input held a card number; it was neither stored nor repeated.
    pub const CARD_NUMBER_REFUSED: &str = "CARD_NUMBER_REFUSED";
    /// The database could not be reached (a restart, a failover) or refused to write (disk full,
    /// read-only, I/O error); retry. A mutation's write may or may not have been made: retry it with
    /// the same idempotency key. Nothing is half-written.
    pub const STORAGE_UNAVAILABLE: &str = "STORAGE_UNAVAILABLE";
    /// Something failed inside the server; the detail is in the server log.
    pub const INTERNAL: &str = "INTERNAL";
}

/// An error answered to a GraphQL client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(codes::VALIDATION, message)
    }

    pub fn not_found(what: &str, id: impl std::fmt::Display) -> Self {
        Self::new(codes::NOT_FOUND, format!("{what} {id} not found"))
    }

    /// Logs `detail` (which may hold SQL, paths, driver messages) and returns an error that does not.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error answered as INTERNAL");
        Self::new(codes::INTERNAL, "internal error")
    }
}

impl ApiError {
    /// Logs `detail` and answers that the storage could not take the request, without the detail.
    pub fn storage_unavailable(detail: impl std::fmt::Display) -> Self {
        tracing::warn!(error = %detail, "storage unavailable, answered as STORAGE_UNAVAILABLE");
        Self::new(
            codes::STORAGE_UNAVAILABLE,
            "the database could not be reached or could not write; retry (a mutation with the same \
             idempotency key is never applied twice)",
        )
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(err: ApiError) -> Self {
        let code = err.code;
        async_graphql::Error::new(err.message).extend_with(|_, ext| ext.set("code", code))
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        if eventstore::database::is_unavailable(&err) {
            Self::storage_unavailable(err)
        } else {
            Self::internal(err)
        }
    }
}

impl From<eventstore::StoreError> for ApiError {
    fn from(err: eventstore::StoreError) -> Self {
        if err.is_unavailable() {
            Self::storage_unavailable(err)
        } else {
            Self::internal(err)
        }
    }
}

/// Results of resolvers in this crate and in `commands`.
pub type ApiResult<T> = Result<T, ApiError>;
