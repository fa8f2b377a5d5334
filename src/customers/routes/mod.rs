//! HTTP routes of the customers domain.

mod profile;

use utoipa_axum::routes;

use crate::platform::routing::{Access, ApiRouter};

/// Routes under `/api/v1/admin`.
pub fn admin_router() -> ApiRouter {
    ApiRouter::new()
}

/// Routes under `/api/v1`.
pub fn storefront_router() -> ApiRouter {
    ApiRouter::new()
        .route(routes!(profile::get_profile), Access::Customer)
        .route(routes!(profile::update_profile), Access::Customer)
}
