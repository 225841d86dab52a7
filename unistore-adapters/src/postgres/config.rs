//! Connection settings parsed from a `postgres://` URL and libpq's environment variables.
//!
//! The URL is libpq's (`postgres://user:password@host:port/db?sslmode=require&...`). Where it
//! leaves something out, libpq's environment fills it in: `PGHOST`, `PGPORT`, `PGUSER` (else
//! `USER`), `PGDATABASE`, `PGSSLMODE`, `PGSSLROOTCERT`. The password comes, in libpq's order,
//! from the URL, `PGPASSWORD`, or the password file (`passfile=` in the URL, `PGPASSFILE`, else
//! `~/.pgpass`; see [`super::pgpass`]). Parameters of our own are removed before the driver
//! sees them:
//! - `schema`: the schema of the results and control tables (default `unistore`); ignored
//!   for targets, whose table name carries its own schema.
//! - `sslmode`, `sslrootcert`: TLS as in libpq (see [`SslMode`]).
//! - `connect_timeout`: seconds that opening a connection may take, all of it (TCP, TLS,
//!   login, session set-up); `0` waits forever, as in libpq. Without it, the caller's default
//!   applies ([`PostgresConfig::with_default_connect_timeout`]; 10 s otherwise).
//!
//! The environment is read through a lookup function ([`PostgresConfig::parse_with_env`]), so
//! tests and embedders can pass their own instead of mutating the process environment.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::config::Host;
use tokio_postgres_rustls::MakeRustlsConnect;
use unistore_core::{Error, Result};

use super::pgpass::{self, PasswordFile, PasswordQuery};
use super::tls::{self, Roots, SslMode, Verification};
use crate::redact_url;

/// Default schema of the results and control tables.
pub const DEFAULT_STORE_SCHEMA: &str = "unistore";

/// How long opening a connection may take when neither the URL nor the caller says.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = crate::registry::DEFAULT_CONNECT_TIMEOUT;

/// Where the password of a connection came from (never the password itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// No password was found: fine for `trust` or certificate authentication.
    None,
    /// The URL's `user:password@`.
    Url,
    /// The `PGPASSWORD` environment variable.
    Environment,
    /// A line of this password file.
    File(PathBuf),
}

impl fmt::Display for PasswordSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PasswordSource::None => f.write_str("no password"),
            PasswordSource::Url => f.write_str("the password in the URL"),
            PasswordSource::Environment => f.write_str("the password in PGPASSWORD"),
            PasswordSource::File(path) => write!(f, "the password from {}", path.display()),
        }
    }
}

/// Settings for one Postgres-family server, parsed once from the URL.
#[derive(Clone)]
pub struct PostgresConfig {
    pub(super) redacted_url: String,
    pub(super) driver: tokio_postgres::Config,
    store_schema: String,
    pub(super) ssl_mode: SslMode,
    /// For every mode but `disable`: `allow` and `prefer` may need it as well.
    pub(super) tls_connector: Option<MakeRustlsConnect>,
    /// `None`: wait forever (`connect_timeout=0`).
    pub(super) connect_timeout: Option<Duration>,
    connect_timeout_in_url: bool,
    pub(super) password_source: PasswordSource,
    /// Why the password file was not used, for the message of a failed login.
    pub(super) password_note: Option<String>,
}

// Hand-written so that neither the password nor the raw URL can reach a log line.
impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &self.redacted_url)
            .field("endpoint", &self.endpoint())
            .field("user", &self.driver.get_user())
            .field("dbname", &self.driver.get_dbname())
            .field("password", &self.password_source)
            .field("store_schema", &self.store_schema)
            .field("sslmode", &self.ssl_mode)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

impl PostgresConfig {
    /// Parses a `postgres://` or `postgresql://` URL, filling what it leaves out from the
    /// process environment as libpq does.
    pub fn from_url(raw: &str) -> Result<Self> {
        Self::parse_with_env(raw, &|name| std::env::var(name).ok())
    }

