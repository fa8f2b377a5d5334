use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "orders")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub version: i64,
    pub number: String,
    pub customer_id: Option<i64>,
    pub email: String,
    pub status: String,
    pub currency: String,
    pub subtotal: i64,
    pub discount: i64,
    pub shipping_fee: i64,
    pub shipping_discount: i64,
    pub packaging_fee: i64,
    pub adjustment: i64,
    pub total: i64,
    pub gift_certificate_amount: i64,
    pub amount_due: i64,
    pub bonus_points: i64,
    pub pricing: String,
    pub coupon_codes: String,
    pub ship_to: String,
    pub shipping_method_id: Option<i64>,
    pub shipping_method_name: Option<String>,
    pub carrier_id: Option<i64>,
    pub packaging_id: Option<i64>,
    pub note: Option<String>,
    pub parent_order_id: Option<i64>,
    pub locked_by: Option<i64>,
    pub locked_at: Option<DateTimeUtc>,
    pub placed_at: DateTimeUtc,
    pub payment_due_at: Option<DateTimeUtc>,
    pub paid_at: Option<DateTimeUtc>,
    pub payment_reference: Option<String>,
    pub shipped_at: Option<DateTimeUtc>,
    pub completed_at: Option<DateTimeUtc>,
    pub cancelled_at: Option<DateTimeUtc>,
    pub cancel_reason: Option<String>,
    pub cash_on_delivery: bool,
    /// The flash sale whose gate sold this order, if any.
    pub flash_sale_id: Option<i64>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
