//! Payment: one movement of the customer's money towards one order, and any refunds of it.
//!
//! Status machine (`NotInitiated` before the first event), all of it in one function, `transition`:
//!
//! ```text
//! NotInitiated --Initiate--> Pending
//! Pending    --StartProcessing--> Processing        (card and bank transfer only)
//! Processing --Complete--> Completed                (card and bank transfer)
//! Pending    --Complete--> Completed                (cash and credit only)
//! Pending, Processing --Fail--> Failed              (terminal)
//! Pending    --Cancel--> Cancelled                  (terminal)
//! Completed  --Refund--> Completed | Refunded       (Refunded once the whole amount is back; terminal)
//! ```
//!
//! Invariants (`handle` enforces them, `apply` re-asserts them with `debug_assert!`):
//! - the amount is positive and in whole kopecks;
//! - `0 <= refunded total <= amount`, in the payment's currency; the status is `Refunded` exactly
//!   when the refunded total equals the amount;
//! - a card payment carries only the card's last four digits ([`CardLast4`]), never the number.
//!
//! Rules (decided for the dealership's cashiers and its finance staff):
//! - Card and bank-transfer payments go through an external gateway: they must start processing,
//!   which records the gateway's transaction id, before they can complete. Cash (counted at the
//!   till) and credit (the lender's disbursement, carrying the loan id) complete straight from
//!   `Pending`; they never go through a gateway.
//! - Only a `Pending` payment can be cancelled (nobody has touched the money yet). A `Processing`
//!   payment is in the gateway's hands: it completes or fails, it is never cancelled.
//! - Refunds: only of a completed payment, partial or whole, each with its own refund id and a
//!   reason, in the payment's currency. The refunds together never exceed the amount paid
//!   (`REFUND_EXCEEDS_PAID`). Recording a refund id again with the same amount and reason is a
//!   no-op (a safe retry); the same refund id with other details is refused.
//! - Starting processing again with the same gateway transaction id is a no-op; with another id it
//!   is refused as a transition error (the gateway reported two transactions for one payment).

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::money::{Currency, Money};

/// The longest gateway transaction id accepted.
pub const MAX_GATEWAY_TRANSACTION_ID_CHARS: usize = 100;

/// The last four digits of a payment card: exactly four ASCII digits, nothing else.
///
/// This is the only trace of a card the ledger keeps. Deserialization validates too, so a stored
/// event can never carry more.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CardLast4(String);

/// Why a card's last four digits were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardLast4Error {
    /// Not exactly four digits. The caller asks for the last four digits of the card.
    #[error("cardLast4 must be exactly 4 digits")]
    NotFourDigits,
}

impl CardLast4 {
    pub fn parse(text: &str) -> Result<Self, CardLast4Error> {
        if text.len() == 4 && text.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(text.to_owned()))
        } else {
            Err(CardLast4Error::NotFourDigits)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CardLast4 {
    type Error = CardLast4Error;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        CardLast4::parse(&text)
    }
}

impl From<CardLast4> for String {
    fn from(last4: CardLast4) -> Self {
        last4.0
    }
}

/// How the customer pays, with what each way of paying needs to carry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentMethod {
    Card {
        last4: CardLast4,
    },
    BankTransfer,
    Cash,
    /// A loan disbursed by a lender straight to the dealership.
    Credit {
        loan_id: Uuid,
    },
}

impl PaymentMethod {
    pub fn kind(&self) -> PaymentMethodKind {
        match self {
            PaymentMethod::Card { .. } => PaymentMethodKind::Card,
            PaymentMethod::BankTransfer => PaymentMethodKind::BankTransfer,
            PaymentMethod::Cash => PaymentMethodKind::Cash,
            PaymentMethod::Credit { .. } => PaymentMethodKind::Credit,
        }
    }
}

/// The way of paying without its details: what an order records about a payment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PaymentMethodKind {
    Card,
    BankTransfer,
    Cash,
    Credit,
}

impl PaymentMethodKind {
    /// The stable upper-case name used by the API and the read models.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentMethodKind::Card => "CARD",
            PaymentMethodKind::BankTransfer => "BANK_TRANSFER",
            PaymentMethodKind::Cash => "CASH",
            PaymentMethodKind::Credit => "CREDIT",
        }
    }

    /// Card and bank transfer go through an external gateway and must be processing first.
    pub fn uses_gateway(self) -> bool {
        matches!(
            self,
            PaymentMethodKind::Card | PaymentMethodKind::BankTransfer
        )
    }
}

