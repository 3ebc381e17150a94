//! Helpers shared by the aggregate tests.
//!
//! # Model-based properties
//!
//! Every aggregate's `tests/model.rs` holds a *reference model*: a plain, independent
//! implementation of the aggregate's rules as its module docs state them, written without the
//! aggregate's `transition`, `decide` or `apply`. Random command sequences run against both
//! ([`run_against_model`]): after every command the decisions (the events emitted, or the exact
//! refusal) must be equal, and the state the aggregate shows through its accessors must equal the
//! model's. A bug in `handle` shows up as a different decision, a bug in `apply` as a different
//! state (and usually as a different decision on a later command). The other properties (money
//! adds up, no overlaps, the status machine) run the aggregate alone ([`run_alone`]), so they hold
//! even where the model and the aggregate might share a mistake.
//!
//! Why not `proptest-state-machine`: its value is generating only transitions whose preconditions
//! hold and shrinking within them. Here every command may be sent in every state (a refusal is
//! behaviour to compare, not a precondition), so a plain `Vec` of steps shrinks just as well and
//! keeps the dependency tree as it is. Steps that need the current state to be meaningful ("pay the
//! balance due", "repay the exact payoff") are resolved against the model, the oracle, before the
//! command is sent to both.
//!
//! Case counts are proptest's default (256), so `PROPTEST_CASES=5000 cargo test -p aggregates`
//! runs a longer search.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{TestCaseError, TestRunner};

/// Runs `handle` the way the framework does (every event written through the sink, which applies
/// it) and returns the events it emitted.
///
/// Why not a runtime: `handle` never waits on anything (no I/O, and the sink's lock is never
/// contended here), so its future is ready on the first poll. A future that is not ready means
/// `handle` started doing I/O, which this crate must never do, so that panics.
pub(crate) fn execute<A: Aggregate>(
    aggregate: &mut A,
    command: A::Command,
    services: &A::Services,
) -> Result<Vec<A::Event>, A::Error> {
    let sink = EventSink::<A>::default();
    poll_once(aggregate.handle(command, services, &sink))?;
    Ok(poll_once(sink.collect()))
}

fn poll_once<F: Future>(future: F) -> F::Output {
    let mut context = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut context) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("aggregate code awaited something that was not ready"),
    }
}

/// A reference model of aggregate `A` (see the module docs).
pub(crate) trait Model<A: Aggregate>: Clone + Debug {
    /// A generated step: a command, or a recipe the model turns into one.
    type Step: Clone + Debug;

    /// The command `step` stands for in the model's current state.
    fn command(&self, step: &Self::Step) -> A::Command;

    /// Decides on `command` by the model's own rules; changes the model only when it accepts.
    fn step(&mut self, command: &A::Command) -> Result<Vec<A::Event>, A::Error>;

    /// Fails unless everything `aggregate` shows through its accessors equals the model's state.
    fn check(&self, aggregate: &A) -> Result<(), TestCaseError>;

    /// The parts of an event the model decides; an event's text meant for people (a credit
    /// finding's wording, say) is compared by the given/when/then tests instead.
    fn comparable(event: &A::Event) -> A::Event {
        event.clone()
    }
}

/// One command of a model run: the aggregate before and after, the command and its outcome.
#[derive(Clone, Debug)]
pub(crate) struct Outcome<A: Aggregate> {
    pub before: A,
    pub after: A,
    pub command: A::Command,
    pub result: Result<Vec<A::Event>, A::Error>,
}

