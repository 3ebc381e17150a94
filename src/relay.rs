//! The integration-event relay: a process manager that reads the committed global log after its own
//! checkpoint and publishes the integration events of [`crate::integration`] to RabbitMQ.
//!
//! Guarantees (docs/integration-events.md):
//! - only committed events are published (it reads the log, never the command path);
//! - at least once: a batch is published on one channel with publisher confirms, and the
//!   checkpoint moves past it only after the broker confirmed every message of it; a failure
//!   anywhere (connection, nack, crash) publishes the batch again from the checkpoint, with the same
//!   message ids (the global position);
//! - in order: one channel, messages sent in global order, so every queue bound to the exchange
//!   receives each aggregate's events in order (a resent batch starts over at the checkpoint, so a
//!   consumer that drops ids it has seen sees each aggregate's events once and in order);
//! - one publisher: on PostgreSQL the relay runs where its lease (`eventstore::leases`) is held;
//!   its checkpoint moves by a guarded update, so two servers that briefly both believe they hold
//!   it cannot move it backwards;
//! - a broker outage only makes it fall behind (`/readyz` and the `projections` query show how
//!   far): it reconnects with bounded back-off and catches up; commands never wait for it.

use std::sync::Arc;
use std::time::Duration;

use eventstore::{Database, EventLog, Upcasters};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use projections::ProjectorStatus;
use tokio::sync::watch;

use crate::integration::{self, EXCHANGE, IntegrationEvent};

/// The relay's checkpoint and lease name.
pub const CONSUMER: &str = "amqp_relay";
/// Bump when what the relay publishes for the same log changes meaning: a new version starts from
/// position 0 again (everything republished, same ids).
const VERSION: i64 = 1;
/// Domain events read per batch: bounds memory and the unconfirmed messages in flight.
pub const BATCH_EVENTS: u32 = 256;
/// Safety-net poll without an append signal; also how often the lease is asked for.
const POLL_INTERVAL: Duration = Duration::from_millis(1_000);
/// Reconnect back-off: doubles from the first to the maximum.
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(15);
/// Longest wait to publish a batch and have it confirmed before the connection is given up as dead.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for a connection to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why one round of the relay failed.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Store(#[from] eventstore::StoreError),
    #[error("checkpoint: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("broker: {0}")]
    Broker(String),
}

/// Publishes integration events to one broker.
pub struct Relay {
    db: Database,
    log: EventLog,
    url: String,
    status: watch::Sender<ProjectorStatus>,
}

impl Relay {
    /// A relay for `url` (`amqp://user:password@host:port/vhost`), with its checkpoint created at 0
    /// if it has none (a new relay publishes the whole log).
    pub async fn prepare(
        db: Database,
        upcasters: Upcasters,
        url: String,
    ) -> Result<Self, RelayError> {
        sqlx::query(
            "INSERT INTO log_checkpoints (consumer, version, position, updated_at) VALUES ($1, $2, 0, $3)
             ON CONFLICT (consumer) DO NOTHING",
        )
        .bind(CONSUMER)
        .bind(VERSION)
        .bind(now_text())
        .execute(db.pool())
        .await?;
        sqlx::query(
            "UPDATE log_checkpoints SET version = $1, position = 0, updated_at = $2
              WHERE consumer = $3 AND version <> $1",
        )
        .bind(VERSION)
        .bind(now_text())
        .bind(CONSUMER)
        .execute(db.pool())
        .await?;
        let log = EventLog::new(db.pool().clone(), upcasters);
        let relay = Self {
            db,
            log,
            url,
            status: watch::channel(ProjectorStatus::default()).0,
        };
        let position = relay.checkpoint().await?;
        relay
            .status
            .send_modify(|status| status.position = position);
        Ok(relay)
    }

