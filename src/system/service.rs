//! Rules of the system reference data: the region tree stays a tree, shipping rates are
//! consistent, and shipping prices are computed in one place.

use std::collections::{BTreeSet, HashMap};

use chrono::Utc;
use sea_orm::ActiveValue::{NotSet, Set};
use sea_orm::{ConnectionTrait, EntityTrait};

use super::entity::{carrier, packaging, payment_method, region, shipping_method};
use super::model::*;
use super::store;
use crate::app::AppState;
use crate::platform::cache::CachedDocument;
use crate::platform::concurrency::{Expected, update_versioned};
use crate::platform::crud::{delete_or_404, find_or_404};
use crate::platform::error::Validator;
use crate::platform::money::Money;
use crate::platform::{ApiError, ApiResult};

fn set_if<T: Into<sea_orm::Value>>(value: Option<T>) -> sea_orm::ActiveValue<T> {
    value.map_or(NotSet, Set)
}

fn trimmed(value: Option<&String>) -> Option<String> {
    value.map(|v| v.trim().to_owned())
}

// ---- regions --------------------------------------------------------------------------

/// A region's level must be one below its parent's; countries have no parent.
async fn check_parent(
    db: &impl ConnectionTrait,
    level: RegionLevel,
    parent_id: Option<i64>,
) -> ApiResult<()> {
    match parent_id {
        None if level == RegionLevel::Country => Ok(()),
        None => Err(ApiError::invalid(
            "parent_id",
            "only a country has no parent region",
        )),
        Some(parent_id) => {
            let parent = region::Entity::find_by_id(parent_id)
                .one(db)
                .await?
                .ok_or_else(|| {
                    ApiError::invalid("parent_id", format!("region {parent_id} does not exist"))
                })?;
            let parent_level = RegionLevel::parse(&parent.level);
            if parent_level.and_then(RegionLevel::child) == Some(level) {
                Ok(())
            } else {
                Err(ApiError::invalid(
                    "parent_id",
                    format!(
                        "a {} cannot be placed under a {}",
                        level.as_str(),
                        parent.level
                    ),
                ))
            }
        }
    }
}

