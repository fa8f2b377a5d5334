//! What the gateways call: asynchronous notifications and the customer's browser coming
//! back from the cashier.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::payments::entity::payment;
use crate::payments::gateway::Incoming;
use crate::payments::model::PaymentStatus;
use crate::payments::notifications;
use crate::platform::request::RequestMeta;
use crate::platform::{ApiError, ApiResult};
use crate::system::model::PaymentProvider;

fn provider_of(name: &str) -> ApiResult<PaymentProvider> {
    PaymentProvider::parse(name)
        .filter(|p| !matches!(p, PaymentProvider::Manual | PaymentProvider::CashOnDelivery))
        .ok_or_else(|| ApiError::not_found("payment gateway", name))
}

/// A gateway's asynchronous notification. Stored as received, then verified with the
/// gateway's public key and applied once; answered the way that gateway expects
/// (`success` for Alipay, `ok` for UnionPay, an empty 200 for WeChat Pay). Forged ones
/// are refused and written to the security log.
#[utoipa::path(post, path = "/payments/notify/{provider}", tag = "payments",
    params(("provider" = String, Path, description = "alipay, wechat_pay or unionpay")),
    request_body(content = String, description = "The gateway's notification, as it sends it"),
    responses((status = 200, description = "Taken (the gateway's own success answer)"),
        (status = 400, description = "Refused: the signature does not verify"),
        (status = 404, description = "No such gateway is configured")))]
pub async fn notify(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    meta: RequestMeta,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let provider = provider_of(&provider)?;
    let body = String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::bad_request("the notification is not UTF-8"))?;
    let incoming = Incoming {
        headers: headers
            .iter()
            .filter_map(|(name, value)| {
                value
                    .to_str()
                    .ok()
                    .map(|v| (name.as_str().to_owned(), v.to_owned()))
            })
            .collect(),
        body,
    };
    let ack = notifications::receive(&state, provider, incoming, &meta).await?;
    Ok((
        StatusCode::from_u16(ack.status).unwrap_or(StatusCode::OK),
        [(header::CONTENT_TYPE, ack.content_type)],
        ack.body,
    )
        .into_response())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReturnedPayment {
    pub number: String,
    pub order_id: i64,
    /// As Bazaar knows it: `succeeded` only once a notification or query confirmed it.
    pub status: PaymentStatus,
}

/// The customer's browser back from the gateway's cashier. The signed query string is
/// verified, but never trusted to mark anything paid: the answer is the payment's state
/// as notifications and queries established it.
#[utoipa::path(get, path = "/payments/return/{provider}", tag = "payments",
    params(("provider" = String, Path)),
    responses((status = 200, body = ReturnedPayment),
        (status = 400, description = "The return's signature does not verify")))]
pub async fn browser_return(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<ReturnedPayment>> {
    let provider = provider_of(&provider)?;
    let gateway = state
        .gateways
        .get(provider)
        .cloned()
        .ok_or_else(|| ApiError::not_found("payment gateway", provider.as_str()))?;
    let number = gateway
        .verify_return(query.as_deref().unwrap_or_default())
        .map_err(|e| ApiError::bad_request(e.0).with_code("invalid-signature"))?;
    let p = payment::Entity::find()
        .filter(payment::Column::Number.eq(number.as_str()))
        .one(state.db.reader())
        .await?
        .ok_or_else(|| ApiError::not_found("payment", &number))?;
    Ok(Json(ReturnedPayment {
        status: PaymentStatus::parse(&p.status).unwrap_or(PaymentStatus::Review),
        number: p.number,
        order_id: p.order_id,
    }))
}
