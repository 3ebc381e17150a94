//! GraphQL mutations: one per command. Each validates its input, sends the command with the caller's
//! metadata, waits (bounded) until the read models show the write, and returns the affected object
//! with the global position of the last event written.

use std::time::Duration;

use aggregates::contact::{Email, Phone};
use aggregates::customer::CustomerCommand;
use aggregates::order::Discount;
use aggregates::vehicle::{Condition as DomainCondition, StockVehicle};
use aggregates::vin::Vin;
use async_graphql::{Context, InputObject, Object, SimpleObject};
use queries::customers::Customer;
use queries::input::{
    Address, Brand, Colour, EmailText, FullName, Id, IdempotencyKey, Location, Model, PhoneText,
    Reason, SpecificationName, SpecificationValue, Trim, VinText,
};
use queries::orders::Order;
use queries::scalars::{Decimal, MoneyInput, Position};
use queries::vehicles::{Condition, Vehicle};
use queries::{ApiError, ApiResult};
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::context::RequestContext;
use crate::dealership::Dealership;
use crate::error::CommandError;
use crate::sender::{Idempotency, Written};

/// How mutations behave; put into the schema's data.
#[derive(Clone, Copy, Debug)]
pub struct MutationSettings {
    /// How long a mutation waits for the read models to show its write before answering anyway.
    pub read_your_writes_timeout: Duration,
}

impl Default for MutationSettings {
    fn default() -> Self {
        Self {
            read_your_writes_timeout: Duration::from_secs(5),
        }
    }
}

/// A specification line on input.
#[derive(InputObject, Clone, Debug, Serialize)]
pub struct SpecificationInput {
    /// E.g. "engine". At most 100 characters.
    pub name: SpecificationName,
    /// E.g. "1.6 petrol". At most 500 characters.
    pub value: SpecificationValue,
}

#[derive(InputObject, Clone, Debug, Serialize)]
pub struct StockVehicleInput {
    /// Client-chosen id (a new one is generated when absent).
    pub id: Option<Id>,
    /// 17 characters, no I, O or Q; North American VINs must carry a valid check digit. Surrounding
    /// spaces are trimmed. At most 32 characters.
    pub vin: VinText,
    /// The make, e.g. "Lada". At most 100 characters.
    pub brand: Brand,
    /// E.g. "Vesta". At most 100 characters.
    pub model: Model,
    pub year: i32,
    /// Trim level, e.g. "Comfort". At most 100 characters.
    pub trim: Trim,
    /// At most 100 characters.
    pub colour: Colour,
    #[graphql(default)]
    pub mileage_km: i32,
    pub condition: Condition,
    /// Where the vehicle stands, e.g. "Showroom A". At most 200 characters.
    pub location: Location,
    pub list_price: MoneyInput,
    #[graphql(default)]
    pub specifications: Vec<SpecificationInput>,
}

#[derive(InputObject, Clone, Debug, Serialize)]
pub struct RegisterCustomerInput {
    /// Client-chosen id (a new one is generated when absent).
    pub id: Option<Id>,
    /// At most 200 characters.
    pub full_name: FullName,
    /// At most 254 characters.
    pub email: EmailText,
    /// Any common notation; stored in E.164 (Russian numbers may omit the country code).
    /// At most 32 characters.
    pub phone: PhoneText,
    /// At most 500 characters; may span lines.
    pub address: Address,
}

/// Only the fields given are changed.
#[derive(InputObject, Clone, Debug, Serialize)]
pub struct ContactDetailsInput {
    /// At most 254 characters.
    pub email: Option<EmailText>,
    /// Any common notation, as when registering. At most 32 characters.
    pub phone: Option<PhoneText>,
    /// At most 500 characters; may span lines.
    pub address: Option<Address>,
}

#[derive(InputObject, Clone, Debug, Serialize)]
pub struct DraftOrderInput {
    /// Client-chosen id (a new one is generated when absent).
    pub id: Option<Id>,
    pub customer_id: Id,
    pub vehicle_id: Id,
}

/// Exactly one of `percent` or `amount`.
#[derive(InputObject, Clone, Debug, Serialize)]
pub struct DiscountInput {
    /// A percentage of the list price, more than 0 and at most 100.
    pub percent: Option<Decimal>,
    /// A fixed amount off, in the order's currency.
    pub amount: Option<MoneyInput>,
}

