//! Orders: checkout, lifecycle, editing, splitting, picking, shipping and returns.

pub mod checkout;
pub mod documents;
pub mod edit;
pub mod entity;
pub mod fulfilment;
pub mod jobs;
pub mod model;
pub mod purchases;
pub mod returns;
pub mod routes;
pub mod service;

use crate::platform::routing::Permission;

pub const ORDERS_READ: Permission = Permission::new(
    "orders.read",
    "View and search orders, their history and documents",
);
pub const ORDERS_WRITE: Permission = Permission::new(
    "orders.write",
    "Edit, lock, split, cancel and complete orders",
);
pub const ORDERS_PAYMENTS: Permission = Permission::new(
    "orders.payments",
    "Record payments received outside a gateway (bank transfer)",
);
pub const ORDERS_FULFIL: Permission = Permission::new(
    "orders.fulfil",
    "Confirm orders for picking, make shipments and picking lists, ship",
);
pub const RETURNS_READ: Permission = Permission::new("orders.returns.read", "View returns");
pub const RETURNS_WRITE: Permission = Permission::new(
    "orders.returns.write",
    "Approve, reject and receive returns and exchanges",
);
