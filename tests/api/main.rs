//! API integration tests: the real application over HTTP, on the embedded backend (SQLite
//! and the in-process store) and the scaled one (PostgreSQL and Redis). See `harness`.

mod harness;

mod accounts;
mod brands;
mod catalog;
mod cli;
mod content;
mod conventions;
mod customers;
mod flash_sales;
mod gateways;
mod gift_certificates;
mod hotcache;
mod identity;
mod inventory;
mod jobs;
mod kv;
mod media;
mod oauth;
mod orders;
mod payment_gateways;
mod payments;
mod product_cache;
mod products;
mod promotions;
mod purchases;
mod ratelimit;
mod recommendations;
mod reviews;
mod settlement;
mod shop;
mod smtp;
mod system;
mod tokens;
