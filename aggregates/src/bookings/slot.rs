//! Time slots, working hours, mechanics' staff codes, and the id of a mechanic's day.

use std::fmt;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Timelike, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::calendar;

/// The workshop opens at 08:00 dealership time.
pub const OPENS_AT_HOUR: u32 = 8;
/// The workshop closes at 20:00 dealership time; a slot may end exactly then.
pub const CLOSES_AT_HOUR: u32 = 20;
/// Slots start and end on a multiple of this many minutes past the hour.
pub const SLOT_STEP_MINUTES: u32 = 30;
/// The longest slot: one mechanic's full shift.
pub const MAX_SLOT_HOURS: i64 = 8;
/// The longest staff code.
pub const MAX_MECHANIC_CODE_CHARS: usize = 16;

/// The namespace of mechanic-day ids (UUIDv5). Never change it: stored streams are named by it.
pub const MECHANIC_DAY_NAMESPACE: Uuid = Uuid::from_u128(0x6d3c_5a1e_8f0b_4e7a_9c24_1b7e_52d9_a0f3);

/// Why a slot is not bookable. Nothing was emitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SlotError {
    /// The end is not after the start. The caller swaps or corrects the times.
    #[error("the slot must end after it starts ({start} .. {end})")]
    EndNotAfterStart {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
    /// A start or end that is not on a full or half hour. The caller rounds to the half hour.
    #[error("slots start and end on a full or half hour")]
    NotOnHalfHour,
    /// Longer than one shift. The caller splits the work into several bookings.
    #[error("a slot lasts at most {MAX_SLOT_HOURS} hours, this one {minutes} minutes")]
    TooLong { minutes: i64 },
    /// Not inside 08:00–20:00 of one day, dealership time. The caller picks another time.
    #[error("the workshop works 08:00-20:00 Moscow time (UTC+3), within one day")]
    OutsideWorkingHours,
}

impl SlotError {
    /// A stable, machine-readable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            SlotError::OutsideWorkingHours => "OUTSIDE_WORKING_HOURS",
            SlotError::EndNotAfterStart { .. }
            | SlotError::NotOnHalfHour
            | SlotError::TooLong { .. } => "INVALID_SLOT",
        }
    }
}

/// A bookable stretch of workshop time `[start, end)`, valid by construction ([`Slot::new`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Slot {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

impl Slot {
    /// Checks the slot rules (see the module docs of [`crate::bookings`]).
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Slot, SlotError> {
        if end <= start {
            return Err(SlotError::EndNotAfterStart { start, end });
        }
        let on_step = |at: DateTime<Utc>| {
            at.nanosecond() == 0
                && at.second() == 0
                && at.minute().is_multiple_of(SLOT_STEP_MINUTES)
        };
        if !on_step(start) || !on_step(end) {
            return Err(SlotError::NotOnHalfHour);
        }
        let minutes = (end - start).num_minutes();
        if minutes > MAX_SLOT_HOURS * 60 {
            return Err(SlotError::TooLong { minutes });
        }
        let (local_start, local_end) = (calendar::local(start), calendar::local(end));
        let opens = NaiveTime::from_hms_opt(OPENS_AT_HOUR, 0, 0).expect("a valid time");
        let closes = NaiveTime::from_hms_opt(CLOSES_AT_HOUR, 0, 0).expect("a valid time");
        if local_start.date_naive() != local_end.date_naive()
            || local_start.time() < opens
            || local_end.time() > closes
        {
            return Err(SlotError::OutsideWorkingHours);
        }
        Ok(Slot { start, end })
    }

    pub fn start(&self) -> DateTime<Utc> {
        self.start
    }

    pub fn end(&self) -> DateTime<Utc> {
        self.end
    }

    /// The calendar day, dealership time, the slot lies in.
    pub fn day(&self) -> NaiveDate {
        calendar::business_date(self.start)
    }

    /// How long the slot lasts.
    pub fn duration(&self) -> Duration {
        self.end - self.start
    }

    /// Whether the two slots share any instant (back-to-back slots do not).
    pub fn overlaps(&self, other: &Slot) -> bool {
        self.start < other.end && other.start < self.end
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} .. {}",
            self.start
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            self.end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    }
}

/// A staff code that is not one. Nothing was emitted; the caller asks for the code on the job card.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a mechanic id is a staff code of 1 to {MAX_MECHANIC_CODE_CHARS} letters, digits and dashes, got {0:?}"
)]
pub struct InvalidMechanicCode(pub String);

/// A mechanic's staff code: trimmed, upper case, 1 to 16 ASCII letters, digits or dashes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MechanicCode(String);

impl MechanicCode {
    pub fn parse(text: &str) -> Result<MechanicCode, InvalidMechanicCode> {
        let code = text.trim().to_ascii_uppercase();
        let valid = !code.is_empty()
            && code.len() <= MAX_MECHANIC_CODE_CHARS
            && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if valid {
            Ok(MechanicCode(code))
        } else {
            Err(InvalidMechanicCode(text.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MechanicCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id of `mechanic`'s stream for `day`: UUIDv5 (SHA-1) over [`MECHANIC_DAY_NAMESPACE`] of the
/// name `"<staff code>/<YYYY-MM-DD>"`, so every request for the same mechanic and day names the
/// same stream without asking anyone.
pub fn mechanic_day_id(mechanic: &MechanicCode, day: NaiveDate) -> Uuid {
    let name = format!("{}/{}", mechanic.as_str(), day.format("%Y-%m-%d"));
    Uuid::new_v5(&MECHANIC_DAY_NAMESPACE, name.as_bytes())
}
