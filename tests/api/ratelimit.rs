//! Rate limits per route group: bursts over the limit get 429 with `Retry-After` and
//! `RateLimit-*` headers; with Redis the budget is shared by every instance.

use bazaar::config::{Config, LimitKey, RateLimit};
use serde_json::json;

use crate::harness::*;

fn limits(config: &mut Config) {
    config.rate_limits.enabled = true;
    config.rate_limits.groups.insert(
        "login".into(),
        RateLimit {
            requests: 3,
            period_secs: 60,
            key: LimitKey::Ip,
        },
    );
    config.rate_limits.groups.insert(
        "api".into(),
        RateLimit {
            requests: 5,
            period_secs: 60,
            key: LimitKey::Session,
        },
    );
}

async fn login_attempt(app: &TestApp, client: &reqwest::Client, n: usize) -> reqwest::Response {
    send(
        client
            .post(app.url(LOGIN_PATH))
            .json(&json!({"email": format!("u{n}@example.com"), "password": "wrong password!"})),
    )
    .await
}

async fn a_burst_over_the_login_limit_gets_429(backend: Backend) {
    let app = spawn_with(backend, limits).await;
    let client = app.new_client();
    for n in 0..3 {
        let response = login_attempt(&app, &client, n).await;
        assert_eq!(header_str(response.headers(), "ratelimit-limit"), "3");
        assert_eq!(
            header_str(response.headers(), "ratelimit-remaining"),
            (2 - n).to_string()
        );
        expect_problem(response, 401, "invalid-credentials").await;
    }
    let refused = login_attempt(&app, &client, 9).await;
    let retry_after: u64 = header_str(refused.headers(), "retry-after")
        .parse()
        .unwrap();
    assert!(
        (1..=20).contains(&retry_after),
        "one request comes back every 20 s: {retry_after}"
    );
    assert_eq!(header_str(refused.headers(), "ratelimit-remaining"), "0");
    expect_problem(refused, 429, "too-many-requests").await;

    // The general API has its own budget, per session (here: per IP, with no session).
    for _ in 0..5 {
        assert_eq!(
            app.new_client()
                .get(app.url("/api/v1/regions"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    expect_problem(
        app.new_client()
            .get(app.url("/api/v1/regions"))
            .send()
            .await
            .unwrap(),
        429,
        "too-many-requests",
    )
    .await;
    // Operations endpoints are never limited.
    assert_eq!(
        app.new_client()
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

/// With Redis, two instances spend one budget. (Only scaled out: the in-process store is
/// per instance by design.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limit_holds_across_instances_sharing_redis() {
    let first = spawn_with(Backend::Scaled, limits).await;
    let second = spawn_sharing(&first).await;
    for n in 0..2 {
        expect_problem(
            login_attempt(&first, &first.new_client(), n).await,
            401,
            "invalid-credentials",
        )
        .await;
    }
    expect_problem(
        login_attempt(&second, &second.new_client(), 2).await,
        401,
        "invalid-credentials",
    )
    .await;
    expect_problem(
        login_attempt(&second, &second.new_client(), 3).await,
        429,
        "too-many-requests",
    )
    .await;
    expect_problem(
        login_attempt(&first, &first.new_client(), 4).await,
        429,
        "too-many-requests",
    )
    .await;
}

/// Sign-up and password reset have budgets of their own, and the token grant spends the
/// login budget: a script cannot mint accounts, reset mails or password guesses at will.
async fn account_endpoints_have_their_own_budgets(backend: Backend) {
    let app = spawn_with(backend, |config| {
        limits(config);
        for group in ["register", "password_reset"] {
            config.rate_limits.groups.insert(
                group.into(),
                RateLimit {
                    requests: 2,
                    period_secs: 3600,
                    key: LimitKey::Ip,
                },
            );
        }
    })
    .await;
    let post = |path: &'static str, n: usize| {
        let client = app.new_client();
        let url = app.url(path);
        let body = json!({"email": format!("{}-{n}@example.com", path.rsplit('/').next().unwrap()), "password": "a long customer password", "name": "S"});
        async move { send(client.post(url).json(&body)).await }
    };
    for (path, accepted) in [
        ("/api/v1/auth/register", 202),
        ("/api/v1/auth/password-reset", 202),
        ("/api/v1/auth/token", 401),
    ] {
        let budget = if path.ends_with("token") { 3 } else { 2 };
        for n in 0..budget {
            assert_eq!(post(path, n).await.status(), accepted, "{path}");
        }
        let refused = post(path, 9).await;
        assert!(refused.headers().contains_key("retry-after"), "{path}");
        expect_problem(refused, 429, "too-many-requests").await;
    }
}

both_backends!(
    a_burst_over_the_login_limit_gets_429,
    account_endpoints_have_their_own_budgets
);
