//! Policy: a motor insurance policy sold by the dealership as agent of a partner insurer, from the
//! quote to its end, with the claims made on it.
//!
//! One stream holds the quote and the policy that comes of it: the quote id is the policy id.
//!
//! ```text
//! NotQuoted --RequestQuote--> Quoted --Issue--> Issued --PayPremium--> Active
//!                                               Issued, Active --Cancel--> Cancelled
//!                                               Issued, Active --Expire--> Expired
//! Active, Cancelled, Expired: FileClaim and the claim steps (see [`claims`])
//! ```
//!
//! Invariants (`handle` enforces them, `apply` re-asserts them with `debug_assert!`):
//! - a policy is issued only from an offer recorded in its own quote, at that offer's premium,
//!   coverage and deductible, so a client cannot tamper with a price;
//! - the sum of approved claim amounts never exceeds `coverage − deductible` (an aggregate limit,
//!   see [`claims`]), so paid claims never exceed it either;
//! - a cancellation refund is between zero and the premium paid.
//!
//! Rules a dealership's insurance desk would expect:
//! - **Quotes.** The command layer asks the partner insurers ([`tariffs`]) and records whatever
//!   offers came back, and which insurers did not answer. A quote with no offer is refused
//!   ([`PolicyError::NoOffers`]). A quote can be taken up for [`QUOTE_VALID_DAYS`] days.
//! - **Issue.** The period is `[start, start + 12 months)`: cover begins at 00:00 of `start` and ends
//!   at 00:00 of the end date. `start` is between the day of issue and [`MAX_START_DELAY_DAYS`] days
//!   later. The policy number is derived from the policy id ([`policy_number`]), so it is unique
//!   without a counter. The agent commission is `premium × commission % ` of the offer, rounded to
//!   kopecks by [`KOPECK_ROUNDING`](crate::money::KOPECK_ROUNDING), and recorded at issue for the
//!   monthly settlement with insurers. The signed electronic policy ([`document`]) is recorded with
//!   its signature and the signing key's id; signing happens outside, this aggregate only stores it.
//! - **Premium.** Paid once, in full: the amount must equal the premium. Payment makes the policy
//!   active.
//! - **Cancellation** (from issued or active, with a reason, on a day before the period ends).
//!   The day of cancellation is still covered. Refund ([`pro_rata_refund`]):
//!   `premium × unused days / days in the period`, rounded to kopecks by `KOPECK_ROUNDING`, where
//!   unused days = all of them when cancelled before the start, otherwise `end − cancellation day − 1`.
//!   So it is the full premium before the start and zero on the last day. No refund when the premium
//!   was never paid, nor while any claim is filed, under review, approved or paid (the insurer
//!   carries or carried the risk). Conversely, a cancelled policy whose premium was refunded takes no
//!   further claims (`PremiumRefunded`): the customer has taken the unused premium back, and an
//!   insurer does not both refund the cover and pay for it.
//!   The commission recorded at issue is not rewritten; the refund is recorded beside it, so the
//!   monthly settlement can claw commission back in proportion (`commission × refund / premium`).
//! - **Expiry.** `Expire { today }` once `today >= end`.
//! - **Claims.** Filed on an active policy, or on a cancelled or expired one for an incident that
//!   happened while it covered: the incident date must lie in the period (and, for a cancelled
//!   policy, on or before the cancellation day) and not after today
//!   ([`PolicyError::IncidentOutsidePeriod`]). The amount claimed must fit what is left of the limit.
//!   A claim is reviewed, then approved for at most its claimed amount and what is left of the limit
//!   ([`PolicyError::ClaimExceedsCoverage`]), or rejected with a reason; an approved claim is paid
//!   once, for exactly the approved amount.

pub mod claims;
pub mod document;
pub mod tariffs;

use std::fmt;

