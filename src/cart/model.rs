//! Cart requests and responses.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::promotions::engine::{AppliedPromotion, BlockedLine, LineSaving, NotApplied};
use crate::promotions::usage::RejectedCode;
use crate::system::model::ShippingOption;

/// Most units of one SKU a cart (and an order line) may hold.
pub const MAX_QUANTITY: i64 = 999;
/// Most distinct SKUs in one cart.
pub const MAX_LINES: usize = 100;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddLine {
    pub sku_id: i64,
    /// Added to what the cart already holds of this SKU.
    pub quantity: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetQuantity {
    pub quantity: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetCoupons {
    /// Replaces the cart's codes; case does not matter.
    pub codes: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeCart {
    /// The guest cart's token; its lines move into the signed-in customer's cart.
    pub token: String,
}

/// Where the cart would ship, to quote shipping.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ShippingChoice {
    /// Destination region: lists the shipping options that deliver there.
    pub region_id: Option<i64>,
    /// One of those options: its price is in the totals.
    pub shipping_method_id: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CartView {
    /// Present for guest carts: send it back as the `Cart-Token` header.
    pub token: Option<String>,
    pub currency: String,
    pub lines: Vec<CartLineView>,
    pub coupon_codes: Vec<String>,
    /// Codes that do not apply, and why.
    pub rejected_codes: Vec<RejectedCode>,
    /// Promotions in the totals, in the order they were applied, with their savings.
    pub promotions: Vec<AppliedPromotion>,
    /// Promotions that were considered and did not apply, with the reason.
    pub not_applied: Vec<NotApplied>,
    /// Member-only lines this customer may not buy.
    pub blocked: Vec<BlockedLine>,
    pub requires_shipping: bool,
    pub weight_grams: i64,
    /// Options for `region_id`, cheapest first.
    pub shipping_options: Vec<ShippingOption>,
    pub shipping_method_id: Option<i64>,
    pub subtotal: i64,
    pub discount: i64,
    pub shipping: i64,
    pub shipping_discount: i64,
    pub total: i64,
    pub bonus_points: i64,
    /// False while a line is unavailable, short of stock or blocked.
    pub can_checkout: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CartLineView {
    pub sku_id: i64,
    pub product_id: i64,
    pub sku_code: String,
    pub title: String,
    pub slug: String,
    pub quantity: i64,
    pub unit_price: i64,
    pub subtotal: i64,
    pub discount: i64,
    pub total: i64,
    /// Which promotions lowered this line, and by how much.
    pub savings: Vec<LineSaving>,
    /// Units that can still be reserved; absent when stock does not limit the SKU.
    pub available: Option<i64>,
    /// Why this line cannot be bought as it is.
    pub problem: Option<String>,
}
