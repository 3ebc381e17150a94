//! Sending one command to one aggregate: metadata on every event, idempotent retries answered from the
//! log, re-deciding after optimistic-lock conflicts, and the global position of what was written.
//! Every service in this crate sends through a [`Sender`].

use cqrs_es::{Aggregate, AggregateContext, AggregateError, EventStore};
use eventstore::{CommandMetadata, Cqrs, Database, EventLog, RecordedEvent, Store, Upcasters};
use uuid::Uuid;

use crate::clock::IdGenerator;
use crate::context::RequestContext;
use crate::error::CommandError;

/// How many times a command is decided at most before an optimistic-lock conflict reaches the caller.
/// A conflict means another command on the aggregate committed first, and a refused append is
/// answered only after the group that beat it has committed (`eventstore::writer`), so each attempt
/// reloads a newer version: with this bound, sixteen commands racing on one aggregate each win
/// within their attempts, whatever the timing (each loses at most once to each of the other fifteen).
pub const CONFLICT_ATTEMPTS: usize = 16;
/// The first back-off ceiling after a conflict; it doubles with each further conflict up to
/// [`CONFLICT_BACKOFF_MAX_MS`].
const CONFLICT_BACKOFF_FIRST_MS: u64 = 1;
/// The back-off ceiling at most, so a command's retries wait 0.35 s at worst in all.
const CONFLICT_BACKOFF_MAX_MS: u64 = 32;

/// How long to wait before deciding again after the `conflicts`-th conflict (1, 2, …): a uniformly
/// random time up to a ceiling that doubles with each conflict ("full jitter"), so the losers of one
/// race spread over several later groups instead of meeting again in the next one, where only one of
/// them could win.
fn conflict_backoff(conflicts: usize) -> std::time::Duration {
    use rand_core::RngCore;
    let ceiling_us = CONFLICT_BACKOFF_FIRST_MS
        .saturating_mul(1 << conflicts.saturating_sub(1).min(16))
        .min(CONFLICT_BACKOFF_MAX_MS)
        * 1_000;
    let jitter = u64::from(rand_core::OsRng.next_u32()) % (ceiling_us + 1);
    std::time::Duration::from_micros(jitter)
}

/// What a carried-out command reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Written {
    /// The aggregate the command addressed.
    pub id: Uuid,
    /// Global position of the aggregate's newest event: once read models reach it, they show the write.
    pub position: i64,
    /// True when an idempotent retry was answered from the first attempt and nothing new was written.
    pub replayed: bool,
}

/// The idempotency key of a mutation and the fingerprint of its input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Idempotency {
    pub key: String,
    pub fingerprint: String,
}

/// One command as sent: who, what, and how to recognise its retry.
#[derive(Clone, Copy, Debug)]
pub struct Call<'a> {
    pub ctx: &'a RequestContext,
    /// The command's name as recorded in metadata, e.g. `ConfirmOrder`.
    pub command: &'static str,
    /// Only the step that completes an operation carries the key: a retry of a half-done operation must
    /// not be mistaken for a finished one.
    pub idempotency: Option<&'a Idempotency>,
}

impl<'a> Call<'a> {
    pub fn new(
        ctx: &'a RequestContext,
        command: &'static str,
        idempotency: Option<&'a Idempotency>,
    ) -> Self {
        Self {
            ctx,
            command,
            idempotency,
        }
    }

    /// The same call without its idempotency key (for intermediate steps).
    pub fn step(self) -> Self {
        Self {
            idempotency: None,
            ..self
        }
    }
}

/// Sends commands and reads back where they landed. Cheap to clone.
#[derive(Clone)]
pub struct Sender {
    db: Database,
    log: EventLog,
}

impl Sender {
    /// A sender over `db`, reading the log through the shared upcasters.
    pub fn new(db: &Database, upcasters: &Upcasters) -> Self {
        Self {
            db: db.clone(),
            log: EventLog::new(db.pool().clone(), upcasters.clone()),
        }
    }

    pub fn db(&self) -> &Database {
        &self.db
    }

    pub fn log(&self) -> &EventLog {
        &self.log
    }

    /// Current state of an aggregate (write model; a never-created id gives the default state).
    pub async fn load<A: Aggregate>(&self, store: &Store<A>, id: Uuid) -> Result<A, CommandError> {
        let mut context = store.load_aggregate(&id.to_string()).await.map_err(|err| {
            CommandError::from_aggregate(format!("loading {} {id}", A::TYPE), err)
        })?;
        Ok(std::mem::take(context.aggregate()))
    }

    /// Runs one command with metadata, answering idempotent retries from the log and re-deciding
    /// after optimistic-lock conflicts: after each, a random back-off ([`conflict_backoff`]), then
    /// the aggregate reloaded and the command decided again, at most [`CONFLICT_ATTEMPTS`] times in
    /// all; past that the caller gets [`CommandError::Conflict`].
    pub async fn execute<A>(
        &self,
        cqrs: &Cqrs<A>,
        id: Uuid,
        command: A::Command,
        call: Call<'_>,
    ) -> Result<Written, CommandError>
    where
        A: Aggregate,
        A::Command: Clone,
        A::Error: Into<CommandError>,
    {
        self.execute_contended(cqrs, id, command, call, CONFLICT_ATTEMPTS)
            .await
    }

