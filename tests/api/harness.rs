//! Test harness: runs the real application on a loopback port against either storage
//! backend, and talks to it over HTTP.
//!
//! * `Backend::Embedded`: a SQLite file in a per-test temp dir and the in-process
//!   key-value store, as a single-machine install runs.
//! * `Backend::Scaled`: a PostgreSQL database and a Redis key prefix of its own per test,
//!   as a multi-instance install runs.
//!
//! PostgreSQL and redis-server are started once per test process, on free loopback ports in
//! temp dirs, unless `BZR_TEST_DATABASE_URL` (a server URL such as
//! `postgres://postgres@127.0.0.1:5432`) and `BZR_TEST_REDIS_URL` point at running ones. A
//! watchdog process stops the servers and removes their files once the test process exits.
//! Every test database is a copy of `bazaar_template`, which is migrated once per process.

// A library for every test module: not each module uses each helper.
#![allow(dead_code)]

use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use bazaar::app::{App, AppState, Server};
use bazaar::config::{Config, SecretUrl};
use bazaar::identity::model::{CreateRole, CreateStaff};
use bazaar::identity::service::{self, Actor};
use bazaar::platform::request::RequestMeta;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, SET_COOKIE};
use reqwest::{Method, RequestBuilder, Response};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};
use serde::Serialize;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::OnceCell;
use uuid::Uuid;

/// Upper bound of one test, server start-up included.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Upper bound of one HTTP request made by a test client.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a server the harness starts gets to answer.
const SERVER_START_TIMEOUT: Duration = Duration::from_secs(60);

pub const TEMPLATE_DB: &str = "bazaar_template";
/// The staff session cookie (`LOGIN_PATH` signs staff in).
pub const SESSION_COOKIE: &str = "bazaar_admin_session";
pub const CUSTOMER_COOKIE: &str = "bazaar_session";
pub const CSRF_HEADER: &str = bazaar::identity::session::CSRF_HEADER;
pub const LOGIN_PATH: &str = "/api/v1/admin/auth/login";
pub const LOGOUT_PATH: &str = "/api/v1/admin/auth/logout";
pub const ME_PATH: &str = "/api/v1/admin/me";

pub const SUPERUSER_EMAIL: &str = "root@example.com";
pub const SUPERUSER_PASSWORD: &str = "correct horse battery staple";

/// Which storage the application under test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file plus the in-process key-value store.
    Embedded,
    /// PostgreSQL plus Redis.
    Scaled,
}

/// Turns `async fn name(backend: Backend)` into the tests `name::embedded` and
/// `name::scaled`, each on a multi-threaded runtime and bounded by `TEST_TIMEOUT`.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                $crate::harness::bounded(super::$name($crate::harness::Backend::Embedded)).await
            }

            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn scaled() {
                $crate::harness::bounded(super::$name($crate::harness::Backend::Scaled)).await
            }
        }
    )*};
}
pub(crate) use both_backends;

/// Runs a test body, failing it when it outlives `TEST_TIMEOUT`.
pub async fn bounded<F: Future<Output = ()>>(test: F) {
    if tokio::time::timeout(TEST_TIMEOUT, test).await.is_err() {
        panic!("the test did not finish within {TEST_TIMEOUT:?}");
    }
}

// ---------------------------------------------------------------------------------------
// The application under test
// ---------------------------------------------------------------------------------------

/// A running application with an HTTP client that keeps cookies.
pub struct TestApp {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// Keeps cookies, like a browser.
    pub client: reqwest::Client,
    pub backend: Backend,
    server: Option<Server>,
    /// The CSRF token of the client's session, sent with every request once known.
    csrf: Mutex<Option<String>>,
    /// The PostgreSQL database this app created and drops when it goes.
    database: Option<TestDatabase>,
    /// The Redis key prefix this app created and purges when it goes.
    redis_prefix: Option<RedisPrefix>,
    _dir: TempDir,
}

