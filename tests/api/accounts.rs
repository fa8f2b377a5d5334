//! Customer accounts: registration with email verification, sessions shared by instances,
//! password change and reset, and no hint of which addresses have accounts.

use serde_json::json;

use crate::harness::{
    self, Backend, CUSTOMER_PASSWORD, both_backends, customer_login, expect_json, expect_problem,
    latest_email, link_token, login_as_superuser, register_customer, send, signed_in_customer,
    spawn, spawn_pair,
};

both_backends!(
    registration_needs_the_emailed_link_once,
    registration_answers_alike_for_known_and_new_addresses,
    profile_edits_need_the_csrf_token_and_a_version,
    password_reset_link_works_once_and_ends_old_sessions,
    password_change_checks_the_current_password_and_ends_other_sessions,
    customer_logins_are_throttled_and_logged,
);

async fn registration_needs_the_emailed_link_once(backend: Backend) {
    let app = spawn(backend).await;
    let email = "ann@example.com";
    let response = app
        .post(
            "/api/v1/auth/register",
            &json!({"email": " Ann@Example.com ", "password": CUSTOMER_PASSWORD, "name": "Ann"}),
        )
        .await;
    let body = expect_json(response, 202).await;
    assert_eq!(body["status"], "accepted");

    // Signing in before following the link is refused, after the password check.
    let response = send(
        app.new_client()
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({"email": email, "password": CUSTOMER_PASSWORD})),
    )
    .await;
    expect_problem(response, 403, "email-not-verified").await;

    let mail = latest_email(&app, email)
        .await
        .expect("no email was queued");
    assert_eq!(mail.template, "customer_verify_email");
    assert!(
        mail.text_body
            .contains("http://localhost:8080/account/verify-email?token=")
    );
    let token = link_token(&mail.text_body);
    let verify = |token: String| {
        let client = app.new_client();
        let url = app.url("/api/v1/auth/verify-email");
        async move { send(client.post(url).json(&json!({ "token": token }))).await }
    };
    assert_eq!(verify(token.clone()).await.status(), 204);
    expect_problem(verify(token).await, 400, "invalid-grant").await;
    expect_problem(verify("made-up".into()).await, 400, "invalid-grant").await;

    let customer = customer_login(&app, email, CUSTOMER_PASSWORD).await;
    let me = expect_json(customer.get("/api/v1/me").await, 200).await;
    assert_eq!(me["email"], email);
    assert_eq!(me["name"], "Ann");
    assert_eq!(me["email_verified"], true);
    assert_eq!(me["has_password"], true);

    // Bad input is a 422 naming each field, and writes nothing.
    let response = app
        .post(
            "/api/v1/auth/register",
            &json!({"email": "not-an-email", "password": "short", "name": ""}),
        )
        .await;
    let problem = expect_problem(response, 422, "validation-failed").await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["email", "name", "password"]);
}

