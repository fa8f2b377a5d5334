//! SKUs: codes, prices, axis values, bundle parts, and generation from a type's axes.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::Utc;
use sea_orm::ActiveValue::{NotSet, Set};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, SqlErr};
use serde_json::{Value, json};

use super::model::{
    BundlePart, BundlePartInput, GenerateSkus, GeneratedSkus, SkuInput, SkuView, UpdateSku,
};
use super::{after_write, load_product, refresh_derived, store};
use crate::app::AppState;
use crate::catalog::entity::{attribute_definition, attribute_value, product, sku};
use crate::catalog::model::{AttributeScope, AttributeValues};
use crate::catalog::store as catalog_store;
use crate::identity::service::{Actor, audit};
use crate::inventory::model::MovementRef;
use crate::inventory::service as inventory;
use crate::platform::concurrency::{Expected, update_versioned};
use crate::platform::crud::find_or_404;
use crate::platform::error::Validator;
use crate::platform::{ApiError, ApiResult};

const RESOURCE: &str = "sku";
const MAX_PARTS: usize = 50;
const MAX_PART_QUANTITY: i32 = 1000;
const MAX_GENERATED: usize = 500;

fn code_taken(code: &str) -> ApiError {
    ApiError::conflict(
        "sku-code-taken",
        format!("another SKU already uses the code {code}"),
    )
}

fn combination_exists(key: Option<&str>) -> ApiError {
    let key = key.unwrap_or_default();
    ApiError::conflict(
        "sku-combination-exists",
        format!("the product already has a SKU for {key}"),
    )
}

/// Unique-constraint races become the same 409s as the checks before them.
fn insert_conflict(err: DbErr, code: &str, axis_key: Option<&str>) -> ApiError {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(detail)) if detail.contains("axis_key") => {
            combination_exists(axis_key)
        }
        Some(SqlErr::UniqueConstraintViolation(_)) => code_taken(code),
        _ => err.into(),
    }
}

/// The product type's SKU axes, in order; none without a type.
pub(super) async fn axes_of(
    db: &impl ConnectionTrait,
    product: &product::Model,
) -> ApiResult<Vec<attribute_definition::Model>> {
    Ok(match product.product_type_id {
        Some(type_id) => {
            catalog_store::attribute_definitions(
                db,
                Some(AttributeScope::SkuAxis.as_str()),
                Some(type_id),
            )
            .await?
        }
        None => Vec::new(),
    })
}

fn options_of(axis: &attribute_definition::Model) -> Vec<String> {
    serde_json::from_str(&axis.options).unwrap_or_default()
}

/// Checks a SKU's axis values: every axis of the type has one of its options, nothing
/// else. Returns the canonical key (`color=red;size=m`; none without axes) and the values
/// to store.
fn check_axes(
    v: &mut Validator,
    field: &str,
    axes: &[attribute_definition::Model],
    values: &AttributeValues,
) -> (Option<String>, Vec<(i64, String)>) {
    for code in values.keys() {
        v.check(
            axes.iter().any(|a| a.code == *code),
            &format!("{field}.{code}"),
            "is not a SKU axis of the product's type",
        );
    }
    let mut key = Vec::new();
    let mut stored = Vec::new();
    for axis in axes {
        let value = values.get(&axis.code).and_then(Value::as_str);
        let ok = value.is_some_and(|s| options_of(axis).iter().any(|o| o == s));
        v.check(
            ok,
            &format!("{field}.{}", axis.code),
            "must be one of the axis' options",
        );
        if let (true, Some(value)) = (ok, value) {
            key.push(format!("{}={value}", axis.code));
            stored.push((axis.id, Value::from(value).to_string()));
        }
    }
    ((!axes.is_empty()).then(|| key.join(";")), stored)
}

struct Fields<'a> {
    code: Option<&'a String>,
    price: Option<i64>,
    compare_at_price: Option<i64>,
    weight_grams: Option<i32>,
    barcode: Option<&'a String>,
    stock: Option<i32>,
}

