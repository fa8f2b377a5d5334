//! Flash sale under load (issue 8): N `bazaar serve` processes on loopback share one
//! PostgreSQL and one Redis; C signed-in customers rush one flash sale of S units through
//! `POST /api/v1/flash-sales/{id}/purchase`, spread round-robin over the instances, for a
//! bounded time. Some customers retry after `409 sold-out` (units come back when unpaid
//! orders time out), some first ask for more than the per-customer limit, a share pay
//! (staff mark-paid) and the rest let their orders time out. Afterwards the bench waits
//! for the stream to drain and the time-outs to be processed, gives every customer still
//! wanting a unit one more try, runs `bazaar flash-sale verify`, and prints attempts/s,
//! latency, units sold and the invariants (oversold, over the limit, unsold while demand
//! remained, duplicates — each must be 0), and, measured in the same run against the same
//! Redis, `redis-benchmark` EVALSHA throughput of the gate's own Lua script: the ceiling
//! the purchase path is compared with. Exits non-zero when an invariant fails.
//!
//! `cargo bench --bench flashbench -- --instances 2 --customers 10000 --stock 1000`
//! Options (each also as an environment variable, e.g. `FLASHBENCH_CUSTOMERS=10000`):
//! `--instances N` (1), `--customers C` (1000), `--stock S` (1000), `--limit L` (1),
//! `--seconds T` (10, the load), `--timeout-secs` (3, the sale's payment time-out),
//! `--pay-percent` (50), `--connections` (C: requests in flight at once),
//! `--ceiling-requests` (300000, EVALSHA calls of redis-benchmark).
//! PostgreSQL: the server `BENCH_DATABASE_URL` names (scripts/bench starts one), else a
//! throwaway one started here; redis-server is always started here. Loopback only.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bazaar::app::{App, AppState};
use bazaar::config::{Config, SecretUrl};
use bazaar::identity::service::Actor;
use bazaar::identity::tokens::{Grant, Subject, sign_access_token};
use bazaar::platform::request::RequestMeta;
use common::fresh_postgres;
use futures::StreamExt;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

/// Every key the instances write to Redis starts with this.
const KEY_PREFIX: &str = "flashbench:";
/// Upper bound of one HTTP request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

fn main() -> anyhow::Result<()> {
    // `cargo test --all-targets` runs bench targets too: only measure under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return Ok(());
    }
    let options = Options::parse()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let failures = runtime.block_on(run(&options))?;
    if failures.is_empty() {
        Ok(())
    } else {
        eprintln!("flashbench FAILED: {}", failures.join("; "));
        std::process::exit(1)
    }
}

// ---------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------

struct Options {
    instances: usize,
    customers: usize,
    stock: i64,
    limit: i64,
    seconds: u64,
    timeout_secs: u32,
    pay_percent: usize,
    connections: usize,
    ceiling_requests: usize,
}

impl Options {
    /// Environment first (`FLASHBENCH_<NAME>`), then `--name value` arguments.
    fn parse() -> anyhow::Result<Self> {
        let mut values: BTreeMap<&str, String> = BTreeMap::new();
        let names = [
            "instances",
            "customers",
            "stock",
            "limit",
            "seconds",
            "timeout-secs",
            "pay-percent",
            "connections",
            "ceiling-requests",
        ];
        for name in names {
            let var = format!("FLASHBENCH_{}", name.replace('-', "_").to_uppercase());
            if let Ok(value) = std::env::var(var) {
                values.insert(name, value);
            }
        }
        let args: Vec<String> = std::env::args().collect();
        let mut i = 1;
        while i < args.len() {
            if let Some(name) = args[i].strip_prefix("--").and_then(|n| {
                let (n, _) = n.split_once('=').unwrap_or((n, ""));
                names.iter().find(|known| **known == n)
            }) {
                let value = match args[i].split_once('=') {
                    Some((_, v)) => v.to_owned(),
                    None => {
                        i += 1;
                        args.get(i)
                            .cloned()
                            .ok_or_else(|| anyhow::anyhow!("--{name} needs a value"))?
                    }
                };
                values.insert(name, value);
            }
            i += 1;
        }
        let get = |name: &str, default: u64| -> anyhow::Result<u64> {
            values.get(name).map_or(Ok(default), |v| {
                v.parse()
                    .map_err(|_| anyhow::anyhow!("--{name}: not a number: {v}"))
            })
        };
        let customers = get("customers", 1000)? as usize;
        let options = Self {
            instances: get("instances", 1)? as usize,
            customers,
            stock: get("stock", 1000)? as i64,
            limit: get("limit", 1)? as i64,
            seconds: get("seconds", 10)?,
            timeout_secs: get("timeout-secs", 3)? as u32,
            pay_percent: get("pay-percent", 50)?.min(100) as usize,
            connections: get("connections", customers as u64)? as usize,
            ceiling_requests: get("ceiling-requests", 300_000)? as usize,
        };
        anyhow::ensure!(
            options.instances >= 1 && options.customers >= 1 && options.stock >= 1,
            "instances, customers and stock must be at least 1"
        );
        anyhow::ensure!(options.limit >= 1, "the limit must be at least 1");
        anyhow::ensure!(options.connections >= 1, "connections must be at least 1");
        Ok(options)
    }
}

