//! Store-level guarantees, against a real SQLite file.

use std::collections::HashMap;
use std::sync::Arc;

use cqrs_es::persist::SemanticVersionEventUpcaster;

use crate::{Database, EventLog, StoreError, Upcasters};

async fn fresh() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    let db = Database::connect(&url).await.unwrap();
    db.migrate().await.unwrap();
    (dir, db)
}

async fn append(db: &Database, aggregate_type: &str, id: &str, sequence: i64, event_type: &str) {
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ($1, $2, $3, $4, '1.0', '{\"n\": 1}', '{\"actor_id\": \"tester\"}')",
    )
    .bind(aggregate_type)
    .bind(id)
    .bind(sequence)
    .bind(event_type)
    .execute(db.pool())
    .await
    .unwrap();
}

fn no_upcasters() -> Upcasters {
    Arc::new(vec![])
}

#[tokio::test]
async fn durability_pragmas_are_in_force() {
    let (_dir, db) = fresh().await;
    db.assert_durability().await.unwrap();
}

#[tokio::test]
async fn global_positions_follow_commit_order_across_aggregates() {
    let (_dir, db) = fresh().await;
    append(&db, "Vehicle", "a", 1, "VehicleStocked").await;
    append(&db, "Order", "o", 1, "OrderDrafted").await;
    append(&db, "Vehicle", "a", 2, "VehicleRepriced").await;
    let log = EventLog::new(db.pool().clone(), no_upcasters());
    let events = log.read_after(0, 10).await.unwrap();
    let seen: Vec<_> = events
        .iter()
        .map(|e| (e.position, e.event_type.as_str(), e.sequence))
        .collect();
    assert_eq!(
        seen,
        vec![
            (1, "VehicleStocked", 1),
            (2, "OrderDrafted", 1),
            (3, "VehicleRepriced", 2)
        ]
    );
    assert_eq!(log.read_after(2, 10).await.unwrap().len(), 1);
    assert_eq!(log.read_after(0, 2).await.unwrap().len(), 2);
    assert_eq!(log.head().await.unwrap(), 3);
    assert_eq!(events[0].metadata_value("actor_id"), Some("tester"));
    assert!(events[0].recorded_at <= chrono::Utc::now());
}

