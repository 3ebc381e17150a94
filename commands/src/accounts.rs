//! Accounts and sign-in: creating accounts and changing their powers (events in the log), signing
//! in with a password, refreshing and ending sessions, partner API keys, and turning a request's
//! credentials into a verified [`Identity`].
//!
//! # Layout
//! - [`passwords`]: the password policy and argon2id hashing on the blocking pool.
//! - [`tokens`]: access tokens (EdDSA JWTs) issued and verified with the token key file.
//! - [`sessions`]: sign-in sessions and single-use rotating refresh tokens (tables, not events).
//! - [`limits`]: sign-in attempts per client address and failures per account (`governor`).
//! - [`oidc`]: tokens of an external OpenID Connect provider, verified against its JWKS.
//! - [`mutations`]: the GraphQL mutations.
//!
//! Credentials a request may carry (`Authorization` header):
//! - `Bearer <access token>` from `login`/`refreshSession` (or from the operator's OIDC provider,
//!   when configured: a token whose key id is not this server's goes to the provider's keys);
//! - `ApiKey <key>`: a partner insurer's API key.
//!
//! Nothing else (no `X-Actor-*` header) says who the caller is.

pub mod limits;
pub mod mutations;
pub mod oidc;
pub mod passwords;
pub mod sessions;
pub mod tokens;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use aggregates::contact::Email;
use aggregates::customer::Customer;
use aggregates::partner_key::{PartnerKey, PartnerKeyCommand};
use aggregates::user::{Role, User, UserCommand, account_id};
use chrono::{DateTime, Utc};
use eventstore::{Cqrs, Database, Store, Upcasters};
use queries::access::{Identity, Principal};
use uuid::Uuid;

use crate::clock::Clock;
use crate::context::RequestContext;
use crate::error::CommandError;
use crate::sender::{Call, Sender, Written};
use limits::LoginLimits;
use oidc::OidcVerifier;
use passwords::{Password, Passwords};
use sessions::{Rotation, Sessions};
use tokens::{TokenError, TokenKeys};

/// The longest `Authorization` header value looked at.
pub const MAX_CREDENTIAL_BYTES: usize = 8 * 1024;
/// Namespace of a partner key's id (UUIDv5 of the key's digest).
const PARTNER_KEY_NAMESPACE: Uuid = Uuid::from_u128(0x3d4f_0a61_c2b8_4e07_9a15_68e2_f0b3_7c24);

/// How sign-in behaves.
#[derive(Clone, Debug)]
pub struct AccountSettings {
    /// How long a sign-in session (and so its refresh tokens) lasts at most.
    pub session_ttl: Duration,
    /// Sign-in attempts one client address may make per minute.
    pub login_attempts_per_address_per_minute: u32,
}

impl Default for AccountSettings {
    fn default() -> Self {
        Self {
            session_ttl: Duration::from_secs(12 * 3600),
            login_attempts_per_address_per_minute: 10,
        }
    }
}

/// What a sign-in or refresh hands out. `Debug` never shows the tokens.
#[derive(Clone)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    /// When the access token expires.
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenPair")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A new account as requested.
#[derive(Clone, Debug)]
pub struct NewAccount {
    pub email: Email,
    pub display_name: String,
    pub roles: BTreeSet<Role>,
    pub customer_id: Option<Uuid>,
    pub password: Password,
}

/// Accounts, sessions and credentials.
pub struct Accounts {
    sender: Sender,
    users: Cqrs<User>,
    user_store: Store<User>,
    partner_keys: Cqrs<PartnerKey>,
    partner_key_store: Store<PartnerKey>,
    customer_store: Store<Customer>,
    sessions: Sessions,
    passwords: Passwords,
    tokens: Arc<TokenKeys>,
    oidc: Option<Arc<OidcVerifier>>,
    limits: LoginLimits,
    settings: AccountSettings,
    clock: Arc<dyn Clock>,
}

impl Accounts {
    pub fn new(
        db: Database,
        upcasters: Upcasters,
        clock: Arc<dyn Clock>,
        tokens: Arc<TokenKeys>,
        oidc: Option<Arc<OidcVerifier>>,
        settings: AccountSettings,
    ) -> Self {
        Self {
            sender: Sender::new(&db, &upcasters),
            users: db.framework(&upcasters, ()),
            user_store: db.store(&upcasters),
            partner_keys: db.framework(&upcasters, ()),
            partner_key_store: db.store(&upcasters),
            customer_store: db.store(&upcasters),
            sessions: Sessions::new(db),
            passwords: Passwords::new(),
            tokens,
            oidc,
            limits: LoginLimits::new(settings.login_attempts_per_address_per_minute),
            settings,
            clock,
        }
    }

