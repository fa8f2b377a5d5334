use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "shipping_rates")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub shipping_method_id: i64,
    pub region_id: Option<i64>,
    pub first_weight_grams: i64,
    pub first_price: i64,
    pub step_weight_grams: i64,
    pub step_price: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
