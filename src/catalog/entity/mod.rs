//! Tables of the catalog domain.

pub mod attribute_definition;
pub mod attribute_value;
pub mod brand;
pub mod bundle_item;
pub mod category;
pub mod category_recommendation;
pub mod product;
pub mod product_category;
pub mod product_media;
pub mod product_recommendation;
pub mod product_type;
pub mod review;
pub mod sku;
