//! Stock rules. The movement functions (`reserve`, `release`, `ship`, `receive_return`,
//! `adjust`) run on the caller's connection, usually its transaction: the orders domain
//! reserves inside its checkout transaction, so an order and its reservation commit or
//! roll back together. On `Err` the caller must roll back: earlier lines may have moved.
//!
//! Each movement is one conditional UPDATE of the SKU row (so concurrent checkouts can
//! never take more than is available, on SQLite and PostgreSQL alike) followed by its
//! ledger row; lines are taken in SKU id order so two transactions never wait on each
//! other's rows in opposite orders.

use std::collections::{BTreeMap, HashMap};

use sea_orm::ConnectionTrait;
use serde_json::json;

use super::jobs::queue_low_stock_alert;
use super::model::{
    AdjustmentKind, LedgerFilter, Movement, MovementKind, MovementRef, NewAdjustment, StockFilter,
    StockLevel, UpdateStockSettings,
};
use super::store::{self, Change, Guard, Levels, StockRow, StockSort};
use crate::app::AppState;
use crate::catalog::entity::sku;
use crate::catalog::products::store as catalog_store;
use crate::identity::service::{Actor, audit};
use crate::platform::error::Validator;
use crate::platform::list::{ListParams, Page, SortFields};
use crate::platform::{ApiError, ApiResult};

/// The most units one line or adjustment may move.
const MAX_QUANTITY: i64 = 1_000_000;
const REASON_MAX: usize = 500;

const SORT: SortFields<StockSort> = SortFields(&[
    ("code", StockSort::Code),
    ("product_title", StockSort::ProductTitle),
    ("on_hand", StockSort::OnHand),
    ("available", StockSort::Available),
    ("updated_at", StockSort::UpdatedAt),
]);
const LEDGER_SORT: SortFields<()> = SortFields(&[]);

fn sku_not_found(id: i64) -> ApiError {
    ApiError::not_found("sku", id)
}

fn out_of_stock(code: &str, available: i64, requested: i64) -> ApiError {
    ApiError::conflict(
        "out-of-stock",
        format!(
            "SKU {code} has {} available, {requested} requested",
            available.max(0)
        ),
    )
}

/// A release or shipment larger than what is reserved or on hand: the caller's records
/// disagree with the stock, which is a bug somewhere.
fn stock_conflict(kind: MovementKind, code: &str, qty: i64) -> ApiError {
    tracing::error!(
        kind = kind.as_str(),
        sku = code,
        qty,
        "a stock movement would drive a level below zero"
    );
    ApiError::conflict(
        "stock-conflict",
        format!(
            "cannot {} {qty} of SKU {code}: the stock levels do not allow it",
            kind.as_str()
        ),
    )
}

fn bundle_has_no_stock() -> ApiError {
    ApiError::invalid(
        "sku_id",
        "a bundle's stock comes from its parts; change the parts' stock",
    )
}

/// One SKU a movement touches, after bundles are broken into parts and lines merged.
struct Target {
    sku_id: i64,
    code: String,
    qty: i64,
    /// The bundle ordered lets its parts be reserved beyond what is available.
    backordered: bool,
}

