//! Orders, their lines and history, shipments and picking lists, returns and refunds.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, string, string_null, text, text_null, timestamp_with_time_zone,
    timestamp_with_time_zone_null,
};

use super::{entity_table, index, reference};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                entity_table("orders")
                    .col(string("number"))
                    .col(big_integer_null("customer_id"))
                    .col(string("email"))
                    // pending_payment, paid, ready_for_picking, shipped, completed, cancelled.
                    .col(string("status"))
                    .col(string("currency"))
                    // Frozen at checkout (and when staff edit a pending order).
                    .col(big_integer("subtotal"))
                    .col(big_integer("discount"))
                    .col(big_integer("shipping_fee"))
                    .col(big_integer("shipping_discount"))
                    .col(big_integer("packaging_fee"))
                    .col(big_integer("adjustment").default(0))
                    .col(big_integer("total"))
                    // Paid with gift certificates; the rest is due from a payment.
                    .col(big_integer("gift_certificate_amount").default(0))
                    .col(big_integer("amount_due"))
                    .col(big_integer("bonus_points").default(0))
                    // Applied promotions and their savings, as the engine explained them.
                    .col(text("pricing").default("{}"))
                    .col(text("coupon_codes").default("[]"))
                    // Recipient, phone, region and street, copied from the address book.
                    .col(text("ship_to"))
                    .col(big_integer_null("shipping_method_id"))
                    .col(string_null("shipping_method_name"))
                    .col(big_integer_null("carrier_id"))
                    .col(big_integer_null("packaging_id"))
                    .col(text_null("note"))
                    // The order this one was split from.
                    .col(big_integer_null("parent_order_id"))
                    .col(big_integer_null("locked_by"))
                    .col(timestamp_with_time_zone_null("locked_at"))
                    .col(timestamp_with_time_zone("placed_at"))
                    .col(timestamp_with_time_zone_null("payment_due_at"))
                    .col(timestamp_with_time_zone_null("paid_at"))
                    .col(string_null("payment_reference"))
                    .col(timestamp_with_time_zone_null("shipped_at"))
                    .col(timestamp_with_time_zone_null("completed_at"))
                    .col(timestamp_with_time_zone_null("cancelled_at"))
                    .col(string_null("cancel_reason"))
                    .take(),
            )
            .await?;
        manager
            .create_index(index("orders", &["number"], true))
            .await?;
        manager
            .create_index(index("orders", &["customer_id", "placed_at"], false))
            .await?;
        manager
            .create_index(index("orders", &["status", "placed_at"], false))
            .await?;
        manager
            .create_index(index("orders", &["placed_at"], false))
            .await?;
        manager
            .create_index(index("orders", &["paid_at"], false))
            .await?;
        manager
            .create_table(
                entity_table("order_lines")
                    .col(big_integer("order_id"))
                    .col(big_integer("sku_id"))
                    .col(big_integer("product_id"))
                    .col(string("sku_code"))
                    .col(string("title"))
                    .col(big_integer("unit_price"))
                    .col(big_integer("quantity"))
                    // Promotions' share, then staff price adjustments (negative lowers).
                    .col(big_integer("discount"))
                    .col(big_integer("adjustment").default(0))
                    .col(string_null("adjustment_reason"))
                    .col(big_integer("total"))
                    .col(big_integer("weight_grams").default(0))
                    .col(big_integer("shipped_quantity").default(0))
                    .col(big_integer("returned_quantity").default(0))
                    .foreign_key(&mut reference(
                        "order_lines",
                        "order_id",
                        "orders",
                        ForeignKeyAction::Cascade,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(index("order_lines", &["order_id"], false))
            .await?;
        manager
            .create_index(index("order_lines", &["product_id", "order_id"], false))
            .await?;
        manager
            .create_table(
                entity_table("order_history")
                    .col(big_integer("order_id"))
                    .col(string("action"))
                    .col(string_null("from_status"))
                    .col(string_null("to_status"))
                    .col(big_integer_null("staff_id"))
                    .col(big_integer_null("customer_id"))
                    .col(text("detail").default("{}"))
                    .foreign_key(&mut reference(
                        "order_history",
                        "order_id",
                        "orders",
                        ForeignKeyAction::Cascade,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(index("order_history", &["order_id"], false))
            .await?;
        manager
            .create_table(
                entity_table("picking_lists")
                    .col(string("number"))
                    .col(big_integer_null("staff_id"))
                    .take(),
            )
            .await?;
        manager
            .create_table(
                entity_table("shipments")
                    .col(big_integer("order_id"))
                    .col(string("number"))
                    // pending, shipped, delivered.
                    .col(string("status"))
                    .col(big_integer_null("picking_list_id"))
                    .col(big_integer_null("carrier_id"))
                    .col(string_null("tracking_number"))
                    .col(timestamp_with_time_zone_null("shipped_at"))
                    .foreign_key(&mut reference(
                        "shipments",
                        "order_id",
                        "orders",
                        ForeignKeyAction::Cascade,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(index("shipments", &["order_id"], false))
            .await?;
        manager
            .create_index(index("shipments", &["picking_list_id"], false))
            .await?;
        manager
            .create_index(index("shipments", &["tracking_number"], false))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("shipment_lines")
                    .col(big_integer("shipment_id"))
                    .col(big_integer("order_line_id"))
                    .col(big_integer("quantity"))
                    .primary_key(Index::create().col("shipment_id").col("order_line_id"))
                    .foreign_key(&mut reference(
                        "shipment_lines",
                        "shipment_id",
                        "shipments",
                        ForeignKeyAction::Cascade,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_table(
                entity_table("returns")
                    .col(string("number"))
                    .col(big_integer("order_id"))
                    .col(big_integer_null("customer_id"))
                    // return or exchange.
                    .col(string("kind"))
                    // requested, approved, rejected, received, refunded, replaced.
                    .col(string("status"))
                    .col(text("reason"))
                    .col(text_null("staff_note"))
                    .col(big_integer_null("staff_id"))
                    .col(big_integer("refund_amount").default(0))
                    .col(big_integer_null("replacement_order_id"))
                    .col(timestamp_with_time_zone_null("received_at"))
                    .foreign_key(&mut reference(
                        "returns",
                        "order_id",
                        "orders",
                        ForeignKeyAction::Cascade,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(index("returns", &["order_id"], false))
            .await?;
        manager
            .create_index(index("returns", &["status", "created_at"], false))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("return_lines")
                    .col(big_integer("return_id"))
                    .col(big_integer("order_line_id"))
                    .col(big_integer("quantity"))
                    .col(big_integer("received_to_stock").default(0))
                    .col(big_integer("received_damaged").default(0))
                    .primary_key(Index::create().col("return_id").col("order_line_id"))
                    .foreign_key(&mut reference(
                        "return_lines",
                        "return_id",
                        "returns",
                        ForeignKeyAction::Cascade,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_table(
                entity_table("refunds")
                    .col(big_integer("order_id"))
                    .col(big_integer_null("return_id"))
                    .col(big_integer("amount"))
                    .col(string("currency"))
                    // pending until the payments domain carries it out.
                    .col(string("status"))
                    .col(string("reason"))
                    .col(big_integer_null("staff_id"))
                    .foreign_key(&mut reference(
                        "refunds",
                        "order_id",
                        "orders",
                        ForeignKeyAction::Cascade,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(index("refunds", &["order_id"], false))
            .await?;
        Ok(())
    }
}
