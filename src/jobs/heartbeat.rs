//! The `heartbeat` schedule: a no-op job whose recorded runs prove the scheduler and the
//! workers are alive.

use chrono::Utc;
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ConnectionTrait, DbErr, EntityTrait};
use serde::{Deserialize, Serialize};

use super::{Job, JobContext, JobError, Registry};
use crate::app::AppState;

pub mod entity {
    use sea_orm::entity::prelude::*;

    /// One row per schedule: when its last tick was queued and when its job last ran.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "job_schedules")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        pub last_tick_at: Option<DateTimeUtc>,
        pub last_run_at: Option<DateTimeUtc>,
        pub runs: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub const SCHEDULE: &str = "heartbeat";

#[derive(Debug, Serialize, Deserialize)]
pub struct Heartbeat;

impl Job for Heartbeat {
    const NAME: &'static str = "heartbeat";

    /// Idempotent: a repeated delivery only counts one run more.
    async fn run(self, state: AppState, _: JobContext) -> Result<(), JobError> {
        record_run(state.db.writer(), SCHEDULE).await?;
        Ok(())
    }
}

pub fn register(registry: &mut Registry) {
    registry.schedule(SCHEDULE, "0 * * * * *", || Heartbeat);
}

/// Upserts the schedule's row, setting `last_tick_at`.
pub async fn record_tick(
    db: &impl ConnectionTrait,
    name: &str,
    at: chrono::DateTime<Utc>,
) -> Result<(), DbErr> {
    entity::Entity::insert(entity::ActiveModel {
        name: Set(name.to_owned()),
        last_tick_at: Set(Some(at)),
        last_run_at: Set(None),
        runs: Set(0),
    })
    .on_conflict(
        OnConflict::column(entity::Column::Name)
            .update_column(entity::Column::LastTickAt)
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

async fn record_run(db: &impl ConnectionTrait, name: &str) -> Result<(), DbErr> {
    use sea_orm::sea_query::{Expr, ExprTrait};
    entity::Entity::insert(entity::ActiveModel {
        name: Set(name.to_owned()),
        last_tick_at: Set(None),
        last_run_at: Set(Some(Utc::now())),
        runs: Set(1),
    })
    .on_conflict(
        OnConflict::column(entity::Column::Name)
            .update_column(entity::Column::LastRunAt)
            .value(
                entity::Column::Runs,
                Expr::col((entity::Entity, entity::Column::Runs)).add(1),
            )
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}
