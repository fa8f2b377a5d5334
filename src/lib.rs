//! Bazaar: an e-commerce platform's back office and storefront API in one binary.

pub mod app;
pub mod cart;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod content;
pub mod customers;
pub mod flash;
pub mod identity;
pub mod inventory;
pub mod jobs;
pub mod media;
pub mod migration;
pub mod notify;
pub mod orders;
pub mod payments;
pub mod platform;
pub mod promotions;
pub mod reports;
pub mod system;
