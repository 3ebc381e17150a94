//! What an operator sees: request ids on every answer, one access-log line per request (with no
//! secret in it), a bad log filter refused at start-up, and the commit in `--version`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::door::ServerProcess;
use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, customer_input, spawn_app, temp_dir};

const VALID_TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn request_id(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-request-id")
        .expect("every answer carries X-Request-Id")
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn request_ids_are_echoed_generated_when_missing_or_unfit_and_become_the_correlation_id() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    let query = json!({ "query": "{ me { actorId } }" });
    let kept = app
        .client
        .post(app.url("/graphql"))
        .header("x-request-id", "crm-7f3a-0001")
        .json(&query)
        .send()
        .await
        .unwrap();
    assert_eq!(request_id(&kept), "crm-7f3a-0001", "a fit id is echoed");

    let fresh = app.client.get(app.url("/livez")).send().await.unwrap();
    let generated = request_id(&fresh);
    assert!(uuid::Uuid::parse_str(&generated).is_ok(), "{generated}");
    let again = request_id(&app.client.get(app.url("/livez")).send().await.unwrap());
    assert_ne!(generated, again, "each request gets its own id");

    for unfit in ["two words", &"x".repeat(129)] {
        let replaced = app
            .client
            .post(app.url("/graphql"))
            .header("x-request-id", unfit)
            .json(&query)
            .send()
            .await
            .unwrap();
        let id = request_id(&replaced);
        assert!(
            uuid::Uuid::parse_str(&id).is_ok(),
            "{unfit:?} replaced by {id}"
        );
    }

    // A refusal before GraphQL runs carries it too.
    let refused = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "text/plain")
        .header("x-request-id", "crm-7f3a-0002")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 415);
    assert_eq!(request_id(&refused), "crm-7f3a-0002");

    // With no X-Correlation-Id, the events a request writes carry its request id.
    let before = app.event_count().await;
    let written: Value = app
        .client
        .post(app.url("/graphql"))
        .header("x-request-id", "crm-7f3a-0003")
        .json(&json!({
            "query": "mutation($input: RegisterCustomerInput!) { registerCustomer(input: $input) { customer { id } } }",
            "variables": { "input": customer_input("0193a4b0-0000-7000-8000-0000000000c1") }
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(written.get("errors").is_none(), "{written}");
    let events = app
        .ok(
            "query($after: Position) { events(afterPosition: $after) { edges { node { metadata } } } }",
            json!({ "after": before }),
        )
        .await;
    assert_eq!(
        events["events"]["edges"][0]["node"]["metadata"]["correlation_id"],
        "crm-7f3a-0003"
    );
    app.stop().await;
}

/// The real binary, logging JSON lines into a file the test reads.
struct LoggingServer(ServerProcess);

impl LoggingServer {
    async fn start(dir: &tempfile::TempDir) -> Self {
        Self(ServerProcess::start_with(dir, &["--log-format", "json"], &[]).await)
    }

    fn log_text(&self) -> String {
        self.0.log_text()
    }

    /// The access-log lines written so far, parsed.
    fn access_lines(&self) -> Vec<Value> {
        self.log_text()
            .lines()
            .map(|line| {
                serde_json::from_str::<Value>(line)
                    .unwrap_or_else(|err| panic!("not a JSON line ({err}): {line}"))
            })
            .filter(|line| line["target"] == "autosalon::access")
            .collect()
    }

    /// The access line of the request with this id (exactly one).
    fn line_of(&self, request_id: &str) -> Value {
        let lines: Vec<Value> = self
            .access_lines()
            .into_iter()
            .filter(|line| line["request_id"] == request_id)
            .collect();
        assert_eq!(lines.len(), 1, "one line per request: {lines:#?}");
        lines[0].clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_has_one_json_access_line_with_its_fields_and_no_secret() {
    let dir = temp_dir();
    let server = LoggingServer::start(&dir).await;
    let client = reqwest::Client::new();
    let graphql = format!("{}/graphql", server.0.base);

    let signed_in: Value = client
        .post(&graphql)
        .header("x-request-id", "ops-login")
        .header("traceparent", VALID_TRACEPARENT)
        .json(&json!({
            "query": "mutation SignIn($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken refreshToken } }",
            "variables": { "e": ADMIN_EMAIL, "p": ADMIN_PASSWORD }
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = signed_in["data"]["login"]["accessToken"]
        .as_str()
        .expect("signed in")
        .to_owned();
    let refresh = signed_in["data"]["login"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let me: Value = client
        .post(&graphql)
        .bearer_auth(&token)
        .header("x-request-id", "ops-me")
        .header("traceparent", "00-not-a-trace-01")
        .json(&json!({ "query": "query WhoAmI { me { actorId } }" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actor = me["data"]["me"]["actorId"].as_str().unwrap().to_owned();
    let bad: Value = client
        .post(&graphql)
        .header("x-request-id", "ops-bad")
        .json(&json!({ "query": "{ noSuchField }" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(bad["errors"].is_array());
    let forged = client
        .post(&graphql)
        .bearer_auth("not.a.token")
        .header("x-request-id", "ops-forged")
        .json(&json!({ "query": "{ me { actorId } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    let live = client
        .get(format!("{}/livez", server.0.base))
        .header("x-request-id", "ops-live")
        .send()
        .await
        .unwrap();
    assert!(live.status().is_success());

    let login = server.line_of("ops-login");
    assert_eq!(login["level"], "INFO");
    assert_eq!(login["method"], "POST");
    assert_eq!(login["path"], "/graphql");
    assert_eq!(login["operation"], "SignIn");
    assert_eq!(login["outcome"], "OK");
    assert_eq!(login["status"], 200);
    assert_eq!(login["actor"], "anonymous");
    assert_eq!(login["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert!(login["duration_ms"].as_f64().unwrap() > 0.0, "{login}");

    let me = server.line_of("ops-me");
    assert_eq!(me["operation"], "WhoAmI");
    assert_eq!(me["actor"], actor, "the verified caller");
    assert_eq!(me["trace_id"], "-", "a malformed traceparent is ignored");

    let bad = server.line_of("ops-bad");
    assert_eq!(bad["operation"], "-", "an anonymous operation");
    assert_eq!(bad["outcome"], "VALIDATION");
    assert_eq!(bad["status"], 200);

    let forged = server.line_of("ops-forged");
    assert_eq!(forged["outcome"], "UNAUTHENTICATED");
    assert_eq!(forged["status"], 401);

    let live = server.line_of("ops-live");
    assert_eq!(live["method"], "GET");
    assert_eq!(live["path"], "/livez");
    assert_eq!(live["outcome"], "OK");

    let log = server.log_text();
    for secret in [
        ADMIN_PASSWORD,
        token.as_str(),
        refresh.as_str(),
        "not.a.token",
    ] {
        assert!(!log.contains(secret), "{secret:?} is in the log:\n{log}");
    }
    assert!(
        !log.contains("Bearer"),
        "no Authorization header in the log"
    );
}

#[test]
fn a_log_filter_that_does_not_parse_stops_start_up_with_a_clear_message() {
    let dir = temp_dir();
    let database = dir.path().join("never.db");
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_autosalon"))
        .arg("serve")
        .env("AUTOSALON_LOG", "info,autosalon=loud")
        .env(
            "AUTOSALON_DATABASE_URL",
            format!("sqlite://{}", database.display()),
        )
        .env("AUTOSALON_LISTEN", "127.0.0.1:0")
        .env("AUTOSALON_SIGNING_KEY_FILE", dir.path().join("signing.key"))
        .env("AUTOSALON_TOKEN_KEY_FILE", dir.path().join("token.key"))
        .stdin(Stdio::null())
        .output()
        .expect("the autosalon binary runs");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("AUTOSALON_LOG=\"info,autosalon=loud\" is not a log filter"),
        "{stderr}"
    );
    assert!(!database.exists(), "nothing started");
    assert!(!dir.path().join("token.key").exists(), "nothing started");
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let output = Command::new(env!("CARGO_BIN_EXE_autosalon"))
        .arg("--version")
        .output()
        .expect("the autosalon binary runs");
    assert!(output.status.success());
    let version = String::from_utf8(output.stdout).unwrap();
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8(output.stdout).unwrap().trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    assert_eq!(
        version.trim(),
        format!("autosalon {} (commit {head})", env!("CARGO_PKG_VERSION"))
    );
}
