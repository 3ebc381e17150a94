//! The payment mutations. Every one of them moves money or completes a sale, so every one requires an
//! `idempotencyKey`.
//!
//! Card data: the API takes only `cardLast4`. It is checked before anything else is done with the
//! input (before fingerprinting, before any lookup): a value that looks like a whole card number is
//! refused with `CARD_NUMBER_REFUSED` and a message that never repeats it, anything else that is not
//! exactly four digits with `VALIDATION`. The input's `Debug` form redacts the field, so not even a
//! debug log of the input could carry it.

use std::fmt;

use aggregates::payment::{CardLast4, PaymentMethod as DomainMethod};
use async_graphql::{Context, InputObject, Object, SimpleObject};
use queries::input::{CardDigits, GatewayTransactionId, Id, IdempotencyKey, Reason};
use queries::payments::{Payment, PaymentMethod};
use queries::scalars::{MoneyInput, Position};
use queries::{ApiError, ApiResult};
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::Payments;
use crate::mutations::{OrderPayload, caller, idempotency, settle, to_api};
use crate::sender::{Idempotency, Written};

/// The code for a card number where only its last four digits belong.
pub use queries::codes::CARD_NUMBER_REFUSED;

#[derive(InputObject, Clone, Serialize)]
pub struct InitiatePaymentInput {
    /// Client-chosen id (a new one is generated when absent).
    pub id: Option<Id>,
    pub order_id: Id,
    /// At most the order's balance due, in the order's currency.
    pub amount: MoneyInput,
    /// `CARD`, `BANK_TRANSFER` or `CASH`. Credit payments are recorded when a loan is disbursed.
    pub method: PaymentMethod,
    /// Card payments only: the card's last four digits, never the card number. At most 4 characters.
    pub card_last4: Option<CardDigits>,
}

impl fmt::Debug for InitiatePaymentInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InitiatePaymentInput")
            .field("id", &self.id)
            .field("order_id", &self.order_id)
            .field("amount", &self.amount)
            .field("method", &self.method)
            .field(
                "card_last4",
                &self.card_last4.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

#[derive(InputObject, Clone, Debug, Serialize)]
pub struct RefundPaymentInput {
    pub payment_id: Id,
    /// Client-chosen refund id. When absent, it is derived from the payment and the idempotency key,
    /// so a retry of a half-done refund finishes that refund instead of starting a second one.
    pub refund_id: Option<Id>,
    /// At most what is left of the payment after earlier refunds.
    pub amount: MoneyInput,
    /// Why, in words people will read in the log. At most 1000 characters; may span lines.
    pub reason: Reason,
}

#[derive(SimpleObject)]
pub struct PaymentPayload {
    /// The payment as the read model now shows it.
    pub payment: Option<Payment>,
    /// Global position of the last event written.
    pub position: Position,
    /// True when this answered a retry with an already-used idempotency key and wrote nothing.
    pub replayed: bool,
}

/// Payments, refunds and handover.
#[derive(Default)]
pub struct PaymentsMutation;

fn payments<'a>(ctx: &Context<'a>) -> ApiResult<&'a Payments> {
    crate::mutations::service(ctx)
}

/// The key of a money-moving mutation: required, so always present.
fn required_key(
    key: IdempotencyKey,
    mutation: &str,
    input: &impl Serialize,
) -> ApiResult<Idempotency> {
    idempotency(Some(key), mutation, input)?
        .ok_or_else(|| ApiError::validation("idempotencyKey is required"))
}

/// Checks `cardLast4` without ever repeating it: a whole card number (12 digits or more, the rule
/// of [`CardDigits`]) gets its own code, anything but four digits is a validation error.
pub fn card_last4(text: &str) -> ApiResult<CardLast4> {
    let digits = CardDigits::new(text)
        .map_err(|refusal| ApiError::new(refusal.code(), refusal.to_string()))?;
    CardLast4::parse(&digits).map_err(|err| ApiError::validation(err.to_string()))
}

/// The domain method of an initiated payment, card digits checked first.
fn method(method: PaymentMethod, card: Option<&str>) -> ApiResult<DomainMethod> {
    let last4 = card.map(card_last4).transpose()?;
    match (method, last4) {
        (PaymentMethod::Card, Some(last4)) => Ok(DomainMethod::Card { last4 }),
        (PaymentMethod::Card, None) => Err(ApiError::validation(
            "card payments need cardLast4, the card's last four digits",
        )),
        (_, Some(_)) => Err(ApiError::validation("cardLast4 is only for card payments")),
        (PaymentMethod::BankTransfer, None) => Ok(DomainMethod::BankTransfer),
        (PaymentMethod::Cash, None) => Ok(DomainMethod::Cash),
        (PaymentMethod::Credit, None) => Err(ApiError::validation(
            "credit payments are recorded when the loan is disbursed, not initiated here",
        )),
    }
}

