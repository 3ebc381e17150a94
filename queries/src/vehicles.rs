//! The catalog: vehicles with filters, counts per brand and model, one vehicle by id.

use async_graphql::connection::{Connection, Edge, EmptyFields, OpaqueCursor};
use async_graphql::{ComplexObject, Context, Enum, InputObject, SimpleObject};
use eventstore::DbPool;
use uuid::Uuid;

use crate::page::Page;
use crate::scalars::{Currency, DateTime, Decimal, Money, Position};
use crate::snapshot::Snapshot;
use crate::{ApiError, ApiResult};

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum VehicleStatus {
    /// In stock and free to sell.
    Available,
    /// Held for one confirmed order.
    Reserved,
    Sold,
    /// Taken off sale.
    Withdrawn,
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Condition {
    New,
    Used,
}

/// One specification line, e.g. `{ name: "engine", value: "2.0 petrol" }`.
#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
pub struct Specification {
    pub name: String,
    pub value: String,
}

/// One physical vehicle in stock, as the catalog shows it.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Vehicle {
    pub id: Uuid,
    pub vin: String,
    pub brand: String,
    pub model: String,
    pub year: i32,
    pub trim: String,
    pub colour: String,
    pub mileage_km: i64,
    pub condition: Condition,
    pub location: String,
    pub status: VehicleStatus,
    /// The order holding the reservation (or that bought it): resolved per caller, see
    /// `reservedForOrderId`.
    #[graphql(skip)]
    pub reserved_for_order_id: Option<Uuid>,
    pub list_price: Money,
    pub specifications: Vec<Specification>,
    pub stocked_at: DateTime,
    /// Whether it can be sold now (status `AVAILABLE`).
    pub available: bool,
    /// When it was sold or withdrawn (the end of its time in stock), if it was.
    pub left_stock_at: Option<DateTime>,
    pub updated_at: DateTime,
}

/// The dealership's business day: the calendar date in Moscow ([`aggregates::calendar`]).
pub fn business_day(at: chrono::DateTime<chrono::Utc>) -> chrono::NaiveDate {
    aggregates::calendar::business_date(at)
}

/// Whole calendar days (business days in Moscow) from `from` to `to`: 0 on the day of stocking.
pub fn days_between(from: chrono::DateTime<chrono::Utc>, to: chrono::DateTime<chrono::Utc>) -> i64 {
    (business_day(to) - business_day(from)).num_days().max(0)
}

/// One change of a vehicle's list price.
#[derive(SimpleObject, Clone, Debug)]
pub struct PriceChange {
    pub old_price: Money,
    pub new_price: Money,
    /// When the store recorded the reprice.
    pub recorded_at: DateTime,
    /// Global position of the `VehicleRepriced` event.
    pub position: crate::scalars::Position,
}

#[ComplexObject]
impl Vehicle {
    /// Calendar days (Moscow business days) from stocking to the day it was sold or withdrawn, or to
    /// today while it is still in stock; 0 on the day it arrived.
    async fn days_in_stock(&self) -> i64 {
        let end = self
            .left_stock_at
            .map(|at| at.0)
            .unwrap_or_else(chrono::Utc::now);
        days_between(self.stocked_at.0, end)
    }

    /// Every change of its list price, oldest first.
    async fn price_history(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<PriceChange>> {
        Ok(price_history(crate::read_models(ctx)?.pool(), self.id).await?)
    }

    /// The order holding the reservation (or that bought it), if any. Shown to staff, and to the
    /// client whose order it is; null for everyone else (the catalog is public, orders are not).
    async fn reserved_for_order_id(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<Uuid>> {
        let Some(order) = self.reserved_for_order_id else {
            return Ok(None);
        };
        match crate::access::scope(ctx) {
            crate::access::Scope::Everything => Ok(Some(order)),
            crate::access::Scope::Customer(_) => {
                let holder = crate::orders::find(crate::read_models(ctx)?.pool(), order).await?;
                Ok(holder
                    .filter(|held| crate::access::can_see_customer(ctx, held.customer_id))
                    .map(|_| order))
            }
            crate::access::Scope::Insurer(_) | crate::access::Scope::Nothing => Ok(None),
        }
    }
}

/// The reprices of one vehicle, oldest first.
pub async fn price_history(pool: &DbPool, id: Uuid) -> ApiResult<Vec<PriceChange>> {
    let rows: Vec<(i64, String, i64, i64, String)> = sqlx::query_as(
        "SELECT position, currency, old_price_minor, new_price_minor, recorded_at
           FROM catalog_price_history WHERE vehicle_id = $1 ORDER BY position",
    )
    .bind(id.to_string())
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(position, currency, old, new, at)| {
            Ok(PriceChange {
                old_price: Money::from_stored(old, &currency)?,
                new_price: Money::from_stored(new, &currency)?,
                recorded_at: DateTime::from_stored(&at)?,
                position: crate::scalars::Position(position),
            })
        })
        .collect()
}

#[derive(sqlx::FromRow)]
struct VehicleRow {
    vehicle_id: String,
    vin: String,
    brand: String,
    model: String,
    year: i64,
    trim: String,
    colour: String,
    mileage_km: i64,
    condition: String,
    location: String,
    status: String,
    reserved_for_order_id: Option<String>,
    list_price_minor: i64,
    currency: String,
    specifications: String,
    stocked_at: String,
    available: i64,
    sold_at: Option<String>,
    withdrawn_at: Option<String>,
    updated_at: String,
    stocked_position: i64,
}

impl TryFrom<VehicleRow> for Vehicle {
    type Error = ApiError;

