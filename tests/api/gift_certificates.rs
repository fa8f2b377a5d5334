//! Gift certificates: batches with unique codes and their issue movements, emailing them,
//! redemption at checkout (partial, race-safe, never below zero), restoring a cancelled
//! order's share, the customer's balance lookup and staff adjustments.

use std::collections::HashSet;

use bazaar::config::{Config, SmtpConfig, SmtpSecurity};
use bazaar::platform::ApiError;
use bazaar::promotions::gift_certificates::{redeem, restore_for_order};
use chrono::Utc;
use serde_json::{Value, json};

use crate::harness::{
    Backend, TestApp, both_backends, create_staff, expect_json, expect_problem, login,
    login_as_superuser, signed_in_customer, spawn, spawn_with,
};
use crate::recommendations::insert_order;
use crate::smtp::SmtpSink;

both_backends!(
    batches_have_unique_codes_and_issue_movements,
    certificates_are_emailed_one_by_one_or_by_batch,
    redeeming_takes_what_is_there_then_refuses,
    concurrent_redemptions_never_overdraw,
    restoring_a_cancelled_order_is_idempotent,
    customers_look_up_their_balance,
    staff_adjust_balances_but_never_below_zero,
);

const ADMIN: &str = "/api/v1/admin/gift-certificates";

async fn issue(app: &TestApp, body: Value) -> Vec<Value> {
    let created = expect_json(app.post(&format!("{ADMIN}/batches"), &body).await, 201).await;
    created.as_array().unwrap().clone()
}

/// One certificate worth `amount`; returns its JSON.
async fn one(app: &TestApp, amount: i64) -> Value {
    issue(app, json!({"count": 1, "amount": amount}))
        .await
        .remove(0)
}

async fn detail(app: &TestApp, certificate: &Value) -> Value {
    expect_json(
        app.get(&format!("{ADMIN}/{}", certificate["id"])).await,
        200,
    )
    .await
}

/// Checks the ledger rule: the movements sum to the balance and no balance was negative.
async fn assert_ledger(app: &TestApp, certificate: &Value) -> Value {
    let detail = detail(app, certificate).await;
    let movements = detail["movements"].as_array().unwrap();
    let sum: i64 = movements.iter().map(|m| m["delta"].as_i64().unwrap()).sum();
    assert_eq!(sum, detail["balance"].as_i64().unwrap(), "{detail}");
    assert!(
        movements
            .iter()
            .all(|m| m["balance_after"].as_i64().unwrap() >= 0),
        "{detail}"
    );
    assert_eq!(
        movements.last().map(|m| &m["balance_after"]),
        Some(&detail["balance"]),
        "the last movement leaves the balance: {detail}"
    );
    detail
}

fn code(certificate: &Value) -> String {
    certificate["code"].as_str().unwrap().to_owned()
}

/// `redeem` in a transaction of its own, as checkout would run it.
async fn spend(
    app: &TestApp,
    code: &str,
    amount: i64,
    order_id: i64,
    customer_id: Option<i64>,
) -> Result<i64, ApiError> {
    let txn = app.state().db.begin().await.unwrap();
    let taken = redeem(&txn, code, amount, order_id, customer_id).await?;
    txn.commit().await.unwrap();
    Ok(taken)
}

fn assert_refused(result: Result<i64, ApiError>, why: &str) {
    let err = result.expect_err(why);
    let problem = err.problem();
    assert_eq!(problem.status, 422, "{why}: {problem:?}");
    assert_eq!(problem.errors[0].field, "gift_certificates", "{why}");
    assert!(problem.detail.contains(why), "{why}: {}", problem.detail);
}

async fn order(app: &TestApp) -> i64 {
    insert_order(app, "pending_payment", false, "CNY", &[]).await
}

