//! Promotions and their effect: the `promotion` and `promotionsReport` queries over the
//! `promotions` read model (tables `promotions` and `promotion_orders`).
//!
//! A promotion's effect counts the orders whose price its code set and that are not cancelled
//! (a cancelled order gives its use back): how many, the discounts they were given, and their
//! revenue — the sum of their totals, the price less the code's discount. Sums are per currency,
//! in kopecks, so they are exact.

use async_graphql::{Context, Enum, Object, SimpleObject};

use crate::input::PromoCodeText;
use crate::orders::DiscountKind;
use crate::scalars::{Date, Decimal, Money, Position};
use crate::snapshot::Snapshot;
use crate::vehicles::Condition;
use crate::{ApiError, ApiResult};

const PROJECTOR: &str = "promotions";

/// The most promotions one report lists.
pub const MAX_REPORT_PROMOTIONS: i64 = 500;

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PromotionStatus {
    /// Its code may be redeemed within the validity window.
    Active,
    /// Ended by staff: the code redeems no more; uses held stay.
    Ended,
}

/// What a promotion's orders add up to, in one currency.
#[derive(SimpleObject, Clone, Debug)]
pub struct PromotionEffect {
    /// Orders whose price the code set, not cancelled.
    pub orders: i64,
    /// Sum of those orders' discounts.
    pub discount_given: Money,
    /// Sum of those orders' totals (price less the discount).
    pub revenue: Money,
}

/// A promotion and its promo code.
#[derive(SimpleObject, Clone, Debug)]
pub struct Promotion {
    pub code: String,
    pub title: String,
    pub discount_kind: DiscountKind,
    /// For a percentage discount.
    pub discount_percent: Option<Decimal>,
    /// For a fixed discount.
    pub discount_amount: Option<Money>,
    /// First business date (Moscow) the code may be applied.
    pub valid_from: Date,
    /// Last business date (Moscow) the code may be applied, inclusive.
    pub valid_until: Date,
    /// Brands it applies to; empty: any.
    pub brands: Vec<String>,
    /// Models it applies to; empty: any.
    pub models: Vec<String>,
    /// Conditions it applies to; empty: new and used.
    pub conditions: Vec<Condition>,
    pub total_uses: i64,
    pub uses_per_customer: i64,
    /// Orders holding a use now.
    pub uses: i64,
    pub status: PromotionStatus,
    /// One line per currency of its orders; empty before any order.
    pub effect: Vec<PromotionEffect>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct PromotionsReport {
    /// Every promotion, by code.
    pub promotions: Vec<Promotion>,
    pub reflects_position: Position,
}

type PromotionRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<i64>,
    Option<String>,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    String,
);

const SELECT: &str = "SELECT promotion_id, code, name, discount_kind, discount_percent,
        discount_amount_minor, discount_currency, valid_from, valid_until, brands, models,
        conditions, total_uses, uses_per_customer, uses, status
   FROM promotions";

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}

fn date(text: &str) -> ApiResult<Date> {
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(Date)
        .map_err(|err| ApiError::internal(format!("stored date {text:?}: {err}")))
}

