//! Brands: staff edit them under optimistic concurrency, the storefront shows the visible
//! ones, and a brand live products still use cannot be deleted.

use bazaar::catalog::entity::product;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};

use crate::harness::{
    Backend, TestApp, both_backends, create_staff, expect_json, expect_problem, header_str, login,
    login_as_superuser, send, spawn, spawn_sharing,
};

both_backends!(
    brands_are_created_listed_edited_and_deleted,
    brand_writes_are_checked_and_permissioned,
    the_storefront_shows_visible_brands_in_order,
    a_brand_live_products_use_is_kept,
);

const ADMIN: &str = "/api/v1/admin/brands";
const STOREFRONT: &str = "/api/v1/brands";

async fn create(app: &TestApp, body: Value) -> Value {
    expect_json(app.post(ADMIN, &body).await, 201).await
}

fn field_names(problem: &Value) -> Vec<&str> {
    problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect()
}

fn slugs(items: &Value) -> Vec<&str> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["slug"].as_str().unwrap())
        .collect()
}

/// Runs SQL on the app's database, for rows no API makes yet (products).
async fn execute_sql(app: &TestApp, sql: &str) {
    app.state()
        .db
        .writer()
        .execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn brands_are_created_listed_edited_and_deleted(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;

    let response = app
        .post(
            ADMIN,
            &json!({"name": "  Acme  ", "slug": "acme", "description": "Anvils since 1920.",
                "logo_key": "brands/acme.png", "website": "https://acme.example",
                "sort_order": 2}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let location = header_str(response.headers(), "location");
    assert_eq!(header_str(response.headers(), "etag"), "\"1\"");
    let acme = expect_json(response, 201).await;
    assert_eq!(location, format!("{ADMIN}/{}", acme["id"]));
    assert_eq!(acme["name"], "Acme", "the name is trimmed");
    assert_eq!(acme["logo_url"], "/media/brands/acme.png");
    assert_eq!(acme["is_visible"], true);
    assert_eq!(acme["version"], 1);
    create(
        &app,
        json!({"name": "Zenith", "slug": "zenith", "sort_order": 1}),
    )
    .await;
    create(&app, json!({"name": "Acorn Tools", "slug": "acorn-tools"})).await;

    let response = app.get(&location).await;
    assert_eq!(header_str(response.headers(), "etag"), "\"1\"");
    let fetched = expect_json(response, 200).await;
    assert_eq!(fetched["website"], "https://acme.example");
    assert_eq!(fetched["description"], "Anvils since 1920.");

    let page = expect_json(app.get(&format!("{ADMIN}?sort=name")).await, 200).await;
    assert_eq!(page["total"], 3);
    assert_eq!(slugs(&page["items"]), ["acme", "acorn-tools", "zenith"]);
    let page = expect_json(app.get(&format!("{ADMIN}?q=AC&sort=-name")).await, 200).await;
    assert_eq!(
        slugs(&page["items"]),
        ["acorn-tools", "acme"],
        "q ignores case"
    );
    let page = expect_json(
        app.get(&format!("{ADMIN}?sort=sort_order,name&per_page=2"))
            .await,
        200,
    )
    .await;
    assert_eq!(slugs(&page["items"]), ["acorn-tools", "zenith"]);
    assert_eq!(
        (page["total"].clone(), page["per_page"].clone()),
        (json!(3), json!(2))
    );
    let page = expect_json(app.get(&format!("{ADMIN}?sort=-created_at")).await, 200).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 3);
    expect_problem(
        app.get(&format!("{ADMIN}?sort=website")).await,
        400,
        "invalid-sort",
    )
    .await;

    // If-Match names the version; `null` clears an optional field.
    let response = send(
        app.request(reqwest::Method::PATCH, &location)
            .header("if-match", "\"1\"")
            .json(
                &json!({"name": "ACME", "slug": "acme-corp", "website": null,
                "logo_key": null}),
            ),
    )
    .await;
    assert_eq!(header_str(response.headers(), "etag"), "\"2\"");
    let edited = expect_json(response, 200).await;
    assert_eq!(edited["name"], "ACME");
    assert_eq!(edited["slug"], "acme-corp");
    assert_eq!(edited["website"], Value::Null);
    assert_eq!(edited["logo_url"], Value::Null);
    assert_eq!(
        edited["description"], "Anvils since 1920.",
        "absent fields stay"
    );
    assert_eq!(edited["version"], 2);
    let response = app
        .patch(&location, &json!({"is_visible": false, "version": 2}))
        .await;
    assert_eq!(expect_json(response, 200).await["version"], 3);

    let response = app.delete(&location).await;
    assert_eq!(response.status(), 204);
    expect_problem(app.get(&location).await, 404, "not-found").await;

    let doc = expect_json(app.get("/api/openapi.json").await, 200).await;
    let list = &doc["paths"][ADMIN]["get"];
    assert_eq!(list["tags"], json!(["brands"]));
    assert_eq!(list["x-permission"], "catalog.brands.read");
    assert_eq!(
        doc["paths"][format!("{ADMIN}/{{id}}")]["patch"]["x-permission"],
        "catalog.brands.write"
    );
    assert!(doc["paths"][format!("{STOREFRONT}/{{slug}}")]["get"].is_object());

    for event in ["brand_created", "brand_updated", "brand_deleted"] {
        let log = expect_json(
            app.get(&format!("/api/v1/admin/security-log?event={event}"))
                .await,
            200,
        )
        .await;
        assert!(log["total"].as_u64().unwrap() >= 1, "{event} is audited");
    }
}

async fn brand_writes_are_checked_and_permissioned(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let acme = create(&app, json!({"name": "Acme", "slug": "acme"})).await;
    let url = format!("{ADMIN}/{}", acme["id"]);
    create(&app, json!({"name": "Other", "slug": "other"})).await;

    let response = app
        .post(
            ADMIN,
            &json!({"name": " ", "slug": "Not A Slug", "website": "acme.example"}),
        )
        .await;
    let problem = expect_problem(response, 422, "validation-failed").await;
    assert_eq!(field_names(&problem), ["name", "slug", "website"]);
    let too_long = json!({"name": "x".repeat(101), "slug": "ok",
        "website": "javascript:alert(1)", "description": "d".repeat(10_001)});
    let problem = expect_problem(app.post(ADMIN, &too_long).await, 422, "validation-failed").await;
    assert_eq!(field_names(&problem), ["name", "description", "website"]);
    let response = app
        .patch(
            &url,
            &json!({"slug": "-bad-", "website": "ftp://acme.example", "version": 1}),
        )
        .await;
    let problem = expect_problem(response, 422, "validation-failed").await;
    assert_eq!(field_names(&problem), ["slug", "website"]);
    let response = app
        .post(ADMIN, &json!({"name": "X", "slug": "x", "colour": "red"}))
        .await;
    assert_eq!(response.status(), 422, "unknown fields are refused");

    let response = app
        .post(ADMIN, &json!({"name": "Again", "slug": "acme"}))
        .await;
    expect_problem(response, 409, "brand-slug-taken").await;
    let response = app
        .patch(&url, &json!({"slug": "other", "version": 1}))
        .await;
    expect_problem(response, 409, "brand-slug-taken").await;

    // A stale write loses: 409 with a body version, 412 with If-Match; neither is a 428.
    expect_json(
        app.patch(&url, &json!({"sort_order": 5, "version": 1}))
            .await,
        200,
    )
    .await;
    let response = app
        .patch(&url, &json!({"name": "Stale", "version": 1}))
        .await;
    expect_problem(response, 409, "stale-version").await;
    let response = send(
        app.request(reqwest::Method::PATCH, &url)
            .header("if-match", "\"1\"")
            .json(&json!({"name": "Stale"})),
    )
    .await;
    expect_problem(response, 412, "precondition-failed").await;
    let response = app.patch(&url, &json!({"name": "Unversioned"})).await;
    expect_problem(response, 428, "precondition-required").await;

    expect_problem(app.get(&format!("{ADMIN}/999")).await, 404, "not-found").await;
    let response = app
        .patch(
            &format!("{ADMIN}/999"),
            &json!({"name": "Nope", "version": 1}),
        )
        .await;
    expect_problem(response, 404, "not-found").await;
    expect_problem(app.delete(&format!("{ADMIN}/999")).await, 404, "not-found").await;

    // Signed out: 401. A reader may look but not change; without the permission, not look.
    let anonymous = app.new_client();
    let response = send(anonymous.get(app.url(ADMIN))).await;
    expect_problem(response, 401, "unauthenticated").await;
    let password = "a long staff password";
    create_staff(
        &app,
        "reader@example.com",
        password,
        false,
        &["catalog.brands.read"],
    )
    .await;
    create_staff(
        &app,
        "outsider@example.com",
        password,
        false,
        &["catalog.categories.read"],
    )
    .await;
    let reader = spawn_sharing(&app).await;
    assert_eq!(
        login(&reader, "reader@example.com", password)
            .await
            .status(),
        200
    );
    expect_json(reader.get(ADMIN).await, 200).await;
    expect_json(reader.get(&url).await, 200).await;
    let response = reader.post(ADMIN, &json!({"name": "Y", "slug": "y"})).await;
    expect_problem(response, 403, "forbidden").await;
    let response = reader
        .patch(&url, &json!({"name": "Y", "version": 2}))
        .await;
    expect_problem(response, 403, "forbidden").await;
    expect_problem(reader.delete(&url).await, 403, "forbidden").await;
    let outsider = spawn_sharing(&app).await;
    assert_eq!(
        login(&outsider, "outsider@example.com", password)
            .await
            .status(),
        200
    );
    expect_problem(outsider.get(ADMIN).await, 403, "forbidden").await;

    let unchanged = expect_json(app.get(&url).await, 200).await;
    assert_eq!(
        (unchanged["name"].clone(), unchanged["version"].clone()),
        (json!("Acme"), json!(2))
    );
}

async fn the_storefront_shows_visible_brands_in_order(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let shop = app.new_client();
    let storefront = |path: String| {
        let request = shop.get(app.url(&path));
        async move { send(request).await }
    };
    create(
        &app,
        json!({"name": "Beta", "slug": "beta", "sort_order": 1}),
    )
    .await;
    create(
        &app,
        json!({"name": "Alpha", "slug": "alpha", "sort_order": 1,
        "logo_key": "brands/alpha.svg", "website": "https://alpha.example"}),
    )
    .await;
    create(&app, json!({"name": "Omega", "slug": "omega"})).await;
    let hidden = create(
        &app,
        json!({"name": "Hidden", "slug": "hidden", "is_visible": false}),
    )
    .await;

    let listed = expect_json(storefront(STOREFRONT.into()).await, 200).await;
    assert_eq!(
        slugs(&listed),
        ["omega", "alpha", "beta"],
        "sort_order, then name"
    );
    let alpha = expect_json(storefront(format!("{STOREFRONT}/alpha")).await, 200).await;
    assert_eq!(alpha["logo_url"], "/media/brands/alpha.svg");
    assert_eq!(alpha["website"], "https://alpha.example");
    assert!(alpha.get("is_visible").is_none() && alpha.get("version").is_none());
    for absent in ["hidden", "no-such-brand"] {
        let response = storefront(format!("{STOREFRONT}/{absent}")).await;
        expect_problem(response, 404, "not-found").await;
    }

    // Showing it puts it on the storefront at once.
    let response = app
        .patch(
            &format!("{ADMIN}/{}", hidden["id"]),
            &json!({"is_visible": true, "version": 1}),
        )
        .await;
    expect_json(response, 200).await;
    let listed = expect_json(storefront(STOREFRONT.into()).await, 200).await;
    assert_eq!(slugs(&listed), ["hidden", "omega", "alpha", "beta"]);
    expect_json(storefront(format!("{STOREFRONT}/hidden")).await, 200).await;
}

async fn a_brand_live_products_use_is_kept(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let acme = create(&app, json!({"name": "Acme", "slug": "acme"})).await;
    let id = acme["id"].as_i64().unwrap();
    let url = format!("{ADMIN}/{id}");
    for slug in ["anvil", "rocket"] {
        execute_sql(
            &app,
            &format!("INSERT INTO products (title, slug, brand_id) VALUES ('T', '{slug}', {id})"),
        )
        .await;
    }

    let problem = expect_problem(app.delete(&url).await, 409, "brand-in-use").await;
    assert!(
        problem["detail"].as_str().unwrap().starts_with("2 product"),
        "{problem}"
    );
    execute_sql(
        &app,
        "UPDATE products SET deleted_at = CURRENT_TIMESTAMP WHERE slug = 'anvil'",
    )
    .await;
    let problem = expect_problem(app.delete(&url).await, 409, "brand-in-use").await;
    assert!(
        problem["detail"].as_str().unwrap().starts_with("1 product"),
        "{problem}"
    );
    expect_json(app.get(&url).await, 200).await;

    // Once every product using it is soft-deleted, the brand goes and they lose the link.
    execute_sql(
        &app,
        "UPDATE products SET deleted_at = CURRENT_TIMESTAMP WHERE slug = 'rocket'",
    )
    .await;
    assert_eq!(app.delete(&url).await.status(), 204);
    expect_problem(app.get(&url).await, 404, "not-found").await;
    let products = product::Entity::find()
        .filter(product::Column::Slug.is_in(["anvil", "rocket"]))
        .order_by_asc(product::Column::Slug)
        .all(app.state().db.writer())
        .await
        .unwrap();
    assert_eq!(products.len(), 2);
    assert!(
        products
            .iter()
            .all(|p| p.brand_id.is_none() && p.deleted_at.is_some())
    );
}
