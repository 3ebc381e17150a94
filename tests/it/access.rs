//! Who may do what: the permission matrix against the schema and docs/security.md, each operation
//! run as every role and as anonymous, own records only, token attacks, and brute force.

use std::collections::{BTreeMap, BTreeSet};

use autosalon::policy::{Access, COLUMNS, MATRIX, Root};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::helpers::*;

// ----- the matrix against the schema and the docs -------------------------------------------

const INTROSPECTION: &str = r#"{ __schema {
  queryType { name } mutationType { name }
  types { name kind
    fields { name args { name type { ...Ref } } type { ...Ref } }
    inputFields { name type { ...Ref } }
    enumValues { name } } } }
fragment Ref on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } }"#;

/// The schema as introspection shows it, straight from the code (no server, no policy).
async fn introspect() -> Value {
    let schema = autosalon::schema::builder().finish();
    let response = schema.execute(INTROSPECTION).await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    serde_json::to_value(response.data).unwrap()["__schema"].clone()
}

fn type_named<'a>(schema: &'a Value, name: &str) -> &'a Value {
    schema["types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("type {name}"))
}

fn root_fields(schema: &Value, root: &str) -> Vec<Value> {
    type_named(schema, root)["fields"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| !f["name"].as_str().unwrap().starts_with("__"))
        .cloned()
        .collect()
}

#[tokio::test]
async fn every_query_and_mutation_of_the_schema_has_a_row_and_the_docs_show_the_same_matrix() {
    let schema = introspect().await;
    let mut in_schema = BTreeSet::new();
    for (root, type_name) in [(Root::Query, "QueryRoot"), (Root::Mutation, "MutationRoot")] {
        for field in root_fields(&schema, type_name) {
            let name = field["name"].as_str().unwrap().to_owned();
            assert!(
                autosalon::policy::row(root, &name).is_some(),
                "{type_name}.{name} has no row in the permission matrix (src/policy.rs and docs/security.md)"
            );
            in_schema.insert((type_name, name));
        }
    }
    for (root, name, _) in MATRIX {
        assert!(
            in_schema.contains(&(root.type_name(), name.to_string())),
            "the matrix names {name}, which the schema does not have"
        );
    }
    // docs/security.md: one table row per operation, the same cells as the code.
    let docs =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/security.md")).unwrap();
    let mut documented = BTreeMap::new();
    for line in docs.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 14 || !matches!(cells[1], "query" | "mutation") {
            continue;
        }
        let name = cells[2].trim_matches('`').to_owned();
        documented.insert((cells[1].to_owned(), name), cells[3..13].join(" "));
    }
    assert_eq!(
        documented.len(),
        MATRIX.len(),
        "one documented row per operation"
    );
    for (root, name, _) in MATRIX {
        let (anonymous, roles) = autosalon::policy::row(*root, name).unwrap();
        let expected: Vec<&str> = std::iter::once(anonymous)
            .chain(roles)
            .map(Access::word)
            .collect();
        let kind = match root {
            Root::Query => "query",
            Root::Mutation => "mutation",
        };
        assert_eq!(
            documented.get(&(kind.to_owned(), name.to_string())),
            Some(&expected.join(" ")),
            "docs/security.md differs from src/policy.rs for {name}"
        );
    }
}

// ----- running every operation as everyone --------------------------------------------------

/// The GraphQL type a type reference spells (`[UUID!]!`).
fn spelled(ty: &Value) -> String {
    match ty["kind"].as_str().unwrap() {
        "NON_NULL" => format!("{}!", spelled(&ty["ofType"])),
        "LIST" => format!("[{}]", spelled(&ty["ofType"])),
        _ => ty["name"].as_str().unwrap().to_owned(),
    }
}

/// A value of the given type that passes validation (not necessarily the domain's rules).
fn sample(schema: &Value, ty: &Value) -> Value {
    match ty["kind"].as_str().unwrap() {
        "NON_NULL" => sample(schema, &ty["ofType"]),
        "LIST" => json!([sample(schema, &ty["ofType"])]),
        "ENUM" => {
            let name = ty["name"].as_str().unwrap();
            type_named(schema, name)["enumValues"][0]["name"].clone()
        }
        "INPUT_OBJECT" => {
            let name = ty["name"].as_str().unwrap();
            let mut object = serde_json::Map::new();
            for field in type_named(schema, name)["inputFields"].as_array().unwrap() {
                if field["type"]["kind"] == "NON_NULL" {
                    object.insert(
                        field["name"].as_str().unwrap().to_owned(),
                        sample(schema, &field["type"]),
                    );
                }
            }
            Value::Object(object)
        }
        _ => match ty["name"].as_str().unwrap() {
            "UUID" => json!(uuid::Uuid::new_v4().to_string()),
            "Int" => json!(1),
            "Float" => json!(1.0),
            "Boolean" => json!(true),
            "Decimal" => json!("1.00"),
            "Date" => json!("2030-01-01"),
            "DateTime" => json!("2030-01-01T08:00:00Z"),
            "Position" => json!(1),
            _ => json!("x"),
        },
    }
}

/// The innermost named type of a reference.
fn named(ty: &Value) -> &Value {
    if ty["ofType"].is_object() {
        named(&ty["ofType"])
    } else {
        ty
    }
}

/// One invocation of a root field with sample arguments, as a request body.
fn invocation(schema: &Value, operation: &str, field: &Value) -> Value {
    let name = field["name"].as_str().unwrap();
    let mut declared = Vec::new();
    let mut passed = Vec::new();
    let mut variables = serde_json::Map::new();
    for (n, arg) in field["args"].as_array().unwrap().iter().enumerate() {
        if arg["type"]["kind"] != "NON_NULL" {
            continue;
        }
        declared.push(format!("$a{n}: {}", spelled(&arg["type"])));
        passed.push(format!("{}: $a{n}", arg["name"].as_str().unwrap()));
        variables.insert(format!("a{n}"), sample(schema, &arg["type"]));
    }
    let selection = match named(&field["type"])["kind"].as_str().unwrap() {
        "OBJECT" | "INTERFACE" | "UNION" => " { __typename }",
        _ => "",
    };
    let declared = if declared.is_empty() {
        String::new()
    } else {
        format!("({})", declared.join(", "))
    };
    let passed = if passed.is_empty() {
        String::new()
    } else {
        format!("({})", passed.join(", "))
    };
    json!({
        "query": format!("{operation} Op{declared} {{ {name}{passed}{selection} }}"),
        "variables": variables,
    })
}

