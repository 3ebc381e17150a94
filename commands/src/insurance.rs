//! Insurance on the command side: quotes from the partner insurers, issuing signed electronic
//! policies, premiums, cancellation, expiry and claims.
//!
//! Facts the [`Policy`] aggregate needs are looked up here and put into its commands: the vehicle's
//! brand, model, year, VIN and list price (from the vehicle's own stream), the insurers' offers
//! ([`InsurerPanel`]), today's date (UTC calendar day of the injected clock) and the signature over
//! the canonical policy document ([`PolicySigner`]).

mod mutations;

use std::sync::Arc;

use aggregates::customer::Customer;
use aggregates::money::Money;
use aggregates::policy::tariffs::{
    DEDUCTIBLE_OPTIONS_RUB, Driver, Product, QuoteTerms, VehicleFacts, deductible_coefficient,
};
use aggregates::policy::{Policy, PolicyCommand, PolicyError, RequestQuote, policy_number};
use aggregates::vehicle::{Vehicle, VehicleEvent, VehicleStatus};
use chrono::{Datelike, NaiveDate};
use cqrs_es::EventStore;
use eventstore::{Cqrs, Database, Store, Upcasters};
use uuid::Uuid;

use crate::clock::{Clock, IdGenerator};
use crate::context::RequestContext;
use crate::error::CommandError;
use crate::insurers::InsurerPanel;
use crate::sender::{Call, Idempotency, Sender, Written};
use crate::signing::PolicySigner;

pub use mutations::InsuranceMutation;

/// What a quote request asks for, as the caller states it.
#[derive(Clone, Debug)]
pub struct QuoteRequest {
    pub product: Product,
    pub customer_id: Uuid,
    pub vehicle_id: Uuid,
    pub driver: Driver,
    /// Engine power from the registration certificate.
    pub power_hp: u32,
    /// KASKO only; `None` means no deductible.
    pub deductible: Option<Money>,
}

/// Sends commands to policies.
pub struct Insurance {
    sender: Sender,
    policies: Cqrs<Policy>,
    policy_store: Store<Policy>,
    vehicle_store: Store<Vehicle>,
    customer_store: Store<Customer>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    insurers: InsurerPanel,
    signer: Arc<PolicySigner>,
}

impl Insurance {
    pub fn new(
        db: Database,
        upcasters: Upcasters,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
        insurers: InsurerPanel,
        signer: Arc<PolicySigner>,
    ) -> Self {
        Self {
            sender: Sender::new(&db, &upcasters),
            policies: db.framework(&upcasters, ()),
            policy_store: db.store(&upcasters),
            vehicle_store: db.store(&upcasters),
            customer_store: db.store(&upcasters),
            clock,
            ids,
            insurers,
            signer,
        }
    }

    /// The id a create command uses: see [`crate::sender::aggregate_id`].
    pub fn id_or_new(&self, id: Option<Uuid>, idempotency: Option<&Idempotency>) -> Uuid {
        crate::sender::aggregate_id(self.ids.as_ref(), id, idempotency)
    }

    /// Today's date: the business date (Moscow) of the clock.
    pub fn today(&self) -> NaiveDate {
        crate::clock::business_date(self.clock.now())
    }

    /// Current state of a policy (write model).
    pub async fn policy(&self, id: Uuid) -> Result<Policy, CommandError> {
        self.sender.load(&self.policy_store, id).await
    }

