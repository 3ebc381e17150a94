//! The permission matrix: which role may run which query and mutation, enforced in one place.
//!
//! [`Enforce`] is an async-graphql extension that sees every root field before its resolver runs
//! (so before any argument is read or any command sent). It looks the field up in [`MATRIX`]:
//! a field that is not there is refused for everyone (deny by default), and a test derives the
//! list of root fields from the schema itself, so a new operation cannot ship without a row.
//! Refusals are `UNAUTHENTICATED` for an anonymous caller and `FORBIDDEN` for a signed-in one.
//!
//! "own" means the role may run the operation on its own records only; which rows those are is
//! decided by `queries::access` (reads) and `commands::mutations::ensure_own` (writes), which
//! answer another customer's id exactly like an unknown one (`NOT_FOUND`).
//!
//! The same matrix, with the reason for each row, is docs/security.md; a test keeps the two equal.

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextResolve, ResolveInfo,
};
use async_graphql::{ErrorExtensions, ServerResult, Value};
use queries::access::{Identity, Role};
use queries::codes;

/// The roles in the order of the matrix's columns (after `anonymous`).
pub const COLUMNS: [Role; 9] = [
    Role::Client,
    Role::Sales,
    Role::Finance,
    Role::Insurance,
    Role::Service,
    Role::Admin,
    Role::Auditor,
    Role::Analyst,
    Role::Partner,
];

/// What a role may do with one operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Allowed,
    /// On its own records only.
    Own,
    Denied,
}

impl Access {
    fn from_char(c: u8) -> Access {
        match c {
            b'A' => Access::Allowed,
            b'O' => Access::Own,
            _ => Access::Denied,
        }
    }

    /// How docs/security.md writes it.
    pub fn word(self) -> &'static str {
        match self {
            Access::Allowed => "yes",
            Access::Own => "own",
            Access::Denied => "no",
        }
    }
}

/// Which root an operation is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Root {
    Query,
    Mutation,
}

impl Root {
    pub fn type_name(self) -> &'static str {
        match self {
            Root::Query => "QueryRoot",
            Root::Mutation => "MutationRoot",
        }
    }
}

use Root::{Mutation as M, Query as Q};

