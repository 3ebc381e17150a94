//! Order: one customer buying one vehicle, from draft to completion or cancellation.
//!
//! Status machine (`NotDrafted` before the first event), all of it in one function, `transition`:
//!
//! ```text
//! NotDrafted --Draft--> Draft --Confirm--> Confirmed --(payment, later)--> Paid --> Completed
//!                       Draft --ApplyDiscount--> Draft
//!                       Draft, Confirmed --Cancel--> Cancelled
//! ```
//!
//! Invariants (`handle` enforces them, `apply` re-asserts them with `debug_assert!`):
//! - the price is positive, and `0 <= total <= price` in the price's currency;
//! - `Completed` and `Cancelled` are terminal: every later command is refused.
//!
//! Rules:
//! - A discount may be applied only to a draft. A new discount replaces the previous one, and is
//!   always computed from the drafted price: `total = price - discount_amount`. Applying the
//!   discount already in force is a no-op (succeeds, emits nothing), so a retry is safe.
//! - A percentage discount must be more than 0 and at most 100; its amount is rounded to kopecks
//!   by [`KOPECK_ROUNDING`](crate::money::KOPECK_ROUNDING). A fixed discount must be positive, in
//!   the price's currency, and at most the price (the total may reach zero, never below).
//! - Confirm only from `Draft`; Cancel from `Draft` or `Confirmed`, with a reason. A `Paid`
//!   order will need a refund before it can be cancelled (a later change adds that edge), so
//!   cancelling it is refused for now.

use std::fmt;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::money::{Currency, Money};

/// A reduction of the order's price.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Discount {
    /// `percent` per cent of the drafted price, e.g. `12.5`.
    Percentage { percent: Decimal },
    /// A fixed amount off, in the price's currency.
    Fixed { amount: Money },
}

/// Where an order is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum OrderStatus {
    /// No event yet: the order does not exist as far as the ledger knows.
    #[default]
    NotDrafted,
    Draft,
    Confirmed,
    Paid,
    Completed,
    Cancelled,
}

impl OrderStatus {
    /// The stable upper-case name used by the API and the read models.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::NotDrafted => "NOT_DRAFTED",
            OrderStatus::Draft => "DRAFT",
            OrderStatus::Confirmed => "CONFIRMED",
            OrderStatus::Paid => "PAID",
            OrderStatus::Completed => "COMPLETED",
            OrderStatus::Cancelled => "CANCELLED",
        }
    }

    /// Completed and cancelled orders accept no further command.
    pub fn is_terminal(self) -> bool {
        matches!(self, OrderStatus::Completed | OrderStatus::Cancelled)
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum OrderCommand {
    Draft {
        customer_id: Uuid,
        vehicle_id: Uuid,
        /// The agreed price before any discount (usually the vehicle's list price).
        price: Money,
        drafted_at: DateTime<Utc>,
    },
    ApplyDiscount {
        discount: Discount,
    },
    Confirm {
        confirmed_at: DateTime<Utc>,
    },
    Cancel {
        reason: String,
        cancelled_at: DateTime<Utc>,
    },
}

/// What happened to an order. The payloads are a public contract: see [`crate::upcasters`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum OrderEvent {
    OrderDrafted {
        customer_id: Uuid,
        vehicle_id: Uuid,
        price: Money,
        drafted_at: DateTime<Utc>,
    },
    /// Replaces any earlier discount. `discount_amount` and `total` are recorded, not recomputed
    /// on replay, so a later change to the rounding rule never rewrites history.
    DiscountApplied {
        discount: Discount,
        discount_amount: Money,
        total: Money,
    },
    OrderConfirmed {
        confirmed_at: DateTime<Utc>,
    },
    OrderCancelled {
        reason: String,
        cancelled_at: DateTime<Utc>,
    },
}