async fn post_as(app: &TestApp, token: Option<&str>, body: &Value) -> Value {
    let mut request = reqwest::Client::new().post(app.url("/graphql")).json(body);
    if let Some(token) = token {
        request = request.header("authorization", token);
    }
    request.send().await.unwrap().json().await.unwrap()
}

/// Credentials (an `Authorization` value) for every column of the matrix, `None` for anonymous.
async fn everyone(app: &TestApp) -> Vec<(&'static str, Option<String>)> {
    let customer = "0193a4b0-0000-7000-8000-00000000a0c1";
    app.ok(
        REGISTER_CUSTOMER,
        json!({ "input": customer_input(customer) }),
    )
    .await;
    let mut callers = vec![("anonymous", None)];
    for role in COLUMNS {
        let name = match role {
            queries::access::Role::Client => "CLIENT",
            queries::access::Role::Sales => "SALES",
            queries::access::Role::Finance => "FINANCE",
            queries::access::Role::Insurance => "INSURANCE",
            queries::access::Role::Service => "SERVICE",
            queries::access::Role::Admin => "ADMIN",
            queries::access::Role::Auditor => "AUDITOR",
            queries::access::Role::Analyst => "ANALYST",
            queries::access::Role::Partner => "PARTNER",
        };
        let credential = if role == queries::access::Role::Partner {
            let issued = app
                .ok(
                    r#"mutation { issuePartnerApiKey(insurer: "SEVER", label: "matrix") { key } }"#,
                    json!({}),
                )
                .await;
            format!(
                "ApiKey {}",
                issued["issuePartnerApiKey"]["key"].as_str().unwrap()
            )
        } else {
            let customer_id = (role == queries::access::Role::Client).then_some(customer);
            let email = format!("{}@matrix.test", name.to_lowercase());
            format!(
                "Bearer {}",
                app.sign_in_as(&email, &[name], customer_id).await
            )
        };
        callers.push((role.as_str(), Some(credential)));
    }
    callers
}

#[tokio::test]
async fn every_operation_run_as_every_role_and_anonymous_is_refused_or_run_as_the_matrix_says() {
    let schema = introspect().await;
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    let callers = everyone(&app).await;
    let mut operations = Vec::new();
    for (root, type_name, keyword) in [
        (Root::Query, "QueryRoot", "query"),
        (Root::Mutation, "MutationRoot", "mutation"),
    ] {
        for field in root_fields(&schema, type_name) {
            let name = field["name"].as_str().unwrap().to_owned();
            let (anonymous, roles) = autosalon::policy::row(root, &name).unwrap();
            operations.push((
                name.clone(),
                anonymous,
                roles,
                invocation(&schema, keyword, &field),
            ));
        }
    }
    // `logout` ends the caller's session, so it runs last.
    operations.sort_by_key(|(name, ..)| name == "logout");
    for (column, (who, credential)) in callers.iter().enumerate() {
        let credential = credential.as_deref();
        let allowed = |anonymous: Access, roles: &[Access; 9]| {
            let access = if column == 0 {
                anonymous
            } else {
                roles[column - 1]
            };
            access != Access::Denied || anonymous != Access::Denied
        };
        // Every refusal first, with the log's length around them: nothing may be written.
        let before = app.event_count().await;
        for (name, anonymous, roles, body) in &operations {
            if allowed(*anonymous, roles) {
                continue;
            }
            let answer = post_as(&app, credential, body).await;
            let expected = if credential.is_none() {
                "UNAUTHENTICATED"
            } else {
                "FORBIDDEN"
            };
            assert_eq!(
                error_codes(&answer),
                vec![expected],
                "{name} as {who} must be refused: {answer}"
            );
            assert!(
                answer["data"].is_null() || answer["data"][name.as_str()].is_null(),
                "{answer}"
            );
        }
        assert_eq!(
            app.event_count().await,
            before,
            "a refused operation wrote to the log (as {who})"
        );
        for (name, anonymous, roles, body) in &operations {
            if !allowed(*anonymous, roles) {
                continue;
            }
            let answer = post_as(&app, credential, body).await;
            let codes = error_codes(&answer);
            // A refresh with a made-up token is refused by the token itself, as it should be.
            let refusals: &[&str] = if name == "refreshSession" {
                &["FORBIDDEN"]
            } else {
                &["FORBIDDEN", "UNAUTHENTICATED"]
            };
            assert!(
                !codes.iter().any(|code| refusals.contains(&code.as_str())),
                "{name} as {who} is allowed by the matrix but was refused: {answer}"
            );
        }
    }
    app.stop().await;
}

// ----- own records ---------------------------------------------------------------------------

const A: &str = "0193a4b0-0000-7000-8000-0000000a0001";
const B: &str = "0193a4b0-0000-7000-8000-0000000b0001";
const CAR_A: &str = "0193a4b0-0000-7000-8000-0000000a0002";
const CAR_B: &str = "0193a4b0-0000-7000-8000-0000000b0002";
const ORDER_A: &str = "0193a4b0-0000-7000-8000-0000000a0003";
const ORDER_B: &str = "0193a4b0-0000-7000-8000-0000000b0003";
const LOAN_A: &str = "0193a4b0-0000-7000-8000-0000000a0004";
const LOAN_B: &str = "0193a4b0-0000-7000-8000-0000000b0004";
const QUOTE_A: &str = "0193a4b0-0000-7000-8000-0000000a0005";
const QUOTE_B: &str = "0193a4b0-0000-7000-8000-0000000b0005";
const BOOKING_A: &str = "0193a4b0-0000-7000-8000-0000000a0006";
const BOOKING_B: &str = "0193a4b0-0000-7000-8000-0000000b0006";

