pub mod ledger;
pub mod notification;
pub mod payment;
pub mod remittance;
pub mod remittance_line;
