//! The back office's side: payment history, notifications, manual payments, refunds.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;

use crate::app::AppState;
use crate::identity::guard::CurrentStaff;
use crate::orders::model::{MarkPaid, OrderView};
use crate::payments::model::{
    CreateRefund, ExecuteRefund, NotificationFilter, NotificationView, PaymentDetail,
    PaymentFilter, PaymentView, RefundFilter, RefundView,
};
use crate::payments::{admin, reconcile, refunds};
use crate::platform::extract::{self, Query};
use crate::platform::list::{ListParams, Page};
use crate::platform::request::RequestMeta;
use crate::platform::{ApiError, ApiResult, idempotency};

/// Payments, newest first; filter by provider, status, order and dates.
#[utoipa::path(get, path = "/payments", tag = "payments", params(ListParams, PaymentFilter),
    responses((status = 200, body = Page<PaymentView>)))]
pub async fn list_payments(
    State(state): State<AppState>,
    Query(list): Query<ListParams>,
    Query(filter): Query<PaymentFilter>,
) -> ApiResult<Json<Page<PaymentView>>> {
    Ok(Json(admin::list(&state, &list, &filter).await?))
}

/// A payment with its notifications (raw bodies included), ledger rows and refunds.
#[utoipa::path(get, path = "/payments/{id}", tag = "payments", params(("id" = i64, Path)),
    responses((status = 200, body = PaymentDetail), (status = 404)))]
pub async fn get_payment(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<PaymentDetail>> {
    Ok(Json(admin::detail(&state, id).await?))
}

/// Asks the gateway now how the payment stands, and applies the answer (as the
/// reconciler does for payments pending too long).
#[utoipa::path(post, path = "/payments/{id}/query", tag = "payments", params(("id" = i64, Path)),
    responses((status = 200, body = PaymentView), (status = 404),
        (status = 502, description = "The gateway could not be reached")))]
pub async fn query_payment(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<PaymentView>> {
    Ok(Json(reconcile::query_now(&state, id).await?))
}

/// Every notification received, newest first: rejected and unmatched ones too.
#[utoipa::path(get, path = "/payment-notifications", tag = "payments",
    params(ListParams, NotificationFilter),
    responses((status = 200, body = Page<NotificationView>)))]
pub async fn list_notifications(
    State(state): State<AppState>,
    Query(list): Query<ListParams>,
    Query(filter): Query<NotificationFilter>,
) -> ApiResult<Json<Page<NotificationView>>> {
    Ok(Json(admin::notifications(&state, &list, &filter).await?))
}

/// Refunds, newest first: those waiting for staff (from returns and cancellations), in
/// progress at the gateway, done or failed.
#[utoipa::path(get, path = "/refunds", tag = "payments", params(ListParams, RefundFilter),
    responses((status = 200, body = Page<RefundView>)))]
pub async fn list_refunds(
    State(state): State<AppState>,
    Query(list): Query<ListParams>,
    Query(filter): Query<RefundFilter>,
) -> ApiResult<Json<Page<RefundView>>> {
    Ok(Json(refunds::list(&state, &list, &filter).await?))
}

/// Refunds part or all of what the order paid, through the gateway it was paid with.
/// Requires `Idempotency-Key`: a retried request does not refund twice.
#[utoipa::path(post, path = "/orders/{id}/refunds", tag = "payments",
    params(("id" = i64, Path),
        ("Idempotency-Key" = String, Header, description = "Required; one per refund")),
    request_body = CreateRefund,
    responses((status = 200, body = RefundView),
        (status = 409, description = "More than the order's payments can still refund"),
        (status = 502, description = "The gateway refused the refund")))]
pub async fn refund_order(
    State(state): State<AppState>,
    CurrentStaff(staff): CurrentStaff,
    Path(id): Path<i64>,
    headers: HeaderMap,
    extract::Json(body): extract::Json<CreateRefund>,
) -> ApiResult<Json<RefundView>> {
    if !headers.contains_key(idempotency::HEADER) {
        return Err(ApiError::bad_request(
            "a refund needs an Idempotency-Key header, so that a retried request cannot refund twice",
        )
        .with_code("idempotency-key-required"));
    }
    Ok(Json(
        refunds::create(
            &state,
            id,
            body.amount,
            &body.reason,
            staff.staff_id,
            body.reference.as_deref(),
        )
        .await?,
    ))
}

/// Carries out a pending refund (from a return or a cancelled paid order), or retries a
/// failed one.
#[utoipa::path(post, path = "/refunds/{id}/execute", tag = "payments", params(("id" = i64, Path)),
    request_body = ExecuteRefund,
    responses((status = 200, body = RefundView),
        (status = 409, description = "Not pending, or nothing left to refund"),
        (status = 502, description = "The gateway refused the refund")))]
pub async fn execute_refund(
    State(state): State<AppState>,
    CurrentStaff(staff): CurrentStaff,
    Path(id): Path<i64>,
    extract::Json(body): extract::Json<ExecuteRefund>,
) -> ApiResult<Json<RefundView>> {
    Ok(Json(
        refunds::execute(&state, id, staff.staff_id, body.reference.as_deref()).await?,
    ))
}

/// Records a payment received outside a gateway (bank transfer, pay before shipping), with
/// its reference and proof; audited in the security log.
#[utoipa::path(post, path = "/orders/{id}/mark-paid", tag = "payments", params(("id" = i64, Path)),
    request_body = MarkPaid,
    responses((status = 200, body = OrderView), (status = 409, description = "Not awaiting payment")))]
pub async fn record_manual_payment(
    State(state): State<AppState>,
    CurrentStaff(staff): CurrentStaff,
    Path(id): Path<i64>,
    meta: RequestMeta,
    extract::Json(body): extract::Json<MarkPaid>,
) -> ApiResult<Json<OrderView>> {
    Ok(Json(
        admin::record_manual(&state, id, &body, &staff, &meta).await?,
    ))
}