/// Starts the application on `backend` with the test defaults.
pub async fn spawn(backend: Backend) -> TestApp {
    spawn_with(backend, |_| {}).await
}

/// Starts the application on `backend`; `customize` may change the configuration first.
pub async fn spawn_with(backend: Backend, customize: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::Builder::new()
        .prefix("bazaar-test-app-")
        .tempdir()
        .expect("cannot create a temp dir");
    let mut config = test_config(dir.path());
    let owned = match backend {
        Backend::Embedded => {
            config.database.url = Some(SecretUrl::new(format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("bazaar.db").display()
            )));
            Owned::default()
        }
        Backend::Scaled => {
            let database = TestDatabase::create().await;
            let prefix = RedisPrefix::new().await;
            config.database.url = Some(SecretUrl::new(database.url.clone()));
            config.redis.url = Some(SecretUrl::new(prefix.url.clone()));
            config.redis.key_prefix = prefix.prefix.clone();
            Owned {
                database: Some(database),
                redis_prefix: Some(prefix),
            }
        }
    };
    customize(&mut config);
    start(backend, config, owned, dir).await
}

/// Storage a test app created for itself and removes when it goes.
#[derive(Default)]
struct Owned {
    database: Option<TestDatabase>,
    redis_prefix: Option<RedisPrefix>,
}

/// Starts a second instance sharing `other`'s database and key-value prefix, as a second
/// server of a scaled-out shop does. (On the embedded backend only the SQLite file is
/// shared: the in-process store is per process by design.)
pub async fn spawn_sharing(other: &TestApp) -> TestApp {
    let dir = tempfile::Builder::new()
        .prefix("bazaar-test-app-")
        .tempdir()
        .expect("cannot create a temp dir");
    let mut config = other.state().config.clone();
    config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    // Instances of one shop share their token signing keys, as they must in production.
    let keys = other.state().config.data_dir.join("keys");
    config.auth.tokens.key_dir.get_or_insert(keys);
    config.data_dir = dir.path().to_path_buf();
    start(other.backend, config, Owned::default(), dir).await
}

/// Two instances of one scaled-out shop.
pub async fn spawn_pair(backend: Backend) -> (TestApp, TestApp) {
    let first = spawn(backend).await;
    let second = spawn_sharing(&first).await;
    (first, second)
}

fn test_config(data_dir: &Path) -> Config {
    let mut config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: data_dir.to_path_buf(),
        ..Config::default()
    };
    config.database.max_connections = 5;
    config.auth.bootstrap_admin = false;
    config.http.shutdown_grace_secs = 2;
    // Jobs queued by a request (emails, account links) run promptly.
    config.jobs.poll_interval_ms = 100;
    // Tests sign in far more often than a person; the rate-limit tests turn limits on.
    config.rate_limits.enabled = false;
    config
}

async fn start(backend: Backend, config: Config, owned: Owned, dir: TempDir) -> TestApp {
    init_logging();
    let server = bazaar::app::build(config)
        .await
        .unwrap_or_else(|e| panic!("the application did not start on {backend:?}: {e:#}"));
    let addr = server.addr;
    TestApp {
        addr,
        base: format!("http://{addr}"),
        client: new_client(),
        backend,
        server: Some(server),
        csrf: Mutex::new(None),
        database: owned.database,
        redis_prefix: owned.redis_prefix,
        _dir: dir,
    }
}

/// Server logs are off unless `RUST_LOG` asks for them.
fn init_logging() {
    if std::env::var_os("RUST_LOG").is_some() {
        bazaar::platform::telemetry::init_logging(&bazaar::config::LogConfig::default());
    }
}

/// An HTTP client with its own cookie jar.
pub fn new_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("cannot build an HTTP client")
}

