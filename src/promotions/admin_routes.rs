//! HTTP routes of the promotions back office: thin handlers over [`super::admin`].

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use utoipa_axum::routes;

use super::admin::{
    self as service, CouponFilter, CouponView, CreatePromotion, ExportFilter, IssueCoupons,
    IssuedCoupons, PromotionFilter, PromotionView, RedemptionView, UpdateCoupon, UpdatePromotion,
};
use super::{PROMOTIONS_READ, PROMOTIONS_WRITE};
use crate::app::AppState;
use crate::identity::guard::CurrentStaff;
use crate::identity::service::Actor;
use crate::platform::ApiResult;
use crate::platform::concurrency::{Expected, IfMatch, Tagged};
use crate::platform::extract::{self, Query};
use crate::platform::list::{ListParams, Page};
use crate::platform::request::RequestMeta;
use crate::platform::routing::{Access, ApiRouter};

/// Routes under `/api/v1/admin`.
pub fn admin_router() -> ApiRouter {
    let read = Access::Permission(PROMOTIONS_READ);
    let write = Access::Permission(PROMOTIONS_WRITE);
    ApiRouter::new()
        .route(routes!(list_promotions), read)
        .route(routes!(get_promotion), read)
        .route(routes!(list_coupons), read)
        .route(routes!(export_coupons), read)
        .route(routes!(list_redemptions), read)
        .route(routes!(create_promotion), write)
        .route(routes!(update_promotion), write)
        .route(routes!(delete_promotion), write)
        .route(routes!(issue_coupons), write)
        .route(routes!(update_coupon), write)
        .route(routes!(delete_coupon), write)
}

/// Promotions; `sort` by `name`, `priority`, `starts_at`, `ends_at` or `created_at`.
#[utoipa::path(get, path = "/promotions", tag = "promotions",
    params(ListParams, PromotionFilter),
    responses((status = 200, body = Page<PromotionView>)))]
pub async fn list_promotions(
    State(state): State<AppState>,
    Query(list): Query<ListParams>,
    Query(filter): Query<PromotionFilter>,
) -> ApiResult<Json<Page<PromotionView>>> {
    Ok(Json(
        service::list_promotions(&state, &list, &filter).await?,
    ))
}

#[utoipa::path(get, path = "/promotions/{id}", tag = "promotions", params(("id" = i64, Path)),
    responses((status = 200, body = PromotionView, headers(("ETag" = String)))))]
pub async fn get_promotion(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Tagged<PromotionView>> {
    let promotion = service::get_promotion(&state, id).await?;
    Ok(Tagged(promotion.version, promotion))
}

/// Creates a promotion; its `rule` is checked by the pricing engine and against its kind.
#[utoipa::path(post, path = "/promotions", tag = "promotions", request_body = CreatePromotion,
    responses((status = 201, body = PromotionView)))]
pub async fn create_promotion(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    extract::Json(body): extract::Json<CreatePromotion>,
) -> ApiResult<impl IntoResponse> {
    let actor = Actor::staff(&principal, &meta);
    let promotion = service::create_promotion(&state, &actor, body).await?;
    let location = format!("/api/v1/admin/promotions/{}", promotion.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Tagged(promotion.version, promotion),
    ))
}

/// Edits a promotion; name the version you edited with `If-Match` or `version`.
#[utoipa::path(patch, path = "/promotions/{id}", tag = "promotions",
    params(("id" = i64, Path)), request_body = UpdatePromotion,
    responses((status = 200, body = PromotionView),
        (status = 409, description = "Stale version (body `version`)"),
        (status = 412, description = "Stale version (`If-Match`)")))]
pub async fn update_promotion(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
    if_match: IfMatch,
    extract::Json(body): extract::Json<UpdatePromotion>,
) -> ApiResult<Tagged<PromotionView>> {
    let expected = Expected::from(if_match, body.version)?;
    let actor = Actor::staff(&principal, &meta);
    let promotion = service::update_promotion(&state, &actor, id, expected, body).await?;
    Ok(Tagged(promotion.version, promotion))
}

