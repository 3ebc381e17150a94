//! Car financing over HTTP: application to approval, disbursement, repayments and an early
//! repayment; a refused application; bad input refused with nothing written.

use chrono::{NaiveDate, TimeDelta};
use serde_json::{Value, json};

use crate::helpers::*;

const VESTA: &str = "0193a4b0-0000-7000-8000-000000000001";
const ANNA: &str = "0193a4b0-0000-7000-8000-0000000000c1";
const ORDER: &str = "0193a4b0-0000-7000-8000-0000000000d1";
const LOAN: &str = "0193a4b0-0000-7000-8000-0000000000e1";
const LOW_SCORE_LOAN: &str = "0193a4b0-0000-7000-8000-0000000000e2";
const UNKNOWN: &str = "0193a4b0-0000-7000-8000-00000000ffff";

const LOAN_FIELDS: &str =
    "id orderId customerId status loanType vehiclePrice { amount } downPayment { amount }
  loanAmount { amount currency } termMonths creditScore annualRatePercent scheduleKind dayCount firstDueDate
  fullCostPercent fullCost { amount }
  fixedPart { amount } instalmentCount outstandingPrincipal { amount } principalRepaid { amount }
  interestPaid { amount } overdueCount disbursedOn decisionReasons { rule detail }
  schedule { number dueDate principal { amount } interest { amount } total { amount }
             remainingBalance { amount } paidPrincipal { amount } paidInterest { amount } status }";

fn apply_mutation() -> String {
    format!(
        "mutation Apply($input: ApplyForLoanInput!) {{ applyForLoan(input: $input) {{ position loan {{ {LOAN_FIELDS} }} }} }}"
    )
}

fn by_id(mutation: &str, extra_params: &str, extra_args: &str) -> String {
    format!(
        "mutation Step($id: UUID!{extra_params}) {{ {mutation}(id: $id{extra_args}) {{ position replayed loan {{ {LOAN_FIELDS} }} }} }}"
    )
}

/// The test loan's principal: 1 211 250.00.
fn offer_principal() -> aggregates::money::Money {
    aggregates::money::Money::from_minor_units(121_125_000, aggregates::money::Currency::RUB)
}

/// The schedule of the test loan (1 211 250.00 over 36 months at 14.9%, annuity) lent on
/// `lent_on`, from the domain's schedule rules (their worked examples are checked against an
/// independent computation in the aggregate's tests); here the API must show exactly it.
fn expected_schedule(
    lent_on: NaiveDate,
    first_due: NaiveDate,
) -> Vec<aggregates::loan::schedule::Instalment> {
    use aggregates::loan::schedule::{self, Accrual, DayCount, ScheduleKind};
    schedule::build(
        ScheduleKind::Annuity,
        offer_principal(),
        "14.9".parse().unwrap(),
        36,
        first_due,
        Accrual {
            day_count: DayCount::ActualDays,
            from: lent_on,
        },
    )
}

/// The test loan's instalments from 3 on after a SHORTEN_TERM repayment leaving `opening` kopecks,
/// the period in progress starting on `from`.
fn expected_recalculation(
    opening: i64,
    from: NaiveDate,
    first_due: NaiveDate,
) -> Vec<aggregates::loan::schedule::Instalment> {
    use aggregates::loan::schedule::{self, Accrual, DayCount, Rule};
    let money =
        |minor| aggregates::money::Money::from_minor_units(minor, aggregates::money::Currency::RUB);
    let rate = "14.9".parse().unwrap();
    let rule = Rule::Payment(money(4_192_909));
    let accrual = Accrual {
        day_count: DayCount::ActualDays,
        from,
    };
    let count = schedule::count_to_pay_off(money(opening), rate, rule, 3, 34, first_due, accrual);
    schedule::generate(money(opening), rate, rule, 3, count, first_due, accrual)
}

