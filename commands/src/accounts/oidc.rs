//! Tokens of the operator's own OpenID Connect provider (Keycloak, Azure AD, …), for dealerships
//! that already sign their staff in there.
//!
//! A token is accepted when it is a JWT signed with one of the keys the issuer publishes at its
//! JWKS address, with an allowed asymmetric algorithm (RS256, ES256 or EdDSA; never `none` or an
//! HMAC, whose "key" would be public), the configured issuer and audience, and `exp`/`nbf` within
//! [`super::tokens::LEEWAY_SECS`]. Keys are cached for [`KEYS_MAX_AGE`] and fetched again sooner
//! when a token names a key id the cache lacks — at most once per [`MIN_REFETCH_INTERVAL`] and one
//! fetch at a time, so a flood of made-up key ids cannot make the server hammer the provider or
//! queue behind it. A failed fetch keeps the last good keys. The JWKS address must be `https`
//! (plain `http` only on a loopback address); only keys meant for signatures (`use` absent or
//! `sig`) are taken.
//!
//! Roles come from one configured claim (a dotted path such as `realm_access.roles`, holding a
//! string or a list of strings), each value mapped through the configured role map (or taken as
//! a role name when no map is given). Only staff roles are mapped: a provider's account is not
//! linked to a customer, so `client` is never granted this way.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use queries::access::{Identity, Principal, Role};
use tokio::sync::{Mutex, RwLock};

use super::tokens::{LEEWAY_SECS, TokenError};

/// Cached keys older than this are fetched again.
pub const KEYS_MAX_AGE: Duration = Duration::from_secs(600);
/// The soonest the keys are fetched again for an unknown key id.
pub const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// How long the provider may take to answer.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest JWKS document read.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// Where the provider is and how its tokens map to roles.
#[derive(Clone, Debug)]
pub struct OidcSettings {
    /// The `iss` its tokens carry, e.g. `https://sso.example.ru/realms/dealer`.
    pub issuer: String,
    /// The `aud` its tokens must carry for this ledger.
    pub audience: String,
    /// Where it publishes its signing keys (JWKS).
    pub jwks_url: String,
    /// The claim holding the caller's roles, as a dotted path.
    pub roles_claim: String,
    /// Provider role → ledger role; empty: provider roles are ledger role names.
    pub role_map: Vec<(String, aggregates::user::Role)>,
}

impl OidcSettings {
    /// Parses `"provider-role=ledger-role,…"`.
    pub fn parse_role_map(text: &str) -> Result<Vec<(String, aggregates::user::Role)>, String> {
        text.split(',')
            .map(str::trim)
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (from, to) = pair
                    .split_once('=')
                    .ok_or_else(|| format!("{pair:?} is not provider-role=ledger-role"))?;
                let role = aggregates::user::Role::parse(to)
                    .filter(|role| role.is_staff())
                    .ok_or_else(|| format!("{to:?} is not a staff role"))?;
                Ok((from.trim().to_owned(), role))
            })
            .collect()
    }
}

struct CachedKeys {
    keys: HashMap<String, (DecodingKey, Algorithm)>,
    fetched_at: Instant,
}

