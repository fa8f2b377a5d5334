//! Requests and views of the flash-sale domain.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A new flash sale. Its `stock` is set aside from the SKU's available stock at once.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFlashSale {
    pub name: String,
    pub sku_id: i64,
    /// In minor units.
    pub sale_price: i64,
    pub stock: i64,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// Units one customer may buy in this sale (default 1).
    pub per_customer_limit: Option<i64>,
    /// Only members of this level may buy.
    pub membership_level_id: Option<i64>,
    /// How long a sale order may stay unpaid (default `flash_sales.payment_timeout_secs`).
    pub payment_timeout_secs: Option<u32>,
}

/// Changes to a sale: anything before it starts; once live, only `name` and `ends_at`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateFlashSale {
    pub name: Option<String>,
    pub sale_price: Option<i64>,
    pub stock: Option<i64>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub per_customer_limit: Option<i64>,
    #[serde(default, deserialize_with = "crate::platform::extract::double_option")]
    pub membership_level_id: Option<Option<i64>>,
    pub payment_timeout_secs: Option<u32>,
}

/// A flash sale as staff see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct FlashSale {
    pub id: i64,
    pub name: String,
    pub sku_id: i64,
    pub sku_code: String,
    pub product_id: i64,
    pub title: String,
    pub regular_price: i64,
    pub sale_price: i64,
    pub currency: String,
    /// Units set aside for the sale.
    pub stock: i64,
    /// Units the gate can still sell.
    pub remaining: i64,
    /// Units in orders that were not cancelled.
    pub sold: i64,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub per_customer_limit: i64,
    pub membership_level_id: Option<i64>,
    pub payment_timeout_secs: i32,
    /// `scheduled`, `live`, `ended` (unsold units not yet given back) or `closed`.
    pub status: String,
    /// Units given back to the SKU when the sale closed.
    pub released: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An upcoming or live sale on the storefront.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StorefrontFlashSale {
    pub id: i64,
    pub name: String,
    pub sku_id: i64,
    pub product_id: i64,
    pub title: String,
    pub regular_price: i64,
    pub sale_price: i64,
    pub currency: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub per_customer_limit: i64,
    pub remaining: i64,
    /// `upcoming` or `live`.
    pub status: String,
    pub members_only: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StorefrontFlashSales {
    pub items: Vec<StorefrontFlashSale>,
}

/// A purchase attempt.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseRequest {
    /// Units to buy (default 1).
    pub quantity: Option<i64>,
    /// Where to ship, from the address book (default: the default address).
    pub address_id: Option<i64>,
}

/// The gate took the units; the order is being made.
#[derive(Debug, Serialize, ToSchema)]
pub struct PurchaseAccepted {
    pub purchase_id: String,
    /// Always `pending`.
    pub status: &'static str,
    pub remaining: i64,
}

/// Where a purchase stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct Purchase {
    pub purchase_id: String,
    pub flash_sale_id: i64,
    pub quantity: i64,
    /// `pending` (order being made), `ordered`, or `cancelled` (units given back).
    pub status: String,
    pub order_number: Option<String>,
    pub payment_due_at: Option<DateTime<Utc>>,
}
