//! Queries of products, SKUs, bundles, media and recommendations.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, ExprTrait, Func, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Select,
};

use super::model::{ProductFilter, ProductStatus};
use crate::catalog::entity::{
    brand, bundle_item, category_recommendation, product, product_category, product_media, sku,
};
use crate::platform::list::contains;

pub async fn find_product(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<Option<product::Model>, DbErr> {
    product::Entity::find_by_id(id).one(db).await
}

/// The live (not deleted) product with `slug`.
pub async fn live_product_by_slug(
    db: &impl ConnectionTrait,
    slug: &str,
) -> Result<Option<product::Model>, DbErr> {
    product::Entity::find()
        .filter(product::Column::Slug.eq(slug))
        .filter(product::Column::DeletedAt.is_null())
        .one(db)
        .await
}

/// Slugs of live products starting with `prefix`, for picking a free one.
pub async fn slugs_like(db: &impl ConnectionTrait, prefix: &str) -> Result<Vec<String>, DbErr> {
    product::Entity::find()
        .select_only()
        .column(product::Column::Slug)
        .filter(product::Column::Slug.starts_with(prefix))
        .filter(product::Column::DeletedAt.is_null())
        .into_tuple()
        .all(db)
        .await
}

/// Every live slug, for building the storefront's Bloom filter.
pub async fn all_live_slugs(db: &impl ConnectionTrait) -> Result<Vec<String>, DbErr> {
    product::Entity::find()
        .select_only()
        .column(product::Column::Slug)
        .filter(product::Column::DeletedAt.is_null())
        .into_tuple()
        .all(db)
        .await
}

pub fn admin_query(filter: &ProductFilter) -> Select<product::Entity> {
    let mut query = product::Entity::find();
    query = if filter.deleted {
        query.filter(product::Column::DeletedAt.is_not_null())
    } else {
        query.filter(product::Column::DeletedAt.is_null())
    };
    if let Some(status) = filter.status {
        query = query.filter(product::Column::Status.eq(status.as_str()));
    }
    if let Some(brand_id) = filter.brand_id {
        query = query.filter(product::Column::BrandId.eq(brand_id));
    }
    if let Some(type_id) = filter.product_type_id {
        query = query.filter(product::Column::ProductTypeId.eq(type_id));
    }
    if let Some(category_id) = filter.category_id {
        query = query.filter(
            product::Column::Id.in_subquery(
                Query::select()
                    .column(product_category::Column::ProductId)
                    .from(product_category::Entity)
                    .and_where(product_category::Column::CategoryId.eq(category_id))
                    .to_owned(),
            ),
        );
    }
    if let Some(q) = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        query = query.filter(
            Condition::any()
                .add(Expr::expr(Func::lower(Expr::col(product::Column::Title))).like(contains(q)))
                .add(Expr::col(product::Column::Slug).like(contains(q)))
                .add(
                    product::Column::Id.in_subquery(
                        Query::select()
                            .column(sku::Column::ProductId)
                            .from(sku::Entity)
                            .and_where(
                                Expr::expr(Func::lower(Expr::col(sku::Column::Code)))
                                    .like(contains(q)),
                            )
                            .to_owned(),
                    ),
                ),
        );
    }
    query
}

/// Whether a product shows on the storefront at `now`: listed, not deleted, and inside its
/// window (start inclusive, end exclusive).
pub fn visible(
    status: &str,
    publish_at: Option<DateTime<Utc>>,
    unpublish_at: Option<DateTime<Utc>>,
    deleted: bool,
    now: DateTime<Utc>,
) -> bool {
    status == ProductStatus::Listed.as_str()
        && !deleted
        && publish_at.is_none_or(|at| at <= now)
        && unpublish_at.is_none_or(|at| at > now)
}

/// `visible` as a SQL condition.
pub fn visible_condition(now: DateTime<Utc>) -> Condition {
    Condition::all()
        .add(product::Column::Status.eq(ProductStatus::Listed.as_str()))
        .add(product::Column::DeletedAt.is_null())
        .add(
            Condition::any()
                .add(product::Column::PublishAt.is_null())
                .add(product::Column::PublishAt.lte(now)),
        )
        .add(
            Condition::any()
                .add(product::Column::UnpublishAt.is_null())
                .add(product::Column::UnpublishAt.gt(now)),
        )
}

pub async fn category_ids_of(
    db: &impl ConnectionTrait,
    product_id: i64,
) -> Result<Vec<i64>, DbErr> {
    product_category::Entity::find()
        .select_only()
        .column(product_category::Column::CategoryId)
        .filter(product_category::Column::ProductId.eq(product_id))
        .order_by_asc(product_category::Column::CategoryId)
        .into_tuple()
        .all(db)
        .await
}

