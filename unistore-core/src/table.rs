//! Table managers: verify, profile and sample a table, and render the dialect's SQL.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{QueryKind, TableRef, TableType};
use crate::target::StatementSpec;
use crate::template::{CustomSql, ValueGeneration};
use crate::value::{ColumnType, Value};

/// One column of a profiled table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnInfo {
    /// Column name as stored in the catalog.
    pub name: String,
    /// Mapped type.
    pub column_type: ColumnType,
    /// The backend's own type name.
    pub native_type: String,
    /// Whether NULL is allowed.
    pub nullable: bool,
    /// Whether the database fills it (identity / serial / autoincrement / default).
    pub has_default: bool,
    /// Maximum length for character types, where declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
}

/// What a table manager learned about a table. Read-only facts; nothing is changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableProfile {
    /// The table, as resolved (schema filled in where the backend resolves it).
    pub table: TableRef,
    /// Real type of the table.
    pub table_type: TableType,
    /// Columns in table order.
    pub columns: Vec<ColumnInfo>,
    /// Primary key columns, in key order (empty: no primary key).
    pub primary_key: Vec<String>,
    /// Row count estimate (exact where cheap).
    pub row_estimate: u64,
    /// Minimum and maximum of an integer key column.
    pub key_range: Option<(i64, i64)>,
    /// A timestamp/date column usable for time-range scans.
    pub time_column: Option<String>,
    /// Secondary indexes (names), where the backend reports them.
    #[serde(default)]
    pub indexes: Vec<String>,
}

impl TableProfile {
    /// Looks a column up by name (case-insensitive).
    pub fn column(&self, name: &str) -> Option<&ColumnInfo> {
        self.columns.iter().find(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// The key column used for point lookups, range scans and updates: the override if given,
    /// else the first primary key column.
    pub fn key_column(&self, key_override: Option<&str>) -> Result<&ColumnInfo> {
        if let Some(name) = key_override {
            return self.column(name).ok_or_else(|| {
                Error::invalid(format!(
                    "key column `{name}` does not exist in {}: columns are {}",
                    self.table,
                    self.column_names().join(", ")
                ))
            });
        }
        let Some(pk) = self.primary_key.first() else {
            return Err(Error::invalid(format!(
                "table {} has no primary key, and point lookups, range scans and updates need a \
                 key column: name one with --key-column (or values.key_column in the template); \
                 candidates: {}",
                self.table,
                self.column_names().join(", ")
            )));
        };
        self.column(pk).ok_or_else(|| {
            Error::invalid(format!("primary key column `{pk}` of {} is not among its columns", self.table))
        })
    }

    /// Column names, in table order.
    pub fn column_names(&self) -> Vec<&str> {
        self.columns.iter().map(|c| c.name.as_str()).collect()
    }
}

/// What to render for one query kind.
#[derive(Debug, Clone, Copy)]
pub struct RenderRequest<'a> {
    /// The kind.
    pub kind: QueryKind,
    /// Value-generation options (key/update column overrides, range width).
    pub values: &'a ValueGeneration,
    /// The custom statement, for `CUSTOM_SQL`.
    pub custom_sql: Option<&'a CustomSql>,
}

/// Verifies, profiles and samples tables of one type and renders the dialect's SQL. Issues no
/// DDL and no writes.
#[async_trait]
pub trait TableManager: Send + Sync + 'static {
    /// The table type this manager handles.
    fn table_type(&self) -> TableType;

    /// Query kinds this table type supports (interactive tables refuse updates, say).
    fn supported_kinds(&self) -> &'static [QueryKind] {
        &QueryKind::ALL
    }

    /// Verifies the table exists and is of this manager's type, and profiles it.
    /// Unknown table: `ErrorKind::NotFound`; wrong type: `ErrorKind::InvalidInput`.
    async fn profile(&self, table: &TableRef) -> Result<TableProfile>;

    /// Samples up to `limit` distinct non-null values of `column`.
    async fn sample_values(&self, profile: &TableProfile, column: &str, limit: usize) -> Result<Vec<Value>>;

    /// Renders the statement for one query kind.
    fn render(&self, profile: &TableProfile, request: &RenderRequest<'_>) -> Result<StatementSpec>;
}