#[derive(SimpleObject)]
pub struct VehiclePayload {
    /// The vehicle as the catalog now shows it (null only if the catalog could not catch up in time).
    pub vehicle: Option<Vehicle>,
    /// Global position of the last event written.
    pub position: Position,
    /// True when this answered a retry with an already-used idempotency key and wrote nothing.
    pub replayed: bool,
}

#[derive(SimpleObject)]
pub struct CustomerPayload {
    pub customer: Option<Customer>,
    pub position: Position,
    pub replayed: bool,
}

#[derive(SimpleObject)]
pub struct OrderPayload {
    pub order: Option<Order>,
    pub position: Position,
    pub replayed: bool,
}

/// Vehicles, customers and orders.
#[derive(Default)]
pub struct SalesMutation;

/// A command service the schema was built with (`.data(Arc::new(service))` in the app).
pub fn service<'a, T: Send + Sync + 'static>(ctx: &Context<'a>) -> ApiResult<&'a T> {
    ctx.data::<std::sync::Arc<T>>()
        .map(|service| service.as_ref())
        .map_err(|err| ApiError::internal(format!("schema data missing: {}", err.message)))
}

pub fn dealership<'a>(ctx: &Context<'a>) -> ApiResult<&'a Dealership> {
    service(ctx)
}

pub fn caller(ctx: &Context<'_>) -> RequestContext {
    ctx.data_opt::<RequestContext>()
        .cloned()
        .unwrap_or_default()
}

/// A record a mutation acts on, named by its id, for [`ensure_own`].
#[derive(Clone, Copy, Debug)]
pub enum Owned {
    Customer(Uuid),
    Order(Uuid),
    Loan(Uuid),
    Quote(Uuid),
    Policy(Uuid),
    Booking(Uuid),
}

/// Refuses a mutation on a record the caller may not act on, exactly as if it did not exist
/// (`NOT_FOUND`): a client acts on its own customer's records only. Staff pass (the permission
/// matrix already decided they may run the mutation at all); anyone else is refused.
///
/// The owner is read from the read models: whose customer an order, loan, quote, policy or
/// booking is never changes, so a read model that lags can only make a record look missing for a
/// moment, never make another customer's record look owned.
pub async fn ensure_own(ctx: &Context<'_>, owned: Owned) -> ApiResult<()> {
    let own = match queries::access::scope(ctx) {
        queries::access::Scope::Everything => return Ok(()),
        queries::access::Scope::Customer(own) => Some(own),
        _ => None,
    };
    let pool = queries::read_models(ctx)?.pool();
    let (what, id, owner) = match owned {
        Owned::Customer(id) => (
            "customer",
            id,
            queries::customers::find(pool, id).await?.map(|c| c.id),
        ),
        Owned::Order(id) => (
            "order",
            id,
            queries::orders::find(pool, id)
                .await?
                .map(|o| o.customer_id),
        ),
        Owned::Loan(id) => (
            "loan",
            id,
            queries::loans::find(pool, id).await?.map(|l| l.customer_id),
        ),
        Owned::Quote(id) => (
            "quote",
            id,
            queries::insurance::find_quote(pool, id)
                .await?
                .map(|q| q.customer_id),
        ),
        Owned::Policy(id) => (
            "policy",
            id,
            queries::insurance::find_policy(pool, id)
                .await?
                .map(|p| p.customer_id),
        ),
        Owned::Booking(id) => (
            "booking",
            id,
            queries::bookings::find(pool, id)
                .await?
                .map(|b| b.customer_id),
        ),
    };
    match (own, owner) {
        (Some(own), Some(owner)) if own == owner => Ok(()),
        _ => Err(ApiError::not_found(what, id)),
    }
}

/// Validates the key and fingerprints the mutation's name and input.
/// Length, characters and blankness are checked by [`IdempotencyKey`] itself.
pub fn idempotency(
    key: Option<IdempotencyKey>,
    mutation: &str,
    input: &impl Serialize,
) -> ApiResult<Option<Idempotency>> {
    let Some(key) = key else { return Ok(None) };
    let key = key.trim().to_string();
    let input = serde_json::to_vec(&(mutation, input)).map_err(ApiError::internal)?;
    let fingerprint = Sha256::digest(&input)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(Some(Idempotency { key, fingerprint }))
}

