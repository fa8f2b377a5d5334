//! Staff administration of content pages.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use crate::app::AppState;
use crate::catalog::model::AttributeValues;
use crate::content::model::{CreatePage, PageFilter, PageView, UpdatePage};
use crate::content::service::pages as service;
use crate::identity::guard::CurrentStaff;
use crate::identity::service::Actor;
use crate::platform::ApiResult;
use crate::platform::concurrency::{Expected, IfMatch, Tagged};
use crate::platform::extract::{Json, Query};
use crate::platform::list::{ListParams, Page};
use crate::platform::request::RequestMeta;

#[utoipa::path(get, path = "/content/pages", tag = "content",
    params(ListParams, PageFilter),
    responses((status = 200, body = Page<PageView>)))]
pub async fn list_pages(
    State(state): State<AppState>,
    Query(list): Query<ListParams>,
    Query(filter): Query<PageFilter>,
) -> ApiResult<axum::Json<Page<PageView>>> {
    Ok(axum::Json(
        service::list_pages(&state, &list, &filter).await?,
    ))
}

#[utoipa::path(get, path = "/content/pages/{id}", tag = "content",
    params(("id" = i64, Path)),
    responses((status = 200, body = PageView, headers(("ETag" = String)))))]
pub async fn get_page(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Tagged<PageView>> {
    let view = service::get_page(&state, id).await?;
    Ok(Tagged(view.version, view))
}

#[utoipa::path(post, path = "/content/pages", tag = "content",
    request_body = CreatePage,
    responses((status = 201, body = PageView), (status = 409, description = "Slug taken")))]
pub async fn create_page(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Json(body): Json<CreatePage>,
) -> ApiResult<impl IntoResponse> {
    let actor = Actor::staff(&principal, &meta);
    let view = service::create_page(&state, &actor, body).await?;
    let location = format!("/api/v1/admin/content/pages/{}", view.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Tagged(view.version, view),
    ))
}

/// Edits a page; the body is sanitised again. Name the version with `If-Match` or `version`.
#[utoipa::path(patch, path = "/content/pages/{id}", tag = "content",
    params(("id" = i64, Path)), request_body = UpdatePage,
    responses((status = 200, body = PageView), (status = 409, description = "Stale version"),
        (status = 422, description = "Invalid field")))]
pub async fn update_page(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
    if_match: IfMatch,
    Json(body): Json<UpdatePage>,
) -> ApiResult<Tagged<PageView>> {
    let expected = Expected::from(if_match, body.version)?;
    let actor = Actor::staff(&principal, &meta);
    let view = service::update_page(&state, &actor, id, expected, body).await?;
    Ok(Tagged(view.version, view))
}

#[utoipa::path(delete, path = "/content/pages/{id}", tag = "content",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 404, description = "No such page")))]
pub async fn delete_page(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let actor = Actor::staff(&principal, &meta);
    service::delete_page(&state, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The page's custom attribute values, by code.
#[utoipa::path(get, path = "/content/pages/{id}/attributes", tag = "content",
    responses((status = 200, body = Object)))]
pub async fn get_page_attributes(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<AttributeValues>> {
    Ok(axum::Json(service::page_attributes(&state, id).await?))
}

/// Replaces the page's custom attribute values; each is checked against its definition
/// (422 naming `attributes.<code>`).
#[utoipa::path(put, path = "/content/pages/{id}/attributes", tag = "content",
    request_body = Object, responses((status = 200, body = Object)))]
pub async fn set_page_attributes(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
    Json(values): Json<AttributeValues>,
) -> ApiResult<axum::Json<AttributeValues>> {
    let actor = Actor::staff(&principal, &meta);
    Ok(axum::Json(
        service::set_page_attributes(&state, &actor, id, values).await?,
    ))
}
