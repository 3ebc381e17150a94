//! The command side: one cqrs-es framework per aggregate, the metadata and idempotency every command
//! carries, and the operations that span aggregates (confirming an order reserves its vehicle).

use std::collections::BTreeMap;
use std::sync::Arc;

use aggregates::customer::{Customer, CustomerCommand};
use aggregates::order::{Order, OrderCommand, OrderStatus};
use aggregates::promotion::Promotion;
use aggregates::vehicle::{Vehicle, VehicleCommand, VehicleStatus};
use eventstore::{Cqrs, Database, Store, Upcasters};
use uuid::Uuid;

use crate::clock::{Clock, IdGenerator};
use crate::context::RequestContext;
use crate::error::CommandError;
use crate::sender::{Call, Idempotency, Sender, Written};

mod promotions;

/// Sends commands to the aggregates.
pub struct Dealership {
    sender: Sender,
    vehicles: Cqrs<Vehicle>,
    customers: Cqrs<Customer>,
    orders: Cqrs<Order>,
    promotions: Cqrs<Promotion>,
    vehicle_store: Store<Vehicle>,
    customer_store: Store<Customer>,
    order_store: Store<Order>,
    promotion_store: Store<Promotion>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
}

impl Dealership {
    pub fn new(
        db: Database,
        upcasters: Upcasters,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
    ) -> Self {
        Self {
            sender: Sender::new(&db, &upcasters),
            vehicles: db.framework(&upcasters, ()),
            customers: db.framework(&upcasters, ()),
            orders: db.framework(&upcasters, ()),
            promotions: db.framework(&upcasters, ()),
            vehicle_store: db.store(&upcasters),
            customer_store: db.store(&upcasters),
            order_store: db.store(&upcasters),
            promotion_store: db.store(&upcasters),
            clock,
            ids,
        }
    }