async fn batches_have_unique_codes_and_issue_movements(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let response = app
        .post(
            &format!("{ADMIN}/batches"),
            &json!({"count": 50, "amount": 5000, "batch": "spring-2026",
                "expires_at": "2099-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(
        response.headers()["location"],
        "/api/v1/admin/gift-certificates?batch=spring-2026"
    );
    let created = expect_json(response, 201).await;
    let created = created.as_array().unwrap();
    assert_eq!(created.len(), 50);
    let codes: HashSet<String> = created.iter().map(code).collect();
    assert_eq!(codes.len(), 50, "codes are unique");
    for c in created {
        let code = code(c);
        assert_eq!(code.len(), 19, "{code}");
        assert!(
            code.split('-').all(|part| part.len() == 4
                && part
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())),
            "{code}"
        );
        assert!(!code.contains(['0', '1', 'I', 'O']), "{code}");
        assert_eq!(c["balance"], 5000);
        assert_eq!(c["initial_amount"], 5000);
        assert_eq!(c["currency"], "CNY");
        assert_eq!(c["batch"], "spring-2026");
        assert_eq!(c["active"], true);
    }
    let first = assert_ledger(&app, &created[0]).await;
    assert_eq!(first["movements"].as_array().unwrap().len(), 1);
    assert_eq!(first["movements"][0]["delta"], 5000);
    assert_eq!(first["movements"][0]["reason"], "issued");
    assert!(first["movements"][0]["staff_id"].is_i64());

    let listed = expect_json(
        app.get(&format!("{ADMIN}?batch=spring-2026&per_page=10"))
            .await,
        200,
    )
    .await;
    assert_eq!(listed["total"], 50);
    assert_eq!(listed["items"].as_array().unwrap().len(), 10);
    // A code's start, as a person types it: any case, dashes or not.
    let typed = code(&created[7]).replace('-', "")[..9].to_lowercase();
    let found = expect_json(app.get(&format!("{ADMIN}?q={typed}")).await, 200).await;
    assert!(
        found["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == created[7]["id"])
    );
    assert!(found["total"].as_u64().unwrap() < 50);
    expect_problem(app.get(&format!("{ADMIN}?q=%25")).await, 400, "bad-request").await;

    // An unnamed batch gets a name; certificates bound to customers and addressed.
    signed_in_customer(&app, "ann@example.com").await;
    let ann = customer_id(&app, "ann@example.com").await;
    let bound = issue(
        &app,
        json!({"count": 2, "amount": 100, "customer_ids": [ann, ann],
            "emails": ["x@example.com", "y@example.com"]}),
    )
    .await;
    assert!(bound[0]["batch"].as_str().unwrap().starts_with("gc-"));
    assert_eq!(bound[0]["batch"], bound[1]["batch"]);
    assert_eq!(bound[1]["customer_id"], ann);
    assert_eq!(bound[1]["email"], "y@example.com");
    let mine = expect_json(app.get(&format!("{ADMIN}?customer_id={ann}")).await, 200).await;
    assert_eq!(mine["total"], 2);

    // Bad requests name their fields; nothing is issued.
    for (body, field) in [
        (json!({"count": 0, "amount": 100}), "count"),
        (json!({"count": 1001, "amount": 100}), "count"),
        (json!({"count": 1, "amount": 0}), "amount"),
        (
            json!({"count": 1, "amount": 100, "expires_at": "2001-01-01T00:00:00Z"}),
            "expires_at",
        ),
        (
            json!({"count": 2, "amount": 100, "customer_ids": [ann]}),
            "customer_ids",
        ),
        (
            json!({"count": 1, "amount": 100, "customer_ids": [999_999]}),
            "customer_ids",
        ),
        (
            json!({"count": 1, "amount": 100, "emails": ["nope"]}),
            "emails[0]",
        ),
        (
            json!({"count": 1, "amount": 100, "batch": "no spaces"}),
            "batch",
        ),
    ] {
        let problem = expect_problem(
            app.post(&format!("{ADMIN}/batches"), &body).await,
            422,
            "validation-failed",
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], field, "{body}");
    }
    expect_problem(
        app.post(
            &format!("{ADMIN}/batches"),
            &json!({"count": 1, "amount": 100, "batch": "spring-2026"}),
        )
        .await,
        409,
        "gift-certificate-batch-exists",
    )
    .await;
    let all = expect_json(app.get(ADMIN).await, 200).await;
    assert_eq!(all["total"], 52);

    // Staff without the permission neither see nor issue certificates; with `read`, they
    // see but do not issue.
    create_staff(
        &app,
        "clerk@example.com",
        "a long clerk password",
        false,
        &["promotions.gift_certificates.read"],
    )
    .await;
    let response = login(&app, "clerk@example.com", "a long clerk password").await;
    assert_eq!(response.status(), 200);
    expect_json(app.get(ADMIN).await, 200).await;
    expect_problem(
        app.post(
            &format!("{ADMIN}/batches"),
            &json!({"count": 1, "amount": 1}),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
}

async fn customer_id(app: &TestApp, email: &str) -> i64 {
    bazaar::customers::service::find_account_by_email(app.state().db.writer(), email)
        .await
        .unwrap()
        .expect("no such customer")
        .id
}

fn smtp(config: &mut Config, sink: &SmtpSink) {
    config.jobs.poll_interval_ms = 50;
    config.email.smtp = Some(SmtpConfig {
        host: "127.0.0.1".into(),
        port: sink.port,
        security: SmtpSecurity::None,
        username: None,
        password: None,
        timeout_secs: 5,
    });
}

async fn certificates_are_emailed_one_by_one_or_by_batch(backend: Backend) {
    let sink = SmtpSink::start().await;
    let app = spawn_with(backend, |c| {
        smtp(c, &sink);
        c.shop.name = "Tea House".into();
    })
    .await;
    login_as_superuser(&app).await;

    // One certificate, to its own address.
    let single = issue(
        &app,
        json!({"count": 1, "amount": 12_550, "emails": ["ann@example.com"],
            "expires_at": "2099-06-30T12:00:00Z"}),
    )
    .await
    .remove(0);
    let sent = expect_json(
        app.post(&format!("{ADMIN}/{}/send", single["id"]), &json!({}))
            .await,
        202,
    )
    .await;
    assert_eq!(sent["to"], "ann@example.com");
    let message = &sink.wait_for(1).await[0];
    assert_eq!(message.rcpt_to, ["ann@example.com"]);
    let data = &message.data;
    assert!(
        data.contains(&code(&single)),
        "the code is in the email: {data}"
    );
    assert!(data.contains("CNY 125.50"), "the amount, formatted: {data}");
    assert!(data.contains("2099-06-30"), "the expiry: {data}");
    assert!(data.contains("Tea House"), "{data}");
    assert!(detail(&app, &single).await["sent_at"].is_string());

    // Another address on request; the customer's own when the certificate has none.
    expect_json(
        app.post(
            &format!("{ADMIN}/{}/send", single["id"]),
            &json!({"email": "bob@example.com"}),
        )
        .await,
        202,
    )
    .await;
    sink.wait_for(2).await;
    signed_in_customer(&app, "carol@example.com").await;
    let carol = customer_id(&app, "carol@example.com").await;
    let hers = issue(
        &app,
        json!({"count": 1, "amount": 100, "customer_ids": [carol]}),
    )
    .await
    .remove(0);
    let sent = expect_json(
        app.post(&format!("{ADMIN}/{}/send", hers["id"]), &json!({}))
            .await,
        202,
    )
    .await;
    assert_eq!(sent["to"], "carol@example.com");
    let received = sink.wait_for(3).await;
    assert_eq!(received[2].rcpt_to, ["carol@example.com"]);

    // Nobody to send to; a deactivated certificate; a malformed address.
    let nobody = one(&app, 100).await;
    expect_problem(
        app.post(&format!("{ADMIN}/{}/send", nobody["id"]), &json!({}))
            .await,
        409,
        "no-email",
    )
    .await;
    let problem = expect_problem(
        app.post(
            &format!("{ADMIN}/{}/send", nobody["id"]),
            &json!({"email": "not an address"}),
        )
        .await,
        422,
        "validation-failed",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "email");
    let off = expect_json(
        app.patch(
            &format!("{ADMIN}/{}", nobody["id"]),
            &json!({"active": false, "version": nobody["version"]}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(off["active"], false);
    expect_problem(
        app.post(
            &format!("{ADMIN}/{}/send", nobody["id"]),
            &json!({"email": "dan@example.com"}),
        )
        .await,
        409,
        "gift-certificate-unusable",
    )
    .await;

    // A whole batch: every certificate to its address, each once; a deactivated one is
    // skipped.
    let batch = issue(
        &app,
        json!({"count": 3, "amount": 2000, "batch": "vip",
            "emails": ["v1@example.com", "v2@example.com", "v3@example.com"]}),
    )
    .await;
    let response = app
        .patch(
            &format!("{ADMIN}/{}", batch[2]["id"]),
            &json!({"active": false, "version": batch[2]["version"]}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let sent = expect_json(
        app.post(&format!("{ADMIN}/send"), &json!({"batch": "vip"}))
            .await,
        202,
    )
    .await;
    assert_eq!(sent, json!({"sent": 2, "skipped": 1}));
    let received = sink.wait_for(5).await;
    for (i, certificate) in batch[..2].iter().enumerate() {
        let to = format!("v{}@example.com", i + 1);
        let message = received
            .iter()
            .find(|m| m.rcpt_to == [to.clone()])
            .unwrap_or_else(|| panic!("nothing sent to {to}"));
        assert!(message.data.contains(&code(certificate)));
    }
    let again = expect_json(
        app.post(&format!("{ADMIN}/send"), &json!({"batch": "vip"}))
            .await,
        202,
    )
    .await;
    assert_eq!(again["sent"], 0, "sent ones are not sent again");
    let resent = expect_json(
        app.post(
            &format!("{ADMIN}/send"),
            &json!({"batch": "vip", "resend": true}),
        )
        .await,
        202,
    )
    .await;
    assert_eq!(resent["sent"], 2);
    expect_problem(
        app.post(&format!("{ADMIN}/send"), &json!({"batch": "nope"}))
            .await,
        404,
        "not-found",
    )
    .await;
    // A batch with an unaddressed certificate sends nothing.
    issue(
        &app,
        json!({"count": 2, "amount": 100, "batch": "mixed",
        "emails": ["m@example.com", "m@example.com"]}),
    )
    .await;
    let unaddressed = issue(&app, json!({"count": 1, "amount": 100, "batch": "lonely"}))
        .await
        .remove(0);
    expect_problem(
        app.post(&format!("{ADMIN}/send"), &json!({"batch": "lonely"}))
            .await,
        409,
        "no-email",
    )
    .await;
    assert!(detail(&app, &unaddressed).await["sent_at"].is_null());
}

async fn redeeming_takes_what_is_there_then_refuses(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let certificate = one(&app, 5000).await;
    let spent_code = code(&certificate);
    let (first, second, third) = (order(&app).await, order(&app).await, order(&app).await);

    assert_eq!(
        spend(&app, &spent_code, 3000, first, None).await.unwrap(),
        3000
    );
    // As a person types it.
    let typed = spent_code.replace('-', " ").to_lowercase();
    assert_eq!(
        spend(&app, &typed, 4000, second, None).await.unwrap(),
        2000,
        "takes the rest"
    );
    assert_refused(
        spend(&app, &spent_code, 100, third, None).await,
        "has no balance left",
    );
    let detail = assert_ledger(&app, &certificate).await;
    assert_eq!(detail["balance"], 0);
    let spent: Vec<(i64, i64)> = detail["movements"].as_array().unwrap()[1..]
        .iter()
        .map(|m| {
            (
                m["delta"].as_i64().unwrap(),
                m["order_id"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(spent, [(-3000, first), (-2000, second)]);

    // Unknown, inactive, expired, another currency, another customer's.
    assert_refused(
        spend(&app, "AAAA-BBBB-CCCC-DDDD", 100, third, None).await,
        "does not exist",
    );
    assert_refused(
        spend(&app, "nonsense", 100, third, None).await,
        "does not exist",
    );
    let inactive = one(&app, 100).await;
    let response = app
        .patch(
            &format!("{ADMIN}/{}", inactive["id"]),
            &json!({"active": false, "version": inactive["version"]}),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_refused(
        spend(&app, &code(&inactive), 100, third, None).await,
        "is not active",
    );
    let expiring = one(&app, 100).await;
    let response = app
        .request(
            reqwest::Method::PATCH,
            &format!("{ADMIN}/{}", expiring["id"]),
        )
        .header("if-match", format!("\"{}\"", expiring["version"]))
        .json(&json!({"expires_at": Utc::now() - chrono::Duration::seconds(1)}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_refused(
        spend(&app, &code(&expiring), 100, third, None).await,
        "has expired",
    );
    let dollars = insert_order(&app, "pending_payment", false, "USD", &[]).await;
    let fresh = one(&app, 100).await;
    assert_refused(
        spend(&app, &code(&fresh), 100, dollars, None).await,
        "is in CNY",
    );
    signed_in_customer(&app, "owner@example.com").await;
    let owner = customer_id(&app, "owner@example.com").await;
    let bound = issue(
        &app,
        json!({"count": 1, "amount": 700, "customer_ids": [owner]}),
    )
    .await
    .remove(0);
    assert_refused(
        spend(&app, &code(&bound), 100, third, None).await,
        "belongs to another customer",
    );
    assert_refused(
        spend(&app, &code(&bound), 100, third, Some(owner + 1)).await,
        "belongs to another customer",
    );
    assert_eq!(
        spend(&app, &code(&bound), 100, third, Some(owner))
            .await
            .unwrap(),
        100
    );
    // A refusal leaves the balance alone.
    assert_eq!(assert_ledger(&app, &fresh).await["balance"], 100);
}

async fn concurrent_redemptions_never_overdraw(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let certificate = one(&app, 1000).await;
    let code = code(&certificate);
    let mut orders = Vec::new();
    for _ in 0..20 {
        orders.push(order(&app).await);
    }
    let state = app.state().clone();
    let tasks: Vec<_> = orders
        .into_iter()
        .map(|order_id| {
            let state = state.clone();
            let code = code.clone();
            tokio::spawn(async move {
                let txn = state.db.begin().await.unwrap();
                let taken = redeem(&txn, &code, 70, order_id, None).await;
                if taken.is_ok() {
                    txn.commit().await.unwrap();
                }
                taken
            })
        })
        .collect();
    let mut taken = 0;
    let mut refused = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(amount) => {
                assert!((1..=70).contains(&amount), "{amount}");
                taken += amount;
            }
            Err(err) => {
                assert_eq!(err.problem().status, 422, "{:?}", err.problem());
                refused += 1;
            }
        }
    }
    assert_eq!(taken, 1000, "everything was spent, nothing more");
    assert_eq!(refused, 5, "14 full takes and a partial one, then refusals");
    let detail = assert_ledger(&app, &certificate).await;
    assert_eq!(detail["balance"], 0);
    assert_eq!(detail["movements"].as_array().unwrap().len(), 16);
}

async fn restoring_a_cancelled_order_is_idempotent(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let a = one(&app, 5000).await;
    let b = one(&app, 800).await;
    let (cancelled, kept) = (order(&app).await, order(&app).await);
    spend(&app, &code(&a), 3000, cancelled, None).await.unwrap();
    spend(&app, &code(&b), 3000, cancelled, None).await.unwrap();
    spend(&app, &code(&a), 500, kept, None).await.unwrap();

    for _ in 0..2 {
        let txn = app.state().db.begin().await.unwrap();
        restore_for_order(&txn, cancelled, "order cancelled by the customer")
            .await
            .unwrap();
        txn.commit().await.unwrap();
    }
    let a_after = assert_ledger(&app, &a).await;
    assert_eq!(
        a_after["balance"], 4500,
        "only the cancelled order's share returns"
    );
    let movements = a_after["movements"].as_array().unwrap();
    assert_eq!(
        movements.len(),
        4,
        "one restore movement, however often restored"
    );
    assert_eq!(movements[3]["delta"], 3000);
    assert_eq!(movements[3]["order_id"], cancelled);
    assert_eq!(movements[3]["reason"], "order cancelled by the customer");
    assert_eq!(assert_ledger(&app, &b).await["balance"], 800);

    // Concurrent restores of one order give back once.
    let again = order(&app).await;
    spend(&app, &code(&b), 300, again, None).await.unwrap();
    let state = app.state().clone();
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let state = state.clone();
            tokio::spawn(async move {
                let txn = state.db.begin().await.unwrap();
                restore_for_order(&txn, again, "cancelled").await.unwrap();
                txn.commit().await.unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(assert_ledger(&app, &b).await["balance"], 800);

    // An order that took nothing has nothing to restore.
    let txn = app.state().db.begin().await.unwrap();
    restore_for_order(&txn, kept + 1000, "cancelled")
        .await
        .unwrap();
    txn.commit().await.unwrap();
}

async fn customers_look_up_their_balance(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let shopper = signed_in_customer(&app, "eve@example.com").await;
    signed_in_customer(&app, "frank@example.com").await;
    let eve = customer_id(&app, "eve@example.com").await;
    let frank = customer_id(&app, "frank@example.com").await;
    let open = issue(
        &app,
        json!({"count": 1, "amount": 2500, "expires_at": "2099-01-01T00:00:00Z"}),
    )
    .await
    .remove(0);
    let hers = issue(
        &app,
        json!({"count": 1, "amount": 900, "customer_ids": [eve]}),
    )
    .await
    .remove(0);
    let his = issue(
        &app,
        json!({"count": 1, "amount": 900, "customer_ids": [frank]}),
    )
    .await
    .remove(0);

    let path = |c: &Value| format!("/api/v1/gift-certificates/{}", code(c));
    let balance = expect_json(shopper.get(&path(&open)).await, 200).await;
    assert_eq!(
        balance,
        json!({"code": code(&open), "balance": 2500, "currency": "CNY",
            "expires_at": "2099-01-01T00:00:00Z", "active": true, "usable": true})
    );
    let typed = code(&hers).replace('-', "").to_lowercase();
    let balance = expect_json(
        shopper
            .get(&format!("/api/v1/gift-certificates/{typed}"))
            .await,
        200,
    )
    .await;
    assert_eq!(balance["balance"], 900);
    expect_problem(shopper.get(&path(&his)).await, 404, "not-found").await;
    expect_problem(
        shopper
            .get("/api/v1/gift-certificates/AAAA-BBBB-CCCC-DDDD")
            .await,
        404,
        "not-found",
    )
    .await;
    expect_problem(
        shopper.get("/api/v1/gift-certificates/nonsense").await,
        404,
        "not-found",
    )
    .await;
    let anonymous = app
        .new_client()
        .get(app.url(&path(&open)))
        .send()
        .await
        .unwrap();
    expect_problem(anonymous, 401, "unauthenticated").await;

    // Spent: still shown, no longer usable.
    let spent_on = order(&app).await;
    spend(&app, &code(&open), 2500, spent_on, None)
        .await
        .unwrap();
    let balance = expect_json(shopper.get(&path(&open)).await, 200).await;
    assert_eq!(
        (balance["balance"].as_i64(), balance["usable"].as_bool()),
        (Some(0), Some(false))
    );
}

async fn staff_adjust_balances_but_never_below_zero(backend: Backend) {
    let app = spawn(backend).await;
    let staff_id = login_as_superuser(&app).await;
    let certificate = one(&app, 5000).await;
    let path = format!("{ADMIN}/{}/adjustments", certificate["id"]);

    let credit = expect_json(
        app.post(
            &path,
            &json!({"delta": 500, "reason": "apology for a late parcel"}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(credit["balance_after"], 5500);
    assert_eq!(credit["staff_id"], staff_id);
    assert_eq!(credit["reason"], "apology for a late parcel");
    let debit = expect_json(
        app.post(
            &path,
            &json!({"delta": -5000, "reason": "issued twice by mistake"}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(debit["balance_after"], 500);
    expect_problem(
        app.post(&path, &json!({"delta": -501, "reason": "too much"}))
            .await,
        409,
        "gift-certificate-balance-too-low",
    )
    .await;
    for (body, field) in [
        (json!({"delta": 0, "reason": "nothing"}), "delta"),
        (json!({"delta": 5, "reason": "  "}), "reason"),
    ] {
        let problem = expect_problem(app.post(&path, &body).await, 422, "validation-failed").await;
        assert_eq!(problem["errors"][0]["field"], field);
    }
    expect_problem(
        app.post(
            &format!("{ADMIN}/999999/adjustments"),
            &json!({"delta": 5, "reason": "x"}),
        )
        .await,
        404,
        "not-found",
    )
    .await;
    let detail = assert_ledger(&app, &certificate).await;
    assert_eq!(detail["balance"], 500);
    assert_eq!(detail["movements"].as_array().unwrap().len(), 3);

    // Edits are versioned like every other.
    let stale = app
        .patch(
            &format!("{ADMIN}/{}", certificate["id"]),
            &json!({"active": false, "version": certificate["version"]}),
        )
        .await;
    expect_problem(stale, 409, "stale-version").await;
    let without = app
        .patch(
            &format!("{ADMIN}/{}", certificate["id"]),
            &json!({"active": false}),
        )
        .await;
    expect_problem(without, 428, "precondition-required").await;
}
