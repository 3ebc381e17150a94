//! The booking's reference model: its status machine as a table, and its rules from the docs.

use proptest::prelude::*;

use super::super::*;
use super::{at, mechanic, rub, slot};
use crate::test_support::{Model, assert_reached, reached, run_against_model, run_alone};

use BookingStatus::{Cancelled, Completed, InProgress, NoShow, NotBooked, Scheduled};

/// The documented status machine, edge by edge (a no-op keeps the status and is not listed).
const EDGES: [(BookingStatus, BookingStatus); 6] = [
    (NotBooked, Scheduled),
    (Scheduled, Scheduled),
    (Scheduled, InProgress),
    (InProgress, Completed),
    (Scheduled, Cancelled),
    (Scheduled, NoShow),
];

#[derive(Clone, Debug, PartialEq)]
struct Visit {
    customer_id: Uuid,
    vehicle_id: Uuid,
    mechanic: MechanicCode,
    kind: ServiceKind,
    slot: Slot,
}

#[derive(Clone, Debug, Default)]
struct BookingModel {
    status: BookingStatus,
    visit: Option<Visit>,
    /// Mileage, work and cost of the completion.
    completion: Option<(u32, Vec<String>, Money)>,
}

fn refuse(from: BookingStatus, action: &'static str) -> BookingError {
    if from == NotBooked {
        BookingError::NotBooked
    } else {
        BookingError::InvalidTransition { from, action }
    }
}

impl Model<Booking> for BookingModel {
    type Step = BookingCommand;

    fn command(&self, step: &BookingCommand) -> BookingCommand {
        step.clone()
    }

    fn step(&mut self, command: &BookingCommand) -> Result<Vec<BookingEvent>, BookingError> {
        let status = self.status;
        let event = match command {
            BookingCommand::Book(book) => {
                if status != NotBooked {
                    return Err(BookingError::AlreadyBooked);
                }
                if book.slot.start() < book.booked_at {
                    return Err(BookingError::SlotInPast {
                        start: book.slot.start(),
                    });
                }
                let notes = book.notes.trim();
                if notes.chars().count() > MAX_NOTES_CHARS {
                    return Err(BookingError::NotesTooLong);
                }
                self.visit = Some(Visit {
                    customer_id: book.customer_id,
                    vehicle_id: book.vehicle_id,
                    mechanic: book.mechanic.clone(),
                    kind: book.kind,
                    slot: book.slot,
                });
                self.status = Scheduled;
                BookingEvent::ServiceBooked {
                    customer_id: book.customer_id,
                    vehicle_id: book.vehicle_id,
                    mechanic: book.mechanic.clone(),
                    kind: book.kind,
                    slot: book.slot,
                    notes: notes.to_owned(),
                    booked_at: book.booked_at,
                }
            }
            BookingCommand::Reschedule {
                mechanic,
                slot,
                rescheduled_at,
            } => {
                if status != Scheduled {
                    return Err(refuse(status, "reschedule"));
                }
                let visit = self
                    .visit
                    .as_mut()
                    .expect("a scheduled booking has a visit");
                if visit.mechanic == *mechanic && visit.slot == *slot {
                    return Ok(vec![]);
                }
                if slot.start() < *rescheduled_at {
                    return Err(BookingError::SlotInPast {
                        start: slot.start(),
                    });
                }
                let event = BookingEvent::BookingRescheduled {
                    from_mechanic: visit.mechanic.clone(),
                    from_slot: visit.slot,
                    mechanic: mechanic.clone(),
                    slot: *slot,
                    rescheduled_at: *rescheduled_at,
                };
                visit.mechanic = mechanic.clone();
                visit.slot = *slot;
                event
            }
            BookingCommand::Start { started_at } => match status {
                InProgress => return Ok(vec![]),
                Scheduled => {
                    self.status = InProgress;
                    BookingEvent::BookingStarted {
                        started_at: *started_at,
                    }
                }
                other => return Err(refuse(other, "start")),
            },
            BookingCommand::Complete(complete) => {
                let work: Vec<String> = complete
                    .work
                    .iter()
                    .map(|line| line.trim().to_owned())
                    .filter(|line| !line.is_empty())
                    .collect();
                if work.is_empty() {
                    return Err(BookingError::NoWorkRecorded);
                }
                if work.len() > MAX_WORK_LINES
                    || work
                        .iter()
                        .any(|line| line.chars().count() > MAX_WORK_LINE_CHARS)
                {
                    return Err(BookingError::WorkTooLong);
                }
                let completion = (complete.mileage_km, work, complete.cost);
                if status == Completed && self.completion.as_ref() == Some(&completion) {
                    return Ok(vec![]);
                }
                if status != InProgress {
                    return Err(refuse(status, "complete"));
                }
                if complete.cost.is_negative() {
                    return Err(BookingError::NegativeCost);
                }
                self.status = Completed;
                self.completion = Some(completion.clone());
                BookingEvent::BookingCompleted {
                    mileage_km: completion.0,
                    work: completion.1,
                    cost: completion.2,
                    completed_at: complete.completed_at,
                }
            }
            BookingCommand::Cancel {
                reason,
                cancelled_at,
            } => match status {
                Cancelled => return Ok(vec![]),
                Scheduled if reason.trim().is_empty() => return Err(BookingError::EmptyReason),
                Scheduled => {
                    self.status = Cancelled;
                    BookingEvent::BookingCancelled {
                        reason: reason.trim().to_owned(),
                        cancelled_at: *cancelled_at,
                    }
                }
                other => return Err(refuse(other, "cancel")),
            },
            BookingCommand::MarkNoShow { marked_at } => match status {
                NoShow => return Ok(vec![]),
                Scheduled => {
                    let start = self.visit.as_ref().expect("scheduled").slot.start();
                    if *marked_at < start {
                        return Err(BookingError::NoShowBeforeStart { start });
                    }
                    self.status = NoShow;
                    BookingEvent::BookingMarkedNoShow {
                        marked_at: *marked_at,
                    }
                }
                other => return Err(refuse(other, "mark a no-show")),
            },
        };
        Ok(vec![event])
    }