impl TestApp {
    /// The application's shared state, for arranging data without HTTP.
    pub fn state(&self) -> &AppState {
        &self
            .server
            .as_ref()
            .expect("the server was shut down")
            .state
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Another client, with an empty cookie jar: a second browser.
    pub fn new_client(&self) -> reqwest::Client {
        new_client()
    }

    pub fn csrf_token(&self) -> Option<String> {
        self.csrf.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Sets (or with `None` forgets) the token sent in `X-CSRF-Token`.
    pub fn set_csrf_token(&self, token: Option<String>) {
        *self.csrf.lock().unwrap_or_else(|e| e.into_inner()) = token;
    }

    /// A request from `self.client`, carrying the stored CSRF token if there is one.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = self.csrf_token() {
            request = request.header(CSRF_HEADER, token);
        }
        request
    }

    pub async fn get(&self, path: &str) -> Response {
        send(self.request(Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: &impl Serialize) -> Response {
        send(self.request(Method::POST, path).json(body)).await
    }

    /// A POST without a body.
    pub async fn post_empty(&self, path: &str) -> Response {
        send(self.request(Method::POST, path)).await
    }

    pub async fn put(&self, path: &str, body: &impl Serialize) -> Response {
        send(self.request(Method::PUT, path).json(body)).await
    }

    pub async fn patch(&self, path: &str, body: &impl Serialize) -> Response {
        send(self.request(Method::PATCH, path).json(body)).await
    }

    pub async fn delete(&self, path: &str) -> Response {
        send(self.request(Method::DELETE, path)).await
    }

    /// Stops the server gracefully; the test database goes when the app is dropped.
    pub async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            server
                .shutdown()
                .await
                .expect("the server did not shut down cleanly");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Stop serving first, so the database is not dropped under a running server.
        if let Some(server) = &self.server {
            let _ = server.stopper().send(true);
        }
        if let Some(database) = self.database.take() {
            database.drop_blocking();
        }
        self.redis_prefix.take();
    }
}

/// Sends a request, failing the test on transport errors.
pub async fn send(request: RequestBuilder) -> Response {
    request.send().await.expect("the request failed")
}

// ---------------------------------------------------------------------------------------
// Arranging data and signing in
// ---------------------------------------------------------------------------------------

/// Creates a staff account directly through the service layer and returns its id; with
/// `permissions`, a role granting exactly those is created and assigned.
pub async fn create_staff(
    app: &TestApp,
    email: &str,
    password: &str,
    is_superuser: bool,
    permissions: &[&str],
) -> i64 {
    let state = app.state();
    let meta = RequestMeta {
        ip: None,
        request_id: None,
    };
    let actor = Actor {
        principal: None,
        meta: &meta,
    };
    let mut role_ids = Vec::new();
    if !permissions.is_empty() {
        let role = service::create_role(
            state,
            &actor,
            CreateRole {
                name: format!("role for {email}"),
                description: "created by the test harness".into(),
                permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
            },
        )
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot create a role with {permissions:?}: {:?}",
                e.problem()
            )
        });
        role_ids.push(role.id);
    }
    let staff = service::create_staff(
        state,
        &actor,
        CreateStaff {
            email: email.to_owned(),
            name: email.split('@').next().unwrap_or("staff").to_owned(),
            password: password.to_owned(),
            is_superuser,
            role_ids,
        },
    )
    .await
    .unwrap_or_else(|e| panic!("cannot create staff {email}: {:?}", e.problem()));
    staff.id
}

/// Signs in with `app.client`; on success the session cookie is in its jar and the CSRF
/// token is stored, so later writes through `app` carry it. Returns the response as sent.
pub async fn login(app: &TestApp, email: &str, password: &str) -> Response {
    let response = send(
        app.client
            .post(app.url(LOGIN_PATH))
            .json(&json!({ "email": email, "password": password })),
    )
    .await;
    let url = response.url().clone();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .bytes()
        .await
        .expect("cannot read the login response");
    if status.is_success() {
        let parsed: Value = serde_json::from_slice(&body).expect("the login response is not JSON");
        let token = parsed["csrf_token"]
            .as_str()
            .expect("the login response has no csrf_token")
            .to_owned();
        app.set_csrf_token(Some(token));
    }
    rebuild_response(url, status, headers, body.to_vec())
}

