//! The workshop: bookings, a mechanic's day, and a vehicle's service history, as the `bookings` read
//! model shows them.

use aggregates::bookings::MechanicCode;
use async_graphql::connection::{Connection, Edge, EmptyFields, OpaqueCursor};
use async_graphql::{ComplexObject, Context, Enum, InputObject, Object, SimpleObject};
use chrono::NaiveDate;
use eventstore::DbPool;
use uuid::Uuid;

use crate::customers::Customer;
use crate::input::{Cursor, DateText, Id, MechanicId};
use crate::page::{Page, TotalCount};
use crate::scalars::{DateTime, Money};
use crate::vehicles::Vehicle;
use crate::{ApiError, ApiResult, read_models};

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum ServiceKind {
    /// Scheduled maintenance (oil, filters, inspection).
    Maintenance,
    /// Fixing a fault.
    Repair,
}

impl From<ServiceKind> for aggregates::bookings::ServiceKind {
    fn from(kind: ServiceKind) -> Self {
        match kind {
            ServiceKind::Maintenance => aggregates::bookings::ServiceKind::Maintenance,
            ServiceKind::Repair => aggregates::bookings::ServiceKind::Repair,
        }
    }
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BookingStatus {
    Scheduled,
    /// The car is in the workshop.
    InProgress,
    Completed,
    Cancelled,
    /// The customer did not come.
    NoShow,
}

impl BookingStatus {
    fn as_str(self) -> &'static str {
        match self {
            BookingStatus::Scheduled => "SCHEDULED",
            BookingStatus::InProgress => "IN_PROGRESS",
            BookingStatus::Completed => "COMPLETED",
            BookingStatus::Cancelled => "CANCELLED",
            BookingStatus::NoShow => "NO_SHOW",
        }
    }
}

/// One workshop visit.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Booking {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub vehicle_id: Uuid,
    /// The mechanic's staff code (mechanics are staff, not records of this ledger).
    pub mechanic_id: String,
    pub kind: ServiceKind,
    pub status: BookingStatus,
    /// The slot `[start, end)`.
    pub start: DateTime,
    pub end: DateTime,
    /// The slot's date in dealership time (Moscow, UTC+3), `YYYY-MM-DD`.
    pub day: String,
    /// Free text, which may name people: resolved per caller, see `notes`.
    #[graphql(skip)]
    pub notes: String,
    pub booked_at: DateTime,
    pub rescheduled_at: Option<DateTime>,
    pub started_at: Option<DateTime>,
    pub completed_at: Option<DateTime>,
    pub cancelled_at: Option<DateTime>,
    pub cancellation_reason: Option<String>,
    pub no_show_at: Option<DateTime>,
    /// The odometer at completion, kilometres.
    pub mileage_km: Option<i64>,
    /// What was done (empty until completed).
    pub work: Vec<String>,
    /// What the work cost (null until completed).
    pub cost: Option<Money>,
    pub updated_at: DateTime,
}

#[ComplexObject]
impl Booking {
    /// The customer's or the desk's notes (empty when none); `***` for analysts, who read
    /// personal data masked.
    async fn notes(&self, ctx: &Context<'_>) -> String {
        if self.notes.is_empty() {
            String::new()
        } else {
            crate::access::personal(ctx, &self.notes)
        }
    }

