//! The templates pages: the list (`/templates`) with run, edit, duplicate, delete, import and
//! export, and the form (`/templates/new`, `/templates/{id}/edit`) with the SQL preview.
//!
//! Both are complete HTML from the server (the list's rows, the form's current values);
//! `templates.js` adds the actions, the live mix sum, the field checks and the preview, all
//! through the JSON API, so that the page and the API never disagree about what is stored.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};
use unistore_core::template::{LoadMode, Scaling, SloScope};
use unistore_core::{QueryKind, StoredTemplate, Template};

use super::layout::{page, Nav};
use crate::AppState;

/// The table types the form offers (`""`: detect).
const TABLE_TYPES: [(&str, &str); 6] = [
    ("", "auto (detect)"),
    ("STANDARD", "standard (Snowflake)"),
    ("HYBRID", "hybrid (Snowflake Unistore)"),
    ("INTERACTIVE", "interactive (Snowflake)"),
    ("POSTGRES", "postgres"),
    ("SQLITE", "sqlite"),
];

fn kind_label(k: QueryKind) -> &'static str {
    match k {
        QueryKind::PointLookup => "point lookup",
        QueryKind::RangeScan => "range scan",
        QueryKind::Insert => "insert",
        QueryKind::Update => "update",
        QueryKind::CustomSql => "custom SQL",
    }
}

fn mix_summary(t: &Template) -> String {
    let parts: Vec<String> =
        t.mix.iter().filter(|(_, p)| **p > 0).map(|(k, p)| format!("{p}% {}", kind_label(*k))).collect();
    parts.join(", ")
}

fn load_summary(load: &LoadMode) -> String {
    match load {
        LoadMode::Concurrency { connections } => format!("{connections} connections"),
        LoadMode::Qps { target_qps, connections } => format!("{target_qps} QPS on {connections} connections"),
        LoadMode::FindMaxConcurrency {
            start_connections,
            step_connections,
            step_duration,
            max_connections,
            ..
        } => {
            format!(
                "find max: {start_connections} → {max_connections} (+{step_connections} every {})",
                humantime::format_duration(*step_duration)
            )
        }
    }
}

fn load_mode_label(load: &LoadMode) -> &'static str {
    match load {
        LoadMode::Concurrency { .. } => "concurrency",
        LoadMode::Qps { .. } => "QPS",
        LoadMode::FindMaxConcurrency { .. } => "find max",
    }
}

fn dur(d: std::time::Duration) -> String {
    humantime::format_duration(d).to_string()
}

fn phases_summary(t: &Template) -> String {
    let mut s = format!("{} warmup · {} measured", dur(t.phases.warmup), dur(t.phases.measurement));
    if !t.phases.cooldown.is_zero() {
        s.push_str(&format!(" · {} cooldown", dur(t.phases.cooldown)));
    }
    s
}

fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = html! {
        div.page-head { h1 { (title) } }
        div.notice.error { (message) }
        p { a.btn href="/templates" { "← All templates" } }
    };
    (status, page(title, Nav::Templates, body, &[], None)).into_response()
}

