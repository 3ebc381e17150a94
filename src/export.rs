//! `autosalon export`: writes every table of one read model, together with the global position its
//! rows reflect, as CSV or JSON Lines.
//!
//! The rows of every table and the projector's checkpoint are read in one read transaction, so the
//! stated position is exactly the one the rows reflect, even while a server keeps projecting.
//!
//! # Formats
//! - `jsonl`: one file (`--output FILE`, or `DIR/<projection>.jsonl` when `--output` is a
//!   directory, or standard output when absent). The first line is
//!   `{"projection": NAME, "version": V, "position": N, "tables": [..]}`; every other line is
//!   `{"table": TABLE, "row": {COLUMN: VALUE, ..}}` with integers as numbers, text as strings and
//!   NULL as `null`, tables in the projector's order, rows in insertion order on SQLite (PostgreSQL
//!   keeps no insertion order: there rows are sorted by each column in turn).
//! - `csv`: a directory (`--output DIR`, default the current one, created if missing) with one
//!   `<table>.csv` per table (a header row of column names, then one record per row, RFC 4180
//!   quoting, CRLF line ends; NULL is an empty field) and `<projection>.position` holding the position
//!   as one decimal line.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use eventstore::{Backend, DbPool};
use serde_json::{Value, json};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row, TypeInfo, ValueRef};

/// How the rows are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// One `<table>.csv` per table plus `<projection>.position`, in a directory.
    Csv,
    /// One JSON object per line: a header line with the position, then one line per row.
    Jsonl,
}

/// What was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exported {
    /// The global position every exported row reflects.
    pub position: i64,
    /// Rows written per table, in the projector's table order.
    pub rows: Vec<(String, usize)>,
    /// The files written (none when JSON Lines went to standard output).
    pub files: Vec<PathBuf>,
}

/// One column value, as the database stored it (read models hold only integers, text and NULL).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cell {
    Null,
    Integer(i64),
    Text(String),
}

impl Cell {
    fn csv(&self) -> String {
        match self {
            Cell::Null => String::new(),
            Cell::Integer(n) => n.to_string(),
            Cell::Text(text) => text.clone(),
        }
    }

    fn json(&self) -> Value {
        match self {
            Cell::Null => Value::Null,
            Cell::Integer(n) => json!(n),
            Cell::Text(text) => json!(text),
        }
    }
}

/// One table's columns and rows.
struct Table {
    name: String,
    columns: Vec<String>,
    rows: Vec<Vec<Cell>>,
}

/// Exports `projection` from the database behind `pool`. Unknown names are refused with the list
/// of valid ones.
pub async fn export(
    pool: &DbPool,
    projection: &str,
    format: ExportFormat,
    output: Option<&Path>,
) -> anyhow::Result<Exported> {
    let projectors = projections::all_projectors();
    let Some(projector) = projectors.iter().find(|p| p.name() == projection) else {
        let names: Vec<&str> = projectors.iter().map(|p| p.name()).collect();
        bail!(
            "unknown projection {projection:?}; valid projections: {}",
            names.join(", ")
        );
    };
    // One read transaction: the checkpoint and every table as of one instant.
    let backend = Backend::of(pool);
    let mut tx = pool
        .begin_with(backend.begin_snapshot())
        .await
        .context("opening a read transaction")?;
    let checkpoint: Option<(i64, i64)> =
        sqlx::query_as("SELECT position, version FROM log_checkpoints WHERE consumer = $1")
            .bind(projection)
            .fetch_optional(&mut *tx)
            .await
            .context("reading the checkpoint")?;
    let Some((position, version)) = checkpoint else {
        bail!(
            "the read model {projection} was never built in this database: run `autosalon serve` or `autosalon rebuild {projection}` first"
        );
    };
    // Export only reads: a read model built by another version of this program has other tables,
    // and it is that program's (or `rebuild`'s) business to replace them, never an export's.
    if version != projector.version() {
        bail!(
            "the read model {projection} in this database is version {version}, this program's is {}; \
             export it with the matching program, or rebuild it first",
            projector.version()
        );
    }
    let mut tables = Vec::new();
    for name in projector.tables() {
        tables.push(
            read_table(&mut tx, backend, name)
                .await
                .with_context(|| format!("reading table {name}"))?,
        );
    }
    tx.rollback().await?;
    let rows = tables
        .iter()
        .map(|t| (t.name.clone(), t.rows.len()))
        .collect();
    let files = match format {
        ExportFormat::Jsonl => {
            write_jsonl(projection, projector.version(), position, &tables, output)?
        }
        ExportFormat::Csv => write_csv(projection, position, &tables, output)?,
    };
    Ok(Exported {
        position,
        rows,
        files,
    })
}

