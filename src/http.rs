//! HTTP: `/graphql` (POST; GET for queries only, and GraphiQL for browsers), `/livez`, `/readyz`.
//! Every error a client gets, even one raised before GraphQL runs, is a GraphQL error with a code.
//! Around every route: request ids and one access-log line per request ([`crate::access_log`]).
//!
//! The door, in the order a request meets it: CORS (an allow-list of origins, none by default);
//! for POST a JSON content type (anything a plain HTML form or `fetch` without a preflight can send
//! is refused, 415, which is what stops cross-site requests); the body, whole within a deadline
//! and a size; the batch, 1 to `max_batch` operations; the cost of every document, measured
//! without expanding fragments ([`crate::limits`]); then execution within the request timeout.
//! async-graphql-axum's extractor is not used: it reads any content type as JSON (multipart too),
//! reads bodies without a limit and answers rejections as plain text, so the few lines it would
//! save are exactly the ones that must differ.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::parser::types::DocumentOperations;
use async_graphql::{BatchRequest, BatchResponse, ServerError};
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use commands::RequestContext;
use commands::accounts::tokens::TokenError;
use commands::context::ClientAddress;
use projections::Projections;
use queries::access::Identity;
use queries::codes;
use serde_json::json;
use tokio::sync::{Semaphore, watch};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

use crate::access_log::{Outcome, REQUEST_ID, TRACEPARENT};
use crate::limits::{Cost, Limits, Refusal};
use crate::schema::AppSchema;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub schema: AppSchema,
    pub db: eventstore::Database,
    pub projections: Arc<Projections>,
    /// Verifies the credentials of every request.
    pub accounts: Arc<commands::Accounts>,
    /// What one request may cost (depth, complexity, mutation fields).
    pub limits: Limits,
    pub max_body_bytes: usize,
    pub max_batch: usize,
    pub graphiql: bool,
    /// The whole body must arrive within this, or the request is answered 408.
    pub body_read_timeout: Duration,
    /// GraphQL execution may take this long (a mutation is never cut off, see [`execute`]).
    pub request_timeout: Duration,
    /// Every mutation running on its own task holds a receiver of this channel; shutdown waits
    /// until none is left.
    pub in_flight: watch::Sender<()>,
    /// Turns for parsing long documents off the runtime's workers: one per CPU.
    pub parsing: Arc<Semaphore>,
}

/// Query text up to this length is parsed where the request runs; longer, on the blocking pool.
const LONG_DOCUMENT_BYTES: usize = 16 * 1024;

/// The media types a POST body may have (RFC 8259 JSON; the GraphQL-over-HTTP response type,
/// which some clients also send).
const JSON_MEDIA_TYPES: [&str; 2] = ["application/json", "application/graphql-response+json"];

pub fn router(state: AppState, cors: CorsLayer) -> Router {
    Router::new()
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .layer(cors)
        // Outermost last: an unfit client id is dropped, a fresh one set when none is left, the
        // access log sees it, and the response echoes it.
        .layer(axum::middleware::from_fn(crate::access_log::log_request))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(axum::middleware::map_request(
            crate::access_log::drop_unfit_request_id,
        ))
        .with_state(state)
}

/// CORS for the origins allowed (none by default, so browsers refuse every cross-origin call).
/// Preflights are answered here; an origin not on the list gets no `Access-Control-Allow-Origin`.
pub fn cors_layer(origins: Vec<HeaderValue>) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            HeaderName::from_static("x-correlation-id"),
            REQUEST_ID,
            TRACEPARENT,
        ])
        .expose_headers([REQUEST_ID])
        .max_age(Duration::from_secs(600))
}

/// A GraphQL-shaped error response for failures before execution.
fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    let mut response = (status, axum::Json(body)).into_response();
    response.extensions_mut().insert(Outcome {
        code: Some(code.to_owned()),
        ..Outcome::default()
    });
    response
}

