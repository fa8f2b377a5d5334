//! Background jobs and email end to end: the outbox over real SMTP and to `.eml` files,
//! retries with back-off into the dead letters, the monitor, and the cron scheduler.

use std::time::Duration;

use bazaar::config::{Config, ScheduleConfig, SmtpConfig, SmtpSecurity};
use sea_orm::{FromQueryResult, Statement};
use serde_json::{Value, json};

use crate::harness::*;
use crate::smtp::SmtpSink;

/// Fast polling and heartbeats, so tests wait for jobs in milliseconds.
fn quick_jobs(config: &mut Config) {
    config.jobs.poll_interval_ms = 50;
    config.jobs.heartbeat_secs = 1;
    config.jobs.shutdown_grace_secs = 2;
    config.email.retry_backoff_secs = 1;
}

fn smtp(config: &mut Config, sink: &SmtpSink) {
    config.email.smtp = Some(SmtpConfig {
        host: "127.0.0.1".into(),
        port: sink.port,
        security: SmtpSecurity::None,
        username: None,
        password: None,
        timeout_secs: 5,
    });
}

/// Polls the email until `done` holds for it (bounded).
async fn wait_for_email(app: &TestApp, id: i64, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..300 {
        let email = expect_json(app.get(&format!("/api/v1/admin/emails/{id}")).await, 200).await;
        if done(&email) {
            return email;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("email {id} never reached the expected state");
}

async fn wait_for_dead_jobs(app: &TestApp, count: u64) -> Value {
    for _ in 0..100 {
        let dead = expect_json(app.get("/api/v1/admin/jobs/failed").await, 200).await;
        if dead["total"] == count {
            return dead;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("expected {count} dead jobs");
}

async fn queue_test_email(app: &TestApp, to: &str) -> i64 {
    let queued = expect_json(
        app.post("/api/v1/admin/emails/test", &json!({"to": to}))
            .await,
        202,
    )
    .await;
    queued["id"].as_i64().unwrap()
}

async fn email_over_smtp_arrives_with_headers_and_both_parts(backend: Backend) {
    let sink = SmtpSink::start().await;
    let app = spawn_with(backend, |c| {
        quick_jobs(c);
        smtp(c, &sink);
        c.shop.name = "Tea & Co".into();
        c.email.from = "Tea & Co <shop@tea.example>".into();
    })
    .await;
    login_as_superuser(&app).await;

    let invalid = app
        .post(
            "/api/v1/admin/emails/test",
            &json!({"to": "not an address"}),
        )
        .await;
    let problem = expect_problem(invalid, 422, "validation-failed").await;
    assert_eq!(problem["errors"][0]["field"], "to");

    let id = queue_test_email(&app, "Ann <ann@customer.example>").await;
    let message = &sink.wait_for(1).await[0];
    assert_eq!(message.mail_from, "shop@tea.example");
    assert_eq!(message.rcpt_to, ["ann@customer.example"]);
    let data = &message.data;
    // The display name has a character that needs RFC 2047 encoding: "Tea & Co".
    assert!(
        data.contains("From: =?utf-8?b?VGVhICYgQ28=?= <shop@tea.example>"),
        "{data}"
    );
    assert!(data.contains("To: Ann <ann@customer.example>"), "{data}");
    assert!(
        data.contains("Subject: Bazaar test email from Tea & Co"),
        "{data}"
    );
    assert!(
        data.contains(&format!("Message-ID: <email-{id}@tea.example>")),
        "{data}"
    );
    assert!(data.contains("multipart/alternative"), "{data}");
    assert!(
        data.contains("Content-Type: text/plain; charset=utf-8"),
        "{data}"
    );
    assert!(
        data.contains("Content-Type: text/html; charset=utf-8"),
        "{data}"
    );
    assert!(
        data.contains("Tea &amp; Co"),
        "the HTML part is escaped: {data}"
    );

    let email = wait_for_email(&app, id, |e| e["status"] == "sent").await;
    assert_eq!(email["attempts"], 1);
    assert!(email["sent_at"].is_string());
    let sent = expect_json(app.get("/api/v1/admin/emails?status=sent").await, 200).await;
    assert_eq!(sent["total"], 1);
}

async fn email_without_smtp_is_written_as_an_eml_file(backend: Backend) {
    let app = spawn_with(backend, quick_jobs).await;
    login_as_superuser(&app).await;
    let id = queue_test_email(&app, "bob@customer.example").await;
    wait_for_email(&app, id, |e| e["status"] == "sent").await;
    let path = app
        .state()
        .config
        .data_dir
        .join("outbox")
        .join(format!("{id}.eml"));
    let eml = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(eml.contains("To: bob@customer.example"), "{eml}");
    assert!(
        eml.contains("Subject: Bazaar test email from Bazaar"),
        "{eml}"
    );
    assert!(
        eml.contains("text/plain") && eml.contains("text/html"),
        "{eml}"
    );
}

async fn refused_email_retries_with_backoff_then_fails_and_can_be_retried(backend: Backend) {
    let sink = SmtpSink::start().await;
    sink.refuse(true);
    let app = spawn_with(backend, |c| {
        quick_jobs(c);
        smtp(c, &sink);
        c.email.max_attempts = 3;
    })
    .await;
    login_as_superuser(&app).await;
    let started = std::time::Instant::now();
    let id = queue_test_email(&app, "carol@customer.example").await;

    let failed = wait_for_email(&app, id, |e| e["status"] == "failed").await;
    // Three attempts with back-off of 1 s then 2 s between them (run times are stored in
    // whole seconds, so allow one second of rounding).
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(failed["attempts"], 3);
    assert!(
        failed["last_error"]
            .as_str()
            .unwrap()
            .contains("Sender refused"),
        "{failed}"
    );
    assert!(sink.received().is_empty());

    // The job is recorded dead right after its handler marked the email failed.
    let dead = wait_for_dead_jobs(&app, 1).await;
    let job = &dead["items"][0];
    assert_eq!(job["queue"], "send_email");
    assert_eq!(job["attempts"], 3);
    assert_eq!(job["payload"], json!({"email_id": id}));
    assert!(
        job["error"].as_str().unwrap().contains("Sender refused"),
        "{job}"
    );
    let overview = expect_json(app.get("/api/v1/admin/jobs").await, 200).await;
    let queue = overview["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["queue"] == "send_email")
        .unwrap();
    assert_eq!(queue["dead"], 1);
    assert!(
        overview["workers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["queue"] == "send_email"),
        "{overview}"
    );
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("jobs_retried_total{queue=\"send_email\"}"),
        "{metrics}"
    );
    // (The recorder is shared by every app in the test process: check the series, not values.)
    assert!(
        metrics.contains("jobs_queue_depth{queue=\"send_email\",state=\"dead\"}"),
        "{metrics}"
    );

    // The server accepts again: staff retry the dead job and the email goes out.
    sink.refuse(false);
    let job_id = job["id"].as_str().unwrap();
    let retried = expect_json(
        app.post_empty(&format!("/api/v1/admin/jobs/{job_id}/retry"))
            .await,
        200,
    )
    .await;
    assert_eq!(retried["status"], "Pending");
    let sent = wait_for_email(&app, id, |e| e["status"] == "sent").await;
    assert_eq!(sent["attempts"], 4);
    assert_eq!(sink.wait_for(1).await.len(), 1);
    wait_for_dead_jobs(&app, 0).await;
    expect_problem(
        app.post_empty(&format!("/api/v1/admin/jobs/{job_id}/retry"))
            .await,
        409,
        "job-not-dead",
    )
    .await;
    expect_problem(
        app.post_empty("/api/v1/admin/jobs/01J0000000000000000000000/retry")
            .await,
        404,
        "not-found",
    )
    .await;

    // A failed email can also be retried from the email queue.
    sink.refuse(true);
    let second = queue_test_email(&app, "dan@customer.example").await;
    wait_for_email(&app, second, |e| e["status"] == "failed").await;
    sink.refuse(false);
    let again = app
        .post_empty(&format!("/api/v1/admin/emails/{second}/retry"))
        .await;
    assert_eq!(expect_json(again, 202).await["status"], "pending");
    wait_for_email(&app, second, |e| e["status"] == "sent").await;
    expect_problem(
        app.post_empty(&format!("/api/v1/admin/emails/{second}/retry"))
            .await,
        409,
        "email-not-failed",
    )
    .await;
    assert_eq!(
        app.delete(&format!("/api/v1/admin/emails/{second}"))
            .await
            .status(),
        204
    );
    expect_problem(
        app.get(&format!("/api/v1/admin/emails/{second}")).await,
        404,
        "not-found",
    )
    .await;

    // The second email's first job is still dead (the email went out through a new job):
    // staff clear it from the dead letters.
    let dead = wait_for_dead_jobs(&app, 1).await;
    let stale = dead["items"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.delete(&format!("/api/v1/admin/jobs/{stale}"))
            .await
            .status(),
        204
    );
    wait_for_dead_jobs(&app, 0).await;
    expect_problem(
        app.delete(&format!("/api/v1/admin/jobs/{stale}")).await,
        404,
        "not-found",
    )
    .await;
}

async fn an_email_of_a_rolled_back_change_is_never_sent(backend: Backend) {
    let app = spawn_with(backend, quick_jobs).await;
    let state = app.state();
    let txn = state.db.begin().await.unwrap();
    let id = bazaar::notify::email::queue_email(
        &txn,
        &state.config,
        "eve@customer.example",
        "test",
        &json!({"shop": "x", "sender": "y"}),
    )
    .await
    .unwrap();
    drop(txn);
    tokio::time::sleep(Duration::from_millis(500)).await;
    login_as_superuser(&app).await;
    expect_problem(
        app.get(&format!("/api/v1/admin/emails/{id}")).await,
        404,
        "not-found",
    )
    .await;
    let overview = expect_json(app.get("/api/v1/admin/jobs").await, 200).await;
    assert!(
        !overview["queues"]
            .as_array()
            .unwrap()
            .iter()
            .any(|q| q["queue"] == "send_email"),
        "no job may survive the rollback: {overview}"
    );
    assert!(
        !app.state()
            .config
            .data_dir
            .join("outbox")
            .join(format!("{id}.eml"))
            .exists()
    );
}

#[derive(Debug, FromQueryResult)]
struct TickCount {
    jobs: i64,
    ticks: i64,
}

async fn two_schedulers_fire_each_tick_once(backend: Backend) {
    let every_second = |c: &mut Config| {
        quick_jobs(c);
        c.jobs.schedules.insert(
            "heartbeat".into(),
            ScheduleConfig {
                enabled: true,
                cron: Some("* * * * * *".into()),
            },
        );
    };
    let first = spawn_with(backend, every_second).await;
    let second = spawn_sharing(&first).await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    second.shutdown().await;

    let db = first.state().db.writer();
    let table = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => "apalis.jobs",
        _ => "Jobs",
    };
    let counts = TickCount::find_by_statement(Statement::from_string(
        db.get_database_backend(),
        format!(
            "SELECT COUNT(*) AS jobs, COUNT(DISTINCT idempotency_key) AS ticks FROM {table} WHERE job_type = 'heartbeat'"
        ),
    ))
    .one(db)
    .await
    .unwrap()
    .unwrap();
    assert!(counts.ticks >= 3, "{counts:?}");
    assert_eq!(
        counts.jobs, counts.ticks,
        "a tick fired more than once: {counts:?}"
    );

    login_as_superuser(&first).await;
    let overview = expect_json(first.get("/api/v1/admin/jobs").await, 200).await;
    let heartbeat = overview["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "heartbeat")
        .unwrap();
    assert_eq!(heartbeat["cron"], "* * * * * *");
    assert!(heartbeat["runs"].as_i64().unwrap() >= 2, "{heartbeat}");
    assert!(
        heartbeat["last_run_at"].is_string(),
        "the heartbeat records its runs: {heartbeat}"
    );
}

both_backends!(
    email_over_smtp_arrives_with_headers_and_both_parts,
    email_without_smtp_is_written_as_an_eml_file,
    refused_email_retries_with_backoff_then_fails_and_can_be_retried,
    an_email_of_a_rolled_back_change_is_never_sent,
    two_schedulers_fire_each_tick_once,
);