    fn try_from(row: VehicleRow) -> ApiResult<Self> {
        let specifications: std::collections::BTreeMap<String, String> =
            serde_json::from_str(&row.specifications).map_err(ApiError::internal)?;
        Ok(Vehicle {
            id: crate::parse_stored_uuid(&row.vehicle_id)?,
            vin: row.vin,
            brand: row.brand,
            model: row.model,
            year: i32::try_from(row.year).map_err(ApiError::internal)?,
            trim: row.trim,
            colour: row.colour,
            mileage_km: row.mileage_km,
            condition: match row.condition.as_str() {
                "NEW" => Condition::New,
                "USED" => Condition::Used,
                other => return Err(ApiError::internal(format!("stored condition {other:?}"))),
            },
            location: row.location,
            status: match row.status.as_str() {
                "AVAILABLE" => VehicleStatus::Available,
                "RESERVED" => VehicleStatus::Reserved,
                "SOLD" => VehicleStatus::Sold,
                "WITHDRAWN" => VehicleStatus::Withdrawn,
                other => {
                    return Err(ApiError::internal(format!(
                        "stored vehicle status {other:?}"
                    )));
                }
            },
            reserved_for_order_id: row
                .reserved_for_order_id
                .as_deref()
                .map(crate::parse_stored_uuid)
                .transpose()?,
            list_price: Money::from_stored(row.list_price_minor, &row.currency)?,
            specifications: specifications
                .into_iter()
                .map(|(name, value)| Specification { name, value })
                .collect(),
            stocked_at: DateTime::from_stored(&row.stocked_at)?,
            available: row.available == 1,
            left_stock_at: row
                .sold_at
                .as_deref()
                .or(row.withdrawn_at.as_deref())
                .map(DateTime::from_stored)
                .transpose()?,
            updated_at: DateTime::from_stored(&row.updated_at)?,
        })
    }
}

/// Catalog search. Every field is optional; given fields must all match.
#[derive(InputObject, Clone, Debug, Default)]
pub struct VehicleFilter {
    /// Exact brand, case-insensitive. At most 100 characters.
    pub brand: Option<crate::input::Brand>,
    /// Exact model, case-insensitive. At most 100 characters.
    pub model: Option<crate::input::Model>,
    pub year_from: Option<i32>,
    pub year_to: Option<i32>,
    /// Lowest list price, inclusive, in `currency`.
    pub price_from: Option<Decimal>,
    /// Highest list price, inclusive, in `currency`.
    pub price_to: Option<Decimal>,
    /// Currency of the price bounds and of the listed vehicles (RUB unless stated).
    #[graphql(default_with = "Currency::RUB")]
    pub currency: Currency,
    pub condition: Option<Condition>,
    pub status: Option<VehicleStatus>,
}

/// How catalog counts are grouped.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CatalogGrouping {
    Brand,
    BrandAndModel,
}

/// How many vehicles match, per brand (and model).
#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
pub struct CatalogCount {
    pub brand: String,
    /// Null when grouped by brand only.
    pub model: Option<String>,
    pub count: i64,
}

/// Connection fields of the vehicles list.
#[derive(SimpleObject, Clone, Copy, Debug)]
pub struct CatalogPage {
    /// How many vehicles match in all.
    pub total_count: i64,
    /// The log position the count and this page reflect (read in one snapshot).
    pub reflects_position: Position,
}

