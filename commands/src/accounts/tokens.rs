//! Access tokens: short-lived JWTs signed with the server's Ed25519 token key (EdDSA, RFC 8037),
//! issued at sign-in and refresh, verified on every request.
//!
//! - The key is a 32-byte secret in its own key file (`AUTOSALON_TOKEN_KEY_FILE`), kept like the
//!   policy signing key ([`crate::key_file`]: created owner-only, refused when readable by others).
//!   It is a different key from the policy key: a leaked token key must not let anyone forge
//!   policies, nor the other way round. Servers sharing one database share the file, so a token
//!   one issued is accepted by all.
//! - Verification accepts exactly one algorithm, EdDSA, so `alg: none`, HS256 keyed with the
//!   public key, or any other algorithm is refused before a signature is looked at; it requires
//!   `iss`, `aud`, `sub`, `exp` and `nbf`, and allows clocks to disagree by [`LEEWAY_SECS`] and
//!   no more.
//! - A valid signature is not enough: the token names its sign-in session (`sid`), and the
//!   session must still be live (see [`super::sessions`]): `logout`, a role change, disabling the
//!   account or a reused refresh token end it at once.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::key_file::KeyFileError;

/// How far the clocks of the issuing and the verifying server may disagree.
pub const LEEWAY_SECS: u64 = 30;

/// What an access token says. Field names are the registered JWT claims (RFC 7519 §4.1) plus
/// `sid` (the session), `roles` and `cid` (a client's customer).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    /// The account id.
    pub sub: String,
    pub sid: String,
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cid: Option<String>,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
}

/// Why an access token or API key was not accepted. `Invalid` and `SessionEnded` are the caller's
/// (answered `UNAUTHENTICATED`; the reason is logged); `Unavailable` and `Internal` are the
/// server's, never answered as `UNAUTHENTICATED` (the detail is logged, not sent).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the token is not valid: {0}")]
    Invalid(String),
    #[error("the token's session has ended")]
    SessionEnded,
    /// The credentials could not be checked because the database could not be reached (a
    /// restart, a failover, no free connection). Answered `STORAGE_UNAVAILABLE`: retry.
    #[error("the credentials could not be checked, the database is unavailable: {0}")]
    Unavailable(String),
    /// Checking the credentials failed inside the server. Answered `INTERNAL`.
    #[error("the credentials could not be checked: {0}")]
    Internal(String),
}

impl TokenError {
    /// The store failed while checking credentials: [`TokenError::Unavailable`] when the
    /// database could not be reached, else [`TokenError::Internal`].
    pub fn unchecked(err: crate::error::CommandError) -> Self {
        match err {
            crate::error::CommandError::StorageUnavailable(detail) => {
                TokenError::Unavailable(detail)
            }
            other => TokenError::Internal(other.to_string()),
        }
    }
}

/// Issues and verifies this server's access tokens.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    key_id: String,
    issuer: String,
    audience: String,
    ttl: Duration,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("key_id", &self.key_id)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl TokenKeys {
    /// Loads the token key at `path` (creating it there if missing). Returns the keys and whether
    /// the file was created.
    pub fn load_or_create(
        path: &Path,
        issuer: &str,
        audience: &str,
        ttl: Duration,
    ) -> Result<(Self, bool), KeyFileError> {
        let (seed, created) = crate::key_file::load_or_create(path)?;
        Ok((Self::from_seed(&seed, issuer, audience, ttl), created))
    }

    /// Keys from a 32-byte Ed25519 seed.
    pub fn from_seed(seed: &[u8; 32], issuer: &str, audience: &str, ttl: Duration) -> Self {
        let key = SigningKey::from_bytes(seed);
        let der = key
            .to_pkcs8_der()
            .expect("an Ed25519 key always encodes as PKCS#8");
        let public = key.verifying_key();
        let key_id = Sha256::digest(public.as_bytes())[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Self {
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            decoding: DecodingKey::from_ed_der(public.as_bytes()),
            key_id,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            ttl,
        }
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A signed access token for one session, valid from `now` for the configured lifetime, and
    /// when it expires.
    pub fn issue(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        roles: &[&str],
        customer_id: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> Result<(String, DateTime<Utc>), TokenError> {
        let expires_at = now
            + chrono::Duration::from_std(self.ttl)
                .map_err(|err| TokenError::Invalid(err.to_string()))?;
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user_id.to_string(),
            sid: session_id.to_string(),
            roles: roles.iter().map(|role| role.to_string()).collect(),
            cid: customer_id.map(|id| id.to_string()),
            iat: now.timestamp(),
            nbf: now.timestamp(),
            exp: expires_at.timestamp(),
            jti: Uuid::new_v4().to_string(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.key_id.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|err| TokenError::Invalid(err.to_string()))?;
        Ok((token, expires_at))
    }

    /// The claims of a token this server's key signed, for this issuer and audience, now valid.
    /// The session is not checked here.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.validate_exp = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|err| TokenError::Invalid(err.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::from_seed(&[7; 32], "autosalon", "autosalon", Duration::from_secs(900))
    }

    #[test]
    fn an_issued_token_verifies_and_carries_its_session_and_roles() {
        let keys = keys();
        let (user, session) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let (token, expires) = keys
            .issue(user, session, &["sales"], None, Utc::now())
            .unwrap();
        let claims = keys.verify(&token).unwrap();
        assert_eq!(claims.sub, user.to_string());
        assert_eq!(claims.sid, session.to_string());
        assert_eq!(claims.roles, ["sales"]);
        assert_eq!(claims.exp, expires.timestamp());
    }

    #[test]
    fn a_token_of_another_key_issuer_or_audience_is_refused() {
        let now = Utc::now();
        let (token, _) = keys()
            .issue(Uuid::nil(), Uuid::nil(), &["admin"], None, now)
            .unwrap();
        let other_key =
            TokenKeys::from_seed(&[8; 32], "autosalon", "autosalon", Duration::from_secs(900));
        assert!(other_key.verify(&token).is_err());
        let other_issuer =
            TokenKeys::from_seed(&[7; 32], "elsewhere", "autosalon", Duration::from_secs(900));
        assert!(other_issuer.verify(&token).is_err());
        let other_audience =
            TokenKeys::from_seed(&[7; 32], "autosalon", "elsewhere", Duration::from_secs(900));
        assert!(other_audience.verify(&token).is_err());
    }

    #[test]
    fn expiry_is_enforced_beyond_the_stated_leeway_only() {
        let keys = keys();
        let lifetime = keys.ttl().as_secs() as i64;
        let within = Utc::now() - chrono::Duration::seconds(lifetime + LEEWAY_SECS as i64 - 5);
        let (token, _) = keys
            .issue(Uuid::nil(), Uuid::nil(), &[], None, within)
            .unwrap();
        assert!(
            keys.verify(&token).is_ok(),
            "expired less than the leeway ago"
        );
        let beyond = Utc::now() - chrono::Duration::seconds(lifetime + LEEWAY_SECS as i64 + 5);
        let (token, _) = keys
            .issue(Uuid::nil(), Uuid::nil(), &[], None, beyond)
            .unwrap();
        assert!(keys.verify(&token).is_err(), "expired beyond the leeway");
    }
}
