//! Carts, checkout and the order lifecycle, over HTTP on both backends.

use std::time::{Duration, Instant};

use futures::future::join_all;
use serde_json::{Value, json};

use crate::harness::{
    Backend, TestApp, both_backends, create_staff, expect_json, expect_problem, login,
    login_as_superuser, spawn, spawn_sharing, spawn_with,
};
use crate::shop::{buyer, listed_product, open_shop, stock};

both_backends!(
    guest_cart_prices_lines_and_merges_into_the_customer_cart,
    checkout_needs_a_key_reserves_stock_and_replays,
    concurrent_checkouts_never_reserve_more_than_available,
    unpaid_orders_time_out_and_release_their_stock,
    paid_order_is_picked_shipped_delivered_and_returned,
    staff_edit_a_pending_order_under_a_lock,
    splitting_an_order_keeps_its_total,
    cancelling_gives_back_stock_coupons_and_promotion_uses,
    dashboard_counts_the_shop,
    gift_certificates_pay_at_checkout_and_come_back_on_cancel,
    paying_issues_the_gift_coupons_an_order_earned,
);

async fn guest_cart_prices_lines_and_merges_into_the_customer_cart(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let shop = open_shop(&app).await;
    let (_, tea) = listed_product(&app, "TEA-1", 1200, 10).await;
    let (draft, _) = {
        let p = expect_json(
            app.post(
                "/api/v1/admin/products",
                &json!({"title": "Hidden", "slug": "hidden", "skus": [{"code": "HID-1", "price": 1, "stock": 1}]}),
            )
            .await,
            201,
        )
        .await;
        let sku = p["skus"][0]["id"].as_i64().unwrap();
        (sku, p)
    };
    let guest = app.new_client();
    let created = expect_json(
        guest.post(app.url("/api/v1/carts")).send().await.unwrap(),
        201,
    )
    .await;
    let token = created["token"].as_str().unwrap().to_owned();
    let cart_post = |path: &str, body: Value| {
        guest
            .post(app.url(path))
            .header("Cart-Token", &token)
            .json(&body)
            .send()
    };
    let cart = expect_json(
        cart_post("/api/v1/cart/lines", json!({"sku_id": tea, "quantity": 2}))
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(cart["lines"][0]["quantity"], 2);
    assert_eq!(cart["lines"][0]["unit_price"], 1200);
    assert_eq!(cart["subtotal"], 2400);
    assert_eq!(cart["total"], 2400);
    assert_eq!(cart["can_checkout"], true);
    // Adding again adds up; bad quantities and unknown or hidden SKUs are refused.
    let cart = expect_json(
        cart_post("/api/v1/cart/lines", json!({"sku_id": tea, "quantity": 1}))
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(cart["lines"][0]["quantity"], 3);
    expect_problem(
        cart_post("/api/v1/cart/lines", json!({"sku_id": tea, "quantity": 0}))
            .await
            .unwrap(),
        422,
        "validation-failed",
    )
    .await;
    expect_problem(
        cart_post(
            "/api/v1/cart/lines",
            json!({"sku_id": 999_999, "quantity": 1}),
        )
        .await
        .unwrap(),
        422,
        "validation-failed",
    )
    .await;
    expect_problem(
        cart_post(
            "/api/v1/cart/lines",
            json!({"sku_id": draft, "quantity": 1}),
        )
        .await
        .unwrap(),
        409,
        "unavailable",
    )
    .await;
    // Unknown coupons stay visible with the reason.
    let cart = expect_json(
        guest
            .put(app.url("/api/v1/cart/coupons"))
            .header("Cart-Token", &token)
            .json(&json!({"codes": ["nope"]}))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(cart["coupon_codes"], json!(["NOPE"]));
    assert_eq!(cart["rejected_codes"][0]["code"], "NOPE");
    // Shipping options for the region, and the chosen one in the total (1.2 kg → 1500).
    let quoted = expect_json(
        guest
            .get(app.url(&format!(
                "/api/v1/cart?region_id={}&shipping_method_id={}",
                shop.region, shop.method
            )))
            .header("Cart-Token", &token)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(quoted["weight_grams"], 1200);
    assert_eq!(quoted["shipping_options"][0]["id"], shop.method);
    assert_eq!(quoted["shipping"], 1500);
    assert_eq!(quoted["total"], 3600 + 1500);
    // A missing token is a 400 that says what to send; a wrong one is a 404.
    expect_problem(
        guest.get(app.url("/api/v1/cart")).send().await.unwrap(),
        400,
        "cart-token-required",
    )
    .await;
    expect_problem(
        guest
            .get(app.url("/api/v1/cart"))
            .header("Cart-Token", "nope")
            .send()
            .await
            .unwrap(),
        404,
        "cart-not-found",
    )
    .await;

    // Signing in and sending the token merges the guest cart into the customer's.
    let customer = buyer(&app, "merge@example.com").await;
    customer.add(tea, 1).await;
    let merged = expect_json(
        crate::harness::send(
            customer
                .request(reqwest::Method::GET, "/api/v1/cart")
                .header("Cart-Token", &token),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(merged["token"], Value::Null);
    assert_eq!(merged["lines"].as_array().unwrap().len(), 1);
    assert_eq!(
        merged["lines"][0]["quantity"], 4,
        "1 of the customer's + 3 of the guest's"
    );
    assert_eq!(merged["coupon_codes"], json!(["NOPE"]));
    // The guest cart is gone.
    expect_problem(
        guest
            .get(app.url("/api/v1/cart"))
            .header("Cart-Token", &token)
            .send()
            .await
            .unwrap(),
        404,
        "cart-not-found",
    )
    .await;
    app.shutdown().await;
}

async fn checkout_needs_a_key_reserves_stock_and_replays(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let shop = open_shop(&app).await;
    let (_, sku) = listed_product(&app, "MUG-1", 2500, 5).await;
    let customer = buyer(&app, "checkout@example.com").await;
    expect_problem(
        customer.checkout(&shop, "k", json!({})).await,
        409,
        "cart-empty",
    )
    .await;
    customer.add(sku, 2).await;

    let no_key = crate::harness::send(
        customer
            .request(reqwest::Method::POST, "/api/v1/checkout")
            .json(&json!({"shipping_method_id": shop.method})),
    )
    .await;
    expect_problem(no_key, 400, "idempotency-key-required").await;
    expect_problem(
        customer
            .checkout(&shop, "k0", json!({"shipping_method_id": null}))
            .await,
        422,
        "validation-failed",
    )
    .await;
    expect_problem(
        customer
            .checkout(&shop, "k1", json!({"expected_total": 1}))
            .await,
        409,
        "price-changed",
    )
    .await;

    let first = customer
        .checkout(&shop, "k2", json!({"note": "ring twice"}))
        .await;
    let order = expect_json(first, 201).await;
    assert_eq!(order["status"], "pending_payment");
    assert_eq!(order["subtotal"], 5000);
    assert_eq!(
        order["shipping_fee"], 1000,
        "800 g ships at the first-kilogram rate"
    );
    assert_eq!(order["total"], 6000);
    assert_eq!(order["amount_due"], 6000);
    assert_eq!(order["ship_to"]["region_path"], json!(["China"]));
    assert_eq!(order["lines"][0]["sku_code"], "MUG-1");
    assert!(order["payment_due_at"].is_string());
    let s = stock(&app, sku).await;
    assert_eq!(
        (
            s["on_hand"].as_i64(),
            s["reserved"].as_i64(),
            s["available"].as_i64()
        ),
        (Some(5), Some(2), Some(3))
    );

    // A retry with the same key gets the same order; the cart was emptied once.
    let again = customer
        .checkout(&shop, "k2", json!({"note": "ring twice"}))
        .await;
    assert_eq!(
        again
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.to_str().unwrap()),
        Some("true")
    );
    let again = expect_json(again, 201).await;
    assert_eq!(again["number"], order["number"]);
    assert_eq!(stock(&app, sku).await["reserved"], 2);
    let cart = expect_json(customer.get("/api/v1/cart").await, 200).await;
    assert_eq!(cart["lines"].as_array().unwrap().len(), 0);

    let mine = expect_json(customer.get("/api/v1/orders").await, 200).await;
    assert_eq!(mine["total"], 1);
    let number = order["number"].as_str().unwrap();
    expect_json(customer.get(&format!("/api/v1/orders/{number}")).await, 200).await;
    let other = buyer(&app, "other@example.com").await;
    expect_problem(
        other.get(&format!("/api/v1/orders/{number}")).await,
        404,
        "not-found",
    )
    .await;

    let ledger = expect_json(
        app.get(&format!("/api/v1/admin/inventory/{sku}/ledger"))
            .await,
        200,
    )
    .await;
    let reserve = ledger["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["kind"] == "reserve")
        .unwrap();
    assert_eq!(reserve["order_id"], order["id"]);
    app.shutdown().await;
}

async fn concurrent_checkouts_never_reserve_more_than_available(backend: Backend) {
    const BUYERS: usize = 200;
    const STOCK: i64 = 50;
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let shop = open_shop(&app).await;
    let (_, sku) = listed_product(&app, "HOT-1", 990, STOCK).await;
    let mut buyers = Vec::new();
    for i in 0..BUYERS {
        let b = buyer(&app, &format!("rush{i}@example.com")).await;
        b.add(sku, 1).await;
        buyers.push(b);
    }
    let started = Instant::now();
    let responses = join_all(buyers.iter().enumerate().map(|(i, b)| {
        let shop = &shop;
        async move {
            let t = Instant::now();
            let r = b.checkout(shop, &format!("rush-{i}"), json!({})).await;
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or_default();
            (status, body, t.elapsed())
        }
    }))
    .await;
    let elapsed = started.elapsed();
    let placed = responses.iter().filter(|(s, _, _)| *s == 201).count();
    let sold_out: Vec<_> = responses.iter().filter(|(s, _, _)| *s == 409).collect();
    let refusals: std::collections::BTreeSet<String> = responses
        .iter()
        .filter(|(s, _, _)| *s != 201)
        .map(|(s, b, _)| format!("{s} {}", b["code"]))
        .collect();
    assert_eq!(
        placed as i64, STOCK,
        "exactly the available units were sold; refusals: {refusals:?}"
    );
    assert_eq!(
        sold_out.len(),
        BUYERS - STOCK as usize,
        "everyone else was told no"
    );
    for (_, body, _) in &sold_out {
        assert_eq!(body["code"], "out-of-stock", "{body}");
        assert!(body["detail"].as_str().unwrap().contains("HOT-1"), "{body}");
    }
    let s = stock(&app, sku).await;
    assert_eq!(s["reserved"], STOCK);
    assert_eq!(s["available"], 0);
    let ledger = expect_json(
        app.get(&format!(
            "/api/v1/admin/inventory/{sku}/ledger?kind=reserve&per_page=100"
        ))
        .await,
        200,
    )
    .await;
    assert_eq!(ledger["total"], STOCK, "one reserve row per order");
    let orders = expect_json(
        app.get("/api/v1/admin/orders?status=pending_payment").await,
        200,
    )
    .await;
    assert_eq!(orders["total"], STOCK);
    let mut latencies: Vec<Duration> = responses.iter().map(|(_, _, d)| *d).collect();
    latencies.sort();
    eprintln!(
        "{backend:?}: {BUYERS} concurrent checkouts for {STOCK} units in {elapsed:?} ({:.0} checkouts/s), p50 {:?}, p99 {:?}",
        BUYERS as f64 / elapsed.as_secs_f64(),
        latencies[BUYERS / 2],
        latencies[BUYERS * 99 / 100],
    );
    app.shutdown().await;
}

async fn unpaid_orders_time_out_and_release_their_stock(backend: Backend) {
    let app = spawn_with(backend, |c| c.orders.payment_timeout_secs = 1).await;
    login_as_superuser(&app).await;
    let shop = open_shop(&app).await;
    let (_, sku) = listed_product(&app, "LATE-1", 100, 3).await;
    let customer = buyer(&app, "late@example.com").await;
    customer.add(sku, 3).await;
    let order = expect_json(customer.checkout(&shop, "late", json!({})).await, 201).await;
    assert_eq!(stock(&app, sku).await["available"], 0);
    let id = order["id"].as_i64().unwrap();
    // A delayed job waits for the queue's next poll of scheduled work, which on
    // PostgreSQL can be seconds after its time.
    let deadline = Instant::now() + Duration::from_secs(60);
    let detail = loop {
        let detail = expect_json(app.get(&format!("/api/v1/admin/orders/{id}")).await, 200).await;
        if detail["status"] == "cancelled" {
            break detail;
        }
        assert!(
            Instant::now() < deadline,
            "the unpaid order was not cancelled: {detail}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(detail["cancel_reason"], "payment time-out");
    let s = stock(&app, sku).await;
    assert_eq!(
        (s["reserved"].as_i64(), s["available"].as_i64()),
        (Some(0), Some(3))
    );
    let history: Vec<&str> = detail["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["action"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["placed", "cancelled"]);
    // Paying a timed-out order is refused.
    expect_problem(
        app.post(
            &format!("/api/v1/admin/orders/{id}/mark-paid"),
            &json!({"reference": "late"}),
        )
        .await,
        409,
        "invalid-order-status",
    )
    .await;
    app.shutdown().await;
}

/// A second instance of the shop, signed in as a staff member holding `permissions`.
async fn staff_member(app: &TestApp, email: &str, permissions: &[&str]) -> TestApp {
    const PASSWORD: &str = "a long staff password";
    create_staff(app, email, PASSWORD, false, permissions).await;
    let other = spawn_sharing(app).await;
    assert_eq!(login(&other, email, PASSWORD).await.status(), 200);
    other
}

/// The text of every page of a PDF, as a reader extracts it.
pub fn pdf_text(bytes: &[u8]) -> String {
    assert!(bytes.starts_with(b"%PDF-"), "not a PDF");
    let doc = lopdf::Document::load_mem(bytes).expect("the PDF does not parse");
    let pages: Vec<u32> = doc.get_pages().keys().copied().collect();
    doc.extract_text(&pages)
        .expect("the PDF's text cannot be extracted")
}

async fn paid_order_is_picked_shipped_delivered_and_returned(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let shop = open_shop(&app).await;
    let (_, sku) = listed_product(&app, "BOOT-42", 30000, 4).await;
    let customer = buyer(&app, "boots@example.com").await;
    customer.add(sku, 2).await;
    let order = expect_json(customer.checkout(&shop, "boots", json!({})).await, 201).await;
    let id = order["id"].as_i64().unwrap();
    let number = order["number"].as_str().unwrap().to_owned();

    expect_problem(
        app.post_empty(&format!("/api/v1/admin/orders/{id}/ready-for-picking"))
            .await,
        409,
        "invalid-order-status",
    )
    .await;
    let paid = expect_json(
        app.post(
            &format!("/api/v1/admin/orders/{id}/mark-paid"),
            &json!({"reference": "BANK-77"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(paid["status"], "paid");
    // Paying twice changes nothing.
    let again = expect_json(
        app.post(
            &format!("/api/v1/admin/orders/{id}/mark-paid"),
            &json!({"reference": "BANK-77"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(again["version"], paid["version"]);
    expect_problem(
        customer
            .post(&format!("/api/v1/orders/{number}/cancel"), &json!({}))
            .await,
        409,
        "invalid-order-status",
    )
    .await;

    let ready = expect_json(
        app.post_empty(&format!("/api/v1/admin/orders/{id}/ready-for-picking"))
            .await,
        200,
    )
    .await;
    assert_eq!(ready["status"], "ready_for_picking");
    let detail = expect_json(app.get(&format!("/api/v1/admin/orders/{id}")).await, 200).await;
    let shipment = detail["shipments"][0]["id"].as_i64().unwrap();

    let list = expect_json(
        app.post("/api/v1/admin/picking-lists", &json!({})).await,
        201,
    )
    .await;
    assert_eq!(list["shipments"][0]["id"], shipment);
    expect_problem(
        app.post("/api/v1/admin/picking-lists", &json!({})).await,
        409,
        "nothing-to-pick",
    )
    .await;
    let pdf = app
        .get(&format!("/api/v1/admin/picking-lists/{}/pdf", list["id"]))
        .await;
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    let text = pdf_text(&pdf.bytes().await.unwrap());
    assert!(text.contains("BOOT-42") && text.contains(&number), "{text}");
    let slip = app
        .get(&format!(
            "/api/v1/admin/shipments/{shipment}/packing-slip.pdf"
        ))
        .await;
    let text = pdf_text(&slip.bytes().await.unwrap());
    assert!(
        text.contains("Li Lei") && text.contains("1 West Lake Road") && text.contains("BOOT-42"),
        "{text}"
    );

    expect_problem(
        app.get(&format!("/api/v1/admin/shipments/{shipment}/label.pdf"))
            .await,
        409,
        "no-tracking-number",
    )
    .await;
    expect_json(
        app.put(
            &format!("/api/v1/admin/shipments/{shipment}/tracking"),
            &json!({"carrier_id": shop.carrier, "tracking_number": "SF1234567890"}),
        )
        .await,
        200,
    )
    .await;
    let label = app
        .get(&format!("/api/v1/admin/shipments/{shipment}/label.pdf"))
        .await;
    let text = pdf_text(&label.bytes().await.unwrap());
    assert!(
        text.contains("SF1234567890") && text.contains("SF Express") && text.contains("Li Lei"),
        "{text}"
    );

    let shipped = expect_json(
        app.post(
            &format!("/api/v1/admin/shipments/{shipment}/ship"),
            &json!({}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(shipped["status"], "shipped");
    let s = stock(&app, sku).await;
    assert_eq!(
        (s["on_hand"].as_i64(), s["reserved"].as_i64()),
        (Some(2), Some(0)),
        "shipped units left stock"
    );
    expect_problem(
        app.post(
            &format!("/api/v1/admin/shipments/{shipment}/ship"),
            &json!({}),
        )
        .await,
        409,
        "already-shipped",
    )
    .await;
    let o = expect_json(customer.get(&format!("/api/v1/orders/{number}")).await, 200).await;
    assert_eq!(o["status"], "shipped");
    let done = expect_json(
        customer
            .post(
                &format!("/api/v1/orders/{number}/confirm-receipt"),
                &json!({}),
            )
            .await,
        200,
    )
    .await;
    assert_eq!(done["status"], "completed");

    // Return one pair: more than delivered is refused.
    let line = done["lines"][0]["id"].as_i64().unwrap();
    expect_problem(
        customer.post(&format!("/api/v1/orders/{number}/returns"), &json!({"kind": "return", "reason": "too small", "lines": [{"line_id": line, "quantity": 3}]})).await,
        422,
        "validation-failed",
    )
    .await;
    let ret = expect_json(
        customer.post(&format!("/api/v1/orders/{number}/returns"), &json!({"kind": "return", "reason": "too small", "lines": [{"line_id": line, "quantity": 1}]})).await,
        201,
    )
    .await;
    let rid = ret["id"].as_i64().unwrap();
    expect_problem(
        app.post(
            &format!("/api/v1/admin/returns/{rid}/receive"),
            &json!({"lines": [{"line_id": line, "to_stock": 1, "damaged": 0}]}),
        )
        .await,
        409,
        "invalid-return-status",
    )
    .await;
    expect_json(
        app.post(
            &format!("/api/v1/admin/returns/{rid}/approve"),
            &json!({"note": "ok"}),
        )
        .await,
        200,
    )
    .await;
    let received = expect_json(
        app.post(
            &format!("/api/v1/admin/returns/{rid}/receive"),
            &json!({"lines": [{"line_id": line, "to_stock": 1, "damaged": 0}]}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(received["status"], "refunded");
    assert_eq!(received["refund_amount"], 30000);
    assert_eq!(
        stock(&app, sku).await["on_hand"],
        3,
        "the returned pair is back on the shelf"
    );
    let detail = expect_json(app.get(&format!("/api/v1/admin/orders/{id}")).await, 200).await;
    assert_eq!(detail["refunds"][0]["amount"], 30000);
    assert_eq!(detail["refunds"][0]["status"], "pending");

    // Exchange the other pair; it came back damaged, and a free replacement is made.
    let ex = expect_json(
        customer.post(&format!("/api/v1/orders/{number}/returns"), &json!({"kind": "exchange", "reason": "scuffed", "lines": [{"line_id": line, "quantity": 1}]})).await,
        201,
    )
    .await;
    let xid = ex["id"].as_i64().unwrap();
    expect_json(
        app.post(&format!("/api/v1/admin/returns/{xid}/approve"), &json!({}))
            .await,
        200,
    )
    .await;
    let replaced = expect_json(
        app.post(
            &format!("/api/v1/admin/returns/{xid}/receive"),
            &json!({"lines": [{"line_id": line, "to_stock": 0, "damaged": 1}]}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(replaced["status"], "replaced");
    let replacement = expect_json(
        app.get(&format!(
            "/api/v1/admin/orders/{}",
            replaced["replacement_order_id"]
        ))
        .await,
        200,
    )
    .await;
    assert_eq!(replacement["status"], "paid");
    assert_eq!(replacement["total"], 0);
    assert_eq!(replacement["lines"][0]["sku_code"], "BOOT-42");
    let s = stock(&app, sku).await;
    assert_eq!(
        (
            s["on_hand"].as_i64(),
            s["damaged"].as_i64(),
            s["reserved"].as_i64()
        ),
        (Some(3), Some(1), Some(1))
    );
    app.shutdown().await;
}

async fn staff_edit_a_pending_order_under_a_lock(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let shop = open_shop(&app).await;
    let (_, pen) = listed_product(&app, "PEN-1", 500, 10).await;
    let (_, ink) = listed_product(&app, "INK-1", 300, 10).await;
    let customer = buyer(&app, "edit@example.com").await;
    customer.add(pen, 2).await;
    let order = expect_json(customer.checkout(&shop, "edit", json!({})).await, 201).await;
    let id = order["id"].as_i64().unwrap();
    assert_eq!(order["total"], 1000 + 1000);
    let line = order["lines"][0]["id"].as_i64().unwrap();

    // A second staff member holding orders.write.
    let clerk = staff_member(&app, "clerk@example.com", &["orders.read", "orders.write"]).await;

    expect_json(
        app.post_empty(&format!("/api/v1/admin/orders/{id}/lock"))
            .await,
        200,
    )
    .await;
    let edit = json!({"add": [{"sku_id": ink, "quantity": 1}]});
    expect_problem(
        clerk
            .post(&format!("/api/v1/admin/orders/{id}/edit"), &edit)
            .await,
        423,
        "order-locked",
    )
    .await;
    expect_problem(
        clerk
            .post_empty(&format!("/api/v1/admin/orders/{id}/unlock"))
            .await,
        423,
        "order-locked",
    )
    .await;

    // A dry run shows the difference and keeps nothing.
    let preview = expect_json(
        app.post(
            &format!("/api/v1/admin/orders/{id}/edit"),
            &json!({"add": [{"sku_id": ink, "quantity": 1}], "dry_run": true}),
        )
        .await,
        200,
    )
    .await;
    // Ink adds 300 and 400 g, which takes the parcel into the second kilogram (+500).
    assert_eq!(preview["difference"], 800);
    assert_eq!(stock(&app, ink).await["reserved"], 0);
    let current = expect_json(app.get(&format!("/api/v1/admin/orders/{id}")).await, 200).await;
    assert_eq!(current["total"], 2000);

    let edited = expect_json(
        app.post(
            &format!("/api/v1/admin/orders/{id}/edit"),
            &json!({"version": current["version"], "add": [{"sku_id": ink, "quantity": 1}],
                "quantities": [{"line_id": line, "quantity": 3}],
                "adjustments": [{"line_id": line, "amount": -200, "reason": "scratched display model"}]}),
        )
        .await,
        200,
    )
    .await;
    // 3 pens (1500 − 200) + ink 300 + shipping for 1.6 kg (1000 + 500).
    assert_eq!(edited["after"]["total"], 1300 + 300 + 1500);
    assert_eq!(edited["before"]["total"], 2000);
    assert_eq!(edited["difference"], 3100 - 2000);
    assert_eq!(edited["order"]["amount_due"], 3100);
    assert_eq!(stock(&app, pen).await["reserved"], 3);
    assert_eq!(stock(&app, ink).await["reserved"], 1);
    // The old version is stale now.
    expect_problem(
        app.post(
            &format!("/api/v1/admin/orders/{id}/edit"),
            &json!({"version": current["version"], "remove": [line]}),
        )
        .await,
        409,
        "stale-version",
    )
    .await;
    let detail = expect_json(app.get(&format!("/api/v1/admin/orders/{id}")).await, 200).await;
    let edits: Vec<&Value> = detail["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["action"] == "edited")
        .collect();
    assert_eq!(edits.len(), 1, "the dry run left no history");
    assert_eq!(edits[0]["detail"]["difference"], 1100);
    assert_eq!(
        edits[0]["detail"]["adjustments"][0]["reason"],
        "scratched display model"
    );
    let pen_line = detail["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["sku_code"] == "PEN-1")
        .unwrap();
    assert_eq!(pen_line["adjustment_reason"], "scratched display model");

    expect_json(
        app.post_empty(&format!("/api/v1/admin/orders/{id}/unlock"))
            .await,
        200,
    )
    .await;
    expect_json(
        clerk
            .post(
                &format!("/api/v1/admin/orders/{id}/edit"),
                &json!({"dry_run": true}),
            )
            .await,
        200,
    )
    .await;
    clerk.shutdown().await;
    app.shutdown().await;
}

async fn splitting_an_order_keeps_its_total(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let shop = open_shop(&app).await;
    let (_, a) = listed_product(&app, "SPL-A", 999, 10).await;
    let (_, b) = listed_product(&app, "SPL-B", 1234, 10).await;
    let customer = buyer(&app, "split@example.com").await;
    customer.add(a, 3).await;
    customer.add(b, 2).await;
    let order = expect_json(customer.checkout(&shop, "split", json!({})).await, 201).await;
    let id = order["id"].as_i64().unwrap();
    let total = order["total"].as_i64().unwrap();
    let line_a = order["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["sku_code"] == "SPL-A")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let line_b = order["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["sku_code"] == "SPL-B")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    expect_problem(
        app.post(&format!("/api/v1/admin/orders/{id}/split"), &json!({"parts": [[{"line_id": line_a, "quantity": 3}, {"line_id": line_b, "quantity": 2}]]})).await,
        422,
        "validation-failed",
    )
    .await;
    let split = expect_json(
        app.post(&format!("/api/v1/admin/orders/{id}/split"), &json!({"parts": [[{"line_id": line_a, "quantity": 1}], [{"line_id": line_b, "quantity": 2}]]})).await,
        200,
    )
    .await;
    let created = split["created"].as_array().unwrap();
    assert_eq!(created.len(), 2);
    let sum: i64 = split["original"]["total"].as_i64().unwrap()
        + created
            .iter()
            .map(|o| o["total"].as_i64().unwrap())
            .sum::<i64>();
    assert_eq!(sum, total, "the parts add up to the original total");
    assert_eq!(split["original"]["lines"].as_array().unwrap().len(), 1);
    assert_eq!(split["original"]["lines"][0]["quantity"], 2);
    assert_eq!(created[0]["lines"][0]["quantity"], 1);
    assert_eq!(created[1]["lines"][0]["sku_code"], "SPL-B");
    assert_eq!(created[0]["parent_order_id"], id);
    assert_eq!(created[0]["status"], "pending_payment");
    // Stock reserved is unchanged by a split.
    assert_eq!(stock(&app, a).await["reserved"], 3);
    // Each part is an order of its own: cancelling one releases only its units.
    expect_json(
        app.post(
            &format!("/api/v1/admin/orders/{}/cancel", created[1]["id"]),
            &json!({"reason": "split test"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(stock(&app, b).await["reserved"], 0);
    assert_eq!(stock(&app, a).await["reserved"], 3);
    let detail = expect_json(app.get(&format!("/api/v1/admin/orders/{id}")).await, 200).await;
    assert!(
        detail["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["action"] == "split")
    );
    app.shutdown().await;
}

/// A promotion stored the way the admin stores it.
async fn promotion(app: &TestApp, kind: &str, rule: Value, usage_limit: Option<i64>) -> i64 {
    use bazaar::promotions::entity::promotion;
    use sea_orm::{ActiveValue::Set, EntityTrait};
    let now = chrono::Utc::now();
    promotion::Entity::insert(promotion::ActiveModel {
        version: Set(1),
        name: Set(format!("{kind} promotion")),
        description: Set(String::new()),
        kind: Set(kind.into()),
        rule: Set(rule.to_string()),
        priority: Set(10),
        stacking: Set("stackable".into()),
        starts_at: Set(None),
        ends_at: Set(None),
        active: Set(true),
        usage_limit: Set(usage_limit),
        usage_limit_per_customer: Set(None),
        used_count: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec_with_returning(app.state().db.writer())
    .await
    .unwrap()
    .id
}

async fn coupon(app: &TestApp, promotion_id: i64, code: &str, max_uses: Option<i64>) {
    use bazaar::promotions::entity::coupon;
    use sea_orm::{ActiveValue::Set, EntityTrait};
    let now = chrono::Utc::now();
    coupon::Entity::insert(coupon::ActiveModel {
        version: Set(1),
        promotion_id: Set(promotion_id),
        code: Set(code.into()),
        batch: Set(None),
        max_uses: Set(max_uses),
        used_count: Set(0),
        customer_id: Set(None),
        expires_at: Set(None),
        active: Set(true),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec(app.state().db.writer())
    .await
    .unwrap();
}

async fn cancelling_gives_back_stock_coupons_and_promotion_uses(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let shop = open_shop(&app).await;
    let (_, sku) = listed_product(&app, "CPN-1", 10000, 10).await;
    let cart_promo = promotion(
        &app,
        "cart",
        json!({"conditions": [{"type": "min_subtotal", "amount": 10000}], "actions": [{"type": "percent_off", "percent_bp": 1000}]}),
        Some(1),
    )
    .await;
    let coupon_promo = promotion(
        &app,
        "coupon",
        json!({"conditions": [], "actions": [{"type": "amount_off", "amount": 500}]}),
        None,
    )
    .await;
    coupon(&app, coupon_promo, "WELCOME5", Some(1)).await;

    let first = buyer(&app, "first@example.com").await;
    first.add(sku, 1).await;
    let cart = expect_json(
        first
            .put("/api/v1/cart/coupons", &json!({"codes": ["welcome5"]}))
            .await,
        200,
    )
    .await;
    assert_eq!(cart["discount"], 1000 + 500, "10% off 100.00 and 5.00 off");
    let ids: Vec<i64> = cart["promotions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["promotion_id"].as_i64().unwrap())
        .collect();
    assert!(
        ids.contains(&cart_promo) && ids.contains(&coupon_promo),
        "{cart}"
    );
    assert!(
        !cart["lines"][0]["savings"].as_array().unwrap().is_empty(),
        "each line says which promotions lowered it"
    );
    let order = expect_json(first.checkout(&shop, "cpn", json!({})).await, 201).await;
    assert_eq!(order["discount"], 1500);
    assert_eq!(order["promotions"].as_array().unwrap().len(), 2);

    // The single-use coupon and the once-only promotion are used up for the next buyer.
    let second = buyer(&app, "second@example.com").await;
    second.add(sku, 1).await;
    let cart = expect_json(
        second
            .put("/api/v1/cart/coupons", &json!({"codes": ["WELCOME5"]}))
            .await,
        200,
    )
    .await;
    assert_eq!(cart["rejected_codes"][0]["code"], "WELCOME5");
    assert_eq!(cart["discount"], 0);
    expect_problem(
        second.checkout(&shop, "cpn2", json!({})).await,
        422,
        "validation-failed",
    )
    .await;

    // Cancelling the first order gives the uses back.
    let number = order["number"].as_str().unwrap();
    let cancelled = expect_json(
        first
            .post(&format!("/api/v1/orders/{number}/cancel"), &json!({}))
            .await,
        200,
    )
    .await;
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(stock(&app, sku).await["reserved"], 0);
    let cart = expect_json(second.get("/api/v1/cart").await, 200).await;
    assert_eq!(
        cart["rejected_codes"].as_array().unwrap().len(),
        0,
        "{cart}"
    );
    assert_eq!(cart["discount"], 1500);
    expect_json(second.checkout(&shop, "cpn3", json!({})).await, 201).await;
    app.shutdown().await;
}

async fn dashboard_counts_the_shop(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let shop = open_shop(&app).await;
    let (_, sku) = listed_product(&app, "DSH-1", 700, 2).await;
    listed_product(&app, "DSH-0", 700, 0).await;
    expect_json(
        app.post(
            "/api/v1/admin/products",
            &json!({"title": "Draft", "slug": "draft", "skus": [{"code": "DRF", "price": 1}]}),
        )
        .await,
        201,
    )
    .await;
    expect_json(
        app.request(
            reqwest::Method::PATCH,
            &format!("/api/v1/admin/inventory/{sku}"),
        )
        .json(&json!({"safety_stock": 5}))
        .send()
        .await
        .unwrap(),
        200,
    )
    .await;
    let customer = buyer(&app, "dash@example.com").await;
    customer.add(sku, 1).await;
    let order = expect_json(customer.checkout(&shop, "dash", json!({})).await, 201).await;
    expect_json(
        app.post(
            &format!("/api/v1/admin/orders/{}/mark-paid", order["id"]),
            &json!({"reference": "x"}),
        )
        .await,
        200,
    )
    .await;
    let d = expect_json(app.get("/api/v1/admin/dashboard").await, 200).await;
    assert_eq!(d["customers"]["total"], 1);
    assert_eq!(d["customers"]["new_today"], 1);
    assert_eq!(d["orders"]["paid"], 1);
    assert_eq!(d["orders"]["placed_today"], 1);
    assert_eq!(d["orders"]["revenue_today"], order["total"]);
    assert_eq!(d["products"]["listed"], 2);
    assert_eq!(d["products"]["unlisted"], 1);
    assert_eq!(d["products"]["out_of_stock"], 1);
    assert_eq!(d["stock"]["low_stock_skus"], 1);
    // Staff without the permission are refused.
    let other = staff_member(&app, "nodash@example.com", &["orders.read"]).await;
    expect_problem(other.get("/api/v1/admin/dashboard").await, 403, "forbidden").await;
    other.shutdown().await;
    app.shutdown().await;
}

async fn gift_certificate(app: &TestApp, amount: i64) -> String {
    let created = expect_json(
        app.post(
            "/api/v1/admin/gift-certificates/batches",
            &json!({"count": 1, "amount": amount}),
        )
        .await,
        201,
    )
    .await;
    created[0]["code"].as_str().unwrap().to_owned()
}

async fn balance(customer: &crate::shop::Buyer, code: &str) -> i64 {
    expect_json(
        customer
            .get(&format!("/api/v1/gift-certificates/{code}"))
            .await,
        200,
    )
    .await["balance"]
        .as_i64()
        .unwrap()
}

async fn gift_certificates_pay_at_checkout_and_come_back_on_cancel(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let shop = open_shop(&app).await;
    let (_, sku) = listed_product(&app, "GIFT-1", 4000, 10).await;
    let small = gift_certificate(&app, 1500).await;
    let large = gift_certificate(&app, 100_000).await;
    let customer = buyer(&app, "gift@example.com").await;

    // Part of the order: the rest is due from a payment.
    customer.add(sku, 1).await;
    let order = expect_json(
        customer
            .checkout(
                &shop,
                "gift-1",
                json!({"gift_certificates": [{"code": small}]}),
            )
            .await,
        201,
    )
    .await;
    assert_eq!(order["total"], 5000);
    assert_eq!(order["gift_certificate_amount"], 1500);
    assert_eq!(order["amount_due"], 3500);
    assert_eq!(order["status"], "pending_payment");
    assert_eq!(balance(&customer, &small).await, 0);
    // Cancelling gives the money back to the certificate.
    let number = order["number"].as_str().unwrap();
    expect_json(
        customer
            .post(&format!("/api/v1/orders/{number}/cancel"), &json!({}))
            .await,
        200,
    )
    .await;
    assert_eq!(balance(&customer, &small).await, 1500);

    // The whole order: paid at once, nothing due, no time-out.
    customer.add(sku, 2).await;
    let paid = expect_json(
        customer
            .checkout(
                &shop,
                "gift-2",
                json!({"gift_certificates": [{"code": small}, {"code": large}]}),
            )
            .await,
        201,
    )
    .await;
    assert_eq!(paid["total"], 9000);
    assert_eq!(paid["gift_certificate_amount"], 9000);
    assert_eq!(paid["amount_due"], 0);
    assert_eq!(paid["status"], "paid");
    assert_eq!(balance(&customer, &small).await, 0);
    assert_eq!(balance(&customer, &large).await, 100_000 - 7500);

    // An unknown certificate refuses the checkout and leaves nothing behind.
    customer.add(sku, 1).await;
    expect_problem(
        customer
            .checkout(
                &shop,
                "gift-3",
                json!({"gift_certificates": [{"code": "NOPE-NOPE-NOPE-NOPE"}]}),
            )
            .await,
        422,
        "validation-failed",
    )
    .await;
    assert_eq!(
        stock(&app, sku).await["reserved"],
        2,
        "the refused checkout reserved nothing"
    );
    app.shutdown().await;
}

async fn paying_issues_the_gift_coupons_an_order_earned(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let shop = open_shop(&app).await;
    let (_, sku) = listed_product(&app, "EARN-1", 20000, 5).await;
    let next_time = promotion(
        &app,
        "coupon",
        json!({"conditions": [], "actions": [{"type": "amount_off", "amount": 1000}]}),
        None,
    )
    .await;
    promotion(
        &app,
        "cart",
        json!({"conditions": [{"type": "min_subtotal", "amount": 15000}],
            "actions": [{"type": "gift_coupon", "promotion_id": next_time}, {"type": "bonus_points", "points": 200}]}),
        None,
    )
    .await;
    let customer = buyer(&app, "earn@example.com").await;
    customer.add(sku, 1).await;
    let order = expect_json(customer.checkout(&shop, "earn", json!({})).await, 201).await;
    assert_eq!(order["bonus_points"], 200);
    let coupons = format!("/api/v1/admin/promotions/{next_time}/coupons");
    assert_eq!(
        expect_json(app.get(&coupons).await, 200).await["total"],
        0,
        "nothing before payment"
    );
    expect_json(
        app.post(
            &format!("/api/v1/admin/orders/{}/mark-paid", order["id"]),
            &json!({"reference": "T-1"}),
        )
        .await,
        200,
    )
    .await;
    let issued = expect_json(app.get(&coupons).await, 200).await;
    assert_eq!(issued["total"], 1);
    let code = issued["items"][0]["code"].as_str().unwrap().to_owned();
    // The coupon is the customer's own, single use.
    customer.add(sku, 1).await;
    let cart = expect_json(
        customer
            .put("/api/v1/cart/coupons", &json!({"codes": [code]}))
            .await,
        200,
    )
    .await;
    assert!(
        cart["promotions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["promotion_id"] == next_time),
        "{cart}"
    );
    let stranger = buyer(&app, "stranger@example.com").await;
    stranger.add(sku, 1).await;
    let cart = expect_json(
        stranger
            .put("/api/v1/cart/coupons", &json!({"codes": [code]}))
            .await,
        200,
    )
    .await;
    assert_eq!(
        cart["rejected_codes"][0]["reason"],
        "this coupon belongs to another customer"
    );
    app.shutdown().await;
}
