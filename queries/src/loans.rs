//! Loans as the `loans` read model shows them: one loan with its schedule, and lists by order and
//! status.

use async_graphql::connection::{Connection, Edge, EmptyFields, OpaqueCursor};
use async_graphql::{ComplexObject, Context, Enum, InputObject, Object, SimpleObject};
use eventstore::DbPool;
use uuid::Uuid;

use crate::page::{Page, TotalCount};
use crate::scalars::{Date, DateTime, Decimal, Money};
use crate::{ApiError, ApiResult, read_models};

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum LoanStatus {
    Draft,
    Submitted,
    UnderReview,
    Approved,
    Rejected,
    Active,
    Completed,
    Defaulted,
}

impl LoanStatus {
    fn as_str(self) -> &'static str {
        match self {
            LoanStatus::Draft => "DRAFT",
            LoanStatus::Submitted => "SUBMITTED",
            LoanStatus::UnderReview => "UNDER_REVIEW",
            LoanStatus::Approved => "APPROVED",
            LoanStatus::Rejected => "REJECTED",
            LoanStatus::Active => "ACTIVE",
            LoanStatus::Completed => "COMPLETED",
            LoanStatus::Defaulted => "DEFAULTED",
        }
    }

    const ALL: [LoanStatus; 8] = [
        LoanStatus::Draft,
        LoanStatus::Submitted,
        LoanStatus::UnderReview,
        LoanStatus::Approved,
        LoanStatus::Rejected,
        LoanStatus::Active,
        LoanStatus::Completed,
        LoanStatus::Defaulted,
    ];
}

/// What kind of financing.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum LoanType {
    /// A bank car loan; 15% down at least, 12–84 months.
    CarLoan,
    /// Leasing; 20% down at least, 12–60 months.
    Leasing,
    /// The dealer's 0% instalment plan; 3–24 months, credit score 670 or more.
    Instalment,
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum EmploymentStatus {
    Employed,
    SelfEmployed,
    Retired,
    Unemployed,
}

/// How the instalments are shaped.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, Default)]
pub enum ScheduleKind {
    /// Equal totals, except the first (its period's actual length) and the last (what is left).
    #[default]
    Annuity,
    /// Equal principal parts, interest on the falling balance.
    Differentiated,
}

/// How a loan's interest is counted for each period (fixed at approval; see the loan rules in
/// README and `aggregates::loan::schedule`).
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DayCount {
    /// Balance × annual rate × days / days in the year (365 or 366), split by calendar year.
    ActualDays,
    /// Balance × annual rate / 12 every period: loans approved before actual-day interest.
    MonthlyTwelfth,
}

