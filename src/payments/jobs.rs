//! Background work of the payments domain.

use serde::{Deserialize, Serialize};

use super::reconcile;
use crate::app::AppState;
use crate::jobs::{Job, JobContext, JobError, Registry};

pub const RECONCILE: &str = "reconcile_payments";

/// Applies stored notifications nobody applied, queries gateways about payments pending
/// longer than `payments.reconcile_after_secs`, and re-sends refunds stuck in progress.
#[derive(Debug, Serialize, Deserialize)]
pub struct ReconcilePayments;

impl Job for ReconcilePayments {
    const NAME: &'static str = RECONCILE;

    async fn run(self, state: AppState, _: JobContext) -> Result<(), JobError> {
        let pass = reconcile::run(&state)
            .await
            .map_err(|e| JobError::new(e.problem().detail))?;
        if pass != reconcile::Pass::default() {
            tracing::info!(?pass, "payments reconciled");
        }
        Ok(())
    }
}

pub fn register(registry: &mut Registry) {
    registry.schedule(RECONCILE, "30 * * * * *", || ReconcilePayments);
}