/// The API's schedule rows as the domain's instalments.
fn as_rows(rows: &[Value]) -> Vec<aggregates::loan::schedule::Instalment> {
    let money = |value: &Value| {
        aggregates::money::Money::from_minor_units(kopecks(value), aggregates::money::Currency::RUB)
    };
    rows.iter()
        .map(|row| aggregates::loan::schedule::Instalment {
            number: row["number"].as_u64().unwrap() as u32,
            due_date: row["dueDate"].as_str().unwrap().parse().unwrap(),
            principal: money(&row["principal"]),
            interest: money(&row["interest"]),
            total: money(&row["total"]),
            remaining: money(&row["remainingBalance"]),
        })
        .collect()
}

/// The business date the server uses: today in Moscow.
fn today() -> NaiveDate {
    business_today()
}

fn application(id: &str, score: i64) -> Value {
    json!({
        "id": id, "orderId": ORDER,
        "downPayment": { "amount": "213750.00" }, "loanType": "CAR_LOAN", "termMonths": 36,
        "employmentStatus": "EMPLOYED", "monthlyIncome": { "amount": "150000.00" }, "creditScore": score
    })
}

/// The README's sale: the Vesta at 1 500 000.00 less 5%, a confirmed order for 1 425 000.00.
async fn a_confirmed_order(app: &TestApp) {
    app.ok(
        STOCK_VEHICLE,
        json!({ "input": vehicle_input(VESTA, "XTA210990Y2766389", "Vesta", "1500000.00") }),
    )
    .await;
    app.ok(REGISTER_CUSTOMER, json!({ "input": customer_input(ANNA) }))
        .await;
    app.ok(
        DRAFT_ORDER,
        json!({ "input": { "id": ORDER, "customerId": ANNA, "vehicleId": VESTA } }),
    )
    .await;
    app.ok(
        "mutation { applyOrderDiscount(id: \"0193a4b0-0000-7000-8000-0000000000d1\", discount: { percent: \"5\" }) { position } }",
        json!({}),
    )
    .await;
    app.ok(CONFIRM_ORDER, json!({ "id": ORDER })).await;
}

/// Runs a mutation that must succeed and returns its payload.
async fn step(app: &TestApp, mutation: &str, variables: Value) -> Value {
    let data = app.ok(mutation, variables).await;
    data.as_object().unwrap().values().next().unwrap().clone()
}

fn amount(value: &Value) -> &str {
    value["amount"].as_str().unwrap()
}

fn kopecks(value: &Value) -> i64 {
    let text = amount(value);
    let (whole, fraction) = text.split_once('.').unwrap();
    whole.parse::<i64>().unwrap() * 100 + fraction.parse::<i64>().unwrap()
}

