//! The workshop's command side: booking, rescheduling, starting, completing, cancelling and no-shows,
//! across three aggregates (Booking, MechanicDay, Vehicle), and their GraphQL mutations.
//!
//! # Steps across aggregates, and what happens when one fails
//!
//! No distributed transaction: each operation is a sequence of single-stream appends ordered so that
//! every failure leaves something visible and repairable, never a silent inconsistency. Before any
//! write, the booking's own decision is taken on its current state ([`Booking::decide`]), so a
//! refusal by the booking writes nothing anywhere.
//!
//! - **Book**: (1) claim the slot on the mechanic's day; refused (`MECHANIC_BUSY`): nothing written.
//!   (2) record the booking; refused: release the claim. Claiming again for the same booking and slot
//!   is a no-op, so retrying `bookService` finishes a half-done booking.
//! - **Reschedule**: (1) claim the new slot (the booking may hold old and new for a moment);
//!   (2) record the new slot, or release the new claim if that is refused; (3) release the old claim.
//! - **Complete**: (1) append the service to the vehicle's history (refused when the mileage is below
//!   the odometer: nothing written); (2) complete the booking. A retry with the same input finds the
//!   vehicle's record already there (a no-op) and completes the booking. The slot stays claimed: the
//!   mechanic did spend that time.
//! - **Cancel / no-show**: (1) record it on the booking; (2) release the slot for other customers.
//!   Repeating either is a no-op that tries the release again.
//! - **Start**: the booking alone.
//!
//! If a release fails (the store is unreachable), the error is logged and the claim stays. Such a
//! claim is *stale* and is released by the next booking that needs the slot: a claim whose booking is
//! cancelled or a no-show, or one older than [`STALE_CLAIM_AFTER_MINUTES`] whose booking does not
//! hold that mechanic and slot (never created, or moved away). Completed, started and scheduled
//! bookings' claims are never stale. The `MECHANIC_BUSY` message names the holding booking, so staff
//! can look it up.
//!
//! # Who may book
//!
//! The customer must be registered and the vehicle stocked, in any status: a sold car is the
//! customer's own car coming back for service. The ledger keeps no registry of who owns which car,
//! so the pairing is the service advisor's.
//!
//! # Racing bookings
//!
//! Every claim on one mechanic's day appends to one stream, so of two racing claims one hits the
//! store's optimistic lock; [`Sender::execute`] re-decides it against the fresh state (where it is
//! refused when the slots overlap). Claims are retried for up to [`CLAIM_ROUNDS`] rounds of those
//! retries, enough for a full day of half-hour slots booked at once.

use std::sync::Arc;

