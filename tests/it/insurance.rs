//! Insurance over HTTP: quotes from the partner insurers (some failing), a signed policy that a
//! customer can verify, premium, claims, cancellation with a refund, and refusals.

use std::sync::Arc;
use std::time::Duration;

use aggregates::money::{Currency, Money};
use aggregates::policy::pro_rata_refund;
use aggregates::policy::tariffs::{Offer, PARTNERS, QuoteTerms};
use autosalon::{Application, Ledger};
use chrono::NaiveDate;
use commands::insurers::{Insurer, InsurerError, PartnerInsurer};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use std::time::Instant;

use crate::helpers::*;

const VESTA: &str = "0193a4b0-0000-7000-8000-000000000001";
const ANNA: &str = "0193a4b0-0000-7000-8000-0000000000c1";
const OSAGO_QUOTE: &str = "0193a4b0-0000-7000-8000-0000000000e1";
const KASKO_QUOTE: &str = "0193a4b0-0000-7000-8000-0000000000e2";
const CLAIM: &str = "0193a4b0-0000-7000-8000-0000000000f1";
const UNKNOWN: &str = "0193a4b0-0000-7000-8000-00000000ffff";

const REQUEST_QUOTE: &str = "mutation Quote($input: RequestInsuranceQuoteInput!) {
  requestInsuranceQuote(input: $input) {
    position replayed
    quote { id product vehicleVin unansweredInsurers deductible { amount }
            offers { insurer premium { amount currency } coverage { amount } deductible { amount } commissionPercent } }
  }
}";

const SELECT_OFFER: &str = "mutation Select($quote: UUID!, $insurer: String!, $start: String) {
  selectInsuranceOffer(quoteId: $quote, insurer: $insurer, startDate: $start) {
    policy { id policyNumber status insurer product periodStart periodEnd premium { amount } coverage { amount }
             deductible { amount } commission { amount } document signature keyId }
  }
}";

const PAY_PREMIUM: &str = "mutation Pay($id: UUID!, $amount: MoneyInput!, $key: String!) {
  payPolicyPremium(id: $id, amount: $amount, idempotencyKey: $key) { policy { status premiumPaidAt } }
}";

const FILE_CLAIM: &str = "mutation File($policy: UUID!, $input: FileInsuranceClaimInput!) {
  fileInsuranceClaim(policyId: $policy, input: $input) { claim { id status claimed { amount } incidentDate } }
}";

const VERIFY: &str = "query Verify($document: String!, $signature: String!) {
  verifyPolicy(document: $document, signature: $signature) { valid policyNumber reason }
  dealershipPublicKey { publicKey keyId algorithm }
}";

