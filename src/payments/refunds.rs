//! Refunds: from returns and cancellations (created pending, carried out by staff) and
//! from staff directly. Each has its own number, which the gateways treat as the refund's
//! idempotency key, so a refund re-sent after a time-out or a crash returns money once.

use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::json;

use super::entity::payment;
use super::gateway::{GatewayError, RefundRequest, TradeState};
use super::model::{PaymentStatus, RefundFilter, RefundView};
use super::notifications::Outcome;
use super::service;
use crate::app::AppState;
use crate::orders::entity::refund;
use crate::orders::service::{self as orders, By};
use crate::platform::list::{ListParams, Page, SortFields};
use crate::platform::{ApiError, ApiResult};
use crate::system::model::PaymentProvider;

pub async fn lock_by_number(
    db: &impl ConnectionTrait,
    number: &str,
) -> ApiResult<Option<refund::Model>> {
    Ok(refund::Entity::find()
        .filter(refund::Column::Number.eq(number))
        .lock_exclusive()
        .one(db)
        .await?)
}

async fn lock(db: &impl ConnectionTrait, id: i64) -> ApiResult<refund::Model> {
    refund::Entity::find_by_id(id)
        .lock_exclusive()
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("refund", id))
}

/// Records the gateway's (or staff's) word on a refund, once: a succeeded refund writes
/// the ledger's money-out row and raises the payment's refunded amount.
pub async fn settle(
    db: &impl ConnectionTrait,
    r: &refund::Model,
    state: TradeState,
    gateway_reference: Option<&str>,
    amount: Option<i64>,
) -> ApiResult<Outcome> {
    if r.status == "succeeded" {
        return Ok(Outcome::Duplicate);
    }
    match state {
        TradeState::Pending => {
            if gateway_reference.is_some() && r.gateway_reference.is_none() {
                update(db, r, |a| {
                    a.gateway_reference = Set(gateway_reference.map(str::to_owned));
                })
                .await?;
            }
            Ok(Outcome::Ignored)
        }
        TradeState::Failed | TradeState::Closed => {
            update(db, r, |a| {
                a.status = Set("failed".into());
                a.failure = Set(Some("the gateway did not carry the refund out".into()));
            })
            .await?;
            Ok(Outcome::Applied)
        }
        TradeState::Succeeded => {
            if amount.is_some_and(|a| a != r.amount) {
                tracing::warn!(refund = ?r.number, ?amount, expected = r.amount, "refund amount differs");
                update(db, r, |a| {
                    a.failure = Set(Some(format!(
                        "the gateway reports {} refunded, not {}",
                        amount.unwrap_or_default(),
                        r.amount
                    )));
                })
                .await?;
                return Ok(Outcome::Review);
            }
            let payment_id = r
                .payment_id
                .ok_or_else(|| ApiError::internal("a refund in progress without its payment"))?;
            let p = payment::Entity::find_by_id(payment_id)
                .lock_exclusive()
                .one(db)
                .await?
                .ok_or_else(|| ApiError::internal("a refund's payment vanished"))?;
            let reference = r.number.clone().unwrap_or_else(|| r.id.to_string());
            if !service::record_money(db, &p, "refund", -r.amount, &reference, r.staff_id).await? {
                return Ok(Outcome::Duplicate);
            }
            payment::Entity::update_many()
                .col_expr(
                    payment::Column::RefundedAmount,
                    Expr::col(payment::Column::RefundedAmount).add(r.amount),
                )
                .col_expr(
                    payment::Column::Version,
                    Expr::col(payment::Column::Version).add(1),
                )
                .col_expr(payment::Column::UpdatedAt, Expr::value(Utc::now()))
                .filter(payment::Column::Id.eq(p.id))
                .exec(db)
                .await?;
            let now = Utc::now();
            update(db, r, |a| {
                a.status = Set("succeeded".into());
                a.refunded_at = Set(Some(now));
                a.failure = Set(None);
                if gateway_reference.is_some() {
                    a.gateway_reference = Set(gateway_reference.map(str::to_owned));
                }
            })
            .await?;
            orders::record(
                db,
                r.order_id,
                "refunded",
                None,
                &By {
                    staff_id: r.staff_id,
                    customer_id: None,
                },
                json!({ "refund": reference, "amount": r.amount, "payment": p.number }),
            )
            .await?;
            Ok(Outcome::Applied)
        }
    }
}

async fn update(
    db: &impl ConnectionTrait,
    r: &refund::Model,
    change: impl FnOnce(&mut refund::ActiveModel),
) -> ApiResult<refund::Model> {
    let mut active = refund::ActiveModel {
        id: Set(r.id),
        version: Set(r.version + 1),
        updated_at: Set(Utc::now()),
        ..Default::default()
    };
    change(&mut active);
    Ok(refund::Entity::update(active).exec(db).await?)
}

