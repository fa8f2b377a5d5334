//! SQL over apalis' job tables (`Jobs` in SQLite, `apalis.jobs` in PostgreSQL): the writes
//! apalis has no API for (enqueue inside the caller's transaction, back-off, retry and
//! delete by id) and the monitor's reads.

use chrono::{DateTime, TimeZone, Utc};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, FromQueryResult, Statement, Value};
use serde::Serialize;
use utoipa::ToSchema;

fn statement(
    db: &impl ConnectionTrait,
    sqlite: &str,
    postgres: &str,
    values: Vec<Value>,
) -> Statement {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => postgres,
        _ => sqlite,
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// Writes a pending job; returns its id, or `None` when a job with the same idempotency
/// key already exists for this queue (so a cron tick seen by several schedulers runs once).
pub async fn enqueue(
    db: &impl ConnectionTrait,
    queue: &str,
    payload: &serde_json::Value,
    max_attempts: u32,
    run_at: DateTime<Utc>,
    idempotency_key: Option<String>,
) -> Result<Option<String>, DbErr> {
    let id = ulid::Ulid::generate().to_string();
    let body = serde_json::to_vec(payload).map_err(|e| DbErr::Custom(e.to_string()))?;
    let result = db
        .execute_raw(statement(
            db,
            "INSERT INTO Jobs (job, id, job_type, status, attempts, max_attempts, run_at, priority, idempotency_key) \
             VALUES (?, ?, ?, 'Pending', 0, ?, ?, 0, ?) ON CONFLICT (job_type, idempotency_key) DO NOTHING",
            "INSERT INTO apalis.jobs (job, id, job_type, status, attempts, max_attempts, run_at, priority, idempotency_key) \
             VALUES ($1, $2, $3, 'Pending', 0, $4, to_timestamp($5), 0, $6) ON CONFLICT (job_type, idempotency_key) DO NOTHING",
            vec![
                body.into(),
                id.clone().into(),
                queue.into(),
                (max_attempts as i32).into(),
                run_at.timestamp().into(),
                idempotency_key.into(),
            ],
        ))
        .await?;
    Ok((result.rows_affected() == 1).then_some(id))
}

/// Moves a failing job's next run to `run_at` (apalis refetches failed jobs whose
/// `run_at` has passed).
pub async fn defer(
    db: &impl ConnectionTrait,
    id: &str,
    run_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    db.execute_raw(statement(
        db,
        "UPDATE Jobs SET run_at = ? WHERE id = ?",
        "UPDATE apalis.jobs SET run_at = to_timestamp($1) WHERE id = $2",
        vec![run_at.timestamp().into(), id.into()],
    ))
    .await?;
    Ok(())
}

/// Jobs of one queue by state, and how long the oldest due job has waited.
#[derive(Debug, Serialize, ToSchema, FromQueryResult)]
pub struct QueueStats {
    pub queue: String,
    pub pending: i64,
    pub running: i64,
    /// Failed, with attempts left: waiting for their back-off.
    pub retrying: i64,
    /// Out of attempts (or aborted): they wait for staff in `GET /jobs/failed`.
    pub dead: i64,
    pub done: i64,
    /// Seconds the oldest due pending job has waited; 0 when none.
    pub oldest_pending_secs: i64,
}

pub async fn queue_stats(db: &impl ConnectionTrait) -> Result<Vec<QueueStats>, DbErr> {
    let rows = QueueStats::find_by_statement(statement(
        db,
        "SELECT job_type AS queue,
            SUM(status = 'Pending') AS pending,
            SUM(status IN ('Running', 'Queued')) AS running,
            SUM(status = 'Failed' AND attempts < max_attempts) AS retrying,
            SUM(status = 'Killed' OR (status = 'Failed' AND attempts >= max_attempts)) AS dead,
            SUM(status = 'Done') AS done,
            COALESCE(MAX(CASE WHEN status = 'Pending' AND run_at <= strftime('%s', 'now')
                THEN strftime('%s', 'now') - run_at END), 0) AS oldest_pending_secs
         FROM Jobs GROUP BY job_type ORDER BY job_type",
        "SELECT job_type AS queue,
            COUNT(*) FILTER (WHERE status = 'Pending') AS pending,
            COUNT(*) FILTER (WHERE status IN ('Running', 'Queued')) AS running,
            COUNT(*) FILTER (WHERE status = 'Failed' AND attempts < max_attempts) AS retrying,
            COUNT(*) FILTER (WHERE status = 'Killed' OR (status = 'Failed' AND attempts >= max_attempts)) AS dead,
            COUNT(*) FILTER (WHERE status = 'Done') AS done,
            COALESCE(MAX(EXTRACT(EPOCH FROM NOW() - run_at)::bigint)
                FILTER (WHERE status = 'Pending' AND run_at <= NOW()), 0) AS oldest_pending_secs
         FROM apalis.jobs GROUP BY job_type ORDER BY job_type",
        vec![],
    ))
    .all(db)
    .await?;
    Ok(rows)
}

/// A worker that reported within the liveness window.
#[derive(Debug, Serialize, ToSchema, FromQueryResult)]
pub struct WorkerInfo {
    pub id: String,
    pub queue: String,
    /// Seconds since its last heartbeat.
    pub last_seen_secs: i64,
}

pub async fn live_workers(
    db: &impl ConnectionTrait,
    within_secs: i64,
) -> Result<Vec<WorkerInfo>, DbErr> {
    WorkerInfo::find_by_statement(statement(
        db,
        "SELECT id, worker_type AS queue, strftime('%s', 'now') - last_seen AS last_seen_secs
         FROM Workers WHERE strftime('%s', 'now') - last_seen <= ? ORDER BY worker_type, id",
        "SELECT id, worker_type AS queue, EXTRACT(EPOCH FROM NOW() - last_seen)::bigint AS last_seen_secs
         FROM apalis.workers WHERE last_seen >= NOW() - make_interval(secs => $1) ORDER BY worker_type, id",
        vec![within_secs.into()],
    ))
    .all(db)
    .await
}

#[derive(Debug, FromQueryResult)]
struct FailedRow {
    id: String,
    queue: String,
    attempts: i64,
    max_attempts: i64,
    last_result: Option<String>,
    failed_at: Option<i64>,
    payload: Vec<u8>,
}

/// A job that ran out of attempts, with what went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct FailedJob {
    pub id: String,
    pub queue: String,
    pub attempts: i64,
    pub max_attempts: i64,
    pub error: String,
    pub failed_at: Option<DateTime<Utc>>,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

impl From<FailedRow> for FailedJob {
    fn from(row: FailedRow) -> Self {
        Self {
            error: row
                .last_result
                .as_deref()
                .map(error_message)
                .unwrap_or_default(),
            failed_at: row.failed_at.and_then(|s| Utc.timestamp_opt(s, 0).single()),
            payload: serde_json::from_slice(&row.payload).unwrap_or_default(),
            id: row.id,
            queue: row.queue,
            attempts: row.attempts,
            max_attempts: row.max_attempts,
        }
    }
}

/// apalis stores a result as `{"Err": "message"}`.
fn error_message(last_result: &str) -> String {
    serde_json::from_str::<serde_json::Value>(last_result)
        .ok()
        .and_then(|v| v.get("Err").and_then(|e| e.as_str()).map(str::to_owned))
        .unwrap_or_else(|| last_result.to_owned())
}

const DEAD_SQLITE: &str = "(status = 'Killed' OR (status = 'Failed' AND attempts >= max_attempts))";

pub async fn dead_jobs(
    db: &impl ConnectionTrait,
    queue: Option<&str>,
    limit: u64,
    offset: u64,
) -> Result<(Vec<FailedJob>, u64), DbErr> {
    let rows = FailedRow::find_by_statement(statement(
        db,
        &format!(
            "SELECT id, job_type AS queue, attempts, max_attempts, last_result, done_at AS failed_at, job AS payload
             FROM Jobs WHERE {DEAD_SQLITE} AND (? IS NULL OR job_type = ?)
             ORDER BY done_at DESC, id LIMIT ? OFFSET ?"
        ),
        &format!(
            "SELECT id, job_type AS queue, attempts::bigint, max_attempts::bigint, last_result::text,
                EXTRACT(EPOCH FROM done_at)::bigint AS failed_at, job AS payload
             FROM apalis.jobs WHERE {DEAD_SQLITE} AND ($1::text IS NULL OR job_type = $2)
             ORDER BY done_at DESC, id LIMIT $3 OFFSET $4"
        ),
        vec![queue.into(), queue.into(), (limit as i64).into(), (offset as i64).into()],
    ))
    .all(db)
    .await?;
    #[derive(FromQueryResult)]
    struct Count {
        total: i64,
    }
    let total = Count::find_by_statement(statement(
        db,
        &format!("SELECT COUNT(*) AS total FROM Jobs WHERE {DEAD_SQLITE} AND (? IS NULL OR job_type = ?)"),
        &format!(
            "SELECT COUNT(*) AS total FROM apalis.jobs WHERE {DEAD_SQLITE} AND ($1::text IS NULL OR job_type = $2)"
        ),
        vec![queue.into(), queue.into()],
    ))
    .one(db)
    .await?
    .map_or(0, |c| c.total);
    Ok((rows.into_iter().map(Into::into).collect(), total as u64))
}

/// Puts a dead job back in its queue with fresh attempts; `false` when no dead job has `id`.
pub async fn retry_dead(db: &impl ConnectionTrait, id: &str) -> Result<bool, DbErr> {
    let result = db
        .execute_raw(statement(
            db,
            &format!(
                "UPDATE Jobs SET status = 'Pending', attempts = 0, lock_by = NULL, lock_at = NULL,
                    done_at = NULL, run_at = strftime('%s', 'now') WHERE id = ? AND {DEAD_SQLITE}"
            ),
            &format!(
                "UPDATE apalis.jobs SET status = 'Pending', attempts = 0, lock_by = NULL, lock_at = NULL,
                    done_at = NULL, run_at = NOW() WHERE id = $1 AND {DEAD_SQLITE}"
            ),
            vec![id.into()],
        ))
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Deletes a job that is not running; `false` when there is none.
pub async fn delete_idle(db: &impl ConnectionTrait, id: &str) -> Result<bool, DbErr> {
    let result = db
        .execute_raw(statement(
            db,
            "DELETE FROM Jobs WHERE id = ? AND status NOT IN ('Running', 'Queued')",
            "DELETE FROM apalis.jobs WHERE id = $1 AND status NOT IN ('Running', 'Queued')",
            vec![id.into()],
        ))
        .await?;
    Ok(result.rows_affected() == 1)
}

/// A job's state, attempts and last error (for tests and the CLI).
#[derive(Debug, Clone, Serialize, ToSchema, FromQueryResult)]
pub struct JobStatus {
    pub id: String,
    pub queue: String,
    pub status: String,
    pub attempts: i64,
    pub last_result: Option<String>,
}

pub async fn job_status(db: &impl ConnectionTrait, id: &str) -> Result<Option<JobStatus>, DbErr> {
    JobStatus::find_by_statement(statement(
        db,
        "SELECT id, job_type AS queue, status, attempts, last_result FROM Jobs WHERE id = ?",
        "SELECT id, job_type AS queue, status, attempts::bigint, last_result::text FROM apalis.jobs WHERE id = $1",
        vec![id.into()],
    ))
    .one(db)
    .await
}