    /// Like [`from_url`](Self::from_url), with the environment read through `env` (the value of a
    /// variable, `None` when unset).
    pub fn parse_with_env(raw: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
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
        let mut ssl_mode = None;
        let mut passfile = None;
        let mut connect_timeout_param = None;
        let mut kept = Vec::new();
        for (k, v) in url.query_pairs() {
            match k.as_ref() {
                "schema" => store_schema = v.into_owned(),
                "sslrootcert" => root_cert = Some(v.into_owned()),
                "sslmode" => ssl_mode = Some(v.into_owned()),
                "passfile" => passfile = Some(v.into_owned()),
                "connect_timeout" => connect_timeout_param = Some(v.into_owned()),
                _ => kept.push((k.into_owned(), v.into_owned())),
            }
        }
        if store_schema.is_empty() || store_schema.chars().any(|c| c == '"' || c.is_control()) {
            return Err(Error::invalid(format!(
                "schema `{store_schema}` in `{redacted_url}` is not a valid schema name"
            )));
        }
        let env_nonempty = |name: &str| env(name).filter(|v| !v.is_empty());
        let ssl_mode_text = ssl_mode.or_else(|| env_nonempty("PGSSLMODE")).unwrap_or_else(|| "prefer".into());
        let ssl_mode = SslMode::parse(&ssl_mode_text).ok_or_else(|| {
            Error::invalid(format!(
                "sslmode `{ssl_mode_text}` in `{redacted_url}` is not supported: use disable, allow, prefer, \
                 require, verify-ca or verify-full"
            ))
        })?;
        let connect_timeout = match &connect_timeout_param {
            None => Some(DEFAULT_CONNECT_TIMEOUT),
            Some(v) => match v.trim().parse::<i64>() {
                Ok(secs) if secs <= 0 => None,
                Ok(secs) => Some(Duration::from_secs(secs.unsigned_abs())),
                Err(_) => {
                    return Err(Error::invalid(format!(
                        "connect_timeout `{v}` in `{redacted_url}` is not a whole number of seconds"
                    )))
                }
            },
        };
        // Re-encoded by hand: the driver's URL parser percent-decodes but does not read `+`
        // as a space, which is what `form_urlencoded` would write (`options=-c%20x%3Dy`).
        let query: Vec<String> =
            kept.iter().map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v))).collect();
        let query = query.join("&");
        url.set_query(if query.is_empty() { None } else { Some(&query) });
        let mut driver = tokio_postgres::Config::from_str(url.as_str())
            .map_err(|e| Error::invalid(format!("`{redacted_url}` is not a valid PostgreSQL URL: {e}")))?;
        fill_from_env(&mut driver, env, &redacted_url)?;

        let home = env("HOME");
        let default_root = home
            .as_deref()
            .map(|h| Path::new(h).join(".postgresql").join("root.crt"))
            .filter(|p| p.is_file());
        let root_cert = root_cert.or_else(|| env_nonempty("PGSSLROOTCERT"));
        let roots = match root_cert.as_deref() {
            Some("system") => Some(Roots::System),
            Some(path) => Some(Roots::File(PathBuf::from(path))),
            None => default_root.map(Roots::File),
        };
        let tls_connector = match ssl_mode {
            SslMode::Disable => None,
            SslMode::Allow | SslMode::Prefer => Some(tls::connector(Verification::None, &Roots::System)?),
            // libpq: with a root certificate at hand, `require` checks the chain (verify-ca).
            SslMode::Require => match &roots {
                Some(roots) => Some(tls::connector(Verification::Chain, roots)?),
                None => Some(tls::connector(Verification::None, &Roots::System)?),
            },
            SslMode::VerifyCa => {
                Some(tls::connector(Verification::Chain, roots.as_ref().unwrap_or(&Roots::System))?)
            }
            SslMode::VerifyFull => {
                Some(tls::connector(Verification::Full, roots.as_ref().unwrap_or(&Roots::System))?)
            }
        };

        let mut config = PostgresConfig {
            redacted_url,
            driver,
            store_schema,
            ssl_mode,
            tls_connector,
            connect_timeout,
            connect_timeout_in_url: connect_timeout_param.is_some(),
            password_source: PasswordSource::None,
            password_note: None,
        };
        config.find_password(env, passfile.as_deref(), home.as_deref());
        Ok(config)
    }

    /// libpq's order: the URL, `PGPASSWORD`, then the password file.
    fn find_password(
        &mut self,
        env: &dyn Fn(&str) -> Option<String>,
        passfile: Option<&str>,
        home: Option<&str>,
    ) {
        if self.driver.get_password().is_some_and(|p| !p.is_empty()) {
            self.password_source = PasswordSource::Url;
            return;
        }
        if let Some(password) = env("PGPASSWORD").filter(|p| !p.is_empty()) {
            self.driver.password(password);
            self.password_source = PasswordSource::Environment;
            return;
        }
        let path = passfile
            .map(PathBuf::from)
            .or_else(|| env("PGPASSFILE").filter(|p| !p.is_empty()).map(PathBuf::from))
            .or_else(|| pgpass::default_path(home));
        let Some(path) = path else { return };
        // A multi-host URL uses the first host's line (one password per configuration).
        let (host, port) = match (self.driver.get_hosts().first(), self.driver.get_hostaddrs().first()) {
            (Some(Host::Tcp(h)), _) => (h.clone(), self.first_port()),
            #[cfg(unix)]
            (Some(Host::Unix(p)), _) => (p.display().to_string(), self.first_port()),
            (None, Some(addr)) => (addr.to_string(), self.first_port()),
            (None, None) => (String::new(), self.first_port()),
        };
        let user = self.driver.get_user().unwrap_or_default().to_string();
        let database = self.driver.get_dbname().map(str::to_string).unwrap_or_else(|| user.clone());
        let query = PasswordQuery { host: &host, port: &port, database: &database, user: &user };
        match pgpass::lookup(&path, &query) {
            PasswordFile::Found(password) => {
                self.driver.password(password);
                self.password_source = PasswordSource::File(path);
            }
            PasswordFile::Ignored(why) => {
                tracing::warn!("{why}");
                self.password_note = Some(why);
            }
            PasswordFile::NoMatch => {
                self.password_note =
                    Some(format!("no line of {} matches {host}:{port}:{database}:{user}", path.display()));
            }
            PasswordFile::Absent => {}
        }
    }

    fn first_port(&self) -> String {
        self.driver.get_ports().first().copied().unwrap_or(5432).to_string()
    }

    /// Sets the connect timeout used when the URL has no `connect_timeout` (the caller's
    /// `--connect-timeout` or [`TargetOptions::connect_timeout`](crate::TargetOptions)).
    pub fn with_default_connect_timeout(mut self, timeout: Duration) -> Self {
        if !self.connect_timeout_in_url {
            self.connect_timeout = Some(timeout);
        }
        self
    }

    /// How long opening a connection may take (`None`: no limit).
    pub fn connect_timeout(&self) -> Option<Duration> {
        self.connect_timeout
    }

    /// The URL with secrets replaced by `***`, for messages.
    pub fn redacted_url(&self) -> &str {
        &self.redacted_url
    }

    /// Schema of the results and control tables (`?schema=`, default `unistore`).
    pub fn store_schema(&self) -> &str {
        &self.store_schema
    }

    /// The `sslmode` in effect.
    pub fn ssl_mode(&self) -> SslMode {
        self.ssl_mode
    }

    /// Where the password comes from.
    pub fn password_source(&self) -> &PasswordSource {
        &self.password_source
    }

    /// The user name connections log in as.
    pub fn user(&self) -> Option<&str> {
        self.driver.get_user()
    }

    /// The database name, when set (the server's default is the user name).
    pub fn dbname(&self) -> Option<&str> {
        self.driver.get_dbname()
    }

    /// `host:port` of every host the configuration tries, for messages (no secrets).
    pub fn endpoint(&self) -> String {
        let ports = self.driver.get_ports();
        let port = |i: usize| ports.get(i).or_else(|| ports.first()).copied().unwrap_or(5432);
        let hosts = self.driver.get_hosts();
        let addrs = self.driver.get_hostaddrs();
        let n = hosts.len().max(addrs.len());
        let described: Vec<String> = (0..n)
            .map(|i| match (hosts.get(i), addrs.get(i)) {
                (Some(Host::Tcp(h)), _) if h.contains(':') => format!("[{h}]:{}", port(i)),
                (Some(Host::Tcp(h)), _) => format!("{h}:{}", port(i)),
                #[cfg(unix)]
                (Some(Host::Unix(p)), _) => format!("{}/.s.PGSQL.{}", p.display(), port(i)),
                (None, Some(std::net::IpAddr::V6(a))) => format!("[{a}]:{}", port(i)),
                (None, Some(a)) => format!("{a}:{}", port(i)),
                (None, None) => String::new(),
            })
            .collect();
        described.join(",")
    }
}

