//! The controller's OpenAPI document, `GET /api/openapi.json`: generated from the handlers'
//! `#[utoipa::path]` annotations and the types they read and answer with, so it changes with
//! them instead of drifting like a hand-written one.
//!
//! The error responses every route can give whatever it does (401 and 403 from
//! [`crate::protect`], 500 from a handler that panicked) are added to each operation here, as
//! references to shared responses, rather than repeated on every handler.

use std::sync::LazyLock;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::error::{ApiError, ApiErrorKind, ErrorBody};

/// The document's title.
pub(crate) const TITLE: &str = "Unistore Bench controller";

// The scheme names are spelt again in `security(...)` below, which takes literals only.
/// Name of the bearer-token security scheme (`Authorization: Bearer UNISTORE_TOKEN`).
const BEARER: &str = "bearer";
/// Name of the cookie security scheme (the `unistore_token` cookie `POST /login` sets).
const COOKIE: &str = "cookie";

/// The OpenAPI document of every API route of [`crate::router`] (the HTML pages and `/login`
/// are left out).
#[derive(OpenApi)]
#[openapi(
    info(
        title = TITLE,
        version = env!("CARGO_PKG_VERSION"),
        description = "Prepare, run and watch benchmarks of Snowflake and Postgres tables; store \
            templates and connections; read stored results.\n\n\
            When the controller listens beyond loopback it requires `UNISTORE_TOKEN`: send \
            `Authorization: Bearer TOKEN` (or the `unistore_token` cookie that `POST /login` \
            sets). On loopback without a token no credentials are needed, but the `Host` must be \
            a loopback name. Requests that change something, and WebSockets, carrying an `Origin` \
            must come from the controller's own origin.\n\n\
            Every error is JSON: `{\"error\": {\"kind\", \"message\", \"code\"?}}`."
    ),
    paths(
        crate::healthz,
        document,
        crate::runs::list,
        crate::runs::create,
        crate::runs::show,
        crate::runs::start,
        crate::runs::stop,
        crate::runs::live,
        crate::results_api::list,
        crate::results_api::compare_runs,
        crate::results_api::show,
        crate::results_api::delete,
        crate::results_api::series,
        crate::results_api::kinds,
        crate::results_api::executions,
        crate::results_api::errors,
        crate::results_api::server,
        crate::results_api::export,
        crate::templates::list,
        crate::templates::create,
        crate::templates::import,
        crate::templates::preview_body,
        crate::templates::show,
        crate::templates::update,
        crate::templates::delete,
        crate::templates::versions,
        crate::templates::duplicate,
        crate::templates::export,
        crate::templates::preview_stored,
        crate::connections::list,
        crate::connections::create,
        crate::connections::show,
        crate::connections::remove,
        crate::connections::test,
        crate::discovery::databases,
        crate::discovery::schemas,
        crate::discovery::tables,
        crate::live::socket,
    ),
    components(schemas(ErrorBody, ApiErrorKind)),
    tags(
        (name = "health", description = "Whether the controller and its results store answer"),
        (name = "runs", description = "Prepare, start, stop and watch multi-worker runs (needs a control store)"),
        (name = "live", description = "A run's live figures over WebSocket"),
        (name = "results", description = "Finished and running runs as the results store holds them"),
        (name = "templates", description = "Stored, versioned benchmark templates and their SQL preview"),
        (name = "connections", description = "Stored database connections (passwords sealed, never shown)"),
        (name = "discovery", description = "Databases, schemas and tables of a stored connection"),
        (name = "openapi", description = "This document"),
    ),
    security(("bearer" = []), ("cookie" = [])),
    modifiers(&Security, &CommonResponses)
)]
pub(crate) struct ApiDoc;

/// The security schemes of [`crate::auth`].
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "`Authorization: Bearer TOKEN`, the controller's `UNISTORE_TOKEN` (required when it \
                         listens beyond loopback)",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            COOKIE,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::TOKEN_COOKIE,
                "The cookie `POST /login` sets for browsers (the same token)",
            ))),
        );
    }
}

/// Responses every route can give, whatever it does, shared under `components/responses`.
const COMMON: [(&str, &str, &str); 3] = [
    (
        "401",
        "Unauthorized",
        "The controller requires `UNISTORE_TOKEN` and the request carries none, or a wrong one \
         (`error.kind` `unauthorized`)",
    ),
    (
        "403",
        "Forbidden",
        "The request came from another origin, or names a host this controller does not serve \
         (`error.kind` `forbidden`)",
    ),
    (
        "500",
        "Internal",
        "A bug: the handler panicked, or a store failed unexpectedly (`error.kind` `internal`)",
    ),
];

/// Adds [`COMMON`] to every operation that does not document the status itself.
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let error_ref = || RefOr::Ref(Ref::from_schema_name(<ErrorBody as utoipa::ToSchema>::name()));
        let components = openapi.components.get_or_insert_with(Default::default);
        for (_, name, description) in COMMON {
            let response = ResponseBuilder::new()
                .description(description)
                .content("application/json", ContentBuilder::new().schema(Some(error_ref())).build())
                .build();
            components.responses.insert(name.to_string(), RefOr::T(response));
        }
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.options,
                &mut item.head,
                &mut item.patch,
                &mut item.trace,
            ];
            for operation in operations.into_iter().flatten() {
                for (status, name, _) in COMMON {
                    operation
                        .responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
                }
            }
        }
    }
}

/// The document as served, built once.
static DOCUMENT: LazyLock<Result<String, String>> =
    LazyLock::new(|| ApiDoc::openapi().to_json().map_err(|e| e.to_string()));

/// This document.
///
/// The controller's API as OpenAPI 3.1, generated from its handlers.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    operation_id = "openapi_document",
    tag = "openapi",
    responses(
        (status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object),
    )
)]
pub(crate) async fn document() -> Response {
    match DOCUMENT.as_ref() {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json.as_str()).into_response(),
        Err(e) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ApiErrorKind::Internal,
            format!("the OpenAPI document cannot be written: {e}"),
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_serializes() {
        let json = ApiDoc::openapi().to_pretty_json().expect("the document serializes");
        let doc: serde_json::Value = serde_json::from_str(&json).expect("and parses back");
        assert_eq!(doc["info"]["title"], TITLE);
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
        assert!(doc["components"]["schemas"]["ApiError"].is_object(), "the error schema is a component");
        assert!(DOCUMENT.is_ok(), "the served document is written too");
    }
}
