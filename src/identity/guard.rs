//! The access check every route runs before its handler. A request proves who it is with a
//! session cookie (then writes need the CSRF token) or an `Authorization: Bearer` access
//! token (stateless: its scopes carry the staff member's permissions).

use std::collections::BTreeSet;

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;

use super::session::{self, Kind};
use super::store;
use super::tokens::{self, Claims, Subject};
use crate::app::AppState;
use crate::platform::routing::Access;
use crate::platform::{ApiError, ApiResult};

/// How the request proved who it is.
#[derive(Debug, Clone)]
pub enum Credential {
    Session {
        id: String,
        csrf_token: String,
    },
    /// An access token: its id and expiry (seconds since the epoch).
    Bearer {
        jti: String,
        expires_at: i64,
    },
}

impl Credential {
    pub fn session_id(&self) -> Option<&str> {
        match self {
            Credential::Session { id, .. } => Some(id),
            Credential::Bearer { .. } => None,
        }
    }

    pub fn csrf_token(&self) -> Option<&str> {
        match self {
            Credential::Session { csrf_token, .. } => Some(csrf_token),
            Credential::Bearer { .. } => None,
        }
    }
}

/// The signed-in staff member of the current request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub staff_id: i64,
    pub email: String,
    pub name: String,
    pub is_superuser: bool,
    pub permissions: BTreeSet<String>,
    pub credential: Credential,
}

impl Principal {
    pub fn can(&self, permission: &str) -> bool {
        self.is_superuser || self.permissions.contains(permission)
    }

    /// Namespace of this principal's idempotency keys.
    pub fn idempotency_scope(&self) -> String {
        format!("staff:{}", self.staff_id)
    }
}

/// The signed-in customer of the current request.
#[derive(Debug, Clone)]
pub struct CustomerPrincipal {
    pub customer_id: i64,
    pub credential: Credential,
}

impl CustomerPrincipal {
    pub fn idempotency_scope(&self) -> String {
        format!("customer:{}", self.customer_id)
    }
}

