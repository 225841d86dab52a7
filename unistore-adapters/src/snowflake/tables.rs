//! Table managers for Snowflake standard, hybrid and interactive tables.
//!
//! All three are read-only: they look the table up in `SHOW TABLES` (which says whether it is
//! hybrid or interactive and holds the row count from metadata), read its columns from
//! `INFORMATION_SCHEMA.COLUMNS` (identity / `AUTOINCREMENT` columns and defaults included), its
//! key from `SHOW PRIMARY KEYS`, its foreign keys from `SHOW IMPORTED KEYS` and, for hybrid
//! tables, its indexes from `SHOW INDEXES`; they never issue DDL. Snowflake has no triggers.
//!
//! `indexed` is known for hybrid tables only (the primary key and secondary indexes are real
//! indexes there): `true` for the leading column of the key or of an index, `false` for the
//! other columns. Standard and interactive tables have no indexes (lookups rely on pruning
//! micro-partitions), which `indexed` cannot express: it stays `None` there.

use std::sync::Arc;

use async_trait::async_trait;
use snowflake_connector_rs::{CellValue, DynamicRow};
use unistore_core::sql::SqlDialect;
use unistore_core::table::{ColumnInfo, Generated, RenderRequest};
use unistore_core::{
    ColumnType, Error, ErrorKind, QueryKind, Result, StatementSpec, TableManager, TableProfile, TableRef,
    TableType, Value,
};

use super::pool::{cell_i64, cell_text, SessionPool};

/// Quotes an identifier only when it is not a plain one, so that `orders` resolves to `ORDERS`
/// as Snowflake users expect, while `"Mixed Case"` names still work.
pub(crate) fn ident(name: &str) -> String {
    let plain = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if plain {
        name.to_string()
    } else {
        SqlDialect::SNOWFLAKE.quote_ident(name)
    }
}

/// A row of `SHOW TABLES` for the table, and what it says about the table.
struct CatalogEntry {
    table: TableRef,
    table_type: TableType,
    rows: u64,
}

pub(crate) fn column_index(rows: &[DynamicRow], name: &str) -> Option<usize> {
    rows.first()?.schema().columns().iter().find(|c| c.name().eq_ignore_ascii_case(name)).map(|c| c.index())
}

pub(crate) fn text_at(row: &DynamicRow, index: Option<usize>) -> Option<String> {
    index.and_then(|i| row.value_at(i).ok()).and_then(cell_text)
}

fn truthy(v: Option<String>) -> bool {
    v.is_some_and(|s| matches!(s.trim().to_ascii_uppercase().as_str(), "Y" | "YES" | "TRUE" | "1"))
}

/// The type `SHOW TABLES` gives one of its rows: hybrid by `is_hybrid`, interactive by
/// `is_interactive`. `None` when the row is not hybrid and the account's `SHOW TABLES` has no
/// `is_interactive` column: then `SHOW INTERACTIVE TABLES` says whether it is interactive.
pub(crate) fn listed_type(rows: &[DynamicRow], row: &DynamicRow) -> Option<TableType> {
    if truthy(text_at(row, column_index(rows, "is_hybrid"))) {
        return Some(TableType::Hybrid);
    }
    let i = column_index(rows, "is_interactive")?;
    Some(if truthy(text_at(row, Some(i))) { TableType::Interactive } else { TableType::Standard })
}

/// The `rows` figure of a `SHOW TABLES` row (from metadata; `None` when it has none).
pub(crate) fn listed_rows(rows: &[DynamicRow], row: &DynamicRow) -> Option<u64> {
    let i = column_index(rows, "rows")?;
    row.value_at(i).ok().and_then(cell_i64).map(|n| n.max(0) as u64)
}

