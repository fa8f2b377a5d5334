//! Returns and exchanges (R4.2, R5.4): a customer asks to send back delivered units,
//! staff approve or reject, the warehouse receives the goods (to stock or to damaged), and
//! the return ends in a refund record or a replacement order.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::checkout::order_number;
use super::entity::{order, order_line, refund, return_line, return_request};
use super::model::{LineQuantity, OrderStatus};
use super::service::{self, By};
use crate::app::AppState;
use crate::inventory::service as inventory;
use crate::platform::list::{ListParams, Page, SortFields};
use crate::platform::{ApiError, ApiResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReturnKind {
    /// Money back.
    Return,
    /// The same items again.
    Exchange,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestReturn {
    pub kind: ReturnKind,
    pub reason: String,
    pub lines: Vec<LineQuantity>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    pub note: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiveReturn {
    pub lines: Vec<ReceivedLine>,
    pub note: Option<String>,
}

/// How the units of one returned line came back.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceivedLine {
    pub line_id: i64,
    /// Back on the shelf, sellable.
    pub to_stock: i64,
    /// Kept apart as damaged.
    pub damaged: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReturnView {
    pub id: i64,
    pub number: String,
    pub order_id: i64,
    pub customer_id: Option<i64>,
    pub kind: ReturnKind,
    /// requested, approved, rejected, refunded (a refund record exists) or replaced.
    pub status: String,
    pub reason: String,
    pub staff_note: Option<String>,
    pub lines: Vec<ReturnLineView>,
    pub refund_amount: i64,
    pub replacement_order_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub received_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReturnLineView {
    pub order_line_id: i64,
    pub sku_code: String,
    pub quantity: i64,
    pub received_to_stock: i64,
    pub received_damaged: i64,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReturnFilter {
    pub status: Option<String>,
    pub order_id: Option<i64>,
}

const SORT: SortFields<return_request::Column> = SortFields(&[
    ("created_at", return_request::Column::CreatedAt),
    ("status", return_request::Column::Status),
]);

async fn view(db: &impl ConnectionTrait, r: return_request::Model) -> ApiResult<ReturnView> {
    let lines = return_line::Entity::find()
        .filter(return_line::Column::ReturnId.eq(r.id))
        .order_by_asc(return_line::Column::OrderLineId)
        .all(db)
        .await?;
    let codes: HashMap<i64, String> = order_line::Entity::find()
        .filter(order_line::Column::OrderId.eq(r.order_id))
        .all(db)
        .await?
        .into_iter()
        .map(|l| (l.id, l.sku_code))
        .collect();
    Ok(ReturnView {
        id: r.id,
        number: r.number,
        order_id: r.order_id,
        customer_id: r.customer_id,
        kind: if r.kind == "exchange" {
            ReturnKind::Exchange
        } else {
            ReturnKind::Return
        },
        status: r.status,
        reason: r.reason,
        staff_note: r.staff_note,
        lines: lines
            .into_iter()
            .map(|l| ReturnLineView {
                sku_code: codes.get(&l.order_line_id).cloned().unwrap_or_default(),
                order_line_id: l.order_line_id,
                quantity: l.quantity,
                received_to_stock: l.received_to_stock,
                received_damaged: l.received_damaged,
            })
            .collect(),
        refund_amount: r.refund_amount,
        replacement_order_id: r.replacement_order_id,
        created_at: r.created_at,
        received_at: r.received_at,
    })
}

/// Units of each line already in returns that are not rejected.
async fn claimed(db: &impl ConnectionTrait, order_id: i64) -> ApiResult<HashMap<i64, i64>> {
    let open: Vec<i64> = return_request::Entity::find()
        .filter(return_request::Column::OrderId.eq(order_id))
        .filter(return_request::Column::Status.ne("rejected"))
        .select_only()
        .column(return_request::Column::Id)
        .into_tuple()
        .all(db)
        .await?;
    let mut claimed = HashMap::new();
    for l in return_line::Entity::find()
        .filter(return_line::Column::ReturnId.is_in(open))
        .all(db)
        .await?
    {
        *claimed.entry(l.order_line_id).or_insert(0) += l.quantity;
    }
    Ok(claimed)
}

/// A customer asks to return or exchange delivered units of their order.
pub async fn request(
    state: &AppState,
    customer_id: i64,
    number: &str,
    req: RequestReturn,
) -> ApiResult<ReturnView> {
    let reason = req.reason.trim();
    if reason.is_empty() || reason.len() > 1000 {
        return Err(ApiError::invalid(
            "reason",
            "say why, in 1 to 1000 characters",
        ));
    }
    if req.lines.is_empty() {
        return Err(ApiError::invalid("lines", "name at least one line"));
    }
    let txn = state.db.begin().await?;
    let found = service::find_for_customer(&txn, customer_id, number).await?;
    let o = service::lock(&txn, found.id).await?;
    service::expect_status(
        &o,
        &[OrderStatus::Shipped, OrderStatus::Completed],
        "returned before it is delivered",
    )?;
    let lines = service::lines(&txn, o.id).await?;
    let mut claimed = claimed(&txn, o.id).await?;
    for (i, l) in req.lines.iter().enumerate() {
        let Some(line) = lines.iter().find(|x| x.id == l.line_id) else {
            return Err(ApiError::invalid(
                format!("lines[{i}].line_id"),
                format!("line {} is not in this order", l.line_id),
            ));
        };
        let c = claimed.entry(line.id).or_insert(0);
        let free = line.shipped_quantity - *c;
        if l.quantity < 1 || l.quantity > free {
            return Err(ApiError::invalid(
                format!("lines[{i}].quantity"),
                format!(
                    "{} has {free} delivered units not already being returned",
                    line.sku_code
                ),
            ));
        }
        *c += l.quantity;
    }
    let now = Utc::now();
    let ulid = ulid::Ulid::generate().to_string();
    let created = return_request::Entity::insert(return_request::ActiveModel {
        number: Set(format!("R{}-{}", o.number, &ulid[ulid.len() - 4..])),
        order_id: Set(o.id),
        customer_id: Set(Some(customer_id)),
        kind: Set(match req.kind {
            ReturnKind::Return => "return".into(),
            ReturnKind::Exchange => "exchange".into(),
        }),
        status: Set("requested".into()),
        reason: Set(reason.to_owned()),
        staff_note: Set(None),
        staff_id: Set(None),
        refund_amount: Set(0),
        replacement_order_id: Set(None),
        received_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec_with_returning(&txn)
    .await?;
    let mut merged: HashMap<i64, i64> = HashMap::new();
    for l in &req.lines {
        *merged.entry(l.line_id).or_insert(0) += l.quantity;
    }
    for (line_id, quantity) in merged {
        return_line::Entity::insert(return_line::ActiveModel {
            return_id: Set(created.id),
            order_line_id: Set(line_id),
            quantity: Set(quantity),
            received_to_stock: Set(0),
            received_damaged: Set(0),
        })
        .exec_without_returning(&txn)
        .await?;
    }
    service::record(
        &txn,
        o.id,
        "return_requested",
        None,
        &By::customer(customer_id),
        json!({ "return": created.number }),
    )
    .await?;
    let view = view(&txn, created).await?;
    txn.commit().await?;
    Ok(view)
}

pub async fn list(
    state: &AppState,
    params: &ListParams,
    filter: &ReturnFilter,
) -> ApiResult<Page<ReturnView>> {
    let mut spec = params.spec(&SORT)?;
    if spec.order.is_empty() {
        spec.order
            .push((return_request::Column::CreatedAt, sea_orm::Order::Desc));
    }
    let mut query = return_request::Entity::find();
    if let Some(status) = &filter.status {
        query = query.filter(return_request::Column::Status.eq(status.as_str()));
    }
    if let Some(order_id) = filter.order_id {
        query = query.filter(return_request::Column::OrderId.eq(order_id));
    }
    let db = state.db.reader();
    let page = spec.fetch(db, query, return_request::Column::Id).await?;
    let mut items = Vec::with_capacity(page.items.len());
    for r in page.items {
        items.push(view(db, r).await?);
    }
    Ok(Page {
        items,
        total: page.total,
        page: page.page,
        per_page: page.per_page,
    })
}

/// A customer's returns for one of their orders.
pub async fn list_for_order(
    state: &AppState,
    customer_id: i64,
    number: &str,
) -> ApiResult<Vec<ReturnView>> {
    let db = state.db.reader();
    let o = service::find_for_customer(db, customer_id, number).await?;
    let mut out = Vec::new();
    for r in return_request::Entity::find()
        .filter(return_request::Column::OrderId.eq(o.id))
        .order_by_asc(return_request::Column::Id)
        .all(db)
        .await?
    {
        out.push(view(db, r).await?);
    }
    Ok(out)
}

pub async fn get(state: &AppState, id: i64) -> ApiResult<ReturnView> {
    let db = state.db.reader();
    let r = return_request::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("return", id))?;
    view(db, r).await
}

async fn lock(db: &impl ConnectionTrait, id: i64) -> ApiResult<return_request::Model> {
    return_request::Entity::find_by_id(id)
        .lock_exclusive()
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("return", id))
}

fn expect(r: &return_request::Model, status: &str, action: &str) -> ApiResult<()> {
    if r.status == status {
        return Ok(());
    }
    Err(ApiError::conflict(
        "invalid-return-status",
        format!("return {} is {}; it cannot be {action}", r.number, r.status),
    ))
}

/// Approves (the customer may send the goods) or rejects a requested return.
pub async fn decide(
    state: &AppState,
    id: i64,
    approve: bool,
    note: Option<String>,
    by: By,
) -> ApiResult<ReturnView> {
    let txn = state.db.begin().await?;
    let r = lock(&txn, id).await?;
    expect(
        &r,
        "requested",
        if approve { "approved" } else { "rejected" },
    )?;
    let status = if approve { "approved" } else { "rejected" };
    let updated = return_request::Entity::update(return_request::ActiveModel {
        id: Set(r.id),
        status: Set(status.into()),
        staff_note: Set(note.clone()),
        staff_id: Set(by.staff_id),
        version: Set(r.version + 1),
        updated_at: Set(Utc::now()),
        ..Default::default()
    })
    .exec(&txn)
    .await?;
    service::record(
        &txn,
        r.order_id,
        &format!("return_{status}"),
        None,
        &by,
        json!({ "return": r.number, "note": note }),
    )
    .await?;
    let view = view(&txn, updated).await?;
    txn.commit().await?;
    Ok(view)
}

/// The warehouse receives an approved return: each unit goes back to stock or to damaged,
/// then a return gets a pending refund of what those units cost and an exchange gets a
/// replacement order (already paid) for the same units.
pub async fn receive(
    state: &AppState,
    id: i64,
    req: ReceiveReturn,
    by: By,
) -> ApiResult<ReturnView> {
    let txn = state.db.begin().await?;
    let r = lock(&txn, id).await?;
    expect(&r, "approved", "received")?;
    let o = service::lock(&txn, r.order_id).await?;
    let order_lines = service::lines(&txn, o.id).await?;
    let expected = return_line::Entity::find()
        .filter(return_line::Column::ReturnId.eq(r.id))
        .all(&txn)
        .await?;
    if req.lines.len() != expected.len() {
        return Err(ApiError::invalid(
            "lines",
            "account for every line of the return",
        ));
    }
    let now = Utc::now();
    let movement = by.movement(&format!("return {}", r.number), o.id);
    let mut refund_amount = 0;
    let mut replacement = Vec::new();
    for (i, got) in req.lines.iter().enumerate() {
        let Some(want) = expected.iter().find(|e| e.order_line_id == got.line_id) else {
            return Err(ApiError::invalid(
                format!("lines[{i}].line_id"),
                "not a line of this return",
            ));
        };
        if got.to_stock < 0 || got.damaged < 0 || got.to_stock + got.damaged != want.quantity {
            return Err(ApiError::invalid(
                format!("lines[{i}]"),
                format!(
                    "to_stock + damaged must be the {} units returned",
                    want.quantity
                ),
            ));
        }
        let line = order_lines
            .iter()
            .find(|l| l.id == got.line_id)
            .ok_or_else(|| ApiError::internal("return line without order line"))?;
        if got.to_stock > 0 {
            inventory::receive_return(&txn, line.sku_id, got.to_stock, false, &movement).await?;
        }
        if got.damaged > 0 {
            inventory::receive_return(&txn, line.sku_id, got.damaged, true, &movement).await?;
        }
        return_line::Entity::update(return_line::ActiveModel {
            return_id: Set(r.id),
            order_line_id: Set(line.id),
            received_to_stock: Set(got.to_stock),
            received_damaged: Set(got.damaged),
            ..Default::default()
        })
        .exec(&txn)
        .await?;
        order_line::Entity::update(order_line::ActiveModel {
            id: Set(line.id),
            returned_quantity: Set(line.returned_quantity + want.quantity),
            updated_at: Set(now),
            ..Default::default()
        })
        .exec(&txn)
        .await?;
        refund_amount += line.total * want.quantity / line.quantity;
        replacement.push((line.clone(), want.quantity));
    }
    let (status, refund_amount, replacement_id) = if r.kind == "exchange" {
        let id = replacement_order(&txn, &o, &replacement, &by).await?;
        ("replaced", 0, Some(id))
    } else {
        refund::Entity::insert(refund::ActiveModel {
            order_id: Set(o.id),
            return_id: Set(Some(r.id)),
            amount: Set(refund_amount),
            currency: Set(o.currency.clone()),
            status: Set("pending".into()),
            reason: Set(format!("return {}", r.number)),
            staff_id: Set(by.staff_id),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        })
        .exec(&txn)
        .await?;
        ("refunded", refund_amount, None)
    };
    let updated = return_request::Entity::update(return_request::ActiveModel {
        id: Set(r.id),
        status: Set(status.into()),
        refund_amount: Set(refund_amount),
        replacement_order_id: Set(replacement_id),
        received_at: Set(Some(now)),
        staff_note: Set(req.note.clone().or(r.staff_note.clone())),
        version: Set(r.version + 1),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec(&txn)
    .await?;
    service::record(
        &txn,
        o.id,
        "return_received",
        None,
        &by,
        json!({ "return": r.number, "refund": refund_amount, "replacement_order_id": replacement_id }),
    )
    .await?;
    let view = view(&txn, updated).await?;
    txn.commit().await?;
    Ok(view)
}

/// A paid, free-of-charge order for the exchanged units, ready for picking.
async fn replacement_order(
    db: &impl ConnectionTrait,
    o: &order::Model,
    lines: &[(order_line::Model, i64)],
    by: &By,
) -> ApiResult<i64> {
    let now = Utc::now();
    let created = order::Entity::insert(order::ActiveModel {
        note: Set(Some(format!("replacement for order {}", o.number))),
        paid_at: Set(Some(now)),
        payment_reference: Set(Some(format!("exchange of {}", o.number))),
        ..service::derived_order(o, order_number(), OrderStatus::Paid)
    })
    .exec_with_returning(db)
    .await?;
    let mut reserve = Vec::new();
    for (line, quantity) in lines {
        order_line::Entity::insert(order_line::ActiveModel {
            order_id: Set(created.id),
            sku_id: Set(line.sku_id),
            product_id: Set(line.product_id),
            sku_code: Set(line.sku_code.clone()),
            title: Set(line.title.clone()),
            unit_price: Set(0),
            quantity: Set(*quantity),
            discount: Set(0),
            adjustment: Set(0),
            adjustment_reason: Set(None),
            total: Set(0),
            weight_grams: Set(line.weight_grams),
            shipped_quantity: Set(0),
            returned_quantity: Set(0),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        })
        .exec(db)
        .await?;
        reserve.push((line.sku_id, *quantity));
    }
    inventory::reserve(
        db,
        &reserve,
        &by.movement("exchange replacement", created.id),
    )
    .await?;
    service::record(
        db,
        created.id,
        "placed",
        None,
        by,
        json!({ "replacement_for": o.number }),
    )
    .await?;
    Ok(created.id)
}
