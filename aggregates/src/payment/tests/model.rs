//! The payment's reference model: its rules from the module docs, amounts in plain kopecks.

use proptest::prelude::*;

use super::super::*;
use super::{at, card, credit, customer, order, refund_id, rub};
use crate::test_support::{Model, assert_reached, reached, run_against_model, run_alone};

use PaymentStatus::{Cancelled, Completed, Failed, NotInitiated, Pending, Processing, Refunded};

#[derive(Clone, Debug, PartialEq)]
struct ModelRefund {
    id: Uuid,
    amount: Money,
    reason: String,
    /// Kopecks refunded once this refund was made.
    total_after: i64,
}

#[derive(Clone, Debug, Default)]
struct PaymentModel {
    status: PaymentStatus,
    /// Order, customer, amount and method, from the initiation.
    initiated: Option<(Uuid, Uuid, Money, PaymentMethod)>,
    gateway_transaction_id: Option<String>,
    /// In the order they were made.
    refunds: Vec<ModelRefund>,
}

impl PaymentModel {
    fn amount(&self) -> Option<Money> {
        self.initiated.as_ref().map(|(_, _, amount, _)| *amount)
    }

    fn through_gateway(&self) -> bool {
        matches!(
            self.initiated.as_ref().map(|(_, _, _, method)| method),
            Some(PaymentMethod::Card { .. } | PaymentMethod::BankTransfer)
        )
    }

    fn refunded_minor(&self) -> i64 {
        self.refunds
            .iter()
            .map(|refund| refund.amount.minor_units())
            .sum()
    }

    fn refuse(&self, action: &'static str) -> PaymentError {
        if self.status == NotInitiated {
            PaymentError::NotInitiated
        } else {
            PaymentError::InvalidTransition {
                from: self.status,
                action,
            }
        }
    }
}

fn reason(text: &str) -> Result<String, PaymentError> {
    match text.trim() {
        "" => Err(PaymentError::EmptyReason),
        trimmed => Ok(trimmed.to_owned()),
    }
}

impl Model<Payment> for PaymentModel {
    type Step = PaymentCommand;

    fn command(&self, step: &PaymentCommand) -> PaymentCommand {
        step.clone()
    }

    fn step(&mut self, command: &PaymentCommand) -> Result<Vec<PaymentEvent>, PaymentError> {
        let event = match command {
            PaymentCommand::Initiate {
                order_id,
                customer_id,
                amount,
                method,
                initiated_at,
            } => {
                if self.status != NotInitiated {
                    return Err(PaymentError::AlreadyInitiated);
                }
                if amount.minor_units() <= 0 {
                    return Err(PaymentError::NonPositiveAmount);
                }
                self.status = Pending;
                self.initiated = Some((*order_id, *customer_id, *amount, method.clone()));
                PaymentEvent::PaymentInitiated {
                    order_id: *order_id,
                    customer_id: *customer_id,
                    amount: *amount,
                    method: method.clone(),
                    initiated_at: *initiated_at,
                }
            }
            PaymentCommand::StartProcessing {
                gateway_transaction_id,
                started_at,
            } => {
                let id = gateway_transaction_id.trim();
                if self.status == Processing && self.gateway_transaction_id.as_deref() == Some(id) {
                    return Ok(vec![]);
                }
                if !(self.status == Pending && self.through_gateway()) {
                    return Err(self.refuse("start processing"));
                }
                if id.is_empty() || id.chars().count() > MAX_GATEWAY_TRANSACTION_ID_CHARS {
                    return Err(PaymentError::InvalidGatewayTransactionId);
                }
                self.status = Processing;
                self.gateway_transaction_id = Some(id.to_owned());
                PaymentEvent::PaymentProcessingStarted {
                    gateway_transaction_id: id.to_owned(),
                    started_at: *started_at,
                }
            }
            PaymentCommand::Complete { completed_at } => {
                let ready = if self.through_gateway() {
                    self.status == Processing
                } else {
                    self.status == Pending
                };
                if !ready {
                    return Err(self.refuse("complete"));
                }
                self.status = Completed;
                PaymentEvent::PaymentCompleted {
                    completed_at: *completed_at,
                }
            }
            PaymentCommand::Fail {
                reason: why,
                failed_at,
            } => {
                if !matches!(self.status, Pending | Processing) {
                    return Err(self.refuse("fail"));
                }
                let reason = reason(why)?;
                self.status = Failed;
                PaymentEvent::PaymentFailed {
                    reason,
                    failed_at: *failed_at,
                }
            }
            PaymentCommand::Cancel {
                reason: why,
                cancelled_at,
            } => {
                if self.status != Pending {
                    return Err(self.refuse("cancel"));
                }
                let reason = reason(why)?;
                self.status = Cancelled;
                PaymentEvent::PaymentCancelled {
                    reason,
                    cancelled_at: *cancelled_at,
                }
            }
            PaymentCommand::Refund {
                refund_id,
                amount,
                reason: why,
                refunded_at,
            } => {
                let reason = reason(why)?;
                if let Some(earlier) = self.refunds.iter().find(|r| r.id == *refund_id) {
                    if earlier.amount == *amount && earlier.reason == reason {
                        return Ok(vec![]);
                    }
                    return Err(PaymentError::RefundIdReused {
                        refund_id: *refund_id,
                    });
                }
                if self.status != Completed {
                    return Err(self.refuse("refund"));
                }
                let paid = self.amount().expect("completed payments have an amount");
                if amount.minor_units() <= 0 {
                    return Err(PaymentError::NonPositiveAmount);
                }
                if amount.currency() != paid.currency() {
                    return Err(PaymentError::CurrencyMismatch {
                        expected: paid.currency(),
                        found: amount.currency(),
                    });
                }
                let refundable = paid.minor_units() - self.refunded_minor();
                if amount.minor_units() > refundable {
                    return Err(PaymentError::RefundExceedsPaid {
                        amount: *amount,
                        refundable: Money::from_minor_units(refundable, paid.currency()),
                    });
                }
                let total_after = self.refunded_minor() + amount.minor_units();
                self.refunds.push(ModelRefund {
                    id: *refund_id,
                    amount: *amount,
                    reason: reason.clone(),
                    total_after,
                });
                if total_after == paid.minor_units() {
                    self.status = Refunded;
                }
                PaymentEvent::PaymentRefunded {
                    refund_id: *refund_id,
                    amount: *amount,
                    reason,
                    refunded_total: Money::from_minor_units(total_after, paid.currency()),
                    refunded_at: *refunded_at,
                }
            }
        };
        Ok(vec![event])
    }