fn list_body(templates: &[StoredTemplate]) -> Markup {
    html! {
        link rel="stylesheet" href="/assets/templates.css";
        div.page-head {
            div {
                h1 { "Templates" }
                p.muted.small { "A template says which table to load, with which mix of queries, how hard and for how long." }
            }
            div.actions {
                button.btn type="button" id="import-toggle" aria-controls="import-panel" { "Import…" }
                a.btn.primary id="new-template" href="/templates/new" { "+ New template" }
            }
        }
        div.notice id="list-notice" hidden {}
        section.panel id="import-panel" hidden {
            h2 { "Import a template" }
            p.hint { "A file exported from here (TOML or JSON), or its text pasted below. It is checked before anything is stored." }
            form id="import-form" {
                div.field {
                    label for="import-file" { "File" }
                    input type="file" id="import-file" accept=".toml,.json,application/json,application/toml,text/plain";
                }
                div.field {
                    label for="import-text" { "…or paste it" }
                    textarea id="import-text" rows="8" placeholder="name = \"orders read\"\ntable = \"orders\"\n\n[mix]\npoint_lookup = 100" {}
                    div.field-error id="err-import" {}
                }
                div.actions {
                    button.btn.primary type="submit" { "Import" }
                    button.btn type="button" id="import-cancel" { "Cancel" }
                }
            }
        }
        @if templates.is_empty() {
            section.panel.empty id="templates-empty" {
                h2 { "No templates yet" }
                p { "Create one for the demo table to see how it works: pick the demo database, the table "
                    code { "demo_orders" } ", keep the mix at 100% point lookups, preview the SQL, save, then press Run." }
                p.actions.center {
                    a.btn.primary href="/templates/new" { "Create your first template" }
                    button.btn type="button" id="import-empty" { "Import one" }
                }
            }
        } @else {
            section.panel {
                div.table-wrap {
                    table id="templates-table" {
                        thead { tr {
                            th { "Name" } th { "Table" } th { "Mix" } th { "Load" } th { "Phases" } th { "Updated" } th { span.sr-only { "Actions" } }
                        } }
                        tbody {
                            @for t in templates {
                                (list_row(t))
                            }
                        }
                    }
                }
            }
        }
    }
}

fn list_row(t: &StoredTemplate) -> Markup {
    let id = &t.template_id;
    html! {
        tr data-id=(id) data-name=(t.template.name) {
            td data-label="Name" {
                a.tpl-name href=(format!("/templates/{id}/edit")) { (t.template.name) }
                div.muted.small { "v" (t.version) }
            }
            td data-label="Table" { code { (t.template.table) } }
            td data-label="Mix" .small { (mix_summary(&t.template)) }
            td data-label="Load" {
                span.badge { (load_mode_label(&t.template.load)) }
                " " span.small { (load_summary(&t.template.load)) }
            }
            td data-label="Phases" .small { (phases_summary(&t.template)) }
            td data-label="Updated" .small.nowrap {
                time datetime=(t.updated_at.to_rfc3339()) { (t.updated_at.format("%Y-%m-%d %H:%M UTC")) }
            }
            td.row-actions {
                div.actions {
                    button.btn.success.small type="button" data-action="run" { "▶ Run" }
                    a.btn.small href=(format!("/templates/{id}/edit")) { "Edit" }
                    button.btn.small type="button" data-action="duplicate" { "Duplicate" }
                    a.btn.small href=(format!("/api/templates/{id}/export?format=toml")) download=(format!("{id}.toml")) { "TOML" }
                    a.btn.small href=(format!("/api/templates/{id}/export?format=json")) download=(format!("{id}.json")) { "JSON" }
                    button.btn.small.ghost-danger type="button" data-action="delete" { "Delete" }
                }
            }
        }
    }
}

async fn list(State(state): State<Arc<AppState>>) -> Response {
    match state.results.reader.templates().await {
        Ok(templates) => {
            page("Templates", Nav::Templates, list_body(&templates), &["templates.js"], None).into_response()
        }
        Err(e) => error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Templates",
            &format!("The results store did not answer: {e}"),
        ),
    }
}

/// A template the form starts from: the demo table, all point lookups.
fn new_template() -> Template {
    let mut t = Template::new(
        unistore_adapters::sqlite::demo::DEMO_TABLE,
        std::collections::BTreeMap::from([(QueryKind::PointLookup, 100)]),
    );
    t.name = String::new();
    t
}

fn field_error(id: &str) -> Markup {
    html! { div.field-error id=(format!("err-{id}")) role="alert" {} }
}

fn number_field(
    id: &str,
    label: &str,
    value: Option<String>,
    hint: Option<&str>,
    attrs: (&str, &str),
) -> Markup {
    html! {
        div.field data-field=(id) {
            label for=(format!("f-{id}")) { (label) }
            input type="number" id=(format!("f-{id}")) name=(id) value=[value] min=(attrs.0) step=(attrs.1) inputmode="decimal";
            @if let Some(h) = hint { div.hint { (h) } }
            (field_error(id))
        }
    }
}