#[tokio::test]
async fn a_car_loan_from_application_to_a_recalculated_schedule() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    a_confirmed_order(&app).await;

    let applied = step(
        &app,
        &apply_mutation(),
        json!({ "input": application(LOAN, 820) }),
    )
    .await;
    let loan = &applied["loan"];
    assert_eq!(loan["status"], "DRAFT");
    assert_eq!(loan["customerId"], ANNA);
    assert_eq!(amount(&loan["vehiclePrice"]), "1425000.00");
    assert_eq!(
        loan["loanAmount"],
        json!({ "amount": "1211250.00", "currency": "RUB" })
    );

    let changed = step(
        &app,
        &by_id(
            "updateLoanApplication",
            ", $input: LoanApplicationChangesInput!",
            ", input: $input",
        ),
        json!({ "id": LOAN, "input": { "termMonths": 36 } }),
    )
    .await;
    assert_eq!(changed["loan"]["termMonths"], 36);
    let submitted = step(
        &app,
        &by_id("submitLoanApplication", "", ""),
        json!({ "id": LOAN }),
    )
    .await;
    assert_eq!(submitted["loan"]["status"], "SUBMITTED");
    let reviewing = step(
        &app,
        &by_id("startLoanReview", "", ""),
        json!({ "id": LOAN }),
    )
    .await;
    assert_eq!(reviewing["loan"]["status"], "UNDER_REVIEW");

    let first_due = today() + TimeDelta::days(35);
    let decided = step(
        &app,
        &by_id("decideLoan", ", $input: DecideLoanInput!", ", input: $input"),
        json!({ "id": LOAN, "input": { "firstDueDate": first_due.to_string(), "scheduleKind": "ANNUITY" } }),
    )
    .await;
    let loan = &decided["loan"];
    assert_eq!(loan["status"], "APPROVED", "{loan:#}");
    assert_eq!(loan["annualRatePercent"], "14.9");
    assert_eq!(loan["firstDueDate"], first_due.to_string());
    // P = 1 211 250.00, 36 months, 14.9%: payment 41 929.09 (Python `decimal` at 50 digits, see the
    // aggregate's worked examples). The first period runs 35 days from today, the decision date:
    // its interest by actual days, its principal a regular month's (41 929.09 − 15 039.69).
    assert_eq!(amount(&loan["fixedPart"]), "41929.09");
    assert_eq!(loan["dayCount"], "ACTUAL_DAYS");
    let schedule = loan["schedule"].as_array().unwrap();
    assert_eq!(schedule.len(), 36);
    let offer = expected_schedule(today(), first_due);
    assert_eq!(amount(&schedule[0]["principal"]), "26889.40");
    assert_eq!(
        amount(&schedule[0]["interest"]),
        offer[0].interest.amount().to_string()
    );
    let first_interest = kopecks(&schedule[0]["interest"]);
    // 35 days at 14.9% of 1 211 250.00 over a year of 365 or 366 days.
    assert!(
        (1_725_600..=1_730_600).contains(&first_interest),
        "{first_interest}"
    );
    assert_eq!(kopecks(&schedule[0]["total"]), 2_688_940 + first_interest);
    assert_eq!(as_rows(schedule), offer);
    assert_eq!(schedule[0]["dueDate"], first_due.to_string());
    // The full cost of credit of the offer (353-FZ art. 6), as the API shows it; the rule's worked
    // examples, checked against an independent computation, are the aggregate's.
    let full_cost = aggregates::loan::full_cost::full_cost(offer_principal(), today(), &offer)
        .expect("a loan within the range of money");
    assert_eq!(loan["fullCostPercent"], full_cost.percent.to_string());
    assert_eq!(
        amount(&loan["fullCost"]),
        full_cost.amount.amount().to_string()
    );
    let offered_interest: i64 = schedule.iter().map(|row| kopecks(&row["interest"])).sum();
    assert_eq!(kopecks(&loan["fullCost"]), offered_interest);
    assert_eq!(amount(&schedule[35]["remainingBalance"]), "0.00");
    let reasons: Vec<&str> = loan["decisionReasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rule"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        [
            "CREDIT_SCORE",
            "EMPLOYMENT",
            "DOWN_PAYMENT",
            "TERM",
            "PAYMENT_TO_INCOME"
        ]
    );

    let disburse = by_id("disburseLoan", ", $key: String!", ", idempotencyKey: $key");
    let disbursed = step(&app, &disburse, json!({ "id": LOAN, "key": "disburse-e1" })).await;
    assert_eq!(disbursed["loan"]["status"], "ACTIVE");
    assert_eq!(disbursed["loan"]["disbursedOn"], today().to_string());
    let again = step(&app, &disburse, json!({ "id": LOAN, "key": "disburse-e1" })).await;
    assert_eq!(again["replayed"], true);

    let repay = by_id(
        "recordLoanRepayment",
        ", $amount: MoneyInput!, $key: String!",
        ", amount: $amount, idempotencyKey: $key",
    );
    for (key, row) in [("repay-1", &offer[0]), ("repay-2", &offer[1])] {
        step(
            &app,
            &repay,
            json!({ "id": LOAN, "amount": { "amount": row.total.amount().to_string() }, "key": key }),
        )
        .await;
    }
    let loan = app
        .ok(
            &format!("query($id: UUID!) {{ loan(id: $id) {{ {LOAN_FIELDS} }} }}"),
            json!({ "id": LOAN }),
        )
        .await["loan"]
        .clone();
    // Balance after two instalments: what the schedule says it is.
    let after_two = offer[1].remaining;
    assert_eq!(
        amount(&loan["outstandingPrincipal"]),
        after_two.amount().to_string()
    );
    assert_eq!(
        kopecks(&loan["interestPaid"]),
        offer[0].interest.minor_units() + offer[1].interest.minor_units()
    );
    assert_eq!(loan["schedule"][0]["status"], "PAID");
    assert_eq!(loan["schedule"][1]["status"], "PAID");
    assert_eq!(loan["schedule"][2]["status"], "PENDING");

    let early = step(
        &app,
        &by_id(
            "repayLoanEarly",
            ", $input: RepayLoanEarlyInput!, $key: String!",
            ", input: $input, idempotencyKey: $key",
        ),
        json!({ "id": LOAN, "key": "early-1", "input": {
            "kind": "PARTIAL", "amount": { "amount": "300000.00" }, "recalculation": "SHORTEN_TERM" } }),
    )
    .await;
    let loan = &early["loan"];
    assert_eq!(loan["status"], "ACTIVE");
    // Two instalments were paid ahead, so the period in progress (instalment 3's) starts on
    // instalment 2's due date, still in the future: nothing has accrued, all 300 000.00 is principal,
    // and instalment 3's period still starts on instalment 2's due date.
    let opening = after_two.minor_units() - 30_000_000;
    assert_eq!(kopecks(&loan["outstandingPrincipal"]), opening);
    assert_eq!(amount(&loan["fixedPart"]), "41929.09");
    // The contract's full cost stays as issued.
    assert_eq!(loan["fullCostPercent"], full_cost.percent.to_string());
    assert_eq!(
        amount(&loan["fullCost"]),
        full_cost.amount.amount().to_string()
    );
    let recalculated = expected_recalculation(opening, offer[1].due_date, first_due);
    let schedule = loan["schedule"].as_array().unwrap();
    assert_eq!(schedule.len(), 2 + recalculated.len());
    assert_eq!(loan["instalmentCount"], schedule.len());
    assert_eq!(as_rows(&schedule[2..]), recalculated);
    let last = schedule.len() - 1;
    assert!(
        schedule[3..last]
            .iter()
            .all(|row| amount(&row["total"]) == "41929.09")
    );
    assert_eq!(amount(&schedule[last]["remainingBalance"]), "0.00");
    let principal: i64 = schedule.iter().map(|row| kopecks(&row["principal"])).sum();
    assert_eq!(
        principal + 30_000_000,
        121_125_000,
        "the loan is repaid to the kopeck"
    );

    let listed = app
        .ok(
            "query($order: UUID!) { loans(filter: { orderId: $order, status: ACTIVE }) { totalCount edges { node { id } } } }",
            json!({ "order": ORDER }),
        )
        .await;
    assert_eq!(listed["loans"]["totalCount"], 1);
    assert_eq!(listed["loans"]["edges"][0]["node"]["id"], LOAN);

    let arrears = step(
        &app,
        &by_id("assessLoanArrears", ", $asOf: Date!", ", asOf: $asOf"),
        json!({ "id": LOAN, "asOf": today().to_string() }),
    )
    .await;
    assert_eq!(arrears["loan"]["overdueCount"], 0);

    // Pay it all off. Two instalments were paid ahead, so the current period (instalment 3's)
    // starts on instalment 2's due date, still in the future: no interest has accrued yet.
    let quote = app
        .ok(
            "query($id: UUID!, $on: Date!) { loan(id: $id) { payoff(on: $on) { amount currency } } }",
            json!({ "id": LOAN, "on": today().to_string() }),
        )
        .await;
    let payoff = quote["loan"]["payoff"].clone();
    assert_eq!(
        payoff,
        json!({ "amount": aggregates::money::Money::from_minor_units(opening, aggregates::money::Currency::RUB).amount().to_string(), "currency": "RUB" })
    );
    let paid_off = step(
        &app,
        &by_id(
            "repayLoanEarly",
            ", $input: RepayLoanEarlyInput!, $key: String!",
            ", input: $input, idempotencyKey: $key",
        ),
        json!({ "id": LOAN, "key": "payoff-1", "input": { "kind": "FULL", "amount": payoff } }),
    )
    .await;
    let loan = &paid_off["loan"];
    assert_eq!(loan["status"], "COMPLETED");
    assert_eq!(amount(&loan["outstandingPrincipal"]), "0.00");
    assert_eq!(amount(&loan["principalRepaid"]), "1211250.00");
    assert_eq!(
        loan["instalmentCount"], 2,
        "only the paid instalments remain"
    );
    app.stop().await;

    // A rebuilt read model is identical to the live one.
    let ledger = autosalon::Ledger::open(&database_url(&dir.path().join("autosalon.db")))
        .await
        .unwrap();
    let live = dump_loan_tables(&ledger).await;
    assert_eq!(live.len(), 3, "one loan, two instalments: {live:?}");
    ledger
        .projections
        .rebuild("loans", |_, _| {})
        .await
        .unwrap();
    assert_eq!(dump_loan_tables(&ledger).await, live);
}

