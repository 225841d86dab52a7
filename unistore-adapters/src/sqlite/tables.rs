//! Verifying, profiling and sampling tables in an SQLite file. Read-only: no DDL, no writes.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension};
use unistore_core::sql::SqlDialect;
use unistore_core::table::Generated;
use unistore_core::table::{ColumnInfo, RenderRequest};
use unistore_core::{
    ColumnType, Error, ErrorKind, Result, StatementSpec, TableManager, TableProfile, TableRef, TableType,
    Value,
};

use super::config::SqliteConfig;
use super::pool::open_user_database;
use super::{map_error, run_blocking};

/// The table manager for SQLite tables.
#[derive(Debug, Clone)]
pub struct SqliteTableManager {
    config: SqliteConfig,
    conn: Arc<Mutex<Connection>>,
}

impl SqliteTableManager {
    /// Opens a connection of its own on the database file (which must exist).
    pub async fn open(config: &SqliteConfig) -> Result<Self> {
        let path = config.path.clone();
        let conn = run_blocking("open", move || open_user_database(&path)).await?;
        Ok(SqliteTableManager { config: config.clone(), conn: Arc::new(Mutex::new(conn)) })
    }

    async fn with_conn<T, F>(&self, what: &'static str, f: F) -> Result<T>
    where
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let conn = self.conn.clone();
        run_blocking(what, move || {
            // A poisoned lock only means an earlier call panicked; the connection itself is
            // still usable.
            let guard = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&guard)
        })
        .await
    }
}

#[async_trait]
impl TableManager for SqliteTableManager {
    fn table_type(&self) -> TableType {
        TableType::Sqlite
    }

    async fn profile(&self, table: &TableRef) -> Result<TableProfile> {
        if table.database.is_some() {
            return Err(Error::invalid(format!(
                "table `{table}` has three parts, but an SQLite file has no databases inside it: \
                 write the table as [schema.]name, where schema is `main` or an attached schema"
            )));
        }
        let table = table.clone();
        let path = self.config.path.display().to_string();
        self.with_conn("profile", move |conn| profile_table(conn, &table, &path)).await
    }

    async fn sample_values(&self, profile: &TableProfile, column: &str, limit: usize) -> Result<Vec<Value>> {
        let col = profile.column(column).ok_or_else(|| {
            Error::invalid(format!(
                "column `{column}` does not exist in {}: columns are {}",
                profile.table,
                profile.column_names().join(", ")
            ))
        })?;
        let dialect = SqlDialect::SQLITE;
        let quoted = dialect.quote_ident(&col.name);
        let sql = format!(
            "SELECT DISTINCT {quoted} FROM {} WHERE {quoted} IS NOT NULL ORDER BY random() LIMIT ?1",
            dialect.quote_table(&profile.table)
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with_conn("sample_values", move |conn| {
            let context = format!("sampling values with `{sql}`");
            let mut stmt = conn.prepare(&sql).map_err(|e| map_error(e, &context))?;
            let mut rows = stmt.query([limit]).map_err(|e| map_error(e, &context))?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(|e| map_error(e, &context))? {
                let value = row.get_ref(0).map_err(|e| map_error(e, &context))?;
                match value {
                    ValueRef::Integer(i) => out.push(Value::Int(i)),
                    ValueRef::Real(x) => out.push(Value::Float(x)),
                    ValueRef::Text(t) => out.push(Value::text(String::from_utf8_lossy(t))),
                    // A blob cannot be bound back as any `Value`; keys of such columns are
                    // left out of the pool rather than turned into something that never matches.
                    ValueRef::Blob(_) | ValueRef::Null => {}
                }
            }
            Ok(out)
        })
        .await
    }

    fn render(&self, profile: &TableProfile, request: &RenderRequest<'_>) -> Result<StatementSpec> {
        SqlDialect::SQLITE.render(profile, request)
    }
}

fn profile_table(conn: &Connection, table: &TableRef, path: &str) -> Result<TableProfile> {
    let schema = table.schema.clone().unwrap_or_else(|| "main".to_string());
    let dialect = SqlDialect::SQLITE;
    let ctx = |what: &str| format!("{what} of {table} in {path}");

    let schemas: Vec<String> = {
        let mut stmt = conn
            .prepare("SELECT name FROM pragma_database_list")
            .map_err(|e| map_error(e, &ctx("listing schemas")))?;
        let names = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| map_error(e, &ctx("listing schemas")))?;
        names
    };
    let Some(schema) = schemas.iter().find(|s| s.eq_ignore_ascii_case(&schema)).cloned() else {
        return Err(Error::backend(
            ErrorKind::NotFound,
            format!(
                "schema `{schema}` does not exist in {path}: SQLite schemas are `main` and attached \
                 databases ({}); write the table as name or main.name",
                schemas.join(", ")
            ),
        ));
    };
    let master = format!("{}.sqlite_master", dialect.quote_ident(&schema));

