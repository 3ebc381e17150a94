//! Helpers shared by the aggregate tests.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;

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
