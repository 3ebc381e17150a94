//! Insurance as the `policies` read model shows it: quotes with their offers, policies with their
//! claims, and verification of signed electronic policies.
//!
//! Dates (policy periods, incidents) are ISO `YYYY-MM-DD` strings. The dealership's public key and
//! signatures are standard base64 with padding; verification needs nothing but the document text
//! and the signature a customer saved.

use async_graphql::connection::{Connection, Edge, EmptyFields, OpaqueCursor};
use async_graphql::{ComplexObject, Context, Enum, InputObject, Object, SimpleObject};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use eventstore::DbPool;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::input::{Id, InsurerId, PolicyDocument, PolicyNumber, Signature as SignatureText};
use crate::page::{Page, TotalCount};
use crate::scalars::{DateTime, Decimal, Money};
use crate::{ApiError, ApiResult, read_models};

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum InsuranceProduct {
    /// Compulsory motor third-party liability.
    Osago,
    /// Comprehensive cover of the vehicle.
    Kasko,
}

impl InsuranceProduct {
    pub fn as_str(self) -> &'static str {
        match self {
            InsuranceProduct::Osago => "OSAGO",
            InsuranceProduct::Kasko => "KASKO",
        }
    }

    fn from_stored(text: &str) -> ApiResult<Self> {
        match text {
            "OSAGO" => Ok(InsuranceProduct::Osago),
            "KASKO" => Ok(InsuranceProduct::Kasko),
            other => Err(ApiError::internal(format!("stored product {other:?}"))),
        }
    }
}

/// Where the vehicle is registered (OSAGO territory coefficient).
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum InsuranceRegion {
    Moscow,
    MoscowRegion,
    SaintPetersburg,
    Kazan,
    Yekaterinburg,
    Novosibirsk,
    Other,
}

impl InsuranceRegion {
    fn from_stored(text: &str) -> ApiResult<Self> {
        Ok(match text {
            "MOSCOW" => InsuranceRegion::Moscow,
            "MOSCOW_REGION" => InsuranceRegion::MoscowRegion,
            "SAINT_PETERSBURG" => InsuranceRegion::SaintPetersburg,
            "KAZAN" => InsuranceRegion::Kazan,
            "YEKATERINBURG" => InsuranceRegion::Yekaterinburg,
            "NOVOSIBIRSK" => InsuranceRegion::Novosibirsk,
            "OTHER" => InsuranceRegion::Other,
            other => return Err(ApiError::internal(format!("stored region {other:?}"))),
        })
    }
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyStatus {
    /// Issued; the premium is not paid yet, so it does not cover claims.
    Issued,
    Active,
    Cancelled,
    Expired,
}

impl PolicyStatus {
    fn as_str(self) -> &'static str {
        match self {
            PolicyStatus::Issued => "ISSUED",
            PolicyStatus::Active => "ACTIVE",
            PolicyStatus::Cancelled => "CANCELLED",
            PolicyStatus::Expired => "EXPIRED",
        }
    }

