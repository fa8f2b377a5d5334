//! Storefront catalog reads at scale: requests/s and p99 latency of
//! `GET /api/v1/products?per_page=20` and `GET /api/v1/products/{slug}` (random slugs of a
//! hot set of a thousand products, each read once before measuring) at
//! 10k and 1M SKUs, with the hot-read cache on and off, on SQLite and (when
//! `BENCH_DATABASE_URL` names a PostgreSQL server) PostgreSQL, next to a bare axum JSON
//! hello as the ceiling, all measured with `wrk` on loopback in one run.
//!
//! `cargo bench --bench catalog` (`scripts/bench` installs wrk and starts PostgreSQL).
//! `BENCH_SCALES=10000,1000000` and `BENCH_SECONDS` tune the run.

use std::process::Command;

use axum::Router;
use axum::routing::get;
use bazaar::app::Server;
use bazaar::config::{Config, SecretUrl};
use sea_orm::{ConnectionTrait, Database};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

struct Measure {
    rps: f64,
    p99_ms: f64,
}

fn main() -> anyhow::Result<()> {
    // `cargo test --all-targets` runs bench targets too: only measure under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return Ok(());
    }
    anyhow::ensure!(
        Command::new("wrk").arg("--version").output().is_ok(),
        "wrk is not installed: apt-get install wrk (or run scripts/bench)"
    );
    let seconds: u64 = env_or("BENCH_SECONDS", 8);
    let scales: Vec<u64> = std::env::var("BENCH_SCALES")
        .unwrap_or_else(|_| "10000,1000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;

    let hello_url = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hello", listener.local_addr()?);
        let hello = Router::new().route(
            "/hello",
            get(|| async { axum::Json(serde_json::json!({"hello": "world"})) }),
        );
        tokio::spawn(async move { axum::serve(listener, hello).await });
        anyhow::Ok(url)
    })?;
    let hello = wrk(&hello_url, seconds, None)?;
    println!(
        "{:<44} {:>10.0} req/s  p99 {:>7.2} ms",
        "hello (bare axum JSON)", hello.rps, hello.p99_ms
    );

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
            Some(server) => runtime.block_on(fresh_postgres(server))?,
        };
        let mut loaded = 0;
        for &scale in &scales {
            // Load up to this scale once, through an app that then stops.
            runtime.block_on(async {
                let server = start(&database_url, dir.path(), true).await?;
                let report =
                    bazaar::catalog::seed::load_scale(&server.state, scale - loaded).await?;
                println!(
                    "{name}: loaded {} SKUs ({} products) in {:.1} s",
                    report.skus,
                    report.products,
                    report.elapsed.as_secs_f64()
                );
                server.shutdown().await?;
                anyhow::Ok(())
            })?;
            loaded = scale;
            let products = scale / 4;
            for cached in [true, false] {
                let server = runtime.block_on(start(&database_url, dir.path(), cached))?;
                let base = format!("http://{}", server.addr);
                let label = |what: &str| {
                    format!(
                        "{name} {scale} SKUs {} {what}",
                        if cached { "cached" } else { "uncached" }
                    )
                };
                let list = wrk(
                    &format!("{base}/api/v1/products?per_page=20"),
                    seconds,
                    None,
                )?;
                println!(
                    "{:<44} {:>10.0} req/s  p99 {:>7.2} ms  ({:.3} of hello)",
                    label("list"),
                    list.rps,
                    list.p99_ms,
                    list.rps / hello.rps
                );
                let detail = wrk(
                    &format!("{base}/api/v1/products/scale-0"),
                    seconds,
                    Some(products),
                )?;
                println!(
                    "{:<44} {:>10.0} req/s  p99 {:>7.2} ms  ({:.3} of hello)",
                    label("detail"),
                    detail.rps,
                    detail.p99_ms,
                    detail.rps / hello.rps
                );
                runtime.block_on(server.shutdown())?;
            }
        }
    }
    Ok(())
}

async fn start(database_url: &str, dir: &std::path::Path, cached: bool) -> anyhow::Result<Server> {
    let mut config = Config {
        listen: "127.0.0.1:0".parse()?,
        data_dir: dir.to_owned(),
        ..Config::default()
    };
    config.database.url = Some(SecretUrl::new(database_url.to_owned()));
    config.auth.bootstrap_admin = false;
    config.rate_limits.enabled = false;
    config.jobs.run_workers = false;
    config.catalog.hot_cache = cached;
    bazaar::app::build(config).await
}

/// A new, empty database on the PostgreSQL server at `server`.
async fn fresh_postgres(server: &str) -> anyhow::Result<String> {
    let name = format!("bench_catalog_{}", std::process::id());
    let admin = Database::connect(format!("{server}/postgres")).await?;
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name}"))
        .await?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await?;
    Ok(format!("{server}/{name}"))
}

/// Product pages a shop's traffic concentrates on: a benchmark of random pages among a
/// million would measure cold misses, not the cache.
const HOT_SET: u64 = 1000;

/// The `scale-<n>` numbers of the hot set, spread evenly over `products`.
fn hot_set(products: u64) -> Vec<u64> {
    let step = (products / HOT_SET).max(1);
    (0..HOT_SET.min(products)).map(|i| i * step).collect()
}

/// Reads `url` once, so measured requests do not wait on a cold load.
fn warm(url: &str) -> anyhow::Result<()> {
    let status = Command::new("curl")
        .args(["-sf", "-o", "/dev/null", "--max-time", "60", url])
        .status()?;
    anyhow::ensure!(status.success(), "{url} did not answer");
    Ok(())
}

/// Runs wrk against `url` (with `products`, a random product page of the hot set per
/// request, each read once before) and returns requests/s and the 99th percentile latency.
fn wrk(url: &str, seconds: u64, products: Option<u64>) -> anyhow::Result<Measure> {
    let script = tempfile::NamedTempFile::new()?;
    let mut args = vec![
        "-t2".to_owned(),
        "-c32".to_owned(),
        format!("-d{seconds}s"),
        "--timeout".to_owned(),
        "10s".to_owned(),
        "--latency".to_owned(),
    ];
    if let Some(products) = products {
        let hot = hot_set(products);
        let base = url.trim_end_matches("scale-0");
        for n in &hot {
            warm(&format!("{base}scale-{n}"))?;
        }
        let numbers: Vec<String> = hot.iter().map(u64::to_string).collect();
        std::fs::write(
            script.path(),
            format!(
                "math.randomseed(42)\nlocal hot = {{{}}}\nrequest = function()\n  return wrk.format(\"GET\", \"/api/v1/products/scale-\" .. hot[math.random(1, #hot)])\nend\n",
                numbers.join(",")
            ),
        )?;
        args.push("-s".into());
        args.push(script.path().display().to_string());
    } else {
        warm(url)?;
    }
    args.push(url.to_owned());
    let out = Command::new("wrk").args(&args).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(!text.contains("Non-2xx"), "{url} answered errors:\n{text}");
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("cannot read wrk's output:\n{text}"))?;
    let p99 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .map(str::trim)
        .and_then(parse_latency)
        .ok_or_else(|| anyhow::anyhow!("no p99 in wrk's output:\n{text}"))?;
    Ok(Measure { rps, p99_ms: p99 })
}

/// wrk prints latencies as `812.00us`, `3.41ms` or `1.02s`.
fn parse_latency(text: &str) -> Option<f64> {
    let (number, factor) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|n| n * factor)
}