// ---------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------

/// Runs the whole benchmark; returns the invariants that failed.
async fn run(options: &Options) -> anyhow::Result<Vec<String>> {
    let dir = tempfile::Builder::new().prefix("flashbench-").tempdir()?;
    let postgres = match std::env::var("BENCH_DATABASE_URL") {
        Ok(url) => Postgres::External(url),
        Err(_) => Postgres::start(dir.path())?,
    };
    let database_url = fresh_postgres(postgres.url()).await?;
    let redis = Redis::start(&dir.path().join("redis"))?;
    let shared = SharedConfig {
        database_url,
        redis_url: redis.url(),
        key_dir: dir.path().join("keys"),
        timeout_secs: options.timeout_secs,
    };

    // In process, without a server or background work: migrations, the shop's data and the
    // key ring every instance signs with. Only the instances answer, make orders, run jobs.
    let setup = shared.open(&dir.path().join("setup")).await?;
    let mut instances = Vec::new();
    for i in 0..options.instances {
        instances.push(Instance::spawn(i, dir.path(), &shared).await?);
    }
    let bases: Vec<String> = instances.iter().map(|i| i.base.clone()).collect();
    let shop = Shop::create(&setup, options, &bases[0]).await?;
    println!(
        "flashbench: {} bazaar serve process(es) sharing PostgreSQL and Redis, {} customers, \
         stock {}, limit {}, load {} s, payment time-out {} s, {}% pay, {} connections",
        options.instances,
        options.customers,
        options.stock,
        options.limit,
        options.seconds,
        options.timeout_secs,
        options.pay_percent,
        options.connections
    );

    let bench = Bench {
        client: client()?,
        bases,
        shop,
        options,
        state: setup.clone(),
        connections: Semaphore::new(options.connections),
    };
    let mut report = bench.measure().await?;
    let checker = verify(&shared, bench.shop.sale_id, dir.path())?;
    let ceiling = gate_ceiling(&redis, options).await;
    let failures = report.print(options, &checker, ceiling.as_ref());

    for instance in instances {
        instance.stop();
    }
    drop(redis);
    drop(postgres);
    Ok(failures)
}

/// What every process of the shop is configured with.
struct SharedConfig {
    database_url: String,
    redis_url: String,
    key_dir: PathBuf,
    timeout_secs: u32,
}

impl SharedConfig {
    /// The application's state on this configuration, in this process.
    async fn open(&self, data_dir: &Path) -> anyhow::Result<AppState> {
        let mut config = Config {
            data_dir: data_dir.to_owned(),
            ..Config::default()
        };
        config.database.url = Some(SecretUrl::new(self.database_url.clone()));
        config.redis.url = Some(SecretUrl::new(self.redis_url.clone()));
        config.redis.key_prefix = KEY_PREFIX.into();
        config.auth.tokens.key_dir = Some(self.key_dir.clone());
        config.auth.bootstrap_admin = false;
        Ok(AppState(Arc::new(App::open(config).await?)))
    }

    /// The `BAZAAR_*` environment of an instance or of the checker.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("BAZAAR_DATABASE__URL", self.database_url.clone()),
            ("BAZAAR_DATABASE__MAX_CONNECTIONS", "16".into()),
            ("BAZAAR_REDIS__URL", self.redis_url.clone()),
            ("BAZAAR_REDIS__KEY_PREFIX", KEY_PREFIX.into()),
            (
                "BAZAAR_AUTH__TOKENS__KEY_DIR",
                self.key_dir.display().to_string(),
            ),
            ("BAZAAR_AUTH__BOOTSTRAP_ADMIN", "false".into()),
            ("BAZAAR_RATE_LIMITS__ENABLED", "false".into()),
            (
                "BAZAAR_FLASH_SALES__PAYMENT_TIMEOUT_SECS",
                self.timeout_secs.to_string(),
            ),
            // Unpaid orders are cancelled promptly after their due time.
            ("BAZAAR_JOBS__POLL_INTERVAL_MS", "100".into()),
            ("BAZAAR_LOG__LEVEL", "warn".into()),
        ]
    }
}

fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .build()?)
}

// ---------------------------------------------------------------------------------------
// Servers: PostgreSQL, Redis and the Bazaar instances, each stopped when dropped
// ---------------------------------------------------------------------------------------

enum Postgres {
    /// A server someone else runs (`BENCH_DATABASE_URL`).
    External(String),
    /// A throwaway server in a temp dir, as scripts/bench starts one (initdb refuses root).
    Owned {
        url: String,
        bin: PathBuf,
        dir: PathBuf,
    },
}

