//! Promotions, coupons and gift certificates, and the pricing engine that applies them.

pub mod entity;
pub mod gift_certificates;
pub mod routes;
