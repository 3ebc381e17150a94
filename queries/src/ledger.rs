//! The double-entry ledger (`ledger` projector): the chart of accounts, balances, the trial
//! balance, the journal and a statement per customer. Every answer states the global position its
//! rows reflect, read in the same snapshot.
//!
//! Dates are business dates (Moscow calendar dates, see `projections::ledger`). `asOf` is
//! inclusive (entries dated on or before it); period filters take `from` inclusive and `to`
//! exclusive.

use std::collections::BTreeMap;

use async_graphql::connection::{Connection, Edge, EmptyFields, OpaqueCursor};
use async_graphql::{Context, Enum, Object, SimpleObject};
use uuid::Uuid;

use crate::audit::AggregateType as SourceAggregate;
use crate::page::Page;
use crate::scalars::{Date, Money, Position};
use crate::snapshot::Snapshot;
use crate::{ApiError, ApiResult, read_models};

const PROJECTOR: &str = "ledger";

/// What kind of account; fixes its normal side.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountType {
    Asset,
    Liability,
    Income,
    ContraIncome,
    Expense,
}

/// The side an account's balance is normally carried on.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum NormalSide {
    Debit,
    Credit,
}

/// One account of the chart.
#[derive(SimpleObject, Clone, Debug)]
pub struct LedgerAccount {
    /// e.g. `1000`, or `2200-SEVER` for an insurer's sub-account.
    pub code: String,
    pub name: String,
    pub account_type: AccountType,
    pub normal_side: NormalSide,
    /// The parent account of a sub-account (`2200` for an insurer's).
    pub parent_code: Option<String>,
    /// The insurer of a premiums-payable sub-account.
    pub insurer: Option<String>,
}

/// The chart of accounts.
#[derive(SimpleObject, Clone, Debug)]
pub struct LedgerAccounts {
    pub accounts: Vec<LedgerAccount>,
    pub reflects_position: Position,
}

/// One account's movements in one currency.
#[derive(SimpleObject, Clone, Debug)]
pub struct AccountBalance {
    pub account: LedgerAccount,
    pub debits: Money,
    pub credits: Money,
    /// On the account's normal side: debits − credits for a debit-normal account, credits − debits
    /// for a credit-normal one (negative when the account runs against its nature).
    pub balance: Money,
}

/// Every account with movements, as of a date.
#[derive(SimpleObject, Clone, Debug)]
pub struct AccountBalances {
    pub rows: Vec<AccountBalance>,
    pub reflects_position: Position,
}

/// Total debits and credits in one currency.
#[derive(SimpleObject, Clone, Debug)]
pub struct TrialBalanceTotal {
    pub debits: Money,
    pub credits: Money,
}

/// The trial balance: every account's balance and the totals, which must agree.
#[derive(SimpleObject, Clone, Debug)]
pub struct TrialBalance {
    pub rows: Vec<AccountBalance>,
    /// One per currency.
    pub totals: Vec<TrialBalanceTotal>,
    /// Total debits equal total credits in every currency.
    pub balanced: bool,
    pub reflects_position: Position,
}

/// One line of a journal entry.
#[derive(SimpleObject, Clone, Debug)]
pub struct JournalLine {
    pub account_code: String,
    pub debit: Money,
    pub credit: Money,
    pub customer_id: Option<Uuid>,
}

/// One journal entry: the postings of one source event.
#[derive(SimpleObject, Clone, Debug)]
pub struct JournalEntry {
    /// The global position of the source event (the entry's id).
    pub position: Position,
    pub business_date: Date,
    pub description: String,
    pub customer_id: Option<Uuid>,
    /// The source event's aggregate (readable with `aggregateEvents`).
    pub aggregate_type: SourceAggregate,
    pub aggregate_id: Uuid,
    pub event_type: String,
    pub lines: Vec<JournalLine>,
}

/// Extra fields of the journal connection.
#[derive(SimpleObject, Clone, Copy, Debug)]
pub struct JournalFields {
    pub total_count: i64,
    pub reflects_position: Position,
}

pub type JournalCursor = OpaqueCursor<i64>;
pub type JournalConnection = Connection<JournalCursor, JournalEntry, JournalFields, EmptyFields>;

