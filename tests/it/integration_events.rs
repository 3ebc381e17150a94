//! Integration events: the contract (docs/integration-events.md) and, against a real RabbitMQ
//! (`AUTOSALON_TEST_AMQP_URL`, started by `.ci/rabbitmq`), the relay's delivery guarantees.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use autosalon::integration::{self, IntegrationEvent, ROUTES};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::scenario;

/// Every schema file ever shipped and the SHA-256 of its bytes. A shipped schema never changes: a
/// payload that changes shape gets a new version (a new `<key>.v<N>.schema.json`, a new line here,
/// the new version in `integration::ROUTES`), and the old file stays for consumers still on it.
const FINGERPRINTS: &[(&str, &str)] = &[
    (
        "envelope.v1.schema.json",
        "63e43526c810aaa95fd674326ac9105e42a7539efb65f093e42642aa577a08e3",
    ),
    (
        "financing.application.created.v1.schema.json",
        "7cdedd1de12e6f9d005e682f0fc04243d993928b9b93567403c32345d5de177d",
    ),
    (
        "insurance.policy.issued.v1.schema.json",
        "b02ca9832cbcffb0c9c85fb66ecf135e404d182a6506a5b26ad0004fdd17f75f",
    ),
    (
        "inventory.vehicle.reserved.v1.schema.json",
        "7e0424e182b0bfd47c4c4b83c53c513cf3b05efe8f34a35cdbc49e0de9ae5bc3",
    ),
    (
        "inventory.vehicle.sold.v1.schema.json",
        "b043c7d5494461386196351636f6aa61e75d3a4d3fc2899471b9676ddc3d32a4",
    ),
    (
        "payment.failed.v1.schema.json",
        "d2db08d5fff78f14ee85573cc606273749608e2f6b0ff61953eee87b5b4217c7",
    ),
    (
        "payment.succeeded.v1.schema.json",
        "91cce01d06fd3d4c40dfa6e7fabc47cf25ec09031198742147543f394209d144",
    ),
    (
        "sales.order.cancelled.v1.schema.json",
        "caa1adaa914d07f7381ce98332ebc2addd86f1fa2e9c04c11fd42d9efa75860e",
    ),
    (
        "sales.order.created.v1.schema.json",
        "86bef21094c36e8d89551645bde5032c5f5b284a57ce807d4bd655b73375e53d",
    ),
    (
        "sales.order.paid.v1.schema.json",
        "eafde9e58fd8c3779048c5c315ac9dda0f0f751e3a3da2ae4fffe53961ab3338",
    ),
    (
        "service.booking.created.v1.schema.json",
        "f1279578e574aec913a6f45615b3840b3416401593ec48264e8a3c69acdee42c",
    ),
];

/// How many scenarios at most are played to see every routing key emitted.
const MAX_SEEDS_FOR_COVERAGE: u64 = 8;

fn schema_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/integration-events")
}

fn schema_file(routing_key: &str, version: &str) -> String {
    let major = version.split('.').next().expect("a version has a major");
    format!("{routing_key}.v{major}.schema.json")
}

fn load_schema(file: &str) -> Value {
    let text = std::fs::read_to_string(schema_dir().join(file))
        .unwrap_or_else(|err| panic!("{file}: {err}"));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("{file} is not JSON: {err}"))
}

