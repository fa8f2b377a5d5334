//! Paying through each gateway, with the gateway played by its double (tests/api/gateways):
//! signed requests, notifications applied once however often they come, forged and
//! tampered ones refused and logged, amounts that do not match held for review, queries,
//! refunds, and a notification that survives the process dying before applying it.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use serde_json::{Value, json};

use crate::gateways::alipay::AlipayDouble;
use crate::gateways::unionpay::UnionpayDouble;
use crate::gateways::wechat::WechatSandbox;
use crate::gateways::{Notification, SandboxGateway, Tamper};
use crate::harness::{
    Backend, TestApp, both_backends, expect_json, expect_problem, login_as_superuser, spawn_with,
};
use crate::payments::{
    payment_detail, payment_method, payments_of, placed_order, refund, start_payment,
};
use crate::shop::{Buyer, buyer, open_shop};

both_backends!(alipay, wechat_pay, unionpay);

async fn alipay(backend: Backend) {
    pays_refunds_and_refuses_forgeries(backend, Arc::new(AlipayDouble::start().await)).await;
}

async fn wechat_pay(backend: Backend) {
    pays_refunds_and_refuses_forgeries(backend, Arc::new(WechatSandbox::start().await)).await;
}

async fn unionpay(backend: Backend) {
    pays_refunds_and_refuses_forgeries(backend, Arc::new(UnionpayDouble::start().await)).await;
}

