//! Flash sales (R10.6): a few units at a low price for a short window, to a crowd.
//!
//! Staff set units aside from a SKU (a ledger movement). Customers' purchase attempts are
//! decided by the gate (`gate`) in the key-value store, one atomic script each, so no
//! database work is done for the many who cannot buy and no unit is ever sold twice,
//! whatever the number of instances. Accepted purchases go through a stream to consumers
//! (`worker`) that make the orders in batches, idempotently. Unpaid orders time out as
//! usual and their units go back on sale; when the sale ends, what is left goes back to
//! the SKU. `verify` checks that the gate, the stream, the orders and the ledger agree.

pub mod entity;
pub mod gate;
pub mod model;
pub mod routes;
pub mod service;
pub mod verify;
pub mod worker;

use crate::platform::routing::Permission;

pub const FLASH_SALES_READ: Permission =
    Permission::new("flash_sales.read", "View flash sales and their sales");
pub const FLASH_SALES_WRITE: Permission = Permission::new(
    "flash_sales.write",
    "Schedule, edit, end and delete flash sales (sets stock aside)",
);
