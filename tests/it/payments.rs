//! Paying for an order over HTTP: in parts, by card and bank transfer; refunds; handover; the card
//! number that must never be stored; idempotent retries of every payment mutation across a restart.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Value, json};

use crate::helpers::*;

const VEHICLE: &str = "0193a4b0-0000-7000-8000-000000000001";
const CUSTOMER: &str = "0193a4b0-0000-7000-8000-0000000000c1";
const ORDER: &str = "0193a4b0-0000-7000-8000-0000000000d1";
const P1: &str = "0193a4b0-0000-7000-8000-0000000000f1";
const P2: &str = "0193a4b0-0000-7000-8000-0000000000f2";
const P3: &str = "0193a4b0-0000-7000-8000-0000000000f3";
const P4: &str = "0193a4b0-0000-7000-8000-0000000000f4";
const R1: &str = "0193a4b0-0000-7000-8000-0000000000a1";

const INITIATE: &str = "mutation Initiate($input: InitiatePaymentInput!, $key: String!) {
  initiatePayment(input: $input, idempotencyKey: $key) {
    position replayed payment { id status method amount { amount currency } cardLast4 customerId }
  }
}";
const PROCESS: &str = "mutation Process($id: UUID!, $gw: String!, $key: String!) {
  startPaymentProcessing(id: $id, gatewayTransactionId: $gw, idempotencyKey: $key) {
    position replayed payment { status gatewayTransactionId }
  }
}";
const COMPLETE: &str = "mutation Complete($id: UUID!, $key: String!) {
  completePayment(id: $id, idempotencyKey: $key) {
    position replayed
    payment { status recordedOnOrderAt order { status paidTotal { amount } balanceDue { amount } } }
  }
}";
const REFUND: &str = "mutation Refund($input: RefundPaymentInput!, $key: String!) {
  refundPayment(input: $input, idempotencyKey: $key) {
    position replayed
    payment {
      status refundedTotal { amount } netPaid { amount }
      refunds { id amount { amount } reason recordedOnOrderAt }
      order { status paidTotal { amount } balanceDue { amount } }
    }
  }
}";
const FAIL: &str = "mutation Fail($id: UUID!, $reason: String!, $key: String!) {
  failPayment(id: $id, reason: $reason, idempotencyKey: $key) { position replayed payment { status failureReason } }
}";
const CANCEL: &str = "mutation CancelPayment($id: UUID!, $reason: String!, $key: String!) {
  cancelPayment(id: $id, reason: $reason, idempotencyKey: $key) { position replayed payment { status cancellationReason } }
}";
const HAND_OVER: &str = "mutation HandOver($id: UUID!, $key: String!) {
  handOverOrder(id: $id, idempotencyKey: $key) {
    position replayed order { status handedOverAt vehicle { status reservedForOrderId } }
  }
}";
const CANCEL_ORDER_WITH_REASON: &str = "mutation CancelOrder($id: UUID!) {
  cancelOrder(id: $id, reason: \"customer walked away\") { order { status vehicle { status } } }
}";

/// The README's order: the Vesta for Anna at 5% off, confirmed; total 1 425 000.00.
async fn confirmed_order(app: &TestApp) {
    app.ok(
        STOCK_VEHICLE,
        json!({ "input": vehicle_input(VEHICLE, "XTA210990Y2766389", "Vesta", "1500000.00") }),
    )
    .await;
    app.ok(
        REGISTER_CUSTOMER,
        json!({ "input": customer_input(CUSTOMER) }),
    )
    .await;
    app.ok(
        DRAFT_ORDER,
        json!({ "input": { "id": ORDER, "customerId": CUSTOMER, "vehicleId": VEHICLE } }),
    )
    .await;
    app.ok(
        &format!(
            "mutation {{ applyOrderDiscount(id: \"{ORDER}\", discount: {{ percent: \"5\" }}) {{ position }} }}"
        ),
        json!({}),
    )
    .await;
    let confirmed = app.ok(CONFIRM_ORDER, json!({ "id": ORDER })).await;
    assert_eq!(confirmed["confirmOrder"]["order"]["status"], "CONFIRMED");
}

