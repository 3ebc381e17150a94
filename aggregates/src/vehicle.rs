//! Vehicle: one car on the lot, from stocking to sale or withdrawal.
//!
//! Status machine (`NotStocked` before the first event):
//!
//! ```text
//! NotStocked --Stock--> Available --Reserve--> Reserved --Sell--> Sold
//!                       Available <--ReleaseReservation-- Reserved
//!                       Available --Withdraw--> Withdrawn
//! ```
//!
//! Invariants (`handle` enforces them, `apply` re-asserts them with `debug_assert!`):
//! - a vehicle is reserved for at most one order, and `reserved_for` is set exactly when the status
//!   is `Reserved`;
//! - `Sold` and `Withdrawn` are terminal for sale: every later command is refused, except recording
//!   a service (a sold car is the customer's car, and it comes back to the workshop);
//! - the odometer (`mileage_km`) never goes backwards;
//! - the list price is always positive; brand, model, trim, colour, location and reasons are never
//!   empty, and every string is trimmed before it is stored.
//!
//! Rules:
//! - Stock: the model year must lie within `1886..=` the year after `stocked_at` (next year's
//!   models arrive early); specification names and values are trimmed, and names may not be empty.
//! - Reprice: allowed while `Available` or `Reserved` (the order keeps the price it was drafted
//!   with); repricing to the current price is a no-op.
//! - Relocate: allowed unless `Sold` or `Withdrawn`; relocating to the current location is a no-op.
//! - Reserve: only an `Available` vehicle; reserving again for the order that already holds the
//!   reservation is a no-op, so a retried order confirmation is safe.
//! - ReleaseReservation and Sell: only by the order that holds the reservation.
//! - Withdraw: only an `Available` vehicle (a reserved car is released first).
//! - RecordService: any stocked vehicle, whatever its status. The mileage may not be below the last
//!   recorded one (at stocking or at the last service); the work lines are trimmed and blank ones
//!   dropped, at least one remains; the cost is not negative. One record per booking: recording the
//!   same booking again with the same mileage, work and cost is a no-op (a retried completion), with
//!   anything else it is refused.
//!
//! A no-op succeeds and emits nothing.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Datelike, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::money::Money;
use crate::vin::Vin;

/// The year Benz patented the Motorwagen: no car has an older model year.
pub const FIRST_MODEL_YEAR: i32 = 1886;

/// Whether the car has had an owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Condition {
    New,
    Used,
}

/// Where a vehicle is in its life on the lot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum VehicleStatus {
    /// No event yet: the vehicle does not exist as far as the ledger knows.
    #[default]
    NotStocked,
    Available,
    Reserved,
    Sold,
    Withdrawn,
}

impl VehicleStatus {
    /// The stable upper-case name used by the API and the read models.
    pub fn as_str(self) -> &'static str {
        match self {
            VehicleStatus::NotStocked => "NOT_STOCKED",
            VehicleStatus::Available => "AVAILABLE",
            VehicleStatus::Reserved => "RESERVED",
            VehicleStatus::Sold => "SOLD",
            VehicleStatus::Withdrawn => "WITHDRAWN",
        }
    }

    /// Sold and withdrawn vehicles accept no further command.
    pub fn is_terminal(self) -> bool {
        matches!(self, VehicleStatus::Sold | VehicleStatus::Withdrawn)
    }
}