/// Verifies the provider's tokens against its published keys.
pub struct OidcVerifier {
    settings: OidcSettings,
    http: reqwest::Client,
    cache: RwLock<Option<CachedKeys>>,
    /// When the keys were last fetched (successfully or not), to space out fetches.
    last_fetch: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for OidcVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcVerifier")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl OidcVerifier {
    pub fn new(settings: OidcSettings) -> Result<Self, String> {
        let url = reqwest::Url::parse(&settings.jwks_url)
            .map_err(|err| format!("the JWKS address {:?}: {err}", settings.jwks_url))?;
        let loopback = match url.host_str() {
            Some("localhost") => true,
            Some(host) => host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback()),
            None => false,
        };
        if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
            return Err(format!(
                "the JWKS address {:?} must be https (http only on a loopback address)",
                settings.jwks_url
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|err| format!("building the HTTP client: {err}"))?;
        Ok(Self {
            settings,
            http,
            cache: RwLock::new(None),
            last_fetch: Mutex::new(None),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.settings.issuer
    }

    async fn fetch(&self) -> Result<(), TokenError> {
        let failed = |what: String| {
            tracing::warn!(url = %self.settings.jwks_url, reason = %what, "could not fetch the identity provider's keys");
            TokenError::Invalid("the identity provider's keys are unavailable".into())
        };
        let mut response = self
            .http
            .get(&self.settings.jwks_url)
            .send()
            .await
            .map_err(|err| failed(err.to_string()))?
            .error_for_status()
            .map_err(|err| failed(err.to_string()))?;
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|err| failed(err.to_string()))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_JWKS_BYTES {
                return Err(failed(format!("over {MAX_JWKS_BYTES} bytes")));
            }
        }
        let set: JwkSet = serde_json::from_slice(&body).map_err(|err| failed(err.to_string()))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            // An encryption key is not a signing key, whatever its bytes.
            if !matches!(
                jwk.common.public_key_use,
                None | Some(jsonwebtoken::jwk::PublicKeyUse::Signature)
            ) {
                continue;
            }
            let algorithm = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Algorithm::RS256,
                AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
                    Algorithm::ES256
                }
                AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
                // Symmetric keys and other curves are never trusted.
                _ => continue,
            };
            if let Ok(key) = DecodingKey::from_jwk(jwk) {
                keys.insert(kid, (key, algorithm));
            }
        }
        *self.cache.write().await = Some(CachedKeys {
            keys,
            fetched_at: Instant::now(),
        });
        Ok(())
    }

    /// The key named `kid`, fetching the key set when it is stale or lacks it. Fetches are spaced
    /// at least [`MIN_REFETCH_INTERVAL`] apart whatever the cache's age, one at a time (a request
    /// that finds a fetch under way answers from the cache instead of queueing behind it), and a
    /// failed fetch keeps the last good keys, so a provider outage does not sign everyone out.
    async fn key(&self, kid: &str) -> Result<Option<(DecodingKey, Algorithm)>, TokenError> {
        let cached = |fresh_only: bool| async move {
            self.cache.read().await.as_ref().and_then(|cached| {
                (!fresh_only || cached.fetched_at.elapsed() < KEYS_MAX_AGE)
                    .then(|| cached.keys.get(kid).cloned())
                    .flatten()
            })
        };
        if let Some(found) = cached(true).await {
            return Ok(Some(found));
        }
        let fetched = match self.last_fetch.try_lock() {
            Ok(mut last) if last.is_none_or(|at| at.elapsed() >= MIN_REFETCH_INTERVAL) => {
                *last = Some(Instant::now());
                Some(self.fetch().await)
            }
            // Fetched a moment ago, or a fetch is under way: the cache is the answer.
            _ => None,
        };
        let found = cached(false).await;
        match fetched {
            Some(Err(err)) if self.cache.read().await.is_none() => Err(err),
            _ => Ok(found),
        }
    }

    /// The identity a provider token proves.
    pub async fn verify(&self, token: &str) -> Result<Identity, TokenError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|err| TokenError::Invalid(err.to_string()))?;
        if !matches!(
            header.alg,
            Algorithm::RS256 | Algorithm::ES256 | Algorithm::EdDSA
        ) {
            return Err(TokenError::Invalid(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| TokenError::Invalid("the token names no key".into()))?;
        let (key, algorithm) = self
            .key(&kid)
            .await?
            .ok_or_else(|| TokenError::Invalid("the token's key is not the provider's".into()))?;
        // The key decides the algorithm, not the token.
        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
            .map_err(|err| TokenError::Invalid(err.to_string()))?
            .claims;
        let subject = claims["sub"]
            .as_str()
            .filter(|sub| !sub.is_empty() && sub.len() <= 255)
            .ok_or_else(|| TokenError::Invalid("sub is not a string".into()))?
            .to_owned();
        Ok(Identity {
            principal: Principal::External { subject },
            roles: self.roles(&claims),
        })
    }

    fn roles(&self, claims: &serde_json::Value) -> BTreeSet<Role> {
        let mut value = claims;
        for part in self.settings.roles_claim.split('.') {
            value = &value[part];
        }
        let names: Vec<&str> = match value {
            serde_json::Value::String(one) => vec![one.as_str()],
            serde_json::Value::Array(many) => many.iter().filter_map(|v| v.as_str()).collect(),
            _ => Vec::new(),
        };
        names
            .into_iter()
            .filter_map(|name| {
                if self.settings.role_map.is_empty() {
                    aggregates::user::Role::parse(name)
                } else {
                    self.settings
                        .role_map
                        .iter()
                        .find(|(from, _)| from == name)
                        .map(|(_, role)| *role)
                }
            })
            .filter(|role| role.is_staff())
            .map(Role::from)
            .collect()
    }
}
