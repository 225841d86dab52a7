//! What a Snowflake account shows the URL's role: databases, schemas and tables, from `SHOW`
//! statements (metadata only, no warehouse needed) and `INFORMATION_SCHEMA.TABLES`.
//!
//! A table's type is read from its `SHOW TABLES` row exactly as the table managers read it
//! ([`listed_type`]); its key from `SHOW PRIMARY KEYS` ([`primary_keys`]); its row estimate from
//! the `rows` metadata of `SHOW TABLES`, or `INFORMATION_SCHEMA.TABLES.ROW_COUNT` where that is 0.
//!
//! Names from the caller are matched against the listing first (an unknown database or schema
//! is `NotFound`: some servers answer `SHOW SCHEMAS IN` an unknown database with nothing), and
//! only the listed spelling goes into a statement, quoted by [`ident`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use snowflake_connector_rs::DynamicRow;
use unistore_core::catalog::check_catalog_name;
use unistore_core::{Catalog, CatalogTable, Error, ErrorKind, Result, TableType, Value};

use super::pool::{cell_i64, Connector, SessionPool};
use super::tables::{column_index, ident, listed_rows, listed_type, primary_keys, text_at};
use super::SnowflakeConfig;

/// Sessions the catalog keeps.
const CATALOG_SESSIONS: usize = 2;

/// The catalog of a Snowflake account, as the URL's role sees it.
pub struct SnowflakeAccountCatalog {
    pool: Arc<SessionPool>,
}

impl std::fmt::Debug for SnowflakeAccountCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnowflakeAccountCatalog").field("config", self.pool.config()).finish()
    }
}

/// Whether a name the user typed names `listed`: the same spelling, or, for a name Snowflake
/// would resolve without quotes, the same letters in any case.
fn names(asked: &str, listed: &str) -> bool {
    asked == listed || (!ident(asked).starts_with('"') && asked.eq_ignore_ascii_case(listed))
}

fn is_system_schema(name: &str) -> bool {
    name.eq_ignore_ascii_case("INFORMATION_SCHEMA")
}

fn names_in(rows: &[DynamicRow], column: &str) -> Vec<String> {
    let i = column_index(rows, column);
    rows.iter().filter_map(|r| text_at(r, i)).collect()
}

impl SnowflakeAccountCatalog {
    /// A catalog over the account of `config`; logs in on first use.
    pub fn new(config: SnowflakeConfig) -> Self {
        let pool = SessionPool::new(Connector::new(config), "unistore:catalog", CATALOG_SESSIONS);
        SnowflakeAccountCatalog { pool: Arc::new(pool) }
    }

    /// Logs in (one session, kept for the listings).
    pub(crate) async fn check_login(&self) -> Result<()> {
        self.pool.acquire().await.map(|_| ())
    }

    /// The database as listed by `SHOW DATABASES` (`None`: the URL's database).
    async fn database(&self, asked: Option<&str>) -> Result<String> {
        let asked = match asked {
            Some(d) => check_catalog_name("database", d)?.to_string(),
            None => self.pool.config().database.clone().ok_or_else(|| {
                Error::invalid(
                    "the snowflake:// URL names no database: pick a database (one of those `databases` lists), \
                     or put /DATABASE in the URL",
                )
            })?,
        };
        let listed = self.databases().await?;
        listed.iter().find(|d| names(&asked, d)).cloned().ok_or_else(|| {
            Error::backend(
                ErrorKind::NotFound,
                format!(
                    "database `{asked}` does not exist or the role cannot see it: pick one of those `databases` \
                     lists ({})",
                    listed.join(", ")
                ),
            )
        })
    }

    async fn schemas_of(&self, database: &str) -> Result<Vec<String>> {
        let rows = self.pool.rows(&format!("SHOW SCHEMAS IN DATABASE {}", ident(database)), &[]).await?;
        let mut schemas: Vec<String> =
            names_in(&rows, "name").into_iter().filter(|s| !is_system_schema(s)).collect();
        schemas.sort();
        Ok(schemas)
    }

    /// Names of the interactive tables among `scope` (`IN SCHEMA ..` / `IN DATABASE ..`), for an
    /// account whose `SHOW TABLES` has no `is_interactive` column.
    async fn interactive_tables(&self, scope: &str) -> HashSet<(String, String)> {
        match self.pool.rows(&format!("SHOW INTERACTIVE TABLES {scope}"), &[]).await {
            Ok(rows) => {
                let (i_schema, i_name) = (column_index(&rows, "schema_name"), column_index(&rows, "name"));
                rows.iter()
                    .filter_map(|r| Some((text_at(r, i_schema).unwrap_or_default(), text_at(r, i_name)?)))
                    .collect()
            }
            Err(e) => {
                tracing::debug!("SHOW INTERACTIVE TABLES {scope} failed, assuming none is interactive: {e}");
                HashSet::new()
            }
        }
    }

