//! User: an account that signs in to the ledger, and the powers it holds.
//!
//! Accounts are part of the ledger: who was given which role, when and by whom, is itself in the
//! audited log (the actor of each event is in its metadata).
//!
//! Invariants (`handle` enforces them, `apply` re-asserts them with `debug_assert!`):
//! - an account is created once; its id is [`account_id`] of its email, so one email is one
//!   account, even when two requests race to create it (they append to one stream);
//! - an account is either a customer's (exactly the role `client`, linked to one customer) or a
//!   member of staff (staff roles only, no customer): the two never mix, so a customer can never be
//!   handed staff powers and a clerk's actions are never scoped to one customer by mistake;
//! - a disabled account takes no further changes (it is kept for the audit trail).
//!
//! The password itself never reaches this crate: commands carry its argon2id hash (a PHC string),
//! computed by the command layer, which owns randomness (the salt).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::contact::Email;

/// The namespace of [`account_id`].
const ACCOUNT_NAMESPACE: Uuid = Uuid::from_u128(0x7c1e_52a4_90b3_4f6d_8e21_5d0c_a3f4_1b97);

/// The id of the account signing in with `email`: UUIDv5 of the address in lower case (addresses
/// differing only in case are one account).
pub fn account_id(email: &Email) -> Uuid {
    Uuid::new_v5(&ACCOUNT_NAMESPACE, email.as_str().to_lowercase().as_bytes())
}

/// What an account may do (seed 004 §1.1's audiences; docs/security.md says which operation each
/// role may run). Partners are not accounts: they hold API keys ([`crate::partner_key`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    /// A customer, acting on their own records only.
    Client,
    /// Sales managers: stock, customers, orders.
    Sales,
    /// Credit and cashier desk: payments, loans, the ledger.
    Finance,
    /// Insurance agents: quotes, policies, claims.
    Insurance,
    /// Workshop coordinators: bookings.
    Service,
    /// Runs the dealership and its accounts.
    Admin,
    /// Reads everything, the event log included; changes nothing.
    Auditor,
    /// Reports, the ledger and read models, with customers' personal data masked.
    Analyst,
}

impl Role {
    pub const ALL: [Role; 8] = [
        Role::Client,
        Role::Sales,
        Role::Finance,
        Role::Insurance,
        Role::Service,
        Role::Admin,
        Role::Auditor,
        Role::Analyst,
    ];

    /// The lower-case name used in tokens, metadata and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Sales => "sales",
            Role::Finance => "finance",
            Role::Insurance => "insurance",
            Role::Service => "service",
            Role::Admin => "admin",
            Role::Auditor => "auditor",
            Role::Analyst => "analyst",
        }
    }

    /// The role named `name` (case-insensitive), if there is one.
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str().eq_ignore_ascii_case(name.trim()))
    }

    pub fn is_staff(self) -> bool {
        self != Role::Client
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum UserCommand {
    Create {
        email: Email,
        display_name: String,
        roles: BTreeSet<Role>,
        /// The customer a `client` account belongs to; `None` for staff.
        customer_id: Option<Uuid>,
        /// argon2id PHC string.
        password_hash: String,
        created_at: DateTime<Utc>,
    },
    GrantRole {
        role: Role,
        at: DateTime<Utc>,
    },
    RevokeRole {
        role: Role,
        at: DateTime<Utc>,
    },
    ChangePassword {
        password_hash: String,
        /// True when the account holder changed it (knowing the old one), false when an admin set it.
        by_holder: bool,
        at: DateTime<Utc>,
    },
    Disable {
        reason: String,
        at: DateTime<Utc>,
    },
    /// Too many failed sign-ins: refuse sign-ins until `until`.
    RecordLockOut {
        until: DateTime<Utc>,
        failed_attempts: u32,
        at: DateTime<Utc>,
    },
}

/// What happened to an account. The payloads are a public contract: see [`crate::upcasters`].
/// `password_hash` fields are credentials: the audit queries show them redacted.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub enum UserEvent {
    UserCreated {
        email: Email,
        display_name: String,
        roles: BTreeSet<Role>,
        customer_id: Option<Uuid>,
        password_hash: String,
        created_at: DateTime<Utc>,
    },
    UserRoleGranted {
        role: Role,
        granted_at: DateTime<Utc>,
    },
    UserRoleRevoked {
        role: Role,
        revoked_at: DateTime<Utc>,
    },
    UserPasswordChanged {
        password_hash: String,
        by_holder: bool,
        changed_at: DateTime<Utc>,
    },
    UserDisabled {
        reason: String,
        disabled_at: DateTime<Utc>,
    },
    UserLockedOut {
        until: DateTime<Utc>,
        failed_attempts: u32,
        locked_at: DateTime<Utc>,
    },
}

