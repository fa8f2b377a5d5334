//! Cross-cutting parts every domain builds on.

pub mod cache;
pub mod concurrency;
pub mod crud;
pub mod db;
pub mod error;
pub mod extract;
pub mod hotcache;
pub mod html;
pub mod idempotency;
pub mod list;
pub mod money;
pub mod ratelimit;
pub mod request;
pub mod routing;
pub mod stream;
pub mod telemetry;

pub use error::{ApiError, ApiResult};
