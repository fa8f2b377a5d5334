//! The customer's side: paying an order and seeing its payments.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;

use crate::app::AppState;
use crate::identity::guard::CurrentCustomer;
use crate::orders::service as orders;
use crate::payments::model::{PaymentView, StartPayment};
use crate::payments::service;
use crate::platform::extract;
use crate::platform::request::RequestMeta;
use crate::platform::{ApiError, ApiResult, idempotency};

/// Starts paying the order with one of the shop's payment methods and returns what the
/// client needs: a URL or form for the gateway, a QR code, or instructions (bank
/// transfer, cash on delivery). Requires `Idempotency-Key`: a retry gets the same payment.
#[utoipa::path(post, path = "/orders/{number}/payments", tag = "payments",
    params(("number" = String, Path),
        ("Idempotency-Key" = String, Header, description = "Required; one per payment attempt")),
    request_body = StartPayment,
    responses((status = 201, body = PaymentView),
        (status = 400, description = "Idempotency-Key missing"),
        (status = 409, description = "Not awaiting payment, or paid on delivery"),
        (status = 422, description = "Unknown or unavailable payment method or channel"),
        (status = 502, description = "The gateway refused or could not be reached")))]
pub async fn start_payment(
    State(state): State<AppState>,
    CurrentCustomer(customer): CurrentCustomer,
    Path(number): Path<String>,
    meta: RequestMeta,
    headers: HeaderMap,
    extract::Json(mut body): extract::Json<StartPayment>,
) -> ApiResult<impl IntoResponse> {
    if !headers.contains_key(idempotency::HEADER) {
        return Err(ApiError::bad_request(
            "starting a payment needs an Idempotency-Key header, so that a retry cannot open a second payment",
        )
        .with_code("idempotency-key-required"));
    }
    body.client_ip = meta.ip_string();
    let payment = service::start(&state, customer.customer_id, &number, body).await?;
    let location = format!("/api/v1/orders/{number}/payments");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(payment),
    ))
}

/// The order's payments, newest first.
#[utoipa::path(get, path = "/orders/{number}/payments", tag = "payments",
    params(("number" = String, Path)),
    responses((status = 200, body = Vec<PaymentView>), (status = 404)))]
pub async fn order_payments(
    State(state): State<AppState>,
    CurrentCustomer(customer): CurrentCustomer,
    Path(number): Path<String>,
) -> ApiResult<Json<Vec<PaymentView>>> {
    let db = state.db.reader();
    let o = orders::find_for_customer(db, customer.customer_id, &number).await?;
    Ok(Json(
        service::of_order(db, o.id)
            .await?
            .into_iter()
            .map(PaymentView::from)
            .collect(),
    ))
}
