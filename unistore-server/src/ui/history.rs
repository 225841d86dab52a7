//! `GET /history`: the stored runs (the runs' own rows, not their workers'), newest first,
//! filtered by a GET form (so a filtered view is a link), fifty to a page, with a compare tray
//! that collects 2 to 4 finished runs for `/compare`.
//!
//! The page reads the store through one function, [`read_history`]: today it lists the rows
//! and filters them here (as `GET /api/results` and the CLI's `runs` do); when the store can
//! filter and page in SQL, only that function changes.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use maud::{html, Markup};
use unistore_core::metrics::RunSummary;
use unistore_core::RunFilter;
use unistore_core::{ResultsReader, RunStatus, TableType};

use super::layout::{page, Nav};
use crate::error::ApiError;
use crate::AppState;

/// Runs on one page of the history.
pub(crate) const PAGE_SIZE: usize = 50;
/// Recent rows read for the filter form's suggestions.
const SUGGESTION_ROWS: usize = 1_000;

/// The filters of the history, as the form sends them.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct HistoryFilter {
    /// Template name, exactly.
    pub template: Option<String>,
    /// Table (`orders` matches `public.orders`).
    pub table: Option<String>,
    /// Table type.
    pub table_type: Option<TableType>,
    /// Run status.
    pub status: Option<RunStatus>,
    /// Started at or after (the start of that day, UTC).
    pub from: Option<DateTime<Utc>>,
    /// Started at or before (the end of that day, UTC).
    pub to: Option<DateTime<Utc>>,
    /// Page, from 1.
    pub page: usize,
}

/// A filter that could not be read: the form field and what is wrong with it.
pub(crate) type FieldErrors = Vec<(&'static str, String)>;

fn text_param(params: &HashMap<String, String>, name: &str) -> Option<String> {
    params.get(name).map(|v| v.trim()).filter(|v| !v.is_empty()).map(str::to_string)
}

/// A date from the form (`2025-01-31`, as `<input type="date">` sends it) or an RFC 3339 time.
/// `end_of_day` makes a bare date mean its last instant (an inclusive "to").
fn parse_date(text: &str, end_of_day: bool) -> Result<DateTime<Utc>, String> {
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let time = if end_of_day {
            NaiveTime::from_hms_milli_opt(23, 59, 59, 999).unwrap_or(NaiveTime::MIN)
        } else {
            NaiveTime::MIN
        };
        return Ok(d.and_time(time).and_utc());
    }
    DateTime::parse_from_rfc3339(text)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|_| format!("`{text}` is not a date: use YYYY-MM-DD, e.g. 2025-01-31"))
}

impl HistoryFilter {
    /// Reads the form's parameters; unknown ones are ignored (a page link may carry others).
    /// Every field at fault is named, each with its message.
    pub(crate) fn parse(params: &HashMap<String, String>) -> (HistoryFilter, FieldErrors) {
        let mut errors = FieldErrors::new();
        let mut f = HistoryFilter {
            template: text_param(params, "template"),
            table: text_param(params, "table"),
            page: 1,
            ..HistoryFilter::default()
        };
        if let Some(t) = text_param(params, "table_type") {
            match t.parse::<TableType>() {
                Ok(t) => f.table_type = Some(t),
                Err(_) => errors.push((
                    "table_type",
                    format!(
                        "`{t}` is not a table type: use standard, hybrid, interactive, postgres or sqlite"
                    ),
                )),
            }
        }
        if let Some(s) = text_param(params, "status") {
            match s.parse::<RunStatus>() {
                Ok(s) => f.status = Some(s),
                Err(_) => errors.push((
                    "status",
                    format!(
                        "`{s}` is not a run status: use COMPLETED, FAILED, CANCELLED, RUNNING or PREPARED"
                    ),
                )),
            }
        }
        for (name, end_of_day) in [("from", false), ("to", true)] {
            if let Some(text) = text_param(params, name) {
                match parse_date(&text, end_of_day) {
                    Ok(d) if name == "from" => f.from = Some(d),
                    Ok(d) => f.to = Some(d),
                    Err(e) => errors.push((if name == "from" { "from" } else { "to" }, e)),
                }
            }
        }
        if let (Some(from), Some(to)) = (f.from, f.to) {
            if from > to {
                errors.push(("to", "the end date is before the start date".into()));
            }
        }
        if let Some(p) = text_param(params, "page") {
            match p.parse::<usize>() {
                Ok(n) if (1..=100_000).contains(&n) => f.page = n,
                _ => errors.push(("page", format!("page `{p}` is not a page number (1, 2, ...)"))),
            }
        }
        (f, errors)
    }

