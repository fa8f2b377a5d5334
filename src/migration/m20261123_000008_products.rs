//! Products, their SKUs and bundles, brands, media, reviews and per-category recommendations.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, boolean, integer, string, string_null, text, text_null,
    timestamp_with_time_zone, timestamp_with_time_zone_null,
};

use super::{entity_table, index, reference};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        manager
            .create_table(
                entity_table("brands")
                    .col(string("name"))
                    .col(string("slug"))
                    .col(text("description").default(""))
                    .col(string_null("logo_key"))
                    .col(string_null("website"))
                    .col(integer("sort_order").default(0))
                    .col(boolean("is_visible").default(true))
                    .take(),
            )
            .await?;
        manager
            .create_index(index("brands", &["slug"], true))
            .await?;
        manager
            .create_table(
                entity_table("products")
                    .col(string("title"))
                    .col(string("slug"))
                    // Sanitised HTML.
                    .col(text("description").default(""))
                    .col(big_integer_null("brand_id"))
                    .col(big_integer_null("product_type_id"))
                    // `draft`, `listed` or `delisted`.
                    .col(string("status").default("draft"))
                    // The listing window, in whole seconds; the storefront compares it with
                    // the clock on every read, so no job has to flip the status.
                    .col(timestamp_with_time_zone_null("publish_at"))
                    .col(timestamp_with_time_zone_null("unpublish_at"))
                    // `physical` or `virtual` (no shipping).
                    .col(string("kind").default("physical"))
                    // A bundle's SKUs are made of other SKUs.
                    .col(boolean("is_bundle").default(false))
                    .col(boolean("allow_preorder").default(false))
                    .col(boolean("allow_backorder").default(false))
                    .col(string_null("meta_title"))
                    .col(string_null("meta_description"))
                    // Denormalised for storefront sorting and filtering without joins:
                    // the lowest active SKU price, and the published reviews' tally.
                    .col(big_integer_null("min_price"))
                    .col(integer("rating_count").default(0))
                    .col(integer("rating_sum").default(0))
                    // Title, brand, SKU codes and attribute values, lowercased, for search.
                    .col(text("search_text").default(""))
                    .col(timestamp_with_time_zone_null("deleted_at"))
                    .foreign_key(&mut reference(
                        "products",
                        "brand_id",
                        "brands",
                        ForeignKeyAction::Restrict,
                    ))
                    .foreign_key(&mut reference(
                        "products",
                        "product_type_id",
                        "product_types",
                        ForeignKeyAction::Restrict,
                    ))
                    .take(),
            )
            .await?;
        // A deleted product frees its slug (it can still be restored under another).
        db.execute_unprepared(
            "CREATE UNIQUE INDEX ix_products_slug ON products (slug) WHERE deleted_at IS NULL",
        )
        .await?;
        manager
            .create_index(index("products", &["status", "publish_at"], false))
            .await?;
        manager
            .create_index(index("products", &["status", "unpublish_at"], false))
            .await?;
        // The storefront's sorts (newest, name, price) walk these among listed products
        // and stop after a page, instead of sorting every listed product.
        for column in ["created_at", "title", "min_price"] {
            manager
                .create_index(index("products", &["status", column], false))
                .await?;
        }
        manager
            .create_index(index("products", &["brand_id"], false))
            .await?;
        if manager.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
            db.execute_unprepared(
                "CREATE INDEX ix_products_search ON products \
                 USING GIN (to_tsvector('simple', search_text))",
            )
            .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table("product_categories")
                    .col(big_integer("product_id"))
                    .col(big_integer("category_id"))
                    .primary_key(Index::create().col("product_id").col("category_id"))
                    .foreign_key(&mut reference(
                        "product_categories",
                        "product_id",
                        "products",
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut reference(
                        "product_categories",
                        "category_id",
                        "categories",
                        ForeignKeyAction::Restrict,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(index("product_categories", &["category_id"], false))
            .await?;
        manager
            .create_table(
                entity_table("skus")
                    .col(big_integer("product_id"))
                    .col(string("code"))
                    .col(big_integer("price"))
                    .col(big_integer_null("compare_at_price"))
                    .col(integer("weight_grams").default(0))
                    .col(string_null("barcode"))
                    // Units on hand; a bundle's come from its parts.
                    .col(integer("stock").default(0))
                    // The SKU-axis values in a canonical form (`color=red;size=m`), unique
                    // per product so generation never makes a combination twice; NULL
                    // (never equal) when the product's type has no axes.
                    .col(string_null("axis_key"))
                    .col(boolean("is_active").default(true))
                    .col(integer("sort_order").default(0))
                    .foreign_key(&mut reference(
                        "skus",
                        "product_id",
                        "products",
                        ForeignKeyAction::Cascade,
                    ))
                    .take(),
            )
            .await?;
        manager.create_index(index("skus", &["code"], true)).await?;
        manager
            .create_index(index("skus", &["product_id", "axis_key"], true))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("bundle_items")
                    .col(big_integer("bundle_sku_id"))
                    .col(big_integer("part_sku_id"))
                    .col(integer("quantity"))
                    .primary_key(Index::create().col("bundle_sku_id").col("part_sku_id"))
                    .foreign_key(&mut reference(
                        "bundle_items",
                        "bundle_sku_id",
                        "skus",
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut reference(
                        "bundle_items",
                        "part_sku_id",
                        "skus",
                        ForeignKeyAction::Restrict,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(index("bundle_items", &["part_sku_id"], false))
            .await?;
        manager
            .create_table(
                entity_table("product_media")
                    .col(big_integer("product_id"))
                    .col(string("key"))
                    .col(string("content_type"))
                    // `image` or `video`.
                    .col(string("kind"))
                    .col(big_integer("size"))
                    .col(string("alt").default(""))
                    .col(integer("sort_order").default(0))
                    .foreign_key(&mut reference(
                        "product_media",
                        "product_id",
                        "products",
                        ForeignKeyAction::Cascade,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(index("product_media", &["product_id", "sort_order"], false))
            .await?;
        manager
            .create_table(
                entity_table("reviews")
                    .col(big_integer("product_id"))
                    .col(big_integer("customer_id"))
                    .col(integer("rating"))
                    .col(text("body").default(""))
                    .col(text_null("reply"))
                    .col(timestamp_with_time_zone_null("replied_at"))
                    .col(big_integer_null("replied_by"))
                    .foreign_key(&mut reference(
                        "reviews",
                        "product_id",
                        "products",
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut reference(
                        "reviews",
                        "customer_id",
                        "customers",
                        ForeignKeyAction::Cascade,
                    ))
                    .take(),
            )
            .await?;
        // One review per customer and product.
        manager
            .create_index(index("reviews", &["product_id", "customer_id"], true))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("category_recommendations")
                    .col(big_integer("category_id"))
                    .col(big_integer("product_id"))
                    .col(integer("sort_order").default(0))
                    .col(timestamp_with_time_zone("created_at").default(Expr::current_timestamp()))
                    .primary_key(Index::create().col("category_id").col("product_id"))
                    .foreign_key(&mut reference(
                        "category_recommendations",
                        "category_id",
                        "categories",
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut reference(
                        "category_recommendations",
                        "product_id",
                        "products",
                        ForeignKeyAction::Cascade,
                    ))
                    .take(),
            )
            .await?;
        Ok(())
    }
}
