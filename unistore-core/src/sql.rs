//! SQL rendering shared by the table managers: the statements for each query kind, in a
//! dialect's placeholder and quoting style. Identifiers are always quoted, so names are never
//! interpreted as SQL.

use crate::error::{Error, Result};
use crate::model::{QueryKind, TableRef};
use crate::table::{ColumnInfo, RenderRequest, TableProfile};
use crate::target::{ParamRole, ParamSpec, StatementSpec};
use crate::template::count_placeholders;
use crate::value::ColumnType;

/// Placeholder style of a dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    /// `?` (SQLite, Snowflake).
    Question,
    /// `$1`, `$2`, ... (PostgreSQL).
    Dollar,
}

/// The parts of a SQL dialect that rendering needs.
#[derive(Debug, Clone, Copy)]
pub struct SqlDialect {
    /// Placeholder style.
    pub placeholder: Placeholder,
    /// Row-limiting clause format: `LIMIT n` everywhere we support.
    pub limit_keyword: &'static str,
    /// Whether `INSERT ... RETURNING column` exists (PostgreSQL, SQLite 3.35+; not Snowflake).
    pub returning: bool,
}

impl SqlDialect {
    /// SQLite.
    pub const SQLITE: SqlDialect =
        SqlDialect { placeholder: Placeholder::Question, limit_keyword: "LIMIT", returning: true };
    /// PostgreSQL family.
    pub const POSTGRES: SqlDialect =
        SqlDialect { placeholder: Placeholder::Dollar, limit_keyword: "LIMIT", returning: true };
    /// Snowflake.
    pub const SNOWFLAKE: SqlDialect =
        SqlDialect { placeholder: Placeholder::Question, limit_keyword: "LIMIT", returning: false };

    /// The placeholder for parameter number `n` (1-based).
    pub fn placeholder(&self, n: usize) -> String {
        match self.placeholder {
            Placeholder::Question => "?".to_string(),
            Placeholder::Dollar => format!("${n}"),
        }
    }

    /// Quotes an identifier with double quotes, doubling embedded quotes.
    pub fn quote_ident(&self, ident: &str) -> String {
        format!("\"{}\"", ident.replace('"', "\"\""))
    }

    /// Quotes a possibly qualified table name.
    pub fn quote_table(&self, table: &TableRef) -> String {
        let mut out = String::new();
        for part in [&table.database, &table.schema].into_iter().flatten() {
            out.push_str(&self.quote_ident(part));
            out.push('.');
        }
        out.push_str(&self.quote_ident(&table.name));
        out
    }

    /// Rewrites `?` placeholders (outside string literals) into this dialect's style.
    pub fn rewrite_placeholders(&self, sql: &str) -> String {
        if self.placeholder == Placeholder::Question {
            return sql.to_string();
        }
        let mut out = String::with_capacity(sql.len() + 8);
        let mut in_string = false;
        let mut n = 0;
        for c in sql.chars() {
            if c == '\'' {
                in_string = !in_string;
            }
            if c == '?' && !in_string {
                n += 1;
                out.push_str(&self.placeholder(n));
            } else {
                out.push(c);
            }
        }
        out
    }

