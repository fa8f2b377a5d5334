//! Inventory: stock levels and their ledger, adjustments by staff, reservations that
//! concurrent checkouts cannot oversell, bundles reserving their parts, the low-stock
//! alert, and the rule that the ledger always sums to the stock.

use bazaar::app::AppState;
use bazaar::catalog::entity::sku;
use bazaar::inventory::entity::stock_movement;
use bazaar::inventory::model::{AdjustmentKind, MovementRef};
use bazaar::inventory::service;
use bazaar::notify::entity as email;
use bazaar::platform::ApiResult;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};

use crate::harness::{
    Backend, TestApp, both_backends, create_staff, drain_jobs, expect_json, expect_problem,
    header_str, login, login_as_superuser, spawn,
};

both_backends!(
    staff_adjust_stock_and_every_change_is_in_the_ledger,
    the_stock_list_filters_low_and_out_of_stock,
    concurrent_reservations_never_take_more_than_is_available,
    the_ledger_sums_to_the_stock_after_random_movements,
    crossing_the_safety_stock_alerts_stock_staff_once,
    a_bundle_reserves_and_ships_its_parts,
);

const INVENTORY: &str = "/api/v1/admin/inventory";
const PRODUCTS: &str = "/api/v1/admin/products";

/// Creates a listed product with one SKU per `(code, stock)`; returns the SKU ids.
async fn product_with_skus(app: &TestApp, slug: &str, skus: &[(&str, i64)]) -> Vec<i64> {
    let skus: Vec<Value> = skus
        .iter()
        .map(|(code, stock)| json!({"code": code, "price": 1000, "stock": stock}))
        .collect();
    let product = expect_json(
        app.post(
            PRODUCTS,
            &json!({"title": format!("Product {slug}"), "slug": slug, "status": "listed",
                "skus": skus}),
        )
        .await,
        201,
    )
    .await;
    product["skus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_i64().unwrap())
        .collect()
}

async fn stock(app: &TestApp, sku_id: i64) -> Value {
    expect_json(app.get(&format!("{INVENTORY}/{sku_id}")).await, 200).await
}

async fn ledger(app: &TestApp, sku_id: i64, query: &str) -> Value {
    expect_json(
        app.get(&format!("{INVENTORY}/{sku_id}/ledger?{query}"))
            .await,
        200,
    )
    .await
}

async fn adjust(app: &TestApp, sku_id: i64, body: Value) -> reqwest::Response {
    app.post(&format!("{INVENTORY}/{sku_id}/adjustments"), &body)
        .await
}

fn by(reason: &str) -> MovementRef {
    MovementRef {
        reason: reason.to_owned(),
        order_id: Some(7),
        customer_id: Some(3),
        ..Default::default()
    }
}

/// Runs `reserve` (or another movement) in a transaction of its own, committing on success.
async fn in_txn(state: &AppState, op: Op) -> ApiResult<()> {
    let txn = state.db.begin().await?;
    let reason = by("test");
    match op {
        Op::Reserve(id, q) => service::reserve(&txn, &[(id, q)], &reason).await?,
        Op::Release(id, q) => service::release(&txn, &[(id, q)], &reason).await?,
        Op::Ship(id, q) => service::ship(&txn, &[(id, q)], &reason).await?,
        Op::Return(id, q, damaged) => {
            service::receive_return(&txn, id, q, damaged, &reason).await?
        }
        Op::Adjust(id, delta, kind) => {
            service::adjust(&txn, id, delta, kind, &reason).await?;
        }
    }
    txn.commit().await?;
    Ok(())
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Reserve(i64, i64),
    Release(i64, i64),
    Ship(i64, i64),
    Return(i64, i64, bool),
    Adjust(i64, i64, AdjustmentKind),
}

async fn sku_row(app: &TestApp, id: i64) -> sku::Model {
    sku::Entity::find_by_id(id)
        .one(app.state().db.writer())
        .await
        .unwrap()
        .unwrap()
}

async fn movements(app: &TestApp, sku_id: i64) -> Vec<stock_movement::Model> {
    stock_movement::Entity::find()
        .filter(stock_movement::Column::SkuId.eq(sku_id))
        .order_by_asc(stock_movement::Column::Id)
        .all(app.state().db.writer())
        .await
        .unwrap()
}

/// The ledger of `sku_id` sums to its levels, and each row's "after" follows the one
/// before it.
async fn assert_ledger_matches(app: &TestApp, sku_id: i64) {
    let row = sku_row(app, sku_id).await;
    let (mut on_hand, mut reserved, mut damaged) = (0, 0, 0);
    for m in movements(app, sku_id).await {
        on_hand += m.on_hand_delta;
        reserved += m.reserved_delta;
        damaged += m.damaged_delta;
        assert_eq!(
            (m.on_hand_after, m.reserved_after, m.damaged_after),
            (on_hand, reserved, damaged),
            "movement {} of SKU {sku_id} does not follow its predecessors",
            m.id
        );
    }
    assert_eq!(
        (on_hand, reserved, damaged),
        (row.stock, row.reserved, row.damaged),
        "the ledger of SKU {sku_id} does not sum to its levels"
    );
    assert!(
        row.stock >= 0 && row.reserved >= 0 && row.damaged >= 0,
        "{row:?}"
    );
}

async fn staff_adjust_stock_and_every_change_is_in_the_ledger(backend: Backend) {
    let app = spawn(backend).await;
    let root = login_as_superuser(&app).await;
    let ids = product_with_skus(&app, "mug", &[("MUG", 5)]).await;
    let mug = ids[0];

    // Creation wrote the initial row.
    let level = stock(&app, mug).await;
    assert_eq!(
        (level["on_hand"].as_i64(), level["available"].as_i64()),
        (Some(5), Some(5))
    );
    let page = ledger(&app, mug, "").await;
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["kind"], "initial");
    assert_eq!(page["items"][0]["staff_id"], root);

    // Up, with a reason and the actor.
    let response = adjust(&app, mug, json!({"delta": 10, "reason": "delivery 42"})).await;
    let location = header_str(response.headers(), "location");
    let up = expect_json(response, 201).await;
    assert_eq!(location, format!("{INVENTORY}/{mug}/ledger/{}", up["id"]));
    assert_eq!(up["kind"], "adjust");
    assert_eq!(
        (up["on_hand_delta"].as_i64(), up["on_hand_after"].as_i64()),
        (Some(10), Some(15))
    );
    assert_eq!(up["reason"], "delivery 42");
    assert_eq!(up["staff_id"], root);
    expect_json(app.get(&location).await, 200).await;

    // Down, and a write-off.
    let down = expect_json(
        adjust(&app, mug, json!({"delta": -3, "reason": "stock count"})).await,
        201,
    )
    .await;
    assert_eq!(down["on_hand_after"], 12);
    let off = expect_json(
        adjust(
            &app,
            mug,
            json!({"delta": -2, "reason": "broken", "kind": "write_off"}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(
        (off["kind"].as_str(), off["on_hand_after"].as_i64()),
        (Some("write_off"), Some(10))
    );

    // Below zero: 409, nothing written.
    expect_problem(
        adjust(&app, mug, json!({"delta": -11, "reason": "too many"})).await,
        409,
        "insufficient-stock",
    )
    .await;
    // Below what orders reserved: the same.
    in_txn(app.state(), Op::Reserve(mug, 4)).await.unwrap();
    let problem = expect_problem(
        adjust(&app, mug, json!({"delta": -7, "reason": "count"})).await,
        409,
        "insufficient-stock",
    )
    .await;
    assert!(problem["detail"].as_str().unwrap().contains("4 reserved"));
    let level = stock(&app, mug).await;
    assert_eq!(
        (
            level["on_hand"].as_i64(),
            level["reserved"].as_i64(),
            level["available"].as_i64()
        ),
        (Some(10), Some(4), Some(6))
    );
    assert_eq!(ledger(&app, mug, "").await["total"], 5);

    // Checks.
    for (body, field) in [
        (json!({"delta": 0, "reason": "x"}), "delta"),
        (json!({"delta": 1, "reason": "  "}), "reason"),
        (json!({"delta": 1, "reason": "x".repeat(501)}), "reason"),
        (
            json!({"delta": 1, "reason": "x", "kind": "write_off"}),
            "delta",
        ),
    ] {
        let problem = expect_problem(adjust(&app, mug, body).await, 422, "validation-failed").await;
        assert_eq!(problem["errors"][0]["field"], field);
    }
    expect_problem(
        adjust(&app, 999_999, json!({"delta": 1, "reason": "x"})).await,
        404,
        "not-found",
    )
    .await;

    // The SKU editor's stock field is an adjustment too.
    let sku = expect_json(app.get(&format!("/api/v1/admin/skus/{mug}")).await, 200).await;
    assert_eq!(
        (sku["reserved"].as_i64(), sku["available"].as_i64()),
        (Some(4), Some(6))
    );
    let edited = expect_json(
        app.patch(
            &format!("/api/v1/admin/skus/{mug}"),
            &json!({"stock": 20, "version": sku["version"]}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        (edited["stock"].as_i64(), edited["available"].as_i64()),
        (Some(20), Some(16))
    );
    let newest = &ledger(&app, mug, "per_page=1").await["items"][0];
    assert_eq!(
        (newest["kind"].as_str(), newest["on_hand_delta"].as_i64()),
        (Some("adjust"), Some(10))
    );
    assert_eq!(newest["reason"], "set on SKU edit");
    assert_eq!(newest["staff_id"], root);

    // Ledger filters: kind, order, time; newest first.
    let page = ledger(&app, mug, "kind=adjust").await;
    assert_eq!(page["total"], 3);
    assert!(page["items"][0]["id"].as_i64() > page["items"][1]["id"].as_i64());
    let page = ledger(&app, mug, "order_id=7").await;
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["kind"], "reserve");
    assert_eq!(page["items"][0]["customer_id"], 3);
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let future = future.replace('+', "%2B");
    assert_eq!(
        ledger(&app, mug, &format!("created_after={future}")).await["total"],
        0
    );
    assert_eq!(
        ledger(&app, mug, &format!("created_before={future}")).await["total"],
        6
    );
    assert_ledger_matches(&app, mug).await;

    // Settings, checked; on hand is not among them.
    let settings = expect_json(
        app.patch(
            &format!("{INVENTORY}/{mug}"),
            &json!({"safety_stock": 3, "reorder_qty": 24}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        (
            settings["safety_stock"].as_i64(),
            settings["reorder_qty"].as_i64()
        ),
        (Some(3), Some(24))
    );
    expect_problem(
        app.patch(&format!("{INVENTORY}/{mug}"), &json!({"safety_stock": -1}))
            .await,
        422,
        "validation-failed",
    )
    .await;
    expect_problem(
        app.patch(&format!("{INVENTORY}/{mug}"), &json!({"on_hand": 1}))
            .await,
        422,
        "validation-failed",
    )
    .await;

    // Reading needs inventory.read, adjusting inventory.write.
    create_staff(
        &app,
        "viewer@example.com",
        "viewer password 1",
        false,
        &["inventory.read"],
    )
    .await;
    assert_eq!(
        login(&app, "viewer@example.com", "viewer password 1")
            .await
            .status(),
        200
    );
    stock(&app, mug).await;
    expect_problem(
        adjust(&app, mug, json!({"delta": 1, "reason": "x"})).await,
        403,
        "forbidden",
    )
    .await;
}

async fn the_stock_list_filters_low_and_out_of_stock(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let ids = product_with_skus(&app, "tea", &[("TEA-A", 10), ("TEA-B", 2), ("TEA-C", 0)]).await;
    let ebook = product_with_skus(&app, "ebook", &[("EBOOK", 0)]).await[0];
    let (a, b) = (ids[0], ids[1]);
    for (id, safety) in [(a, 3), (b, 3)] {
        expect_json(
            app.patch(
                &format!("{INVENTORY}/{id}"),
                &json!({"safety_stock": safety}),
            )
            .await,
            200,
        )
        .await;
    }
    expect_json(
        app.patch(
            &format!("{INVENTORY}/{ebook}"),
            &json!({"always_available": true}),
        )
        .await,
        200,
    )
    .await;
    // Reserved units are not available: A has 10 on hand, 8 reserved.
    in_txn(app.state(), Op::Reserve(a, 8)).await.unwrap();

    let codes = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["sku_code"].as_str().unwrap().to_owned())
            .collect()
    };
    let get = |query: &str| {
        let path = format!("{INVENTORY}?{query}");
        let app = &app;
        async move { expect_json(app.get(&path).await, 200).await }
    };
    let all = get("sort=code").await;
    assert_eq!(codes(&all), ["EBOOK", "TEA-A", "TEA-B", "TEA-C"]);
    assert_eq!(all["items"][1]["available"], 2);
    assert_eq!(all["items"][1]["product_title"], "Product tea");
    assert_eq!(
        codes(&get("low_stock=true&sort=code").await),
        ["TEA-A", "TEA-B"]
    );
    assert_eq!(codes(&get("out_of_stock=true").await), ["TEA-C"]);
    assert_eq!(codes(&get("q=tea-b").await), ["TEA-B"]);
    assert_eq!(codes(&get("q=PRODUCT%20EB").await), ["EBOOK"]);
    let ebook_product = stock(&app, ebook).await["product_id"].clone();
    assert_eq!(
        codes(&get(&format!("product_id={ebook_product}")).await),
        ["EBOOK"]
    );
    let page = get("sort=-available&per_page=2&page=2").await;
    assert_eq!(page["total"], 4);
    assert_eq!(codes(&page), ["TEA-C", "EBOOK"]);
    expect_problem(
        app.get(&format!("{INVENTORY}?sort=price")).await,
        400,
        "invalid-sort",
    )
    .await;
    expect_problem(
        app.get(&format!("{INVENTORY}/999999")).await,
        404,
        "not-found",
    )
    .await;

    // The storefront agrees: reserved units are not for sale, an ebook never runs out.
    let page = expect_json(app.get("/api/v1/products/ebook").await, 200).await;
    assert_eq!(page["in_stock"], true);
    let listed = expect_json(app.get("/api/v1/products?in_stock=true").await, 200).await;
    assert_eq!(listed["total"], 2);
}

async fn concurrent_reservations_never_take_more_than_is_available(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let sku_id = product_with_skus(&app, "drop", &[("DROP", 50)]).await[0];
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let state = app.state().clone();
            tokio::spawn(async move { in_txn(&state, Op::Reserve(sku_id, 1)).await })
        })
        .collect();
    let (mut won, mut sold_out) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => won += 1,
            Err(err) => {
                let problem = err.problem();
                assert_eq!(problem.code, "out-of-stock", "{}", problem.detail);
                assert!(
                    problem.detail.contains("DROP has 0 available"),
                    "{}",
                    problem.detail
                );
                sold_out += 1;
            }
        }
    }
    assert_eq!((won, sold_out), (50, 150));
    let row = sku_row(&app, sku_id).await;
    assert_eq!((row.stock, row.reserved), (50, 50));
    let reserves = stock_movement::Entity::find()
        .filter(stock_movement::Column::SkuId.eq(sku_id))
        .filter(stock_movement::Column::Kind.eq("reserve"))
        .count(app.state().db.writer())
        .await
        .unwrap();
    assert_eq!(reserves, 50);
    assert_ledger_matches(&app, sku_id).await;
}

