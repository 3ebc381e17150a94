//! Payments and the rest of an order's life: taking money, recording it on the order, refunds,
//! and handing the car over.
//!
//! Every operation here that moves money spans two aggregates (the payment and its order) without a
//! distributed transaction. The order of steps makes every failure safe and visible:
//!
//! - **Before money moves, the order is asked.** Initiating a payment, and completing a cash or
//!   credit payment, first checks that the order would take it (confirmed, within the balance due);
//!   refunding first checks that the order would record the refund. A refusal there writes nothing.
//!   A card or bank-transfer completion is not asked: the gateway has already charged the customer,
//!   so the ledger records that fact whatever the order says.
//! - **Then the payment, then the order.** Completing a payment completes it first and then records
//!   it on the order (`OrderPaymentRecorded`, and `OrderPaid` once the total is covered). If the
//!   order refuses (another payment covered the same balance first, the order was cancelled in the
//!   meantime), the payment stays completed and the mutation answers the order's error; the payment
//!   shows
//!   `recordedOnOrderAt: null`. Retrying `completePayment` (same key) or `recordPaymentOnOrder`
//!   records it if the order can now take it (recording a payment twice is a no-op); otherwise the
//!   money goes back with `refundPayment`, which refunds a payment its order never recorded without
//!   touching the order. Refunds work the same way: the payment refunds first, then the order
//!   records the refund; a retry of `refundPayment` with the same key (or the same refund id)
//!   finishes the recording.
//! - **Handover: the order first, then the vehicle.** `handOverOrder` completes the order, then sells
//!   its vehicle. If selling fails, the order is completed and its vehicle still reserved for it:
//!   retrying `handOverOrder` on that completed order just sells the vehicle.
//!
//! Only the step that finishes an operation carries the idempotency key (see [`Call`]): the order's
//! record of a completed payment or refund, the vehicle's sale at handover (or the payment's own
//! event when its order never recorded it). A retry of a half-done operation therefore finds no
//! key, re-runs, skips the steps already done (each checks the state first) and finishes; a retry
//! of a finished one is answered from the log with the first answer.

use std::sync::Arc;

use aggregates::money::Money;
use aggregates::order::{Order, OrderCommand, OrderStatus};
use aggregates::payment::{Payment, PaymentCommand, PaymentError, PaymentMethod, PaymentStatus};
use aggregates::vehicle::{Vehicle, VehicleCommand, VehicleStatus};
use eventstore::{Cqrs, Database, Store, Upcasters};
use uuid::Uuid;

use crate::clock::{Clock, IdGenerator};
use crate::context::RequestContext;
use crate::error::CommandError;
use crate::sender::{Call, Idempotency, Sender, Written};

mod graphql;

pub use graphql::{
    CARD_NUMBER_REFUSED, InitiatePaymentInput, PaymentPayload, PaymentsMutation,
    RefundPaymentInput, card_last4,
};

/// Sends payment, refund and handover commands.
pub struct Payments {
    sender: Sender,
    payments: Cqrs<Payment>,
    orders: Cqrs<Order>,
    vehicles: Cqrs<Vehicle>,
    payment_store: Store<Payment>,
    order_store: Store<Order>,
    vehicle_store: Store<Vehicle>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
}

/// The later of two writes: where the read models must reach to show both.
fn latest(first: Written, second: Option<Written>) -> Written {
    match second {
        Some(second) => Written {
            position: first.position.max(second.position),
            ..first
        },
        None => first,
    }
}

impl Payments {
    pub fn new(
        db: Database,
        upcasters: Upcasters,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
    ) -> Self {
        Self {
            sender: Sender::new(&db, &upcasters),
            payments: db.framework(&upcasters, ()),
            orders: db.framework(&upcasters, ()),
            vehicles: db.framework(&upcasters, ()),
            payment_store: db.store(&upcasters),
            order_store: db.store(&upcasters),
            vehicle_store: db.store(&upcasters),
            clock,
            ids,
        }
    }

    /// The id a create command uses: see [`crate::sender::aggregate_id`].
    pub fn id_or_new(&self, id: Option<Uuid>, idempotency: Option<&Idempotency>) -> Uuid {
        crate::sender::aggregate_id(self.ids.as_ref(), id, idempotency)
    }

    /// Current state of a payment (write model; a never-initiated id gives the default state).
    pub async fn payment(&self, id: Uuid) -> Result<Payment, CommandError> {
        self.sender.load(&self.payment_store, id).await
    }

    async fn order(&self, id: Uuid) -> Result<Order, CommandError> {
        self.sender.load(&self.order_store, id).await
    }

