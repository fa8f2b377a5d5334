//! Tables of the system domain.

pub mod carrier;
pub mod packaging;
pub mod payment_method;
pub mod region;
pub mod shipping_method;
pub mod shipping_rate;
