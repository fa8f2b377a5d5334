//! Staff access control: every admin route's guard, roles, staff accounts, the security log.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::*;

/// Admin operations from the OpenAPI document: (method, path with ids filled in, access,
/// permission).
async fn admin_operations(app: &TestApp) -> Vec<(Method, String, String, Option<String>)> {
    let doc = expect_json(app.get("/api/openapi.json").await, 200).await;
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        if !path.starts_with("/api/v1/admin") {
            continue;
        }
        for (method, operation) in item.as_object().expect("path item") {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            let access = operation["x-access"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} declares no access rule"))
                .to_owned();
            let permission = operation["x-permission"].as_str().map(str::to_owned);
            out.push((method, path.replace("{id}", "1"), access, permission));
        }
    }
    out
}

async fn call(
    app: &TestApp,
    client: &reqwest::Client,
    csrf: Option<&str>,
    method: &Method,
    path: &str,
) -> reqwest::Response {
    let mut request = client.request(method.clone(), app.url(path));
    if let Some(token) = csrf {
        request = request.header(CSRF_HEADER, token);
    }
    if matches!(*method, Method::POST | Method::PATCH | Method::PUT) {
        request = request.json(&json!({}));
    }
    send(request).await
}

async fn walks_every_admin_route_refusing_anonymous_and_unprivileged(backend: Backend) {
    let app = spawn(backend).await;
    let operations = admin_operations(&app).await;
    assert!(
        operations.len() >= 30,
        "too few admin routes: {}",
        operations.len()
    );

    // Anonymous: everything but the sign-in endpoints is a 401.
    let anonymous = new_client();
    for (method, path, access, _) in &operations {
        if access == "public" {
            assert!(
                [LOGIN_PATH, "/api/v1/admin/auth/token"].contains(&path.as_str()),
                "only the sign-in endpoints may be public under /admin, not {path}"
            );
            continue;
        }
        expect_problem(
            call(&app, &anonymous, None, method, path).await,
            401,
            "unauthenticated",
        )
        .await;
    }

    // Signed in with no permission: every permission-guarded route is a 403.
    create_staff(&app, "nobody@example.com", SUPERUSER_PASSWORD, false, &[]).await;
    assert_eq!(
        login(&app, "nobody@example.com", SUPERUSER_PASSWORD)
            .await
            .status(),
        200
    );
    let csrf = app.csrf_token();
    for (method, path, _, permission) in &operations {
        let Some(permission) = permission else {
            continue;
        };
        let problem = expect_problem(
            call(&app, &app.client, csrf.as_deref(), method, path).await,
            403,
            "forbidden",
        )
        .await;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains(permission.as_str()),
            "{problem}"
        );
    }

    // Holding exactly the permission opens each route (whatever the handler then says).
    let permissions: BTreeSet<String> = operations.iter().filter_map(|o| o.3.clone()).collect();
    for (i, permission) in permissions.iter().enumerate() {
        let email = format!("holder{i}@example.com");
        create_staff(&app, &email, SUPERUSER_PASSWORD, false, &[permission]).await;
        let holder = TestAppClient::login(&app, &email).await;
        for (method, path, _, _) in operations
            .iter()
            .filter(|o| o.3.as_ref() == Some(permission))
        {
            let status = call(&app, &holder.client, Some(&holder.csrf), method, path)
                .await
                .status();
            assert!(
                status != 401 && status != 403,
                "{method} {path} refused a holder of {permission}: {status}"
            );
        }
    }
}

/// A second signed-in client on the same app.
struct TestAppClient {
    client: reqwest::Client,
    csrf: String,
}

impl TestAppClient {
    async fn login(app: &TestApp, email: &str) -> Self {
        let client = app.new_client();
        let body = expect_json(
            send(
                client
                    .post(app.url(LOGIN_PATH))
                    .json(&json!({"email": email, "password": SUPERUSER_PASSWORD})),
            )
            .await,
            200,
        )
        .await;
        Self {
            client,
            csrf: body["csrf_token"].as_str().unwrap().to_owned(),
        }
    }
}

async fn permission_list_is_generated_from_routes(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let operations = admin_operations(&app).await;
    let list = expect_json(app.get("/api/v1/admin/permissions").await, 200).await;
    let listed: BTreeSet<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    let from_routes: BTreeSet<String> = operations.iter().filter_map(|o| o.3.clone()).collect();
    assert_eq!(listed, from_routes);
    for permission in list.as_array().unwrap() {
        assert!(
            !permission["routes"].as_array().unwrap().is_empty(),
            "{permission}"
        );
        assert!(
            !permission["description"].as_str().unwrap().is_empty(),
            "{permission}"
        );
    }
    assert!(listed.contains("system.regions.write"));
    assert!(listed.contains("identity.roles.write"));
}

