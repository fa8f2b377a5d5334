//! The email outbox and the record of scheduled runs. (apalis creates its own job tables.)

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_pk_auto, integer, string, text, text_null, timestamp_with_time_zone,
    timestamp_with_time_zone_null,
};

use super::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("emails")
                    .col(big_pk_auto("id"))
                    .col(string("to_address"))
                    .col(text("subject"))
                    .col(text("text_body"))
                    .col(text("html_body"))
                    .col(string("template"))
                    .col(string("status"))
                    .col(integer("attempts").default(0))
                    .col(text_null("last_error"))
                    .col(timestamp_with_time_zone("created_at").default(Expr::current_timestamp()))
                    .col(timestamp_with_time_zone("updated_at").default(Expr::current_timestamp()))
                    .col(timestamp_with_time_zone_null("sent_at"))
                    .take(),
            )
            .await?;
        manager
            .create_index(index("emails", &["status", "created_at"], false))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("job_schedules")
                    .col(string("name").primary_key())
                    .col(timestamp_with_time_zone_null("last_tick_at"))
                    .col(timestamp_with_time_zone_null("last_run_at"))
                    .col(big_integer("runs").default(0))
                    .take(),
            )
            .await
    }
}
