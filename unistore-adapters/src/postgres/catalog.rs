//! What a Postgres-family server holds, from `pg_database`, `pg_namespace` and `pg_class`.
//!
//! A connection sees one database, so listing another database's schemas or tables opens a
//! connection to it (same server, user and TLS settings as the URL), after checking in
//! `pg_database` that it exists. Row estimates are the planner's `reltuples` (`None` for a table
//! never vacuumed or analyzed); nothing is counted. Every name from the caller is a bound
//! parameter; every query runs under the catalog timeout of the table manager.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio_postgres::Client;
use unistore_core::catalog::check_catalog_name;
use unistore_core::{Catalog, CatalogTable, Error, ErrorKind, Result, TableType};

use super::config::PostgresConfig;
use super::connect::human;
use super::map_error;
use super::pool::statement_timeout_sql;
use super::tables::DEFAULT_CATALOG_TIMEOUT;

/// Schemas never listed: the system's own, TOAST storage and other sessions' temporary schemas.
const NOT_SYSTEM_SCHEMA: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%' \
     AND n.nspname NOT LIKE 'crdb\\_internal%' AND n.nspname <> 'pg_extension'";

/// The catalog of a Postgres-family server.
pub struct PostgresCatalog {
    config: PostgresConfig,
    timeout: Duration,
    /// The connection to the URL's database, opened on first use.
    home: tokio::sync::Mutex<Option<Arc<Client>>>,
}

impl std::fmt::Debug for PostgresCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresCatalog")
            .field("config", &self.config)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl PostgresCatalog {
    /// Connects to the server and database of `config` (the connection is kept, and reopened
    /// if lost), so that a wrong URL or password fails here rather than at the first listing.
    pub async fn connect(config: PostgresConfig) -> Result<Self> {
        let catalog =
            PostgresCatalog { config, timeout: DEFAULT_CATALOG_TIMEOUT, home: tokio::sync::Mutex::new(None) };
        catalog.home().await?;
        Ok(catalog)
    }

    async fn open_connection(&self, config: &PostgresConfig) -> Result<Client> {
        config.connect_with_setup("unistore-catalog", Some(&statement_timeout_sql(self.timeout))).await
    }

    async fn home(&self) -> Result<Arc<Client>> {
        let mut slot = self.home.lock().await;
        if let Some(client) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(client.clone());
        }
        let client = Arc::new(self.open_connection(&self.config).await?);
        *slot = Some(client.clone());
        Ok(client)
    }

    /// Runs one catalog query, bounded in time on the client side too.
    async fn bounded<T>(
        &self,
        what: &str,
        query: impl std::future::Future<Output = std::result::Result<T, tokio_postgres::Error>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.timeout + Duration::from_secs(3), query).await {
            Ok(result) => result.map_err(|e| map_error(e, what)),
            Err(_) => {
                *self.home.lock().await = None;
                Err(Error::backend(
                    ErrorKind::Timeout,
                    format!(
                        "{what}: {} did not answer within {}",
                        self.config.endpoint(),
                        human(self.timeout)
                    ),
                ))
            }
        }
    }

    /// A connection to `database` (`None`: the URL's): the kept one when it is the URL's
    /// database, else a fresh one, after checking that the database exists.
    async fn client_for(&self, database: Option<&str>) -> Result<Arc<Client>> {
        let home = self.home().await?;
        let Some(database) = database else { return Ok(home) };
        check_catalog_name("database", database)?;
        let current: String = self
            .bounded("reading current_database()", async {
                home.query_one("SELECT current_database()::text", &[]).await?.try_get(0)
            })
            .await?;
        if current == database {
            return Ok(home);
        }
        let exists = self
            .bounded(
                "looking up the database",
                home.query_opt("SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1::text", &[&database]),
            )
            .await?
            .is_some();
        if !exists {
            return Err(Error::backend(
                ErrorKind::NotFound,
                format!(
                    "database `{database}` does not exist on {}: pick one of those `databases` lists",
                    self.config.endpoint()
                ),
            ));
        }
        let mut other = self.config.clone();
        other.driver.dbname(database);
        Ok(Arc::new(self.open_connection(&other).await?))
    }

    async fn require_schema(&self, client: &Client, schema: &str, database: &str) -> Result<()> {
        let exists = self
            .bounded(
                "looking up the schema",
                client
                    .query_opt("SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1::text", &[&schema]),
            )
            .await?
            .is_some();
        if exists {
            return Ok(());
        }
        Err(Error::backend(
            ErrorKind::NotFound,
            format!(
                "schema `{schema}` does not exist in database `{database}`: pick one of those `schemas` lists \
                 (names are case-sensitive)"
            ),
        ))
    }
}

#[async_trait]
impl Catalog for PostgresCatalog {
    async fn databases(&self) -> Result<Vec<String>> {
        let client = self.home().await?;
        let rows = self
            .bounded(
                "listing databases",
                client.query(
                    "SELECT datname::text FROM pg_catalog.pg_database WHERE datallowconn AND NOT datistemplate \
                     ORDER BY 1",
                    &[],
                ),
            )
            .await?;
        Ok(rows.iter().filter_map(|r| r.try_get(0).ok()).collect())
    }

    async fn schemas(&self, database: Option<&str>) -> Result<Vec<String>> {
        let client = self.client_for(database).await?;
        let rows = self
            .bounded(
                "listing schemas",
                client.query(
                    &format!("SELECT n.nspname::text FROM pg_catalog.pg_namespace n WHERE {NOT_SYSTEM_SCHEMA} ORDER BY 1"),
                    &[],
                ),
            )
            .await?;
        Ok(rows.iter().filter_map(|r| r.try_get(0).ok()).collect())
    }

    async fn tables(&self, database: Option<&str>, schema: Option<&str>) -> Result<Vec<CatalogTable>> {
        let client = self.client_for(database).await?;
        let current: String = self
            .bounded("reading current_database()", async {
                client.query_one("SELECT current_database()::text", &[]).await?.try_get(0)
            })
            .await?;
        if let Some(schema) = schema {
            check_catalog_name("schema", schema)?;
            self.require_schema(&client, schema, &current).await?;
        }
        // Tables and partitioned tables (not their partitions), with the primary key's columns in
        // key order.
        let sql = format!(
            "SELECT n.nspname::text, c.relname::text, c.reltuples::float8, \
             COALESCE((SELECT array_agg(a.attname::text ORDER BY k.ord) FROM pg_catalog.pg_index i \
               CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) \
               JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
               WHERE i.indrelid = c.oid AND i.indisprimary), ARRAY[]::text[]) \
             FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND {NOT_SYSTEM_SCHEMA} \
             AND ($1::text IS NULL OR n.nspname = $1::text) ORDER BY 1, 2"
        );
        let rows = self.bounded("listing tables", client.query(&sql, &[&schema])).await?;
        rows.iter()
            .map(|r| {
                let get = |e| map_error(e, "reading pg_class");
                let reltuples: f64 = r.try_get(2).map_err(get)?;
                Ok(CatalogTable {
                    database: Some(current.clone()),
                    schema: Some(r.try_get(0).map_err(get)?),
                    name: r.try_get(1).map_err(get)?,
                    table_type: TableType::Postgres,
                    // -1: never vacuumed or analyzed (PostgreSQL 14+), so not known.
                    row_estimate: (reltuples >= 0.0).then_some(reltuples.round() as u64),
                    key_columns: r.try_get(3).map_err(get)?,
                })
            })
            .collect()
    }
}
