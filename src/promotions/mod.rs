//! Promotions, coupons and gift certificates: catalog, cart and coupon promotions whose
//! rules are data (conditions and actions), stacked explicitly, priced by a pure function
//! that says which promotion produced every saving.

pub mod admin;
pub mod admin_routes;
pub mod engine;
pub mod entity;
pub mod gift_certificates;
pub mod routes;
pub mod usage;

use crate::platform::routing::Permission;

pub const PROMOTIONS_READ: Permission = Permission::new(
    "promotions.read",
    "View promotions, coupons and redemptions",
);
pub const PROMOTIONS_WRITE: Permission = Permission::new(
    "promotions.write",
    "Create, edit and delete promotions; issue, edit and delete coupons",
);
