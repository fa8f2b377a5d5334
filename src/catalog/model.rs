//! Request and response types of the catalog domain.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::entity::category;

#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryView {
    pub id: i64,
    pub parent_id: Option<i64>,
    pub name: String,
    pub slug: String,
    pub description: String,
    pub sort_order: i32,
    /// Hidden categories, and everything below them, are not on the storefront.
    pub is_visible: bool,
    pub meta_title: Option<String>,
    pub meta_description: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<category::Model> for CategoryView {
    fn from(c: category::Model) -> Self {
        Self {
            id: c.id,
            parent_id: c.parent_id,
            name: c.name,
            slug: c.slug,
            description: c.description,
            sort_order: c.sort_order,
            is_visible: c.is_visible,
            meta_title: c.meta_title,
            meta_description: c.meta_description,
            version: c.version,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// A link to a category, as in breadcrumbs and child lists.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CategoryLink {
    pub id: i64,
    pub name: String,
    pub slug: String,
}

impl From<&category::Model> for CategoryLink {
    fn from(c: &category::Model) -> Self {
        Self {
            id: c.id,
            name: c.name.clone(),
            slug: c.slug.clone(),
        }
    }
}

/// One category with where it sits: the path from the root and its children.
#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryDetail {
    #[serde(flatten)]
    pub category: CategoryView,
    /// From the root down to this category's parent.
    pub breadcrumbs: Vec<CategoryLink>,
    pub children: Vec<CategoryLink>,
    /// Custom attribute values (shop-wide `category` attributes), by code.
    #[schema(value_type = Object)]
    pub attributes: AttributeValues,
}

/// A node of the category tree, children in their sibling order.
#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryNode {
    pub id: i64,
    pub name: String,
    pub slug: String,
    pub is_visible: bool,
    #[schema(no_recursion)]
    pub children: Vec<CategoryNode>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCategory {
    pub parent_id: Option<i64>,
    pub name: String,
    /// Lowercase letters, digits and single hyphens; unique. It is the storefront URL.
    pub slug: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub sort_order: i32,
    #[serde(default = "visible")]
    pub is_visible: bool,
    pub meta_title: Option<String>,
    pub meta_description: Option<String>,
}

fn visible() -> bool {
    true
}

/// Absent fields stay; `parent_id: null` moves the category (with its subtree) to the root.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCategory {
    #[serde(default, deserialize_with = "crate::platform::extract::double_option")]
    pub parent_id: Option<Option<i64>>,
    pub name: Option<String>,
    pub slug: Option<String>,
    pub description: Option<String>,
    pub sort_order: Option<i32>,
    pub is_visible: Option<bool>,
    #[serde(default, deserialize_with = "crate::platform::extract::double_option")]
    pub meta_title: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::platform::extract::double_option")]
    pub meta_description: Option<Option<String>>,
    pub version: Option<i64>,
}

/// A category as the storefront shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct StorefrontCategory {
    pub id: i64,
    pub name: String,
    pub slug: String,
    pub description: String,
    pub meta_title: Option<String>,
    pub meta_description: Option<String>,
    pub breadcrumbs: Vec<CategoryLink>,
    pub children: Vec<CategoryLink>,
    #[schema(value_type = Object)]
    pub attributes: AttributeValues,
}

/// Who a custom attribute describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttributeScope {
    /// A product of the type.
    Product,
    /// An axis along which a product of the type varies into SKUs (an enum).
    SkuAxis,
    /// A field a review of a product of the type fills in.
    Review,
    Category,
    Page,
    Customer,
}

impl AttributeScope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Product => "product",
            Self::SkuAxis => "sku_axis",
            Self::Review => "review",
            Self::Category => "category",
            Self::Page => "page",
            Self::Customer => "customer",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            Self::Product,
            Self::SkuAxis,
            Self::Review,
            Self::Category,
            Self::Page,
            Self::Customer,
        ]
        .into_iter()
        .find(|s| s.as_str() == value)
    }

    /// Scopes whose definitions belong to a product type.
    pub fn per_product_type(self) -> bool {
        matches!(self, Self::Product | Self::SkuAxis | Self::Review)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttributeKind {
    Text,
    Number,
    Enum,
    Boolean,
}

impl AttributeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Number => "number",
            Self::Enum => "enum",
            Self::Boolean => "boolean",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [Self::Text, Self::Number, Self::Enum, Self::Boolean]
            .into_iter()
            .find(|k| k.as_str() == value)
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AttributeView {
    pub id: i64,
    pub scope: AttributeScope,
    pub product_type_id: Option<i64>,
    pub code: String,
    pub name: String,
    pub kind: AttributeKind,
    /// The allowed values of an enum.
    pub options: Vec<String>,
    pub required: bool,
    pub sort_order: i32,
    pub version: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAttribute {
    pub scope: AttributeScope,
    /// Required for the `product`, `sku_axis` and `review` scopes, absent otherwise.
    pub product_type_id: Option<i64>,
    /// Lowercase letters, digits and `_`, starting with a letter; unique in its owner.
    pub code: String,
    pub name: String,
    pub kind: AttributeKind,
    #[serde(default)]
    pub options: Vec<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub sort_order: i32,
}

/// Scope, code and kind are fixed once values may exist; these may change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAttribute {
    pub name: Option<String>,
    pub options: Option<Vec<String>>,
    pub required: Option<bool>,
    pub sort_order: Option<i32>,
    pub version: Option<i64>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AttributeFilter {
    pub scope: Option<AttributeScope>,
    pub product_type_id: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductTypeView {
    pub id: i64,
    pub name: String,
    pub description: String,
    /// Its product attributes, SKU axes and review fields, in their order.
    pub attributes: Vec<AttributeView>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProductType {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProductType {
    pub name: Option<String>,
    pub description: Option<String>,
    pub version: Option<i64>,
}

/// Attribute values by code, e.g. `{"material": "cotton", "washable": true}`.
pub type AttributeValues = serde_json::Map<String, serde_json::Value>;
