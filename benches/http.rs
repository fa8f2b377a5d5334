//! Throughput of `GET /api/v1/regions` (the storefront's region tree from SQLite) next to a
//! bare axum "hello" on the same machine, in the same run, measured with `wrk` on loopback.
//! Run with `cargo bench --bench http` (`scripts/bench` installs wrk and adds start-up and
//! memory figures). Prints requests/s of both and their ratio.

use std::process::Command;

use axum::Router;
use axum::routing::get;
use bazaar::config::{Config, SecretUrl};
use bazaar::system::model::{CreateRegion, RegionLevel};
use bazaar::system::service::create_region;

const PROVINCES: usize = 34;
const CITIES_PER_PROVINCE: usize = 4;

fn main() -> anyhow::Result<()> {
    // `cargo test --all-targets` runs bench targets too: only measure under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return Ok(());
    }
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let connections: u64 = std::env::var("BENCH_CONNECTIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(32);
    anyhow::ensure!(
        Command::new("wrk").arg("--version").output().is_ok(),
        "wrk is not installed: apt-get install wrk (or run scripts/bench)"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let dir = tempfile::tempdir()?;
    // The multi-threaded runtime keeps serving on its workers while wrk runs.
    let (_server, regions_url, hello_url) = runtime.block_on(async {
        let mut config = Config {
            listen: "127.0.0.1:0".parse()?,
            data_dir: dir.path().to_owned(),
            ..Config::default()
        };
        config.database.url = Some(SecretUrl::new(format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("bench.db").display()
        )));
        config.auth.bootstrap_admin = false;
        // Measure the endpoint, not the per-client rate limit wrk would hit in a second.
        config.rate_limits.enabled = false;
        let server = bazaar::app::build(config).await?;
        seed_regions(&server.state).await?;
        let regions_url = format!("http://{}/api/v1/regions", server.addr);

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let hello_url = format!("http://{}/hello", listener.local_addr()?);
        let hello = Router::new().route("/hello", get(|| async { "hello" }));
        tokio::spawn(async move { axum::serve(listener, hello).await });
        anyhow::Ok((server, regions_url, hello_url))
    })?;

    let hello = wrk(&hello_url, seconds, connections)?;
    let regions = wrk(&regions_url, seconds, connections)?;
    println!("hello (bare axum):     {hello:>10.0} requests/s");
    println!(
        "GET /api/v1/regions:   {regions:>10.0} requests/s ({} regions in the tree)",
        1 + PROVINCES * (1 + CITIES_PER_PROVINCE)
    );
    println!("ratio regions / hello: {:.3}", regions / hello);
    Ok(())
}

async fn seed_regions(state: &bazaar::app::AppState) -> anyhow::Result<()> {
    let region = |code: String, level, parent_id| CreateRegion {
        parent_id,
        name: format!("Region {code}"),
        code,
        level,
        sort_order: 0,
    };
    let err = |e: bazaar::platform::ApiError| anyhow::anyhow!("{:?}", e.problem());
    let cn = create_region(state, region("CN".into(), RegionLevel::Country, None))
        .await
        .map_err(err)?;
    for p in 0..PROVINCES {
        let province = create_region(
            state,
            region(format!("CN-{p}"), RegionLevel::Province, Some(cn.id)),
        )
        .await
        .map_err(err)?;
        for c in 0..CITIES_PER_PROVINCE {
            create_region(
                state,
                region(format!("CN-{p}-{c}"), RegionLevel::City, Some(province.id)),
            )
            .await
            .map_err(err)?;
        }
    }
    Ok(())
}

/// Runs wrk against `url` and returns its requests per second.
fn wrk(url: &str, seconds: u64, connections: u64) -> anyhow::Result<f64> {
    // A short warm-up fills connection pools and caches.
    Command::new("wrk")
        .args(["-t1", "-c4", "-d1s", url])
        .output()?;
    let out = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            url,
        ])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(!text.contains("Non-2xx"), "{url} answered errors:\n{text}");
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("cannot read wrk's output:\n{text}"))
}