impl DomainEvent for OrderEvent {
    fn event_type(&self) -> String {
        let name = match self {
            OrderEvent::OrderDrafted { .. } => "OrderDrafted",
            OrderEvent::DiscountApplied { .. } => "DiscountApplied",
            OrderEvent::OrderConfirmed { .. } => "OrderConfirmed",
            OrderEvent::OrderCancelled { .. } => "OrderCancelled",
        };
        name.to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

/// Why an order command was refused. Nothing was emitted; the order is unchanged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OrderError {
    /// The order was never drafted. The caller reports "not found" (a wrong id).
    #[error("order not found")]
    NotDrafted,
    /// An order with this id already exists. The caller reports a conflict (a reused id).
    #[error("order already exists")]
    AlreadyDrafted,
    /// A price of zero or less. The caller asks for a positive price.
    #[error("price must be greater than zero")]
    NonPositivePrice,
    /// A percentage outside `(0, 100]`. The caller asks for a percentage in that range.
    #[error("a discount of {percent}% is not possible: it must be more than 0 and at most 100")]
    InvalidPercentage { percent: Decimal },
    /// A fixed discount of zero or less. The caller asks for a positive amount.
    #[error("discount amount must be greater than zero")]
    NonPositiveDiscount,
    /// A fixed discount larger than the price. The caller asks for a smaller discount; the total
    /// may reach zero but never go below it.
    #[error("discount {discount} exceeds the price {price}")]
    DiscountExceedsPrice { discount: Money, price: Money },
    /// An amount in another currency than the order's price. The caller converts it first.
    #[error("amount is in {found} but the order is priced in {expected}")]
    CurrencyMismatch { expected: Currency, found: Currency },
    /// Cancelling without a reason. The caller asks for one.
    #[error("a reason for cancelling is required")]
    EmptyReason,
    /// The order's status does not allow this (e.g. confirming a cancelled order). The caller
    /// reports a conflict and shows the status; retrying will not help.
    #[error("cannot {action}: the order is {from}")]
    InvalidTransition {
        from: OrderStatus,
        action: &'static str,
    },
}

impl OrderError {
    /// A stable, machine-readable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            OrderError::NotDrafted => "NOT_FOUND",
            OrderError::AlreadyDrafted => "ORDER_ALREADY_EXISTS",
            OrderError::NonPositivePrice
            | OrderError::InvalidPercentage { .. }
            | OrderError::NonPositiveDiscount
            | OrderError::CurrencyMismatch { .. }
            | OrderError::EmptyReason => "VALIDATION",
            OrderError::DiscountExceedsPrice { .. } => "DISCOUNT_EXCEEDS_PRICE",
            OrderError::InvalidTransition { .. } => "INVALID_ORDER_TRANSITION",
        }
    }
}

/// What a command asks the status machine to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Draft,
    ApplyDiscount,
    Confirm,
    Cancel,
}

impl Action {
    /// The verb phrase in [`OrderError::InvalidTransition`].
    fn name(self) -> &'static str {
        match self {
            Action::Draft => "draft",
            Action::ApplyDiscount => "apply a discount",
            Action::Confirm => "confirm",
            Action::Cancel => "cancel",
        }
    }
}

/// The whole status machine: the status an order moves to when `action` is taken from `from`, or
/// why it may not be. Payments and completion add their edges here.
fn transition(from: OrderStatus, action: Action) -> Result<OrderStatus, OrderError> {
    use OrderStatus::{Cancelled, Confirmed, Draft, NotDrafted};
    match (from, action) {
        (NotDrafted, Action::Draft) => Ok(Draft),
        (_, Action::Draft) => Err(OrderError::AlreadyDrafted),
        (NotDrafted, _) => Err(OrderError::NotDrafted),
        (Draft, Action::ApplyDiscount) => Ok(Draft),
        (Draft, Action::Confirm) => Ok(Confirmed),
        (Draft | Confirmed, Action::Cancel) => Ok(Cancelled),
        (from, action) => Err(OrderError::InvalidTransition {
            from,
            action: action.name(),
        }),
    }
}

/// The state an order's decisions need.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Order {
    status: OrderStatus,
    customer_id: Option<Uuid>,
    vehicle_id: Option<Uuid>,
    /// The drafted price: every discount is computed from it.
    price: Option<Money>,
    /// The discount in force, so applying it again is recognised as a no-op.
    discount: Option<Discount>,
    /// `price` less the discount in force.
    total: Option<Money>,
}

impl Order {
    pub fn status(&self) -> OrderStatus {
        self.status
    }

    pub fn customer_id(&self) -> Option<Uuid> {
        self.customer_id
    }

    pub fn vehicle_id(&self) -> Option<Uuid> {
        self.vehicle_id
    }

    pub fn price(&self) -> Option<Money> {
        self.price
    }

    pub fn total(&self) -> Option<Money> {
        self.total
    }

    pub fn discount(&self) -> Option<&Discount> {
        self.discount.as_ref()
    }

