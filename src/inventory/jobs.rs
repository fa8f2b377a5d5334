//! The low-stock alert: queued in the transaction of the movement that took available
//! below the safety stock, it emails the staff who look after stock.

use chrono::Utc;
use sea_orm::ConnectionTrait;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{INVENTORY_WRITE, store};
use crate::app::AppState;
use crate::identity::service::staff_emails_with_permission;
use crate::jobs::{Job, JobContext, JobError, Registry, RetryPolicy};
use crate::notify::email::queue_email;

/// Emails every active staff member holding `inventory.write` (and every superuser) that
/// a SKU runs low. At least once: a crash between queueing the emails and finishing the
/// job may send them twice. Nothing is sent when stock was replenished meanwhile.
#[derive(Debug, Serialize, Deserialize)]
pub struct LowStockAlert {
    pub sku_id: i64,
    /// The movement that crossed the safety stock.
    pub movement_id: i64,
}

impl Job for LowStockAlert {
    const NAME: &'static str = "low_stock_alert";

    async fn run(self, state: AppState, _: JobContext) -> Result<(), JobError> {
        let txn = state.db.begin().await?;
        let Some(row) = store::stock_row(&txn, self.sku_id).await? else {
            // The SKU was deleted: nothing to restock.
            return Ok(());
        };
        let available = row.stock.saturating_sub(row.reserved);
        if row.always_available || available >= row.safety_stock {
            return Ok(());
        }
        let recipients = staff_emails_with_permission(&txn, INVENTORY_WRITE.name)
            .await
            .map_err(|e| JobError::new(e.problem().detail))?;
        let context = json!({
            "shop": state.config.shop.name,
            "sku_code": row.code,
            "product_title": row.product_title,
            "available": available,
            "safety_stock": row.safety_stock,
            "reorder_qty": row.reorder_qty,
        });
        for to in &recipients {
            queue_email(&txn, &state.config, to, "low_stock", &context)
                .await
                .map_err(|e| JobError::new(e.problem().detail))?;
        }
        txn.commit().await?;
        tracing::info!(sku = %row.code, available, recipients = recipients.len(), "low-stock alert");
        Ok(())
    }
}

/// Queues the alert in the caller's transaction; keyed by the movement, so one crossing
/// alerts once however often the transaction's statements are retried.
pub(super) async fn queue_low_stock_alert(
    db: &impl ConnectionTrait,
    sku_id: i64,
    movement_id: i64,
) -> Result<(), sea_orm::DbErr> {
    let job = LowStockAlert {
        sku_id,
        movement_id,
    };
    let payload = serde_json::to_value(&job).map_err(|e| sea_orm::DbErr::Custom(e.to_string()))?;
    // `jobs::enqueue` wants the configuration only for the retry policy, and this job's
    // is the default one; the movement functions run without the application state.
    crate::jobs::store::enqueue(
        db,
        LowStockAlert::NAME,
        &payload,
        RetryPolicy::default().max_attempts,
        Utc::now(),
        Some(format!("low-stock:{sku_id}:{movement_id}")),
    )
    .await?;
    Ok(())
}

pub fn register(registry: &mut Registry) {
    registry.job::<LowStockAlert>();
}