/// An insurer whose service is down.
struct Failing(&'static str);

impl Insurer for Failing {
    fn id(&self) -> &str {
        self.0
    }

    fn quote<'a>(&'a self, _: &'a QuoteTerms) -> BoxFuture<'a, Result<Offer, InsurerError>> {
        Box::pin(async { Err(InsurerError::Unavailable("HTTP 503".into())) })
    }
}

/// One of the built-in tariff models, answering only after `delay`, as a partner reached over a
/// slow network would.
struct Slow {
    tariff: PartnerInsurer,
    delay: Duration,
}

impl Insurer for Slow {
    fn id(&self) -> &str {
        self.tariff.id()
    }

    fn quote<'a>(&'a self, terms: &'a QuoteTerms) -> BoxFuture<'a, Result<Offer, InsurerError>> {
        Box::pin(async move {
            tokio::time::sleep(self.delay).await;
            self.tariff.quote(terms).await
        })
    }
}

/// An insurer that never answers.
struct Hanging(&'static str);

impl Insurer for Hanging {
    fn id(&self) -> &str {
        self.0
    }

    fn quote<'a>(&'a self, _: &'a QuoteTerms) -> BoxFuture<'a, Result<Offer, InsurerError>> {
        Box::pin(futures::future::pending())
    }
}

fn quote_input(id: &str, product: &str, deductible: Option<&str>) -> Value {
    let mut input = json!({
        "id": id, "product": product, "customerId": ANNA, "vehicleId": VESTA,
        "driver": { "age": 35, "drivingExperienceYears": 10, "region": "MOSCOW", "bonusMalusClass": 3 },
        "enginePowerHp": 106
    });
    if let Some(amount) = deductible {
        input["deductible"] = json!({ "amount": amount, "currency": "RUB" });
    }
    input
}

async fn stock_and_register(app: &TestApp) {
    app.ok(
        STOCK_VEHICLE,
        json!({ "input": vehicle_input(VESTA, "XTA210990Y2766389", "Vesta", "1500000.00") }),
    )
    .await;
    app.ok(REGISTER_CUSTOMER, json!({ "input": customer_input(ANNA) }))
        .await;
}

fn rub(amount: &str) -> Money {
    Money::new(amount.parse().unwrap(), Currency::RUB).unwrap()
}

fn date(value: &Value) -> NaiveDate {
    value.as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_quote_becomes_a_signed_policy_that_is_paid_claimed_on_and_cancelled_with_a_refund() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    stock_and_register(&app).await;

    // Quote OSAGO and KASKO: all five partners answer.
    let osago = app
        .ok(
            REQUEST_QUOTE,
            json!({ "input": quote_input(OSAGO_QUOTE, "OSAGO", None) }),
        )
        .await;
    let quote = &osago["requestInsuranceQuote"]["quote"];
    assert_eq!(quote["offers"].as_array().unwrap().len(), 5);
    assert_eq!(quote["unansweredInsurers"], json!([]));
    assert_eq!(quote["vehicleVin"], "XTA210990Y2766389");
    let sever = quote["offers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|offer| offer["insurer"] == "SEVER")
        .unwrap();
    // 4500 × 1.8 (Moscow) × 1.0 × 1.0 × 1.2 (106 hp)
    assert_eq!(
        sever["premium"],
        json!({ "amount": "9720.00", "currency": "RUB" })
    );
    assert_eq!(sever["coverage"]["amount"], "400000.00");

    let kasko = app
        .ok(
            REQUEST_QUOTE,
            json!({ "input": quote_input(KASKO_QUOTE, "KASKO", Some("30000")) }),
        )
        .await;
    let offers = kasko["requestInsuranceQuote"]["quote"]["offers"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(offers.len(), 5);
    assert!(
        offers
            .iter()
            .all(|offer| offer["coverage"]["amount"] == "1500000.00"
                && offer["deductible"]["amount"] == "30000.00")
    );

    // Select Sever's KASKO offer: issued, numbered and signed.
    let issued = app
        .ok(
            SELECT_OFFER,
            json!({ "quote": KASKO_QUOTE, "insurer": "SEVER" }),
        )
        .await;
    let policy = issued["selectInsuranceOffer"]["policy"].clone();
    assert_eq!(policy["status"], "ISSUED");
    assert_eq!(policy["insurer"], "SEVER");
    let number = policy["policyNumber"].as_str().unwrap().to_owned();
    assert!(number.starts_with("ASL-KASKO-"), "{number}");
    let sever_kasko = offers
        .iter()
        .find(|offer| offer["insurer"] == "SEVER")
        .unwrap();
    assert_eq!(
        policy["premium"]["amount"],
        sever_kasko["premium"]["amount"]
    );
    let premium = rub(policy["premium"]["amount"].as_str().unwrap());
    assert_eq!(
        policy["commission"]["amount"],
        premium.percentage(15.into()).amount().to_string()
    );

    // The customer verifies the saved document; one changed character fails.
    let document = policy["document"].as_str().unwrap().to_owned();
    let signature = policy["signature"].as_str().unwrap().to_owned();
    let verified = app
        .ok(
            VERIFY,
            json!({ "document": document, "signature": signature }),
        )
        .await;
    assert_eq!(
        verified["verifyPolicy"],
        json!({ "valid": true, "policyNumber": number, "reason": null })
    );
    assert_eq!(verified["dealershipPublicKey"]["algorithm"], "Ed25519");
    assert_eq!(
        verified["dealershipPublicKey"]["keyId"],
        policy["keyId"].clone()
    );
    let tampered = document.replacen("\"SEVER\"", "\"SEVEN\"", 1);
    assert_ne!(tampered, document);
    let refused = app
        .ok(
            VERIFY,
            json!({ "document": tampered, "signature": signature }),
        )
        .await;
    assert_eq!(refused["verifyPolicy"]["valid"], false);
    assert_eq!(refused["verifyPolicy"]["reason"], "SIGNATURE_MISMATCH");
    let mut bad_signature = signature.clone().into_bytes();
    bad_signature[0] = if bad_signature[0] == b'A' { b'B' } else { b'A' };
    let refused = app
        .ok(
            VERIFY,
            json!({ "document": document, "signature": String::from_utf8(bad_signature).unwrap() }),
        )
        .await;
    assert_eq!(refused["verifyPolicy"]["valid"], false);

    // Found by its number.
    let by_number = app
        .ok(
            "query($n: String!) { policyByNumber(number: $n) { id } }",
            json!({ "n": number }),
        )
        .await;
    assert_eq!(by_number["policyByNumber"]["id"], KASKO_QUOTE);

    // Pay the premium: active.
    let paid = app
        .ok(
            PAY_PREMIUM,
            json!({ "id": KASKO_QUOTE, "amount": { "amount": premium.amount().to_string() }, "key": "premium-e2" }),
        )
        .await;
    assert_eq!(paid["payPolicyPremium"]["policy"]["status"], "ACTIVE");
    let events = app.event_count().await;
    let retried = app
        .ok(
            "mutation($id: UUID!, $amount: MoneyInput!, $key: String!) {
               payPolicyPremium(id: $id, amount: $amount, idempotencyKey: $key) { replayed } }",
            json!({ "id": KASKO_QUOTE, "amount": { "amount": premium.amount().to_string() }, "key": "premium-e2" }),
        )
        .await;
    assert_eq!(retried["payPolicyPremium"]["replayed"], true);
    assert_eq!(app.event_count().await, events, "a retry pays once");

    // File a claim, review, approve, pay.
    let today = policy["periodStart"].as_str().unwrap();
    let filed = app
        .ok(
            FILE_CLAIM,
            json!({ "policy": KASKO_QUOTE, "input": {
                "id": CLAIM, "incidentDate": today, "description": "rear bumper dented in a car park",
                "claimedAmount": { "amount": "50000.00" } } }),
        )
        .await;
    assert_eq!(filed["fileInsuranceClaim"]["claim"]["status"], "FILED");
    let handled = app
        .ok(
            "mutation($p: UUID!, $c: UUID!) {
               review: startInsuranceClaimReview(policyId: $p, claimId: $c) { claim { status } }
               approve: approveInsuranceClaim(policyId: $p, claimId: $c, amount: { amount: \"45000.00\" }) {
                 claim { status approved { amount } } }
               pay: payInsuranceClaim(policyId: $p, claimId: $c, idempotencyKey: \"claim-f1\") {
                 claim { status paidAt } policy { claimsPaid { amount } claims { id status } } }
             }",
            json!({ "p": KASKO_QUOTE, "c": CLAIM }),
        )
        .await;
    assert_eq!(handled["review"]["claim"]["status"], "UNDER_REVIEW");
    assert_eq!(
        handled["approve"]["claim"]["approved"]["amount"],
        "45000.00"
    );
    assert_eq!(handled["pay"]["claim"]["status"], "PAID");
    assert_eq!(handled["pay"]["policy"]["claimsPaid"]["amount"], "45000.00");
    assert_eq!(
        handled["pay"]["policy"]["claims"],
        json!([{ "id": CLAIM, "status": "PAID" }])
    );

    // Issue, pay and cancel the OSAGO policy: the unused days come back.
    let osago_policy = app
        .ok(
            SELECT_OFFER,
            json!({ "quote": OSAGO_QUOTE, "insurer": "sever" }),
        )
        .await["selectInsuranceOffer"]["policy"]
        .clone();
    app.ok(
        PAY_PREMIUM,
        json!({ "id": OSAGO_QUOTE, "amount": { "amount": "9720.00" }, "key": "premium-e1" }),
    )
    .await;
    let cancelled = app
        .ok(
            "mutation($id: UUID!) { cancelPolicy(id: $id, reason: \"vehicle sold\", idempotencyKey: \"cancel-e1\") {
               policy { status refund { amount currency } cancellationReason cancelledOn } } }",
            json!({ "id": OSAGO_QUOTE }),
        )
        .await;
    let cancelled = &cancelled["cancelPolicy"]["policy"];
    assert_eq!(cancelled["status"], "CANCELLED");
    let expected = pro_rata_refund(
        rub("9720.00"),
        date(&osago_policy["periodStart"]),
        date(&osago_policy["periodEnd"]),
        date(&cancelled["cancelledOn"]),
    );
    assert!(expected.is_positive() && expected.amount() < rub("9720.00").amount());
    assert_eq!(
        cancelled["refund"],
        json!({ "amount": expected.amount().to_string(), "currency": "RUB" })
    );

    // The list, filtered.
    let listed = app
        .ok(
            "query($c: UUID!) {
               all: policies(filter: { customerId: $c }) { totalCount edges { node { policyNumber } } }
               active: policies(filter: { status: ACTIVE, product: KASKO, insurer: \"SEVER\" }) { totalCount }
               quote(id: \"0193a4b0-0000-7000-8000-0000000000e2\") { policy { status } }
             }",
            json!({ "c": ANNA }),
        )
        .await;
    assert_eq!(listed["all"]["totalCount"], 2);
    assert_eq!(listed["active"]["totalCount"], 1);
    assert_eq!(listed["quote"]["policy"]["status"], "ACTIVE");

    // Rebuilding the read model from the log gives the same rows.
    app.stop().await;
    let ledger = Ledger::open(&database_url(&dir.path().join("autosalon.db")))
        .await
        .unwrap();
    ledger.projections.catch_up_all().await.unwrap();
    let live = dump(&ledger).await;
    // 2 quotes, 10 offers, 2 policies, 1 claim.
    assert_eq!(live.len(), 15, "{live:#?}");
    ledger
        .projections
        .rebuild("policies", |_, _| {})
        .await
        .unwrap();
    assert_eq!(dump(&ledger).await, live);
    ledger.db.close().await;
}

/// Every row of the insurance tables, as text.
async fn dump(ledger: &Ledger) -> Vec<String> {
    let mut rows = Vec::new();
    for table in [
        "insurance_quotes",
        "insurance_offers",
        "policies",
        "insurance_claims",
    ] {
        rows.extend(crate::rows::prefixed_rows(ledger.db.pool(), table).await);
    }
    rows
}

#[cfg(unix)]
#[tokio::test]
async fn a_signing_key_readable_by_others_stops_the_start() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir();
    let database = dir.path().join("autosalon.db");
    let settings = serve_args(&database);
    let key_file = settings.signing_key_file.clone();
    assert_eq!(key_file, dir.path().join("autosalon.db.signing.key"));
    std::fs::write(&key_file, format!("{}\n", "ab".repeat(32))).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let Err(error) = Application::build(settings.clone()).await else {
        panic!("the application must not start with a world-readable key");
    };
    assert!(
        format!("{error:#}").contains("wider than owner-only"),
        "{error:#}"
    );
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let app = spawn_with(settings).await;
    let key = app.ok("{ dealershipPublicKey { keyId } }", json!({})).await;
    assert_eq!(
        key["dealershipPublicKey"]["keyId"].as_str().unwrap().len(),
        16
    );
    app.stop().await;
}

#[tokio::test]
async fn insurers_that_fail_or_hang_are_left_out_and_named() {
    let dir = temp_dir();
    let mut insurers: Vec<Arc<dyn Insurer>> = PARTNERS[..4]
        .iter()
        .map(|tariff| Arc::new(PartnerInsurer::new(tariff)) as Arc<dyn Insurer>)
        .collect();
    insurers.push(Arc::new(Failing("TAIGA")));
    insurers.push(Arc::new(Hanging("SLOWPOKE")));
    let mut settings = serve_args(&dir.path().join("autosalon.db"));
    settings.insurer_timeout_ms = 300;
    let app = spawn_with_insurers(settings, insurers).await;
    stock_and_register(&app).await;
    let quote = app
        .ok(
            REQUEST_QUOTE,
            json!({ "input": quote_input(OSAGO_QUOTE, "OSAGO", None) }),
        )
        .await["requestInsuranceQuote"]["quote"]
        .clone();
    assert_eq!(quote["offers"].as_array().unwrap().len(), 4);
    assert_eq!(quote["unansweredInsurers"], json!(["TAIGA", "SLOWPOKE"]));
    // The insurer that did not answer cannot be selected.
    let response = app
        .graphql(
            SELECT_OFFER,
            json!({ "quote": OSAGO_QUOTE, "insurer": "TAIGA" }),
        )
        .await;
    assert_eq!(error_codes(&response), ["OFFER_NOT_FOUND"]);
    app.stop().await;
}

/// The five tariff models, the last answering after `delay`.
fn partners_with_a_slow_last(delay: Duration) -> Vec<Arc<dyn Insurer>> {
    let mut insurers: Vec<Arc<dyn Insurer>> = PARTNERS[..4]
        .iter()
        .map(|tariff| Arc::new(PartnerInsurer::new(tariff)) as Arc<dyn Insurer>)
        .collect();
    insurers.push(Arc::new(Slow {
        tariff: PartnerInsurer::new(&PARTNERS[4]),
        delay,
    }));
    insurers
}

#[tokio::test]
async fn an_insurer_slower_than_the_configured_timeout_is_left_out_and_one_within_it_is_not() {
    let slow = PARTNERS[4].id;
    // AUTOSALON_INSURER_TIMEOUT_MS=250: the quote does not wait for the slow insurer.
    let dir = temp_dir();
    let mut settings = serve_args(&dir.path().join("autosalon.db"));
    settings.insurer_timeout_ms = 250;
    let app =
        spawn_with_insurers(settings, partners_with_a_slow_last(Duration::from_secs(3))).await;
    stock_and_register(&app).await;
    let started = Instant::now();
    let quote = app
        .ok(
            REQUEST_QUOTE,
            json!({ "input": quote_input(OSAGO_QUOTE, "OSAGO", None) }),
        )
        .await["requestInsuranceQuote"]["quote"]
        .clone();
    let took = started.elapsed();
    assert_eq!(quote["unansweredInsurers"], json!([slow]));
    let offered: Vec<_> = quote["offers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|offer| offer["insurer"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        offered,
        PARTNERS[..4]
            .iter()
            .map(|t| t.id.to_string())
            .collect::<Vec<_>>()
    );
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(3),
        "the quote took {took:?}: it waited for the timeout, not for the slow insurer"
    );
    let response = app
        .graphql(
            SELECT_OFFER,
            json!({ "quote": OSAGO_QUOTE, "insurer": slow }),
        )
        .await;
    assert_eq!(error_codes(&response), ["OFFER_NOT_FOUND"]);
    app.stop().await;

    // With a timeout longer than its delay, the same insurer makes its offer.
    let dir = temp_dir();
    let mut settings = serve_args(&dir.path().join("autosalon.db"));
    settings.insurer_timeout_ms = 2_000;
    let app = spawn_with_insurers(
        settings,
        partners_with_a_slow_last(Duration::from_millis(300)),
    )
    .await;
    stock_and_register(&app).await;
    let quote = app
        .ok(
            REQUEST_QUOTE,
            json!({ "input": quote_input(OSAGO_QUOTE, "OSAGO", None) }),
        )
        .await["requestInsuranceQuote"]["quote"]
        .clone();
    assert_eq!(quote["unansweredInsurers"], json!([]));
    assert_eq!(quote["offers"].as_array().unwrap().len(), 5);
    app.stop().await;
}

#[tokio::test]
async fn when_no_insurer_answers_the_quote_is_refused_and_nothing_is_written() {
    let dir = temp_dir();
    let mut settings = serve_args(&dir.path().join("autosalon.db"));
    settings.insurer_timeout_ms = 200;
    let insurers: Vec<Arc<dyn Insurer>> = vec![
        Arc::new(Failing("TAIGA")),
        Arc::new(Hanging("SLOWPOKE")),
        Arc::new(Slow {
            tariff: PartnerInsurer::new(&PARTNERS[0]),
            delay: Duration::from_secs(2),
        }),
    ];
    let app = spawn_with_insurers(settings, insurers).await;
    stock_and_register(&app).await;
    refused(
        &app,
        REQUEST_QUOTE,
        json!({ "input": quote_input(OSAGO_QUOTE, "OSAGO", None) }),
        "NO_INSURANCE_OFFERS",
    )
    .await;
    app.stop().await;
}

async fn refused(app: &TestApp, query: &str, variables: Value, code: &str) {
    let before = app.event_count().await;
    let response = app.graphql(query, variables.clone()).await;
    assert_eq!(
        error_codes(&response),
        [code],
        "{query} {variables}: {response:#}"
    );
    assert_eq!(app.event_count().await, before, "nothing is written");
}

#[tokio::test]
async fn bad_insurance_inputs_are_refused_with_their_codes_and_write_nothing() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    stock_and_register(&app).await;

    let mut input = quote_input(OSAGO_QUOTE, "OSAGO", None);
    input["vehicleId"] = json!(UNKNOWN);
    refused(&app, REQUEST_QUOTE, json!({ "input": input }), "NOT_FOUND").await;
    let mut input = quote_input(OSAGO_QUOTE, "OSAGO", None);
    input["customerId"] = json!(UNKNOWN);
    refused(&app, REQUEST_QUOTE, json!({ "input": input }), "NOT_FOUND").await;
    let mut input = quote_input(OSAGO_QUOTE, "OSAGO", None);
    input["driver"]["age"] = json!(17);
    refused(&app, REQUEST_QUOTE, json!({ "input": input }), "VALIDATION").await;
    let mut input = quote_input(OSAGO_QUOTE, "OSAGO", None);
    input["driver"]["bonusMalusClass"] = json!(14);
    refused(&app, REQUEST_QUOTE, json!({ "input": input }), "VALIDATION").await;
    let mut input = quote_input(OSAGO_QUOTE, "OSAGO", None);
    input["enginePowerHp"] = json!(-5);
    refused(&app, REQUEST_QUOTE, json!({ "input": input }), "VALIDATION").await;
    let input = quote_input(KASKO_QUOTE, "KASKO", Some("20000"));
    refused(&app, REQUEST_QUOTE, json!({ "input": input }), "VALIDATION").await;
    let input = quote_input(OSAGO_QUOTE, "OSAGO", Some("1000"));
    refused(&app, REQUEST_QUOTE, json!({ "input": input }), "VALIDATION").await;

    app.ok(
        REQUEST_QUOTE,
        json!({ "input": quote_input(OSAGO_QUOTE, "OSAGO", None) }),
    )
    .await;
    refused(
        &app,
        REQUEST_QUOTE,
        json!({ "input": quote_input(OSAGO_QUOTE, "OSAGO", None) }),
        "POLICY_ALREADY_EXISTS",
    )
    .await;
    refused(
        &app,
        SELECT_OFFER,
        json!({ "quote": OSAGO_QUOTE, "insurer": "LLOYDS" }),
        "OFFER_NOT_FOUND",
    )
    .await;
    refused(
        &app,
        SELECT_OFFER,
        json!({ "quote": OSAGO_QUOTE, "insurer": "SEVER", "start": "2026-13-01" }),
        "VALIDATION",
    )
    .await;
    refused(
        &app,
        SELECT_OFFER,
        json!({ "quote": OSAGO_QUOTE, "insurer": "SEVER", "start": "2000-01-01" }),
        "VALIDATION",
    )
    .await;
    refused(
        &app,
        SELECT_OFFER,
        json!({ "quote": UNKNOWN, "insurer": "SEVER" }),
        "NOT_FOUND",
    )
    .await;
    refused(
        &app,
        PAY_PREMIUM,
        json!({ "id": OSAGO_QUOTE, "amount": { "amount": "9720.00" }, "key": "too-early" }),
        "INVALID_POLICY_TRANSITION",
    )
    .await;

    app.ok(
        SELECT_OFFER,
        json!({ "quote": OSAGO_QUOTE, "insurer": "SEVER" }),
    )
    .await;
    refused(
        &app,
        PAY_PREMIUM,
        json!({ "id": OSAGO_QUOTE, "amount": { "amount": "9719.99" }, "key": "short" }),
        "PREMIUM_AMOUNT_MISMATCH",
    )
    .await;
    let claim = |incident: &str, amount: &str| {
        json!({ "policy": OSAGO_QUOTE, "input": {
            "id": CLAIM, "incidentDate": incident, "description": "collision",
            "claimedAmount": { "amount": amount } } })
    };
    refused(
        &app,
        FILE_CLAIM,
        claim("2026-01-01", "1000.00"),
        "INVALID_POLICY_TRANSITION",
    )
    .await;
    app.ok(
        PAY_PREMIUM,
        json!({ "id": OSAGO_QUOTE, "amount": { "amount": "9720.00" }, "key": "premium-e1" }),
    )
    .await;
    let policy = app
        .ok(
            "query($id: UUID!) { policy(id: $id) { periodStart } }",
            json!({ "id": OSAGO_QUOTE }),
        )
        .await;
    let start = policy["policy"]["periodStart"].as_str().unwrap().to_owned();
    refused(
        &app,
        FILE_CLAIM,
        claim("2020-01-01", "1000.00"),
        "INCIDENT_OUTSIDE_PERIOD",
    )
    .await;
    refused(
        &app,
        FILE_CLAIM,
        claim(&start, "400000.01"),
        "CLAIM_EXCEEDS_COVERAGE",
    )
    .await;
    refused(
        &app,
        FILE_CLAIM,
        claim("22.11.2026", "1000.00"),
        "VALIDATION",
    )
    .await;
    refused(&app, FILE_CLAIM, claim(&start, "0.00"), "VALIDATION").await;
    app.ok(FILE_CLAIM, claim(&start, "100000.00")).await;
    refused(
        &app,
        "mutation($p: UUID!, $c: UUID!) { approveInsuranceClaim(policyId: $p, claimId: $c, amount: { amount: \"1.00\" }) { position } }",
        json!({ "p": OSAGO_QUOTE, "c": CLAIM }),
        "INVALID_CLAIM_TRANSITION",
    )
    .await;
    refused(
        &app,
        "mutation($p: UUID!, $c: UUID!) { startInsuranceClaimReview(policyId: $p, claimId: $c) { position } }",
        json!({ "p": OSAGO_QUOTE, "c": UNKNOWN }),
        "NOT_FOUND",
    )
    .await;
    refused(
        &app,
        "mutation($id: UUID!) { expirePolicy(id: $id) { position } }",
        json!({ "id": OSAGO_QUOTE }),
        "POLICY_PERIOD_NOT_ENDED",
    )
    .await;
    refused(
        &app,
        "mutation($id: UUID!) { cancelPolicy(id: $id, reason: \" \", idempotencyKey: \"c\") { position } }",
        json!({ "id": OSAGO_QUOTE }),
        "VALIDATION",
    )
    .await;

    for query in [
        "query($id: UUID!) { policy(id: $id) { id } }",
        "query($id: UUID!) { quote(id: $id) { id } }",
    ] {
        let response = app.graphql(query, json!({ "id": UNKNOWN })).await;
        assert_eq!(error_codes(&response), ["NOT_FOUND"], "{query}");
    }
    let response = app
        .graphql(
            "{ policyByNumber(number: \"ASL-OSAGO-1999-0\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(error_codes(&response), ["NOT_FOUND"]);
    app.stop().await;
}

/// At 01:30 in Moscow the UTC date is still the day before. A policy issued then starts on the Moscow
/// date; a start on the UTC date, a day already over in Moscow, is refused; a cancellation that
/// night counts its unused days from the Moscow date, the date the ledger gives its entry.
#[tokio::test]
async fn after_moscow_midnight_policies_start_and_cancel_on_the_moscow_date() {
    let dir = temp_dir();
    let night: chrono::DateTime<chrono::Utc> = "2026-06-10T22:30:00Z".parse().unwrap();
    let app = spawn_with_clock(&dir, Arc::new(commands::clock::FixedClock(night))).await;
    stock_and_register(&app).await;
    for (id, product, deductible) in [
        (OSAGO_QUOTE, "OSAGO", None),
        (KASKO_QUOTE, "KASKO", Some("30000")),
    ] {
        app.ok(
            REQUEST_QUOTE,
            json!({ "input": quote_input(id, product, deductible) }),
        )
        .await;
    }
    refused(
        &app,
        SELECT_OFFER,
        json!({ "quote": KASKO_QUOTE, "insurer": "sever", "start": "2026-06-10" }),
        "VALIDATION",
    )
    .await;
    let too_early = app
        .graphql(
            SELECT_OFFER,
            json!({ "quote": KASKO_QUOTE, "insurer": "sever", "start": "2026-06-10" }),
        )
        .await;
    assert_eq!(
        too_early["errors"][0]["message"],
        "the policy must start between 2026-06-11 and 2026-08-10"
    );

    let policy = app
        .ok(
            SELECT_OFFER,
            json!({ "quote": OSAGO_QUOTE, "insurer": "sever" }),
        )
        .await["selectInsuranceOffer"]["policy"]
        .clone();
    assert_eq!(policy["periodStart"], "2026-06-11");
    assert_eq!(policy["periodEnd"], "2027-06-11");
    app.ok(
        PAY_PREMIUM,
        json!({ "id": OSAGO_QUOTE, "amount": { "amount": "9720.00" }, "key": "night-premium" }),
    )
    .await;
    let cancelled = app
        .ok(
            "mutation($id: UUID!) { cancelPolicy(id: $id, reason: \"vehicle sold\", idempotencyKey: \"night-cancel\") {
               position policy { refund { amount } cancelledOn } } }",
            json!({ "id": OSAGO_QUOTE }),
        )
        .await["cancelPolicy"]
        .clone();
    assert_eq!(cancelled["policy"]["cancelledOn"], "2026-06-11");
    // Cancelled on its first day: that day was covered, the other 364 come back. Dated by UTC, the
    // cancellation would fall before the start and refund all 365.
    let expected = pro_rata_refund(
        rub("9720.00"),
        date(&json!("2026-06-11")),
        date(&json!("2027-06-11")),
        date(&json!("2026-06-11")),
    );
    assert_eq!(expected.amount(), "9693.37".parse().unwrap());
    assert_eq!(
        cancelled["policy"]["refund"]["amount"],
        expected.amount().to_string()
    );
    let journal = app
        .ok(
            "{ journal(first: 50) { edges { node { position businessDate eventType } } } }",
            json!({}),
        )
        .await;
    let entry = journal["journal"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| &edge["node"])
        .find(|node| node["position"] == cancelled["position"])
        .unwrap_or_else(|| panic!("no journal entry for the cancellation: {journal:#}"));
    assert_eq!(entry["eventType"], "PolicyCancelled");
    assert_eq!(entry["businessDate"], "2026-06-11");
}
