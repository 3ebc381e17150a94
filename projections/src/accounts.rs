//! `accounts`: who may sign in, with which roles, and the partner insurers' API keys.
//!
//! Tables `accounts` (one row per account) and `partner_api_keys` (one row per key), see
//! docs/read-models.md. Neither holds a credential: password hashes and key digests stay in the
//! log, where only sign-in reads them (from the aggregate, never from here).

use aggregates::partner_key::PartnerKeyEvent;
use aggregates::user::{Role, UserEvent};
use eventstore::RecordedEvent;
use futures::future::BoxFuture;
use sqlx::AnyConnection;

use crate::runtime::{ProjectionError, Projector};

pub struct Accounts;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS accounts (
        user_id             text    PRIMARY KEY,
        email               text    NOT NULL,
        display_name        text    NOT NULL,
        roles               text    NOT NULL,
        customer_id         text,
        disabled            integer NOT NULL,
        disabled_reason     text,
        locked_until        text,
        created_at          text    NOT NULL,
        password_changed_at text,
        updated_at          text    NOT NULL,
        last_position       integer NOT NULL
    ) STRICT",
    "CREATE TABLE IF NOT EXISTS partner_api_keys (
        key_id        text    PRIMARY KEY,
        insurer       text    NOT NULL,
        label         text    NOT NULL,
        issued_at     text    NOT NULL,
        revoked_at    text,
        revoke_reason text,
        updated_at    text    NOT NULL,
        last_position integer NOT NULL
    ) STRICT",
];

impl Projector for Accounts {
    fn name(&self) -> &'static str {
        "accounts"
    }

    fn version(&self) -> i64 {
        1
    }

    fn tables(&self) -> &'static [&'static str] {
        &["accounts", "partner_api_keys"]
    }

    fn schema(&self) -> &'static [&'static str] {
        SCHEMA
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        // The aggregate types `apply` dispatches on; every other event leaves its tables alone.
        Some(&["User", "PartnerKey"])
    }

    fn apply<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        event: &'a RecordedEvent,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(apply(conn, event))
    }
}

/// The roles as stored: lower-case names, sorted, comma-separated (`finance,sales`).
pub fn roles_text<'a>(roles: impl IntoIterator<Item = &'a Role>) -> String {
    let mut names: Vec<&str> = roles.into_iter().map(|role| role.as_str()).collect();
    names.sort_unstable();
    names.join(",")
}

async fn apply(conn: &mut AnyConnection, event: &RecordedEvent) -> Result<(), ProjectionError> {
    match event.aggregate_type.as_str() {
        "User" => apply_user(conn, event).await,
        "PartnerKey" => apply_partner_key(conn, event).await,
        _ => Ok(()),
    }
}

async fn current_roles(
    conn: &mut AnyConnection,
    event: &RecordedEvent,
) -> Result<Vec<Role>, ProjectionError> {
    let stored: Option<String> =
        sqlx::query_scalar("SELECT roles FROM accounts WHERE user_id = $1")
            .bind(&event.aggregate_id)
            .fetch_optional(&mut *conn)
            .await?;
    let stored =
        stored.ok_or_else(|| crate::inconsistent(event, "no account row to update".into()))?;
    Ok(stored.split(',').filter_map(Role::parse).collect())
}

async fn set_roles(
    conn: &mut AnyConnection,
    event: &RecordedEvent,
    roles: &[Role],
) -> Result<u64, ProjectionError> {
    Ok(sqlx::query(
        "UPDATE accounts SET roles = $1, updated_at = $2, last_position = $3 WHERE user_id = $4",
    )
    .bind(roles_text(roles))
    .bind(crate::rfc3339(event.recorded_at))
    .bind(event.position)
    .bind(&event.aggregate_id)
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

async fn apply_user(
    conn: &mut AnyConnection,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
    let at = crate::rfc3339(event.recorded_at);
    let rows = match event.decode::<UserEvent>()? {
        UserEvent::UserCreated {
            email,
            display_name,
            roles,
            customer_id,
            created_at,
            ..
        } => sqlx::query(
            "INSERT INTO accounts (user_id, email, display_name, roles, customer_id, disabled, created_at,
                                   updated_at, last_position)
             VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8)",
        )
        .bind(&event.aggregate_id)
        .bind(email.as_str())
        .bind(display_name)
        .bind(roles_text(&roles))
        .bind(customer_id.map(|id| id.to_string()))
        .bind(crate::rfc3339(created_at))
        .bind(&at)
        .bind(event.position)
        .execute(&mut *conn)
        .await?
        .rows_affected(),
        UserEvent::UserRoleGranted { role, .. } => {
            let mut roles = current_roles(conn, event).await?;
            roles.push(role);
            set_roles(conn, event, &roles).await?
        }
        UserEvent::UserRoleRevoked { role, .. } => {
            let mut roles = current_roles(conn, event).await?;
            roles.retain(|held| *held != role);
            set_roles(conn, event, &roles).await?
        }
        UserEvent::UserPasswordChanged { changed_at, .. } => sqlx::query(
            "UPDATE accounts SET password_changed_at = $1, updated_at = $2, last_position = $3
              WHERE user_id = $4",
        )
        .bind(crate::rfc3339(changed_at))
        .bind(&at)
        .bind(event.position)
        .bind(&event.aggregate_id)
        .execute(&mut *conn)
        .await?
        .rows_affected(),
        UserEvent::UserDisabled { reason, .. } => sqlx::query(
            "UPDATE accounts SET disabled = 1, disabled_reason = $1, updated_at = $2, last_position = $3
              WHERE user_id = $4",
        )
        .bind(reason)
        .bind(&at)
        .bind(event.position)
        .bind(&event.aggregate_id)
        .execute(&mut *conn)
        .await?
        .rows_affected(),
        UserEvent::UserLockedOut { until, .. } => sqlx::query(
            "UPDATE accounts SET locked_until = $1, updated_at = $2, last_position = $3 WHERE user_id = $4",
        )
        .bind(crate::rfc3339(until))
        .bind(&at)
        .bind(event.position)
        .bind(&event.aggregate_id)
        .execute(&mut *conn)
        .await?
        .rows_affected(),
    };
    crate::expect_one_row(event, rows)
}

async fn apply_partner_key(
    conn: &mut AnyConnection,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
    let at = crate::rfc3339(event.recorded_at);
    let rows = match event.decode::<PartnerKeyEvent>()? {
        PartnerKeyEvent::PartnerKeyIssued {
            insurer,
            label,
            issued_at,
            ..
        } => sqlx::query(
            "INSERT INTO partner_api_keys (key_id, insurer, label, issued_at, updated_at, last_position)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&event.aggregate_id)
        .bind(insurer)
        .bind(label)
        .bind(crate::rfc3339(issued_at))
        .bind(&at)
        .bind(event.position)
        .execute(&mut *conn)
        .await?
        .rows_affected(),
        PartnerKeyEvent::PartnerKeyRevoked { reason, revoked_at } => sqlx::query(
            "UPDATE partner_api_keys SET revoked_at = $1, revoke_reason = $2, updated_at = $3,
                    last_position = $4
              WHERE key_id = $5",
        )
        .bind(crate::rfc3339(revoked_at))
        .bind(reason)
        .bind(&at)
        .bind(event.position)
        .bind(&event.aggregate_id)
        .execute(&mut *conn)
        .await?
        .rows_affected(),
    };
    crate::expect_one_row(event, rows)
}
