//! What a GraphQL request may cost, measured on the parsed document before async-graphql sees it.
//!
//! async-graphql's own depth and complexity limits, its recursion check and its validation walk
//! every fragment spread by expanding it, so a 1.3 KB document of 31 fragments that each spread the
//! previous one twice (`fragment F1 on QueryRoot { ...F0 ...F0 } …`) makes them visit 2^30 fields:
//! seconds of CPU and gigabytes before any limit can trip. Here each fragment is measured once and
//! its cost reused wherever it is spread (memoised), so measuring takes time linear in the
//! document's length whatever it would expand to, and a document over a limit is refused before
//! anything expands it.
//!
//! The cost model (every count is "as if expanded", computed without expanding):
//! - every field, fragment spread and inline fragment costs 1, plus what it selects;
//! - a connection's `edges` and `nodes` count once per item of the page (its `first`, clamped to
//!   the largest page the server returns; the default page when absent), the rest of it
//!   (`totalCount`, `pageInfo`) once;
//! - every operation in the document counts (validation walks them all), and so does every
//!   selection written in it, used or not, so a document can neither expand nor merely be longer
//!   than the limit;
//! - a batch shares one budget: the sum over its operations;
//! - depth counts nested fields only; nesting of fields, spreads and inline fragments together is
//!   bounded as well, which also bounds this walk's own recursion.
//!
//! Mutation fields are counted at the root of the operation that runs (aliases and fragments
//! included), summed over a batch: each is a command, and a request may send only a few.

use std::collections::HashMap;

use async_graphql::parser::types::{
    ExecutableDocument, Field, OperationType, Selection, SelectionSet,
};
use async_graphql::{Name, Value, Variables};
use queries::page::{DEFAULT_PAGE, MAX_PAGE};

/// Selections nested inside one another (fields, fragment spreads, inline fragments), at most.
/// async-graphql refuses more than 32 itself, but only after walking every spread to find out.
pub const MAX_NESTING: usize = 32;

/// The limits one HTTP request must stay within.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting of fields in an operation.
    pub max_depth: usize,
    /// Highest cost of the whole request (see the module docs), and most selections written.
    pub max_complexity: u64,
    /// Most mutation fields one request may run (each is a command).
    pub max_mutation_fields: u64,
}

/// What one document costs, as measured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cost {
    /// Cost of every operation in the document, fragments expanded (saturating).
    pub complexity: u64,
    /// Selections written in the document (fields, spreads, inline fragments).
    pub written: u64,
    /// Deepest field nesting of any operation.
    pub depth: usize,
    /// Fields at the root of the mutation that runs (0 for queries).
    pub mutation_fields: u64,
    /// Whether the operation that runs writes (a mutation or a subscription): never over GET.
    pub writes: bool,
}

/// Why a request is refused before it runs.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "the request costs {cost}, more than the limit of {limit} (every field, fragment spread and \
         inline fragment counts 1, a connection's edges and nodes once per item of the page)"
    )]
    TooComplex { cost: u64, limit: u64 },
    #[error("the document has {written} selections, more than the limit of {limit}")]
    TooLong { written: u64, limit: u64 },
    #[error("fields are nested {depth} deep, more than the limit of {limit}")]
    TooDeep { depth: usize, limit: usize },
    #[error(
        "selections (fields, fragment spreads, inline fragments) are nested more than {MAX_NESTING} deep"
    )]
    NestedTooDeep,
    #[error("{count} mutation fields in one request, more than the limit of {limit}")]
    TooManyMutationFields { count: u64, limit: u64 },
    #[error("fragment \"{0}\" spreads itself")]
    FragmentCycle(String),
}

impl Refusal {
    /// The stable error code a client gets.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::FragmentCycle(_) => queries::codes::VALIDATION,
            _ => queries::codes::QUERY_TOO_COMPLEX,
        }
    }
}

