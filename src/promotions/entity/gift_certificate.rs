use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "gift_certificates")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub version: i64,
    pub code: String,
    pub batch: Option<String>,
    pub currency: String,
    pub initial_amount: i64,
    pub balance: i64,
    pub customer_id: Option<i64>,
    pub email: Option<String>,
    pub expires_at: Option<DateTimeUtc>,
    pub active: bool,
    pub sent_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
