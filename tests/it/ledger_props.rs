//! Ledger properties over random scenarios driven through the real application.

/// Every row of the ledger's tables, as text, in a stable order.
pub async fn dump_ledger(ledger: &autosalon::Ledger) -> Vec<String> {
    let mut rows = Vec::new();
    for table in projections::Projector::tables(&projections::ledger::Ledger) {
        rows.extend(crate::rows::prefixed_rows(ledger.db.pool(), table).await);
    }
    rows
}

use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use proptest::prelude::*;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

/// What happens to one order in a scenario.
#[derive(Clone, Debug)]
struct Sale {
    /// List price, kopecks.
    price_minor: i64,
    discount_percent: Option<u32>,
    /// Financed: the down payment (per cent of the total, 20–60) is paid by card, the rest by a
    /// loan; otherwise the card pays everything, in one or two payments.
    loan: Option<u32>,
    two_card_payments: bool,
    /// Per cent of the first card payment refunded (then the order is not handed over).
    refund_percent: Option<u32>,
    /// Instalments repaid by the schedule, then an optional partial early repayment (roubles).
    instalments_repaid: usize,
    early_roubles: Option<i64>,
    /// A KASKO policy, its premium paid, then: 0 kept, 1 cancelled (refund), 2 a claim approved and
    /// paid out.
    policy: Option<u8>,
    /// A completed service with this cost (kopecks).
    service_minor: Option<i64>,
}

fn sale() -> impl Strategy<Value = Sale> {
    (
        (80_000_000i64..300_000_000, proptest::option::of(1u32..15)),
        (proptest::option::of(20u32..60), any::<bool>()),
        proptest::option::weighted(0.3, 1u32..=100),
        (0usize..3, proptest::option::of(1_000i64..50_000)),
        proptest::option::of(0u8..3),
        proptest::option::of(0i64..5_000_000),
    )
        .prop_map(
            |(
                (price_minor, discount_percent),
                (loan, two),
                refund,
                (repaid, early),
                policy,
                service,
            )| {
                Sale {
                    price_minor,
                    discount_percent,
                    loan,
                    two_card_payments: two,
                    refund_percent: refund,
                    instalments_repaid: repaid,
                    early_roubles: early,
                    policy,
                    service_minor: service,
                }
            },
        )
}

fn minor(value: &Value) -> i64 {
    let amount = Decimal::from_str_exact(value.as_str().unwrap()).unwrap();
    (amount * Decimal::from(100)).trunc().try_into().unwrap()
}

fn roubles(minor: i64) -> String {
    Decimal::new(minor, 2).to_string()
}

fn id(case: u128, sale: usize, what: u128) -> String {
    Uuid::from_u128(
        0x0193_a4b0_0000_7000_8000_0000_0000_0000 + (case << 32) + ((sale as u128) << 16) + what,
    )
    .to_string()
}