    /// Whether any filter is set (the page then says "no runs match" instead of "no runs yet").
    fn any(&self) -> bool {
        self.template.is_some()
            || self.table.is_some()
            || self.table_type.is_some()
            || self.status.is_some()
            || self.from.is_some()
            || self.to.is_some()
    }

    /// The query string of this filter at `page` (for the paging links).
    fn query(&self, page: usize) -> String {
        let mut parts: Vec<(String, String)> = Vec::new();
        let mut add = |k: &str, v: String| parts.push((k.to_string(), v));
        if let Some(t) = &self.template {
            add("template", t.clone());
        }
        if let Some(t) = &self.table {
            add("table", t.clone());
        }
        if let Some(t) = self.table_type {
            add("table_type", t.as_str().into());
        }
        if let Some(s) = self.status {
            add("status", s.as_str().into());
        }
        if let Some(d) = self.from {
            add("from", d.format("%Y-%m-%d").to_string());
        }
        if let Some(d) = self.to {
            add("to", d.format("%Y-%m-%d").to_string());
        }
        if page > 1 {
            add("page", page.to_string());
        }
        let q: Vec<String> = parts.iter().map(|(k, v)| format!("{k}={}", url_encode(v))).collect();
        if q.is_empty() {
            "/history".into()
        } else {
            format!("/history?{}", q.join("&"))
        }
    }
}

/// Percent-encodes a query value (everything but unreserved characters).
fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One page of the history and what the filter form offers.
#[derive(Debug, Clone, Default)]
pub(crate) struct HistoryPage {
    /// The runs' summaries on this page, newest first.
    pub runs: Vec<RunSummary>,
    /// Runs matching the filter, on every page.
    pub total: usize,
    /// Template names in the store (for the filter's choices).
    pub templates: Vec<String>,
    /// Tables in the store.
    pub tables: Vec<String>,
}

/// Reads one page of runs matching `filter`: filtered and paged by the store (in SQL), then
/// each listed run's summary. The filter form's suggestions (template names, tables) come from
/// the most recent [`SUGGESTION_ROWS`] rows.
pub(crate) async fn read_history(
    reader: &dyn ResultsReader,
    filter: &HistoryFilter,
) -> Result<HistoryPage, ApiError> {
    let recent = reader.runs(SUGGESTION_ROWS).await?;
    let templates: BTreeSet<String> =
        recent.iter().filter(|r| r.worker_id.is_none()).map(|r| r.template_name.clone()).collect();
    let tables: BTreeSet<String> =
        recent.iter().filter(|r| r.worker_id.is_none()).map(|r| r.table.clone()).collect();
    let found = reader
        .runs_page(&RunFilter {
            template_name: filter.template.clone(),
            table: filter.table.clone(),
            table_type: filter.table_type,
            status: filter.status.map(|s| vec![s]),
            since: filter.from,
            until: filter.to,
            limit: PAGE_SIZE,
            offset: filter.page.saturating_sub(1) * PAGE_SIZE,
        })
        .await?;
    let mut runs = Vec::with_capacity(found.runs.len());
    for row in &found.runs {
        if let Some(s) = reader.summary(row.run_id, None).await? {
            runs.push(s);
        }
    }
    Ok(HistoryPage {
        runs,
        total: usize::try_from(found.total).unwrap_or(usize::MAX),
        templates: templates.into_iter().collect(),
        tables: tables.into_iter().collect(),
    })
}

// ----- formatting shared by the history, run and compare pages -----

/// A number with thousands separators and `digits` decimals.
pub(crate) fn num(v: f64, digits: usize) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let text = format!("{:.*}", digits, v.abs());
    let (int, frac) = text.split_once('.').map_or((text.as_str(), None), |(i, f)| (i, Some(f)));
    let mut grouped = String::with_capacity(int.len() + int.len() / 3);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if v < 0.0 && text.chars().any(|c| c.is_ascii_digit() && c != '0') { "-" } else { "" };
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

/// A count with thousands separators.
pub(crate) fn count(n: u64) -> String {
    num(n as f64, 0)
}

/// Milliseconds with a precision that suits their size.
pub(crate) fn ms(v: f64) -> String {
    if !v.is_finite() {
        "–".into()
    } else if v < 1.0 {
        format!("{v:.3} ms")
    } else if v < 10.0 {
        format!("{v:.2} ms")
    } else if v < 1000.0 {
        format!("{v:.1} ms")
    } else {
        format!("{:.2} s", v / 1000.0)
    }
}

