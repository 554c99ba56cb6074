//! `/v1/catalog` and `/v1/score`: stock lookup and updates, scoring only.

use super::*;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct SearchQuery {
    /// What to look for.
    #[param(example = "olijfboom")]
    pub(super) q: String,
    /// Most hits, 1 to 100.
    #[serde(default = "default_limit")]
    #[param(default = 5, minimum = 1, maximum = 100, example = 1)]
    pub(super) limit: usize,
}

pub(super) fn default_limit() -> usize {
    5
}

/// The most hits one search returns.
pub(super) const MAX_HITS: usize = 100;

/// One query's hits: the shape `loket catalog search` prints too.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct SearchAnswer {
    /// The query.
    pub(super) query: String,
    /// The best matches first.
    #[schema(value_type = Vec<schema::Hit>)]
    pub(super) hits: Vec<Hit>,
}

/// Searches the tenant's catalog.
#[utoipa::path(get, path = "/v1/catalog/search", tag = "catalog",
    security(("bearer" = [])),
    params(SearchQuery),
    responses(
        (status = 200, description = "The hits.", body = SearchAnswer, example = json!({
            "query": "olijfboom", "hits": [{"sku": "GC002", "name": "Olijfboom", "score": 13.7736,
            "stock": 12, "in_stock": true, "price_cents": 3995, "matched": "exact"}]})),
        BadRequest, Unauthorized, NotFound, Unprocessable,
    ))]
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

/// A product's stock.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Stock)]
pub(super) struct StockBody {
    /// The product.
    pub(super) sku: String,
    /// Units in stock; negative for back orders.
    pub(super) stock: i64,
}

/// Sets a product's stock; answers with the body.
#[utoipa::path(post, path = "/v1/catalog/stock", tag = "catalog",
    security(("bearer" = [])),
    request_body(content = StockBody, example = json!({"sku": "GC002", "stock": 7})),
    responses(
        (status = 200, description = "Set.", body = StockBody,
            example = json!({"sku": "GC002", "stock": 7})),
        BadRequest, Unauthorized, NotFound, TooLarge, UnsupportedMediaType, Unprocessable,
        Unavailable,
    ))]
pub(super) async fn set_stock(
    Authed(tenant): Authed,
    Body(body): Body<StockBody>,
) -> Result<Json<StockBody>, ApiError> {
    tenant.apply(Command::SetStock { sku: body.sku.clone(), stock: body.stock }).await?;
    Ok(Json(body))
}

/// A text to score.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ScoreBody {
    /// The text, at most `max_text_bytes` bytes.
    pub(super) text: String,
    /// A conversation whose current score to report too.
    #[serde(default)]
    #[schema(value_type = Option<schema::Id>)]
    pub(super) conversation_id: Option<Id>,
}

/// A text's score.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ScoreAnswer {
    #[serde(flatten)]
    pub(super) score: ScoreJson,
    /// The conversation asked about, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, nullable = false)]
    pub(super) conversation_id: Option<Id>,
    /// With `conversation_id`: that conversation's current score; null for
    /// a conversation the tenant does not know.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<f64>)]
    pub(super) conversation_score: Option<Option<f64>>,
}

/// Scores a text without routing it.
///
/// Scoring changes no conversation's score.
#[utoipa::path(post, path = "/v1/score", tag = "catalog",
    security(("bearer" = [])),
    request_body(content = ScoreBody,
        example = json!({"text": "wat kost de olijfboom?", "conversation_id": "c-2"})),
    responses(
        (status = 200, description = "The score.", body = ScoreAnswer, example = json!({
            "intent": "buy.price", "confidence": 0.9933, "buying_intent": 0.9985, "language": "nl",
            "signals": ["price", "question"], "conversation_id": "c-2", "conversation_score": 0.6761})),
        BadRequest, Unauthorized, TooLarge, UnsupportedMediaType, Unprocessable,
    ))]
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

/// A tenant's counts.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct StatsAnswer {
    /// The tenant's name.
    pub(super) tenant: String,
    /// The router's counts.
    #[schema(value_type = schema::RouterStats)]
    pub(super) router: RouterStats,
    /// The tenant's latest event sequence number.
    pub(super) last_seq: u64,
}

/// The tenant's router counts and latest event number.
#[utoipa::path(get, path = "/v1/stats", tag = "health",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The counts.", body = StatsAnswer, example = json!({
            "tenant": "demo", "router": {"agents": 100, "conversations": 2, "queued": 0, "timers": 1},
            "last_seq": 4})),
        Unauthorized,
    ))]
pub(super) async fn stats(Authed(tenant): Authed) -> Json<StatsAnswer> {
    let router = tenant.pipeline().router().stats();
    let last_seq = tenant.events().latest();
    Json(StatsAnswer { tenant: tenant.name().to_owned(), router, last_seq })
}
