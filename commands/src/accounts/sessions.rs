//! Sign-in sessions and their refresh tokens: operational state in two tables, not events.
//!
//! Why a table and not the log: the log records who holds which powers (accounts, roles, disabling,
//! lock-outs), which an auditor asks about. Which device holds which refresh token is not such a
//! fact, changes every quarter of an hour for every signed-in person, and a digest of a live
//! credential does not belong in a log that is exported and shown to auditors. The tables live in
//! the same database, so every server sharing it sees the same sessions.
//!
//! - `auth_sessions`: one row per sign-in (the refresh-token *family*): its account, when it ends,
//!   and when and why it was revoked. Every access token names its session; a revoked or ended
//!   session makes its tokens worthless at once.
//! - `auth_refresh_tokens`: one row per refresh token ever issued, by SHA-256 digest (the token is
//!   256 random bits, so the digest reveals nothing guessable). A token is used at most once: the
//!   guarded `UPDATE … WHERE used_at IS NULL` lets exactly one of two racing refreshes win (the
//!   other is refused and changes nothing). A token presented after it was spent (a stolen copy,
//!   or a client replaying an old one) revokes its whole session, so a thief and the victim are
//!   both signed out (OAuth 2.0 Security BCP, RFC 9700 §4.14.2).

use chrono::{DateTime, Utc};
use eventstore::{Backend, Database};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::CommandError;

const TABLES: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS auth_sessions (
        session_id     text PRIMARY KEY,
        user_id        text NOT NULL,
        created_at     text NOT NULL,
        expires_at     text NOT NULL,
        revoked_at     text,
        revoked_reason text
    ) STRICT",
    "CREATE INDEX IF NOT EXISTS auth_sessions_by_user ON auth_sessions (user_id)",
    "CREATE TABLE IF NOT EXISTS auth_refresh_tokens (
        token_digest text PRIMARY KEY,
        session_id   text NOT NULL,
        issued_at    text NOT NULL,
        used_at      text
    ) STRICT",
    "CREATE INDEX IF NOT EXISTS auth_refresh_tokens_by_session ON auth_refresh_tokens (session_id)",
];

