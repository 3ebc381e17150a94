//! The command side: one cqrs-es framework per aggregate, the metadata and idempotency every command
//! carries, and the operations that span aggregates (confirming an order reserves its vehicle).

use std::collections::BTreeMap;
use std::sync::Arc;

use aggregates::customer::{Customer, CustomerCommand};
use aggregates::order::{Order, OrderCommand, OrderStatus};
use aggregates::vehicle::{Vehicle, VehicleCommand, VehicleStatus};
use cqrs_es::persist::PersistedEventRepository;
use cqrs_es::{Aggregate, AggregateContext, AggregateError, EventStore};
use eventstore::{CommandMetadata, Cqrs, Database, EventLog, Store, Upcasters};
use uuid::Uuid;

use crate::clock::{Clock, IdGenerator};
use crate::context::RequestContext;
use crate::error::CommandError;

/// How often a command is re-decided after an optimistic-lock conflict before the caller is told.
const CONFLICT_RETRIES: usize = 3;

/// What a carried-out command reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Written {
    /// The aggregate the command addressed.
    pub id: Uuid,
    /// Global position of the aggregate's newest event: once read models reach it, they show the write.
    pub position: i64,
    /// True when an idempotent retry was answered from the first attempt and nothing new was written.
    pub replayed: bool,
}

/// The idempotency key of a mutation and the fingerprint of its input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Idempotency {
    pub key: String,
    pub fingerprint: String,
}

/// Sends commands to the aggregates.
pub struct Dealership {
    db: Database,
    log: EventLog,
    vehicles: Cqrs<Vehicle>,
    customers: Cqrs<Customer>,
    orders: Cqrs<Order>,
    vehicle_store: Store<Vehicle>,
    customer_store: Store<Customer>,
    order_store: Store<Order>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
}

/// One command as sent: who, what, and how to recognise its retry.
struct Call<'a> {
    ctx: &'a RequestContext,
    command: &'static str,
    idempotency: Option<&'a Idempotency>,
}

impl Dealership {
    pub fn new(
        db: Database,
        upcasters: Upcasters,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
    ) -> Self {
        Self {
            log: EventLog::new(db.pool().clone(), upcasters.clone()),
            vehicles: db.framework(&upcasters, ()),
            customers: db.framework(&upcasters, ()),
            orders: db.framework(&upcasters, ()),
            vehicle_store: db.store(&upcasters),
            customer_store: db.store(&upcasters),
            order_store: db.store(&upcasters),
            db,
            clock,
            ids,
        }
    }

