//! The templates API: stored, versioned benchmark templates.
//!
//! - `GET /api/templates`: the current version of every template (id, name, table, version,
//!   updated), most recently updated first;
//! - `GET /api/templates/{id}`: its current version with the template;
//!   `GET /api/templates/{id}/versions`: every version, oldest first;
//! - `POST /api/templates`: `{"template": {...}}`, or the template as TOML with
//!   `content-type: application/toml`; 201 with `{"id", "version"}`. The id comes from the name,
//!   as for templates `bench` saves, so a name already taken is a 409 (update it with `PUT`);
//! - `PUT /api/templates/{id}`: the same bodies; a changed template becomes the next version, an
//!   unchanged one keeps its version;
//! - `DELETE /api/templates/{id}`: 204, with every version;
//! - `POST /api/templates/{id}/duplicate`: 201, a new template named `<name> (copy)`;
//! - `GET /api/templates/{id}/export?format=toml|json`: the template as a file;
//!   `POST /api/templates/import`: such a file (TOML or JSON), stored as by `POST`;
//! - `GET /api/templates/{id}/preview`, `POST /api/templates/preview` (a template, as for
//!   create; nothing is stored): the SQL each query kind of the mix would run on the table,
//!   rendered by the target's table manager, with its parameters and the table's profile (see
//!   [`preview`]). A table that is not there is a 404 naming it, a database that cannot be
//!   reached a 503.
//!
//! Every template is validated before anything is stored (a target URL holding a password is
//! refused there, as templates are shown in the UI and kept in the results store); bad input is a
//! 4xx with `{"error": {"kind", "message"}}` naming the field or problem.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use unistore_core::runner::template_id;
use unistore_core::{StoredTemplate, Template};

use crate::error::{ApiError, ApiErrorKind};
use crate::AppState;

pub(crate) mod preview;

/// Copies tried for a free name before giving up (`(copy)`, `(copy 2)`, ...).
const MAX_COPIES: u32 = 100;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateBody {
    template: serde_json::Value,
}

#[derive(Debug, Deserialize)]
struct ExportQuery {
    #[serde(default)]
    format: Option<String>,
}

#[derive(Debug, Serialize)]
struct TemplateListEntry {
    id: String,
    name: String,
    table: String,
    version: u32,
    updated: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
struct TemplateVersion {
    id: String,
    version: u32,
    updated: DateTime<Utc>,
    template: Template,
}

#[derive(Debug, Serialize)]
struct Saved {
    id: String,
    name: String,
    version: u32,
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, ApiErrorKind::BadRequest, message)
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, ApiErrorKind::NotFound, format!("no stored template `{id}`"))
}

fn is_toml(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .is_some_and(|v| v == "application/toml" || v == "text/toml")
}

fn utf8(bytes: &[u8]) -> Result<&str, ApiError> {
    std::str::from_utf8(bytes).map_err(|e| bad_request(format!("the body is not UTF-8 text: {e}")))
}

/// A template from a create or update body: TOML when the content type says so, else
/// `{"template": {...}}`. Validated.
fn template_from_body(headers: &HeaderMap, bytes: &[u8]) -> Result<Template, ApiError> {
    if is_toml(headers) {
        return Template::from_toml(utf8(bytes)?)
            .map_err(|e| bad_request(format!("the template is not valid: {e}")));
    }
    let body: TemplateBody = serde_json::from_slice(bytes).map_err(|e| {
        bad_request(format!(
            "the body is not valid JSON of the form {{\"template\": {{...}}}} \
             (or send TOML with content-type: application/toml): {e}"
        ))
    })?;
    let template: Template = serde_json::from_value(body.template)
        .map_err(|e| bad_request(format!("the template is not valid: {e}")))?;
    template.validate().map_err(|e| bad_request(format!("the template is not valid: {e}")))?;
    Ok(template)
}

/// A template from an exported file's text: JSON when the content type says so or the text is
/// a JSON object, else TOML. Validated.
fn template_from_file(headers: &HeaderMap, bytes: &[u8]) -> Result<Template, ApiError> {
    let text = utf8(bytes)?;
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/json"));
    let parsed = if !is_toml(headers) && (json_type || text.trim_start().starts_with('{')) {
        Template::from_json(text)
    } else {
        Template::from_toml(text)
    };
    parsed.map_err(|e| bad_request(format!("the template is not valid: {e}")))
}

async fn current(state: &AppState, id: &str) -> Result<StoredTemplate, ApiError> {
    state.results.reader.template(id).await?.ok_or_else(|| not_found(id))
}

async fn save(state: &AppState, id: String, template: Template) -> Result<Saved, ApiError> {
    let name = template.name.clone();
    let stored = StoredTemplate { template_id: id.clone(), template, version: 0, updated_at: Utc::now() };
    let version = state.results.sink.save_template_version(&stored).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ApiErrorKind::Unavailable,
            "the template was accepted but the results store has not stored it yet",
        )
    })?;
    Ok(Saved { id, name, version })
}

