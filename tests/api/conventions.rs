//! HTTP conventions every endpoint shares, checked over the wire against the real router:
//! problem documents for every error, request ids, operations endpoints, API docs, and the
//! staff session lifecycle (login, throttling, CSRF, logout, single sign-on).

use reqwest::Method;
use reqwest::header::{ALLOW, CONTENT_TYPE, COOKIE, RETRY_AFTER};
use serde_json::json;

use crate::harness::*;

both_backends!(
    unknown_route_is_a_problem_404,
    wrong_method_is_a_problem_405_with_allow,
    malformed_json_is_a_400,
    wrong_content_type_is_a_415,
    invalid_fields_are_a_422_naming_the_field,
    oversize_body_is_a_413,
    oversize_chunked_body_is_a_413,
    stalled_request_is_a_408,
    request_ids_are_generated_or_echoed,
    health_readiness_and_metrics,
    openapi_document_and_offline_docs,
    failed_logins_are_refused_then_throttled,
    session_lifecycle_with_csrf_and_logout,
);

async fn unknown_route_is_a_problem_404(backend: Backend) {
    let app = spawn(backend).await;
    for path in [
        "/api/v1/no-such-thing",
        "/api/v1/admin/nope/42",
        "/definitely-not-here",
    ] {
        let problem = expect_problem(app.get(path).await, 404, "not-found").await;
        assert!(
            problem["detail"].as_str().unwrap().contains(path),
            "the detail names the path: {problem}"
        );
    }
    app.shutdown().await;
}

async fn wrong_method_is_a_problem_405_with_allow(backend: Backend) {
    let app = spawn(backend).await;

    let response = app.get(LOGIN_PATH).await;
    let allow = header_str(response.headers(), ALLOW.as_str());
    let problem = expect_problem(response, 405, "method-not-allowed").await;
    assert!(allow.contains("POST"), "Allow lists POST, got {allow:?}");
    assert!(
        problem["detail"].as_str().unwrap().contains(LOGIN_PATH),
        "{problem}"
    );

    let response = send(app.client.delete(app.url("/healthz"))).await;
    let allow = header_str(response.headers(), ALLOW.as_str());
    expect_problem(response, 405, "method-not-allowed").await;
    assert!(allow.contains("GET"), "Allow lists GET, got {allow:?}");
    app.shutdown().await;
}

async fn malformed_json_is_a_400(backend: Backend) {
    let app = spawn(backend).await;
    for body in [
        "{not json",
        r#"{"email": "a@example.com", "password": "x"} trailing"#,
        "",
    ] {
        let response = send(
            app.client
                .post(app.url(LOGIN_PATH))
                .header(CONTENT_TYPE, "application/json")
                .body(body),
        )
        .await;
        let problem = expect_problem(response, 400, "malformed-body").await;
        assert!(
            problem.get("errors").is_none(),
            "no field errors for a syntax error: {problem}"
        );
    }
    app.shutdown().await;
}

async fn wrong_content_type_is_a_415(backend: Backend) {
    let app = spawn(backend).await;
    let body = r#"{"email": "a@example.com", "password": "long enough password"}"#;
    let response = send(
        app.client
            .post(app.url(LOGIN_PATH))
            .header(CONTENT_TYPE, "text/plain")
            .body(body),
    )
    .await;
    expect_problem(response, 415, "unsupported-media-type").await;

    let response = send(app.client.post(app.url(LOGIN_PATH)).body(body)).await;
    expect_problem(response, 415, "unsupported-media-type").await;
    app.shutdown().await;
}

async fn invalid_fields_are_a_422_naming_the_field(backend: Backend) {
    let app = spawn(backend).await;

    let problem = expect_problem(
        app.post(LOGIN_PATH, &json!({ "email": "a@example.com" }))
            .await,
        422,
        "validation-failed",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "password", "{problem}");
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );

    let problem = expect_problem(
        app.post(LOGIN_PATH, &json!({ "password": "whatever-it-is" }))
            .await,
        422,
        "validation-failed",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "email", "{problem}");

    let problem = expect_problem(
        app.post(
            LOGIN_PATH,
            &json!({ "email": 42, "password": "whatever-it-is" }),
        )
        .await,
        422,
        "validation-failed",
    )
    .await;
    assert_eq!(
        problem["errors"][0]["field"], "email",
        "a wrongly typed field is named: {problem}"
    );

    let problem = expect_problem(
        app.post(LOGIN_PATH, &json!("not an object")).await,
        422,
        "validation-failed",
    )
    .await;
    assert_eq!(
        problem["errors"][0]["field"], "body",
        "a body of the wrong shape: {problem}"
    );
    app.shutdown().await;
}

