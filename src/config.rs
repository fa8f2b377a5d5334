//! Layered configuration: defaults, then a TOML file, then `BAZAAR_*`
//! environment variables (nested keys joined with `__`), then command-line flags.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize, Serializer};

/// The effective configuration of one Bazaar process.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP server binds.
    pub listen: SocketAddr,
    /// Directory for the embedded database, uploaded files and generated keys.
    pub data_dir: PathBuf,
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    pub http: HttpConfig,
    pub log: LogConfig,
    pub auth: AuthConfig,
    pub shop: ShopConfig,
    pub jobs: JobsConfig,
    pub email: EmailConfig,
    pub rate_limits: RateLimitsConfig,
    pub catalog: CatalogConfig,
    pub media: MediaConfig,
    pub orders: OrdersConfig,
    pub payments: PaymentsConfig,
    pub flash_sales: FlashSalesConfig,
}

/// The storefront's hot-read cache of product pages and lists (in the key-value store:
/// in-process, or Redis shared by every instance).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogConfig {
    /// Off, every storefront read queries the database (for measuring the cache's worth).
    pub hot_cache: bool,
    /// Product pages live this long plus a random share of `cache_jitter_secs`.
    pub cache_ttl_secs: u64,
    pub cache_jitter_secs: u64,
    /// Unknown slugs are remembered this long.
    pub miss_ttl_secs: u64,
    /// Product list pages live this long; every product write drops them all at once.
    pub list_ttl_secs: u64,
    /// The number of products the filter of existing slugs is sized for (1% false
    /// positives there; more products only let more unknown slugs reach the database).
    pub expected_products: u64,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        Self {
            hot_cache: true,
            cache_ttl_secs: 600,
            cache_jitter_secs: 120,
            miss_ttl_secs: 30,
            list_ttl_secs: 60,
            expected_products: 1_000_000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://…` or `postgres://…`; unset means a SQLite file inside `data_dir`.
    pub url: Option<SecretUrl>,
    /// Read-only replica for queries that tolerate replication lag.
    pub replica_url: Option<SecretUrl>,
    pub max_connections: u32,
    /// Run pending migrations when `serve` starts; turn off when releases migrate explicitly.
    pub auto_migrate: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// When set, cache, sessions and throttling live in Redis and are shared by all instances.
    pub url: Option<SecretUrl>,
    /// Prefix of every key Bazaar writes, so several shops or test runs can share one server.
    pub key_prefix: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Origins allowed by CORS; empty disables cross-origin access.
    pub cors_origins: Vec<String>,
    /// Largest request body, except on media upload routes (see `media.max_*_bytes`).
    pub body_limit_bytes: usize,
    pub request_timeout_secs: u64,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace_secs: u64,
    /// Set when Bazaar is served over HTTPS (directly or behind a TLS-terminating proxy):
    /// cookies then carry `Secure`.
    pub behind_tls: bool,
    /// Take the client IP from `X-Forwarded-For` (only behind a proxy that sets it).
    pub trust_forwarded_for: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter such as `info,sqlx=warn`.
    pub level: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub session_ttl_secs: u64,
    /// Failed logins allowed per account within the window before logins are refused.
    pub max_failures_per_account: u32,
    /// Failed logins allowed per client IP within the window.
    pub max_failures_per_ip: u32,
    pub failure_window_secs: u64,
    /// On `serve`, when no staff account exists yet, create `admin@bazaar.local` with a
    /// random password and print it once, so a newcomer can sign in.
    pub bootstrap_admin: bool,
    /// How long an emailed address-verification link stays valid.
    pub verification_ttl_secs: u64,
    /// How long an emailed password-reset link stays valid.
    pub password_reset_ttl_secs: u64,
    pub tokens: TokensConfig,
    /// Third-party login providers by the name used in their URLs.
    pub oauth: std::collections::BTreeMap<String, OAuthProviderConfig>,
}

/// Stateless RS256 access tokens and the refresh tokens that renew them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokensConfig {
    /// `iss` of issued tokens; verifiers should pin it.
    pub issuer: String,
    /// `aud` of issued tokens.
    pub audience: String,
    pub access_ttl_secs: u64,
    pub refresh_ttl_secs: u64,
    /// Directory of PEM-encoded RSA private keys (PKCS#8), one per file named `<kid>.pem`.
    /// The newest signs; older ones stay published until tokens they signed expire.
    /// Defaults to `<data_dir>/keys`, where a key is generated on first start. Instances
    /// behind one load balancer must share it.
    pub key_dir: Option<std::path::PathBuf>,
}

