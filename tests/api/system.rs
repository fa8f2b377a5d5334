//! System reference data end to end: CRUD conventions, optimistic concurrency,
//! idempotency, lists, the region tree and shipping prices.

use serde_json::{Value, json};

use crate::harness::*;

async fn create(app: &TestApp, path: &str, body: Value) -> Value {
    expect_json(app.post(path, &body).await, 201).await
}

/// Country → province → city, returning their ids.
async fn china(app: &TestApp) -> (i64, i64, i64) {
    let cn = create(
        app,
        "/api/v1/admin/regions",
        json!({"code": "CN", "name": "China", "level": "country"}),
    )
    .await;
    let gd = create(
        app,
        "/api/v1/admin/regions",
        json!({"code": "CN-GD", "name": "Guangdong", "level": "province", "parent_id": cn["id"]}),
    )
    .await;
    let sz = create(
        app,
        "/api/v1/admin/regions",
        json!({"code": "CN-GD-SZ", "name": "Shenzhen", "level": "city", "parent_id": gd["id"]}),
    )
    .await;
    (
        cn["id"].as_i64().unwrap(),
        gd["id"].as_i64().unwrap(),
        sz["id"].as_i64().unwrap(),
    )
}

async fn regions_form_a_consistent_tree(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let (cn, gd, sz) = china(&app).await;
    let bj = create(
        &app,
        "/api/v1/admin/regions",
        json!({"code": "CN-BJ", "name": "Beijing", "level": "province", "parent_id": cn, "sort_order": -1}),
    )
    .await;

    let misplaced = app
        .post(
            "/api/v1/admin/regions",
            &json!({"code": "X", "name": "X", "level": "city", "parent_id": cn}),
        )
        .await;
    let problem = expect_problem(misplaced, 422, "validation-failed").await;
    assert_eq!(problem["errors"][0]["field"], "parent_id");
    let orphan = app
        .post(
            "/api/v1/admin/regions",
            &json!({"code": "Y", "name": "Y", "level": "province", "parent_id": 999}),
        )
        .await;
    expect_problem(orphan, 422, "validation-failed").await;
    let bad_level = app
        .post(
            "/api/v1/admin/regions",
            &json!({"code": "Z", "name": "Z", "level": "planet"}),
        )
        .await;
    let problem = expect_problem(bad_level, 422, "validation-failed").await;
    assert_eq!(problem["errors"][0]["field"], "level");

    // The storefront tree: siblings in order, children nested.
    let tree = expect_json(
        app.new_client()
            .get(app.url("/api/v1/regions"))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(tree[0]["code"], "CN");
    let provinces: Vec<&str> = tree[0]["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap())
        .collect();
    assert_eq!(provinces, ["CN-BJ", "CN-GD"]);
    assert_eq!(tree[0]["children"][1]["children"][0]["name"], "Shenzhen");

    // Move Shenzhen under Beijing (a city may move between provinces).
    let moved = app
        .patch(
            &format!("/api/v1/admin/regions/{sz}"),
            &json!({"parent_id": bj["id"], "version": 1}),
        )
        .await;
    assert_eq!(expect_json(moved, 200).await["parent_id"], bj["id"]);
    // The storefront's (cached) tree shows the move at once.
    let tree = expect_json(
        app.new_client()
            .get(app.url("/api/v1/regions"))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(tree[0]["children"][0]["children"][0]["code"], "CN-GD-SZ");
    assert_eq!(tree[0]["children"][1]["children"], json!([]));
    let under_itself = app
        .patch(
            &format!("/api/v1/admin/regions/{gd}"),
            &json!({"parent_id": sz, "version": 1}),
        )
        .await;
    expect_problem(under_itself, 422, "validation-failed").await;

    expect_problem(
        app.delete(&format!("/api/v1/admin/regions/{cn}")).await,
        409,
        "region-has-children",
    )
    .await;
    assert_eq!(
        app.delete(&format!("/api/v1/admin/regions/{gd}"))
            .await
            .status(),
        204
    );
    let children = expect_json(
        app.get(&format!("/api/v1/admin/regions?parent_id={cn}"))
            .await,
        200,
    )
    .await;
    assert_eq!(children["total"], 1);
    let cities = expect_json(app.get("/api/v1/admin/regions?level=city").await, 200).await;
    assert_eq!(cities["items"][0]["code"], "CN-GD-SZ");
}

async fn edits_are_optimistically_concurrent(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let created = app
        .post(
            "/api/v1/admin/packaging",
            &json!({"name": "Gift box", "price": 1500}),
        )
        .await;
    let location = header_str(created.headers(), "location");
    let packaging = expect_json(created, 201).await;
    assert_eq!(
        packaging["price"],
        json!({"amount": 1500, "currency": "CNY"})
    );
    let id = packaging["id"].as_i64().unwrap();
    assert_eq!(location, format!("/api/v1/admin/packaging/{id}"));

    let fetched = app.get(&location).await;
    let etag = header_str(fetched.headers(), "etag");
    assert_eq!(etag, "\"1\"");

    // Two editors read version 1; the first write wins, the second is told.
    let first = send(
        app.request(reqwest::Method::PATCH, &location)
            .header("if-match", &etag)
            .json(&json!({"price": 1800})),
    )
    .await;
    assert_eq!(header_str(first.headers(), "etag"), "\"2\"");
    assert_eq!(expect_json(first, 200).await["price"]["amount"], 1800);
    let second = send(
        app.request(reqwest::Method::PATCH, &location)
            .header("if-match", &etag)
            .json(&json!({"price": 900})),
    )
    .await;
    expect_problem(second, 412, "precondition-failed").await;
    let stale_body = app
        .patch(&location, &json!({"price": 900, "version": 1}))
        .await;
    expect_problem(stale_body, 409, "stale-version").await;
    let blind = app.patch(&location, &json!({"price": 900})).await;
    expect_problem(blind, 428, "precondition-required").await;
    let garbage = send(
        app.request(reqwest::Method::PATCH, &location)
            .header("if-match", "yesterday")
            .json(&json!({"price": 1})),
    )
    .await;
    expect_problem(garbage, 400, "bad-request").await;
    assert_eq!(
        expect_json(app.get(&location).await, 200).await["price"]["amount"],
        1800
    );

    let negative = app
        .patch(&location, &json!({"price": -1, "version": 2}))
        .await;
    let problem = expect_problem(negative, 422, "validation-failed").await;
    assert_eq!(problem["errors"][0]["field"], "price");
    let unknown_field = app
        .patch(&location, &json!({"colour": "red", "version": 2}))
        .await;
    expect_problem(unknown_field, 422, "validation-failed").await;

    assert_eq!(app.delete(&location).await.status(), 204);
    expect_problem(app.get(&location).await, 404, "not-found").await;
    expect_problem(
        app.patch(&location, &json!({"price": 1, "version": 2}))
            .await,
        404,
        "not-found",
    )
    .await;
    expect_problem(app.delete(&location).await, 404, "not-found").await;
}

async fn retried_creates_with_an_idempotency_key_run_once(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let body = json!({"code": "SF", "name": "SF Express", "tracking_url": "https://sf.example/t/{tracking_number}"});
    let post = |body: Value, key: &'static str| {
        send(
            app.request(reqwest::Method::POST, "/api/v1/admin/carriers")
                .header("idempotency-key", key)
                .json(&body),
        )
    };
    let first = post(body.clone(), "order-7-attempt").await;
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first_location = header_str(first.headers(), "location");
    let first = expect_json(first, 201).await;
    let retry = post(body.clone(), "order-7-attempt").await;
    assert_eq!(header_str(retry.headers(), "idempotent-replayed"), "true");
    assert_eq!(header_str(retry.headers(), "location"), first_location);
    assert_eq!(
        expect_json(retry, 201).await,
        first,
        "the retry gets the original response"
    );
    let list = expect_json(app.get("/api/v1/admin/carriers").await, 200).await;
    assert_eq!(list["total"], 1, "the carrier was created once");

    let reused = post(json!({"code": "EMS", "name": "EMS"}), "order-7-attempt").await;
    expect_problem(reused, 409, "idempotency-key-reused").await;

    // Without a key the same body really runs again, and hits the unique code.
    let again = app.post("/api/v1/admin/carriers", &body).await;
    expect_problem(again, 409, "already-exists").await;

    // Failures are replayed too, so a retry cannot slip past a validation error.
    let invalid = post(json!({"code": "bad code!", "name": "x"}), "bad-1").await;
    expect_problem(invalid, 422, "validation-failed").await;
    let invalid_again = post(json!({"code": "bad code!", "name": "x"}), "bad-1").await;
    assert_eq!(
        header_str(invalid_again.headers(), "idempotent-replayed"),
        "true"
    );
    expect_problem(invalid_again, 422, "validation-failed").await;
}

async fn lists_page_sort_and_filter(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    for i in 0..25 {
        create(
            &app,
            "/api/v1/admin/payment-methods",
            json!({"code": format!("pm-{i:02}"), "name": format!("Method {i:02}"), "provider": if i % 5 == 0 { "alipay" } else { "manual" }, "active": i % 2 == 0, "sort_order": 25 - i}),
        )
        .await;
    }
    let page = expect_json(
        app.get("/api/v1/admin/payment-methods?page=2&per_page=10&sort=code")
            .await,
        200,
    )
    .await;
    assert_eq!(
        (
            page["total"].as_u64(),
            page["page"].as_u64(),
            page["per_page"].as_u64()
        ),
        (Some(25), Some(2), Some(10))
    );
    let codes: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes.first(), Some(&"pm-10"));
    assert_eq!(codes.len(), 10);

    let last = expect_json(
        app.get("/api/v1/admin/payment-methods?limit=10&offset=20&sort=-code")
            .await,
        200,
    )
    .await;
    assert_eq!(last["items"].as_array().unwrap().len(), 5);
    assert_eq!(last["page"], 3);
    assert_eq!(last["items"][4]["code"], "pm-00");

    let filtered = expect_json(
        app.get("/api/v1/admin/payment-methods?provider=alipay&active=true")
            .await,
        200,
    )
    .await;
    assert_eq!(filtered["total"], 3, "pm-00, pm-10, pm-20");

    let too_big = app.get("/api/v1/admin/payment-methods?per_page=101").await;
    expect_problem(too_big, 400, "bad-request").await;
    let mixed = app
        .get("/api/v1/admin/payment-methods?page=1&limit=5")
        .await;
    expect_problem(mixed, 400, "bad-request").await;
    let unknown_sort = expect_problem(
        app.get("/api/v1/admin/payment-methods?sort=price").await,
        400,
        "invalid-sort",
    )
    .await;
    assert!(
        unknown_sort["detail"]
            .as_str()
            .unwrap()
            .contains("name, code, sort_order, created_at")
    );
    let not_a_number = expect_problem(
        app.get("/api/v1/admin/payment-methods?page=two").await,
        400,
        "validation-failed",
    )
    .await;
    assert_eq!(not_a_number["errors"][0]["field"], "page");
    let bad_provider = app
        .get("/api/v1/admin/payment-methods?provider=paypal")
        .await;
    expect_problem(bad_provider, 400, "validation-failed").await;

    // The storefront sees active methods only, in display order, and no Alipay ones: this
    // shop has no Alipay keys (pm-00, pm-10 and pm-20 are left out).
    let storefront = expect_json(
        app.new_client()
            .get(app.url("/api/v1/payment-methods"))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let shown = storefront.as_array().unwrap();
    assert_eq!(shown.len(), 10);
    assert_eq!(shown[0]["code"], "pm-24");
    assert!(shown.iter().all(|m| m["provider"] == "manual"));
}

async fn shipping_is_priced_by_nearest_region_and_weight(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let (cn, gd, sz) = china(&app).await;
    let carrier = create(
        &app,
        "/api/v1/admin/carriers",
        json!({"code": "SF", "name": "SF Express"}),
    )
    .await;
    let standard = create(
        &app,
        "/api/v1/admin/shipping-methods",
        json!({
            "code": "standard", "name": "Standard", "carrier_id": carrier["id"],
            "rates": [
                {"region_id": null, "first_weight_grams": 1000, "first_price": 2000, "step_weight_grams": 1000, "step_price": 1000},
                {"region_id": gd, "first_weight_grams": 1000, "first_price": 800, "step_weight_grams": 500, "step_price": 200}
            ]
        }),
    )
    .await;
    assert_eq!(standard["rates"].as_array().unwrap().len(), 2);
    create(
        &app,
        "/api/v1/admin/shipping-methods",
        json!({"code": "local", "name": "Shenzhen same day", "rates": [
            {"region_id": sz, "first_weight_grams": 3000, "first_price": 1500, "step_weight_grams": 1000, "step_price": 500}
        ]}),
    )
    .await;
    create(
        &app,
        "/api/v1/admin/shipping-methods",
        json!({"code": "retired", "name": "Retired", "active": false, "rates": [
            {"region_id": null, "first_weight_grams": 1000, "first_price": 1, "step_weight_grams": 1000, "step_price": 1}
        ]}),
    )
    .await;

    let storefront = app.new_client();
    let quote = |region: i64, grams: i64| {
        let request = storefront.get(app.url(&format!(
            "/api/v1/shipping-methods?region={region}&weight_grams={grams}"
        )));
        async move { expect_json(send(request).await, 200).await }
    };
    // Shenzhen, 2.2 kg: the Guangdong rate (800 + 3 started half-kilos × 200) and the local one.
    let options = quote(sz, 2200).await;
    let prices: Vec<(&str, i64)> = options
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["code"].as_str().unwrap(),
                o["price"]["amount"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(prices, [("standard", 1400), ("local", 1500)]);
    assert_eq!(options[0]["price"]["currency"], "CNY");
    assert_eq!(options[0]["carrier_id"], carrier["id"]);
    // Elsewhere in China: only the catch-all rate, 2000 + 2 started kilos × 1000.
    let options = quote(cn, 2500).await;
    assert_eq!(options.as_array().unwrap().len(), 1);
    assert_eq!(options[0]["price"]["amount"], 4000);

    let negative = send(storefront.get(app.url(&format!(
        "/api/v1/shipping-methods?region={sz}&weight_grams=-5"
    ))))
    .await;
    expect_problem(negative, 422, "validation-failed").await;
    let nowhere =
        send(storefront.get(app.url("/api/v1/shipping-methods?region=999&weight_grams=5"))).await;
    let problem = expect_problem(nowhere, 422, "validation-failed").await;
    assert_eq!(problem["errors"][0]["field"], "region");
    let missing = send(storefront.get(app.url("/api/v1/shipping-methods?region=1"))).await;
    expect_problem(missing, 400, "validation-failed").await;

    // Rates are validated: one per region, positive steps, existing regions.
    let invalid = app
        .post(
            "/api/v1/admin/shipping-methods",
            &json!({"code": "bad", "name": "Bad", "rates": [
                {"region_id": null, "first_weight_grams": 1, "first_price": 1, "step_weight_grams": 0, "step_price": 1},
                {"region_id": null, "first_weight_grams": 1, "first_price": -1, "step_weight_grams": 1, "step_price": 1}
            ]}),
        )
        .await;
    let problem = expect_problem(invalid, 422, "validation-failed").await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "rates[0].step_weight_grams",
            "rates[1].first_price",
            "rates[1].region_id"
        ]
    );

    // Replacing the rates changes the quote; a region in use by a rate cannot be deleted.
    let id = standard["id"].as_i64().unwrap();
    let replaced = app
        .patch(
            &format!("/api/v1/admin/shipping-methods/{id}"),
            &json!({"version": 1, "rates": [{"region_id": null, "first_weight_grams": 5000, "first_price": 999, "step_weight_grams": 1000, "step_price": 100}]}),
        )
        .await;
    assert_eq!(
        expect_json(replaced, 200).await["rates"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(quote(sz, 2200).await[0]["price"]["amount"], 999);
    expect_problem(
        app.delete(&format!("/api/v1/admin/regions/{sz}")).await,
        409,
        "reference-conflict",
    )
    .await;
    expect_problem(
        app.delete(&format!("/api/v1/admin/carriers/{}", carrier["id"]))
            .await,
        409,
        "reference-conflict",
    )
    .await;
}

both_backends!(
    regions_form_a_consistent_tree,
    edits_are_optimistically_concurrent,
    retried_creates_with_an_idempotency_key_run_once,
    lists_page_sort_and_filter,
    shipping_is_priced_by_nearest_region_and_weight,
);
