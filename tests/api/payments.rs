//! Payments that need no gateway: bank transfers recorded by staff, cash on delivery,
//! refunds of money paid outside a gateway, and which methods a storefront offers.

use serde_json::{Value, json};

use crate::harness::{
    Backend, TestApp, both_backends, expect_json, expect_problem, login_as_superuser, send, spawn,
};
use crate::shop::{Buyer, Shop, buyer, listed_product, open_shop};

both_backends!(
    bank_transfers_are_recorded_audited_and_refunded_once,
    cash_on_delivery_orders_ship_unpaid_and_never_time_out,
    storefront_offers_only_active_methods_of_configured_gateways,
);

/// A payment method staff created; returns its code.
pub async fn payment_method(app: &TestApp, code: &str, provider: &str) -> String {
    expect_json(
        app.post(
            "/api/v1/admin/payment-methods",
            &json!({"code": code, "name": format!("Pay by {code}"), "provider": provider,
                "description": format!("Instructions for {code}.")}),
        )
        .await,
        201,
    )
    .await;
    code.to_owned()
}

/// Checks out one unit of a fresh product; returns the order.
pub async fn placed_order(app: &TestApp, shop: &Shop, customer: &Buyer, code: &str) -> Value {
    let (_, sku) = listed_product(app, code, 12_345, 10).await;
    customer.add(sku, 1).await;
    expect_json(customer.checkout(shop, code, json!({})).await, 201).await
}

/// `POST /orders/{number}/payments` with an Idempotency-Key.
pub async fn start_payment(
    customer: &Buyer,
    order: &Value,
    body: Value,
    key: &str,
) -> reqwest::Response {
    send(
        customer
            .request(
                reqwest::Method::POST,
                &format!(
                    "/api/v1/orders/{}/payments",
                    order["number"].as_str().unwrap()
                ),
            )
            .header("Idempotency-Key", key)
            .json(&body),
    )
    .await
}

/// `POST /admin/orders/{id}/refunds` with an Idempotency-Key.
pub async fn refund(app: &TestApp, order_id: i64, body: Value, key: &str) -> reqwest::Response {
    send(
        app.request(
            reqwest::Method::POST,
            &format!("/api/v1/admin/orders/{order_id}/refunds"),
        )
        .header("Idempotency-Key", key)
        .json(&body),
    )
    .await
}

pub async fn payments_of(app: &TestApp, order_id: i64) -> Vec<Value> {
    let page = expect_json(
        app.get(&format!("/api/v1/admin/payments?order_id={order_id}"))
            .await,
        200,
    )
    .await;
    page["items"].as_array().unwrap().clone()
}

pub async fn payment_detail(app: &TestApp, payment_id: &Value) -> Value {
    expect_json(
        app.get(&format!("/api/v1/admin/payments/{payment_id}"))
            .await,
        200,
    )
    .await
}