impl Default for TokensConfig {
    fn default() -> Self {
        Self {
            issuer: "bazaar".into(),
            audience: "bazaar".into(),
            access_ttl_secs: 900,
            refresh_ttl_secs: 30 * 24 * 3600,
            key_dir: None,
        }
    }
}

/// The protocol dialect of a third-party login provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OAuthKind {
    /// QQ Connect: the user's openid comes from a separate `/oauth2.0/me` call.
    Qq,
    /// WeChat open platform: `appid`/`secret`, openid and unionid in the token response.
    Wechat,
    /// Weibo: the user id (`uid`) comes in the token response.
    Weibo,
    Github,
    /// Any OpenID Connect provider, configured from its discovery document.
    Oidc,
}

/// One configured provider. Endpoint URLs default to the provider's public ones (for OIDC,
/// to its discovery document) and may be overridden, e.g. for a self-hosted provider.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthProviderConfig {
    pub kind: OAuthKind,
    pub client_id: String,
    pub client_secret: Secret,
    /// Our callback URL as registered with the provider.
    pub redirect_uri: String,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// OIDC issuer; its `/.well-known/openid-configuration` supplies the endpoints.
    pub issuer: Option<String>,
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub userinfo_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShopConfig {
    /// The shop's name, as emails and pages show it.
    pub name: String,
    /// ISO 4217 code of the shop's currency; prices are integer minor units of it.
    pub currency: String,
    /// Base URL of the storefront; links in customer emails point below it.
    pub storefront_url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitsConfig {
    pub enabled: bool,
    /// Limits by route group: `login` (password sign-in and token endpoints), `register`,
    /// `password_reset` and `api` (everything else).
    pub groups: std::collections::BTreeMap<String, RateLimit>,
}

/// `requests` per `period_secs`, allowed in a burst and refilled evenly.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub requests: u32,
    pub period_secs: u64,
    #[serde(default)]
    pub key: LimitKey,
}

/// Whose budget a request spends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LimitKey {
    /// The client IP.
    #[default]
    Ip,
    /// The session cookie or bearer token when there is one, else the IP.
    Session,
}