/// Never prints a password hash.
impl std::fmt::Debug for UserEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UserEvent::UserCreated {
                email,
                display_name,
                roles,
                customer_id,
                created_at,
                ..
            } => f
                .debug_struct("UserCreated")
                .field("email", email)
                .field("display_name", display_name)
                .field("roles", roles)
                .field("customer_id", customer_id)
                .field("created_at", created_at)
                .finish_non_exhaustive(),
            UserEvent::UserPasswordChanged {
                by_holder,
                changed_at,
                ..
            } => f
                .debug_struct("UserPasswordChanged")
                .field("by_holder", by_holder)
                .field("changed_at", changed_at)
                .finish_non_exhaustive(),
            UserEvent::UserRoleGranted { role, granted_at } => f
                .debug_struct("UserRoleGranted")
                .field("role", role)
                .field("granted_at", granted_at)
                .finish(),
            UserEvent::UserRoleRevoked { role, revoked_at } => f
                .debug_struct("UserRoleRevoked")
                .field("role", role)
                .field("revoked_at", revoked_at)
                .finish(),
            UserEvent::UserDisabled {
                reason,
                disabled_at,
            } => f
                .debug_struct("UserDisabled")
                .field("reason", reason)
                .field("disabled_at", disabled_at)
                .finish(),
            UserEvent::UserLockedOut {
                until,
                failed_attempts,
                locked_at,
            } => f
                .debug_struct("UserLockedOut")
                .field("until", until)
                .field("failed_attempts", failed_attempts)
                .field("locked_at", locked_at)
                .finish(),
        }
    }
}

