//! Snowflake connection settings, parsed from a `snowflake://` URL.
//!
//! # URL format
//!
//! ```text
//! snowflake://USER[:PASSWORD]@ACCOUNT/DATABASE/SCHEMA?warehouse=WH&role=R
//!     &host=https://myaccount.privatelink.snowflakecomputing.com
//!     &authenticator=snowflake_jwt&private_key_path=/path/rsa_key.p8
//!     &login_parallelism=4&query_timeout_s=60&connect_timeout_s=10
//! ```
//!
//! - `USER@ACCOUNT`: the Snowflake user and account identifier (`orgname-account` or the locator).
//! - `/DATABASE/SCHEMA`: default database and schema for unqualified table names. For a results
//!   or control store they name where the tool's tables live (default `UNISTORE_BENCHMARK` /
//!   `TEST_RESULTS`).
//! - `warehouse`, `role`: session warehouse and role.
//! - `host`: a custom base URL (PrivateLink endpoint, or the emulator's `http://127.0.0.1:PORT`);
//!   default `https://ACCOUNT.snowflakecomputing.com`.
//! - `authenticator`: `snowflake` (password, the default unless a private key is given) or
//!   `snowflake_jwt` (key-pair).
//! - `private_key_path`: PKCS#8 PEM file for key-pair auth (`~/` is expanded); an encrypted
//!   key's passphrase comes from `SNOWFLAKE_PRIVATE_KEY_PASSPHRASE`. The file is read (and
//!   checked: PEM, passphrase present when encrypted) before the first login; neither the key nor
//!   the passphrase is ever logged or shown in an error.
//! - the password comes from the URL's password part or, when absent, from `SNOWFLAKE_PASSWORD`.
//!   Prefer the environment: templates must not hold secrets.
//! - `login_parallelism`: at most this many logins at once (default 4), so a run opening hundreds
//!   of sessions does not stampede the login endpoint.
//!
//! Timeouts and HTTP (all in whole seconds; see [`crate::snowflake`] for how connections are
//! kept):
//! - `connect_timeout_s`: a TCP (and TLS) connect, and a login as a whole (default: the target
//!   option `connect_timeout`, 10 s).
//! - `statement_timeout_s`: benchmark statements only: sent as the session parameter
//!   `STATEMENT_TIMEOUT_IN_SECONDS` (the server cancels the statement), and the client gives up
//!   shortly after (default: the target option `statement_timeout`, none).
//! - `query_timeout_s`: the client's budget for any other statement (profiling, sampling, the
//!   results and control stores), and for benchmark statements without a statement timeout
//!   (default 60).
//! - `request_timeout_s`: one HTTP request as a whole (default 60; Snowflake answers a long
//!   statement asynchronously, so no single request needs longer).
//! - `http_idle_timeout_s`: how long an idle kept-alive connection is kept (default 30, below
//!   the idle timeouts of Snowflake's and common load balancers, so the client, not the server,
//!   closes idle connections).

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use snowflake_connector_rs::{
    AuthConfig, Client, ClientConfig, EndpointConfig, KeyPairConfig, QueryConfig, SessionConfig,
    TransportConfig,
};
use unistore_core::{Error, Result};
use url::Url;

use crate::redact_url;

/// Default database of the results and control stores.
pub const DEFAULT_RESULTS_DATABASE: &str = "UNISTORE_BENCHMARK";
/// Default schema of the results and control stores.
pub const DEFAULT_RESULTS_SCHEMA: &str = "TEST_RESULTS";
/// Environment variable holding the password when the URL has none.
pub const PASSWORD_ENV: &str = "SNOWFLAKE_PASSWORD";
/// Environment variable holding the passphrase of an encrypted private key.
pub const PASSPHRASE_ENV: &str = "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE";
/// Default of `connect_timeout_s` for stores (targets take the target option).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How the client authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authenticator {
    /// User and password (`authenticator=snowflake`).
    Password,
    /// Key-pair JWT (`authenticator=snowflake_jwt`).
    KeyPair,
}

