//! Booking: one maintenance or repair visit of a customer's vehicle, with one mechanic in one slot.
//!
//! Status machine (`NotBooked` before the first event), all of it in one function, `transition`:
//!
//! ```text
//! NotBooked --Book--> Scheduled --Start--> InProgress --Complete--> Completed
//!                     Scheduled --Reschedule--> Scheduled
//!                     Scheduled --Cancel--> Cancelled
//!                     Scheduled --MarkNoShow--> NoShow
//! ```
//!
//! Invariants (`handle` enforces them, `apply` re-asserts them with `debug_assert!`):
//! - a booking always has a customer, a vehicle, a mechanic and a valid slot once booked;
//! - `Completed`, `Cancelled` and `NoShow` are terminal; a completed booking has a mileage, at
//!   least one line of work and a cost that is not negative.
//!
//! Rules:
//! - Book and Reschedule: the slot must not start before the moment of booking (a past visit is
//!   recorded by completing a booking, not by booking the past). Notes are trimmed, at most
//!   [`MAX_NOTES_CHARS`] characters. Rescheduling to the same mechanic and slot is a no-op.
//! - Start: the car is in the workshop; allowed any time while scheduled (customers come early).
//!   Starting a started booking is a no-op.
//! - Complete: only a started booking. Work lines are trimmed and blank lines dropped; at least one
//!   line, at most [`MAX_WORK_LINES`] lines of at most [`MAX_WORK_LINE_CHARS`] characters. The cost
//!   may be zero (warranty and goodwill work) but never negative; it is recorded as given, no
//!   rounding. Completing again with the same mileage, work and cost is a no-op, so a retry is safe.
//!   The mileage is checked against the vehicle's odometer by the Vehicle aggregate, not here.
//! - Cancel: only while scheduled, with a reason. Work that has started is completed (perhaps at
//!   zero cost), never cancelled. Cancelling a cancelled booking is a no-op.
//! - MarkNoShow: only while scheduled and only once the slot has started. Marking again is a no-op.
//!
//! The slot is claimed on the mechanic's day (see [`super::MechanicDay`]) by the command layer
//! before a booking or rescheduling is recorded here.

use std::fmt;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::slot::{MechanicCode, Slot};
use crate::money::Money;

/// The longest notes on a booking.
pub const MAX_NOTES_CHARS: usize = 2000;
/// The most lines of work a completion records.
pub const MAX_WORK_LINES: usize = 100;
/// The longest line of work.
pub const MAX_WORK_LINE_CHARS: usize = 500;

/// What the visit is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ServiceKind {
    /// Scheduled maintenance (oil, filters, inspection).
    Maintenance,
    /// Fixing a fault.
    Repair,
}

impl ServiceKind {
    /// The stable upper-case name used by the API and the read models.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceKind::Maintenance => "MAINTENANCE",
            ServiceKind::Repair => "REPAIR",
        }
    }
}

/// Where a booking is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum BookingStatus {
    /// No event yet: the booking does not exist as far as the ledger knows.
    #[default]
    NotBooked,
    Scheduled,
    InProgress,
    Completed,
    Cancelled,
    NoShow,
}

impl BookingStatus {
    /// The stable upper-case name used by the API and the read models.
    pub fn as_str(self) -> &'static str {
        match self {
            BookingStatus::NotBooked => "NOT_BOOKED",
            BookingStatus::Scheduled => "SCHEDULED",
            BookingStatus::InProgress => "IN_PROGRESS",
            BookingStatus::Completed => "COMPLETED",
            BookingStatus::Cancelled => "CANCELLED",
            BookingStatus::NoShow => "NO_SHOW",
        }
    }

    /// Completed, cancelled and no-show bookings accept no further change.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            BookingStatus::Completed | BookingStatus::Cancelled | BookingStatus::NoShow
        )
    }
}

impl fmt::Display for BookingStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A new booking. The customer and vehicle are checked to exist by the command layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BookService {
    pub customer_id: Uuid,
    pub vehicle_id: Uuid,
    pub mechanic: MechanicCode,
    pub kind: ServiceKind,
    pub slot: Slot,
    pub notes: String,
    /// Now, by the caller's clock.
    pub booked_at: DateTime<Utc>,
}

/// What the workshop did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompleteService {
    /// The odometer when the car left the workshop, kilometres.
    pub mileage_km: u32,
    pub work: Vec<String>,
    pub cost: Money,
    pub completed_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum BookingCommand {
    Book(BookService),
    Reschedule {
        mechanic: MechanicCode,
        slot: Slot,
        rescheduled_at: DateTime<Utc>,
    },
    Start {
        started_at: DateTime<Utc>,
    },
    Complete(CompleteService),
    Cancel {
        reason: String,
        cancelled_at: DateTime<Utc>,
    },
    MarkNoShow {
        marked_at: DateTime<Utc>,
    },
}