use chrono::{DateTime, Months, NaiveDate, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::money::{Currency, Money, round_to_kopecks};
use claims::{Claim, ClaimStatus, Claims};
use document::PolicyDocument;
use tariffs::{Offer, Product, QuoteTerms};

/// How many days after the quote an offer can still be selected.
pub const QUOTE_VALID_DAYS: i64 = 30;
/// The latest a policy may start, in days after its issue.
pub const MAX_START_DELAY_DAYS: i64 = 60;
/// The longest free text (description, reason) accepted.
pub const MAX_TEXT_CHARS: usize = 2_000;

/// The policy number of policy `id`: `ASL-<PRODUCT>-<year of issue>-<id as 32 upper-case hex digits>`,
/// e.g. `ASL-OSAGO-2026-0193A4B00000700080000000000000E1`. Unique because ids are.
pub fn policy_number(product: Product, issue_year: i32, id: Uuid) -> String {
    format!(
        "ASL-{}-{issue_year}-{}",
        product.as_str(),
        id.simple().to_string().to_uppercase()
    )
}

/// The refund for cancelling on `cancelled_on` a policy covering `[start, end)` whose premium
/// was `premium`: see the module docs. Never negative, never more than `premium`.
pub fn pro_rata_refund(
    premium: Money,
    start: NaiveDate,
    end: NaiveDate,
    cancelled_on: NaiveDate,
) -> Money {
    let total_days = (end - start).num_days();
    if total_days <= 0 || !premium.is_positive() {
        return Money::zero(premium.currency());
    }
    let unused_days = if cancelled_on < start {
        total_days
    } else {
        ((end - cancelled_on).num_days() - 1).clamp(0, total_days)
    };
    let share = premium.amount() * Decimal::from(unused_days) / Decimal::from(total_days);
    Money::new(round_to_kopecks(share), premium.currency())
        .unwrap_or_else(|_| Money::zero(premium.currency()))
}

/// Where a policy is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum PolicyStatus {
    /// No event yet.
    #[default]
    NotQuoted,
    /// Offers recorded, none selected yet.
    Quoted,
    /// Issued, premium not yet paid: no cover for claims yet.
    Issued,
    Active,
    Cancelled,
    Expired,
}

impl PolicyStatus {
    /// The stable upper-case name used by the API and the read models.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyStatus::NotQuoted => "NOT_QUOTED",
            PolicyStatus::Quoted => "QUOTED",
            PolicyStatus::Issued => "ISSUED",
            PolicyStatus::Active => "ACTIVE",
            PolicyStatus::Cancelled => "CANCELLED",
            PolicyStatus::Expired => "EXPIRED",
        }
    }
}

