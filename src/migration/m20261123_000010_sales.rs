//! Promotions and their coupons, gift certificates, and carts.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, boolean, integer, string, string_null, text,
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
                entity_table("promotions")
                    .col(string("name"))
                    .col(text("description").default(""))
                    // `catalog`, `cart` or `coupon`.
                    .col(string("kind"))
                    // Conditions and actions as JSON (`promotions::engine::PromotionRule`).
                    .col(text("rule"))
                    .col(integer("priority").default(100))
                    // `exclusive`, `stackable` or `discount_on_discount`.
                    .col(string("stacking"))
                    .col(timestamp_with_time_zone_null("starts_at"))
                    .col(timestamp_with_time_zone_null("ends_at"))
                    .col(boolean("active").default(true))
                    .col(big_integer_null("usage_limit"))
                    .col(big_integer_null("usage_limit_per_customer"))
                    // Redemptions by live orders; a cancelled order gives its use back.
                    .col(big_integer("used_count").default(0))
                    .take(),
            )
            .await?;
        manager
            .create_index(index("promotions", &["active", "kind"], false))
            .await?;
        manager
            .create_table(
                entity_table("coupons")
                    .col(big_integer("promotion_id"))
                    // Upper case; customers type it in any case.
                    .col(string("code"))
                    .col(string_null("batch"))
                    // NULL: any number of uses; 1: single use.
                    .col(big_integer_null("max_uses"))
                    .col(big_integer("used_count").default(0))
                    // A coupon issued to one customer (e.g. a gift coupon) only works for them.
                    .col(big_integer_null("customer_id"))
                    .col(timestamp_with_time_zone_null("expires_at"))
                    .col(boolean("active").default(true))
                    .foreign_key(&mut reference(
                        "coupons",
                        "promotion_id",
                        "promotions",
                        ForeignKeyAction::Cascade,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(index("coupons", &["code"], true))
            .await?;
        manager
            .create_index(index("coupons", &["promotion_id"], false))
            .await?;
        manager
            .create_table(
                entity_table("promotion_redemptions")
                    .col(big_integer("promotion_id"))
                    .col(big_integer_null("coupon_id"))
                    .col(big_integer("order_id"))
                    .col(big_integer_null("customer_id"))
                    .col(big_integer("saving"))
                    // Set when the order is cancelled and the use is given back.
                    .col(timestamp_with_time_zone_null("released_at"))
                    .take(),
            )
            .await?;
        manager
            .create_index(index(
                "promotion_redemptions",
                &["promotion_id", "customer_id"],
                false,
            ))
            .await?;
        manager
            .create_index(index("promotion_redemptions", &["order_id"], false))
            .await?;
        manager
            .create_table(
                entity_table("gift_certificates")
                    .col(string("code"))
                    .col(string_null("batch"))
                    .col(string("currency"))
                    .col(big_integer("initial_amount"))
                    .col(big_integer("balance"))
                    .col(big_integer_null("customer_id"))
                    .col(string_null("email"))
                    .col(timestamp_with_time_zone_null("expires_at"))
                    .col(boolean("active").default(true))
                    .col(timestamp_with_time_zone_null("sent_at"))
                    .take(),
            )
            .await?;
        manager
            .create_index(index("gift_certificates", &["code"], true))
            .await?;
        manager
            .create_table(
                entity_table("gift_certificate_movements")
                    .col(big_integer("certificate_id"))
                    // Negative when redeemed, positive when issued or given back.
                    .col(big_integer("delta"))
                    .col(big_integer("balance_after"))
                    .col(big_integer_null("order_id"))
                    .col(string("reason"))
                    .col(big_integer_null("staff_id"))
                    .foreign_key(&mut reference(
                        "gift_certificate_movements",
                        "certificate_id",
                        "gift_certificates",
                        ForeignKeyAction::Cascade,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(index(
                "gift_certificate_movements",
                &["certificate_id"],
                false,
            ))
            .await?;
        manager
            .create_table(
                entity_table("carts")
                    // A guest holds the token; a customer's cart is found by customer id.
                    .col(string("token"))
                    .col(big_integer_null("customer_id"))
                    // Upper-case codes as JSON array.
                    .col(text("coupon_codes").default("[]"))
                    .take(),
            )
            .await?;
        manager
            .create_index(index("carts", &["token"], true))
            .await?;
        manager
            .create_index(index("carts", &["customer_id"], true))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("cart_lines")
                    .col(big_integer("cart_id"))
                    .col(big_integer("sku_id"))
                    .col(big_integer("quantity"))
                    .col(timestamp_with_time_zone("added_at").default(Expr::current_timestamp()))
                    .primary_key(Index::create().col("cart_id").col("sku_id"))
                    .foreign_key(&mut reference(
                        "cart_lines",
                        "cart_id",
                        "carts",
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut reference(
                        "cart_lines",
                        "sku_id",
                        "skus",
                        ForeignKeyAction::Cascade,
                    ))
                    .take(),
            )
            .await?;
        Ok(())
    }
}
