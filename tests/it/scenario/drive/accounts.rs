//! Accounts and partner keys: created, granted and revoked roles, passwords set and changed, locked
//! out after wrong passwords, disabled; partner insurers' API keys issued and revoked. None of this
//! moves money; it is here so that the accounts' events and their read model are played, rebuilt
//! and crash-tested with everything else.

use serde_json::json;

use super::super::tariffs::INSURERS;
use super::timeline::*;
use super::*;

/// What the scenario knows of a story's account.
#[derive(Clone, Debug)]
pub(super) struct AccountBook {
    id: String,
    email: String,
    password: String,
    first_role: &'static str,
}

const LOGIN: &str =
    "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }";

impl Run<'_> {
    fn account(&self, k: usize) -> AccountBook {
        self.states[k]
            .account
            .clone()
            .expect("the account was created")
    }

    pub(super) async fn accounts(&mut self, step: &Step, action: AccountStep) {
        let k = step.story;
        match action {
            AccountStep::CreateAccount(plan) => {
                let client = plan.client && customer_story(self.stories, k) == k;
                let email = format!("holder-{k}@autosalon.test");
                let password = format!("first password of story {k}");
                let first_role = if client {
                    "CLIENT"
                } else {
                    STAFF_ROLES[plan.role]
                };
                let input = json!({
                    "email": email,
                    "displayName": format!("Holder {k}"),
                    "roles": [first_role],
                    "customerId": client.then(|| self.customer_of(k)),
                    "password": password,
                });
                let data = self
                    .ok(
                        step,
                        "mutation($input: CreateAccountInput!) {
                           createAccount(input: $input) { position account { id } } }",
                        json!({ "input": input }),
                    )
                    .await;
                let id = data["createAccount"]["account"]["id"]
                    .as_str()
                    .unwrap_or_else(|| panic!("no account id: {data:#}"))
                    .to_string();
                self.states[k].account = Some(AccountBook {
                    id,
                    email,
                    password,
                    first_role,
                });
            }
            AccountStep::GrantRole(role) | AccountStep::GrantStaffRoleToClient(role) => {
                let account = self.account(k);
                let query = mutation("grantRole", &[("accountId", "UUID!"), ("role", "Role!")]);
                let variables = json!({ "accountId": account.id, "role": STAFF_ROLES[role] });
                if matches!(action, AccountStep::GrantRole(_)) {
                    self.ok(step, &query, variables).await;
                } else {
                    self.refused(step, &query, variables, "ROLES_DO_NOT_MIX")
                        .await;
                }
            }
            AccountStep::RevokeFirstRole => {
                let account = self.account(k);
                self.ok(
                    step,
                    &mutation("revokeRole", &[("accountId", "UUID!"), ("role", "Role!")]),
                    json!({ "accountId": account.id, "role": account.first_role }),
                )
                .await;
            }
            AccountStep::ResetPassword => {
                let password = format!("password set by an admin for {k}");
                let account = self.account(k);
                self.ok(
                    step,
                    &mutation(
                        "setAccountPassword",
                        &[("accountId", "UUID!"), ("password", "String!")],
                    ),
                    json!({ "accountId": account.id, "password": password }),
                )
                .await;
                self.states[k].account.as_mut().unwrap().password = password;
            }
            AccountStep::ChangeOwnPassword => {
                let account = self.account(k);
                let signed_in = self
                    .target
                    .post(LOGIN, &json!({ "e": account.email, "p": account.password }))
                    .await;
                let token = signed_in["data"]["login"]["accessToken"]
                    .as_str()
                    .unwrap_or_else(|| panic!("the holder of story {k} signs in: {signed_in:#}"))
                    .to_string();
                let password = format!("password the holder of {k} chose");
                let query = mutation(
                    "changePassword",
                    &[("currentPassword", "String!"), ("newPassword", "String!")],
                );
                let variables =
                    json!({ "currentPassword": account.password, "newPassword": password });
                let answer = self.target.post_as(Some(&token), &query, &variables).await;
                assert!(
                    answer.get("errors").is_none(),
                    "step {step:?}: the holder changes the password: {answer:#}"
                );
                self.accepted += 1;
                self.states[k].account.as_mut().unwrap().password = password;
            }
            AccountStep::LockOut => {
                let account = self.account(k);
                let before = self.event_count().await;
                let wrong = json!({ "e": account.email, "p": "not the password at all" });
                let mut attempts = 0;
                loop {
                    attempts += 1;
                    let answer = self.target.post(LOGIN, &wrong).await;
                    let codes = crate::helpers::error_codes(&answer);
                    if codes == ["ACCOUNT_LOCKED"] {
                        break;
                    }
                    assert_eq!(codes, ["INVALID_CREDENTIALS"], "step {step:?}: {answer:#}");
                    assert!(
                        attempts <= 20,
                        "step {step:?}: never locked out after {attempts} wrong passwords"
                    );
                }
                assert_eq!(
                    self.event_count().await,
                    before + 1,
                    "step {step:?}: the lock-out is one event"
                );
                // Locked: even the right password is refused now.
                let answer = self
                    .target
                    .post(LOGIN, &json!({ "e": account.email, "p": account.password }))
                    .await;
                assert_eq!(
                    crate::helpers::error_codes(&answer),
                    ["ACCOUNT_LOCKED"],
                    "step {step:?}: {answer:#}"
                );
                self.accepted += 1;
            }
            AccountStep::DisableAccount => {
                let account = self.account(k);
                self.ok(
                    step,
                    &mutation(
                        "disableAccount",
                        &[("accountId", "UUID!"), ("reason", "String!")],
                    ),
                    json!({ "accountId": account.id, "reason": "left the company" }),
                )
                .await;
            }
            AccountStep::IssuePartnerKey(insurer) => {
                let data = self
                    .ok(
                        step,
                        "mutation($insurer: String!, $label: String!) {
                           issuePartnerApiKey(insurer: $insurer, label: $label) {
                             position key partnerApiKey { id } } }",
                        json!({ "insurer": INSURERS[insurer].id, "label": format!("story {k}") }),
                    )
                    .await;
                let answer = &data["issuePartnerApiKey"];
                assert!(
                    answer["key"].as_str().is_some_and(|key| !key.is_empty()),
                    "step {step:?}: the key is shown once: {data:#}"
                );
                self.states[k].partner_key = Some(
                    answer["partnerApiKey"]["id"]
                        .as_str()
                        .unwrap_or_else(|| panic!("no key id: {data:#}"))
                        .to_string(),
                );
            }
            AccountStep::RevokePartnerKey => {
                let id = self.states[k].partner_key.clone().expect("a key issued");
                self.ok(
                    step,
                    &mutation(
                        "revokePartnerApiKey",
                        &[("id", "UUID!"), ("reason", "String!")],
                    ),
                    json!({ "id": id, "reason": "rotated" }),
                )
                .await;
            }
        }
    }
}
