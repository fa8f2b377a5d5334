//! Flash sales (issue 8): the admin's events, the storefront's gate, and the promise that
//! a rush of buyers never gets more than the sale's units: not under 2,000 concurrent
//! attempts, not past a per-customer limit, not when a worker dies mid-batch, not across
//! two instances. Unpaid orders give their units back, and those units sell again.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bazaar::customers::entity::customer;
use bazaar::flash::worker::Consumer;
use bazaar::identity::tokens::{Grant, Subject, sign_access_token};
use bazaar::orders::entity::{order, order_line};
use chrono::{DateTime, SecondsFormat, Utc};
use futures::stream::{self, StreamExt};
use sea_orm::ActiveValue::Set;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use crate::harness::{
    Backend, CustomerClient, LOGIN_PATH, TestApp, both_backends, bounded, create_staff,
    expect_json, expect_problem, header_str, login_as_superuser, new_client, send, spawn,
    spawn_pair, spawn_with,
};
use crate::shop::{listed_product, stock};

both_backends!(
    staff_schedule_edit_and_withdraw_sales_with_stock_carved_out,
    storefront_shows_sales_and_the_gate_refuses_outside_its_rules,
    two_thousand_attempts_for_a_hundred_units_sell_exactly_a_hundred,
    nobody_buys_more_than_the_limit_and_replays_take_nothing_twice,
    a_worker_dying_mid_batch_loses_and_duplicates_nothing,
    unpaid_orders_give_their_units_back_and_they_sell_again,
    an_ended_sale_gives_its_unsold_units_back_to_the_sku,
);

const ADMIN: &str = "/api/v1/admin/flash-sales";
const SALE_PRICE: i64 = 990;
const REGULAR_PRICE: i64 = 4_990;
/// Concurrent requests in flight during a rush.
const CONCURRENCY: usize = 200;
/// How long the workers get to turn accepted purchases into orders.
const ORDER_WAIT: Duration = Duration::from_secs(40);

// ---------------------------------------------------------------------------------------
// Arranging sales and shoppers
// ---------------------------------------------------------------------------------------

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn sale_body(
    sku: i64,
    stock: i64,
    limit: i64,
    starts: DateTime<Utc>,
    ends: DateTime<Utc>,
) -> Value {
    json!({
        "name": format!("Flash {sku}"),
        "sku_id": sku,
        "sale_price": SALE_PRICE,
        "stock": stock,
        "starts_at": rfc3339(starts),
        "ends_at": rfc3339(ends),
        "per_customer_limit": limit,
    })
}

/// Merges the fields of `extra` into `body`.
fn with(mut body: Value, extra: Value) -> Value {
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    body
}

async fn create_sale(app: &TestApp, body: &Value) -> Value {
    expect_json(app.post(ADMIN, body).await, 201).await
}

async fn admin_sale(app: &TestApp, id: i64) -> Value {
    expect_json(app.get(&format!("{ADMIN}/{id}")).await, 200).await
}

/// A sale opening about a second from now for ten minutes; returns once it is live.
async fn live_sale(app: &TestApp, sku: i64, stock: i64, limit: i64, extra: Value) -> i64 {
    let starts = Utc::now() + chrono::Duration::milliseconds(1_200);
    let ends = starts + chrono::Duration::minutes(10);
    let sale = create_sale(
        app,
        &with(sale_body(sku, stock, limit, starts, ends), extra),
    )
    .await;
    let id = sale["id"].as_i64().expect("the sale has no id");
    wait_until_live(app, id).await;
    id
}

/// Waits (bounded) until the admin reports the sale live and its start has passed.
async fn wait_until_live(app: &TestApp, id: i64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let sale = admin_sale(app, id).await;
        let started = sale["starts_at"]
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .is_some_and(|s| s < Utc::now());
        if started && sale["status"] == "live" {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the sale never went live: {sale}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A customer of the shop holding a bearer token.
#[derive(Clone)]
struct Shopper {
    id: i64,
    token: String,
}

/// `n` verified customers inserted directly (no password hashing) with fresh tokens.
async fn shoppers(app: &TestApp, tag: &str, n: usize) -> Vec<Shopper> {
    let state = app.state();
    let db = state.db.writer();
    let now = Utc::now();
    let emails: Vec<String> = (0..n).map(|i| format!("{tag}-{i}@flash.test")).collect();
    for chunk in emails.chunks(250) {
        let rows = chunk.iter().map(|email| customer::ActiveModel {
            version: Set(1),
            email: Set(Some(email.clone())),
            name: Set("Flash Shopper".into()),
            phone: Set(None),
            password_hash: Set(None),
            email_verified_at: Set(Some(now)),
            credentials_changed_at: Set(now),
            is_active: Set(true),
            deleted_at: Set(None),
            note: Set(String::new()),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        });
        customer::Entity::insert_many(rows)
            .exec(db)
            .await
            .expect("cannot insert customers");
    }
    let rows = customer::Entity::find()
        .filter(customer::Column::Email.like(format!("{tag}-%@flash.test")))
        .all(db)
        .await
        .expect("cannot read the customers back");
    let ids: BTreeMap<String, i64> = rows
        .into_iter()
        .filter_map(|c| Some((c.email?, c.id)))
        .collect();
    emails
        .iter()
        .map(|email| {
            let id = *ids.get(email).expect("an inserted customer is missing");
            let token = sign_access_token(
                &state.keys,
                &state.config.auth.tokens,
                &Grant {
                    subject: Subject::Customer(id),
                    scope: vec!["customer".into()],
                    roles: vec!["customer".into()],
                    email: Some(email.clone()),
                    name: "Flash Shopper".into(),
                },
            )
            .expect("cannot sign a token");
            Shopper { id, token }
        })
        .collect()
}

/// A client for rushes: many connections, no cookies.
fn rush_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(CONCURRENCY)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("cannot build an HTTP client")
}

/// What the gate answered one purchase attempt.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    body: Value,
    location: String,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }

    fn purchase_id(&self) -> String {
        self.body["purchase_id"]
            .as_str()
            .unwrap_or_else(|| panic!("no purchase_id in {}", self.body))
            .to_owned()
    }
}

