//! Staff edits of placed orders (R4.1): changing a pending order's items, quantities and
//! prices with promotions recomputed, and splitting an order into several.

use std::collections::{BTreeMap, HashMap};

use chrono::Utc;
use sea_orm::ActiveValue::Set;
use sea_orm::{ConnectionTrait, EntityTrait};
use serde_json::json;

use super::entity::{order, order_line};
use super::jobs::CancelUnpaidOrder;
use super::model::{
    EditOrder, EditResult, FrozenPricing, LineQuantity, OrderStatus, ShipTo, SplitOrder,
    SplitResult, Totals,
};
use super::service::{self, By};
use crate::app::AppState;
use crate::cart::model::{MAX_QUANTITY, ShippingChoice};
use crate::cart::service as cart;
use crate::catalog::products::purchasable::purchasable;
use crate::inventory::service as inventory;
use crate::jobs::{self, Enqueue};
use crate::platform::{ApiError, ApiResult};
use crate::promotions::usage;

/// One line of the order as the edit builds it.
struct Working {
    line: Option<order_line::Model>,
    quantity: i64,
    adjustment: i64,
    reason: Option<String>,
}

fn stale(o: &order::Model) -> ApiError {
    ApiError::conflict(
        "stale-version",
        format!(
            "order {} has changed since version you edited; reload it",
            o.number
        ),
    )
}

