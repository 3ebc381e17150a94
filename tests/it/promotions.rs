//! Promotions and promo codes over real GraphQL: the usage limits under concurrency, the
//! per-customer limit, a cancelled order giving its use back, expired and ineligible codes, the
//! stacking rule, and the report's totals against an independent sum. On PostgreSQL too when
//! `AUTOSALON_TEST_DATABASE_URL` names a cluster (the CI's second run).

use serde_json::{Value, json};

use crate::helpers::*;

const CREATE_PROMOTION: &str = "mutation($input: CreatePromotionInput!) {
  createPromotion(input: $input) { promotion { code uses totalUses status } }
}";

const APPLY: &str = "mutation($order: UUID!, $code: String!) {
  applyPromoCode(orderId: $order, code: $code) { order { id total { amount } discount { amount { amount } } } }
}";

const PROMOTION: &str = "query($code: String!) {
  promotion(code: $code) {
    code uses status
    effect { orders discountGiven { amount currency } revenue { amount currency } }
  }
}";

fn promotion(code: &str, percent: &str, total_uses: i32, per_customer: i32) -> Value {
    json!({
        "code": code, "title": format!("Promotion {code}"),
        "discount": { "percent": percent },
        "validFrom": "2020-01-01", "validUntil": "2099-12-31",
        "totalUses": total_uses, "usesPerCustomer": per_customer
    })
}

fn id(prefix: u32, n: u32) -> String {
    format!("0193a4b0-{prefix:04x}-7000-8000-{n:012x}")
}

/// Stocks a Lada (NEW) at `price` and returns its id.
async fn car(app: &TestApp, n: u32, model: &str, price: &str) -> String {
    let vehicle = id(0xca, n);
    let vin = format!("XTA21099{n:09}");
    app.ok(
        STOCK_VEHICLE,
        json!({ "input": vehicle_input(&vehicle, &vin, model, price) }),
    )
    .await;
    vehicle
}

async fn customer(app: &TestApp, n: u32) -> String {
    let customer = id(0xc0, n);
    let mut input = customer_input(&customer);
    input["email"] = json!(format!("buyer{n}@example.ru"));
    app.ok(REGISTER_CUSTOMER, json!({ "input": input })).await;
    customer
}

async fn draft(app: &TestApp, n: u32, customer: &str, vehicle: &str) -> String {
    let order = id(0x0d, n);
    app.ok(
        DRAFT_ORDER,
        json!({ "input": { "id": order, "customerId": customer, "vehicleId": vehicle } }),
    )
    .await;
    order
}

async fn create(app: &TestApp, input: Value) {
    app.ok(CREATE_PROMOTION, json!({ "input": input })).await;
}

async fn apply(app: &TestApp, order: &str, code: &str) -> Value {
    app.graphql(APPLY, json!({ "order": order, "code": code }))
        .await
}

async fn promotion_of(app: &TestApp, code: &str) -> Value {
    app.ok(PROMOTION, json!({ "code": code })).await["promotion"].clone()
}

