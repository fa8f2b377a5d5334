//! Tables of the orders domain.

pub mod order;
pub mod order_history;
pub mod order_line;
pub mod picking_list;
pub mod refund;
pub mod return_line;
pub mod return_request;
pub mod shipment;
pub mod shipment_line;