impl fmt::Display for PolicyStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A quote request with the offers the insurers made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestQuote {
    /// The customer who will hold the policy.
    pub customer_id: Uuid,
    pub vehicle_id: Uuid,
    pub vehicle_vin: String,
    pub terms: QuoteTerms,
    pub offers: Vec<Offer>,
    /// Insurers that failed or did not answer in time.
    pub unanswered: Vec<String>,
    pub requested_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PolicyCommand {
    RequestQuote(RequestQuote),
    /// Select the offer of `insurer` from the quote and issue the policy.
    Issue {
        insurer: String,
        start: NaiveDate,
        /// From [`policy_number`].
        policy_number: String,
        issued_at: DateTime<Utc>,
        /// Base64 Ed25519 signature over [`Policy::document_for`]'s canonical text.
        signature: String,
        /// Which dealership key signed it.
        key_id: String,
    },
    PayPremium {
        amount: Money,
        paid_at: DateTime<Utc>,
    },
    Cancel {
        reason: String,
        /// The cancellation day (covered): the Moscow business date of `cancelled_at`.
        today: NaiveDate,
        cancelled_at: DateTime<Utc>,
    },
    Expire {
        today: NaiveDate,
    },
    FileClaim {
        claim_id: Uuid,
        incident_on: NaiveDate,
        description: String,
        claimed: Money,
        today: NaiveDate,
        filed_at: DateTime<Utc>,
    },
    StartClaimReview {
        claim_id: Uuid,
        at: DateTime<Utc>,
    },
    ApproveClaim {
        claim_id: Uuid,
        amount: Money,
        at: DateTime<Utc>,
    },
    RejectClaim {
        claim_id: Uuid,
        reason: String,
        at: DateTime<Utc>,
    },
    PayClaim {
        claim_id: Uuid,
        at: DateTime<Utc>,
    },
}

/// What happened to a policy. The payloads are a public contract: see [`crate::upcasters`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PolicyEvent {
    QuoteRequested {
        customer_id: Uuid,
        vehicle_id: Uuid,
        vehicle_vin: String,
        terms: QuoteTerms,
        offers: Vec<Offer>,
        unanswered: Vec<String>,
        requested_at: DateTime<Utc>,
    },
    PolicyIssued {
        policy_number: String,
        insurer: String,
        product: Product,
        holder: Uuid,
        vehicle_id: Uuid,
        vehicle_vin: String,
        period_start: NaiveDate,
        period_end: NaiveDate,
        coverage: Money,
        premium: Money,
        deductible: Money,
        commission_percent: Decimal,
        commission: Money,
        issued_at: DateTime<Utc>,
        /// The canonical electronic policy, exactly the bytes that were signed.
        document: String,
        signature: String,
        key_id: String,
    },
    PolicyPremiumPaid {
        amount: Money,
        paid_at: DateTime<Utc>,
    },
    PolicyCancelled {
        reason: String,
        cancelled_on: NaiveDate,
        refund: Money,
        cancelled_at: DateTime<Utc>,
    },
    PolicyExpired {
        expired_on: NaiveDate,
    },
    ClaimFiled {
        claim_id: Uuid,
        incident_on: NaiveDate,
        description: String,
        claimed: Money,
        filed_at: DateTime<Utc>,
    },
    ClaimReviewStarted {
        claim_id: Uuid,
        at: DateTime<Utc>,
    },
    ClaimApproved {
        claim_id: Uuid,
        amount: Money,
        at: DateTime<Utc>,
    },
    ClaimRejected {
        claim_id: Uuid,
        reason: String,
        at: DateTime<Utc>,
    },
    ClaimPaid {
        claim_id: Uuid,
        amount: Money,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for PolicyEvent {
    fn event_type(&self) -> String {
        let name = match self {
            PolicyEvent::QuoteRequested { .. } => "QuoteRequested",
            PolicyEvent::PolicyIssued { .. } => "PolicyIssued",
            PolicyEvent::PolicyPremiumPaid { .. } => "PolicyPremiumPaid",
            PolicyEvent::PolicyCancelled { .. } => "PolicyCancelled",
            PolicyEvent::PolicyExpired { .. } => "PolicyExpired",
            PolicyEvent::ClaimFiled { .. } => "ClaimFiled",
            PolicyEvent::ClaimReviewStarted { .. } => "ClaimReviewStarted",
            PolicyEvent::ClaimApproved { .. } => "ClaimApproved",
            PolicyEvent::ClaimRejected { .. } => "ClaimRejected",
            PolicyEvent::ClaimPaid { .. } => "ClaimPaid",
        };
        name.to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

/// Why a policy command was refused. Nothing was emitted; the policy is unchanged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    /// No quote with this id. The caller reports "not found".
    #[error("policy or quote not found")]
    NotQuoted,
    /// A quote with this id exists already. The caller reports a reused id.
    #[error("a quote with this id already exists")]
    AlreadyQuoted,
    /// No insurer answered. The caller retries later.
    #[error("no insurer made an offer")]
    NoOffers,
    /// The quote's terms are impossible (driver, deductible, currency). The caller fixes the input.
    #[error("{0}")]
    InvalidTerms(String),
    /// The quote has no offer from this insurer. The caller picks one of the recorded offers.
    #[error("the quote has no offer from insurer {insurer}")]
    OfferNotFound { insurer: String },
    /// The quote is older than [`QUOTE_VALID_DAYS`]. The caller requests a new quote.
    #[error("the quote of {quoted_on} has expired; request a new one")]
    QuoteExpired { quoted_on: NaiveDate },
    /// The start date is before the day of issue or too far ahead. The caller picks another.
    #[error("the policy must start between {earliest} and {latest}")]
    StartDateOutOfRange {
        earliest: NaiveDate,
        latest: NaiveDate,
    },
    /// A premium payment of another amount. The caller pays exactly the premium.
    #[error("the premium is {expected}, not {found}")]
    PremiumAmountMismatch { expected: Money, found: Money },
    /// The period has ended: cancelling is too late. The caller expires the policy instead.
    #[error("the policy period ended on {period_end}")]
    PeriodEnded { period_end: NaiveDate },
    /// Expiring before the period ends. The caller waits until the end date.
    #[error("the policy period runs until {period_end}")]
    PeriodNotEnded { period_end: NaiveDate },
    /// The incident did not happen while the policy covered. The caller checks the date.
    #[error("incident date {incident_on} is outside the covered period {start} to {covered_until}")]
    IncidentOutsidePeriod {
        incident_on: NaiveDate,
        start: NaiveDate,
        covered_until: NaiveDate,
    },
    /// A claim or approval above what is left of `coverage − deductible`. The caller lowers it.
    #[error("{amount} exceeds the {remaining} left of the policy's limit")]
    ClaimExceedsCoverage { amount: Money, remaining: Money },
    /// An approval above the amount claimed. The caller approves at most the claim.
    #[error("approval {approved} exceeds the {claimed} claimed")]
    ApprovalExceedsClaim { approved: Money, claimed: Money },
    /// No claim with this id on this policy. The caller reports "not found".
    #[error("claim {claim_id} not found on this policy")]
    ClaimNotFound { claim_id: Uuid },
    /// A claim with this id exists on this policy. The caller reports a reused id.
    #[error("claim {claim_id} already exists")]
    ClaimAlreadyFiled { claim_id: Uuid },
    /// The claim's status does not allow this. The caller shows the status; retrying won't help.
    #[error("cannot {action}: the claim is {from}")]
    InvalidClaimTransition {
        from: ClaimStatus,
        action: &'static str,
    },
    /// A required text is empty or too long, an amount is not positive, or in another currency.
    /// The caller fixes the input.
    #[error("{0}")]
    Invalid(String),
    /// A claim on a cancelled policy whose unused premium was refunded. The caller tells the customer
    /// to settle with the insurer directly; the ledger does not both refund and pay for the cover.
    #[error(
        "the policy was cancelled with a premium refund of {refund}: it takes no further claims"
    )]
    PremiumRefunded { refund: Money },
    /// The policy's status does not allow this. The caller shows the status; retrying won't help.
    #[error("cannot {action}: the policy is {from}")]
    InvalidTransition {
        from: PolicyStatus,
        action: &'static str,
    },
}

impl PolicyError {
    /// A stable, machine-readable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            PolicyError::NotQuoted | PolicyError::ClaimNotFound { .. } => "NOT_FOUND",
            PolicyError::AlreadyQuoted => "POLICY_ALREADY_EXISTS",
            PolicyError::NoOffers => "NO_INSURANCE_OFFERS",
            PolicyError::InvalidTerms(_)
            | PolicyError::StartDateOutOfRange { .. }
            | PolicyError::ApprovalExceedsClaim { .. }
            | PolicyError::Invalid(_) => "VALIDATION",
            PolicyError::OfferNotFound { .. } => "OFFER_NOT_FOUND",
            PolicyError::QuoteExpired { .. } => "QUOTE_EXPIRED",
            PolicyError::PremiumAmountMismatch { .. } => "PREMIUM_AMOUNT_MISMATCH",
            PolicyError::PeriodEnded { .. } => "POLICY_PERIOD_ENDED",
            PolicyError::PeriodNotEnded { .. } => "POLICY_PERIOD_NOT_ENDED",
            PolicyError::IncidentOutsidePeriod { .. } => "INCIDENT_OUTSIDE_PERIOD",
            PolicyError::ClaimExceedsCoverage { .. } => "CLAIM_EXCEEDS_COVERAGE",
            PolicyError::ClaimAlreadyFiled { .. } => "CLAIM_ALREADY_EXISTS",
            PolicyError::InvalidClaimTransition { .. } => "INVALID_CLAIM_TRANSITION",
            PolicyError::InvalidTransition { .. } => "INVALID_POLICY_TRANSITION",
            PolicyError::PremiumRefunded { .. } => "POLICY_PREMIUM_REFUNDED",
        }
    }
}

