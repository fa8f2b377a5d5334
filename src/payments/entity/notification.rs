use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "payment_notifications")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub created_at: DateTimeUtc,
    pub provider: String,
    pub headers: String,
    pub body: String,
    pub remote_ip: Option<String>,
    pub status: String,
    pub payment_number: Option<String>,
    pub payment_id: Option<i64>,
    pub refund_id: Option<i64>,
    pub outcome: Option<String>,
    pub processed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