fn refused(refusal: &Refusal) -> Response {
    error_response(
        StatusCode::BAD_REQUEST,
        refusal.code(),
        &refusal.to_string(),
    )
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
    // The client's correlation id, else the request id (the client's, or the one generated for
    // it), so the events a request writes lead back to its access-log line.
    let correlation = [HeaderName::from_static("x-correlation-id"), REQUEST_ID]
        .iter()
        .find_map(|name| headers.get(name).and_then(|v| v.to_str().ok()));
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

/// Whether the body is declared JSON: one of [`JSON_MEDIA_TYPES`], with no charset or UTF-8.
/// Missing, `text/plain`, form and multipart bodies are what a page on another site can make a
/// browser send without asking first, so they are refused before the body is read.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    if !JSON_MEDIA_TYPES
        .iter()
        .any(|json| essence.eq_ignore_ascii_case(json))
    {
        return false;
    }
    parts.all(|parameter| match parameter.split_once('=') {
        Some((name, value)) if name.trim().eq_ignore_ascii_case("charset") => {
            value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        }
        _ => true,
    })
}

async fn graphql_post(State(state): State<AppState>, request: Request) -> Response {
    if !is_json(request.headers()) {
        let mut response = error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            codes::UNSUPPORTED_MEDIA_TYPE,
            "a GraphQL POST body must be JSON: send Content-Type: application/json",
        );
        response.headers_mut().insert(
            HeaderName::from_static("accept-post"),
            HeaderValue::from_static("application/json, application/graphql-response+json"),
        );
        return response;
    }
    let caller = match identify(&state, &request).await {
        Ok(caller) => caller,
        Err(refused) => return refused,
    };
    let read = axum::body::to_bytes(request.into_body(), state.max_body_bytes);
    let body = match tokio::time::timeout(state.body_read_timeout, read).await {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => {
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                codes::PAYLOAD_TOO_LARGE,
                &format!("request body exceeds {} bytes", state.max_body_bytes),
            );
        }
        Err(_) => {
            let mut response = error_response(
                StatusCode::REQUEST_TIMEOUT,
                codes::REQUEST_TIMEOUT,
                &format!(
                    "the request body did not arrive within {} ms",
                    state.body_read_timeout.as_millis()
                ),
            );
            // The rest of the body is never read: this connection cannot carry another request.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return response;
        }
    };
    // Decided by the first byte, not by serde's untagged guess: an empty array `[]` would
    // otherwise be read as one request with every field defaulted (a struct from a sequence).
    let parsed = match body.iter().find(|byte| !byte.is_ascii_whitespace()) {
        Some(b'[') => serde_json::from_slice(&body).map(BatchRequest::Batch),
        _ => serde_json::from_slice(&body).map(BatchRequest::Single),
    };
    let batch = match parsed {
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
    if count == 0 {
        return error_response(
            StatusCode::BAD_REQUEST,
            codes::BAD_REQUEST,
            "an empty batch: send at least one operation",
        );
    }
    if count > state.max_batch {
        return error_response(
            StatusCode::BAD_REQUEST,
            codes::QUERY_TOO_COMPLEX,
            &format!(
                "a batch must hold 1 to {} operations, got {count}",
                state.max_batch
            ),
        );
    }
    let (batch, cost) = match measure(&state, batch).await {
        Ok(measured) => measured,
        Err(response) => return response,
    };
    execute(&state, batch, caller, cost).await
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
    let (batch, cost) = match measure(&state, BatchRequest::Single(graphql)).await {
        Ok(measured) => measured,
        Err(response) => return response,
    };
    if cost.writes {
        let mut response = error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            codes::METHOD_NOT_ALLOWED,
            "mutations must be sent with POST",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    let caller = match identify(&state, &request).await {
        Ok(caller) => caller,
        Err(refused) => return refused,
    };
    execute(&state, batch, caller, cost).await
}

/// Parses and measures a batch ([`Limits::check_batch`]). Parsing takes time in proportion to the
/// query text (a 130 KB document takes a debug build 0.7 s), and on a runtime worker it would
/// stall every other request queued on that worker: long documents are parsed on the blocking
/// pool instead, a few at a time ([`AppState::parsing`]), so the server keeps answering.
async fn measure(
    state: &AppState,
    mut batch: BatchRequest,
) -> Result<(BatchRequest, Cost), Response> {
    let text_bytes: usize = batch.iter().map(|request| request.query.len()).sum();
    let limits = state.limits;
    let (batch, measured) = if text_bytes <= LONG_DOCUMENT_BYTES {
        let measured = limits.check_batch(batch.iter_mut());
        (batch, measured)
    } else {
        // Owned and moved into the parse, so a client that leaves does not free its turn early.
        let turn = state.parsing.clone().acquire_owned().await.map_err(|err| {
            tracing::error!(error = %err, "the parsing semaphore is closed");
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                codes::INTERNAL,
                "internal error",
            )
        })?;
        let parsed = tokio::task::spawn_blocking(move || {
            let _turn = turn;
            let measured = limits.check_batch(batch.iter_mut());
            (batch, measured)
        })
        .await;
        parsed.map_err(|err| {
            tracing::error!(error = %err, "parsing a GraphQL document failed");
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                codes::INTERNAL,
                "internal error",
            )
        })?
    };
    match measured {
        Ok(cost) => Ok((batch, cost)),
        Err(refusal) => Err(refused(&refusal)),
    }
}

