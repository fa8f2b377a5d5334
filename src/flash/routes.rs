//! HTTP routes of flash sales: `/api/v1/admin/flash-sales` for staff, `/api/v1/flash-sales`
//! for customers.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use utoipa_axum::routes;

use super::model::{
    FlashSale, NewFlashSale, Purchase, PurchaseAccepted, PurchaseRequest, StorefrontFlashSale,
    StorefrontFlashSales, UpdateFlashSale,
};
use super::{FLASH_SALES_READ, FLASH_SALES_WRITE, service};
use crate::app::AppState;
use crate::identity::guard::{CurrentCustomer, CurrentStaff};
use crate::identity::service::Actor;
use crate::platform::extract::{self, Query};
use crate::platform::list::{ListParams, Page};
use crate::platform::request::RequestMeta;
use crate::platform::routing::{Access, ApiRouter};
use crate::platform::{ApiError, ApiResult, idempotency};

/// Schedules a sale; its stock leaves the SKU's available stock at once.
#[utoipa::path(post, path = "/flash-sales", tag = "flash-sales", request_body = NewFlashSale,
    responses((status = 201, body = FlashSale),
        (status = 409, description = "`insufficient-stock`: the SKU has fewer units available"),
        (status = 422, description = "Invalid fields")))]
pub async fn create_flash_sale(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    extract::Json(body): extract::Json<NewFlashSale>,
) -> ApiResult<impl IntoResponse> {
    let actor = Actor::staff(&principal, &meta);
    let sale = service::create(&state, &actor, body).await?;
    let location = format!("/api/v1/admin/flash-sales/{}", sale.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(sale),
    ))
}

/// Every sale, newest start first; `sort` by `starts_at`, `ends_at`, `name`, `created_at`.
#[utoipa::path(get, path = "/flash-sales", tag = "flash-sales", params(ListParams),
    responses((status = 200, body = Page<FlashSale>)))]
pub async fn list_flash_sales(
    State(state): State<AppState>,
    Query(list): Query<ListParams>,
) -> ApiResult<Json<Page<FlashSale>>> {
    Ok(Json(service::list(&state, &list).await?))
}

#[utoipa::path(get, path = "/flash-sales/{id}", tag = "flash-sales",
    params(("id" = i64, Path)), responses((status = 200, body = FlashSale), (status = 404)))]
pub async fn get_flash_sale(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<FlashSale>> {
    Ok(Json(service::get(&state, id).await?))
}

/// Edits a sale: anything before it starts, then only `name` and `ends_at`.
#[utoipa::path(patch, path = "/flash-sales/{id}", tag = "flash-sales",
    params(("id" = i64, Path)), request_body = UpdateFlashSale,
    responses((status = 200, body = FlashSale),
        (status = 409, description = "Started or closed, or not enough stock for more units"),
        (status = 422)))]
pub async fn update_flash_sale(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
    extract::Json(body): extract::Json<UpdateFlashSale>,
) -> ApiResult<Json<FlashSale>> {
    let actor = Actor::staff(&principal, &meta);
    Ok(Json(service::update(&state, &actor, id, body).await?))
}

/// Ends a sale now; unsold units go back to the SKU once its last orders are made.
#[utoipa::path(post, path = "/flash-sales/{id}/end", tag = "flash-sales",
    params(("id" = i64, Path)), responses((status = 200, body = FlashSale), (status = 404)))]
pub async fn end_flash_sale(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
) -> ApiResult<Json<FlashSale>> {
    let actor = Actor::staff(&principal, &meta);
    Ok(Json(service::end_now(&state, &actor, id).await?))
}

/// Deletes a sale that has not started; its stock goes back to the SKU.
#[utoipa::path(delete, path = "/flash-sales/{id}", tag = "flash-sales",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 404), (status = 409, description = "Already started")))]
pub async fn delete_flash_sale(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let actor = Actor::staff(&principal, &meta);
    service::delete(&state, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Upcoming and live sales with the units left.
#[utoipa::path(get, path = "/flash-sales", tag = "flash-sales",
    responses((status = 200, body = StorefrontFlashSales)))]
