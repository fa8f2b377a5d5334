//! The consistency checker (`bazaar flash-sale verify`): the gate's counters, the stream,
//! the purchases and their orders, and the stock ledger must tell one story. Any
//! disagreement is listed; a sale that oversold or let a customer past the limit shows it.

use std::collections::{BTreeMap, HashMap, HashSet};

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde::Serialize;

use super::entity::{flash_sale, purchase};
use super::gate::{self, Snapshot};
use super::service::{self, CLOSED, ORDERED, RELEASED, RETURNED, RETURNING};
use crate::app::AppState;
use crate::inventory::entity::stock_movement;
use crate::inventory::model::MovementKind;
use crate::orders::entity::{order, order_line};
use crate::orders::model::OrderStatus;
use crate::orders::service::status_of;

/// What the checker found.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub flash_sale_id: i64,
    pub status: String,
    /// Units set aside for the sale.
    pub allotted: i64,
    /// The gate's counters (none once it lost the sale).
    pub gate: Option<Snapshot>,
    pub remaining: i64,
    /// Units the gate accepted, ever.
    pub accepted: i64,
    pub stream_entries: usize,
    /// Entries handed to a consumer and not yet acknowledged.
    pub pending: usize,
    /// Units accepted by the gate whose purchase is not recorded yet.
    pub in_flight: i64,
    pub purchases: usize,
    pub ordered_units: i64,
    /// Units of cancelled orders (being given back, or back on sale).
    pub returned_units: i64,
    pub orders: usize,
    pub paid_orders: usize,
    pub customers: usize,
    /// Orders of the sale that are not the one order of one purchase.
    pub duplicate_orders: usize,
    /// Units held beyond what was set aside.
    pub oversold: i64,
    pub over_limit_customers: usize,
    /// Net units the ledger set aside for the sale (allotments less releases).
    pub ledger_allotted: i64,
    pub consistent: bool,
    pub differences: Vec<String>,
    /// What could not be checked, and why.
    pub notes: Vec<String>,
}

impl Report {
    /// The report for a terminal.
    pub fn render(&self) -> String {
        let mut out = format!(
            "flash sale {} ({}): {}\n",
            self.flash_sale_id,
            self.status,
            if self.consistent {
                "consistent"
            } else {
                "INCONSISTENT"
            }
        );
        let rows = [
            ("allotted", self.allotted),
            ("remaining at the gate", self.remaining),
            ("accepted by the gate", self.accepted),
            ("in flight", self.in_flight),
            ("ordered units", self.ordered_units),
            ("returned units", self.returned_units),
            ("ledger sets aside", self.ledger_allotted),
            ("oversold", self.oversold),
        ];
        for (name, value) in rows {
            out.push_str(&format!("  {name:<26}{value}\n"));
        }
        for (name, value) in [
            ("stream entries", self.stream_entries),
            ("pending in the group", self.pending),
            ("purchases", self.purchases),
            ("orders", self.orders),
            ("paid orders", self.paid_orders),
            ("customers", self.customers),
            ("duplicate orders", self.duplicate_orders),
            ("customers over the limit", self.over_limit_customers),
        ] {
            out.push_str(&format!("  {name:<26}{value}\n"));
        }
        for note in &self.notes {
            out.push_str(&format!("note: {note}\n"));
        }
        for d in &self.differences {
            out.push_str(&format!("DIFFERENCE: {d}\n"));
        }
        out
    }
}

