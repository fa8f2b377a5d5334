//! The order's life after checkout: reads, payment, cancellation, locks and status moves.
//! Every change takes the order's row lock (PostgreSQL; SQLite's write transaction is
//! already exclusive), checks the status it expects, and writes a history row.

use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::{Value, json};

use super::entity::{order, order_history, order_line, refund, shipment, shipment_line};
use super::model::{
    FrozenPricing, HistoryView, OrderDetail, OrderFilter, OrderStatus, OrderView, RefundView,
    ShipmentLineView, ShipmentView,
};
use crate::app::AppState;
use crate::inventory::model::MovementRef;
use crate::inventory::service as inventory;
use crate::platform::list::{ListParams, Page, SortFields, contains};
use crate::platform::{ApiError, ApiResult};
use crate::promotions::{gift_certificates, usage};

/// Who changed an order: a staff member, the customer, or the system (both `None`).
#[derive(Debug, Clone, Copy, Default)]
pub struct By {
    pub staff_id: Option<i64>,
    pub customer_id: Option<i64>,
}

impl By {
    pub fn staff(id: i64) -> Self {
        Self {
            staff_id: Some(id),
            customer_id: None,
        }
    }

    pub fn customer(id: i64) -> Self {
        Self {
            staff_id: None,
            customer_id: Some(id),
        }
    }

    pub fn system() -> Self {
        Self::default()
    }

    pub fn movement(&self, reason: &str, order_id: i64) -> MovementRef {
        MovementRef {
            reason: reason.to_owned(),
            order_id: Some(order_id),
            staff_id: self.staff_id,
            customer_id: self.customer_id,
        }
    }
}

pub const SORT: SortFields<order::Column> = SortFields(&[
    ("placed_at", order::Column::PlacedAt),
    ("total", order::Column::Total),
    ("number", order::Column::Number),
    ("status", order::Column::Status),
]);

/// The order, locked for the rest of the transaction.
pub async fn lock(db: &impl ConnectionTrait, id: i64) -> ApiResult<order::Model> {
    order::Entity::find_by_id(id)
        .lock_exclusive()
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("order", id))
}

pub async fn lines(db: &impl ConnectionTrait, order_id: i64) -> ApiResult<Vec<order_line::Model>> {
    Ok(order_line::Entity::find()
        .filter(order_line::Column::OrderId.eq(order_id))
        .order_by_asc(order_line::Column::Id)
        .all(db)
        .await?)
}

pub fn status_of(o: &order::Model) -> OrderStatus {
    OrderStatus::parse(&o.status).unwrap_or(OrderStatus::Cancelled)
}

/// 409 unless the order is in one of `allowed`.
pub fn expect_status(o: &order::Model, allowed: &[OrderStatus], action: &str) -> ApiResult<()> {
    let status = status_of(o);
    if allowed.contains(&status) {
        return Ok(());
    }
    Err(ApiError::conflict(
        "invalid-order-status",
        format!(
            "order {} is {}; it cannot be {action}",
            o.number,
            status.as_str()
        ),
    ))
}

/// 423 when another staff member holds the order's lock.
pub fn check_unlocked(o: &order::Model, by: &By) -> ApiResult<()> {
    match o.locked_by {
        Some(holder) if Some(holder) != by.staff_id => Err(ApiError::conflict(
            "order-locked",
            format!("order {} is locked by staff member {holder}", o.number),
        )
        .with_status(axum::http::StatusCode::LOCKED)),
        _ => Ok(()),
    }
}

