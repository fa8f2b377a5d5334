use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use crate::app::AppState;
use crate::catalog::model::{
    AttributeValues, CategoryDetail, CategoryNode, CreateCategory, StorefrontCategory,
    UpdateCategory,
};
use crate::catalog::service;
use crate::identity::guard::CurrentStaff;
use crate::identity::service::Actor;
use crate::platform::ApiResult;
use crate::platform::concurrency::{Expected, IfMatch, Tagged};
use crate::platform::extract;
use crate::platform::request::RequestMeta;

/// The whole category tree, hidden categories included.
#[utoipa::path(get, path = "/categories", tag = "categories",
    responses((status = 200, body = Vec<CategoryNode>)))]
pub async fn list_category_tree(
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<CategoryNode>>> {
    Ok(Json(
        service::category_tree(state.db.reader(), false).await?,
    ))
}

/// One category with its breadcrumbs and children.
#[utoipa::path(get, path = "/categories/{id}", tag = "categories",
    responses((status = 200, body = CategoryDetail)))]
pub async fn get_category(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Tagged<CategoryDetail>> {
    let category = service::get_category(&state, id).await?;
    Ok(Tagged(category.category.version, category))
}

#[utoipa::path(post, path = "/categories", tag = "categories", request_body = CreateCategory,
    responses((status = 201, body = CategoryDetail), (status = 409, description = "Slug taken")))]
pub async fn create_category(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    extract::Json(body): extract::Json<CreateCategory>,
) -> ApiResult<impl IntoResponse> {
    let actor = Actor::staff(&principal, &meta);
    let category = service::create_category(&state, &actor, body).await?;
    let location = format!("/api/v1/admin/categories/{}", category.category.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Tagged(category.category.version, category),
    ))
}

/// Edits a category; a new `parent_id` moves its whole subtree (never under itself).
#[utoipa::path(patch, path = "/categories/{id}", tag = "categories", request_body = UpdateCategory,
    responses((status = 200, body = CategoryDetail), (status = 409, description = "Stale version or slug taken"),
        (status = 422, description = "Invalid field, or a move under its own subtree")))]
pub async fn update_category(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
    if_match: IfMatch,
    extract::Json(body): extract::Json<UpdateCategory>,
) -> ApiResult<Tagged<CategoryDetail>> {
    let expected = Expected::from(if_match, body.version)?;
    let actor = Actor::staff(&principal, &meta);
    let category = service::update_category(&state, &actor, id, expected, body).await?;
    Ok(Tagged(category.category.version, category))
}

/// Deletes a category that has no subcategories.
#[utoipa::path(delete, path = "/categories/{id}", tag = "categories",
    responses((status = 204), (status = 409, description = "It has subcategories")))]
pub async fn delete_category(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let actor = Actor::staff(&principal, &meta);
    service::delete_category(&state, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The visible category tree, for the storefront's navigation.
#[utoipa::path(get, path = "/categories", tag = "storefront",
    operation_id = "storefront_list_categories",
    responses((status = 200, body = Vec<CategoryNode>)))]
pub async fn storefront_tree(State(state): State<AppState>) -> ApiResult<impl IntoResponse> {
    let json = service::storefront_tree_json(&state).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], json))
}

/// A visible category by slug with its breadcrumbs and visible children.
#[utoipa::path(get, path = "/categories/{slug}", tag = "storefront",
    operation_id = "storefront_get_category",
    responses((status = 200, body = StorefrontCategory)))]
pub async fn storefront_category(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> ApiResult<Json<StorefrontCategory>> {
    Ok(Json(service::storefront_category(&state, &slug).await?))
}

/// Replaces the category's custom attribute values, e.g. `{"season": "summer"}`; each is
/// checked against its definition (422 naming `attributes.<code>`).
#[utoipa::path(put, path = "/categories/{id}/attributes", tag = "categories",
    request_body = Object,
    responses((status = 200, body = CategoryDetail)))]
pub async fn set_category_attributes(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
    extract::Json(values): extract::Json<AttributeValues>,
) -> ApiResult<Tagged<CategoryDetail>> {
    let actor = Actor::staff(&principal, &meta);
    let category = service::set_category_attributes(&state, &actor, id, values).await?;
    Ok(Tagged(category.category.version, category))
}
