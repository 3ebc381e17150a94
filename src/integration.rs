//! Integration events: what other systems of the dealership (its website, call centre, BI, the bank's
//! and insurers' integrations) learn of what happened, as a public contract separate from the domain
//! events (docs/integration-events.md, a JSON Schema per routing key in docs/integration-events/).
//!
//! [`map`] turns one committed domain event into at most one [`IntegrationEvent`]; the relay
//! ([`crate::relay`]) publishes them. Mapping only reads the committed log, so the same event always
//! maps to the same message, whenever and however often it is published.

use aggregates::{
    bookings::BookingEvent, loan::LoanEvent, money::Money, order::OrderEvent,
    payment::PaymentEvent, policy::PolicyEvent, vehicle::VehicleEvent,
};
use eventstore::{EventLog, RecordedEvent, StoreError, metadata::keys};
use serde_json::{Value, json};
use uuid::Uuid;

/// The exchange every integration event goes to (seeds §4.4: topic, durable).
pub const EXCHANGE: &str = "autosalon_events";

/// Namespace of the envelope's `event_id` (UUID v5 of aggregate type, id and sequence): stable for
/// one domain event across republishing, rebuilds and moves between databases.
const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6c0d_52a4_6f43_4d1e_9b7e_3a51_c1e0_a416);

/// A routing key of seeds §4.4 that the ledger emits, with its integration event's name and the
/// version of its payload schema (`docs/integration-events/<key>.v<major>.schema.json`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    pub routing_key: &'static str,
    pub event_type: &'static str,
    pub version: &'static str,
}

/// Every routing key emitted today. Bump `version` (and add a schema file and fingerprint) whenever
/// a payload changes shape.
pub const ROUTES: &[Route] = &[
    Route {
        routing_key: "sales.order.created",
        event_type: "OrderCreated",
        version: "1.0",
    },
    Route {
        routing_key: "sales.order.paid",
        event_type: "OrderPaid",
        version: "1.0",
    },
    Route {
        routing_key: "sales.order.cancelled",
        event_type: "OrderCancelled",
        version: "1.0",
    },
    Route {
        routing_key: "payment.succeeded",
        event_type: "PaymentSucceeded",
        version: "1.0",
    },
    Route {
        routing_key: "payment.failed",
        event_type: "PaymentFailed",
        version: "1.0",
    },
    Route {
        routing_key: "financing.application.created",
        event_type: "FinancingApplicationCreated",
        version: "1.0",
    },
    Route {
        routing_key: "insurance.policy.issued",
        event_type: "InsurancePolicyIssued",
        version: "1.0",
    },
    Route {
        routing_key: "service.booking.created",
        event_type: "ServiceBookingCreated",
        version: "1.0",
    },
    Route {
        routing_key: "inventory.vehicle.reserved",
        event_type: "VehicleReserved",
        version: "1.0",
    },
    Route {
        routing_key: "inventory.vehicle.sold",
        event_type: "VehicleSold",
        version: "1.0",
    },
];

/// Routing keys of §4.4 with no domain event in the ledger yet (documented, never emitted).
pub const UNMAPPED_ROUTING_KEYS: &[&str] = &["notification.sent", "system.error"];

fn route(routing_key: &str) -> &'static Route {
    ROUTES
        .iter()
        .find(|route| route.routing_key == routing_key)
        .expect("every mapped routing key is in ROUTES")
}

/// One message for the exchange.
#[derive(Clone, Debug, PartialEq)]
pub struct IntegrationEvent {
    pub routing_key: &'static str,
    /// The global position of the domain event: the AMQP `message_id`, and what a consumer
    /// deduplicates on.
    pub position: i64,
    /// The JSON envelope (see docs/integration-events.md).
    pub envelope: Value,
}

impl IntegrationEvent {
    /// The AMQP message id: the global position in decimal.
    pub fn message_id(&self) -> String {
        self.position.to_string()
    }

    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&self.envelope).expect("a JSON value always serializes")
    }
}

