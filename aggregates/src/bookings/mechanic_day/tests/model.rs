//! The mechanic's day's reference model: claims as sets of half-hour cells.

use std::collections::BTreeSet;

use chrono::{Duration, NaiveDate};
use proptest::prelude::*;

use super::super::*;
use super::at;
use crate::test_support::{Model, assert_reached, reached, run_against_model, run_alone};

/// The half-hour cells a slot covers, counted from the Unix epoch: two slots overlap exactly when
/// their cells intersect. Written without [`Slot::overlaps`], so a wrong comparison there shows.
fn cells(slot: &Slot) -> BTreeSet<i64> {
    let cell = |instant: DateTime<Utc>| instant.timestamp().div_euclid(30 * 60);
    (cell(slot.start())..cell(slot.end())).collect()
}

/// The date of the slot's start in Moscow time (UTC+3 all year).
fn moscow_date(slot: &Slot) -> NaiveDate {
    (slot.start() + Duration::hours(3)).date_naive()
}

#[derive(Clone, Debug, PartialEq)]
struct ModelClaim {
    booking_id: Uuid,
    slot: Slot,
    claimed_at: DateTime<Utc>,
}

#[derive(Clone, Debug, Default)]
struct MechanicDayModel {
    /// Fixed by the first claim ever made.
    owner: Option<(MechanicCode, NaiveDate)>,
    /// Live claims, oldest first.
    claims: Vec<ModelClaim>,
}

impl Model<MechanicDay> for MechanicDayModel {
    type Step = MechanicDayCommand;

    fn command(&self, step: &MechanicDayCommand) -> MechanicDayCommand {
        step.clone()
    }

    fn step(
        &mut self,
        command: &MechanicDayCommand,
    ) -> Result<Vec<MechanicDayEvent>, MechanicDayError> {
        match command {
            MechanicDayCommand::Claim {
                mechanic,
                day,
                booking_id,
                slot,
                claimed_at,
            } => {
                let named = (mechanic.clone(), *day);
                if self.owner.as_ref().is_some_and(|owner| *owner != named)
                    || moscow_date(slot) != *day
                {
                    return Err(MechanicDayError::NotThisMechanicDay {
                        mechanic: mechanic.clone(),
                        day: *day,
                        slot: *slot,
                    });
                }
                if self
                    .claims
                    .iter()
                    .any(|claim| claim.booking_id == *booking_id && claim.slot == *slot)
                {
                    return Ok(vec![]);
                }
                let wanted = cells(slot);
                if let Some(holder) = self.claims.iter().find(|claim| {
                    claim.booking_id != *booking_id && !cells(&claim.slot).is_disjoint(&wanted)
                }) {
                    return Err(MechanicDayError::Busy {
                        booking_id: holder.booking_id,
                        slot: holder.slot,
                    });
                }
                self.owner = Some(named);
                self.claims.push(ModelClaim {
                    booking_id: *booking_id,
                    slot: *slot,
                    claimed_at: *claimed_at,
                });
                Ok(vec![MechanicDayEvent::SlotClaimed {
                    mechanic: mechanic.clone(),
                    day: *day,
                    booking_id: *booking_id,
                    slot: *slot,
                    claimed_at: *claimed_at,
                }])
            }
            MechanicDayCommand::Release {
                booking_id,
                slot,
                released_at,
            } => {
                let before = self.claims.len();
                self.claims
                    .retain(|claim| !(claim.booking_id == *booking_id && claim.slot == *slot));
                if self.claims.len() == before {
                    return Ok(vec![]);
                }
                Ok(vec![MechanicDayEvent::SlotReleased {
                    booking_id: *booking_id,
                    slot: *slot,
                    released_at: *released_at,
                }])
            }
        }
    }

    fn check(&self, mechanic_day: &MechanicDay) -> Result<(), TestCaseError> {
        prop_assert_eq!(mechanic_day.mechanic(), self.owner.as_ref().map(|(m, _)| m));
        prop_assert_eq!(mechanic_day.day(), self.owner.as_ref().map(|(_, d)| *d));
        let claims: Vec<ModelClaim> = mechanic_day
            .claims()
            .iter()
            .map(|claim| ModelClaim {
                booking_id: claim.booking_id,
                slot: claim.slot,
                claimed_at: claim.claimed_at,
            })
            .collect();
        prop_assert_eq!(claims, self.claims.clone());
        Ok(())
    }
}