pub async fn replace_categories(
    db: &impl ConnectionTrait,
    product_id: i64,
    category_ids: &[i64],
) -> Result<(), DbErr> {
    product_category::Entity::delete_many()
        .filter(product_category::Column::ProductId.eq(product_id))
        .exec(db)
        .await?;
    add_categories(db, &[product_id], category_ids).await
}

/// Links every product to every category, skipping links that exist.
pub async fn add_categories(
    db: &impl ConnectionTrait,
    product_ids: &[i64],
    category_ids: &[i64],
) -> Result<(), DbErr> {
    if product_ids.is_empty() || category_ids.is_empty() {
        return Ok(());
    }
    let rows = product_ids.iter().flat_map(|&product_id| {
        category_ids
            .iter()
            .map(move |&category_id| product_category::ActiveModel {
                product_id: Set(product_id),
                category_id: Set(category_id),
            })
    });
    product_category::Entity::insert_many(rows)
        .on_conflict_do_nothing_on([
            product_category::Column::ProductId,
            product_category::Column::CategoryId,
        ])
        .exec(db)
        .await?;
    Ok(())
}

pub async fn remove_categories(
    db: &impl ConnectionTrait,
    product_ids: &[i64],
    category_ids: &[i64],
) -> Result<(), DbErr> {
    if category_ids.is_empty() {
        return Ok(());
    }
    product_category::Entity::delete_many()
        .filter(product_category::Column::ProductId.is_in(product_ids.iter().copied()))
        .filter(product_category::Column::CategoryId.is_in(category_ids.iter().copied()))
        .exec(db)
        .await?;
    Ok(())
}

pub async fn skus_of(db: &impl ConnectionTrait, product_id: i64) -> Result<Vec<sku::Model>, DbErr> {
    sku::Entity::find()
        .filter(sku::Column::ProductId.eq(product_id))
        .order_by_asc(sku::Column::SortOrder)
        .order_by_asc(sku::Column::Id)
        .all(db)
        .await
}

pub async fn skus_by_id(db: &impl ConnectionTrait, ids: &[i64]) -> Result<Vec<sku::Model>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    sku::Entity::find()
        .filter(sku::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await
}

pub async fn products_by_id(
    db: &impl ConnectionTrait,
    ids: &[i64],
) -> Result<Vec<product::Model>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    product::Entity::find()
        .filter(product::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await
}

pub async fn sku_code_taken(
    db: &impl ConnectionTrait,
    code: &str,
    except: Option<i64>,
) -> Result<bool, DbErr> {
    let mut query = sku::Entity::find().filter(sku::Column::Code.eq(code));
    if let Some(id) = except {
        query = query.filter(sku::Column::Id.ne(id));
    }
    Ok(query.count(db).await? > 0)
}

/// Codes starting with `prefix` (any product), for picking free codes for a copy.
pub async fn sku_codes_like(db: &impl ConnectionTrait, prefix: &str) -> Result<Vec<String>, DbErr> {
    sku::Entity::find()
        .select_only()
        .column(sku::Column::Code)
        .filter(sku::Column::Code.starts_with(prefix))
        .into_tuple()
        .all(db)
        .await
}

/// The parts of the given bundle SKUs.
pub async fn parts_of(
    db: &impl ConnectionTrait,
    bundle_sku_ids: &[i64],
) -> Result<Vec<bundle_item::Model>, DbErr> {
    if bundle_sku_ids.is_empty() {
        return Ok(Vec::new());
    }
    bundle_item::Entity::find()
        .filter(bundle_item::Column::BundleSkuId.is_in(bundle_sku_ids.iter().copied()))
        .order_by_asc(bundle_item::Column::PartSkuId)
        .all(db)
        .await
}

pub async fn replace_parts(
    db: &impl ConnectionTrait,
    bundle_sku_id: i64,
    parts: &[(i64, i32)],
) -> Result<(), DbErr> {
    bundle_item::Entity::delete_many()
        .filter(bundle_item::Column::BundleSkuId.eq(bundle_sku_id))
        .exec(db)
        .await?;
    if parts.is_empty() {
        return Ok(());
    }
    bundle_item::Entity::insert_many(parts.iter().map(|&(part_sku_id, quantity)| {
        bundle_item::ActiveModel {
            bundle_sku_id: Set(bundle_sku_id),
            part_sku_id: Set(part_sku_id),
            quantity: Set(quantity),
        }
    }))
    .exec(db)
    .await?;
    Ok(())
}

/// How many bundle SKUs use the SKU as a part.
pub async fn count_bundles_using(db: &impl ConnectionTrait, sku_ids: &[i64]) -> Result<u64, DbErr> {
    if sku_ids.is_empty() {
        return Ok(0);
    }
    bundle_item::Entity::find()
        .filter(bundle_item::Column::PartSkuId.is_in(sku_ids.iter().copied()))
        .count(db)
        .await
}

