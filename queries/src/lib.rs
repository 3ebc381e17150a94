//! The read side over GraphQL: queries over the read models and the event log, plus the scalars and
//! errors that mutations share.
//!
//! # Layout
//! - [`scalars`]: `Decimal`, `DateTime`, `Date`, `Position`, `Money`, `Currency` — strict on input.
//! - [`access`]: the verified [`access::Identity`] of a request and which rows it may see.
//! - [`accounts`]: the caller's own account, accounts and partner keys for admins and auditors.
//! - [`error`]: [`ApiError`] and the stable `extensions.code` values.
//! - [`input`]: every text and id the API accepts, with its limits: lengths, control and bidi
//!   characters, blank values, card numbers, the nil UUID.
//! - [`page`]: Relay pagination with a capped page size.
//! - [`snapshot`]: reading a read model together with the log position it reflects.
//! - [`vehicles`], [`customers`], [`orders`], [`loans`]: read-model views and their SQL.
//! - [`payments`]: payments and refunds, and the `payment`/`payments` queries.
//! - [`insurance`]: quotes, policies, claims and electronic-policy verification.
//! - [`audit`]: the global log and aggregate streams for auditors.
//! - [`ledger`]: the chart of accounts, balances, trial balance, journal and customer statements.
//! - [`bookings`]: workshop bookings, mechanics' days and vehicles' service histories.
//! - [`promotions`]: promotions, their promo codes and their effect on orders.
//! - [`reports`]: sales, payments, financing, insurance, workshop and inventory reports.
//! - [`customer_history`]: a customer's history and summary, with the position they reflect.
//!
//! Architecture invariant: queries only read. They never load aggregates or send commands.

pub mod access;
pub mod accounts;
pub mod audit;
pub mod bookings;
pub mod customer_history;
pub mod customers;
pub mod error;
pub mod input;
pub mod insurance;
pub mod ledger;
pub mod loans;
pub mod orders;
pub mod page;
pub mod payments;
pub mod promotions;
pub mod reports;
pub mod scalars;
pub mod snapshot;
pub mod vehicles;

use std::sync::Arc;

use async_graphql::{Context, MergedObject, Object, SimpleObject};
use eventstore::{DbPool, EventLog};
use projections::Projections;
use uuid::Uuid;

pub use error::{ApiError, ApiResult, codes};

use crate::audit::{AggregateType, EventConnection, LogCursor};
use crate::input::{Cursor, Id};
use crate::page::Page;
use crate::scalars::Position;
use crate::vehicles::{CatalogCount, CatalogGrouping, VehicleFilter};

/// What resolvers read from: the read-model pool, the event log and the projectors' status.
#[derive(Clone)]
pub struct ReadModels {
    pool: DbPool,
    log: EventLog,
    projections: Arc<Projections>,
}

impl ReadModels {
    pub fn new(pool: DbPool, log: EventLog, projections: Arc<Projections>) -> Self {
        Self {
            pool,
            log,
            projections,
        }
    }

    pub fn pool(&self) -> &DbPool {
        &self.pool
    }

    pub fn log(&self) -> &EventLog {
        &self.log
    }

    pub fn projections(&self) -> &Arc<Projections> {
        &self.projections
    }
}

/// The [`ReadModels`] put into the schema's data.
pub fn read_models<'a>(ctx: &Context<'a>) -> Result<&'a ReadModels, ApiError> {
    ctx.data::<ReadModels>()
        .map_err(|err| ApiError::internal(format!("schema data missing: {}", err.message)))
}

/// Ids in read models are written by projectors from UUIDs; anything else is corruption.
pub(crate) fn parse_stored_uuid(text: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(text).map_err(|err| ApiError::internal(format!("stored id {text:?}: {err}")))
}

/// One projector's progress.
#[derive(SimpleObject, Clone, Debug)]
pub struct ProjectionStatus {
    pub name: String,
    /// Every event up to this position is reflected in its tables.
    pub position: Position,
    /// Events committed after `position` and not yet applied.
    pub events_behind: i64,
    /// Why it is stopped, while it is failing.
    pub last_error: Option<String>,
    /// The event it is stopped on, while it is failing.
    pub failed_position: Option<Position>,
}

/// Every query: one part per area of the dealership.
#[derive(MergedObject, Default)]
pub struct QueryRoot(
    SalesQuery,
    AuditQuery,
    payments::PaymentsQuery,
    loans::LoansQuery,
    insurance::InsuranceQuery,
    bookings::BookingsQuery,
    reports::ReportsQuery,
    promotions::PromotionsQuery,
    ledger::LedgerQuery,
    customer_history::CustomerHistoryQuery,
    accounts::AccountsQuery,
);

/// Vehicles, customers and orders.
#[derive(Default)]
pub struct SalesQuery;

