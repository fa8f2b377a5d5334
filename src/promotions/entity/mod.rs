//! Tables of the promotions domain.

pub mod coupon;
pub mod gift_certificate;
pub mod gift_certificate_movement;
pub mod promotion;
pub mod redemption;