/// The primary keys in rows of `SHOW PRIMARY KEYS`, by database, schema and table, each with
/// its columns in key order. Columns of one `key_sequence` keep the order the server listed them
/// in (the emulator numbers every column 1).
pub(crate) fn primary_keys(rows: &[DynamicRow]) -> Vec<(KeyOwner, Vec<String>)> {
    let idx = |n: &str| column_index(rows, n);
    let (i_db, i_schema, i_table, i_col, i_seq) = (
        idx("database_name"),
        idx("schema_name"),
        idx("table_name"),
        idx("column_name"),
        idx("key_sequence"),
    );
    let mut keys: Vec<(KeyOwner, Vec<(i64, String)>)> = Vec::new();
    for r in rows {
        let (Some(table), Some(column)) = (text_at(r, i_table), text_at(r, i_col)) else { continue };
        let owner = KeyOwner { database: text_at(r, i_db), schema: text_at(r, i_schema), table };
        let seq = i_seq.and_then(|i| r.value_at(i).ok()).and_then(cell_i64).unwrap_or(0);
        match keys.iter_mut().find(|(o, _)| *o == owner) {
            Some((_, columns)) => columns.push((seq, column)),
            None => keys.push((owner, vec![(seq, column)])),
        }
    }
    keys.into_iter()
        .map(|(owner, mut columns)| {
            columns.sort_by_key(|(seq, _)| *seq);
            (owner, columns.into_iter().map(|(_, c)| c).collect())
        })
        .collect()
}

/// The table a primary key of `SHOW PRIMARY KEYS` belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyOwner {
    pub(crate) database: Option<String>,
    pub(crate) schema: Option<String>,
    pub(crate) table: String,
}

/// The shared catalog logic of the three managers.
#[derive(Clone)]
pub(crate) struct SnowflakeCatalog {
    pool: Arc<SessionPool>,
}

impl SnowflakeCatalog {
    pub(crate) fn new(pool: Arc<SessionPool>) -> Self {
        SnowflakeCatalog { pool }
    }

    fn location(&self, table: &TableRef) -> Result<(String, String)> {
        let config = self.pool.config();
        let database = table.database.clone().or_else(|| config.database.clone());
        let schema = table.schema.clone().or_else(|| config.schema.clone());
        match (database, schema) {
            (Some(d), Some(s)) => Ok((d, s)),
            _ => Err(Error::invalid(format!(
                "table {table} needs a database and a schema: write it as DATABASE.SCHEMA.TABLE or put \
                 /DATABASE/SCHEMA in the snowflake:// URL"
            ))),
        }
    }

    async fn entry(&self, table: &TableRef) -> Result<CatalogEntry> {
        let (database, schema) = self.location(table)?;
        let sql =
            format!("SHOW TABLES LIKE '{}' IN SCHEMA {}.{}", table.name, ident(&database), ident(&schema));
        let rows = self.pool.rows(&sql, &[]).await.map_err(|e| {
            if e.kind() == ErrorKind::NotFound {
                let message = format!(
                    "schema {database}.{schema} of table {table} does not exist or is not visible: {e}"
                );
                e.with_message(message)
            } else {
                e
            }
        })?;
        let (i_name, i_db, i_schema) = (
            column_index(&rows, "name"),
            column_index(&rows, "database_name"),
            column_index(&rows, "schema_name"),
        );
        let candidates: Vec<&DynamicRow> = rows
            .iter()
            .filter(|r| text_at(r, i_name).is_some_and(|n| n.eq_ignore_ascii_case(&table.name)))
            .collect();
        // An exact-case match wins (quoted names), else the unique case-insensitive one.
        let row = candidates
            .iter()
            .find(|r| text_at(r, i_name).as_deref() == Some(table.name.as_str()))
            .or_else(|| if candidates.len() == 1 { candidates.first() } else { None })
            .ok_or_else(|| {
                Error::backend(
                    ErrorKind::NotFound,
                    format!(
                        "table {table} does not exist in {database}.{schema}, or the role cannot see it \
                         (SHOW TABLES found {} match(es))",
                        candidates.len()
                    ),
                )
            })?;
        let name = text_at(row, i_name).unwrap_or_else(|| table.name.clone());
        let resolved = TableRef {
            database: Some(text_at(row, i_db).unwrap_or(database.clone())),
            schema: Some(text_at(row, i_schema).unwrap_or(schema.clone())),
            name,
        };
        let table_type = match listed_type(&rows, row) {
            Some(t) => t,
            None if self.listed_as_interactive(&resolved).await => TableType::Interactive,
            None => TableType::Standard,
        };
        let rows_meta = listed_rows(&rows, row);
        Ok(CatalogEntry { table: resolved, table_type, rows: rows_meta.unwrap_or(0) })
    }

