//! Payments: gateways (Alipay, WeChat Pay, UnionPay), manual and cash-on-delivery payments,
//! notifications stored raw and applied once, refunds, reconciliation and carrier settlement.

pub mod admin;
pub mod entity;
pub mod gateway;
pub mod jobs;
pub mod model;
pub mod notifications;
pub mod reconcile;
pub mod refunds;
pub mod routes;
pub mod service;
pub mod settlement;

use crate::platform::routing::Permission;

pub const PAYMENTS_READ: Permission = Permission::new(
    "payments.read",
    "View payments, their notifications and the money ledger",
);
pub const PAYMENTS_REFUND: Permission =
    Permission::new("payments.refund", "Refund payments in full or in part");
pub const SETTLEMENT_READ: Permission = Permission::new(
    "payments.settlement.read",
    "View and export carrier statements and COD remittances",
);
pub const SETTLEMENT_WRITE: Permission = Permission::new(
    "payments.settlement.write",
    "Import carrier COD remittances, which settles the orders they match",
);
