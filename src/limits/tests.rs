use async_graphql::Variables;
use async_graphql::parser::parse_query;
use serde_json::json;

use super::*;

const LIMITS: Limits = Limits {
    max_depth: 16,
    max_complexity: 5_000,
    max_mutation_fields: 5,
};

fn cost(query: &str) -> Cost {
    cost_with(query, None, json!({}))
}

fn cost_with(query: &str, operation: Option<&str>, variables: serde_json::Value) -> Cost {
    let document = parse_query(query).expect("the test query parses");
    measure(&document, operation, &Variables::from_json(variables)).expect("measurable")
}

fn refusal(query: &str) -> Refusal {
    let mut request = async_graphql::Request::new(query);
    LIMITS
        .check_batch(std::iter::once(&mut request))
        .expect_err("refused")
}

/// `query { ...F<n-1> }` where F0 selects `__typename` and every F<k> spreads F<k-1> twice.
fn fragment_bomb(levels: usize) -> String {
    let mut query = format!(
        "query {{ ...F{} }} fragment F0 on QueryRoot {{ __typename }}",
        levels - 1
    );
    for level in 1..levels {
        query.push_str(&format!(
            " fragment F{level} on QueryRoot {{ ...F{0} ...F{0} }}",
            level - 1
        ));
    }
    query
}

#[test]
fn the_fragment_bomb_is_measured_exactly_without_expanding_it() {
    let query = fragment_bomb(31);
    let document = parse_query(&query).unwrap();
    let (cost, visited) = measure_counting(&document, None, &Variables::default());
    let cost = cost.unwrap();
    // F0 costs 1 and F<k> costs 2 × (1 + F<k-1>), so F<k> = 3·2^k − 2; the operation adds its
    // spread of F30. Expanded, that is over three billion selections.
    assert_eq!(cost.complexity, 3 * (1 << 30) - 1);
    assert_eq!(cost.depth, 1);
    // Each written selection was visited once: 1 in the operation, 1 in F0, 2 in each other.
    assert_eq!(cost.written, 1 + 1 + 2 * 30);
    assert_eq!(visited, cost.written);
    assert!(matches!(
        refusal(&query),
        Refusal::TooComplex {
            cost: 3_221_225_471,
            limit: 5_000
        }
    ));
}

#[test]
fn a_bomb_beyond_any_integer_saturates_and_is_refused() {
    // 31 levels deep is the most nesting allowed; wider fragments make the count overflow u64.
    let mut query = String::from("query { ...F30 } fragment F0 on QueryRoot { __typename }");
    for level in 1..31 {
        let spreads = format!("...F{} ", level - 1).repeat(8);
        query.push_str(&format!(" fragment F{level} on QueryRoot {{ {spreads} }}"));
    }
    let document = parse_query(&query).unwrap();
    let (cost, visited) = measure_counting(&document, None, &Variables::default());
    assert_eq!(cost.unwrap().complexity, u64::MAX);
    assert_eq!(visited, 1 + 1 + 8 * 30);
    assert!(matches!(refusal(&query), Refusal::TooComplex { .. }));
}

#[test]
fn every_field_spread_and_inline_fragment_counts_one() {
    assert_eq!(cost("{ __typename }").complexity, 1);
    assert_eq!(cost("{ vehicles { totalCount } }").complexity, 2);
    assert_eq!(
        cost(
            "{ a: __typename ... { b: __typename } ...F } fragment F on QueryRoot { c: __typename }"
        )
        .complexity,
        5
    );
    // The same selections through a fragment cost what they cost inline, plus the spread.
    let inline = cost("{ vehicle(id: \"x\") { vin brand listPrice { amount } } }").complexity;
    let spread = cost(
        "{ vehicle(id: \"x\") { ...V } } fragment V on Vehicle { vin brand listPrice { amount } }",
    )
    .complexity;
    assert_eq!(inline, 5);
    assert_eq!(spread, inline + 1);
}