async fn order_total(app: &TestApp, order: &str) -> String {
    app.ok(
        "query($id: UUID!) { order(id: $id) { total { amount } } }",
        json!({ "id": order }),
    )
    .await["order"]["total"]["amount"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// `percent` (a decimal string) of `kopecks`, rounded half away from zero to kopecks, computed
/// with integers only: the rule the order documents, done independently of `rust_decimal`.
fn percent_of(kopecks: i64, percent: &str) -> i64 {
    let (whole, fraction) = percent.split_once('.').unwrap_or((percent, ""));
    let scale = 10i128.pow(fraction.len() as u32);
    let mantissa: i128 = format!("{whole}{fraction}").parse().unwrap();
    let numerator = i128::from(kopecks) * mantissa;
    let denominator = 100 * scale;
    let rounded = (2 * numerator + denominator) / (2 * denominator);
    i64::try_from(rounded).unwrap()
}

fn rubles(kopecks: i64) -> String {
    format!("{}.{:02}", kopecks / 100, kopecks % 100)
}

#[tokio::test]
async fn fifty_concurrent_redemptions_of_a_code_limited_to_ten_let_exactly_ten_through() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    let vehicle = car(&app, 1, "Vesta", "1500000.00").await;
    let buyer = customer(&app, 1).await;
    create(&app, promotion("TEN-ONLY", "10", 10, 10)).await;
    let mut orders = Vec::new();
    for n in 0..50 {
        orders.push(draft(&app, n, &buyer, &vehicle).await);
    }
    let contended_before = app.db.contended_appends();
    let answers =
        futures::future::join_all(orders.iter().map(|order| apply(&app, order, "ten-only"))).await;
    let mut won = Vec::new();
    let mut exhausted = 0;
    for (order, answer) in orders.iter().zip(&answers) {
        match error_codes(answer).as_slice() {
            [] => {
                assert_eq!(
                    answer["data"]["applyPromoCode"]["order"]["total"]["amount"],
                    "1350000.00"
                );
                won.push(order.clone());
            }
            [code] if code == "PROMO_CODE_EXHAUSTED" => exhausted += 1,
            other => panic!("unexpected answer {other:?}: {answer}"),
        }
    }
    assert_eq!((won.len(), exhausted), (10, 40));
    assert!(
        app.db.contended_appends() > contended_before,
        "the redemptions never collided: the test proved nothing"
    );
    // The orders agree with the code: exactly the ten winners carry the discount.
    for order in &orders {
        let expected = if won.contains(order) {
            "1350000.00"
        } else {
            "1500000.00"
        };
        assert_eq!(order_total(&app, order).await, expected, "order {order}");
    }
    let promotion = promotion_of(&app, "TEN-ONLY").await;
    assert_eq!(promotion["uses"], 10);
    assert_eq!(
        promotion["effect"],
        json!([{
            "orders": 10,
            "discountGiven": { "amount": "1500000.00", "currency": "RUB" },
            "revenue": { "amount": "13500000.00", "currency": "RUB" }
        }])
    );
    app.stop().await;
}

#[tokio::test]
async fn one_customer_holds_at_most_its_limit_while_others_still_can() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    let vehicle = car(&app, 1, "Vesta", "1000000.00").await;
    let (anna, boris) = (customer(&app, 1).await, customer(&app, 2).await);
    create(&app, promotion("ONE-EACH", "5", 5, 1)).await;
    let first = draft(&app, 1, &anna, &vehicle).await;
    let second = draft(&app, 2, &anna, &vehicle).await;
    let other = draft(&app, 3, &boris, &vehicle).await;
    assert_eq!(
        error_codes(&apply(&app, &first, "ONE-EACH").await),
        Vec::<String>::new()
    );
    let refused = apply(&app, &second, "ONE-EACH").await;
    assert_eq!(
        error_codes(&refused),
        vec!["PROMO_CODE_CUSTOMER_LIMIT"],
        "{refused}"
    );
    assert_eq!(order_total(&app, &second).await, "1000000.00");
    assert_eq!(
        error_codes(&apply(&app, &other, "ONE-EACH").await),
        Vec::<String>::new()
    );
    // Applying it again to an order that holds it is a no-op, not a second use.
    assert_eq!(
        error_codes(&apply(&app, &first, "ONE-EACH").await),
        Vec::<String>::new()
    );
    assert_eq!(promotion_of(&app, "ONE-EACH").await["uses"], 2);
    app.stop().await;
}

