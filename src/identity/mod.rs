//! Identity: who is signing in. Staff and customer sessions, access and refresh tokens,
//! third-party login, roles and permissions, the security log.

pub mod accounts;
pub mod entity;
pub mod guard;
pub mod keys;
pub mod model;
pub mod oauth;
pub mod password;
pub mod routes;
pub mod service;
pub mod session;
pub mod store;
pub mod tokens;

use crate::platform::routing::Permission;

pub const STAFF_READ: Permission = Permission::new("identity.staff.read", "View staff accounts");
pub const STAFF_WRITE: Permission = Permission::new(
    "identity.staff.write",
    "Create, edit, deactivate and delete staff accounts and assign their roles",
);
pub const ROLES_READ: Permission =
    Permission::new("identity.roles.read", "View roles and the permission list");
pub const ROLES_WRITE: Permission = Permission::new(
    "identity.roles.write",
    "Create, edit and delete roles and the permissions they grant",
);
pub const SECURITY_LOG_READ: Permission =
    Permission::new("identity.security_log.read", "View the security log");
pub const SIGNING_KEYS_WRITE: Permission = Permission::new(
    "identity.signing_keys.write",
    "Rotate the keys that sign access tokens",
);
