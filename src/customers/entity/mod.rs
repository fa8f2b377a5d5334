//! Tables of the customers domain.

pub mod address;
pub mod customer;
pub mod feedback;
pub mod membership;
pub mod membership_level;