/// One line of a customer's statement.
#[derive(SimpleObject, Clone, Debug)]
pub struct StatementLine {
    pub position: Position,
    pub business_date: Date,
    pub description: String,
    pub account_code: String,
    pub debit: Money,
    pub credit: Money,
    /// Running balance in this line's currency after it: debits − credits on the customer's
    /// accounts. Positive: the customer owes the dealership; negative: the dealership holds the
    /// customer's money.
    pub balance: Money,
}

/// A customer's statement: every line on the customer's accounts (1100 receivables, 1200 loan
/// receivable, 2100 advances) in a period, with the balance brought forward and running.
#[derive(SimpleObject, Clone, Debug)]
pub struct CustomerStatement {
    pub customer_id: Uuid,
    /// Balance before `from`, one per currency with movements.
    pub opening_balances: Vec<Money>,
    pub lines: Vec<StatementLine>,
    /// Balance at the end of the period, one per currency with movements.
    pub closing_balances: Vec<Money>,
    pub reflects_position: Position,
}

fn account_type(text: &str) -> ApiResult<AccountType> {
    Ok(match text {
        "ASSET" => AccountType::Asset,
        "LIABILITY" => AccountType::Liability,
        "INCOME" => AccountType::Income,
        "CONTRA_INCOME" => AccountType::ContraIncome,
        "EXPENSE" => AccountType::Expense,
        other => return Err(ApiError::internal(format!("stored account type {other:?}"))),
    })
}

fn normal_side(text: &str) -> ApiResult<NormalSide> {
    Ok(match text {
        "DEBIT" => NormalSide::Debit,
        "CREDIT" => NormalSide::Credit,
        other => return Err(ApiError::internal(format!("stored side {other:?}"))),
    })
}

fn source_aggregate(text: &str) -> ApiResult<SourceAggregate> {
    use SourceAggregate::*;
    [
        Vehicle,
        Customer,
        Order,
        Booking,
        MechanicDay,
        Payment,
        Loan,
        Policy,
    ]
    .into_iter()
    .find(|kind| kind.stored_name() == text)
    .ok_or_else(|| ApiError::internal(format!("stored aggregate type {text:?}")))
}

fn stored_uuid(text: Option<String>) -> ApiResult<Option<Uuid>> {
    text.as_deref().map(crate::parse_stored_uuid).transpose()
}

#[derive(sqlx::FromRow)]
struct AccountRow {
    code: String,
    name: String,
    account_type: String,
    normal_side: String,
    parent_code: Option<String>,
    insurer: Option<String>,
}

impl TryFrom<AccountRow> for LedgerAccount {
    type Error = ApiError;
    fn try_from(row: AccountRow) -> ApiResult<Self> {
        Ok(LedgerAccount {
            account_type: account_type(&row.account_type)?,
            normal_side: normal_side(&row.normal_side)?,
            code: row.code,
            name: row.name,
            parent_code: row.parent_code,
            insurer: row.insurer,
        })
    }
}

/// The chart, by code.
pub async fn accounts(snapshot: &mut Snapshot) -> ApiResult<Vec<LedgerAccount>> {
    let rows: Vec<AccountRow> = sqlx::query_as(
        "SELECT code, name, account_type, normal_side, parent_code, insurer FROM ledger_accounts
          ORDER BY code",
    )
    .fetch_all(snapshot.conn())
    .await?;
    rows.into_iter().map(LedgerAccount::try_from).collect()
}