#[tokio::test]
async fn events_cannot_be_updated_or_deleted() {
    let (_dir, db) = fresh().await;
    append(&db, "Vehicle", "a", 1, "VehicleStocked").await;
    for sql in [
        "UPDATE events SET payload = '{}'",
        "DELETE FROM events",
        "UPDATE event_log SET global_position = 9",
        "DELETE FROM event_log",
    ] {
        let err = sqlx::query(sql).execute(db.pool()).await.unwrap_err();
        assert!(err.to_string().contains("immutable"), "{sql}: {err}");
    }
    assert_eq!(
        EventLog::new(db.pool().clone(), no_upcasters())
            .count()
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn positions_survive_vacuum_and_are_never_reused() {
    let (_dir, db) = fresh().await;
    for sequence in 1..=5 {
        append(&db, "Vehicle", "a", sequence, "VehicleRepriced").await;
    }
    sqlx::query("VACUUM").execute(db.pool()).await.unwrap();
    append(&db, "Vehicle", "b", 1, "VehicleStocked").await;
    let log = EventLog::new(db.pool().clone(), no_upcasters());
    let positions: Vec<_> = log
        .read_after(0, 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.position)
        .collect();
    assert_eq!(positions, vec![1, 2, 3, 4, 5, 6]);
}

#[tokio::test]
async fn positions_survive_a_backup_and_restore() {
    let (dir, db) = fresh().await;
    for sequence in 1..=3 {
        append(&db, "Order", "o", sequence, "OrderDrafted").await;
    }
    let backup = dir.path().join("backup.db");
    sqlx::query("VACUUM INTO $1")
        .bind(backup.display().to_string())
        .execute(db.pool())
        .await
        .unwrap();
    let restored = Database::connect(&format!("sqlite://{}", backup.display()))
        .await
        .unwrap();
    restored.migrate().await.unwrap();
    append(&restored, "Order", "o", 4, "OrderConfirmed").await;
    let log = EventLog::new(restored.pool().clone(), no_upcasters());
    let positions: Vec<_> = log
        .read_after(0, 10)
        .await
        .unwrap()
        .iter()
        .map(|e| (e.position, e.sequence))
        .collect();
    assert_eq!(positions, vec![(1, 1), (2, 2), (3, 3), (4, 4)]);
}

#[tokio::test]
async fn a_duplicate_sequence_is_refused_as_an_optimistic_lock_conflict() {
    let (_dir, db) = fresh().await;
    append(&db, "Vehicle", "a", 1, "VehicleStocked").await;
    let err = sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('Vehicle', 'a', 1, 'VehicleStocked', '1.0', '{}', '{}')",
    )
    .execute(db.pool())
    .await
    .unwrap_err();
    // sqlite-es recognises a conflict only by this code; the extra columns and triggers must keep it.
    let code = err.as_database_error().and_then(|e| e.code()).unwrap();
    assert_eq!(code, "1555");
    assert_eq!(
        EventLog::new(db.pool().clone(), no_upcasters())
            .head()
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn upcasters_rewrite_old_events_on_read() {
    let (_dir, db) = fresh().await;
    append(&db, "Vehicle", "a", 1, "VehicleStocked").await;
    let upcaster = SemanticVersionEventUpcaster::new(
        "VehicleStocked",
        "2.0",
        Box::new(|mut payload| {
            payload["n"] = serde_json::json!(2);
            payload
        }),
    );
    let log = EventLog::new(db.pool().clone(), Arc::new(vec![Box::new(upcaster)]));
    let event = &log.read_after(0, 1).await.unwrap()[0];
    assert_eq!(event.event_version, "2.0.0");
    assert_eq!(event.payload["n"], 2);
}

#[tokio::test]
async fn metadata_round_trips_and_idempotency_keys_are_found() {
    let (_dir, db) = fresh().await;
    let metadata = crate::CommandMetadata {
        actor_id: "clerk-1".into(),
        actor_role: "sales".into(),
        correlation_id: "corr".into(),
        causation_id: "cause".into(),
        command: "StockVehicle".into(),
        idempotency_key: Some("key-1".into()),
        input_fingerprint: Some("abc".into()),
    };
    let json = serde_json::to_string(&metadata.to_map()).unwrap();
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('Vehicle', 'a', 1, 'VehicleStocked', '1.0', '{}', $1)",
    )
    .bind(json)
    .execute(db.pool())
    .await
    .unwrap();
    let log = EventLog::new(db.pool().clone(), no_upcasters());
    let found = log.find_by_idempotency_key("key-1").await.unwrap().unwrap();
    assert_eq!(found.metadata_value("command"), Some("StockVehicle"));
    let stored: HashMap<String, String> = serde_json::from_value(found.metadata).unwrap();
    assert_eq!(stored, metadata.to_map());
    assert!(
        log.find_by_idempotency_key("key-2")
            .await
            .unwrap()
            .is_none()
    );
}

#[test]
fn only_failures_to_reach_the_database_count_as_unavailable() {
    use crate::database::is_unavailable;
    assert!(is_unavailable(&sqlx::Error::PoolTimedOut));
    assert!(is_unavailable(&sqlx::Error::PoolClosed));
    assert!(is_unavailable(&sqlx::Error::Io(std::io::Error::from(
        std::io::ErrorKind::ConnectionReset
    ))));
    assert!(!is_unavailable(&sqlx::Error::RowNotFound));
    assert!(!is_unavailable(&sqlx::Error::ColumnNotFound("x".into())));
    assert!(StoreError::Sql(sqlx::Error::PoolClosed).is_unavailable());
    assert!(
        !StoreError::Decode {
            position: 1,
            reason: "x".into()
        }
        .is_unavailable()
    );
}

#[test]
fn storage_refusals_count_as_unavailable_and_statement_errors_do_not() {
    use crate::database::is_unavailable;
    let sqlite = |code: &str| {
        sqlx::Error::Database(Box::new(TestDbError {
            code: code.to_string(),
        }))
    };
    // SQLITE_FULL, SQLITE_READONLY, SQLITE_READONLY_DBMOVED, SQLITE_IOERR_WRITE, SQLITE_IOERR_FSYNC,
    // SQLITE_CANTOPEN, SQLITE_BUSY_SNAPSHOT.
    for code in ["13", "8", "1032", "778", "1034", "14", "517"] {
        assert!(is_unavailable(&sqlite(code)), "{code}");
    }
    // SQLITE_CONSTRAINT_PRIMARYKEY (an optimistic-lock conflict), SQLITE_CONSTRAINT_UNIQUE, SQLITE_ERROR.
    for code in ["1555", "2067", "1"] {
        assert!(!is_unavailable(&sqlite(code)), "{code}");
    }
    // PostgreSQL: disk full, I/O error, read-only transaction, but not a unique violation or a
    // serialization failure, whose numbers must not be read as SQLite's.
    for code in ["53100", "58030", "25006"] {
        assert!(is_unavailable(&sqlite(code)), "{code}");
    }
    for code in ["23505", "40001", "22012"] {
        assert!(!is_unavailable(&sqlite(code)), "{code}");
    }
}

/// A database error with only a code, as a driver reports it.
#[derive(Debug)]
struct TestDbError {
    code: String,
}

impl std::fmt::Display for TestDbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "code {}", self.code)
    }
}