/// Sends a notification to Bazaar as the gateway would.
async fn deliver(app: &TestApp, provider: &str, notification: &Notification) -> (u16, String) {
    let mut request = reqwest::Client::new()
        .post(app.url(&format!("/api/v1/payments/notify/{provider}")))
        .header("content-type", notification.content_type)
        .body(notification.body.clone());
    for (name, value) in &notification.headers {
        request = request.header(name, value);
    }
    let response = request.send().await.expect("notification not delivered");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

async fn order_status(app: &TestApp, id: i64) -> Value {
    expect_json(app.get(&format!("/api/v1/admin/orders/{id}")).await, 200).await
}

/// Starts paying `order` with the gateway's method and plays the customer paying at the
/// gateway; returns the payment.
async fn pay_at_gateway(
    gateway: &dyn SandboxGateway,
    customer: &Buyer,
    order: &Value,
    key: &str,
) -> Value {
    let started = expect_json(
        start_payment(customer, order, json!({"method": gateway.provider()}), key).await,
        201,
    )
    .await;
    assert_eq!(started["status"], "pending", "{started}");
    let number = gateway.pay(&started["checkout"]).await;
    assert_eq!(number, started["number"].as_str().unwrap());
    started
}

async fn pays_refunds_and_refuses_forgeries(backend: Backend, gateway: Arc<dyn SandboxGateway>) {
    let provider = gateway.provider();
    let app = spawn_with(backend, |config| gateway.configure(config)).await;
    login_as_superuser(&app).await;
    let shop = open_shop(&app).await;
    payment_method(&app, provider, provider).await;
    let customer = buyer(&app, "payer@example.com").await;

    // Order A: paid through the gateway.
    let a = placed_order(&app, &shop, &customer, "A-1").await;
    let a_id = a["id"].as_i64().unwrap();
    let due = a["amount_due"].as_i64().unwrap();
    let payment = pay_at_gateway(gateway.as_ref(), &customer, &a, "pay-a").await;
    let number = payment["number"].as_str().unwrap().to_owned();
    // A retried request with the same key is the same payment, not a second one.
    let replay = expect_json(
        start_payment(&customer, &a, json!({"method": provider}), "pay-a").await,
        201,
    )
    .await;
    assert_eq!(replay["id"], payment["id"]);

    // Forgeries are refused, logged, and pay nothing.
    let mut forgeries = vec![Tamper::AmountAfterSigning(1), Tamper::WrongKey];
    if provider == "wechat_pay" {
        forgeries.push(Tamper::Stale);
    }
    let genuine = gateway.paid_notification(&number, Tamper::None);
    let (ack_status, ack_body) = {
        // The gateway's success answer, as another order's genuine notification gets it.
        let other = placed_order(&app, &shop, &customer, "X-1").await;
        let other_payment = pay_at_gateway(gateway.as_ref(), &customer, &other, "pay-x").await;
        let n = gateway.paid_notification(other_payment["number"].as_str().unwrap(), Tamper::None);
        deliver(&app, provider, &n).await
    };
    assert_eq!(ack_status, 200);
    for tamper in &forgeries {
        let forged = gateway.paid_notification(&number, *tamper);
        let (status, body) = deliver(&app, provider, &forged).await;
        assert!(
            (status, body.as_str()) != (ack_status, ack_body.as_str()),
            "{tamper:?} was acknowledged like a genuine notification"
        );
    }
    assert_eq!(order_status(&app, a_id).await["status"], "pending_payment");
    let rejected = expect_json(
        app.get("/api/v1/admin/payment-notifications?status=rejected")
            .await,
        200,
    )
    .await;
    assert_eq!(rejected["total"], forgeries.len() as i64, "{rejected}");
    let log = expect_json(
        app.get("/api/v1/admin/security-log?event=payment.notification_rejected")
            .await,
        200,
    )
    .await;
    assert_eq!(log["items"].as_array().unwrap().len(), forgeries.len());

    // The genuine notification, ten times at once: one payment, one ledger row, and every
    // copy gets the gateway's success answer.
    let answers = join_all((0..10).map(|_| deliver(&app, provider, &genuine))).await;
    for answer in &answers {
        assert_eq!(answer, &(ack_status, ack_body.clone()));
    }
    let paid = order_status(&app, a_id).await;
    assert_eq!(paid["status"], "paid");
    let detail = payment_detail(&app, &payment["id"]).await;
    assert_eq!(detail["status"], "succeeded");
    let ledger = detail["ledger"].as_array().unwrap();
    assert_eq!(ledger.len(), 1, "{detail}");
    assert_eq!(ledger[0]["amount"], due);
    let statuses: Vec<&str> = detail["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == "applied").count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|s| **s == "duplicate").count(), 9);
    // Replayed later, still nothing new.
    assert_eq!(
        deliver(&app, provider, &genuine).await,
        (ack_status, ack_body.clone())
    );
    assert_eq!(
        payment_detail(&app, &payment["id"]).await["ledger"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Order B: the gateway (properly signed) reports a different amount: held for review.
    let b = placed_order(&app, &shop, &customer, "B-1").await;
    let b_payment = pay_at_gateway(gateway.as_ref(), &customer, &b, "pay-b").await;
    let short = gateway.paid_notification(
        b_payment["number"].as_str().unwrap(),
        Tamper::SignedAmount(b["amount_due"].as_i64().unwrap() - 1),
    );
    assert_eq!(deliver(&app, provider, &short).await.0, ack_status);
    let held = payment_detail(&app, &b_payment["id"]).await;
    assert_eq!(held["status"], "review");
    assert!(
        held["review_reason"]
            .as_str()
            .unwrap()
            .contains("asked for")
    );
    assert!(held["ledger"].as_array().unwrap().is_empty());
    assert_eq!(
        order_status(&app, b["id"].as_i64().unwrap()).await["status"],
        "pending_payment"
    );

    // Order C: paid at the gateway, the notification lost; staff (or the reconciler) ask.
    let c = placed_order(&app, &shop, &customer, "C-1").await;
    let c_id = c["id"].as_i64().unwrap();
    let c_payment = pay_at_gateway(gateway.as_ref(), &customer, &c, "pay-c").await;
    let queried = expect_json(
        app.post_empty(&format!("/api/v1/admin/payments/{}/query", c_payment["id"]))
            .await,
        200,
    )
    .await;
    assert_eq!(queried["status"], "succeeded", "{queried}");
    assert_eq!(order_status(&app, c_id).await["status"], "paid");

    // A partial refund of A: through the gateway, once.
    let refunded = expect_json(
        refund(
            &app,
            a_id,
            json!({"amount": 1_000, "reason": "late delivery"}),
            "refund-a",
        )
        .await,
        200,
    )
    .await;
    let refund_number = refunded["number"].as_str().unwrap().to_owned();
    if let Some(outcome) = gateway.refund_notification(&refund_number) {
        assert_eq!(refunded["status"], "processing");
        for _ in 0..3 {
            assert_eq!(deliver(&app, provider, &outcome).await.0, ack_status);
        }
    }
    let detail = payment_detail(&app, &payment["id"]).await;
    assert_eq!(detail["refunded_amount"], 1_000, "{detail}");
    let amounts: Vec<i64> = detail["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(amounts, [due, -1_000]);
    assert_eq!(detail["refunds"][0]["status"], "succeeded");
    // More than is left is refused before the gateway is asked.
    expect_problem(
        refund(
            &app,
            a_id,
            json!({"amount": due, "reason": "everything"}),
            "refund-a2",
        )
        .await,
        409,
        "refund-exceeds-payment",
    )
    .await;
    // A refund the gateway refuses is recorded as failed, and staff are told why.
    gateway.refuse_refunds(true);
    expect_problem(
        refund(
            &app,
            c_id,
            json!({"amount": 500, "reason": "goodwill"}),
            "refund-c",
        )
        .await,
        502,
        "gateway-refused",
    )
    .await;
    let failed = expect_json(
        app.get(&format!("/api/v1/admin/refunds?order_id={c_id}"))
            .await,
        200,
    )
    .await;
    assert_eq!(failed["items"][0]["status"], "failed");
    assert!(failed["items"][0]["failure"].is_string());

    // Every request Bazaar sent verified at the gateway with the merchant's public key.
    let requests = gateway.requests();
    assert!(!requests.is_empty() || provider == "alipay");
    for request in &requests {
        assert!(request.signature_valid, "{request:?}");
    }
    let payments = payments_of(&app, a_id).await;
    assert_eq!(payments.len(), 1);
    app.shutdown().await;
}

const BIN: &str = env!("CARGO_BIN_EXE_bazaar");

/// `bazaar serve` on the test app's database and Alipay double, as a separate process.
fn serve(app: &TestApp, data_dir: &std::path::Path, port: u16, crash: bool) -> Child {
    let config = &app.state().config;
    let alipay = config.payments.alipay.as_ref().unwrap();
    let mut command = Command::new(BIN);
    command
        .arg("--data-dir")
        .arg(data_dir)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env_remove("RUST_LOG")
        .env("BAZAAR_LOG__LEVEL", "error")
        .env("BAZAAR_AUTH__BOOTSTRAP_ADMIN", "false")
        .env(
            "BAZAAR_DATABASE__URL",
            config.database.url.as_ref().unwrap().expose(),
        )
        .env("BAZAAR_PAYMENTS__ALIPAY__APP_ID", &alipay.app_id)
        .env("BAZAAR_PAYMENTS__ALIPAY__GATEWAY_URL", &alipay.gateway_url)
        .env(
            "BAZAAR_PAYMENTS__ALIPAY__PRIVATE_KEY_PATH",
            &alipay.private_key_path,
        )
        .env(
            "BAZAAR_PAYMENTS__ALIPAY__ALIPAY_PUBLIC_KEY_PATH",
            &alipay.alipay_public_key_path,
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(redis) = &config.redis.url {
        command
            .env("BAZAAR_REDIS__URL", redis.expose())
            .env("BAZAAR_REDIS__KEY_PREFIX", &config.redis.key_prefix);
    }
    if crash {
        command.env(bazaar::payments::notifications::CRASH_AFTER_STORE_ENV, "1");
    }
    command.spawn().expect("cannot start bazaar serve")
}

async fn wait_ready(child: &mut Child, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("bazaar exited with {status} before it was ready");
        }
        if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/readyz")).await
            && r.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("bazaar did not become ready on port {port}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

both_backends!(a_notification_stored_before_a_crash_is_applied_on_restart);

async fn a_notification_stored_before_a_crash_is_applied_on_restart(backend: Backend) {
    let gateway = AlipayDouble::start().await;
    // No reconciler here: only the restarted process may apply the stored notification.
    let app = spawn_with(backend, |config| {
        gateway.configure(config);
        config.jobs.run_scheduler = false;
    })
    .await;
    login_as_superuser(&app).await;
    let shop = open_shop(&app).await;
    payment_method(&app, "alipay", "alipay").await;
    let customer = buyer(&app, "crash@example.com").await;
    let order = placed_order(&app, &shop, &customer, "CRASH-1").await;
    let id = order["id"].as_i64().unwrap();
    let payment = pay_at_gateway(&gateway, &customer, &order, "crash").await;
    let notification = gateway.paid_notification(payment["number"].as_str().unwrap(), Tamper::None);

    // A second process of the same shop takes the notification, stores it, and dies.
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut doomed = serve(&app, dir.path(), port, true);
    wait_ready(&mut doomed, port).await;
    let mut request = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{port}/api/v1/payments/notify/alipay"
        ))
        .header("content-type", notification.content_type)
        .body(notification.body.clone());
    for (name, value) in &notification.headers {
        request = request.header(name, value);
    }
    assert!(
        request.send().await.is_err(),
        "the process answered instead of dying"
    );
    let status = doomed.wait().unwrap();
    assert!(!status.success());
    let stored = expect_json(
        app.get("/api/v1/admin/payment-notifications?status=received")
            .await,
        200,
    )
    .await;
    assert_eq!(
        stored["total"], 1,
        "the notification was stored before the crash"
    );
    assert_eq!(order_status(&app, id).await["status"], "pending_payment");

    // Restarted, it applies what it stored.
    let mut restarted = serve(&app, dir.path(), port, false);
    wait_ready(&mut restarted, port).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while order_status(&app, id).await["status"] != "paid" {
        assert!(
            Instant::now() < deadline,
            "the stored notification was never applied"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let detail = payment_detail(&app, &payment["id"]).await;
    assert_eq!(detail["ledger"].as_array().unwrap().len(), 1);
    assert_eq!(detail["notifications"][0]["status"], "applied");
    let _ = restarted.kill();
    let _ = restarted.wait();
    app.shutdown().await;
}
