//! Picking and shipping (R5.3): shipments of a paid order's lines, picking lists across
//! orders, their PDFs, and marking a shipment shipped, which moves its units out of stock.

use std::collections::BTreeMap;

use chrono::Utc;
use sea_orm::ActiveValue::Set;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::json;

use super::documents::{self, Address, CarrierLabel, PackingSlip, PickLine, PickingList, SlipLine};
use super::entity::{order, order_line, picking_list, shipment, shipment_line};
use super::model::{LineQuantity, OrderStatus, PickingListView, ShipRequest, ShipTo, ShipmentView};
use super::service::{self, By};
use crate::app::AppState;
use crate::inventory::service as inventory;
use crate::platform::{ApiError, ApiResult};
use crate::system::entity::carrier;

/// Units of each order line not yet in any shipment.
async fn unassigned(db: &impl ConnectionTrait, o: &order::Model) -> ApiResult<BTreeMap<i64, i64>> {
    let lines = service::lines(db, o.id).await?;
    let shipment_ids: Vec<i64> = shipment::Entity::find()
        .filter(shipment::Column::OrderId.eq(o.id))
        .all(db)
        .await?
        .into_iter()
        .map(|s| s.id)
        .collect();
    let assigned = shipment_line::Entity::find()
        .filter(shipment_line::Column::ShipmentId.is_in(shipment_ids))
        .all(db)
        .await?;
    Ok(lines
        .iter()
        .map(|l| {
            let taken: i64 = assigned
                .iter()
                .filter(|a| a.order_line_id == l.id)
                .map(|a| a.quantity)
                .sum();
            (l.id, l.quantity - taken)
        })
        .filter(|(_, left)| *left > 0)
        .collect())
}

