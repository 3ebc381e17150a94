//! GraphQL mutations for insurance. Dates are ISO `YYYY-MM-DD` strings, money is `MoneyInput`.
//! Mutations that move money (premium, cancellation refund, claim payment) require an
//! `idempotencyKey`.

use aggregates::policy::tariffs::{Driver, Product, Region};
use async_graphql::{Context, InputObject, Object, SimpleObject};
use chrono::NaiveDate;
use queries::input::{ClaimDescription, DateText, Id, IdempotencyKey, InsurerId, Reason};
use queries::insurance::{
    InsuranceClaim, InsuranceProduct, InsuranceQuote, InsuranceRegion, Policy,
};
use queries::scalars::{MoneyInput, Position};
use queries::{ApiError, ApiResult};
use serde::Serialize;
use uuid::Uuid;

use super::{Insurance, QuoteRequest};
use crate::mutations::{caller, idempotency, settle, to_api};
use crate::sender::Written;

#[derive(InputObject, Clone, Debug, Serialize)]
pub struct DriverInput {
    /// Full years, 18 to 100.
    pub age: i32,
    /// Full years since the licence was issued.
    pub driving_experience_years: i32,
    pub region: InsuranceRegion,
    /// OSAGO bonus-malus class 0 to 13 (3 for a new driver; higher is better).
    #[graphql(default = 3)]
    pub bonus_malus_class: i32,
}

#[derive(InputObject, Clone, Debug, Serialize)]
pub struct RequestInsuranceQuoteInput {
    /// Client-chosen id of the quote, which is also the id of the policy issued from it.
    pub id: Option<Id>,
    pub product: InsuranceProduct,
    /// The registered customer who will hold the policy.
    pub customer_id: Id,
    /// A stocked vehicle: its brand, model, year and list price are read from the ledger.
    pub vehicle_id: Id,
    pub driver: DriverInput,
    /// Engine power from the registration certificate, 1 to 2000 hp.
    pub engine_power_hp: i32,
    /// KASKO only: 0, 15000, 30000 or 50000 RUB (none when absent).
    pub deductible: Option<MoneyInput>,
}

#[derive(InputObject, Clone, Debug, Serialize)]
pub struct FileInsuranceClaimInput {
    /// Client-chosen claim id (a new one is generated when absent).
    pub id: Option<Id>,
    /// `YYYY-MM-DD`, inside the covered period and not in the future. At most 10 characters.
    pub incident_date: DateText,
    /// What happened. At most 2000 characters; may span lines.
    pub description: ClaimDescription,
    pub claimed_amount: MoneyInput,
}

#[derive(SimpleObject)]
pub struct InsuranceQuotePayload {
    pub quote: Option<InsuranceQuote>,
    pub position: Position,
    pub replayed: bool,
}

#[derive(SimpleObject)]
pub struct PolicyPayload {
    pub policy: Option<Policy>,
    pub position: Position,
    pub replayed: bool,
}

#[derive(SimpleObject)]
pub struct InsuranceClaimPayload {
    pub claim: Option<InsuranceClaim>,
    pub policy: Option<Policy>,
    pub position: Position,
    pub replayed: bool,
}

/// Quotes, policies and claims.
#[derive(Default)]
pub struct InsuranceMutation;

fn insurance<'a>(ctx: &Context<'a>) -> ApiResult<&'a Insurance> {
    crate::mutations::service(ctx)
}

/// A strict ISO date: exactly `YYYY-MM-DD`.
fn date(text: &str, field: &str) -> ApiResult<NaiveDate> {
    let text = text.trim();
    if text.len() != 10 {
        return Err(ApiError::validation(format!(
            "{field} must be a date as YYYY-MM-DD, got {text:?}"
        )));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        ApiError::validation(format!(
            "{field} must be a date as YYYY-MM-DD, got {text:?}"
        ))
    })
}

fn count(value: i32, field: &str) -> ApiResult<u32> {
    u32::try_from(value).map_err(|_| ApiError::validation(format!("{field} must not be negative")))
}

