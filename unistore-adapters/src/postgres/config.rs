//! Connection settings parsed from a `postgres://` URL, and opening one connection.
//!
//! The URL is libpq's (`postgres://user:password@host:port/db?sslmode=require&...`), plus
//! parameters of our own that are removed before the driver sees them:
//! - `schema`: the schema of the results and control tables (default `unistore`); ignored
//!   for targets, whose table name carries its own schema.
//! - `sslrootcert`: a PEM file of extra trusted roots (for a private CA), added to the
//!   webpki roots.
//!
//! TLS: `sslmode=require`, `verify-ca` and `verify-full` all connect over rustls and verify the
//! server certificate and host name (verify-full semantics): a benchmark that would silently
//! accept any certificate is not worth the risk of sending a password to the wrong server.
//! `disable`, `prefer` or no `sslmode` connect without TLS.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::{Client, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;
use unistore_core::{Error, ErrorKind, Result};

use super::map_connect_error;
use crate::redact_url;

/// Default schema of the results and control tables.
pub const DEFAULT_STORE_SCHEMA: &str = "unistore";

/// How long a connection attempt may take when the URL does not say (`connect_timeout`).
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether and how to use TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain TCP (or a Unix socket).
    Disabled,
    /// TLS, with the server certificate and host name verified.
    Verified,
}

/// Settings for one Postgres-family server, parsed once from the URL.
#[derive(Clone)]
pub struct PostgresConfig {
    redacted_url: String,
    driver: tokio_postgres::Config,
    store_schema: String,
    tls: TlsMode,
    tls_connector: Option<MakeRustlsConnect>,
}

// Hand-written so that neither the password nor the raw URL can reach a log line.
impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &self.redacted_url)
            .field("user", &self.driver.get_user())
            .field("dbname", &self.driver.get_dbname())
            .field("password", &self.driver.get_password().map(|_| "***"))
            .field("store_schema", &self.store_schema)
            .field("tls", &self.tls)
            .finish()
    }
}

