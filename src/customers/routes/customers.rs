//! Staff administration of customers, their password resets, messages and memberships.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use crate::app::AppState;
use crate::customers::model::{
    CreateCustomer, CustomerDetail, CustomerFilter, CustomerMessage, CustomerView, EmailQueued,
    GrantMembership, MembershipView, UpdateCustomer,
};
use crate::customers::service::{admin, memberships};
use crate::identity::guard::CurrentStaff;
use crate::identity::service::Actor;
use crate::platform::ApiResult;
use crate::platform::concurrency::{Expected, IfMatch, Tagged};
use crate::platform::extract::{Json, Query};
use crate::platform::list::{ListParams, Page};
use crate::platform::request::RequestMeta;

/// Searches customers; deleted ones only with `status=deleted`.
#[utoipa::path(get, path = "/customers", tag = "customers", params(ListParams, CustomerFilter),
    responses((status = 200, body = Page<CustomerView>)))]
pub async fn list_customers(
    State(state): State<AppState>,
    Query(list): Query<ListParams>,
    Query(filter): Query<CustomerFilter>,
) -> ApiResult<axum::Json<Page<CustomerView>>> {
    Ok(axum::Json(
        admin::list_customers(&state, &list, &filter).await?,
    ))
}

/// One customer with their current membership and addresses.
#[utoipa::path(get, path = "/customers/{id}", tag = "customers",
    responses((status = 200, body = CustomerDetail, headers(("ETag" = String)))))]
pub async fn get_customer(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Tagged<CustomerDetail>> {
    let detail = admin::get_customer(&state, id).await?;
    Ok(Tagged(detail.customer.version, detail))
}

/// Creates a customer; without a password they are emailed a link to choose one.
#[utoipa::path(post, path = "/customers", tag = "customers", request_body = CreateCustomer,
    responses((status = 201, body = CustomerDetail),
        (status = 409, description = "A customer with this email exists")))]
pub async fn create_customer(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Json(body): Json<CreateCustomer>,
) -> ApiResult<impl IntoResponse> {
    let actor = Actor::staff(&principal, &meta);
    let detail = admin::create_customer(&state, &actor, body).await?;
    let location = format!("/api/v1/admin/customers/{}", detail.customer.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Tagged(detail.customer.version, detail),
    ))
}

/// Edits a customer; deactivating one signs them out everywhere.
#[utoipa::path(patch, path = "/customers/{id}", tag = "customers", request_body = UpdateCustomer,
    responses((status = 200, body = CustomerDetail), (status = 409, description = "Stale version or email taken"),
        (status = 410, description = "Deleted customer"),
        (status = 412, description = "If-Match does not match"), (status = 428, description = "No version given")))]
pub async fn update_customer(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
    if_match: IfMatch,
    Json(body): Json<UpdateCustomer>,
) -> ApiResult<Tagged<CustomerDetail>> {
    let expected = Expected::from(if_match, body.version)?;
    let actor = Actor::staff(&principal, &meta);
    let detail = admin::update_customer(&state, &actor, id, expected, body).await?;
    Ok(Tagged(detail.customer.version, detail))
}

/// Soft-deletes a customer: kept for history, signed out, unable to sign in.
#[utoipa::path(delete, path = "/customers/{id}", tag = "customers",
    responses((status = 204), (status = 410, description = "Already deleted")))]
pub async fn delete_customer(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let actor = Actor::staff(&principal, &meta);
    admin::delete_customer(&state, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Emails the customer a password-reset link.
#[utoipa::path(post, path = "/customers/{id}/password-reset", tag = "customers",
    responses((status = 202, description = "The email is queued")))]
pub async fn reset_customer_password(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let actor = Actor::staff(&principal, &meta);
    admin::send_reset_link(&state, &actor, id).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Sends the customer an email from the shop.
#[utoipa::path(post, path = "/customers/{id}/emails", tag = "customers",
    request_body = CustomerMessage, responses((status = 202, body = EmailQueued)))]
pub async fn email_customer(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
    Json(body): Json<CustomerMessage>,
) -> ApiResult<impl IntoResponse> {
    let actor = Actor::staff(&principal, &meta);
    let queued = admin::email_customer(&state, &actor, id, body).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(queued)))
}

/// Replaces the customer's custom attribute values; each is checked against its
/// definition (422 naming `attributes.<code>`).
#[utoipa::path(put, path = "/customers/{id}/attributes", tag = "customers",
    request_body = Object, responses((status = 200, body = CustomerDetail)))]
pub async fn set_customer_attributes(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
    Json(values): Json<crate::catalog::model::AttributeValues>,
) -> ApiResult<Tagged<CustomerDetail>> {
    let actor = Actor::staff(&principal, &meta);
    let detail = admin::set_customer_attributes(&state, &actor, id, values).await?;
    Ok(Tagged(detail.customer.version, detail))
}

/// Grants a membership level, ending the current membership (`changed`).
#[utoipa::path(put, path = "/customers/{id}/membership", tag = "memberships",
    request_body = GrantMembership, responses((status = 200, body = MembershipView)))]
pub async fn grant_membership(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
    Json(body): Json<GrantMembership>,
) -> ApiResult<axum::Json<MembershipView>> {
    let actor = Actor::staff(&principal, &meta);
    Ok(axum::Json(
        memberships::grant(&state, &actor, id, body).await?,
    ))
}

/// Ends the customer's membership now (`revoked`).
#[utoipa::path(delete, path = "/customers/{id}/membership", tag = "memberships",
    responses((status = 204), (status = 404, description = "No membership")))]
pub async fn revoke_membership(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let actor = Actor::staff(&principal, &meta);
    memberships::revoke(&state, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every membership the customer held, newest first.
#[utoipa::path(get, path = "/customers/{id}/memberships", tag = "memberships",
    responses((status = 200, body = Vec<MembershipView>)))]
pub async fn list_customer_memberships(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<Vec<MembershipView>>> {
    Ok(axum::Json(memberships::history(&state, id).await?))
}
