//! A customer's history and summary as the `customer_history` read model shows them, each with the
//! global position its rows reflect (read in one snapshot with the projector's checkpoint).
//!
//! Period filters: `from`/`to` are calendar days in Moscow time (UTC+3, fixed) of the event's
//! `recorded_at`; `from` is included, `to` excluded.

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, Object, SimpleObject};
use chrono::{NaiveDate, Utc};
use eventstore::DbPool;
use uuid::Uuid;

use crate::audit::LogCursor;
use crate::page::Page;
use crate::scalars::{Date, DateTime, Money, Position};
use crate::snapshot::Snapshot;
use crate::{ApiError, ApiResult, read_models};

/// The projector whose tables this module reads.
const PROJECTOR: &str = "customer_history";

/// One event in a customer's history.
#[derive(SimpleObject, Clone, Debug)]
pub struct HistoryEntry {
    /// The event's global position: the history's order.
    pub position: Position,
    pub recorded_at: DateTime,
    /// The stream: `Customer`, `Order`, `Payment`, `Loan`, `Policy`, `Booking` or `Vehicle`.
    pub aggregate_type: String,
    pub aggregate_id: Uuid,
    /// The event's name, e.g. `PaymentCompleted`.
    pub event_type: String,
    /// One line for people, e.g. "Paid 425 000.00 RUB by card ending 4242 towards order …".
    pub summary: String,
}

/// Extra fields of a history page.
#[derive(SimpleObject, Clone, Copy, Debug)]
pub struct HistoryFields {
    /// Entries matching the filter in all.
    pub total_count: i64,
    /// The global position the history reflects: every event up to it is included.
    pub reflects_position: Position,
}

pub type HistoryConnection = Connection<LogCursor, HistoryEntry, HistoryFields, EmptyFields>;

/// A customer at a glance.
#[derive(SimpleObject, Clone, Debug)]
pub struct CustomerSummary {
    pub customer_id: Uuid,
    /// Orders drafted, whatever their status.
    pub orders_count: i64,
    /// Orders handed over.
    pub orders_completed: i64,
    /// Paid towards the customer's orders, net of refunds, every method including credit: one
    /// amount per currency paid in (empty when nothing is paid).
    pub total_paid: Vec<Money>,
    /// Loans disbursed and still being repaid.
    pub active_loans: i64,
    /// Principal still owed on active and defaulted loans, one amount per currency (empty when none).
    pub outstanding_principal: Vec<Money>,
    /// Policies whose premium is paid and that have not ended.
    pub active_policies: i64,
    /// Claims filed, under review or approved, not yet paid or rejected.
    pub open_claims: i64,
    /// Service bookings still scheduled that start now or later.
    pub upcoming_bookings: i64,
    /// The earliest of them.
    pub next_booking_start: Option<DateTime>,
    /// The global position the summary reflects.
    pub reflects_position: Position,
}

#[derive(sqlx::FromRow)]
struct SummaryRow {
    orders_count: i64,
    orders_completed: i64,
    active_loans: i64,
    active_policies: i64,
    open_claims: i64,
    upcoming_bookings: i64,
    next_booking_start: Option<String>,
}

/// The instant a Moscow calendar day starts, as stored text (RFC 3339 UTC sorts as text).
fn moscow_day_start(day: NaiveDate) -> String {
    projections::rfc3339(aggregates::calendar::day_start(day))
}

async fn known(snapshot: &mut Snapshot, id: Uuid) -> ApiResult<()> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM customer_summary WHERE customer_id = $1")
            .bind(id.to_string())
            .fetch_optional(snapshot.conn())
            .await?;
    found
        .map(|_| ())
        .ok_or_else(|| ApiError::not_found("customer", id))
}

/// A page of the customer's history in global order. Unknown customers are `NOT_FOUND`.
pub async fn history(
    pool: &DbPool,
    id: Uuid,
    from: Option<Date>,
    to: Option<Date>,
    page: Page<LogCursor>,
) -> ApiResult<HistoryConnection> {
    if let (Some(from), Some(to)) = (from, to)
        && from.0 > to.0
    {
        return Err(ApiError::validation("from is after to"));
    }
    let from = from.map(|day| moscow_day_start(day.0));
    let to = to.map(|day| moscow_day_start(day.0));
    let mut snapshot = Snapshot::open(pool).await?;
    known(&mut snapshot, id).await?;
    let customer = id.to_string();
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM customer_history
          WHERE customer_id = $1 AND ($2 IS NULL OR recorded_at >= $2) AND ($3 IS NULL OR recorded_at < $3)",
    )
    .bind(&customer)
    .bind(&from)
    .bind(&to)
    .fetch_one(snapshot.conn())
    .await?;
    let rows: Vec<(i64, String, String, String, String, String)> = sqlx::query_as(
        "SELECT position, recorded_at, aggregate_type, aggregate_id, event_type, summary
           FROM customer_history
          WHERE customer_id = $1 AND ($2 IS NULL OR recorded_at >= $2) AND ($3 IS NULL OR recorded_at < $3)
            AND position > $4
          ORDER BY position LIMIT $5",
    )
    .bind(&customer)
    .bind(&from)
    .bind(&to)
    .bind(page.after.as_ref().map_or(0, |cursor| cursor.0))
    .bind(page.fetch_limit())
    .fetch_all(snapshot.conn())
    .await?;
    let reflects = snapshot.position(PROJECTOR).await?;
    let has_next = rows.len() > page.first;
    let mut connection = Connection::with_additional_fields(
        page.has_previous,
        has_next,
        HistoryFields {
            total_count: total,
            reflects_position: Position(reflects),
        },
    );
    for (position, recorded_at, aggregate_type, aggregate_id, event_type, summary) in
        rows.into_iter().take(page.first)
    {
        let entry = HistoryEntry {
            position: Position(position),
            recorded_at: DateTime::from_stored(&recorded_at)?,
            aggregate_type,
            aggregate_id: crate::parse_stored_uuid(&aggregate_id)?,
            event_type,
            summary,
        };
        connection.edges.push(Edge::new(LogCursor(position), entry));
    }
    Ok(connection)
}

