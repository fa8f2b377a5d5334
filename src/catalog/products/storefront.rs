//! The storefront's product reads: the filtered, sorted, searchable list and the product
//! page, which is served from the hot-read cache.

use std::collections::{HashMap, HashSet};

use axum::body::Bytes;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Order, Query, SimpleExpr};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::Value;

use super::model::{
    BrandLink, ProductCard, ProductKind, ProductSort, RatingSummary, StorefrontAttribute,
    StorefrontAxis, StorefrontMedia, StorefrontProduct, StorefrontProductQuery, StorefrontSku,
};
use super::{skus, store};
use crate::app::AppState;
use crate::catalog::entity::{
    attribute_definition, attribute_value, category, product, product_category, review,
};
use crate::catalog::model::{AttributeScope, CategoryLink};
use crate::catalog::store as catalog_store;
use crate::platform::error::Validator;
use crate::platform::list::{Page, contains};
use crate::platform::{ApiError, ApiResult};

const DEFAULT_PER_PAGE: u64 = 20;
const MAX_PER_PAGE: u64 = 100;
const MAX_ATTRIBUTE_FILTERS: usize = 10;
const MAX_QUERY_CHARS: usize = 200;

/// Products that can be bought now: back- or pre-orderable, a plain SKU always available
/// or with units available (on hand less reserved), or a bundle SKU whose every part is
/// active and available for its quantity.
pub(crate) const IN_STOCK_SQL: &str = "(products.allow_backorder OR products.allow_preorder OR EXISTS (\
    SELECT 1 FROM skus s WHERE s.product_id = products.id AND s.is_active AND (\
      (NOT products.is_bundle AND (s.always_available OR s.stock - s.reserved > 0)) OR \
      (products.is_bundle \
        AND EXISTS (SELECT 1 FROM bundle_items b0 WHERE b0.bundle_sku_id = s.id) \
        AND NOT EXISTS (SELECT 1 FROM bundle_items b JOIN skus p ON p.id = b.part_sku_id \
          WHERE b.bundle_sku_id = s.id AND (NOT p.is_active OR \
            (NOT p.always_available AND p.stock - p.reserved < b.quantity)))))))";

/// `code:value|value,code:value` → code and the JSON encodings a stored value may have.
fn parse_attribute_filters(raw: &str) -> ApiResult<Vec<(String, Vec<String>)>> {
    let mut filters = Vec::new();
    for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((code, values)) = part.split_once(':') else {
            return Err(ApiError::invalid(
                "attributes",
                "filters are code:value pairs separated by commas",
            ));
        };
        let code = code.trim();
        if code.is_empty() || !code.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(ApiError::invalid(
                "attributes",
                format!("{code:?} is not an attribute code"),
            ));
        }
        let mut encoded = Vec::new();
        for value in values.split('|').map(str::trim).filter(|v| !v.is_empty()) {
            encoded.push(Value::from(value).to_string());
            if value.parse::<f64>().is_ok() || value == "true" || value == "false" {
                encoded.push(value.to_owned());
            }
        }
        if encoded.is_empty() {
            return Err(ApiError::invalid(
                "attributes",
                format!("{code} needs a value"),
            ));
        }
        filters.push((code.to_owned(), encoded));
    }
    if filters.len() > MAX_ATTRIBUTE_FILTERS {
        return Err(ApiError::invalid(
            "attributes",
            "at most 10 attribute filters",
        ));
    }
    Ok(filters)
}

/// Products having one of `values` for attribute `code`, on the product or on an active SKU.
fn attribute_condition(code: &str, values: &[String]) -> Condition {
    let matching = |scope: AttributeScope| {
        Query::select()
            .column((attribute_value::Entity, attribute_value::Column::OwnerId))
            .from(attribute_value::Entity)
            .inner_join(
                attribute_definition::Entity,
                Expr::col((
                    attribute_definition::Entity,
                    attribute_definition::Column::Id,
                ))
                .equals((
                    attribute_value::Entity,
                    attribute_value::Column::DefinitionId,
                )),
            )
            .and_where(
                Expr::col((
                    attribute_definition::Entity,
                    attribute_definition::Column::Scope,
                ))
                .eq(scope.as_str()),
            )
            .and_where(
                Expr::col((
                    attribute_definition::Entity,
                    attribute_definition::Column::Code,
                ))
                .eq(code),
            )
            .and_where(
                Expr::col((attribute_value::Entity, attribute_value::Column::Value))
                    .is_in(values.iter().cloned()),
            )
            .to_owned()
    };
    let sku_owners = Query::select()
        .column(crate::catalog::entity::sku::Column::ProductId)
        .from(crate::catalog::entity::sku::Entity)
        .and_where(crate::catalog::entity::sku::Column::IsActive.eq(true))
        .and_where(
            crate::catalog::entity::sku::Column::Id.in_subquery(matching(AttributeScope::SkuAxis)),
        )
        .to_owned();
    Condition::any()
        .add(product::Column::Id.in_subquery(matching(AttributeScope::Product)))
        .add(product::Column::Id.in_subquery(sku_owners))
}