impl std::error::Error for TestDbError {}

impl sqlx::error::DatabaseError for TestDbError {
    fn message(&self) -> &str {
        "test"
    }
    fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
        Some(std::borrow::Cow::Borrowed(&self.code))
    }
    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }
    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }
    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }
    fn kind(&self) -> sqlx::error::ErrorKind {
        sqlx::error::ErrorKind::Other
    }
}

// The same small-tmpfs helper the application's storage test uses (one copy, in `tests/support`).
#[path = "../../tests/support/tmpfs.rs"]
mod tmpfs;
use tmpfs::Tmpfs;

/// One append of a large event in its own transaction on the append pool, committed.
async fn append_large(db: &Database, id: &str, sequence: i64) -> Result<(), sqlx::Error> {
    let crate::database::NativePool::Sqlite(pool) = db.native() else {
        unreachable!("an SQLite database")
    };
    let payload = serde_json::json!({ "text": "x".repeat(60_000) }).to_string();
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('Vehicle', $1, $2, 'VehicleStocked', '1.0', $3, '{}')",
    )
    .bind(id)
    .bind(sequence)
    .bind(&payload)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

#[tokio::test]
async fn a_commit_a_full_disk_refused_is_an_error_and_later_commits_are_durable() {
    let Some(fs) = Tmpfs::mount("8m") else {
        return;
    };
    let url = format!("sqlite://{}", fs.path().join("store.db").display());
    let db = Database::connect(&url).await.unwrap();
    db.migrate().await.unwrap();
    let other = Database::connect(&url).await.unwrap();
    let stored = |id: &'static str| {
        let pool = other.pool().clone();
        async move {
            let count: i64 =
                sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_id = $1")
                    .bind(id)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            count
        }
    };
    append_large(&db, "before", 1).await.unwrap();

    // More attempts than the pool has connections, so every connection a refused commit left behind
    // is used again. Before the pool closed connections left inside a transaction, the second
    // attempt on such a connection "committed" inside a transaction that never ended.
    let filler = fs.fill();
    for attempt in 1..=12 {
        let refused = append_large(&db, "during", attempt)
            .await
            .expect_err("a full disk takes no commit");
        assert!(
            crate::database::is_unavailable(&refused),
            "a full disk is a storage failure: {refused}"
        );
    }
    std::fs::remove_file(filler).unwrap();

    // The space is back: on the same pool, without a restart, every commit is real at once.
    for sequence in 1..=12 {
        append_large(&db, "after", sequence).await.unwrap();
        assert_eq!(
            stored("after").await,
            sequence,
            "another connection sees the commit"
        );
    }
    assert_eq!(stored("before").await, 1);
    assert_eq!(stored("during").await, 0, "nothing of the refused appends");
    other.close().await;
    db.close().await;
}