async fn the_ledger_sums_to_the_stock_after_random_movements(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let skus = product_with_skus(
        &app,
        "random",
        &[("R-1", 0), ("R-2", 3), ("R-3", 10), ("R-4", 25), ("R-5", 1)],
    )
    .await;
    for seed in [7_u64, 1_234, 99_999] {
        let mut rng = StdRng::seed_from_u64(seed);
        let (mut ok, mut failed) = (0, 0);
        for _ in 0..200 {
            let id = skus[rng.random_range(0..skus.len())];
            let q = rng.random_range(1..=6);
            let op = match rng.random_range(0..8) {
                0 => Op::Adjust(id, q, AdjustmentKind::Adjust),
                1 => Op::Adjust(id, -q, AdjustmentKind::Adjust),
                2 | 3 => Op::Reserve(id, q),
                4 => Op::Release(id, q),
                5 => Op::Ship(id, q),
                6 => Op::Return(id, q, rng.random_bool(0.3)),
                _ => Op::Adjust(id, -q, AdjustmentKind::WriteOff),
            };
            match in_txn(app.state(), op).await {
                Ok(()) => ok += 1,
                Err(err) => {
                    let code = err.problem().code;
                    assert!(
                        ["out-of-stock", "stock-conflict", "insufficient-stock"]
                            .contains(&code.as_str()),
                        "{op:?} failed with {code}"
                    );
                    failed += 1;
                }
            }
        }
        assert!(
            ok > 50 && failed > 10,
            "seed {seed}: {ok} ok, {failed} failed"
        );
        for &id in &skus {
            assert_ledger_matches(&app, id).await;
        }
    }
}

