//! Queries of the inventory domain. Stock levels are columns of `skus` (so catalog reads
//! need no join); only this module writes them, each time by one conditional UPDATE.

use chrono::Utc;
use sea_orm::ActiveValue::{NotSet, Set};
use sea_orm::sea_query::{Expr, ExprTrait, Func, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, JoinType, Order,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, RelationDef, Select,
};

use super::entity::stock_movement;
use super::model::{LedgerFilter, MovementKind, MovementRef, StockFilter};
use crate::catalog::entity::{bundle_item, product, sku};
use crate::platform::list::{ListSpec, contains};

/// The levels of one SKU right after a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromQueryResult)]
pub struct Levels {
    pub stock: i32,
    pub reserved: i32,
    pub damaged: i32,
    pub safety_stock: i32,
    pub always_available: bool,
}

impl Levels {
    pub fn available(&self) -> i64 {
        i64::from(self.stock) - i64::from(self.reserved)
    }
}

/// What a conditional update must keep true besides "no level below zero".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    None,
    /// A reservation fits in what is available, unless the product back- or pre-orders
    /// (or `backordered`: the bundle it is a part of does).
    FitsAvailable {
        backordered: bool,
    },
    /// On hand does not drop below what is reserved.
    KeepsReserved,
    /// On hand is still what the caller read (a "set to" edit).
    OnHandIs(i32),
}

/// One change of a SKU's levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub on_hand: i64,
    pub reserved: i64,
    pub damaged: i64,
    pub guard: Guard,
}

/// `column + delta` stays within 0..=i32::MAX (the bound is on the column, so PostgreSQL
/// never computes an out-of-range integer).
fn within(column: sku::Column, delta: i64) -> sea_orm::sea_query::Expr {
    Expr::col(column)
        .add(delta)
        .gte(0)
        .and(Expr::col(column).lte(i64::from(i32::MAX) - delta))
}

const BACKORDERABLE: &str = "EXISTS (SELECT 1 FROM products p WHERE p.id = skus.product_id \
     AND (p.allow_backorder OR p.allow_preorder))";

/// Applies `change` to the SKU in one atomic conditional UPDATE (the row lock makes
/// concurrent changes queue, and each re-checks the condition against the committed
/// levels). Returns the levels after it, or `None` when the condition failed.
pub async fn apply(
    db: &impl ConnectionTrait,
    sku_id: i64,
    change: &Change,
) -> Result<Option<Levels>, DbErr> {
    let mut update = Query::update();
    update
        .table(sku::Entity)
        .value(sku::Column::UpdatedAt, Utc::now())
        .and_where(Expr::col(sku::Column::Id).eq(sku_id));
    for (column, delta) in [
        (sku::Column::Stock, change.on_hand),
        (sku::Column::Reserved, change.reserved),
        (sku::Column::Damaged, change.damaged),
    ] {
        if delta != 0 {
            update
                .value(column, Expr::col(column).add(delta))
                .and_where(within(column, delta));
        }
    }
    match change.guard {
        Guard::None | Guard::FitsAvailable { backordered: true } => {}
        Guard::FitsAvailable { backordered: false } => {
            update.and_where(
                Expr::col(sku::Column::Stock)
                    .sub(Expr::col(sku::Column::Reserved))
                    .gte(change.reserved)
                    .or(Expr::cust(BACKORDERABLE)),
            );
        }
        Guard::KeepsReserved => {
            update.and_where(
                Expr::col(sku::Column::Stock)
                    .add(change.on_hand)
                    .gte(Expr::col(sku::Column::Reserved)),
            );
        }
        Guard::OnHandIs(stock) => {
            update
                .and_where(Expr::col(sku::Column::Stock).eq(stock))
                .and_where(
                    Expr::col(sku::Column::Stock)
                        .add(change.on_hand)
                        .gte(Expr::col(sku::Column::Reserved)),
                );
        }
    }
    update.returning(Query::returning().columns([
        sku::Column::Stock,
        sku::Column::Reserved,
        sku::Column::Damaged,
        sku::Column::SafetyStock,
        sku::Column::AlwaysAvailable,
    ]));
    match db.query_one(&update).await? {
        Some(row) => Ok(Some(Levels::from_query_result(&row, "")?)),
        None => Ok(None),
    }
}

