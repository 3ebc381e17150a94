//! The hash chain catches tampering done directly in the database, by someone who drops the
//! immutability triggers first: one-byte edits of payloads, metadata, times and stored hashes, a
//! renumbered position, a deleted event and two swapped events — each found by
//! `eventstore::chain::verify` at exactly the position tampered with. The triggers are dropped once;
//! every edit is made inside a transaction rolled back afterwards, so one log serves every case.
//!
//! `AUTOSALON_TAMPER_CASES` sets how many edits (default 1,000); `AUTOSALON_TAMPER_SEED` replays one
//! run (the seed is printed).

use eventstore::chain::{Break, VerifyError};
use eventstore::{Backend, Database};
use serde_json::json;

use crate::helpers::*;

const DEFAULT_CASES: usize = 1_000;

/// xorshift64*: enough to spread edits; the seed is printed so a failure replays exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A log with real events of several aggregates (vehicles, a customer, an order, the admin account).
async fn ledger(database_url: String, dir: &tempfile::TempDir) -> i64 {
    let mut settings = autosalon::ServeArgs::new(database_url, "127.0.0.1:0".parse().unwrap());
    settings.signing_key_file = dir.path().join("signing.key");
    settings.token_key_file = dir.path().join("token.key");
    let app = spawn_with(settings).await;
    let vehicles = [
        ("0193a4b0-0000-7000-8000-00000000f0a1", "XTA210990Y2766301"),
        ("0193a4b0-0000-7000-8000-00000000f0a2", "XTA212140K1234502"),
        ("0193a4b0-0000-7000-8000-00000000f0a3", "XTA219010M0123453"),
    ];
    for (id, vin) in vehicles {
        app.ok(
            STOCK_VEHICLE,
            json!({ "input": vehicle_input(id, vin, "Vesta", "1500000.00") }),
        )
        .await;
    }
    let customer = "0193a4b0-0000-7000-8000-00000000f0c1";
    app.ok(
        REGISTER_CUSTOMER,
        json!({ "input": customer_input(customer) }),
    )
    .await;
    let order = "0193a4b0-0000-7000-8000-00000000f0d1";
    app.ok(
        DRAFT_ORDER,
        json!({ "input": { "id": order, "customerId": customer, "vehicleId": vehicles[0].0 } }),
    )
    .await;
    app.ok(CONFIRM_ORDER, json!({ "id": order })).await;
    let events = app.event_count().await;
    app.stop().await;
    events
}

const SELECT_KEY: &str =
    "SELECT aggregate_type, aggregate_id, sequence FROM event_log WHERE global_position = $1";

async fn key(tx: &mut sqlx::AnyConnection, position: i64) -> (String, String, i64) {
    sqlx::query_as(SELECT_KEY)
        .bind(position)
        .fetch_one(&mut *tx)
        .await
        .unwrap()
}

async fn drop_triggers(tx: &mut sqlx::AnyConnection, backend: Backend) {
    let statements: &[&str] = match backend {
        Backend::Sqlite => &[
            "DROP TRIGGER events_refuse_update",
            "DROP TRIGGER events_refuse_delete",
            "DROP TRIGGER event_log_refuse_update",
            "DROP TRIGGER event_log_refuse_delete",
            "DROP TRIGGER event_chain_refuse_update",
        ],
        Backend::Postgres => &[
            "DROP TRIGGER events_refuse_update ON events",
            "DROP TRIGGER event_log_refuse_update ON event_log",
            "DROP TRIGGER event_chain_refuse_update ON event_chain",
        ],
    };
    for statement in statements {
        sqlx::query(statement).execute(&mut *tx).await.unwrap();
    }
}

#[derive(Clone, Copy, Debug)]
enum Edit {
    Payload,
    Metadata,
    RecordedAt,
    StoredHash,
    Position,
    Deleted,
    Swapped,
}

const EDITS: [Edit; 7] = [
    Edit::Payload,
    Edit::Metadata,
    Edit::RecordedAt,
    Edit::StoredHash,
    Edit::Position,
    Edit::Deleted,
    Edit::Swapped,
];

