//! Order: one customer buying one vehicle, from draft to completion or cancellation.
//!
//! Status machine (`NotDrafted` before the first event), all of it in one function, `transition`:
//!
//! ```text
//! NotDrafted --Draft--> Draft --Confirm--> Confirmed --MarkPaid--> Paid --HandOver--> Completed
//!                       Draft --ApplyDiscount--> Draft
//!                       Confirmed --RecordPayment--> Confirmed
//!                       Confirmed, Paid --RecordRefund--> (same)
//!                       Paid --Reopen--> Confirmed
//!                       Draft, Confirmed --Cancel--> Cancelled
//! ```
//!
//! Invariants (`handle` enforces them, `apply` re-asserts them with `debug_assert!`):
//! - the price is positive, and `0 <= total <= price` in the price's currency;
//! - `0 <= paid total <= total`; the paid total is the sum of the payments recorded less the
//!   refunds recorded, and each payment's refunds never exceed what it paid;
//! - the order is `Paid` exactly when its paid total equals its total (from confirmation until
//!   handover), except an order whose total is zero, which is never paid (see the last rule);
//! - `Completed` and `Cancelled` are terminal: every later command is refused (recording a payment
//!   or refund already recorded stays a no-op).
//!
//! Rules:
//! - A discount may be applied only to a draft. A new discount replaces the previous one, and is
//!   always computed from the drafted price: `total = price - discount_amount`. Applying the
//!   discount already in force is a no-op (succeeds, emits nothing), so a retry is safe.
//! - Stacking: an order carries one discount. A promo code's discount (one that names its
//!   promotion) replaces a discount the desk gave, but once a code's discount is in force no
//!   other discount or code replaces it (`PROMO_CODE_ALREADY_APPLIED`): the code holds a use of
//!   its promotion for this order, and the customer was promised that price.
//! - A percentage discount must be more than 0 and at most 100; its amount is rounded to kopecks
//!   by [`KOPECK_ROUNDING`](crate::money::KOPECK_ROUNDING). A fixed discount must be positive, in
//!   the price's currency, and at most the price (the total may reach zero, never below).
//! - Confirm only from `Draft`; Cancel from `Draft` or `Confirmed`, with a reason.
//! - Payments: only a `Confirmed` order takes payments. Each is recorded once, by payment id
//!   (recording it again is a no-op, so a retry is safe), in the order's currency, and never for
//!   more than the balance due (`PAYMENT_EXCEEDS_BALANCE`): a dealership does not hold a
//!   customer's overpayment on a sales order, the cashier takes the exact balance. The payment that
//!   brings the paid total to the total also makes the order `Paid` (a second event, `OrderPaid`).
//! - Refunds: only of a payment recorded on this order, each recorded once by refund id (the same
//!   id again with the same payment and amount is a no-op, with others it is refused), never more
//!   than that payment still contributes (`REFUND_EXCEEDS_PAID`), and only while the order is
//!   `Confirmed` or `Paid`: money returned after handover is an after-sales matter outside the sales
//!   order. A refund that brings a `Paid` order's paid total below its total takes it back to
//!   `Confirmed` (`OrderBalanceReopened`).
//! - Cancelling an order that holds money (paid total above zero) is refused with
//!   `REFUNDS_REQUIRED` until refunds bring the paid total to zero. A `Paid` order therefore
//!   cannot be cancelled; once fully refunded it is `Confirmed` again, and can be.
//! - HandOver only from `Paid`: the customer drives away with a fully paid car; the order is
//!   `Completed`.
//! - An order whose total is zero (a 100% discount) can never take a payment, so it never becomes
//!   `Paid` and cannot be handed over through a sales order: such a car leaves the dealership by
//!   another process, and the order is cancelled.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::money::{Currency, Money};
use crate::payment::PaymentMethodKind;

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
        /// The promotion whose code gave this discount; `None` for a discount the desk gives.
        promotion_id: Option<Uuid>,
    },
    Confirm {
        confirmed_at: DateTime<Utc>,
    },
    Cancel {
        reason: String,
        cancelled_at: DateTime<Utc>,
    },
    /// A payment towards this order completed: `amount` is what it contributes.
    RecordPayment {
        payment_id: Uuid,
        amount: Money,
        method: PaymentMethodKind,
        recorded_at: DateTime<Utc>,
    },
    /// A refund of a payment recorded on this order.
    RecordRefund {
        payment_id: Uuid,
        refund_id: Uuid,
        amount: Money,
        recorded_at: DateTime<Utc>,
    },
    /// The customer received the vehicle.
    HandOver {
        handed_over_at: DateTime<Utc>,
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
    /// Version 2.0 added `promotion_id` (1.0 payloads are upcast with none).
    DiscountApplied {
        discount: Discount,
        discount_amount: Money,
        total: Money,
        /// The promotion whose promo code gave the discount; `None` for a desk discount.
        promotion_id: Option<Uuid>,
    },
    OrderConfirmed {
        confirmed_at: DateTime<Utc>,
    },
    OrderCancelled {
        reason: String,
        cancelled_at: DateTime<Utc>,
    },
    /// `paid_total` is the paid total after this payment, recorded so readers never add up.
    OrderPaymentRecorded {
        payment_id: Uuid,
        amount: Money,
        method: PaymentMethodKind,
        paid_total: Money,
        recorded_at: DateTime<Utc>,
    },
    /// Payments now cover the total.
    OrderPaid {
        paid_at: DateTime<Utc>,
    },
    /// `paid_total` is the paid total after this refund.
    OrderRefundRecorded {
        payment_id: Uuid,
        refund_id: Uuid,
        amount: Money,
        paid_total: Money,
        recorded_at: DateTime<Utc>,
    },
    /// A refund took a paid order's paid total below its total: it is `Confirmed` again.
    OrderBalanceReopened {
        reopened_at: DateTime<Utc>,
    },
    OrderHandedOver {
        handed_over_at: DateTime<Utc>,
    },
}