impl Default for RateLimitsConfig {
    fn default() -> Self {
        let limit = |requests, period_secs, key| RateLimit {
            requests,
            period_secs,
            key,
        };
        Self {
            enabled: true,
            groups: [
                ("login".to_owned(), limit(10, 60, LimitKey::Ip)),
                ("register".to_owned(), limit(10, 3600, LimitKey::Ip)),
                ("password_reset".to_owned(), limit(5, 900, LimitKey::Ip)),
                ("api".to_owned(), limit(600, 60, LimitKey::Session)),
            ]
            .into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// Whether `bazaar serve` also runs job workers (turn off when `bazaar worker`
    /// processes do the work).
    pub run_workers: bool,
    /// Whether this process runs the cron scheduler (safe on every instance: a tick is
    /// queued once).
    pub run_scheduler: bool,
    /// Jobs of one type run at once per process.
    pub concurrency: usize,
    /// How often an idle worker looks for due jobs.
    pub poll_interval_ms: u64,
    /// Worker heartbeat; jobs of a worker silent for three heartbeats go back to the queue.
    pub heartbeat_secs: u64,
    /// How long shutdown waits for running jobs.
    pub shutdown_grace_secs: u64,
    /// Per-schedule overrides, by schedule name (e.g. `heartbeat`).
    pub schedules: std::collections::BTreeMap<String, ScheduleConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleConfig {
    pub enabled: bool,
    /// Cron expression with seconds (`sec min hour day month weekday`).
    pub cron: Option<String>,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            cron: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailConfig {
    /// Sender of every email, e.g. `Shop <no-reply@shop.example>`.
    pub from: String,
    /// Without it, emails are written as `.eml` files to `<data_dir>/outbox/`.
    pub smtp: Option<SmtpConfig>,
    /// Delivery attempts before an email is marked failed.
    pub max_attempts: u32,
    /// Delay before the first retry; it doubles with every failure.
    pub retry_backoff_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain SMTP (a local relay or a test sink only).
    None,
    Starttls,
    /// Implicit TLS (port 465).
    Tls,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    #[serde(default = "default_smtp_security")]
    pub security: SmtpSecurity,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<Secret>,
    #[serde(default = "default_smtp_timeout")]
    pub timeout_secs: u64,
}

fn default_smtp_port() -> u16 {
    587
}

fn default_smtp_security() -> SmtpSecurity {
    SmtpSecurity::Starttls
}

fn default_smtp_timeout() -> u64 {
    30
}

/// Checkout and fulfilment.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OrdersConfig {
    /// An order not paid this long after checkout is cancelled and its stock released.
    pub payment_timeout_secs: u32,
    /// The sender printed on carrier labels.
    pub ship_from_name: String,
    pub ship_from_phone: String,
    pub ship_from_address: Vec<String>,
}

impl Default for OrdersConfig {
    fn default() -> Self {
        Self {
            payment_timeout_secs: 30 * 60,
            ship_from_name: "Bazaar warehouse".into(),
            ship_from_phone: String::new(),
            ship_from_address: Vec::new(),
        }
    }
}

/// Flash sales: who turns accepted purchases into orders, and how fast.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlashSalesConfig {
    /// Order-making consumers of the purchase streams in this process (0: this instance
    /// only answers purchases, others make the orders).
    pub workers: usize,
    /// Purchases made into orders per database transaction.
    pub batch_size: usize,
    /// A purchase handed to a consumer and not acknowledged this long is taken over by
    /// another (its consumer died or hangs).
    pub claim_idle_ms: u64,
    /// How long a sale order may stay unpaid, unless the sale sets its own.
    pub payment_timeout_secs: u32,
}

impl Default for FlashSalesConfig {
    fn default() -> Self {
        Self {
            workers: 1,
            batch_size: 100,
            claim_idle_ms: 5_000,
            payment_timeout_secs: 300,
        }
    }
}

/// Payment gateways. A gateway without its section is not offered; keys are read from
/// files so they never sit in the configuration itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PaymentsConfig {
    /// Public base URL of this API as the gateways reach it (e.g. `https://shop.example`);
    /// notification URLs are `<base>/api/v1/payments/notify/<provider>`.
    pub notify_base_url: String,
    /// Where a customer's browser returns after paying at the gateway.
    pub return_url: Option<String>,
    /// A payment still pending this long is queried at its gateway by the reconciler.
    pub reconcile_after_secs: u64,
    /// Notifications signed longer ago than this are refused as replays (WeChat Pay).
    pub notification_max_age_secs: u64,
    pub alipay: Option<AlipayConfig>,
    pub wechat_pay: Option<WechatPayConfig>,
    pub unionpay: Option<UnionpayConfig>,
}

impl Default for PaymentsConfig {
    fn default() -> Self {
        Self {
            notify_base_url: "http://127.0.0.1:8080".into(),
            return_url: None,
            reconcile_after_secs: 15 * 60,
            notification_max_age_secs: 5 * 60,
            alipay: None,
            wechat_pay: None,
            unionpay: None,
        }
    }
}

/// Alipay open platform (`alipay.trade.*`), RSA2 signatures.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlipayConfig {
    #[serde(deserialize_with = "string_or_number")]
    pub app_id: String,
    /// `https://openapi.alipay.com/gateway.do`; the sandbox's or a test double's otherwise.
    #[serde(default = "default_alipay_gateway")]
    pub gateway_url: String,
    /// The merchant's RSA private key (PKCS#8 or PKCS#1, PEM or bare base64).
    pub private_key_path: PathBuf,
    /// Alipay's public key, which signs its responses and notifications.
    pub alipay_public_key_path: PathBuf,
}

/// Merchant and app ids are digits: from environment variables they arrive as numbers.
fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Text(String),
        Unsigned(u64),
        Signed(i64),
    }
    Ok(match Id::deserialize(d)? {
        Id::Text(s) => s,
        Id::Unsigned(n) => n.to_string(),
        Id::Signed(n) => n.to_string(),
    })
}

fn default_alipay_gateway() -> String {
    "https://openapi.alipay.com/gateway.do".into()
}