/// Two customers, each with a car on order, a loan application, a policy and a booking.
async fn two_customers(app: &TestApp) {
    for (customer, car, vin, order, loan, quote, booking, insurer, hour) in [
        (
            A,
            CAR_A,
            "XTA210990Y2766301",
            ORDER_A,
            LOAN_A,
            QUOTE_A,
            BOOKING_A,
            "SEVER",
            "07",
        ),
        (
            B,
            CAR_B,
            "XTA210990Y2766302",
            ORDER_B,
            LOAN_B,
            QUOTE_B,
            BOOKING_B,
            "VOLGA",
            "09",
        ),
    ] {
        app.ok(
            REGISTER_CUSTOMER,
            json!({ "input": customer_input(customer) }),
        )
        .await;
        app.ok(
            STOCK_VEHICLE,
            json!({ "input": vehicle_input(car, vin, "Vesta", "1500000.00") }),
        )
        .await;
        app.ok(
            DRAFT_ORDER,
            json!({ "input": { "id": order, "customerId": customer, "vehicleId": car } }),
        )
        .await;
        app.ok(
            "mutation($input: ApplyForLoanInput!) { applyForLoan(input: $input) { position } }",
            json!({ "input": {
                "id": loan, "orderId": order, "downPayment": { "amount": "500000.00" },
                "loanType": "CAR_LOAN", "termMonths": 36, "employmentStatus": "EMPLOYED",
                "monthlyIncome": { "amount": "250000.00" }, "creditScore": 780 } }),
        )
        .await;
        app.ok(
            "mutation($input: RequestInsuranceQuoteInput!) { requestInsuranceQuote(input: $input) { position } }",
            json!({ "input": {
                "id": quote, "product": "OSAGO", "customerId": customer, "vehicleId": car,
                "driver": { "age": 35, "drivingExperienceYears": 10, "region": "MOSCOW" },
                "enginePowerHp": 106 } }),
        )
        .await;
        app.ok(
            "mutation($q: UUID!, $i: String!) { selectInsuranceOffer(quoteId: $q, insurer: $i) { position } }",
            json!({ "q": quote, "i": insurer }),
        )
        .await;
        app.ok(
            "mutation($input: BookServiceInput!) { bookService(input: $input) { position } }",
            json!({ "input": {
                "id": booking, "customerId": customer, "vehicleId": car, "mechanicId": "M-017",
                "kind": "MAINTENANCE", "start": format!("2030-03-15T{hour}:00:00Z"),
                "end": format!("2030-03-15T{hour}:30:00Z") } }),
        )
        .await;
    }
}