use aggregates::bookings::{
    BookService, Booking, BookingCommand, BookingError, BookingStatus, CompleteService,
    MechanicCode, MechanicDay, MechanicDayCommand, MechanicDayError, ServiceKind, Slot,
    WorkshopError, mechanic_day_id,
};
use aggregates::customer::Customer;
use aggregates::money::Money;
use aggregates::vehicle::{Vehicle, VehicleCommand, VehicleStatus};
use async_graphql::{Context, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use eventstore::{Cqrs, Database, Store, Upcasters};
use queries::bookings::{Booking as BookingView, ServiceKind as ServiceKindInput};
use queries::input::{Id, IdempotencyKey, MechanicId, Notes, Reason, WorkLine};
use queries::scalars::{DateTime as DateTimeScalar, MoneyInput, Position};
use queries::{ApiError, ApiResult};
use serde_json::json;
use uuid::Uuid;

use crate::clock::{Clock, IdGenerator};
use crate::context::RequestContext;
use crate::error::CommandError;
use crate::mutations::{caller, idempotency, settle, to_api};
use crate::sender::{Call, Idempotency, Sender, Written};

/// Rounds of [`Sender::execute`] (each re-deciding after a few conflicts) a claim gets before the
/// caller is told `CONFLICT`.
pub const CLAIM_ROUNDS: usize = 12;
/// How old a claim whose booking does not hold it must be before another booking may release it.
pub const STALE_CLAIM_AFTER_MINUTES: i64 = 5;
/// How many stale claims one booking request releases at most before giving up with `MECHANIC_BUSY`.
const MAX_STALE_RELEASES: usize = 4;

impl From<BookingError> for CommandError {
    fn from(err: BookingError) -> Self {
        CommandError::Workshop(err.into())
    }
}

impl From<MechanicDayError> for CommandError {
    fn from(err: MechanicDayError) -> Self {
        CommandError::Workshop(err.into())
    }
}

/// What a new booking asks for; the slot and staff code are already valid.
#[derive(Clone, Debug, PartialEq)]
pub struct BookingRequest {
    pub customer_id: Uuid,
    pub vehicle_id: Uuid,
    pub mechanic: MechanicCode,
    pub kind: ServiceKind,
    pub slot: Slot,
    pub notes: String,
}

/// Sends the workshop's commands.
pub struct Bookings {
    sender: Sender,
    bookings: Cqrs<Booking>,
    days: Cqrs<MechanicDay>,
    vehicles: Cqrs<Vehicle>,
    booking_store: Store<Booking>,
    day_store: Store<MechanicDay>,
    customer_store: Store<Customer>,
    vehicle_store: Store<Vehicle>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
}

impl Bookings {
    pub fn new(
        db: Database,
        upcasters: Upcasters,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
    ) -> Self {
        Self {
            sender: Sender::new(&db, &upcasters),
            bookings: db.framework(&upcasters, ()),
            days: db.framework(&upcasters, ()),
            vehicles: db.framework(&upcasters, ()),
            booking_store: db.store(&upcasters),
            day_store: db.store(&upcasters),
            customer_store: db.store(&upcasters),
            vehicle_store: db.store(&upcasters),
            clock,
            ids,
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The id a new booking uses: the client's, or a new one.
    pub fn id_or_new(&self, id: Option<Uuid>, idempotency: Option<&Idempotency>) -> Uuid {
        crate::sender::aggregate_id(self.ids.as_ref(), id, idempotency)
    }

    /// Current state of a booking (write model; a never-made id gives the default state).
    pub async fn booking(&self, id: Uuid) -> Result<Booking, CommandError> {
        self.sender.load(&self.booking_store, id).await
    }

    /// Current claims of `mechanic` on `day` (write model).
    pub async fn mechanic_day(
        &self,
        mechanic: &MechanicCode,
        day: chrono::NaiveDate,
    ) -> Result<MechanicDay, CommandError> {
        self.sender
            .load(&self.day_store, mechanic_day_id(mechanic, day))
            .await
    }

    /// Books a service: claims the slot on the mechanic's day, then records the booking.
    pub async fn book_service(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        request: BookingRequest,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        if let Some(written) = self.sender.replay(id, idempotency).await? {
            return Ok(written);
        }
        if !self
            .sender
            .load(&self.customer_store, request.customer_id)
            .await?
            .is_registered()
        {
            return Err(CommandError::NotFound {
                what: "customer",
                id: request.customer_id.to_string(),
            });
        }
        let vehicle = self
            .sender
            .load(&self.vehicle_store, request.vehicle_id)
            .await?;
        if vehicle.status() == VehicleStatus::NotStocked {
            return Err(CommandError::NotFound {
                what: "vehicle",
                id: request.vehicle_id.to_string(),
            });
        }
        let (mechanic, slot) = (request.mechanic.clone(), request.slot);
        let command = BookingCommand::Book(BookService {
            customer_id: request.customer_id,
            vehicle_id: request.vehicle_id,
            mechanic: request.mechanic,
            kind: request.kind,
            slot: request.slot,
            notes: request.notes,
            booked_at: self.now(),
        });
        self.booking(id).await?.decide(command.clone())?;
        let call = Call::new(ctx, "BookService", idempotency);
        self.claim(call.step(), &mechanic, slot, id).await?;
        match self.sender.execute(&self.bookings, id, command, call).await {
            Ok(written) => Ok(written),
            Err(refused) => {
                // A duplicate request running alongside may have booked exactly this between our two
                // steps: then the claim is that booking's, and releasing it would let another booking
                // overlap it.
                let booking = self.booking(id).await?;
                let holds_this_claim = booking.status() == BookingStatus::Scheduled
                    && booking.mechanic() == Some(&mechanic)
                    && booking.slot() == Some(slot);
                if !holds_this_claim {
                    self.release(call.step(), &mechanic, slot, id).await;
                }
                Err(refused)
            }
        }
    }

    /// Moves a scheduled booking to another slot and/or mechanic.
    pub async fn reschedule_booking(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        mechanic: MechanicCode,
        slot: Slot,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        if let Some(written) = self.sender.replay(id, idempotency).await? {
            return Ok(written);
        }
        let booking = self.booking(id).await?;
        let command = BookingCommand::Reschedule {
            mechanic: mechanic.clone(),
            slot,
            rescheduled_at: self.now(),
        };
        let call = Call::new(ctx, "RescheduleBooking", idempotency);
        let (Some(_), Some(old_mechanic), Some(old_slot)) = (
            booking.decide(command.clone())?,
            booking.mechanic().cloned(),
            booking.slot(),
        ) else {
            // Nothing to move: the same mechanic and slot.
            return self.sender.execute(&self.bookings, id, command, call).await;
        };
        self.claim(call.step(), &mechanic, slot, id).await?;
        let written = match self.sender.execute(&self.bookings, id, command, call).await {
            Ok(written) => written,
            Err(refused) => {
                self.release(call.step(), &mechanic, slot, id).await;
                return Err(refused);
            }
        };
        let released = self.release(call.step(), &old_mechanic, old_slot, id).await;
        Ok(Written {
            position: written.position.max(released.unwrap_or(0)),
            ..written
        })
    }

    /// The car is in the workshop.
    pub async fn start_booking(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        let command = BookingCommand::Start {
            started_at: self.now(),
        };
        self.sender
            .execute(
                &self.bookings,
                id,
                command,
                Call::new(ctx, "StartBooking", idempotency),
            )
            .await
    }

    /// Records the vehicle's service, then completes the booking.
    pub async fn complete_booking(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        mileage_km: u32,
        work: Vec<String>,
        cost: Money,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        if let Some(written) = self.sender.replay(id, idempotency).await? {
            return Ok(written);
        }
        let booking = self.booking(id).await?;
        let completed_at = self.now();
        let command = BookingCommand::Complete(CompleteService {
            mileage_km,
            work: work.clone(),
            cost,
            completed_at,
        });
        booking.decide(command.clone())?;
        let vehicle_id = booking.vehicle_id().ok_or(BookingError::NotBooked)?;
        let call = Call::new(ctx, "CompleteBooking", idempotency);
        let recorded = self
            .sender
            .execute(
                &self.vehicles,
                vehicle_id,
                VehicleCommand::RecordService {
                    booking_id: id,
                    serviced_at: completed_at,
                    mileage_km,
                    work,
                    cost,
                },
                call.step(),
            )
            .await?;
        match self.sender.execute(&self.bookings, id, command, call).await {
            Ok(written) => Ok(Written {
                position: written.position.max(recorded.position),
                ..written
            }),
            Err(refused) => {
                tracing::error!(
                    booking = %id, vehicle = %vehicle_id, error = %refused,
                    "the service is in the vehicle's history but the booking could not be completed; \
                     retrying completeBooking with the same input completes it"
                );
                Err(refused)
            }
        }
    }

    /// Cancels a scheduled booking and frees its slot.
    pub async fn cancel_booking(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        reason: String,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        let command = BookingCommand::Cancel {
            reason,
            cancelled_at: self.now(),
        };
        self.finish_and_release(id, command, Call::new(ctx, "CancelBooking", idempotency))
            .await
    }

    /// Records that the customer did not come, once the slot has started, and frees the slot.
    pub async fn mark_booking_no_show(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        let command = BookingCommand::MarkNoShow {
            marked_at: self.now(),
        };
        self.finish_and_release(
            id,
            command,
            Call::new(ctx, "MarkBookingNoShow", idempotency),
        )
        .await
    }

    /// Sends a cancellation or no-show, then releases the booking's slot (also on a replayed retry,
    /// which is how a failed release is repaired).
    async fn finish_and_release(
        &self,
        id: Uuid,
        command: BookingCommand,
        call: Call<'_>,
    ) -> Result<Written, CommandError> {
        let written = match self.sender.replay(id, call.idempotency).await? {
            Some(written) => written,
            None => {
                self.sender
                    .execute(&self.bookings, id, command, call)
                    .await?
            }
        };
        let booking = self.booking(id).await?;
        if let (BookingStatus::Cancelled | BookingStatus::NoShow, Some(mechanic), Some(slot)) =
            (booking.status(), booking.mechanic(), booking.slot())
            && let Some(position) = self.release(call.step(), mechanic, slot, id).await
        {
            return Ok(Written {
                position: written.position.max(position),
                ..written
            });
        }
        Ok(written)
    }

    /// Claims `slot` on `mechanic`'s day for `booking_id`, re-deciding after conflicts and releasing
    /// stale claims in the way (see the module docs).
    async fn claim(
        &self,
        call: Call<'_>,
        mechanic: &MechanicCode,
        slot: Slot,
        booking_id: Uuid,
    ) -> Result<Written, CommandError> {
        let day_id = mechanic_day_id(mechanic, slot.day());
        let mut stale_released = 0;
        for _ in 0..CLAIM_ROUNDS {
            let command = MechanicDayCommand::Claim {
                mechanic: mechanic.clone(),
                day: slot.day(),
                booking_id,
                slot,
                claimed_at: self.now(),
            };
            match self.sender.execute(&self.days, day_id, command, call).await {
                Ok(written) => return Ok(written),
                Err(CommandError::Conflict { .. }) => continue,
                Err(CommandError::Workshop(WorkshopError::MechanicDay(
                    MechanicDayError::Busy {
                        booking_id: holder,
                        slot: held,
                    },
                ))) if stale_released < MAX_STALE_RELEASES
                    && self.is_stale(mechanic, held, holder).await? =>
                {
                    tracing::warn!(booking = %holder, mechanic = %mechanic, slot = %held, "releasing a stale claim");
                    self.release(call, mechanic, held, holder).await;
                    stale_released += 1;
                }
                Err(other) => return Err(other),
            }
        }
        Err(CommandError::Conflict {
            aggregate: MechanicDay::TYPE,
        })
    }

    /// Whether `holder`'s claim of `slot` on `mechanic`'s day may be released for someone else.
    async fn is_stale(
        &self,
        mechanic: &MechanicCode,
        slot: Slot,
        holder: Uuid,
    ) -> Result<bool, CommandError> {
        let booking = self.booking(holder).await?;
        match booking.status() {
            BookingStatus::Cancelled | BookingStatus::NoShow => return Ok(true),
            // A live booking keeps the claim of its own mechanic and slot; a claim it left behind
            // elsewhere (a reschedule whose release failed) is stale like any other.
            BookingStatus::Scheduled | BookingStatus::InProgress | BookingStatus::Completed
                if booking.mechanic() == Some(mechanic) && booking.slot() == Some(slot) =>
            {
                return Ok(false);
            }
            BookingStatus::Scheduled
            | BookingStatus::InProgress
            | BookingStatus::Completed
            | BookingStatus::NotBooked => {}
        }
        let day = self.mechanic_day(mechanic, slot.day()).await?;
        let claimed_at = day
            .claims()
            .iter()
            .find(|claim| claim.booking_id == holder && claim.slot == slot)
            .map(|claim| claim.claimed_at);
        Ok(claimed_at.is_some_and(|at| {
            self.now() - at > chrono::Duration::minutes(STALE_CLAIM_AFTER_MINUTES)
        }))
    }

    /// Releases one claim. A failure is logged, not returned: the claim stays visible and becomes
    /// stale (see the module docs). Returns the position written, if the release succeeded.
    async fn release(
        &self,
        call: Call<'_>,
        mechanic: &MechanicCode,
        slot: Slot,
        booking_id: Uuid,
    ) -> Option<i64> {
        let command = MechanicDayCommand::Release {
            booking_id,
            slot,
            released_at: self.now(),
        };
        let day_id = mechanic_day_id(mechanic, slot.day());
        match self.sender.execute(&self.days, day_id, command, call).await {
            Ok(written) => Some(written.position),
            Err(err) => {
                tracing::error!(
                    booking = %booking_id, mechanic = %mechanic, slot = %slot, error = %err,
                    "could not release a mechanic's slot; it stays claimed until a booking that \
                     needs it finds the claim stale"
                );
                None
            }
        }
    }
}

// ----- GraphQL -----

#[derive(InputObject, Clone, Debug)]
pub struct BookServiceInput {
    /// Client-chosen id (a new one is generated when absent).
    pub id: Option<Id>,
    pub customer_id: Id,
    pub vehicle_id: Id,
    /// The mechanic's staff code, e.g. "M-017": letters, digits and dashes. At most 16 characters.
    pub mechanic_id: MechanicId,
    pub kind: ServiceKindInput,
    /// Slot start: on a full or half hour, 08:00-20:00 Moscow time (UTC+3).
    pub start: DateTimeScalar,
    /// Slot end (exclusive): same day, at most 8 hours after the start.
    pub end: DateTimeScalar,
    /// Notes for the workshop; none when absent. At most 2000 characters; may span lines.
    pub notes: Option<Notes>,
}

#[derive(InputObject, Clone, Debug)]
pub struct CompleteBookingInput {
    /// The odometer when the car leaves, kilometres; never below the vehicle's last recorded one.
    pub mileage_km: i32,
    /// What was done, one line each, up to 100 lines. At most 500 characters per line.
    pub work: Vec<WorkLine>,
    /// What the work costs (zero for warranty work).
    pub cost: MoneyInput,
}

#[derive(SimpleObject)]
pub struct BookingPayload {
    /// The booking as the read model now shows it (null only if it could not catch up in time).
    pub booking: Option<BookingView>,
    /// Global position of the last event written.
    pub position: Position,
    /// True when this answered a retry with an already-used idempotency key and wrote nothing.
    pub replayed: bool,
}

/// Service bookings.
#[derive(Default)]
pub struct BookingsMutation;

fn bookings<'a>(ctx: &Context<'a>) -> ApiResult<&'a Bookings> {
    crate::mutations::service(ctx)
}

fn workshop(err: impl Into<WorkshopError>) -> ApiError {
    to_api(CommandError::Workshop(err.into()))
}

fn mechanic_and_slot(
    mechanic_id: &str,
    start: DateTimeScalar,
    end: DateTimeScalar,
) -> ApiResult<(MechanicCode, Slot)> {
    Ok((
        MechanicCode::parse(mechanic_id).map_err(workshop)?,
        Slot::new(start.0, end.0).map_err(workshop)?,
    ))
}

async fn booking_payload(ctx: &Context<'_>, written: Written) -> ApiResult<BookingPayload> {
    settle(ctx, &written).await?;
    Ok(BookingPayload {
        booking: queries::bookings::find(queries::read_models(ctx)?.pool(), written.id).await?,
        position: Position(written.position),
        replayed: written.replayed,
    })
}

#[Object]
impl BookingsMutation {
    /// Books a maintenance or repair visit with a mechanic. Refused with `MECHANIC_BUSY` when the
    /// mechanic already has an overlapping booking, and nothing is written.
    async fn book_service(
        &self,
        ctx: &Context<'_>,
        input: BookServiceInput,
        #[graphql(
            desc = "A retry with the same key and input answers the first result and writes nothing. At most 200 characters."
        )]
        idempotency_key: Option<IdempotencyKey>,
    ) -> async_graphql::Result<BookingPayload> {
        let fingerprint = json!({
            "id": input.id, "customerId": input.customer_id, "vehicleId": input.vehicle_id,
            "mechanicId": input.mechanic_id, "kind": input.kind, "start": input.start.0,
            "end": input.end.0, "notes": input.notes,
        });
        crate::mutations::ensure_own(ctx, crate::mutations::Owned::Customer(*input.customer_id))
            .await?;
        let key = idempotency(idempotency_key, "bookService", &fingerprint)?;
        let service = bookings(ctx)?;
        let (mechanic, slot) = mechanic_and_slot(&input.mechanic_id, input.start, input.end)?;
        let request = BookingRequest {
            customer_id: *input.customer_id,
            vehicle_id: *input.vehicle_id,
            mechanic,
            kind: input.kind.into(),
            slot,
            notes: input.notes.map(String::from).unwrap_or_default(),
        };
        let id = service.id_or_new(input.id.map(Id::uuid), key.as_ref());
        let written = service
            .book_service(&caller(ctx), id, request, key.as_ref())
            .await
            .map_err(to_api)?;
        Ok(booking_payload(ctx, written).await?)
    }

    /// Moves a scheduled booking to another slot and/or mechanic.
    async fn reschedule_booking(
        &self,
        ctx: &Context<'_>,
        id: Id,
        #[graphql(desc = "The mechanic's staff code, e.g. \"M-017\". At most 16 characters.")]
        mechanic_id: MechanicId,
        start: DateTimeScalar,
        end: DateTimeScalar,
        #[graphql(
            desc = "A retry with the same key and input answers the first result and writes nothing. At most 200 characters."
        )]
        idempotency_key: Option<IdempotencyKey>,
    ) -> async_graphql::Result<BookingPayload> {
        let id = id.uuid();
        let mechanic_id = String::from(mechanic_id);
        let fingerprint = json!([id, mechanic_id, start.0, end.0]);
        crate::mutations::ensure_own(ctx, crate::mutations::Owned::Booking(id)).await?;
        let key = idempotency(idempotency_key, "rescheduleBooking", &fingerprint)?;
        let (mechanic, slot) = mechanic_and_slot(&mechanic_id, start, end)?;
        let written = bookings(ctx)?
            .reschedule_booking(&caller(ctx), id, mechanic, slot, key.as_ref())
            .await
            .map_err(to_api)?;
        Ok(booking_payload(ctx, written).await?)
    }

    /// The car is in the workshop: work begins.
    async fn start_booking(
        &self,
        ctx: &Context<'_>,
        id: Id,
        #[graphql(
            desc = "A retry with the same key and input answers the first result and writes nothing. At most 200 characters."
        )]
        idempotency_key: Option<IdempotencyKey>,
    ) -> async_graphql::Result<BookingPayload> {
        let id = id.uuid();
        let key = idempotency(idempotency_key, "startBooking", &id)?;
        let written = bookings(ctx)?
            .start_booking(&caller(ctx), id, key.as_ref())
            .await
            .map_err(to_api)?;
        Ok(booking_payload(ctx, written).await?)
    }

    /// Completes a started booking: records mileage, work and cost, and appends the service to the
    /// vehicle's history. Refused with `MILEAGE_BELOW_LAST_RECORDED` when the odometer would go back.
    async fn complete_booking(
        &self,
        ctx: &Context<'_>,
        id: Id,
        input: CompleteBookingInput,
        #[graphql(
            desc = "A retry with the same key and input answers the first result and writes nothing. At most 200 characters."
        )]
        idempotency_key: IdempotencyKey,
    ) -> async_graphql::Result<BookingPayload> {
        let id = id.uuid();
        let fingerprint = json!([id, input.mileage_km, input.work, input.cost]);
        let key = idempotency(Some(idempotency_key), "completeBooking", &fingerprint)?;
        let mileage_km = u32::try_from(input.mileage_km)
            .map_err(|_| ApiError::validation("mileageKm must not be negative"))?;
        let written = bookings(ctx)?
            .complete_booking(
                &caller(ctx),
                id,
                mileage_km,
                input.work.into_iter().map(String::from).collect(),
                input.cost.to_domain()?,
                key.as_ref(),
            )
            .await
            .map_err(to_api)?;
        Ok(booking_payload(ctx, written).await?)
    }

    /// Cancels a scheduled booking with a reason and frees the mechanic's slot.
    async fn cancel_booking(
        &self,
        ctx: &Context<'_>,
        id: Id,
        #[graphql(
            desc = "Why, in words people will read in the log. At most 1000 characters; may span lines."
        )]
        reason: Reason,
        #[graphql(
            desc = "A retry with the same key and input answers the first result and writes nothing. At most 200 characters."
        )]
        idempotency_key: Option<IdempotencyKey>,
    ) -> async_graphql::Result<BookingPayload> {
        let id = id.uuid();
        let reason = String::from(reason);
        crate::mutations::ensure_own(ctx, crate::mutations::Owned::Booking(id)).await?;
        let key = idempotency(idempotency_key, "cancelBooking", &(id, &reason))?;
        let written = bookings(ctx)?
            .cancel_booking(&caller(ctx), id, reason, key.as_ref())
            .await
            .map_err(to_api)?;
        Ok(booking_payload(ctx, written).await?)
    }

    /// Records that the customer did not come (once the slot has started) and frees the slot.
    async fn mark_booking_no_show(
        &self,
        ctx: &Context<'_>,
        id: Id,
        #[graphql(
            desc = "A retry with the same key and input answers the first result and writes nothing. At most 200 characters."
        )]
        idempotency_key: Option<IdempotencyKey>,
    ) -> async_graphql::Result<BookingPayload> {
        let id = id.uuid();
        let key = idempotency(idempotency_key, "markBookingNoShow", &id)?;
        let written = bookings(ctx)?
            .mark_booking_no_show(&caller(ctx), id, key.as_ref())
            .await
            .map_err(to_api)?;
        Ok(booking_payload(ctx, written).await?)
    }
}