/// The event log and the projectors, for auditors and operators.
#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl SalesQuery {
    /// Vehicles in the catalog, oldest arrival first, filtered.
    async fn vehicles(
        &self,
        ctx: &Context<'_>,
        filter: Option<VehicleFilter>,
        #[graphql(desc = "Page size, 1 to 200 (default 50).")] first: Option<i32>,
        #[graphql(
            desc = "Continue after this cursor (a `pageInfo.endCursor`). At most 512 characters."
        )]
        after: Option<Cursor>,
    ) -> async_graphql::Result<
        async_graphql::connection::Connection<
            async_graphql::connection::OpaqueCursor<(i64, String)>,
            vehicles::Vehicle,
            vehicles::CatalogPage,
        >,
    > {
        let page = Page::new(first, after)?;
        Ok(vehicles::search(read_models(ctx)?.pool(), &filter.unwrap_or_default(), page).await?)
    }

    /// How many catalog vehicles match, per brand or per brand and model.
    async fn vehicle_counts(
        &self,
        ctx: &Context<'_>,
        filter: Option<VehicleFilter>,
        #[graphql(default_with = "CatalogGrouping::BrandAndModel")] group_by: CatalogGrouping,
    ) -> async_graphql::Result<Vec<CatalogCount>> {
        Ok(vehicles::counts(
            read_models(ctx)?.pool(),
            &filter.unwrap_or_default(),
            group_by,
        )
        .await?)
    }

    /// One vehicle. Unknown ids are a `NOT_FOUND` error.
    async fn vehicle(&self, ctx: &Context<'_>, id: Id) -> async_graphql::Result<vehicles::Vehicle> {
        Ok(vehicles::find(read_models(ctx)?.pool(), *id)
            .await?
            .ok_or_else(|| ApiError::not_found("vehicle", id))?)
    }

    /// One customer. Unknown ids are a `NOT_FOUND` error.
    async fn customer(
        &self,
        ctx: &Context<'_>,
        id: Id,
    ) -> async_graphql::Result<customers::Customer> {
        Ok(customers::find(read_models(ctx)?.pool(), *id)
            .await?
            .filter(|_| access::can_see_customer(ctx, *id))
            .ok_or_else(|| ApiError::not_found("customer", id))?)
    }

    /// One sales order. Unknown ids are a `NOT_FOUND` error.
    async fn order(&self, ctx: &Context<'_>, id: Id) -> async_graphql::Result<orders::Order> {
        Ok(orders::find(read_models(ctx)?.pool(), *id)
            .await?
            .filter(|order| access::can_see_customer(ctx, order.customer_id))
            .ok_or_else(|| ApiError::not_found("order", id))?)
    }
}

#[Object]
impl AuditQuery {
    /// The global event log in commit order, starting after `after` (or after the `after` cursor).
    async fn events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Start after this position (0 or absent: from the beginning).")]
        after_position: Option<Position>,
        #[graphql(desc = "Page size, 1 to 200 (default 50).")] first: Option<i32>,
        #[graphql(
            desc = "Continue after this cursor (a `pageInfo.endCursor`). At most 512 characters."
        )]
        after: Option<Cursor>,
    ) -> async_graphql::Result<EventConnection> {
        let page = Page::<LogCursor>::new(first, after)?;
        Ok(audit::global(read_models(ctx)?.log(), after_position, page).await?)
    }

    /// One aggregate's events in stream order (cursor: the sequence number).
    async fn aggregate_events(
        &self,
        ctx: &Context<'_>,
        aggregate_type: AggregateType,
        id: Id,
        #[graphql(desc = "Page size, 1 to 200 (default 50).")] first: Option<i32>,
        #[graphql(
            desc = "Continue after this cursor (a `pageInfo.endCursor`). At most 512 characters."
        )]
        after: Option<Cursor>,
    ) -> async_graphql::Result<EventConnection> {
        let page = Page::<LogCursor>::new(first, after)?;
        Ok(audit::stream(
            read_models(ctx)?.log(),
            aggregate_type,
            &id.to_string(),
            page,
        )
        .await?)
    }

    /// Each projector's position, lag and failure, if any; then the same for the integration-event
    /// relay (`amqp_relay`) when it is configured, whose `lastError` says why the broker is out of
    /// reach while it is.
    async fn projections(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ProjectionStatus>> {
        let read = read_models(ctx)?;
        let head = read.log().head().await.map_err(ApiError::from)?;
        let projections = read.projections();
        Ok(projections
            .statuses()
            .into_iter()
            .chain(projections.follower_statuses())
            .map(|(name, status)| ProjectionStatus {
                name: name.to_string(),
                position: Position(status.position),
                events_behind: (head - status.position).max(0),
                failed_position: status
                    .failure
                    .as_ref()
                    .map(|(position, _)| Position(*position)),
                last_error: status.failure.map(|(_, error)| error),
            })
            .collect())
    }
}