/// Applies `req` to a pending order and recomputes its promotions. With `dry_run` nothing
/// is kept: the answer shows what the edit would do to the totals.
pub async fn edit(
    state: &AppState,
    id: i64,
    expected: Option<i64>,
    req: EditOrder,
    by: By,
) -> ApiResult<EditResult> {
    let now = Utc::now();
    let txn = state.db.begin().await?;
    let o = service::lock(&txn, id).await?;
    service::check_unlocked(&o, &by)?;
    if expected.is_some_and(|v| v != o.version) {
        return Err(stale(&o));
    }
    service::expect_status(
        &o,
        &[OrderStatus::PendingPayment],
        "edited (only unpaid orders can be)",
    )?;
    refuse_flash_sale_order(&o, "edited")?;
    let before = Totals::from(&o);
    let old_lines = service::lines(&txn, o.id).await?;
    let mut working: BTreeMap<i64, Working> = old_lines
        .iter()
        .map(|l| {
            (
                l.sku_id,
                Working {
                    line: Some(l.clone()),
                    quantity: l.quantity,
                    adjustment: l.adjustment,
                    reason: l.adjustment_reason.clone(),
                },
            )
        })
        .collect();
    let sku_of_line = |line_id: i64, field: String| {
        old_lines
            .iter()
            .find(|l| l.id == line_id)
            .map(|l| l.sku_id)
            .ok_or_else(|| ApiError::invalid(field, format!("line {line_id} is not in this order")))
    };
    for (i, line_id) in req.remove.iter().enumerate() {
        let sku = sku_of_line(*line_id, format!("remove[{i}]"))?;
        working.remove(&sku);
    }
    for (i, change) in req.quantities.iter().enumerate() {
        let sku = sku_of_line(change.line_id, format!("quantities[{i}].line_id"))?;
        check_quantity(change.quantity, format!("quantities[{i}].quantity"))?;
        match working.get_mut(&sku) {
            Some(w) => w.quantity = change.quantity,
            None => {
                return Err(ApiError::invalid(
                    format!("quantities[{i}].line_id"),
                    "that line is being removed",
                ));
            }
        }
    }
    if !req.add.is_empty() {
        let ids: Vec<i64> = req.add.iter().map(|a| a.sku_id).collect();
        let items = purchasable(&txn, &ids, now).await?;
        for (i, add) in req.add.iter().enumerate() {
            check_quantity(add.quantity, format!("add[{i}].quantity"))?;
            let item = items.get(&add.sku_id).ok_or_else(|| {
                ApiError::invalid(
                    format!("add[{i}].sku_id"),
                    format!("SKU {} does not exist", add.sku_id),
                )
            })?;
            if let Some(reason) = item.unavailable {
                return Err(ApiError::invalid(
                    format!("add[{i}].sku_id"),
                    format!("{}: {reason}", item.code),
                ));
            }
            let w = working.entry(add.sku_id).or_insert(Working {
                line: None,
                quantity: 0,
                adjustment: 0,
                reason: None,
            });
            w.quantity += add.quantity;
            check_quantity(w.quantity, format!("add[{i}].quantity"))?;
        }
    }
    for (i, adj) in req.adjustments.iter().enumerate() {
        let sku = sku_of_line(adj.line_id, format!("adjustments[{i}].line_id"))?;
        let reason = adj.reason.trim();
        if reason.is_empty() || reason.len() > 200 {
            return Err(ApiError::invalid(
                format!("adjustments[{i}].reason"),
                "say why, in 1 to 200 characters",
            ));
        }
        let w = working.get_mut(&sku).ok_or_else(|| {
            ApiError::invalid(
                format!("adjustments[{i}].line_id"),
                "that line is being removed",
            )
        })?;
        w.adjustment = adj.amount;
        w.reason = Some(reason.to_owned());
    }
    if working.is_empty() {
        return Err(ApiError::invalid(
            "remove",
            "an order keeps at least one line; cancel it instead",
        ));
    }

    // Re-price with this order's own promotion uses given back first.
    usage::release_for_order(&txn, o.id).await?;
    let lines: Vec<(i64, i64)> = working.iter().map(|(sku, w)| (*sku, w.quantity)).collect();
    let frozen: HashMap<i64, i64> = working
        .iter()
        .filter_map(|(sku, w)| w.line.as_ref().map(|l| (*sku, l.unit_price)))
        .collect();
    let codes: Vec<String> = serde_json::from_str(&o.coupon_codes).unwrap_or_default();
    let draft = cart::quote(&txn, &lines, o.customer_id, &codes, 0, &frozen, now).await?;
    let fee = shipping_fee(&txn, &o, draft.weight_grams).await;
    let quote = cart::quote(&txn, &lines, o.customer_id, &codes, fee, &frozen, now).await?;
    if let Some(blocked) = quote.priced.blocked.first() {
        return Err(ApiError::conflict("blocked", blocked.reason.clone()));
    }
    let priced = &quote.priced;

    // Stock follows the quantity changes.
    let mut reserve = Vec::new();
    let mut release = Vec::new();
    let old: HashMap<i64, i64> = old_lines.iter().map(|l| (l.sku_id, l.quantity)).collect();
    for (sku, w) in &working {
        let delta = w.quantity - old.get(sku).copied().unwrap_or(0);
        if delta > 0 {
            reserve.push((*sku, delta));
        } else if delta < 0 {
            release.push((*sku, -delta));
        }
    }
    for l in &old_lines {
        if !working.contains_key(&l.sku_id) {
            release.push((l.sku_id, l.quantity));
        }
    }
    let movement = by.movement("order edited", o.id);
    inventory::release(&txn, &release, &movement).await?;
    inventory::reserve(&txn, &reserve, &movement).await?;

    let priced_lines: HashMap<i64, _> = priced.lines.iter().map(|l| (l.sku_id, l)).collect();
    let mut lines_total = 0;
    for (sku, w) in &working {
        let p = priced_lines
            .get(sku)
            .ok_or_else(|| ApiError::internal("priced line missing"))?;
        let total = p.total + w.adjustment;
        if total < 0 {
            return Err(ApiError::invalid(
                "adjustments",
                format!("line {sku} would cost less than nothing"),
            ));
        }
        lines_total += total;
        match &w.line {
            Some(line) => {
                order_line::Entity::update(order_line::ActiveModel {
                    id: Set(line.id),
                    quantity: Set(w.quantity),
                    discount: Set(p.discount),
                    adjustment: Set(w.adjustment),
                    adjustment_reason: Set(w.reason.clone()),
                    total: Set(total),
                    version: Set(line.version + 1),
                    updated_at: Set(now),
                    ..Default::default()
                })
                .exec(&txn)
                .await?;
            }
            None => {
                let item = &quote.items[sku];
                order_line::Entity::insert(order_line::ActiveModel {
                    order_id: Set(o.id),
                    sku_id: Set(*sku),
                    product_id: Set(item.product_id),
                    sku_code: Set(item.code.clone()),
                    title: Set(item.title.clone()),
                    unit_price: Set(item.unit_price),
                    quantity: Set(w.quantity),
                    discount: Set(p.discount),
                    adjustment: Set(w.adjustment),
                    adjustment_reason: Set(w.reason.clone()),
                    total: Set(total),
                    weight_grams: Set(item.weight_grams),
                    shipped_quantity: Set(0),
                    returned_quantity: Set(0),
                    created_at: Set(now),
                    updated_at: Set(now),
                    ..Default::default()
                })
                .exec(&txn)
                .await?;
            }
        }
    }
    for l in &old_lines {
        if !working.contains_key(&l.sku_id) {
            order_line::Entity::delete_by_id(l.id).exec(&txn).await?;
        }
    }
    usage::redeem(&txn, priced, &quote.resolved, o.id, o.customer_id).await?;
    let total =
        lines_total + priced.shipping - priced.shipping_discount + o.packaging_fee + o.adjustment;
    if total < o.gift_certificate_amount {
        return Err(ApiError::conflict(
            "below-gift-certificates",
            "the edited order would cost less than the gift certificates already took; cancel it instead",
        ));
    }
    let pricing = FrozenPricing {
        promotions: priced.applied.clone(),
        gift_coupon_promotion_ids: priced.gift_coupon_promotion_ids.clone(),
    };
    let updated = order::Entity::update(order::ActiveModel {
        id: Set(o.id),
        subtotal: Set(priced.subtotal),
        discount: Set(priced.discount),
        shipping_fee: Set(priced.shipping),
        shipping_discount: Set(priced.shipping_discount),
        total: Set(total),
        amount_due: Set(total - o.gift_certificate_amount),
        bonus_points: Set(priced.bonus_points),
        pricing: Set(serde_json::to_string(&pricing).unwrap_or_default()),
        version: Set(o.version + 1),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec(&txn)
    .await?;
    let after = Totals::from(&updated);
    let difference = after.total - before.total;
    service::record(
        &txn,
        o.id,
        "edited",
        None,
        &by,
        json!({
            "added": req.add.iter().map(|a| json!({"sku_id": a.sku_id, "quantity": a.quantity})).collect::<Vec<_>>(),
            "removed": req.remove,
            "quantities": req.quantities.iter().map(|q| json!({"line_id": q.line_id, "quantity": q.quantity})).collect::<Vec<_>>(),
            "adjustments": req.adjustments.iter().map(|a| json!({"line_id": a.line_id, "amount": a.amount, "reason": a.reason})).collect::<Vec<_>>(),
            "total_before": before.total,
            "total_after": after.total,
            "difference": difference,
        }),
    )
    .await?;
    let view = service::view(&txn, updated).await?;
    if !req.dry_run {
        txn.commit().await?;
    }
    Ok(EditResult {
        dry_run: req.dry_run,
        before,
        after,
        difference,
        promotions: pricing.promotions,
        order: view,
    })
}

fn check_quantity(quantity: i64, field: String) -> ApiResult<()> {
    if !(1..=MAX_QUANTITY).contains(&quantity) {
        return Err(ApiError::invalid(
            field,
            format!("must be between 1 and {MAX_QUANTITY}"),
        ));
    }
    Ok(())
}

/// The order's shipping method priced for the new weight; the old fee if it no longer
/// delivers there.
async fn shipping_fee(db: &impl ConnectionTrait, o: &order::Model, weight_grams: i64) -> i64 {
    let ship_to: Option<ShipTo> = serde_json::from_str(&o.ship_to).ok().flatten();
    let (Some(method), Some(ship_to)) = (o.shipping_method_id, ship_to) else {
        return o.shipping_fee;
    };
    let choice = ShippingChoice {
        region_id: Some(ship_to.region_id),
        shipping_method_id: Some(method),
    };
    match cart::shipping_for(db, &choice, weight_grams).await {
        Ok((_, Some(chosen))) => chosen.price.amount,
        _ => o.shipping_fee,
    }
}

/// Splits lines off into new orders. Each part becomes an order with the same customer,
/// address and status; line discounts and adjustments are shared out in proportion, and
/// the order-level charges (shipping, packaging, gift certificates) stay on the original,
/// so the totals of all the orders add up to the original total.
/// A flash-sale order holds units of the sale's allotment, which its sale gives back on
/// cancellation; changing its lines would break that count.
fn refuse_flash_sale_order(o: &order::Model, action: &str) -> ApiResult<()> {
    match o.flash_sale_id {
        Some(sale) => Err(ApiError::conflict(
            "flash-sale-order",
            format!(
                "order {} was bought in flash sale {sale} and cannot be {action}; cancel it instead",
                o.number
            ),
        )),
        None => Ok(()),
    }
}

pub async fn split(state: &AppState, id: i64, req: SplitOrder, by: By) -> ApiResult<SplitResult> {
    let now = Utc::now();
    let txn = state.db.begin().await?;
    let o = service::lock(&txn, id).await?;
    service::check_unlocked(&o, &by)?;
    service::expect_status(
        &o,
        &[OrderStatus::PendingPayment, OrderStatus::Paid],
        "split",
    )?;
    refuse_flash_sale_order(&o, "split")?;
    if !service::shipments_of(&txn, o.id).await?.is_empty() {
        return Err(ApiError::conflict(
            "has-shipments",
            "this order already has shipments; split its shipments instead",
        ));
    }
    if req.parts.is_empty() || req.parts.iter().any(Vec::is_empty) {
        return Err(ApiError::invalid(
            "parts",
            "give at least one part, each with lines",
        ));
    }
    let mut lines: BTreeMap<i64, order_line::Model> = service::lines(&txn, o.id)
        .await?
        .into_iter()
        .map(|l| (l.id, l))
        .collect();
    let mut taken: HashMap<i64, i64> = HashMap::new();
    for (p, part) in req.parts.iter().enumerate() {
        for (i, LineQuantity { line_id, quantity }) in part.iter().enumerate() {
            let Some(line) = lines.get(line_id) else {
                return Err(ApiError::invalid(
                    format!("parts[{p}][{i}].line_id"),
                    format!("line {line_id} is not in this order"),
                ));
            };
            let t = taken.entry(*line_id).or_insert(0);
            *t += quantity;
            if *quantity < 1 || *t > line.quantity {
                return Err(ApiError::invalid(
                    format!("parts[{p}][{i}].quantity"),
                    format!("line {line_id} has {} units", line.quantity),
                ));
            }
        }
    }
    let left: i64 = lines
        .values()
        .map(|l| l.quantity - taken.get(&l.id).copied().unwrap_or(0))
        .sum();
    if left == 0 {
        return Err(ApiError::invalid(
            "parts",
            "the original order must keep at least one unit",
        ));
    }
    let mut created = Vec::new();
    for (p, part) in req.parts.iter().enumerate() {
        let status = service::status_of(&o);
        let child = order::Entity::insert(order::ActiveModel {
            placed_at: Set(o.placed_at),
            payment_due_at: Set(o.payment_due_at),
            paid_at: Set(o.paid_at),
            payment_reference: Set(o.payment_reference.clone()),
            ..service::derived_order(&o, format!("{}-{}", o.number, p + 2), status)
        })
        .exec_with_returning(&txn)
        .await?;
        for LineQuantity { line_id, quantity } in part {
            let line = lines
                .get_mut(line_id)
                .ok_or_else(|| ApiError::internal("split line vanished"))?;
            let discount = line.discount * quantity / line.quantity;
            let adjustment = line.adjustment * quantity / line.quantity;
            let total = line.unit_price * quantity - discount + adjustment;
            order_line::Entity::insert(order_line::ActiveModel {
                order_id: Set(child.id),
                sku_id: Set(line.sku_id),
                product_id: Set(line.product_id),
                sku_code: Set(line.sku_code.clone()),
                title: Set(line.title.clone()),
                unit_price: Set(line.unit_price),
                quantity: Set(*quantity),
                discount: Set(discount),
                adjustment: Set(adjustment),
                adjustment_reason: Set(line.adjustment_reason.clone()),
                total: Set(total),
                weight_grams: Set(line.weight_grams),
                shipped_quantity: Set(0),
                returned_quantity: Set(0),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            })
            .exec(&txn)
            .await?;
            line.quantity -= quantity;
            line.discount -= discount;
            line.adjustment -= adjustment;
            line.total -= total;
        }
        let child = refresh_totals(&txn, &child, 0).await?;
        if child.status == OrderStatus::PendingPayment.as_str() {
            jobs::enqueue(
                &txn,
                &state.config,
                &CancelUnpaidOrder { order_id: child.id },
                Enqueue {
                    run_at: child.payment_due_at,
                    idempotency_key: Some(format!("cancel-unpaid:{}", child.id)),
                },
            )
            .await?;
        }
        service::record(
            &txn,
            child.id,
            "split_from",
            None,
            &by,
            json!({ "order": o.number }),
        )
        .await?;
        created.push(child);
    }
    for line in lines.values() {
        if line.quantity == 0 {
            order_line::Entity::delete_by_id(line.id).exec(&txn).await?;
        } else {
            order_line::Entity::update(order_line::ActiveModel {
                id: Set(line.id),
                quantity: Set(line.quantity),
                discount: Set(line.discount),
                adjustment: Set(line.adjustment),
                total: Set(line.total),
                updated_at: Set(now),
                ..Default::default()
            })
            .exec(&txn)
            .await?;
        }
    }
    let charges = o.shipping_fee - o.shipping_discount + o.packaging_fee + o.adjustment;
    let original = refresh_totals(&txn, &o, charges).await?;
    if original.amount_due < 0 {
        return Err(ApiError::conflict(
            "below-gift-certificates",
            "the original order would keep less than its gift certificates paid",
        ));
    }
    let numbers: Vec<&str> = created.iter().map(|c| c.number.as_str()).collect();
    service::record(&txn, o.id, "split", None, &by, json!({ "into": numbers, "parts": req.parts.iter().map(|p| p.iter().map(|l| json!({"line_id": l.line_id, "quantity": l.quantity})).collect::<Vec<_>>()).collect::<Vec<_>>() })).await?;
    let mut views = Vec::new();
    for c in created {
        views.push(service::view(&txn, c).await?);
    }
    let result = SplitResult {
        original: service::view(&txn, original).await?,
        created: views,
    };
    txn.commit().await?;
    Ok(result)
}

/// Sums the order's lines into its totals; `charges` are its order-level amounts.
async fn refresh_totals(
    db: &impl ConnectionTrait,
    o: &order::Model,
    charges: i64,
) -> ApiResult<order::Model> {
    let lines = service::lines(db, o.id).await?;
    let subtotal: i64 = lines.iter().map(|l| l.unit_price * l.quantity).sum();
    let discount: i64 = lines.iter().map(|l| l.discount).sum();
    let total: i64 = lines.iter().map(|l| l.total).sum::<i64>() + charges;
    Ok(order::Entity::update(order::ActiveModel {
        id: Set(o.id),
        subtotal: Set(subtotal),
        discount: Set(discount),
        total: Set(total),
        amount_due: Set(total - o.gift_certificate_amount),
        version: Set(o.version + 1),
        updated_at: Set(Utc::now()),
        ..Default::default()
    })
    .exec(db)
    .await?)
}