#[tokio::test]
async fn a_cancelled_order_gives_its_use_back() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    let vehicle = car(&app, 1, "Vesta", "1000000.00").await;
    let buyer = customer(&app, 1).await;
    create(&app, promotion("LAST-ONE", "20", 1, 1)).await;
    let first = draft(&app, 1, &buyer, &vehicle).await;
    let second = draft(&app, 2, &buyer, &vehicle).await;
    assert_eq!(
        error_codes(&apply(&app, &first, "LAST-ONE").await),
        Vec::<String>::new()
    );
    let refused = apply(&app, &second, "LAST-ONE").await;
    assert_eq!(
        error_codes(&refused),
        vec!["PROMO_CODE_EXHAUSTED"],
        "{refused}"
    );
    app.ok(
        CANCEL_ORDER,
        json!({ "id": first, "reason": "changed mind" }),
    )
    .await;
    assert_eq!(promotion_of(&app, "LAST-ONE").await["uses"], 0);
    // Cancelling again (a retry) gives nothing back twice.
    app.graphql(
        CANCEL_ORDER,
        json!({ "id": first, "reason": "changed mind" }),
    )
    .await;
    assert_eq!(promotion_of(&app, "LAST-ONE").await["uses"], 0);
    assert_eq!(
        error_codes(&apply(&app, &second, "LAST-ONE").await),
        Vec::<String>::new()
    );
    let promotion = promotion_of(&app, "LAST-ONE").await;
    assert_eq!(promotion["uses"], 1);
    assert_eq!(
        promotion["effect"][0]["orders"], 1,
        "the cancelled order counts no more"
    );
    assert_eq!(promotion["effect"][0]["revenue"]["amount"], "800000.00");
    app.stop().await;
}

#[tokio::test]
async fn expired_ended_unknown_and_ineligible_codes_are_refused_and_change_nothing() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    let vehicle = car(&app, 1, "Vesta", "1000000.00").await;
    let buyer = customer(&app, 1).await;
    let order = draft(&app, 1, &buyer, &vehicle).await;
    let mut past = promotion("OLD-2020", "5", 10, 10);
    past["validUntil"] = json!("2020-12-31");
    let mut future = promotion("NEXT-2099", "5", 10, 10);
    future["validFrom"] = json!("2099-01-01");
    let mut kia = promotion("KIA-ONLY", "5", 10, 10);
    kia["brands"] = json!(["Kia"]);
    let mut used = promotion("USED-ONLY", "5", 10, 10);
    used["conditions"] = json!(["USED"]);
    let mut granta = promotion("GRANTA", "5", 10, 10);
    granta["models"] = json!(["Granta"]);
    for input in [
        past,
        future,
        kia,
        used,
        granta,
        promotion("ENDED", "5", 10, 10),
    ] {
        create(&app, input).await;
    }
    app.ok(
        "mutation { endPromotion(code: \"ended\", reason: \"budget spent\") { promotion { status } } }",
        json!({}),
    )
    .await;
    for (code, expected) in [
        ("OLD-2020", "PROMO_CODE_EXPIRED"),
        ("NEXT-2099", "PROMO_CODE_EXPIRED"),
        ("ENDED", "PROMO_CODE_EXPIRED"),
        ("KIA-ONLY", "PROMO_CODE_NOT_ELIGIBLE"),
        ("USED-ONLY", "PROMO_CODE_NOT_ELIGIBLE"),
        ("GRANTA", "PROMO_CODE_NOT_ELIGIBLE"),
        ("NO-SUCH-CODE", "NOT_FOUND"),
        ("x", "VALIDATION"),
    ] {
        let answer = apply(&app, &order, code).await;
        assert_eq!(error_codes(&answer), vec![expected], "{code}: {answer}");
    }
    assert_eq!(order_total(&app, &order).await, "1000000.00");
    for code in ["OLD-2020", "KIA-ONLY", "ENDED"] {
        assert_eq!(promotion_of(&app, code).await["uses"], 0, "{code}");
    }
    // The eligible brand, in any case, passes.
    let mut lada = promotion("LADA-5", "5", 10, 10);
    lada["brands"] = json!(["LADA"]);
    lada["models"] = json!(["vesta"]);
    create(&app, lada).await;
    assert_eq!(
        error_codes(&apply(&app, &order, "lada-5").await),
        Vec::<String>::new()
    );
    assert_eq!(order_total(&app, &order).await, "950000.00");
    app.stop().await;
}