/// What happened to a booking. The payloads are a public contract: see [`crate::upcasters`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum BookingEvent {
    ServiceBooked {
        customer_id: Uuid,
        vehicle_id: Uuid,
        mechanic: MechanicCode,
        kind: ServiceKind,
        slot: Slot,
        notes: String,
        booked_at: DateTime<Utc>,
    },
    BookingRescheduled {
        from_mechanic: MechanicCode,
        from_slot: Slot,
        mechanic: MechanicCode,
        slot: Slot,
        rescheduled_at: DateTime<Utc>,
    },
    BookingStarted {
        started_at: DateTime<Utc>,
    },
    BookingCompleted {
        mileage_km: u32,
        work: Vec<String>,
        cost: Money,
        completed_at: DateTime<Utc>,
    },
    BookingCancelled {
        reason: String,
        cancelled_at: DateTime<Utc>,
    },
    BookingMarkedNoShow {
        marked_at: DateTime<Utc>,
    },
}

impl DomainEvent for BookingEvent {
    fn event_type(&self) -> String {
        let name = match self {
            BookingEvent::ServiceBooked { .. } => "ServiceBooked",
            BookingEvent::BookingRescheduled { .. } => "BookingRescheduled",
            BookingEvent::BookingStarted { .. } => "BookingStarted",
            BookingEvent::BookingCompleted { .. } => "BookingCompleted",
            BookingEvent::BookingCancelled { .. } => "BookingCancelled",
            BookingEvent::BookingMarkedNoShow { .. } => "BookingMarkedNoShow",
        };
        name.to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

/// Why a booking command was refused. Nothing was emitted; the booking is unchanged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BookingError {
    /// The booking was never made. The caller reports "not found" (a wrong id).
    #[error("booking not found")]
    NotBooked,
    /// A booking with this id already exists. The caller reports a conflict (a reused id).
    #[error("booking already exists")]
    AlreadyBooked,
    /// The slot starts before the moment of booking. The caller picks a future slot.
    #[error("the slot starts at {start}, which is in the past")]
    SlotInPast { start: DateTime<Utc> },
    /// Notes longer than [`MAX_NOTES_CHARS`]. The caller shortens them.
    #[error("notes are limited to {MAX_NOTES_CHARS} characters")]
    NotesTooLong,
    /// Completing without any line of work. The caller asks what was done.
    #[error("at least one line of work is required")]
    NoWorkRecorded,
    /// More than [`MAX_WORK_LINES`] lines or a line over [`MAX_WORK_LINE_CHARS`] characters. The
    /// caller summarises.
    #[error(
        "work is limited to {MAX_WORK_LINES} lines of at most {MAX_WORK_LINE_CHARS} characters"
    )]
    WorkTooLong,
    /// A negative cost. The caller corrects it; refunds are a payment, not a negative service.
    #[error("the cost must not be negative")]
    NegativeCost,
    /// Cancelling without a reason. The caller asks for one.
    #[error("a reason for cancelling is required")]
    EmptyReason,
    /// Marking a no-show before the slot has started. The caller waits until `start`.
    #[error("a no-show can be recorded only once the slot has started ({start})")]
    NoShowBeforeStart { start: DateTime<Utc> },
    /// The booking's status does not allow this (e.g. completing a booking that was not started).
    /// The caller reports a conflict and shows the status; retrying will not help.
    #[error("cannot {action}: the booking is {from}")]
    InvalidTransition {
        from: BookingStatus,
        action: &'static str,
    },
}

impl BookingError {
    /// A stable, machine-readable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            BookingError::NotBooked => "NOT_FOUND",
            BookingError::AlreadyBooked => "BOOKING_ALREADY_EXISTS",
            BookingError::SlotInPast { .. } => "SLOT_IN_THE_PAST",
            BookingError::NotesTooLong
            | BookingError::NoWorkRecorded
            | BookingError::WorkTooLong
            | BookingError::NegativeCost
            | BookingError::EmptyReason => "VALIDATION",
            BookingError::NoShowBeforeStart { .. } => "NO_SHOW_BEFORE_START",
            BookingError::InvalidTransition { .. } => "INVALID_BOOKING_TRANSITION",
        }
    }
}

/// What a command asks the status machine to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Book,
    Reschedule,
    Start,
    Complete,
    Cancel,
    MarkNoShow,
}

