//! Request extractors whose rejections are problem documents: a malformed body is a 400,
//! a wrong content type a 415, a well-formed body with invalid fields a 422 naming the field.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use super::error::{ApiError, FieldError};

/// A JSON request body.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers().get(header::CONTENT_TYPE)) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "send the body as application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            let status = rejection.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(status, "payload-too-large", "the request body is too large")
            } else {
                ApiError::new(status, "body-unreadable", rejection.body_text())
            }
        })?;
        parse_json(&bytes).map(Json)
    }
}

/// Parses a JSON document, telling syntax errors (400) from well-formed JSON of the wrong
/// shape (422 naming the field).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::malformed_body(format!("malformed JSON: {e}")))?;
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        field_error(&path, &err.into_inner().to_string())
    })
}

fn field_error(path: &str, message: &str) -> ApiError {
    // serde reports a missing field at the parent path with the name in the message.
    let message = message.split(" at line ").next().unwrap_or(message);
    let field = match (path, message.strip_prefix("missing field `")) {
        (_, Some(rest)) => {
            let name = rest.trim_end_matches('`');
            if path == "." || path.is_empty() {
                name.to_owned()
            } else {
                format!("{path}.{name}")
            }
        }
        (".", None) | ("", None) => "body".to_owned(),
        (path, None) => path.to_owned(),
    };
    ApiError::validation(vec![FieldError {
        field,
        message: message.to_owned(),
    }])
}

fn is_json(content_type: Option<&header::HeaderValue>) -> bool {
    let Some(value) = content_type.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mime = value.split(';').next().unwrap_or_default().trim();
    mime.eq_ignore_ascii_case("application/json")
        || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// Typed query-string parameters; a value of the wrong type is a 400 naming the parameter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(Query)
            .map_err(|err| {
                let field = err.path().to_string();
                let message = err.into_inner().to_string();
                ApiError::validation(vec![FieldError {
                    field: if field == "." { "query".into() } else { field },
                    message,
                }])
                .with_status(StatusCode::BAD_REQUEST)
            })
    }
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
pub fn double_option<'de, D, T>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(de).map(Some)
}