async fn crossing_the_safety_stock_alerts_stock_staff_once(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    create_staff(
        &app,
        "stock@example.com",
        "stock password 1",
        false,
        &["inventory.write"],
    )
    .await;
    create_staff(
        &app,
        "viewer@example.com",
        "viewer password 1",
        false,
        &["inventory.read"],
    )
    .await;
    let id = product_with_skus(&app, "lamp", &[("LAMP", 10)]).await[0];
    expect_json(
        app.patch(
            &format!("{INVENTORY}/{id}"),
            &json!({"safety_stock": 5, "reorder_qty": 30}),
        )
        .await,
        200,
    )
    .await;
    let alerts = |to: &'static str| {
        let app = &app;
        async move {
            email::Entity::find()
                .filter(email::Column::ToAddress.eq(to))
                .filter(email::Column::Template.eq("low_stock"))
                .all(app.state().db.writer())
                .await
                .unwrap()
        }
    };

    // 10 -> 6: still at or above the safety stock.
    in_txn(app.state(), Op::Reserve(id, 4)).await.unwrap();
    drain_jobs(&app, "low_stock_alert").await;
    assert!(alerts("stock@example.com").await.is_empty());

    // 6 -> 4 crosses it.
    expect_json(
        adjust(&app, id, json!({"delta": -2, "reason": "count"})).await,
        201,
    )
    .await;
    drain_jobs(&app, "low_stock_alert").await;
    let sent = alerts("stock@example.com").await;
    assert_eq!(sent.len(), 1);
    assert!(sent[0].subject.contains("LAMP"), "{}", sent[0].subject);
    for expected in [
        "Product lamp",
        "Available: 4",
        "Safety stock: 5",
        "Reorder quantity: 30",
    ] {
        assert!(
            sent[0].text_body.contains(expected),
            "{}",
            sent[0].text_body
        );
    }
    assert_eq!(
        alerts("root@example.com").await.len(),
        1,
        "superusers hear too"
    );
    assert!(alerts("viewer@example.com").await.is_empty());

    // Further down is no new crossing.
    in_txn(app.state(), Op::Reserve(id, 1)).await.unwrap();
    drain_jobs(&app, "low_stock_alert").await;
    assert_eq!(alerts("stock@example.com").await.len(), 1);

    // Back above and down again is a new crossing.
    in_txn(app.state(), Op::Release(id, 5)).await.unwrap();
    in_txn(app.state(), Op::Reserve(id, 5)).await.unwrap();
    drain_jobs(&app, "low_stock_alert").await;
    assert_eq!(alerts("stock@example.com").await.len(), 2);
}

