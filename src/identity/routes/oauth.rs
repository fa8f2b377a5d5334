//! Third-party login routes: start, callback, and a customer's bindings.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::account::login_response;
use crate::app::AppState;
use crate::config::OAuthKind;
use crate::identity::accounts::{self, Binding};
use crate::identity::guard::CurrentCustomer;
use crate::identity::oauth::{STATE_COOKIE, STATE_TTL, state_mismatch};
use crate::platform::extract::Query;
use crate::platform::request::RequestMeta;
use crate::platform::{ApiError, ApiResult};

const STATE_COOKIE_PATH: &str = "/api/v1/auth/oauth";

#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderInfo {
    pub name: String,
    /// `qq`, `wechat`, `weibo`, `github` or `oidc`.
    #[schema(value_type = String)]
    pub kind: OAuthKind,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct StartQuery {
    /// `session` (default): the callback sets the session cookie. `token`: the callback
    /// answers with an access and refresh token, for apps.
    pub mode: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct CallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    /// Set by the provider when the user declined.
    pub error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuthorizeUrl {
    /// Send the browser here.
    pub authorize_url: String,
}

fn state_cookie(state: &AppState, jar: CookieJar, value: String) -> CookieJar {
    jar.add(
        Cookie::build((STATE_COOKIE, value))
            .path(STATE_COOKIE_PATH)
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(state.config.http.behind_tls)
            .max_age(time::Duration::seconds(STATE_TTL.as_secs() as i64)),
    )
}

/// The third-party login providers this shop offers.
#[utoipa::path(get, path = "/auth/oauth", tag = "account",
    responses((status = 200, body = Vec<ProviderInfo>)))]
pub async fn list_providers(State(state): State<AppState>) -> Json<Vec<ProviderInfo>> {
    Json(
        state
            .oauth
            .list()
            .into_iter()
            .map(|(name, kind)| ProviderInfo { name, kind })
            .collect(),
    )
}

/// Starts a login: redirects to the provider with a fresh `state` and PKCE challenge.
#[utoipa::path(get, path = "/auth/oauth/{provider}/start", tag = "account", params(StartQuery),
    responses((status = 303, description = "Redirect to the provider"), (status = 404, description = "No such provider")))]
pub async fn start_oauth_login(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    Query(query): Query<StartQuery>,
    jar: CookieJar,
) -> ApiResult<(CookieJar, Response)> {
    let mode = match query.mode.as_deref() {
        None | Some("session") => "session",
        Some("token") => "token",
        Some(_) => return Err(ApiError::invalid("mode", "must be `session` or `token`")),
    };
    let provider = state.oauth.get(&provider)?;
    let (flow_state, url) = state
        .oauth
        .start(state.kv.as_ref(), &provider, mode, None)
        .await?;
    let jar = state_cookie(&state, jar, flow_state);
    Ok((
        jar,
        (StatusCode::SEE_OTHER, [(header::LOCATION, url)]).into_response(),
    ))
}

/// Where the provider sends the browser back: checks `state` against the browser's
/// cookie, exchanges the code, and signs in (or binds) the provider's user.
#[utoipa::path(get, path = "/auth/oauth/{provider}/callback", tag = "account", params(CallbackQuery),
    responses((status = 200, description = "Signed in: a customer login (session mode), a token response (token mode), or the bindings (bind)"),
        (status = 400, description = "State mismatch, declined, or a code that was already used"),
        (status = 401, description = "The ID token did not verify"),
        (status = 502, description = "The provider did not answer as expected")))]
pub async fn complete_oauth_login(
    State(state): State<AppState>,
    meta: RequestMeta,
    Path(provider): Path<String>,
    Query(query): Query<CallbackQuery>,
    jar: CookieJar,
) -> ApiResult<Response> {
    let sent_state = query.state.as_deref().unwrap_or_default();
    let cookie = jar.get(STATE_COOKIE).map(|c| c.value().to_owned());
    if sent_state.is_empty() || cookie.as_deref() != Some(sent_state) {
        return Err(state_mismatch());
    }
    let jar = jar.remove(Cookie::build(STATE_COOKIE).path(STATE_COOKIE_PATH));
    let pending = state
        .oauth
        .take_pending(state.kv.as_ref(), sent_state)
        .await?;
    if pending.provider != provider {
        return Err(state_mismatch());
    }
    if let Some(error) = query.error {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "oauth-declined",
            format!("the provider refused the login: {error}"),
        ));
    }
    let code = query
        .code
        .ok_or_else(|| ApiError::invalid("code", "is required"))?;
    let client = state.oauth.get(&provider)?;
    let user = state.oauth.identify(&client, &pending, &code).await?;
    if let Some(customer_id) = pending.bind_customer_id {
        let bindings =
            accounts::bind_provider(&state, &meta, customer_id, &provider, &user).await?;
        return Ok((jar, Json(bindings)).into_response());
    }
    let account = accounts::oauth_sign_in(&state, &meta, &provider, &user).await?;
    let method = format!("oauth:{provider}");
    if pending.mode == "token" {
        let tokens = accounts::tokens_for(&state, &meta, &account, &method).await?;
        return Ok((jar, [(header::CACHE_CONTROL, "no-store")], Json(tokens)).into_response());
    }
    let session = accounts::start_session(&state, &meta, account.id, &method).await?;
    Ok(login_response(&state, jar, session).await?.into_response())
}

/// The third-party logins bound to the signed-in customer.
#[utoipa::path(get, path = "/me/oauth", tag = "account", responses((status = 200, body = Vec<Binding>)))]
pub async fn list_bindings(
    State(state): State<AppState>,
    CurrentCustomer(customer): CurrentCustomer,
) -> ApiResult<Json<Vec<Binding>>> {
    Ok(Json(
        accounts::list_bindings(state.db.writer(), customer.customer_id).await?,
    ))
}

/// Starts binding a provider to the signed-in customer; send the browser to the URL, and
/// the callback binds instead of signing in.
#[utoipa::path(post, path = "/me/oauth/{provider}", tag = "account",
    responses((status = 200, body = AuthorizeUrl), (status = 404, description = "No such provider")))]
pub async fn start_binding(
    State(state): State<AppState>,
    CurrentCustomer(customer): CurrentCustomer,
    Path(provider): Path<String>,
    jar: CookieJar,
) -> ApiResult<(CookieJar, Json<AuthorizeUrl>)> {
    let provider = state.oauth.get(&provider)?;
    let (flow_state, authorize_url) = state
        .oauth
        .start(
            state.kv.as_ref(),
            &provider,
            "session",
            Some(customer.customer_id),
        )
        .await?;
    Ok((
        state_cookie(&state, jar, flow_state),
        Json(AuthorizeUrl { authorize_url }),
    ))
}

/// Unbinds a provider; refused (409) when it is the account's only way to sign in.
#[utoipa::path(delete, path = "/me/oauth/{provider}", tag = "account", responses((status = 204)))]
pub async fn delete_binding(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentCustomer(customer): CurrentCustomer,
    Path(provider): Path<String>,
) -> ApiResult<StatusCode> {
    accounts::unbind_provider(&state, &meta, customer.customer_id, &provider).await?;
    Ok(StatusCode::NO_CONTENT)
}
