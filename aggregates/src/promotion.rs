//! Promotion: a discount offered under one promo code (seed 004 §3.7: code, percentage or fixed
//! value, validity window, usage limit), with the vehicles it applies to and how often it may be
//! used, in total and by one customer.
//!
//! The stream's id is derived from the code ([`promotion_id`]), so two promotions can never share
//! a code, and every redemption of a code appends to this one stream: racing redemptions meet at
//! its optimistic lock, and the aggregate — which counts the uses it holds — decides each one
//! against the winners. That is how "at most `total_uses` orders" holds under any concurrency.
//!
//! Invariants: the uses held never exceed `total_uses`, nor `uses_per_customer` for one customer;
//! one order holds a code at most once; `handle` enforces it, `apply` re-asserts it.
//! - Redeeming for an order that already holds the code is a no-op (a retry is safe), also after
//!   the promotion ended or expired: the use was granted while it was valid.
//! - Releasing an order's use (the order was cancelled, or the discount could not be applied) is a
//!   no-op for an order that holds none.
//! - The window is of business dates (the dealership's calendar day in Moscow, as the command
//!   layer computes it), both ends included.
//! - The discount amount is not computed here: the order computes it from its drafted price with
//!   the order's one rule (`order::Discount`, rounded by `money::KOPECK_ROUNDING`).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::order::Discount;
use crate::vehicle::Condition;

/// The namespace of promotion ids: UUIDv5 of the normalised code.
const PROMOTION_NAMESPACE: Uuid = Uuid::from_u128(0x7a1c_52e0_9b4d_4f3e_8c61_d2a0_35f9_b7e4);

/// The longest promo code, in characters.
pub const MAX_CODE_LENGTH: usize = 32;
/// The shortest promo code, in characters.
pub const MIN_CODE_LENGTH: usize = 3;
/// The most brands, models or conditions one promotion may name.
pub const MAX_ELIGIBLE_ENTRIES: usize = 50;

/// A code as stored and compared: trimmed and upper-cased. `None` when it is not 3 to 32 of
/// `A-Z`, `0-9` and `-`.
pub fn normalise_code(code: &str) -> Option<String> {
    let code = code.trim().to_uppercase();
    let valid = (MIN_CODE_LENGTH..=MAX_CODE_LENGTH).contains(&code.chars().count())
        && code
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-');
    valid.then_some(code)
}

/// The promotion's stream id for a code (already normalised).
pub fn promotion_id(code: &str) -> Uuid {
    Uuid::new_v5(&PROMOTION_NAMESPACE, code.as_bytes())
}

/// What a promotion offers, and to whom.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PromotionTerms {
    /// The normalised code customers quote ([`normalise_code`]).
    pub code: String,
    /// What staff and reports call it, e.g. "Spring 2026".
    pub name: String,
    pub discount: Discount,
    /// First business date the code may be applied.
    pub valid_from: NaiveDate,
    /// Last business date the code may be applied (included).
    pub valid_until: NaiveDate,
    /// Brands it applies to (compared without regard to case); empty: any brand.
    pub brands: Vec<String>,
    /// Models it applies to (compared without regard to case); empty: any model.
    pub models: Vec<String>,
    /// Conditions it applies to; empty: new and used cars alike.
    pub conditions: Vec<Condition>,
    /// How many orders may hold the code at once (a cancelled order's use is given back).
    pub total_uses: u32,
    /// How many of those orders may be one customer's.
    pub uses_per_customer: u32,
}

/// The facts about an order's vehicle that eligibility is decided on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EligibleVehicle {
    pub brand: String,
    pub model: String,
    pub condition: Condition,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum PromotionCommand {
    Create {
        terms: PromotionTerms,
        created_at: DateTime<Utc>,
    },
    /// No order may redeem the code any more; uses already held stay.
    End {
        reason: String,
        ended_at: DateTime<Utc>,
    },
    Redeem {
        order_id: Uuid,
        customer_id: Uuid,
        vehicle: EligibleVehicle,
        /// The business date the code is applied on (the window is checked against it).
        business_date: NaiveDate,
        redeemed_at: DateTime<Utc>,
    },
    /// Gives an order's use back.
    Release {
        order_id: Uuid,
        released_at: DateTime<Utc>,
    },
}

/// What happened to a promotion. The payloads are a public contract: see [`crate::upcasters`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum PromotionEvent {
    PromotionCreated {
        terms: PromotionTerms,
        created_at: DateTime<Utc>,
    },
    PromotionEnded {
        reason: String,
        ended_at: DateTime<Utc>,
    },
    /// `uses` is the number of uses held after this one, recorded so readers never count.
    PromoCodeRedeemed {
        order_id: Uuid,
        customer_id: Uuid,
        uses: u32,
        redeemed_at: DateTime<Utc>,
    },
    /// `uses` is the number of uses held after this one was given back.
    PromoCodeReleased {
        order_id: Uuid,
        customer_id: Uuid,
        uses: u32,
        released_at: DateTime<Utc>,
    },
}

