//! Recommendations on a product page (R3.3), by rules taken in order until the page has
//! enough: the products staff pinned to it, those bought together with it, then the
//! newest others of its categories. Only products on sale now are recommended.

use std::collections::{BTreeSet, HashMap};

use axum::body::Bytes;
use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Func, Order, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::model::{ProductCard, ProductSummary, SetRecommendations};
use super::{load_product, store, storefront};
use crate::app::AppState;
use crate::catalog::entity::{product, product_category, product_recommendation as pin};
use crate::identity::service::{Actor, audit};
use crate::orders::entity::{order, order_line};
use crate::platform::error::Validator;
use crate::platform::{ApiError, ApiResult};

const DEFAULT_LIMIT: u64 = 8;
const MAX_LIMIT: u64 = 24;
const MAX_PINNED: usize = 24;
/// Bought-together looks at the product's most recent paid orders only, so a bestseller's
/// page costs no more than a niche product's.
const RECENT_ORDERS: u64 = 500;
const CANCELLED: &str = "cancelled";

/// Which rule recommended a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecommendationReason {
    /// Staff pinned it to the product.
    Pinned,
    /// Paid orders had both.
    BoughtTogether,
    /// It shares a category with the product.
    SameCategory,
}

/// A recommended product: a list card and the rule that chose it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Recommendation {
    pub reason: RecommendationReason,
    #[serde(flatten)]
    pub product: ProductCard,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecommendationQuery {
    /// 1 to 24; default 8.
    pub limit: Option<u64>,
}

// ---------------------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------------------

async fn pinned_ids(db: &impl ConnectionTrait, product_id: i64) -> Result<Vec<i64>, DbErr> {
    pin::Entity::find()
        .select_only()
        .column(pin::Column::RecommendedId)
        .filter(pin::Column::ProductId.eq(product_id))
        .order_by_asc(pin::Column::Position)
        .into_tuple()
        .all(db)
        .await
}

async fn replace_pins(
    db: &impl ConnectionTrait,
    product_id: i64,
    recommended_ids: &[i64],
) -> Result<(), DbErr> {
    pin::Entity::delete_many()
        .filter(pin::Column::ProductId.eq(product_id))
        .exec(db)
        .await?;
    if recommended_ids.is_empty() {
        return Ok(());
    }
    let now = Utc::now();
    pin::Entity::insert_many(
        recommended_ids
            .iter()
            .enumerate()
            .map(|(i, &id)| pin::ActiveModel {
                product_id: Set(product_id),
                recommended_id: Set(id),
                position: Set(i as i32),
                created_at: Set(now),
            }),
    )
    .exec(db)
    .await?;
    Ok(())
}

/// Products on sale now among `ids`, in the order of `ids`.
async fn visible_in_order(
    db: &impl ConnectionTrait,
    ids: &[i64],
    now: DateTime<Utc>,
) -> Result<Vec<product::Model>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut by_id: HashMap<i64, product::Model> = product::Entity::find()
        .filter(store::visible_condition(now))
        .filter(product::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
}

/// Up to `limit` products on sale now, not in `excluded`, that were in the product's most
/// recent paid, uncancelled orders, most such orders first. The seed walks the
/// `order_lines (product_id, order_id)` index newest order first and stops at
/// `RECENT_ORDERS`.
async fn bought_together(
    db: &impl ConnectionTrait,
    product_id: i64,
    excluded: &BTreeSet<i64>,
    limit: u64,
    now: DateTime<Utc>,
) -> Result<Vec<i64>, DbErr> {
    let seed = Alias::new("seed");
    let seed_orders = Query::select()
        .distinct()
        .column((seed.clone(), order_line::Column::OrderId))
        .from_as(order_line::Entity, seed.clone())
        .inner_join(
            order::Entity,
            Expr::col((order::Entity, order::Column::Id))
                .equals((seed.clone(), order_line::Column::OrderId)),
        )
        .and_where(Expr::col((seed.clone(), order_line::Column::ProductId)).eq(product_id))
        .and_where(Expr::col((order::Entity, order::Column::PaidAt)).is_not_null())
        .and_where(Expr::col((order::Entity, order::Column::Status)).ne(CANCELLED))
        .order_by((seed, order_line::Column::OrderId), Order::Desc)
        .limit(RECENT_ORDERS)
        .to_owned();
    let line = |column: order_line::Column| Expr::col((order_line::Entity, column));
    let orders_together = Expr::from(Func::count_distinct(line(order_line::Column::OrderId)));
    let query = Query::select()
        .column((order_line::Entity, order_line::Column::ProductId))
        .from(order_line::Entity)
        .inner_join(
            product::Entity,
            Expr::col((product::Entity, product::Column::Id))
                .equals((order_line::Entity, order_line::Column::ProductId)),
        )
        .and_where(line(order_line::Column::OrderId).in_subquery(seed_orders))
        .and_where(line(order_line::Column::ProductId).ne(product_id))
        .and_where(line(order_line::Column::ProductId).is_not_in(excluded.iter().copied()))
        .cond_where(store::visible_condition(now))
        .group_by_col((order_line::Entity, order_line::Column::ProductId))
        .order_by_expr(orders_together, Order::Desc)
        .order_by(
            (order_line::Entity, order_line::Column::ProductId),
            Order::Desc,
        )
        .limit(limit)
        .to_owned();
    db.query_all(&query)
        .await?
        .iter()
        .map(|row| row.try_get_by_index::<i64>(0))
        .collect()
}

