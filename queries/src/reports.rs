//! Reports for analysts over the `reports` fact tables: sales, payments, the financing portfolio,
//! insurance and the monthly commission settlement, the workshop, and inventory aging.
//!
//! Every report reads one [`Snapshot`] and states the log position it reflects
//! (`reflectsPosition`). Periods are `from` (inclusive) to `to` (exclusive) business days in Moscow
//! time; either may be omitted (open-ended). Sums are [`Money`] per currency: rows are also grouped by
//! currency, so a report never adds roubles to another currency. Report rows are bounded by their
//! grouping keys (not by the number of events), so they are plain lists, not connections.
//!
//! Ratios are exact decimals rounded to four places by [`RATIO_ROUNDING`] (half away from zero), e.g.
//! a loss ratio `0.1234` is 12.34 %.

use async_graphql::{Context, Enum, Object, SimpleObject};
use chrono::NaiveDate;
use rust_decimal::{Decimal as Dec, RoundingStrategy};

use crate::scalars::{Date, Decimal, Money, Position};
use crate::snapshot::Snapshot;
use crate::{ApiError, ApiResult};

/// The rounding rule of every ratio in reports: four decimal places, half away from zero.
pub const RATIO_ROUNDING: RoundingStrategy = RoundingStrategy::MidpointAwayFromZero;
/// Decimal places of ratios.
pub const RATIO_SCALE: u32 = 4;
/// A mechanic's working day, 08:00–20:00: the denominator of utilisation.
pub const WORKING_MINUTES_PER_DAY: i64 = 720;

const PROJECTOR: &str = "reports";

fn ratio(numerator: i64, denominator: i64) -> Option<Decimal> {
    (denominator != 0).then(|| {
        let mut value = (Dec::from(numerator) / Dec::from(denominator))
            .round_dp_with_strategy(RATIO_SCALE, RATIO_ROUNDING);
        // Always four places (`0.0000`, `0.1667`): the text is the contract.
        value.rescale(RATIO_SCALE);
        Decimal(value)
    })
}

/// `from`/`to` as the text bounds of a `day` column; refuses an empty or inverted period.
fn period(from: Option<Date>, to: Option<Date>) -> ApiResult<(String, String)> {
    if let (Some(from), Some(to)) = (from, to)
        && from.0 >= to.0
    {
        return Err(ApiError::validation(format!(
            "`from` ({}) must be before `to` ({}, exclusive)",
            from.0, to.0
        )));
    }
    Ok((
        from.map_or_else(|| "0000-01-01".to_owned(), |d| d.0.to_string()),
        to.map_or_else(|| "9999-12-31".to_owned(), |d| d.0.to_string()),
    ))
}

fn money(minor: i64, currency: &str) -> ApiResult<Money> {
    Money::from_stored(minor, currency)
}

// ---- sales ---------------------------------------------------------------------------------

/// The length of a sales report's period.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportPeriod {
    /// One row per business day (`YYYY-MM-DD`).
    Day,
    /// One row per month (`YYYY-MM`).
    Month,
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SalesGroupBy {
    Brand,
    BrandModel,
    /// Totals per period only.
    None,
}