    fn check(&self, payment: &Payment) -> Result<(), TestCaseError> {
        let initiated = self.initiated.as_ref();
        prop_assert_eq!(payment.status(), self.status);
        prop_assert_eq!(payment.order_id(), initiated.map(|i| i.0));
        prop_assert_eq!(payment.customer_id(), initiated.map(|i| i.1));
        prop_assert_eq!(payment.amount(), initiated.map(|i| i.2));
        prop_assert_eq!(payment.method(), initiated.map(|i| &i.3));
        prop_assert_eq!(
            payment.gateway_transaction_id(),
            self.gateway_transaction_id.as_deref()
        );
        let currency = self.amount().map(|amount| amount.currency());
        prop_assert_eq!(
            payment.refunded_total(),
            currency.map(|c| Money::from_minor_units(self.refunded_minor(), c))
        );
        let mut by_id: Vec<(Uuid, Money)> = self.refunds.iter().map(|r| (r.id, r.amount)).collect();
        by_id.sort_by_key(|(id, _)| *id);
        prop_assert_eq!(payment.refunds().collect::<Vec<_>>(), by_id);
        // What the customer has paid and not had back: only a completed payment holds money.
        let net = self.amount().map(|amount| {
            let held = match self.status {
                Completed | Refunded => amount.minor_units() - self.refunded_minor(),
                _ => 0,
            };
            Money::from_minor_units(held, amount.currency())
        });
        prop_assert_eq!(payment.net_paid(), net);
        // The refunds an order that saw `already` refunded has not yet seen, in the order made.
        for already in [0, 1, 25_000, 75_000, 100_000] {
            let currency = currency.unwrap_or_default();
            let later: Vec<(Uuid, Money)> = self
                .refunds
                .iter()
                .filter(|refund| refund.total_after > already)
                .map(|refund| (refund.id, refund.amount))
                .collect();
            prop_assert_eq!(
                payment.refunds_beyond(Money::from_minor_units(already, currency)),
                later,
                "refunds beyond {}",
                already
            );
        }
        Ok(())
    }
}