/// Up to `limit` other products on sale now sharing a category with the product, newest
/// first.
async fn same_category(
    db: &impl ConnectionTrait,
    product_id: i64,
    excluded: &BTreeSet<i64>,
    limit: u64,
    now: DateTime<Utc>,
) -> Result<Vec<product::Model>, DbErr> {
    let categories = store::category_ids_of(db, product_id).await?;
    if categories.is_empty() {
        return Ok(Vec::new());
    }
    product::Entity::find()
        .filter(store::visible_condition(now))
        .filter(product::Column::Id.ne(product_id))
        .filter(product::Column::Id.is_not_in(excluded.iter().copied()))
        .filter(
            product::Column::Id.in_subquery(
                Query::select()
                    .column(product_category::Column::ProductId)
                    .from(product_category::Entity)
                    .and_where(product_category::Column::CategoryId.is_in(categories))
                    .to_owned(),
            ),
        )
        .order_by_desc(product::Column::CreatedAt)
        .order_by_desc(product::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

// ---------------------------------------------------------------------------------------
// Storefront
// ---------------------------------------------------------------------------------------

/// Up to `limit` recommendations for a product on sale, rule by rule.
async fn recommend(
    state: &AppState,
    db: &impl ConnectionTrait,
    product_id: i64,
    limit: u64,
    now: DateTime<Utc>,
) -> ApiResult<Vec<Recommendation>> {
    let mut chosen: Vec<(RecommendationReason, product::Model)> = Vec::new();
    let mut excluded = BTreeSet::from([product_id]);
    let room = |chosen: &Vec<_>| limit.saturating_sub(chosen.len() as u64);

    let pinned = pinned_ids(db, product_id).await?;
    for p in visible_in_order(db, &pinned, now).await? {
        if room(&chosen) > 0 && excluded.insert(p.id) {
            chosen.push((RecommendationReason::Pinned, p));
        }
    }
    if room(&chosen) > 0 {
        let ids = bought_together(db, product_id, &excluded, room(&chosen), now).await?;
        for p in visible_in_order(db, &ids, now).await? {
            excluded.insert(p.id);
            chosen.push((RecommendationReason::BoughtTogether, p));
        }
    }
    if room(&chosen) > 0 {
        for p in same_category(db, product_id, &excluded, room(&chosen), now).await? {
            chosen.push((RecommendationReason::SameCategory, p));
        }
    }
    let (reasons, products): (Vec<_>, Vec<_>) = chosen.into_iter().unzip();
    let cards = storefront::cards(state, db, products).await?;
    Ok(reasons
        .into_iter()
        .zip(cards)
        .map(|(reason, product)| Recommendation { reason, product })
        .collect())
}

/// A cache entry: until when (Unix seconds) it holds, then the JSON, or nothing when the
/// product is not on sale.
async fn load_entry(state: &AppState, slug: &str, limit: u64) -> ApiResult<Vec<u8>> {
    let db = state.db.reader();
    let now = Utc::now();
    let until = storefront::next_window_change(db, now)
        .await?
        .map_or(i64::MAX, |t| t.timestamp());
    let mut entry = until.to_be_bytes().to_vec();
    let on_sale = store::live_product_by_slug(db, slug)
        .await?
        .filter(|p| store::visible(&p.status, p.publish_at, p.unpublish_at, false, now));
    if let Some(p) = on_sale {
        let recommendations = recommend(state, db, p.id, limit, now).await?;
        serde_json::to_writer(&mut entry, &recommendations).map_err(ApiError::internal)?;
    }
    Ok(entry)
}

/// The recommendations of the product on sale under `slug` as JSON, from the cache when
/// on. Entries last `catalog.list_ttl_secs` (orders change bought-together without
/// telling the catalog) and no longer than the next listing window change; catalog writes
/// drop them all.
pub async fn storefront_json(
    state: &AppState,
    slug: &str,
    query: &RecommendationQuery,
) -> ApiResult<Bytes> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    let mut v = Validator::default();
    v.check((1..=MAX_LIMIT).contains(&limit), "limit", "must be 1 to 24");
    v.finish()?;
    let missing = || ApiError::not_found("product", slug);
    let mut v = Validator::default();
    v.slug(slug, "slug");
    if v.finish().is_err() {
        return Err(missing());
    }
    let entry = match &state.catalog.recommendations {
        Some(cache) => {
            let key = format!("{slug}/{limit}");
            let kv = state.kv.as_ref();
            let mut entry = None;
            for _ in 0..2 {
                let cached = cache
                    .get_or_load(kv, &key, || async {
                        Ok(Some(load_entry(state, slug, limit).await?))
                    })
                    .await?
                    .ok_or_else(|| ApiError::internal("recommendations were cached as missing"))?;
                if fresh(&cached, Utc::now()) {
                    entry = Some(cached);
                    break;
                }
                // A listing window opened or closed since: any entry may be wrong.
                cache.invalidate_all(kv).await;
            }
            match entry {
                Some(entry) => entry,
                None => Bytes::from(load_entry(state, slug, limit).await?),
            }
        }
        None => Bytes::from(load_entry(state, slug, limit).await?),
    };
    match entry.slice(8..) {
        json if json.is_empty() => Err(missing()),
        json => Ok(json),
    }
}

fn fresh(entry: &[u8], now: DateTime<Utc>) -> bool {
    entry.len() >= 8
        && entry[0..8]
            .try_into()
            .is_ok_and(|until| now.timestamp() < i64::from_be_bytes(until))
}

// ---------------------------------------------------------------------------------------
// Staff
// ---------------------------------------------------------------------------------------

/// The products pinned to a product's recommendations, in order, drafts included.
pub async fn pinned(state: &AppState, product_id: i64) -> ApiResult<Vec<ProductSummary>> {
    let db = state.db.reader();
    load_product(db, product_id).await?;
    let ids = pinned_ids(db, product_id).await?;
    super::summaries_in_order(db, ids).await
}

/// Replaces the products pinned to a product's recommendations; they come first on its
/// page, in this order, while on sale.
pub async fn set_pinned(
    state: &AppState,
    actor: &Actor<'_>,
    product_id: i64,
    input: SetRecommendations,
) -> ApiResult<Vec<ProductSummary>> {
    let mut seen = BTreeSet::new();
    let ids: Vec<i64> = input
        .product_ids
        .into_iter()
        .filter(|id| seen.insert(*id))
        .collect();
    let mut v = Validator::default();
    v.check(
        ids.len() <= MAX_PINNED,
        "product_ids",
        "at most 24 products",
    );
    v.check(
        !ids.contains(&product_id),
        "product_ids",
        "a product cannot recommend itself",
    );
    v.finish()?;
    let txn = state.db.begin().await?;
    let product = load_product(&txn, product_id).await?;
    let found = product::Entity::find()
        .filter(product::Column::Id.is_in(ids.iter().copied()))
        .filter(product::Column::DeletedAt.is_null())
        .count(&txn)
        .await?;
    if found as usize != ids.len() {
        return Err(ApiError::invalid(
            "product_ids",
            "names a product that does not exist",
        ));
    }
    replace_pins(&txn, product_id, &ids).await?;
    audit(
        &txn,
        actor,
        "product_recommendations_set",
        Some(format!("product:{product_id}")),
        json!({ "product_ids": ids }),
    )
    .await?;
    txn.commit().await?;
    super::after_write(state, &product).await;
    pinned(state, product_id).await
}
