//! Public reads the storefront needs: the region tree, shipping options, payment methods.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::platform::ApiResult;
use crate::platform::extract::Query;
use crate::platform::routing::{Access, ApiRouter};
use crate::system::entity::payment_method;
use crate::system::model::{PaymentMethodView, RegionNode, ShippingOption, ShippingQuery};
use crate::system::service;

/// Routes under `/api/v1`.
pub fn storefront_router() -> ApiRouter {
    ApiRouter::new()
        .route(routes!(list_regions), Access::Public)
        .route(routes!(list_shipping_options), Access::Public)
        .route(routes!(list_payment_options), Access::Public)
}

/// The region tree (country → province → city → district) for address forms.
#[utoipa::path(get, path = "/regions", tag = "storefront",
    operation_id = "storefront_list_regions",
    responses((status = 200, body = Vec<RegionNode>)))]
pub async fn list_regions(State(state): State<AppState>) -> ApiResult<impl IntoResponse> {
    let json = service::region_tree_json(&state).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], json))
}

/// Shipping methods that deliver to a region, priced for the parcel's weight, cheapest first.
#[utoipa::path(get, path = "/shipping-methods", tag = "storefront",
    operation_id = "storefront_list_shipping_methods",
    params(ShippingQuery),
    responses((status = 200, body = Vec<ShippingOption>)))]
pub async fn list_shipping_options(
    State(state): State<AppState>,
    Query(query): Query<ShippingQuery>,
) -> ApiResult<Json<Vec<ShippingOption>>> {
    Ok(Json(
        service::shipping_options(state.db.reader(), &query).await?,
    ))
}

/// Payment methods a customer can choose: active ones whose gateway this shop has keys for
/// (bank transfer and cash on delivery need none).
#[utoipa::path(get, path = "/payment-methods", tag = "storefront",
    operation_id = "storefront_list_payment_methods",
    responses((status = 200, body = Vec<PaymentMethodView>)))]
pub async fn list_payment_options(
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<PaymentMethodView>>> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    let rows = payment_method::Entity::find()
        .filter(payment_method::Column::Active.eq(true))
        .order_by_asc(payment_method::Column::SortOrder)
        .order_by_asc(payment_method::Column::Id)
        .all(state.db.reader())
        .await?;
    Ok(Json(
        rows.into_iter()
            .filter(|m| crate::payments::gateway::offered(&state.gateways, &m.provider))
            .map(Into::into)
            .collect(),
    ))
}