fn initiate_vars(id: &str, amount: &str, method: &str, card: Option<&str>, key: &str) -> Value {
    json!({
        "input": { "id": id, "orderId": ORDER, "amount": { "amount": amount }, "method": method, "cardLast4": card },
        "key": key
    })
}

/// Initiates and completes a cash payment.
async fn pay_cash(app: &TestApp, id: &str, amount: &str) -> Value {
    app.ok(
        INITIATE,
        initiate_vars(id, amount, "CASH", None, &format!("init-{id}")),
    )
    .await;
    app.ok(
        COMPLETE,
        json!({ "id": id, "key": format!("complete-{id}") }),
    )
    .await["completePayment"]
        .clone()
}

async fn order(app: &TestApp) -> Value {
    app.ok(
        &format!(
            "{{ order(id: \"{ORDER}\") {{ status paidTotal {{ amount }} balanceDue {{ amount }} paidAt handedOverAt
                 payments {{ id method status amount {{ amount }} }} vehicle {{ status }} }} }}"
        ),
        json!({}),
    )
    .await["order"]
    .clone()
}

#[tokio::test]
async fn an_order_paid_by_card_and_bank_transfer_is_paid_then_handed_over_and_its_car_sold() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    confirmed_order(&app).await;

    let card = app
        .ok(
            INITIATE,
            initiate_vars(P1, "425000.00", "CARD", Some("4242"), "card-1"),
        )
        .await["initiatePayment"]
        .clone();
    assert_eq!(card["payment"]["status"], "PENDING");
    assert_eq!(card["payment"]["method"], "CARD");
    assert_eq!(card["payment"]["cardLast4"], "4242");
    assert_eq!(card["payment"]["customerId"], CUSTOMER);
    let processing = app
        .ok(
            PROCESS,
            json!({ "id": P1, "gw": "gw-0001", "key": "card-1-gw" }),
        )
        .await;
    assert_eq!(
        processing["startPaymentProcessing"]["payment"],
        json!({ "status": "PROCESSING", "gatewayTransactionId": "gw-0001" })
    );
    let completed = app
        .ok(COMPLETE, json!({ "id": P1, "key": "card-1-done" }))
        .await["completePayment"]["payment"]
        .clone();
    assert_eq!(completed["status"], "COMPLETED");
    assert!(completed["recordedOnOrderAt"].is_string());
    assert_eq!(
        completed["order"],
        json!({ "status": "CONFIRMED", "paidTotal": { "amount": "425000.00" }, "balanceDue": { "amount": "1000000.00" } })
    );

    // A bank transfer cannot complete before the gateway has it, nor pay more than the balance.
    let too_much = app
        .graphql(
            INITIATE,
            initiate_vars(P2, "1000000.01", "BANK_TRANSFER", None, "bank-too-much"),
        )
        .await;
    assert_eq!(error_codes(&too_much), vec!["PAYMENT_EXCEEDS_BALANCE"]);
    app.ok(
        INITIATE,
        initiate_vars(P2, "1000000.00", "BANK_TRANSFER", None, "bank-1"),
    )
    .await;
    let early = app
        .graphql(COMPLETE, json!({ "id": P2, "key": "bank-1-early" }))
        .await;
    assert_eq!(error_codes(&early), vec!["INVALID_PAYMENT_TRANSITION"]);
    app.ok(
        PROCESS,
        json!({ "id": P2, "gw": "bank-ref-77", "key": "bank-1-gw" }),
    )
    .await;
    let paid = app
        .ok(COMPLETE, json!({ "id": P2, "key": "bank-1-done" }))
        .await["completePayment"]["payment"]["order"]
        .clone();
    assert_eq!(
        paid,
        json!({ "status": "PAID", "paidTotal": { "amount": "1425000.00" }, "balanceDue": { "amount": "0.00" } })
    );
    let order_now = order(&app).await;
    assert!(order_now["paidAt"].is_string());
    assert_eq!(
        order_now["payments"],
        json!([
            { "id": P1, "method": "CARD", "status": "COMPLETED", "amount": { "amount": "425000.00" } },
            { "id": P2, "method": "BANK_TRANSFER", "status": "COMPLETED", "amount": { "amount": "1000000.00" } }
        ])
    );
    let listed = app
        .ok(
            &format!(
                "{{ payments(filter: {{ orderId: \"{ORDER}\", method: BANK_TRANSFER }}, first: 1) {{
                     totalCount edges {{ node {{ id }} }} pageInfo {{ hasNextPage }} }}
                    all: payments(filter: {{ customerId: \"{CUSTOMER}\", status: COMPLETED }}) {{ totalCount }} }}"
            ),
            json!({}),
        )
        .await;
    assert_eq!(listed["payments"]["totalCount"], 1);
    assert_eq!(listed["payments"]["edges"][0]["node"]["id"], P2);
    assert_eq!(listed["all"]["totalCount"], 2);

    let handed = app
        .ok(HAND_OVER, json!({ "id": ORDER, "key": "handover-d1" }))
        .await["handOverOrder"]["order"]
        .clone();
    assert_eq!(handed["status"], "COMPLETED");
    assert!(handed["handedOverAt"].is_string());
    assert_eq!(
        handed["vehicle"],
        json!({ "status": "SOLD", "reservedForOrderId": ORDER })
    );
    // Handing over again (another key) finds the car sold and writes nothing.
    let before = app.event_count().await;
    app.ok(
        HAND_OVER,
        json!({ "id": ORDER, "key": "handover-d1-again" }),
    )
    .await;
    assert_eq!(app.event_count().await, before);

    let unknown = app
        .graphql(
            "{ payment(id: \"0193a4b0-0000-7000-8000-00000000ffff\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(error_codes(&unknown), vec!["NOT_FOUND"]);
    app.stop().await;
}

#[tokio::test]
async fn refunds_never_exceed_what_was_paid_and_a_paid_order_is_cancelled_only_once_refunded() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    confirmed_order(&app).await;
    pay_cash(&app, P1, "425000.00").await;
    let paid = pay_cash(&app, P2, "1000000.00").await;
    assert_eq!(paid["payment"]["order"]["status"], "PAID");

    let before = app.event_count().await;
    let too_much = app
        .graphql(
            REFUND,
            json!({ "input": { "paymentId": P1, "refundId": R1, "amount": { "amount": "425000.01" }, "reason": "x" }, "key": "refund-too-much" }),
        )
        .await;
    assert_eq!(error_codes(&too_much), vec!["REFUND_EXCEEDS_PAID"]);
    assert_eq!(app.event_count().await, before, "nothing written");

    let cancel = app
        .graphql(CANCEL_ORDER_WITH_REASON, json!({ "id": ORDER }))
        .await;
    assert_eq!(error_codes(&cancel), vec!["REFUNDS_REQUIRED"]);

    let partial = app
        .ok(
            REFUND,
            json!({ "input": { "paymentId": P1, "refundId": R1, "amount": { "amount": "25000.00" }, "reason": "mats not fitted" }, "key": "refund-p1-mats" }),
        )
        .await["refundPayment"]["payment"]
        .clone();
    assert_eq!(partial["status"], "COMPLETED");
    assert_eq!(partial["refundedTotal"]["amount"], "25000.00");
    assert_eq!(partial["netPaid"]["amount"], "400000.00");
    assert_eq!(partial["refunds"][0]["id"], R1);
    assert!(partial["refunds"][0]["recordedOnOrderAt"].is_string());
    assert_eq!(
        partial["order"],
        json!({ "status": "CONFIRMED", "paidTotal": { "amount": "1400000.00" }, "balanceDue": { "amount": "25000.00" } })
    );
    let still = app
        .graphql(CANCEL_ORDER_WITH_REASON, json!({ "id": ORDER }))
        .await;
    assert_eq!(error_codes(&still), vec!["REFUNDS_REQUIRED"]);

    for (payment, amount) in [(P1, "400000.00"), (P2, "1000000.00")] {
        let refunded = app
            .ok(
                REFUND,
                json!({ "input": { "paymentId": payment, "amount": { "amount": amount }, "reason": "customer walked away" }, "key": format!("refund-all-{payment}") }),
            )
            .await["refundPayment"]["payment"]
            .clone();
        assert_eq!(refunded["status"], "REFUNDED");
    }
    assert_eq!(order(&app).await["paidTotal"]["amount"], "0.00");
    let cancelled = app
        .ok(CANCEL_ORDER_WITH_REASON, json!({ "id": ORDER }))
        .await;
    assert_eq!(
        cancelled["cancelOrder"]["order"],
        json!({ "status": "CANCELLED", "vehicle": { "status": "AVAILABLE" } })
    );
    app.stop().await;
}

