//! Reports for analysts: a small dealership day driven over HTTP, the `reports` fact tables and the
//! report queries checked against totals computed directly from the events in the log, and the
//! `reports` and `catalog` read models rebuilt from position 0 equal to the live ones.

use std::collections::BTreeMap;

use aggregates::loan::LoanEvent;
use aggregates::order::OrderEvent;
use aggregates::payment::{PaymentEvent, PaymentStatus};
use aggregates::policy::PolicyEvent;
use aggregates::vehicle::VehicleEvent;
use chrono::{Duration, Utc};
use eventstore::{EventLog, RecordedEvent};
use serde_json::{Value, json};

use crate::helpers::*;

const LADA: &str = "0193a4b0-0000-7000-8000-00000000f001";
const VESTA: &str = "0193a4b0-0000-7000-8000-00000000f002";
const HAVAL: &str = "0193a4b0-0000-7000-8000-00000000f003";
const SPARE: &str = "0193a4b0-0000-7000-8000-00000000f004";
const ANNA: &str = "0193a4b0-0000-7000-8000-00000000f0c1";
const CASH_ORDER: &str = "0193a4b0-0000-7000-8000-00000000f0d1";
const LOAN_ORDER: &str = "0193a4b0-0000-7000-8000-00000000f0d2";
const OPEN_ORDER: &str = "0193a4b0-0000-7000-8000-00000000f0d3";
const LOAN: &str = "0193a4b0-0000-7000-8000-00000000f0e1";
const SECOND_LOAN: &str = "0193a4b0-0000-7000-8000-00000000f0e2";
const SPARE_ORDER: &str = "0193a4b0-0000-7000-8000-00000000f0d4";
const OSAGO: &str = "0193a4b0-0000-7000-8000-00000000f0f1";
const KASKO: &str = "0193a4b0-0000-7000-8000-00000000f0f2";
const CLAIM: &str = "0193a4b0-0000-7000-8000-00000000f0f3";
const BOOKING: &str = "0193a4b0-0000-7000-8000-00000000f0a1";
const CANCELLED_BOOKING: &str = "0193a4b0-0000-7000-8000-00000000f0a2";

fn stock(id: &str, vin: &str, brand: &str, model: &str, amount: &str) -> Value {
    let mut input = vehicle_input(id, vin, model, amount);
    input["brand"] = json!(brand);
    json!({ "input": input })
}

async fn draft(app: &TestApp, order: &str, vehicle: &str, percent: Option<&str>) {
    app.ok(
        DRAFT_ORDER,
        json!({ "input": { "id": order, "customerId": ANNA, "vehicleId": vehicle } }),
    )
    .await;
    if let Some(percent) = percent {
        app.ok(
            "mutation($id: UUID!, $p: Decimal!) { applyOrderDiscount(id: $id, discount: { percent: $p }) { position } }",
            json!({ "id": order, "p": percent }),
        )
        .await;
    }
    app.ok(CONFIRM_ORDER, json!({ "id": order })).await;
}

/// Initiates a payment, starts processing it at the gateway (card and bank transfer), and completes
/// it when asked.
async fn pay(app: &TestApp, id: &str, order: &str, amount: &str, method: &str, complete: bool) {
    let card = (method == "CARD").then_some("4242");
    app.ok(
        "mutation($input: InitiatePaymentInput!, $key: String!) { initiatePayment(input: $input, idempotencyKey: $key) { position } }",
        json!({ "input": { "id": id, "orderId": order, "amount": { "amount": amount }, "method": method, "cardLast4": card },
                "key": format!("init-{id}") }),
    )
    .await;
    if method != "CASH" {
        app.ok(
            "mutation($id: UUID!, $key: String!) { startPaymentProcessing(id: $id, gatewayTransactionId: \"gw\", idempotencyKey: $key) { position } }",
            json!({ "id": id, "key": format!("gw-{id}") }),
        )
        .await;
    }
    if complete {
        app.ok(
            "mutation($id: UUID!, $key: String!) { completePayment(id: $id, idempotencyKey: $key) { position } }",
            json!({ "id": id, "key": format!("done-{id}") }),
        )
        .await;
    }
}

async fn hand_over(app: &TestApp, order: &str) {
    app.ok(
        "mutation($id: UUID!, $key: String!) { handOverOrder(id: $id, idempotencyKey: $key) { order { status } } }",
        json!({ "id": order, "key": format!("hand-{order}") }),
    )
    .await;
}

/// Issues a policy from `insurer`'s offer and pays its premium; returns the premium.
async fn insure(app: &TestApp, id: &str, product: &str, insurer: &str) {
    let deductible = (product == "KASKO").then(|| json!({ "amount": "15000.00" }));
    app.ok(
        "mutation($id: UUID!, $product: InsuranceProduct!, $deductible: MoneyInput, $c: UUID!, $v: UUID!) {
           requestInsuranceQuote(input: { id: $id, product: $product, customerId: $c, vehicleId: $v,
             driver: { age: 41, drivingExperienceYears: 20, region: MOSCOW, bonusMalusClass: 5 },
             enginePowerHp: 150, deductible: $deductible }) { quote { unansweredInsurers } } }",
        json!({ "id": id, "product": product, "deductible": deductible, "c": ANNA, "v": LADA }),
    )
    .await;
    let issued = app
        .ok(
            "mutation($id: UUID!, $insurer: String!) { selectInsuranceOffer(quoteId: $id, insurer: $insurer) {
               policy { premium { amount } } } }",
            json!({ "id": id, "insurer": insurer }),
        )
        .await;
    let premium = issued["selectInsuranceOffer"]["policy"]["premium"]["amount"].clone();
    app.ok(
        "mutation($id: UUID!, $amount: Decimal!, $key: String!) {
           payPolicyPremium(id: $id, amount: { amount: $amount }, idempotencyKey: $key) { position } }",
        json!({ "id": id, "amount": premium, "key": format!("premium-{id}") }),
    )
    .await;
}

