//! HTTP routes of the catalog domain.

mod brands;
mod categories;
mod products;
mod recommendations;
mod reviews;
mod types;

use utoipa_axum::routes;

use super::{
    BRANDS_READ, BRANDS_WRITE, CATEGORIES_READ, CATEGORIES_WRITE, PRODUCTS_READ, PRODUCTS_WRITE,
    REVIEWS_READ, REVIEWS_WRITE, TYPES_READ, TYPES_WRITE,
};
use crate::platform::routing::{Access, ApiRouter};

/// Routes under `/api/v1/admin`.
pub fn admin_router() -> ApiRouter {
    let read = Access::Permission(CATEGORIES_READ);
    let write = Access::Permission(CATEGORIES_WRITE);
    let products_read = Access::Permission(PRODUCTS_READ);
    let products_write = Access::Permission(PRODUCTS_WRITE);
    ApiRouter::new()
        .route(routes!(products::list_products), products_read)
        .route(routes!(products::get_product), products_read)
        .route(routes!(products::list_skus), products_read)
        .route(routes!(products::get_sku), products_read)
        .route(routes!(products::get_recommendations), products_read)
        .route(routes!(products::create_product), products_write)
        .route(routes!(products::update_product), products_write)
        .route(routes!(products::delete_product), products_write)
        .route(routes!(products::restore_product), products_write)
        .route(routes!(products::copy_product), products_write)
        .route(routes!(products::batch_edit_products), products_write)
        .route(routes!(products::create_sku), products_write)
        .route(routes!(products::generate_skus), products_write)
        .route(routes!(products::update_sku), products_write)
        .route(routes!(products::delete_sku), products_write)
        .route(routes!(products::set_recommendations), products_write)
        .route(
            routes!(recommendations::get_pinned_recommendations),
            products_read,
        )
        .route(
            routes!(recommendations::set_pinned_recommendations),
            products_write,
        )
        .upload_route(routes!(products::upload_product_media), products_write)
        .route(routes!(products::update_product_media), products_write)
        .route(routes!(products::delete_product_media), products_write)
        .route(
            routes!(reviews::list_reviews),
            Access::Permission(REVIEWS_READ),
        )
        .route(
            routes!(reviews::get_review),
            Access::Permission(REVIEWS_READ),
        )
        .route(
            routes!(reviews::reply_to_review),
            Access::Permission(REVIEWS_WRITE),
        )
        .route(
            routes!(reviews::delete_review),
            Access::Permission(REVIEWS_WRITE),
        )
        .route(routes!(categories::list_category_tree), read)
        .route(routes!(categories::get_category), read)
        .route(routes!(categories::create_category), write)
        .route(routes!(categories::update_category), write)
        .route(routes!(categories::delete_category), write)
        .route(routes!(categories::set_category_attributes), write)
        .route(
            routes!(types::list_product_types),
            Access::Permission(TYPES_READ),
        )
        .route(
            routes!(types::get_product_type),
            Access::Permission(TYPES_READ),
        )
        .route(
            routes!(types::list_attributes),
            Access::Permission(TYPES_READ),
        )
        .route(
            routes!(types::create_product_type),
            Access::Permission(TYPES_WRITE),
        )
        .route(
            routes!(types::update_product_type),
            Access::Permission(TYPES_WRITE),
        )
        .route(
            routes!(types::delete_product_type),
            Access::Permission(TYPES_WRITE),
        )
        .route(
            routes!(types::create_attribute),
            Access::Permission(TYPES_WRITE),
        )
        .route(
            routes!(types::update_attribute),
            Access::Permission(TYPES_WRITE),
        )
        .route(
            routes!(types::delete_attribute),
            Access::Permission(TYPES_WRITE),
        )
        .route(
            routes!(brands::list_brands),
            Access::Permission(BRANDS_READ),
        )
        .route(routes!(brands::get_brand), Access::Permission(BRANDS_READ))
        .route(
            routes!(brands::create_brand),
            Access::Permission(BRANDS_WRITE),
        )
        .route(
            routes!(brands::update_brand),
            Access::Permission(BRANDS_WRITE),
        )
        .route(
            routes!(brands::delete_brand),
            Access::Permission(BRANDS_WRITE),
        )
        .upload_route(
            routes!(brands::upload_brand_logo),
            Access::Permission(BRANDS_WRITE),
        )
}

/// Routes under `/api/v1`.
pub fn storefront_router() -> ApiRouter {
    ApiRouter::new()
        .route(routes!(categories::storefront_tree), Access::Public)
        .route(routes!(categories::storefront_category), Access::Public)
        .route(
            routes!(products::storefront_recommendations),
            Access::Public,
        )
        .route(routes!(products::storefront_products), Access::Public)
        .route(routes!(products::storefront_product), Access::Public)
        .route(
            routes!(recommendations::storefront_product_recommendations),
            Access::Public,
        )
        .route(routes!(brands::storefront_brands), Access::Public)
        .route(routes!(brands::storefront_brand), Access::Public)
        .route(routes!(reviews::list_product_reviews), Access::Public)
        .route(routes!(reviews::post_review), Access::Customer)
        .route(routes!(reviews::get_my_review), Access::Customer)
        .route(routes!(reviews::delete_my_review), Access::Customer)
}