impl DomainEvent for UserEvent {
    fn event_type(&self) -> String {
        let name = match self {
            UserEvent::UserCreated { .. } => "UserCreated",
            UserEvent::UserRoleGranted { .. } => "UserRoleGranted",
            UserEvent::UserRoleRevoked { .. } => "UserRoleRevoked",
            UserEvent::UserPasswordChanged { .. } => "UserPasswordChanged",
            UserEvent::UserDisabled { .. } => "UserDisabled",
            UserEvent::UserLockedOut { .. } => "UserLockedOut",
        };
        name.to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

/// Why an account command was refused. Nothing was emitted; the account is unchanged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UserError {
    /// No account with this id. The caller reports "not found".
    #[error("account not found")]
    NotFound,
    /// An account with this email exists. The caller picks another email or uses the account.
    #[error("an account with this email already exists")]
    AlreadyExists,
    /// The account is disabled and takes no further changes.
    #[error("the account is disabled")]
    Disabled,
    /// An account needs at least one role to be created.
    #[error("an account needs at least one role")]
    NoRoles,
    /// `client` goes with a customer and nothing else; staff roles go without one.
    #[error("{reason}")]
    RolesDoNotMix { reason: &'static str },
    /// The account already holds the role; nothing to grant.
    #[error("the account already holds the role {role}")]
    RoleAlreadyHeld { role: &'static str },
    /// The account does not hold the role; nothing to revoke.
    #[error("the account does not hold the role {role}")]
    RoleNotHeld { role: &'static str },
    /// A required text is blank. The caller asks for it.
    #[error("{field} must not be empty")]
    EmptyField { field: &'static str },
}

impl UserError {
    /// A stable, machine-readable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            UserError::NotFound => "NOT_FOUND",
            UserError::AlreadyExists => "ACCOUNT_ALREADY_EXISTS",
            UserError::Disabled => "ACCOUNT_DISABLED",
            UserError::RolesDoNotMix { .. } => "ROLES_DO_NOT_MIX",
            UserError::RoleAlreadyHeld { .. } => "ROLE_ALREADY_GRANTED",
            UserError::RoleNotHeld { .. } => "ROLE_NOT_GRANTED",
            UserError::NoRoles | UserError::EmptyField { .. } => "VALIDATION",
        }
    }
}

/// The state sign-in and role changes need.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// `None` until created.
    account: Option<Account>,
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
struct Account {
    email: Email,
    display_name: String,
    roles: BTreeSet<Role>,
    customer_id: Option<Uuid>,
    password_hash: String,
    disabled: bool,
    locked_until: Option<DateTime<Utc>>,
}

/// Never prints the password hash.
impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.account {
            None => f.write_str("User(not created)"),
            Some(account) => f
                .debug_struct("User")
                .field("email", &account.email)
                .field("roles", &account.roles)
                .field("customer_id", &account.customer_id)
                .field("disabled", &account.disabled)
                .field("locked_until", &account.locked_until)
                .finish_non_exhaustive(),
        }
    }
}

impl User {
    pub fn exists(&self) -> bool {
        self.account.is_some()
    }

    pub fn email(&self) -> Option<&Email> {
        self.account.as_ref().map(|a| &a.email)
    }

    pub fn display_name(&self) -> Option<&str> {
        self.account.as_ref().map(|a| a.display_name.as_str())
    }

    /// The roles held now (empty before creation).
    pub fn roles(&self) -> BTreeSet<Role> {
        self.account
            .as_ref()
            .map(|a| a.roles.clone())
            .unwrap_or_default()
    }

    pub fn customer_id(&self) -> Option<Uuid> {
        self.account.as_ref().and_then(|a| a.customer_id)
    }

    /// The argon2id PHC string to verify a password against.
    pub fn password_hash(&self) -> Option<&str> {
        self.account.as_ref().map(|a| a.password_hash.as_str())
    }

    pub fn is_disabled(&self) -> bool {
        self.account.as_ref().is_some_and(|a| a.disabled)
    }

    /// Whether sign-ins are refused at `now` after a lock-out.
    pub fn is_locked_at(&self, now: DateTime<Utc>) -> bool {
        self.locked_until().is_some_and(|until| now < until)
    }

    pub fn locked_until(&self) -> Option<DateTime<Utc>> {
        self.account.as_ref().and_then(|a| a.locked_until)
    }

