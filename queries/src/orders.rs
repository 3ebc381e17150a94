//! Sales orders as the `orders` read model shows them.

use async_graphql::{ComplexObject, Context, Enum, SimpleObject};
use eventstore::DbPool;
use uuid::Uuid;

use crate::customers::Customer;
use crate::scalars::{DateTime, Decimal, Money};
use crate::vehicles::Vehicle;
use crate::{ApiError, ApiResult};

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderStatus {
    Draft,
    Confirmed,
    Paid,
    Completed,
    Cancelled,
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiscountKind {
    Percentage,
    Fixed,
}

/// The discount applied to an order.
#[derive(SimpleObject, Clone, Debug)]
pub struct AppliedDiscount {
    pub kind: DiscountKind,
    /// The percentage, for percentage discounts.
    pub percent: Option<Decimal>,
    /// What the discount takes off the price.
    pub amount: Money,
}

#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Order {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub vehicle_id: Uuid,
    pub status: OrderStatus,
    /// The vehicle's list price when the order was drafted.
    pub price: Money,
    pub discount: Option<AppliedDiscount>,
    /// Price less discount; never below zero.
    pub total: Money,
    /// Payments recorded on the order less refunds recorded; never above the total.
    pub paid_total: Money,
    pub cancellation_reason: Option<String>,
    pub drafted_at: DateTime,
    pub confirmed_at: Option<DateTime>,
    /// When payments covered the total (null again if a refund reopened the balance).
    pub paid_at: Option<DateTime>,
    /// When the customer received the vehicle.
    pub handed_over_at: Option<DateTime>,
    pub cancelled_at: Option<DateTime>,
    pub updated_at: DateTime,
}

#[ComplexObject]
impl Order {
    /// The customer who placed the order.
    async fn customer(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Customer>> {
        Ok(
            crate::customers::find(crate::read_models(ctx)?.pool(), self.customer_id)
                .await?
                .filter(|_| crate::access::can_see_customer(ctx, self.customer_id)),
        )
    }

    /// The vehicle being sold.
    async fn vehicle(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Vehicle>> {
        Ok(crate::vehicles::find(crate::read_models(ctx)?.pool(), self.vehicle_id).await?)
    }

    /// What is still to pay: the total less the paid total.
    async fn balance_due(&self) -> Money {
        Money {
            amount: Decimal(self.total.amount.0 - self.paid_total.amount.0),
            currency: self.total.currency,
        }
    }

    /// Every payment made towards this order, whatever its status, oldest first.
    async fn payments(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<crate::payments::Payment>> {
        let payments = crate::payments::of_order(crate::read_models(ctx)?.pool(), self.id).await?;
        Ok(payments
            .into_iter()
            .filter(|payment| crate::access::can_see_customer(ctx, payment.customer_id))
            .collect())
    }
}

#[derive(sqlx::FromRow)]
struct OrderRow {
    order_id: String,
    customer_id: String,
    vehicle_id: String,
    status: String,
    currency: String,
    price_minor: i64,
    discount_kind: Option<String>,
    discount_percent: Option<String>,
    discount_amount_minor: i64,
    total_minor: i64,
    paid_total_minor: i64,
    cancellation_reason: Option<String>,
    drafted_at: String,
    confirmed_at: Option<String>,
    paid_at: Option<String>,
    handed_over_at: Option<String>,
    cancelled_at: Option<String>,
    updated_at: String,
}

impl TryFrom<OrderRow> for Order {
    type Error = ApiError;

    fn try_from(row: OrderRow) -> ApiResult<Self> {
        let optional_time =
            |text: &Option<String>| text.as_deref().map(DateTime::from_stored).transpose();
        let discount = match row.discount_kind.as_deref() {
            None => None,
            Some(kind) => Some(AppliedDiscount {
                kind: match kind {
                    "PERCENTAGE" => DiscountKind::Percentage,
                    "FIXED" => DiscountKind::Fixed,
                    other => {
                        return Err(ApiError::internal(format!(
                            "stored discount kind {other:?}"
                        )));
                    }
                },
                percent: row
                    .discount_percent
                    .as_deref()
                    .map(|p| p.parse().map(Decimal).map_err(ApiError::internal))
                    .transpose()?,
                amount: Money::from_stored(row.discount_amount_minor, &row.currency)?,
            }),
        };
        Ok(Order {
            id: crate::parse_stored_uuid(&row.order_id)?,
            customer_id: crate::parse_stored_uuid(&row.customer_id)?,
            vehicle_id: crate::parse_stored_uuid(&row.vehicle_id)?,
            status: match row.status.as_str() {
                "DRAFT" => OrderStatus::Draft,
                "CONFIRMED" => OrderStatus::Confirmed,
                "PAID" => OrderStatus::Paid,
                "COMPLETED" => OrderStatus::Completed,
                "CANCELLED" => OrderStatus::Cancelled,
                other => return Err(ApiError::internal(format!("stored order status {other:?}"))),
            },
            price: Money::from_stored(row.price_minor, &row.currency)?,
            discount,
            total: Money::from_stored(row.total_minor, &row.currency)?,
            paid_total: Money::from_stored(row.paid_total_minor, &row.currency)?,
            cancellation_reason: row.cancellation_reason,
            drafted_at: DateTime::from_stored(&row.drafted_at)?,
            confirmed_at: optional_time(&row.confirmed_at)?,
            paid_at: optional_time(&row.paid_at)?,
            handed_over_at: optional_time(&row.handed_over_at)?,
            cancelled_at: optional_time(&row.cancelled_at)?,
            updated_at: DateTime::from_stored(&row.updated_at)?,
        })
    }
}

/// One order by id.
pub async fn find(pool: &DbPool, id: Uuid) -> ApiResult<Option<Order>> {
    let row: Option<OrderRow> = sqlx::query_as(
        "SELECT order_id, customer_id, vehicle_id, status, currency, price_minor, discount_kind, discount_percent,
                discount_amount_minor, total_minor, paid_total_minor, cancellation_reason, drafted_at, confirmed_at,
                paid_at, handed_over_at, cancelled_at, updated_at
           FROM orders WHERE order_id = $1",
    )
    .bind(id.to_string())
    .fetch_optional(pool)
    .await?;
    row.map(Order::try_from).transpose()
}