    /// Renders the standard statement for a query kind against a profiled table.
    pub fn render(&self, profile: &TableProfile, request: &RenderRequest<'_>) -> Result<StatementSpec> {
        let table = self.quote_table(&profile.table);
        let values = request.values;
        match request.kind {
            QueryKind::PointLookup => {
                let key = profile.key_column(values.key_column.as_deref())?;
                Ok(StatementSpec {
                    kind: request.kind,
                    sql: format!(
                        "SELECT * FROM {table} WHERE {} = {}",
                        self.quote_ident(&key.name),
                        self.placeholder(1)
                    ),
                    params: vec![param(key, ParamRole::Key)],
                    returning: None,
                })
            }
            QueryKind::RangeScan => {
                let key = profile.key_column(values.key_column.as_deref())?;
                let k = self.quote_ident(&key.name);
                let width = values.range_scan_width;
                if key.column_type.is_integer() {
                    Ok(StatementSpec {
                        kind: request.kind,
                        sql: format!(
                            "SELECT * FROM {table} WHERE {k} >= {} AND {k} < {} ORDER BY {k} {} {width}",
                            self.placeholder(1),
                            self.placeholder(2),
                            self.limit_keyword
                        ),
                        params: vec![
                            param(key, ParamRole::Key),
                            param(key, ParamRole::KeyUpperBound { width }),
                        ],
                        returning: None,
                    })
                } else {
                    // Non-integer keys have no arithmetic upper bound: scan forward from a
                    // sampled key and let the limit bound the scan.
                    Ok(StatementSpec {
                        kind: request.kind,
                        sql: format!(
                            "SELECT * FROM {table} WHERE {k} >= {} ORDER BY {k} {} {width}",
                            self.placeholder(1),
                            self.limit_keyword
                        ),
                        params: vec![param(key, ParamRole::Key)],
                        returning: None,
                    })
                }
            }
            QueryKind::Insert => {
                let key = profile.key_column(values.key_column.as_deref())?;
                // A key the database generates (identity, sequence, autoincrement, rowid,
                // default) is left to it: supplying values would collide with the sequence the
                // application relies on, or be refused (GENERATED ALWAYS).
                let key_generated = key.generated.is_some();
                let mut cols = Vec::new();
                let mut params = Vec::new();
                for c in &profile.columns {
                    let is_key = c.name == key.name;
                    if is_key && key_generated {
                        continue;
                    }
                    // Columns the database fills itself are left to it.
                    if !is_key && (c.has_default || c.generated.is_some()) {
                        continue;
                    }
                    if !is_key && !generatable(&c.column_type) {
                        if c.nullable {
                            continue;
                        }
                        return Err(Error::invalid(format!(
                            "cannot generate values for column `{}` ({}) of {}: INSERT is not possible for this table; remove insert from the mix",
                            c.name, c.native_type, profile.table
                        )));
                    }
                    cols.push(self.quote_ident(&c.name));
                    params.push(param(c, if is_key { ParamRole::NewKey } else { ParamRole::ColumnValue }));
                }
                let mut sql = if cols.is_empty() {
                    format!("INSERT INTO {table} DEFAULT VALUES")
                } else {
                    let placeholders: Vec<String> = (1..=params.len()).map(|n| self.placeholder(n)).collect();
                    format!("INSERT INTO {table} ({}) VALUES ({})", cols.join(", "), placeholders.join(", "))
                };
                let mut returning = None;
                if values.read_your_writes && key_generated {
                    if !self.returning {
                        return Err(Error::invalid(format!(
                            "values.read_your_writes needs the keys of inserted rows, but `{}` of {} is generated \
                             by the database and this dialect has no INSERT ... RETURNING: turn read_your_writes off",
                            key.name, profile.table
                        )));
                    }
                    sql.push_str(&format!(" RETURNING {}", self.quote_ident(&key.name)));
                    returning = Some(key.name.clone());
                }
                Ok(StatementSpec { kind: request.kind, sql, params, returning })
            }
            QueryKind::Update => {
                let key = profile.key_column(values.key_column.as_deref())?;
                let target = match values.update_column.as_deref() {
                    Some(name) => {
                        let c = profile.column(name).ok_or_else(|| {
                            Error::invalid(format!(
                                "update column `{name}` does not exist in {}: columns are {}",
                                profile.table,
                                profile.column_names().join(", ")
                            ))
                        })?;
                        if !generatable(&c.column_type) {
                            return Err(Error::invalid(format!(
                                "update column `{name}` has type {}, for which no values can be generated: pick a numeric, text or timestamp column",
                                c.native_type
                            )));
                        }
                        if c.generated.is_some() || c.name == key.name {
                            return Err(Error::invalid(format!(
                                "update column `{name}` is the key or generated by the database: pick another column"
                            )));
                        }
                        c
                    }
                    None => pick_update_column(profile, &key.name)?,
                };
                Ok(StatementSpec {
                    kind: request.kind,
                    sql: format!(
                        "UPDATE {table} SET {} = {} WHERE {} = {}",
                        self.quote_ident(&target.name),
                        self.placeholder(1),
                        self.quote_ident(&key.name),
                        self.placeholder(2)
                    ),
                    params: vec![param(target, ParamRole::ColumnValue), param(key, ParamRole::Key)],
                    returning: None,
                })
            }
            QueryKind::CustomSql => {
                let custom = request.custom_sql.ok_or_else(|| {
                    Error::invalid("CUSTOM_SQL needs a [custom_sql] section with sql and params")
                })?;
                let n = count_placeholders(&custom.sql);
                if n != custom.params.len() {
                    return Err(Error::invalid(format!(
                        "custom_sql has {n} `?` placeholders but {} params",
                        custom.params.len()
                    )));
                }
                let key = profile.key_column(values.key_column.as_deref()).ok();
                let params = custom
                    .params
                    .iter()
                    .enumerate()
                    .map(|(i, g)| match (g, key) {
                        (crate::template::ParamGenerator::Key, Some(k)) => Ok(param(k, ParamRole::Key)),
                        (crate::template::ParamGenerator::Key, None) => Err(Error::invalid(
                            "custom_sql uses a `key` parameter but the table has no key column: set values.key_column",
                        )),
                        (g, _) => Ok(ParamSpec {
                            column: String::new(),
                            column_type: g.column_type(),
                            role: ParamRole::Custom(i),
                        }),
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(StatementSpec {
                    kind: request.kind,
                    sql: self.rewrite_placeholders(&custom.sql),
                    params,
                    returning: None,
                })
            }
        }
    }
}

fn param(c: &ColumnInfo, role: ParamRole) -> ParamSpec {
    ParamSpec { column: c.name.clone(), column_type: c.column_type.clone(), role }
}

/// Whether the engine can generate values of this type.
pub fn generatable(t: &ColumnType) -> bool {
    matches!(
        t,
        ColumnType::Integer
            | ColumnType::Float
            | ColumnType::Decimal
            | ColumnType::Text
            | ColumnType::Boolean
            | ColumnType::Timestamp
            | ColumnType::Date
    )
}

/// The column UPDATE writes when the template does not say: never a key or generated column;
/// preferably one that no index starts with (an update of an indexed column also rewrites the
/// index, which measures the index, not the update); among those, numbers, then text, then
/// anything that can be generated.
fn pick_update_column<'a>(profile: &'a TableProfile, key: &str) -> Result<&'a ColumnInfo> {
    let candidates = || {
        profile.columns.iter().filter(move |c| {
            c.name != key
                && !profile.primary_key.contains(&c.name)
                && c.generated.is_none()
                && generatable(&c.column_type)
        })
    };
    let rank = |c: &ColumnInfo| {
        let indexed = u8::from(c.indexed == Some(true));
        let kind = match c.column_type {
            ColumnType::Integer | ColumnType::Float | ColumnType::Decimal => 0,
            ColumnType::Text => 1,
            _ => 2,
        };
        (indexed, kind)
    };
    candidates().min_by_key(|c| rank(c)).ok_or_else(|| {
        Error::invalid(format!(
            "table {} has no non-key, non-generated column that UPDATE can set: remove update from the mix or \
             set values.update_column",
            profile.table
        ))
    })
}

impl crate::template::ParamGenerator {
    /// The type of value the generator produces.
    pub fn column_type(&self) -> ColumnType {
        use crate::template::ParamGenerator as G;
        match self {
            G::Key | G::Int { .. } => ColumnType::Integer,
            G::Float { .. } => ColumnType::Float,
            G::Text { .. } | G::Choice { .. } => ColumnType::Text,
            G::Now => ColumnType::Timestamp,
        }
    }
}