/// A `Write` into a shared buffer, for capturing the server's log output.
#[derive(Clone, Default)]
pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Everything every server in this test binary logs, at every level, from the first call on.
///
/// A process-wide subscriber, because a thread-local one misses lines whenever another test
/// thread registers a log statement first.
pub(crate) fn server_logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Captured::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other test installs a global subscriber");
        logs
    })
}

#[tokio::test]
async fn a_card_number_is_refused_and_never_answered_stored_or_logged() {
    let logs = server_logs();

    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    confirmed_order(&app).await;
    let before = app.event_count().await;
    let number = "4111111111111111";
    let mut answers = Vec::new();
    for card in [number, "4111 1111 1111 1111", "4111-1111-1111-1111"] {
        let response = app
            .graphql(
                INITIATE,
                initiate_vars(P1, "1000.00", "CARD", Some(card), "card-number"),
            )
            .await;
        assert_eq!(
            error_codes(&response),
            vec!["CARD_NUMBER_REFUSED"],
            "{card}"
        );
        answers.push(response);
    }
    // Typed into the query itself, as a string and as a number.
    for literal in [format!("\"{number}\""), number.to_string()] {
        let query = format!(
            "mutation {{ initiatePayment(idempotencyKey: \"inline\", input: {{ orderId: \"{ORDER}\",
                amount: {{ amount: \"1000.00\" }}, method: CARD, cardLast4: {literal} }}) {{ position }} }}"
        );
        let response = app.graphql(&query, json!({})).await;
        assert!(response.get("errors").is_some(), "{response}");
        answers.push(response);
    }
    for wrong in ["424", "42424", "42a4"] {
        let response = app
            .graphql(
                INITIATE,
                initiate_vars(P1, "1000.00", "CARD", Some(wrong), "card-short"),
            )
            .await;
        assert_eq!(error_codes(&response), vec!["VALIDATION"], "{wrong}");
    }
    assert_eq!(app.event_count().await, before, "nothing written");

    let events = app
        .ok(
            "{ events(first: 200) { edges { node { payload metadata } } } }",
            json!({}),
        )
        .await;
    let digits = |text: &str| text.replace([' ', '-'], "").contains(number);
    assert!(!digits(&events.to_string()), "a card number in the log");
    for answer in &answers {
        assert!(!digits(&answer.to_string()), "echoed: {answer}");
    }
    app.stop().await;
    let logged = logs.text();
    assert!(
        logged.contains("serving GraphQL"),
        "the server's log was captured"
    );
    assert!(!digits(&logged), "a card number in the server log");
}

/// One payment mutation's first call and a call with the same key but another input.
struct Keyed {
    name: &'static str,
    query: &'static str,
    vars: Value,
    other: Value,
}

impl Keyed {
    fn new(name: &'static str, query: &'static str, vars: Value, other: Value) -> Self {
        Self {
            name,
            query,
            vars,
            other,
        }
    }

    /// The same key and input again: the first answer, nothing written; another input: refused.
    async fn retry(&self, app: &TestApp, first_position: &Value) {
        let again = app.ok(self.query, self.vars.clone()).await[self.name].clone();
        assert_eq!(again["replayed"], true, "{}", self.name);
        assert_eq!(&again["position"], first_position, "{}", self.name);
        let reused = app.graphql(self.query, self.other.clone()).await;
        assert_eq!(
            error_codes(&reused),
            vec!["IDEMPOTENCY_KEY_REUSED"],
            "{}",
            self.name
        );
    }
}

#[tokio::test]
async fn every_payment_mutation_answers_its_retry_once_even_across_a_restart() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    confirmed_order(&app).await;
    let steps = vec![
        Keyed::new(
            "initiatePayment",
            INITIATE,
            initiate_vars(P1, "425000.00", "CARD", Some("4242"), "k-init"),
            initiate_vars(P1, "425000.01", "CARD", Some("4242"), "k-init"),
        ),
        Keyed::new(
            "startPaymentProcessing",
            PROCESS,
            json!({ "id": P1, "gw": "gw-1", "key": "k-process" }),
            json!({ "id": P1, "gw": "gw-2", "key": "k-process" }),
        ),
        Keyed::new(
            "completePayment",
            COMPLETE,
            json!({ "id": P1, "key": "k-complete" }),
            json!({ "id": P2, "key": "k-complete" }),
        ),
        Keyed::new(
            "refundPayment",
            REFUND,
            json!({ "input": { "paymentId": P1, "refundId": R1, "amount": { "amount": "25000.00" }, "reason": "mats" }, "key": "k-refund" }),
            json!({ "input": { "paymentId": P1, "refundId": R1, "amount": { "amount": "1.00" }, "reason": "mats" }, "key": "k-refund" }),
        ),
        Keyed::new(
            "initiatePayment",
            INITIATE,
            initiate_vars(P2, "100.00", "CASH", None, "k-init-2"),
            initiate_vars(P2, "100.00", "BANK_TRANSFER", None, "k-init-2"),
        ),
        Keyed::new(
            "failPayment",
            FAIL,
            json!({ "id": P2, "reason": "counterfeit notes", "key": "k-fail" }),
            json!({ "id": P2, "reason": "other", "key": "k-fail" }),
        ),
        Keyed::new(
            "initiatePayment",
            INITIATE,
            initiate_vars(P3, "100.00", "BANK_TRANSFER", None, "k-init-3"),
            initiate_vars(P3, "200.00", "BANK_TRANSFER", None, "k-init-3"),
        ),
        Keyed::new(
            "cancelPayment",
            CANCEL,
            json!({ "id": P3, "reason": "pays by card", "key": "k-cancel" }),
            json!({ "id": P3, "reason": "other", "key": "k-cancel" }),
        ),
    ];
    let mut positions = Vec::new();
    for step in &steps {
        let first = app.ok(step.query, step.vars.clone()).await[step.name].clone();
        assert_eq!(first["replayed"], false, "{}", step.name);
        step.retry(&app, &first["position"]).await;
        positions.push(first["position"].clone());
    }
    // The rest of the balance in cash, then the handover.
    let rest = pay_cash(&app, P4, "1025000.00").await;
    assert_eq!(rest["payment"]["order"]["status"], "PAID");
    let hand_over = Keyed::new(
        "handOverOrder",
        HAND_OVER,
        json!({ "id": ORDER, "key": "k-handover" }),
        json!({ "id": P4, "key": "k-handover" }),
    );
    let first = app.ok(hand_over.query, hand_over.vars.clone()).await["handOverOrder"].clone();
    assert_eq!(first["order"]["vehicle"]["status"], "SOLD");
    hand_over.retry(&app, &first["position"]).await;
    let written = app.event_count().await;

    app.stop().await;
    let app = spawn_app(&dir).await;
    for (step, position) in steps.iter().zip(&positions) {
        step.retry(&app, position).await;
    }
    hand_over.retry(&app, &first["position"]).await;
    assert_eq!(app.event_count().await, written, "no retry wrote anything");

    // A mutation that moves money cannot be sent without a key.
    let keyless = app
        .graphql(
            &format!("mutation {{ completePayment(id: \"{P1}\") {{ position }} }}"),
            json!({}),
        )
        .await;
    assert!(keyless.get("errors").is_some());
    app.stop().await;
}

/// Writes one command straight to the store while the server is stopped: the first step of an
/// operation whose process died before its second step.
macro_rules! first_step_only {
    ($dir:expr, $aggregate:ty, $id:expr, $command:expr) => {{
        let ledger = autosalon::Ledger::open(&database_url(&$dir.path().join("autosalon.db")))
            .await
            .unwrap();
        let sender = commands::Sender::new(&ledger.db, &ledger.upcasters);
        let cqrs = ledger.db.framework::<$aggregate>(&ledger.upcasters, ());
        let ctx = commands::RequestContext::default();
        sender
            .execute(
                &cqrs,
                $id.parse().unwrap(),
                $command,
                commands::Call::new(&ctx, "Crashed", None),
            )
            .await
            .unwrap();
        ledger.db.close().await;
    }};
}

/// Waits (up to five seconds) until every projector has applied every event.
async fn caught_up(app: &TestApp) {
    for _ in 0..100 {
        let status = app.ok("{ projections { eventsBehind } }", json!({})).await;
        let behind: i64 = status["projections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["eventsBehind"].as_i64().unwrap())
            .sum();
        if behind == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the read models did not catch up");
}

#[tokio::test]
async fn a_completed_payment_its_order_never_recorded_is_recorded_by_a_retry() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    confirmed_order(&app).await;
    app.ok(
        INITIATE,
        initiate_vars(P1, "1425000.00", "CASH", None, "cash-all"),
    )
    .await;
    app.stop().await;
    first_step_only!(
        dir,
        aggregates::payment::Payment,
        P1,
        aggregates::payment::PaymentCommand::Complete {
            completed_at: "2026-11-22T10:00:00Z".parse().unwrap()
        }
    );

    let app = spawn_app(&dir).await;
    caught_up(&app).await;
    let visible = app
        .ok(
            &format!("{{ payment(id: \"{P1}\") {{ status recordedOnOrderAt }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(
        visible["payment"],
        json!({ "status": "COMPLETED", "recordedOnOrderAt": null })
    );
    assert_eq!(order(&app).await["status"], "CONFIRMED");
    let repaired = app
        .ok(
            &format!(
                "mutation {{ recordPaymentOnOrder(id: \"{P1}\", idempotencyKey: \"repair-p1\") {{
                     replayed payment {{ recordedOnOrderAt order {{ status paidTotal {{ amount }} }} }} }} }}"
            ),
            json!({}),
        )
        .await["recordPaymentOnOrder"]
        .clone();
    assert_eq!(repaired["replayed"], false);
    assert!(repaired["payment"]["recordedOnOrderAt"].is_string());
    assert_eq!(
        repaired["payment"]["order"],
        json!({ "status": "PAID", "paidTotal": { "amount": "1425000.00" } })
    );
    // Completing it again records nothing twice.
    let before = app.event_count().await;
    app.ok(COMPLETE, json!({ "id": P1, "key": "cash-all-done" }))
        .await;
    assert_eq!(app.event_count().await, before);
    app.stop().await;
}

