//! Products: the back office's rules (validation, listing window, soft delete, copy, batch
//! edits) and the storefront's reads.

pub mod media;
pub mod model;
pub mod purchasable;
pub mod recommendations;
pub mod skus;
pub mod store;
pub mod storefront;

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::ActiveValue::{NotSet, Set};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

use model::{
    BatchEdit, BatchResult, CreateProduct, MediaView, ProductFilter, ProductKind, ProductStatus,
    ProductSummary, ProductView, SetRecommendations, UpdateProduct,
};

use super::entity::{attribute_value, category, product, product_media, sku};
use super::model::{AttributeScope, AttributeValues};
use super::store as catalog_store;
use super::{attributes, cache};
use crate::app::AppState;
use crate::identity::service::{Actor, audit};
use crate::platform::concurrency::{Expected, update_versioned};
use crate::platform::error::Validator;
use crate::platform::html;
use crate::platform::list::{ListParams, Page, SortFields};
use crate::platform::{ApiError, ApiResult};

const RESOURCE: &str = "product";
const TITLE_MAX: usize = 200;
const META_MAX: usize = 300;
const DESCRIPTION_MAX: usize = 100_000;
const MAX_CATEGORIES: usize = 20;
const MAX_SKUS_PER_REQUEST: usize = 500;
const MAX_BATCH: usize = 500;

pub const SORT: SortFields<product::Column> = SortFields(&[
    ("title", product::Column::Title),
    ("created_at", product::Column::CreatedAt),
    ("updated_at", product::Column::UpdatedAt),
    ("price", product::Column::MinPrice),
    ("status", product::Column::Status),
]);

fn slug_taken(slug: &str) -> ApiError {
    ApiError::conflict(
        "product-slug-taken",
        format!("another product already uses the slug {slug}"),
    )
}

/// A live product, or 404: deleted products are only read, listed and restored.
pub(crate) async fn load_product(db: &impl ConnectionTrait, id: i64) -> ApiResult<product::Model> {
    store::find_product(db, id)
        .await?
        .filter(|p| p.deleted_at.is_none())
        .ok_or_else(|| ApiError::not_found(RESOURCE, id))
}

/// Tells the storefront's caches that the product changed. Call after the commit.
pub(crate) async fn after_write(state: &AppState, product: &product::Model) {
    cache::product_changed(state, &product.slug).await;
}

/// Tells the storefront's caches that the stock of these SKUs changed: their products'
/// pages, and those of the bundles they are parts of. Call after the commit; a failure
/// only leaves pages stale until their TTL, so it is logged, not returned.
pub async fn stock_changed(state: &AppState, sku_ids: &[i64]) {
    let db = state.db.writer();
    let products = async {
        let skus = store::skus_by_id(db, sku_ids).await?;
        let ids: BTreeSet<i64> = skus.iter().map(|s| s.product_id).collect();
        let mut products = Vec::new();
        for id in ids {
            products.extend(store::find_product(db, id).await?);
        }
        products.extend(store::bundles_using(db, sku_ids).await?);
        Ok::<_, sea_orm::DbErr>(products)
    };
    match products.await {
        Ok(products) => {
            for product in &products {
                after_write(state, product).await;
            }
        }
        Err(err) => tracing::warn!(error = %err, "cannot tell the caches about a stock change"),
    }
}

/// The listing window is kept to whole seconds, the storefront's resolution.
fn whole_seconds(at: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    at.map(|t| t.trunc_subsecs(0))
}

fn check_meta(v: &mut Validator, title: Option<&String>, description: Option<&String>) {
    for (value, field) in [(title, "meta_title"), (description, "meta_description")] {
        v.check(
            value.is_none_or(|t| t.chars().count() <= META_MAX),
            field,
            "must be at most 300 characters",
        );
    }
}

fn check_window(
    v: &mut Validator,
    publish: Option<DateTime<Utc>>,
    unpublish: Option<DateTime<Utc>>,
) {
    if let (Some(from), Some(until)) = (publish, unpublish) {
        v.check(from < until, "unpublish_at", "must be after publish_at");
    }
}

