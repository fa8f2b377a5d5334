//! Content: pages in a directory tree and standalone pages, ads and banners with a
//! validity window, and the storefront's navigation menus.

pub mod entity;
pub mod model;
pub mod routes;
pub mod service;
pub mod store;

use crate::platform::routing::Permission;

pub const PAGES_READ: Permission = Permission::new(
    "content.pages.read",
    "View content pages and their directories",
);
pub const PAGES_WRITE: Permission = Permission::new(
    "content.pages.write",
    "Create, edit, move and delete content pages and directories",
);
pub const ADS_READ: Permission = Permission::new("content.ads.read", "View ads and banners");
pub const ADS_WRITE: Permission = Permission::new(
    "content.ads.write",
    "Create, edit and delete ads and banners",
);
pub const MENUS_READ: Permission = Permission::new("content.menus.read", "View navigation menus");
pub const MENUS_WRITE: Permission = Permission::new(
    "content.menus.write",
    "Create, edit and delete navigation menus and their items",
);