/// The category and every visible category below it; `None` when it is not visible.
async fn visible_subtree(db: &impl ConnectionTrait, slug: &str) -> ApiResult<Option<Vec<i64>>> {
    let all = catalog_store::all_categories(db).await?;
    let by_id: HashMap<i64, &category::Model> = all.iter().map(|c| (c.id, c)).collect();
    let Some(root) = all.iter().find(|c| c.slug == slug) else {
        return Ok(None);
    };
    // Hidden when it or any ancestor is hidden.
    let mut cursor = Some(root);
    let mut steps = 0;
    while let Some(c) = cursor {
        if !c.is_visible || steps > all.len() {
            return Ok(None);
        }
        cursor = c.parent_id.and_then(|p| by_id.get(&p).copied());
        steps += 1;
    }
    let mut ids = vec![root.id];
    let mut i = 0;
    while i < ids.len() {
        let parent = ids[i];
        ids.extend(
            all.iter()
                .filter(|c| c.parent_id == Some(parent) && c.is_visible)
                .map(|c| c.id),
        );
        i += 1;
    }
    Ok(Some(ids))
}

fn search_condition(backend: DatabaseBackend, q: &str) -> Condition {
    match backend {
        DatabaseBackend::Postgres => Condition::all().add(Expr::cust_with_values(
            "to_tsvector('simple', products.search_text) @@ plainto_tsquery('simple', $1)",
            [q.to_lowercase()],
        )),
        // SQLite: every word appears somewhere in the search text.
        _ => q
            .split_whitespace()
            .take(10)
            .fold(Condition::all(), |cond, word| {
                cond.add(Expr::col(product::Column::SearchText).like(contains(word)))
            }),
    }
}

fn rating_average(count: i32, sum: i32) -> Option<f64> {
    (count > 0).then(|| (f64::from(sum) / f64::from(count) * 100.0).round() / 100.0)
}

/// The storefront product list as JSON, from the list cache when on. An entry also holds
/// the next moment any listing window opens or closes, and is reloaded from then on, so
/// cached lists honour windows to the second like product pages do.
pub async fn list_json(state: &AppState, query: &StorefrontProductQuery) -> ApiResult<Bytes> {
    check_list_query(query)?;
    let Some(cache) = &state.catalog.lists else {
        return Ok(Bytes::from(load_list(state, query).await?));
    };
    let key = list_key(query);
    let kv = state.kv.as_ref();
    for _ in 0..2 {
        let entry = cache
            .get_or_load(kv, &key, || async {
                Ok(Some(load_list(state, query).await?))
            })
            .await?
            .ok_or_else(|| ApiError::internal("a product list was cached as missing"))?;
        if entry.len() >= 8 {
            let until = i64::from_be_bytes(entry[0..8].try_into().unwrap_or([0; 8]));
            if Utc::now().timestamp() < until {
                return Ok(entry.slice(8..));
            }
        }
        // A window opened or closed since: every cached list may be wrong.
        cache.invalidate_all(kv).await;
    }
    let entry = load_list(state, query).await?;
    Ok(Bytes::from(entry).slice(8..))
}