    /// Creates the write-side guards (idempotent): constraints that must hold across aggregates.
    pub async fn install_guards(db: &Database) -> Result<(), CommandError> {
        crate::guards::install(db).await
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// The id a create command uses: see [`crate::sender::aggregate_id`].
    pub fn id_or_new(&self, id: Option<Uuid>, idempotency: Option<&Idempotency>) -> Uuid {
        crate::sender::aggregate_id(self.ids.as_ref(), id, idempotency)
    }

    /// Current state of a vehicle (write model).
    pub async fn vehicle(&self, id: Uuid) -> Result<Vehicle, CommandError> {
        self.sender.load(&self.vehicle_store, id).await
    }

    /// Current state of a customer (write model).
    pub async fn customer(&self, id: Uuid) -> Result<Customer, CommandError> {
        self.sender.load(&self.customer_store, id).await
    }

    /// Current state of an order (write model).
    pub async fn order(&self, id: Uuid) -> Result<Order, CommandError> {
        self.sender.load(&self.order_store, id).await
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
        if let Some(written) = self.sender.replay(id, idempotency).await? {
            return Ok(written);
        }
        let vin = stock.vin.as_str().to_string();
        if let Some(holder) = self.vin_holder(&vin).await?
            && holder != id.to_string()
        {
            return Err(CommandError::VinAlreadyStocked {
                vin,
                vehicle_id: holder,
            });
        }
        let result = self
            .sender
            .execute(
                &self.vehicles,
                id,
                VehicleCommand::Stock(stock),
                Call::new(ctx, "StockVehicle", idempotency),
            )
            .await;
        match result {
            // The guard's UNIQUE violation surfaces as an internal error from sqlite-es, but as an
            // optimistic-lock conflict from postgres-es (which reads every 23505 as one).
            Err(err @ (CommandError::Internal(_) | CommandError::Conflict { .. })) => {
                match self.vin_holder(&vin).await? {
                    // Lost a race with another request stocking the same VIN.
                    Some(holder) if holder != id.to_string() => {
                        if matches!(err, CommandError::Internal(_)) {
                            // postgres-es reports the guard as a conflict, counted by the sender.
                            self.sender.db().note_contended_append();
                        }
                        Err(CommandError::VinAlreadyStocked {
                            vin,
                            vehicle_id: holder,
                        })
                    }
                    _ => Err(err),
                }
            }
            other => other,
        }
    }

    async fn vin_holder(&self, vin: &str) -> Result<Option<String>, CommandError> {
        Ok(
            sqlx::query_scalar("SELECT vehicle_id FROM vehicle_vins WHERE vin = $1")
                .bind(vin)
                .fetch_optional(self.sender.db().pool())
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
        self.sender
            .execute(
                &self.vehicles,
                id,
                VehicleCommand::Reprice { price },
                Call::new(ctx, "RepriceVehicle", idempotency),
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
        self.sender
            .execute(
                &self.vehicles,
                id,
                VehicleCommand::Relocate { location },
                Call::new(ctx, "RelocateVehicle", idempotency),
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
        self.sender
            .execute(
                &self.vehicles,
                id,
                VehicleCommand::Withdraw { reason },
                Call::new(ctx, "WithdrawVehicle", idempotency),
            )
            .await
    }

    /// Releases a reservation held by a cancelled order: the repair for a cancellation whose release
    /// failed. A draft's reservation (a confirmation that stopped half-way) is finished by retrying
    /// `confirmOrder` or freed by `cancelOrder`, never released under it: a confirmation running at
    /// that moment would end up confirmed without its car.
    pub async fn release_vehicle_reservation(
        &self,
        ctx: &RequestContext,
        vehicle_id: Uuid,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        if let Some(written) = self.sender.replay(vehicle_id, idempotency).await? {
            return Ok(written);
        }
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
        if order.status() != OrderStatus::Cancelled {
            return Err(CommandError::Validation(format!(
                "vehicle {vehicle_id} is reserved for {} order {order_id}; only a cancelled order's \
                 reservation is released (cancel the order, or retry its confirmation)",
                order.status().as_str().to_lowercase()
            )));
        }
        self.sender
            .execute(
                &self.vehicles,
                vehicle_id,
                VehicleCommand::ReleaseReservation { order_id },
                Call::new(ctx, "ReleaseVehicleReservation", idempotency),
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
        self.sender
            .execute(
                &self.customers,
                id,
                command,
                Call::new(ctx, "RegisterCustomer", idempotency),
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
        self.sender
            .execute(
                &self.customers,
                id,
                command,
                Call::new(ctx, "ChangeCustomerContactDetails", idempotency),
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
        // A keyed retry answers from the first attempt before re-checking anything that may have
        // changed since (the vehicle may have been sold in between).
        if let Some(written) = self.sender.replay(id, idempotency).await? {
            return Ok(written);
        }
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
        self.sender
            .execute(
                &self.orders,
                id,
                command,
                Call::new(ctx, "DraftOrder", idempotency),
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
        self.sender
            .execute(
                &self.orders,
                id,
                OrderCommand::ApplyDiscount {
                    discount,
                    promotion_id: None,
                },
                Call::new(ctx, "ApplyOrderDiscount", idempotency),
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
        if let Some(written) = self.sender.replay(id, idempotency).await? {
            return Ok(written);
        }
        let order = self.order(id).await?;
        let confirm = OrderCommand::Confirm {
            confirmed_at: self.now(),
        };
        let (OrderStatus::Draft, Some(vehicle_id)) = (order.status(), order.vehicle_id()) else {
            // Not a draft: let the aggregate refuse with its own precise error.
            return self
                .sender
                .execute(
                    &self.orders,
                    id,
                    confirm,
                    Call::new(ctx, "ConfirmOrder", idempotency),
                )
                .await;
        };
        let reserved = self
            .sender
            .execute(
                &self.vehicles,
                vehicle_id,
                VehicleCommand::Reserve { order_id: id },
                Call::new(ctx, "ConfirmOrder", None),
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
            .sender
            .execute(
                &self.orders,
                id,
                confirm,
                Call::new(ctx, "ConfirmOrder", idempotency),
            )
            .await
        {
            Ok(written) => Ok(written),
            Err(refused) => {
                // A duplicate request running alongside may have confirmed the order between our two
                // steps: then the reservation is the order's, and releasing it would undo a sale.
                if self.order(id).await?.status() == OrderStatus::Confirmed {
                    return self.already_written::<Order>(id).await;
                }
                let release = VehicleCommand::ReleaseReservation { order_id: id };
                if let Err(release_err) = self
                    .sender
                    .execute(
                        &self.vehicles,
                        vehicle_id,
                        release,
                        Call::new(ctx, "ConfirmOrder", None),
                    )
                    .await
                {
                    tracing::error!(
                        order = %id, vehicle = %vehicle_id, error = %release_err,
                        "order confirmation failed and the vehicle reservation could not be released; \
                         the vehicle stays reserved for this draft order until confirmOrder is retried \
                         or cancelOrder frees it"
                    );
                }
                Err(refused)
            }
        }
    }

    /// Where an aggregate already stands, answered to a request that found its work already done by
    /// a concurrent duplicate.
    async fn already_written<A: cqrs_es::Aggregate>(
        &self,
        id: Uuid,
    ) -> Result<Written, CommandError> {
        Ok(Written {
            id,
            position: self.sender.position_of::<A>(id).await?,
            replayed: true,
        })
    }

    /// Cancels an order, gives back the promo code use it holds, and frees its vehicle if the
    /// order held it.
    ///
    /// Freeing the vehicle runs whenever the order is cancelled — after a fresh cancellation, after a
    /// keyed retry answered from the log, and even when the cancellation itself is refused because
    /// the order already is cancelled — so any retry finishes a cancellation whose release failed.
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
        let mut cancelled = match self.sender.replay(id, idempotency).await? {
            Some(first) => Ok(first),
            None => {
                self.sender
                    .execute(
                        &self.orders,
                        id,
                        command,
                        Call::new(ctx, "CancelOrder", idempotency),
                    )
                    .await
            }
        };
        let order = self.order(id).await?;
        if order.status() == OrderStatus::Cancelled {
            // The promo code's use goes back first: unlike the car, nothing else can take it
            // from this order, so it is safe to give back on every attempt.
            if let Some(released) = self.release_promo_codes(ctx, id, "CancelOrder").await? {
                cancelled = cancelled.map(|written| Written {
                    position: released.max(written.position),
                    ..written
                });
            }
            if let Some(vehicle_id) = order.vehicle_id() {
                let vehicle = self.vehicle(vehicle_id).await?;
                if vehicle.status() == VehicleStatus::Reserved && vehicle.reserved_for() == Some(id)
                {
                    let release = VehicleCommand::ReleaseReservation { order_id: id };
                    let released = self
                        .sender
                        .execute(
                            &self.vehicles,
                            vehicle_id,
                            release,
                            Call::new(ctx, "CancelOrder", None),
                        )
                        .await?;
                    return cancelled.map(|written| Written {
                        position: released.position.max(written.position),
                        ..written
                    });
                }
            }
        }
        cancelled
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