/// Creates the superuser `SUPERUSER_EMAIL` and signs in as it; returns its id.
pub async fn login_as_superuser(app: &TestApp) -> i64 {
    let id = create_staff(app, SUPERUSER_EMAIL, SUPERUSER_PASSWORD, true, &[]).await;
    let response = login(app, SUPERUSER_EMAIL, SUPERUSER_PASSWORD).await;
    assert_eq!(response.status(), 200, "the superuser cannot sign in");
    id
}

fn rebuild_response(
    url: reqwest::Url,
    status: reqwest::StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
) -> Response {
    use reqwest::ResponseBuilderExt;

    let mut builder = axum::http::Response::builder().status(status).url(url);
    if let Some(map) = builder.headers_mut() {
        *map = headers;
    }
    Response::from(builder.body(body).expect("cannot rebuild the response"))
}

/// Sends `request` byte for byte on a new connection (for what an HTTP client library
/// will not send: stalled or hand-chunked bodies) and reads the response until the server
/// closes the connection (send `Connection: close`).
pub async fn raw_http(app: &TestApp, request: &str) -> Response {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(app.addr).await?;
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        std::io::Result::Ok(raw)
    };
    let raw = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .expect("the server did not answer in time")
        .expect("the raw request failed");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!(
                "no complete response head: {}",
                String::from_utf8_lossy(&raw)
            )
        });
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head}"));
    let mut headers = HeaderMap::new();
    for line in lines {
        if let Some((name, value)) = line.split_once(':')
            && let (Ok(name), Ok(value)) = (
                reqwest::header::HeaderName::from_bytes(name.trim().as_bytes()),
                HeaderValue::from_str(value.trim()),
            )
        {
            headers.append(name, value);
        }
    }
    if header_str(&headers, "transfer-encoding").eq_ignore_ascii_case("chunked") {
        body = dechunk(&body);
        headers.remove("transfer-encoding");
    }
    let status = reqwest::StatusCode::from_u16(status).expect("invalid status code");
    let target = request.split_whitespace().nth(1).unwrap_or("/");
    let url = app.url(target).parse().expect("invalid request target");
    rebuild_response(url, status, headers, body)
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(end) = raw.windows(2).position(|w| w == b"\r\n") {
        let size_field = String::from_utf8_lossy(&raw[..end]);
        let size = usize::from_str_radix(size_field.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or(0);
        raw = &raw[end + 2..];
        if size == 0 || raw.len() < size {
            break;
        }
        body.extend_from_slice(&raw[..size]);
        raw = raw.get(size + 2..).unwrap_or_default();
    }
    body
}

/// The value of `name` among the response's `Set-Cookie` headers, with the whole header.
pub fn set_cookie(response: &Response, name: &str) -> Option<(String, String)> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|header| {
            let (pair, _) = header.split_once(';').unwrap_or((header, ""));
            let (key, value) = pair.split_once('=')?;
            (key.trim() == name).then(|| (value.trim().to_owned(), header.to_owned()))
        })
}

// ---------------------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------------------

/// Asserts an RFC 9457 problem response with `status` and `code`; returns the document.
pub async fn expect_problem(response: Response, status: u16, code: &str) -> Value {
    let actual = response.status().as_u16();
    let url = response.url().to_string();
    let content_type = header_str(response.headers(), CONTENT_TYPE.as_str());
    let body = response
        .text()
        .await
        .expect("cannot read the response body");
    assert_eq!(actual, status, "unexpected status from {url}; body: {body}");
    assert!(
        content_type.starts_with("application/problem+json"),
        "expected a problem document from {url}, got content-type {content_type:?}; body: {body}"
    );
    let problem: Value = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("the problem document is not JSON ({e}): {body}"));
    assert_eq!(
        problem["status"],
        json!(status),
        "problem.status: {problem}"
    );
    assert_eq!(problem["code"], json!(code), "problem.code: {problem}");
    assert_eq!(
        problem["type"],
        json!(format!("urn:bazaar:problem:{code}")),
        "problem.type: {problem}"
    );
    let title = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or_default();
    assert_eq!(problem["title"], json!(title), "problem.title: {problem}");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| !d.trim().is_empty()),
        "problem.detail must explain the problem: {problem}"
    );
    problem
}

