//! The dealership's calendar: Moscow time, `Europe/Moscow` in the IANA time-zone database (through
//! `chrono-tz`), the one source of business dates and day boundaries.
//!
//! Every "today" in the ledger — a loan's decision and disbursement dates, a policy's start, its
//! cancellation day and a claim's filing day, a promo code's validity, a ledger entry's date, a
//! report's day, a workshop slot's day and hours — is [`business_date`] of the one injected clock's
//! instant. Moscow has kept UTC+3 all year since 26 October 2014; before that it was UTC+4
//! (2011–2014) and UTC+3 with summer time before 2011, which the time-zone database knows and a fixed
//! offset would not, so history imported from those years lands on its own Moscow dates.
//!
//! Only `Europe/Moscow` is compiled in (`CHRONO_TZ_TIMEZONE_FILTER` in `.cargo/config.toml`), which
//! keeps the rest of the database out of the binary.

use chrono::{DateTime, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// The dealership's time zone.
pub const DEALERSHIP_TIME_ZONE: Tz = chrono_tz::Europe::Moscow;

/// `instant` in dealership (Moscow) time.
pub fn local(instant: DateTime<Utc>) -> DateTime<Tz> {
    instant.with_timezone(&DEALERSHIP_TIME_ZONE)
}

/// The business date of `instant`: its calendar date in Moscow.
pub fn business_date(instant: DateTime<Utc>) -> NaiveDate {
    local(instant).date_naive()
}

/// The instant the Moscow calendar day `day` begins (local midnight). Moscow's clock changes were
/// never at midnight, so midnight always exists once; should a future rule make it ambiguous, the
/// earlier instant is taken, and should it not exist, the first instant after the gap.
pub fn day_start(day: NaiveDate) -> DateTime<Utc> {
    let midnight = day.and_time(NaiveTime::MIN);
    match DEALERSHIP_TIME_ZONE.from_local_datetime(&midnight) {
        LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => at.with_timezone(&Utc),
        LocalResult::None => {
            // A gap at midnight: the day starts when the clock reads the first valid time (gaps are
            // an hour or two; the search stops within the day).
            (1..=96)
                .map(|quarter| midnight + chrono::Duration::minutes(15 * quarter))
                .find_map(|probe| DEALERSHIP_TIME_ZONE.from_local_datetime(&probe).earliest())
                .map_or_else(|| midnight.and_utc(), |at| at.with_timezone(&Utc))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn the_business_date_turns_at_moscow_midnight() {
        assert_eq!(
            business_date(at("2026-06-10T20:59:59Z")),
            date("2026-06-10")
        );
        assert_eq!(
            business_date(at("2026-06-10T21:00:00Z")),
            date("2026-06-11")
        );
        // 01:30 in Moscow is already the next day, while the UTC date is still the old one.
        assert_eq!(
            business_date(at("2026-06-10T22:30:00Z")),
            date("2026-06-11")
        );
        assert_eq!(
            business_date(at("2026-12-31T21:00:00Z")),
            date("2027-01-01")
        );
    }

    #[test]
    fn history_keeps_the_offsets_moscow_had_then() {
        // 2012: UTC+4 all year. 20:30 UTC was 00:30 the next day; a fixed UTC+3 would say 23:30.
        assert_eq!(
            business_date(at("2012-06-01T20:30:00Z")),
            date("2012-06-02")
        );
        // 2010, winter: UTC+3; summer: UTC+4.
        assert_eq!(
            business_date(at("2010-01-15T20:30:00Z")),
            date("2010-01-15")
        );
        assert_eq!(
            business_date(at("2010-07-15T20:30:00Z")),
            date("2010-07-16")
        );
        // The last change: 26 October 2014, 02:00 local went back to 01:00 (UTC+4 → UTC+3).
        assert_eq!(
            business_date(at("2014-10-25T20:30:00Z")),
            date("2014-10-26")
        );
        assert_eq!(
            business_date(at("2014-10-26T20:30:00Z")),
            date("2014-10-26")
        );
    }

    #[test]
    fn a_day_starts_at_moscow_midnight() {
        assert_eq!(day_start(date("2026-06-11")), at("2026-06-10T21:00:00Z"));
        assert_eq!(day_start(date("2012-06-02")), at("2012-06-01T20:00:00Z"));
        for day in ["2010-03-28", "2014-10-26", "2026-01-01"] {
            let start = day_start(date(day));
            assert_eq!(business_date(start), date(day));
            assert_eq!(
                business_date(start - chrono::Duration::seconds(1)),
                date(day).pred_opt().unwrap()
            );
        }
    }
}
