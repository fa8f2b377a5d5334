//! Tables of the catalog domain.

pub mod attribute_definition;
pub mod attribute_value;
pub mod category;
pub mod product_type;