/// Where a payment is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum PaymentStatus {
    /// No event yet: the payment does not exist as far as the ledger knows.
    #[default]
    NotInitiated,
    Pending,
    Processing,
    Completed,
    Failed,
    Cancelled,
    /// Completed, then refunded in full.
    Refunded,
}

impl PaymentStatus {
    /// The stable upper-case name used by the API and the read models.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::NotInitiated => "NOT_INITIATED",
            PaymentStatus::Pending => "PENDING",
            PaymentStatus::Processing => "PROCESSING",
            PaymentStatus::Completed => "COMPLETED",
            PaymentStatus::Failed => "FAILED",
            PaymentStatus::Cancelled => "CANCELLED",
            PaymentStatus::Refunded => "REFUNDED",
        }
    }

    /// Failed, cancelled and fully refunded payments accept no further command.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            PaymentStatus::Failed | PaymentStatus::Cancelled | PaymentStatus::Refunded
        )
    }
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum PaymentCommand {
    Initiate {
        order_id: Uuid,
        customer_id: Uuid,
        amount: Money,
        method: PaymentMethod,
        initiated_at: DateTime<Utc>,
    },
    StartProcessing {
        gateway_transaction_id: String,
        started_at: DateTime<Utc>,
    },
    Complete {
        completed_at: DateTime<Utc>,
    },
    Fail {
        reason: String,
        failed_at: DateTime<Utc>,
    },
    Cancel {
        reason: String,
        cancelled_at: DateTime<Utc>,
    },
    Refund {
        refund_id: Uuid,
        amount: Money,
        reason: String,
        refunded_at: DateTime<Utc>,
    },
}

/// What happened to a payment. The payloads are a public contract: see [`crate::upcasters`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum PaymentEvent {
    PaymentInitiated {
        order_id: Uuid,
        customer_id: Uuid,
        amount: Money,
        method: PaymentMethod,
        initiated_at: DateTime<Utc>,
    },
    PaymentProcessingStarted {
        gateway_transaction_id: String,
        started_at: DateTime<Utc>,
    },
    PaymentCompleted {
        completed_at: DateTime<Utc>,
    },
    PaymentFailed {
        reason: String,
        failed_at: DateTime<Utc>,
    },
    PaymentCancelled {
        reason: String,
        cancelled_at: DateTime<Utc>,
    },
    /// `refunded_total` is the sum of every refund so far, this one included, recorded so readers
    /// never have to add them up.
    PaymentRefunded {
        refund_id: Uuid,
        amount: Money,
        reason: String,
        refunded_total: Money,
        refunded_at: DateTime<Utc>,
    },
}

impl DomainEvent for PaymentEvent {
    fn event_type(&self) -> String {
        let name = match self {
            PaymentEvent::PaymentInitiated { .. } => "PaymentInitiated",
            PaymentEvent::PaymentProcessingStarted { .. } => "PaymentProcessingStarted",
            PaymentEvent::PaymentCompleted { .. } => "PaymentCompleted",
            PaymentEvent::PaymentFailed { .. } => "PaymentFailed",
            PaymentEvent::PaymentCancelled { .. } => "PaymentCancelled",
            PaymentEvent::PaymentRefunded { .. } => "PaymentRefunded",
        };
        name.to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

/// Why a payment command was refused. Nothing was emitted; the payment is unchanged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PaymentError {
    /// The payment was never initiated. The caller reports "not found" (a wrong id).
    #[error("payment not found")]
    NotInitiated,
    /// A payment with this id already exists. The caller reports a conflict (a reused id).
    #[error("payment already exists")]
    AlreadyInitiated,
    /// An amount of zero or less. The caller asks for a positive amount.
    #[error("amount must be greater than zero")]
    NonPositiveAmount,
    /// An amount in another currency than the payment's. The caller converts it first.
    #[error("amount is in {found} but the payment is in {expected}")]
    CurrencyMismatch { expected: Currency, found: Currency },
    /// An empty or over-long gateway transaction id. The caller passes the gateway's id as given.
    #[error("gatewayTransactionId must be 1 to {MAX_GATEWAY_TRANSACTION_ID_CHARS} characters")]
    InvalidGatewayTransactionId,
    /// Failing, cancelling or refunding without a reason. The caller asks for one.
    #[error("a reason is required")]
    EmptyReason,
    /// This refund id was already used for a refund with another amount or reason. The caller
    /// chooses a new refund id for a new refund.
    #[error("refund {refund_id} was already recorded with other details")]
    RefundIdReused { refund_id: Uuid },
    /// The refunds would add up to more than was paid. The caller refunds at most `refundable`.
    #[error("refund {amount} exceeds what can still be refunded ({refundable})")]
    RefundExceedsPaid { amount: Money, refundable: Money },
    /// The payment's status or method does not allow this (e.g. refunding a pending payment,
    /// completing a card payment that never started processing). The caller shows the status;
    /// retrying will not help.
    #[error("cannot {action}: the payment is {from}")]
    InvalidTransition {
        from: PaymentStatus,
        action: &'static str,
    },
}

impl PaymentError {
    /// A stable, machine-readable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            PaymentError::NotInitiated => "NOT_FOUND",
            PaymentError::AlreadyInitiated => "PAYMENT_ALREADY_EXISTS",
            PaymentError::NonPositiveAmount
            | PaymentError::CurrencyMismatch { .. }
            | PaymentError::InvalidGatewayTransactionId
            | PaymentError::EmptyReason
            | PaymentError::RefundIdReused { .. } => "VALIDATION",
            PaymentError::RefundExceedsPaid { .. } => "REFUND_EXCEEDS_PAID",
            PaymentError::InvalidTransition { .. } => "INVALID_PAYMENT_TRANSITION",
        }
    }
}

