//! For auditors: the global log and any aggregate's stream, exactly as stored (after upcasting).

use async_graphql::connection::{Connection, CursorType, Edge, EmptyFields};
use async_graphql::{Enum, Json, SimpleObject};
use eventstore::EventLog;

use crate::ApiResult;
use crate::page::{Page, TotalCount};
use crate::scalars::{DateTime, Position};

/// The aggregate types whose streams can be read.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggregateType {
    Vehicle,
    Customer,
    Order,
    Booking,
    MechanicDay,
    Payment,
    Loan,
    Policy,
    User,
    PartnerKey,
    Promotion,
}

impl AggregateType {
    /// The name stored in the event log (`Aggregate::TYPE`).
    pub fn stored_name(self) -> &'static str {
        use cqrs_es::Aggregate;
        match self {
            AggregateType::Vehicle => aggregates::vehicle::Vehicle::TYPE,
            AggregateType::Customer => aggregates::customer::Customer::TYPE,
            AggregateType::Order => aggregates::order::Order::TYPE,
            AggregateType::Booking => aggregates::bookings::Booking::TYPE,
            AggregateType::MechanicDay => aggregates::bookings::MechanicDay::TYPE,
            AggregateType::Payment => aggregates::payment::Payment::TYPE,
            AggregateType::Loan => aggregates::loan::Loan::TYPE,
            AggregateType::Policy => aggregates::policy::Policy::TYPE,
            AggregateType::User => aggregates::user::User::TYPE,
            AggregateType::PartnerKey => aggregates::partner_key::PartnerKey::TYPE,
            AggregateType::Promotion => aggregates::promotion::Promotion::TYPE,
        }
    }
}

/// One stored event.
#[derive(SimpleObject, Clone, Debug)]
pub struct Event {
    /// Position in the global, commit-ordered log.
    pub position: Position,
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// Position within the aggregate's own stream (1-based).
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    /// The event's content, as stored, except credentials: password hashes and partner-key digests
    /// read `"[redacted]"`.
    pub payload: Json<serde_json::Value>,
    /// Who sent the command that produced it, and why: actor, correlation and causation ids,
    /// command name, idempotency key.
    pub metadata: Json<serde_json::Value>,
    /// When the store recorded it (server time, UTC).
    pub recorded_at: DateTime,
}

impl From<eventstore::RecordedEvent> for Event {
    fn from(event: eventstore::RecordedEvent) -> Self {
        Event {
            position: Position(event.position),
            aggregate_type: event.aggregate_type,
            aggregate_id: event.aggregate_id,
            sequence: event.sequence,
            event_type: event.event_type,
            event_version: event.event_version,
            payload: Json(redact_credentials(event.payload)),
            metadata: Json(event.metadata),
            recorded_at: DateTime(event.recorded_at),
        }
    }
}

/// Payload fields that hold credentials; the audit view shows that they are there, not what they are.
const CREDENTIAL_FIELDS: &[&str] = &["password_hash", "key_digest"];

/// `payload` with every [`CREDENTIAL_FIELDS`] value, at any depth, replaced by `"[redacted]"`.
fn redact_credentials(mut payload: serde_json::Value) -> serde_json::Value {
    fn walk(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(fields) => {
                for (name, field) in fields.iter_mut() {
                    if CREDENTIAL_FIELDS.contains(&name.as_str()) {
                        *field = serde_json::Value::String("[redacted]".into());
                    } else {
                        walk(field);
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut payload);
    payload
}

/// Cursor over the global log: the position itself.
#[derive(Clone, Copy, Debug)]
pub struct LogCursor(pub i64);

impl CursorType for LogCursor {
    type Error = std::num::ParseIntError;

    fn decode_cursor(s: &str) -> Result<Self, Self::Error> {
        s.parse().map(LogCursor)
    }

    fn encode_cursor(&self) -> String {
        self.0.to_string()
    }
}

pub type EventConnection = Connection<LogCursor, Event, TotalCount, EmptyFields>;

/// Events after `after` in commit order.
pub async fn global(
    log: &EventLog,
    after: Option<Position>,
    page: Page<LogCursor>,
) -> ApiResult<EventConnection> {
    let start = page.after.map(|c| c.0).or(after.map(|p| p.0)).unwrap_or(0);
    let total = log.count().await?;
    let mut events = log.read_after(start, page.fetch_limit() as u32).await?;
    let has_next = events.len() > page.first;
    events.truncate(page.first);
    Ok(connection(events, start > 0, has_next, total, |e| {
        e.position
    }))
}

/// One aggregate's events in stream order.
pub async fn stream(
    log: &EventLog,
    aggregate_type: AggregateType,
    aggregate_id: &str,
    page: Page<LogCursor>,
) -> ApiResult<EventConnection> {
    let name = aggregate_type.stored_name();
    let after_sequence = page.after.map(|c| c.0).unwrap_or(0);
    let total = log.stream_length(name, aggregate_id).await?;
    let mut events = log
        .stream(
            name,
            aggregate_id,
            after_sequence,
            page.fetch_limit() as u32,
        )
        .await?;
    let has_next = events.len() > page.first;
    events.truncate(page.first);
    Ok(connection(
        events,
        after_sequence > 0,
        has_next,
        total,
        |e| e.sequence,
    ))
}

fn connection(
    events: Vec<eventstore::RecordedEvent>,
    has_previous: bool,
    has_next: bool,
    total: i64,
    cursor: impl Fn(&eventstore::RecordedEvent) -> i64,
) -> EventConnection {
    let mut connection = Connection::with_additional_fields(
        has_previous,
        has_next,
        TotalCount { total_count: total },
    );
    connection.edges = events
        .into_iter()
        .map(|event| Edge::new(LogCursor(cursor(&event)), Event::from(event)))
        .collect();
    connection
}