/// Turns order lines into per-SKU quantities: bundles become their parts, duplicates are
/// merged, always-available SKUs drop out (nothing is counted for them); in SKU id order.
async fn targets(db: &impl ConnectionTrait, lines: &[(i64, i64)]) -> ApiResult<Vec<Target>> {
    let mut v = Validator::default();
    for (i, (_, qty)) in lines.iter().enumerate() {
        v.check(
            (1..=MAX_QUANTITY).contains(qty),
            &format!("lines[{i}].quantity"),
            "must be 1 to 1000000",
        );
    }
    v.finish()?;
    let ids: Vec<i64> = lines.iter().map(|(id, _)| *id).collect();
    let skus: HashMap<i64, sku::Model> = catalog_store::skus_by_id(db, &ids)
        .await?
        .into_iter()
        .map(|s| (s.id, s))
        .collect();
    let product_ids: Vec<i64> = skus.values().map(|s| s.product_id).collect();
    let products: HashMap<i64, _> = catalog_store::products_by_id(db, &product_ids)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    let bundle_ids: Vec<i64> = skus
        .values()
        .filter(|s| products.get(&s.product_id).is_some_and(|p| p.is_bundle))
        .map(|s| s.id)
        .collect();
    let parts = store::parts_of(db, &bundle_ids).await?;
    let part_ids: Vec<i64> = parts.iter().map(|p| p.part_sku_id).collect();
    let part_skus: HashMap<i64, sku::Model> = catalog_store::skus_by_id(db, &part_ids)
        .await?
        .into_iter()
        .map(|s| (s.id, s))
        .collect();

    let mut merged: BTreeMap<i64, Target> = BTreeMap::new();
    let mut add = |sku: &sku::Model, qty: i64, backordered: bool| {
        if sku.always_available {
            return;
        }
        let target = merged.entry(sku.id).or_insert_with(|| Target {
            sku_id: sku.id,
            code: sku.code.clone(),
            qty: 0,
            backordered: true,
        });
        target.qty += qty;
        // A part also ordered on its own may only be oversold if every line allows it.
        target.backordered &= backordered;
    };
    for &(sku_id, qty) in lines {
        let sku = skus.get(&sku_id).ok_or_else(|| sku_not_found(sku_id))?;
        let product = products
            .get(&sku.product_id)
            .ok_or_else(|| sku_not_found(sku_id))?;
        if !product.is_bundle {
            // The update itself checks the SKU's own product for back- and pre-orders.
            add(sku, qty, false);
            continue;
        }
        let backordered = product.allow_backorder || product.allow_preorder;
        let mut any = false;
        for part in parts.iter().filter(|p| p.bundle_sku_id == sku_id) {
            let part_sku = part_skus
                .get(&part.part_sku_id)
                .ok_or_else(|| sku_not_found(part.part_sku_id))?;
            add(part_sku, qty * i64::from(part.quantity), backordered);
            any = true;
        }
        if !any {
            return Err(out_of_stock(&sku.code, 0, qty));
        }
    }
    Ok(merged.into_values().collect())
}

/// Applies one change and writes its ledger row; `None` when the change's condition
/// failed (nothing written). Queues the low-stock alert when available falls through the
/// safety stock.
async fn apply_movement(
    db: &impl ConnectionTrait,
    sku_id: i64,
    kind: MovementKind,
    change: &Change,
    by: &MovementRef,
) -> ApiResult<Option<Movement>> {
    let Some(after) = store::apply(db, sku_id, change).await? else {
        return Ok(None);
    };
    let movement = store::insert_movement(db, sku_id, kind, change, &after, by).await?;
    let before = Levels {
        stock: after.stock - movement.on_hand_delta,
        reserved: after.reserved - movement.reserved_delta,
        ..after
    };
    let safety = i64::from(after.safety_stock);
    if safety > 0
        && !after.always_available
        && before.available() >= safety
        && after.available() < safety
    {
        queue_low_stock_alert(db, sku_id, movement.id).await?;
    }
    Ok(Some(movement.into()))
}

/// The SKU's current levels, for an error message.
async fn current(db: &impl ConnectionTrait, sku_id: i64) -> ApiResult<sku::Model> {
    catalog_store::skus_by_id(db, &[sku_id])
        .await?
        .pop()
        .ok_or_else(|| sku_not_found(sku_id))
}

/// Reserves stock for order lines `(sku_id, quantity)`. Fails with 409 `out-of-stock`
/// naming the SKU and what is available when a line does not fit (unless the product
/// back- or pre-orders); always-available SKUs are not counted.
pub async fn reserve(
    db: &impl ConnectionTrait,
    lines: &[(i64, i64)],
    by: &MovementRef,
) -> ApiResult<()> {
    for t in targets(db, lines).await? {
        let change = Change {
            on_hand: 0,
            reserved: t.qty,
            damaged: 0,
            guard: Guard::FitsAvailable {
                backordered: t.backordered,
            },
        };
        if apply_movement(db, t.sku_id, MovementKind::Reserve, &change, by)
            .await?
            .is_none()
        {
            let now = current(db, t.sku_id).await?;
            let available = i64::from(now.stock) - i64::from(now.reserved);
            return Err(out_of_stock(&t.code, available, t.qty));
        }
    }
    Ok(())
}

