//! The whole dealership over HTTP, as one customer meets it: a car bought partly on credit, insured
//! (OSAGO and KASKO), booked for its first service, and a claim filed and paid — with keyed retries of
//! every money-moving step, a race for one mechanic's slot, and bad input refused with nothing written.

use chrono::Duration;
use serde_json::{Value, json};

use crate::helpers::*;

const CAR: &str = "0193a4b0-0000-7000-8000-000000000e01";
const IVAN: &str = "0193a4b0-0000-7000-8000-000000000e02";
const ORDER: &str = "0193a4b0-0000-7000-8000-000000000e03";
const LOAN: &str = "0193a4b0-0000-7000-8000-000000000e04";
const DEPOSIT: &str = "0193a4b0-0000-7000-8000-000000000e05";
const OSAGO: &str = "0193a4b0-0000-7000-8000-000000000e06";
const KASKO: &str = "0193a4b0-0000-7000-8000-000000000e07";
const CLAIM: &str = "0193a4b0-0000-7000-8000-000000000e08";
const BOOKING: &str = "0193a4b0-0000-7000-8000-000000000e09";
const RIVAL_BOOKING: &str = "0193a4b0-0000-7000-8000-000000000e0a";

/// Runs a keyed mutation twice: the second answer must be a replay of the first, writing nothing.
async fn once(app: &TestApp, query: &str, variables: Value, field: &str) -> Value {
    let first = app.ok(query, variables.clone()).await[field].clone();
    assert_eq!(first["replayed"], false, "{field}: {first}");
    let events = app.event_count().await;
    let retry = app.ok(query, variables).await[field].clone();
    assert_eq!(retry["replayed"], true, "{field} retry: {retry}");
    assert_eq!(retry["position"], first["position"]);
    assert_eq!(
        app.event_count().await,
        events,
        "{field}: a retry writes nothing"
    );
    first
}

/// Sends `query`, expects exactly `code`, and checks the log did not grow.
async fn refused(app: &TestApp, query: &str, variables: Value, code: &str) {
    let before = app.event_count().await;
    let response = app.graphql(query, variables).await;
    assert_eq!(
        error_codes(&response),
        vec![code.to_string()],
        "{response:#}"
    );
    assert_eq!(
        app.event_count().await,
        before,
        "a refusal writes nothing: {response:#}"
    );
}

const PAY_BY_CARD: &str = "mutation($id: UUID!, $order: UUID!, $amount: Decimal!, $last4: String!, $key: String!) {
  initiatePayment(idempotencyKey: $key, input: { id: $id, orderId: $order, amount: { amount: $amount }, method: CARD, cardLast4: $last4 }) {
    position replayed payment { status } } }";
const START_PROCESSING: &str = "mutation($id: UUID!, $key: String!) {
  startPaymentProcessing(id: $id, gatewayTransactionId: \"gw-7781\", idempotencyKey: $key) { position replayed payment { status } } }";
const COMPLETE_PAYMENT: &str = "mutation($id: UUID!, $key: String!) {
  completePayment(id: $id, idempotencyKey: $key) { position replayed payment { status order { status paidTotal { amount } } } } }";