/// One cache key per distinct query (normalised), hashed to a fixed length.
fn list_key(query: &StorefrontProductQuery) -> String {
    use sha2::{Digest, Sha256};
    let q = query
        .q
        .as_deref()
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    let canonical = format!(
        "{q}\u{1f}{:?}\u{1f}{:?}\u{1f}{:?}\u{1f}{:?}\u{1f}{:?}\u{1f}{}\u{1f}{:?}\u{1f}{:?}\u{1f}{:?}",
        query.category,
        query.brand,
        query.min_price,
        query.max_price,
        query.attributes,
        query.in_stock,
        query.sort,
        query.page.unwrap_or(1),
        query.per_page.unwrap_or(DEFAULT_PER_PAGE),
    );
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// The list JSON behind 8 bytes: until when (Unix seconds) it can be served.
async fn load_list(state: &AppState, query: &StorefrontProductQuery) -> ApiResult<Vec<u8>> {
    let now = Utc::now();
    let page = list(state, query).await?;
    let until = next_window_change(state.db.reader(), now)
        .await?
        .map_or(i64::MAX, |t| t.timestamp());
    let mut bytes = until.to_be_bytes().to_vec();
    serde_json::to_writer(&mut bytes, &page).map_err(ApiError::internal)?;
    Ok(bytes)
}

/// The next moment a listed product's window opens or closes.
pub(super) async fn next_window_change(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
) -> ApiResult<Option<DateTime<Utc>>> {
    let mut next: Option<DateTime<Utc>> = None;
    for column in [product::Column::PublishAt, product::Column::UnpublishAt] {
        let at: Option<DateTime<Utc>> = product::Entity::find()
            .select_only()
            .column_as(column.min(), "at")
            .filter(product::Column::Status.eq(super::model::ProductStatus::Listed.as_str()))
            .filter(product::Column::DeletedAt.is_null())
            .filter(column.gt(now))
            .into_tuple::<Option<DateTime<Utc>>>()
            .one(db)
            .await?
            .flatten();
        next = match (next, at) {
            (Some(a), Some(b)) => Some(std::cmp::min(a, b)),
            (a, b) => a.or(b),
        };
    }
    Ok(next)
}

fn check_list_query(query: &StorefrontProductQuery) -> ApiResult<()> {
    let mut v = Validator::default();
    let per_page = query.per_page.unwrap_or(DEFAULT_PER_PAGE);
    let page = query.page.unwrap_or(1);
    v.check(
        (1..=MAX_PER_PAGE).contains(&per_page),
        "per_page",
        "must be 1 to 100",
    );
    v.check(page >= 1, "page", "must be at least 1");
    for (value, field) in [
        (query.min_price, "min_price"),
        (query.max_price, "max_price"),
    ] {
        v.check(value.is_none_or(|p| p >= 0), field, "must not be negative");
    }
    let q = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    v.check(
        q.is_none_or(|q| q.chars().count() <= MAX_QUERY_CHARS),
        "q",
        "must be at most 200 characters",
    );
    v.check(
        query.attributes.as_ref().is_none_or(|a| a.len() <= 1000),
        "attributes",
        "must be at most 1000 characters",
    );
    v.finish()?;
    if let Some(raw) = &query.attributes {
        parse_attribute_filters(raw)?;
    }
    Ok(())
}

/// The storefront product list: only listed products inside their window.
async fn list(state: &AppState, query: &StorefrontProductQuery) -> ApiResult<Page<ProductCard>> {
    let per_page = query.per_page.unwrap_or(DEFAULT_PER_PAGE);
    let page = query.page.unwrap_or(1);
    let q = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let filters = match &query.attributes {
        Some(raw) => parse_attribute_filters(raw)?,
        None => Vec::new(),
    };
    let db = state.db.reader();
    let empty = || Page {
        items: Vec::new(),
        total: 0,
        page,
        per_page,
    };
    let now = Utc::now();
    let mut select = product::Entity::find().filter(store::visible_condition(now));
    if let Some(slug) = &query.category {
        let Some(ids) = visible_subtree(db, slug).await? else {
            return Ok(empty());
        };
        select = select.filter(
            product::Column::Id.in_subquery(
                Query::select()
                    .column(product_category::Column::ProductId)
                    .from(product_category::Entity)
                    .and_where(product_category::Column::CategoryId.is_in(ids))
                    .to_owned(),
            ),
        );
    }
    if let Some(slug) = &query.brand {
        match catalog_store::find_brand_by_slug(db, slug).await? {
            Some(brand) if brand.is_visible => {
                select = select.filter(product::Column::BrandId.eq(brand.id));
            }
            _ => return Ok(empty()),
        }
    }
    if let Some(min) = query.min_price {
        select = select.filter(product::Column::MinPrice.gte(min));
    }
    if let Some(max) = query.max_price {
        select = select.filter(product::Column::MinPrice.lte(max));
    }
    for (code, values) in &filters {
        select = select.filter(attribute_condition(code, values));
    }
    if query.in_stock {
        select = select.filter(Expr::cust(IN_STOCK_SQL));
    }
    let backend = db.get_database_backend();
    if let Some(q) = q {
        select = select.filter(search_condition(backend, q));
    }
    let total = select.clone().count(db).await?;
    let sort = query.sort.unwrap_or(if q.is_some() {
        ProductSort::Relevance
    } else {
        ProductSort::Newest
    });
    select = match sort {
        ProductSort::Newest => select.order_by_desc(product::Column::CreatedAt),
        // A listed product always has an active SKU, hence a price.
        ProductSort::Price => select.order_by_asc(product::Column::MinPrice),
        ProductSort::PriceDesc => select.order_by_desc(product::Column::MinPrice),
        ProductSort::Name => select.order_by_asc(product::Column::Title),
        ProductSort::Rating => select
            .order_by(
                Expr::cust(
                    "CASE WHEN products.rating_count = 0 THEN 0 \
                     ELSE products.rating_sum * 1.0 / products.rating_count END",
                ),
                Order::Desc,
            )
            .order_by_desc(product::Column::RatingCount),
        ProductSort::Relevance => match (backend, q) {
            (DatabaseBackend::Postgres, Some(q)) => select.order_by(
                SimpleExpr::from(Expr::cust_with_values(
                    "ts_rank(to_tsvector('simple', products.search_text), plainto_tsquery('simple', $1))",
                    [q.to_lowercase()],
                )),
                Order::Desc,
            ),
            // SQLite: title matches first.
            (_, Some(q)) => select.order_by(
                Expr::cust_with_values(
                    "CASE WHEN lower(products.title) LIKE ? THEN 0 ELSE 1 END",
                    [format!("%{}%", q.to_lowercase())],
                ),
                Order::Asc,
            ),
            (_, None) => select.order_by_desc(product::Column::CreatedAt),
        },
    };
    let products = select
        .order_by_desc(product::Column::Id)
        .offset((page - 1) * per_page)
        .limit(per_page)
        .all(db)
        .await?;
    let items = cards(state, db, products).await?;
    Ok(Page {
        items,
        total,
        page,
        per_page,
    })
}

/// The products a visible category recommends that are on sale now, in its order.
pub async fn recommended(state: &AppState, slug: &str) -> ApiResult<Vec<ProductCard>> {
    let db = state.db.reader();
    let Some(subtree) = visible_subtree(db, slug).await? else {
        return Err(ApiError::not_found("category", slug));
    };
    let ids = store::recommendations(db, subtree[0]).await?;
    let mut by_id: HashMap<i64, product::Model> = product::Entity::find()
        .filter(store::visible_condition(Utc::now()))
        .filter(product::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    let products = ids.iter().filter_map(|id| by_id.remove(id)).collect();
    cards(state, db, products).await
}

/// List cards for products, with their brand, first image and availability in three
/// queries whatever the page size.
pub(super) async fn cards(
    state: &AppState,
    db: &impl ConnectionTrait,
    products: Vec<product::Model>,
) -> ApiResult<Vec<ProductCard>> {
    let ids: Vec<i64> = products.iter().map(|p| p.id).collect();
    let brand_ids: Vec<i64> = products.iter().filter_map(|p| p.brand_id).collect();
    let brands = store::brands_by_id(db, &brand_ids).await?;
    let images = store::first_images(db, &ids).await?;
    let in_stock: HashSet<i64> = if ids.is_empty() {
        HashSet::new()
    } else {
        product::Entity::find()
            .select_only()
            .column(product::Column::Id)
            .filter(product::Column::Id.is_in(ids.iter().copied()))
            .filter(Expr::cust(IN_STOCK_SQL))
            .into_tuple::<i64>()
            .all(db)
            .await?
            .into_iter()
            .collect()
    };
    Ok(products
        .into_iter()
        .map(|p| ProductCard {
            brand: p
                .brand_id
                .and_then(|id| brands.get(&id))
                .filter(|b| b.is_visible)
                .map(|b| BrandLink {
                    id: b.id,
                    name: b.name.clone(),
                    slug: b.slug.clone(),
                }),
            image_url: images.get(&p.id).map(|key| state.media.url(key)),
            rating_average: rating_average(p.rating_count, p.rating_sum),
            in_stock: in_stock.contains(&p.id),
            kind: ProductKind::parse(&p.kind),
            rating_count: p.rating_count,
            price: p.min_price,
            id: p.id,
            slug: p.slug,
            title: p.title,
        })
        .collect())
}

/// A product's rating summary: count and average from the tally kept on the product,
/// reviews per star counted from the reviews.
pub(crate) async fn rating_summary(
    db: &impl ConnectionTrait,
    p: &product::Model,
) -> ApiResult<RatingSummary> {
    let mut rating = RatingSummary {
        count: p.rating_count,
        average: rating_average(p.rating_count, p.rating_sum),
        distribution: [0; 5],
    };
    let stars: Vec<(i32, i64)> = review::Entity::find()
        .select_only()
        .column(review::Column::Rating)
        .column_as(Expr::col(review::Column::Id).count(), "n")
        .filter(review::Column::ProductId.eq(p.id))
        .group_by(review::Column::Rating)
        .into_tuple()
        .all(db)
        .await?;
    for (star, n) in stars {
        if (1..=5).contains(&star) {
            rating.distribution[(star - 1) as usize] = n as i32;
        }
    }
    Ok(rating)
}

/// The product page as the storefront shows it, built from the database.
async fn build_page(
    state: &AppState,
    db: &impl ConnectionTrait,
    p: product::Model,
) -> ApiResult<StorefrontProduct> {
    let brand = match p.brand_id {
        Some(id) => catalog_store::find_brand(db, id)
            .await?
            .filter(|b| b.is_visible),
        None => None,
    };
    // Categories the storefront can show, and the path to the first of them.
    let mut categories = Vec::new();
    let mut breadcrumbs = Vec::new();
    for category_id in store::category_ids_of(db, p.id).await? {
        let path = catalog_store::category_with_ancestors(db, category_id).await?;
        if path.iter().any(|c| !c.is_visible) {
            continue;
        }
        if breadcrumbs.is_empty() {
            breadcrumbs = path.iter().rev().map(CategoryLink::from).collect();
        }
        if let Some(own) = path.first() {
            categories.push(CategoryLink::from(own));
        }
    }
    let (attribute_defs, axis_defs) = match p.product_type_id {
        Some(type_id) => {
            let all = catalog_store::attribute_definitions(db, None, Some(type_id)).await?;
            let (attrs, axes): (Vec<_>, Vec<_>) = all
                .into_iter()
                .filter(|d| d.scope != AttributeScope::Review.as_str())
                .partition(|d| d.scope == AttributeScope::Product.as_str());
            (attrs, axes)
        }
        None => (Vec::new(), Vec::new()),
    };
    let ids: Vec<i64> = attribute_defs.iter().map(|d| d.id).collect();
    let values = catalog_store::values_of(db, &ids, p.id).await?;
    let attributes = attribute_defs
        .iter()
        .filter_map(|d| {
            values
                .iter()
                .find(|v| v.definition_id == d.id)
                .map(|v| StorefrontAttribute {
                    code: d.code.clone(),
                    name: d.name.clone(),
                    value: serde_json::from_str(&v.value).unwrap_or(Value::Null),
                })
        })
        .collect();
    let sku_views = skus::sku_views(db, store::skus_of(db, p.id).await?).await?;
    let active: Vec<_> = sku_views.into_iter().filter(|s| s.is_active).collect();
    let orderable = p.allow_backorder || p.allow_preorder;
    let axes = axis_defs
        .iter()
        .map(|d| {
            let options: Vec<String> = serde_json::from_str(&d.options).unwrap_or_default();
            StorefrontAxis {
                code: d.code.clone(),
                name: d.name.clone(),
                options: options
                    .into_iter()
                    .filter(|o| {
                        active
                            .iter()
                            .any(|s| s.axes.get(&d.code).and_then(Value::as_str) == Some(o))
                    })
                    .collect(),
            }
        })
        .collect();
    let skus: Vec<StorefrontSku> = active
        .into_iter()
        .map(|s| StorefrontSku {
            available: orderable || s.always_available || s.available > 0,
            id: s.id,
            code: s.code,
            price: s.price,
            compare_at_price: s.compare_at_price,
            axes: s.axes,
            stock: s.available,
            parts: s.parts,
        })
        .collect();
    let media = store::media_of(db, p.id)
        .await?
        .into_iter()
        .map(|m| StorefrontMedia {
            url: state.media.url(&m.key),
            kind: m.kind,
            content_type: m.content_type,
            alt: m.alt,
        })
        .collect();
    let rating = rating_summary(db, &p).await?;
    Ok(StorefrontProduct {
        in_stock: skus.iter().any(|s| s.available),
        brand: brand.map(|b| BrandLink {
            id: b.id,
            name: b.name,
            slug: b.slug,
        }),
        kind: ProductKind::parse(&p.kind),
        id: p.id,
        slug: p.slug,
        title: p.title,
        description: p.description,
        is_bundle: p.is_bundle,
        allow_preorder: p.allow_preorder,
        allow_backorder: p.allow_backorder,
        meta_title: p.meta_title,
        meta_description: p.meta_description,
        categories,
        breadcrumbs,
        attributes,
        axes,
        skus,
        media,
        rating,
    })
}

/// A cached product page: the listing window (Unix seconds, `i64::MIN`/`MAX` when open)
/// ahead of the JSON, so a hit decides visibility to the second without parsing it.
struct CachedPage;

impl CachedPage {
    const HEADER: usize = 16;

    fn encode(
        publish_at: Option<DateTime<Utc>>,
        unpublish_at: Option<DateTime<Utc>>,
        json: &[u8],
    ) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(Self::HEADER + json.len());
        bytes.extend_from_slice(&publish_at.map_or(i64::MIN, |t| t.timestamp()).to_be_bytes());
        bytes.extend_from_slice(
            &unpublish_at
                .map_or(i64::MAX, |t| t.timestamp())
                .to_be_bytes(),
        );
        bytes.extend_from_slice(json);
        bytes
    }

    /// The JSON when the window includes `now`.
    fn visible_at(bytes: &[u8], now: DateTime<Utc>) -> Option<&[u8]> {
        if bytes.len() < Self::HEADER {
            return None;
        }
        let from = i64::from_be_bytes(bytes[0..8].try_into().ok()?);
        let until = i64::from_be_bytes(bytes[8..16].try_into().ok()?);
        let now = now.timestamp();
        (from <= now && now < until).then(|| &bytes[Self::HEADER..])
    }
}

/// Loads a listed, live product page for the cache: the window is checked on every read,
/// so a page cached before its `publish_at` is stored and shown from that second on.
async fn load_page(state: &AppState, slug: &str) -> ApiResult<Option<Vec<u8>>> {
    let db = state.db.reader();
    let Some(product) = store::live_product_by_slug(db, slug).await? else {
        return Ok(None);
    };
    if product.status != super::model::ProductStatus::Listed.as_str() {
        return Ok(None);
    }
    let (publish_at, unpublish_at) = (product.publish_at, product.unpublish_at);
    let page = build_page(state, db, product).await?;
    let json = serde_json::to_vec(&page).map_err(ApiError::internal)?;
    Ok(Some(CachedPage::encode(publish_at, unpublish_at, &json)))
}

/// The product page's JSON, or 404 when no listed product with `slug` shows now.
pub async fn product_page(state: &AppState, slug: &str) -> ApiResult<Bytes> {
    let missing = || ApiError::not_found("product", slug);
    // Not a slug at all: no need to ask the cache or the database.
    let mut v = Validator::default();
    v.slug(slug, "slug");
    if v.finish().is_err() {
        return Err(missing());
    }
    let entry = match &state.catalog.pages {
        Some(cache) => {
            cache
                .get_or_load(state.kv.as_ref(), slug, || load_page(state, slug))
                .await?
        }
        None => load_page(state, slug).await?.map(Bytes::from),
    };
    let entry = entry.ok_or_else(missing)?;
    let visible = CachedPage::visible_at(&entry, Utc::now()).is_some();
    if visible {
        Ok(entry.slice(CachedPage::HEADER..))
    } else {
        Err(missing())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_pages_carry_their_window() {
        let now = Utc::now();
        let open = CachedPage::encode(None, None, b"{}");
        assert_eq!(CachedPage::visible_at(&open, now), Some(&b"{}"[..]));
        let later = CachedPage::encode(Some(now + chrono::Duration::seconds(1)), None, b"{}");
        assert_eq!(CachedPage::visible_at(&later, now), None);
        let ended = CachedPage::encode(None, Some(now), b"{}");
        assert_eq!(CachedPage::visible_at(&ended, now), None);
    }

    #[test]
    fn attribute_filters_match_text_and_number_encodings() {
        let filters = parse_attribute_filters("color:red|blue, size:42").unwrap();
        assert_eq!(filters[0].0, "color");
        assert_eq!(filters[0].1, vec!["\"red\"", "\"blue\""]);
        assert_eq!(filters[1].1, vec!["\"42\"", "42"]);
        assert!(parse_attribute_filters("color").is_err());
        assert!(parse_attribute_filters("co lor:red").is_err());
    }
}