/// Sort key of the vehicles list: arrival in stock, then id.
type VehicleCursor = OpaqueCursor<(i64, String)>;

const SELECT_VEHICLE: &str = "SELECT vehicle_id, vin, brand, model, year, trim, colour, mileage_km, condition, location,
        status, reserved_for_order_id, list_price_minor, currency, specifications, stocked_at, available,
        sold_at, withdrawn_at, updated_at, stocked_position
   FROM catalog_vehicles";

struct BoundFilter {
    brand_key: Option<String>,
    model_key: Option<String>,
    year_from: Option<i64>,
    year_to: Option<i64>,
    price_from_minor: Option<i64>,
    price_to_minor: Option<i64>,
    currency: Option<&'static str>,
    condition: Option<&'static str>,
    status: Option<&'static str>,
}

impl BoundFilter {
    /// Whether `catalog_counts` can answer a count: it keeps brand, model, condition and status, not
    /// years or prices.
    fn countable(&self) -> bool {
        self.year_from.is_none()
            && self.year_to.is_none()
            && self.price_from_minor.is_none()
            && self.price_to_minor.is_none()
    }

    /// The conditions of the filters given, and only those, so the planner sees each statement's
    /// real shape and picks the index for it (a `$n IS NULL OR …` for every possible filter would
    /// leave it nothing to use). `counts_table`: only those `catalog_counts` has (see `countable`).
    fn conditions(&self, sql: &mut Sql, counts_table: bool) {
        if let Some(brand) = &self.brand_key {
            sql.condition("brand_key = ", Arg::Text(brand.clone()));
        }
        if let Some(model) = &self.model_key {
            sql.condition("model_key = ", Arg::Text(model.clone()));
        }
        if let Some(condition) = self.condition {
            sql.condition("condition = ", Arg::Text(condition.to_string()));
        }
        if let Some(status) = self.status {
            sql.condition("status = ", Arg::Text(status.to_string()));
        }
        if counts_table {
            return;
        }
        if let Some(currency) = self.currency {
            sql.condition("currency = ", Arg::Text(currency.to_string()));
        }
        if let Some(from) = self.price_from_minor {
            sql.condition("list_price_minor >= ", Arg::Int(from));
        }
        if let Some(to) = self.price_to_minor {
            sql.condition("list_price_minor <= ", Arg::Int(to));
        }
        if let Some(from) = self.year_from {
            sql.condition("year >= ", Arg::Int(from));
        }
        if let Some(to) = self.year_to {
            sql.condition("year <= ", Arg::Int(to));
        }
    }
}

/// One bound value of a built statement.
#[derive(Clone, Debug)]
enum Arg {
    Text(String),
    Int(i64),
}

/// A statement built from the filters given: its SQL with `$1, $2, …` and the values they stand for.
#[derive(Clone, Debug, Default)]
struct Sql {
    text: String,
    args: Vec<Arg>,
    /// Whether a `WHERE` has been written yet.
    filtered: bool,
}

impl Sql {
    fn new(text: &str) -> Self {
        Self {
            text: text.to_string(),
            ..Self::default()
        }
    }

    fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder for `arg`.
    fn bind(&mut self, arg: Arg) -> &mut Self {
        self.args.push(arg);
        let placeholder = format!("${}", self.args.len());
        self.text.push_str(&placeholder);
        self
    }

    /// Appends `WHERE` or `AND`, then `left` and a placeholder for `arg`.
    fn condition(&mut self, left: &str, arg: Arg) -> &mut Self {
        let joiner = if self.filtered { " AND " } else { " WHERE " };
        self.filtered = true;
        self.text.push_str(joiner);
        self.text.push_str(left);
        self.bind(arg)
    }
}

/// Binds a built statement's values, in order.
macro_rules! bind_args {
    ($query:expr, $sql:expr) => {{
        let mut query = $query;
        for arg in &$sql.args {
            query = match arg {
                Arg::Text(text) => query.bind(text.clone()),
                Arg::Int(number) => query.bind(*number),
            };
        }
        query
    }};
}

