//! PartnerKey: an API key with which one partner insurer reads its own policies, claims and
//! commission settlement (seed 000: insurers reach the API directly).
//!
//! Invariants: a key is issued once, for exactly one insurer, and a revoked key stays revoked.
//! The key itself never reaches this crate or the log: the command layer generates it, shows it
//! once, and records only its SHA-256 digest (the key is 256 random bits, so a fast digest is
//! enough: there is nothing to guess).

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum PartnerKeyCommand {
    Issue {
        /// The insurer's id, e.g. `SEVER`.
        insurer: String,
        /// What the key is for, e.g. "SEVER settlement robot".
        label: String,
        /// Lower-case hex SHA-256 of the key.
        key_digest: String,
        issued_at: DateTime<Utc>,
    },
    Revoke {
        reason: String,
        at: DateTime<Utc>,
    },
}

/// What happened to a partner key. The payloads are a public contract: see [`crate::upcasters`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum PartnerKeyEvent {
    PartnerKeyIssued {
        insurer: String,
        label: String,
        key_digest: String,
        issued_at: DateTime<Utc>,
    },
    PartnerKeyRevoked {
        reason: String,
        revoked_at: DateTime<Utc>,
    },
}

impl DomainEvent for PartnerKeyEvent {
    fn event_type(&self) -> String {
        match self {
            PartnerKeyEvent::PartnerKeyIssued { .. } => "PartnerKeyIssued",
            PartnerKeyEvent::PartnerKeyRevoked { .. } => "PartnerKeyRevoked",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

/// Why a partner-key command was refused. Nothing was emitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PartnerKeyError {
    /// No key with this id. The caller reports "not found".
    #[error("partner key not found")]
    NotFound,
    /// The id is taken (a fresh key's id is random, so this is a retry).
    #[error("this partner key was already issued")]
    AlreadyIssued,
    /// The key is already revoked; nothing to do.
    #[error("the partner key is already revoked")]
    AlreadyRevoked,
    /// A required text is blank.
    #[error("{field} must not be empty")]
    EmptyField { field: &'static str },
}

impl PartnerKeyError {
    /// A stable, machine-readable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            PartnerKeyError::NotFound => "NOT_FOUND",
            PartnerKeyError::AlreadyIssued => "CONFLICT",
            PartnerKeyError::AlreadyRevoked => "PARTNER_KEY_REVOKED",
            PartnerKeyError::EmptyField { .. } => "VALIDATION",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PartnerKey {
    issued: Option<Issued>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Issued {
    insurer: String,
    key_digest: String,
    revoked: bool,
}

impl PartnerKey {
    /// The insurer a live (issued, not revoked) key reads for.
    pub fn live_insurer(&self) -> Option<&str> {
        self.issued
            .as_ref()
            .filter(|issued| !issued.revoked)
            .map(|issued| issued.insurer.as_str())
    }

    /// The digest recorded at issue.
    pub fn key_digest(&self) -> Option<&str> {
        self.issued
            .as_ref()
            .map(|issued| issued.key_digest.as_str())
    }

    fn decide(&self, command: PartnerKeyCommand) -> Result<PartnerKeyEvent, PartnerKeyError> {
        match (command, &self.issued) {
            (PartnerKeyCommand::Issue { .. }, Some(_)) => Err(PartnerKeyError::AlreadyIssued),
            (
                PartnerKeyCommand::Issue {
                    insurer,
                    label,
                    key_digest,
                    issued_at,
                },
                None,
            ) => Ok(PartnerKeyEvent::PartnerKeyIssued {
                insurer: required(&insurer, "insurer")?,
                label: required(&label, "label")?,
                key_digest: required(&key_digest, "key_digest")?,
                issued_at,
            }),
            (PartnerKeyCommand::Revoke { .. }, None) => Err(PartnerKeyError::NotFound),
            (PartnerKeyCommand::Revoke { .. }, Some(issued)) if issued.revoked => {
                Err(PartnerKeyError::AlreadyRevoked)
            }
            (PartnerKeyCommand::Revoke { reason, at }, Some(_)) => {
                Ok(PartnerKeyEvent::PartnerKeyRevoked {
                    reason: required(&reason, "reason")?,
                    revoked_at: at,
                })
            }
        }
    }
}

fn required(value: &str, field: &'static str) -> Result<String, PartnerKeyError> {
    let value = value.trim();
    if value.is_empty() {
        Err(PartnerKeyError::EmptyField { field })
    } else {
        Ok(value.to_owned())
    }
}

impl Aggregate for PartnerKey {
    const TYPE: &'static str = "PartnerKey";
    type Command = PartnerKeyCommand;
    type Event = PartnerKeyEvent;
    type Error = PartnerKeyError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let event = self.decide(command)?;
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            PartnerKeyEvent::PartnerKeyIssued {
                insurer,
                key_digest,
                ..
            } => {
                debug_assert!(self.issued.is_none(), "issued twice");
                self.issued = Some(Issued {
                    insurer,
                    key_digest,
                    revoked: false,
                });
            }
            PartnerKeyEvent::PartnerKeyRevoked { .. } => {
                debug_assert!(self.issued.is_some(), "revoked before issue");
                if let Some(issued) = self.issued.as_mut() {
                    issued.revoked = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;

    use super::*;

    fn at() -> DateTime<Utc> {
        "2026-11-02T09:00:00Z".parse().unwrap()
    }

    fn issued() -> PartnerKeyEvent {
        PartnerKeyEvent::PartnerKeyIssued {
            insurer: "SEVER".into(),
            label: "settlement robot".into(),
            key_digest: "ab".repeat(32),
            issued_at: at(),
        }
    }

    #[test]
    fn issuing_a_key_records_its_insurer_and_digest_only() {
        TestFramework::<PartnerKey>::with(())
            .given_no_previous_events()
            .when(PartnerKeyCommand::Issue {
                insurer: " SEVER ".into(),
                label: "settlement robot".into(),
                key_digest: "ab".repeat(32),
                issued_at: at(),
            })
            .then_expect_events(vec![issued()]);
    }

    #[test]
    fn a_revoked_key_reads_for_nobody_and_cannot_be_revoked_again() {
        let revoked = PartnerKeyEvent::PartnerKeyRevoked {
            reason: "rotated".into(),
            revoked_at: at(),
        };
        let mut key = PartnerKey::default();
        key.apply(issued());
        assert_eq!(key.live_insurer(), Some("SEVER"));
        key.apply(revoked.clone());
        assert_eq!(key.live_insurer(), None);
        TestFramework::<PartnerKey>::with(())
            .given(vec![issued(), revoked])
            .when(PartnerKeyCommand::Revoke {
                reason: "again".into(),
                at: at(),
            })
            .then_expect_error(PartnerKeyError::AlreadyRevoked);
    }

    #[test]
    fn revoking_an_unknown_key_is_not_found() {
        TestFramework::<PartnerKey>::with(())
            .given_no_previous_events()
            .when(PartnerKeyCommand::Revoke {
                reason: "x".into(),
                at: at(),
            })
            .then_expect_error(PartnerKeyError::NotFound);
    }
}
