//! Payments and their refunds as the `payments` read model shows them.

use async_graphql::connection::{Connection, Edge, EmptyFields, OpaqueCursor};
use async_graphql::{ComplexObject, Context, Enum, InputObject, SimpleObject};
use eventstore::DbPool;
use uuid::Uuid;

use crate::page::{Page, TotalCount};
use crate::scalars::{DateTime, Money};
use crate::{ApiError, ApiResult};

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum PaymentMethod {
    Card,
    BankTransfer,
    Cash,
    /// A loan disbursed by a lender to the dealership.
    Credit,
}

impl PaymentMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentMethod::Card => "CARD",
            PaymentMethod::BankTransfer => "BANK_TRANSFER",
            PaymentMethod::Cash => "CASH",
            PaymentMethod::Credit => "CREDIT",
        }
    }
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentStatus {
    /// Initiated; no money has moved yet.
    Pending,
    /// In the gateway's hands (card, bank transfer).
    Processing,
    Completed,
    Failed,
    Cancelled,
    /// Completed, then refunded in full.
    Refunded,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "PENDING",
            PaymentStatus::Processing => "PROCESSING",
            PaymentStatus::Completed => "COMPLETED",
            PaymentStatus::Failed => "FAILED",
            PaymentStatus::Cancelled => "CANCELLED",
            PaymentStatus::Refunded => "REFUNDED",
        }
    }
}

/// One refund of a payment.
#[derive(SimpleObject, Clone, Debug)]
pub struct Refund {
    pub id: Uuid,
    pub payment_id: Uuid,
    pub amount: Money,
    pub reason: String,
    pub refunded_at: DateTime,
    /// When the order recorded the refund (null if the payment was never recorded on its order).
    pub recorded_on_order_at: Option<DateTime>,
}

/// Money paid towards an order.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Payment {
    pub id: Uuid,
    pub order_id: Uuid,
    pub customer_id: Uuid,
    pub method: PaymentMethod,
    pub status: PaymentStatus,
    pub amount: Money,
    /// The sum of the refunds so far.
    pub refunded_total: Money,
    /// The card's last four digits (card payments only); the ledger never holds more of a card.
    pub card_last4: Option<String>,
    /// The gateway's transaction id (card and bank transfer, from processing on).
    pub gateway_transaction_id: Option<String>,
    /// The loan disbursed (credit payments only).
    pub loan_id: Option<Uuid>,
    pub failure_reason: Option<String>,
    pub cancellation_reason: Option<String>,
    pub initiated_at: DateTime,
    pub processing_started_at: Option<DateTime>,
    pub completed_at: Option<DateTime>,
    pub failed_at: Option<DateTime>,
    pub cancelled_at: Option<DateTime>,
    /// When the order recorded this completed payment. Null on a completed payment means its order
    /// refused it: `recordPaymentOnOrder` retries, or a refund returns the money.
    pub recorded_on_order_at: Option<DateTime>,
    pub updated_at: DateTime,
}

#[ComplexObject]
impl Payment {
    /// The amount less refunds, once completed; zero before completion and if it failed.
    async fn net_paid(&self) -> async_graphql::Result<Money> {
        let net = match self.status {
            PaymentStatus::Completed | PaymentStatus::Refunded => {
                self.amount.amount.0 - self.refunded_total.amount.0
            }
            _ => rust_decimal::Decimal::new(0, 2),
        };
        Ok(Money {
            amount: crate::scalars::Decimal(net),
            currency: self.amount.currency,
        })
    }

