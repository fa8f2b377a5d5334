//! Staff administration of the content directory tree.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use crate::app::AppState;
use crate::content::model::{CreateDirectory, DirectoryFilter, DirectoryView, UpdateDirectory};
use crate::content::service::directories as service;
use crate::identity::guard::CurrentStaff;
use crate::identity::service::Actor;
use crate::platform::ApiResult;
use crate::platform::concurrency::{Expected, IfMatch, Tagged};
use crate::platform::extract::{Json, Query};
use crate::platform::list::{ListParams, Page};
use crate::platform::request::RequestMeta;

#[utoipa::path(get, path = "/content/directories", tag = "content",
    params(ListParams, DirectoryFilter),
    responses((status = 200, body = Page<DirectoryView>)))]
pub async fn list_directories(
    State(state): State<AppState>,
    Query(list): Query<ListParams>,
    Query(filter): Query<DirectoryFilter>,
) -> ApiResult<axum::Json<Page<DirectoryView>>> {
    Ok(axum::Json(
        service::list_directories(&state, &list, &filter).await?,
    ))
}

#[utoipa::path(get, path = "/content/directories/{id}", tag = "content",
    params(("id" = i64, Path)),
    responses((status = 200, body = DirectoryView, headers(("ETag" = String)))))]
pub async fn get_directory(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Tagged<DirectoryView>> {
    let view = service::get_directory(&state, id).await?;
    Ok(Tagged(view.version, view))
}

#[utoipa::path(post, path = "/content/directories", tag = "content",
    request_body = CreateDirectory,
    responses((status = 201, body = DirectoryView), (status = 409, description = "Slug taken")))]
pub async fn create_directory(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Json(body): Json<CreateDirectory>,
) -> ApiResult<impl IntoResponse> {
    let actor = Actor::staff(&principal, &meta);
    let view = service::create_directory(&state, &actor, body).await?;
    let location = format!("/api/v1/admin/content/directories/{}", view.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Tagged(view.version, view),
    ))
}

/// Edits or moves a directory; name the version you edited with `If-Match` or `version`.
#[utoipa::path(patch, path = "/content/directories/{id}", tag = "content",
    params(("id" = i64, Path)), request_body = UpdateDirectory,
    responses((status = 200, body = DirectoryView), (status = 409, description = "Stale version"),
        (status = 422, description = "Moved under its own subtree")))]
pub async fn update_directory(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
    if_match: IfMatch,
    Json(body): Json<UpdateDirectory>,
) -> ApiResult<Tagged<DirectoryView>> {
    let expected = Expected::from(if_match, body.version)?;
    let actor = Actor::staff(&principal, &meta);
    let view = service::update_directory(&state, &actor, id, expected, body).await?;
    Ok(Tagged(view.version, view))
}

#[utoipa::path(delete, path = "/content/directories/{id}", tag = "content",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 409, description = "Still holds pages or directories")))]
pub async fn delete_directory(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let actor = Actor::staff(&principal, &meta);
    service::delete_directory(&state, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