/// Appends to the order's history.
pub async fn record(
    db: &impl ConnectionTrait,
    order_id: i64,
    action: &str,
    transition: Option<(OrderStatus, OrderStatus)>,
    by: &By,
    detail: Value,
) -> ApiResult<()> {
    let now = Utc::now();
    order_history::Entity::insert(order_history::ActiveModel {
        order_id: Set(order_id),
        action: Set(action.to_owned()),
        from_status: Set(transition.map(|(from, _)| from.as_str().to_owned())),
        to_status: Set(transition.map(|(_, to)| to.as_str().to_owned())),
        staff_id: Set(by.staff_id),
        customer_id: Set(by.customer_id),
        detail: Set(detail.to_string()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec(db)
    .await?;
    Ok(())
}

/// Moves the order to `to` (bumping its version) and records it.
pub async fn transition(
    db: &impl ConnectionTrait,
    o: &order::Model,
    to: OrderStatus,
    by: &By,
    action: &str,
    detail: Value,
    extra: impl FnOnce(&mut order::ActiveModel),
) -> ApiResult<order::Model> {
    let from = status_of(o);
    let mut active = order::ActiveModel {
        id: Set(o.id),
        status: Set(to.as_str().to_owned()),
        version: Set(o.version + 1),
        updated_at: Set(Utc::now()),
        ..Default::default()
    };
    extra(&mut active);
    let updated = order::Entity::update(active).exec(db).await?;
    record(db, o.id, action, Some((from, to)), by, detail).await?;
    Ok(updated)
}

pub async fn view(db: &impl ConnectionTrait, o: order::Model) -> ApiResult<OrderView> {
    let lines = lines(db, o.id).await?;
    Ok(OrderView::new(o, lines))
}

pub async fn shipments_of(
    db: &impl ConnectionTrait,
    order_id: i64,
) -> ApiResult<Vec<ShipmentView>> {
    let shipments = shipment::Entity::find()
        .filter(shipment::Column::OrderId.eq(order_id))
        .order_by_asc(shipment::Column::Id)
        .all(db)
        .await?;
    shipment_views(db, shipments).await
}

pub async fn shipment_views(
    db: &impl ConnectionTrait,
    shipments: Vec<shipment::Model>,
) -> ApiResult<Vec<ShipmentView>> {
    let ids: Vec<i64> = shipments.iter().map(|s| s.id).collect();
    let mut lines = shipment_line::Entity::find()
        .filter(shipment_line::Column::ShipmentId.is_in(ids))
        .order_by_asc(shipment_line::Column::OrderLineId)
        .all(db)
        .await?;
    Ok(shipments
        .into_iter()
        .map(|s| {
            let mine = lines
                .extract_if(.., |l| l.shipment_id == s.id)
                .map(|l| ShipmentLineView {
                    order_line_id: l.order_line_id,
                    quantity: l.quantity,
                })
                .collect();
            ShipmentView::new(s, mine)
        })
        .collect())
}

/// A new order for the same customer and delivery as `o` (a part split off it, or an
/// exchange's replacement): no amounts yet, `parent_order_id` pointing at `o`.
pub fn derived_order(o: &order::Model, number: String, status: OrderStatus) -> order::ActiveModel {
    let now = Utc::now();
    order::ActiveModel {
        number: Set(number),
        customer_id: Set(o.customer_id),
        email: Set(o.email.clone()),
        status: Set(status.as_str().to_owned()),
        currency: Set(o.currency.clone()),
        subtotal: Set(0),
        discount: Set(0),
        shipping_fee: Set(0),
        shipping_discount: Set(0),
        packaging_fee: Set(0),
        adjustment: Set(0),
        total: Set(0),
        gift_certificate_amount: Set(0),
        amount_due: Set(0),
        bonus_points: Set(0),
        pricing: Set("{}".into()),
        coupon_codes: Set("[]".into()),
        ship_to: Set(o.ship_to.clone()),
        shipping_method_id: Set(o.shipping_method_id),
        shipping_method_name: Set(o.shipping_method_name.clone()),
        carrier_id: Set(o.carrier_id),
        packaging_id: Set(None),
        note: Set(o.note.clone()),
        parent_order_id: Set(Some(o.id)),
        locked_by: Set(None),
        locked_at: Set(None),
        placed_at: Set(now),
        payment_due_at: Set(None),
        paid_at: Set(None),
        payment_reference: Set(None),
        shipped_at: Set(None),
        completed_at: Set(None),
        cancelled_at: Set(None),
        cancel_reason: Set(None),
        // A part split from a cash-on-delivery order is paid on delivery too.
        cash_on_delivery: Set(o.cash_on_delivery),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
}

/// The staff view of one order.
pub async fn detail(state: &AppState, id: i64) -> ApiResult<OrderDetail> {
    let db = state.db.writer();
    let o = order::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("order", id))?;
    let history = order_history::Entity::find()
        .filter(order_history::Column::OrderId.eq(id))
        .order_by_asc(order_history::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(HistoryView::from)
        .collect();
    let refunds = refund::Entity::find()
        .filter(refund::Column::OrderId.eq(id))
        .order_by_asc(refund::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(RefundView::from)
        .collect();
    Ok(OrderDetail {
        shipments: shipments_of(db, id).await?,
        order: view(db, o).await?,
        history,
        refunds,
    })
}

/// Staff search over all orders.
pub async fn list(
    state: &AppState,
    params: &ListParams,
    filter: &OrderFilter,
) -> ApiResult<Page<OrderView>> {
    let mut spec = params.spec(&SORT)?;
    if spec.order.is_empty() {
        spec.order
            .push((order::Column::PlacedAt, sea_orm::Order::Desc));
    }
    let mut query = order::Entity::find();
    if let Some(status) = filter.status {
        query = query.filter(order::Column::Status.eq(status.as_str()));
    }
    if let Some(customer) = filter.customer_id {
        query = query.filter(order::Column::CustomerId.eq(customer));
    }
    if let Some(term) = filter.q.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        let pattern = contains(term);
        query = query.filter(
            Expr::expr(Func::lower(Expr::col(order::Column::Number)))
                .like(pattern.clone())
                .or(Expr::expr(Func::lower(Expr::col(order::Column::Email))).like(pattern)),
        );
    }
    if let Some(sku) = filter.sku_id {
        query = query.filter(
            order::Column::Id.in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(order_line::Column::OrderId)
                    .from(order_line::Entity)
                    .and_where(order_line::Column::SkuId.eq(sku))
                    .to_owned(),
            ),
        );
    }
    if let Some(after) = filter.placed_after {
        query = query.filter(order::Column::PlacedAt.gte(after));
    }
    if let Some(before) = filter.placed_before {
        query = query.filter(order::Column::PlacedAt.lt(before));
    }
    if let Some(min) = filter.min_total {
        query = query.filter(order::Column::Total.gte(min));
    }
    if let Some(max) = filter.max_total {
        query = query.filter(order::Column::Total.lte(max));
    }
    if let Some(locked) = filter.locked {
        query = query.filter(if locked {
            order::Column::LockedBy.is_not_null()
        } else {
            order::Column::LockedBy.is_null()
        });
    }
    let db = state.db.reader();
    let page = spec.fetch(db, query, order::Column::Id).await?;
    with_lines(db, page).await
}

async fn with_lines(
    db: &impl ConnectionTrait,
    page: Page<order::Model>,
) -> ApiResult<Page<OrderView>> {
    let ids: Vec<i64> = page.items.iter().map(|o| o.id).collect();
    let mut all = order_line::Entity::find()
        .filter(order_line::Column::OrderId.is_in(ids))
        .order_by_asc(order_line::Column::Id)
        .all(db)
        .await?;
    Ok(page.map(|o| {
        let mine = all.extract_if(.., |l| l.order_id == o.id).collect();
        OrderView::new(o, mine)
    }))
}

/// A customer's own orders, newest first.
pub async fn list_for_customer(
    state: &AppState,
    customer_id: i64,
    params: &ListParams,
) -> ApiResult<Page<OrderView>> {
    let mut spec = params.spec(&SORT)?;
    if spec.order.is_empty() {
        spec.order
            .push((order::Column::PlacedAt, sea_orm::Order::Desc));
    }
    let db = state.db.reader();
    let query = order::Entity::find().filter(order::Column::CustomerId.eq(customer_id));
    let page = spec.fetch(db, query, order::Column::Id).await?;
    with_lines(db, page).await
}

/// A customer's order by its number; another customer's order is a 404.
pub async fn find_for_customer(
    db: &impl ConnectionTrait,
    customer_id: i64,
    number: &str,
) -> ApiResult<order::Model> {
    order::Entity::find()
        .filter(order::Column::Number.eq(number))
        .filter(order::Column::CustomerId.eq(customer_id))
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("order", number))
}

/// Marks a pending order paid (a payment confirmed it, or staff recorded one) and issues
/// the gift coupons its promotions earned. Paying a paid order again changes nothing.
pub async fn mark_paid(
    db: &impl ConnectionTrait,
    order_id: i64,
    reference: &str,
    by: &By,
) -> ApiResult<order::Model> {
    let o = lock(db, order_id).await?;
    if o.paid_at.is_some() && status_of(&o) != OrderStatus::Cancelled {
        return Ok(o);
    }
    expect_status(&o, &[OrderStatus::PendingPayment], "marked paid")?;
    let pricing: FrozenPricing = serde_json::from_str(&o.pricing).unwrap_or_default();
    let mut coupons = Vec::new();
    if let Some(customer) = o.customer_id {
        coupons =
            usage::issue_gift_coupons(db, &pricing.gift_coupon_promotion_ids, customer).await?;
    }
    let now = Utc::now();
    transition(
        db,
        &o,
        OrderStatus::Paid,
        by,
        "paid",
        json!({ "reference": reference, "gift_coupons": coupons }),
        |a| {
            a.paid_at = Set(Some(now));
            a.payment_reference = Set(Some(reference.to_owned()));
        },
    )
    .await
}

/// Cancels the order: gives back reserved stock, promotion uses and gift-certificate
/// money, and records a pending refund of what was paid.
pub async fn cancel_locked(
    db: &impl ConnectionTrait,
    o: &order::Model,
    reason: &str,
    by: &By,
) -> ApiResult<order::Model> {
    let status = status_of(o);
    if !status.cancellable() {
        return Err(ApiError::conflict(
            "invalid-order-status",
            format!(
                "order {} is {}; it cannot be cancelled",
                o.number,
                status.as_str()
            ),
        ));
    }
    let to_release: Vec<(i64, i64)> = lines(db, o.id)
        .await?
        .iter()
        .filter(|l| l.quantity > l.shipped_quantity)
        .map(|l| (l.sku_id, l.quantity - l.shipped_quantity))
        .collect();
    // A flash sale's units go back on sale rather than to the SKU while it runs.
    let to_release = crate::flash::service::take_back(db, o, to_release).await?;
    inventory::release(db, &to_release, &by.movement(reason, o.id)).await?;
    usage::release_for_order(db, o.id).await?;
    gift_certificates::restore_for_order(db, o.id, reason).await?;
    if o.paid_at.is_some() && o.amount_due > 0 {
        let now = Utc::now();
        refund::Entity::insert(refund::ActiveModel {
            order_id: Set(o.id),
            return_id: Set(None),
            amount: Set(o.amount_due),
            currency: Set(o.currency.clone()),
            status: Set("pending".into()),
            reason: Set(format!("order cancelled: {reason}")),
            staff_id: Set(by.staff_id),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        })
        .exec(db)
        .await?;
    }
    let now = Utc::now();
    transition(
        db,
        o,
        OrderStatus::Cancelled,
        by,
        "cancelled",
        json!({ "reason": reason, "released": to_release }),
        |a| {
            a.cancelled_at = Set(Some(now));
            a.cancel_reason = Set(Some(reason.to_owned()));
            a.locked_by = Set(None);
            a.locked_at = Set(None);
        },
    )
    .await
}

/// Staff cancel.
pub async fn cancel(state: &AppState, id: i64, reason: &str, by: By) -> ApiResult<OrderView> {
    let txn = state.db.begin().await?;
    let o = lock(&txn, id).await?;
    check_unlocked(&o, &by)?;
    let o = cancel_locked(&txn, &o, reason, &by).await?;
    let view = view(&txn, o).await?;
    txn.commit().await?;
    Ok(view)
}

/// A customer may cancel only before paying.
pub async fn cancel_by_customer(
    state: &AppState,
    customer_id: i64,
    number: &str,
) -> ApiResult<OrderView> {
    let txn = state.db.begin().await?;
    let found = find_for_customer(&txn, customer_id, number).await?;
    let o = lock(&txn, found.id).await?;
    expect_status(
        &o,
        &[OrderStatus::PendingPayment],
        "cancelled by the customer",
    )?;
    let o = cancel_locked(
        &txn,
        &o,
        "cancelled by the customer",
        &By::customer(customer_id),
    )
    .await?;
    let view = view(&txn, o).await?;
    txn.commit().await?;
    Ok(view)
}

/// Cancels an order still unpaid at its due time. Idempotent: a paid, cancelled or not
/// yet due order is left alone.
pub async fn expire_unpaid(state: &AppState, id: i64, now: DateTime<Utc>) -> ApiResult<bool> {
    let txn = state.db.begin().await?;
    let Some(o) = order::Entity::find_by_id(id)
        .lock_exclusive()
        .one(&txn)
        .await?
    else {
        return Ok(false);
    };
    let due = o.payment_due_at.is_some_and(|due| due <= now);
    if status_of(&o) != OrderStatus::PendingPayment || !due {
        return Ok(false);
    }
    cancel_locked(&txn, &o, "payment time-out", &By::system()).await?;
    txn.commit().await?;
    Ok(true)
}

/// When a still-unpaid order times out; `None` once it is paid or cancelled.
pub async fn payment_due_at(state: &AppState, id: i64) -> ApiResult<Option<DateTime<Utc>>> {
    let o = order::Entity::find_by_id(id).one(state.db.writer()).await?;
    Ok(o.filter(|o| status_of(o) == OrderStatus::PendingPayment)
        .and_then(|o| o.payment_due_at))
}

/// Takes or gives up the order's edit lock.
pub async fn set_lock(
    state: &AppState,
    id: i64,
    locked: bool,
    by: By,
    may_break: bool,
) -> ApiResult<OrderView> {
    let txn = state.db.begin().await?;
    let o = lock(&txn, id).await?;
    let staff = by.staff_id;
    let updated = match (locked, o.locked_by) {
        (true, Some(holder)) if Some(holder) == staff => o,
        (true, Some(_)) => {
            check_unlocked(&o, &by)?;
            o
        }
        (true, None) => {
            let now = Utc::now();
            let updated = order::Entity::update(order::ActiveModel {
                id: Set(o.id),
                locked_by: Set(staff),
                locked_at: Set(Some(now)),
                version: Set(o.version + 1),
                updated_at: Set(now),
                ..Default::default()
            })
            .exec(&txn)
            .await?;
            record(&txn, o.id, "locked", None, &by, json!({})).await?;
            updated
        }
        (false, None) => o,
        (false, Some(holder)) => {
            if Some(holder) != staff && !may_break {
                check_unlocked(&o, &by)?;
            }
            let updated = order::Entity::update(order::ActiveModel {
                id: Set(o.id),
                locked_by: Set(None),
                locked_at: Set(None),
                version: Set(o.version + 1),
                updated_at: Set(Utc::now()),
                ..Default::default()
            })
            .exec(&txn)
            .await?;
            record(
                &txn,
                o.id,
                "unlocked",
                None,
                &by,
                json!({ "held_by": holder }),
            )
            .await?;
            updated
        }
    };
    let view = view(&txn, updated).await?;
    txn.commit().await?;
    Ok(view)
}

/// The statuses from which an order may go to picking: paid, or (cash on delivery) still
/// awaiting the money the carrier will collect.
pub fn payable_before_picking(o: &order::Model) -> Vec<OrderStatus> {
    if o.cash_on_delivery {
        vec![OrderStatus::PendingPayment, OrderStatus::Paid]
    } else {
        vec![OrderStatus::Paid]
    }
}

/// Staff confirm a paid (or cash-on-delivery) order ready for picking; it gets one shipment of everything
/// unless staff already split it into shipments.
pub async fn ready_for_picking(state: &AppState, id: i64, by: By) -> ApiResult<OrderView> {
    let txn = state.db.begin().await?;
    let o = lock(&txn, id).await?;
    check_unlocked(&o, &by)?;
    expect_status(
        &o,
        &payable_before_picking(&o),
        "confirmed ready for picking",
    )?;
    super::fulfilment::ship_rest_in_one(&txn, &o).await?;
    let o = transition(
        &txn,
        &o,
        OrderStatus::ReadyForPicking,
        &by,
        "ready_for_picking",
        json!({}),
        |_| {},
    )
    .await?;
    let view = view(&txn, o).await?;
    txn.commit().await?;
    Ok(view)
}

/// Delivered: by staff, or the customer confirming receipt.
pub async fn complete(state: &AppState, id: i64, by: By) -> ApiResult<OrderView> {
    let txn = state.db.begin().await?;
    let o = lock(&txn, id).await?;
    if let Some(customer) = by.customer_id
        && o.customer_id != Some(customer)
    {
        return Err(ApiError::not_found("order", id));
    }
    expect_status(&o, &[OrderStatus::Shipped], "completed")?;
    let now = Utc::now();
    let o = transition(
        &txn,
        &o,
        OrderStatus::Completed,
        &by,
        "completed",
        json!({}),
        |a| {
            a.completed_at = Set(Some(now));
        },
    )
    .await?;
    let view = view(&txn, o).await?;
    txn.commit().await?;
    Ok(view)
}
