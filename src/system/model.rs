//! Request and response types of the system domain.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::entity::{carrier, packaging, payment_method, region, shipping_method, shipping_rate};
use crate::platform::money::Money;

/// Depth of a region in the country → province → city → district tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RegionLevel {
    Country,
    Province,
    City,
    District,
}

impl RegionLevel {
    pub const ALL: [RegionLevel; 4] = [Self::Country, Self::Province, Self::City, Self::District];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Country => "country",
            Self::Province => "province",
            Self::City => "city",
            Self::District => "district",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_str() == value)
    }

    /// The level a child of this level has.
    pub fn child(self) -> Option<Self> {
        match self {
            Self::Country => Some(Self::Province),
            Self::Province => Some(Self::City),
            Self::City => Some(Self::District),
            Self::District => None,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RegionView {
    pub id: i64,
    pub parent_id: Option<i64>,
    pub code: String,
    pub name: String,
    pub level: RegionLevel,
    pub sort_order: i32,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<region::Model> for RegionView {
    fn from(r: region::Model) -> Self {
        Self {
            id: r.id,
            parent_id: r.parent_id,
            level: RegionLevel::parse(&r.level).unwrap_or(RegionLevel::District),
            code: r.code,
            name: r.name,
            sort_order: r.sort_order,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A node of the storefront's region tree.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegionNode {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub level: RegionLevel,
    #[schema(no_recursion)]
    pub children: Vec<RegionNode>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRegion {
    pub parent_id: Option<i64>,
    /// Unique code, e.g. `CN`, `CN-GD`, `CN-GD-SZ`.
    pub code: String,
    pub name: String,
    pub level: RegionLevel,
    #[serde(default)]
    pub sort_order: i32,
}

/// A partial update. `parent_id` moves the region (and its subtree); send `null` to make
/// it a top-level country.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRegion {
    #[serde(default, deserialize_with = "crate::platform::extract::double_option")]
    #[schema(value_type = Option<i64>)]
    pub parent_id: Option<Option<i64>>,
    pub code: Option<String>,
    pub name: Option<String>,
    pub sort_order: Option<i32>,
    pub version: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RegionFilter {
    /// Children of this region.
    pub parent_id: Option<i64>,
    pub level: Option<RegionLevel>,
    /// Part of the name.
    pub q: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CarrierView {
    pub id: i64,
    pub code: String,
    pub name: String,
    /// Tracking page address with `{tracking_number}` where the number goes.
    pub tracking_url: String,
    pub active: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<carrier::Model> for CarrierView {
    fn from(c: carrier::Model) -> Self {
        Self {
            id: c.id,
            code: c.code,
            name: c.name,
            tracking_url: c.tracking_url,
            active: c.active,
            version: c.version,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCarrier {
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub tracking_url: String,
    #[serde(default = "yes")]
    pub active: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCarrier {
    pub code: Option<String>,
    pub name: Option<String>,
    pub tracking_url: Option<String>,
    pub active: Option<bool>,
    pub version: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActiveFilter {
    pub active: Option<bool>,
    /// Part of the name.
    pub q: Option<String>,
}

/// Price of a parcel to the rate's region: `first_price` covers the first
/// `first_weight_grams`; each further started `step_weight_grams` adds `step_price`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShippingRate {
    /// The region (and its subtree) the rate applies to; `null` for everywhere else.
    pub region_id: Option<i64>,
    pub first_weight_grams: i64,
    /// Minor units of the method's currency.
    pub first_price: i64,
    pub step_weight_grams: i64,
    pub step_price: i64,
}

impl From<shipping_rate::Model> for ShippingRate {
    fn from(r: shipping_rate::Model) -> Self {
        Self {
            region_id: r.region_id,
            first_weight_grams: r.first_weight_grams,
            first_price: r.first_price,
            step_weight_grams: r.step_weight_grams,
            step_price: r.step_price,
        }
    }
}

impl ShippingRate {
    /// The price of a parcel of `weight_grams`, rounding partial steps up.
    pub fn price_for(&self, weight_grams: i64) -> i64 {
        let extra = (weight_grams - self.first_weight_grams).max(0);
        let steps = if self.step_weight_grams > 0 {
            (extra + self.step_weight_grams - 1) / self.step_weight_grams
        } else {
            0
        };
        self.first_price
            .saturating_add(steps.saturating_mul(self.step_price))
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ShippingMethodView {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub carrier_id: Option<i64>,
    pub currency: String,
    pub active: bool,
    pub sort_order: i32,
    pub rates: Vec<ShippingRate>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ShippingMethodView {
    pub fn new(m: shipping_method::Model, rates: Vec<ShippingRate>) -> Self {
        Self {
            id: m.id,
            code: m.code,
            name: m.name,
            carrier_id: m.carrier_id,
            currency: m.currency,
            active: m.active,
            sort_order: m.sort_order,
            rates,
            version: m.version,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateShippingMethod {
    pub code: String,
    pub name: String,
    pub carrier_id: Option<i64>,
    /// Defaults to the shop's currency.
    pub currency: Option<String>,
    #[serde(default = "yes")]
    pub active: bool,
    #[serde(default)]
    pub sort_order: i32,
    #[serde(default)]
    pub rates: Vec<ShippingRate>,
}

/// A partial update; `rates`, when given, replaces all rates.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateShippingMethod {
    pub code: Option<String>,
    pub name: Option<String>,
    #[serde(default, deserialize_with = "crate::platform::extract::double_option")]
    #[schema(value_type = Option<i64>)]
    pub carrier_id: Option<Option<i64>>,
    pub currency: Option<String>,
    pub active: Option<bool>,
    pub sort_order: Option<i32>,
    pub rates: Option<Vec<ShippingRate>>,
    pub version: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ShippingQuery {
    /// Destination region id (any level; the nearest region with a rate applies).
    pub region: i64,
    /// Parcel weight in grams.
    pub weight_grams: i64,
}

/// A shipping method a customer can choose for a destination, with its price.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ShippingOption {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub carrier_id: Option<i64>,
    pub price: Money,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PackagingView {
    pub id: i64,
    pub name: String,
    pub price: Money,
    pub active: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<packaging::Model> for PackagingView {
    fn from(p: packaging::Model) -> Self {
        Self {
            id: p.id,
            name: p.name,
            price: Money::new(p.price, p.currency),
            active: p.active,
            version: p.version,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePackaging {
    pub name: String,
    /// Minor units of the shop's currency.
    pub price: i64,
    #[serde(default = "yes")]
    pub active: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePackaging {
    pub name: Option<String>,
    pub price: Option<i64>,
    pub active: Option<bool>,
    pub version: Option<i64>,
}

/// The gateway or procedure behind a payment method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentProvider {
    Alipay,
    WechatPay,
    Unionpay,
    /// Bank transfer or "pay before shipping", recorded by staff.
    Manual,
    CashOnDelivery,
}

impl PaymentProvider {
    const ALL: [PaymentProvider; 5] = [
        Self::Alipay,
        Self::WechatPay,
        Self::Unionpay,
        Self::Manual,
        Self::CashOnDelivery,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alipay => "alipay",
            Self::WechatPay => "wechat_pay",
            Self::Unionpay => "unionpay",
            Self::Manual => "manual",
            Self::CashOnDelivery => "cash_on_delivery",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == value)
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentMethodView {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub provider: PaymentProvider,
    pub description: String,
    pub active: bool,
    pub sort_order: i32,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<payment_method::Model> for PaymentMethodView {
    fn from(p: payment_method::Model) -> Self {
        Self {
            id: p.id,
            provider: PaymentProvider::parse(&p.provider).unwrap_or(PaymentProvider::Manual),
            code: p.code,
            name: p.name,
            description: p.description,
            active: p.active,
            sort_order: p.sort_order,
            version: p.version,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePaymentMethod {
    pub code: String,
    pub name: String,
    pub provider: PaymentProvider,
    #[serde(default)]
    pub description: String,
    #[serde(default = "yes")]
    pub active: bool,
    #[serde(default)]
    pub sort_order: i32,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePaymentMethod {
    pub code: Option<String>,
    pub name: Option<String>,
    pub provider: Option<PaymentProvider>,
    pub description: Option<String>,
    pub active: Option<bool>,
    pub sort_order: Option<i32>,
    pub version: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PaymentMethodFilter {
    pub active: Option<bool>,
    pub provider: Option<PaymentProvider>,
}

fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::ShippingRate;

    fn rate() -> ShippingRate {
        ShippingRate {
            region_id: None,
            first_weight_grams: 1000,
            first_price: 1000,
            step_weight_grams: 500,
            step_price: 300,
        }
    }

    #[test]
    fn first_weight_covers_light_parcels() {
        assert_eq!(rate().price_for(0), 1000);
        assert_eq!(rate().price_for(1000), 1000);
    }

    #[test]
    fn partial_steps_round_up() {
        assert_eq!(rate().price_for(1001), 1300);
        assert_eq!(rate().price_for(1500), 1300);
        assert_eq!(rate().price_for(1501), 1600);
    }
}
