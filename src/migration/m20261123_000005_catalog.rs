//! The catalog's category tree.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer_null, boolean, integer, string, string_null, string_uniq, text,
};

use super::{entity_table, index, reference};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                entity_table("categories")
                    .col(big_integer_null("parent_id"))
                    .col(string("name"))
                    .col(string_uniq("slug"))
                    .col(text("description").default(""))
                    .col(integer("sort_order").default(0))
                    .col(boolean("is_visible").default(true))
                    .col(string_null("meta_title"))
                    .col(string_null("meta_description"))
                    .foreign_key(&mut reference(
                        "categories",
                        "parent_id",
                        "categories",
                        ForeignKeyAction::Restrict,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(index("categories", &["parent_id", "sort_order"], false))
            .await
    }
}
