//! HTTP routes of the inventory domain, under `/api/v1/admin/inventory`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use utoipa_axum::routes;

use super::model::{
    LedgerFilter, Movement, NewAdjustment, StockFilter, StockLevel, UpdateStockSettings,
};
use super::{INVENTORY_READ, INVENTORY_WRITE, service};
use crate::app::AppState;
use crate::identity::guard::CurrentStaff;
use crate::identity::service::Actor;
use crate::platform::ApiResult;
use crate::platform::extract::{self, Query};
use crate::platform::list::{ListParams, Page};
use crate::platform::request::RequestMeta;
use crate::platform::routing::{Access, ApiRouter};

/// Stock per SKU of live products; `sort` by `code`, `product_title`, `on_hand`,
/// `available` or `updated_at`.
#[utoipa::path(get, path = "/inventory", tag = "inventory", params(ListParams, StockFilter),
    responses((status = 200, body = Page<StockLevel>)))]
pub async fn list_stock(
    State(state): State<AppState>,
    Query(list): Query<ListParams>,
    Query(filter): Query<StockFilter>,
) -> ApiResult<Json<Page<StockLevel>>> {
    Ok(Json(service::list_stock(&state, &list, &filter).await?))
}

#[utoipa::path(get, path = "/inventory/{sku_id}", tag = "inventory",
    params(("sku_id" = i64, Path)), responses((status = 200, body = StockLevel)))]
pub async fn get_stock(
    State(state): State<AppState>,
    Path(sku_id): Path<i64>,
) -> ApiResult<Json<StockLevel>> {
    Ok(Json(service::get_stock(&state, sku_id).await?))
}

/// Sets safety stock, reorder quantity and always-available. On hand changes only by
/// adjustments, so every change has a ledger row.
#[utoipa::path(patch, path = "/inventory/{sku_id}", tag = "inventory",
    params(("sku_id" = i64, Path)), request_body = UpdateStockSettings,
    responses((status = 200, body = StockLevel),
        (status = 422, description = "Negative values, or a bundle SKU")))]
pub async fn update_stock_settings(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(sku_id): Path<i64>,
    extract::Json(body): extract::Json<UpdateStockSettings>,
) -> ApiResult<Json<StockLevel>> {
    let actor = Actor::staff(&principal, &meta);
    Ok(Json(
        service::update_settings(&state, &actor, sku_id, body).await?,
    ))
}

/// Adjusts on hand (`adjust`, up or down) or writes units off (`write_off`, down), with a
/// reason for the ledger. Retry safely with an `Idempotency-Key`.
#[utoipa::path(post, path = "/inventory/{sku_id}/adjustments", tag = "inventory",
    params(("sku_id" = i64, Path)), request_body = NewAdjustment,
    responses((status = 201, body = Movement),
        (status = 409, description = "`insufficient-stock`: on hand would drop below zero or below what is reserved"),
        (status = 422, description = "Invalid delta or reason, or a bundle SKU")))]
pub async fn adjust_stock(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(sku_id): Path<i64>,
    extract::Json(body): extract::Json<NewAdjustment>,
) -> ApiResult<impl IntoResponse> {
    let actor = Actor::staff(&principal, &meta);
    let movement = service::adjust_stock(&state, &actor, sku_id, body).await?;
    let location = format!("/api/v1/admin/inventory/{sku_id}/ledger/{}", movement.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(movement),
    ))
}

/// A SKU's stock ledger, newest first.
#[utoipa::path(get, path = "/inventory/{sku_id}/ledger", tag = "inventory",
    params(("sku_id" = i64, Path), ListParams, LedgerFilter),
    responses((status = 200, body = Page<Movement>)))]
pub async fn list_movements(
    State(state): State<AppState>,
    Path(sku_id): Path<i64>,
    Query(list): Query<ListParams>,
    Query(filter): Query<LedgerFilter>,
) -> ApiResult<Json<Page<Movement>>> {
    Ok(Json(service::ledger(&state, sku_id, &list, &filter).await?))
}

#[utoipa::path(get, path = "/inventory/{sku_id}/ledger/{id}", tag = "inventory",
    params(("sku_id" = i64, Path), ("id" = i64, Path)),
    responses((status = 200, body = Movement)))]
pub async fn get_movement(
    State(state): State<AppState>,
    Path((sku_id, id)): Path<(i64, i64)>,
) -> ApiResult<Json<Movement>> {
    Ok(Json(service::get_movement(&state, sku_id, id).await?))
}

/// Routes under `/api/v1/admin`.
pub fn admin_router() -> ApiRouter {
    let read = Access::Permission(INVENTORY_READ);
    let write = Access::Permission(INVENTORY_WRITE);
    ApiRouter::new()
        .route(routes!(list_stock), read)
        .route(routes!(get_stock), read)
        .route(routes!(list_movements), read)
        .route(routes!(get_movement), read)
        .route(routes!(update_stock_settings), write)
        .route(routes!(adjust_stock), write)
}
