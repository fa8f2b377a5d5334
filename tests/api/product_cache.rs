//! The storefront's hot-read cache of product pages and lists: a second read is served
//! from the cache, unknown slugs never reach the database, and every admin write is
//! visible at once, on every instance.

use sea_orm::ConnectionTrait;
use serde_json::json;

use crate::harness::{
    Backend, TestApp, both_backends, expect_json, expect_problem, login_as_superuser, spawn,
    spawn_sharing,
};
use crate::products::{PRODUCTS, create_product, patch_current};

both_backends!(
    a_second_read_is_served_from_the_cache,
    unknown_slugs_never_reach_the_database,
    admin_edits_are_visible_at_once_on_every_instance,
);

/// Changes the database behind the application's back, as only the cache can hide.
async fn sql(app: &TestApp, statement: &str) {
    app.state()
        .db
        .writer()
        .execute_unprepared(statement)
        .await
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
}

async fn listed(app: &TestApp, slug: &str, title: &str) -> serde_json::Value {
    create_product(
        app,
        json!({"title": title, "slug": slug, "status": "listed",
            "skus": [{"code": slug.to_uppercase(), "price": 1000, "stock": 1}]}),
    )
    .await
}

async fn a_second_read_is_served_from_the_cache(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    listed(&app, "kettle", "Kettle").await;
    let first = expect_json(app.get("/api/v1/products/kettle").await, 200).await;
    assert_eq!(first["title"], "Kettle");
    let list = expect_json(app.get("/api/v1/products?per_page=20").await, 200).await;
    assert_eq!(list["items"][0]["title"], "Kettle");

    // A change the application was not told about stays invisible: reads hit the cache.
    sql(
        &app,
        "UPDATE products SET title = 'Changed behind its back'",
    )
    .await;
    let second = expect_json(app.get("/api/v1/products/kettle").await, 200).await;
    assert_eq!(second["title"], "Kettle");
    let list = expect_json(app.get("/api/v1/products?per_page=20").await, 200).await;
    assert_eq!(list["items"][0]["title"], "Kettle");
    // Another query is another entry, loaded fresh.
    let other = expect_json(app.get("/api/v1/products?per_page=10").await, 200).await;
    assert_eq!(other["items"][0]["title"], "Changed behind its back");

    let metrics = app.get("/metrics").await.text().await.unwrap();
    for series in [
        r#"cache_requests_total{cache="product",result="hit"}"#,
        r#"cache_requests_total{cache="product",result="miss"}"#,
        r#"cache_loads_total{cache="product"}"#,
    ] {
        assert!(metrics.contains(series), "{series} in\n{metrics}");
    }
}

async fn unknown_slugs_never_reach_the_database(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let gone = listed(&app, "gone", "Gone").await;
    listed(&app, "lamp", "Lamp").await;
    expect_json(app.get("/api/v1/products/lamp").await, 200).await;
    assert_eq!(
        app.delete(&format!("{PRODUCTS}/{}", gone["id"]))
            .await
            .status(),
        204
    );
    // A deleted slug stays in the filter until it is rebuilt: its miss is cached.
    expect_problem(app.get("/api/v1/products/gone").await, 404, "not-found").await;

    // Take the products table away: any read that reached the database would fail.
    sql(&app, "ALTER TABLE products RENAME TO products_away").await;
    for slug in [
        "no-such-product",
        "another-unknown-one",
        "gone",
        "x1",
        "x2",
        "x3",
    ] {
        expect_problem(
            app.get(&format!("/api/v1/products/{slug}")).await,
            404,
            "not-found",
        )
        .await;
    }
    let page = expect_json(app.get("/api/v1/products/lamp").await, 200).await;
    assert_eq!(
        page["title"], "Lamp",
        "known pages are still served from the cache"
    );
    let failed = app.get("/api/v1/products?per_page=5").await;
    assert_eq!(
        failed.status(),
        500,
        "an uncached list does reach the database"
    );
    sql(&app, "ALTER TABLE products_away RENAME TO products").await;

    // A new slug is let through at once.
    listed(&app, "brand-new", "Brand new").await;
    expect_json(app.get("/api/v1/products/brand-new").await, 200).await;
}

