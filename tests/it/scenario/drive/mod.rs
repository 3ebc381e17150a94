//! Running a scenario against a server over GraphQL, in time order, keeping the shadow ledger.
//!
//! Every story's plan expands to steps at virtual times (a day and a minute after the scenario's
//! first day). The steps of all stories run merged by time, so stories interleave. With a
//! [`ScenarioClock`] the server's clock is set to each step's time, so loans fall due, policies
//! expire and booked slots begin; on the wall clock (a server run as its own process) the steps
//! that need time to pass are left out and everything happens today.
//!
//! Every mutation carries an idempotency key derived from its step, so a step can be sent again
//! after the server was killed and its first attempt answered from the log.

mod accounts;
mod insurance;
mod loans;
mod sales;
mod timeline;
mod workshop;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use uuid::Uuid;

use super::plan::*;
use super::shadow::*;
use super::tariffs::minor_of;
use insurance::PolicyBook;
use loans::LoanBook;
use timeline::{Action, Step, expand};
use workshop::BookingBook;

/// Midnight UTC of the scenario's first day.
pub fn first_day() -> DateTime<Utc> {
    "2030-01-07T00:00:00Z".parse().unwrap()
}

/// A clock the scenario sets to each step's time (for a server built in this process).
pub struct ScenarioClock(Mutex<DateTime<Utc>>);

impl ScenarioClock {
    pub fn new() -> Arc<Self> {
        Arc::new(Self(Mutex::new(first_day())))
    }

    fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap() = at;
    }
}

impl commands::clock::Clock for ScenarioClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// Whose clock the server reads.
#[derive(Clone)]
pub enum Time {
    Scenario(Arc<ScenarioClock>),
    Wall,
}

impl Time {
    fn now(&self) -> DateTime<Utc> {
        match self {
            Time::Scenario(clock) => commands::clock::Clock::now(clock.as_ref()),
            Time::Wall => Utc::now(),
        }
    }

    fn scenario(&self) -> bool {
        matches!(self, Time::Scenario(_))
    }
}

/// Where the GraphQL requests go.
pub struct Target {
    base: Arc<RwLock<String>>,
    http: reqwest::Client,
    /// Keep resending a request the server did not answer (it is being killed and restarted).
    patient: bool,
    /// Requests sent so far (the crash test kills the server after some of them).
    pub sent: AtomicUsize,
}

impl Target {
    pub fn of(app: &crate::helpers::TestApp) -> Self {
        Self {
            base: Arc::new(RwLock::new(app.url(""))),
            http: app.client.clone(),
            patient: false,
            sent: AtomicUsize::new(0),
        }
    }

    /// A server that may vanish: requests are resent to whatever `base` names until answered, with
    /// `http` (which carries the credentials).
    pub fn restartable(base: Arc<RwLock<String>>, http: reqwest::Client) -> Self {
        Self {
            base,
            http,
            patient: true,
            sent: AtomicUsize::new(0),
        }
    }

    pub async fn post(&self, query: &str, variables: &Value) -> Value {
        self.post_as(None, query, variables).await
    }

    /// [`Target::post`] with this access token instead of the client's own.
    pub async fn post_as(&self, token: Option<&str>, query: &str, variables: &Value) -> Value {
        let body = json!({ "query": query, "variables": variables });
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            self.sent.fetch_add(1, Ordering::Relaxed);
            let base = self.base.read().unwrap().clone();
            let mut request = self.http.post(format!("{base}/graphql"));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let sent = request
                .json(&body)
                .timeout(Duration::from_secs(60))
                .send()
                .await;
            let answered = match sent {
                Ok(response) => response.json::<Value>().await.map_err(|e| e.to_string()),
                Err(err) => Err(err.to_string()),
            };
            match answered {
                Ok(value) => return value,
                Err(err) if self.patient && Instant::now() < deadline => {
                    let _ = err;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(err) => panic!("no answer to {query}: {err}"),
            }
        }
    }
}

/// A mutation of one field with these arguments (name and GraphQL type), selecting `position`.
fn mutation(field: &str, args: &[(&str, &str)]) -> String {
    let declared: Vec<String> = args.iter().map(|(n, t)| format!("${n}: {t}")).collect();
    let used: Vec<String> = args.iter().map(|(n, _)| format!("{n}: ${n}")).collect();
    format!(
        "mutation({}) {{ {field}({}) {{ position }} }}",
        declared.join(", "),
        used.join(", ")
    )
}

fn money(minor: i64, currency: &str) -> Value {
    json!({ "amount": Decimal::new(minor, 2).to_string(), "currency": currency })
}

/// Kopecks of a `{ amount, currency }` value (or of a bare amount string).
fn minor_in(value: &Value) -> i64 {
    let amount = value.get("amount").unwrap_or(value);
    minor_of(Decimal::from_str_exact(amount.as_str().expect("an amount string")).unwrap())
}

fn moscow_date(at: DateTime<Utc>) -> NaiveDate {
    (at + TimeDelta::hours(3)).date_naive()
}

/// Ids of one case: distinct per story, kind and number.
fn id(story: usize, kind: u8, n: usize) -> String {
    Uuid::from_u128(
        0x0193_a4b0_0000_7000_8000_0000_0000_0000
            | ((story as u128) << 24)
            | (u128::from(kind) << 16)
            | n as u128,
    )
    .to_string()
}

/// The story whose customer story `k` sells to: its own, or that of an earlier story that began
/// on an earlier day (so the customer is registered before this story's first step).
fn customer_story(stories: &[Story], k: usize) -> usize {
    match stories[k].returning_customer {
        Some(earlier) if k > 0 && stories[earlier % k].start_day < stories[k].start_day => {
            customer_story(stories, earlier % k)
        }
        _ => k,
    }
}

