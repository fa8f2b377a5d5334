//! Request and response types of products, SKUs and bundles.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::catalog::model::{AttributeValues, CategoryLink};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProductStatus {
    /// Being prepared; never on the storefront.
    Draft,
    /// On the storefront while inside its listing window.
    Listed,
    /// Taken off the storefront.
    Delisted,
}

impl ProductStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Listed => "listed",
            Self::Delisted => "delisted",
        }
    }

    pub fn parse(value: &str) -> Self {
        match value {
            "listed" => Self::Listed,
            "delisted" => Self::Delisted,
            _ => Self::Draft,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProductKind {
    /// Shipped; SKUs have a weight.
    Physical,
    /// Delivered without shipping (gift cards, downloads, services).
    Virtual,
}

impl ProductKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Physical => "physical",
            Self::Virtual => "virtual",
        }
    }

    pub fn parse(value: &str) -> Self {
        if value == "virtual" {
            Self::Virtual
        } else {
            Self::Physical
        }
    }
}

/// One SKU of a bundle: which SKU and how many of it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BundlePartInput {
    pub sku_id: i64,
    pub quantity: i32,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BundlePart {
    pub sku_id: i64,
    pub code: String,
    pub quantity: i32,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SkuView {
    pub id: i64,
    pub product_id: i64,
    pub code: String,
    /// Minor units of the shop currency.
    pub price: i64,
    pub compare_at_price: Option<i64>,
    pub weight_grams: i32,
    pub barcode: Option<String>,
    /// Units on hand; for a bundle SKU, how many whole bundles its parts' available units
    /// make. Changed here it is an `adjust` movement in the stock ledger.
    pub stock: i32,
    /// Units promised to unshipped orders (read-only; 0 for a bundle SKU).
    pub reserved: i32,
    /// `stock - reserved`: what checkouts may still take (read-only).
    pub available: i32,
    /// Never runs out (set under `/admin/inventory`); for a bundle, when all its parts are.
    pub always_available: bool,
    /// Values of the product type's SKU axes, by code.
    #[schema(value_type = Object)]
    pub axes: AttributeValues,
    /// The SKUs a bundle SKU is made of; empty for other SKUs.
    pub parts: Vec<BundlePart>,
    pub is_active: bool,
    pub sort_order: i32,
    pub version: i64,
}

/// A new SKU; `parts` only (and always) on a bundle's SKUs.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SkuInput {
    /// 1–64 letters, digits, `-` or `_`; unique across the shop.
    pub code: String,
    pub price: i64,
    pub compare_at_price: Option<i64>,
    #[serde(default)]
    pub weight_grams: i32,
    pub barcode: Option<String>,
    #[serde(default)]
    pub stock: i32,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub axes: AttributeValues,
    #[serde(default)]
    pub parts: Vec<BundlePartInput>,
    #[serde(default = "yes")]
    pub is_active: bool,
    #[serde(default)]
    pub sort_order: i32,
}

fn yes() -> bool {
    true
}

/// Absent fields stay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSku {
    pub code: Option<String>,
    pub price: Option<i64>,
    #[serde(default, deserialize_with = "crate::platform::extract::double_option")]
    pub compare_at_price: Option<Option<i64>>,
    pub weight_grams: Option<i32>,
    #[serde(default, deserialize_with = "crate::platform::extract::double_option")]
    pub barcode: Option<Option<String>>,
    pub stock: Option<i32>,
    #[schema(value_type = Option<Object>)]
    pub axes: Option<AttributeValues>,
    pub parts: Option<Vec<BundlePartInput>>,
    pub is_active: Option<bool>,
    pub sort_order: Option<i32>,
    pub version: Option<i64>,
}

/// Creates the SKUs missing from the product type's axis combinations.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateSkus {
    /// The price of every new SKU.
    pub price: i64,
    pub compare_at_price: Option<i64>,
    #[serde(default)]
    pub weight_grams: i32,
    /// New codes are `<prefix>-<option>-<option>…`; default: the product's slug.
    pub code_prefix: Option<String>,
    /// Options per axis code to combine; default: every option of each axis.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub options: std::collections::BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GeneratedSkus {
    pub created: Vec<SkuView>,
    /// Combinations that already had a SKU.
    pub existing: usize,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MediaView {
    pub id: i64,
    pub url: String,
    pub content_type: String,
    /// `image` or `video`.
    pub kind: String,
    pub size: i64,
    pub alt: String,
    pub sort_order: i32,
}