fn command() -> impl Strategy<Value = PaymentCommand> {
    let at_time =
        || prop::sample::select(vec!["2024-03-05T10:00:00Z", "2024-03-06T12:00:00Z"]).prop_map(at);
    let amount = prop_oneof![
        4 => Just(rub("1000")),
        1 => prop::sample::select(vec!["0.01", "0", "-1"]).prop_map(rub),
        1 => Just(Money::from_minor_units(100_000, Currency::USD)),
    ];
    let method = prop::sample::select(vec![
        card(),
        PaymentMethod::BankTransfer,
        PaymentMethod::Cash,
        credit(),
    ]);
    let initiate = (amount, method, at_time()).prop_map(|(amount, method, initiated_at)| {
        PaymentCommand::Initiate {
            order_id: order(),
            customer_id: customer(),
            amount,
            method,
            initiated_at,
        }
    });
    let gateway = prop::sample::select(vec![
        "gw-1".to_owned(),
        " gw-1 ".to_owned(),
        "gw-2".to_owned(),
        " ".to_owned(),
        format!(" {} ", "g".repeat(MAX_GATEWAY_TRANSACTION_ID_CHARS)),
        "g".repeat(MAX_GATEWAY_TRANSACTION_ID_CHARS + 1),
    ]);
    let start = (gateway, at_time()).prop_map(|(gateway_transaction_id, started_at)| {
        PaymentCommand::StartProcessing {
            gateway_transaction_id,
            started_at,
        }
    });
    let reasons = || {
        prop::sample::select(vec!["declined", " returned ", "returned", " "])
            .prop_map(str::to_owned)
    };
    let refund_amount = prop_oneof![
        6 => prop::sample::select(vec!["250", "750", "1000", "0.01", "999.99"]).prop_map(rub),
        1 => prop::sample::select(vec!["0", "1000.01"]).prop_map(rub),
        1 => Just(Money::from_minor_units(25_000, Currency::USD)),
    ];
    let refund = (0..4u128, refund_amount, reasons(), at_time()).prop_map(
        |(n, amount, reason, refunded_at)| PaymentCommand::Refund {
            refund_id: refund_id(n),
            amount,
            reason,
            refunded_at,
        },
    );
    prop_oneof![
        2 => initiate,
        2 => start,
        3 => at_time().prop_map(|completed_at| PaymentCommand::Complete { completed_at }),
        1 => (reasons(), at_time()).prop_map(|(reason, failed_at)| PaymentCommand::Fail { reason, failed_at }),
        1 => (reasons(), at_time()).prop_map(|(reason, cancelled_at)| PaymentCommand::Cancel { reason, cancelled_at }),
        6 => refund,
    ]
}

fn commands() -> impl Strategy<Value = Vec<PaymentCommand>> {
    prop::collection::vec(command(), 0..30)
}

proptest! {
    /// Every decision and everything the payment shows (refunded total, refunds, net paid, the
    /// refunds an order has not yet seen) equal the model's. Guards (each checked by changing the
    /// aggregate so, and seeing this fail): a card payment completed without processing, a reused
    /// refund id with another reason taken for a retry, the refundable amount taken from the amount
    /// paid instead of what is left, `refunds_beyond` ordering refunds by id instead of by time, a
    /// gateway id stored untrimmed (and a blank one accepted).
    #[test]
    fn a_payment_decides_and_shows_what_the_model_does(steps in commands()) {
        run_against_model::<Payment, _>(PaymentModel::default(), &steps)?;
    }

    /// Refunded never exceeds what was captured, the refunds add up to the refunded total, a
    /// payment is `Refunded` exactly when all of it is back, and only a completed payment has been
    /// refunded at all, read from the aggregate alone. Guards: the refundable amount taken from
    /// the amount paid instead of what is left, a pending payment that takes a refund.
    #[test]
    fn refunds_never_exceed_what_was_captured(steps in commands()) {
        let outcomes = run_alone::<Payment, _>(PaymentModel::default(), &steps);
        for outcome in outcomes {
            let payment = outcome.after;
            let (Some(amount), Some(refunded)) = (payment.amount(), payment.refunded_total()) else {
                continue;
            };
            let sum: i64 = payment.refunds().map(|(_, m)| m.minor_units()).sum();
            prop_assert_eq!(sum, refunded.minor_units());
            prop_assert!(refunded.minor_units() <= amount.minor_units());
            prop_assert_eq!(payment.status() == Refunded, refunded == amount);
            if refunded.is_positive() {
                prop_assert!(matches!(payment.status(), Completed | Refunded));
            }
        }
    }
}

/// The generator reaches every event and every refusal, so the properties above compare them all.
#[test]
fn the_generated_commands_reach_every_event_and_refusal() {
    let seen = reached::<Payment, _, _>(PaymentModel::default(), commands(), 256);
    assert_reached(
        &seen,
        &[
            "PaymentInitiated",
            "PaymentProcessingStarted",
            "PaymentCompleted",
            "PaymentFailed",
            "PaymentCancelled",
            "PaymentRefunded",
            "NotInitiated",
            "AlreadyInitiated",
            "NonPositiveAmount",
            "CurrencyMismatch",
            "InvalidGatewayTransactionId",
            "EmptyReason",
            "RefundIdReused",
            "RefundExceedsPaid",
            "InvalidTransition",
        ],
    );
}
