//! Promotions, coupons and gift certificates: catalog, cart and coupon promotions whose
//! rules are data (conditions and actions), stacked explicitly, priced by a pure function
//! that says which promotion produced every saving.

pub mod engine;
pub mod entity;