fn bind_filter(filter: &VehicleFilter) -> ApiResult<BoundFilter> {
    let currency: aggregates::money::Currency = filter.currency.into();
    let minor = |bound: Option<Decimal>, name: &str| -> ApiResult<Option<i64>> {
        bound
            .map(|value| {
                aggregates::money::Money::new(value.0, currency)
                    .map(|money| money.minor_units())
                    .map_err(|err| ApiError::validation(format!("{name}: {err}")))
            })
            .transpose()
    };
    let price_given = filter.price_from.is_some() || filter.price_to.is_some();
    let bound = BoundFilter {
        // Matched case-insensitively through the projector's keys (see `catalog::match_key`).
        brand_key: filter
            .brand
            .as_ref()
            .map(|s| projections::catalog::match_key(s.trim())),
        model_key: filter
            .model
            .as_ref()
            .map(|s| projections::catalog::match_key(s.trim())),
        year_from: filter.year_from.map(i64::from),
        year_to: filter.year_to.map(i64::from),
        price_from_minor: minor(filter.price_from, "priceFrom")?,
        price_to_minor: minor(filter.price_to, "priceTo")?,
        currency: price_given.then(|| currency.code()),
        condition: filter.condition.map(|c| match c {
            Condition::New => "NEW",
            Condition::Used => "USED",
        }),
        status: filter.status.map(|s| match s {
            VehicleStatus::Available => "AVAILABLE",
            VehicleStatus::Reserved => "RESERVED",
            VehicleStatus::Sold => "SOLD",
            VehicleStatus::Withdrawn => "WITHDRAWN",
        }),
    };
    Ok(bound)
}

/// How many vehicles match: summed from `catalog_counts` when the filter is one it keeps, else
/// counted over the index of the filter's range.
fn count_statement(bound: &BoundFilter) -> Sql {
    if bound.countable() {
        let mut sql =
            Sql::new("SELECT CAST(COALESCE(SUM(vehicles), 0) AS BIGINT) FROM catalog_counts");
        bound.conditions(&mut sql, true);
        sql
    } else {
        let mut sql = Sql::new("SELECT count(*) FROM catalog_vehicles");
        bound.conditions(&mut sql, false);
        sql
    }
}

/// One page in arrival order, after the cursor if any: `limit` rows at most.
fn page_statement(bound: &BoundFilter, after: Option<&(i64, String)>, limit: i64) -> Sql {
    let mut sql = Sql::new(SELECT_VEHICLE);
    bound.conditions(&mut sql, false);
    if let Some((position, id)) = after {
        let joiner = if sql.filtered { " AND " } else { " WHERE " };
        sql.filtered = true;
        sql.push(joiner).push("(stocked_position, vehicle_id) > (");
        sql.bind(Arg::Int(*position)).push(", ");
        sql.bind(Arg::Text(id.clone())).push(")");
    }
    sql.push(" ORDER BY stocked_position, vehicle_id LIMIT ");
    sql.bind(Arg::Int(limit));
    sql
}

/// Counts grouped by brand (and model): from `catalog_counts` when it keeps the filter, else over
/// the vehicles in the filter's range.
fn grouped_count_statement(bound: &BoundFilter, grouping: CatalogGrouping) -> Sql {
    let (select, group) = match grouping {
        CatalogGrouping::Brand => ("brand, NULL AS model", "brand"),
        CatalogGrouping::BrandAndModel => ("brand, model", "brand, model"),
    };
    let mut sql = if bound.countable() {
        let mut sql = Sql::new(&format!(
            "SELECT {select}, CAST(SUM(vehicles) AS BIGINT) AS count FROM catalog_counts"
        ));
        bound.conditions(&mut sql, true);
        sql.push(&format!(" GROUP BY {group} HAVING SUM(vehicles) > 0"));
        sql
    } else {
        let mut sql = Sql::new(&format!(
            "SELECT {select}, count(*) AS count FROM catalog_vehicles"
        ));
        bound.conditions(&mut sql, false);
        sql.push(&format!(" GROUP BY {group}"));
        sql
    };
    sql.push(&format!(" ORDER BY {group}"));
    sql
}

/// One vehicle by id.
pub async fn find(pool: &DbPool, id: Uuid) -> ApiResult<Option<Vehicle>> {
    let sql = format!("{SELECT_VEHICLE} WHERE vehicle_id = $1");
    let row: Option<VehicleRow> = sqlx::query_as(&sql)
        .bind(id.to_string())
        .fetch_optional(pool)
        .await?;
    row.map(Vehicle::try_from).transpose()
}

