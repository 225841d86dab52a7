//! A stored connection's URL: what is kept in clear and what is sealed (the password), the
//! backend's own check of the URL, and the connection's id.

use unistore_core::orchestrator::Secret;

use super::{bad_request, Resolved, MAX_URL, URL_EXAMPLES};
use crate::error::ApiError;

/// A URL split into what is stored in clear and the password.
#[derive(Debug)]
pub(super) struct SplitUrl {
    pub(super) kind: String,
    pub(super) url: String,
    pub(super) secret: Option<Secret>,
}

/// A URL's percent-encoded part as text (invalid UTF-8 replaced, never a panic).
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// Checks the URL's scheme and shape and moves any password out of it.
pub(super) fn split_secret(raw: &str) -> Result<SplitUrl, ApiError> {
    let raw = raw.trim();
    let shown = unistore_adapters::redact_url(raw);
    if raw.is_empty() {
        return Err(bad_request(format!("url: give the database URL, e.g. {URL_EXAMPLES}")));
    }
    if raw.len() > MAX_URL {
        return Err(bad_request(format!("url: longer than {MAX_URL} bytes")));
    }
    let scheme = raw.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    let kind = match scheme.as_deref() {
        Some("sqlite") => {
            unistore_adapters::sqlite::SqliteConfig::from_url(raw)
                .map_err(|e| bad_request(format!("url: {e}")))?;
            return Ok(SplitUrl { kind: "sqlite".into(), url: raw.to_string(), secret: None });
        }
        Some("postgres" | "postgresql") => "postgres",
        Some("snowflake") => "snowflake",
        Some(other) => {
            return Err(bad_request(format!(
                "url: `{other}://` is not a supported database; give e.g. {URL_EXAMPLES}"
            )))
        }
        None => return Err(bad_request(format!("url: `{shown}` is not a URL; give e.g. {URL_EXAMPLES}"))),
    };
    let mut url = url::Url::parse(raw)
        .map_err(|e| bad_request(format!("url: `{shown}` does not parse ({e}); give e.g. {URL_EXAMPLES}")))?;
    if url.host_str().is_none_or(str::is_empty) && kind == "snowflake" {
        return Err(bad_request(format!(
            "url: `{shown}` names no account; give e.g. snowflake://user@account/database/schema?warehouse=WH"
        )));
    }
    let in_user_part = url.password().map(percent_decode).filter(|p| !p.is_empty());
    if url.password().is_some() {
        let _ = url.set_password(None);
    }
    let mut in_query = None;
    if url.query().is_some() {
        let pairs: Vec<(String, String)> =
            url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        let (secrets, kept): (Vec<_>, Vec<_>) =
            pairs.into_iter().partition(|(k, _)| k.eq_ignore_ascii_case("password"));
        in_query = secrets.into_iter().map(|(_, v)| v).find(|v| !v.is_empty());
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(kept);
        }
    }
    let secret = match (in_user_part, in_query) {
        (Some(a), Some(b)) if a != b => {
            return Err(bad_request("url: the URL holds two different passwords; give the password once"))
        }
        (a, b) => a.or(b).map(Secret::new),
    };
    Ok(SplitUrl { kind: kind.to_string(), url: url.to_string(), secret })
}

/// The backend's own parser accepts the URL (parameters, sslmode, account).
pub(super) fn validate_with_backend(kind: &str, url: &str, secret: Option<&Secret>) -> Result<(), ApiError> {
    let full = Resolved { kind: kind.to_string(), url: url.to_string(), secret: secret.cloned() };
    let result = match kind {
        "postgres" => {
            unistore_adapters::postgres::PostgresConfig::parse_with_env(&full.full_url(), &|_| None)
                .map(|_| ())
        }
        "snowflake" => unistore_adapters::snowflake::SnowflakeConfig::from_url(&full.full_url()).map(|_| ()),
        _ => Ok(()),
    };
    result.map_err(|e| bad_request(full.scrub(format!("url: {e}"))))
}

/// An id from the name (`Staging PG` -> `staging-pg`), made unique with a number.
pub(super) fn unique_id(name: &str, taken: impl Fn(&str) -> bool) -> String {
    let mut slug = String::new();
    for ch in name.chars() {
        if ch.is_ascii_alphanumeric() {
            slug.push(ch.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let mut slug: String = slug.trim_end_matches('-').chars().take(40).collect();
    if slug.is_empty() {
        slug = "connection".to_string();
    }
    let mut id = slug.clone();
    let mut n = 2;
    while taken(&id) {
        id = format!("{slug}-{n}");
        n += 1;
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_leave_the_url() {
        let s = split_secret("postgres://bob:p%40ss@db:5432/app?sslmode=disable").expect("valid");
        assert_eq!(s.kind, "postgres");
        assert_eq!(s.url, "postgres://bob@db:5432/app?sslmode=disable");
        assert_eq!(s.secret.expect("a secret").expose(), "p@ss");
        let s = split_secret("snowflake://u@acct/db/sch?warehouse=WH&password=hunter2").expect("valid");
        assert_eq!(s.url, "snowflake://u@acct/db/sch?warehouse=WH");
        assert_eq!(s.secret.expect("a secret").expose(), "hunter2");
        let s = split_secret("postgresql://bob@db/app").expect("valid");
        assert!(s.secret.is_none());
        assert_eq!(s.url, "postgresql://bob@db/app");
        assert!(split_secret("postgres://a:x@h/db?password=y").is_err());
        let err = split_secret("mysql://bob:hunter2@db/app").expect_err("unsupported");
        assert!(err.message.contains("mysql://") && !err.message.contains("hunter2"), "{}", err.message);
        let err = split_secret("not a url").expect_err("no scheme");
        assert!(err.message.contains("postgres://user@host:5432/database"), "{}", err.message);
    }

    #[test]
    fn ids_come_from_names_and_are_unique() {
        assert_eq!(unique_id("Staging PG (eu)", |_| false), "staging-pg-eu");
        assert_eq!(unique_id("***", |_| false), "connection");
        assert_eq!(unique_id("demo", |id| id == "demo"), "demo-2");
    }

    #[test]
    fn percent_decoding_never_panics() {
        assert_eq!(percent_decode("a%2Fb%"), "a/b%");
        assert_eq!(percent_decode("%a\u{e9}%41"), "%a\u{e9}A", "a stray % before a multi-byte character");
    }
}
