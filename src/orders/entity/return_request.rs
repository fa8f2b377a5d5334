use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "returns")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub version: i64,
    pub number: String,
    pub order_id: i64,
    pub customer_id: Option<i64>,
    pub kind: String,
    pub status: String,
    pub reason: String,
    pub staff_note: Option<String>,
    pub staff_id: Option<i64>,
    pub refund_amount: i64,
    pub replacement_order_id: Option<i64>,
    pub received_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