/// Every operation, and per column (anonymous, then [`COLUMNS`]) what that caller may do:
/// `A` allowed, `O` own records only, `-` denied.
#[rustfmt::skip]
pub const MATRIX: &[(Root, &str, &str)] = &[
    //                                       anon client sales finance insurance service admin auditor analyst partner
    // -- catalog and public checks
    (Q, "vehicles",                          "AAAAAAAAAA"),
    (Q, "vehicleCounts",                     "AAAAAAAAAA"),
    (Q, "vehicle",                           "AAAAAAAAAA"),
    (Q, "dealershipPublicKey",               "AAAAAAAAAA"),
    (Q, "verifyPolicy",                      "AAAAAAAAAA"),
    // -- customers, orders, money
    (Q, "customer",                          "-OAAAAAAA-"),
    (Q, "customerSummary",                   "-OAAAAAAA-"),
    (Q, "customerHistory",                   "-OAAAAAA--"),
    (Q, "customerStatement",                 "-O-A--AAA-"),
    (Q, "order",                             "-OAA--AAA-"),
    (Q, "payment",                           "-OAA--AAA-"),
    (Q, "payments",                          "-OAA--AAA-"),
    (Q, "loan",                              "-OAA--AAA-"),
    (Q, "loans",                             "-OAA--AAA-"),
    // -- insurance
    (Q, "quote",                             "-OA-A-AAA-"),
    (Q, "policy",                            "-OAAA-AAAO"),
    (Q, "policyByNumber",                    "-OAAA-AAAO"),
    (Q, "policies",                          "-OAAA-AAAO"),
    // -- workshop
    (Q, "booking",                           "-OA--AAAA-"),
    (Q, "bookings",                          "-OA--AAAA-"),
    (Q, "mechanicSchedule",                  "-----AAAA-"),
    (Q, "serviceHistory",                    "--A--AAAA-"),
    // -- reports and the ledger
    (Q, "salesReport",                       "--A---AAA-"),
    (Q, "promotion",                         "--A---AAA-"),
    (Q, "promotionsReport",                  "--A---AAA-"),
    (Q, "inventoryAging",                    "--A---AAA-"),
    (Q, "paymentsReport",                    "---A--AAA-"),
    (Q, "financingPortfolio",                "---A--AAA-"),
    (Q, "insuranceReport",                   "----A-AAA-"),
    (Q, "commissionSettlement",              "---AA-AAAO"),
    (Q, "serviceReport",                     "-----AAAA-"),
    (Q, "ledgerAccounts",                    "---A--AAA-"),
    (Q, "accountBalances",                   "---A--AAA-"),
    (Q, "trialBalance",                      "---A--AAA-"),
    (Q, "journal",                           "---A--AAA-"),
    // -- the log and the server
    (Q, "events",                            "------AA--"),
    (Q, "aggregateEvents",                   "------AA--"),
    (Q, "projections",                       "------AAA-"),
    // -- accounts
    (Q, "me",                                "-AAAAAAAAA"),
    (Q, "accounts",                          "------AA--"),
    (Q, "account",                           "------AA--"),
    (Q, "partnerApiKeys",                    "------AA--"),
    // -- stock
    (M, "stockVehicle",                      "--A---A---"),
    (M, "repriceVehicle",                    "--A---A---"),
    (M, "relocateVehicle",                   "--A---A---"),
    (M, "withdrawVehicle",                   "--A---A---"),
    (M, "releaseVehicleReservation",         "--A---A---"),
    // -- customers and orders
    (M, "registerCustomer",                  "--A-AAA---"),
    (M, "changeCustomerContactDetails",      "-OA-AAA---"),
    (M, "draftOrder",                        "--A---A---"),
    (M, "applyOrderDiscount",                "--A---A---"),
    (M, "applyPromoCode",                    "--A---A---"),
    (M, "createPromotion",                   "------A---"),
    (M, "endPromotion",                      "------A---"),
    (M, "confirmOrder",                      "--A---A---"),
    (M, "cancelOrder",                       "--A---A---"),
    (M, "handOverOrder",                     "--A---A---"),
    // -- payments
    (M, "initiatePayment",                   "---A--A---"),
    (M, "startPaymentProcessing",            "---A--A---"),
    (M, "completePayment",                   "---A--A---"),
    (M, "recordPaymentOnOrder",              "---A--A---"),
    (M, "failPayment",                       "---A--A---"),
    (M, "cancelPayment",                     "---A--A---"),
    (M, "refundPayment",                     "---A--A---"),
    // -- loans
    (M, "applyForLoan",                      "-OAA--A---"),
    (M, "updateLoanApplication",             "-OAA--A---"),
    (M, "submitLoanApplication",             "-OAA--A---"),
    (M, "startLoanReview",                   "---A--A---"),
    (M, "decideLoan",                        "---A--A---"),
    (M, "rejectLoan",                        "---A--A---"),
    (M, "disburseLoan",                      "---A--A---"),
    (M, "recordLoanRepayment",               "---A--A---"),
    (M, "repayLoanEarly",                    "---A--A---"),
    (M, "assessLoanArrears",                 "---A--A---"),
    // -- insurance
    (M, "requestInsuranceQuote",             "-O--A-A---"),
    (M, "selectInsuranceOffer",              "-O--A-A---"),
    (M, "payPolicyPremium",                  "---AA-A---"),
    (M, "cancelPolicy",                      "----A-A---"),
    (M, "expirePolicy",                      "----A-A---"),
    (M, "fileInsuranceClaim",                "-O--A-A---"),
    (M, "startInsuranceClaimReview",         "----A-A---"),
    (M, "approveInsuranceClaim",             "----A-A---"),
    (M, "rejectInsuranceClaim",              "----A-A---"),
    (M, "payInsuranceClaim",                 "---A--A---"),
    // -- workshop
    (M, "bookService",                       "-O---AA---"),
    (M, "rescheduleBooking",                 "-O---AA---"),
    (M, "cancelBooking",                     "-O---AA---"),
    (M, "startBooking",                      "-----AA---"),
    (M, "completeBooking",                   "-----AA---"),
    (M, "markBookingNoShow",                 "-----AA---"),
    // -- signing in and accounts
    (M, "login",                             "AAAAAAAAAA"),
    (M, "refreshSession",                    "AAAAAAAAAA"),
    (M, "logout",                            "-AAAAAAAA-"),
    (M, "changePassword",                    "-AAAAAAAA-"),
    (M, "createAccount",                     "------A---"),
    (M, "grantRole",                         "------A---"),
    (M, "revokeRole",                        "------A---"),
    (M, "disableAccount",                    "------A---"),
    (M, "setAccountPassword",                "------A---"),
    (M, "issuePartnerApiKey",                "------A---"),
    (M, "revokePartnerApiKey",               "------A---"),
];