#[tokio::test]
async fn a_code_replaces_the_desks_discount_and_nothing_stacks_on_a_code() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    let vehicle = car(&app, 1, "Vesta", "1000000.00").await;
    let buyer = customer(&app, 1).await;
    let order = draft(&app, 1, &buyer, &vehicle).await;
    create(&app, promotion("FIRST", "10", 10, 10)).await;
    create(&app, promotion("SECOND", "30", 10, 10)).await;
    app.ok(
        "mutation($id: UUID!) { applyOrderDiscount(id: $id, discount: { percent: \"3\" }) { order { id } } }",
        json!({ "id": order }),
    )
    .await;
    assert_eq!(order_total(&app, &order).await, "970000.00");
    assert_eq!(
        error_codes(&apply(&app, &order, "FIRST").await),
        Vec::<String>::new()
    );
    assert_eq!(order_total(&app, &order).await, "900000.00");
    let desk = app
        .graphql(
            "mutation($id: UUID!) { applyOrderDiscount(id: $id, discount: { percent: \"50\" }) { order { id } } }",
            json!({ "id": order }),
        )
        .await;
    assert_eq!(
        error_codes(&desk),
        vec!["PROMO_CODE_ALREADY_APPLIED"],
        "{desk}"
    );
    let second = apply(&app, &order, "SECOND").await;
    assert_eq!(
        error_codes(&second),
        vec!["PROMO_CODE_ALREADY_APPLIED"],
        "{second}"
    );
    assert_eq!(promotion_of(&app, "SECOND").await["uses"], 0);
    assert_eq!(order_total(&app, &order).await, "900000.00");
    // A confirmed order takes no code, and no use is taken for it.
    let other = draft(&app, 2, &buyer, &vehicle).await;
    app.ok(CONFIRM_ORDER, json!({ "id": other })).await;
    let late = apply(&app, &other, "SECOND").await;
    assert_eq!(
        error_codes(&late),
        vec!["INVALID_ORDER_TRANSITION"],
        "{late}"
    );
    assert_eq!(promotion_of(&app, "SECOND").await["uses"], 0);
    app.stop().await;
}

#[tokio::test]
async fn the_report_adds_up_to_an_independent_sum_of_the_orders_a_code_priced() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    let buyer = customer(&app, 1).await;
    create(&app, promotion("ODD-PERCENT", "7.25", 20, 20)).await;
    let mut fixed = promotion("FLAT-50K", "1", 20, 20);
    fixed["discount"] = json!({ "amount": { "amount": "50000.00", "currency": "RUB" } });
    create(&app, fixed).await;
    let prices: [i64; 6] = [
        123_456_789,
        99_999_999,
        150_000_001,
        87_654_321,
        100_000_000,
        250_000_055,
    ];
    let (mut odd, mut flat) = ((0i64, 0i64, 0i64), (0i64, 0i64, 0i64));
    let mut cancelled = None;
    for (n, price) in prices.iter().enumerate() {
        let n = n as u32;
        let vehicle = car(&app, n, "Vesta", &rubles(*price)).await;
        let order = draft(&app, n, &buyer, &vehicle).await;
        let (code, off) = if n.is_multiple_of(2) {
            ("ODD-PERCENT", percent_of(*price, "7.25"))
        } else {
            ("FLAT-50K", 5_000_000)
        };
        let answer = apply(&app, &order, code).await;
        assert_eq!(error_codes(&answer), Vec::<String>::new(), "{answer}");
        assert_eq!(order_total(&app, &order).await, rubles(price - off));
        if n == 4 {
            // Its use goes back and it leaves the report.
            cancelled = Some(order);
            continue;
        }
        let sums = if n.is_multiple_of(2) {
            &mut odd
        } else {
            &mut flat
        };
        sums.0 += 1;
        sums.1 += off;
        sums.2 += price - off;
    }
    app.ok(
        CANCEL_ORDER,
        json!({ "id": cancelled.unwrap(), "reason": "changed mind" }),
    )
    .await;
    let report = app
        .ok(
            "{ promotionsReport { promotions { code uses effect { orders discountGiven { amount } revenue { amount } } } } }",
            json!({}),
        )
        .await;
    let expected = |code: &str, (orders, discount, revenue): (i64, i64, i64)| {
        json!({
            "code": code, "uses": orders,
            "effect": [{
                "orders": orders,
                "discountGiven": { "amount": rubles(discount) },
                "revenue": { "amount": rubles(revenue) }
            }]
        })
    };
    assert_eq!(
        report["promotionsReport"]["promotions"],
        json!([expected("FLAT-50K", flat), expected("ODD-PERCENT", odd)])
    );
    app.stop().await;
}

