//! Request ids, W3C trace context and the access log: one `info` line per HTTP request.
//!
//! The line (target `autosalon::access`) holds the method, the path, the GraphQL operation name(s),
//! the outcome (the `extensions.code` of the first error, or `OK`), the HTTP status, the duration,
//! the verified actor, the request id and, when the client sent a valid `traceparent`, its trace
//! id. It never holds a header value other than those two ids, a variable, a query text or a
//! response body: no password, token or key can reach it.
//!
//! `X-Request-Id`: a client's id is kept when it is fit ([`fit_id`]: 1 to 128 printable ASCII
//! characters, no spaces), otherwise replaced by a fresh UUID (tower-http's request-id layers), and
//! echoed on every response. It is also the default correlation id of the events a request writes
//! (when the client sends no `X-Correlation-Id`), so a log line leads to its events.

use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// The request id header, as tower-http names it.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// The W3C trace-context header.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// Longest request id kept from a client: the same bound as a correlation id, because it may
/// become one ([`commands::context::MAX_CORRELATION_ID_CHARS`]).
pub const MAX_REQUEST_ID_CHARS: usize = commands::context::MAX_CORRELATION_ID_CHARS;
/// Longest path written into a line; a longer one is cut (with `…`), so a line stays a line.
const MAX_LOGGED_PATH_CHARS: usize = 256;
/// Longest operation names written for one request (a batch joins its names with `,`).
const MAX_LOGGED_OPERATION_CHARS: usize = 256;

/// What a handler tells the access log about the request it answered (a response extension).
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// The GraphQL operation name(s), `,`-joined for a batch; `None` when anonymous.
    pub operation: Option<String>,
    /// The `extensions.code` of the first error, `None` when there was none.
    pub code: Option<String>,
    /// The verified caller ([`queries::access::Identity::actor_id`]), once known.
    pub actor: Option<String>,
}

/// Whether a client's id is fit to keep, log and store: 1 to [`MAX_REQUEST_ID_CHARS`] printable
/// ASCII characters without spaces (anything else could forge log lines or bloat every event).
pub fn fit_id(value: &[u8]) -> bool {
    !value.is_empty()
        && value.len() <= MAX_REQUEST_ID_CHARS
        && value.iter().all(|byte| byte.is_ascii_graphic())
}

/// Drops an unfit `X-Request-Id` before tower-http's `SetRequestId` sees it, so that layer
/// generates a fresh one instead of keeping it.
pub async fn drop_unfit_request_id(mut request: Request) -> Request {
    let fit = request
        .headers()
        .get_all(&REQUEST_ID)
        .iter()
        .collect::<Vec<_>>();
    if fit.len() != 1 || !fit_id(fit[0].as_bytes()) {
        request.headers_mut().remove(&REQUEST_ID);
    }
    request
}

/// The trace id of a valid W3C `traceparent` (version `00`, or a later version read as `00`
/// prescribes: <https://www.w3.org/TR/trace-context/#traceparent-header>), `None` otherwise.
/// Lowercase hex only; an all-zero trace or parent id is invalid; version `ff` is invalid.
pub fn trace_id(traceparent: &HeaderValue) -> Option<&str> {
    let text = traceparent.to_str().ok()?.trim();
    let mut parts = text.split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |part: &str, len: usize| {
        part.len() == len
            && part
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let all_zero = |part: &str| part.bytes().all(|b| b == b'0');
    // Version 00 has exactly four fields; a later one may append more, the first four keeping
    // their meaning.
    let known_layout = version != "00" || parts.next().is_none();
    (hex(version, 2)
        && version != "ff"
        && hex(trace, 32)
        && !all_zero(trace)
        && hex(parent, 16)
        && !all_zero(parent)
        && hex(flags, 2)
        && known_layout)
        .then_some(trace)
}

/// Keeps the request's GraphQL operation names for the log: valid GraphQL names only, bounded.
pub fn operation_names<'a>(names: impl Iterator<Item = Option<&'a str>>) -> Option<String> {
    let names: Vec<&str> = names.map(|name| name.unwrap_or("-")).collect();
    if names.iter().all(|name| *name == "-") {
        return None;
    }
    let joined = names
        .iter()
        .map(|name| if is_graphql_name(name) { name } else { "?" })
        .collect::<Vec<_>>()
        .join(",");
    Some(cut(&joined, MAX_LOGGED_OPERATION_CHARS))
}

/// `/[_A-Za-z][_0-9A-Za-z]*/` (GraphQL October 2021, §2.1.9 Names), or `-` (anonymous).
fn is_graphql_name(name: &str) -> bool {
    let letters = !name.is_empty()
        && name
            .bytes()
            .enumerate()
            .all(|(i, b)| b == b'_' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()));
    name == "-" || letters
}

fn cut(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// The access-log middleware: runs the request, then writes its line.
pub async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = cut(request.uri().path(), MAX_LOGGED_PATH_CHARS);
    let request_id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let trace = request
        .headers()
        .get(&TRACEPARENT)
        .and_then(trace_id)
        .unwrap_or("-")
        .to_owned();
    let response = next.run(request).await;
    let status = response.status();
    let outcome = response
        .extensions()
        .get::<Outcome>()
        .cloned()
        .unwrap_or_default();
    let code = match outcome.code {
        Some(code) => code,
        None if status.is_client_error() || status.is_server_error() => {
            format!("HTTP_{}", status.as_u16())
        }
        None => "OK".to_owned(),
    };
    tracing::info!(
        target: "autosalon::access",
        method = %method,
        path = %path,
        operation = outcome.operation.as_deref().unwrap_or("-"),
        outcome = %code,
        status = status.as_u16(),
        duration_ms = started.elapsed().as_secs_f64() * 1e3,
        actor = outcome.actor.as_deref().unwrap_or("-"),
        request_id = %request_id,
        trace_id = %trace,
        "request"
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(text: &str) -> HeaderValue {
        HeaderValue::from_str(text).unwrap()
    }

    #[test]
    fn a_valid_traceparent_gives_its_trace_id() {
        let valid = header("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        assert_eq!(trace_id(&valid), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        // A later version may carry more fields after the four it shares with 00.
        let later = header("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-extra");
        assert_eq!(trace_id(&later), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
    }

    #[test]
    fn a_malformed_traceparent_is_ignored() {
        for bad in [
            "",
            "00",
            "garbage",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(trace_id(&header(bad)), None, "{bad:?} accepted");
        }
    }

    #[test]
    fn only_short_printable_request_ids_are_fit() {
        assert!(fit_id(b"req-17"));
        assert!(fit_id("x".repeat(MAX_REQUEST_ID_CHARS).as_bytes()));
        for bad in [
            &b""[..],
            b"two words",
            b"line\nbreak",
            "Привет".as_bytes(),
            "x".repeat(MAX_REQUEST_ID_CHARS + 1).as_bytes(),
        ] {
            assert!(!fit_id(bad), "{bad:?} kept");
        }
    }

    #[test]
    fn operation_names_are_kept_only_when_they_are_graphql_names() {
        assert_eq!(
            operation_names([Some("SignIn")].into_iter()),
            Some("SignIn".into())
        );
        assert_eq!(operation_names([None].into_iter()), None);
        assert_eq!(
            operation_names([Some("A"), None, Some("x y\n")].into_iter()),
            Some("A,-,?".into())
        );
        let long = "a".repeat(1_000);
        let kept = operation_names([Some(long.as_str())].into_iter()).unwrap();
        assert_eq!(kept.chars().count(), MAX_LOGGED_OPERATION_CHARS + 1);
    }
}