async fn oversize_body_is_a_413(backend: Backend) {
    let app = spawn_with(backend, |config| config.http.body_limit_bytes = 1024).await;

    let big = json!({ "email": "a@example.com", "password": "x".repeat(4096) });
    expect_problem(app.post(LOGIN_PATH, &big).await, 413, "payload-too-large").await;

    // Under the limit the request is handled normally.
    let small = json!({ "email": "a@example.com", "password": "x".repeat(100) });
    expect_problem(
        app.post(LOGIN_PATH, &small).await,
        401,
        "invalid-credentials",
    )
    .await;
    app.shutdown().await;
}

/// Without a Content-Length the limit is found while reading: same answer.
async fn oversize_chunked_body_is_a_413(backend: Backend) {
    let app = spawn_with(backend, |config| config.http.body_limit_bytes = 1024).await;
    let body = format!(
        r#"{{"email": "a@example.com", "password": "{}"}}"#,
        "x".repeat(4096)
    );
    let chunked = format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len());
    let response = raw_http(
        &app,
        &format!(
            "POST {LOGIN_PATH} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{chunked}",
            app.addr
        ),
    )
    .await;
    expect_problem(response, 413, "payload-too-large").await;
    app.shutdown().await;
}

/// A client that stops sending its body mid-request gets a 408 once the request timeout
/// passes, instead of holding a connection and a handler forever.
async fn stalled_request_is_a_408(backend: Backend) {
    let app = spawn_with(backend, |config| config.http.request_timeout_secs = 1).await;
    let started = std::time::Instant::now();
    // Announces 100 bytes of body, sends 1, then waits.
    let response = raw_http(
        &app,
        &format!(
            "POST {LOGIN_PATH} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: 100\r\nConnection: close\r\n\r\n{{",
            app.addr
        ),
    )
    .await;
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    expect_problem(response, 408, "request-timeout").await;
    app.shutdown().await;
}

async fn request_ids_are_generated_or_echoed(backend: Backend) {
    let app = spawn(backend).await;

    let response = app.get("/healthz").await;
    let generated = header_str(response.headers(), "x-request-id");
    assert!(
        uuid::Uuid::parse_str(&generated).is_ok(),
        "a request without an id gets a generated UUID, got {generated:?}"
    );
    let again = header_str(app.get("/healthz").await.headers(), "x-request-id");
    assert_ne!(generated, again, "every request gets its own id");

    let response = send(
        app.client
            .get(app.url("/healthz"))
            .header("x-request-id", "trace-abc-123"),
    )
    .await;
    assert_eq!(
        header_str(response.headers(), "x-request-id"),
        "trace-abc-123"
    );

    // Errors carry the id too, so a client can quote it in a support request.
    let response = send(
        app.client
            .get(app.url("/api/v1/nope"))
            .header("x-request-id", "trace-err-7"),
    )
    .await;
    assert_eq!(
        header_str(response.headers(), "x-request-id"),
        "trace-err-7"
    );
    expect_problem(response, 404, "not-found").await;
    app.shutdown().await;
}

async fn health_readiness_and_metrics(backend: Backend) {
    let app = spawn(backend).await;

    let response = app.get("/healthz").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ok");

    let ready = expect_json(app.get("/readyz").await, 200).await;
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["database"], "ok", "{ready}");
    assert_eq!(ready["cache"], "ok", "{ready}");

    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(header_str(response.headers(), CONTENT_TYPE.as_str()).starts_with("text/plain"));
    let metrics = response.text().await.unwrap();
    assert!(metrics.contains("http_requests_total"), "{metrics}");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("http_requests_total") && l.contains(r#"route="/healthz""#)),
        "requests are counted by route template: {metrics}"
    );
    assert!(
        metrics.contains("http_request_duration_seconds"),
        "{metrics}"
    );
    app.shutdown().await;
}

