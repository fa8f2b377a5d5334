//! Start-up: connect storage, assemble the router, bind, serve until shutdown.

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{Next, from_fn};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi as _;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use crate::config::Config;
use crate::identity::keys::KeyRing;
use crate::jobs::{self, Registry, scheduler::Scheduler, worker::WorkerPool};
use crate::media::{self, MediaStore};
use crate::notify::{self, email::Mailer};
use crate::platform::cache::{self, SharedKeyValue};
use crate::platform::db::Db;
use crate::platform::error::{PROBLEM_JSON, Problem};
use crate::platform::routing::{Access, ApiRouter, PermissionInfo, permission_catalogue};
use crate::platform::{ApiError, telemetry};
use crate::{catalog, content, customers, inventory, promotions};
use crate::{identity, system};

/// Everything a request handler may need; one per process, shared by all requests.
pub struct App {
    pub config: Config,
    pub db: Db,
    pub kv: SharedKeyValue,
    /// Generated from the routes at start-up.
    pub permissions: Vec<PermissionInfo>,
    /// Every job type and schedule.
    pub jobs: Registry,
    pub mailer: Mailer,
    /// Keys that sign and verify access tokens.
    pub keys: Arc<KeyRing>,
    /// Third-party login providers.
    pub oauth: identity::oauth::Providers,
    /// The storefront's hot-read caches of product pages and lists.
    pub catalog: crate::catalog::cache::CatalogCaches,
    /// Images and video of products, brands, ads and pages.
    pub media: MediaStore,
    /// The payment gateways configured for this shop.
    pub gateways: crate::payments::gateway::Gateways,
    /// Open flash sales as this process last read them.
    pub flash_sales: crate::flash::service::LocalSales,
    openapi: OpenApi,
    /// The API routes, built once with `openapi` so the two always agree.
    routes: Router<AppState>,
    metrics: PrometheusHandle,
}

#[derive(Clone)]
pub struct AppState(pub Arc<App>);

impl Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.0
    }
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Bazaar API",
        description = "Storefront (`/api/v1`) and back office (`/api/v1/admin`) of the Bazaar e-commerce platform. Errors are RFC 9457 problem documents."
    ),
    components(schemas(Problem, crate::platform::error::FieldError))
)]
struct ApiDoc;

/// All API routes and their OpenAPI description.
fn api() -> (Router<AppState>, OpenApi) {
    let admin = identity::routes::admin_router()
        .merge(customers::routes::admin_router())
        .merge(catalog::routes::admin_router())
        .merge(inventory::routes::admin_router())
        .merge(system::routes::admin_router())
        .merge(jobs::routes::admin_router())
        .merge(notify::routes::admin_router())
        .merge(content::routes::admin_router())
        .merge(media::routes::admin_router())
        .merge(crate::orders::routes::admin_router())
        .merge(crate::payments::routes::admin_router())
        .merge(crate::flash::routes::admin_router())
        .merge(crate::reports::admin_router())
        .merge(promotions::routes::admin_router())
        .merge(promotions::admin_routes::admin_router());
    let storefront = system::routes::storefront_router()
        .merge(identity::routes::storefront_router())
        .merge(customers::routes::storefront_router())
        .merge(catalog::routes::storefront_router())
        .merge(content::routes::storefront_router())
        .merge(crate::cart::routes::storefront_router())
        .merge(crate::orders::routes::storefront_router())
        .merge(crate::payments::routes::storefront_router())
        .merge(crate::flash::routes::storefront_router())
        .merge(promotions::routes::storefront_router());
    let operations = ApiRouter::new()
        .route(routes!(healthz), Access::Public)
        .route(routes!(readyz), Access::Public)
        .route(routes!(render_metrics), Access::Public)
        .route(routes!(identity::routes::tokens::get_jwks), Access::Public)
        .merge(media::routes::public_router());
    let (router, api) = ApiRouter::new()
        .nest("/api/v1/admin", admin)
        .nest("/api/v1", storefront)
        .merge(operations)
        .split();
    let mut doc = ApiDoc::openapi();
    doc.merge(api);
    doc.components
        .get_or_insert_with(Default::default)
        .add_security_scheme(
            "staff_session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                identity::session::Kind::Staff.cookie(),
                "Session cookie set by POST /api/v1/admin/auth/login; writes also need X-CSRF-Token.",
            ))),
        );
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "customer_session",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            identity::session::Kind::Customer.cookie(),
            "Session cookie set by POST /api/v1/auth/login; writes also need X-CSRF-Token.",
        ))),
    );
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some(
                    "RS256 access token from POST /api/v1/auth/token (customers) or POST /api/v1/admin/auth/token (staff); keys at /.well-known/jwks.json.",
                ))
                .build(),
        ),
    );
    (router, doc)
}