    /// Answers a retry of an operation whose key sits on the event of its final step, which belongs
    /// to one of `ids` (the first is the id answered): the first attempt's result when the key was
    /// used with the same input, an error when it was used with another.
    async fn replay(
        &self,
        ids: &[Uuid],
        idempotency: Option<&Idempotency>,
    ) -> Result<Option<Written>, CommandError> {
        let Some(first) = self.sender.first_attempt(idempotency).await? else {
            return Ok(None);
        };
        if !ids.iter().any(|id| first.aggregate_id == id.to_string()) {
            return Err(CommandError::IdempotencyKeyReused {
                key: idempotency.map(|i| i.key.clone()).unwrap_or_default(),
            });
        }
        Ok(Some(Written {
            id: ids[0],
            position: first.position,
            replayed: true,
        }))
    }

    /// Where an aggregate's newest event is: the answer for a step found already done.
    async fn last_write<A: cqrs_es::Aggregate>(&self, id: Uuid) -> Result<Written, CommandError> {
        Ok(Written {
            id,
            position: self.sender.position_of::<A>(id).await?,
            replayed: false,
        })
    }

    /// The order, or `NOT_FOUND` when it was never drafted.
    async fn existing_order(&self, id: Uuid) -> Result<Order, CommandError> {
        let order = self.order(id).await?;
        if order.status() == OrderStatus::NotDrafted {
            return Err(CommandError::NotFound {
                what: "order",
                id: id.to_string(),
            });
        }
        Ok(order)
    }

    /// The payment, or `NOT_FOUND` when it was never initiated.
    async fn existing_payment(&self, id: Uuid) -> Result<Payment, CommandError> {
        let payment = self.payment(id).await?;
        if payment.status() == PaymentStatus::NotInitiated {
            return Err(PaymentError::NotInitiated.into());
        }
        Ok(payment)
    }

    /// Initiates a payment towards a confirmed order, for at most its balance due. The customer is
    /// the order's. Nothing is written when the order would not take the payment.
    pub async fn initiate_payment(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        order_id: Uuid,
        amount: Money,
        method: PaymentMethod,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        if let Some(written) = self.sender.replay(id, idempotency).await? {
            return Ok(written);
        }
        let order = self.existing_order(order_id).await?;
        if self.payment(id).await?.status() == PaymentStatus::NotInitiated {
            order.check_payment(id, amount)?;
        }
        let customer_id = order.customer_id().ok_or_else(|| CommandError::NotFound {
            what: "order",
            id: order_id.to_string(),
        })?;
        let command = PaymentCommand::Initiate {
            order_id,
            customer_id,
            amount,
            method,
            initiated_at: self.clock.now(),
        };
        self.sender
            .execute(
                &self.payments,
                id,
                command,
                Call::new(ctx, "InitiatePayment", idempotency),
            )
            .await
    }

    /// Records that the gateway took a card or bank-transfer payment, with its transaction id.
    pub async fn start_payment_processing(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        gateway_transaction_id: String,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        let command = PaymentCommand::StartProcessing {
            gateway_transaction_id,
            started_at: self.clock.now(),
        };
        self.sender
            .execute(
                &self.payments,
                id,
                command,
                Call::new(ctx, "StartPaymentProcessing", idempotency),
            )
            .await
    }

    /// Completes a payment and records it on its order (see the module docs for the order of steps).
    /// A payment already completed is only recorded on its order (a repair, a no-op when done).
    pub async fn complete_payment(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        let call = Call::new(ctx, "CompletePayment", idempotency);
        let payment = self.payment(id).await?;
        let order_id = payment.order_id().unwrap_or(id);
        if let Some(first) = self.replay(&[id, order_id], idempotency).await? {
            return Ok(first);
        }
        if payment.status() == PaymentStatus::NotInitiated {
            return Err(PaymentError::NotInitiated.into());
        }
        if payment.status() == PaymentStatus::Completed {
            let recorded = self.record_on_order(call, id).await?;
            let first = self.last_write::<Payment>(id).await?;
            return Ok(latest(first, recorded));
        }
        if let (Some(order_id), Some(amount), Some(method)) =
            (payment.order_id(), payment.amount(), payment.method())
        {
            // Cash and credit: the dealership can still decline the money, so the order is asked
            // first. A gateway's completion is a fact (the customer has been charged): it is
            // recorded whatever the order says, and a refusal is answered after it.
            // Only a payment that can still complete is checked; the payment refuses the others.
            if !method.kind().uses_gateway() && payment.status() == PaymentStatus::Pending {
                self.existing_order(order_id)
                    .await?
                    .check_payment(id, amount)?;
            }
        }
        let completed = self
            .sender
            .execute(
                &self.payments,
                id,
                PaymentCommand::Complete {
                    completed_at: self.clock.now(),
                },
                call.step(),
            )
            .await?;
        let recorded = self.record_on_order(call, id).await?;
        Ok(latest(completed, recorded))
    }

