use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "return_lines")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub return_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub order_line_id: i64,
    pub quantity: i64,
    pub received_to_stock: i64,
    pub received_damaged: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
