//! The Connections page (`/connections`): the stored connections with Test and Remove, and the
//! form that adds one. The list is rendered here; `connections.js` adds, tests and removes
//! through `/api/connections` and shows each answer beside the row or field it concerns.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};

use super::layout::{page, Nav};
use crate::connections::ConnectionView;
use crate::AppState;

/// One row of the list (the script builds the same markup for a connection it adds).
fn row(c: &ConnectionView) -> Markup {
    html! {
        tr data-id=(c.id) {
            td.name {
                strong { (c.name) }
                @if c.builtin { " " span.badge { "built in" } }
                div.small.muted.mono { "connection:" (c.id) }
            }
            td.kind data-label="Kind" { span class={ "badge kind " (c.kind) } { (c.kind) } }
            td.url { code { (c.url) } }
            td.secret data-label="Password" {
                @if c.has_secret { span.badge.ok { "stored, encrypted" } } @else { span.muted { "none" } }
            }
            td.row-actions {
                div.actions {
                    button.btn.test type="button" { "Test" }
                    @if !c.builtin { button.btn.remove type="button" { "Remove" } }
                }
            }
            td.result { div.test-result.small {} }
        }
    }
}

fn body(list: Result<Vec<ConnectionView>, String>) -> Markup {
    html! {
        link rel="stylesheet" href="/assets/connections.css";
        div.page-head {
            div {
                h1 { "Connections" }
                p.muted { "Databases you benchmark. Use one in a template as its target "
                    code { "connection:ID" } "; passwords are stored encrypted and never shown again." }
            }
        }
        div.notice.error #list-error hidden {}
        @match list {
            Err(message) => { div.notice.error { (message) } }
            Ok(list) => {
                section.panel {
                    div.table-wrap {
                        table #connections {
                            thead { tr { th { "Name" } th { "Kind" } th { "URL" } th { "Password" } th { "" } th { "Test result" } } }
                            tbody { @for c in &list { (row(c)) } }
                        }
                    }
                }
            }
        }
        section.panel #add-panel {
            h2 { "Add connection" }
            form #add-connection novalidate autocomplete="off" {
                div.row {
                    div.field #field-name {
                        label for="conn-name" { "Name" }
                        input #conn-name name="name" type="text" maxlength="100" placeholder="staging postgres" required;
                        div.field-error #error-name {}
                    }
                    div.field #field-secret {
                        label for="conn-secret" { "Password" }
                        input #conn-secret name="secret" type="password" autocomplete="new-password" placeholder="optional";
                        div.field-error #error-secret {}
                    }
                }
                div.field #field-url {
                    label for="conn-url" { "URL" }
                    input #conn-url name="url" type="text" spellcheck="false" placeholder="postgres://user@host:5432/database" required;
                    div.hint {
                        "PostgreSQL: " code { "postgres://user@db.example.com:5432/app?sslmode=require" } br;
                        "Snowflake: " code { "snowflake://user@orgname-account/DB/SCHEMA?warehouse=WH&role=R" } br;
                        "A password typed into the URL is moved to the password store; the URL is kept without it."
                    }
                    div.field-error #error-url {}
                }
                div.actions {
                    button.btn.primary type="submit" #add-button { "Add connection" }
                    span.small.muted #add-status {}
                }
            }
        }
    }
}

async fn connections_page(State(state): State<Arc<AppState>>) -> Markup {
    let list = state.connections.list().map_err(|e| e.message);
    page("Connections", Nav::Connections, body(list), &["connections.js"], None)
}

/// `GET /connections`.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/connections", get(connections_page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_urls_are_escaped() {
        let c = ConnectionView {
            id: "x".into(),
            name: "<script>alert(1)</script>".into(),
            kind: "postgres".into(),
            url: "postgres://u@h/db?a=<b>".into(),
            has_secret: true,
            created_at: chrono::Utc::now(),
            builtin: false,
        };
        let html = body(Ok(vec![c])).into_string();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("stored, encrypted"));
        assert!(html.contains(r#"type="password""#));
    }
}
