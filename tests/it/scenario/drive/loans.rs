//! Loans: application, decision, disbursement, repayments, arrears.

use chrono::{Datelike, NaiveDate, TimeDelta};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::super::plan::*;
use super::super::shadow::*;
use super::timeline::*;
use super::*;

/// The scenario's own book of one loan: the schedule the dealership fixed (read from the log),
/// what each instalment still owes, and the dates the early-repayment rule needs. The rate comes
/// from the documented rate table and the interest of an early repayment is recomputed here by
/// actual days, never read from the application.
#[derive(Clone, Debug, Default)]
pub(super) struct LoanBook {
    rate_percent: Decimal,
    disbursed_on: Option<NaiveDate>,
    /// (number, due date, interest due, principal due).
    instalments: Vec<(u32, NaiveDate, i64, i64)>,
    /// Instalments already paid in full (kept for the payoff's period start).
    paid: Vec<(u32, NaiveDate)>,
    /// The last partial early repayment: interest up to it is paid, the period accrues from it.
    last_partial_on: Option<NaiveDate>,
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

    /// The interest accrued on the outstanding principal on `on` (the documented rule for early
    /// repayments, partial or full): by actual days from the start of the period in progress — the
    /// previous due date paid (or the disbursement), or the last partial early repayment if later —
    /// to `on`, at most to the next due date.
    fn accrued(&self, on: NaiveDate) -> i64 {
        let (next_number, next_due, _, _) = self.instalments[0];
        let previous = self
            .paid
            .iter()
            .find(|(n, _)| n + 1 == next_number)
            .map(|(_, due)| *due)
            .or(self.disbursed_on)
            .unwrap();
        let start = previous.max(self.last_partial_on.unwrap_or(previous));
        actual_day_interest(
            self.outstanding_principal,
            self.rate_percent,
            start,
            on.min(next_due),
        )
    }

    /// The payoff on `on`: (outstanding principal, interest accrued to `on`).
    fn payoff(&self, on: NaiveDate) -> (i64, i64) {
        (self.outstanding_principal, self.accrued(on))
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

/// Interest in kopecks on `principal` kopecks at `rate_percent` a year for the days after `from`
/// up to and including `to`, by actual days: each day adds `principal × rate / 100 / (365 or 366,
/// its calendar year's length)`. Counted day by day in integers over the common denominator
/// 100 × 365 × 366 (a common-year day weighs 366, a leap-year day 365) and rounded once, half away
/// from zero (the convention documented in `aggregates::loan::schedule`).
fn actual_day_interest(
    principal: i64,
    rate_percent: Decimal,
    from: NaiveDate,
    to: NaiveDate,
) -> i64 {
    let mut weight: i128 = 0;
    let mut day = from;
    while day < to {
        day = day.succ_opt().unwrap();
        let leap = NaiveDate::from_ymd_opt(day.year(), 2, 29).is_some();
        weight += if leap { 365 } else { 366 };
    }
    // rate_percent = mantissa / 10^scale.
    let numerator = i128::from(principal) * rate_percent.mantissa() * weight;
    let denominator = 10_i128.pow(rate_percent.scale()) * 100 * 365 * 366;
    let (quotient, remainder) = (numerator / denominator, numerator % denominator);
    let rounded = quotient + i128::from(2 * remainder.abs() >= denominator) * numerator.signum();
    i64::try_from(rounded).unwrap()
}

/// The documented rate table (`aggregates::loan::credit` module docs), per cent a year, for an
/// approved loan of `kind` and `score`.
fn documented_rate(kind: LoanType, score: u32) -> Decimal {
    let (car_loan, leasing) = match score {
        800..=850 => ("14.9", "12.9"),
        740..=799 => ("18.9", "16.9"),
        670..=739 => ("22.9", "20.9"),
        580..=669 => ("27.9", "25.9"),
        _ => panic!("score {score} is refused by the documented policy"),
    };
    let rate = match kind {
        LoanType::CarLoan => car_loan,
        LoanType::Leasing => leasing,
        LoanType::Instalment if score >= 670 => "0",
        LoanType::Instalment => panic!("an instalment plan needs a score of 670"),
    };
    Decimal::from_str_exact(rate).unwrap()
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
                    let rate_percent = documented_rate(loan.kind, loan.credit_score);
                    assert_eq!(
                        Decimal::from_str_exact(fields["annual_rate_percent"].as_str().unwrap())
                            .unwrap(),
                        rate_percent,
                        "story {k}: the documented rate table prices {loan:?}"
                    );
                    assert_eq!(
                        fields["day_count"], "ActualDays",
                        "story {k}: a new loan accrues by actual days"
                    );
                    let mut book = LoanBook {
                        rate_percent,
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
                let events = self.stream("LOAN", &loan).await;
                let (kind, fields) = events.last().unwrap();
                assert_eq!(kind, "LoanDisbursed");
                let today = self.today();
                let day = self.business_day();
                let state = &mut self.states[k];
                let book = state.loan.as_mut().unwrap();
                book.disbursed_on = Some(today);
                book.active = true;
                // Money lent on another day than the decision's re-issues the schedule from it.
                let reissued = fields["schedule"].as_array().unwrap();
                if !reissued.is_empty() {
                    book.take_schedule(reissued);
                    assert_eq!(
                        book.instalments.iter().map(|(.., p)| p).sum::<i64>(),
                        state.financed,
                        "story {k}: the re-issued schedule repays exactly the loan"
                    );
                }
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
                // The amount pays the interest accrued to its date first, the rest the principal.
                let today = self.today();
                let interest = book.accrued(today);
                assert!(
                    amount > interest,
                    "story {k}: the plan prepays more than the interest accrued ({amount} vs {interest})"
                );
                let principal = amount - interest;
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
                assert_eq!(
                    (
                        minor_in(&fields["principal"]),
                        minor_in(&fields["interest"])
                    ),
                    (principal, interest),
                    "story {k}: a partial early repayment on {today} pays the interest accrued by actual days first"
                );
                let day = self.business_day();
                let state = &mut self.states[k];
                let book = state.loan.as_mut().unwrap();
                book.outstanding_principal -= principal;
                book.last_partial_on = Some(today);
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
                            .credit(LOAN_RECEIVABLE, principal, Some(&customer))
                            .credit(INTEREST_INCOME, interest, None)
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
