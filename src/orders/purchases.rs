//! What customers bought: the questions other domains ask of orders (may this customer
//! review this product?) without knowing how orders move through their lifecycle.

use sea_orm::sea_query::Query;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};

use super::entity::{order, order_line};
use crate::platform::ApiResult;

/// The statuses of an order whose goods have left the warehouse for the customer.
const RECEIVED: [&str; 2] = ["shipped", "completed"];

/// Whether the customer has received the product: a line of it in one of their orders that shipped or completed.
pub async fn has_received(
    db: &impl ConnectionTrait,
    customer_id: i64,
    product_id: i64,
) -> ApiResult<bool> {
    // The product's lines (index on (product_id, order_id)) whose order is one of the
    // customer's received ones (index on (customer_id, placed_at)); the first one answers.
    let received_orders = Query::select()
        .column(order::Column::Id)
        .from(order::Entity)
        .and_where(order::Column::CustomerId.eq(customer_id))
        .and_where(order::Column::Status.is_in(RECEIVED))
        .to_owned();
    let line = order_line::Entity::find()
        .select_only()
        .column(order_line::Column::Id)
        .filter(order_line::Column::ProductId.eq(product_id))
        .filter(order_line::Column::OrderId.in_subquery(received_orders))
        .limit(1)
        .into_tuple::<i64>()
        .one(db)
        .await?;
    Ok(line.is_some())
}