#[tokio::test]
async fn a_client_sees_and_changes_only_its_own_records_through_every_path() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    two_customers(&app).await;
    let anna = app
        .sign_in_as("anna@client.test", &["CLIENT"], Some(A))
        .await;
    let as_anna = |query: &'static str, variables: Value| {
        let app = &app;
        let anna = anna.clone();
        async move { app.graphql_as(Some(&anna), query, variables).await }
    };

    // Her own records, and everything nested under them.
    let own = as_anna(
        "query($c: UUID!, $o: UUID!, $l: UUID!, $q: UUID!, $b: UUID!) {
           customer(id: $c) { fullName summary { ordersCount } history(first: 5) { totalCount } }
           order(id: $o) { customer { id } payments { id } vehicle { vin } }
           loan(id: $l) { status } quote(id: $q) { policy { insurer claims { id } } }
           policy(id: $q) { insurer } booking(id: $b) { customer { id } }
           customerSummary(customerId: $c) { ordersCount }
           customerHistory(customerId: $c) { totalCount }
           customerStatement(customerId: $c) { customerId }
           payments { totalCount } loans { totalCount } bookings { totalCount } policies { totalCount } }",
        json!({ "c": A, "o": ORDER_A, "l": LOAN_A, "q": QUOTE_A, "b": BOOKING_A }),
    )
    .await;
    assert!(own.get("errors").is_none(), "{own:#}");
    let data = &own["data"];
    assert_eq!(data["customer"]["fullName"], "Anna Petrova");
    assert_eq!(data["order"]["customer"]["id"], A);
    assert_eq!(data["booking"]["customer"]["id"], A);
    assert_eq!(data["quote"]["policy"]["insurer"], "SEVER");
    for list in ["loans", "bookings", "policies"] {
        assert_eq!(data[list]["totalCount"], 1, "{list}: her own only");
    }

    // The other customer's: every one answers as if it did not exist.
    for (query, variables) in [
        (
            "query($id: UUID!) { customer(id: $id) { id } }",
            json!({ "id": B }),
        ),
        (
            "query($id: UUID!) { order(id: $id) { id } }",
            json!({ "id": ORDER_B }),
        ),
        (
            "query($id: UUID!) { loan(id: $id) { id } }",
            json!({ "id": LOAN_B }),
        ),
        (
            "query($id: UUID!) { quote(id: $id) { id } }",
            json!({ "id": QUOTE_B }),
        ),
        (
            "query($id: UUID!) { policy(id: $id) { id } }",
            json!({ "id": QUOTE_B }),
        ),
        (
            "query($id: UUID!) { booking(id: $id) { id } }",
            json!({ "id": BOOKING_B }),
        ),
        (
            "query($id: UUID!) { customerSummary(customerId: $id) { ordersCount } }",
            json!({ "id": B }),
        ),
        (
            "query($id: UUID!) { customerHistory(customerId: $id) { totalCount } }",
            json!({ "id": B }),
        ),
        (
            "query($id: UUID!) { customerStatement(customerId: $id) { customerId } }",
            json!({ "id": B }),
        ),
    ] {
        let answer = as_anna(query, variables).await;
        assert_eq!(error_codes(&answer), vec!["NOT_FOUND"], "{query}: {answer}");
    }
    let unknown = as_anna(
        "query($id: UUID!) { customer(id: $id) { id } }",
        json!({ "id": uuid::Uuid::new_v4() }),
    )
    .await;
    assert_eq!(
        unknown["errors"][0]["message"]
            .as_str()
            .unwrap()
            .replace(&unknown_id(&unknown), "ID"),
        as_anna(
            "query($id: UUID!) { customer(id: $id) { id } }",
            json!({ "id": B })
        )
        .await["errors"][0]["message"]
            .as_str()
            .unwrap()
            .replace(B, "ID"),
        "another customer's id reads exactly like an unknown one"
    );
    // Lists asked for the other customer come back empty.
    let lists = as_anna(
        "query($c: UUID!) { payments(filter: { customerId: $c }) { totalCount }
           bookings(filter: { customerId: $c }) { totalCount }
           policies(filter: { customerId: $c }) { totalCount } }",
        json!({ "c": B }),
    )
    .await;
    for list in ["payments", "bookings", "policies"] {
        assert_eq!(lists["data"][list]["totalCount"], 0, "{list}: {lists}");
    }

    // Changing the other customer's records: NOT_FOUND, and nothing written.
    let before = app.event_count().await;
    for (query, variables) in [
        (
            "mutation($id: UUID!) { changeCustomerContactDetails(id: $id, input: { address: \"elsewhere\" }) { position } }",
            json!({ "id": B }),
        ),
        (
            "mutation($id: UUID!) { submitLoanApplication(id: $id) { position } }",
            json!({ "id": LOAN_B }),
        ),
        (
            "mutation($id: UUID!) { updateLoanApplication(id: $id, input: { termMonths: 48 }) { position } }",
            json!({ "id": LOAN_B }),
        ),
        (
            "mutation($id: UUID!) { cancelBooking(id: $id, reason: \"mine now\") { position } }",
            json!({ "id": BOOKING_B }),
        ),
        (
            "mutation($id: UUID!) { rescheduleBooking(id: $id, mechanicId: \"M-017\", start: \"2030-03-16T07:00:00Z\", end: \"2030-03-16T07:30:00Z\") { position } }",
            json!({ "id": BOOKING_B }),
        ),
        (
            "mutation($id: UUID!) { selectInsuranceOffer(quoteId: $id, insurer: \"SEVER\") { position } }",
            json!({ "id": QUOTE_B }),
        ),
        (
            "mutation($id: UUID!) { fileInsuranceClaim(policyId: $id, input: { incidentDate: \"2030-01-01\", description: \"x\", claimedAmount: { amount: \"1.00\" } }) { position } }",
            json!({ "id": QUOTE_B }),
        ),
        (
            "mutation($input: ApplyForLoanInput!) { applyForLoan(input: $input) { position } }",
            json!({ "input": {
            "orderId": ORDER_B, "downPayment": { "amount": "500000.00" }, "loanType": "CAR_LOAN",
            "termMonths": 36, "employmentStatus": "EMPLOYED", "monthlyIncome": { "amount": "250000.00" },
            "creditScore": 780 } }),
        ),
        (
            "mutation($input: BookServiceInput!) { bookService(input: $input) { position } }",
            json!({ "input": {
            "customerId": B, "vehicleId": CAR_B, "mechanicId": "M-018", "kind": "MAINTENANCE",
            "start": "2030-03-15T11:00:00Z", "end": "2030-03-15T11:30:00Z" } }),
        ),
        (
            "mutation($input: RequestInsuranceQuoteInput!) { requestInsuranceQuote(input: $input) { position } }",
            json!({ "input": {
            "product": "OSAGO", "customerId": B, "vehicleId": CAR_B,
            "driver": { "age": 35, "drivingExperienceYears": 10, "region": "MOSCOW" }, "enginePowerHp": 106 } }),
        ),
    ] {
        let answer = as_anna(query, variables).await;
        assert_eq!(error_codes(&answer), vec!["NOT_FOUND"], "{query}: {answer}");
    }
    assert_eq!(
        app.event_count().await,
        before,
        "nothing was written for her"
    );

    // Her own: allowed.
    let changed = as_anna(
        "mutation($id: UUID!) { changeCustomerContactDetails(id: $id, input: { address: \"Moscow, Arbat 2\" }) { customer { address } } }",
        json!({ "id": A }),
    )
    .await;
    assert_eq!(
        changed["data"]["changeCustomerContactDetails"]["customer"]["address"], "Moscow, Arbat 2",
        "{changed}"
    );
    app.stop().await;
}

