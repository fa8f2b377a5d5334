//! Inventory: stock levels on the SKU and the stock ledger. `skus.stock` stays the units on
//! hand, so catalog reads keep working; every change to it from here on writes a
//! `stock_movements` row in the same transaction, and the ledger sums to the levels.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, big_pk_auto, boolean, integer, string, text,
    timestamp_with_time_zone,
};

use super::{index, reference};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        let columns = [
            // Units promised to orders that have not shipped; available = stock - reserved.
            integer("reserved").default(0).to_owned(),
            // Returned units not fit to sell; outside on hand.
            integer("damaged").default(0).to_owned(),
            // Staff are alerted when available falls below it.
            integer("safety_stock").default(0).to_owned(),
            // How many to order when restocking, shown in the alert.
            integer("reorder_qty").default(0).to_owned(),
            // Never runs out (digital goods, made to order): no levels are kept.
            boolean("always_available").default(false).to_owned(),
        ];
        for column in columns {
            manager
                .alter_table(Table::alter().table("skus").add_column(column).take())
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table("stock_movements")
                    .col(big_pk_auto("id"))
                    .col(big_integer("sku_id"))
                    // `initial`, `adjust`, `reserve`, `release`, `ship`, `return_to_stock`,
                    // `damaged` or `write_off`.
                    .col(string("kind"))
                    .col(integer("on_hand_delta"))
                    .col(integer("reserved_delta"))
                    .col(integer("damaged_delta"))
                    .col(integer("on_hand_after"))
                    .col(integer("reserved_after"))
                    .col(integer("damaged_after"))
                    .col(text("reason").default(""))
                    // No foreign key: orders come in a later migration.
                    .col(big_integer_null("order_id"))
                    .col(big_integer_null("staff_id"))
                    .col(big_integer_null("customer_id"))
                    .col(timestamp_with_time_zone("created_at").default(Expr::current_timestamp()))
                    // A SKU's ledger goes with it: its levels go too, so the sums still hold.
                    .foreign_key(&mut reference(
                        "stock_movements",
                        "sku_id",
                        "skus",
                        ForeignKeyAction::Cascade,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(index("stock_movements", &["sku_id", "id"], false))
            .await?;
        manager
            .create_index(index("stock_movements", &["order_id"], false))
            .await?;
        // The ledger sums to the stock from day one.
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO stock_movements (sku_id, kind, on_hand_delta, reserved_delta, \
                   damaged_delta, on_hand_after, reserved_after, damaged_after, reason) \
                 SELECT id, 'initial', stock, 0, 0, stock, 0, 0, 'stock before the ledger' \
                 FROM skus WHERE stock > 0 ORDER BY id",
            )
            .await?;
        Ok(())
    }
}
