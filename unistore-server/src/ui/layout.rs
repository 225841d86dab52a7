//! The one layout of every page: head with the shared assets, the navigation bar, the main
//! column, and the page's own script.

use maud::{html, Markup, PreEscaped, DOCTYPE};

/// The sections of the navigation bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    /// Templates: list, create, edit, run.
    Templates,
    /// A run (live or finished).
    Runs,
    /// Stored runs, filters, compare tray.
    History,
    /// Runs side by side.
    Compare,
    /// Stored connections.
    Connections,
}

impl Nav {
    const ALL: [(Nav, &'static str, &'static str); 4] = [
        (Nav::Templates, "Templates", "/templates"),
        (Nav::History, "History", "/history"),
        (Nav::Compare, "Compare", "/compare"),
        (Nav::Connections, "Connections", "/connections"),
    ];
}

/// A whole page. `scripts` are asset names (e.g. `"live.js"`) loaded after the shared ones;
/// `data` is JSON the page's script reads from `<script id="page-data">` (already serialized,
/// escaped here for a script element).
pub(crate) fn page(title: &str, nav: Nav, body: Markup, scripts: &[&str], data: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Unistore Bench" }
                link rel="icon" href="/assets/favicon.svg" type="image/svg+xml";
                link rel="stylesheet" href="/assets/uplot.css";
                link rel="stylesheet" href="/assets/app.css";
            }
            body {
                header.topbar {
                    a.brand href="/" { span.logo { "◆" } " Unistore Bench" }
                    nav {
                        @for (item, label, href) in Nav::ALL {
                            a href=(href) class=[(item == nav).then_some("active")] { (label) }
                        }
                    }
                }
                main { (body) }
                @if let Some(json) = data {
                    script id="page-data" type="application/json" { (PreEscaped(script_safe(json))) }
                }
                script src="/assets/uplot.js" {}
                script src="/assets/app.js" {}
                @for s in scripts {
                    script src=(format!("/assets/{s}")) {}
                }
            }
        }
    }
}

/// JSON made safe inside a `<script>` element: `<` becomes `\u003c`, so no `</script>` or
/// `<!--` in a string can end the element early.
fn script_safe(json: &str) -> String {
    json.replace('<', "\\u003c")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_data_cannot_close_its_script_element() {
        let json = serde_json::json!({ "name": "</script><script>alert(1)</script>" }).to_string();
        let html = page("t", Nav::History, html! { p { "x" } }, &[], Some(&json)).into_string();
        assert_eq!(html.matches("</script>").count(), 3, "{html}");
        assert!(html.contains("\\u003c/script>"));
        let start = html.find("id=\"page-data\"").unwrap();
        assert!(html[start..].contains(r#"{"name":"\u003c/script>\u003cscript>alert(1)\u003c/script>"}"#));
    }

    #[test]
    fn the_active_section_is_marked() {
        let html = page("t", Nav::Connections, html! {}, &["x.js"], None).into_string();
        assert!(html.contains(r#"<a href="/connections" class="active">"#), "{html}");
        assert!(!html.contains(r#"<a href="/history" class="active">"#));
        assert!(html.contains(r#"<script src="/assets/x.js">"#));
    }
}
