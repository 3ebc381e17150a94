//! The double-entry ledger over HTTP: a car paid partly by card and partly by a loan, handed over,
//! an instalment repaid, a policy premium collected and a claim paid out for the insurer — the trial balance agrees, each account
//! holds what the postings say, and the customer's statement shows the customer's lines.

use std::str::FromStr;

use chrono::Duration;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::helpers::*;

const CAR: &str = "0193a4b0-0000-7000-8000-000000000f01";
const ANNA: &str = "0193a4b0-0000-7000-8000-000000000f02";
const ORDER: &str = "0193a4b0-0000-7000-8000-000000000f03";
const LOAN: &str = "0193a4b0-0000-7000-8000-000000000f04";
const DEPOSIT: &str = "0193a4b0-0000-7000-8000-000000000f05";
const KASKO: &str = "0193a4b0-0000-7000-8000-000000000f06";
const STRANGER: &str = "0193a4b0-0000-7000-8000-000000000f07";
const CLAIM: &str = "0193a4b0-0000-7000-8000-000000000f08";

fn dec(value: &Value) -> Decimal {
    Decimal::from_str(
        value
            .as_str()
            .unwrap_or_else(|| panic!("not a decimal: {value}")),
    )
    .unwrap()
}

/// The balance (on its normal side) of `code` in an `accountBalances`/`trialBalance` row list.
fn balance(rows: &Value, code: &str) -> Decimal {
    rows.as_array()
        .unwrap()
        .iter()
        .find(|row| row["account"]["code"] == code)
        .map(|row| dec(&row["balance"]["amount"]))
        .unwrap_or_default()
}