/// Asserts a JSON response with `status`; returns the body.
pub async fn expect_json(response: Response, status: u16) -> Value {
    let actual = response.status().as_u16();
    let url = response.url().to_string();
    let content_type = header_str(response.headers(), CONTENT_TYPE.as_str());
    let body = response
        .text()
        .await
        .expect("cannot read the response body");
    assert_eq!(actual, status, "unexpected status from {url}; body: {body}");
    assert!(
        content_type.starts_with("application/json"),
        "expected JSON from {url}, got content-type {content_type:?}; body: {body}"
    );
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("invalid JSON ({e}): {body}"))
}

/// A header as text, empty when absent.
pub fn header_str(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v: &HeaderValue| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

// ---------------------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------------------

/// A per-test PostgreSQL database copied from the migrated template.
/// A PostgreSQL database of its own for one test, cloned from the migrated template.
pub struct TestDatabase {
    server: String,
    name: String,
    pub url: String,
}

impl TestDatabase {
    pub async fn create() -> Self {
        let server = postgres_url().await;
        migrated_template(&server).await;
        let name = format!("test_{}", Uuid::new_v4().simple());
        let admin = connect_admin(&server).await;
        let statement = format!("CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}");
        let mut attempt = 0;
        loop {
            attempt += 1;
            match admin.execute_unprepared(&statement).await {
                Ok(_) => break,
                // A connection to the template is still closing.
                Err(e)
                    if e.to_string().contains("being accessed by other users") && attempt < 50 =>
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cannot create the test database {name}: {e}"),
            }
        }
        let _ = admin.close().await;
        let url = database_url(&server, &name);
        Self { server, name, url }
    }

    /// Drops the database on a thread of its own: `Drop` cannot await.
    pub fn drop_blocking(self) {
        let handle = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cannot build a runtime");
            runtime.block_on(async {
                let admin =
                    tokio::time::timeout(Duration::from_secs(10), connect_admin(&self.server))
                        .await;
                if let Ok(admin) = admin {
                    let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
                    let _ = tokio::time::timeout(
                        Duration::from_secs(10),
                        admin.execute_unprepared(&statement),
                    )
                    .await;
                    let _ = admin.close().await;
                }
            });
        });
        let _ = handle.join();
    }
}

/// Migrates the template database once per test process.
async fn migrated_template(server: &str) {
    static TEMPLATE: OnceCell<Result<(), String>> = OnceCell::const_new();
    let result = TEMPLATE
        .get_or_init(|| async { create_template(server).await.map_err(|e| format!("{e:#}")) })
        .await;
    if let Err(e) = result {
        panic!("cannot prepare the template database: {e}");
    }
}

async fn create_template(server: &str) -> anyhow::Result<()> {
    let admin = connect_admin(server).await;
    // Recreated on every run, so it always has the current migrations.
    admin
        .execute_unprepared(&format!(
            "DROP DATABASE IF EXISTS {TEMPLATE_DB} WITH (FORCE)"
        ))
        .await?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE {TEMPLATE_DB}"))
        .await?;
    admin.close().await?;

    let dir = tempfile::tempdir()?;
    let mut config = test_config(dir.path());
    config.database.url = Some(SecretUrl::new(database_url(server, TEMPLATE_DB)));
    config.database.auto_migrate = true;
    let app = App::open(config).await?;
    // No connection may remain on a template that is being copied. The reader is the
    // writer's pool here (no replica), so closing the writer closes both.
    app.db.writer().clone().close().await?;
    Ok(())
}