/// What a command asks the status machine to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    RequestQuote,
    Issue,
    PayPremium,
    Cancel,
    Expire,
    FileClaim,
    HandleClaim,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::RequestQuote => "request a quote",
            Action::Issue => "issue the policy",
            Action::PayPremium => "pay the premium",
            Action::Cancel => "cancel",
            Action::Expire => "expire",
            Action::FileClaim => "file a claim",
            Action::HandleClaim => "handle a claim",
        }
    }
}

/// The whole status machine.
fn transition(from: PolicyStatus, action: Action) -> Result<PolicyStatus, PolicyError> {
    use PolicyStatus::{Active, Cancelled, Expired, Issued, NotQuoted, Quoted};
    match (from, action) {
        (NotQuoted, Action::RequestQuote) => Ok(Quoted),
        (_, Action::RequestQuote) => Err(PolicyError::AlreadyQuoted),
        (NotQuoted, _) => Err(PolicyError::NotQuoted),
        (Quoted, Action::Issue) => Ok(Issued),
        (Issued, Action::PayPremium) => Ok(Active),
        (Issued | Active, Action::Cancel) => Ok(Cancelled),
        (Issued | Active, Action::Expire) => Ok(Expired),
        (status @ (Active | Cancelled | Expired), Action::FileClaim | Action::HandleClaim) => {
            Ok(status)
        }
        (from, action) => Err(PolicyError::InvalidTransition {
            from,
            action: action.name(),
        }),
    }
}

