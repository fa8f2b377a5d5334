//! Membership levels (staff) and the customer's own membership.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use crate::app::AppState;
use crate::customers::model::{CreateLevel, LevelView, MyMembership, UpdateLevel};
use crate::customers::service::memberships;
use crate::identity::guard::{CurrentCustomer, CurrentStaff};
use crate::identity::service::Actor;
use crate::platform::ApiResult;
use crate::platform::concurrency::{Expected, IfMatch, Tagged};
use crate::platform::extract::{Json, Query};
use crate::platform::list::{ListParams, Page};
use crate::platform::request::RequestMeta;

#[utoipa::path(get, path = "/membership-levels", tag = "memberships", params(ListParams),
    responses((status = 200, body = Page<LevelView>)))]
pub async fn list_membership_levels(
    State(state): State<AppState>,
    Query(list): Query<ListParams>,
) -> ApiResult<axum::Json<Page<LevelView>>> {
    Ok(axum::Json(memberships::list_levels(&state, &list).await?))
}

#[utoipa::path(get, path = "/membership-levels/{id}", tag = "memberships",
    responses((status = 200, body = LevelView, headers(("ETag" = String)))))]
pub async fn get_membership_level(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Tagged<LevelView>> {
    let level = memberships::get_level(&state, id).await?;
    Ok(Tagged(level.version, level))
}

#[utoipa::path(post, path = "/membership-levels", tag = "memberships", request_body = CreateLevel,
    responses((status = 201, body = LevelView), (status = 409, description = "Name taken")))]
pub async fn create_membership_level(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Json(body): Json<CreateLevel>,
) -> ApiResult<impl IntoResponse> {
    let actor = Actor::staff(&principal, &meta);
    let level = memberships::create_level(&state, &actor, body).await?;
    let location = format!("/api/v1/admin/membership-levels/{}", level.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Tagged(level.version, level),
    ))
}

#[utoipa::path(patch, path = "/membership-levels/{id}", tag = "memberships",
    request_body = UpdateLevel,
    responses((status = 200, body = LevelView), (status = 409, description = "Stale version or name taken"),
        (status = 412, description = "If-Match does not match"), (status = 428, description = "No version given")))]
pub async fn update_membership_level(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
    if_match: IfMatch,
    Json(body): Json<UpdateLevel>,
) -> ApiResult<Tagged<LevelView>> {
    let expected = Expected::from(if_match, body.version)?;
    let actor = Actor::staff(&principal, &meta);
    let level = memberships::update_level(&state, &actor, id, expected, body).await?;
    Ok(Tagged(level.version, level))
}

/// Deletes a level nobody holds or held (409 otherwise).
#[utoipa::path(delete, path = "/membership-levels/{id}", tag = "memberships",
    responses((status = 204), (status = 409, description = "The level is in use")))]
pub async fn delete_membership_level(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let actor = Actor::staff(&principal, &meta);
    memberships::delete_level(&state, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The signed-in customer's membership and its benefits, or `null` when they hold none
/// (a normal state for a storefront page, so not an error).
#[utoipa::path(get, path = "/me/membership", tag = "account",
    responses((status = 200, body = Option<MyMembership>)))]
pub async fn get_my_membership(
    State(state): State<AppState>,
    CurrentCustomer(customer): CurrentCustomer,
) -> ApiResult<axum::Json<Option<MyMembership>>> {
    Ok(axum::Json(
        memberships::my_membership(&state, customer.customer_id).await?,
    ))
}