#[tokio::test]
async fn a_handover_whose_car_was_not_sold_is_finished_by_retrying_it() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    confirmed_order(&app).await;
    pay_cash(&app, P1, "1425000.00").await;
    // Nobody can take the car of a paid order away.
    let release = app
        .graphql(
            &format!("mutation {{ releaseVehicleReservation(id: \"{VEHICLE}\") {{ position }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(error_codes(&release), vec!["VALIDATION"]);
    app.stop().await;
    first_step_only!(
        dir,
        aggregates::order::Order,
        ORDER,
        aggregates::order::OrderCommand::HandOver {
            handed_over_at: "2026-11-22T10:00:00Z".parse().unwrap()
        }
    );

    let app = spawn_app(&dir).await;
    caught_up(&app).await;
    let half = order(&app).await;
    assert_eq!(half["status"], "COMPLETED");
    assert_eq!(half["vehicle"]["status"], "RESERVED");
    let finished = app
        .ok(HAND_OVER, json!({ "id": ORDER, "key": "handover-retry" }))
        .await["handOverOrder"]
        .clone();
    assert_eq!(finished["order"]["status"], "COMPLETED");
    assert_eq!(finished["order"]["vehicle"]["status"], "SOLD");
    let again = app
        .ok(HAND_OVER, json!({ "id": ORDER, "key": "handover-retry" }))
        .await["handOverOrder"]
        .clone();
    assert_eq!(again["replayed"], true);
    assert_eq!(again["position"], finished["position"]);
    app.stop().await;
}

#[tokio::test]
async fn a_gateway_payment_beyond_the_balance_completes_visibly_unrecorded_and_is_refunded() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    confirmed_order(&app).await;
    // Two card payments for most of the balance, both started while each still fitted.
    for (id, gw) in [(P1, "gw-a"), (P2, "gw-b")] {
        app.ok(
            INITIATE,
            initiate_vars(
                id,
                "1000000.00",
                "CARD",
                Some("4242"),
                &format!("init-{id}"),
            ),
        )
        .await;
        app.ok(
            PROCESS,
            json!({ "id": id, "gw": gw, "key": format!("gw-{id}") }),
        )
        .await;
    }
    app.ok(COMPLETE, json!({ "id": P1, "key": "done-p1" }))
        .await;
    // The gateway charged the customer twice: the second completion is recorded as a fact, and
    // the order's refusal is answered.
    let second = app
        .graphql(COMPLETE, json!({ "id": P2, "key": "done-p2" }))
        .await;
    assert_eq!(error_codes(&second), vec!["PAYMENT_EXCEEDS_BALANCE"]);
    // An error answer does not wait for the read models.
    caught_up(&app).await;
    let shown = app
        .ok(
            &format!("{{ payment(id: \"{P2}\") {{ status recordedOnOrderAt }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(
        shown["payment"],
        json!({ "status": "COMPLETED", "recordedOnOrderAt": null })
    );
    let unrecorded = app
        .graphql(
            &format!(
                "mutation {{ recordPaymentOnOrder(id: \"{P2}\", idempotencyKey: \"rec-p2\") {{ position }} }}"
            ),
            json!({}),
        )
        .await;
    assert_eq!(error_codes(&unrecorded), vec!["PAYMENT_EXCEEDS_BALANCE"]);

    // The way back: refund it; the order, which never had that money, is untouched.
    let refunded = app
        .ok(
            REFUND,
            json!({ "input": { "paymentId": P2, "amount": { "amount": "1000000.00" }, "reason": "charged twice" }, "key": "refund-p2" }),
        )
        .await["refundPayment"]["payment"]
        .clone();
    assert_eq!(refunded["status"], "REFUNDED");
    assert_eq!(refunded["refunds"][0]["recordedOnOrderAt"], Value::Null);
    assert_eq!(
        refunded["order"],
        json!({ "status": "CONFIRMED", "paidTotal": { "amount": "1000000.00" }, "balanceDue": { "amount": "425000.00" } })
    );
    app.stop().await;
}

#[tokio::test]
async fn refunds_made_before_a_late_recording_are_not_taken_off_the_order_twice() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    confirmed_order(&app).await;
    for (id, gw) in [(P1, "gw-a"), (P2, "gw-b")] {
        let vars = initiate_vars(
            id,
            "1000000.00",
            "CARD",
            Some("4242"),
            &format!("init-{id}"),
        );
        app.ok(INITIATE, vars).await;
        app.ok(
            PROCESS,
            json!({ "id": id, "gw": gw, "key": format!("gw-{id}") }),
        )
        .await;
    }
    app.ok(COMPLETE, json!({ "id": P1, "key": "done-p1" }))
        .await;
    // Charged beyond the balance: completed, not recorded on the order.
    let second = app
        .graphql(COMPLETE, json!({ "id": P2, "key": "done-p2" }))
        .await;
    assert_eq!(error_codes(&second), vec!["PAYMENT_EXCEEDS_BALANCE"]);
    // Part of it goes back before the order records it; the rest then fits the balance.
    app.ok(
        REFUND,
        json!({ "input": { "paymentId": P2, "amount": { "amount": "700000.00" }, "reason": "overcharged" }, "key": "refund-p2-a" }),
    )
    .await;
    app.ok(
        &format!("mutation {{ recordPaymentOnOrder(id: \"{P2}\", idempotencyKey: \"rec-p2\") {{ position }} }}"),
        json!({}),
    )
    .await;
    // A later refund is taken off the order once, and the earlier one is not taken off again.
    let later = app
        .ok(
            REFUND,
            json!({ "input": { "paymentId": P2, "amount": { "amount": "100000.00" }, "reason": "goodwill" }, "key": "refund-p2-b" }),
        )
        .await["refundPayment"]["payment"]["order"]
        .clone();
    assert_eq!(
        later["paidTotal"],
        json!({ "amount": "1200000.00" }),
        "{later}"
    );
    assert_eq!(later["status"], "CONFIRMED");
    app.stop().await;
}