impl DayCount {
    fn domain(self) -> aggregates::loan::schedule::DayCount {
        match self {
            DayCount::ActualDays => aggregates::loan::schedule::DayCount::ActualDays,
            DayCount::MonthlyTwelfth => aggregates::loan::schedule::DayCount::MonthlyTwelfth,
        }
    }
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstalmentStatus {
    Pending,
    PartlyPaid,
    Paid,
    Overdue,
}

/// One rule of the credit policy and what the decision found.
#[derive(SimpleObject, Clone, Debug, serde::Deserialize)]
pub struct CreditFinding {
    /// `CREDIT_SCORE`, `EMPLOYMENT`, `DOWN_PAYMENT`, `TERM`, `PAYMENT_TO_INCOME` or `STAFF_DECISION`.
    pub rule: String,
    pub detail: String,
}

/// One instalment of the schedule in force.
#[derive(SimpleObject, Clone, Debug)]
pub struct LoanInstalment {
    pub number: i32,
    pub due_date: Date,
    pub principal: Money,
    pub interest: Money,
    pub total: Money,
    /// Principal outstanding once this instalment is paid.
    pub remaining_balance: Money,
    pub paid_principal: Money,
    pub paid_interest: Money,
    pub status: InstalmentStatus,
    pub last_paid_on: Option<Date>,
}

#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Loan {
    pub id: Uuid,
    pub order_id: Uuid,
    pub customer_id: Uuid,
    pub status: LoanStatus,
    pub loan_type: LoanType,
    /// The order's total when the application was made.
    pub vehicle_price: Money,
    pub down_payment: Money,
    /// Vehicle price less down payment: the principal.
    pub loan_amount: Money,
    pub term_months: i32,
    pub employment_status: EmploymentStatus,
    pub monthly_income: Money,
    pub credit_score: i32,
    /// Per cent a year, once approved.
    pub annual_rate_percent: Option<Decimal>,
    pub schedule_kind: Option<ScheduleKind>,
    /// How interest is counted, once approved.
    pub day_count: Option<DayCount>,
    /// The full cost of credit (ПСК, Federal Law 353-FZ art. 6) in per cent a year, to three
    /// decimal places, once approved: the contract's figure, from the schedule as issued at approval
    /// (or re-issued at disbursement), with the month as base period. An early repayment does not
    /// change it. See README "Loans".
    pub full_cost_percent: Option<Decimal>,
    /// The full cost of credit in money, once approved: what the schedule as issued has the
    /// borrower pay above the principal (no fees or third-party payments enter: the loans carry
    /// none).
    pub full_cost: Option<Money>,
    /// The date of the last partial early repayment: interest is paid up to it.
    #[graphql(skip)]
    pub last_early_repayment_on: Option<Date>,
    pub first_due_date: Option<Date>,
    /// The annuity payment (ANNUITY: the total of every instalment but the first and the last) or the
    /// principal part (DIFFERENTIATED: of every instalment but the last), as in force now.
    pub fixed_part: Option<Money>,
    /// Instalments in the schedule in force (fewer after an early repayment that shortened the term).
    pub instalment_count: i32,
    pub outstanding_principal: Money,
    pub principal_repaid: Money,
    pub interest_paid: Money,
    /// Instalments an arrears assessment found unpaid after their due date and still unpaid.
    pub overdue_count: i32,
    /// The checks an approval passed, or the reasons for a rejection.
    pub decision_reasons: Vec<CreditFinding>,
    pub applied_at: DateTime,
    pub submitted_at: Option<DateTime>,
    pub decided_at: Option<DateTime>,
    pub disbursed_on: Option<Date>,
    pub completed_on: Option<Date>,
    pub defaulted_on: Option<Date>,
    pub updated_at: DateTime,
}

