//! `Idempotency-Key`: a write retried with the same key, by the same principal, on the same
//! route within 24 h gets the stored response instead of running again; the same key with
//! a different body is a 409. Records live in the database, so every instance agrees.

use axum::body::{Body, to_bytes};
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{Duration, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, Condition, QueryFilter};
use sha2::{Digest, Sha256};

use crate::app::AppState;
use crate::identity::guard::{CustomerPrincipal, Principal};
use crate::platform::ApiError;

pub const HEADER: &str = "idempotency-key";
/// Set on a response that was replayed from an earlier request.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
const RETENTION_HOURS: i64 = 24;
const MAX_STORED_BODY: usize = 1024 * 1024;
const KEPT_HEADERS: [&str; 3] = ["content-type", "location", "etag"];

pub mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "idempotency_keys")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub principal: String,
        pub method: String,
        pub route: String,
        pub idempotency_key: String,
        pub request_hash: String,
        pub status_code: Option<i32>,
        pub response_headers: Option<String>,
        pub response_body: Option<String>,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

use entity::{ActiveModel, Column, Entity};

enum Claim {
    Fresh(i64),
    Replay(entity::Model),
}

/// Middleware on every write route; a no-op for requests without the header.
pub async fn replay_or_record(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    if !matches!(
        method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) {
        return next.run(req).await;
    }
    let Some(key) = req.headers().get(HEADER).cloned() else {
        return next.run(req).await;
    };
    match run(key, req, next).await {
        Ok(response) | Err(response) => response,
    }
}

async fn run(key: HeaderValue, req: Request, next: Next) -> Result<Response, Response> {
    let key = key
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255)
        .ok_or_else(|| {
            ApiError::bad_request("Idempotency-Key must be 1 to 255 visible ASCII characters")
                .into_response()
        })?
        .to_owned();
    let state = req
        .extensions()
        .get::<AppState>()
        .cloned()
        .ok_or_else(|| ApiError::internal("application state missing").into_response())?;
    let principal = req
        .extensions()
        .get::<Principal>()
        .map(Principal::idempotency_scope)
        .or_else(|| {
            req.extensions()
                .get::<CustomerPrincipal>()
                .map(CustomerPrincipal::idempotency_scope)
        })
        .unwrap_or_else(|| "anonymous".to_owned());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned());
    let method = req.method().as_str().to_owned();

    let (parts, body) = req.into_parts();
    // The route's body limit (general or upload) already bounds the body.
    let bytes = to_bytes(body, usize::MAX).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "the request body is too large",
        )
        .into_response()
    })?;
    let hash = hex::encode(Sha256::digest(&bytes));

    let db = state.db.writer();
    let record = Record {
        principal,
        method,
        route,
        key,
    };
    let abandon_after = Duration::seconds(state.config.http.request_timeout_secs as i64 + 5);
    match record
        .claim(db, &hash, abandon_after)
        .await
        .map_err(into_response)?
    {
        Claim::Replay(stored) if stored.request_hash != hash => Err(ApiError::conflict(
            "idempotency-key-reused",
            "this Idempotency-Key was already used with a different request body",
        )
        .into_response()),
        Claim::Replay(stored) => match stored.status_code {
            Some(status) => Ok(replay(&stored, status)),
            None => Err(ApiError::conflict(
                "idempotency-request-in-progress",
                "a request with this Idempotency-Key is still being processed",
            )
            .with_header(axum::http::header::RETRY_AFTER, HeaderValue::from(1))
            .into_response()),
        },
        Claim::Fresh(id) => {
            let response = next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await;
            Ok(store(db, id, response).await)
        }
    }
}

struct Record {
    principal: String,
    method: String,
    route: String,
    key: String,
}

impl Record {
    /// Restricts `query` to this record's principal, method, route and key.
    fn scoped<Q: QueryFilter>(&self, query: Q) -> Q {
        query
            .filter(Column::Principal.eq(&self.principal))
            .filter(Column::Method.eq(&self.method))
            .filter(Column::Route.eq(&self.route))
            .filter(Column::IdempotencyKey.eq(&self.key))
    }

    /// Inserts an in-progress record, or returns the one a previous request left. Expired
    /// records, and in-progress ones older than any request may run (`abandon_after`: the
    /// process died mid-request), are cleared first.
    async fn claim(
        &self,
        db: &DatabaseConnection,
        hash: &str,
        abandon_after: Duration,
    ) -> Result<Claim, DbErr> {
        let now = Utc::now();
        self.scoped(Entity::delete_many())
            .filter(
                Condition::any()
                    .add(Column::CreatedAt.lt(now - Duration::hours(RETENTION_HOURS)))
                    .add(
                        Condition::all()
                            .add(Column::StatusCode.is_null())
                            .add(Column::CreatedAt.lt(now - abandon_after)),
                    ),
            )
            .exec(db)
            .await?;
        let fresh = ActiveModel {
            principal: Set(self.principal.clone()),
            method: Set(self.method.clone()),
            route: Set(self.route.clone()),
            idempotency_key: Set(self.key.clone()),
            request_hash: Set(hash.to_owned()),
            created_at: Set(Utc::now()),
            ..Default::default()
        };
        match Entity::insert(fresh).exec(db).await {
            Ok(done) => Ok(Claim::Fresh(done.last_insert_id)),
            Err(err)
                if matches!(
                    err.sql_err(),
                    Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
                ) =>
            {
                match self.scoped(Entity::find()).one(db).await? {
                    Some(existing) => Ok(Claim::Replay(existing)),
                    None => Err(err),
                }
            }
            Err(err) => Err(err),
        }
    }
}

/// Keeps the response for replay; server errors are forgotten so a retry runs again.
async fn store(db: &DatabaseConnection, id: i64, response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_STORED_BODY).await else {
        forget(db, id).await;
        return ApiError::internal("response too large to store for idempotency").into_response();
    };
    let text = String::from_utf8(bytes.to_vec()).ok();
    match text {
        Some(text) if !parts.status.is_server_error() => {
            let headers: Vec<(String, String)> = KEPT_HEADERS
                .iter()
                .filter_map(|name| {
                    parts
                        .headers
                        .get(*name)
                        .and_then(|v| v.to_str().ok())
                        .map(|v| ((*name).to_owned(), v.to_owned()))
                })
                .collect();
            let update = ActiveModel {
                id: Set(id),
                status_code: Set(Some(i32::from(parts.status.as_u16()))),
                response_headers: Set(serde_json::to_string(&headers).ok()),
                response_body: Set(Some(text)),
                ..Default::default()
            };
            if let Err(err) = Entity::update(update).exec(db).await {
                tracing::error!(error = %err, "cannot store idempotent response");
                forget(db, id).await;
            }
        }
        _ => forget(db, id).await,
    }
    Response::from_parts(parts, Body::from(bytes))
}

async fn forget(db: &DatabaseConnection, id: i64) {
    if let Err(err) = Entity::delete_by_id(id).exec(db).await {
        tracing::error!(error = %err, "cannot release idempotency key");
    }
}

fn replay(stored: &entity::Model, status: i32) -> Response {
    let status = u16::try_from(status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let mut headers = HeaderMap::new();
    let pairs: Vec<(String, String)> = stored
        .response_headers
        .as_deref()
        .and_then(|h| serde_json::from_str(h).ok())
        .unwrap_or_default();
    for (name, value) in pairs {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.insert(name, value);
        }
    }
    headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    let body = stored.response_body.clone().unwrap_or_default();
    (status, headers, body).into_response()
}

fn into_response(err: DbErr) -> Response {
    ApiError::from(err).into_response()
}