    /// Accounts without the `is_interactive` column in `SHOW TABLES` still have
    /// `SHOW INTERACTIVE TABLES`.
    async fn listed_as_interactive(&self, table: &TableRef) -> bool {
        let (Some(db), Some(schema)) = (&table.database, &table.schema) else { return false };
        let sql = format!(
            "SHOW INTERACTIVE TABLES LIKE '{}' IN SCHEMA {}.{}",
            table.name,
            ident(db),
            ident(schema)
        );
        match self.pool.rows(&sql, &[]).await {
            Ok(rows) => {
                let i = column_index(&rows, "name");
                rows.iter().any(|r| text_at(r, i).as_deref() == Some(table.name.as_str()))
            }
            Err(e) => {
                tracing::debug!("SHOW INTERACTIVE TABLES failed, assuming {table} is not interactive: {e}");
                false
            }
        }
    }

    /// The real type of a table.
    pub(crate) async fn detect_type(&self, table: &TableRef) -> Result<TableType> {
        Ok(self.entry(table).await?.table_type)
    }

    async fn columns(&self, table: &TableRef) -> Result<Vec<ColumnInfo>> {
        let (Some(db), Some(schema)) = (&table.database, &table.schema) else {
            return Err(Error::invalid(format!("table {table} is not fully qualified")));
        };
        let sql = format!(
            "SELECT COLUMN_NAME, DATA_TYPE, IS_NULLABLE, COLUMN_DEFAULT, CHARACTER_MAXIMUM_LENGTH, NUMERIC_SCALE, \
             IS_IDENTITY FROM {}.INFORMATION_SCHEMA.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
             ORDER BY ORDINAL_POSITION",
            ident(db)
        );
        let rows = self.pool.rows(&sql, &[Value::text(schema), Value::text(&table.name)]).await?;
        let columns: Vec<ColumnInfo> = rows
            .iter()
            .map(|r| {
                let at = |i: usize| r.value_at(i).ok();
                let name = at(0).and_then(cell_text).unwrap_or_default();
                let native = at(1).and_then(cell_text).unwrap_or_default().to_ascii_uppercase();
                let scale = at(5).and_then(cell_i64).unwrap_or(0);
                let default = at(3).and_then(cell_text);
                let generated = generated(truthy(at(6).and_then(cell_text)), default.as_deref());
                ColumnInfo {
                    column_type: map_type(&native, scale),
                    nullable: truthy(at(2).and_then(cell_text)),
                    has_default: default.is_some() || generated.is_some(),
                    max_length: at(4).and_then(cell_i64).and_then(|n| u32::try_from(n).ok()),
                    generated,
                    indexed: None,
                    native_type: native,
                    name,
                }
            })
            .collect();
        if columns.is_empty() {
            return Err(Error::backend(
                ErrorKind::NotFound,
                format!(
                    "INFORMATION_SCHEMA.COLUMNS lists no columns for {table}: check the role's privileges"
                ),
            ));
        }
        Ok(columns)
    }

    async fn primary_key(&self, table: &TableRef) -> Result<Vec<String>> {
        let sql = format!("SHOW PRIMARY KEYS IN TABLE {}", qualified(table));
        let rows = self.pool.rows(&sql, &[]).await?;
        let same = |v: &Option<String>, want: &Option<String>| match (v, want) {
            (Some(v), Some(w)) => v == w,
            _ => true,
        };
        Ok(primary_keys(&rows)
            .into_iter()
            .filter(|(o, _)| {
                same(&o.database, &table.database) && same(&o.schema, &table.schema) && o.table == table.name
            })
            .flat_map(|(_, columns)| columns)
            .collect())
    }

    async fn row_estimate(&self, table: &TableRef, from_show: u64) -> u64 {
        if from_show > 0 {
            return from_show;
        }
        // SHOW TABLES reports 0 for some table kinds (and on the emulator): ask the metadata view.
        let (Some(db), Some(schema)) = (&table.database, &table.schema) else { return 0 };
        let sql = format!(
            "SELECT ROW_COUNT FROM {}.INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            ident(db)
        );
        match self.pool.rows(&sql, &[Value::text(schema), Value::text(&table.name)]).await {
            Ok(rows) => {
                rows.first().and_then(|r| r.value_at(0).ok()).and_then(cell_i64).unwrap_or(0).max(0) as u64
            }
            Err(e) => {
                tracing::debug!("no row count for {table}: {e}");
                0
            }
        }
    }

