//! The `customer_history` read model: two customers with interleaved activity in every area; each
//! history holds exactly that customer's events in global order, the summaries add up, a rebuild
//! changes nothing, and both read over GraphQL as a client sees them.

use std::collections::BTreeMap;

use autosalon::Ledger;
use chrono::{Duration, Utc};
use serde_json::{Value, json};

use crate::helpers::*;

pub const CAR_A: &str = "0193a4b0-0000-7000-8000-000000000f01";
pub const CAR_B: &str = "0193a4b0-0000-7000-8000-000000000f02";
pub const ANNA: &str = "0193a4b0-0000-7000-8000-000000000f03";
pub const BORIS: &str = "0193a4b0-0000-7000-8000-000000000f04";
const ORDER_A: &str = "0193a4b0-0000-7000-8000-000000000f05";
const ORDER_B: &str = "0193a4b0-0000-7000-8000-000000000f06";
const LOAN_A: &str = "0193a4b0-0000-7000-8000-000000000f07";
const DEPOSIT_A: &str = "0193a4b0-0000-7000-8000-000000000f08";
const PAYMENT_B: &str = "0193a4b0-0000-7000-8000-000000000f09";
const KASKO_A: &str = "0193a4b0-0000-7000-8000-000000000f0a";
const CLAIM_A: &str = "0193a4b0-0000-7000-8000-000000000f0b";
const BOOKING_B: &str = "0193a4b0-0000-7000-8000-000000000f0c";

