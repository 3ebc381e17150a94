//! HTTP: `/graphql` (POST; GET for queries only, and GraphiQL for browsers), `/livez`, `/readyz`.
//! Every error a client gets, even one raised before GraphQL runs, is a GraphQL error with a code.

use std::net::SocketAddr;
use std::sync::Arc;

use async_graphql::parser::types::{DocumentOperations, OperationType};
use async_graphql::{BatchRequest, BatchResponse, ServerError};
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use commands::RequestContext;
use commands::accounts::tokens::TokenError;
use commands::context::ClientAddress;
use projections::Projections;
use queries::access::Identity;
use queries::codes;
use serde_json::json;

use crate::schema::AppSchema;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub schema: AppSchema,
    pub db: eventstore::Database,
    pub projections: Arc<Projections>,
    /// Verifies the credentials of every request.
    pub accounts: Arc<commands::Accounts>,
    pub max_body_bytes: usize,
    pub max_batch: usize,
    pub graphiql: bool,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(state)
}

/// A GraphQL-shaped error response for failures before execution.
fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    (status, axum::Json(body)).into_response()
}

/// Who sent a request, as verified from its credentials.
struct Caller {
    identity: Identity,
    context: RequestContext,
    address: ClientAddress,
}

/// The verified caller of a request: from its `Authorization` header only (no header: anonymous),
/// plus its correlation id and TCP peer address. Credentials that are present but not valid are
/// answered 401 `UNAUTHENTICATED` here, never treated as anonymous.
fn identify(
    state: &AppState,
    request: &Request,
) -> impl std::future::Future<Output = Result<Caller, Response>> + Send {
    let headers = request.headers().clone();
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip())
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let state = state.clone();
    async move { identify_by(&state, &headers, address).await }
}

async fn identify_by(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    address: std::net::IpAddr,
) -> Result<Caller, Response> {
    let authorization = match headers.get(header::AUTHORIZATION).map(|v| v.to_str()) {
        None => None,
        Some(Ok(value)) => Some(value),
        Some(Err(_)) => return Err(unauthenticated("the Authorization header is not text")),
    };
    let identity = match state.accounts.authenticate(authorization).await {
        Ok(identity) => identity,
        // The server's failure, not the caller's: never UNAUTHENTICATED, which would tell a client
        // to sign in again; a database that could not be reached says "retry".
        Err(TokenError::Unavailable(detail)) => {
            let error = queries::ApiError::storage_unavailable(detail);
            return Err(error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                error.code,
                &error.message,
            ));
        }
        Err(TokenError::Internal(detail)) => {
            let error = queries::ApiError::internal(detail);
            return Err(error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                error.code,
                &error.message,
            ));
        }
        Err(err) => {
            tracing::info!(reason = %err, "refused the credentials of a request");
            return Err(unauthenticated(
                "the credentials are missing, malformed, expired or revoked: sign in again",
            ));
        }
    };
    let correlation = headers
        .get("x-correlation-id")
        .and_then(|v| v.to_str().ok());
    Ok(Caller {
        context: RequestContext::of(&identity, correlation),
        identity,
        address: ClientAddress(address),
    })
}

fn unauthenticated(message: &str) -> Response {
    let mut response = error_response(StatusCode::UNAUTHORIZED, codes::UNAUTHENTICATED, message);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    response
}

async fn graphql_post(State(state): State<AppState>, request: Request) -> Response {
    let caller = match identify(&state, &request).await {
        Ok(caller) => caller,
        Err(refused) => return refused,
    };
    let body = match axum::body::to_bytes(request.into_body(), state.max_body_bytes).await {
        Ok(body) => body,
        Err(_) => {
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                codes::PAYLOAD_TOO_LARGE,
                &format!("request body exceeds {} bytes", state.max_body_bytes),
            );
        }
    };
    let batch: BatchRequest = match serde_json::from_slice(&body) {
        Ok(batch) => batch,
        Err(err) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                codes::BAD_REQUEST,
                &format!("the body is not a GraphQL request in JSON: {err}"),
            );
        }
    };
    let count = match &batch {
        BatchRequest::Single(_) => 1,
        BatchRequest::Batch(requests) => requests.len(),
    };
    if count == 0 || count > state.max_batch {
        return error_response(
            StatusCode::BAD_REQUEST,
            codes::QUERY_TOO_COMPLEX,
            &format!(
                "a batch must hold 1 to {} operations, got {count}",
                state.max_batch
            ),
        );
    }
    execute(&state, batch, caller).await
}