/// A fraction as a percentage.
pub(crate) fn pct(v: f64) -> String {
    if v.is_finite() {
        format!("{:.2} %", v * 100.0)
    } else {
        "–".into()
    }
}

/// Seconds as `1m 05s` or `12.3 s`.
pub(crate) fn secs(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        "–".into()
    } else if s < 60.0 {
        format!("{s:.1} s")
    } else {
        let whole = s.round() as u64;
        format!("{}m {:02}s", whole / 60, whole % 60)
    }
}

/// A time in UTC, to the second.
pub(crate) fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// The first 8 characters of a run id: enough to tell runs apart on a page.
pub(crate) fn short_id(id: &unistore_core::RunId) -> String {
    id.to_string().chars().take(8).collect()
}

/// A run status as a coloured badge.
pub(crate) fn status_badge(status: RunStatus) -> Markup {
    html! { span class={"badge " (status.as_str())} { (status.as_str()) } }
}

/// Where a run is shown: its live page while it goes, its stored result once it has ended.
pub(crate) fn run_href(s: &RunSummary) -> String {
    if s.status.is_terminal() {
        format!("/results/{}", s.run_id)
    } else {
        format!("/runs/{}", s.run_id)
    }
}

/// A whole page that says what went wrong, with the way back, answered with `status`.
pub(crate) fn problem_page(status: StatusCode, title: &str, nav: Nav, message: &str) -> Response {
    let body = html! {
        div.page-head { div { h1 { (title) } } }
        div.panel {
            div.notice.error role="alert" { (message) }
            div.actions {
                a.btn.primary href="/history" { "Go to the history" }
            }
        }
    };
    (status, page(title, nav, body, &[], None)).into_response()
}

// ----- the page -----

fn field_error<'a>(errors: &'a FieldErrors, name: &str) -> Option<&'a str> {
    errors.iter().find(|(n, _)| *n == name).map(|(_, m)| m.as_str())
}

fn filter_form(f: &HistoryFilter, errors: &FieldErrors, data: &HistoryPage) -> Markup {
    let field = |name: &str| if field_error(errors, name).is_some() { "field invalid" } else { "field" };
    let date = |d: Option<DateTime<Utc>>| d.map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default();
    let mut templates = data.templates.clone();
    if let Some(t) = &f.template {
        if !templates.contains(t) {
            templates.push(t.clone());
        }
    }
    html! {
        form.panel.filters method="get" action="/history" id="history-filters" {
            div.row {
                div class=(field("template")) {
                    label for="f-template" { "Template" }
                    select id="f-template" name="template" {
                        option value="" { "Any template" }
                        @for t in &templates {
                            option value=(t) selected[f.template.as_deref() == Some(t)] { (t) }
                        }
                    }
                }
                div class=(field("table")) {
                    label for="f-table" { "Table" }
                    input id="f-table" name="table" list="f-tables" placeholder="any table"
                        value=(f.table.clone().unwrap_or_default());
                    datalist id="f-tables" {
                        @for t in &data.tables { option value=(t) {} }
                    }
                }
                div class=(field("table_type")) {
                    label for="f-table-type" { "Table type" }
                    select id="f-table-type" name="table_type" {
                        option value="" { "Any type" }
                        @for t in [TableType::Standard, TableType::Hybrid, TableType::Interactive, TableType::Postgres, TableType::Sqlite] {
                            option value=(t.as_str()) selected[f.table_type == Some(t)] { (t.as_str()) }
                        }
                    }
                    div.field-error { (field_error(errors, "table_type").unwrap_or("")) }
                }
                div class=(field("status")) {
                    label for="f-status" { "Status" }
                    select id="f-status" name="status" {
                        option value="" { "Any status" }
                        @for s in RunStatus::ALL {
                            option value=(s.as_str()) selected[f.status == Some(s)] { (s.as_str()) }
                        }
                    }
                    div.field-error { (field_error(errors, "status").unwrap_or("")) }
                }
                div class=(field("from")) {
                    label for="f-from" { "Started from" }
                    input id="f-from" name="from" type="date" value=(date(f.from));
                    div.field-error { (field_error(errors, "from").unwrap_or("")) }
                }
                div class=(field("to")) {
                    label for="f-to" { "Started until" }
                    input id="f-to" name="to" type="date" value=(date(f.to));
                    div.field-error { (field_error(errors, "to").unwrap_or("")) }
                }
            }
            @if let Some(e) = field_error(errors, "page") {
                div.notice.error { (e) }
            }
            div.actions {
                button.btn.primary type="submit" { "Apply filters" }
                @if f.any() { a.btn href="/history" { "Clear filters" } }
                span.hint { "Dates are UTC; both ends are included. A filtered view can be bookmarked." }
            }
        }
    }
}

