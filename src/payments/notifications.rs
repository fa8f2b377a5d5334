//! Gateway notifications: stored raw first, then verified, then applied once.
//!
//! The raw row commits before anything is believed, so a crash between receiving and
//! applying loses nothing: `recover` (at start-up and from the reconciler) applies what was
//! stored and never processed. Application is idempotent, so the gateway's retries,
//! duplicates sent concurrently and a recovery racing a live request all end in one
//! ledger entry and one paid order.

use chrono::{DateTime, Duration, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::json;

use super::entity::notification;
use super::gateway::{Ack, Forged, Gateway, Incoming, Notice, NoticeSubject, TradeState};
use super::model::PaymentStatus;
use super::{refunds, service};
use crate::app::AppState;
use crate::identity::service::{Actor, audit};
use crate::orders::service::By;
use crate::platform::request::RequestMeta;
use crate::platform::{ApiError, ApiResult};
use crate::system::model::PaymentProvider;

/// Set in the environment, the process stops dead right after storing a notification:
/// how the tests prove a stored notification survives a crash.
pub const CRASH_AFTER_STORE_ENV: &str = "BZR_TEST_CRASH_AFTER_NOTIFICATION_STORED";

/// What became of a notification; stored as its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Moved money or state.
    Applied,
    /// Told us what we knew already.
    Duplicate,
    /// The amount does not match: the payment waits for staff.
    Review,
    /// A state we do not act on (still pending).
    Ignored,
    /// Verified, but names no payment or refund of ours.
    Unmatched,
    /// The signature (or decryption, or freshness) failed.
    Rejected,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Duplicate => "duplicate",
            Self::Review => "review",
            Self::Ignored => "ignored",
            Self::Unmatched => "unmatched",
            Self::Rejected => "rejected",
        }
    }
}

/// Takes a notification from `provider`'s gateway and answers it the way that gateway
/// expects.
pub async fn receive(
    state: &AppState,
    provider: PaymentProvider,
    incoming: Incoming,
    meta: &RequestMeta,
) -> ApiResult<Ack> {
    let gateway = state
        .gateways
        .get(provider)
        .cloned()
        .ok_or_else(|| ApiError::not_found("payment gateway", provider.as_str()))?;
    let stored = notification::Entity::insert(notification::ActiveModel {
        created_at: Set(Utc::now()),
        provider: Set(provider.as_str().into()),
        headers: Set(serde_json::to_string(&incoming.headers).unwrap_or_default()),
        body: Set(incoming.body.clone()),
        remote_ip: Set(meta.ip_string()),
        status: Set("received".into()),
        ..Default::default()
    })
    .exec_with_returning(state.db.writer())
    .await?;
    if std::env::var_os(CRASH_AFTER_STORE_ENV).is_some() {
        tracing::error!(
            id = stored.id,
            "crashing after storing a notification, as asked"
        );
        std::process::abort();
    }
    let outcome = process(state, gateway.as_ref(), &stored, meta).await?;
    Ok(match outcome {
        Outcome::Rejected => gateway.refuse("signature verification failed"),
        _ => gateway.acknowledge(),
    })
}

/// Verifies and applies one stored notification, unless another process did already.
async fn process(
    state: &AppState,
    gateway: &dyn Gateway,
    stored: &notification::Model,
    meta: &RequestMeta,
) -> ApiResult<Outcome> {
    let incoming = Incoming {
        headers: serde_json::from_str(&stored.headers).unwrap_or_default(),
        body: stored.body.clone(),
    };
    let notice = match gateway.verify(&incoming, stored.created_at) {
        Ok(notice) => notice,
        Err(Forged(reason)) => {
            let txn = state.db.begin().await?;
            finish(
                &txn,
                stored.id,
                Outcome::Rejected,
                None,
                None,
                None,
                &reason,
            )
            .await?;
            audit(
                &txn,
                &Actor {
                    principal: None,
                    meta,
                },
                "payment.notification_rejected",
                Some(format!("payment-notification:{}", stored.id)),
                json!({ "provider": stored.provider, "reason": reason }),
            )
            .await?;
            txn.commit().await?;
            tracing::warn!(id = stored.id, provider = %stored.provider, %reason, "payment notification rejected");
            return Ok(Outcome::Rejected);
        }
    };
    let txn = state.db.begin().await?;
    // Claim the row: a concurrent recovery of the same notification finds it processed.
    let claimed = notification::Entity::find_by_id(stored.id)
        .lock_exclusive()
        .one(&txn)
        .await?
        .filter(|n| n.status == "received");
    if claimed.is_none() {
        return Ok(Outcome::Duplicate);
    }
    let (outcome, payment_id, refund_id, detail) = apply(&txn, &notice).await?;
    finish(
        &txn,
        stored.id,
        outcome,
        Some(&notice.number),
        payment_id,
        refund_id,
        &detail,
    )
    .await?;
    txn.commit().await?;
    tracing::info!(id = stored.id, number = %notice.number, outcome = outcome.as_str(), "payment notification");
    Ok(outcome)
}

