//! Rules of the catalog: the category tree.

use std::collections::HashMap;

use chrono::Utc;
use sea_orm::ActiveValue::Set;
use sea_orm::{ConnectionTrait, EntityTrait};
use serde_json::json;

use super::attributes;
use super::entity::category;
use super::model::{AttributeScope, AttributeValues};
use super::model::{
    CategoryDetail, CategoryLink, CategoryNode, CategoryView, CreateCategory, StorefrontCategory,
    UpdateCategory,
};
use super::store;
use crate::app::AppState;
use crate::identity::service::{Actor, audit};
use crate::platform::cache::CachedDocument;
use crate::platform::concurrency::{Expected, update_versioned};
use crate::platform::crud::{delete_or_404, find_or_404};
use crate::platform::error::Validator;
use crate::platform::{ApiError, ApiResult};

/// The storefront's (visible) category tree.
const STOREFRONT_TREE: CachedDocument = CachedDocument::new("categories");

const NAME_MAX: usize = 100;
const META_MAX: usize = 300;
const DESCRIPTION_MAX: usize = 10_000;

fn slug_taken(slug: &str) -> ApiError {
    ApiError::conflict(
        "category-slug-taken",
        format!("another category already uses the slug {slug}"),
    )
}

fn not_found(id: i64) -> ApiError {
    ApiError::not_found("category", id)
}

fn check_meta(v: &mut Validator, meta_title: Option<&String>, meta_description: Option<&String>) {
    v.check(
        meta_title.is_none_or(|t| t.chars().count() <= META_MAX),
        "meta_title",
        "must be at most 300 characters",
    );
    v.check(
        meta_description.is_none_or(|t| t.chars().count() <= META_MAX),
        "meta_description",
        "must be at most 300 characters",
    );
}

fn check_description(v: &mut Validator, description: &str) {
    v.check(
        description.chars().count() <= DESCRIPTION_MAX,
        "description",
        "must be at most 10000 characters",
    );
}

/// The whole tree; `visible_only` drops hidden categories with everything below them.
pub async fn category_tree(
    db: &impl ConnectionTrait,
    visible_only: bool,
) -> ApiResult<Vec<CategoryNode>> {
    let mut children: HashMap<Option<i64>, Vec<category::Model>> = HashMap::new();
    for category in store::all_categories(db).await? {
        if visible_only && !category.is_visible {
            continue;
        }
        children
            .entry(category.parent_id)
            .or_default()
            .push(category);
    }
    fn build(
        parent: Option<i64>,
        children: &mut HashMap<Option<i64>, Vec<category::Model>>,
    ) -> Vec<CategoryNode> {
        children
            .remove(&parent)
            .unwrap_or_default()
            .into_iter()
            .map(|c| CategoryNode {
                id: c.id,
                children: build(Some(c.id), children),
                name: c.name,
                slug: c.slug,
                is_visible: c.is_visible,
            })
            .collect()
    }
    Ok(build(None, &mut children))
}

/// The storefront tree as JSON, from the cache when fresh.
pub async fn storefront_tree_json(state: &AppState) -> ApiResult<Vec<u8>> {
    STOREFRONT_TREE
        .get_or_load(state.kv.as_ref(), || async {
            serde_json::to_vec(&category_tree(state.db.reader(), true).await?)
                .map_err(ApiError::internal)
        })
        .await
}

async fn detail(db: &impl ConnectionTrait, category: category::Model) -> ApiResult<CategoryDetail> {
    let mut path = store::category_with_ancestors(db, category.id).await?;
    path.reverse();
    path.pop();
    let children = store::children_of(db, category.id).await?;
    Ok(CategoryDetail {
        breadcrumbs: path.iter().map(CategoryLink::from).collect(),
        children: children.iter().map(CategoryLink::from).collect(),
        attributes: attributes::values_for(db, AttributeScope::Category, category.id).await?,
        category: CategoryView::from(category),
    })
}

