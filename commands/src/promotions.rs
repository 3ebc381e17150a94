//! GraphQL mutations for promotions and promo codes (the commands are
//! [`Dealership`](crate::Dealership)'s: applying a code spans the promotion and the order).

use aggregates::order::Discount;
use aggregates::promotion::{MAX_ELIGIBLE_ENTRIES, PromotionTerms};
use aggregates::vehicle::Condition as DomainCondition;
use async_graphql::{Context, InputObject, Object, SimpleObject};
use queries::input::{Brand, Id, IdempotencyKey, Model, PromoCodeText, PromotionTitle, Reason};
use queries::promotions::Promotion;
use queries::scalars::{Date, Position};
use queries::snapshot::Snapshot;
use queries::vehicles::Condition;
use queries::{ApiError, ApiResult};
use serde::Serialize;

use crate::mutations::{
    DiscountInput, OrderPayload, caller, dealership, idempotency, order_payload, settle, to_api,
};
use crate::sender::Written;

#[derive(InputObject, Clone, Debug, Serialize)]
pub struct CreatePromotionInput {
    /// The promo code customers quote: 3 to 32 of the letters A-Z (any case; stored upper-cased),
    /// digits and '-'. It names the promotion. At most 32 characters.
    pub code: PromoCodeText,
    /// What staff and reports call it. At most 200 characters.
    pub title: PromotionTitle,
    /// Exactly one of `percent` or `amount`. A percentage is rounded to kopecks half away from
    /// zero on each order's price, as every discount is.
    pub discount: DiscountInput,
    /// First business date (Moscow) the code may be applied.
    pub valid_from: Date,
    /// Last business date (Moscow) the code may be applied, inclusive.
    pub valid_until: Date,
    /// Brands it applies to, any case (empty: any brand); at most 50. At most 100 characters each.
    #[graphql(default)]
    pub brands: Vec<Brand>,
    /// Models it applies to, any case (empty: any model); at most 50. At most 100 characters each.
    #[graphql(default)]
    pub models: Vec<Model>,
    /// Conditions it applies to (empty: new and used cars).
    #[graphql(default)]
    pub conditions: Vec<Condition>,
    /// How many orders may hold the code at once (a cancelled order gives its use back).
    pub total_uses: i32,
    /// How many of them may be one customer's; at most `totalUses`.
    pub uses_per_customer: i32,
}

#[derive(SimpleObject)]
pub struct PromotionPayload {
    /// The promotion as the read model now shows it (null only if it could not catch up in time).
    pub promotion: Option<Promotion>,
    pub position: Position,
    pub replayed: bool,
}

async fn promotion_payload(
    ctx: &Context<'_>,
    code: &str,
    written: Written,
) -> ApiResult<PromotionPayload> {
    settle(ctx, &written).await?;
    let mut snapshot = Snapshot::open(queries::read_models(ctx)?.pool()).await?;
    Ok(PromotionPayload {
        promotion: queries::promotions::find(&mut snapshot, code).await?,
        position: Position(written.position),
        replayed: written.replayed,
    })
}

fn limit(value: i32, what: &str) -> ApiResult<u32> {
    u32::try_from(value).map_err(|_| ApiError::validation(format!("{what} must not be negative")))
}

/// Promotions and promo codes.
#[derive(Default)]
pub struct PromotionsMutation;

