//! HTTP routes of the orders domain.

mod admin;
mod storefront;

use utoipa_axum::routes;

use super::{ORDERS_FULFIL, ORDERS_READ, ORDERS_WRITE, RETURNS_READ, RETURNS_WRITE};
use crate::platform::routing::{Access, ApiRouter};

/// Routes under `/api/v1/admin`.
pub fn admin_router() -> ApiRouter {
    let read = Access::Permission(ORDERS_READ);
    let write = Access::Permission(ORDERS_WRITE);
    let fulfil = Access::Permission(ORDERS_FULFIL);
    ApiRouter::new()
        .route(routes!(admin::list_orders), read)
        .route(routes!(admin::get_order), read)
        .route(routes!(admin::cancel_order), write)
        .route(routes!(admin::lock_order), write)
        .route(routes!(admin::unlock_order), write)
        .route(routes!(admin::edit_order), write)
        .route(routes!(admin::split_order), write)
        .route(routes!(admin::complete_order), write)
        .route(routes!(admin::ready_for_picking), fulfil)
        .route(routes!(admin::create_shipment), fulfil)
        .route(routes!(admin::set_tracking), fulfil)
        .route(routes!(admin::ship), fulfil)
        .route(routes!(admin::create_picking_list), fulfil)
        .route(routes!(admin::get_picking_list), read)
        .route(routes!(admin::picking_list_pdf), read)
        .route(routes!(admin::packing_slip), read)
        .route(routes!(admin::label), read)
        .route(
            routes!(admin::list_returns),
            Access::Permission(RETURNS_READ),
        )
        .route(routes!(admin::get_return), Access::Permission(RETURNS_READ))
        .route(
            routes!(admin::approve_return),
            Access::Permission(RETURNS_WRITE),
        )
        .route(
            routes!(admin::reject_return),
            Access::Permission(RETURNS_WRITE),
        )
        .route(
            routes!(admin::receive_return),
            Access::Permission(RETURNS_WRITE),
        )
}

/// Routes under `/api/v1`.
pub fn storefront_router() -> ApiRouter {
    ApiRouter::new()
        .route(routes!(storefront::checkout), Access::Customer)
        .route(routes!(storefront::my_orders), Access::Customer)
        .route(routes!(storefront::my_order), Access::Customer)
        .route(routes!(storefront::cancel_my_order), Access::Customer)
        .route(routes!(storefront::confirm_receipt), Access::Customer)
        .route(routes!(storefront::request_return), Access::Customer)
        .route(routes!(storefront::my_returns), Access::Customer)
}