    /// Asks every partner insurer for an offer and records the quote (id = the future policy's id).
    pub async fn request_quote(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        request: QuoteRequest,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        // A retry must not ask the insurers again: their answers might differ.
        if let Some(written) = self.sender.replay(id, idempotency).await? {
            return Ok(written);
        }
        if let Some(problem) = request.driver.problem() {
            return Err(CommandError::Validation(problem));
        }
        if request.power_hp == 0 || request.power_hp > 2_000 {
            return Err(CommandError::Validation(format!(
                "enginePowerHp must be 1 to 2000, got {}",
                request.power_hp
            )));
        }
        let deductible = match (request.product, request.deductible) {
            (_, None) => Money::zero(aggregates::money::Currency::RUB),
            (Product::Osago, Some(amount)) if amount.is_zero() => amount,
            (Product::Osago, Some(_)) => {
                return Err(CommandError::Validation(
                    "OSAGO has no deductible".to_owned(),
                ));
            }
            (Product::Kasko, Some(amount)) => {
                if deductible_coefficient(amount).is_none() {
                    let options: Vec<String> = DEDUCTIBLE_OPTIONS_RUB
                        .iter()
                        .map(|(roubles, _)| roubles.to_string())
                        .collect();
                    return Err(CommandError::Validation(format!(
                        "deductible {amount} is not offered; choose one of {} RUB",
                        options.join(", ")
                    )));
                }
                amount
            }
        };
        let customer: Customer = self
            .sender
            .load(&self.customer_store, request.customer_id)
            .await?;
        if !customer.is_registered() {
            return Err(CommandError::NotFound {
                what: "customer",
                id: request.customer_id.to_string(),
            });
        }
        let (vehicle, vin) = self
            .vehicle_facts(request.vehicle_id, request.power_hp)
            .await?;
        let now = self.clock.now();
        let terms = QuoteTerms {
            product: request.product,
            vehicle,
            driver: request.driver,
            deductible,
            quote_year: now.year(),
        };
        let answer = self.insurers.quote(&terms).await;
        let command = PolicyCommand::RequestQuote(RequestQuote {
            customer_id: request.customer_id,
            vehicle_id: request.vehicle_id,
            vehicle_vin: vin,
            terms,
            offers: answer.offers,
            unanswered: answer.unanswered,
            requested_at: now,
        });
        self.sender
            .execute(
                &self.policies,
                id,
                command,
                Call::new(ctx, "RequestInsuranceQuote", idempotency),
            )
            .await
    }

    /// Brand, model, year and value of a stocked vehicle (from its own stream), and its VIN.
    async fn vehicle_facts(
        &self,
        vehicle_id: Uuid,
        power_hp: u32,
    ) -> Result<(VehicleFacts, String), CommandError> {
        let not_found = || CommandError::NotFound {
            what: "vehicle",
            id: vehicle_id.to_string(),
        };
        let vehicle: Vehicle = self.sender.load(&self.vehicle_store, vehicle_id).await?;
        let (Some(value), Some(vin)) = (vehicle.list_price(), vehicle.vin()) else {
            return Err(not_found());
        };
        if vehicle.status() == VehicleStatus::Withdrawn {
            return Err(CommandError::VehicleNotAvailable {
                vehicle_id: vehicle_id.to_string(),
                reason: "it is WITHDRAWN".into(),
            });
        }
        let events = self
            .vehicle_store
            .load_events(&vehicle_id.to_string())
            .await
            .map_err(|err| {
                CommandError::from_aggregate(format!("loading vehicle {vehicle_id}"), err)
            })?;
        let stocked = events
            .into_iter()
            .find_map(|envelope| match envelope.payload {
                VehicleEvent::VehicleStocked {
                    brand, model, year, ..
                } => Some((brand, model, year)),
                _ => None,
            });
        let (brand, model, year) = stocked.ok_or_else(not_found)?;
        Ok((
            VehicleFacts {
                brand,
                model,
                year,
                value,
                power_hp,
            },
            vin.as_str().to_owned(),
        ))
    }

