//! Payment notifications verified and applied per second: `POST
//! /api/v1/payments/notify/alipay` with genuine RSA2-signed notifications, one per pending
//! order (each is stored raw, verified with the gateway's public key, and applied in one
//! transaction that writes the ledger and marks the order paid), then the same
//! notifications again (stored, verified, found duplicate), on SQLite and (when
//! `BENCH_DATABASE_URL` names a PostgreSQL server) PostgreSQL, next to a bare axum JSON
//! hello driven by the same client as the baseline. The bench plays Alipay with the test
//! key pair in tests/fixtures/payments.
//!
//! `cargo bench --bench payments` (`scripts/bench` starts PostgreSQL).
//! `BENCH_NOTIFICATIONS` (default 2000) and `BENCH_CONCURRENCY` (default 32) tune the run.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use bazaar::config::AlipayConfig;
use bazaar::payments::gateway::crypto::PrivateKey;
use common::{drive, env_or, fresh_postgres, hello_baseline, prepare, print, start};
use futures::StreamExt;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

const APP_ID: &str = "2021000000000000";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/payments")
        .join(name)
}

fn main() -> anyhow::Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        return Ok(());
    }
    let count: usize = env_or("BENCH_NOTIFICATIONS", 2000);
    let concurrency: usize = env_or("BENCH_CONCURRENCY", 32);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let baseline = hello_baseline(count * 5, concurrency).await?;
        let alipay_key = PrivateKey::from_file(&fixture("alipay_private.pem"))?;
        let mut backends = vec![("sqlite", None)];
        if let Ok(url) = std::env::var("BENCH_DATABASE_URL") {
            backends.push(("postgres", Some(url)));
        }
        for (name, server_url) in backends {
            let dir = tempfile::tempdir()?;
            let database_url = match &server_url {
                None => format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("bench.db").display()
                ),
                Some(server) => fresh_postgres(server).await?,
            };
            let server = start(&database_url, dir.path(), |config| {
                config.payments.alipay = Some(AlipayConfig {
                    app_id: APP_ID.into(),
                    // Page pay is signed locally; nothing in this bench calls the gateway.
                    gateway_url: "http://127.0.0.1:9/gateway.do".into(),
                    private_key_path: fixture("merchant_private.pem"),
                    alipay_public_key_path: fixture("alipay_public.pem"),
                });
            })
            .await?;
            let payments = pending_payments(&server, count, concurrency).await?;
            let base = format!("http://{}", server.addr);
            let client = reqwest::Client::new();
            let bodies: Vec<String> = payments
                .iter()
                .enumerate()
                .map(|(i, (number, amount))| notification(&alipay_key, number, *amount, i))
                .collect();
            let send = |body: &String| {
                client
                    .post(format!("{base}/api/v1/payments/notify/alipay"))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body.clone())
            };
            let applied = drive(bodies.iter().map(send), concurrency).await;
            let paid = count_paid(&server).await?;
            anyhow::ensure!(
                applied.ok == count && paid == count as i64,
                "{name}: {} of {count} notifications answered, {paid} orders paid",
                applied.ok
            );
            print(
                &format!("{name} notify (verify + apply)"),
                &applied,
                Some(&baseline),
            );
            let duplicate = drive(bodies.iter().map(send), concurrency).await;
            anyhow::ensure!(duplicate.ok == count, "{name}: duplicates refused");
            print(
                &format!("{name} notify (duplicate)"),
                &duplicate,
                Some(&baseline),
            );
            server.shutdown().await?;
        }
        anyhow::Ok(())
    })
}

/// Checks out `count` orders and starts an Alipay page payment for each; returns each
/// payment's number and amount.
async fn pending_payments(
    server: &bazaar::app::Server,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<Vec<(String, i64)>> {
    let problem = |e: bazaar::platform::ApiError| anyhow::anyhow!("{:?}", e.problem());
    bazaar::system::service::create_payment_method(
        &server.state,
        serde_json::from_value(json!({"code": "alipay", "name": "Alipay", "provider": "alipay"}))?,
    )
    .await
    .map_err(problem)?;
    let prepared = prepare(server, count).await?;
    let base = format!("http://{}", server.addr);
    let client = reqwest::Client::new();
    let placed = futures::stream::iter(prepared.tokens.iter().enumerate())
        .map(|(i, token)| {
            let client = client.clone();
            let base = base.clone();
            let body = json!({
                "address": {"recipient": "Bench", "phone": "1", "region_id": prepared.region,
                    "line1": "1 Bench Road"},
                "shipping_method_id": prepared.method,
            });
            async move {
                let order: Value = client
                    .post(format!("{base}/api/v1/checkout"))
                    .bearer_auth(token)
                    .header("Idempotency-Key", format!("order-{i}"))
                    .json(&body)
                    .send()
                    .await?
                    .error_for_status()?
                    .json()
                    .await?;
                let number = order["number"].as_str().unwrap_or_default();
                let payment: Value = client
                    .post(format!("{base}/api/v1/orders/{number}/payments"))
                    .bearer_auth(token)
                    .header("Idempotency-Key", format!("pay-{i}"))
                    .json(&json!({"method": "alipay"}))
                    .send()
                    .await?
                    .error_for_status()?
                    .json()
                    .await?;
                anyhow::Ok((
                    payment["number"].as_str().unwrap_or_default().to_owned(),
                    payment["amount"].as_i64().unwrap_or_default(),
                ))
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await;
    placed.into_iter().collect()
}

/// An asynchronous `trade_status_sync` notification as Alipay sends it: every parameter
/// but `sign` and `sign_type`, sorted and `&`-joined, signed SHA256withRSA.
fn notification(key: &PrivateKey, number: &str, amount: i64, i: usize) -> String {
    let total = format!("{}.{:02}", amount / 100, amount % 100);
    let mut params = BTreeMap::from([
        ("app_id", APP_ID.to_owned()),
        ("auth_app_id", APP_ID.to_owned()),
        ("buyer_id", "2088102177846880".to_owned()),
        ("charset", "utf-8".to_owned()),
        ("gmt_create", "2026-11-23 10:00:00".to_owned()),
        ("gmt_payment", "2026-11-23 10:00:05".to_owned()),
        ("notify_id", format!("2026112300222100005{i:012}")),
        ("notify_time", "2026-11-23 10:00:06".to_owned()),
        ("notify_type", "trade_status_sync".to_owned()),
        ("out_trade_no", number.to_owned()),
        ("receipt_amount", total.clone()),
        ("buyer_pay_amount", total.clone()),
        ("total_amount", total),
        ("trade_no", format!("2026112322001400{i:012}")),
        ("trade_status", "TRADE_SUCCESS".to_owned()),
        ("version", "1.0".to_owned()),
    ]);
    let content = params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    params.insert("sign", key.sign_base64(content.as_bytes()));
    params.insert("sign_type", "RSA2".to_owned());
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter())
        .finish()
}

async fn count_paid(server: &bazaar::app::Server) -> anyhow::Result<i64> {
    let db = server.state.db.writer();
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM orders WHERE status = 'paid'",
        ))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no count"))?;
    Ok(row.try_get::<i64>("", "n")?)
}
