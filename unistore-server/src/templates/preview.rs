//! "Preview SQL": the statements a run of a template would execute, rendered by the table
//! manager of the template's target, with their parameters described and the facts of the
//! profiled table.
//!
//! The statements come from [`unistore_core::runner::render_statements`], the function
//! [`unistore_core::runner::PreparedRun::prepare`] renders a run's statements with, after the
//! same steps a run takes before it (open the target, profile the table, check the mix's kinds
//! against the table type). The key pool is not sampled: on a large warehouse table that is a
//! query a preview should not cost.

use std::time::Duration;

use axum::http::StatusCode;
use serde::Serialize;
use unistore_adapters::{open_target, redact_url, TargetOptions};
use unistore_core::notes::run_notes;
use unistore_core::runner::render_statements;
use unistore_core::target::{ParamRole, StatementSpec};
use unistore_core::template::{CustomSql, Distribution, KeySource, ParamGenerator};
use unistore_core::{ColumnType, Error, ErrorKind, QueryKind, RunId, TableProfile, TableType, Template};

use crate::error::{ApiError, ApiErrorKind};
use crate::AppState;

/// Longest the whole preview may take (opening the target and profiling the table): a
/// database that accepts connections and never answers gets a 503 instead of a hung request.
const PREVIEW_TIMEOUT: Duration = Duration::from_secs(30);

/// Prefix of a target that names a stored connection (`connection:ID`).
pub(crate) const CONNECTION_PREFIX: &str = "connection:";

/// What `GET /api/templates/{id}/preview` and `POST /api/templates/preview` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Preview {
    /// The target, without secrets (`demo database` when the template names none).
    pub target: String,
    /// The table as profiled (schema filled in where the backend resolves it).
    pub table: String,
    /// The table's real type.
    pub table_type: TableType,
    /// Row count estimate.
    pub row_estimate: u64,
    /// The key column lookups, scans and updates use (`None`: the table has no primary key and
    /// the template names none; only inserts and custom SQL can run).
    pub key_column: Option<String>,
    /// Primary key columns, in key order.
    pub primary_key: Vec<String>,
    /// Columns in table order.
    pub columns: Vec<PreviewColumn>,
    /// One statement per kind of the mix, and one per custom statement, in run order.
    pub statements: Vec<PreviewStatement>,
    /// What may make the figures mislead (an unindexed key, triggers, ...), as a run prints them.
    pub warnings: Vec<String>,
}

/// A column of the previewed table.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct PreviewColumn {
    /// The column's name.
    name: String,
    /// Its type as the benchmark binds values (`integer`, `text`, `timestamp`, ...).
    column_type: String,
    /// Its type as the database declares it.
    native_type: String,
    /// Whether it accepts NULL.
    nullable: bool,
    /// Whether the database generates its value (identity, sequence, autoincrement, rowid,
    /// default expression).
    generated: bool,
    /// Whether an index (or the primary key) starts with it (`None`: the backend cannot tell).
    indexed: Option<bool>,
}

/// A statement a run of the template would execute.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct PreviewStatement {
    /// The query kind.
    pub kind: QueryKind,
    /// The custom statement's name, for named custom SQL.
    pub name: Option<String>,
    /// Its share of the mix, in percent (a custom statement: its share of CUSTOM_SQL's).
    pub percent: f64,
    /// The SQL text, with the dialect's placeholders.
    pub sql: String,
    /// The parameters, in placeholder order.
    pub params: Vec<PreviewParam>,
    /// The column an `INSERT ... RETURNING` yields (read-your-writes).
    pub returning: Option<String>,
}

/// A parameter of a previewed statement.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct PreviewParam {
    /// 1-based placeholder position.
    pub position: usize,
    /// The column compared with or written to (empty for custom SQL).
    pub column: String,
    /// The type the value is bound as.
    pub column_type: String,
    /// Where the value comes from, for a person.
    pub value: String,
}

fn column_type_name(t: &ColumnType) -> String {
    match t {
        ColumnType::Integer => "integer".into(),
        ColumnType::Float => "float".into(),
        ColumnType::Decimal => "decimal".into(),
        ColumnType::Text => "text".into(),
        ColumnType::Boolean => "boolean".into(),
        ColumnType::Timestamp => "timestamp".into(),
        ColumnType::Date => "date".into(),
        ColumnType::Json => "json".into(),
        ColumnType::Other(name) => name.to_ascii_lowercase(),
    }
}

fn distribution_name(d: &Distribution) -> String {
    match d {
        Distribution::Uniform => "uniform".into(),
        Distribution::Zipfian { theta } => format!("zipfian, theta {theta}"),
        Distribution::Sequential => "sequential".into(),
        Distribution::Hotspot { hot_fraction, hot_probability } => format!(
            "hotspot: {:.0}% of operations on {:.0}% of the keys",
            hot_probability * 100.0,
            hot_fraction * 100.0
        ),
    }
}