async fn connect_admin(server: &str) -> DatabaseConnection {
    let mut options = ConnectOptions::new(database_url(server, "postgres"));
    options
        .max_connections(1)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    Database::connect(options)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to PostgreSQL at {server}: {e}"))
}

/// `server` with the database `name` (any database in it is replaced; options such as
/// `?sslmode=…` are kept).
fn database_url(server: &str, name: &str) -> String {
    let (server, query) = match server.split_once('?') {
        Some((server, query)) => (server, format!("?{query}")),
        None => (server, String::new()),
    };
    let (scheme, rest) = server.split_once("://").unwrap_or(("postgres", server));
    let authority = rest.split('/').next().unwrap_or(rest);
    format!("{scheme}://{authority}/{name}{query}")
}

/// The PostgreSQL server URL (without a database), starting a server on first use.
pub async fn postgres_url() -> String {
    static POSTGRES: OnceLock<Result<String, String>> = OnceLock::new();
    let result = tokio::task::spawn_blocking(|| POSTGRES.get_or_init(start_postgres).clone())
        .await
        .expect("the PostgreSQL start-up thread panicked");
    result.unwrap_or_else(|e| panic!("PostgreSQL is not available: {e}"))
}

fn start_postgres() -> Result<String, String> {
    if let Ok(url) = std::env::var("BZR_TEST_DATABASE_URL") {
        return Ok(url);
    }
    let bin = postgres_bin_dir()?;
    let root = scratch_dir("bazaar-test-pg-")?;
    let as_root = running_as_root();
    if as_root {
        // initdb and postgres refuse to run as root.
        run(Command::new("chown").arg("postgres:postgres").arg(&root))?;
    }
    let data = root.join("data");
    let log = root.join("server.log");
    run(as_postgres(&bin.join("initdb")).arg("-D").arg(&data).args([
        "-A",
        "trust",
        "-U",
        "postgres",
        "-E",
        "UTF8",
        "--locale=C",
        "--no-sync",
    ]))?;

    let pg_ctl = bin.join("pg_ctl");
    let mut last_error = String::new();
    for _ in 0..3 {
        let port = free_port()?;
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300 \
             -c fsync=off -c full_page_writes=off -c synchronous_commit=off",
            root.display()
        );
        let started = run(as_postgres(&pg_ctl)
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .arg("-o")
            .arg(options)
            .args(["-w", "-t", "60", "start"]));
        match started {
            Ok(()) => {
                let stop = format!(
                    "{} {} -D {} stop -m immediate",
                    if as_root {
                        "runuser -u postgres --"
                    } else {
                        ""
                    },
                    quote(&pg_ctl),
                    quote(&data),
                );
                spawn_watchdog(&format!("{stop}; rm -rf {}", quote(&root)))?;
                return Ok(format!("postgres://postgres@127.0.0.1:{port}"));
            }
            Err(e) => {
                let server_log = std::fs::read_to_string(&log).unwrap_or_default();
                last_error = format!("{e}\n{server_log}");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&root);
    Err(format!("PostgreSQL did not start: {last_error}"))
}

/// The newest `/usr/lib/postgresql/*/bin`, or the directory of `initdb` on PATH.
fn postgres_bin_dir() -> Result<PathBuf, String> {
    if let Ok(dir) = std::env::var("BZR_TEST_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    find_on_path("initdb")
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .ok_or_else(|| {
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb, no initdb on PATH); \
             run scripts/test, or set BZR_TEST_DATABASE_URL"
                .to_owned()
        })
}

fn as_postgres(program: &Path) -> Command {
    if running_as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn running_as_root() -> bool {
    static ROOT: OnceLock<bool> = OnceLock::new();
    *ROOT.get_or_init(|| {
        Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
    })
}

// ---------------------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------------------

/// The Redis server URL, starting a server on first use.
pub async fn redis_url() -> String {
    static REDIS: OnceLock<Result<String, String>> = OnceLock::new();
    let result = tokio::task::spawn_blocking(|| REDIS.get_or_init(start_redis).clone())
        .await
        .expect("the Redis start-up thread panicked");
    result.unwrap_or_else(|e| panic!("Redis is not available: {e}"))
}

/// A Redis key prefix of its own (`test:<uuid>:`); its keys are deleted when it is dropped,
/// so tests leave nothing behind on a shared server.
pub struct RedisPrefix {
    pub url: String,
    pub prefix: String,
}

impl RedisPrefix {
    pub async fn new() -> Self {
        Self {
            url: redis_url().await,
            prefix: format!("test:{}:", Uuid::new_v4().simple()),
        }
    }
}

impl Drop for RedisPrefix {
    fn drop(&mut self) {
        use redis::Commands;

        let Ok(client) = redis::Client::open(self.url.as_str()) else {
            return;
        };
        let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_secs(2)) else {
            return;
        };
        let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
        let keys: Vec<String> = match conn.scan_match(format!("{}*", self.prefix)) {
            Ok(keys) => keys.filter_map(Result::ok).collect(),
            Err(_) => return,
        };
        for batch in keys.chunks(500) {
            let _ = redis::cmd("DEL").arg(batch).query::<i64>(&mut conn);
        }
    }
}

fn start_redis() -> Result<String, String> {
    if let Ok(url) = std::env::var("BZR_TEST_REDIS_URL") {
        return Ok(url);
    }
    let bin = find_on_path("redis-server")
        .or_else(|| Some(PathBuf::from("/usr/bin/redis-server")).filter(|p| p.exists()))
        .ok_or("redis-server is not installed; run scripts/test, or set BZR_TEST_REDIS_URL")?;
    let dir = scratch_dir("bazaar-test-redis-")?;
    let log = dir.join("redis.log");
    let mut last_error = String::new();
    for _ in 0..3 {
        let port = free_port()?;
        let mut child = Command::new(&bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&dir)
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
        let deadline = Instant::now() + SERVER_START_TIMEOUT;
        loop {
            if redis_answers(port) {
                spawn_watchdog(&format!(
                    "kill {} 2>/dev/null; rm -rf {}",
                    child.id(),
                    quote(&dir)
                ))?;
                // The child keeps running; the watchdog ends it.
                return Ok(format!("redis://127.0.0.1:{port}"));
            }
            if let Ok(Some(status)) = child.try_wait() {
                last_error = format!(
                    "redis-server exited with {status}: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                last_error = format!("redis-server did not answer within {SERVER_START_TIMEOUT:?}");
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Err(last_error)
}

fn redis_answers(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut reply = [0u8; 16];
    stream.write_all(b"PING\r\n").is_ok()
        && stream
            .read(&mut reply)
            .is_ok_and(|n| reply[..n].starts_with(b"+PONG"))
}

// ---------------------------------------------------------------------------------------
// Processes and files
// ---------------------------------------------------------------------------------------

/// Runs `cleanup` once this test process has exited. The watchdog has its own process
/// group, so a Ctrl-C to the test run does not stop it before it cleans up.
fn spawn_watchdog(cleanup: &str) -> Result<(), String> {
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {cleanup}",
        pid = std::process::id()
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map(drop)
        .map_err(|e| format!("cannot start the watchdog: {e}"))
}

/// Runs a command to completion, returning its output as the error when it fails.
fn run(command: &mut Command) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed with {}:\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// A directory that outlives this process (the watchdog removes it).
fn scratch_dir(prefix: &str) -> Result<PathBuf, String> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map(TempDir::keep)
        .map_err(|e| format!("cannot create a temp dir: {e}"))
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|path| path.is_file())
    })
}

fn quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

// ---------------------------------------------------------------------------------------
// Customers
// ---------------------------------------------------------------------------------------

pub const CUSTOMER_PASSWORD: &str = "a long customer password";

/// The newest email to `to` in the outbox.
pub async fn latest_email(app: &TestApp, to: &str) -> Option<bazaar::notify::entity::Model> {
    use bazaar::notify::entity as email;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    email::Entity::find()
        .filter(email::Column::ToAddress.eq(to))
        .order_by_desc(email::Column::Id)
        .one(app.state().db.writer())
        .await
        .expect("cannot read the outbox")
}

/// The `token=` value of the link in an email's text.
pub fn link_token(text: &str) -> String {
    let start = text
        .find("token=")
        .expect("the email has no link with a token")
        + 6;
    text[start..]
        .split(|c: char| c.is_whitespace())
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Registers a customer and follows the verification link from the outbox.
pub async fn register_customer(app: &TestApp, email: &str, password: &str) {
    let response = send(
        app.new_client()
            .post(app.url("/api/v1/auth/register"))
            .json(&json!({ "email": email, "password": password, "name": "Test Customer" })),
    )
    .await;
    assert_eq!(response.status(), 202, "registration was not accepted");
    let mail = latest_email(app, email)
        .await
        .expect("no verification email was queued");
    let token = link_token(&mail.text_body);
    let response = send(
        app.new_client()
            .post(app.url("/api/v1/auth/verify-email"))
            .json(&json!({ "token": token })),
    )
    .await;
    assert_eq!(response.status(), 204, "the verification link did not work");
}

/// A customer signed in on a fresh client: the client (with the session cookie) and the
/// CSRF token for writes.
pub struct CustomerClient {
    pub client: reqwest::Client,
    pub csrf: String,
    pub base: String,
}

impl CustomerClient {
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{}", self.base, path))
            .header(CSRF_HEADER, &self.csrf)
    }

    pub async fn get(&self, path: &str) -> Response {
        send(self.request(Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: &impl Serialize) -> Response {
        send(self.request(Method::POST, path).json(body)).await
    }

    pub async fn patch(&self, path: &str, body: &impl Serialize) -> Response {
        send(self.request(Method::PATCH, path).json(body)).await
    }

    pub async fn delete(&self, path: &str) -> Response {
        send(self.request(Method::DELETE, path)).await
    }

    /// The same session against another instance of the shop.
    pub fn at(&self, app: &TestApp) -> CustomerClient {
        CustomerClient {
            client: self.client.clone(),
            csrf: self.csrf.clone(),
            base: app.base.clone(),
        }
    }
}

/// Signs a customer in on a new client; panics unless it succeeds.
pub async fn customer_login(app: &TestApp, email: &str, password: &str) -> CustomerClient {
    let client = new_client();
    let response = send(
        client
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({ "email": email, "password": password })),
    )
    .await;
    let body = expect_json(response, 200).await;
    CustomerClient {
        client,
        csrf: body["csrf_token"]
            .as_str()
            .expect("no csrf_token")
            .to_owned(),
        base: app.base.clone(),
    }
}

/// Registers, verifies and signs in a customer.
pub async fn signed_in_customer(app: &TestApp, email: &str) -> CustomerClient {
    register_customer(app, email, CUSTOMER_PASSWORD).await;
    customer_login(app, email, CUSTOMER_PASSWORD).await
}

/// Waits (bounded) until `queue` has no pending, running or retrying jobs.
pub async fn drain_jobs(app: &TestApp, queue: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let stats = bazaar::jobs::store::queue_stats(app.state().db.writer())
            .await
            .expect("cannot read the queues");
        let busy = stats
            .iter()
            .filter(|s| s.queue == queue)
            .map(|s| s.pending + s.running + s.retrying)
            .sum::<i64>();
        if busy == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "the {queue} jobs did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
