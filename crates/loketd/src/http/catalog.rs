//! `/v1/catalog` and `/v1/score`: stock lookup and updates, scoring only.

use super::*;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SearchQuery {
    pub(super) q: String,
    #[serde(default = "default_limit")]
    pub(super) limit: usize,
}

pub(super) fn default_limit() -> usize {
    5
}

/// The most hits one search returns.
pub(super) const MAX_HITS: usize = 100;

/// One query's hits: the shape `loket catalog search` prints too.
#[derive(Debug, Serialize)]
pub(super) struct SearchAnswer {
    pub(super) query: String,
    pub(super) hits: Vec<Hit>,
}

pub(super) async fn search_catalog(
    Authed(tenant): Authed,
    QueryOf(query): QueryOf<SearchQuery>,
) -> Result<Json<SearchAnswer>, ApiError> {
    let catalog = tenant.pipeline().catalog().ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "no_catalog", "this tenant has no catalog")
    })?;
    if !(1..=MAX_HITS).contains(&query.limit) {
        return Err(ApiError::invalid(format!(
            "limit: must be 1 to {MAX_HITS}, not {}",
            query.limit
        )));
    }
    let hits =
        catalog.search(&query.q, query.limit).map_err(|e| ApiError::invalid(e.to_string()))?;
    Ok(Json(SearchAnswer { query: query.q, hits }))
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StockBody {
    pub(super) sku: String,
    pub(super) stock: i64,
}

pub(super) async fn set_stock(
    Authed(tenant): Authed,
    Body(body): Body<StockBody>,
) -> Result<Json<StockBody>, ApiError> {
    tenant.apply(Command::SetStock { sku: body.sku.clone(), stock: body.stock }).await?;
    Ok(Json(body))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ScoreBody {
    pub(super) text: String,
    #[serde(default)]
    pub(super) conversation_id: Option<Id>,
}

#[derive(Debug, Serialize)]
pub(super) struct ScoreAnswer {
    #[serde(flatten)]
    pub(super) score: ScoreJson,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) conversation_id: Option<Id>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) conversation_score: Option<Option<f64>>,
}

pub(super) async fn score(
    Authed(tenant): Authed,
    State(state): State<AppState>,
    Body(body): Body<ScoreBody>,
) -> Result<Json<ScoreAnswer>, ApiError> {
    if body.text.len() > state.limits.max_text_bytes {
        return Err(ApiError::invalid(format!(
            "text: {} bytes; at most {}",
            body.text.len(),
            state.limits.max_text_bytes
        )));
    }
    let pipeline = tenant.pipeline();
    let score = with_scratch(|scratch| pipeline.score(&body.text, scratch));
    let conversation_score = body.conversation_id.as_ref().map(|id| {
        let key = tenant.ids().read().conversations.find(id);
        key.and_then(|key| pipeline.conversation_score(ConversationId(key))).map(round)
    });
    Ok(Json(ScoreAnswer {
        score: score_json(&tenant, &score),
        conversation_id: body.conversation_id,
        conversation_score,
    }))
}

#[derive(Debug, Serialize)]
pub(super) struct StatsAnswer {
    pub(super) tenant: String,
    pub(super) router: RouterStats,
    pub(super) last_seq: u64,
}

pub(super) async fn stats(Authed(tenant): Authed) -> Json<StatsAnswer> {
    let router = tenant.pipeline().router().stats();
    let last_seq = tenant.events().latest();
    Json(StatsAnswer { tenant: tenant.name().to_owned(), router, last_seq })
}
