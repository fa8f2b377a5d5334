use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use crate::app::AppState;
use crate::identity::entity::role;
use crate::identity::guard::CurrentStaff;
use crate::identity::model::{CreateRole, RoleView, UpdateRole};
use crate::identity::service::{self, Actor};
use crate::identity::store;
use crate::platform::concurrency::{Expected, IfMatch, Tagged};
use crate::platform::extract::{Json, Query};
use crate::platform::list::{ListParams, Page, SortFields};
use crate::platform::request::RequestMeta;
use crate::platform::{ApiError, ApiResult};

const SORT: SortFields<role::Column> = SortFields(&[
    ("name", role::Column::Name),
    ("created_at", role::Column::CreatedAt),
]);

/// Lists roles with their permissions.
#[utoipa::path(get, path = "/roles", tag = "roles", params(ListParams),
    responses((status = 200, body = Page<RoleView>)))]
pub async fn list_roles(
    State(state): State<AppState>,
    Query(list): Query<ListParams>,
) -> ApiResult<axum::Json<Page<RoleView>>> {
    let db = state.db.reader();
    let page = list
        .spec(&SORT)?
        .fetch(
            db,
            <role::Entity as sea_orm::EntityTrait>::find(),
            role::Column::Id,
        )
        .await?;
    let ids: Vec<i64> = page.items.iter().map(|r: &role::Model| r.id).collect();
    let mut permissions = store::permissions_by_role(db, &ids).await?;
    Ok(axum::Json(page.map(|r| {
        let granted = permissions.remove(&r.id).unwrap_or_default();
        RoleView::new(r, granted)
    })))
}

#[utoipa::path(get, path = "/roles/{id}", tag = "roles",
    responses((status = 200, body = RoleView, headers(("ETag" = String)))))]
pub async fn get_role(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Tagged<RoleView>> {
    let db = state.db.reader();
    let role = store::find_role(db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("role", id))?;
    let view = service::role_view(db, role).await?;
    Ok(Tagged(view.version, view))
}

#[utoipa::path(post, path = "/roles", tag = "roles", request_body = CreateRole,
    responses((status = 201, body = RoleView)))]
pub async fn create_role(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Json(body): Json<CreateRole>,
) -> ApiResult<impl IntoResponse> {
    let actor = Actor::staff(&principal, &meta);
    let role = service::create_role(&state, &actor, body).await?;
    let location = format!("/api/v1/admin/roles/{}", role.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Tagged(role.version, role),
    ))
}

/// Changes a role; `permissions`, when given, replaces the whole set.
#[utoipa::path(patch, path = "/roles/{id}", tag = "roles", request_body = UpdateRole,
    responses((status = 200, body = RoleView), (status = 409, description = "Stale version"),
        (status = 412, description = "If-Match does not match"), (status = 428, description = "No version given")))]
pub async fn update_role(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
    if_match: IfMatch,
    Json(body): Json<UpdateRole>,
) -> ApiResult<Tagged<RoleView>> {
    let expected = Expected::from(if_match, body.version)?;
    let actor = Actor::staff(&principal, &meta);
    let role = service::update_role(&state, &actor, id, expected, body).await?;
    Ok(Tagged(role.version, role))
}

/// Deletes a role; staff holding it lose its permissions at once.
#[utoipa::path(delete, path = "/roles/{id}", tag = "roles", responses((status = 204)))]
pub async fn delete_role(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let actor = Actor::staff(&principal, &meta);
    service::delete_role(&state, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