/// The columns of a table, in their declared order.
pub async fn table_columns(
    conn: &mut AnyConnection,
    backend: Backend,
    name: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let sql = match backend {
        Backend::Sqlite => "SELECT name FROM pragma_table_info($1) ORDER BY cid",
        Backend::Postgres => {
            "SELECT CAST(column_name AS TEXT) FROM information_schema.columns
              WHERE table_schema = current_schema() AND table_name = $1
              ORDER BY ordinal_position"
        }
    };
    sqlx::query_scalar(sql)
        .bind(name)
        .fetch_all(&mut *conn)
        .await
}

async fn read_table(
    conn: &mut AnyConnection,
    backend: Backend,
    name: &str,
) -> anyhow::Result<Table> {
    // `name` comes from a projector's own table list, never from input.
    let columns = table_columns(conn, backend, name).await?;
    if columns.is_empty() {
        bail!("table {name} does not exist (has the database been migrated?)");
    }
    // Rows in the order they were written on SQLite; PostgreSQL has no such order, so there they
    // are sorted by every column, which is as stable.
    let order = match backend {
        Backend::Sqlite => "rowid".to_string(),
        Backend::Postgres => (1..=columns.len())
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(", "),
    };
    let records: Vec<AnyRow> = sqlx::query(&format!("SELECT * FROM {name} ORDER BY {order}"))
        .fetch_all(&mut *conn)
        .await?;
    let mut rows = Vec::with_capacity(records.len());
    for record in &records {
        let mut cells = Vec::with_capacity(columns.len());
        for (index, column) in columns.iter().enumerate() {
            cells.push(cell(record, index).with_context(|| format!("column {column}"))?);
        }
        rows.push(cells);
    }
    Ok(Table {
        name: name.to_string(),
        columns,
        rows,
    })
}

/// Reads one value by its stored (dynamic) type, not the declared one.
fn cell(row: &AnyRow, index: usize) -> anyhow::Result<Cell> {
    let raw = row.try_get_raw(index)?;
    if raw.is_null() {
        return Ok(Cell::Null);
    }
    let kind = raw.type_info().name().to_string();
    match kind.as_str() {
        "INTEGER" | "BIGINT" | "SMALLINT" => Ok(Cell::Integer(row.try_get(index)?)),
        "TEXT" => Ok(Cell::Text(row.try_get(index)?)),
        other => bail!("stored type {other} is not exported (read models hold INTEGER and TEXT)"),
    }
}

fn write_jsonl(
    projection: &str,
    version: i64,
    position: i64,
    tables: &[Table],
    output: Option<&Path>,
) -> anyhow::Result<Vec<PathBuf>> {
    let (mut out, files): (Box<dyn Write>, Vec<PathBuf>) = match output {
        None => (Box::new(std::io::stdout().lock()), Vec::new()),
        Some(path) => {
            let path = if path.is_dir() {
                path.join(format!("{projection}.jsonl"))
            } else {
                path.to_path_buf()
            };
            let file = std::fs::File::create(&path)
                .with_context(|| format!("creating {}", path.display()))?;
            (Box::new(std::io::BufWriter::new(file)), vec![path])
        }
    };
    let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
    let header = json!({ "projection": projection, "version": version, "position": position, "tables": names });
    writeln!(out, "{header}")?;
    for table in tables {
        for row in &table.rows {
            let object: serde_json::Map<String, Value> = table
                .columns
                .iter()
                .zip(row)
                .map(|(column, cell)| (column.clone(), cell.json()))
                .collect();
            writeln!(out, "{}", json!({ "table": table.name, "row": object }))?;
        }
    }
    out.flush()?;
    Ok(files)
}

fn write_csv(
    projection: &str,
    position: i64,
    tables: &[Table],
    output: Option<&Path>,
) -> anyhow::Result<Vec<PathBuf>> {
    let dir = output.unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut files = Vec::new();
    for table in tables {
        let path = dir.join(format!("{}.csv", table.name));
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_path(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        writer.write_record(&table.columns)?;
        for row in &table.rows {
            writer.write_record(row.iter().map(Cell::csv))?;
        }
        writer.flush()?;
        files.push(path);
    }
    let path = dir.join(format!("{projection}.position"));
    std::fs::write(&path, format!("{position}\n"))
        .with_context(|| format!("writing {}", path.display()))?;
    files.push(path);
    Ok(files)
}
