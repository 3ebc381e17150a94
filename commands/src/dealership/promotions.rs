//! Promotions and promo codes: creating and ending them, applying a code to an order, and giving
//! an order's use back.
//!
//! Applying a code spans two aggregates, in this order:
//! 1. the promotion redeems a use for the order (the promotion's stream is the one truth of how
//!    many uses are held: racing redemptions meet at its optimistic lock and are re-decided
//!    against the winners, so the limits hold under any concurrency). Redeeming again for the same
//!    order is a no-op, so a retry repeats it safely;
//! 2. the order applies the code's discount, naming the promotion (`DiscountApplied`, the one
//!    truth of the order's price). If the order refuses, the use is released again.
//!
//! A crash between the steps leaves a use held by an order without the discount: retrying
//! `applyPromoCode` finishes it, and cancelling the order gives the use back, because a
//! cancellation releases every use that order holds in any promotion (found in the log, not in
//! the order), not only the one its discount names.

use aggregates::order::OrderStatus;
use aggregates::promotion::{
    EligibleVehicle, Promotion, PromotionCommand, PromotionError, PromotionTerms, normalise_code,
    promotion_id,
};
use aggregates::vehicle::VehicleEvent;
use eventstore::Backend;
use uuid::Uuid;

use super::Dealership;
use crate::context::RequestContext;
use crate::error::CommandError;
use crate::sender::{Call, Idempotency, Written};
use aggregates::order::OrderCommand;

/// How many optimistic-lock conflicts a redemption is re-decided after. Each conflict is another
/// append to the promotion's stream that won, so this bounds the burst of simultaneous
/// redemptions of one code that all get a decision rather than `CONFLICT`.
const REDEEM_ATTEMPTS: usize = 64;

/// The most promotions one cancellation looks through for uses its order holds.
const MAX_PROMOTIONS_PER_ORDER: i64 = 16;

impl Dealership {
    /// Current state of a promotion (write model).
    pub async fn promotion(&self, id: Uuid) -> Result<Promotion, CommandError> {
        self.sender.load(&self.promotion_store, id).await
    }

    /// The promotion id of a code as a customer types it.
    pub fn promotion_id_of(code: &str) -> Result<Uuid, CommandError> {
        normalise_code(code)
            .map(|code| promotion_id(&code))
            .ok_or_else(|| {
                CommandError::Validation(
                    "a promo code is 3 to 32 of the letters A-Z, digits and '-'".into(),
                )
            })
    }

    /// Creates a promotion under its code (the code decides the promotion's id).
    pub async fn create_promotion(
        &self,
        ctx: &RequestContext,
        terms: PromotionTerms,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        let id = Self::promotion_id_of(&terms.code)?;
        self.sender
            .execute(
                &self.promotions,
                id,
                PromotionCommand::Create {
                    terms,
                    created_at: self.now(),
                },
                Call::new(ctx, "CreatePromotion", idempotency),
            )
            .await
    }

    /// Ends a promotion: its code redeems no more; uses held stay.
    pub async fn end_promotion(
        &self,
        ctx: &RequestContext,
        code: &str,
        reason: String,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        let id = Self::promotion_id_of(code)?;
        self.sender
            .execute(
                &self.promotions,
                id,
                PromotionCommand::End {
                    reason,
                    ended_at: self.now(),
                },
                Call::new(ctx, "EndPromotion", idempotency),
            )
            .await
    }

