//! Customers as the `customers` read model shows them. Name, email, phone and address are personal
//! data: callers who see it masked (analysts) get `***` instead (see [`crate::access`]).

use async_graphql::{ComplexObject, Context, SimpleObject};
use eventstore::DbPool;
use uuid::Uuid;

use crate::customer_history::{CustomerSummary, HistoryConnection};
use crate::page::Page;
use crate::scalars::{Date, DateTime};
use crate::{ApiError, ApiResult};

#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Customer {
    pub id: Uuid,
    #[graphql(skip)]
    pub full_name: String,
    #[graphql(skip)]
    pub email: String,
    #[graphql(skip)]
    pub phone: String,
    #[graphql(skip)]
    pub address: String,
    pub registered_at: DateTime,
    pub updated_at: DateTime,
}

#[ComplexObject]
impl Customer {
    /// Personal data (masked for analysts).
    async fn full_name(&self, ctx: &Context<'_>) -> String {
        crate::access::personal(ctx, &self.full_name)
    }

    /// Personal data (masked for analysts).
    async fn email(&self, ctx: &Context<'_>) -> String {
        crate::access::personal(ctx, &self.email)
    }

    /// E.164, e.g. `+79161234567`. Personal data (masked for analysts).
    async fn phone(&self, ctx: &Context<'_>) -> String {
        crate::access::personal(ctx, &self.phone)
    }

    /// Personal data (masked for analysts).
    async fn address(&self, ctx: &Context<'_>) -> String {
        crate::access::personal(ctx, &self.address)
    }

    /// Everything that happened to this customer, in global order (see `customerHistory`).
    async fn history(
        &self,
        ctx: &Context<'_>,
        from: Option<Date>,
        to: Option<Date>,
        #[graphql(desc = "Page size, 1 to 200 (default 50).")] first: Option<i32>,
        #[graphql(
            desc = "Continue after this cursor (a `pageInfo.endCursor`). At most 512 characters."
        )]
        after: Option<crate::input::Cursor>,
    ) -> async_graphql::Result<HistoryConnection> {
        let page = Page::new(first, after)?;
        if crate::access::masks_personal_data(ctx) {
            // Its lines for people name the customer: not for callers who see personal data masked.
            return Err(ApiError::new(
                crate::codes::FORBIDDEN,
                "a customer's history is not shown with personal data masked",
            )
            .into());
        }
        let pool = crate::read_models(ctx)?.pool();
        Ok(crate::customer_history::history(pool, self.id, from, to, page).await?)
    }

    /// This customer at a glance (see `customerSummary`).
    async fn summary(&self, ctx: &Context<'_>) -> async_graphql::Result<CustomerSummary> {
        let pool = crate::read_models(ctx)?.pool();
        Ok(crate::customer_history::summary(pool, self.id).await?)
    }
}

#[derive(sqlx::FromRow)]
struct CustomerRow {
    customer_id: String,
    full_name: String,
    email: String,
    phone: String,
    address: String,
    registered_at: String,
    updated_at: String,
}

impl TryFrom<CustomerRow> for Customer {
    type Error = ApiError;

    fn try_from(row: CustomerRow) -> ApiResult<Self> {
        Ok(Customer {
            id: crate::parse_stored_uuid(&row.customer_id)?,
            full_name: row.full_name,
            email: row.email,
            phone: row.phone,
            address: row.address,
            registered_at: DateTime::from_stored(&row.registered_at)?,
            updated_at: DateTime::from_stored(&row.updated_at)?,
        })
    }
}

/// One customer by id.
pub async fn find(pool: &DbPool, id: Uuid) -> ApiResult<Option<Customer>> {
    let row: Option<CustomerRow> = sqlx::query_as(
        "SELECT customer_id, full_name, email, phone, address, registered_at, updated_at
           FROM customers WHERE customer_id = $1",
    )
    .bind(id.to_string())
    .fetch_optional(pool)
    .await?;
    row.map(Customer::try_from).transpose()
}