async fn a_bundle_reserves_and_ships_its_parts(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let pen = product_with_skus(&app, "pen", &[("PEN", 10)]).await[0];
    let pad = product_with_skus(&app, "pad", &[("PAD", 3)]).await[0];
    let kit = expect_json(
        app.post(
            PRODUCTS,
            &json!({"title": "Desk kit", "slug": "desk-kit", "is_bundle": true, "status": "listed",
                "skus": [{"code": "KIT", "price": 1000,
                    "parts": [{"sku_id": pen, "quantity": 2}, {"sku_id": pad, "quantity": 1}]}]}),
        )
        .await,
        201,
    )
    .await;
    let kit = kit["skus"][0]["id"].as_i64().unwrap();

    // Two kits and a pen on its own, merged per part.
    let txn = app.state().db.begin().await.unwrap();
    service::reserve(&txn, &[(kit, 2), (pen, 1)], &by("order 7"))
        .await
        .unwrap();
    txn.commit().await.unwrap();
    let (pen_row, pad_row) = (sku_row(&app, pen).await, sku_row(&app, pad).await);
    assert_eq!((pen_row.reserved, pad_row.reserved), (5, 2));
    assert_eq!(movements(&app, pen).await.last().unwrap().reserved_delta, 5);
    assert!(
        movements(&app, kit).await.is_empty(),
        "a bundle keeps no ledger of its own"
    );

    // One pad left: a second pair of kits does not fit, and nothing is written.
    let txn = app.state().db.begin().await.unwrap();
    let err = service::reserve(&txn, &[(kit, 2)], &by("order 8"))
        .await
        .unwrap_err();
    drop(txn);
    assert_eq!(err.problem().code, "out-of-stock");
    assert!(
        err.problem().detail.contains("PAD has 1 available"),
        "{}",
        err.problem().detail
    );
    assert_eq!(sku_row(&app, pen).await.reserved, 5);
    let view = expect_json(app.get(&format!("/api/v1/admin/skus/{kit}")).await, 200).await;
    assert_eq!(view["stock"], 1, "one pad and five pens make one more kit");
    let page = expect_json(app.get("/api/v1/products/desk-kit").await, 200).await;
    assert_eq!(page["skus"][0]["stock"], 1);

    // Shipping takes the parts off the shelf.
    in_txn(app.state(), Op::Ship(kit, 2)).await.unwrap();
    let (pen_row, pad_row) = (sku_row(&app, pen).await, sku_row(&app, pad).await);
    assert_eq!((pen_row.stock, pen_row.reserved), (6, 1));
    assert_eq!((pad_row.stock, pad_row.reserved), (1, 0));
    // More than is reserved is a conflict, not a negative level.
    let err = in_txn(app.state(), Op::Ship(kit, 1)).await.unwrap_err();
    assert_eq!(err.problem().code, "stock-conflict");

    // A bundle's stock is not set by hand.
    expect_problem(
        adjust(&app, kit, json!({"delta": 1, "reason": "x"})).await,
        422,
        "validation-failed",
    )
    .await;
    expect_problem(
        app.patch(&format!("{INVENTORY}/{kit}"), &json!({"safety_stock": 1}))
            .await,
        422,
        "validation-failed",
    )
    .await;
    for id in [pen, pad] {
        assert_ledger_matches(&app, id).await;
    }
}
