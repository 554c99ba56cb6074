//! Health, readiness and Prometheus metrics.

use super::*;

#[derive(Debug, Serialize)]
pub(super) struct Health<'a> {
    pub(super) status: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) unhealthy_tenants: Vec<&'a str>,
}

pub(super) async fn healthz() -> Json<Health<'static>> {
    Json(Health { status: "ok", unhealthy_tenants: Vec::new() })
}

pub(super) async fn readyz(State(state): State<AppState>) -> Response {
    let unhealthy: Vec<&str> =
        state.tenants.iter().filter(|t| !t.is_healthy()).map(|t| t.name()).collect();
    if state.ready.load(Ordering::Relaxed) && unhealthy.is_empty() {
        Json(Health { status: "ready", unhealthy_tenants: unhealthy }).into_response()
    } else {
        let body = Health { status: "not_ready", unhealthy_tenants: unhealthy };
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}

pub(super) async fn metrics(State(state): State<AppState>) -> Response {
    for tenant in state.tenants.iter() {
        tenant.metrics().observe(tenant.is_healthy(), tenant.pipeline().router());
    }
    let body = crate::metrics::prometheus().render();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}
