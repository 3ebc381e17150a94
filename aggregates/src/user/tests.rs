use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use cqrs_es::test::{AggregateTestExecutor, TestFramework};
use proptest::prelude::*;
use uuid::Uuid;

use super::*;
use crate::contact::Email;
use crate::test_support::execute;

fn at() -> DateTime<Utc> {
    "2026-11-02T09:00:00Z".parse().unwrap()
}

fn email() -> Email {
    Email::parse("Olga.Sales@Example.ru").unwrap()
}

fn roles(list: &[Role]) -> BTreeSet<Role> {
    list.iter().copied().collect()
}

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

fn create(list: &[Role], customer_id: Option<Uuid>) -> UserCommand {
    UserCommand::Create {
        email: email(),
        display_name: " Olga ".into(),
        roles: roles(list),
        customer_id,
        password_hash: HASH.into(),
        created_at: at(),
    }
}

fn created(list: &[Role], customer_id: Option<Uuid>) -> UserEvent {
    UserEvent::UserCreated {
        email: email(),
        display_name: "Olga".into(),
        roles: roles(list),
        customer_id,
        password_hash: HASH.into(),
        created_at: at(),
    }
}

fn given(events: Vec<UserEvent>) -> AggregateTestExecutor<User> {
    TestFramework::<User>::with(()).given(events)
}

#[test]
fn the_account_id_ignores_the_case_of_the_email() {
    let lower = Email::parse("olga.sales@example.ru").unwrap();
    assert_eq!(account_id(&email()), account_id(&lower));
    let other = Email::parse("olga.service@example.ru").unwrap();
    assert_ne!(account_id(&email()), account_id(&other));
}

#[test]
fn creating_a_staff_account_records_its_roles_and_hash() {
    given(vec![])
        .when(create(&[Role::Sales, Role::Finance], None))
        .then_expect_events(vec![created(&[Role::Sales, Role::Finance], None)]);
}

#[test]
fn an_email_gets_one_account() {
    given(vec![created(&[Role::Sales], None)])
        .when(create(&[Role::Admin], None))
        .then_expect_error(UserError::AlreadyExists);
}

#[test]
fn a_client_account_needs_its_customer_and_no_staff_role() {
    let customer = Some(Uuid::from_u128(7));
    given(vec![])
        .when(create(&[Role::Client], customer))
        .then_expect_events(vec![created(&[Role::Client], customer)]);
    assert!(matches!(
        execute(&mut User::default(), create(&[Role::Client], None), &()),
        Err(UserError::RolesDoNotMix { .. })
    ));
    assert!(matches!(
        execute(
            &mut User::default(),
            create(&[Role::Client, Role::Sales], customer),
            &()
        ),
        Err(UserError::RolesDoNotMix { .. })
    ));
    assert!(matches!(
        execute(&mut User::default(), create(&[Role::Sales], customer), &()),
        Err(UserError::RolesDoNotMix { .. })
    ));
}

#[test]
fn an_account_without_roles_is_refused() {
    given(vec![])
        .when(create(&[], None))
        .then_expect_error(UserError::NoRoles);
}

#[test]
fn a_customer_can_never_be_granted_a_staff_role() {
    given(vec![created(&[Role::Client], Some(Uuid::from_u128(7)))])
        .when(UserCommand::GrantRole {
            role: Role::Admin,
            at: at(),
        })
        .then_expect_error(UserError::RolesDoNotMix {
            reason: "a customer's account holds the role client and no staff role",
        });
}

#[test]
fn granting_and_revoking_roles_are_recorded_once() {
    given(vec![created(&[Role::Sales], None)])
        .when(UserCommand::GrantRole {
            role: Role::Finance,
            at: at(),
        })
        .then_expect_events(vec![UserEvent::UserRoleGranted {
            role: Role::Finance,
            granted_at: at(),
        }]);
    given(vec![created(&[Role::Sales], None)])
        .when(UserCommand::GrantRole {
            role: Role::Sales,
            at: at(),
        })
        .then_expect_error(UserError::RoleAlreadyHeld { role: "sales" });
    given(vec![created(&[Role::Sales], None)])
        .when(UserCommand::RevokeRole {
            role: Role::Admin,
            at: at(),
        })
        .then_expect_error(UserError::RoleNotHeld { role: "admin" });
}