fn unknown_id(answer: &Value) -> String {
    let message = answer["errors"][0]["message"].as_str().unwrap();
    message
        .split_whitespace()
        .find(|word| uuid::Uuid::parse_str(word).is_ok())
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_partner_reads_its_insurers_policies_only_and_an_analyst_sees_no_personal_data() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    two_customers(&app).await;
    let issued = app
        .ok(
            r#"mutation { issuePartnerApiKey(insurer: "SEVER", label: "settlement") { key partnerApiKey { id insurer } } }"#,
            json!({}),
        )
        .await;
    let key = issued["issuePartnerApiKey"]["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let key_id = issued["issuePartnerApiKey"]["partnerApiKey"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let as_partner = |query: &str, variables: Value| {
        let (app, key, query) = (&app, key.clone(), query.to_owned());
        async move {
            reqwest::Client::new()
                .post(app.url("/graphql"))
                .header("authorization", format!("ApiKey {key}"))
                .json(&json!({ "query": query, "variables": variables }))
                .send()
                .await
                .unwrap()
        }
    };
    let own: Value = as_partner(
        "query($id: UUID!) { policy(id: $id) { insurer claims { id } } policies { totalCount edges { node { insurer } } }
           commissionSettlement(month: \"2030-01\") { rows { insurer } } me { kind insurer } }",
        json!({ "id": QUOTE_A }),
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(own.get("errors").is_none(), "{own:#}");
    assert_eq!(own["data"]["policy"]["insurer"], "SEVER");
    assert_eq!(own["data"]["policies"]["totalCount"], 1);
    assert_eq!(
        own["data"]["me"],
        json!({ "kind": "PARTNER", "insurer": "SEVER" })
    );
    let other: Value = as_partner(
        "query($id: UUID!) { policy(id: $id) { id } }",
        json!({ "id": QUOTE_B }),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(error_codes(&other), vec!["NOT_FOUND"]);
    let customer: Value = as_partner(
        "query($id: UUID!) { customer(id: $id) { id } }",
        json!({ "id": A }),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(error_codes(&customer), vec!["FORBIDDEN"]);

    // Revoked: the key stops working at once.
    app.ok(
        "mutation($id: UUID!) { revokePartnerApiKey(id: $id, reason: \"rotated\") { partnerApiKey { revokedAt } } }",
        json!({ "id": key_id }),
    )
    .await;
    let revoked = as_partner("{ policies { totalCount } }", json!({})).await;
    assert_eq!(revoked.status(), 401);

    // The analyst: customers masked, their history (which names them) refused.
    let analyst = app
        .sign_in_as("ivan@analyst.test", &["ANALYST"], None)
        .await;
    let masked = app
        .graphql_as(
            Some(&analyst),
            "query($id: UUID!) { customer(id: $id) { fullName email phone address } salesReport { rows { count } } }",
            json!({ "id": A }),
        )
        .await;
    assert!(masked.get("errors").is_none(), "{masked:#}");
    assert_eq!(
        masked["data"]["customer"],
        json!({ "fullName": "***", "email": "***", "phone": "***", "address": "***" })
    );
    let history = app
        .graphql_as(
            Some(&analyst),
            "query($id: UUID!) { customer(id: $id) { history { totalCount } } }",
            json!({ "id": A }),
        )
        .await;
    assert_eq!(error_codes(&history), vec!["FORBIDDEN"]);
    // Free text that may name people is masked too; an empty one stays empty.
    app.ok(
        "mutation($input: BookServiceInput!) { bookService(input: $input) { position } }",
        json!({ "input": {
            "id": "0193a4b0-0000-7000-8000-0000000c0006", "customerId": A, "vehicleId": CAR_A,
            "mechanicId": "M-017", "kind": "REPAIR", "start": "2030-03-16T07:00:00Z",
            "end": "2030-03-16T07:30:00Z", "notes": "Anna Petrova will bring the car" } }),
    )
    .await;
    let notes = "query($id: UUID!) { booking(id: $id) { notes } }";
    let as_analyst = app
        .graphql_as(
            Some(&analyst),
            notes,
            json!({ "id": "0193a4b0-0000-7000-8000-0000000c0006" }),
        )
        .await;
    assert_eq!(
        as_analyst["data"]["booking"]["notes"], "***",
        "{as_analyst}"
    );
    let empty = app
        .graphql_as(Some(&analyst), notes, json!({ "id": BOOKING_A }))
        .await;
    assert_eq!(empty["data"]["booking"]["notes"], "", "{empty}");
    let as_staff = app
        .ok(
            notes,
            json!({ "id": "0193a4b0-0000-7000-8000-0000000c0006" }),
        )
        .await;
    assert_eq!(
        as_staff["booking"]["notes"],
        "Anna Petrova will bring the car"
    );
    app.stop().await;
}

#[tokio::test]
async fn who_reserved_a_car_is_shown_to_staff_and_to_that_client_only() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    two_customers(&app).await;
    app.ok(
        "mutation($id: UUID!) { confirmOrder(id: $id) { position } }",
        json!({ "id": ORDER_A }),
    )
    .await;
    let query = "query($id: UUID!) { vehicle(id: $id) { status reservedForOrderId } }";
    let car = json!({ "id": CAR_A });
    let staff = app.ok(query, car.clone()).await;
    assert_eq!(
        staff["vehicle"],
        json!({ "status": "RESERVED", "reservedForOrderId": ORDER_A })
    );
    let anonymous = app.graphql_as(None, query, car.clone()).await;
    assert_eq!(
        anonymous["data"]["vehicle"],
        json!({ "status": "RESERVED", "reservedForOrderId": null }),
        "the catalog is public, who ordered is not: {anonymous}"
    );
    let holder = app.sign_in_as("a@client.test", &["CLIENT"], Some(A)).await;
    let own = app.graphql_as(Some(&holder), query, car.clone()).await;
    assert_eq!(
        own["data"]["vehicle"]["reservedForOrderId"], ORDER_A,
        "{own}"
    );
    let other = app.sign_in_as("b@client.test", &["CLIENT"], Some(B)).await;
    let theirs = app.graphql_as(Some(&other), query, car).await;
    assert_eq!(
        theirs["data"]["vehicle"]["reservedForOrderId"],
        Value::Null,
        "{theirs}"
    );
    app.stop().await;
}

// ----- tokens --------------------------------------------------------------------------------

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// A token with `claims`, signed by the key whose 32-byte seed is `seed`.
fn signed(seed: &[u8; 32], kid: &str, claims: &Value) -> String {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let der = ed25519_dalek::SigningKey::from_bytes(seed)
        .to_pkcs8_der()
        .unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes()),
    )
    .unwrap()
}

fn seed_in(path: &std::path::Path) -> [u8; 32] {
    let text = std::fs::read_to_string(path).unwrap();
    let mut seed = [0u8; 32];
    for (i, byte) in seed.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text.trim()[2 * i..2 * i + 2], 16).unwrap();
    }
    seed
}