impl Limits {
    /// Measures every request of a batch, refusing the whole batch when the sum of their costs or
    /// of their mutation fields, or any one's depth, is over a limit. A request whose query does
    /// not parse is left to the executor, which answers it with the parse error. Each document is
    /// parsed once: async-graphql reuses the parsed document.
    pub fn check_batch<'r>(
        &self,
        requests: impl IntoIterator<Item = &'r mut async_graphql::Request>,
    ) -> Result<Cost, Refusal> {
        let mut total = Cost::default();
        for request in requests {
            let Ok(document) = async_graphql::parser::parse_query(&request.query) else {
                continue;
            };
            let cost = measure(
                &document,
                request.operation_name.as_deref(),
                &request.variables,
            )?;
            request.set_parsed_query(document);
            total.complexity = total.complexity.saturating_add(cost.complexity);
            total.written = total.written.saturating_add(cost.written);
            total.depth = total.depth.max(cost.depth);
            total.mutation_fields = total.mutation_fields.saturating_add(cost.mutation_fields);
            total.writes |= cost.writes;
        }
        self.admit(&total)?;
        Ok(total)
    }

    fn admit(&self, cost: &Cost) -> Result<(), Refusal> {
        if cost.depth > self.max_depth {
            return Err(Refusal::TooDeep {
                depth: cost.depth,
                limit: self.max_depth,
            });
        }
        if cost.written > self.max_complexity {
            return Err(Refusal::TooLong {
                written: cost.written,
                limit: self.max_complexity,
            });
        }
        if cost.complexity > self.max_complexity {
            return Err(Refusal::TooComplex {
                cost: cost.complexity,
                limit: self.max_complexity,
            });
        }
        if cost.mutation_fields > self.max_mutation_fields {
            return Err(Refusal::TooManyMutationFields {
                count: cost.mutation_fields,
                limit: self.max_mutation_fields,
            });
        }
        Ok(())
    }
}

/// Measures one document (see the module docs). Refuses only what cannot be measured: a fragment
/// that spreads itself, or nesting beyond [`MAX_NESTING`].
pub fn measure(
    document: &ExecutableDocument,
    operation_name: Option<&str>,
    variables: &Variables,
) -> Result<Cost, Refusal> {
    measure_counting(document, operation_name, variables).0
}

/// [`measure`], and how many selections it visited (tests check that it never expands).
fn measure_counting(
    document: &ExecutableDocument,
    operation_name: Option<&str>,
    variables: &Variables,
) -> (Result<Cost, Refusal>, u64) {
    let mut walk = Walk::new(document, variables);
    let mut measured = Vec::new();
    for (name, operation) in document.operations.iter() {
        match walk.selection_set(&operation.node.selection_set.node, 0) {
            Ok(set) => measured.push((name, operation.node.ty, set)),
            Err(refusal) => return (Err(refusal), walk.visited),
        }
    }
    let mut cost = Cost {
        written: written(document),
        ..Cost::default()
    };
    for (_, _, set) in &measured {
        cost.complexity = cost.complexity.saturating_add(set.total());
        cost.depth = cost.depth.max(set.depth);
    }
    // With a name, that operation runs. Without one only a lone operation runs (several are an
    // error), but count them all rather than guess.
    let runs = measured.iter().filter(|(name, _, _)| match operation_name {
        Some(wanted) => name.is_some_and(|name| name.as_str() == wanted),
        None => true,
    });
    for (_, ty, set) in runs {
        if *ty != OperationType::Query {
            cost.writes = true;
            cost.mutation_fields = cost.mutation_fields.saturating_add(set.root_fields);
        }
    }
    (Ok(cost), walk.visited)
}

/// Every selection written in the document, fragments counted once each.
fn written(document: &ExecutableDocument) -> u64 {
    fn count(set: &SelectionSet) -> u64 {
        set.items
            .iter()
            .map(|selection| {
                1 + match &selection.node {
                    Selection::Field(field) => count(&field.node.selection_set.node),
                    Selection::FragmentSpread(_) => 0,
                    Selection::InlineFragment(inline) => count(&inline.node.selection_set.node),
                }
            })
            .fold(0, u64::saturating_add)
    }
    let operations = document
        .operations
        .iter()
        .map(|(_, operation)| count(&operation.node.selection_set.node));
    let fragments = document
        .fragments
        .values()
        .map(|fragment| count(&fragment.node.selection_set.node));
    operations.chain(fragments).fold(0, u64::saturating_add)
}

/// The measured cost of one selection set, split so that a connection can weigh its items.
#[derive(Clone, Copy, Debug, Default)]
struct SetCost {
    /// What its `edges` and `nodes` fields cost (counted per item when the set is a page's).
    items: u64,
    /// Everything else.
    other: u64,
    /// Deepest field nesting below this set.
    depth: usize,
    /// Fields at this level, through spreads and inline fragments (a mutation's commands).
    root_fields: u64,
}

impl SetCost {
    fn total(&self) -> u64 {
        self.items.saturating_add(self.other)
    }

    fn add(&mut self, other: &SetCost) {
        self.items = self.items.saturating_add(other.items);
        self.other = self.other.saturating_add(other.other);
        self.depth = self.depth.max(other.depth);
        self.root_fields = self.root_fields.saturating_add(other.root_fields);
    }
}

