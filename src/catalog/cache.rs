//! The storefront's hot-read caches: product pages by slug (behind a Bloom filter of the
//! live slugs, so a flood of unknown slugs never reaches the database) and product list
//! pages by query, and product recommendations. Every catalog write tells them what
//! changed, after it commits.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::products::store;
use crate::app::AppState;
use crate::config::CatalogConfig;
use crate::jobs::{Job, JobContext, JobError, Registry};
use crate::platform::ApiError;
use crate::platform::hotcache::{BloomBuild, HotCache, HotCacheSettings};

/// The caches, or none when `catalog.hot_cache` is off.
pub struct CatalogCaches {
    pub pages: Option<HotCache<ApiError>>,
    pub lists: Option<HotCache<ApiError>>,
    /// By slug and limit; like lists, as orders change what was bought together without
    /// telling the catalog.
    pub recommendations: Option<HotCache<ApiError>>,
}

impl CatalogCaches {
    pub fn from_config(config: &CatalogConfig) -> Self {
        if !config.hot_cache {
            return Self {
                pages: None,
                lists: None,
                recommendations: None,
            };
        }
        let ttl = Duration::from_secs(config.cache_ttl_secs);
        let jitter = Duration::from_secs(config.cache_jitter_secs);
        let pages = HotCacheSettings {
            ttl,
            jitter,
            miss_ttl: Duration::from_secs(config.miss_ttl_secs),
            expected_keys: config.expected_products.max(1000),
            false_positive_rate: 0.01,
        };
        // List pages have no filter (any query is a fine key): it is never built for them.
        let lists = HotCacheSettings {
            ttl: Duration::from_secs(config.list_ttl_secs),
            jitter: Duration::from_secs(config.list_ttl_secs / 5),
            miss_ttl: Duration::from_secs(config.list_ttl_secs),
            expected_keys: 1000,
            false_positive_rate: 0.01,
        };
        Self {
            pages: Some(HotCache::new("product", pages)),
            lists: Some(HotCache::new("product_list", lists.clone())),
            recommendations: Some(HotCache::new("product_recommendations", lists)),
        }
    }
}

/// After a write to a product (or to what its page shows, such as a bundle's parts).
pub async fn product_changed(state: &AppState, slug: &str) {
    let kv = state.kv.as_ref();
    if let Some(pages) = &state.catalog.pages {
        pages.invalidate(kv, slug).await;
    }
    // Any product may be recommended on any other's page.
    for cache in [&state.catalog.lists, &state.catalog.recommendations]
        .into_iter()
        .flatten()
    {
        cache.invalidate_all(kv).await;
    }
}

/// After a product takes a slug (created, renamed, restored or copied): the filter must
/// let it through, and any cached miss for it goes.
pub async fn slug_added(state: &AppState, slug: &str) {
    if let Some(pages) = &state.catalog.pages {
        pages.add(state.kv.as_ref(), slug).await;
    }
}

/// After a write that many pages show: a category (breadcrumbs), a brand, a product type
/// or attribute definition (names).
pub async fn catalog_changed(state: &AppState) {
    let kv = state.kv.as_ref();
    for cache in [
        &state.catalog.pages,
        &state.catalog.lists,
        &state.catalog.recommendations,
    ]
    .into_iter()
    .flatten()
    {
        cache.invalidate_all(kv).await;
    }
}

async fn live_slugs(state: &AppState) -> anyhow::Result<Vec<String>> {
    Ok(store::all_live_slugs(state.db.reader()).await?)
}

/// Builds the slug filter unless one exists (another instance may be building it); until
/// one exists nothing is rejected, so a failure costs protection, never correctness.
pub async fn ensure_slug_filter(state: &AppState) {
    let Some(pages) = &state.catalog.pages else {
        return;
    };
    match pages
        .ensure_bloom(state.kv.as_ref(), || live_slugs(state))
        .await
    {
        Ok(BloomBuild::Built { keys }) => tracing::info!(keys, "product slug filter built"),
        Ok(_) => {}
        Err(err) => tracing::warn!(error = %err, "cannot build the product slug filter"),
    }
}

/// Rebuilds the slug filter from the database now: on schedule, and after bulk loads that
/// bypass the per-product bookkeeping.
pub async fn rebuild_slug_filter(state: &AppState) -> anyhow::Result<()> {
    let Some(pages) = &state.catalog.pages else {
        return Ok(());
    };
    let built = pages
        .rebuild(state.kv.as_ref(), || live_slugs(state))
        .await?;
    tracing::info!(?built, "product slug filter rebuilt");
    Ok(())
}

/// The schedule's name, also its key in `jobs.schedules`.
pub const REBUILD_SLUG_FILTER: &str = "rebuild_product_slug_filter";

/// Rebuilds the slug filter from the database, so deleted and renamed slugs drop out
/// (a filter only ever gains keys between builds).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct RebuildSlugFilter;

impl Job for RebuildSlugFilter {
    const NAME: &'static str = REBUILD_SLUG_FILTER;

    async fn run(self, state: AppState, _: JobContext) -> Result<(), JobError> {
        rebuild_slug_filter(&state)
            .await
            .map_err(|e| JobError::new(format!("{e:#}")))
    }
}

pub fn register(registry: &mut Registry) {
    registry.schedule(REBUILD_SLUG_FILTER, "0 17 * * * *", || RebuildSlugFilter);
}
