//! Brands (R2.4): who makes a product. Staff keep the list; the storefront shows the
//! visible ones. A brand that live products still name cannot be deleted.

use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::EntityTrait;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::entity::brand;
use super::store;
use crate::app::AppState;
use crate::identity::service::{Actor, audit};
use crate::media::store::MediaStore;
use crate::platform::concurrency::{Expected, update_versioned};
use crate::platform::crud::{delete_or_404, find_or_404};
use crate::platform::error::Validator;
use crate::platform::list::{ListParams, Page, SortFields};
use crate::platform::{ApiError, ApiResult};

#[derive(Debug, Serialize, ToSchema)]
pub struct BrandView {
    pub id: i64,
    pub name: String,
    pub slug: String,
    pub description: String,
    /// Where the logo is in the media store.
    pub logo_key: Option<String>,
    /// Where a browser fetches the logo.
    pub logo_url: Option<String>,
    pub website: Option<String>,
    pub sort_order: i32,
    /// Hidden brands are not on the storefront.
    pub is_visible: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl BrandView {
    /// The logo's address comes from the media store (Bazaar's own `/media/…`, or the
    /// configured public base such as a CDN).
    fn new(b: brand::Model, media: &MediaStore) -> Self {
        Self {
            id: b.id,
            logo_url: b.logo_key.as_deref().map(|k| media.url(k)),
            name: b.name,
            slug: b.slug,
            description: b.description,
            logo_key: b.logo_key,
            website: b.website,
            sort_order: b.sort_order,
            is_visible: b.is_visible,
            version: b.version,
            created_at: b.created_at,
            updated_at: b.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBrand {
    pub name: String,
    /// Lowercase letters, digits and single hyphens; unique. It is the storefront URL.
    pub slug: String,
    /// Plain text.
    #[serde(default)]
    pub description: String,
    /// A key in the media store, e.g. `brands/acme.png`.
    pub logo_key: Option<String>,
    /// An absolute http(s) address.
    pub website: Option<String>,
    #[serde(default)]
    pub sort_order: i32,
    #[serde(default = "visible")]
    pub is_visible: bool,
}

fn visible() -> bool {
    true
}

/// Absent fields stay; `logo_key: null` or `website: null` clears it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateBrand {
    pub name: Option<String>,
    pub slug: Option<String>,
    pub description: Option<String>,
    #[serde(default, deserialize_with = "crate::platform::extract::double_option")]
    pub logo_key: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::platform::extract::double_option")]
    pub website: Option<Option<String>>,
    pub sort_order: Option<i32>,
    pub is_visible: Option<bool>,
    pub version: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BrandFilter {
    /// Part of the name, in any case.
    pub q: Option<String>,
}

/// A brand as the storefront shows it: no staff-only fields.
#[derive(Debug, Serialize, ToSchema)]
pub struct StorefrontBrand {
    pub id: i64,
    pub name: String,
    pub slug: String,
    pub description: String,
    pub logo_url: Option<String>,
    pub website: Option<String>,
}

impl StorefrontBrand {
    fn new(b: brand::Model, media: &MediaStore) -> Self {
        Self {
            id: b.id,
            logo_url: b.logo_key.as_deref().map(|k| media.url(k)),
            name: b.name,
            slug: b.slug,
            description: b.description,
            website: b.website,
        }
    }
}

const RESOURCE: &str = "brand";
const NAME_MAX: usize = 100;
const DESCRIPTION_MAX: usize = 10_000;
const WEBSITE_MAX: usize = 300;
const LOGO_KEY_MAX: usize = 300;
/// The storefront list is unpaged; this bounds it should a shop have very many brands.
const STOREFRONT_MAX: u64 = 1000;

const SORT: SortFields<brand::Column> = SortFields(&[
    ("name", brand::Column::Name),
    ("sort_order", brand::Column::SortOrder),
    ("created_at", brand::Column::CreatedAt),
]);

fn subject(id: i64) -> Option<String> {
    Some(format!("brand:{id}"))
}

fn not_found(id: i64) -> ApiError {
    ApiError::not_found(RESOURCE, id)
}

fn slug_taken(slug: &str) -> ApiError {
    ApiError::conflict(
        "brand-slug-taken",
        format!("another brand already uses the slug {slug}"),
    )
}

fn check_description(v: &mut Validator, description: &str) {
    v.check(
        description.chars().count() <= DESCRIPTION_MAX,
        "description",
        "must be at most 10000 characters",
    );
}

/// Only absolute http(s) addresses, so no `javascript:` link reaches the storefront.
fn check_website(v: &mut Validator, website: &str) {
    let ok = website.len() <= WEBSITE_MAX
        && !website.chars().any(char::is_whitespace)
        && reqwest::Url::parse(website).is_ok_and(|url| {
            matches!(url.scheme(), "http" | "https")
                && url.host_str().is_some_and(|host| !host.is_empty())
        });
    v.check(
        ok,
        "website",
        "must be an absolute http(s) address of at most 300 characters",
    );
}

/// The key becomes part of a URL path, so it may not climb out of the media root.
fn check_logo_key(v: &mut Validator, key: &str) {
    let ok = key.len() <= LOGO_KEY_MAX
        && key.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        });
    v.check(
        ok,
        "logo_key",
        "must be 1 to 300 letters, digits, '-', '_' or '.' in '/'-separated parts",
    );
}

/// Brand pages for staff; by id unless `sort` says otherwise.
pub async fn list_brands(
    state: &AppState,
    list: &ListParams,
    filter: &BrandFilter,
) -> ApiResult<Page<BrandView>> {
    let page = list
        .spec(&SORT)?
        .fetch(
            state.db.reader(),
            store::brand_query(filter),
            brand::Column::Id,
        )
        .await?;
    Ok(page.map(|b| BrandView::new(b, &state.media)))
}

pub async fn get_brand(state: &AppState, id: i64) -> ApiResult<BrandView> {
    let brand = find_or_404::<brand::Entity>(state.db.reader(), id, RESOURCE).await?;
    Ok(BrandView::new(brand, &state.media))
}

/// Visible brands in the shop's order (`sort_order`, then name).
pub async fn storefront_brands(state: &AppState) -> ApiResult<Vec<StorefrontBrand>> {
    let brands = store::visible_brands(state.db.reader(), STOREFRONT_MAX).await?;
    Ok(brands
        .into_iter()
        .map(|b| StorefrontBrand::new(b, &state.media))
        .collect())
}

/// A visible brand by slug; a hidden one is as absent as an unknown one.
pub async fn storefront_brand(state: &AppState, slug: &str) -> ApiResult<StorefrontBrand> {
    store::find_brand_by_slug(state.db.reader(), slug)
        .await?
        .filter(|b| b.is_visible)
        .map(|b| StorefrontBrand::new(b, &state.media))
        .ok_or_else(|| ApiError::not_found(RESOURCE, slug))
}

pub async fn create_brand(
    state: &AppState,
    actor: &Actor<'_>,
    input: CreateBrand,
) -> ApiResult<BrandView> {
    let mut v = Validator::default();
    v.text(&input.name, "name", NAME_MAX);
    v.slug(&input.slug, "slug");
    check_description(&mut v, &input.description);
    if let Some(key) = &input.logo_key {
        check_logo_key(&mut v, key);
    }
    if let Some(website) = &input.website {
        check_website(&mut v, website);
    }
    v.finish()?;

    let txn = state.db.begin().await?;
    if store::find_brand_by_slug(&txn, &input.slug)
        .await?
        .is_some()
    {
        return Err(slug_taken(&input.slug));
    }
    let now = Utc::now();
    let created = brand::Entity::insert(brand::ActiveModel {
        version: Set(1),
        name: Set(input.name.trim().to_owned()),
        slug: Set(input.slug.clone()),
        description: Set(input.description),
        logo_key: Set(input.logo_key),
        website: Set(input.website),
        sort_order: Set(input.sort_order),
        is_visible: Set(input.is_visible),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec_with_returning(&txn)
    .await
    .map_err(|e| ApiError::unique_as(e, slug_taken(&input.slug)))?;
    audit(
        &txn,
        actor,
        "brand_created",
        subject(created.id),
        json!({ "slug": created.slug }),
    )
    .await?;
    txn.commit().await?;
    Ok(BrandView::new(created, &state.media))
}

pub async fn update_brand(
    state: &AppState,
    actor: &Actor<'_>,
    id: i64,
    expected: Expected,
    input: UpdateBrand,
) -> ApiResult<BrandView> {
    let mut v = Validator::default();
    v.text_if(input.name.as_ref(), "name", NAME_MAX);
    if let Some(slug) = &input.slug {
        v.slug(slug, "slug");
    }
    if let Some(description) = &input.description {
        check_description(&mut v, description);
    }
    if let Some(Some(key)) = &input.logo_key {
        check_logo_key(&mut v, key);
    }
    if let Some(Some(website)) = &input.website {
        check_website(&mut v, website);
    }
    v.finish()?;

    let txn = state.db.begin().await?;
    let current = store::find_brand(&txn, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    if let Some(slug) = &input.slug
        && *slug != current.slug
        && store::find_brand_by_slug(&txn, slug).await?.is_some()
    {
        return Err(slug_taken(slug));
    }
    let mut changes = brand::ActiveModel {
        updated_at: Set(Utc::now()),
        ..Default::default()
    };
    if let Some(name) = &input.name {
        changes.name = Set(name.trim().to_owned());
    }
    if let Some(slug) = &input.slug {
        changes.slug = Set(slug.clone());
    }
    if let Some(description) = input.description {
        changes.description = Set(description);
    }
    if let Some(logo_key) = input.logo_key {
        changes.logo_key = Set(logo_key);
    }
    if let Some(website) = input.website {
        changes.website = Set(website);
    }
    if let Some(sort_order) = input.sort_order {
        changes.sort_order = Set(sort_order);
    }
    if let Some(is_visible) = input.is_visible {
        changes.is_visible = Set(is_visible);
    }
    // A slug taken by a concurrent write in between is a 409 from the constraint.
    update_versioned(
        &txn,
        changes,
        [brand::Column::Id, brand::Column::Version],
        id,
        expected,
        RESOURCE,
    )
    .await?;
    let updated = find_or_404::<brand::Entity>(&txn, id, RESOURCE).await?;
    audit(
        &txn,
        actor,
        "brand_updated",
        subject(id),
        json!({ "from_slug": current.slug, "slug": updated.slug }),
    )
    .await?;
    txn.commit().await?;
    super::cache::catalog_changed(state).await;
    Ok(BrandView::new(updated, &state.media))
}

/// Deletes a brand no live product names. Soft-deleted products lose the link in the same
/// transaction: they are out of the shop, and restoring one means choosing a brand again.
pub async fn delete_brand(state: &AppState, actor: &Actor<'_>, id: i64) -> ApiResult<()> {
    let txn = state.db.begin().await?;
    let current = store::find_brand(&txn, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    let live = store::count_live_products_of_brand(&txn, id).await?;
    if live > 0 {
        return Err(ApiError::conflict(
            "brand-in-use",
            format!("{live} product(s) still use brand {id}; give them another brand first"),
        ));
    }
    // A product given the brand after the count makes the delete fail on the foreign key
    // (409), so nothing is left pointing at a missing brand.
    let detached = store::detach_deleted_products_from_brand(&txn, id).await?;
    delete_or_404::<brand::Entity>(&txn, id, RESOURCE).await?;
    audit(
        &txn,
        actor,
        "brand_deleted",
        subject(id),
        json!({ "slug": current.slug, "detached_deleted_products": detached }),
    )
    .await?;
    txn.commit().await?;
    super::cache::catalog_changed(state).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn website_ok(website: &str) -> bool {
        let mut v = Validator::default();
        check_website(&mut v, website);
        v.finish().is_ok()
    }

    fn logo_key_ok(key: &str) -> bool {
        let mut v = Validator::default();
        check_logo_key(&mut v, key);
        v.finish().is_ok()
    }

    #[test]
    fn websites_are_absolute_http_addresses() {
        assert!(website_ok("https://acme.example"));
        assert!(website_ok("http://acme.example/about?lang=en"));
        for bad in [
            "",
            "acme.example",
            "/about",
            "ftp://acme.example",
            "javascript:alert(1)",
            "https://",
            "https://acme.example/a b",
            " https://acme.example",
        ] {
            assert!(!website_ok(bad), "{bad:?} was accepted");
        }
        let long = format!("https://acme.example/{}", "a".repeat(WEBSITE_MAX));
        assert!(!website_ok(&long));
    }

    #[test]
    fn logo_keys_stay_inside_the_media_root() {
        assert!(logo_key_ok("brands/acme-logo.v2.png"));
        for bad in [
            "",
            "/etc/passwd",
            "brands/../secret",
            "a//b",
            "a b",
            "brands/",
        ] {
            assert!(!logo_key_ok(bad), "{bad:?} was accepted");
        }
    }
}