/// Replaces one byte of `text` (an ASCII one, by another printable ASCII byte), so it stays text.
fn one_byte_edit(rng: &mut Rng, text: &str) -> String {
    let bytes = text.as_bytes();
    loop {
        let at = rng.below(bytes.len() as u64) as usize;
        if !bytes[at].is_ascii() {
            continue;
        }
        let by = b' ' + rng.below(95) as u8;
        if by == bytes[at] {
            continue;
        }
        let mut edited = bytes.to_vec();
        edited[at] = by;
        return String::from_utf8(edited).unwrap();
    }
}

/// Makes `edit` at `position` inside `tx`; returns the position verification must name.
async fn tamper(
    tx: &mut sqlx::AnyConnection,
    backend: Backend,
    rng: &mut Rng,
    edit: Edit,
    position: i64,
    head: i64,
) -> i64 {
    let (aggregate_type, aggregate_id, sequence) = key(tx, position).await;
    let text_of = |column: &str| match backend {
        Backend::Sqlite => format!(
            "SELECT {column} FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3"
        ),
        Backend::Postgres => format!(
            "SELECT CAST({column} AS TEXT) FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3"
        ),
    };
    match edit {
        Edit::Payload | Edit::Metadata => {
            let column = if matches!(edit, Edit::Payload) {
                "payload"
            } else {
                "metadata"
            };
            let original: String = sqlx::query_scalar(&text_of(column))
                .bind(&aggregate_type)
                .bind(&aggregate_id)
                .bind(sequence)
                .fetch_one(&mut *tx)
                .await
                .unwrap();
            let cast = if backend == Backend::Postgres {
                "CAST($1 AS json)"
            } else {
                "$1"
            };
            let update = format!(
                "UPDATE events SET {column} = {cast} WHERE aggregate_type = $2 AND aggregate_id = $3 AND sequence = $4"
            );
            // Edits are drawn until one changes the value (an edit of JSON syntax can parse to the
            // same value, `1.0` → `1e0`: the chain covers values, not formatting) and the database
            // takes it (PostgreSQL's `json` type, and SQLite's index over `metadata`, refuse
            // broken JSON).
            for _ in 0..1_000 {
                let edited = one_byte_edit(rng, &original);
                let same = serde_json::from_str::<serde_json::Value>(&edited).ok()
                    == serde_json::from_str::<serde_json::Value>(&original).ok();
                if same {
                    continue;
                }
                sqlx::query("SAVEPOINT edit")
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                let updated = sqlx::query(&update)
                    .bind(&edited)
                    .bind(&aggregate_type)
                    .bind(&aggregate_id)
                    .bind(sequence)
                    .execute(&mut *tx)
                    .await;
                if updated.is_ok() {
                    return position;
                }
                sqlx::query("ROLLBACK TO edit")
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
            panic!("no one-byte edit of {column} at {position} was taken");
        }
        Edit::RecordedAt => match backend {
            Backend::Sqlite => {
                let original: String = sqlx::query_scalar(&text_of("recorded_at"))
                    .bind(&aggregate_type)
                    .bind(&aggregate_id)
                    .bind(sequence)
                    .fetch_one(&mut *tx)
                    .await
                    .unwrap();
                // Drawn until the edit changes the instant or breaks it: RFC 3339 also reads `t`
                // and `z`, and the chain covers the instant, not its spelling.
                let instant = |text: &str| chrono::DateTime::parse_from_rfc3339(text).ok();
                let edited = loop {
                    let edited = one_byte_edit(rng, &original);
                    if instant(&edited).is_none() || instant(&edited) != instant(&original) {
                        break edited;
                    }
                };
                sqlx::query("UPDATE events SET recorded_at = $1 WHERE aggregate_type = $2 AND aggregate_id = $3 AND sequence = $4")
                    .bind(&edited)
                    .bind(&aggregate_type)
                    .bind(&aggregate_id)
                    .bind(sequence)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
            Backend::Postgres => {
                // A timestamptz has no bytes to flip: move it by 1 µs to about 12 days, either way.
                let micros =
                    (1 + rng.below(1 << 40)) as i64 * if rng.below(2) == 0 { 1 } else { -1 };
                sqlx::query(&format!("UPDATE events SET recorded_at = recorded_at + interval '{micros} microseconds' WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3"))
                    .bind(&aggregate_type)
                    .bind(&aggregate_id)
                    .bind(sequence)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
        },
        Edit::StoredHash => {
            let original: String =
                sqlx::query_scalar("SELECT hash FROM event_chain WHERE global_position = $1")
                    .bind(position)
                    .fetch_one(&mut *tx)
                    .await
                    .unwrap();
            // Another hex digit: the row stays well-formed, only wrong.
            let at = rng.below(64) as usize;
            let digits = b"0123456789abcdef";
            let mut edited = original.into_bytes();
            let old = edited[at];
            edited[at] = loop {
                let digit = digits[rng.below(16) as usize];
                if digit != old {
                    break digit;
                }
            };
            sqlx::query("UPDATE event_chain SET hash = $1 WHERE global_position = $2")
                .bind(String::from_utf8(edited).unwrap())
                .bind(position)
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        Edit::Position => {
            // Renumbered to a position nobody holds (past the head).
            let to = head + 1 + rng.below(1_000) as i64;
            sqlx::query("UPDATE event_log SET global_position = $1 WHERE global_position = $2")
                .bind(to)
                .bind(position)
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        Edit::Deleted => {
            sqlx::query("DELETE FROM event_log WHERE global_position = $1")
                .bind(position)
                .execute(&mut *tx)
                .await
                .unwrap();
            sqlx::query(
                "DELETE FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3",
            )
            .bind(&aggregate_type)
            .bind(&aggregate_id)
            .bind(sequence)
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        Edit::Swapped => {
            let other = loop {
                let other = 1 + rng.below(head as u64) as i64;
                if other != position {
                    break other;
                }
            };
            let parked = head + 10_000;
            for (from, to) in [(position, parked), (other, position), (parked, other)] {
                sqlx::query("UPDATE event_log SET global_position = $1 WHERE global_position = $2")
                    .bind(to)
                    .bind(from)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
            return position.min(other);
        }
    }
    position
}

async fn every_edit_is_found_at_its_position(database_url: String, dir: &tempfile::TempDir) {
    let events = ledger(database_url.clone(), dir).await;
    assert!(events >= 8, "the ledger holds {events} events");
    let db = Database::connect(&database_url).await.unwrap();
    let backend = db.backend();
    let clean = eventstore::chain::verify(db.pool()).await.unwrap();
    assert_eq!(clean.events, events);
    let head = clean.head.position;
    // The tamperer's first step, once (this database is the test's own): every edit below is then
    // made in a transaction rolled back after verifying it.
    let mut tx = db.begin_write().await.unwrap();
    drop_triggers(&mut tx, backend).await;
    tx.commit().await.unwrap();

    let cases: usize = std::env::var("AUTOSALON_TAMPER_CASES")
        .ok()
        .map(|n| n.parse().expect("AUTOSALON_TAMPER_CASES is a number"))
        .unwrap_or(DEFAULT_CASES);
    let seed: u64 = std::env::var("AUTOSALON_TAMPER_SEED")
        .ok()
        .map(|n| n.parse().expect("AUTOSALON_TAMPER_SEED is a number"))
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!(
        "tamper: {cases} cases on {}, AUTOSALON_TAMPER_SEED={seed}",
        backend.name()
    );
    let mut rng = Rng(seed);
    let mut detected = [0usize; EDITS.len()];
    for case in 0..cases {
        let kind = case % EDITS.len();
        let edit = EDITS[kind];
        let position = 1 + rng.below(head as u64) as i64;
        let mut tx = db.begin_write().await.unwrap();
        let expected = tamper(&mut tx, backend, &mut rng, edit, position, head).await;
        let found = eventstore::chain::verify_on(&mut tx, backend).await;
        tx.rollback().await.unwrap();
        match found {
            Err(VerifyError::Break(broken)) => {
                assert_eq!(
                    broken.position(),
                    expected,
                    "case {case}: {edit:?} at {position} found as {broken} (seed {seed})"
                );
                if let Edit::StoredHash | Edit::Swapped = edit {
                    assert!(matches!(broken, Break::HashMismatch { .. }), "{broken}");
                }
                detected[kind] += 1;
            }
            other => {
                panic!("case {case}: {edit:?} at {position} not detected: {other:?} (seed {seed})")
            }
        }
    }
    eprintln!("tamper: detected {detected:?} (of {EDITS:?})");
    if cases >= 10 * EDITS.len() {
        assert!(detected.iter().all(|&n| n > 0), "{detected:?}");
    }
    // Everything was rolled back: the log verifies as before.
    assert_eq!(eventstore::chain::verify(db.pool()).await.unwrap(), clean);
    db.close().await;
}

#[tokio::test]
async fn tampering_with_an_embedded_log_is_found_at_the_position_tampered_with() {
    let dir = temp_dir();
    let url = format!("sqlite://{}", dir.path().join("tamper.db").display());
    every_edit_is_found_at_its_position(url, &dir).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL (AUTOSALON_TEST_DATABASE_URL); .ci/run runs it"]
async fn tampering_with_a_postgres_log_is_found_at_the_position_tampered_with() {
    assert!(
        postgres_admin_url().is_some(),
        "this test needs PostgreSQL: set AUTOSALON_TEST_DATABASE_URL=postgres://USER@HOST:PORT/postgres \
         (`eval \"$(.ci/postgres start)\"` starts a throwaway cluster)"
    );
    let dir = temp_dir();
    every_edit_is_found_at_its_position(database_url(&dir.path().join("tamper")), &dir).await;
}

/// `autosalon verify` as an auditor runs it: exit 0 and the summary on a clean log and on its export,
/// exit 1 naming the position once one amount was changed behind the triggers' back.
#[tokio::test]
async fn autosalon_verify_passes_a_clean_log_and_names_the_edited_position() {
    let dir = temp_dir();
    let url = format!("sqlite://{}", dir.path().join("verify.db").display());
    let events = ledger(url.clone(), &dir).await;
    let verify = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_autosalon"))
            .arg("verify")
            .args(args)
            .output()
            .expect("autosalon runs")
    };
    let clean = verify(&["--database-url", &url]);
    let summary = String::from_utf8_lossy(&clean.stdout).to_string();
    assert!(clean.status.success(), "{clean:?}");
    assert!(
        summary.starts_with(&format!(
            "chain verified: {events} events, head position {events}, head hash "
        )),
        "{summary}"
    );

    let db = Database::connect(&url).await.unwrap();
    let mut out = Vec::new();
    autosalon::transfer::export_events(db.pool(), &mut out)
        .await
        .unwrap();
    let file = dir.path().join("events.jsonl");
    std::fs::write(&file, &out).unwrap();
    let from_file = verify(&["--from", file.to_str().unwrap()]);
    assert!(from_file.status.success(), "{from_file:?}");
    assert_eq!(String::from_utf8_lossy(&from_file.stdout), summary);

    // The second vehicle's price, one digit up, with the triggers out of the way.
    let (aggregate_type, aggregate_id, sequence) = {
        let mut conn = db.pool().acquire().await.unwrap();
        let mut found = None;
        for position in 1..=events {
            let (kind, id, sequence) = key(&mut conn, position).await;
            if id == "0193a4b0-0000-7000-8000-00000000f0a2" && sequence == 1 {
                found = Some((position, kind, id, sequence));
            }
        }
        let (position, kind, id, sequence) = found.expect("the second vehicle was stocked");
        ((position, kind), id, sequence)
    };
    let mut tx = db.begin_write().await.unwrap();
    drop_triggers(&mut tx, Backend::Sqlite).await;
    let changed = sqlx::query(
        "UPDATE events SET payload = replace(payload, '1500000.00', '1500001.00')
          WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3",
    )
    .bind(&aggregate_type.1)
    .bind(&aggregate_id)
    .bind(sequence)
    .execute(&mut *tx)
    .await
    .unwrap();
    assert_eq!(changed.rows_affected(), 1);
    tx.commit().await.unwrap();
    db.close().await;

    let tampered = verify(&["--database-url", &url]);
    let said = String::from_utf8_lossy(&tampered.stderr).to_string();
    assert_eq!(tampered.status.code(), Some(1), "{tampered:?}");
    assert!(
        said.contains(&format!("position {}: hash mismatch", aggregate_type.0)),
        "{said}"
    );
}