async fn openapi_document_and_offline_docs(backend: Backend) {
    let app = spawn(backend).await;

    let doc = expect_json(app.get("/api/openapi.json").await, 200).await;
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "OpenAPI 3.1: {}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], "Bazaar API");
    let paths = doc["paths"].as_object().expect("the document has paths");
    for path in [LOGIN_PATH, LOGOUT_PATH, ME_PATH] {
        assert!(paths.contains_key(path), "{path} is documented");
    }
    assert!(paths[LOGIN_PATH]["post"].is_object());
    assert!(doc["components"]["securitySchemes"]["staff_session"].is_object());
    assert!(doc["components"]["schemas"]["Problem"].is_object());

    let response = app.get("/api/docs/").await;
    assert_eq!(response.status(), 200);
    assert!(header_str(response.headers(), CONTENT_TYPE.as_str()).starts_with("text/html"));
    let html = response.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");

    for (asset, content_type, min_len) in [
        ("swagger-ui.css", "text/css", 10_000),
        ("swagger-ui-bundle.js", "javascript", 100_000),
    ] {
        let response = app.get(&format!("/api/docs/{asset}")).await;
        assert_eq!(response.status(), 200, "{asset} is served from the binary");
        let actual_type = header_str(response.headers(), CONTENT_TYPE.as_str());
        assert!(
            actual_type.contains(content_type),
            "{asset}: content-type {actual_type}"
        );
        let len = response.bytes().await.unwrap().len();
        assert!(len >= min_len, "{asset} is the real asset ({len} bytes)");
    }

    let initializer = app.get("/api/docs/swagger-initializer.js").await;
    assert_eq!(initializer.status(), 200);
    assert!(
        initializer
            .text()
            .await
            .unwrap()
            .contains("/api/openapi.json"),
        "the docs page loads this server's document"
    );
    app.shutdown().await;
}

async fn failed_logins_are_refused_then_throttled(backend: Backend) {
    let app = spawn_with(backend, |config| {
        config.auth.max_failures_per_account = 3;
        config.auth.failure_window_secs = 600;
    })
    .await;
    let password = "a long enough password";
    create_staff(&app, "clerk@example.com", password, false, &[]).await;
    create_staff(&app, "other@example.com", password, false, &[]).await;

    for _ in 0..3 {
        let response = login(&app, "clerk@example.com", "wrong password!").await;
        expect_problem(response, 401, "invalid-credentials").await;
    }
    let unknown = login(&app, "nobody@example.com", "wrong password!").await;
    let problem = expect_problem(unknown, 401, "invalid-credentials").await;
    assert_eq!(
        problem["detail"], "email or password is incorrect",
        "an unknown email looks the same as a wrong password"
    );

    // Locked now, even with the right password.
    for attempt in [password, "wrong password!"] {
        let response = login(&app, "clerk@example.com", attempt).await;
        let retry_after = header_str(response.headers(), RETRY_AFTER.as_str());
        expect_problem(response, 429, "too-many-requests").await;
        let seconds: u64 = retry_after
            .parse()
            .unwrap_or_else(|_| panic!("Retry-After is a number of seconds, got {retry_after:?}"));
        assert!(
            (1..=600).contains(&seconds),
            "Retry-After {seconds} is within the window"
        );
    }
    assert!(app.csrf_token().is_none(), "no session was created");

    // The lock is per account: others still sign in.
    let response = login(&app, "other@example.com", password).await;
    assert_eq!(response.status(), 200);
    app.shutdown().await;
}