#[tokio::test]
async fn a_loan_disbursement_is_a_credit_payment_recorded_once_on_its_order() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    confirmed_order(&app).await;
    app.stop().await;

    let ledger = autosalon::Ledger::open(&database_url(&dir.path().join("autosalon.db")))
        .await
        .unwrap();
    let payments = commands::Payments::new(
        ledger.db.clone(),
        ledger.upcasters.clone(),
        Arc::new(commands::clock::SystemClock),
        Arc::new(commands::clock::UuidV7),
    );
    let ctx = commands::RequestContext::default();
    let loan: uuid::Uuid = "0193a4b0-0000-7000-8000-0000000000b1".parse().unwrap();
    let amount = aggregates::money::Money::new(
        "1425000.00".parse().unwrap(),
        aggregates::money::Currency::RUB,
    )
    .unwrap();
    let key = commands::Idempotency {
        key: "disburse-b1".into(),
        fingerprint: "loan b1 for d1".into(),
    };
    let disburse = |key| {
        payments.record_credit_disbursement(
            &ctx,
            P1.parse().unwrap(),
            ORDER.parse().unwrap(),
            loan,
            amount,
            key,
        )
    };
    let first = disburse(Some(&key)).await.unwrap();
    assert!(!first.replayed);
    let retry = disburse(Some(&key)).await.unwrap();
    assert!(retry.replayed);
    assert_eq!(retry.position, first.position);
    // Without the key, the disbursement is recognised by its payment id and nothing is added.
    let again = disburse(None).await.unwrap();
    assert_eq!(again.position, first.position);
    ledger.db.close().await;

    let app = spawn_app(&dir).await;
    caught_up(&app).await;
    let paid = order(&app).await;
    assert_eq!(paid["status"], "PAID");
    assert_eq!(
        paid["payments"],
        json!([{ "id": P1, "method": "CREDIT", "status": "COMPLETED", "amount": { "amount": "1425000.00" } }])
    );
    let credit = app
        .ok(
            &format!("{{ payment(id: \"{P1}\") {{ loanId cardLast4 recordedOnOrderAt }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(
        credit["payment"]["loanId"],
        "0193a4b0-0000-7000-8000-0000000000b1"
    );
    assert!(credit["payment"]["recordedOnOrderAt"].is_string());
    app.stop().await;
}
