//! The shadow ledger: the journal entries the documented posting rules (docs/read-models.md,
//! "Postings") give for what the scenario did, kept by the scenario from its own inputs, and the
//! comparison of the `ledger` read model with it: entry by entry, line by line, and every account's
//! balance.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::tariffs::kopecks;

pub const CASH: &str = "1000";
pub const CUSTOMER_RECEIVABLES: &str = "1100";
pub const LOAN_RECEIVABLE: &str = "1200";
pub const CUSTOMER_ADVANCES: &str = "2100";
pub const CLAIMS_PAYABLE: &str = "2400";
pub const VEHICLE_SALES: &str = "4000";
pub const SALES_DISCOUNTS: &str = "4010";
pub const INTEREST_INCOME: &str = "4100";
pub const SERVICE_REVENUE: &str = "4200";
pub const COMMISSION_INCOME: &str = "4300";

/// The chart's fixed accounts (the insurers' `2200-INSURER` come with their first policy).
pub const CHART: [&str; 10] = [
    CASH,
    CUSTOMER_RECEIVABLES,
    LOAN_RECEIVABLE,
    CUSTOMER_ADVANCES,
    CLAIMS_PAYABLE,
    VEHICLE_SALES,
    SALES_DISCOUNTS,
    INTEREST_INCOME,
    SERVICE_REVENUE,
    COMMISSION_INCOME,
];

