//! Flash sales for staff (set stock aside, schedule, edit, end) and for customers (list,
//! purchase through the gate, poll), and what a cancelled sale order gives back.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::entity::{flash_sale, purchase};
use super::gate::{self, Decision};
use super::model::{
    FlashSale, NewFlashSale, Purchase, PurchaseAccepted, PurchaseRequest, StorefrontFlashSale,
    StorefrontFlashSales, UpdateFlashSale,
};
use crate::app::AppState;
use crate::catalog::entity::{product, sku};
use crate::identity::service::{Actor, audit};
use crate::inventory::model::MovementRef;
use crate::inventory::service as inventory;
use crate::orders::entity::order;
use crate::platform::error::Validator;
use crate::platform::list::{ListParams, Page, SortFields};
use crate::platform::{ApiError, ApiResult};

/// Purchase states: the order holds the units; the order was cancelled and its units are
/// going back to the gate, or are back; the sale had closed, so they went to the SKU.
pub const ORDERED: &str = "ordered";
pub const RETURNING: &str = "returning";
pub const RETURNED: &str = "returned";
pub const RELEASED: &str = "released";

/// Sale states in the database: `open` until its unsold units go back to the SKU.
pub const OPEN: &str = "open";
pub const CLOSED: &str = "closed";

const MAX_QUANTITY: i64 = 1000;
const OPEN_SALES_KEY: &str = "flash:open";
const OPEN_SALES_TTL: Duration = Duration::from_secs(5);
const MEMBER_TTL: Duration = Duration::from_secs(60);

/// The ledger reason of a sale's stock movements; the checker finds them by it.
pub fn ledger_reason(sale_id: i64) -> String {
    format!("flash sale {sale_id}")
}

fn not_found(id: i64) -> ApiError {
    ApiError::not_found("flash sale", id)
}

async fn find(db: &impl ConnectionTrait, id: i64) -> ApiResult<flash_sale::Model> {
    flash_sale::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| not_found(id))
}

/// Locks the sale row (PostgreSQL; SQLite's write transaction is exclusive already), so
/// closing a sale and giving back a cancelled order's units never interleave.
pub async fn lock(db: &impl ConnectionTrait, id: i64) -> ApiResult<flash_sale::Model> {
    flash_sale::Entity::find_by_id(id)
        .lock_exclusive()
        .one(db)
        .await?
        .ok_or_else(|| not_found(id))
}

/// What the database says each purchase holds, for a gate that lost the sale.
pub async fn ledger_of(db: &impl ConnectionTrait, sale_id: i64) -> ApiResult<gate::Ledger> {
    let rows = purchase::Entity::find()
        .filter(purchase::Column::FlashSaleId.eq(sale_id))
        .all(db)
        .await?;
    let mut ledger = gate::Ledger::default();
    let mut bought: BTreeMap<i64, i64> = BTreeMap::new();
    for p in rows {
        ledger.accepted += p.quantity;
        match p.status.as_str() {
            ORDERED | RETURNING => {
                ledger.holding += p.quantity;
                *bought.entry(p.customer_id).or_default() += p.quantity;
            }
            _ => ledger.returned += p.quantity,
        }
    }
    ledger.bought = bought.into_iter().collect();
    Ok(ledger)
}

/// Loads a sale into the gate from the database (start-up of an embedded instance, or a
/// Redis that lost it); a gate that still holds the sale keeps its counts.
pub async fn prime(state: &AppState, sale: &flash_sale::Model) -> ApiResult<()> {
    let ledger = ledger_of(state.db.writer(), sale.id).await?;
    gate::prime(state.kv.as_ref(), sale, &ledger, false).await?;
    Ok(())
}

fn status_at(sale: &flash_sale::Model, now: DateTime<Utc>) -> &'static str {
    if sale.status == CLOSED {
        "closed"
    } else if now < sale.starts_at {
        "scheduled"
    } else if now < sale.ends_at {
        "live"
    } else {
        "ended"
    }
}

async fn sku_and_product(
    db: &impl ConnectionTrait,
    sku_id: i64,
) -> ApiResult<Option<(sku::Model, product::Model)>> {
    let Some(s) = sku::Entity::find_by_id(sku_id).one(db).await? else {
        return Ok(None);
    };
    let p = product::Entity::find_by_id(s.product_id).one(db).await?;
    Ok(p.map(|p| (s, p)))
}

