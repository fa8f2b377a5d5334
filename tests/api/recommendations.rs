//! Product recommendations: pinned products first and in order, then products bought
//! together in paid orders by how often, then the newest of the same categories; never
//! the product itself or anything off sale.

use bazaar::orders::entity::{order, order_line};
use chrono::Utc;
use sea_orm::ActiveValue::Set;
use sea_orm::EntityTrait;
use serde_json::{Value, json};

use crate::harness::{
    Backend, TestApp, both_backends, expect_json, expect_problem, login_as_superuser, spawn,
};
use crate::products::{PRODUCTS, create_product, patch_current};

both_backends!(
    rules_apply_in_order_without_repeats_or_hidden_products,
    bought_together_counts_only_paid_uncancelled_orders,
    pins_are_checked_and_limits_respected,
);

/// Inserts an order straight into the database (there is no order service yet): `paid`
/// sets `paid_at`; one line per product. Returns the order id.
pub async fn insert_order(
    app: &TestApp,
    status: &str,
    paid: bool,
    currency: &str,
    products: &[&Value],
) -> i64 {
    let db = app.state().db.writer();
    let now = Utc::now();
    let created = order::Entity::insert(order::ActiveModel {
        version: Set(1),
        number: Set(format!("T{}", uuid::Uuid::new_v4().simple())),
        customer_id: Set(None),
        email: Set("buyer@example.com".into()),
        status: Set(status.into()),
        currency: Set(currency.into()),
        subtotal: Set(1000),
        discount: Set(0),
        shipping_fee: Set(0),
        shipping_discount: Set(0),
        packaging_fee: Set(0),
        adjustment: Set(0),
        total: Set(1000),
        gift_certificate_amount: Set(0),
        amount_due: Set(1000),
        bonus_points: Set(0),
        pricing: Set("{}".into()),
        coupon_codes: Set("[]".into()),
        ship_to: Set("{}".into()),
        placed_at: Set(now),
        paid_at: Set(paid.then_some(now)),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec_with_returning(db)
    .await
    .expect("cannot insert an order");
    for product in products {
        order_line::Entity::insert(order_line::ActiveModel {
            version: Set(1),
            order_id: Set(created.id),
            sku_id: Set(product["skus"][0]["id"].as_i64().unwrap()),
            product_id: Set(product["id"].as_i64().unwrap()),
            sku_code: Set(product["skus"][0]["code"].as_str().unwrap().into()),
            title: Set(product["title"].as_str().unwrap().into()),
            unit_price: Set(1000),
            quantity: Set(1),
            discount: Set(0),
            adjustment: Set(0),
            total: Set(1000),
            weight_grams: Set(0),
            shipped_quantity: Set(0),
            returned_quantity: Set(0),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        })
        .exec(db)
        .await
        .expect("cannot insert an order line");
    }
    created.id
}

async fn category(app: &TestApp, slug: &str) -> i64 {
    let body = json!({"name": slug, "slug": slug});
    expect_json(app.post("/api/v1/admin/categories", &body).await, 201).await["id"]
        .as_i64()
        .unwrap()
}

/// A listed product with one SKU in stock, in `categories`.
async fn listed(app: &TestApp, slug: &str, categories: &[i64]) -> Value {
    create_product(
        app,
        json!({"title": slug, "slug": slug, "status": "listed", "category_ids": categories,
            "skus": [{"code": slug.to_uppercase(), "price": 1000, "stock": 5}]}),
    )
    .await
}

/// `(slug, reason)` of each recommendation.
async fn recommended(app: &TestApp, path: &str) -> Vec<(String, String)> {
    let items = expect_json(app.get(path).await, 200).await;
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert!(r["price"].is_i64() && r["title"].is_string(), "a card: {r}");
            (
                r["slug"].as_str().unwrap().to_owned(),
                r["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(s, r)| ((*s).to_owned(), (*r).to_owned()))
        .collect()
}

async fn pin(app: &TestApp, product: &Value, pinned: &[&Value]) -> Value {
    let ids: Vec<&Value> = pinned.iter().map(|p| &p["id"]).collect();
    let path = format!("{PRODUCTS}/{}/recommendations", product["id"]);
    expect_json(app.put(&path, &json!({ "product_ids": ids })).await, 200).await
}

async fn rules_apply_in_order_without_repeats_or_hidden_products(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let tea = category(&app, "tea").await;
    let other = category(&app, "other").await;
    let kettle = listed(&app, "kettle", &[tea]).await;
    let cup = listed(&app, "cup", &[other]).await;
    let pot = listed(&app, "pot", &[other]).await;
    let green = listed(&app, "green", &[tea]).await;
    listed(&app, "black", &[tea]).await;
    listed(&app, "oolong", &[tea]).await;
    let hidden = listed(&app, "hidden", &[tea]).await;
    listed(&app, "unrelated", &[other]).await;

    // Pinned: in the given order; a pinned product that is also bought together and in
    // the category appears once, as pinned.
    let set = pin(&app, &kettle, &[&green, &cup]).await;
    let slugs: Vec<&str> = set
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["green", "cup"]);
    let read = expect_json(
        app.get(&format!("{PRODUCTS}/{}/recommendations", kettle["id"]))
            .await,
        200,
    )
    .await;
    assert_eq!(read, set);

    // Bought together: pot in two paid orders with the kettle, the hidden product in
    // three, green (pinned) in one.
    for _ in 0..2 {
        insert_order(&app, "paid", true, "CNY", &[&kettle, &pot]).await;
    }
    for _ in 0..3 {
        insert_order(&app, "shipped", true, "CNY", &[&kettle, &hidden, &green]).await;
    }
    let hidden_path = format!("{PRODUCTS}/{}", hidden["id"]);
    let response = patch_current(&app, &hidden_path, json!({"status": "draft"})).await;
    assert_eq!(response.status(), 200);

    let path = "/api/v1/products/kettle/recommendations";
    assert_eq!(
        recommended(&app, path).await,
        pairs(&[
            ("green", "pinned"),
            ("cup", "pinned"),
            ("pot", "bought_together"),
            ("oolong", "same_category"),
            ("black", "same_category"),
        ]),
        "pinned in order, then bought together, then the category's newest; never the hidden product, the kettle itself or an unrelated product"
    );

    // A pinned product taken off sale drops out, and the rest move up.
    let response = patch_current(
        &app,
        &format!("{PRODUCTS}/{}", cup["id"]),
        json!({"status": "draft"}),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        recommended(&app, &format!("{path}?limit=3")).await,
        pairs(&[
            ("green", "pinned"),
            ("pot", "bought_together"),
            ("oolong", "same_category"),
        ])
    );

    // A product off sale has no recommendations to show.
    expect_problem(
        app.get("/api/v1/products/hidden/recommendations").await,
        404,
        "not-found",
    )
    .await;
    expect_problem(
        app.get("/api/v1/products/nowhere/recommendations").await,
        404,
        "not-found",
    )
    .await;
}

async fn bought_together_counts_only_paid_uncancelled_orders(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let camera = listed(&app, "camera", &[]).await;
    let lens = listed(&app, "lens", &[]).await;
    let bag = listed(&app, "bag", &[]).await;
    let strap = listed(&app, "strap", &[]).await;
    let tripod = listed(&app, "tripod", &[]).await;

    // The bag with the camera in three paid orders, the lens in two; the strap only in
    // unpaid or cancelled ones, however many; the tripod never with the camera.
    for _ in 0..2 {
        insert_order(&app, "completed", true, "CNY", &[&camera, &lens, &bag]).await;
    }
    insert_order(&app, "paid", true, "CNY", &[&bag, &camera]).await;
    for _ in 0..4 {
        insert_order(&app, "pending_payment", false, "CNY", &[&camera, &strap]).await;
        insert_order(&app, "cancelled", true, "CNY", &[&camera, &strap]).await;
    }
    insert_order(&app, "paid", true, "CNY", &[&tripod, &lens, &strap]).await;

    assert_eq!(
        recommended(&app, "/api/v1/products/camera/recommendations").await,
        pairs(&[("bag", "bought_together"), ("lens", "bought_together")])
    );
    // It works both ways, by the same counts.
    assert_eq!(
        recommended(&app, "/api/v1/products/tripod/recommendations").await,
        pairs(&[("strap", "bought_together"), ("lens", "bought_together")])
    );
    assert_eq!(
        recommended(&app, "/api/v1/products/camera/recommendations?limit=1").await,
        pairs(&[("bag", "bought_together")])
    );
}

async fn pins_are_checked_and_limits_respected(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let shelf = category(&app, "shelf").await;
    let main = listed(&app, "main", &[shelf]).await;
    let mut items = Vec::new();
    for i in 0..30 {
        items.push(listed(&app, &format!("item-{i:02}"), &[shelf]).await);
    }
    let path = "/api/v1/products/main/recommendations";
    let default = recommended(&app, path).await;
    assert_eq!(default.len(), 8, "eight by default");
    assert_eq!(default[0].0, "item-29", "newest first");
    assert!(default.iter().all(|(_, reason)| reason == "same_category"));
    assert_eq!(
        recommended(&app, &format!("{path}?limit=24")).await.len(),
        24
    );
    assert_eq!(recommended(&app, &format!("{path}?limit=2")).await.len(), 2);
    for bad in ["0", "25"] {
        let problem = expect_problem(
            app.get(&format!("{path}?limit={bad}")).await,
            422,
            "validation-failed",
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], "limit");
    }

    let pins = format!("{PRODUCTS}/{}/recommendations", main["id"]);
    let problem = expect_problem(
        app.put(&pins, &json!({"product_ids": [main["id"]]})).await,
        422,
        "validation-failed",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "product_ids");
    expect_problem(
        app.put(&pins, &json!({"product_ids": [999_999]})).await,
        422,
        "validation-failed",
    )
    .await;
    let too_many: Vec<&Value> = items[..25].iter().map(|p| &p["id"]).collect();
    expect_problem(
        app.put(&pins, &json!({"product_ids": too_many})).await,
        422,
        "validation-failed",
    )
    .await;
    expect_problem(
        app.put(
            &format!("{PRODUCTS}/999999/recommendations"),
            &json!({"product_ids": []}),
        )
        .await,
        404,
        "not-found",
    )
    .await;

    // Pins replace one another, and an empty list clears them.
    let first = &items[0]["id"];
    let set = expect_json(
        app.put(&pins, &json!({"product_ids": [first, first]}))
            .await,
        200,
    )
    .await;
    assert_eq!(set.as_array().unwrap().len(), 1, "duplicates count once");
    let shown = recommended(&app, &format!("{path}?limit=3")).await;
    assert_eq!(shown[0], ("item-00".to_owned(), "pinned".to_owned()));
    assert_eq!(shown[1].0, "item-29");
    let cleared = expect_json(app.put(&pins, &json!({"product_ids": []})).await, 200).await;
    assert_eq!(cleared, json!([]));
    assert_eq!(
        recommended(&app, &format!("{path}?limit=1")).await[0].0,
        "item-29"
    );
}