const PAY_BY_CARD: &str = "mutation($id: UUID!, $order: UUID!, $amount: Decimal!, $key: String!) {
  initiatePayment(idempotencyKey: $key, input: { id: $id, orderId: $order, amount: { amount: $amount }, method: CARD, cardLast4: \"4242\" }) { position } }";
const SETTLE_PAYMENT: &str = "mutation($id: UUID!, $k1: String!, $k2: String!) {
  startPaymentProcessing(id: $id, gatewayTransactionId: \"gw-1\", idempotencyKey: $k1) { position }
  completePayment(id: $id, idempotencyKey: $k2) { position } }";

/// Two customers, interleaved: Anna pays a deposit (part of it refunded), buys on credit, insures and
/// claims; Boris pays in full, takes the car and books a service.
pub async fn two_customers(app: &TestApp) {
    let today = business_today();
    for (id, vin) in [(CAR_A, "XTA210990Y2766301"), (CAR_B, "XTA210990Y2766302")] {
        app.ok(
            STOCK_VEHICLE,
            json!({ "input": vehicle_input(id, vin, "Vesta", "1500000.00") }),
        )
        .await;
    }
    for id in [ANNA, BORIS] {
        app.ok(REGISTER_CUSTOMER, json!({ "input": customer_input(id) }))
            .await;
    }
    for (order, customer, car) in [(ORDER_A, ANNA, CAR_A), (ORDER_B, BORIS, CAR_B)] {
        app.ok(
            DRAFT_ORDER,
            json!({ "input": { "id": order, "customerId": customer, "vehicleId": car } }),
        )
        .await;
    }
    app.ok(CONFIRM_ORDER, json!({ "id": ORDER_A })).await;
    app.ok(CONFIRM_ORDER, json!({ "id": ORDER_B })).await;
    app.ok(
        "mutation($id: UUID!, $order: UUID!) { applyForLoan(input: { id: $id, orderId: $order,
            downPayment: { amount: \"300000.00\" }, loanType: CAR_LOAN, termMonths: 36,
            employmentStatus: EMPLOYED, monthlyIncome: { amount: \"200000.00\" }, creditScore: 780 }) { position } }",
        json!({ "id": LOAN_A, "order": ORDER_A }),
    )
    .await;
    app.ok(
        PAY_BY_CARD,
        json!({ "id": PAYMENT_B, "order": ORDER_B, "amount": "1500000.00", "key": "b-init" }),
    )
    .await;
    app.ok(
        "mutation($id: UUID!) { submitLoanApplication(id: $id) { position } startLoanReview(id: $id) { position } }",
        json!({ "id": LOAN_A }),
    )
    .await;
    let first_due = (today + Duration::days(40)).format("%Y-%m-%d").to_string();
    app.ok(
        "mutation($id: UUID!, $due: Date!) { decideLoan(id: $id, input: { firstDueDate: $due, scheduleKind: ANNUITY }) { position } }",
        json!({ "id": LOAN_A, "due": first_due }),
    )
    .await;
    app.ok(
        SETTLE_PAYMENT,
        json!({ "id": PAYMENT_B, "k1": "b-gw", "k2": "b-done" }),
    )
    .await;
    app.ok(
        PAY_BY_CARD,
        json!({ "id": DEPOSIT_A, "order": ORDER_A, "amount": "300000.00", "key": "a-init" }),
    )
    .await;
    app.ok(
        SETTLE_PAYMENT,
        json!({ "id": DEPOSIT_A, "k1": "a-gw", "k2": "a-done" }),
    )
    .await;
    app.ok(
        "mutation($id: UUID!) { refundPayment(idempotencyKey: \"a-refund\", input: { paymentId: $id,
            amount: { amount: \"100000.00\" }, reason: \"deposit lowered\" }) { position } }",
        json!({ "id": DEPOSIT_A }),
    )
    .await;
    app.ok(
        "mutation($id: UUID!) { disburseLoan(id: $id, idempotencyKey: \"a-disburse\") { position } }",
        json!({ "id": LOAN_A }),
    )
    .await;
    app.ok(
        "mutation($id: UUID!) { handOverOrder(id: $id, idempotencyKey: \"b-handover\") { position } }",
        json!({ "id": ORDER_B }),
    )
    .await;
    app.ok(
        "mutation($id: UUID!, $customer: UUID!, $car: UUID!) { requestInsuranceQuote(input: {
            id: $id, product: KASKO, customerId: $customer, vehicleId: $car,
            driver: { age: 41, drivingExperienceYears: 20, region: MOSCOW, bonusMalusClass: 5 },
            enginePowerHp: 150, deductible: { amount: \"15000.00\" } }) { quote { unansweredInsurers } } }",
        json!({ "id": KASKO_A, "customer": ANNA, "car": CAR_A }),
    )
    .await;
    let issued = app
        .ok(
            "mutation($id: UUID!) { selectInsuranceOffer(quoteId: $id, insurer: \"SEVER\") { policy { premium { amount } } } }",
            json!({ "id": KASKO_A }),
        )
        .await;
    let day = (today + Duration::days(30)).format("%Y-%m-%d").to_string();
    app.ok(
        "mutation($id: UUID!, $customer: UUID!, $car: UUID!, $start: DateTime!, $end: DateTime!) {
            bookService(input: { id: $id, customerId: $customer, vehicleId: $car, mechanicId: \"M-007\",
              kind: MAINTENANCE, start: $start, end: $end, notes: \"first service\" }) { booking { id } } }",
        json!({ "id": BOOKING_B, "customer": BORIS, "car": CAR_B,
                "start": format!("{day}T07:00:00Z"), "end": format!("{day}T09:00:00Z") }),
    )
    .await;
    app.ok(
        "mutation($id: UUID!, $amount: Decimal!) { payPolicyPremium(id: $id, amount: { amount: $amount }, idempotencyKey: \"a-premium\") { position } }",
        json!({ "id": KASKO_A, "amount": issued["selectInsuranceOffer"]["policy"]["premium"]["amount"] }),
    )
    .await;
    app.ok(
        "mutation($p: UUID!, $c: UUID!, $on: Date!) {
           fileInsuranceClaim(policyId: $p, input: { id: $c, incidentDate: $on, description: \"scratched door\",
             claimedAmount: { amount: \"60000.00\" } }, idempotencyKey: \"a-claim\") { claim { status } } }",
        json!({ "p": KASKO_A, "c": CLAIM_A, "on": today.format("%Y-%m-%d").to_string() }),
    )
    .await;
}

/// A summary row: customer, orders, completed, active loans, active policies, open claims,
/// scheduled bookings.
type Summary = (String, i64, i64, i64, i64, i64, i64);

/// One history row as the test compares it: position, aggregate type and id, event type.
type Row = (i64, String, String, String);

/// Who each event touches, by the rule the projector documents, worked out here from the raw log.
async fn expected_histories(ledger: &Ledger) -> BTreeMap<String, Vec<Row>> {
    let events: Vec<(i64, String, String, String, String)> = sqlx::query_as(
        // The payload is json on PostgreSQL, which sqlx Any cannot decode: read it as text.
        "SELECT l.global_position, e.aggregate_type, e.aggregate_id, e.event_type, CAST(e.payload AS TEXT)
           FROM event_log l JOIN events e USING (aggregate_type, aggregate_id, sequence)
          ORDER BY l.global_position",
    )
    .fetch_all(ledger.db.pool())
    .await
    .unwrap();
    let mut owners: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut histories: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for (position, kind, id, event_type, payload) in events {
        let payload: Value = serde_json::from_str(&payload).unwrap();
        let body = &payload[&event_type];
        let field = |name: &str| body[name].as_str().map(str::to_string);
        let creator = match event_type.as_str() {
            "CustomerRegistered" => Some(id.clone()),
            "OrderDrafted" | "PaymentInitiated" | "LoanApplied" | "QuoteRequested"
            | "ServiceBooked" => field("customer_id"),
            "PolicyIssued" => field("holder"),
            _ => None,
        };
        if let Some(customer) = creator {
            owners.insert((kind.clone(), id.clone()), customer);
        }
        let owner = match (kind.as_str(), event_type.as_str()) {
            ("Vehicle", "VehicleReserved" | "VehicleReservationReleased" | "VehicleSold") => {
                owners.get(&("Order".into(), field("order_id").unwrap()))
            }
            ("Vehicle", "VehicleServiceRecorded") => {
                owners.get(&("Booking".into(), field("booking_id").unwrap()))
            }
            ("Vehicle" | "MechanicDay", _) => None,
            _ => owners.get(&(kind.clone(), id.clone())),
        };
        if let Some(customer) = owner {
            histories
                .entry(customer.clone())
                .or_default()
                .push((position, kind, id, event_type));
        }
    }
    histories
}

async fn history_rows(ledger: &Ledger, customer: &str) -> Vec<Row> {
    sqlx::query_as(
        "SELECT position, aggregate_type, aggregate_id, event_type FROM customer_history
          WHERE customer_id = $1 ORDER BY position",
    )
    .bind(customer)
    .fetch_all(ledger.db.pool())
    .await
    .unwrap()
}

/// Every row of every table of the projector, as text, in a stable order.
pub async fn dump(ledger: &Ledger, projector: &str) -> Vec<String> {
    let tables = projections::all_projectors()
        .into_iter()
        .find(|p| p.name() == projector)
        .unwrap()
        .tables();
    let mut rows = Vec::new();
    for table in tables {
        rows.extend(crate::rows::prefixed_rows(ledger.db.pool(), table).await);
    }
    rows
}

#[tokio::test]
async fn each_history_holds_exactly_its_customers_events_and_the_summaries_add_up() {
    let dir = temp_dir();
    let path = dir.path().join("autosalon.db");
    let app = spawn_app(&dir).await;
    two_customers(&app).await;
    app.stop().await;

    let ledger = Ledger::open(&database_url(&path)).await.unwrap();
    ledger.projections.catch_up_all().await.unwrap();
    let expected = expected_histories(&ledger).await;
    assert_eq!(
        expected.keys().cloned().collect::<Vec<_>>(),
        vec![ANNA.to_string(), BORIS.to_string()]
    );
    for customer in [ANNA, BORIS] {
        let rows = history_rows(&ledger, customer).await;
        assert_eq!(rows, expected[customer], "history of {customer}");
        let kinds: std::collections::BTreeSet<&str> =
            rows.iter().map(|row| row.1.as_str()).collect();
        let want: &[&str] = if customer == ANNA {
            &["Customer", "Loan", "Order", "Payment", "Policy", "Vehicle"]
        } else {
            &["Booking", "Customer", "Order", "Payment", "Vehicle"]
        };
        assert_eq!(kinds, want.iter().copied().collect(), "{customer}");
    }
    let positions: Vec<i64> = sqlx::query_scalar("SELECT position FROM customer_history")
        .fetch_all(ledger.db.pool())
        .await
        .unwrap();
    let distinct: std::collections::BTreeSet<i64> = positions.iter().copied().collect();
    assert_eq!(
        positions.len(),
        distinct.len(),
        "no event is in two histories"
    );

    let summaries: Vec<Summary> = sqlx::query_as(
        "SELECT customer_id, orders_count, orders_completed, active_loans, active_policies,
                open_claims, scheduled_bookings
               FROM customer_summary ORDER BY customer_id",
    )
    .fetch_all(ledger.db.pool())
    .await
    .unwrap();
    assert_eq!(
        summaries,
        vec![
            (ANNA.into(), 1, 0, 1, 1, 1, 0),
            (BORIS.into(), 1, 1, 0, 0, 0, 1),
        ]
    );
    let money: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT customer_id, currency, total_paid_minor, outstanding_principal_minor
           FROM customer_summary_money ORDER BY customer_id, currency",
    )
    .fetch_all(ledger.db.pool())
    .await
    .unwrap();
    assert_eq!(
        money,
        vec![
            (ANNA.into(), "RUB".into(), 140_000_000, 120_000_000),
            (BORIS.into(), "RUB".into(), 150_000_000, 0),
        ]
    );
    let summary: String = sqlx::query_scalar(
        "SELECT summary FROM customer_history WHERE customer_id = $1 AND event_type = 'PaymentCompleted'",
    )
    .bind(BORIS)
    .fetch_one(ledger.db.pool())
    .await
    .unwrap();
    assert_eq!(
        summary,
        format!("Paid 1 500 000.00 RUB by card ending 4242 towards order {ORDER_B}")
    );

    let live = dump(&ledger, "customer_history").await;
    ledger
        .projections
        .rebuild("customer_history", |_, _| {})
        .await
        .unwrap();
    assert_eq!(dump(&ledger, "customer_history").await, live);
}

const HISTORY: &str = "query($id: UUID!, $first: Int, $after: String, $from: Date, $to: Date) {
  customerHistory(customerId: $id, first: $first, after: $after, from: $from, to: $to) {
    totalCount reflectsPosition pageInfo { hasNextPage endCursor }
    edges { node { position recordedAt aggregateType aggregateId eventType summary } } } }";

const SUMMARY: &str = "query($id: UUID!) { customerSummary(customerId: $id) {
  customerId ordersCount ordersCompleted totalPaid { amount currency } activeLoans
  outstandingPrincipal { amount currency } activePolicies openClaims upcomingBookings nextBookingStart
  reflectsPosition } }";

#[tokio::test]
async fn a_client_reads_a_customers_history_page_by_page_and_the_summary() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    two_customers(&app).await;
    let head = app.event_count().await;

    // Anna's whole history, three entries a page, in global order.
    let mut entries: Vec<Value> = Vec::new();
    let mut after: Option<String> = None;
    let mut total;
    loop {
        let page = app
            .ok(HISTORY, json!({ "id": ANNA, "first": 3, "after": after }))
            .await["customerHistory"]
            .clone();
        total = page["totalCount"].as_i64().unwrap();
        assert_eq!(page["reflectsPosition"], head, "every event is reflected");
        entries.extend(
            page["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["node"].clone()),
        );
        if page["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = Some(page["pageInfo"]["endCursor"].as_str().unwrap().to_string());
    }
    assert_eq!(entries.len() as i64, total);
    let positions: Vec<i64> = entries
        .iter()
        .map(|e| e["position"].as_i64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    assert_eq!(entries[0]["eventType"], "CustomerRegistered");
    assert_eq!(entries[0]["aggregateId"], ANNA);
    let summaries: Vec<&str> = entries
        .iter()
        .map(|e| e["summary"].as_str().unwrap())
        .collect();
    assert!(
        summaries.contains(
            &format!("Paid 300 000.00 RUB by card ending 4242 towards order {ORDER_A}").as_str()
        ),
        "{summaries:#?}"
    );
    assert!(
        summaries
            .iter()
            .any(|s| s.starts_with("Loan approved: 1 200 000.00 RUB at ")
                && s.ends_with(" for 36 months (annuity schedule)")),
        "{summaries:#?}"
    );
    assert!(
        summaries
            .iter()
            .any(|s| s.starts_with(&format!("Claim {CLAIM_A} filed on policy "))),
        "{summaries:#?}"
    );
    assert!(
        entries
            .iter()
            .all(|e| e["aggregateId"] != BORIS && e["aggregateId"] != ORDER_B)
    );

    // The period filter: today in Moscow holds everything, tomorrow nothing.
    let today = business_today();
    let day = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
    let within = app
        .ok(
            HISTORY,
            json!({ "id": ANNA, "from": day(today), "to": day(today + Duration::days(1)) }),
        )
        .await;
    assert_eq!(within["customerHistory"]["totalCount"], total);
    let later = app
        .ok(
            HISTORY,
            json!({ "id": ANNA, "from": day(today + Duration::days(1)) }),
        )
        .await;
    assert_eq!(later["customerHistory"]["totalCount"], 0);
    let inverted = app
        .graphql(
            HISTORY,
            json!({ "id": ANNA, "from": day(today), "to": day(today - Duration::days(1)) }),
        )
        .await;
    assert_eq!(error_codes(&inverted), vec!["VALIDATION".to_string()]);

    // The summaries, as of the newest position.
    let anna = app.ok(SUMMARY, json!({ "id": ANNA })).await["customerSummary"].clone();
    assert_eq!(
        anna,
        json!({ "customerId": ANNA, "ordersCount": 1, "ordersCompleted": 0,
                "totalPaid": [{ "amount": "1400000.00", "currency": "RUB" }], "activeLoans": 1,
                "outstandingPrincipal": [{ "amount": "1200000.00", "currency": "RUB" }],
                "activePolicies": 1, "openClaims": 1, "upcomingBookings": 0, "nextBookingStart": null,
                "reflectsPosition": head })
    );
    let boris = app
        .ok(
            "query($id: UUID!) { customer(id: $id) { summary { ordersCompleted totalPaid { amount }
              activeLoans upcomingBookings nextBookingStart } history(first: 1) { totalCount } } }",
            json!({ "id": BORIS }),
        )
        .await["customer"]
        .clone();
    assert_eq!(boris["summary"]["ordersCompleted"], 1);
    assert_eq!(
        boris["summary"]["totalPaid"],
        json!([{ "amount": "1500000.00" }])
    );
    assert_eq!(boris["summary"]["activeLoans"], 0);
    assert_eq!(boris["summary"]["upcomingBookings"], 1);
    assert!(
        boris["summary"]["nextBookingStart"]
            .as_str()
            .unwrap()
            .ends_with("T07:00:00.000Z")
    );
    assert!(boris["history"]["totalCount"].as_i64().unwrap() > 5);

    assert!(
        summaries.contains(&"Refunded 100 000.00 RUB of the 300 000.00 RUB payment by card ending 4242: deposit lowered"),
        "{summaries:#?}"
    );

    // The projector is reported like every other, caught up and healthy.
    let statuses = app
        .ok("{ projections { name eventsBehind lastError } }", json!({}))
        .await;
    assert!(
        statuses["projections"]
            .as_array()
            .unwrap()
            .contains(&json!({ "name": "customer_history", "eventsBehind": 0, "lastError": null })),
        "{statuses:#}"
    );

    // Unknown customers are NOT_FOUND for both.
    let nobody = "0193a4b0-0000-7000-8000-0000000000ff";
    for query in [HISTORY, SUMMARY] {
        let response = app.graphql(query, json!({ "id": nobody })).await;
        assert_eq!(
            error_codes(&response),
            vec!["NOT_FOUND".to_string()],
            "{response:#}"
        );
    }
    app.stop().await;

    // The export holds the same entries the query showed, as of the same position.
    let ledger = Ledger::open(&database_url(&dir.path().join("autosalon.db")))
        .await
        .unwrap();
    let file = dir.path().join("history.jsonl");
    let exported = autosalon::export::export(
        ledger.db.pool(),
        "customer_history",
        autosalon::export::ExportFormat::Jsonl,
        Some(&file),
    )
    .await
    .unwrap();
    assert_eq!(exported.position, head);
    let text = std::fs::read_to_string(&file).unwrap();
    let exported: Vec<Value> = text
        .lines()
        .skip(1)
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|line| line["table"] == "customer_history" && line["row"]["customer_id"] == ANNA)
        .map(|line| {
            let row = &line["row"];
            json!({ "position": row["position"], "recordedAt": row["recorded_at"],
                    "aggregateType": row["aggregate_type"], "aggregateId": row["aggregate_id"],
                    "eventType": row["event_type"], "summary": row["summary"] })
        })
        .collect();
    assert_eq!(exported, entries);
}

/// A deterministic pseudo-random choice per customer (a fixed-seed linear congruential generator).
fn choices(seed: u64, count: usize) -> Vec<u64> {
    let mut state = seed;
    (0..count)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            state >> 33
        })
        .collect()
}

fn nth_id(kind: u32, n: usize) -> String {
    format!("0193a4b0-0000-7000-8{kind:03x}-{n:012x}")
}

#[tokio::test]
async fn over_many_interleaved_customers_histories_follow_the_rule_and_a_rebuild_changes_nothing() {
    const CUSTOMERS: usize = 12;
    let dir = temp_dir();
    let path = dir.path().join("autosalon.db");
    let app = spawn_app(&dir).await;
    let picks = choices(2, CUSTOMERS);
    // The seed is chosen so that every path below is taken at least once.
    let paths: std::collections::BTreeSet<u64> = picks.iter().map(|p| p % 4).collect();
    assert_eq!(paths.len(), 4);
    assert!(picks.iter().any(|p| p % 8 == 0) && picks.iter().any(|p| p % 2 == 0 && p % 8 != 0));
    let customer = |n: usize| nth_id(1, n);
    let car = |n: usize| nth_id(2, n);
    let order = |n: usize| nth_id(3, n);
    let payment = |n: usize| nth_id(4, n);
    let booking = |n: usize| nth_id(5, n);
    let day = (Utc::now() + Duration::days(20))
        .format("%Y-%m-%d")
        .to_string();

    // Each round touches every customer in turn, so their events interleave in the log.
    for n in 0..CUSTOMERS {
        let mut input = customer_input(&customer(n));
        input["email"] = json!(format!("c{n}@example.ru"));
        app.ok(REGISTER_CUSTOMER, json!({ "input": input })).await;
        let vin = format!("XTA2109900{n:07}");
        app.ok(
            STOCK_VEHICLE,
            json!({ "input": vehicle_input(&car(n), &vin, "Vesta", "1500000.00") }),
        )
        .await;
    }
    for (n, pick) in picks.iter().copied().enumerate() {
        app.ok(
            DRAFT_ORDER,
            json!({ "input": { "id": order(n), "customerId": customer(n), "vehicleId": car(n) } }),
        )
        .await;
        if pick % 2 == 0 {
            app.ok(
                "mutation($id: UUID!, $customer: UUID!, $car: UUID!, $mechanic: String!, $start: DateTime!, $end: DateTime!) {
                    bookService(input: { id: $id, customerId: $customer, vehicleId: $car, mechanicId: $mechanic,
                      kind: REPAIR, start: $start, end: $end }) { booking { id } } }",
                json!({ "id": booking(n), "customer": customer(n), "car": car(n), "mechanic": format!("M-{n}"),
                        "start": format!("{day}T07:00:00Z"), "end": format!("{day}T08:00:00Z") }),
            )
            .await;
        }
    }
    for (n, pick) in picks.iter().copied().enumerate() {
        if pick % 4 == 0 {
            app.ok(
                CANCEL_ORDER,
                json!({ "id": order(n), "reason": "changed their mind" }),
            )
            .await;
        } else {
            app.ok(CONFIRM_ORDER, json!({ "id": order(n) })).await;
        }
        if pick % 3 == 1 {
            app.ok(
                "mutation($id: UUID!) { changeCustomerContactDetails(id: $id, input: { address: \"Kazan, Baumana 5\" }) { position } }",
                json!({ "id": customer(n) }),
            )
            .await;
        }
    }
    let mut paid_minor = [0i64; CUSTOMERS];
    let mut completed = [0i64; CUSTOMERS];
    let mut scheduled = [0i64; CUSTOMERS];
    for (n, pick) in picks.iter().copied().enumerate() {
        let key = |step: &str| format!("{step}-{n}");
        match pick % 4 {
            1 => {
                app.ok(PAY_BY_CARD, json!({ "id": payment(n), "order": order(n), "amount": "500000.00", "key": key("init") })).await;
                app.ok(
                    SETTLE_PAYMENT,
                    json!({ "id": payment(n), "k1": key("gw"), "k2": key("done") }),
                )
                .await;
                app.ok(
                    "mutation($id: UUID!, $key: String!) { refundPayment(idempotencyKey: $key, input: { paymentId: $id,
                        amount: { amount: \"100000.00\" }, reason: \"goodwill\" }) { position } }",
                    json!({ "id": payment(n), "key": key("refund") }),
                )
                .await;
                paid_minor[n] = 40_000_000;
            }
            2 => {
                app.ok(PAY_BY_CARD, json!({ "id": payment(n), "order": order(n), "amount": "1500000.00", "key": key("init") })).await;
                app.ok(
                    SETTLE_PAYMENT,
                    json!({ "id": payment(n), "k1": key("gw"), "k2": key("done") }),
                )
                .await;
                app.ok(
                    "mutation($id: UUID!, $key: String!) { handOverOrder(id: $id, idempotencyKey: $key) { position } }",
                    json!({ "id": order(n), "key": key("handover") }),
                )
                .await;
                paid_minor[n] = 150_000_000;
                completed[n] = 1;
            }
            3 => {
                app.ok(PAY_BY_CARD, json!({ "id": payment(n), "order": order(n), "amount": "700000.00", "key": key("init") })).await;
                app.ok(
                    "mutation($id: UUID!, $key: String!) { failPayment(id: $id, reason: \"card declined\", idempotencyKey: $key) { position } }",
                    json!({ "id": payment(n), "key": key("fail") }),
                )
                .await;
                app.ok(
                    CANCEL_ORDER,
                    json!({ "id": order(n), "reason": "no funds" }),
                )
                .await;
            }
            _ => {}
        }
        if pick % 2 == 0 {
            if pick % 8 == 0 {
                app.ok(
                    "mutation($id: UUID!) { cancelBooking(id: $id, reason: \"car sold\") { position } }",
                    json!({ "id": booking(n) }),
                )
                .await;
            } else {
                app.ok(
                    "mutation($id: UUID!, $mechanic: String!, $start: DateTime!, $end: DateTime!) {
                        rescheduleBooking(id: $id, mechanicId: $mechanic, start: $start, end: $end) { position } }",
                    json!({ "id": booking(n), "mechanic": format!("M-{n}"),
                            "start": format!("{day}T10:00:00Z"), "end": format!("{day}T11:00:00Z") }),
                )
                .await;
                scheduled[n] = 1;
            }
        }
    }
    app.stop().await;

    let ledger = Ledger::open(&database_url(&path)).await.unwrap();
    ledger.projections.catch_up_all().await.unwrap();
    let expected = expected_histories(&ledger).await;
    assert_eq!(expected.len(), CUSTOMERS);
    for n in 0..CUSTOMERS {
        let id = customer(n);
        assert_eq!(
            history_rows(&ledger, &id).await,
            expected[&id],
            "customer {n}"
        );
        let counts: (i64, i64, i64) = sqlx::query_as(
            "SELECT orders_count, orders_completed, scheduled_bookings FROM customer_summary WHERE customer_id = $1",
        )
        .bind(&id)
        .fetch_one(ledger.db.pool())
        .await
        .unwrap();
        assert_eq!(counts, (1, completed[n], scheduled[n]), "customer {n}");
        let paid: Option<i64> = sqlx::query_scalar(
            "SELECT total_paid_minor FROM customer_summary_money WHERE customer_id = $1 AND currency = 'RUB'",
        )
        .bind(&id)
        .fetch_optional(ledger.db.pool())
        .await
        .unwrap();
        assert_eq!(paid.unwrap_or(0), paid_minor[n], "customer {n}");
    }
    let live = dump(&ledger, "customer_history").await;
    ledger
        .projections
        .rebuild("customer_history", |_, _| {})
        .await
        .unwrap();
    assert_eq!(dump(&ledger, "customer_history").await, live);
}