/// The SKU and product of each of `sku_ids`, in two queries, for lists of sales.
async fn skus_and_products(
    db: &impl ConnectionTrait,
    sku_ids: impl IntoIterator<Item = i64>,
) -> ApiResult<HashMap<i64, (sku::Model, product::Model)>> {
    let skus = sku::Entity::find()
        .filter(sku::Column::Id.is_in(sku_ids))
        .all(db)
        .await?;
    let products: HashMap<i64, product::Model> = product::Entity::find()
        .filter(product::Column::Id.is_in(skus.iter().map(|s| s.product_id)))
        .all(db)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    Ok(skus
        .into_iter()
        .filter_map(|s| {
            let p = products.get(&s.product_id).cloned()?;
            Some((s.id, (s, p)))
        })
        .collect())
}

/// Units ordered (and not given back) per sale, summed by the database.
async fn sold_units(db: &impl ConnectionTrait, sale_ids: &[i64]) -> ApiResult<HashMap<i64, i64>> {
    let rows: Vec<(i64, i64)> = purchase::Entity::find()
        .select_only()
        .column(purchase::Column::FlashSaleId)
        .column_as(
            Expr::expr(Func::cast_as(
                Func::sum(Expr::col(purchase::Column::Quantity)),
                "BIGINT",
            )),
            "sold",
        )
        .filter(purchase::Column::FlashSaleId.is_in(sale_ids.iter().copied()))
        .filter(purchase::Column::Status.eq(ORDERED))
        .group_by(purchase::Column::FlashSaleId)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows.into_iter().collect())
}

async fn views(state: &AppState, sales: Vec<flash_sale::Model>) -> ApiResult<Vec<FlashSale>> {
    let db = state.db.reader();
    let ids: Vec<i64> = sales.iter().map(|s| s.id).collect();
    let sold = sold_units(db, &ids).await?;
    let items = skus_and_products(db, sales.iter().map(|s| s.sku_id)).await?;
    let now = Utc::now();
    let mut out = Vec::with_capacity(sales.len());
    for sale in sales {
        let (s, p) = items
            .get(&sale.sku_id)
            .cloned()
            .ok_or_else(|| ApiError::internal("a flash sale's SKU is gone"))?;
        let sold = sold.get(&sale.id).copied().unwrap_or(0);
        let remaining = if sale.status == CLOSED {
            0
        } else {
            match gate::snapshot(state.kv.as_ref(), sale.id).await? {
                Some(g) => g.remaining,
                None => sale.stock - sold,
            }
        };
        out.push(FlashSale {
            id: sale.id,
            name: sale.name.clone(),
            sku_id: s.id,
            sku_code: s.code,
            product_id: p.id,
            title: p.title,
            regular_price: s.price,
            sale_price: sale.sale_price,
            currency: state.config.shop.currency.clone(),
            stock: sale.stock,
            remaining,
            sold,
            starts_at: sale.starts_at,
            ends_at: sale.ends_at,
            per_customer_limit: sale.per_customer_limit,
            membership_level_id: sale.membership_level_id,
            payment_timeout_secs: sale.payment_timeout_secs,
            status: status_at(&sale, now).to_owned(),
            released: sale.released,
            created_at: sale.created_at,
            updated_at: sale.updated_at,
        });
    }
    Ok(out)
}

async fn view(state: &AppState, sale: flash_sale::Model) -> ApiResult<FlashSale> {
    views(state, vec![sale])
        .await?
        .pop()
        .ok_or_else(|| ApiError::internal("flash sale view missing"))
}

pub async fn list(state: &AppState, params: &ListParams) -> ApiResult<Page<FlashSale>> {
    let spec = params.spec(&SortFields(&[
        ("starts_at", flash_sale::Column::StartsAt),
        ("ends_at", flash_sale::Column::EndsAt),
        ("name", flash_sale::Column::Name),
        ("created_at", flash_sale::Column::CreatedAt),
    ]))?;
    let page = spec
        .fetch(
            state.db.reader(),
            flash_sale::Entity::find().order_by_desc(flash_sale::Column::StartsAt),
            flash_sale::Column::Id,
        )
        .await?;
    let items = views(state, page.items).await?;
    Ok(Page {
        items,
        total: page.total,
        page: page.page,
        per_page: page.per_page,
    })
}

