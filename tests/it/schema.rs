//! `schema.graphql` is the SDL the code produces; a stale copy fails here.

#[test]
fn schema_graphql_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let sdl = autosalon::schema::sdl();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(path, &sdl).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == sdl,
        "schema.graphql is stale: run `UPDATE_SCHEMA=1 cargo test --workspace schema` and commit it"
    );
}

/// Every string argument and input field, wherever it is in the schema (roots, nested fields,
/// input objects, lists), documents its maximum length, and that maximum is the one its text rule
/// enforces (`queries::input::RULES`, matched by the GraphQL name). A new string input without a
/// rule or a documented limit fails here.
#[tokio::test]
async fn every_string_input_documents_the_maximum_length_it_enforces() {
    let schema = autosalon::schema::builder().finish();
    let response = schema
        .execute(
            "{ __schema { types { name
                 fields { name args { name description type { ...T } } }
                 inputFields { name description type { ...T } } } } }
             fragment T on __Type { name ofType { name ofType { name ofType { name } } } }",
        )
        .await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    let data = response.data.into_json().unwrap();
    let named = |ty: &serde_json::Value| {
        let mut ty = ty;
        while ty["name"].is_null() {
            ty = &ty["ofType"];
        }
        ty["name"].as_str().unwrap().to_string()
    };
    let mut inputs = Vec::new();
    for ty in data["__schema"]["types"].as_array().unwrap() {
        let owner = ty["name"].as_str().unwrap();
        if owner.starts_with("__") {
            continue;
        }
        for field in ty["fields"].as_array().into_iter().flatten() {
            for arg in field["args"].as_array().unwrap() {
                inputs.push((
                    format!("{owner}.{}({})", field["name"], arg["name"]),
                    arg.clone(),
                ));
            }
        }
        for field in ty["inputFields"].as_array().into_iter().flatten() {
            inputs.push((format!("{owner}.{}", field["name"]), field.clone()));
        }
    }
    let mut problems = Vec::new();
    let mut strings = 0;
    for (place, input) in &inputs {
        if named(&input["type"]) != "String" {
            continue;
        }
        strings += 1;
        let name = input["name"].as_str().unwrap();
        let description = input["description"].as_str().unwrap_or_default();
        let documented = documented_maximum(description);
        let rules: Vec<_> = queries::input::RULES
            .iter()
            .filter(|rule| rule.fields.contains(&name))
            .collect();
        match (documented, rules.as_slice()) {
            (None, _) => problems.push(format!(
                "{place}: no \"At most N characters.\" in {description:?}"
            )),
            (_, []) => problems.push(format!("{place}: no text rule takes the name {name:?}")),
            (Some(max), [rule]) if rule.max_chars == max => {}
            (Some(max), [rule]) => problems.push(format!(
                "{place}: documents {max} characters, its rule enforces {}",
                rule.max_chars
            )),
            (_, _) => problems.push(format!(
                "{place}: several text rules take the name {name:?}"
            )),
        }
    }
    assert!(
        strings > 90,
        "only {strings} string inputs found: is introspection complete?"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// N in "At most N characters" (any case, thousands separated by commas or not).
fn documented_maximum(description: &str) -> Option<usize> {
    let lower = description.to_lowercase();
    lower.match_indices("at most ").find_map(|(at, phrase)| {
        let (number, rest) = lower[at + phrase.len()..].split_once(' ')?;
        rest.starts_with("characters")
            .then(|| number.replace(',', "").parse().ok())
            .flatten()
    })
}
