//! MechanicDay: the slots one mechanic is booked for on one calendar day (dealership time).
//!
//! Its id is [`mechanic_day_id`](super::mechanic_day_id)`(mechanic, day)`, so every booking of that
//! mechanic on that day writes to this one stream and the store's optimistic lock serialises them.
//!
//! Invariant (`handle` enforces it, `apply` re-asserts it with `debug_assert!`): claims of two
//! different bookings never overlap. One booking may hold several claims for a moment (while it is
//! rescheduled, the new slot is claimed before the old one is released), and its own claims may
//! overlap each other.
//!
//! Rules:
//! - Claim: the slot must lie on this stream's day and the command must name this stream's
//!   mechanic and day (the first claim fixes them). A slot that overlaps another booking's claim is
//!   refused with [`MechanicDayError::Busy`], naming the holder. Claiming a slot the booking already
//!   holds is a no-op, so a retried booking is safe.
//! - Release: frees one claim of one booking. Releasing a claim that is not held is a no-op, so a
//!   retried cancellation or a repair is safe.

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::slot::{MechanicCode, Slot};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum MechanicDayCommand {
    Claim {
        mechanic: MechanicCode,
        day: NaiveDate,
        booking_id: Uuid,
        slot: Slot,
        claimed_at: DateTime<Utc>,
    },
    Release {
        booking_id: Uuid,
        slot: Slot,
        released_at: DateTime<Utc>,
    },
}

/// What happened to a mechanic's day. The payloads are a public contract: see [`crate::upcasters`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum MechanicDayEvent {
    SlotClaimed {
        mechanic: MechanicCode,
        day: NaiveDate,
        booking_id: Uuid,
        slot: Slot,
        claimed_at: DateTime<Utc>,
    },
    SlotReleased {
        booking_id: Uuid,
        slot: Slot,
        released_at: DateTime<Utc>,
    },
}

impl DomainEvent for MechanicDayEvent {
    fn event_type(&self) -> String {
        let name = match self {
            MechanicDayEvent::SlotClaimed { .. } => "SlotClaimed",
            MechanicDayEvent::SlotReleased { .. } => "SlotReleased",
        };
        name.to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

/// Why a claim was refused. Nothing was emitted; the day is unchanged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MechanicDayError {
    /// Booking `booking_id` already holds an overlapping `slot`. The caller offers another time or
    /// another mechanic; retrying the same slot will not help until that booking lets it go.
    #[error("the mechanic is already booked for {slot} (booking {booking_id})")]
    Busy { booking_id: Uuid, slot: Slot },
    /// The slot does not lie on this day, or the command names another mechanic or day than the
    /// stream holds: the stream id was not derived from them. The caller reports invalid input.
    #[error("slot {slot} does not belong to {mechanic} on {day}")]
    NotThisMechanicDay {
        mechanic: MechanicCode,
        day: NaiveDate,
        slot: Slot,
    },
}

impl MechanicDayError {
    /// A stable, machine-readable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            MechanicDayError::Busy { .. } => "MECHANIC_BUSY",
            MechanicDayError::NotThisMechanicDay { .. } => "VALIDATION",
        }
    }
}

/// One booking's hold on one slot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub booking_id: Uuid,
    pub slot: Slot,
    /// When it was claimed: the command layer treats a claim of a booking that never came to exist
    /// as stale only after a while (see `commands::bookings`).
    pub claimed_at: DateTime<Utc>,
}

/// The day's claims, in the order they were made.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MechanicDay {
    /// Fixed by the first claim; every later claim must name the same.
    mechanic: Option<MechanicCode>,
    day: Option<NaiveDate>,
    claims: Vec<Claim>,
}

impl MechanicDay {
    pub fn mechanic(&self) -> Option<&MechanicCode> {
        self.mechanic.as_ref()
    }

    pub fn day(&self) -> Option<NaiveDate> {
        self.day
    }

    /// The live claims, in the order they were made.
    pub fn claims(&self) -> &[Claim] {
        &self.claims
    }

    /// The claim of another booking that overlaps `slot`, if any.
    pub fn conflicting(&self, booking_id: Uuid, slot: &Slot) -> Option<&Claim> {
        self.claims
            .iter()
            .find(|claim| claim.booking_id != booking_id && claim.slot.overlaps(slot))
    }

    fn holds(&self, booking_id: Uuid, slot: &Slot) -> bool {
        self.claims
            .iter()
            .any(|claim| claim.booking_id == booking_id && claim.slot == *slot)
    }

    /// Decides on `command`: the event it causes, `None` for a no-op, or why it is refused.
    fn decide(
        &self,
        command: MechanicDayCommand,
    ) -> Result<Option<MechanicDayEvent>, MechanicDayError> {
        let event = match command {
            MechanicDayCommand::Claim {
                mechanic,
                day,
                booking_id,
                slot,
                claimed_at,
            } => {
                let foreign = self.mechanic.as_ref().is_some_and(|m| *m != mechanic)
                    || self.day.is_some_and(|d| d != day);
                if foreign || slot.day() != day {
                    return Err(MechanicDayError::NotThisMechanicDay {
                        mechanic,
                        day,
                        slot,
                    });
                }
                if self.holds(booking_id, &slot) {
                    return Ok(None);
                }
                if let Some(claim) = self.conflicting(booking_id, &slot) {
                    return Err(MechanicDayError::Busy {
                        booking_id: claim.booking_id,
                        slot: claim.slot,
                    });
                }
                Some(MechanicDayEvent::SlotClaimed {
                    mechanic,
                    day,
                    booking_id,
                    slot,
                    claimed_at,
                })
            }
            MechanicDayCommand::Release {
                booking_id,
                slot,
                released_at,
            } => self
                .holds(booking_id, &slot)
                .then_some(MechanicDayEvent::SlotReleased {
                    booking_id,
                    slot,
                    released_at,
                }),
        };
        Ok(event)
    }
}

impl Aggregate for MechanicDay {
    const TYPE: &'static str = "MechanicDay";
    type Command = MechanicDayCommand;
    type Event = MechanicDayEvent;
    type Error = MechanicDayError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        if let Some(event) = self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    /// Folds an event in. Never fails: stored history is the truth.
    fn apply(&mut self, event: Self::Event) {
        match event {
            MechanicDayEvent::SlotClaimed {
                mechanic,
                day,
                booking_id,
                slot,
                claimed_at,
            } => {
                debug_assert!(
                    self.conflicting(booking_id, &slot).is_none(),
                    "claim {slot} overlaps another booking's claim"
                );
                debug_assert_eq!(slot.day(), day, "claim on another day");
                self.mechanic = Some(mechanic);
                self.day = Some(day);
                self.claims.push(Claim {
                    booking_id,
                    slot,
                    claimed_at,
                });
            }
            MechanicDayEvent::SlotReleased {
                booking_id, slot, ..
            } => {
                debug_assert!(self.holds(booking_id, &slot), "released an unheld claim");
                self.claims
                    .retain(|claim| !(claim.booking_id == booking_id && claim.slot == slot));
            }
        }
    }
}

#[cfg(test)]
mod tests;