/// A product as the back office sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductView {
    pub id: i64,
    pub title: String,
    pub slug: String,
    /// Sanitised HTML.
    pub description: String,
    pub brand_id: Option<i64>,
    pub product_type_id: Option<i64>,
    pub category_ids: Vec<i64>,
    #[schema(value_type = Object)]
    pub attributes: AttributeValues,
    pub status: ProductStatus,
    pub publish_at: Option<DateTime<Utc>>,
    pub unpublish_at: Option<DateTime<Utc>>,
    /// Whether the storefront shows it at this moment (status, window, not deleted).
    pub visible_now: bool,
    pub kind: ProductKind,
    pub is_bundle: bool,
    pub allow_preorder: bool,
    pub allow_backorder: bool,
    pub meta_title: Option<String>,
    pub meta_description: Option<String>,
    /// The lowest price among active SKUs.
    pub min_price: Option<i64>,
    pub rating_count: i32,
    pub rating_average: Option<f64>,
    pub skus: Vec<SkuView>,
    pub media: Vec<MediaView>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A row of the back office's product list.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductSummary {
    pub id: i64,
    pub title: String,
    pub slug: String,
    pub status: ProductStatus,
    pub visible_now: bool,
    pub kind: ProductKind,
    pub is_bundle: bool,
    pub brand_id: Option<i64>,
    pub min_price: Option<i64>,
    pub publish_at: Option<DateTime<Utc>>,
    pub unpublish_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProductFilter {
    /// Matches title, slug or a SKU code (case-insensitive substring).
    pub q: Option<String>,
    pub status: Option<ProductStatus>,
    pub brand_id: Option<i64>,
    pub category_id: Option<i64>,
    pub product_type_id: Option<i64>,
    /// `true` lists only soft-deleted products (for restoring); default: live ones.
    #[serde(default)]
    pub deleted: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProduct {
    pub title: String,
    /// Lowercase words joined by hyphens; unique among live products. The storefront URL.
    pub slug: String,
    /// HTML; anything outside the allow-list (scripts, event handlers) is removed.
    #[serde(default)]
    pub description: String,
    pub brand_id: Option<i64>,
    #[serde(default)]
    pub category_ids: Vec<i64>,
    pub product_type_id: Option<i64>,
    /// Values of the product type's `product` attributes, by code.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub attributes: AttributeValues,
    #[serde(default = "draft")]
    pub status: ProductStatus,
    /// Listed products show from this moment (whole seconds); none: at once.
    pub publish_at: Option<DateTime<Utc>>,
    /// …until this moment; none: indefinitely.
    pub unpublish_at: Option<DateTime<Utc>>,
    #[serde(default = "physical")]
    pub kind: ProductKind,
    #[serde(default)]
    pub is_bundle: bool,
    #[serde(default)]
    pub allow_preorder: bool,
    #[serde(default)]
    pub allow_backorder: bool,
    pub meta_title: Option<String>,
    pub meta_description: Option<String>,
    #[serde(default)]
    pub skus: Vec<SkuInput>,
}

fn draft() -> ProductStatus {
    ProductStatus::Draft
}

fn physical() -> ProductKind {
    ProductKind::Physical
}

/// Absent fields stay; `category_ids` and `attributes` replace the whole set.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProduct {
    pub title: Option<String>,
    pub slug: Option<String>,
    pub description: Option<String>,
    #[serde(default, deserialize_with = "crate::platform::extract::double_option")]
    pub brand_id: Option<Option<i64>>,
    pub category_ids: Option<Vec<i64>>,
    #[serde(default, deserialize_with = "crate::platform::extract::double_option")]
    pub product_type_id: Option<Option<i64>>,
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<AttributeValues>,
    pub status: Option<ProductStatus>,
    #[serde(default, deserialize_with = "crate::platform::extract::double_option")]
    pub publish_at: Option<Option<DateTime<Utc>>>,
    #[serde(default, deserialize_with = "crate::platform::extract::double_option")]
    pub unpublish_at: Option<Option<DateTime<Utc>>>,
    pub kind: Option<ProductKind>,
    pub allow_preorder: Option<bool>,
    pub allow_backorder: Option<bool>,
    #[serde(default, deserialize_with = "crate::platform::extract::double_option")]
    pub meta_title: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::platform::extract::double_option")]
    pub meta_description: Option<Option<String>>,
    pub version: Option<i64>,
}