pub fn premiums_payable(insurer: &str) -> String {
    format!("2200-{insurer}")
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Line {
    pub account: String,
    pub debit: i64,
    pub credit: i64,
    pub currency: String,
    pub customer: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub event_type: String,
    /// `None` when the scenario ran on the wall clock and cannot know the day exactly.
    pub business_date: Option<NaiveDate>,
    pub customer: Option<String>,
    pub lines: Vec<Line>,
}

impl Entry {
    fn render(&self, with_date: bool) -> String {
        let date = match (with_date, self.business_date) {
            (true, Some(date)) => date.to_string(),
            _ => "-".to_string(),
        };
        let mut lines: Vec<String> = self
            .lines
            .iter()
            .map(|l| {
                format!(
                    "{} Dr {} Cr {} {} {}",
                    l.account,
                    l.debit,
                    l.credit,
                    l.currency,
                    l.customer.as_deref().unwrap_or("-")
                )
            })
            .collect();
        lines.sort();
        format!(
            "{} {} {} on {} for {}: [{}]",
            self.aggregate_type,
            self.aggregate_id,
            self.event_type,
            date,
            self.customer.as_deref().unwrap_or("-"),
            lines.join("; ")
        )
    }
}

/// An entry being built: zero lines are left out, as the rules say every line is one positive
/// amount on one side.
pub struct Posting {
    entry: Entry,
    currency: String,
}

impl Posting {
    pub fn debit(mut self, account: &str, minor: i64, customer: Option<&str>) -> Self {
        assert!(minor >= 0, "a negative debit of {minor} on {account}");
        if minor > 0 {
            self.entry.lines.push(Line {
                account: account.to_string(),
                debit: minor,
                credit: 0,
                currency: self.currency.clone(),
                customer: customer.map(str::to_string),
            });
        }
        self
    }

    pub fn credit(mut self, account: &str, minor: i64, customer: Option<&str>) -> Self {
        assert!(minor >= 0, "a negative credit of {minor} on {account}");
        if minor > 0 {
            self.entry.lines.push(Line {
                account: account.to_string(),
                debit: 0,
                credit: minor,
                currency: self.currency.clone(),
                customer: customer.map(str::to_string),
            });
        }
        self
    }
}

/// What the ledger must hold.
#[derive(Default)]
pub struct Shadow {
    pub entries: Vec<Entry>,
    /// Insurers that issued a policy: each has its sub-account.
    pub insurers: BTreeSet<String>,
}

impl Shadow {
    #[allow(clippy::too_many_arguments)]
    pub fn post(
        &mut self,
        aggregate_type: &str,
        aggregate_id: &str,
        event_type: &str,
        business_date: Option<NaiveDate>,
        customer: &str,
        currency: &str,
        lines: impl FnOnce(Posting) -> Posting,
    ) {
        let posting = lines(Posting {
            entry: Entry {
                aggregate_type: aggregate_type.to_string(),
                aggregate_id: aggregate_id.to_string(),
                event_type: event_type.to_string(),
                business_date,
                customer: Some(customer.to_string()),
                lines: Vec::new(),
            },
            currency: currency.to_string(),
        });
        if !posting.entry.lines.is_empty() {
            self.entries.push(posting.entry);
        }
    }

    /// Debit minus credit per (account, currency), from the shadow's entries.
    pub fn balances(&self) -> BTreeMap<(String, String), i64> {
        let mut balances = BTreeMap::new();
        for line in self.entries.iter().flat_map(|e| &e.lines) {
            *balances
                .entry((line.account.clone(), line.currency.clone()))
                .or_insert(0) += line.debit - line.credit;
        }
        balances
    }

    /// Every account that moved, in any currency.
    pub fn accounts_moved(&self) -> BTreeSet<String> {
        self.entries
            .iter()
            .flat_map(|e| &e.lines)
            .map(|l| l.account.clone())
            .collect()
    }
}

/// The commission clawed back by a cancellation refund, as documented: `commission × refund /
/// premium`, rounded to kopecks half away from zero.
pub fn claw_back(commission: i64, refund: i64, premium: i64) -> i64 {
    let share = Decimal::new(commission, 2) * Decimal::from(refund) / Decimal::from(premium);
    super::tariffs::minor_of(kopecks(share))
}

/// The pro-rata refund of a policy cancelled on `on` (documented in `aggregates::policy`).
pub fn pro_rata_refund(premium: i64, start: NaiveDate, end: NaiveDate, on: NaiveDate) -> i64 {
    let total = (end - start).num_days();
    let unused = if on < start {
        total
    } else {
        ((end - on).num_days() - 1).clamp(0, total)
    };
    super::tariffs::minor_of(kopecks(
        Decimal::new(premium, 2) * Decimal::from(unused) / Decimal::from(total),
    ))
}

/// Compares the `ledger` read model with the shadow: every entry and line, the chart's accounts,
/// and every account's balance in every currency. Panics with the differences.
pub async fn reconcile(pool: &eventstore::DbPool, shadow: &Shadow, label: &str) {
    use sqlx::Row;
    let with_dates = shadow.entries.iter().all(|e| e.business_date.is_some());
    let entries = sqlx::query(
        "SELECT position, aggregate_type, aggregate_id, event_type, business_date, customer_id
           FROM ledger_entries",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut by_position: BTreeMap<i64, Entry> = entries
        .iter()
        .map(|row| {
            let date: String = row.get(4);
            (
                row.get::<i64, _>(0),
                Entry {
                    aggregate_type: row.get(1),
                    aggregate_id: row.get(2),
                    event_type: row.get(3),
                    business_date: Some(date.parse().unwrap()),
                    customer: row.get(5),
                    lines: Vec::new(),
                },
            )
        })
        .collect();
    let lines = sqlx::query(
        "SELECT position, account_code, debit_minor, credit_minor, currency, customer_id
           FROM ledger_lines",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for row in &lines {
        let position: i64 = row.get(0);
        let entry = by_position
            .get_mut(&position)
            .unwrap_or_else(|| panic!("{label}: ledger line at {position} without its entry"));
        entry.lines.push(Line {
            account: row.get(1),
            debit: row.get(2),
            credit: row.get(3),
            currency: row.get(4),
            customer: row.get(5),
        });
    }
    let mut actual: Vec<String> = by_position.values().map(|e| e.render(with_dates)).collect();
    let mut expected: Vec<String> = shadow
        .entries
        .iter()
        .map(|e| e.render(with_dates))
        .collect();
    actual.sort();
    expected.sort();
    if actual != expected {
        let missing: Vec<&String> = expected.iter().filter(|e| !actual.contains(e)).collect();
        let unexpected: Vec<&String> = actual.iter().filter(|e| !expected.contains(e)).collect();
        panic!(
            "{label}: the ledger's entries differ from the posting rules applied to the scenario\n\
             {} expected, {} posted\nexpected but not posted:\n  {}\nposted but not expected:\n  {}",
            expected.len(),
            actual.len(),
            missing
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n  "),
            unexpected
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n  "),
        );
    }

    let codes: BTreeSet<String> = sqlx::query_scalar("SELECT code FROM ledger_accounts")
        .fetch_all(pool)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let chart: BTreeSet<String> = CHART
        .iter()
        .map(|c| c.to_string())
        .chain(shadow.insurers.iter().map(|i| premiums_payable(i)))
        .collect();
    assert_eq!(codes, chart, "{label}: the chart of accounts");

    // Every account of the chart, in every currency the scenario used: the trial balance.
    let posted: BTreeMap<(String, String), i64> = sqlx::query_as::<_, (String, String, i64)>(
        "SELECT account_code, currency, CAST(sum(debit_minor) - sum(credit_minor) AS BIGINT)
           FROM ledger_lines GROUP BY account_code, currency",
    )
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(account, currency, balance)| ((account, currency), balance))
    .collect();
    let expected = shadow.balances();
    let currencies: BTreeSet<&String> = expected.keys().map(|(_, c)| c).collect();
    for account in &chart {
        for currency in &currencies {
            let key = (account.clone(), (*currency).clone());
            assert_eq!(
                posted.get(&key).copied().unwrap_or(0),
                expected.get(&key).copied().unwrap_or(0),
                "{label}: balance of {account} in {currency}"
            );
        }
    }
    for currency in currencies {
        let net: i64 = posted
            .iter()
            .filter(|((_, c), _)| c == currency)
            .map(|(_, balance)| balance)
            .sum();
        assert_eq!(net, 0, "{label}: debits equal credits in {currency}");
    }
}
