//! Brute-force limits on sign-in, with `governor`'s keyed GCRA rate limiters (in memory, per
//! server).
//!
//! - Per client address: at most `attempts_per_address_per_minute` sign-in attempts a minute,
//!   right or wrong, from one address; beyond that the attempt is refused before any password is
//!   hashed (`TOO_MANY_REQUESTS`). The address is the TCP peer's (`X-Forwarded-For` is not
//!   trusted, since anyone can send it); an IPv6 address counts by its /64 network, the block one
//!   subscriber is usually given, so rotating addresses inside it does not reset the limit.
//! - Per account: [`FAILURES_BEFORE_LOCK_OUT`] failed attempts, replenished one every
//!   [`FAILURE_REPLENISH_SECS`] seconds; the failure beyond them locks the account for
//!   [`LOCK_OUT_MINUTES`] minutes. The lock-out is an event in the account's stream, so every
//!   server refuses it, and the log shows it. An email with no account is limited and locked out
//!   the same way (in memory only, so per server), so neither the answers nor their times tell
//!   which emails have accounts.
//!
//! Each limiter forgets keys back at full allowance whenever it holds more than
//! [`MAX_TRACKED_KEYS`], so memory stays bounded under a spray of addresses or emails.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

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
    /// Lock-outs of emails that have no account, until when.
    unknown_locks: Mutex<HashMap<String, DateTime<Utc>>>,
}

/// The key an address is counted under: itself for IPv4 (also when written IPv4-mapped), its /64
/// network for IPv6.
fn address_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
    }
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
            unknown_locks: Mutex::default(),
        }
    }

    /// Counts one attempt from `address`; false when it is over the limit.
    pub fn attempt_from(&self, address: IpAddr) -> bool {
        if self.per_address.len() > MAX_TRACKED_KEYS {
            self.per_address.retain_recent();
        }
        self.per_address.check_key(&address_key(address)).is_ok()
    }

    /// Counts one failed attempt on the account signing in with `email`; false when it is one too
    /// many (lock the account out).
    pub fn failure_on(&self, email: &str) -> bool {
        if self.per_account.len() > MAX_TRACKED_KEYS {
            self.per_account.retain_recent();
        }
        self.per_account.check_key(&email.to_lowercase()).is_ok()
    }

    /// Locks out `email`, which has no account, until `until`.
    pub fn lock_unknown(&self, email: &str, until: DateTime<Utc>, now: DateTime<Utc>) {
        let mut locks = self.unknown_locks.lock().unwrap_or_else(|e| e.into_inner());
        if locks.len() >= MAX_TRACKED_KEYS {
            locks.retain(|_, locked| *locked > now);
            if locks.len() >= MAX_TRACKED_KEYS {
                locks.clear();
            }
        }
        locks.insert(email.to_lowercase(), until);
    }

    /// Until when `email`, which has no account, is locked out at `now`, if it is.
    pub fn unknown_locked_until(&self, email: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let locks = self.unknown_locks.lock().unwrap_or_else(|e| e.into_inner());
        locks
            .get(&email.to_lowercase())
            .copied()
            .filter(|until| *until > now)
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
    fn an_ipv6_network_counts_as_one_address_and_mapped_ipv4_as_itself() {
        let limits = LoginLimits::new(2);
        let first: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_network: IpAddr = "2001:db8:1:2:ffff:0:0:9".parse().unwrap();
        let next_network: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(limits.attempt_from(first));
        assert!(limits.attempt_from(same_network));
        assert!(!limits.attempt_from(first), "the /64 used its two");
        assert!(limits.attempt_from(next_network));
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert!(limits.attempt_from(v4));
        assert!(limits.attempt_from(mapped));
        assert!(!limits.attempt_from(v4), "mapped is the same address");
    }

    #[test]
    fn an_email_without_an_account_stays_locked_out_until_its_time() {
        let limits = LoginLimits::new(100);
        let now = Utc::now();
        let until = now + chrono::Duration::minutes(LOCK_OUT_MINUTES);
        assert_eq!(limits.unknown_locked_until("nobody@example.ru", now), None);
        limits.lock_unknown("Nobody@example.ru", until, now);
        assert_eq!(
            limits.unknown_locked_until("nobody@example.ru", now + chrono::Duration::minutes(1)),
            Some(until),
            "the same moment every time, as an account's stored lock-out"
        );
        assert_eq!(
            limits.unknown_locked_until("nobody@example.ru", until),
            None
        );
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
