//! Customers end to end: staff administration, the customer's address book, feedback,
//! membership levels and grants, and the membership expiry job.

use bazaar::customers::entity::membership;
use bazaar::jobs::{Job, JobContext};
use bazaar::notify::entity as email;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};

use crate::harness::*;

both_backends!(
    staff_create_search_edit_and_delete_customers,
    staff_reset_passwords_and_email_customers,
    disabled_and_deleted_customers_are_signed_out,
    customers_keep_their_own_address_book,
    address_book_holds_at_most_fifty,
    feedback_is_answered_by_email,
    membership_levels_grants_and_history,
    expiry_job_ends_memberships_once_and_emails_the_customer,
    concurrent_writes_keep_one_default_and_one_membership,
);

const CUSTOMER_PASSWORD: &str = "customer-password-1";

/// Creates a verified customer with a password through the admin API; returns its JSON.
async fn create_customer(app: &TestApp, email: &str, name: &str) -> Value {
    expect_json(
        app.post(
            "/api/v1/admin/customers",
            &json!({"email": email, "name": name, "password": CUSTOMER_PASSWORD,
                "email_verified": true}),
        )
        .await,
        201,
    )
    .await
}

/// A customer signed in with a browser of their own.
struct Shopper {
    client: reqwest::Client,
    csrf: String,
}