fn check_fields(v: &mut Validator, prefix: &str, f: &Fields<'_>, price_now: i64) {
    let field = |name: &str| format!("{prefix}{name}");
    v.code_if(f.code, &field("code"));
    if let Some(price) = f.price {
        v.non_negative(price, &field("price"));
    }
    if let Some(compare) = f.compare_at_price {
        v.check(
            compare >= f.price.unwrap_or(price_now),
            &field("compare_at_price"),
            "must not be below the price",
        );
    }
    if let Some(weight) = f.weight_grams {
        v.non_negative(weight.into(), &field("weight_grams"));
    }
    v.text_if(f.barcode, &field("barcode"), 64);
    if let Some(stock) = f.stock {
        v.non_negative(stock.into(), &field("stock"));
    }
}

/// Checks a bundle SKU's parts: SKUs of other, non-bundle products, each once, in sane
/// quantities. Returns `(part_sku_id, quantity)`.
async fn check_parts(
    db: &impl ConnectionTrait,
    product: &product::Model,
    field: &str,
    parts: &[BundlePartInput],
) -> ApiResult<Vec<(i64, i32)>> {
    if !product.is_bundle {
        if parts.is_empty() {
            return Ok(Vec::new());
        }
        return Err(ApiError::invalid(
            field,
            "only a bundle's SKUs are made of parts",
        ));
    }
    let mut v = Validator::default();
    v.check(
        !parts.is_empty() && parts.len() <= MAX_PARTS,
        field,
        "a bundle SKU needs 1 to 50 parts",
    );
    let mut seen = HashSet::new();
    for (i, part) in parts.iter().enumerate() {
        v.check(
            (1..=MAX_PART_QUANTITY).contains(&part.quantity),
            &format!("{field}[{i}].quantity"),
            "must be 1 to 1000",
        );
        v.check(
            seen.insert(part.sku_id),
            &format!("{field}[{i}].sku_id"),
            "is listed twice",
        );
    }
    v.finish()?;
    let ids: Vec<i64> = parts.iter().map(|p| p.sku_id).collect();
    let found: HashMap<i64, sku::Model> = store::skus_by_id(db, &ids)
        .await?
        .into_iter()
        .map(|s| (s.id, s))
        .collect();
    let owners: HashMap<i64, product::Model> = product::Entity::find()
        .filter(product::Column::Id.is_in(found.values().map(|s| s.product_id)))
        .all(db)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    for (i, part) in parts.iter().enumerate() {
        let field = format!("{field}[{i}].sku_id");
        let Some(sku) = found.get(&part.sku_id) else {
            v.check(false, &field, "no such SKU");
            continue;
        };
        let owner = owners.get(&sku.product_id);
        v.check(
            sku.product_id != product.id,
            &field,
            "a bundle cannot contain its own SKUs",
        );
        v.check(
            owner.is_some_and(|o| !o.is_bundle),
            &field,
            "a bundle cannot contain another bundle",
        );
        v.check(
            owner.is_some_and(|o| o.deleted_at.is_none()),
            &field,
            "belongs to a deleted product",
        );
    }
    v.finish()?;
    Ok(parts.iter().map(|p| (p.sku_id, p.quantity)).collect())
}

