use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "refunds")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub version: i64,
    pub order_id: i64,
    pub return_id: Option<i64>,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    pub reason: String,
    pub staff_id: Option<i64>,
    pub number: Option<String>,
    pub payment_id: Option<i64>,
    pub gateway_reference: Option<String>,
    pub failure: Option<String>,
    pub refunded_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
