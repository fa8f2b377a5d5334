//! Carts: a guest's (found by its token) or a customer's, priced live by the promotion
//! engine.

pub mod entity;
pub mod model;
pub mod routes;
pub mod service;
