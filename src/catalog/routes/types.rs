//! Product types and custom attribute definitions.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use crate::app::AppState;
use crate::catalog::attributes;
use crate::catalog::model::{
    AttributeFilter, AttributeView, CreateAttribute, CreateProductType, ProductTypeView,
    UpdateAttribute, UpdateProductType,
};
use crate::identity::guard::CurrentStaff;
use crate::identity::service::Actor;
use crate::platform::ApiResult;
use crate::platform::concurrency::{Expected, IfMatch, Tagged};
use crate::platform::extract::{self, Query};
use crate::platform::request::RequestMeta;

#[utoipa::path(get, path = "/product-types", tag = "product types",
    responses((status = 200, body = Vec<ProductTypeView>)))]
pub async fn list_product_types(
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<ProductTypeView>>> {
    Ok(Json(attributes::list_product_types(&state).await?))
}

#[utoipa::path(get, path = "/product-types/{id}", tag = "product types",
    responses((status = 200, body = ProductTypeView)))]
pub async fn get_product_type(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Tagged<ProductTypeView>> {
    let t = attributes::get_product_type(&state, id).await?;
    Ok(Tagged(t.version, t))
}

#[utoipa::path(post, path = "/product-types", tag = "product types", request_body = CreateProductType,
    responses((status = 201, body = ProductTypeView), (status = 409, description = "Name taken")))]
pub async fn create_product_type(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    extract::Json(body): extract::Json<CreateProductType>,
) -> ApiResult<impl IntoResponse> {
    let actor = Actor::staff(&principal, &meta);
    let t = attributes::create_product_type(&state, &actor, body).await?;
    let location = format!("/api/v1/admin/product-types/{}", t.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Tagged(t.version, t),
    ))
}

#[utoipa::path(patch, path = "/product-types/{id}", tag = "product types", request_body = UpdateProductType,
    responses((status = 200, body = ProductTypeView), (status = 409, description = "Stale version or name taken")))]
pub async fn update_product_type(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
    if_match: IfMatch,
    extract::Json(body): extract::Json<UpdateProductType>,
) -> ApiResult<Tagged<ProductTypeView>> {
    let expected = Expected::from(if_match, body.version)?;
    let actor = Actor::staff(&principal, &meta);
    let t = attributes::update_product_type(&state, &actor, id, expected, body).await?;
    Ok(Tagged(t.version, t))
}

/// Deletes a product type with its attribute definitions and their values.
#[utoipa::path(delete, path = "/product-types/{id}", tag = "product types", responses((status = 204)))]
pub async fn delete_product_type(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let actor = Actor::staff(&principal, &meta);
    attributes::delete_product_type(&state, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Attribute definitions, of one scope or product type.
#[utoipa::path(get, path = "/attributes", tag = "product types", params(AttributeFilter),
    responses((status = 200, body = Vec<AttributeView>)))]
pub async fn list_attributes(
    State(state): State<AppState>,
    Query(filter): Query<AttributeFilter>,
) -> ApiResult<Json<Vec<AttributeView>>> {
    Ok(Json(attributes::list_attributes(&state, &filter).await?))
}

/// Defines a custom attribute: of a product type (`product`, `sku_axis`, `review`) or of
/// every category, page or customer.
#[utoipa::path(post, path = "/attributes", tag = "product types", request_body = CreateAttribute,
    responses((status = 201, body = AttributeView), (status = 409, description = "Code taken")))]
pub async fn create_attribute(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    extract::Json(body): extract::Json<CreateAttribute>,
) -> ApiResult<impl IntoResponse> {
    let actor = Actor::staff(&principal, &meta);
    let a = attributes::create_attribute(&state, &actor, body).await?;
    Ok((StatusCode::CREATED, Tagged(a.version, a)))
}

#[utoipa::path(patch, path = "/attributes/{id}", tag = "product types", request_body = UpdateAttribute,
    responses((status = 200, body = AttributeView), (status = 409, description = "Stale version, or an option still in use")))]
pub async fn update_attribute(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
    if_match: IfMatch,
    extract::Json(body): extract::Json<UpdateAttribute>,
) -> ApiResult<Tagged<AttributeView>> {
    let expected = Expected::from(if_match, body.version)?;
    let actor = Actor::staff(&principal, &meta);
    let a = attributes::update_attribute(&state, &actor, id, expected, body).await?;
    Ok(Tagged(a.version, a))
}

#[utoipa::path(delete, path = "/attributes/{id}", tag = "product types",
    responses((status = 204), (status = 409, description = "Values still use it")))]
pub async fn delete_attribute(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let actor = Actor::staff(&principal, &meta);
    attributes::delete_attribute(&state, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
