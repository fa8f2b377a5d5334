//! HTTP routes of the content domain.

mod ads;
mod directories;
mod menus;
mod pages;
mod storefront;

use utoipa_axum::routes;

use super::{ADS_READ, ADS_WRITE, MENUS_READ, MENUS_WRITE, PAGES_READ, PAGES_WRITE};
use crate::platform::routing::{Access, ApiRouter};

/// Routes under `/api/v1/admin`; directories share the pages' permissions.
pub fn admin_router() -> ApiRouter {
    use Access::Permission as P;
    ApiRouter::new()
        .route(routes!(directories::list_directories), P(PAGES_READ))
        .route(routes!(directories::get_directory), P(PAGES_READ))
        .route(routes!(directories::create_directory), P(PAGES_WRITE))
        .route(routes!(directories::update_directory), P(PAGES_WRITE))
        .route(routes!(directories::delete_directory), P(PAGES_WRITE))
        .route(routes!(pages::list_pages), P(PAGES_READ))
        .route(routes!(pages::get_page), P(PAGES_READ))
        .route(routes!(pages::create_page), P(PAGES_WRITE))
        .route(routes!(pages::update_page), P(PAGES_WRITE))
        .route(routes!(pages::delete_page), P(PAGES_WRITE))
        .route(routes!(pages::get_page_attributes), P(PAGES_READ))
        .route(routes!(pages::set_page_attributes), P(PAGES_WRITE))
        .route(routes!(ads::list_ads), P(ADS_READ))
        .route(routes!(ads::get_ad), P(ADS_READ))
        .route(routes!(ads::create_ad), P(ADS_WRITE))
        .route(routes!(ads::update_ad), P(ADS_WRITE))
        .route(routes!(ads::delete_ad), P(ADS_WRITE))
        .upload_route(routes!(ads::upload_ad_image), P(ADS_WRITE))
        .route(routes!(menus::list_menus), P(MENUS_READ))
        .route(routes!(menus::get_menu), P(MENUS_READ))
        .route(routes!(menus::create_menu), P(MENUS_WRITE))
        .route(routes!(menus::update_menu), P(MENUS_WRITE))
        .route(routes!(menus::delete_menu), P(MENUS_WRITE))
        .route(routes!(menus::replace_menu_items), P(MENUS_WRITE))
}

/// Routes under `/api/v1`.
pub fn storefront_router() -> ApiRouter {
    ApiRouter::new()
        .route(routes!(storefront::get_page_by_slug), Access::Public)
        .route(routes!(storefront::get_content_tree), Access::Public)
        .route(routes!(storefront::list_showing_ads), Access::Public)
        .route(routes!(storefront::get_menu_by_code), Access::Public)
}