async fn status_with(app: &TestApp, authorization: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(app.url("/graphql"))
        .header("authorization", authorization)
        .json(&json!({ "query": "{ me { roles } }" }))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn forged_expired_tampered_and_revoked_tokens_are_refused() {
    let dir = temp_dir();
    let database = dir.path().join("autosalon.db");
    let app = spawn_app_on(database.clone()).await;
    let sales = app.sign_in_as("olga@sales.test", &["SALES"], None).await;
    let (status, me) = status_with(&app, &format!("Bearer {sales}")).await;
    assert_eq!(
        (status, &me["data"]["me"]["roles"]),
        (200, &json!(["SALES"]))
    );

    let seed = seed_in(&serve_args(&database).token_key_file);
    let kid = jsonwebtoken::decode_header(&sales).unwrap().kid.unwrap();
    let real = claims_of(&sales);
    let now = chrono::Utc::now().timestamp();
    let with = |change: &dyn Fn(&mut Value)| {
        let mut claims = real.clone();
        change(&mut claims);
        claims
    };
    // Sanity: the same claims signed again with the real key are accepted, so each refusal below
    // is for the one thing changed.
    assert_eq!(
        status_with(&app, &format!("Bearer {}", signed(&seed, &kid, &real)))
            .await
            .0,
        200
    );

    let mut forged = vec![
        (
            "expired",
            signed(
                &seed,
                &kid,
                &with(&|c| {
                    c["exp"] = json!(now - 120);
                    c["nbf"] = json!(now - 1000);
                }),
            ),
        ),
        (
            "not yet valid",
            signed(
                &seed,
                &kid,
                &with(&|c| {
                    c["nbf"] = json!(now + 120);
                    c["exp"] = json!(now + 1000);
                }),
            ),
        ),
        ("another key", signed(&[9; 32], &kid, &real)),
        (
            "another issuer",
            signed(&seed, &kid, &with(&|c| c["iss"] = json!("someone-else"))),
        ),
        (
            "another audience",
            signed(&seed, &kid, &with(&|c| c["aud"] = json!("someone-else"))),
        ),
        (
            "no expiry",
            signed(
                &seed,
                &kid,
                &with(&|c| {
                    c.as_object_mut().unwrap().remove("exp");
                }),
            ),
        ),
    ];
    // alg: none, unsigned.
    let body = URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&with(&|c| c["roles"] = json!(["admin"]))).unwrap());
    let none = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    forged.push(("alg none", format!("{none}.{body}.")));
    // HS256 keyed with the server's public key (the classic algorithm confusion).
    let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
    forged.push((
        "HS256 with the public key",
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &with(&|c| c["roles"] = json!(["admin"])),
            &jsonwebtoken::EncodingKey::from_secret(public.as_bytes()),
        )
        .unwrap(),
    ));
    // Tampered claims under the real signature.
    let parts: Vec<&str> = sales.split('.').collect();
    forged.push((
        "tampered roles",
        format!("{}.{body}.{}", parts[0], parts[2]),
    ));
    forged.push(("garbage", "not.a.token".into()));
    for (what, token) in &forged {
        let (status, answer) = status_with(&app, &format!("Bearer {token}")).await;
        assert_eq!(status, 401, "{what}: {answer}");
        assert_eq!(error_codes(&answer), vec!["UNAUTHENTICATED"], "{what}");
    }
    // A token for a session that does not exist, signed with the real key.
    let (status, _) = status_with(
        &app,
        &format!(
            "Bearer {}",
            signed(
                &seed,
                &kid,
                &with(&|c| c["sid"] = json!(uuid::Uuid::new_v4().to_string()))
            )
        ),
    )
    .await;
    assert_eq!(status, 401, "an unknown session");

    // Logout revokes: the token stops working at once.
    let logout = app
        .graphql_as(Some(&sales), "mutation { logout { loggedOut } }", json!({}))
        .await;
    assert_eq!(logout["data"]["logout"]["loggedOut"], true, "{logout}");
    assert_eq!(status_with(&app, &format!("Bearer {sales}")).await.0, 401);
    app.stop().await;
}

const LOGIN: &str = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken refreshToken expiresAt } }";
const REFRESH: &str =
    "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken refreshToken } }";

#[tokio::test]
async fn a_refresh_token_works_once_and_its_reuse_ends_the_whole_session() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    let first = app
        .graphql_as(
            None,
            LOGIN,
            json!({ "e": ADMIN_EMAIL, "p": ADMIN_PASSWORD }),
        )
        .await["data"]["login"]
        .clone();
    let refreshed = app
        .graphql_as(None, REFRESH, json!({ "t": first["refreshToken"] }))
        .await;
    assert!(refreshed.get("errors").is_none(), "{refreshed}");
    let second = refreshed["data"]["refreshSession"].clone();
    assert_ne!(second["refreshToken"], first["refreshToken"], "rotated");
    let token = second["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(status_with(&app, &format!("Bearer {token}")).await.0, 200);

    // The spent token again: refused, and the whole family with it.
    let reused = app
        .graphql_as(None, REFRESH, json!({ "t": first["refreshToken"] }))
        .await;
    assert_eq!(error_codes(&reused), vec!["UNAUTHENTICATED"]);
    let successor = app
        .graphql_as(None, REFRESH, json!({ "t": second["refreshToken"] }))
        .await;
    assert_eq!(
        error_codes(&successor),
        vec!["UNAUTHENTICATED"],
        "the successor is revoked too"
    );
    assert_eq!(
        status_with(&app, &format!("Bearer {token}")).await.0,
        401,
        "and its access token"
    );
    let made_up = app
        .graphql_as(None, REFRESH, json!({ "t": "asr_made-up" }))
        .await;
    assert_eq!(error_codes(&made_up), vec!["UNAUTHENTICATED"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_refresh_token_presented_several_times_at_once_ends_the_session() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    let first = app
        .graphql_as(
            None,
            LOGIN,
            json!({ "e": ADMIN_EMAIL, "p": ADMIN_PASSWORD }),
        )
        .await["data"]["login"]
        .clone();
    let app = std::sync::Arc::new(app);
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let (app, token) = (app.clone(), first["refreshToken"].clone());
            tokio::spawn(async move { app.graphql_as(None, REFRESH, json!({ "t": token })).await })
        })
        .collect();
    let mut winners = Vec::new();
    for racer in racers {
        let answer = racer.await.unwrap();
        if answer.get("errors").is_none() {
            winners.push(answer["data"]["refreshSession"].clone());
        } else {
            assert_eq!(error_codes(&answer), vec!["UNAUTHENTICATED"], "{answer}");
        }
    }
    assert!(
        winners.len() <= 1,
        "one token, at most one successor: {winners:?}"
    );
    // Whoever won, the token was presented twice: the session is over, successor and all.
    for winner in &winners {
        let successor = app
            .graphql_as(None, REFRESH, json!({ "t": winner["refreshToken"] }))
            .await;
        assert_eq!(error_codes(&successor), vec!["UNAUTHENTICATED"]);
        let access = winner["accessToken"].as_str().unwrap();
        assert_eq!(status_with(&app, &format!("Bearer {access}")).await.0, 401);
    }
    let original = first["accessToken"].as_str().unwrap();
    assert_eq!(
        status_with(&app, &format!("Bearer {original}")).await.0,
        401
    );
    std::sync::Arc::into_inner(app).unwrap().stop().await;
}