/// Waits until every read model reflects `written`, bounded by the configured timeout, and records
/// for `extensions.readYourWrites` whether they did ([`crate::read_your_writes`]).
pub async fn settle(ctx: &Context<'_>, written: &Written) -> ApiResult<()> {
    let read = queries::read_models(ctx)?;
    let timeout = ctx
        .data_opt::<MutationSettings>()
        .copied()
        .unwrap_or_default()
        .read_your_writes_timeout;
    let caught_up = read.projections().wait_for(written.position, timeout).await;
    let positions: Vec<_> = read
        .projections()
        .statuses()
        .into_iter()
        .map(|(name, status)| (name, status.position))
        .collect();
    if !caught_up {
        let lagging: Vec<_> = positions
            .iter()
            .filter(|(_, position)| *position < written.position)
            .map(|(name, _)| *name)
            .collect();
        tracing::warn!(
            position = written.position,
            ?lagging,
            "read models did not reach the write in time; the answer says so"
        );
    }
    crate::read_your_writes::record(ctx, written.position, caught_up, positions);
    Ok(())
}

async fn vehicle_payload(ctx: &Context<'_>, written: Written) -> ApiResult<VehiclePayload> {
    settle(ctx, &written).await?;
    Ok(VehiclePayload {
        vehicle: queries::vehicles::find(queries::read_models(ctx)?.pool(), written.id).await?,
        position: Position(written.position),
        replayed: written.replayed,
    })
}

async fn customer_payload(ctx: &Context<'_>, written: Written) -> ApiResult<CustomerPayload> {
    settle(ctx, &written).await?;
    Ok(CustomerPayload {
        customer: queries::customers::find(queries::read_models(ctx)?.pool(), written.id).await?,
        position: Position(written.position),
        replayed: written.replayed,
    })
}

pub(crate) async fn order_payload(ctx: &Context<'_>, written: Written) -> ApiResult<OrderPayload> {
    settle(ctx, &written).await?;
    Ok(OrderPayload {
        order: queries::orders::find(queries::read_models(ctx)?.pool(), written.id).await?,
        position: Position(written.position),
        replayed: written.replayed,
    })
}

pub fn validation(err: impl std::fmt::Display) -> ApiError {
    ApiError::validation(err.to_string())
}

pub fn to_api(err: CommandError) -> ApiError {
    err.into()
}