pub async fn get(state: &AppState, id: i64) -> ApiResult<FlashSale> {
    let sale = find(state.db.reader(), id).await?;
    view(state, sale).await
}

struct Fields {
    name: String,
    sale_price: i64,
    stock: i64,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    limit: i64,
    membership_level_id: Option<i64>,
    payment_timeout_secs: u32,
}

async fn validate(db: &impl ConnectionTrait, f: &Fields, sku: &sku::Model) -> ApiResult<()> {
    let mut v = Validator::default();
    v.text(&f.name, "name", 200)
        .non_negative(f.sale_price, "sale_price")
        .check(
            (1..=1_000_000).contains(&f.stock),
            "stock",
            "must be 1 to 1000000",
        )
        .check(
            f.ends_at > f.starts_at,
            "ends_at",
            "must be after starts_at",
        )
        .check(
            (1..=MAX_QUANTITY).contains(&f.limit),
            "per_customer_limit",
            "must be 1 to 1000",
        )
        .check(
            (1..=86_400).contains(&f.payment_timeout_secs),
            "payment_timeout_secs",
            "must be 1 to 86400 seconds",
        )
        .check(
            f.sale_price <= sku.price,
            "sale_price",
            "must not exceed the SKU's regular price",
        );
    v.finish()?;
    if let Some(level) = f.membership_level_id {
        let exists = crate::customers::entity::membership_level::Entity::find_by_id(level)
            .one(db)
            .await?
            .is_some();
        if !exists {
            return Err(ApiError::invalid(
                "membership_level_id",
                format!("membership level {level} does not exist"),
            ));
        }
    }
    Ok(())
}

/// Drops the cached list of open sales, so every instance reads the change.
pub async fn forget_open_sales(state: &AppState) {
    state.flash_sales.clear();
    if let Err(err) = state.kv.delete(OPEN_SALES_KEY).await {
        tracing::warn!(error = %err, "cannot drop the cached flash-sale list");
    }
}

/// Loads a sale into the gate after a change; a failure only delays it (purchases prime
/// a gate that lacks the sale).
async fn refresh_gate(state: &AppState, sale: &flash_sale::Model, force: bool) {
    let result = match force {
        true => gate::prime(state.kv.as_ref(), sale, &gate::Ledger::default(), true).await,
        false => match ledger_of(state.db.writer(), sale.id).await {
            Ok(ledger) => gate::prime(state.kv.as_ref(), sale, &ledger, false).await,
            Err(err) => Err(anyhow::anyhow!("{}", err.problem().detail)),
        },
    };
    if let Err(err) = result {
        tracing::warn!(sale = sale.id, error = %err, "cannot load the flash sale into the gate");
    }
    forget_open_sales(state).await;
}