fn product(product: InsuranceProduct) -> Product {
    match product {
        InsuranceProduct::Osago => Product::Osago,
        InsuranceProduct::Kasko => Product::Kasko,
    }
}

fn region(region: InsuranceRegion) -> Region {
    match region {
        InsuranceRegion::Moscow => Region::Moscow,
        InsuranceRegion::MoscowRegion => Region::MoscowRegion,
        InsuranceRegion::SaintPetersburg => Region::SaintPetersburg,
        InsuranceRegion::Kazan => Region::Kazan,
        InsuranceRegion::Yekaterinburg => Region::Yekaterinburg,
        InsuranceRegion::Novosibirsk => Region::Novosibirsk,
        InsuranceRegion::Other => Region::Other,
    }
}

async fn quote_payload(ctx: &Context<'_>, written: Written) -> ApiResult<InsuranceQuotePayload> {
    settle(ctx, &written).await?;
    Ok(InsuranceQuotePayload {
        quote: queries::insurance::find_quote(queries::read_models(ctx)?.pool(), written.id)
            .await?,
        position: Position(written.position),
        replayed: written.replayed,
    })
}

async fn policy_payload(ctx: &Context<'_>, written: Written) -> ApiResult<PolicyPayload> {
    settle(ctx, &written).await?;
    Ok(PolicyPayload {
        policy: queries::insurance::find_policy(queries::read_models(ctx)?.pool(), written.id)
            .await?,
        position: Position(written.position),
        replayed: written.replayed,
    })
}

async fn claim_payload(
    ctx: &Context<'_>,
    written: Written,
    claim_id: Uuid,
) -> ApiResult<InsuranceClaimPayload> {
    settle(ctx, &written).await?;
    let pool = queries::read_models(ctx)?.pool();
    Ok(InsuranceClaimPayload {
        claim: queries::insurance::find_claim(pool, written.id, claim_id).await?,
        policy: queries::insurance::find_policy(pool, written.id).await?,
        position: Position(written.position),
        replayed: written.replayed,
    })
}

