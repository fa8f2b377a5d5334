//! Queries of the system domain; nothing else touches its tables.

use std::collections::HashMap;

use sea_orm::ActiveValue::Set;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    Select,
};

use super::entity::{carrier, packaging, payment_method, region, shipping_method, shipping_rate};
use super::model::{ActiveFilter, PaymentMethodFilter, RegionFilter, ShippingRate};

pub fn region_query(filter: &RegionFilter) -> Select<region::Entity> {
    let mut query = region::Entity::find();
    if let Some(parent) = filter.parent_id {
        query = query.filter(region::Column::ParentId.eq(parent));
    }
    if let Some(level) = filter.level {
        query = query.filter(region::Column::Level.eq(level.as_str()));
    }
    if let Some(q) = &filter.q {
        query = query.filter(region::Column::Name.contains(q));
    }
    query
}

/// Every region, in sibling order, for building the tree.
pub async fn all_regions(db: &impl ConnectionTrait) -> Result<Vec<region::Model>, DbErr> {
    region::Entity::find()
        .order_by_asc(region::Column::SortOrder)
        .order_by_asc(region::Column::Name)
        .order_by_asc(region::Column::Id)
        .all(db)
        .await
}

pub async fn count_children(db: &impl ConnectionTrait, id: i64) -> Result<u64, DbErr> {
    region::Entity::find()
        .filter(region::Column::ParentId.eq(id))
        .count(db)
        .await
}

pub async fn find_region(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<Option<region::Model>, DbErr> {
    region::Entity::find_by_id(id).one(db).await
}

/// The region and its ancestors, nearest first.
pub async fn region_with_ancestors(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<Vec<region::Model>, DbErr> {
    let mut chain = Vec::new();
    let mut next = Some(id);
    // The depth of the tree is bounded by the four levels; the guard stops a corrupt cycle.
    while let Some(id) = next.filter(|_| chain.len() < 16) {
        match region::Entity::find_by_id(id).one(db).await? {
            Some(region) => {
                next = region.parent_id;
                chain.push(region);
            }
            None => break,
        }
    }
    Ok(chain)
}

pub fn carrier_query(filter: &ActiveFilter) -> Select<carrier::Entity> {
    let mut query = carrier::Entity::find();
    if let Some(active) = filter.active {
        query = query.filter(carrier::Column::Active.eq(active));
    }
    if let Some(q) = &filter.q {
        query = query.filter(carrier::Column::Name.contains(q));
    }
    query
}

pub fn shipping_method_query(filter: &ActiveFilter) -> Select<shipping_method::Entity> {
    let mut query = shipping_method::Entity::find();
    if let Some(active) = filter.active {
        query = query.filter(shipping_method::Column::Active.eq(active));
    }
    if let Some(q) = &filter.q {
        query = query.filter(shipping_method::Column::Name.contains(q));
    }
    query
}

pub async fn active_shipping_methods(
    db: &impl ConnectionTrait,
) -> Result<Vec<shipping_method::Model>, DbErr> {
    shipping_method::Entity::find()
        .filter(shipping_method::Column::Active.eq(true))
        .order_by_asc(shipping_method::Column::SortOrder)
        .order_by_asc(shipping_method::Column::Id)
        .all(db)
        .await
}

/// Rates of each method in `method_ids`.
pub async fn rates_by_method(
    db: &impl ConnectionTrait,
    method_ids: &[i64],
) -> Result<HashMap<i64, Vec<shipping_rate::Model>>, DbErr> {
    let mut out: HashMap<i64, Vec<shipping_rate::Model>> = HashMap::new();
    if method_ids.is_empty() {
        return Ok(out);
    }
    for rate in shipping_rate::Entity::find()
        .filter(shipping_rate::Column::ShippingMethodId.is_in(method_ids.iter().copied()))
        .order_by_asc(shipping_rate::Column::Id)
        .all(db)
        .await?
    {
        out.entry(rate.shipping_method_id).or_default().push(rate);
    }
    Ok(out)
}

pub async fn replace_rates(
    db: &impl ConnectionTrait,
    method_id: i64,
    rates: &[ShippingRate],
) -> Result<(), DbErr> {
    shipping_rate::Entity::delete_many()
        .filter(shipping_rate::Column::ShippingMethodId.eq(method_id))
        .exec(db)
        .await?;
    if rates.is_empty() {
        return Ok(());
    }
    shipping_rate::Entity::insert_many(rates.iter().map(|r| shipping_rate::ActiveModel {
        shipping_method_id: Set(method_id),
        region_id: Set(r.region_id),
        first_weight_grams: Set(r.first_weight_grams),
        first_price: Set(r.first_price),
        step_weight_grams: Set(r.step_weight_grams),
        step_price: Set(r.step_price),
        ..Default::default()
    }))
    .exec(db)
    .await?;
    Ok(())
}

pub fn packaging_query(filter: &ActiveFilter) -> Select<packaging::Entity> {
    let mut query = packaging::Entity::find();
    if let Some(active) = filter.active {
        query = query.filter(packaging::Column::Active.eq(active));
    }
    if let Some(q) = &filter.q {
        query = query.filter(packaging::Column::Name.contains(q));
    }
    query
}

pub fn payment_method_query(filter: &PaymentMethodFilter) -> Select<payment_method::Entity> {
    let mut query = payment_method::Entity::find();
    if let Some(active) = filter.active {
        query = query.filter(payment_method::Column::Active.eq(active));
    }
    if let Some(provider) = filter.provider {
        query = query.filter(payment_method::Column::Provider.eq(provider.as_str()));
    }
    query
}
