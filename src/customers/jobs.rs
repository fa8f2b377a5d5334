//! Background work of the customers domain.

use serde::{Deserialize, Serialize};

use super::service::memberships;
use crate::app::AppState;
use crate::jobs::{Job, JobContext, JobError, Registry};

/// The schedule's name, also its key in `jobs.schedules`.
pub const EXPIRE_MEMBERSHIPS: &str = "expire_memberships";

/// Memberships ended per transaction.
const BATCH: u64 = 200;

/// Ends memberships whose expiry has passed and emails their holders. Idempotent: a
/// repeated or concurrent run finds nothing left to end (see `memberships::expire_due`).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ExpireMemberships;

impl Job for ExpireMemberships {
    const NAME: &'static str = EXPIRE_MEMBERSHIPS;

    async fn run(self, state: AppState, _: JobContext) -> Result<(), JobError> {
        let ended = memberships::expire_due(&state, chrono::Utc::now(), BATCH)
            .await
            .map_err(|e| JobError::new(e.problem().detail))?;
        if ended > 0 {
            tracing::info!(ended, "memberships expired");
        }
        Ok(())
    }
}

pub fn register(registry: &mut Registry) {
    registry.schedule(EXPIRE_MEMBERSHIPS, "0 */5 * * * *", || ExpireMemberships);
}