    /// Its progress, as the `projections` query and `/readyz` show it. `failure` holds why the
    /// broker is out of reach while it is (the position it waits to publish, and the error).
    pub fn status(&self) -> watch::Receiver<ProjectorStatus> {
        self.status.subscribe()
    }

    /// Runs until `shutdown` turns true.
    pub fn spawn(self: Arc<Self>, shutdown: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move { self.run(shutdown).await })
    }

    async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        let mut appended = self.db.subscribe_appended();
        let mut channel: Option<(Connection, Channel)> = None;
        let mut retry = RETRY_FIRST;
        while !*shutdown.borrow() {
            if !self.db.leases().hold(CONSUMER).await {
                // Another server publishes: follow its checkpoint, ask again at the next poll.
                self.status.send_if_modified(|status| {
                    let changed = status.runs_here || status.failure.is_some();
                    status.runs_here = false;
                    status.failure = None;
                    changed
                });
                if let Some((connection, _)) = channel.take() {
                    let _ = connection.close(200, "lease lost".into()).await;
                }
                if let Ok(position) = self.checkpoint().await {
                    self.status.send_if_modified(|status| {
                        let changed = status.position != position;
                        status.position = position;
                        changed
                    });
                }
                wait(&mut shutdown, &mut appended, POLL_INTERVAL).await;
                continue;
            }
            self.status.send_if_modified(|status| {
                let changed = !status.runs_here;
                status.runs_here = true;
                changed
            });
            match self.round(&mut channel).await {
                Ok(0) => {
                    retry = RETRY_FIRST;
                    wait(&mut shutdown, &mut appended, POLL_INTERVAL).await;
                }
                Ok(_) => retry = RETRY_FIRST,
                Err(err) => {
                    let message = redact_in(&err.to_string(), &self.url);
                    tracing::warn!(consumer = CONSUMER, error = %message, retry_ms = retry.as_millis() as u64, "integration events not published; retrying");
                    if let Some((connection, _)) = channel.take() {
                        let _ = connection.close(200, "reconnecting".into()).await;
                    }
                    self.status.send_modify(|status| {
                        status.failure = Some((status.position + 1, message));
                    });
                    wait(&mut shutdown, &mut appended, retry).await;
                    retry = (retry * 2).min(RETRY_MAX);
                }
            }
        }
        if let Some((connection, _)) = channel.take() {
            let _ = connection.close(200, "shutting down".into()).await;
        }
    }

    /// Publishes one batch after the checkpoint and moves the checkpoint past it once the broker
    /// confirmed it. Returns how many domain events the checkpoint moved over.
    async fn round(
        &self,
        channel: &mut Option<(Connection, Channel)>,
    ) -> Result<usize, RelayError> {
        let from = self.checkpoint().await?;
        let batch = self.log.read_after(from, BATCH_EVENTS).await?;
        let Some(last) = batch.last().map(|event| event.position) else {
            self.status.send_if_modified(|status| {
                let changed = status.position != from || status.failure.is_some();
                status.position = from;
                status.failure = None;
                changed
            });
            return Ok(0);
        };
        let mut messages = Vec::new();
        for event in &batch {
            if let Some(message) = integration::map(&self.log, event).await? {
                messages.push(message);
            }
        }
        if !messages.is_empty() {
            if channel.is_none() {
                *channel = Some(connect(&self.url).await?);
            }
            let (_, open) = channel.as_ref().expect("connected above");
            // A dead connection can leave a publish or a confirmation pending forever: bounded.
            tokio::time::timeout(CONFIRM_TIMEOUT, publish(open, &messages))
                .await
                .map_err(|_| RelayError::Broker("no confirmation in time".into()))??;
        }
        // Guarded: only from the position this batch was read after.
        let moved = sqlx::query(
            "UPDATE log_checkpoints SET position = $1, updated_at = $2
              WHERE consumer = $3 AND position = $4",
        )
        .bind(last)
        .bind(now_text())
        .bind(CONSUMER)
        .bind(from)
        .execute(self.db.pool())
        .await?;
        let position = if moved.rows_affected() == 1 {
            last
        } else {
            self.checkpoint().await?
        };
        self.status.send_modify(|status| {
            status.position = position;
            status.failure = None;
        });
        Ok(batch.len())
    }

    async fn checkpoint(&self) -> Result<i64, RelayError> {
        Ok(
            sqlx::query_scalar("SELECT position FROM log_checkpoints WHERE consumer = $1")
                .bind(CONSUMER)
                .fetch_one(self.db.pool())
                .await?,
        )
    }
}