/// The state a crash between `applyPromoCode`'s two steps leaves: the promotion holds a use for
/// the order, the order never recorded the discount. Written straight to the server's store.
async fn redeem_without_the_discount(app: &TestApp, code: &str, order: &str, customer: &str) {
    use aggregates::promotion::{EligibleVehicle, Promotion, PromotionCommand, promotion_id};
    use aggregates::vehicle::Condition;
    let upcasters: eventstore::Upcasters = std::sync::Arc::new(aggregates::upcasters());
    let promotions: eventstore::Cqrs<Promotion> = app.db.framework(&upcasters, ());
    let now = chrono::Utc::now();
    promotions
        .execute(
            &promotion_id(code).to_string(),
            PromotionCommand::Redeem {
                order_id: order.parse().unwrap(),
                customer_id: customer.parse().unwrap(),
                vehicle: EligibleVehicle {
                    brand: "Lada".into(),
                    model: "Vesta".into(),
                    condition: Condition::New,
                },
                business_date: now.date_naive(),
                redeemed_at: now,
            },
        )
        .await
        .unwrap();
    app.projections.catch_up_all().await.unwrap();
}

#[tokio::test]
async fn a_use_left_behind_by_a_crash_is_finished_by_a_retry_or_given_back_by_cancelling() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    let vehicle = car(&app, 1, "Vesta", "1000000.00").await;
    let buyer = customer(&app, 1).await;
    create(&app, promotion("HALF-DONE", "10", 2, 2)).await;
    let retried = draft(&app, 1, &buyer, &vehicle).await;
    let abandoned = draft(&app, 2, &buyer, &vehicle).await;
    redeem_without_the_discount(&app, "HALF-DONE", &retried, &buyer).await;
    redeem_without_the_discount(&app, "HALF-DONE", &abandoned, &buyer).await;
    assert_eq!(promotion_of(&app, "HALF-DONE").await["uses"], 2);
    assert_eq!(order_total(&app, &retried).await, "1000000.00");
    // The retry finds its use already held and finishes the order's side, taking no second use.
    assert_eq!(
        error_codes(&apply(&app, &retried, "HALF-DONE").await),
        Vec::<String>::new()
    );
    assert_eq!(order_total(&app, &retried).await, "900000.00");
    assert_eq!(promotion_of(&app, "HALF-DONE").await["uses"], 2);
    // The order that never got its discount gives the use back when cancelled.
    app.ok(
        CANCEL_ORDER,
        json!({ "id": abandoned, "reason": "left the showroom" }),
    )
    .await;
    let promotion = promotion_of(&app, "HALF-DONE").await;
    assert_eq!(promotion["uses"], 1);
    assert_eq!(promotion["effect"][0]["orders"], 1);
    app.stop().await;
}
