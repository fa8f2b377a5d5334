//! Queries of the catalog domain; nothing else touches its tables.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
};

use super::entity::category;

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