    /// Applies a promo code to a draft order, all or nothing: the order's total carries the code's
    /// discount and the code holds one use for the order, or neither changed.
    pub async fn apply_promo_code(
        &self,
        ctx: &RequestContext,
        order_id: Uuid,
        code: &str,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        if let Some(written) = self.sender.replay(order_id, idempotency).await? {
            return Ok(written);
        }
        let promotion_id = Self::promotion_id_of(code)?;
        let order = self.order(order_id).await?;
        let (Some(customer_id), Some(vehicle_id)) = (order.customer_id(), order.vehicle_id())
        else {
            return Err(CommandError::NotFound {
                what: "order",
                id: order_id.to_string(),
            });
        };
        let promotion = self.promotion(promotion_id).await?;
        let Some(terms) = promotion.terms().cloned() else {
            return Err(PromotionError::NotFound.into());
        };
        let apply = OrderCommand::ApplyDiscount {
            discount: terms.discount.clone(),
            promotion_id: Some(promotion_id),
        };
        if order.status() != OrderStatus::Draft
            || order
                .promotion_id()
                .is_some_and(|held| held != promotion_id)
        {
            // Not a draft, or another code's discount in force: the order refuses with its own
            // precise error, and no use is taken.
            return self
                .sender
                .execute(
                    &self.orders,
                    order_id,
                    apply,
                    Call::new(ctx, "ApplyPromoCode", idempotency),
                )
                .await;
        }
        let now = self.now();
        let redeem = PromotionCommand::Redeem {
            order_id,
            customer_id,
            vehicle: self.eligible_vehicle(vehicle_id).await?,
            business_date: crate::clock::business_date(now),
            redeemed_at: now,
        };
        self.sender
            .execute_contended(
                &self.promotions,
                promotion_id,
                redeem,
                Call::new(ctx, "ApplyPromoCode", None),
                REDEEM_ATTEMPTS,
            )
            .await?;
        match self
            .sender
            .execute(
                &self.orders,
                order_id,
                apply,
                Call::new(ctx, "ApplyPromoCode", idempotency),
            )
            .await
        {
            Ok(written) => Ok(written),
            Err(refused) => {
                // A duplicate running alongside may have applied it between the two steps: then
                // the use is the order's.
                if self.order(order_id).await?.promotion_id() == Some(promotion_id) {
                    return self
                        .already_written::<aggregates::order::Order>(order_id)
                        .await;
                }
                let release = PromotionCommand::Release {
                    order_id,
                    released_at: self.now(),
                };
                if let Err(release_err) = self
                    .sender
                    .execute_contended(
                        &self.promotions,
                        promotion_id,
                        release,
                        Call::new(ctx, "ApplyPromoCode", None),
                        REDEEM_ATTEMPTS,
                    )
                    .await
                {
                    tracing::error!(
                        order = %order_id, promotion = %promotion_id, error = %release_err,
                        "the order refused the promo code's discount and the use could not be \
                         given back; cancelling the order gives it back"
                    );
                }
                Err(refused)
            }
        }
    }

    /// Gives back every promo code use `order_id` holds; the global position of the last release
    /// written, if any was.
    pub(super) async fn release_promo_codes(
        &self,
        ctx: &RequestContext,
        order_id: Uuid,
        command: &'static str,
    ) -> Result<Option<i64>, CommandError> {
        let mut position = None;
        for promotion_id in self.promotions_redeemed_by(order_id).await? {
            if !self.promotion(promotion_id).await?.holds(order_id) {
                continue;
            }
            let written = self
                .sender
                .execute_contended(
                    &self.promotions,
                    promotion_id,
                    PromotionCommand::Release {
                        order_id,
                        released_at: self.now(),
                    },
                    Call::new(ctx, command, None),
                    REDEEM_ATTEMPTS,
                )
                .await?;
            position = Some(written.position.max(position.unwrap_or(0)));
        }
        Ok(position)
    }

    /// The promotions that ever redeemed a use for `order_id`, from the log itself (so a use
    /// whose order never recorded the discount is found too); each one's state decides whether
    /// the use is still held.
    async fn promotions_redeemed_by(&self, order_id: Uuid) -> Result<Vec<Uuid>, CommandError> {
        let sql = match self.sender.db().backend() {
            Backend::Sqlite => {
                "SELECT DISTINCT aggregate_id FROM events
                  WHERE aggregate_type = 'Promotion' AND event_type = 'PromoCodeRedeemed'
                    AND json_extract(payload, '$.PromoCodeRedeemed.order_id') = $1
                  LIMIT $2"
            }
            Backend::Postgres => {
                "SELECT DISTINCT aggregate_id FROM events
                  WHERE aggregate_type = 'Promotion' AND event_type = 'PromoCodeRedeemed'
                    AND payload -> 'PromoCodeRedeemed' ->> 'order_id' = $1
                  LIMIT $2"
            }
        };
        let ids: Vec<String> = sqlx::query_scalar(sql)
            .bind(order_id.to_string())
            .bind(MAX_PROMOTIONS_PER_ORDER)
            .fetch_all(self.sender.db().pool())
            .await?;
        ids.iter()
            .map(|id| {
                Uuid::parse_str(id).map_err(|err| {
                    CommandError::Internal(format!("promotion stream id {id:?}: {err}"))
                })
            })
            .collect()
    }

    /// The brand, model and condition of a stocked vehicle, from its stocking event (they never
    /// change afterwards).
    async fn eligible_vehicle(&self, vehicle_id: Uuid) -> Result<EligibleVehicle, CommandError> {
        let first = self
            .sender
            .log()
            .stream("Vehicle", &vehicle_id.to_string(), 0, 1)
            .await?;
        match first.first().map(|event| event.decode::<VehicleEvent>()) {
            Some(Ok(VehicleEvent::VehicleStocked {
                brand,
                model,
                condition,
                ..
            })) => Ok(EligibleVehicle {
                brand,
                model,
                condition,
            }),
            Some(Err(err)) => Err(err.into()),
            _ => Err(CommandError::NotFound {
                what: "vehicle",
                id: vehicle_id.to_string(),
            }),
        }
    }
}
