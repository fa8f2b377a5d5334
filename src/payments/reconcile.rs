//! Reconciliation: for payments that stay pending, the gateway is asked instead of waiting
//! for a notification that may never come; stored notifications nobody applied are
//! applied; refunds stuck in progress are re-sent (the gateways refund once per number).

use chrono::{Duration, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::entity::payment;
use super::gateway::{GatewayError, Notice, NoticeSubject, TradeState};
use super::model::{PaymentStatus, PaymentView};
use super::{notifications, refunds, service};
use crate::app::AppState;
use crate::orders::entity::order;
use crate::orders::model::OrderStatus;
use crate::orders::service as orders;
use crate::platform::{ApiError, ApiResult};
use crate::system::model::PaymentProvider;

/// What one reconciliation pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub notifications_recovered: usize,
    pub payments_queried: usize,
    pub refunds_resent: usize,
}

/// One pass over everything overdue; the scheduled job runs it every minute.
pub async fn run(state: &AppState) -> ApiResult<Pass> {
    let now = Utc::now();
    let after = Duration::seconds(state.config.payments.reconcile_after_secs as i64);
    let notifications_recovered =
        notifications::recover(state, now - notifications::recovery_grace()).await?;
    let gateway_providers: Vec<&str> = [
        PaymentProvider::Alipay,
        PaymentProvider::WechatPay,
        PaymentProvider::Unionpay,
    ]
    .into_iter()
    .filter(|p| state.gateways.get(*p).is_some())
    .map(PaymentProvider::as_str)
    .collect();
    let overdue = payment::Entity::find()
        .filter(payment::Column::Status.is_in([
            PaymentStatus::Created.as_str(),
            PaymentStatus::Pending.as_str(),
        ]))
        .filter(payment::Column::Provider.is_in(gateway_providers))
        .filter(payment::Column::CreatedAt.lt(now - after))
        .filter(
            Condition::any()
                .add(payment::Column::QueriedAt.is_null())
                .add(payment::Column::QueriedAt.lt(now - after)),
        )
        .order_by_asc(payment::Column::Id)
        .limit(100)
        .all(state.db.writer())
        .await?;
    let mut payments_queried = 0;
    for p in overdue {
        match reconcile(state, &p).await {
            Ok(()) => payments_queried += 1,
            Err(err) => {
                tracing::warn!(payment = %p.number, error = %err.problem().detail, "reconciliation failed")
            }
        }
    }
    let refunds_resent = refunds::resend_stale(state, now - after).await?;
    Ok(Pass {
        notifications_recovered,
        payments_queried,
        refunds_resent,
    })
}

/// Staff ask the gateway about one payment now.
pub async fn query_now(state: &AppState, id: i64) -> ApiResult<PaymentView> {
    let p = payment::Entity::find_by_id(id)
        .one(state.db.writer())
        .await?
        .ok_or_else(|| ApiError::not_found("payment", id))?;
    reconcile(state, &p).await?;
    let p = payment::Entity::find_by_id(id)
        .one(state.db.writer())
        .await?
        .ok_or_else(|| ApiError::not_found("payment", id))?;
    Ok(PaymentView::from(p))
}

/// Queries the payment's gateway and applies the answer like a notification; a trade
/// still unpaid whose order is gone is closed at the gateway so it can no longer be paid.
async fn reconcile(state: &AppState, p: &payment::Model) -> ApiResult<()> {
    let provider = PaymentProvider::parse(&p.provider).unwrap_or(PaymentProvider::Manual);
    let gateway = state.gateways.get(provider).cloned().ok_or_else(|| {
        ApiError::conflict(
            "not-a-gateway-payment",
            format!("payment {} is not with a configured gateway", p.number),
        )
    })?;
    let status = gateway
        .query(&p.number)
        .await
        .map_err(|e| service::gateway_problem(&e))?;
    let o = order::Entity::find_by_id(p.order_id)
        .one(state.db.writer())
        .await?;
    let order_gone = o
        .as_ref()
        .is_none_or(|o| orders::status_of(o) == OrderStatus::Cancelled);
    let mut closed_at_gateway = false;
    if status.state == TradeState::Pending && order_gone {
        match gateway.close(&p.number).await {
            // A gateway without a close call (UnionPay), or that never saw the trade (an
            // Alipay cashier page nobody opened), lets it lapse at its expiry; should it be
            // paid before then, the capture finds the order cancelled and books a refund.
            Ok(()) | Err(GatewayError::Unsupported(_) | GatewayError::Refused(_)) => {
                closed_at_gateway = true
            }
            Err(err) => {
                tracing::warn!(payment = %p.number, error = %err, "cannot close the trade")
            }
        }
    }
    let txn = state.db.begin().await?;
    let Some(current) = service::lock_by_number(&txn, &p.number).await? else {
        return Ok(());
    };
    let state_to_apply = if closed_at_gateway {
        TradeState::Closed
    } else {
        status.state
    };
    if state_to_apply != TradeState::Pending {
        let notice = Notice {
            subject: NoticeSubject::Payment,
            number: p.number.clone(),
            gateway_reference: status.gateway_reference.clone(),
            state: state_to_apply,
            amount: status.amount.unwrap_or(p.amount),
            currency: status
                .currency
                .clone()
                .unwrap_or_else(|| p.currency.clone()),
        };
        notifications::apply(&txn, &notice).await?;
    }
    let current = service::lock_by_number(&txn, &current.number)
        .await?
        .unwrap_or(current);
    service::update(&txn, &current, |a| a.queried_at = Set(Some(Utc::now()))).await?;
    txn.commit().await?;
    Ok(())
}