/// The refund id of a refund sent without one: the same for every retry with the same key.
fn refund_id_for(payment_id: Uuid, key: &Idempotency) -> Uuid {
    let digest = Sha256::digest(format!("refund\n{payment_id}\n{}", key.key));
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

async fn payment_payload(
    ctx: &Context<'_>,
    payment_id: Uuid,
    written: Written,
) -> ApiResult<PaymentPayload> {
    settle(ctx, &written).await?;
    Ok(PaymentPayload {
        payment: queries::payments::find(queries::read_models(ctx)?.pool(), payment_id).await?,
        position: Position(written.position),
        replayed: written.replayed,
    })
}

#[Object]
impl PaymentsMutation {
    /// Starts a payment towards a confirmed order, for at most its balance due. Card payments carry
    /// only the card's last four digits: a whole card number is refused with `CARD_NUMBER_REFUSED`.
    async fn initiate_payment(
        &self,
        ctx: &Context<'_>,
        input: InitiatePaymentInput,
        #[graphql(
            desc = "A retry with the same key and input answers the first result and writes nothing. At most 200 characters."
        )]
        idempotency_key: IdempotencyKey,
    ) -> async_graphql::Result<PaymentPayload> {
        // First, before the input is fingerprinted or used in any way.
        let method = method(input.method, input.card_last4.as_deref())?;
        let key = required_key(idempotency_key, "initiatePayment", &input)?;
        let amount = input.amount.to_domain()?;
        let service = payments(ctx)?;
        let id = service.id_or_new(input.id.map(Id::uuid), Some(&key));
        let written = service
            .initiate_payment(
                &caller(ctx),
                id,
                *input.order_id,
                amount,
                method,
                Some(&key),
            )
            .await
            .map_err(to_api)?;
        Ok(payment_payload(ctx, id, written).await?)
    }

    /// Records that the gateway took a card or bank-transfer payment, with its transaction id.
    async fn start_payment_processing(
        &self,
        ctx: &Context<'_>,
        id: Id,
        #[graphql(desc = "The payment gateway's id for this payment. At most 100 characters.")]
        gateway_transaction_id: GatewayTransactionId,
        #[graphql(
            desc = "A retry with the same key and input answers the first result and writes nothing. At most 200 characters."
        )]
        idempotency_key: IdempotencyKey,
    ) -> async_graphql::Result<PaymentPayload> {
        let id = id.uuid();
        let gateway_transaction_id = String::from(gateway_transaction_id);
        let key = required_key(
            idempotency_key,
            "startPaymentProcessing",
            &(id, &gateway_transaction_id),
        )?;
        let written = payments(ctx)?
            .start_payment_processing(&caller(ctx), id, gateway_transaction_id, Some(&key))
            .await
            .map_err(to_api)?;
        Ok(payment_payload(ctx, id, written).await?)
    }

    /// Completes a payment (card and bank transfer once processing, cash straight away) and records
    /// it on its order, which becomes `PAID` once payments cover its total. If the order refuses to
    /// record it, the payment stays completed and the order's error is answered: retry, or refund.
    async fn complete_payment(
        &self,
        ctx: &Context<'_>,
        id: Id,
        #[graphql(
            desc = "A retry with the same key and input answers the first result and writes nothing. At most 200 characters."
        )]
        idempotency_key: IdempotencyKey,
    ) -> async_graphql::Result<PaymentPayload> {
        let id = id.uuid();
        let key = required_key(idempotency_key, "completePayment", &id)?;
        let written = payments(ctx)?
            .complete_payment(&caller(ctx), id, Some(&key))
            .await
            .map_err(to_api)?;
        Ok(payment_payload(ctx, id, written).await?)
    }

    /// Records a completed payment on its order when completing it could not (a no-op when done).
    async fn record_payment_on_order(
        &self,
        ctx: &Context<'_>,
        id: Id,
        #[graphql(
            desc = "A retry with the same key and input answers the first result and writes nothing. At most 200 characters."
        )]
        idempotency_key: IdempotencyKey,
    ) -> async_graphql::Result<PaymentPayload> {
        let id = id.uuid();
        let key = required_key(idempotency_key, "recordPaymentOnOrder", &id)?;
        let written = payments(ctx)?
            .record_payment_on_order(&caller(ctx), id, Some(&key))
            .await
            .map_err(to_api)?;
        Ok(payment_payload(ctx, id, written).await?)
    }

    /// Records that a pending or processing payment failed.
    async fn fail_payment(
        &self,
        ctx: &Context<'_>,
        id: Id,
        #[graphql(
            desc = "Why, in words people will read in the log. At most 1000 characters; may span lines."
        )]
        reason: Reason,
        #[graphql(
            desc = "A retry with the same key and input answers the first result and writes nothing. At most 200 characters."
        )]
        idempotency_key: IdempotencyKey,
    ) -> async_graphql::Result<PaymentPayload> {
        let id = id.uuid();
        let reason = String::from(reason);
        let key = required_key(idempotency_key, "failPayment", &(id, &reason))?;
        let written = payments(ctx)?
            .fail_payment(&caller(ctx), id, reason, Some(&key))
            .await
            .map_err(to_api)?;
        Ok(payment_payload(ctx, id, written).await?)
    }

    /// Cancels a pending payment (no money has moved).
    async fn cancel_payment(
        &self,
        ctx: &Context<'_>,
        id: Id,
        #[graphql(
            desc = "Why, in words people will read in the log. At most 1000 characters; may span lines."
        )]
        reason: Reason,
        #[graphql(
            desc = "A retry with the same key and input answers the first result and writes nothing. At most 200 characters."
        )]
        idempotency_key: IdempotencyKey,
    ) -> async_graphql::Result<PaymentPayload> {
        let id = id.uuid();
        let reason = String::from(reason);
        let key = required_key(idempotency_key, "cancelPayment", &(id, &reason))?;
        let written = payments(ctx)?
            .cancel_payment(&caller(ctx), id, reason, Some(&key))
            .await
            .map_err(to_api)?;
        Ok(payment_payload(ctx, id, written).await?)
    }

    /// Refunds part or all of a completed payment and records it on the order. Refunds never add up
    /// to more than was paid (`REFUND_EXCEEDS_PAID`).
    async fn refund_payment(
        &self,
        ctx: &Context<'_>,
        input: RefundPaymentInput,
        #[graphql(
            desc = "A retry with the same key and input answers the first result and writes nothing. At most 200 characters."
        )]
        idempotency_key: IdempotencyKey,
    ) -> async_graphql::Result<PaymentPayload> {
        let key = required_key(idempotency_key, "refundPayment", &input)?;
        let amount = input.amount.to_domain()?;
        let service = payments(ctx)?;
        let payment_id = input.payment_id.uuid();
        let refund_id = input
            .refund_id
            .map(Id::uuid)
            .unwrap_or_else(|| refund_id_for(payment_id, &key));
        let written = service
            .refund_payment(
                &caller(ctx),
                payment_id,
                refund_id,
                amount,
                input.reason.into(),
                Some(&key),
            )
            .await
            .map_err(to_api)?;
        Ok(payment_payload(ctx, payment_id, written).await?)
    }

    /// Hands a paid order over to its customer: the order is `COMPLETED` and its vehicle `SOLD`.
    /// Retrying on a completed order whose vehicle is not yet sold sells it.
    async fn hand_over_order(
        &self,
        ctx: &Context<'_>,
        id: Id,
        #[graphql(
            desc = "A retry with the same key and input answers the first result and writes nothing. At most 200 characters."
        )]
        idempotency_key: IdempotencyKey,
    ) -> async_graphql::Result<OrderPayload> {
        let id = id.uuid();
        let key = required_key(idempotency_key, "handOverOrder", &id)?;
        let written = payments(ctx)?
            .hand_over_order(&caller(ctx), id, Some(&key))
            .await
            .map_err(to_api)?;
        settle(ctx, &written).await?;
        Ok(OrderPayload {
            order: queries::orders::find(queries::read_models(ctx)?.pool(), id).await?,
            position: Position(written.position),
            replayed: written.replayed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twelve_or_more_digits_are_a_card_number_refused_without_repeating_it() {
        for number in [
            "411111111111",
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "card 5500000000000004",
        ] {
            let err = card_last4(number).unwrap_err();
            assert_eq!(err.code, CARD_NUMBER_REFUSED, "{number}");
            let digits: String = number.chars().filter(char::is_ascii_digit).collect();
            for part in [&digits[..], &digits[..4], &digits[digits.len() - 4..]] {
                assert!(!err.message.contains(part), "{}", err.message);
            }
        }
    }

    #[test]
    fn anything_else_but_four_digits_is_a_validation_error() {
        assert_eq!(card_last4("4242").unwrap().as_str(), "4242");
        for wrong in ["", "424", "42424", "42a4", "41111111111"] {
            let err = card_last4(wrong).unwrap_err();
            assert_eq!(err.code, "VALIDATION", "{wrong}");
            assert!(!err.message.contains(wrong) || wrong.is_empty());
        }
    }

    #[test]
    fn card_digits_are_redacted_from_the_inputs_debug_form() {
        let input = InitiatePaymentInput {
            id: None,
            order_id: Id::new(Uuid::from_u128(1)).unwrap(),
            amount: MoneyInput {
                amount: queries::scalars::Decimal("1.00".parse().unwrap()),
                currency: queries::scalars::Currency::RUB,
            },
            method: PaymentMethod::Card,
            card_last4: Some(CardDigits::new("4242").unwrap()),
        };
        let debug = format!("{input:?}");
        assert!(!debug.contains("4242"), "{debug}");
        assert!(debug.contains("<redacted>"));
    }

    #[test]
    fn only_card_payments_carry_digits_and_credit_is_not_initiated_here() {
        assert!(method(PaymentMethod::Cash, None).is_ok());
        assert!(method(PaymentMethod::BankTransfer, None).is_ok());
        for (kind, card) in [
            (PaymentMethod::Card, None),
            (PaymentMethod::Cash, Some("4242")),
            (PaymentMethod::Credit, None),
        ] {
            assert_eq!(method(kind, card).unwrap_err().code, "VALIDATION");
        }
        // The card check comes first, whatever the method.
        assert_eq!(
            method(PaymentMethod::Cash, Some("4111111111111111"))
                .unwrap_err()
                .code,
            CARD_NUMBER_REFUSED
        );
    }
}