#[Object]
impl InsuranceMutation {
    /// Asks the five partner insurers for OSAGO or KASKO offers for a stocked vehicle and a driver,
    /// and records the quote. Insurers that fail or are too slow are left out and named.
    async fn request_insurance_quote(
        &self,
        ctx: &Context<'_>,
        input: RequestInsuranceQuoteInput,
        #[graphql(
            desc = "A retry with the same key and input answers the first result and writes nothing. At most 200 characters."
        )]
        idempotency_key: Option<IdempotencyKey>,
    ) -> async_graphql::Result<InsuranceQuotePayload> {
        crate::mutations::ensure_own(ctx, crate::mutations::Owned::Customer(*input.customer_id))
            .await?;
        let key = idempotency(idempotency_key, "requestInsuranceQuote", &input)?;
        let service = insurance(ctx)?;
        let request = QuoteRequest {
            product: product(input.product),
            customer_id: *input.customer_id,
            vehicle_id: *input.vehicle_id,
            driver: Driver {
                age: count(input.driver.age, "driver.age")?,
                experience_years: count(
                    input.driver.driving_experience_years,
                    "driver.drivingExperienceYears",
                )?,
                region: region(input.driver.region),
                bonus_malus_class: count(input.driver.bonus_malus_class, "driver.bonusMalusClass")?,
            },
            power_hp: count(input.engine_power_hp, "enginePowerHp")?,
            deductible: input.deductible.map(MoneyInput::to_domain).transpose()?,
        };
        let id = service.id_or_new(input.id.map(Id::uuid), key.as_ref());
        let written = service
            .request_quote(&caller(ctx), id, request, key.as_ref())
            .await
            .map_err(to_api)?;
        Ok(quote_payload(ctx, written).await?)
    }

    /// Selects one insurer's offer from a quote and issues the policy, signed with the dealership's
    /// key. The policy's id is the quote's id. It starts on `startDate` (today when absent).
    async fn select_insurance_offer(
        &self,
        ctx: &Context<'_>,
        quote_id: Id,
        #[graphql(desc = "The insurer id of a recorded offer, e.g. SEVER. At most 32 characters.")]
        insurer: InsurerId,
        #[graphql(desc = "YYYY-MM-DD; today when absent. At most 10 characters.")]
        start_date: Option<DateText>,
        #[graphql(
            desc = "A retry with the same key and input answers the first result and writes nothing. At most 200 characters."
        )]
        idempotency_key: Option<IdempotencyKey>,
    ) -> async_graphql::Result<PolicyPayload> {
        let quote_id = quote_id.uuid();
        let insurer = String::from(insurer);
        let start_date = start_date.map(String::from);
        crate::mutations::ensure_own(ctx, crate::mutations::Owned::Quote(quote_id)).await?;
        let key = idempotency(
            idempotency_key,
            "selectInsuranceOffer",
            &(quote_id, &insurer, &start_date),
        )?;
        let start = start_date
            .as_deref()
            .map(|text| date(text, "startDate"))
            .transpose()?;
        let written = insurance(ctx)?
            .select_offer(&caller(ctx), quote_id, insurer, start, key.as_ref())
            .await
            .map_err(to_api)?;
        Ok(policy_payload(ctx, written).await?)
    }

    /// Records payment of the premium (exactly the premium), which makes the policy active.
    async fn pay_policy_premium(
        &self,
        ctx: &Context<'_>,
        id: Id,
        amount: MoneyInput,
        #[graphql(
            desc = "A retry with the same key and input answers the first result and writes nothing. At most 200 characters."
        )]
        idempotency_key: IdempotencyKey,
    ) -> async_graphql::Result<PolicyPayload> {
        let id = id.uuid();
        let key = idempotency(Some(idempotency_key), "payPolicyPremium", &(id, amount))?;
        let written = insurance(ctx)?
            .pay_premium(&caller(ctx), id, amount.to_domain()?, key.as_ref())
            .await
            .map_err(to_api)?;
        Ok(policy_payload(ctx, written).await?)
    }

    /// Cancels the policy today; the unused days of a paid premium are refunded pro rata.
    async fn cancel_policy(
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
    ) -> async_graphql::Result<PolicyPayload> {
        let id = id.uuid();
        let reason = String::from(reason);
        let key = idempotency(Some(idempotency_key), "cancelPolicy", &(id, &reason))?;
        let written = insurance(ctx)?
            .cancel(&caller(ctx), id, reason, key.as_ref())
            .await
            .map_err(to_api)?;
        Ok(policy_payload(ctx, written).await?)
    }

    /// Marks a policy whose period has ended as expired.
    async fn expire_policy(
        &self,
        ctx: &Context<'_>,
        id: Id,
        #[graphql(
            desc = "A retry with the same key and input answers the first result and writes nothing. At most 200 characters."
        )]
        idempotency_key: Option<IdempotencyKey>,
    ) -> async_graphql::Result<PolicyPayload> {
        let id = id.uuid();
        let key = idempotency(idempotency_key, "expirePolicy", &id)?;
        let written = insurance(ctx)?
            .expire(&caller(ctx), id, key.as_ref())
            .await
            .map_err(to_api)?;
        Ok(policy_payload(ctx, written).await?)
    }

    /// Files a claim for an incident inside the covered period.
    async fn file_insurance_claim(
        &self,
        ctx: &Context<'_>,
        policy_id: Id,
        input: FileInsuranceClaimInput,
        #[graphql(
            desc = "A retry with the same key and input answers the first result and writes nothing. At most 200 characters."
        )]
        idempotency_key: Option<IdempotencyKey>,
    ) -> async_graphql::Result<InsuranceClaimPayload> {
        let policy_id = policy_id.uuid();
        crate::mutations::ensure_own(ctx, crate::mutations::Owned::Policy(policy_id)).await?;
        let key = idempotency(idempotency_key, "fileInsuranceClaim", &(policy_id, &input))?;
        let service = insurance(ctx)?;
        let incident_on = date(&input.incident_date, "incidentDate")?;
        let claimed = input.claimed_amount.to_domain()?;
        let claim_id = service.id_or_new(input.id.map(Id::uuid), key.as_ref());
        let written = service
            .file_claim(
                &caller(ctx),
                policy_id,
                claim_id,
                incident_on,
                input.description.into(),
                claimed,
                key.as_ref(),
            )
            .await
            .map_err(to_api)?;
        Ok(claim_payload(ctx, written, claim_id).await?)
    }

    /// Puts a filed claim under review.
    async fn start_insurance_claim_review(
        &self,
        ctx: &Context<'_>,
        policy_id: Id,
        claim_id: Id,
        #[graphql(
            desc = "A retry with the same key and input answers the first result and writes nothing. At most 200 characters."
        )]
        idempotency_key: Option<IdempotencyKey>,
    ) -> async_graphql::Result<InsuranceClaimPayload> {
        let policy_id = policy_id.uuid();
        let claim_id = claim_id.uuid();
        let key = idempotency(
            idempotency_key,
            "startInsuranceClaimReview",
            &(policy_id, claim_id),
        )?;
        let written = insurance(ctx)?
            .start_claim_review(&caller(ctx), policy_id, claim_id, key.as_ref())
            .await
            .map_err(to_api)?;
        Ok(claim_payload(ctx, written, claim_id).await?)
    }

    /// Approves a claim under review for `amount`: at most the amount claimed and what is left of
    /// the policy's coverage less deductible.
    async fn approve_insurance_claim(
        &self,
        ctx: &Context<'_>,
        policy_id: Id,
        claim_id: Id,
        amount: MoneyInput,
        #[graphql(
            desc = "A retry with the same key and input answers the first result and writes nothing. At most 200 characters."
        )]
        idempotency_key: Option<IdempotencyKey>,
    ) -> async_graphql::Result<InsuranceClaimPayload> {
        let policy_id = policy_id.uuid();
        let claim_id = claim_id.uuid();
        let key = idempotency(
            idempotency_key,
            "approveInsuranceClaim",
            &(policy_id, claim_id, amount),
        )?;
        let written = insurance(ctx)?
            .approve_claim(
                &caller(ctx),
                policy_id,
                claim_id,
                amount.to_domain()?,
                key.as_ref(),
            )
            .await
            .map_err(to_api)?;
        Ok(claim_payload(ctx, written, claim_id).await?)
    }

    /// Rejects a claim under review, with a reason.
    async fn reject_insurance_claim(
        &self,
        ctx: &Context<'_>,
        policy_id: Id,
        claim_id: Id,
        #[graphql(
            desc = "Why, in words people will read in the log. At most 1000 characters; may span lines."
        )]
        reason: Reason,
        #[graphql(
            desc = "A retry with the same key and input answers the first result and writes nothing. At most 200 characters."
        )]
        idempotency_key: Option<IdempotencyKey>,
    ) -> async_graphql::Result<InsuranceClaimPayload> {
        let policy_id = policy_id.uuid();
        let claim_id = claim_id.uuid();
        let reason = String::from(reason);
        let key = idempotency(
            idempotency_key,
            "rejectInsuranceClaim",
            &(policy_id, claim_id, &reason),
        )?;
        let written = insurance(ctx)?
            .reject_claim(&caller(ctx), policy_id, claim_id, reason, key.as_ref())
            .await
            .map_err(to_api)?;
        Ok(claim_payload(ctx, written, claim_id).await?)
    }

    /// Pays an approved claim its approved amount, once.
    async fn pay_insurance_claim(
        &self,
        ctx: &Context<'_>,
        policy_id: Id,
        claim_id: Id,
        #[graphql(
            desc = "A retry with the same key and input answers the first result and writes nothing. At most 200 characters."
        )]
        idempotency_key: IdempotencyKey,
    ) -> async_graphql::Result<InsuranceClaimPayload> {
        let policy_id = policy_id.uuid();
        let claim_id = claim_id.uuid();
        let key = idempotency(
            Some(idempotency_key),
            "payInsuranceClaim",
            &(policy_id, claim_id),
        )?;
        let written = insurance(ctx)?
            .pay_claim(&caller(ctx), policy_id, claim_id, key.as_ref())
            .await
            .map_err(to_api)?;
        Ok(claim_payload(ctx, written, claim_id).await?)
    }
}
