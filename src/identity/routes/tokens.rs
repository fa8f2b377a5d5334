//! Token endpoints (OAuth 2 field names) and the public key set that verifies tokens.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::identity::guard::CurrentStaff;
use crate::identity::model::LoginRequest;
use crate::identity::service::Actor;
use crate::identity::tokens::TokenResponse;
use crate::identity::{accounts, service};
use crate::platform::extract;
use crate::platform::request::RequestMeta;
use crate::platform::{ApiError, ApiResult};

#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// RFC 7009's request; a `token_type_hint` may be sent and is not needed, since the
/// token's form tells which kind it is.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RevokeRequest {
    /// An access token or a refresh token.
    pub token: String,
}

fn no_store() -> [(header::HeaderName, &'static str); 2] {
    [
        (header::CACHE_CONTROL, "no-store"),
        (header::PRAGMA, "no-cache"),
    ]
}

/// Exchanges a customer's email and password for an access token and a refresh token.
#[utoipa::path(post, path = "/auth/token", tag = "account", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), (status = 401, description = "Wrong email or password"),
        (status = 403, description = "Email address not verified yet")))]
pub async fn issue_customer_token(
    State(state): State<AppState>,
    meta: RequestMeta,
    extract::Json(body): extract::Json<LoginRequest>,
) -> ApiResult<impl IntoResponse> {
    let response = accounts::issue_tokens(&state, &meta, &body.email, &body.password).await?;
    Ok((no_store(), Json(response)))
}

/// Exchanges a staff member's email and password for tokens whose scopes are their
/// permissions.
#[utoipa::path(post, path = "/auth/token", tag = "staff auth", operation_id = "issue_staff_token",
    request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), (status = 401, description = "Wrong email or password")))]
pub async fn issue_staff_token(
    State(state): State<AppState>,
    meta: RequestMeta,
    extract::Json(body): extract::Json<LoginRequest>,
) -> ApiResult<impl IntoResponse> {
    let response = service::issue_staff_tokens(&state, &meta, &body.email, &body.password).await?;
    Ok((no_store(), Json(response)))
}

/// Spends a refresh token for a new token pair. Presenting a spent refresh token again
/// revokes every token of its family.
#[utoipa::path(post, path = "/auth/token/refresh", tag = "account", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse), (status = 400, description = "invalid-grant: unknown, spent, expired or revoked")))]
pub async fn refresh_token(
    State(state): State<AppState>,
    meta: RequestMeta,
    extract::Json(body): extract::Json<RefreshRequest>,
) -> ApiResult<impl IntoResponse> {
    let response = accounts::refresh(&state, &meta, &body.refresh_token).await?;
    Ok((no_store(), Json(response)))
}

/// Revokes an access token (until it expires) or a refresh token (with its family).
/// Answers 200 for unknown tokens too, as RFC 7009 asks.
#[utoipa::path(post, path = "/auth/token/revoke", tag = "account", request_body = RevokeRequest,
    responses((status = 200)))]
pub async fn revoke_token(
    State(state): State<AppState>,
    meta: RequestMeta,
    extract::Json(body): extract::Json<RevokeRequest>,
) -> ApiResult<StatusCode> {
    accounts::revoke(&state, &meta, &body.token).await?;
    Ok(StatusCode::OK)
}

/// The public keys that verify Bazaar's access tokens (RFC 7517), by `kid`.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "operations",
    responses((status = 200, description = "JSON Web Key Set", content_type = "application/json")))]
pub async fn get_jwks(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(state.keys.jwks()),
    )
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedKey {
    /// The `kid` of the key that signs from now on.
    pub kid: String,
}

/// Adds a new signing key. Tokens signed by the old key keep verifying until they expire,
/// and the old key stays in the JWKS document until then.
#[utoipa::path(post, path = "/auth/keys/rotate", tag = "staff auth",
    responses((status = 201, body = RotatedKey)))]
pub async fn rotate_signing_key(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
) -> ApiResult<(StatusCode, Json<RotatedKey>)> {
    let keys = state.keys.clone();
    let kid = tokio::task::spawn_blocking(move || keys.rotate())
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let actor = Actor::staff(&principal, &meta);
    service::audit(
        state.db.writer(),
        &actor,
        "signing_key_rotated",
        Some(kid.clone()),
        serde_json::json!({}),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(RotatedKey { kid })))
}
