//! Queries of the catalog domain; nothing else touches its tables.

use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Select,
};

use sea_orm::ActiveValue::Set;

use super::brands::BrandFilter;
use super::entity::{
    attribute_definition, attribute_value, brand, category, product, product_type,
};

pub async fn find_category(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<Option<category::Model>, DbErr> {
    category::Entity::find_by_id(id).one(db).await
}

pub async fn find_category_by_slug(
    db: &impl ConnectionTrait,
    slug: &str,
) -> Result<Option<category::Model>, DbErr> {
    category::Entity::find()
        .filter(category::Column::Slug.eq(slug))
        .one(db)
        .await
}

/// Every category in sibling order, for building the tree in one query.
pub async fn all_categories(db: &impl ConnectionTrait) -> Result<Vec<category::Model>, DbErr> {
    category::Entity::find()
        .order_by_asc(category::Column::SortOrder)
        .order_by_asc(category::Column::Name)
        .order_by_asc(category::Column::Id)
        .all(db)
        .await
}

pub async fn children_of(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<Vec<category::Model>, DbErr> {
    category::Entity::find()
        .filter(category::Column::ParentId.eq(id))
        .order_by_asc(category::Column::SortOrder)
        .order_by_asc(category::Column::Name)
        .order_by_asc(category::Column::Id)
        .all(db)
        .await
}

pub async fn count_children(db: &impl ConnectionTrait, id: i64) -> Result<u64, DbErr> {
    category::Entity::find()
        .filter(category::Column::ParentId.eq(id))
        .count(db)
        .await
}

/// The category and its ancestors, nearest first. A corrupt cycle stops the walk.
pub async fn category_with_ancestors(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<Vec<category::Model>, DbErr> {
    let mut chain: Vec<category::Model> = Vec::new();
    let mut next = Some(id);
    while let Some(id) = next {
        if chain.iter().any(|c| c.id == id) {
            break;
        }
        match find_category(db, id).await? {
            Some(category) => {
                next = category.parent_id;
                chain.push(category);
            }
            None => break,
        }
    }
    Ok(chain)
}

/// Serialises tree moves on PostgreSQL for the rest of the transaction, so two moves
/// that would each be fine alone cannot together make a cycle. (SQLite write
/// transactions are serialised already.)
pub async fn lock_tree(db: &impl ConnectionTrait) -> Result<(), DbErr> {
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        db.execute_unprepared("SELECT pg_advisory_xact_lock(72001)")
            .await?;
    }
    Ok(())
}

pub async fn find_product_type(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<Option<product_type::Model>, DbErr> {
    product_type::Entity::find_by_id(id).one(db).await
}

pub async fn product_type_named(
    db: &impl ConnectionTrait,
    name: &str,
) -> Result<Option<product_type::Model>, DbErr> {
    product_type::Entity::find()
        .filter(product_type::Column::Name.eq(name))
        .one(db)
        .await
}

pub async fn all_product_types(
    db: &impl ConnectionTrait,
) -> Result<Vec<product_type::Model>, DbErr> {
    product_type::Entity::find()
        .order_by_asc(product_type::Column::Name)
        .all(db)
        .await
}

/// Definitions in an owner's order: of one product type, or of one shop-wide scope.
pub async fn attribute_definitions(
    db: &impl ConnectionTrait,
    scope: Option<&str>,
    product_type_id: Option<i64>,
) -> Result<Vec<attribute_definition::Model>, DbErr> {
    let mut query = attribute_definition::Entity::find();
    if let Some(scope) = scope {
        query = query.filter(attribute_definition::Column::Scope.eq(scope));
    }
    if let Some(type_id) = product_type_id {
        query = query.filter(attribute_definition::Column::ProductTypeId.eq(type_id));
    }
    query
        .order_by_asc(attribute_definition::Column::SortOrder)
        .order_by_asc(attribute_definition::Column::Id)
        .all(db)
        .await
}

pub async fn find_attribute(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<Option<attribute_definition::Model>, DbErr> {
    attribute_definition::Entity::find_by_id(id).one(db).await
}

pub async fn attribute_code_taken(
    db: &impl ConnectionTrait,
    scope: &str,
    product_type_id: Option<i64>,
    code: &str,
) -> Result<bool, DbErr> {
    let mut query = attribute_definition::Entity::find()
        .filter(attribute_definition::Column::Scope.eq(scope))
        .filter(attribute_definition::Column::Code.eq(code));
    query = match product_type_id {
        Some(id) => query.filter(attribute_definition::Column::ProductTypeId.eq(id)),
        None => query.filter(attribute_definition::Column::ProductTypeId.is_null()),
    };
    Ok(query.count(db).await? > 0)
}

pub async fn count_values_of(db: &impl ConnectionTrait, definition_id: i64) -> Result<u64, DbErr> {
    attribute_value::Entity::find()
        .filter(attribute_value::Column::DefinitionId.eq(definition_id))
        .count(db)
        .await
}

/// The values of `owner_id` for the given definitions.
pub async fn values_of(
    db: &impl ConnectionTrait,
    definition_ids: &[i64],
    owner_id: i64,
) -> Result<Vec<attribute_value::Model>, DbErr> {
    attribute_value::Entity::find()
        .filter(attribute_value::Column::DefinitionId.is_in(definition_ids.iter().copied()))
        .filter(attribute_value::Column::OwnerId.eq(owner_id))
        .all(db)
        .await
}

/// The values of several owners for the given definitions, for a page of them at once.
pub async fn values_of_owners(
    db: &impl ConnectionTrait,
    definition_ids: &[i64],
    owner_ids: &[i64],
) -> Result<Vec<attribute_value::Model>, DbErr> {
    if definition_ids.is_empty() || owner_ids.is_empty() {
        return Ok(Vec::new());
    }
    attribute_value::Entity::find()
        .filter(attribute_value::Column::DefinitionId.is_in(definition_ids.iter().copied()))
        .filter(attribute_value::Column::OwnerId.is_in(owner_ids.iter().copied()))
        .all(db)
        .await
}

/// Replaces the owner's values of the given definitions with `values`.
pub async fn replace_values(
    db: &impl ConnectionTrait,
    definition_ids: &[i64],
    owner_id: i64,
    values: Vec<(i64, String)>,
) -> Result<(), DbErr> {
    attribute_value::Entity::delete_many()
        .filter(attribute_value::Column::DefinitionId.is_in(definition_ids.iter().copied()))
        .filter(attribute_value::Column::OwnerId.eq(owner_id))
        .exec(db)
        .await?;
    if values.is_empty() {
        return Ok(());
    }
    let now = chrono::Utc::now();
    attribute_value::Entity::insert_many(values.into_iter().map(|(definition_id, value)| {
        attribute_value::ActiveModel {
            definition_id: Set(definition_id),
            owner_id: Set(owner_id),
            value: Set(value),
            updated_at: Set(now),
            ..Default::default()
        }
    }))
    .exec(db)
    .await?;
    Ok(())
}

/// How many values of a definition are one of `values` (JSON-encoded).
pub async fn count_values_among(
    db: &impl ConnectionTrait,
    definition_id: i64,
    values: &[String],
) -> Result<u64, DbErr> {
    if values.is_empty() {
        return Ok(0);
    }
    attribute_value::Entity::find()
        .filter(attribute_value::Column::DefinitionId.eq(definition_id))
        .filter(attribute_value::Column::Value.is_in(values.iter().cloned()))
        .count(db)
        .await
}

// Brands

pub async fn find_brand(db: &impl ConnectionTrait, id: i64) -> Result<Option<brand::Model>, DbErr> {
    brand::Entity::find_by_id(id).one(db).await
}

pub async fn find_brand_by_slug(
    db: &impl ConnectionTrait,
    slug: &str,
) -> Result<Option<brand::Model>, DbErr> {
    brand::Entity::find()
        .filter(brand::Column::Slug.eq(slug))
        .one(db)
        .await
}

/// The staff brand list; `q` matches part of the name, ignoring case on both databases.
pub fn brand_query(filter: &BrandFilter) -> Select<brand::Entity> {
    let mut query = brand::Entity::find();
    if let Some(q) = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        query = query.filter(
            Expr::expr(Func::lower(Expr::col((brand::Entity, brand::Column::Name))))
                .like(crate::platform::list::contains(q)),
        );
    }
    query
}

/// Visible brands in storefront order, at most `limit`.
pub async fn visible_brands(
    db: &impl ConnectionTrait,
    limit: u64,
) -> Result<Vec<brand::Model>, DbErr> {
    brand::Entity::find()
        .filter(brand::Column::IsVisible.eq(true))
        .order_by_asc(brand::Column::SortOrder)
        .order_by_asc(brand::Column::Name)
        .order_by_asc(brand::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// Products of the brand that are not soft-deleted.
pub async fn count_live_products_of_brand(
    db: &impl ConnectionTrait,
    brand_id: i64,
) -> Result<u64, DbErr> {
    product::Entity::find()
        .filter(product::Column::BrandId.eq(brand_id))
        .filter(product::Column::DeletedAt.is_null())
        .count(db)
        .await
}

/// Unlinks soft-deleted products from the brand so the foreign key lets it go; returns
/// how many there were.
pub async fn detach_deleted_products_from_brand(
    db: &impl ConnectionTrait,
    brand_id: i64,
) -> Result<u64, DbErr> {
    let result = product::Entity::update_many()
        .col_expr(product::Column::BrandId, Expr::value(Option::<i64>::None))
        .filter(product::Column::BrandId.eq(brand_id))
        .filter(product::Column::DeletedAt.is_not_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}