async fn bank_transfers_are_recorded_audited_and_refunded_once(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let shop = open_shop(&app).await;
    let method = payment_method(&app, "bank", "manual").await;
    let customer = buyer(&app, "transfer@example.com").await;
    let order = placed_order(&app, &shop, &customer, "LAMP-1").await;
    let id = order["id"].as_i64().unwrap();
    let due = order["amount_due"].as_i64().unwrap();

    // The customer picks bank transfer and is told how to pay.
    let started = expect_json(
        start_payment(&customer, &order, json!({"method": method}), "bank-1").await,
        201,
    )
    .await;
    assert_eq!(started["status"], "pending");
    assert_eq!(started["checkout"]["kind"], "instructions");
    let text = started["checkout"]["text"].as_str().unwrap();
    assert!(
        text.contains("Instructions for bank.") && text.contains(order["number"].as_str().unwrap()),
        "{text}"
    );

    // Staff record the transfer with its proof: the order is paid, once.
    let body = json!({"reference": "ICBC-2026-1123-77", "proof": "statement line 14"});
    let paid = expect_json(
        app.post(&format!("/api/v1/admin/orders/{id}/mark-paid"), &body)
            .await,
        200,
    )
    .await;
    assert_eq!(paid["status"], "paid");
    let again = expect_json(
        app.post(&format!("/api/v1/admin/orders/{id}/mark-paid"), &body)
            .await,
        200,
    )
    .await;
    assert_eq!(
        again["version"], paid["version"],
        "recording the same transfer twice changes nothing"
    );
    let payments = payments_of(&app, id).await;
    assert_eq!(
        payments.len(),
        1,
        "the customer's pending transfer is the one recorded"
    );
    assert_eq!(payments[0]["status"], "succeeded");
    assert_eq!(payments[0]["reference"], "ICBC-2026-1123-77");
    let detail = payment_detail(&app, &payments[0]["id"]).await;
    assert_eq!(detail["ledger"].as_array().unwrap().len(), 1);
    assert_eq!(detail["ledger"][0]["amount"], due);
    let log = expect_json(
        app.get("/api/v1/admin/security-log?event=payment.manual_recorded")
            .await,
        200,
    )
    .await;
    assert_eq!(log["items"].as_array().unwrap().len(), 1, "{log}");
    assert_eq!(log["items"][0]["subject"], format!("order:{id}"));

    // Refunds: a key is required, money paid by transfer goes back by transfer (with its
    // reference), partial refunds add up, and no refund exceeds what was paid.
    expect_problem(
        app.post(
            &format!("/api/v1/admin/orders/{id}/refunds"),
            &json!({"amount": 100, "reason": "scratch"}),
        )
        .await,
        400,
        "idempotency-key-required",
    )
    .await;
    let problem = expect_problem(
        refund(&app, id, json!({"amount": 100, "reason": "scratch"}), "r-0").await,
        422,
        "validation-failed",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "reference");
    let first = expect_json(
        refund(
            &app,
            id,
            json!({"amount": 2_000, "reason": "scratch on the base", "reference": "REFUND-1"}),
            "r-1",
        )
        .await,
        200,
    )
    .await;
    assert_eq!(first["status"], "succeeded");
    // The same request retried with its key is answered from the first, not refunded again.
    let replay = expect_json(
        refund(
            &app,
            id,
            json!({"amount": 2_000, "reason": "scratch on the base", "reference": "REFUND-1"}),
            "r-1",
        )
        .await,
        200,
    )
    .await;
    assert_eq!(replay["id"], first["id"]);
    expect_problem(
        refund(
            &app,
            id,
            json!({"amount": due - 1_999, "reason": "too much", "reference": "REFUND-2"}),
            "r-2",
        )
        .await,
        409,
        "refund-exceeds-payment",
    )
    .await;
    let rest = expect_json(
        refund(
            &app,
            id,
            json!({"amount": due - 2_000, "reason": "returned in full", "reference": "REFUND-3"}),
            "r-3",
        )
        .await,
        200,
    )
    .await;
    assert_eq!(rest["status"], "succeeded");
    let detail = payment_detail(&app, &payments[0]["id"]).await;
    assert_eq!(detail["refunded_amount"], due);
    let ledger: Vec<i64> = detail["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(ledger, [due, -2_000, -(due - 2_000)]);
    assert_eq!(ledger.iter().sum::<i64>(), 0);
    app.shutdown().await;
}

async fn cash_on_delivery_orders_ship_unpaid_and_never_time_out(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let shop = open_shop(&app).await;
    let cod = payment_method(&app, "cod", "cash_on_delivery").await;
    let bank = payment_method(&app, "bank", "manual").await;
    let customer = buyer(&app, "cod@example.com").await;
    let order = placed_order(&app, &shop, &customer, "KETTLE-1").await;
    let id = order["id"].as_i64().unwrap();
    assert!(order["payment_due_at"].is_string());

    // Before choosing COD, an unpaid order cannot go to picking.
    expect_problem(
        app.post_empty(&format!("/api/v1/admin/orders/{id}/ready-for-picking"))
            .await,
        409,
        "invalid-order-status",
    )
    .await;
    let chosen = expect_json(
        start_payment(&customer, &order, json!({"method": cod}), "cod-1").await,
        201,
    )
    .await;
    assert_eq!(chosen["provider"], "cash_on_delivery");
    assert_eq!(chosen["status"], "pending");
    assert_eq!(chosen["checkout"]["kind"], "instructions");
    let now = expect_json(
        customer
            .get(&format!(
                "/api/v1/orders/{}",
                order["number"].as_str().unwrap()
            ))
            .await,
        200,
    )
    .await;
    assert!(
        now["payment_due_at"].is_null(),
        "a COD order waits for the carrier, not a time-out"
    );
    // Choosing again (another key) is refused: the order is paid on delivery.
    expect_problem(
        start_payment(&customer, &order, json!({"method": bank}), "cod-2").await,
        409,
        "cash-on-delivery-chosen",
    )
    .await;
    // Staff send it to picking and ship it unpaid.
    let picking = expect_json(
        app.post_empty(&format!("/api/v1/admin/orders/{id}/ready-for-picking"))
            .await,
        200,
    )
    .await;
    assert_eq!(picking["status"], "ready_for_picking");
    assert!(picking["paid_at"].is_null());
    // Its time-out job, if it ran now, would leave it alone.
    let expired = bazaar::orders::service::expire_unpaid(
        app.state(),
        id,
        chrono::Utc::now() + chrono::Duration::days(30),
    )
    .await
    .unwrap();
    assert!(!expired);
    app.shutdown().await;
}

async fn storefront_offers_only_active_methods_of_configured_gateways(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let shop = open_shop(&app).await;
    // No Alipay keys are configured in this shop, so its method cannot be used.
    let alipay = payment_method(&app, "alipay", "alipay").await;
    let customer = buyer(&app, "methods@example.com").await;
    let order = placed_order(&app, &shop, &customer, "MUG-1").await;
    payment_method(&app, "cod", "cash_on_delivery").await;
    let offered = expect_json(customer.get("/api/v1/payment-methods").await, 200).await;
    let codes: Vec<&str> = offered
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["cod"], "a gateway without keys is not offered");
    expect_problem(
        start_payment(&customer, &order, json!({"method": alipay}), "m-1").await,
        422,
        "provider-unavailable",
    )
    .await;
    let problem = expect_problem(
        start_payment(&customer, &order, json!({"method": "nope"}), "m-2").await,
        422,
        "validation-failed",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "method");
    let bank = payment_method(&app, "bank", "manual").await;
    let method = expect_json(
        app.get("/api/v1/admin/payment-methods?provider=manual")
            .await,
        200,
    )
    .await;
    let method_id = &method["items"][0]["id"];
    expect_json(
        app.patch(
            &format!("/api/v1/admin/payment-methods/{method_id}"),
            &json!({"active": false, "version": method["items"][0]["version"]}),
        )
        .await,
        200,
    )
    .await;
    expect_problem(
        start_payment(&customer, &order, json!({"method": bank}), "m-3").await,
        422,
        "validation-failed",
    )
    .await;
    // A key is required, and nobody pays someone else's order.
    expect_problem(
        customer
            .post(
                &format!(
                    "/api/v1/orders/{}/payments",
                    order["number"].as_str().unwrap()
                ),
                &json!({"method": "bank"}),
            )
            .await,
        400,
        "idempotency-key-required",
    )
    .await;
    let stranger = buyer(&app, "stranger@example.com").await;
    expect_problem(
        start_payment(&stranger, &order, json!({"method": "bank"}), "m-4").await,
        404,
        "not-found",
    )
    .await;
    // Notifications for a gateway the shop does not use find nothing to talk to.
    expect_problem(
        app.post("/api/v1/payments/notify/alipay", &json!({})).await,
        404,
        "not-found",
    )
    .await;
    expect_problem(
        app.post("/api/v1/payments/notify/manual", &json!({})).await,
        404,
        "not-found",
    )
    .await;
    app.shutdown().await;
}