pub async fn insert_movement(
    db: &impl ConnectionTrait,
    sku_id: i64,
    kind: MovementKind,
    change: &Change,
    after: &Levels,
    by: &MovementRef,
) -> Result<stock_movement::Model, DbErr> {
    // Deltas are bounded by `within`, so they fit the ledger's integers.
    let narrow = |delta: i64| i32::try_from(delta).unwrap_or_default();
    stock_movement::Entity::insert(stock_movement::ActiveModel {
        id: NotSet,
        sku_id: Set(sku_id),
        kind: Set(kind.as_str().to_owned()),
        on_hand_delta: Set(narrow(change.on_hand)),
        reserved_delta: Set(narrow(change.reserved)),
        damaged_delta: Set(narrow(change.damaged)),
        on_hand_after: Set(after.stock),
        reserved_after: Set(after.reserved),
        damaged_after: Set(after.damaged),
        reason: Set(by.reason.clone()),
        order_id: Set(by.order_id),
        staff_id: Set(by.staff_id),
        customer_id: Set(by.customer_id),
        created_at: Set(Utc::now()),
    })
    .exec_with_returning(db)
    .await
}

pub async fn parts_of(
    db: &impl ConnectionTrait,
    bundle_sku_ids: &[i64],
) -> Result<Vec<bundle_item::Model>, DbErr> {
    if bundle_sku_ids.is_empty() {
        return Ok(Vec::new());
    }
    bundle_item::Entity::find()
        .filter(bundle_item::Column::BundleSkuId.is_in(bundle_sku_ids.iter().copied()))
        .all(db)
        .await
}

/// Sets safety stock, reorder quantity and always-available; `None` leaves one as it is.
pub async fn update_settings(
    db: &impl ConnectionTrait,
    sku_id: i64,
    safety_stock: Option<i32>,
    reorder_qty: Option<i32>,
    always_available: Option<bool>,
) -> Result<(), DbErr> {
    let mut update = sku::Entity::update_many()
        .col_expr(sku::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(sku::Column::Id.eq(sku_id));
    if let Some(value) = safety_stock {
        update = update.col_expr(sku::Column::SafetyStock, Expr::value(value));
    }
    if let Some(value) = reorder_qty {
        update = update.col_expr(sku::Column::ReorderQty, Expr::value(value));
    }
    if let Some(value) = always_available {
        update = update.col_expr(sku::Column::AlwaysAvailable, Expr::value(value));
    }
    update.exec(db).await?;
    Ok(())
}

/// A SKU with its product's title, slug and bundle flag.
#[derive(Debug, Clone, FromQueryResult)]
pub struct StockRow {
    pub id: i64,
    pub code: String,
    pub product_id: i64,
    pub product_title: String,
    pub product_slug: String,
    pub is_bundle: bool,
    pub is_active: bool,
    pub stock: i32,
    pub reserved: i32,
    pub damaged: i32,
    pub safety_stock: i32,
    pub reorder_qty: i32,
    pub always_available: bool,
    pub updated_at: chrono::DateTime<Utc>,
}

/// The sortable fields of the stock list.
#[derive(Debug, Clone, Copy)]
pub enum StockSort {
    Code,
    ProductTitle,
    OnHand,
    Available,
    UpdatedAt,
}

fn sku_product() -> RelationDef {
    sku::Entity::belongs_to(product::Entity)
        .from(sku::Column::ProductId)
        .to(product::Column::Id)
        .into()
}

fn available_expr() -> sea_orm::sea_query::Expr {
    Expr::col((sku::Entity, sku::Column::Stock))
        .sub(Expr::col((sku::Entity, sku::Column::Reserved)))
}

fn stock_select() -> Select<sku::Entity> {
    sku::Entity::find()
        .select_only()
        .columns([
            sku::Column::Id,
            sku::Column::Code,
            sku::Column::ProductId,
            sku::Column::IsActive,
            sku::Column::Stock,
            sku::Column::Reserved,
            sku::Column::Damaged,
            sku::Column::SafetyStock,
            sku::Column::ReorderQty,
            sku::Column::AlwaysAvailable,
            sku::Column::UpdatedAt,
        ])
        .column_as(product::Column::Title, "product_title")
        .column_as(product::Column::Slug, "product_slug")
        .column_as(product::Column::IsBundle, "is_bundle")
        .join(JoinType::InnerJoin, sku_product())
}

pub async fn stock_row(db: &impl ConnectionTrait, sku_id: i64) -> Result<Option<StockRow>, DbErr> {
    stock_select()
        .filter(sku::Column::Id.eq(sku_id))
        .into_model::<StockRow>()
        .one(db)
        .await
}

/// A page of the stock of live products' own SKUs (bundles keep none), and the total.
pub async fn stock_page(
    db: &impl ConnectionTrait,
    filter: &StockFilter,
    spec: &ListSpec<StockSort>,
) -> Result<(Vec<StockRow>, u64), DbErr> {
    let mut query = stock_select()
        .filter(product::Column::DeletedAt.is_null())
        .filter(product::Column::IsBundle.eq(false));
    let not_always = Expr::col((sku::Entity, sku::Column::AlwaysAvailable)).eq(false);
    if filter.low_stock == Some(true) {
        query = query.filter(
            not_always
                .clone()
                .and(available_expr().lt(Expr::col((sku::Entity, sku::Column::SafetyStock)))),
        );
    }
    if filter.out_of_stock == Some(true) {
        query = query.filter(not_always.and(available_expr().lte(0)));
    }
    if let Some(product_id) = filter.product_id {
        query = query.filter(sku::Column::ProductId.eq(product_id));
    }
    if let Some(q) = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        query = query.filter(
            Condition::any()
                .add(
                    Expr::expr(Func::lower(Expr::col((sku::Entity, sku::Column::Code))))
                        .like(contains(q)),
                )
                .add(
                    Expr::expr(Func::lower(Expr::col((
                        product::Entity,
                        product::Column::Title,
                    ))))
                    .like(contains(q)),
                ),
        );
    }
    let total = query.clone().count(db).await?;
    for (field, order) in &spec.order {
        query = match field {
            StockSort::Code => query.order_by(sku::Column::Code, order.clone()),
            StockSort::ProductTitle => query.order_by(product::Column::Title, order.clone()),
            StockSort::OnHand => query.order_by(sku::Column::Stock, order.clone()),
            StockSort::Available => query.order_by(available_expr(), order.clone()),
            StockSort::UpdatedAt => query.order_by(sku::Column::UpdatedAt, order.clone()),
        };
    }
    let rows = query
        .order_by(sku::Column::Id, Order::Asc)
        .offset(spec.offset)
        .limit(spec.limit)
        .into_model::<StockRow>()
        .all(db)
        .await?;
    Ok((rows, total))
}