/// The scenario: three sales of two brands (one cash, one financed), payments by every method with a
/// refund, a pending bank transfer and a failed card payment, a loan, two policies from two
/// insurers (one cancelled, one with a paid claim), a booking and a cancelled booking.
async fn scenario(app: &TestApp) {
    app.ok(
        STOCK_VEHICLE,
        stock(LADA, "XTA210990Y2766381", "Lada", "Granta", "900000.00"),
    )
    .await;
    app.ok(
        STOCK_VEHICLE,
        stock(VESTA, "XTA210990Y2766382", "Lada", "Vesta", "1500000.00"),
    )
    .await;
    app.ok(
        STOCK_VEHICLE,
        stock(HAVAL, "XTA210990Y2766383", "Haval", "Jolion", "2400000.00"),
    )
    .await;
    app.ok(
        STOCK_VEHICLE,
        stock(SPARE, "XTA210990Y2766384", "Haval", "Jolion", "2500000.00"),
    )
    .await;
    app.ok(
        "mutation($id: UUID!) { repriceVehicle(id: $id, price: { amount: \"2450000.00\" }) { position } }",
        json!({ "id": SPARE }),
    )
    .await;
    app.ok(REGISTER_CUSTOMER, json!({ "input": customer_input(ANNA) }))
        .await;

    // Granta: 10% off, paid cash and by card, handed over.
    draft(app, CASH_ORDER, LADA, Some("10")).await;
    pay(
        app,
        "0193a4b0-0000-7000-8000-00000000f101",
        CASH_ORDER,
        "500000.00",
        "CASH",
        true,
    )
    .await;
    pay(
        app,
        "0193a4b0-0000-7000-8000-00000000f102",
        CASH_ORDER,
        "310000.00",
        "CARD",
        true,
    )
    .await;
    hand_over(app, CASH_ORDER).await;

    // Haval: 400 000.00 down by bank transfer, the rest on credit, handed over.
    draft(app, LOAN_ORDER, HAVAL, None).await;
    app.ok(
        "mutation($id: UUID!, $order: UUID!) { applyForLoan(input: { id: $id, orderId: $order,
            downPayment: { amount: \"400000.00\" }, loanType: CAR_LOAN, termMonths: 36,
            employmentStatus: EMPLOYED, monthlyIncome: { amount: \"600000.00\" }, creditScore: 790 }) { position } }",
        json!({ "id": LOAN, "order": LOAN_ORDER }),
    )
    .await;
    let due = (Utc::now() + Duration::days(40))
        .format("%Y-%m-%d")
        .to_string();
    let decided = app.ok(
        "mutation($id: UUID!, $due: Date!) { submitLoanApplication(id: $id) { position }
           startLoanReview(id: $id) { position }
           decideLoan(id: $id, input: { firstDueDate: $due, scheduleKind: ANNUITY }) { loan { status decisionReasons { rule detail } } } }",
        json!({ "id": LOAN, "due": due }),
    )
    .await;
    assert_eq!(
        decided["decideLoan"]["loan"]["status"], "APPROVED",
        "{decided}"
    );
    pay(
        app,
        "0193a4b0-0000-7000-8000-00000000f103",
        LOAN_ORDER,
        "300000.00",
        "BANK_TRANSFER",
        true,
    )
    .await;
    app.ok(
        "mutation($id: UUID!) { disburseLoan(id: $id, idempotencyKey: \"disburse-f0e1\") { loan { status } } }",
        json!({ "id": LOAN }),
    )
    .await;
    let order = app
        .ok(
            "query($id: UUID!) { order(id: $id) { status balanceDue { amount } } }",
            json!({ "id": LOAN_ORDER }),
        )
        .await;
    let balance = order["order"]["balanceDue"]["amount"].as_str().unwrap();
    if balance != "0.00" {
        pay(
            app,
            "0193a4b0-0000-7000-8000-00000000f107",
            LOAN_ORDER,
            balance,
            "CASH",
            true,
        )
        .await;
    }
    hand_over(app, LOAN_ORDER).await;
    // The first instalment paid, then the rest paid off early: the loan is repaid.
    let loan = app
        .ok(
            "query($id: UUID!) { loan(id: $id) { schedule { total { amount } } } }",
            json!({ "id": LOAN }),
        )
        .await;
    app.ok(
        "mutation($id: UUID!, $amount: Decimal!) { recordLoanRepayment(id: $id, amount: { amount: $amount },
            idempotencyKey: \"repay-f0e1\") { position } }",
        json!({ "id": LOAN, "amount": loan["loan"]["schedule"][0]["total"]["amount"] }),
    )
    .await;
    let today = business_today().to_string();
    let payoff = app
        .ok(
            "query($id: UUID!, $on: Date!) { loan(id: $id) { payoff(on: $on) { amount } } }",
            json!({ "id": LOAN, "on": today }),
        )
        .await;
    let paid_off = app
        .ok(
            "mutation($id: UUID!, $amount: Decimal!) { repayLoanEarly(id: $id, idempotencyKey: \"payoff-f0e1\",
                input: { kind: FULL, amount: { amount: $amount } }) { loan { status } } }",
            json!({ "id": LOAN, "amount": payoff["loan"]["payoff"]["amount"] }),
        )
        .await;
    assert_eq!(paid_off["repayLoanEarly"]["loan"]["status"], "COMPLETED");
    // A second loan, on the other Jolion, paid out and still running.
    draft(app, SPARE_ORDER, SPARE, None).await;
    app.ok(
        "mutation($id: UUID!, $order: UUID!) { applyForLoan(input: { id: $id, orderId: $order,
            downPayment: { amount: \"500000.00\" }, loanType: CAR_LOAN, termMonths: 36,
            employmentStatus: EMPLOYED, monthlyIncome: { amount: \"600000.00\" }, creditScore: 790 }) { position } }",
        json!({ "id": SECOND_LOAN, "order": SPARE_ORDER }),
    )
    .await;
    app.ok(
        "mutation($id: UUID!, $due: Date!) { submitLoanApplication(id: $id) { position }
           startLoanReview(id: $id) { position }
           decideLoan(id: $id, input: { firstDueDate: $due, scheduleKind: DIFFERENTIATED }) { loan { status } }
           disburseLoan(id: $id, idempotencyKey: \"disburse-f0e2\") { loan { status } } }",
        json!({ "id": SECOND_LOAN, "due": due }),
    )
    .await;

    // Vesta: 5% off; a cash payment refunded in part, a failed card payment, a pending transfer.
    draft(app, OPEN_ORDER, VESTA, Some("5")).await;
    pay(
        app,
        "0193a4b0-0000-7000-8000-00000000f104",
        OPEN_ORDER,
        "200000.00",
        "CASH",
        true,
    )
    .await;
    app.ok(
        "mutation($id: UUID!) { refundPayment(idempotencyKey: \"refund-f104\", input: { paymentId: $id,
            amount: { amount: \"50000.00\" }, reason: \"changed trim\" }) { position } }",
        json!({ "id": "0193a4b0-0000-7000-8000-00000000f104" }),
    )
    .await;
    pay(
        app,
        "0193a4b0-0000-7000-8000-00000000f105",
        OPEN_ORDER,
        "100000.00",
        "CARD",
        false,
    )
    .await;
    app.ok(
        "mutation($id: UUID!) { failPayment(id: $id, reason: \"declined\", idempotencyKey: \"fail-f105\") { position } }",
        json!({ "id": "0193a4b0-0000-7000-8000-00000000f105" }),
    )
    .await;
    pay(
        app,
        "0193a4b0-0000-7000-8000-00000000f106",
        OPEN_ORDER,
        "70000.00",
        "BANK_TRANSFER",
        false,
    )
    .await;

    // Insurance: OSAGO from SEVER (cancelled), KASKO from VOLGA with a claim paid.
    insure(app, OSAGO, "OSAGO", "SEVER").await;
    insure(app, KASKO, "KASKO", "VOLGA").await;
    app.ok(
        "mutation($id: UUID!) { cancelPolicy(id: $id, reason: \"vehicle sold\", idempotencyKey: \"cancel-f0f1\") { position } }",
        json!({ "id": OSAGO }),
    )
    .await;
    let today = business_today().to_string();
    app.ok(
        "mutation($p: UUID!, $c: UUID!, $on: Date!) {
           fileInsuranceClaim(policyId: $p, input: { id: $c, incidentDate: $on, description: \"scratched door\",
             claimedAmount: { amount: \"60000.00\" } }, idempotencyKey: \"claim-f0f3\") { position }
           startInsuranceClaimReview(policyId: $p, claimId: $c) { position }
           approveInsuranceClaim(policyId: $p, claimId: $c, amount: { amount: \"45000.00\" }) { position } }",
        json!({ "p": KASKO, "c": CLAIM, "on": today }),
    )
    .await;
    app.ok(
        "mutation($p: UUID!, $c: UUID!) { payInsuranceClaim(policyId: $p, claimId: $c, idempotencyKey: \"pay-f0f3\") { position } }",
        json!({ "p": KASKO, "c": CLAIM }),
    )
    .await;

    // The workshop: two hours with M-007 (kept) and one hour with M-008 (cancelled).
    let day = (Utc::now() + Duration::days(30))
        .format("%Y-%m-%d")
        .to_string();
    for (id, mechanic, start, end) in [
        (BOOKING, "M-007", "07:00", "09:00"),
        (CANCELLED_BOOKING, "M-008", "10:00", "11:00"),
    ] {
        app.ok(
            "mutation($id: UUID!, $m: String!, $start: DateTime!, $end: DateTime!, $c: UUID!, $v: UUID!) {
               bookService(input: { id: $id, customerId: $c, vehicleId: $v, mechanicId: $m, kind: MAINTENANCE,
                 start: $start, end: $end }) { booking { status } } }",
            json!({ "id": id, "m": mechanic, "start": format!("{day}T{start}:00Z"),
                    "end": format!("{day}T{end}:00Z"), "c": ANNA, "v": LADA }),
        )
        .await;
    }
    app.ok(
        "mutation($id: UUID!) { cancelBooking(id: $id, reason: \"customer away\") { position } }",
        json!({ "id": CANCELLED_BOOKING }),
    )
    .await;
}

/// Every event in the log, in order.
async fn all_events(ledger: &autosalon::Ledger) -> Vec<RecordedEvent> {
    let log = EventLog::new(ledger.db.pool().clone(), ledger.upcasters.clone());
    let mut events = Vec::new();
    loop {
        let batch = log
            .read_after(events.last().map_or(0, |e: &RecordedEvent| e.position), 256)
            .await
            .unwrap();
        if batch.is_empty() {
            return events;
        }
        events.extend(batch);
    }
}

/// Totals computed straight from the events, independently of the projector.
#[derive(Clone, Debug, Default, PartialEq)]
struct Expected {
    /// (brand, model) → (sales, revenue, discounts), kopecks.
    sales: BTreeMap<(String, String), (i64, i64, i64)>,
    /// (method, status) → (count, amount, refunded), kopecks.
    payments: BTreeMap<(String, String), (i64, i64, i64)>,
    /// (originated, principal, interest earned, outstanding principal).
    loans: (i64, i64, i64, i64),
    /// insurer → (policies, premiums, commission, claims paid, refunds), by issue.
    insurers: BTreeMap<String, (i64, i64, i64, i64, i64)>,
    /// insurer → (policies, premiums, commission) whose premium was paid: the settlement's basis.
    collected: BTreeMap<String, (i64, i64, i64)>,
}

fn expected(events: &[RecordedEvent]) -> Expected {
    let mut out = Expected::default();
    let mut vehicles: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut orders: BTreeMap<String, (String, i64, i64)> = BTreeMap::new();
    let mut payments: BTreeMap<String, (String, &'static str, i64, i64)> = BTreeMap::new();
    let mut insurer_of: BTreeMap<String, String> = BTreeMap::new();
    let mut issued_terms: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for event in events {
        let id = event.aggregate_id.clone();
        match event.aggregate_type.as_str() {
            "Vehicle" => {
                if let VehicleEvent::VehicleStocked { brand, model, .. } = event.decode().unwrap() {
                    vehicles.insert(id, (brand, model));
                }
            }
            "Order" => match event.decode::<OrderEvent>().unwrap() {
                OrderEvent::OrderDrafted {
                    vehicle_id, price, ..
                } => {
                    orders.insert(id, (vehicle_id.to_string(), price.minor_units(), 0));
                }
                OrderEvent::DiscountApplied {
                    discount_amount,
                    total,
                    ..
                } => {
                    let order = orders.get_mut(&id).unwrap();
                    order.1 = total.minor_units();
                    order.2 = discount_amount.minor_units();
                }
                OrderEvent::OrderHandedOver { .. } => {
                    let (vehicle, total, discount) = orders[&id].clone();
                    let row = out.sales.entry(vehicles[&vehicle].clone()).or_default();
                    row.0 += 1;
                    row.1 += total;
                    row.2 += discount;
                }
                _ => {}
            },
            "Payment" => match event.decode::<PaymentEvent>().unwrap() {
                PaymentEvent::PaymentInitiated { amount, method, .. } => {
                    payments.insert(
                        id,
                        (
                            method.kind().as_str().to_string(),
                            PaymentStatus::Pending.as_str(),
                            amount.minor_units(),
                            0,
                        ),
                    );
                }
                PaymentEvent::PaymentProcessingStarted { .. } => {
                    payments.get_mut(&id).unwrap().1 = PaymentStatus::Processing.as_str()
                }
                PaymentEvent::PaymentCompleted { .. } => {
                    payments.get_mut(&id).unwrap().1 = PaymentStatus::Completed.as_str()
                }
                PaymentEvent::PaymentFailed { .. } => {
                    payments.get_mut(&id).unwrap().1 = PaymentStatus::Failed.as_str()
                }
                PaymentEvent::PaymentCancelled { .. } => {
                    payments.get_mut(&id).unwrap().1 = PaymentStatus::Cancelled.as_str()
                }
                PaymentEvent::PaymentRefunded { amount, .. } => {
                    let payment = payments.get_mut(&id).unwrap();
                    payment.3 += amount.minor_units();
                    if payment.3 == payment.2 {
                        payment.1 = PaymentStatus::Refunded.as_str();
                    }
                }
            },
            "Loan" => match event.decode::<LoanEvent>().unwrap() {
                LoanEvent::LoanDisbursed { principal, .. } => {
                    out.loans.0 += 1;
                    out.loans.1 += principal.minor_units();
                    out.loans.3 += principal.minor_units();
                }
                LoanEvent::LoanRepaymentRecorded { allocations, .. } => {
                    for allocation in allocations {
                        out.loans.2 += allocation.interest.minor_units();
                        out.loans.3 -= allocation.principal.minor_units();
                    }
                }
                LoanEvent::LoanRepaidEarly {
                    principal,
                    interest,
                    ..
                } => {
                    out.loans.2 += interest.minor_units();
                    out.loans.3 -= principal.minor_units();
                }
                _ => {}
            },
            "Policy" => match event.decode::<PolicyEvent>().unwrap() {
                PolicyEvent::PolicyIssued {
                    insurer,
                    premium,
                    commission,
                    ..
                } => {
                    let row = out.insurers.entry(insurer.clone()).or_default();
                    row.0 += 1;
                    row.1 += premium.minor_units();
                    row.2 += commission.minor_units();
                    issued_terms.insert(
                        id.clone(),
                        (premium.minor_units(), commission.minor_units()),
                    );
                    insurer_of.insert(id, insurer);
                }
                PolicyEvent::PolicyPremiumPaid { .. } => {
                    let (premium, commission) = issued_terms[&id];
                    let row = out.collected.entry(insurer_of[&id].clone()).or_default();
                    row.0 += 1;
                    row.1 += premium;
                    row.2 += commission;
                }
                PolicyEvent::ClaimPaid { amount, .. } => {
                    out.insurers.get_mut(&insurer_of[&id]).unwrap().3 += amount.minor_units();
                }
                PolicyEvent::PolicyCancelled { refund, .. } => {
                    out.insurers.get_mut(&insurer_of[&id]).unwrap().4 += refund.minor_units();
                }
                _ => {}
            },
            _ => {}
        }
    }
    for (method, status, amount, refunded) in payments.into_values() {
        let row = out
            .payments
            .entry((method, status.to_string()))
            .or_default();
        row.0 += 1;
        row.1 += amount;
        row.2 += refunded;
    }
    out
}

/// The same totals, read from the `reports` tables.
async fn from_tables(ledger: &autosalon::Ledger) -> Expected {
    let pool = ledger.db.pool();
    let sales: Vec<(String, String, i64, i64, i64)> = sqlx::query_as(
        "SELECT brand, model, count(*), CAST(sum(revenue_minor) AS BIGINT), CAST(sum(discount_minor) AS BIGINT)
           FROM report_sales GROUP BY brand, model",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let payments: Vec<(String, String, i64, i64, i64)> = sqlx::query_as(
        "SELECT method, status, count(*), CAST(sum(amount_minor) AS BIGINT), CAST(sum(refunded_minor) AS BIGINT)
           FROM report_payments
          GROUP BY method, status",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let loans: (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), CAST(sum(principal_minor) AS BIGINT), CAST(sum(interest_earned_minor) AS BIGINT),
                CAST(sum(outstanding_principal_minor) AS BIGINT)
           FROM report_loans WHERE originated_day IS NOT NULL",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let insurers: Vec<(String, i64, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT insurer, count(*), CAST(sum(premium_minor) AS BIGINT), CAST(sum(commission_minor) AS BIGINT),
                CAST(sum(claims_paid_minor) AS BIGINT), CAST(sum(refund_minor) AS BIGINT)
           FROM report_policies GROUP BY insurer",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let collected: Vec<(String, i64, i64, i64)> = sqlx::query_as(
        "SELECT insurer, count(*), CAST(sum(premium_minor) AS BIGINT), CAST(sum(commission_minor) AS BIGINT)
           FROM report_policies
          WHERE premium_paid_day IS NOT NULL GROUP BY insurer",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    Expected {
        collected: collected
            .into_iter()
            .map(|(i, n, p, c)| (i, (n, p, c)))
            .collect(),
        sales: sales
            .into_iter()
            .map(|(b, m, n, r, d)| ((b, m), (n, r, d)))
            .collect(),
        payments: payments
            .into_iter()
            .map(|(m, s, n, a, r)| ((m, s), (n, a, r)))
            .collect(),
        loans,
        insurers: insurers
            .into_iter()
            .map(|(i, n, p, c, cl, r)| (i, (n, p, c, cl, r)))
            .collect(),
    }
}

/// Kopecks as the decimal text GraphQL shows.
fn minor(kopecks: i64) -> String {
    format!("{}.{:02}", kopecks / 100, kopecks % 100)
}

/// Decimal text of a Money amount back to kopecks.
fn kopecks(money: &Value) -> i64 {
    let text = money["amount"].as_str().unwrap();
    let (units, cents) = text.split_once('.').unwrap();
    units.parse::<i64>().unwrap() * 100 + cents.parse::<i64>().unwrap()
}

const REPORTS: &str = "query($month: String!) {
  salesReport(period: MONTH, groupBy: BRAND_MODEL) { reflectsPosition rows { period brand model count revenue { amount currency } discounts { amount } } }
  paymentsReport(groupBy: METHOD_AND_STATUS) { reflectsPosition rows { method status count amount { amount } refunded { amount } } }
  financingPortfolio { reflectsPosition rows { originatedCount originatedAmount { amount } outstandingPrincipal { amount } interestEarned { amount } overdueLoans defaultedCount } }
  insuranceReport(groupBy: INSURER) { reflectsPosition rows { insurer policies premiums { amount } claimsPaid { amount } lossRatio } }
  commissionSettlement(month: $month) { reflectsPosition month rows { insurer policies premiums { amount } commission { amount } cancellations clawback { amount } netCommission { amount } } }
  serviceReport { reflectsPosition bookings noShows noShowRate rows { mechanicId day bookings bookedMinutes utilisation noShows } }
}";

/// The same totals, as a client reads them over GraphQL.
fn from_graphql(seen: &Value) -> Expected {
    let rows = |report: &str| seen[report]["rows"].as_array().unwrap().clone();
    let text = |v: &Value| v.as_str().unwrap().to_string();
    let loans = &rows("financingPortfolio")[0];
    let mut insurers = BTreeMap::new();
    for row in rows("insuranceReport") {
        let premiums = kopecks(&row["premiums"]);
        let claims = kopecks(&row["claimsPaid"]);
        // The loss ratio is claims / premiums rounded to four places.
        let mut ratio = (rust_decimal::Decimal::from(claims)
            / rust_decimal::Decimal::from(premiums))
        .round_dp_with_strategy(4, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
        ratio.rescale(4);
        assert_eq!(row["lossRatio"], json!(ratio.to_string()));
        let settled = rows("commissionSettlement")
            .into_iter()
            .find(|s| s["insurer"] == row["insurer"])
            .unwrap();
        insurers.insert(
            text(&row["insurer"]),
            (
                row["policies"].as_i64().unwrap(),
                premiums,
                kopecks(&settled["commission"]),
                claims,
                // Refunds are not in the insurance report; the settlement's clawback is checked apart.
                0,
            ),
        );
    }
    Expected {
        collected: rows("commissionSettlement")
            .iter()
            .map(|r| {
                (
                    text(&r["insurer"]),
                    (
                        r["policies"].as_i64().unwrap(),
                        kopecks(&r["premiums"]),
                        kopecks(&r["commission"]),
                    ),
                )
            })
            .collect(),
        sales: rows("salesReport")
            .iter()
            .map(|r| {
                (
                    (text(&r["brand"]), text(&r["model"])),
                    (
                        r["count"].as_i64().unwrap(),
                        kopecks(&r["revenue"]),
                        kopecks(&r["discounts"]),
                    ),
                )
            })
            .collect(),
        payments: rows("paymentsReport")
            .iter()
            .map(|r| {
                (
                    (text(&r["method"]), text(&r["status"])),
                    (
                        r["count"].as_i64().unwrap(),
                        kopecks(&r["amount"]),
                        kopecks(&r["refunded"]),
                    ),
                )
            })
            .collect(),
        loans: (
            loans["originatedCount"].as_i64().unwrap(),
            kopecks(&loans["originatedAmount"]),
            kopecks(&loans["interestEarned"]),
            kopecks(&loans["outstandingPrincipal"]),
        ),
        insurers,
    }
}

/// Every row of the given tables, as text, in a stable order.
async fn dump(ledger: &autosalon::Ledger, tables: &[&str]) -> Vec<String> {
    let mut rows = Vec::new();
    for table in tables {
        rows.extend(crate::rows::prefixed_rows(ledger.db.pool(), table).await);
    }
    rows
}

#[tokio::test]
async fn the_report_tables_match_totals_computed_from_the_events_and_rebuild_identically() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    scenario(&app).await;
    let seen = app
        .ok(
            REPORTS,
            json!({ "month": Utc::now().format("%Y-%m").to_string() }),
        )
        .await;
    app.stop().await;

    let ledger = autosalon::Ledger::open(&database_url(&dir.path().join("autosalon.db")))
        .await
        .unwrap();
    while ledger.projections.step("reports").await.unwrap() != projections::Step::CaughtUp {}
    while ledger.projections.step("catalog").await.unwrap() != projections::Step::CaughtUp {}

    let events = all_events(&ledger).await;
    let want = expected(&events);
    assert_eq!(want.sales.len(), 2, "two brands sold: {want:?}");
    assert_eq!(want.insurers.len(), 2, "two insurers: {want:?}");
    assert!(want.payments.keys().any(|(_, s)| s == "FAILED"), "{want:?}");
    assert_eq!(from_tables(&ledger).await, want);
    assert_eq!(want.loans.0, 2, "two loans originated: {want:?}");
    assert!(want.loans.2 > 0, "interest earned: {want:?}");
    let loans: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT loan_id, status, outstanding_principal_minor FROM report_loans ORDER BY loan_id",
    )
    .fetch_all(ledger.db.pool())
    .await
    .unwrap();
    assert_eq!(
        (loans[0].1.as_str(), loans[0].2),
        ("COMPLETED", 0),
        "{loans:?}"
    );
    assert_eq!(loans[1].1, "ACTIVE", "{loans:?}");
    let mut without_refunds = want.clone();
    for row in without_refunds.insurers.values_mut() {
        row.4 = 0;
    }
    assert_eq!(from_graphql(&seen), without_refunds, "{seen:#}");
    let head = EventLog::new(ledger.db.pool().clone(), ledger.upcasters.clone())
        .head()
        .await
        .unwrap();
    for report in [
        "salesReport",
        "paymentsReport",
        "financingPortfolio",
        "insuranceReport",
    ] {
        assert_eq!(seen[report]["reflectsPosition"], json!(head), "{report}");
    }
    // Settlement this month: commission on the premiums collected (both policies were paid), the
    // cancelled one's commission clawed back in proportion to its refund.
    let settlement = &seen["commissionSettlement"]["rows"];
    assert_eq!(settlement.as_array().unwrap().len(), 2, "{settlement:#}");
    for row in settlement.as_array().unwrap() {
        let insurer = row["insurer"].as_str().unwrap();
        let (_, _, _, _, refund) = want.insurers[insurer];
        let (policies, premiums, commission) = want.collected[insurer];
        assert_eq!(row["policies"], json!(policies));
        assert_eq!(row["premiums"]["amount"], json!(minor(premiums)));
        assert_eq!(row["commission"]["amount"], json!(minor(commission)));
        let clawback = if refund == 0 {
            0
        } else {
            // Half away from zero, in kopecks: (2·c·r + p) / (2·p) for non-negative amounts.
            (2 * commission * refund + premiums) / (2 * premiums)
        };
        assert_eq!(row["clawback"]["amount"], json!(minor(clawback)), "{row}");
        assert_eq!(
            row["netCommission"]["amount"],
            json!(minor(commission - clawback))
        );
    }
    // The workshop: the cancelled booking does not count; two hours of 720 minutes.
    assert_eq!(seen["serviceReport"]["bookings"], 1);
    assert_eq!(seen["serviceReport"]["noShowRate"], "0.0000");
    assert_eq!(seen["serviceReport"]["rows"][0]["utilisation"], "0.1667");
    assert_eq!(seen["serviceReport"]["rows"][0]["bookedMinutes"], 120);

    let bookings: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT mechanic_id, booked_minutes, status FROM report_bookings ORDER BY mechanic_id",
    )
    .fetch_all(ledger.db.pool())
    .await
    .unwrap();
    assert_eq!(
        bookings,
        vec![
            ("M-007".into(), 120, "SCHEDULED".into()),
            ("M-008".into(), 60, "CANCELLED".into())
        ]
    );
    let inventory: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT vehicle_id, left_reason FROM report_inventory ORDER BY vehicle_id")
            .fetch_all(ledger.db.pool())
            .await
            .unwrap();
    assert_eq!(
        inventory,
        vec![
            (LADA.into(), Some("SOLD".into())),
            (VESTA.into(), None),
            (HAVAL.into(), Some("SOLD".into())),
            (SPARE.into(), None)
        ]
    );

    // Catalog: the reprice is in the price history; sold and reserved cars are unavailable, and sold
    // ones say when they left.
    let history: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT vehicle_id, old_price_minor, new_price_minor FROM catalog_price_history",
    )
    .fetch_all(ledger.db.pool())
    .await
    .unwrap();
    assert_eq!(history, vec![(SPARE.into(), 250_000_000, 245_000_000)]);
    let sold: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT vehicle_id, available, CASE WHEN sold_at IS NULL THEN 0 ELSE 1 END FROM catalog_vehicles ORDER BY vehicle_id",
    )
    .fetch_all(ledger.db.pool())
    .await
    .unwrap();
    assert_eq!(
        sold,
        vec![
            (LADA.into(), 0, 1),
            (VESTA.into(), 0, 0),
            (HAVAL.into(), 0, 1),
            (SPARE.into(), 0, 0)
        ]
    );

    // Rebuilt from position 0, both read models are identical, row for row.
    let reports = projections::reports::Reports;
    let catalog = projections::catalog::Catalog;
    use projections::Projector;
    for projector in [&reports as &dyn Projector, &catalog] {
        let tables = projector.tables();
        let live = dump(&ledger, tables).await;
        assert!(!live.is_empty());
        ledger
            .projections
            .rebuild(projector.name(), |_, _| {})
            .await
            .unwrap();
        assert_eq!(dump(&ledger, tables).await, live, "{}", projector.name());
    }
}

#[tokio::test]
async fn a_client_reads_sales_payments_and_stock_age_for_one_cash_sale() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    app.ok(
        STOCK_VEHICLE,
        stock(LADA, "XTA210990Y2766381", "Lada", "Vesta", "1500000.00"),
    )
    .await;
    app.ok(
        STOCK_VEHICLE,
        stock(HAVAL, "XTA210990Y2766383", "Haval", "Jolion", "2400000.00"),
    )
    .await;
    app.ok(REGISTER_CUSTOMER, json!({ "input": customer_input(ANNA) }))
        .await;
    draft(&app, CASH_ORDER, LADA, Some("5")).await;
    pay(
        &app,
        "0193a4b0-0000-7000-8000-00000000f101",
        CASH_ORDER,
        "1425000.00",
        "CASH",
        true,
    )
    .await;
    hand_over(&app, CASH_ORDER).await;

    let today = vehicle_day_today();
    let tomorrow = (chrono::NaiveDate::parse_from_str(&today, "%Y-%m-%d").unwrap()
        + Duration::days(1))
    .to_string();
    let seen = app
        .ok(
            "query($from: Date!, $to: Date!) {
               salesReport(from: $from, to: $to, period: DAY, groupBy: BRAND) {
                 rows { period brand model count revenue { amount currency } discounts { amount } } }
               paymentsReport(from: $from, to: $to, groupBy: METHOD) {
                 rows { method status count amount { amount } refunded { amount } } }
               inventoryAging(asOf: $from, groupBy: MODEL) {
                 asOf rows { brand model inStock averageDays maxDays days0To30 days31To60 days61To90 daysOver90 } }
               vehicle(id: \"0193a4b0-0000-7000-8000-00000000f001\") { available daysInStock priceHistory { newPrice { amount } } }
               inStock: vehicle(id: \"0193a4b0-0000-7000-8000-00000000f003\") { available leftStockAt daysInStock }
             }",
            json!({ "from": today, "to": tomorrow }),
        )
        .await;
    assert_eq!(
        seen,
        json!({
            "salesReport": { "rows": [{
                "period": today, "brand": "Lada", "model": null, "count": 1,
                "revenue": { "amount": "1425000.00", "currency": "RUB" }, "discounts": { "amount": "75000.00" }
            }] },
            "paymentsReport": { "rows": [{
                "method": "CASH", "status": null, "count": 1, "amount": { "amount": "1425000.00" },
                "refunded": { "amount": "0.00" }
            }] },
            "inventoryAging": { "asOf": today, "rows": [{
                "brand": "Haval", "model": "Jolion", "inStock": 1, "averageDays": "0.0000", "maxDays": 0,
                "days0To30": 1, "days31To60": 0, "days61To90": 0, "daysOver90": 0
            }] },
            "vehicle": { "available": false, "daysInStock": 0, "priceHistory": [] },
            "inStock": { "available": true, "leftStockAt": null, "daysInStock": 0 }
        })
    );

    // A period outside the sale is empty; bad periods and months are refused.
    let empty = app
        .ok(
            "{ salesReport(to: \"2000-01-01\") { rows { count } reflectsPosition } }",
            json!({}),
        )
        .await;
    assert_eq!(empty["salesReport"]["rows"], json!([]));
    assert!(empty["salesReport"]["reflectsPosition"].as_i64().unwrap() > 0);
    for bad in [
        "{ salesReport(from: \"2030-01-02\", to: \"2030-01-01\") { rows { count } } }",
        "{ commissionSettlement(month: \"2030-13\") { month } }",
        "{ commissionSettlement(month: \"2030-1\") { month } }",
    ] {
        let response = app.graphql(bad, json!({})).await;
        assert_eq!(
            error_codes(&response),
            vec!["VALIDATION"],
            "{bad}: {response}"
        );
    }
    app.stop().await;
}

/// Today's business day in Moscow (UTC+3), as the reports date sales made now.
fn vehicle_day_today() -> String {
    business_today().to_string()
}

/// The services of the dealership with their clocks stopped at `now`.
fn services_at(
    ledger: &autosalon::Ledger,
    now: &str,
) -> (commands::Dealership, commands::Payments, commands::Bookings) {
    let clock: std::sync::Arc<dyn commands::clock::Clock> =
        std::sync::Arc::new(commands::clock::FixedClock(now.parse().unwrap()));
    let ids = || std::sync::Arc::new(commands::clock::UuidV7);
    (
        commands::Dealership::new(
            ledger.db.clone(),
            ledger.upcasters.clone(),
            clock.clone(),
            ids(),
        ),
        commands::Payments::new(
            ledger.db.clone(),
            ledger.upcasters.clone(),
            clock.clone(),
            ids(),
        ),
        commands::Bookings::new(ledger.db.clone(), ledger.upcasters.clone(), clock, ids()),
    )
}

#[tokio::test]
async fn sales_fall_on_moscow_business_days_and_a_no_show_counts_against_its_mechanic() {
    use aggregates::money::{Currency, Money};
    use aggregates::payment::PaymentMethod;
    use aggregates::vehicle::{Condition, StockVehicle};
    use commands::RequestContext;
    use queries::reports::{self as r, InventoryGroupBy, ReportPeriod, SalesGroupBy};
    use queries::snapshot::Snapshot;
    use uuid::Uuid;

    let dir = temp_dir();
    let ledger = autosalon::Ledger::open(&database_url(&dir.path().join("days.db")))
        .await
        .unwrap();
    let ctx = RequestContext::default();
    // 2030-03-14 12:00 Moscow, and 2030-03-15 22:30 UTC, which is already 2030-03-16 in Moscow.
    let (dealership, day_one, _) = services_at(&ledger, "2030-03-14T09:00:00Z");
    let (_, late_night, workshop_before) = services_at(&ledger, "2030-03-15T22:30:00Z");
    let (_, _, workshop_during) = services_at(&ledger, "2030-03-20T08:00:00Z");
    let rub =
        |units: i64| Money::new(rust_decimal::Decimal::new(units * 100, 2), Currency::RUB).unwrap();
    let customer = Uuid::from_u128(0xc1);
    dealership
        .register_customer(
            &ctx,
            customer,
            aggregates::customer::CustomerCommand::Register {
                full_name: "Anna Petrova".into(),
                email: aggregates::contact::Email::parse("anna@example.ru").unwrap(),
                phone: aggregates::contact::Phone::parse("+79161234567").unwrap(),
                address: "Moscow".into(),
                registered_at: "2030-01-01T09:00:00Z".parse().unwrap(),
            },
            None,
        )
        .await
        .unwrap();
    let cars = [
        (1_u128, "Lada", "Vesta", 1_500_000, "2030-01-01T09:00:00Z"),
        (2, "Haval", "Jolion", 2_400_000, "2030-02-20T09:00:00Z"),
        (3, "Lada", "Vesta", 1_600_000, "2030-03-10T09:00:00Z"),
    ];
    for (n, brand, model, price, stocked_at) in cars {
        dealership
            .stock_vehicle(
                &ctx,
                Uuid::from_u128(n),
                StockVehicle {
                    vin: aggregates::vin::Vin::parse(&format!("XTA210990Y276638{n}")).unwrap(),
                    brand: brand.into(),
                    model: model.into(),
                    year: 2030,
                    trim: "Base".into(),
                    colour: "grey".into(),
                    mileage_km: 0,
                    condition: Condition::New,
                    location: "Lot 1".into(),
                    list_price: rub(price),
                    specifications: Default::default(),
                    stocked_at: stocked_at.parse().unwrap(),
                },
                None,
            )
            .await
            .unwrap();
    }
    // Vesta 1 sold on day one, the Jolion late on the 15th UTC (the 16th in Moscow).
    for (vehicle, payments) in [(1_u128, &day_one), (2, &late_night)] {
        let order = Uuid::from_u128(0xd0 + vehicle);
        dealership
            .draft_order(&ctx, order, customer, Uuid::from_u128(vehicle), None)
            .await
            .unwrap();
        dealership.confirm_order(&ctx, order, None).await.unwrap();
        let payment = Uuid::from_u128(0xe0 + vehicle);
        let price = if vehicle == 1 { 1_500_000 } else { 2_400_000 };
        payments
            .initiate_payment(&ctx, payment, order, rub(price), PaymentMethod::Cash, None)
            .await
            .unwrap();
        payments
            .complete_payment(&ctx, payment, None)
            .await
            .unwrap();
        payments.hand_over_order(&ctx, order, None).await.unwrap();
    }
    // Two hours booked with M-017 on the 20th; the customer does not come.
    let booking = Uuid::from_u128(0xb1);
    let start: chrono::DateTime<Utc> = "2030-03-20T06:00:00Z".parse().unwrap();
    workshop_before
        .book_service(
            &ctx,
            booking,
            commands::bookings::BookingRequest {
                customer_id: customer,
                vehicle_id: Uuid::from_u128(3),
                mechanic: aggregates::bookings::MechanicCode::parse("M-017").unwrap(),
                kind: aggregates::bookings::ServiceKind::Maintenance,
                slot: aggregates::bookings::Slot::new(start, start + Duration::hours(2)).unwrap(),
                notes: String::new(),
            },
            None,
        )
        .await
        .unwrap();
    workshop_during
        .mark_booking_no_show(&ctx, booking, None)
        .await
        .unwrap();
    ledger.projections.catch_up_all().await.unwrap();

    let mut snapshot = Snapshot::open(ledger.db.pool()).await.unwrap();
    let sales = r::sales_report(
        &mut snapshot,
        None,
        None,
        ReportPeriod::Day,
        SalesGroupBy::Brand,
    )
    .await
    .unwrap();
    let days: Vec<(String, Option<String>, i64)> = sales
        .rows
        .iter()
        .map(|row| (row.period.clone(), row.brand.clone(), row.count))
        .collect();
    assert_eq!(
        days,
        vec![
            ("2030-03-14".into(), Some("Lada".into()), 1),
            ("2030-03-16".into(), Some("Haval".into()), 1)
        ]
    );
    let monthly = r::sales_report(
        &mut snapshot,
        None,
        None,
        ReportPeriod::Month,
        SalesGroupBy::None,
    )
    .await
    .unwrap();
    assert_eq!(monthly.rows.len(), 1);
    assert_eq!(monthly.rows[0].period, "2030-03");
    assert_eq!(
        monthly.rows[0].revenue.amount.0,
        rust_decimal::Decimal::new(390_000_000, 2)
    );

    let service = r::service_report(&mut snapshot, None, None).await.unwrap();
    assert_eq!((service.bookings, service.no_shows), (1, 1));
    assert_eq!(
        service.rows[0].booked_minutes, 0,
        "a no-show frees its slot"
    );
    assert_eq!(service.no_show_rate.unwrap().0.to_string(), "1.0000");

    // On the 16th only the second Vesta is in stock: 6 days old.
    let as_of = chrono::NaiveDate::from_ymd_opt(2030, 3, 16).unwrap();
    let aging = r::inventory_aging(&mut snapshot, as_of, InventoryGroupBy::Model)
        .await
        .unwrap();
    assert_eq!(aging.rows.len(), 1);
    assert_eq!((aging.rows[0].in_stock, aging.rows[0].max_days), (1, 6));
    // On the 14th the first Vesta was handed over (it left stock that day): only the Jolion (22 days)
    // and the second Vesta (4 days) are counted.
    let aging = r::inventory_aging(
        &mut snapshot,
        chrono::NaiveDate::from_ymd_opt(2030, 3, 14).unwrap(),
        InventoryGroupBy::Brand,
    )
    .await
    .unwrap();
    let seen: Vec<(String, i64, i64, i64)> = aging
        .rows
        .iter()
        .map(|row| {
            (
                row.brand.clone(),
                row.in_stock,
                row.max_days,
                row.days_0_to_30,
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![("Haval".into(), 1, 22, 1), ("Lada".into(), 1, 4, 1)]
    );
}
