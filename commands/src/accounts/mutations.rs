//! GraphQL mutations for signing in and for accounts and partner keys. Passwords and tokens are
//! never logged, never echoed in errors, and never part of an idempotency fingerprint (these
//! mutations take no idempotency key: creating an account twice is refused by its email, and the
//! rest are safe to repeat or answer a typed error).

use std::collections::BTreeSet;

use aggregates::contact::Email;
use async_graphql::{Context, InputObject, Object, SimpleObject};
use queries::accounts::{Account, PartnerApiKey};
use queries::input::{
    DisplayName, EmailText, Id, InsurerId, KeyLabel, PasswordText, Reason, RefreshToken,
};
use queries::scalars::{DateTime, Position};
use queries::{ApiError, ApiResult};
use uuid::Uuid;

use super::passwords::Password;
use super::{Accounts, NewAccount, TokenPair};
use crate::context::ClientAddress;
use crate::mutations::{caller, service, settle, to_api, validation};
use crate::sender::Written;

fn accounts<'a>(ctx: &Context<'a>) -> ApiResult<&'a Accounts> {
    service(ctx)
}

/// A new access token and refresh token. Send the access token as `Authorization: Bearer …`;
/// trade the refresh token (once) for a new pair with `refreshSession` before `expiresAt`.
#[derive(SimpleObject)]
pub struct Tokens {
    pub access_token: String,
    /// Single use: `refreshSession` spends it and answers a new one.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// When the access token expires.
    pub expires_at: DateTime,
}

impl From<TokenPair> for Tokens {
    fn from(pair: TokenPair) -> Self {
        Self {
            access_token: pair.access_token,
            refresh_token: pair.refresh_token,
            token_type: "Bearer".into(),
            expires_at: DateTime(pair.expires_at),
        }
    }
}

#[derive(InputObject)]
pub struct CreateAccountInput {
    /// The sign-in name. At most 254 characters.
    pub email: EmailText,
    /// At most 200 characters.
    pub display_name: DisplayName,
    pub roles: Vec<queries::access::Role>,
    /// Required with the role `CLIENT` (and only then): the customer the account belongs to.
    pub customer_id: Option<Id>,
    /// The first password, 12 to 128 characters; the holder changes it with `changePassword`.
    /// At most 128 characters.
    pub password: PasswordText,
}

/// Never prints the password.
impl std::fmt::Debug for CreateAccountInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateAccountInput")
            .field("email", &self.email)
            .field("roles", &self.roles)
            .field("customer_id", &self.customer_id)
            .finish_non_exhaustive()
    }
}

#[derive(SimpleObject)]
pub struct AccountPayload {
    /// The account as the read model now shows it.
    pub account: Option<Account>,
    pub position: Position,
}

#[derive(SimpleObject)]
pub struct PartnerApiKeyPayload {
    /// The key itself, shown this once and never again: send it as `Authorization: ApiKey …`.
    pub key: Option<String>,
    pub partner_api_key: Option<PartnerApiKey>,
    pub position: Position,
}

#[derive(SimpleObject)]
pub struct LogoutPayload {
    /// True: the session's access and refresh tokens no longer work.
    pub logged_out: bool,
}

fn account_role(role: queries::access::Role) -> ApiResult<aggregates::user::Role> {
    role.account_role()
        .ok_or_else(|| ApiError::validation("PARTNER is not an account role: issue an API key"))
}

async fn account_payload(ctx: &Context<'_>, written: Written) -> ApiResult<AccountPayload> {
    settle(ctx, &written).await?;
    Ok(AccountPayload {
        account: queries::accounts::find(queries::read_models(ctx)?.pool(), written.id).await?,
        position: Position(written.position),
    })
}

/// The account id of a caller signed in with a token of this ledger.
fn own_account(ctx: &Context<'_>) -> ApiResult<Uuid> {
    match &queries::access::identity(ctx).principal {
        queries::access::Principal::Account { user_id, .. } => Ok(*user_id),
        queries::access::Principal::Anonymous => Err(ApiError::new(
            queries::codes::UNAUTHENTICATED,
            "not signed in",
        )),
        _ => Err(ApiError::validation(
            "only an account of this ledger has a password here",
        )),
    }
}

/// Signing in, and accounts and partner keys.
#[derive(Default)]
pub struct AccountsMutation;

#[Object]
impl AccountsMutation {
    /// Signs in. Wrong email or password: `INVALID_CREDENTIALS` (the answer never says which);
    /// too many failures: `ACCOUNT_LOCKED`; too many attempts from one address: `TOO_MANY_REQUESTS`.
    async fn login(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The account's email. At most 254 characters.")] email: EmailText,
        #[graphql(desc = "At most 128 characters.")] password: PasswordText,
    ) -> async_graphql::Result<Tokens> {
        let address = ctx
            .data_opt::<ClientAddress>()
            .map(|address| address.0)
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        let pair = accounts(ctx)?
            .login(&email, Password::new(password.into_string()), address)
            .await
            .map_err(to_api)?;
        Ok(pair.into())
    }

    /// Trades a refresh token for a new pair; the old one is spent. A spent token presented again
    /// ends its whole session (`UNAUTHENTICATED`).
    async fn refresh_session(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The refresh token of the last pair. At most 512 characters.")]
        refresh_token: RefreshToken,
    ) -> async_graphql::Result<Tokens> {
        let pair = accounts(ctx)?
            .refresh(&refresh_token)
            .await
            .map_err(to_api)?;
        Ok(pair.into())
    }