/// Connection settings for one Snowflake account. `Debug` redacts the password.
#[derive(Clone)]
pub struct SnowflakeConfig {
    /// Account identifier.
    pub account: String,
    /// User name.
    pub user: String,
    password: Option<String>,
    /// Authentication method.
    pub authenticator: Authenticator,
    /// PKCS#8 PEM private key file for key-pair auth.
    pub private_key_path: Option<PathBuf>,
    /// Default database.
    pub database: Option<String>,
    /// Default schema.
    pub schema: Option<String>,
    /// Session warehouse.
    pub warehouse: Option<String>,
    /// Session role.
    pub role: Option<String>,
    /// Custom base URL (PrivateLink, emulator).
    pub host: Option<Url>,
    /// Concurrent logins allowed.
    pub login_parallelism: usize,
    /// Client-side budget of the tool's own statements (and of benchmark statements without a
    /// statement timeout).
    pub query_timeout: Duration,
    /// A TCP connect, and a login as a whole.
    pub connect_timeout: Duration,
    /// Whether the URL set `connect_timeout_s` (which then wins over the target option).
    pub(crate) connect_timeout_in_url: bool,
    /// Longest a benchmark statement may run (`STATEMENT_TIMEOUT_IN_SECONDS`).
    pub statement_timeout: Option<Duration>,
    /// One HTTP request as a whole.
    pub request_timeout: Duration,
    /// How long an idle kept-alive connection is kept.
    pub http_idle_timeout: Duration,
    /// The URL with secrets redacted, for messages.
    pub redacted: String,
}

impl fmt::Debug for SnowflakeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnowflakeConfig")
            .field("account", &self.account)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("authenticator", &self.authenticator)
            .field("private_key_path", &self.private_key_path)
            .field("database", &self.database)
            .field("schema", &self.schema)
            .field("warehouse", &self.warehouse)
            .field("role", &self.role)
            .field("host", &self.host.as_ref().map(Url::as_str))
            .field("login_parallelism", &self.login_parallelism)
            .field("query_timeout", &self.query_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("http_idle_timeout", &self.http_idle_timeout)
            .finish()
    }
}