/// Every row of `loans` and `loan_instalments`, as text, in a stable order.
async fn dump_loan_tables(ledger: &autosalon::Ledger) -> Vec<String> {
    let mut rows = Vec::new();
    for table in ["loans", "loan_instalments"] {
        rows.extend(crate::rows::prefixed_rows(ledger.db.pool(), table).await);
    }
    rows
}

#[tokio::test]
async fn a_low_credit_score_is_rejected_with_its_reasons() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    a_confirmed_order(&app).await;
    step(
        &app,
        &apply_mutation(),
        json!({ "input": application(LOW_SCORE_LOAN, 550) }),
    )
    .await;
    step(
        &app,
        &by_id("submitLoanApplication", "", ""),
        json!({ "id": LOW_SCORE_LOAN }),
    )
    .await;
    step(
        &app,
        &by_id("startLoanReview", "", ""),
        json!({ "id": LOW_SCORE_LOAN }),
    )
    .await;
    let decided = step(
        &app,
        &by_id("decideLoan", ", $input: DecideLoanInput!", ", input: $input"),
        json!({ "id": LOW_SCORE_LOAN, "input": { "firstDueDate": (today() + TimeDelta::days(30)).to_string() } }),
    )
    .await;
    let loan = &decided["loan"];
    assert_eq!(loan["status"], "REJECTED");
    assert_eq!(loan["decisionReasons"][0]["rule"], "CREDIT_SCORE");
    assert!(
        loan["decisionReasons"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("550")
    );
    assert_eq!(loan["schedule"], json!([]));

    let disburse = app
        .graphql(
            &by_id("disburseLoan", ", $key: String!", ", idempotencyKey: $key"),
            json!({ "id": LOW_SCORE_LOAN, "key": "d-e2" }),
        )
        .await;
    assert_eq!(error_codes(&disburse), ["INVALID_LOAN_TRANSITION"]);
    app.stop().await;
}

