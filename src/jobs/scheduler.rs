//! The cron scheduler. Every instance runs it; each tick is queued with the idempotency key
//! `<schedule>@<tick>`, and the queue's unique index on it admits one job per tick, so a
//! tick fires once however many schedulers run.

use std::str::FromStr;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{heartbeat, store};
use crate::app::AppState;

/// A schedule as configured: its cron expression, or disabled.
pub struct Planned {
    pub name: &'static str,
    pub job_name: &'static str,
    pub cron: cron::Schedule,
    pub expression: String,
}

/// The enabled schedules with their effective cron expressions; a bad expression is an
/// error naming its configuration key.
pub fn plan(state: &AppState) -> anyhow::Result<Vec<Planned>> {
    let mut planned = Vec::new();
    for schedule in state.jobs.schedules() {
        let configured = state.config.jobs.schedules.get(schedule.name);
        if configured.is_some_and(|c| !c.enabled) {
            continue;
        }
        let expression = configured
            .and_then(|c| c.cron.clone())
            .unwrap_or_else(|| schedule.default_cron.to_owned());
        let cron = cron::Schedule::from_str(&expression).map_err(|e| {
            anyhow::anyhow!(
                "invalid configuration: jobs.schedules.{}.cron: {expression:?}: {e}",
                schedule.name
            )
        })?;
        planned.push(Planned {
            name: schedule.name,
            job_name: schedule.job_name,
            cron,
            expression,
        });
    }
    Ok(planned)
}

/// Running schedule loops; `stop` ends them.
pub struct Scheduler {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Scheduler {
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

pub fn start(state: &AppState) -> anyhow::Result<Scheduler> {
    let (stop, stopped) = watch::channel(false);
    let mut tasks = Vec::new();
    for planned in plan(state)? {
        let state = state.clone();
        let mut stopped = stopped.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let Some(tick) = planned.cron.upcoming(Utc).next() else {
                    return;
                };
                let wait = (tick - Utc::now()).to_std().unwrap_or(Duration::ZERO);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stopped.wait_for(|stop| *stop) => return,
                }
                if let Err(err) = fire(&state, &planned, tick).await {
                    tracing::error!(schedule = planned.name, error = %err, "cannot queue a scheduled job");
                }
                // Never fire the same tick twice from this loop.
                let left = (tick - Utc::now()).to_std().unwrap_or(Duration::ZERO);
                tokio::time::sleep(left + Duration::from_millis(1)).await;
            }
        }));
    }
    Ok(Scheduler { stop, tasks })
}

/// Queues the tick's job unless another scheduler already did.
async fn fire(
    state: &AppState,
    planned: &Planned,
    tick: chrono::DateTime<Utc>,
) -> anyhow::Result<()> {
    let schedule = state
        .jobs
        .schedules()
        .iter()
        .find(|s| s.name == planned.name)
        .ok_or_else(|| anyhow::anyhow!("schedule {} vanished", planned.name))?;
    let job = state
        .jobs
        .get(planned.job_name)
        .ok_or_else(|| anyhow::anyhow!("job type {} is not registered", planned.job_name))?;
    let txn = state.db.begin().await?;
    let queued = store::enqueue(
        &txn,
        planned.job_name,
        &schedule.payload(),
        job.policy.max_attempts,
        tick,
        Some(format!("{}@{}", planned.name, tick.timestamp())),
    )
    .await?;
    if queued.is_some() {
        heartbeat::record_tick(&txn, planned.name, tick).await?;
        metrics::counter!("jobs_enqueued_total", "queue" => planned.job_name).increment(1);
        tracing::debug!(schedule = planned.name, %tick, "scheduled job queued");
    }
    txn.commit().await?;
    Ok(())
}
