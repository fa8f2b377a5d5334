//! Optimistic concurrency: every editable row has a `version`; reads send it as an ETag,
//! writes name the version they edited (`If-Match` or a `version` field) and lose with
//! 412/409 when someone else wrote first.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PrimaryKeyTrait, QueryFilter,
};

use super::error::{ApiError, ApiResult};

/// The strong ETag of a resource version.
pub fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// A JSON response with its `ETag`.
pub struct Tagged<T>(pub i64, pub T);

impl<T: serde::Serialize> IntoResponse for Tagged<T> {
    fn into_response(self) -> Response {
        ([(header::ETAG, etag(self.0))], axum::Json(self.1)).into_response()
    }
}

/// The `If-Match` header, when the client sent one.
#[derive(Debug, Clone, Copy, Default)]
pub struct IfMatch(pub Option<i64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::IF_MATCH) else {
            return Ok(Self(None));
        };
        value
            .to_str()
            .ok()
            .map(|v| v.trim().trim_start_matches("W/").trim_matches('"'))
            .and_then(|v| v.parse().ok())
            .map(|v| Self(Some(v)))
            .ok_or_else(|| {
                ApiError::bad_request("If-Match must be an ETag this API returned, e.g. \"3\"")
            })
    }
}

/// The version a write expects to replace, and how the client stated it.
#[derive(Debug, Clone, Copy)]
pub enum Expected {
    IfMatch(i64),
    Body(i64),
}

impl Expected {
    /// `If-Match` wins over the body's `version`; a write with neither is refused (428) so
    /// that no edit silently overwrites another.
    pub fn from(if_match: IfMatch, body_version: Option<i64>) -> ApiResult<Self> {
        match (if_match.0, body_version) {
            (Some(v), _) => Ok(Self::IfMatch(v)),
            (None, Some(v)) => Ok(Self::Body(v)),
            (None, None) => Err(ApiError::new(
                StatusCode::PRECONDITION_REQUIRED,
                "precondition-required",
                "send If-Match with the resource's ETag, or its current `version` in the body",
            )),
        }
    }

    pub fn version(self) -> i64 {
        match self {
            Self::IfMatch(v) | Self::Body(v) => v,
        }
    }

    /// The error for a write that lost the race.
    pub fn stale(self, resource: &str) -> ApiError {
        match self {
            Self::IfMatch(_) => ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "precondition-failed",
                format!("the {resource} changed since the ETag you sent; fetch it again"),
            ),
            Self::Body(_) => ApiError::conflict(
                "stale-version",
                format!("the {resource} changed since version you edited; fetch it again"),
            ),
        }
    }
}

/// `UPDATE … SET <changes>, version = version + 1 WHERE id = ? AND version = ?`.
/// A row at another version is a stale write (409/412); no row at all is a 404.
pub async fn update_versioned<A, C>(
    db: &C,
    changes: A,
    [id_column, version_column]: [<A::Entity as EntityTrait>::Column; 2],
    id: i64,
    expected: Expected,
    resource: &str,
) -> ApiResult<()>
where
    A: ActiveModelTrait + Send,
    C: ConnectionTrait,
    <<A::Entity as EntityTrait>::PrimaryKey as PrimaryKeyTrait>::ValueType: From<i64>,
{
    let result = <A::Entity as EntityTrait>::update_many()
        .set(changes)
        .col_expr(version_column, Expr::col(version_column).add(1))
        .filter(id_column.eq(id))
        .filter(version_column.eq(expected.version()))
        .exec(db)
        .await?;
    if result.rows_affected == 1 {
        return Ok(());
    }
    match <A::Entity as EntityTrait>::find_by_id(id).one(db).await? {
        Some(_) => Err(expected.stale(resource)),
        None => Err(ApiError::not_found(resource, id)),
    }
}
