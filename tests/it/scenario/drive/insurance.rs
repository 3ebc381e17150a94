//! Insurance: quotes from the five insurers, policies, premiums, cancellations, expiry, claims.

use chrono::{Datelike, Months, NaiveDate, TimeDelta};
use serde_json::json;

use super::super::plan::*;
use super::super::shadow::*;
use super::super::tariffs::{INSURERS, REGIONS};
use super::timeline::*;
use super::*;

#[derive(Clone, Debug)]
struct ClaimBook {
    id: String,
    claimed: i64,
    approved: Option<i64>,
    decided: bool,
}

#[derive(Clone, Debug)]
pub(super) struct PolicyBook {
    id: String,
    insurer: &'static str,
    quote: super::super::tariffs::Quote,
    start: NaiveDate,
    end: NaiveDate,
    paid: bool,
    claims: Vec<ClaimBook>,
}

impl Run<'_> {
    pub(super) async fn policy(&mut self, step: &Step, action: PolicyStep) {
        let k = step.story;
        let stories = self.stories;
        let plan = &stories[k];
        let key = Self::key(step, "k");
        let kind = action.clone();
        match action {
            PolicyStep::RequestQuote(p, insurance) => {
                let state = &self.states[k];
                let insurer = &INSURERS[insurance.insurer];
                let quote = if insurance.kasko {
                    insurer.kasko(
                        &insurance.driver,
                        state.list_price,
                        self.now().year() - state.year,
                        BRANDS[plan.vehicle.brand],
                        insurance.deductible,
                    )
                } else {
                    insurer.osago(&insurance.driver, insurance.power_hp)
                };
                let mut input = json!({
                    "id": id(k, 6, p), "product": if insurance.kasko { "KASKO" } else { "OSAGO" },
                    "customerId": state.customer, "vehicleId": state.vehicle,
                    "driver": { "age": insurance.driver.age, "drivingExperienceYears": insurance.driver.experience_years,
                                "region": REGIONS[insurance.driver.region].0,
                                "bonusMalusClass": insurance.driver.bonus_malus_class },
                    "enginePowerHp": insurance.power_hp,
                });
                if insurance.kasko {
                    input["deductible"] = money(quote.deductible_minor, "RUB");
                }
                let start = self.today() + TimeDelta::days(i64::from(insurance.start_delay_days));
                let policies = &mut self.states[k].policies;
                policies.resize(policies.len().max(p + 1), None);
                policies[p] = Some(PolicyBook {
                    id: id(k, 6, p),
                    insurer: insurer.id,
                    quote,
                    start,
                    end: start.checked_add_months(Months::new(12)).unwrap(),
                    paid: false,
                    claims: Vec::new(),
                });
                self.ok(
                    step,
                    &mutation(
                        "requestInsuranceQuote",
                        &[
                            ("input", "RequestInsuranceQuoteInput!"),
                            ("idempotencyKey", "String"),
                        ],
                    ),
                    json!({ "input": input, "idempotencyKey": key }),
                )
                .await;
            }
            PolicyStep::SelectOffer(p) => {
                let today = self.today();
                let book = self.states[k].policies[p].as_mut().unwrap();
                if book.start < today {
                    // Quoted on a Moscow day that is over by now (selected after Moscow midnight):
                    // a policy cannot start in the past, so it starts today.
                    book.start = today;
                    book.end = today.checked_add_months(Months::new(12)).unwrap();
                }
                let policy = book.clone();
                self.ok(
                    step,
                    &mutation("selectInsuranceOffer", &[("quoteId", "UUID!"), ("insurer", "String!"), ("startDate", "String"), ("idempotencyKey", "String")]),
                    json!({ "quoteId": policy.id, "insurer": policy.insurer, "startDate": policy.start.to_string(),
                            "idempotencyKey": key }),
                )
                .await;
                self.shadow.insurers.insert(policy.insurer.to_string());
            }
            PolicyStep::PayWrongPremium(p) => {
                let policy = self.states[k].policies[p].clone().unwrap();
                self.refused(
                    step,
                    &mutation("payPolicyPremium", &[("id", "UUID!"), ("amount", "MoneyInput!"), ("idempotencyKey", "String!")]),
                    json!({ "id": policy.id, "amount": money(policy.quote.premium_minor + 1, "RUB"), "idempotencyKey": key }),
                    "PREMIUM_AMOUNT_MISMATCH",
                )
                .await;
            }
            PolicyStep::PayPremium(p) => {
                let policy = self.states[k].policies[p].clone().unwrap();
                let (premium, commission) =
                    (policy.quote.premium_minor, policy.quote.commission_minor);
                self.ok(
                    step,
                    &mutation("payPolicyPremium", &[("id", "UUID!"), ("amount", "MoneyInput!"), ("idempotencyKey", "String!")]),
                    json!({ "id": policy.id, "amount": money(premium, "RUB"), "idempotencyKey": key }),
                )
                .await;
                self.states[k].policies[p].as_mut().unwrap().paid = true;
                let (day, customer) = (self.business_day(), self.states[k].customer.clone());
                let payable = premiums_payable(policy.insurer);
                self.shadow.post(
                    "Policy",
                    &policy.id,
                    "PolicyPremiumPaid",
                    day,
                    &customer,
                    "RUB",
                    |p| {
                        p.debit(CASH, premium, None)
                            .credit(&payable, premium, None)
                            .debit(&payable, commission, None)
                            .credit(COMMISSION_INCOME, commission, None)
                    },
                );
            }
            PolicyStep::CancelPolicy(p) => {
                let policy = self.states[k].policies[p].clone().unwrap();
                self.ok(
                    step,
                    &mutation(
                        "cancelPolicy",
                        &[
                            ("id", "UUID!"),
                            ("reason", "String!"),
                            ("idempotencyKey", "String!"),
                        ],
                    ),
                    json!({ "id": policy.id, "reason": "sold the car", "idempotencyKey": key }),
                )
                .await;
                // No refund of an unpaid premium, nor while a claim is open or was approved.
                let claimed = policy
                    .claims
                    .iter()
                    .any(|c| !c.decided || c.approved.is_some());
                if policy.paid && !claimed {
                    let (premium, commission) =
                        (policy.quote.premium_minor, policy.quote.commission_minor);
                    let refund = pro_rata_refund(premium, policy.start, policy.end, self.today());
                    if refund > 0 {
                        let back = claw_back(commission, refund, premium);
                        let (day, customer) =
                            (self.business_day(), self.states[k].customer.clone());
                        let payable = premiums_payable(policy.insurer);
                        self.shadow.post(
                            "Policy",
                            &policy.id,
                            "PolicyCancelled",
                            day,
                            &customer,
                            "RUB",
                            |p| {
                                p.debit(&payable, refund - back, None)
                                    .debit(COMMISSION_INCOME, back, None)
                                    .credit(CASH, refund, None)
                            },
                        );
                    }
                }
            }
            PolicyStep::ExpirePolicy(p) => {
                let policy = self.states[k].policies[p].clone().unwrap();
                self.ok(
                    step,
                    &mutation(
                        "expirePolicy",
                        &[("id", "UUID!"), ("idempotencyKey", "String")],
                    ),
                    json!({ "id": policy.id, "idempotencyKey": key }),
                )
                .await;
            }
            PolicyStep::FileClaim(p, n, claim) => {
                let policy = self.states[k].policies[p].clone().unwrap();
                let limit = policy.quote.coverage_minor - policy.quote.deductible_minor;
                let committed: i64 = policy
                    .claims
                    .iter()
                    .map(|c| {
                        if c.decided {
                            c.approved.unwrap_or(0)
                        } else {
                            c.claimed
                        }
                    })
                    .sum();
                let claimed =
                    ((limit - committed) * i64::from(claim.claimed_per_mille) / 1000).max(100);
                let today = self.today();
                let incident =
                    (policy.start + TimeDelta::days(i64::from(claim.incident_day))).min(today);
                let claim_id = id(k, 7, 10 * p + n);
                self.ok(
                    step,
                    &mutation("fileInsuranceClaim", &[("policyId", "UUID!"), ("input", "FileInsuranceClaimInput!"), ("idempotencyKey", "String")]),
                    json!({ "policyId": policy.id, "input": { "id": claim_id, "incidentDate": incident.to_string(),
                            "description": "dented wing", "claimedAmount": money(claimed, "RUB") }, "idempotencyKey": key }),
                )
                .await;
                self.states[k].policies[p]
                    .as_mut()
                    .unwrap()
                    .claims
                    .push(ClaimBook {
                        id: claim_id,
                        claimed,
                        approved: None,
                        decided: false,
                    });
            }
            PolicyStep::ReviewClaim(p, n)
            | PolicyStep::RejectClaim(p, n)
            | PolicyStep::PayClaim(p, n) => {
                let policy = self.states[k].policies[p].clone().unwrap();
                let Some(claim) = policy.claims.get(n).cloned() else {
                    return;
                };
                let (field, reason) = match kind {
                    PolicyStep::ReviewClaim(..) => ("startInsuranceClaimReview", false),
                    PolicyStep::RejectClaim(..) => ("rejectInsuranceClaim", true),
                    _ => ("payInsuranceClaim", false),
                };
                let mut args = vec![("policyId", "UUID!"), ("claimId", "UUID!")];
                let mut variables =
                    json!({ "policyId": policy.id, "claimId": claim.id, "idempotencyKey": key });
                if reason {
                    args.push(("reason", "String!"));
                    variables["reason"] = json!("not covered");
                }
                let paying = field == "payInsuranceClaim";
                args.push(("idempotencyKey", if paying { "String!" } else { "String" }));
                self.ok(step, &mutation(field, &args), variables).await;
                if reason {
                    self.states[k].policies[p].as_mut().unwrap().claims[n].decided = true;
                }
                if paying {
                    let amount = claim.approved.unwrap();
                    let (day, customer) = (self.business_day(), self.states[k].customer.clone());
                    self.shadow.post(
                        "Policy",
                        &policy.id,
                        "ClaimPaid",
                        day,
                        &customer,
                        "RUB",
                        |p| {
                            p.debit(CLAIMS_PAYABLE, amount, Some(&customer))
                                .credit(CASH, amount, None)
                        },
                    );
                }
            }
            PolicyStep::ApproveClaim(p, n, percent) => {
                let policy = self.states[k].policies[p].clone().unwrap();
                let Some(claim) = policy.claims.get(n).cloned() else {
                    return;
                };
                let amount = (claim.claimed * i64::from(percent) / 100).max(1);
                self.ok(
                    step,
                    &mutation("approveInsuranceClaim", &[("policyId", "UUID!"), ("claimId", "UUID!"), ("amount", "MoneyInput!"), ("idempotencyKey", "String")]),
                    json!({ "policyId": policy.id, "claimId": claim.id, "amount": money(amount, "RUB"), "idempotencyKey": key }),
                )
                .await;
                let book = &mut self.states[k].policies[p].as_mut().unwrap().claims[n];
                book.decided = true;
                book.approved = Some(amount);
                let (day, customer) = (self.business_day(), self.states[k].customer.clone());
                let payable = premiums_payable(policy.insurer);
                self.shadow.post(
                    "Policy",
                    &policy.id,
                    "ClaimApproved",
                    day,
                    &customer,
                    "RUB",
                    |p| {
                        p.debit(&payable, amount, None).credit(
                            CLAIMS_PAYABLE,
                            amount,
                            Some(&customer),
                        )
                    },
                );
            }
        }
    }
}
