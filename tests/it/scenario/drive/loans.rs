//! Loans: application, decision, disbursement, repayments, arrears.

use chrono::{NaiveDate, TimeDelta};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::super::plan::*;
use super::super::shadow::*;
use super::super::tariffs::{kopecks, minor_of};
use super::timeline::*;
use super::*;

/// The scenario's own book of one loan: the schedule the dealership fixed (read from the log),
/// what each instalment still owes, and the dates the payoff rule needs.
#[derive(Clone, Debug, Default)]
pub(super) struct LoanBook {
    rate_percent: Decimal,
    disbursed_on: Option<NaiveDate>,
    /// (number, due date, interest due, principal due).
    instalments: Vec<(u32, NaiveDate, i64, i64)>,
    /// Instalments already paid in full (kept for the payoff's period start).
    paid: Vec<(u32, NaiveDate)>,
    outstanding_principal: i64,
    active: bool,
    defaulted: bool,
}

impl LoanBook {
    fn unpaid(&self) -> i64 {
        self.instalments.iter().map(|(_, _, i, p)| i + p).sum()
    }

    /// Oldest instalment first, interest before principal: (principal, interest) of `amount`.
    fn allocate(&mut self, amount: i64) -> (i64, i64) {
        let (mut left, mut principal, mut interest) = (amount, 0, 0);
        for (_, _, interest_due, principal_due) in self.instalments.iter_mut() {
            let i = left.min(*interest_due);
            left -= i;
            *interest_due -= i;
            let p = left.min(*principal_due);
            left -= p;
            *principal_due -= p;
            interest += i;
            principal += p;
        }
        assert_eq!(left, 0, "a repayment beyond the schedule");
        let (paid, unpaid): (Vec<_>, Vec<_>) = self
            .instalments
            .drain(..)
            .partition(|(_, _, i, p)| *i == 0 && *p == 0);
        self.paid
            .extend(paid.into_iter().map(|(n, due, _, _)| (n, due)));
        self.instalments = unpaid;
        self.outstanding_principal -= principal;
        (principal, interest)
    }

    /// The documented payoff: outstanding principal plus `principal × rate / 12 × elapsed days /
    /// days in period`, rounded to kopecks half away from zero; the period runs from the previous
    /// due date (or the disbursement) to the next one. Returns (principal, interest).
    fn payoff(&self, on: NaiveDate) -> (i64, i64) {
        let (next_number, next_due, _, _) = self.instalments[0];
        let start = self
            .paid
            .iter()
            .find(|(n, _)| n + 1 == next_number)
            .map(|(_, due)| *due)
            .or(self.disbursed_on)
            .unwrap();
        let period = (next_due - start).num_days().max(1);
        let elapsed = (on - start).num_days().clamp(0, period);
        let interest = kopecks(
            Decimal::new(self.outstanding_principal, 2)
                * self.rate_percent
                * Decimal::from(elapsed)
                / (Decimal::from(1200) * Decimal::from(period)),
        );
        (self.outstanding_principal, minor_of(interest))
    }

    fn take_schedule(&mut self, schedule: &[Value]) {
        let from = schedule[0]["number"].as_u64().unwrap() as u32;
        self.instalments.retain(|(n, ..)| *n < from);
        self.instalments.extend(schedule.iter().map(|i| {
            (
                i["number"].as_u64().unwrap() as u32,
                i["due_date"].as_str().unwrap().parse().unwrap(),
                minor_in(&i["interest"]),
                minor_in(&i["principal"]),
            )
        }));
    }
}

