//! Who may talk to the controller, and from where.
//!
//! - **Token.** When the controller listens on anything but a loopback address, `UNISTORE_TOKEN`
//!   is required (the binary refuses to start without it). Every API call, page and WebSocket
//!   must then carry it: `Authorization: Bearer TOKEN` (scripts, workers) or the `unistore_token`
//!   cookie that `POST /login` sets (browsers; `HttpOnly`, `SameSite=Strict`). Tokens are
//!   compared in constant time. Unauthenticated API and WebSocket requests get 401 (JSON);
//!   pages redirect to `/login`. `/login` and the static `/assets/` are open.
//! - **Same origin.** A request that changes something (any method but GET/HEAD/OPTIONS) or
//!   opens a WebSocket, and that carries an `Origin` header, must come from the controller's own
//!   origin (`Origin` equal to `http://` + `Host`), else 403: a page on another site cannot drive
//!   the controller from a user's browser (CSRF, cross-site WebSocket hijacking). Clients that
//!   send no `Origin` (curl, the workers) are not browsers and are not affected.
//! - **Host.** Without a token (loopback only), the `Host` header must name a loopback host
//!   (`127.0.0.1`, `localhost`, `[::1]`), so a site that rebinds its DNS name to 127.0.0.1
//!   cannot reach the controller through the user's browser.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use maud::{html, DOCTYPE};
use subtle::ConstantTimeEq;

use crate::error::{ApiError, ApiErrorKind};

/// The cookie a browser holds after logging in.
pub const TOKEN_COOKIE: &str = "unistore_token";

/// Shortest token accepted: a guessable token is no protection.
pub const MIN_TOKEN_LEN: usize = 16;

/// What the controller checks on each request. `Debug` never shows the token.
#[derive(Clone, Default)]
pub struct Access {
    token: Option<Arc<str>>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access").field("token", &self.token.as_ref().map(|_| "***")).finish()
    }
}

impl Access {
    /// Loopback only: no token, same-origin and loopback-`Host` checks.
    pub fn loopback() -> Self {
        Access { token: None }
    }

    /// Requires `token` on every request.
    pub fn with_token(token: &str) -> Result<Self, String> {
        let token = token.trim();
        if token.len() < MIN_TOKEN_LEN {
            return Err(format!(
                "UNISTORE_TOKEN is {} characters long; use at least {MIN_TOKEN_LEN} random characters \
                 (e.g. `openssl rand -hex 24`)",
                token.len()
            ));
        }
        Ok(Access { token: Some(Arc::from(token)) })
    }

    /// The access rule for a listen address: loopback needs nothing, any other address needs a
    /// token. `token` is `UNISTORE_TOKEN`.
    pub fn for_listen_addr(addr: &std::net::SocketAddr, token: Option<&str>) -> Result<Self, String> {
        match token.filter(|t| !t.trim().is_empty()) {
            Some(t) => Self::with_token(t),
            None if addr.ip().is_loopback() => Ok(Self::loopback()),
            None => Err(format!(
                "listening on {addr} lets other machines reach the controller: set UNISTORE_TOKEN to a \
                 random secret of at least {MIN_TOKEN_LEN} characters (clients send `Authorization: Bearer \
                 TOKEN`, browsers log in at /login), or listen on 127.0.0.1"
            )),
        }
    }

    /// Whether a token is required.
    pub fn requires_token(&self) -> bool {
        self.token.is_some()
    }

    fn accepts(&self, presented: Option<&str>) -> bool {
        match (&self.token, presented) {
            (None, _) => true,
            (Some(expected), Some(given)) => bool::from(expected.as_bytes().ct_eq(given.as_bytes())),
            (Some(_), None) => false,
        }
    }
}

/// The token a request presents: the bearer header first, else the cookie.
fn presented(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        return v.strip_prefix("Bearer ").map(str::trim);
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == TOKEN_COOKIE)
        .map(|(_, value)| value)
}

fn is_loopback_host(host: &str) -> bool {
    // `host[:port]`, `[v6]:port`.
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<std::net::IpAddr>().map(|ip| ip.is_loopback()).unwrap_or(false)
}

fn forbidden(message: String) -> Response {
    ApiError::new(StatusCode::FORBIDDEN, ApiErrorKind::Forbidden, message).into_response()
}

/// Whether the client wants a page (a browser navigating) rather than JSON.
fn wants_page(request: &Request) -> bool {
    request.method() == Method::GET
        && !request.uri().path().starts_with("/api/")
        && !request.uri().path().starts_with("/ws/")
        && request
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"))
}