async fn check_references(
    db: &impl ConnectionTrait,
    brand_id: Option<i64>,
    product_type_id: Option<i64>,
    category_ids: Option<&[i64]>,
) -> ApiResult<()> {
    let mut v = Validator::default();
    if let Some(id) = brand_id {
        v.check(
            catalog_store::find_brand(db, id).await?.is_some(),
            "brand_id",
            "no such brand",
        );
    }
    if let Some(id) = product_type_id {
        v.check(
            catalog_store::find_product_type(db, id).await?.is_some(),
            "product_type_id",
            "no such product type",
        );
    }
    if let Some(ids) = category_ids {
        let unique: BTreeSet<i64> = ids.iter().copied().collect();
        v.check(
            unique.len() <= MAX_CATEGORIES,
            "category_ids",
            "at most 20 categories",
        );
        let found = category::Entity::find()
            .filter(category::Column::Id.is_in(unique.iter().copied()))
            .count(db)
            .await?;
        v.check(
            found as usize == unique.len(),
            "category_ids",
            "names a category that does not exist",
        );
    }
    v.finish()
}

/// Validates product attribute values against the type's `product` definitions; without
/// a type there are none to hold.
async fn check_attributes(
    db: &impl ConnectionTrait,
    product_type_id: Option<i64>,
    values: &AttributeValues,
) -> ApiResult<(Vec<i64>, Vec<(i64, String)>)> {
    let definitions = match product_type_id {
        Some(type_id) => {
            catalog_store::attribute_definitions(
                db,
                Some(AttributeScope::Product.as_str()),
                Some(type_id),
            )
            .await?
        }
        None => Vec::new(),
    };
    let accepted = attributes::validate_values(&definitions, values)?;
    Ok((definitions.iter().map(|d| d.id).collect(), accepted))
}

/// Product attribute values by code.
async fn attribute_values_of(
    db: &impl ConnectionTrait,
    product: &product::Model,
) -> ApiResult<AttributeValues> {
    let Some(type_id) = product.product_type_id else {
        return Ok(AttributeValues::new());
    };
    let definitions = catalog_store::attribute_definitions(
        db,
        Some(AttributeScope::Product.as_str()),
        Some(type_id),
    )
    .await?;
    let ids: Vec<i64> = definitions.iter().map(|d| d.id).collect();
    let mut values = AttributeValues::new();
    for value in catalog_store::values_of(db, &ids, product.id).await? {
        if let Some(d) = definitions.iter().find(|d| d.id == value.definition_id) {
            values.insert(
                d.code.clone(),
                serde_json::from_str(&value.value).unwrap_or(Value::Null),
            );
        }
    }
    Ok(values)
}

/// Recomputes what is derived from a product's SKUs and text: its lowest price and its
/// search text. Call in the transaction of any write that may change them.
pub(crate) async fn refresh_derived(db: &impl ConnectionTrait, product_id: i64) -> ApiResult<()> {
    store::refresh_min_price(db, product_id).await?;
    let product = store::find_product(db, product_id)
        .await?
        .ok_or_else(|| ApiError::not_found(RESOURCE, product_id))?;
    let mut words = vec![product.title.to_lowercase()];
    if let Some(brand_id) = product.brand_id
        && let Some(brand) = catalog_store::find_brand(db, brand_id).await?
    {
        words.push(brand.name.to_lowercase());
    }
    for sku in store::skus_of(db, product_id).await? {
        words.push(sku.code.to_lowercase());
    }
    for (_, value) in attribute_values_of(db, &product).await? {
        if let Some(text) = value.as_str() {
            words.push(text.to_lowercase());
        }
    }
    product::Entity::update_many()
        .col_expr(product::Column::SearchText, Expr::value(words.join(" ")))
        .filter(product::Column::Id.eq(product_id))
        .exec(db)
        .await?;
    Ok(())
}

/// A listed product must be buyable: it needs an active SKU.
async fn check_listable(
    db: &impl ConnectionTrait,
    product_id: i64,
    status: ProductStatus,
) -> ApiResult<()> {
    if status != ProductStatus::Listed {
        return Ok(());
    }
    let active = store::skus_of(db, product_id)
        .await?
        .iter()
        .any(|s| s.is_active);
    if !active {
        return Err(ApiError::invalid(
            "status",
            "a listed product needs at least one active SKU",
        ));
    }
    Ok(())
}

fn summary(p: product::Model, now: DateTime<Utc>) -> ProductSummary {
    ProductSummary {
        visible_now: store::visible(
            &p.status,
            p.publish_at,
            p.unpublish_at,
            p.deleted_at.is_some(),
            now,
        ),
        status: ProductStatus::parse(&p.status),
        kind: ProductKind::parse(&p.kind),
        id: p.id,
        title: p.title,
        slug: p.slug,
        is_bundle: p.is_bundle,
        brand_id: p.brand_id,
        min_price: p.min_price,
        publish_at: p.publish_at,
        unpublish_at: p.unpublish_at,
        deleted_at: p.deleted_at,
        version: p.version,
        updated_at: p.updated_at,
    }
}

