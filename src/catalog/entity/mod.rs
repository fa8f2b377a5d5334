//! Tables of the catalog domain.

pub mod category;