/// Sends `query`, expects exactly the error `code`, and checks the log did not grow.
async fn refused(app: &TestApp, query: &str, variables: Value, code: &str) {
    let before = app.event_count().await;
    let response = app.graphql(query, variables).await;
    assert_eq!(error_codes(&response), [code], "{response:#}");
    assert_eq!(
        app.event_count().await,
        before,
        "nothing may be written: {response:#}"
    );
}

#[tokio::test]
async fn bad_loan_input_is_refused_and_nothing_is_written() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    a_confirmed_order(&app).await;
    let apply = apply_mutation();
    let with = |field: &str, value: Value| {
        let mut input = application(LOAN, 700);
        input[field] = value;
        json!({ "input": input })
    };
    refused(&app, &apply, with("creditScore", json!(200)), "VALIDATION").await;
    refused(&app, &apply, with("creditScore", json!(-5)), "VALIDATION").await;
    refused(&app, &apply, with("termMonths", json!(500)), "VALIDATION").await;
    refused(
        &app,
        &apply,
        with("monthlyIncome", json!({ "amount": "-1.00" })),
        "VALIDATION",
    )
    .await;
    refused(
        &app,
        &apply,
        with("downPayment", json!({ "amount": "1500000.00" })),
        "VALIDATION",
    )
    .await;
    refused(
        &app,
        &apply,
        with("downPayment", json!({ "amount": 1000 })),
        "VALIDATION",
    )
    .await;
    refused(&app, &apply, with("orderId", json!(UNKNOWN)), "NOT_FOUND").await;

    step(&app, &apply, json!({ "input": application(LOAN, 700) })).await;
    refused(
        &app,
        &apply,
        json!({ "input": application(LOAN, 700) }),
        "LOAN_ALREADY_EXISTS",
    )
    .await;
    step(
        &app,
        &by_id("submitLoanApplication", "", ""),
        json!({ "id": LOAN }),
    )
    .await;
    step(
        &app,
        &by_id("startLoanReview", "", ""),
        json!({ "id": LOAN }),
    )
    .await;
    let decide = by_id(
        "decideLoan",
        ", $input: DecideLoanInput!",
        ", input: $input",
    );
    for bad_date in [
        "2027-1-05",
        "2027-02-30",
        "05.01.2027",
        "2027-01-05T00:00:00Z",
    ] {
        refused(
            &app,
            &decide,
            json!({ "id": LOAN, "input": { "firstDueDate": bad_date } }),
            "VALIDATION",
        )
        .await;
    }
    refused(
        &app,
        &decide,
        json!({ "id": LOAN, "input": { "firstDueDate": today().to_string() } }),
        "VALIDATION",
    )
    .await;
    let missing_key = app
        .graphql(
            "mutation($id: UUID!) { disburseLoan(id: $id) { position } }",
            json!({ "id": LOAN }),
        )
        .await;
    assert_eq!(error_codes(&missing_key), ["VALIDATION"], "{missing_key:#}");

    let unknown = app
        .graphql(
            "query($id: UUID!) { loan(id: $id) { id } }",
            json!({ "id": UNKNOWN }),
        )
        .await;
    assert_eq!(error_codes(&unknown), ["NOT_FOUND"]);
    app.stop().await;
}

