//! Customer accounts and what hangs off them: addresses, single-use email tokens, refresh
//! tokens, third-party logins, memberships and feedback.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, big_pk_auto, boolean, integer, string, string_null, string_uniq,
    text, text_null, timestamp_with_time_zone, timestamp_with_time_zone_null,
};

use super::{entity_table, index, reference};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn created_at() -> ColumnDef {
    timestamp_with_time_zone("created_at")
        .default(Expr::current_timestamp())
        .take()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                entity_table("membership_levels")
                    .col(string_uniq("name"))
                    .col(string("description").default(""))
                    .col(integer("discount_percent").default(0))
                    .col(boolean("free_shipping").default(false))
                    .take(),
            )
            .await?;
        manager
            .create_table(
                entity_table("customers")
                    // Null for accounts made through a provider that shares no email.
                    .col(string_null("email").unique_key())
                    .col(string("name"))
                    .col(string_null("phone"))
                    .col(string_null("password_hash"))
                    .col(timestamp_with_time_zone_null("email_verified_at"))
                    // Sessions made before this instant are void (password change, reset).
                    .col(
                        timestamp_with_time_zone("credentials_changed_at")
                            .default(Expr::current_timestamp()),
                    )
                    .col(boolean("is_active").default(true))
                    .col(timestamp_with_time_zone_null("deleted_at"))
                    .col(text("note").default(""))
                    .take(),
            )
            .await?;
        manager
            .create_index(index("customers", &["created_at"], false))
            .await?;
        manager
            .create_table(
                entity_table("customer_addresses")
                    .col(big_integer("customer_id"))
                    .col(string("recipient"))
                    .col(string("phone"))
                    .col(big_integer("region_id"))
                    .col(string("line1"))
                    .col(string_null("line2"))
                    .col(string_null("postal_code"))
                    .col(boolean("is_default").default(false))
                    .foreign_key(&mut reference(
                        "customer_addresses",
                        "customer_id",
                        "customers",
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut reference(
                        "customer_addresses",
                        "region_id",
                        "regions",
                        ForeignKeyAction::Restrict,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(index("customer_addresses", &["customer_id"], false))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("account_tokens")
                    .col(big_pk_auto("id"))
                    .col(big_integer("customer_id"))
                    .col(string("purpose"))
                    .col(string_uniq("token_hash"))
                    .col(timestamp_with_time_zone("expires_at"))
                    .col(timestamp_with_time_zone_null("used_at"))
                    .col(created_at())
                    .foreign_key(&mut reference(
                        "account_tokens",
                        "customer_id",
                        "customers",
                        ForeignKeyAction::Cascade,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(index("account_tokens", &["customer_id", "purpose"], false))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("refresh_tokens")
                    .col(big_pk_auto("id"))
                    .col(string("family_id"))
                    .col(string_uniq("token_hash"))
                    .col(string("subject"))
                    .col(timestamp_with_time_zone("expires_at"))
                    .col(timestamp_with_time_zone_null("used_at"))
                    .col(timestamp_with_time_zone_null("revoked_at"))
                    .col(created_at())
                    .take(),
            )
            .await?;
        manager
            .create_index(index("refresh_tokens", &["family_id"], false))
            .await?;
        manager
            .create_index(index("refresh_tokens", &["subject"], false))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("oauth_identities")
                    .col(big_pk_auto("id"))
                    .col(big_integer("customer_id"))
                    .col(string("provider"))
                    .col(string("subject"))
                    .col(string_null("union_id"))
                    .col(string_null("display_name"))
                    .col(created_at())
                    .foreign_key(&mut reference(
                        "oauth_identities",
                        "customer_id",
                        "customers",
                        ForeignKeyAction::Cascade,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(index("oauth_identities", &["provider", "subject"], true))
            .await?;
        manager
            .create_index(index("oauth_identities", &["customer_id"], false))
            .await?;
        manager
            .create_table(
                entity_table("memberships")
                    .col(big_integer("customer_id"))
                    .col(big_integer("level_id"))
                    .col(timestamp_with_time_zone("starts_at"))
                    .col(timestamp_with_time_zone_null("expires_at"))
                    .col(timestamp_with_time_zone_null("ended_at"))
                    .col(string_null("end_reason"))
                    .col(big_integer_null("granted_by_staff_id"))
                    .foreign_key(&mut reference(
                        "memberships",
                        "customer_id",
                        "customers",
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut reference(
                        "memberships",
                        "level_id",
                        "membership_levels",
                        ForeignKeyAction::Restrict,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(index("memberships", &["customer_id", "ended_at"], false))
            .await?;
        manager
            .create_index(index("memberships", &["ended_at", "expires_at"], false))
            .await?;
        manager
            .create_table(
                entity_table("feedback")
                    .col(big_integer("customer_id"))
                    .col(string("subject"))
                    .col(text("message"))
                    .col(string("status").default("open"))
                    .col(text_null("reply"))
                    .col(big_integer_null("replied_by_staff_id"))
                    .col(timestamp_with_time_zone_null("replied_at"))
                    .foreign_key(&mut reference(
                        "feedback",
                        "customer_id",
                        "customers",
                        ForeignKeyAction::Cascade,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(index("feedback", &["status", "created_at"], false))
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("security_log")
                    .add_column(big_integer_null("actor_customer_id"))
                    .take(),
            )
            .await
    }
}