/// Sales of one period (and brand, and model).
#[derive(SimpleObject, Clone, Debug)]
pub struct SalesReportRow {
    /// `YYYY-MM-DD` or `YYYY-MM`: the business day or month of the handovers.
    pub period: String,
    /// Null when not grouped by brand.
    pub brand: Option<String>,
    /// Null when not grouped by model.
    pub model: Option<String>,
    /// Orders handed over.
    pub count: i64,
    /// Sum of the orders' totals (price less discount).
    pub revenue: Money,
    /// Sum of the discounts given.
    pub discounts: Money,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct SalesReport {
    pub rows: Vec<SalesReportRow>,
    pub reflects_position: Position,
}

pub async fn sales_report(
    snapshot: &mut Snapshot,
    from: Option<Date>,
    to: Option<Date>,
    period_kind: ReportPeriod,
    group_by: SalesGroupBy,
) -> ApiResult<SalesReport> {
    let (from, to) = period(from, to)?;
    // Column expressions are literals chosen by enums, never input.
    let period_column = match period_kind {
        ReportPeriod::Day => "day",
        ReportPeriod::Month => "month",
    };
    let (brand, model) = match group_by {
        SalesGroupBy::Brand => ("brand", "NULL"),
        SalesGroupBy::BrandModel => ("brand", "model"),
        SalesGroupBy::None => ("NULL", "NULL"),
    };
    let sql = format!(
        "SELECT {period_column}, {brand}, {model}, currency, count(*), CAST(sum(revenue_minor) AS BIGINT),
                CAST(sum(discount_minor) AS BIGINT)
           FROM report_sales WHERE day >= $1 AND day < $2
          GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
    );
    type Row = (
        String,
        Option<String>,
        Option<String>,
        String,
        i64,
        i64,
        i64,
    );
    let rows: Vec<Row> = sqlx::query_as(&sql)
        .bind(from)
        .bind(to)
        .fetch_all(snapshot.conn())
        .await?;
    let rows = rows
        .into_iter()
        .map(
            |(period, brand, model, currency, count, revenue, discounts)| {
                Ok(SalesReportRow {
                    period,
                    brand,
                    model,
                    count,
                    revenue: money(revenue, &currency)?,
                    discounts: money(discounts, &currency)?,
                })
            },
        )
        .collect::<ApiResult<_>>()?;
    Ok(SalesReport {
        rows,
        reflects_position: Position(snapshot.position(PROJECTOR).await?),
    })
}

// ---- payments ------------------------------------------------------------------------------

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentsGroupBy {
    Method,
    Status,
    MethodAndStatus,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct PaymentsReportRow {
    /// `CARD`, `BANK_TRANSFER`, `CASH` or `CREDIT`; null when not grouped by method.
    pub method: Option<String>,
    /// The payments' current status; null when not grouped by status.
    pub status: Option<String>,
    pub count: i64,
    /// Sum of the payments' amounts (whatever their status).
    pub amount: Money,
    /// Sum refunded.
    pub refunded: Money,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct PaymentsReport {
    pub rows: Vec<PaymentsReportRow>,
    pub reflects_position: Position,
}

pub async fn payments_report(
    snapshot: &mut Snapshot,
    from: Option<Date>,
    to: Option<Date>,
    group_by: PaymentsGroupBy,
) -> ApiResult<PaymentsReport> {
    let (from, to) = period(from, to)?;
    let (method, status) = match group_by {
        PaymentsGroupBy::Method => ("method", "NULL"),
        PaymentsGroupBy::Status => ("NULL", "status"),
        PaymentsGroupBy::MethodAndStatus => ("method", "status"),
    };
    let sql = format!(
        "SELECT {method}, {status}, currency, count(*), CAST(sum(amount_minor) AS BIGINT),
                CAST(sum(refunded_minor) AS BIGINT)
           FROM report_payments WHERE day >= $1 AND day < $2
          GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    );
    type Row = (Option<String>, Option<String>, String, i64, i64, i64);
    let rows: Vec<Row> = sqlx::query_as(&sql)
        .bind(from)
        .bind(to)
        .fetch_all(snapshot.conn())
        .await?;
    let rows = rows
        .into_iter()
        .map(|(method, status, currency, count, amount, refunded)| {
            Ok(PaymentsReportRow {
                method,
                status,
                count,
                amount: money(amount, &currency)?,
                refunded: money(refunded, &currency)?,
            })
        })
        .collect::<ApiResult<_>>()?;
    Ok(PaymentsReport {
        rows,
        reflects_position: Position(snapshot.position(PROJECTOR).await?),
    })
}

// ---- financing -----------------------------------------------------------------------------

/// The loan book in one currency: loans originated (disbursed) on or before `asOf`, with their
/// balances as the log stands at `reflectsPosition`.
#[derive(SimpleObject, Clone, Debug)]
pub struct FinancingPortfolioRow {
    pub originated_count: i64,
    /// Principal paid out.
    pub originated_amount: Money,
    pub outstanding_principal: Money,
    pub interest_earned: Money,
    /// Loans with at least one overdue instalment not yet paid.
    pub overdue_loans: i64,
    pub overdue_instalments: i64,
    pub defaulted_count: i64,
    /// Outstanding principal of the defaulted loans.
    pub defaulted_amount: Money,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct FinancingPortfolio {
    /// One row per currency.
    pub rows: Vec<FinancingPortfolioRow>,
    pub reflects_position: Position,
}

pub async fn financing_portfolio(
    snapshot: &mut Snapshot,
    as_of: Option<Date>,
) -> ApiResult<FinancingPortfolio> {
    let as_of = as_of.map_or_else(|| "9999-12-31".to_owned(), |d| d.0.to_string());
    type Row = (String, i64, i64, i64, i64, i64, i64, i64, i64);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT currency, count(*), CAST(sum(principal_minor) AS BIGINT),
                CAST(sum(outstanding_principal_minor) AS BIGINT), CAST(sum(interest_earned_minor) AS BIGINT),
                CAST(sum(CASE WHEN overdue_instalments > 0 THEN 1 ELSE 0 END) AS BIGINT),
                CAST(sum(overdue_instalments) AS BIGINT),
                CAST(sum(CASE WHEN defaulted = 1 THEN 1 ELSE 0 END) AS BIGINT),
                CAST(sum(CASE WHEN defaulted = 1 THEN outstanding_principal_minor ELSE 0 END) AS BIGINT)
           FROM report_loans WHERE originated_day IS NOT NULL AND originated_day <= $1
          GROUP BY currency ORDER BY currency",
    )
    .bind(as_of)
    .fetch_all(snapshot.conn())
    .await?;
    let rows = rows
        .into_iter()
        .map(
            |(
                currency,
                count,
                originated,
                outstanding,
                interest,
                overdue,
                instalments,
                defaulted,
                at_risk,
            )| {
                Ok(FinancingPortfolioRow {
                    originated_count: count,
                    originated_amount: money(originated, &currency)?,
                    outstanding_principal: money(outstanding, &currency)?,
                    interest_earned: money(interest, &currency)?,
                    overdue_loans: overdue,
                    overdue_instalments: instalments,
                    defaulted_count: defaulted,
                    defaulted_amount: money(at_risk, &currency)?,
                })
            },
        )
        .collect::<ApiResult<_>>()?;
    Ok(FinancingPortfolio {
        rows,
        reflects_position: Position(snapshot.position(PROJECTOR).await?),
    })
}

// ---- insurance -----------------------------------------------------------------------------

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsuranceGroupBy {
    Insurer,
    Product,
    Month,
    InsurerProduct,
    InsurerMonth,
    ProductMonth,
    InsurerProductMonth,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct InsuranceReportRow {
    pub insurer: Option<String>,
    pub product: Option<String>,
    /// `YYYY-MM` of issue.
    pub month: Option<String>,
    /// Policies issued.
    pub policies: i64,
    /// Premiums written (at issue; refunds on cancellation are not netted).
    pub premiums: Money,
    pub claims_paid: Money,
    /// `claimsPaid / premiums`, four decimal places, half away from zero; null without premiums.
    pub loss_ratio: Option<Decimal>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct InsuranceReport {
    pub rows: Vec<InsuranceReportRow>,
    pub reflects_position: Position,
}

pub async fn insurance_report(
    snapshot: &mut Snapshot,
    from: Option<Date>,
    to: Option<Date>,
    group_by: InsuranceGroupBy,
) -> ApiResult<InsuranceReport> {
    use InsuranceGroupBy as G;
    let (from, to) = period(from, to)?;
    let insurer = matches!(
        group_by,
        G::Insurer | G::InsurerProduct | G::InsurerMonth | G::InsurerProductMonth
    );
    let product = matches!(
        group_by,
        G::Product | G::InsurerProduct | G::ProductMonth | G::InsurerProductMonth
    );
    let month = matches!(
        group_by,
        G::Month | G::InsurerMonth | G::ProductMonth | G::InsurerProductMonth
    );
    let pick = |on: bool, column: &'static str| if on { column } else { "NULL" };
    let sql = format!(
        "SELECT {}, {}, {}, currency, count(*), CAST(sum(premium_minor) AS BIGINT),
                CAST(sum(claims_paid_minor) AS BIGINT)
           FROM report_policies WHERE issued_day >= $1 AND issued_day < $2
          GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
        pick(insurer, "insurer"),
        pick(product, "product"),
        pick(month, "issue_month"),
    );
    type Row = (
        Option<String>,
        Option<String>,
        Option<String>,
        String,
        i64,
        i64,
        i64,
    );
    let rows: Vec<Row> = sqlx::query_as(&sql)
        .bind(from)
        .bind(to)
        .fetch_all(snapshot.conn())
        .await?;
    let rows = rows
        .into_iter()
        .map(
            |(insurer, product, month, currency, policies, premiums, claims)| {
                Ok(InsuranceReportRow {
                    insurer,
                    product,
                    month,
                    policies,
                    premiums: money(premiums, &currency)?,
                    claims_paid: money(claims, &currency)?,
                    loss_ratio: ratio(claims, premiums),
                })
            },
        )
        .collect::<ApiResult<_>>()?;
    Ok(InsuranceReport {
        rows,
        reflects_position: Position(snapshot.position(PROJECTOR).await?),
    })
}

/// One insurer's agent-commission settlement for a month.
#[derive(SimpleObject, Clone, Debug)]
pub struct CommissionSettlementRow {
    pub insurer: String,
    /// Policies whose premium was paid in the month.
    pub policies: i64,
    /// Premiums collected on them.
    pub premiums: Money,
    /// Commission earned on them (the rate recorded at issue; earned when the premium is paid).
    pub commission: Money,
    /// Policies (of any issue month) cancelled in the month (business day of the cancellation).
    pub cancellations: i64,
    /// Commission given back for those cancellations: per policy, `commission × refund / premium`,
    /// rounded to kopecks half away from zero.
    pub clawback: Money,
    /// `commission − clawback`: what the insurer owes the dealership for the month.
    pub net_commission: Money,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct CommissionSettlement {
    /// `YYYY-MM`.
    pub month: String,
    pub rows: Vec<CommissionSettlementRow>,
    pub reflects_position: Position,
}

/// The first day of a `YYYY-MM` month and of the month after.
fn month_bounds(month: &str) -> ApiResult<(NaiveDate, NaiveDate)> {
    let invalid = || ApiError::validation(format!("month {month:?} must be YYYY-MM"));
    if month.len() != 7 || month.as_bytes()[4] != b'-' {
        return Err(invalid());
    }
    let start =
        NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").map_err(|_| invalid())?;
    let end = start
        .checked_add_months(chrono::Months::new(1))
        .ok_or_else(invalid)?;
    Ok((start, end))
}

pub async fn commission_settlement(
    snapshot: &mut Snapshot,
    month: &str,
) -> ApiResult<CommissionSettlement> {
    let (start, end) = month_bounds(month)?;
    let (start, end) = (start.to_string(), end.to_string());
    // Premiums collected in the month: the commission is earned when the premium is paid (as the
    // ledger posts it), so a policy issued but never paid earns none.
    let issued: Vec<(String, String, i64, i64, i64)> = sqlx::query_as(
        "SELECT insurer, currency, count(*), CAST(sum(premium_minor) AS BIGINT),
                CAST(sum(commission_minor) AS BIGINT)
           FROM report_policies WHERE premium_paid_day >= $1 AND premium_paid_day < $2
          GROUP BY insurer, currency",
    )
    .bind(&start)
    .bind(&end)
    .fetch_all(snapshot.conn())
    .await?;
    // Cancellations made in the month (business day of `cancelled_at`, as the ledger posts the
    // claw-back): the clawback.
    let cancelled: Vec<(String, String, i64, i64, i64)> = sqlx::query_as(
        "SELECT insurer, currency, premium_minor, commission_minor, refund_minor
           FROM report_policies WHERE cancelled_day >= $1 AND cancelled_day < $2",
    )
    .bind(&start)
    .bind(&end)
    .fetch_all(snapshot.conn())
    .await?;
    let mut totals: std::collections::BTreeMap<(String, String), [i64; 5]> = Default::default();
    for (insurer, currency, policies, premiums, commission) in issued {
        let row = totals.entry((insurer, currency)).or_default();
        row[0] += policies;
        row[1] += premiums;
        row[2] += commission;
    }
    for (insurer, currency, premium, commission, refund) in cancelled {
        let clawback = if premium == 0 {
            0
        } else {
            let exact = Dec::from(commission) * Dec::from(refund) / Dec::from(premium);
            // Minor units: rounding to whole kopecks is rounding to 0 places here.
            i64::try_from(
                exact
                    .round_dp_with_strategy(0, aggregates::money::KOPECK_ROUNDING)
                    .mantissa(),
            )
            .map_err(ApiError::internal)?
        };
        let row = totals.entry((insurer, currency)).or_default();
        row[3] += 1;
        row[4] += clawback;
    }
    let rows = totals
        .into_iter()
        .map(
            |((insurer, currency), [policies, premiums, commission, cancellations, clawback])| {
                Ok(CommissionSettlementRow {
                    insurer,
                    policies,
                    premiums: money(premiums, &currency)?,
                    commission: money(commission, &currency)?,
                    cancellations,
                    clawback: money(clawback, &currency)?,
                    net_commission: money(commission - clawback, &currency)?,
                })
            },
        )
        .collect::<ApiResult<_>>()?;
    Ok(CommissionSettlement {
        month: month.to_owned(),
        rows,
        reflects_position: Position(snapshot.position(PROJECTOR).await?),
    })
}

// ---- workshop ------------------------------------------------------------------------------

/// One mechanic's day.
#[derive(SimpleObject, Clone, Debug)]
pub struct ServiceReportRow {
    pub mechanic_id: String,
    /// The workshop day, `YYYY-MM-DD`.
    pub day: String,
    /// Bookings for the day, not counting cancelled ones (no-shows count).
    pub bookings: i64,
    /// Minutes of the bookings that hold their slot (not cancelled, not no-shows).
    pub booked_minutes: i64,
    /// `bookedMinutes / 720` (the 08:00–20:00 day), four decimal places, half away from zero.
    pub utilisation: Decimal,
    pub no_shows: i64,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct ServiceReport {
    pub rows: Vec<ServiceReportRow>,
    pub bookings: i64,
    pub no_shows: i64,
    /// `noShows / bookings` over the period, four places, half away from zero; null without bookings.
    pub no_show_rate: Option<Decimal>,
    pub reflects_position: Position,
}

pub async fn service_report(
    snapshot: &mut Snapshot,
    from: Option<Date>,
    to: Option<Date>,
) -> ApiResult<ServiceReport> {
    let (from, to) = period(from, to)?;
    let rows: Vec<(String, String, i64, i64, i64)> = sqlx::query_as(
        "SELECT mechanic_id, day, count(*),
                CAST(sum(CASE WHEN status = 'NO_SHOW' THEN 0 ELSE booked_minutes END) AS BIGINT),
                CAST(sum(CASE WHEN status = 'NO_SHOW' THEN 1 ELSE 0 END) AS BIGINT)
           FROM report_bookings WHERE day >= $1 AND day < $2 AND status <> 'CANCELLED'
          GROUP BY mechanic_id, day ORDER BY day, mechanic_id",
    )
    .bind(from)
    .bind(to)
    .fetch_all(snapshot.conn())
    .await?;
    let (bookings, no_shows) = rows
        .iter()
        .fold((0, 0), |(b, n), row| (b + row.2, n + row.4));
    let rows = rows
        .into_iter()
        .map(
            |(mechanic_id, day, bookings, booked_minutes, no_shows)| ServiceReportRow {
                mechanic_id,
                day,
                bookings,
                booked_minutes,
                utilisation: ratio(booked_minutes, WORKING_MINUTES_PER_DAY)
                    .unwrap_or(Decimal(Dec::new(0, RATIO_SCALE))),
                no_shows,
            },
        )
        .collect();
    Ok(ServiceReport {
        rows,
        bookings,
        no_shows,
        no_show_rate: ratio(no_shows, bookings),
        reflects_position: Position(snapshot.position(PROJECTOR).await?),
    })
}

// ---- inventory -----------------------------------------------------------------------------

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum InventoryGroupBy {
    Brand,
    Model,
}

/// Vehicles in stock on a day, per brand (and model), by how long they have been in stock.
#[derive(SimpleObject, Clone, Debug)]
pub struct InventoryAgingRow {
    pub brand: String,
    /// Null when grouped by brand only.
    pub model: Option<String>,
    pub in_stock: i64,
    /// Mean days in stock, four decimal places, half away from zero.
    pub average_days: Decimal,
    pub max_days: i64,
    /// 0–30 days.
    pub days_0_to_30: i64,
    pub days_31_to_60: i64,
    pub days_61_to_90: i64,
    /// More than 90 days.
    pub days_over_90: i64,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct InventoryAging {
    pub as_of: Date,
    pub rows: Vec<InventoryAgingRow>,
    pub reflects_position: Position,
}

pub async fn inventory_aging(
    snapshot: &mut Snapshot,
    as_of: NaiveDate,
    group_by: InventoryGroupBy,
) -> ApiResult<InventoryAging> {
    // In stock on `as_of`: stocked on or before it, and not sold or withdrawn on or before it.
    let vehicles: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT brand, model, stocked_day FROM report_inventory
          WHERE stocked_day <= $1 AND (left_day IS NULL OR left_day > $1)",
    )
    .bind(as_of.to_string())
    .fetch_all(snapshot.conn())
    .await?;
    let mut groups: std::collections::BTreeMap<(String, Option<String>), Vec<i64>> =
        Default::default();
    for (brand, model, stocked_day) in vehicles {
        let stocked = NaiveDate::parse_from_str(&stocked_day, "%Y-%m-%d")
            .map_err(|err| ApiError::internal(format!("stored day {stocked_day:?}: {err}")))?;
        let model = matches!(group_by, InventoryGroupBy::Model).then_some(model);
        groups
            .entry((brand, model))
            .or_default()
            .push((as_of - stocked).num_days());
    }
    let rows = groups
        .into_iter()
        .map(|((brand, model), days)| {
            let count = days.len() as i64;
            let bucket = |low: i64, high: i64| {
                days.iter().filter(|d| (low..=high).contains(*d)).count() as i64
            };
            InventoryAgingRow {
                brand,
                model,
                in_stock: count,
                average_days: ratio(days.iter().sum(), count)
                    .unwrap_or(Decimal(Dec::new(0, RATIO_SCALE))),
                max_days: days.iter().copied().max().unwrap_or(0),
                days_0_to_30: bucket(0, 30),
                days_31_to_60: bucket(31, 60),
                days_61_to_90: bucket(61, 90),
                days_over_90: bucket(91, i64::MAX),
            }
        })
        .collect();
    Ok(InventoryAging {
        as_of: Date(as_of),
        rows,
        reflects_position: Position(snapshot.position(PROJECTOR).await?),
    })
}

// ---- GraphQL -------------------------------------------------------------------------------

/// Reports for analysts.
#[derive(Default)]
pub struct ReportsQuery;

async fn snapshot(ctx: &Context<'_>) -> ApiResult<Snapshot> {
    Snapshot::open(crate::read_models(ctx)?.pool()).await
}

#[Object]
impl ReportsQuery {
    /// Sales (handed-over orders) per day or month, by brand, brand and model, or in total.
    async fn sales_report(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "First business day, inclusive.")] from: Option<Date>,
        #[graphql(desc = "Last business day, exclusive.")] to: Option<Date>,
        #[graphql(default_with = "ReportPeriod::Day")] period: ReportPeriod,
        #[graphql(default_with = "SalesGroupBy::None")] group_by: SalesGroupBy,
    ) -> async_graphql::Result<SalesReport> {
        let mut snapshot = snapshot(ctx).await?;
        Ok(sales_report(&mut snapshot, from, to, period, group_by).await?)
    }

    /// Payments initiated in the period, by method, status, or both.
    async fn payments_report(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "First business day, inclusive.")] from: Option<Date>,
        #[graphql(desc = "Last business day, exclusive.")] to: Option<Date>,
        #[graphql(default_with = "PaymentsGroupBy::MethodAndStatus")] group_by: PaymentsGroupBy,
    ) -> async_graphql::Result<PaymentsReport> {
        let mut snapshot = snapshot(ctx).await?;
        Ok(payments_report(&mut snapshot, from, to, group_by).await?)
    }

    /// The loan book: loans originated on or before `asOf` (all when omitted), with their balances
    /// as at `reflectsPosition`.
    async fn financing_portfolio(
        &self,
        ctx: &Context<'_>,
        as_of: Option<Date>,
    ) -> async_graphql::Result<FinancingPortfolio> {
        let mut snapshot = snapshot(ctx).await?;
        Ok(financing_portfolio(&mut snapshot, as_of).await?)
    }

    /// Policies issued in the period: premiums, claims paid and loss ratio.
    async fn insurance_report(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "First business day, inclusive.")] from: Option<Date>,
        #[graphql(desc = "Last business day, exclusive.")] to: Option<Date>,
        #[graphql(default_with = "InsuranceGroupBy::Insurer")] group_by: InsuranceGroupBy,
    ) -> async_graphql::Result<InsuranceReport> {
        let mut snapshot = snapshot(ctx).await?;
        Ok(insurance_report(&mut snapshot, from, to, group_by).await?)
    }

    /// The monthly settlement of agent commission per insurer (`month` is `YYYY-MM`).
    async fn commission_settlement(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The month, `YYYY-MM`. At most 7 characters.")]
        month: crate::input::MonthText,
    ) -> async_graphql::Result<CommissionSettlement> {
        let mut snapshot = snapshot(ctx).await?;
        let mut settlement = commission_settlement(&mut snapshot, &month).await?;
        // A partner insurer sees its own settlement only.
        if let crate::access::Scope::Insurer(own) = crate::access::scope(ctx) {
            settlement.rows.retain(|row| row.insurer == own);
        }
        Ok(settlement)
    }

    /// Workshop bookings per mechanic per day, utilisation and the no-show rate.
    async fn service_report(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "First workshop day, inclusive.")] from: Option<Date>,
        #[graphql(desc = "Last workshop day, exclusive.")] to: Option<Date>,
    ) -> async_graphql::Result<ServiceReport> {
        let mut snapshot = snapshot(ctx).await?;
        Ok(service_report(&mut snapshot, from, to).await?)
    }

    /// Vehicles in stock on `asOf` (today in Moscow when omitted), by age.
    async fn inventory_aging(
        &self,
        ctx: &Context<'_>,
        as_of: Option<Date>,
        #[graphql(default_with = "InventoryGroupBy::Model")] group_by: InventoryGroupBy,
    ) -> async_graphql::Result<InventoryAging> {
        let as_of = as_of
            .map(|d| d.0)
            .unwrap_or_else(|| crate::vehicles::business_day(chrono::Utc::now()));
        let mut snapshot = snapshot(ctx).await?;
        Ok(inventory_aging(&mut snapshot, as_of, group_by).await?)
    }
}