    /// [`Sender::execute`] for a stream many requests append to at once (a promo code's
    /// redemptions): re-decided, after the same random back-off, up to `attempts` times in all.
    /// Each conflict
    /// means another append to the stream won, so a bound above the appends a burst can make
    /// lets every request be decided against the winners instead of answered `CONFLICT`.
    pub async fn execute_contended<A>(
        &self,
        cqrs: &Cqrs<A>,
        id: Uuid,
        command: A::Command,
        call: Call<'_>,
        attempts: usize,
    ) -> Result<Written, CommandError>
    where
        A: Aggregate,
        A::Command: Clone,
        A::Error: Into<CommandError>,
    {
        if let Some(written) = self.replay(id, call.idempotency).await? {
            return Ok(written);
        }
        let metadata = CommandMetadata {
            actor_id: call.ctx.actor_id.clone(),
            actor_role: call.ctx.actor_role.clone(),
            correlation_id: call.ctx.correlation_id.clone(),
            causation_id: Uuid::now_v7().to_string(),
            command: call.command.to_string(),
            idempotency_key: call.idempotency.map(|i| i.key.clone()),
            input_fingerprint: call.idempotency.map(|i| i.fingerprint.clone()),
        }
        .to_map();
        let aggregate_id = id.to_string();
        let mut attempt = 0;
        loop {
            attempt += 1;
            match cqrs
                .execute_with_metadata(&aggregate_id, command.clone(), metadata.clone())
                .await
            {
                Ok(()) => break,
                Err(AggregateError::UserError(err)) => {
                    // A duplicate under the same key, running alongside, may have done it first.
                    if let Some(written) = self.replay(id, call.idempotency).await? {
                        return Ok(written);
                    }
                    return Err(err.into());
                }
                Err(AggregateError::AggregateConflict) => {
                    self.db.note_contended_append();
                    // A duplicate under the same key, running alongside, may be the append that won:
                    // then this one is answered "already done", not re-decided.
                    if let Some(written) = self.replay(id, call.idempotency).await? {
                        return Ok(written);
                    }
                    if attempt >= attempts {
                        return Err(CommandError::Conflict { aggregate: A::TYPE });
                    }
                    tracing::debug!(aggregate = A::TYPE, %id, attempt, "optimistic-lock conflict, re-deciding");
                    tokio::time::sleep(conflict_backoff(attempt)).await;
                }
                Err(other) => {
                    let err = CommandError::from_aggregate(format!("{} {id}", A::TYPE), other);
                    if matches!(err, CommandError::StorageUnavailable(_)) {
                        self.db.note_write_failed();
                    }
                    return Err(err);
                }
            }
        }
        self.db.notify_appended();
        let position = self.position_of::<A>(id).await?;
        self.db.note_write_committed();
        Ok(Written {
            id,
            position,
            replayed: false,
        })
    }

    /// The global position of the newest event of aggregate `A` `id`, which has just been written
    /// or found written. The log is read through another connection than the append's, so a write
    /// that was reported committed but is not in the log is a storage failure answered as one —
    /// never a success at position 0.
    pub async fn position_of<A: Aggregate>(&self, id: Uuid) -> Result<i64, CommandError> {
        match self.log.last_position_of(A::TYPE, &id.to_string()).await? {
            Some(position) => Ok(position),
            None => {
                self.db.note_write_failed();
                Err(CommandError::StorageUnavailable(format!(
                    "{} {id}: the write was reported committed, but the log holds no event of it",
                    A::TYPE
                )))
            }
        }
    }

    /// The first event written under this idempotency key, if any. The same key with a different
    /// input is refused. Survives restarts: the key lives in the events' metadata.
    pub async fn first_attempt(
        &self,
        idempotency: Option<&Idempotency>,
    ) -> Result<Option<RecordedEvent>, CommandError> {
        let Some(idempotency) = idempotency else {
            return Ok(None);
        };
        let Some(first) = self.log.find_by_idempotency_key(&idempotency.key).await? else {
            return Ok(None);
        };
        if first.metadata_value(eventstore::metadata::keys::INPUT_FINGERPRINT)
            != Some(idempotency.fingerprint.as_str())
        {
            return Err(CommandError::IdempotencyKeyReused {
                key: idempotency.key.clone(),
            });
        }
        Ok(Some(first))
    }

    /// Answers a retry of an operation on `id` from its first attempt: where it landed, and that
    /// nothing new was written. The fingerprint covers the whole input (ids included), so a match is
    /// the same operation; creates without a client id get theirs from the key ([`aggregate_id`]).
    pub async fn replay(
        &self,
        id: Uuid,
        idempotency: Option<&Idempotency>,
    ) -> Result<Option<Written>, CommandError> {
        Ok(self.first_attempt(idempotency).await?.map(|first| Written {
            id,
            position: first.position,
            replayed: true,
        }))
    }
}

/// Where new aggregate ids come from. Deterministic under a key, so a retry of a create whose id
/// the server chose addresses the same aggregate as its first attempt.
const KEYED_ID_NAMESPACE: Uuid = Uuid::from_u128(0x2f6b_9d0e_41c7_4a58_b3e2_7c15_0a9d_6e84);

/// The id of a new aggregate: the client's, else one derived from the idempotency key (UUIDv5), else
/// a fresh one.
pub fn aggregate_id(
    ids: &dyn IdGenerator,
    requested: Option<Uuid>,
    idempotency: Option<&Idempotency>,
) -> Uuid {
    match (requested, idempotency) {
        (Some(id), _) => id,
        (None, Some(idempotency)) => Uuid::new_v5(&KEYED_ID_NAMESPACE, idempotency.key.as_bytes()),
        (None, None) => ids.new_id(),
    }
}
