//! Behind the gate: consumers of each sale's stream turn accepted purchases into orders
//! in batches, idempotently by purchase id, acknowledging only after the orders commit;
//! a consumer that dies leaves its entries pending, and another claims them once idle.
//! Housekeeping gives cancelled orders' units back to the gate and closes ended sales.

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::entity::{flash_sale, purchase};
use super::gate;
use super::service::{self, CLOSED, OPEN, ORDERED, RELEASED, RETURNED, RETURNING};
use crate::app::AppState;
use crate::catalog::entity::{product, sku};
use crate::customers::entity::address;
use crate::inventory::model::MovementRef;
use crate::inventory::service as inventory;
use crate::jobs::{self, Enqueue};
use crate::orders::checkout::order_number;
use crate::orders::entity::{order, order_line};
use crate::orders::jobs::CancelUnpaidOrder;
use crate::orders::model::{FrozenPricing, OrderStatus, ShipTo};
use crate::orders::service::{self as orders, By};
use crate::platform::cache::StreamEntry;
use crate::platform::{ApiError, ApiResult};
use crate::system::store as system_store;

/// How long an idle consumer waits before polling its streams again.
const IDLE_POLL: Duration = Duration::from_millis(20);
const HOUSEKEEPING_EVERY: Duration = Duration::from_millis(500);
/// Sales close this long after their end, so a gate whose clock runs behind ours has
/// certainly stopped selling.
const CLOSE_GRACE: chrono::Duration = chrono::Duration::seconds(2);

/// One member of the consumer group.
pub struct Consumer {
    state: AppState,
    name: String,
}

/// A purchase as the stream carries it.
struct Accepted {
    purchase_id: String,
    customer_id: i64,
    quantity: i64,
    stream_id: String,
}

fn parse(entry: &StreamEntry) -> Option<Accepted> {
    Some(Accepted {
        purchase_id: entry.field("purchase")?.to_owned(),
        customer_id: entry.field("customer")?.parse().ok()?,
        quantity: entry.field("quantity")?.parse().ok()?,
        stream_id: entry.id.clone(),
    })
}

impl Consumer {
    pub fn new(state: AppState, name: impl Into<String>) -> Self {
        Self {
            state,
            name: name.into(),
        }
    }

    /// Claims entries idle past `claim_idle_ms`, then reads new ones, up to a batch; does
    /// not process them.
    pub async fn fetch(&self, flash_sale_id: i64) -> anyhow::Result<Vec<StreamEntry>> {
        let config = &self.state.config.flash_sales;
        let stream = gate::stream(flash_sale_id);
        let mut entries = self
            .state
            .kv
            .stream_claim(
                &stream,
                gate::GROUP,
                &self.name,
                Duration::from_millis(config.claim_idle_ms),
                config.batch_size,
            )
            .await?;
        if !entries.is_empty() {
            tracing::info!(
                sale = flash_sale_id,
                consumer = %self.name,
                claimed = entries.len(),
                "claimed purchases another consumer left unacknowledged"
            );
        }
        let room = config.batch_size.saturating_sub(entries.len());
        if room > 0 {
            entries.extend(
                self.state
                    .kv
                    .stream_read(&stream, gate::GROUP, &self.name, room)
                    .await?,
            );
        }
        Ok(entries)
    }

