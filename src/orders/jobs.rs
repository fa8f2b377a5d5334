//! Background work of the orders domain.

use serde::{Deserialize, Serialize};

use super::service;
use crate::app::AppState;
use crate::jobs::{Job, JobContext, JobError, Registry};

/// How early a time-out job may start and still wait for its order's due time.
const EARLY_TOLERANCE: std::time::Duration = std::time::Duration::from_secs(5);

/// Cancels an order that is still unpaid when its payment time-out passes, releasing its
/// stock. Queued by checkout to run at the due time; idempotent (see
/// `service::expire_unpaid`), so a repeated delivery finds nothing to do.
#[derive(Debug, Serialize, Deserialize)]
pub struct CancelUnpaidOrder {
    pub order_id: i64,
}

impl Job for CancelUnpaidOrder {
    const NAME: &'static str = "cancel_unpaid_order";

    async fn run(self, state: AppState, _: JobContext) -> Result<(), JobError> {
        // The queue keeps run times in whole seconds, so a job may start just before its
        // order is due: wait out the rest rather than finish having done nothing.
        let due = service::payment_due_at(&state, self.order_id)
            .await
            .map_err(|e| JobError::new(e.problem().detail))?;
        if let Some(early) = due.and_then(|due| (due - chrono::Utc::now()).to_std().ok()) {
            if early > EARLY_TOLERANCE {
                return Err(JobError::new(format!(
                    "started {early:?} before the order is due"
                )));
            }
            tokio::time::sleep(early).await;
        }
        let cancelled = service::expire_unpaid(&state, self.order_id, chrono::Utc::now())
            .await
            .map_err(|e| JobError::new(e.problem().detail))?;
        if cancelled {
            tracing::info!(order_id = self.order_id, "unpaid order timed out");
        }
        Ok(())
    }
}

pub fn register(registry: &mut Registry) {
    registry.job::<CancelUnpaidOrder>();
}
