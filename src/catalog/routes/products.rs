use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use crate::app::AppState;
use crate::catalog::products::media::{self, MediaPlacement, UpdateMedia};
use crate::catalog::products::model::MediaView;
use crate::catalog::products::model::{
    BatchEdit, BatchResult, CreateProduct, GenerateSkus, GeneratedSkus, ProductCard, ProductFilter,
    ProductSummary, ProductView, SetRecommendations, SkuInput, SkuView, StorefrontProduct,
    StorefrontProductQuery, UpdateProduct, UpdateSku,
};
use crate::catalog::products::{self as service, skus, storefront};
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

fn created(view: ProductView) -> impl IntoResponse {
    let location = format!("/api/v1/admin/products/{}", view.id);
    (
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Tagged(view.version, view),
    )
}

/// Products, live ones by default; `deleted=true` lists the soft-deleted.
#[utoipa::path(get, path = "/products", tag = "products", params(ListParams, ProductFilter),
    responses((status = 200, body = Page<ProductSummary>)))]
pub async fn list_products(
    State(state): State<AppState>,
    Query(list): Query<ListParams>,
    Query(filter): Query<ProductFilter>,
) -> ApiResult<Json<Page<ProductSummary>>> {
    Ok(Json(service::list_products(&state, &list, &filter).await?))
}

/// A product with its SKUs, media, categories and attribute values.
#[utoipa::path(get, path = "/products/{id}", tag = "products",
    responses((status = 200, body = ProductView, headers(("ETag" = String)))))]
pub async fn get_product(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Tagged<ProductView>> {
    let view = service::get_product(&state, id).await?;
    Ok(Tagged(view.version, view))
}

/// Creates a product, with its SKUs when given; the description is sanitised.
#[utoipa::path(post, path = "/products", tag = "products", request_body = CreateProduct,
    responses((status = 201, body = ProductView), (status = 409, description = "Slug or SKU code taken")))]
pub async fn create_product(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    extract::Json(body): extract::Json<CreateProduct>,
) -> ApiResult<impl IntoResponse> {
    let actor = Actor::staff(&principal, &meta);
    Ok(created(
        service::create_product(&state, &actor, body).await?,
    ))
}

/// Edits a product (`version` or `If-Match`); `category_ids` and `attributes` replace.
#[utoipa::path(patch, path = "/products/{id}", tag = "products", request_body = UpdateProduct,
    responses((status = 200, body = ProductView), (status = 409, description = "Stale version or slug taken")))]
pub async fn update_product(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
    if_match: IfMatch,
    extract::Json(body): extract::Json<UpdateProduct>,
) -> ApiResult<Tagged<ProductView>> {
    let expected = Expected::from(if_match, body.version)?;
    let actor = Actor::staff(&principal, &meta);
    let view = service::update_product(&state, &actor, id, expected, body).await?;
    Ok(Tagged(view.version, view))
}

/// Soft-deletes a product: it leaves the storefront and frees its slug.
#[utoipa::path(delete, path = "/products/{id}", tag = "products",
    responses((status = 204), (status = 409, description = "A bundle contains it")))]
pub async fn delete_product(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let actor = Actor::staff(&principal, &meta);
    service::delete_product(&state, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Restores a soft-deleted product.
#[utoipa::path(post, path = "/products/{id}/restore", tag = "products",
    responses((status = 200, body = ProductView), (status = 409, description = "Not deleted, or its slug was taken")))]
pub async fn restore_product(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
) -> ApiResult<Tagged<ProductView>> {
    let actor = Actor::staff(&principal, &meta);
    let view = service::restore_product(&state, &actor, id).await?;
    Ok(Tagged(view.version, view))
}

/// Copies a product into a new draft (`<slug>-copy`, SKU codes `<code>-COPY`, no stock).
#[utoipa::path(post, path = "/products/{id}/copy", tag = "products",
    responses((status = 201, body = ProductView)))]
pub async fn copy_product(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
) -> ApiResult<impl IntoResponse> {
    let actor = Actor::staff(&principal, &meta);
    Ok(created(service::copy_product(&state, &actor, id).await?))
}

/// Changes status, categories or prices of many products in one transaction.
#[utoipa::path(post, path = "/products/batch", tag = "products", request_body = BatchEdit,
    responses((status = 200, body = BatchResult), (status = 422, description = "An id or change is invalid; nothing changed")))]
pub async fn batch_edit_products(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    extract::Json(body): extract::Json<BatchEdit>,
) -> ApiResult<Json<BatchResult>> {
    let actor = Actor::staff(&principal, &meta);
    Ok(Json(service::batch_edit(&state, &actor, body).await?))
}

#[utoipa::path(get, path = "/products/{id}/skus", tag = "products",
    responses((status = 200, body = Vec<SkuView>)))]
pub async fn list_skus(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Vec<SkuView>>> {
    Ok(Json(skus::list_skus(&state, id).await?))
}

/// Adds a SKU; a bundle's SKU names its parts.
#[utoipa::path(post, path = "/products/{id}/skus", tag = "products", request_body = SkuInput,
    responses((status = 201, body = SkuView), (status = 409, description = "Code or axis combination taken")))]
pub async fn create_sku(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
    extract::Json(body): extract::Json<SkuInput>,
) -> ApiResult<impl IntoResponse> {
    let actor = Actor::staff(&principal, &meta);
    let sku = skus::create_sku(&state, &actor, id, body).await?;
    Ok((StatusCode::CREATED, Tagged(sku.version, sku)))
}

