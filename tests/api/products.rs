//! Products, SKUs and bundles: admin writes with their checks, the listing window, SKU
//! generation, bundle availability, sanitising, batch edits, and the storefront's reads.

use std::time::Duration;

use chrono::{SubsecRound, Utc};
use serde_json::{Value, json};

use crate::harness::{
    Backend, TestApp, both_backends, create_staff, expect_json, expect_problem, login,
    login_as_superuser, spawn,
};

both_backends!(
    products_are_created_read_edited_deleted_restored_and_copied,
    product_writes_are_checked_and_permissioned,
    the_listing_window_is_honoured_to_the_second,
    sku_generation_creates_the_missing_combinations,
    bundles_take_their_availability_from_their_parts,
    descriptions_are_sanitised,
    batch_edits_change_all_or_nothing,
    the_storefront_filters_sorts_searches_and_pages,
    categories_recommend_products,
    products_brands_and_ads_take_uploaded_images,
);

pub const PRODUCTS: &str = "/api/v1/admin/products";
const STOREFRONT: &str = "/api/v1/products";

pub async fn create_product(app: &TestApp, body: Value) -> Value {
    expect_json(app.post(PRODUCTS, &body).await, 201).await
}

/// PATCHes `path` with `body` plus the resource's current version.
pub async fn patch_current(app: &TestApp, path: &str, mut body: Value) -> reqwest::Response {
    let current = expect_json(app.get(path).await, 200).await;
    body["version"] = current["version"].clone();
    app.patch(path, &body).await
}

async fn category(app: &TestApp, slug: &str, parent: Option<&Value>) -> Value {
    let mut body = json!({"name": slug, "slug": slug});
    if let Some(parent) = parent {
        body["parent_id"] = parent["id"].clone();
    }
    expect_json(app.post("/api/v1/admin/categories", &body).await, 201).await
}

/// A type with a required `material` attribute and `color` × `size` SKU axes.
async fn apparel_type(app: &TestApp) -> i64 {
    let t = expect_json(
        app.post("/api/v1/admin/product-types", &json!({"name": "Apparel"}))
            .await,
        201,
    )
    .await;
    let id = t["id"].as_i64().unwrap();
    for body in [
        json!({"scope": "product", "product_type_id": id, "code": "material", "name": "Material",
            "kind": "text", "required": true}),
        json!({"scope": "sku_axis", "product_type_id": id, "code": "color", "name": "Color",
            "kind": "enum", "options": ["red", "blue"], "sort_order": 1}),
        json!({"scope": "sku_axis", "product_type_id": id, "code": "size", "name": "Size",
            "kind": "enum", "options": ["s", "m", "l"], "sort_order": 2}),
    ] {
        expect_json(app.post("/api/v1/admin/attributes", &body).await, 201).await;
    }
    id
}

fn sku(code: &str, price: i64, stock: i64) -> Value {
    json!({"code": code, "price": price, "stock": stock})
}

fn slugs(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["slug"].as_str().unwrap().to_owned())
        .collect()
}