impl DomainEvent for OrderEvent {
    fn event_type(&self) -> String {
        let name = match self {
            OrderEvent::OrderDrafted { .. } => "OrderDrafted",
            OrderEvent::DiscountApplied { .. } => "DiscountApplied",
            OrderEvent::OrderConfirmed { .. } => "OrderConfirmed",
            OrderEvent::OrderCancelled { .. } => "OrderCancelled",
            OrderEvent::OrderPaymentRecorded { .. } => "OrderPaymentRecorded",
            OrderEvent::OrderPaid { .. } => "OrderPaid",
            OrderEvent::OrderRefundRecorded { .. } => "OrderRefundRecorded",
            OrderEvent::OrderBalanceReopened { .. } => "OrderBalanceReopened",
            OrderEvent::OrderHandedOver { .. } => "OrderHandedOver",
        };
        name.to_owned()
    }

    fn event_version(&self) -> String {
        match self {
            OrderEvent::DiscountApplied { .. } => ORDER_EVENT_VERSION_2.to_owned(),
            _ => "1.0".to_owned(),
        }
    }
}

/// The version of `DiscountApplied` since it names its promotion (see [`upcasters`]).
pub const ORDER_EVENT_VERSION_2: &str = "2.0";

/// Upcasters of order events stored at version 1.0: `DiscountApplied` gains `promotion_id: null`
/// (every 1.0 discount was the desk's).
pub fn upcasters() -> Vec<Box<dyn cqrs_es::persist::EventUpcaster>> {
    use cqrs_es::persist::SemanticVersionEventUpcaster;
    use serde_json::{Value, json};
    let discount = SemanticVersionEventUpcaster::new(
        "DiscountApplied",
        ORDER_EVENT_VERSION_2,
        Box::new(|mut payload: Value| {
            if let Some(body) = payload
                .get_mut("DiscountApplied")
                .and_then(Value::as_object_mut)
            {
                body.insert("promotion_id".into(), json!(null));
            }
            payload
        }),
    );
    vec![Box::new(discount)]
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
    /// A payment or refund of zero or less. The caller asks for a positive amount.
    #[error("amount must be greater than zero")]
    NonPositiveAmount,
    /// A payment larger than what is still due. The caller pays at most `balance`.
    #[error("payment {amount} exceeds the balance due {balance}")]
    PaymentExceedsBalance { amount: Money, balance: Money },
    /// A refund of a payment that was never recorded on this order. The caller checks the payment
    /// belongs to the order (or records it first with `recordPaymentOnOrder`).
    #[error("payment {payment_id} is not recorded on this order")]
    PaymentNotRecorded { payment_id: Uuid },
    /// A refund larger than what that payment still contributes to the order. The caller refunds
    /// at most `recorded`.
    #[error("refund {amount} exceeds what the payment still contributes ({recorded})")]
    RefundExceedsPaid { amount: Money, recorded: Money },
    /// This refund id was already recorded for another payment or amount. The caller uses a new
    /// refund id for a new refund.
    #[error("refund {refund_id} was already recorded with other details")]
    RefundIdReused { refund_id: Uuid },
    /// Cancelling an order that still holds the customer's money. The caller refunds the payments
    /// first (the order shows its paid total), then cancels.
    #[error("the order holds {paid_total} paid; refund it before cancelling")]
    RefundsRequired { paid_total: Money },
    /// A promo code's discount is in force; no other discount or code replaces it (the stacking
    /// rule). The caller cancels the order and drafts a new one to change the price.
    #[error("promotion {promotion_id}'s promo code is applied to this order; its discount stays")]
    PromoCodeApplied { promotion_id: Uuid },
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
            OrderError::NonPositiveAmount | OrderError::RefundIdReused { .. } => "VALIDATION",
            OrderError::PaymentExceedsBalance { .. } => "PAYMENT_EXCEEDS_BALANCE",
            OrderError::PaymentNotRecorded { .. } => "PAYMENT_NOT_RECORDED",
            OrderError::RefundExceedsPaid { .. } => "REFUND_EXCEEDS_PAID",
            OrderError::RefundsRequired { .. } => "REFUNDS_REQUIRED",
            OrderError::PromoCodeApplied { .. } => "PROMO_CODE_ALREADY_APPLIED",
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
    RecordPayment,
    /// Payments cover the total.
    MarkPaid,
    RecordRefund,
    /// A refund uncovered part of the total again.
    Reopen,
    HandOver,
}

