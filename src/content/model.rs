//! Request and response types of the content domain.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::entity::{ad, directory, menu, menu_item, page};

// ---- directories ----------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct DirectoryView {
    pub id: i64,
    pub parent_id: Option<i64>,
    pub name: String,
    pub slug: String,
    pub sort_order: i32,
    /// Set when the directory is a link rather than a holder of pages.
    pub link_url: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<directory::Model> for DirectoryView {
    fn from(d: directory::Model) -> Self {
        Self {
            id: d.id,
            parent_id: d.parent_id,
            name: d.name,
            slug: d.slug,
            sort_order: d.sort_order,
            link_url: d.link_url,
            version: d.version,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDirectory {
    pub parent_id: Option<i64>,
    pub name: String,
    /// Lowercase letters, digits and `-`; unique among directories.
    pub slug: String,
    #[serde(default)]
    pub sort_order: i32,
    pub link_url: Option<String>,
}

/// A partial update; `parent_id: null` moves the directory to the top level, and
/// `link_url: null` turns a link back into a holder of pages.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateDirectory {
    #[serde(default, deserialize_with = "crate::platform::extract::double_option")]
    #[schema(value_type = Option<i64>)]
    pub parent_id: Option<Option<i64>>,
    pub name: Option<String>,
    pub slug: Option<String>,
    pub sort_order: Option<i32>,
    #[serde(default, deserialize_with = "crate::platform::extract::double_option")]
    #[schema(value_type = Option<String>)]
    pub link_url: Option<Option<String>>,
    pub version: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DirectoryFilter {
    /// Children of this directory.
    pub parent_id: Option<i64>,
    /// Part of the name.
    pub q: Option<String>,
}

/// A node of the storefront's content tree.
#[derive(Debug, Serialize, ToSchema)]
pub struct DirectoryNode {
    pub id: i64,
    pub name: String,
    pub slug: String,
    pub link_url: Option<String>,
    pub pages: Vec<PageLink>,
    #[schema(no_recursion)]
    pub children: Vec<DirectoryNode>,
}

/// A published page as the storefront links to it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PageLink {
    pub title: String,
    pub slug: String,
}

// ---- pages ----------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct PageView {
    pub id: i64,
    pub directory_id: Option<i64>,
    pub title: String,
    pub slug: String,
    /// Sanitised HTML.
    pub body: String,
    pub published: bool,
    pub meta_title: Option<String>,
    pub meta_description: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<page::Model> for PageView {
    fn from(p: page::Model) -> Self {
        Self {
            id: p.id,
            directory_id: p.directory_id,
            title: p.title,
            slug: p.slug,
            body: p.body,
            published: p.published,
            meta_title: p.meta_title,
            meta_description: p.meta_description,
            version: p.version,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// A published page for the storefront.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicPage {
    pub title: String,
    pub slug: String,
    pub body: String,
    pub meta_title: Option<String>,
    pub meta_description: Option<String>,
    /// Custom attribute values (shop-wide `page` attributes), by code.
    #[schema(value_type = Object)]
    pub attributes: crate::catalog::model::AttributeValues,
    pub updated_at: DateTime<Utc>,
}

impl From<page::Model> for PublicPage {
    fn from(p: page::Model) -> Self {
        Self {
            title: p.title,
            slug: p.slug,
            body: p.body,
            meta_title: p.meta_title,
            meta_description: p.meta_description,
            attributes: Default::default(),
            updated_at: p.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePage {
    /// Absent for a standalone page such as "About us".
    pub directory_id: Option<i64>,
    pub title: String,
    pub slug: String,
    /// HTML; anything outside the allow-list (scripts, event handlers, `javascript:`
    /// links) is removed before it is stored.
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub published: bool,
    pub meta_title: Option<String>,
    pub meta_description: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePage {
    #[serde(default, deserialize_with = "crate::platform::extract::double_option")]
    #[schema(value_type = Option<i64>)]
    pub directory_id: Option<Option<i64>>,
    pub title: Option<String>,
    pub slug: Option<String>,
    pub body: Option<String>,
    pub published: Option<bool>,
    #[serde(default, deserialize_with = "crate::platform::extract::double_option")]
    #[schema(value_type = Option<String>)]
    pub meta_title: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::platform::extract::double_option")]
    #[schema(value_type = Option<String>)]
    pub meta_description: Option<Option<String>>,
    pub version: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageFilter {
    pub directory_id: Option<i64>,
    pub published: Option<bool>,
    /// Part of the title.
    pub q: Option<String>,
}

// ---- ads ------------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct AdView {
    pub id: i64,
    pub title: String,
    pub image_url: String,
    pub link_url: String,
    pub placement: String,
    pub sort_order: i32,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub active: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<ad::Model> for AdView {
    fn from(a: ad::Model) -> Self {
        Self {
            id: a.id,
            title: a.title,
            image_url: a.image_url,
            link_url: a.link_url,
            placement: a.placement,
            sort_order: a.sort_order,
            starts_at: a.starts_at,
            ends_at: a.ends_at,
            active: a.active,
            version: a.version,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

/// An ad as the storefront shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicAd {
    pub id: i64,
    pub title: String,
    pub image_url: String,
    pub link_url: String,
    pub placement: String,
}

impl From<ad::Model> for PublicAd {
    fn from(a: ad::Model) -> Self {
        Self {
            id: a.id,
            title: a.title,
            image_url: a.image_url,
            link_url: a.link_url,
            placement: a.placement,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAd {
    pub title: String,
    pub image_url: String,
    #[serde(default)]
    pub link_url: String,
    /// Where the ad shows, e.g. `home_top`.
    pub placement: String,
    #[serde(default)]
    pub sort_order: i32,
    /// Shown from this instant; absent for "already".
    pub starts_at: Option<DateTime<Utc>>,
    /// Shown until (not including) this instant; absent for "until switched off".
    pub ends_at: Option<DateTime<Utc>>,
    #[serde(default = "yes")]
    pub active: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAd {
    pub title: Option<String>,
    pub image_url: Option<String>,
    pub link_url: Option<String>,
    pub placement: Option<String>,
    pub sort_order: Option<i32>,
    #[serde(default, deserialize_with = "crate::platform::extract::double_option")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub starts_at: Option<Option<DateTime<Utc>>>,
    #[serde(default, deserialize_with = "crate::platform::extract::double_option")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub ends_at: Option<Option<DateTime<Utc>>>,
    pub active: Option<bool>,
    pub version: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdFilter {
    pub placement: Option<String>,
    pub active: Option<bool>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PlacementQuery {
    /// Only ads for this placement, e.g. `home_top`.
    pub placement: Option<String>,
}

fn yes() -> bool {
    true
}

// ---- menus ----------------------------------------------------------------------------

/// What a menu item points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MenuItemKind {
    Url,
    Page,
    Directory,
    /// A catalog category (storefront address `/categories/<slug>`).
    Category,
    /// A product (storefront address `/products/<slug>`).
    Product,
}

impl MenuItemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Url => "url",
            Self::Page => "page",
            Self::Directory => "directory",
            Self::Category => "category",
            Self::Product => "product",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            Self::Url,
            Self::Page,
            Self::Directory,
            Self::Category,
            Self::Product,
        ]
        .into_iter()
        .find(|k| k.as_str() == value)
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MenuView {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub items: Vec<MenuItemView>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl MenuView {
    pub fn new(m: menu::Model, items: Vec<MenuItemView>) -> Self {
        Self {
            id: m.id,
            code: m.code,
            name: m.name,
            items,
            version: m.version,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MenuItemView {
    pub id: i64,
    pub label: String,
    pub kind: MenuItemKind,
    pub url: Option<String>,
    pub target_id: Option<i64>,
    pub sort_order: i32,
    #[schema(no_recursion)]
    pub children: Vec<MenuItemView>,
}

impl From<menu_item::Model> for MenuItemView {
    fn from(i: menu_item::Model) -> Self {
        Self {
            id: i.id,
            label: i.label,
            kind: MenuItemKind::parse(&i.kind).unwrap_or(MenuItemKind::Url),
            url: i.url,
            target_id: i.target_id,
            sort_order: i.sort_order,
            children: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMenu {
    /// Unique code the storefront asks for, e.g. `main` or `footer`.
    pub code: String,
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMenu {
    pub code: Option<String>,
    pub name: Option<String>,
    pub version: Option<i64>,
}

/// One item of a menu; `children` nest one level deep.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MenuItemInput {
    pub label: String,
    pub kind: MenuItemKind,
    /// The address, for `kind: url`.
    pub url: Option<String>,
    /// The page's or directory's id, for `kind: page` or `directory`.
    pub target_id: Option<i64>,
    #[serde(default)]
    pub sort_order: i32,
    #[serde(default)]
    #[schema(no_recursion)]
    pub children: Vec<MenuItemInput>,
}

/// The complete new item list of a menu.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaceMenuItems {
    pub items: Vec<MenuItemInput>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MenuFilter {
    /// Part of the name.
    pub q: Option<String>,
}

/// A menu with its targets resolved to addresses, for the storefront.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicMenu {
    pub code: String,
    pub name: String,
    pub items: Vec<PublicMenuItem>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicMenuItem {
    pub label: String,
    pub kind: MenuItemKind,
    /// Where the item leads: the URL, `/pages/{slug}`, or the directory's link or
    /// `/content/{slug}`.
    pub url: String,
    /// The page's or directory's slug.
    pub slug: Option<String>,
    #[schema(no_recursion)]
    pub children: Vec<PublicMenuItem>,
}