/// What a command asks the status machine to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Initiate,
    StartProcessing,
    Complete,
    Fail,
    Cancel,
    /// A refund that leaves part of the amount paid.
    RefundPart,
    /// A refund that brings the refunded total to the whole amount.
    RefundRest,
}

impl Action {
    /// The verb phrase in [`PaymentError::InvalidTransition`].
    fn name(self) -> &'static str {
        match self {
            Action::Initiate => "initiate",
            Action::StartProcessing => "start processing",
            Action::Complete => "complete",
            Action::Fail => "fail",
            Action::Cancel => "cancel",
            Action::RefundPart | Action::RefundRest => "refund",
        }
    }
}

/// The whole status machine: the status a payment paid by `method` moves to when `action` is taken
/// from `from`, or why it may not be.
fn transition(
    from: PaymentStatus,
    method: Option<PaymentMethodKind>,
    action: Action,
) -> Result<PaymentStatus, PaymentError> {
    use PaymentStatus::{
        Cancelled, Completed, Failed, NotInitiated, Pending, Processing, Refunded,
    };
    let gateway = method.is_some_and(PaymentMethodKind::uses_gateway);
    match (from, action) {
        (NotInitiated, Action::Initiate) => Ok(Pending),
        (_, Action::Initiate) => Err(PaymentError::AlreadyInitiated),
        (NotInitiated, _) => Err(PaymentError::NotInitiated),
        (Pending, Action::StartProcessing) if gateway => Ok(Processing),
        (Processing, Action::Complete) if gateway => Ok(Completed),
        (Pending, Action::Complete) if !gateway => Ok(Completed),
        (Pending | Processing, Action::Fail) => Ok(Failed),
        (Pending, Action::Cancel) => Ok(Cancelled),
        (Completed, Action::RefundPart) => Ok(Completed),
        (Completed, Action::RefundRest) => Ok(Refunded),
        (from, action) => Err(PaymentError::InvalidTransition {
            from,
            action: action.name(),
        }),
    }
}

/// One refund as recorded, so a retry of it is recognised.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct RecordedRefund {
    amount: Money,
    reason: String,
    /// The payment's refunded total once this refund was made: orders refunds in time.
    #[serde(default)]
    refunded_total: Option<Money>,
}

/// The state a payment's decisions need.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Payment {
    status: PaymentStatus,
    order_id: Option<Uuid>,
    customer_id: Option<Uuid>,
    amount: Option<Money>,
    method: Option<PaymentMethod>,
    /// Set when processing starts (card and bank transfer only).
    gateway_transaction_id: Option<String>,
    /// Sum of the refunds so far, in the payment's currency (zero before any).
    refunded_total: Option<Money>,
    /// Every refund by id, so recording one again is a no-op.
    refunds: BTreeMap<Uuid, RecordedRefund>,
}

impl Payment {
    pub fn status(&self) -> PaymentStatus {
        self.status
    }

    pub fn order_id(&self) -> Option<Uuid> {
        self.order_id
    }

    pub fn customer_id(&self) -> Option<Uuid> {
        self.customer_id
    }