pub(crate) fn media_view(state: &AppState, m: product_media::Model) -> MediaView {
    MediaView {
        url: state.media.url(&m.key),
        id: m.id,
        content_type: m.content_type,
        kind: m.kind,
        size: m.size,
        alt: m.alt,
        sort_order: m.sort_order,
    }
}

/// The back office's full view of a product.
pub(crate) async fn view(
    state: &AppState,
    db: &impl ConnectionTrait,
    p: product::Model,
) -> ApiResult<ProductView> {
    let now = Utc::now();
    let skus = skus::sku_views(db, store::skus_of(db, p.id).await?).await?;
    let media = store::media_of(db, p.id)
        .await?
        .into_iter()
        .map(|m| media_view(state, m))
        .collect();
    Ok(ProductView {
        category_ids: store::category_ids_of(db, p.id).await?,
        attributes: attribute_values_of(db, &p).await?,
        visible_now: store::visible(
            &p.status,
            p.publish_at,
            p.unpublish_at,
            p.deleted_at.is_some(),
            now,
        ),
        status: ProductStatus::parse(&p.status),
        kind: ProductKind::parse(&p.kind),
        rating_average: (p.rating_count > 0)
            .then(|| f64::from(p.rating_sum) / f64::from(p.rating_count)),
        skus,
        media,
        id: p.id,
        title: p.title,
        slug: p.slug,
        description: p.description,
        brand_id: p.brand_id,
        product_type_id: p.product_type_id,
        publish_at: p.publish_at,
        unpublish_at: p.unpublish_at,
        is_bundle: p.is_bundle,
        allow_preorder: p.allow_preorder,
        allow_backorder: p.allow_backorder,
        meta_title: p.meta_title,
        meta_description: p.meta_description,
        min_price: p.min_price,
        rating_count: p.rating_count,
        deleted_at: p.deleted_at,
        version: p.version,
        created_at: p.created_at,
        updated_at: p.updated_at,
    })
}

pub async fn list_products(
    state: &AppState,
    list: &ListParams,
    filter: &ProductFilter,
) -> ApiResult<Page<ProductSummary>> {
    let now = Utc::now();
    let page = list
        .spec(&SORT)?
        .fetch(
            state.db.reader(),
            store::admin_query(filter),
            product::Column::Id,
        )
        .await?;
    Ok(page.map(|p| summary(p, now)))
}

pub async fn get_product(state: &AppState, id: i64) -> ApiResult<ProductView> {
    let db = state.db.reader();
    let product = store::find_product(db, id)
        .await?
        .ok_or_else(|| ApiError::not_found(RESOURCE, id))?;
    view(state, db, product).await
}