/// The OpenAPI document, without starting a server (for `bazaar openapi`).
pub fn openapi_document() -> OpenApi {
    api().1
}

impl App {
    /// Connects storage and, with `database.auto_migrate`, runs pending migrations.
    pub async fn open(config: Config) -> anyhow::Result<Self> {
        // rustls is built with two crypto back ends here; pick one before any TLS client.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let db = Db::connect(&config).await?;
        if config.database.auto_migrate {
            db.migrate().await.context("database migration failed")?;
        } else {
            let pending = db.pending_migrations().await?;
            anyhow::ensure!(
                pending.is_empty(),
                "the database needs migrations {pending:?}; run `bazaar migrate up`"
            );
        }
        let kv = cache::open(&config).await?;
        let (routes, mut doc) = api();
        let permissions = permission_catalogue(&mut doc);
        let jobs = jobs::catalogue(&config);
        let mailer = Mailer::from_config(&config)?;
        let key_dir = config
            .auth
            .tokens
            .key_dir
            .clone()
            .unwrap_or_else(|| config.data_dir.join("keys"));
        let keys = Arc::new(KeyRing::open(
            &key_dir,
            Duration::from_secs(config.auth.tokens.access_ttl_secs),
        )?);
        let oauth = identity::oauth::Providers::from_config(&config)?;
        let catalog = crate::catalog::cache::CatalogCaches::from_config(&config.catalog);
        let media = MediaStore::open(&config)?;
        let gateways = crate::payments::gateway::Gateways::from_config(&config)?;
        Ok(Self {
            config,
            db,
            kv,
            permissions,
            jobs,
            mailer,
            keys,
            oauth,
            catalog,
            media,
            gateways,
            flash_sales: Default::default(),
            openapi: doc,
            routes,
            metrics: telemetry::metrics_handle(),
        })
    }
}

/// The whole HTTP application: API routes, operations endpoints, docs and middleware.
pub fn router(state: AppState) -> Router {
    let config = &state.config;
    let api = state.routes.clone();
    let cors = if config.http.cors_origins.is_empty() {
        CorsLayer::new()
    } else if config.http.cors_origins.iter().any(|o| o == "*") {
        CorsLayer::permissive()
    } else {
        let origins: Vec<HeaderValue> = config
            .http
            .cors_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_credentials(true)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::CONTENT_TYPE,
                header::IF_MATCH,
                header::AUTHORIZATION,
                header::HeaderName::from_static(identity::session::CSRF_HEADER),
                header::HeaderName::from_static(crate::platform::idempotency::HEADER),
                header::HeaderName::from_static(crate::cart::routes::CART_TOKEN),
            ])
            .expose_headers([header::ETAG, header::LOCATION])
    };
    api.route_layer(from_fn(telemetry::record_http_metrics))
        .merge(SwaggerUi::new("/api/docs").url("/api/openapi.json", state.openapi.clone()))
        .fallback(|req: Request| async move { ApiError::route_not_found(req.uri().path()) })
        .with_state(state.clone())
        .layer(from_fn(crate::platform::ratelimit::limit_requests))
        .layer(Extension(state.clone()))
        // Body limits are per route (`ApiRouter::route`), so upload routes can lift theirs.
        // Images are compressed already, and so is video.
        .layer(CompressionLayer::new().compress_when(
            DefaultPredicate::new()
                .and(NotForContentType::const_new("video/")),
        ))
        .layer(cors)
        // Routes have their own time limits (`ApiRouter::route`); this one bounds
        // everything else, and no route is given longer.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(
                config
                    .http
                    .request_timeout_secs
                    .max(config.media.upload_timeout_secs),
            ),
        ))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("a handler panicked").into_response()
        }))
        // Outside the body limit and the timeout, so their bare answers get problem bodies.
        .layer(from_fn(problem_for_bare_errors))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let request_id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id)
        }))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// Framework errors (405, 413, 408, …) come with empty or plain-text bodies: give them