    // SQLite compares identifiers case-insensitively, so the lookup does too; the profile then
    // carries the name as the catalog spells it.
    let found: Option<(String, String)> = conn
        .query_row(
            &format!(
                "SELECT name, type FROM {master} WHERE lower(name) = lower(?1) \
                 AND type IN ('table', 'view') ORDER BY type = 'table' DESC LIMIT 1"
            ),
            [&table.name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(|e| map_error(e, &ctx("looking up")))?;
    let name = match found {
        Some((name, kind)) if kind == "table" => name,
        Some((name, kind)) => {
            return Err(Error::invalid(format!(
                "{schema}.{name} in {path} is a {kind}, not a table: benchmark a table"
            )))
        }
        None => {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT name FROM {master} WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
                     ORDER BY name LIMIT 20"
                ))
                .map_err(|e| map_error(e, &ctx("listing tables")))?;
            let tables = stmt
                .query_map([], |r| r.get::<_, String>(0))
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(|e| map_error(e, &ctx("listing tables")))?;
            let listing = if tables.is_empty() { "it has no tables".to_string() } else { tables.join(", ") };
            return Err(Error::backend(
                ErrorKind::NotFound,
                format!(
                    "table {table} does not exist in {path} (schema {schema}): check the name; \
                     tables there: {listing}"
                ),
            ));
        }
    };
    let resolved = TableRef { database: None, schema: table.schema.clone(), name: name.clone() };
    let quoted_table = dialect.quote_table(&resolved);