/// libpq's environment defaults for what the URL leaves out.
fn fill_from_env(
    driver: &mut tokio_postgres::Config,
    env: &dyn Fn(&str) -> Option<String>,
    redacted_url: &str,
) -> Result<()> {
    let var = |name: &str| env(name).filter(|v| !v.is_empty());
    if driver.get_ports().is_empty() {
        if let Some(ports) = var("PGPORT") {
            for p in ports.split(',') {
                let port = p.trim().parse::<u16>().map_err(|_| {
                    Error::invalid(format!(
                        "PGPORT `{ports}` is not a port number (used for `{redacted_url}`)"
                    ))
                })?;
                driver.port(port);
            }
        }
    }
    if driver.get_hosts().is_empty() && driver.get_hostaddrs().is_empty() {
        match var("PGHOST") {
            Some(hosts) => {
                for h in hosts.split(',') {
                    driver.host(h.trim());
                }
            }
            None => {
                // libpq's default: the local socket directory, where a server listens.
                let port = driver.get_ports().first().copied().unwrap_or(5432);
                let socket = pgpass::DEFAULT_SOCKET_DIRS
                    .iter()
                    .find(|dir| Path::new(dir).join(format!(".s.PGSQL.{port}")).exists());
                match socket {
                    Some(dir) => driver.host(*dir),
                    None => driver.host("localhost"),
                };
            }
        }
    }
    if driver.get_user().is_none() {
        // libpq's default is the operating-system user, so `postgres://host/db` behaves as psql.
        match var("PGUSER").or_else(|| var("USER")) {
            Some(user) => driver.user(user),
            None => {
                return Err(Error::invalid(format!(
                "no user name for `{redacted_url}`: put it in the URL (postgres://USER@host/db) or in PGUSER"
            )))
            }
        };
    }
    if driver.get_dbname().is_none() {
        if let Some(db) = var("PGDATABASE") {
            driver.dbname(db);
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn parse_in(url: &str, vars: &[(&str, &str)]) -> Result<PostgresConfig> {
        let vars: HashMap<String, String> =
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        PostgresConfig::parse_with_env(url, &|k| vars.get(k).cloned())
    }

    #[test]
    fn debug_never_shows_the_password() {
        let c = parse_in("postgres://bob:hunter2@db.example:5432/x?schema=results&application_name=a", &[])
            .expect("valid URL");
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("***") && shown.contains("Url"), "{shown}");
        assert_eq!(c.store_schema(), "results");
        assert_eq!(c.ssl_mode(), SslMode::Prefer, "libpq's default");
        assert_eq!(c.endpoint(), "db.example:5432");
        let c = parse_in("postgres://bob@db/x", &[("PGPASSWORD", "from-env-77")]).expect("valid URL");
        assert_eq!(c.password_source(), &PasswordSource::Environment);
        assert!(!format!("{c:?}").contains("from-env-77"));
    }

    #[test]
    fn every_sslmode_of_libpq_is_accepted() {
        for (text, mode) in [
            ("disable", SslMode::Disable),
            ("allow", SslMode::Allow),
            ("prefer", SslMode::Prefer),
            ("require", SslMode::Require),
            ("verify-ca", SslMode::VerifyCa),
            ("verify-full", SslMode::VerifyFull),
        ] {
            let c = parse_in(&format!("postgres://u@h/db?sslmode={text}"), &[]).expect("valid URL");
            assert_eq!(c.ssl_mode(), mode);
            assert_eq!(c.tls_connector.is_some(), mode != SslMode::Disable);
        }
        let c = parse_in("postgres://u@h/db", &[("PGSSLMODE", "require")]).expect("valid URL");
        assert_eq!(c.ssl_mode(), SslMode::Require, "PGSSLMODE fills in");
        let c = parse_in("postgres://u@h/db?sslmode=disable", &[("PGSSLMODE", "require")]).expect("valid");
        assert_eq!(c.ssl_mode(), SslMode::Disable, "the URL wins");
        let e = parse_in("postgres://u:pw@h/db?sslmode=sometimes", &[]).expect_err("bad sslmode");
        assert!(e.to_string().contains("sometimes") && !e.to_string().contains("pw@"), "{e}");
        let e =
            parse_in("postgres://u@h/db?sslmode=verify-full&sslrootcert=/no/such.crt", &[]).expect_err("");
        assert!(e.to_string().contains("/no/such.crt"), "{e}");
    }

    #[test]
    fn bad_urls_are_clear_and_redacted() {
        let e = parse_in("mysql://u:secret@h/db", &[]).expect_err("wrong scheme");
        assert!(!e.to_string().contains("secret"), "{e}");
        let e = parse_in("postgres://u@h/db?schema=a\"b", &[]).expect_err("bad schema");
        assert!(e.to_string().contains("schema"), "{e}");
        let e = parse_in("postgres://u@h/db?connect_timeout=soon", &[]).expect_err("bad timeout");
        assert!(e.to_string().contains("connect_timeout"), "{e}");
    }

    #[test]
    fn libpq_environment_fills_what_the_url_leaves_out() {
        let env = [
            ("PGHOST", "db.internal"),
            ("PGPORT", "6432"),
            ("PGUSER", "envuser"),
            ("PGDATABASE", "envdb"),
            ("USER", "osuser"),
        ];
        let c = parse_in("postgres://", &env).expect("an empty URL");
        assert_eq!(c.endpoint(), "db.internal:6432");
        assert_eq!((c.user(), c.dbname()), (Some("envuser"), Some("envdb")));
        let c = parse_in("postgres:///only_db", &env).expect("a URL without host");
        assert_eq!((c.endpoint().as_str(), c.dbname()), ("db.internal:6432", Some("only_db")));
        let c = parse_in("postgres://me@h:5433/db", &env).expect("a full URL");
        assert_eq!((c.endpoint().as_str(), c.user(), c.dbname()), ("h:5433", Some("me"), Some("db")));
        let c = parse_in("postgres://h/db", &[("USER", "osuser")]).expect("no PGUSER");
        assert_eq!(c.user(), Some("osuser"), "the operating-system user, as libpq");
        let e = parse_in("postgres://h/db", &[]).expect_err("no user at all");
        assert!(e.to_string().contains("PGUSER"), "{e}");
        let e = parse_in("postgres:///db", &[("PGPORT", "x"), ("USER", "u")]).expect_err("bad PGPORT");
        assert!(e.to_string().contains("PGPORT"), "{e}");
        let c = parse_in("postgres:///db", &[("PGHOST", "/srv/sock"), ("USER", "u")]).expect("socket");
        assert_eq!(c.endpoint(), "/srv/sock/.s.PGSQL.5432");
    }

    #[test]
    fn passwords_come_from_the_url_then_pgpassword_then_the_password_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temporary directory");
        let file = dir.path().join("pgpass");
        std::fs::write(&file, "h:5432:db:bob:from-file\n*:*:*:carol:carol-file\n").expect("write");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let passfile = file.to_str().expect("UTF-8 path");
        let home = dir.path().to_str().expect("UTF-8 path");

        let pw =
            |c: &PostgresConfig| c.driver.get_password().map(|p| String::from_utf8_lossy(p).into_owned());
        let c = parse_in("postgres://bob:in-url@h/db", &[("PGPASSWORD", "env"), ("PGPASSFILE", passfile)])
            .expect("valid");
        assert_eq!((c.password_source(), pw(&c).as_deref()), (&PasswordSource::Url, Some("in-url")));
        let c =
            parse_in("postgres://bob@h/db", &[("PGPASSWORD", "env"), ("PGPASSFILE", passfile)]).expect("");
        assert_eq!((c.password_source(), pw(&c).as_deref()), (&PasswordSource::Environment, Some("env")));
        let c = parse_in("postgres://bob@h/db", &[("PGPASSFILE", passfile)]).expect("valid");
        assert_eq!(c.password_source(), &PasswordSource::File(file.clone()));
        assert_eq!(pw(&c).as_deref(), Some("from-file"));
        let c = parse_in(&format!("postgres://carol@x:7/y?passfile={passfile}"), &[]).expect("valid");
        assert_eq!(pw(&c).as_deref(), Some("carol-file"), "passfile= in the URL");
        let c = parse_in("postgres://bob@h/other", &[("PGPASSFILE", passfile)]).expect("valid");
        assert_eq!(c.password_source(), &PasswordSource::None);
        assert!(c.password_note.as_deref().is_some_and(|n| n.contains("h:5432:other:bob")), "{c:?}");

        // ~/.pgpass by default, and ignored when others may read it.
        let default = dir.path().join(".pgpass");
        std::fs::copy(&file, &default).expect("copy");
        std::fs::set_permissions(&default, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let c = parse_in("postgres://bob@h/db", &[("HOME", home)]).expect("valid");
        assert_eq!(c.password_source(), &PasswordSource::File(default.clone()));
        std::fs::set_permissions(&default, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        let c = parse_in("postgres://bob@h/db", &[("HOME", home)]).expect("valid");
        assert_eq!(c.password_source(), &PasswordSource::None);
        assert!(c.password_note.as_deref().is_some_and(|n| n.contains("chmod 0600")), "{c:?}");
    }

    #[test]
    fn connect_timeout_from_the_url_wins_over_the_callers_default() {
        let c = parse_in("postgres://u@h/db", &[]).expect("valid");
        assert_eq!(c.connect_timeout(), Some(DEFAULT_CONNECT_TIMEOUT));
        let c = c.with_default_connect_timeout(Duration::from_secs(3));
        assert_eq!(c.connect_timeout(), Some(Duration::from_secs(3)));
        let c = parse_in("postgres://u@h/db?connect_timeout=2", &[]).expect("valid");
        let c = c.with_default_connect_timeout(Duration::from_secs(30));
        assert_eq!(c.connect_timeout(), Some(Duration::from_secs(2)));
        let c = parse_in("postgres://u@h/db?connect_timeout=0", &[]).expect("valid");
        assert_eq!(c.with_default_connect_timeout(Duration::from_secs(3)).connect_timeout(), None);
    }
}