const DISBURSE: &str = "mutation($id: UUID!) {
  disburseLoan(id: $id, idempotencyKey: \"disburse-e04\") { position replayed loan { status } } }";
const HAND_OVER: &str = "mutation($id: UUID!) {
  handOverOrder(id: $id, idempotencyKey: \"handover-e03\") { position replayed order { status vehicle { status } } } }";
const QUOTE: &str = "mutation($id: UUID!, $product: InsuranceProduct!, $deductible: MoneyInput) {
  requestInsuranceQuote(input: {
    id: $id, product: $product, customerId: \"0193a4b0-0000-7000-8000-000000000e02\",
    vehicleId: \"0193a4b0-0000-7000-8000-000000000e01\",
    driver: { age: 41, drivingExperienceYears: 20, region: MOSCOW, bonusMalusClass: 5 },
    enginePowerHp: 150, deductible: $deductible
  }) { quote { offers { insurer premium { amount } coverage { amount } deductible { amount } } unansweredInsurers } } }";
const SELECT_OFFER: &str = "mutation($id: UUID!) {
  selectInsuranceOffer(quoteId: $id, insurer: \"SEVER\") { policy { policyNumber status premium { amount } document signature } } }";
const PAY_PREMIUM: &str = "mutation($id: UUID!, $amount: Decimal!, $key: String!) {
  payPolicyPremium(id: $id, amount: { amount: $amount }, idempotencyKey: $key) { position replayed policy { status } } }";
const BOOK: &str = "mutation($id: UUID!, $start: DateTime!, $end: DateTime!) {
  bookService(input: { id: $id, customerId: \"0193a4b0-0000-7000-8000-000000000e02\",
    vehicleId: \"0193a4b0-0000-7000-8000-000000000e01\", mechanicId: \"M-007\", kind: MAINTENANCE,
    start: $start, end: $end, notes: \"first service\" }) { booking { id status mechanicId } } }";

#[tokio::test]
async fn a_customer_buys_on_credit_insures_services_and_claims() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    let today = business_today();

    // The car, the customer, a confirmed order.
    let car = vehicle_input(CAR, "XTA210990Y2766389", "Vesta", "1500000.00");
    app.ok(STOCK_VEHICLE, json!({ "input": car })).await;
    app.ok(REGISTER_CUSTOMER, json!({ "input": customer_input(IVAN) }))
        .await;
    app.ok(
        DRAFT_ORDER,
        json!({ "input": { "id": ORDER, "customerId": IVAN, "vehicleId": CAR } }),
    )
    .await;
    app.ok(CONFIRM_ORDER, json!({ "id": ORDER })).await;

    // A car loan for 1 200 000.00 of it.
    let applied = app
        .ok(
            "mutation($id: UUID!, $order: UUID!) { applyForLoan(input: { id: $id, orderId: $order,
                downPayment: { amount: \"300000.00\" }, loanType: CAR_LOAN, termMonths: 36,
                employmentStatus: EMPLOYED, monthlyIncome: { amount: \"200000.00\" }, creditScore: 780 }) {
                loan { status loanAmount { amount } } } }",
            json!({ "id": LOAN, "order": ORDER }),
        )
        .await;
    assert_eq!(
        applied["applyForLoan"]["loan"]["loanAmount"]["amount"],
        "1200000.00"
    );
    app.ok(
        "mutation($id: UUID!) { submitLoanApplication(id: $id) { loan { status } }
                                startLoanReview(id: $id) { loan { status } } }",
        json!({ "id": LOAN }),
    )
    .await;
    let first_due = (today + Duration::days(40)).format("%Y-%m-%d").to_string();
    let decided = app
        .ok(
            "mutation($id: UUID!, $due: Date!) { decideLoan(id: $id, input: { firstDueDate: $due, scheduleKind: ANNUITY }) {
                loan { status schedule { principal { amount } } } } }",
            json!({ "id": LOAN, "due": first_due }),
        )
        .await;
    assert_eq!(decided["decideLoan"]["loan"]["status"], "APPROVED");
    assert_eq!(
        decided["decideLoan"]["loan"]["schedule"]
            .as_array()
            .unwrap()
            .len(),
        36
    );

    // The down payment by card, each step retried with its key.
    let deposit = json!({ "id": DEPOSIT, "order": ORDER, "amount": "300000.00", "last4": "4242", "key": "deposit-init" });
    once(&app, PAY_BY_CARD, deposit, "initiatePayment").await;
    once(
        &app,
        START_PROCESSING,
        json!({ "id": DEPOSIT, "key": "deposit-gw" }),
        "startPaymentProcessing",
    )
    .await;
    let paid = once(
        &app,
        COMPLETE_PAYMENT,
        json!({ "id": DEPOSIT, "key": "deposit-done" }),
        "completePayment",
    )
    .await;
    assert_eq!(paid["payment"]["order"]["status"], "CONFIRMED");
    assert_eq!(paid["payment"]["order"]["paidTotal"]["amount"], "300000.00");
    // More back than was paid is refused (after handover every refund is).
    refused(
        &app,
        "mutation($id: UUID!) { refundPayment(idempotencyKey: \"refund-too-much\", input: { paymentId: $id,
            amount: { amount: \"300000.01\" }, reason: \"mistake\" }) { position } }",
        json!({ "id": DEPOSIT }),
        "REFUND_EXCEEDS_PAID",
    )
    .await;

    // The loan pays the rest: the order is paid, then handed over and the car sold.
    let disbursed = once(&app, DISBURSE, json!({ "id": LOAN }), "disburseLoan").await;
    assert_eq!(disbursed["loan"]["status"], "ACTIVE");
    let order = app
        .ok(
            "query($id: UUID!) { order(id: $id) { status balanceDue { amount } payments { method amount { amount } status } } }",
            json!({ "id": ORDER }),
        )
        .await;
    assert_eq!(order["order"]["status"], "PAID");
    assert_eq!(order["order"]["balanceDue"]["amount"], "0.00");
    let mut methods: Vec<(String, String)> = order["order"]["payments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["method"].as_str().unwrap().to_string(),
                p["amount"]["amount"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    methods.sort();
    assert_eq!(
        methods,
        vec![
            ("CARD".into(), "300000.00".into()),
            ("CREDIT".into(), "1200000.00".into())
        ]
    );
    let handed = once(&app, HAND_OVER, json!({ "id": ORDER }), "handOverOrder").await;
    assert_eq!(
        handed["order"],
        json!({ "status": "COMPLETED", "vehicle": { "status": "SOLD" } })
    );

    // Insurance: OSAGO and KASKO from the partner insurers, both issued, signed and paid.
    let osago = app
        .ok(QUOTE, json!({ "id": OSAGO, "product": "OSAGO" }))
        .await;
    assert_eq!(
        osago["requestInsuranceQuote"]["quote"]["offers"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    let kasko = app
        .ok(
            QUOTE,
            json!({ "id": KASKO, "product": "KASKO", "deductible": { "amount": "15000.00" } }),
        )
        .await;
    assert_eq!(
        kasko["requestInsuranceQuote"]["quote"]["offers"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    for (policy, key) in [(OSAGO, "premium-osago"), (KASKO, "premium-kasko")] {
        let issued =
            app.ok(SELECT_OFFER, json!({ "id": policy })).await["selectInsuranceOffer"]["policy"]
                .clone();
        assert_eq!(issued["status"], "ISSUED");
        let verified = app
            .ok(
                "query($d: String!, $s: String!) { verifyPolicy(document: $d, signature: $s) { valid policyNumber } }",
                json!({ "d": issued["document"], "s": issued["signature"] }),
            )
            .await;
        assert_eq!(verified["verifyPolicy"]["valid"], true);
        assert_eq!(
            verified["verifyPolicy"]["policyNumber"],
            issued["policyNumber"]
        );
        let premium = issued["premium"]["amount"].as_str().unwrap();
        let paid = once(
            &app,
            PAY_PREMIUM,
            json!({ "id": policy, "amount": premium, "key": key }),
            "payPolicyPremium",
        )
        .await;
        assert_eq!(paid["policy"]["status"], "ACTIVE");
    }

    // The first service, a month ahead, 10:00–12:00 Moscow time; a rival booking for the same
    // mechanic and an overlapping slot races it and loses.
    let day = (today + Duration::days(30)).format("%Y-%m-%d").to_string();
    let slot = |from: &str, to: &str| (format!("{day}T{from}:00Z"), format!("{day}T{to}:00Z"));
    let (start, end) = slot("07:00", "09:00");
    let (rival_start, rival_end) = slot("08:00", "09:30");
    let (a, b) = tokio::join!(
        app.graphql(BOOK, json!({ "id": BOOKING, "start": start, "end": end })),
        app.graphql(
            BOOK,
            json!({ "id": RIVAL_BOOKING, "start": rival_start, "end": rival_end })
        )
    );
    // Either request may win the race; the winner's booking is the one that exists.
    let booked = if error_codes(&a).is_empty() {
        BOOKING
    } else {
        RIVAL_BOOKING
    };
    let mut codes = [error_codes(&a), error_codes(&b)];
    codes.sort();
    assert_eq!(
        codes,
        [vec![], vec!["MECHANIC_BUSY".to_string()]],
        "{a:#} {b:#}"
    );
    let schedule = app
        .ok("query($day: String!) { mechanicSchedule(mechanicId: \"M-007\", date: $day) { status } }", json!({ "day": day }))
        .await;
    assert_eq!(schedule["mechanicSchedule"].as_array().unwrap().len(), 1);

    // A claim on the KASKO policy: filed, reviewed, approved, paid once.
    let today_text = today.format("%Y-%m-%d").to_string();
    app.ok(
        "mutation($p: UUID!, $c: UUID!, $on: Date!) {
           fileInsuranceClaim(policyId: $p, input: { id: $c, incidentDate: $on, description: \"scratched door in a car park\",
             claimedAmount: { amount: \"60000.00\" } }, idempotencyKey: \"claim-e08\") { claim { status } }
           startInsuranceClaimReview(policyId: $p, claimId: $c) { claim { status } }
           approveInsuranceClaim(policyId: $p, claimId: $c, amount: { amount: \"45000.00\" }) { claim { status } } }",
        json!({ "p": KASKO, "c": CLAIM, "on": today_text }),
    )
    .await;
    let claim_paid = once(
        &app,
        "mutation($p: UUID!, $c: UUID!) { payInsuranceClaim(policyId: $p, claimId: $c, idempotencyKey: \"pay-claim-e08\") {
            position replayed claim { status } policy { claimsPaid { amount } } } }",
        json!({ "p": KASKO, "c": CLAIM }),
        "payInsuranceClaim",
    )
    .await;
    assert_eq!(claim_paid["claim"]["status"], "PAID");
    assert_eq!(claim_paid["policy"]["claimsPaid"]["amount"], "45000.00");

    // Bad input in every area: refused with its code, nothing written.
    refused(
        &app,
        PAY_BY_CARD,
        json!({ "id": "0193a4b0-0000-7000-8000-000000000e10", "order": ORDER, "amount": "1.00",
                "last4": "4111 1111 1111 1111", "key": "card-number" }),
        "CARD_NUMBER_REFUSED",
    )
    .await;
    refused(
        &app,
        "mutation { applyForLoan(input: { orderId: \"0193a4b0-0000-7000-8000-000000000e03\", downPayment: { amount: \"300000.00\" },
            loanType: CAR_LOAN, termMonths: 36, employmentStatus: EMPLOYED, monthlyIncome: { amount: \"200000.00\" },
            creditScore: 200 }) { loan { status } } }",
        json!({}),
        "VALIDATION",
    )
    .await;
    let (late_start, late_end) = slot("18:00", "19:00"); // 21:00–22:00 in Moscow
    refused(
        &app,
        BOOK,
        json!({ "id": "0193a4b0-0000-7000-8000-000000000e11", "start": late_start, "end": late_end }),
        "OUTSIDE_WORKING_HOURS",
    )
    .await;
    refused(
        &app,
        "mutation($p: UUID!, $on: Date!) { fileInsuranceClaim(policyId: $p, input: { incidentDate: $on,
            description: \"total loss\", claimedAmount: { amount: \"99000000.00\" } }, idempotencyKey: \"claim-too-big\") { claim { status } } }",
        json!({ "p": KASKO, "on": today_text }),
        "CLAIM_EXCEEDS_COVERAGE",
    )
    .await;
    refused(
        &app,
        "mutation { payPolicyPremium(id: \"0193a4b0-0000-7000-8000-000000000e07\", amount: { amount: 100.5 },
            idempotencyKey: \"float\") { position } }",
        json!({}),
        "VALIDATION",
    )
    .await;

    // Every aggregate's story is readable by an auditor.
    for (kind, id) in [
        ("ORDER", ORDER),
        ("LOAN", LOAN),
        ("PAYMENT", DEPOSIT),
        ("POLICY", KASKO),
        ("BOOKING", booked),
    ] {
        let stream = app
            .ok(
                "query($t: AggregateType!, $id: UUID!) { aggregateEvents(aggregateType: $t, id: $id) { totalCount } }",
                json!({ "t": kind, "id": id }),
            )
            .await;
        assert!(
            stream["aggregateEvents"]["totalCount"].as_i64().unwrap() >= 1,
            "{kind} has a stream"
        );
    }
    app.stop().await;
}