fn generator_description(g: &ParamGenerator) -> String {
    match g {
        ParamGenerator::Key => "a key of the table, drawn like point-lookup keys".into(),
        ParamGenerator::Int { min, max } => format!("a random integer in {min}..={max}"),
        ParamGenerator::Float { min, max } => format!("a random float in {min}..{max}"),
        ParamGenerator::Text { len } => format!("random text of {len} characters"),
        ParamGenerator::Choice { values } => format!("one of {}", values.join(", ")),
        ParamGenerator::Now => "the current time".into(),
    }
}

fn describe_param(template: &Template, custom: Option<&CustomSql>, role: &ParamRole, column: &str) -> String {
    let keys = || {
        let source = match template.values.source {
            KeySource::Pool => {
                format!("a pool of up to {} keys sampled from the table", template.values.pool_size)
            }
            KeySource::Range => "the key column's range".to_string(),
        };
        format!("{source}, {}", distribution_name(&template.values.distribution))
    };
    match role {
        ParamRole::Key => format!("a key of `{column}`: {}", keys()),
        ParamRole::KeyUpperBound { width } => format!("the key plus {width} (end of the range, exclusive)"),
        ParamRole::NewKey => format!("a new value of `{column}`, not yet in the table"),
        ParamRole::ColumnValue => format!("a generated value for `{column}`"),
        ParamRole::Custom(i) => custom
            .and_then(|c| c.params.get(*i))
            .map_or_else(|| format!("custom parameter {}", i + 1), generator_description),
    }
}

/// The statements in run order, each with its custom statement (for `CUSTOM_SQL`): the order of
/// [`render_statements`], one per mix kind and one per custom statement.
fn describe(template: &Template, statements: &[StatementSpec]) -> Vec<PreviewStatement> {
    let total_weight: u32 = template.custom_sql.iter().map(|c| c.weight).sum::<u32>().max(1);
    let mut customs = template.custom_sql.iter();
    statements
        .iter()
        .map(|st| {
            let share = f64::from(template.mix.get(&st.kind).copied().unwrap_or(0));
            let custom = if st.kind == QueryKind::CustomSql { customs.next() } else { None };
            let percent = custom.map_or(share, |c| share * f64::from(c.weight) / f64::from(total_weight));
            PreviewStatement {
                kind: st.kind,
                name: custom.and_then(|c| c.name.clone()),
                percent,
                sql: st.sql.clone(),
                params: st
                    .params
                    .iter()
                    .enumerate()
                    .map(|(i, p)| PreviewParam {
                        position: i + 1,
                        column: p.column.clone(),
                        column_type: column_type_name(&p.column_type),
                        value: describe_param(template, custom, &p.role, &p.column),
                    })
                    .collect(),
                returning: st.returning.clone(),
            }
        })
        .collect()
}

/// The demo database's URL in the data directory.
pub(crate) fn demo_url() -> String {
    format!("sqlite://{}", unistore_adapters::sqlite::demo::default_demo_path().display())
}

/// Creates the demo database when it is missing (well under a second in a release build) and
/// returns its URL.
async fn ensure_demo() -> Result<String, ApiError> {
    Ok(crate::demo::ensure_demo().await?.url())
}

/// The URL to open for a template's target, and how to name it in the answer.
///
/// - no target, or the demo database's URL: the demo database in the data directory (created
///   if missing);
/// - `connection:ID`: a stored connection. The connections API (`connections.rs`) resolves
///   those (an unknown id is a 404).
/// - anything else: the URL itself.
async fn resolve_target(state: &AppState, target: Option<&str>) -> Result<(String, String), ApiError> {
    match target {
        None => Ok((ensure_demo().await?, "demo database".to_string())),
        // The demo database named by its URL (as the form names it): created if missing too.
        Some(url) if url == demo_url() => Ok((ensure_demo().await?, "demo database".to_string())),
        // A stored connection: its full URL (secret included) stays in this process; the
        // answer names the connection and its URL without the secret.
        Some(t) if t.starts_with(CONNECTION_PREFIX) => {
            let id = &t[CONNECTION_PREFIX.len()..];
            if id == "demo" {
                return Ok((ensure_demo().await?, "demo database".to_string()));
            }
            let url = crate::connections::connection_url(state, id)?;
            let shown = format!("{t} ({})", redact_url(&url));
            Ok((url, shown))
        }
        Some(url) => Ok((url.to_string(), redact_url(url))),
    }
}

