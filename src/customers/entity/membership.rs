use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "memberships")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub version: i64,
    pub customer_id: i64,
    pub level_id: i64,
    pub starts_at: DateTimeUtc,
    pub expires_at: Option<DateTimeUtc>,
    pub ended_at: Option<DateTimeUtc>,
    pub end_reason: Option<String>,
    pub granted_by_staff_id: Option<i64>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