    fn decide(&self, command: UserCommand) -> Result<UserEvent, UserError> {
        let Some(account) = &self.account else {
            return match command {
                UserCommand::Create {
                    email,
                    display_name,
                    roles,
                    customer_id,
                    password_hash,
                    created_at,
                } => {
                    let display_name = required(&display_name, "display_name")?;
                    if password_hash.is_empty() {
                        return Err(UserError::EmptyField { field: "password" });
                    }
                    if roles.is_empty() {
                        return Err(UserError::NoRoles);
                    }
                    check_mix(&roles, customer_id)?;
                    Ok(UserEvent::UserCreated {
                        email,
                        display_name,
                        roles,
                        customer_id,
                        password_hash,
                        created_at,
                    })
                }
                _ => Err(UserError::NotFound),
            };
        };
        match command {
            UserCommand::Create { .. } => Err(UserError::AlreadyExists),
            // A lock-out is recorded whatever else holds: it is a fact about sign-in attempts.
            UserCommand::RecordLockOut {
                until,
                failed_attempts,
                at,
            } => Ok(UserEvent::UserLockedOut {
                until,
                failed_attempts,
                locked_at: at,
            }),
            _ if account.disabled => Err(UserError::Disabled),
            UserCommand::GrantRole { role, at } => {
                if account.roles.contains(&role) {
                    return Err(UserError::RoleAlreadyHeld {
                        role: role.as_str(),
                    });
                }
                let mut roles = account.roles.clone();
                roles.insert(role);
                check_mix(&roles, account.customer_id)?;
                Ok(UserEvent::UserRoleGranted {
                    role,
                    granted_at: at,
                })
            }
            UserCommand::RevokeRole { role, at } => {
                if !account.roles.contains(&role) {
                    return Err(UserError::RoleNotHeld {
                        role: role.as_str(),
                    });
                }
                Ok(UserEvent::UserRoleRevoked {
                    role,
                    revoked_at: at,
                })
            }
            UserCommand::ChangePassword {
                password_hash,
                by_holder,
                at,
            } => {
                if password_hash.is_empty() {
                    return Err(UserError::EmptyField { field: "password" });
                }
                Ok(UserEvent::UserPasswordChanged {
                    password_hash,
                    by_holder,
                    changed_at: at,
                })
            }
            UserCommand::Disable { reason, at } => Ok(UserEvent::UserDisabled {
                reason: required(&reason, "reason")?,
                disabled_at: at,
            }),
        }
    }
}

/// `value` trimmed, or [`UserError::EmptyField`] naming `field` when nothing is left.
fn required(value: &str, field: &'static str) -> Result<String, UserError> {
    let value = value.trim();
    if value.is_empty() {
        Err(UserError::EmptyField { field })
    } else {
        Ok(value.to_owned())
    }
}

/// `client` only with a customer and alone; staff roles only without one.
fn check_mix(roles: &BTreeSet<Role>, customer_id: Option<Uuid>) -> Result<(), UserError> {
    let client = roles.contains(&Role::Client);
    let staff = roles.iter().any(|role| role.is_staff());
    match (client, staff, customer_id) {
        (true, true, _) => Err(UserError::RolesDoNotMix {
            reason: "a customer's account holds the role client and no staff role",
        }),
        (true, false, None) => Err(UserError::RolesDoNotMix {
            reason: "the role client needs the customer the account belongs to",
        }),
        (false, _, Some(_)) => Err(UserError::RolesDoNotMix {
            reason: "a staff account is not linked to a customer",
        }),
        _ => Ok(()),
    }
}

impl Aggregate for User {
    const TYPE: &'static str = "User";
    type Command = UserCommand;
    type Event = UserEvent;
    type Error = UserError;
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

    /// Folds an event in. Never fails: stored history is the truth.
    fn apply(&mut self, event: Self::Event) {
        if let UserEvent::UserCreated {
            email,
            display_name,
            roles,
            customer_id,
            password_hash,
            ..
        } = event
        {
            debug_assert!(self.account.is_none(), "created twice");
            self.account = Some(Account {
                email,
                display_name,
                roles,
                customer_id,
                password_hash,
                disabled: false,
                locked_until: None,
            });
            return;
        }
        debug_assert!(self.account.is_some(), "changed before creation");
        let Some(account) = self.account.as_mut() else {
            return;
        };
        match event {
            UserEvent::UserCreated { .. } => {}
            UserEvent::UserRoleGranted { role, .. } => {
                account.roles.insert(role);
            }
            UserEvent::UserRoleRevoked { role, .. } => {
                account.roles.remove(&role);
            }
            UserEvent::UserPasswordChanged { password_hash, .. } => {
                account.password_hash = password_hash;
            }
            UserEvent::UserDisabled { .. } => account.disabled = true,
            UserEvent::UserLockedOut { until, .. } => account.locked_until = Some(until),
        }
    }
}

#[cfg(test)]
mod tests;
