//! Checkout throughput: `POST /api/v1/checkout` by distinct signed-in customers, each with
//! one cart line of the same SKU (so every checkout prices the cart, quotes shipping,
//! reserves stock with a conditional update, writes the order, its history and its
//! time-out job), on SQLite and (when `BENCH_DATABASE_URL` names a PostgreSQL server)
//! PostgreSQL, next to a bare axum JSON hello driven by the same client as the baseline.
//!
//! `cargo bench --bench checkout` (`scripts/bench` starts PostgreSQL).
//! `BENCH_CHECKOUTS` (default 2000) and `BENCH_CONCURRENCY` (default 32) tune the run.

mod common;

use common::{drive, env_or, fresh_postgres, hello_baseline, prepare, print, start};
use serde_json::json;

fn main() -> anyhow::Result<()> {
    // `cargo test --all-targets` runs bench targets too: only measure under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return Ok(());
    }
    let count: usize = env_or("BENCH_CHECKOUTS", 2000);
    let concurrency: usize = env_or("BENCH_CONCURRENCY", 32);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let baseline = hello_baseline(count * 5, concurrency).await?;

        let mut backends = vec![("sqlite", None)];
        if let Ok(url) = std::env::var("BENCH_DATABASE_URL") {
            backends.push(("postgres", Some(url)));
        }
        for (name, server_url) in backends {
            let dir = tempfile::tempdir()?;
            let database_url = match &server_url {
                None => format!("sqlite://{}?mode=rwc", dir.path().join("bench.db").display()),
                Some(server) => fresh_postgres(server).await?,
            };
            let server = start(&database_url, dir.path(), |_| {}).await?;
            let prepared = prepare(&server, count).await?;
            let base = format!("http://{}", server.addr);
            let client = reqwest::Client::new();
            let requests = prepared.tokens.iter().enumerate().map(|(i, token)| {
                client
                    .post(format!("{base}/api/v1/checkout"))
                    .bearer_auth(token)
                    .header("Idempotency-Key", format!("bench-{i}"))
                    .json(&json!({
                        "address": {"recipient": "Bench", "phone": "1", "region_id": prepared.region,
                            "line1": "1 Bench Road"},
                        "shipping_method_id": prepared.method,
                    }))
            });
            let measured = drive(requests, concurrency).await;
            anyhow::ensure!(
                measured.ok == count,
                "{name}: only {} of {count} checkouts succeeded",
                measured.ok
            );
            print(&format!("{name} checkout"), &measured, Some(&baseline));
            server.shutdown().await?;
        }
        anyhow::Ok(())
    })
}
