use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "skus")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub version: i64,
    pub product_id: i64,
    pub code: String,
    pub price: i64,
    pub compare_at_price: Option<i64>,
    pub weight_grams: i32,
    pub barcode: Option<String>,
    /// Units on hand; the inventory domain changes it, with a ledger row each time.
    pub stock: i32,
    pub axis_key: Option<String>,
    pub is_active: bool,
    pub sort_order: i32,
    /// Units promised to unshipped orders.
    pub reserved: i32,
    /// Returned units unfit to sell.
    pub damaged: i32,
    pub safety_stock: i32,
    pub reorder_qty: i32,
    pub always_available: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