impl Action {
    /// The verb phrase in [`BookingError::InvalidTransition`].
    fn name(self) -> &'static str {
        match self {
            Action::Book => "book",
            Action::Reschedule => "reschedule",
            Action::Start => "start",
            Action::Complete => "complete",
            Action::Cancel => "cancel",
            Action::MarkNoShow => "mark a no-show",
        }
    }
}

/// The whole status machine: where `action` from `from` leads, or why it may not be taken.
fn transition(from: BookingStatus, action: Action) -> Result<BookingStatus, BookingError> {
    use BookingStatus::{Cancelled, Completed, InProgress, NoShow, NotBooked, Scheduled};
    match (from, action) {
        (NotBooked, Action::Book) => Ok(Scheduled),
        (_, Action::Book) => Err(BookingError::AlreadyBooked),
        (NotBooked, _) => Err(BookingError::NotBooked),
        (Scheduled, Action::Reschedule) => Ok(Scheduled),
        (Scheduled, Action::Start) => Ok(InProgress),
        (InProgress, Action::Complete) => Ok(Completed),
        (Scheduled, Action::Cancel) => Ok(Cancelled),
        (Scheduled, Action::MarkNoShow) => Ok(NoShow),
        (from, action) => Err(BookingError::InvalidTransition {
            from,
            action: action.name(),
        }),
    }
}

/// What a completion recorded, kept so a repeated completion is recognised.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Completion {
    mileage_km: u32,
    work: Vec<String>,
    cost: Money,
}

/// The state a booking's decisions need.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Booking {
    status: BookingStatus,
    customer_id: Option<Uuid>,
    vehicle_id: Option<Uuid>,
    mechanic: Option<MechanicCode>,
    kind: Option<ServiceKind>,
    /// The slot now held; rescheduling replaces it.
    slot: Option<Slot>,
    completion: Option<Completion>,
}

impl Booking {
    pub fn status(&self) -> BookingStatus {
        self.status
    }

    pub fn customer_id(&self) -> Option<Uuid> {
        self.customer_id
    }

    pub fn vehicle_id(&self) -> Option<Uuid> {
        self.vehicle_id
    }

    pub fn mechanic(&self) -> Option<&MechanicCode> {
        self.mechanic.as_ref()
    }

    pub fn kind(&self) -> Option<ServiceKind> {
        self.kind
    }

    pub fn slot(&self) -> Option<Slot> {
        self.slot
    }

    /// The mileage a completed booking recorded.
    pub fn completed_mileage_km(&self) -> Option<u32> {
        self.completion.as_ref().map(|c| c.mileage_km)
    }

    /// Decides on `command` without changing anything: the event it would cause (`None` for a
    /// no-op), or why it is refused. The command layer asks this before it touches another
    /// aggregate, so a refusal there writes nothing anywhere.
    pub fn decide(&self, command: BookingCommand) -> Result<Option<BookingEvent>, BookingError> {
        let event = match command {
            BookingCommand::Book(book) => {
                transition(self.status, Action::Book)?;
                if book.slot.start() < book.booked_at {
                    return Err(BookingError::SlotInPast {
                        start: book.slot.start(),
                    });
                }
                Some(BookingEvent::ServiceBooked {
                    customer_id: book.customer_id,
                    vehicle_id: book.vehicle_id,
                    mechanic: book.mechanic,
                    kind: book.kind,
                    slot: book.slot,
                    notes: clean_notes(&book.notes)?,
                    booked_at: book.booked_at,
                })
            }
            BookingCommand::Reschedule {
                mechanic,
                slot,
                rescheduled_at,
            } => {
                transition(self.status, Action::Reschedule)?;
                let (Some(from_mechanic), Some(from_slot)) = (self.mechanic.clone(), self.slot)
                else {
                    return Err(BookingError::NotBooked);
                };
                if from_mechanic == mechanic && from_slot == slot {
                    return Ok(None);
                }
                if slot.start() < rescheduled_at {
                    return Err(BookingError::SlotInPast {
                        start: slot.start(),
                    });
                }
                Some(BookingEvent::BookingRescheduled {
                    from_mechanic,
                    from_slot,
                    mechanic,
                    slot,
                    rescheduled_at,
                })
            }
            BookingCommand::Start { started_at } => {
                if self.status == BookingStatus::InProgress {
                    return Ok(None);
                }
                transition(self.status, Action::Start)?;
                Some(BookingEvent::BookingStarted { started_at })
            }
            BookingCommand::Complete(complete) => {
                let completion = Completion {
                    mileage_km: complete.mileage_km,
                    work: clean_work(&complete.work)?,
                    cost: complete.cost,
                };
                if self.status == BookingStatus::Completed
                    && self.completion.as_ref() == Some(&completion)
                {
                    return Ok(None);
                }
                transition(self.status, Action::Complete)?;
                if completion.cost.is_negative() {
                    return Err(BookingError::NegativeCost);
                }
                Some(BookingEvent::BookingCompleted {
                    mileage_km: completion.mileage_km,
                    work: completion.work,
                    cost: completion.cost,
                    completed_at: complete.completed_at,
                })
            }
            BookingCommand::Cancel {
                reason,
                cancelled_at,
            } => {
                if self.status == BookingStatus::Cancelled {
                    return Ok(None);
                }
                transition(self.status, Action::Cancel)?;
                let reason = reason.trim();
                if reason.is_empty() {
                    return Err(BookingError::EmptyReason);
                }
                Some(BookingEvent::BookingCancelled {
                    reason: reason.to_owned(),
                    cancelled_at,
                })
            }
            BookingCommand::MarkNoShow { marked_at } => {
                if self.status == BookingStatus::NoShow {
                    return Ok(None);
                }
                transition(self.status, Action::MarkNoShow)?;
                if let Some(slot) = self.slot.filter(|slot| marked_at < slot.start()) {
                    return Err(BookingError::NoShowBeforeStart {
                        start: slot.start(),
                    });
                }
                Some(BookingEvent::BookingMarkedNoShow { marked_at })
            }
        };
        Ok(event)
    }