/// the same problem document as the API's own errors.
async fn problem_for_bare_errors(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let response = next.run(req).await;
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let (code, detail) = match status {
        StatusCode::METHOD_NOT_ALLOWED => (
            "method-not-allowed",
            format!("{path} does not accept this method"),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "payload-too-large",
            "the request body is too large".to_owned(),
        ),
        StatusCode::REQUEST_TIMEOUT => ("request-timeout", "the request took too long".to_owned()),
        StatusCode::NOT_FOUND => ("not-found", format!("no route for {path}")),
        _ => (
            "http-error",
            status.canonical_reason().unwrap_or("error").to_owned(),
        ),
    };
    let mut problem = ApiError::new(status, code, detail).into_response();
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(value) = response.headers().get(&name) {
            problem.headers_mut().insert(name, value.clone());
        }
    }
    problem
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = String)))]
async fn healthz() -> &'static str {
    "ok"
}

#[derive(Serialize, utoipa::ToSchema)]
struct Readiness {
    status: &'static str,
    database: String,
    cache: String,
}

/// Readiness: the database and the key-value store answer.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
async fn readyz(State(state): State<AppState>) -> Response {
    let database = match state.db.ping().await {
        Ok(()) => "ok".to_owned(),
        Err(e) => format!("unreachable: {e}"),
    };
    let cache = match state.kv.ping().await {
        Ok(()) => "ok".to_owned(),
        Err(e) => format!("{} unreachable: {e}", state.kv.kind()),
    };
    let ready = database == "ok" && cache == "ok";
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Readiness {
        status: if ready { "ready" } else { "unavailable" },
        database,
        cache,
    };
    (status, Json(body)).into_response()
}

/// Prometheus metrics: requests by route template and status, latency, database pool.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
async fn render_metrics(State(state): State<AppState>) -> Response {
    let (size, idle) = state.db.pool_stats();
    metrics::gauge!("db_pool_connections").set(f64::from(size));
    metrics::gauge!("db_pool_idle_connections").set(idle as f64);
    match jobs::store::queue_stats(state.db.reader()).await {
        Ok(queues) => {
            for q in queues {
                for (status, count) in [
                    ("pending", q.pending),
                    ("running", q.running),
                    ("retrying", q.retrying),
                    ("dead", q.dead),
                ] {
                    metrics::gauge!("jobs_queue_depth", "queue" => q.queue.clone(), "state" => status)
                        .set(count as f64);
                }
            }
        }
        Err(err) => tracing::warn!(error = %err, "cannot read queue depths"),
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    pub state: AppState,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<std::io::Result<()>>,
    background: Background,
}

/// Job workers and the scheduler a process runs beside (or instead of) HTTP.
#[derive(Default)]
pub struct Background {
    workers: Option<WorkerPool>,
    scheduler: Option<Scheduler>,
    /// Flash-sale order makers and housekeeping.
    flash: Option<crate::flash::worker::Workers>,
}

impl Background {
    /// Starts what `jobs.run_workers` and `jobs.run_scheduler` ask for.
    pub fn start(state: &AppState, options: &jobs::worker::WorkerOptions) -> anyhow::Result<Self> {
        let config = &state.config.jobs;
        Ok(Self {
            workers: config
                .run_workers
                .then(|| jobs::worker::start(state, options))
                .transpose()?,
            scheduler: config
                .run_scheduler
                .then(|| jobs::scheduler::start(state))
                .transpose()?,
            flash: Some(crate::flash::worker::start(state)),
        })
    }

    /// Stops the scheduler, then drains the workers.
    pub async fn stop(self) {
        if let Some(flash) = self.flash {
            flash.stop().await;
        }
        if let Some(scheduler) = self.scheduler {
            scheduler.stop().await;
        }
        if let Some(workers) = self.workers {
            workers.stop().await;
        }
    }
}

impl Server {
    /// Stops accepting, lets in-flight requests finish (bounded by the grace period).
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        self.wait().await
    }

    /// Waits until the server stops: first HTTP (in-flight requests finish), then the
    /// scheduler and the job workers (running jobs finish).
    pub async fn wait(self) -> anyhow::Result<()> {
        let grace = Duration::from_secs(self.state.config.http.shutdown_grace_secs);
        let mut rx = self.shutdown.subscribe();
        let task = self.task;
        tokio::pin!(task);
        let served = tokio::select! {
            result = &mut task => Some(result),
            _ = rx.wait_for(|stop| *stop) => None,
        };
        let served = match served {
            Some(result) => result,
            None => match tokio::time::timeout(grace, &mut task).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::warn!("in-flight requests outlived the shutdown grace period");
                    task.abort();
                    Ok(Ok(()))
                }
            },
        };
        self.background.stop().await;
        Ok(served??)
    }

    /// A handle that triggers graceful shutdown (signals, tests).
    pub fn stopper(&self) -> watch::Sender<bool> {
        self.shutdown.clone()
    }
}