/// Appends that queue while another write holds the turn are committed as one group: sixteen on
/// distinct streams all land, of eight deciding on one stream's same version exactly one does and
/// the others are told it is a conflict, and the positions are gap-free — the rolled-back
/// savepoints took none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_queued_together_commit_as_one_group_and_a_conflict_fails_alone() {
    use cqrs_es::persist::{PersistenceError, SerializedEvent};
    let (_dir, db) = fresh().await;
    let event = |id: &str, sequence: usize| {
        SerializedEvent::new(
            id.to_string(),
            sequence,
            "Vehicle".into(),
            "VehicleRelocated".into(),
            "1.0".into(),
            serde_json::json!({ "to": format!("{id}-{sequence}") }),
            serde_json::json!({ "actor_id": "tester" }),
        )
    };
    let turn = db.write_turn().await;
    let mut appends = Vec::new();
    for k in 0..24 {
        let (db, events) = if k < 16 {
            (db.clone(), vec![event(&format!("distinct-{k}"), 1)])
        } else {
            (db.clone(), vec![event("hot", 1)])
        };
        appends.push(tokio::spawn(async move {
            db.writer().append("Vehicle", &events, None).await
        }));
    }
    // Every append is accepted: queued, or already in the group the appender holds while it waits
    // for the turn (it takes whatever had queued when it woke, so how many is up to the scheduler).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while db.writer().accepted() < 24 {
        assert!(
            std::time::Instant::now() < deadline,
            "the appends did not queue"
        );
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    drop(turn);
    let mut outcomes = Vec::new();
    for append in appends {
        outcomes.push(append.await.unwrap());
    }
    assert!(outcomes[..16].iter().all(Result::is_ok), "{outcomes:?}");
    let hot = &outcomes[16..];
    assert_eq!(hot.iter().filter(|o| o.is_ok()).count(), 1, "{hot:?}");
    assert!(
        hot.iter()
            .all(|o| o.is_ok() || matches!(o, Err(PersistenceError::OptimisticLockError))),
        "{hot:?}"
    );
    let positions: Vec<i64> =
        sqlx::query_scalar("SELECT global_position FROM event_log ORDER BY global_position")
            .fetch_all(db.pool())
            .await
            .unwrap();
    assert_eq!(positions, (1..=17).collect::<Vec<_>>());
    assert_eq!(db.writer().commits(), 1, "all of them in one transaction");
    // The conflicts left no mark in the chain: every position is chained, in one unbroken line.
    let verified = crate::chain::verify(db.pool()).await.unwrap();
    assert_eq!(verified.events, 17);
    assert_eq!(verified.head.position, 17);
}

/// The canonical form and the hash, pinned to bytes computed outside this code (Python's `json`
/// with sorted keys and compact separators, which equals RFC 8785 for this data, and `hashlib`).
#[test]
fn the_canonical_form_and_the_hash_are_exactly_as_documented() {
    let event = crate::RecordedEvent {
        position: 1,
        aggregate_type: "Vehicle".into(),
        aggregate_id: "v-1".into(),
        sequence: 1,
        event_type: "VehicleStocked".into(),
        event_version: "1.0".into(),
        payload: serde_json::json!({"vin": "XTA210990Y2766301", "price": "1500000.00", "n": 7, "ё": "Жигули"}),
        metadata: serde_json::json!({"role": "admin", "actor_id": "tester"}),
        recorded_at: "2026-12-01T10:00:00.123Z".parse().unwrap(),
    };
    assert_eq!(
        String::from_utf8(crate::chain::canonical_bytes(&event)).unwrap(),
        r#"{"aggregate_id":"v-1","aggregate_type":"Vehicle","event_type":"VehicleStocked","event_version":"1.0","metadata":{"actor_id":"tester","role":"admin"},"payload":{"n":7,"price":"1500000.00","vin":"XTA210990Y2766301","ё":"Жигули"},"position":1,"recorded_at":"2026-12-01T10:00:00.123000Z","sequence":1}"#
    );
    assert_eq!(
        crate::chain::to_hex(&crate::chain::link(&crate::chain::GENESIS, &event)),
        "b7e970710609050af36b7676f9cf73e43b6483ec917e69ffb247ab2c129afd21"
    );
}

