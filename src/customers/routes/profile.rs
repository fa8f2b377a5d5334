use axum::extract::State;

use crate::app::AppState;
use crate::customers::model::{Profile, UpdateProfile};
use crate::customers::service;
use crate::identity::guard::CurrentCustomer;
use crate::platform::ApiResult;
use crate::platform::concurrency::{Expected, IfMatch, Tagged};
use crate::platform::extract::Json;

/// The signed-in customer's account.
#[utoipa::path(get, path = "/me", tag = "account", operation_id = "get_my_profile",
    responses((status = 200, body = Profile)))]
pub async fn get_profile(
    State(state): State<AppState>,
    CurrentCustomer(customer): CurrentCustomer,
) -> ApiResult<Tagged<Profile>> {
    let profile = service::profile(&state, customer.customer_id).await?;
    Ok(Tagged(profile.version, profile))
}

/// Edits the signed-in customer's name and phone.
#[utoipa::path(patch, path = "/me", tag = "account", operation_id = "update_my_profile",
    request_body = UpdateProfile,
    responses((status = 200, body = Profile), (status = 409, description = "Stale version"),
        (status = 428, description = "No version given")))]
pub async fn update_profile(
    State(state): State<AppState>,
    CurrentCustomer(customer): CurrentCustomer,
    if_match: IfMatch,
    Json(body): Json<UpdateProfile>,
) -> ApiResult<Tagged<Profile>> {
    let expected = Expected::from(if_match, body.version)?;
    let profile = service::update_profile(&state, customer.customer_id, expected, body).await?;
    Ok(Tagged(profile.version, profile))
}
