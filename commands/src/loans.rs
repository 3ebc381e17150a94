//! Car financing: the [`Loans`] service (one cqrs-es framework for [`Loan`]) and its GraphQL
//! mutations.
//!
//! Facts from outside the loan go into its commands here: the vehicle price (the order's total, read
//! from the order's own stream), the current instant, and today's date. "Today" is the calendar date
//! in Moscow ([`aggregates::calendar::business_date`]), the dealership's business day, so a payment
//! taken at 01:00 Moscow time is dated that day, not the previous one.

use std::sync::Arc;

use aggregates::loan::schedule::ScheduleKind as DomainScheduleKind;
use aggregates::loan::{
    Application, ApplicationChanges, EarlyRepayment, EmploymentStatus as DomainEmployment, Loan,
    LoanCommand, LoanStatus as DomainLoanStatus, LoanType as DomainLoanType, Recalculation,
};
use aggregates::money::Money;
use aggregates::order::{Order, OrderStatus};
use async_graphql::{Context, Enum, InputObject, Object, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use eventstore::{Cqrs, Database, Store, Upcasters};
use queries::input::{Id, IdempotencyKey, Reason};
use queries::loans::{EmploymentStatus, Loan as LoanView, LoanType, ScheduleKind};
use queries::scalars::{Date, MoneyInput, Position};
use queries::{ApiError, ApiResult};
use serde::Serialize;
use uuid::Uuid;

use crate::clock::{Clock, IdGenerator};
use crate::context::RequestContext;
use crate::error::CommandError;
use crate::mutations::{caller, idempotency, settle, to_api, validation};
use crate::sender::{Call, Idempotency, Sender, Written};

/// Sends commands to loans.
pub struct Loans {
    sender: Sender,
    loans: Cqrs<Loan>,
    loan_store: Store<Loan>,
    /// Read to take the vehicle price from the order's total when applying.
    order_store: Store<Order>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
}

impl Loans {
    pub fn new(
        db: Database,
        upcasters: Upcasters,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
    ) -> Self {
        Self {
            sender: Sender::new(&db, &upcasters),
            loans: db.framework(&upcasters, ()),
            loan_store: db.store(&upcasters),
            order_store: db.store(&upcasters),
            clock,
            ids,
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The business date now: the calendar date in Moscow.
    pub fn today(&self) -> NaiveDate {
        self.today_at(self.now())
    }

    /// The business date of `instant`: its calendar date in Moscow.
    fn today_at(&self, instant: DateTime<Utc>) -> NaiveDate {
        crate::clock::business_date(instant)
    }

    /// The id a create command uses: see [`crate::sender::aggregate_id`].
    pub fn id_or_new(&self, id: Option<Uuid>, idempotency: Option<&Idempotency>) -> Uuid {
        crate::sender::aggregate_id(self.ids.as_ref(), id, idempotency)
    }

    /// Current state of a loan (write model). Unknown ids are `NOT_FOUND`. After disbursement,
    /// `order_id()` and `principal()` are always `Some`.
    pub async fn loan(&self, id: Uuid) -> Result<Loan, CommandError> {
        let loan = self.sender.load(&self.loan_store, id).await?;
        if loan.status() == DomainLoanStatus::NotApplied {
            return Err(CommandError::NotFound {
                what: "loan",
                id: id.to_string(),
            });
        }
        Ok(loan)
    }

    async fn send(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        command: LoanCommand,
        name: &'static str,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        self.sender
            .execute(&self.loans, id, command, Call::new(ctx, name, idempotency))
            .await
    }

    /// Applies for a loan for an order: the order must exist and not be cancelled; the vehicle
    /// price is the order's total and the customer the order's.
    pub async fn apply(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        order_id: Uuid,
        application: Application,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        if let Some(written) = self.sender.replay(id, idempotency).await? {
            return Ok(written);
        }
        let order = self.sender.load(&self.order_store, order_id).await?;
        let (Some(customer_id), Some(total)) = (order.customer_id(), order.total()) else {
            return Err(CommandError::NotFound {
                what: "order",
                id: order_id.to_string(),
            });
        };
        if order.status() == OrderStatus::Cancelled {
            return Err(CommandError::Validation(format!(
                "order {order_id} is cancelled; a cancelled order cannot be financed"
            )));
        }
        let command = LoanCommand::Apply {
            order_id,
            customer_id,
            vehicle_price: total,
            application,
            applied_at: self.now(),
        };
        self.send(ctx, id, command, "ApplyForLoan", idempotency)
            .await
    }

    pub async fn update_application(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        changes: ApplicationChanges,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        let command = LoanCommand::UpdateApplication { changes };
        self.send(ctx, id, command, "UpdateLoanApplication", idempotency)
            .await
    }

    pub async fn submit(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        let command = LoanCommand::Submit {
            submitted_at: self.now(),
        };
        self.send(ctx, id, command, "SubmitLoanApplication", idempotency)
            .await
    }

    pub async fn start_review(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        let command = LoanCommand::StartReview {
            started_at: self.now(),
        };
        self.send(ctx, id, command, "StartLoanReview", idempotency)
            .await
    }

    /// Runs the credit policy: approves with a fixed schedule, or rejects with the reasons.
    pub async fn decide(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        schedule_kind: DomainScheduleKind,
        first_due_date: Option<NaiveDate>,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        let decided_at = self.now();
        // The business date of the decision, from the same instant: the offer's first period
        // starts on it, and the default first due date counts from it.
        let decided_on = self.today_at(decided_at);
        let command = LoanCommand::Decide {
            schedule_kind,
            first_due_date: first_due_date
                .unwrap_or_else(|| aggregates::loan::default_first_due_date(decided_on)),
            decided_at,
            decided_on,
        };
        self.send(ctx, id, command, "DecideLoan", idempotency).await
    }

    /// Rejects an application by hand. Refused once the principal has reached the order as a CREDIT
    /// payment (a disbursement stopped half-way): that money is the loan's, and retrying
    /// `disburseLoan` completes it.
    pub async fn reject(
        &self,
        payments: &crate::Payments,
        ctx: &RequestContext,
        id: Uuid,
        reason: String,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        if let Some(written) = self.sender.replay(id, idempotency).await? {
            return Ok(written);
        }
        let credit = payments.payment(credit_payment_id(id)).await?;
        if credit.status() != aggregates::payment::PaymentStatus::NotInitiated {
            return Err(CommandError::Validation(format!(
                "loan {id} has already paid its principal to its order (payment {}): finish the \
                 disbursement with disburseLoan instead of rejecting it",
                credit_payment_id(id)
            )));
        }
        let command = LoanCommand::Reject {
            reason,
            rejected_at: self.now(),
        };
        self.send(ctx, id, command, "RejectLoan", idempotency).await
    }

    /// Records that the principal was paid out today; the loan becomes active.
    pub async fn disburse(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        let command = LoanCommand::Disburse {
            disbursed_on: self.today(),
        };
        self.send(ctx, id, command, "DisburseLoan", idempotency)
            .await
    }

    /// Pays a loan out to its order: the principal is recorded on the order as a CREDIT payment and
    /// the loan becomes ACTIVE.
    ///
    /// Two aggregates, ordered so every failure is safe and a retry finishes the job: (0) the loan is
    /// asked whether it can be paid out today, with nothing written if not; (1) the credit
    /// payment (its id derived from the loan's, so it is recorded once however often this runs) —
    /// the order refuses it with nothing written if it cannot take the money, and the loan stays
    /// APPROVED; (2) the loan's disbursement, which carries the idempotency key. If (2) fails after
    /// (1), the order shows the credit payment of an APPROVED loan, and retrying `disburseLoan`
    /// completes it.
    pub async fn disburse_to_order(
        &self,
        payments: &crate::Payments,
        ctx: &RequestContext,
        id: Uuid,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        if let Some(written) = self.sender.replay(id, idempotency).await? {
            return Ok(written);
        }
        let loan = self.loan(id).await?;
        // Dry-run the disbursement first (status, first due date still ahead): money must not land on
        // the order for a loan that cannot then be paid out.
        loan.decide(LoanCommand::Disburse {
            disbursed_on: self.today(),
        })?;
        if loan.status() == DomainLoanStatus::Approved {
            let (Some(order_id), Some(principal)) = (loan.order_id(), loan.principal()) else {
                return Err(CommandError::Internal(format!(
                    "approved loan {id} has no order or principal"
                )));
            };
            let payment_id = credit_payment_id(id);
            payments
                .record_credit_disbursement(ctx, payment_id, order_id, id, principal, None)
                .await?;
        }
        // Not approved (or already active): the aggregate refuses with its own precise error.
        self.disburse(ctx, id, idempotency).await
    }

    /// Records a repayment received today against the schedule.
    pub async fn record_repayment(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        amount: Money,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        let command = LoanCommand::RecordRepayment {
            amount,
            paid_on: self.today(),
        };
        self.send(ctx, id, command, "RecordLoanRepayment", idempotency)
            .await
    }

    /// Records an early repayment received today.
    pub async fn repay_early(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        repayment: EarlyRepayment,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        let command = LoanCommand::RepayEarly {
            repayment,
            paid_on: self.today(),
        };
        self.send(ctx, id, command, "RepayLoanEarly", idempotency)
            .await
    }

    /// Marks instalments unpaid after their due date as of `as_of` (not after today) as overdue,
    /// and defaults the loan when one is more than 60 days past due.
    pub async fn assess_arrears(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        as_of: NaiveDate,
        idempotency: Option<&Idempotency>,
    ) -> Result<Written, CommandError> {
        let today = self.today();
        if as_of > today {
            return Err(CommandError::Validation(format!(
                "asOf {as_of} is in the future (today is {today})"
            )));
        }
        let command = LoanCommand::AssessArrears { as_of };
        self.send(ctx, id, command, "AssessLoanArrears", idempotency)
            .await
    }
}

// ----- GraphQL -----

fn loan_type(value: LoanType) -> DomainLoanType {
    match value {
        LoanType::CarLoan => DomainLoanType::CarLoan,
        LoanType::Leasing => DomainLoanType::Leasing,
        LoanType::Instalment => DomainLoanType::Instalment,
    }
}

fn employment(value: EmploymentStatus) -> DomainEmployment {
    match value {
        EmploymentStatus::Employed => DomainEmployment::Employed,
        EmploymentStatus::SelfEmployed => DomainEmployment::SelfEmployed,
        EmploymentStatus::Retired => DomainEmployment::Retired,
        EmploymentStatus::Unemployed => DomainEmployment::Unemployed,
    }
}

fn schedule_kind(kind: ScheduleKind) -> DomainScheduleKind {
    match kind {
        ScheduleKind::Annuity => DomainScheduleKind::Annuity,
        ScheduleKind::Differentiated => DomainScheduleKind::Differentiated,
    }
}

/// How the rest of the schedule changes after a partial early repayment.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum RecalculationInput {
    /// Keep the payment, pay off sooner.
    ShortenTerm,
    /// Keep the number of instalments, pay less each time.
    LowerPayment,
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum EarlyRepaymentKind {
    /// Part of the loan: the amount pays the interest accrued to its date first (by actual days;
    /// none on a loan still on the monthly rule), the rest comes off the principal; the schedule
    /// is recalculated.
    Partial,
    /// The whole loan: outstanding principal plus interest accrued in the current period.
    Full,
}

#[derive(InputObject, Clone, Debug, Serialize)]
pub struct ApplyForLoanInput {
    /// Client-chosen id (a new one is generated when absent).
    pub id: Option<Id>,
    /// The order to finance; the vehicle price is its total.
    pub order_id: Id,
    pub down_payment: MoneyInput,
    pub loan_type: LoanType,
    pub term_months: i32,
    pub employment_status: EmploymentStatus,
    pub monthly_income: MoneyInput,
    /// 300–850.
    pub credit_score: i32,
}

/// Only the fields given change.
#[derive(InputObject, Clone, Debug, Serialize)]
pub struct LoanApplicationChangesInput {
    pub down_payment: Option<MoneyInput>,
    pub loan_type: Option<LoanType>,
    pub term_months: Option<i32>,
    pub employment_status: Option<EmploymentStatus>,
    pub monthly_income: Option<MoneyInput>,
    pub credit_score: Option<i32>,
}

#[derive(InputObject, Clone, Debug, Serialize)]
pub struct DecideLoanInput {
    /// When instalment 1 falls due (after the decision, at most two months after it; one month after
    /// it when absent); later ones fall due monthly on the same day (or the month's last).
    pub first_due_date: Option<Date>,
    #[graphql(default)]
    pub schedule_kind: ScheduleKind,
}

#[derive(InputObject, Clone, Debug, Serialize)]
pub struct RepayLoanEarlyInput {
    pub kind: EarlyRepaymentKind,
    /// PARTIAL: the amount paid, above the interest accrued to today, which it pays first; the rest
    /// comes off the principal and must leave some outstanding. FULL: must equal the payoff (an
    /// error tells it).
    pub amount: MoneyInput,
    /// Required for PARTIAL.
    pub recalculation: Option<RecalculationInput>,
}

#[derive(SimpleObject)]
pub struct LoanPayload {
    /// The loan as the read model now shows it (null only if it could not catch up in time).
    pub loan: Option<LoanView>,
    /// Global position of the last event written.
    pub position: Position,
    /// True when this answered a retry with an already-used idempotency key and wrote nothing.
    pub replayed: bool,
}

fn loans<'a>(ctx: &Context<'a>) -> ApiResult<&'a Loans> {
    crate::mutations::service(ctx)
}

async fn loan_payload(ctx: &Context<'_>, written: Written) -> ApiResult<LoanPayload> {
    settle(ctx, &written).await?;
    Ok(LoanPayload {
        loan: queries::loans::find(queries::read_models(ctx)?.pool(), written.id).await?,
        position: Position(written.position),
        replayed: written.replayed,
    })
}

fn term(months: i32) -> ApiResult<u32> {
    u32::try_from(months).map_err(|_| ApiError::validation("termMonths must not be negative"))
}

fn score(score: i32) -> ApiResult<u16> {
    u16::try_from(score)
        .map_err(|_| ApiError::validation(format!("credit score {score} is outside 300–850")))
}

/// The CREDIT payment that carries a loan's principal to its order has the id UUIDv5(this, loan id).
const CREDIT_PAYMENT_NAMESPACE: Uuid = Uuid::from_u128(0x8a41_0c3e_7d25_4f96_b1e8_5c0d_93a7_2b64);

/// The id of the CREDIT payment that carries loan `id`'s principal to its order.
pub fn credit_payment_id(id: Uuid) -> Uuid {
    Uuid::new_v5(&CREDIT_PAYMENT_NAMESPACE, id.as_bytes())
}

/// Loan applications, decisions, disbursement and repayments.
#[derive(Default)]
pub struct LoansMutation;

#[Object]
impl LoansMutation {
    /// Applies for financing of an order (which must exist and not be cancelled), at the order's
    /// total. The application starts as a draft.
    async fn apply_for_loan(
        &self,
        ctx: &Context<'_>,
        input: ApplyForLoanInput,
        #[graphql(
            desc = "A retry with the same key and input answers the first result and writes nothing. At most 200 characters."
        )]
        idempotency_key: Option<IdempotencyKey>,
    ) -> async_graphql::Result<LoanPayload> {
        crate::mutations::ensure_own(ctx, crate::mutations::Owned::Order(*input.order_id)).await?;
        let key = idempotency(idempotency_key, "applyForLoan", &input)?;
        let application = Application {
            down_payment: input.down_payment.to_domain()?,
            loan_type: loan_type(input.loan_type),
            term_months: term(input.term_months)?,
            employment: employment(input.employment_status),
            monthly_income: input.monthly_income.to_domain()?,
            credit_score: score(input.credit_score)?,
        };
        let service = loans(ctx)?;
        let id = service.id_or_new(input.id.map(Id::uuid), key.as_ref());
        let written = service
            .apply(&caller(ctx), id, *input.order_id, application, key.as_ref())
            .await
            .map_err(to_api)?;
        Ok(loan_payload(ctx, written).await?)
    }

    /// Changes a draft application; only the fields given change.
    async fn update_loan_application(
        &self,
        ctx: &Context<'_>,
        id: Id,
        input: LoanApplicationChangesInput,
        #[graphql(
            desc = "A retry with the same key and input answers the first result and writes nothing. At most 200 characters."
        )]
        idempotency_key: Option<IdempotencyKey>,
    ) -> async_graphql::Result<LoanPayload> {
        let id = id.uuid();
        crate::mutations::ensure_own(ctx, crate::mutations::Owned::Loan(id)).await?;
        let key = idempotency(idempotency_key, "updateLoanApplication", &(id, &input))?;
        let changes = ApplicationChanges {
            down_payment: input.down_payment.map(MoneyInput::to_domain).transpose()?,
            loan_type: input.loan_type.map(loan_type),
            term_months: input.term_months.map(term).transpose()?,
            employment: input.employment_status.map(employment),
            monthly_income: input
                .monthly_income
                .map(MoneyInput::to_domain)
                .transpose()?,
            credit_score: input.credit_score.map(score).transpose()?,
        };
        let written = loans(ctx)?
            .update_application(&caller(ctx), id, changes, key.as_ref())
            .await
            .map_err(to_api)?;
        Ok(loan_payload(ctx, written).await?)
    }

    /// Submits a draft application for review.
    async fn submit_loan_application(
        &self,
        ctx: &Context<'_>,
        id: Id,
        #[graphql(
            desc = "A retry with the same key and input answers the first result and writes nothing. At most 200 characters."
        )]
        idempotency_key: Option<IdempotencyKey>,
    ) -> async_graphql::Result<LoanPayload> {
        let id = id.uuid();
        crate::mutations::ensure_own(ctx, crate::mutations::Owned::Loan(id)).await?;
        let key = idempotency(idempotency_key, "submitLoanApplication", &id)?;
        let written = loans(ctx)?
            .submit(&caller(ctx), id, key.as_ref())
            .await
            .map_err(to_api)?;
        Ok(loan_payload(ctx, written).await?)
    }

    /// Starts reviewing a submitted application.
    async fn start_loan_review(
        &self,
        ctx: &Context<'_>,
        id: Id,
        #[graphql(
            desc = "A retry with the same key and input answers the first result and writes nothing. At most 200 characters."
        )]
        idempotency_key: Option<IdempotencyKey>,
    ) -> async_graphql::Result<LoanPayload> {
        let id = id.uuid();
        let key = idempotency(idempotency_key, "startLoanReview", &id)?;
        let written = loans(ctx)?
            .start_review(&caller(ctx), id, key.as_ref())
            .await
            .map_err(to_api)?;
        Ok(loan_payload(ctx, written).await?)
    }

    /// Runs the credit policy on an application under review: APPROVED with its whole schedule
    /// fixed, or REJECTED with every failed rule in `decisionReasons`.
    async fn decide_loan(
        &self,
        ctx: &Context<'_>,
        id: Id,
        input: DecideLoanInput,
        #[graphql(
            desc = "A retry with the same key and input answers the first result and writes nothing. At most 200 characters."
        )]
        idempotency_key: Option<IdempotencyKey>,
    ) -> async_graphql::Result<LoanPayload> {
        let id = id.uuid();
        let key = idempotency(idempotency_key, "decideLoan", &(id, &input))?;
        let written = loans(ctx)?
            .decide(
                &caller(ctx),
                id,
                schedule_kind(input.schedule_kind),
                input.first_due_date.map(|date| date.0),
                key.as_ref(),
            )
            .await
            .map_err(to_api)?;
        Ok(loan_payload(ctx, written).await?)
    }

    /// Rejects an application by hand, with a reason, at any point before disbursement.
    async fn reject_loan(
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
    ) -> async_graphql::Result<LoanPayload> {
        let id = id.uuid();
        let reason = String::from(reason);
        let key = idempotency(idempotency_key, "rejectLoan", &(id, &reason))?;
        let payments = crate::mutations::service::<crate::Payments>(ctx)?;
        let written = loans(ctx)?
            .reject(payments, &caller(ctx), id, reason, key.as_ref())
            .await
            .map_err(to_api)?;
        Ok(loan_payload(ctx, written).await?)
    }

    /// Pays an approved loan out: its principal is recorded on the order as a CREDIT payment and
    /// the loan becomes ACTIVE.
    async fn disburse_loan(
        &self,
        ctx: &Context<'_>,
        id: Id,
        #[graphql(
            desc = "A retry with the same key and input answers the first result and writes nothing. At most 200 characters."
        )]
        idempotency_key: IdempotencyKey,
    ) -> async_graphql::Result<LoanPayload> {
        let id = id.uuid();
        let key = idempotency(Some(idempotency_key), "disburseLoan", &id)?;
        let payments = crate::mutations::service::<crate::Payments>(ctx)?;
        let written = loans(ctx)?
            .disburse_to_order(payments, &caller(ctx), id, key.as_ref())
            .await
            .map_err(to_api)?;
        Ok(loan_payload(ctx, written).await?)
    }

    /// Records a repayment received today: the oldest unpaid instalment first, interest before
    /// principal. More than everything outstanding is refused.
    async fn record_loan_repayment(
        &self,
        ctx: &Context<'_>,
        id: Id,
        amount: MoneyInput,
        #[graphql(
            desc = "A retry with the same key and input answers the first result and writes nothing. At most 200 characters."
        )]
        idempotency_key: IdempotencyKey,
    ) -> async_graphql::Result<LoanPayload> {
        let id = id.uuid();
        let key = idempotency(Some(idempotency_key), "recordLoanRepayment", &(id, &amount))?;
        let written = loans(ctx)?
            .record_repayment(&caller(ctx), id, amount.to_domain()?, key.as_ref())
            .await
            .map_err(to_api)?;
        Ok(loan_payload(ctx, written).await?)
    }

    /// Records an early repayment received today: PARTIAL (the schedule is recalculated from the
    /// next instalment) or FULL (the loan is completed).
    async fn repay_loan_early(
        &self,
        ctx: &Context<'_>,
        id: Id,
        input: RepayLoanEarlyInput,
        #[graphql(
            desc = "A retry with the same key and input answers the first result and writes nothing. At most 200 characters."
        )]
        idempotency_key: IdempotencyKey,
    ) -> async_graphql::Result<LoanPayload> {
        let id = id.uuid();
        let key = idempotency(Some(idempotency_key), "repayLoanEarly", &(id, &input))?;
        let amount = input.amount.to_domain()?;
        let repayment = match (input.kind, input.recalculation) {
            (EarlyRepaymentKind::Full, None) => EarlyRepayment::Full { amount },
            (EarlyRepaymentKind::Partial, Some(recalculation)) => EarlyRepayment::Partial {
                amount,
                recalculation: match recalculation {
                    RecalculationInput::ShortenTerm => Recalculation::ShortenTerm,
                    RecalculationInput::LowerPayment => Recalculation::LowerPayment,
                },
            },
            (EarlyRepaymentKind::Full, Some(_)) => {
                return Err(validation("a FULL early repayment takes no recalculation").into());
            }
            (EarlyRepaymentKind::Partial, None) => {
                return Err(validation(
                    "a PARTIAL early repayment needs a recalculation: SHORTEN_TERM or LOWER_PAYMENT",
                )
                .into());
            }
        };
        let written = loans(ctx)?
            .repay_early(&caller(ctx), id, repayment, key.as_ref())
            .await
            .map_err(to_api)?;
        Ok(loan_payload(ctx, written).await?)
    }

    /// Marks instalments unpaid after their due date as of `asOf` (today or earlier) as overdue;
    /// one more than 60 days past due defaults the loan. Sent by staff or a daily job.
    async fn assess_loan_arrears(
        &self,
        ctx: &Context<'_>,
        id: Id,
        as_of: Date,
        #[graphql(
            desc = "A retry with the same key and input answers the first result and writes nothing. At most 200 characters."
        )]
        idempotency_key: Option<IdempotencyKey>,
    ) -> async_graphql::Result<LoanPayload> {
        let id = id.uuid();
        let key = idempotency(idempotency_key, "assessLoanArrears", &(id, as_of))?;
        let written = loans(ctx)?
            .assess_arrears(&caller(ctx), id, as_of.0, key.as_ref())
            .await
            .map_err(to_api)?;
        Ok(loan_payload(ctx, written).await?)
    }
}
