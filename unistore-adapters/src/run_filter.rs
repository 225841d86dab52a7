//! The `WHERE` clause of [`ResultsReader::runs_page`](unistore_core::ResultsReader::runs_page),
//! built once for the three results stores so that they filter alike.
//!
//! The stores name their `TEST_RESULTS` columns alike (PostgreSQL folds the unquoted upper-case
//! names to its lower-case ones). Every value from the filter is a bound parameter; only numbers
//! the code computes itself (a length, the limit and the offset) are written into the SQL.

use chrono::{DateTime, Utc};
use unistore_core::RunFilter;

/// How a store writes its placeholders and a string's last characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FilterDialect {
    /// `?`, `substr(x, -n)`.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    Sqlite,
    /// `$1`, `right(x, n)`.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Postgres,
    /// `?`, `RIGHT(x, n)`.
    #[cfg_attr(not(feature = "snowflake"), allow(dead_code))]
    Snowflake,
}

/// A value bound to the clause, converted by each store to its driver's type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FilterValue {
    Text(String),
    Time(DateTime<Utc>),
}

/// The conditions and their values, in placeholder order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FilterSql {
    /// `WHERE ...` (never empty: the worker-row condition is always there).
    pub(crate) where_clause: String,
    /// Values for the placeholders, in order.
    pub(crate) values: Vec<FilterValue>,
}

impl FilterDialect {
    fn placeholder(self, n: usize) -> String {
        match self {
            FilterDialect::Postgres => format!("${n}"),
            FilterDialect::Sqlite | FilterDialect::Snowflake => "?".to_string(),
        }
    }

    fn last_chars(self, expr: &str, n: usize) -> String {
        match self {
            FilterDialect::Sqlite => format!("substr({expr}, -{n})"),
            FilterDialect::Postgres | FilterDialect::Snowflake => format!("RIGHT({expr}, {n})"),
        }
    }
}

/// The `WHERE` clause selecting the runs' own rows that pass `filter`.
pub(crate) fn filter_sql(filter: &RunFilter, dialect: FilterDialect) -> FilterSql {
    let mut conditions = vec!["COALESCE(WORKER_ID, '') = ''".to_string()];
    let mut values = Vec::new();
    let bind = |value: FilterValue, values: &mut Vec<FilterValue>| {
        values.push(value);
        dialect.placeholder(values.len())
    };
    if let Some(template) = &filter.template_name {
        let p = bind(FilterValue::Text(template.clone()), &mut values);
        conditions.push(format!("TEMPLATE_NAME = {p}"));
    }
    if let Some(table) = &filter.table {
        // As analysis::same_table: equal ignoring case, or a name without dots equal to the
        // last part of the stored qualified name.
        let asked = table.trim().to_ascii_lowercase();
        let p = bind(FilterValue::Text(asked.clone()), &mut values);
        if asked.contains('.') {
            conditions.push(format!("LOWER(TABLE_NAME) = {p}"));
        } else {
            let suffix = format!(".{asked}");
            let n = suffix.chars().count();
            let q = bind(FilterValue::Text(suffix), &mut values);
            conditions.push(format!(
                "(LOWER(TABLE_NAME) = {p} OR {} = {q})",
                dialect.last_chars("LOWER(TABLE_NAME)", n)
            ));
        }
    }
    if let Some(table_type) = filter.table_type {
        let p = bind(FilterValue::Text(table_type.as_str().to_string()), &mut values);
        conditions.push(format!("TABLE_TYPE = {p}"));
    }
    if let Some(statuses) = filter.status.as_ref().filter(|s| !s.is_empty()) {
        let placeholders: Vec<String> =
            statuses.iter().map(|s| bind(FilterValue::Text(s.as_str().to_string()), &mut values)).collect();
        conditions.push(format!("STATUS IN ({})", placeholders.join(", ")));
    }
    if let Some(since) = filter.since {
        let p = bind(FilterValue::Time(since), &mut values);
        conditions.push(format!("STARTED_AT >= {p}"));
    }
    if let Some(until) = filter.until {
        let p = bind(FilterValue::Time(until), &mut values);
        conditions.push(format!("STARTED_AT <= {p}"));
    }
    FilterSql { where_clause: format!("WHERE {}", conditions.join(" AND ")), values }
}

/// `LIMIT .. OFFSET ..` of a page (numbers, never text from the caller).
pub(crate) fn page_sql(filter: &RunFilter) -> String {
    let limit = i64::try_from(filter.limit).unwrap_or(i64::MAX);
    let offset = i64::try_from(filter.offset).unwrap_or(i64::MAX);
    format!("LIMIT {limit} OFFSET {offset}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use unistore_core::{RunStatus, TableType};

    #[test]
    fn every_value_is_bound_and_numbered_in_order() {
        let filter = RunFilter {
            template_name: Some("it's".into()),
            table: Some(" Orders ".into()),
            table_type: Some(TableType::Hybrid),
            status: Some(vec![RunStatus::Completed, RunStatus::Failed]),
            since: Some(DateTime::<Utc>::MIN_UTC),
            until: None,
            limit: 10,
            offset: 20,
        };
        let sql = filter_sql(&filter, FilterDialect::Postgres);
        assert_eq!(
            sql.where_clause,
            "WHERE COALESCE(WORKER_ID, '') = '' AND TEMPLATE_NAME = $1 AND (LOWER(TABLE_NAME) = $2 OR \
             RIGHT(LOWER(TABLE_NAME), 7) = $3) AND TABLE_TYPE = $4 AND STATUS IN ($5, $6) AND STARTED_AT >= $7"
        );
        assert_eq!(sql.values.len(), 7);
        assert_eq!(sql.values[0], FilterValue::Text("it's".into()));
        assert_eq!(sql.values[1], FilterValue::Text("orders".into()));
        assert_eq!(sql.values[2], FilterValue::Text(".orders".into()));
        assert_eq!(sql.values[3], FilterValue::Text("hybrid".into()));
        assert_eq!(page_sql(&filter), "LIMIT 10 OFFSET 20");
        let sqlite = filter_sql(&filter, FilterDialect::Sqlite);
        assert!(sqlite.where_clause.contains("substr(LOWER(TABLE_NAME), -7) = ?"), "{}", sqlite.where_clause);
        assert!(!sqlite.where_clause.contains('$'));
    }

    #[test]
    fn a_qualified_table_is_matched_whole_and_no_filter_keeps_only_run_rows() {
        let filter = RunFilter { table: Some("public.orders".into()), ..RunFilter::default() };
        let sql = filter_sql(&filter, FilterDialect::Snowflake);
        assert_eq!(sql.where_clause, "WHERE COALESCE(WORKER_ID, '') = '' AND LOWER(TABLE_NAME) = ?");
        let all = filter_sql(
            &RunFilter { status: Some(Vec::new()), ..RunFilter::default() },
            FilterDialect::Sqlite,
        );
        assert_eq!(all.where_clause, "WHERE COALESCE(WORKER_ID, '') = ''");
        assert!(all.values.is_empty());
    }
}
