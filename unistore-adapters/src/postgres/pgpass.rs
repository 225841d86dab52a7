//! libpq's password file (`~/.pgpass`, `PGPASSFILE`, the `passfile` URL parameter), read the
//! way libpq reads it.
//!
//! Each line is `hostname:port:database:username:password`; the first line whose four first
//! fields match the connection wins. A field of exactly `*` matches anything; `\:` and `\\`
//! stand for a colon and a backslash. Lines starting with `#` are comments. A host that is
//! empty or libpq's default socket directory matches `localhost`. Like libpq, a file that is
//! not a plain file, or that group or others may read, is ignored (with the reason kept, so
//! that a failed login can say why the file was not used).

use std::path::{Path, PathBuf};

/// libpq's default Unix socket directories (Debian's and the upstream default): a connection
/// through them matches the `localhost` entries of the file, as libpq does.
pub(crate) const DEFAULT_SOCKET_DIRS: [&str; 2] = ["/var/run/postgresql", "/tmp"];

/// The connection a password is looked up for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PasswordQuery<'a> {
    /// Host name, IP address or Unix socket directory, as given.
    pub host: &'a str,
    /// Port, as text (libpq compares the text).
    pub port: &'a str,
    /// Database name (libpq's default is the user name).
    pub database: &'a str,
    /// User name.
    pub user: &'a str,
}

/// What reading the password file gave.
pub(crate) enum PasswordFile {
    /// No file at that path: nothing to say (libpq is silent too).
    Absent,
    /// The file exists but was not used; the reason names the fix.
    Ignored(String),
    /// The file was read and no line matched.
    NoMatch,
    /// The password of the first matching line.
    Found(String),
}

// Hand-written: the password must not reach a log line through Debug.
impl std::fmt::Debug for PasswordFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PasswordFile::Absent => f.write_str("Absent"),
            PasswordFile::Ignored(why) => f.debug_tuple("Ignored").field(why).finish(),
            PasswordFile::NoMatch => f.write_str("NoMatch"),
            PasswordFile::Found(_) => f.write_str("Found(***)"),
        }
    }
}

/// The default password file: `$HOME/.pgpass`.
pub(crate) fn default_path(home: Option<&str>) -> Option<PathBuf> {
    home.filter(|h| !h.is_empty()).map(|h| Path::new(h).join(".pgpass"))
}

/// Reads `path` and looks the connection up in it.
pub(crate) fn lookup(path: &Path, query: &PasswordQuery<'_>) -> PasswordFile {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return PasswordFile::Absent,
        Err(e) => {
            return PasswordFile::Ignored(format!("password file {} cannot be read: {e}", path.display()))
        }
    };
    if !meta.is_file() {
        return PasswordFile::Ignored(format!(
            "password file {} is not a plain file, so it was ignored (as libpq does)",
            path.display()
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            return PasswordFile::Ignored(format!(
                "password file {} has group or world access (mode {:04o}), so it was ignored (as libpq \
                 does): run `chmod 0600 {}`",
                path.display(),
                mode & 0o7777,
                path.display()
            ));
        }
    }
    match std::fs::read_to_string(path) {
        Ok(contents) => match find(&contents, query) {
            Some(password) => PasswordFile::Found(password),
            None => PasswordFile::NoMatch,
        },
        Err(e) => PasswordFile::Ignored(format!("password file {} cannot be read: {e}", path.display())),
    }
}

/// The password of the first line of `contents` that matches `query`.
pub(crate) fn find(contents: &str, query: &PasswordQuery<'_>) -> Option<String> {
    if query.database.is_empty() || query.user.is_empty() {
        return None;
    }
    let host = if query.host.is_empty() || DEFAULT_SOCKET_DIRS.contains(&query.host.trim_end_matches('/')) {
        "localhost"
    } else {
        query.host
    };
    let port = if query.port.is_empty() { "5432" } else { query.port };
    for line in contents.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some(rest) = match_field(line, host)
            .and_then(|rest| match_field(rest, port))
            .and_then(|rest| match_field(rest, query.database))
            .and_then(|rest| match_field(rest, query.user))
        else {
            continue;
        };
        let password = unescape(rest);
        if password.is_empty() {
            // libpq treats an empty password as none.
            return None;
        }
        return Some(password);
    }
    None
}