pub async fn storefront_flash_sales(
    State(state): State<AppState>,
) -> ApiResult<Json<StorefrontFlashSales>> {
    Ok(Json(service::storefront_list(&state).await?))
}

#[utoipa::path(get, path = "/flash-sales/{id}", tag = "flash-sales",
    params(("id" = i64, Path)),
    responses((status = 200, body = StorefrontFlashSale), (status = 404)))]
pub async fn storefront_flash_sale(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<StorefrontFlashSale>> {
    Ok(Json(service::storefront_get(&state, id).await?))
}

/// Tries to buy. The answer comes from the gate at once: 202 with a purchase id (the
/// order follows within moments; poll the Location), or why not. The same
/// `Idempotency-Key` again answers the same purchase.
#[utoipa::path(post, path = "/flash-sales/{id}/purchase", tag = "flash-sales",
    params(("id" = i64, Path),
        ("Idempotency-Key" = String, Header, description = "Required; one per purchase attempt")),
    request_body = PurchaseRequest,
    responses((status = 202, body = PurchaseAccepted),
        (status = 400, description = "Idempotency-Key missing"),
        (status = 403, description = "`sale-ended`, or `membership-required`"),
        (status = 404),
        (status = 409, description = "`sold-out`, or `limit-reached`"),
        (status = 422, description = "Invalid quantity"),
        (status = 425, description = "`sale-not-started`")))]
pub async fn purchase(
    State(state): State<AppState>,
    CurrentCustomer(customer): CurrentCustomer,
    Path(id): Path<i64>,
    headers: HeaderMap,
    extract::Json(body): extract::Json<PurchaseRequest>,
) -> ApiResult<impl IntoResponse> {
    let Some(key) = headers.get(idempotency::HEADER) else {
        return Err(ApiError::bad_request(
            "a purchase needs an Idempotency-Key header, so that a retry cannot buy twice",
        )
        .with_code("idempotency-key-required"));
    };
    let key = key.to_str().unwrap_or_default();
    let accepted = service::purchase(&state, customer.customer_id, id, key, body).await?;
    let location = format!("/api/v1/flash-sales/purchases/{}", accepted.purchase_id);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(accepted),
    ))
}

/// Where a purchase stands: pending, ordered (with the order number) or cancelled. A
/// pending answer carries `Retry-After: 1`.
#[utoipa::path(get, path = "/flash-sales/purchases/{purchase_id}", tag = "flash-sales",
    params(("purchase_id" = String, Path)),
    responses((status = 200, body = Purchase), (status = 404)))]
pub async fn get_purchase(
    State(state): State<AppState>,
    CurrentCustomer(customer): CurrentCustomer,
    Path(purchase_id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let purchase = service::poll(&state, customer.customer_id, &purchase_id).await?;
    let retry = (purchase.status == "pending").then_some([(header::RETRY_AFTER, "1")]);
    Ok((retry, Json(purchase)))
}

pub fn admin_router() -> ApiRouter {
    let read = Access::Permission(FLASH_SALES_READ);
    let write = Access::Permission(FLASH_SALES_WRITE);
    ApiRouter::new()
        .route(routes!(create_flash_sale), write)
        .route(routes!(list_flash_sales), read)
        .route(routes!(get_flash_sale), read)
        .route(routes!(update_flash_sale), write)
        .route(routes!(end_flash_sale), write)
        .route(routes!(delete_flash_sale), write)
}

pub fn storefront_router() -> ApiRouter {
    ApiRouter::new()
        .route(routes!(storefront_flash_sales), Access::Public)
        .route(routes!(storefront_flash_sale), Access::Public)
        .self_idempotent_route(routes!(purchase), Access::Customer)
        .route(routes!(get_purchase), Access::Customer)
}