async fn graphql_get(State(state): State<AppState>, request: Request) -> Response {
    let query = request.uri().query().unwrap_or_default().to_string();
    let wants_html = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if query.is_empty() && wants_html && state.graphiql {
        return Html(
            async_graphql::http::GraphiQLSource::build()
                .endpoint("/graphql")
                .finish(),
        )
        .into_response();
    }
    let graphql = match async_graphql::http::parse_query_string(&query) {
        Ok(graphql) => graphql,
        Err(err) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                codes::BAD_REQUEST,
                &format!("bad GraphQL GET request: {err}"),
            );
        }
    };
    if is_mutation(&graphql.query, graphql.operation_name.as_deref()) {
        let mut response = error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            codes::METHOD_NOT_ALLOWED,
            "mutations must be sent with POST",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
        return response;
    }
    let caller = match identify(&state, &request).await {
        Ok(caller) => caller,
        Err(refused) => return refused,
    };
    execute(&state, BatchRequest::Single(graphql), caller).await
}

/// Whether the operation that would run is a mutation (or a subscription). Unparseable documents are
/// left to the executor, which answers them with a validation error.
fn is_mutation(query: &str, operation_name: Option<&str>) -> bool {
    let Ok(document) = async_graphql::parser::parse_query(query) else {
        return false;
    };
    let writes = |ty: OperationType| ty != OperationType::Query;
    match (&document.operations, operation_name) {
        (DocumentOperations::Single(op), _) => writes(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => {
            ops.get(name).is_some_and(|op| writes(op.node.ty))
        }
        (DocumentOperations::Multiple(ops), None) => ops.values().any(|op| writes(op.node.ty)),
    }
}

async fn execute(state: &AppState, batch: BatchRequest, caller: Caller) -> Response {
    let batch = batch
        .data(caller.identity)
        .data(caller.context)
        .data(caller.address);
    // Sampled before anything is read: projectors only move forward, so every read-model row in the
    // answer reflects at least these positions. (Reports, the ledger and customer history also state
    // the exact position of their rows, read in the same snapshot, as `reflectsPosition`.)
    let read_models = read_model_positions(&state.projections);
    let mut response = state.schema.execute_batch(batch).await;
    let responses = match &mut response {
        BatchResponse::Single(single) => std::slice::from_mut(single),
        BatchResponse::Batch(all) => all.as_mut_slice(),
    };
    for single in responses {
        single.errors.iter_mut().for_each(ensure_code);
        single
            .extensions
            .insert("readModels".to_string(), read_models.clone());
    }
    let body = match serde_json::to_vec(&response) {
        Ok(body) => body,
        Err(err) => {
            tracing::error!(error = %err, "could not serialise a GraphQL response");
            return error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                codes::INTERNAL,
                "internal error",
            );
        }
    };
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// `{ "<projector>": position, ... }`: how far each read model had got when the request began.
fn read_model_positions(projections: &Projections) -> async_graphql::Value {
    let positions = projections
        .statuses()
        .into_iter()
        .map(|(name, status)| {
            (
                async_graphql::Name::new(name),
                async_graphql::Value::from(status.position),
            )
        })
        .collect();
    async_graphql::Value::Object(positions)
}

/// Errors raised by the GraphQL engine itself (parse, validation, limits, input coercion) carry no
/// code; give each the stable one that fits.
fn ensure_code(error: &mut ServerError) {
    let extensions = error.extensions.get_or_insert_with(Default::default);
    if extensions.get("code").is_some() {
        return;
    }
    let code = if error.message.contains("nested too deep") || error.message.contains("too complex")
    {
        codes::QUERY_TOO_COMPLEX
    } else {
        codes::VALIDATION
    };
    extensions.set("code", code);
}

/// Ready when the database answers and no projector is stopped on a failing event.
async fn readyz(State(state): State<AppState>) -> Response {
    let database_ok = sqlx::query("SELECT 1")
        .execute(state.db.pool())
        .await
        .is_ok();
    let head = eventstore::log::head(state.db.pool()).await.unwrap_or(0);
    let projections: Vec<_> = state
        .projections
        .statuses()
        .into_iter()
        .map(|(name, status)| {
            json!({
                "name": name,
                "position": status.position,
                "eventsBehind": (head - status.position).max(0),
                "failedPosition": status.failure.as_ref().map(|(position, _)| position),
                "lastError": status.failure.as_ref().map(|(_, error)| error),
                "runsHere": status.runs_here,
            })
        })
        .collect();
    let failing = state
        .projections
        .statuses()
        .iter()
        .any(|(_, s)| s.failure.is_some());
    let ready = database_ok && !failing;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "ready": ready,
        "database": database_ok,
        "backend": state.db.backend().name(),
        "head": head,
        "projections": projections,
    });
    (status, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::is_mutation;

    #[test]
    fn mutations_are_recognised_whatever_the_document_shape() {
        assert!(is_mutation("mutation { x }", None));
        assert!(is_mutation("query A { a } mutation B { b }", Some("B")));
        assert!(is_mutation("query A { a } mutation B { b }", None));
        assert!(!is_mutation("query A { a } mutation B { b }", Some("A")));
        assert!(!is_mutation("{ vehicles { totalCount } }", None));
        assert!(!is_mutation("not graphql", None));
    }
}