/// A page of vehicles matching `filter`, oldest arrival first.
pub async fn search(
    pool: &DbPool,
    filter: &VehicleFilter,
    page: Page<VehicleCursor>,
) -> ApiResult<Connection<VehicleCursor, Vehicle, CatalogPage, EmptyFields>> {
    let bound = bind_filter(filter)?;
    if let (Some(from), Some(to)) = (bound.year_from, bound.year_to)
        && from > to
    {
        return Err(ApiError::validation(format!(
            "yearFrom {from} is after yearTo {to}"
        )));
    }
    // The count, the page and the position, all from one snapshot: they describe the same catalog.
    let mut snapshot = Snapshot::open(pool).await?;
    let reflects_position = snapshot.position("catalog").await?;
    let count = count_statement(&bound);
    let total: i64 = bind_args!(sqlx::query_scalar(&count.text), count)
        .fetch_one(snapshot.conn())
        .await?;
    let after = page.after.as_ref().map(|cursor| &cursor.0);
    let statement = page_statement(&bound, after, page.fetch_limit());
    let rows: Vec<VehicleRow> = bind_args!(sqlx::query_as(&statement.text), statement)
        .fetch_all(snapshot.conn())
        .await?;
    let has_next = rows.len() > page.first;
    let mut connection = Connection::with_additional_fields(
        page.has_previous,
        has_next,
        CatalogPage {
            total_count: total,
            reflects_position: Position(reflects_position),
        },
    );
    for row in rows.into_iter().take(page.first) {
        let cursor = OpaqueCursor((row.stocked_position, row.vehicle_id.clone()));
        connection
            .edges
            .push(Edge::new(cursor, Vehicle::try_from(row)?));
    }
    Ok(connection)
}

/// Counts of vehicles matching `filter`, grouped by brand or by brand and model.
pub async fn counts(
    pool: &DbPool,
    filter: &VehicleFilter,
    grouping: CatalogGrouping,
) -> ApiResult<Vec<CatalogCount>> {
    let bound = bind_filter(filter)?;
    let statement = grouped_count_statement(&bound, grouping);
    let rows: Vec<(String, Option<String>, i64)> =
        bind_args!(sqlx::query_as(&statement.text), statement)
            .fetch_all(pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(brand, model, count)| CatalogCount {
            brand,
            model,
            count,
        })
        .collect())
}

/// One statement the catalog runs and how the database plans it.
#[derive(Clone, Debug)]
pub struct QueryPlan {
    /// The statement, with `$n` placeholders.
    pub sql: String,
    /// The planner's report, one line per step: `EXPLAIN QUERY PLAN` on SQLite, `EXPLAIN` on
    /// PostgreSQL.
    pub plan: Vec<String>,
}

/// The plans of the statements `vehicles(filter)` (its count and a page after a cursor) and
/// `vehicleCounts(filter, grouping)` run, with the values they would be given. On PostgreSQL the
/// planner runs with `enable_seqscan = off` (in a transaction that is rolled back), so a
/// sequential scan in a plan means no index applies, whatever the table's size. For the tests
/// that hold each filter shape to its index.
pub async fn query_plans(
    pool: &DbPool,
    filter: &VehicleFilter,
    grouping: CatalogGrouping,
) -> ApiResult<Vec<QueryPlan>> {
    let bound = bind_filter(filter)?;
    let statements = [
        count_statement(&bound),
        page_statement(&bound, None, 11),
        page_statement(&bound, Some(&(0, String::new())), 11),
        grouped_count_statement(&bound, grouping),
    ];
    let backend = eventstore::Backend::of(pool);
    let mut tx = pool.begin().await?;
    if backend == eventstore::Backend::Postgres {
        sqlx::query("SET LOCAL enable_seqscan = off")
            .execute(&mut *tx)
            .await?;
    }
    let mut plans = Vec::new();
    for statement in statements {
        let plan = match backend {
            eventstore::Backend::Sqlite => {
                let explain = format!("EXPLAIN QUERY PLAN {}", statement.text);
                let rows: Vec<(i64, i64, i64, String)> =
                    bind_args!(sqlx::query_as(&explain), statement)
                        .fetch_all(&mut *tx)
                        .await?;
                rows.into_iter().map(|(.., detail)| detail).collect()
            }
            eventstore::Backend::Postgres => {
                let explain = format!("EXPLAIN {}", statement.text);
                bind_args!(sqlx::query_scalar::<_, String>(&explain), statement)
                    .fetch_all(&mut *tx)
                    .await?
            }
        };
        plans.push(QueryPlan {
            sql: statement.text,
            plan,
        });
    }
    tx.rollback().await?;
    Ok(plans)
}