/// What the matrix says for `root.field`: for the anonymous caller, then per [`COLUMNS`] role.
/// `None` when the field has no row (then everyone is refused).
pub fn row(root: Root, field: &str) -> Option<(Access, [Access; 9])> {
    let (_, _, cells) = MATRIX
        .iter()
        .find(|(r, name, _)| *r == root && *name == field)?;
    let cells = cells.as_bytes();
    let mut roles = [Access::Denied; 9];
    for (i, access) in roles.iter_mut().enumerate() {
        *access = Access::from_char(*cells.get(i + 1)?);
    }
    Some((Access::from_char(cells[0]), roles))
}

/// Whether `identity` may run `root.field` (own-record rules apply inside).
pub fn allows(identity: &Identity, root: Root, field: &str) -> bool {
    let Some((anonymous, roles)) = row(root, field) else {
        return false;
    };
    if anonymous != Access::Denied {
        return true;
    }
    COLUMNS
        .iter()
        .zip(roles)
        .any(|(role, access)| access != Access::Denied && identity.has(*role))
}

/// Who may introspect the schema (`__schema`, `__type`); GraphiQL needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Introspection {
    /// Signed-in staff only (the default).
    Staff,
    /// Everyone, anonymous callers included.
    Everyone,
    /// Nobody.
    Off,
}

impl Introspection {
    pub fn allows(self, identity: &Identity) -> bool {
        match self {
            Introspection::Staff => identity.is_staff(),
            Introspection::Everyone => true,
            Introspection::Off => false,
        }
    }
}

/// The extension that enforces [`MATRIX`] (see the module docs).
pub struct Enforce {
    pub introspection: Introspection,
}

impl ExtensionFactory for Enforce {
    fn create(&self) -> std::sync::Arc<dyn Extension> {
        std::sync::Arc::new(EnforceOne {
            introspection: self.introspection,
        })
    }
}

struct EnforceOne {
    introspection: Introspection,
}

fn refusal(identity: &Identity, what: &str) -> async_graphql::ServerError {
    let (code, message) = if identity.is_anonymous() {
        (codes::UNAUTHENTICATED, format!("sign in to use {what}"))
    } else {
        (
            codes::FORBIDDEN,
            format!(
                "none of your roles ({}) may use {what}",
                identity.actor_role()
            ),
        )
    };
    async_graphql::Error::new(message)
        .extend_with(|_, ext| ext.set("code", code))
        .into_server_error(Default::default())
}

#[async_graphql::async_trait::async_trait]
impl Extension for EnforceOne {
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let root = match info.parent_type {
            "QueryRoot" => Root::Query,
            "MutationRoot" => Root::Mutation,
            // Below the root: the row rules of `queries::access` apply.
            _ => return next.run(ctx, info).await,
        };
        let anonymous = Identity::anonymous();
        let identity = ctx.data_opt::<Identity>().unwrap_or(&anonymous);
        let allowed = if info.name.starts_with("__") {
            self.introspection.allows(identity)
        } else {
            allows(identity, root, info.name)
        };
        if !allowed {
            let mut error = refusal(identity, info.name);
            error.path = info
                .path_node
                .to_string_vec()
                .into_iter()
                .map(async_graphql::PathSegment::Field)
                .collect();
            return Err(error);
        }
        next.run(ctx, info).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_has_a_cell_for_anonymous_and_each_role_and_appears_once() {
        let mut seen = std::collections::BTreeSet::new();
        for (root, name, cells) in MATRIX {
            assert_eq!(cells.len(), 1 + COLUMNS.len(), "{name}");
            assert!(
                cells.bytes().all(|c| matches!(c, b'A' | b'O' | b'-')),
                "{name}"
            );
            assert!(seen.insert((root.type_name(), *name)), "{name} twice");
        }
    }

    #[test]
    fn an_operation_without_a_row_is_refused_to_everyone() {
        let admin = Identity {
            principal: queries::access::Principal::Anonymous,
            roles: Role::ALL.into_iter().collect(),
        };
        assert!(!allows(&admin, Root::Query, "somethingNew"));
        assert!(allows(&admin, Root::Query, "events"));
        assert!(!allows(&Identity::anonymous(), Root::Query, "events"));
        assert!(allows(&Identity::anonymous(), Root::Mutation, "login"));
    }
}