/// A slot on 15 or 16 March 2030: mostly from a few that overlap each other (so claims collide and
/// releases find what was claimed), sometimes any bookable one.
fn any_slot() -> impl Strategy<Value = Slot> {
    // Half-hour steps from 08:00 Moscow time (05:00 UTC).
    let slot = |day: u32, from: u32, to: u32| {
        let instant = |step: u32| {
            at(&format!("2030-03-{day}T05:00:00Z")) + Duration::minutes(i64::from(step) * 30)
        };
        Slot::new(instant(from), instant(to)).unwrap()
    };
    let common = prop::sample::select(vec![
        (4, 8),
        (6, 10),
        (8, 12),
        (0, 2),
        (2, 4),
        (22, 24),
        (4, 5),
    ]);
    let any =
        (0..24u32, 1..=16u32).prop_filter("within the day", |(from, length)| from + length <= 24);
    prop_oneof![
        4 => (15..=15u32, common).prop_map(move |(day, (from, to))| slot(day, from, to)),
        2 => (15..=15u32, any.clone()).prop_map(move |(day, (from, length))| slot(day, from, from + length)),
        1 => (16..=16u32, any).prop_map(move |(day, (from, length))| slot(day, from, from + length)),
    ]
}

fn command() -> impl Strategy<Value = MechanicDayCommand> {
    let booking = (1..=4u128).prop_map(Uuid::from_u128);
    let when =
        prop::sample::select(vec!["2030-03-01T09:00:00Z", "2030-03-02T12:30:00Z"]).prop_map(at);
    let mechanic = prop::sample::select(vec!["M-017", "M-017", "M-018"])
        .prop_map(|code| MechanicCode::parse(code).unwrap());
    let day = prop::sample::select(vec![15u32, 15, 16])
        .prop_map(|day| NaiveDate::from_ymd_opt(2030, 3, day).unwrap());
    prop_oneof![
        3 => (mechanic, day, booking.clone(), any_slot(), when.clone()).prop_map(
            |(mechanic, day, booking_id, slot, claimed_at)| MechanicDayCommand::Claim {
                mechanic, day, booking_id, slot, claimed_at,
            }
        ),
        2 => (booking, any_slot(), when).prop_map(|(booking_id, slot, released_at)| {
            MechanicDayCommand::Release { booking_id, slot, released_at }
        }),
    ]
}

fn commands() -> impl Strategy<Value = Vec<MechanicDayCommand>> {
    prop::collection::vec(command(), 0..60)
}

proptest! {
    /// Every decision and the live claims (in order) equal the model's. Guards (each checked by
    /// changing the aggregate so, and seeing this fail): an overlap test that misses a slot starting
    /// earlier and ending inside another, one that refuses back-to-back slots, a release that frees
    /// every claim of the booking, a retried claim recorded twice, a claim accepted on a stream of
    /// another day.
    #[test]
    fn a_mechanic_day_decides_and_shows_what_the_model_does(steps in commands()) {
        run_against_model::<MechanicDay, _>(MechanicDayModel::default(), &steps)?;
    }

    /// No two claimed slots of different bookings ever share a half-hour (checked with cells, not
    /// with `Slot::overlaps`), and every claim lies on the stream's day, read from the aggregate
    /// alone. Guards: an overlap test that misses a slot starting earlier and ending inside another.
    #[test]
    fn no_two_bookings_ever_hold_overlapping_slots(steps in commands()) {
        let outcomes = run_alone::<MechanicDay, _>(MechanicDayModel::default(), &steps);
        for outcome in outcomes {
            let claims = outcome.after.claims();
            for (i, a) in claims.iter().enumerate() {
                prop_assert_eq!(Some(moscow_date(&a.slot)), outcome.after.day());
                for b in &claims[i + 1..] {
                    prop_assert!(
                        a.booking_id == b.booking_id || cells(&a.slot).is_disjoint(&cells(&b.slot)),
                        "{:?} overlaps {:?}", a, b
                    );
                }
            }
        }
    }
}

/// The generator reaches every event and every refusal, so the properties above compare them all.
#[test]
fn the_generated_commands_reach_every_event_and_refusal() {
    let seen = reached::<MechanicDay, _, _>(MechanicDayModel::default(), commands(), 128);
    assert_reached(
        &seen,
        &["SlotClaimed", "SlotReleased", "Busy", "NotThisMechanicDay"],
    );
}