    fn from_stored(text: &str) -> ApiResult<Self> {
        [
            PolicyStatus::Issued,
            PolicyStatus::Active,
            PolicyStatus::Cancelled,
            PolicyStatus::Expired,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
        .ok_or_else(|| ApiError::internal(format!("stored policy status {text:?}")))
    }
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimStatus {
    Filed,
    UnderReview,
    Approved,
    Rejected,
    Paid,
}

impl ClaimStatus {
    fn from_stored(text: &str) -> ApiResult<Self> {
        Ok(match text {
            "FILED" => ClaimStatus::Filed,
            "UNDER_REVIEW" => ClaimStatus::UnderReview,
            "APPROVED" => ClaimStatus::Approved,
            "REJECTED" => ClaimStatus::Rejected,
            "PAID" => ClaimStatus::Paid,
            other => return Err(ApiError::internal(format!("stored claim status {other:?}"))),
        })
    }
}

/// The driver a quote was made for.
#[derive(SimpleObject, Clone, Debug)]
pub struct QuotedDriver {
    pub age: i64,
    pub driving_experience_years: i64,
    pub region: InsuranceRegion,
    pub bonus_malus_class: i64,
}

/// One insurer's offer in a quote.
#[derive(SimpleObject, Clone, Debug)]
pub struct InsuranceOffer {
    /// The insurer's id, e.g. `SEVER`; select the offer by it.
    pub insurer: String,
    pub premium: Money,
    /// Sum insured.
    pub coverage: Money,
    pub deductible: Money,
    /// The dealership's agent commission on this offer, per cent of the premium.
    pub commission_percent: Decimal,
}

#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct InsuranceQuote {
    /// Also the id of the policy issued from it.
    pub id: Uuid,
    pub product: InsuranceProduct,
    pub customer_id: Uuid,
    pub vehicle_id: Uuid,
    pub vehicle_vin: String,
    /// The vehicle's list price when quoted (the KASKO sum insured).
    pub vehicle_value: Money,
    pub power_hp: i64,
    pub driver: QuotedDriver,
    pub deductible: Money,
    /// Cheapest first.
    pub offers: Vec<InsuranceOffer>,
    /// Insurers that failed or did not answer in time.
    pub unanswered_insurers: Vec<String>,
    pub requested_at: DateTime,
}

#[ComplexObject]
impl InsuranceQuote {
    /// The policy issued from this quote, once an offer was selected.
    async fn policy(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Policy>> {
        Ok(find_policy(read_models(ctx)?.pool(), self.id)
            .await?
            .filter(|policy| {
                crate::access::can_see_policy(ctx, policy.customer_id, &policy.insurer)
            }))
    }
}

#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct InsuranceClaim {
    pub id: Uuid,
    pub policy_id: Uuid,
    /// `YYYY-MM-DD`.
    pub incident_date: String,
    /// What happened, as filed; free text that names people: resolved per caller, see
    /// `description`.
    #[graphql(skip)]
    pub description: String,
    pub status: ClaimStatus,
    pub claimed: Money,
    pub approved: Option<Money>,
    pub rejection_reason: Option<String>,
    pub filed_at: DateTime,
    pub review_started_at: Option<DateTime>,
    pub decided_at: Option<DateTime>,
    pub paid_at: Option<DateTime>,
}

#[ComplexObject]
impl InsuranceClaim {
    /// What happened, as filed; `***` for analysts, who read personal data masked.
    async fn description(&self, ctx: &Context<'_>) -> String {
        crate::access::personal(ctx, &self.description)
    }
}

#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Policy {
    pub id: Uuid,
    /// e.g. `ASL-OSAGO-2026-0193A4B00000700080000000000000E1`.
    pub policy_number: String,
    pub product: InsuranceProduct,
    pub insurer: String,
    /// The policy holder.
    pub customer_id: Uuid,
    pub vehicle_id: Uuid,
    pub vehicle_vin: String,
    /// First covered day, `YYYY-MM-DD`.
    pub period_start: String,
    /// Cover ends at 00:00 of this day (exclusive), `YYYY-MM-DD`.
    pub period_end: String,
    pub status: PolicyStatus,
    pub coverage: Money,
    pub premium: Money,
    pub deductible: Money,
    pub commission_percent: Decimal,
    /// The dealership's agent commission, recorded at issue.
    pub commission: Money,
    /// Sum of paid claims; never more than coverage less deductible.
    pub claims_paid: Money,
    /// The pro-rata refund, once cancelled.
    pub refund: Option<Money>,
    pub cancellation_reason: Option<String>,
    pub cancelled_on: Option<String>,
    pub expired_on: Option<String>,
    pub premium_paid_at: Option<DateTime>,
    pub issued_at: DateTime,
    /// The signed electronic policy: canonical JSON, exactly the bytes signed. Save it with the
    /// signature and check them later with `verifyPolicy`.
    pub document: String,
    /// Ed25519 signature of `document`, standard base64.
    pub signature: String,
    /// Which dealership key signed it (see `dealershipPublicKey`).
    pub key_id: String,
    pub updated_at: DateTime,
}