#[ComplexObject]
impl Loan {
    /// The schedule in force, by instalment number: paid instalments as issued, the rest as last
    /// recalculated. Empty until approval.
    async fn schedule(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<LoanInstalment>> {
        Ok(schedule(read_models(ctx)?.pool(), self.id).await?)
    }

    /// What a FULL early repayment dated `on` costs: the outstanding principal plus the interest
    /// accrued in the current period by actual days. Null unless ACTIVE. The repayment itself is
    /// still refused while instalments are in arrears or the next one is partly paid.
    async fn payoff(&self, ctx: &Context<'_>, on: Date) -> async_graphql::Result<Option<Money>> {
        let (LoanStatus::Active, Some(rate), Some(disbursed_on), Some(day_count)) = (
            self.status,
            self.annual_rate_percent,
            self.disbursed_on,
            self.day_count,
        ) else {
            return Ok(None);
        };
        let day_count = day_count.domain();
        let pool = read_models(ctx)?.pool();
        let next: Option<(i64, String)> = sqlx::query_as(
            "SELECT number, due_date FROM loan_instalments
              WHERE loan_id = $1 AND paid_principal_minor + paid_interest_minor < total_minor
              ORDER BY number LIMIT 1",
        )
        .bind(self.id.to_string())
        .fetch_optional(pool)
        .await
        .map_err(ApiError::from)?;
        let Some((number, due_date)) = next else {
            return Ok(None);
        };
        let previous: Option<String> = sqlx::query_scalar(
            "SELECT due_date FROM loan_instalments WHERE loan_id = $1 AND number = $2",
        )
        .bind(self.id.to_string())
        .bind(number - 1)
        .fetch_optional(pool)
        .await
        .map_err(ApiError::from)?;
        let period_start = aggregates::loan::period_in_progress_start(
            day_count,
            match previous {
                Some(text) => Date::from_stored(&text)?.0,
                None => disbursed_on.0,
            },
            self.last_early_repayment_on.map(|date| date.0),
        );
        let principal = aggregates::money::Money::new(
            self.outstanding_principal.amount.0,
            self.outstanding_principal.currency.into(),
        )
        .map_err(ApiError::internal)?;
        let accrued = aggregates::loan::accrued_interest(
            day_count,
            principal,
            rate.0,
            period_start,
            Date::from_stored(&due_date)?.0,
            on.0,
        );
        Ok(Some(
            principal
                .checked_add(accrued)
                .map_err(ApiError::internal)?
                .into(),
        ))
    }
}

const SELECT_LOAN: &str = "SELECT loan_id, order_id, customer_id, status, loan_type, currency, vehicle_price_minor,
        down_payment_minor, loan_amount_minor, term_months, employment_status, monthly_income_minor, credit_score,
        annual_rate_percent, schedule_kind, day_count, full_cost_percent, full_cost_minor, last_early_repayment_on, first_due_date, fixed_part_minor, instalment_count,
        outstanding_principal_minor, principal_repaid_minor, interest_paid_minor, overdue_count, decision_reasons,
        applied_at, submitted_at, decided_at, disbursed_on, completed_on, defaulted_on, applied_position, updated_at
   FROM loans";

#[derive(sqlx::FromRow)]
struct LoanRow {
    loan_id: String,
    order_id: String,
    customer_id: String,
    status: String,
    loan_type: String,
    currency: String,
    vehicle_price_minor: i64,
    down_payment_minor: i64,
    loan_amount_minor: i64,
    term_months: i64,
    employment_status: String,
    monthly_income_minor: i64,
    credit_score: i64,
    annual_rate_percent: Option<String>,
    schedule_kind: Option<String>,
    day_count: Option<String>,
    full_cost_percent: Option<String>,
    full_cost_minor: Option<i64>,
    last_early_repayment_on: Option<String>,
    first_due_date: Option<String>,
    fixed_part_minor: Option<i64>,
    instalment_count: i64,
    outstanding_principal_minor: i64,
    principal_repaid_minor: i64,
    interest_paid_minor: i64,
    overdue_count: i64,
    decision_reasons: Option<String>,
    applied_at: String,
    submitted_at: Option<String>,
    decided_at: Option<String>,
    disbursed_on: Option<String>,
    completed_on: Option<String>,
    defaulted_on: Option<String>,
    applied_position: i64,
    updated_at: String,
}

fn stored<T>(what: &str, text: &str, value: Option<T>) -> ApiResult<T> {
    value.ok_or_else(|| ApiError::internal(format!("stored {what} {text:?}")))
}

fn small(value: i64) -> ApiResult<i32> {
    i32::try_from(value).map_err(ApiError::internal)
}

impl TryFrom<LoanRow> for Loan {
    type Error = ApiError;

