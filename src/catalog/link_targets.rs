//! Slugs of categories and products that other domains link to (menus, ads), so they can
//! check a link's target and build its storefront address without reading catalog tables.

use std::collections::HashMap;

use chrono::Utc;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

use super::entity::{category, product};
use super::products::store::visible_condition;
use super::store::category_with_ancestors;

/// Slugs of the categories among `ids`; with `visible_only`, those the storefront shows
/// (neither they nor an ancestor hidden).
pub async fn category_slugs(
    db: &impl ConnectionTrait,
    ids: Vec<i64>,
    visible_only: bool,
) -> Result<HashMap<i64, String>, DbErr> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut slugs = HashMap::new();
    for c in category::Entity::find()
        .filter(category::Column::Id.is_in(ids))
        .all(db)
        .await?
    {
        if visible_only
            && category_with_ancestors(db, c.id)
                .await?
                .iter()
                .any(|a| !a.is_visible)
        {
            continue;
        }
        slugs.insert(c.id, c.slug);
    }
    Ok(slugs)
}

/// Slugs of the live products among `ids`; with `visible_only`, those on sale now.
pub async fn product_slugs(
    db: &impl ConnectionTrait,
    ids: Vec<i64>,
    visible_only: bool,
) -> Result<HashMap<i64, String>, DbErr> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut query = product::Entity::find()
        .filter(product::Column::Id.is_in(ids))
        .filter(product::Column::DeletedAt.is_null());
    if visible_only {
        query = query.filter(visible_condition(Utc::now()));
    }
    Ok(query
        .all(db)
        .await?
        .into_iter()
        .map(|p| (p.id, p.slug))
        .collect())
}