    /// Creates the orders of these entries in one transaction, skipping purchases that
    /// already have theirs; does not acknowledge. Returns the orders made.
    pub async fn create_orders(
        &self,
        flash_sale_id: i64,
        entries: &[StreamEntry],
    ) -> anyhow::Result<usize> {
        let accepted: Vec<Accepted> = entries
            .iter()
            .filter_map(|e| {
                let parsed = parse(e);
                if parsed.is_none() {
                    tracing::error!(sale = flash_sale_id, entry = %e.id, "malformed purchase entry skipped");
                }
                parsed
            })
            .collect();
        if accepted.is_empty() {
            return Ok(0);
        }
        let made = create_orders(&self.state, flash_sale_id, &accepted)
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.problem().detail))?;
        metrics::counter!("flash_orders_created_total").increment(made as u64);
        Ok(made)
    }

    pub async fn ack(&self, flash_sale_id: i64, entries: &[StreamEntry]) -> anyhow::Result<()> {
        let ids: Vec<String> = entries.iter().map(|e| e.id.clone()).collect();
        self.state
            .kv
            .stream_ack(&gate::stream(flash_sale_id), gate::GROUP, &ids)
            .await
    }

    /// Fetches, orders and acknowledges a batch of every sale that has started; returns
    /// the entries handled.
    pub async fn step(&self) -> anyhow::Result<usize> {
        let now = Utc::now();
        let mut handled = 0;
        let windows = service::open_sale_windows(&self.state)
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.problem().detail))?;
        for (sale_id, starts_at) in windows {
            if starts_at > now {
                continue;
            }
            let entries = self.fetch(sale_id).await?;
            if entries.is_empty() {
                continue;
            }
            self.create_orders(sale_id, &entries).await?;
            if abort_before_ack() {
                tracing::error!("BZR_TEST_FLASH_ABORT_BEFORE_ACK: aborting before the ack");
                std::process::abort();
            }
            self.ack(sale_id, &entries).await?;
            handled += entries.len();
        }
        Ok(handled)
    }
}

/// A test hook: the real binary dies between committing orders and acknowledging them.
fn abort_before_ack() -> bool {
    static ABORT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ABORT.get_or_init(|| std::env::var_os("BZR_TEST_FLASH_ABORT_BEFORE_ACK").is_some())
}

/// The address an order ships to: the one the purchase named if it is the customer's,
/// else the default one; none if the customer has no address (staff ask for it).
async fn ship_to(
    db: &impl ConnectionTrait,
    customer_id: i64,
    chosen: Option<i64>,
) -> ApiResult<Option<ShipTo>> {
    let mut found = None;
    if let Some(id) = chosen {
        found = address::Entity::find_by_id(id)
            .filter(address::Column::CustomerId.eq(customer_id))
            .one(db)
            .await?;
    }
    if found.is_none() {
        found = address::Entity::find()
            .filter(address::Column::CustomerId.eq(customer_id))
            .filter(address::Column::IsDefault.eq(true))
            .one(db)
            .await?;
    }
    let Some(a) = found else {
        return Ok(None);
    };
    let path = system_store::region_with_ancestors(db, a.region_id).await?;
    Ok(Some(ShipTo {
        recipient: a.recipient,
        phone: a.phone,
        region_id: a.region_id,
        region_path: path.into_iter().rev().map(|r| r.name).collect(),
        line1: a.line1,
        line2: a.line2,
        postal_code: a.postal_code,
    }))
}

