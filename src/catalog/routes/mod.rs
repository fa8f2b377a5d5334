//! HTTP routes of the catalog domain.

mod brands;
mod categories;
mod types;

use utoipa_axum::routes;

use super::{
    BRANDS_READ, BRANDS_WRITE, CATEGORIES_READ, CATEGORIES_WRITE, TYPES_READ, TYPES_WRITE,
};
use crate::platform::routing::{Access, ApiRouter};

/// Routes under `/api/v1/admin`.
pub fn admin_router() -> ApiRouter {
    let read = Access::Permission(CATEGORIES_READ);
    let write = Access::Permission(CATEGORIES_WRITE);
    ApiRouter::new()
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
}

/// Routes under `/api/v1`.
pub fn storefront_router() -> ApiRouter {
    ApiRouter::new()
        .route(routes!(categories::storefront_tree), Access::Public)
        .route(routes!(categories::storefront_category), Access::Public)
        .route(routes!(brands::storefront_brands), Access::Public)
        .route(routes!(brands::storefront_brand), Access::Public)
}