/// An error of the target, as the API answers it: a table or file that is not there is a 404,
/// a database that cannot be reached a 503, a template the table cannot run a 400. The
/// message is the adapter's, which names the table and never a secret.
fn target_error(e: Error) -> ApiError {
    match e.kind() {
        ErrorKind::Permission => ApiError {
            code: e.code().map(str::to_string),
            ..ApiError::new(StatusCode::BAD_GATEWAY, ApiErrorKind::Unavailable, e.to_string())
        },
        _ => ApiError::from(e),
    }
}

/// Renders the preview of `template` (already validated).
pub(crate) async fn preview(state: &AppState, template: &Template) -> Result<Preview, ApiError> {
    let work = async {
        let (url, label) = resolve_target(state, template.target.as_deref()).await?;
        let table = template.table_ref().map_err(ApiError::from)?;
        let mut options = TargetOptions::new(RunId::new(), table.clone(), template.table_type);
        options.connect_timeout = template.timeouts.connect;
        let opened = open_target(&url, &options).await.map_err(target_error)?;
        let profile = opened.manager.profile(&table).await.map_err(target_error)?;
        let kinds: Vec<QueryKind> = template.mix.iter().filter(|(_, p)| **p > 0).map(|(k, _)| *k).collect();
        let supported = opened.manager.supported_kinds();
        if let Some(k) = kinds.iter().find(|k| !supported.contains(k)) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                ApiErrorKind::BadRequest,
                format!(
                    "{k} is not supported on {} tables: remove it from the mix (supported: {})",
                    opened.manager.table_type(),
                    supported.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        let statements =
            render_statements(opened.manager.as_ref(), &profile, template, &kinds).map_err(target_error)?;
        Ok(assemble(template, label, &profile, &statements))
    };
    tokio::time::timeout(PREVIEW_TIMEOUT, work).await.unwrap_or_else(|_| {
        Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ApiErrorKind::Timeout,
            format!(
                "the target did not answer within {}: is the database up and reachable?",
                humantime::format_duration(PREVIEW_TIMEOUT)
            ),
        ))
    })
}

fn assemble(
    template: &Template,
    target: String,
    profile: &TableProfile,
    statements: &[StatementSpec],
) -> Preview {
    let notes = run_notes(template, profile, statements, None);
    let key_column = profile.key_column(template.values.key_column.as_deref()).ok().map(|c| c.name.clone());
    Preview {
        target,
        table: profile.table.to_string(),
        table_type: profile.table_type,
        row_estimate: profile.row_estimate,
        key_column,
        primary_key: profile.primary_key.clone(),
        columns: profile
            .columns
            .iter()
            .map(|c| PreviewColumn {
                name: c.name.clone(),
                column_type: column_type_name(&c.column_type),
                native_type: c.native_type.clone(),
                nullable: c.nullable,
                generated: c.generated.is_some(),
                indexed: c.indexed,
            })
            .collect(),
        statements: describe(template, statements),
        warnings: notes.warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn custom_statements_share_their_kind_by_weight_and_describe_their_generators() {
        let mut t =
            Template::new("t", BTreeMap::from([(QueryKind::PointLookup, 40), (QueryKind::CustomSql, 60)]));
        let mut a = CustomSql::new("SELECT ?", vec![ParamGenerator::Int { min: 1, max: 9 }]);
        a.name = Some("a".into());
        a.weight = 2;
        let mut b = CustomSql::new("SELECT 1", vec![]);
        b.name = Some("b".into());
        t.custom_sql = vec![a, b];
        let specs = vec![
            StatementSpec::new(
                QueryKind::PointLookup,
                "SELECT * FROM t WHERE id = ?1",
                vec![unistore_core::target::ParamSpec {
                    column: "id".into(),
                    column_type: ColumnType::Integer,
                    role: ParamRole::Key,
                }],
            ),
            StatementSpec::new(
                QueryKind::CustomSql,
                "SELECT ?1",
                vec![unistore_core::target::ParamSpec {
                    column: String::new(),
                    column_type: ColumnType::Integer,
                    role: ParamRole::Custom(0),
                }],
            ),
            StatementSpec::new(QueryKind::CustomSql, "SELECT 1", vec![]),
        ];
        let d = describe(&t, &specs);
        assert_eq!(d.len(), 3);
        assert_eq!(d[0].percent, 40.0);
        assert!(d[0].params[0].value.contains("a key of `id`"), "{}", d[0].params[0].value);
        assert!(d[0].params[0].value.contains("uniform"));
        assert_eq!((d[1].name.as_deref(), d[1].percent), (Some("a"), 40.0));
        assert_eq!(d[1].params[0].value, "a random integer in 1..=9");
        assert_eq!((d[2].name.as_deref(), d[2].percent), (Some("b"), 20.0));
    }
}