    /// Creates the write-side guards (idempotent): constraints that must hold across aggregates.
    pub async fn install_guards(db: &Database) -> Result<(), CommandError> {
        for statement in crate::guards::STATEMENTS {
            sqlx::query(statement).execute(db.pool()).await?;
        }
        Ok(())
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// The id a create command uses: the client's, or a new one.
    pub fn id_or_new(&self, id: Option<Uuid>) -> Uuid {
        id.unwrap_or_else(|| self.ids.new_id())
    }

    async fn load<A: Aggregate>(&self, store: &Store<A>, id: Uuid) -> Result<A, CommandError>
    where
        Store<A>: EventStore<A>,
    {
        let mut context = store
            .load_aggregate(&id.to_string())
            .await
            .map_err(|err| match err {
                AggregateError::UserError(e) => CommandError::Internal(e.to_string()),
                other => CommandError::Internal(other.to_string()),
            })?;
        Ok(std::mem::take(context.aggregate()))
    }

    /// Current state of a vehicle (write model).
    pub async fn vehicle(&self, id: Uuid) -> Result<Vehicle, CommandError> {
        self.load(&self.vehicle_store, id).await
    }

    /// Current state of a customer (write model).
    pub async fn customer(&self, id: Uuid) -> Result<Customer, CommandError> {
        self.load(&self.customer_store, id).await
    }

    /// Current state of an order (write model).
    pub async fn order(&self, id: Uuid) -> Result<Order, CommandError> {
        self.load(&self.order_store, id).await
    }

    /// Runs one command with metadata, answering idempotent retries from the log and re-deciding
    /// after optimistic-lock conflicts.
    async fn execute<A>(
        &self,
        cqrs: &Cqrs<A>,
        id: Uuid,
        command: A::Command,
        call: Call<'_>,
    ) -> Result<Written, CommandError>
    where
        A: Aggregate,
        A::Command: Clone,
        A::Error: Into<CommandError>,
        eventstore::EventRepository: PersistedEventRepository,
    {
        if let Some(written) = self.replay(id, call.idempotency).await? {
            return Ok(written);
        }
        let metadata = CommandMetadata {
            actor_id: call.ctx.actor_id.clone(),
            actor_role: call.ctx.actor_role.clone(),
            correlation_id: call.ctx.correlation_id.clone(),
            causation_id: Uuid::now_v7().to_string(),
            command: call.command.to_string(),
            idempotency_key: call.idempotency.map(|i| i.key.clone()),
            input_fingerprint: call.idempotency.map(|i| i.fingerprint.clone()),
        }
        .to_map();
        let aggregate_id = id.to_string();
        let mut attempt = 0;
        loop {
            attempt += 1;
            match cqrs
                .execute_with_metadata(&aggregate_id, command.clone(), metadata.clone())
                .await
            {
                Ok(()) => break,
                Err(AggregateError::UserError(err)) => return Err(err.into()),
                Err(AggregateError::AggregateConflict) => {
                    // sqlite-es commits events before it checks the snapshot row, so a "conflict" may
                    // follow a successful append: a keyed retry must then answer "already done".
                    if let Some(written) = self.replay(id, call.idempotency).await? {
                        return Ok(written);
                    }
                    if attempt >= CONFLICT_RETRIES {
                        return Err(CommandError::Conflict { aggregate: A::TYPE });
                    }
                    tracing::debug!(aggregate = A::TYPE, %id, attempt, "optimistic-lock conflict, re-deciding");
                }
                Err(other) => {
                    return Err(CommandError::Internal(format!("{} {id}: {other}", A::TYPE)));
                }
            }
        }
        self.db.notify_appended();
        let position = self
            .log
            .last_position_of(A::TYPE, &aggregate_id)
            .await?
            .unwrap_or(0);
        Ok(Written {
            id,
            position,
            replayed: false,
        })
    }

    /// Answers a retry: the first attempt's result when the key was used with the same input, an
    /// error when it was used with another. Survives restarts: the key lives in the events' metadata.
    async fn replay(
        &self,
        id: Uuid,
        idempotency: Option<&Idempotency>,
    ) -> Result<Option<Written>, CommandError> {
        let Some(idempotency) = idempotency else {
            return Ok(None);
        };
        let Some(first) = self.log.find_by_idempotency_key(&idempotency.key).await? else {
            return Ok(None);
        };
        let same_input = first.metadata_value(eventstore::metadata::keys::INPUT_FINGERPRINT)
            == Some(idempotency.fingerprint.as_str());
        if !same_input || first.aggregate_id != id.to_string() {
            return Err(CommandError::IdempotencyKeyReused {
                key: idempotency.key.clone(),
            });
        }
        Ok(Some(Written {
            id,
            position: first.position,
            replayed: true,
        }))
    }

    // ----- vehicles -----

    /// Stocks a vehicle. The VIN must not belong to another vehicle (a guard in the store enforces it
    /// even against concurrent requests).
    pub async fn stock_vehicle(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        stock: aggregates::vehicle::StockVehicle,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        let vin = stock.vin.as_str().to_string();
        if let Some(holder) = self.vin_holder(&vin).await? {
            if holder != id.to_string() {
                return Err(CommandError::VinAlreadyStocked {
                    vin,
                    vehicle_id: holder,
                });
            }
        }
        let result = self
            .execute(
                &self.vehicles,
                id,
                VehicleCommand::Stock(stock),
                call(ctx, "StockVehicle", idempotency),
            )
            .await;
        match result {
            Err(CommandError::Internal(detail)) => match self.vin_holder(&vin).await? {
                // Lost a race with another request stocking the same VIN.
                Some(holder) if holder != id.to_string() => Err(CommandError::VinAlreadyStocked {
                    vin,
                    vehicle_id: holder,
                }),
                _ => Err(CommandError::Internal(detail)),
            },
            other => other,
        }
    }

    async fn vin_holder(&self, vin: &str) -> Result<Option<String>, CommandError> {
        Ok(
            sqlx::query_scalar("SELECT vehicle_id FROM vehicle_vins WHERE vin = $1")
                .bind(vin)
                .fetch_optional(self.db.pool())
                .await?,
        )
    }

    pub async fn reprice_vehicle(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        price: aggregates::money::Money,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        self.execute(
            &self.vehicles,
            id,
            VehicleCommand::Reprice { price },
            call(ctx, "RepriceVehicle", idempotency),
        )
        .await
    }

    pub async fn relocate_vehicle(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        location: String,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        self.execute(
            &self.vehicles,
            id,
            VehicleCommand::Relocate { location },
            call(ctx, "RelocateVehicle", idempotency),
        )
        .await
    }

    pub async fn withdraw_vehicle(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        reason: String,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        self.execute(
            &self.vehicles,
            id,
            VehicleCommand::Withdraw { reason },
            call(ctx, "WithdrawVehicle", idempotency),
        )
        .await
    }

    /// Releases a reservation whose order no longer needs it (a draft or cancelled order): the repair
    /// for a confirmation that reserved the vehicle but could not confirm the order.
    pub async fn release_vehicle_reservation(
        &self,
        ctx: &RequestContext,
        vehicle_id: Uuid,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        let vehicle = self.vehicle(vehicle_id).await?;
        let Some(order_id) = vehicle
            .reserved_for()
            .filter(|_| vehicle.status() == VehicleStatus::Reserved)
        else {
            return Err(CommandError::Validation(format!(
                "vehicle {vehicle_id} is not reserved (status {})",
                vehicle.status().as_str()
            )));
        };
        let order = self.order(order_id).await?;
        if order.status() == OrderStatus::Confirmed {
            return Err(CommandError::Validation(format!(
                "vehicle {vehicle_id} is reserved for confirmed order {order_id}; cancel the order instead"
            )));
        }
        self.execute(
            &self.vehicles,
            vehicle_id,
            VehicleCommand::ReleaseReservation { order_id },
            call(ctx, "ReleaseVehicleReservation", idempotency),
        )
        .await
    }

    // ----- customers -----

    pub async fn register_customer(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        command: CustomerCommand,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        self.execute(
            &self.customers,
            id,
            command,
            call(ctx, "RegisterCustomer", idempotency),
        )
        .await
    }

    pub async fn change_customer_contact_details(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        command: CustomerCommand,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        self.execute(
            &self.customers,
            id,
            command,
            call(ctx, "ChangeCustomerContactDetails", idempotency),
        )
        .await
    }

    // ----- orders -----

    /// Drafts an order for a registered customer and a vehicle on sale, at the vehicle's list price.
    pub async fn draft_order(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        customer_id: Uuid,
        vehicle_id: Uuid,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        if !self.customer(customer_id).await?.is_registered() {
            return Err(CommandError::NotFound {
                what: "customer",
                id: customer_id.to_string(),
            });
        }
        let vehicle = self.vehicle(vehicle_id).await?;
        let price = match (vehicle.status(), vehicle.list_price()) {
            (VehicleStatus::NotStocked, _) | (_, None) => {
                return Err(CommandError::NotFound {
                    what: "vehicle",
                    id: vehicle_id.to_string(),
                });
            }
            (status @ (VehicleStatus::Sold | VehicleStatus::Withdrawn), _) => {
                return Err(CommandError::VehicleNotAvailable {
                    vehicle_id: vehicle_id.to_string(),
                    reason: format!("it is {}", status.as_str()),
                });
            }
            (_, Some(price)) => price,
        };
        let command = OrderCommand::Draft {
            customer_id,
            vehicle_id,
            price,
            drafted_at: self.now(),
        };
        self.execute(
            &self.orders,
            id,
            command,
            call(ctx, "DraftOrder", idempotency),
        )
        .await
    }

    pub async fn apply_order_discount(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        discount: aggregates::order::Discount,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        self.execute(
            &self.orders,
            id,
            OrderCommand::ApplyDiscount { discount },
            call(ctx, "ApplyOrderDiscount", idempotency),
        )
        .await
    }

    /// Confirms a draft order and reserves its vehicle.
    ///
    /// Two aggregates, two steps, no distributed transaction, so the order of steps makes every
    /// failure safe: (1) reserve the vehicle for this order — refused reservations leave the order a
    /// draft; reserving again for the same order is a no-op, so a retry repeats safely; (2) confirm the
    /// order — if that is refused, the reservation is released again. If even the release fails, the
    /// vehicle stays visibly reserved for a draft order: retrying `confirmOrder` completes the
    /// confirmation, and `cancelOrder` or `releaseVehicleReservation` frees the vehicle.
    pub async fn confirm_order(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        if let Some(written) = self.replay(id, idempotency).await? {
            return Ok(written);
        }
        let order = self.order(id).await?;
        let confirm = OrderCommand::Confirm {
            confirmed_at: self.now(),
        };
        let (OrderStatus::Draft, Some(vehicle_id)) = (order.status(), order.vehicle_id()) else {
            // Not a draft: let the aggregate refuse with its own precise error.
            return self
                .execute(
                    &self.orders,
                    id,
                    confirm,
                    call(ctx, "ConfirmOrder", idempotency),
                )
                .await;
        };
        let reserved = self
            .execute(
                &self.vehicles,
                vehicle_id,
                VehicleCommand::Reserve { order_id: id },
                call(ctx, "ConfirmOrder", None),
            )
            .await;
        match reserved {
            Ok(_) => {}
            Err(CommandError::Vehicle(err)) => {
                return Err(CommandError::VehicleNotAvailable {
                    vehicle_id: vehicle_id.to_string(),
                    reason: err.to_string(),
                });
            }
            Err(other) => return Err(other),
        }
        match self
            .execute(
                &self.orders,
                id,
                confirm,
                call(ctx, "ConfirmOrder", idempotency),
            )
            .await
        {
            Ok(written) => Ok(written),
            Err(refused) => {
                let release = VehicleCommand::ReleaseReservation { order_id: id };
                if let Err(release_err) = self
                    .execute(
                        &self.vehicles,
                        vehicle_id,
                        release,
                        call(ctx, "ConfirmOrder", None),
                    )
                    .await
                {
                    tracing::error!(
                        order = %id, vehicle = %vehicle_id, error = %release_err,
                        "order confirmation failed and the vehicle reservation could not be released; \
                         the vehicle stays reserved for this draft order until confirmOrder is retried \
                         or cancelOrder/releaseVehicleReservation frees it"
                    );
                }
                Err(refused)
            }
        }
    }

    /// Cancels an order and frees its vehicle if the order held it. If freeing fails after the
    /// cancellation, the vehicle stays visibly reserved for a cancelled order and
    /// `releaseVehicleReservation` frees it.
    pub async fn cancel_order(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        reason: String,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        let command = OrderCommand::Cancel {
            reason,
            cancelled_at: self.now(),
        };
        let written = self
            .execute(
                &self.orders,
                id,
                command,
                call(ctx, "CancelOrder", idempotency),
            )
            .await?;
        if let Some(vehicle_id) = self.order(id).await?.vehicle_id() {
            let vehicle = self.vehicle(vehicle_id).await?;
            if vehicle.status() == VehicleStatus::Reserved && vehicle.reserved_for() == Some(id) {
                let release = VehicleCommand::ReleaseReservation { order_id: id };
                let released = self
                    .execute(
                        &self.vehicles,
                        vehicle_id,
                        release,
                        call(ctx, "CancelOrder", None),
                    )
                    .await?;
                return Ok(Written {
                    position: released.position.max(written.position),
                    ..written
                });
            }
        }
        Ok(written)
    }

    /// Specifications as stored: trimmed names, no empty names.
    pub fn clean_specifications(
        pairs: Vec<(String, String)>,
    ) -> Result<BTreeMap<String, String>, CommandError> {
        let mut specifications = BTreeMap::new();
        for (name, value) in pairs {
            let name = name.trim().to_string();
            if name.is_empty() {
                return Err(CommandError::Validation(
                    "specification names must not be empty".into(),
                ));
            }
            if specifications
                .insert(name.clone(), value.trim().to_string())
                .is_some()
            {
                return Err(CommandError::Validation(format!(
                    "specification {name:?} is given twice"
                )));
            }
        }
        Ok(specifications)
    }
}

fn call<'a>(
    ctx: &'a RequestContext,
    command: &'static str,
    idempotency: Option<&'a Idempotency>,
) -> Call<'a> {
    Call {
        ctx,
        command,
        idempotency,
    }
}