/// Deletes a promotion no order used, with its coupons.
#[utoipa::path(delete, path = "/promotions/{id}", tag = "promotions",
    params(("id" = i64, Path)),
    responses((status = 204),
        (status = 409, description = "Orders used it (deactivate it instead), or another promotion gives its coupons")))]
pub async fn delete_promotion(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let actor = Actor::staff(&principal, &meta);
    service::delete_promotion(&state, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The orders that used a promotion and what it saved them.
#[utoipa::path(get, path = "/promotions/{id}/redemptions", tag = "promotions",
    params(("id" = i64, Path), ListParams),
    responses((status = 200, body = Page<RedemptionView>)))]
pub async fn list_redemptions(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(list): Query<ListParams>,
) -> ApiResult<Json<Page<RedemptionView>>> {
    Ok(Json(service::list_redemptions(&state, id, &list).await?))
}

/// Coupons of a coupon promotion; `sort` by `code`, `used_count`, `expires_at` or
/// `created_at`.
#[utoipa::path(get, path = "/promotions/{id}/coupons", tag = "promotions",
    params(("id" = i64, Path), ListParams, CouponFilter),
    responses((status = 200, body = Page<CouponView>),
        (status = 422, description = "Not a coupon promotion")))]
pub async fn list_coupons(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(list): Query<ListParams>,
    Query(filter): Query<CouponFilter>,
) -> ApiResult<Json<Page<CouponView>>> {
    Ok(Json(
        service::list_coupons(&state, id, &list, &filter).await?,
    ))
}

/// Issues one custom code (`code`) or a batch of random ones (`count`).
#[utoipa::path(post, path = "/promotions/{id}/coupons", tag = "promotions",
    params(("id" = i64, Path)), request_body = IssueCoupons,
    responses((status = 201, body = IssuedCoupons),
        (status = 409, description = "The custom code exists"),
        (status = 422, description = "Invalid fields, or not a coupon promotion")))]
pub async fn issue_coupons(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
    extract::Json(body): extract::Json<IssueCoupons>,
) -> ApiResult<impl IntoResponse> {
    let actor = Actor::staff(&principal, &meta);
    let issued = service::issue_coupons(&state, &actor, id, body).await?;
    let location = format!("/api/v1/admin/promotions/{id}/coupons");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(issued),
    ))
}

/// A coupon promotion's codes as CSV, one batch or all.
#[utoipa::path(get, path = "/promotions/{id}/coupons.csv", tag = "promotions",
    params(("id" = i64, Path), ExportFilter),
    responses((status = 200, content_type = "text/csv", body = String),
        (status = 422, description = "Not a coupon promotion")))]
pub async fn export_coupons(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(filter): Query<ExportFilter>,
) -> ApiResult<impl IntoResponse> {
    let csv = service::export_coupons(&state, id, &filter).await?;
    let disposition = format!("attachment; filename=\"promotion-{id}-coupons.csv\"");
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        csv,
    ))
}

/// Deactivates, reactivates or re-dates a coupon; name the version you edited.
#[utoipa::path(patch, path = "/coupons/{id}", tag = "promotions",
    params(("id" = i64, Path)), request_body = UpdateCoupon,
    responses((status = 200, body = CouponView),
        (status = 409, description = "Stale version (body `version`)"),
        (status = 412, description = "Stale version (`If-Match`)")))]
pub async fn update_coupon(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
    if_match: IfMatch,
    extract::Json(body): extract::Json<UpdateCoupon>,
) -> ApiResult<Tagged<CouponView>> {
    let expected = Expected::from(if_match, body.version)?;
    let actor = Actor::staff(&principal, &meta);
    let coupon = service::update_coupon(&state, &actor, id, expected, body).await?;
    Ok(Tagged(coupon.version, coupon))
}

/// Deletes a coupon no order used.
#[utoipa::path(delete, path = "/coupons/{id}", tag = "promotions",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 409, description = "Used: deactivate it instead")))]
pub async fn delete_coupon(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let actor = Actor::staff(&principal, &meta);
    service::delete_coupon(&state, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