#[tokio::test]
async fn a_role_change_or_disabling_ends_sessions_and_the_log_says_who_gave_which_power() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    let sales = app.sign_in_as("olga@sales.test", &["SALES"], None).await;
    let me = app
        .graphql_as(Some(&sales), "{ me { account { id } } }", json!({}))
        .await;
    let id = me["data"]["me"]["account"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let granted = app
        .ok(
            "mutation($id: UUID!) { grantRole(accountId: $id, role: FINANCE) { account { roles } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        granted["grantRole"]["account"]["roles"],
        json!(["FINANCE", "SALES"])
    );
    assert_eq!(
        status_with(&app, &format!("Bearer {sales}")).await.0,
        401,
        "old powers, old session"
    );
    let stream = app
        .ok(
            "query($id: UUID!) { aggregateEvents(aggregateType: USER, id: $id) { edges { node { eventType payload metadata } } } }",
            json!({ "id": id }),
        )
        .await;
    let events = stream["aggregateEvents"]["edges"].as_array().unwrap();
    assert_eq!(events[0]["node"]["eventType"], "UserCreated");
    assert_eq!(
        events[0]["node"]["payload"]["UserCreated"]["password_hash"], "[redacted]",
        "auditors never see a password hash"
    );
    assert_eq!(events[1]["node"]["eventType"], "UserRoleGranted");
    assert!(
        events[1]["node"]["metadata"]["actor_id"]
            .as_str()
            .unwrap()
            .starts_with("user:")
    );
    assert_eq!(events[1]["node"]["metadata"]["actor_role"], "admin");

    app.ok(
        "mutation($id: UUID!) { disableAccount(accountId: $id, reason: \"left\") { account { disabled } } }",
        json!({ "id": id }),
    )
    .await;
    let refused = app
        .graphql_as(
            None,
            LOGIN,
            json!({ "e": "olga@sales.test", "p": "a long enough password" }),
        )
        .await;
    assert_eq!(error_codes(&refused), vec!["INVALID_CREDENTIALS"]);
    app.stop().await;
}

// ----- brute force ---------------------------------------------------------------------------

#[tokio::test]
async fn the_sixth_wrong_password_locks_the_account_and_the_lock_out_is_an_event() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    let wrong = json!({ "e": ADMIN_EMAIL, "p": "not the password at all" });
    for attempt in 1..=5 {
        let answer = app.graphql_as(None, LOGIN, wrong.clone()).await;
        assert_eq!(
            error_codes(&answer),
            vec!["INVALID_CREDENTIALS"],
            "attempt {attempt}"
        );
    }
    let sixth = app.graphql_as(None, LOGIN, wrong.clone()).await;
    assert_eq!(error_codes(&sixth), vec!["ACCOUNT_LOCKED"]);
    let seventh = app.graphql_as(None, LOGIN, wrong).await;
    assert_eq!(
        seventh["errors"][0]["message"], sixth["errors"][0]["message"],
        "a lock-out names the same moment until it ends"
    );
    let right = app
        .graphql_as(
            None,
            LOGIN,
            json!({ "e": ADMIN_EMAIL, "p": ADMIN_PASSWORD }),
        )
        .await;
    assert_eq!(
        error_codes(&right),
        vec!["ACCOUNT_LOCKED"],
        "even the right password, for now"
    );
    let me = app.ok("{ me { account { id } } }", json!({})).await;
    let stream = app
        .ok(
            "query($id: UUID!) { aggregateEvents(aggregateType: USER, id: $id) { edges { node { eventType payload } } } }",
            json!({ "id": me["me"]["account"]["id"] }),
        )
        .await;
    let last = stream["aggregateEvents"]["edges"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["node"]["eventType"], "UserLockedOut", "{stream}");
    assert_eq!(
        last["node"]["payload"]["UserLockedOut"]["failed_attempts"],
        6
    );
    // An unknown email is answered the same way: no telling which emails have accounts.
    let unknown = json!({ "e": "nobody@autosalon.test", "p": "not the password at all" });
    for _ in 1..=5 {
        let answer = app.graphql_as(None, LOGIN, unknown.clone()).await;
        assert_eq!(error_codes(&answer), vec!["INVALID_CREDENTIALS"]);
    }
    let locked = app.graphql_as(None, LOGIN, unknown.clone()).await;
    assert_eq!(error_codes(&locked), vec!["ACCOUNT_LOCKED"]);
    // ... and stays answered the same way, naming the same moment, as a real account's does.
    let again = app.graphql_as(None, LOGIN, unknown).await;
    assert_eq!(error_codes(&again), vec!["ACCOUNT_LOCKED"]);
    assert_eq!(
        again["errors"][0]["message"],
        locked["errors"][0]["message"]
    );
    app.stop().await;
}

#[tokio::test]
async fn wrong_current_passwords_in_change_password_count_toward_the_lock_out() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    let email = "olga@sales.test";
    let token = app.sign_in_as(email, &["SALES"], None).await;
    let change = "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) { position } }";
    let guess = json!({ "c": "a guessed password", "n": "a brand new password" });
    for attempt in 1..=5 {
        let answer = app.graphql_as(Some(&token), change, guess.clone()).await;
        assert_eq!(
            error_codes(&answer),
            vec!["INVALID_CREDENTIALS"],
            "attempt {attempt}"
        );
    }
    let sixth = app.graphql_as(Some(&token), change, guess).await;
    assert_eq!(error_codes(&sixth), vec!["ACCOUNT_LOCKED"], "{sixth}");
    // The account is locked for signing in too, even with the right password.
    let right = app
        .graphql_as(
            None,
            LOGIN,
            json!({ "e": email, "p": "a long enough password" }),
        )
        .await;
    assert_eq!(error_codes(&right), vec!["ACCOUNT_LOCKED"]);
    let with_right = app
        .graphql_as(
            Some(&token),
            change,
            json!({ "c": "a long enough password", "n": "a brand new password" }),
        )
        .await;
    assert_eq!(error_codes(&with_right), vec!["ACCOUNT_LOCKED"]);
    app.stop().await;
}