/// The integration event for one committed domain event, if it has one. Reads the log for facts the
/// domain event does not repeat (a payment's order and amount, a sold car's price), only at
/// positions before it, so the answer never changes.
pub async fn map(
    log: &EventLog,
    event: &RecordedEvent,
) -> Result<Option<IntegrationEvent>, StoreError> {
    let id = event.aggregate_id.as_str();
    let mapped: Option<(&'static str, Value)> = match event.aggregate_type.as_str() {
        "Order" => match event.decode::<OrderEvent>()? {
            OrderEvent::OrderDrafted {
                customer_id,
                vehicle_id,
                price,
                drafted_at,
            } => Some((
                "sales.order.created",
                json!({
                    "order_id": id,
                    "customer_id": customer_id,
                    "vehicle_id": vehicle_id,
                    "total_price": money(&price),
                    "created_at": drafted_at,
                }),
            )),
            OrderEvent::OrderPaid { paid_at } => Some((
                "sales.order.paid",
                json!({ "order_id": id, "paid_at": paid_at }),
            )),
            OrderEvent::OrderCancelled {
                reason,
                cancelled_at,
            } => Some((
                "sales.order.cancelled",
                json!({ "order_id": id, "reason": reason, "cancelled_at": cancelled_at }),
            )),
            _ => None,
        },
        "Payment" => match event.decode::<PaymentEvent>()? {
            PaymentEvent::PaymentCompleted { completed_at } => {
                let (order_id, amount) = payment_facts(log, event).await?;
                Some((
                    "payment.succeeded",
                    json!({
                        "payment_id": id,
                        "order_id": order_id,
                        "amount": amount,
                        "succeeded_at": completed_at,
                    }),
                ))
            }
            PaymentEvent::PaymentFailed { reason, failed_at } => {
                let (order_id, amount) = payment_facts(log, event).await?;
                Some((
                    "payment.failed",
                    json!({
                        "payment_id": id,
                        "order_id": order_id,
                        "amount": amount,
                        "reason": reason,
                        "failed_at": failed_at,
                    }),
                ))
            }
            _ => None,
        },
        "Loan" => match event.decode::<LoanEvent>()? {
            LoanEvent::LoanApplied {
                order_id,
                customer_id,
                details,
                applied_at,
            } => Some((
                "financing.application.created",
                json!({
                    "application_id": id,
                    "order_id": order_id,
                    "customer_id": customer_id,
                    "loan_amount": money(&details.loan_amount),
                    "vehicle_price": money(&details.vehicle_price),
                    "down_payment": money(&details.down_payment),
                    "term_months": details.term_months,
                    "loan_type": details.loan_type.as_str(),
                    "applied_at": applied_at,
                }),
            )),
            _ => None,
        },
        "Policy" => match event.decode::<PolicyEvent>()? {
            PolicyEvent::PolicyIssued {
                policy_number,
                insurer,
                product,
                holder,
                vehicle_id,
                period_start,
                period_end,
                coverage,
                premium,
                issued_at,
                ..
            } => Some((
                "insurance.policy.issued",
                json!({
                    "policy_id": id,
                    "policy_number": policy_number,
                    "customer_id": holder,
                    "vehicle_id": vehicle_id,
                    "insurer": insurer,
                    "product": product.as_str(),
                    "period_start": period_start,
                    "period_end": period_end,
                    "coverage": money(&coverage),
                    "premium_amount": money(&premium),
                    "issued_at": issued_at,
                }),
            )),
            _ => None,
        },
        "Booking" => match event.decode::<BookingEvent>()? {
            BookingEvent::ServiceBooked {
                customer_id,
                vehicle_id,
                kind,
                slot,
                booked_at,
                ..
            } => Some((
                "service.booking.created",
                json!({
                    "booking_id": id,
                    "customer_id": customer_id,
                    "vehicle_id": vehicle_id,
                    "service_kind": kind.as_str(),
                    "scheduled_start": slot.start(),
                    "scheduled_end": slot.end(),
                    "booked_at": booked_at,
                }),
            )),
            _ => None,
        },
        "Vehicle" => match event.decode::<VehicleEvent>()? {
            VehicleEvent::VehicleReserved { order_id } => Some((
                "inventory.vehicle.reserved",
                json!({ "vehicle_id": id, "order_id": order_id }),
            )),
            VehicleEvent::VehicleSold { order_id } => {
                let sale_price = order_total(log, &order_id.to_string(), event.position).await?;
                Some((
                    "inventory.vehicle.sold",
                    json!({ "vehicle_id": id, "order_id": order_id, "sale_price": sale_price }),
                ))
            }
            _ => None,
        },
        _ => None,
    };
    Ok(mapped.map(|(routing_key, payload)| envelope(event, route(routing_key), payload)))
}

fn envelope(event: &RecordedEvent, route: &'static Route, payload: Value) -> IntegrationEvent {
    let event_id = Uuid::new_v5(
        &EVENT_ID_NAMESPACE,
        format!(
            "{}/{}/{}",
            event.aggregate_type, event.aggregate_id, event.sequence
        )
        .as_bytes(),
    );
    IntegrationEvent {
        routing_key: route.routing_key,
        position: event.position,
        envelope: json!({
            "event_id": event_id,
            "event_type": route.event_type,
            "event_version": route.version,
            "routing_key": route.routing_key,
            "position": event.position,
            "aggregate_id": event.aggregate_id,
            "sequence": event.sequence,
            "occurred_at": crate::integration::rfc3339(event.recorded_at),
            "correlation_id": event.metadata_value(keys::CORRELATION_ID),
            "payload": payload,
        }),
    }
}

/// Money as the contract writes it: the exact amount as a decimal string with its two places, and
/// the ISO 4217 code. Never a JSON number: a consumer parsing it as a float would lose kopecks.
fn money(money: &Money) -> Value {
    json!({ "amount": money.amount().to_string(), "currency": money.currency().code() })
}

fn rfc3339(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// The order and amount a payment was initiated with (its first event).
async fn payment_facts(
    log: &EventLog,
    event: &RecordedEvent,
) -> Result<(Value, Value), StoreError> {
    let first = log
        .stream(&event.aggregate_type, &event.aggregate_id, 0, 1)
        .await?;
    match first.first().map(|first| first.decode::<PaymentEvent>()) {
        Some(Ok(PaymentEvent::PaymentInitiated {
            order_id, amount, ..
        })) => Ok((json!(order_id), money(&amount))),
        Some(Err(err)) => Err(err),
        _ => Err(StoreError::Decode {
            position: event.position,
            reason: "a payment's first event is not PaymentInitiated".into(),
        }),
    }
}

/// The total an order stood at before `before` (its price, or the total after its last discount).
async fn order_total(log: &EventLog, order_id: &str, before: i64) -> Result<Value, StoreError> {
    let mut total = Value::Null;
    let mut after = 0;
    loop {
        let events = log
            .stream("Order", order_id, after, eventstore::log::MAX_BATCH_EVENTS)
            .await?;
        let Some(last) = events.last() else {
            return Ok(total);
        };
        after = last.sequence;
        for event in events.iter().filter(|event| event.position < before) {
            match event.decode::<OrderEvent>()? {
                OrderEvent::OrderDrafted { price, .. } => total = money(&price),
                OrderEvent::DiscountApplied { total: new, .. } => total = money(&new),
                _ => {}
            }
        }
        if events.iter().any(|event| event.position >= before) {
            return Ok(total);
        }
    }
}
