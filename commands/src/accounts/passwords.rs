//! Passwords: the policy a new one must meet, and argon2id hashing off the async runtime.
//!
//! Hashes are argon2id (RFC 9106) with the first configuration the OWASP Password Storage Cheat
//! Sheet recommends: 19 MiB of memory (m = 19456 KiB), 2 iterations, 1 lane, a 16-byte random salt
//! and a 32-byte output, stored as a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`), so the
//! parameters travel with each hash and can be raised later without breaking old ones.
//!
//! One hash costs tens of milliseconds of CPU and 19 MiB, so hashing runs on the blocking pool
//! (`spawn_blocking`) and at most [`MAX_CONCURRENT_HASHES`] at once: a burst of sign-ins waits for
//! a permit instead of starving the runtime or the memory.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::error::CommandError;

/// OWASP's argon2id configuration (see the module docs).
const MEMORY_KIB: u32 = 19_456;
const ITERATIONS: u32 = 2;
const LANES: u32 = 1;

/// Hashes computed at the same time, at most (each holds 19 MiB).
pub const MAX_CONCURRENT_HASHES: usize = 4;

/// How long a request waits for a hashing permit before it is answered `TOO_MANY_REQUESTS`.
pub const PERMIT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// OWASP ASVS 4.0 V2.1.1: at least 12 characters.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// ASVS V2.1.2 asks that at least 64 be allowed; 128 bounds the work one request can ask for.
pub const MAX_PASSWORD_CHARS: usize = 128;

/// A password as typed. Never printed: `Debug` shows only its length.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Password(<{} chars>)", self.0.chars().count())
    }
}

impl Password {
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Checks the policy for a new password: 12 to 128 characters, not only spaces, and not the
    /// account's email. (Any characters are allowed, as ASVS V2.1.9 asks: no composition rules.)
    pub fn check_new(&self, email: &str) -> Result<(), CommandError> {
        let chars = self.0.chars().count();
        if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&chars) {
            return Err(CommandError::Validation(format!(
                "a password has {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"
            )));
        }
        if self.0.trim().is_empty() {
            return Err(CommandError::Validation(
                "a password is not only spaces".into(),
            ));
        }
        if self.0.trim().eq_ignore_ascii_case(email.trim()) {
            return Err(CommandError::Validation(
                "a password is not the account's email".into(),
            ));
        }
        Ok(())
    }
}

/// Hashes and verifies passwords on the blocking pool, a few at a time. Cheap to clone.
#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    /// A hash of a random password, verified against when an email has no account, so an unknown
    /// email costs as long as a wrong password (no timing oracle for which emails exist).
    decoy: Arc<tokio::sync::OnceCell<String>>,
}

impl Default for Passwords {
    fn default() -> Self {
        Self::new()
    }
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, LANES, Some(32))
        .expect("OWASP's argon2id parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

impl Passwords {
    pub fn new() -> Self {
        Self {
            permits: Arc::new(Semaphore::new(MAX_CONCURRENT_HASHES)),
            decoy: Arc::default(),
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, CommandError> {
        // A flood of sign-ins waits a bounded time for a permit, then is told to come back.
        let _permit = tokio::time::timeout(PERMIT_WAIT, self.permits.acquire())
            .await
            .map_err(|_| CommandError::PasswordChecksBusy)?
            .map_err(|_| CommandError::Internal("password hashing stopped".into()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|err| CommandError::Internal(format!("password hashing task: {err}")))
    }

    /// The argon2id PHC string of `password`, with a fresh random salt.
    pub async fn hash(&self, password: &Password) -> Result<String, CommandError> {
        let password = password.clone();
        self.blocking(move || {
            let salt = SaltString::generate(&mut rand_core::OsRng);
            argon2()
                .hash_password(password.expose().as_bytes(), &salt)
                .map(|hash| hash.to_string())
                .map_err(|err| CommandError::Internal(format!("hashing a password: {err}")))
        })
        .await?
    }

    /// Whether `password` matches the PHC string `hash` (in constant time for its length; the
    /// parameters are the hash's own).
    pub async fn verify(&self, password: &Password, hash: &str) -> Result<bool, CommandError> {
        let (password, hash) = (password.clone(), hash.to_owned());
        self.blocking(move || match PasswordHash::new(&hash) {
            Ok(parsed) => argon2()
                .verify_password(password.expose().as_bytes(), &parsed)
                .is_ok(),
            Err(err) => {
                tracing::error!(error = %err, "a stored password hash does not parse");
                false
            }
        })
        .await
    }

    /// Spends the time of one verification without an account (see [`Passwords::decoy`]).
    pub async fn verify_decoy(&self, password: &Password) -> Result<(), CommandError> {
        let decoy = self
            .decoy
            .get_or_try_init(|| async {
                let mut random = [0u8; 24];
                rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut random);
                let text: String = random.iter().map(|b| format!("{b:02x}")).collect();
                self.hash(&Password::new(text)).await
            })
            .await?
            .clone();
        self.verify(password, &decoy).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_is_argon2id_with_owasp_parameters_and_verifies_only_its_password() {
        let passwords = Passwords::new();
        let password = Password::new("correct horse battery");
        let hash = passwords.hash(&password).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(passwords.verify(&password, &hash).await.unwrap());
        assert!(
            !passwords
                .verify(&Password::new("correct horse battery!"), &hash)
                .await
                .unwrap()
        );
        let again = passwords.hash(&password).await.unwrap();
        assert_ne!(hash, again, "every hash has its own salt");
    }

    #[test]
    fn the_policy_wants_12_to_128_characters_and_not_the_email() {
        let email = "olga@example.ru";
        assert!(Password::new("short").check_new(email).is_err());
        assert!(Password::new("x".repeat(129)).check_new(email).is_err());
        assert!(Password::new(" ".repeat(14)).check_new(email).is_err());
        assert!(Password::new("OLGA@example.ru").check_new(email).is_err());
        assert!(Password::new("twelve chars").check_new(email).is_ok());
        assert!(Password::new("я".repeat(12)).check_new(email).is_ok());
    }

    #[test]
    fn a_password_is_never_printed() {
        let text = format!("{:?}", Password::new("hunter2hunter2"));
        assert!(!text.contains("hunter2"), "{text}");
    }
}
