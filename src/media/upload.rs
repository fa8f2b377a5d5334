//! Reading uploads from `multipart/form-data` bodies without trusting them: the file is
//! streamed, its type is read from its first bytes, and reading stops as soon as it is
//! over the limit of its kind.

use axum::body::Bytes;
use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::StatusCode;

use super::model::{MediaKindFilter, MediaLimits, MediaType};
use crate::platform::{ApiError, ApiResult};

/// A `multipart/form-data` request body; any other body is a 415 problem.
pub struct MultipartForm(pub Multipart);

impl<S: Send + Sync> FromRequest<S> for MultipartForm {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Multipart::from_request(req, state)
            .await
            .map(Self)
            .map_err(|_| {
                ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported-media-type",
                    "send the body as multipart/form-data",
                )
            })
    }
}

/// The file in form field `field_name`; fields before it are skipped, fields after it stay
/// unread for the caller. Without that field: a 422 naming it.
pub async fn read_upload(
    form: &mut Multipart,
    field_name: &str,
    filter: MediaKindFilter,
    limits: MediaLimits,
) -> ApiResult<Bytes> {
    while let Some(field) = form.next_field().await.map_err(unreadable)? {
        if field.name() == Some(field_name) {
            return read_field(field, filter, limits).await;
        }
    }
    Err(ApiError::invalid(
        field_name,
        "attach the file in this multipart form field",
    ))
}

/// Reads one form field as a file: a 415 as soon as its first bytes show a type `filter`
/// refuses, a 413 as soon as it outgrows the limit of its kind.
pub async fn read_field(
    mut field: Field<'_>,
    filter: MediaKindFilter,
    limits: MediaLimits,
) -> ApiResult<Bytes> {
    let mut buffer = Vec::new();
    let mut media_type = None;
    let mut limit = limits.largest(filter);
    while let Some(chunk) = field.chunk().await.map_err(unreadable)? {
        buffer.extend_from_slice(&chunk);
        let over = buffer.len() as u64 > limit;
        if over || (media_type.is_none() && buffer.len() >= MediaType::SNIFF_LEN) {
            let found = MediaType::require(MediaType::sniff(&buffer), filter)?;
            limits.check(found.kind, buffer.len() as u64)?;
            media_type = Some(found);
            limit = limits.of(found.kind);
        }
    }
    Ok(Bytes::from(buffer))
}

fn unreadable(err: MultipartError) -> ApiError {
    let status = err.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(status, "payload-too-large", "the request body is too large")
    } else {
        ApiError::malformed_body(format!("malformed multipart body: {}", err.body_text()))
    }
}