async fn registration_answers_alike_for_known_and_new_addresses(backend: Backend) {
    let app = spawn(backend).await;
    register_customer(&app, "bob@example.com", CUSTOMER_PASSWORD).await;

    let register = |email: &'static str| {
        let client = app.new_client();
        let url = app.url("/api/v1/auth/register");
        async move {
            let body =
                json!({"email": email, "password": "another long password", "name": "Mallory"});
            send(client.post(url).json(&body)).await
        }
    };
    let known = register("bob@example.com").await;
    let new = register("carol@example.com").await;
    assert_eq!(known.status(), new.status());
    assert_eq!(known.text().await.unwrap(), new.text().await.unwrap());

    // The owner of the known address is told, and their account is untouched.
    let mail = latest_email(&app, "bob@example.com").await.unwrap();
    assert_eq!(mail.template, "customer_already_registered");
    let customer = customer_login(&app, "bob@example.com", CUSTOMER_PASSWORD).await;
    let me = expect_json(customer.get("/api/v1/me").await, 200).await;
    assert_eq!(me["name"], "Test Customer");

    // Password-reset requests answer alike too; only a known address gets an email.
    let reset = |email: &'static str| {
        let client = app.new_client();
        let url = app.url("/api/v1/auth/password-reset");
        async move { send(client.post(url).json(&json!({ "email": email }))).await }
    };
    let known = reset("bob@example.com").await;
    let unknown = reset("nobody@example.com").await;
    assert_eq!(known.status(), 202);
    assert_eq!(known.text().await.unwrap(), unknown.text().await.unwrap());
    harness::drain_jobs(&app, "send_account_link").await;
    assert_eq!(
        latest_email(&app, "bob@example.com")
            .await
            .unwrap()
            .template,
        "customer_password_reset"
    );
    assert!(latest_email(&app, "nobody@example.com").await.is_none());

    // A wrong password and an unknown address fail the same way.
    let login = |email: &'static str| {
        let client = app.new_client();
        let url = app.url("/api/v1/auth/login");
        async move {
            send(
                client
                    .post(url)
                    .json(&json!({"email": email, "password": "wrong password!"})),
            )
            .await
        }
    };
    let wrong = expect_problem(login("bob@example.com").await, 401, "invalid-credentials").await;
    let unknown = expect_problem(
        login("nobody@example.com").await,
        401,
        "invalid-credentials",
    )
    .await;
    assert_eq!(wrong["detail"], unknown["detail"]);
}

async fn profile_edits_need_the_csrf_token_and_a_version(backend: Backend) {
    let app = spawn(backend).await;
    let customer = signed_in_customer(&app, "dora@example.com").await;
    let me = expect_json(customer.get("/api/v1/me").await, 200).await;
    let version = me["version"].as_i64().unwrap();

    let response = send(
        customer
            .client
            .patch(app.url("/api/v1/me"))
            .json(&json!({"name": "Dora", "version": version})),
    )
    .await;
    expect_problem(response, 403, "csrf-token-invalid").await;
    let response = customer.patch("/api/v1/me", &json!({"name": "Dora"})).await;
    expect_problem(response, 428, "precondition-required").await;
    let response = customer
        .patch(
            "/api/v1/me",
            &json!({"phone": "call me", "version": version}),
        )
        .await;
    expect_problem(response, 422, "validation-failed").await;

    let response = customer
        .patch(
            "/api/v1/me",
            &json!({"name": "Dora", "phone": "+86 138-0000-0000", "version": version}),
        )
        .await;
    let me = expect_json(response, 200).await;
    assert_eq!(me["name"], "Dora");
    assert_eq!(me["phone"], "+86 138-0000-0000");
    assert_eq!(me["version"], version + 1);
    let response = customer
        .patch("/api/v1/me", &json!({"name": "Stale", "version": version}))
        .await;
    expect_problem(response, 409, "stale-version").await;

    // Staff sessions are not customer sessions, and the other way round.
    login_as_superuser(&app).await;
    expect_problem(app.get("/api/v1/me").await, 401, "unauthenticated").await;
    expect_problem(
        customer.get("/api/v1/admin/me").await,
        401,
        "unauthenticated",
    )
    .await;
}