/// Products whose bundle SKUs use any of the SKUs as parts (their availability follows).
pub async fn bundles_using(
    db: &impl ConnectionTrait,
    sku_ids: &[i64],
) -> Result<Vec<product::Model>, DbErr> {
    if sku_ids.is_empty() {
        return Ok(Vec::new());
    }
    product::Entity::find()
        .filter(
            product::Column::Id.in_subquery(
                Query::select()
                    .column((sku::Entity, sku::Column::ProductId))
                    .from(sku::Entity)
                    .inner_join(
                        bundle_item::Entity,
                        Expr::col((bundle_item::Entity, bundle_item::Column::BundleSkuId))
                            .equals((sku::Entity, sku::Column::Id)),
                    )
                    .and_where(
                        Expr::col((bundle_item::Entity, bundle_item::Column::PartSkuId))
                            .is_in(sku_ids.iter().copied()),
                    )
                    .to_owned(),
            ),
        )
        .all(db)
        .await
}

/// Recomputes a product's lowest active SKU price.
pub async fn refresh_min_price(db: &impl ConnectionTrait, product_id: i64) -> Result<(), DbErr> {
    let min: Option<i64> = sku::Entity::find()
        .select_only()
        .column_as(sku::Column::Price.min(), "min")
        .filter(sku::Column::ProductId.eq(product_id))
        .filter(sku::Column::IsActive.eq(true))
        .into_tuple::<Option<i64>>()
        .one(db)
        .await?
        .flatten();
    product::Entity::update_many()
        .col_expr(product::Column::MinPrice, Expr::value(min))
        .filter(product::Column::Id.eq(product_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Adds to (or with negative numbers takes from) a product's review tally in SQL, so
/// concurrent reviews cannot lose each other's counts.
pub async fn tally_rating(
    db: &impl ConnectionTrait,
    product_id: i64,
    count: i32,
    sum: i32,
) -> Result<(), DbErr> {
    product::Entity::update_many()
        .col_expr(
            product::Column::RatingCount,
            Expr::col(product::Column::RatingCount).add(count),
        )
        .col_expr(
            product::Column::RatingSum,
            Expr::col(product::Column::RatingSum).add(sum),
        )
        .filter(product::Column::Id.eq(product_id))
        .exec(db)
        .await?;
    Ok(())
}

pub async fn media_of(
    db: &impl ConnectionTrait,
    product_id: i64,
) -> Result<Vec<product_media::Model>, DbErr> {
    product_media::Entity::find()
        .filter(product_media::Column::ProductId.eq(product_id))
        .order_by_asc(product_media::Column::SortOrder)
        .order_by_asc(product_media::Column::Id)
        .all(db)
        .await
}

/// The first image of each product, for list cards.
pub async fn first_images(
    db: &impl ConnectionTrait,
    product_ids: &[i64],
) -> Result<HashMap<i64, String>, DbErr> {
    let mut first = HashMap::new();
    if product_ids.is_empty() {
        return Ok(first);
    }
    let rows = product_media::Entity::find()
        .filter(product_media::Column::ProductId.is_in(product_ids.iter().copied()))
        .filter(product_media::Column::Kind.eq("image"))
        .order_by_asc(product_media::Column::SortOrder)
        .order_by_asc(product_media::Column::Id)
        .all(db)
        .await?;
    for row in rows {
        first.entry(row.product_id).or_insert(row.key);
    }
    Ok(first)
}

pub async fn brands_by_id(
    db: &impl ConnectionTrait,
    ids: &[i64],
) -> Result<HashMap<i64, brand::Model>, DbErr> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(brand::Entity::find()
        .filter(brand::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?
        .into_iter()
        .map(|b| (b.id, b))
        .collect())
}

pub async fn recommendations(
    db: &impl ConnectionTrait,
    category_id: i64,
) -> Result<Vec<i64>, DbErr> {
    category_recommendation::Entity::find()
        .select_only()
        .column(category_recommendation::Column::ProductId)
        .filter(category_recommendation::Column::CategoryId.eq(category_id))
        .order_by_asc(category_recommendation::Column::SortOrder)
        .into_tuple()
        .all(db)
        .await
}

pub async fn replace_recommendations(
    db: &impl ConnectionTrait,
    category_id: i64,
    product_ids: &[i64],
) -> Result<(), DbErr> {
    category_recommendation::Entity::delete_many()
        .filter(category_recommendation::Column::CategoryId.eq(category_id))
        .exec(db)
        .await?;
    if product_ids.is_empty() {
        return Ok(());
    }
    let now = Utc::now();
    category_recommendation::Entity::insert_many(product_ids.iter().enumerate().map(
        |(i, &product_id)| category_recommendation::ActiveModel {
            category_id: Set(category_id),
            product_id: Set(product_id),
            sort_order: Set(i as i32),
            created_at: Set(now),
        },
    ))
    .exec(db)
    .await?;
    Ok(())
}
