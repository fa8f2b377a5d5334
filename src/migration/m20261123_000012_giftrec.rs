//! Per-product pinned recommendations, and the indexes gift certificate batches and order
//! cancellations look certificates and their movements up by.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, integer, timestamp_with_time_zone};

use super::{index, reference};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("product_recommendations")
                    .col(big_integer("product_id"))
                    .col(big_integer("recommended_id"))
                    .col(integer("position").default(0))
                    .col(timestamp_with_time_zone("created_at").default(Expr::current_timestamp()))
                    .primary_key(Index::create().col("product_id").col("recommended_id"))
                    .foreign_key(&mut reference(
                        "product_recommendations",
                        "product_id",
                        "products",
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut reference(
                        "product_recommendations",
                        "recommended_id",
                        "products",
                        ForeignKeyAction::Cascade,
                    ))
                    .take(),
            )
            .await?;
        // The cascade from a deleted product it recommends.
        manager
            .create_index(index("product_recommendations", &["recommended_id"], false))
            .await?;
        // Sending or listing a batch.
        manager
            .create_index(index("gift_certificates", &["batch"], false))
            .await?;
        manager
            .create_index(index("gift_certificates", &["customer_id"], false))
            .await?;
        // Giving back what a cancelled order took.
        manager
            .create_index(index("gift_certificate_movements", &["order_id"], false))
            .await?;
        Ok(())
    }
}