pub async fn create_region(state: &AppState, input: CreateRegion) -> ApiResult<RegionView> {
    Validator::default()
        .code(&input.code, "code")
        .text(&input.name, "name", 100)
        .finish()?;
    let txn = state.db.begin().await?;
    check_parent(&txn, input.level, input.parent_id).await?;
    let now = Utc::now();
    let region = region::Entity::insert(region::ActiveModel {
        version: Set(1),
        parent_id: Set(input.parent_id),
        code: Set(input.code),
        name: Set(input.name.trim().to_owned()),
        level: Set(input.level.as_str().to_owned()),
        sort_order: Set(input.sort_order),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec_with_returning(&txn)
    .await?;
    txn.commit().await?;
    region_tree_changed(state).await;
    Ok(region.into())
}

/// Edits or moves a region; a move under itself or its own subtree is refused.
pub async fn update_region(
    state: &AppState,
    id: i64,
    expected: Expected,
    input: UpdateRegion,
) -> ApiResult<RegionView> {
    let mut v = Validator::default();
    v.code_if(input.code.as_ref(), "code");
    v.text_if(input.name.as_ref(), "name", 100);
    v.finish()?;
    let txn = state.db.begin().await?;
    let current = find_or_404::<region::Entity>(&txn, id, "region").await?;
    if let Some(parent_id) = input.parent_id {
        let level = RegionLevel::parse(&current.level).unwrap_or(RegionLevel::District);
        check_parent(&txn, level, parent_id).await?;
        if let Some(parent_id) = parent_id {
            let ancestors = store::region_with_ancestors(&txn, parent_id).await?;
            if ancestors.iter().any(|r| r.id == id) {
                return Err(ApiError::invalid(
                    "parent_id",
                    "a region cannot be moved under itself or its own subtree",
                ));
            }
        }
    }
    let changes = region::ActiveModel {
        parent_id: set_if(input.parent_id),
        code: set_if(input.code),
        name: set_if(trimmed(input.name.as_ref())),
        sort_order: set_if(input.sort_order),
        updated_at: Set(Utc::now()),
        ..Default::default()
    };
    update_versioned(
        &txn,
        changes,
        [region::Column::Id, region::Column::Version],
        id,
        expected,
        "region",
    )
    .await?;
    let region = find_or_404::<region::Entity>(&txn, id, "region").await?;
    txn.commit().await?;
    region_tree_changed(state).await;
    Ok(region.into())
}

pub async fn delete_region(state: &AppState, id: i64) -> ApiResult<()> {
    let txn = state.db.begin().await?;
    find_or_404::<region::Entity>(&txn, id, "region").await?;
    if store::count_children(&txn, id).await? > 0 {
        return Err(ApiError::conflict(
            "region-has-children",
            format!("region {id} still has sub-regions; delete or move them first"),
        ));
    }
    delete_or_404::<region::Entity>(&txn, id, "region").await?;
    txn.commit().await?;
    region_tree_changed(state).await;
    Ok(())
}

const REGION_TREE: CachedDocument = CachedDocument::new("regions");

/// The storefront's region tree as JSON, from the cache when it is fresh.
pub async fn region_tree_json(state: &AppState) -> ApiResult<Vec<u8>> {
    REGION_TREE
        .get_or_load(state.kv.as_ref(), || async {
            serde_json::to_vec(&region_tree(state.db.reader()).await?).map_err(ApiError::internal)
        })
        .await
}

/// Called after a committed region write.
async fn region_tree_changed(state: &AppState) {
    REGION_TREE.invalidate(state.kv.as_ref()).await;
}

/// Whether a region exists (an address may point at it).
pub async fn region_exists(db: &impl ConnectionTrait, id: i64) -> ApiResult<bool> {
    Ok(store::find_region(db, id).await?.is_some())
}

/// The whole region tree, siblings in their order.
pub async fn region_tree(db: &impl ConnectionTrait) -> ApiResult<Vec<RegionNode>> {
    let regions = store::all_regions(db).await?;
    let mut children: HashMap<Option<i64>, Vec<region::Model>> = HashMap::new();
    for region in regions {
        children.entry(region.parent_id).or_default().push(region);
    }
    fn build(
        parent: Option<i64>,
        children: &mut HashMap<Option<i64>, Vec<region::Model>>,
    ) -> Vec<RegionNode> {
        children
            .remove(&parent)
            .unwrap_or_default()
            .into_iter()
            .map(|r| RegionNode {
                children: build(Some(r.id), children),
                id: r.id,
                level: RegionLevel::parse(&r.level).unwrap_or(RegionLevel::District),
                code: r.code,
                name: r.name,
            })
            .collect()
    }
    Ok(build(None, &mut children))
}

// ---- carriers -------------------------------------------------------------------------

fn check_tracking_url(v: &mut Validator, url: &str) {
    v.check(
        url.is_empty() || url.starts_with("https://") || url.starts_with("http://"),
        "tracking_url",
        "must be an http(s) address, e.g. https://carrier.example/track?no={tracking_number}",
    );
}

pub async fn create_carrier(state: &AppState, input: CreateCarrier) -> ApiResult<CarrierView> {
    let mut v = Validator::default();
    v.code(&input.code, "code").text(&input.name, "name", 100);
    check_tracking_url(&mut v, &input.tracking_url);
    v.finish()?;
    let now = Utc::now();
    let carrier = carrier::Entity::insert(carrier::ActiveModel {
        version: Set(1),
        code: Set(input.code),
        name: Set(input.name.trim().to_owned()),
        tracking_url: Set(input.tracking_url),
        active: Set(input.active),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec_with_returning(state.db.writer())
    .await?;
    Ok(carrier.into())
}

pub async fn update_carrier(
    state: &AppState,
    id: i64,
    expected: Expected,
    input: UpdateCarrier,
) -> ApiResult<CarrierView> {
    let mut v = Validator::default();
    v.code_if(input.code.as_ref(), "code");
    v.text_if(input.name.as_ref(), "name", 100);
    if let Some(url) = &input.tracking_url {
        check_tracking_url(&mut v, url);
    }
    v.finish()?;
    let changes = carrier::ActiveModel {
        code: set_if(input.code),
        name: set_if(trimmed(input.name.as_ref())),
        tracking_url: set_if(input.tracking_url),
        active: set_if(input.active),
        updated_at: Set(Utc::now()),
        ..Default::default()
    };
    let db = state.db.writer();
    update_versioned(
        db,
        changes,
        [carrier::Column::Id, carrier::Column::Version],
        id,
        expected,
        "carrier",
    )
    .await?;
    Ok(find_or_404::<carrier::Entity>(db, id, "carrier")
        .await?
        .into())
}

// ---- shipping methods -----------------------------------------------------------------

fn check_currency(v: &mut Validator, currency: &str) {
    v.check(
        currency.len() == 3 && currency.chars().all(|c| c.is_ascii_uppercase()),
        "currency",
        "must be an ISO 4217 code such as CNY",
    );
}

/// Checks the rates' numbers and that each region has at most one rate.
async fn check_rates(db: &impl ConnectionTrait, rates: &[ShippingRate]) -> ApiResult<()> {
    let mut v = Validator::default();
    let mut seen = BTreeSet::new();
    for (i, rate) in rates.iter().enumerate() {
        let field = |name: &str| format!("rates[{i}].{name}");
        v.non_negative(rate.first_weight_grams, &field("first_weight_grams"))
            .non_negative(rate.first_price, &field("first_price"))
            .non_negative(rate.step_price, &field("step_price"))
            .check(
                rate.step_weight_grams > 0,
                &field("step_weight_grams"),
                "must be positive",
            )
            .check(
                seen.insert(rate.region_id),
                &field("region_id"),
                "another rate already covers this region",
            );
    }
    v.finish()?;
    for (i, rate) in rates.iter().enumerate() {
        if let Some(region_id) = rate.region_id
            && region::Entity::find_by_id(region_id)
                .one(db)
                .await?
                .is_none()
        {
            return Err(ApiError::invalid(
                format!("rates[{i}].region_id"),
                format!("region {region_id} does not exist"),
            ));
        }
    }
    Ok(())
}

async fn check_carrier(db: &impl ConnectionTrait, carrier_id: Option<i64>) -> ApiResult<()> {
    if let Some(id) = carrier_id
        && carrier::Entity::find_by_id(id).one(db).await?.is_none()
    {
        return Err(ApiError::invalid(
            "carrier_id",
            format!("carrier {id} does not exist"),
        ));
    }
    Ok(())
}

pub async fn shipping_method_view(
    db: &impl ConnectionTrait,
    method: shipping_method::Model,
) -> ApiResult<ShippingMethodView> {
    let rates = store::rates_by_method(db, &[method.id])
        .await?
        .remove(&method.id)
        .unwrap_or_default();
    Ok(ShippingMethodView::new(
        method,
        rates.into_iter().map(Into::into).collect(),
    ))
}

pub async fn create_shipping_method(
    state: &AppState,
    input: CreateShippingMethod,
) -> ApiResult<ShippingMethodView> {
    let currency = input
        .currency
        .unwrap_or_else(|| state.config.shop.currency.clone());
    let mut v = Validator::default();
    v.code(&input.code, "code").text(&input.name, "name", 100);
    check_currency(&mut v, &currency);
    v.finish()?;
    let txn = state.db.begin().await?;
    check_carrier(&txn, input.carrier_id).await?;
    check_rates(&txn, &input.rates).await?;
    let now = Utc::now();
    let method = shipping_method::Entity::insert(shipping_method::ActiveModel {
        version: Set(1),
        code: Set(input.code),
        name: Set(input.name.trim().to_owned()),
        carrier_id: Set(input.carrier_id),
        currency: Set(currency),
        active: Set(input.active),
        sort_order: Set(input.sort_order),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec_with_returning(&txn)
    .await?;
    store::replace_rates(&txn, method.id, &input.rates).await?;
    let view = shipping_method_view(&txn, method).await?;
    txn.commit().await?;
    Ok(view)
}

pub async fn update_shipping_method(
    state: &AppState,
    id: i64,
    expected: Expected,
    input: UpdateShippingMethod,
) -> ApiResult<ShippingMethodView> {
    let mut v = Validator::default();
    v.code_if(input.code.as_ref(), "code");
    v.text_if(input.name.as_ref(), "name", 100);
    if let Some(currency) = &input.currency {
        check_currency(&mut v, currency);
    }
    v.finish()?;
    let txn = state.db.begin().await?;
    if let Some(carrier_id) = input.carrier_id {
        check_carrier(&txn, carrier_id).await?;
    }
    if let Some(rates) = &input.rates {
        check_rates(&txn, rates).await?;
    }
    let changes = shipping_method::ActiveModel {
        code: set_if(input.code),
        name: set_if(trimmed(input.name.as_ref())),
        carrier_id: set_if(input.carrier_id),
        currency: set_if(input.currency),
        active: set_if(input.active),
        sort_order: set_if(input.sort_order),
        updated_at: Set(Utc::now()),
        ..Default::default()
    };
    update_versioned(
        &txn,
        changes,
        [
            shipping_method::Column::Id,
            shipping_method::Column::Version,
        ],
        id,
        expected,
        "shipping method",
    )
    .await?;
    if let Some(rates) = &input.rates {
        store::replace_rates(&txn, id, rates).await?;
    }
    let method = find_or_404::<shipping_method::Entity>(&txn, id, "shipping method").await?;
    let view = shipping_method_view(&txn, method).await?;
    txn.commit().await?;
    Ok(view)
}

/// Active methods that deliver to `region` with their price for the weight: the rate of the
/// nearest region on the path to the root wins, else the method's catch-all rate.
/// Runs on `db` so that a checkout quotes inside its own transaction (and connection).
pub async fn shipping_options(
    db: &impl ConnectionTrait,
    query: &ShippingQuery,
) -> ApiResult<Vec<ShippingOption>> {
    Validator::default()
        .non_negative(query.weight_grams, "weight_grams")
        .finish()?;
    let path = store::region_with_ancestors(db, query.region).await?;
    if path.is_empty() {
        return Err(ApiError::invalid(
            "region",
            format!("region {} does not exist", query.region),
        ));
    }
    let methods = store::active_shipping_methods(db).await?;
    let ids: Vec<i64> = methods.iter().map(|m| m.id).collect();
    let mut rates = store::rates_by_method(db, &ids).await?;
    let mut options: Vec<ShippingOption> = methods
        .into_iter()
        .filter_map(|method| {
            let rates = rates.remove(&method.id).unwrap_or_default();
            let rate = path
                .iter()
                .find_map(|region| rates.iter().find(|r| r.region_id == Some(region.id)))
                .or_else(|| rates.iter().find(|r| r.region_id.is_none()))?;
            let price = ShippingRate::from(rate.clone()).price_for(query.weight_grams);
            Some(ShippingOption {
                id: method.id,
                code: method.code,
                name: method.name,
                carrier_id: method.carrier_id,
                price: Money::new(price, method.currency),
            })
        })
        .collect();
    options.sort_by_key(|o| o.price.amount);
    Ok(options)
}

// ---- packaging ------------------------------------------------------------------------

pub async fn create_packaging(
    state: &AppState,
    input: CreatePackaging,
) -> ApiResult<PackagingView> {
    Validator::default()
        .text(&input.name, "name", 100)
        .non_negative(input.price, "price")
        .finish()?;
    let now = Utc::now();
    let packaging = packaging::Entity::insert(packaging::ActiveModel {
        version: Set(1),
        name: Set(input.name.trim().to_owned()),
        price: Set(input.price),
        currency: Set(state.config.shop.currency.clone()),
        active: Set(input.active),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec_with_returning(state.db.writer())
    .await?;
    Ok(packaging.into())
}

pub async fn update_packaging(
    state: &AppState,
    id: i64,
    expected: Expected,
    input: UpdatePackaging,
) -> ApiResult<PackagingView> {
    let mut v = Validator::default();
    v.text_if(input.name.as_ref(), "name", 100);
    if let Some(price) = input.price {
        v.non_negative(price, "price");
    }
    v.finish()?;
    let changes = packaging::ActiveModel {
        name: set_if(trimmed(input.name.as_ref())),
        price: set_if(input.price),
        active: set_if(input.active),
        updated_at: Set(Utc::now()),
        ..Default::default()
    };
    let db = state.db.writer();
    update_versioned(
        db,
        changes,
        [packaging::Column::Id, packaging::Column::Version],
        id,
        expected,
        "packaging",
    )
    .await?;
    Ok(find_or_404::<packaging::Entity>(db, id, "packaging")
        .await?
        .into())
}

// ---- payment methods ------------------------------------------------------------------

pub async fn create_payment_method(
    state: &AppState,
    input: CreatePaymentMethod,
) -> ApiResult<PaymentMethodView> {
    Validator::default()
        .code(&input.code, "code")
        .text(&input.name, "name", 100)
        .check(
            input.description.chars().count() <= 2000,
            "description",
            "must be at most 2000 characters",
        )
        .finish()?;
    let now = Utc::now();
    let method = payment_method::Entity::insert(payment_method::ActiveModel {
        version: Set(1),
        code: Set(input.code),
        name: Set(input.name.trim().to_owned()),
        provider: Set(input.provider.as_str().to_owned()),
        description: Set(input.description),
        active: Set(input.active),
        sort_order: Set(input.sort_order),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec_with_returning(state.db.writer())
    .await?;
    Ok(method.into())
}

pub async fn update_payment_method(
    state: &AppState,
    id: i64,
    expected: Expected,
    input: UpdatePaymentMethod,
) -> ApiResult<PaymentMethodView> {
    let mut v = Validator::default();
    v.code_if(input.code.as_ref(), "code");
    v.text_if(input.name.as_ref(), "name", 100);
    if let Some(description) = &input.description {
        v.check(
            description.chars().count() <= 2000,
            "description",
            "must be at most 2000 characters",
        );
    }
    v.finish()?;
    let changes = payment_method::ActiveModel {
        code: set_if(input.code),
        name: set_if(trimmed(input.name.as_ref())),
        provider: set_if(input.provider.map(|p| p.as_str().to_owned())),
        description: set_if(input.description),
        active: set_if(input.active),
        sort_order: set_if(input.sort_order),
        updated_at: Set(Utc::now()),
        ..Default::default()
    };
    let db = state.db.writer();
    update_versioned(
        db,
        changes,
        [payment_method::Column::Id, payment_method::Column::Version],
        id,
        expected,
        "payment method",
    )
    .await?;
    Ok(
        find_or_404::<payment_method::Entity>(db, id, "payment method")
            .await?
            .into(),
    )
}

// ---- presentation and deletion shared by the admin routes ------------------------------

/// Turns rows into their API views when no other data is needed.
pub async fn present<M, V: From<M>>(_db: &impl ConnectionTrait, rows: Vec<M>) -> ApiResult<Vec<V>> {
    Ok(rows.into_iter().map(V::from).collect())
}

/// Shipping method views with their rates, in one query for the whole page.
pub async fn present_shipping_methods(
    db: &impl ConnectionTrait,
    rows: Vec<shipping_method::Model>,
) -> ApiResult<Vec<ShippingMethodView>> {
    let ids: Vec<i64> = rows.iter().map(|m| m.id).collect();
    let mut rates = store::rates_by_method(db, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|m| {
            let own = rates.remove(&m.id).unwrap_or_default();
            ShippingMethodView::new(m, own.into_iter().map(Into::into).collect())
        })
        .collect())
}

pub async fn delete_carrier(state: &AppState, id: i64) -> ApiResult<()> {
    delete_or_404::<carrier::Entity>(state.db.writer(), id, "carrier").await
}

pub async fn delete_shipping_method(state: &AppState, id: i64) -> ApiResult<()> {
    delete_or_404::<shipping_method::Entity>(state.db.writer(), id, "shipping method").await
}

pub async fn delete_packaging(state: &AppState, id: i64) -> ApiResult<()> {
    delete_or_404::<packaging::Entity>(state.db.writer(), id, "packaging").await
}

pub async fn delete_payment_method(state: &AppState, id: i64) -> ApiResult<()> {
    delete_or_404::<payment_method::Entity>(state.db.writer(), id, "payment method").await
}