    /// Indexes of a hybrid table with their columns (the primary key's index included), or
    /// `None` when `SHOW INDEXES` fails.
    async fn indexes(&self, table: &TableRef) -> Option<Vec<(String, Vec<String>)>> {
        let sql = format!("SHOW INDEXES IN TABLE {}", qualified(table));
        match self.pool.rows(&sql, &[]).await {
            Ok(rows) => {
                let (i_name, i_columns) = (column_index(&rows, "name"), column_index(&rows, "columns"));
                Some(
                    rows.iter()
                        .filter_map(|r| {
                            let columns =
                                text_at(r, i_columns).map(|c| list_of_names(&c)).unwrap_or_default();
                            text_at(r, i_name).map(|n| (n, columns))
                        })
                        .collect(),
                )
            }
            Err(e) => {
                tracing::debug!("SHOW INDEXES on {table} failed: {e}");
                None
            }
        }
    }

    /// Foreign keys as `COL -> DB.SCHEMA.TABLE(COL)` (composite keys list their columns in
    /// order), from `SHOW IMPORTED KEYS`; none when the statement fails.
    async fn foreign_keys(&self, table: &TableRef) -> Vec<String> {
        let sql = format!("SHOW IMPORTED KEYS IN TABLE {}", qualified(table));
        let rows = match self.pool.rows(&sql, &[]).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::debug!("SHOW IMPORTED KEYS on {table} failed: {e}");
                return Vec::new();
            }
        };
        let idx = |n: &str| column_index(&rows, n);
        let (i_name, i_seq, i_col) = (idx("fk_name"), idx("key_sequence"), idx("fk_column_name"));
        let (i_pk_db, i_pk_schema, i_pk_table, i_pk_col) =
            (idx("pk_database_name"), idx("pk_schema_name"), idx("pk_table_name"), idx("pk_column_name"));
        let mut keys: std::collections::BTreeMap<String, ForeignKey> = std::collections::BTreeMap::new();
        for r in &rows {
            let target = [text_at(r, i_pk_db), text_at(r, i_pk_schema), text_at(r, i_pk_table)]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(".");
            let name = text_at(r, i_name).unwrap_or_else(|| target.clone());
            let sequence = i_seq.and_then(|i| r.value_at(i).ok()).and_then(cell_i64).unwrap_or(0);
            let entry = keys.entry(name).or_insert_with(|| (target, Vec::new()));
            entry.1.push((
                sequence,
                text_at(r, i_col).unwrap_or_default(),
                text_at(r, i_pk_col).unwrap_or_default(),
            ));
        }
        keys.into_values()
            .map(|(target, mut columns)| {
                columns.sort();
                let from: Vec<&str> = columns.iter().map(|(_, c, _)| c.as_str()).collect();
                let to: Vec<&str> = columns.iter().map(|(_, _, c)| c.as_str()).collect();
                format!("{} -> {target}({})", from.join(", "), to.join(", "))
            })
            .collect()
    }

    async fn warn_unless_interactive_warehouse(&self) {
        let Some(warehouse) = self.pool.config().warehouse.clone() else { return };
        let sql = format!("SHOW WAREHOUSES LIKE '{}'", warehouse.replace('\'', "''"));
        if let Ok(rows) = self.pool.rows(&sql, &[]).await {
            let i = column_index(&rows, "type");
            if let Some(kind) = rows.first().and_then(|r| text_at(r, i)) {
                if !kind.eq_ignore_ascii_case("INTERACTIVE") {
                    tracing::warn!(
                        "warehouse {warehouse} is a {kind} warehouse: interactive tables are meant to be \
                         queried through an interactive warehouse, so the figures will not show their latency"
                    );
                }
            }
        }
    }

    /// Verifies the table is of `expected` type and profiles it.
    pub(crate) async fn profile(&self, table: &TableRef, expected: TableType) -> Result<TableProfile> {
        let entry = self.entry(table).await?;
        // The manager a caller picked is its declaration of the table's type.
        TableType::check_declared(Some(expected), entry.table_type, &entry.table)?;
        let table = entry.table;
        let columns = self.columns(&table).await?;
        let primary_key = self.primary_key(&table).await?;
        let row_estimate = self.row_estimate(&table, entry.rows).await;
        let time_column = columns
            .iter()
            .find(|c| matches!(c.column_type, ColumnType::Timestamp | ColumnType::Date))
            .map(|c| c.name.clone());
        let mut profile = TableProfile {
            table,
            table_type: expected,
            columns,
            primary_key,
            row_estimate,
            key_range: None,
            time_column,
            indexes: Vec::new(),
            triggers: Vec::new(),
            foreign_keys: Vec::new(),
        };
        // A primary key implies NOT NULL, whatever the catalog says about the column.
        for c in profile.columns.iter_mut() {
            if profile.primary_key.contains(&c.name) {
                c.nullable = false;
            }
        }
        if let Some(key) = profile.primary_key.first().and_then(|k| profile.column(k)).cloned() {
            if key.column_type.is_integer() {
                let k = SqlDialect::SNOWFLAKE.quote_ident(&key.name);
                let sql = format!(
                    "SELECT MIN({k}), MAX({k}) FROM {}",
                    SqlDialect::SNOWFLAKE.quote_table(&profile.table)
                );
                let rows = self.pool.rows(&sql, &[]).await?;
                if let Some(r) = rows.first() {
                    let min = r.value_at(0).ok().and_then(cell_i64);
                    let max = r.value_at(1).ok().and_then(cell_i64);
                    profile.key_range = min.zip(max);
                }
            }
        }
        match expected {
            TableType::Hybrid => {
                let indexes = self.indexes(&profile.table).await;
                mark_indexed(&mut profile, indexes.as_deref());
                profile.indexes = indexes.unwrap_or_default().into_iter().map(|(name, _)| name).collect();
            }
            TableType::Interactive => self.warn_unless_interactive_warehouse().await,
            _ => {}
        }
        profile.foreign_keys = self.foreign_keys(&profile.table).await;
        Ok(profile)
    }

    /// Samples up to `limit` distinct non-null values of `column`.
    pub(crate) async fn sample(
        &self,
        profile: &TableProfile,
        column: &str,
        limit: usize,
    ) -> Result<Vec<Value>> {
        let info = profile.column(column).ok_or_else(|| {
            Error::invalid(format!(
                "column `{column}` does not exist in {}: columns are {}",
                profile.table,
                profile.column_names().join(", ")
            ))
        })?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let c = SqlDialect::SNOWFLAKE.quote_ident(&info.name);
        let t = SqlDialect::SNOWFLAKE.quote_table(&profile.table);
        // SAMPLE reads a fraction of the micro-partitions instead of the whole table; when it
        // yields too few distinct values (duplicates, or a table kind without SAMPLE), fall back
        // to a random order over the distinct values.
        let sampled = format!(
            "SELECT DISTINCT {c} FROM {t} SAMPLE ({} ROWS) WHERE {c} IS NOT NULL LIMIT {limit}",
            limit.saturating_mul(2).min(1_000_000)
        );
        let wanted = limit.min(usize::try_from(profile.row_estimate).unwrap_or(usize::MAX));
        let rows = match self.pool.rows(&sampled, &[]).await {
            Ok(rows) if rows.len() >= wanted => rows,
            Ok(_) | Err(_) => {
                let random = format!(
                    "SELECT {c} FROM (SELECT DISTINCT {c} FROM {t} WHERE {c} IS NOT NULL) ORDER BY RANDOM() LIMIT {limit}"
                );
                self.pool.rows(&random, &[]).await?
            }
        };
        Ok(rows.iter().filter_map(|r| r.value_at(0).ok()).map(|v| to_value(v, &info.column_type)).collect())
    }
}