impl Run<'_> {
    pub(super) async fn loan(&mut self, step: &Step, action: LoanStep) {
        let k = step.story;
        let key = Self::key(step, "k");
        let kind = action.clone();
        match action {
            LoanStep::ApplyForLoan(loan) => {
                let state = &self.states[k];
                let input = json!({
                    "id": id(k, 5, 0), "orderId": state.order,
                    "downPayment": money(state.total - state.financed, state.currency),
                    "loanType": loan.kind.graphql(), "termMonths": loan.term_months,
                    "employmentStatus": "EMPLOYED",
                    // Income to spare: payment to income is never what decides.
                    "monthlyIncome": money(state.financed.max(100), state.currency),
                    "creditScore": loan.credit_score,
                });
                self.ok(
                    step,
                    &mutation(
                        "applyForLoan",
                        &[
                            ("input", "ApplyForLoanInput!"),
                            ("idempotencyKey", "String"),
                        ],
                    ),
                    json!({ "input": input, "idempotencyKey": key }),
                )
                .await;
            }
            LoanStep::ChangeLoanTerm(term) => {
                self.ok(
                    step,
                    &mutation("updateLoanApplication", &[("id", "UUID!"), ("input", "LoanApplicationChangesInput!"), ("idempotencyKey", "String")]),
                    json!({ "id": id(k, 5, 0), "input": { "termMonths": term }, "idempotencyKey": key }),
                )
                .await;
            }
            LoanStep::SubmitLoan | LoanStep::ReviewLoan => {
                let field = match kind {
                    LoanStep::SubmitLoan => "submitLoanApplication",
                    _ => "startLoanReview",
                };
                self.ok(
                    step,
                    &mutation(field, &[("id", "UUID!"), ("idempotencyKey", "String")]),
                    json!({ "id": id(k, 5, 0), "idempotencyKey": key }),
                )
                .await;
            }
            LoanStep::RejectLoanByHand => {
                self.ok(
                    step,
                    &mutation("rejectLoan", &[("id", "UUID!"), ("reason", "String!"), ("idempotencyKey", "String")]),
                    json!({ "id": id(k, 5, 0), "reason": "documents incomplete", "idempotencyKey": key }),
                )
                .await;
            }
            LoanStep::DecideLoan(loan) => {
                let first_due = self.today() + TimeDelta::days(30);
                let kind = if loan.differentiated {
                    "DIFFERENTIATED"
                } else {
                    "ANNUITY"
                };
                self.ok(
                    step,
                    &mutation("decideLoan", &[("id", "UUID!"), ("input", "DecideLoanInput!"), ("idempotencyKey", "String")]),
                    json!({ "id": id(k, 5, 0), "input": { "firstDueDate": first_due.to_string(), "scheduleKind": kind },
                            "idempotencyKey": key }),
                )
                .await;
                let events = self.stream("LOAN", &id(k, 5, 0)).await;
                let (decision, fields) = events.last().unwrap();
                let approved = matches!(loan.decision, Decision::Approved);
                assert_eq!(
                    decision,
                    if approved {
                        "LoanApproved"
                    } else {
                        "LoanRejected"
                    },
                    "story {k}: the documented credit policy decides {loan:?}: {fields:#}"
                );
                if approved {
                    let mut book = LoanBook {
                        rate_percent: Decimal::from_str_exact(
                            fields["annual_rate_percent"].as_str().unwrap(),
                        )
                        .unwrap(),
                        outstanding_principal: self.states[k].financed,
                        ..LoanBook::default()
                    };
                    book.take_schedule(fields["schedule"].as_array().unwrap());
                    assert_eq!(
                        book.instalments.iter().map(|(.., p)| p).sum::<i64>(),
                        self.states[k].financed,
                        "story {k}: the schedule repays exactly the loan"
                    );
                    self.states[k].loan = Some(book);
                }
            }
            LoanStep::DisburseLoan => {
                let loan = id(k, 5, 0);
                self.ok(
                    step,
                    &mutation(
                        "disburseLoan",
                        &[("id", "UUID!"), ("idempotencyKey", "String!")],
                    ),
                    json!({ "id": loan, "idempotencyKey": key }),
                )
                .await;
                let today = self.today();
                let day = self.business_day();
                let state = &mut self.states[k];
                let book = state.loan.as_mut().unwrap();
                book.disbursed_on = Some(today);
                book.active = true;
                let credit = commands::loans::credit_payment_id(loan.parse().unwrap()).to_string();
                state.completed.push(Paid {
                    id: credit,
                    amount: state.financed,
                    refunded: 0,
                });
                state.paid_total += state.financed;
                let (customer, currency, financed) =
                    (state.customer.clone(), state.currency, state.financed);
                self.shadow.post(
                    "Loan",
                    &loan,
                    "LoanDisbursed",
                    day,
                    &customer,
                    currency,
                    |p| {
                        p.debit(LOAN_RECEIVABLE, financed, Some(&customer)).credit(
                            CUSTOMER_ADVANCES,
                            financed,
                            Some(&customer),
                        )
                    },
                );
            }
            LoanStep::RepayNextInstalment | LoanStep::RepayEverything => {
                let Some(book) = self.states[k].loan.as_ref().filter(|b| b.active) else {
                    return;
                };
                let amount = match kind {
                    LoanStep::RepayEverything => book.unpaid(),
                    _ => book.instalments[0].2 + book.instalments[0].3,
                };
                self.repay(step, amount).await;
            }
            LoanStep::RepayEarlyPartly {
                percent,
                lower_payment,
            } => {
                let Some(book) = self.states[k].loan.as_ref().filter(|b| b.active) else {
                    return;
                };
                let amount = (book.outstanding_principal * i64::from(percent) / 100).max(1);
                if amount >= book.outstanding_principal {
                    return;
                }
                let loan = id(k, 5, 0);
                let currency = self.states[k].currency;
                let recalculation = if lower_payment {
                    "LOWER_PAYMENT"
                } else {
                    "SHORTEN_TERM"
                };
                self.ok(
                    step,
                    &mutation("repayLoanEarly", &[("id", "UUID!"), ("input", "RepayLoanEarlyInput!"), ("idempotencyKey", "String!")]),
                    json!({ "id": loan, "input": { "kind": "PARTIAL", "amount": money(amount, currency),
                            "recalculation": recalculation }, "idempotencyKey": key }),
                )
                .await;
                let events = self.stream("LOAN", &loan).await;
                let (kind, fields) = events.last().unwrap();
                assert_eq!(kind, "LoanRepaidEarly");
                let day = self.business_day();
                let state = &mut self.states[k];
                let book = state.loan.as_mut().unwrap();
                book.outstanding_principal -= amount;
                book.take_schedule(fields["schedule"].as_array().unwrap());
                assert_eq!(
                    book.instalments.iter().map(|(.., p)| p).sum::<i64>(),
                    book.outstanding_principal,
                    "story {k}: the recalculated schedule repays exactly what is left"
                );
                let customer = state.customer.clone();
                self.shadow.post(
                    "Loan",
                    &loan,
                    "LoanRepaidEarly",
                    day,
                    &customer,
                    currency,
                    |p| {
                        p.debit(CASH, amount, None)
                            .credit(LOAN_RECEIVABLE, amount, Some(&customer))
                    },
                );
            }
            LoanStep::PayOff => {
                let Some(book) = self.states[k].loan.as_ref().filter(|b| b.active) else {
                    return;
                };
                let (principal, interest) = book.payoff(self.today());
                let loan = id(k, 5, 0);
                let currency = self.states[k].currency;
                self.ok(
                    step,
                    &mutation("repayLoanEarly", &[("id", "UUID!"), ("input", "RepayLoanEarlyInput!"), ("idempotencyKey", "String!")]),
                    json!({ "id": loan, "input": { "kind": "FULL", "amount": money(principal + interest, currency) },
                            "idempotencyKey": key }),
                )
                .await;
                let day = self.business_day();
                let state = &mut self.states[k];
                let book = state.loan.as_mut().unwrap();
                book.active = false;
                book.outstanding_principal = 0;
                let customer = state.customer.clone();
                self.shadow.post(
                    "Loan",
                    &loan,
                    "LoanRepaidEarly",
                    day,
                    &customer,
                    currency,
                    |p| {
                        p.debit(CASH, principal + interest, None)
                            .credit(LOAN_RECEIVABLE, principal, Some(&customer))
                            .credit(INTEREST_INCOME, interest, None)
                    },
                );
            }
            LoanStep::AssessArrears => {
                let Some(book) = self.states[k].loan.as_ref().filter(|b| b.active) else {
                    return;
                };
                let today = self.today();
                let oldest_due = book.instalments[0].1;
                self.ok(
                    step,
                    &mutation(
                        "assessLoanArrears",
                        &[
                            ("id", "UUID!"),
                            ("asOf", "Date!"),
                            ("idempotencyKey", "String"),
                        ],
                    ),
                    json!({ "id": id(k, 5, 0), "asOf": today.to_string(), "idempotencyKey": key }),
                )
                .await;
                if (today - oldest_due).num_days() > 60 {
                    let book = self.states[k].loan.as_mut().unwrap();
                    book.active = false;
                    book.defaulted = true;
                }
            }
        }
    }

    async fn repay(&mut self, step: &Step, amount: i64) {
        let k = step.story;
        let loan = id(k, 5, 0);
        let currency = self.states[k].currency;
        self.ok(
            step,
            &mutation("recordLoanRepayment", &[("id", "UUID!"), ("amount", "MoneyInput!"), ("idempotencyKey", "String!")]),
            json!({ "id": loan, "amount": money(amount, currency), "idempotencyKey": Self::key(step, "repay") }),
        )
        .await;
        let day = self.business_day();
        let state = &mut self.states[k];
        let book = state.loan.as_mut().unwrap();
        let (principal, interest) = book.allocate(amount);
        if book.instalments.is_empty() {
            book.active = false;
        }
        let customer = state.customer.clone();
        self.shadow.post(
            "Loan",
            &loan,
            "LoanRepaymentRecorded",
            day,
            &customer,
            currency,
            |p| {
                p.debit(CASH, amount, None)
                    .credit(LOAN_RECEIVABLE, principal, Some(&customer))
                    .credit(INTEREST_INCOME, interest, None)
            },
        );
    }
}
