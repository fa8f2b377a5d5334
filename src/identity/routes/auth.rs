use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};

use crate::app::AppState;
use crate::identity::guard::CurrentStaff;
use crate::identity::model::{CsrfToken, LoginRequest, LoginResponse, Me};
use crate::identity::service::{self, Actor};
use crate::identity::session;
use crate::platform::extract;
use crate::platform::request::RequestMeta;
use crate::platform::{ApiError, ApiResult};

fn me(principal: &crate::identity::guard::Principal) -> Me {
    Me {
        id: principal.staff_id,
        email: principal.email.clone(),
        name: principal.name.clone(),
        is_superuser: principal.is_superuser,
        permissions: principal.permissions.iter().cloned().collect(),
    }
}

/// Signs a staff member in: sets the session cookie and returns the CSRF token.
#[utoipa::path(post, path = "/auth/login", tag = "staff auth",
    request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 429, description = "Too many failed logins; see Retry-After")))]
pub async fn login_staff(
    State(state): State<AppState>,
    meta: RequestMeta,
    jar: CookieJar,
    extract::Json(body): extract::Json<LoginRequest>,
) -> ApiResult<(CookieJar, Json<LoginResponse>)> {
    let logged_in = service::login(&state, &meta, &body.email, &body.password).await?;
    let secure = state.config.http.behind_tls;
    let max_age = time::Duration::seconds(state.config.auth.session_ttl_secs as i64);
    let jar = jar
        .add(
            Cookie::build((session::Kind::Staff.cookie(), logged_in.session_id))
                .path("/")
                .http_only(true)
                .same_site(SameSite::Lax)
                .secure(secure)
                .max_age(max_age),
        )
        .add(
            Cookie::build((
                session::Kind::Staff.csrf_cookie(),
                logged_in.csrf_token.clone(),
            ))
            .path("/")
            .same_site(SameSite::Lax)
            .secure(secure)
            .max_age(max_age),
        );
    Ok((
        jar,
        Json(LoginResponse {
            staff: me(&logged_in.principal),
            csrf_token: logged_in.csrf_token,
        }),
    ))
}

/// Ends the session on every instance.
#[utoipa::path(post, path = "/auth/logout", tag = "staff auth", responses((status = 204)))]
pub async fn logout_staff(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    jar: CookieJar,
) -> ApiResult<(CookieJar, StatusCode)> {
    let actor = Actor::staff(&principal, &meta);
    service::logout(&state, &actor, &principal).await?;
    let jar = jar
        .remove(Cookie::build(session::Kind::Staff.cookie()).path("/"))
        .remove(Cookie::build(session::Kind::Staff.csrf_cookie()).path("/"));
    Ok((jar, StatusCode::NO_CONTENT))
}

/// The CSRF token of the current session, for clients that lost the login response.
#[utoipa::path(get, path = "/auth/csrf", tag = "staff auth", responses((status = 200, body = CsrfToken)))]
pub async fn get_csrf_token(CurrentStaff(principal): CurrentStaff) -> ApiResult<Json<CsrfToken>> {
    let csrf_token = principal
        .credential
        .csrf_token()
        .ok_or_else(|| ApiError::bad_request("bearer-token callers need no CSRF token"))?;
    Ok(Json(CsrfToken {
        csrf_token: csrf_token.to_owned(),
    }))
}

/// The signed-in staff member and their effective permissions.
#[utoipa::path(get, path = "/me", tag = "staff auth", responses((status = 200, body = Me)))]
pub async fn get_me(CurrentStaff(principal): CurrentStaff) -> Json<Me> {
    Json(me(&principal))
}