impl Postgres {
    fn start(parent: &Path) -> anyhow::Result<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")?
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("bin"))
            .max_by_key(|p| {
                p.parent()
                    .and_then(|v| v.file_name())
                    .and_then(|v| v.to_str())
                    .and_then(|v| v.parse::<u32>().ok())
            })
            .ok_or_else(|| anyhow::anyhow!("PostgreSQL is not installed"))?;
        let dir = parent.join("postgres");
        std::fs::create_dir_all(&dir)?;
        run_ok(Command::new("chown").arg("postgres").arg(&dir))?;
        let port = free_port()?;
        let data = dir.join("data");
        run_ok(
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(bin.join("initdb"))
                .arg("-D")
                .arg(&data)
                .args(["-A", "trust", "-U", "postgres"]),
        )?;
        run_ok(
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(bin.join("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(dir.join("log"))
                .arg("-o")
                .arg(format!(
                    "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
                     -c max_connections=200",
                    dir.display()
                ))
                .args(["-w", "start"]),
        )?;
        Ok(Self::Owned {
            url: format!("postgres://postgres@127.0.0.1:{port}"),
            bin,
            dir,
        })
    }

    fn url(&self) -> &str {
        match self {
            Self::External(url) | Self::Owned { url, .. } => url,
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Self::Owned { bin, dir, .. } = self {
            let _ = Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(bin.join("pg_ctl"))
                .arg("-D")
                .arg(dir.join("data"))
                .args(["-m", "immediate", "stop"])
                .stdout(Stdio::null())
                .status();
        }
    }
}

/// A redis-server of this run only: its own port and directory, no persistence.
struct Redis {
    child: std::process::Child,
    port: u16,
    port_text: String,
}

impl Redis {
    fn start(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let port = free_port()?;
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--maxclients", "10000"])
            .arg("--dir")
            .arg(dir)
            .arg("--logfile")
            .arg(dir.join("redis.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot run redis-server (apt-get install redis): {e}"))?;
        let redis = Self {
            child,
            port,
            port_text: port.to_string(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !redis_answers(port) {
            anyhow::ensure!(Instant::now() < deadline, "redis-server did not answer");
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(redis)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn redis_answers(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut reply = [0u8; 16];
    stream.write_all(b"PING\r\n").is_ok()
        && stream
            .read(&mut reply)
            .is_ok_and(|n| reply[..n].starts_with(b"+PONG"))
}

/// One `bazaar serve` process, killed when dropped.
struct Instance {
    child: std::process::Child,
    base: String,
}

impl Instance {
    async fn spawn(i: usize, parent: &Path, shared: &SharedConfig) -> anyhow::Result<Self> {
        let dir = parent.join(format!("instance-{i}"));
        std::fs::create_dir_all(&dir)?;
        let log = dir.join("log");
        let port = free_port()?;
        let child = Command::new(env!("CARGO_BIN_EXE_bazaar"))
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(&dir)
            .envs(shared.env())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("stdout"))?)
            .stderr(std::fs::File::create(&log)?)
            .spawn()?;
        let mut instance = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let client = client()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = client
                .get(format!("{}/readyz", instance.base))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return Ok(instance);
            }
            let exited = instance.child.try_wait()?;
            if exited.is_some() || Instant::now() > deadline {
                anyhow::bail!(
                    "instance {i} did not become ready ({exited:?}): {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn run_ok(command: &mut Command) -> anyhow::Result<()> {
    let output = command.output()?;
    anyhow::ensure!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The shop: a product, a staff superuser, the customers and the flash sale
// ---------------------------------------------------------------------------------------

struct Shop {
    sku_id: i64,
    sale_id: i64,
    staff_token: String,
    /// Bearer tokens, one per customer.
    tokens: Vec<String>,
}

impl Shop {
    async fn create(state: &AppState, options: &Options, admin_base: &str) -> anyhow::Result<Self> {
        let problem = |e: bazaar::platform::ApiError| anyhow::anyhow!("{:?}", e.problem());
        let meta = RequestMeta {
            ip: None,
            request_id: None,
        };
        let actor = Actor {
            principal: None,
            meta: &meta,
        };
        let product = bazaar::catalog::products::create_product(
            state,
            &actor,
            serde_json::from_value(json!({"title": "Flash tea", "slug": "flash-tea",
                "status": "listed", "skus": [{"code": "FLASH-TEA", "price": 1999,
                "stock": options.stock, "weight_grams": 250}]}))?,
        )
        .await
        .map_err(problem)?;
        let sku_id = product.skus[0].id;

        let password = format!("flashbench-{}", ulid::Ulid::generate());
        let staff =
            bazaar::identity::service::create_superuser(state, "flashbench@example.com", &password)
                .await
                .map_err(problem)?;
        let staff_token = sign_access_token(
            &state.keys,
            &state.config.auth.tokens,
            &Grant {
                subject: Subject::Staff(staff.id),
                scope: vec!["staff".into(), "superuser".into()],
                roles: Vec::new(),
                email: Some(staff.email.clone()),
                name: "Flashbench".into(),
            },
        )
        .map_err(problem)?;

        let started = Instant::now();
        let tokens = customers(state, options.customers).await?;
        println!(
            "set-up: {} customers inserted and their tokens signed in {:.1} s",
            tokens.len(),
            started.elapsed().as_secs_f64()
        );

        let now = chrono::Utc::now();
        let ends = now + chrono::Duration::seconds(options.seconds as i64 + 600);
        let response = client()?
            .post(format!("{admin_base}/api/v1/admin/flash-sales"))
            .bearer_auth(&staff_token)
            .json(&json!({
                "name": "Flashbench", "sku_id": sku_id, "sale_price": 999,
                "stock": options.stock, "per_customer_limit": options.limit,
                "starts_at": now.to_rfc3339(), "ends_at": ends.to_rfc3339(),
                "payment_timeout_secs": options.timeout_secs,
            }))
            .send()
            .await?;
        let status = response.status();
        let sale: Value = response.json().await?;
        anyhow::ensure!(status == 201, "creating the flash sale: {status} {sale}");
        let sale_id = sale["id"]
            .as_i64()
            .ok_or_else(|| anyhow::anyhow!("no sale id in {sale}"))?;
        // Live once its start has passed.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let sale: Value = client()?
                .get(format!("{admin_base}/api/v1/flash-sales/{sale_id}"))
                .send()
                .await?
                .json()
                .await?;
            if sale["status"] == "live" {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "the sale is not live: {sale}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Self {
            sku_id,
            sale_id,
            staff_token,
            tokens,
        })
    }
}

/// Inserts `count` customers directly (no password hashing) and signs an access token for
/// each, on every core.
async fn customers(state: &AppState, count: usize) -> anyhow::Result<Vec<String>> {
    let ids = futures::stream::iter(0..count)
        .map(|i| {
            let state = state.clone();
            async move {
                let email = format!("flash{i}@example.com");
                let customer = common::verified_customer(&state, &email, "Flash").await?;
                anyhow::Ok(customer.id)
            }
        })
        .buffered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<i64>>>()?;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunks: Vec<Vec<(usize, i64)>> = ids
        .into_iter()
        .enumerate()
        .collect::<Vec<_>>()
        .chunks(count.div_ceil(threads))
        .map(<[_]>::to_vec)
        .collect();
    let mut signers = Vec::new();
    for chunk in chunks {
        let state = state.clone();
        signers.push(tokio::task::spawn_blocking(move || {
            chunk
                .into_iter()
                .map(|(i, id)| {
                    sign_access_token(
                        &state.keys,
                        &state.config.auth.tokens,
                        &Grant {
                            subject: Subject::Customer(id),
                            scope: vec!["customer".into()],
                            roles: vec!["customer".into()],
                            email: Some(format!("flash{i}@example.com")),
                            name: "Flash".into(),
                        },
                    )
                    .map_err(|e| anyhow::anyhow!("{:?}", e.problem()))
                })
                .collect::<anyhow::Result<Vec<String>>>()
        }));
    }
    let mut tokens = Vec::with_capacity(count);
    for signer in signers {
        tokens.extend(signer.await??);
    }
    Ok(tokens)
}

// ---------------------------------------------------------------------------------------
// The load
// ---------------------------------------------------------------------------------------

struct Bench<'a> {
    client: reqwest::Client,
    bases: Vec<String>,
    shop: Shop,
    options: &'a Options,
    /// For the order rows and the gate's counters.
    state: AppState,
    /// Purchase requests in flight at once.
    connections: Semaphore,
}

/// The answer to one purchase call.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    Accepted(String),
    SoldOut,
    LimitReached,
    /// Any other status (with its problem code), or a transport error (status 0).
    Other(u16, String),
}

/// What the customers saw; summed over all of them.
#[derive(Default)]
struct Tally {
    attempts: usize,
    latencies: Vec<Duration>,
    /// Distinct purchase ids answered 202, with their quantity.
    accepted: HashMap<String, i64>,
    sold_out: usize,
    limit_reached: usize,
    /// Purchases above the limit that were accepted (a greedy customer's `limit + 1`).
    over_limit_accepted: usize,
    /// `409 limit-reached` to a customer who held nothing.
    wrong_limit: usize,
    others: BTreeMap<String, usize>,
    replays: usize,
    /// The same Idempotency-Key answered with another purchase id or refused.
    replay_mismatches: usize,
    paid: usize,
    /// Mark-paid refused because the order had timed out first.
    paid_too_late: usize,
    pay_errors: BTreeMap<String, usize>,
    /// Customers who never had a purchase accepted: they still want a unit.
    wanting: Vec<usize>,
    last_answer: Option<Instant>,
}

impl Tally {
    fn absorb(&mut self, other: Tally) {
        self.attempts += other.attempts;
        self.latencies.extend(other.latencies);
        self.accepted.extend(other.accepted);
        self.sold_out += other.sold_out;
        self.limit_reached += other.limit_reached;
        self.over_limit_accepted += other.over_limit_accepted;
        self.wrong_limit += other.wrong_limit;
        for (k, v) in other.others {
            *self.others.entry(k).or_default() += v;
        }
        self.replays += other.replays;
        self.replay_mismatches += other.replay_mismatches;
        self.paid += other.paid;
        self.paid_too_late += other.paid_too_late;
        for (k, v) in other.pay_errors {
            *self.pay_errors.entry(k).or_default() += v;
        }
        self.wanting.extend(other.wanting);
        self.last_answer = self.last_answer.max(other.last_answer);
    }

    fn count(&mut self, answer: &Answer) {
        match answer {
            Answer::Accepted(_) => {}
            Answer::SoldOut => self.sold_out += 1,
            Answer::LimitReached => self.limit_reached += 1,
            Answer::Other(status, code) => {
                *self.others.entry(format!("{status} {code}")).or_default() += 1
            }
        }
    }
}

/// Order rows of the sale's SKU (only the flash sale sells it), by status.
#[derive(Default, Clone, Copy, Debug)]
struct Snapshot {
    orders: i64,
    paid_units: i64,
    pending_units: i64,
    cancelled_units: i64,
    /// Customers whose orders not cancelled hold more than the limit.
    over_limit: i64,
}

impl Snapshot {
    fn live_units(&self) -> i64 {
        self.paid_units + self.pending_units
    }
}

/// What `measure` found.
struct Report {
    load: Tally,
    load_seconds: f64,
    at_load_end: Snapshot,
    /// The most units held at once (not cancelled), sampled through the run.
    max_live_units: i64,
    max_over_limit: i64,
    sweep: Tally,
    remaining_after_sweep: i64,
    /// Units that came back from time-outs while the sweep ran.
    returned_during_sweep: i64,
    unresolved_purchases: usize,
    end: Snapshot,
    accepted_distinct: usize,
}

impl Bench<'_> {
    async fn measure(&self) -> anyhow::Result<Report> {
        let sampling = std::sync::atomic::AtomicBool::new(true);
        let maxima = std::sync::Mutex::new((0i64, 0i64));
        let sampler = async {
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(s) = self.snapshot().await {
                    let mut m = maxima.lock().unwrap();
                    m.0 = m.0.max(s.live_units());
                    m.1 = m.1.max(s.over_limit);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        };
        let work = async {
            let started = Instant::now();
            let deadline = started + Duration::from_secs(self.options.seconds);
            let load = self.load(deadline).await;
            let load_seconds = load
                .last_answer
                .map_or(0.0, |t| (t - started).as_secs_f64());
            let at_load_end = self.snapshot().await?;

            // The stream drains, unpaid orders time out and their units return.
            let mut accepted: HashSet<String> = load.accepted.keys().cloned().collect();
            self.settle(accepted.len()).await?;

            // Everyone who never had a purchase accepted tries once more.
            let cancelled_before = self.snapshot().await?.cancelled_units;
            let sweep = self.sweep(&load.wanting).await;
            let remaining_after_sweep = self.remaining().await?;
            // Orders of the sweep that timed out already (their units may be back).
            let returned_during_sweep = self.snapshot().await?.cancelled_units - cancelled_before;
            accepted.extend(sweep.accepted.keys().cloned());
            let unresolved_purchases = self.settle(accepted.len()).await?;
            let end = self.snapshot().await?;
            anyhow::Ok(Report {
                accepted_distinct: accepted.len(),
                load,
                load_seconds,
                at_load_end,
                max_live_units: 0,
                max_over_limit: 0,
                sweep,
                remaining_after_sweep,
                returned_during_sweep,
                unresolved_purchases,
                end,
            })
        };
        let (report, ()) = futures::join!(
            async {
                let report = work.await;
                sampling.store(false, std::sync::atomic::Ordering::Relaxed);
                report
            },
            sampler
        );
        let mut report = report?;
        let (max_live, max_over) = *maxima.lock().unwrap();
        report.max_live_units = max_live.max(report.end.live_units());
        report.max_over_limit = max_over.max(report.end.over_limit);
        Ok(report)
    }

    /// Every customer at once until `deadline`.
    async fn load(&self, deadline: Instant) -> Tally {
        let customers = (0..self.shop.tokens.len()).map(|i| self.customer(i, deadline));
        let mut total = Tally::default();
        for tally in futures::future::join_all(customers).await {
            total.absorb(tally);
        }
        total
    }

    /// One customer: every tenth first asks for more than the limit; then each tries to
    /// buy one unit, half of them retrying after `sold-out`; once accepted, a share pay,
    /// the rest walk away and let the order time out.
    async fn customer(&self, i: usize, deadline: Instant) -> Tally {
        let mut tally = Tally::default();
        let greedy = i.is_multiple_of(10);
        let retries = i % 2 == 1;
        let pays = (i * 37 + 11) % 100 < self.options.pay_percent;
        if greedy {
            let key = format!("c{i}-greedy");
            let answer = self
                .attempt(i, &key, self.options.limit + 1, &mut tally)
                .await;
            if let Answer::Accepted(id) = answer {
                tally.over_limit_accepted += 1;
                tally.accepted.insert(id, self.options.limit + 1);
            }
        }
        let mut attempt = 0;
        while Instant::now() < deadline {
            attempt += 1;
            let key = format!("c{i}-{attempt}");
            match self.attempt(i, &key, 1, &mut tally).await {
                Answer::Accepted(id) => {
                    tally.accepted.insert(id.clone(), 1);
                    // Every twentieth sends its request again, as after a lost answer.
                    if i % 20 == 3 {
                        tally.replays += 1;
                        if self.attempt(i, &key, 1, &mut tally).await
                            != Answer::Accepted(id.clone())
                        {
                            tally.replay_mismatches += 1;
                        }
                    }
                    if pays {
                        self.pay(i, &id, &mut tally).await;
                    }
                    return tally;
                }
                Answer::SoldOut if retries => {
                    let pause = rand::random_range(50..250);
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                Answer::SoldOut => break,
                Answer::LimitReached => {
                    tally.wrong_limit += 1;
                    break;
                }
                Answer::Other(..) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        tally.wanting.push(i);
        tally
    }

    /// One timed purchase call by customer `i`.
    async fn attempt(&self, i: usize, key: &str, quantity: i64, tally: &mut Tally) -> Answer {
        let base = &self.bases[i % self.bases.len()];
        let sale = self.shop.sale_id;
        let _permit = self.connections.acquire().await.expect("never closed");
        let started = Instant::now();
        let answer = match self
            .client
            .post(format!("{base}/api/v1/flash-sales/{sale}/purchase"))
            .bearer_auth(&self.shop.tokens[i])
            .header("Idempotency-Key", key)
            .json(&json!({"quantity": quantity}))
            .send()
            .await
        {
            Ok(response) => {
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                let code = body["code"].as_str().unwrap_or_default();
                match (status, code) {
                    (202, _) => match body["purchase_id"].as_str() {
                        Some(id) => Answer::Accepted(id.to_owned()),
                        None => Answer::Other(202, "no purchase_id".into()),
                    },
                    (409, "sold-out") => Answer::SoldOut,
                    (409, "limit-reached") => Answer::LimitReached,
                    _ => Answer::Other(status, code.to_owned()),
                }
            }
            Err(e) => Answer::Other(0, transport_error(&e)),
        };
        tally.attempts += 1;
        tally.latencies.push(started.elapsed());
        tally.last_answer = Some(Instant::now());
        tally.count(&answer);
        answer
    }

    /// Waits for the purchase's order, then staff mark it paid.
    async fn pay(&self, i: usize, purchase: &str, tally: &mut Tally) {
        let result = async {
            let base = &self.bases[i % self.bases.len()];
            let token = &self.shop.tokens[i];
            let Some(number) = self.order_number(base, token, purchase).await? else {
                return anyhow::Ok(Err("no order".to_owned()));
            };
            let order: Value = self
                .client
                .get(format!("{base}/api/v1/orders/{number}"))
                .bearer_auth(token)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let id = order["id"].as_i64().unwrap_or_default();
            let response = self
                .client
                .post(format!("{base}/api/v1/admin/orders/{id}/mark-paid"))
                .bearer_auth(&self.shop.staff_token)
                .json(&json!({"reference": format!("flashbench-{purchase}")}))
                .send()
                .await?;
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            Ok(Ok((
                status,
                body["code"].as_str().unwrap_or_default().to_owned(),
            )))
        }
        .await;
        match result {
            Ok(Ok((200, _))) => tally.paid += 1,
            Ok(Ok((409, _))) => tally.paid_too_late += 1,
            Ok(Ok((status, code))) => {
                *tally
                    .pay_errors
                    .entry(format!("mark-paid {status} {code}"))
                    .or_default() += 1
            }
            Ok(Err(why)) => *tally.pay_errors.entry(why).or_default() += 1,
            Err(e) => *tally.pay_errors.entry(format!("{e:#}")).or_default() += 1,
        }
    }

    /// Polls the purchase until it has an order (its number) or was cancelled (`None`);
    /// gives up after 30 s.
    async fn order_number(
        &self,
        base: &str,
        token: &str,
        purchase: &str,
    ) -> anyhow::Result<Option<String>> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let body: Value = self
                .client
                .get(format!("{base}/api/v1/flash-sales/purchases/{purchase}"))
                .bearer_auth(token)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            if let Some(number) = body["order_number"].as_str() {
                return Ok(Some(number.to_owned()));
            }
            if body["status"] == "cancelled" {
                return Ok(None);
            }
            // Four times as eager as the answer's `Retry-After: 1` asks.
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Ok(None)
    }

    /// Customers still wanting a unit try once each, all at once.
    async fn sweep(&self, wanting: &[usize]) -> Tally {
        let tries = wanting.iter().map(|&i| async move {
            let mut tally = Tally::default();
            if let Answer::Accepted(id) =
                self.attempt(i, &format!("c{i}-sweep"), 1, &mut tally).await
            {
                tally.accepted.insert(id, 1);
            }
            tally
        });
        let mut total = Tally::default();
        for tally in futures::future::join_all(tries).await {
            total.absorb(tally);
        }
        total
    }

    /// Waits until every accepted purchase has its order, no order awaits payment (the
    /// time-outs have run) and the gate holds every unit not sold; returns the purchases
    /// still without an order.
    async fn settle(&self, accepted: usize) -> anyhow::Result<usize> {
        let deadline =
            Instant::now() + Duration::from_secs(u64::from(self.options.timeout_secs) + 90);
        loop {
            let s = self.snapshot().await?;
            let unresolved = accepted.saturating_sub(s.orders as usize);
            let back = self.remaining().await? == self.options.stock - s.live_units();
            if (unresolved == 0 && s.pending_units == 0 && back) || Instant::now() > deadline {
                return Ok(unresolved);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Units the gate has left.
    async fn remaining(&self) -> anyhow::Result<i64> {
        let gate = bazaar::flash::gate::snapshot(self.state.kv.as_ref(), self.shop.sale_id).await?;
        gate.map(|g| g.remaining)
            .ok_or_else(|| anyhow::anyhow!("the gate holds nothing for the sale"))
    }

    async fn snapshot(&self) -> anyhow::Result<Snapshot> {
        let db = self.state.db.writer();
        let rows = db
            .query_all_raw(Statement::from_sql_and_values(
                db.get_database_backend(),
                "SELECT o.customer_id AS customer, o.status AS status, \
                 COUNT(DISTINCT o.id) AS orders, SUM(l.quantity)::bigint AS units \
                 FROM orders o JOIN order_lines l ON l.order_id = o.id \
                 WHERE l.sku_id = $1 GROUP BY o.customer_id, o.status",
                [self.shop.sku_id.into()],
            ))
            .await?;
        let mut snapshot = Snapshot::default();
        let mut held: HashMap<Option<i64>, i64> = HashMap::new();
        for row in rows {
            let customer: Option<i64> = row.try_get("", "customer")?;
            let status: String = row.try_get("", "status")?;
            let units: i64 = row.try_get("", "units")?;
            snapshot.orders += row.try_get::<i64>("", "orders")?;
            match status.as_str() {
                "cancelled" => snapshot.cancelled_units += units,
                "pending_payment" => snapshot.pending_units += units,
                _ => snapshot.paid_units += units,
            }
            if status != "cancelled" {
                *held.entry(customer).or_default() += units;
            }
        }
        snapshot.over_limit = held.values().filter(|&&u| u > self.options.limit).count() as i64;
        Ok(snapshot)
    }
}

fn transport_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect".into()
    } else {
        "transport".into()
    }
}

// ---------------------------------------------------------------------------------------
// The checker and the ceiling
// ---------------------------------------------------------------------------------------

/// `bazaar flash-sale verify <id> --json` as a process with the instances' configuration.
struct Checker {
    consistent: bool,
    report: Value,
}

fn verify(shared: &SharedConfig, sale_id: i64, parent: &Path) -> anyhow::Result<Checker> {
    let dir = parent.join("verify");
    std::fs::create_dir_all(&dir)?;
    let output = Command::new(env!("CARGO_BIN_EXE_bazaar"))
        .arg("--data-dir")
        .arg(&dir)
        .args(["flash-sale", "verify", &sale_id.to_string(), "--json"])
        .envs(shared.env())
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = serde_json::from_str(&stdout).unwrap_or_else(
        |_| json!({"unparsed": stdout, "stderr": String::from_utf8_lossy(&output.stderr)}),
    );
    Ok(Checker {
        consistent: output.status.success() && report["consistent"] == true,
        report,
    })
}

/// `redis-benchmark` throughput of EVALSHA of the gate's Lua script.
struct Ceiling {
    per_sec: f64,
    command: String,
}

async fn gate_ceiling(redis: &Redis, options: &Options) -> anyhow::Result<Ceiling> {
    use bazaar::flash::gate;

    // A throwaway sale in the gate's own key layout: open for a day, the bench's limit,
    // a stock that never runs out.
    const SALE: i64 = 999_999_999;
    let key = |suffix: &str| format!("{KEY_PREFIX}{}", gate::key(SALE, suffix));
    let mut conn = redis::Client::open(redis.url())?
        .get_multiplexed_async_connection()
        .await?;
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(gate::PURCHASE.lua)
        .query_async(&mut conn)
        .await?;
    let now = chrono::Utc::now().timestamp_millis();
    redis::pipe()
        .set(
            key("meta"),
            format!("{} {} {} 0", now - 1000, now + 86_400_000, options.limit),
        )
        .set(key("stock"), 1_000_000_000_000i64)
        .query_async::<()>(&mut conn)
        .await?;

    // The script's KEYS and ARGV as the gate passes them, customer (and with it the
    // idempotency key and the purchase id) drawn from C customers per call.
    let keys = [
        key("meta"),
        key("stock"),
        key("bought:__rand_int__"),
        key("key:__rand_int__:__rand_int__"),
        key("stream"),
        key("accepted"),
        key("purchase:bench-__rand_int__"),
    ];
    let args = ["__rand_int__", "1", "bench-__rand_int__"];
    let requests = options.ceiling_requests.to_string();
    let keyspace = options.customers.to_string();
    let mut command = vec![
        "-h",
        "127.0.0.1",
        "-p",
        &redis.port_text,
        "-n",
        &requests,
        "-c",
        "50",
        "-r",
        &keyspace,
        "-q",
        "EVALSHA",
        &sha,
        "7",
    ];
    command.extend(keys.iter().map(String::as_str));
    command.extend(args);
    let output = Command::new("redis-benchmark")
        .args(&command)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            anyhow::anyhow!("cannot run redis-benchmark (apt-get install redis-tools): {e}")
        })?;
    let text = String::from_utf8_lossy(&output.stdout);
    let per_sec = text
        .split(['\r', '\n'])
        .filter_map(|line| {
            line.split_once(" requests per second")?
                .0
                .rsplit(' ')
                .next()
        })
        .filter_map(|n| n.parse::<f64>().ok())
        .next_back()
        .ok_or_else(|| anyhow::anyhow!("redis-benchmark printed no rate: {text}"))?;
    Ok(Ceiling {
        per_sec,
        command: format!(
            "redis-benchmark -n {requests} -c 50 -r {keyspace} EVALSHA flash_purchase, limit {}",
            options.limit
        ),
    })
}

// ---------------------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------------------

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let at = ((sorted.len() as f64 * q) as usize).min(sorted.len() - 1);
    sorted[at].as_secs_f64() * 1000.0
}

impl Report {
    /// Prints the report; returns the invariants that failed.
    fn print(
        &mut self,
        options: &Options,
        checker: &Checker,
        ceiling: Result<&Ceiling, &anyhow::Error>,
    ) -> Vec<String> {
        let load = &mut self.load;
        load.latencies.sort();
        let per_sec = load.attempts as f64 / self.load_seconds.max(1e-9);
        let line = |label: &str, value: String| println!("{label:<40} {value}");
        line(
            "purchase attempts",
            format!(
                "{} in {:.2} s = {per_sec:.0} /s  p50 {:.2} ms  p99 {:.2} ms",
                load.attempts,
                self.load_seconds,
                percentile(&load.latencies, 0.50),
                percentile(&load.latencies, 0.99)
            ),
        );
        line(
            "  answers",
            format!(
                "202 {}, 409 sold-out {}, 409 limit-reached {}, other {:?}",
                load.accepted.len(),
                load.sold_out,
                load.limit_reached,
                load.others
            ),
        );
        line(
            "  payments",
            format!(
                "paid {}, too late (order timed out) {}, errors {:?}",
                load.paid, load.paid_too_late, load.pay_errors
            ),
        );
        line(
            "  idempotent replays",
            format!(
                "{} (answered differently: {})",
                load.replays, load.replay_mismatches
            ),
        );
        let s = self.at_load_end;
        line(
            "units sold at the end of the load",
            format!(
                "{} (paid {} + pending {}), {} returned by time-outs so far",
                s.live_units(),
                s.paid_units,
                s.pending_units,
                s.cancelled_units
            ),
        );
        let e = self.end;
        line(
            "units sold at the end",
            format!(
                "{} (paid {} + pending {}), {} orders, {} units returned by time-outs",
                e.live_units(),
                e.paid_units,
                e.pending_units,
                e.orders,
                e.cancelled_units
            ),
        );
        let oversold = (self.max_live_units - options.stock).max(0);
        let over_limit = self.max_over_limit + load.over_limit_accepted as i64;
        let refused = self.sweep.sold_out as i64;
        let unsold = if refused > 0 {
            (self.remaining_after_sweep - self.returned_during_sweep)
                .max(0)
                .min(refused)
        } else {
            0
        };
        let duplicates =
            (e.orders - self.accepted_distinct as i64).max(0) + load.replay_mismatches as i64;
        line(
            "oversold",
            format!(
                "{oversold} (most units held at once: {})",
                self.max_live_units
            ),
        );
        line(
            "customers over the limit",
            format!(
                "{over_limit} (limit-reached to a customer holding none: {})",
                load.wrong_limit
            ),
        );
        line(
            "unsold while demand remained",
            format!(
                "{unsold} (after the time-outs {} customers still wanting one tried again: \
                 {} bought, {} refused sold-out, other {:?}; remaining then {})",
                self.sweep.attempts,
                self.sweep.accepted.len(),
                self.sweep.sold_out,
                self.sweep.others,
                self.remaining_after_sweep
            ),
        );
        line(
            "duplicates",
            format!(
                "{duplicates} ({} orders for {} accepted purchases; {} purchases without an order)",
                e.orders, self.accepted_distinct, self.unresolved_purchases
            ),
        );
        let verdict = if checker.consistent {
            "consistent".to_owned()
        } else {
            format!("DIFFERENCES: {}", checker.report["differences"])
        };
        line("checker (bazaar flash-sale verify)", verdict);
        line("  its report", checker.report.to_string());
        match ceiling {
            Ok(c) => {
                line(
                    "EVALSHA ceiling (redis-benchmark)",
                    format!("{:.0} /s  ({})", c.per_sec, c.command),
                );
                line(
                    "ratio attempts/s / EVALSHA/s",
                    format!("{:.3}", per_sec / c.per_sec),
                );
            }
            Err(e) => line(
                "EVALSHA ceiling (redis-benchmark)",
                format!("not measured: {e:#}"),
            ),
        }

        let mut failures = Vec::new();
        let mut expect_zero = |name: &str, value: i64| {
            if value != 0 {
                failures.push(format!("{name} = {value}"));
            }
        };
        expect_zero("oversold", oversold);
        expect_zero("over the limit", over_limit);
        expect_zero(
            "limit-reached to customers holding none",
            load.wrong_limit as i64,
        );
        expect_zero("unsold while demand remained", unsold);
        expect_zero("duplicates", duplicates);
        expect_zero(
            "purchases without an order",
            self.unresolved_purchases as i64,
        );
        if !checker.consistent {
            failures.push("the checker reports differences".into());
        }
        failures
    }
}
