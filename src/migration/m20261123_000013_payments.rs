//! Payments: one row per attempt to pay an order, every gateway notification stored raw
//! before it is acted on, a ledger of money in and out, refunds carried out through the
//! gateway, and cash-on-delivery remittances imported from carriers.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, big_pk_auto, boolean, string, string_null, text, text_null,
    timestamp_with_time_zone, timestamp_with_time_zone_null,
};

use super::{entity_table, index, reference};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                entity_table("payments")
                    // Our trade number at the gateway (`out_trade_no`, `orderId`).
                    .col(string("number"))
                    .col(big_integer("order_id"))
                    .col(big_integer_null("customer_id"))
                    .col(string("provider"))
                    .col(string_null("method_code"))
                    .col(string("channel"))
                    .col(big_integer("amount"))
                    .col(string("currency"))
                    // created, pending, succeeded, failed, closed, review.
                    .col(string("status"))
                    .col(string_null("gateway_reference"))
                    // What the client needs to pay: URL, form, QR code content.
                    .col(text_null("checkout"))
                    .col(big_integer("refunded_amount").default(0))
                    .col(string_null("review_reason"))
                    // Manual payments: who recorded it, the bank reference and proof.
                    .col(big_integer_null("staff_id"))
                    .col(string_null("reference"))
                    .col(text_null("proof"))
                    .col(timestamp_with_time_zone_null("paid_at"))
                    .col(timestamp_with_time_zone_null("closed_at"))
                    .col(timestamp_with_time_zone_null("queried_at"))
                    .foreign_key(&mut reference(
                        "payments",
                        "order_id",
                        "orders",
                        ForeignKeyAction::Restrict,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(index("payments", &["number"], true))
            .await?;
        manager
            .create_index(index("payments", &["order_id"], false))
            .await?;
        manager
            .create_index(index("payments", &["status", "created_at"], false))
            .await?;
        manager
            .create_index(index("payments", &["created_at"], false))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("payment_notifications")
                    .col(big_pk_auto("id"))
                    .col(timestamp_with_time_zone("created_at").default(Expr::current_timestamp()))
                    .col(string("provider"))
                    // Lower-case header names and values, as a JSON array of pairs.
                    .col(text("headers"))
                    .col(text("body"))
                    .col(string_null("remote_ip"))
                    // received, applied, duplicate, review, ignored, unmatched, rejected.
                    .col(string("status"))
                    .col(string_null("payment_number"))
                    .col(big_integer_null("payment_id"))
                    .col(big_integer_null("refund_id"))
                    .col(text_null("outcome"))
                    .col(timestamp_with_time_zone_null("processed_at"))
                    .take(),
            )
            .await?;
        manager
            .create_index(index(
                "payment_notifications",
                &["status", "created_at"],
                false,
            ))
            .await?;
        manager
            .create_index(index("payment_notifications", &["payment_id"], false))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("payment_ledger")
                    .col(big_pk_auto("id"))
                    .col(timestamp_with_time_zone("created_at").default(Expr::current_timestamp()))
                    .col(big_integer("payment_id"))
                    .col(big_integer("order_id"))
                    // capture or refund.
                    .col(string("kind"))
                    // Money in is positive, money out negative.
                    .col(big_integer("amount"))
                    .col(string("currency"))
                    // The gateway's trade or refund number, the bank reference, or ours.
                    .col(string("reference"))
                    .col(big_integer_null("staff_id"))
                    .foreign_key(&mut reference(
                        "payment_ledger",
                        "payment_id",
                        "payments",
                        ForeignKeyAction::Restrict,
                    ))
                    .take(),
            )
            .await?;
        // Money moves once per gateway event, however often it is announced.
        manager
            .create_index(index(
                "payment_ledger",
                &["payment_id", "kind", "reference"],
                true,
            ))
            .await?;
        manager
            .create_index(index("payment_ledger", &["order_id"], false))
            .await?;
        let refund_columns = [
            // Our refund number at the gateway (`out_refund_no`).
            string_null("number").to_owned(),
            big_integer_null("payment_id").to_owned(),
            string_null("gateway_reference").to_owned(),
            string_null("failure").to_owned(),
            timestamp_with_time_zone_null("refunded_at").to_owned(),
        ];
        for column in refund_columns {
            manager
                .alter_table(Table::alter().table("refunds").add_column(column).take())
                .await?;
        }
        manager
            .create_index(index("refunds", &["number"], true))
            .await?;
        manager
            .create_index(index("refunds", &["status", "created_at"], false))
            .await?;
        // A cash-on-delivery order goes to picking unpaid and is settled by the carrier.
        manager
            .alter_table(
                Table::alter()
                    .table("orders")
                    .add_column(boolean("cash_on_delivery").default(false))
                    .take(),
            )
            .await?;
        manager
            .create_table(
                entity_table("cod_remittances")
                    .col(big_integer("carrier_id"))
                    .col(string("file_name"))
                    .col(big_integer_null("staff_id"))
                    .col(big_integer("rows").default(0))
                    .col(big_integer("matched").default(0))
                    .col(big_integer("mismatched").default(0))
                    .col(big_integer("total_amount").default(0))
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("cod_remittance_lines")
                    .col(big_pk_auto("id"))
                    .col(big_integer("remittance_id"))
                    .col(big_integer("line_no"))
                    .col(string("tracking_number"))
                    .col(big_integer("amount"))
                    .col(string_null("reference"))
                    .col(big_integer_null("order_id"))
                    // matched, amount_mismatch, unknown_tracking, not_cash_on_delivery,
                    // already_settled.
                    .col(string("status"))
                    .col(string_null("detail"))
                    .foreign_key(&mut reference(
                        "cod_remittance_lines",
                        "remittance_id",
                        "cod_remittances",
                        ForeignKeyAction::Cascade,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(index(
                "cod_remittance_lines",
                &["remittance_id", "line_no"],
                true,
            ))
            .await?;
        manager
            .create_index(index("cod_remittance_lines", &["tracking_number"], false))
            .await?;
        Ok(())
    }
}
