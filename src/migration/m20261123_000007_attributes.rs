//! Product types and custom attributes: one set of definitions and values for products,
//! SKU axes, review fields, categories, content pages and customers.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, big_pk_auto, boolean, integer, string, string_uniq, text,
    timestamp_with_time_zone,
};

use super::{entity_table, index, reference};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                entity_table("product_types")
                    .col(string_uniq("name"))
                    .col(text("description").default(""))
                    .take(),
            )
            .await?;
        manager
            .create_table(
                entity_table("attribute_definitions")
                    // `product`, `sku_axis`, `review` (with a product type) or
                    // `category`, `page`, `customer` (shop-wide).
                    .col(string("scope"))
                    .col(big_integer_null("product_type_id"))
                    .col(string("code"))
                    .col(string("name"))
                    // `text`, `number`, `enum` or `boolean`.
                    .col(string("kind"))
                    // JSON array of the allowed values of an enum.
                    .col(text("options").default("[]"))
                    .col(boolean("required").default(false))
                    .col(integer("sort_order").default(0))
                    .foreign_key(&mut reference(
                        "attribute_definitions",
                        "product_type_id",
                        "product_types",
                        ForeignKeyAction::Cascade,
                    ))
                    .take(),
            )
            .await?;
        // A code is unique within its owner: the type (for type scopes) or the scope. NULLs
        // are distinct in a unique index, so shop-wide scopes get a partial index of their own.
        manager
            .create_index(index(
                "attribute_definitions",
                &["scope", "product_type_id", "code"],
                true,
            ))
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX ix_attribute_definitions_shop_code \
                 ON attribute_definitions (scope, code) WHERE product_type_id IS NULL",
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("attribute_values")
                    .col(big_pk_auto("id"))
                    .col(big_integer("definition_id"))
                    .col(big_integer("owner_id"))
                    // The value as JSON: a string, number or boolean.
                    .col(text("value"))
                    .col(timestamp_with_time_zone("updated_at").default(Expr::current_timestamp()))
                    .foreign_key(&mut reference(
                        "attribute_values",
                        "definition_id",
                        "attribute_definitions",
                        ForeignKeyAction::Cascade,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(index(
                "attribute_values",
                &["definition_id", "owner_id"],
                true,
            ))
            .await?;
        manager
            .create_index(index("attribute_values", &["owner_id"], false))
            .await
    }
}