    /// The refunds of this payment, oldest first.
    async fn refunds(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Refund>> {
        Ok(refunds_of(crate::read_models(ctx)?.pool(), self.id).await?)
    }

    /// The order paid for.
    async fn order(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<crate::orders::Order>> {
        Ok(
            crate::orders::find(crate::read_models(ctx)?.pool(), self.order_id)
                .await?
                .filter(|order| crate::access::can_see_customer(ctx, order.customer_id)),
        )
    }
}

/// Narrows the `payments` list; absent fields do not filter.
#[derive(InputObject, Clone, Debug, Default)]
pub struct PaymentFilter {
    pub order_id: Option<crate::input::Id>,
    pub customer_id: Option<crate::input::Id>,
    pub status: Option<PaymentStatus>,
    pub method: Option<PaymentMethod>,
}

/// Cursor: the position of the payment's first event, and its id.
pub type PaymentCursor = OpaqueCursor<(i64, String)>;

pub type PaymentConnection = Connection<PaymentCursor, Payment, TotalCount, EmptyFields>;

const SELECT_PAYMENT: &str = "SELECT payment_id, order_id, customer_id, method, status, currency, amount_minor,
        refunded_total_minor, card_last4, gateway_transaction_id, loan_id, failure_reason, cancellation_reason,
        initiated_at, processing_started_at, completed_at, failed_at, cancelled_at, recorded_on_order_at,
        initiated_position, updated_at
   FROM payments";

/// Every filter is optional: `$N IS NULL OR column = $N`.
const FILTER: &str = "($1 IS NULL OR order_id = $1) AND ($2 IS NULL OR customer_id = $2)
    AND ($3 IS NULL OR status = $3) AND ($4 IS NULL OR method = $4)";

#[derive(sqlx::FromRow)]
struct PaymentRow {
    payment_id: String,
    order_id: String,
    customer_id: String,
    method: String,
    status: String,
    currency: String,
    amount_minor: i64,
    refunded_total_minor: i64,
    card_last4: Option<String>,
    gateway_transaction_id: Option<String>,
    loan_id: Option<String>,
    failure_reason: Option<String>,
    cancellation_reason: Option<String>,
    initiated_at: String,
    processing_started_at: Option<String>,
    completed_at: Option<String>,
    failed_at: Option<String>,
    cancelled_at: Option<String>,
    recorded_on_order_at: Option<String>,
    initiated_position: i64,
    updated_at: String,
}

fn optional_time(text: &Option<String>) -> ApiResult<Option<DateTime>> {
    text.as_deref().map(DateTime::from_stored).transpose()
}

impl TryFrom<PaymentRow> for Payment {
    type Error = ApiError;

    fn try_from(row: PaymentRow) -> ApiResult<Self> {
        Ok(Payment {
            id: crate::parse_stored_uuid(&row.payment_id)?,
            order_id: crate::parse_stored_uuid(&row.order_id)?,
            customer_id: crate::parse_stored_uuid(&row.customer_id)?,
            method: match row.method.as_str() {
                "CARD" => PaymentMethod::Card,
                "BANK_TRANSFER" => PaymentMethod::BankTransfer,
                "CASH" => PaymentMethod::Cash,
                "CREDIT" => PaymentMethod::Credit,
                other => return Err(ApiError::internal(format!("stored method {other:?}"))),
            },
            status: match row.status.as_str() {
                "PENDING" => PaymentStatus::Pending,
                "PROCESSING" => PaymentStatus::Processing,
                "COMPLETED" => PaymentStatus::Completed,
                "FAILED" => PaymentStatus::Failed,
                "CANCELLED" => PaymentStatus::Cancelled,
                "REFUNDED" => PaymentStatus::Refunded,
                other => {
                    return Err(ApiError::internal(format!(
                        "stored payment status {other:?}"
                    )));
                }
            },
            amount: Money::from_stored(row.amount_minor, &row.currency)?,
            refunded_total: Money::from_stored(row.refunded_total_minor, &row.currency)?,
            card_last4: row.card_last4,
            gateway_transaction_id: row.gateway_transaction_id,
            loan_id: row
                .loan_id
                .as_deref()
                .map(crate::parse_stored_uuid)
                .transpose()?,
            failure_reason: row.failure_reason,
            cancellation_reason: row.cancellation_reason,
            initiated_at: DateTime::from_stored(&row.initiated_at)?,
            processing_started_at: optional_time(&row.processing_started_at)?,
            completed_at: optional_time(&row.completed_at)?,
            failed_at: optional_time(&row.failed_at)?,
            cancelled_at: optional_time(&row.cancelled_at)?,
            recorded_on_order_at: optional_time(&row.recorded_on_order_at)?,
            updated_at: DateTime::from_stored(&row.updated_at)?,
        })
    }
}

/// One payment by id.
pub async fn find(pool: &DbPool, id: Uuid) -> ApiResult<Option<Payment>> {
    let sql = format!("{SELECT_PAYMENT} WHERE payment_id = $1");
    let row: Option<PaymentRow> = sqlx::query_as(&sql)
        .bind(id.to_string())
        .fetch_optional(pool)
        .await?;
    row.map(Payment::try_from).transpose()
}

/// The payments of one order, oldest first. An order has few payments, so this is a plain list.
pub async fn of_order(pool: &DbPool, order_id: Uuid) -> ApiResult<Vec<Payment>> {
    let sql =
        format!("{SELECT_PAYMENT} WHERE order_id = $1 ORDER BY initiated_position, payment_id");
    let rows: Vec<PaymentRow> = sqlx::query_as(&sql)
        .bind(order_id.to_string())
        .fetch_all(pool)
        .await?;
    rows.into_iter().map(Payment::try_from).collect()
}

/// Payments matching `filter`, oldest first, one page.
pub async fn search(
    pool: &DbPool,
    filter: &PaymentFilter,
    page: Page<PaymentCursor>,
) -> ApiResult<PaymentConnection> {
    let order_id = filter.order_id.map(|id| id.to_string());
    let customer_id = filter.customer_id.map(|id| id.to_string());
    let status = filter.status.map(PaymentStatus::as_str);
    let method = filter.method.map(PaymentMethod::as_str);
    let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM payments WHERE {FILTER}"))
        .bind(&order_id)
        .bind(&customer_id)
        .bind(status)
        .bind(method)
        .fetch_one(pool)
        .await?;
    let (after_position, after_id) = page
        .after
        .as_ref()
        .map(|cursor| cursor.0.clone())
        .unwrap_or((i64::MIN, String::new()));
    let sql = format!(
        "{SELECT_PAYMENT} WHERE {FILTER} AND (initiated_position, payment_id) > ($5, $6)
          ORDER BY initiated_position, payment_id LIMIT $7"
    );
    let rows: Vec<PaymentRow> = sqlx::query_as(&sql)
        .bind(&order_id)
        .bind(&customer_id)
        .bind(status)
        .bind(method)
        .bind(after_position)
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
        let cursor = OpaqueCursor((row.initiated_position, row.payment_id.clone()));
        connection
            .edges
            .push(Edge::new(cursor, Payment::try_from(row)?));
    }
    Ok(connection)
}

#[derive(sqlx::FromRow)]
struct RefundRow {
    refund_id: String,
    payment_id: String,
    currency: String,
    amount_minor: i64,
    reason: String,
    refunded_at: String,
    recorded_on_order_at: Option<String>,
}

/// The refunds of one payment, oldest first.
pub async fn refunds_of(pool: &DbPool, payment_id: Uuid) -> ApiResult<Vec<Refund>> {
    let rows: Vec<RefundRow> = sqlx::query_as(
        "SELECT refund_id, payment_id, currency, amount_minor, reason, refunded_at, recorded_on_order_at
           FROM payment_refunds WHERE payment_id = $1 ORDER BY refund_position",
    )
    .bind(payment_id.to_string())
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(Refund {
                id: crate::parse_stored_uuid(&row.refund_id)?,
                payment_id: crate::parse_stored_uuid(&row.payment_id)?,
                amount: Money::from_stored(row.amount_minor, &row.currency)?,
                reason: row.reason,
                refunded_at: DateTime::from_stored(&row.refunded_at)?,
                recorded_on_order_at: optional_time(&row.recorded_on_order_at)?,
            })
        })
        .collect()
}