/// Gives reserved stock back (an order cancelled or edited).
pub async fn release(
    db: &impl ConnectionTrait,
    lines: &[(i64, i64)],
    by: &MovementRef,
) -> ApiResult<()> {
    for t in targets(db, lines).await? {
        let change = Change {
            on_hand: 0,
            reserved: -t.qty,
            damaged: 0,
            guard: Guard::None,
        };
        if apply_movement(db, t.sku_id, MovementKind::Release, &change, by)
            .await?
            .is_none()
        {
            return Err(stock_conflict(MovementKind::Release, &t.code, t.qty));
        }
    }
    Ok(())
}

/// Reserved units leave the warehouse: on hand and reserved both go down.
pub async fn ship(
    db: &impl ConnectionTrait,
    lines: &[(i64, i64)],
    by: &MovementRef,
) -> ApiResult<()> {
    for t in targets(db, lines).await? {
        let change = Change {
            on_hand: -t.qty,
            reserved: -t.qty,
            damaged: 0,
            guard: Guard::None,
        };
        if apply_movement(db, t.sku_id, MovementKind::Ship, &change, by)
            .await?
            .is_none()
        {
            return Err(stock_conflict(MovementKind::Ship, &t.code, t.qty));
        }
    }
    Ok(())
}

/// Returned units come back: to on hand (`return_to_stock`), or when unfit to sell to
/// damaged (`damaged`).
pub async fn receive_return(
    db: &impl ConnectionTrait,
    sku_id: i64,
    qty: i64,
    to_damaged: bool,
    by: &MovementRef,
) -> ApiResult<()> {
    let kind = if to_damaged {
        MovementKind::Damaged
    } else {
        MovementKind::ReturnToStock
    };
    for t in targets(db, &[(sku_id, qty)]).await? {
        let (on_hand, damaged) = if to_damaged { (0, t.qty) } else { (t.qty, 0) };
        let change = Change {
            on_hand,
            reserved: 0,
            damaged,
            guard: Guard::None,
        };
        if apply_movement(db, t.sku_id, kind, &change, by)
            .await?
            .is_none()
        {
            return Err(stock_conflict(kind, &t.code, t.qty));
        }
    }
    Ok(())
}

/// Changes on hand by hand: `adjust` up or down, `write_off` down only. On hand never
/// drops below zero nor below what orders have reserved (409 `insufficient-stock`).
pub async fn adjust(
    db: &impl ConnectionTrait,
    sku_id: i64,
    delta: i64,
    kind: AdjustmentKind,
    by: &MovementRef,
) -> ApiResult<Movement> {
    let mut v = Validator::default();
    v.check(delta != 0, "delta", "must not be zero")
        .check(
            delta.abs() <= MAX_QUANTITY,
            "delta",
            "must be at most 1000000 units either way",
        )
        .check(
            kind != AdjustmentKind::WriteOff || delta < 0,
            "delta",
            "a write-off removes units: it must be negative",
        )
        .text(&by.reason, "reason", REASON_MAX);
    v.finish()?;
    let row = store::stock_row(db, sku_id)
        .await?
        .ok_or_else(|| sku_not_found(sku_id))?;
    if row.is_bundle {
        return Err(bundle_has_no_stock());
    }
    let change = Change {
        on_hand: delta,
        reserved: 0,
        damaged: 0,
        guard: if delta < 0 {
            Guard::KeepsReserved
        } else {
            Guard::None
        },
    };
    match apply_movement(db, sku_id, kind.into(), &change, by).await? {
        Some(movement) => Ok(movement),
        None => {
            let now = current(db, sku_id).await?;
            Err(insufficient_stock(&now, delta))
        }
    }
}

fn insufficient_stock(now: &sku::Model, delta: i64) -> ApiError {
    ApiError::conflict(
        "insufficient-stock",
        format!(
            "cannot change on hand of SKU {} by {delta}: {} on hand, {} reserved for orders",
            now.code, now.stock, now.reserved
        ),
    )
}