impl PostgresConfig {
    /// Parses a `postgres://` or `postgresql://` URL.
    pub fn parse(raw: &str) -> Result<Self> {
        let redacted_url = redact_url(raw);
        let mut url = url::Url::parse(raw).map_err(|e| {
            Error::invalid(format!(
                "`{redacted_url}` is not a valid URL ({e}): use postgres://user@host:5432/database"
            ))
        })?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(Error::invalid(format!("`{redacted_url}` is not a postgres:// URL")));
        }
        let mut store_schema = DEFAULT_STORE_SCHEMA.to_string();
        let mut root_cert = None;
        let mut ssl_mode = String::from("prefer");
        let mut kept = Vec::new();
        for (k, v) in url.query_pairs() {
            match k.as_ref() {
                "schema" => store_schema = v.into_owned(),
                "sslrootcert" => root_cert = Some(v.into_owned()),
                "sslmode" => ssl_mode = v.to_ascii_lowercase(),
                _ => kept.push((k.into_owned(), v.into_owned())),
            }
        }
        if store_schema.is_empty() || store_schema.chars().any(|c| c == '"' || c.is_control()) {
            return Err(Error::invalid(format!(
                "schema `{store_schema}` in `{redacted_url}` is not a valid schema name"
            )));
        }
        let tls = match ssl_mode.as_str() {
            "disable" | "allow" | "prefer" => TlsMode::Disabled,
            "require" | "verify-ca" | "verify-full" => TlsMode::Verified,
            other => {
                return Err(Error::invalid(format!(
                    "sslmode `{other}` in `{redacted_url}` is not supported: use disable, prefer, require, verify-ca or verify-full"
                )))
            }
        };
        kept.push(("sslmode".into(), if tls == TlsMode::Verified { "require" } else { "disable" }.into()));
        // Re-encoded by hand: the driver's URL parser percent-decodes but does not read `+`
        // as a space, which is what `form_urlencoded` would write (`options=-c%20x%3Dy`).
        let query: Vec<String> =
            kept.iter().map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v))).collect();
        url.set_query(Some(&query.join("&")));
        let mut driver = tokio_postgres::Config::from_str(url.as_str())
            .map_err(|e| Error::invalid(format!("`{redacted_url}` is not a valid PostgreSQL URL: {e}")))?;
        if driver.get_connect_timeout().is_none() {
            driver.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        if driver.get_user().is_none() {
            // libpq's default, so that `postgres://host/db` behaves as psql does.
            if let Ok(user) = std::env::var("USER") {
                driver.user(user);
            }
        }
        let tls_connector = match tls {
            TlsMode::Disabled => None,
            TlsMode::Verified => Some(rustls_connector(root_cert.as_deref(), &redacted_url)?),
        };
        Ok(PostgresConfig { redacted_url, driver, store_schema, tls, tls_connector })
    }

    /// The URL with secrets replaced by `***`, for messages.
    pub fn redacted_url(&self) -> &str {
        &self.redacted_url
    }

    /// Schema of the results and control tables (`?schema=`, default `unistore`).
    pub fn store_schema(&self) -> &str {
        &self.store_schema
    }

    /// Whether connections use TLS.
    pub fn tls(&self) -> TlsMode {
        self.tls
    }

    /// Opens one connection tagged with `application_name`, and drives it on a background
    /// task until the client is dropped.
    pub async fn connect(&self, application_name: &str) -> Result<Client> {
        let mut config = self.driver.clone();
        config.application_name(application_name);
        let client = match &self.tls_connector {
            None => {
                let (client, connection) =
                    config.connect(NoTls).await.map_err(|e| map_connect_error(&e, &self.redacted_url))?;
                tokio::spawn(drive(connection));
                client
            }
            Some(tls) => {
                let (client, connection) = config
                    .connect(tls.clone())
                    .await
                    .map_err(|e| map_connect_error(&e, &self.redacted_url))?;
                tokio::spawn(drive(connection));
                client
            }
        };
        Ok(client)
    }

    /// A cancel request for a statement in flight on `client`.
    pub async fn cancel(&self, token: &tokio_postgres::CancelToken) -> Result<()> {
        let r = match &self.tls_connector {
            None => token.cancel_query(NoTls).await,
            Some(tls) => token.cancel_query(tls.clone()).await,
        };
        r.map_err(|e| map_connect_error(&e, &self.redacted_url))
    }
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn drive<S, T>(connection: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if let Err(e) = connection.await {
        // The session sees the same failure on its next statement and reports it with the
        // right kind; this is only a trace for debugging.
        tracing::debug!("postgres connection ended: {e}");
    }
}

fn rustls_connector(root_cert: Option<&str>, redacted_url: &str) -> Result<MakeRustlsConnect> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;

    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = root_cert {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
            .map_err(|e| Error::invalid(format!("cannot read sslrootcert `{path}`: {e}")))?;
        let (added, _ignored) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(Error::invalid(format!("sslrootcert `{path}` holds no usable certificate")));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| {
            Error::backend(ErrorKind::Other, format!("cannot set up TLS for `{redacted_url}`: {e}"))
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let c = PostgresConfig::parse(
            "postgres://bob:hunter2@db.example:5432/x?schema=results&application_name=a",
        )
        .expect("valid URL");
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
        assert_eq!(c.store_schema(), "results");
        assert_eq!(c.tls(), TlsMode::Disabled);
    }

    #[test]
    fn sslmode_require_means_verified_tls() {
        let c = PostgresConfig::parse("postgres://u@h/db?sslmode=require").expect("valid URL");
        assert_eq!(c.tls(), TlsMode::Verified);
        let c = PostgresConfig::parse("postgresql://u@h/db?sslmode=verify-full").expect("valid URL");
        assert_eq!(c.tls(), TlsMode::Verified);
        let e = PostgresConfig::parse("postgres://u:pw@h/db?sslmode=sometimes").expect_err("bad sslmode");
        assert!(e.to_string().contains("sometimes") && !e.to_string().contains("pw@"), "{e}");
    }

    #[test]
    fn bad_urls_are_clear_and_redacted() {
        let e = PostgresConfig::parse("mysql://u:secret@h/db").expect_err("wrong scheme");
        assert!(!e.to_string().contains("secret"), "{e}");
        let e = PostgresConfig::parse("postgres://u@h/db?schema=a\"b").expect_err("bad schema");
        assert!(e.to_string().contains("schema"), "{e}");
    }
}