    // (name, declared type, not null, default, pk position, hidden: 2/3 = generated column)
    let raw_columns: Vec<(String, String, bool, bool, i64, i64)> = {
        let mut stmt = conn
            .prepare(
                "SELECT name, type, \"notnull\", dflt_value IS NOT NULL, pk, hidden \
                 FROM pragma_table_xinfo(?1, ?2) WHERE hidden <> 1 ORDER BY cid",
            )
            .map_err(|e| map_error(e, &ctx("reading the columns")))?;
        let rows = stmt
            .query_map([&name, &schema], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? != 0, r.get(3)?, r.get(4)?, r.get(5)?))
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| map_error(e, &ctx("reading the columns")))?;
        rows
    };
    let leading_index_columns =
        leading_index_columns(conn, &name, &schema).map_err(|e| map_error(e, &ctx("reading the indexes")))?;
    let mut pk: Vec<(i64, String)> =
        raw_columns.iter().filter(|c| c.4 > 0).map(|c| (c.4, c.0.clone())).collect();
    pk.sort();
    let primary_key: Vec<String> = pk.into_iter().map(|(_, n)| n).collect();
    // An `INTEGER PRIMARY KEY` column is the rowid: SQLite assigns it when no value is given.
    let rowid_alias = primary_key.len() == 1
        && raw_columns.iter().any(|c| c.4 == 1 && c.1.trim().eq_ignore_ascii_case("INTEGER"));
    let columns: Vec<ColumnInfo> = raw_columns
        .iter()
        .map(|(col, declared, not_null, has_default, pk_pos, hidden)| {
            let (column_type, max_length) = map_declared_type(declared);
            let rowid = rowid_alias && *pk_pos == 1;
            let generated = if rowid {
                // SQLite assigns the rowid (max + 1, or never reused with AUTOINCREMENT).
                Some(Generated::Sequence)
            } else if *hidden >= 2 || *has_default {
                Some(Generated::Expression)
            } else {
                None
            };
            ColumnInfo {
                name: col.clone(),
                column_type,
                native_type: declared.clone(),
                nullable: !not_null && *pk_pos == 0,
                has_default: *has_default || rowid || *hidden >= 2,
                max_length,
                generated,
                indexed: Some(rowid || leading_index_columns.iter().any(|c| c == col)),
            }
        })
        .collect();

    let row_count: i64 = conn
        .query_row(&format!("SELECT count(*) FROM {quoted_table}"), [], |r| r.get(0))
        .map_err(|e| map_error(e, &ctx("counting the rows")))?;

    let key_range = match primary_key.first().and_then(|k| columns.iter().find(|c| &c.name == k)) {
        Some(key) if key.column_type.is_integer() => {
            let k = dialect.quote_ident(&key.name);
            let (min, max): (ValueRefOwned, ValueRefOwned) = conn
                .query_row(&format!("SELECT min({k}), max({k}) FROM {quoted_table}"), [], |r| {
                    Ok((ValueRefOwned::from(r.get_ref(0)?), ValueRefOwned::from(r.get_ref(1)?)))
                })
                .map_err(|e| map_error(e, &ctx("reading the key range")))?;
            // SQLite stores whatever it is given; a key column holding non-integers has no
            // arithmetic key range.
            match (min, max) {
                (ValueRefOwned::Int(a), ValueRefOwned::Int(b)) => Some((a, b)),
                _ => None,
            }
        }
        _ => None,
    };
    let time_column = columns
        .iter()
        .find(|c| matches!(c.column_type, ColumnType::Timestamp | ColumnType::Date))
        .map(|c| c.name.clone());

    let indexes: Vec<String> = {
        let mut stmt = conn
            .prepare("SELECT name FROM pragma_index_list(?1, ?2) WHERE origin <> 'pk' ORDER BY name")
            .map_err(|e| map_error(e, &ctx("listing the indexes")))?;
        let names = stmt
            .query_map([&name, &schema], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| map_error(e, &ctx("listing the indexes")))?;
        names
    };

    Ok(TableProfile {
        table: resolved,
        table_type: TableType::Sqlite,
        columns,
        primary_key,
        row_estimate: u64::try_from(row_count).unwrap_or(0),
        key_range,
        time_column,
        indexes,
        triggers: triggers(conn, &name, &schema).map_err(|e| map_error(e, &ctx("listing the triggers")))?,
        foreign_keys: foreign_keys(conn, &name, &schema)
            .map_err(|e| map_error(e, &ctx("listing the foreign keys")))?,
    })
}

/// Columns that some complete (non-partial) index, the primary key's included, starts with.
fn leading_index_columns(conn: &Connection, table: &str, schema: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT ii.name FROM pragma_index_list(?1, ?2) il \
         JOIN pragma_index_info(il.name, ?2) ii WHERE ii.seqno = 0 AND il.partial = 0",
    )?;
    let rows = stmt.query_map([table, schema], |r| r.get::<_, Option<String>>(0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?.into_iter().flatten().collect())
}

fn triggers(conn: &Connection, table: &str, schema: &str) -> rusqlite::Result<Vec<String>> {
    let master = if schema.eq_ignore_ascii_case("temp") {
        "sqlite_temp_master".to_string()
    } else {
        format!("\"{}\".sqlite_master", schema.replace('"', "\"\""))
    };
    let mut stmt = conn.prepare(&format!(
        "SELECT name FROM {master} WHERE type = 'trigger' AND tbl_name = ?1 ORDER BY name"
    ))?;
    let rows = stmt.query_map([table], |r| r.get::<_, String>(0))?;
    rows.collect()
}

