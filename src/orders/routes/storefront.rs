//! The customer's side: checkout, their orders, cancelling, confirming receipt, returns.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;

use crate::app::AppState;
use crate::identity::guard::CurrentCustomer;
use crate::orders::checkout;
use crate::orders::model::{CheckoutRequest, OrderView};
use crate::orders::returns::{self, RequestReturn, ReturnView};
use crate::orders::service::{self, By};
use crate::platform::extract::{self, Query};
use crate::platform::idempotency;
use crate::platform::list::{ListParams, Page};
use crate::platform::{ApiError, ApiResult};

/// Places the signed-in customer's cart as an order: prices frozen, stock reserved,
/// coupons and gift certificates consumed. Requires `Idempotency-Key`: a retry with the
/// same key gets the same answer instead of a second order.
#[utoipa::path(post, path = "/checkout", tag = "orders", request_body = CheckoutRequest,
    params(("Idempotency-Key" = String, Header, description = "Required; one per checkout attempt")),
    responses((status = 201, body = OrderView),
        (status = 400, description = "Idempotency-Key missing"),
        (status = 409, description = "Out of stock, cart empty or unavailable, price changed, coupon used up"),
        (status = 422, description = "Invalid address, shipping method, coupon or gift certificate")))]
pub async fn checkout(
    State(state): State<AppState>,
    CurrentCustomer(customer): CurrentCustomer,
    headers: HeaderMap,
    extract::Json(body): extract::Json<CheckoutRequest>,
) -> ApiResult<impl IntoResponse> {
    if !headers.contains_key(idempotency::HEADER) {
        return Err(ApiError::bad_request(
            "checkout needs an Idempotency-Key header, so that a retried request cannot place a second order",
        )
        .with_code("idempotency-key-required"));
    }
    let order = checkout::checkout(&state, customer.customer_id, body).await?;
    let location = format!("/api/v1/orders/{}", order.number);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(order),
    ))
}

/// The customer's orders, newest first.
#[utoipa::path(get, path = "/orders", tag = "orders", params(ListParams),
    responses((status = 200, body = Page<OrderView>)))]
pub async fn my_orders(
    State(state): State<AppState>,
    CurrentCustomer(customer): CurrentCustomer,
    Query(list): Query<ListParams>,
) -> ApiResult<Json<Page<OrderView>>> {
    Ok(Json(
        service::list_for_customer(&state, customer.customer_id, &list).await?,
    ))
}

#[utoipa::path(get, path = "/orders/{number}", tag = "orders", params(("number" = String, Path)),
    responses((status = 200, body = OrderView), (status = 404)))]
pub async fn my_order(
    State(state): State<AppState>,
    CurrentCustomer(customer): CurrentCustomer,
    Path(number): Path<String>,
) -> ApiResult<Json<OrderView>> {
    let db = state.db.reader();
    let o = service::find_for_customer(db, customer.customer_id, &number).await?;
    Ok(Json(service::view(db, o).await?))
}

/// Cancels an unpaid order; its stock, coupons and gift-certificate money come back.
#[utoipa::path(post, path = "/orders/{number}/cancel", tag = "orders", params(("number" = String, Path)),
    responses((status = 200, body = OrderView), (status = 409, description = "Already paid")))]
pub async fn cancel_my_order(
    State(state): State<AppState>,
    CurrentCustomer(customer): CurrentCustomer,
    Path(number): Path<String>,
) -> ApiResult<Json<OrderView>> {
    Ok(Json(
        service::cancel_by_customer(&state, customer.customer_id, &number).await?,
    ))
}

/// Confirms the parcel arrived.
#[utoipa::path(post, path = "/orders/{number}/confirm-receipt", tag = "orders", params(("number" = String, Path)),
    responses((status = 200, body = OrderView), (status = 409, description = "Not shipped")))]
pub async fn confirm_receipt(
    State(state): State<AppState>,
    CurrentCustomer(customer): CurrentCustomer,
    Path(number): Path<String>,
) -> ApiResult<Json<OrderView>> {
    let o = service::find_for_customer(state.db.reader(), customer.customer_id, &number).await?;
    Ok(Json(
        service::complete(&state, o.id, By::customer(customer.customer_id)).await?,
    ))
}

/// Asks to return or exchange delivered units.
#[utoipa::path(post, path = "/orders/{number}/returns", tag = "orders", params(("number" = String, Path)),
    request_body = RequestReturn,
    responses((status = 201, body = ReturnView), (status = 409, description = "Not delivered"),
        (status = 422, description = "More units than were delivered")))]
pub async fn request_return(
    State(state): State<AppState>,
    CurrentCustomer(customer): CurrentCustomer,
    Path(number): Path<String>,
    extract::Json(body): extract::Json<RequestReturn>,
) -> ApiResult<(StatusCode, Json<ReturnView>)> {
    let created = returns::request(&state, customer.customer_id, &number, body).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(get, path = "/orders/{number}/returns", tag = "orders", params(("number" = String, Path)),
    responses((status = 200, body = Vec<ReturnView>)))]
pub async fn my_returns(
    State(state): State<AppState>,
    CurrentCustomer(customer): CurrentCustomer,
    Path(number): Path<String>,
) -> ApiResult<Json<Vec<ReturnView>>> {
    Ok(Json(
        returns::list_for_order(&state, customer.customer_id, &number).await?,
    ))
}