/// WeChat Pay API v3, `WECHATPAY2-SHA256-RSA2048` signatures.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WechatPayConfig {
    #[serde(deserialize_with = "string_or_number")]
    pub mch_id: String,
    #[serde(deserialize_with = "string_or_number")]
    pub app_id: String,
    #[serde(default = "default_wechat_base")]
    pub base_url: String,
    /// Serial number of the merchant API certificate whose key signs requests.
    #[serde(deserialize_with = "string_or_number")]
    pub merchant_serial_no: String,
    pub private_key_path: PathBuf,
    /// WeChat Pay's public key (PEM) and its id, sent as `Wechatpay-Serial`.
    pub platform_public_key_path: PathBuf,
    #[serde(deserialize_with = "string_or_number")]
    pub platform_serial: String,
    /// The APIv3 key (32 bytes) that encrypts notification resources.
    pub api_v3_key: Secret,
}

fn default_wechat_base() -> String {
    "https://api.mch.weixin.qq.com".into()
}

/// UnionPay online gateway (5.1.0): SHA-256 of the sorted parameters, signed with the
/// merchant's signing certificate key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnionpayConfig {
    #[serde(deserialize_with = "string_or_number")]
    pub mer_id: String,
    /// Base of `/gateway/api/frontTransReq.do`, `backTransReq.do` and `queryTrans.do`.
    #[serde(default = "default_unionpay_base")]
    pub base_url: String,
    /// Serial number of the merchant signing certificate (`certId`).
    #[serde(deserialize_with = "string_or_number")]
    pub cert_id: String,
    pub private_key_path: PathBuf,
    /// UnionPay's public key, which signs its responses and notifications.
    pub unionpay_public_key_path: PathBuf,
}

fn default_unionpay_base() -> String {
    "https://gateway.95516.com".into()
}

/// Where uploaded images and video live, and how large they may be.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    pub backend: MediaBackend,
    /// Directory of the `local` backend; defaults to `<data_dir>/media`. Instances behind
    /// one load balancer must share it, or use `s3`.
    pub dir: Option<PathBuf>,
    /// Required with `backend = "s3"`.
    pub s3: Option<S3Config>,
    pub max_image_bytes: u64,
    pub max_video_bytes: u64,
    /// How long an upload request may take, its body arriving included (a large video on
    /// a slow link); other requests have `http.request_timeout_secs`.
    pub upload_timeout_secs: u64,
    /// Base of the URLs handed out for stored files (a CDN or the bucket's public address);
    /// unset, Bazaar serves them itself at `/media/…`.
    pub public_base_url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaBackend {
    /// A directory on this machine.
    Local,
    /// An S3-compatible object store (AWS, MinIO, Ceph, …).
    S3,
}

/// An S3-compatible bucket, addressed path-style (`endpoint/bucket/key`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    pub bucket: String,
    #[serde(default = "default_s3_region")]
    pub region: String,
    /// Unset means AWS itself; set it for MinIO and other S3-compatible stores.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Without keys, credentials come from the environment or the instance role.
    #[serde(default)]
    pub access_key_id: Option<String>,
    #[serde(default)]
    pub secret_access_key: Option<Secret>,
    /// Allow a plain-HTTP endpoint (a store on the same host or network only).
    #[serde(default)]
    pub allow_http: bool,
    /// Keys are stored below this prefix, so several shops can share one bucket.
    #[serde(default)]
    pub prefix: Option<String>,
}

fn default_s3_region() -> String {
    "us-east-1".into()
}

impl MediaConfig {
    /// The body limit of upload routes: the largest file allowed, plus room for the
    /// multipart framing and small form fields.
    pub fn upload_body_limit(&self) -> usize {
        const FORM_OVERHEAD: u64 = 1024 * 1024;
        let largest = self.max_image_bytes.max(self.max_video_bytes);
        usize::try_from(largest.saturating_add(FORM_OVERHEAD)).unwrap_or(usize::MAX)
    }
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            backend: MediaBackend::Local,
            dir: None,
            s3: None,
            max_image_bytes: 10 * 1024 * 1024,
            max_video_bytes: 200 * 1024 * 1024,
            upload_timeout_secs: 600,
            public_base_url: None,
        }
    }
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            run_workers: true,
            run_scheduler: true,
            concurrency: 4,
            poll_interval_ms: 500,
            heartbeat_secs: 10,
            shutdown_grace_secs: 20,
            schedules: Default::default(),
        }
    }
}

