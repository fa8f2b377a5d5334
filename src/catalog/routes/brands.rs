use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use crate::app::AppState;
use crate::catalog::brands::{
    self as service, BrandFilter, BrandView, CreateBrand, StorefrontBrand, UpdateBrand,
};
use crate::identity::guard::CurrentStaff;
use crate::identity::service::Actor;
use crate::media::model::MediaKindFilter;
use crate::media::routes::UploadForm;
use crate::media::upload::MultipartForm;
use crate::platform::ApiResult;
use crate::platform::concurrency::{Expected, IfMatch, Tagged};
use crate::platform::extract::{self, Query};
use crate::platform::list::{ListParams, Page};
use crate::platform::request::RequestMeta;

/// Brands, hidden ones included; `sort` by `name`, `sort_order` or `created_at`.
#[utoipa::path(get, path = "/brands", tag = "brands", params(ListParams, BrandFilter),
    responses((status = 200, body = Page<BrandView>)))]
pub async fn list_brands(
    State(state): State<AppState>,
    Query(list): Query<ListParams>,
    Query(filter): Query<BrandFilter>,
) -> ApiResult<Json<Page<BrandView>>> {
    Ok(Json(service::list_brands(&state, &list, &filter).await?))
}

#[utoipa::path(get, path = "/brands/{id}", tag = "brands", params(("id" = i64, Path)),
    responses((status = 200, body = BrandView, headers(("ETag" = String)))))]
pub async fn get_brand(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Tagged<BrandView>> {
    let brand = service::get_brand(&state, id).await?;
    Ok(Tagged(brand.version, brand))
}

#[utoipa::path(post, path = "/brands", tag = "brands", request_body = CreateBrand,
    responses((status = 201, body = BrandView), (status = 409, description = "Slug taken")))]
pub async fn create_brand(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    extract::Json(body): extract::Json<CreateBrand>,
) -> ApiResult<impl IntoResponse> {
    let actor = Actor::staff(&principal, &meta);
    let brand = service::create_brand(&state, &actor, body).await?;
    let location = format!("/api/v1/admin/brands/{}", brand.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Tagged(brand.version, brand),
    ))
}

/// Edits a brand; name the version you edited with `If-Match` or `version`.
#[utoipa::path(patch, path = "/brands/{id}", tag = "brands", params(("id" = i64, Path)),
    request_body = UpdateBrand,
    responses((status = 200, body = BrandView),
        (status = 409, description = "Stale version (body `version`) or slug taken"),
        (status = 412, description = "Stale version (`If-Match`)")))]
pub async fn update_brand(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
    if_match: IfMatch,
    extract::Json(body): extract::Json<UpdateBrand>,
) -> ApiResult<Tagged<BrandView>> {
    let expected = Expected::from(if_match, body.version)?;
    let actor = Actor::staff(&principal, &meta);
    let brand = service::update_brand(&state, &actor, id, expected, body).await?;
    Ok(Tagged(brand.version, brand))
}

/// Deletes a brand that no live product uses.
#[utoipa::path(delete, path = "/brands/{id}", tag = "brands", params(("id" = i64, Path)),
    responses((status = 204), (status = 409, description = "Live products use it")))]
pub async fn delete_brand(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let actor = Actor::staff(&principal, &meta);
    service::delete_brand(&state, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Visible brands in the shop's order, for a brand index page.
#[utoipa::path(get, path = "/brands", tag = "storefront",
    operation_id = "storefront_list_brands",
    responses((status = 200, body = Vec<StorefrontBrand>)))]
pub async fn storefront_brands(
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<StorefrontBrand>>> {
    Ok(Json(service::storefront_brands(&state).await?))
}

/// A visible brand by slug.
#[utoipa::path(get, path = "/brands/{slug}", tag = "storefront",
    operation_id = "storefront_get_brand",
    responses((status = 200, body = StorefrontBrand)))]
pub async fn storefront_brand(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> ApiResult<Json<StorefrontBrand>> {
    Ok(Json(service::storefront_brand(&state, &slug).await?))
}

/// Uploads the brand's logo (an image, multipart field `file`), replacing any other.
#[utoipa::path(put, path = "/brands/{id}/logo", tag = "brands",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 200, body = BrandView), (status = 415, description = "Not an image")))]
pub async fn upload_brand_logo(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
    MultipartForm(mut form): MultipartForm,
) -> ApiResult<Tagged<BrandView>> {
    let current = service::get_brand(&state, id).await?;
    let stored = state
        .media
        .upload(&mut form, "file", MediaKindFilter::Image)
        .await?;
    let actor = Actor::staff(&principal, &meta);
    let change: UpdateBrand = serde_json::from_value(serde_json::json!({ "logo_key": stored.key }))
        .map_err(crate::platform::ApiError::internal)?;
    let brand =
        service::update_brand(&state, &actor, id, Expected::Body(current.version), change).await?;
    Ok(Tagged(brand.version, brand))
}
