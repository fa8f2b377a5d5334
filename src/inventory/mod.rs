//! Inventory (R5.1/R5.2): stock levels per SKU (on hand, reserved, damaged), the ledger
//! of every movement, reservations that concurrent checkouts cannot oversell, and the
//! low-stock alert.
//!
//! The levels live on the SKU row (`skus.stock` is on hand) so catalog reads need no
//! join; only this domain changes them, and every change writes a `stock_movements` row
//! in the same transaction, so the ledger always sums to the levels.

pub mod entity;
pub mod jobs;
pub mod model;
pub mod routes;
pub mod service;
pub mod store;

use crate::platform::routing::Permission;

pub const INVENTORY_READ: Permission =
    Permission::new("inventory.read", "View stock levels and the stock ledger");
pub const INVENTORY_WRITE: Permission = Permission::new(
    "inventory.write",
    "Adjust and write off stock, set safety stock and reorder quantities; receives low-stock alerts",
);