/// Opens storage, binds `config.listen` (port 0 picks a free one) and starts serving.
pub async fn build(config: Config) -> anyhow::Result<Server> {
    let listen = config.listen;
    let state = AppState(Arc::new(App::open(config).await?));
    // Before serving, so unknown product slugs are turned away from the first request.
    if tokio::time::timeout(
        Duration::from_secs(60),
        crate::catalog::cache::ensure_slug_filter(&state),
    )
    .await
    .is_err()
    {
        tracing::warn!("the product slug filter is still building; serving without it");
    }
    let listener = bind(listen)?;
    let addr = listener.local_addr()?;
    let app = router(state.clone());
    let (shutdown, mut rx) = watch::channel(false);
    let started = Instant::now();
    let options = jobs::worker::WorkerOptions {
        queues: None,
        concurrency: state.config.jobs.concurrency,
    };
    let background = Background::start(&state, &options)?;
    spawn_notification_recovery(state.clone());
    spawn_key_reloader(state.keys.clone(), shutdown.subscribe());
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = rx.wait_for(|stop| *stop).await;
        })
        .await
    });
    tracing::info!(%addr, ready_in_ms = started.elapsed().as_millis() as u64, "bazaar is serving");
    Ok(Server {
        addr,
        state,
        shutdown,
        task,
        background,
    })
}

/// Applies payment notifications a previous process stored but died before applying.
fn spawn_notification_recovery(state: AppState) {
    tokio::spawn(async move {
        if let Err(err) = crate::payments::notifications::recover(&state, chrono::Utc::now()).await
        {
            tracing::warn!(error = %err.problem().detail, "payment notification recovery failed");
        }
    });
}

/// Picks up keys another instance added to the shared key directory (a rotation).
fn spawn_key_reloader(keys: Arc<KeyRing>, mut stop: watch::Receiver<bool>) {
    const INTERVAL: Duration = Duration::from_secs(30);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(INTERVAL);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if let Err(err) = keys.reload() {
                        tracing::error!(error = %err, "cannot reload the token signing keys");
                    }
                }
                _ = stop.wait_for(|stop| *stop) => break,
            }
        }
    });
}

/// Binds with SO_REUSEADDR so a restart right after a stop gets the same port at once.
fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket
        .bind(addr)
        .with_context(|| format!("cannot listen on {addr}"))?;
    Ok(socket.listen(1024)?)
}
