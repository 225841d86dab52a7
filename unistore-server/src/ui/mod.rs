//! The web UI: pages rendered on the server with maud, enhanced by small scripts that talk to
//! the JSON API and the live WebSocket. Every asset (CSS, the chart library, the scripts) is
//! embedded in the binary and served from `/assets/`; a page never fetches anything from
//! another origin.
//!
//! Layout: [`layout::page`] wraps a page's body in the one navigation bar and loads the shared
//! assets; each page module renders its own body and names its own script.

use std::sync::Arc;

use axum::response::Redirect;
use axum::routing::get;
use axum::Router;

use crate::AppState;

pub(crate) mod assets;
pub(crate) mod compare;
mod connections;
pub(crate) mod history;
pub(crate) mod layout;
pub(crate) mod run_detail;
mod run_live;
mod templates;

/// The UI's routes: the pages and their assets.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/templates") }))
        .merge(assets::routes())
        .merge(templates::routes())
        .merge(connections::routes())
        .merge(run_live::routes())
        .merge(history::routes())
        .merge(run_detail::routes())
        .merge(compare::routes())
}