/// One change applied to many products in one transaction: all or none.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchEdit {
    /// 1 to 500 live products.
    pub ids: Vec<i64>,
    pub status: Option<ProductStatus>,
    /// Added to each product's categories.
    #[serde(default)]
    pub add_category_ids: Vec<i64>,
    /// Removed from each product's categories.
    #[serde(default)]
    pub remove_category_ids: Vec<i64>,
    /// Changes every SKU price (and compare-at price) by this percentage, e.g. `-15` or
    /// `7.5`; at most two decimals, results rounded half up to the minor unit.
    pub price_percent: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResult {
    pub updated: usize,
}

/// Products a category or product recommends, in order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRecommendations {
    pub product_ids: Vec<i64>,
}

// ---------------------------------------------------------------------------------------
// Storefront
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BrandLink {
    pub id: i64,
    pub name: String,
    pub slug: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProductSort {
    /// Most recently created first.
    Newest,
    /// Lowest price first.
    Price,
    /// Highest price first.
    #[serde(rename = "-price")]
    PriceDesc,
    /// Best average rating first.
    Rating,
    /// By title, A to Z.
    Name,
    /// Best match for `q` first (the default when searching).
    Relevance,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StorefrontProductQuery {
    /// Words to search for in titles, brands, SKU codes and attribute values.
    pub q: Option<String>,
    /// A category slug; its descendants are included.
    pub category: Option<String>,
    /// A brand slug.
    pub brand: Option<String>,
    /// Minor units, inclusive.
    pub min_price: Option<i64>,
    /// Minor units, inclusive.
    pub max_price: Option<i64>,
    /// Attribute filters `code:value`, comma-separated; `|` separates alternatives, e.g.
    /// `color:red|blue,size:m`. Product attributes and SKU axes both match.
    pub attributes: Option<String>,
    /// Only products that can be bought now (in stock, or back/pre-orderable).
    #[serde(default)]
    pub in_stock: bool,
    pub sort: Option<ProductSort>,
    pub page: Option<u64>,
    /// 1 to 100; default 20.
    pub per_page: Option<u64>,
}

/// A product in a storefront list.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductCard {
    pub id: i64,
    pub slug: String,
    pub title: String,
    pub kind: ProductKind,
    pub brand: Option<BrandLink>,
    /// The lowest active SKU price.
    pub price: Option<i64>,
    pub image_url: Option<String>,
    pub rating_average: Option<f64>,
    pub rating_count: i32,
    pub in_stock: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StorefrontAttribute {
    pub code: String,
    pub name: String,
    #[schema(value_type = Object)]
    pub value: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StorefrontAxis {
    pub code: String,
    pub name: String,
    /// The options some active SKU has, in the definition's order.
    pub options: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StorefrontSku {
    pub id: i64,
    pub code: String,
    pub price: i64,
    pub compare_at_price: Option<i64>,
    #[schema(value_type = Object)]
    pub axes: AttributeValues,
    /// Whether it can be ordered now (stock, a bundle's parts, always available, or
    /// back/pre-order).
    pub available: bool,
    /// Units (whole bundles) available to order: on hand less what orders reserved.
    pub stock: i32,
    pub parts: Vec<BundlePart>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StorefrontMedia {
    pub url: String,
    pub kind: String,
    pub content_type: String,
    pub alt: String,
}

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct RatingSummary {
    pub count: i32,
    pub average: Option<f64>,
    /// Reviews per star, index 0 = 1 star.
    pub distribution: [i32; 5],
}

/// A product page.
#[derive(Debug, Serialize, ToSchema)]
pub struct StorefrontProduct {
    pub id: i64,
    pub slug: String,
    pub title: String,
    pub description: String,
    pub kind: ProductKind,
    pub is_bundle: bool,
    pub allow_preorder: bool,
    pub allow_backorder: bool,
    pub meta_title: Option<String>,
    pub meta_description: Option<String>,
    pub brand: Option<BrandLink>,
    pub categories: Vec<CategoryLink>,
    /// From the root down to the product's (first) category.
    pub breadcrumbs: Vec<CategoryLink>,
    pub attributes: Vec<StorefrontAttribute>,
    pub axes: Vec<StorefrontAxis>,
    pub skus: Vec<StorefrontSku>,
    pub media: Vec<StorefrontMedia>,
    pub rating: RatingSummary,
    pub in_stock: bool,
}