impl DomainEvent for PromotionEvent {
    fn event_type(&self) -> String {
        match self {
            PromotionEvent::PromotionCreated { .. } => "PromotionCreated",
            PromotionEvent::PromotionEnded { .. } => "PromotionEnded",
            PromotionEvent::PromoCodeRedeemed { .. } => "PromoCodeRedeemed",
            PromotionEvent::PromoCodeReleased { .. } => "PromoCodeReleased",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

/// Why a promotion command was refused. Nothing was emitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PromotionError {
    /// No promotion has this code. The caller reports "not found" (a mistyped code).
    #[error("no promotion has this code")]
    NotFound,
    /// The code is taken by another promotion. The caller chooses another code.
    #[error("the promo code {code} is already taken")]
    CodeTaken { code: String },
    /// The terms are not possible (empty name, a window ending before it starts, a limit of zero,
    /// a percentage outside `(0, 100]`, a fixed amount of zero or less). The caller corrects them.
    #[error("{0}")]
    InvalidTerms(String),
    /// The business date is outside the window, or the promotion was ended. The caller tells the
    /// customer the code is no longer (or not yet) valid.
    #[error("the promo code is not valid on {date}")]
    Expired { date: NaiveDate },
    /// The order's vehicle is not one the promotion applies to.
    #[error("the promo code does not apply to this vehicle: {reason}")]
    NotEligible { reason: String },
    /// Every use is held by an order. Retrying will not help unless an order is cancelled.
    #[error("the promo code has been used {total_uses} times, its limit")]
    Exhausted { total_uses: u32 },
    /// This customer already holds as many uses as one customer may.
    #[error(
        "this customer has used the promo code {uses_per_customer} times, the limit for one customer"
    )]
    CustomerLimitReached { uses_per_customer: u32 },
    /// Ending a promotion without a reason.
    #[error("a reason for ending the promotion is required")]
    EmptyReason,
}

impl PromotionError {
    /// A stable, machine-readable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            PromotionError::NotFound => "NOT_FOUND",
            PromotionError::CodeTaken { .. } => "PROMO_CODE_TAKEN",
            PromotionError::InvalidTerms(_) | PromotionError::EmptyReason => "VALIDATION",
            PromotionError::Expired { .. } => "PROMO_CODE_EXPIRED",
            PromotionError::NotEligible { .. } => "PROMO_CODE_NOT_ELIGIBLE",
            PromotionError::Exhausted { .. } => "PROMO_CODE_EXHAUSTED",
            PromotionError::CustomerLimitReached { .. } => "PROMO_CODE_CUSTOMER_LIMIT",
        }
    }
}

/// The state a promotion's decisions need.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Promotion {
    terms: Option<PromotionTerms>,
    ended: bool,
    /// The orders holding a use, with their customers.
    held: BTreeMap<Uuid, Uuid>,
}

impl Promotion {
    pub fn terms(&self) -> Option<&PromotionTerms> {
        self.terms.as_ref()
    }

    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// How many orders hold the code now.
    pub fn uses(&self) -> u32 {
        u32::try_from(self.held.len()).unwrap_or(u32::MAX)
    }

    /// Whether `order_id` holds a use.
    pub fn holds(&self, order_id: Uuid) -> bool {
        self.held.contains_key(&order_id)
    }

    fn uses_of(&self, customer_id: Uuid) -> u32 {
        let count = self.held.values().filter(|c| **c == customer_id).count();
        u32::try_from(count).unwrap_or(u32::MAX)
    }

    fn decide(&self, command: PromotionCommand) -> Result<Option<PromotionEvent>, PromotionError> {
        match command {
            PromotionCommand::Create { terms, created_at } => {
                let terms = valid_terms(terms)?;
                if let Some(existing) = &self.terms {
                    if *existing == terms {
                        // The same promotion created again: a retry.
                        return Ok(None);
                    }
                    return Err(PromotionError::CodeTaken {
                        code: existing.code.clone(),
                    });
                }
                Ok(Some(PromotionEvent::PromotionCreated { terms, created_at }))
            }
            PromotionCommand::End { reason, ended_at } => {
                self.terms.as_ref().ok_or(PromotionError::NotFound)?;
                if self.ended {
                    return Ok(None);
                }
                let reason = reason.trim();
                if reason.is_empty() {
                    return Err(PromotionError::EmptyReason);
                }
                Ok(Some(PromotionEvent::PromotionEnded {
                    reason: reason.to_owned(),
                    ended_at,
                }))
            }
            PromotionCommand::Redeem {
                order_id,
                customer_id,
                vehicle,
                business_date,
                redeemed_at,
            } => {
                let terms = self.terms.as_ref().ok_or(PromotionError::NotFound)?;
                if self.holds(order_id) {
                    return Ok(None);
                }
                if self.ended
                    || business_date < terms.valid_from
                    || business_date > terms.valid_until
                {
                    return Err(PromotionError::Expired {
                        date: business_date,
                    });
                }
                eligible(terms, &vehicle)?;
                if self.uses() >= terms.total_uses {
                    return Err(PromotionError::Exhausted {
                        total_uses: terms.total_uses,
                    });
                }
                if self.uses_of(customer_id) >= terms.uses_per_customer {
                    return Err(PromotionError::CustomerLimitReached {
                        uses_per_customer: terms.uses_per_customer,
                    });
                }
                Ok(Some(PromotionEvent::PromoCodeRedeemed {
                    order_id,
                    customer_id,
                    uses: self.uses() + 1,
                    redeemed_at,
                }))
            }
            PromotionCommand::Release {
                order_id,
                released_at,
            } => {
                self.terms.as_ref().ok_or(PromotionError::NotFound)?;
                let Some(customer_id) = self.held.get(&order_id) else {
                    return Ok(None);
                };
                Ok(Some(PromotionEvent::PromoCodeReleased {
                    order_id,
                    customer_id: *customer_id,
                    uses: self.uses() - 1,
                    released_at,
                }))
            }
        }
    }
}