#[tokio::test]
async fn sign_in_attempts_from_one_address_are_limited_per_minute() {
    let dir = temp_dir();
    let mut settings = serve_args(&dir.path().join("autosalon.db"));
    settings.login_attempts_per_minute = 4;
    let app = spawn_with(settings).await; // one attempt: the helper's own sign-in
    let wrong = |n: usize| json!({ "e": format!("user{n}@autosalon.test"), "p": "not the password at all" });
    for n in 0..3 {
        assert_eq!(
            error_codes(&app.graphql_as(None, LOGIN, wrong(n)).await),
            vec!["INVALID_CREDENTIALS"]
        );
    }
    let over = app.graphql_as(None, LOGIN, wrong(9)).await;
    assert_eq!(error_codes(&over), vec!["TOO_MANY_REQUESTS"]);
    // Meanwhile the server keeps answering everything else.
    let started = std::time::Instant::now();
    assert_eq!(
        app.graphql_as(None, "{ __typename }", json!({})).await["data"]["__typename"],
        "QueryRoot"
    );
    assert!(started.elapsed() < std::time::Duration::from_millis(100));
    app.stop().await;
}

#[tokio::test]
async fn introspection_is_for_signed_in_staff() {
    let dir = temp_dir();
    let app = spawn_app(&dir).await;
    let query = "{ __schema { queryType { name } } }";
    let anonymous = app.graphql_as(None, query, json!({})).await;
    assert_eq!(
        error_codes(&anonymous),
        vec!["UNAUTHENTICATED"],
        "{anonymous}"
    );
    let staff = app.ok(query, json!({})).await;
    assert_eq!(staff["__schema"]["queryType"]["name"], "QueryRoot");
    app.stop().await;
}

// ----- an external OpenID Connect provider --------------------------------------------------

/// A JWKS endpoint on loopback, as an identity provider publishes it; counts its fetches.
async fn serve_jwks(keys: Value) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let fetches = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = fetches.clone();
    let router = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            let (keys, counted) = (keys.clone(), counted.clone());
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                axum::Json(keys)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}/jwks"), fetches)
}

#[tokio::test]
async fn tokens_of_the_configured_provider_are_verified_against_its_published_keys() {
    let provider_seed = [42u8; 32];
    let public = ed25519_dalek::SigningKey::from_bytes(&provider_seed).verifying_key();
    let jwks = json!({ "keys": [{
        "kty": "OKP", "crv": "Ed25519", "kid": "provider-1", "alg": "EdDSA", "use": "sig",
        "x": URL_SAFE_NO_PAD.encode(public.as_bytes())
    }]});
    let (jwks_url, fetches) = serve_jwks(jwks).await;
    let dir = temp_dir();
    let mut settings = serve_args(&dir.path().join("autosalon.db"));
    settings.oidc.oidc_issuer = Some("https://sso.dealer.test/realms/staff".into());
    settings.oidc.oidc_audience = Some("autosalon".into());
    settings.oidc.oidc_jwks_url = Some(jwks_url);
    settings.oidc.oidc_roles_claim = "realm_access.roles".into();
    settings.oidc.oidc_role_map = Some("dealer-credit=finance,dealer-boss=admin".into());
    let app = spawn_with(settings).await;

    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "iss": "https://sso.dealer.test/realms/staff", "aud": "autosalon", "sub": "f3a1-olga",
        "iat": now, "nbf": now, "exp": now + 300,
        "realm_access": { "roles": ["dealer-credit", "offline_access"] }
    });
    let token = signed(&provider_seed, "provider-1", &claims);
    let (status, me) = status_with(&app, &format!("Bearer {token}")).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(
        me["data"]["me"]["roles"],
        json!(["FINANCE"]),
        "mapped, unknown roles dropped"
    );
    let who = app
        .graphql_as(
            Some(&token),
            "{ me { kind actorId } trialBalance { balanced } }",
            json!({}),
        )
        .await;
    assert!(who.get("errors").is_none(), "{who}");
    assert_eq!(
        who["data"]["me"],
        json!({ "kind": "EXTERNAL", "actorId": "oidc:f3a1-olga" })
    );
    // Finance may read the ledger but not stock cars.
    let refused = app
        .graphql_as(
            Some(&token),
            STOCK_VEHICLE,
            json!({ "input": vehicle_input("0193a4b0-0000-7000-8000-0000000000e9", "XTA210990Y2766303", "Vesta", "1.00") }),
        )
        .await;
    assert_eq!(error_codes(&refused), vec!["FORBIDDEN"]);
    // A second request is answered from the cached keys.
    status_with(&app, &format!("Bearer {token}")).await;
    assert_eq!(
        fetches.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "keys are cached"
    );

    let mut attacks = vec![
        (
            "another audience",
            signed(&provider_seed, "provider-1", &{
                let mut c = claims.clone();
                c["aud"] = json!("elsewhere");
                c
            }),
        ),
        (
            "another issuer",
            signed(&provider_seed, "provider-1", &{
                let mut c = claims.clone();
                c["iss"] = json!("https://evil.test");
                c
            }),
        ),
        (
            "expired",
            signed(&provider_seed, "provider-1", &{
                let mut c = claims.clone();
                c["exp"] = json!(now - 300);
                c
            }),
        ),
        (
            "another key under the provider's key id",
            signed(&[7; 32], "provider-1", &claims),
        ),
        (
            "a key id the provider does not publish",
            signed(&provider_seed, "provider-2", &claims),
        ),
    ];
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("provider-1".into());
    attacks.push((
        "HS256 keyed with the provider's public key",
        jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(public.as_bytes()),
        )
        .unwrap(),
    ));
    for (what, token) in attacks {
        let (status, answer) = status_with(&app, &format!("Bearer {token}")).await;
        assert_eq!(status, 401, "{what}: {answer}");
    }
    // The unknown key id made the server look once more (spaced out), no more.
    assert!(fetches.load(std::sync::atomic::Ordering::SeqCst) <= 2);
    app.stop().await;
}
