//! Accounts as the `accounts` read model shows them, the caller's own identity (`me`), and the
//! partner insurers' API keys. No credential is ever shown: the read model holds none.

use async_graphql::connection::{Connection, Edge, EmptyFields, OpaqueCursor};
use async_graphql::{Context, Object, SimpleObject};
use eventstore::DbPool;
use uuid::Uuid;

use crate::access::{Principal, Role};
use crate::page::{Page, TotalCount};
use crate::scalars::DateTime;
use crate::{ApiError, ApiResult, read_models};

/// An account that signs in.
#[derive(SimpleObject, Clone, Debug)]
pub struct Account {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub roles: Vec<Role>,
    /// The customer a `CLIENT` account belongs to.
    pub customer_id: Option<Uuid>,
    pub disabled: bool,
    pub disabled_reason: Option<String>,
    /// Sign-ins are refused until then after too many failed attempts.
    pub locked_until: Option<DateTime>,
    pub created_at: DateTime,
    pub password_changed_at: Option<DateTime>,
    pub updated_at: DateTime,
}

/// A partner insurer's API key (the key itself was shown once, when issued).
#[derive(SimpleObject, Clone, Debug)]
pub struct PartnerApiKey {
    pub id: Uuid,
    pub insurer: String,
    pub label: String,
    pub issued_at: DateTime,
    pub revoked_at: Option<DateTime>,
    pub revoke_reason: Option<String>,
}

/// Who the caller is, as the server verified it.
#[derive(SimpleObject, Clone, Debug)]
pub struct Me {
    /// What event metadata records as the actor of this caller's commands.
    pub actor_id: String,
    pub roles: Vec<Role>,
    /// `ACCOUNT` (a token this ledger issued), `EXTERNAL` (the operator's identity provider) or
    /// `PARTNER` (an API key).
    pub kind: String,
    /// The account, for `ACCOUNT`.
    pub account: Option<Account>,
    /// The customer whose records a client sees.
    pub customer_id: Option<Uuid>,
    /// The insurer whose records a partner sees.
    pub insurer: Option<String>,
}

#[derive(sqlx::FromRow)]
struct AccountRow {
    user_id: String,
    email: String,
    display_name: String,
    roles: String,
    customer_id: Option<String>,
    disabled: i64,
    disabled_reason: Option<String>,
    locked_until: Option<String>,
    created_at: String,
    password_changed_at: Option<String>,
    updated_at: String,
}

const SELECT_ACCOUNT: &str = "SELECT user_id, email, display_name, roles, customer_id, disabled,
        disabled_reason, locked_until, created_at, password_changed_at, updated_at FROM accounts";

impl TryFrom<AccountRow> for Account {
    type Error = ApiError;

    fn try_from(row: AccountRow) -> ApiResult<Self> {
        let optional_time =
            |text: &Option<String>| text.as_deref().map(DateTime::from_stored).transpose();
        Ok(Account {
            id: crate::parse_stored_uuid(&row.user_id)?,
            email: row.email,
            display_name: row.display_name,
            roles: row
                .roles
                .split(',')
                .filter(|name| !name.is_empty())
                .map(|name| {
                    aggregates::user::Role::parse(name)
                        .map(Role::from)
                        .ok_or_else(|| ApiError::internal(format!("stored role {name:?}")))
                })
                .collect::<ApiResult<_>>()?,
            customer_id: row
                .customer_id
                .as_deref()
                .map(crate::parse_stored_uuid)
                .transpose()?,
            disabled: row.disabled != 0,
            disabled_reason: row.disabled_reason,
            locked_until: optional_time(&row.locked_until)?,
            created_at: DateTime::from_stored(&row.created_at)?,
            password_changed_at: optional_time(&row.password_changed_at)?,
            updated_at: DateTime::from_stored(&row.updated_at)?,
        })
    }
}

/// One account by id.
pub async fn find(pool: &DbPool, id: Uuid) -> ApiResult<Option<Account>> {
    let row: Option<AccountRow> = sqlx::query_as(&format!("{SELECT_ACCOUNT} WHERE user_id = $1"))
        .bind(id.to_string())
        .fetch_optional(pool)
        .await?;
    row.map(Account::try_from).transpose()
}

