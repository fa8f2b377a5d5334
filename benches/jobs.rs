//! Jobs per second through the queue: N near no-op jobs (`heartbeat`, one upsert each)
//! queued, then drained by one worker and by several, on the embedded SQLite queue and, when
//! `BENCH_DATABASE_URL` names a PostgreSQL server (scripts/bench starts one), on PostgreSQL.
//! Run with `cargo bench --bench jobs`.

use std::time::{Duration, Instant};

use bazaar::app::{App, AppState, Background};
use bazaar::config::{Config, SecretUrl};
use bazaar::jobs::heartbeat::Heartbeat;
use bazaar::jobs::worker::WorkerOptions;
use bazaar::jobs::{Enqueue, enqueue, store};

const JOBS: usize = 2000;

fn main() -> anyhow::Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let postgres = std::env::var("BENCH_DATABASE_URL").ok();
        for concurrency in [1, 8] {
            let dir = tempfile::tempdir()?;
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("jobs.db").display());
            let rate = drain(&url, dir.path(), concurrency).await?;
            println!("SQLite queue, concurrency {concurrency}: {rate:>8.0} jobs/s");
            if let Some(base) = &postgres {
                let url = fresh_postgres_database(base, concurrency).await?;
                let rate = drain(&url, dir.path(), concurrency).await?;
                println!("PostgreSQL queue, concurrency {concurrency}: {rate:>8.0} jobs/s");
            }
        }
        anyhow::Ok(())
    })
}

/// Queues `JOBS` jobs, then times the workers until every one is done.
async fn drain(url: &str, dir: &std::path::Path, concurrency: usize) -> anyhow::Result<f64> {
    let mut config = Config {
        data_dir: dir.to_owned(),
        ..Config::default()
    };
    config.database.url = Some(SecretUrl::new(url));
    config.jobs.run_scheduler = false;
    config.jobs.poll_interval_ms = 10;
    let state = AppState(std::sync::Arc::new(App::open(config).await?));
    let txn = state.db.begin().await?;
    for _ in 0..JOBS {
        enqueue(&txn, &state.config, &Heartbeat, Enqueue::default()).await?;
    }
    txn.commit().await?;
    let started = Instant::now();
    let background = Background::start(
        &state,
        &WorkerOptions {
            queues: Some(vec!["heartbeat".into()]),
            concurrency,
        },
    )?;
    loop {
        let done: i64 = store::queue_stats(state.db.writer())
            .await?
            .iter()
            .map(|q| q.done)
            .sum();
        if done as usize >= JOBS {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(300),
            "the queue did not drain"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rate = JOBS as f64 / started.elapsed().as_secs_f64();
    background.stop().await;
    Ok(rate)
}

async fn fresh_postgres_database(base: &str, tag: usize) -> anyhow::Result<String> {
    use sea_orm::ConnectionTrait;
    let name = format!("bench_jobs_{tag}_{}", std::process::id());
    let admin = sea_orm::Database::connect(format!("{base}/postgres")).await?;
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name}"))
        .await?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await?;
    Ok(format!("{base}/{name}"))
}
