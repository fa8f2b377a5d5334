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
}