fn decode(part: &str) -> String {
    url::form_urlencoded::parse(format!("x={part}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| part.to_string())
}

impl SnowflakeConfig {
    /// Parses a `snowflake://` URL (see the module documentation for the format).
    pub fn from_url(raw: &str) -> Result<Self> {
        let redacted = redact_url(raw);
        let bad = |why: String| {
            Error::invalid(format!(
                "invalid Snowflake URL `{redacted}`: {why}; expected \
                 snowflake://USER@ACCOUNT/DATABASE/SCHEMA?warehouse=WH&role=ROLE"
            ))
        };
        let url = Url::parse(raw).map_err(|e| bad(e.to_string()))?;
        if url.scheme() != "snowflake" {
            return Err(bad(format!("the scheme is `{}`, not `snowflake`", url.scheme())));
        }
        let account = url.host_str().map(decode).filter(|a| !a.is_empty());
        let account = account.ok_or_else(|| bad("the account is missing".into()))?;
        let user = decode(url.username());
        if user.is_empty() {
            return Err(bad("the user is missing".into()));
        }
        let mut segments = url
            .path_segments()
            .map(|s| s.filter(|p| !p.is_empty()).map(decode).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter();
        let database = segments.next();
        let schema = segments.next();
        if segments.next().is_some() {
            return Err(bad("the path has more than DATABASE/SCHEMA".into()));
        }
        let query: HashMap<String, String> =
            url.query_pairs().map(|(k, v)| (k.to_ascii_lowercase(), v.into_owned())).collect();
        for key in query.keys() {
            if !matches!(
                key.as_str(),
                "warehouse"
                    | "role"
                    | "host"
                    | "authenticator"
                    | "private_key_path"
                    | "login_parallelism"
                    | "query_timeout_s"
                    | "connect_timeout_s"
                    | "statement_timeout_s"
                    | "request_timeout_s"
                    | "http_idle_timeout_s"
                    | "password"
            ) {
                return Err(bad(format!("unknown parameter `{key}`")));
            }
        }
        let password = url
            .password()
            .map(decode)
            .or_else(|| query.get("password").cloned())
            .or_else(|| std::env::var(PASSWORD_ENV).ok())
            .filter(|p| !p.is_empty());
        let private_key_path = query.get("private_key_path").map(|p| expand_home(p));
        let authenticator = match query.get("authenticator").map(|a| a.to_ascii_lowercase()) {
            None if private_key_path.is_some() => Authenticator::KeyPair,
            None => Authenticator::Password,
            Some(a) if a == "snowflake" => Authenticator::Password,
            Some(a) if a == "snowflake_jwt" => Authenticator::KeyPair,
            Some(a) => {
                return Err(bad(format!("unsupported authenticator `{a}`: use snowflake or snowflake_jwt")))
            }
        };
        match (authenticator, &private_key_path) {
            (Authenticator::Password, _) if password.is_none() => {
                return Err(bad(format!(
                    "no password and no private key: export {PASSWORD_ENV}=..., or use key-pair auth with \
                     ?private_key_path=/path/rsa_key.p8 (and {PASSPHRASE_ENV} for an encrypted key)"
                )))
            }
            (Authenticator::KeyPair, None) => return Err(bad(
                "authenticator=snowflake_jwt needs ?private_key_path=/path/rsa_key.p8 (a PKCS#8 PEM file)"
                    .into(),
            )),
            _ => {}
        }
        let host = match query.get("host") {
            Some(h) => {
                let parsed = Url::parse(h).map_err(|e| bad(format!("host `{h}` is not a URL: {e}")))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(bad(format!("host `{h}` must be an http(s) URL")));
                }
                Some(parsed)
            }
            None => None,
        };
        let number = |key: &str, default: u64| -> Result<u64> {
            match query.get(key) {
                Some(v) => v
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| bad(format!("{key} must be a positive whole number, not `{v}`"))),
                None => Ok(default),
            }
        };
        Ok(SnowflakeConfig {
            account,
            user,
            password,
            authenticator,
            private_key_path,
            database,
            schema,
            warehouse: query.get("warehouse").cloned(),
            role: query.get("role").cloned(),
            host,
            login_parallelism: number("login_parallelism", 4)? as usize,
            query_timeout: Duration::from_secs(number("query_timeout_s", 60)?),
            connect_timeout: Duration::from_secs(number(
                "connect_timeout_s",
                DEFAULT_CONNECT_TIMEOUT.as_secs(),
            )?),
            connect_timeout_in_url: query.contains_key("connect_timeout_s"),
            statement_timeout: match query.get("statement_timeout_s") {
                Some(_) => Some(Duration::from_secs(number("statement_timeout_s", 0)?)),
                None => None,
            },
            request_timeout: Duration::from_secs(number("request_timeout_s", 60)?),
            http_idle_timeout: Duration::from_secs(number("http_idle_timeout_s", 30)?),
            redacted,
        })
    }

    /// Applies a target's timeouts: `connect_timeout_s` and `statement_timeout_s` in the URL win.
    pub fn with_target_timeouts(
        mut self,
        connect_timeout: Duration,
        statement_timeout: Option<Duration>,
    ) -> Self {
        if !self.connect_timeout_in_url {
            self.connect_timeout = connect_timeout;
        }
        if self.statement_timeout.is_none() {
            self.statement_timeout = statement_timeout;
        }
        self
    }

    /// The base URL requests go to: `host=`, or `https://ACCOUNT.snowflakecomputing.com`.
    pub fn endpoint(&self) -> String {
        match &self.host {
            Some(h) => h.as_str().trim_end_matches('/').to_string(),
            None => format!("https://{}.snowflakecomputing.com", self.account),
        }
    }

    /// How long the client waits for a benchmark statement: the statement timeout plus a grace
    /// for the server's own timeout error to arrive, or `query_timeout`.
    pub fn statement_budget(&self) -> Duration {
        match self.statement_timeout {
            Some(t) => t + (t / 2).clamp(Duration::from_secs(1), Duration::from_secs(5)),
            None => self.query_timeout,
        }
    }

    /// The database and schema of the results and control stores: the URL's, or the defaults.
    pub fn results_location(&self) -> (String, String) {
        (
            self.database.clone().unwrap_or_else(|| DEFAULT_RESULTS_DATABASE.to_string()),
            self.schema.clone().unwrap_or_else(|| DEFAULT_RESULTS_SCHEMA.to_string()),
        )
    }

    /// This configuration with another default database and schema.
    pub fn with_location(&self, database: &str, schema: &str) -> Self {
        let mut c = self.clone();
        c.database = Some(database.to_string());
        c.schema = Some(schema.to_string());
        c
    }

    fn auth(&self) -> Result<AuthConfig> {
        match self.authenticator {
            Authenticator::Password => {
                let password = self.password.clone().ok_or_else(|| {
                    Error::invalid(format!("no password for {}: export {PASSWORD_ENV}=...", self.redacted))
                })?;
                Ok(AuthConfig::password(password))
            }
            Authenticator::KeyPair => {
                let path = self
                    .private_key_path
                    .as_ref()
                    .ok_or_else(|| Error::invalid(format!("no private_key_path in {}", self.redacted)))?;
                let pem = read_key_file(path)
                    .map_err(|why| Error::invalid(format!("{why} (target {})", self.redacted)))?;
                Ok(AuthConfig::key_pair(match std::env::var(PASSPHRASE_ENV) {
                    Ok(pass) if !pass.is_empty() => KeyPairConfig::from_encrypted_pem(pem, pass.into_bytes()),
                    _ => KeyPairConfig::from_pem(pem),
                }))
            }
        }
    }

    /// A client whose sessions start with `QUERY_TAG = query_tag` (and, for benchmark sessions,
    /// `STATEMENT_TIMEOUT_IN_SECONDS`), sending its API requests through `api_http`.
    ///
    /// The query tag is always sent as a login session parameter: it identifies the run in
    /// Snowflake's query history, and the emulator's login handler needs at least one session
    /// parameter.
    pub(crate) fn client(&self, query_tag: &str, load: bool, api_http: reqwest::Client) -> Result<Client> {
        let session = self.session_config(query_tag, load);
        let budget = if load { self.statement_budget() } else { self.query_timeout };
        let mut config = ClientConfig::new(&self.user, &self.account, self.auth()?)
            .with_session(session)
            .with_query(
                QueryConfig::new()
                    .with_query_response_timeout(budget)
                    .with_query_cancel_request_timeout(self.request_timeout),
            )
            .with_transport(TransportConfig::new().with_api_http_client(api_http));
        if let Some(host) = &self.host {
            config = config.with_endpoint(EndpointConfig::CustomBaseUrl(host.clone()));
        }
        Client::new(config).map_err(|e| {
            Error::invalid(format!("cannot configure a Snowflake client for {}: {e}", self.redacted))
        })
    }

    fn session_config(&self, query_tag: &str, load: bool) -> SessionConfig {
        // CLIENT_SESSION_KEEP_ALIVE keeps sessions valid through long runs and idle steps, so
        // a benchmark connection never has to log in again mid-measurement.
        let mut session = SessionConfig::new()
            .with_session_parameter("QUERY_TAG", serde_json::Value::String(query_tag.to_string()))
            .with_session_parameter("CLIENT_SESSION_KEEP_ALIVE", serde_json::Value::Bool(true));
        if let (true, Some(timeout)) = (load, self.statement_timeout) {
            // Whole seconds, at least one (0 would mean "no limit").
            let seconds = timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0);
            session = session.with_session_parameter(
                "STATEMENT_TIMEOUT_IN_SECONDS",
                serde_json::Value::from(seconds.max(1)),
            );
        }
        if let Some(v) = &self.warehouse {
            session = session.with_warehouse(v);
        }
        if let Some(v) = &self.database {
            session = session.with_database(v);
        }
        if let Some(v) = &self.schema {
            session = session.with_schema(v);
        }
        if let Some(v) = &self.role {
            session = session.with_role(v);
        }
        session
    }
}