/// Checks `value` against the subset of JSON Schema the contract uses: `type`, `required`,
/// `properties`, `additionalProperties: false`, `enum`, `pattern`, `minimum` and the formats
/// `uuid`, `date-time` and `date`.
fn validate(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    if let Some(kind) = schema.get("type") {
        let kinds: Vec<&str> = match kind {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            other => panic!("unsupported type {other}"),
        };
        let matches = kinds.iter().any(|kind| match *kind {
            "object" => value.is_object(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "null" => value.is_null(),
            "array" => value.is_array(),
            other => panic!("unsupported type {other}"),
        });
        if !matches {
            errors.push(format!("{path}: {value} is not {kinds:?}"));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        errors.push(format!("{path}: {value} not in {allowed:?}"));
    }
    if let (Some(pattern), Some(text)) = (
        schema.get("pattern").and_then(Value::as_str),
        value.as_str(),
    ) && !regex::Regex::new(pattern).unwrap().is_match(text)
    {
        errors.push(format!("{path}: {text:?} does not match {pattern}"));
    }
    if let (Some(minimum), Some(number)) = (
        schema.get("minimum").and_then(Value::as_i64),
        value.as_i64(),
    ) && number < minimum
    {
        errors.push(format!("{path}: {number} < {minimum}"));
    }
    if let (Some(format), Some(text)) =
        (schema.get("format").and_then(Value::as_str), value.as_str())
    {
        let ok = match format {
            "uuid" => uuid::Uuid::parse_str(text).is_ok(),
            "date-time" => chrono::DateTime::parse_from_rfc3339(text).is_ok(),
            "date" => chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok(),
            other => panic!("unsupported format {other}"),
        };
        if !ok {
            errors.push(format!("{path}: {text:?} is not a {format}"));
        }
    }
    if let Some(object) = value.as_object() {
        let properties = schema.get("properties").and_then(Value::as_object);
        for required in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !object.contains_key(required) {
                errors.push(format!("{path}: missing {required}"));
            }
        }
        for (key, item) in object {
            match properties.and_then(|properties| properties.get(key)) {
                Some(property) => validate(property, item, &format!("{path}.{key}"), errors),
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    errors.push(format!("{path}: {key} is not in the schema"));
                }
                None => {}
            }
        }
    }
}

/// What a message must look like: the envelope schema, and its payload the schema of its key and
/// version.
fn contract_errors(message: &IntegrationEvent) -> Vec<String> {
    let mut errors = Vec::new();
    let envelope = &message.envelope;
    validate(
        &load_schema("envelope.v1.schema.json"),
        envelope,
        "$",
        &mut errors,
    );
    let route = ROUTES
        .iter()
        .find(|route| route.routing_key == message.routing_key)
        .expect("a mapped key");
    for (field, expected) in [
        ("routing_key", route.routing_key),
        ("event_type", route.event_type),
        ("event_version", route.version),
    ] {
        if envelope[field] != expected {
            errors.push(format!("$.{field}: {} is not {expected}", envelope[field]));
        }
    }
    if envelope["position"] != message.position {
        errors.push("$.position differs from the message id".into());
    }
    validate(
        &load_schema(&schema_file(route.routing_key, route.version)),
        &envelope["payload"],
        "$.payload",
        &mut errors,
    );
    errors
}

#[test]
fn every_shipped_schema_keeps_its_fingerprint_and_every_route_has_one() {
    let mut files: BTreeSet<String> = ROUTES
        .iter()
        .map(|route| schema_file(route.routing_key, route.version))
        .collect();
    files.insert("envelope.v1.schema.json".into());
    let fingerprinted: BTreeMap<&str, &str> = FINGERPRINTS.iter().copied().collect();
    for file in &files {
        assert!(
            fingerprinted.contains_key(file.as_str()),
            "{file} has no fingerprint: add it to FINGERPRINTS when it ships"
        );
    }
    for (file, expected) in FINGERPRINTS {
        let bytes = std::fs::read(schema_dir().join(file))
            .unwrap_or_else(|err| panic!("{file} was shipped and must stay: {err}"));
        let actual = format!("{:x}", Sha256::digest(&bytes));
        assert_eq!(
            &actual, expected,
            "{file} changed after it shipped: give the payload a new version (a new schema file \
             and fingerprint, the new version in integration::ROUTES) instead"
        );
    }
    for key in integration::UNMAPPED_ROUTING_KEYS {
        assert!(
            ROUTES.iter().all(|route| route.routing_key != *key),
            "{key} is both mapped and listed as unmapped"
        );
    }
}

/// The integration events of every event in the log, in log order.
async fn mapped(ledger: &autosalon::Ledger) -> Vec<IntegrationEvent> {
    mapped_in(&ledger.db).await
}