/// The quote as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    pub customer_id: Uuid,
    pub vehicle_id: Uuid,
    pub vehicle_vin: String,
    pub terms: QuoteTerms,
    pub offers: Vec<Offer>,
    pub quoted_on: NaiveDate,
}

/// The terms of the issued policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Terms {
    pub policy_number: String,
    pub insurer: String,
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub coverage: Money,
    pub premium: Money,
    pub deductible: Money,
}

impl Terms {
    /// `coverage − deductible`: the most all claims together can be approved for.
    pub fn limit(&self) -> Money {
        self.coverage
            .checked_sub(self.deductible)
            .unwrap_or_else(|_| Money::zero(self.coverage.currency()))
    }
}

/// The state a policy's decisions need.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    status: PolicyStatus,
    quote: Option<Quote>,
    terms: Option<Terms>,
    premium_paid: Option<Money>,
    cancelled_on: Option<NaiveDate>,
    refund: Option<Money>,
    claims: Claims,
}

fn text(value: &str, what: &str) -> Result<String, PolicyError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(PolicyError::Invalid(format!("{what} is required")));
    }
    if value.chars().count() > MAX_TEXT_CHARS {
        return Err(PolicyError::Invalid(format!(
            "{what} is longer than {MAX_TEXT_CHARS} characters"
        )));
    }
    Ok(value.to_owned())
}

fn positive_in(amount: Money, currency: Currency, what: &str) -> Result<(), PolicyError> {
    if amount.currency() != currency {
        return Err(PolicyError::Invalid(format!(
            "{what} is in {} but the policy is in {currency}",
            amount.currency()
        )));
    }
    if !amount.is_positive() {
        return Err(PolicyError::Invalid(format!(
            "{what} must be greater than zero"
        )));
    }
    Ok(())
}

impl Policy {
    pub fn status(&self) -> PolicyStatus {
        self.status
    }

    pub fn quote(&self) -> Option<&Quote> {
        self.quote.as_ref()
    }

    pub fn terms(&self) -> Option<&Terms> {
        self.terms.as_ref()
    }

    pub fn premium_paid(&self) -> Option<Money> {
        self.premium_paid
    }

    pub fn refund(&self) -> Option<Money> {
        self.refund
    }

    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    /// The electronic policy that selecting `insurer`'s offer would issue, starting on `start`:
    /// the command layer signs its canonical text before sending [`PolicyCommand::Issue`].
    pub fn document_for(
        &self,
        insurer: &str,
        start: NaiveDate,
        policy_number: &str,
        issued_at: DateTime<Utc>,
    ) -> Result<PolicyDocument, PolicyError> {
        transition(self.status, Action::Issue)?;
        let quote = self.quote.as_ref().ok_or(PolicyError::NotQuoted)?;
        let offer = quote
            .offers
            .iter()
            .find(|offer| offer.insurer == insurer)
            .ok_or_else(|| PolicyError::OfferNotFound {
                insurer: insurer.to_owned(),
            })?;
        let today = crate::calendar::business_date(issued_at);
        if (today - quote.quoted_on).num_days() > QUOTE_VALID_DAYS {
            return Err(PolicyError::QuoteExpired {
                quoted_on: quote.quoted_on,
            });
        }
        let latest = today + chrono::Duration::days(MAX_START_DELAY_DAYS);
        if start < today || start > latest {
            return Err(PolicyError::StartDateOutOfRange {
                earliest: today,
                latest,
            });
        }
        let end = start
            .checked_add_months(Months::new(12))
            .ok_or_else(|| PolicyError::Invalid("start date too far in the future".into()))?;
        if policy_number.trim().is_empty() {
            return Err(PolicyError::Invalid("policy number is required".into()));
        }
        Ok(PolicyDocument {
            policy_number: policy_number.to_owned(),
            insurer: offer.insurer.clone(),
            product: quote.terms.product,
            holder: quote.customer_id,
            vehicle_vin: quote.vehicle_vin.clone(),
            period_start: start,
            period_end: end,
            coverage: offer.coverage,
            premium: offer.premium,
            deductible: offer.deductible,
            issued_at,
        })
    }

