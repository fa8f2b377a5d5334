use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "products")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub version: i64,
    pub title: String,
    pub slug: String,
    pub description: String,
    pub brand_id: Option<i64>,
    pub product_type_id: Option<i64>,
    pub status: String,
    pub publish_at: Option<DateTimeUtc>,
    pub unpublish_at: Option<DateTimeUtc>,
    pub kind: String,
    pub is_bundle: bool,
    pub allow_preorder: bool,
    pub allow_backorder: bool,
    pub meta_title: Option<String>,
    pub meta_description: Option<String>,
    pub min_price: Option<i64>,
    pub rating_count: i32,
    pub rating_sum: i32,
    pub search_text: String,
    pub deleted_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
