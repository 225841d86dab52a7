//! A small SQL lexer for user-written statements: enough to find `?` placeholders and
//! statement separators outside string literals, quoted identifiers, comments and dollar
//! quotes. It does not parse SQL; it only has to agree with every backend on where a literal
//! or a comment begins and ends.

/// A token of interest found outside literals and comments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    Placeholder,
    Separator,
    Code,
}

/// Walks `sql` and reports placeholders, separators and other code characters, skipping
/// literals (`'...'` with `''` escapes), quoted identifiers (`"..."`, `` `...` ``), comments
/// (`-- ...`, `/* ... */`, nested as PostgreSQL allows) and dollar-quoted strings
/// (`$tag$ ... $tag$`).
fn scan(sql: &str, mut on: impl FnMut(Mark, usize)) {
    let b = sql.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\'' | b'"' | b'`' => {
                let q = b[i];
                on(Mark::Code, i);
                i += 1;
                while i < b.len() {
                    if b[i] == q {
                        // A doubled quote is an escaped quote inside the literal.
                        if i + 1 < b.len() && b[i + 1] == q {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut depth = 1;
                i += 2;
                while i < b.len() && depth > 0 {
                    if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        i += 2;
                    } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        i += 2;
                    } else {
                        i += 1;
                    }
                }
            }
            b'$' => {
                // `$tag$` or `$$` opens a dollar-quoted string; `$1` is a parameter.
                let tag_end = b[i + 1..]
                    .iter()
                    .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
                    .map(|p| i + 1 + p);
                match tag_end {
                    Some(end) if b[end] == b'$' && !b[i + 1..end].first().is_some_and(u8::is_ascii_digit) => {
                        let tag = &sql[i..=end];
                        on(Mark::Code, i);
                        match sql[end + 1..].find(tag) {
                            Some(close) => i = end + 1 + close + tag.len(),
                            None => i = b.len(),
                        }
                    }
                    _ => {
                        on(Mark::Code, i);
                        i += 1;
                    }
                }
            }
            b'?' => {
                on(Mark::Placeholder, i);
                i += 1;
            }
            b';' => {
                on(Mark::Separator, i);
                i += 1;
            }
            c if c.is_ascii_whitespace() => i += 1,
            _ => {
                on(Mark::Code, i);
                i += 1;
            }
        }
    }
}

/// Counts `?` placeholders outside literals, quoted identifiers and comments.
pub fn count_placeholders(sql: &str) -> usize {
    let mut n = 0;
    scan(sql, |m, _| n += usize::from(m == Mark::Placeholder));
    n
}

/// Number of statements in `sql`: separated by `;` outside literals and comments, ignoring
/// empty ones (a trailing `;` does not make a second statement).
pub fn count_statements(sql: &str) -> usize {
    let mut statements = 0;
    let mut has_code = false;
    scan(sql, |m, _| match m {
        Mark::Separator => {
            statements += usize::from(has_code);
            has_code = false;
        }
        Mark::Placeholder | Mark::Code => has_code = true,
    });
    statements + usize::from(has_code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_outside_literals_and_comments() {
        assert_eq!(count_placeholders("SELECT ? , ?"), 2);
        assert_eq!(count_placeholders("SELECT '?', \"a?\" FROM t WHERE x = ? -- ?\n"), 1);
        assert_eq!(count_placeholders("SELECT 'it''s ?' , ? /* ? /* ? */ ? */"), 1);
        assert_eq!(count_placeholders("SELECT $$ ? $$, $x$ ? $x$, ?, $1"), 1);
    }

    #[test]
    fn statements_are_counted_outside_literals() {
        assert_eq!(count_statements("SELECT 1"), 1);
        assert_eq!(count_statements("SELECT 1;"), 1);
        assert_eq!(count_statements("SELECT 1;  -- done\n"), 1);
        assert_eq!(count_statements("SELECT 1; DROP TABLE y"), 2);
        assert_eq!(count_statements("SELECT ';' , \";\" /* ; */ -- ;\n"), 1);
        assert_eq!(count_statements("SELECT $$;$$"), 1);
        assert_eq!(count_statements(""), 0);
        assert_eq!(count_statements("  ;  ; -- nothing"), 0);
        assert_eq!(count_statements("SELECT 1;;SELECT 2"), 2);
    }
}