    /// Creates the session tables (idempotent).
    pub async fn install(db: &Database) -> Result<(), CommandError> {
        sessions::install(db).await
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn passwords(&self) -> &Passwords {
        &self.passwords
    }

    /// Current state of an account (write model).
    pub async fn user(&self, id: Uuid) -> Result<User, CommandError> {
        self.sender.load(&self.user_store, id).await
    }

    /// Whether any account was ever created (the log holds a `User` event).
    pub async fn any_account(&self) -> Result<bool, CommandError> {
        let count: i64 =
            sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = $1")
                .bind(<User as cqrs_es::Aggregate>::TYPE)
                .fetch_one(self.sender.db().pool())
                .await?;
        Ok(count > 0)
    }

    // ----- accounts (events) -----

    /// Creates an account. Its id is [`account_id`] of the email, so a second account for the same
    /// email is refused (`ACCOUNT_ALREADY_EXISTS`), even under a race. A client account's customer
    /// must exist.
    pub async fn create(
        &self,
        ctx: &RequestContext,
        account: NewAccount,
    ) -> Result<Written, CommandError> {
        account.password.check_new(account.email.as_str())?;
        if let Some(customer) = account.customer_id
            && !self
                .sender
                .load(&self.customer_store, customer)
                .await?
                .is_registered()
        {
            return Err(CommandError::NotFound {
                what: "customer",
                id: customer.to_string(),
            });
        }
        let id = account_id(&account.email);
        if self.user(id).await?.exists() {
            return Err(aggregates::user::UserError::AlreadyExists.into());
        }
        let password_hash = self.passwords.hash(&account.password).await?;
        self.sender
            .execute(
                &self.users,
                id,
                UserCommand::Create {
                    email: account.email,
                    display_name: account.display_name,
                    roles: account.roles,
                    customer_id: account.customer_id,
                    password_hash,
                    created_at: self.now(),
                },
                Call::new(ctx, "CreateAccount", None),
            )
            .await
    }

    /// Creates the first admin from `email:password` (`AUTOSALON_BOOTSTRAP_ADMIN`) while the store
    /// has no account at all; does nothing once any account exists. Returns the id it created.
    pub async fn bootstrap_admin(&self, spec: &str) -> Result<Option<Uuid>, CommandError> {
        let (email, password) = spec.split_once(':').ok_or_else(|| {
            CommandError::Validation("AUTOSALON_BOOTSTRAP_ADMIN must be email:password".into())
        })?;
        if self.any_account().await? {
            return Ok(None);
        }
        let email = Email::parse(email).map_err(|err| CommandError::Validation(err.to_string()))?;
        let ctx = RequestContext::system("bootstrap");
        let created = self
            .create(
                &ctx,
                NewAccount {
                    display_name: "Administrator".into(),
                    email,
                    roles: BTreeSet::from([Role::Admin]),
                    customer_id: None,
                    password: Password::new(password),
                },
            )
            .await;
        match created {
            Ok(written) => Ok(Some(written.id)),
            // Another server starting at the same moment created it first.
            Err(CommandError::User(aggregates::user::UserError::AlreadyExists)) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// Sends an account command that changes powers or credentials, ending the account's sessions
    /// before and after it: their tokens carry the old roles, so they must not outlive the change.
    /// (Revoking first means a failed append costs only a fresh sign-in, never a session with
    /// stale powers; revoking after catches a sign-in that raced the change, see `login`.)
    async fn change(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        command: UserCommand,
        name: &'static str,
        reason: &str,
    ) -> Result<Written, CommandError> {
        if !self.user(id).await?.exists() {
            return Err(aggregates::user::UserError::NotFound.into());
        }
        self.sessions.revoke_all_of(id, reason, self.now()).await?;
        let written = self
            .sender
            .execute(&self.users, id, command, Call::new(ctx, name, None))
            .await?;
        // Again after the append: a sign-in that read the old account before it, and opened its
        // session after the first revocation, must not keep the old powers.
        self.sessions.revoke_all_of(id, reason, self.now()).await?;
        Ok(written)
    }

    pub async fn grant_role(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        role: Role,
    ) -> Result<Written, CommandError> {
        let command = UserCommand::GrantRole {
            role,
            at: self.now(),
        };
        self.change(ctx, id, command, "GrantRole", "a role was granted")
            .await
    }

    pub async fn revoke_role(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        role: Role,
    ) -> Result<Written, CommandError> {
        let command = UserCommand::RevokeRole {
            role,
            at: self.now(),
        };
        self.change(ctx, id, command, "RevokeRole", "a role was revoked")
            .await
    }

    pub async fn disable(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        reason: String,
    ) -> Result<Written, CommandError> {
        let command = UserCommand::Disable {
            reason,
            at: self.now(),
        };
        self.change(
            ctx,
            id,
            command,
            "DisableAccount",
            "the account was disabled",
        )
        .await
    }

    /// An admin sets a new password (the holder forgot theirs).
    pub async fn set_password(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        password: Password,
    ) -> Result<Written, CommandError> {
        let user = self.user(id).await?;
        let email = user.email().ok_or(aggregates::user::UserError::NotFound)?;
        password.check_new(email.as_str())?;
        let command = UserCommand::ChangePassword {
            password_hash: self.passwords.hash(&password).await?,
            by_holder: false,
            at: self.now(),
        };
        self.change(
            ctx,
            id,
            command,
            "SetAccountPassword",
            "the password was changed",
        )
        .await
    }

    /// The holder changes their own password, proving the current one.
    pub async fn change_password(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        current: Password,
        new: Password,
    ) -> Result<Written, CommandError> {
        let user = self.user(id).await?;
        let (Some(email), Some(hash)) = (user.email(), user.password_hash()) else {
            return Err(aggregates::user::UserError::NotFound.into());
        };
        // The current password is guessed against the same allowance and lock-out as sign-in:
        // a stolen access token must not become an unlimited password oracle.
        let now = self.now();
        if let Some(until) = user.locked_until().filter(|_| user.is_locked_at(now)) {
            return Err(CommandError::AccountLocked {
                until: projections::rfc3339(until),
            });
        }
        if !self.passwords.verify(&current, hash).await? {
            return Err(self.failed_password(email, &user, None, now).await?);
        }
        new.check_new(email.as_str())?;
        let command = UserCommand::ChangePassword {
            password_hash: self.passwords.hash(&new).await?,
            by_holder: true,
            at: self.now(),
        };
        self.change(
            ctx,
            id,
            command,
            "ChangePassword",
            "the password was changed",
        )
        .await
    }

    // ----- partner keys -----

    /// Issues an API key for one partner insurer. Returns where it landed and the key, which is
    /// shown this once: only its digest is kept.
    pub async fn issue_partner_key(
        &self,
        ctx: &RequestContext,
        insurer: &str,
        label: String,
    ) -> Result<(Written, String), CommandError> {
        let insurer = insurer.trim().to_uppercase();
        if !aggregates::policy::tariffs::PARTNERS
            .iter()
            .any(|tariff| tariff.id == insurer)
        {
            return Err(CommandError::Validation(format!(
                "{insurer:?} is not a partner insurer"
            )));
        }
        let key = format!("aspk_{}", &sessions::new_refresh_token()["asr_".len()..]);
        let digest = sessions::digest(&key);
        let id = partner_key_id(&digest);
        let written = self
            .sender
            .execute(
                &self.partner_keys,
                id,
                PartnerKeyCommand::Issue {
                    insurer,
                    label,
                    key_digest: digest,
                    issued_at: self.now(),
                },
                Call::new(ctx, "IssuePartnerApiKey", None),
            )
            .await?;
        Ok((written, key))
    }

    pub async fn revoke_partner_key(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        reason: String,
    ) -> Result<Written, CommandError> {
        self.sender
            .execute(
                &self.partner_keys,
                id,
                PartnerKeyCommand::Revoke {
                    reason,
                    at: self.now(),
                },
                Call::new(ctx, "RevokePartnerApiKey", None),
            )
            .await
    }

    // ----- sign-in -----

    /// Signs in with email and password from `address`: limits, lock-outs, then a new session.
    pub async fn login(
        &self,
        email: &str,
        password: Password,
        address: IpAddr,
    ) -> Result<TokenPair, CommandError> {
        if !self.limits.attempt_from(address) {
            return Err(CommandError::TooManyRequests);
        }
        if password.expose().chars().count() > passwords::MAX_PASSWORD_CHARS || email.len() > 320 {
            return Err(CommandError::InvalidCredentials);
        }
        let now = self.now();
        let Ok(parsed) = Email::parse(email) else {
            self.passwords.verify_decoy(&password).await?;
            return Err(CommandError::InvalidCredentials);
        };
        let id = account_id(&parsed);
        let user = self.user(id).await?;
        // A locked account and a locked email without an account are answered alike, after the
        // same hashing work, so neither the answer nor its time tells which emails have accounts.
        let locked = if user.exists() {
            user.locked_until().filter(|_| user.is_locked_at(now))
        } else {
            self.limits.unknown_locked_until(parsed.as_str(), now)
        };
        if let Some(until) = locked {
            self.passwords.verify_decoy(&password).await?;
            return Err(CommandError::AccountLocked {
                until: projections::rfc3339(until),
            });
        }
        let verified = match user.password_hash() {
            Some(hash) => self.passwords.verify(&password, hash).await?,
            None => {
                self.passwords.verify_decoy(&password).await?;
                false
            }
        };
        if !verified {
            return Err(self
                .failed_password(&parsed, &user, Some(address), now)
                .await?);
        }
        if user.is_disabled() {
            return Err(CommandError::InvalidCredentials);
        }
        // Sessions that ended long ago are removed now and then, so the tables stay small.
        if rand_core::RngCore::next_u32(&mut rand_core::OsRng).is_multiple_of(64) {
            self.sessions.prune(now).await?;
        }
        let expires = now
            + chrono::Duration::from_std(self.settings.session_ttl)
                .map_err(|err| CommandError::Internal(err.to_string()))?;
        let (session, refresh) = self.sessions.open(id, now, expires).await?;
        // A password change, role change or disabling that landed while this sign-in was hashing
        // revoked the account's sessions before this one existed: look again, now that it does.
        // (A change that lands after this read revokes this session itself.)
        if !same_credentials(&user, &self.user(id).await?) {
            self.sessions
                .revoke(session, "the account changed while signing in", now)
                .await?;
            return Err(CommandError::Conflict { aggregate: "User" });
        }
        self.access_pair(id, session, &user, refresh, now)
    }

    /// A wrong password for `email`: counted against the account (or the email, when it has no
    /// account), and the failure beyond the allowance locks it out. The error to answer.
    async fn failed_password(
        &self,
        email: &Email,
        user: &User,
        address: Option<IpAddr>,
        now: DateTime<Utc>,
    ) -> Result<CommandError, CommandError> {
        if self.limits.failure_on(email.as_str()) {
            return Ok(CommandError::InvalidCredentials);
        }
        let until = now + chrono::Duration::minutes(limits::LOCK_OUT_MINUTES);
        if user.exists() {
            let ctx = RequestContext::system("sign-in");
            self.sender
                .execute(
                    &self.users,
                    account_id(email),
                    UserCommand::RecordLockOut {
                        until,
                        failed_attempts: limits::FAILURES_BEFORE_LOCK_OUT + 1,
                        at: now,
                    },
                    Call::new(&ctx, "RecordLockOut", None),
                )
                .await?;
            tracing::warn!(account = %account_id(email), address = ?address, "too many wrong passwords: account locked out");
        } else {
            self.limits.lock_unknown(email.as_str(), until, now);
        }
        Ok(CommandError::AccountLocked {
            until: projections::rfc3339(until),
        })
    }

    fn access_pair(
        &self,
        id: Uuid,
        session: Uuid,
        user: &User,
        refresh_token: String,
        now: DateTime<Utc>,
    ) -> Result<TokenPair, CommandError> {
        let roles: Vec<&str> = user.roles().into_iter().map(Role::as_str).collect();
        let (access_token, expires_at) = self
            .tokens
            .issue(id, session, &roles, user.customer_id(), now)
            .map_err(|err| CommandError::Internal(err.to_string()))?;
        Ok(TokenPair {
            access_token,
            refresh_token,
            expires_at,
        })
    }

    /// Trades a refresh token for a new pair. The old one is spent; presenting a spent one again
    /// revokes its whole session.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, CommandError> {
        let refused = || CommandError::Unauthenticated("the refresh token is not valid".into());
        if refresh_token.len() > 200 {
            return Err(refused());
        }
        let now = self.now();
        match self.sessions.rotate(refresh_token.trim(), now).await? {
            Rotation::Refused => Err(refused()),
            Rotation::Reused { session_id } => {
                tracing::warn!(session = %session_id, "a spent refresh token was presented again: session revoked");
                Err(refused())
            }
            Rotation::Rotated {
                session_id,
                user_id,
                token,
            } => {
                let user = self.user(user_id).await?;
                if !user.exists() || user.is_disabled() {
                    self.sessions
                        .revoke(session_id, "the account is disabled", now)
                        .await?;
                    return Err(refused());
                }
                self.access_pair(user_id, session_id, &user, token, now)
            }
        }
    }

    /// Ends the caller's session: its access and refresh tokens stop working on every server.
    pub async fn logout(&self, identity: &Identity) -> Result<(), CommandError> {
        match &identity.principal {
            Principal::Account { session_id, .. } => {
                self.sessions
                    .revoke(*session_id, "signed out", self.now())
                    .await
            }
            _ => Err(CommandError::Validation(
                "only a session signed in here can be ended here".into(),
            )),
        }
    }

    // ----- verifying a request's credentials -----

    /// The identity an `Authorization` header value proves (`None`: anonymous). Anything present
    /// but not valid is refused, never taken as anonymous.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Identity, TokenError> {
        let Some(value) = authorization.map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(Identity::anonymous());
        };
        if value.len() > MAX_CREDENTIAL_BYTES {
            return Err(TokenError::Invalid("the credentials are too long".into()));
        }
        let (scheme, credential) = value
            .split_once(' ')
            .map(|(scheme, rest)| (scheme, rest.trim()))
            .ok_or_else(|| {
                TokenError::Invalid("expected `Bearer <token>` or `ApiKey <key>`".into())
            })?;
        if scheme.eq_ignore_ascii_case("apikey") {
            return self.partner(credential).await;
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(TokenError::Invalid(format!("unknown scheme {scheme:?}")));
        }
        let header = jsonwebtoken::decode_header(credential)
            .map_err(|err| TokenError::Invalid(err.to_string()))?;
        let ours = header.kid.as_deref() == Some(self.tokens.key_id());
        match (&self.oidc, ours) {
            (Some(provider), false) => provider.verify(credential).await,
            _ => self.account(credential).await,
        }
    }

