//! Ledger properties over random scenarios driven through the real application.

/// Every row of the ledger's tables, as text, in a stable order.
pub async fn dump_ledger(ledger: &autosalon::Ledger) -> Vec<String> {
    let mut rows = Vec::new();
    for table in projections::Projector::tables(&projections::ledger::Ledger) {
        let columns: Vec<String> =
            sqlx::query_scalar(&format!("SELECT name FROM pragma_table_info('{table}')"))
                .fetch_all(ledger.db.pool())
                .await
                .unwrap();
        let quoted: Vec<String> = columns.iter().map(|c| format!("quote({c})")).collect();
        let sql = format!(
            "SELECT '{table}|' || {} FROM {table} ORDER BY 1",
            quoted.join(" || '|' || ")
        );
        rows.extend(
            sqlx::query_scalar::<_, String>(&sql)
                .fetch_all(ledger.db.pool())
                .await
                .unwrap(),
        );
    }
    rows
}
