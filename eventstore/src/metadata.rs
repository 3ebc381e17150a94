//! The metadata every command writes into every event it produces: auditors ask "who did this, and
//! why", and retries find their first attempt by idempotency key.

use std::collections::HashMap;

/// Metadata keys as stored in the `metadata` JSON object of each event (a public contract, like the
/// events themselves).
pub mod keys {
    pub const ACTOR_ID: &str = "actor_id";
    pub const ACTOR_ROLE: &str = "actor_role";
    pub const CORRELATION_ID: &str = "correlation_id";
    pub const CAUSATION_ID: &str = "causation_id";
    pub const COMMAND: &str = "command";
    pub const IDEMPOTENCY_KEY: &str = "idempotency_key";
    pub const INPUT_FINGERPRINT: &str = "input_fingerprint";
}

/// Who sent a command, in answer to what, and how to recognise a retry of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandMetadata {
    /// The authenticated (or declared) actor.
    pub actor_id: String,
    /// The actor's role when the command was sent.
    pub actor_role: String,
    /// Ties together every command and event of one business interaction (one client request).
    pub correlation_id: String,
    /// The command (or, for process managers, the event) that directly caused these events.
    pub causation_id: String,
    /// The command's name, e.g. `ConfirmOrder`.
    pub command: String,
    /// Client-chosen key: a retry with the same key and input returns the first result.
    pub idempotency_key: Option<String>,
    /// Hash of the client's input, to refuse the same key reused with a different input.
    pub input_fingerprint: Option<String>,
}

impl CommandMetadata {
    /// The metadata as cqrs-es stores it.
    pub fn to_map(&self) -> HashMap<String, String> {
        let mut map = HashMap::from([
            (keys::ACTOR_ID.to_string(), self.actor_id.clone()),
            (keys::ACTOR_ROLE.to_string(), self.actor_role.clone()),
            (
                keys::CORRELATION_ID.to_string(),
                self.correlation_id.clone(),
            ),
            (keys::CAUSATION_ID.to_string(), self.causation_id.clone()),
            (keys::COMMAND.to_string(), self.command.clone()),
        ]);
        if let Some(key) = &self.idempotency_key {
            map.insert(keys::IDEMPOTENCY_KEY.to_string(), key.clone());
        }
        if let Some(fingerprint) = &self.input_fingerprint {
            map.insert(keys::INPUT_FINGERPRINT.to_string(), fingerprint.clone());
        }
        map
    }
}
