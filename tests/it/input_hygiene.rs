//! The door for text and ids: every free-text field refuses a card number with
//! `CARD_NUMBER_REFUSED` (never answered, stored or logged), and every string input refuses control
//! characters, bidi overrides, blank values and anything over its documented maximum with
//! `VALIDATION`, before anything is written; the nil UUID is not an id.

use serde_json::{Value, json};

use crate::helpers::*;

/// Stands for the value under test in a case's variables.
const HOLE: &str = "§";

const VEHICLE: &str = "0193a4b0-0000-7000-8000-000000000901";
const CUSTOMER: &str = "0193a4b0-0000-7000-8000-0000000009c1";
const SOMEONE: &str = "0193a4b0-0000-7000-8000-0000000009ff";

/// One string input: its GraphQL name (the key of its text rule), a document that sends `$t` or a
/// variable holding [`HOLE`] there, and the variables.
struct Case {
    field: &'static str,
    /// Where, for messages.
    place: &'static str,
    query: &'static str,
    variables: Value,
}

/// A copy of `value` with every [`HOLE`] string replaced by `text`.
fn fill(value: &Value, text: &str) -> Value {
    match value {
        Value::String(s) if s == HOLE => Value::String(text.to_string()),
        Value::Array(items) => Value::Array(items.iter().map(|v| fill(v, text)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), fill(v, text)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn with(mut object: Value, field: &str, value: Value) -> Value {
    object[field] = value;
    object
}

/// Every free-text field (scanned for card numbers), in mutations and in query filters.
fn free_text_cases() -> Vec<Case> {
    let vehicle = vehicle_input(VEHICLE, "XTA210990Y2766389", "Vesta", "1500000.00");
    let customer = customer_input(CUSTOMER);
    let stock = "mutation($input: StockVehicleInput!) { stockVehicle(input: $input) { position } }";
    let register =
        "mutation($input: RegisterCustomerInput!) { registerCustomer(input: $input) { position } }";
    let book = "mutation($input: BookServiceInput!) { bookService(input: $input) { position } }";
    let booking = json!({
        "customerId": CUSTOMER, "vehicleId": VEHICLE, "mechanicId": "M-017", "kind": "REPAIR",
        "start": "2030-03-15T07:00:00Z", "end": "2030-03-15T09:00:00Z"
    });
    let mut cases = Vec::new();
    for field in ["brand", "model", "trim", "colour", "location"] {
        cases.push(Case {
            field,
            place: "stockVehicle",
            query: stock,
            variables: json!({ "input": with(vehicle.clone(), field, json!(HOLE)) }),
        });
    }
    cases.push(Case {
        field: "name",
        place: "stockVehicle specifications",
        query: stock,
        variables: json!({ "input": with(vehicle.clone(), "specifications", json!([{ "name": HOLE, "value": "x" }])) }),
    });
    cases.push(Case {
        field: "value",
        place: "stockVehicle specifications",
        query: stock,
        variables: json!({ "input": with(vehicle.clone(), "specifications", json!([{ "name": "x", "value": HOLE }])) }),
    });
    for field in ["fullName", "email", "address"] {
        cases.push(Case {
            field,
            place: "registerCustomer",
            query: register,
            variables: json!({ "input": with(customer.clone(), field, json!(HOLE)) }),
        });
    }
    for field in ["email", "address"] {
        cases.push(Case {
            field,
            place: "changeCustomerContactDetails",
            query: "mutation($id: UUID!, $input: ContactDetailsInput!) {
                changeCustomerContactDetails(id: $id, input: $input) { position } }",
            variables: json!({ "id": CUSTOMER, "input": { field: HOLE } }),
        });
    }
    cases.push(Case {
        field: "location",
        place: "relocateVehicle",
        query: "mutation($t: String!) { relocateVehicle(id: \"0193a4b0-0000-7000-8000-000000000901\", location: $t) { position } }",
        variables: json!({ "t": HOLE }),
    });
    for (place, query) in [
        (
            "withdrawVehicle",
            "mutation($t: String!) { withdrawVehicle(id: \"0193a4b0-0000-7000-8000-000000000901\", reason: $t) { position } }",
        ),
        (
            "cancelOrder",
            "mutation($t: String!) { cancelOrder(id: \"0193a4b0-0000-7000-8000-0000000009ff\", reason: $t) { position } }",
        ),
        (
            "failPayment",
            "mutation($t: String!) { failPayment(id: \"0193a4b0-0000-7000-8000-0000000009ff\", reason: $t, idempotencyKey: \"k\") { position } }",
        ),
        (
            "cancelPayment",
            "mutation($t: String!) { cancelPayment(id: \"0193a4b0-0000-7000-8000-0000000009ff\", reason: $t, idempotencyKey: \"k\") { position } }",
        ),
        (
            "rejectLoan",
            "mutation($t: String!) { rejectLoan(id: \"0193a4b0-0000-7000-8000-0000000009ff\", reason: $t) { position } }",
        ),
        (
            "cancelPolicy",
            "mutation($t: String!) { cancelPolicy(id: \"0193a4b0-0000-7000-8000-0000000009ff\", reason: $t, idempotencyKey: \"k\") { position } }",
        ),
        (
            "rejectInsuranceClaim",
            "mutation($t: String!) { rejectInsuranceClaim(policyId: \"0193a4b0-0000-7000-8000-0000000009ff\", claimId: \"0193a4b0-0000-7000-8000-0000000009fe\", reason: $t) { position } }",
        ),
        (
            "cancelBooking",
            "mutation($t: String!) { cancelBooking(id: \"0193a4b0-0000-7000-8000-0000000009ff\", reason: $t) { position } }",
        ),
    ] {
        cases.push(Case {
            field: "reason",
            place,
            query,
            variables: json!({ "t": HOLE }),
        });
    }
    cases.push(Case {
        field: "reason",
        place: "refundPayment",
        query: "mutation($input: RefundPaymentInput!) { refundPayment(input: $input, idempotencyKey: \"k\") { position } }",
        variables: json!({ "input": { "paymentId": SOMEONE, "amount": { "amount": "1.00" }, "reason": HOLE } }),
    });
    cases.push(Case {
        field: "gatewayTransactionId",
        place: "startPaymentProcessing",
        query: "mutation($t: String!) { startPaymentProcessing(id: \"0193a4b0-0000-7000-8000-0000000009ff\", gatewayTransactionId: $t, idempotencyKey: \"k\") { position } }",
        variables: json!({ "t": HOLE }),
    });
    cases.push(Case {
        field: "notes",
        place: "bookService",
        query: book,
        variables: json!({ "input": with(booking.clone(), "notes", json!(HOLE)) }),
    });
    cases.push(Case {
        field: "mechanicId",
        place: "bookService",
        query: book,
        variables: json!({ "input": with(booking, "mechanicId", json!(HOLE)) }),
    });
    cases.push(Case {
        field: "mechanicId",
        place: "rescheduleBooking",
        query: "mutation($t: String!) { rescheduleBooking(id: \"0193a4b0-0000-7000-8000-0000000009ff\", mechanicId: $t,
            start: \"2030-03-15T07:00:00Z\", end: \"2030-03-15T09:00:00Z\") { position } }",
        variables: json!({ "t": HOLE }),
    });
    cases.push(Case {
        field: "work",
        place: "completeBooking",
        query: "mutation($input: CompleteBookingInput!) { completeBooking(id: \"0193a4b0-0000-7000-8000-0000000009ff\", input: $input, idempotencyKey: \"k\") { position } }",
        variables: json!({ "input": { "mileageKm": 1, "work": ["oil", HOLE], "cost": { "amount": "1.00" } } }),
    });
    cases.push(Case {
        field: "description",
        place: "fileInsuranceClaim",
        query: "mutation($input: FileInsuranceClaimInput!) { fileInsuranceClaim(policyId: \"0193a4b0-0000-7000-8000-0000000009ff\", input: $input) { position } }",
        variables: json!({ "input": { "incidentDate": "2030-03-15", "description": HOLE, "claimedAmount": { "amount": "1.00" } } }),
    });
    cases.push(Case {
        field: "insurer",
        place: "selectInsuranceOffer",
        query: "mutation($t: String!) { selectInsuranceOffer(quoteId: \"0193a4b0-0000-7000-8000-0000000009ff\", insurer: $t) { position } }",
        variables: json!({ "t": HOLE }),
    });
    for field in ["brand", "model"] {
        cases.push(Case {
            field,
            place: "vehicles filter",
            query: "query($filter: VehicleFilter) { vehicles(filter: $filter) { totalCount } }",
            variables: json!({ "filter": { field: HOLE } }),
        });
    }
    cases.push(Case {
        field: "insurer",
        place: "policies filter",
        query: "query($filter: PolicyFilter) { policies(filter: $filter) { totalCount } }",
        variables: json!({ "filter": { "insurer": HOLE } }),
    });
    cases.push(Case {
        field: "mechanicId",
        place: "bookings filter",
        query: "query($filter: BookingFilter) { bookings(filter: $filter) { totalCount } }",
        variables: json!({ "filter": { "mechanicId": HOLE } }),
    });
    cases
}

/// String inputs that are machine tokens: not scanned for card numbers, but held to every other
/// rule.
fn token_cases() -> Vec<Case> {
    vec![
        Case {
            field: "idempotencyKey",
            place: "confirmOrder",
            query: "mutation($t: String) { confirmOrder(id: \"0193a4b0-0000-7000-8000-0000000009ff\", idempotencyKey: $t) { position } }",
            variables: json!({ "t": HOLE }),
        },
        Case {
            field: "after",
            place: "vehicles",
            query: "query($t: String) { vehicles(after: $t) { totalCount } }",
            variables: json!({ "t": HOLE }),
        },
        Case {
            field: "vin",
            place: "stockVehicle",
            query: "mutation($input: StockVehicleInput!) { stockVehicle(input: $input) { position } }",
            variables: json!({ "input": with(vehicle_input(VEHICLE, "x", "Vesta", "1.00"), "vin", json!(HOLE)) }),
        },
        Case {
            field: "phone",
            place: "registerCustomer",
            query: "mutation($input: RegisterCustomerInput!) { registerCustomer(input: $input) { position } }",
            variables: json!({ "input": with(customer_input(CUSTOMER), "phone", json!(HOLE)) }),
        },
        Case {
            field: "number",
            place: "policyByNumber",
            query: "query($t: String!) { policyByNumber(number: $t) { id } }",
            variables: json!({ "t": HOLE }),
        },
        Case {
            field: "signature",
            place: "verifyPolicy",
            query: "query($t: String!) { verifyPolicy(document: \"{}\", signature: $t) { valid } }",
            variables: json!({ "t": HOLE }),
        },
    ]
}

fn max_chars(field: &str) -> usize {
    queries::input::RULES
        .iter()
        .find(|rule| rule.fields.contains(&field))
        .unwrap_or_else(|| panic!("no text rule for {field}"))
        .max_chars
}

async fn refused_with(app: &TestApp, case: &Case, text: &str, code: &str, what: &str) -> Value {
    let response = app.graphql(case.query, fill(&case.variables, text)).await;
    assert_eq!(
        error_codes(&response),
        [code],
        "{} in {} ({what}): {response:#}",
        case.field,
        case.place
    );
    response
}

#[tokio::test]
async fn a_card_number_in_any_free_text_field_is_refused_and_never_answered_stored_or_logged() {
    let logs = crate::payments::server_logs();
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    let before = app.event_count().await;
    let digits = "5555555555554444";
    let hidden = |text: &str| text.replace([' ', '-'], "").contains(digits);
    let cases = free_text_cases();
    for case in &cases {
        for card in [
            "5555555555554444",
            "pay by 5555 5555 5555 4444 please",
            "5555-5555-5555-4444",
        ] {
            let answer = refused_with(&app, case, card, "CARD_NUMBER_REFUSED", "card number").await;
            assert!(!hidden(&answer.to_string()), "echoed: {answer}");
        }
    }
    assert_eq!(app.event_count().await, before, "nothing written");
    // A number that fails the Luhn check is ordinary text.
    let fine = app
        .graphql(
            "mutation($input: RegisterCustomerInput!) { registerCustomer(input: $input) { customer { address } } }",
            json!({ "input": with(customer_input(CUSTOMER), "address", json!("Moscow, contract 5555 5555 5555 4445")) }),
        )
        .await;
    assert_eq!(
        fine["data"]["registerCustomer"]["customer"]["address"],
        "Moscow, contract 5555 5555 5555 4445",
        "{fine:#}"
    );
    let events = app
        .ok(
            "{ events(first: 200) { edges { node { payload metadata } } } }",
            json!({}),
        )
        .await;
    assert!(!hidden(&events.to_string()), "a card number in the log");
    app.stop().await;
    assert!(!hidden(&logs.text()), "a card number in the server log");
    assert!(cases.len() >= 30, "{} cases", cases.len());
}

#[tokio::test]
async fn every_string_input_refuses_control_characters_bidi_overrides_blanks_and_overlong_text() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    let before = app.event_count().await;
    for case in free_text_cases().iter().chain(&token_cases()) {
        let max = max_chars(case.field);
        for (text, what) in [
            ("Anna\u{0}".to_string(), "NUL"),
            ("Anna\u{1b}[2J".to_string(), "terminal escape"),
            ("Anna\u{85}".to_string(), "C1 control"),
            ("Anna\u{202E}avortep".to_string(), "bidi override"),
            ("\u{2066}Anna\u{2069}".to_string(), "bidi isolate"),
            ("".to_string(), "empty"),
            ("   ".to_string(), "blank"),
            ("\u{200B}\u{200D}\u{FEFF}".to_string(), "zero-width only"),
            ("x".repeat(max + 1), "one over the maximum"),
        ] {
            let answer = refused_with(&app, case, &text, "VALIDATION", what).await;
            let message = answer["errors"][0]["message"].as_str().unwrap();
            assert!(
                !message.contains("Anna"),
                "the value is repeated: {message}"
            );
        }
    }
    assert_eq!(app.event_count().await, before, "nothing written");
    app.stop().await;
}

#[tokio::test]
async fn a_900_kilobyte_name_is_refused_before_anything_is_stored() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    let before = app.event_count().await;
    let input = with(
        customer_input(CUSTOMER),
        "fullName",
        json!("A".repeat(900 * 1024)),
    );
    let started = std::time::Instant::now();
    let answer = app
        .graphql(REGISTER_CUSTOMER, json!({ "input": input }))
        .await;
    assert_eq!(error_codes(&answer), ["VALIDATION"], "{answer:#}");
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("at most 200 characters"),
        "{answer:#}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(app.event_count().await, before, "nothing written");
    let customer = app
        .graphql(
            &format!("{{ customer(id: \"{CUSTOMER}\") {{ id }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(error_codes(&customer), ["NOT_FOUND"]);
    app.stop().await;
}

#[tokio::test]
async fn multi_line_fields_keep_newlines_and_tabs_and_one_line_fields_do_not() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    let address = "Moscow\nTverskaya 1,\tflat 5";
    let registered = app
        .ok(
            "mutation($input: RegisterCustomerInput!) { registerCustomer(input: $input) { customer { address } } }",
            json!({ "input": with(customer_input(CUSTOMER), "address", json!(address)) }),
        )
        .await;
    assert_eq!(
        registered["registerCustomer"]["customer"]["address"],
        address
    );
    let one_line = app
        .graphql(
            REGISTER_CUSTOMER,
            json!({ "input": with(customer_input(SOMEONE), "fullName", json!("Anna\nPetrova")) }),
        )
        .await;
    assert_eq!(error_codes(&one_line), ["VALIDATION"]);
    let crlf = app
        .graphql(
            REGISTER_CUSTOMER,
            json!({ "input": with(customer_input(SOMEONE), "address", json!("Moscow\r\nTverskaya 1")) }),
        )
        .await;
    assert_eq!(error_codes(&crlf), ["VALIDATION"], "only newline and tab");
    app.stop().await;
}

#[tokio::test]
async fn the_nil_uuid_is_refused_as_an_id_in_arguments_and_inputs() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    let before = app.event_count().await;
    let nil = "00000000-0000-0000-0000-000000000000";
    let read = app
        .graphql(&format!("{{ vehicle(id: \"{nil}\") {{ id }} }}"), json!({}))
        .await;
    assert_eq!(error_codes(&read), ["VALIDATION"], "{read:#}");
    let stock = app
        .graphql(
            STOCK_VEHICLE,
            json!({ "input": vehicle_input(nil, "XTA210990Y2766389", "Vesta", "1500000.00") }),
        )
        .await;
    assert_eq!(error_codes(&stock), ["VALIDATION"], "{stock:#}");
    let draft = app
        .graphql(
            DRAFT_ORDER,
            json!({ "input": { "id": SOMEONE, "customerId": nil, "vehicleId": VEHICLE } }),
        )
        .await;
    assert_eq!(error_codes(&draft), ["VALIDATION"], "{draft:#}");
    let cancel = app
        .graphql(CANCEL_ORDER, json!({ "id": nil, "reason": "duplicate" }))
        .await;
    assert_eq!(error_codes(&cancel), ["VALIDATION"], "{cancel:#}");
    assert_eq!(app.event_count().await, before, "nothing written");
    app.stop().await;
}
