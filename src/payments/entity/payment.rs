use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "payments")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub version: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub number: String,
    pub order_id: i64,
    pub customer_id: Option<i64>,
    pub provider: String,
    pub method_code: Option<String>,
    pub channel: String,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    pub gateway_reference: Option<String>,
    pub checkout: Option<String>,
    pub refunded_amount: i64,
    pub review_reason: Option<String>,
    pub staff_id: Option<i64>,
    pub reference: Option<String>,
    pub proof: Option<String>,
    pub paid_at: Option<DateTimeUtc>,
    pub closed_at: Option<DateTimeUtc>,
    pub queried_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