impl Shopper {
    async fn login(app: &TestApp, email: &str) -> Self {
        let client = new_client();
        let body = expect_json(
            send(
                client
                    .post(app.url("/api/v1/auth/login"))
                    .json(&json!({"email": email, "password": CUSTOMER_PASSWORD})),
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

    async fn get(&self, app: &TestApp, path: &str) -> reqwest::Response {
        send(self.client.get(app.url(path))).await
    }

    async fn send_json(
        &self,
        app: &TestApp,
        method: reqwest::Method,
        path: &str,
        body: &Value,
    ) -> reqwest::Response {
        send(
            self.client
                .request(method, app.url(path))
                .header(CSRF_HEADER, &self.csrf)
                .json(body),
        )
        .await
    }

    async fn post(&self, app: &TestApp, path: &str, body: &Value) -> reqwest::Response {
        self.send_json(app, reqwest::Method::POST, path, body).await
    }

    async fn patch(&self, app: &TestApp, path: &str, body: &Value) -> reqwest::Response {
        self.send_json(app, reqwest::Method::PATCH, path, body)
            .await
    }

    async fn delete(&self, app: &TestApp, path: &str) -> reqwest::Response {
        send(
            self.client
                .delete(app.url(path))
                .header(CSRF_HEADER, &self.csrf),
        )
        .await
    }
}

/// Outbox rows written with `template`, oldest first.
async fn emails(app: &TestApp, template: &str) -> Vec<email::Model> {
    email::Entity::find()
        .filter(email::Column::Template.eq(template))
        .order_by_asc(email::Column::Id)
        .all(app.state().db.writer())
        .await
        .unwrap()
}

async fn security_events(app: &TestApp, event: &str) -> Vec<Value> {
    let log = expect_json(
        app.get(&format!("/api/v1/admin/security-log?event={event}"))
            .await,
        200,
    )
    .await;
    log["items"].as_array().unwrap().clone()
}

fn emails_of(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["email"].as_str().unwrap().to_owned())
        .collect()
}

async fn staff_create_search_edit_and_delete_customers(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;

    let created = app
        .post(
            "/api/v1/admin/customers",
            &json!({"email": " Alice@Example.COM ", "name": "Alice Smith", "phone": "+86 138-0000-0000",
                "password": CUSTOMER_PASSWORD, "email_verified": true, "note": "VIP"}),
        )
        .await;
    assert_eq!(header_str(created.headers(), "etag"), "\"1\"");
    let location = header_str(created.headers(), "location");
    let alice = expect_json(created, 201).await;
    assert_eq!(alice["email"], "alice@example.com");
    assert_eq!(alice["email_verified"], true);
    assert_eq!(alice["has_password"], true);
    assert_eq!(alice["note"], "VIP");
    assert_eq!(alice["membership"], Value::Null);
    assert_eq!(alice["addresses"], json!([]));
    let id = alice["id"].as_i64().unwrap();
    assert_eq!(location, format!("/api/v1/admin/customers/{id}"));
    let audit = security_events(&app, "customer_created").await;
    assert_eq!(audit[0]["subject"], format!("customer:{id}"));

    // Same address in other case: a conflict, not a second account.
    let dup = app
        .post(
            "/api/v1/admin/customers",
            &json!({"email": "ALICE@example.com", "name": "Other"}),
        )
        .await;
    expect_problem(dup, 409, "customer-exists").await;

    let bad = app
        .post(
            "/api/v1/admin/customers",
            &json!({"email": "not-an-email", "name": " ", "password": "short", "phone": "abc"}),
        )
        .await;
    let problem = expect_problem(bad, 422, "validation-failed").await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    for field in ["email", "name", "password", "phone"] {
        assert!(fields.contains(&field), "{field} missing in {problem}");
    }
    let wrong_type = app
        .post(
            "/api/v1/admin/customers",
            &json!({"email": "x@example.com", "name": 5}),
        )
        .await;
    expect_problem(wrong_type, 422, "validation-failed").await;

    create_customer(&app, "bob@example.com", "Bob Jones").await;
    // Unverified, no password: emailed a link to choose one.
    expect_json(
        app.post(
            "/api/v1/admin/customers",
            &json!({"email": "carol@example.com", "name": "Carol Alison"}),
        )
        .await,
        201,
    )
    .await;

    // Search is case-insensitive over email and name.
    let found = expect_json(
        app.get("/api/v1/admin/customers?q=ALI&sort=email").await,
        200,
    )
    .await;
    assert_eq!(
        emails_of(&found),
        ["alice@example.com", "carol@example.com"]
    );
    let found = expect_json(app.get("/api/v1/admin/customers?q=jones").await, 200).await;
    assert_eq!(emails_of(&found), ["bob@example.com"]);
    let unverified =
        expect_json(app.get("/api/v1/admin/customers?verified=false").await, 200).await;
    assert_eq!(emails_of(&unverified), ["carol@example.com"]);
    let by_name = expect_json(
        app.get("/api/v1/admin/customers?sort=-name&per_page=2")
            .await,
        200,
    )
    .await;
    assert_eq!(by_name["total"], 3);
    assert_eq!(by_name["per_page"], 2);
    assert_eq!(
        emails_of(&by_name),
        ["carol@example.com", "bob@example.com"]
    );
    let future = expect_json(
        app.get("/api/v1/admin/customers?created_after=2999-01-01T00:00:00Z")
            .await,
        200,
    )
    .await;
    assert_eq!(future["total"], 0);
    let past = expect_json(
        app.get("/api/v1/admin/customers?created_before=2999-01-01T00:00:00Z")
            .await,
        200,
    )
    .await;
    assert_eq!(past["total"], 3);
    expect_problem(
        app.get("/api/v1/admin/customers?sort=password_hash").await,
        400,
        "invalid-sort",
    )
    .await;
    let bad_status = app.get("/api/v1/admin/customers?status=gone").await;
    assert_eq!(bad_status.status(), 400);

    // Edits need the version; stale writes lose.
    let path = format!("/api/v1/admin/customers/{id}");
    expect_problem(
        app.patch(&path, &json!({"name": "A"})).await,
        428,
        "precondition-required",
    )
    .await;
    expect_problem(
        app.patch(&path, &json!({"name": "A", "version": 7})).await,
        409,
        "stale-version",
    )
    .await;
    let if_match = send(
        app.request(reqwest::Method::PATCH, &path)
            .header("if-match", "\"9\"")
            .json(&json!({"name": "A"})),
    )
    .await;
    expect_problem(if_match, 412, "precondition-failed").await;
    expect_problem(
        app.patch(&path, &json!({"email": "BOB@example.com", "version": 1}))
            .await,
        409,
        "customer-exists",
    )
    .await;
    expect_problem(
        app.patch(&path, &json!({"email": "nope", "version": 1}))
            .await,
        422,
        "validation-failed",
    )
    .await;
    let edited = app
        .patch(
            &path,
            &json!({"name": "Alice Brown", "email": "Alice.Brown@example.com", "phone": null,
                "note": "", "version": 1}),
        )
        .await;
    assert_eq!(header_str(edited.headers(), "etag"), "\"2\"");
    let edited = expect_json(edited, 200).await;
    assert_eq!(edited["name"], "Alice Brown");
    assert_eq!(edited["email"], "alice.brown@example.com");
    assert_eq!(
        edited["email_verified"], false,
        "a new address is unverified"
    );
    assert_eq!(edited["phone"], Value::Null);
    let audit = security_events(&app, "customer_updated").await;
    assert_eq!(audit.len(), 1);
    assert!(
        audit[0]["detail"]["changed"]
            .as_array()
            .unwrap()
            .contains(&json!("email"))
    );

    let inactive = expect_json(
        app.patch(&path, &json!({"is_active": false, "version": 2}))
            .await,
        200,
    )
    .await;
    assert_eq!(inactive["is_active"], false);
    let listed = expect_json(
        app.get("/api/v1/admin/customers?status=inactive").await,
        200,
    )
    .await;
    assert_eq!(emails_of(&listed), ["alice.brown@example.com"]);
    let listed = expect_json(app.get("/api/v1/admin/customers?status=active").await, 200).await;
    assert_eq!(listed["total"], 2);

    // Soft delete: hidden from the default list, kept for staff who ask for it.
    let response = app.delete(&path).await;
    assert_eq!(response.status(), 204);
    let listed = expect_json(app.get("/api/v1/admin/customers").await, 200).await;
    assert_eq!(listed["total"], 2);
    assert!(!emails_of(&listed).contains(&"alice.brown@example.com".to_owned()));
    let deleted = expect_json(app.get("/api/v1/admin/customers?status=deleted").await, 200).await;
    assert_eq!(emails_of(&deleted), ["alice.brown@example.com"]);
    let shown = expect_json(app.get(&path).await, 200).await;
    assert!(shown["deleted_at"].is_string());
    assert_eq!(shown["is_active"], false);
    expect_problem(app.delete(&path).await, 410, "customer-deleted").await;
    expect_problem(
        app.patch(&path, &json!({"name": "Back", "version": 4}))
            .await,
        410,
        "customer-deleted",
    )
    .await;
    assert_eq!(security_events(&app, "customer_deleted").await.len(), 1);
    expect_problem(
        app.get("/api/v1/admin/customers/999999").await,
        404,
        "not-found",
    )
    .await;
}

async fn staff_reset_passwords_and_email_customers(backend: Backend) {
    let app = spawn(backend).await;
    create_staff(
        &app,
        "clerk@example.com",
        SUPERUSER_PASSWORD,
        false,
        &[
            "customers.customers.read",
            "customers.customers.write",
            "identity.security_log.read",
        ],
    )
    .await;
    assert_eq!(
        login(&app, "clerk@example.com", SUPERUSER_PASSWORD)
            .await
            .status(),
        200
    );

    // Created without a password: the customer is sent a link to choose one.
    let dora = expect_json(
        app.post(
            "/api/v1/admin/customers",
            &json!({"email": "dora@example.com", "name": "Dora"}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(dora["has_password"], false);
    let resets = emails(&app, "customer_password_reset").await;
    assert_eq!(resets.len(), 1);
    assert_eq!(resets[0].to_address, "dora@example.com");
    assert!(resets[0].text_body.contains("reset-password"));

    let id = dora["id"].as_i64().unwrap();
    let response = app
        .post_empty(&format!("/api/v1/admin/customers/{id}/password-reset"))
        .await;
    assert_eq!(response.status(), 202);
    assert_eq!(emails(&app, "customer_password_reset").await.len(), 2);
    assert_eq!(
        security_events(&app, "customer_password_reset_sent")
            .await
            .len(),
        1
    );

    let queued = expect_json(
        app.post(
            &format!("/api/v1/admin/customers/{id}/emails"),
            &json!({"subject": "Your order <42>", "body": "It ships today & arrives <soon>."}),
        )
        .await,
        202,
    )
    .await;
    let sent = emails(&app, "customer_message").await;
    assert_eq!(sent.len(), 1);
    assert_eq!(queued["email_id"], json!(sent[0].id));
    assert_eq!(sent[0].to_address, "dora@example.com");
    assert_eq!(sent[0].subject, "Your order <42>");
    assert!(
        sent[0]
            .text_body
            .contains("It ships today & arrives <soon>.")
    );
    assert!(sent[0].html_body.contains("&amp; arrives &lt;soon&gt;"));
    let audit = security_events(&app, "customer_emailed").await;
    assert_eq!(audit[0]["detail"]["email_id"], queued["email_id"]);
    assert_eq!(audit[0]["actor_email"], "clerk@example.com");

    let invalid = app
        .post(
            &format!("/api/v1/admin/customers/{id}/emails"),
            &json!({"subject": "two\nlines", "body": ""}),
        )
        .await;
    let problem = expect_problem(invalid, 422, "validation-failed").await;
    assert_eq!(problem["errors"].as_array().unwrap().len(), 2);
    expect_problem(
        app.post(
            "/api/v1/admin/customers/999999/emails",
            &json!({"subject": "Hi", "body": "Hello"}),
        )
        .await,
        404,
        "not-found",
    )
    .await;
    expect_problem(
        app.post_empty("/api/v1/admin/customers/999999/password-reset")
            .await,
        404,
        "not-found",
    )
    .await;

    // Reading alone does not allow writing.
    create_staff(
        &app,
        "viewer@example.com",
        SUPERUSER_PASSWORD,
        false,
        &["customers.customers.read"],
    )
    .await;
    login(&app, "viewer@example.com", SUPERUSER_PASSWORD).await;
    expect_json(app.get("/api/v1/admin/customers").await, 200).await;
    expect_problem(
        app.post_empty(&format!("/api/v1/admin/customers/{id}/password-reset"))
            .await,
        403,
        "forbidden",
    )
    .await;
}

async fn disabled_and_deleted_customers_are_signed_out(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let erin = create_customer(&app, "erin@example.com", "Erin").await;
    let frank = create_customer(&app, "frank@example.com", "Frank").await;
    let gus = create_customer(&app, "gus@example.com", "Gus").await;
    let erin_session = Shopper::login(&app, "erin@example.com").await;
    let frank_session = Shopper::login(&app, "frank@example.com").await;
    expect_json(erin_session.get(&app, "/api/v1/me").await, 200).await;
    expect_json(frank_session.get(&app, "/api/v1/me").await, 200).await;

    let erin_path = format!("/api/v1/admin/customers/{}", erin["id"]);
    expect_json(
        app.patch(&erin_path, &json!({"is_active": false, "version": 1}))
            .await,
        200,
    )
    .await;
    expect_problem(
        erin_session.get(&app, "/api/v1/me").await,
        401,
        "unauthenticated",
    )
    .await;

    let frank_path = format!("/api/v1/admin/customers/{}", frank["id"]);
    let level = expect_json(
        app.post(
            "/api/v1/admin/membership-levels",
            &json!({"name": "Gold", "discount_percent": 5}),
        )
        .await,
        201,
    )
    .await;
    let membership = app
        .put(
            &format!("{frank_path}/membership"),
            &json!({"level_id": level["id"]}),
        )
        .await;
    expect_json(membership, 200).await;
    assert_eq!(app.delete(&frank_path).await.status(), 204);
    // The membership ends with the account.
    let history = expect_json(app.get(&format!("{frank_path}/memberships")).await, 200).await;
    assert_eq!(history[0]["end_reason"], "account_deleted", "{history}");
    expect_problem(
        frank_session.get(&app, "/api/v1/me").await,
        401,
        "unauthenticated",
    )
    .await;
    let relogin = send(
        new_client()
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({"email": "frank@example.com", "password": CUSTOMER_PASSWORD})),
    )
    .await;
    assert!(
        relogin.status().is_client_error(),
        "a deleted customer signed in: {}",
        relogin.status()
    );

    // Tokens: the refresh token is revoked, and a still-unexpired access token cannot write.
    let tokens = expect_json(
        send(
            new_client()
                .post(app.url("/api/v1/auth/token"))
                .json(&json!({"email": "gus@example.com", "password": CUSTOMER_PASSWORD})),
        )
        .await,
        200,
    )
    .await;
    let gus_path = format!("/api/v1/admin/customers/{}", gus["id"]);
    assert_eq!(app.delete(&gus_path).await.status(), 204);
    let refreshed = send(
        new_client()
            .post(app.url("/api/v1/auth/token/refresh"))
            .json(&json!({"refresh_token": tokens["refresh_token"]})),
    )
    .await;
    expect_problem(refreshed, 400, "invalid-grant").await;
    let access = tokens["access_token"].as_str().unwrap();
    let write = send(
        new_client()
            .post(app.url("/api/v1/feedback"))
            .bearer_auth(access)
            .json(&json!({"subject": "Hi", "message": "Still here?"})),
    )
    .await;
    expect_problem(write, 401, "unauthenticated").await;

    // Re-enabled, Erin can sign in again.
    expect_json(
        app.patch(&erin_path, &json!({"is_active": true, "version": 2}))
            .await,
        200,
    )
    .await;
    let again = Shopper::login(&app, "erin@example.com").await;
    expect_json(again.get(&app, "/api/v1/me").await, 200).await;
}

/// A city to put addresses in.
async fn region(app: &TestApp) -> i64 {
    let cn = expect_json(
        app.post(
            "/api/v1/admin/regions",
            &json!({"code": "CN", "name": "China", "level": "country"}),
        )
        .await,
        201,
    )
    .await;
    let gd = expect_json(
        app.post(
            "/api/v1/admin/regions",
            &json!({"code": "CN-GD", "name": "Guangdong", "level": "province", "parent_id": cn["id"]}),
        )
        .await,
        201,
    )
    .await;
    gd["id"].as_i64().unwrap()
}

fn address(region_id: i64, line1: &str) -> Value {
    json!({"recipient": "Gina", "phone": "13800000000", "region_id": region_id,
        "line1": line1, "postal_code": "518000"})
}

async fn customers_keep_their_own_address_book(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let region_id = region(&app).await;
    create_customer(&app, "gina@example.com", "Gina").await;
    create_customer(&app, "hank@example.com", "Hank").await;
    let gina = Shopper::login(&app, "gina@example.com").await;
    let hank = Shopper::login(&app, "hank@example.com").await;

    let first = gina
        .post(
            &app,
            "/api/v1/me/addresses",
            &address(region_id, "1 First Road"),
        )
        .await;
    assert!(header_str(first.headers(), "location").starts_with("/api/v1/me/addresses/"));
    let first = expect_json(first, 201).await;
    assert_eq!(
        first["is_default"], true,
        "the first address is the default"
    );
    let second = expect_json(
        gina.post(
            &app,
            "/api/v1/me/addresses",
            &address(region_id, "2 Second Road"),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(second["is_default"], false);
    let third = expect_json(
        gina.post(
            &app,
            "/api/v1/me/addresses",
            &json!({"recipient": "Gina", "phone": "13800000000", "region_id": region_id,
                "line1": "3 Third Road", "line2": "  ", "is_default": true}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(third["is_default"], true);
    assert_eq!(third["line2"], Value::Null);
    let list = expect_json(gina.get(&app, "/api/v1/me/addresses").await, 200).await;
    let defaults: Vec<i64> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["is_default"] == true)
        .map(|a| a["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        defaults,
        [third["id"].as_i64().unwrap()],
        "one default: {list}"
    );
    assert_eq!(list[0]["id"], third["id"], "the default comes first");

    // Moving the default back, with the version the customer saw.
    let first_path = format!("/api/v1/me/addresses/{}", first["id"]);
    let current = expect_json(gina.get(&app, &first_path).await, 200).await;
    expect_problem(
        gina.patch(&app, &first_path, &json!({"is_default": true}))
            .await,
        428,
        "precondition-required",
    )
    .await;
    let moved = expect_json(
        gina.patch(
            &app,
            &first_path,
            &json!({"is_default": true, "line1": "1 New Road", "version": current["version"]}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(moved["is_default"], true);
    assert_eq!(moved["line1"], "1 New Road");
    let list = expect_json(gina.get(&app, "/api/v1/me/addresses").await, 200).await;
    assert_eq!(
        list.as_array()
            .unwrap()
            .iter()
            .filter(|a| a["is_default"] == true)
            .count(),
        1
    );
    expect_problem(
        gina.patch(
            &app,
            &first_path,
            &json!({"line1": "x", "version": current["version"]}),
        )
        .await,
        409,
        "stale-version",
    )
    .await;

    // Invalid input, unknown regions.
    let bad = gina
        .post(
            &app,
            "/api/v1/me/addresses",
            &json!({"recipient": "", "phone": "call me", "region_id": region_id, "line1": "x"}),
        )
        .await;
    let problem = expect_problem(bad, 422, "validation-failed").await;
    assert_eq!(problem["errors"].as_array().unwrap().len(), 2);
    let unknown = gina
        .post(&app, "/api/v1/me/addresses", &address(999_999, "Nowhere"))
        .await;
    let problem = expect_problem(unknown, 422, "validation-failed").await;
    assert_eq!(problem["errors"][0]["field"], "region_id");
    let missing = gina
        .post(&app, "/api/v1/me/addresses", &json!({"recipient": "Gina"}))
        .await;
    expect_problem(missing, 422, "validation-failed").await;

    // Another customer's address does not exist for Hank.
    expect_problem(hank.get(&app, &first_path).await, 404, "not-found").await;
    expect_problem(
        hank.patch(&app, &first_path, &json!({"line1": "mine", "version": 1}))
            .await,
        404,
        "not-found",
    )
    .await;
    expect_problem(hank.delete(&app, &first_path).await, 404, "not-found").await;
    let hanks = expect_json(hank.get(&app, "/api/v1/me/addresses").await, 200).await;
    assert_eq!(hanks, json!([]));

    // Deleting the default promotes the oldest remaining address.
    assert_eq!(gina.delete(&app, &first_path).await.status(), 204);
    let list = expect_json(gina.get(&app, "/api/v1/me/addresses").await, 200).await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[0]["id"], second["id"]);
    assert_eq!(list[0]["is_default"], true);

    // Staff see the addresses on the customer.
    let customers = expect_json(app.get("/api/v1/admin/customers?q=gina").await, 200).await;
    let detail = expect_json(
        app.get(&format!(
            "/api/v1/admin/customers/{}",
            customers["items"][0]["id"]
        ))
        .await,
        200,
    )
    .await;
    assert_eq!(detail["addresses"].as_array().unwrap().len(), 2);

    // Anonymous callers are refused.
    let anonymous = send(new_client().get(app.url("/api/v1/me/addresses"))).await;
    expect_problem(anonymous, 401, "unauthenticated").await;
}

async fn address_book_holds_at_most_fifty(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let region_id = region(&app).await;
    create_customer(&app, "ivy@example.com", "Ivy").await;
    let ivy = Shopper::login(&app, "ivy@example.com").await;
    for i in 0..50 {
        let response = ivy
            .post(
                &app,
                "/api/v1/me/addresses",
                &address(region_id, &format!("{i} Road")),
            )
            .await;
        assert_eq!(response.status(), 201, "address {i}");
    }
    let over = ivy
        .post(&app, "/api/v1/me/addresses", &address(region_id, "51 Road"))
        .await;
    let problem = expect_problem(over, 422, "too-many-addresses").await;
    assert_eq!(problem["errors"][0]["field"], "addresses");
    let list = expect_json(ivy.get(&app, "/api/v1/me/addresses").await, 200).await;
    assert_eq!(list.as_array().unwrap().len(), 50);
}

async fn feedback_is_answered_by_email(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let jack = create_customer(&app, "jack@example.com", "Jack").await;
    create_customer(&app, "kate@example.com", "Kate").await;
    let jack_session = Shopper::login(&app, "jack@example.com").await;
    let kate_session = Shopper::login(&app, "kate@example.com").await;

    let submitted = expect_json(
        jack_session
            .post(
                &app,
                "/api/v1/feedback",
                &json!({"subject": "Late parcel", "message": "Where is my <parcel>?"}),
            )
            .await,
        201,
    )
    .await;
    assert_eq!(submitted["status"], "open");
    assert_eq!(submitted["customer_id"], jack["id"]);
    expect_problem(
        jack_session
            .post(
                &app,
                "/api/v1/feedback",
                &json!({"subject": "x", "message": " "}),
            )
            .await,
        422,
        "validation-failed",
    )
    .await;
    let mine = expect_json(jack_session.get(&app, "/api/v1/feedback").await, 200).await;
    assert_eq!(mine["total"], 1);
    let theirs = expect_json(kate_session.get(&app, "/api/v1/feedback").await, 200).await;
    assert_eq!(theirs["total"], 0);
    let own_path = format!("/api/v1/feedback/{}", submitted["id"]);
    expect_json(jack_session.get(&app, &own_path).await, 200).await;
    expect_problem(kate_session.get(&app, &own_path).await, 404, "not-found").await;

    // Staff with the feedback permissions answer.
    let staff_id = create_staff(
        &app,
        "support@example.com",
        SUPERUSER_PASSWORD,
        false,
        &[
            "customers.feedback.read",
            "customers.feedback.write",
            "identity.security_log.read",
        ],
    )
    .await;
    login(&app, "support@example.com", SUPERUSER_PASSWORD).await;
    let open = expect_json(app.get("/api/v1/admin/feedback?status=open").await, 200).await;
    assert_eq!(open["total"], 1);
    let by_customer = expect_json(
        app.get(&format!(
            "/api/v1/admin/feedback?customer_id={}",
            jack["id"]
        ))
        .await,
        200,
    )
    .await;
    assert_eq!(by_customer["total"], 1);
    let path = format!("/api/v1/admin/feedback/{}", submitted["id"]);
    expect_problem(
        app.post(&format!("{path}/reply"), &json!({"reply": ""}))
            .await,
        422,
        "validation-failed",
    )
    .await;
    let replied = expect_json(
        app.post(
            &format!("{path}/reply"),
            &json!({"reply": "It arrives tomorrow."}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(replied["status"], "replied");
    assert_eq!(replied["reply"], "It arrives tomorrow.");
    assert_eq!(replied["replied_by_staff_id"], staff_id);
    assert!(replied["replied_at"].is_string());
    let sent = emails(&app, "feedback_reply").await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to_address, "jack@example.com");
    assert_eq!(sent[0].subject, "Re: Late parcel");
    assert!(sent[0].text_body.contains("It arrives tomorrow."));
    assert!(sent[0].html_body.contains("&lt;parcel&gt;"));
    assert_eq!(security_events(&app, "feedback_replied").await.len(), 1);
    let replied_list =
        expect_json(app.get("/api/v1/admin/feedback?status=replied").await, 200).await;
    assert_eq!(replied_list["total"], 1);
    let seen = expect_json(jack_session.get(&app, &own_path).await, 200).await;
    assert_eq!(seen["reply"], "It arrives tomorrow.");

    assert_eq!(app.delete(&path).await.status(), 204);
    expect_problem(app.get(&path).await, 404, "not-found").await;
    expect_problem(app.delete(&path).await, 404, "not-found").await;
    assert_eq!(security_events(&app, "feedback_deleted").await.len(), 1);
}

async fn membership_levels_grants_and_history(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let levels = "/api/v1/admin/membership-levels";
    let gold = expect_json(
        app.post(
            levels,
            &json!({"name": "Gold", "description": "Our best customers", "discount_percent": 10,
                "free_shipping": true}),
        )
        .await,
        201,
    )
    .await;
    let silver = expect_json(
        app.post(levels, &json!({"name": "Silver", "discount_percent": 5}))
            .await,
        201,
    )
    .await;
    expect_problem(
        app.post(levels, &json!({"name": "gold"})).await,
        409,
        "membership-level-exists",
    )
    .await;
    let bad = app
        .post(
            levels,
            &json!({"name": "Platinum", "discount_percent": 101}),
        )
        .await;
    let problem = expect_problem(bad, 422, "validation-failed").await;
    assert_eq!(problem["errors"][0]["field"], "discount_percent");
    expect_problem(
        app.post(levels, &json!({"name": "Half", "discount_percent": 2.5}))
            .await,
        422,
        "validation-failed",
    )
    .await;
    let silver_path = format!("{levels}/{}", silver["id"]);
    expect_problem(
        app.patch(&silver_path, &json!({"name": "Gold", "version": 1}))
            .await,
        409,
        "membership-level-exists",
    )
    .await;
    let silver = expect_json(
        app.patch(&silver_path, &json!({"discount_percent": 6, "version": 1}))
            .await,
        200,
    )
    .await;
    assert_eq!(silver["discount_percent"], 6);
    assert_eq!(silver["version"], 2);
    let listed = expect_json(
        app.get(&format!("{levels}?sort=-discount_percent")).await,
        200,
    )
    .await;
    assert_eq!(listed["items"][0]["name"], "Gold");

    let lena = create_customer(&app, "lena@example.com", "Lena").await;
    create_customer(&app, "mike@example.com", "Mike").await;
    let lena_id = lena["id"].as_i64().unwrap();
    let lena_session = Shopper::login(&app, "lena@example.com").await;
    let none = expect_json(lena_session.get(&app, "/api/v1/me/membership").await, 200).await;
    assert_eq!(none, Value::Null);

    let grant_path = format!("/api/v1/admin/customers/{lena_id}/membership");
    expect_problem(
        app.put(
            &grant_path,
            &json!({"level_id": gold["id"], "expires_at": "2001-01-01T00:00:00Z"}),
        )
        .await,
        422,
        "validation-failed",
    )
    .await;
    let unknown = app.put(&grant_path, &json!({"level_id": 999_999})).await;
    let problem = expect_problem(unknown, 422, "validation-failed").await;
    assert_eq!(problem["errors"][0]["field"], "level_id");
    expect_problem(
        app.put(
            &grant_path,
            &json!({"level_id": gold["id"], "expires_at": "soon"}),
        )
        .await,
        422,
        "validation-failed",
    )
    .await;

    let expires = (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339();
    let granted = expect_json(
        app.put(
            &grant_path,
            &json!({"level_id": gold["id"], "expires_at": expires}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(granted["level"]["name"], "Gold");
    assert!(granted["granted_by_staff_id"].is_i64());
    let detail = expect_json(
        app.get(&format!("/api/v1/admin/customers/{lena_id}")).await,
        200,
    )
    .await;
    assert_eq!(detail["membership"]["level"]["name"], "Gold");
    let mine = expect_json(lena_session.get(&app, "/api/v1/me/membership").await, 200).await;
    assert_eq!(mine["level"]["name"], "Gold");
    assert_eq!(mine["level"]["discount_percent"], 10);
    assert_eq!(mine["level"]["free_shipping"], true);
    assert!(mine["expires_at"].is_string());
    let holders = expect_json(
        app.get(&format!(
            "/api/v1/admin/customers?membership_level_id={}",
            gold["id"]
        ))
        .await,
        200,
    )
    .await;
    assert_eq!(emails_of(&holders), ["lena@example.com"]);

    // Changing the level ends the current membership.
    let changed = expect_json(
        app.put(&grant_path, &json!({"level_id": silver["id"]}))
            .await,
        200,
    )
    .await;
    assert_eq!(changed["level"]["name"], "Silver");
    assert_eq!(changed["expires_at"], Value::Null);
    let history = expect_json(
        app.get(&format!("/api/v1/admin/customers/{lena_id}/memberships"))
            .await,
        200,
    )
    .await;
    let history = history.as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["level"]["name"], "Silver");
    assert_eq!(history[0]["ended_at"], Value::Null);
    assert_eq!(history[1]["level"]["name"], "Gold");
    assert_eq!(history[1]["end_reason"], "changed");
    assert!(history[1]["ended_at"].is_string());
    let mine = expect_json(lena_session.get(&app, "/api/v1/me/membership").await, 200).await;
    assert_eq!(mine["level"]["name"], "Silver");

    // A level with history is kept; an unused one can go.
    expect_problem(
        app.delete(&format!("{levels}/{}", gold["id"])).await,
        409,
        "membership-level-in-use",
    )
    .await;
    let bronze = expect_json(app.post(levels, &json!({"name": "Bronze"})).await, 201).await;
    let bronze_path = format!("{levels}/{}", bronze["id"]);
    assert_eq!(app.delete(&bronze_path).await.status(), 204);
    expect_problem(app.get(&bronze_path).await, 404, "not-found").await;

    // Revoking ends it now.
    assert_eq!(app.delete(&grant_path).await.status(), 204);
    let none = expect_json(lena_session.get(&app, "/api/v1/me/membership").await, 200).await;
    assert_eq!(none, Value::Null);
    expect_problem(app.delete(&grant_path).await, 404, "no-membership").await;
    let history = expect_json(
        app.get(&format!("/api/v1/admin/customers/{lena_id}/memberships"))
            .await,
        200,
    )
    .await;
    assert_eq!(history[0]["end_reason"], "revoked");
    for event in [
        "membership_level_created",
        "membership_level_updated",
        "membership_level_deleted",
        "membership_granted",
        "membership_revoked",
    ] {
        assert!(
            !security_events(&app, event).await.is_empty(),
            "no {event} in the security log"
        );
    }
    expect_problem(
        app.put(
            "/api/v1/admin/customers/999999/membership",
            &json!({"level_id": gold["id"]}),
        )
        .await,
        404,
        "not-found",
    )
    .await;
}

async fn expiry_job_ends_memberships_once_and_emails_the_customer(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;

    let registry = bazaar::jobs::catalogue(&app.state().config);
    let schedule = registry
        .schedules()
        .iter()
        .find(|s| s.name == "expire_memberships")
        .expect("the expire_memberships schedule is registered");
    assert_eq!(schedule.default_cron, "0 */5 * * * *");
    assert!(registry.get("expire_memberships").is_some());

    let level = expect_json(
        app.post(
            "/api/v1/admin/membership-levels",
            &json!({"name": "Gold", "discount_percent": 10}),
        )
        .await,
        201,
    )
    .await;
    let later = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let mut ids = Vec::new();
    for name in ["nina", "omar", "pia"] {
        let customer = create_customer(&app, &format!("{name}@example.com"), name).await;
        let id = customer["id"].as_i64().unwrap();
        expect_json(
            app.put(
                &format!("/api/v1/admin/customers/{id}/membership"),
                &json!({"level_id": level["id"], "expires_at": later}),
            )
            .await,
            200,
        )
        .await;
        ids.push(id);
    }
    // Nina's and Omar's memberships ran out an hour ago; Pia's runs until tomorrow.
    let past = chrono::Utc::now() - chrono::Duration::hours(1);
    membership::Entity::update_many()
        .col_expr(membership::Column::ExpiresAt, Expr::value(past))
        .filter(membership::Column::CustomerId.is_in(ids[..2].to_vec()))
        .exec(app.state().db.writer())
        .await
        .unwrap();
    let nina_session = Shopper::login(&app, "nina@example.com").await;
    let shown = expect_json(nina_session.get(&app, "/api/v1/me/membership").await, 200).await;
    assert_eq!(shown, Value::Null, "an expired membership is not shown");

    let context = JobContext {
        attempt: 1,
        last_attempt: false,
    };
    bazaar::customers::jobs::ExpireMemberships
        .run(app.state().clone(), context)
        .await
        .unwrap();
    // A second run (a redelivery, or the next tick) finds nothing to do.
    bazaar::customers::jobs::ExpireMemberships
        .run(app.state().clone(), context)
        .await
        .unwrap();

    let sent = emails(&app, "membership_expired").await;
    let mut recipients: Vec<&str> = sent.iter().map(|e| e.to_address.as_str()).collect();
    recipients.sort_unstable();
    assert_eq!(recipients, ["nina@example.com", "omar@example.com"]);
    assert!(sent[0].subject.contains("Gold"));
    for (id, expected) in [(ids[0], Some("expired")), (ids[2], None)] {
        let history = expect_json(
            app.get(&format!("/api/v1/admin/customers/{id}/memberships"))
                .await,
            200,
        )
        .await;
        assert_eq!(history[0]["end_reason"].as_str(), expected, "{history}");
    }
    let holders = expect_json(
        app.get(&format!(
            "/api/v1/admin/customers?membership_level_id={}",
            level["id"]
        ))
        .await,
        200,
    )
    .await;
    assert_eq!(emails_of(&holders), ["pia@example.com"]);

    // Queued like the scheduler queues it, a worker runs the job.
    membership::Entity::update_many()
        .col_expr(membership::Column::ExpiresAt, Expr::value(past))
        .filter(membership::Column::CustomerId.eq(ids[2]))
        .exec(app.state().db.writer())
        .await
        .unwrap();
    bazaar::jobs::enqueue(
        app.state().db.writer(),
        &app.state().config,
        &bazaar::customers::jobs::ExpireMemberships,
        bazaar::jobs::Enqueue::default(),
    )
    .await
    .unwrap();
    for _ in 0..200 {
        if emails(&app, "membership_expired").await.len() == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let sent = emails(&app, "membership_expired").await;
    assert_eq!(sent.len(), 3, "the queued job did not run");
    assert_eq!(sent[2].to_address, "pia@example.com");
}

async fn concurrent_writes_keep_one_default_and_one_membership(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let region_id = region(&app).await;
    let quinn = create_customer(&app, "quinn@example.com", "Quinn").await;
    let quinn_session = Shopper::login(&app, "quinn@example.com").await;

    let mut body = address(region_id, "Somewhere");
    body["is_default"] = json!(true);
    let creates = (0..6).map(|_| quinn_session.post(&app, "/api/v1/me/addresses", &body));
    for response in futures::future::join_all(creates).await {
        assert_eq!(response.status(), 201);
    }
    let list = expect_json(quinn_session.get(&app, "/api/v1/me/addresses").await, 200).await;
    let defaults = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["is_default"] == true)
        .count();
    assert_eq!(defaults, 1, "{list}");

    let level = expect_json(
        app.post("/api/v1/admin/membership-levels", &json!({"name": "Gold"}))
            .await,
        201,
    )
    .await;
    let path = format!("/api/v1/admin/customers/{}/membership", quinn["id"]);
    let grant = json!({"level_id": level["id"]});
    let grants = (0..6).map(|_| app.put(&path, &grant));
    for response in futures::future::join_all(grants).await {
        assert_eq!(response.status(), 200);
    }
    let history = expect_json(
        app.get(&format!(
            "/api/v1/admin/customers/{}/memberships",
            quinn["id"]
        ))
        .await,
        200,
    )
    .await;
    let history = history.as_array().unwrap();
    assert_eq!(history.len(), 6);
    let open = history.iter().filter(|m| m["ended_at"].is_null()).count();
    assert_eq!(open, 1, "{history:?}");
}