#[tokio::test]
async fn a_loan_whose_principal_already_reached_the_order_cannot_be_rejected() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    a_confirmed_order(&app).await;
    step(
        &app,
        &apply_mutation(),
        json!({ "input": application(LOAN, 820) }),
    )
    .await;
    for mutation in ["submitLoanApplication", "startLoanReview"] {
        step(&app, &by_id(mutation, "", ""), json!({ "id": LOAN })).await;
    }
    step(
        &app,
        &by_id("decideLoan", "", ", input: {}"),
        json!({ "id": LOAN }),
    )
    .await;
    app.stop().await;

    // A disbursement stopped after its first step: the principal is on the order, the loan approved.
    let ledger = autosalon::Ledger::open(&database_url(&dir.path().join("autosalon.db")))
        .await
        .unwrap();
    let payments = commands::Payments::new(
        ledger.db.clone(),
        ledger.upcasters.clone(),
        std::sync::Arc::new(commands::clock::SystemClock),
        std::sync::Arc::new(commands::clock::UuidV7),
    );
    let loan: uuid::Uuid = LOAN.parse().unwrap();
    let principal = aggregates::money::Money::new(
        "1211250.00".parse().unwrap(),
        aggregates::money::Currency::RUB,
    )
    .unwrap();
    payments
        .record_credit_disbursement(
            &commands::RequestContext::default(),
            commands::loans::credit_payment_id(loan),
            ORDER.parse().unwrap(),
            loan,
            principal,
            None,
        )
        .await
        .unwrap();
    ledger.db.close().await;

    let app = spawn_app(&dir).await;
    refused(
        &app,
        &by_id("rejectLoan", ", $reason: String!", ", reason: $reason"),
        json!({ "id": LOAN, "reason": "changed our minds" }),
        "VALIDATION",
    )
    .await;
    // Retrying the disbursement finishes it instead.
    let done = step(
        &app,
        &by_id(
            "disburseLoan",
            "",
            ", idempotencyKey: \"disburse-after-stop\"",
        ),
        json!({ "id": LOAN }),
    )
    .await;
    assert_eq!(done["loan"]["status"], "ACTIVE", "{done}");
    app.stop().await;
}