    fn check(&self, booking: &Booking) -> Result<(), TestCaseError> {
        let visit = self.visit.as_ref();
        prop_assert_eq!(booking.status(), self.status);
        prop_assert_eq!(booking.customer_id(), visit.map(|v| v.customer_id));
        prop_assert_eq!(booking.vehicle_id(), visit.map(|v| v.vehicle_id));
        prop_assert_eq!(booking.mechanic(), visit.map(|v| &v.mechanic));
        prop_assert_eq!(booking.kind(), visit.map(|v| v.kind));
        prop_assert_eq!(booking.slot(), visit.map(|v| v.slot));
        prop_assert_eq!(
            booking.completed_mileage_km(),
            self.completion.as_ref().map(|c| c.0)
        );
        Ok(())
    }
}

fn command() -> impl Strategy<Value = BookingCommand> {
    let slots = prop::sample::select(vec![slot(10, 12), slot(14, 16), slot(8, 9), slot(19, 20)]);
    let mechanics = prop::sample::select(vec!["M-017", "M-020"]).prop_map(mechanic);
    // Before every slot, between them, after all of them.
    let instants = prop::sample::select(vec![
        "2030-03-01T09:00:00Z",
        "2030-03-15T06:00:00Z",
        "2030-03-15T07:00:00Z",
        "2030-03-15T09:30:00Z",
        "2030-03-15T18:00:00Z",
    ])
    .prop_map(at);
    let notes = prop::sample::select(vec![
        "  oil change  ".to_owned(),
        String::new(),
        format!(" {} ", "n".repeat(MAX_NOTES_CHARS)),
        "n".repeat(MAX_NOTES_CHARS + 1),
    ]);
    let book = (
        mechanics.clone(),
        prop::sample::select(vec![ServiceKind::Maintenance, ServiceKind::Repair]),
        slots.clone(),
        notes,
        instants.clone(),
    )
        .prop_map(|(mechanic, kind, slot, notes, booked_at)| {
            BookingCommand::Book(BookService {
                customer_id: Uuid::from_u128(0xc1),
                vehicle_id: Uuid::from_u128(0x01),
                mechanic,
                kind,
                slot,
                notes,
                booked_at,
            })
        });
    let reschedule =
        (mechanics, slots, instants.clone()).prop_map(|(mechanic, slot, rescheduled_at)| {
            BookingCommand::Reschedule {
                mechanic,
                slot,
                rescheduled_at,
            }
        });
    let line = |text: &str| text.to_owned();
    let work = prop::sample::select(vec![
        vec![line("oil and filter")],
        vec![line("  oil and filter "), line(" "), line("brake pads")],
        vec![line(" "), line("")],
        vec![line("w"); MAX_WORK_LINES + 1],
        vec![line(&"w".repeat(MAX_WORK_LINE_CHARS + 1))],
        vec![line(&format!(" {} ", "w".repeat(MAX_WORK_LINE_CHARS))); MAX_WORK_LINES],
    ]);
    let complete = (
        prop::sample::select(vec![42_000u32, 43_500]),
        work,
        prop::sample::select(vec!["8500", "0", "-0.01"]).prop_map(rub),
        instants.clone(),
    )
        .prop_map(|(mileage_km, work, cost, completed_at)| {
            BookingCommand::Complete(CompleteService {
                mileage_km,
                work,
                cost,
                completed_at,
            })
        });
    let cancel = (
        prop::sample::select(vec!["customer is abroad", "  car sold ", " \n"]),
        instants.clone(),
    )
        .prop_map(|(reason, cancelled_at)| BookingCommand::Cancel {
            reason: reason.to_owned(),
            cancelled_at,
        });
    prop_oneof![
        2 => book,
        1 => reschedule,
        2 => instants.clone().prop_map(|started_at| BookingCommand::Start { started_at }),
        2 => complete,
        1 => cancel,
        1 => instants.prop_map(|marked_at| BookingCommand::MarkNoShow { marked_at }),
    ]
}