async fn build(snapshot: &mut Snapshot, row: PromotionRow) -> ApiResult<Promotion> {
    let (
        id,
        code,
        title,
        kind,
        percent,
        amount_minor,
        currency,
        valid_from,
        valid_until,
        brands,
        models,
        conditions,
        total_uses,
        uses_per_customer,
        uses,
        status,
    ) = row;
    let discount_kind = match kind.as_str() {
        "PERCENTAGE" => DiscountKind::Percentage,
        "FIXED" => DiscountKind::Fixed,
        other => {
            return Err(ApiError::internal(format!(
                "stored discount kind {other:?}"
            )));
        }
    };
    let discount_percent = percent
        .map(|p| {
            p.parse::<rust_decimal::Decimal>()
                .map(Decimal)
                .map_err(|err| ApiError::internal(format!("stored percent {p:?}: {err}")))
        })
        .transpose()?;
    let discount_amount = match (amount_minor, currency) {
        (Some(minor), Some(currency)) => Some(Money::from_stored(minor, &currency)?),
        _ => None,
    };
    let conditions = lines(&conditions)
        .iter()
        .map(|c| match c.as_str() {
            "NEW" => Ok(Condition::New),
            "USED" => Ok(Condition::Used),
            other => Err(ApiError::internal(format!("stored condition {other:?}"))),
        })
        .collect::<ApiResult<_>>()?;
    let status = match status.as_str() {
        "ACTIVE" => PromotionStatus::Active,
        "ENDED" => PromotionStatus::Ended,
        other => return Err(ApiError::internal(format!("stored status {other:?}"))),
    };
    let sums: Vec<(String, i64, i64, i64)> = sqlx::query_as(
        "SELECT currency, count(*), CAST(sum(discount_amount_minor) AS BIGINT),
                CAST(sum(total_minor) AS BIGINT)
           FROM promotion_orders WHERE promotion_id = $1 AND cancelled = 0
          GROUP BY currency ORDER BY currency",
    )
    .bind(&id)
    .fetch_all(snapshot.conn())
    .await?;
    let effect = sums
        .into_iter()
        .map(|(currency, orders, discount, revenue)| {
            Ok(PromotionEffect {
                orders,
                discount_given: Money::from_stored(discount, &currency)?,
                revenue: Money::from_stored(revenue, &currency)?,
            })
        })
        .collect::<ApiResult<_>>()?;
    Ok(Promotion {
        code,
        title,
        discount_kind,
        discount_percent,
        discount_amount,
        valid_from: date(&valid_from)?,
        valid_until: date(&valid_until)?,
        brands: lines(&brands),
        models: lines(&models),
        conditions,
        total_uses,
        uses_per_customer,
        uses,
        status,
        effect,
    })
}

/// The promotion with this code, if any.
pub async fn find(snapshot: &mut Snapshot, code: &str) -> ApiResult<Option<Promotion>> {
    let code = code.trim().to_uppercase();
    let row: Option<PromotionRow> = sqlx::query_as(&format!("{SELECT} WHERE code = $1"))
        .bind(code)
        .fetch_optional(snapshot.conn())
        .await?;
    match row {
        Some(row) => Ok(Some(build(snapshot, row).await?)),
        None => Ok(None),
    }
}

/// Every promotion with its effect, by code.
pub async fn report(snapshot: &mut Snapshot) -> ApiResult<PromotionsReport> {
    let rows: Vec<PromotionRow> = sqlx::query_as(&format!("{SELECT} ORDER BY code LIMIT $1"))
        .bind(MAX_REPORT_PROMOTIONS)
        .fetch_all(snapshot.conn())
        .await?;
    let mut promotions = Vec::with_capacity(rows.len());
    for row in rows {
        promotions.push(build(snapshot, row).await?);
    }
    Ok(PromotionsReport {
        promotions,
        reflects_position: Position(snapshot.position(PROJECTOR).await?),
    })
}

#[derive(Default)]
pub struct PromotionsQuery;

#[Object]
impl PromotionsQuery {
    /// One promotion by its promo code (any case). Unknown codes are a `NOT_FOUND` error.
    async fn promotion(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The promo code. At most 32 characters.")] code: PromoCodeText,
    ) -> async_graphql::Result<Promotion> {
        let mut snapshot = Snapshot::open(crate::read_models(ctx)?.pool()).await?;
        Ok(find(&mut snapshot, &code)
            .await?
            .ok_or_else(|| ApiError::not_found("promotion", code.as_str()))?)
    }

    /// Every promotion (at most 500, by code) with its effect: orders, discount given, revenue.
    async fn promotions_report(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<PromotionsReport> {
        let mut snapshot = Snapshot::open(crate::read_models(ctx)?.pool()).await?;
        Ok(report(&mut snapshot).await?)
    }
}