async fn mapped_in(db: &eventstore::Database) -> Vec<IntegrationEvent> {
    let upcasters: eventstore::Upcasters = std::sync::Arc::new(aggregates::upcasters());
    let log = eventstore::EventLog::new(db.pool().clone(), upcasters);
    let mut messages = Vec::new();
    let mut after = 0;
    loop {
        let batch = log.read_after(after, 500).await.unwrap();
        let Some(last) = batch.last() else {
            return messages;
        };
        after = last.position;
        for event in &batch {
            if let Some(message) = integration::map(&log, event).await.unwrap() {
                messages.push(message);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_routing_key_is_emitted_with_its_documented_shape() {
    let mut emitted = BTreeSet::new();
    let every: BTreeSet<&str> = ROUTES.iter().map(|route| route.routing_key).collect();
    let mut seeds = 0;
    while emitted != every && seeds < MAX_SEEDS_FOR_COVERAGE {
        let seed = scenario::base_seed().wrapping_add(seeds);
        seeds += 1;
        let played = scenario::play(&scenario::generate(seed, 4..=6)).await;
        let ledger = played.ledger().await;
        let messages = mapped(&ledger).await;
        for message in &messages {
            let errors = contract_errors(message);
            assert!(
                errors.is_empty(),
                "seed {seed}, {} at {}: {errors:#?}\n{:#}",
                message.routing_key,
                message.position,
                message.envelope
            );
            emitted.insert(message.routing_key);
        }
        // Mapping reads only the committed log: mapping again gives the same messages.
        assert_eq!(mapped(&ledger).await, messages, "seed {seed}");
    }
    assert_eq!(
        emitted, every,
        "routing keys never emitted in {seeds} scenarios"
    );
}

#[test]
fn the_contract_check_refuses_unknown_fields_missing_fields_and_float_money() {
    let schema = load_schema("payment.succeeded.v1.schema.json");
    let good = serde_json::json!({
        "payment_id": "0190c4d2-5b7e-7a3c-9f10-3e2d1c0b9a88",
        "order_id": "0190c4d2-5b7e-7a3c-9f10-3e2d1c0b9a89",
        "amount": { "amount": "1500000.00", "currency": "RUB" },
        "succeeded_at": "2025-01-22T10:30:00Z"
    });
    let mut errors = Vec::new();
    validate(&schema, &good, "$", &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    let mut extra = good.clone();
    extra["note"] = "new".into();
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("order_id");
    let mut float = good.clone();
    float["amount"]["amount"] = serde_json::json!(1500000.0);
    let mut three_places = good.clone();
    three_places["amount"]["amount"] = "1500000.005".into();
    for bad in [extra, missing, float, three_places] {
        let mut errors = Vec::new();
        validate(&schema, &bad, "$", &mut errors);
        assert!(!errors.is_empty(), "accepted {bad}");
    }
}

/// Against the RabbitMQ node of `.ci/rabbitmq`. The tests that stop the node take turns with every
/// other test here.
#[cfg(feature = "amqp")]
mod broker {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::Duration;

    use autosalon::integration::{EXCHANGE, IntegrationEvent};
    use autosalon::relay::{CONSUMER, Relay};
    use lapin::options::{
        BasicGetOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
        QueueDeleteOptions,
    };
    use lapin::types::FieldTable;
    use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
    use serde_json::Value;

    use super::{contract_errors, mapped, mapped_in};
    use crate::helpers;
    use crate::scenario::{self, drive};

    const NEEDS: &str = "needs RabbitMQ: AUTOSALON_TEST_AMQP_URL";

    static BROKER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    fn url() -> String {
        std::env::var("AUTOSALON_TEST_AMQP_URL").expect(NEEDS)
    }

    /// `ctl start|stop|kill` of the test node.
    fn ctl(action: &str) {
        let ctl = std::env::var("AUTOSALON_TEST_AMQP_CTL")
            .expect("AUTOSALON_TEST_AMQP_CTL (set by .ci/rabbitmq start)");
        let status = std::process::Command::new(ctl)
            .arg(action)
            .status()
            .unwrap();
        assert!(status.success(), "ctl {action} failed");
    }

    async fn channel() -> (Connection, Channel) {
        let connection = Connection::connect(&url(), ConnectionProperties::default())
            .await
            .expect("the test broker accepts connections");
        let channel = connection.create_channel().await.unwrap();
        (connection, channel)
    }

    /// A durable queue bound to every key of the exchange, made before anything is published.
    async fn bound_queue() -> String {
        let name = format!("autosalon-test-{}", uuid::Uuid::new_v4());
        let (connection, channel) = channel().await;
        channel
            .exchange_declare(
                EXCHANGE.into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        channel
            .queue_declare(
                name.as_str().into(),
                QueueDeclareOptions::durable(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        channel
            .queue_bind(
                name.as_str().into(),
                EXCHANGE.into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        let _ = connection.close(200, "bound".into()).await;
        name
    }

    /// One received message: id, routing key, persistence, body.
    #[derive(Debug, PartialEq)]
    struct Received {
        message_id: String,
        routing_key: String,
        persistent: bool,
        body: Value,
    }

    /// Everything in the queue, in arrival order; the queue is deleted after.
    async fn drain(queue: &str) -> Vec<Received> {
        let (connection, channel) = channel().await;
        let mut received = Vec::new();
        while let Some(message) = channel
            .basic_get(queue.into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            let delivery = message.delivery;
            received.push(Received {
                message_id: delivery
                    .properties
                    .message_id()
                    .as_ref()
                    .map(|id| id.as_str().to_string())
                    .unwrap_or_default(),
                routing_key: delivery.routing_key.as_str().to_string(),
                persistent: *delivery.properties.delivery_mode() == Some(2),
                body: serde_json::from_slice(&delivery.data).unwrap(),
            });
        }
        channel
            .queue_delete(queue.into(), QueueDeleteOptions::default())
            .await
            .unwrap();
        let _ = connection.close(200, "drained".into()).await;
        received
    }

    fn expected(messages: &[IntegrationEvent]) -> Vec<Received> {
        messages
            .iter()
            .map(|message| Received {
                message_id: message.message_id(),
                routing_key: message.routing_key.to_string(),
                persistent: true,
                body: message.envelope.clone(),
            })
            .collect()
    }

    /// Waits until `position` reaches the log's head, at most `limit`.
    async fn caught_up(
        status: &tokio::sync::watch::Receiver<projections::ProjectorStatus>,
        db: &eventstore::Database,
        limit: Duration,
    ) {
        let head = eventstore::log::head(db.pool()).await.unwrap();
        let deadline = tokio::time::Instant::now() + limit;
        while status.borrow().position < head {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the relay stood at {:?} of {head} after {limit:?}",
                *status.borrow()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs RabbitMQ: AUTOSALON_TEST_AMQP_URL"]
    async fn the_relay_publishes_every_mapped_event_once_in_log_order_with_its_documented_shape() {
        let _turn = BROKER.lock().await;
        let played = scenario::play(&scenario::generate(scenario::base_seed(), 4..=6)).await;
        let ledger = played.ledger().await;
        let queue = bound_queue().await;
        let relay = Arc::new(
            Relay::prepare(ledger.db.clone(), ledger.upcasters.clone(), url())
                .await
                .unwrap(),
        );
        let status = relay.status();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = relay.clone().spawn(stopped);
        caught_up(&status, &ledger.db, Duration::from_secs(60)).await;
        stop.send_replace(true);
        task.await.unwrap();
        let messages = mapped(&ledger).await;
        let routing_keys: std::collections::BTreeSet<_> =
            messages.iter().map(|message| message.routing_key).collect();
        assert!(routing_keys.len() >= 5, "a thin scenario: {routing_keys:?}");
        for message in &messages {
            assert!(contract_errors(message).is_empty());
        }
        assert_eq!(drain(&queue).await, expected(&messages));
        // Its checkpoint is durable: a relay started again publishes nothing more.
        let stored: i64 =
            sqlx::query_scalar("SELECT position FROM log_checkpoints WHERE consumer = $1")
                .bind(CONSUMER)
                .fetch_one(ledger.db.pool())
                .await
                .unwrap();
        assert_eq!(
            stored,
            eventstore::log::head(ledger.db.pool()).await.unwrap()
        );
    }

    #[derive(Clone, Copy, Debug)]
    enum Outage {
        /// `rabbitmqctl stop`, then start.
        Stopped,
        /// SIGKILL of the node, then start.
        Killed,
    }

    /// A server with the relay plays a scenario; once the relay has published something, the node
    /// goes down for a while and comes back while the scenario goes on. Then: every mapped event
    /// was delivered, any duplicate has the same id and body as the first copy, and the first
    /// copies are exactly the log's integration events in log order (so each aggregate's too).
    async fn outage_under_load(outage: Outage) {
        let _turn = BROKER.lock().await;
        let queue = bound_queue().await;
        let dir = scenario::scenario_dir();
        let mut settings = helpers::serve_args(&dir.path().join("autosalon.db"));
        settings.amqp_url = Some(autosalon::config::AmqpUrl(url()));
        let clock = drive::ScenarioClock::new();
        let app = helpers::spawn_with_clock_settings(settings, clock.clone()).await;
        let relay_status = || {
            app.projections
                .follower_statuses()
                .into_iter()
                .find(|(name, _)| *name == CONSUMER)
                .expect("the relay is reported")
                .1
        };
        let target = drive::Target::of(&app);
        let plan = scenario::generate(scenario::base_seed().wrapping_add(1), 5..=7);
        let down = async {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
            while relay_status().position == 0 {
                assert!(tokio::time::Instant::now() < deadline, "nothing published");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            match outage {
                Outage::Stopped => tokio::task::spawn_blocking(|| ctl("stop")),
                Outage::Killed => tokio::task::spawn_blocking(|| ctl("kill")),
            }
            .await
            .unwrap();
            // The relay notices at its next publish and says so; the server stays ready.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            while relay_status().failure.is_none() {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the outage never showed"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
            assert_eq!(
                ready.status(),
                200,
                "a broker outage made the server unready"
            );
            let body: Value = ready.json().await.unwrap();
            let relay = body["projections"]
                .as_array()
                .unwrap()
                .iter()
                .find(|entry| entry["name"] == CONSUMER)
                .cloned()
                .expect("/readyz lists the relay");
            assert!(!relay["failedPosition"].is_null(), "{relay}");
            let listed = app
                .ok(
                    "{ projections { name eventsBehind lastError failedPosition } }",
                    serde_json::json!({}),
                )
                .await;
            let listed = listed["projections"]
                .as_array()
                .unwrap()
                .iter()
                .find(|entry| entry["name"] == CONSUMER)
                .cloned()
                .expect("the projections query lists the relay");
            let error = listed["lastError"].as_str().unwrap_or_default().to_string();
            assert!(error.starts_with("broker"), "{listed}");
            let password = url::Url::parse(&url())
                .unwrap()
                .password()
                .unwrap_or("")
                .to_string();
            assert!(
                password.is_empty() || !error.contains(&password),
                "the broker password reached a client"
            );
            tokio::time::sleep(Duration::from_secs(2)).await;
            tokio::task::spawn_blocking(|| ctl("start")).await.unwrap();
        };
        let (_, ()) = tokio::join!(
            drive::run(&plan, &target, drive::Time::Scenario(clock)),
            down
        );
        let status = app
            .projections
            .follower_statuses()
            .into_iter()
            .find(|(name, _)| *name == CONSUMER)
            .unwrap();
        let watch = {
            // Follow the live status until the relay has caught up with everything played.
            let head = eventstore::log::head(app.db.pool()).await.unwrap();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
            loop {
                let (_, now) = app
                    .projections
                    .follower_statuses()
                    .into_iter()
                    .find(|(name, _)| *name == CONSUMER)
                    .unwrap();
                if now.position >= head {
                    break now;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the relay stood at {now:?} of {head}; before: {status:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        assert!(watch.failure.is_none(), "{watch:?}");
        let messages = mapped_in(&app.db).await;
        app.stop().await;
        let received = drain(&queue).await;
        let mut first: BTreeMap<String, &Value> = BTreeMap::new();
        let mut in_order = Vec::new();
        for message in &received {
            assert!(message.persistent);
            match first.get(&message.message_id) {
                Some(body) => assert_eq!(
                    *body, &message.body,
                    "a duplicate of {} differs",
                    message.message_id
                ),
                None => {
                    first.insert(message.message_id.clone(), &message.body);
                    in_order.push(message);
                }
            }
        }
        let expected = expected(&messages);
        let firsts: Vec<&Received> = in_order;
        assert_eq!(
            firsts.len(),
            expected.len(),
            "{} distinct messages delivered of {} ({outage:?})",
            firsts.len(),
            expected.len()
        );
        for (got, want) in firsts.iter().zip(&expected) {
            assert_eq!(*got, want, "({outage:?})");
        }
        eprintln!(
            "{outage:?}: {} messages, {} duplicates",
            expected.len(),
            received.len() - expected.len()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs RabbitMQ: AUTOSALON_TEST_AMQP_URL"]
    async fn a_broker_stopped_and_restarted_under_load_loses_and_reorders_nothing() {
        outage_under_load(Outage::Stopped).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs RabbitMQ: AUTOSALON_TEST_AMQP_URL"]
    async fn a_broker_killed_mid_stream_and_restarted_loses_and_reorders_nothing() {
        outage_under_load(Outage::Killed).await;
    }
}
