//! The `bazaar` binary as an operator uses it: subcommands, flags, signals, restarts.

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_bazaar");

fn bazaar(data_dir: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .arg("--data-dir")
        .arg(data_dir)
        .current_dir(data_dir)
        .env_remove("RUST_LOG")
        .env("BAZAAR_LOG__LEVEL", "warn");
    command
}

fn create_admin(data_dir: &Path, email: &str, password: &str) -> Output {
    let mut child = bazaar(data_dir)
        .args(["create-admin", "--email", email, "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start bazaar");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn serve(data_dir: &Path, port: u16) -> Child {
    bazaar(data_dir)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("BAZAAR_AUTH__BOOTSTRAP_ADMIN", "false")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot start bazaar serve")
}

async fn wait_ready(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let url = format!("http://127.0.0.1:{port}/readyz");
    while Instant::now() < deadline {
        if let Ok(response) = reqwest::get(&url).await
            && response.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("bazaar did not become ready on port {port}");
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "bazaar ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn create_admin_then_serve_share_the_data_dir_and_restart_on_the_same_port() {
    let dir = tempfile::tempdir().unwrap();
    let created = create_admin(dir.path(), "Owner@Shop.example", "a long enough password");
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    assert!(String::from_utf8_lossy(&created.stdout).contains("owner@shop.example"));

    let again = create_admin(dir.path(), "owner@shop.example", "another long password");
    assert!(
        !again.status.success(),
        "a second create-admin with the same email must fail"
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    let weak = create_admin(dir.path(), "weak@shop.example", "short");
    assert!(!weak.status.success());

    let port = free_port();
    let mut server = serve(dir.path(), port);
    wait_ready(port).await;
    let client = reqwest::Client::new();
    let login = client
        .post(format!("http://127.0.0.1:{port}/api/v1/admin/auth/login"))
        .json(&serde_json::json!({"email": "owner@shop.example", "password": "a long enough password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        login.status(),
        200,
        "the admin made by create-admin signs in on serve"
    );

    assert!(
        terminate(&mut server).success(),
        "SIGTERM must end with exit 0"
    );
    // A restart right after the stop gets the same port at once.
    let mut restarted = serve(dir.path(), port);
    wait_ready(port).await;
    assert!(terminate(&mut restarted).success());
}

#[test]
fn config_masks_credentials_and_names_bad_keys() {
    let dir = tempfile::tempdir().unwrap();
    let out = bazaar(dir.path())
        .arg("config")
        .env(
            "BAZAAR_DATABASE__URL",
            "postgres://shop:hunter2@db.internal/bazaar",
        )
        .env("BAZAAR_HTTP__REQUEST_TIMEOUT_SECS", "7")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(!printed.contains("hunter2"), "{printed}");
    assert!(
        printed.contains("postgres://shop:********@db.internal/bazaar"),
        "{printed}"
    );
    assert!(printed.contains("request_timeout_secs = 7"), "{printed}");

    let file = dir.path().join("bazaar.toml");
    std::fs::write(&file, "[http]\nbody_limit_bytes = \"lots\"\n").unwrap();
    let out = bazaar(dir.path())
        .args(["config", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(
        error.contains("body_limit_bytes"),
        "the error must name the key: {error}"
    );

    std::fs::remove_file(&file).unwrap();
    let out = bazaar(dir.path())
        .arg("config")
        .env("BAZAAR_REDIS__URL", "memcached://x")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("redis.url"));
}

#[test]
fn migrate_reports_and_applies_pending_migrations() {
    let dir = tempfile::tempdir().unwrap();
    let status = bazaar(dir.path())
        .args(["migrate", "status"])
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(String::from_utf8_lossy(&status.stdout).contains("pending"));
    let up = bazaar(dir.path()).args(["migrate", "up"]).output().unwrap();
    assert!(up.status.success());
    let status = bazaar(dir.path())
        .args(["migrate", "status"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&status.stdout).trim(), "up to date");
}

/// Environment for a `bazaar` process on `backend`; the returned guards own the storage.
async fn backend_env(
    backend: crate::harness::Backend,
) -> (
    Vec<(String, String)>,
    Option<crate::harness::TestDatabase>,
    Option<crate::harness::RedisPrefix>,
) {
    let mut env = vec![
        ("BAZAAR_JOBS__POLL_INTERVAL_MS".to_owned(), "50".to_owned()),
        ("BAZAAR_JOBS__HEARTBEAT_SECS".to_owned(), "1".to_owned()),
    ];
    if backend == crate::harness::Backend::Embedded {
        return (env, None, None);
    }
    let database = crate::harness::TestDatabase::create().await;
    let redis = crate::harness::RedisPrefix::new().await;
    env.push(("BAZAAR_DATABASE__URL".into(), database.url.clone()));
    env.push(("BAZAAR_REDIS__URL".into(), redis.url.clone()));
    env.push(("BAZAAR_REDIS__KEY_PREFIX".into(), redis.prefix.clone()));
    (env, Some(database), Some(redis))
}

async fn sign_in(port: u16) -> (reqwest::Client, String) {
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let body: serde_json::Value = client
        .post(format!("http://127.0.0.1:{port}/api/v1/admin/auth/login"))
        .json(
            &serde_json::json!({"email": "ops@shop.example", "password": "a long enough password"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let csrf = body["csrf_token"]
        .as_str()
        .expect("login failed")
        .to_owned();
    (client, csrf)
}

async fn queue_test_email(port: u16, client: &reqwest::Client, csrf: &str) -> i64 {
    let queued: serde_json::Value = client
        .post(format!("http://127.0.0.1:{port}/api/v1/admin/emails/test"))
        .header("x-csrf-token", csrf)
        .json(&serde_json::json!({"to": "buyer@customer.example"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    queued["id"].as_i64().expect("the email was queued")
}

/// Signs in and polls email `id` until it is sent (bounded); returns it.
async fn wait_until_sent(port: u16, id: i64) -> serde_json::Value {
    let (client, _) = sign_in(port).await;
    let mut email = serde_json::Value::Null;
    for _ in 0..400 {
        email = client
            .get(format!("http://127.0.0.1:{port}/api/v1/admin/emails/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if email["status"] == "sent" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(email["status"], "sent", "{email}");
    email
}

/// An email queued, the server killed with SIGKILL before a worker ran it, then restarted:
/// the email goes out exactly once.
async fn a_job_queued_before_sigkill_runs_once_after_restart(backend: crate::harness::Backend) {
    queue_kill_and_deliver(backend, false).await;
}

/// The same, with the work done by a separate `bazaar worker` process beside a `serve`
/// that runs no workers; SIGTERM stops the worker cleanly.
async fn a_worker_process_runs_jobs_the_server_queued(backend: crate::harness::Backend) {
    queue_kill_and_deliver(backend, true).await;
}

async fn queue_kill_and_deliver(backend: crate::harness::Backend, separate_worker: bool) {
    let dir = tempfile::tempdir().unwrap();
    let (env, database, _redis) = backend_env(backend).await;
    let with_env = |mut command: Command| {
        command.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        command
    };
    let mut admin = with_env(bazaar(dir.path()));
    admin.args([
        "create-admin",
        "--email",
        "ops@shop.example",
        "--password-stdin",
    ]);
    let mut child = admin
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a long enough password\n")
        .unwrap();
    assert!(child.wait().unwrap().success());

    let port = free_port();
    let mut first = with_env(bazaar(dir.path()));
    first
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("BAZAAR_AUTH__BOOTSTRAP_ADMIN", "false")
        .env("BAZAAR_JOBS__RUN_WORKERS", "false")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut first = first.spawn().unwrap();
    wait_ready(port).await;
    let (client, csrf) = sign_in(port).await;
    let id = queue_test_email(port, &client, &csrf).await;
    first.kill().unwrap(); // SIGKILL: no graceful anything.
    first.wait().unwrap();

    let mut second = with_env(bazaar(dir.path()));
    second
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("BAZAAR_AUTH__BOOTSTRAP_ADMIN", "false")
        .env("BAZAAR_JOBS__RUN_WORKERS", (!separate_worker).to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut second = second.spawn().unwrap();
    let mut worker = separate_worker.then(|| {
        let mut worker = with_env(bazaar(dir.path()));
        worker
            .args(["worker", "--queues", "send_email", "--concurrency", "2"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        worker.spawn().unwrap()
    });
    wait_ready(port).await;
    let email = wait_until_sent(port, id).await;
    assert_eq!(email["attempts"], 1, "delivered once: {email}");
    let files: Vec<_> = std::fs::read_dir(dir.path().join("outbox"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".eml"))
        .collect();
    assert_eq!(files.len(), 1, "exactly one message in the outbox");
    assert!(terminate(&mut second).success());
    if let Some(worker) = worker.as_mut() {
        assert!(
            terminate(worker).success(),
            "the worker stops cleanly on SIGTERM"
        );
    }
    if let Some(database) = database {
        database.drop_blocking();
    }
}

/// The server is killed while a worker is in the middle of delivering: the job's worker
/// stops beating, the restarted server takes the job back and delivers it. The SMTP server
/// had the first copy but never acknowledged it, so it sees the message twice, under one
/// Message-ID (at-least-once delivery, as documented).
async fn a_job_in_flight_at_sigkill_is_taken_back_after_restart(backend: crate::harness::Backend) {
    let sink = crate::smtp::SmtpSink::start().await;
    sink.stall(60_000);
    let dir = tempfile::tempdir().unwrap();
    let (mut env, database, _redis) = backend_env(backend).await;
    env.extend([
        (
            "BAZAAR_EMAIL__SMTP__HOST".to_owned(),
            "127.0.0.1".to_owned(),
        ),
        ("BAZAAR_EMAIL__SMTP__PORT".to_owned(), sink.port.to_string()),
        ("BAZAAR_EMAIL__SMTP__SECURITY".to_owned(), "none".to_owned()),
        (
            "BAZAAR_EMAIL__SMTP__TIMEOUT_SECS".to_owned(),
            "90".to_owned(),
        ),
        (
            "BAZAAR_AUTH__BOOTSTRAP_ADMIN".to_owned(),
            "false".to_owned(),
        ),
    ]);
    let spawn = |port: u16| {
        let mut command = bazaar(dir.path());
        command
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command.spawn().unwrap()
    };
    let mut admin = bazaar(dir.path());
    admin
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .args([
            "create-admin",
            "--email",
            "ops@shop.example",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null());
    let mut child = admin.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a long enough password\n")
        .unwrap();
    assert!(child.wait().unwrap().success());

    let port = free_port();
    let mut first = spawn(port);
    wait_ready(port).await;
    let (client, csrf) = sign_in(port).await;
    let id = queue_test_email(port, &client, &csrf).await;
    sink.wait_for(1).await; // The worker is now waiting for the server's answer.
    first.kill().unwrap();
    first.wait().unwrap();

    sink.stall(0);
    let mut second = spawn(port);
    wait_ready(port).await;
    wait_until_sent(port, id).await;
    let received = sink.wait_for(2).await;
    let message_id = |data: &str| {
        data.lines()
            .find(|l| l.starts_with("Message-ID:"))
            .map(str::to_owned)
    };
    assert_eq!(message_id(&received[0].data), message_id(&received[1].data));
    assert!(terminate(&mut second).success());
    if let Some(database) = database {
        database.drop_blocking();
    }
}

crate::harness::both_backends!(
    a_job_in_flight_at_sigkill_is_taken_back_after_restart,
    a_job_queued_before_sigkill_runs_once_after_restart,
    a_worker_process_runs_jobs_the_server_queued,
);

/// R10.1 and R10.2 with real processes: two `bazaar serve` instances sharing PostgreSQL,
/// Redis and the key directory. A login on the first is valid on the second, a logout on
/// the second ends it on the first, and a token from one verifies on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_server_processes_share_customer_sessions_and_tokens() {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let (env, database, _redis) = backend_env(crate::harness::Backend::Scaled).await;
    let database = database.expect("the scaled backend has a database");
    let keys = tempfile::tempdir().unwrap();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let ports = [free_port(), free_port()];
    let mut servers: Vec<Child> = dirs
        .iter()
        .zip(ports)
        .map(|(dir, port)| {
            bazaar(dir.path())
                .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
                .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .env("BAZAAR_AUTH__BOOTSTRAP_ADMIN", "false")
                .env("BAZAAR_AUTH__TOKENS__KEY_DIR", keys.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("cannot start bazaar serve")
        })
        .collect();
    for port in ports {
        wait_ready(port).await;
    }
    let [a, b] = ports.map(|port| format!("http://127.0.0.1:{port}/api/v1"));
    let email = "shopper@example.com";
    let password = "a long customer password";
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();

    let response = browser
        .post(format!("{a}/auth/register"))
        .json(&serde_json::json!({"email": email, "password": password, "name": "Shopper"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let db = sea_orm::Database::connect(&database.url).await.unwrap();
    let mail = bazaar::notify::entity::Entity::find()
        .filter(bazaar::notify::entity::Column::ToAddress.eq(email))
        .one(&db)
        .await
        .unwrap()
        .expect("no verification email");
    let token = crate::harness::link_token(&mail.text_body);
    let response = browser
        .post(format!("{b}/auth/verify-email"))
        .json(&serde_json::json!({ "token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);

    let login: serde_json::Value = browser
        .post(format!("{a}/auth/login"))
        .json(&serde_json::json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let csrf = login["csrf_token"]
        .as_str()
        .expect("login failed")
        .to_owned();
    let me = browser.get(format!("{b}/me")).send().await.unwrap();
    assert_eq!(me.status(), 200, "the session from A is not valid on B");
    let logout = browser
        .post(format!("{b}/auth/logout"))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    let me = browser.get(format!("{a}/me")).send().await.unwrap();
    assert_eq!(
        me.status(),
        401,
        "the logout on B did not end the session on A"
    );

    let tokens: serde_json::Value = reqwest::Client::new()
        .post(format!("{a}/auth/token"))
        .json(&serde_json::json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let me = reqwest::Client::new()
        .get(format!("{b}/me"))
        .bearer_auth(tokens["access_token"].as_str().expect("no token"))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200, "a token from A does not verify on B");

    for server in &mut servers {
        assert!(terminate(server).success());
    }
    drop(db);
    database.drop_blocking();
}