    /// Records a completed payment on its order: the repair after a completion whose recording was
    /// refused. A no-op when the order already has it. Returns the order's write, if any.
    pub async fn record_payment_on_order(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        let payment = self.existing_payment(id).await?;
        let order_id = payment.order_id().ok_or(PaymentError::NotInitiated)?;
        if let Some(first) = self.sender.replay(order_id, idempotency).await? {
            return Ok(Written { id, ..first });
        }
        let call = Call::new(ctx, "RecordPaymentOnOrder", idempotency);
        match self.record_on_order(call, id).await? {
            Some(written) => Ok(Written { id, ..written }),
            None => Err(CommandError::Validation(format!(
                "payment {id} is {}; only a completed payment is recorded on its order",
                payment.status().as_str()
            ))),
        }
    }

    /// Records a completed payment on its order for what it still contributes (its amount less
    /// refunds made before the order recorded it). `None` when the payment is not completed or
    /// nothing is left to record.
    async fn record_on_order(
        &self,
        call: Call<'_>,
        payment_id: Uuid,
    ) -> Result<Option<Written>, CommandError> {
        let payment = self.payment(payment_id).await?;
        let (Some(order_id), Some(method), Some(net)) =
            (payment.order_id(), payment.method(), payment.net_paid())
        else {
            return Ok(None);
        };
        if payment.status() != PaymentStatus::Completed || !net.is_positive() {
            return Ok(None);
        }
        let command = OrderCommand::RecordPayment {
            payment_id,
            amount: net,
            method: method.kind(),
            recorded_at: self.clock.now(),
        };
        let written = self
            .sender
            .execute(&self.orders, order_id, command, call)
            .await
            .inspect_err(|err| {
                tracing::warn!(
                    payment = %payment_id, order = %order_id, error = %err,
                    "payment completed but its order refused to record it; \
                     recordPaymentOnOrder retries, refundPayment returns the money"
                );
            })?;
        Ok(Some(written))
    }

    pub async fn fail_payment(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        reason: String,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        let command = PaymentCommand::Fail {
            reason,
            failed_at: self.clock.now(),
        };
        self.sender
            .execute(
                &self.payments,
                id,
                command,
                Call::new(ctx, "FailPayment", idempotency),
            )
            .await
    }

    pub async fn cancel_payment(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        reason: String,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        let command = PaymentCommand::Cancel {
            reason,
            cancelled_at: self.clock.now(),
        };
        self.sender
            .execute(
                &self.payments,
                id,
                command,
                Call::new(ctx, "CancelPayment", idempotency),
            )
            .await
    }

    /// Refunds part or all of a completed payment, then records the refund on its order (when the
    /// order recorded the payment). The order is asked first, so a refund it would refuse (e.g.
    /// after handover) moves no money.
    pub async fn refund_payment(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        refund_id: Uuid,
        amount: Money,
        reason: String,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        let call = Call::new(ctx, "RefundPayment", idempotency);
        let payment = self.payment(id).await?;
        let order_id = payment.order_id().unwrap_or(id);
        if let Some(first) = self.replay(&[id, order_id], idempotency).await? {
            return Ok(first);
        }
        if payment.status() == PaymentStatus::NotInitiated {
            return Err(PaymentError::NotInitiated.into());
        }
        let order = self.existing_order(order_id).await?;
        let already = payment.refunds().any(|(refund, _)| refund == refund_id);
        let recorded_on_order = order.recorded_payment(id).is_some();
        if !already && recorded_on_order {
            order.check_refund(id, refund_id, amount)?;
        }
        // The refund finishes here when the order never recorded the payment.
        let refund_call = if recorded_on_order { call.step() } else { call };
        let refunded = self
            .sender
            .execute(
                &self.payments,
                id,
                PaymentCommand::Refund {
                    refund_id,
                    amount,
                    reason,
                    refunded_at: self.clock.now(),
                },
                refund_call,
            )
            .await?;
        let recorded = self.record_refunds_on_order(call, id, refund_id).await?;
        Ok(latest(refunded, recorded))
    }

