//! Claims on a policy: each one from filing to payment or rejection.
//!
//! ```text
//! Filed --StartReview--> UnderReview --Approve--> Approved --Pay--> Paid
//!                        UnderReview --Reject--> Rejected
//! ```
//!
//! Paid and rejected claims are final. The limit is an **aggregate** one: the sum of every approved
//! amount (approved or paid claims) never exceeds the policy's `coverage − deductible`
//! ([`Claims::committed`]). The deductible is thus borne once per policy, and each approval eats
//! into what is left for later claims.

use std::collections::BTreeMap;
use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::money::{Currency, Money};

/// Where a claim is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ClaimStatus {
    Filed,
    UnderReview,
    Approved,
    Rejected,
    Paid,
}

impl ClaimStatus {
    /// The stable upper-case name used by the API and the read models.
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimStatus::Filed => "FILED",
            ClaimStatus::UnderReview => "UNDER_REVIEW",
            ClaimStatus::Approved => "APPROVED",
            ClaimStatus::Rejected => "REJECTED",
            ClaimStatus::Paid => "PAID",
        }
    }
}

impl fmt::Display for ClaimStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One claim as the policy's decisions need it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub incident_on: NaiveDate,
    pub claimed: Money,
    pub status: ClaimStatus,
    /// What the insurer agreed to pay, once approved.
    pub approved: Option<Money>,
}

/// The claims of one policy, by claim id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims(BTreeMap<Uuid, Claim>);

impl Claims {
    pub fn get(&self, id: Uuid) -> Option<&Claim> {
        self.0.get(&id)
    }

    pub fn get_mut(&mut self, id: Uuid) -> Option<&mut Claim> {
        self.0.get_mut(&id)
    }

    pub fn insert(&mut self, id: Uuid, claim: Claim) {
        self.0.insert(id, claim);
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Uuid, &Claim)> {
        self.0.iter()
    }

    /// What approvals have committed against the limit: the approved amounts of approved and paid
    /// claims.
    pub fn committed(&self, currency: Currency) -> Money {
        let units = self
            .0
            .values()
            .filter(|claim| matches!(claim.status, ClaimStatus::Approved | ClaimStatus::Paid))
            .filter_map(|claim| claim.approved)
            .map(|amount| amount.minor_units())
            .sum();
        Money::from_minor_units(units, currency)
    }

    /// What has actually been paid out.
    pub fn paid(&self, currency: Currency) -> Money {
        let units = self
            .0
            .values()
            .filter(|claim| claim.status == ClaimStatus::Paid)
            .filter_map(|claim| claim.approved)
            .map(|amount| amount.minor_units())
            .sum();
        Money::from_minor_units(units, currency)
    }

    /// True once any claim has been approved or paid.
    /// Whether any claim is still being handled or was accepted: the insurer carries, or carried,
    /// risk for it.
    pub fn any_not_rejected(&self) -> bool {
        self.0
            .values()
            .any(|claim| claim.status != ClaimStatus::Rejected)
    }

    pub fn any_settled(&self) -> bool {
        self.0
            .values()
            .any(|claim| matches!(claim.status, ClaimStatus::Approved | ClaimStatus::Paid))
    }
}
