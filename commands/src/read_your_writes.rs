//! Read-your-writes, honestly: a mutation waits (bounded) until every read model has reached its
//! write before it reads its answer, and the response says whether they did.
//!
//! Every response in which a mutation wrote (or replayed) something carries
//! `extensions.readYourWrites`:
//!
//! ```json
//! { "caughtUp": false, "position": 42, "reached": 37, "lagging": ["ledger"] }
//! ```
//!
//! - `caughtUp`: every mutation of the request saw every read model reach its write before it read
//!   its answer. `false` means at least one answer was read from read models that did not show the
//!   write yet (its object may be stale or `null`); the write itself is durable.
//! - `position`: the highest log position the request's mutations wrote (or replayed).
//! - `reached`: the lowest position any read model had reached when the last mutation stopped
//!   waiting.
//! - `lagging`: the read models that had not reached `position` by then.
//!
//! A client that gets `caughtUp: false` can wait until `extensions.readModels` of a later answer
//! shows `position` everywhere. Queries never wait and never carry the flag.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest, NextRequest,
};
use async_graphql::{Context, Name, Request, Response, ServerResult, Value};

/// What the mutations of one request saw of their own writes.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Report {
    caught_up: bool,
    position: i64,
    /// Each read model's position when the last mutation stopped waiting.
    positions: Vec<(&'static str, i64)>,
}

/// Where the mutations of one request leave their [`Report`]; put into the request's data by
/// [`ReadYourWrites`].
#[derive(Clone, Default)]
struct Slot(Arc<Mutex<Option<Report>>>);

/// Records that a mutation waited for `position` and whether the read models (now at `positions`)
/// reached it. A no-op outside a request that [`ReadYourWrites`] prepared.
pub(crate) fn record(
    ctx: &Context<'_>,
    position: i64,
    caught_up: bool,
    positions: Vec<(&'static str, i64)>,
) {
    let Some(slot) = ctx.data_opt::<Slot>() else {
        return;
    };
    let mut report = slot
        .0
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let merged = match report.take() {
        None => Report {
            caught_up,
            position,
            positions,
        },
        Some(earlier) => Report {
            caught_up: earlier.caught_up && caught_up,
            position: earlier.position.max(position),
            positions,
        },
    };
    *report = Some(merged);
}

impl Report {
    fn to_value(&self) -> Value {
        let reached = self.positions.iter().map(|(_, p)| *p).min().unwrap_or(0);
        let lagging = self
            .positions
            .iter()
            .filter(|(_, p)| *p < self.position)
            .map(|(name, _)| Value::String((*name).to_string()))
            .collect();
        let mut object = BTreeMap::new();
        object.insert(Name::new("caughtUp"), Value::Boolean(self.caught_up));
        object.insert(Name::new("position"), Value::from(self.position));
        object.insert(Name::new("reached"), Value::from(reached));
        object.insert(Name::new("lagging"), Value::List(lagging));
        Value::Object(object.into_iter().collect())
    }
}

/// The schema extension that adds `extensions.readYourWrites` (register it with
/// `SchemaBuilder::extension`).
pub struct ReadYourWrites;

impl ExtensionFactory for ReadYourWrites {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(PerRequest {
            slot: Slot::default(),
        })
    }
}

/// One request's extension (created per request by the factory).
struct PerRequest {
    slot: Slot,
}

#[async_trait::async_trait]
impl Extension for PerRequest {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        next.run(ctx, request.data(self.slot.clone())).await
    }

    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        let report = self
            .slot
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(report) = report {
            response
                .extensions
                .insert("readYourWrites".to_string(), report.to_value());
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_names_what_lags_behind_the_highest_write() {
        let report = Report {
            caught_up: false,
            position: 42,
            positions: vec![("catalog", 42), ("ledger", 37), ("orders", 45)],
        };
        assert_eq!(
            report.to_value().into_json().unwrap(),
            serde_json::json!({ "caughtUp": false, "position": 42, "reached": 37, "lagging": ["ledger"] })
        );
    }
}