/// Schedules a sale: the units leave the SKU's available stock in the same transaction.
pub async fn create(
    state: &AppState,
    actor: &Actor<'_>,
    req: NewFlashSale,
) -> ApiResult<FlashSale> {
    let fields = Fields {
        name: req.name.trim().to_owned(),
        sale_price: req.sale_price,
        stock: req.stock,
        starts_at: req.starts_at,
        ends_at: req.ends_at,
        limit: req.per_customer_limit.unwrap_or(1),
        membership_level_id: req.membership_level_id,
        payment_timeout_secs: req
            .payment_timeout_secs
            .unwrap_or(state.config.flash_sales.payment_timeout_secs),
    };
    let now = Utc::now();
    let txn = state.db.begin().await?;
    let (s, _) = sku_and_product(&txn, req.sku_id)
        .await?
        .ok_or_else(|| ApiError::invalid("sku_id", format!("SKU {} does not exist", req.sku_id)))?;
    validate(&txn, &fields, &s).await?;
    if fields.ends_at <= now {
        return Err(ApiError::invalid("ends_at", "must be in the future"));
    }
    let staff_id = actor.principal.map(|p| p.staff_id);
    let sale = flash_sale::Entity::insert(flash_sale::ActiveModel {
        version: Set(1),
        name: Set(fields.name),
        sku_id: Set(s.id),
        sale_price: Set(fields.sale_price),
        stock: Set(fields.stock),
        starts_at: Set(fields.starts_at),
        ends_at: Set(fields.ends_at),
        per_customer_limit: Set(fields.limit),
        membership_level_id: Set(fields.membership_level_id),
        payment_timeout_secs: Set(fields.payment_timeout_secs as i32),
        status: Set(OPEN.into()),
        released: Set(None),
        closed_at: Set(None),
        created_by: Set(staff_id),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec_with_returning(&txn)
    .await?;
    inventory::allot(
        &txn,
        s.id,
        sale.stock,
        &MovementRef::staff(staff_id, ledger_reason(sale.id)),
    )
    .await
    .map_err(|e| match e.problem().code.as_str() {
        "out-of-stock" => ApiError::conflict("insufficient-stock", e.problem().detail),
        _ => e,
    })?;
    audit(
        &txn,
        actor,
        "flash_sale.created",
        Some(format!("flash_sale:{}", sale.id)),
        json!({ "sku_id": s.id, "stock": sale.stock, "sale_price": sale.sale_price }),
    )
    .await?;
    txn.commit().await?;
    tracing::info!(sale = sale.id, stock = sale.stock, "flash sale scheduled");
    refresh_gate(state, &sale, true).await;
    view(state, sale).await
}

/// Edits a sale; once it has started only its name and end may change.
pub async fn update(
    state: &AppState,
    actor: &Actor<'_>,
    id: i64,
    req: UpdateFlashSale,
) -> ApiResult<FlashSale> {
    let now = Utc::now();
    let txn = state.db.begin().await?;
    let old = lock(&txn, id).await?;
    if old.status == CLOSED {
        return Err(ApiError::conflict(
            "flash-sale-closed",
            format!("flash sale {id} is over and closed"),
        ));
    }
    let started = now >= old.starts_at;
    let fixed_once_live = req.sale_price.is_some()
        || req.stock.is_some()
        || req.starts_at.is_some()
        || req.per_customer_limit.is_some()
        || req.membership_level_id.is_some()
        || req.payment_timeout_secs.is_some();
    if started && fixed_once_live {
        return Err(ApiError::conflict(
            "flash-sale-started",
            format!("flash sale {id} has started: only its name and end may change"),
        ));
    }
    let fields = Fields {
        name: req.name.map_or(old.name.clone(), |n| n.trim().to_owned()),
        sale_price: req.sale_price.unwrap_or(old.sale_price),
        stock: req.stock.unwrap_or(old.stock),
        starts_at: req.starts_at.unwrap_or(old.starts_at),
        ends_at: req.ends_at.unwrap_or(old.ends_at),
        limit: req.per_customer_limit.unwrap_or(old.per_customer_limit),
        membership_level_id: req.membership_level_id.unwrap_or(old.membership_level_id),
        payment_timeout_secs: req
            .payment_timeout_secs
            .unwrap_or(old.payment_timeout_secs as u32),
    };
    let (s, _) = sku_and_product(&txn, old.sku_id)
        .await?
        .ok_or_else(|| ApiError::internal("a flash sale's SKU is gone"))?;
    validate(&txn, &fields, &s).await?;
    if req.ends_at.is_some() && fields.ends_at <= now {
        return Err(ApiError::invalid(
            "ends_at",
            "must be in the future (end a sale now with POST …/end)",
        ));
    }
    let staff_id = actor.principal.map(|p| p.staff_id);
    let by = MovementRef::staff(staff_id, ledger_reason(id));
    match fields.stock - old.stock {
        0 => {}
        more if more > 0 => inventory::allot(&txn, s.id, more, &by).await.map_err(|e| {
            match e.problem().code.as_str() {
                "out-of-stock" => ApiError::conflict("insufficient-stock", e.problem().detail),
                _ => e,
            }
        })?,
        less => inventory::release_allotment(&txn, s.id, -less, &by).await?,
    }
    let mut active = old.clone().into_active_model();
    active.version = Set(old.version + 1);
    active.name = Set(fields.name);
    active.sale_price = Set(fields.sale_price);
    active.stock = Set(fields.stock);
    active.starts_at = Set(fields.starts_at);
    active.ends_at = Set(fields.ends_at);
    active.per_customer_limit = Set(fields.limit);
    active.membership_level_id = Set(fields.membership_level_id);
    active.payment_timeout_secs = Set(fields.payment_timeout_secs as i32);
    active.updated_at = Set(now);
    let sale = flash_sale::Entity::update(active).exec(&txn).await?;
    audit(
        &txn,
        actor,
        "flash_sale.updated",
        Some(format!("flash_sale:{id}")),
        json!({ "stock": sale.stock, "starts_at": sale.starts_at, "ends_at": sale.ends_at }),
    )
    .await?;
    txn.commit().await?;
    refresh_gate(state, &sale, !started).await;
    view(state, sale).await
}

/// Ends a sale now (a scheduled one never opens); its unsold units go back to the SKU
/// once its last orders are made.
pub async fn end_now(state: &AppState, actor: &Actor<'_>, id: i64) -> ApiResult<FlashSale> {
    let now = Utc::now();
    let txn = state.db.begin().await?;
    let old = lock(&txn, id).await?;
    if old.status == CLOSED || old.ends_at <= now {
        txn.commit().await?;
        return view(state, old).await;
    }
    let mut active = old.clone().into_active_model();
    active.version = Set(old.version + 1);
    active.ends_at = Set(now);
    if old.starts_at > now {
        active.starts_at = Set(now);
    }
    active.updated_at = Set(now);
    let sale = flash_sale::Entity::update(active).exec(&txn).await?;
    audit(
        &txn,
        actor,
        "flash_sale.ended",
        Some(format!("flash_sale:{id}")),
        json!({ "planned_end": old.ends_at }),
    )
    .await?;
    txn.commit().await?;
    refresh_gate(state, &sale, false).await;
    view(state, sale).await
}

/// Deletes a sale that has not started; its units go back to the SKU.
pub async fn delete(state: &AppState, actor: &Actor<'_>, id: i64) -> ApiResult<()> {
    let txn = state.db.begin().await?;
    let sale = lock(&txn, id).await?;
    if Utc::now() >= sale.starts_at {
        return Err(ApiError::conflict(
            "flash-sale-started",
            format!("flash sale {id} has started; end it instead"),
        ));
    }
    let staff_id = actor.principal.map(|p| p.staff_id);
    inventory::release_allotment(
        &txn,
        sale.sku_id,
        sale.stock,
        &MovementRef::staff(staff_id, ledger_reason(id)),
    )
    .await?;
    flash_sale::Entity::delete_by_id(id).exec(&txn).await?;
    audit(
        &txn,
        actor,
        "flash_sale.deleted",
        Some(format!("flash_sale:{id}")),
        json!({ "stock": sale.stock }),
    )
    .await?;
    txn.commit().await?;
    for suffix in ["meta", "stock", "accepted", "returned", "stream"] {
        let _ = state.kv.delete(&gate::key(id, suffix)).await;
    }
    forget_open_sales(state).await;
    Ok(())
}

/// A sale the storefront may show or sell, as cached for every instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpenSale {
    view: StorefrontFlashSale,
    membership_level_id: Option<i64>,
}

/// This process's copy of the open sales, kept for `LOCAL_TTL`, so a purchase attempt
/// costs no round trip for them; staff changes reach every instance within that time
/// (the gate itself always has the current window).
#[derive(Default)]
pub struct LocalSales(std::sync::Mutex<Option<(std::time::Instant, Arc<Vec<OpenSale>>)>>);

const LOCAL_TTL: Duration = Duration::from_secs(1);

impl LocalSales {
    fn get(&self) -> Option<Arc<Vec<OpenSale>>> {
        let cached = self.0.lock().unwrap_or_else(|e| e.into_inner());
        cached
            .as_ref()
            .filter(|(at, _)| at.elapsed() < LOCAL_TTL)
            .map(|(_, sales)| sales.clone())
    }

    fn put(&self, sales: Arc<Vec<OpenSale>>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((std::time::Instant::now(), sales));
    }

    fn clear(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// Sales not yet closed: this process's copy, else the key-value store's (shared by every
/// instance), else the database's.
async fn open_sales(state: &AppState) -> ApiResult<Arc<Vec<OpenSale>>> {
    if let Some(sales) = state.flash_sales.get() {
        return Ok(sales);
    }
    let sales = Arc::new(shared_open_sales(state).await?);
    state.flash_sales.put(sales.clone());
    Ok(sales)
}

async fn shared_open_sales(state: &AppState) -> ApiResult<Vec<OpenSale>> {
    if let Some(bytes) = state.kv.get(OPEN_SALES_KEY).await?
        && let Ok(sales) = serde_json::from_slice(&bytes)
    {
        return Ok(sales);
    }
    let db = state.db.reader();
    let rows = flash_sale::Entity::find()
        .filter(flash_sale::Column::Status.eq(OPEN))
        .order_by_asc(flash_sale::Column::StartsAt)
        .all(db)
        .await?;
    let items = skus_and_products(db, rows.iter().map(|s| s.sku_id)).await?;
    let mut sales = Vec::with_capacity(rows.len());
    for sale in rows {
        let Some((s, p)) = items.get(&sale.sku_id).cloned() else {
            continue;
        };
        sales.push(OpenSale {
            view: StorefrontFlashSale {
                id: sale.id,
                name: sale.name,
                sku_id: s.id,
                product_id: p.id,
                title: p.title,
                regular_price: s.price,
                sale_price: sale.sale_price,
                currency: state.config.shop.currency.clone(),
                starts_at: sale.starts_at,
                ends_at: sale.ends_at,
                per_customer_limit: sale.per_customer_limit,
                remaining: sale.stock,
                status: String::new(),
                members_only: sale.membership_level_id.is_some(),
            },
            membership_level_id: sale.membership_level_id,
        });
    }
    let bytes = serde_json::to_vec(&sales).map_err(ApiError::internal)?;
    state
        .kv
        .set(OPEN_SALES_KEY, &bytes, Some(OPEN_SALES_TTL))
        .await?;
    Ok(sales)
}

/// The id and start of every sale not yet closed, for the order makers.
pub async fn open_sale_windows(state: &AppState) -> ApiResult<Vec<(i64, DateTime<Utc>)>> {
    Ok(open_sales(state)
        .await?
        .iter()
        .map(|s| (s.view.id, s.view.starts_at))
        .collect())
}

async fn storefront_view(
    state: &AppState,
    sale: &OpenSale,
    now: DateTime<Utc>,
) -> ApiResult<Option<StorefrontFlashSale>> {
    if now >= sale.view.ends_at {
        return Ok(None);
    }
    let mut view = sale.view.clone();
    view.status = if now < view.starts_at {
        "upcoming"
    } else {
        "live"
    }
    .into();
    if let Some(g) = gate::snapshot(state.kv.as_ref(), view.id).await? {
        view.remaining = g.remaining;
    }
    Ok(Some(view))
}

/// Upcoming and live sales, with what is left of each.
pub async fn storefront_list(state: &AppState) -> ApiResult<StorefrontFlashSales> {
    let now = Utc::now();
    let mut items = Vec::new();
    for sale in open_sales(state).await?.iter() {
        if let Some(view) = storefront_view(state, sale, now).await? {
            items.push(view);
        }
    }
    Ok(StorefrontFlashSales { items })
}

pub async fn storefront_get(state: &AppState, id: i64) -> ApiResult<StorefrontFlashSale> {
    let sales = open_sales(state).await?;
    let sale = sales
        .iter()
        .find(|s| s.view.id == id)
        .ok_or_else(|| not_found(id))?;
    storefront_view(state, sale, Utc::now())
        .await?
        .ok_or_else(|| not_found(id))
}

/// Whether the customer holds the level now; cached briefly so a members-only sale's
/// crowd does not query memberships on every attempt.
async fn is_member(state: &AppState, level_id: i64, customer_id: i64) -> ApiResult<bool> {
    use crate::customers::entity::membership;
    let key = format!("flash:member:{level_id}:{customer_id}");
    if let Some(v) = state.kv.get(&key).await? {
        return Ok(v == b"1");
    }
    let now = Utc::now();
    let member = membership::Entity::find()
        .filter(membership::Column::CustomerId.eq(customer_id))
        .filter(membership::Column::LevelId.eq(level_id))
        .filter(membership::Column::EndedAt.is_null())
        .filter(membership::Column::StartsAt.lte(now))
        .filter(
            sea_orm::Condition::any()
                .add(membership::Column::ExpiresAt.is_null())
                .add(membership::Column::ExpiresAt.gt(now)),
        )
        .one(state.db.reader())
        .await?
        .is_some();
    let value: &[u8] = if member { b"1" } else { b"0" };
    state.kv.set(&key, value, Some(MEMBER_TTL)).await?;
    Ok(member)
}

/// Where a customer's order for the purchase should go, checked by the order maker.
fn address_key(purchase_id: &str) -> String {
    match gate::sale_of(purchase_id) {
        Some(sale) => gate::key(sale, &format!("address:{purchase_id}")),
        None => format!("flash:address:{purchase_id}"),
    }
}

/// The address a purchase asked to ship to, if any.
pub async fn chosen_address(state: &AppState, purchase_id: &str) -> ApiResult<Option<i64>> {
    Ok(state
        .kv
        .get(&address_key(purchase_id))
        .await?
        .and_then(|v| String::from_utf8(v).ok())
        .and_then(|v| v.parse().ok()))
}

/// Asks the gate for units. Nothing here touches the database unless the sale is
/// members-only (a cached check) or the gate must be loaded.
pub async fn purchase(
    state: &AppState,
    customer_id: i64,
    sale_id: i64,
    idempotency_key: &str,
    req: PurchaseRequest,
) -> ApiResult<PurchaseAccepted> {
    let quantity = req.quantity.unwrap_or(1);
    let mut v = Validator::default();
    v.check(
        (1..=MAX_QUANTITY).contains(&quantity),
        "quantity",
        "must be 1 to 1000",
    );
    v.finish()?;
    if idempotency_key.is_empty()
        || idempotency_key.len() > 100
        || !idempotency_key.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(ApiError::bad_request(
            "Idempotency-Key must be 1 to 100 visible ASCII characters",
        )
        .with_code("invalid-idempotency-key"));
    }
    let mut sales = open_sales(state).await?;
    if !sales.iter().any(|s| s.view.id == sale_id) {
        // Perhaps scheduled since this process last looked.
        state.flash_sales.clear();
        sales = open_sales(state).await?;
    }
    let Some(sale) = sales.iter().find(|s| s.view.id == sale_id) else {
        // Closed sales are not cached; say so rather than pretend it never existed.
        let sale = find(state.db.reader(), sale_id).await?;
        return Err(ended(&sale.name));
    };
    if let Some(level) = sale.membership_level_id
        && !is_member(state, level, customer_id).await?
    {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "membership-required",
            format!("{} is for members only", sale.view.name),
        ));
    }
    let mut decision = gate::purchase(
        state.kv.as_ref(),
        sale_id,
        customer_id,
        quantity,
        idempotency_key,
    )
    .await?;
    if decision == Decision::Unknown {
        let row = find(state.db.writer(), sale_id).await?;
        prime(state, &row).await?;
        decision = gate::purchase(
            state.kv.as_ref(),
            sale_id,
            customer_id,
            quantity,
            idempotency_key,
        )
        .await?;
    }
    let name = &sale.view.name;
    match decision {
        Decision::Accepted {
            purchase_id,
            remaining,
        } => {
            if let Some(address) = req.address_id {
                let keep = (sale.view.ends_at - Utc::now())
                    .to_std()
                    .unwrap_or_default()
                    + Duration::from_secs(86_400);
                state
                    .kv
                    .set(
                        &address_key(&purchase_id),
                        address.to_string().as_bytes(),
                        Some(keep),
                    )
                    .await?;
            }
            metrics::counter!("flash_purchases_accepted_total").increment(1);
            Ok(PurchaseAccepted {
                purchase_id,
                status: "pending",
                remaining,
            })
        }
        Decision::Replayed {
            purchase_id,
            remaining,
        } => Ok(PurchaseAccepted {
            purchase_id,
            status: "pending",
            remaining,
        }),
        Decision::SoldOut { remaining } => {
            metrics::counter!("flash_purchases_refused_total", "reason" => "sold_out").increment(1);
            Err(ApiError::conflict(
                "sold-out",
                match remaining {
                    0 => format!("{name} is sold out"),
                    n => format!("only {n} left of {name}"),
                },
            ))
        }
        Decision::LimitReached => {
            metrics::counter!("flash_purchases_refused_total", "reason" => "limit").increment(1);
            Err(ApiError::conflict(
                "limit-reached",
                format!(
                    "{name} allows {} per customer",
                    sale.view.per_customer_limit
                ),
            ))
        }
        Decision::NotStarted => Err(ApiError::new(
            axum::http::StatusCode::TOO_EARLY,
            "sale-not-started",
            format!("{name} starts at {}", sale.view.starts_at.to_rfc3339()),
        )),
        Decision::Ended => Err(ended(name)),
        Decision::Unknown => Err(ApiError::internal(
            "the flash-sale gate cannot load the sale",
        )),
    }
}

