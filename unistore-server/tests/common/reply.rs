//! A request through `Router::oneshot` (no socket) and its whole response, for the API tests.

#![allow(dead_code, clippy::unwrap_used)] // not every test file uses every helper; tests fail loudly

use axum::body::{Body, Bytes};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use serde::de::DeserializeOwned;
use tower::ServiceExt;

/// A whole response: status, headers and the body read to its end.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.to_vec()).expect("a UTF-8 body")
    }

    pub fn json<T: DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// `method path` on `app`, with `body` of `content_type` if there is one.
pub async fn call(app: &Router, method: Method, path: &str, body: Option<(&str, &str)>) -> Reply {
    let request = Request::builder().method(method).uri(path);
    let request = match body {
        Some((content_type, body)) => {
            request.header(CONTENT_TYPE, content_type).body(Body::from(body.to_string()))
        }
        None => request.body(Body::empty()),
    };
    let response = app.clone().oneshot(request.unwrap()).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    Reply { status: parts.status, headers: parts.headers, body }
}
