//! The stock ledger: one row per movement, never updated or deleted (except with its SKU).

pub mod stock_movement {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "stock_movements")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub sku_id: i64,
        /// A `MovementKind`.
        pub kind: String,
        pub on_hand_delta: i32,
        pub reserved_delta: i32,
        pub damaged_delta: i32,
        pub on_hand_after: i32,
        pub reserved_after: i32,
        pub damaged_after: i32,
        pub reason: String,
        pub order_id: Option<i64>,
        pub staff_id: Option<i64>,
        pub customer_id: Option<i64>,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