impl fmt::Display for VehicleStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the dealership records when a car arrives on the lot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StockVehicle {
    pub vin: Vin,
    pub brand: String,
    pub model: String,
    pub year: i32,
    pub trim: String,
    pub colour: String,
    pub mileage_km: u32,
    pub condition: Condition,
    pub location: String,
    pub list_price: Money,
    /// Free-form facts (engine, gearbox, ...), by name.
    pub specifications: BTreeMap<String, String>,
    /// When the car arrived; supplied by the caller's clock.
    pub stocked_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum VehicleCommand {
    Stock(StockVehicle),
    Reprice {
        price: Money,
    },
    Relocate {
        location: String,
    },
    Reserve {
        order_id: Uuid,
    },
    ReleaseReservation {
        order_id: Uuid,
    },
    Sell {
        order_id: Uuid,
    },
    Withdraw {
        reason: String,
    },
    /// A completed workshop visit (from a booking), appended to the car's service history.
    RecordService {
        booking_id: Uuid,
        serviced_at: DateTime<Utc>,
        mileage_km: u32,
        work: Vec<String>,
        cost: Money,
    },
}

/// What happened to a vehicle. The payloads are a public contract: see [`crate::upcasters`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum VehicleEvent {
    VehicleStocked {
        vin: Vin,
        brand: String,
        model: String,
        year: i32,
        trim: String,
        colour: String,
        mileage_km: u32,
        condition: Condition,
        location: String,
        list_price: Money,
        specifications: BTreeMap<String, String>,
        stocked_at: DateTime<Utc>,
    },
    VehicleRepriced {
        old_price: Money,
        new_price: Money,
    },
    VehicleRelocated {
        from: String,
        to: String,
    },
    VehicleReserved {
        order_id: Uuid,
    },
    VehicleReservationReleased {
        order_id: Uuid,
    },
    VehicleSold {
        order_id: Uuid,
    },
    VehicleWithdrawn {
        reason: String,
    },
    /// The car was serviced; `mileage_km` is the odometer when it left the workshop.
    VehicleServiceRecorded {
        booking_id: Uuid,
        serviced_at: DateTime<Utc>,
        mileage_km: u32,
        work: Vec<String>,
        cost: Money,
    },
}

impl DomainEvent for VehicleEvent {
    fn event_type(&self) -> String {
        let name = match self {
            VehicleEvent::VehicleStocked { .. } => "VehicleStocked",
            VehicleEvent::VehicleRepriced { .. } => "VehicleRepriced",
            VehicleEvent::VehicleRelocated { .. } => "VehicleRelocated",
            VehicleEvent::VehicleReserved { .. } => "VehicleReserved",
            VehicleEvent::VehicleReservationReleased { .. } => "VehicleReservationReleased",
            VehicleEvent::VehicleSold { .. } => "VehicleSold",
            VehicleEvent::VehicleWithdrawn { .. } => "VehicleWithdrawn",
            VehicleEvent::VehicleServiceRecorded { .. } => "VehicleServiceRecorded",
        };
        name.to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

/// Why a vehicle command was refused. Nothing was emitted; the vehicle is unchanged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VehicleError {
    /// The vehicle was never stocked. The caller reports "not found" (a wrong id).
    #[error("vehicle not found")]
    NotStocked,
    /// The vehicle is already in stock. The caller reports a conflict; stocking is not retried.
    #[error("vehicle is already in stock")]
    AlreadyStocked,
    /// A required text field is blank. The caller asks for it and submits again.
    #[error("{field} must not be empty")]
    EmptyField { field: &'static str },
    /// The model year is before the first car or more than a year ahead. The caller asks the clerk
    /// to check the year on the registration document.
    #[error("model year {year} is not plausible")]
    InvalidYear { year: i32 },
    /// A list price of zero or less. The caller asks for a positive price.
    #[error("price must be greater than zero")]
    NonPositivePrice,
    /// The vehicle's status does not allow this (e.g. withdrawing a sold car). The caller reports
    /// a conflict and shows the status; retrying will not help until the status changes.
    #[error("vehicle is not available: it is {status}")]
    NotAvailable { status: VehicleStatus },
    /// Another order (`order_id`) holds the reservation. The caller reports the car as taken; it
    /// becomes available again only if that order releases it.
    #[error("vehicle is already reserved for another order ({order_id})")]
    ReservedByAnotherOrder { order_id: Uuid },
    /// Order `order_id` does not hold the reservation, so it cannot release it or buy the car.
    /// The caller reports a conflict: the order must reserve the vehicle first.
    #[error("vehicle is not reserved for order {order_id}")]
    NotReservedForOrder { order_id: Uuid },
    /// A service mileage below the odometer already recorded. The caller asks the mechanic to read
    /// the odometer again; a replaced instrument cluster is noted in the work, not as lower mileage.
    #[error("mileage {given_km} km is below the last recorded {last_km} km")]
    MileageBelowLastRecorded { last_km: u32, given_km: u32 },
    /// A service cost below zero. The caller corrects it.
    #[error("the service cost must not be negative")]
    NegativeServiceCost,
    /// Booking `booking_id` already recorded a different service on this car. The caller reports a
    /// conflict: a record is never replaced.
    #[error("booking {booking_id} already recorded a different service")]
    ServiceAlreadyRecorded { booking_id: Uuid },
}

impl VehicleError {
    /// A stable, machine-readable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            VehicleError::NotStocked => "NOT_FOUND",
            VehicleError::AlreadyStocked => "VEHICLE_ALREADY_STOCKED",
            VehicleError::EmptyField { .. }
            | VehicleError::InvalidYear { .. }
            | VehicleError::NonPositivePrice => "VALIDATION",
            VehicleError::NotAvailable { .. } | VehicleError::ReservedByAnotherOrder { .. } => {
                "VEHICLE_NOT_AVAILABLE"
            }
            VehicleError::NotReservedForOrder { .. } => "VEHICLE_NOT_RESERVED_FOR_ORDER",
            VehicleError::MileageBelowLastRecorded { .. } => "MILEAGE_BELOW_LAST_RECORDED",
            VehicleError::NegativeServiceCost => "VALIDATION",
            VehicleError::ServiceAlreadyRecorded { .. } => "SERVICE_ALREADY_RECORDED",
        }
    }
}