/// An append rolled back to its savepoint (its second event conflicts after its first went in)
/// takes its position back; the chain has no hole where it was, and the next append chains on.
#[tokio::test]
async fn an_append_rolled_back_in_its_group_leaves_no_gap_in_the_chain() {
    use cqrs_es::persist::SerializedEvent;
    let (_dir, db) = fresh().await;
    let event = |id: &str, sequence: usize| {
        SerializedEvent::new(
            id.to_string(),
            sequence,
            "Vehicle".into(),
            "VehicleRelocated".into(),
            "1.0".into(),
            serde_json::json!({ "to": id }),
            serde_json::json!({ "actor_id": "tester" }),
        )
    };
    db.writer()
        .append("Vehicle", &[event("x", 1)], None)
        .await
        .unwrap();
    let turn = db.write_turn().await;
    let mut appends = Vec::new();
    for events in [
        vec![event("y", 1), event("x", 1)],
        vec![event("z", 1)],
        vec![event("w", 1)],
    ] {
        let db = db.clone();
        appends.push(tokio::spawn(async move {
            db.writer().append("Vehicle", &events, None).await
        }));
    }
    // All three queued (in this order: the test runtime runs tasks in the order they were spawned)
    // while the appender waits for the turn, so they share one group.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while db.writer().accepted() < 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "the appends did not queue"
        );
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    drop(turn);
    let outcomes: Vec<_> = futures::future::join_all(appends)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(outcomes[0].is_err() && outcomes[1].is_ok() && outcomes[2].is_ok());
    let verified = crate::chain::verify(db.pool()).await.unwrap();
    assert_eq!((verified.events, verified.head.position), (3, 3));
    let chained: Vec<i64> =
        sqlx::query_scalar("SELECT global_position FROM event_chain ORDER BY global_position")
            .fetch_all(db.pool())
            .await
            .unwrap();
    assert_eq!(chained, vec![1, 2, 3]);
}

/// A log written before the chain existed (events inserted behind the appender's back stand for
/// it) is chained by the migration step, and the chain then verifies.
#[tokio::test]
async fn a_log_without_a_chain_is_chained_when_migrated() {
    let (_dir, db) = fresh().await;
    for sequence in 1..=5 {
        append(&db, "Vehicle", "a", sequence, "VehicleRepriced").await;
    }
    let missing = crate::chain::verify(db.pool()).await.unwrap_err();
    assert!(
        matches!(
            missing,
            crate::chain::VerifyError::Break(crate::chain::Break::MissingChainRow { position: 1 })
        ),
        "{missing:?}"
    );
    db.migrate().await.unwrap();
    let verified = crate::chain::verify(db.pool()).await.unwrap();
    assert_eq!((verified.events, verified.head.position), (5, 5));
}

/// Projector batches commit on the read side's connection at `synchronous=NORMAL`; the appends'
/// pool stays at FULL, and an appender handed a NORMAL connection refuses to append at all (it reads
/// `PRAGMA synchronous` inside every group's transaction), so no acknowledged event can depend on a
/// commit that skipped its fsync.
#[tokio::test]
async fn appends_commit_only_at_synchronous_full_and_the_read_side_at_normal() {
    use cqrs_es::persist::SerializedEvent;
    let (_dir, db) = fresh().await;
    let level = |pool: crate::DbPool| async move {
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
        let level: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        level
    };
    assert_eq!(level(db.pool().clone()).await, 2, "appends' pool");
    assert_eq!(level(db.read_side_pool().clone()).await, 1, "read side");
    let read_side_tx = db.begin_read_side().await.unwrap();
    drop(read_side_tx);

    let event = SerializedEvent::new(
        "v".into(),
        1,
        "Vehicle".into(),
        "VehicleRelocated".into(),
        "1.0".into(),
        serde_json::json!({ "to": "Bay 1" }),
        serde_json::json!({ "actor_id": "tester" }),
    );
    let misplaced =
        crate::writer::Writer::spawn(db.read_side_pool().clone(), crate::Backend::Sqlite, None);
    let refused = misplaced
        .append("Vehicle", std::slice::from_ref(&event), None)
        .await;
    assert!(refused.is_err(), "an append at NORMAL was acknowledged");
    let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(events, 0, "an append at NORMAL wrote");

    db.writer()
        .append("Vehicle", std::slice::from_ref(&event), None)
        .await
        .expect("the appender's own pool is at FULL");
    let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(events, 1);
}
