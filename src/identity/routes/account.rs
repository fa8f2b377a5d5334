//! Customer sign-up, sign-in and password routes.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::customers::model::Profile;
use crate::customers::service as customers;
use crate::identity::accounts::{self, CustomerSession, Registration};
use crate::identity::guard::CurrentCustomer;
use crate::identity::model::LoginRequest;
use crate::identity::session::{self, Kind};
use crate::platform::ApiResult;
use crate::platform::extract;
use crate::platform::request::RequestMeta;

#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterRequest {
    pub email: String,
    pub password: String,
    pub name: String,
}

/// The answer to requests that must not reveal whether an address has an account.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    pub status: &'static str,
    pub detail: &'static str,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct EmailRequest {
    pub email: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct TokenRequest {
    /// The token from the emailed link.
    pub token: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ResetConfirmRequest {
    pub token: String,
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ChangePasswordRequest {
    /// Ignored for accounts that have no password yet (made through a third-party login).
    #[serde(default)]
    pub current_password: String,
    pub new_password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerLogin {
    pub customer: Profile,
    /// Send this in `X-CSRF-Token` with every cookie-authenticated write.
    pub csrf_token: String,
}

fn accepted(detail: &'static str) -> (StatusCode, Json<Accepted>) {
    (
        StatusCode::ACCEPTED,
        Json(Accepted {
            status: "accepted",
            detail,
        }),
    )
}

/// Sets the customer session and CSRF cookies.
pub fn session_cookies(state: &AppState, jar: CookieJar, session: &CustomerSession) -> CookieJar {
    let secure = state.config.http.behind_tls;
    let max_age = time::Duration::seconds(state.config.auth.session_ttl_secs as i64);
    jar.add(
        Cookie::build((Kind::Customer.cookie(), session.session_id.clone()))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(secure)
            .max_age(max_age),
    )
    .add(
        Cookie::build((
            session::Kind::Customer.csrf_cookie(),
            session.csrf_token.clone(),
        ))
        .path("/")
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(max_age),
    )
}

/// The login answer: cookies plus the profile and CSRF token.
pub async fn login_response(
    state: &AppState,
    jar: CookieJar,
    session: CustomerSession,
) -> ApiResult<(CookieJar, Json<CustomerLogin>)> {
    let customer = customers::profile(state, session.customer_id).await?;
    let jar = session_cookies(state, jar, &session);
    Ok((
        jar,
        Json(CustomerLogin {
            customer,
            csrf_token: session.csrf_token,
        }),
    ))
}

/// Creates an account and emails a verification link. Always 202 with the same body, so
/// the answer does not tell whether the address already had an account.
#[utoipa::path(post, path = "/auth/register", tag = "account", request_body = RegisterRequest,
    responses((status = 202, body = Accepted), (status = 422, description = "Invalid email, name or password")))]
pub async fn register_customer(
    State(state): State<AppState>,
    meta: RequestMeta,
    extract::Json(body): extract::Json<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    let registration = Registration {
        email: &body.email,
        password: &body.password,
        name: &body.name,
    };
    accounts::register(&state, &meta, registration).await?;
    Ok(accepted(
        "check your email for a link to confirm your address",
    ))
}

/// Confirms an email address with the token from the verification link.
#[utoipa::path(post, path = "/auth/verify-email", tag = "account", request_body = TokenRequest,
    responses((status = 204), (status = 400, description = "invalid-grant: unknown, used or expired token")))]
pub async fn verify_email(
    State(state): State<AppState>,
    meta: RequestMeta,
    extract::Json(body): extract::Json<TokenRequest>,
) -> ApiResult<StatusCode> {
    accounts::verify_email(&state, &meta, &body.token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sends a new verification link if the address has an unverified account.
#[utoipa::path(post, path = "/auth/verify-email/resend", tag = "account", request_body = EmailRequest,
    responses((status = 202, body = Accepted)))]
pub async fn resend_verification(
    State(state): State<AppState>,
    meta: RequestMeta,
    extract::Json(body): extract::Json<EmailRequest>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    accounts::resend_verification(&state, &meta, &body.email).await?;
    Ok(accepted(
        "if the address has an unconfirmed account, a new link is on its way",
    ))
}

/// Signs a customer in with a session cookie (shared by every instance).
#[utoipa::path(post, path = "/auth/login", tag = "account", operation_id = "login_customer",
    request_body = LoginRequest,
    responses((status = 200, body = CustomerLogin), (status = 401, description = "Wrong email or password"),
        (status = 403, description = "Email address not verified yet"),
        (status = 429, description = "Too many failed logins; see Retry-After")))]
pub async fn login_customer(
    State(state): State<AppState>,
    meta: RequestMeta,
    jar: CookieJar,
    extract::Json(body): extract::Json<LoginRequest>,
) -> ApiResult<(CookieJar, Json<CustomerLogin>)> {
    let session = accounts::login(&state, &meta, &body.email, &body.password).await?;
    login_response(&state, jar, session).await
}

/// Ends the session on every instance.
#[utoipa::path(post, path = "/auth/logout", tag = "account", operation_id = "logout_customer",
    responses((status = 204)))]
pub async fn logout_customer(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentCustomer(customer): CurrentCustomer,
    jar: CookieJar,
) -> ApiResult<(CookieJar, StatusCode)> {
    accounts::logout(&state, &meta, &customer).await?;
    let jar = jar
        .remove(Cookie::build(Kind::Customer.cookie()).path("/"))
        .remove(Cookie::build(session::Kind::Customer.csrf_cookie()).path("/"));
    Ok((jar, StatusCode::NO_CONTENT))
}

/// Changes the password. Other sessions and all refresh tokens end; a cookie caller gets
/// a new session (and CSRF token) in the answer.
#[utoipa::path(post, path = "/me/password", tag = "account", request_body = ChangePasswordRequest,
    responses((status = 200, body = CustomerLogin, description = "Changed; new session for cookie callers"),
        (status = 204, description = "Changed (bearer caller)"),
        (status = 422, description = "Wrong current password or weak new password")))]
pub async fn change_password(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentCustomer(customer): CurrentCustomer,
    jar: CookieJar,
    extract::Json(body): extract::Json<ChangePasswordRequest>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let session = accounts::change_password(
        &state,
        &meta,
        &customer,
        &body.current_password,
        &body.new_password,
    )
    .await?;
    Ok(match session {
        Some(session) => login_response(&state, jar, session).await?.into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

/// Emails a password-reset link if the address has an account. Always 202.
#[utoipa::path(post, path = "/auth/password-reset", tag = "account", request_body = EmailRequest,
    responses((status = 202, body = Accepted)))]
pub async fn request_password_reset(
    State(state): State<AppState>,
    meta: RequestMeta,
    extract::Json(body): extract::Json<EmailRequest>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    accounts::request_password_reset(&state, &meta, &body.email).await?;
    Ok(accepted(
        "if the address has an account, a reset link is on its way",
    ))
}

/// Sets a new password with the token from the reset link; every session and refresh
/// token of the account ends.
#[utoipa::path(post, path = "/auth/password-reset/confirm", tag = "account",
    request_body = ResetConfirmRequest,
    responses((status = 204), (status = 400, description = "invalid-grant: unknown, used or expired token")))]
pub async fn confirm_password_reset(
    State(state): State<AppState>,
    meta: RequestMeta,
    extract::Json(body): extract::Json<ResetConfirmRequest>,
) -> ApiResult<StatusCode> {
    accounts::confirm_password_reset(&state, &meta, &body.token, &body.password).await?;
    Ok(StatusCode::NO_CONTENT)
}
