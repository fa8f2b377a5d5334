//! Customers: profiles and addresses, and (for staff) customer administration, feedback and
//! memberships. Signing in is identity's; this domain owns who the customer is.

pub mod entity;
pub mod model;
pub mod routes;
pub mod service;
pub mod store;

use crate::platform::routing::Permission;

pub const CUSTOMERS_READ: Permission =
    Permission::new("customers.customers.read", "View and search customers");
pub const CUSTOMERS_WRITE: Permission = Permission::new(
    "customers.customers.write",
    "Create, edit and delete customers, reset their passwords and email them",
);