/// Payments: one by id, and a filtered list.
#[derive(Default)]
pub struct PaymentsQuery;

#[async_graphql::Object]
impl PaymentsQuery {
    /// One payment. Unknown ids are a `NOT_FOUND` error.
    async fn payment(
        &self,
        ctx: &Context<'_>,
        id: crate::input::Id,
    ) -> async_graphql::Result<Payment> {
        Ok(find(crate::read_models(ctx)?.pool(), *id)
            .await?
            .filter(|payment| crate::access::can_see_customer(ctx, payment.customer_id))
            .ok_or_else(|| ApiError::not_found("payment", id))?)
    }

    /// Payments, oldest first, filtered by order, customer, status or method.
    async fn payments(
        &self,
        ctx: &Context<'_>,
        filter: Option<PaymentFilter>,
        #[graphql(desc = "Page size, 1 to 200 (default 50).")] first: Option<i32>,
        #[graphql(
            desc = "Continue after this cursor (a `pageInfo.endCursor`). At most 512 characters."
        )]
        after: Option<crate::input::Cursor>,
    ) -> async_graphql::Result<PaymentConnection> {
        let page = Page::new(first, after)?;
        let mut filter = filter.unwrap_or_default();
        let Some(customer) =
            crate::access::customer_filter(ctx, filter.customer_id.map(crate::input::Id::uuid))
        else {
            return Ok(crate::page::empty());
        };
        filter.customer_id = customer.map(crate::input::Id::known).transpose()?;
        Ok(search(crate::read_models(ctx)?.pool(), &filter, page).await?)
    }
}