    fn try_from(row: LoanRow) -> ApiResult<Self> {
        let money = |minor: i64| Money::from_stored(minor, &row.currency);
        let date = |text: &Option<String>| text.as_deref().map(Date::from_stored).transpose();
        let time = |text: &Option<String>| text.as_deref().map(DateTime::from_stored).transpose();
        let status = LoanStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == row.status);
        let loan_type = match row.loan_type.as_str() {
            "CAR_LOAN" => Some(LoanType::CarLoan),
            "LEASING" => Some(LoanType::Leasing),
            "INSTALMENT" => Some(LoanType::Instalment),
            _ => None,
        };
        let employment = match row.employment_status.as_str() {
            "EMPLOYED" => Some(EmploymentStatus::Employed),
            "SELF_EMPLOYED" => Some(EmploymentStatus::SelfEmployed),
            "RETIRED" => Some(EmploymentStatus::Retired),
            "UNEMPLOYED" => Some(EmploymentStatus::Unemployed),
            _ => None,
        };
        let schedule_kind = match row.schedule_kind.as_deref() {
            None => None,
            Some("ANNUITY") => Some(ScheduleKind::Annuity),
            Some("DIFFERENTIATED") => Some(ScheduleKind::Differentiated),
            Some(other) => {
                return Err(ApiError::internal(format!(
                    "stored schedule kind {other:?}"
                )));
            }
        };
        let day_count = match row.day_count.as_deref() {
            None => None,
            Some("ACTUAL_DAYS") => Some(DayCount::ActualDays),
            Some("MONTHLY_TWELFTH") => Some(DayCount::MonthlyTwelfth),
            Some(other) => {
                return Err(ApiError::internal(format!("stored day count {other:?}")));
            }
        };
        let decision_reasons = match row.decision_reasons.as_deref() {
            None => Vec::new(),
            Some(json) => serde_json::from_str(json).map_err(ApiError::internal)?,
        };
        Ok(Loan {
            id: crate::parse_stored_uuid(&row.loan_id)?,
            order_id: crate::parse_stored_uuid(&row.order_id)?,
            customer_id: crate::parse_stored_uuid(&row.customer_id)?,
            status: stored("loan status", &row.status, status)?,
            loan_type: stored("loan type", &row.loan_type, loan_type)?,
            vehicle_price: money(row.vehicle_price_minor)?,
            down_payment: money(row.down_payment_minor)?,
            loan_amount: money(row.loan_amount_minor)?,
            term_months: small(row.term_months)?,
            employment_status: stored("employment", &row.employment_status, employment)?,
            monthly_income: money(row.monthly_income_minor)?,
            credit_score: small(row.credit_score)?,
            annual_rate_percent: row
                .annual_rate_percent
                .as_deref()
                .map(|rate| rate.parse().map(Decimal).map_err(ApiError::internal))
                .transpose()?,
            schedule_kind,
            day_count,
            full_cost_percent: row
                .full_cost_percent
                .as_deref()
                .map(|percent| percent.parse().map(Decimal).map_err(ApiError::internal))
                .transpose()?,
            full_cost: row.full_cost_minor.map(money).transpose()?,
            last_early_repayment_on: date(&row.last_early_repayment_on)?,
            first_due_date: date(&row.first_due_date)?,
            fixed_part: row.fixed_part_minor.map(money).transpose()?,
            instalment_count: small(row.instalment_count)?,
            outstanding_principal: money(row.outstanding_principal_minor)?,
            principal_repaid: money(row.principal_repaid_minor)?,
            interest_paid: money(row.interest_paid_minor)?,
            overdue_count: small(row.overdue_count)?,
            decision_reasons,
            applied_at: DateTime::from_stored(&row.applied_at)?,
            submitted_at: time(&row.submitted_at)?,
            decided_at: time(&row.decided_at)?,
            disbursed_on: date(&row.disbursed_on)?,
            completed_on: date(&row.completed_on)?,
            defaulted_on: date(&row.defaulted_on)?,
            updated_at: DateTime::from_stored(&row.updated_at)?,
        })
    }
}

/// One loan by id.
pub async fn find(pool: &DbPool, id: Uuid) -> ApiResult<Option<Loan>> {
    let sql = format!("{SELECT_LOAN} WHERE loan_id = $1");
    let row: Option<LoanRow> = sqlx::query_as(&sql)
        .bind(id.to_string())
        .fetch_optional(pool)
        .await?;
    row.map(Loan::try_from).transpose()
}

#[derive(sqlx::FromRow)]
struct InstalmentRow {
    number: i64,
    due_date: String,
    currency: String,
    principal_minor: i64,
    interest_minor: i64,
    total_minor: i64,
    remaining_minor: i64,
    paid_principal_minor: i64,
    paid_interest_minor: i64,
    status: String,
    last_paid_on: Option<String>,
}

/// The schedule in force of loan `id`, by number.
pub async fn schedule(pool: &DbPool, id: Uuid) -> ApiResult<Vec<LoanInstalment>> {
    let rows: Vec<InstalmentRow> = sqlx::query_as(
        "SELECT number, due_date, currency, principal_minor, interest_minor, total_minor, remaining_minor,
                paid_principal_minor, paid_interest_minor, status, last_paid_on
           FROM loan_instalments WHERE loan_id = $1 ORDER BY number",
    )
    .bind(id.to_string())
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            let money = |minor: i64| Money::from_stored(minor, &row.currency);
            Ok(LoanInstalment {
                number: small(row.number)?,
                due_date: Date::from_stored(&row.due_date)?,
                principal: money(row.principal_minor)?,
                interest: money(row.interest_minor)?,
                total: money(row.total_minor)?,
                remaining_balance: money(row.remaining_minor)?,
                paid_principal: money(row.paid_principal_minor)?,
                paid_interest: money(row.paid_interest_minor)?,
                status: match row.status.as_str() {
                    "PENDING" => InstalmentStatus::Pending,
                    "PARTLY_PAID" => InstalmentStatus::PartlyPaid,
                    "PAID" => InstalmentStatus::Paid,
                    "OVERDUE" => InstalmentStatus::Overdue,
                    other => {
                        return Err(ApiError::internal(format!(
                            "stored instalment status {other:?}"
                        )));
                    }
                },
                last_paid_on: row
                    .last_paid_on
                    .as_deref()
                    .map(Date::from_stored)
                    .transpose()?,
            })
        })
        .collect()
}

