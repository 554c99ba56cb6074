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
/// `console.js`, then `reports.js` (the measures), served as one script.
const SCRIPT: &str = concat!(
    include_str!("../../assets/console/console.js"),
    "\n",
    include_str!("../../assets/console/reports.js")
);
const STYLE: &str = include_str!("../../assets/console/console.css");
const ICON: &str = include_str!("../../assets/console/icon.svg");

/// The page's routes: `/` and `/console/{console.js,console.css,icon.svg}`.
pub(super) fn routes() -> openapi::Documented {
    openapi::Documented::new()
        .route::<__path_index, _, _>(index)
        .route::<__path_script, _, _>(script)
        .route::<__path_style, _, _>(style)
        .route::<__path_icon, _, _>(icon)
}

/// The operations page.
///
/// A live view of one tenant's queues, agents and decisions. It holds no
/// data and needs no token to load; it asks for one and calls the `/v1`
/// API with it.
#[utoipa::path(get, path = "/", tag = "console",
    responses((status = 200, description = "The page.", content_type = "text/html")))]
pub(super) async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX)
}

/// The operations page's script.
#[utoipa::path(get, path = "/console/console.js", tag = "console",
    responses((status = 200, description = "The script.", content_type = "text/javascript")))]
pub(super) async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// The operations page's style sheet.
#[utoipa::path(get, path = "/console/console.css", tag = "console",
    responses((status = 200, description = "The style sheet.", content_type = "text/css")))]
pub(super) async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

/// The operations page's icon.
#[utoipa::path(get, path = "/console/icon.svg", tag = "console",
    responses((status = 200, description = "The icon.", content_type = "image/svg+xml")))]
pub(super) async fn icon() -> Response {
    asset("image/svg+xml", ICON)
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
