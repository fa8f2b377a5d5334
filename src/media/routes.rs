//! HTTP routes of the media store: staff uploads, and public serving of stored files.

use std::ops::Range;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa::ToSchema;
use utoipa_axum::routes;

use super::MEDIA_WRITE;
use super::model::{MediaKey, MediaKindFilter, StoredMedia};
use super::store::{IMMUTABLE, MediaRead};
use super::upload::MultipartForm;
use crate::app::AppState;
use crate::platform::routing::{Access, ApiRouter};
use crate::platform::{ApiError, ApiResult};

/// Routes under `/api/v1/admin`.
pub fn admin_router() -> ApiRouter {
    ApiRouter::new().upload_route(routes!(upload_media), Access::Permission(MEDIA_WRITE))
}

/// Routes at the root, beside `/healthz`: media URLs are short and outside the API's
/// rate limits, since one storefront page loads dozens of them.
pub fn public_router() -> ApiRouter {
    ApiRouter::new().route(routes!(get_media), Access::Public)
}

/// The form of an upload.
#[derive(ToSchema)]
pub struct UploadForm {
    /// An image (PNG, JPEG, GIF, WebP, AVIF) or a video (MP4, QuickTime, WebM); the type
    /// is read from the file's bytes.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

/// Stores an image or video, e.g. for a page's rich text; the answer's `url` is where
/// clients fetch it. Uploading the same file twice gives the same key.
#[utoipa::path(post, path = "/media", tag = "media",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, body = StoredMedia, headers(("Location" = String))),
        (status = 413, description = "Over `media.max_image_bytes` or `media.max_video_bytes`"),
        (status = 415, description = "Not an accepted image or video type"),
        (status = 422, description = "No `file` field")))]
pub async fn upload_media(
    State(state): State<AppState>,
    MultipartForm(mut form): MultipartForm,
) -> ApiResult<impl IntoResponse> {
    let stored = state
        .media
        .upload(&mut form, "file", MediaKindFilter::Any)
        .await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, stored.url.clone())],
        axum::Json(stored),
    ))
}

/// A stored file. Keys name their content, so responses may be cached for a year;
/// `If-None-Match` gets a 304 and `Range` a 206 (video players seek with it).
#[utoipa::path(get, path = "/media/{*key}", tag = "media",
    params(("key" = String, Path, description = "`{sha256[..2]}/{sha256}.{ext}`")),
    responses(
        (status = 200, description = "The file", content_type = "application/octet-stream",
            headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 206, description = "The requested byte range"),
        (status = 304, description = "The client's copy is current"),
        (status = 404, description = "No such file"),
        (status = 416, description = "The range is outside the file")))]
pub async fn get_media(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let key = MediaKey::parse(&key).ok_or_else(|| ApiError::not_found("media", &key))?;
    let etag = format!("\"{}\"", key.sha256());
    if matches_etag(headers.get(header::IF_NONE_MATCH), &etag) {
        state.media.size(&key).await?;
        return Ok(with_file_headers(
            StatusCode::NOT_MODIFIED.into_response(),
            &key,
            &etag,
        ));
    }
    let wanted = match requested_range(&headers, &etag) {
        Some(range) => {
            let size = state.media.size(&key).await?;
            match byte_range(range, size) {
                Wanted::Part(part) => Some(part),
                Wanted::Whole => None,
                Wanted::Unsatisfiable => return Ok(unsatisfiable(size)),
            }
        }
        None => None,
    };
    let read = state.media.read(&key, wanted.clone()).await?;
    let response = stream_response(read, wanted.is_some());
    Ok(with_file_headers(response, &key, &etag))
}

/// The `Range` header, unless an `If-Range` names another version of the file: a range of
/// that would mix two files, so the whole file is sent.
fn requested_range<'a>(headers: &'a HeaderMap, etag: &str) -> Option<&'a str> {
    headers
        .get(header::RANGE)
        .filter(|_| headers.get(header::IF_RANGE).is_none_or(|v| v == etag))
        .and_then(|v| v.to_str().ok())
}