/// Runs `steps` against a fresh aggregate and `model`, failing at the first decision or state that
/// differs; returns what happened at each step, for further properties.
pub(crate) fn run_against_model<A, M>(
    mut model: M,
    steps: &[M::Step],
) -> Result<Vec<Outcome<A>>, TestCaseError>
where
    A: Aggregate<Services = ()> + Clone + Debug,
    A::Command: Clone + Debug,
    A::Error: PartialEq + Clone,
    M: Model<A>,
{
    let mut aggregate = A::default();
    model.check(&aggregate)?;
    let mut outcomes = Vec::with_capacity(steps.len());
    for (index, step) in steps.iter().enumerate() {
        let command = model.command(step);
        let before = aggregate.clone();
        let expected = model.step(&command);
        let actual = execute(&mut aggregate, command.clone(), &());
        let comparable = |result: &Result<Vec<A::Event>, A::Error>| {
            result
                .as_ref()
                .map(|events| events.iter().map(M::comparable).collect::<Vec<_>>())
                .map_err(Clone::clone)
        };
        if comparable(&actual) != comparable(&expected) {
            return Err(TestCaseError::fail(format!(
                "step {index} ({step:?}): {command:?}\n  aggregate decided {actual:?}\n  model decided     {expected:?}\n  state before: {before:?}"
            )));
        }
        model.check(&aggregate).map_err(|failure| {
            TestCaseError::fail(format!(
                "after step {index} ({command:?}) the state differs from the model: {failure}\n  aggregate: {aggregate:?}\n  model: {model:?}"
            ))
        })?;
        outcomes.push(Outcome {
            before,
            after: aggregate.clone(),
            command,
            result: actual,
        });
    }
    Ok(outcomes)
}

/// Runs `steps` against a fresh aggregate, with `model` only turning steps into commands (and
/// following along), never judging: for properties that must hold of the aggregate on its own, so
/// they still catch a mistake the model happens to share.
pub(crate) fn run_alone<A, M>(mut model: M, steps: &[M::Step]) -> Vec<Outcome<A>>
where
    A: Aggregate<Services = ()> + Clone + Debug,
    A::Command: Clone + Debug,
    M: Model<A>,
{
    let mut aggregate = A::default();
    steps
        .iter()
        .map(|step| {
            let command = model.command(step);
            let _ = model.step(&command);
            let before = aggregate.clone();
            let result = execute(&mut aggregate, command.clone(), &());
            Outcome {
                before,
                after: aggregate.clone(),
                command,
                result,
            }
        })
        .collect()
}

/// The event types and refusals (`Debug` variant names) that `cases` runs of `strategy` reach, with
/// a fixed seed: the coverage tests assert the generators reach every one, so a model-based
/// property never passes only because its commands never get anywhere.
pub(crate) fn reached<A, M, S>(model: M, strategy: S, cases: usize) -> BTreeSet<String>
where
    A: Aggregate<Services = ()> + Clone + Debug,
    A::Command: Clone + Debug,
    A::Error: PartialEq + Clone,
    M: Model<A>,
    S: Strategy<Value = Vec<M::Step>>,
{
    let mut runner = TestRunner::deterministic();
    let mut seen = BTreeSet::new();
    for _ in 0..cases {
        let steps = strategy
            .new_tree(&mut runner)
            .expect("the generator always produces a case")
            .current();
        let outcomes = run_against_model::<A, M>(model.clone(), &steps)
            .unwrap_or_else(|failure| panic!("the model run failed: {failure}"));
        for outcome in outcomes {
            match outcome.result {
                Ok(events) => seen.extend(events.iter().map(DomainEvent::event_type)),
                Err(error) => {
                    seen.insert(variant_name(&error));
                }
            }
        }
    }
    seen
}

/// `Busy` for `MechanicDayError::Busy { .. }`: the variant name from the `Debug` form.
pub(crate) fn variant_name(value: &impl Debug) -> String {
    let debug = format!("{value:?}");
    debug
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Fails with the names in `expected` that `seen` lacks.
pub(crate) fn assert_reached(seen: &BTreeSet<String>, expected: &[&str]) {
    let missing: Vec<&str> = expected
        .iter()
        .copied()
        .filter(|name| !seen.contains(*name))
        .collect();
    assert!(
        missing.is_empty(),
        "the generated commands never reach {missing:?} (reached {seen:?})"
    );
}