async fn create_orders(state: &AppState, sale_id: i64, accepted: &[Accepted]) -> ApiResult<usize> {
    let mut addresses = HashMap::new();
    for a in accepted {
        if let Some(id) = service::chosen_address(state, &a.purchase_id).await? {
            addresses.insert(a.purchase_id.clone(), id);
        }
    }
    let txn = state.db.begin().await?;
    let sale = service::lock(&txn, sale_id).await?;
    let s = sku::Entity::find_by_id(sale.sku_id)
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::internal("a flash sale's SKU is gone"))?;
    let p = product::Entity::find_by_id(s.product_id)
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::internal("a flash sale's product is gone"))?;
    let now = Utc::now();
    let mut made = Vec::new();
    for a in accepted {
        let accepted_at = a
            .stream_id
            .split_once('-')
            .and_then(|(ms, _)| ms.parse().ok())
            .and_then(chrono::DateTime::from_timestamp_millis)
            .unwrap_or(now);
        let inserted = purchase::Entity::insert(purchase::ActiveModel {
            id: Set(a.purchase_id.clone()),
            flash_sale_id: Set(sale_id),
            customer_id: Set(a.customer_id),
            quantity: Set(a.quantity),
            order_id: Set(None),
            status: Set(ORDERED.into()),
            stream_id: Set(Some(a.stream_id.clone())),
            accepted_at: Set(accepted_at),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .on_conflict(
            OnConflict::column(purchase::Column::Id)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
        if inserted == 0 {
            // Ordered by an earlier delivery of the same entry.
            continue;
        }
        let account = crate::customers::service::find_account(&txn, a.customer_id)
            .await?
            .filter(|c| c.can_sign_in());
        let outcome = match (&account, sale.status == CLOSED) {
            (_, true) => Some(RELEASED),
            (None, _) => Some(RETURNING),
            _ => None,
        };
        if let Some(status) = outcome {
            // The buyer's account is gone (their units go back), or the sale closed
            // before this purchase reached us (its units went back to the SKU).
            tracing::warn!(sale = sale_id, purchase = %a.purchase_id, status, "purchase not ordered");
            set_status(&txn, &a.purchase_id, status).await?;
            continue;
        }
        let account = account.ok_or_else(|| ApiError::internal("account vanished"))?;
        let ship_to = ship_to(&txn, a.customer_id, addresses.get(&a.purchase_id).copied()).await?;
        let total = sale.sale_price * a.quantity;
        let due = now + chrono::Duration::seconds(sale.payment_timeout_secs.into());
        let created = order::Entity::insert(order::ActiveModel {
            number: Set(order_number()),
            customer_id: Set(Some(a.customer_id)),
            email: Set(account.email.clone().unwrap_or_default()),
            status: Set(OrderStatus::PendingPayment.as_str().into()),
            currency: Set(state.config.shop.currency.clone()),
            subtotal: Set(total),
            discount: Set(0),
            shipping_fee: Set(0),
            shipping_discount: Set(0),
            packaging_fee: Set(0),
            adjustment: Set(0),
            total: Set(total),
            gift_certificate_amount: Set(0),
            amount_due: Set(total),
            bonus_points: Set(0),
            pricing: Set(serde_json::to_string(&FrozenPricing::default()).unwrap_or_default()),
            coupon_codes: Set("[]".into()),
            ship_to: Set(ship_to.as_ref().map_or("null".into(), |s| {
                serde_json::to_string(s).unwrap_or_default()
            })),
            placed_at: Set(now),
            payment_due_at: Set(Some(due)),
            cash_on_delivery: Set(false),
            flash_sale_id: Set(Some(sale_id)),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        })
        .exec_with_returning(&txn)
        .await?;
        order_line::Entity::insert(order_line::ActiveModel {
            order_id: Set(created.id),
            sku_id: Set(s.id),
            product_id: Set(p.id),
            sku_code: Set(s.code.clone()),
            title: Set(p.title.clone()),
            unit_price: Set(sale.sale_price),
            quantity: Set(a.quantity),
            discount: Set(0),
            adjustment: Set(0),
            adjustment_reason: Set(None),
            total: Set(total),
            weight_grams: Set(i64::from(s.weight_grams)),
            shipped_quantity: Set(0),
            returned_quantity: Set(0),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        })
        .exec(&txn)
        .await?;
        purchase::Entity::update_many()
            .col_expr(purchase::Column::OrderId, Expr::value(created.id))
            .filter(purchase::Column::Id.eq(a.purchase_id.clone()))
            .exec(&txn)
            .await?;
        orders::record(
            &txn,
            created.id,
            "placed",
            None,
            &By::customer(a.customer_id),
            json!({
                "flash_sale_id": sale_id,
                "purchase_id": a.purchase_id,
                "lines": [[s.id, a.quantity]],
                "total": total,
            }),
        )
        .await?;
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
        made.push((
            a.purchase_id.clone(),
            gate::Record {
                customer_id: a.customer_id,
                quantity: a.quantity,
                order_number: Some(created.number.clone()),
            },
        ));
    }
    txn.commit().await?;
    for (purchase_id, record) in &made {
        // Best effort: a poll that finds no order number asks the database after a while.
        if let Err(err) = gate::note_order(state.kv.as_ref(), &sale, purchase_id, record).await {
            tracing::warn!(purchase = %purchase_id, error = %err, "cannot note the order at the gate");
        }
    }
    if !made.is_empty() {
        metrics::counter!("orders_placed_total").increment(made.len() as u64);
        tracing::info!(
            sale = sale_id,
            orders = made.len(),
            "flash-sale orders placed"
        );
    }
    Ok(made.len())
}

async fn set_status(db: &impl ConnectionTrait, purchase_id: &str, status: &str) -> ApiResult<()> {
    purchase::Entity::update_many()
        .col_expr(purchase::Column::Status, Expr::value(status))
        .col_expr(purchase::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(purchase::Column::Id.eq(purchase_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Gives the units of cancelled sale orders back to their gates (once each, by purchase).
pub async fn give_back_returned(state: &AppState) -> ApiResult<usize> {
    let rows = purchase::Entity::find()
        .filter(purchase::Column::Status.eq(RETURNING))
        .limit(500)
        .all(state.db.writer())
        .await?;
    let mut sales: HashMap<i64, flash_sale::Model> = HashMap::new();
    let mut done = 0;
    for p in rows {
        if !sales.contains_key(&p.flash_sale_id) {
            let Some(sale) = flash_sale::Entity::find_by_id(p.flash_sale_id)
                .one(state.db.writer())
                .await?
            else {
                continue;
            };
            sales.insert(sale.id, sale);
        }
        let sale = &sales[&p.flash_sale_id];
        let kv = state.kv.as_ref();
        let mut given = gate::give_back(kv, sale, &p.id, p.customer_id, p.quantity).await?;
        if given.is_none() {
            // The gate lost the sale; loading it counts this purchase as holding units,
            // so giving back is still right.
            service::prime(state, sale).await?;
            given = gate::give_back(kv, sale, &p.id, p.customer_id, p.quantity).await?;
        }
        if given.is_some() {
            purchase::Entity::update_many()
                .col_expr(purchase::Column::Status, Expr::value(RETURNED))
                .col_expr(purchase::Column::UpdatedAt, Expr::value(Utc::now()))
                .filter(purchase::Column::Id.eq(p.id.clone()))
                .filter(purchase::Column::Status.eq(RETURNING))
                .exec(state.db.writer())
                .await?;
            tracing::info!(sale = sale.id, purchase = %p.id, units = p.quantity, "units back on sale");
            done += 1;
        }
    }
    Ok(done)
}

/// Closes sales that have ended and whose every accepted purchase is recorded: the unsold
/// units (and those of cancelled orders) go back to the SKU through the ledger.
pub async fn close_ended(state: &AppState) -> ApiResult<usize> {
    let now = Utc::now();
    let ended = flash_sale::Entity::find()
        .filter(flash_sale::Column::Status.eq(OPEN))
        .filter(flash_sale::Column::EndsAt.lte(now - CLOSE_GRACE))
        .all(state.db.writer())
        .await?;
    let mut closed = 0;
    for sale in ended {
        let Some(g) = gate::snapshot(state.kv.as_ref(), sale.id).await? else {
            service::prime(state, &sale).await?;
            continue;
        };
        let recorded = service::ledger_of(state.db.writer(), sale.id).await?;
        if g.accepted != recorded.accepted {
            // Purchases still on their way to becoming orders.
            continue;
        }
        let txn = state.db.begin().await?;
        let sale = service::lock(&txn, sale.id).await?;
        if sale.status != OPEN || sale.ends_at > now - CLOSE_GRACE {
            continue;
        }
        let holding: i64 = purchase::Entity::find()
            .select_only()
            .column(purchase::Column::Quantity)
            .filter(purchase::Column::FlashSaleId.eq(sale.id))
            .filter(purchase::Column::Status.eq(ORDERED))
            .into_tuple::<i64>()
            .all(&txn)
            .await?
            .into_iter()
            .sum();
        let unsold = sale.stock - holding;
        if unsold > 0 {
            inventory::release_allotment(
                &txn,
                sale.sku_id,
                unsold,
                &MovementRef {
                    reason: service::ledger_reason(sale.id),
                    ..Default::default()
                },
            )
            .await?;
        }
        purchase::Entity::update_many()
            .col_expr(purchase::Column::Status, Expr::value(RETURNED))
            .filter(purchase::Column::FlashSaleId.eq(sale.id))
            .filter(purchase::Column::Status.eq(RETURNING))
            .exec(&txn)
            .await?;
        flash_sale::Entity::update_many()
            .col_expr(flash_sale::Column::Status, Expr::value(CLOSED))
            .col_expr(flash_sale::Column::Released, Expr::value(unsold))
            .col_expr(flash_sale::Column::ClosedAt, Expr::value(now))
            .col_expr(flash_sale::Column::UpdatedAt, Expr::value(now))
            .filter(flash_sale::Column::Id.eq(sale.id))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        tracing::info!(
            sale = sale.id,
            sold = holding,
            released = unsold,
            accepted = recorded.accepted,
            "flash sale closed"
        );
        closed += 1;
    }
    if closed > 0 {
        service::forget_open_sales(state).await;
    }
    Ok(closed)
}

/// Loads open sales the gate lacks (an embedded instance after a restart).
async fn prime_missing(state: &AppState) -> ApiResult<()> {
    let open = flash_sale::Entity::find()
        .filter(flash_sale::Column::Status.eq(OPEN))
        .all(state.db.reader())
        .await?;
    for sale in open {
        if gate::snapshot(state.kv.as_ref(), sale.id).await?.is_none() {
            service::prime(state, &sale).await?;
        }
    }
    Ok(())
}

/// The consumers and the housekeeping of one instance.
pub struct Workers {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// Starts `flash_sales.workers` consumers (none: this instance only takes purchases) and
/// the housekeeping.
pub fn start(state: &AppState) -> Workers {
    let (stop, rx) = watch::channel(false);
    let instance = format!(
        "{}-{}",
        std::process::id(),
        &ulid::Ulid::generate().to_string()[20..]
    );
    let mut tasks = Vec::new();
    for i in 0..state.config.flash_sales.workers {
        let consumer = Consumer::new(state.clone(), format!("{instance}-{i}"));
        let mut rx = rx.clone();
        tasks.push(tokio::spawn(async move {
            while !*rx.borrow() {
                let idle = match consumer.step().await {
                    Ok(n) => n == 0,
                    Err(err) => {
                        tracing::error!(error = %err, "flash-sale consumer failed; retrying");
                        true
                    }
                };
                if idle {
                    tokio::select! {
                        _ = tokio::time::sleep(IDLE_POLL) => {}
                        _ = rx.changed() => {}
                    }
                }
            }
        }));
    }
    let state = state.clone();
    let mut rx = rx.clone();
    tasks.push(tokio::spawn(async move {
        if let Err(err) = prime_missing(&state).await {
            tracing::warn!(error = %err.problem().detail, "cannot load open flash sales into the gate");
        }
        while !*rx.borrow() {
            if let Err(err) = give_back_returned(&state).await {
                tracing::error!(error = %err.problem().detail, "giving flash-sale units back failed");
            }
            if let Err(err) = close_ended(&state).await {
                tracing::error!(error = %err.problem().detail, "closing flash sales failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(HOUSEKEEPING_EVERY) => {}
                _ = rx.changed() => {}
            }
        }
    }));
    Workers { stop, tasks }
}

impl Workers {
    /// Lets each consumer finish its batch, then stops.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