/// Inserts one checked SKU of `product` with its axis values and parts; its stock is the
/// ledger's `initial` movement, by `staff_id`.
pub(super) async fn insert_sku(
    db: &impl ConnectionTrait,
    product: &product::Model,
    axes: &[attribute_definition::Model],
    input: &SkuInput,
    prefix: &str,
    staff_id: Option<i64>,
) -> ApiResult<sku::Model> {
    let mut v = Validator::default();
    v.code(&input.code, &format!("{prefix}code"));
    check_fields(
        &mut v,
        prefix,
        &Fields {
            code: None,
            price: Some(input.price),
            compare_at_price: input.compare_at_price,
            weight_grams: Some(input.weight_grams),
            barcode: input.barcode.as_ref(),
            stock: Some(input.stock),
        },
        input.price,
    );
    v.check(
        !product.is_bundle || input.stock == 0,
        &format!("{prefix}stock"),
        "a bundle's stock comes from its parts",
    );
    let (axis_key, axis_values) = check_axes(&mut v, &format!("{prefix}axes"), axes, &input.axes);
    v.finish()?;
    let parts = check_parts(db, product, &format!("{prefix}parts"), &input.parts).await?;
    if store::sku_code_taken(db, &input.code, None).await? {
        return Err(code_taken(&input.code));
    }
    if axis_key.is_some()
        && store::skus_of(db, product.id)
            .await?
            .iter()
            .any(|s| s.axis_key == axis_key)
    {
        return Err(combination_exists(axis_key.as_deref()));
    }
    let now = Utc::now();
    let created = sku::Entity::insert(sku::ActiveModel {
        id: NotSet,
        version: Set(1),
        product_id: Set(product.id),
        code: Set(input.code.clone()),
        price: Set(input.price),
        compare_at_price: Set(input.compare_at_price),
        weight_grams: Set(input.weight_grams),
        barcode: Set(input.barcode.clone()),
        stock: Set(input.stock),
        axis_key: Set(axis_key.clone()),
        is_active: Set(input.is_active),
        sort_order: Set(input.sort_order),
        reserved: Set(0),
        damaged: Set(0),
        safety_stock: Set(0),
        reorder_qty: Set(0),
        always_available: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_with_returning(db)
    .await
    .map_err(|e| insert_conflict(e, &input.code, axis_key.as_deref()))?;
    inventory::record_initial(
        db,
        created.id,
        created.stock,
        &MovementRef::staff(staff_id, "stock at SKU creation"),
    )
    .await?;
    write_axis_values(db, axes, created.id, axis_values).await?;
    store::replace_parts(db, created.id, &parts).await?;
    Ok(created)
}

async fn write_axis_values(
    db: &impl ConnectionTrait,
    axes: &[attribute_definition::Model],
    sku_id: i64,
    values: Vec<(i64, String)>,
) -> ApiResult<()> {
    let ids: Vec<i64> = axes.iter().map(|a| a.id).collect();
    catalog_store::replace_values(db, &ids, sku_id, values).await?;
    Ok(())
}

/// How many whole bundles the parts make: the scarcest part's available units decide; an
/// inactive part makes none. `None` when every part is always available (no limit).
pub(super) fn bundle_stock(parts: &[(i32, &sku::Model)]) -> Option<i32> {
    parts
        .iter()
        .filter(|(_, part)| !(part.is_active && part.always_available))
        .map(|(quantity, part)| {
            if part.is_active && *quantity > 0 {
                part.stock.saturating_sub(part.reserved).max(0) / quantity
            } else {
                0
            }
        })
        .min()
        .or(if parts.is_empty() { Some(0) } else { None })
}

/// The SKUs as responses: axis values by code, parts, and a bundle's derived stock.
pub(super) async fn sku_views(
    db: &impl ConnectionTrait,
    skus: Vec<sku::Model>,
) -> ApiResult<Vec<SkuView>> {
    let ids: Vec<i64> = skus.iter().map(|s| s.id).collect();
    // Values are owned by id alone (a SKU and a product may share a number), so only those
    // whose definition is a SKU axis count.
    let values = if ids.is_empty() {
        Vec::new()
    } else {
        attribute_value::Entity::find()
            .filter(attribute_value::Column::OwnerId.is_in(ids.iter().copied()))
            .filter(
                attribute_value::Column::DefinitionId.in_subquery(
                    sea_orm::sea_query::Query::select()
                        .column(attribute_definition::Column::Id)
                        .from(attribute_definition::Entity)
                        .and_where(
                            attribute_definition::Column::Scope
                                .eq(AttributeScope::SkuAxis.as_str()),
                        )
                        .to_owned(),
                ),
            )
            .all(db)
            .await?
    };
    let definition_ids: HashSet<i64> = values.iter().map(|v| v.definition_id).collect();
    let codes: HashMap<i64, String> = attribute_definition::Entity::find()
        .filter(attribute_definition::Column::Id.is_in(definition_ids))
        .all(db)
        .await?
        .into_iter()
        .map(|d| (d.id, d.code))
        .collect();
    let mut axes: HashMap<i64, AttributeValues> = HashMap::new();
    for value in values {
        if let Some(code) = codes.get(&value.definition_id) {
            axes.entry(value.owner_id).or_default().insert(
                code.clone(),
                serde_json::from_str(&value.value).unwrap_or(Value::Null),
            );
        }
    }
    let parts = store::parts_of(db, &ids).await?;
    let part_ids: Vec<i64> = parts.iter().map(|p| p.part_sku_id).collect();
    let part_skus: HashMap<i64, sku::Model> = store::skus_by_id(db, &part_ids)
        .await?
        .into_iter()
        .map(|s| (s.id, s))
        .collect();
    Ok(skus
        .into_iter()
        .map(|s| {
            let mine: Vec<_> = parts
                .iter()
                .filter(|p| p.bundle_sku_id == s.id)
                .filter_map(|p| part_skus.get(&p.part_sku_id).map(|sku| (p.quantity, sku)))
                .collect();
            // A bundle's stock is what its parts make; nothing is reserved on it.
            let (stock, reserved, always_available) = if mine.is_empty() {
                (s.stock, s.reserved, s.always_available)
            } else {
                match bundle_stock(&mine) {
                    Some(stock) => (stock, 0, false),
                    None => (0, 0, true),
                }
            };
            SkuView {
                axes: axes.remove(&s.id).unwrap_or_default(),
                parts: mine
                    .iter()
                    .map(|(quantity, part)| BundlePart {
                        sku_id: part.id,
                        code: part.code.clone(),
                        quantity: *quantity,
                    })
                    .collect(),
                stock,
                reserved,
                available: stock.saturating_sub(reserved),
                always_available,
                id: s.id,
                product_id: s.product_id,
                code: s.code,
                price: s.price,
                compare_at_price: s.compare_at_price,
                weight_grams: s.weight_grams,
                barcode: s.barcode,
                is_active: s.is_active,
                sort_order: s.sort_order,
                version: s.version,
            }
        })
        .collect())
}

async fn one_view(db: &impl ConnectionTrait, sku: sku::Model) -> ApiResult<SkuView> {
    sku_views(db, vec![sku])
        .await?
        .pop()
        .ok_or_else(|| ApiError::internal("a SKU vanished while it was read"))
}

pub async fn get_sku(state: &AppState, id: i64) -> ApiResult<SkuView> {
    let db = state.db.reader();
    one_view(db, find_or_404::<sku::Entity>(db, id, RESOURCE).await?).await
}

pub async fn list_skus(state: &AppState, product_id: i64) -> ApiResult<Vec<SkuView>> {
    let db = state.db.reader();
    load_product(db, product_id).await?;
    sku_views(db, store::skus_of(db, product_id).await?).await
}

pub async fn create_sku(
    state: &AppState,
    actor: &Actor<'_>,
    product_id: i64,
    input: SkuInput,
) -> ApiResult<SkuView> {
    let txn = state.db.begin().await?;
    let product = load_product(&txn, product_id).await?;
    let axes = axes_of(&txn, &product).await?;
    let staff_id = actor.principal.map(|p| p.staff_id);
    let created = insert_sku(&txn, &product, &axes, &input, "", staff_id).await?;
    refresh_derived(&txn, product.id).await?;
    audit(
        &txn,
        actor,
        "sku_created",
        Some(format!("sku:{}", created.id)),
        json!({ "product_id": product.id, "code": created.code, "price": created.price }),
    )
    .await?;
    let view = one_view(&txn, created).await?;
    txn.commit().await?;
    after_write(state, &product).await;
    Ok(view)
}

pub async fn update_sku(
    state: &AppState,
    actor: &Actor<'_>,
    id: i64,
    expected: Expected,
    input: UpdateSku,
) -> ApiResult<SkuView> {
    let txn = state.db.begin().await?;
    let current = find_or_404::<sku::Entity>(&txn, id, RESOURCE).await?;
    let product = load_product(&txn, current.product_id).await?;
    let mut v = Validator::default();
    check_fields(
        &mut v,
        "",
        &Fields {
            code: input.code.as_ref(),
            price: input.price,
            compare_at_price: input.compare_at_price.unwrap_or(current.compare_at_price),
            weight_grams: input.weight_grams,
            barcode: input.barcode.as_ref().and_then(Option::as_ref),
            stock: input.stock,
        },
        current.price,
    );
    v.check(
        !product.is_bundle || input.stock.is_none_or(|s| s == 0),
        "stock",
        "a bundle's stock comes from its parts",
    );
    let axes = axes_of(&txn, &product).await?;
    let axis_change = input
        .axes
        .as_ref()
        .map(|values| check_axes(&mut v, "axes", &axes, values));
    v.finish()?;
    let parts = match &input.parts {
        Some(parts) => Some(check_parts(&txn, &product, "parts", parts).await?),
        None => None,
    };
    if let Some(code) = &input.code
        && store::sku_code_taken(&txn, code, Some(id)).await?
    {
        return Err(code_taken(code));
    }
    if let Some((key @ Some(_), _)) = &axis_change
        && store::skus_of(&txn, product.id)
            .await?
            .iter()
            .any(|s| s.id != id && s.axis_key == *key)
    {
        return Err(combination_exists(key.as_deref()));
    }
    if input.is_active == Some(false) && current.is_active {
        ensure_not_last_active(&txn, &product, id).await?;
    }
    let code = input.code.clone().unwrap_or_else(|| current.code.clone());
    let axis_key = axis_change.as_ref().map(|(k, _)| k.clone());
    update_versioned(
        &txn,
        sku::ActiveModel {
            code: input.code.clone().map_or(NotSet, Set),
            price: input.price.map_or(NotSet, Set),
            compare_at_price: input.compare_at_price.map_or(NotSet, Set),
            weight_grams: input.weight_grams.map_or(NotSet, Set),
            barcode: input.barcode.clone().map_or(NotSet, Set),
            axis_key: axis_key.clone().map_or(NotSet, Set),
            is_active: input.is_active.map_or(NotSet, Set),
            sort_order: input.sort_order.map_or(NotSet, Set),
            updated_at: Set(Utc::now()),
            ..Default::default()
        },
        [sku::Column::Id, sku::Column::Version],
        id,
        expected,
        RESOURCE,
    )
    .await?;
    if let Some(stock) = input.stock {
        inventory::set_on_hand(
            &txn,
            id,
            stock,
            &MovementRef::staff(actor.principal.map(|p| p.staff_id), "set on SKU edit"),
        )
        .await?;
    }
    if let Some((_, values)) = axis_change {
        write_axis_values(&txn, &axes, id, values).await?;
    }
    if let Some(parts) = &parts {
        store::replace_parts(&txn, id, parts).await?;
    }
    refresh_derived(&txn, product.id).await?;
    audit(
        &txn,
        actor,
        "sku_updated",
        Some(format!("sku:{id}")),
        json!({
            "product_id": product.id,
            "code": code,
            "price": input.price,
            "stock": input.stock,
            "is_active": input.is_active,
        }),
    )
    .await?;
    let updated = find_or_404::<sku::Entity>(&txn, id, RESOURCE).await?;
    let view = one_view(&txn, updated).await?;
    let bundles = store::bundles_using(&txn, &[id]).await?;
    txn.commit().await?;
    after_write(state, &product).await;
    // A part's stock or price decides its bundles' availability.
    for bundle in &bundles {
        after_write(state, bundle).await;
    }
    Ok(view)
}

/// A listed product keeps at least one active SKU: the storefront would show a product
/// nobody can buy.
async fn ensure_not_last_active(
    db: &impl ConnectionTrait,
    product: &product::Model,
    sku_id: i64,
) -> ApiResult<()> {
    if product.status != "listed" {
        return Ok(());
    }
    let others = store::skus_of(db, product.id)
        .await?
        .iter()
        .filter(|s| s.id != sku_id && s.is_active)
        .count();
    if others == 0 {
        return Err(ApiError::conflict(
            "last-active-sku",
            "a listed product needs an active SKU; delist the product first",
        ));
    }
    Ok(())
}

pub async fn delete_sku(state: &AppState, actor: &Actor<'_>, id: i64) -> ApiResult<()> {
    let txn = state.db.begin().await?;
    let current = find_or_404::<sku::Entity>(&txn, id, RESOURCE).await?;
    let product = load_product(&txn, current.product_id).await?;
    ensure_not_last_active(&txn, &product, id).await?;
    let used = store::count_bundles_using(&txn, &[id]).await?;
    if used > 0 {
        return Err(ApiError::conflict(
            "sku-in-bundle",
            format!("the SKU is a part of {used} bundle SKU(s); remove it from them first"),
        ));
    }
    let axes = axes_of(&txn, &product).await?;
    write_axis_values(&txn, &axes, id, Vec::new()).await?;
    sku::Entity::delete_by_id(id).exec(&txn).await?;
    refresh_derived(&txn, product.id).await?;
    audit(
        &txn,
        actor,
        "sku_deleted",
        Some(format!("sku:{id}")),
        json!({ "product_id": product.id, "code": current.code }),
    )
    .await?;
    txn.commit().await?;
    after_write(state, &product).await;
    Ok(())
}

/// Every combination of the chosen options, in axis order.
fn combinations(axes: &[(&attribute_definition::Model, Vec<String>)]) -> Vec<Vec<String>> {
    axes.iter().fold(vec![Vec::new()], |acc, (_, options)| {
        acc.iter()
            .flat_map(|prefix| {
                options.iter().map(move |option| {
                    let mut next = prefix.clone();
                    next.push(option.clone());
                    next
                })
            })
            .collect()
    })
}

/// A code fragment from an option: letters and digits upper-cased, the rest as `-`.
fn code_part(option: &str) -> String {
    let mut part: String = option
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '-'
            }
        })
        .collect();
    while part.contains("--") {
        part = part.replace("--", "-");
    }
    part.trim_matches('-').to_owned()
}

