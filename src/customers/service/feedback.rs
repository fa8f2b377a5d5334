//! Customer feedback: customers write in, staff reply (the reply is emailed) or delete.

use chrono::Utc;
use serde_json::json;

use crate::app::AppState;
use crate::customers::entity::feedback;
use crate::customers::model::{CreateFeedback, FeedbackFilter, FeedbackView, ReplyFeedback};
use crate::customers::store;
use crate::identity::service::{Actor, audit};
use crate::notify::email::queue_email;
use crate::platform::crud::delete_or_404;
use crate::platform::error::Validator;
use crate::platform::list::{ListParams, Page, SortFields};
use crate::platform::{ApiError, ApiResult};

const SORT: SortFields<feedback::Column> = SortFields(&[
    ("created_at", feedback::Column::CreatedAt),
    ("replied_at", feedback::Column::RepliedAt),
    ("status", feedback::Column::Status),
    ("id", feedback::Column::Id),
]);

fn not_found(id: i64) -> ApiError {
    ApiError::not_found("feedback", id)
}

pub async fn submit_feedback(
    state: &AppState,
    customer_id: i64,
    input: CreateFeedback,
) -> ApiResult<FeedbackView> {
    let mut v = Validator::default();
    v.text(&input.subject, "subject", 200);
    v.text(&input.message, "message", 5000);
    v.finish()?;
    // A bearer token outlives a deactivation by up to its lifetime.
    let active = store::find_customer(state.db.writer(), customer_id)
        .await?
        .is_some_and(|c| c.can_sign_in());
    if !active {
        return Err(ApiError::unauthorized());
    }
    let row = store::insert_feedback(
        state.db.writer(),
        customer_id,
        input.subject.trim(),
        input.message.trim(),
    )
    .await?;
    Ok(row.into())
}

/// Feedback pages; newest first unless `sort` says otherwise.
pub async fn list_feedback(
    state: &AppState,
    list: &ListParams,
    filter: &FeedbackFilter,
) -> ApiResult<Page<FeedbackView>> {
    let mut spec = list.spec(&SORT)?;
    if spec.order.is_empty() {
        spec.order
            .push((feedback::Column::CreatedAt, sea_orm::Order::Desc));
    }
    let page = spec
        .fetch(
            state.db.reader(),
            store::feedback_query(filter),
            feedback::Column::Id,
        )
        .await?;
    Ok(page.map(FeedbackView::from))
}

/// `customer_id` limits the lookup to that customer's own feedback (404 otherwise).
pub async fn get_feedback(
    state: &AppState,
    id: i64,
    customer_id: Option<i64>,
) -> ApiResult<FeedbackView> {
    store::find_feedback(state.db.reader(), id)
        .await?
        .filter(|f| customer_id.is_none_or(|c| c == f.customer_id))
        .map(FeedbackView::from)
        .ok_or_else(|| not_found(id))
}

/// Stores the reply and emails it to the customer in the same transaction; a customer
/// who was deleted or has no address gets no email.
pub async fn reply_feedback(
    state: &AppState,
    actor: &Actor<'_>,
    id: i64,
    input: ReplyFeedback,
) -> ApiResult<FeedbackView> {
    let mut v = Validator::default();
    v.text(&input.reply, "reply", 5000);
    v.finish()?;
    let staff_id = actor.principal.ok_or_else(ApiError::unauthorized)?.staff_id;
    let reply = input.reply.trim();
    let txn = state.db.begin().await?;
    let item = store::find_feedback(&txn, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    store::record_reply(&txn, id, reply, staff_id, Utc::now()).await?;
    let customer = store::find_customer(&txn, item.customer_id).await?;
    let mut email_id = None;
    if let Some(customer) = customer.filter(|c| c.deleted_at.is_none())
        && let Some(to) = &customer.email
    {
        email_id = Some(
            queue_email(
                &txn,
                &state.config,
                to,
                "feedback_reply",
                &json!({ "shop": state.config.shop.name, "name": customer.name,
                    "subject": item.subject, "message": item.message, "reply": reply }),
            )
            .await?,
        );
    }
    audit(
        &txn,
        actor,
        "feedback_replied",
        Some(format!("feedback:{id}")),
        json!({ "customer_id": item.customer_id, "email_id": email_id }),
    )
    .await?;
    let updated = store::find_feedback(&txn, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    txn.commit().await?;
    Ok(updated.into())
}

pub async fn delete_feedback(state: &AppState, actor: &Actor<'_>, id: i64) -> ApiResult<()> {
    let txn = state.db.begin().await?;
    let item = store::find_feedback(&txn, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    delete_or_404::<feedback::Entity>(&txn, id, "feedback").await?;
    audit(
        &txn,
        actor,
        "feedback_deleted",
        Some(format!("feedback:{id}")),
        json!({ "customer_id": item.customer_id, "subject": item.subject }),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}