const PAY: &str = "mutation($id: UUID!, $order: UUID!, $amount: Decimal!, $key: String!) {
  initiatePayment(idempotencyKey: $key, input: { id: $id, orderId: $order, amount: { amount: $amount }, method: CARD, cardLast4: \"4242\" }) { position } }";
const COMPLETE: &str = "mutation($id: UUID!, $key: String!, $gwKey: String!) {
  startPaymentProcessing(id: $id, gatewayTransactionId: \"gw-1\", idempotencyKey: $gwKey) { position }
  completePayment(id: $id, idempotencyKey: $key) { position } }";

/// Runs one scenario against a fresh application, then checks the ledger against the scenario and
/// the other read models. `cash` tracks the money the scenario moved, in kopecks.
async fn run(case: u128, sales: Vec<Sale>) {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    let today = Utc::now().date_naive();
    let mut cash: i64 = 0;
    let mut scheduled: i64 = 0;
    for (n, sale) in sales.iter().enumerate() {
        let (car, customer, order) = (id(case, n, 1), id(case, n, 2), id(case, n, 3));
        let vin = format!("XTA2109900{:07}", case as usize * 10 + n);
        app.ok(
            STOCK_VEHICLE,
            json!({ "input": vehicle_input(&car, &vin, "Vesta", &roubles(sale.price_minor)) }),
        )
        .await;
        app.ok(
            REGISTER_CUSTOMER,
            json!({ "input": customer_input(&customer) }),
        )
        .await;
        app.ok(
            DRAFT_ORDER,
            json!({ "input": { "id": order, "customerId": customer, "vehicleId": car } }),
        )
        .await;
        if let Some(percent) = sale.discount_percent {
            app.ok(
                "mutation($id: UUID!, $p: Decimal!) { applyOrderDiscount(id: $id, discount: { percent: $p }) { position } }",
                json!({ "id": order, "p": percent.to_string() }),
            )
            .await;
        }
        let confirmed = app
            .ok(
                "mutation($id: UUID!) { confirmOrder(id: $id) { order { total { amount } } } }",
                json!({ "id": order }),
            )
            .await;
        let total = minor(&confirmed["confirmOrder"]["order"]["total"]["amount"]);
        let card_total = match sale.loan {
            Some(percent) => total * i64::from(percent) / 100,
            None => total,
        };
        let card_parts = if sale.two_card_payments && sale.loan.is_none() {
            vec![card_total / 3, card_total - card_total / 3]
        } else {
            vec![card_total]
        };
        for (k, part) in card_parts.iter().enumerate() {
            let payment = id(case, n, 10 + k as u128);
            app.ok(
                PAY,
                json!({ "id": payment, "order": order, "amount": roubles(*part), "key": format!("{payment}-i") }),
            )
            .await;
            app.ok(COMPLETE, json!({ "id": payment, "key": format!("{payment}-c"), "gwKey": format!("{payment}-g") }))
                .await;
            cash += part;
        }
        let loan = id(case, n, 4);
        let mut schedule = Vec::new();
        if sale.loan.is_some() {
            let first_due = (today + Duration::days(40)).format("%Y-%m-%d").to_string();
            app.ok(
                "mutation($id: UUID!, $order: UUID!, $down: Decimal!) { applyForLoan(input: { id: $id, orderId: $order,
                    downPayment: { amount: $down }, loanType: CAR_LOAN, termMonths: 36,
                    employmentStatus: EMPLOYED, monthlyIncome: { amount: \"5000000.00\" }, creditScore: 780 }) { position } }",
                json!({ "id": loan, "order": order, "down": roubles(card_total) }),
            )
            .await;
            let decided = app
                .ok(
                    "mutation($id: UUID!, $due: Date!, $key: String!) {
                       submitLoanApplication(id: $id) { position }
                       startLoanReview(id: $id) { position }
                       decideLoan(id: $id, input: { firstDueDate: $due, scheduleKind: ANNUITY }) {
                         loan { schedule { total { amount } } } }
                       disburseLoan(id: $id, idempotencyKey: $key) { loan { status } } }",
                    json!({ "id": loan, "due": first_due, "key": format!("{loan}-d") }),
                )
                .await;
            schedule = decided["decideLoan"]["loan"]["schedule"]
                .as_array()
                .unwrap()
                .iter()
                .map(|instalment| minor(&instalment["total"]["amount"]))
                .collect();
        }
        if let Some(percent) = sale.refund_percent {
            let payment = id(case, n, 10);
            let refund = (card_parts[0] * i64::from(percent) / 100).max(1);
            app.ok(
                "mutation($id: UUID!, $amount: Decimal!, $key: String!) { refundPayment(idempotencyKey: $key,
                    input: { paymentId: $id, amount: { amount: $amount }, reason: \"changed mind\" }) { position } }",
                json!({ "id": payment, "amount": roubles(refund), "key": format!("{payment}-r") }),
            )
            .await;
            cash -= refund;
        } else {
            app.ok(
                "mutation($id: UUID!, $key: String!) { handOverOrder(id: $id, idempotencyKey: $key) { position } }",
                json!({ "id": order, "key": format!("{order}-h") }),
            )
            .await;
        }
        if sale.loan.is_some() {
            for (k, amount) in schedule.iter().take(sale.instalments_repaid).enumerate() {
                app.ok(
                    "mutation($id: UUID!, $amount: Decimal!, $key: String!) {
                       recordLoanRepayment(id: $id, amount: { amount: $amount }, idempotencyKey: $key) { position } }",
                    json!({ "id": loan, "amount": roubles(*amount), "key": format!("{loan}-p{k}") }),
                )
                .await;
                cash += amount;
                scheduled += amount;
            }
            if let Some(early) = sale.early_roubles {
                let repaid = app
                    .ok(
                        "mutation($id: UUID!, $amount: Decimal!, $key: String!) {
                           repayLoanEarly(id: $id, idempotencyKey: $key, input: { kind: PARTIAL,
                             amount: { amount: $amount }, recalculation: SHORTEN_TERM }) { position } }",
                        json!({ "id": loan, "amount": roubles(early * 100), "key": format!("{loan}-e") }),
                    )
                    .await;
                assert!(repaid["repayLoanEarly"]["position"].is_i64());
            }
        }
        if let Some(then) = sale.policy {
            let policy = id(case, n, 5);
            app.ok(
                "mutation($id: UUID!, $customer: UUID!, $vehicle: UUID!) {
                   requestInsuranceQuote(input: { id: $id, product: KASKO, customerId: $customer, vehicleId: $vehicle,
                     driver: { age: 35, drivingExperienceYears: 12, region: MOSCOW, bonusMalusClass: 5 },
                     enginePowerHp: 120 }) { position } }",
                json!({ "id": policy, "customer": customer, "vehicle": car }),
            )
            .await;
            let issued = app
                .ok(
                    "mutation($id: UUID!) { selectInsuranceOffer(quoteId: $id, insurer: \"SEVER\") { policy { premium { amount } } } }",
                    json!({ "id": policy }),
                )
                .await;
            let premium = minor(&issued["selectInsuranceOffer"]["policy"]["premium"]["amount"]);
            app.ok(
                "mutation($id: UUID!, $amount: Decimal!, $key: String!) {
                   payPolicyPremium(id: $id, amount: { amount: $amount }, idempotencyKey: $key) { position } }",
                json!({ "id": policy, "amount": roubles(premium), "key": format!("{policy}-p") }),
            )
            .await;
            cash += premium;
            if then == 2 {
                let claim = id(case, n, 7);
                let claimed = app
                    .ok(
                        "mutation($p: UUID!, $c: UUID!, $on: Date!, $key: String!, $payKey: String!) {
                           fileInsuranceClaim(policyId: $p, input: { id: $c, incidentDate: $on, description: \"dented wing\",
                             claimedAmount: { amount: \"30000.00\" } }, idempotencyKey: $key) { position }
                           startInsuranceClaimReview(policyId: $p, claimId: $c) { position }
                           approveInsuranceClaim(policyId: $p, claimId: $c, amount: { amount: \"25000.00\" }) { position }
                           payInsuranceClaim(policyId: $p, claimId: $c, idempotencyKey: $payKey) { claim { status } } }",
                        json!({ "p": policy, "c": claim, "on": today.format("%Y-%m-%d").to_string(),
                                "key": format!("{claim}-f"), "payKey": format!("{claim}-p") }),
                    )
                    .await;
                assert_eq!(claimed["payInsuranceClaim"]["claim"]["status"], "PAID");
                cash -= 2_500_000;
            }
            if then == 1 {
                let cancelled = app
                    .ok(
                        "mutation($id: UUID!, $key: String!) { cancelPolicy(id: $id, reason: \"sold the car\", idempotencyKey: $key) {
                           policy { refund { amount } } } }",
                        json!({ "id": policy, "key": format!("{policy}-c") }),
                    )
                    .await;
                cash -= minor(&cancelled["cancelPolicy"]["policy"]["refund"]["amount"]);
            }
        }
        if let Some(cost) = sale.service_minor {
            let booking = id(case, n, 6);
            let day = (today + Duration::days(30 + n as i64))
                .format("%Y-%m-%d")
                .to_string();
            app.ok(
                "mutation($id: UUID!, $customer: UUID!, $vehicle: UUID!, $start: DateTime!, $end: DateTime!) {
                   bookService(input: { id: $id, customerId: $customer, vehicleId: $vehicle, mechanicId: \"M-007\",
                     kind: MAINTENANCE, start: $start, end: $end }) { position }
                   startBooking(id: $id) { position } }",
                json!({ "id": booking, "customer": customer, "vehicle": car,
                        "start": format!("{day}T07:00:00Z"), "end": format!("{day}T08:00:00Z") }),
            )
            .await;
            app.ok(
                "mutation($id: UUID!, $cost: Decimal!, $key: String!) { completeBooking(id: $id, idempotencyKey: $key,
                   input: { mileageKm: 900000, work: [\"oil change\"], cost: { amount: $cost } }) { position } }",
                json!({ "id": booking, "cost": roubles(cost), "key": format!("{booking}-c") }),
            )
            .await;
        }
    }
    app.stop().await;

    let ledger = autosalon::Ledger::open(&database_url(&dir.path().join("autosalon.db")))
        .await
        .unwrap();
    ledger.projections.catch_up_all().await.unwrap();
    let pool = ledger.db.pool();
    let unbalanced: Vec<i64> = sqlx::query_scalar(
        "SELECT position FROM ledger_lines GROUP BY position, currency
          HAVING sum(debit_minor) <> sum(credit_minor)",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(unbalanced, Vec::<i64>::new(), "every entry balances");
    let (debits, credits): (i64, i64) = sqlx::query_as(
        "SELECT CAST(coalesce(sum(debit_minor), 0) AS BIGINT), CAST(coalesce(sum(credit_minor), 0) AS BIGINT)
           FROM ledger_lines",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(debits, credits, "total debits equal total credits");

    let balances: BTreeMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
        "SELECT account_code, CAST(sum(debit_minor) - sum(credit_minor) AS BIGINT) FROM ledger_lines GROUP BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .collect();
    let balance = |code: &str| balances.get(code).copied().unwrap_or(0);
    let outstanding: i64 = sqlx::query_scalar(
        "SELECT CAST(coalesce(sum(outstanding_principal_minor), 0) AS BIGINT) FROM loans
          WHERE disbursed_on IS NOT NULL",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(
        balance("1200"),
        outstanding,
        "loan receivable is outstanding principal"
    );
    // What the loans received in all (principal and interest), by the loans read model: beyond
    // the scheduled repayments the scenario made, that is its early repayments.
    let received_by_loans: i64 = sqlx::query_scalar(
        "SELECT CAST(coalesce(sum(principal_repaid_minor + interest_paid_minor), 0) AS BIGINT) FROM loans",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let early = received_by_loans - scheduled;
    assert!(early >= 0);
    assert_eq!(
        balance("1000"),
        cash + early,
        "cash = payments − refunds + repayments + premiums − premium refunds − claims paid"
    );
    let interest: i64 = sqlx::query_scalar(
        "SELECT CAST(coalesce(sum(interest_paid_minor), 0) AS BIGINT) FROM loans",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(
        -balance("4100"),
        interest,
        "interest income is interest received"
    );
    let (collected, commission_kept, policies): (i64, i64, i64) = sqlx::query_as(
        "SELECT CAST(coalesce(sum(premium_minor - coalesce(refund_minor, 0) - claims_paid_minor), 0) AS BIGINT),
                CAST(coalesce(sum(commission_minor * (premium_minor - coalesce(refund_minor, 0)) / premium_minor), 0)
                    AS BIGINT),
                count(*)
           FROM policies WHERE premium_paid_at IS NOT NULL",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(
        -(balance("2200-SEVER") + balance("4300")),
        collected,
        "premiums net of refunds and claims paid are owed to the insurer or earned as commission"
    );
    assert!(
        (-balance("4300") - commission_kept).abs() <= policies,
        "commission kept is in proportion to the premium kept (to a kopeck of rounding per policy)"
    );
    assert_eq!(balance("2400"), 0, "every approved claim was paid");
    let revenue: i64 = sqlx::query_scalar(
        "SELECT CAST(coalesce(sum(price_minor), 0) AS BIGINT) FROM ledger_orders o
          WHERE EXISTS (SELECT 1 FROM ledger_entries e WHERE e.aggregate_id = o.order_id AND e.event_type = 'OrderHandedOver')",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(
        -balance("4000"),
        revenue,
        "sales revenue is the price of the cars handed over"
    );

    let live = dump_ledger(&ledger).await;
    ledger
        .projections
        .rebuild("ledger", |_, _| {})
        .await
        .unwrap();
    assert_eq!(
        dump_ledger(&ledger).await,
        live,
        "rebuilt ledger equals the live one"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]

    /// Random sales (discounts, card and credit payments, refunds, handovers), loans repaid,
    /// policies paid and cancelled, and services completed: the books always balance and reconcile.
    #[test]
    fn the_ledger_balances_and_reconciles_after_any_scenario(sales in proptest::collection::vec(sale(), 1..=3)) {
        static CASE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let case = u128::from(CASE.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        tokio::runtime::Runtime::new().unwrap().block_on(run(case, sales));
    }
}