enum Fragment {
    /// Being measured: meeting it again means it spreads itself.
    InProgress,
    Measured(SetCost),
}

struct Walk<'d> {
    document: &'d ExecutableDocument,
    variables: &'d Variables,
    /// Each fragment's cost, measured at its first spread.
    fragments: HashMap<&'d str, Fragment>,
    /// Selections visited so far: never more than the document holds.
    visited: u64,
}

impl<'d> Walk<'d> {
    fn new(document: &'d ExecutableDocument, variables: &'d Variables) -> Self {
        Self {
            document,
            variables,
            fragments: HashMap::new(),
            visited: 0,
        }
    }

    fn selection_set(&mut self, set: &'d SelectionSet, nesting: usize) -> Result<SetCost, Refusal> {
        let mut cost = SetCost::default();
        for selection in &set.items {
            self.visited += 1;
            if nesting + 1 > MAX_NESTING {
                return Err(Refusal::NestedTooDeep);
            }
            match &selection.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    let below = self.selection_set(&field.selection_set.node, nesting + 1)?;
                    let per_item = below.items.saturating_mul(self.page_size(field));
                    let own = 1u64.saturating_add(per_item).saturating_add(below.other);
                    match field.name.node.as_str() {
                        "edges" | "nodes" => cost.items = cost.items.saturating_add(own),
                        _ => cost.other = cost.other.saturating_add(own),
                    }
                    cost.depth = cost.depth.max(below.depth + 1);
                    cost.root_fields = cost.root_fields.saturating_add(1);
                }
                Selection::FragmentSpread(spread) => {
                    cost.other = cost.other.saturating_add(1);
                    let name = spread.node.fragment_name.node.as_str();
                    let fragment = self.fragment(name, nesting + 1)?;
                    cost.add(&fragment);
                }
                Selection::InlineFragment(inline) => {
                    cost.other = cost.other.saturating_add(1);
                    let inner = self.selection_set(&inline.node.selection_set.node, nesting + 1)?;
                    cost.add(&inner);
                }
            }
        }
        Ok(cost)
    }

    /// A fragment's cost, measured once. An unknown fragment costs nothing here; validation
    /// refuses it.
    fn fragment(&mut self, name: &'d str, nesting: usize) -> Result<SetCost, Refusal> {
        match self.fragments.get(name) {
            Some(Fragment::Measured(cost)) => return Ok(*cost),
            Some(Fragment::InProgress) => return Err(Refusal::FragmentCycle(name.to_string())),
            None => {}
        }
        let Some(definition) = self.document.fragments.get(name) else {
            return Ok(SetCost::default());
        };
        self.fragments.insert(name, Fragment::InProgress);
        let cost = self.selection_set(&definition.node.selection_set.node, nesting)?;
        self.fragments.insert(name, Fragment::Measured(cost));
        Ok(cost)
    }

    /// How many items a field's `edges` and `nodes` stand for: the page its `first` argument asks
    /// for, clamped to what the server returns, or the default page. (Only connections have
    /// `edges` and `nodes`, and every connection takes `first`: a test holds the schema to that.)
    /// A value that is not a number (the executor refuses it) is costed as the largest page.
    fn page_size(&self, field: &Field) -> u64 {
        let Some(value) = field.get_argument("first") else {
            return DEFAULT_PAGE as u64;
        };
        let requested = value
            .node
            .clone()
            .into_const_with(|variable| {
                self.variables
                    .get(&variable)
                    .cloned()
                    .or_else(|| self.variable_default(&variable))
                    .ok_or(())
            })
            .ok();
        match requested {
            None | Some(Value::Null) => DEFAULT_PAGE as u64,
            Some(Value::Number(n)) => n
                .as_i64()
                .map(|n| n.clamp(1, MAX_PAGE as i64) as u64)
                .unwrap_or(MAX_PAGE as u64),
            Some(_) => MAX_PAGE as u64,
        }
    }

    /// The largest default any operation declares for a variable (operations share fragments, so
    /// the one that runs is not known while measuring a fragment).
    fn variable_default(&self, variable: &Name) -> Option<Value> {
        self.document
            .operations
            .iter()
            .flat_map(|(_, operation)| operation.node.variable_definitions.iter())
            .filter(|definition| definition.node.name.node == *variable)
            .filter_map(|definition| definition.node.default_value.as_ref())
            .map(|value| value.node.clone())
            .max_by_key(|value| match value {
                Value::Number(n) => n.as_i64().unwrap_or(i64::MAX),
                _ => i64::MAX,
            })
    }
}

#[cfg(test)]
mod tests;