/// Stores a new template under the id its name gives; a taken id is a conflict, so creating
/// never silently adds a version to another template.
async fn save_new(state: &AppState, template: Template) -> Result<Response, ApiError> {
    let id = template_id(&template);
    if state.results.reader.template(&id).await?.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            ApiErrorKind::Conflict,
            format!(
                "a template with the id `{id}` (from the name `{}`) exists: rename this one, or update \
                 that one with PUT /api/templates/{id}",
                template.name
            ),
        ));
    }
    created(save(state, id, template).await?)
}

fn created(saved: Saved) -> Result<Response, ApiError> {
    let location = format!("/api/templates/{}", saved.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(saved)).into_response())
}

async fn list(State(state): State<Arc<AppState>>) -> Result<Json<Vec<TemplateListEntry>>, ApiError> {
    let templates = state.results.reader.templates().await?;
    Ok(Json(
        templates
            .into_iter()
            .map(|t| TemplateListEntry {
                id: t.template_id,
                name: t.template.name,
                table: t.template.table,
                version: t.version,
                updated: t.updated_at,
            })
            .collect(),
    ))
}

async fn show(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<TemplateVersion>, ApiError> {
    let t = current(&state, &id).await?;
    Ok(Json(TemplateVersion {
        id: t.template_id,
        version: t.version,
        updated: t.updated_at,
        template: t.template,
    }))
}

async fn versions(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Vec<TemplateVersion>>, ApiError> {
    let all = state.results.reader.template_versions(&id).await?;
    if all.is_empty() {
        return Err(not_found(&id));
    }
    Ok(Json(
        all.into_iter()
            .map(|t| TemplateVersion {
                id: t.template_id,
                version: t.version,
                updated: t.updated_at,
                template: t.template,
            })
            .collect(),
    ))
}

async fn create(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    bytes: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let template = template_from_body(&headers, &bytes)?;
    save_new(&state, template).await
}

async fn import(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    bytes: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let template = template_from_file(&headers, &bytes)?;
    save_new(&state, template).await
}

async fn update(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: axum::body::Bytes,
) -> Result<Json<Saved>, ApiError> {
    current(&state, &id).await?;
    let template = template_from_body(&headers, &bytes)?;
    Ok(Json(save(&state, id, template).await?))
}

async fn delete(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    if state.results.reader.delete_template(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&id))
    }
}

async fn duplicate(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let original = current(&state, &id).await?.template;
    for n in 1..=MAX_COPIES {
        let suffix = if n == 1 { " (copy)".to_string() } else { format!(" (copy {n})") };
        let mut copy = original.clone();
        copy.name = format!("{}{suffix}", original.name);
        let copy_id = template_id(&copy);
        if state.results.reader.template(&copy_id).await?.is_some() {
            continue;
        }
        // The longer name may break a limit the original kept to.
        copy.validate().map_err(|e| bad_request(format!("the copy is not a valid template: {e}")))?;
        return created(save(&state, copy_id, copy).await?);
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        ApiErrorKind::Conflict,
        format!("`{id}` has {MAX_COPIES} copies already: rename or delete some"),
    ))
}

async fn export(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    let t = current(&state, &id).await?;
    let (text, content_type, extension) = match q.format.as_deref().unwrap_or("toml") {
        "toml" => (t.template.to_toml()?, "application/toml; charset=utf-8", "toml"),
        "json" => (
            serde_json::to_string_pretty(&t.template).map_err(|e| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ApiErrorKind::Internal,
                    format!("cannot write JSON: {e}"),
                )
            })?,
            "application/json",
            "json",
        ),
        other => return Err(bad_request(format!("unknown export format `{other}`: use toml or json"))),
    };
    // The id is made of ASCII letters, digits, `-` and `_` by `template_id`, but an id stored
    // by other means might not be: keep the header value plain.
    let file: String = t
        .template_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .collect();
    let disposition = format!("attachment; filename=\"{file}.{extension}\"");
    Ok(([(header::CONTENT_TYPE, content_type.to_string()), (header::CONTENT_DISPOSITION, disposition)], text)
        .into_response())
}

async fn preview_stored(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<preview::Preview>, ApiError> {
    let template = current(&state, &id).await?.template;
    Ok(Json(preview::preview(&state, &template).await?))
}

async fn preview_body(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    bytes: axum::body::Bytes,
) -> Result<Json<preview::Preview>, ApiError> {
    let template = template_from_body(&headers, &bytes)?;
    Ok(Json(preview::preview(&state, &template).await?))
}

/// The templates routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/templates", get(list).post(create))
        .route("/api/templates/import", post(import))
        .route("/api/templates/preview", post(preview_body))
        .route("/api/templates/{id}", get(show).put(update).delete(delete))
        .route("/api/templates/{id}/versions", get(versions))
        .route("/api/templates/{id}/duplicate", post(duplicate))
        .route("/api/templates/{id}/export", get(export))
        .route("/api/templates/{id}/preview", get(preview_stored))
}