/// The most claims listed on one policy.
const MAX_CLAIMS_LISTED: i64 = 200;

#[ComplexObject]
impl Policy {
    /// Its claims, oldest first (at most 200).
    async fn claims(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<InsuranceClaim>> {
        Ok(claims_of(read_models(ctx)?.pool(), self.id).await?)
    }
}

#[derive(InputObject, Clone, Debug, Default)]
pub struct PolicyFilter {
    pub customer_id: Option<Id>,
    pub vehicle_id: Option<Id>,
    /// An insurer's id, e.g. "SEVER". At most 32 characters.
    pub insurer: Option<InsurerId>,
    pub product: Option<InsuranceProduct>,
    pub status: Option<PolicyStatus>,
}

/// The outcome of checking an electronic policy.
#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
pub struct PolicyVerification {
    /// True when the signature is the dealership's over exactly this document.
    pub valid: bool,
    /// The policy number the document states (only when valid).
    pub policy_number: Option<String>,
    /// Why it is not valid: `MALFORMED_SIGNATURE`, `SIGNATURE_MISMATCH` or `MALFORMED_DOCUMENT`.
    pub reason: Option<String>,
}

/// The dealership's public signing key, put into the schema's data.
#[derive(Clone, Debug)]
pub struct DealershipKey {
    key: VerifyingKey,
    key_id: String,
}

impl DealershipKey {
    pub fn new(key: VerifyingKey) -> Self {
        let digest = Sha256::digest(key.as_bytes());
        let key_id = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        Self { key, key_id }
    }

    /// The first 8 bytes of SHA-256 of the public key, in hex.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The 32-byte public key, standard base64.
    pub fn base64(&self) -> String {
        STANDARD.encode(self.key.as_bytes())
    }

