//! What an SQLite file holds, from `sqlite_master` and `pragma_table_info`.
//!
//! An SQLite file has no databases inside it: [`Catalog::databases`] is empty and naming a
//! database is `NotFound`. Its schemas are `main` and the attached databases (`temp` is left
//! out: it belongs to one connection). Row estimates come from `sqlite_stat1` (written by
//! `ANALYZE`); without it they are `None`, because `count(*)` reads the whole table.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension};
use unistore_core::catalog::check_catalog_name;
use unistore_core::sql::SqlDialect;
use unistore_core::{Catalog, CatalogTable, Error, ErrorKind, Result, TableType};

use super::config::SqliteConfig;
use super::pool::open_user_database;
use super::{map_error, run_blocking};

/// The catalog of an SQLite database file.
#[derive(Debug, Clone)]
pub struct SqliteCatalog {
    path: String,
    conn: Arc<Mutex<Connection>>,
}

impl SqliteCatalog {
    /// Opens a connection of its own on the database file (which must exist: a missing file is
    /// `NotFound`).
    pub async fn open(config: &SqliteConfig) -> Result<Self> {
        let path = config.path.clone();
        let conn = run_blocking("open", move || open_user_database(&path)).await?;
        Ok(SqliteCatalog { path: config.path.display().to_string(), conn: Arc::new(Mutex::new(conn)) })
    }

    async fn with_conn<T, F>(&self, what: &'static str, f: F) -> Result<T>
    where
        F: FnOnce(&Connection, &str) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let conn = self.conn.clone();
        let path = self.path.clone();
        run_blocking(what, move || {
            // A poisoned lock only means an earlier call panicked; the connection is still usable.
            let guard = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&guard, &path)
        })
        .await
    }
}

fn no_databases(database: &str, path: &str) -> Error {
    Error::backend(
        ErrorKind::NotFound,
        format!(
            "database `{database}` does not exist: the SQLite file {path} has no databases inside it; \
             leave the database out and pick a schema (`main` or an attached one)"
        ),
    )
}

fn schemas_of(conn: &Connection, path: &str) -> Result<Vec<String>> {
    let context = format!("listing the schemas of {path}");
    let mut stmt = conn
        .prepare("SELECT name FROM pragma_database_list WHERE name <> 'temp' ORDER BY seq")
        .map_err(|e| map_error(e, &context))?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(|e| map_error(e, &context))?;
    Ok(names)
}

/// The schema as the file lists it (SQLite compares schema names ignoring case), or `NotFound`.
fn existing_schema(conn: &Connection, path: &str, asked: &str) -> Result<String> {
    let schemas = schemas_of(conn, path)?;
    schemas.iter().find(|s| s.eq_ignore_ascii_case(asked)).cloned().ok_or_else(|| {
        Error::backend(
            ErrorKind::NotFound,
            format!(
                "schema `{asked}` does not exist in {path}: SQLite schemas are `main` and attached \
                 databases ({})",
                schemas.join(", ")
            ),
        )
    })
}

fn tables_of(conn: &Connection, path: &str, schema: &str) -> Result<Vec<CatalogTable>> {
    let quoted = SqlDialect::SQLITE.quote_ident(schema);
    let context = |what: &str| format!("{what} of schema {schema} in {path}");
    let names: Vec<String> = {
        let mut stmt = conn
            .prepare(&format!(
                "SELECT name FROM {quoted}.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' \
                 ESCAPE '\\' ORDER BY name"
            ))
            .map_err(|e| map_error(e, &context("listing the tables")))?;
        let names = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| map_error(e, &context("listing the tables")))?;
        names
    };
    let has_stats: bool = conn
        .query_row(
            &format!("SELECT 1 FROM {quoted}.sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'"),
            [],
            |_| Ok(()),
        )
        .optional()
        .map_err(|e| map_error(e, &context("looking for sqlite_stat1")))?
        .is_some();
    let mut key_stmt = conn
        .prepare("SELECT name FROM pragma_table_info(?1, ?2) WHERE pk > 0 ORDER BY pk")
        .map_err(|e| map_error(e, &context("reading the primary keys")))?;
    let mut tables = Vec::with_capacity(names.len());
    for name in names {
        let key_columns = key_stmt
            .query_map([&name, schema], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| map_error(e, &context(&format!("reading the primary key of {name}"))))?;
        let row_estimate = if has_stats { analyzed_rows(conn, &quoted, &name, path)? } else { None };
        tables.push(CatalogTable {
            database: None,
            schema: Some(schema.to_string()),
            name,
            table_type: TableType::Sqlite,
            row_estimate,
            key_columns,
        });
    }
    Ok(tables)
}

/// Rows of a table by its `ANALYZE` statistics: the first number of each of its `sqlite_stat1`
/// rows is the row count (of the table, or of one of its indexes, which has as many entries).
fn analyzed_rows(conn: &Connection, quoted_schema: &str, table: &str, path: &str) -> Result<Option<u64>> {
    let context = format!("reading the statistics of {table} in {path}");
    let mut stmt = conn
        .prepare_cached(&format!("SELECT stat FROM {quoted_schema}.sqlite_stat1 WHERE tbl = ?1"))
        .map_err(|e| map_error(e, &context))?;
    let stats = stmt
        .query_map([table], |r| r.get::<_, Option<String>>(0))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(|e| map_error(e, &context))?;
    Ok(stats
        .iter()
        .flatten()
        .filter_map(|s| s.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()))
        .max())
}

#[async_trait]
impl Catalog for SqliteCatalog {
    async fn databases(&self) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    async fn schemas(&self, database: Option<&str>) -> Result<Vec<String>> {
        if let Some(database) = database {
            check_catalog_name("database", database)?;
            return Err(no_databases(database, &self.path));
        }
        let mut schemas = self.with_conn("list schemas", schemas_of).await?;
        schemas.sort();
        Ok(schemas)
    }

    async fn tables(&self, database: Option<&str>, schema: Option<&str>) -> Result<Vec<CatalogTable>> {
        if let Some(database) = database {
            check_catalog_name("database", database)?;
            return Err(no_databases(database, &self.path));
        }
        let asked = schema.map(|s| check_catalog_name("schema", s).map(str::to_string)).transpose()?;
        self.with_conn("list tables", move |conn, path| {
            let schemas = match asked {
                Some(asked) => vec![existing_schema(conn, path, &asked)?],
                None => {
                    let mut all = schemas_of(conn, path)?;
                    all.sort();
                    all
                }
            };
            let mut tables = Vec::new();
            for schema in schemas {
                tables.extend(tables_of(conn, path, &schema)?);
            }
            Ok(tables)
        })
        .await
    }
}