/// Opens a connection and a confirming channel, and declares the durable topic exchange.
async fn connect(url: &str) -> Result<(Connection, Channel), RelayError> {
    let broker = |err: lapin::Error| RelayError::Broker(err.to_string());
    let properties = ConnectionProperties::default()
        .with_connection_name(format!("autosalon-relay-{}", std::process::id()).into());
    let connection = tokio::time::timeout(CONNECT_TIMEOUT, Connection::connect(url, properties))
        .await
        .map_err(|_| RelayError::Broker("connecting timed out".into()))?
        .map_err(broker)?;
    let channel = connection.create_channel().await.map_err(broker)?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(broker)?;
    channel
        .exchange_declare(
            EXCHANGE.into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(broker)?;
    tracing::info!(exchange = EXCHANGE, "publishing integration events");
    Ok((connection, channel))
}

/// Publishes every message, persistent, then waits until the broker has confirmed each one.
async fn publish(channel: &Channel, messages: &[IntegrationEvent]) -> Result<(), RelayError> {
    let broker = |err: lapin::Error| RelayError::Broker(err.to_string());
    let mut confirms = Vec::with_capacity(messages.len());
    for message in messages {
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into())
            .with_message_id(message.message_id().into())
            .with_type(
                message.envelope["event_type"]
                    .as_str()
                    .unwrap_or_default()
                    .into(),
            )
            .with_app_id("autosalon".into());
        let confirm = channel
            .basic_publish(
                EXCHANGE.into(),
                message.routing_key.into(),
                BasicPublishOptions::default(),
                &message.body(),
                properties,
            )
            .await
            .map_err(broker)?;
        confirms.push((message.position, confirm));
    }
    for (position, confirm) in confirms {
        let confirmation = confirm.await.map_err(broker)?;
        if !confirmation.is_ack() {
            return Err(RelayError::Broker(format!(
                "the broker refused the message of position {position}"
            )));
        }
    }
    Ok(())
}

async fn wait(
    shutdown: &mut watch::Receiver<bool>,
    appended: &mut watch::Receiver<u64>,
    at_most: Duration,
) {
    tokio::select! {
        _ = shutdown.changed() => {}
        _ = appended.changed() => {}
        _ = tokio::time::sleep(at_most) => {}
    }
}

/// The broker URL as logs may show it.
pub fn redact(url: &str) -> String {
    eventstore::database::redact(url).replace("database URL", "broker URL")
}

/// `text` with the URL's password taken out wherever it appears.
fn redact_in(text: &str, url: &str) -> String {
    let password = url::Url::parse(url)
        .ok()
        .and_then(|parsed| parsed.password().map(str::to_owned))
        .filter(|password| !password.is_empty());
    match password {
        Some(password) => text.replace(url, &redact(url)).replace(&password, "***"),
        None => text.to_owned(),
    }
}

fn now_text() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::{redact, redact_in};

    #[test]
    fn the_broker_password_never_reaches_a_log_line() {
        let url = "amqp://relay:s3cr%21t@127.0.0.1:5672/%2f";
        assert!(!redact(url).contains("s3cr"));
        let message = format!("could not connect to {url}: refused (password s3cr%21t)");
        let redacted = redact_in(&message, url);
        assert!(!redacted.contains("s3cr"), "{redacted}");
        assert!(redacted.contains("refused"));
    }
}
