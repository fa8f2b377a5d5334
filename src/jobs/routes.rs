//! The queue monitor: queues, workers, schedules, dead jobs.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use sea_orm::EntityTrait;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use super::store::{self, FailedJob, JobStatus, QueueStats, WorkerInfo};
use super::{JOBS_READ, JOBS_WRITE, heartbeat, scheduler};
use crate::app::AppState;
use crate::platform::extract::Query;
use crate::platform::list::{ListParams, Page, SortFields};
use crate::platform::routing::{Access, ApiRouter};
use crate::platform::{ApiError, ApiResult};

pub fn admin_router() -> ApiRouter {
    ApiRouter::new()
        .route(routes!(get_job_overview), Access::Permission(JOBS_READ))
        .route(routes!(list_failed_jobs), Access::Permission(JOBS_READ))
        .route(routes!(retry_job), Access::Permission(JOBS_WRITE))
        .route(routes!(delete_job), Access::Permission(JOBS_WRITE))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleInfo {
    pub name: String,
    pub job: String,
    pub cron: String,
    pub next_tick_at: Option<DateTime<Utc>>,
    /// The last tick some scheduler queued.
    pub last_tick_at: Option<DateTime<Utc>>,
    /// The last time the job recorded a run (jobs that record runs, such as `heartbeat`).
    pub last_run_at: Option<DateTime<Utc>>,
    pub runs: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobOverview {
    pub queues: Vec<QueueStats>,
    /// Workers whose heartbeat is recent.
    pub workers: Vec<WorkerInfo>,
    pub schedules: Vec<ScheduleInfo>,
}

/// Queues with counts by state and the oldest waiting job, live workers, schedules.
#[utoipa::path(get, path = "/jobs", tag = "jobs", responses((status = 200, body = JobOverview)))]
pub async fn get_job_overview(State(state): State<AppState>) -> ApiResult<axum::Json<JobOverview>> {
    let db = state.db.reader();
    let window = (state.config.jobs.heartbeat_secs * 3) as i64;
    let recorded = heartbeat::entity::Entity::find().all(db).await?;
    let schedules = scheduler::plan(&state)?
        .into_iter()
        .map(|planned| {
            let row = recorded.iter().find(|r| r.name == planned.name);
            ScheduleInfo {
                name: planned.name.to_owned(),
                job: planned.job_name.to_owned(),
                next_tick_at: planned.cron.upcoming(Utc).next(),
                cron: planned.expression,
                last_tick_at: row.and_then(|r| r.last_tick_at),
                last_run_at: row.and_then(|r| r.last_run_at),
                runs: row.map_or(0, |r| r.runs),
            }
        })
        .collect();
    Ok(axum::Json(JobOverview {
        queues: store::queue_stats(db).await?,
        workers: store::live_workers(db, window).await?,
        schedules,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FailedFilter {
    pub queue: Option<String>,
}

/// Jobs out of attempts, newest first, with their last error.
#[utoipa::path(get, path = "/jobs/failed", tag = "jobs", params(ListParams, FailedFilter),
    responses((status = 200, body = Page<FailedJob>)))]
pub async fn list_failed_jobs(
    State(state): State<AppState>,
    Query(list): Query<ListParams>,
    Query(filter): Query<FailedFilter>,
) -> ApiResult<axum::Json<Page<FailedJob>>> {
    let spec = list.spec::<()>(&SortFields(&[]))?;
    let (items, total) = store::dead_jobs(
        state.db.reader(),
        filter.queue.as_deref(),
        spec.limit,
        spec.offset,
    )
    .await?;
    Ok(axum::Json(Page {
        items,
        total,
        page: spec.page,
        per_page: spec.limit,
    }))
}

/// Runs a dead job again with a fresh set of attempts.
#[utoipa::path(post, path = "/jobs/{id}/retry", tag = "jobs", params(("id" = String, Path)),
    responses((status = 200, body = JobStatus), (status = 409, description = "The job is not dead")))]
pub async fn retry_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<JobStatus>> {
    // One transaction, so the answer is the state the retry wrote, not whatever a worker made
    // of it a moment later.
    let txn = state.db.begin().await?;
    if !store::retry_dead(&txn, &id).await? {
        return Err(match store::job_status(&txn, &id).await? {
            Some(job) => ApiError::conflict(
                "job-not-dead",
                format!(
                    "job {id} is {}; only failed jobs can be retried",
                    job.status
                ),
            ),
            None => ApiError::not_found("job", &id),
        });
    }
    let job = store::job_status(&txn, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("job", &id))?;
    txn.commit().await?;
    tracing::info!(job = %id, "dead job queued again");
    Ok(axum::Json(job))
}

/// Deletes a job that is not running.
#[utoipa::path(delete, path = "/jobs/{id}", tag = "jobs", params(("id" = String, Path)),
    responses((status = 204), (status = 409, description = "The job is running")))]
pub async fn delete_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let db = state.db.writer();
    if store::delete_idle(db, &id).await? {
        tracing::info!(job = %id, "job deleted");
        return Ok(StatusCode::NO_CONTENT);
    }
    Err(match store::job_status(db, &id).await? {
        Some(_) => ApiError::conflict(
            "job-running",
            format!("job {id} is running; try again when it ends"),
        ),
        None => ApiError::not_found("job", &id),
    })
}