/// The customer's summary. Unknown customers are `NOT_FOUND`.
pub async fn summary(pool: &DbPool, id: Uuid) -> ApiResult<CustomerSummary> {
    let mut snapshot = Snapshot::open(pool).await?;
    let row: Option<SummaryRow> = sqlx::query_as(
        "SELECT orders_count, orders_completed, active_loans, active_policies, open_claims,
                (SELECT count(*) FROM customer_history_bookings b
                  WHERE b.customer_id = s.customer_id AND b.status = 'SCHEDULED'
                    AND b.slot_start >= $2) AS upcoming_bookings,
                (SELECT min(slot_start) FROM customer_history_bookings b
                  WHERE b.customer_id = s.customer_id AND b.status = 'SCHEDULED'
                    AND b.slot_start >= $2) AS next_booking_start
           FROM customer_summary s WHERE customer_id = $1",
    )
    .bind(id.to_string())
    // "Now" as the stored timestamps spell it (RFC 3339 UTC, milliseconds), computed here: the
    // backends have no common function for it.
    .bind(projections::rfc3339(Utc::now()))
    .fetch_optional(snapshot.conn())
    .await?;
    let row = row.ok_or_else(|| ApiError::not_found("customer", id))?;
    let money: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT currency, total_paid_minor, outstanding_principal_minor FROM customer_summary_money
          WHERE customer_id = $1 ORDER BY currency",
    )
    .bind(id.to_string())
    .fetch_all(snapshot.conn())
    .await?;
    let reflects = snapshot.position(PROJECTOR).await?;
    let (mut total_paid, mut outstanding_principal) = (Vec::new(), Vec::new());
    for (currency, paid_minor, outstanding_minor) in money {
        if paid_minor != 0 {
            total_paid.push(Money::from_stored(paid_minor, &currency)?);
        }
        if outstanding_minor != 0 {
            outstanding_principal.push(Money::from_stored(outstanding_minor, &currency)?);
        }
    }
    Ok(CustomerSummary {
        customer_id: id,
        orders_count: row.orders_count,
        orders_completed: row.orders_completed,
        total_paid,
        active_loans: row.active_loans,
        outstanding_principal,
        active_policies: row.active_policies,
        open_claims: row.open_claims,
        upcoming_bookings: row.upcoming_bookings,
        next_booking_start: row
            .next_booking_start
            .as_deref()
            .map(DateTime::from_stored)
            .transpose()?,
        reflects_position: Position(reflects),
    })
}

/// A customer's history and summary.
#[derive(Default)]
pub struct CustomerHistoryQuery;

#[Object]
impl CustomerHistoryQuery {
    /// Everything that happened to one customer, across every area, in global order.
    /// `from`/`to`: Moscow calendar days of `recordedAt`, `from` included, `to` excluded.
    /// Unknown customers are a `NOT_FOUND` error.
    async fn customer_history(
        &self,
        ctx: &Context<'_>,
        customer_id: crate::input::Id,
        from: Option<Date>,
        to: Option<Date>,
        #[graphql(desc = "Page size, 1 to 200 (default 50).")] first: Option<i32>,
        #[graphql(
            desc = "Continue after this cursor (a `pageInfo.endCursor`). At most 512 characters."
        )]
        after: Option<crate::input::Cursor>,
    ) -> async_graphql::Result<HistoryConnection> {
        let page = Page::new(first, after)?;
        let customer_id = *customer_id;
        if !crate::access::can_see_customer(ctx, customer_id) {
            return Err(ApiError::not_found("customer", customer_id).into());
        }
        Ok(history(read_models(ctx)?.pool(), customer_id, from, to, page).await?)
    }

    /// One customer at a glance. Unknown customers are a `NOT_FOUND` error.
    async fn customer_summary(
        &self,
        ctx: &Context<'_>,
        customer_id: crate::input::Id,
    ) -> async_graphql::Result<CustomerSummary> {
        let customer_id = *customer_id;
        if !crate::access::can_see_customer(ctx, customer_id) {
            return Err(ApiError::not_found("customer", customer_id).into());
        }
        Ok(summary(read_models(ctx)?.pool(), customer_id).await?)
    }
}