/// The answer when execution outlived the request timeout.
fn timed_out(state: &AppState, writes: bool) -> Response {
    let ms = state.request_timeout.as_millis();
    let message = if writes {
        format!(
            "the request did not finish within {ms} ms; its mutations keep running and may \
             complete: retry with the same idempotency key to learn the outcome"
        )
    } else {
        format!("the query did not finish within {ms} ms and was cancelled")
    };
    let mut response = error_response(StatusCode::SERVICE_UNAVAILABLE, codes::TIMEOUT, &message);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// Runs a measured batch. Queries run in the request's own task and are cancelled when it times
/// out (or when the client goes away). A batch with a mutation runs on a task of its own, so neither
/// the timeout nor a vanished client stops a command halfway through its steps: the answer then
/// says to retry with the idempotency key, and shutdown waits for the task (see `in_flight`).
async fn execute(
    state: &AppState,
    mut batch: BatchRequest,
    caller: Caller,
    cost: Cost,
) -> Response {
    let operation = crate::access_log::operation_names(
        batch
            .iter_mut()
            .map(|request| {
                let named = request.operation_name.clone();
                named.or_else(|| {
                    // Parsed already by `measure`: this reads the cached document.
                    match request
                        .parsed_query()
                        .ok()
                        .map(|document| &document.operations)
                    {
                        Some(DocumentOperations::Multiple(operations)) if operations.len() == 1 => {
                            operations.keys().next().map(|name| name.to_string())
                        }
                        _ => None,
                    }
                })
            })
            .collect::<Vec<_>>()
            .iter()
            .map(Option::as_deref),
    );
    let actor = caller.context.actor_id.clone();
    let mut response = run_batch(state, batch, caller, cost).await;
    let outcome = response.extensions_mut().get_or_insert_default::<Outcome>();
    outcome.operation = operation;
    outcome.actor = Some(actor);
    response
}

async fn run_batch(state: &AppState, batch: BatchRequest, caller: Caller, cost: Cost) -> Response {
    let batch = batch
        .data(caller.identity)
        .data(caller.context)
        .data(caller.address);
    // Sampled before anything is read: projectors only move forward, so every read-model row in the
    // answer reflects at least these positions. (Reports, the ledger and customer history also state
    // the exact position of their rows, read in the same snapshot, as `reflectsPosition`.)
    let read_models = read_model_positions(&state.projections);
    let schema = state.schema.clone();
    let mut response = if cost.writes {
        let in_flight = state.in_flight.subscribe();
        let task = tokio::spawn(async move {
            let _in_flight = in_flight;
            schema.execute_batch(batch).await
        });
        match tokio::time::timeout(state.request_timeout, task).await {
            Ok(Ok(response)) => response,
            Ok(Err(err)) => {
                tracing::error!(error = %err, "a GraphQL mutation task failed");
                return error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    codes::INTERNAL,
                    "internal error",
                );
            }
            Err(_) => return timed_out(state, true),
        }
    } else {
        match tokio::time::timeout(state.request_timeout, schema.execute_batch(batch)).await {
            Ok(response) => response,
            Err(_) => return timed_out(state, false),
        }
    };
    let responses = match &mut response {
        BatchResponse::Single(single) => std::slice::from_mut(single),
        BatchResponse::Batch(all) => all.as_mut_slice(),
    };
    for single in responses.iter_mut() {
        single.errors.iter_mut().for_each(ensure_code);
        single
            .extensions
            .insert("readModels".to_string(), read_models.clone());
    }
    let first_code = responses
        .iter()
        .flat_map(|single| single.errors.first())
        .find_map(|error| match error.extensions.as_ref()?.get("code")? {
            async_graphql::Value::String(code) => Some(code.clone()),
            _ => None,
        });
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
    let mut response = Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
    response.extensions_mut().insert(Outcome {
        code: first_code,
        ..Outcome::default()
    });
    response
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

/// Errors raised by the GraphQL engine itself (parse, validation, input coercion) carry no code:
/// they are all the client's input. (Its depth and complexity limits are not used: the door's own
/// run before it, see [`crate::limits`].)
fn ensure_code(error: &mut ServerError) {
    let extensions = error.extensions.get_or_insert_with(Default::default);
    if extensions.get("code").is_some() {
        return;
    }
    extensions.set("code", codes::VALIDATION);
}

/// Ready when the database answers, takes writes (after a write the storage refused, a probe write
/// must commit first: see [`eventstore::Database::writes_ok`]) and no projector is stopped on a
/// failing event. The integration-event relay is listed with the projectors (`amqp_relay`, its
/// `eventsBehind` and `failedPosition` while the broker is out of reach) but never makes the server
/// unready: a broker outage delays publishing only. Anyone may ask (load balancers do), so it names the failing position but not the
/// error, whose text can hold stored data: that is logged, and staff read it from the `projections`
/// query.
async fn readyz(State(state): State<AppState>) -> Response {
    let database_ok = sqlx::query("SELECT 1")
        .execute(state.db.pool())
        .await
        .is_ok();
    let writes_ok = database_ok && state.db.writes_ok().await;
    let head = eventstore::log::head(state.db.pool()).await.unwrap_or(0);
    let projections: Vec<_> = state
        .projections
        .statuses()
        .into_iter()
        .chain(state.projections.follower_statuses())
        .map(|(name, status)| {
            json!({
                "name": name,
                "position": status.position,
                "eventsBehind": (head - status.position).max(0),
                "failedPosition": status.failure.as_ref().map(|(position, _)| position),
                "runsHere": status.runs_here,
            })
        })
        .collect();
    let failing = state
        .projections
        .statuses()
        .iter()
        .any(|(_, s)| s.failure.is_some());
    let ready = database_ok && writes_ok && !failing;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "ready": ready,
        "database": database_ok,
        "writes": writes_ok,
        "backend": state.db.backend().name(),
        "head": head,
        "projections": projections,
    });
    (status, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue, header};

    use super::is_json;

    fn with_type(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn only_json_bodies_are_accepted() {
        for json in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=\"UTF-8\"",
            "application/graphql-response+json",
        ] {
            assert!(is_json(&with_type(json)), "{json} refused");
        }
        for other in [
            "text/plain",
            "text/plain; charset=utf-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/graphql",
            "application/json; charset=latin1",
            "application/jsonx",
            "",
        ] {
            assert!(!is_json(&with_type(other)), "{other} accepted");
        }
        assert!(!is_json(&HeaderMap::new()));
    }
}
