//! The chart of accounts of the ledger.
//!
//! | Code            | Name                                   | Type           | Normal side |
//! |-----------------|----------------------------------------|----------------|-------------|
//! | 1000            | Cash and bank                          | asset          | debit       |
//! | 1100            | Customer receivables                   | asset          | debit       |
//! | 1200            | Loan receivable                        | asset          | debit       |
//! | 2100            | Customer advances                      | liability      | credit      |
//! | 2200-`INSURER`  | Insurance premiums payable to `INSURER`| liability      | credit      |
//! | 2400            | Claims payable                         | liability      | credit      |
//! | 4000            | Vehicle sales revenue                  | income         | credit      |
//! | 4010            | Sales discounts                        | contra-income  | debit       |
//! | 4100            | Interest income                        | income         | credit      |
//! | 4200            | Service revenue                        | income         | credit      |
//! | 4300            | Commission income                      | income         | credit      |
//!
//! `2200-INSURER` is one sub-account per insurer (the insurer's code as the policy names it); it
//! exists from the first policy issued by that insurer. There is no separate refunds account:
//! refunds are paid out at once and reverse the account the money was received on (customer
//! advances for a payment, the insurer's premiums payable and commission income for a policy).

/// What kind of account, which fixes its normal side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountType {
    Asset,
    Liability,
    Income,
    ContraIncome,
    Expense,
}

impl AccountType {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountType::Asset => "ASSET",
            AccountType::Liability => "LIABILITY",
            AccountType::Income => "INCOME",
            AccountType::ContraIncome => "CONTRA_INCOME",
            AccountType::Expense => "EXPENSE",
        }
    }

    /// The side on which the balance of an account of this type is normally carried.
    pub fn normal_side(self) -> Side {
        match self {
            AccountType::Asset | AccountType::ContraIncome | AccountType::Expense => Side::Debit,
            AccountType::Liability | AccountType::Income => Side::Credit,
        }
    }
}

/// Debit or credit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Debit,
    Credit,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Debit => "DEBIT",
            Side::Credit => "CREDIT",
        }
    }
}

/// One account of the chart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Account {
    pub code: &'static str,
    pub name: &'static str,
    pub account_type: AccountType,
}

pub const CASH: &str = "1000";
pub const CUSTOMER_RECEIVABLES: &str = "1100";
pub const LOAN_RECEIVABLE: &str = "1200";
pub const CUSTOMER_ADVANCES: &str = "2100";
/// The parent of the per-insurer sub-accounts `2200-INSURER`.
pub const PREMIUMS_PAYABLE: &str = "2200";
pub const CLAIMS_PAYABLE: &str = "2400";
pub const VEHICLE_SALES: &str = "4000";
pub const SALES_DISCOUNTS: &str = "4010";
pub const INTEREST_INCOME: &str = "4100";
pub const SERVICE_REVENUE: &str = "4200";
pub const COMMISSION_INCOME: &str = "4300";

/// The fixed accounts (the per-insurer sub-accounts of 2200 come and go with the insurers).
pub const CHART: &[Account] = &[
    Account {
        code: CASH,
        name: "Cash and bank",
        account_type: AccountType::Asset,
    },
    Account {
        code: CUSTOMER_RECEIVABLES,
        name: "Customer receivables",
        account_type: AccountType::Asset,
    },
    Account {
        code: LOAN_RECEIVABLE,
        name: "Loan receivable",
        account_type: AccountType::Asset,
    },
    Account {
        code: CUSTOMER_ADVANCES,
        name: "Customer advances",
        account_type: AccountType::Liability,
    },
    Account {
        code: CLAIMS_PAYABLE,
        name: "Claims payable",
        account_type: AccountType::Liability,
    },
    Account {
        code: VEHICLE_SALES,
        name: "Vehicle sales revenue",
        account_type: AccountType::Income,
    },
    Account {
        code: SALES_DISCOUNTS,
        name: "Sales discounts",
        account_type: AccountType::ContraIncome,
    },
    Account {
        code: INTEREST_INCOME,
        name: "Interest income",
        account_type: AccountType::Income,
    },
    Account {
        code: SERVICE_REVENUE,
        name: "Service revenue",
        account_type: AccountType::Income,
    },
    Account {
        code: COMMISSION_INCOME,
        name: "Commission income",
        account_type: AccountType::Income,
    },
];

/// The premiums-payable sub-account of one insurer.
pub fn premiums_payable(insurer: &str) -> String {
    format!("{PREMIUMS_PAYABLE}-{insurer}")
}

/// Accounts whose lines belong to one customer: what the customer statement shows.
pub const CUSTOMER_ACCOUNTS: &[&str] = &[CUSTOMER_RECEIVABLES, LOAN_RECEIVABLE, CUSTOMER_ADVANCES];
