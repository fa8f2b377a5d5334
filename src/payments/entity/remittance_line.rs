use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "cod_remittance_lines")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub remittance_id: i64,
    pub line_no: i64,
    pub tracking_number: String,
    pub amount: i64,
    pub reference: Option<String>,
    pub order_id: Option<i64>,
    pub status: String,
    pub detail: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
