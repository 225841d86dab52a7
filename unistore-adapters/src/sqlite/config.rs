//! `sqlite://` URLs.
//!
//! - `sqlite:///abs/path/file.db`: an absolute path (three slashes: the scheme's two, then the
//!   path's own).
//! - `sqlite://relative/path.db`: relative to the current directory.
//!
//! Query parameters are not accepted: SQLite needs no options here, and silently ignoring one
//! would hide a typo.

use std::path::{Path, PathBuf};

use unistore_core::{Error, Result};

/// Where an SQLite database lives. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteConfig {
    /// The database file, absolute where the current directory is known.
    pub path: PathBuf,
}

impl SqliteConfig {
    /// A configuration for a file path.
    pub fn from_path(path: impl Into<PathBuf>) -> Self {
        SqliteConfig { path: path.into() }
    }

    /// The file path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

const EXAMPLES: &str = "use sqlite:///absolute/path/file.db or sqlite://relative/path/file.db";

impl SqliteConfig {
    /// Parses an `sqlite://` URL into its file path (each backend's configuration is built
    /// the same way: `PostgresConfig::from_url`, `SnowflakeConfig::from_url`).
    pub fn from_url(url: &str) -> Result<SqliteConfig> {
        parse_url(url)
    }
}

/// Parses an `sqlite://` URL into its file path.
fn parse_url(url: &str) -> Result<SqliteConfig> {
    let url = url.trim();
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(Error::invalid(format!("`{url}` is not an sqlite:// URL: {EXAMPLES}")));
    };
    if !scheme.eq_ignore_ascii_case("sqlite") {
        return Err(Error::invalid(format!("`{scheme}://` is not an SQLite URL scheme: {EXAMPLES}")));
    }
    if rest.contains('?') || rest.contains('#') {
        return Err(Error::invalid(format!(
            "`{url}` has query parameters or a fragment, which sqlite:// URLs do not take: \
             remove everything from `?` (or `#`); {EXAMPLES}"
        )));
    }
    if rest.is_empty() || rest == "/" {
        return Err(Error::invalid(format!("`{url}` names no database file: {EXAMPLES}")));
    }
    if rest.ends_with('/') {
        return Err(Error::invalid(format!("`{url}` names a directory, not a database file: {EXAMPLES}")));
    }
    if rest == ":memory:" || rest.starts_with("file:") {
        return Err(Error::invalid(format!(
            "`{url}` is not a file path: in-memory and `file:` URI databases are not supported \
             because every connection must see the same data; {EXAMPLES}"
        )));
    }
    if rest.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "`{}` contains control characters: {EXAMPLES}",
            url.escape_debug()
        )));
    }
    let path = PathBuf::from(rest);
    let path = if path.is_absolute() {
        path
    } else {
        // Resolve now, so that error messages show the file that was actually meant even if the
        // process changes directory later.
        match std::env::current_dir() {
            Ok(cwd) => cwd.join(path),
            Err(_) => path,
        }
    };
    Ok(SqliteConfig { path })
}

#[cfg(test)]
mod tests {
    use super::*;
    use unistore_core::ErrorKind;

    #[test]
    fn absolute_and_relative_paths() {
        let abs = parse_url("sqlite:///tmp/x/bench.db").expect("absolute URL parses");
        assert_eq!(abs.path, PathBuf::from("/tmp/x/bench.db"));
        let rel = parse_url("sqlite://data/bench.db").expect("relative URL parses");
        assert!(rel.path.is_absolute(), "{:?}", rel.path);
        assert!(rel.path.ends_with("data/bench.db"), "{:?}", rel.path);
    }

    #[test]
    fn malformed_urls_are_rejected_with_the_fix() {
        for bad in [
            "sqlite://",
            "sqlite:///",
            "sqlite:///tmp/dir/",
            "sqlite:///tmp/x.db?mode=ro",
            "sqlite://:memory:",
            "postgres://host/db",
            "/tmp/x.db",
        ] {
            let e = parse_url(bad).expect_err(bad);
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad}");
            assert!(e.to_string().contains("sqlite:///"), "{bad}: {e}");
        }
    }
}
