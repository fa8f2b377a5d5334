//! The back office's side of orders, shipping and returns.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use crate::app::AppState;
use crate::identity::guard::CurrentStaff;
use crate::orders::edit;
use crate::orders::fulfilment;
use crate::orders::model::{
    CancelRequest, CreatePickingList, CreateShipment, EditOrder, EditResult, OrderDetail,
    OrderFilter, OrderView, PickingListView, SetTracking, ShipRequest, ShipmentView, SplitOrder,
    SplitResult,
};
use crate::orders::returns::{self, Decision, ReceiveReturn, ReturnFilter, ReturnView};
use crate::orders::service::{self, By};
use crate::platform::ApiResult;
use crate::platform::concurrency::IfMatch;
use crate::platform::extract::{self, Query};
use crate::platform::list::{ListParams, Page};

fn by(staff: &crate::identity::guard::Principal) -> By {
    By::staff(staff.staff_id)
}

/// Orders, newest first; filter by status, customer, number or email, SKU, dates, totals.
#[utoipa::path(get, path = "/orders", tag = "orders", params(ListParams, OrderFilter),
    responses((status = 200, body = Page<OrderView>)))]
pub async fn list_orders(
    State(state): State<AppState>,
    Query(list): Query<ListParams>,
    Query(filter): Query<OrderFilter>,
) -> ApiResult<Json<Page<OrderView>>> {
    Ok(Json(service::list(&state, &list, &filter).await?))
}

/// One order with its history, shipments and refunds.
#[utoipa::path(get, path = "/orders/{id}", tag = "orders", params(("id" = i64, Path)),
    responses((status = 200, body = OrderDetail), (status = 404)))]
pub async fn get_order(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<OrderDetail>> {
    Ok(Json(service::detail(&state, id).await?))
}

/// Cancels an order that has not shipped: stock, coupons and gift-certificate money come
/// back, and a paid order gets a pending refund.
#[utoipa::path(post, path = "/orders/{id}/cancel", tag = "orders", params(("id" = i64, Path)),
    request_body = CancelRequest,
    responses((status = 200, body = OrderView), (status = 409, description = "Shipped or cancelled"),
        (status = 423, description = "Locked by another staff member")))]
pub async fn cancel_order(
    State(state): State<AppState>,
    CurrentStaff(staff): CurrentStaff,
    Path(id): Path<i64>,
    extract::Json(body): extract::Json<CancelRequest>,
) -> ApiResult<Json<OrderView>> {
    let reason = body.reason.unwrap_or_else(|| "cancelled by staff".into());
    Ok(Json(
        service::cancel(&state, id, &reason, by(&staff)).await?,
    ))
}

/// Takes the order's edit lock: other staff get 423 until it is released.
#[utoipa::path(post, path = "/orders/{id}/lock", tag = "orders", params(("id" = i64, Path)),
    responses((status = 200, body = OrderView), (status = 423, description = "Locked by someone else")))]
pub async fn lock_order(
    State(state): State<AppState>,
    CurrentStaff(staff): CurrentStaff,
    Path(id): Path<i64>,
) -> ApiResult<Json<OrderView>> {
    Ok(Json(
        service::set_lock(&state, id, true, by(&staff), false).await?,
    ))
}

/// Releases the lock; only its holder (or a superuser) may.
#[utoipa::path(post, path = "/orders/{id}/unlock", tag = "orders", params(("id" = i64, Path)),
    responses((status = 200, body = OrderView), (status = 423, description = "Locked by someone else")))]
pub async fn unlock_order(
    State(state): State<AppState>,
    CurrentStaff(staff): CurrentStaff,
    Path(id): Path<i64>,
) -> ApiResult<Json<OrderView>> {
    Ok(Json(
        service::set_lock(&state, id, false, by(&staff), staff.is_superuser).await?,
    ))
}

/// Edits an unpaid order (items, quantities, price adjustments with a reason) and
/// recomputes its promotions; with no changes it just re-prices under today's promotions.
/// `dry_run` shows the difference without keeping it. Name the version with `If-Match` or
/// `version`.
#[utoipa::path(post, path = "/orders/{id}/edit", tag = "orders", params(("id" = i64, Path)),
    request_body = EditOrder,
    responses((status = 200, body = EditResult), (status = 409, description = "Not pending, stale version or out of stock"),
        (status = 423, description = "Locked by someone else")))]