pub async fn get_category(state: &AppState, id: i64) -> ApiResult<CategoryDetail> {
    let db = state.db.reader();
    let category = store::find_category(db, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    detail(db, category).await
}

/// A visible category by slug, with its visible children; hidden when it or any
/// ancestor is hidden.
pub async fn storefront_category(state: &AppState, slug: &str) -> ApiResult<StorefrontCategory> {
    let db = state.db.reader();
    let missing = || ApiError::not_found("category", slug);
    let category = store::find_category_by_slug(db, slug)
        .await?
        .ok_or_else(missing)?;
    let mut path = store::category_with_ancestors(db, category.id).await?;
    if path.iter().any(|c| !c.is_visible) {
        return Err(missing());
    }
    path.reverse();
    path.pop();
    let children = store::children_of(db, category.id).await?;
    let attributes = attributes::values_for(db, AttributeScope::Category, category.id).await?;
    Ok(StorefrontCategory {
        attributes,
        id: category.id,
        name: category.name,
        slug: category.slug,
        description: category.description,
        meta_title: category.meta_title,
        meta_description: category.meta_description,
        breadcrumbs: path.iter().map(CategoryLink::from).collect(),
        children: children
            .iter()
            .filter(|c| c.is_visible)
            .map(CategoryLink::from)
            .collect(),
    })
}

async fn check_parent_exists(db: &impl ConnectionTrait, parent_id: i64) -> ApiResult<()> {
    if store::find_category(db, parent_id).await?.is_none() {
        return Err(ApiError::invalid(
            "parent_id",
            format!("category {parent_id} does not exist"),
        ));
    }
    Ok(())
}

pub async fn create_category(
    state: &AppState,
    actor: &Actor<'_>,
    input: CreateCategory,
) -> ApiResult<CategoryDetail> {
    let mut v = Validator::default();
    v.text(&input.name, "name", NAME_MAX);
    v.slug(&input.slug, "slug");
    check_description(&mut v, &input.description);
    check_meta(
        &mut v,
        input.meta_title.as_ref(),
        input.meta_description.as_ref(),
    );
    v.finish()?;

    let txn = state.db.begin().await?;
    if let Some(parent_id) = input.parent_id {
        check_parent_exists(&txn, parent_id).await?;
    }
    if store::find_category_by_slug(&txn, &input.slug)
        .await?
        .is_some()
    {
        return Err(slug_taken(&input.slug));
    }
    let now = Utc::now();
    let created = category::Entity::insert(category::ActiveModel {
        version: Set(1),
        parent_id: Set(input.parent_id),
        name: Set(input.name.trim().to_owned()),
        slug: Set(input.slug.clone()),
        description: Set(input.description),
        sort_order: Set(input.sort_order),
        is_visible: Set(input.is_visible),
        meta_title: Set(input.meta_title),
        meta_description: Set(input.meta_description),
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
        "category_created",
        Some(format!("category:{}", created.id)),
        json!({ "slug": created.slug, "parent_id": created.parent_id }),
    )
    .await?;
    let view = detail(&txn, created).await?;
    txn.commit().await?;
    STOREFRONT_TREE.invalidate(state.kv.as_ref()).await;
    Ok(view)
}

/// Edits a category; a new `parent_id` moves it with its whole subtree, refused when the
/// new parent is the category itself or below it.
pub async fn update_category(
    state: &AppState,
    actor: &Actor<'_>,
    id: i64,
    expected: Expected,
    input: UpdateCategory,
) -> ApiResult<CategoryDetail> {
    let mut v = Validator::default();
    v.text_if(input.name.as_ref(), "name", NAME_MAX);
    if let Some(slug) = &input.slug {
        v.slug(slug, "slug");
    }
    if let Some(description) = &input.description {
        check_description(&mut v, description);
    }
    check_meta(
        &mut v,
        input.meta_title.as_ref().and_then(Option::as_ref),
        input.meta_description.as_ref().and_then(Option::as_ref),
    );
    v.finish()?;

    let txn = state.db.begin().await?;
    store::lock_tree(&txn).await?;
    let current = store::find_category(&txn, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    if let Some(Some(parent_id)) = input.parent_id {
        check_parent_exists(&txn, parent_id).await?;
        let ancestors = store::category_with_ancestors(&txn, parent_id).await?;
        if ancestors.iter().any(|c| c.id == id) {
            return Err(ApiError::invalid(
                "parent_id",
                "a category cannot move under itself or one of its descendants",
            ));
        }
    }
    if let Some(slug) = &input.slug
        && *slug != current.slug
        && store::find_category_by_slug(&txn, slug).await?.is_some()
    {
        return Err(slug_taken(slug));
    }
    let mut changes = category::ActiveModel {
        updated_at: Set(Utc::now()),
        ..Default::default()
    };
    if let Some(parent_id) = input.parent_id {
        changes.parent_id = Set(parent_id);
    }
    if let Some(name) = &input.name {
        changes.name = Set(name.trim().to_owned());
    }
    if let Some(slug) = &input.slug {
        changes.slug = Set(slug.clone());
    }
    if let Some(description) = input.description {
        changes.description = Set(description);
    }
    if let Some(sort_order) = input.sort_order {
        changes.sort_order = Set(sort_order);
    }
    if let Some(is_visible) = input.is_visible {
        changes.is_visible = Set(is_visible);
    }
    if let Some(meta_title) = input.meta_title {
        changes.meta_title = Set(meta_title);
    }
    if let Some(meta_description) = input.meta_description {
        changes.meta_description = Set(meta_description);
    }
    // A slug taken by a concurrent write in between is a 409 from the constraint.
    update_versioned(
        &txn,
        changes,
        [category::Column::Id, category::Column::Version],
        id,
        expected,
        "category",
    )
    .await?;
    let updated = find_or_404::<category::Entity>(&txn, id, "category").await?;
    audit(
        &txn,
        actor,
        "category_updated",
        Some(format!("category:{id}")),
        json!({ "from_parent_id": current.parent_id, "parent_id": updated.parent_id,
            "slug": updated.slug }),
    )
    .await?;
    let view = detail(&txn, updated).await?;
    txn.commit().await?;
    STOREFRONT_TREE.invalidate(state.kv.as_ref()).await;
    super::cache::catalog_changed(state).await;
    Ok(view)
}

/// Deletes a category without children.
pub async fn delete_category(state: &AppState, actor: &Actor<'_>, id: i64) -> ApiResult<()> {
    let txn = state.db.begin().await?;
    let current = store::find_category(&txn, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    if store::count_children(&txn, id).await? > 0 {
        return Err(ApiError::conflict(
            "category-has-children",
            format!("category {id} still has subcategories; move or delete them first"),
        ));
    }
    delete_or_404::<category::Entity>(&txn, id, "category").await?;
    audit(
        &txn,
        actor,
        "category_deleted",
        Some(format!("category:{id}")),
        json!({ "slug": current.slug }),
    )
    .await?;
    txn.commit().await?;
    STOREFRONT_TREE.invalidate(state.kv.as_ref()).await;
    super::cache::catalog_changed(state).await;
    Ok(())
}

/// Replaces the category's custom attribute values (validated against the shop-wide
/// `category` attributes).
pub async fn set_category_attributes(
    state: &AppState,
    actor: &Actor<'_>,
    id: i64,
    values: AttributeValues,
) -> ApiResult<CategoryDetail> {
    let txn = state.db.begin().await?;
    let category = store::find_category(&txn, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    attributes::set_values_for(&txn, AttributeScope::Category, id, &values).await?;
    audit(
        &txn,
        actor,
        "category_attributes_set",
        Some(format!("category:{id}")),
        json!({ "codes": values.keys().collect::<Vec<_>>() }),
    )
    .await?;
    let view = detail(&txn, category).await?;
    txn.commit().await?;
    Ok(view)
}
