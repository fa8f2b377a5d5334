use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "security_log")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub event: String,
    pub actor_staff_id: Option<i64>,
    pub actor_email: Option<String>,
    pub actor_customer_id: Option<i64>,
    pub subject: Option<String>,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    pub detail: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