/// A payment the scenario made that completed: what it may still refund.
#[derive(Clone, Debug)]
struct Paid {
    id: String,
    amount: i64,
    refunded: i64,
}

/// What one story has done so far.
#[derive(Clone, Debug, Default)]
struct StoryState {
    customer: String,
    vehicle: String,
    currency: &'static str,
    list_price: i64,
    year: i32,
    mileage_km: u32,
    order: String,
    price: i64,
    total: i64,
    /// Paid towards the order, net of refunds.
    paid_total: i64,
    /// The amounts the down payment's parts (or the deposit) are paid in.
    parts: Vec<i64>,
    financed: i64,
    completed: Vec<Paid>,
    loan: Option<LoanBook>,
    /// The amount a refund took off a paid order, to pay again.
    refunded: i64,
    policies: Vec<Option<PolicyBook>>,
    bookings: Vec<Option<BookingBook>>,
    payments_made: usize,
    /// The story's account: its id, email, password now and first role.
    account: Option<accounts::AccountBook>,
    partner_key: Option<String>,
    /// Promotions created for the story so far (their codes are numbered by it).
    promotions: usize,
    /// A promo code's discount is in force on the order: no other discount replaces it.
    code_in_force: bool,
}

/// What a run leaves for the checks.
pub struct Outcome {
    pub shadow: Shadow,
    pub accepted: usize,
    pub refused: usize,
}

struct Run<'a> {
    target: &'a Target,
    time: Time,
    stories: &'a [Story],
    states: Vec<StoryState>,
    shadow: Shadow,
    accepted: usize,
    refused: usize,
}

/// Runs `scenario` against `target`.
pub async fn run(scenario: &Scenario, target: &Target, time: Time) -> Outcome {
    let mut run = Run {
        target,
        time: time.clone(),
        stories: &scenario.stories,
        states: vec![StoryState::default(); scenario.stories.len()],
        shadow: Shadow::default(),
        accepted: 0,
        refused: 0,
    };
    for step in expand(scenario) {
        if step.needs_time && !time.scenario() {
            continue;
        }
        // Account mutations take no idempotency key: one resent after the server was killed could
        // not be told from a second attempt, so the run against a server that may be killed (on
        // the wall clock) leaves them out.
        if matches!(step.action, Action::Accounts(_)) && !time.scenario() {
            continue;
        }
        if let Time::Scenario(clock) = &time {
            clock.set(first_day() + TimeDelta::minutes(step.at));
        }
        run.step(&step).await;
    }
    Outcome {
        shadow: run.shadow,
        accepted: run.accepted,
        refused: run.refused,
    }
}

impl Run<'_> {
    fn key(step: &Step, what: &str) -> String {
        format!("s{}-{}-{what}", step.story, step.seq)
    }

    /// Sends a mutation that must succeed.
    async fn ok(&mut self, step: &Step, query: &str, variables: Value) -> Value {
        let response = self.target.post(query, &variables).await;
        assert!(
            response.get("errors").is_none(),
            "step {step:?} of story {} was refused: {response:#}\nvariables: {variables:#}",
            step.story
        );
        self.accepted += 1;
        response["data"].clone()
    }

    /// Sends a mutation that must be refused with `code`, and checks it wrote nothing.
    async fn refused(&mut self, step: &Step, query: &str, variables: Value, code: &str) {
        let before = self.event_count().await;
        let response = self.target.post(query, &variables).await;
        assert_eq!(
            crate::helpers::error_codes(&response),
            [code],
            "step {step:?}: expected {code}: {response:#}"
        );
        assert_eq!(
            self.event_count().await,
            before,
            "step {step:?}: a refused command wrote events"
        );
        self.refused += 1;
    }

    async fn event_count(&self) -> i64 {
        let response = self
            .target
            .post("{ events(first: 1) { totalCount } }", &json!({}))
            .await;
        response["data"]["events"]["totalCount"].as_i64().unwrap()
    }

    /// One stream's events from the log (the auditors' query): (type, payload).
    async fn stream(&self, aggregate: &str, id: &str) -> Vec<(String, Value)> {
        let response = self
            .target
            .post(
                "query($t: AggregateType!, $id: UUID!) { aggregateEvents(aggregateType: $t, id: $id, first: 200) {
                   edges { node { eventType payload } } } }",
                &json!({ "t": aggregate, "id": id }),
            )
            .await;
        response["data"]["aggregateEvents"]["edges"]
            .as_array()
            .unwrap_or_else(|| panic!("no events of {aggregate} {id}: {response:#}"))
            .iter()
            .map(|edge| {
                let kind = edge["node"]["eventType"].as_str().unwrap().to_string();
                let payload = &edge["node"]["payload"];
                // Stored as `{ "<EventType>": { ..fields } }`.
                let fields = payload.get(&kind).unwrap_or(payload).clone();
                (kind, fields)
            })
            .collect()
    }

    fn now(&self) -> DateTime<Utc> {
        self.time.now()
    }

    /// The business day of what happens now, when the scenario knows it exactly.
    fn business_day(&self) -> Option<NaiveDate> {
        self.time.scenario().then(|| moscow_date(self.now()))
    }

    fn today(&self) -> NaiveDate {
        moscow_date(self.now())
    }

    fn customer_of(&self, story: usize) -> String {
        id(customer_story(self.stories, story), 1, 0)
    }

    async fn step(&mut self, step: &Step) {
        match step.action.clone() {
            Action::Sale(action) => self.sale(step, action).await,
            Action::Loan(action) => self.loan(step, action).await,
            Action::Policy(action) => self.policy(step, action).await,
            Action::Workshop(action) => self.workshop(step, action).await,
            Action::Accounts(action) => self.accounts(step, action).await,
        }
    }
}