    /// Decides on `command`: the event it causes, `None` for a no-op, or why it is refused.
    fn decide(&self, command: OrderCommand) -> Result<Option<OrderEvent>, OrderError> {
        let event = match command {
            OrderCommand::Draft {
                customer_id,
                vehicle_id,
                price,
                drafted_at,
            } => {
                transition(self.status, Action::Draft)?;
                if !price.is_positive() {
                    return Err(OrderError::NonPositivePrice);
                }
                Some(OrderEvent::OrderDrafted {
                    customer_id,
                    vehicle_id,
                    price,
                    drafted_at,
                })
            }
            OrderCommand::ApplyDiscount { discount } => {
                transition(self.status, Action::ApplyDiscount)?;
                if self.discount.as_ref() == Some(&discount) {
                    return Ok(None);
                }
                let price = self.price.ok_or(OrderError::NotDrafted)?;
                let discount_amount = discount_amount(&discount, price)?;
                // Cannot fail: the amount is in the price's currency and at most the price.
                let total = price.checked_sub(discount_amount).map_err(|_| {
                    OrderError::DiscountExceedsPrice {
                        discount: discount_amount,
                        price,
                    }
                })?;
                Some(OrderEvent::DiscountApplied {
                    discount,
                    discount_amount,
                    total,
                })
            }
            OrderCommand::Confirm { confirmed_at } => {
                transition(self.status, Action::Confirm)?;
                Some(OrderEvent::OrderConfirmed { confirmed_at })
            }
            OrderCommand::Cancel {
                reason,
                cancelled_at,
            } => {
                transition(self.status, Action::Cancel)?;
                let reason = reason.trim();
                if reason.is_empty() {
                    return Err(OrderError::EmptyReason);
                }
                Some(OrderEvent::OrderCancelled {
                    reason: reason.to_owned(),
                    cancelled_at,
                })
            }
        };
        Ok(event)
    }

    /// Moves to `to`, re-asserting that the status machine allows it.
    fn advance(&mut self, action: Action, to: OrderStatus) {
        debug_assert_eq!(transition(self.status, action), Ok(to), "{action:?}");
        self.status = to;
    }
}

/// How much `discount` takes off `price`, or why it cannot be applied.
fn discount_amount(discount: &Discount, price: Money) -> Result<Money, OrderError> {
    match *discount {
        Discount::Percentage { percent } => {
            if percent <= Decimal::ZERO || percent > Decimal::ONE_HUNDRED {
                return Err(OrderError::InvalidPercentage { percent });
            }
            // Cannot overflow: at most 100% of the price.
            price
                .checked_percentage(percent)
                .map_err(|_| OrderError::InvalidPercentage { percent })
        }
        Discount::Fixed { amount } => {
            if !amount.is_positive() {
                return Err(OrderError::NonPositiveDiscount);
            }
            if amount.currency() != price.currency() {
                return Err(OrderError::CurrencyMismatch {
                    expected: price.currency(),
                    found: amount.currency(),
                });
            }
            if amount.amount() > price.amount() {
                return Err(OrderError::DiscountExceedsPrice {
                    discount: amount,
                    price,
                });
            }
            Ok(amount)
        }
    }
}

impl Aggregate for Order {
    const TYPE: &'static str = "Order";
    type Command = OrderCommand;
    type Event = OrderEvent;
    type Error = OrderError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        if let Some(event) = self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    /// Folds an event in. Never fails: stored history is the truth.
    fn apply(&mut self, event: Self::Event) {
        match event {
            OrderEvent::OrderDrafted {
                customer_id,
                vehicle_id,
                price,
                ..
            } => {
                self.advance(Action::Draft, OrderStatus::Draft);
                self.customer_id = Some(customer_id);
                self.vehicle_id = Some(vehicle_id);
                self.price = Some(price);
                self.total = Some(price);
                self.discount = None;
            }
            OrderEvent::DiscountApplied {
                discount,
                discount_amount,
                total,
            } => {
                self.advance(Action::ApplyDiscount, OrderStatus::Draft);
                debug_assert!(!total.is_negative(), "total {total} below zero");
                debug_assert_eq!(
                    self.price.map(|price| price.checked_sub(discount_amount)),
                    Some(Ok(total)),
                    "total is not price less discount"
                );
                self.discount = Some(discount);
                self.total = Some(total);
            }
            OrderEvent::OrderConfirmed { .. } => {
                self.advance(Action::Confirm, OrderStatus::Confirmed);
            }
            OrderEvent::OrderCancelled { .. } => {
                self.advance(Action::Cancel, OrderStatus::Cancelled);
            }
        }
    }
}

#[cfg(test)]
mod tests;