    /// Selects `insurer`'s offer from quote `id` and issues the signed policy, starting on `start`
    /// (today when absent).
    pub async fn select_offer(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        insurer: String,
        start: Option<NaiveDate>,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        if let Some(written) = self.sender.replay(id, idempotency).await? {
            return Ok(written);
        }
        let policy = self.policy(id).await?;
        let issued_at = self.clock.now();
        let start = start.unwrap_or_else(|| crate::clock::business_date(issued_at));
        let insurer = insurer.trim().to_uppercase();
        let product = policy
            .quote()
            .map(|quote| quote.terms.product)
            .ok_or(CommandError::Policy(PolicyError::NotQuoted))?;
        let number = policy_number(product, issued_at.year(), id);
        let document = policy.document_for(&insurer, start, &number, issued_at)?;
        let signature = self.signer.sign(&document.canonical());
        let command = PolicyCommand::Issue {
            insurer,
            start,
            policy_number: number,
            issued_at,
            signature,
            key_id: self.signer.public().key_id().to_owned(),
        };
        self.sender
            .execute(
                &self.policies,
                id,
                command,
                Call::new(ctx, "SelectInsuranceOffer", idempotency),
            )
            .await
    }

    /// Sends one command to a policy.
    pub async fn send(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        command: PolicyCommand,
        name: &'static str,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        self.sender
            .execute(
                &self.policies,
                id,
                command,
                Call::new(ctx, name, idempotency),
            )
            .await
    }

    pub async fn pay_premium(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        amount: Money,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        let command = PolicyCommand::PayPremium {
            amount,
            paid_at: self.clock.now(),
        };
        self.send(ctx, id, command, "PayPolicyPremium", idempotency)
            .await
    }

    /// Cancels today with a pro-rata refund.
    pub async fn cancel(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        reason: String,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        let now = self.clock.now();
        let command = PolicyCommand::Cancel {
            reason,
            today: crate::clock::business_date(now),
            cancelled_at: now,
        };
        self.send(ctx, id, command, "CancelPolicy", idempotency)
            .await
    }

    pub async fn expire(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        let command = PolicyCommand::Expire {
            today: self.today(),
        };
        self.send(ctx, id, command, "ExpirePolicy", idempotency)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn file_claim(
        &self,
        ctx: &RequestContext,
        policy_id: Uuid,
        claim_id: Uuid,
        incident_on: NaiveDate,
        description: String,
        claimed: Money,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        let now = self.clock.now();
        let command = PolicyCommand::FileClaim {
            claim_id,
            incident_on,
            description,
            claimed,
            today: crate::clock::business_date(now),
            filed_at: now,
        };
        self.send(ctx, policy_id, command, "FileInsuranceClaim", idempotency)
            .await
    }

    pub async fn start_claim_review(
        &self,
        ctx: &RequestContext,
        policy_id: Uuid,
        claim_id: Uuid,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        let command = PolicyCommand::StartClaimReview {
            claim_id,
            at: self.clock.now(),
        };
        self.send(ctx, policy_id, command, "StartClaimReview", idempotency)
            .await
    }

    pub async fn approve_claim(
        &self,
        ctx: &RequestContext,
        policy_id: Uuid,
        claim_id: Uuid,
        amount: Money,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        let command = PolicyCommand::ApproveClaim {
            claim_id,
            amount,
            at: self.clock.now(),
        };
        self.send(
            ctx,
            policy_id,
            command,
            "ApproveInsuranceClaim",
            idempotency,
        )
        .await
    }

    pub async fn reject_claim(
        &self,
        ctx: &RequestContext,
        policy_id: Uuid,
        claim_id: Uuid,
        reason: String,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        let command = PolicyCommand::RejectClaim {
            claim_id,
            reason,
            at: self.clock.now(),
        };
        self.send(ctx, policy_id, command, "RejectInsuranceClaim", idempotency)
            .await
    }

    pub async fn pay_claim(
        &self,
        ctx: &RequestContext,
        policy_id: Uuid,
        claim_id: Uuid,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        let command = PolicyCommand::PayClaim {
            claim_id,
            at: self.clock.now(),
        };
        self.send(ctx, policy_id, command, "PayInsuranceClaim", idempotency)
            .await
    }
}
