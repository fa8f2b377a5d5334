//! Feedback: customers write in and read their own; staff list, reply and delete.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use crate::app::AppState;
use crate::customers::model::{CreateFeedback, FeedbackFilter, FeedbackView, ReplyFeedback};
use crate::customers::service::feedback;
use crate::identity::guard::{CurrentCustomer, CurrentStaff};
use crate::identity::service::Actor;
use crate::platform::ApiResult;
use crate::platform::extract::{Json, Query};
use crate::platform::list::{ListParams, Page};
use crate::platform::request::RequestMeta;

/// Sends the shop a message; staff answer by email.
#[utoipa::path(post, path = "/feedback", tag = "account", request_body = CreateFeedback,
    responses((status = 201, body = FeedbackView)))]
pub async fn submit_feedback(
    State(state): State<AppState>,
    CurrentCustomer(customer): CurrentCustomer,
    Json(body): Json<CreateFeedback>,
) -> ApiResult<impl IntoResponse> {
    let item = feedback::submit_feedback(&state, customer.customer_id, body).await?;
    let location = format!("/api/v1/feedback/{}", item.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(item),
    ))
}

/// The signed-in customer's feedback with any replies, newest first.
#[utoipa::path(get, path = "/feedback", tag = "account", operation_id = "list_my_feedback",
    params(ListParams), responses((status = 200, body = Page<FeedbackView>)))]
pub async fn list_my_feedback(
    State(state): State<AppState>,
    CurrentCustomer(customer): CurrentCustomer,
    Query(list): Query<ListParams>,
) -> ApiResult<axum::Json<Page<FeedbackView>>> {
    let filter = FeedbackFilter {
        customer_id: Some(customer.customer_id),
        ..Default::default()
    };
    Ok(axum::Json(
        feedback::list_feedback(&state, &list, &filter).await?,
    ))
}

#[utoipa::path(get, path = "/feedback/{id}", tag = "account", operation_id = "get_my_feedback",
    responses((status = 200, body = FeedbackView)))]
pub async fn get_my_feedback(
    State(state): State<AppState>,
    CurrentCustomer(customer): CurrentCustomer,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<FeedbackView>> {
    Ok(axum::Json(
        feedback::get_feedback(&state, id, Some(customer.customer_id)).await?,
    ))
}

/// All customers' feedback, newest first.
#[utoipa::path(get, path = "/feedback", tag = "feedback", params(ListParams, FeedbackFilter),
    responses((status = 200, body = Page<FeedbackView>)))]
pub async fn list_feedback(
    State(state): State<AppState>,
    Query(list): Query<ListParams>,
    Query(filter): Query<FeedbackFilter>,
) -> ApiResult<axum::Json<Page<FeedbackView>>> {
    Ok(axum::Json(
        feedback::list_feedback(&state, &list, &filter).await?,
    ))
}

#[utoipa::path(get, path = "/feedback/{id}", tag = "feedback",
    responses((status = 200, body = FeedbackView)))]
pub async fn get_feedback(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<FeedbackView>> {
    Ok(axum::Json(feedback::get_feedback(&state, id, None).await?))
}

/// Replies to feedback; the reply is emailed to the customer.
#[utoipa::path(post, path = "/feedback/{id}/reply", tag = "feedback", request_body = ReplyFeedback,
    responses((status = 200, body = FeedbackView)))]
pub async fn reply_feedback(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
    Json(body): Json<ReplyFeedback>,
) -> ApiResult<axum::Json<FeedbackView>> {
    let actor = Actor::staff(&principal, &meta);
    Ok(axum::Json(
        feedback::reply_feedback(&state, &actor, id, body).await?,
    ))
}

#[utoipa::path(delete, path = "/feedback/{id}", tag = "feedback", responses((status = 204)))]
pub async fn delete_feedback(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let actor = Actor::staff(&principal, &meta);
    feedback::delete_feedback(&state, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