async fn insert_shipment(
    db: &impl ConnectionTrait,
    o: &order::Model,
    lines: &BTreeMap<i64, i64>,
) -> ApiResult<shipment::Model> {
    let count = shipment::Entity::find()
        .filter(shipment::Column::OrderId.eq(o.id))
        .all(db)
        .await?
        .len();
    let now = Utc::now();
    let created = shipment::Entity::insert(shipment::ActiveModel {
        order_id: Set(o.id),
        number: Set(format!("{}-S{}", o.number, count + 1)),
        status: Set("pending".into()),
        picking_list_id: Set(None),
        carrier_id: Set(o.carrier_id),
        tracking_number: Set(None),
        shipped_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec_with_returning(db)
    .await?;
    for (&line_id, &quantity) in lines {
        shipment_line::Entity::insert(shipment_line::ActiveModel {
            shipment_id: Set(created.id),
            order_line_id: Set(line_id),
            quantity: Set(quantity),
        })
        .exec_without_returning(db)
        .await?;
    }
    Ok(created)
}

/// Puts whatever is not in a shipment yet into one new shipment.
pub async fn ship_rest_in_one(db: &impl ConnectionTrait, o: &order::Model) -> ApiResult<()> {
    let rest = unassigned(db, o).await?;
    if !rest.is_empty() {
        insert_shipment(db, o, &rest).await?;
    }
    Ok(())
}

/// Splits a paid order's delivery: a shipment of the given lines and quantities.
pub async fn create_shipment(
    state: &AppState,
    order_id: i64,
    lines: Option<Vec<LineQuantity>>,
    by: By,
) -> ApiResult<ShipmentView> {
    let txn = state.db.begin().await?;
    let o = service::lock(&txn, order_id).await?;
    service::check_unlocked(&o, &by)?;
    let mut allowed = service::payable_before_picking(&o);
    allowed.push(OrderStatus::ReadyForPicking);
    service::expect_status(&o, &allowed, "split into shipments")?;
    let free = unassigned(&txn, &o).await?;
    let wanted: BTreeMap<i64, i64> = match lines {
        None => free.clone(),
        Some(lines) => {
            let mut wanted = BTreeMap::new();
            for (i, l) in lines.iter().enumerate() {
                let left = free.get(&l.line_id).copied().unwrap_or(0);
                if l.quantity < 1 || l.quantity > left {
                    return Err(ApiError::invalid(
                        format!("lines[{i}].quantity"),
                        format!("line {} has {left} units not in a shipment", l.line_id),
                    ));
                }
                *wanted.entry(l.line_id).or_insert(0) += l.quantity;
            }
            wanted
        }
    };
    if wanted.is_empty() {
        return Err(ApiError::conflict(
            "nothing-to-ship",
            "every unit is already in a shipment",
        ));
    }
    let created = insert_shipment(&txn, &o, &wanted).await?;
    service::record(
        &txn,
        o.id,
        "shipment_created",
        None,
        &by,
        json!({ "shipment": created.number, "lines": wanted }),
    )
    .await?;
    let view = service::shipment_views(&txn, vec![created])
        .await?
        .remove(0);
    txn.commit().await?;
    Ok(view)
}

async fn lock_shipment(db: &impl ConnectionTrait, id: i64) -> ApiResult<shipment::Model> {
    use sea_orm::QuerySelect;
    shipment::Entity::find_by_id(id)
        .lock_exclusive()
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("shipment", id))
}

fn check_tracking(tracking: &str) -> ApiResult<()> {
    let ok = (4..=40).contains(&tracking.len())
        && tracking
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !ok {
        return Err(ApiError::invalid(
            "tracking_number",
            "4 to 40 letters, digits or dashes",
        ));
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

/// Sets the carrier and tracking number (e.g. to print the label before shipping).
pub async fn set_tracking(
    state: &AppState,
    id: i64,
    carrier_id: Option<i64>,
    tracking: &str,
) -> ApiResult<ShipmentView> {
    let tracking = tracking.trim();
    check_tracking(tracking)?;
    let txn = state.db.begin().await?;
    check_carrier(&txn, carrier_id).await?;
    let s = lock_shipment(&txn, id).await?;
    if s.status != "pending" {
        return Err(ApiError::conflict(
            "already-shipped",
            format!("shipment {} has shipped", s.number),
        ));
    }
    let updated = shipment::Entity::update(shipment::ActiveModel {
        id: Set(s.id),
        carrier_id: Set(carrier_id.or(s.carrier_id)),
        tracking_number: Set(Some(tracking.to_owned())),
        updated_at: Set(Utc::now()),
        ..Default::default()
    })
    .exec(&txn)
    .await?;
    let view = service::shipment_views(&txn, vec![updated])
        .await?
        .remove(0);
    txn.commit().await?;
    Ok(view)
}

/// Marks a shipment shipped: its units leave stock (on hand and reservation both drop),
/// and the order is shipped once every unit has gone.
pub async fn ship(state: &AppState, id: i64, req: ShipRequest, by: By) -> ApiResult<ShipmentView> {
    let txn = state.db.begin().await?;
    let s = lock_shipment(&txn, id).await?;
    let o = service::lock(&txn, s.order_id).await?;
    service::check_unlocked(&o, &by)?;
    if s.status != "pending" {
        return Err(ApiError::conflict(
            "already-shipped",
            format!("shipment {} has shipped", s.number),
        ));
    }
    service::expect_status(&o, &[OrderStatus::ReadyForPicking], "shipped")?;
    let tracking = match req.tracking_number.as_deref().map(str::trim) {
        Some(t) => {
            check_tracking(t)?;
            t.to_owned()
        }
        None => s.tracking_number.clone().ok_or_else(|| {
            ApiError::invalid("tracking_number", "give the carrier's tracking number")
        })?,
    };
    check_carrier(&txn, req.carrier_id).await?;
    let parts = shipment_line::Entity::find()
        .filter(shipment_line::Column::ShipmentId.eq(s.id))
        .all(&txn)
        .await?;
    let lines = service::lines(&txn, o.id).await?;
    let mut moves = Vec::new();
    for part in &parts {
        let line = lines
            .iter()
            .find(|l| l.id == part.order_line_id)
            .ok_or_else(|| ApiError::internal("shipment line without order line"))?;
        moves.push((line.sku_id, part.quantity));
        order_line::Entity::update(order_line::ActiveModel {
            id: Set(line.id),
            shipped_quantity: Set(line.shipped_quantity + part.quantity),
            updated_at: Set(Utc::now()),
            ..Default::default()
        })
        .exec(&txn)
        .await?;
    }
    inventory::ship(
        &txn,
        &moves,
        &by.movement(&format!("shipment {}", s.number), o.id),
    )
    .await?;
    let now = Utc::now();
    let updated = shipment::Entity::update(shipment::ActiveModel {
        id: Set(s.id),
        status: Set("shipped".into()),
        carrier_id: Set(req.carrier_id.or(s.carrier_id)),
        tracking_number: Set(Some(tracking.clone())),
        shipped_at: Set(Some(now)),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec(&txn)
    .await?;
    let all_shipped = service::lines(&txn, o.id)
        .await?
        .iter()
        .all(|l| l.shipped_quantity >= l.quantity);
    let detail = json!({ "shipment": s.number, "tracking_number": tracking });
    if all_shipped {
        service::transition(
            &txn,
            &o,
            OrderStatus::Shipped,
            &by,
            "shipped",
            detail,
            |a| {
                a.shipped_at = Set(Some(now));
            },
        )
        .await?;
    } else {
        service::record(&txn, o.id, "partially_shipped", None, &by, detail).await?;
    }
    let view = service::shipment_views(&txn, vec![updated])
        .await?
        .remove(0);
    txn.commit().await?;
    Ok(view)
}

/// A picking list over pending shipments of orders ready for picking.
pub async fn create_picking_list(
    state: &AppState,
    shipment_ids: Option<Vec<i64>>,
    by: By,
) -> ApiResult<PickingListView> {
    let txn = state.db.begin().await?;
    let ready: Vec<i64> = order::Entity::find()
        .filter(order::Column::Status.eq(OrderStatus::ReadyForPicking.as_str()))
        .all(&txn)
        .await?
        .into_iter()
        .map(|o| o.id)
        .collect();
    let mut query = shipment::Entity::find()
        .filter(shipment::Column::Status.eq("pending"))
        .filter(shipment::Column::PickingListId.is_null())
        .filter(shipment::Column::OrderId.is_in(ready));
    if let Some(ids) = &shipment_ids {
        query = query.filter(shipment::Column::Id.is_in(ids.iter().copied()));
    }
    let shipments = query.order_by_asc(shipment::Column::Id).all(&txn).await?;
    if let Some(ids) = &shipment_ids
        && shipments.len() != ids.len()
    {
        return Err(ApiError::invalid(
            "shipment_ids",
            "every shipment must be pending, not on a list yet, and of an order ready for picking",
        ));
    }
    if shipments.is_empty() {
        return Err(ApiError::conflict(
            "nothing-to-pick",
            "no pending shipments are waiting to be picked",
        ));
    }
    let now = Utc::now();
    let ulid = ulid::Ulid::generate().to_string();
    let list = picking_list::Entity::insert(picking_list::ActiveModel {
        number: Set(format!(
            "PL-{}-{}",
            now.format("%y%m%d"),
            &ulid[ulid.len() - 6..]
        )),
        staff_id: Set(by.staff_id),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec_with_returning(&txn)
    .await?;
    shipment::Entity::update_many()
        .col_expr(
            shipment::Column::PickingListId,
            sea_orm::sea_query::Expr::value(list.id),
        )
        .filter(shipment::Column::Id.is_in(shipments.iter().map(|s| s.id)))
        .exec(&txn)
        .await?;
    let view = picking_list_view(&txn, list).await?;
    txn.commit().await?;
    Ok(view)
}

async fn picking_list_view(
    db: &impl ConnectionTrait,
    list: picking_list::Model,
) -> ApiResult<PickingListView> {
    let shipments = shipment::Entity::find()
        .filter(shipment::Column::PickingListId.eq(list.id))
        .order_by_asc(shipment::Column::Id)
        .all(db)
        .await?;
    Ok(PickingListView {
        id: list.id,
        number: list.number,
        created_at: list.created_at,
        shipments: service::shipment_views(db, shipments).await?,
    })
}

pub async fn get_picking_list(state: &AppState, id: i64) -> ApiResult<PickingListView> {
    let db = state.db.reader();
    let list = picking_list::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("picking list", id))?;
    picking_list_view(db, list).await
}

/// The picking list as a PDF: one row per SKU with the total to pick and the orders.
pub async fn picking_list_pdf(state: &AppState, id: i64) -> ApiResult<Vec<u8>> {
    let db = state.db.reader();
    let view = get_picking_list(state, id).await?;
    let mut rows: BTreeMap<String, PickLine> = BTreeMap::new();
    for s in &view.shipments {
        let o = order::Entity::find_by_id(s.order_id)
            .one(db)
            .await?
            .ok_or_else(|| ApiError::internal("shipment without order"))?;
        let lines = service::lines(db, o.id).await?;
        for part in &s.lines {
            let Some(line) = lines.iter().find(|l| l.id == part.order_line_id) else {
                continue;
            };
            let row = rows
                .entry(line.sku_code.clone())
                .or_insert_with(|| PickLine {
                    sku_code: line.sku_code.clone(),
                    title: line.title.clone(),
                    quantity: 0,
                    orders: Vec::new(),
                });
            row.quantity += part.quantity;
            if !row.orders.contains(&o.number) {
                row.orders.push(o.number.clone());
            }
        }
    }
    Ok(documents::picking_list_pdf(&PickingList {
        number: view.number,
        generated_at: Utc::now(),
        lines: rows.into_values().collect(),
    }))
}

async fn shipment_context(
    db: &impl ConnectionTrait,
    id: i64,
) -> ApiResult<(shipment::Model, order::Model, Vec<SlipLine>, Address)> {
    let s = shipment::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("shipment", id))?;
    let o = order::Entity::find_by_id(s.order_id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::internal("shipment without order"))?;
    let lines = service::lines(db, o.id).await?;
    let parts = shipment_line::Entity::find()
        .filter(shipment_line::Column::ShipmentId.eq(s.id))
        .all(db)
        .await?;
    let slip = parts
        .iter()
        .filter_map(|p| {
            let l = lines.iter().find(|l| l.id == p.order_line_id)?;
            Some(SlipLine {
                sku_code: l.sku_code.clone(),
                title: l.title.clone(),
                quantity: p.quantity,
            })
        })
        .collect();
    let ship_to: Option<ShipTo> = serde_json::from_str(&o.ship_to).ok().flatten();
    let ship_to = ship_to.ok_or_else(|| {
        ApiError::conflict(
            "no-address",
            format!("order {} has nothing to ship to", o.number),
        )
    })?;
    let mut address_lines = vec![ship_to.line1.clone()];
    address_lines.extend(ship_to.line2.clone());
    address_lines.push(ship_to.region_path.join(" "));
    address_lines.extend(ship_to.postal_code.clone());
    let address = Address {
        recipient: ship_to.recipient,
        phone: ship_to.phone,
        lines: address_lines,
    };
    Ok((s, o, slip, address))
}

/// The packing slip that goes into the parcel.
pub async fn packing_slip_pdf(state: &AppState, shipment_id: i64) -> ApiResult<Vec<u8>> {
    let (s, o, lines, ship_to) = shipment_context(state.db.reader(), shipment_id).await?;
    Ok(documents::packing_slip_pdf(&PackingSlip {
        order_number: format!("{} ({})", o.number, s.number),
        placed_at: o.placed_at,
        ship_to,
        lines,
        note: o.note,
    }))
}

/// The carrier label, with the tracking number as a Code 128 barcode.
pub async fn label_pdf(state: &AppState, shipment_id: i64) -> ApiResult<Vec<u8>> {
    let db = state.db.reader();
    let (s, o, lines, ship_to) = shipment_context(db, shipment_id).await?;
    let tracking = s.tracking_number.clone().ok_or_else(|| {
        ApiError::conflict(
            "no-tracking-number",
            format!("shipment {} has no tracking number yet", s.number),
        )
    })?;
    let carrier_name = match s.carrier_id {
        Some(id) => carrier::Entity::find_by_id(id)
            .one(db)
            .await?
            .map(|c| c.name),
        None => None,
    };
    let weight: i64 = {
        let order_lines = service::lines(db, o.id).await?;
        lines
            .iter()
            .filter_map(|slip| {
                order_lines
                    .iter()
                    .find(|l| l.sku_code == slip.sku_code)
                    .map(|l| l.weight_grams * slip.quantity)
            })
            .sum()
    };
    let config = &state.config.orders;
    Ok(documents::carrier_label_pdf(&CarrierLabel {
        carrier: carrier_name.unwrap_or_else(|| "Carrier".into()),
        service: o.shipping_method_name.clone().unwrap_or_default(),
        tracking_number: tracking,
        order_number: o.number,
        ship_from: Address {
            recipient: config.ship_from_name.clone(),
            phone: config.ship_from_phone.clone(),
            lines: config.ship_from_address.clone(),
        },
        ship_to,
        weight_grams: weight,
    }))
}