#[tokio::test]
async fn a_sale_on_card_and_credit_a_repayment_and_a_premium_balance_the_books() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    let today = business_today();

    app.ok(
        STOCK_VEHICLE,
        json!({ "input": vehicle_input(CAR, "XTA210990Y2766390", "Vesta", "1500000.00") }),
    )
    .await;
    app.ok(REGISTER_CUSTOMER, json!({ "input": customer_input(ANNA) }))
        .await;
    app.ok(
        REGISTER_CUSTOMER,
        json!({ "input": customer_input(STRANGER) }),
    )
    .await;
    app.ok(
        DRAFT_ORDER,
        json!({ "input": { "id": ORDER, "customerId": ANNA, "vehicleId": CAR } }),
    )
    .await;
    app.ok(CONFIRM_ORDER, json!({ "id": ORDER })).await;

    // 300 000.00 by card.
    app.ok(
        "mutation($id: UUID!, $order: UUID!) {
           initiatePayment(idempotencyKey: \"f05-init\", input: { id: $id, orderId: $order,
             amount: { amount: \"300000.00\" }, method: CARD, cardLast4: \"4242\" }) { position }
           startPaymentProcessing(id: $id, gatewayTransactionId: \"gw-f05\", idempotencyKey: \"f05-gw\") { position }
           completePayment(id: $id, idempotencyKey: \"f05-done\") { position } }",
        json!({ "id": DEPOSIT, "order": ORDER }),
    )
    .await;

    // 1 200 000.00 by a car loan, disbursed to the order.
    app.ok(
        "mutation($id: UUID!, $order: UUID!) { applyForLoan(input: { id: $id, orderId: $order,
            downPayment: { amount: \"300000.00\" }, loanType: CAR_LOAN, termMonths: 36,
            employmentStatus: EMPLOYED, monthlyIncome: { amount: \"200000.00\" }, creditScore: 780 }) {
            loan { status } } }",
        json!({ "id": LOAN, "order": ORDER }),
    )
    .await;
    let first_due = (today + Duration::days(40)).format("%Y-%m-%d").to_string();
    let decided = app
        .ok(
            "mutation($id: UUID!, $due: Date!) {
               submitLoanApplication(id: $id) { loan { status } }
               startLoanReview(id: $id) { loan { status } }
               decideLoan(id: $id, input: { firstDueDate: $due, scheduleKind: ANNUITY }) {
                 loan { status schedule { number principal { amount } interest { amount } total { amount } } } }
               disburseLoan(id: $id, idempotencyKey: \"f04-disburse\") { loan { status } } }",
            json!({ "id": LOAN, "due": first_due }),
        )
        .await;
    assert_eq!(decided["disburseLoan"]["loan"]["status"], "ACTIVE");
    let first = decided["decideLoan"]["loan"]["schedule"][0].clone();
    let (principal, interest, instalment) = (
        dec(&first["principal"]["amount"]),
        dec(&first["interest"]["amount"]),
        dec(&first["total"]["amount"]),
    );
    assert!(interest > Decimal::ZERO);

    // Handed over, then the first instalment repaid.
    app.ok(
        "mutation($id: UUID!) { handOverOrder(id: $id, idempotencyKey: \"f03-handover\") { order { status } } }",
        json!({ "id": ORDER }),
    )
    .await;
    app.ok(
        "mutation($id: UUID!, $amount: Decimal!) {
           recordLoanRepayment(id: $id, amount: { amount: $amount }, idempotencyKey: \"f04-repay-1\") { loan { status } } }",
        json!({ "id": LOAN, "amount": instalment.to_string() }),
    )
    .await;

    // A KASKO policy from SEVER, its premium collected.
    app.ok(
        "mutation($id: UUID!, $customer: UUID!, $vehicle: UUID!) {
           requestInsuranceQuote(input: { id: $id, product: KASKO, customerId: $customer, vehicleId: $vehicle,
             driver: { age: 35, drivingExperienceYears: 12, region: MOSCOW, bonusMalusClass: 5 },
             enginePowerHp: 120, deductible: { amount: \"15000.00\" } }) { quote { unansweredInsurers } } }",
        json!({ "id": KASKO, "customer": ANNA, "vehicle": CAR }),
    )
    .await;
    let issued = app
        .ok(
            "mutation($id: UUID!) { selectInsuranceOffer(quoteId: $id, insurer: \"SEVER\") {
               policy { premium { amount } commission { amount } } } }",
            json!({ "id": KASKO }),
        )
        .await["selectInsuranceOffer"]["policy"]
        .clone();
    let premium = dec(&issued["premium"]["amount"]);
    let commission = dec(&issued["commission"]["amount"]);
    app.ok(
        "mutation($id: UUID!, $amount: Decimal!) {
           payPolicyPremium(id: $id, amount: { amount: $amount }, idempotencyKey: \"f06-premium\") { position } }",
        json!({ "id": KASKO, "amount": premium.to_string() }),
    )
    .await;

    // A claim on it: approved and paid out by the dealership for the insurer.
    app.ok(
        "mutation($p: UUID!, $c: UUID!, $on: Date!) {
           fileInsuranceClaim(policyId: $p, input: { id: $c, incidentDate: $on, description: \"dented wing\",
             claimedAmount: { amount: \"30000.00\" } }, idempotencyKey: \"f08-claim\") { position }
           startInsuranceClaimReview(policyId: $p, claimId: $c) { position }
           approveInsuranceClaim(policyId: $p, claimId: $c, amount: { amount: \"25000.00\" }) { position }
           payInsuranceClaim(policyId: $p, claimId: $c, idempotencyKey: \"f08-pay\") { claim { status } } }",
        json!({ "p": KASKO, "c": CLAIM, "on": today.format("%Y-%m-%d").to_string() }),
    )
    .await;

    // The trial balance agrees, and every account holds what its postings say.
    let trial = app
        .ok(
            "{ trialBalance { balanced reflectsPosition totals { debits { amount currency } credits { amount } }
                rows { account { code accountType normalSide } debits { amount } credits { amount } balance { amount } } } }",
            json!({}),
        )
        .await["trialBalance"]
        .clone();
    assert_eq!(trial["balanced"], true, "{trial:#}");
    let totals = &trial["totals"][0];
    assert_eq!(totals["debits"]["amount"], totals["credits"]["amount"]);
    assert_eq!(totals["debits"]["currency"], "RUB");
    assert!(trial["reflectsPosition"].as_i64().unwrap() >= app.event_count().await);
    let rows = &trial["rows"];
    let d = |text: &str| Decimal::from_str(text).unwrap();
    assert_eq!(
        balance(rows, "1000"),
        d("300000.00") + instalment + premium - d("25000.00")
    );
    assert_eq!(balance(rows, "1200"), d("1200000.00") - principal);
    assert_eq!(
        balance(rows, "2100"),
        Decimal::ZERO,
        "advances used up at handover"
    );
    assert_eq!(balance(rows, "4000"), d("1500000.00"));
    assert_eq!(balance(rows, "4010"), Decimal::ZERO);
    assert_eq!(balance(rows, "4100"), interest);
    assert_eq!(balance(rows, "4300"), commission);
    assert_eq!(
        balance(rows, "2200-SEVER"),
        premium - commission - d("25000.00"),
        "owed to the insurer: premium less commission less the claim paid for it"
    );
    assert_eq!(balance(rows, "2400"), Decimal::ZERO, "the claim is paid");
    let sever = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["account"]["code"] == "2200-SEVER")
        .unwrap();
    assert_eq!(sever["account"]["accountType"], "LIABILITY");
    assert_eq!(sever["account"]["normalSide"], "CREDIT");

    // Nothing is dated after today: the balances as of today are the same; before today, nothing.
    let before = (today - Duration::days(2)).format("%Y-%m-%d").to_string();
    let earlier = app
        .ok(
            "query($asOf: Date!) { accountBalances(asOf: $asOf) { rows { account { code } } reflectsPosition } }",
            json!({ "asOf": before }),
        )
        .await;
    assert_eq!(earlier["accountBalances"]["rows"], json!([]));

    // The chart names the fixed accounts and the insurer's sub-account.
    let chart = app
        .ok(
            "{ ledgerAccounts { accounts { code name } reflectsPosition } }",
            json!({}),
        )
        .await;
    let codes: Vec<&str> = chart["ledgerAccounts"]["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|account| account["code"].as_str().unwrap())
        .collect();
    for code in [
        "1000",
        "1100",
        "1200",
        "2100",
        "2200-SEVER",
        "2400",
        "4000",
        "4010",
        "4100",
        "4200",
        "4300",
    ] {
        assert!(codes.contains(&code), "{code} in {codes:?}");
    }

    // The journal: one entry per money event, each balanced, filtered by account.
    let journal = app
        .ok(
            "{ journal(first: 50) { totalCount reflectsPosition edges { node { eventType aggregateType
                 lines { accountCode debit { amount } credit { amount } } } } } }",
            json!({}),
        )
        .await["journal"]
        .clone();
    let kinds: Vec<&str> = journal["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| edge["node"]["eventType"].as_str().unwrap())
        .collect();
    let sources: Vec<&str> = journal["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| edge["node"]["aggregateType"].as_str().unwrap())
        .collect();
    assert_eq!(
        sources,
        [
            "PAYMENT", "LOAN", "ORDER", "LOAN", "POLICY", "POLICY", "POLICY"
        ]
    );
    assert_eq!(
        kinds,
        [
            "PaymentCompleted",
            "LoanDisbursed",
            "OrderHandedOver",
            "LoanRepaymentRecorded",
            "PolicyPremiumPaid",
            "ClaimApproved",
            "ClaimPaid"
        ]
    );
    for edge in journal["edges"].as_array().unwrap() {
        let lines = edge["node"]["lines"].as_array().unwrap();
        let debits: Decimal = lines.iter().map(|l| dec(&l["debit"]["amount"])).sum();
        let credits: Decimal = lines.iter().map(|l| dec(&l["credit"]["amount"])).sum();
        assert_eq!(debits, credits, "{edge:#}");
    }
    let on_interest = app
        .ok("{ journal(account: \"4100\") { totalCount } }", json!({}))
        .await;
    assert_eq!(on_interest["journal"]["totalCount"], 1);
    let unknown = app
        .graphql("{ journal(account: \"9999\") { totalCount } }", json!({}))
        .await;
    assert_eq!(error_codes(&unknown), ["NOT_FOUND"]);

    // Anna's statement: her advance, the loan, the handover and the repayment, running.
    let statement = app
        .ok(
            "query($id: UUID!) { customerStatement(customerId: $id) { customerId reflectsPosition
                closingBalances { amount }
                lines { accountCode debit { amount } credit { amount } balance { amount } } } }",
            json!({ "id": ANNA }),
        )
        .await["customerStatement"]
        .clone();
    let lines: Vec<(String, Decimal, Decimal, Decimal)> = statement["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| {
            (
                line["accountCode"].as_str().unwrap().to_owned(),
                dec(&line["debit"]["amount"]),
                dec(&line["credit"]["amount"]),
                dec(&line["balance"]["amount"]),
            )
        })
        .collect();
    let z = Decimal::ZERO;
    assert_eq!(
        lines,
        vec![
            ("2100".into(), z, d("300000.00"), d("-300000.00")),
            ("1200".into(), d("1200000.00"), z, d("900000.00")),
            ("2100".into(), z, d("1200000.00"), d("-300000.00")),
            ("2100".into(), d("1500000.00"), z, d("1200000.00")),
            ("1200".into(), z, principal, d("1200000.00") - principal),
        ]
    );
    assert_eq!(
        dec(&statement["closingBalances"][0]["amount"]),
        d("1200000.00") - principal
    );
    let stranger = app
        .ok(
            "query($id: UUID!) { customerStatement(customerId: $id) { lines { accountCode } } }",
            json!({ "id": STRANGER }),
        )
        .await;
    assert_eq!(stranger["customerStatement"]["lines"], json!([]));
    let nobody = app
        .graphql(
            "{ customerStatement(customerId: \"0193a4b0-0000-7000-8000-0000000000ff\") { lines { accountCode } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_codes(&nobody), ["NOT_FOUND"]);
    app.stop().await;

    // A rebuilt ledger is identical to the live one.
    let ledger = autosalon::Ledger::open(&database_url(&dir.path().join("autosalon.db")))
        .await
        .unwrap();
    let live =
        crate::scenario::projector_rows(ledger.db.pool(), &projections::ledger::Ledger).await;
    assert!(live.values().map(Vec::len).sum::<usize>() > 20, "{live:?}");
    ledger
        .projections
        .rebuild("ledger", |_, _| {})
        .await
        .unwrap();
    assert_eq!(
        crate::scenario::projector_rows(ledger.db.pool(), &projections::ledger::Ledger).await,
        live
    );
}