    pub fn amount(&self) -> Option<Money> {
        self.amount
    }

    pub fn method(&self) -> Option<&PaymentMethod> {
        self.method.as_ref()
    }

    pub fn gateway_transaction_id(&self) -> Option<&str> {
        self.gateway_transaction_id.as_deref()
    }

    pub fn refunded_total(&self) -> Option<Money> {
        self.refunded_total
    }

    /// The refunds so far, by refund id, with their amounts.
    pub fn refunds(&self) -> impl Iterator<Item = (Uuid, Money)> + '_ {
        self.refunds.iter().map(|(id, refund)| (*id, refund.amount))
    }

    /// The refunds made after the first `already` of refunds, in the order they were made: when an
    /// order recorded this payment late, net of the refunds made until then, these are the ones it
    /// has not yet taken into account.
    pub fn refunds_beyond(&self, already: Money) -> Vec<(Uuid, Money)> {
        let mut later: Vec<(Money, Uuid, Money)> = self
            .refunds
            .iter()
            .filter_map(|(id, refund)| {
                let total = refund.refunded_total?;
                (total.minor_units() > already.minor_units()).then_some((total, *id, refund.amount))
            })
            .collect();
        later.sort_by_key(|(total, ..)| total.minor_units());
        later
            .into_iter()
            .map(|(_, id, amount)| (id, amount))
            .collect()
    }

    /// What the customer has paid and not had back: the amount less refunds, once completed;
    /// zero before completion and for failed or cancelled payments.
    pub fn net_paid(&self) -> Option<Money> {
        let amount = self.amount?;
        match self.status {
            PaymentStatus::Completed | PaymentStatus::Refunded => {
                amount.checked_sub(self.refunded_total?).ok()
            }
            _ => Some(Money::zero(amount.currency())),
        }
    }

    fn kind(&self) -> Option<PaymentMethodKind> {
        self.method.as_ref().map(PaymentMethod::kind)
    }

    fn transition(&self, action: Action) -> Result<PaymentStatus, PaymentError> {
        transition(self.status, self.kind(), action)
    }

    /// Decides on `command`: the event it causes, `None` for a no-op, or why it is refused.
    fn decide(&self, command: PaymentCommand) -> Result<Option<PaymentEvent>, PaymentError> {
        let event = match command {
            PaymentCommand::Initiate {
                order_id,
                customer_id,
                amount,
                method,
                initiated_at,
            } => {
                self.transition(Action::Initiate)?;
                if !amount.is_positive() {
                    return Err(PaymentError::NonPositiveAmount);
                }
                PaymentEvent::PaymentInitiated {
                    order_id,
                    customer_id,
                    amount,
                    method,
                    initiated_at,
                }
            }
            PaymentCommand::StartProcessing {
                gateway_transaction_id,
                started_at,
            } => {
                let gateway_transaction_id = gateway_transaction_id.trim();
                if self.status == PaymentStatus::Processing
                    && self.gateway_transaction_id.as_deref() == Some(gateway_transaction_id)
                {
                    return Ok(None);
                }
                self.transition(Action::StartProcessing)?;
                if gateway_transaction_id.is_empty()
                    || gateway_transaction_id.chars().count() > MAX_GATEWAY_TRANSACTION_ID_CHARS
                {
                    return Err(PaymentError::InvalidGatewayTransactionId);
                }
                PaymentEvent::PaymentProcessingStarted {
                    gateway_transaction_id: gateway_transaction_id.to_owned(),
                    started_at,
                }
            }
            PaymentCommand::Complete { completed_at } => {
                self.transition(Action::Complete)?;
                PaymentEvent::PaymentCompleted { completed_at }
            }
            PaymentCommand::Fail { reason, failed_at } => {
                self.transition(Action::Fail)?;
                PaymentEvent::PaymentFailed {
                    reason: non_empty(&reason)?,
                    failed_at,
                }
            }
            PaymentCommand::Cancel {
                reason,
                cancelled_at,
            } => {
                self.transition(Action::Cancel)?;
                PaymentEvent::PaymentCancelled {
                    reason: non_empty(&reason)?,
                    cancelled_at,
                }
            }
            PaymentCommand::Refund {
                refund_id,
                amount,
                reason,
                refunded_at,
            } => return self.decide_refund(refund_id, amount, &reason, refunded_at),
        };
        Ok(Some(event))
    }

    fn decide_refund(
        &self,
        refund_id: Uuid,
        amount: Money,
        reason: &str,
        refunded_at: DateTime<Utc>,
    ) -> Result<Option<PaymentEvent>, PaymentError> {
        let reason = non_empty(reason)?;
        if let Some(recorded) = self.refunds.get(&refund_id) {
            return if recorded.amount == amount && recorded.reason == reason {
                Ok(None)
            } else {
                Err(PaymentError::RefundIdReused { refund_id })
            };
        }
        // Checked with a partial refund first, so a refund of a payment that is not completed is
        // refused as a transition whatever its amount.
        self.transition(Action::RefundPart)?;
        let (Some(paid), Some(refunded)) = (self.amount, self.refunded_total) else {
            return Err(PaymentError::NotInitiated);
        };
        if !amount.is_positive() {
            return Err(PaymentError::NonPositiveAmount);
        }
        if amount.currency() != paid.currency() {
            return Err(PaymentError::CurrencyMismatch {
                expected: paid.currency(),
                found: amount.currency(),
            });
        }
        // Cannot fail: same currency, both within range and refunded <= paid.
        let refundable = paid
            .checked_sub(refunded)
            .map_err(|_| PaymentError::NotInitiated)?;
        if amount.minor_units() > refundable.minor_units() {
            return Err(PaymentError::RefundExceedsPaid { amount, refundable });
        }
        let refunded_total = refunded
            .checked_add(amount)
            .map_err(|_| PaymentError::RefundExceedsPaid { amount, refundable })?;
        Ok(Some(PaymentEvent::PaymentRefunded {
            refund_id,
            amount,
            reason,
            refunded_total,
            refunded_at,
        }))
    }

    /// Moves to `to`, re-asserting that the status machine allows it.
    fn advance(&mut self, action: Action, to: PaymentStatus) {
        debug_assert_eq!(self.transition(action), Ok(to), "{action:?}");
        self.status = to;
    }
}

