//! `autosalon export`: files for `customer_history` and `catalog` parse back to exactly the tables'
//! rows, with the position the projector's checkpoint states; unknown names are refused with the list.

use autosalon::Ledger;
use autosalon::export::{ExportFormat, export};
use eventstore::Backend;
use serde_json::Value;

use crate::customer_history::two_customers;
use crate::helpers::*;

const PROJECTIONS: [&str; 2] = ["customer_history", "catalog"];

fn tables(projection: &str) -> &'static [&'static str] {
    projections::all_projectors()
        .into_iter()
        .find(|p| p.name() == projection)
        .unwrap()
        .tables()
}

/// The table's columns in declared order, as the database's own catalogue lists them.
async fn columns(ledger: &Ledger, table: &str) -> Vec<String> {
    let sql = match ledger.db.backend() {
        Backend::Sqlite => "SELECT name FROM pragma_table_info($1) ORDER BY cid",
        Backend::Postgres => {
            "SELECT CAST(column_name AS TEXT) FROM information_schema.columns
              WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position"
        }
    };
    sqlx::query_scalar(sql)
        .bind(table)
        .fetch_all(ledger.db.pool())
        .await
        .unwrap()
}

/// The order `export` documents for each backend: insertion order on SQLite; on PostgreSQL, which
/// keeps no insertion order, every column in turn.
async fn row_order(ledger: &Ledger, table: &str) -> String {
    match ledger.db.backend() {
        Backend::Sqlite => "rowid".to_string(),
        Backend::Postgres => columns(ledger, table).await.join(", "),
    }
}

/// The functions that build a JSON object and a JSON array in the database's own SQL.
fn json_functions(ledger: &Ledger) -> (&'static str, &'static str) {
    match ledger.db.backend() {
        Backend::Sqlite => ("json_object", "json_array"),
        Backend::Postgres => ("json_build_object", "json_build_array"),
    }
}

/// The table's rows as the database itself renders them to JSON (integers as numbers, NULL as
/// null), in the order the export documents.
async fn json_rows(ledger: &Ledger, table: &str) -> Vec<Value> {
    let pairs: Vec<String> = columns(ledger, table)
        .await
        .iter()
        .map(|c| format!("'{c}', {c}"))
        .collect();
    let (object, _) = json_functions(ledger);
    let sql = format!(
        "SELECT CAST({object}({}) AS TEXT) FROM {table} ORDER BY {}",
        pairs.join(", "),
        row_order(ledger, table).await
    );
    sqlx::query_scalar::<_, String>(&sql)
        .fetch_all(ledger.db.pool())
        .await
        .unwrap()
        .iter()
        .map(|text| serde_json::from_str(text).unwrap())
        .collect()
}

/// The table's rows as text, NULL as an empty string: what a CSV record holds.
async fn text_rows(ledger: &Ledger, table: &str) -> Vec<Vec<String>> {
    let cast: Vec<String> = columns(ledger, table)
        .await
        .iter()
        .map(|c| format!("coalesce(CAST({c} AS TEXT), '')"))
        .collect();
    let (_, array) = json_functions(ledger);
    let sql = format!(
        "SELECT CAST({array}({}) AS TEXT) FROM {table} ORDER BY {}",
        cast.join(", "),
        row_order(ledger, table).await
    );
    sqlx::query_scalar::<_, String>(&sql)
        .fetch_all(ledger.db.pool())
        .await
        .unwrap()
        .iter()
        .map(|text| serde_json::from_str(text).unwrap())
        .collect()
}