/// The terms as stored (texts trimmed), or why they are not possible.
fn valid_terms(mut terms: PromotionTerms) -> Result<PromotionTerms, PromotionError> {
    let invalid = |why: &str| Err(PromotionError::InvalidTerms(why.to_owned()));
    let Some(code) = normalise_code(&terms.code) else {
        return invalid("a promo code is 3 to 32 of the letters A-Z, digits and '-'");
    };
    terms.code = code;
    terms.name = terms.name.trim().to_owned();
    if terms.name.is_empty() {
        return invalid("a promotion needs a name");
    }
    if terms.valid_until < terms.valid_from {
        return invalid("the validity window ends before it starts");
    }
    if terms.total_uses == 0 || terms.uses_per_customer == 0 {
        return invalid("usage limits must be at least 1");
    }
    if terms.uses_per_customer > terms.total_uses {
        return invalid("the limit for one customer cannot exceed the total limit");
    }
    match &terms.discount {
        Discount::Percentage { percent } => {
            if *percent <= Decimal::ZERO || *percent > Decimal::ONE_HUNDRED {
                return invalid("a percentage must be more than 0 and at most 100");
            }
        }
        Discount::Fixed { amount } => {
            if !amount.is_positive() {
                return invalid("a fixed discount must be more than zero");
            }
        }
    }
    for list in [&mut terms.brands, &mut terms.models] {
        for entry in list.iter_mut() {
            *entry = entry.trim().to_owned();
        }
        if list.iter().any(String::is_empty) {
            return invalid("brand and model names must not be empty");
        }
        list.sort_by_key(|entry| entry.to_lowercase());
        list.dedup_by_key(|entry| entry.to_lowercase());
    }
    terms.conditions.sort_by_key(|c| *c == Condition::Used);
    terms.conditions.dedup();
    if terms.brands.len() > MAX_ELIGIBLE_ENTRIES || terms.models.len() > MAX_ELIGIBLE_ENTRIES {
        return invalid("at most 50 brands and 50 models");
    }
    Ok(terms)
}

/// Whether the terms cover this vehicle.
fn eligible(terms: &PromotionTerms, vehicle: &EligibleVehicle) -> Result<(), PromotionError> {
    let named = |list: &[String], value: &str| {
        list.is_empty()
            || list
                .iter()
                .any(|entry| entry.to_lowercase() == value.trim().to_lowercase())
    };
    let reason = if !named(&terms.brands, &vehicle.brand) {
        Some(format!("brand {} is not included", vehicle.brand))
    } else if !named(&terms.models, &vehicle.model) {
        Some(format!("model {} is not included", vehicle.model))
    } else if !terms.conditions.is_empty() && !terms.conditions.contains(&vehicle.condition) {
        Some(format!("{:?} cars are not included", vehicle.condition))
    } else {
        None
    };
    match reason {
        Some(reason) => Err(PromotionError::NotEligible { reason }),
        None => Ok(()),
    }
}

impl Aggregate for Promotion {
    const TYPE: &'static str = "Promotion";
    type Command = PromotionCommand;
    type Event = PromotionEvent;
    type Error = PromotionError;
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

    fn apply(&mut self, event: Self::Event) {
        match event {
            PromotionEvent::PromotionCreated { terms, .. } => {
                debug_assert!(self.terms.is_none(), "created twice");
                self.terms = Some(terms);
            }
            PromotionEvent::PromotionEnded { .. } => self.ended = true,
            PromotionEvent::PromoCodeRedeemed {
                order_id,
                customer_id,
                uses,
                ..
            } => {
                self.held.insert(order_id, customer_id);
                debug_assert_eq!(self.uses(), uses, "redemption count disagrees");
                debug_assert!(
                    self.terms.as_ref().is_none_or(|t| uses <= t.total_uses),
                    "more uses than the limit"
                );
            }
            PromotionEvent::PromoCodeReleased { order_id, uses, .. } => {
                self.held.remove(&order_id);
                debug_assert_eq!(self.uses(), uses, "release count disagrees");
            }
        }
    }
}

#[cfg(test)]
mod tests;