/// Matches the field at the start of `line` against `value`; returns what follows its colon.
fn match_field<'a>(line: &'a str, value: &str) -> Option<&'a str> {
    if let Some(rest) = line.strip_prefix("*:") {
        return Some(rest);
    }
    let mut expected = value.chars();
    let mut chars = line.char_indices();
    while let Some((i, c)) = chars.next() {
        let literal = match c {
            ':' => {
                // End of the field: it matches if the whole value was consumed.
                return expected.next().is_none().then(|| &line[i + 1..]);
            }
            '\\' => match chars.next() {
                Some((_, escaped)) => escaped,
                None => return None,
            },
            other => other,
        };
        if expected.next() != Some(literal) {
            return None;
        }
    }
    // The line ended inside the first four fields.
    None
}

/// The password field, with `\x` read as `x`.
fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q<'a>(host: &'a str, port: &'a str, database: &'a str, user: &'a str) -> PasswordQuery<'a> {
        PasswordQuery { host, port, database, user }
    }

    const FILE: &str = "\
# comment line: host:port:db:user:password
db.example:5432:app:bob:first
db.example:5432:app:bob:second-never-used
db.example:*:*:alice:wild\\:card\\\\pw
*:6543:*:*:any-host-on-6543
localhost:5432:local:carol:via-socket
/srv/pg:5432:*:dave:custom-socket
odd\\:host:5432:*:erin:escaped-host
db.example:5432:app:empty:
";

    #[test]
    fn the_first_matching_line_wins() {
        assert_eq!(find(FILE, &q("db.example", "5432", "app", "bob")).as_deref(), Some("first"));
        assert_eq!(find(FILE, &q("db.example", "5432", "other", "bob")), None);
        assert_eq!(find(FILE, &q("db.example2", "5432", "app", "bob")), None, "no prefix matching");
        assert_eq!(find(FILE, &q("db.exampl", "5432", "app", "bob")), None, "no prefix matching");
    }

    #[test]
    fn wildcards_and_escapes() {
        assert_eq!(
            find(FILE, &q("db.example", "7777", "x", "alice")).as_deref(),
            Some("wild:card\\pw"),
            "`*` matches any port and database; `\\:` and `\\\\` in the password"
        );
        assert_eq!(find(FILE, &q("anything", "6543", "x", "y")).as_deref(), Some("any-host-on-6543"));
        assert_eq!(find(FILE, &q("odd:host", "5432", "d", "erin")).as_deref(), Some("escaped-host"));
        assert_eq!(find(FILE, &q("oddXhost", "5432", "d", "erin")), None);
    }

    #[test]
    fn default_port_and_sockets_match_like_libpq() {
        assert_eq!(
            find(FILE, &q("db.example", "", "app", "bob")).as_deref(),
            Some("first"),
            "5432 by default"
        );
        assert_eq!(find(FILE, &q("", "5432", "local", "carol")).as_deref(), Some("via-socket"));
        assert_eq!(
            find(FILE, &q("/var/run/postgresql", "5432", "local", "carol")).as_deref(),
            Some("via-socket")
        );
        assert_eq!(find(FILE, &q("/srv/pg", "5432", "local", "carol")), None, "another socket directory");
        assert_eq!(find(FILE, &q("/srv/pg", "5432", "db", "dave")).as_deref(), Some("custom-socket"));
    }

    #[test]
    fn an_empty_password_is_none_and_short_lines_never_match() {
        assert_eq!(find(FILE, &q("db.example", "5432", "app", "empty")), None);
        assert_eq!(find("h:5432:db", &q("h", "5432", "db", "u")), None);
        assert_eq!(find("h:5432:db:u", &q("h", "5432", "db", "u")), None, "no password field");
        assert_eq!(find("h:5432:db:u:pw", &q("h", "5432", "", "u")), None, "database required");
    }

    #[cfg(unix)]
    #[test]
    fn group_or_world_readable_files_are_ignored_with_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("pgpass");
        std::fs::write(&path, "h:5432:db:u:s3cret-in-file\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let query = q("h", "5432", "db", "u");
        assert!(matches!(lookup(&path, &query), PasswordFile::Found(p) if p == "s3cret-in-file"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let outcome = lookup(&path, &query);
        let PasswordFile::Ignored(why) = &outcome else { panic!("not ignored: {outcome:?}") };
        assert!(why.contains("group or world access") && why.contains("chmod 0600"), "{why}");
        assert!(!why.contains("s3cret"), "{why}");
        assert!(matches!(lookup(&dir.path().join("missing"), &query), PasswordFile::Absent));
        assert!(matches!(lookup(dir.path(), &query), PasswordFile::Ignored(_)), "a directory");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert!(matches!(lookup(&path, &q("h", "5432", "db", "v")), PasswordFile::NoMatch));
        assert_eq!(format!("{:?}", lookup(&path, &query)), "Found(***)");
    }
}
