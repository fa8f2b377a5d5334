//! The back office's reads of payments and notifications, and its audited writes.

use sea_orm::sea_query::ExprTrait;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::json;

use super::entity::{ledger, notification, payment};
use super::model::{
    NotificationFilter, NotificationView, PaymentDetail, PaymentFilter, PaymentView, RefundView,
};
use super::service;
use crate::app::AppState;
use crate::identity::guard::Principal;
use crate::identity::service::{Actor, audit};
use crate::orders::entity::refund;
use crate::orders::model::{MarkPaid, OrderView};
use crate::orders::service as orders;
use crate::platform::list::{ListParams, Page, SortFields};
use crate::platform::request::RequestMeta;
use crate::platform::{ApiError, ApiResult};

const SORT: SortFields<payment::Column> = SortFields(&[
    ("created_at", payment::Column::CreatedAt),
    ("amount", payment::Column::Amount),
    ("paid_at", payment::Column::PaidAt),
]);

const NOTIFICATION_SORT: SortFields<notification::Column> =
    SortFields(&[("created_at", notification::Column::CreatedAt)]);

pub async fn list(
    state: &AppState,
    params: &ListParams,
    filter: &PaymentFilter,
) -> ApiResult<Page<PaymentView>> {
    let mut spec = params.spec(&SORT)?;
    if spec.order.is_empty() {
        spec.order
            .push((payment::Column::CreatedAt, sea_orm::Order::Desc));
    }
    let mut query = payment::Entity::find();
    if let Some(provider) = &filter.provider {
        query = query.filter(payment::Column::Provider.eq(provider.as_str()));
    }
    if let Some(status) = filter.status {
        query = query.filter(payment::Column::Status.eq(status.as_str()));
    }
    if let Some(order_id) = filter.order_id {
        query = query.filter(payment::Column::OrderId.eq(order_id));
    }
    if let Some(from) = filter.from {
        query = query.filter(payment::Column::CreatedAt.gte(from));
    }
    if let Some(to) = filter.to {
        query = query.filter(payment::Column::CreatedAt.lt(to));
    }
    let page = spec
        .fetch(state.db.reader(), query, payment::Column::Id)
        .await?;
    Ok(page.map(PaymentView::from))
}

/// A payment with its notifications, ledger rows and refunds.
pub async fn detail(state: &AppState, id: i64) -> ApiResult<PaymentDetail> {
    let db = state.db.reader();
    let p = payment::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("payment", id))?;
    let notifications = notification::Entity::find()
        .filter(
            notification::Column::PaymentId
                .eq(p.id)
                .or(notification::Column::PaymentNumber.eq(p.number.as_str())),
        )
        .order_by_asc(notification::Column::Id)
        .all(db)
        .await?;
    let ledger = ledger::Entity::find()
        .filter(ledger::Column::PaymentId.eq(p.id))
        .order_by_asc(ledger::Column::Id)
        .all(db)
        .await?;
    let refunds = refund::Entity::find()
        .filter(refund::Column::PaymentId.eq(p.id))
        .order_by_asc(refund::Column::Id)
        .all(db)
        .await?;
    Ok(PaymentDetail {
        payment: PaymentView::from(p),
        notifications: notifications.into_iter().map(Into::into).collect(),
        ledger: ledger.into_iter().map(Into::into).collect(),
        refunds: refunds.into_iter().map(RefundView::from).collect(),
    })
}

/// Every notification, newest first: forged and unmatched ones included, for staff to see.
pub async fn notifications(
    state: &AppState,
    params: &ListParams,
    filter: &NotificationFilter,
) -> ApiResult<Page<NotificationView>> {
    let mut spec = params.spec(&NOTIFICATION_SORT)?;
    if spec.order.is_empty() {
        spec.order
            .push((notification::Column::CreatedAt, sea_orm::Order::Desc));
    }
    let mut query = notification::Entity::find();
    if let Some(provider) = &filter.provider {
        query = query.filter(notification::Column::Provider.eq(provider.as_str()));
    }
    if let Some(status) = &filter.status {
        query = query.filter(notification::Column::Status.eq(status.as_str()));
    }
    let page = spec
        .fetch(state.db.reader(), query, notification::Column::Id)
        .await?;
    Ok(page.map(NotificationView::from))
}

/// Staff record a bank transfer (or other money received outside a gateway) against an
/// order: the order is paid, the ledger and the security log say who did it and why.
pub async fn record_manual(
    state: &AppState,
    order_id: i64,
    body: &MarkPaid,
    staff: &Principal,
    meta: &RequestMeta,
) -> ApiResult<OrderView> {
    let reference = body.reference.trim();
    if reference.is_empty() || reference.len() > 200 {
        return Err(ApiError::invalid("reference", "1 to 200 characters"));
    }
    let proof = body
        .proof
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty());
    if proof.is_some_and(|p| p.len() > 2000) {
        return Err(ApiError::invalid("proof", "at most 2000 characters"));
    }
    let txn = state.db.begin().await?;
    let (p, captured) =
        service::record_manual(&txn, order_id, reference, proof, staff.staff_id).await?;
    if captured != service::Captured::Duplicate {
        audit(
            &txn,
            &Actor::staff(staff, meta),
            "payment.manual_recorded",
            Some(format!("order:{order_id}")),
            json!({
                "payment": p.number,
                "amount": p.amount,
                "currency": p.currency,
                "reference": reference,
                "proof": proof,
            }),
        )
        .await?;
    }
    let o = orders::lock(&txn, order_id).await?;
    let view = orders::view(&txn, o).await?;
    txn.commit().await?;
    Ok(view)
}