    /// Ends the caller's session on every server.
    async fn logout(&self, ctx: &Context<'_>) -> async_graphql::Result<LogoutPayload> {
        let identity = queries::access::identity(ctx);
        accounts(ctx)?.logout(&identity).await.map_err(to_api)?;
        Ok(LogoutPayload { logged_out: true })
    }

    /// Changes the caller's own password. Every session of the account ends: sign in again.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "At most 128 characters.")] current_password: PasswordText,
        #[graphql(desc = "12 to 128 characters. At most 128 characters.")]
        new_password: PasswordText,
    ) -> async_graphql::Result<AccountPayload> {
        let id = own_account(ctx)?;
        let written = accounts(ctx)?
            .change_password(
                &caller(ctx),
                id,
                Password::new(current_password.into_string()),
                Password::new(new_password.into_string()),
            )
            .await
            .map_err(to_api)?;
        Ok(account_payload(ctx, written).await?)
    }

    /// Creates an account: staff roles, or `CLIENT` linked to a customer.
    async fn create_account(
        &self,
        ctx: &Context<'_>,
        input: CreateAccountInput,
    ) -> async_graphql::Result<AccountPayload> {
        let roles = input
            .roles
            .iter()
            .map(|role| account_role(*role))
            .collect::<ApiResult<BTreeSet<_>>>()?;
        let account = NewAccount {
            email: Email::parse(&input.email).map_err(validation)?,
            display_name: input.display_name.into(),
            roles,
            customer_id: input.customer_id.map(Id::uuid),
            password: Password::new(input.password.into_string()),
        };
        let written = accounts(ctx)?
            .create(&caller(ctx), account)
            .await
            .map_err(to_api)?;
        Ok(account_payload(ctx, written).await?)
    }

    /// Grants a role. The account's sessions end (their tokens carry its old roles).
    async fn grant_role(
        &self,
        ctx: &Context<'_>,
        account_id: Id,
        role: queries::access::Role,
    ) -> async_graphql::Result<AccountPayload> {
        let account_id = account_id.uuid();
        let written = accounts(ctx)?
            .grant_role(&caller(ctx), account_id, account_role(role)?)
            .await
            .map_err(to_api)?;
        Ok(account_payload(ctx, written).await?)
    }

    /// Revokes a role. The account's sessions end at once.
    async fn revoke_role(
        &self,
        ctx: &Context<'_>,
        account_id: Id,
        role: queries::access::Role,
    ) -> async_graphql::Result<AccountPayload> {
        let account_id = account_id.uuid();
        let written = accounts(ctx)?
            .revoke_role(&caller(ctx), account_id, account_role(role)?)
            .await
            .map_err(to_api)?;
        Ok(account_payload(ctx, written).await?)
    }

    /// Disables an account for good: it cannot sign in, its sessions end at once; its history stays.
    async fn disable_account(
        &self,
        ctx: &Context<'_>,
        account_id: Id,
        #[graphql(
            desc = "Why, in words people will read in the log. At most 1000 characters; may span lines."
        )]
        reason: Reason,
    ) -> async_graphql::Result<AccountPayload> {
        let (account_id, reason) = (account_id.uuid(), String::from(reason));
        let written = accounts(ctx)?
            .disable(&caller(ctx), account_id, reason)
            .await
            .map_err(to_api)?;
        Ok(account_payload(ctx, written).await?)
    }

    /// Sets a new password for an account whose holder lost theirs. Its sessions end.
    async fn set_account_password(
        &self,
        ctx: &Context<'_>,
        account_id: Id,
        #[graphql(desc = "12 to 128 characters. At most 128 characters.")] password: PasswordText,
    ) -> async_graphql::Result<AccountPayload> {
        let written = accounts(ctx)?
            .set_password(
                &caller(ctx),
                *account_id,
                Password::new(password.into_string()),
            )
            .await
            .map_err(to_api)?;
        Ok(account_payload(ctx, written).await?)
    }

    /// Issues an API key with which one partner insurer reads its own policies, claims and
    /// commission settlement. The key is in this answer only.
    async fn issue_partner_api_key(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The insurer's id, e.g. SEVER. At most 32 characters.")]
        insurer: InsurerId,
        #[graphql(desc = "What the key is for. At most 200 characters.")] label: KeyLabel,
    ) -> async_graphql::Result<PartnerApiKeyPayload> {
        let label = String::from(label);
        let (written, key) = accounts(ctx)?
            .issue_partner_key(&caller(ctx), &insurer, label)
            .await
            .map_err(to_api)?;
        settle(ctx, &written).await?;
        let listed = queries::accounts::partner_keys(queries::read_models(ctx)?.pool()).await?;
        Ok(PartnerApiKeyPayload {
            key: Some(key),
            partner_api_key: listed.into_iter().find(|k| k.id == written.id),
            position: Position(written.position),
        })
    }

    /// Revokes a partner API key at once.
    async fn revoke_partner_api_key(
        &self,
        ctx: &Context<'_>,
        id: Id,
        #[graphql(
            desc = "Why, in words people will read in the log. At most 1000 characters; may span lines."
        )]
        reason: Reason,
    ) -> async_graphql::Result<PartnerApiKeyPayload> {
        let (id, reason) = (id.uuid(), String::from(reason));
        let written = accounts(ctx)?
            .revoke_partner_key(&caller(ctx), id, reason)
            .await
            .map_err(to_api)?;
        settle(ctx, &written).await?;
        let listed = queries::accounts::partner_keys(queries::read_models(ctx)?.pool()).await?;
        Ok(PartnerApiKeyPayload {
            key: None,
            partner_api_key: listed.into_iter().find(|k| k.id == written.id),
            position: Position(written.position),
        })
    }
}