/// The state a vehicle's decisions need; everything else lives in the read models.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Vehicle {
    status: VehicleStatus,
    /// Kept so a snapshot says which car this is.
    vin: Option<Vin>,
    /// Reprice compares against it (no-op) and reports it as the old price.
    list_price: Option<Money>,
    /// Relocate compares against it (no-op) and reports it as the origin.
    location: Option<String>,
    /// The order holding the reservation; `Some` exactly while `Reserved`.
    reserved_for: Option<Uuid>,
    /// The odometer: at stocking, then at each service. A service may not lower it.
    #[serde(default)]
    mileage_km: u32,
    /// Each recorded service by booking, so a repeated record is recognised.
    #[serde(default)]
    services: BTreeMap<Uuid, ServiceRecord>,
}

/// What a service record said, for recognising its repetition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct ServiceRecord {
    mileage_km: u32,
    work: Vec<String>,
    cost: Money,
}

impl Vehicle {
    pub fn status(&self) -> VehicleStatus {
        self.status
    }

    pub fn list_price(&self) -> Option<Money> {
        self.list_price
    }

    pub fn reserved_for(&self) -> Option<Uuid> {
        self.reserved_for
    }

    pub fn vin(&self) -> Option<&Vin> {
        self.vin.as_ref()
    }

    pub fn location(&self) -> Option<&str> {
        self.location.as_deref()
    }

    /// The last recorded odometer reading, kilometres.
    pub fn mileage_km(&self) -> u32 {
        self.mileage_km
    }

    /// How many services have been recorded.
    pub fn service_count(&self) -> usize {
        self.services.len()
    }

