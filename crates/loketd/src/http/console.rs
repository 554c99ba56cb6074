//! The operations page: a static page at `/` and its script, style sheet
//! and icon under `/console/`, compiled into the binary.
//!
//! The page needs no token to load: it holds no data. It asks for a
//! tenant's token, keeps it in the browser's `sessionStorage` and calls the
//! `/v1` API with `Authorization: Bearer`, the event stream included (read
//! with `fetch`, so the token never goes into a URL). Every response here
//! carries a Content-Security-Policy that allows scripts, styles, images
//! and connections from the page's own origin only (no inline script or
//! style, no frames, no form posts), `X-Content-Type-Options: nosniff`, no
//! referrer and `Cache-Control: no-cache`, so an upgraded daemon's page is
//! picked up at once.

use axum::http::HeaderValue;

use super::*;

/// The policy: everything from the page's own origin, nothing inline.
pub(super) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

const INDEX: &str = include_str!("../../assets/console/index.html");
const SCRIPT: &str = include_str!("../../assets/console/console.js");
const STYLE: &str = include_str!("../../assets/console/console.css");
const ICON: &str = include_str!("../../assets/console/icon.svg");

/// The page's routes: `/` and `/console/{console.js,console.css,icon.svg}`.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { asset("text/html; charset=utf-8", INDEX) }))
        .route(
            "/console/console.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route("/console/console.css", get(|| async { asset("text/css; charset=utf-8", STYLE) }))
        .route("/console/icon.svg", get(|| async { asset("image/svg+xml", ICON) }))
}

/// One embedded file with its type and the page's security headers.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    let set = [
        (header::CONTENT_TYPE, content_type),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-cache"),
    ];
    for (name, value) in set {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
