//! HTTP routes of the identity domain.

mod account;
mod auth;
mod oauth;
mod permissions;
mod roles;
mod security_log;
mod staff;
pub mod tokens;

use utoipa_axum::routes;

use super::{
    ROLES_READ, ROLES_WRITE, SECURITY_LOG_READ, SIGNING_KEYS_WRITE, STAFF_READ, STAFF_WRITE,
};
use crate::platform::routing::{Access, ApiRouter};

/// Routes under `/api/v1/admin`.
pub fn admin_router() -> ApiRouter {
    ApiRouter::new()
        .route(routes!(auth::login_staff), Access::Public)
        .route(routes!(tokens::issue_staff_token), Access::Public)
        .route(
            routes!(tokens::rotate_signing_key),
            Access::Permission(SIGNING_KEYS_WRITE),
        )
        .route(routes!(auth::logout_staff), Access::Staff)
        .route(routes!(auth::get_csrf_token), Access::Staff)
        .route(routes!(auth::get_me), Access::Staff)
        .route(
            routes!(permissions::list_permissions),
            Access::Permission(ROLES_READ),
        )
        .route(routes!(roles::list_roles), Access::Permission(ROLES_READ))
        .route(routes!(roles::get_role), Access::Permission(ROLES_READ))
        .route(routes!(roles::create_role), Access::Permission(ROLES_WRITE))
        .route(routes!(roles::update_role), Access::Permission(ROLES_WRITE))
        .route(routes!(roles::delete_role), Access::Permission(ROLES_WRITE))
        .route(routes!(staff::list_staff), Access::Permission(STAFF_READ))
        .route(routes!(staff::get_staff), Access::Permission(STAFF_READ))
        .route(
            routes!(staff::create_staff),
            Access::Permission(STAFF_WRITE),
        )
        .route(
            routes!(staff::update_staff),
            Access::Permission(STAFF_WRITE),
        )
        .route(
            routes!(staff::delete_staff),
            Access::Permission(STAFF_WRITE),
        )
        .route(
            routes!(security_log::list_security_log),
            Access::Permission(SECURITY_LOG_READ),
        )
}

/// Routes under `/api/v1`: customer sign-up and sign-in, and the token endpoints.
pub fn storefront_router() -> ApiRouter {
    ApiRouter::new()
        .route(routes!(account::register_customer), Access::Public)
        .route(routes!(account::verify_email), Access::Public)
        .route(routes!(account::resend_verification), Access::Public)
        .route(routes!(account::login_customer), Access::Public)
        .route(routes!(account::logout_customer), Access::Customer)
        .route(routes!(account::change_password), Access::Customer)
        .route(routes!(account::request_password_reset), Access::Public)
        .route(routes!(account::confirm_password_reset), Access::Public)
        .route(routes!(tokens::issue_customer_token), Access::Public)
        .route(routes!(tokens::refresh_token), Access::Public)
        .route(routes!(tokens::revoke_token), Access::Public)
        .route(routes!(oauth::list_providers), Access::Public)
        .route(routes!(oauth::start_oauth_login), Access::Public)
        .route(routes!(oauth::complete_oauth_login), Access::Public)
        .route(routes!(oauth::list_bindings), Access::Customer)
        .route(
            routes!(oauth::start_binding, oauth::delete_binding),
            Access::Customer,
        )
}
