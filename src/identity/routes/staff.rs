use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use crate::app::AppState;
use crate::identity::entity::staff;
use crate::identity::guard::CurrentStaff;
use crate::identity::model::{CreateStaff, StaffFilter, StaffView, UpdateStaff};
use crate::identity::service::{self, Actor};
use crate::identity::store;
use crate::platform::concurrency::{Expected, IfMatch, Tagged};
use crate::platform::extract::{Json, Query};
use crate::platform::list::{ListParams, Page, SortFields};
use crate::platform::request::RequestMeta;
use crate::platform::{ApiError, ApiResult};

const SORT: SortFields<staff::Column> = SortFields(&[
    ("email", staff::Column::Email),
    ("name", staff::Column::Name),
    ("created_at", staff::Column::CreatedAt),
]);

/// Lists staff accounts with their roles.
#[utoipa::path(get, path = "/staff", tag = "staff", params(ListParams, StaffFilter),
    responses((status = 200, body = Page<StaffView>)))]
pub async fn list_staff(
    State(state): State<AppState>,
    Query(list): Query<ListParams>,
    Query(filter): Query<StaffFilter>,
) -> ApiResult<axum::Json<Page<StaffView>>> {
    let db = state.db.reader();
    let page = list
        .spec(&SORT)?
        .fetch(db, store::staff_query(&filter), staff::Column::Id)
        .await?;
    let ids: Vec<i64> = page.items.iter().map(|s: &staff::Model| s.id).collect();
    let mut roles = store::roles_by_staff(db, &ids).await?;
    Ok(axum::Json(page.map(|s| {
        let held = roles.remove(&s.id).unwrap_or_default();
        StaffView::new(s, held)
    })))
}

#[utoipa::path(get, path = "/staff/{id}", tag = "staff",
    responses((status = 200, body = StaffView, headers(("ETag" = String)))))]
pub async fn get_staff(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Tagged<StaffView>> {
    let db = state.db.reader();
    let staff = store::find_staff(db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("staff", id))?;
    let view = service::staff_view(db, staff).await?;
    Ok(Tagged(view.version, view))
}

/// Creates a staff account; only superusers can create superusers.
#[utoipa::path(post, path = "/staff", tag = "staff", request_body = CreateStaff,
    responses((status = 201, body = StaffView)))]
pub async fn create_staff(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Json(body): Json<CreateStaff>,
) -> ApiResult<impl IntoResponse> {
    let actor = Actor::staff(&principal, &meta);
    let staff = service::create_staff(&state, &actor, body).await?;
    let location = format!("/api/v1/admin/staff/{}", staff.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Tagged(staff.version, staff),
    ))
}

/// Edits a staff account; `role_ids`, when given, replaces the assigned roles.
#[utoipa::path(patch, path = "/staff/{id}", tag = "staff", request_body = UpdateStaff,
    responses((status = 200, body = StaffView), (status = 409, description = "Stale version"),
        (status = 412, description = "If-Match does not match"), (status = 428, description = "No version given")))]
pub async fn update_staff(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
    if_match: IfMatch,
    Json(body): Json<UpdateStaff>,
) -> ApiResult<Tagged<StaffView>> {
    let expected = Expected::from(if_match, body.version)?;
    let actor = Actor::staff(&principal, &meta);
    let staff = service::update_staff(&state, &actor, id, expected, body).await?;
    Ok(Tagged(staff.version, staff))
}

#[utoipa::path(delete, path = "/staff/{id}", tag = "staff", responses((status = 204)))]
pub async fn delete_staff(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let actor = Actor::staff(&principal, &meta);
    service::delete_staff(&state, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