/// `~/path` as `$HOME/path`: key paths are often written that way, and no shell expands them in a
/// URL.
fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// Reads a private key file, refusing what cannot work before any login: a missing file, a
/// file that is not a PEM private key, an encrypted key without a passphrase. Messages name the
/// path, never the file's content.
fn read_key_file(path: &std::path::Path) -> std::result::Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!("cannot read the private key file {} ({e}): check private_key_path", path.display())
    })?;
    if !text.contains("-----BEGIN") || !text.contains("PRIVATE KEY-----") {
        return Err(format!(
            "{} is not a PEM private key: private_key_path must name a PKCS#8 PEM file \
             (openssl genrsa 2048 | openssl pkcs8 -topk8 -nocrypt -out rsa_key.p8)",
            path.display()
        ));
    }
    if text.contains("ENCRYPTED PRIVATE KEY") && std::env::var(PASSPHRASE_ENV).map_or(true, |p| p.is_empty())
    {
        return Err(format!(
            "the private key {} is encrypted: export {PASSPHRASE_ENV}=... with its passphrase",
            path.display()
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_url_and_redacts_the_password() {
        let c = SnowflakeConfig::from_url(
            "snowflake://bob:hunter2@myorg-acct/DB/SCH?warehouse=WH&role=R&host=http://127.0.0.1:9&login_parallelism=2",
        )
        .expect("valid URL");
        assert_eq!((c.user.as_str(), c.account.as_str()), ("bob", "myorg-acct"));
        assert_eq!((c.database.as_deref(), c.schema.as_deref()), (Some("DB"), Some("SCH")));
        assert_eq!((c.warehouse.as_deref(), c.role.as_deref()), (Some("WH"), Some("R")));
        assert_eq!(c.host.as_ref().map(Url::as_str), Some("http://127.0.0.1:9/"));
        assert_eq!(c.login_parallelism, 2);
        assert_eq!(c.authenticator, Authenticator::Password);
        let debug = format!("{c:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(!c.redacted.contains("hunter2"), "{}", c.redacted);
    }

    #[test]
    fn bad_urls_are_clear_errors_without_secrets() {
        for url in [
            "snowflake://bob:pw@acct/DB/SCH/EXTRA",
            "snowflake://bob:pw@acct/DB?bogus=1",
            "snowflake://bob:pw@acct/DB?authenticator=oauth",
            "snowflake://bob@acct/DB?authenticator=snowflake_jwt",
            "snowflake://bob:pw@acct/DB?login_parallelism=0",
        ] {
            let e = SnowflakeConfig::from_url(url).expect_err(url);
            assert!(!e.to_string().contains(":pw@"), "{e}");
            assert_eq!(e.kind(), unistore_core::ErrorKind::InvalidInput, "{url}: {e}");
        }
        let err = SnowflakeConfig::from_url("snowflake://bob@acct/DB").expect_err("no credentials");
        assert!(
            err.to_string().contains(PASSWORD_ENV) && err.to_string().contains("private_key_path"),
            "the error must name both fixes: {err}"
        );
        let c = SnowflakeConfig::from_url("snowflake://bob@acct/?private_key_path=/k.p8").expect("key pair");
        assert_eq!(c.authenticator, Authenticator::KeyPair);
        assert_eq!(c.results_location(), (DEFAULT_RESULTS_DATABASE.into(), DEFAULT_RESULTS_SCHEMA.into()));
    }

    #[test]
    fn timeouts_come_from_the_url_or_the_target_options() {
        let url = "snowflake://bob:pw@acct/DB/SCH?host=http://127.0.0.1:9";
        let c = SnowflakeConfig::from_url(url).expect("valid URL");
        assert_eq!(c.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        assert_eq!((c.statement_timeout, c.request_timeout), (None, Duration::from_secs(60)));
        assert_eq!(c.http_idle_timeout, Duration::from_secs(30));
        let c = c.with_target_timeouts(Duration::from_secs(2), Some(Duration::from_millis(1500)));
        assert_eq!(c.connect_timeout, Duration::from_secs(2), "the target option applies");
        assert_eq!(c.statement_budget(), Duration::from_millis(2500), "1.5 s plus a 1 s grace");
        assert_eq!(c.endpoint(), "http://127.0.0.1:9");

        let c = SnowflakeConfig::from_url(&format!("{url}&connect_timeout_s=3&statement_timeout_s=20"))
            .expect("valid URL")
            .with_target_timeouts(Duration::from_secs(2), Some(Duration::from_secs(1)));
        assert_eq!(c.connect_timeout, Duration::from_secs(3), "the URL wins");
        assert_eq!(c.statement_timeout, Some(Duration::from_secs(20)), "the URL wins");
        assert_eq!(c.statement_budget(), Duration::from_secs(25), "a grace of at most 5 s");

        // Only benchmark sessions carry the statement timeout, rounded up to whole seconds.
        let c = c.with_target_timeouts(Duration::from_secs(2), None);
        let mut c = c;
        c.statement_timeout = Some(Duration::from_millis(1200));
        let load = format!("{:?}", c.session_config("tag", true));
        assert!(load.contains("STATEMENT_TIMEOUT_IN_SECONDS") && load.contains("Number(2)"), "{load}");
        let own = format!("{:?}", c.session_config("tag", false));
        assert!(!own.contains("STATEMENT_TIMEOUT_IN_SECONDS"), "{own}");
        assert!(SnowflakeConfig::from_url(&format!("{url}&connect_timeout_s=0")).is_err());
        assert_eq!(
            SnowflakeConfig::from_url(&format!("{url}&bogus_s=1")).map(|_| ()).expect_err("x").kind(),
            unistore_core::ErrorKind::InvalidInput
        );
    }
}
