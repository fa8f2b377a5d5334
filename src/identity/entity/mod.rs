//! Tables of the identity domain.

pub mod role;
pub mod role_permission;
pub mod security_log;
pub mod staff;
pub mod staff_role;