    /// The customer who booked.
    async fn customer(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Customer>> {
        Ok(
            crate::customers::find(read_models(ctx)?.pool(), self.customer_id)
                .await?
                .filter(|_| crate::access::can_see_customer(ctx, self.customer_id)),
        )
    }

    /// The vehicle being serviced.
    async fn vehicle(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Vehicle>> {
        Ok(crate::vehicles::find(read_models(ctx)?.pool(), self.vehicle_id).await?)
    }
}

/// One completed service in a vehicle's history.
#[derive(SimpleObject, Clone, Debug)]
pub struct ServiceRecord {
    pub booking_id: Uuid,
    pub serviced_at: DateTime,
    /// The odometer when the car left the workshop, kilometres.
    pub mileage_km: i64,
    pub work: Vec<String>,
    pub cost: Money,
}

/// All given conditions must hold.
#[derive(InputObject, Clone, Debug, Default)]
pub struct BookingFilter {
    /// A mechanic's staff code. At most 16 characters.
    pub mechanic_id: Option<MechanicId>,
    pub customer_id: Option<Id>,
    pub vehicle_id: Option<Id>,
    pub status: Option<BookingStatus>,
    /// Slots starting at or after this instant.
    pub from: Option<DateTime>,
    /// Slots starting before this instant.
    pub to: Option<DateTime>,
}

#[derive(sqlx::FromRow)]
struct BookingRow {
    booking_id: String,
    customer_id: String,
    vehicle_id: String,
    mechanic_id: String,
    kind: String,
    status: String,
    starts_at: String,
    ends_at: String,
    day: String,
    notes: String,
    booked_at: String,
    rescheduled_at: Option<String>,
    started_at: Option<String>,
    completed_at: Option<String>,
    cancelled_at: Option<String>,
    cancellation_reason: Option<String>,
    no_show_at: Option<String>,
    mileage_km: Option<i64>,
    work: Option<String>,
    cost_minor: Option<i64>,
    currency: Option<String>,
    updated_at: String,
}

const SELECT_BOOKING: &str =
    "SELECT booking_id, customer_id, vehicle_id, mechanic_id, kind, status, starts_at,
        ends_at, day, notes, booked_at, rescheduled_at, started_at, completed_at, cancelled_at,
        cancellation_reason, no_show_at, mileage_km, work, cost_minor, currency, updated_at
   FROM bookings";

fn stored_work(text: &str) -> ApiResult<Vec<String>> {
    serde_json::from_str(text).map_err(|err| ApiError::internal(format!("stored work: {err}")))
}

impl TryFrom<BookingRow> for Booking {
    type Error = ApiError;

    fn try_from(row: BookingRow) -> ApiResult<Self> {
        let time = |text: &Option<String>| text.as_deref().map(DateTime::from_stored).transpose();
        let cost = match (row.cost_minor, row.currency.as_deref()) {
            (Some(minor), Some(currency)) => Some(Money::from_stored(minor, currency)?),
            _ => None,
        };
        Ok(Booking {
            id: crate::parse_stored_uuid(&row.booking_id)?,
            customer_id: crate::parse_stored_uuid(&row.customer_id)?,
            vehicle_id: crate::parse_stored_uuid(&row.vehicle_id)?,
            mechanic_id: row.mechanic_id,
            kind: match row.kind.as_str() {
                "MAINTENANCE" => ServiceKind::Maintenance,
                "REPAIR" => ServiceKind::Repair,
                other => return Err(ApiError::internal(format!("stored kind {other:?}"))),
            },
            status: match row.status.as_str() {
                "SCHEDULED" => BookingStatus::Scheduled,
                "IN_PROGRESS" => BookingStatus::InProgress,
                "COMPLETED" => BookingStatus::Completed,
                "CANCELLED" => BookingStatus::Cancelled,
                "NO_SHOW" => BookingStatus::NoShow,
                other => return Err(ApiError::internal(format!("stored status {other:?}"))),
            },
            start: DateTime::from_stored(&row.starts_at)?,
            end: DateTime::from_stored(&row.ends_at)?,
            day: row.day,
            notes: row.notes,
            booked_at: DateTime::from_stored(&row.booked_at)?,
            rescheduled_at: time(&row.rescheduled_at)?,
            started_at: time(&row.started_at)?,
            completed_at: time(&row.completed_at)?,
            cancelled_at: time(&row.cancelled_at)?,
            cancellation_reason: row.cancellation_reason,
            no_show_at: time(&row.no_show_at)?,
            mileage_km: row.mileage_km,
            work: row
                .work
                .as_deref()
                .map(stored_work)
                .transpose()?
                .unwrap_or_default(),
            cost,
            updated_at: DateTime::from_stored(&row.updated_at)?,
        })
    }
}

/// One booking by id.
pub async fn find(pool: &DbPool, id: Uuid) -> ApiResult<Option<Booking>> {
    let sql = format!("{SELECT_BOOKING} WHERE booking_id = $1");
    let row: Option<BookingRow> = sqlx::query_as(&sql)
        .bind(id.to_string())
        .fetch_optional(pool)
        .await?;
    row.map(Booking::try_from).transpose()
}

/// A mechanic id on input: the staff code, normalised as the write side stores it.
fn mechanic_code(text: &str) -> ApiResult<String> {
    MechanicCode::parse(text)
        .map(|code| code.as_str().to_string())
        .map_err(|err| ApiError::validation(format!("mechanicId: {err}")))
}

const FILTER: &str = "($1 IS NULL OR mechanic_id = $1)
    AND ($2 IS NULL OR customer_id = $2)
    AND ($3 IS NULL OR vehicle_id = $3)
    AND ($4 IS NULL OR status = $4)
    AND ($5 IS NULL OR starts_at >= $5)
    AND ($6 IS NULL OR starts_at < $6)";

/// Cursor of the bookings list: the slot's start and the booking id.
pub type BookingCursor = OpaqueCursor<(String, String)>;

/// A page of bookings matching `filter`, earliest slot first.
pub async fn search(
    pool: &DbPool,
    filter: &BookingFilter,
    page: Page<BookingCursor>,
) -> ApiResult<Connection<BookingCursor, Booking, TotalCount, EmptyFields>> {
    let mechanic = filter
        .mechanic_id
        .as_deref()
        .map(mechanic_code)
        .transpose()?;
    if let (Some(from), Some(to)) = (filter.from, filter.to)
        && from.0 > to.0
    {
        return Err(ApiError::validation("from is after to"));
    }
    let stamp = |at: &Option<DateTime>| at.map(|at| projections::rfc3339(at.0));
    let (from, to) = (stamp(&filter.from), stamp(&filter.to));
    let customer = filter.customer_id.map(|id| id.to_string());
    let vehicle = filter.vehicle_id.map(|id| id.to_string());
    let status = filter.status.map(BookingStatus::as_str);
    macro_rules! bind_filter {
        ($query:expr) => {
            $query
                .bind(&mechanic)
                .bind(&customer)
                .bind(&vehicle)
                .bind(status)
                .bind(&from)
                .bind(&to)
        };
    }
    let count_sql = format!("SELECT count(*) FROM bookings WHERE {FILTER}");
    let total: i64 = bind_filter!(sqlx::query_scalar(&count_sql))
        .fetch_one(pool)
        .await?;
    let (after_start, after_id) = page
        .after
        .as_ref()
        .map(|cursor| cursor.0.clone())
        .unwrap_or_default();
    let sql = format!(
        "{SELECT_BOOKING} WHERE {FILTER} AND (starts_at, booking_id) > ($7, $8)
          ORDER BY starts_at, booking_id LIMIT $9"
    );
    let rows: Vec<BookingRow> = bind_filter!(sqlx::query_as(&sql))
        .bind(after_start)
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
        let cursor = OpaqueCursor((row.starts_at.clone(), row.booking_id.clone()));
        connection
            .edges
            .push(Edge::new(cursor, Booking::try_from(row)?));
    }
    Ok(connection)
}

/// A mechanic's bookings on one day (dealership time), every status, earliest first.
pub async fn mechanic_schedule(
    pool: &DbPool,
    mechanic: &str,
    day: &str,
) -> ApiResult<Vec<Booking>> {
    let mechanic = mechanic_code(mechanic)?;
    let day = NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .map_err(|_| ApiError::validation(format!("date: {day:?} is not YYYY-MM-DD")))?;
    let sql = format!(
        "{SELECT_BOOKING} WHERE mechanic_id = $1 AND day = $2 ORDER BY starts_at, booking_id"
    );
    let rows: Vec<BookingRow> = sqlx::query_as(&sql)
        .bind(mechanic)
        .bind(day.format("%Y-%m-%d").to_string())
        .fetch_all(pool)
        .await?;
    rows.into_iter().map(Booking::try_from).collect()
}

/// A vehicle's completed services, oldest first; `None` when the vehicle is unknown.
pub async fn service_history(
    pool: &DbPool,
    vehicle_id: Uuid,
) -> ApiResult<Option<Vec<ServiceRecord>>> {
    let known: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM catalog_vehicles WHERE vehicle_id = $1")
            .bind(vehicle_id.to_string())
            .fetch_optional(pool)
            .await?;
    if known.is_none() {
        return Ok(None);
    }
    let rows: Vec<(String, String, i64, String, i64, String)> = sqlx::query_as(
        "SELECT booking_id, serviced_at, mileage_km, work, cost_minor, currency
           FROM vehicle_service_history WHERE vehicle_id = $1 ORDER BY recorded_position",
    )
    .bind(vehicle_id.to_string())
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(
            |(booking_id, serviced_at, mileage_km, work, cost_minor, currency)| {
                Ok(ServiceRecord {
                    booking_id: crate::parse_stored_uuid(&booking_id)?,
                    serviced_at: DateTime::from_stored(&serviced_at)?,
                    mileage_km,
                    work: stored_work(&work)?,
                    cost: Money::from_stored(cost_minor, &currency)?,
                })
            },
        )
        .collect::<ApiResult<Vec<_>>>()
        .map(Some)
}

/// Bookings, mechanics' days and service histories.
#[derive(Default)]
pub struct BookingsQuery;

#[Object]
impl BookingsQuery {
    /// One booking. Unknown ids are a `NOT_FOUND` error.
    async fn booking(&self, ctx: &Context<'_>, id: Id) -> async_graphql::Result<Booking> {
        Ok(find(read_models(ctx)?.pool(), *id)
            .await?
            .filter(|booking| crate::access::can_see_customer(ctx, booking.customer_id))
            .ok_or_else(|| ApiError::not_found("booking", id))?)
    }