#[test]
fn a_page_counts_its_items_once_per_item() {
    // vehicles + totalCount + 10 × (edges + node + vin)
    let page = "{ vehicles(first: 10) { totalCount edges { node { vin } } } }";
    assert_eq!(cost(page).complexity, 2 + 10 * 3);
    // Absent: the default page of 50; too large: clamped to the 200 the server returns at most.
    assert_eq!(
        cost("{ vehicles { edges { node { vin } } } }").complexity,
        1 + DEFAULT_PAGE as u64 * 3
    );
    assert_eq!(
        cost("{ vehicles(first: 100000) { edges { node { vin } } } }").complexity,
        1 + MAX_PAGE as u64 * 3
    );
    // `nodes` weigh like `edges`; `pageInfo` does not.
    assert_eq!(
        cost("{ vehicles(first: 4) { nodes { vin } pageInfo { hasNextPage } } }").complexity,
        1 + 4 * 2 + 2
    );
    // The README's example.
    assert_eq!(
        cost("{ vehicles(first: 200) { edges { node { vin brand } } } }").complexity,
        801
    );
    // Pages inside pages multiply.
    assert_eq!(
        cost("{ customers(first: 10) { edges { node { history(first: 20) { edges { node { summary } } } } } } }")
            .complexity,
        1 + 10 * (1 + 1 + 1 + 20 * 3)
    );
    // Through a fragment spread into the page.
    assert_eq!(
        cost("{ vehicles(first: 10) { ...Page } } fragment Page on VehicleConnection { edges { node { vin } } }")
            .complexity,
        1 + 1 + 10 * 3
    );
}

#[test]
fn a_page_size_from_a_variable_uses_its_value_or_its_default() {
    let query = "query List($n: Int) { vehicles(first: $n) { edges { node { vin } } } }";
    assert_eq!(
        cost_with(query, None, json!({ "n": 7 })).complexity,
        1 + 7 * 3
    );
    assert_eq!(
        cost_with(query, None, json!({})).complexity,
        1 + DEFAULT_PAGE as u64 * 3
    );
    let with_default = "query List($n: Int = 3) { vehicles(first: $n) { edges { node { vin } } } }";
    assert_eq!(
        cost_with(with_default, None, json!({})).complexity,
        1 + 3 * 3
    );
    // A value the executor will refuse is costed as the largest page, never as none.
    assert_eq!(
        cost_with(query, None, json!({ "n": "many" })).complexity,
        1 + MAX_PAGE as u64 * 3
    );
}

#[test]
fn depth_counts_fields_through_fragments() {
    assert_eq!(cost("{ a { b { c } } }").depth, 3);
    assert_eq!(
        cost("{ a { ...B } } fragment B on A { b { ... { c { d } } } }").depth,
        4
    );
    let deep = format!("{{ {} x {} }}", "a { ".repeat(17), "} ".repeat(17));
    assert!(matches!(
        refusal(&deep),
        Refusal::TooDeep {
            depth: 18,
            limit: 16
        }
    ));
}

#[test]
fn spreads_nested_beyond_the_limit_are_refused_before_recursing_further() {
    let mut chain = String::from("{ ...F40 } fragment F0 on QueryRoot { __typename }");
    for level in 1..=40 {
        chain.push_str(&format!(
            " fragment F{level} on QueryRoot {{ ...F{} }}",
            level - 1
        ));
    }
    assert_eq!(refusal(&chain), Refusal::NestedTooDeep);
}

#[test]
fn a_fragment_that_spreads_itself_is_refused_with_validation() {
    let cycle = "{ ...A } fragment A on QueryRoot { ...B } fragment B on QueryRoot { ...A }";
    let refused = refusal(cycle);
    assert!(matches!(refused, Refusal::FragmentCycle(_)));
    assert_eq!(refused.code(), "VALIDATION");
}

#[test]
fn unused_selections_count_against_the_limit_too() {
    let unused = format!(
        "{{ __typename }} fragment Unused on QueryRoot {{ {} }}",
        (0..5_001)
            .map(|i| format!("a{i}: __typename "))
            .collect::<String>()
    );
    assert_eq!(cost(&unused).complexity, 1);
    assert!(matches!(
        refusal(&unused),
        Refusal::TooLong {
            written: 5_002,
            limit: 5_000
        }
    ));
}