    /// Records on the order every refund of this payment it has not recorded yet, if the order
    /// recorded the payment; only `keyed` (the refund being asked for) carries the call's key.
    /// Returns the last write, if any.
    async fn record_refunds_on_order(
        &self,
        call: Call<'_>,
        payment_id: Uuid,
        keyed: Uuid,
    ) -> Result<Option<Written>, CommandError> {
        let payment = self.payment(payment_id).await?;
        let Some(order_id) = payment.order_id() else {
            return Ok(None);
        };
        let order = self.order(order_id).await?;
        let (Some(recorded), Some(amount)) = (order.recorded_payment(payment_id), payment.amount())
        else {
            return Ok(None);
        };
        // The order recorded the payment net of the refunds made before it did (see
        // `record_on_order`): those are already accounted for, only later ones are recorded.
        let netted = amount.checked_sub(recorded).map_err(|err| {
            CommandError::Internal(format!("payment {payment_id} against its order: {err}"))
        })?;
        let mut last = None;
        for (refund_id, amount) in payment.refunds_beyond(netted) {
            if order.has_refund(refund_id) {
                continue;
            }
            if order.has_refund(refund_id) {
                continue;
            }
            let command = OrderCommand::RecordRefund {
                payment_id,
                refund_id,
                amount,
                recorded_at: self.clock.now(),
            };
            let call = if refund_id == keyed {
                call
            } else {
                call.step()
            };
            last = Some(
                self.sender
                    .execute(&self.orders, order_id, command, call)
                    .await?,
            );
        }
        Ok(last)
    }

    /// Hands a paid order over to its customer (the order is then `COMPLETED`) and sells its vehicle.
    ///
    /// Two aggregates, two steps: (1) hand the order over — a refusal (not paid) writes nothing;
    /// (2) sell the vehicle to this order. If selling fails, the order stays completed with its
    /// vehicle still reserved for it, and the error is answered; retrying `handOverOrder` on a
    /// completed order whose vehicle is not sold just sells it, so a retry completes the handover.
    pub async fn hand_over_order(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        let call = Call::new(ctx, "HandOverOrder", idempotency);
        let order = self.order(id).await?;
        let vehicle_id = order.vehicle_id().unwrap_or(id);
        if let Some(first) = self.replay(&[id, vehicle_id], idempotency).await? {
            return Ok(first);
        }
        let order = self.existing_order(id).await?;
        let handed_over = if order.status() == OrderStatus::Completed {
            self.last_write::<Order>(id).await?
        } else {
            self.sender
                .execute(
                    &self.orders,
                    id,
                    OrderCommand::HandOver {
                        handed_over_at: self.clock.now(),
                    },
                    call.step(),
                )
                .await?
        };
        let sold = self.sell_vehicle(call, id).await?;
        Ok(latest(handed_over, sold))
    }

    /// Sells a completed order's vehicle unless it is already sold.
    async fn sell_vehicle(
        &self,
        call: Call<'_>,
        order_id: Uuid,
    ) -> Result<Option<Written>, CommandError> {
        let order = self.order(order_id).await?;
        let (OrderStatus::Completed, Some(vehicle_id)) = (order.status(), order.vehicle_id())
        else {
            return Ok(None);
        };
        let vehicle = self.sender.load(&self.vehicle_store, vehicle_id).await?;
        // Only the order holding the reservation can buy the vehicle, so a sold vehicle of a
        // completed order was sold to it.
        if vehicle.status() == VehicleStatus::Sold {
            return Ok(None);
        }
        let sold = self
            .sender
            .execute(
                &self.vehicles,
                vehicle_id,
                VehicleCommand::Sell { order_id },
                call,
            )
            .await
            .inspect_err(|err| {
                tracing::error!(
                    order = %order_id, vehicle = %vehicle_id, error = %err,
                    "order handed over but its vehicle could not be sold; retrying handOverOrder sells it"
                );
            })?;
        Ok(Some(sold))
    }

    /// A loan disbursed to the dealership for an order: creates a `CREDIT` payment carrying the
    /// loan id, completes it, and records it on the order. Safe to retry: each step that is done
    /// already is skipped (the payment id identifies the disbursement). Refused with nothing written
    /// when the order would not take the amount, or when `payment_id` is already another payment.
    pub async fn record_credit_disbursement(
        &self,
        ctx: &RequestContext,
        payment_id: Uuid,
        order_id: Uuid,
        loan_id: Uuid,
        amount: Money,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        if let Some(first) = self.replay(&[payment_id, order_id], idempotency).await? {
            return Ok(first);
        }
        let method = PaymentMethod::Credit { loan_id };
        let payment = self.payment(payment_id).await?;
        if payment.status() == PaymentStatus::NotInitiated {
            self.initiate_payment(ctx, payment_id, order_id, amount, method, None)
                .await?;
        } else if payment.order_id() != Some(order_id)
            || payment.method() != Some(&method)
            || payment.amount() != Some(amount)
        {
            return Err(CommandError::Validation(format!(
                "payment {payment_id} already exists for another order, loan or amount"
            )));
        }
        self.complete_payment(ctx, payment_id, idempotency).await
    }
}
