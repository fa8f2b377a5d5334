//! Tables of the identity domain.

pub mod account_token;
pub mod oauth_identity;
pub mod refresh_token;
pub mod role;
pub mod role_permission;
pub mod security_log;
pub mod staff;
pub mod staff_role;
