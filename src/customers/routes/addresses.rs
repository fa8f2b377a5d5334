//! The signed-in customer's address book.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use crate::app::AppState;
use crate::customers::model::{AddressView, CreateAddress, UpdateAddress};
use crate::customers::service::addresses;
use crate::identity::guard::CurrentCustomer;
use crate::platform::ApiResult;
use crate::platform::concurrency::{Expected, IfMatch, Tagged};
use crate::platform::extract::Json;

/// The customer's addresses, the default first.
#[utoipa::path(get, path = "/me/addresses", tag = "account",
    responses((status = 200, body = Vec<AddressView>)))]
pub async fn list_my_addresses(
    State(state): State<AppState>,
    CurrentCustomer(customer): CurrentCustomer,
) -> ApiResult<axum::Json<Vec<AddressView>>> {
    Ok(axum::Json(
        addresses::list_addresses(&state, customer.customer_id).await?,
    ))
}

#[utoipa::path(get, path = "/me/addresses/{id}", tag = "account",
    responses((status = 200, body = AddressView, headers(("ETag" = String)))))]
pub async fn get_my_address(
    State(state): State<AppState>,
    CurrentCustomer(customer): CurrentCustomer,
    Path(id): Path<i64>,
) -> ApiResult<Tagged<AddressView>> {
    let address = addresses::get_address(&state, customer.customer_id, id).await?;
    Ok(Tagged(address.version, address))
}

/// Adds an address (at most 50); the first one, or one with `is_default`, is the default.
#[utoipa::path(post, path = "/me/addresses", tag = "account", request_body = CreateAddress,
    responses((status = 201, body = AddressView), (status = 422, description = "Invalid, or 50 addresses already")))]
pub async fn create_my_address(
    State(state): State<AppState>,
    CurrentCustomer(customer): CurrentCustomer,
    Json(body): Json<CreateAddress>,
) -> ApiResult<impl IntoResponse> {
    let address = addresses::create_address(&state, customer.customer_id, body).await?;
    let location = format!("/api/v1/me/addresses/{}", address.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Tagged(address.version, address),
    ))
}

/// Edits an address; `is_default: true` moves the default here.
#[utoipa::path(patch, path = "/me/addresses/{id}", tag = "account", request_body = UpdateAddress,
    responses((status = 200, body = AddressView), (status = 409, description = "Stale version"),
        (status = 428, description = "No version given")))]
pub async fn update_my_address(
    State(state): State<AppState>,
    CurrentCustomer(customer): CurrentCustomer,
    Path(id): Path<i64>,
    if_match: IfMatch,
    Json(body): Json<UpdateAddress>,
) -> ApiResult<Tagged<AddressView>> {
    let expected = Expected::from(if_match, body.version)?;
    let address =
        addresses::update_address(&state, customer.customer_id, id, expected, body).await?;
    Ok(Tagged(address.version, address))
}

/// Deletes an address; if it was the default, the oldest remaining one becomes it.
#[utoipa::path(delete, path = "/me/addresses/{id}", tag = "account", responses((status = 204)))]
pub async fn delete_my_address(
    State(state): State<AppState>,
    CurrentCustomer(customer): CurrentCustomer,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    addresses::delete_address(&state, customer.customer_id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