/// Creates a SKU for each combination of the type's axis options the product lacks.
pub async fn generate_skus(
    state: &AppState,
    actor: &Actor<'_>,
    product_id: i64,
    input: GenerateSkus,
) -> ApiResult<GeneratedSkus> {
    let txn = state.db.begin().await?;
    let product = load_product(&txn, product_id).await?;
    if product.is_bundle {
        return Err(ApiError::conflict(
            "bundle-skus-not-generated",
            "a bundle's SKUs are made of parts; create them one by one",
        ));
    }
    let axes = axes_of(&txn, &product).await?;
    if axes.is_empty() {
        return Err(ApiError::conflict(
            "no-sku-axes",
            "the product's type has no SKU axes to combine",
        ));
    }
    let mut v = Validator::default();
    v.non_negative(input.price, "price");
    if let Some(compare) = input.compare_at_price {
        v.check(
            compare >= input.price,
            "compare_at_price",
            "must not be below the price",
        );
    }
    v.non_negative(input.weight_grams.into(), "weight_grams");
    let prefix = input
        .code_prefix
        .clone()
        .unwrap_or_else(|| product.slug.to_uppercase());
    v.code(&prefix, "code_prefix");
    for code in input.options.keys() {
        v.check(
            axes.iter().any(|a| a.code == *code),
            &format!("options.{code}"),
            "is not a SKU axis of the product's type",
        );
    }
    let chosen: Vec<(&attribute_definition::Model, Vec<String>)> = axes
        .iter()
        .map(|axis| {
            let all = options_of(axis);
            let options = match input.options.get(&axis.code) {
                Some(picked) => {
                    for option in picked {
                        v.check(
                            all.contains(option),
                            &format!("options.{}", axis.code),
                            "must be options of the axis",
                        );
                    }
                    all.into_iter().filter(|o| picked.contains(o)).collect()
                }
                None => all,
            };
            (axis, options)
        })
        .collect();
    let combos = combinations(&chosen);
    v.check(
        combos.len() <= MAX_GENERATED,
        "options",
        "at most 500 combinations at once",
    );
    v.finish()?;
    let existing: HashSet<String> = store::skus_of(&txn, product.id)
        .await?
        .into_iter()
        .filter_map(|s| s.axis_key)
        .collect();
    let mut created = Vec::new();
    let mut already = 0;
    let base_order = existing.len() as i32;
    for combo in combos {
        let values: AttributeValues = chosen
            .iter()
            .zip(&combo)
            .map(|((axis, _), option)| (axis.code.clone(), Value::from(option.as_str())))
            .collect();
        let key = chosen
            .iter()
            .zip(&combo)
            .map(|((axis, _), option)| format!("{}={option}", axis.code))
            .collect::<Vec<_>>()
            .join(";");
        if existing.contains(&key) {
            already += 1;
            continue;
        }
        let mut code = std::iter::once(prefix.clone())
            .chain(combo.iter().map(|o| code_part(o)))
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join("-");
        code.truncate(64);
        let input = SkuInput {
            code,
            price: input.price,
            compare_at_price: input.compare_at_price,
            weight_grams: input.weight_grams,
            barcode: None,
            stock: 0,
            axes: values,
            parts: Vec::new(),
            is_active: true,
            sort_order: base_order + created.len() as i32,
        };
        created.push(insert_sku(&txn, &product, &axes, &input, "", None).await?);
    }
    refresh_derived(&txn, product.id).await?;
    audit(
        &txn,
        actor,
        "skus_generated",
        Some(format!("product:{}", product.id)),
        json!({ "created": created.iter().map(|s| &s.code).collect::<Vec<_>>() }),
    )
    .await?;
    let created = sku_views(&txn, created).await?;
    txn.commit().await?;
    after_write(state, &product).await;
    Ok(GeneratedSkus {
        created,
        existing: already,
    })
}

