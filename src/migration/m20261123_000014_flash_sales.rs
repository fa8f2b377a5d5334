//! Flash sales: the events, and the purchases their gate accepted (one order each).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, big_pk_auto, integer, string, string_null,
    timestamp_with_time_zone, timestamp_with_time_zone_null,
};

use super::{index, reference};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("flash_sales")
                    .col(big_pk_auto("id"))
                    .col(big_integer("version").default(1))
                    .col(string("name"))
                    .col(big_integer("sku_id"))
                    .col(big_integer("sale_price"))
                    // Units carved out of the SKU's stock for the sale.
                    .col(big_integer("stock"))
                    .col(timestamp_with_time_zone("starts_at"))
                    .col(timestamp_with_time_zone("ends_at"))
                    .col(big_integer("per_customer_limit"))
                    .col(big_integer_null("membership_level_id"))
                    .col(integer("payment_timeout_secs"))
                    // `open` until the unsold units go back to the SKU, then `closed`.
                    .col(string("status"))
                    .col(big_integer_null("released"))
                    .col(timestamp_with_time_zone_null("closed_at"))
                    .col(big_integer_null("created_by"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(&mut reference(
                        "flash_sales",
                        "sku_id",
                        "skus",
                        ForeignKeyAction::Restrict,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(index("flash_sales", &["status", "ends_at"], false))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("flash_sale_purchases")
                    // The gate's purchase id: orders are made idempotently by it.
                    .col(string("id").primary_key())
                    .col(big_integer("flash_sale_id"))
                    .col(big_integer("customer_id"))
                    .col(big_integer("quantity"))
                    .col(big_integer_null("order_id"))
                    // ordered | returning | returned | released
                    .col(string("status"))
                    .col(string_null("stream_id"))
                    .col(timestamp_with_time_zone("accepted_at"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(&mut reference(
                        "flash_sale_purchases",
                        "flash_sale_id",
                        "flash_sales",
                        ForeignKeyAction::Restrict,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(index(
                "flash_sale_purchases",
                &["flash_sale_id", "status"],
                false,
            ))
            .await?;
        manager
            .create_index(index("flash_sale_purchases", &["order_id"], true))
            .await?;
        // Housekeeping looks for purchases whose units are on their way back, every sale at once.
        manager
            .create_index(index("flash_sale_purchases", &["status"], false))
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("orders")
                    .add_column(big_integer_null("flash_sale_id"))
                    .take(),
            )
            .await?;
        manager
            .create_index(index("orders", &["flash_sale_id"], false))
            .await?;
        Ok(())
    }
}