    async fn account(&self, token: &str) -> Result<Identity, TokenError> {
        let claims = self.tokens.verify(token)?;
        let parse = |text: &str| {
            Uuid::parse_str(text).map_err(|_| TokenError::Invalid("malformed claims".into()))
        };
        let (user_id, session_id) = (parse(&claims.sub)?, parse(&claims.sid)?);
        let customer_id = claims.cid.as_deref().map(parse).transpose()?;
        let live = self
            .sessions
            .is_live(session_id, self.now())
            .await
            .map_err(TokenError::unchecked)?;
        if !live {
            return Err(TokenError::SessionEnded);
        }
        Ok(Identity {
            principal: Principal::Account {
                user_id,
                session_id,
                customer_id,
            },
            roles: claims
                .roles
                .iter()
                .filter_map(|name| Role::parse(name))
                .map(queries::access::Role::from)
                .collect(),
        })
    }

    async fn partner(&self, key: &str) -> Result<Identity, TokenError> {
        let refused = || TokenError::Invalid("the API key is not valid".into());
        if !key.starts_with("aspk_") || key.len() > 100 {
            return Err(refused());
        }
        let digest = sessions::digest(key);
        let key_id = partner_key_id(&digest);
        let state = self
            .sender
            .load(&self.partner_key_store, key_id)
            .await
            .map_err(TokenError::unchecked)?;
        match (state.live_insurer(), state.key_digest()) {
            (Some(insurer), Some(stored)) if stored == digest => Ok(Identity {
                principal: Principal::Partner {
                    key_id,
                    insurer: insurer.to_owned(),
                },
                roles: BTreeSet::from([queries::access::Role::Partner]),
            }),
            _ => Err(refused()),
        }
    }
}

/// A partner key's id: UUIDv5 of its digest, so a presented key finds its stream directly.
fn partner_key_id(digest: &str) -> Uuid {
    Uuid::new_v5(&PARTNER_KEY_NAMESPACE, digest.as_bytes())
}

/// Whether two states of an account grant the same: the same password, roles, customer and
/// standing (lock-outs and names aside).
fn same_credentials(before: &User, after: &User) -> bool {
    before.password_hash() == after.password_hash()
        && before.roles() == after.roles()
        && before.customer_id() == after.customer_id()
        && before.is_disabled() == after.is_disabled()
        && before.exists() == after.exists()
}