#[test]
fn mutation_fields_are_counted_with_aliases_and_fragments() {
    let aliased = format!(
        "mutation {{ {} }}",
        (0..1_000)
            .map(|i| format!("c{i}: registerCustomer(input: {{}}) {{ position }} "))
            .collect::<String>()
    );
    assert_eq!(cost(&aliased).mutation_fields, 1_000);
    assert!(matches!(
        refusal(&aliased),
        Refusal::TooManyMutationFields {
            count: 1_000,
            limit: 5
        }
    ));
    let through_fragments = "mutation { ...Two ...Two ... { c: x } } \
                             fragment Two on MutationRoot { a: x b: x }";
    assert_eq!(cost(through_fragments).mutation_fields, 5);
    // Only the operation that runs counts; queries run no commands.
    let two = "query Q { a b c d e f } mutation M { x y }";
    assert_eq!(cost_with(two, Some("Q"), json!({})).mutation_fields, 0);
    assert_eq!(cost_with(two, Some("M"), json!({})).mutation_fields, 2);
}

#[test]
fn a_batch_shares_one_budget() {
    let mutation = "mutation { a: x b: x c: x }";
    let mut requests = [
        async_graphql::Request::new(mutation),
        async_graphql::Request::new(mutation),
    ];
    assert!(matches!(
        LIMITS.check_batch(requests.iter_mut()),
        Err(Refusal::TooManyMutationFields { count: 6, limit: 5 })
    ));
    let page = "{ vehicles(first: 200) { edges { node { vin brand model year } } } }";
    let mut pages: Vec<_> = (0..4).map(|_| async_graphql::Request::new(page)).collect();
    // 1 + 200 × 6 = 1,201 each: four fit, five do not.
    assert!(LIMITS.check_batch(pages.iter_mut()).is_ok());
    let mut pages: Vec<_> = (0..5).map(|_| async_graphql::Request::new(page)).collect();
    assert!(matches!(
        LIMITS.check_batch(pages.iter_mut()),
        Err(Refusal::TooComplex { cost: 6_005, .. })
    ));
}

#[test]
fn writes_are_recognised_whatever_the_document_shape() {
    let writes = |query: &str, name: Option<&str>| cost_with(query, name, json!({})).writes;
    assert!(writes("mutation { x }", None));
    assert!(writes("query A { a } mutation B { b }", Some("B")));
    assert!(writes("query A { a } mutation B { b }", None));
    assert!(!writes("query A { a } mutation B { b }", Some("A")));
    assert!(!writes("{ vehicles { totalCount } }", None));
    assert!(writes("subscription { x }", None));
}

#[test]
fn an_unparseable_request_is_left_to_the_executor() {
    let mut request = async_graphql::Request::new("mutation {");
    assert_eq!(
        LIMITS.check_batch(std::iter::once(&mut request)),
        Ok(Cost::default())
    );
}

/// The cost model knows a connection by its `edges`/`nodes` and sizes its page from `first`: that
/// holds only while every type with `edges` or `nodes` is a connection that every field returning
/// it pages with `first`, and `first` means a page nowhere else.
#[test]
fn the_schema_keeps_the_connection_convention_the_cost_model_relies_on() {
    use async_graphql::parser::parse_schema;
    use async_graphql::parser::types::{BaseType, Type, TypeKind, TypeSystemDefinition};

    fn named(ty: &Type) -> &str {
        match &ty.base {
            BaseType::Named(name) => name.as_str(),
            BaseType::List(inner) => named(inner),
        }
    }
    let schema = parse_schema(crate::schema::sdl()).expect("the SDL parses");
    let objects: Vec<_> = schema
        .definitions
        .iter()
        .filter_map(|definition| match definition {
            TypeSystemDefinition::Type(ty) => match &ty.node.kind {
                TypeKind::Object(object) => Some((ty.node.name.node.as_str(), object)),
                _ => None,
            },
            _ => None,
        })
        .collect();
    let connections: Vec<&str> = objects
        .iter()
        .filter(|(_, object)| {
            object
                .fields
                .iter()
                .any(|field| matches!(field.node.name.node.as_str(), "edges" | "nodes"))
        })
        .map(|(name, _)| *name)
        .collect();
    assert!(
        connections.contains(&"VehicleConnection"),
        "{connections:?}"
    );
    let mut pages = 0;
    for (parent, object) in &objects {
        for field in &object.fields {
            let field = &field.node;
            let returns_connection = connections.contains(&named(&field.ty.node));
            let takes_first = field
                .arguments
                .iter()
                .any(|argument| argument.node.name.node == "first");
            assert_eq!(
                returns_connection, takes_first,
                "{parent}.{}: a connection must take `first`, and only a connection may",
                field.name.node
            );
            pages += usize::from(takes_first);
        }
    }
    assert!(pages >= 10, "only {pages} connections found");
}
