//! Product recommendations: staff pin products to a product's page, shoppers read what
//! the rules recommend.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;

use crate::app::AppState;
use crate::catalog::products::model::{ProductSummary, SetRecommendations};
use crate::catalog::products::recommendations::{
    self as service, Recommendation, RecommendationQuery,
};
use crate::identity::guard::CurrentStaff;
use crate::identity::service::Actor;
use crate::platform::ApiResult;
use crate::platform::extract::{self, Query};
use crate::platform::request::RequestMeta;

/// The products pinned to the product's recommendations, in order.
#[utoipa::path(get, path = "/products/{id}/recommendations", tag = "products",
    params(("id" = i64, Path)), responses((status = 200, body = Vec<ProductSummary>)))]
pub async fn get_pinned_recommendations(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Vec<ProductSummary>>> {
    Ok(Json(service::pinned(&state, id).await?))
}

/// Replaces the products pinned to the product's recommendations (at most 24, in order).
#[utoipa::path(put, path = "/products/{id}/recommendations", tag = "products",
    params(("id" = i64, Path)), request_body = SetRecommendations,
    responses((status = 200, body = Vec<ProductSummary>)))]
pub async fn set_pinned_recommendations(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
    extract::Json(body): extract::Json<SetRecommendations>,
) -> ApiResult<Json<Vec<ProductSummary>>> {
    let actor = Actor::staff(&principal, &meta);
    Ok(Json(service::set_pinned(&state, &actor, id, body).await?))
}

/// Products to show on the product's page: pinned, then bought together, then from its
/// categories; each says which rule chose it.
#[utoipa::path(get, path = "/products/{slug}/recommendations", tag = "storefront",
    operation_id = "storefront_product_recommendations", params(RecommendationQuery),
    responses((status = 200, body = Vec<Recommendation>),
        (status = 404, description = "Not on sale now")))]
pub async fn storefront_product_recommendations(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    Query(query): Query<RecommendationQuery>,
) -> ApiResult<impl IntoResponse> {
    let json = service::storefront_json(&state, &slug, &query).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], json))
}