/// A foreign key being read: the referenced table, and (sequence, column, referenced column).
type ForeignKey = (String, Vec<(i64, String, String)>);

/// `DB.SCHEMA.TABLE` for `SHOW ... IN TABLE`.
fn qualified(table: &TableRef) -> String {
    let q = |p: &Option<String>| p.as_deref().map(ident).unwrap_or_default();
    format!("{}.{}.{}", q(&table.database), q(&table.schema), ident(&table.name))
}

/// How Snowflake fills a column: identity (`AUTOINCREMENT` / `IDENTITY`, reported as
/// `IS_IDENTITY = 'YES'`) and `DEFAULT seq.NEXTVAL` advance a sequence; any other default is an
/// expression.
pub(crate) fn generated(identity: bool, default: Option<&str>) -> Option<Generated> {
    match default {
        _ if identity => Some(Generated::Sequence),
        Some(d) if d.to_ascii_uppercase().contains("NEXTVAL") => Some(Generated::Sequence),
        Some(_) => Some(Generated::Expression),
        None => None,
    }
}

/// A column list as `SHOW INDEXES` prints it (`["A","B"]` or `[A, B]`).
fn list_of_names(text: &str) -> Vec<String> {
    text.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(',')
        .map(|c| c.trim().trim_matches('"').to_string())
        .filter(|c| !c.is_empty())
        .collect()
}