fn commands() -> impl Strategy<Value = Vec<BookingCommand>> {
    prop::collection::vec(command(), 0..30)
}

proptest! {
    /// Every decision and everything the booking shows equal the model's. Guards (each checked by
    /// changing the aggregate so, and seeing this fail): starting a started booking refused instead
    /// of a no-op, cancelling work in progress, a completion that keeps blank lines of work, a
    /// no-show refused at the very start of the slot, `apply` keeping the old slot after a
    /// reschedule.
    #[test]
    fn a_booking_decides_and_shows_what_the_model_does(steps in commands()) {
        run_against_model::<Booking, _>(BookingModel::default(), &steps)?;
    }

    /// Every status change is an edge of the documented machine, and once finished a booking
    /// never changes, read from the aggregate alone. Guards: a transition the docs do not have
    /// (cancelling work in progress; rescheduling a started booking, which sends it back to
    /// scheduled).
    #[test]
    fn a_booking_moves_only_along_the_documented_status_machine(steps in commands()) {
        let outcomes = run_alone::<Booking, _>(BookingModel::default(), &steps);
        for outcome in outcomes {
            let (from, to) = (outcome.before.status(), outcome.after.status());
            let emitted = outcome.result.as_ref().is_ok_and(|events| !events.is_empty());
            if emitted {
                prop_assert!(EDGES.contains(&(from, to)), "{} -> {} by {:?}", from, to, outcome.command);
            } else {
                prop_assert_eq!(from, to);
            }
            if from.is_terminal() {
                prop_assert!(!emitted, "{} changed by {:?}", from, outcome.command);
            }
        }
    }
}

/// The generator reaches every event and every refusal, so the properties above compare them all.
#[test]
fn the_generated_commands_reach_every_event_and_refusal() {
    let seen = reached::<Booking, _, _>(BookingModel::default(), commands(), 256);
    assert_reached(
        &seen,
        &[
            "ServiceBooked",
            "BookingRescheduled",
            "BookingStarted",
            "BookingCompleted",
            "BookingCancelled",
            "BookingMarkedNoShow",
            "NotBooked",
            "AlreadyBooked",
            "SlotInPast",
            "NotesTooLong",
            "NoWorkRecorded",
            "WorkTooLong",
            "NegativeCost",
            "EmptyReason",
            "NoShowBeforeStart",
            "InvalidTransition",
        ],
    );
}
