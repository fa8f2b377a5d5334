//! Route registration. Every route names who may call it when it is registered, so the
//! permission list is read off the routes and cannot drift from them.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{StatusCode, header};
use axum::middleware::{Next, from_fn};
use axum::response::{IntoResponse, Response as HttpResponse};
use http_body_util::Limited;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, Response, ResponseBuilder};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter, UtoipaMethodRouterExt};

use crate::app::AppState;
use crate::identity::guard;
use crate::platform::ApiError;
use crate::platform::error::PROBLEM_JSON;
use crate::platform::idempotency;

/// A named permission a staff member's roles may grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permission {
    pub name: &'static str,
    pub description: &'static str,
}

impl Permission {
    pub const fn new(name: &'static str, description: &'static str) -> Self {
        Self { name, description }
    }
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not.
    Public,
    /// Any signed-in, active staff member.
    Staff,
    /// Any signed-in customer.
    Customer,
    /// Staff holding this permission (superusers hold all).
    Permission(Permission),
}

const ACCESS_EXTENSION: &str = "x-access";
const PERMISSION_EXTENSION: &str = "x-permission";
const DESCRIPTION_EXTENSION: &str = "x-permission-description";

/// An `OpenApiRouter` that only accepts routes together with their access rule.
pub struct ApiRouter(OpenApiRouter<AppState>);

impl Default for ApiRouter {
    fn default() -> Self {
        Self::new()
    }
}

impl ApiRouter {
    pub fn new() -> Self {
        Self(OpenApiRouter::new())
    }

    /// Registers the handlers of `routes!(…)` guarded by `access`; writes that carry an
    /// `Idempotency-Key` are replayed rather than run twice. Bodies are limited to
    /// `http.body_limit_bytes`, time to `http.request_timeout_secs`.
    pub fn route(self, route: UtoipaMethodRouter<AppState>, access: Access) -> Self {
        self.add(route, access, Budget::General, true)
    }

    /// `route` for a handler that keeps its own idempotency keys outside the database
    /// (the flash-sale gate): a crowd of retries must not become database writes.
    pub fn self_idempotent_route(
        self,
        route: UtoipaMethodRouter<AppState>,
        access: Access,
    ) -> Self {
        self.add(route, access, Budget::General, false)
    }

    /// `route` for handlers that take media uploads: their bodies may be as large as the
    /// largest file `media.max_*_bytes` allows (the handler enforces the limit of the
    /// file's kind while it reads), and may take `media.upload_timeout_secs` to arrive.
    pub fn upload_route(self, route: UtoipaMethodRouter<AppState>, access: Access) -> Self {
        self.add(route, access, Budget::Upload, true)
    }

    fn add(
        self,
        route: UtoipaMethodRouter<AppState>,
        access: Access,
        budget: Budget,
        replay: bool,
    ) -> Self {
        let (schemas, mut paths, method_router) = route;
        for item in paths.paths.values_mut() {
            for (_, operation) in operations_mut(item) {
                describe_access(operation, access);
            }
        }
        // Layers run last to first: the time limit; the guard, so an anonymous client
        // cannot make us read a large body; then the body limit, which the extractors' own
        // default must not undercut.
        let mut route = (schemas, paths, method_router);
        if replay {
            route = route.layer::<_, Infallible>(from_fn(idempotency::replay_or_record));
        }
        let route = route
            .layer::<_, Infallible>(DefaultBodyLimit::disable())
            .layer(from_fn(move |req: Request, next: Next| {
                limit_body(budget, req, next)
            }))
            .layer(from_fn(move |req: Request, next: Next| {
                guard::enforce(access, req, next)
            }))
            .layer(from_fn(move |req: Request, next: Next| {
                limit_time(budget, req, next)
            }));
        Self(self.0.routes(route))
    }

    pub fn nest(self, path: &str, other: ApiRouter) -> Self {
        Self(self.0.nest(path, other.0))
    }

    pub fn merge(self, other: ApiRouter) -> Self {
        Self(self.0.merge(other.0))
    }

    pub fn split(self) -> (Router<AppState>, OpenApi) {
        let (router, mut doc) = self.0.split_for_parts();
        // axum's catch-all `{*key}` is a plain `{key}` parameter in OpenAPI.
        doc.paths.paths = std::mem::take(&mut doc.paths.paths)
            .into_iter()
            .map(|(path, item)| (path.replace("{*", "{"), item))
            .collect();
        (router, doc)
    }
}

/// The body size and time a route's requests may take.
#[derive(Debug, Clone, Copy)]
enum Budget {
    General,
    Upload,
}