async fn purchase(
    client: &reqwest::Client,
    base: &str,
    sale: i64,
    token: Option<&str>,
    key: Option<&str>,
    body: Value,
) -> Answer {
    let mut request = client
        .post(format!("{base}/api/v1/flash-sales/{sale}/purchase"))
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = send(request).await;
    let status = response.status().as_u16();
    let location = header_str(response.headers(), "location");
    let text = response.text().await.expect("cannot read the answer");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer {
        status,
        body,
        location,
    }
}

/// One attempt of a rush: who, with which key, how many.
struct Attempt {
    shopper: usize,
    key: String,
    quantity: i64,
}

/// Fires `attempts` at `sale` with `CONCURRENCY` in flight, spread over `bases` in turn;
/// returns each attempt's shopper, key and answer.
async fn rush(
    bases: &[String],
    sale: i64,
    shoppers: &[Shopper],
    attempts: Vec<Attempt>,
) -> Vec<(usize, String, Answer)> {
    let client = rush_client();
    stream::iter(attempts.into_iter().enumerate())
        .map(|(n, attempt)| {
            let client = &client;
            let base = &bases[n % bases.len()];
            let token = &shoppers[attempt.shopper].token;
            async move {
                let answer = purchase(
                    client,
                    base,
                    sale,
                    Some(token),
                    Some(&attempt.key),
                    json!({"quantity": attempt.quantity}),
                )
                .await;
                (attempt.shopper, attempt.key, answer)
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await
}

async fn purchase_status(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    purchase_id: &str,
) -> Value {
    expect_json(
        send(
            client
                .get(format!("{base}/api/v1/flash-sales/purchases/{purchase_id}"))
                .bearer_auth(token),
        )
        .await,
        200,
    )
    .await
}

/// Polls (bounded) until every `(token, purchase id)` is `ordered`; returns the last view
/// of each purchase, by purchase id.
async fn wait_ordered(base: &str, purchases: &[(String, String)]) -> BTreeMap<String, Value> {
    wait_for_status(base, purchases, "ordered", ORDER_WAIT).await
}

async fn wait_for_status(
    base: &str,
    purchases: &[(String, String)],
    status: &str,
    within: Duration,
) -> BTreeMap<String, Value> {
    let client = rush_client();
    let deadline = Instant::now() + within;
    let mut views = BTreeMap::new();
    loop {
        let waiting: Vec<&(String, String)> = purchases
            .iter()
            .filter(|(_, id)| views.get(id).is_none_or(|v: &Value| v["status"] != status))
            .collect();
        if waiting.is_empty() {
            return views;
        }
        let seen: Vec<(String, Value)> = stream::iter(waiting)
            .map(|(token, id)| {
                let client = &client;
                async move { (id.clone(), purchase_status(client, base, token, id).await) }
            })
            .buffer_unordered(50)
            .collect()
            .await;
        views.extend(seen);
        let left: Vec<&Value> = views.values().filter(|v| v["status"] != status).collect();
        assert!(
            Instant::now() < deadline,
            "{} of {} purchases are not {status} after {within:?}; e.g. {}",
            left.len(),
            purchases.len(),
            left.first().map(|v| v.to_string()).unwrap_or_default()
        );
        if !left.is_empty() {
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }
}

/// The orders holding `sku`, with their lines.
async fn orders_of_sku(app: &TestApp, sku: i64) -> Vec<(order::Model, Vec<order_line::Model>)> {
    let db = app.state().db.writer();
    let lines = order_line::Entity::find()
        .filter(order_line::Column::SkuId.eq(sku))
        .all(db)
        .await
        .expect("cannot read order lines");
    let ids: BTreeSet<i64> = lines.iter().map(|l| l.order_id).collect();
    let orders = order::Entity::find()
        .filter(order::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await
        .expect("cannot read orders");
    let all_lines = order_line::Entity::find()
        .filter(order_line::Column::OrderId.is_in(ids.iter().copied()))
        .all(db)
        .await
        .expect("cannot read order lines");
    orders
        .into_iter()
        .map(|o| {
            let lines = all_lines
                .iter()
                .filter(|l| l.order_id == o.id)
                .cloned()
                .collect();
            (o, lines)
        })
        .collect()
}

/// The consistency checker's report on `sale`, asserted consistent with nothing oversold.
async fn verified(app: &TestApp, sale: i64) -> Value {
    let report = bazaar::flash::verify::verify(app.state(), sale)
        .await
        .expect("the consistency checker failed to run");
    let report = serde_json::to_value(&report).expect("the report does not serialize");
    assert_eq!(report["consistent"], true, "inconsistent: {report:#}");
    assert_eq!(
        report["differences"].as_array().map(Vec::len),
        Some(0),
        "{report:#}"
    );
    assert_eq!(report["oversold"], 0, "{report:#}");
    assert_eq!(report["over_limit_customers"], 0, "{report:#}");
    assert_eq!(report["duplicate_orders"], 0, "{report:#}");
    report
}

/// A staff member of `app` with exactly `permissions`, signed in on a client of their own.
async fn staff_client(app: &TestApp, email: &str, permissions: &[&str]) -> CustomerClient {
    const PASSWORD: &str = "a long staff password";
    create_staff(app, email, PASSWORD, false, permissions).await;
    let client = new_client();
    let body = expect_json(
        send(
            client
                .post(app.url(LOGIN_PATH))
                .json(&json!({"email": email, "password": PASSWORD})),
        )
        .await,
        200,
    )
    .await;
    CustomerClient {
        client,
        csrf: body["csrf_token"]
            .as_str()
            .expect("no csrf_token")
            .to_owned(),
        base: app.base.clone(),
    }
}

fn field_names(problem: &Value) -> BTreeSet<String> {
    problem["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["field"].as_str().map(str::to_owned))
        .collect()
}

// ---------------------------------------------------------------------------------------
// 1. Admin
// ---------------------------------------------------------------------------------------

async fn staff_schedule_edit_and_withdraw_sales_with_stock_carved_out(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let (product, sku) = listed_product(&app, "FLASH-ADM", REGULAR_PRICE, 50).await;
    let starts = Utc::now() + chrono::Duration::hours(1);
    let ends = starts + chrono::Duration::hours(1);

    // Bad input is refused field by field, and nothing is carved out.
    let cases = [
        (json!({"ends_at": rfc3339(starts)}), "ends_at"),
        (json!({"sale_price": -1}), "sale_price"),
        (json!({"stock": 0}), "stock"),
        (json!({"per_customer_limit": 0}), "per_customer_limit"),
    ];
    for (change, field) in cases {
        let body = with(sale_body(sku, 10, 1, starts, ends), change);
        let problem = expect_problem(app.post(ADMIN, &body).await, 422, "validation-failed").await;
        assert!(
            field_names(&problem).contains(field),
            "the error names {field}: {problem}"
        );
    }
    expect_problem(
        app.post(ADMIN, &sale_body(sku, 51, 1, starts, ends)).await,
        409,
        "insufficient-stock",
    )
    .await;
    assert_eq!(
        stock(&app, sku).await["available"],
        50,
        "nothing carved out"
    );

    // Scheduling carves the units out of the SKU's stock, through the ledger.
    let body = with(
        sale_body(sku, 20, 1, starts, ends),
        json!({"name": "Midnight mugs"}),
    );
    let body = body
        .as_object()
        .map(|o| {
            let mut o = o.clone();
            o.remove("per_customer_limit");
            Value::Object(o)
        })
        .expect("the body is an object");
    let sale = create_sale(&app, &body).await;
    let id = sale["id"].as_i64().expect("the sale has no id");
    assert_eq!(sale["name"], "Midnight mugs");
    assert_eq!(sale["sku_id"], sku);
    assert_eq!(sale["sku_code"], "FLASH-ADM");
    assert_eq!(sale["product_id"], product["id"]);
    assert_eq!(sale["regular_price"], REGULAR_PRICE);
    assert_eq!(sale["sale_price"], SALE_PRICE);
    assert_eq!(sale["stock"], 20);
    assert_eq!(sale["remaining"], 20);
    assert_eq!(sale["sold"], 0);
    assert_eq!(sale["per_customer_limit"], 1, "the limit defaults to one");
    assert_eq!(sale["status"], "scheduled");
    let level = stock(&app, sku).await;
    assert_eq!(
        (level["available"].as_i64(), level["reserved"].as_i64()),
        (Some(30), Some(20)),
        "{level}"
    );
    let allot = expect_json(
        app.get(&format!(
            "/api/v1/admin/inventory/{sku}/ledger?kind=flash_allot"
        ))
        .await,
        200,
    )
    .await;
    assert_eq!(allot["total"], 1, "{allot}");
    assert_eq!(allot["items"][0]["reserved_delta"], 20, "{allot}");

    // Listed and read back.
    let list = expect_json(app.get(ADMIN).await, 200).await;
    assert_eq!(list["total"], 1, "{list}");
    assert_eq!(list["items"][0]["id"], id);
    assert_eq!(list["items"][0]["sku_code"], "FLASH-ADM");
    assert_eq!(list["items"][0]["title"], product["title"]);
    assert_eq!(admin_sale(&app, id).await["name"], "Midnight mugs");
    expect_problem(app.get(&format!("{ADMIN}/999999")).await, 404, "not-found").await;

    // Before the start anything may change, the carve-out following the stock.
    let patched = expect_json(
        app.patch(
            &format!("{ADMIN}/{id}"),
            &json!({"sale_price": 890, "per_customer_limit": 3, "stock": 25}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(patched["sale_price"], 890);
    assert_eq!(patched["per_customer_limit"], 3);
    assert_eq!(
        (patched["stock"].as_i64(), patched["remaining"].as_i64()),
        (Some(25), Some(25))
    );
    assert_eq!(stock(&app, sku).await["available"], 25);

    // Staff without the permission cannot schedule sales; reading needs its own.
    let reader = staff_client(&app, "reader@example.com", &["flash_sales.read"]).await;
    expect_json(reader.get(ADMIN).await, 200).await;
    let refused = reader
        .post(ADMIN, &sale_body(sku, 1, 1, starts, ends))
        .await;
    assert_eq!(refused.status(), 403, "a reader scheduled a sale");
    let refused = reader.delete(&format!("{ADMIN}/{id}")).await;
    assert_eq!(refused.status(), 403, "a reader withdrew a sale");
    let stranger = staff_client(&app, "stranger@example.com", &["orders.read"]).await;
    assert_eq!(stranger.get(ADMIN).await.status(), 403);

    // Withdrawn before the start, the units go back to the SKU.
    let deleted = app.delete(&format!("{ADMIN}/{id}")).await;
    assert_eq!(deleted.status(), 204, "the sale was not deleted");
    let level = stock(&app, sku).await;
    assert_eq!(
        (level["available"].as_i64(), level["reserved"].as_i64()),
        (Some(50), Some(0)),
        "{level}"
    );
    expect_problem(app.get(&format!("{ADMIN}/{id}")).await, 404, "not-found").await;
    app.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// 2. Storefront and the gate's refusals
// ---------------------------------------------------------------------------------------

async fn storefront_shows_sales_and_the_gate_refuses_outside_its_rules(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let (_, sku) = listed_product(&app, "FLASH-SF", REGULAR_PRICE, 100).await;
    let later = Utc::now() + chrono::Duration::hours(1);
    let upcoming = create_sale(
        &app,
        &sale_body(sku, 10, 1, later, later + chrono::Duration::hours(1)),
    )
    .await;
    let upcoming = upcoming["id"].as_i64().expect("no id");
    let level = expect_json(
        app.post("/api/v1/admin/membership-levels", &json!({"name": "Gold"}))
            .await,
        201,
    )
    .await;
    let members = live_sale(
        &app,
        sku,
        10,
        1,
        json!({"membership_level_id": level["id"]}),
    )
    .await;
    let live = live_sale(&app, sku, 10, 2, json!({})).await;
    let people = shoppers(&app, "sf", 3).await;
    let (alice, bob, carol) = (&people[0], &people[1], &people[2]);
    let client = rush_client();
    let base = app.base.clone();

    // The storefront lists upcoming and live sales, with what is left.
    let list = expect_json(app.get("/api/v1/flash-sales").await, 200).await;
    let items = list["items"].as_array().expect("no items");
    let find = |id: i64| {
        items
            .iter()
            .find(|i| i["id"] == id)
            .unwrap_or_else(|| panic!("sale {id} is not listed: {list}"))
    };
    assert_eq!(find(upcoming)["status"], "upcoming");
    assert_eq!(find(upcoming)["remaining"], 10);
    assert_eq!(find(live)["status"], "live");
    assert_eq!(find(live)["remaining"], 10);
    assert_eq!(find(live)["sale_price"], SALE_PRICE);
    assert_eq!(find(live)["regular_price"], REGULAR_PRICE);
    assert_eq!(find(live)["members_only"], false);
    assert_eq!(find(members)["members_only"], true);
    let one = expect_json(app.get(&format!("/api/v1/flash-sales/{live}")).await, 200).await;
    assert_eq!(one["id"], live);
    expect_problem(
        app.get("/api/v1/flash-sales/999999").await,
        404,
        "not-found",
    )
    .await;

    let one_unit = json!({"quantity": 1});

    // Refusals, none of which takes a unit.
    let early = purchase(
        &client,
        &base,
        upcoming,
        Some(&alice.token),
        Some("early"),
        one_unit.clone(),
    )
    .await;
    assert_eq!(
        (early.status, early.code()),
        (425, "sale-not-started"),
        "{early:?}"
    );
    let keyless = purchase(
        &client,
        &base,
        live,
        Some(&alice.token),
        None,
        one_unit.clone(),
    )
    .await;
    assert_eq!(
        (keyless.status, keyless.code()),
        (400, "idempotency-key-required"),
        "{keyless:?}"
    );
    let zero = purchase(
        &client,
        &base,
        live,
        Some(&alice.token),
        Some("zero"),
        json!({"quantity": 0}),
    )
    .await;
    assert_eq!(zero.status, 422, "{zero:?}");
    assert!(
        field_names(&zero.body).contains("quantity") || zero.code() == "quantity",
        "the refusal names the quantity: {zero:?}"
    );
    let anonymous = purchase(&client, &base, live, None, Some("anon"), one_unit.clone()).await;
    assert_eq!(anonymous.status, 401, "{anonymous:?}");
    let missing = purchase(
        &client,
        &base,
        999_999,
        Some(&alice.token),
        Some("missing"),
        one_unit.clone(),
    )
    .await;
    assert_eq!(
        (missing.status, missing.code()),
        (404, "not-found"),
        "{missing:?}"
    );
    let outsider = purchase(
        &client,
        &base,
        members,
        Some(&alice.token),
        Some("gold"),
        one_unit.clone(),
    )
    .await;
    assert_eq!(
        (outsider.status, outsider.code()),
        (403, "membership-required"),
        "{outsider:?}"
    );
    let too_many = purchase(
        &client,
        &base,
        live,
        Some(&alice.token),
        Some("three"),
        json!({"quantity": 3}),
    )
    .await;
    assert_eq!(
        (too_many.status, too_many.code()),
        (409, "limit-reached"),
        "{too_many:?}"
    );
    assert_eq!(
        admin_sale(&app, live).await["remaining"],
        10,
        "refusals took units"
    );

    // A member may buy the members' sale.
    expect_json(
        app.put(
            &format!("/api/v1/admin/customers/{}/membership", bob.id),
            &json!({"level_id": level["id"]}),
        )
        .await,
        200,
    )
    .await;
    let member = purchase(
        &client,
        &base,
        members,
        Some(&bob.token),
        Some("gold"),
        one_unit.clone(),
    )
    .await;
    assert_eq!(member.status, 202, "{member:?}");

    // A purchase is accepted at once and can be followed by its buyer only.
    let bought = purchase(
        &client,
        &base,
        live,
        Some(&alice.token),
        Some("first"),
        json!({"quantity": 2}),
    )
    .await;
    assert_eq!(bought.status, 202, "{bought:?}");
    assert_eq!(bought.body["status"], "pending");
    assert_eq!(bought.body["remaining"], 8);
    let purchase_id = bought.purchase_id();
    assert_eq!(
        bought.location,
        format!("/api/v1/flash-sales/purchases/{purchase_id}")
    );
    let views = wait_ordered(&base, &[(alice.token.clone(), purchase_id.clone())]).await;
    let view = &views[&purchase_id];
    assert_eq!(view["flash_sale_id"], live);
    assert_eq!(view["quantity"], 2);
    assert!(view["order_number"].is_string(), "{view}");
    assert!(view["payment_due_at"].is_string(), "{view}");
    let others = send(
        client
            .get(format!("{base}{}", bought.location))
            .bearer_auth(&carol.token),
    )
    .await;
    expect_problem(others, 404, "not-found").await;
    let order = expect_json(
        send(
            client
                .get(format!(
                    "{base}/api/v1/orders/{}",
                    view["order_number"].as_str().unwrap_or_default()
                ))
                .bearer_auth(&alice.token),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(order["status"], "pending_payment", "{order}");

    // The storefront catches up with what is left (it is served from a cache).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let shown = expect_json(app.get(&format!("/api/v1/flash-sales/{live}")).await, 200).await;
        if shown["remaining"] == 8 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the storefront still shows {shown}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Once live, only the name and the end may change, and the sale cannot be deleted.
    let path = format!("{ADMIN}/{live}");
    expect_problem(
        app.patch(&path, &json!({"sale_price": 1})).await,
        409,
        "flash-sale-started",
    )
    .await;
    let renamed = expect_json(app.patch(&path, &json!({"name": "Still on"})).await, 200).await;
    assert_eq!(renamed["name"], "Still on");
    assert_eq!(
        app.delete(&path).await.status(),
        409,
        "a live sale was deleted"
    );

    // Ended by staff, the gate refuses at once.
    expect_json(app.post_empty(&format!("{path}/end")).await, 200).await;
    let late = purchase(
        &client,
        &base,
        live,
        Some(&carol.token),
        Some("late"),
        one_unit.clone(),
    )
    .await;
    assert_eq!((late.status, late.code()), (403, "sale-ended"), "{late:?}");
    assert_eq!(admin_sale(&app, live).await["sold"], 2);
    verified(&app, live).await;
    app.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// 3 and 8. The rush
// ---------------------------------------------------------------------------------------

async fn two_thousand_attempts_for_a_hundred_units_sell_exactly_a_hundred(backend: Backend) {
    let app = spawn(backend).await;
    sell_a_hundred_to_a_rush(&[&app]).await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_sharing_redis_and_postgres_sell_exactly_a_hundred() {
    bounded(async {
        let (first, second) = spawn_pair(Backend::Scaled).await;
        sell_a_hundred_to_a_rush(&[&first, &second]).await;
        second.shutdown().await;
        first.shutdown().await;
    })
    .await;
}

/// 1,000 customers try twice each (2,000 attempts, `CONCURRENCY` in flight, spread over
/// `apps`) for 100 units with a limit of one: exactly 100 sell, to 100 customers, as 100
/// orders at the sale price.
async fn sell_a_hundred_to_a_rush(apps: &[&TestApp]) {
    const UNITS: i64 = 100;
    const CUSTOMERS: usize = 1_000;
    let app = apps[0];
    login_as_superuser(app).await;
    let (_, sku) = listed_product(app, "FLASH-RUSH", REGULAR_PRICE, 150).await;
    let people = shoppers(app, "rush", CUSTOMERS).await;
    let sale = live_sale(app, sku, UNITS, 1, json!({})).await;
    let bases: Vec<String> = apps.iter().map(|a| a.base.clone()).collect();
    let attempts = (0..2 * CUSTOMERS)
        .map(|n| Attempt {
            shopper: n % CUSTOMERS,
            key: format!("rush-{n}"),
            quantity: 1,
        })
        .collect();
    let started = Instant::now();
    let answers = rush(&bases, sale, &people, attempts).await;
    let elapsed = started.elapsed();

    let accepted: Vec<&(usize, String, Answer)> =
        answers.iter().filter(|(_, _, a)| a.status == 202).collect();
    let refusals: BTreeMap<String, usize> = answers
        .iter()
        .filter(|(_, _, a)| a.status != 202)
        .fold(BTreeMap::new(), |mut m, (_, _, a)| {
            *m.entry(format!("{} {}", a.status, a.code())).or_default() += 1;
            m
        });
    assert_eq!(
        accepted.len() as i64,
        UNITS,
        "exactly the sale's units are accepted; refusals: {refusals:?}"
    );
    for (_, _, answer) in &answers {
        if answer.status != 202 {
            assert_eq!(answer.status, 409, "{answer:?}");
            assert!(
                matches!(answer.code(), "sold-out" | "limit-reached"),
                "{answer:?}"
            );
        }
    }
    let winners: BTreeSet<i64> = accepted.iter().map(|(s, _, _)| people[*s].id).collect();
    assert_eq!(winners.len() as i64, UNITS, "one unit per customer");
    let purchases: Vec<(String, String)> = accepted
        .iter()
        .map(|(s, _, a)| (people[*s].token.clone(), a.purchase_id()))
        .collect();
    let ids: BTreeSet<&String> = purchases.iter().map(|(_, id)| id).collect();
    assert_eq!(ids.len() as i64, UNITS, "purchase ids are unique");
    eprintln!(
        "{} instance(s): {} attempts in {elapsed:?} ({:.0}/s)",
        apps.len(),
        answers.len(),
        answers.len() as f64 / elapsed.as_secs_f64()
    );

    // The workers make exactly one order per accepted purchase.
    let views = wait_ordered(&bases[bases.len() - 1], &purchases).await;
    let numbers: BTreeSet<String> = views
        .values()
        .map(|v| {
            v["order_number"]
                .as_str()
                .expect("no order number")
                .to_owned()
        })
        .collect();
    assert_eq!(numbers.len() as i64, UNITS, "one order per purchase");
    let orders = orders_of_sku(app, sku).await;
    assert_eq!(
        orders.len() as i64,
        UNITS,
        "exactly the units sold became orders"
    );
    let buyers: BTreeSet<i64> = orders
        .iter()
        .map(|(o, _)| o.customer_id.expect("a flash order has a customer"))
        .collect();
    assert_eq!(buyers, winners, "the orders are the accepted customers'");
    for (order, lines) in &orders {
        assert_eq!(order.status, "pending_payment", "{}", order.number);
        assert!(
            numbers.contains(&order.number),
            "{} is no purchase's",
            order.number
        );
        assert_eq!(lines.len(), 1, "{}: {lines:?}", order.number);
        let line = &lines[0];
        assert_eq!(
            (line.sku_id, line.unit_price, line.quantity),
            (sku, SALE_PRICE, 1),
            "{}",
            order.number
        );
    }
    let shown = admin_sale(app, sale).await;
    assert_eq!(
        (shown["remaining"].as_i64(), shown["sold"].as_i64()),
        (Some(0), Some(UNITS)),
        "{shown}"
    );
    let report = verified(app, sale).await;
    assert_eq!(report["orders"], UNITS, "{report:#}");
    assert_eq!(report["remaining"], 0, "{report:#}");
}

// ---------------------------------------------------------------------------------------
// 4. Limit of two, replays
// ---------------------------------------------------------------------------------------

async fn nobody_buys_more_than_the_limit_and_replays_take_nothing_twice(backend: Backend) {
    const CUSTOMERS: usize = 40;
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let (_, sku) = listed_product(&app, "FLASH-LIM", REGULAR_PRICE, 300).await;
    // Plenty of units: only the limit stands in the way.
    let sale = live_sale(&app, sku, 200, 2, json!({})).await;
    let people = shoppers(&app, "limit", CUSTOMERS + 1).await;
    // Thirty customers try four single units at once; ten try a pair and two singles.
    let mut attempts = Vec::new();
    for shopper in 0..CUSTOMERS {
        let quantities: &[i64] = if shopper < 30 {
            &[1, 1, 1, 1]
        } else {
            &[2, 1, 1]
        };
        for (n, quantity) in quantities.iter().enumerate() {
            attempts.push(Attempt {
                shopper,
                key: format!("limit-{shopper}-{n}"),
                quantity: *quantity,
            });
        }
    }
    let answers = rush(std::slice::from_ref(&app.base), sale, &people, attempts).await;
    let mut units: BTreeMap<usize, i64> = BTreeMap::new();
    let mut purchases = Vec::new();
    let mut quantity_of = BTreeMap::new();
    for (shopper, key, answer) in &answers {
        match answer.status {
            202 => {
                let quantity = if *shopper >= 30 && key.ends_with("-0") {
                    2
                } else {
                    1
                };
                *units.entry(*shopper).or_default() += quantity;
                quantity_of.insert(answer.purchase_id(), quantity);
                purchases.push((people[*shopper].token.clone(), answer.purchase_id()));
            }
            409 => assert_eq!(answer.code(), "limit-reached", "{answer:?}"),
            _ => panic!("unexpected answer {answer:?}"),
        }
    }
    for shopper in 0..CUSTOMERS {
        assert_eq!(
            units.get(&shopper).copied().unwrap_or_default(),
            2,
            "customer {shopper} got exactly the limit while units remained"
        );
    }

    // A replayed key answers the original purchase, even at the limit, and takes nothing.
    let client = rush_client();
    let (shopper, key, first) = answers
        .iter()
        .find(|(_, _, a)| a.status == 202)
        .expect("something was accepted");
    let remaining = admin_sale(&app, sale).await["remaining"].clone();
    let replay = purchase(
        &client,
        &app.base,
        sale,
        Some(&people[*shopper].token),
        Some(key),
        json!({"quantity": quantity_of[&first.purchase_id()]}),
    )
    .await;
    assert_eq!(replay.status, 202, "{replay:?}");
    assert_eq!(replay.purchase_id(), first.purchase_id());
    assert_eq!(admin_sale(&app, sale).await["remaining"], remaining);

    // A client retrying one key five times at once buys one unit.
    let late = &people[CUSTOMERS];
    let storm: Vec<Answer> = futures::future::join_all((0..5).map(|_| {
        purchase(
            &client,
            &app.base,
            sale,
            Some(&late.token),
            Some("storm"),
            json!({"quantity": 1}),
        )
    }))
    .await;
    let ids: BTreeSet<String> = storm
        .iter()
        .filter(|a| a.status == 202)
        .map(Answer::purchase_id)
        .collect();
    assert_eq!(ids.len(), 1, "one purchase for one key: {storm:?}");
    for answer in &storm {
        assert!(
            answer.status == 202 || answer.code() == "idempotency-request-in-progress",
            "{answer:?}"
        );
    }
    let storm_id = ids.into_iter().next().unwrap_or_default();
    purchases.push((late.token.clone(), storm_id));
    // So one more unit is allowed, and then no more.
    let second = purchase(
        &client,
        &app.base,
        sale,
        Some(&late.token),
        Some("second"),
        json!({"quantity": 1}),
    )
    .await;
    assert_eq!(second.status, 202, "{second:?}");
    purchases.push((late.token.clone(), second.purchase_id()));
    let third = purchase(
        &client,
        &app.base,
        sale,
        Some(&late.token),
        Some("third"),
        json!({"quantity": 1}),
    )
    .await;
    assert_eq!(
        (third.status, third.code()),
        (409, "limit-reached"),
        "{third:?}"
    );

    wait_ordered(&app.base, &purchases).await;
    let mut ordered: BTreeMap<i64, i64> = BTreeMap::new();
    for (order, lines) in orders_of_sku(&app, sku).await {
        let customer = order.customer_id.expect("a flash order has a customer");
        *ordered.entry(customer).or_default() += lines.iter().map(|l| l.quantity).sum::<i64>();
    }
    assert_eq!(ordered.len(), CUSTOMERS + 1, "every customer has orders");
    for (customer, quantity) in &ordered {
        assert_eq!(*quantity, 2, "customer {customer} ordered {quantity} units");
    }
    let shown = admin_sale(&app, sale).await;
    assert_eq!(shown["sold"], 2 * (CUSTOMERS as i64 + 1), "{shown}");
    verified(&app, sale).await;
    app.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// 5 and 6. Workers that die
// ---------------------------------------------------------------------------------------

/// A live sale of `units` units, limit 1, that `units` new customers buy one each of;
/// returns the SKU, the sale and each purchase as (token, purchase id).
async fn each_buys_one(
    app: &TestApp,
    code: &str,
    tag: &str,
    units: usize,
) -> (i64, i64, Vec<(String, String)>) {
    let (_, sku) = listed_product(app, code, REGULAR_PRICE, 50).await;
    let sale = live_sale(app, sku, units as i64, 1, json!({})).await;
    let people = shoppers(app, tag, units).await;
    let attempts = (0..units)
        .map(|n| Attempt {
            shopper: n,
            key: format!("{tag}-{n}"),
            quantity: 1,
        })
        .collect();
    let answers = rush(std::slice::from_ref(&app.base), sale, &people, attempts).await;
    assert!(
        answers.iter().all(|(_, _, a)| a.status == 202),
        "{answers:?}"
    );
    let purchases = answers
        .iter()
        .map(|(s, _, a)| (people[*s].token.clone(), a.purchase_id()))
        .collect();
    (sku, sale, purchases)
}

async fn a_worker_dying_mid_batch_loses_and_duplicates_nothing(backend: Backend) {
    const UNITS: usize = 20;
    // No workers of its own: the test plays them.
    let app = spawn_with(backend, |c| {
        c.flash_sales.workers = 0;
        c.flash_sales.claim_idle_ms = 200;
    })
    .await;
    login_as_superuser(&app).await;
    let (sku, sale, purchases) = each_buys_one(&app, "FLASH-KILL", "kill", UNITS).await;

    // A worker takes the batch, orders half of it, and dies before acknowledging.
    let doomed = Consumer::new(app.state().clone(), "doomed");
    let entries = doomed
        .fetch(sale)
        .await
        .expect("the doomed worker cannot read");
    assert_eq!(entries.len(), UNITS, "the batch holds every purchase");
    let made = doomed
        .create_orders(sale, &entries[..UNITS / 2])
        .await
        .expect("the doomed worker cannot create orders");
    assert_eq!(made, UNITS / 2);
    drop(doomed);
    assert_eq!(orders_of_sku(&app, sku).await.len(), UNITS / 2);

    // Another worker claims the abandoned entries once they are idle and finishes the job.
    let rescuer = Consumer::new(app.state().clone(), "rescuer");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        rescuer.step().await.expect("the rescuing worker failed");
        if orders_of_sku(&app, sku).await.len() >= UNITS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the abandoned purchases were never claimed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Entries already ordered are skipped, however often they come back.
    let again = rescuer
        .create_orders(sale, &entries)
        .await
        .expect("a repeated batch failed");
    assert_eq!(again, 0, "a repeated batch made orders");
    for _ in 0..3 {
        rescuer.step().await.expect("the rescuing worker failed");
    }

    let views = wait_ordered(&app.base, &purchases).await;
    let orders = orders_of_sku(&app, sku).await;
    assert_eq!(orders.len(), UNITS, "none lost, none twice");
    let numbers: BTreeSet<&str> = orders.iter().map(|(o, _)| o.number.as_str()).collect();
    for view in views.values() {
        let number = view["order_number"].as_str().expect("no order number");
        assert!(numbers.contains(number), "{view}");
    }
    let buyers: BTreeSet<Option<i64>> = orders.iter().map(|(o, _)| o.customer_id).collect();
    assert_eq!(buyers.len(), UNITS, "one order per customer");
    let report = verified(&app, sale).await;
    assert_eq!(report["in_flight"], 0, "{report:#}");
    app.shutdown().await;
}

const BIN: &str = env!("CARGO_BIN_EXE_bazaar");

/// The `bazaar` binary on `app`'s PostgreSQL database and Redis prefix.
fn bazaar(app: &TestApp, data_dir: &std::path::Path) -> Command {
    let config = &app.state().config;
    let mut command = Command::new(BIN);
    command
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("RUST_LOG")
        .env_remove("BZR_TEST_FLASH_ABORT_BEFORE_ACK")
        .env("BAZAAR_LOG__LEVEL", "error")
        .env("BAZAAR_AUTH__BOOTSTRAP_ADMIN", "false")
        .env(
            "BAZAAR_DATABASE__URL",
            config.database.url.as_ref().expect("no database").expose(),
        )
        .env(
            "BAZAAR_REDIS__URL",
            config.redis.url.as_ref().expect("no Redis").expose(),
        )
        .env("BAZAAR_REDIS__KEY_PREFIX", &config.redis.key_prefix)
        .env("BAZAAR_FLASH_SALES__CLAIM_IDLE_MS", "300")
        .env("BAZAAR_FLASH_SALES__BATCH_SIZE", "10")
        .env("BAZAAR_FLASH_SALES__WORKERS", "1")
        .stdin(Stdio::null());
    command
}

fn serve(app: &TestApp, data_dir: &std::path::Path, port: u16, abort_before_ack: bool) -> Child {
    let mut command = bazaar(app, data_dir);
    command
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if abort_before_ack {
        command.env("BZR_TEST_FLASH_ABORT_BEFORE_ACK", "1");
    }
    command.spawn().expect("cannot start bazaar serve")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

/// Waits (bounded) for a child to exit by itself.
async fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("cannot wait for bazaar") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("bazaar did not exit within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_process_killed_before_acknowledging_orders_nothing_twice() {
    bounded(a_worker_process_killed(Backend::Scaled)).await;
}

async fn a_worker_process_killed(backend: Backend) {
    const UNITS: usize = 30;
    // The test app only answers purchases; the processes below make the orders.
    let app = spawn_with(backend, |c| c.flash_sales.workers = 0).await;
    login_as_superuser(&app).await;
    let (sku, sale, purchases) = each_buys_one(&app, "FLASH-PROC", "proc", UNITS).await;

    // A worker process commits its first batch of orders and dies before acknowledging.
    let dir = tempfile::tempdir().expect("no temp dir");
    let mut doomed = serve(&app, dir.path(), free_port(), true);
    let status = wait_exit(&mut doomed, Duration::from_secs(60)).await;
    assert!(!status.success(), "the worker was to die, not exit cleanly");
    let after_crash = orders_of_sku(&app, sku).await.len();
    assert!(
        (1..UNITS).contains(&after_crash),
        "the dying worker committed one batch, not {after_crash} orders"
    );

    // Restarted, it claims what the dead one left and orders the rest, once.
    let port = free_port();
    let mut restarted = serve(&app, dir.path(), port, false);
    let views = wait_ordered(&app.base, &purchases).await;
    let orders = orders_of_sku(&app, sku).await;
    let _ = restarted.kill();
    let _ = restarted.wait();
    assert_eq!(orders.len(), UNITS, "none lost, none twice");
    let numbers: BTreeSet<String> = views
        .values()
        .map(|v| {
            v["order_number"]
                .as_str()
                .expect("no order number")
                .to_owned()
        })
        .collect();
    assert_eq!(numbers.len(), UNITS);
    let buyers: BTreeSet<Option<i64>> = orders.iter().map(|(o, _)| o.customer_id).collect();
    assert_eq!(buyers.len(), UNITS, "one order per customer");

    // The operator's checker agrees.
    let output = bazaar(&app, dir.path())
        .args(["flash-sale", "verify", &sale.to_string(), "--json"])
        .output()
        .expect("cannot run bazaar flash-sale verify");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "verify failed with {}: {stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("verify --json printed no JSON ({e}): {stdout}"));
    assert_eq!(report["consistent"], true, "{report:#}");
    assert_eq!(report["duplicate_orders"], 0, "{report:#}");
    assert_eq!(report["orders"], UNITS, "{report:#}");
    verified(&app, sale).await;
    app.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// 7. Time-outs
// ---------------------------------------------------------------------------------------

/// Staff record the payment of a purchase's order; returns the order as it was.
async fn mark_paid(app: &TestApp, purchase: &Value) -> order::Model {
    let number = purchase["order_number"]
        .as_str()
        .unwrap_or_else(|| panic!("no order number: {purchase}"));
    let found = order::Entity::find()
        .filter(order::Column::Number.eq(number))
        .one(app.state().db.writer())
        .await
        .expect("cannot read the order")
        .unwrap_or_else(|| panic!("order {number} is missing"));
    let marked = expect_json(
        app.post(
            &format!("/api/v1/admin/orders/{}/mark-paid", found.id),
            &json!({"reference": format!("paid-{number}")}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(marked["status"], "paid", "{marked}");
    found
}

async fn unpaid_orders_give_their_units_back_and_they_sell_again(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let (_, sku) = listed_product(&app, "FLASH-LATE", REGULAR_PRICE, 10).await;
    let sale = live_sale(&app, sku, 2, 1, json!({"payment_timeout_secs": 3})).await;
    let people = shoppers(&app, "late", 3).await;
    let (payer, sleeper, waiter) = (&people[0], &people[1], &people[2]);
    let client = rush_client();
    let buy = |who: &Shopper, key: &str| {
        let client = &client;
        let base = &app.base;
        let token = who.token.clone();
        let key = key.to_owned();
        async move {
            purchase(
                client,
                base,
                sale,
                Some(&token),
                Some(&key),
                json!({"quantity": 1}),
            )
            .await
        }
    };

    let paid = buy(payer, "pay").await;
    let unpaid = buy(sleeper, "sleep").await;
    assert_eq!(
        (paid.status, unpaid.status),
        (202, 202),
        "{paid:?} {unpaid:?}"
    );
    let refused = buy(waiter, "wait-1").await;
    assert_eq!(
        (refused.status, refused.code()),
        (409, "sold-out"),
        "{refused:?}"
    );
    let purchases = [
        (payer.token.clone(), paid.purchase_id()),
        (sleeper.token.clone(), unpaid.purchase_id()),
    ];
    let views = wait_ordered(&app.base, &purchases).await;

    // One buyer pays in time.
    let paid_order = mark_paid(&app, &views[&paid.purchase_id()]).await;

    // The other does not: the order is cancelled and its unit goes back to the sale.
    let cancelled = wait_for_status(
        &app.base,
        &purchases[1..],
        "cancelled",
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(cancelled[&unpaid.purchase_id()]["status"], "cancelled");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let shown = admin_sale(&app, sale).await;
        if shown["remaining"] == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the unit did not come back: {shown}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // And sells again, to someone who was turned away.
    let second_try = buy(waiter, "wait-2").await;
    assert_eq!(second_try.status, 202, "{second_try:?}");
    let views = wait_ordered(
        &app.base,
        &[(waiter.token.clone(), second_try.purchase_id())],
    )
    .await;
    // Paid at once, so its own time-out cannot interfere.
    mark_paid(&app, &views[&second_try.purchase_id()]).await;
    let after = buy(sleeper, "sleep-2").await;
    assert_eq!((after.status, after.code()), (409, "sold-out"), "{after:?}");

    // The paid order kept its unit through all of it.
    let still = order::Entity::find_by_id(paid_order.id)
        .one(app.state().db.writer())
        .await
        .expect("cannot read the order")
        .expect("the order is missing");
    assert_eq!(still.status, "paid");
    let statuses: BTreeMap<String, usize> =
        orders_of_sku(&app, sku)
            .await
            .iter()
            .fold(BTreeMap::new(), |mut m, (o, _)| {
                *m.entry(o.status.clone()).or_default() += 1;
                m
            });
    assert_eq!(
        statuses,
        BTreeMap::from([("cancelled".to_owned(), 1), ("paid".to_owned(), 2)])
    );
    let report = verified(&app, sale).await;
    assert_eq!(report["returned_units"], 1, "{report:#}");
    assert_eq!(report["remaining"], 0, "{report:#}");
    app.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Closing
// ---------------------------------------------------------------------------------------

async fn an_ended_sale_gives_its_unsold_units_back_to_the_sku(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let (_, sku) = listed_product(&app, "FLASH-END", REGULAR_PRICE, 10).await;
    let sale = live_sale(&app, sku, 5, 1, json!({"payment_timeout_secs": 600})).await;
    let people = shoppers(&app, "end", 2).await;
    let client = rush_client();
    let mut purchases = Vec::new();
    for (i, who) in people.iter().enumerate() {
        let answer = purchase(
            &client,
            &app.base,
            sale,
            Some(&who.token),
            Some(&format!("end-{i}")),
            json!({"quantity": 1}),
        )
        .await;
        assert_eq!(answer.status, 202, "{answer:?}");
        purchases.push((who.token.clone(), answer.purchase_id()));
    }
    let views = wait_ordered(&app.base, &purchases).await;
    mark_paid(&app, &views[&purchases[0].1]).await;
    assert_eq!(
        stock(&app, sku).await["available"],
        5,
        "five units set aside"
    );

    expect_json(app.post_empty(&format!("{ADMIN}/{sale}/end")).await, 200).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let closed = loop {
        let shown = admin_sale(&app, sale).await;
        if shown["status"] == "closed" {
            break shown;
        }
        assert!(Instant::now() < deadline, "the sale never closed: {shown}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(closed["released"], 3, "{closed}");
    let levels = stock(&app, sku).await;
    assert_eq!(
        (levels["available"].as_i64(), levels["reserved"].as_i64()),
        (Some(8), Some(2)),
        "the three unsold units are back, the two orders keep theirs: {levels}"
    );
    let storefront = expect_json(app.get("/api/v1/flash-sales").await, 200).await;
    assert!(
        storefront["items"]
            .as_array()
            .is_some_and(|items| items.iter().all(|s| s["id"] != sale)),
        "a closed sale is not on the storefront: {storefront}"
    );
    let ledger = expect_json(
        app.get(&format!(
            "/api/v1/admin/inventory/{sku}/ledger?kind=flash_release"
        ))
        .await,
        200,
    )
    .await;
    assert_eq!(ledger["items"][0]["reserved_delta"], -3, "{ledger}");

    // Cancelling the unpaid order now gives its unit to the SKU, not to the closed sale.
    let unpaid = views[&purchases[1].1]["order_number"]
        .as_str()
        .expect("an order number")
        .to_owned();
    let found = order::Entity::find()
        .filter(order::Column::Number.eq(unpaid.as_str()))
        .one(app.state().db.writer())
        .await
        .expect("cannot read the order")
        .expect("the order is missing");
    expect_json(
        app.post(
            &format!("/api/v1/admin/orders/{}/cancel", found.id),
            &json!({"reason": "customer called"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(stock(&app, sku).await["available"], 9);
    let report = verified(&app, sale).await;
    assert_eq!(report["ordered_units"], 1, "{report:#}");
    app.shutdown().await;
}
