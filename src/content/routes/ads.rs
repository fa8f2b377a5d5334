//! Staff administration of ads and banners.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use crate::app::AppState;
use crate::content::model::{AdFilter, AdView, CreateAd, UpdateAd};
use crate::content::service::ads as service;
use crate::identity::guard::CurrentStaff;
use crate::identity::service::Actor;
use crate::media::model::MediaKindFilter;
use crate::media::routes::UploadForm;
use crate::media::upload::MultipartForm;
use crate::platform::ApiResult;
use crate::platform::concurrency::{Expected, IfMatch, Tagged};
use crate::platform::extract::{Json, Query};
use crate::platform::list::{ListParams, Page};
use crate::platform::request::RequestMeta;

#[utoipa::path(get, path = "/content/ads", tag = "content",
    params(ListParams, AdFilter),
    responses((status = 200, body = Page<AdView>)))]
pub async fn list_ads(
    State(state): State<AppState>,
    Query(list): Query<ListParams>,
    Query(filter): Query<AdFilter>,
) -> ApiResult<axum::Json<Page<AdView>>> {
    Ok(axum::Json(service::list_ads(&state, &list, &filter).await?))
}

#[utoipa::path(get, path = "/content/ads/{id}", tag = "content",
    params(("id" = i64, Path)),
    responses((status = 200, body = AdView, headers(("ETag" = String)))))]
pub async fn get_ad(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Tagged<AdView>> {
    let view = service::get_ad(&state, id).await?;
    Ok(Tagged(view.version, view))
}

#[utoipa::path(post, path = "/content/ads", tag = "content",
    request_body = CreateAd,
    responses((status = 201, body = AdView)))]
pub async fn create_ad(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Json(body): Json<CreateAd>,
) -> ApiResult<impl IntoResponse> {
    let actor = Actor::staff(&principal, &meta);
    let view = service::create_ad(&state, &actor, body).await?;
    let location = format!("/api/v1/admin/content/ads/{}", view.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Tagged(view.version, view),
    ))
}

/// Edits an ad; the window is checked with the stored bound a request leaves out.
#[utoipa::path(patch, path = "/content/ads/{id}", tag = "content",
    params(("id" = i64, Path)), request_body = UpdateAd,
    responses((status = 200, body = AdView), (status = 409, description = "Stale version"),
        (status = 422, description = "Window ends before it starts")))]
pub async fn update_ad(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
    if_match: IfMatch,
    Json(body): Json<UpdateAd>,
) -> ApiResult<Tagged<AdView>> {
    let expected = Expected::from(if_match, body.version)?;
    let actor = Actor::staff(&principal, &meta);
    let view = service::update_ad(&state, &actor, id, expected, body).await?;
    Ok(Tagged(view.version, view))
}

#[utoipa::path(delete, path = "/content/ads/{id}", tag = "content",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 404, description = "No such ad")))]
pub async fn delete_ad(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let actor = Actor::staff(&principal, &meta);
    service::delete_ad(&state, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Uploads the ad's image (multipart field `file`) and points the ad at it.
#[utoipa::path(put, path = "/content/ads/{id}/image", tag = "content",
    params(("id" = i64, Path)),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 200, body = AdView), (status = 415, description = "Not an image")))]
pub async fn upload_ad_image(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
    MultipartForm(mut form): MultipartForm,
) -> ApiResult<Tagged<AdView>> {
    let current = service::get_ad(&state, id).await?;
    let stored = state
        .media
        .upload(&mut form, "file", MediaKindFilter::Image)
        .await?;
    let actor = Actor::staff(&principal, &meta);
    let change: UpdateAd = serde_json::from_value(serde_json::json!({ "image_url": stored.url }))
        .map_err(crate::platform::ApiError::internal)?;
    let ad =
        service::update_ad(&state, &actor, id, Expected::Body(current.version), change).await?;
    Ok(Tagged(ad.version, ad))
}
