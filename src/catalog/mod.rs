//! The catalog: products, SKUs and bundles, the category tree, product types and custom
//! attributes, brands, media and reviews.

pub mod attributes;
pub mod brands;
pub mod cache;
pub mod entity;
pub mod link_targets;
pub mod model;
pub mod products;
pub mod reviews;
pub mod routes;
pub mod seed;
pub mod service;
pub mod store;

use crate::platform::routing::Permission;

pub const CATEGORIES_READ: Permission =
    Permission::new("catalog.categories.read", "View the category tree");
pub const CATEGORIES_WRITE: Permission = Permission::new(
    "catalog.categories.write",
    "Create, edit, move and delete categories",
);
pub const TYPES_READ: Permission = Permission::new(
    "catalog.types.read",
    "View product types and custom attribute definitions",
);
pub const TYPES_WRITE: Permission = Permission::new(
    "catalog.types.write",
    "Create, edit and delete product types and custom attribute definitions",
);
pub const PRODUCTS_READ: Permission = Permission::new(
    "catalog.products.read",
    "View products, their SKUs and category recommendations",
);
pub const PRODUCTS_WRITE: Permission = Permission::new(
    "catalog.products.write",
    "Create, edit, copy, batch-edit, delete and restore products and their SKUs",
);
pub const BRANDS_READ: Permission = Permission::new("catalog.brands.read", "View brands");
pub const BRANDS_WRITE: Permission =
    Permission::new("catalog.brands.write", "Create, edit and delete brands");
pub const REVIEWS_READ: Permission =
    Permission::new("catalog.reviews.read", "View product reviews");
pub const REVIEWS_WRITE: Permission = Permission::new(
    "catalog.reviews.write",
    "Reply to and delete product reviews",
);