    /// Decides on `command`: the event it causes, `None` for a no-op, or why it is refused.
    fn decide(&self, command: VehicleCommand) -> Result<Option<VehicleEvent>, VehicleError> {
        use VehicleStatus::{Available, NotStocked, Reserved};
        let status = self.status;
        if status == NotStocked && !matches!(command, VehicleCommand::Stock(_)) {
            return Err(VehicleError::NotStocked);
        }
        let event = match command {
            VehicleCommand::Stock(stock) => {
                if status != NotStocked {
                    return Err(VehicleError::AlreadyStocked);
                }
                Some(stocked(stock)?)
            }
            VehicleCommand::Reprice { price } => {
                if !matches!(status, Available | Reserved) {
                    return Err(VehicleError::NotAvailable { status });
                }
                if !price.is_positive() {
                    return Err(VehicleError::NonPositivePrice);
                }
                // Always `Some` once stocked; a missing price would make this a no-op.
                let old_price = self.list_price.unwrap_or(price);
                (old_price != price).then_some(VehicleEvent::VehicleRepriced {
                    old_price,
                    new_price: price,
                })
            }
            VehicleCommand::Relocate { location } => {
                if status.is_terminal() {
                    return Err(VehicleError::NotAvailable { status });
                }
                let to = required(&location, "location")?;
                let from = self.location.clone().unwrap_or_default();
                (from != to).then_some(VehicleEvent::VehicleRelocated { from, to })
            }
            VehicleCommand::Reserve { order_id } => match (status, self.reserved_for) {
                (Reserved, Some(holder)) if holder == order_id => None,
                (Reserved, Some(holder)) => {
                    return Err(VehicleError::ReservedByAnotherOrder { order_id: holder });
                }
                (Available, _) => Some(VehicleEvent::VehicleReserved { order_id }),
                _ => return Err(VehicleError::NotAvailable { status }),
            },
            VehicleCommand::ReleaseReservation { order_id } => {
                self.require_reservation_by(order_id)?;
                Some(VehicleEvent::VehicleReservationReleased { order_id })
            }
            VehicleCommand::Sell { order_id } => {
                self.require_reservation_by(order_id)?;
                Some(VehicleEvent::VehicleSold { order_id })
            }
            VehicleCommand::Withdraw { reason } => {
                if status != Available {
                    return Err(VehicleError::NotAvailable { status });
                }
                let reason = required(&reason, "reason")?;
                Some(VehicleEvent::VehicleWithdrawn { reason })
            }
            VehicleCommand::RecordService {
                booking_id,
                serviced_at,
                mileage_km,
                work,
                cost,
            } => {
                let work: Vec<String> = work
                    .iter()
                    .map(|line| line.trim().to_owned())
                    .filter(|line| !line.is_empty())
                    .collect();
                if work.is_empty() {
                    return Err(VehicleError::EmptyField { field: "work" });
                }
                if cost.is_negative() {
                    return Err(VehicleError::NegativeServiceCost);
                }
                let record = ServiceRecord {
                    mileage_km,
                    work,
                    cost,
                };
                match self.services.get(&booking_id) {
                    Some(existing) if *existing == record => return Ok(None),
                    Some(_) => return Err(VehicleError::ServiceAlreadyRecorded { booking_id }),
                    None => {}
                }
                if mileage_km < self.mileage_km {
                    return Err(VehicleError::MileageBelowLastRecorded {
                        last_km: self.mileage_km,
                        given_km: mileage_km,
                    });
                }
                Some(VehicleEvent::VehicleServiceRecorded {
                    booking_id,
                    serviced_at,
                    mileage_km,
                    work: record.work,
                    cost,
                })
            }
        };
        Ok(event)
    }

    fn require_reservation_by(&self, order_id: Uuid) -> Result<(), VehicleError> {
        if self.status == VehicleStatus::Reserved && self.reserved_for == Some(order_id) {
            Ok(())
        } else {
            Err(VehicleError::NotReservedForOrder { order_id })
        }
    }
}