/// Per account and currency: debits and credits of entries dated on or before `as_of`.
pub async fn balances(
    snapshot: &mut Snapshot,
    as_of: Option<Date>,
) -> ApiResult<Vec<AccountBalance>> {
    let chart: BTreeMap<String, LedgerAccount> = accounts(snapshot)
        .await?
        .into_iter()
        .map(|account| (account.code.clone(), account))
        .collect();
    let as_of = as_of.map(|date| date.0.to_string());
    let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT l.account_code, l.currency, CAST(sum(l.debit_minor) AS BIGINT),
                CAST(sum(l.credit_minor) AS BIGINT)
           FROM ledger_lines l JOIN ledger_entries e ON e.position = l.position
          WHERE $1 IS NULL OR e.business_date <= $1
          GROUP BY l.account_code, l.currency ORDER BY l.account_code, l.currency",
    )
    .bind(as_of)
    .fetch_all(snapshot.conn())
    .await?;
    rows.into_iter()
        .map(|(code, currency, debits, credits)| {
            let account = chart
                .get(&code)
                .cloned()
                .ok_or_else(|| ApiError::internal(format!("account {code} not in the chart")))?;
            let balance = match account.normal_side {
                NormalSide::Debit => debits - credits,
                NormalSide::Credit => credits - debits,
            };
            Ok(AccountBalance {
                account,
                debits: Money::from_stored(debits, &currency)?,
                credits: Money::from_stored(credits, &currency)?,
                balance: Money::from_stored(balance, &currency)?,
            })
        })
        .collect()
}

/// The trial balance as of a date (inclusive).
pub async fn trial_balance(
    snapshot: &mut Snapshot,
    as_of: Option<Date>,
) -> ApiResult<TrialBalance> {
    let rows = balances(snapshot, as_of).await?;
    let as_of = as_of.map(|date| date.0.to_string());
    let totals: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT l.currency, CAST(sum(l.debit_minor) AS BIGINT), CAST(sum(l.credit_minor) AS BIGINT)
           FROM ledger_lines l JOIN ledger_entries e ON e.position = l.position
          WHERE $1 IS NULL OR e.business_date <= $1
          GROUP BY l.currency ORDER BY l.currency",
    )
    .bind(as_of)
    .fetch_all(snapshot.conn())
    .await?;
    let balanced = totals.iter().all(|(_, debits, credits)| debits == credits);
    let totals = totals
        .into_iter()
        .map(|(currency, debits, credits)| {
            Ok(TrialBalanceTotal {
                debits: Money::from_stored(debits, &currency)?,
                credits: Money::from_stored(credits, &currency)?,
            })
        })
        .collect::<ApiResult<_>>()?;
    let reflects_position = Position(snapshot.position(PROJECTOR).await?);
    Ok(TrialBalance {
        rows,
        totals,
        balanced,
        reflects_position,
    })
}

#[derive(sqlx::FromRow)]
struct EntryRow {
    position: i64,
    business_date: String,
    description: String,
    customer_id: Option<String>,
    aggregate_type: String,
    aggregate_id: String,
    event_type: String,
}

const JOURNAL_FILTER: &str = "($1 IS NULL OR e.business_date >= $1) AND ($2 IS NULL OR e.business_date < $2)
    AND ($3 IS NULL OR EXISTS (SELECT 1 FROM ledger_lines a WHERE a.position = e.position AND a.account_code = $3))";