fn ended(name: &str) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::FORBIDDEN,
        "sale-ended",
        format!("{name} has ended"),
    )
}

/// A purchase still pending this long is looked up in the database too, in case its
/// order was made but the gate's record not updated.
const RECORD_TRUSTED_FOR: Duration = Duration::from_secs(30);

/// A customer's purchase: pending at the gate, or its order. A pending purchase is
/// answered from the gate's record alone, so a crowd polling costs the database nothing.
pub async fn poll(state: &AppState, customer_id: i64, purchase_id: &str) -> ApiResult<Purchase> {
    let missing = || ApiError::not_found("purchase", purchase_id);
    let sale_id = gate::sale_of(purchase_id).ok_or_else(missing)?;
    let record = gate::record(state.kv.as_ref(), purchase_id).await?;
    if let Some(r) = &record {
        if r.customer_id != customer_id {
            return Err(missing());
        }
        let fresh = gate::accepted_at(purchase_id)
            .and_then(|at| at.elapsed().ok())
            .is_some_and(|age| age < RECORD_TRUSTED_FOR);
        if r.order_number.is_none() && fresh {
            return Ok(pending(purchase_id, sale_id, r.quantity));
        }
    }
    let db = state.db.reader();
    if let Some(p) = purchase::Entity::find_by_id(purchase_id.to_owned())
        .one(db)
        .await?
        .filter(|p| p.customer_id == customer_id)
    {
        let o = match p.order_id {
            Some(id) => order::Entity::find_by_id(id).one(db).await?,
            None => None,
        };
        let status = if p.status == ORDERED {
            "ordered"
        } else {
            "cancelled"
        };
        return Ok(Purchase {
            purchase_id: p.id,
            flash_sale_id: p.flash_sale_id,
            quantity: p.quantity,
            status: status.into(),
            payment_due_at: o
                .as_ref()
                .filter(|o| o.paid_at.is_none() && p.status == ORDERED)
                .and_then(|o| o.payment_due_at),
            order_number: o.map(|o| o.number),
        });
    }
    match record {
        Some(r) => Ok(pending(purchase_id, sale_id, r.quantity)),
        None => Err(missing()),
    }
}