async fn admin_edits_are_visible_at_once_on_every_instance(backend: Backend) {
    let first = spawn(backend).await;
    let second = spawn_sharing(&first).await;
    login_as_superuser(&first).await;
    let mug = listed(&first, "mug", "Mug").await;
    let id = mug["id"].as_i64().unwrap();
    // With Redis the second instance shares the cache (and its slug filter); on the
    // embedded backend each process has its own in-process cache, which is why an
    // embedded shop runs one instance: only the first is checked there.
    let instances: &[&TestApp] = match backend {
        Backend::Scaled => &[&first, &second],
        Backend::Embedded => &[&first],
    };
    for app in instances {
        assert_eq!(
            expect_json(app.get("/api/v1/products/mug").await, 200).await["title"],
            "Mug"
        );
        expect_json(app.get("/api/v1/products").await, 200).await;
    }

    expect_json(
        patch_current(
            &first,
            &format!("{PRODUCTS}/{id}"),
            json!({"title": "Big mug"}),
        )
        .await,
        200,
    )
    .await;
    for app in instances {
        let page = expect_json(app.get("/api/v1/products/mug").await, 200).await;
        assert_eq!(page["title"], "Big mug");
        let list = expect_json(app.get("/api/v1/products").await, 200).await;
        assert_eq!(list["items"][0]["title"], "Big mug");
    }

    // A SKU price change reaches page and list.
    let sku = mug["skus"][0]["id"].as_i64().unwrap();
    expect_json(
        patch_current(
            &first,
            &format!("/api/v1/admin/skus/{sku}"),
            json!({"price": 1500}),
        )
        .await,
        200,
    )
    .await;
    for app in instances {
        let page = expect_json(app.get("/api/v1/products/mug").await, 200).await;
        assert_eq!(page["skus"][0]["price"], 1500);
        let list = expect_json(app.get("/api/v1/products").await, 200).await;
        assert_eq!(list["items"][0]["price"], 1500);
    }

    // A renamed slug: the old one is gone, the new one shows.
    expect_json(
        patch_current(
            &first,
            &format!("{PRODUCTS}/{id}"),
            json!({"slug": "tall-mug"}),
        )
        .await,
        200,
    )
    .await;
    for app in instances {
        expect_problem(app.get("/api/v1/products/mug").await, 404, "not-found").await;
        expect_json(app.get("/api/v1/products/tall-mug").await, 200).await;
    }

    // Renaming its category changes the page's breadcrumbs.
    let category = expect_json(
        first
            .post(
                "/api/v1/admin/categories",
                &json!({"name": "Cups", "slug": "cups"}),
            )
            .await,
        201,
    )
    .await;
    expect_json(
        patch_current(
            &first,
            &format!("{PRODUCTS}/{id}"),
            json!({"category_ids": [category["id"]]}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        expect_json(first.get("/api/v1/products/tall-mug").await, 200).await["breadcrumbs"][0]["name"],
        "Cups"
    );
    expect_json(
        patch_current(
            &first,
            &format!("/api/v1/admin/categories/{}", category["id"]),
            json!({"name": "Mugs and cups"}),
        )
        .await,
        200,
    )
    .await;
    for app in instances {
        let page = expect_json(app.get("/api/v1/products/tall-mug").await, 200).await;
        assert_eq!(page["breadcrumbs"][0]["name"], "Mugs and cups");
    }

    // Unlisting takes it off every instance's page and list.
    expect_json(
        patch_current(
            &first,
            &format!("{PRODUCTS}/{id}"),
            json!({"status": "delisted"}),
        )
        .await,
        200,
    )
    .await;
    for app in instances {
        expect_problem(app.get("/api/v1/products/tall-mug").await, 404, "not-found").await;
        assert_eq!(
            expect_json(app.get("/api/v1/products").await, 200).await["total"],
            0
        );
    }
}