    /// Moves to `to`, re-asserting that the status machine allows it.
    fn advance(&mut self, action: Action, to: BookingStatus) {
        debug_assert_eq!(transition(self.status, action), Ok(to), "{action:?}");
        self.status = to;
    }
}

/// Notes trimmed, or why they are refused.
fn clean_notes(notes: &str) -> Result<String, BookingError> {
    let notes = notes.trim();
    if notes.chars().count() > MAX_NOTES_CHARS {
        return Err(BookingError::NotesTooLong);
    }
    Ok(notes.to_owned())
}

/// Work lines trimmed, blank ones dropped; at least one, within the limits.
pub(crate) fn clean_work(work: &[String]) -> Result<Vec<String>, BookingError> {
    let lines: Vec<String> = work
        .iter()
        .map(|line| line.trim())
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect();
    if lines.is_empty() {
        return Err(BookingError::NoWorkRecorded);
    }
    if lines.len() > MAX_WORK_LINES
        || lines
            .iter()
            .any(|line| line.chars().count() > MAX_WORK_LINE_CHARS)
    {
        return Err(BookingError::WorkTooLong);
    }
    Ok(lines)
}

impl Aggregate for Booking {
    const TYPE: &'static str = "Booking";
    type Command = BookingCommand;
    type Event = BookingEvent;
    type Error = BookingError;
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
            BookingEvent::ServiceBooked {
                customer_id,
                vehicle_id,
                mechanic,
                kind,
                slot,
                ..
            } => {
                self.advance(Action::Book, BookingStatus::Scheduled);
                self.customer_id = Some(customer_id);
                self.vehicle_id = Some(vehicle_id);
                self.mechanic = Some(mechanic);
                self.kind = Some(kind);
                self.slot = Some(slot);
            }
            BookingEvent::BookingRescheduled {
                from_slot,
                mechanic,
                slot,
                ..
            } => {
                self.advance(Action::Reschedule, BookingStatus::Scheduled);
                debug_assert_eq!(self.slot, Some(from_slot), "rescheduled from another slot");
                self.mechanic = Some(mechanic);
                self.slot = Some(slot);
            }
            BookingEvent::BookingStarted { .. } => {
                self.advance(Action::Start, BookingStatus::InProgress);
            }
            BookingEvent::BookingCompleted {
                mileage_km,
                work,
                cost,
                ..
            } => {
                self.advance(Action::Complete, BookingStatus::Completed);
                debug_assert!(!work.is_empty(), "completed without work");
                debug_assert!(!cost.is_negative(), "completed at a negative cost");
                self.completion = Some(Completion {
                    mileage_km,
                    work,
                    cost,
                });
            }
            BookingEvent::BookingCancelled { .. } => {
                self.advance(Action::Cancel, BookingStatus::Cancelled);
            }
            BookingEvent::BookingMarkedNoShow { .. } => {
                self.advance(Action::MarkNoShow, BookingStatus::NoShow);
            }
        }
    }
}

#[cfg(test)]
mod tests;