/// Hybrid tables: the leading column of the primary key and of every index is indexed; when
/// the indexes are known, every other column is not.
fn mark_indexed(profile: &mut TableProfile, indexes: Option<&[(String, Vec<String>)]>) {
    let mut leading: Vec<&str> = profile.primary_key.first().map(String::as_str).into_iter().collect();
    leading.extend(
        indexes.unwrap_or_default().iter().filter_map(|(_, columns)| columns.first()).map(String::as_str),
    );
    let leading: Vec<String> = leading.into_iter().map(str::to_string).collect();
    for column in profile.columns.iter_mut() {
        let is_leading = leading.iter().any(|l| l.eq_ignore_ascii_case(&column.name));
        column.indexed = match (is_leading, indexes.is_some()) {
            (true, _) => Some(true),
            (false, true) => Some(false),
            (false, false) => None,
        };
    }
}

/// Maps a Snowflake `DATA_TYPE` to the engine's column types.
pub(crate) fn map_type(native: &str, scale: i64) -> ColumnType {
    match native {
        "NUMBER" | "DECIMAL" | "NUMERIC" | "FIXED" if scale > 0 => ColumnType::Decimal,
        "NUMBER" | "DECIMAL" | "NUMERIC" | "FIXED" | "INT" | "INTEGER" | "BIGINT" | "SMALLINT"
        | "TINYINT" | "BYTEINT" => ColumnType::Integer,
        "FLOAT" | "FLOAT4" | "FLOAT8" | "DOUBLE" | "DOUBLE PRECISION" | "REAL" => ColumnType::Float,
        "TEXT" | "VARCHAR" | "CHAR" | "CHARACTER" | "STRING" => ColumnType::Text,
        "BOOLEAN" => ColumnType::Boolean,
        "DATE" => ColumnType::Date,
        n if n.starts_with("TIMESTAMP") || n == "DATETIME" => ColumnType::Timestamp,
        "VARIANT" | "OBJECT" | "ARRAY" => ColumnType::Json,
        other => ColumnType::Other(other.to_string()),
    }
}

/// A value read from Snowflake, as the engine binds it for a column of `column_type`.
pub(crate) fn to_value(v: &CellValue, column_type: &ColumnType) -> Value {
    match v {
        CellValue::Null => Value::Null,
        CellValue::Boolean(b) => Value::Bool(*b),
        CellValue::Integer(i) => {
            i64::try_from(*i).map(Value::Int).unwrap_or_else(|_| Value::text(i.to_string()))
        }
        CellValue::Float(f) => Value::Float(*f),
        CellValue::Decimal(d) if *column_type == ColumnType::Integer => {
            d.raw().parse().map(Value::Int).unwrap_or_else(|_| Value::text(d.raw()))
        }
        CellValue::Decimal(d) => Value::text(d.raw()),
        CellValue::String(s) => Value::text(s),
        CellValue::TimestampNtz(t) => Value::Timestamp(t.and_utc().timestamp_micros()),
        CellValue::TimestampLtz(t) => Value::Timestamp(t.timestamp_micros()),
        CellValue::TimestampTz(t) => Value::Timestamp(t.timestamp_micros()),
        CellValue::Date(d) => {
            Value::Timestamp(d.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp_micros()).unwrap_or(0))
        }
        other => Value::text(cell_text(other).unwrap_or_default()),
    }
}

const INTERACTIVE_KINDS: [QueryKind; 4] =
    [QueryKind::PointLookup, QueryKind::RangeScan, QueryKind::Insert, QueryKind::CustomSql];

macro_rules! manager {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name {
            catalog: SnowflakeCatalog,
        }

        impl $name {
            pub(crate) fn new(catalog: SnowflakeCatalog) -> Self {
                $name { catalog }
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }
    };
}

