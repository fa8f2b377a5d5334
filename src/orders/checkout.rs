//! Checkout: the customer's cart becomes an order in one transaction. Prices are frozen,
//! stock is reserved by conditional updates (so concurrent checkouts can never take more
//! than is there), coupons and gift certificates are consumed, and the payment time-out
//! is queued; any failure leaves nothing behind.

use std::collections::HashMap;

use chrono::{Duration, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::json;

use super::entity::{order, order_line};
use super::jobs::CancelUnpaidOrder;
use super::model::{CheckoutRequest, FrozenPricing, OrderStatus, OrderView, ShipTo};
use super::service::{self, By};
use crate::app::AppState;
use crate::cart::model::ShippingChoice;
use crate::cart::service::{self as cart, Owner};
use crate::customers::entity::address;
use crate::inventory::service as inventory;
use crate::jobs::{self, Enqueue};
use crate::platform::error::Validator;
use crate::platform::{ApiError, ApiResult};
use crate::promotions::{gift_certificates, usage};
use crate::system::entity::packaging;
use crate::system::store as system_store;

/// Places the signed-in customer's cart as an order.
pub async fn checkout(
    state: &AppState,
    customer_id: i64,
    req: CheckoutRequest,
) -> ApiResult<OrderView> {
    let now = Utc::now();
    let txn = state.db.begin().await?;
    lock_customer(&txn, customer_id).await?;
    let account = crate::customers::service::find_account(&txn, customer_id)
        .await?
        .filter(|a| a.can_sign_in())
        .ok_or_else(ApiError::unauthorized)?;
    let owner = Owner::Customer(customer_id);
    let cart_row = cart::find(&txn, &owner).await?;
    let lines = match &cart_row {
        Some(c) => cart::lines_of(&txn, c.id).await?,
        None => Vec::new(),
    };
    if lines.is_empty() {
        return Err(ApiError::conflict("cart-empty", "the cart is empty"));
    }
    let codes = match &req.coupon_codes {
        Some(codes) => usage::normalise_codes(codes),
        None => cart_row.as_ref().map(cart::codes_of).unwrap_or_default(),
    };
    let draft = cart::quote(
        &txn,
        &lines,
        Some(customer_id),
        &codes,
        0,
        &HashMap::new(),
        now,
    )
    .await?;
    let ship_to = ship_to(&txn, customer_id, &req, draft.requires_shipping).await?;
    let (method, fee) = if draft.requires_shipping {
        let Some(method_id) = req.shipping_method_id else {
            return Err(ApiError::invalid(
                "shipping_method_id",
                "choose how to ship physical goods",
            ));
        };
        let choice = ShippingChoice {
            region_id: ship_to.as_ref().map(|s| s.region_id),
            shipping_method_id: Some(method_id),
        };
        let (_, chosen) = cart::shipping_for(&txn, &choice, draft.weight_grams).await?;
        let chosen = chosen.ok_or_else(|| ApiError::invalid("shipping_method_id", "unknown"))?;
        let fee = chosen.price.amount;
        (Some(chosen), fee)
    } else {
        (None, 0)
    };
    let packaging = match req.packaging_id {
        None => None,
        Some(id) => Some(
            packaging::Entity::find_by_id(id)
                .filter(packaging::Column::Active.eq(true))
                .one(&txn)
                .await?
                .ok_or_else(|| {
                    ApiError::invalid("packaging_id", format!("packaging {id} is not offered"))
                })?,
        ),
    };
    let quote = if fee == 0 {
        draft
    } else {
        cart::quote(
            &txn,
            &lines,
            Some(customer_id),
            &codes,
            fee,
            &HashMap::new(),
            now,
        )
        .await?
    };
    if !quote.resolved.rejected.is_empty() {
        let mut v = Validator::default();
        for (i, rejected) in quote.resolved.rejected.iter().enumerate() {
            v.check(
                false,
                &format!("coupon_codes[{i}]"),
                &format!("{}: {}", rejected.code, rejected.reason),
            );
        }
        v.finish()?;
    }
    let unavailable: Vec<String> = lines
        .iter()
        .filter_map(|&(sku, _)| {
            let item = quote.items.get(&sku);
            let reason = match item {
                None => Some("no longer exists"),
                Some(i) => i.unavailable,
            };
            let blocked = quote.priced.blocked.iter().find(|b| b.sku_id == sku);
            match (reason, blocked) {
                (Some(reason), _) => Some(format!("{}: {reason}", item.map_or("SKU", |i| &i.code))),
                (None, Some(b)) => {
                    Some(format!("{}: {}", item.map_or("SKU", |i| &i.code), b.reason))
                }
                _ => None,
            }
        })
        .collect();
    if !unavailable.is_empty() {
        return Err(ApiError::conflict(
            "cart-unavailable",
            format!("some items cannot be bought: {}", unavailable.join("; ")),
        ));
    }
    let priced = &quote.priced;
    let packaging_fee = packaging.as_ref().map_or(0, |p| p.price);
    let total = priced.total + packaging_fee;
    if let Some(expected) = req.expected_total
        && expected != total
    {
        return Err(ApiError::conflict(
            "price-changed",
            format!("the total is now {total}, not {expected}; review the cart and try again"),
        ));
    }
    if let Some(note) = &req.note {
        Validator::default().text(note, "note", 1000).finish()?;
    }
    let number = order_number();
    let due = now + Duration::seconds(state.config.orders.payment_timeout_secs.into());
    let pricing = FrozenPricing {
        promotions: priced.applied.clone(),
        gift_coupon_promotion_ids: priced.gift_coupon_promotion_ids.clone(),
    };
    let created = order::Entity::insert(order::ActiveModel {
        number: Set(number.clone()),
        customer_id: Set(Some(customer_id)),
        email: Set(account.email.clone().unwrap_or_default()),
        status: Set(OrderStatus::PendingPayment.as_str().into()),
        currency: Set(state.config.shop.currency.clone()),
        subtotal: Set(priced.subtotal),
        discount: Set(priced.discount),
        shipping_fee: Set(priced.shipping),
        shipping_discount: Set(priced.shipping_discount),
        packaging_fee: Set(packaging_fee),
        adjustment: Set(0),
        total: Set(total),
        gift_certificate_amount: Set(0),
        amount_due: Set(total),
        bonus_points: Set(priced.bonus_points),
        pricing: Set(serde_json::to_string(&pricing).unwrap_or_default()),
        coupon_codes: Set(serde_json::to_string(&codes).unwrap_or_default()),
        ship_to: Set(ship_to.as_ref().map_or("null".into(), |s| {
            serde_json::to_string(s).unwrap_or_default()
        })),
        shipping_method_id: Set(method.as_ref().map(|m| m.id)),
        shipping_method_name: Set(method.as_ref().map(|m| m.name.clone())),
        carrier_id: Set(method.as_ref().and_then(|m| m.carrier_id)),
        packaging_id: Set(packaging.as_ref().map(|p| p.id)),
        note: Set(req.note.clone().filter(|n| !n.trim().is_empty())),
        parent_order_id: Set(None),
        locked_by: Set(None),
        locked_at: Set(None),
        placed_at: Set(now),
        payment_due_at: Set(Some(due)),
        paid_at: Set(None),
        payment_reference: Set(None),
        shipped_at: Set(None),
        completed_at: Set(None),
        cancelled_at: Set(None),
        cancel_reason: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec_with_returning(&txn)
    .await?;
    let priced_lines: HashMap<i64, _> = priced.lines.iter().map(|l| (l.sku_id, l)).collect();
    for &(sku_id, quantity) in &lines {
        let item = &quote.items[&sku_id];
        let line = priced_lines.get(&sku_id);
        order_line::Entity::insert(order_line::ActiveModel {
            order_id: Set(created.id),
            sku_id: Set(sku_id),
            product_id: Set(item.product_id),
            sku_code: Set(item.code.clone()),
            title: Set(item.title.clone()),
            unit_price: Set(item.unit_price),
            quantity: Set(quantity),
            discount: Set(line.map_or(0, |l| l.discount)),
            adjustment: Set(0),
            adjustment_reason: Set(None),
            total: Set(line.map_or(item.unit_price * quantity, |l| l.total)),
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
    let by = By::customer(customer_id);
    inventory::reserve(&txn, &lines, &by.movement("checkout", created.id)).await?;
    usage::redeem(&txn, priced, &quote.resolved, created.id, Some(customer_id)).await?;
    let mut gift_total = 0;
    for (i, tender) in req.gift_certificates.iter().enumerate() {
        let left = total - gift_total;
        if left == 0 {
            break;
        }
        if tender.amount.is_some_and(|a| a <= 0) {
            return Err(ApiError::invalid(
                format!("gift_certificates[{i}].amount"),
                "must be positive",
            ));
        }
        let wanted = tender.amount.map_or(left, |a| a.min(left));
        gift_total +=
            gift_certificates::redeem(&txn, &tender.code, wanted, created.id, Some(customer_id))
                .await?;
    }
    let mut placed = created.clone();
    if gift_total > 0 {
        placed = order::Entity::update(order::ActiveModel {
            id: Set(created.id),
            gift_certificate_amount: Set(gift_total),
            amount_due: Set(total - gift_total),
            ..Default::default()
        })
        .exec(&txn)
        .await?;
    }
    service::record(
        &txn,
        created.id,
        "placed",
        None,
        &by,
        json!({ "total": total, "lines": lines, "coupon_codes": codes, "gift_certificates": gift_total }),
    )
    .await?;
    if let Some(c) = &cart_row {
        cart::clear(&txn, c.id).await?;
    }
    let placed = if placed.amount_due == 0 {
        service::mark_paid(&txn, created.id, "gift certificate", &by).await?
    } else {
        jobs::enqueue(
            &txn,
            &state.config,
            &CancelUnpaidOrder {
                order_id: created.id,
            },
            Enqueue {
                run_at: Some(due),
                idempotency_key: Some(format!("cancel-unpaid:{}", created.id)),
            },
        )
        .await?;
        placed
    };
    let view = service::view(&txn, placed).await?;
    txn.commit().await?;
    metrics::counter!("orders_placed_total").increment(1);
    tracing::info!(order = %view.number, total = view.total, "order placed");
    Ok(view)
}

/// One checkout per customer at a time (PostgreSQL row lock; SQLite's write transaction is
/// already exclusive), so per-customer promotion limits hold under concurrent requests.
async fn lock_customer(db: &impl ConnectionTrait, customer_id: i64) -> ApiResult<()> {
    use sea_orm::QuerySelect;
    crate::customers::entity::customer::Entity::find_by_id(customer_id)
        .select_only()
        .column(crate::customers::entity::customer::Column::Id)
        .lock_exclusive()
        .into_tuple::<i64>()
        .one(db)
        .await?;
    Ok(())
}

async fn ship_to(
    db: &impl ConnectionTrait,
    customer_id: i64,
    req: &CheckoutRequest,
    required: bool,
) -> ApiResult<Option<ShipTo>> {
    let (recipient, phone, region_id, line1, line2, postal_code) =
        match (&req.address_id, &req.address) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid(
                    "address",
                    "give address_id or address, not both",
                ));
            }
            (Some(id), None) => {
                let a = address::Entity::find_by_id(*id)
                    .filter(address::Column::CustomerId.eq(customer_id))
                    .one(db)
                    .await?
                    .ok_or_else(|| {
                        ApiError::invalid(
                            "address_id",
                            format!("address {id} is not in your address book"),
                        )
                    })?;
                (
                    a.recipient,
                    a.phone,
                    a.region_id,
                    a.line1,
                    a.line2,
                    a.postal_code,
                )
            }
            (None, Some(a)) => {
                Validator::default()
                    .text(&a.recipient, "address.recipient", 100)
                    .text(&a.phone, "address.phone", 40)
                    .text(&a.line1, "address.line1", 200)
                    .text_if(a.line2.as_ref(), "address.line2", 200)
                    .text_if(a.postal_code.as_ref(), "address.postal_code", 20)
                    .finish()?;
                (
                    a.recipient.trim().to_owned(),
                    a.phone.trim().to_owned(),
                    a.region_id,
                    a.line1.trim().to_owned(),
                    a.line2.clone(),
                    a.postal_code.clone(),
                )
            }
            (None, None) if required => {
                return Err(ApiError::invalid(
                    "address",
                    "physical goods need a delivery address",
                ));
            }
            (None, None) => return Ok(None),
        };
    let path = system_store::region_with_ancestors(db, region_id).await?;
    if path.is_empty() {
        return Err(ApiError::invalid(
            "address.region_id",
            format!("region {region_id} does not exist"),
        ));
    }
    Ok(Some(ShipTo {
        recipient,
        phone,
        region_id,
        region_path: path.into_iter().rev().map(|r| r.name).collect(),
        line1,
        line2,
        postal_code,
    }))
}

/// `YYMMDD-` and eight characters of a ULID's random part: sortable by day, unguessable
/// enough that numbers do not reveal order volume.
pub fn order_number() -> String {
    let ulid = ulid::Ulid::generate().to_string();
    format!(
        "{}-{}",
        Utc::now().format("%y%m%d"),
        &ulid[ulid.len() - 8..]
    )
}
