//! The access check every route runs before its handler: session, CSRF, permission.

use std::collections::BTreeSet;

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;

use super::{session, store};
use crate::app::AppState;
use crate::platform::routing::Access;
use crate::platform::{ApiError, ApiResult};

/// The signed-in staff member of the current request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub staff_id: i64,
    pub email: String,
    pub name: String,
    pub is_superuser: bool,
    pub permissions: BTreeSet<String>,
    pub session_id: String,
    pub csrf_token: String,
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

/// Runs `access` for the request, then the handler with the `Principal` attached.
pub async fn enforce(access: Access, mut req: Request, next: Next) -> Response {
    if access == Access::Public {
        return next.run(req).await;
    }
    let Some(state) = req.extensions().get::<AppState>().cloned() else {
        return ApiError::internal("application state missing").into_response();
    };
    match authorize(&state, access, req.method(), req.headers().clone()).await {
        Ok(principal) => {
            req.extensions_mut().insert(principal);
            next.run(req).await
        }
        Err(err) => err.into_response(),
    }
}

async fn authorize(
    state: &AppState,
    access: Access,
    method: &Method,
    headers: HeaderMap,
) -> ApiResult<Principal> {
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    let principal = load_principal(state, &headers)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    if !safe {
        let sent = headers
            .get(session::CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !constant_time_eq(sent.as_bytes(), principal.csrf_token.as_bytes()) {
            return Err(ApiError::csrf_failed());
        }
    }
    if let Access::Permission(permission) = access
        && !principal.can(permission.name)
    {
        return Err(ApiError::forbidden(permission.name));
    }
    Ok(principal)
}

/// The principal behind the request's session cookie, if it is valid and the account active.
pub async fn load_principal(state: &AppState, headers: &HeaderMap) -> ApiResult<Option<Principal>> {
    let jar = CookieJar::from_headers(headers);
    let Some(session_id) = jar.get(session::COOKIE).map(|c| c.value().to_owned()) else {
        return Ok(None);
    };
    let Some(session) = session::load(state.kv.as_ref(), &session_id).await? else {
        return Ok(None);
    };
    let db = state.db.writer();
    let Some(staff) = store::find_staff(db, session.staff_id).await? else {
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
        session_id,
        csrf_token: session.csrf_token,
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
