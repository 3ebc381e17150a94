//! Time and identity come from outside the domain, so tests control both.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The business date of `instant`: its calendar date in Moscow ([`aggregates::calendar`]).
pub use aggregates::calendar::business_date;

/// The source of "now" for every command.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that always says the same instant (tests).
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// The source of new aggregate ids when the client does not choose one.
pub trait IdGenerator: Send + Sync {
    fn new_id(&self) -> Uuid;
}

/// Time-ordered UUIDv7: ids sort by creation, which keeps indexes compact.
pub struct UuidV7;

impl IdGenerator for UuidV7 {
    fn new_id(&self) -> Uuid {
        Uuid::now_v7()
    }
}
