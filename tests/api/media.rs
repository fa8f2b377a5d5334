//! The media store: staff uploads checked by their bytes, content-addressed keys, files
//! served with year-long cache headers, on a local directory and on an S3-compatible
//! bucket (a fake one speaking the S3 protocol on loopback).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response as AxumResponse};
use axum::routing::get;
use bazaar::config::{MediaBackend, S3Config, Secret};
use bazaar::media::placeholder_png;
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use reqwest::{Method, Response};

use crate::harness::{
    self, Backend, CSRF_HEADER, SESSION_COOKIE, TestApp, both_backends, create_staff, expect_json,
    expect_problem, login, login_as_superuser, raw_http, send, spawn, spawn_with,
};

both_backends!(
    uploads_are_served_with_immutable_cache_headers,
    uploads_are_checked_by_their_bytes_and_size,
    uploads_need_the_media_permission,
    videos_may_exceed_the_general_body_limit,
    uploads_may_take_longer_than_other_requests,
    only_well_formed_keys_are_served,
);

const UPLOAD: &str = "/api/v1/admin/media";
const BOUNDARY: &str = "bazaar-test-boundary-5f1c";

/// A `multipart/form-data` body: a text field `note`, then a file in `field`.
pub fn form(field: &str, file_name: &str, declared_type: &str, bytes: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; \
         filename=\"{file_name}\"\r\nContent-Type: {declared_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn upload_as(app: &TestApp, field: &str, declared_type: &str, bytes: &[u8]) -> Response {
    send(
        app.request(Method::POST, UPLOAD)
            .header(
                CONTENT_TYPE,
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(form(field, "upload.png", declared_type, bytes)),
    )
    .await
}

/// Sends `bytes` as the `file` field of a multipart form to `path`.
pub async fn send_file(app: &TestApp, method: Method, path: &str, bytes: &[u8]) -> Response {
    send(
        app.request(method, path)
            .header(
                CONTENT_TYPE,
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(form(
                "file",
                "upload.bin",
                "application/octet-stream",
                bytes,
            )),
    )
    .await
}

async fn upload(app: &TestApp, bytes: &[u8]) -> Response {
    upload_as(app, "file", "image/png", bytes).await
}

fn header<'a>(response: &'a Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header"))
}

/// The start of an MP4 file: an `ftyp` box, then `size` bytes in all.
fn mp4(size: usize) -> Vec<u8> {
    let mut video = b"\0\0\0\x18ftypisom\0\0\x02\0isomavc1".to_vec();
    video.resize(size, 0);
    video
}

async fn uploads_are_served_with_immutable_cache_headers(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let png = placeholder_png(120, 80, [30, 110, 190], 3);

    let response = upload(&app, &png).await;
    let location = header(&response, "location").to_owned();
    let stored = expect_json(response, 201).await;
    let key = stored["key"].as_str().unwrap();
    assert_eq!(stored["content_type"], "image/png");
    assert_eq!(stored["kind"], "image");
    assert_eq!(stored["size"], png.len());
    assert_eq!(stored["url"], format!("/media/{key}"));
    assert_eq!(location, format!("/media/{key}"));
    let sha = key.split('/').nth(1).unwrap().trim_end_matches(".png");
    assert_eq!(&key[..3], format!("{}/", &sha[..2]));

    // The same bytes again are the same file.
    let again = expect_json(upload(&app, &png).await, 201).await;
    assert_eq!(again["key"], stored["key"]);

    let served = app.get(&location).await;
    assert_eq!(served.status(), 200);
    assert_eq!(header(&served, "content-type"), "image/png");
    assert_eq!(
        header(&served, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(header(&served, "etag"), format!("\"{sha}\""));
    assert_eq!(header(&served, "x-content-type-options"), "nosniff");
    assert_eq!(header(&served, "content-length"), png.len().to_string());
    assert_eq!(served.bytes().await.unwrap(), png);

    let cached = send(
        app.request(Method::GET, &location)
            .header("if-none-match", format!("\"{sha}\"")),
    )
    .await;
    assert_eq!(cached.status(), 304);
    assert_eq!(header(&cached, "etag"), format!("\"{sha}\""));
    assert!(cached.bytes().await.unwrap().is_empty());

    let stale = send(
        app.request(Method::GET, &location)
            .header("if-none-match", "\"0000\""),
    )
    .await;
    assert_eq!(stale.status(), 200);

    // Video players seek with byte ranges.
    let part = send(
        app.request(Method::GET, &location)
            .header("range", "bytes=8-15"),
    )
    .await;
    assert_eq!(part.status(), 206);
    assert_eq!(
        header(&part, "content-range"),
        format!("bytes 8-15/{}", png.len())
    );
    assert_eq!(part.bytes().await.unwrap(), png[8..16]);
    let outside = send(
        app.request(Method::GET, &location)
            .header("range", format!("bytes={}-", png.len())),
    )
    .await;
    assert_eq!(
        header(&outside, "content-range"),
        format!("bytes */{}", png.len())
    );
    expect_problem(outside, 416, "range-not-satisfiable").await;
    app.shutdown().await;
}

async fn uploads_are_checked_by_their_bytes_and_size(backend: Backend) {
    let app = spawn_with(backend, |config| config.media.max_image_bytes = 4096).await;
    login_as_superuser(&app).await;

    // Named and declared as PNG, but HTML or SVG: refused, with the accepted types listed.
    let html = b"<!DOCTYPE html><html><script>alert(document.cookie)</script></html>";
    let problem = expect_problem(upload(&app, html).await, 415, "unsupported-media-type").await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("image/png") && detail.contains("video/mp4"),
        "{detail}"
    );
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#;
    let svg_upload = upload_as(&app, "file", "image/svg+xml", svg).await;
    expect_problem(svg_upload, 415, "unsupported-media-type").await;

    // A PNG over the image limit.
    let mut big = placeholder_png(8, 8, [0, 0, 0], 1);
    big.resize(4097, 0);
    expect_problem(upload(&app, &big).await, 413, "media-too-large").await;
    big.truncate(4096);
    expect_json(upload(&app, &big).await, 201).await;

    let png = placeholder_png(8, 8, [0, 0, 0], 1);
    let problem = expect_problem(
        upload_as(&app, "image", "image/png", &png).await,
        422,
        "validation-failed",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "file");
    let json = app.post(UPLOAD, &serde_json::json!({"file": "x"})).await;
    expect_problem(json, 415, "unsupported-media-type").await;
    app.shutdown().await;
}

async fn uploads_need_the_media_permission(backend: Backend) {
    let app = spawn(backend).await;
    let png = placeholder_png(16, 16, [200, 0, 0], 9);
    expect_problem(upload(&app, &png).await, 401, "unauthenticated").await;

    create_staff(&app, "writer@example.com", "a long password 1", false, &[]).await;
    let signed_in = login(&app, "writer@example.com", "a long password 1").await;
    assert_eq!(signed_in.status(), 200);
    expect_problem(upload(&app, &png).await, 403, "forbidden").await;

    let permission = &["media.write"];
    create_staff(
        &app,
        "media@example.com",
        "a long password 2",
        false,
        permission,
    )
    .await;
    let signed_in = login(&app, "media@example.com", "a long password 2").await;
    assert_eq!(signed_in.status(), 200);
    expect_json(upload(&app, &png).await, 201).await;

    // The permission is listed for roles to grant, generated from the route.
    let permissions = &app.state().permissions;
    let listed = permissions.iter().find(|p| p.name == "media.write");
    assert_eq!(
        listed.map(|p| p.routes.clone()),
        Some(vec![format!("POST {UPLOAD}")])
    );
    app.shutdown().await;
}

async fn videos_may_exceed_the_general_body_limit(backend: Backend) {
    let app = spawn_with(backend, |config| {
        config.http.body_limit_bytes = 2048;
        config.media.max_image_bytes = 4096;
        config.media.max_video_bytes = 64 * 1024;
    })
    .await;
    login_as_superuser(&app).await;

    let video = mp4(40 * 1024);
    let stored = expect_json(upload_as(&app, "file", "video/mp4", &video).await, 201).await;
    assert_eq!(stored["content_type"], "video/mp4");
    assert_eq!(stored["kind"], "video");
    let served = app.get(stored["url"].as_str().unwrap()).await;
    assert_eq!(header(&served, "content-type"), "video/mp4");
    assert_eq!(served.bytes().await.unwrap(), video);

    // The video limit still holds, and so does the general limit elsewhere.
    let too_long = upload_as(&app, "file", "video/mp4", &mp4(64 * 1024 + 1)).await;
    expect_problem(too_long, 413, "media-too-large").await;
    let big_json = serde_json::json!({ "name": "x".repeat(4096) });
    let response = app.post("/api/v1/admin/content/ads", &big_json).await;
    expect_problem(response, 413, "payload-too-large").await;
    app.shutdown().await;
}

/// A large video on a slow link takes longer than `http.request_timeout_secs` to arrive.
async fn uploads_may_take_longer_than_other_requests(backend: Backend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = spawn_with(backend, |config| {
        config.http.request_timeout_secs = 1;
        config.media.upload_timeout_secs = 30;
    })
    .await;
    create_staff(&app, "slow@example.com", "a long password 3", true, &[]).await;
    let signed_in = login(&app, "slow@example.com", "a long password 3").await;
    let cookie = signed_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next())
        .find(|c| c.starts_with(&format!("{SESSION_COOKIE}=")))
        .expect("no session cookie")
        .to_owned();
    let csrf = app.csrf_token().unwrap();

    let body = form(
        "file",
        "slow.png",
        "image/png",
        &placeholder_png(32, 32, [9, 9, 9], 5),
    );
    let (first, rest) = body.split_at(body.len() / 2);
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST {UPLOAD} HTTP/1.1\r\nHost: {}\r\nCookie: {cookie}\r\n{CSRF_HEADER}: {csrf}\r\n\
         Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        app.addr,
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(first).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    stream.write_all(rest).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    app.shutdown().await;
}

async fn only_well_formed_keys_are_served(backend: Backend) {
    let app = spawn(backend).await;
    let missing = format!("/media/ab/{}.png", "ab".repeat(32));
    expect_problem(app.get(&missing).await, 404, "not-found").await;
    for path in [
        "/media/../etc/passwd",
        "/media/%2e%2e/%2e%2e/etc/passwd",
        "/media/ab/..%2f..%2fbazaar.db",
        "/media/bazaar.db",
    ] {
        let response = raw_http(
            &app,
            &format!(
                "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                app.addr
            ),
        )
        .await;
        expect_problem(response, 404, "not-found").await;
    }
    app.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// An S3-compatible bucket
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_backend_keeps_files_in_the_bucket() {
    harness::bounded(s3_backend_keeps_files_in_the_bucket_embedded()).await
}

async fn s3_backend_keeps_files_in_the_bucket_embedded() {
    let bucket = FakeS3::start().await;
    let endpoint = format!("http://{}", bucket.addr);
    let app = spawn_with(Backend::Embedded, |config| {
        config.media.backend = MediaBackend::S3;
        config.media.s3 = Some(S3Config {
            bucket: "shop-media".into(),
            region: "us-east-1".into(),
            endpoint: Some(endpoint),
            access_key_id: Some("bazaar".into()),
            secret_access_key: Some(Secret::new("not-checked")),
            allow_http: true,
            prefix: Some("shop1".into()),
        });
    })
    .await;
    login_as_superuser(&app).await;
    let png = placeholder_png(64, 64, [90, 160, 60], 11);

    let stored = expect_json(upload(&app, &png).await, 201).await;
    let key = stored["key"].as_str().unwrap();
    let object = bucket.object(&format!("shop-media/shop1/{key}"));
    let (bytes, content_type) = object.expect("the upload is not in the bucket");
    assert_eq!(bytes, png);
    assert_eq!(content_type.as_deref(), Some("image/png"));

    let served = app.get(stored["url"].as_str().unwrap()).await;
    assert_eq!(served.status(), 200);
    assert_eq!(header(&served, "content-type"), "image/png");
    assert_eq!(
        header(&served, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(served.bytes().await.unwrap(), png);

    let again = expect_json(upload(&app, &png).await, 201).await;
    assert_eq!(again["key"], stored["key"]);
    assert_eq!(bucket.puts(), 1, "a stored file is not uploaded again");

    app.state().media.delete(key).await.unwrap();
    assert!(bucket.object(&format!("shop-media/shop1/{key}")).is_none());
    let gone = app.get(stored["url"].as_str().unwrap()).await;
    expect_problem(gone, 404, "not-found").await;
    app.shutdown().await;
}

type Objects = Arc<Mutex<HashMap<String, (Bytes, Option<String>)>>>;

/// Path-style S3 object requests (`/{bucket}/{key}`); signatures are not checked.
struct FakeS3 {
    addr: SocketAddr,
    objects: Objects,
    puts: Arc<Mutex<usize>>,
}

#[derive(Clone)]
struct FakeS3State {
    objects: Objects,
    puts: Arc<Mutex<usize>>,
}

impl FakeS3 {
    async fn start() -> Self {
        let state = FakeS3State {
            objects: Arc::default(),
            puts: Arc::default(),
        };
        let router = Router::new()
            .route(
                "/{*path}",
                get(get_object)
                    .head(head_object)
                    .put(put_object)
                    .delete(delete_object),
            )
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self {
            addr,
            objects: state.objects,
            puts: state.puts,
        }
    }

    fn object(&self, path: &str) -> Option<(Bytes, Option<String>)> {
        self.objects.lock().unwrap().get(path).cloned()
    }

    fn puts(&self) -> usize {
        *self.puts.lock().unwrap()
    }
}

fn object_headers(bytes: &Bytes, content_type: Option<&String>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("content-length", HeaderValue::from(bytes.len()));
    headers.insert("etag", HeaderValue::from_static("\"fake-etag\""));
    headers.insert(
        "last-modified",
        HeaderValue::from_static("Tue, 15 Nov 1994 08:12:31 GMT"),
    );
    if let Some(content_type) = content_type.and_then(|t| HeaderValue::from_str(t).ok()) {
        headers.insert("content-type", content_type);
    }
    headers
}

async fn get_object(State(s3): State<FakeS3State>, Path(path): Path<String>) -> AxumResponse {
    match s3.objects.lock().unwrap().get(&path) {
        Some((bytes, content_type)) => {
            (object_headers(bytes, content_type.as_ref()), bytes.clone()).into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn head_object(State(s3): State<FakeS3State>, Path(path): Path<String>) -> AxumResponse {
    match s3.objects.lock().unwrap().get(&path) {
        Some((bytes, content_type)) => {
            (object_headers(bytes, content_type.as_ref()), ()).into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn put_object(
    State(s3): State<FakeS3State>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> AxumResponse {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    s3.objects
        .lock()
        .unwrap()
        .insert(path, (body, content_type));
    *s3.puts.lock().unwrap() += 1;
    [("etag", "\"fake-etag\"")].into_response()
}

async fn delete_object(State(s3): State<FakeS3State>, Path(path): Path<String>) -> StatusCode {
    s3.objects.lock().unwrap().remove(&path);
    StatusCode::NO_CONTENT
}
