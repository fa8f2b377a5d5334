//! Reviews: customers post and withdraw theirs, shoppers read them with the rating summary,
//! staff list, answer and delete.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use crate::app::AppState;
use crate::catalog::reviews::{
    self as service, PostReview, ProductReviews, ReplyReview, ReviewFilter, ReviewQuery,
    ReviewView, StaffReviewView,
};
use crate::identity::guard::{CurrentCustomer, CurrentStaff};
use crate::identity::service::Actor;
use crate::platform::ApiResult;
use crate::platform::concurrency::{Expected, IfMatch, Tagged};
use crate::platform::extract::{self, Query};
use crate::platform::list::{ListParams, Page};
use crate::platform::request::RequestMeta;

/// Reviews the product as the signed-in customer: one review per customer and product.
#[utoipa::path(post, path = "/products/{slug}/reviews", tag = "storefront",
    request_body = PostReview,
    responses((status = 201, body = ReviewView),
        (status = 403, description = "The customer has not received the product or has no \
            verified email"),
        (status = 404, description = "No product on sale under this slug"),
        (status = 409, description = "The customer already reviewed it")))]
pub async fn post_review(
    State(state): State<AppState>,
    CurrentCustomer(customer): CurrentCustomer,
    Path(slug): Path<String>,
    extract::Json(body): extract::Json<PostReview>,
) -> ApiResult<impl IntoResponse> {
    let review = service::post_review(&state, customer.customer_id, &slug, body).await?;
    let location = format!("/api/v1/me/reviews/{}", review.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(review),
    ))
}

/// A product's reviews, newest first by default, with the summary of all of them.
#[utoipa::path(get, path = "/products/{slug}/reviews", tag = "storefront",
    params(ReviewQuery),
    responses((status = 200, body = ProductReviews),
        (status = 404, description = "No product on sale under this slug")))]
pub async fn list_product_reviews(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    Query(query): Query<ReviewQuery>,
) -> ApiResult<Json<ProductReviews>> {
    Ok(Json(service::product_reviews(&state, &slug, &query).await?))
}

#[utoipa::path(get, path = "/me/reviews/{id}", tag = "account",
    responses((status = 200, body = ReviewView)))]
pub async fn get_my_review(
    State(state): State<AppState>,
    CurrentCustomer(customer): CurrentCustomer,
    Path(id): Path<i64>,
) -> ApiResult<Json<ReviewView>> {
    Ok(Json(
        service::own_review(&state, customer.customer_id, id).await?,
    ))
}

/// Withdraws one of the signed-in customer's reviews.
#[utoipa::path(delete, path = "/me/reviews/{id}", tag = "account",
    responses((status = 204)))]
pub async fn delete_my_review(
    State(state): State<AppState>,
    CurrentCustomer(customer): CurrentCustomer,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    service::delete_own_review(&state, customer.customer_id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Reviews of all products, newest first unless `sort` (`created_at`, `rating`) says
/// otherwise.
#[utoipa::path(get, path = "/reviews", tag = "reviews", params(ListParams, ReviewFilter),
    responses((status = 200, body = Page<StaffReviewView>)))]
pub async fn list_reviews(
    State(state): State<AppState>,
    Query(list): Query<ListParams>,
    Query(filter): Query<ReviewFilter>,
) -> ApiResult<Json<Page<StaffReviewView>>> {
    Ok(Json(service::list_reviews(&state, &list, &filter).await?))
}

#[utoipa::path(get, path = "/reviews/{id}", tag = "reviews",
    responses((status = 200, body = StaffReviewView, headers(("ETag" = String)))))]
pub async fn get_review(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Tagged<StaffReviewView>> {
    let review = service::get_review(&state, id).await?;
    Ok(Tagged(review.version, review))
}

/// Answers a review on the storefront, replacing an earlier answer. `If-Match` or
/// `version` make it conditional; without them the reply is written as is.
#[utoipa::path(put, path = "/reviews/{id}/reply", tag = "reviews", request_body = ReplyReview,
    responses((status = 200, body = StaffReviewView),
        (status = 409, description = "Stale version")))]
pub async fn reply_to_review(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
    if_match: IfMatch,
    extract::Json(body): extract::Json<ReplyReview>,
) -> ApiResult<Tagged<StaffReviewView>> {
    let expected = match (if_match.0, body.version) {
        (None, None) => None,
        _ => Some(Expected::from(if_match, body.version)?),
    };
    let actor = Actor::staff(&principal, &meta);
    let review = service::reply_to_review(&state, &actor, id, expected, body).await?;
    Ok(Tagged(review.version, review))
}

/// Deletes a review; the product's rating summary follows at once.
#[utoipa::path(delete, path = "/reviews/{id}", tag = "reviews", responses((status = 204)))]
pub async fn delete_review(
    State(state): State<AppState>,
    meta: RequestMeta,
    CurrentStaff(principal): CurrentStaff,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let actor = Actor::staff(&principal, &meta);
    service::delete_review(&state, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