async fn roles_grant_and_revoke_permissions_with_an_audit_trail(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;

    let bad = app
        .post(
            "/api/v1/admin/roles",
            &json!({"name": "Clerk", "permissions": ["system.regions.read", "no.such.permission"]}),
        )
        .await;
    let problem = expect_problem(bad, 422, "validation-failed").await;
    assert_eq!(problem["errors"][0]["field"], "permissions[1]");

    let created = app
        .post(
            "/api/v1/admin/roles",
            &json!({"name": "Clerk", "permissions": ["system.regions.read"]}),
        )
        .await;
    assert_eq!(header_str(created.headers(), "etag"), "\"1\"");
    let location = header_str(created.headers(), "location");
    let role = expect_json(created, 201).await;
    let id = role["id"].as_i64().unwrap();
    assert_eq!(location, format!("/api/v1/admin/roles/{id}"));
    assert_eq!(role["permissions"], json!(["system.regions.read"]));

    let duplicate = app
        .post("/api/v1/admin/roles", &json!({"name": "Clerk"}))
        .await;
    expect_problem(duplicate, 409, "already-exists").await;

    // A clerk gets the role's permissions at once, and loses them when the role changes.
    let clerk = create_staff(&app, "clerk@example.com", SUPERUSER_PASSWORD, false, &[]).await;
    let assigned = app
        .patch(
            &format!("/api/v1/admin/staff/{clerk}"),
            &json!({"role_ids": [id], "version": 1}),
        )
        .await;
    let assigned = expect_json(assigned, 200).await;
    assert_eq!(assigned["roles"][0]["name"], "Clerk");
    let clerk_client = TestAppClient::login(&app, "clerk@example.com").await;
    let me: Value = clerk_client
        .client
        .get(app.url(ME_PATH))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["permissions"], json!(["system.regions.read"]));
    assert_eq!(
        clerk_client
            .client
            .get(app.url("/api/v1/admin/regions"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let updated = app
        .patch(
            &format!("/api/v1/admin/roles/{id}"),
            &json!({"permissions": ["system.carriers.read"], "version": 1}),
        )
        .await;
    let updated = expect_json(updated, 200).await;
    assert_eq!(updated["version"], 2);
    assert_eq!(
        clerk_client
            .client
            .get(app.url("/api/v1/admin/regions"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        clerk_client
            .client
            .get(app.url("/api/v1/admin/carriers"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let log = expect_json(
        app.get("/api/v1/admin/security-log?event=role_updated")
            .await,
        200,
    )
    .await;
    assert_eq!(log["total"], 1);
    let entry = &log["items"][0];
    assert_eq!(entry["subject"], format!("role:{id}"));
    assert_eq!(entry["detail"]["granted"], json!(["system.carriers.read"]));
    assert_eq!(entry["detail"]["revoked"], json!(["system.regions.read"]));
    assert_eq!(entry["actor_email"], SUPERUSER_EMAIL);
    assert!(!entry["request_id"].as_str().unwrap_or_default().is_empty());

    let deleted = app.delete(&format!("/api/v1/admin/roles/{id}")).await;
    assert_eq!(deleted.status(), 204);
    assert_eq!(
        clerk_client
            .client
            .get(app.url("/api/v1/admin/carriers"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    expect_problem(
        app.get(&format!("/api/v1/admin/roles/{id}")).await,
        404,
        "not-found",
    )
    .await;
    let log = expect_json(
        app.get("/api/v1/admin/security-log?event=role_deleted")
            .await,
        200,
    )
    .await;
    assert_eq!(log["total"], 1);
}

async fn staff_accounts_are_managed_safely(backend: Backend) {
    let app = spawn(backend).await;
    let root = login_as_superuser(&app).await;

    let invalid = app
        .post(
            "/api/v1/admin/staff",
            &json!({"email": "not-an-email", "name": "", "password": "short"}),
        )
        .await;
    let problem = expect_problem(invalid, 422, "validation-failed").await;
    let fields: BTreeSet<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, BTreeSet::from(["email", "name", "password"]));

    let created = app
        .post(
            "/api/v1/admin/staff",
            &json!({"email": "Ann@Example.com", "name": "Ann", "password": SUPERUSER_PASSWORD}),
        )
        .await;
    let ann = expect_json(created, 201).await;
    assert_eq!(
        ann["email"], "ann@example.com",
        "emails are stored normalised"
    );
    assert!(ann.get("password_hash").is_none());
    let ann_id = ann["id"].as_i64().unwrap();
    let duplicate = app
        .post(
            "/api/v1/admin/staff",
            &json!({"email": "ann@example.com", "name": "Ann", "password": SUPERUSER_PASSWORD}),
        )
        .await;
    expect_problem(duplicate, 409, "staff-exists").await;

    // Ann may manage staff but not grant superuser.
    let role = expect_json(
        app.post(
            "/api/v1/admin/roles",
            &json!({"name": "HR", "permissions": ["identity.staff.write", "identity.staff.read"]}),
        )
        .await,
        201,
    )
    .await;
    expect_json(
        app.patch(
            &format!("/api/v1/admin/staff/{ann_id}"),
            &json!({"role_ids": [role["id"]], "version": 1}),
        )
        .await,
        200,
    )
    .await;
    let ann_client = TestAppClient::login(&app, "ann@example.com").await;
    let escalate = send(
        ann_client
            .client
            .post(app.url("/api/v1/admin/staff"))
            .header(CSRF_HEADER, &ann_client.csrf)
            .json(&json!({"email": "boss@example.com", "name": "Boss", "password": SUPERUSER_PASSWORD, "is_superuser": true})),
    )
    .await;
    expect_problem(escalate, 403, "forbidden").await;

    // Nobody deletes or deactivates themselves.
    expect_problem(
        app.delete(&format!("/api/v1/admin/staff/{root}")).await,
        409,
        "cannot-delete-self",
    )
    .await;

    // Deactivation ends Ann's access at once, on her existing session.
    let ann_now = expect_json(app.get(&format!("/api/v1/admin/staff/{ann_id}")).await, 200).await;
    let version = ann_now["version"].as_i64().unwrap();
    let stale = app
        .patch(
            &format!("/api/v1/admin/staff/{ann_id}"),
            &json!({"is_active": false, "version": version - 1}),
        )
        .await;
    expect_problem(stale, 409, "stale-version").await;
    expect_json(
        app.patch(
            &format!("/api/v1/admin/staff/{ann_id}"),
            &json!({"is_active": false, "version": version}),
        )
        .await,
        200,
    )
    .await;
    let refused = ann_client
        .client
        .get(app.url(ME_PATH))
        .send()
        .await
        .unwrap();
    expect_problem(refused, 401, "unauthenticated").await;
    let again = send(
        app.new_client()
            .post(app.url(LOGIN_PATH))
            .json(&json!({"email": "ann@example.com", "password": SUPERUSER_PASSWORD})),
    )
    .await;
    expect_problem(again, 401, "invalid-credentials").await;

    let listed = expect_json(app.get("/api/v1/admin/staff?is_active=false").await, 200).await;
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["items"][0]["email"], "ann@example.com");
    let by_role = expect_json(
        app.get(&format!("/api/v1/admin/staff?role_id={}", role["id"]))
            .await,
        200,
    )
    .await;
    assert_eq!(by_role["total"], 1);

    assert_eq!(
        app.delete(&format!("/api/v1/admin/staff/{ann_id}"))
            .await
            .status(),
        204
    );
    expect_problem(
        app.get(&format!("/api/v1/admin/staff/{ann_id}")).await,
        404,
        "not-found",
    )
    .await;
    let log = expect_json(
        app.get("/api/v1/admin/security-log?event=staff_deleted")
            .await,
        200,
    )
    .await;
    assert_eq!(log["items"][0]["subject"], format!("staff:{ann_id}"));
}

async fn failed_logins_look_alike_are_logged_and_throttled_per_ip(backend: Backend) {
    let app = spawn_with(backend, |c| {
        c.auth.max_failures_per_account = 100;
        c.auth.max_failures_per_ip = 4;
        c.http.trust_forwarded_for = true;
    })
    .await;
    create_staff(&app, "kim@example.com", SUPERUSER_PASSWORD, false, &[]).await;
    let attempt = |email: &'static str, password: &'static str| {
        let client = app.new_client();
        let url = app.url(LOGIN_PATH);
        async move {
            let request = client
                .post(url)
                .header("x-forwarded-for", "203.0.113.7, 10.0.0.2")
                .json(&json!({"email": email, "password": password}));
            send(request).await
        }
    };
    let wrong_password = expect_problem(
        attempt("kim@example.com", "wrong password!").await,
        401,
        "invalid-credentials",
    )
    .await;
    let unknown_user = expect_problem(
        attempt("ghost@example.com", "wrong password!").await,
        401,
        "invalid-credentials",
    )
    .await;
    assert_eq!(
        wrong_password, unknown_user,
        "the answer must not reveal which accounts exist"
    );
    attempt("a@example.com", "wrong password!").await;
    attempt("b@example.com", "wrong password!").await;
    // Four failures from this IP: even the right password for another account waits.
    let throttled = attempt("kim@example.com", SUPERUSER_PASSWORD).await;
    let retry_after: u64 = header_str(throttled.headers(), "retry-after")
        .parse()
        .expect("Retry-After");
    assert!(retry_after >= 1);
    expect_problem(throttled, 429, "too-many-requests").await;

    // The superuser signs in from another address, which has no failures.
    login_as_superuser(&app).await;
    let failed = expect_json(
        app.get("/api/v1/admin/security-log?event=login_failed&sort=created_at")
            .await,
        200,
    )
    .await;
    assert_eq!(failed["total"], 4);
    assert_eq!(failed["items"][0]["subject"], "kim@example.com");
    assert_eq!(failed["items"][0]["ip"], "203.0.113.7");
    let throttled = expect_json(
        app.get("/api/v1/admin/security-log?event=login_throttled")
            .await,
        200,
    )
    .await;
    assert_eq!(throttled["total"], 1);
}

both_backends!(
    walks_every_admin_route_refusing_anonymous_and_unprivileged,
    permission_list_is_generated_from_routes,
    roles_grant_and_revoke_permissions_with_an_audit_trail,
    staff_accounts_are_managed_safely,
    failed_logins_look_alike_are_logged_and_throttled_per_ip,
);