/// Which loans to list; every given field must match.
#[derive(InputObject, Clone, Debug, Default)]
pub struct LoanFilter {
    pub order_id: Option<crate::input::Id>,
    pub status: Option<LoanStatus>,
}

/// Cursor: the position of the loan's application in the log, and its id.
pub type LoanCursor = OpaqueCursor<(i64, String)>;

const FILTER: &str = "($1 IS NULL OR order_id = $1) AND ($2 IS NULL OR status = $2)
    AND ($3 IS NULL OR customer_id = $3)";

/// A page of loans matching `filter` (and of `customer`'s only, when given), oldest application
/// first.
pub async fn search(
    pool: &DbPool,
    filter: &LoanFilter,
    customer: Option<Uuid>,
    page: Page<LoanCursor>,
) -> ApiResult<Connection<LoanCursor, Loan, TotalCount, EmptyFields>> {
    let order_id = filter.order_id.map(|id| id.to_string());
    let status = filter.status.map(LoanStatus::as_str);
    let customer = customer.map(|id| id.to_string());
    let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM loans WHERE {FILTER}"))
        .bind(&order_id)
        .bind(status)
        .bind(&customer)
        .fetch_one(pool)
        .await?;
    let (after_position, after_id) = page
        .after
        .as_ref()
        .map(|cursor| cursor.0.clone())
        .unwrap_or((i64::MIN, String::new()));
    let sql = format!(
        "{SELECT_LOAN} WHERE {FILTER} AND (applied_position, loan_id) > ($4, $5)
          ORDER BY applied_position, loan_id LIMIT $6"
    );
    let rows: Vec<LoanRow> = sqlx::query_as(&sql)
        .bind(&order_id)
        .bind(status)
        .bind(&customer)
        .bind(after_position)
        .bind(after_id)
        .bind(page.fetch_limit())
        .fetch_all(pool)
        .await?;
    let has_next = rows.len() > page.first;
    let mut connection = Connection::with_additional_fields(
        page.has_previous,
        has_next,
        TotalCount { total_count: total },
    );
    for row in rows.into_iter().take(page.first) {
        let cursor = OpaqueCursor((row.applied_position, row.loan_id.clone()));
        connection
            .edges
            .push(Edge::new(cursor, Loan::try_from(row)?));
    }
    Ok(connection)
}

/// Loan applications and loans.
#[derive(Default)]
pub struct LoansQuery;

#[Object]
impl LoansQuery {
    /// One loan with its schedule. Unknown ids are a `NOT_FOUND` error.
    async fn loan(&self, ctx: &Context<'_>, id: crate::input::Id) -> async_graphql::Result<Loan> {
        Ok(find(read_models(ctx)?.pool(), *id)
            .await?
            .filter(|loan| crate::access::can_see_customer(ctx, loan.customer_id))
            .ok_or_else(|| ApiError::not_found("loan", id))?)
    }

    /// Loans, oldest application first, optionally for one order or in one status.
    async fn loans(
        &self,
        ctx: &Context<'_>,
        filter: Option<LoanFilter>,
        #[graphql(desc = "Page size, 1 to 200 (default 50).")] first: Option<i32>,
        #[graphql(
            desc = "Continue after this cursor (a `pageInfo.endCursor`). At most 512 characters."
        )]
        after: Option<crate::input::Cursor>,
    ) -> async_graphql::Result<Connection<LoanCursor, Loan, TotalCount, EmptyFields>> {
        let page = Page::new(first, after)?;
        let Some(customer) = crate::access::customer_filter(ctx, None) else {
            return Ok(crate::page::empty());
        };
        Ok(search(
            read_models(ctx)?.pool(),
            &filter.unwrap_or_default(),
            customer,
            page,
        )
        .await?)
    }
}
