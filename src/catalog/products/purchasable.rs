//! What carts and checkout need to know about SKUs, read in one place so that the cart a
//! customer sees and the order checkout writes agree on price, weight and sellability.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use super::model::ProductKind;
use super::store::{self, visible};
use crate::catalog::entity::{product, product_category};
use crate::platform::ApiResult;

/// One SKU as a buyer meets it.
#[derive(Debug, Clone)]
pub struct Purchasable {
    pub sku_id: i64,
    pub product_id: i64,
    pub code: String,
    pub title: String,
    pub slug: String,
    pub unit_price: i64,
    pub weight_grams: i64,
    /// Needs shipping.
    pub physical: bool,
    /// Why it cannot be bought now, if it cannot.
    pub unavailable: Option<&'static str>,
    /// Units on hand not reserved by other orders; `None` when stock does not limit sales
    /// (always available, backorder, pre-order, or a bundle whose parts decide).
    pub available: Option<i64>,
    pub category_ids: Vec<i64>,
}

/// The SKUs among `ids` that exist, keyed by id.
pub async fn purchasable(
    db: &impl ConnectionTrait,
    ids: &[i64],
    now: DateTime<Utc>,
) -> ApiResult<HashMap<i64, Purchasable>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let skus = store::skus_by_id(db, ids).await?;
    let product_ids: Vec<i64> = skus.iter().map(|s| s.product_id).collect();
    let products: HashMap<i64, product::Model> = store::products_by_id(db, &product_ids)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    let mut categories: HashMap<i64, Vec<i64>> = HashMap::new();
    for link in product_category::Entity::find()
        .filter(product_category::Column::ProductId.is_in(product_ids))
        .all(db)
        .await?
    {
        categories
            .entry(link.product_id)
            .or_default()
            .push(link.category_id);
    }
    let mut found = HashMap::with_capacity(skus.len());
    for s in skus {
        let Some(p) = products.get(&s.product_id).cloned() else {
            continue;
        };
        let listed = visible(
            &p.status,
            p.publish_at,
            p.unpublish_at,
            p.deleted_at.is_some(),
            now,
        );
        let unavailable = if !listed {
            Some("the product is not on sale")
        } else if !s.is_active {
            Some("this variant is no longer sold")
        } else {
            None
        };
        let unlimited = s.always_available || p.allow_backorder || p.allow_preorder || p.is_bundle;
        found.insert(
            s.id,
            Purchasable {
                sku_id: s.id,
                product_id: p.id,
                code: s.code,
                title: p.title,
                slug: p.slug,
                unit_price: s.price,
                weight_grams: s.weight_grams.into(),
                physical: p.kind == ProductKind::Physical.as_str(),
                unavailable,
                available: (!unlimited).then(|| i64::from(s.stock) - i64::from(s.reserved)),
                category_ids: categories.get(&p.id).cloned().unwrap_or_default(),
            },
        );
    }
    Ok(found)
}