impl Action {
    /// The verb phrase in [`OrderError::InvalidTransition`].
    fn name(self) -> &'static str {
        match self {
            Action::Draft => "draft",
            Action::ApplyDiscount => "apply a discount",
            Action::Confirm => "confirm",
            Action::Cancel => "cancel",
            Action::RecordPayment => "record a payment",
            Action::MarkPaid => "mark as paid",
            Action::RecordRefund => "record a refund",
            Action::Reopen => "reopen the balance",
            Action::HandOver => "hand over",
        }
    }
}

/// The whole status machine: the status an order moves to when `action` is taken from `from`, or
/// why it may not be.
fn transition(from: OrderStatus, action: Action) -> Result<OrderStatus, OrderError> {
    use OrderStatus::{Cancelled, Completed, Confirmed, Draft, NotDrafted, Paid};
    match (from, action) {
        (NotDrafted, Action::Draft) => Ok(Draft),
        (_, Action::Draft) => Err(OrderError::AlreadyDrafted),
        (NotDrafted, _) => Err(OrderError::NotDrafted),
        (Draft, Action::ApplyDiscount) => Ok(Draft),
        (Draft, Action::Confirm) => Ok(Confirmed),
        (Draft | Confirmed, Action::Cancel) => Ok(Cancelled),
        (Confirmed, Action::RecordPayment) => Ok(Confirmed),
        (Confirmed, Action::MarkPaid) => Ok(Paid),
        (Confirmed, Action::RecordRefund) => Ok(Confirmed),
        (Paid, Action::RecordRefund) => Ok(Paid),
        (Paid, Action::Reopen) => Ok(Confirmed),
        (Paid, Action::HandOver) => Ok(Completed),
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
    /// The promotion whose code gave the discount in force (the stacking rule reads it; a
    /// cancellation gives its use back).
    #[serde(default)]
    promotion_id: Option<Uuid>,
    /// `price` less the discount in force.
    total: Option<Money>,
    /// Payments recorded less refunds recorded (zero from the draft on; absent in snapshots taken
    /// before payments existed, which [`Order::paid_total`] reads as zero).
    #[serde(default)]
    paid_total: Option<Money>,
    /// What each recorded payment still contributes (its amount less its refunds), by payment id.
    #[serde(default)]
    payments: BTreeMap<Uuid, Money>,
    /// Refunds recorded (payment and amount, by refund id), so recording one again is a no-op.
    #[serde(default)]
    refunds: BTreeMap<Uuid, (Uuid, Money)>,
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

    /// The promotion whose promo code gave the discount in force.
    pub fn promotion_id(&self) -> Option<Uuid> {
        self.promotion_id
    }

    /// Payments recorded less refunds recorded.
    pub fn paid_total(&self) -> Option<Money> {
        self.paid_total
            .or_else(|| self.total.map(|total| Money::zero(total.currency())))
    }

    /// What is still to pay: the total less the paid total.
    pub fn balance_due(&self) -> Option<Money> {
        self.total?.checked_sub(self.paid_total()?).ok()
    }

    /// What a recorded payment still contributes; `None` when it was never recorded here.
    pub fn recorded_payment(&self, payment_id: Uuid) -> Option<Money> {
        self.payments.get(&payment_id).copied()
    }

    /// Whether this refund was recorded here.
    pub fn has_refund(&self, refund_id: Uuid) -> bool {
        self.refunds.contains_key(&refund_id)
    }

    /// Whether a new payment of `amount` would be recorded now, and if not, why. The command layer
    /// asks before any money moves, so a refusal leaves nothing to undo.
    pub fn check_payment(&self, payment_id: Uuid, amount: Money) -> Result<(), OrderError> {
        self.decide_payment(
            payment_id,
            amount,
            PaymentMethodKind::Cash,
            DateTime::<Utc>::MIN_UTC,
        )
        .map(drop)
    }

    /// Whether this refund would be recorded now, and if not, why (asked before the money moves).
    pub fn check_refund(
        &self,
        payment_id: Uuid,
        refund_id: Uuid,
        amount: Money,
    ) -> Result<(), OrderError> {
        self.decide_refund(payment_id, refund_id, amount, DateTime::<Utc>::MIN_UTC)
            .map(drop)
    }

    /// Decides on `command`: the events it causes (none for a no-op), or why it is refused.
    fn decide(&self, command: OrderCommand) -> Result<Vec<OrderEvent>, OrderError> {
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
            OrderCommand::ApplyDiscount {
                discount,
                promotion_id,
            } => {
                transition(self.status, Action::ApplyDiscount)?;
                if self.discount.as_ref() == Some(&discount) && self.promotion_id == promotion_id {
                    return Ok(Vec::new());
                }
                if let Some(in_force) = self.promotion_id {
                    return Err(OrderError::PromoCodeApplied {
                        promotion_id: in_force,
                    });
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
                    promotion_id,
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
                if let Some(paid_total) = self.paid_total().filter(Money::is_positive)
                    && matches!(self.status, OrderStatus::Confirmed | OrderStatus::Paid)
                {
                    return Err(OrderError::RefundsRequired { paid_total });
                }
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
            OrderCommand::RecordPayment {
                payment_id,
                amount,
                method,
                recorded_at,
            } => return self.decide_payment(payment_id, amount, method, recorded_at),
            OrderCommand::RecordRefund {
                payment_id,
                refund_id,
                amount,
                recorded_at,
            } => return self.decide_refund(payment_id, refund_id, amount, recorded_at),
            OrderCommand::HandOver { handed_over_at } => {
                transition(self.status, Action::HandOver)?;
                Some(OrderEvent::OrderHandedOver { handed_over_at })
            }
        };
        Ok(event.into_iter().collect())
    }

    fn decide_payment(
        &self,
        payment_id: Uuid,
        amount: Money,
        method: PaymentMethodKind,
        recorded_at: DateTime<Utc>,
    ) -> Result<Vec<OrderEvent>, OrderError> {
        if self.status != OrderStatus::NotDrafted && self.payments.contains_key(&payment_id) {
            return Ok(Vec::new());
        }
        transition(self.status, Action::RecordPayment)?;
        let (Some(total), Some(paid)) = (self.total, self.paid_total()) else {
            return Err(OrderError::NotDrafted);
        };
        self.check_amount(amount, total)?;
        // Cannot fail: same currency, 0 <= paid <= total.
        let balance = total
            .checked_sub(paid)
            .map_err(|_| OrderError::NotDrafted)?;
        if amount.minor_units() > balance.minor_units() {
            return Err(OrderError::PaymentExceedsBalance { amount, balance });
        }
        let paid_total = paid
            .checked_add(amount)
            .map_err(|_| OrderError::PaymentExceedsBalance { amount, balance })?;
        let mut events = vec![OrderEvent::OrderPaymentRecorded {
            payment_id,
            amount,
            method,
            paid_total,
            recorded_at,
        }];
        if paid_total == total {
            transition(OrderStatus::Confirmed, Action::MarkPaid)?;
            events.push(OrderEvent::OrderPaid {
                paid_at: recorded_at,
            });
        }
        Ok(events)
    }

    fn decide_refund(
        &self,
        payment_id: Uuid,
        refund_id: Uuid,
        amount: Money,
        recorded_at: DateTime<Utc>,
    ) -> Result<Vec<OrderEvent>, OrderError> {
        if let Some(&recorded) = self.refunds.get(&refund_id) {
            return if recorded == (payment_id, amount) {
                Ok(Vec::new())
            } else {
                Err(OrderError::RefundIdReused { refund_id })
            };
        }
        let status = transition(self.status, Action::RecordRefund)?;
        let Some(recorded) = self.payments.get(&payment_id).copied() else {
            return Err(OrderError::PaymentNotRecorded { payment_id });
        };
        let (Some(total), Some(paid)) = (self.total, self.paid_total()) else {
            return Err(OrderError::NotDrafted);
        };
        self.check_amount(amount, total)?;
        if amount.minor_units() > recorded.minor_units() {
            return Err(OrderError::RefundExceedsPaid { amount, recorded });
        }
        // Cannot fail: the amount is at most what this payment contributes to the paid total.
        let paid_total = paid
            .checked_sub(amount)
            .map_err(|_| OrderError::RefundExceedsPaid { amount, recorded })?;
        let mut events = vec![OrderEvent::OrderRefundRecorded {
            payment_id,
            refund_id,
            amount,
            paid_total,
            recorded_at,
        }];
        if status == OrderStatus::Paid && paid_total != total {
            transition(status, Action::Reopen)?;
            events.push(OrderEvent::OrderBalanceReopened {
                reopened_at: recorded_at,
            });
        }
        Ok(events)
    }

    /// A payment or refund amount: positive and in the order's currency.
    fn check_amount(&self, amount: Money, total: Money) -> Result<(), OrderError> {
        if !amount.is_positive() {
            return Err(OrderError::NonPositiveAmount);
        }
        if amount.currency() != total.currency() {
            return Err(OrderError::CurrencyMismatch {
                expected: total.currency(),
                found: amount.currency(),
            });
        }
        Ok(())
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
        for event in self.decide(command)? {
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
                self.paid_total = Some(Money::zero(price.currency()));
            }
            OrderEvent::DiscountApplied {
                discount,
                discount_amount,
                total,
                promotion_id,
            } => {
                self.advance(Action::ApplyDiscount, OrderStatus::Draft);
                debug_assert!(
                    self.promotion_id.is_none() || self.promotion_id == promotion_id,
                    "a promo code's discount was replaced"
                );
                debug_assert!(!total.is_negative(), "total {total} below zero");
                debug_assert_eq!(
                    self.price.map(|price| price.checked_sub(discount_amount)),
                    Some(Ok(total)),
                    "total is not price less discount"
                );
                self.discount = Some(discount);
                self.total = Some(total);
                self.promotion_id = promotion_id;
            }
            OrderEvent::OrderConfirmed { .. } => {
                self.advance(Action::Confirm, OrderStatus::Confirmed);
            }
            OrderEvent::OrderCancelled { .. } => {
                debug_assert!(
                    self.paid_total().is_none_or(|paid| paid.is_zero()),
                    "cancelled while holding money"
                );
                self.advance(Action::Cancel, OrderStatus::Cancelled);
            }
            OrderEvent::OrderPaymentRecorded {
                payment_id,
                amount,
                paid_total,
                ..
            } => {
                self.advance(Action::RecordPayment, OrderStatus::Confirmed);
                debug_assert_eq!(
                    self.paid_total().map(|paid| paid.checked_add(amount)),
                    Some(Ok(paid_total)),
                    "paid total is not the sum of the payments"
                );
                debug_assert!(
                    self.total
                        .is_some_and(|total| paid_total.minor_units() <= total.minor_units()),
                    "paid more than the total"
                );
                self.paid_total = Some(paid_total);
                self.payments.insert(payment_id, amount);
            }
            OrderEvent::OrderPaid { .. } => {
                debug_assert_eq!(
                    self.paid_total(),
                    self.total,
                    "paid before covering the total"
                );
                self.advance(Action::MarkPaid, OrderStatus::Paid);
            }
            OrderEvent::OrderRefundRecorded {
                payment_id,
                refund_id,
                amount,
                paid_total,
                ..
            } => {
                self.advance(Action::RecordRefund, self.status);
                debug_assert_eq!(
                    self.paid_total().map(|paid| paid.checked_sub(amount)),
                    Some(Ok(paid_total)),
                    "paid total is not payments less refunds"
                );
                self.paid_total = Some(paid_total);
                if let Some(recorded) = self.payments.get_mut(&payment_id) {
                    debug_assert!(amount.minor_units() <= recorded.minor_units());
                    *recorded = recorded.checked_sub(amount).unwrap_or(*recorded);
                } else {
                    debug_assert!(false, "refund of payment {payment_id} never recorded");
                }
                self.refunds.insert(refund_id, (payment_id, amount));
            }
            OrderEvent::OrderBalanceReopened { .. } => {
                debug_assert_ne!(self.paid_total(), self.total, "reopened while fully paid");
                self.advance(Action::Reopen, OrderStatus::Confirmed);
            }
            OrderEvent::OrderHandedOver { .. } => {
                self.advance(Action::HandOver, OrderStatus::Completed);
            }
        }
    }
}

#[cfg(test)]
mod tests;