async fn session_lifecycle_with_csrf_and_logout(backend: Backend) {
    let app = spawn(backend).await;
    let password = "a long enough password";
    let id = create_staff(&app, "Clerk@Example.com", password, false, &[]).await;

    expect_problem(app.get(ME_PATH).await, 401, "unauthenticated").await;

    let response = login(&app, "clerk@example.com", password).await;
    assert_eq!(response.status(), 200);
    let (session, header) =
        set_cookie(&response, SESSION_COOKIE).expect("login sets the session cookie");
    assert!(!session.is_empty());
    let attributes = header.to_ascii_lowercase();
    assert!(
        attributes.contains("httponly"),
        "the session cookie is HttpOnly: {header}"
    );
    assert!(attributes.contains("samesite=lax"), "{header}");
    assert!(attributes.contains("path=/"), "{header}");
    let body = response.json::<serde_json::Value>().await.unwrap();
    let csrf = body["csrf_token"]
        .as_str()
        .expect("login returns the CSRF token")
        .to_owned();
    assert!(csrf.len() >= 32, "the CSRF token is unguessable: {csrf}");
    assert_eq!(body["staff"]["id"], id);
    assert_eq!(body["staff"]["email"], "clerk@example.com");
    assert_eq!(body["staff"]["is_superuser"], false);

    let me = expect_json(app.get(ME_PATH).await, 200).await;
    assert_eq!(me["id"], id);
    assert_eq!(me["email"], "clerk@example.com");

    let token = expect_json(app.get("/api/v1/admin/auth/csrf").await, 200).await;
    assert_eq!(
        token["csrf_token"],
        csrf.as_str(),
        "the session's token can be fetched again"
    );

    // Writes need the token: cookies alone could come from a forged cross-site form.
    let response = send(app.client.post(app.url(LOGOUT_PATH))).await;
    expect_problem(response, 403, "csrf-token-invalid").await;
    let response = send(
        app.client
            .post(app.url(LOGOUT_PATH))
            .header(CSRF_HEADER, "forged"),
    )
    .await;
    expect_problem(response, 403, "csrf-token-invalid").await;
    assert_eq!(
        app.get(ME_PATH).await.status(),
        200,
        "refused writes leave the session alone"
    );

    let response = app.post_empty(LOGOUT_PATH).await;
    assert_eq!(response.status(), 204);
    expect_problem(app.get(ME_PATH).await, 401, "unauthenticated").await;

    // The session is gone on the server, not just from this browser's jar.
    let replayed = send(
        app.new_client()
            .get(app.url(ME_PATH))
            .header(COOKIE, format!("{SESSION_COOKIE}={session}")),
    )
    .await;
    expect_problem(replayed, 401, "unauthenticated").await;
    let replayed = send(
        app.new_client()
            .request(Method::POST, app.url(LOGOUT_PATH))
            .header(COOKIE, format!("{SESSION_COOKIE}={session}"))
            .header(CSRF_HEADER, &csrf),
    )
    .await;
    expect_problem(replayed, 401, "unauthenticated").await;
    app.shutdown().await;
}

/// With Redis, a session made on one instance is valid on every instance, and logging
/// out on any instance ends it on all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_sign_on_across_instances_scaled() {
    bounded(async {
        let (a, b) = spawn_pair(Backend::Scaled).await;
        let password = "a long enough password";
        let id = create_staff(&a, "clerk@example.com", password, false, &[]).await;

        let response = login(&a, "clerk@example.com", password).await;
        assert_eq!(response.status(), 200);
        let (session, _) =
            set_cookie(&response, SESSION_COOKIE).expect("login sets the session cookie");
        let csrf = a.csrf_token().expect("login returned a CSRF token");
        let cookie = format!("{SESSION_COOKIE}={session}");

        let me = expect_json(
            send(b.client.get(b.url(ME_PATH)).header(COOKIE, &cookie)).await,
            200,
        )
        .await;
        assert_eq!(me["id"], id, "instance B knows the session made on A");

        let response = send(
            b.client
                .post(b.url(LOGOUT_PATH))
                .header(COOKIE, &cookie)
                .header(CSRF_HEADER, &csrf),
        )
        .await;
        assert_eq!(response.status(), 204, "logout on B");

        expect_problem(a.get(ME_PATH).await, 401, "unauthenticated").await;
        b.shutdown().await;
        a.shutdown().await;
    })
    .await
}

/// Separate shops (or test runs) on one Redis and one PostgreSQL server do not share
/// sessions: each has its own database and key prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_do_not_leak_between_shops_scaled() {
    bounded(async {
        let shop = spawn(Backend::Scaled).await;
        let other_shop = spawn(Backend::Scaled).await;
        create_staff(&shop, SUPERUSER_EMAIL, SUPERUSER_PASSWORD, true, &[]).await;
        let response = login(&shop, SUPERUSER_EMAIL, SUPERUSER_PASSWORD).await;
        assert_eq!(response.status(), 200);
        let (session, _) =
            set_cookie(&response, SESSION_COOKIE).expect("login sets the session cookie");
        let cookie = format!("{SESSION_COOKIE}={session}");

        let me = send(
            shop.new_client()
                .get(shop.url(ME_PATH))
                .header(COOKIE, &cookie),
        )
        .await;
        assert_eq!(expect_json(me, 200).await["email"], SUPERUSER_EMAIL);
        let elsewhere = send(
            other_shop
                .new_client()
                .get(other_shop.url(ME_PATH))
                .header(COOKIE, &cookie),
        )
        .await;
        expect_problem(elsewhere, 401, "unauthenticated").await;
        other_shop.shutdown().await;
        shop.shutdown().await;
    })
    .await
}