    fn issued(&self) -> Result<&Terms, PolicyError> {
        self.terms.as_ref().ok_or(PolicyError::NotQuoted)
    }

    /// The last day an incident is covered: the day before the end, or the cancellation day.
    fn covered_until(&self, terms: &Terms) -> NaiveDate {
        let last_day = terms.end.pred_opt().unwrap_or(terms.end);
        match self.cancelled_on {
            Some(day) => day.min(last_day),
            None => last_day,
        }
    }

    fn claim(&self, claim_id: Uuid) -> Result<&Claim, PolicyError> {
        self.claims
            .get(claim_id)
            .ok_or(PolicyError::ClaimNotFound { claim_id })
    }

    /// What is left of the limit after every approval so far.
    fn remaining(&self, terms: &Terms) -> Money {
        terms
            .limit()
            .checked_sub(self.claims.committed(terms.coverage.currency()))
            .unwrap_or_else(|_| Money::zero(terms.coverage.currency()))
    }

    /// Decides on `command`: the event it causes, or why it is refused.
    fn decide(&self, command: PolicyCommand) -> Result<PolicyEvent, PolicyError> {
        let event = match command {
            PolicyCommand::RequestQuote(request) => {
                transition(self.status, Action::RequestQuote)?;
                if let Some(problem) = request.terms.driver.problem() {
                    return Err(PolicyError::InvalidTerms(problem));
                }
                if request.offers.is_empty() {
                    return Err(PolicyError::NoOffers);
                }
                PolicyEvent::QuoteRequested {
                    customer_id: request.customer_id,
                    vehicle_id: request.vehicle_id,
                    vehicle_vin: request.vehicle_vin,
                    terms: request.terms,
                    offers: request.offers,
                    unanswered: request.unanswered,
                    requested_at: request.requested_at,
                }
            }
            PolicyCommand::Issue {
                insurer,
                start,
                policy_number,
                issued_at,
                signature,
                key_id,
            } => {
                let document = self.document_for(&insurer, start, &policy_number, issued_at)?;
                let quote = self.quote.as_ref().ok_or(PolicyError::NotQuoted)?;
                let offer = quote
                    .offers
                    .iter()
                    .find(|offer| offer.insurer == insurer)
                    .ok_or(PolicyError::OfferNotFound { insurer })?;
                if signature.trim().is_empty() || key_id.trim().is_empty() {
                    return Err(PolicyError::Invalid(
                        "an issued policy must be signed".into(),
                    ));
                }
                let commission = offer
                    .premium
                    .checked_percentage(offer.commission_percent)
                    .map_err(|e| PolicyError::Invalid(e.to_string()))?;
                PolicyEvent::PolicyIssued {
                    document: document.canonical(),
                    policy_number: document.policy_number,
                    insurer: document.insurer,
                    product: document.product,
                    holder: document.holder,
                    vehicle_id: quote.vehicle_id,
                    vehicle_vin: document.vehicle_vin,
                    period_start: document.period_start,
                    period_end: document.period_end,
                    coverage: document.coverage,
                    premium: document.premium,
                    deductible: document.deductible,
                    commission_percent: offer.commission_percent,
                    commission,
                    issued_at,
                    signature,
                    key_id,
                }
            }
            PolicyCommand::PayPremium { amount, paid_at } => {
                transition(self.status, Action::PayPremium)?;
                let premium = self.issued()?.premium;
                if amount != premium {
                    return Err(PolicyError::PremiumAmountMismatch {
                        expected: premium,
                        found: amount,
                    });
                }
                PolicyEvent::PolicyPremiumPaid { amount, paid_at }
            }
            PolicyCommand::Cancel {
                reason,
                today,
                cancelled_at,
            } => {
                transition(self.status, Action::Cancel)?;
                let reason = text(&reason, "a reason for cancelling")?;
                let terms = self.issued()?;
                if today >= terms.end {
                    return Err(PolicyError::PeriodEnded {
                        period_end: terms.end,
                    });
                }
                let refund = match self.premium_paid {
                    Some(paid) if !self.claims.any_not_rejected() => {
                        pro_rata_refund(paid, terms.start, terms.end, today)
                    }
                    _ => Money::zero(terms.premium.currency()),
                };
                PolicyEvent::PolicyCancelled {
                    reason,
                    cancelled_on: today,
                    refund,
                    cancelled_at,
                }
            }
            PolicyCommand::Expire { today } => {
                transition(self.status, Action::Expire)?;
                let end = self.issued()?.end;
                if today < end {
                    return Err(PolicyError::PeriodNotEnded { period_end: end });
                }
                PolicyEvent::PolicyExpired { expired_on: end }
            }
            PolicyCommand::FileClaim {
                claim_id,
                incident_on,
                description,
                claimed,
                today,
                filed_at,
            } => {
                transition(self.status, Action::FileClaim)?;
                if let Some(refund) = self.refund.filter(Money::is_positive) {
                    return Err(PolicyError::PremiumRefunded { refund });
                }
                if self.claims.get(claim_id).is_some() {
                    return Err(PolicyError::ClaimAlreadyFiled { claim_id });
                }
                let terms = self.issued()?;
                let description = text(&description, "a description of the incident")?;
                positive_in(claimed, terms.coverage.currency(), "the amount claimed")?;
                let covered_until = self.covered_until(terms);
                if incident_on < terms.start || incident_on > covered_until {
                    return Err(PolicyError::IncidentOutsidePeriod {
                        incident_on,
                        start: terms.start,
                        covered_until,
                    });
                }
                if incident_on > today {
                    return Err(PolicyError::Invalid(format!(
                        "incident date {incident_on} is in the future"
                    )));
                }
                let remaining = self.remaining(terms);
                if claimed.amount() > remaining.amount() {
                    return Err(PolicyError::ClaimExceedsCoverage {
                        amount: claimed,
                        remaining,
                    });
                }
                PolicyEvent::ClaimFiled {
                    claim_id,
                    incident_on,
                    description,
                    claimed,
                    filed_at,
                }
            }
            PolicyCommand::StartClaimReview { claim_id, at } => {
                transition(self.status, Action::HandleClaim)?;
                self.claim_in(claim_id, ClaimStatus::Filed, "start a review")?;
                PolicyEvent::ClaimReviewStarted { claim_id, at }
            }
            PolicyCommand::ApproveClaim {
                claim_id,
                amount,
                at,
            } => {
                transition(self.status, Action::HandleClaim)?;
                let claim = self.claim_in(claim_id, ClaimStatus::UnderReview, "approve")?;
                let terms = self.issued()?;
                positive_in(amount, terms.coverage.currency(), "the approved amount")?;
                if amount.amount() > claim.claimed.amount() {
                    return Err(PolicyError::ApprovalExceedsClaim {
                        approved: amount,
                        claimed: claim.claimed,
                    });
                }
                let remaining = self.remaining(terms);
                if amount.amount() > remaining.amount() {
                    return Err(PolicyError::ClaimExceedsCoverage { amount, remaining });
                }
                PolicyEvent::ClaimApproved {
                    claim_id,
                    amount,
                    at,
                }
            }
            PolicyCommand::RejectClaim {
                claim_id,
                reason,
                at,
            } => {
                transition(self.status, Action::HandleClaim)?;
                self.claim_in(claim_id, ClaimStatus::UnderReview, "reject")?;
                let reason = text(&reason, "a reason for rejecting")?;
                PolicyEvent::ClaimRejected {
                    claim_id,
                    reason,
                    at,
                }
            }
            PolicyCommand::PayClaim { claim_id, at } => {
                transition(self.status, Action::HandleClaim)?;
                let claim = self.claim_in(claim_id, ClaimStatus::Approved, "pay")?;
                let amount = claim.approved.ok_or(PolicyError::InvalidClaimTransition {
                    from: claim.status,
                    action: "pay",
                })?;
                PolicyEvent::ClaimPaid {
                    claim_id,
                    amount,
                    at,
                }
            }
        };
        Ok(event)
    }