manager!(
    /// Standard Snowflake tables.
    SnowflakeStandardTableManager
);
manager!(
    /// Hybrid (Unistore) tables: also reads their secondary indexes.
    SnowflakeHybridTableManager
);
manager!(
    /// Interactive tables: read-mostly, so UPDATE is refused.
    SnowflakeInteractiveTableManager
);

#[async_trait]
impl TableManager for SnowflakeStandardTableManager {
    fn table_type(&self) -> TableType {
        TableType::Standard
    }

    async fn profile(&self, table: &TableRef) -> Result<TableProfile> {
        self.catalog.profile(table, TableType::Standard).await
    }

    async fn sample_values(&self, profile: &TableProfile, column: &str, limit: usize) -> Result<Vec<Value>> {
        self.catalog.sample(profile, column, limit).await
    }

    fn render(&self, profile: &TableProfile, request: &RenderRequest<'_>) -> Result<StatementSpec> {
        SqlDialect::SNOWFLAKE.render(profile, request)
    }
}

#[async_trait]
impl TableManager for SnowflakeHybridTableManager {
    fn table_type(&self) -> TableType {
        TableType::Hybrid
    }

    async fn profile(&self, table: &TableRef) -> Result<TableProfile> {
        self.catalog.profile(table, TableType::Hybrid).await
    }

    async fn sample_values(&self, profile: &TableProfile, column: &str, limit: usize) -> Result<Vec<Value>> {
        self.catalog.sample(profile, column, limit).await
    }

    fn render(&self, profile: &TableProfile, request: &RenderRequest<'_>) -> Result<StatementSpec> {
        SqlDialect::SNOWFLAKE.render(profile, request)
    }
}

#[async_trait]
impl TableManager for SnowflakeInteractiveTableManager {
    fn table_type(&self) -> TableType {
        TableType::Interactive
    }

    fn supported_kinds(&self) -> &'static [QueryKind] {
        &INTERACTIVE_KINDS
    }

    async fn profile(&self, table: &TableRef) -> Result<TableProfile> {
        self.catalog.profile(table, TableType::Interactive).await
    }

    async fn sample_values(&self, profile: &TableProfile, column: &str, limit: usize) -> Result<Vec<Value>> {
        self.catalog.sample(profile, column, limit).await
    }

    fn render(&self, profile: &TableProfile, request: &RenderRequest<'_>) -> Result<StatementSpec> {
        if !INTERACTIVE_KINDS.contains(&request.kind) {
            return Err(Error::Unsupported(format!(
                "{} on {}: interactive tables are read-mostly and do not support UPDATE; remove update \
                 from the mix, or benchmark updates on a standard or hybrid table",
                request.kind, profile.table
            )));
        }
        SqlDialect::SNOWFLAKE.render(profile, request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snowflake_types_map_to_engine_types() {
        assert_eq!(map_type("NUMBER", 0), ColumnType::Integer);
        assert_eq!(map_type("NUMBER", 2), ColumnType::Decimal);
        assert_eq!(map_type("FLOAT", 0), ColumnType::Float);
        assert_eq!(map_type("TEXT", 0), ColumnType::Text);
        assert_eq!(map_type("TIMESTAMP_NTZ", 0), ColumnType::Timestamp);
        assert_eq!(map_type("VARIANT", 0), ColumnType::Json);
        assert_eq!(map_type("GEOGRAPHY", 0), ColumnType::Other("GEOGRAPHY".into()));
    }

    #[test]
    fn identity_and_sequence_defaults_are_generated_keys() {
        assert_eq!(generated(true, None), Some(Generated::Sequence));
        assert_eq!(generated(false, Some("UNISTORE.PUBLIC.ORDER_SEQ.NEXTVAL")), Some(Generated::Sequence));
        assert_eq!(generated(false, Some("CURRENT_TIMESTAMP()")), Some(Generated::Expression));
        assert_eq!(generated(false, None), None);
        assert_eq!(list_of_names(r#"["A","B"]"#), vec!["A", "B"]);
        assert_eq!(list_of_names("[A, B]"), vec!["A", "B"]);
        assert!(list_of_names("[]").is_empty());
    }

    #[test]
    fn plain_identifiers_stay_unquoted() {
        assert_eq!(ident("orders_2024"), "orders_2024");
        assert_eq!(ident("Mixed Case"), "\"Mixed Case\"");
    }
}