/// `col -> other(col)`, one per foreign key column.
fn foreign_keys(conn: &Connection, table: &str, schema: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT \"from\", \"table\", coalesce(\"to\", '') FROM pragma_foreign_key_list(?1, ?2) ORDER BY id, seq",
    )?;
    let rows = stmt.query_map([table, schema], |r| {
        let (from, other, to): (String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
        Ok(format!("{from} -> {other}({to})"))
    })?;
    rows.collect()
}

enum ValueRefOwned {
    Int(i64),
    Other,
}

impl From<ValueRef<'_>> for ValueRefOwned {
    fn from(v: ValueRef<'_>) -> Self {
        match v {
            ValueRef::Integer(i) => ValueRefOwned::Int(i),
            _ => ValueRefOwned::Other,
        }
    }
}

/// Maps a declared column type by SQLite's affinity rules (section 3.1 of "Datatypes In
/// SQLite"), refined where the name says more than the affinity: booleans, dates and times,
/// JSON, and the length of character types.
pub(crate) fn map_declared_type(declared: &str) -> (ColumnType, Option<u32>) {
    let upper = declared.trim().to_ascii_uppercase();
    let base = upper.split('(').next().unwrap_or("").trim();
    if base.contains("BOOL") {
        return (ColumnType::Boolean, None);
    }
    if base.contains("TIMESTAMP") || base.contains("DATETIME") || base == "TIME" {
        return (ColumnType::Timestamp, None);
    }
    if base == "DATE" {
        return (ColumnType::Date, None);
    }
    if base == "JSON" || base == "JSONB" {
        return (ColumnType::Json, None);
    }
    // Rule 1: INT anywhere gives INTEGER affinity.
    if upper.contains("INT") {
        return (ColumnType::Integer, None);
    }
    // Rule 2: CHAR, CLOB or TEXT gives TEXT affinity.
    if upper.contains("CHAR") || upper.contains("CLOB") || upper.contains("TEXT") {
        return (ColumnType::Text, declared_length(&upper));
    }
    // Rule 3: BLOB, or no type at all, gives BLOB affinity: nothing the engine can generate.
    if upper.contains("BLOB") || upper.is_empty() {
        let name = if upper.is_empty() { "BLOB".to_string() } else { declared.trim().to_string() };
        return (ColumnType::Other(name), None);
    }
    // Rule 4: REAL, FLOA or DOUB gives REAL affinity.
    if upper.contains("REAL") || upper.contains("FLOA") || upper.contains("DOUB") {
        return (ColumnType::Float, None);
    }
    // Rule 5: everything else has NUMERIC affinity.
    (ColumnType::Decimal, None)
}

fn declared_length(upper: &str) -> Option<u32> {
    let inner = upper.split_once('(')?.1.split_once(')')?.0;
    inner.split(',').next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::map_declared_type;
    use unistore_core::ColumnType;

    #[test]
    fn declared_types_follow_affinity_rules() {
        let cases = [
            ("INTEGER", ColumnType::Integer, None),
            ("BIGINT", ColumnType::Integer, None),
            ("VARCHAR(64)", ColumnType::Text, Some(64)),
            ("character(10)", ColumnType::Text, Some(10)),
            ("TEXT", ColumnType::Text, None),
            ("DOUBLE PRECISION", ColumnType::Float, None),
            ("FLOAT", ColumnType::Float, None),
            ("REAL", ColumnType::Float, None),
            ("NUMERIC(10,2)", ColumnType::Decimal, None),
            ("TIMESTAMP", ColumnType::Timestamp, None),
            ("DATETIME", ColumnType::Timestamp, None),
            ("DATE", ColumnType::Date, None),
            ("BOOLEAN", ColumnType::Boolean, None),
            ("", ColumnType::Other("BLOB".into()), None),
        ];
        for (declared, expected, len) in cases {
            assert_eq!(map_declared_type(declared), (expected, len), "{declared}");
        }
    }
}