fn run_row(s: &RunSummary) -> Markup {
    let id = s.run_id.to_string();
    let label = format!("{} · {} · {}", short_id(&s.run_id), s.template, s.started_at.format("%m-%d %H:%M"));
    let l = &s.total.latency_ms;
    html! {
        tr data-run=(id) {
            td.pick {
                input type="checkbox" name="run" value=(id) form="compare-form" data-label=(label)
                    aria-label={"Pick run " (short_id(&s.run_id)) " to compare"}
                    disabled[!s.status.is_terminal()]
                    title=(if s.status.is_terminal() { "Add to the compare tray" } else { "A run still going cannot be compared" });
            }
            td.nowrap { (when(s.started_at)) }
            td { (s.template) }
            td.mono { (s.table) }
            td { (s.table_type.as_str()) }
            td { (status_badge(s.status)) }
            td.num { (secs(s.duration_s)) }
            td.num.ops { (count(s.total.ops)) }
            td.num.qps { (num(s.total.qps, 1)) }
            td.num { (ms(l.p50)) }
            td.num { (ms(l.p95)) }
            td.num { (ms(l.p99)) }
            td.num { (pct(s.total.error_rate())) }
            td { a.open href=(run_href(s)) { "Open" } }
        }
    }
}

fn pager(f: &HistoryFilter, total: usize) -> Markup {
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let first = f.page.saturating_sub(1) * PAGE_SIZE + 1;
    let last = (f.page * PAGE_SIZE).min(total);
    html! {
        div.pager.actions {
            @if f.page > 1 {
                a.btn rel="prev" href=(f.query(f.page.saturating_sub(1))) { "← Previous" }
            } @else {
                span.btn.disabled aria-disabled="true" { "← Previous" }
            }
            span.muted.count {
                @if total == 0 { "No runs" }
                @else if first > total { "Page " (f.page) " is past the last page (" (pages) ")" }
                @else { "Runs " (count(first as u64)) "–" (count(last as u64)) " of " strong { (count(total as u64)) } }
            }
            @if f.page < pages {
                a.btn rel="next" href=(f.query(f.page + 1)) { "Next →" }
            } @else {
                span.btn.disabled aria-disabled="true" { "Next →" }
            }
        }
    }
}

/// The page's body for a page of runs (or for a filter that could not be read).
pub(crate) fn render(f: &HistoryFilter, errors: &FieldErrors, data: &HistoryPage) -> Markup {
    let body = html! {
        link rel="stylesheet" href="/assets/history.css";
        div.page-head {
            div {
                h1 { "History" }
                p.muted { "Every stored run, newest first. Tick 2 to 4 finished runs to compare them." }
            }
        }
        (filter_form(f, errors, data))
        @if !errors.is_empty() {
            div.notice.error role="alert" { "Fix the filter marked in red; no runs are listed until it reads." }
        }
        div.panel {
            (pager(f, data.total))
            @if data.runs.is_empty() {
                p.empty {
                    @if !errors.is_empty() { "No runs listed." }
                    @else if f.any() { "No runs match these filters. " a href="/history" { "Show every run" } }
                    @else { "No runs stored yet. Start one from " a href="/templates" { "Templates" } ", or run " code { "unistore-worker bench" } "." }
                }
            } @else {
                div.table-wrap {
                    table.history id="history-table" {
                        thead {
                            tr {
                                th { span.sr { "Pick" } }
                                th { "Started (UTC)" }
                                th { "Template" }
                                th { "Table" }
                                th { "Type" }
                                th { "Status" }
                                th.num { "Measured" }
                                th.num { "Ok ops" }
                                th.num { "Ok ops/s" }
                                th.num { "p50" }
                                th.num { "p95" }
                                th.num { "p99" }
                                th.num { "Errors" }
                                th {}
                            }
                        }
                        tbody {
                            @for s in &data.runs { (run_row(s)) }
                        }
                    }
                }
            }
        }
        form.tray id="compare-form" method="get" action="/compare" aria-label="Compare tray" {
            div.tray-head {
                strong { "Compare" }
                span.hint id="tray-hint" { "Tick 2 to 4 finished runs." }
            }
            ul.tray-runs id="tray-runs" {}
            div.actions {
                button.btn type="button" id="tray-clear" hidden { "Clear" }
                button.btn.primary type="submit" id="tray-compare" { "Compare" }
            }
        }
    };
    page("History", Nav::History, body, &["history.js"], None)
}