/// Applies what a verified notification (or a gateway query) says, in one transaction.
pub async fn apply(
    db: &impl ConnectionTrait,
    notice: &Notice,
) -> ApiResult<(Outcome, Option<i64>, Option<i64>, String)> {
    match notice.subject {
        NoticeSubject::Payment => {
            let Some(p) = service::lock_by_number(db, &notice.number).await? else {
                return Ok((Outcome::Unmatched, None, None, "no such payment".into()));
            };
            let by = By::system();
            let (outcome, detail) = match notice.state {
                TradeState::Succeeded => match service::capture(
                    db,
                    &p,
                    notice.gateway_reference.as_deref(),
                    notice.amount,
                    &notice.currency,
                    &by,
                )
                .await?
                {
                    service::Captured::Paid => (Outcome::Applied, "paid".to_owned()),
                    service::Captured::Duplicate => {
                        (Outcome::Duplicate, "already recorded".to_owned())
                    }
                    service::Captured::Review(reason) => (Outcome::Review, reason),
                    service::Captured::Unwanted(reason) => (Outcome::Applied, reason),
                },
                TradeState::Closed | TradeState::Failed
                    if matches!(p.status.as_str(), "created" | "pending") =>
                {
                    let status = if notice.state == TradeState::Closed {
                        PaymentStatus::Closed
                    } else {
                        PaymentStatus::Failed
                    };
                    service::update(db, &p, |a| {
                        a.status = Set(status.as_str().into());
                        a.closed_at = Set(Some(Utc::now()));
                    })
                    .await?;
                    (Outcome::Applied, status.as_str().to_owned())
                }
                _ => (Outcome::Ignored, format!("{:?}", notice.state)),
            };
            Ok((outcome, Some(p.id), None, detail))
        }
        NoticeSubject::Refund => {
            let Some(r) = refunds::lock_by_number(db, &notice.number).await? else {
                return Ok((Outcome::Unmatched, None, None, "no such refund".into()));
            };
            // Not compared with the refund's amount: Alipay reports the total refunded on
            // the trade so far. The refund number identifies what the gateway confirms.
            let outcome = refunds::settle(
                db,
                &r,
                notice.state,
                notice.gateway_reference.as_deref(),
                None,
            )
            .await?;
            Ok((
                outcome,
                r.payment_id,
                Some(r.id),
                format!("{:?}", notice.state),
            ))
        }
    }
}

async fn finish(
    db: &impl ConnectionTrait,
    id: i64,
    outcome: Outcome,
    number: Option<&str>,
    payment_id: Option<i64>,
    refund_id: Option<i64>,
    detail: &str,
) -> ApiResult<()> {
    notification::Entity::update(notification::ActiveModel {
        id: Set(id),
        status: Set(outcome.as_str().into()),
        payment_number: Set(number.map(str::to_owned)),
        payment_id: Set(payment_id),
        refund_id: Set(refund_id),
        outcome: Set(Some(detail.chars().take(500).collect())),
        processed_at: Set(Some(Utc::now())),
        ..Default::default()
    })
    .exec(db)
    .await?;
    Ok(())
}

/// Applies notifications that were stored but never processed (the process died, or the
/// database failed mid-way) and arrived before `older_than`. Returns how many it applied.
pub async fn recover(state: &AppState, older_than: DateTime<Utc>) -> ApiResult<usize> {
    let waiting = notification::Entity::find()
        .filter(notification::Column::Status.eq("received"))
        .filter(notification::Column::CreatedAt.lt(older_than))
        .order_by_asc(notification::Column::Id)
        .limit(500)
        .all(state.db.writer())
        .await?;
    let meta = RequestMeta::default();
    let mut processed = 0;
    for stored in waiting {
        let Some(provider) = PaymentProvider::parse(&stored.provider) else {
            continue;
        };
        let Some(gateway) = state.gateways.get(provider).cloned() else {
            continue;
        };
        process(state, gateway.as_ref(), &stored, &meta).await?;
        processed += 1;
    }
    if processed > 0 {
        tracing::info!(processed, "recovered stored payment notifications");
    }
    Ok(processed)
}

/// How long a notification may sit unprocessed before the reconciler takes it on: long
/// enough that it is not still being handled by the request that stored it.
pub fn recovery_grace() -> Duration {
    Duration::seconds(30)
}