#[Object]
impl SalesMutation {
    /// Takes a vehicle into stock, available for sale at its list price.
    async fn stock_vehicle(
        &self,
        ctx: &Context<'_>,
        input: StockVehicleInput,
        #[graphql(
            desc = "A retry with the same key and input answers the first result and writes nothing. At most 200 characters."
        )]
        idempotency_key: Option<IdempotencyKey>,
    ) -> async_graphql::Result<VehiclePayload> {
        let key = idempotency(idempotency_key, "stockVehicle", &input)?;
        let dealership = dealership(ctx)?;
        let stock = StockVehicle {
            vin: Vin::parse(&input.vin).map_err(validation)?,
            brand: input.brand.into(),
            model: input.model.into(),
            year: input.year,
            trim: input.trim.into(),
            colour: input.colour.into(),
            mileage_km: u32::try_from(input.mileage_km)
                .map_err(|_| ApiError::validation("mileageKm must not be negative"))?,
            condition: match input.condition {
                Condition::New => DomainCondition::New,
                Condition::Used => DomainCondition::Used,
            },
            location: input.location.into(),
            list_price: input.list_price.to_domain()?,
            specifications: Dealership::clean_specifications(
                input
                    .specifications
                    .into_iter()
                    .map(|s| (s.name.into(), s.value.into()))
                    .collect(),
            )
            .map_err(to_api)?,
            stocked_at: dealership.now(),
        };
        let id = dealership.id_or_new(input.id.map(Id::uuid), key.as_ref());
        let written = dealership
            .stock_vehicle(&caller(ctx), id, stock, key.as_ref())
            .await
            .map_err(to_api)?;
        Ok(vehicle_payload(ctx, written).await?)
    }

    /// Changes a vehicle's list price (not once sold or withdrawn).
    async fn reprice_vehicle(
        &self,
        ctx: &Context<'_>,
        id: Id,
        price: MoneyInput,
        #[graphql(
            desc = "A retry with the same key and input answers the first result and writes nothing. At most 200 characters."
        )]
        idempotency_key: Option<IdempotencyKey>,
    ) -> async_graphql::Result<VehiclePayload> {
        let id = id.uuid();
        let key = idempotency(idempotency_key, "repriceVehicle", &(id, price))?;
        let written = dealership(ctx)?
            .reprice_vehicle(&caller(ctx), id, price.to_domain()?, key.as_ref())
            .await
            .map_err(to_api)?;
        Ok(vehicle_payload(ctx, written).await?)
    }

    /// Moves a vehicle to another location (showroom, lot, workshop...).
    async fn relocate_vehicle(
        &self,
        ctx: &Context<'_>,
        id: Id,
        #[graphql(desc = "Where the vehicle now stands. At most 200 characters.")]
        location: Location,
        #[graphql(
            desc = "A retry with the same key and input answers the first result and writes nothing. At most 200 characters."
        )]
        idempotency_key: Option<IdempotencyKey>,
    ) -> async_graphql::Result<VehiclePayload> {
        let id = id.uuid();
        let location = String::from(location);
        let key = idempotency(idempotency_key, "relocateVehicle", &(id, &location))?;
        let written = dealership(ctx)?
            .relocate_vehicle(&caller(ctx), id, location, key.as_ref())
            .await
            .map_err(to_api)?;
        Ok(vehicle_payload(ctx, written).await?)
    }

    /// Takes an available vehicle off sale.
    async fn withdraw_vehicle(
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
    ) -> async_graphql::Result<VehiclePayload> {
        let id = id.uuid();
        let reason = String::from(reason);
        let key = idempotency(idempotency_key, "withdrawVehicle", &(id, &reason))?;
        let written = dealership(ctx)?
            .withdraw_vehicle(&caller(ctx), id, reason, key.as_ref())
            .await
            .map_err(to_api)?;
        Ok(vehicle_payload(ctx, written).await?)
    }

    /// Frees a vehicle still held for a cancelled order (a cancellation whose release failed; retrying
    /// `cancelOrder` does the same). Refused for any other holder: a draft's half-done confirmation is
    /// finished by retrying `confirmOrder` or undone by `cancelOrder`.
    async fn release_vehicle_reservation(
        &self,
        ctx: &Context<'_>,
        id: Id,
        #[graphql(
            desc = "A retry with the same key and input answers the first result and writes nothing. At most 200 characters."
        )]
        idempotency_key: Option<IdempotencyKey>,
    ) -> async_graphql::Result<VehiclePayload> {
        let id = id.uuid();
        let key = idempotency(idempotency_key, "releaseVehicleReservation", &id)?;
        let written = dealership(ctx)?
            .release_vehicle_reservation(&caller(ctx), id, key.as_ref())
            .await
            .map_err(to_api)?;
        Ok(vehicle_payload(ctx, written).await?)
    }

    /// Registers a customer.
    async fn register_customer(
        &self,
        ctx: &Context<'_>,
        input: RegisterCustomerInput,
        #[graphql(
            desc = "A retry with the same key and input answers the first result and writes nothing. At most 200 characters."
        )]
        idempotency_key: Option<IdempotencyKey>,
    ) -> async_graphql::Result<CustomerPayload> {
        let key = idempotency(idempotency_key, "registerCustomer", &input)?;
        let dealership = dealership(ctx)?;
        let command = CustomerCommand::Register {
            full_name: input.full_name.into(),
            email: Email::parse(&input.email).map_err(validation)?,
            phone: Phone::parse(&input.phone).map_err(validation)?,
            address: input.address.into(),
            registered_at: dealership.now(),
        };
        let id = dealership.id_or_new(input.id.map(Id::uuid), key.as_ref());
        let written = dealership
            .register_customer(&caller(ctx), id, command, key.as_ref())
            .await
            .map_err(to_api)?;
        Ok(customer_payload(ctx, written).await?)
    }

    /// Changes a customer's email, phone or address.
    async fn change_customer_contact_details(
        &self,
        ctx: &Context<'_>,
        id: Id,
        input: ContactDetailsInput,
        #[graphql(
            desc = "A retry with the same key and input answers the first result and writes nothing. At most 200 characters."
        )]
        idempotency_key: Option<IdempotencyKey>,
    ) -> async_graphql::Result<CustomerPayload> {
        let id = id.uuid();
        ensure_own(ctx, Owned::Customer(id)).await?;
        let key = idempotency(
            idempotency_key,
            "changeCustomerContactDetails",
            &(id, &input),
        )?;
        let command = CustomerCommand::ChangeContactDetails {
            email: input
                .email
                .as_deref()
                .map(Email::parse)
                .transpose()
                .map_err(validation)?,
            phone: input
                .phone
                .as_deref()
                .map(Phone::parse)
                .transpose()
                .map_err(validation)?,
            address: input.address.map(String::from),
        };
        let written = dealership(ctx)?
            .change_customer_contact_details(&caller(ctx), id, command, key.as_ref())
            .await
            .map_err(to_api)?;
        Ok(customer_payload(ctx, written).await?)
    }

    /// Drafts a sales order for a customer and a vehicle, at the vehicle's current list price.
    async fn draft_order(
        &self,
        ctx: &Context<'_>,
        input: DraftOrderInput,
        #[graphql(
            desc = "A retry with the same key and input answers the first result and writes nothing. At most 200 characters."
        )]
        idempotency_key: Option<IdempotencyKey>,
    ) -> async_graphql::Result<OrderPayload> {
        let key = idempotency(idempotency_key, "draftOrder", &input)?;
        let dealership = dealership(ctx)?;
        let id = dealership.id_or_new(input.id.map(Id::uuid), key.as_ref());
        let written = dealership
            .draft_order(
                &caller(ctx),
                id,
                *input.customer_id,
                *input.vehicle_id,
                key.as_ref(),
            )
            .await
            .map_err(to_api)?;
        Ok(order_payload(ctx, written).await?)
    }

    /// Applies a discount to a draft order, replacing any earlier one. The total never goes below zero.
    async fn apply_order_discount(
        &self,
        ctx: &Context<'_>,
        id: Id,
        discount: DiscountInput,
        #[graphql(
            desc = "A retry with the same key and input answers the first result and writes nothing. At most 200 characters."
        )]
        idempotency_key: Option<IdempotencyKey>,
    ) -> async_graphql::Result<OrderPayload> {
        let id = id.uuid();
        let key = idempotency(idempotency_key, "applyOrderDiscount", &(id, &discount))?;
        let discount = match (discount.percent, discount.amount) {
            (Some(percent), None) => Discount::Percentage { percent: percent.0 },
            (None, Some(amount)) => Discount::Fixed {
                amount: amount.to_domain()?,
            },
            _ => return Err(ApiError::validation("give exactly one of percent or amount").into()),
        };
        let written = dealership(ctx)?
            .apply_order_discount(&caller(ctx), id, discount, key.as_ref())
            .await
            .map_err(to_api)?;
        Ok(order_payload(ctx, written).await?)
    }

    /// Confirms a draft order and reserves its vehicle. Refused with `VEHICLE_NOT_AVAILABLE` (and the
    /// order left a draft) when the vehicle is not free.
    async fn confirm_order(
        &self,
        ctx: &Context<'_>,
        id: Id,
        #[graphql(
            desc = "A retry with the same key and input answers the first result and writes nothing. At most 200 characters."
        )]
        idempotency_key: Option<IdempotencyKey>,
    ) -> async_graphql::Result<OrderPayload> {
        let id = id.uuid();
        let key = idempotency(idempotency_key, "confirmOrder", &id)?;
        let written = dealership(ctx)?
            .confirm_order(&caller(ctx), id, key.as_ref())
            .await
            .map_err(to_api)?;
        Ok(order_payload(ctx, written).await?)
    }

    /// Cancels a draft or confirmed order with a reason, freeing its vehicle.
    async fn cancel_order(
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
    ) -> async_graphql::Result<OrderPayload> {
        let id = id.uuid();
        let reason = String::from(reason);
        let key = idempotency(idempotency_key, "cancelOrder", &(id, &reason))?;
        let written = dealership(ctx)?
            .cancel_order(&caller(ctx), id, reason, key.as_ref())
            .await
            .map_err(to_api)?;
        Ok(order_payload(ctx, written).await?)
    }
}
