//! Queries of the content domain; nothing else touches its tables.

use sea_orm::ActiveValue::Set;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    Select,
};

use super::entity::{ad, directory, menu, menu_item, page};
use super::model::{AdFilter, DirectoryFilter, MenuFilter, PageFilter};

pub fn directory_query(filter: &DirectoryFilter) -> Select<directory::Entity> {
    let mut query = directory::Entity::find();
    if let Some(parent) = filter.parent_id {
        query = query.filter(directory::Column::ParentId.eq(parent));
    }
    if let Some(q) = &filter.q {
        query = query.filter(directory::Column::Name.contains(q));
    }
    query
}

/// Every directory in sibling order, for building the tree.
pub async fn all_directories(db: &impl ConnectionTrait) -> Result<Vec<directory::Model>, DbErr> {
    directory::Entity::find()
        .order_by_asc(directory::Column::SortOrder)
        .order_by_asc(directory::Column::Name)
        .order_by_asc(directory::Column::Id)
        .all(db)
        .await
}

pub async fn find_directory(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<Option<directory::Model>, DbErr> {
    directory::Entity::find_by_id(id).one(db).await
}

/// The directory and its ancestors, nearest first.
pub async fn directory_with_ancestors(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<Vec<directory::Model>, DbErr> {
    let mut chain: Vec<directory::Model> = Vec::new();
    let mut next = Some(id);
    // The guard stops at a cycle, which the move check keeps from ever being written.
    while let Some(id) = next.filter(|id| chain.iter().all(|d| d.id != *id)) {
        match find_directory(db, id).await? {
            Some(dir) => {
                next = dir.parent_id;
                chain.push(dir);
            }
            None => break,
        }
    }
    Ok(chain)
}

pub async fn count_child_directories(db: &impl ConnectionTrait, id: i64) -> Result<u64, DbErr> {
    directory::Entity::find()
        .filter(directory::Column::ParentId.eq(id))
        .count(db)
        .await
}

pub async fn count_pages_in(db: &impl ConnectionTrait, directory_id: i64) -> Result<u64, DbErr> {
    page::Entity::find()
        .filter(page::Column::DirectoryId.eq(directory_id))
        .count(db)
        .await
}

pub fn page_query(filter: &PageFilter) -> Select<page::Entity> {
    let mut query = page::Entity::find();
    if let Some(directory_id) = filter.directory_id {
        query = query.filter(page::Column::DirectoryId.eq(directory_id));
    }
    if let Some(published) = filter.published {
        query = query.filter(page::Column::Published.eq(published));
    }
    if let Some(q) = &filter.q {
        query = query.filter(page::Column::Title.contains(q));
    }
    query
}

pub async fn find_page(db: &impl ConnectionTrait, id: i64) -> Result<Option<page::Model>, DbErr> {
    page::Entity::find_by_id(id).one(db).await
}

pub async fn published_page_by_slug(
    db: &impl ConnectionTrait,
    slug: &str,
) -> Result<Option<page::Model>, DbErr> {
    page::Entity::find()
        .filter(page::Column::Slug.eq(slug))
        .filter(page::Column::Published.eq(true))
        .one(db)
        .await
}

/// Published pages that sit in a directory, in title order.
pub async fn published_pages_in_directories(
    db: &impl ConnectionTrait,
) -> Result<Vec<page::Model>, DbErr> {
    page::Entity::find()
        .filter(page::Column::Published.eq(true))
        .filter(page::Column::DirectoryId.is_not_null())
        .order_by_asc(page::Column::Title)
        .order_by_asc(page::Column::Id)
        .all(db)
        .await
}

pub async fn pages_by_ids(
    db: &impl ConnectionTrait,
    ids: Vec<i64>,
) -> Result<Vec<page::Model>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    page::Entity::find()
        .filter(page::Column::Id.is_in(ids))
        .all(db)
        .await
}

pub async fn directories_by_ids(
    db: &impl ConnectionTrait,
    ids: Vec<i64>,
) -> Result<Vec<directory::Model>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    directory::Entity::find()
        .filter(directory::Column::Id.is_in(ids))
        .all(db)
        .await
}

pub fn ad_query(filter: &AdFilter) -> Select<ad::Entity> {
    let mut query = ad::Entity::find();
    if let Some(placement) = &filter.placement {
        query = query.filter(ad::Column::Placement.eq(placement.as_str()));
    }
    if let Some(active) = filter.active {
        query = query.filter(ad::Column::Active.eq(active));
    }
    query
}

/// Active ads, optionally of one placement, in display order; the window is checked by
/// the caller so that both backends compare instants the same way.
pub async fn active_ads(
    db: &impl ConnectionTrait,
    placement: Option<&str>,
) -> Result<Vec<ad::Model>, DbErr> {
    let mut query = ad::Entity::find().filter(ad::Column::Active.eq(true));
    if let Some(placement) = placement {
        query = query.filter(ad::Column::Placement.eq(placement));
    }
    query
        .order_by_asc(ad::Column::Placement)
        .order_by_asc(ad::Column::SortOrder)
        .order_by_asc(ad::Column::Id)
        .all(db)
        .await
}

pub fn menu_query(filter: &MenuFilter) -> Select<menu::Entity> {
    let mut query = menu::Entity::find();
    if let Some(q) = &filter.q {
        query = query.filter(menu::Column::Name.contains(q));
    }
    query
}

pub async fn menu_by_code(
    db: &impl ConnectionTrait,
    code: &str,
) -> Result<Option<menu::Model>, DbErr> {
    menu::Entity::find()
        .filter(menu::Column::Code.eq(code))
        .one(db)
        .await
}

/// Items of the menus in `menu_ids`, in display order.
pub async fn menu_items(
    db: &impl ConnectionTrait,
    menu_ids: Vec<i64>,
) -> Result<Vec<menu_item::Model>, DbErr> {
    if menu_ids.is_empty() {
        return Ok(Vec::new());
    }
    menu_item::Entity::find()
        .filter(menu_item::Column::MenuId.is_in(menu_ids))
        .order_by_asc(menu_item::Column::SortOrder)
        .order_by_asc(menu_item::Column::Id)
        .all(db)
        .await
}

/// Removes every item of a menu, children before their parents.
pub async fn delete_menu_items(db: &impl ConnectionTrait, menu_id: i64) -> Result<(), DbErr> {
    menu_item::Entity::delete_many()
        .filter(menu_item::Column::MenuId.eq(menu_id))
        .filter(menu_item::Column::ParentId.is_not_null())
        .exec(db)
        .await?;
    menu_item::Entity::delete_many()
        .filter(menu_item::Column::MenuId.eq(menu_id))
        .exec(db)
        .await?;
    Ok(())
}

/// A menu item to insert; `parent_id` refers to an item inserted before it.
pub struct NewMenuItem {
    pub parent_id: Option<i64>,
    pub label: String,
    pub kind: &'static str,
    pub url: Option<String>,
    pub target_id: Option<i64>,
    pub sort_order: i32,
}

pub async fn insert_menu_item(
    db: &impl ConnectionTrait,
    menu_id: i64,
    item: NewMenuItem,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<menu_item::Model, DbErr> {
    menu_item::Entity::insert(menu_item::ActiveModel {
        version: Set(1),
        menu_id: Set(menu_id),
        parent_id: Set(item.parent_id),
        label: Set(item.label),
        kind: Set(item.kind.to_owned()),
        url: Set(item.url),
        target_id: Set(item.target_id),
        sort_order: Set(item.sort_order),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec_with_returning(db)
    .await
}