fn pending(purchase_id: &str, sale_id: i64, quantity: i64) -> Purchase {
    Purchase {
        purchase_id: purchase_id.to_owned(),
        flash_sale_id: sale_id,
        quantity,
        status: "pending".into(),
        order_number: None,
        payment_due_at: None,
    }
}

/// A cancelled order of a sale gives its units back to the sale while it is open (the
/// gate gets them shortly after commit, see `worker`), or to the SKU once it has closed.
/// Returns the lines the caller should still release from the SKU.
pub async fn take_back(
    db: &impl ConnectionTrait,
    o: &order::Model,
    mut lines: Vec<(i64, i64)>,
) -> ApiResult<Vec<(i64, i64)>> {
    let Some(sale_id) = o.flash_sale_id else {
        return Ok(lines);
    };
    let Some(p) = purchase::Entity::find()
        .filter(purchase::Column::OrderId.eq(o.id))
        .one(db)
        .await?
    else {
        return Ok(lines);
    };
    let sale = lock(db, sale_id).await?;
    if p.status != ORDERED {
        return Ok(lines);
    }
    let next = if sale.status == CLOSED {
        RELEASED
    } else {
        // The units stay in the sale's allotment: take them off what the SKU gets back.
        let mut left = p.quantity;
        for (sku, qty) in lines.iter_mut() {
            if *sku == sale.sku_id && left > 0 {
                let kept = (*qty).min(left);
                *qty -= kept;
                left -= kept;
            }
        }
        lines.retain(|(_, qty)| *qty > 0);
        RETURNING
    };
    purchase::Entity::update_many()
        .col_expr(purchase::Column::Status, Expr::value(next))
        .col_expr(purchase::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(purchase::Column::Id.eq(p.id.clone()))
        .exec(db)
        .await?;
    Ok(lines)
}
