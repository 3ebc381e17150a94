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
    let log = eventstore::EventLog::new(ledger.db.pool().clone(), ledger.upcasters.clone());
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
