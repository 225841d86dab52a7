//! The UI's assets, embedded in the binary and served with their content type and a cache
//! lifetime. The chart library is uPlot, vendored and pinned in `unistore-worker/assets/uplot`
//! (its README names the version and checksum); the report and the pages load the same file.

use std::sync::Arc;

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::AppState;

/// Name, content type, content.
const ASSETS: &[(&str, &str, &str)] = &[
    ("app.css", "text/css; charset=utf-8", include_str!("assets/app.css")),
    ("app.js", "text/javascript; charset=utf-8", include_str!("assets/app.js")),
    ("templates.js", "text/javascript; charset=utf-8", include_str!("assets/templates.js")),
    ("templates.css", "text/css; charset=utf-8", include_str!("assets/templates.css")),
    ("connections.js", "text/javascript; charset=utf-8", include_str!("assets/connections.js")),
    ("connections.css", "text/css; charset=utf-8", include_str!("assets/connections.css")),
    ("live.js", "text/javascript; charset=utf-8", include_str!("assets/live.js")),
    ("live.css", "text/css; charset=utf-8", include_str!("assets/live.css")),
    ("favicon.svg", "image/svg+xml", include_str!("assets/favicon.svg")),
    ("history.css", "text/css; charset=utf-8", include_str!("assets/history.css")),
    ("history.js", "text/javascript; charset=utf-8", include_str!("assets/history.js")),
    ("detail.js", "text/javascript; charset=utf-8", include_str!("assets/detail.js")),
    ("compare.js", "text/javascript; charset=utf-8", include_str!("assets/compare.js")),
    (
        "uplot.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../unistore-worker/assets/uplot/uPlot.iife.min.js"),
    ),
    (
        "uplot.css",
        "text/css; charset=utf-8",
        include_str!("../../../unistore-worker/assets/uplot/uPlot.min.css"),
    ),
];

async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => {
            ([(header::CONTENT_TYPE, *content_type), (header::CACHE_CONTROL, "public, max-age=300")], *body)
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, format!("no asset `{name}`")).into_response(),
    }
}

/// `GET /assets/{name}`.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/assets/{name}", get(asset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_content_and_a_unique_name() {
        for (i, (name, content_type, body)) in ASSETS.iter().enumerate() {
            assert!(!body.is_empty(), "{name} is empty");
            assert!(content_type.contains('/'), "{name}");
            assert!(ASSETS[i + 1..].iter().all(|(n, _, _)| n != name), "{name} twice");
        }
        // The pages must not load anything from elsewhere.
        for (name, _, body) in ASSETS {
            if name.ends_with(".css") || *name == "app.js" {
                assert!(
                    !body.contains("http://") && !body.contains("https://"),
                    "{name} names another origin"
                );
            }
        }
    }
}