impl Default for EmailConfig {
    fn default() -> Self {
        Self {
            from: "Bazaar <no-reply@bazaar.local>".into(),
            smtp: None,
            max_attempts: 5,
            retry_backoff_secs: 30,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("data"),
            database: DatabaseConfig::default(),
            redis: RedisConfig::default(),
            http: HttpConfig::default(),
            log: LogConfig::default(),
            auth: AuthConfig::default(),
            shop: ShopConfig::default(),
            jobs: JobsConfig::default(),
            email: EmailConfig::default(),
            rate_limits: RateLimitsConfig::default(),
            catalog: CatalogConfig::default(),
            media: MediaConfig::default(),
            orders: OrdersConfig::default(),
            flash_sales: FlashSalesConfig::default(),
            payments: PaymentsConfig::default(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            replica_url: None,
            max_connections: 16,
            auto_migrate: true,
        }
    }
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: None,
            key_prefix: "bazaar:".into(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            cors_origins: Vec::new(),
            body_limit_bytes: 2 * 1024 * 1024,
            request_timeout_secs: 30,
            shutdown_grace_secs: 20,
            behind_tls: false,
            trust_forwarded_for: false,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info,sqlx=warn,sea_orm=warn".into(),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            session_ttl_secs: 8 * 3600,
            max_failures_per_account: 5,
            max_failures_per_ip: 30,
            failure_window_secs: 900,
            bootstrap_admin: true,
            verification_ttl_secs: 48 * 3600,
            password_reset_ttl_secs: 3600,
            tokens: TokensConfig::default(),
            oauth: Default::default(),
        }
    }
}

impl Default for ShopConfig {
    fn default() -> Self {
        Self {
            name: "Bazaar".into(),
            currency: "CNY".into(),
            storefront_url: "http://localhost:8080".into(),
        }
    }
}

/// Values given on the command line; they win over every other source.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
}

/// A configuration error that names the offending key.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Loads the layered configuration. `file` is the `--config` flag; without it
    /// `./bazaar.toml` is read when present.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) if !path.exists() => {
                return Err(ConfigError(format!(
                    "config file {} does not exist",
                    path.display()
                )));
            }
            Some(path) => figment = figment.merge(Toml::file_exact(path)),
            None if Path::new("bazaar.toml").exists() => {
                figment = figment.merge(Toml::file_exact("bazaar.toml"));
            }
            None => {}
        }
        let figment = figment
            .merge(Env::prefixed("BAZAAR_").split("__"))
            .merge(Serialized::defaults(overrides));
        let config: Config = figment.extract().map_err(|e| {
            ConfigError(
                e.into_iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.orders.payment_timeout_secs == 0 {
            return Err(ConfigError(
                "orders.payment_timeout_secs: must be positive".into(),
            ));
        }
        if self.flash_sales.batch_size == 0 || self.flash_sales.payment_timeout_secs == 0 {
            return Err(ConfigError(
                "flash_sales.batch_size and flash_sales.payment_timeout_secs: must be positive"
                    .into(),
            ));
        }
        for (key, url) in [
            ("database.url", &self.database.url),
            ("database.replica_url", &self.database.replica_url),
        ] {
            if let Some(url) = url
                && !(url.0.starts_with("sqlite:")
                    || url.0.starts_with("postgres://")
                    || url.0.starts_with("postgresql://"))
            {
                return Err(ConfigError(format!(
                    "{key}: expected a sqlite: or postgres:// URL, got {url}"
                )));
            }
        }
        if let Some(url) = &self.redis.url
            && !(url.0.starts_with("redis://") || url.0.starts_with("rediss://"))
        {
            return Err(ConfigError(format!(
                "redis.url: expected a redis:// or rediss:// URL, got {url}"
            )));
        }
        for origin in &self.http.cors_origins {
            if origin != "*" && !(origin.starts_with("http://") || origin.starts_with("https://")) {
                return Err(ConfigError(format!(
                    "http.cors_origins: {origin:?} is not an http(s) origin"
                )));
            }
        }
        if self.http.body_limit_bytes == 0 {
            return Err(ConfigError(
                "http.body_limit_bytes: must be positive".into(),
            ));
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError(
                "database.max_connections: must be positive".into(),
            ));
        }
        if self.jobs.concurrency == 0 || self.jobs.heartbeat_secs == 0 {
            return Err(ConfigError(
                "jobs.concurrency and jobs.heartbeat_secs: must be positive".into(),
            ));
        }
        for (group, limit) in &self.rate_limits.groups {
            if limit.requests == 0 || limit.period_secs == 0 {
                return Err(ConfigError(format!(
                    "rate_limits.groups.{group}: requests and period_secs must be positive"
                )));
            }
        }
        if self.email.max_attempts == 0 {
            return Err(ConfigError("email.max_attempts: must be at least 1".into()));
        }
        if !self.email.from.contains('@') {
            return Err(ConfigError(format!(
                "email.from: {:?} is not an email address",
                self.email.from
            )));
        }
        self.validate_media()?;
        let currency = &self.shop.currency;
        if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(ConfigError(format!(
                "shop.currency: {currency:?} is not an ISO 4217 code"
            )));
        }
        Ok(())
    }

    fn validate_media(&self) -> Result<(), ConfigError> {
        let media = &self.media;
        if media.max_image_bytes == 0 || media.max_video_bytes == 0 {
            return Err(ConfigError(
                "media.max_image_bytes and media.max_video_bytes: must be positive".into(),
            ));
        }
        if media.upload_timeout_secs == 0 {
            return Err(ConfigError(
                "media.upload_timeout_secs: must be positive".into(),
            ));
        }
        if media.backend == MediaBackend::S3 {
            match &media.s3 {
                Some(s3) if !s3.bucket.trim().is_empty() => {}
                _ => {
                    return Err(ConfigError(
                        "media.s3.bucket: required with media.backend = \"s3\"".into(),
                    ));
                }
            }
        }
        if let Some(url) = &media.public_base_url
            && !(url.starts_with("https://") || url.starts_with("http://") || url.starts_with('/'))
        {
            return Err(ConfigError(format!(
                "media.public_base_url: {url:?} is neither an http(s) URL nor a path"
            )));
        }
        Ok(())
    }

    /// The directory of the `local` media backend.
    pub fn media_dir(&self) -> PathBuf {
        self.media
            .dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("media"))
    }

    /// The primary database URL: the configured one or a SQLite file in the data dir.
    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(url) => url.expose().to_owned(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("bazaar.db").display()
            ),
        }
    }

    /// The configuration as TOML with every credential masked.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}"))
    }
}