/// What a payment can still give back: its amount less what is refunded or on the way.
async fn refundable(db: &impl ConnectionTrait, p: &payment::Model) -> ApiResult<i64> {
    let in_flight: i64 = refund::Entity::find()
        .filter(refund::Column::PaymentId.eq(p.id))
        .filter(refund::Column::Status.eq("processing"))
        .all(db)
        .await?
        .iter()
        .map(|r| r.amount)
        .sum();
    Ok(p.amount - p.refunded_amount - in_flight)
}

/// Staff refund part or all of an order's payments.
pub async fn create(
    state: &AppState,
    order_id: i64,
    amount: i64,
    reason: &str,
    staff_id: i64,
    reference: Option<&str>,
) -> ApiResult<RefundView> {
    if amount <= 0 {
        return Err(ApiError::invalid("amount", "must be positive"));
    }
    if reason.trim().is_empty() || reason.len() > 500 {
        return Err(ApiError::invalid("reason", "1 to 500 characters"));
    }
    let txn = state.db.begin().await?;
    let o = orders::lock(&txn, order_id).await?;
    let now = Utc::now();
    let created = refund::Entity::insert(refund::ActiveModel {
        order_id: Set(o.id),
        amount: Set(amount),
        currency: Set(o.currency.clone()),
        status: Set("pending".into()),
        reason: Set(reason.trim().to_owned()),
        staff_id: Set(Some(staff_id)),
        number: Set(Some(service::new_number())),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec_with_returning(&txn)
    .await?;
    txn.commit().await?;
    execute(state, created.id, staff_id, reference).await
}

/// Carries out a pending (or failed) refund: picks the payment it comes from, marks it
/// processing, and asks the gateway. Money paid outside a gateway is refunded by staff
/// outside it too, and recorded here with the transfer's reference.
pub async fn execute(
    state: &AppState,
    refund_id: i64,
    staff_id: i64,
    reference: Option<&str>,
) -> ApiResult<RefundView> {
    let txn = state.db.begin().await?;
    let r = lock(&txn, refund_id).await?;
    if !matches!(r.status.as_str(), "pending" | "failed") {
        return Err(ApiError::conflict(
            "invalid-refund-status",
            format!(
                "refund {refund_id} is {}; only pending or failed refunds are carried out",
                r.status
            ),
        ));
    }
    let p = source_payment(&txn, &r).await?;
    let provider = PaymentProvider::parse(&p.provider).unwrap_or(PaymentProvider::Manual);
    let offline = matches!(
        provider,
        PaymentProvider::Manual | PaymentProvider::CashOnDelivery
    );
    let reference = reference.map(str::trim).filter(|r| !r.is_empty());
    if offline && reference.is_none() {
        return Err(ApiError::invalid(
            "reference",
            "money paid outside a gateway is returned outside it: give the transfer's reference",
        ));
    }
    let number = r.number.clone().unwrap_or_else(service::new_number);
    let r = update(&txn, &r, |a| {
        a.status = Set("processing".into());
        a.payment_id = Set(Some(p.id));
        a.number = Set(Some(number.clone()));
        a.staff_id = Set(Some(staff_id));
        a.failure = Set(None);
    })
    .await?;
    if offline {
        settle(&txn, &r, TradeState::Succeeded, reference, Some(r.amount)).await?;
        let r = lock(&txn, r.id).await?;
        txn.commit().await?;
        return Ok(RefundView::from(r));
    }
    txn.commit().await?;
    send(state, &r, &p).await
}

/// The order's payment this refund comes from: its own, or the one with most left.
async fn source_payment(db: &impl ConnectionTrait, r: &refund::Model) -> ApiResult<payment::Model> {
    let candidates = match r.payment_id {
        Some(id) => payment::Entity::find_by_id(id).all(db).await?,
        None => {
            payment::Entity::find()
                .filter(payment::Column::OrderId.eq(r.order_id))
                .filter(payment::Column::Status.is_in([
                    PaymentStatus::Succeeded.as_str(),
                    PaymentStatus::Review.as_str(),
                ]))
                .filter(payment::Column::PaidAt.is_not_null())
                .order_by_asc(payment::Column::Id)
                .all(db)
                .await?
        }
    };
    let mut best: Option<(i64, payment::Model)> = None;
    for p in candidates {
        if p.paid_at.is_none() {
            continue;
        }
        let left = refundable(db, &p).await?;
        if best.as_ref().is_none_or(|(most, _)| left > *most) {
            best = Some((left, p));
        }
    }
    match best {
        Some((left, p)) if left >= r.amount => {
            // Lock it so two refunds cannot both take the last of it.
            Ok(payment::Entity::find_by_id(p.id)
                .lock_exclusive()
                .one(db)
                .await?
                .unwrap_or(p))
        }
        Some((left, _)) => Err(ApiError::conflict(
            "refund-exceeds-payment",
            format!(
                "{} can still be refunded from the order's payment; {} was asked",
                Ord::max(left, 0),
                r.amount
            ),
        )),
        None => Err(ApiError::conflict(
            "nothing-to-refund",
            "the order has no received payment to refund from",
        )),
    }
}

/// Sends a processing refund to its gateway and records the answer. Safe to repeat: the
/// gateway refunds once per refund number.
async fn send(state: &AppState, r: &refund::Model, p: &payment::Model) -> ApiResult<RefundView> {
    let provider = PaymentProvider::parse(&p.provider).unwrap_or(PaymentProvider::Manual);
    let gateway = state.gateways.get(provider).cloned().ok_or_else(|| {
        ApiError::conflict(
            "provider-unavailable",
            format!("the {} gateway is not configured", p.provider),
        )
    })?;
    let number = r.number.clone().unwrap_or_default();
    let request = RefundRequest {
        payment_number: p.number.clone(),
        gateway_reference: p.gateway_reference.clone(),
        refund_number: number,
        amount: r.amount,
        payment_amount: p.amount,
        currency: r.currency.clone(),
        reason: r.reason.clone(),
        notify_url: service::notify_url(state, provider),
    };
    let answer = gateway.refund(&request).await;
    let txn = state.db.begin().await?;
    let current = lock(&txn, r.id).await?;
    let failure = match answer {
        Ok(outcome) => {
            settle(
                &txn,
                &current,
                outcome.state,
                outcome.gateway_reference.as_deref(),
                None,
            )
            .await?;
            None
        }
        Err(GatewayError::Refused(reason)) => {
            update(&txn, &current, |a| {
                a.status = Set("failed".into());
                a.failure = Set(Some(reason.clone()));
            })
            .await?;
            Some(GatewayError::Refused(reason))
        }
        // Not known to have failed: stays processing, and the reconciler asks again.
        Err(err) => {
            update(&txn, &current, |a| {
                a.failure = Set(Some(err.to_string()));
            })
            .await?;
            None
        }
    };
    let r = lock(&txn, r.id).await?;
    txn.commit().await?;
    match failure {
        Some(err) => Err(service::gateway_problem(&err)),
        None => Ok(RefundView::from(r)),
    }
}

/// Re-sends refunds still processing since before `older_than` (the gateway timed out,
/// or its notification never came). Returns how many were re-sent.
pub async fn resend_stale(state: &AppState, older_than: DateTime<Utc>) -> ApiResult<usize> {
    let stale = refund::Entity::find()
        .filter(refund::Column::Status.eq("processing"))
        .filter(refund::Column::UpdatedAt.lt(older_than))
        .order_by_asc(refund::Column::Id)
        .limit(100)
        .all(state.db.writer())
        .await?;
    let mut sent = 0;
    for r in stale {
        let Some(p) = payment::Entity::find_by_id(r.payment_id.unwrap_or_default())
            .one(state.db.writer())
            .await?
        else {
            continue;
        };
        if let Err(err) = send(state, &r, &p).await {
            tracing::warn!(refund = ?r.number, error = %err.problem().detail, "refund re-send failed");
        }
        sent += 1;
    }
    Ok(sent)
}

/// Refunds, newest first.
pub async fn list(
    state: &AppState,
    params: &ListParams,
    filter: &RefundFilter,
) -> ApiResult<Page<RefundView>> {
    let mut spec = params.spec(&SORT)?;
    if spec.order.is_empty() {
        spec.order.push((refund::Column::Id, sea_orm::Order::Desc));
    }
    let mut query = refund::Entity::find();
    if let Some(status) = &filter.status {
        query = query.filter(refund::Column::Status.eq(status.as_str()));
    }
    if let Some(order_id) = filter.order_id {
        query = query.filter(refund::Column::OrderId.eq(order_id));
    }
    let page = spec
        .fetch(state.db.reader(), query, refund::Column::Id)
        .await?;
    Ok(page.map(RefundView::from))
}

const SORT: SortFields<refund::Column> = SortFields(&[
    ("created_at", refund::Column::CreatedAt),
    ("amount", refund::Column::Amount),
]);