    /// Checks `signature` (base64) over `document`'s UTF-8 bytes.
    pub fn verify(&self, document: &str, signature: &str) -> PolicyVerification {
        let refused = |reason: &str| PolicyVerification {
            valid: false,
            policy_number: None,
            reason: Some(reason.to_owned()),
        };
        let Some(signature) = STANDARD
            .decode(signature.trim())
            .ok()
            .and_then(|bytes| Signature::from_slice(&bytes).ok())
        else {
            return refused("MALFORMED_SIGNATURE");
        };
        if self.key.verify(document.as_bytes(), &signature).is_err() {
            return refused("SIGNATURE_MISMATCH");
        }
        match aggregates::policy::document::policy_number_of(document) {
            Some(number) => PolicyVerification {
                valid: true,
                policy_number: Some(number),
                reason: None,
            },
            None => refused("MALFORMED_DOCUMENT"),
        }
    }
}

/// The dealership's key as the API shows it.
#[derive(SimpleObject, Clone, Debug)]
pub struct PublicKey {
    /// Ed25519 public key, 32 bytes in standard base64.
    pub public_key: String,
    pub key_id: String,
    pub algorithm: String,
}

#[derive(sqlx::FromRow)]
struct QuoteRow {
    quote_id: String,
    product: String,
    customer_id: String,
    vehicle_id: String,
    vehicle_vin: String,
    vehicle_value_minor: i64,
    power_hp: i64,
    driver_age: i64,
    driver_experience_years: i64,
    region: String,
    bonus_malus_class: i64,
    currency: String,
    deductible_minor: i64,
    unanswered_insurers: String,
    requested_at: String,
}

#[derive(sqlx::FromRow)]
struct OfferRow {
    insurer: String,
    currency: String,
    premium_minor: i64,
    coverage_minor: i64,
    deductible_minor: i64,
    commission_percent: String,
}

fn decimal(text: &str) -> ApiResult<Decimal> {
    text.parse().map(Decimal).map_err(ApiError::internal)
}

/// One quote by id.
pub async fn find_quote(pool: &DbPool, id: Uuid) -> ApiResult<Option<InsuranceQuote>> {
    let row: Option<QuoteRow> = sqlx::query_as(
        "SELECT quote_id, product, customer_id, vehicle_id, vehicle_vin, vehicle_value_minor, power_hp, driver_age,
                driver_experience_years, region, bonus_malus_class, currency, deductible_minor,
                unanswered_insurers, requested_at
           FROM insurance_quotes WHERE quote_id = $1",
    )
    .bind(id.to_string())
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let offers: Vec<OfferRow> = sqlx::query_as(
        "SELECT insurer, currency, premium_minor, coverage_minor, deductible_minor, commission_percent
           FROM insurance_offers WHERE quote_id = $1 ORDER BY premium_minor, insurer",
    )
    .bind(id.to_string())
    .fetch_all(pool)
    .await?;
    let offers = offers
        .into_iter()
        .map(|offer| {
            Ok(InsuranceOffer {
                premium: Money::from_stored(offer.premium_minor, &offer.currency)?,
                coverage: Money::from_stored(offer.coverage_minor, &offer.currency)?,
                deductible: Money::from_stored(offer.deductible_minor, &offer.currency)?,
                commission_percent: decimal(&offer.commission_percent)?,
                insurer: offer.insurer,
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Some(InsuranceQuote {
        id: crate::parse_stored_uuid(&row.quote_id)?,
        product: InsuranceProduct::from_stored(&row.product)?,
        customer_id: crate::parse_stored_uuid(&row.customer_id)?,
        vehicle_id: crate::parse_stored_uuid(&row.vehicle_id)?,
        vehicle_vin: row.vehicle_vin,
        vehicle_value: Money::from_stored(row.vehicle_value_minor, &row.currency)?,
        power_hp: row.power_hp,
        driver: QuotedDriver {
            age: row.driver_age,
            driving_experience_years: row.driver_experience_years,
            region: InsuranceRegion::from_stored(&row.region)?,
            bonus_malus_class: row.bonus_malus_class,
        },
        deductible: Money::from_stored(row.deductible_minor, &row.currency)?,
        offers,
        unanswered_insurers: serde_json::from_str(&row.unanswered_insurers)
            .map_err(ApiError::internal)?,
        requested_at: DateTime::from_stored(&row.requested_at)?,
    }))
}

#[derive(sqlx::FromRow)]
struct PolicyRow {
    policy_id: String,
    policy_number: String,
    product: String,
    insurer: String,
    customer_id: String,
    vehicle_id: String,
    vehicle_vin: String,
    period_start: String,
    period_end: String,
    status: String,
    currency: String,
    coverage_minor: i64,
    premium_minor: i64,
    deductible_minor: i64,
    commission_percent: String,
    commission_minor: i64,
    claims_paid_minor: i64,
    refund_minor: Option<i64>,
    cancellation_reason: Option<String>,
    cancelled_on: Option<String>,
    expired_on: Option<String>,
    premium_paid_at: Option<String>,
    issued_at: String,
    document: String,
    signature: String,
    key_id: String,
    updated_at: String,
}

const SELECT_POLICY: &str = "SELECT policy_id, policy_number, product, insurer, customer_id, vehicle_id,
        vehicle_vin, period_start, period_end, status, currency, coverage_minor, premium_minor, deductible_minor,
        commission_percent, commission_minor, claims_paid_minor, refund_minor, cancellation_reason, cancelled_on,
        expired_on, premium_paid_at, issued_at, document, signature, key_id, updated_at
   FROM policies";

impl TryFrom<PolicyRow> for Policy {
    type Error = ApiError;

    fn try_from(row: PolicyRow) -> ApiResult<Self> {
        let money = |minor: i64| Money::from_stored(minor, &row.currency);
        Ok(Policy {
            id: crate::parse_stored_uuid(&row.policy_id)?,
            product: InsuranceProduct::from_stored(&row.product)?,
            customer_id: crate::parse_stored_uuid(&row.customer_id)?,
            vehicle_id: crate::parse_stored_uuid(&row.vehicle_id)?,
            status: PolicyStatus::from_stored(&row.status)?,
            coverage: money(row.coverage_minor)?,
            premium: money(row.premium_minor)?,
            deductible: money(row.deductible_minor)?,
            commission_percent: decimal(&row.commission_percent)?,
            commission: money(row.commission_minor)?,
            claims_paid: money(row.claims_paid_minor)?,
            refund: row.refund_minor.map(money).transpose()?,
            premium_paid_at: row
                .premium_paid_at
                .as_deref()
                .map(DateTime::from_stored)
                .transpose()?,
            issued_at: DateTime::from_stored(&row.issued_at)?,
            updated_at: DateTime::from_stored(&row.updated_at)?,
            policy_number: row.policy_number,
            insurer: row.insurer,
            vehicle_vin: row.vehicle_vin,
            period_start: row.period_start,
            period_end: row.period_end,
            cancellation_reason: row.cancellation_reason,
            cancelled_on: row.cancelled_on,
            expired_on: row.expired_on,
            document: row.document,
            signature: row.signature,
            key_id: row.key_id,
        })
    }
}

/// One policy by id.
pub async fn find_policy(pool: &DbPool, id: Uuid) -> ApiResult<Option<Policy>> {
    let row: Option<PolicyRow> = sqlx::query_as(&format!("{SELECT_POLICY} WHERE policy_id = $1"))
        .bind(id.to_string())
        .fetch_optional(pool)
        .await?;
    row.map(Policy::try_from).transpose()
}

/// One policy by its number.
pub async fn find_policy_by_number(pool: &DbPool, number: &str) -> ApiResult<Option<Policy>> {
    let row: Option<PolicyRow> =
        sqlx::query_as(&format!("{SELECT_POLICY} WHERE policy_number = $1"))
            .bind(number.trim())
            .fetch_optional(pool)
            .await?;
    row.map(Policy::try_from).transpose()
}

/// Policies cursor: issue time and id.
pub type PolicyCursor = OpaqueCursor<(String, String)>;

const FILTER: &str = "($1 IS NULL OR customer_id = $1)
    AND ($2 IS NULL OR vehicle_id = $2)
    AND ($3 IS NULL OR insurer = $3)
    AND ($4 IS NULL OR product = $4)
    AND ($5 IS NULL OR status = $5)";

/// Policies matching `filter`, oldest issue first.
pub async fn search_policies(
    pool: &DbPool,
    filter: &PolicyFilter,
    page: Page<PolicyCursor>,
) -> ApiResult<Connection<PolicyCursor, Policy, TotalCount, EmptyFields>> {
    let customer = filter.customer_id.map(|id| id.to_string());
    let vehicle = filter.vehicle_id.map(|id| id.to_string());
    let insurer = filter.insurer.as_deref().map(|i| i.trim().to_uppercase());
    let product = filter.product.map(InsuranceProduct::as_str);
    let status = filter.status.map(PolicyStatus::as_str);
    let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM policies WHERE {FILTER}"))
        .bind(&customer)
        .bind(&vehicle)
        .bind(&insurer)
        .bind(product)
        .bind(status)
        .fetch_one(pool)
        .await?;
    let (after_issued, after_id) = page
        .after
        .as_ref()
        .map(|cursor| cursor.0.clone())
        .unwrap_or_default();
    let rows: Vec<PolicyRow> = sqlx::query_as(&format!(
        "{SELECT_POLICY} WHERE {FILTER} AND (issued_at, policy_id) > ($6, $7)
          ORDER BY issued_at, policy_id LIMIT $8"
    ))
    .bind(&customer)
    .bind(&vehicle)
    .bind(&insurer)
    .bind(product)
    .bind(status)
    .bind(after_issued)
    .bind(after_id)
    .bind(page.fetch_limit())
    .fetch_all(pool)
    .await?;
    let has_next = rows.len() > page.first;
    let mut connection = Connection::with_additional_fields(
        page.has_previous,
        has_next,
        TotalCount { total_count: total },
    );
    for row in rows.into_iter().take(page.first) {
        let cursor = OpaqueCursor((row.issued_at.clone(), row.policy_id.clone()));
        connection
            .edges
            .push(Edge::new(cursor, Policy::try_from(row)?));
    }
    Ok(connection)
}

#[derive(sqlx::FromRow)]
struct ClaimRow {
    policy_id: String,
    claim_id: String,
    incident_date: String,
    description: String,
    status: String,
    currency: String,
    claimed_minor: i64,
    approved_minor: Option<i64>,
    rejection_reason: Option<String>,
    filed_at: String,
    review_started_at: Option<String>,
    decided_at: Option<String>,
    paid_at: Option<String>,
}

impl TryFrom<ClaimRow> for InsuranceClaim {
    type Error = ApiError;

    fn try_from(row: ClaimRow) -> ApiResult<Self> {
        let time = |text: &Option<String>| text.as_deref().map(DateTime::from_stored).transpose();
        Ok(InsuranceClaim {
            id: crate::parse_stored_uuid(&row.claim_id)?,
            policy_id: crate::parse_stored_uuid(&row.policy_id)?,
            status: ClaimStatus::from_stored(&row.status)?,
            claimed: Money::from_stored(row.claimed_minor, &row.currency)?,
            approved: row
                .approved_minor
                .map(|minor| Money::from_stored(minor, &row.currency))
                .transpose()?,
            filed_at: DateTime::from_stored(&row.filed_at)?,
            review_started_at: time(&row.review_started_at)?,
            decided_at: time(&row.decided_at)?,
            paid_at: time(&row.paid_at)?,
            incident_date: row.incident_date,
            description: row.description,
            rejection_reason: row.rejection_reason,
        })
    }
}

const SELECT_CLAIM: &str = "SELECT policy_id, claim_id, incident_date, description, status, currency,
        claimed_minor, approved_minor, rejection_reason, filed_at, review_started_at, decided_at, paid_at
   FROM insurance_claims";

/// The claims of one policy, oldest first.
pub async fn claims_of(pool: &DbPool, policy_id: Uuid) -> ApiResult<Vec<InsuranceClaim>> {
    let rows: Vec<ClaimRow> = sqlx::query_as(&format!(
        "{SELECT_CLAIM} WHERE policy_id = $1 ORDER BY last_position, claim_id LIMIT $2"
    ))
    .bind(policy_id.to_string())
    .bind(MAX_CLAIMS_LISTED)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(InsuranceClaim::try_from).collect()
}

/// One claim of one policy.
pub async fn find_claim(
    pool: &DbPool,
    policy_id: Uuid,
    claim_id: Uuid,
) -> ApiResult<Option<InsuranceClaim>> {
    let row: Option<ClaimRow> = sqlx::query_as(&format!(
        "{SELECT_CLAIM} WHERE policy_id = $1 AND claim_id = $2"
    ))
    .bind(policy_id.to_string())
    .bind(claim_id.to_string())
    .fetch_optional(pool)
    .await?;
    row.map(InsuranceClaim::try_from).transpose()
}

fn dealership_key<'a>(ctx: &Context<'a>) -> ApiResult<&'a DealershipKey> {
    ctx.data::<DealershipKey>()
        .map_err(|err| ApiError::internal(format!("schema data missing: {}", err.message)))
}

/// Quotes, policies, claims and electronic-policy verification.
#[derive(Default)]
pub struct InsuranceQuery;

#[Object]
impl InsuranceQuery {
    /// One insurance quote with its offers. Unknown ids are a `NOT_FOUND` error.
    async fn quote(&self, ctx: &Context<'_>, id: Id) -> async_graphql::Result<InsuranceQuote> {
        Ok(find_quote(read_models(ctx)?.pool(), *id)
            .await?
            .filter(|quote| crate::access::can_see_customer(ctx, quote.customer_id))
            .ok_or_else(|| ApiError::not_found("quote", id))?)
    }

    /// One policy by id. Unknown ids are a `NOT_FOUND` error.
    async fn policy(&self, ctx: &Context<'_>, id: Id) -> async_graphql::Result<Policy> {
        Ok(find_policy(read_models(ctx)?.pool(), *id)
            .await?
            .filter(|policy| {
                crate::access::can_see_policy(ctx, policy.customer_id, &policy.insurer)
            })
            .ok_or_else(|| ApiError::not_found("policy", id))?)
    }

    /// One policy by its number. Unknown numbers are a `NOT_FOUND` error.
    async fn policy_by_number(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The policy number as printed on the policy. At most 64 characters.")]
        number: PolicyNumber,
    ) -> async_graphql::Result<Policy> {
        Ok(find_policy_by_number(read_models(ctx)?.pool(), &number)
            .await?
            .filter(|policy| {
                crate::access::can_see_policy(ctx, policy.customer_id, &policy.insurer)
            })
            .ok_or_else(|| ApiError::not_found("policy", &number))?)
    }

    /// Policies, oldest issue first, filtered.
    async fn policies(
        &self,
        ctx: &Context<'_>,
        filter: Option<PolicyFilter>,
        #[graphql(desc = "Page size, 1 to 200 (default 50).")] first: Option<i32>,
        #[graphql(
            desc = "Continue after this cursor (a `pageInfo.endCursor`). At most 512 characters."
        )]
        after: Option<crate::input::Cursor>,
    ) -> async_graphql::Result<Connection<PolicyCursor, Policy, TotalCount, EmptyFields>> {
        let page = Page::new(first, after)?;
        let mut filter = filter.unwrap_or_default();
        match crate::access::scope(ctx) {
            crate::access::Scope::Everything => {}
            crate::access::Scope::Customer(own) => match filter.customer_id {
                Some(other) if *other != own => return Ok(crate::page::empty()),
                _ => filter.customer_id = Some(Id::known(own)?),
            },
            crate::access::Scope::Insurer(own) => match filter.insurer.as_deref() {
                Some(other) if !other.trim().eq_ignore_ascii_case(&own) => {
                    return Ok(crate::page::empty());
                }
                _ => {
                    filter.insurer = Some(InsurerId::new(own).map_err(ApiError::internal)?);
                }
            },
            crate::access::Scope::Nothing => return Ok(crate::page::empty()),
        }
        Ok(search_policies(read_models(ctx)?.pool(), &filter, page).await?)
    }

    /// The public key that signs electronic policies.
    async fn dealership_public_key(&self, ctx: &Context<'_>) -> async_graphql::Result<PublicKey> {
        let key = dealership_key(ctx)?;
        Ok(PublicKey {
            public_key: key.base64(),
            key_id: key.key_id().to_owned(),
            algorithm: "Ed25519".to_owned(),
        })
    }

    /// Checks a saved electronic policy: `document` exactly as issued and its base64 `signature`.
    async fn verify_policy(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The canonical document exactly as issued. At most 16000 characters.")]
        document: PolicyDocument,
        #[graphql(desc = "Its Ed25519 signature in base64. At most 128 characters.")]
        signature: SignatureText,
    ) -> async_graphql::Result<PolicyVerification> {
        Ok(dealership_key(ctx)?.verify(&document, &signature))
    }
}