/// Validates a Stock command and turns it into the event, with every string trimmed.
fn stocked(stock: StockVehicle) -> Result<VehicleEvent, VehicleError> {
    let brand = required(&stock.brand, "brand")?;
    let model = required(&stock.model, "model")?;
    let trim = required(&stock.trim, "trim")?;
    let colour = required(&stock.colour, "colour")?;
    let location = required(&stock.location, "location")?;
    let latest_year = stock.stocked_at.year().saturating_add(1);
    if !(FIRST_MODEL_YEAR..=latest_year).contains(&stock.year) {
        return Err(VehicleError::InvalidYear { year: stock.year });
    }
    if !stock.list_price.is_positive() {
        return Err(VehicleError::NonPositivePrice);
    }
    let mut specifications = BTreeMap::new();
    for (name, value) in &stock.specifications {
        // Names that differ only by surrounding whitespace merge; the later in sort order wins.
        specifications.insert(
            required(name, "specification name")?,
            value.trim().to_owned(),
        );
    }
    Ok(VehicleEvent::VehicleStocked {
        vin: stock.vin,
        brand,
        model,
        year: stock.year,
        trim,
        colour,
        mileage_km: stock.mileage_km,
        condition: stock.condition,
        location,
        list_price: stock.list_price,
        specifications,
        stocked_at: stock.stocked_at,
    })
}

/// `value` trimmed, or [`VehicleError::EmptyField`] naming `field` when nothing is left.
fn required(value: &str, field: &'static str) -> Result<String, VehicleError> {
    let value = value.trim();
    if value.is_empty() {
        Err(VehicleError::EmptyField { field })
    } else {
        Ok(value.to_owned())
    }
}

impl Aggregate for Vehicle {
    const TYPE: &'static str = "Vehicle";
    type Command = VehicleCommand;
    type Event = VehicleEvent;
    type Error = VehicleError;
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

    /// Folds an event in. Never fails: stored history is the truth. The `debug_assert!`s catch a
    /// `handle` that let an invalid event through, in tests.
    fn apply(&mut self, event: Self::Event) {
        use VehicleStatus::{Available, NotStocked, Reserved, Sold, Withdrawn};
        match event {
            VehicleEvent::VehicleStocked {
                vin,
                location,
                list_price,
                mileage_km,
                ..
            } => {
                debug_assert_eq!(self.status, NotStocked, "stocked twice");
                self.status = Available;
                self.vin = Some(vin);
                self.location = Some(location);
                self.list_price = Some(list_price);
                self.reserved_for = None;
                self.mileage_km = mileage_km;
            }
            VehicleEvent::VehicleRepriced { new_price, .. } => {
                debug_assert!(new_price.is_positive(), "repriced to {new_price}");
                debug_assert!(
                    matches!(self.status, Available | Reserved),
                    "repriced when {}",
                    self.status
                );
                self.list_price = Some(new_price);
            }
            VehicleEvent::VehicleRelocated { to, .. } => {
                debug_assert!(!self.status.is_terminal(), "relocated when {}", self.status);
                self.location = Some(to);
            }
            VehicleEvent::VehicleReserved { order_id } => {
                debug_assert_eq!(self.status, Available, "reserved when not available");
                debug_assert_eq!(self.reserved_for, None, "reserved twice");
                self.status = Reserved;
                self.reserved_for = Some(order_id);
            }
            VehicleEvent::VehicleReservationReleased { order_id } => {
                debug_assert_eq!(self.reserved_for, Some(order_id), "released by non-holder");
                self.status = Available;
                self.reserved_for = None;
            }
            VehicleEvent::VehicleSold { order_id } => {
                debug_assert_eq!(self.reserved_for, Some(order_id), "sold to non-holder");
                self.status = Sold;
                self.reserved_for = None;
            }
            VehicleEvent::VehicleWithdrawn { .. } => {
                debug_assert_eq!(self.status, Available, "withdrawn when not available");
                self.status = Withdrawn;
                self.reserved_for = None;
            }
            VehicleEvent::VehicleServiceRecorded {
                booking_id,
                mileage_km,
                work,
                cost,
                ..
            } => {
                debug_assert_ne!(self.status, NotStocked, "serviced before stocking");
                debug_assert!(mileage_km >= self.mileage_km, "odometer went backwards");
                debug_assert!(!self.services.contains_key(&booking_id), "recorded twice");
                self.mileage_km = mileage_km;
                self.services.insert(
                    booking_id,
                    ServiceRecord {
                        mileage_km,
                        work,
                        cost,
                    },
                );
            }
        }
    }
}

#[cfg(test)]
mod tests;