fn text_field(id: &str, label: &str, value: &str, hint: Option<&str>, placeholder: &str) -> Markup {
    html! {
        div.field data-field=(id) {
            label for=(format!("f-{id}")) { (label) }
            input type="text" id=(format!("f-{id}")) name=(id) value=(value) placeholder=(placeholder) autocomplete="off";
            @if let Some(h) = hint { div.hint { (h) } }
            (field_error(id))
        }
    }
}

fn form_body(t: &Template, editing: Option<&str>, demo_url: &str) -> Markup {
    let title = if editing.is_some() { format!("Edit {}", t.name) } else { "New template".to_string() };
    let (connections, target_qps) = match &t.load {
        LoadMode::Concurrency { connections } => (Some(*connections), None),
        LoadMode::Qps { target_qps, connections } => (Some(*connections), Some(*target_qps)),
        LoadMode::FindMaxConcurrency { .. } => (None, None),
    };
    let search = match &t.load {
        LoadMode::FindMaxConcurrency {
            start_connections,
            step_connections,
            step_duration,
            max_connections,
            qps_drop_pct,
            p95_growth_pct,
            max_error_rate,
        } => Some((
            *start_connections,
            *step_connections,
            dur(*step_duration),
            *max_connections,
            *qps_drop_pct,
            *p95_growth_pct,
            *max_error_rate,
        )),
        _ => None,
    };
    let (scaling_mode, workers, max_workers, min_workers, per_worker) = match &t.scaling {
        Scaling::Fixed { workers } => ("FIXED", Some(*workers), None, None, None),
        Scaling::Auto { max_workers } => ("AUTO", None, Some(*max_workers), None, None),
        Scaling::Bounded { min_workers, max_workers, max_connections_per_worker } => {
            ("BOUNDED", None, Some(*max_workers), Some(*min_workers), Some(*max_connections_per_worker))
        }
    };
    let total_slo = t.slo.get(&SloScope::Total).cloned().unwrap_or_default();
    let custom = t.custom_sql.first();
    let custom_params = custom.map(|c| params_text(&c.params)).unwrap_or_default();
    let target = t.target.clone().unwrap_or_else(|| demo_url.to_string());
    let load_mode = t.load.name();
    let opt = |v: Option<f64>| v.map(|x| x.to_string());
    html! {
        link rel="stylesheet" href="/assets/templates.css";
        div.page-head {
            div {
                p.small { a href="/templates" { "← Templates" } }
                h1 { (title) }
            }
        }
        div.notice.error id="form-notice" hidden role="alert" {}
        form id="template-form" novalidate {
            div.form-grid {
                section.panel {
                    h2 { "What to load" }
                    (text_field("name", "Name", &t.name, Some("Runs of the same name are compared with each other."), "orders read path"))
                    div.field data-field="target" {
                        label for="f-target" { "Target" }
                        select id="f-target" name="target" {
                            option value=(demo_url) selected[target == demo_url] { "Demo database (SQLite)" }
                            @if target != demo_url {
                                option value=(target) selected { (target) }
                            }
                        }
                        div.hint id="target-hint" { "Stored connections are managed under Connections." }
                        (field_error("target"))
                    }
                    div.row {
                        div.field data-field="table" {
                            label for="f-table" { "Table" }
                            input type="text" id="f-table" name="table" list="tables-list" value=(t.table) placeholder="[database.][schema.]table" autocomplete="off";
                            datalist id="tables-list" {}
                            div.hint id="table-hint" { "As " code { "[database.][schema.]name" } "." }
                            (field_error("table"))
                        }
                        div.field data-field="table_type" {
                            label for="f-table_type" { "Table type" }
                            select id="f-table_type" name="table_type" {
                                @for (value, label) in TABLE_TYPES {
                                    option value=(value) selected[t.table_type.map(|x| format!("{x:?}").to_ascii_uppercase()).unwrap_or_default() == value] { (label) }
                                }
                            }
                            (field_error("table_type"))
                        }
                    }
                }
                section.panel {
                    h2 { "Query mix" }
                    div.field data-field="mix" id="mix-field" {
                        div.mix-grid {
                            @for k in QueryKind::ALL {
                                div.mix-item {
                                    label for=(format!("mix-{}", k.as_str())) { (kind_label(k)) }
                                    div.input-suffix {
                                        input type="number" id=(format!("mix-{}", k.as_str())) data-kind=(k.as_str()) min="0" max="100" step="1" inputmode="numeric"
                                            value=(t.mix.get(&k).copied().unwrap_or(0));
                                        span { "%" }
                                    }
                                }
                            }
                        }
                        div.mix-sum { "Total: " strong id="mix-sum" { (t.mix.values().sum::<u32>()) "%" } span.muted { " (must be 100%)" } }
                        (field_error("mix"))
                    }
                    div.field.check data-field="allow_writes" {
                        label {
                            input type="checkbox" id="f-allow_writes" name="allow_writes" checked[t.allow_writes];
                            " Allow writes (INSERT and UPDATE change the table)"
                        }
                        (field_error("allow_writes"))
                    }
                    details id="custom-sql" open[custom.is_some()] {
                        summary { "Custom SQL" }
                        div.field data-field="custom_sql" {
                            label for="f-custom_sql" { "Statement (" code { "?" } " for each parameter)" }
                            textarea id="f-custom_sql" name="custom_sql" rows="3" placeholder="SELECT * FROM demo_orders WHERE customer_id = ?" {
                                (custom.map(|c| c.sql.as_str()).unwrap_or(""))
                            }
                            (field_error("custom_sql"))
                        }
                        (text_field("custom_params", "Parameters, one per ?", &custom_params,
                            Some("Comma-separated: key, int 1..1000, float 0..1, text 16, choice a|b|c, now"), "int 1..5000"))
                        @if t.custom_sql.len() > 1 {
                            p.hint { "This template has " (t.custom_sql.len()) " custom statements; the form edits the first and keeps the others." }
                        }
                    }
                }
                section.panel {
                    h2 { "Load" }
                    div.field data-field="load_mode" {
                        label for="f-load_mode" { "Mode" }
                        select id="f-load_mode" name="load_mode" {
                            option value="CONCURRENCY" selected[load_mode == "CONCURRENCY"] { "Concurrency (closed loop)" }
                            option value="QPS" selected[load_mode == "QPS"] { "QPS (open loop, a target rate)" }
                            option value="FIND_MAX_CONCURRENCY" selected[load_mode == "FIND_MAX_CONCURRENCY"] { "Find max concurrency (step load)" }
                        }
                    }
                    div.row data-mode="CONCURRENCY QPS" {
                        (number_field("connections", "Connections", Some(connections.unwrap_or(unistore_core::template::DEFAULT_CONNECTIONS).to_string()), None, ("1", "1")))
                        div data-mode="QPS" {
                            (number_field("target_qps", "Target QPS", opt(target_qps).or(Some("500".into())), Some("Operations per second, all workers together."), ("0", "any")))
                        }
                    }
                    div data-mode="FIND_MAX_CONCURRENCY" {
                        div.row {
                            (number_field("start_connections", "Start connections", Some(search.as_ref().map_or(4, |s| s.0).to_string()), None, ("1", "1")))
                            (number_field("step_connections", "Add per step", Some(search.as_ref().map_or(4, |s| s.1).to_string()), None, ("1", "1")))
                            (text_field("step_duration", "Step duration", &search.as_ref().map_or("10s".to_string(), |s| s.2.clone()), None, "10s"))
                            (number_field("max_connections", "Max connections", Some(search.as_ref().map_or(64, |s| s.3).to_string()), None, ("1", "1")))
                        }
                        div.row {
                            (number_field("qps_drop_pct", "Stop when QPS drops by (%)", Some(search.as_ref().map_or(5.0, |s| s.4).to_string()), None, ("0", "any")))
                            (number_field("p95_growth_pct", "…or p95 grows by (%)", Some(search.as_ref().map_or(100.0, |s| s.5).to_string()), None, ("0", "any")))
                            (number_field("max_error_rate", "…or errors exceed (0–1)", Some(search.as_ref().map_or(0.01, |s| s.6).to_string()), None, ("0", "any")))
                        }
                    }
                    h3 { "Scaling" }
                    div.row {
                        div.field data-field="scaling" {
                            label for="f-scaling" { "Scaling" }
                            select id="f-scaling" name="scaling" {
                                option value="FIXED" selected[scaling_mode == "FIXED"] { "Fixed number" }
                                option value="AUTO" selected[scaling_mode == "AUTO"] { "Auto, up to a bound" }
                                option value="BOUNDED" selected[scaling_mode == "BOUNDED"] { "Bounded, with connections per worker" }
                            }
                            (field_error("scaling"))
                        }
                        div data-scaling="FIXED" {
                            (number_field("workers", "Workers", Some(workers.unwrap_or(1).to_string()), None, ("1", "1")))
                        }
                        div data-scaling="BOUNDED" {
                            (number_field("min_workers", "Min workers", Some(min_workers.unwrap_or(1).to_string()), None, ("1", "1")))
                        }
                        div data-scaling="AUTO BOUNDED" {
                            (number_field("max_workers", "Max workers", Some(max_workers.unwrap_or(4).to_string()), None, ("1", "1")))
                        }
                        div data-scaling="BOUNDED" {
                            (number_field("max_connections_per_worker", "Connections per worker", Some(per_worker.unwrap_or(32).to_string()), None, ("1", "1")))
                        }
                    }
                }
                section.panel {
                    h2 { "Phases and goals" }
                    div.row {
                        (text_field("warmup", "Warmup", &dur(t.phases.warmup), Some("Load runs, not measured."), "5s"))
                        (text_field("measurement", "Measurement", &dur(t.phases.measurement), None, "30s"))
                        (text_field("cooldown", "Cooldown", &dur(t.phases.cooldown), None, "0s"))
                    }
                    h3 { "SLO for the whole run" span.muted.small { " (optional)" } }
                    div.row {
                        (number_field("slo_p95", "p95 at most (ms)", opt(total_slo.p95_ms), None, ("0", "any")))
                        (number_field("slo_p99", "p99 at most (ms)", opt(total_slo.p99_ms), None, ("0", "any")))
                        (number_field("slo_min_qps", "QPS at least", opt(total_slo.min_qps), None, ("0", "any")))
                        (number_field("slo_error_rate", "Error rate at most (0–1)", opt(total_slo.max_error_rate), None, ("0", "any")))
                    }
                    div.row {
                        (number_field("seed", "Seed", t.seed.map(|s| s.to_string()), Some("Same seed, same key sequence. Empty: random."), ("0", "1")))
                    }
                }
            }
            div.panel.form-actions {
                div.actions {
                    button.btn type="button" id="preview-button" { "Preview SQL" }
                    button.btn.primary type="submit" id="save-button" { (if editing.is_some() { "Save changes" } else { "Save template" }) }
                    a.btn href="/templates" { "Cancel" }
                    span.muted.small id="save-status" {}
                }
            }
        }
        section.panel id="preview" hidden aria-live="polite" {
            h2 { "SQL preview" }
            div.notice id="preview-notice" hidden {}
            div id="preview-body" {}
        }
    }
}