/// The middleware: [`Access`] rules on every request.
pub async fn check(State(access): State<Access>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !access.requires_token() && !host.is_empty() && !is_loopback_host(host) {
        return forbidden(format!(
            "this controller answers only requests addressed to 127.0.0.1 or localhost, not `{host}` \
             (to serve other names, listen on another address with UNISTORE_TOKEN set)"
        ));
    }
    let unsafe_method = !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let websocket = headers.get(header::UPGRADE).is_some();
    if unsafe_method || websocket {
        if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
            let same = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                .is_some_and(|o| !host.is_empty() && o.eq_ignore_ascii_case(host));
            if !same {
                return forbidden(format!(
                    "a request from the page of another origin ({origin}) was refused: the controller \
                     accepts changes and live sockets only from its own pages"
                ));
            }
        }
    }
    let path = request.uri().path();
    let open = path == "/login" || path.starts_with("/assets/");
    if open || access.accepts(presented(headers)) {
        return next.run(request).await;
    }
    if wants_page(&request) {
        return Redirect::to("/login").into_response();
    }
    let message = if presented(request.headers()).is_some() {
        "the token is wrong: send the value of the controller's UNISTORE_TOKEN"
    } else {
        "this controller requires a token: send `Authorization: Bearer TOKEN` (UNISTORE_TOKEN), or log in at /login"
    };
    let mut response =
        ApiError::new(StatusCode::UNAUTHORIZED, ApiErrorKind::Unauthorized, message).into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
    response
}

#[derive(serde::Deserialize)]
struct LoginForm {
    token: String,
}

fn login_page(error: Option<&str>) -> maud::Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Log in · Unistore Bench" }
                link rel="stylesheet" href="/assets/app.css";
            }
            body {
                header.topbar { span.brand { span.logo { "◆" } " Unistore Bench" } }
                main {
                    section.panel style="max-width: 420px; margin: 40px auto" {
                        h1 { "Log in" }
                        p.muted { "This controller requires its token (UNISTORE_TOKEN)." }
                        form method="post" action="/login" {
                            div class=(if error.is_some() { "field invalid" } else { "field" }) {
                                label for="token" { "Token" }
                                input #token type="password" name="token" autocomplete="current-password" required autofocus;
                                div.field-error { (error.unwrap_or("")) }
                            }
                            button.btn.primary type="submit" { "Log in" }
                        }
                    }
                }
            }
        }
    }
}

async fn login_form() -> maud::Markup {
    login_page(None)
}

async fn login(State(access): State<Access>, Form(form): Form<LoginForm>) -> Response {
    let token = form.token.trim();
    if !access.requires_token() {
        return Redirect::to("/").into_response();
    }
    if !access.accepts(Some(token)) {
        return (StatusCode::UNAUTHORIZED, login_page(Some("That is not the controller's token.")))
            .into_response();
    }
    let cookie = format!("{TOKEN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict");
    let mut response = Redirect::to("/").into_response();
    if let Ok(value) = header::HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// Wraps the controller's routes in the [`Access`] rules and adds `/login`.
pub fn protect(router: Router, access: Access) -> Router {
    let login = Router::new().route("/login", get(login_form).post(login)).with_state(access.clone());
    router.merge(login).layer(axum::middleware::from_fn_with_state(access, check))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_recognised() {
        for h in ["127.0.0.1:8080", "localhost:8080", "LOCALHOST", "[::1]:80", "127.0.0.2"] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in ["evil.example:8080", "10.0.0.1:8080", "[2001:db8::1]:80", "localhost.evil.example"] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }

    #[test]
    fn a_non_loopback_address_needs_a_long_token() {
        let any: std::net::SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let local: std::net::SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let e = Access::for_listen_addr(&any, None).unwrap_err();
        assert!(e.contains("set UNISTORE_TOKEN"), "{e}");
        let e = Access::for_listen_addr(&any, Some("short")).unwrap_err();
        assert!(e.contains("at least 16"), "{e}");
        assert!(Access::for_listen_addr(&any, Some("0123456789abcdef0123")).unwrap().requires_token());
        assert!(!Access::for_listen_addr(&local, None).unwrap().requires_token());
        let debug = format!("{:?}", Access::with_token("0123456789abcdef0123").unwrap());
        assert!(!debug.contains("0123456789"), "{debug}");
    }

    #[test]
    fn the_token_is_read_from_the_header_or_the_cookie() {
        let access = Access::with_token("0123456789abcdef0123").unwrap();
        let mut h = HeaderMap::new();
        assert!(!access.accepts(presented(&h)));
        h.insert(header::COOKIE, "a=b; unistore_token=0123456789abcdef0123".parse().unwrap());
        assert!(access.accepts(presented(&h)));
        h.insert(header::AUTHORIZATION, "Bearer 0123456789abcdef0124".parse().unwrap());
        assert!(!access.accepts(presented(&h)), "a wrong header is not rescued by the cookie");
        h.insert(header::AUTHORIZATION, "Bearer 0123456789abcdef0123".parse().unwrap());
        assert!(access.accepts(presented(&h)));
        assert!(!access.accepts(Some("0123456789abcdef012")), "a prefix is not the token");
    }
}
