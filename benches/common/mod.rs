//! What the HTTP benchmarks share: the load driver, the report line, a Bazaar server on a
//! fresh database, and a shop with customers whose carts are ready to check out.

#![allow(dead_code)] // Each bench uses its own part of this module.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bazaar::app::Server;
use bazaar::cart::service::Owner;
use bazaar::config::{Config, SecretUrl};
use bazaar::identity::service::Actor;
use bazaar::identity::tokens::{Grant, Subject, sign_access_token};
use bazaar::platform::request::RequestMeta;
use futures::StreamExt;
use sea_orm::{ConnectionTrait, Database};
use serde_json::json;

pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

pub struct Measure {
    pub per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub ok: usize,
}

/// A bare axum JSON hello driven by the same client: the ceiling every ratio refers to.
pub async fn hello_baseline(requests: usize, concurrency: usize) -> anyhow::Result<Measure> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hello_url = format!("http://{}/hello", listener.local_addr()?);
    let hello = axum::Router::new().route(
        "/hello",
        axum::routing::get(|| async { axum::Json(json!({"hello": "world"})) }),
    );
    tokio::spawn(async move { axum::serve(listener, hello).await });
    let client = reqwest::Client::new();
    let measured = drive((0..requests).map(|_| client.get(&hello_url)), concurrency).await;
    print("hello (bare axum JSON, same client)", &measured, None);
    Ok(measured)
}

pub fn print(label: &str, m: &Measure, baseline: Option<&Measure>) {
    let ratio = baseline.map_or(String::new(), |b| {
        format!("  ({:.4} of hello)", m.per_sec / b.per_sec)
    });
    println!(
        "{label:<40} {:>9.0} /s  p50 {:>7.2} ms  p99 {:>7.2} ms{ratio}",
        m.per_sec, m.p50_ms, m.p99_ms
    );
}

/// Sends every request, `concurrency` at a time; counts 2xx answers and times each.
pub async fn drive(
    requests: impl Iterator<Item = reqwest::RequestBuilder>,
    concurrency: usize,
) -> Measure {
    let started = Instant::now();
    let results: Vec<(bool, Duration)> = futures::stream::iter(requests)
        .map(|request| async move {
            let t = Instant::now();
            let ok = match request.send().await {
                Ok(r) => {
                    let ok = r.status().is_success();
                    let _ = r.bytes().await;
                    ok
                }
                Err(_) => false,
            };
            (ok, t.elapsed())
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let mut latencies: Vec<Duration> = results.iter().map(|(_, d)| *d).collect();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Measure {
        per_sec: results.len() as f64 / elapsed.as_secs_f64(),
        p50_ms: at(0.50).as_secs_f64() * 1000.0,
        p99_ms: at(0.99).as_secs_f64() * 1000.0,
        ok: results.iter().filter(|(ok, _)| *ok).count(),
    }
}

pub struct Prepared {
    pub tokens: Vec<String>,
    pub region: i64,
    pub method: i64,
}

/// Inserts a customer with a verified email and no password, skipping the sign-up's
/// password hashing, which would dominate a bench's set-up.
pub async fn verified_customer(
    state: &bazaar::app::AppState,
    email: &str,
    name: &str,
) -> anyhow::Result<bazaar::customers::entity::customer::Model> {
    Ok(bazaar::customers::store::insert_customer(
        state.db.writer(),
        bazaar::customers::store::NewCustomer {
            email: Some(email),
            name,
            phone: None,
            password_hash: None,
            email_verified_at: Some(chrono::Utc::now()),
        },
    )
    .await?)
}

/// A region with a shipping method, one SKU with stock for every checkout, and `count`
/// customers each holding a cart with one unit of it.
pub async fn prepare(server: &Server, count: usize) -> anyhow::Result<Prepared> {
    let state = &server.state;
    let meta = RequestMeta {
        ip: None,
        request_id: None,
    };
    let actor = Actor {
        principal: None,
        meta: &meta,
    };
    let problem = |e: bazaar::platform::ApiError| anyhow::anyhow!("{:?}", e.problem());
    let region = bazaar::system::service::create_region(
        state,
        serde_json::from_value(json!({"code": "BC", "name": "Benchland", "level": "country"}))?,
    )
    .await
    .map_err(problem)?;
    let method = bazaar::system::service::create_shipping_method(
        state,
        serde_json::from_value(json!({"code": "bench", "name": "Bench post", "rates": [
            {"region_id": null, "first_weight_grams": 1000, "first_price": 800,
             "step_weight_grams": 1000, "step_price": 200}]}))?,
    )
    .await
    .map_err(problem)?;
    let product = bazaar::catalog::products::create_product(
        state,
        &actor,
        serde_json::from_value(json!({"title": "Bench tea", "slug": "bench-tea", "status": "listed",
            "skus": [{"code": "BENCH-TEA", "price": 1999, "stock": count * 2, "weight_grams": 250}]}))?,
    )
    .await
    .map_err(problem)?;
    let sku = product.skus[0].id;
    let state = Arc::new(state.clone());
    let customers = futures::stream::iter(0..count)
        .map(|i| {
            let state = state.clone();
            async move {
                let email = format!("bench{i}@example.com");
                let customer = verified_customer(&state, &email, "Bench").await?;
                bazaar::cart::service::add_line(&state, &Owner::Customer(customer.id), sku, 1)
                    .await
                    .map_err(|e| anyhow::anyhow!("{:?}", e.problem()))?;
                let token = sign_access_token(
                    &state.keys,
                    &state.config.auth.tokens,
                    &Grant {
                        subject: Subject::Customer(customer.id),
                        scope: vec!["customer".into()],
                        roles: vec!["customer".into()],
                        email: Some(email),
                        name: "Bench".into(),
                    },
                )
                .map_err(|e| anyhow::anyhow!("{:?}", e.problem()))?;
                anyhow::Ok(token)
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    let tokens = customers.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Prepared {
        tokens,
        region: region.id,
        method: method.id,
    })
}

/// A Bazaar server on `database_url`, without rate limits or job workers (nothing but the
/// measured requests runs); `customize` adds what a bench needs.
pub async fn start(
    database_url: &str,
    dir: &std::path::Path,
    customize: impl FnOnce(&mut Config),
) -> anyhow::Result<Server> {
    let mut config = Config {
        listen: "127.0.0.1:0".parse()?,
        data_dir: dir.to_owned(),
        ..Config::default()
    };
    config.database.url = Some(SecretUrl::new(database_url.to_owned()));
    config.auth.bootstrap_admin = false;
    config.rate_limits.enabled = false;
    config.jobs.run_workers = false;
    customize(&mut config);
    bazaar::app::build(config).await
}

/// A new, empty database on the PostgreSQL server at `server`.
pub async fn fresh_postgres(server: &str) -> anyhow::Result<String> {
    let name = format!("bench_{}_{}", env!("CARGO_CRATE_NAME"), std::process::id());
    let admin = Database::connect(format!("{server}/postgres")).await?;
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name}"))
        .await?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await?;
    Ok(format!("{server}/{name}"))
}