pub async fn edit_order(
    State(state): State<AppState>,
    CurrentStaff(staff): CurrentStaff,
    Path(id): Path<i64>,
    IfMatch(if_match): IfMatch,
    extract::Json(body): extract::Json<EditOrder>,
) -> ApiResult<Json<EditResult>> {
    let expected = if_match.or(body.version);
    Ok(Json(
        edit::edit(&state, id, expected, body, by(&staff)).await?,
    ))
}

/// Splits lines off into new orders; the totals of all of them add up to the original.
#[utoipa::path(post, path = "/orders/{id}/split", tag = "orders", params(("id" = i64, Path)),
    request_body = SplitOrder,
    responses((status = 200, body = SplitResult), (status = 409, description = "Shipped or has shipments")))]
pub async fn split_order(
    State(state): State<AppState>,
    CurrentStaff(staff): CurrentStaff,
    Path(id): Path<i64>,
    extract::Json(body): extract::Json<SplitOrder>,
) -> ApiResult<Json<SplitResult>> {
    Ok(Json(edit::split(&state, id, body, by(&staff)).await?))
}

/// Confirms a paid order ready for picking.
#[utoipa::path(post, path = "/orders/{id}/ready-for-picking", tag = "orders", params(("id" = i64, Path)),
    responses((status = 200, body = OrderView), (status = 409, description = "Not paid")))]
pub async fn ready_for_picking(
    State(state): State<AppState>,
    CurrentStaff(staff): CurrentStaff,
    Path(id): Path<i64>,
) -> ApiResult<Json<OrderView>> {
    Ok(Json(
        service::ready_for_picking(&state, id, by(&staff)).await?,
    ))
}

/// Marks a shipped order delivered.
#[utoipa::path(post, path = "/orders/{id}/complete", tag = "orders", params(("id" = i64, Path)),
    responses((status = 200, body = OrderView), (status = 409, description = "Not shipped")))]
pub async fn complete_order(
    State(state): State<AppState>,
    CurrentStaff(staff): CurrentStaff,
    Path(id): Path<i64>,
) -> ApiResult<Json<OrderView>> {
    Ok(Json(service::complete(&state, id, by(&staff)).await?))
}

/// Splits a paid order's delivery into a shipment of some lines.
#[utoipa::path(post, path = "/orders/{id}/shipments", tag = "shipping", params(("id" = i64, Path)),
    request_body = CreateShipment,
    responses((status = 201, body = ShipmentView), (status = 409, description = "Not paid, or nothing left to ship")))]
pub async fn create_shipment(
    State(state): State<AppState>,
    CurrentStaff(staff): CurrentStaff,
    Path(id): Path<i64>,
    extract::Json(body): extract::Json<CreateShipment>,
) -> ApiResult<(StatusCode, Json<ShipmentView>)> {
    let created = fulfilment::create_shipment(&state, id, body.lines, by(&staff)).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Sets the carrier and tracking number before shipping (e.g. to print the label).
#[utoipa::path(put, path = "/shipments/{id}/tracking", tag = "shipping", params(("id" = i64, Path)),
    request_body = SetTracking,
    responses((status = 200, body = ShipmentView), (status = 409, description = "Already shipped")))]
pub async fn set_tracking(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    extract::Json(body): extract::Json<SetTracking>,
) -> ApiResult<Json<ShipmentView>> {
    Ok(Json(
        fulfilment::set_tracking(&state, id, body.carrier_id, &body.tracking_number).await?,
    ))
}

/// Marks a shipment shipped: its units leave stock; the order ships with its last one.
#[utoipa::path(post, path = "/shipments/{id}/ship", tag = "shipping", params(("id" = i64, Path)),
    request_body = ShipRequest,
    responses((status = 200, body = ShipmentView), (status = 409, description = "Already shipped or order not ready")))]
pub async fn ship(
    State(state): State<AppState>,
    CurrentStaff(staff): CurrentStaff,
    Path(id): Path<i64>,
    extract::Json(body): extract::Json<ShipRequest>,
) -> ApiResult<Json<ShipmentView>> {
    Ok(Json(fulfilment::ship(&state, id, body, by(&staff)).await?))
}

fn pdf(bytes: Vec<u8>, name: String) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{name}.pdf\""),
            ),
        ],
        bytes,
    )
}

#[utoipa::path(get, path = "/shipments/{id}/packing-slip.pdf", tag = "shipping", params(("id" = i64, Path)),
    responses((status = 200, content_type = "application/pdf", body = Vec<u8>)))]
