//! The promotions back office: promotions whose rules are the engine's JSON, checked for
//! their kind; coupons issued one by one or in batches and exported; promotions and coupons
//! that orders used are kept.

use bazaar::promotions::entity::{coupon, redemption};
use chrono::{Duration, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use crate::harness::{
    Backend, TestApp, both_backends, create_staff, expect_json, expect_problem, header_str, login,
    login_as_superuser, send, spawn, spawn_sharing,
};

both_backends!(
    promotions_are_created_listed_edited_and_deleted,
    promotion_fields_are_checked_with_their_json_paths,
    rules_must_make_sense_for_their_kind,
    the_live_filter_follows_the_window,
    coupons_are_issued_one_by_one_and_in_batches,
    coupon_endpoints_refuse_other_kinds,
    promotions_and_coupons_orders_used_are_kept,
    promotions_need_their_permissions,
);

const ADMIN: &str = "/api/v1/admin/promotions";

fn cart_rule() -> Value {
    json!({
        "conditions": [
            {"type": "min_subtotal", "amount": 5000},
            {"type": "categories", "ids": [3, 4]}
        ],
        "actions": [
            {"type": "percent_off", "percent_bp": 1000},
            {"type": "free_shipping"}
        ]
    })
}

fn coupon_rule() -> Value {
    json!({"conditions": [], "actions": [{"type": "amount_off", "amount": 500}]})
}

async fn create(app: &TestApp, body: Value) -> Value {
    expect_json(app.post(ADMIN, &body).await, 201).await
}

async fn create_kind(app: &TestApp, name: &str, kind: &str, rule: Value) -> Value {
    create(
        app,
        json!({"name": name, "kind": kind, "rule": rule, "stacking": "stackable"}),
    )
    .await
}

fn fields(problem: &Value) -> Vec<&str> {
    problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect()
}

fn names(page: &Value) -> Vec<&str> {
    let mut names: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    names
}

async fn expect_invalid(app: &TestApp, body: Value) -> Vec<String> {
    let problem = expect_problem(app.post(ADMIN, &body).await, 422, "validation-failed").await;
    fields(&problem).into_iter().map(str::to_owned).collect()
}

async fn promotions_are_created_listed_edited_and_deleted(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let starts_at = Utc::now() - Duration::days(1);
    let ends_at = Utc::now() + Duration::days(30);

    let response = app
        .post(
            ADMIN,
            &json!({"name": "  Spring sale  ", "description": "10% off garden tools",
                "kind": "cart", "rule": cart_rule(), "priority": 10,
                "stacking": "discount_on_discount", "starts_at": starts_at.to_rfc3339(),
                "ends_at": ends_at.to_rfc3339(), "usage_limit": 1000,
                "usage_limit_per_customer": 1}),
        )
        .await;
    let location = header_str(response.headers(), "location");
    assert_eq!(header_str(response.headers(), "etag"), "\"1\"");
    let spring = expect_json(response, 201).await;
    assert_eq!(location, format!("{ADMIN}/{}", spring["id"]));
    assert_eq!(spring["name"], "Spring sale", "the name is trimmed");
    assert_eq!(spring["rule"], cart_rule(), "the rule round-trips");
    assert_eq!(spring["kind"], "cart");
    assert_eq!(spring["stacking"], "discount_on_discount");
    assert_eq!(spring["priority"], 10);
    assert_eq!(spring["active"], true);
    assert_eq!(spring["used_count"], 0);
    assert_eq!(spring["usage_limit_per_customer"], 1);
    assert_eq!(
        spring["coupons"],
        Value::Null,
        "only coupon promotions count coupons"
    );

    let welcome = create(
        &app,
        json!({"name": "Welcome coupon", "kind": "coupon", "rule": coupon_rule(),
            "stacking": "exclusive", "active": false}),
    )
    .await;
    assert_eq!(welcome["priority"], 100, "the default priority");
    assert_eq!(welcome["coupons"], json!({"total": 0, "used_up": 0}));
    create_kind(
        &app,
        "Garden prices",
        "catalog",
        json!({"conditions": [{"type": "skus", "ids": [7]}],
            "actions": [{"type": "special_price", "price": 999}]}),
    )
    .await;

    let fetched = expect_json(app.get(&location).await, 200).await;
    assert_eq!(fetched["rule"], cart_rule());
    assert_eq!(fetched["description"], "10% off garden tools");

    let page = expect_json(app.get(&format!("{ADMIN}?sort=priority")).await, 200).await;
    assert_eq!(page["total"], 3);
    assert_eq!(page["items"][0]["name"], "Spring sale");
    let page = expect_json(app.get(&format!("{ADMIN}?kind=coupon")).await, 200).await;
    assert_eq!(names(&page), ["Welcome coupon"]);
    assert_eq!(page["items"][0]["coupons"]["total"], 0);
    let page = expect_json(app.get(&format!("{ADMIN}?active=false")).await, 200).await;
    assert_eq!(names(&page), ["Welcome coupon"]);
    let page = expect_json(app.get(&format!("{ADMIN}?q=GARDEN")).await, 200).await;
    assert_eq!(
        names(&page),
        ["Garden prices"],
        "q matches the name in any case"
    );
    expect_problem(
        app.get(&format!("{ADMIN}?kind=weekly")).await,
        400,
        "validation-failed",
    )
    .await;

    // If-Match names the version; `null` clears the window's end; the rule is replaced whole.
    let new_rule = json!({"conditions": [], "actions": [{"type": "amount_off", "amount": 700}]});
    let response = send(
        app.request(reqwest::Method::PATCH, &location)
            .header("if-match", "\"1\"")
            .json(
                &json!({"rule": new_rule, "ends_at": null, "usage_limit": null,
                "stacking": "exclusive"}),
            ),
    )
    .await;
    assert_eq!(header_str(response.headers(), "etag"), "\"2\"");
    let edited = expect_json(response, 200).await;
    assert_eq!(edited["rule"], new_rule);
    assert_eq!(edited["ends_at"], Value::Null);
    assert_eq!(edited["usage_limit"], Value::Null);
    assert_eq!(edited["stacking"], "exclusive");
    assert_eq!(edited["name"], "Spring sale", "absent fields stay");
    let response = app
        .patch(&location, &json!({"active": false, "version": 1}))
        .await;
    expect_problem(response, 409, "stale-version").await;
    let response = app.patch(&location, &json!({"priority": 5})).await;
    expect_problem(response, 428, "precondition-required").await;

    assert_eq!(app.delete(&location).await.status(), 204);
    expect_problem(app.get(&location).await, 404, "not-found").await;

    let doc = expect_json(app.get("/api/openapi.json").await, 200).await;
    assert_eq!(
        doc["paths"][ADMIN]["get"]["x-permission"],
        "promotions.read"
    );
    assert_eq!(
        doc["paths"][format!("{ADMIN}/{{id}}/coupons")]["post"]["x-permission"],
        "promotions.write"
    );
    for event in [
        "promotion_created",
        "promotion_updated",
        "promotion_deleted",
    ] {
        let log = expect_json(
            app.get(&format!("/api/v1/admin/security-log?event={event}"))
                .await,
            200,
        )
        .await;
        assert!(log["total"].as_u64().unwrap() >= 1, "{event} is audited");
    }
}

async fn promotion_fields_are_checked_with_their_json_paths(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let now = Utc::now();

    let bad = json!({
        "name": " ", "kind": "cart", "stacking": "stackable",
        "rule": {
            "conditions": [
                {"type": "min_quantity", "quantity": 0},
                {"type": "skus", "ids": []},
                {"type": "skus", "ids": [1]}
            ],
            "actions": [
                {"type": "percent_off", "percent_bp": 10001},
                {"type": "buy_x_get_y_free", "buy": 0, "get": 1},
                {"type": "member_only"}
            ]
        },
        "starts_at": now.to_rfc3339(), "ends_at": (now - Duration::hours(1)).to_rfc3339(),
        "usage_limit": 0, "usage_limit_per_customer": -1
    });
    assert_eq!(
        expect_invalid(&app, bad).await,
        [
            "name",
            "rule.conditions[0].quantity",
            "rule.conditions[1].ids",
            "rule.conditions[2]",
            "rule.actions[0].percent_bp",
            "rule.actions[1].buy",
            "rule.actions[2]",
            "ends_at",
            "usage_limit",
            "usage_limit_per_customer",
        ]
    );
    let no_actions = json!({"name": "Nothing", "kind": "cart", "stacking": "stackable",
        "rule": {"conditions": [], "actions": []}});
    assert_eq!(expect_invalid(&app, no_actions).await, ["rule.actions"]);
    let long = json!({"name": "x".repeat(201), "kind": "cart", "stacking": "stackable",
        "rule": coupon_rule()});
    assert_eq!(expect_invalid(&app, long).await, ["name"]);

    // Well-formed JSON of the wrong shape names the field too.
    let unknown_action = json!({"name": "X", "kind": "cart", "stacking": "stackable",
        "rule": {"conditions": [], "actions": [{"type": "teleport"}]}});
    let problems = expect_invalid(&app, unknown_action).await;
    assert_eq!(problems.len(), 1);
    assert!(problems[0].starts_with("rule.actions"), "{problems:?}");
    let unknown_kind = json!({"name": "X", "kind": "weekly", "stacking": "stackable",
        "rule": coupon_rule()});
    assert_eq!(expect_invalid(&app, unknown_kind).await, ["kind"]);
    let missing = json!({"name": "X", "kind": "cart", "rule": coupon_rule()});
    assert_eq!(expect_invalid(&app, missing).await, ["stacking"]);

    // An edit is checked against what it leaves: the stored start, the stored kind.
    let sale = create(
        &app,
        json!({"name": "Sale", "kind": "cart", "stacking": "stackable",
            "rule": coupon_rule(), "starts_at": now.to_rfc3339()}),
    )
    .await;
    let url = format!("{ADMIN}/{}", sale["id"]);
    let response = app
        .patch(
            &url,
            &json!({"ends_at": (now - Duration::days(1)).to_rfc3339(), "version": 1}),
        )
        .await;
    let problem = expect_problem(response, 422, "validation-failed").await;
    assert_eq!(fields(&problem), ["ends_at"]);
    let response = app
        .patch(
            &url,
            &json!({"rule": {"conditions": [], "actions": [{"type": "amount_off", "amount": 0}]},
                "usage_limit": 0, "version": 1}),
        )
        .await;
    let problem = expect_problem(response, 422, "validation-failed").await;
    assert_eq!(fields(&problem), ["rule.actions[0].amount", "usage_limit"]);
    let response = app
        .patch(&url, &json!({"kind": "coupon", "version": 1}))
        .await;
    let problem = expect_problem(response, 422, "validation-failed").await;
    assert_eq!(fields(&problem), ["kind"], "the kind is fixed at creation");
    let unchanged = expect_json(app.get(&url).await, 200).await;
    assert_eq!(unchanged["version"], 1);
}

async fn rules_must_make_sense_for_their_kind(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let levels = json!({"type": "membership_levels", "ids": [1]});

    let member_coupon = json!({"name": "Members", "kind": "coupon", "stacking": "stackable",
        "rule": {"conditions": [levels], "actions": [
            {"type": "percent_off", "percent_bp": 500}, {"type": "member_only"}]}});
    assert_eq!(
        expect_invalid(&app, member_coupon).await,
        ["rule.actions[1]"]
    );
    let member_catalog = json!({"name": "Members", "kind": "catalog", "stacking": "stackable",
        "rule": {"conditions": [levels], "actions": [{"type": "member_only"}]}});
    create(&app, member_catalog).await;

    let cart_level_on_catalog = json!({"name": "Extras", "kind": "catalog",
        "stacking": "stackable", "rule": {"conditions": [], "actions": [
            {"type": "free_shipping"}, {"type": "bonus_points", "points": 50},
            {"type": "gift_coupon", "promotion_id": 999}]}});
    assert_eq!(
        expect_invalid(&app, cart_level_on_catalog).await,
        [
            "rule.actions[0]",
            "rule.actions[1]",
            "rule.actions[2]",
            "rule.actions[2].promotion_id"
        ]
    );

    let cart = create_kind(&app, "Cart deal", "cart", coupon_rule()).await;
    let voucher = create_kind(&app, "Next-time voucher", "coupon", coupon_rule()).await;
    let gift = |promotion_id: &Value| {
        json!({"name": "Gift", "kind": "cart", "stacking": "stackable",
            "rule": {"conditions": [], "actions": [
                {"type": "gift_coupon", "promotion_id": promotion_id}]}})
    };
    assert_eq!(
        expect_invalid(&app, gift(&json!(999))).await,
        ["rule.actions[0].promotion_id"],
        "a gift coupon names an existing promotion"
    );
    assert_eq!(
        expect_invalid(&app, gift(&cart["id"])).await,
        ["rule.actions[0].promotion_id"],
        "a gift coupon names a coupon promotion"
    );
    let gifting = create(&app, gift(&voucher["id"])).await;
    assert_eq!(gifting["rule"]["actions"][0]["promotion_id"], voucher["id"]);

    // The voucher stays while another promotion gives its coupons.
    let voucher_url = format!("{ADMIN}/{}", voucher["id"]);
    expect_problem(app.delete(&voucher_url).await, 409, "promotion-gifted").await;
    let gifting_url = format!("{ADMIN}/{}", gifting["id"]);
    assert_eq!(app.delete(&gifting_url).await.status(), 204);
    assert_eq!(app.delete(&voucher_url).await.status(), 204);
}

async fn the_live_filter_follows_the_window(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let now = Utc::now();
    let at = |days: i64| (now + Duration::days(days)).to_rfc3339();
    for (name, starts_at, ends_at, active) in [
        ("always", None, None, true),
        ("this week", Some(at(-1)), Some(at(6)), true),
        ("until tomorrow", None, Some(at(1)), true),
        ("next month", Some(at(30)), None, true),
        ("last month", Some(at(-40)), Some(at(-10)), true),
        ("paused", None, None, false),
    ] {
        create(
            &app,
            json!({"name": name, "kind": "cart", "stacking": "stackable",
                "rule": coupon_rule(), "starts_at": starts_at, "ends_at": ends_at,
                "active": active}),
        )
        .await;
    }
    let live = expect_json(app.get(&format!("{ADMIN}?live=true")).await, 200).await;
    assert_eq!(names(&live), ["always", "this week", "until tomorrow"]);
    let not_live = expect_json(app.get(&format!("{ADMIN}?live=false")).await, 200).await;
    assert_eq!(names(&not_live), ["last month", "next month", "paused"]);
    let page = expect_json(app.get(&format!("{ADMIN}?live=true&q=week")).await, 200).await;
    assert_eq!(names(&page), ["this week"]);
}

async fn coupons_are_issued_one_by_one_and_in_batches(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let promo = create_kind(&app, "Summer", "coupon", coupon_rule()).await;
    let id = promo["id"].as_i64().unwrap();
    let coupons = format!("{ADMIN}/{id}/coupons");
    let expires_at = (Utc::now() + Duration::days(60)).to_rfc3339();

    let response = app
        .post(
            &coupons,
            &json!({"code": " summer10 ", "max_uses": 1, "expires_at": expires_at}),
        )
        .await;
    let single = expect_json(response, 201).await;
    assert_eq!(single["count"], 1);
    assert_eq!(single["codes"], json!(["SUMMER10"]), "codes are upper case");
    assert_eq!(single["coupon"]["max_uses"], 1);
    let single_id = single["coupon"]["id"].as_i64().unwrap();
    let response = app.post(&coupons, &json!({"code": "Summer10"})).await;
    expect_problem(response, 409, "code-taken").await;

    for (body, field) in [
        (json!({"code": "AB"}), "code"),
        (json!({"code": "SUMMER 10"}), "code"),
        (json!({"code": "X".repeat(33)}), "code"),
        (json!({}), "code"),
        (json!({"code": "BOTH1", "count": 3}), "code"),
        (json!({"count": 0}), "count"),
        (json!({"count": 10_001}), "count"),
        (json!({"count": 3, "customer_id": 1}), "customer_id"),
        (json!({"count": 3, "prefix": "-X"}), "prefix"),
        (json!({"code": "ONE1", "prefix": "X"}), "prefix"),
        (json!({"count": 3, "max_uses": 0}), "max_uses"),
        (json!({"count": 3, "batch": "no spaces"}), "batch"),
        (
            json!({"code": "PAST1", "expires_at": "2020-01-01T00:00:00Z"}),
            "expires_at",
        ),
        (
            json!({"code": "SOMEONE1", "customer_id": 424242}),
            "customer_id",
        ),
    ] {
        let response = app.post(&coupons, &body).await;
        let problem = expect_problem(response, 422, "validation-failed").await;
        assert_eq!(fields(&problem), [field], "{body}");
    }

    let small = expect_json(
        app.post(&coupons, &json!({"count": 3, "batch": "press"}))
            .await,
        201,
    )
    .await;
    assert_eq!(small["batch"], "press");
    assert_eq!(
        small["codes"].as_array().unwrap().len(),
        3,
        "few codes are shown"
    );

    let response = app
        .post(
            &coupons,
            &json!({"count": 500, "prefix": "sun-", "max_uses": 1, "batch": "flyers-2026"}),
        )
        .await;
    let batch = expect_json(response, 201).await;
    assert_eq!(batch["count"], 500);
    assert_eq!(batch["batch"], "flyers-2026");
    assert_eq!(
        batch["codes"],
        Value::Null,
        "a large batch is exported, not shown"
    );
    let unnamed = expect_json(app.post(&coupons, &json!({"count": 2})).await, 201).await;
    assert!(unnamed["batch"].as_str().is_some_and(|b| !b.is_empty()));

    let page = expect_json(
        app.get(&format!(
            "{coupons}?batch=flyers-2026&per_page=100&sort=-code"
        ))
        .await,
        200,
    )
    .await;
    assert_eq!(page["total"], 500);
    assert_eq!(page["items"][0]["max_uses"], 1);

    let response = app.get(&format!("{coupons}.csv?batch=flyers-2026")).await;
    assert_eq!(response.status(), 200);
    assert!(header_str(response.headers(), "content-type").starts_with("text/csv"));
    assert!(header_str(response.headers(), "content-disposition").starts_with("attachment"));
    let csv = response.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 501, "a header and 500 codes");
    assert_eq!(
        lines[0],
        "code,batch,max_uses,used_count,customer_id,expires_at,active"
    );
    let mut codes: Vec<&str> = lines[1..]
        .iter()
        .map(|line| line.split(',').next().unwrap())
        .collect();
    for code in &codes {
        assert!(code.starts_with("SUN-") && code.len() == 16, "{code}");
        assert!(!code[4..].contains(['0', 'O', '1', 'I']), "{code}");
    }
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), 500, "the codes are unique");
    let all = app
        .get(&format!("{coupons}.csv"))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(all.lines().count(), 1 + 1 + 3 + 500 + 2);

    // Deactivate and re-date a coupon; filter by state.
    let coupon_url = format!("/api/v1/admin/coupons/{single_id}");
    let response = app
        .patch(
            &coupon_url,
            &json!({"active": false, "expires_at": null, "version": 1}),
        )
        .await;
    let edited = expect_json(response, 200).await;
    assert_eq!(
        (edited["active"].clone(), edited["expires_at"].clone()),
        (json!(false), Value::Null)
    );
    let page = expect_json(app.get(&format!("{coupons}?active=false")).await, 200).await;
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["code"], "SUMMER10");

    // Use one flyer up, then count and filter.
    let used_code = lines[1].split(',').next().unwrap().to_owned();
    coupon::Entity::update_many()
        .col_expr(coupon::Column::UsedCount, Expr::value(1))
        .filter(coupon::Column::Code.eq(used_code.as_str()))
        .exec(app.state().db.writer())
        .await
        .unwrap();
    let page = expect_json(app.get(&format!("{coupons}?used_up=true")).await, 200).await;
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["code"], used_code.as_str());
    let page = expect_json(app.get(&format!("{coupons}?used_up=false")).await, 200).await;
    assert_eq!(page["total"], 1 + 3 + 499 + 2);
    let view = expect_json(app.get(&format!("{ADMIN}/{id}")).await, 200).await;
    assert_eq!(view["coupons"], json!({"total": 506, "used_up": 1}));

    // A used coupon stays; an unused one goes.
    let used = page_of(&app, &format!("{coupons}?used_up=true")).await;
    let used_url = format!("/api/v1/admin/coupons/{}", used["items"][0]["id"]);
    expect_problem(app.delete(&used_url).await, 409, "coupon-used").await;
    assert_eq!(app.delete(&coupon_url).await.status(), 204);
    expect_problem(app.delete(&coupon_url).await, 404, "not-found").await;
    let view = expect_json(app.get(&format!("{ADMIN}/{id}")).await, 200).await;
    assert_eq!(view["coupons"]["total"], 505);

    for event in ["coupons_issued", "coupon_updated", "coupon_deleted"] {
        let log = expect_json(
            app.get(&format!("/api/v1/admin/security-log?event={event}"))
                .await,
            200,
        )
        .await;
        assert!(log["total"].as_u64().unwrap() >= 1, "{event} is audited");
    }
}