fn non_empty(reason: &str) -> Result<String, PaymentError> {
    let reason = reason.trim();
    if reason.is_empty() {
        Err(PaymentError::EmptyReason)
    } else {
        Ok(reason.to_owned())
    }
}

impl Aggregate for Payment {
    const TYPE: &'static str = "Payment";
    type Command = PaymentCommand;
    type Event = PaymentEvent;
    type Error = PaymentError;
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
            PaymentEvent::PaymentInitiated {
                order_id,
                customer_id,
                amount,
                method,
                ..
            } => {
                self.advance(Action::Initiate, PaymentStatus::Pending);
                debug_assert!(amount.is_positive(), "payment of {amount}");
                self.order_id = Some(order_id);
                self.customer_id = Some(customer_id);
                self.amount = Some(amount);
                self.method = Some(method);
                self.refunded_total = Some(Money::zero(amount.currency()));
            }
            PaymentEvent::PaymentProcessingStarted {
                gateway_transaction_id,
                ..
            } => {
                self.advance(Action::StartProcessing, PaymentStatus::Processing);
                self.gateway_transaction_id = Some(gateway_transaction_id);
            }
            PaymentEvent::PaymentCompleted { .. } => {
                self.advance(Action::Complete, PaymentStatus::Completed);
            }
            PaymentEvent::PaymentFailed { .. } => {
                self.advance(Action::Fail, PaymentStatus::Failed);
            }
            PaymentEvent::PaymentCancelled { .. } => {
                self.advance(Action::Cancel, PaymentStatus::Cancelled);
            }
            PaymentEvent::PaymentRefunded {
                refund_id,
                amount,
                reason,
                refunded_total,
                ..
            } => {
                let whole = self.amount == Some(refunded_total);
                if whole {
                    self.advance(Action::RefundRest, PaymentStatus::Refunded);
                } else {
                    self.advance(Action::RefundPart, PaymentStatus::Completed);
                }
                debug_assert_eq!(
                    self.refunded_total.map(|total| total.checked_add(amount)),
                    Some(Ok(refunded_total)),
                    "refunded total is not the sum of the refunds"
                );
                debug_assert!(
                    self.amount
                        .is_some_and(|paid| refunded_total.minor_units() <= paid.minor_units()),
                    "refunds exceed the amount paid"
                );
                self.refunded_total = Some(refunded_total);
                self.refunds.insert(
                    refund_id,
                    RecordedRefund {
                        amount,
                        reason,
                        refunded_total: Some(refunded_total),
                    },
                );
            }
        }
    }
}

#[cfg(test)]
mod tests;