/// Answers 408 when a request (its body arriving included) outlasts its route's time.
async fn limit_time(budget: Budget, req: Request, next: Next) -> HttpResponse {
    let Some(state) = req.extensions().get::<AppState>() else {
        return next.run(req).await;
    };
    let secs = match budget {
        Budget::General => state.config.http.request_timeout_secs,
        Budget::Upload => state.config.media.upload_timeout_secs,
    };
    tokio::time::timeout(Duration::from_secs(secs), next.run(req))
        .await
        .unwrap_or_else(|_| {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request-timeout",
                "the request took too long",
            )
            .into_response()
        })
}

/// Refuses a body over the route's limit: at once when `Content-Length` says so, else as
/// soon as reading passes it.
async fn limit_body(budget: Budget, req: Request, next: Next) -> HttpResponse {
    let Some(state) = req.extensions().get::<AppState>() else {
        return next.run(req).await;
    };
    let limit = match budget {
        Budget::General => state.config.http.body_limit_bytes,
        Budget::Upload => state.config.media.upload_body_limit(),
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "the request body is too large",
        )
        .into_response();
    }
    next.run(req.map(|body| Body::new(Limited::new(body, limit))))
        .await
}

fn describe_access(operation: &mut Operation, access: Access) {
    let extensions = operation.extensions.get_or_insert_with(Extensions::default);
    let (kind, permission) = match access {
        Access::Public => ("public", None),
        Access::Staff => ("staff", None),
        Access::Customer => ("customer", None),
        Access::Permission(p) => ("permission", Some(p)),
    };
    extensions.insert(ACCESS_EXTENSION.into(), kind.into());
    if let Some(permission) = permission {
        extensions.insert(PERMISSION_EXTENSION.into(), permission.name.into());
        extensions.insert(DESCRIPTION_EXTENSION.into(), permission.description.into());
        let note = format!("Requires the permission `{}`.", permission.name);
        operation.description = Some(match operation.description.take() {
            Some(text) if !text.is_empty() => format!("{text}\n\n{note}"),
            _ => note,
        });
    }
    let mut problems = vec![
        ("4XX", "The request was refused: see the problem document"),
        ("5XX", "The server failed"),
    ];
    if access != Access::Public {
        problems.push(("401", "Not signed in"));
    }
    if access != Access::Public {
        problems.push((
            "403",
            "Signed in as the wrong kind of account or without the required permission, or a cookie-authenticated write without the CSRF token",
        ));
    }
    for (status, description) in problems {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| problem_response(description));
    }
    let session = match access {
        Access::Public => return,
        Access::Customer => "customer_session",
        Access::Staff | Access::Permission(_) => "staff_session",
    };
    operation.security = Some(vec![
        SecurityRequirement::new(session, Vec::<String>::new()),
        SecurityRequirement::new("bearer", Vec::<String>::new()),
    ]);
}

fn problem_response(description: &str) -> RefOr<Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                PROBLEM_JSON,
                Content::new(Some(Ref::from_schema_name("Problem"))),
            )
            .build(),
    )
}

fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = (&'static str, &mut Operation)> {
    [
        ("GET", item.get.as_mut()),
        ("PUT", item.put.as_mut()),
        ("POST", item.post.as_mut()),
        ("DELETE", item.delete.as_mut()),
        ("PATCH", item.patch.as_mut()),
        ("HEAD", item.head.as_mut()),
        ("OPTIONS", item.options.as_mut()),
        ("TRACE", item.trace.as_mut()),
    ]
    .into_iter()
    .filter_map(|(method, op)| op.map(|op| (method, op)))
}

/// One permission with the routes that require it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PermissionInfo {
    pub name: String,
    pub description: String,
    /// `METHOD /path` of every route that requires it.
    pub routes: Vec<String>,
}

/// The permission list, generated from the routes' access rules in the OpenAPI document.
pub fn permission_catalogue(openapi: &mut OpenApi) -> Vec<PermissionInfo> {
    let mut by_name: BTreeMap<String, PermissionInfo> = BTreeMap::new();
    for (path, item) in openapi.paths.paths.iter_mut() {
        for (method, operation) in operations_mut(item) {
            let Some(extensions) = &operation.extensions else {
                continue;
            };
            let Some(name) = extensions
                .get(PERMISSION_EXTENSION)
                .and_then(|v| v.as_str())
            else {
                continue;
            };
            let description = extensions
                .get(DESCRIPTION_EXTENSION)
                .and_then(|v| v.as_str())
                .unwrap_or_default();
            by_name
                .entry(name.to_owned())
                .or_insert_with(|| PermissionInfo {
                    name: name.to_owned(),
                    description: description.to_owned(),
                    routes: Vec::new(),
                })
                .routes
                .push(format!("{method} {path}"));
        }
    }
    by_name.into_values().collect()
}