/// A page of one SKU's ledger, newest first, and the total.
pub async fn ledger_page(
    db: &impl ConnectionTrait,
    sku_id: i64,
    filter: &LedgerFilter,
    offset: u64,
    limit: u64,
) -> Result<(Vec<stock_movement::Model>, u64), DbErr> {
    let mut query = stock_movement::Entity::find().filter(stock_movement::Column::SkuId.eq(sku_id));
    if let Some(kind) = filter.kind {
        query = query.filter(stock_movement::Column::Kind.eq(kind.as_str()));
    }
    if let Some(order_id) = filter.order_id {
        query = query.filter(stock_movement::Column::OrderId.eq(order_id));
    }
    if let Some(after) = filter.created_after {
        query = query.filter(stock_movement::Column::CreatedAt.gte(after));
    }
    if let Some(before) = filter.created_before {
        query = query.filter(stock_movement::Column::CreatedAt.lt(before));
    }
    let total = query.clone().count(db).await?;
    let rows = query
        .order_by_desc(stock_movement::Column::Id)
        .offset(offset)
        .limit(limit)
        .all(db)
        .await?;
    Ok((rows, total))
}

pub async fn find_movement(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<Option<stock_movement::Model>, DbErr> {
    stock_movement::Entity::find_by_id(id).one(db).await
}

/// The `initial` ledger rows of the SKUs of products inserted in bulk, from the SKU rows.
pub async fn record_initial_of_products(
    db: &impl ConnectionTrait,
    product_ids: &[i64],
) -> Result<u64, DbErr> {
    let insert = Query::insert()
        .into_table(stock_movement::Entity)
        .columns([
            stock_movement::Column::SkuId,
            stock_movement::Column::Kind,
            stock_movement::Column::OnHandDelta,
            stock_movement::Column::ReservedDelta,
            stock_movement::Column::DamagedDelta,
            stock_movement::Column::OnHandAfter,
            stock_movement::Column::ReservedAfter,
            stock_movement::Column::DamagedAfter,
            stock_movement::Column::Reason,
            stock_movement::Column::CreatedAt,
        ])
        .select_from(
            Query::select()
                .column(sku::Column::Id)
                .expr(Expr::val(MovementKind::Initial.as_str()))
                .column(sku::Column::Stock)
                .expr(Expr::val(0))
                .expr(Expr::val(0))
                .column(sku::Column::Stock)
                .expr(Expr::val(0))
                .expr(Expr::val(0))
                .expr(Expr::val("bulk load"))
                .expr(Expr::val(Utc::now()))
                .from(sku::Entity)
                .and_where(Expr::col(sku::Column::ProductId).is_in(product_ids.iter().copied()))
                .and_where(Expr::col(sku::Column::Stock).gt(0))
                .order_by(sku::Column::Id, Order::Asc)
                .to_owned(),
        )
        .map_err(|e| DbErr::Custom(e.to_string()))?
        .to_owned();
    Ok(db.execute(&insert).await?.rows_affected())
}