#[test]
fn a_disabled_account_takes_no_changes_but_lock_outs_are_still_recorded() {
    let disabled = UserEvent::UserDisabled {
        reason: "left the company".into(),
        disabled_at: at(),
    };
    given(vec![created(&[Role::Sales], None), disabled.clone()])
        .when(UserCommand::GrantRole {
            role: Role::Finance,
            at: at(),
        })
        .then_expect_error(UserError::Disabled);
    let until = at() + Duration::minutes(15);
    given(vec![created(&[Role::Sales], None), disabled])
        .when(UserCommand::RecordLockOut {
            until,
            failed_attempts: 6,
            at: at(),
        })
        .then_expect_events(vec![UserEvent::UserLockedOut {
            until,
            failed_attempts: 6,
            locked_at: at(),
        }]);
}

#[test]
fn a_lock_out_refuses_sign_ins_until_it_ends() {
    let mut user = User::default();
    user.apply(created(&[Role::Sales], None));
    let until = at() + Duration::minutes(15);
    user.apply(UserEvent::UserLockedOut {
        until,
        failed_attempts: 6,
        locked_at: at(),
    });
    assert!(user.is_locked_at(at()));
    assert!(user.is_locked_at(until - Duration::seconds(1)));
    assert!(!user.is_locked_at(until));
}

#[test]
fn commands_on_an_account_that_does_not_exist_are_not_found() {
    given(vec![])
        .when(UserCommand::Disable {
            reason: "x".into(),
            at: at(),
        })
        .then_expect_error(UserError::NotFound);
}

#[test]
fn debug_output_never_shows_a_password_hash() {
    let mut user = User::default();
    user.apply(created(&[Role::Sales], None));
    let changed = UserEvent::UserPasswordChanged {
        password_hash: HASH.into(),
        by_holder: true,
        changed_at: at(),
    };
    for text in [
        format!("{user:?}"),
        format!("{:?}", created(&[Role::Sales], None)),
        format!("{changed:?}"),
    ] {
        assert!(!text.contains("argon2"), "{text}");
    }
}

fn role() -> impl Strategy<Value = Role> {
    prop::sample::select(Role::ALL.to_vec())
}

fn command() -> impl Strategy<Value = UserCommand> {
    prop_oneof![
        role().prop_map(|role| UserCommand::GrantRole { role, at: at() }),
        role().prop_map(|role| UserCommand::RevokeRole { role, at: at() }),
        Just(UserCommand::Disable {
            reason: "gone".into(),
            at: at()
        }),
        Just(UserCommand::ChangePassword {
            password_hash: "$argon2id$new".into(),
            by_holder: false,
            at: at()
        }),
    ]
}

proptest! {
    /// Whatever is granted or revoked, a customer's account never holds a staff role and a staff
    /// account never holds `client`; replaying the events gives the same state.
    #[test]
    fn roles_never_mix_and_replay_gives_the_same_state(
        client in any::<bool>(),
        commands in prop::collection::vec(command(), 0..30),
    ) {
        let (start, customer) = if client {
            (vec![Role::Client], Some(Uuid::from_u128(9)))
        } else {
            (vec![Role::Sales], None)
        };
        let mut user = User::default();
        let mut history = execute(&mut user, create(&start, customer), &()).unwrap();
        for command in commands {
            if let Ok(events) = execute(&mut user, command, &()) {
                history.extend(events);
            }
            let roles = user.roles();
            if customer.is_some() {
                prop_assert!(!roles.iter().any(|r| r.is_staff()), "{:?}", roles);
            } else {
                prop_assert!(!roles.contains(&Role::Client), "{:?}", roles);
            }
        }
        let mut replayed = User::default();
        for event in history {
            replayed.apply(event);
        }
        prop_assert_eq!(replayed, user);
    }
}
