//! The email queue in the back office: watch, retry, delete, send a test.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Select};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use super::email::{self, SendEmail, Status};
use super::entity as outbox;
use super::{EMAILS_READ, EMAILS_WRITE};
use crate::app::AppState;
use crate::identity::guard::CurrentStaff;
use crate::jobs::{self, Enqueue};
use crate::platform::crud::find_or_404;
use crate::platform::extract::{Json, Query};
use crate::platform::list::{ListParams, Page, SortFields};
use crate::platform::routing::{Access, ApiRouter};
use crate::platform::{ApiError, ApiResult};

pub fn admin_router() -> ApiRouter {
    ApiRouter::new()
        .route(routes!(list_emails), Access::Permission(EMAILS_READ))
        .route(routes!(get_email), Access::Permission(EMAILS_READ))
        .route(routes!(retry_email), Access::Permission(EMAILS_WRITE))
        .route(routes!(delete_email), Access::Permission(EMAILS_WRITE))
        .route(routes!(send_test_email), Access::Permission(EMAILS_WRITE))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EmailView {
    pub id: i64,
    pub to: String,
    pub subject: String,
    pub template: String,
    pub status: Status,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

impl From<outbox::Model> for EmailView {
    fn from(row: outbox::Model) -> Self {
        Self {
            id: row.id,
            to: row.to_address,
            subject: row.subject,
            template: row.template,
            status: match row.status.as_str() {
                "sent" => Status::Sent,
                "failed" => Status::Failed,
                _ => Status::Pending,
            },
            attempts: row.attempts,
            last_error: row.last_error,
            created_at: row.created_at,
            sent_at: row.sent_at,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EmailFilter {
    pub status: Option<Status>,
    /// Recipient address (exact).
    pub to: Option<String>,
}

const SORT: SortFields<outbox::Column> = SortFields(&[
    ("created_at", outbox::Column::CreatedAt),
    ("sent_at", outbox::Column::SentAt),
]);

fn email_query(filter: &EmailFilter) -> Select<outbox::Entity> {
    let mut query = outbox::Entity::find();
    if let Some(status) = filter.status {
        query = query.filter(outbox::Column::Status.eq(status.as_str()));
    }
    if let Some(to) = &filter.to {
        query = query.filter(outbox::Column::ToAddress.eq(to));
    }
    query
}

/// The outbox, newest first unless sorted otherwise.
#[utoipa::path(get, path = "/emails", tag = "emails", params(ListParams, EmailFilter),
    responses((status = 200, body = Page<EmailView>)))]
pub async fn list_emails(
    State(state): State<AppState>,
    Query(mut list): Query<ListParams>,
    Query(filter): Query<EmailFilter>,
) -> ApiResult<axum::Json<Page<EmailView>>> {
    list.sort.get_or_insert_with(|| "-created_at".into());
    let page = list
        .spec(&SORT)?
        .fetch(state.db.reader(), email_query(&filter), outbox::Column::Id)
        .await?;
    Ok(axum::Json(page.map(EmailView::from)))
}

#[utoipa::path(get, path = "/emails/{id}", tag = "emails", params(("id" = i64, Path)),
    responses((status = 200, body = EmailView)))]
pub async fn get_email(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<EmailView>> {
    let row = find_or_404::<outbox::Entity>(state.db.reader(), id, "email").await?;
    Ok(axum::Json(row.into()))
}

/// Queues a failed email for delivery again.
#[utoipa::path(post, path = "/emails/{id}/retry", tag = "emails", params(("id" = i64, Path)),
    responses((status = 202, body = EmailView), (status = 409, description = "The email has not failed")))]
pub async fn retry_email(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<(StatusCode, axum::Json<EmailView>)> {
    let txn = state.db.begin().await?;
    let row = find_or_404::<outbox::Entity>(&txn, id, "email").await?;
    if row.status != Status::Failed.as_str() {
        return Err(ApiError::conflict(
            "email-not-failed",
            format!(
                "email {id} is {}; only failed emails can be retried",
                row.status
            ),
        ));
    }
    let row = outbox::Entity::update(outbox::ActiveModel {
        id: Set(id),
        status: Set(Status::Pending.as_str().to_owned()),
        updated_at: Set(Utc::now()),
        ..Default::default()
    })
    .exec(&txn)
    .await?;
    jobs::enqueue(
        &txn,
        &state.config,
        &SendEmail { email_id: id },
        Enqueue::default(),
    )
    .await?;
    txn.commit().await?;
    Ok((StatusCode::ACCEPTED, axum::Json(row.into())))
}

/// Deletes a sent or failed email; a pending one is still owned by its job.
#[utoipa::path(delete, path = "/emails/{id}", tag = "emails", params(("id" = i64, Path)),
    responses((status = 204), (status = 409, description = "The email is still queued")))]
pub async fn delete_email(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let db = state.db.writer();
    let row = find_or_404::<outbox::Entity>(db, id, "email").await?;
    if row.status == Status::Pending.as_str() {
        return Err(ApiError::conflict(
            "email-pending",
            format!("email {id} is still queued"),
        ));
    }
    outbox::Entity::delete_by_id(id).exec(db).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestEmail {
    pub to: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Queued {
    pub id: i64,
}

/// Queues a test email, to check the mail settings end to end.
#[utoipa::path(post, path = "/emails/test", tag = "emails", request_body = TestEmail,
    responses((status = 202, body = Queued)))]
pub async fn send_test_email(
    State(state): State<AppState>,
    CurrentStaff(staff): CurrentStaff,
    Json(body): Json<TestEmail>,
) -> ApiResult<(StatusCode, axum::Json<Queued>)> {
    let txn = state.db.begin().await?;
    let context = serde_json::json!({"shop": state.config.shop.name, "sender": staff.email});
    let id = email::queue_email(&txn, &state.config, &body.to, "test", &context).await?;
    txn.commit().await?;
    Ok((StatusCode::ACCEPTED, axum::Json(Queued { id })))
}
