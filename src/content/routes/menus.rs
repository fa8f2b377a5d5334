//! Staff administration of navigation menus.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use crate::app::AppState;
use crate::content::model::{CreateMenu, MenuFilter, MenuView, ReplaceMenuItems, UpdateMenu};
use crate::content::service::menus as service;
use crate::identity::guard::CurrentStaff;
use crate::identity::service::Actor;
use crate::platform::ApiResult;
use crate::platform::concurrency::{Expected, IfMatch, Tagged};
use crate::platform::extract::{Json, Query};
use crate::platform::list::{ListParams, Page};
use crate::platform::request::RequestMeta;

#[utoipa::path(get, path = "/content/menus", tag = "content",
    params(ListParams, MenuFilter),
    responses((status = 200, body = Page<MenuView>)))]
pub async fn list_menus(
    State(state): State<AppState>,
    Query(list): Query<ListParams>,
    Query(filter): Query<MenuFilter>,
) -> ApiResult<axum::Json<Page<MenuView>>> {
    Ok(axum::Json(
        service::list_menus(&state, &list, &filter).await?,
    ))
}

#[utoipa::path(get, path = "/content/menus/{id}", tag = "content",
    params(("id" = i64, Path)),
    responses((status = 200, body = MenuView, headers(("ETag" = String)))))]
pub async fn get_menu(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Tagged<MenuView>> {
    let view = service::get_menu(&state, id).await?;
    Ok(Tagged(view.version, view))
}

#[utoipa::path(post, path = "/content/menus", tag = "content",
    request_body = CreateMenu,
    responses((status = 201, body = MenuView), (status = 409, description = "Code taken")))]
pub async fn create_menu(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Json(body): Json<CreateMenu>,
) -> ApiResult<impl IntoResponse> {
    let actor = Actor::staff(&principal, &meta);
    let view = service::create_menu(&state, &actor, body).await?;
    let location = format!("/api/v1/admin/content/menus/{}", view.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Tagged(view.version, view),
    ))
}

/// Renames or recodes a menu; its items are replaced with `PUT /content/menus/{id}/items`.
#[utoipa::path(patch, path = "/content/menus/{id}", tag = "content",
    params(("id" = i64, Path)), request_body = UpdateMenu,
    responses((status = 200, body = MenuView), (status = 409, description = "Stale version"),
        (status = 422, description = "Invalid field")))]
pub async fn update_menu(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
    if_match: IfMatch,
    Json(body): Json<UpdateMenu>,
) -> ApiResult<Tagged<MenuView>> {
    let expected = Expected::from(if_match, body.version)?;
    let actor = Actor::staff(&principal, &meta);
    let view = service::update_menu(&state, &actor, id, expected, body).await?;
    Ok(Tagged(view.version, view))
}

#[utoipa::path(delete, path = "/content/menus/{id}", tag = "content",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 404, description = "No such menu")))]
pub async fn delete_menu(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let actor = Actor::staff(&principal, &meta);
    service::delete_menu(&state, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces the menu's items as a whole; page and directory targets must exist.
#[utoipa::path(put, path = "/content/menus/{id}/items", tag = "content",
    params(("id" = i64, Path)), request_body = ReplaceMenuItems,
    responses((status = 200, body = MenuView), (status = 404, description = "No such menu"),
        (status = 422, description = "An item is invalid or points at nothing")))]
pub async fn replace_menu_items(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
    Json(body): Json<ReplaceMenuItems>,
) -> ApiResult<Tagged<MenuView>> {
    let actor = Actor::staff(&principal, &meta);
    let view = service::replace_items(&state, &actor, id, body).await?;
    Ok(Tagged(view.version, view))
}
