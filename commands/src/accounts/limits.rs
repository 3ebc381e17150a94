//! Brute-force limits on sign-in, with `governor`'s keyed GCRA rate limiters (in memory, per
//! server).
//!
//! - Per client address: at most `attempts_per_address_per_minute` sign-in attempts a minute,
//!   right or wrong, from one address; beyond that the attempt is refused before any password is
//!   hashed (`TOO_MANY_REQUESTS`). The address is the TCP peer's: `X-Forwarded-For` is not
//!   trusted, since anyone can send it.
//! - Per account: [`FAILURES_BEFORE_LOCK_OUT`] failed attempts, replenished one every
//!   [`FAILURE_REPLENISH_SECS`] seconds; the failure beyond them locks the account for
//!   [`LOCK_OUT_MINUTES`] minutes. The lock-out is an event in the account's stream, so every
//!   server refuses it, and the log shows it. An email with no account is limited the same way
//!   (in memory only), so the answers do not tell which emails have accounts.
//!
//! Each limiter forgets keys back at full allowance whenever it holds more than
//! [`MAX_TRACKED_KEYS`], so memory stays bounded under a spray of addresses or emails.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Failed sign-ins an account absorbs before a lock-out.
pub const FAILURES_BEFORE_LOCK_OUT: u32 = 5;
/// One failure is forgiven every this many seconds.
pub const FAILURE_REPLENISH_SECS: u64 = 180;
/// How long a lock-out lasts.
pub const LOCK_OUT_MINUTES: i64 = 15;
/// Keys a limiter tracks before it forgets the idle ones.
const MAX_TRACKED_KEYS: usize = 10_000;

/// The sign-in limiters of one server.
pub struct LoginLimits {
    per_address: DefaultKeyedRateLimiter<IpAddr>,
    per_account: DefaultKeyedRateLimiter<String>,
}

impl LoginLimits {
    pub fn new(attempts_per_address_per_minute: u32) -> Self {
        let per_minute = NonZeroU32::new(attempts_per_address_per_minute.max(1))
            .expect("at least one attempt a minute");
        let failures = NonZeroU32::new(FAILURES_BEFORE_LOCK_OUT).expect("a positive allowance");
        Self {
            per_address: RateLimiter::keyed(Quota::per_minute(per_minute)),
            per_account: RateLimiter::keyed(
                Quota::with_period(Duration::from_secs(FAILURE_REPLENISH_SECS))
                    .expect("a positive period")
                    .allow_burst(failures),
            ),
        }
    }

    /// Counts one attempt from `address`; false when it is over the limit.
    pub fn attempt_from(&self, address: IpAddr) -> bool {
        if self.per_address.len() > MAX_TRACKED_KEYS {
            self.per_address.retain_recent();
        }
        self.per_address.check_key(&address).is_ok()
    }

    /// Counts one failed attempt on the account signing in with `email`; false when it is one too
    /// many (lock the account out).
    pub fn failure_on(&self, email: &str) -> bool {
        if self.per_account.len() > MAX_TRACKED_KEYS {
            self.per_account.retain_recent();
        }
        self.per_account.check_key(&email.to_lowercase()).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_attempts_per_minute_and_no_more() {
        let limits = LoginLimits::new(3);
        let here: IpAddr = "127.0.0.1".parse().unwrap();
        let there: IpAddr = "127.0.0.2".parse().unwrap();
        assert!((0..3).all(|_| limits.attempt_from(here)));
        assert!(!limits.attempt_from(here));
        assert!(limits.attempt_from(there), "addresses are counted apart");
    }

    #[test]
    fn the_sixth_failure_on_an_account_asks_for_a_lock_out() {
        let limits = LoginLimits::new(100);
        assert!((0..FAILURES_BEFORE_LOCK_OUT).all(|_| limits.failure_on("olga@example.ru")));
        assert!(
            !limits.failure_on("OLGA@example.ru"),
            "case does not matter"
        );
        assert!(limits.failure_on("ivan@example.ru"));
    }
}