/// Picks codes `<code>-COPY`, `<code>-COPY-2`, … that no SKU uses, for a product copy.
pub(super) async fn copy_codes(
    db: &impl ConnectionTrait,
    codes: &[String],
) -> ApiResult<BTreeMap<String, String>> {
    let mut taken: HashSet<String> = HashSet::new();
    let mut picked = BTreeMap::new();
    for code in codes {
        let stem: String = code.chars().take(52).collect();
        let base = format!("{stem}-COPY");
        taken.extend(store::sku_codes_like(db, &base).await?);
        let mut candidate = base.clone();
        let mut n = 2;
        while taken.contains(&candidate) {
            candidate = format!("{base}-{n}");
            n += 1;
        }
        taken.insert(candidate.clone());
        picked.insert(code.clone(), candidate);
    }
    Ok(picked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(stock: i32, active: bool) -> sku::Model {
        let now = Utc::now();
        sku::Model {
            id: 1,
            version: 1,
            product_id: 1,
            code: "P".into(),
            price: 100,
            compare_at_price: None,
            weight_grams: 0,
            barcode: None,
            stock,
            axis_key: None,
            is_active: active,
            sort_order: 0,
            reserved: 0,
            damaged: 0,
            safety_stock: 0,
            reorder_qty: 0,
            always_available: false,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn the_scarcest_part_decides_how_many_bundles_there_are() {
        let (a, b) = (part(10, true), part(7, true));
        assert_eq!(bundle_stock(&[(2, &a), (1, &b)]), Some(5));
        assert_eq!(bundle_stock(&[(2, &a), (3, &b)]), Some(2));
        assert_eq!(bundle_stock(&[(11, &a)]), Some(0));
        let off = part(100, false);
        assert_eq!(bundle_stock(&[(1, &a), (1, &off)]), Some(0));
    }

    #[test]
    fn reserved_units_and_always_available_parts_count_for_bundles() {
        let mut a = part(10, true);
        a.reserved = 6;
        let mut digital = part(0, true);
        digital.always_available = true;
        assert_eq!(bundle_stock(&[(2, &a), (1, &digital)]), Some(2));
        assert_eq!(bundle_stock(&[(1, &digital)]), None);
        assert_eq!(bundle_stock(&[]), Some(0));
    }

    #[test]
    fn codes_are_made_of_options() {
        assert_eq!(code_part("Navy blue"), "NAVY-BLUE");
        assert_eq!(code_part("  xl "), "XL");
        assert_eq!(code_part("½ size"), "SIZE");
    }
}