/// The ledger's first row for a SKU just inserted with `on_hand` units.
pub async fn record_initial(
    db: &impl ConnectionTrait,
    sku_id: i64,
    on_hand: i32,
    by: &MovementRef,
) -> ApiResult<()> {
    if on_hand <= 0 {
        return Ok(());
    }
    let change = Change {
        on_hand: on_hand.into(),
        reserved: 0,
        damaged: 0,
        guard: Guard::None,
    };
    let after = Levels {
        stock: on_hand,
        reserved: 0,
        damaged: 0,
        safety_stock: 0,
        always_available: false,
    };
    store::insert_movement(db, sku_id, MovementKind::Initial, &change, &after, by).await?;
    Ok(())
}

/// The `initial` ledger rows of products' SKUs inserted in bulk (the scale loader).
pub async fn record_initial_of_products(
    db: &impl ConnectionTrait,
    product_ids: &[i64],
) -> ApiResult<u64> {
    Ok(store::record_initial_of_products(db, product_ids).await?)
}

/// Sets on hand to `target` (the SKU editor's stock field) as an `adjust` movement; a
/// no-op when it is already there.
pub async fn set_on_hand(
    db: &impl ConnectionTrait,
    sku_id: i64,
    target: i32,
    by: &MovementRef,
) -> ApiResult<()> {
    let was = current(db, sku_id).await?;
    let delta = i64::from(target) - i64::from(was.stock);
    if delta == 0 {
        return Ok(());
    }
    let change = Change {
        on_hand: delta,
        reserved: 0,
        damaged: 0,
        guard: Guard::OnHandIs(was.stock),
    };
    if apply_movement(db, sku_id, MovementKind::Adjust, &change, by)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let now = current(db, sku_id).await?;
    if now.stock != was.stock {
        return Err(ApiError::conflict(
            "stock-changed",
            format!(
                "the stock of SKU {} changed meanwhile (now {}); reload and retry",
                now.code, now.stock
            ),
        ));
    }
    Err(insufficient_stock(&now, delta))
}

/// Tells the storefront's caches that these SKUs' stock changed. Call after committing
/// a transaction that moved stock.
pub async fn stock_changed(state: &AppState, sku_ids: &[i64]) {
    crate::catalog::products::stock_changed(state, sku_ids).await;
}

impl From<StockRow> for StockLevel {
    fn from(r: StockRow) -> Self {
        let available = r.stock.saturating_sub(r.reserved);
        Self {
            sku_id: r.id,
            sku_code: r.code,
            product_id: r.product_id,
            product_title: r.product_title,
            product_slug: r.product_slug,
            is_active: r.is_active,
            is_bundle: r.is_bundle,
            on_hand: r.stock,
            reserved: r.reserved,
            available,
            damaged: r.damaged,
            safety_stock: r.safety_stock,
            reorder_qty: r.reorder_qty,
            always_available: r.always_available,
            low_stock: !r.always_available && available < r.safety_stock,
            updated_at: r.updated_at,
        }
    }
}

/// Stock of the live products' SKUs (bundles keep none of their own); by SKU id unless
/// `sort` says otherwise.
pub async fn list_stock(
    state: &AppState,
    list: &ListParams,
    filter: &StockFilter,
) -> ApiResult<Page<StockLevel>> {
    let spec = list.spec(&SORT)?;
    let (rows, total) = store::stock_page(state.db.reader(), filter, &spec).await?;
    Ok(Page {
        items: rows.into_iter().map(StockLevel::from).collect(),
        total,
        page: spec.page,
        per_page: spec.limit,
    })
}

pub async fn get_stock(state: &AppState, sku_id: i64) -> ApiResult<StockLevel> {
    stock_level(state.db.reader(), sku_id).await
}

async fn stock_level(db: &impl ConnectionTrait, sku_id: i64) -> ApiResult<StockLevel> {
    Ok(store::stock_row(db, sku_id)
        .await?
        .ok_or_else(|| sku_not_found(sku_id))?
        .into())
}

