//! Staff access control, security log and idempotency keys.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, boolean, integer_null, string, string_null, string_uniq, text,
    text_null, timestamp_with_time_zone,
};

use super::{entity_table, index, reference};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                entity_table("staff")
                    .col(string_uniq("email"))
                    .col(string("name"))
                    .col(string("password_hash"))
                    .col(boolean("is_superuser").default(false))
                    .col(boolean("is_active").default(true))
                    .take(),
            )
            .await?;
        manager
            .create_table(
                entity_table("roles")
                    .col(string_uniq("name"))
                    .col(string("description").default(""))
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("role_permissions")
                    .col(big_integer("role_id"))
                    .col(string("permission"))
                    .primary_key(Index::create().col("role_id").col("permission"))
                    .foreign_key(&mut reference(
                        "role_permissions",
                        "role_id",
                        "roles",
                        ForeignKeyAction::Cascade,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("staff_roles")
                    .col(big_integer("staff_id"))
                    .col(big_integer("role_id"))
                    .primary_key(Index::create().col("staff_id").col("role_id"))
                    .foreign_key(&mut reference(
                        "staff_roles",
                        "staff_id",
                        "staff",
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut reference(
                        "staff_roles",
                        "role_id",
                        "roles",
                        ForeignKeyAction::Cascade,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(index("staff_roles", &["role_id"], false))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("security_log")
                    .col(sea_orm_migration::schema::big_pk_auto("id"))
                    .col(string("event"))
                    .col(big_integer_null("actor_staff_id"))
                    .col(string_null("actor_email"))
                    .col(string_null("subject"))
                    .col(string_null("ip"))
                    .col(string_null("request_id"))
                    .col(text("detail").default("{}"))
                    .col(timestamp_with_time_zone("created_at").default(Expr::current_timestamp()))
                    .take(),
            )
            .await?;
        manager
            .create_index(index("security_log", &["created_at"], false))
            .await?;
        manager
            .create_index(index("security_log", &["event", "created_at"], false))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("idempotency_keys")
                    .col(sea_orm_migration::schema::big_pk_auto("id"))
                    .col(string("principal"))
                    .col(string("method"))
                    .col(string("route"))
                    .col(string("idempotency_key"))
                    .col(string("request_hash"))
                    .col(integer_null("status_code"))
                    .col(text_null("response_headers"))
                    .col(text_null("response_body"))
                    .col(timestamp_with_time_zone("created_at").default(Expr::current_timestamp()))
                    .take(),
            )
            .await?;
        manager
            .create_index(index(
                "idempotency_keys",
                &["principal", "method", "route", "idempotency_key"],
                true,
            ))
            .await?;
        manager
            .create_index(index("idempotency_keys", &["created_at"], false))
            .await
    }
}