pub async fn packing_slip(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<impl IntoResponse> {
    Ok(pdf(
        fulfilment::packing_slip_pdf(&state, id).await?,
        format!("packing-slip-{id}"),
    ))
}

/// The carrier label; the shipment needs a tracking number first.
#[utoipa::path(get, path = "/shipments/{id}/label.pdf", tag = "shipping", params(("id" = i64, Path)),
    responses((status = 200, content_type = "application/pdf", body = Vec<u8>),
        (status = 409, description = "No tracking number yet")))]
pub async fn label(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<impl IntoResponse> {
    Ok(pdf(
        fulfilment::label_pdf(&state, id).await?,
        format!("label-{id}"),
    ))
}

/// A picking list over pending shipments of orders ready for picking.
#[utoipa::path(post, path = "/picking-lists", tag = "shipping", request_body = CreatePickingList,
    responses((status = 201, body = PickingListView), (status = 409, description = "Nothing to pick")))]
pub async fn create_picking_list(
    State(state): State<AppState>,
    CurrentStaff(staff): CurrentStaff,
    extract::Json(body): extract::Json<CreatePickingList>,
) -> ApiResult<(StatusCode, Json<PickingListView>)> {
    let created = fulfilment::create_picking_list(&state, body.shipment_ids, by(&staff)).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(get, path = "/picking-lists/{id}", tag = "shipping", params(("id" = i64, Path)),
    responses((status = 200, body = PickingListView)))]
pub async fn get_picking_list(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<PickingListView>> {
    Ok(Json(fulfilment::get_picking_list(&state, id).await?))
}

#[utoipa::path(get, path = "/picking-lists/{id}/pdf", tag = "shipping", params(("id" = i64, Path)),
    responses((status = 200, content_type = "application/pdf", body = Vec<u8>)))]
pub async fn picking_list_pdf(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<impl IntoResponse> {
    Ok(pdf(
        fulfilment::picking_list_pdf(&state, id).await?,
        format!("picking-list-{id}"),
    ))
}

#[utoipa::path(get, path = "/returns", tag = "returns", params(ListParams, ReturnFilter),
    responses((status = 200, body = Page<ReturnView>)))]
pub async fn list_returns(
    State(state): State<AppState>,
    Query(list): Query<ListParams>,
    Query(filter): Query<ReturnFilter>,
) -> ApiResult<Json<Page<ReturnView>>> {
    Ok(Json(returns::list(&state, &list, &filter).await?))
}

#[utoipa::path(get, path = "/returns/{id}", tag = "returns", params(("id" = i64, Path)),
    responses((status = 200, body = ReturnView)))]
pub async fn get_return(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<ReturnView>> {
    Ok(Json(returns::get(&state, id).await?))
}

#[utoipa::path(post, path = "/returns/{id}/approve", tag = "returns", params(("id" = i64, Path)),
    request_body = Decision, responses((status = 200, body = ReturnView)))]
pub async fn approve_return(
    State(state): State<AppState>,
    CurrentStaff(staff): CurrentStaff,
    Path(id): Path<i64>,
    extract::Json(body): extract::Json<Decision>,
) -> ApiResult<Json<ReturnView>> {
    Ok(Json(
        returns::decide(&state, id, true, body.note, by(&staff)).await?,
    ))
}

#[utoipa::path(post, path = "/returns/{id}/reject", tag = "returns", params(("id" = i64, Path)),
    request_body = Decision, responses((status = 200, body = ReturnView)))]
pub async fn reject_return(
    State(state): State<AppState>,
    CurrentStaff(staff): CurrentStaff,
    Path(id): Path<i64>,
    extract::Json(body): extract::Json<Decision>,
) -> ApiResult<Json<ReturnView>> {
    Ok(Json(
        returns::decide(&state, id, false, body.note, by(&staff)).await?,
    ))
}

/// Receives the goods: each unit to stock or to damaged; then a refund record (return) or
/// a replacement order (exchange).
#[utoipa::path(post, path = "/returns/{id}/receive", tag = "returns", params(("id" = i64, Path)),
    request_body = ReceiveReturn, responses((status = 200, body = ReturnView)))]
pub async fn receive_return(
    State(state): State<AppState>,
    CurrentStaff(staff): CurrentStaff,
    Path(id): Path<i64>,
    extract::Json(body): extract::Json<ReceiveReturn>,
) -> ApiResult<Json<ReturnView>> {
    Ok(Json(returns::receive(&state, id, body, by(&staff)).await?))
}