    /// `ROW_COUNT` of the tables of `database` (of `schema` only, when given), by schema and name.
    async fn row_counts(&self, database: &str, schema: Option<&str>) -> HashMap<(String, String), u64> {
        let mut sql = format!(
            "SELECT TABLE_SCHEMA, TABLE_NAME, ROW_COUNT FROM {}.INFORMATION_SCHEMA.TABLES \
             WHERE TABLE_SCHEMA <> 'INFORMATION_SCHEMA'",
            ident(database)
        );
        let mut params = Vec::new();
        if let Some(schema) = schema {
            sql.push_str(" AND TABLE_SCHEMA = ?");
            params.push(Value::text(schema));
        }
        match self.pool.rows(&sql, &params).await {
            Ok(rows) => rows
                .iter()
                .filter_map(|r| {
                    let text = |i| r.value_at(i).ok().and_then(super::pool::cell_text);
                    let count = r.value_at(2).ok().and_then(cell_i64)?;
                    Some(((text(0)?, text(1)?), count.max(0) as u64))
                })
                .collect(),
            Err(e) => {
                tracing::debug!("no row counts from {database}.INFORMATION_SCHEMA.TABLES: {e}");
                HashMap::new()
            }
        }
    }
}

#[async_trait]
impl Catalog for SnowflakeAccountCatalog {
    async fn databases(&self) -> Result<Vec<String>> {
        let rows = self.pool.rows("SHOW DATABASES", &[]).await?;
        let mut databases = names_in(&rows, "name");
        databases.sort();
        Ok(databases)
    }

    async fn schemas(&self, database: Option<&str>) -> Result<Vec<String>> {
        let database = self.database(database).await?;
        self.schemas_of(&database).await
    }

    async fn tables(&self, database: Option<&str>, schema: Option<&str>) -> Result<Vec<CatalogTable>> {
        let database = self.database(database).await?;
        let schemas = self.schemas_of(&database).await?;
        let schema = match schema {
            Some(asked) => {
                check_catalog_name("schema", asked)?;
                Some(schemas.iter().find(|s| names(asked, s)).cloned().ok_or_else(|| {
                    Error::backend(
                        ErrorKind::NotFound,
                        format!(
                            "schema `{asked}` does not exist in database {database} or the role cannot see it: \
                             pick one of those `schemas` lists ({})",
                            schemas.join(", ")
                        ),
                    )
                })?)
            }
            None => None,
        };
        let scope = match &schema {
            Some(s) => format!("IN SCHEMA {}.{}", ident(&database), ident(s)),
            None => format!("IN DATABASE {}", ident(&database)),
        };
        let rows = self.pool.rows(&format!("SHOW TABLES {scope}"), &[]).await?;
        let (i_name, i_schema) = (column_index(&rows, "name"), column_index(&rows, "schema_name"));
        let listed: Vec<(String, String, &DynamicRow)> = rows
            .iter()
            .filter_map(|r| Some((text_at(r, i_schema)?, text_at(r, i_name)?, r)))
            .filter(|(s, _, _)| !is_system_schema(s))
            .collect();

        let interactive = if listed.iter().any(|(_, _, r)| listed_type(&rows, r).is_none()) {
            self.interactive_tables(&scope).await
        } else {
            HashSet::new()
        };
        let counts = if listed.iter().any(|(_, _, r)| listed_rows(&rows, r).unwrap_or(0) == 0) {
            self.row_counts(&database, schema.as_deref()).await
        } else {
            HashMap::new()
        };
        // One SHOW PRIMARY KEYS per schema holding tables (`IN DATABASE` is not answered everywhere).
        let mut keys = HashMap::new();
        let holding: std::collections::BTreeSet<&str> = listed.iter().map(|(s, _, _)| s.as_str()).collect();
        for s in holding {
            let sql = format!("SHOW PRIMARY KEYS IN SCHEMA {}.{}", ident(&database), ident(s));
            for (owner, columns) in primary_keys(&self.pool.rows(&sql, &[]).await?) {
                keys.insert((owner.schema.unwrap_or_else(|| s.to_string()), owner.table), columns);
            }
        }

        let mut tables: Vec<CatalogTable> = listed
            .into_iter()
            .map(|(schema, name, row)| {
                let key = (schema, name);
                let table_type = listed_type(&rows, row).unwrap_or(if interactive.contains(&key) {
                    TableType::Interactive
                } else {
                    TableType::Standard
                });
                let row_estimate = match listed_rows(&rows, row) {
                    Some(n) if n > 0 => Some(n),
                    shown => counts.get(&key).copied().or(shown),
                };
                let key_columns = keys.get(&key).cloned().unwrap_or_default();
                let (schema, name) = key;
                CatalogTable {
                    database: Some(database.clone()),
                    schema: Some(schema),
                    name,
                    table_type,
                    row_estimate,
                    key_columns,
                }
            })
            .collect();
        tables.sort_by(|a, b| (&a.schema, &a.name).cmp(&(&b.schema, &b.name)));
        Ok(tables)
    }
}
