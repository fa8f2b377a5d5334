//! The one error type of the API, rendered as RFC 9457 `application/problem+json`.

use std::borrow::Cow;

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sea_orm::{DbErr, SqlErr};
use serde::Serialize;
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// One invalid input field: `field` is a dotted path into the request.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// The problem document every error response carries.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem; stable, like `code`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Machine-readable identifier of the problem, e.g. `not-found`.
    pub code: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// An error that becomes a problem response. Handlers return it with `?`; internal
/// failures are logged in full and shown to the client only as an opaque 500.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: Cow<'static, str>,
    detail: String,
    errors: Vec<FieldError>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code: code.into(),
            detail: detail.into(),
            errors: Vec::new(),
            headers: Vec::new(),
        }
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Same problem, another status (query-string errors are 400s, not 422s).
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub fn with_code(mut self, code: impl Into<Cow<'static, str>>) -> Self {
        self.code = code.into();
        self
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", detail)
    }

    pub fn malformed_body(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed-body", detail)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "sign in to use this resource",
        )
    }

    pub fn invalid_credentials() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid-credentials",
            "email or password is incorrect",
        )
    }

    /// A bearer token that is malformed, forged, expired or revoked (RFC 6750).
    pub fn invalid_token() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid-token",
            "the access token is invalid, expired or revoked",
        )
        .with_header(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"invalid_token\""),
        )
    }

    /// A refresh token or authorization code that is unknown, spent, expired or revoked
    /// (RFC 6749 `invalid_grant`).
    pub fn invalid_grant() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid-grant",
            "the grant is invalid, expired, already used or revoked",
        )
    }

    /// Signed in, but as the wrong kind of account for this route.
    pub fn wrong_account_kind(needed: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "wrong-account-kind",
            format!("this route needs a {needed} sign-in"),
        )
    }

    pub fn forbidden(permission: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this action needs the permission {permission}"),
        )
    }

    pub fn csrf_failed() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "csrf-token-invalid",
            "send the CSRF token from /api/v1/admin/auth/csrf in the X-CSRF-Token header",
        )
    }

    pub fn not_found(resource: &str, id: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("{resource} {id} does not exist"),
        )
    }

    pub fn route_not_found(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no route for {path}"),
        )
    }

    pub fn conflict(code: impl Into<Cow<'static, str>>, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }

    /// A single invalid field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    }

    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            _ => format!("{} fields are invalid", errors.len()),
        };
        Self {
            errors,
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation-failed",
                detail,
            )
        }
    }

    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-requests",
            format!("too many attempts; retry in {retry_after_secs} s"),
        )
        .with_header(
            header::RETRY_AFTER,
            HeaderValue::from(retry_after_secs.max(1)),
        )
    }

    /// An unexpected failure: logged with its cause, opaque to the client.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal-error",
            "the server failed to handle the request; it has been logged",
        )
    }

    /// Builds the problem document; also used to rewrite framework errors.
    pub fn problem(&self) -> Problem {
        Problem {
            kind: format!("urn:bazaar:problem:{}", self.code),
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.to_string(),
            errors: self.errors.clone(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON))],
            body,
        )
            .into_response();
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

/// Constraint violations become client errors here, in one place; anything else is a 500.
impl ApiError {
    /// For an insert or update guarded by a uniqueness check: a unique-constraint violation
    /// (a concurrent writer won the race after the check) becomes the check's own
    /// `conflict`; any other database error maps as usual.
    pub fn unique_as(err: DbErr, conflict: ApiError) -> ApiError {
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => conflict,
            _ => err.into(),
        }
    }
}

impl From<DbErr> for ApiError {
    fn from(err: DbErr) -> Self {
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(detail)) => {
                tracing::debug!(%detail, "unique constraint violated");
                ApiError::conflict(
                    "already-exists",
                    "a record with the same unique value already exists",
                )
            }
            Some(SqlErr::ForeignKeyConstraintViolation(detail)) => reference_conflict(&detail),
            // SQLite reports ON DELETE RESTRICT as SQLITE_CONSTRAINT_TRIGGER (1811), which
            // sea-orm does not classify.
            _ if err.to_string().contains("FOREIGN KEY constraint failed") => {
                reference_conflict(&err.to_string())
            }
            _ => ApiError::internal(err),
        }
    }
}

fn reference_conflict(detail: &str) -> ApiError {
    tracing::debug!(%detail, "foreign key constraint violated");
    ApiError::conflict(
        "reference-conflict",
        "the record refers to a missing record, or is still referred to by others",
    )
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> Self {
        ApiError::internal(format!("{err:#}"))
    }
}

/// Collects field errors while validating a request, so a client sees all of them at once.
#[derive(Debug, Default)]
pub struct Validator(Vec<FieldError>);

impl Validator {
    pub fn check(&mut self, ok: bool, field: &str, message: &str) -> &mut Self {
        if !ok {
            self.0.push(FieldError {
                field: field.to_owned(),
                message: message.to_owned(),
            });
        }
        self
    }

    /// A trimmed, non-empty string of at most `max` characters.
    pub fn text(&mut self, value: &str, field: &str, max: usize) -> &mut Self {
        let len = value.trim().chars().count();
        self.check(len > 0, field, "must not be empty").check(
            len <= max,
            field,
            &format!("must be at most {max} characters"),
        )
    }

    /// A machine-friendly code: 1 to 64 letters, digits, `-` or `_`.
    pub fn code(&mut self, value: &str, field: &str) -> &mut Self {
        let ok = !value.is_empty()
            && value.len() <= 64
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        self.check(ok, field, "must be 1 to 64 letters, digits, '-' or '_'")
    }

    /// `code` for a field a partial update may leave out.
    pub fn code_if(&mut self, value: Option<&String>, field: &str) -> &mut Self {
        match value {
            Some(value) => self.code(value, field),
            None => self,
        }
    }

    /// `text` for a field a partial update may leave out.
    pub fn text_if(&mut self, value: Option<&String>, field: &str, max: usize) -> &mut Self {
        match value {
            Some(value) => self.text(value, field, max),
            None => self,
        }
    }

    /// A URL slug: 1–100 lowercase ASCII letters and digits in words joined by single
    /// hyphens.
    pub fn slug(&mut self, value: &str, field: &str) -> &mut Self {
        let valid = value.len() <= 100
            && value.split('-').all(|word| {
                !word.is_empty()
                    && word
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            });
        self.check(
            valid,
            field,
            "must be 1 to 100 lowercase letters and digits, words joined by single hyphens",
        )
    }

    pub fn non_negative(&mut self, value: i64, field: &str) -> &mut Self {
        self.check(value >= 0, field, "must not be negative")
    }

    pub fn finish(&mut self) -> ApiResult<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(std::mem::take(&mut self.0)))
        }
    }
}
