//! Read-model rows as text, on either backend: what the rebuild tests compare between a live read
//! model and the same one rebuilt from the log.
//!
//! Each row is its columns in declared order, each spelt as SQLite's `quote()` spells it (`NULL`, an
//! integer's digits, text in single quotes with quotes doubled), joined by `|`. The rendering is
//! done here rather than in SQL because `quote()` and `pragma_table_info` are SQLite-only.

use eventstore::{Backend, DbPool};
use sqlx::{Row, TypeInfo, ValueRef};

/// Every row of `table`, as text, sorted (byte order, as SQLite's `ORDER BY` of text).
pub async fn table_rows(pool: &DbPool, table: &str) -> Vec<String> {
    let mut conn = pool.acquire().await.unwrap();
    let columns = autosalon::export::table_columns(&mut conn, Backend::of(pool), table)
        .await
        .unwrap();
    assert!(!columns.is_empty(), "table {table} has no columns");
    // `table` comes from the projectors' own lists, never from input. `*` is the declared order.
    let records = sqlx::query(&format!("SELECT * FROM {table}"))
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    let mut rows: Vec<String> = records
        .iter()
        .map(|record| {
            (0..columns.len())
                .map(|index| quoted(record, index))
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect();
    rows.sort();
    rows
}

/// Every row of `table`, each prefixed with `table|`, sorted.
pub async fn prefixed_rows(pool: &DbPool, table: &str) -> Vec<String> {
    table_rows(pool, table)
        .await
        .into_iter()
        .map(|row| format!("{table}|{row}"))
        .collect()
}

/// One value as SQLite's `quote()` writes it. Read models hold only integers, text and NULL.
fn quoted(record: &sqlx::any::AnyRow, index: usize) -> String {
    let raw = record.try_get_raw(index).unwrap();
    if raw.is_null() {
        return "NULL".to_string();
    }
    let kind = raw.type_info().name().to_string();
    match kind.as_str() {
        "INTEGER" | "BIGINT" | "SMALLINT" => record.get::<i64, _>(index).to_string(),
        "TEXT" => format!("'{}'", record.get::<String, _>(index).replace('\'', "''")),
        other => panic!("column {index} holds a {other}, which read models never store"),
    }
}