/// Creates the SKUs missing among the combinations of the type's axes.
#[utoipa::path(post, path = "/products/{id}/skus/generate", tag = "products",
    request_body = GenerateSkus, responses((status = 200, body = GeneratedSkus)))]
pub async fn generate_skus(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
    extract::Json(body): extract::Json<GenerateSkus>,
) -> ApiResult<Json<GeneratedSkus>> {
    let actor = Actor::staff(&principal, &meta);
    Ok(Json(skus::generate_skus(&state, &actor, id, body).await?))
}

#[utoipa::path(get, path = "/skus/{id}", tag = "products",
    responses((status = 200, body = SkuView, headers(("ETag" = String)))))]
pub async fn get_sku(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Tagged<SkuView>> {
    let sku = skus::get_sku(&state, id).await?;
    Ok(Tagged(sku.version, sku))
}

#[utoipa::path(patch, path = "/skus/{id}", tag = "products", request_body = UpdateSku,
    responses((status = 200, body = SkuView)))]
pub async fn update_sku(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
    if_match: IfMatch,
    extract::Json(body): extract::Json<UpdateSku>,
) -> ApiResult<Tagged<SkuView>> {
    let expected = Expected::from(if_match, body.version)?;
    let actor = Actor::staff(&principal, &meta);
    let sku = skus::update_sku(&state, &actor, id, expected, body).await?;
    Ok(Tagged(sku.version, sku))
}

#[utoipa::path(delete, path = "/skus/{id}", tag = "products",
    responses((status = 204), (status = 409, description = "The last active SKU of a listed product, or a bundle part")))]
pub async fn delete_sku(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let actor = Actor::staff(&principal, &meta);
    skus::delete_sku(&state, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The products a category recommends on its page.
#[utoipa::path(get, path = "/categories/{id}/recommendations", tag = "categories",
    responses((status = 200, body = Vec<ProductSummary>)))]
pub async fn get_recommendations(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Vec<ProductSummary>>> {
    Ok(Json(service::recommendations(&state, id).await?))
}

/// Replaces the products a category recommends, in order.
#[utoipa::path(put, path = "/categories/{id}/recommendations", tag = "categories",
    request_body = SetRecommendations, responses((status = 200, body = Vec<ProductSummary>)))]
pub async fn set_recommendations(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
    extract::Json(body): extract::Json<SetRecommendations>,
) -> ApiResult<Json<Vec<ProductSummary>>> {
    let actor = Actor::staff(&principal, &meta);
    Ok(Json(
        service::set_recommendations(&state, &actor, id, body).await?,
    ))
}

/// Listed products inside their window, filtered, sorted and searched.
#[utoipa::path(get, path = "/products", tag = "storefront",
    operation_id = "storefront_list_products", params(StorefrontProductQuery),
    responses((status = 200, body = Page<ProductCard>)))]
pub async fn storefront_products(
    State(state): State<AppState>,
    Query(query): Query<StorefrontProductQuery>,
) -> ApiResult<impl IntoResponse> {
    let json = storefront::list_json(&state, &query).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], json))
}

/// A product page: SKUs, media, attributes, breadcrumbs and rating summary.
#[utoipa::path(get, path = "/products/{slug}", tag = "storefront",
    operation_id = "storefront_get_product",
    responses((status = 200, body = StorefrontProduct), (status = 404, description = "Not on sale now")))]
pub async fn storefront_product(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let json = storefront::product_page(&state, &slug).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], json))
}

/// The visible products a visible category recommends.
#[utoipa::path(get, path = "/categories/{slug}/recommendations", tag = "storefront",
    operation_id = "storefront_category_recommendations",
    responses((status = 200, body = Vec<ProductCard>)))]
pub async fn storefront_recommendations(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> ApiResult<Json<Vec<ProductCard>>> {
    Ok(Json(storefront::recommended(&state, &slug).await?))
}

/// Adds an image or video to the product's gallery (multipart field `file`); `alt` and
/// `sort_order` come as query parameters.
#[utoipa::path(post, path = "/products/{id}/media", tag = "products", params(MediaPlacement),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 201, body = MediaView), (status = 413, description = "Too large"),
        (status = 415, description = "Not an accepted image or video type")))]
pub async fn upload_product_media(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
    Query(placement): Query<MediaPlacement>,
    MultipartForm(mut form): MultipartForm,
) -> ApiResult<impl IntoResponse> {
    media::check_room(&state, id, &placement).await?;
    let stored = state
        .media
        .upload(&mut form, "file", MediaKindFilter::Any)
        .await?;
    let actor = Actor::staff(&principal, &meta);
    let view = media::add_media(&state, &actor, id, stored, placement).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Changes an image's alt text or gallery position.
#[utoipa::path(patch, path = "/products/{id}/media/{media_id}", tag = "products",
    request_body = UpdateMedia, responses((status = 200, body = MediaView)))]
pub async fn update_product_media(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path((id, media_id)): Path<(i64, i64)>,
    if_match: IfMatch,
    extract::Json(body): extract::Json<UpdateMedia>,
) -> ApiResult<Json<MediaView>> {
    let expected = Expected::from(if_match, body.version)?;
    let actor = Actor::staff(&principal, &meta);
    Ok(Json(
        media::update_media(&state, &actor, id, media_id, expected, body).await?,
    ))
}

#[utoipa::path(delete, path = "/products/{id}/media/{media_id}", tag = "products",
    responses((status = 204)))]
pub async fn delete_product_media(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path((id, media_id)): Path<(i64, i64)>,
) -> ApiResult<StatusCode> {
    let actor = Actor::staff(&principal, &meta);
    media::delete_media(&state, &actor, id, media_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