/// Creates the tables (idempotent; several servers starting at once take turns).
pub async fn install(db: &Database) -> Result<(), CommandError> {
    let backend = db.backend();
    let mut tx = db.begin_exclusive().await?;
    for statement in TABLES {
        sqlx::query(&backend.ddl(statement))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

fn stamp(at: DateTime<Utc>) -> String {
    projections::rfc3339(at)
}

/// A fresh opaque refresh token (`asr_` and 43 base64url characters: 256 random bits).
pub fn new_refresh_token() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    format!(
        "asr_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// Lower-case hex SHA-256 of a token (refresh tokens, partner API keys).
pub fn digest(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A refresh token's row with its session: session id, used at, account, session end, revoked at.
type TokenRow = (String, Option<String>, String, String, Option<String>);

/// What a refresh found.
#[derive(Debug, PartialEq, Eq)]
pub enum Rotation {
    /// The token was live: it is spent now, and `token` replaces it in the same session.
    Rotated {
        session_id: Uuid,
        user_id: Uuid,
        token: String,
    },
    /// Unknown token, or its session ended or was revoked.
    Refused,
    /// The token had been used before: its whole session is revoked now.
    Reused { session_id: Uuid },
}

/// The sessions of one database.
#[derive(Clone)]
pub struct Sessions {
    db: Database,
}

impl Sessions {
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Opens a session for `user_id` ending at `expires_at`, with its first refresh token.
    pub async fn open(
        &self,
        user_id: Uuid,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(Uuid, String), CommandError> {
        let session_id = Uuid::now_v7();
        let token = new_refresh_token();
        let mut tx = self.db.begin_write().await?;
        sqlx::query(
            "INSERT INTO auth_sessions (session_id, user_id, created_at, expires_at)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(session_id.to_string())
        .bind(user_id.to_string())
        .bind(stamp(now))
        .bind(stamp(expires_at))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO auth_refresh_tokens (token_digest, session_id, issued_at) VALUES ($1, $2, $3)",
        )
        .bind(digest(&token))
        .bind(session_id.to_string())
        .bind(stamp(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((session_id, token))
    }

    /// Spends `token` and issues its successor, or says why not (see [`Rotation`]).
    pub async fn rotate(&self, token: &str, now: DateTime<Utc>) -> Result<Rotation, CommandError> {
        let mut tx = self.db.begin_write().await?;
        let found: Option<TokenRow> = sqlx::query_as(
            "SELECT t.session_id, t.used_at, s.user_id, s.expires_at, s.revoked_at
                   FROM auth_refresh_tokens t JOIN auth_sessions s ON s.session_id = t.session_id
                  WHERE t.token_digest = $1",
        )
        .bind(digest(token))
        .fetch_optional(&mut *tx)
        .await?;
        let Some((session, used_at, user, expires_at, revoked_at)) = found else {
            return Ok(Rotation::Refused);
        };
        let session_id = parse_id(&session)?;
        if revoked_at.is_some() || expires_at <= stamp(now) {
            return Ok(Rotation::Refused);
        }
        if used_at.is_some() {
            revoke_in(
                &mut tx,
                session_id,
                "a spent refresh token was presented again",
                now,
            )
            .await?;
            tx.commit().await?;
            return Ok(Rotation::Reused { session_id });
        }
        let spent = sqlx::query(
            "UPDATE auth_refresh_tokens SET used_at = $1 WHERE token_digest = $2 AND used_at IS NULL",
        )
        .bind(stamp(now))
        .bind(digest(token))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if spent == 0 {
            // Two requests raced with the same live token (PostgreSQL, read committed): the other
            // one spent it first. One token presented twice is a reuse however close together,
            // and the two may be a thief and the holder: the whole session ends (RFC 9700 §4.14.2).
            revoke_in(
                &mut tx,
                session_id,
                "a refresh token was presented twice at once",
                now,
            )
            .await?;
            tx.commit().await?;
            return Ok(Rotation::Reused { session_id });
        }
        let successor = new_refresh_token();
        sqlx::query(
            "INSERT INTO auth_refresh_tokens (token_digest, session_id, issued_at) VALUES ($1, $2, $3)",
        )
        .bind(digest(&successor))
        .bind(&session)
        .bind(stamp(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Rotation::Rotated {
            session_id,
            user_id: parse_id(&user)?,
            token: successor,
        })
    }

    /// Whether the session is live at `now` (exists, not revoked, not ended).
    pub async fn is_live(
        &self,
        session_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, CommandError> {
        let found: Option<(String, Option<String>)> = sqlx::query_as(
            "SELECT expires_at, revoked_at FROM auth_sessions WHERE session_id = $1",
        )
        .bind(session_id.to_string())
        .fetch_optional(self.db.pool())
        .await?;
        Ok(found.is_some_and(|(expires_at, revoked_at)| {
            revoked_at.is_none() && expires_at > stamp(now)
        }))
    }

    /// Revokes one session (`logout`).
    pub async fn revoke(
        &self,
        session_id: Uuid,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), CommandError> {
        let mut tx = self.db.begin_write().await?;
        revoke_in(&mut tx, session_id, reason, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Revokes every live session of an account (its roles, password or status changed).
    pub async fn revoke_all_of(
        &self,
        user_id: Uuid,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, CommandError> {
        let _turn = self.db.write_turn().await;
        Ok(sqlx::query(
            "UPDATE auth_sessions SET revoked_at = $1, revoked_reason = $2
              WHERE user_id = $3 AND revoked_at IS NULL",
        )
        .bind(stamp(now))
        .bind(reason)
        .bind(user_id.to_string())
        .execute(self.db.pool())
        .await?
        .rows_affected())
    }

    /// Deletes sessions that ended over a day ago, with their refresh tokens (bounded growth).
    pub async fn prune(&self, now: DateTime<Utc>) -> Result<(), CommandError> {
        let cutoff = stamp(now - chrono::Duration::days(1));
        let mut tx = self.db.begin_write().await?;
        sqlx::query(
            "DELETE FROM auth_refresh_tokens WHERE session_id IN
               (SELECT session_id FROM auth_sessions WHERE expires_at < $1)",
        )
        .bind(&cutoff)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM auth_sessions WHERE expires_at < $1")
            .bind(&cutoff)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.db.backend()
    }
}

async fn revoke_in(
    tx: &mut eventstore::WriteTx,
    session_id: Uuid,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), CommandError> {
    sqlx::query(
        "UPDATE auth_sessions SET revoked_at = $1, revoked_reason = $2
          WHERE session_id = $3 AND revoked_at IS NULL",
    )
    .bind(stamp(now))
    .bind(reason)
    .bind(session_id.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn parse_id(text: &str) -> Result<Uuid, CommandError> {
    Uuid::parse_str(text)
        .map_err(|err| CommandError::Internal(format!("stored id {text:?}: {err}")))
}
