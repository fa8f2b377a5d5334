//! System reference data: regions, carriers, shipping methods and rates, packaging,
//! payment methods.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, boolean, integer, string, string_len, string_uniq, text,
};

use super::{entity_table, index, reference};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                entity_table("regions")
                    .col(big_integer_null("parent_id"))
                    .col(string_uniq("code"))
                    .col(string("name"))
                    .col(string("level"))
                    .col(integer("sort_order").default(0))
                    .foreign_key(&mut reference(
                        "regions",
                        "parent_id",
                        "regions",
                        ForeignKeyAction::Restrict,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(index("regions", &["parent_id", "sort_order"], false))
            .await?;
        manager
            .create_table(
                entity_table("carriers")
                    .col(string_uniq("code"))
                    .col(string("name"))
                    .col(string("tracking_url").default(""))
                    .col(boolean("active").default(true))
                    .take(),
            )
            .await?;
        manager
            .create_table(
                entity_table("shipping_methods")
                    .col(string_uniq("code"))
                    .col(string("name"))
                    .col(big_integer_null("carrier_id"))
                    .col(string_len("currency", 3))
                    .col(boolean("active").default(true))
                    .col(integer("sort_order").default(0))
                    .foreign_key(&mut reference(
                        "shipping_methods",
                        "carrier_id",
                        "carriers",
                        ForeignKeyAction::Restrict,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("shipping_rates")
                    .col(sea_orm_migration::schema::big_pk_auto("id"))
                    .col(big_integer("shipping_method_id"))
                    .col(big_integer_null("region_id"))
                    .col(big_integer("first_weight_grams"))
                    .col(big_integer("first_price"))
                    .col(big_integer("step_weight_grams"))
                    .col(big_integer("step_price"))
                    .foreign_key(&mut reference(
                        "shipping_rates",
                        "shipping_method_id",
                        "shipping_methods",
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut reference(
                        "shipping_rates",
                        "region_id",
                        "regions",
                        ForeignKeyAction::Restrict,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(index(
                "shipping_rates",
                &["shipping_method_id", "region_id"],
                false,
            ))
            .await?;
        manager
            .create_index(index("shipping_rates", &["region_id"], false))
            .await?;
        manager
            .create_table(
                entity_table("packaging")
                    .col(string("name"))
                    .col(big_integer("price"))
                    .col(string_len("currency", 3))
                    .col(boolean("active").default(true))
                    .take(),
            )
            .await?;
        manager
            .create_table(
                entity_table("payment_methods")
                    .col(string_uniq("code"))
                    .col(string("name"))
                    .col(string("provider"))
                    .col(text("description").default(""))
                    .col(boolean("active").default(true))
                    .col(integer("sort_order").default(0))
                    .take(),
            )
            .await
    }
}