/// Custom-SQL generators as the form writes them (`int 1..100, key, text 16`).
fn params_text(params: &[unistore_core::template::ParamGenerator]) -> String {
    use unistore_core::template::ParamGenerator as G;
    params
        .iter()
        .map(|p| match p {
            G::Key => "key".to_string(),
            G::Int { min, max } => format!("int {min}..{max}"),
            G::Float { min, max } => format!("float {min}..{max}"),
            G::Text { len } => format!("text {len}"),
            G::Choice { values } => format!("choice {}", values.join("|")),
            G::Now => "now".to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn form_page(template: &Template, editing: Option<(&str, u32)>) -> Response {
    let demo = crate::templates::preview::demo_url();
    let data = serde_json::json!({
        "id": editing.map(|(id, _)| id),
        "version": editing.map(|(_, v)| v),
        "template": template,
        "demo_url": demo,
    });
    let title = if editing.is_some() { "Edit template" } else { "New template" };
    page(
        title,
        Nav::Templates,
        form_body(template, editing.map(|(id, _)| id), &demo),
        &["templates.js"],
        Some(&data.to_string()),
    )
    .into_response()
}

async fn new_form() -> Response {
    form_page(&new_template(), None)
}

async fn edit_form(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    match state.results.reader.template(&id).await {
        Ok(Some(stored)) => form_page(&stored.template, Some((&stored.template_id, stored.version))),
        Ok(None) => error_page(
            StatusCode::NOT_FOUND,
            "No such template",
            &format!("There is no stored template `{id}`: it may have been deleted."),
        ),
        Err(e) => error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Templates",
            &format!("The results store did not answer: {e}"),
        ),
    }
}

/// The templates pages.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/templates", get(list))
        .route("/templates/new", get(new_form))
        .route("/templates/{id}/edit", get(edit_form))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::time::Duration;

    #[test]
    fn the_list_row_summarises_mix_load_and_phases_and_escapes_names() {
        let mut t = Template::new(
            "orders",
            BTreeMap::from([(QueryKind::PointLookup, 80), (QueryKind::RangeScan, 20)]),
        );
        t.name = "<b>x</b>".into();
        t.load = LoadMode::Qps { target_qps: 500.0, connections: 8 };
        t.phases.cooldown = Duration::from_secs(3);
        let stored = StoredTemplate {
            template_id: "x".into(),
            template: t,
            version: 2,
            updated_at: chrono::Utc::now(),
        };
        let html = list_row(&stored).into_string();
        assert!(html.contains("80% point lookup, 20% range scan"), "{html}");
        assert!(html.contains("500 QPS on 8 connections"), "{html}");
        assert!(html.contains("5s warmup · 30s measured · 3s cooldown"), "{html}");
        assert!(html.contains("&lt;b&gt;x&lt;/b&gt;") && !html.contains("<b>x</b>"), "{html}");
        assert!(html.contains(r#"href="/api/templates/x/export?format=toml""#));
    }

    #[test]
    fn the_form_shows_the_template_it_edits() {
        let mut t = Template::new(
            "main.orders",
            BTreeMap::from([(QueryKind::PointLookup, 60), (QueryKind::CustomSql, 40)]),
        );
        t.name = "orders".into();
        t.custom_sql = vec![unistore_core::template::CustomSql::new(
            "SELECT * FROM orders WHERE c = ? AND s = ?",
            vec![
                unistore_core::template::ParamGenerator::Int { min: 1, max: 50 },
                unistore_core::template::ParamGenerator::Choice { values: vec!["a".into(), "b".into()] },
            ],
        )];
        t.target = Some("postgres://bench@db/app".into());
        let html = form_body(&t, Some("orders"), "sqlite:///d/demo.db").into_string();
        assert!(html.contains(r#"id="mix-POINT_LOOKUP" data-kind="POINT_LOOKUP" min="0" max="100" step="1" inputmode="numeric" value="60""#), "{html}");
        assert!(html.contains(r#"value="int 1..50, choice a|b""#), "{html}");
        assert!(html.contains(r#"<option value="postgres://bench@db/app" selected>"#), "{html}");
        assert!(html.contains("Save changes"));
    }
}
