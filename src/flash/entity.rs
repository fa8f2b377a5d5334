//! Tables of the flash-sale domain.

pub mod flash_sale {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "flash_sales")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub version: i64,
        pub name: String,
        pub sku_id: i64,
        pub sale_price: i64,
        pub stock: i64,
        pub starts_at: DateTimeUtc,
        pub ends_at: DateTimeUtc,
        pub per_customer_limit: i64,
        pub membership_level_id: Option<i64>,
        pub payment_timeout_secs: i32,
        pub status: String,
        pub released: Option<i64>,
        pub closed_at: Option<DateTimeUtc>,
        pub created_by: Option<i64>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod purchase {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "flash_sale_purchases")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub flash_sale_id: i64,
        pub customer_id: i64,
        pub quantity: i64,
        pub order_id: Option<i64>,
        pub status: String,
        pub stream_id: Option<String>,
        pub accepted_at: DateTimeUtc,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
