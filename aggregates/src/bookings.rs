//! The workshop: service bookings (maintenance and repair) and the mechanics' days they occupy.
//!
//! Two aggregates, because two different things must stay consistent:
//! - [`Booking`]: one visit of one customer's vehicle, from scheduling to completion, cancellation
//!   or no-show. It knows its own slot and mechanic.
//! - [`MechanicDay`]: one mechanic's claimed slots on one calendar day (dealership time). It is the
//!   consistency boundary for "a mechanic is never booked for two overlapping slots": every booking
//!   of that mechanic on that day appends to this one stream, so two racing bookings meet at the
//!   store's optimistic lock, and the loser is re-decided against the winner's claim and refused
//!   with `MECHANIC_BUSY`. Its id is derived, never chosen: [`mechanic_day_id`].
//!
//! Mechanics are staff members, not aggregates of their own: a [`MechanicCode`] is the short staff
//! code the workshop already uses on job cards (e.g. `M-017`). Nothing checks that a code belongs to
//! someone on the payroll; that list lives in the staff system.
//!
//! Slot rules ([`Slot::new`]), the workshop's opening hours as a customer would read them:
//! - times are UTC instants; the workshop works 08:00–20:00 dealership time, Europe/Moscow
//!   ([`crate::calendar`]);
//! - a slot `[start, end)` starts before it ends, starts and ends on a full or half hour, lasts at
//!   most [`MAX_SLOT_HOURS`] hours, and lies inside one working day (start at 08:00 or later, end at
//!   20:00 or earlier, same date); that date is the slot's [`Slot::day`];
//! - two slots overlap when each starts before the other ends (back-to-back slots do not).

mod booking;
mod mechanic_day;
mod slot;

pub use booking::{
    BookService, Booking, BookingCommand, BookingError, BookingEvent, BookingStatus,
    CompleteService, MAX_NOTES_CHARS, MAX_WORK_LINE_CHARS, MAX_WORK_LINES, ServiceKind,
};
pub use mechanic_day::{
    Claim, MechanicDay, MechanicDayCommand, MechanicDayError, MechanicDayEvent,
};
pub use slot::{
    CLOSES_AT_HOUR, InvalidMechanicCode, MAX_MECHANIC_CODE_CHARS, MAX_SLOT_HOURS,
    MECHANIC_DAY_NAMESPACE, MechanicCode, OPENS_AT_HOUR, SLOT_STEP_MINUTES, Slot, SlotError,
    mechanic_day_id,
};

/// Why a workshop command was refused, whichever of the two aggregates refused it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WorkshopError {
    /// The booking refused; see [`BookingError`].
    #[error(transparent)]
    Booking(#[from] BookingError),
    /// The mechanic's day refused; see [`MechanicDayError`].
    #[error(transparent)]
    MechanicDay(#[from] MechanicDayError),
    /// The slot breaks the slot rules; see [`SlotError`].
    #[error(transparent)]
    Slot(#[from] SlotError),
    /// The mechanic id is not a staff code. The caller asks for the code on the job card.
    #[error(transparent)]
    MechanicCode(#[from] InvalidMechanicCode),
}

impl WorkshopError {
    /// A stable, machine-readable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            WorkshopError::Booking(err) => err.code(),
            WorkshopError::MechanicDay(err) => err.code(),
            WorkshopError::Slot(err) => err.code(),
            WorkshopError::MechanicCode(_) => "VALIDATION",
        }
    }
}