/// Journal entries in a period (`from` inclusive, `to` exclusive), optionally only those touching
/// `account`, in log order, one page.
pub async fn journal(
    snapshot: &mut Snapshot,
    from: Option<Date>,
    to: Option<Date>,
    account: Option<String>,
    page: Page<JournalCursor>,
) -> ApiResult<JournalConnection> {
    let from = from.map(|date| date.0.to_string());
    let to = to.map(|date| date.0.to_string());
    let total: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM ledger_entries e WHERE {JOURNAL_FILTER}"
    ))
    .bind(&from)
    .bind(&to)
    .bind(&account)
    .fetch_one(snapshot.conn())
    .await?;
    let after = page
        .after
        .as_ref()
        .map(|cursor| cursor.0)
        .unwrap_or(i64::MIN);
    let rows: Vec<EntryRow> = sqlx::query_as(&format!(
        "SELECT e.position, e.business_date, e.description, e.customer_id, e.aggregate_type,
                e.aggregate_id, e.event_type
           FROM ledger_entries e WHERE {JOURNAL_FILTER} AND e.position > $4
          ORDER BY e.position LIMIT $5"
    ))
    .bind(&from)
    .bind(&to)
    .bind(&account)
    .bind(after)
    .bind(page.fetch_limit())
    .fetch_all(snapshot.conn())
    .await?;
    let reflects_position = Position(snapshot.position(PROJECTOR).await?);
    let has_next = rows.len() > page.first;
    let mut connection = Connection::with_additional_fields(
        page.has_previous,
        has_next,
        JournalFields {
            total_count: total,
            reflects_position,
        },
    );
    for row in rows.into_iter().take(page.first) {
        let lines: Vec<(String, i64, i64, String, Option<String>)> = sqlx::query_as(
            "SELECT account_code, debit_minor, credit_minor, currency, customer_id FROM ledger_lines
              WHERE position = $1 ORDER BY line_no",
        )
        .bind(row.position)
        .fetch_all(snapshot.conn())
        .await?;
        let lines = lines
            .into_iter()
            .map(|(account_code, debit, credit, currency, customer)| {
                Ok(JournalLine {
                    account_code,
                    debit: Money::from_stored(debit, &currency)?,
                    credit: Money::from_stored(credit, &currency)?,
                    customer_id: stored_uuid(customer)?,
                })
            })
            .collect::<ApiResult<_>>()?;
        let entry = JournalEntry {
            position: Position(row.position),
            business_date: Date::from_stored(&row.business_date)?,
            description: row.description,
            customer_id: stored_uuid(row.customer_id)?,
            aggregate_type: source_aggregate(&row.aggregate_type)?,
            aggregate_id: crate::parse_stored_uuid(&row.aggregate_id)?,
            event_type: row.event_type,
            lines,
        };
        connection
            .edges
            .push(Edge::new(OpaqueCursor(entry.position.0), entry));
    }
    Ok(connection)
}

/// A customer's statement for a period (`from` inclusive, `to` exclusive); `None` for an unknown
/// customer.
pub async fn customer_statement(
    snapshot: &mut Snapshot,
    customer_id: Uuid,
    from: Option<Date>,
    to: Option<Date>,
) -> ApiResult<Option<CustomerStatement>> {
    let id = customer_id.to_string();
    let known: Option<i64> = sqlx::query_scalar("SELECT 1 FROM customers WHERE customer_id = $1")
        .bind(&id)
        .fetch_optional(snapshot.conn())
        .await?;
    let booked: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM ledger_lines WHERE customer_id = $1 LIMIT 1")
            .bind(&id)
            .fetch_optional(snapshot.conn())
            .await?;
    if known.is_none() && booked.is_none() {
        return Ok(None);
    }
    let rows: Vec<(i64, String, String, String, i64, i64, String)> = sqlx::query_as(
        "SELECT l.position, e.business_date, e.description, l.account_code, l.debit_minor,
                l.credit_minor, l.currency
           FROM ledger_lines l JOIN ledger_entries e ON e.position = l.position
          WHERE l.customer_id = $1 AND l.account_code IN ('1100', '1200', '2100')
            AND ($2 IS NULL OR e.business_date < $3)
          -- By business date first: the opening balance is the sum of every line dated before the
          -- period, even when a later-dated line was committed first.
          ORDER BY e.business_date, l.position, l.line_no",
    )
    .bind(&id)
    .bind(to.map(|date| date.0.to_string()))
    .bind(to.map(|date| date.0.to_string()))
    .fetch_all(snapshot.conn())
    .await?;
    let from = from.map(|date| date.0);
    let mut running: BTreeMap<String, i64> = BTreeMap::new();
    let mut opening: BTreeMap<String, i64> = BTreeMap::new();
    let mut lines = Vec::new();
    for (position, date, description, account_code, debit, credit, currency) in rows {
        let business_date = Date::from_stored(&date)?;
        let balance = running.entry(currency.clone()).or_default();
        *balance += debit - credit;
        if from.is_some_and(|from| business_date.0 < from) {
            opening.insert(currency.clone(), *balance);
            continue;
        }
        lines.push(StatementLine {
            position: Position(position),
            business_date,
            description,
            account_code,
            debit: Money::from_stored(debit, &currency)?,
            credit: Money::from_stored(credit, &currency)?,
            balance: Money::from_stored(*balance, &currency)?,
        });
    }
    let to_money = |balances: BTreeMap<String, i64>| {
        balances
            .into_iter()
            .map(|(currency, minor)| Money::from_stored(minor, &currency))
            .collect::<ApiResult<Vec<_>>>()
    };
    let reflects_position = Position(snapshot.position(PROJECTOR).await?);
    Ok(Some(CustomerStatement {
        customer_id,
        opening_balances: to_money(opening)?,
        lines,
        closing_balances: to_money(running)?,
        reflects_position,
    }))
}