/// A credential: never printed, never logged.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"********\"")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("********")
    }
}

/// A URL that may carry credentials: its password never reaches logs or `bazaar config`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SecretUrl(String);

impl SecretUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    fn redacted(&self) -> String {
        let Some((scheme, rest)) = self.0.split_once("://") else {
            return self.0.clone();
        };
        match rest.rsplit_once('@') {
            Some((userinfo, host)) => {
                let user = userinfo.split(':').next().unwrap_or_default();
                format!("{scheme}://{user}:********@{host}")
            }
            None => self.0.clone(),
        }
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

impl Serialize for SecretUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_in_urls() {
        let url = SecretUrl::new("postgres://shop:hunter2@db:5432/bazaar");
        assert_eq!(url.to_string(), "postgres://shop:********@db:5432/bazaar");
        assert!(!format!("{url:?}").contains("hunter2"));
        let config = Config {
            database: DatabaseConfig {
                url: Some(url),
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(!config.to_redacted_toml().contains("hunter2"));
    }

    #[test]
    fn reads_an_s3_media_section_and_masks_its_secret() {
        let toml = r#"
            [media]
            backend = "s3"
            max_video_bytes = 1000
            [media.s3]
            bucket = "shop-media"
            endpoint = "http://127.0.0.1:9000"
            secret_access_key = "hunter2"
        "#;
        let config: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(toml))
            .extract()
            .unwrap();
        config.validate().unwrap();
        let s3 = config.media.s3.as_ref().unwrap();
        assert_eq!(
            (s3.bucket.as_str(), s3.region.as_str()),
            ("shop-media", "us-east-1")
        );
        assert_eq!(config.media.max_video_bytes, 1000);
        assert_eq!(config.media.max_image_bytes, 10 * 1024 * 1024);
        assert!(!config.to_redacted_toml().contains("hunter2"));
    }

    #[test]
    fn s3_media_needs_a_bucket() {
        let mut config = Config::default();
        config.media.backend = MediaBackend::S3;
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("media.s3.bucket"), "{err}");
    }

    #[test]
    fn rejects_unknown_database_scheme_naming_the_key() {
        let config = Config {
            database: DatabaseConfig {
                url: Some(SecretUrl::new("mysql://x")),
                ..Default::default()
            },
            ..Default::default()
        };
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("database.url"), "{err}");
    }
}