async fn page_of(app: &TestApp, url: &str) -> Value {
    expect_json(app.get(url).await, 200).await
}

async fn coupon_endpoints_refuse_other_kinds(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let cart = create_kind(&app, "Cart deal", "cart", coupon_rule()).await;
    let coupons = format!("{ADMIN}/{}/coupons", cart["id"]);
    for response in [
        app.post(&coupons, &json!({"code": "CART10"})).await,
        app.post(&coupons, &json!({"count": 5})).await,
        app.get(&coupons).await,
        app.get(&format!("{coupons}.csv")).await,
    ] {
        expect_problem(response, 422, "not-a-coupon-promotion").await;
    }
    let missing = format!("{ADMIN}/999/coupons");
    expect_problem(
        app.post(&missing, &json!({"count": 1})).await,
        404,
        "not-found",
    )
    .await;
    let count = coupon::Entity::find()
        .all(app.state().db.writer())
        .await
        .unwrap()
        .len();
    assert_eq!(count, 0);
}

async fn promotions_and_coupons_orders_used_are_kept(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let promo = create_kind(&app, "Loyalty", "coupon", coupon_rule()).await;
    let id = promo["id"].as_i64().unwrap();
    let url = format!("{ADMIN}/{id}");
    let issued = expect_json(
        app.post(&format!("{url}/coupons"), &json!({"code": "LOYAL5"}))
            .await,
        201,
    )
    .await;
    let coupon_id = issued["coupon"]["id"].as_i64().unwrap();

    let now = Utc::now();
    redemption::Entity::insert(redemption::ActiveModel {
        version: Set(1),
        promotion_id: Set(id),
        coupon_id: Set(Some(coupon_id)),
        order_id: Set(4711),
        customer_id: Set(None),
        saving: Set(500),
        released_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec(app.state().db.writer())
    .await
    .unwrap();

    expect_problem(app.delete(&url).await, 409, "promotion-redeemed").await;
    let coupon_url = format!("/api/v1/admin/coupons/{coupon_id}");
    expect_problem(app.delete(&coupon_url).await, 409, "coupon-used").await;
    let page = expect_json(app.get(&format!("{url}/redemptions")).await, 200).await;
    assert_eq!(page["total"], 1);
    let used = &page["items"][0];
    assert_eq!(
        (
            used["order_id"].clone(),
            used["saving"].clone(),
            used["coupon_code"].clone()
        ),
        (json!(4711), json!(500), json!("LOYAL5"))
    );
    assert_eq!(used["released_at"], Value::Null);
    let paused = expect_json(
        app.patch(&url, &json!({"active": false, "version": 1}))
            .await,
        200,
    )
    .await;
    assert_eq!(paused["active"], false, "deactivating is the way out");

    // Without redemptions, the promotion goes and its coupons with it.
    let other = create_kind(&app, "Flash", "coupon", coupon_rule()).await;
    let other_url = format!("{ADMIN}/{}", other["id"]);
    expect_json(
        app.post(&format!("{other_url}/coupons"), &json!({"count": 5}))
            .await,
        201,
    )
    .await;
    assert_eq!(app.delete(&other_url).await.status(), 204);
    let left = coupon::Entity::find()
        .filter(coupon::Column::PromotionId.eq(other["id"].as_i64().unwrap()))
        .all(app.state().db.writer())
        .await
        .unwrap();
    assert!(left.is_empty(), "coupons cascade");
    expect_problem(
        app.get(&format!("{other_url}/redemptions")).await,
        404,
        "not-found",
    )
    .await;
}

async fn promotions_need_their_permissions(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let promo = create_kind(&app, "Members", "coupon", coupon_rule()).await;
    let url = format!("{ADMIN}/{}", promo["id"]);
    let password = "a long staff password";
    create_staff(
        &app,
        "reader@example.com",
        password,
        false,
        &["promotions.read"],
    )
    .await;
    create_staff(
        &app,
        "outsider@example.com",
        password,
        false,
        &["catalog.brands.read"],
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
    expect_json(reader.get(&format!("{url}/coupons")).await, 200).await;
    let response = reader
        .post(
            ADMIN,
            &json!({"name": "Nope", "kind": "cart", "stacking": "stackable",
                "rule": coupon_rule()}),
        )
        .await;
    expect_problem(response, 403, "forbidden").await;
    let response = reader
        .post(&format!("{url}/coupons"), &json!({"count": 1}))
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
    let anonymous = app.new_client();
    expect_problem(
        send(anonymous.get(app.url(ADMIN))).await,
        401,
        "unauthenticated",
    )
    .await;
}