async fn checkpoint(ledger: &Ledger, projection: &str) -> i64 {
    sqlx::query_scalar("SELECT position FROM log_checkpoints WHERE consumer = $1")
        .bind(projection)
        .fetch_one(ledger.db.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn exported_files_parse_back_to_the_tables_and_state_their_position() {
    let dir = temp_dir();
    let path = dir.path().join("autosalon.db");
    let app = spawn_app(&dir).await;
    two_customers(&app).await;
    app.stop().await;
    let ledger = Ledger::open(&database_url(&path)).await.unwrap();
    ledger.projections.catch_up_all().await.unwrap();

    let mut kinds = std::collections::BTreeSet::new();
    for projection in PROJECTIONS {
        let position = checkpoint(&ledger, projection).await;
        assert!(position > 0);

        // JSON Lines: a header line with the position, then every row of every table.
        let file = dir.path().join(format!("{projection}-export.jsonl"));
        let exported = export(
            ledger.db.pool(),
            projection,
            ExportFormat::Jsonl,
            Some(&file),
        )
        .await
        .unwrap();
        assert_eq!(exported.position, position);
        let text = std::fs::read_to_string(&file).unwrap();
        let mut lines = text
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap());
        let header = lines.next().unwrap();
        assert_eq!(header["projection"], projection);
        assert_eq!(header["position"], position);
        assert_eq!(header["tables"], serde_json::json!(tables(projection)));
        let rows: Vec<Value> = lines.collect();
        let mut expected = Vec::new();
        for table in tables(projection) {
            for row in json_rows(&ledger, table).await {
                expected.push(serde_json::json!({ "table": table, "row": row }));
            }
        }
        assert!(!expected.is_empty());
        assert_eq!(rows, expected, "{projection}");
        for row in &rows {
            for value in row["row"].as_object().unwrap().values() {
                kinds.insert(match value {
                    Value::Null => "null",
                    Value::Number(_) => "integer",
                    Value::String(_) => "text",
                    _ => "other",
                });
            }
        }

        // CSV: one file per table with a header row, and the position beside them.
        let csv_dir = dir.path().join(format!("{projection}-csv"));
        let exported = export(
            ledger.db.pool(),
            projection,
            ExportFormat::Csv,
            Some(&csv_dir),
        )
        .await
        .unwrap();
        assert_eq!(exported.position, position);
        let stated =
            std::fs::read_to_string(csv_dir.join(format!("{projection}.position"))).unwrap();
        assert_eq!(stated.trim().parse::<i64>().unwrap(), position);
        for table in tables(projection) {
            let mut reader = csv::Reader::from_path(csv_dir.join(format!("{table}.csv"))).unwrap();
            let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
            assert_eq!(header, columns(&ledger, table).await, "{table}");
            let records: Vec<Vec<String>> = reader
                .records()
                .map(|r| r.unwrap().iter().map(String::from).collect())
                .collect();
            assert_eq!(records, text_rows(&ledger, table).await, "{table}");
        }
    }
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        vec!["integer", "null", "text"],
        "every stored type was exported"
    );

    let refused = export(
        ledger.db.pool(),
        "sales",
        ExportFormat::Csv,
        Some(dir.path()),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        refused.contains("unknown projection \"sales\""),
        "{refused}"
    );
    for projector in projections::all_projectors() {
        assert!(refused.contains(projector.name()), "{refused}");
    }
}

#[tokio::test]
async fn a_read_model_of_another_version_is_refused_and_left_untouched() {
    let dir = temp_dir();
    let path = dir.path().join("autosalon.db");
    let app = spawn_app(&dir).await;
    two_customers(&app).await;
    app.stop().await;
    let ledger = Ledger::open(&database_url(&path)).await.unwrap();
    ledger.projections.catch_up_all().await.unwrap();
    // As if another build of the program had made this read model.
    sqlx::query("UPDATE log_checkpoints SET version = 99 WHERE consumer = 'catalog'")
        .execute(ledger.db.pool())
        .await
        .unwrap();
    let before = text_rows(&ledger, "catalog_vehicles").await;
    let err = export(
        ledger.db.pool(),
        "catalog",
        ExportFormat::Jsonl,
        Some(&dir.path().join("x.jsonl")),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("version 99"), "{err}");
    assert_eq!(text_rows(&ledger, "catalog_vehicles").await, before);
    assert!(!dir.path().join("x.jsonl").exists(), "nothing is written");
}