pub async fn create_product(
    state: &AppState,
    actor: &Actor<'_>,
    input: CreateProduct,
) -> ApiResult<ProductView> {
    let mut v = Validator::default();
    v.text(&input.title, "title", TITLE_MAX);
    v.slug(&input.slug, "slug");
    v.check(
        input.description.chars().count() <= DESCRIPTION_MAX,
        "description",
        "must be at most 100000 characters",
    );
    check_meta(
        &mut v,
        input.meta_title.as_ref(),
        input.meta_description.as_ref(),
    );
    let (publish_at, unpublish_at) = (
        whole_seconds(input.publish_at),
        whole_seconds(input.unpublish_at),
    );
    check_window(&mut v, publish_at, unpublish_at);
    v.check(
        input.skus.len() <= MAX_SKUS_PER_REQUEST,
        "skus",
        "at most 500 SKUs at once",
    );
    v.finish()?;

    let txn = state.db.begin().await?;
    check_references(
        &txn,
        input.brand_id,
        input.product_type_id,
        Some(&input.category_ids),
    )
    .await?;
    let (definition_ids, values) =
        check_attributes(&txn, input.product_type_id, &input.attributes).await?;
    if store::live_product_by_slug(&txn, &input.slug)
        .await?
        .is_some()
    {
        return Err(slug_taken(&input.slug));
    }
    let now = Utc::now();
    let created = product::Entity::insert(product::ActiveModel {
        id: NotSet,
        version: Set(1),
        title: Set(input.title.trim().to_owned()),
        slug: Set(input.slug.clone()),
        description: Set(html::sanitize(&input.description)),
        brand_id: Set(input.brand_id),
        product_type_id: Set(input.product_type_id),
        status: Set(ProductStatus::Draft.as_str().to_owned()),
        publish_at: Set(publish_at),
        unpublish_at: Set(unpublish_at),
        kind: Set(input.kind.as_str().to_owned()),
        is_bundle: Set(input.is_bundle),
        allow_preorder: Set(input.allow_preorder),
        allow_backorder: Set(input.allow_backorder),
        meta_title: Set(input.meta_title.clone()),
        meta_description: Set(input.meta_description.clone()),
        min_price: Set(None),
        rating_count: Set(0),
        rating_sum: Set(0),
        search_text: Set(String::new()),
        deleted_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_with_returning(&txn)
    .await
    .map_err(|e| ApiError::unique_as(e, slug_taken(&input.slug)))?;
    let unique: BTreeSet<i64> = input.category_ids.iter().copied().collect();
    store::replace_categories(&txn, created.id, &unique.into_iter().collect::<Vec<_>>()).await?;
    catalog_store::replace_values(&txn, &definition_ids, created.id, values).await?;
    let axes = skus::axes_of(&txn, &created).await?;
    for (i, sku) in input.skus.iter().enumerate() {
        skus::insert_sku(
            &txn,
            &created,
            &axes,
            sku,
            &format!("skus[{i}]."),
            actor.principal.map(|p| p.staff_id),
        )
        .await?;
    }
    // The status goes last: listing needs the SKUs in place.
    check_listable(&txn, created.id, input.status).await?;
    product::Entity::update_many()
        .col_expr(product::Column::Status, Expr::value(input.status.as_str()))
        .filter(product::Column::Id.eq(created.id))
        .exec(&txn)
        .await?;
    refresh_derived(&txn, created.id).await?;
    audit(
        &txn,
        actor,
        "product_created",
        Some(format!("product:{}", created.id)),
        json!({ "slug": created.slug, "status": input.status.as_str(), "skus": input.skus.len() }),
    )
    .await?;
    let product = load_product(&txn, created.id).await?;
    let view = view(state, &txn, product.clone()).await?;
    txn.commit().await?;
    cache::slug_added(state, &product.slug).await;
    after_write(state, &product).await;
    Ok(view)
}

pub async fn update_product(
    state: &AppState,
    actor: &Actor<'_>,
    id: i64,
    expected: Expected,
    input: UpdateProduct,
) -> ApiResult<ProductView> {
    let mut v = Validator::default();
    v.text_if(input.title.as_ref(), "title", TITLE_MAX);
    if let Some(slug) = &input.slug {
        v.slug(slug, "slug");
    }
    if let Some(description) = &input.description {
        v.check(
            description.chars().count() <= DESCRIPTION_MAX,
            "description",
            "must be at most 100000 characters",
        );
    }
    check_meta(
        &mut v,
        input.meta_title.as_ref().and_then(Option::as_ref),
        input.meta_description.as_ref().and_then(Option::as_ref),
    );
    v.finish()?;

    let txn = state.db.begin().await?;
    let current = load_product(&txn, id).await?;
    let publish_at = input
        .publish_at
        .map(whole_seconds)
        .unwrap_or(current.publish_at);
    let unpublish_at = input
        .unpublish_at
        .map(whole_seconds)
        .unwrap_or(current.unpublish_at);
    let mut v = Validator::default();
    check_window(&mut v, publish_at, unpublish_at);
    v.finish()?;
    let type_id = input.product_type_id.unwrap_or(current.product_type_id);
    check_references(
        &txn,
        input.brand_id.flatten(),
        input.product_type_id.flatten(),
        input.category_ids.as_deref(),
    )
    .await?;
    if type_id != current.product_type_id {
        let has_axes = !skus::axes_of(&txn, &current).await?.is_empty();
        if has_axes && !store::skus_of(&txn, id).await?.is_empty() {
            return Err(ApiError::conflict(
                "product-type-locked",
                "the product's SKUs vary along its type's axes; delete them before changing the type",
            ));
        }
    }
    // A new type revalidates the stored values unless new ones come with it.
    let attribute_change = match (&input.attributes, type_id != current.product_type_id) {
        (Some(values), _) => Some(check_attributes(&txn, type_id, values).await?),
        (None, true) => {
            let kept = attribute_values_of(&txn, &current).await?;
            Some(check_attributes(&txn, type_id, &kept).await?)
        }
        (None, false) => None,
    };
    if let Some(slug) = &input.slug
        && *slug != current.slug
        && store::live_product_by_slug(&txn, slug).await?.is_some()
    {
        return Err(slug_taken(slug));
    }
    if let Some(status) = input.status {
        check_listable(&txn, id, status).await?;
    }
    update_versioned(
        &txn,
        product::ActiveModel {
            title: input
                .title
                .as_ref()
                .map_or(NotSet, |t| Set(t.trim().to_owned())),
            slug: input.slug.clone().map_or(NotSet, Set),
            description: input
                .description
                .as_deref()
                .map_or(NotSet, |d| Set(html::sanitize(d))),
            brand_id: input.brand_id.map_or(NotSet, Set),
            product_type_id: input.product_type_id.map_or(NotSet, Set),
            status: input.status.map_or(NotSet, |s| Set(s.as_str().to_owned())),
            publish_at: Set(publish_at),
            unpublish_at: Set(unpublish_at),
            kind: input.kind.map_or(NotSet, |k| Set(k.as_str().to_owned())),
            allow_preorder: input.allow_preorder.map_or(NotSet, Set),
            allow_backorder: input.allow_backorder.map_or(NotSet, Set),
            meta_title: input.meta_title.clone().map_or(NotSet, Set),
            meta_description: input.meta_description.clone().map_or(NotSet, Set),
            updated_at: Set(Utc::now()),
            ..Default::default()
        },
        [product::Column::Id, product::Column::Version],
        id,
        expected,
        RESOURCE,
    )
    .await
    .map_err(|e| match (&input.slug, e.status().as_u16()) {
        (Some(slug), 409) if e.problem().code == "already-exists" => slug_taken(slug),
        _ => e,
    })?;
    if let Some(ids) = &input.category_ids {
        let unique: Vec<i64> = ids
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        store::replace_categories(&txn, id, &unique).await?;
    }
    if let Some((definition_ids, values)) = attribute_change {
        if type_id != current.product_type_id {
            // Values of the old type's definitions go with it.
            attribute_value::Entity::delete_many()
                .filter(attribute_value::Column::OwnerId.eq(id))
                .filter(
                    attribute_value::Column::DefinitionId.in_subquery(
                        sea_orm::sea_query::Query::select()
                            .column(super::entity::attribute_definition::Column::Id)
                            .from(super::entity::attribute_definition::Entity)
                            .and_where(
                                super::entity::attribute_definition::Column::Scope
                                    .eq(AttributeScope::Product.as_str()),
                            )
                            .to_owned(),
                    ),
                )
                .exec(&txn)
                .await?;
        }
        catalog_store::replace_values(&txn, &definition_ids, id, values).await?;
    }
    refresh_derived(&txn, id).await?;
    audit(
        &txn,
        actor,
        "product_updated",
        Some(format!("product:{id}")),
        json!({
            "slug": input.slug,
            "status": input.status.map(ProductStatus::as_str),
            "publish_at": input.publish_at,
            "unpublish_at": input.unpublish_at,
        }),
    )
    .await?;
    let updated = load_product(&txn, id).await?;
    let view = view(state, &txn, updated.clone()).await?;
    txn.commit().await?;
    if updated.slug != current.slug {
        cache::slug_added(state, &updated.slug).await;
        after_write(state, &current).await;
    }
    after_write(state, &updated).await;
    Ok(view)
}

/// Soft delete: the product leaves the storefront and frees its slug; orders and reviews
/// keep pointing at it, and staff can restore it.
pub async fn delete_product(state: &AppState, actor: &Actor<'_>, id: i64) -> ApiResult<()> {
    let txn = state.db.begin().await?;
    let current = load_product(&txn, id).await?;
    let sku_ids: Vec<i64> = store::skus_of(&txn, id)
        .await?
        .iter()
        .map(|s| s.id)
        .collect();
    let used = store::count_bundles_using(&txn, &sku_ids).await?;
    if used > 0 {
        return Err(ApiError::conflict(
            "product-in-bundle",
            format!("{used} bundle SKU(s) contain this product's SKUs; remove them first"),
        ));
    }
    let now = Utc::now();
    product::Entity::update_many()
        .col_expr(product::Column::DeletedAt, Expr::value(now))
        .col_expr(product::Column::UpdatedAt, Expr::value(now))
        .col_expr(
            product::Column::Version,
            Expr::col(product::Column::Version).add(1),
        )
        .filter(product::Column::Id.eq(id))
        .exec(&txn)
        .await?;
    audit(
        &txn,
        actor,
        "product_deleted",
        Some(format!("product:{id}")),
        json!({ "slug": current.slug }),
    )
    .await?;
    txn.commit().await?;
    after_write(state, &current).await;
    Ok(())
}

/// Brings a soft-deleted product back, as it was, unless another product took its slug.
pub async fn restore_product(
    state: &AppState,
    actor: &Actor<'_>,
    id: i64,
) -> ApiResult<ProductView> {
    let txn = state.db.begin().await?;
    let current = store::find_product(&txn, id)
        .await?
        .ok_or_else(|| ApiError::not_found(RESOURCE, id))?;
    if current.deleted_at.is_none() {
        return Err(ApiError::conflict(
            "product-not-deleted",
            format!("product {id} is not deleted"),
        ));
    }
    if store::live_product_by_slug(&txn, &current.slug)
        .await?
        .is_some()
    {
        return Err(slug_taken(&current.slug));
    }
    product::Entity::update_many()
        .col_expr(
            product::Column::DeletedAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(product::Column::UpdatedAt, Expr::value(Utc::now()))
        .col_expr(
            product::Column::Version,
            Expr::col(product::Column::Version).add(1),
        )
        .filter(product::Column::Id.eq(id))
        .exec(&txn)
        .await
        .map_err(|e| ApiError::unique_as(e, slug_taken(&current.slug)))?;
    audit(
        &txn,
        actor,
        "product_restored",
        Some(format!("product:{id}")),
        json!({ "slug": current.slug }),
    )
    .await?;
    let restored = load_product(&txn, id).await?;
    let view = view(state, &txn, restored.clone()).await?;
    txn.commit().await?;
    cache::slug_added(state, &restored.slug).await;
    after_write(state, &restored).await;
    Ok(view)
}

/// Picks `<slug>-copy`, `<slug>-copy-2`, … that no live product uses.
async fn copy_slug(db: &impl ConnectionTrait, slug: &str) -> ApiResult<String> {
    let stem: String = slug
        .chars()
        .take(85)
        .collect::<String>()
        .trim_end_matches('-')
        .to_owned();
    let base = format!("{stem}-copy");
    let taken: BTreeSet<String> = store::slugs_like(db, &base).await?.into_iter().collect();
    let mut candidate = base.clone();
    let mut n = 2;
    while taken.contains(&candidate) {
        candidate = format!("{base}-{n}");
        n += 1;
    }
    Ok(candidate)
}

/// A new draft with the product's details, categories, attributes, media and SKUs (new
/// codes, no stock): the quick way to add a similar product.
pub async fn copy_product(state: &AppState, actor: &Actor<'_>, id: i64) -> ApiResult<ProductView> {
    let txn = state.db.begin().await?;
    let source = load_product(&txn, id).await?;
    let slug = copy_slug(&txn, &source.slug).await?;
    let now = Utc::now();
    let mut title = source.title.clone();
    if title.chars().count() + 7 <= TITLE_MAX {
        title.push_str(" (copy)");
    }
    let copy = product::Entity::insert(product::ActiveModel {
        id: NotSet,
        version: Set(1),
        title: Set(title),
        slug: Set(slug.clone()),
        description: Set(source.description.clone()),
        brand_id: Set(source.brand_id),
        product_type_id: Set(source.product_type_id),
        status: Set(ProductStatus::Draft.as_str().to_owned()),
        publish_at: Set(None),
        unpublish_at: Set(None),
        kind: Set(source.kind.clone()),
        is_bundle: Set(source.is_bundle),
        allow_preorder: Set(source.allow_preorder),
        allow_backorder: Set(source.allow_backorder),
        meta_title: Set(source.meta_title.clone()),
        meta_description: Set(source.meta_description.clone()),
        min_price: Set(None),
        rating_count: Set(0),
        rating_sum: Set(0),
        search_text: Set(String::new()),
        deleted_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_with_returning(&txn)
    .await
    .map_err(|e| ApiError::unique_as(e, slug_taken(&slug)))?;
    let categories = store::category_ids_of(&txn, id).await?;
    store::replace_categories(&txn, copy.id, &categories).await?;
    let values = attribute_values_of(&txn, &source).await?;
    let (definition_ids, accepted) =
        check_attributes(&txn, source.product_type_id, &values).await?;
    catalog_store::replace_values(&txn, &definition_ids, copy.id, accepted).await?;
    for media in store::media_of(&txn, id).await? {
        product_media::Entity::insert(product_media::ActiveModel {
            id: NotSet,
            version: Set(1),
            product_id: Set(copy.id),
            key: Set(media.key),
            content_type: Set(media.content_type),
            kind: Set(media.kind),
            size: Set(media.size),
            alt: Set(media.alt),
            sort_order: Set(media.sort_order),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec(&txn)
        .await?;
    }
    let source_skus = skus::sku_views(&txn, store::skus_of(&txn, id).await?).await?;
    let codes = skus::copy_codes(
        &txn,
        &source_skus
            .iter()
            .map(|s| s.code.clone())
            .collect::<Vec<_>>(),
    )
    .await?;
    let axes = skus::axes_of(&txn, &copy).await?;
    for (i, s) in source_skus.into_iter().enumerate() {
        let input = model::SkuInput {
            code: codes[&s.code].clone(),
            price: s.price,
            compare_at_price: s.compare_at_price,
            weight_grams: s.weight_grams,
            barcode: None,
            stock: 0,
            axes: s.axes,
            parts: s
                .parts
                .iter()
                .map(|p| model::BundlePartInput {
                    sku_id: p.sku_id,
                    quantity: p.quantity,
                })
                .collect(),
            is_active: s.is_active,
            sort_order: s.sort_order,
        };
        skus::insert_sku(&txn, &copy, &axes, &input, &format!("skus[{i}]."), None).await?;
    }
    refresh_derived(&txn, copy.id).await?;
    audit(
        &txn,
        actor,
        "product_copied",
        Some(format!("product:{}", copy.id)),
        json!({ "from": id, "slug": slug }),
    )
    .await?;
    let copy = load_product(&txn, copy.id).await?;
    let view = view(state, &txn, copy.clone()).await?;
    txn.commit().await?;
    cache::slug_added(state, &copy.slug).await;
    Ok(view)
}

/// `price × (100 + percent) / 100`, rounded half up, in exact integer arithmetic on
/// hundredths of a percent.
fn adjust_price(price: i64, basis_points: i64) -> i64 {
    let scaled = i128::from(price) * i128::from(10_000 + basis_points);
    let rounded = (scaled + 5_000).div_euclid(10_000);
    i64::try_from(rounded.max(0)).unwrap_or(i64::MAX)
}

/// Applies one change to many products in one transaction; any invalid id refuses all.
pub async fn batch_edit(
    state: &AppState,
    actor: &Actor<'_>,
    input: BatchEdit,
) -> ApiResult<BatchResult> {
    let ids: Vec<i64> = input
        .ids
        .iter()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut v = Validator::default();
    v.check(
        !ids.is_empty() && ids.len() <= MAX_BATCH,
        "ids",
        "must name 1 to 500 products",
    );
    v.check(
        input.status.is_some()
            || !input.add_category_ids.is_empty()
            || !input.remove_category_ids.is_empty()
            || input.price_percent.is_some(),
        "status",
        "name at least one change: status, add_category_ids, remove_category_ids or price_percent",
    );
    let basis_points = input.price_percent.map(|p| (p * 100.0).round());
    if let (Some(percent), Some(bp)) = (input.price_percent, basis_points) {
        v.check(
            percent.is_finite() && (percent * 100.0 - bp).abs() < 1e-6,
            "price_percent",
            "must have at most two decimals",
        );
        v.check(
            (-99.0..=1000.0).contains(&percent),
            "price_percent",
            "must be between -99 and 1000",
        );
    }
    v.finish()?;

    let txn = state.db.begin().await?;
    let products: Vec<product::Model> = product::Entity::find()
        .filter(product::Column::Id.is_in(ids.iter().copied()))
        .filter(product::Column::DeletedAt.is_null())
        .all(&txn)
        .await?;
    if products.len() != ids.len() {
        let found: BTreeSet<i64> = products.iter().map(|p| p.id).collect();
        let missing: Vec<String> = ids
            .iter()
            .filter(|id| !found.contains(id))
            .map(i64::to_string)
            .collect();
        return Err(ApiError::invalid(
            "ids",
            format!("no live products with ids {}", missing.join(", ")),
        ));
    }
    let categories: Vec<i64> = input.add_category_ids.clone();
    check_references(&txn, None, None, Some(&categories)).await?;
    store::add_categories(&txn, &ids, &categories).await?;
    store::remove_categories(&txn, &ids, &input.remove_category_ids).await?;
    if let Some(bp) = basis_points {
        let bp = bp as i64;
        for sku in sku::Entity::find()
            .filter(sku::Column::ProductId.is_in(ids.iter().copied()))
            .all(&txn)
            .await?
        {
            sku::Entity::update_many()
                .col_expr(sku::Column::Price, Expr::value(adjust_price(sku.price, bp)))
                .col_expr(
                    sku::Column::CompareAtPrice,
                    Expr::value(sku.compare_at_price.map(|c| adjust_price(c, bp))),
                )
                .col_expr(sku::Column::Version, Expr::col(sku::Column::Version).add(1))
                .filter(sku::Column::Id.eq(sku.id))
                .exec(&txn)
                .await?;
        }
    }
    if let Some(status) = input.status {
        for id in &ids {
            check_listable(&txn, *id, status).await.map_err(|_| {
                ApiError::invalid(
                    "status",
                    format!("product {id} has no active SKU and cannot be listed"),
                )
            })?;
        }
    }
    let now = Utc::now();
    let mut update = product::Entity::update_many()
        .col_expr(product::Column::UpdatedAt, Expr::value(now))
        .col_expr(
            product::Column::Version,
            Expr::col(product::Column::Version).add(1),
        );
    if let Some(status) = input.status {
        update = update.col_expr(product::Column::Status, Expr::value(status.as_str()));
    }
    update
        .filter(product::Column::Id.is_in(ids.iter().copied()))
        .exec(&txn)
        .await?;
    for id in &ids {
        store::refresh_min_price(&txn, *id).await?;
    }
    audit(
        &txn,
        actor,
        "products_batch_edited",
        None,
        json!({
            "ids": ids,
            "status": input.status.map(ProductStatus::as_str),
            "add_category_ids": input.add_category_ids,
            "remove_category_ids": input.remove_category_ids,
            "price_percent": input.price_percent,
        }),
    )
    .await?;
    txn.commit().await?;
    for product in &products {
        after_write(state, product).await;
    }
    Ok(BatchResult { updated: ids.len() })
}

/// The products a category recommends (related products on its page), in order.
/// Summaries of the products `ids`, in that order; ids of deleted rows are skipped.
pub(crate) async fn summaries_in_order(
    db: &impl ConnectionTrait,
    ids: Vec<i64>,
) -> ApiResult<Vec<ProductSummary>> {
    let mut by_id: HashMap<i64, product::Model> = product::Entity::find()
        .filter(product::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    let now = Utc::now();
    Ok(ids
        .into_iter()
        .filter_map(|id| by_id.remove(&id))
        .map(|p| summary(p, now))
        .collect())
}

pub async fn recommendations(state: &AppState, category_id: i64) -> ApiResult<Vec<ProductSummary>> {
    let db = state.db.reader();
    catalog_store::find_category(db, category_id)
        .await?
        .ok_or_else(|| ApiError::not_found("category", category_id))?;
    let ids = store::recommendations(db, category_id).await?;
    summaries_in_order(db, ids).await
}

pub async fn set_recommendations(
    state: &AppState,
    actor: &Actor<'_>,
    category_id: i64,
    input: SetRecommendations,
) -> ApiResult<Vec<ProductSummary>> {
    let mut seen = BTreeSet::new();
    let ids: Vec<i64> = input
        .product_ids
        .into_iter()
        .filter(|id| seen.insert(*id))
        .collect();
    let mut v = Validator::default();
    v.check(ids.len() <= 50, "product_ids", "at most 50 products");
    v.finish()?;
    let txn = state.db.begin().await?;
    catalog_store::find_category(&txn, category_id)
        .await?
        .ok_or_else(|| ApiError::not_found("category", category_id))?;
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
    store::replace_recommendations(&txn, category_id, &ids).await?;
    audit(
        &txn,
        actor,
        "category_recommendations_set",
        Some(format!("category:{category_id}")),
        json!({ "product_ids": ids }),
    )
    .await?;
    txn.commit().await?;
    recommendations(state, category_id).await
}

#[cfg(test)]
mod tests {
    use super::adjust_price;

    #[test]
    fn price_changes_are_exact_and_round_half_up() {
        assert_eq!(adjust_price(1000, -1000), 900);
        assert_eq!(adjust_price(999, 750), 1074); // 1073.925
        assert_eq!(adjust_price(1, 5000), 2); // 1.5 rounds up
        assert_eq!(adjust_price(3, -5000), 2); // 1.5 rounds up
        assert_eq!(adjust_price(100, -9900), 1);
    }
}