#[Object]
impl PromotionsMutation {
    /// Creates a promotion under its promo code. A code is one promotion's for good:
    /// `PROMO_CODE_TAKEN` if another has it.
    async fn create_promotion(
        &self,
        ctx: &Context<'_>,
        input: CreatePromotionInput,
        #[graphql(
            desc = "A retry with the same key and input answers the first result and writes nothing. At most 200 characters."
        )]
        idempotency_key: Option<IdempotencyKey>,
    ) -> async_graphql::Result<PromotionPayload> {
        let key = idempotency(idempotency_key, "createPromotion", &input)?;
        if input.brands.len() > MAX_ELIGIBLE_ENTRIES || input.models.len() > MAX_ELIGIBLE_ENTRIES {
            return Err(ApiError::validation("at most 50 brands and 50 models").into());
        }
        let discount = match (input.discount.percent, input.discount.amount) {
            (Some(percent), None) => Discount::Percentage { percent: percent.0 },
            (None, Some(amount)) => Discount::Fixed {
                amount: amount.to_domain()?,
            },
            _ => return Err(ApiError::validation("give exactly one of percent or amount").into()),
        };
        let code = input.code.to_string();
        let terms = PromotionTerms {
            code: code.clone(),
            name: input.title.into_string(),
            discount,
            valid_from: input.valid_from.0,
            valid_until: input.valid_until.0,
            brands: input.brands.into_iter().map(Brand::into_string).collect(),
            models: input.models.into_iter().map(Model::into_string).collect(),
            conditions: input
                .conditions
                .into_iter()
                .map(|c| match c {
                    Condition::New => DomainCondition::New,
                    Condition::Used => DomainCondition::Used,
                })
                .collect(),
            total_uses: limit(input.total_uses, "totalUses")?,
            uses_per_customer: limit(input.uses_per_customer, "usesPerCustomer")?,
        };
        let written = dealership(ctx)?
            .create_promotion(&caller(ctx), terms, key.as_ref())
            .await
            .map_err(to_api)?;
        Ok(promotion_payload(ctx, &code, written).await?)
    }

    /// Ends a promotion: its code redeems no more (`PROMO_CODE_EXPIRED`); orders holding a use
    /// keep their discount.
    async fn end_promotion(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The promo code. At most 32 characters.")] code: PromoCodeText,
        #[graphql(
            desc = "Why, in words people will read in the log. At most 1000 characters; may span lines."
        )]
        reason: Reason,
        #[graphql(
            desc = "A retry with the same key and input answers the first result and writes nothing. At most 200 characters."
        )]
        idempotency_key: Option<IdempotencyKey>,
    ) -> async_graphql::Result<PromotionPayload> {
        let reason = String::from(reason);
        let key = idempotency(idempotency_key, "endPromotion", &(&code, &reason))?;
        let written = dealership(ctx)?
            .end_promotion(&caller(ctx), &code, reason, key.as_ref())
            .await
            .map_err(to_api)?;
        Ok(promotion_payload(ctx, &code, written).await?)
    }

    /// Applies a promo code to a draft order, all or nothing: the order's total carries the
    /// code's discount and the code holds one use for the order, or nothing changed. Refused with
    /// `PROMO_CODE_EXHAUSTED` (every use held), `PROMO_CODE_CUSTOMER_LIMIT` (this customer holds
    /// as many as one may), `PROMO_CODE_EXPIRED` (outside its dates, or ended),
    /// `PROMO_CODE_NOT_ELIGIBLE` (not for this car), `PROMO_CODE_ALREADY_APPLIED` (another code
    /// set the price; codes do not stack). A code replaces a discount the desk gave.
    async fn apply_promo_code(
        &self,
        ctx: &Context<'_>,
        order_id: Id,
        #[graphql(desc = "The promo code, any case. At most 32 characters.")] code: PromoCodeText,
        #[graphql(
            desc = "A retry with the same key and input answers the first result and writes nothing. At most 200 characters."
        )]
        idempotency_key: Option<IdempotencyKey>,
    ) -> async_graphql::Result<OrderPayload> {
        let order_id = order_id.uuid();
        let key = idempotency(idempotency_key, "applyPromoCode", &(order_id, &code))?;
        let written = dealership(ctx)?
            .apply_promo_code(&caller(ctx), order_id, &code, key.as_ref())
            .await
            .map_err(to_api)?;
        Ok(order_payload(ctx, written).await?)
    }
}
