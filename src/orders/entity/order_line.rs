use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "order_lines")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub version: i64,
    pub order_id: i64,
    pub sku_id: i64,
    pub product_id: i64,
    pub sku_code: String,
    pub title: String,
    pub unit_price: i64,
    pub quantity: i64,
    pub discount: i64,
    pub adjustment: i64,
    pub adjustment_reason: Option<String>,
    pub total: i64,
    pub weight_grams: i64,
    pub shipped_quantity: i64,
    pub returned_quantity: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