pub async fn update_settings(
    state: &AppState,
    actor: &Actor<'_>,
    sku_id: i64,
    input: UpdateStockSettings,
) -> ApiResult<StockLevel> {
    let mut v = Validator::default();
    for (value, field) in [
        (input.safety_stock, "safety_stock"),
        (input.reorder_qty, "reorder_qty"),
    ] {
        if let Some(value) = value {
            v.non_negative(value.into(), field);
        }
    }
    v.finish()?;
    let txn = state.db.begin().await?;
    let before = stock_level(&txn, sku_id).await?;
    if before.is_bundle {
        return Err(bundle_has_no_stock());
    }
    store::update_settings(
        &txn,
        sku_id,
        input.safety_stock,
        input.reorder_qty,
        input.always_available,
    )
    .await?;
    audit(
        &txn,
        actor,
        "stock_settings_updated",
        Some(format!("sku:{sku_id}")),
        json!({ "safety_stock": input.safety_stock, "reorder_qty": input.reorder_qty,
            "always_available": input.always_available }),
    )
    .await?;
    let updated = stock_level(&txn, sku_id).await?;
    txn.commit().await?;
    if updated.always_available != before.always_available {
        stock_changed(state, &[sku_id]).await;
    }
    Ok(updated)
}

/// An adjustment or write-off by a staff member, in its own transaction.
pub async fn adjust_stock(
    state: &AppState,
    actor: &Actor<'_>,
    sku_id: i64,
    input: NewAdjustment,
) -> ApiResult<Movement> {
    let by = MovementRef::staff(actor.principal.map(|p| p.staff_id), input.reason.trim());
    let txn = state.db.begin().await?;
    let movement = adjust(&txn, sku_id, input.delta.into(), input.kind, &by).await?;
    txn.commit().await?;
    stock_changed(state, &[sku_id]).await;
    Ok(movement)
}

/// A SKU's ledger, newest first.
pub async fn ledger(
    state: &AppState,
    sku_id: i64,
    list: &ListParams,
    filter: &LedgerFilter,
) -> ApiResult<Page<Movement>> {
    let spec = list.spec(&LEDGER_SORT)?;
    let db = state.db.reader();
    store::stock_row(db, sku_id)
        .await?
        .ok_or_else(|| sku_not_found(sku_id))?;
    let (rows, total) = store::ledger_page(db, sku_id, filter, spec.offset, spec.limit).await?;
    Ok(Page {
        items: rows.into_iter().map(Movement::from).collect(),
        total,
        page: spec.page,
        per_page: spec.limit,
    })
}

pub async fn get_movement(state: &AppState, sku_id: i64, id: i64) -> ApiResult<Movement> {
    store::find_movement(state.db.reader(), id)
        .await?
        .filter(|m| m.sku_id == sku_id)
        .map(Movement::from)
        .ok_or_else(|| ApiError::not_found("stock movement", id))
}

/// Sets `qty` units of a SKU aside for a flash sale (reserved up), so ordinary checkouts
/// cannot take what the sale's gate will sell. 409 `out-of-stock` when they are not there.
pub async fn allot(
    db: &impl ConnectionTrait,
    sku_id: i64,
    qty: i64,
    by: &MovementRef,
) -> ApiResult<()> {
    let row = store::stock_row(db, sku_id)
        .await?
        .ok_or_else(|| sku_not_found(sku_id))?;
    if row.is_bundle {
        return Err(bundle_has_no_stock());
    }
    let change = Change {
        on_hand: 0,
        reserved: qty,
        damaged: 0,
        guard: Guard::FitsAvailable { backordered: false },
    };
    if apply_movement(db, sku_id, MovementKind::FlashAllot, &change, by)
        .await?
        .is_none()
    {
        let now = current(db, sku_id).await?;
        let available = i64::from(now.stock) - i64::from(now.reserved);
        return Err(out_of_stock(&now.code, available, qty));
    }
    Ok(())
}

/// Gives a flash sale's unsold units back to the SKU's available stock.
pub async fn release_allotment(
    db: &impl ConnectionTrait,
    sku_id: i64,
    qty: i64,
    by: &MovementRef,
) -> ApiResult<()> {
    let change = Change {
        on_hand: 0,
        reserved: -qty,
        damaged: 0,
        guard: Guard::None,
    };
    if apply_movement(db, sku_id, MovementKind::FlashRelease, &change, by)
        .await?
        .is_none()
    {
        let now = current(db, sku_id).await?;
        return Err(stock_conflict(MovementKind::FlashRelease, &now.code, qty));
    }
    Ok(())
}