async fn password_reset_link_works_once_and_ends_old_sessions(backend: Backend) {
    let app = spawn(backend).await;
    let email = "erin@example.com";
    let old_session = signed_in_customer(&app, email).await;
    let response = app
        .post("/api/v1/auth/password-reset", &json!({ "email": email }))
        .await;
    assert_eq!(response.status(), 202);
    harness::drain_jobs(&app, "send_account_link").await;
    let token = link_token(&latest_email(&app, email).await.unwrap().text_body);

    let confirm = |token: String, password: &'static str| {
        let client = app.new_client();
        let url = app.url("/api/v1/auth/password-reset/confirm");
        async move {
            send(
                client
                    .post(url)
                    .json(&json!({"token": token, "password": password})),
            )
            .await
        }
    };
    expect_problem(
        confirm(token.clone(), "short").await,
        422,
        "validation-failed",
    )
    .await;
    assert_eq!(
        confirm(token.clone(), "a brand new password")
            .await
            .status(),
        204
    );
    expect_problem(
        confirm(token, "yet another password").await,
        400,
        "invalid-grant",
    )
    .await;

    expect_problem(old_session.get("/api/v1/me").await, 401, "unauthenticated").await;
    let response = send(
        app.new_client()
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({"email": email, "password": CUSTOMER_PASSWORD})),
    )
    .await;
    expect_problem(response, 401, "invalid-credentials").await;
    let customer = customer_login(&app, email, "a brand new password").await;
    expect_json(customer.get("/api/v1/me").await, 200).await;
}

async fn password_change_checks_the_current_password_and_ends_other_sessions(backend: Backend) {
    let app = spawn(backend).await;
    let email = "fay@example.com";
    let here = signed_in_customer(&app, email).await;
    let elsewhere = customer_login(&app, email, CUSTOMER_PASSWORD).await;

    let response = here
        .post(
            "/api/v1/me/password",
            &json!({"current_password": "not my password", "new_password": "a changed password"}),
        )
        .await;
    let problem = expect_problem(response, 422, "validation-failed").await;
    assert_eq!(problem["errors"][0]["field"], "current_password");

    let response = here
        .post(
            "/api/v1/me/password",
            &json!({"current_password": CUSTOMER_PASSWORD, "new_password": "a changed password"}),
        )
        .await;
    let body = expect_json(response, 200).await;
    let csrf = body["csrf_token"].as_str().unwrap().to_owned();
    // This browser got a fresh session; the other one is signed out.
    let here = harness::CustomerClient { csrf, ..here };
    expect_json(here.get("/api/v1/me").await, 200).await;
    expect_problem(elsewhere.get("/api/v1/me").await, 401, "unauthenticated").await;
    customer_login(&app, email, "a changed password").await;
}

async fn customer_logins_are_throttled_and_logged(backend: Backend) {
    let app = harness::spawn_with(backend, |c| c.auth.max_failures_per_account = 3).await;
    let email = "gil@example.com";
    register_customer(&app, email, CUSTOMER_PASSWORD).await;
    let login = |password: &'static str| {
        let client = app.new_client();
        let url = app.url("/api/v1/auth/login");
        async move {
            send(
                client
                    .post(url)
                    .json(&json!({"email": email, "password": password})),
            )
            .await
        }
    };
    for _ in 0..3 {
        expect_problem(login("wrong password!").await, 401, "invalid-credentials").await;
    }
    let response = login(CUSTOMER_PASSWORD).await;
    assert!(response.headers().contains_key("retry-after"));
    expect_problem(response, 429, "too-many-requests").await;

    login_as_superuser(&app).await;
    let log = expect_json(
        app.get("/api/v1/admin/security-log?per_page=100").await,
        200,
    )
    .await;
    let events: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    for event in [
        "registered",
        "email_verified",
        "login_failed",
        "login_throttled",
    ] {
        assert!(events.contains(&event), "no {event} in {events:?}");
    }
}

/// R10.1 in one process: two instances sharing PostgreSQL and Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_session_is_valid_on_every_instance() {
    harness::bounded(async {
        let (first, second) = spawn_pair(Backend::Scaled).await;
        let on_first = signed_in_customer(&first, "hal@example.com").await;
        let on_second = on_first.at(&second);
        expect_json(on_second.get("/api/v1/me").await, 200).await;
        assert_eq!(
            on_second
                .post("/api/v1/auth/logout", &json!({}))
                .await
                .status(),
            204
        );
        expect_problem(on_first.get("/api/v1/me").await, 401, "unauthenticated").await;
    })
    .await
}
