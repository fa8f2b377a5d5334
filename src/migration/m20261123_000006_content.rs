//! Content: the page directory tree, pages, ads and navigation menus.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, boolean, integer, string, string_null, string_uniq, text,
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
                entity_table("content_directories")
                    .col(big_integer_null("parent_id"))
                    .col(string("name"))
                    .col(string_uniq("slug"))
                    .col(integer("sort_order").default(0))
                    .col(string_null("link_url"))
                    .foreign_key(&mut reference(
                        "content_directories",
                        "parent_id",
                        "content_directories",
                        ForeignKeyAction::Restrict,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(index(
                "content_directories",
                &["parent_id", "sort_order"],
                false,
            ))
            .await?;
        manager
            .create_table(
                entity_table("content_pages")
                    .col(big_integer_null("directory_id"))
                    .col(string("title"))
                    .col(string_uniq("slug"))
                    .col(text("body").default(""))
                    .col(boolean("published").default(false))
                    .col(string_null("meta_title"))
                    .col(string_null("meta_description"))
                    .foreign_key(&mut reference(
                        "content_pages",
                        "directory_id",
                        "content_directories",
                        ForeignKeyAction::Restrict,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(index("content_pages", &["directory_id"], false))
            .await?;
        manager
            .create_table(
                entity_table("content_ads")
                    .col(string("title"))
                    .col(string("image_url"))
                    .col(string("link_url").default(""))
                    .col(string("placement"))
                    .col(integer("sort_order").default(0))
                    .col(timestamp_with_time_zone_null("starts_at"))
                    .col(timestamp_with_time_zone_null("ends_at"))
                    .col(boolean("active").default(true))
                    .take(),
            )
            .await?;
        manager
            .create_index(index("content_ads", &["placement", "sort_order"], false))
            .await?;
        manager
            .create_table(
                entity_table("content_menus")
                    .col(string_uniq("code"))
                    .col(string("name"))
                    .take(),
            )
            .await?;
        manager
            .create_table(
                entity_table("content_menu_items")
                    .col(big_integer("menu_id"))
                    .col(big_integer_null("parent_id"))
                    .col(string("label"))
                    .col(string("kind"))
                    .col(string_null("url"))
                    .col(big_integer_null("target_id"))
                    .col(integer("sort_order").default(0))
                    .foreign_key(&mut reference(
                        "content_menu_items",
                        "menu_id",
                        "content_menus",
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut reference(
                        "content_menu_items",
                        "parent_id",
                        "content_menu_items",
                        ForeignKeyAction::Cascade,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(index(
                "content_menu_items",
                &["menu_id", "sort_order"],
                false,
            ))
            .await
    }
}