/// Runs `access` for the request, then the handler with the principal attached.
pub async fn enforce(access: Access, mut req: Request, next: Next) -> Response {
    if access == Access::Public {
        return next.run(req).await;
    }
    let Some(state) = req.extensions().get::<AppState>().cloned() else {
        return ApiError::internal("application state missing").into_response();
    };
    let result = match access {
        Access::Customer => authorize_customer(&state, req.method(), req.headers())
            .await
            .map(|p| {
                req.extensions_mut().insert(p);
            }),
        _ => authorize_staff(&state, access, req.method(), req.headers())
            .await
            .map(|p| {
                req.extensions_mut().insert(p);
            }),
    };
    match result {
        Ok(()) => next.run(req).await,
        Err(err) => err.into_response(),
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

async fn verify_bearer(state: &AppState, token: &str) -> ApiResult<Claims> {
    tokens::verify_access_token(
        &state.keys,
        &state.config.auth.tokens,
        state.kv.as_ref(),
        token,
    )
    .await
}

/// Cookie-authenticated writes must echo the session's CSRF token; bearer requests are
/// not sent by browsers on their own, so they need none.
fn check_csrf(method: &Method, headers: &HeaderMap, credential: &Credential) -> ApiResult<()> {
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    let Some(expected) = credential.csrf_token() else {
        return Ok(());
    };
    if safe {
        return Ok(());
    }
    let sent = headers
        .get(session::CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if constant_time_eq(sent.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::csrf_failed())
    }
}

async fn authorize_staff(
    state: &AppState,
    access: Access,
    method: &Method,
    headers: &HeaderMap,
) -> ApiResult<Principal> {
    let principal = match bearer(headers) {
        Some(token) => staff_from_claims(verify_bearer(state, token).await?)?,
        None => load_principal(state, headers)
            .await?
            .ok_or_else(ApiError::unauthorized)?,
    };
    check_csrf(method, headers, &principal.credential)?;
    if let Access::Permission(permission) = access
        && !principal.can(permission.name)
    {
        return Err(ApiError::forbidden(permission.name));
    }
    Ok(principal)
}

fn staff_from_claims(claims: Claims) -> ApiResult<Principal> {
    let Some(Subject::Staff(staff_id)) = Subject::parse(&claims.sub) else {
        return Err(ApiError::wrong_account_kind("staff"));
    };
    let mut is_superuser = false;
    let mut permissions = BTreeSet::new();
    for scope in claims.scopes() {
        match scope {
            "superuser" => is_superuser = true,
            "staff" => {}
            permission => {
                permissions.insert(permission.to_owned());
            }
        }
    }
    Ok(Principal {
        staff_id,
        email: claims.email.unwrap_or_default(),
        name: claims.name,
        is_superuser,
        permissions,
        credential: Credential::Bearer {
            jti: claims.jti,
            expires_at: claims.exp,
        },
    })
}

async fn authorize_customer(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
) -> ApiResult<CustomerPrincipal> {
    let principal = match bearer(headers) {
        Some(token) => {
            let claims = verify_bearer(state, token).await?;
            let Some(Subject::Customer(customer_id)) = Subject::parse(&claims.sub) else {
                return Err(ApiError::wrong_account_kind("customer"));
            };
            CustomerPrincipal {
                customer_id,
                credential: Credential::Bearer {
                    jti: claims.jti,
                    expires_at: claims.exp,
                },
            }
        }
        None => load_customer(state, headers)
            .await?
            .ok_or_else(ApiError::unauthorized)?,
    };
    check_csrf(method, headers, &principal.credential)?;
    Ok(principal)
}

/// The signed-in customer on a route open to guests too (carts): `None` without
/// credentials or with a lapsed session cookie; a bad bearer token is still a 401.
pub async fn optional_customer(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
) -> ApiResult<Option<CustomerPrincipal>> {
    if bearer(headers).is_some() {
        return authorize_customer(state, method, headers).await.map(Some);
    }
    let Some(principal) = load_customer(state, headers).await? else {
        return Ok(None);
    };
    check_csrf(method, headers, &principal.credential)?;
    Ok(Some(principal))
}

/// The customer behind the request's session cookie, if the session is valid: the
/// account is active and its password has not changed since the session began.
pub async fn load_customer(
    state: &AppState,
    headers: &HeaderMap,
) -> ApiResult<Option<CustomerPrincipal>> {
    let jar = CookieJar::from_headers(headers);
    let Some(session_id) = jar
        .get(Kind::Customer.cookie())
        .map(|c| c.value().to_owned())
    else {
        return Ok(None);
    };
    let Some(session) = session::load(state.kv.as_ref(), Kind::Customer, &session_id).await? else {
        return Ok(None);
    };
    let account =
        crate::customers::service::find_account(state.db.writer(), session.account_id).await?;
    match account {
        Some(account)
            if account.can_sign_in() && session.created_at >= account.credentials_changed_at =>
        {
            Ok(Some(CustomerPrincipal {
                customer_id: account.id,
                credential: Credential::Session {
                    id: session_id,
                    csrf_token: session.csrf_token,
                },
            }))
        }
        _ => Ok(None),
    }
}

/// The staff member behind the request's session cookie, if it is valid and the account
/// active.
pub async fn load_principal(state: &AppState, headers: &HeaderMap) -> ApiResult<Option<Principal>> {
    let jar = CookieJar::from_headers(headers);
    let Some(session_id) = jar.get(Kind::Staff.cookie()).map(|c| c.value().to_owned()) else {
        return Ok(None);
    };
    let Some(session) = session::load(state.kv.as_ref(), Kind::Staff, &session_id).await? else {
        return Ok(None);
    };
    let db = state.db.writer();
    let Some(staff) = store::find_staff(db, session.account_id).await? else {
        return Ok(None);
    };
    if !staff.is_active {
        return Ok(None);
    }
    let permissions = store::permissions_of(db, staff.id).await?;
    Ok(Some(Principal {
        staff_id: staff.id,
        email: staff.email,
        name: staff.name,
        is_superuser: staff.is_superuser,
        permissions,
        credential: Credential::Session {
            id: session_id,
            csrf_token: session.csrf_token,
        },
    }))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Extractor for handlers behind `Access::Staff` or `Access::Permission`.
pub struct CurrentStaff(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for CurrentStaff {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(CurrentStaff)
            .ok_or_else(ApiError::unauthorized)
    }
}

/// Extractor for handlers behind `Access::Customer`.
pub struct CurrentCustomer(pub CustomerPrincipal);

impl<S: Send + Sync> FromRequestParts<S> for CurrentCustomer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<CustomerPrincipal>()
            .cloned()
            .map(CurrentCustomer)
            .ok_or_else(ApiError::unauthorized)
    }
}
