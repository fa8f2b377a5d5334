//! Customers: profiles and addresses, and (for staff) customer administration, feedback and
//! memberships. Signing in is identity's; this domain owns who the customer is.

pub mod entity;
pub mod jobs;
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
pub const FEEDBACK_READ: Permission =
    Permission::new("customers.feedback.read", "View customer feedback");
pub const FEEDBACK_WRITE: Permission = Permission::new(
    "customers.feedback.write",
    "Reply to and delete customer feedback",
);
pub const MEMBERSHIPS_READ: Permission = Permission::new(
    "customers.memberships.read",
    "View membership levels and customers' memberships",
);
pub const MEMBERSHIPS_WRITE: Permission = Permission::new(
    "customers.memberships.write",
    "Create, edit and delete membership levels; grant, change and revoke memberships",
);