async fn history(
    State(state): State<Arc<AppState>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let (filter, errors) = HistoryFilter::parse(&params);
    if !errors.is_empty() {
        // The choices of the form still come from the store; the rows do not, as the filter
        // that would select them could not be read.
        let everything = HistoryFilter { page: 1, ..HistoryFilter::default() };
        let data = match read_history(state.results.reader.as_ref(), &everything).await {
            Ok(d) => HistoryPage { runs: Vec::new(), total: 0, ..d },
            Err(_) => HistoryPage::default(),
        };
        return (StatusCode::BAD_REQUEST, render(&filter, &errors, &data)).into_response();
    }
    match read_history(state.results.reader.as_ref(), &filter).await {
        Ok(data) => render(&filter, &errors, &data).into_response(),
        Err(e) => problem_page(
            e.status,
            "History unavailable",
            Nav::History,
            &format!("The results store did not answer: {}", e.message),
        ),
    }
}

/// `GET /history`.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/history", get(history))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn filters_are_read_and_bad_ones_named() {
        let (f, e) = HistoryFilter::parse(&params(&[
            ("template", " demo "),
            ("status", "completed"),
            ("table_type", "sqlite"),
            ("from", "2025-01-02"),
            ("to", "2025-01-03"),
            ("page", "2"),
            ("other", "x"),
        ]));
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(f.template.as_deref(), Some("demo"));
        assert_eq!(f.status, Some(RunStatus::Completed));
        assert_eq!(f.table_type, Some(TableType::Sqlite));
        assert_eq!(f.from.unwrap().to_rfc3339(), "2025-01-02T00:00:00+00:00");
        assert_eq!(f.to.unwrap().format("%H:%M:%S").to_string(), "23:59:59");
        assert_eq!(f.page, 2);
        assert_eq!(
            f.query(3),
            "/history?template=demo&table_type=sqlite&status=COMPLETED&from=2025-01-02&to=2025-01-03&page=3"
        );

        let (_, e) = HistoryFilter::parse(&params(&[
            ("status", "DONE"),
            ("table_type", "oracle"),
            ("from", "yesterday"),
            ("page", "0"),
        ]));
        let names: Vec<&str> = e.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["table_type", "status", "from", "page"]);
        assert!(e[1].1.contains("`DONE` is not a run status"));
        let (_, e) = HistoryFilter::parse(&params(&[("from", "2025-02-01"), ("to", "2025-01-01")]));
        assert_eq!(e, vec![("to", "the end date is before the start date".to_string())]);
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(num(1234567.891, 1), "1,234,567.9");
        assert_eq!(num(-1234.0, 0), "-1,234");
        assert_eq!(num(999.0, 0), "999");
        assert_eq!(num(-0.0001, 1), "0.0");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(ms(0.1234), "0.123 ms");
        assert_eq!(ms(12.345), "12.3 ms");
        assert_eq!(ms(1500.0), "1.50 s");
        assert_eq!(pct(0.0123), "1.23 %");
        assert_eq!(secs(75.0), "1m 15s");
        assert_eq!(url_encode("a b&c/é"), "a%20b%26c%2F%C3%A9");
    }

    #[test]
    fn a_page_lists_its_runs_and_escapes_names() {
        let mut s = unistore_core::testkit::sample_summary(unistore_core::RunId::new());
        s.template = "<script>x</script>".into();
        let data = HistoryPage {
            runs: vec![s.clone()],
            total: 51,
            templates: vec![s.template.clone()],
            tables: vec![],
        };
        let html = render(&HistoryFilter { page: 1, ..Default::default() }, &Vec::new(), &data).into_string();
        assert!(!html.contains("<script>x</script>"), "names are escaped");
        assert!(html.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(html.contains(&format!("href=\"/results/{}\"", s.run_id)));
        assert!(html.contains("Runs 1–50 of <strong>51</strong>"), "{html}");
        assert!(html.contains("href=\"/history?page=2\""));
        assert!(html.contains(&count(s.total.ops)));
    }
}