fn stream_response(read: MediaRead, partial: bool) -> Response {
    let length = read.range.end - read.range.start;
    let mut response = Response::new(Body::from_stream(read.stream));
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    if partial {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        let last = read.range.end.saturating_sub(1);
        let content_range = format!("bytes {}-{last}/{}", read.range.start, read.size);
        if let Ok(value) = HeaderValue::from_str(&content_range) {
            response.headers_mut().insert(header::CONTENT_RANGE, value);
        }
    }
    response
}

fn with_file_headers(mut response: Response, key: &MediaKey, etag: &str) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(key.media_type().content_type),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    if let Ok(etag) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, etag);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    response
}

/// `If-None-Match`: `*` or a list of tags, weak ones (`W/"…"`) included.
fn matches_etag(if_none_match: Option<&HeaderValue>, etag: &str) -> bool {
    let Some(value) = if_none_match.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    value.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
    })
}

enum Wanted {
    Whole,
    Part(Range<u64>),
    Unsatisfiable,
}

/// One `bytes=` range of a file of `size` bytes. Several ranges, other units and
/// malformed values get the whole file, as RFC 9110 allows.
fn byte_range(value: &str, size: u64) -> Wanted {
    let Some((first, last)) = value
        .strip_prefix("bytes=")
        .filter(|spec| !spec.contains(','))
        .and_then(|spec| spec.trim().split_once('-'))
    else {
        return Wanted::Whole;
    };
    let parsed = |s: &str| s.trim().parse::<u64>().ok();
    let (start, end) = match (first.trim().is_empty(), last.trim().is_empty()) {
        // `bytes=-N`: the last N bytes.
        (true, false) => match parsed(last) {
            Some(0) => return Wanted::Unsatisfiable,
            Some(n) => (size.saturating_sub(n), size),
            None => return Wanted::Whole,
        },
        (false, true) => match parsed(first) {
            Some(start) => (start, size),
            None => return Wanted::Whole,
        },
        (false, false) => match (parsed(first), parsed(last)) {
            (Some(start), Some(last)) if start <= last => (start, size.min(last + 1)),
            _ => return Wanted::Whole,
        },
        (true, true) => return Wanted::Whole,
    };
    if start >= size {
        Wanted::Unsatisfiable
    } else {
        Wanted::Part(start..end)
    }
}

fn unsatisfiable(size: u64) -> Response {
    let content_range = HeaderValue::from_str(&format!("bytes */{size}"))
        .unwrap_or_else(|_| HeaderValue::from_static("bytes */0"));
    ApiError::new(
        StatusCode::RANGE_NOT_SATISFIABLE,
        "range-not-satisfiable",
        format!("the file has {size} bytes"),
    )
    .with_header(header::CONTENT_RANGE, content_range)
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(value: &str, size: u64) -> Option<Range<u64>> {
        match byte_range(value, size) {
            Wanted::Part(range) => Some(range),
            Wanted::Whole => None,
            Wanted::Unsatisfiable => Some(u64::MAX..u64::MAX),
        }
    }

    #[test]
    fn reads_single_byte_ranges() {
        assert_eq!(part("bytes=0-9", 100), Some(0..10));
        assert_eq!(part("bytes=90-200", 100), Some(90..100));
        assert_eq!(part("bytes=50-", 100), Some(50..100));
        assert_eq!(part("bytes=-10", 100), Some(90..100));
        assert_eq!(part("bytes=-500", 100), Some(0..100));
        assert_eq!(part("bytes=100-", 100), Some(u64::MAX..u64::MAX));
        assert_eq!(part("bytes=-0", 100), Some(u64::MAX..u64::MAX));
        for whole in [
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=9-2",
            "bytes=x-",
            "bytes=-",
        ] {
            assert_eq!(part(whole, 100), None, "{whole}");
        }
    }

    #[test]
    fn matches_strong_weak_and_any_tags() {
        let etag = "\"abc\"";
        let check = |v: &'static str| matches_etag(Some(&HeaderValue::from_static(v)), etag);
        assert!(check("\"abc\""));
        assert!(check("W/\"abc\""));
        assert!(check("\"x\", \"abc\""));
        assert!(check("*"));
        assert!(!check("\"abd\""));
        assert!(!matches_etag(None, etag));
    }
}