pub type AccountCursor = OpaqueCursor<(String, String)>;

/// Accounts, oldest first.
pub async fn list(
    pool: &DbPool,
    page: Page<AccountCursor>,
) -> ApiResult<Connection<AccountCursor, Account, TotalCount, EmptyFields>> {
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM accounts")
        .fetch_one(pool)
        .await?;
    let (after_created, after_id) = page
        .after
        .as_ref()
        .map(|cursor| cursor.0.clone())
        .unwrap_or_default();
    let rows: Vec<AccountRow> = sqlx::query_as(&format!(
        "{SELECT_ACCOUNT} WHERE (created_at, user_id) > ($1, $2)
          ORDER BY created_at, user_id LIMIT $3"
    ))
    .bind(after_created)
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
        let cursor = OpaqueCursor((row.created_at.clone(), row.user_id.clone()));
        connection
            .edges
            .push(Edge::new(cursor, Account::try_from(row)?));
    }
    Ok(connection)
}

/// Every partner key ever issued, oldest first (a handful per insurer).
pub async fn partner_keys(pool: &DbPool) -> ApiResult<Vec<PartnerApiKey>> {
    type Row = (
        String,
        String,
        String,
        String,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT key_id, insurer, label, issued_at, revoked_at, revoke_reason
           FROM partner_api_keys ORDER BY issued_at, key_id LIMIT 1000",
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(
            |(id, insurer, label, issued_at, revoked_at, revoke_reason)| {
                Ok(PartnerApiKey {
                    id: crate::parse_stored_uuid(&id)?,
                    insurer,
                    label,
                    issued_at: DateTime::from_stored(&issued_at)?,
                    revoked_at: revoked_at
                        .as_deref()
                        .map(DateTime::from_stored)
                        .transpose()?,
                    revoke_reason,
                })
            },
        )
        .collect()
}

/// The caller's identity, accounts and partner keys.
#[derive(Default)]
pub struct AccountsQuery;

#[Object]
impl AccountsQuery {
    /// Who the server takes the caller to be.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<Me> {
        let identity = crate::access::identity(ctx);
        let roles = identity.roles.iter().copied().collect();
        let me = match &identity.principal {
            Principal::Anonymous => {
                return Err(ApiError::new(crate::codes::UNAUTHENTICATED, "not signed in").into());
            }
            Principal::Account {
                user_id,
                customer_id,
                ..
            } => Me {
                actor_id: identity.actor_id(),
                roles,
                kind: "ACCOUNT".into(),
                account: find(read_models(ctx)?.pool(), *user_id).await?,
                customer_id: *customer_id,
                insurer: None,
            },
            Principal::External { .. } => Me {
                actor_id: identity.actor_id(),
                roles,
                kind: "EXTERNAL".into(),
                account: None,
                customer_id: None,
                insurer: None,
            },
            Principal::Partner { insurer, .. } => Me {
                actor_id: identity.actor_id(),
                roles,
                kind: "PARTNER".into(),
                account: None,
                customer_id: None,
                insurer: Some(insurer.clone()),
            },
        };
        Ok(me)
    }

    /// Every account, oldest first.
    async fn accounts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 200 (default 50).")] first: Option<i32>,
        #[graphql(
            desc = "Continue after this cursor (a `pageInfo.endCursor`). At most 512 characters."
        )]
        after: Option<crate::input::Cursor>,
    ) -> async_graphql::Result<Connection<AccountCursor, Account, TotalCount, EmptyFields>> {
        let page = Page::new(first, after)?;
        Ok(list(read_models(ctx)?.pool(), page).await?)
    }

    /// One account. Unknown ids are a `NOT_FOUND` error.
    async fn account(
        &self,
        ctx: &Context<'_>,
        id: crate::input::Id,
    ) -> async_graphql::Result<Account> {
        Ok(find(read_models(ctx)?.pool(), *id)
            .await?
            .ok_or_else(|| ApiError::not_found("account", id))?)
    }

    /// Every partner insurer's API key, live or revoked (never the key itself).
    async fn partner_api_keys(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<PartnerApiKey>> {
        Ok(partner_keys(read_models(ctx)?.pool()).await?)
    }
}
