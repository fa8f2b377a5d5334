//! Tables of the cart domain.

pub mod cart;
pub mod cart_line;