/// Checks one sale.
pub async fn verify(state: &AppState, flash_sale_id: i64) -> anyhow::Result<Report> {
    let db = state.db.writer();
    let sale = flash_sale::Entity::find_by_id(flash_sale_id)
        .one(db)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no flash sale {flash_sale_id}"))?;
    let mut r = Report {
        flash_sale_id,
        status: sale.status.clone(),
        allotted: sale.stock,
        ..Default::default()
    };
    let mut diff = Vec::new();
    let open = sale.status != CLOSED;

    // The database: purchases and their orders.
    let purchases = purchase::Entity::find()
        .filter(purchase::Column::FlashSaleId.eq(flash_sale_id))
        .all(db)
        .await?;
    let orders: HashMap<i64, order::Model> = order::Entity::find()
        .filter(order::Column::FlashSaleId.eq(flash_sale_id))
        .all(db)
        .await?
        .into_iter()
        .map(|o| (o.id, o))
        .collect();
    let order_ids: Vec<i64> = orders.keys().copied().collect();
    let mut lines: HashMap<i64, Vec<order_line::Model>> = HashMap::new();
    for chunk in order_ids.chunks(500) {
        for line in order_line::Entity::find()
            .filter(order_line::Column::OrderId.is_in(chunk.iter().copied()))
            .all(db)
            .await?
        {
            lines.entry(line.order_id).or_default().push(line);
        }
    }
    r.purchases = purchases.len();
    r.orders = orders.len();
    let mut holding: BTreeMap<i64, i64> = BTreeMap::new();
    let mut returning_by: BTreeMap<i64, i64> = BTreeMap::new();
    let mut referenced = HashSet::new();
    let (mut returning, mut returned, mut released_later) = (0, 0, 0);
    for p in &purchases {
        match p.status.as_str() {
            ORDERED => {
                r.ordered_units += p.quantity;
                *holding.entry(p.customer_id).or_default() += p.quantity;
            }
            RETURNING => {
                returning += p.quantity;
                *returning_by.entry(p.customer_id).or_default() += p.quantity;
            }
            RETURNED => returned += p.quantity,
            RELEASED if p.order_id.is_some() => released_later += p.quantity,
            _ => {}
        }
        let Some(order_id) = p.order_id else {
            if p.status == ORDERED {
                diff.push(format!("purchase {} is ordered but has no order", p.id));
            }
            continue;
        };
        referenced.insert(order_id);
        let Some(o) = orders.get(&order_id) else {
            diff.push(format!("purchase {}: order {order_id} is missing", p.id));
            continue;
        };
        if o.customer_id != Some(p.customer_id) {
            diff.push(format!(
                "purchase {}: order {} is another customer's",
                p.id, o.number
            ));
        }
        let cancelled = status_of(o) == OrderStatus::Cancelled;
        if cancelled == (p.status == ORDERED) {
            diff.push(format!(
                "purchase {} is {} but order {} is {}",
                p.id, p.status, o.number, o.status
            ));
        }
        if o.paid_at.is_some() && !cancelled {
            r.paid_orders += 1;
        }
        match lines.get(&order_id).map(Vec::as_slice) {
            Some([line])
                if line.sku_id == sale.sku_id
                    && line.unit_price == sale.sale_price
                    && line.quantity == p.quantity => {}
            _ => diff.push(format!(
                "order {} is not one line of {} × SKU {} at {}",
                o.number, p.quantity, sale.sku_id, sale.sale_price
            )),
        }
    }
    r.returned_units = returning + returned;
    r.duplicate_orders = orders.keys().filter(|id| !referenced.contains(id)).count();
    if r.duplicate_orders > 0 {
        diff.push(format!(
            "{} orders of the sale belong to no purchase",
            r.duplicate_orders
        ));
    }
    r.customers = holding.len();
    r.over_limit_customers = holding
        .values()
        .filter(|units| **units > sale.per_customer_limit)
        .count();
    if r.over_limit_customers > 0 {
        diff.push(format!(
            "{} customers hold more than the limit of {}",
            r.over_limit_customers, sale.per_customer_limit
        ));
    }

    // The ledger: what was set aside, less what went back.
    let movements = stock_movement::Entity::find()
        .filter(stock_movement::Column::SkuId.eq(sale.sku_id))
        .filter(stock_movement::Column::Reason.eq(service::ledger_reason(flash_sale_id)))
        .filter(stock_movement::Column::Kind.is_in([
            MovementKind::FlashAllot.as_str(),
            MovementKind::FlashRelease.as_str(),
        ]))
        .all(db)
        .await?;
    r.ledger_allotted = movements.iter().map(|m| i64::from(m.reserved_delta)).sum();
    if open && r.ledger_allotted != sale.stock {
        diff.push(format!(
            "the ledger sets aside {} units, the sale has {}",
            r.ledger_allotted, sale.stock
        ));
    }
    if !open {
        let released = sale.released.unwrap_or(0);
        if r.ledger_allotted != sale.stock - released {
            diff.push(format!(
                "the ledger keeps {} units after closing, the sale kept {}",
                r.ledger_allotted,
                sale.stock - released
            ));
        }
        if r.ordered_units + released_later != sale.stock - released {
            diff.push(format!(
                "{} units are ordered and {} released since closing, but {} were kept",
                r.ordered_units,
                released_later,
                sale.stock - released
            ));
        }
    }

    // The gate and the stream.
    let gate_state = gate::snapshot(state.kv.as_ref(), flash_sale_id).await?;
    r.gate = gate_state;
    let stream_name = gate::stream(flash_sale_id);
    let entries = state.kv.stream_entries(&stream_name).await?;
    let group = state.kv.stream_group(&stream_name, gate::GROUP).await?;
    r.stream_entries = entries.len();
    r.pending = group.as_ref().map_or(0, |g| g.pending.len());
    let recorded: HashSet<&str> = purchases.iter().map(|p| p.id.as_str()).collect();
    let pending: HashSet<&str> = group
        .as_ref()
        .map(|g| g.pending.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let delivered_up_to = group.as_ref().and_then(|g| g.last_delivered.clone());
    let mut in_stream = HashSet::new();
    let mut in_flight_by: BTreeMap<i64, i64> = BTreeMap::new();
    for e in &entries {
        let (Some(id), Some(customer), Some(qty)) = (
            e.field("purchase"),
            e.field("customer").and_then(|c| c.parse::<i64>().ok()),
            e.field("quantity").and_then(|q| q.parse::<i64>().ok()),
        ) else {
            diff.push(format!("stream entry {} is malformed", e.id));
            continue;
        };
        if !in_stream.insert(id) {
            diff.push(format!("purchase {id} is in the stream twice"));
        }
        if recorded.contains(id) {
            continue;
        }
        r.in_flight += qty;
        *in_flight_by.entry(customer).or_default() += qty;
        let delivered = delivered_up_to
            .as_deref()
            .is_some_and(|last| stream_id_le(&e.id, last));
        if delivered && !pending.contains(e.id.as_str()) {
            diff.push(format!(
                "purchase {id} was acknowledged but has no order (lost)"
            ));
        }
    }
    match gate_state {
        None if open && state.kv.kind() == "memory" => r.notes.push(
            "the in-process gate lives inside the server; only the database was checked".into(),
        ),
        None if open => diff.push("the gate holds nothing for this open sale".into()),
        None => {}
        Some(g) => {
            r.remaining = g.remaining;
            r.accepted = g.accepted;
            if g.remaining < 0 {
                diff.push(format!("the gate's stock is negative ({})", g.remaining));
            }
            if g.remaining + g.accepted - g.returned != sale.stock {
                diff.push(format!(
                    "the gate's remaining {} + accepted {} - returned {} is not the sale's {}",
                    g.remaining, g.accepted, g.returned, sale.stock
                ));
            }
            if !g.rebuilt {
                let stream_units: i64 = entries
                    .iter()
                    .filter_map(|e| e.field("quantity")?.parse::<i64>().ok())
                    .sum();
                if stream_units != g.accepted {
                    diff.push(format!(
                        "the gate accepted {} units, the stream carries {stream_units}",
                        g.accepted
                    ));
                }
                for p in &purchases {
                    if !in_stream.contains(p.id.as_str()) {
                        diff.push(format!("purchase {} is not in the stream", p.id));
                    }
                }
                let db_units: i64 = purchases.iter().map(|p| p.quantity).sum();
                if db_units + r.in_flight != g.accepted {
                    diff.push(format!(
                        "the gate accepted {} units; {} are recorded and {} on their way",
                        g.accepted, db_units, r.in_flight
                    ));
                }
            }
            if open && !(returned <= g.returned && g.returned <= returned + returning) {
                diff.push(format!(
                    "the gate took back {} units; {} are back and {} on their way",
                    g.returned, returned, returning
                ));
            }
            if open && !g.rebuilt && holding.len() + in_flight_by.len() <= 20_000 {
                let customers: HashSet<i64> = holding
                    .keys()
                    .chain(in_flight_by.keys())
                    .chain(returning_by.keys())
                    .copied()
                    .collect();
                for c in customers {
                    let counted = gate::bought(state.kv.as_ref(), flash_sale_id, c).await?;
                    let low = holding.get(&c).copied().unwrap_or(0)
                        + in_flight_by.get(&c).copied().unwrap_or(0);
                    let high = low + returning_by.get(&c).copied().unwrap_or(0);
                    if counted < low || counted > high {
                        diff.push(format!(
                            "the gate counts {counted} units for customer {c}; orders and the stream say {low}"
                        ));
                    }
                }
            }
        }
    }
    let held = r.ordered_units + if open { r.in_flight } else { 0 };
    let kept = if open {
        sale.stock
    } else {
        sale.stock - sale.released.unwrap_or(0)
    };
    r.oversold = (held - kept).max(0);
    if r.oversold > 0 {
        diff.push(format!("oversold by {} units", r.oversold));
    }
    r.consistent = diff.is_empty();
    r.differences = diff;
    Ok(r)
}

/// Stream ids compare as (milliseconds, sequence).
fn stream_id_le(a: &str, b: &str) -> bool {
    let parse = |id: &str| {
        let (ms, seq) = id.split_once('-')?;
        Some((ms.parse::<u64>().ok()?, seq.parse::<u64>().ok()?))
    };
    matches!((parse(a), parse(b)), (Some(a), Some(b)) if a <= b)
}