/// The ledger's queries.
#[derive(Default)]
pub struct LedgerQuery;

#[Object]
impl LedgerQuery {
    /// The chart of accounts, by code (insurers' sub-accounts appear with their first policy).
    async fn ledger_accounts(&self, ctx: &Context<'_>) -> async_graphql::Result<LedgerAccounts> {
        let mut snapshot = Snapshot::open(read_models(ctx)?.pool()).await?;
        let accounts = accounts(&mut snapshot).await?;
        let reflects_position = Position(snapshot.position(PROJECTOR).await?);
        Ok(LedgerAccounts {
            accounts,
            reflects_position,
        })
    }

    /// Debits, credits and balance of every account with movements, per currency, from entries
    /// dated on or before `asOf` (all when omitted).
    async fn account_balances(
        &self,
        ctx: &Context<'_>,
        as_of: Option<Date>,
    ) -> async_graphql::Result<AccountBalances> {
        let mut snapshot = Snapshot::open(read_models(ctx)?.pool()).await?;
        let rows = balances(&mut snapshot, as_of).await?;
        let reflects_position = Position(snapshot.position(PROJECTOR).await?);
        Ok(AccountBalances {
            rows,
            reflects_position,
        })
    }

    /// The trial balance from entries dated on or before `asOf` (all when omitted).
    async fn trial_balance(
        &self,
        ctx: &Context<'_>,
        as_of: Option<Date>,
    ) -> async_graphql::Result<TrialBalance> {
        let mut snapshot = Snapshot::open(read_models(ctx)?.pool()).await?;
        Ok(trial_balance(&mut snapshot, as_of).await?)
    }

    /// Journal entries in log order, dated in `[from, to)`, optionally only those with a line on
    /// `account`.
    async fn journal(
        &self,
        ctx: &Context<'_>,
        from: Option<Date>,
        to: Option<Date>,
        #[graphql(
            desc = "An account code, e.g. \"1000\" or \"2200-SEVER\". At most 32 characters."
        )]
        account: Option<crate::input::AccountCode>,
        #[graphql(desc = "Page size, 1 to 200 (default 50).")] first: Option<i32>,
        #[graphql(
            desc = "Continue after this cursor (a `pageInfo.endCursor`). At most 512 characters."
        )]
        after: Option<crate::input::Cursor>,
    ) -> async_graphql::Result<JournalConnection> {
        let page = Page::new(first, after)?;
        let mut snapshot = Snapshot::open(read_models(ctx)?.pool()).await?;
        if let Some(code) = &account {
            let known: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM ledger_accounts WHERE code = $1")
                    .bind(code.as_str())
                    .fetch_optional(snapshot.conn())
                    .await
                    .map_err(ApiError::from)?;
            if known.is_none() {
                return Err(ApiError::not_found("account", code).into());
            }
        }
        Ok(journal(&mut snapshot, from, to, account.map(String::from), page).await?)
    }

    /// The lines on a customer's accounts dated in `[from, to)`, with the running balance.
    async fn customer_statement(
        &self,
        ctx: &Context<'_>,
        customer_id: crate::input::Id,
        from: Option<Date>,
        to: Option<Date>,
    ) -> async_graphql::Result<CustomerStatement> {
        let customer_id = *customer_id;
        if !crate::access::can_see_customer(ctx, customer_id) {
            return Err(ApiError::not_found("customer", customer_id).into());
        }
        let mut snapshot = Snapshot::open(read_models(ctx)?.pool()).await?;
        Ok(customer_statement(&mut snapshot, customer_id, from, to)
            .await?
            .ok_or_else(|| ApiError::not_found("customer", customer_id))?)
    }
}
