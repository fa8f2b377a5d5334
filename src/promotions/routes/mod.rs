//! HTTP routes of the promotions domain.

mod gift_certificates;

use utoipa_axum::routes;

use super::gift_certificates::{GIFT_CERTIFICATES_READ, GIFT_CERTIFICATES_WRITE};
use crate::platform::routing::{Access, ApiRouter};

/// Routes under `/api/v1/admin`.
pub fn admin_router() -> ApiRouter {
    let read = Access::Permission(GIFT_CERTIFICATES_READ);
    let write = Access::Permission(GIFT_CERTIFICATES_WRITE);
    ApiRouter::new()
        .route(routes!(gift_certificates::list_gift_certificates), read)
        .route(routes!(gift_certificates::get_gift_certificate), read)
        .route(
            routes!(gift_certificates::create_gift_certificate_batch),
            write,
        )
        .route(routes!(gift_certificates::update_gift_certificate), write)
        .route(routes!(gift_certificates::send_gift_certificate), write)
        .route(
            routes!(gift_certificates::send_gift_certificate_batch),
            write,
        )
        .route(routes!(gift_certificates::adjust_gift_certificate), write)
}

/// Routes under `/api/v1`.
pub fn storefront_router() -> ApiRouter {
    ApiRouter::new().route(
        routes!(gift_certificates::get_my_gift_certificate),
        Access::Customer,
    )
}