    /// The claim, if it exists and is in `status`.
    fn claim_in(
        &self,
        claim_id: Uuid,
        status: ClaimStatus,
        action: &'static str,
    ) -> Result<&Claim, PolicyError> {
        let claim = self.claim(claim_id)?;
        if claim.status != status {
            return Err(PolicyError::InvalidClaimTransition {
                from: claim.status,
                action,
            });
        }
        Ok(claim)
    }

    fn advance(&mut self, action: Action, to: PolicyStatus) {
        debug_assert_eq!(transition(self.status, action), Ok(to), "{action:?}");
        self.status = to;
    }

    fn set_claim_status(&mut self, claim_id: Uuid, status: ClaimStatus) {
        let claim = self.claims.get_mut(claim_id);
        debug_assert!(claim.is_some(), "event for unknown claim {claim_id}");
        if let Some(claim) = claim {
            claim.status = status;
        }
    }
}

impl Aggregate for Policy {
    const TYPE: &'static str = "Policy";
    type Command = PolicyCommand;
    type Event = PolicyEvent;
    type Error = PolicyError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let event = self.decide(command)?;
        sink.write(event, self).await;
        Ok(())
    }

    /// Folds an event in. Never fails: stored history is the truth.
    fn apply(&mut self, event: Self::Event) {
        match event {
            PolicyEvent::QuoteRequested {
                customer_id,
                vehicle_id,
                vehicle_vin,
                terms,
                offers,
                requested_at,
                ..
            } => {
                self.advance(Action::RequestQuote, PolicyStatus::Quoted);
                debug_assert!(!offers.is_empty(), "a quote without offers");
                self.quote = Some(Quote {
                    customer_id,
                    vehicle_id,
                    vehicle_vin,
                    terms,
                    offers,
                    quoted_on: crate::calendar::business_date(requested_at),
                });
            }
            PolicyEvent::PolicyIssued {
                policy_number,
                insurer,
                period_start,
                period_end,
                coverage,
                premium,
                deductible,
                ..
            } => {
                self.advance(Action::Issue, PolicyStatus::Issued);
                debug_assert!(
                    self.quote
                        .as_ref()
                        .is_some_and(|quote| quote.offers.iter().any(|offer| {
                            offer.insurer == insurer
                                && offer.premium == premium
                                && offer.coverage == coverage
                                && offer.deductible == deductible
                        })),
                    "issued from an offer that was not recorded"
                );
                self.terms = Some(Terms {
                    policy_number,
                    insurer,
                    start: period_start,
                    end: period_end,
                    coverage,
                    premium,
                    deductible,
                });
            }
            PolicyEvent::PolicyPremiumPaid { amount, .. } => {
                self.advance(Action::PayPremium, PolicyStatus::Active);
                self.premium_paid = Some(amount);
            }
            PolicyEvent::PolicyCancelled {
                cancelled_on,
                refund,
                ..
            } => {
                self.advance(Action::Cancel, PolicyStatus::Cancelled);
                debug_assert!(
                    !refund.is_negative()
                        && refund.amount()
                            <= self.premium_paid.map_or(Decimal::ZERO, |p| p.amount()),
                    "refund {refund} outside [0, premium paid]"
                );
                self.cancelled_on = Some(cancelled_on);
                self.refund = Some(refund);
            }
            PolicyEvent::PolicyExpired { .. } => {
                self.advance(Action::Expire, PolicyStatus::Expired);
            }
            PolicyEvent::ClaimFiled {
                claim_id,
                incident_on,
                claimed,
                ..
            } => {
                debug_assert!(self.claims.get(claim_id).is_none(), "claim filed twice");
                self.claims.insert(
                    claim_id,
                    Claim {
                        incident_on,
                        claimed,
                        status: ClaimStatus::Filed,
                        approved: None,
                    },
                );
            }
            PolicyEvent::ClaimReviewStarted { claim_id, .. } => {
                self.set_claim_status(claim_id, ClaimStatus::UnderReview);
            }
            PolicyEvent::ClaimApproved {
                claim_id, amount, ..
            } => {
                if let Some(claim) = self.claims.get_mut(claim_id) {
                    claim.status = ClaimStatus::Approved;
                    claim.approved = Some(amount);
                }
                debug_assert!(
                    self.terms.as_ref().is_none_or(|terms| {
                        self.claims.committed(terms.coverage.currency()).amount()
                            <= terms.limit().amount()
                    }),
                    "approvals exceed coverage less deductible"
                );
            }
            PolicyEvent::ClaimRejected { claim_id, .. } => {
                self.set_claim_status(claim_id, ClaimStatus::Rejected);
            }
            PolicyEvent::ClaimPaid { claim_id, .. } => {
                self.set_claim_status(claim_id, ClaimStatus::Paid);
            }
        }
    }
}

#[cfg(test)]
mod tests;
