//! Discovery: which databases, schemas and tables a target holds, for a table picker.
//!
//! Every backend answers from its catalog only (`pg_class`, `SHOW TABLES`, `sqlite_master`),
//! never by scanning a table, so listing a schema of large tables stays cheap. System schemas
//! (`pg_catalog`, `information_schema`, `INFORMATION_SCHEMA`, ...) are left out.
//!
//! A database or schema that does not exist is an error of kind
//! [`ErrorKind::NotFound`](crate::ErrorKind::NotFound) naming it, never an empty list: an empty
//! list means "it exists and holds nothing", which a picker shows differently from a typo.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::TableType;

/// A table as the catalog lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CatalogTable {
    /// The database holding it (`None` where the backend has no databases: SQLite).
    pub database: Option<String>,
    /// Its schema.
    pub schema: Option<String>,
    /// Its name, as stored in the catalog (the case the backend keeps).
    pub name: String,
    /// What kind of table it is, as the table managers detect it.
    pub table_type: TableType,
    /// Rows according to the catalog's statistics (`None` when the catalog does not know, e.g.
    /// a PostgreSQL table never analyzed, or an SQLite table without `ANALYZE` statistics).
    pub row_estimate: Option<u64>,
    /// The primary key's columns in key order; empty for a table without one.
    pub key_columns: Vec<String>,
}

/// Lists what a target holds. Dyn-compatible, used as `Arc<dyn Catalog>`.
///
/// Names passed in are the user's words: implementations bind them as parameters or quote them
/// as identifiers, never paste them into SQL.
#[async_trait]
pub trait Catalog: Send + Sync + 'static {
    /// Databases the connection can see, sorted. Empty where the backend has no databases
    /// (an SQLite file).
    async fn databases(&self) -> Result<Vec<String>>;

    /// Schemas of `database` (`None`: the connection's database), sorted, system schemas left
    /// out. An unknown database is `ErrorKind::NotFound`.
    async fn schemas(&self, database: Option<&str>) -> Result<Vec<String>>;

    /// Tables of `schema` in `database` (`None`: the connection's database; every non-system
    /// schema of it when `schema` is `None`), sorted by schema then name. An unknown database or
    /// schema is `ErrorKind::NotFound`.
    async fn tables(&self, database: Option<&str>, schema: Option<&str>) -> Result<Vec<CatalogTable>>;
}

/// Checks a database or schema name typed by a user before any backend sees it: not empty, no
/// control characters, at most 255 characters. `what` says which name it is ("database",
/// "schema"). Backends still quote or bind the name; this only gives a clear message early.
pub fn check_catalog_name<'a>(what: &str, name: &'a str) -> Result<&'a str> {
    if name.trim().is_empty() {
        return Err(Error::invalid(format!("the {what} name is empty: give a {what} name, or leave it out")));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "the {what} name {name:?} contains control characters: give the name as the catalog lists it"
        )));
    }
    if name.chars().count() > 255 {
        return Err(Error::invalid(format!(
            "the {what} name is {} characters long: catalogs allow at most 255",
            name.chars().count()
        )));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn names_typed_by_a_user_are_checked() {
        assert_eq!(check_catalog_name("schema", "public").ok(), Some("public"));
        assert_eq!(check_catalog_name("schema", "My \"Odd\" Schema").ok(), Some("My \"Odd\" Schema"));
        let empty = check_catalog_name("schema", "  ").expect_err("an empty name");
        assert_eq!(empty.kind(), ErrorKind::InvalidInput);
        assert!(empty.to_string().contains("schema name is empty"), "{empty}");
        let control = check_catalog_name("database", "a\nb").expect_err("a control character");
        assert_eq!(control.kind(), ErrorKind::InvalidInput);
        assert!(control.to_string().contains("control characters"), "{control}");
        assert!(check_catalog_name("database", &"x".repeat(256)).is_err());
    }

    #[test]
    fn a_catalog_table_round_trips_through_json() {
        let table = CatalogTable {
            database: Some("postgres".into()),
            schema: Some("public".into()),
            name: "pgbench_accounts".into(),
            table_type: TableType::Postgres,
            row_estimate: Some(1_000_000),
            key_columns: vec!["aid".into()],
        };
        let json = serde_json::to_value(&table).expect("serializing");
        assert_eq!(json["table_type"], "POSTGRES");
        assert_eq!(json["key_columns"], serde_json::json!(["aid"]));
        let back: CatalogTable = serde_json::from_value(json).expect("deserializing");
        assert_eq!(back, table);
    }
}
