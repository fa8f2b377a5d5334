//! HTTP routes of the customers domain.

mod addresses;
mod customers;
mod feedback;
mod memberships;
mod profile;

use utoipa_axum::routes;

use super::{
    CUSTOMERS_READ, CUSTOMERS_WRITE, FEEDBACK_READ, FEEDBACK_WRITE, MEMBERSHIPS_READ,
    MEMBERSHIPS_WRITE,
};
use crate::platform::routing::{Access, ApiRouter};

/// Routes under `/api/v1/admin`.
pub fn admin_router() -> ApiRouter {
    use Access::Permission as P;
    ApiRouter::new()
        .route(routes!(customers::list_customers), P(CUSTOMERS_READ))
        .route(routes!(customers::get_customer), P(CUSTOMERS_READ))
        .route(routes!(customers::create_customer), P(CUSTOMERS_WRITE))
        .route(routes!(customers::update_customer), P(CUSTOMERS_WRITE))
        .route(routes!(customers::delete_customer), P(CUSTOMERS_WRITE))
        .route(
            routes!(customers::reset_customer_password),
            P(CUSTOMERS_WRITE),
        )
        .route(routes!(customers::email_customer), P(CUSTOMERS_WRITE))
        .route(
            routes!(customers::set_customer_attributes),
            P(CUSTOMERS_WRITE),
        )
        .route(routes!(customers::grant_membership), P(MEMBERSHIPS_WRITE))
        .route(routes!(customers::revoke_membership), P(MEMBERSHIPS_WRITE))
        .route(
            routes!(customers::list_customer_memberships),
            P(MEMBERSHIPS_READ),
        )
        .route(routes!(feedback::list_feedback), P(FEEDBACK_READ))
        .route(routes!(feedback::get_feedback), P(FEEDBACK_READ))
        .route(routes!(feedback::reply_feedback), P(FEEDBACK_WRITE))
        .route(routes!(feedback::delete_feedback), P(FEEDBACK_WRITE))
        .route(
            routes!(memberships::list_membership_levels),
            P(MEMBERSHIPS_READ),
        )
        .route(
            routes!(memberships::get_membership_level),
            P(MEMBERSHIPS_READ),
        )
        .route(
            routes!(memberships::create_membership_level),
            P(MEMBERSHIPS_WRITE),
        )
        .route(
            routes!(memberships::update_membership_level),
            P(MEMBERSHIPS_WRITE),
        )
        .route(
            routes!(memberships::delete_membership_level),
            P(MEMBERSHIPS_WRITE),
        )
}

/// Routes under `/api/v1`.
pub fn storefront_router() -> ApiRouter {
    ApiRouter::new()
        .route(routes!(profile::get_profile), Access::Customer)
        .route(routes!(profile::update_profile), Access::Customer)
        .route(routes!(addresses::list_my_addresses), Access::Customer)
        .route(routes!(addresses::get_my_address), Access::Customer)
        .route(routes!(addresses::create_my_address), Access::Customer)
        .route(routes!(addresses::update_my_address), Access::Customer)
        .route(routes!(addresses::delete_my_address), Access::Customer)
        .route(routes!(feedback::submit_feedback), Access::Customer)
        .route(routes!(feedback::list_my_feedback), Access::Customer)
        .route(routes!(feedback::get_my_feedback), Access::Customer)
        .route(routes!(memberships::get_my_membership), Access::Customer)
}
