//! Background jobs on apalis: typed jobs, per-type retry policies, cron schedules, and a
//! queue that lives in the application's database (SQLite file or PostgreSQL), so enqueuing
//! is part of the caller's transaction.
//!
//! Delivery is at least once: a job whose worker dies mid-run is run again after the
//! worker's heartbeat lapses. Every handler is written to be idempotent (see each job).

pub mod heartbeat;
pub mod routes;
pub mod scheduler;
pub mod store;
pub mod worker;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::app::AppState;
use crate::config::Config;
use crate::platform::routing::Permission;

pub const JOBS_READ: Permission = Permission::new(
    "system.jobs.read",
    "View job queues, workers and failed jobs",
);
pub const JOBS_WRITE: Permission =
    Permission::new("system.jobs.write", "Retry and delete failed jobs");

/// How a job type is retried and bounded.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Runs in all, the first included; after the last failure the job is dead.
    pub max_attempts: u32,
    /// Delay before the first retry; it doubles with every further failure.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// A run longer than this fails (and is retried like any failure).
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            backoff: Duration::from_secs(10),
            max_backoff: Duration::from_secs(3600),
            timeout: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The delay after failed run number `attempt` (1-based): exponential, capped.
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.backoff.saturating_mul(factor).min(self.max_backoff)
    }
}

/// Why a run failed; the message is kept as the job's last error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct JobError(pub String);

impl JobError {
    pub fn new(message: impl std::fmt::Display) -> Self {
        Self(message.to_string())
    }
}

impl From<sea_orm::DbErr> for JobError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::new(err)
    }
}

impl From<anyhow::Error> for JobError {
    fn from(err: anyhow::Error) -> Self {
        Self(format!("{err:#}"))
    }
}

/// Which delivery of a job is running.
#[derive(Debug, Clone, Copy)]
pub struct JobContext {
    /// 1 for the first run.
    pub attempt: u32,
    /// No retry follows if this run fails.
    pub last_attempt: bool,
}

/// A kind of background work with a serde payload.
pub trait Job: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The queue name; stable, since queued rows refer to it.
    const NAME: &'static str;

    fn policy(_config: &Config) -> RetryPolicy {
        RetryPolicy::default()
    }

    fn run(
        self,
        state: AppState,
        context: JobContext,
    ) -> impl Future<Output = Result<(), JobError>> + Send;
}

type RunFn = dyn Fn(
        AppState,
        serde_json::Value,
        JobContext,
    ) -> Pin<Box<dyn Future<Output = Result<(), JobError>> + Send>>
    + Send
    + Sync;

/// A registered job type: its policy and how to run a payload.
pub struct JobType {
    pub name: &'static str,
    pub policy: RetryPolicy,
    run: Box<RunFn>,
}

impl JobType {
    pub async fn run(
        &self,
        state: AppState,
        payload: serde_json::Value,
        context: JobContext,
    ) -> Result<(), JobError> {
        (self.run)(state, payload, context).await
    }
}

/// A cron schedule that enqueues a job every tick.
pub struct Schedule {
    pub name: &'static str,
    /// Cron expression with seconds: `sec min hour day month weekday`.
    pub default_cron: &'static str,
    pub job_name: &'static str,
    payload: Box<dyn Fn() -> serde_json::Value + Send + Sync>,
}

impl Schedule {
    pub fn payload(&self) -> serde_json::Value {
        (self.payload)()
    }
}

/// Every job type and schedule of the application, registered by the domains in `catalogue`.
pub struct Registry {
    config: Config,
    types: BTreeMap<&'static str, Arc<JobType>>,
    schedules: Vec<Schedule>,
}

impl Registry {
    pub fn new(config: &Config) -> Self {
        Self {
            config: config.clone(),
            types: BTreeMap::new(),
            schedules: Vec::new(),
        }
    }

    pub fn job<J: Job>(&mut self) -> &mut Self {
        self.types.insert(
            J::NAME,
            Arc::new(JobType {
                name: J::NAME,
                policy: J::policy(&self.config),
                run: Box::new(|state, payload, context| {
                    Box::pin(async move {
                        let job: J = serde_json::from_value(payload)
                            .map_err(|e| JobError(format!("unreadable payload: {e}")))?;
                        job.run(state, context).await
                    })
                }),
            }),
        );
        self
    }

    /// Registers `J` and enqueues `make()` on every tick of `default_cron` (overridable and
    /// disablable in `jobs.schedules.<name>`).
    pub fn schedule<J: Job>(
        &mut self,
        name: &'static str,
        default_cron: &'static str,
        make: fn() -> J,
    ) -> &mut Self {
        self.job::<J>();
        self.schedules.push(Schedule {
            name,
            default_cron,
            job_name: J::NAME,
            payload: Box::new(move || serde_json::to_value(make()).unwrap_or_default()),
        });
        self
    }

    pub fn get(&self, name: &str) -> Option<&Arc<JobType>> {
        self.types.get(name)
    }

    pub fn types(&self) -> impl Iterator<Item = &Arc<JobType>> {
        self.types.values()
    }

    pub fn schedules(&self) -> &[Schedule] {
        &self.schedules
    }
}

/// When and how to queue one job.
#[derive(Debug, Default, Clone)]
pub struct Enqueue {
    /// Not before this instant (default: now).
    pub run_at: Option<chrono::DateTime<chrono::Utc>>,
    /// A second enqueue with the same key for the same job type is dropped.
    pub idempotency_key: Option<String>,
}

/// Queues `job`. Pass the caller's transaction as `db`: the job then exists exactly when
/// the change that asked for it commits. Returns the job id, or `None` when the
/// idempotency key was already used.
pub async fn enqueue<J: Job>(
    db: &impl sea_orm::ConnectionTrait,
    config: &Config,
    job: &J,
    options: Enqueue,
) -> Result<Option<String>, sea_orm::DbErr> {
    let payload = serde_json::to_value(job).map_err(|e| sea_orm::DbErr::Custom(e.to_string()))?;
    let id = store::enqueue(
        db,
        J::NAME,
        &payload,
        J::policy(config).max_attempts,
        options.run_at.unwrap_or_else(chrono::Utc::now),
        options.idempotency_key,
    )
    .await?;
    if id.is_some() {
        metrics::counter!("jobs_enqueued_total", "queue" => J::NAME).increment(1);
    }
    Ok(id)
}

/// The one place domains register their jobs and schedules.
pub fn catalogue(config: &Config) -> Registry {
    let mut registry = Registry::new(config);
    heartbeat::register(&mut registry);
    crate::notify::jobs::register(&mut registry);
    registry.job::<crate::identity::accounts::SendAccountLink>();
    crate::customers::jobs::register(&mut registry);
    crate::catalog::cache::register(&mut registry);
    crate::inventory::jobs::register(&mut registry);
    crate::orders::jobs::register(&mut registry);
    crate::payments::jobs::register(&mut registry);
    registry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RetryPolicy {
            backoff: Duration::from_secs(10),
            max_backoff: Duration::from_secs(60),
            ..Default::default()
        };
        let delays: Vec<u64> = (1..=5).map(|a| policy.delay_after(a).as_secs()).collect();
        assert_eq!(delays, [10, 20, 40, 60, 60]);
    }
}
