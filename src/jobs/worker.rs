//! Worker processes: one apalis worker per job type over the database queue, each running
//! the registered handler with its timeout, back-off and metrics.

use std::sync::Arc;
use std::time::{Duration, Instant};

use apalis::prelude::{
    Attempt, BackendExt, BoxDynError, Data, Monitor, TaskId, WorkerBuilder, WorkerBuilderExt,
};
use chrono::Utc;
use futures::FutureExt;
use sea_orm::DbBackend;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{JobError, JobType, store};
use crate::app::AppState;

/// Which queues a worker process serves, and how many jobs of each at once.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// `None` serves every registered job type.
    pub queues: Option<Vec<String>>,
    pub concurrency: usize,
}

/// A running pool of workers; `stop` drains it.
pub struct WorkerPool {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    grace: Duration,
}

impl WorkerPool {
    /// Stops fetching, lets running jobs finish within the grace period; jobs fetched but
    /// not started go back to the queue.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(self.grace + Duration::from_secs(1), &mut self.task)
            .await
            .is_err()
        {
            tracing::warn!("job workers outlived the shutdown grace period");
            self.task.abort();
        }
    }
}

#[derive(Clone)]
struct Runner {
    state: AppState,
    job: Arc<JobType>,
}

/// Runs one delivery of a job: decode, run under the type's timeout, record the outcome.
async fn run_job(
    payload: serde_json::Value,
    runner: Data<Runner>,
    id: TaskId,
    attempt: Attempt,
) -> Result<(), BoxDynError> {
    let Runner { state, job } = (*runner).clone();
    let attempt = u32::try_from(attempt.current()).unwrap_or(u32::MAX).max(1);
    let labels = [("queue", job.name.to_owned())];
    let started = Instant::now();
    let context = super::JobContext {
        attempt,
        last_attempt: attempt >= job.policy.max_attempts,
    };
    let outcome = tokio::time::timeout(
        job.policy.timeout,
        std::panic::AssertUnwindSafe(job.run(state.clone(), payload, context)).catch_unwind(),
    )
    .await;
    let result = match outcome {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(JobError::new("the job panicked")),
        Err(_) => Err(JobError(format!(
            "timed out after {:?}",
            job.policy.timeout
        ))),
    };
    metrics::histogram!("job_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
    match result {
        Ok(()) => {
            metrics::counter!("jobs_succeeded_total", &labels).increment(1);
            Ok(())
        }
        Err(err) => {
            metrics::counter!("jobs_failed_total", &labels).increment(1);
            if attempt < job.policy.max_attempts {
                metrics::counter!("jobs_retried_total", &labels).increment(1);
                let delay = job.policy.delay_after(attempt);
                let run_at = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
                if let Err(db) = store::defer(state.db.writer(), &id.to_string(), run_at).await {
                    tracing::error!(error = %db, "cannot schedule the retry");
                }
                tracing::warn!(queue = job.name, %id, attempt, error = %err, ?delay, "job failed; will retry");
            } else {
                tracing::error!(queue = job.name, %id, attempt, error = %err, "job failed for the last time");
            }
            Err(err.into())
        }
    }
}

/// Starts workers for the registered job types (all, or those in `options.queues`).
pub fn start(state: &AppState, options: &WorkerOptions) -> anyhow::Result<WorkerPool> {
    let config = &state.config.jobs;
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    let poll = Duration::from_millis(config.poll_interval_ms);
    let heartbeat = Duration::from_secs(config.heartbeat_secs);
    let concurrency = options.concurrency.max(1);
    let instance = format!("{}-{}", std::process::id(), ulid::Ulid::generate());
    let mut monitor = Monitor::new()
        .should_restart(|_, err| {
            tracing::error!(error = %err, "job worker stopped; restarting");
            true
        })
        .shutdown_timeout(grace);
    let mut count = 0;
    for job in state.jobs.types() {
        if let Some(queues) = &options.queues
            && !queues.iter().any(|q| q == job.name)
        {
            continue;
        }
        count += 1;
        let runner = Runner {
            state: state.clone(),
            job: job.clone(),
        };
        let name = format!("{}@{instance}", job.name);
        let queue = job.name;
        // The two storages have the same configuration API but distinct types.
        macro_rules! register {
            ($storage:ty, $config:ty, $pool:expr) => {{
                let pool = $pool.clone();
                monitor = monitor.register(move |_| {
                    let storage = <$storage>::new(&pool)
                        .with_config(
                            <$config>::default()
                                .queue(queue)
                                .batch_size(concurrency)
                                .heartbeat_interval(heartbeat),
                        )
                        .poll_with_interval(poll);
                    WorkerBuilder::new(name.clone())
                        .backend(storage)
                        .concurrency(concurrency)
                        .data(runner.clone())
                        .build(run_job)
                });
            }};
        }
        match state.db.backend() {
            DbBackend::Postgres => register!(
                apalis_postgres::PostgresStorage<serde_json::Value>,
                apalis_postgres::Config,
                state.db.writer().get_postgres_connection_pool()
            ),
            _ => register!(
                apalis_sqlite::SqliteStorage<serde_json::Value>,
                apalis_sqlite::Config,
                state.db.writer().get_sqlite_connection_pool()
            ),
        }
    }
    anyhow::ensure!(
        count > 0,
        "no registered job type matches {:?}",
        options.queues
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let signal = async move {
            let _ = stopped.await;
            Ok(())
        };
        if let Err(err) = monitor.run_with_signal(signal).await {
            tracing::error!(error = %err, "job workers stopped with an error");
        }
    });
    tracing::info!(workers = count, concurrency, "job workers started");
    Ok(WorkerPool {
        stop: Some(stop),
        task,
        grace,
    })
}
