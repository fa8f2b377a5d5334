use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "customers")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub version: i64,
    pub email: Option<String>,
    pub name: String,
    pub phone: Option<String>,
    pub password_hash: Option<String>,
    pub email_verified_at: Option<DateTimeUtc>,
    pub credentials_changed_at: DateTimeUtc,
    pub is_active: bool,
    pub deleted_at: Option<DateTimeUtc>,
    pub note: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
