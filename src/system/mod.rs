//! System reference data: regions, carriers, shipping methods and rates, packaging,
//! payment methods.

pub mod entity;
pub mod model;
pub mod routes;
pub mod service;
pub mod store;

use crate::platform::routing::Permission;

pub const REGIONS_READ: Permission = Permission::new("system.regions.read", "View regions");
pub const REGIONS_WRITE: Permission = Permission::new(
    "system.regions.write",
    "Create, edit, move and delete regions",
);
pub const CARRIERS_READ: Permission = Permission::new("system.carriers.read", "View carriers");
pub const CARRIERS_WRITE: Permission =
    Permission::new("system.carriers.write", "Create, edit and delete carriers");
pub const SHIPPING_READ: Permission =
    Permission::new("system.shipping.read", "View shipping methods and rates");
pub const SHIPPING_WRITE: Permission = Permission::new(
    "system.shipping.write",
    "Create, edit and delete shipping methods and their rates",
);
pub const PACKAGING_READ: Permission =
    Permission::new("system.packaging.read", "View packaging options");
pub const PACKAGING_WRITE: Permission = Permission::new(
    "system.packaging.write",
    "Create, edit and delete packaging options",
);
pub const PAYMENT_METHODS_READ: Permission =
    Permission::new("system.payment_methods.read", "View payment methods");
pub const PAYMENT_METHODS_WRITE: Permission = Permission::new(
    "system.payment_methods.write",
    "Create, edit and delete payment methods",
);
