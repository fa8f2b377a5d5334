//! HTTP routes of the payments domain.

mod admin;
mod gateway;
mod settlement;
mod storefront;

use utoipa_axum::routes;

use super::{PAYMENTS_READ, PAYMENTS_REFUND};
use crate::orders::ORDERS_PAYMENTS;
use crate::platform::routing::{Access, ApiRouter};

/// Routes under `/api/v1/admin`.
pub fn admin_router() -> ApiRouter {
    let read = Access::Permission(PAYMENTS_READ);
    let refund = Access::Permission(PAYMENTS_REFUND);
    ApiRouter::new()
        .route(routes!(admin::list_payments), read)
        .route(routes!(admin::get_payment), read)
        .route(routes!(admin::query_payment), refund)
        .route(routes!(admin::list_notifications), read)
        .route(routes!(admin::list_refunds), read)
        .route(routes!(admin::refund_order), refund)
        .route(routes!(admin::execute_refund), refund)
        .route(
            routes!(admin::record_manual_payment),
            Access::Permission(ORDERS_PAYMENTS),
        )
        .merge(settlement::router())
}

/// Routes under `/api/v1`: the customer's, and the gateways' callbacks.
pub fn storefront_router() -> ApiRouter {
    ApiRouter::new()
        .route(routes!(storefront::start_payment), Access::Customer)
        .route(routes!(storefront::order_payments), Access::Customer)
        .route(routes!(gateway::notify), Access::Public)
        .route(routes!(gateway::browser_return), Access::Public)
}