    /// Bookings, earliest slot first, filtered.
    async fn bookings(
        &self,
        ctx: &Context<'_>,
        filter: Option<BookingFilter>,
        #[graphql(desc = "Page size, 1 to 200 (default 50).")] first: Option<i32>,
        #[graphql(
            desc = "Continue after this cursor (a `pageInfo.endCursor`). At most 512 characters."
        )]
        after: Option<Cursor>,
    ) -> async_graphql::Result<Connection<BookingCursor, Booking, TotalCount, EmptyFields>> {
        let page = Page::new(first, after)?;
        let mut filter = filter.unwrap_or_default();
        let Some(customer) =
            crate::access::customer_filter(ctx, filter.customer_id.map(crate::input::Id::uuid))
        else {
            return Ok(crate::page::empty());
        };
        filter.customer_id = customer.map(crate::input::Id::known).transpose()?;
        Ok(search(read_models(ctx)?.pool(), &filter, page).await?)
    }

    /// A mechanic's bookings on one day (`date` is `YYYY-MM-DD`, dealership time), every status.
    async fn mechanic_schedule(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mechanic's staff code, e.g. \"M-017\". At most 16 characters.")]
        mechanic_id: MechanicId,
        #[graphql(desc = "The day, `YYYY-MM-DD`. At most 10 characters.")] date: DateText,
    ) -> async_graphql::Result<Vec<Booking>> {
        Ok(mechanic_schedule(read_models(ctx)?.pool(), &mechanic_id, &date).await?)
    }

    /// A vehicle's completed services, oldest first. Unknown vehicles are a `NOT_FOUND` error.
    async fn service_history(
        &self,
        ctx: &Context<'_>,
        vehicle_id: Id,
    ) -> async_graphql::Result<Vec<ServiceRecord>> {
        Ok(service_history(read_models(ctx)?.pool(), *vehicle_id)
            .await?
            .ok_or_else(|| ApiError::not_found("vehicle", vehicle_id))?)
    }
}
