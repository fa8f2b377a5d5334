//! Sign-in costs: customer login latency (p50/p99) over HTTP next to a bare argon2
//! verification, and access-token verifications per second on one core next to a session
//! lookup in the in-process store. Run with `cargo bench --bench auth`; loopback only,
//! bounded in count and time.

use std::time::{Duration, Instant};

use bazaar::config::{Config, SecretUrl};
use bazaar::customers::service::create_account;
use bazaar::customers::store::NewCustomer;
use bazaar::identity::accounts::customer_grant;
use bazaar::identity::{password, session, tokens};
use serde_json::json;

const LOGINS: usize = 200;
const VERIFY_FOR: Duration = Duration::from_secs(3);

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn report(name: &str, mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let (p50, p99) = (percentile(&samples, 0.5), percentile(&samples, 0.99));
    println!(
        "{name}: n={} p50={:.1} ms p99={:.1} ms",
        samples.len(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
    p50
}

fn main() -> anyhow::Result<()> {
    // `cargo test --all-targets` runs bench targets too: only measure under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let dir = tempfile::tempdir()?;
    runtime.block_on(async {
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
        config.rate_limits.enabled = false;
        config.auth.max_failures_per_ip = u32::MAX;
        let server = bazaar::app::build(config).await?;
        let state = server.state.clone();
        let secret = "a long customer password";
        let hash = password::hash(secret)
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let account = create_account(
            state.db.writer(),
            NewCustomer {
                email: Some("bench@example.com"),
                name: "Bench",
                phone: None,
                password_hash: Some(&hash),
                email_verified_at: Some(chrono::Utc::now()),
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;

        // Baseline: argon2id verification alone (the deliberate cost of a login).
        let mut argon = Vec::with_capacity(LOGINS);
        for _ in 0..LOGINS {
            let started = Instant::now();
            assert!(password::verify(secret, Some(&hash)).await);
            argon.push(started.elapsed());
        }
        let argon_p50 = report("argon2id verify (m=19456 KiB, t=2, p=1)", argon);

        let client = reqwest::Client::new();
        let url = format!("http://{}/api/v1/auth/login", server.addr);
        let body = json!({"email": "bench@example.com", "password": secret});
        let mut logins = Vec::with_capacity(LOGINS);
        for _ in 0..LOGINS {
            let started = Instant::now();
            let response = client.post(&url).json(&body).send().await?;
            anyhow::ensure!(
                response.status() == 200,
                "login failed: {}",
                response.status()
            );
            logins.push(started.elapsed());
        }
        let login_p50 = report("POST /api/v1/auth/login, one client", logins);
        println!(
            "login p50 / argon2 p50 = {:.2}",
            login_p50.as_secs_f64() / argon_p50.as_secs_f64()
        );

        // Token verification on one thread: signature, claims and the revocation check.
        let token = tokens::sign_access_token(
            &state.keys,
            &state.config.auth.tokens,
            &customer_grant(&account),
        )
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let verify_rate = rate(|| async {
            tokens::verify_access_token(
                &state.keys,
                &state.config.auth.tokens,
                state.kv.as_ref(),
                &token,
            )
            .await
            .is_ok()
        })
        .await;
        let ttl = Duration::from_secs(60);
        let (session_id, _) =
            session::create(state.kv.as_ref(), session::Kind::Customer, account.id, ttl).await?;
        let session_rate = rate(|| async {
            session::load(state.kv.as_ref(), session::Kind::Customer, &session_id)
                .await
                .is_ok_and(|s| s.is_some())
        })
        .await;
        println!("access-token verifications per second, one core: {verify_rate:.0}");
        println!("in-process session lookups per second, one core: {session_rate:.0}");
        println!(
            "token verification / session lookup = {:.3}",
            verify_rate / session_rate
        );
        server.shutdown().await?;
        anyhow::Ok(())
    })
}

/// Calls `f` back to back on the current task for `VERIFY_FOR`; returns calls per second.
async fn rate<F, Fut>(f: F) -> f64
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    let mut calls = 0u64;
    while started.elapsed() < VERIFY_FOR {
        for _ in 0..100 {
            assert!(f().await, "the call failed");
        }
        calls += 100;
    }
    calls as f64 / started.elapsed().as_secs_f64()
}