async fn products_are_created_read_edited_deleted_restored_and_copied(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let type_id = apparel_type(&app).await;
    let tops = category(&app, "tops", None).await;
    let tee = create_product(
        &app,
        json!({
            "title": "Linen tee", "slug": "linen-tee", "product_type_id": type_id,
            "category_ids": [tops["id"]], "attributes": {"material": "linen"},
            "description": "<p>Soft <b>linen</b></p>", "status": "listed",
            "meta_title": "Linen tee", "allow_backorder": true,
            "skus": [
                {"code": "TEE-RED-S", "price": 2500, "compare_at_price": 3000, "stock": 4,
                 "weight_grams": 180, "barcode": "400000000001",
                 "axes": {"color": "red", "size": "s"}},
                {"code": "TEE-BLUE-M", "price": 2300, "stock": 0,
                 "axes": {"color": "blue", "size": "m"}}
            ]
        }),
    )
    .await;
    let id = tee["id"].as_i64().unwrap();
    assert_eq!(tee["status"], "listed");
    assert_eq!(tee["visible_now"], true);
    assert_eq!(tee["min_price"], 2300, "the lowest SKU price");
    assert_eq!(tee["category_ids"], json!([tops["id"]]));
    assert_eq!(tee["attributes"], json!({"material": "linen"}));
    assert_eq!(tee["skus"][0]["axes"], json!({"color": "red", "size": "s"}));
    assert_eq!(tee["skus"][0]["compare_at_price"], 3000);
    assert_eq!(tee["kind"], "physical");

    let response = app.get(&format!("{PRODUCTS}/{id}")).await;
    assert_eq!(response.headers()["etag"], "\"1\"");
    let read = expect_json(response, 200).await;
    assert_eq!(read["slug"], "linen-tee");

    // Edit with If-Match; a stale tag is refused.
    let edited = expect_json(
        app.request(reqwest::Method::PATCH, &format!("{PRODUCTS}/{id}"))
            .header("if-match", "\"1\"")
            .json(&json!({"title": "Linen T-shirt", "kind": "virtual", "meta_title": null}))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(edited["title"], "Linen T-shirt");
    assert_eq!(edited["kind"], "virtual");
    assert_eq!(edited["meta_title"], Value::Null);
    assert_eq!(edited["version"], 2);
    expect_problem(
        app.request(reqwest::Method::PATCH, &format!("{PRODUCTS}/{id}"))
            .header("if-match", "\"1\"")
            .json(&json!({"title": "Lost update"}))
            .send()
            .await
            .unwrap(),
        412,
        "precondition-failed",
    )
    .await;

    // SKUs: add, edit, delete.
    let added = expect_json(
        app.post(
            &format!("{PRODUCTS}/{id}/skus"),
            &json!({"code": "TEE-RED-L", "price": 2100, "axes": {"color": "red", "size": "l"}}),
        )
        .await,
        201,
    )
    .await;
    let sku_id = added["id"].as_i64().unwrap();
    let product = expect_json(app.get(&format!("{PRODUCTS}/{id}")).await, 200).await;
    assert_eq!(product["min_price"], 2100);
    let changed = expect_json(
        patch_current(
            &app,
            &format!("/api/v1/admin/skus/{sku_id}"),
            json!({"price": 2600, "stock": 9}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        (changed["price"].as_i64(), changed["stock"].as_i64()),
        (Some(2600), Some(9))
    );
    let skus = expect_json(app.get(&format!("{PRODUCTS}/{id}/skus")).await, 200).await;
    assert_eq!(skus.as_array().unwrap().len(), 3);
    let response = app.delete(&format!("/api/v1/admin/skus/{sku_id}")).await;
    assert_eq!(response.status(), 204);
    let product = expect_json(app.get(&format!("{PRODUCTS}/{id}")).await, 200).await;
    assert_eq!(product["min_price"], 2300);

    // Admin list and its filters.
    let list = expect_json(app.get(&format!("{PRODUCTS}?q=t-shirt")).await, 200).await;
    assert_eq!(slugs(&list), ["linen-tee"]);
    let list = expect_json(app.get(&format!("{PRODUCTS}?q=tee-blue")).await, 200).await;
    assert_eq!(slugs(&list), ["linen-tee"], "SKU codes match too");
    let list = expect_json(app.get(&format!("{PRODUCTS}?status=draft")).await, 200).await;
    assert_eq!(list["total"], 0);
    let list = expect_json(
        app.get(&format!("{PRODUCTS}?category_id={}", tops["id"]))
            .await,
        200,
    )
    .await;
    assert_eq!(list["total"], 1);

    // Copy: a draft with new slug and SKU codes, no stock.
    let response = app.post_empty(&format!("{PRODUCTS}/{id}/copy")).await;
    let copy = expect_json(response, 201).await;
    assert_eq!(copy["slug"], "linen-tee-copy");
    assert_eq!(copy["title"], "Linen T-shirt (copy)");
    assert_eq!(copy["status"], "draft");
    assert_eq!(copy["attributes"], json!({"material": "linen"}));
    assert_eq!(copy["category_ids"], json!([tops["id"]]));
    let codes: Vec<&str> = copy["skus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["TEE-RED-S-COPY", "TEE-BLUE-M-COPY"]);
    assert!(
        copy["skus"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["stock"] == 0)
    );
    let again = expect_json(app.post_empty(&format!("{PRODUCTS}/{id}/copy")).await, 201).await;
    assert_eq!(again["slug"], "linen-tee-copy-2");
    assert_eq!(again["skus"][0]["code"], "TEE-RED-S-COPY-2");

    // Soft delete: gone from the list and the storefront, the slug is free; restore.
    assert_eq!(app.delete(&format!("{PRODUCTS}/{id}")).await.status(), 204);
    let list = expect_json(app.get(PRODUCTS).await, 200).await;
    assert!(!slugs(&list).contains(&"linen-tee".to_owned()));
    let deleted = expect_json(app.get(&format!("{PRODUCTS}?deleted=true")).await, 200).await;
    assert_eq!(slugs(&deleted), ["linen-tee"]);
    let read = expect_json(app.get(&format!("{PRODUCTS}/{id}")).await, 200).await;
    assert!(read["deleted_at"].is_string());
    assert_eq!(read["visible_now"], false);
    expect_problem(
        app.get(&format!("{STOREFRONT}/linen-tee")).await,
        404,
        "not-found",
    )
    .await;
    expect_problem(
        patch_current(&app, &format!("{PRODUCTS}/{id}"), json!({"title": "x"})).await,
        404,
        "not-found",
    )
    .await;
    let restored = expect_json(
        app.post_empty(&format!("{PRODUCTS}/{id}/restore")).await,
        200,
    )
    .await;
    assert_eq!(restored["deleted_at"], Value::Null);
    expect_problem(
        app.post_empty(&format!("{PRODUCTS}/{id}/restore")).await,
        409,
        "product-not-deleted",
    )
    .await;
    // A slug taken while deleted blocks the restore.
    assert_eq!(app.delete(&format!("{PRODUCTS}/{id}")).await.status(), 204);
    create_product(&app, json!({"title": "Other", "slug": "linen-tee"})).await;
    expect_problem(
        app.post_empty(&format!("{PRODUCTS}/{id}/restore")).await,
        409,
        "product-slug-taken",
    )
    .await;
}

async fn product_writes_are_checked_and_permissioned(backend: Backend) {
    let app = spawn(backend).await;
    expect_problem(app.get(PRODUCTS).await, 401, "unauthenticated").await;
    create_staff(
        &app,
        "viewer@example.com",
        "viewer password 1",
        false,
        &["catalog.products.read"],
    )
    .await;
    assert_eq!(
        login(&app, "viewer@example.com", "viewer password 1")
            .await
            .status(),
        200
    );
    expect_json(app.get(PRODUCTS).await, 200).await;
    expect_problem(
        app.post(PRODUCTS, &json!({"title": "T", "slug": "t"}))
            .await,
        403,
        "forbidden",
    )
    .await;

    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let type_id = apparel_type(&app).await;
    let problem = expect_problem(
        app.post(
            PRODUCTS,
            &json!({"title": " ", "slug": "Not A Slug", "meta_title": "x".repeat(301),
                "publish_at": "2030-01-02T00:00:00Z", "unpublish_at": "2030-01-01T00:00:00Z"}),
        )
        .await,
        422,
        "validation-failed",
    )
    .await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    for field in ["title", "slug", "meta_title", "unpublish_at"] {
        assert!(fields.contains(&field), "{field} in {fields:?}");
    }
    expect_problem(
        app.post(
            PRODUCTS,
            &json!({"title": "T", "slug": "t", "status": "listed"}),
        )
        .await,
        422,
        "validation-failed",
    )
    .await;
    let problem = expect_problem(
        app.post(
            PRODUCTS,
            &json!({"title": "T", "slug": "t", "category_ids": [999], "brand_id": 999,
                "product_type_id": 999}),
        )
        .await,
        422,
        "validation-failed",
    )
    .await;
    assert_eq!(problem["errors"].as_array().unwrap().len(), 3, "{problem}");
    let problem = expect_problem(
        app.post(
            PRODUCTS,
            &json!({"title": "T", "slug": "t", "product_type_id": type_id,
                "attributes": {"material": 5, "colour": "red"}}),
        )
        .await,
        422,
        "validation-failed",
    )
    .await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["attributes.colour", "attributes.material"]);
    let problem = expect_problem(
        app.post(
            PRODUCTS,
            &json!({"title": "T", "slug": "t", "product_type_id": type_id,
                "attributes": {"material": "wool"},
                "skus": [{"code": "bad code", "price": -1, "axes": {"color": "green"}}]}),
        )
        .await,
        422,
        "validation-failed",
    )
    .await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "skus[0].code",
            "skus[0].price",
            "skus[0].axes.color",
            "skus[0].axes.size"
        ]
    );
    // Nothing of a refused product was written.
    let list = expect_json(app.get(PRODUCTS).await, 200).await;
    assert_eq!(list["total"], 0);

    create_product(
        &app,
        json!({"title": "T", "slug": "t", "skus": [sku("T-1", 100, 1)]}),
    )
    .await;
    expect_problem(
        app.post(PRODUCTS, &json!({"title": "T", "slug": "t"}))
            .await,
        409,
        "product-slug-taken",
    )
    .await;
    expect_problem(
        app.post(
            PRODUCTS,
            &json!({"title": "U", "slug": "u", "skus": [sku("T-1", 100, 1)]}),
        )
        .await,
        409,
        "sku-code-taken",
    )
    .await;
    assert_eq!(
        expect_json(app.get(PRODUCTS).await, 200).await["total"],
        1,
        "the product of a refused SKU is rolled back"
    );
    expect_problem(app.get(&format!("{PRODUCTS}/999")).await, 404, "not-found").await;
    expect_problem(
        app.patch(
            &format!("{PRODUCTS}/999"),
            &json!({"title": "x", "version": 1}),
        )
        .await,
        404,
        "not-found",
    )
    .await;
    expect_problem(
        app.post(PRODUCTS, &json!({"title": "T", "slug": "v", "surprise": 1}))
            .await,
        422,
        "validation-failed",
    )
    .await;
}

async fn the_listing_window_is_honoured_to_the_second(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    // Whole seconds, starting at the next second but one.
    let start = Utc::now().trunc_subsecs(0) + chrono::Duration::seconds(2);
    let end = start + chrono::Duration::seconds(2);
    let product = create_product(
        &app,
        json!({"title": "Drop", "slug": "drop", "status": "listed",
            "publish_at": start, "unpublish_at": end, "skus": [sku("DROP", 900, 3)]}),
    )
    .await;
    assert_eq!(product["visible_now"], false);
    let always = create_product(
        &app,
        json!({"title": "Always", "slug": "always", "status": "listed",
            "skus": [sku("ALWAYS", 900, 3)]}),
    )
    .await;
    assert_eq!(always["visible_now"], true);

    expect_problem(
        app.get(&format!("{STOREFRONT}/drop")).await,
        404,
        "not-found",
    )
    .await;
    let list = expect_json(app.get(STOREFRONT).await, 200).await;
    assert_eq!(slugs(&list), ["always"]);

    sleep_until(start).await;
    let page = expect_json(app.get(&format!("{STOREFRONT}/drop")).await, 200).await;
    assert_eq!(page["title"], "Drop");
    let list = expect_json(app.get(&format!("{STOREFRONT}?sort=name")).await, 200).await;
    assert_eq!(slugs(&list), ["always", "drop"]);

    sleep_until(end).await;
    expect_problem(
        app.get(&format!("{STOREFRONT}/drop")).await,
        404,
        "not-found",
    )
    .await;
    let list = expect_json(app.get(STOREFRONT).await, 200).await;
    assert_eq!(slugs(&list), ["always"]);

    // Drafts and delisted products never show.
    for status in ["draft", "delisted"] {
        let updated = expect_json(
            patch_current(
                &app,
                &format!("{PRODUCTS}/{}", always["id"]),
                json!({"status": status}),
            )
            .await,
            200,
        )
        .await;
        assert_eq!(updated["visible_now"], false);
        expect_problem(
            app.get(&format!("{STOREFRONT}/always")).await,
            404,
            "not-found",
        )
        .await;
    }
}

async fn sleep_until(at: chrono::DateTime<Utc>) {
    let wait = (at - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(50)).await;
}

async fn sku_generation_creates_the_missing_combinations(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let type_id = apparel_type(&app).await;
    let product = create_product(
        &app,
        json!({"title": "Hoodie", "slug": "hoodie", "product_type_id": type_id,
            "attributes": {"material": "cotton"},
            "skus": [{"code": "HOODIE-RED-S", "price": 5000, "axes": {"color": "red", "size": "s"}}]}),
    )
    .await;
    let id = product["id"].as_i64().unwrap();
    let path = format!("{PRODUCTS}/{id}/skus/generate");

    let generated = expect_json(
        app.post(
            &path,
            &json!({"price": 4500, "options": {"size": ["s", "m"]}}),
        )
        .await,
        200,
    )
    .await;
    let codes: Vec<&str> = generated["created"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["HOODIE-RED-M", "HOODIE-BLUE-S", "HOODIE-BLUE-M"]);
    assert_eq!(generated["existing"], 1);
    assert_eq!(
        generated["created"][2]["axes"],
        json!({"color": "blue", "size": "m"})
    );

    let all = expect_json(
        app.post(&path, &json!({"price": 4800, "code_prefix": "HD"}))
            .await,
        200,
    )
    .await;
    assert_eq!(all["existing"], 4);
    let codes: Vec<&str> = all["created"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["HD-RED-L", "HD-BLUE-L"]);
    let again = expect_json(app.post(&path, &json!({"price": 4800})).await, 200).await;
    assert_eq!(
        (
            again["created"].as_array().unwrap().len(),
            again["existing"].as_i64()
        ),
        (0, Some(6))
    );

    // A combination exists once.
    expect_problem(
        app.post(
            &format!("{PRODUCTS}/{id}/skus"),
            &json!({"code": "DUP", "price": 1, "axes": {"color": "red", "size": "s"}}),
        )
        .await,
        409,
        "sku-combination-exists",
    )
    .await;
    expect_problem(
        app.post(
            &path,
            &json!({"price": 1, "options": {"size": ["xxl"], "fit": ["slim"]}}),
        )
        .await,
        422,
        "validation-failed",
    )
    .await;
    // The type cannot change under SKUs that vary along its axes.
    expect_problem(
        patch_current(
            &app,
            &format!("{PRODUCTS}/{id}"),
            json!({"product_type_id": null}),
        )
        .await,
        409,
        "product-type-locked",
    )
    .await;
    let plain = create_product(&app, json!({"title": "Plain", "slug": "plain"})).await;
    expect_problem(
        app.post(
            &format!("{PRODUCTS}/{}/skus/generate", plain["id"]),
            &json!({"price": 1}),
        )
        .await,
        409,
        "no-sku-axes",
    )
    .await;
}

async fn bundles_take_their_availability_from_their_parts(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let pen = create_product(
        &app,
        json!({"title": "Pen", "slug": "pen", "status": "listed", "skus": [sku("PEN", 300, 10)]}),
    )
    .await;
    let pad = create_product(
        &app,
        json!({"title": "Pad", "slug": "pad", "status": "listed", "skus": [sku("PAD", 500, 3)]}),
    )
    .await;
    let (pen_sku, pad_sku) = (&pen["skus"][0]["id"], &pad["skus"][0]["id"]);
    let kit = create_product(
        &app,
        json!({"title": "Desk kit", "slug": "desk-kit", "is_bundle": true, "status": "listed",
            "skus": [{"code": "KIT", "price": 1000,
                "parts": [{"sku_id": pen_sku, "quantity": 2}, {"sku_id": pad_sku, "quantity": 1}]}]}),
    )
    .await;
    assert_eq!(kit["skus"][0]["stock"], 3, "three pads make three kits");
    assert_eq!(kit["skus"][0]["parts"][0]["code"], "PEN");
    let page = expect_json(app.get(&format!("{STOREFRONT}/desk-kit")).await, 200).await;
    assert_eq!(page["skus"][0]["stock"], 3);
    assert_eq!(page["in_stock"], true);

    // Pens run short: 3 pens make one kit; the cached page follows at once.
    let pen_sku_id = pen_sku.as_i64().unwrap();
    expect_json(
        patch_current(
            &app,
            &format!("/api/v1/admin/skus/{pen_sku_id}"),
            json!({"stock": 3}),
        )
        .await,
        200,
    )
    .await;
    let page = expect_json(app.get(&format!("{STOREFRONT}/desk-kit")).await, 200).await;
    assert_eq!(page["skus"][0]["stock"], 1);
    expect_json(
        patch_current(
            &app,
            &format!("/api/v1/admin/skus/{pen_sku_id}"),
            json!({"stock": 1}),
        )
        .await,
        200,
    )
    .await;
    let page = expect_json(app.get(&format!("{STOREFRONT}/desk-kit")).await, 200).await;
    assert_eq!(
        (
            page["skus"][0]["stock"].as_i64(),
            page["in_stock"].as_bool()
        ),
        (Some(0), Some(false))
    );
    let in_stock = expect_json(
        app.get(&format!("{STOREFRONT}?in_stock=true&sort=name"))
            .await,
        200,
    )
    .await;
    assert_eq!(slugs(&in_stock), ["pad", "pen"], "the kit is out of stock");

    // Bundles are made of plain SKUs of other products, and a part cannot vanish.
    expect_problem(
        app.post(
            PRODUCTS,
            &json!({"title": "Kit of kits", "slug": "kits", "is_bundle": true,
                "skus": [{"code": "KITS", "price": 1, "parts": [{"sku_id": kit["skus"][0]["id"], "quantity": 1}]}]}),
        )
        .await,
        422,
        "validation-failed",
    )
    .await;
    expect_problem(
        app.post(
            PRODUCTS,
            &json!({"title": "Plain", "slug": "plain",
                "skus": [{"code": "PLAIN", "price": 1, "parts": [{"sku_id": pen_sku, "quantity": 1}]}]}),
        )
        .await,
        422,
        "validation-failed",
    )
    .await;
    expect_problem(
        app.post(
            PRODUCTS,
            &json!({"title": "Empty kit", "slug": "empty-kit", "is_bundle": true,
                "skus": [{"code": "EMPTY", "price": 1}]}),
        )
        .await,
        422,
        "validation-failed",
    )
    .await;
    expect_problem(
        app.delete(&format!("/api/v1/admin/skus/{pen_sku_id}"))
            .await,
        409,
        "last-active-sku",
    )
    .await;
    expect_problem(
        app.delete(&format!("{PRODUCTS}/{}", pen["id"])).await,
        409,
        "product-in-bundle",
    )
    .await;
}

async fn descriptions_are_sanitised(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let dirty = r#"<p onclick="steal()">Warm <b>wool</b></p><script>alert(1)</script><img src="x.png" onerror="alert(2)"><a href="javascript:alert(3)">more</a>"#;
    let product = create_product(
        &app,
        json!({"title": "Scarf", "slug": "scarf", "status": "listed", "description": dirty,
            "skus": [sku("SCARF", 1500, 1)]}),
    )
    .await;
    let page = expect_json(app.get(&format!("{STOREFRONT}/scarf")).await, 200).await;
    for description in [&product["description"], &page["description"]] {
        let text = description.as_str().unwrap();
        for forbidden in ["<script", "alert(1)", "onclick", "onerror", "javascript:"] {
            assert!(!text.contains(forbidden), "{forbidden} in {text}");
        }
        assert!(text.contains("Warm <b>wool</b>"), "{text}");
    }
    let edited = expect_json(
        patch_current(
            &app,
            &format!("{PRODUCTS}/{}", product["id"]),
            json!({"description": "<p>ok</p><script>x()</script>"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(edited["description"], "<p>ok</p>");
}

async fn batch_edits_change_all_or_nothing(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let sale = category(&app, "sale", None).await;
    let a = create_product(
        &app,
        json!({"title": "A", "slug": "a", "skus": [
            {"code": "A-1", "price": 999, "compare_at_price": 1999}, {"code": "A-2", "price": 1}]}),
    )
    .await;
    let b = create_product(
        &app,
        json!({"title": "B", "slug": "b", "skus": [sku("B-1", 2000, 1)]}),
    )
    .await;
    let c = create_product(&app, json!({"title": "C", "slug": "c"})).await;
    let path = format!("{PRODUCTS}/batch");

    let done = expect_json(
        app.post(
            &path,
            &json!({"ids": [a["id"], b["id"]], "price_percent": 7.5, "status": "listed",
                "add_category_ids": [sale["id"]]}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(done["updated"], 2);
    let a_now = expect_json(app.get(&format!("{PRODUCTS}/{}", a["id"])).await, 200).await;
    // 999 × 1.075 = 1073.925 → 1074; 1999 × 1.075 = 2148.925 → 2149; 1 × 1.075 → 1.
    assert_eq!(a_now["skus"][0]["price"], 1074);
    assert_eq!(a_now["skus"][0]["compare_at_price"], 2149);
    assert_eq!(a_now["skus"][1]["price"], 1);
    assert_eq!(a_now["status"], "listed");
    assert_eq!(a_now["category_ids"], json!([sale["id"]]));
    assert_eq!(a_now["min_price"], 1);

    // One product cannot be listed (no SKU): nothing changes for the others either.
    expect_problem(
        app.post(
            &path,
            &json!({"ids": [b["id"], c["id"]], "status": "listed", "price_percent": -50}),
        )
        .await,
        422,
        "validation-failed",
    )
    .await;
    let b_now = expect_json(app.get(&format!("{PRODUCTS}/{}", b["id"])).await, 200).await;
    assert_eq!(
        b_now["skus"][0]["price"], 2150,
        "the refused batch changed nothing"
    );
    let problem = expect_problem(
        app.post(&path, &json!({"ids": [b["id"], 999], "price_percent": -50}))
            .await,
        422,
        "validation-failed",
    )
    .await;
    assert!(
        problem["detail"].as_str().unwrap().contains("999"),
        "{problem}"
    );
    expect_problem(
        app.post(&path, &json!({"ids": [b["id"]], "price_percent": 1.234}))
            .await,
        422,
        "validation-failed",
    )
    .await;
    expect_problem(
        app.post(&path, &json!({"ids": [b["id"]]})).await,
        422,
        "validation-failed",
    )
    .await;
    expect_problem(
        app.post(&path, &json!({"ids": [], "status": "draft"}))
            .await,
        422,
        "validation-failed",
    )
    .await;
}

async fn the_storefront_filters_sorts_searches_and_pages(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let type_id = apparel_type(&app).await;
    let clothing = category(&app, "clothing", None).await;
    let shirts = category(&app, "shirts", Some(&clothing)).await;
    let shoes = category(&app, "shoes", None).await;
    let product =
        |title: &str, slug: &str, category: &Value, price: i64, stock: i64, color: &str| {
            json!({"title": title, "slug": slug, "status": "listed", "product_type_id": type_id,
            "category_ids": [category["id"]], "attributes": {"material": "cotton"},
            "skus": [{"code": slug.to_uppercase(), "price": price, "stock": stock,
                "axes": {"color": color, "size": "m"}}]})
        };
    create_product(
        &app,
        product("Oxford shirt", "oxford", &shirts, 4000, 2, "blue"),
    )
    .await;
    create_product(
        &app,
        product("Flannel shirt", "flannel", &shirts, 3500, 0, "red"),
    )
    .await;
    create_product(
        &app,
        product("Chino trousers", "chino", &clothing, 6000, 1, "blue"),
    )
    .await;
    let brand = expect_json(
        app.post(
            "/api/v1/admin/brands",
            &json!({"name": "Fleet", "slug": "fleet"}),
        )
        .await,
        201,
    )
    .await;
    let mut runner = product("Running shoe", "runner", &shoes, 9000, 5, "red");
    runner["brand_id"] = brand["id"].clone();
    create_product(&app, runner).await;
    create_product(
        &app,
        json!({"title": "Hidden draft shirt", "slug": "draft-shirt",
        "category_ids": [shirts["id"]], "skus": [sku("DRAFT", 10, 1)]}),
    )
    .await;

    let get = |query: &str| {
        let app = &app;
        let path = format!("{STOREFRONT}?{query}");
        async move { expect_json(app.get(&path).await, 200).await }
    };
    let page = get("sort=price").await;
    assert_eq!(slugs(&page), ["flannel", "oxford", "chino", "runner"]);
    assert_eq!(page["total"], 4);
    assert_eq!(page["items"][0]["price"], 3500);
    assert_eq!(page["items"][0]["in_stock"], false);
    assert_eq!(
        slugs(&get("sort=-price").await),
        ["runner", "chino", "oxford", "flannel"]
    );
    assert_eq!(
        slugs(&get("sort=name").await),
        ["chino", "flannel", "oxford", "runner"]
    );
    assert_eq!(
        slugs(&get("sort=newest").await),
        ["runner", "chino", "flannel", "oxford"]
    );
    // A category includes its descendants.
    assert_eq!(
        slugs(&get("category=clothing&sort=name").await),
        ["chino", "flannel", "oxford"]
    );
    assert_eq!(
        slugs(&get("category=shirts&sort=name").await),
        ["flannel", "oxford"]
    );
    assert_eq!(get("category=nowhere").await["total"], 0);
    assert_eq!(
        slugs(&get("min_price=3600&max_price=6000&sort=price").await),
        ["oxford", "chino"]
    );
    assert_eq!(
        slugs(&get("attributes=color:red&sort=name").await),
        ["flannel", "runner"]
    );
    assert_eq!(
        slugs(&get("attributes=color:red|blue,material:cotton&category=shirts&sort=name").await),
        ["flannel", "oxford"]
    );
    assert_eq!(get("attributes=material:silk").await["total"], 0);
    assert_eq!(
        slugs(&get("in_stock=true&sort=name").await),
        ["chino", "oxford", "runner"]
    );
    assert_eq!(
        slugs(&get("q=shirt&sort=name").await),
        ["flannel", "oxford"]
    );
    assert_eq!(slugs(&get("q=running%20shoe").await), ["runner"]);
    assert_eq!(
        slugs(&get("q=OXFORD").await),
        ["oxford"],
        "SKU codes and any case"
    );
    assert_eq!(get("q=zzzz").await["total"], 0);
    assert_eq!(
        get("q=%25").await["total"],
        0,
        "a % in the search matches itself"
    );
    assert_eq!(
        expect_json(app.get(&format!("{PRODUCTS}?q=_")).await, 200).await["total"],
        0,
        "so does a _"
    );
    let fleet = get("brand=fleet").await;
    assert_eq!(slugs(&fleet), ["runner"]);
    assert_eq!(
        fleet["items"][0]["brand"],
        json!({"id": brand["id"], "name": "Fleet", "slug": "fleet"})
    );
    assert_eq!(
        slugs(&get("q=fleet").await),
        ["runner"],
        "brand names are searchable"
    );
    assert_eq!(get("brand=nobody").await["total"], 0);
    let first = get("sort=name&per_page=3").await;
    assert_eq!((slugs(&first).len(), first["total"].as_i64()), (3, Some(4)));
    assert_eq!(slugs(&get("sort=name&per_page=3&page=2").await), ["runner"]);

    for bad in [
        "per_page=0",
        "per_page=101",
        "min_price=-1",
        "attributes=color",
        "sort=cheapest",
    ] {
        let response = app.get(&format!("{STOREFRONT}?{bad}")).await;
        let status = response.status().as_u16();
        assert!(status == 400 || status == 422, "{bad}: {status}");
    }

    let page = expect_json(app.get(&format!("{STOREFRONT}/oxford")).await, 200).await;
    assert_eq!(
        page["breadcrumbs"],
        json!([
            {"id": clothing["id"], "name": "clothing", "slug": "clothing"},
            {"id": shirts["id"], "name": "shirts", "slug": "shirts"}
        ])
    );
    assert_eq!(
        page["attributes"],
        json!([{"code": "material", "name": "Material", "value": "cotton"}])
    );
    assert_eq!(
        page["axes"][0],
        json!({"code": "color", "name": "Color", "options": ["blue"]})
    );
    assert_eq!(
        page["skus"][0]["axes"],
        json!({"color": "blue", "size": "m"})
    );
    assert_eq!(
        page["rating"],
        json!({"count": 0, "average": null, "distribution": [0, 0, 0, 0, 0]})
    );
    expect_problem(
        app.get(&format!("{STOREFRONT}/draft-shirt")).await,
        404,
        "not-found",
    )
    .await;
    expect_problem(
        app.get(&format!("{STOREFRONT}/no-such-thing")).await,
        404,
        "not-found",
    )
    .await;
}

async fn categories_recommend_products(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let gifts = category(&app, "gifts", None).await;
    let a = create_product(
        &app,
        json!({"title": "A", "slug": "a", "status": "listed", "skus": [sku("A", 1, 1)]}),
    )
    .await;
    let b = create_product(
        &app,
        json!({"title": "B", "slug": "b", "status": "listed", "skus": [sku("B", 1, 1)]}),
    )
    .await;
    let draft = create_product(&app, json!({"title": "D", "slug": "d"})).await;
    let path = format!("/api/v1/admin/categories/{}/recommendations", gifts["id"]);
    let set = expect_json(
        app.put(
            &path,
            &json!({"product_ids": [b["id"], draft["id"], a["id"]]}),
        )
        .await,
        200,
    )
    .await;
    let ids: Vec<&Value> = set.as_array().unwrap().iter().map(|p| &p["id"]).collect();
    assert_eq!(ids, [&b["id"], &draft["id"], &a["id"]]);
    let shown = expect_json(
        app.get("/api/v1/categories/gifts/recommendations").await,
        200,
    )
    .await;
    let shown: Vec<&str> = shown
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["slug"].as_str().unwrap())
        .collect();
    assert_eq!(shown, ["b", "a"], "drafts are not recommended to shoppers");
    expect_problem(
        app.put(&path, &json!({"product_ids": [999]})).await,
        422,
        "validation-failed",
    )
    .await;
    expect_problem(
        app.put(
            "/api/v1/admin/categories/999/recommendations",
            &json!({"product_ids": []}),
        )
        .await,
        404,
        "not-found",
    )
    .await;
    expect_problem(
        app.get("/api/v1/categories/nowhere/recommendations").await,
        404,
        "not-found",
    )
    .await;
}

async fn products_brands_and_ads_take_uploaded_images(backend: Backend) {
    use bazaar::media::placeholder_png;
    use reqwest::Method;

    use crate::media::send_file;

    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let lamp = create_product(
        &app,
        json!({"title": "Lamp", "slug": "lamp", "status": "listed", "skus": [sku("LAMP", 4000, 2)]}),
    )
    .await;
    let id = lamp["id"].as_i64().unwrap();
    let front = placeholder_png(64, 48, [200, 120, 40], 1);
    let side = placeholder_png(64, 48, [40, 120, 200], 2);

    let first = expect_json(
        send_file(
            &app,
            Method::POST,
            &format!("{PRODUCTS}/{id}/media?alt=Front"),
            &front,
        )
        .await,
        201,
    )
    .await;
    assert_eq!(
        (first["kind"].as_str(), first["content_type"].as_str()),
        (Some("image"), Some("image/png"))
    );
    assert_eq!(first["alt"], "Front");
    let second = expect_json(
        send_file(
            &app,
            Method::POST,
            &format!("{PRODUCTS}/{id}/media?alt=Side"),
            &side,
        )
        .await,
        201,
    )
    .await;
    assert_eq!(second["sort_order"], 1, "after the others");
    let served = app.get(first["url"].as_str().unwrap()).await;
    assert_eq!(served.status(), 200);
    assert_eq!(served.bytes().await.unwrap().as_ref(), &front[..]);

    let page = expect_json(app.get("/api/v1/products/lamp").await, 200).await;
    let alts: Vec<&str> = page["media"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["alt"].as_str().unwrap())
        .collect();
    assert_eq!(alts, ["Front", "Side"]);
    let list = expect_json(app.get("/api/v1/products").await, 200).await;
    assert_eq!(list["items"][0]["image_url"], first["url"]);

    // Reorder: the side view first, on the page at once.
    let path = format!("{PRODUCTS}/{id}/media/{}", second["id"]);
    expect_json(
        app.patch(
            &path,
            &json!({"sort_order": -1, "alt": "Side view", "version": 1}),
        )
        .await,
        200,
    )
    .await;
    let page = expect_json(app.get("/api/v1/products/lamp").await, 200).await;
    assert_eq!(page["media"][0]["alt"], "Side view");
    assert_eq!(app.delete(&path).await.status(), 204);
    let read = expect_json(app.get(&format!("{PRODUCTS}/{id}")).await, 200).await;
    assert_eq!(read["media"].as_array().unwrap().len(), 1);
    expect_problem(app.delete(&path).await, 404, "not-found").await;

    // Refusals: not an image, no such product.
    expect_problem(
        send_file(
            &app,
            Method::POST,
            &format!("{PRODUCTS}/{id}/media"),
            b"<svg onload=alert(1)></svg>",
        )
        .await,
        415,
        "unsupported-media-type",
    )
    .await;
    expect_problem(
        send_file(&app, Method::POST, &format!("{PRODUCTS}/999/media"), &front).await,
        404,
        "not-found",
    )
    .await;

    // A brand logo and an ad image.
    let brand = expect_json(
        app.post(
            "/api/v1/admin/brands",
            &json!({"name": "Glow", "slug": "glow"}),
        )
        .await,
        201,
    )
    .await;
    let with_logo = expect_json(
        send_file(
            &app,
            Method::PUT,
            &format!("/api/v1/admin/brands/{}/logo", brand["id"]),
            &side,
        )
        .await,
        200,
    )
    .await;
    let logo = with_logo["logo_url"].as_str().unwrap();
    assert_eq!(
        app.get(logo).await.bytes().await.unwrap().as_ref(),
        &side[..]
    );
    let video = [&[0, 0, 0, 0x18][..], b"ftypmp42", &[0; 64]].concat();
    expect_problem(
        send_file(
            &app,
            Method::PUT,
            &format!("/api/v1/admin/brands/{}/logo", brand["id"]),
            &video,
        )
        .await,
        415,
        "unsupported-media-type",
    )
    .await;
    let ad = expect_json(
        app.post(
            "/api/v1/admin/content/ads",
            &json!({"title": "Sale", "image_url": "/placeholder.png", "placement": "home"}),
        )
        .await,
        201,
    )
    .await;
    let with_image = expect_json(
        send_file(
            &app,
            Method::PUT,
            &format!("/api/v1/admin/content/ads/{}/image", ad["id"]),
            &front,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        with_image["image_url"], first["url"],
        "the same file, the same key"
    );
}

both_backends!(the_scale_loader_adds_listed_products_in_bulk);

async fn the_scale_loader_adds_listed_products_in_bulk(backend: Backend) {
    let app = spawn(backend).await;
    let report = bazaar::catalog::seed::load_scale(app.state(), 2_002)
        .await
        .unwrap();
    assert_eq!((report.products, report.skus), (501, 2_004));
    let list = expect_json(app.get("/api/v1/products?per_page=20").await, 200).await;
    assert_eq!(list["total"], 501);
    let page = expect_json(app.get("/api/v1/products/scale-500").await, 200).await;
    assert_eq!(page["skus"].as_array().unwrap().len(), 4);
    assert_eq!(page["breadcrumbs"].as_array().unwrap().len(), 2);
    // Loading more continues the numbering.
    bazaar::catalog::seed::load_scale(app.state(), 4)
        .await
        .unwrap();
    expect_json(app.get("/api/v1/products/scale-501").await, 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_catalog_is_a_browsable_shop() {
    crate::harness::bounded(async {
        let app = spawn(Backend::Embedded).await;
        let report = bazaar::catalog::seed::seed_demo(app.state()).await.unwrap();
        assert!(report.products >= 200, "{report:?}");
        let list = expect_json(
            app.get("/api/v1/products?category=clothing&per_page=5")
                .await,
            200,
        )
        .await;
        assert!(list["total"].as_i64().unwrap() > 50, "{list}");
        let slug = list["items"][0]["slug"].as_str().unwrap().to_owned();
        let page = expect_json(app.get(&format!("/api/v1/products/{slug}")).await, 200).await;
        assert!(
            page["skus"].as_array().unwrap().len() >= 2,
            "apparel varies by colour"
        );
        assert!(page["brand"]["name"].is_string());
        let image = app.get(page["media"][0]["url"].as_str().unwrap()).await;
        assert_eq!(image.headers()["content-type"], "image/png");
        let brands = expect_json(app.get("/api/v1/brands").await, 200).await;
        assert!(
            brands
                .as_array()
                .unwrap()
                .iter()
                .all(|b| b["logo_url"].is_string())
        );
        let again = bazaar::catalog::seed::seed_demo(app.state()).await;
        assert!(again.is_err(), "a second run refuses");
    })
    .await
}
