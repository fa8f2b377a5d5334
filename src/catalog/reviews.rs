//! Product reviews: a customer rates a product on sale from 1 to 5 stars, with text and the
//! review fields of its product type; staff reply and delete. Every insert and delete moves
//! the product's tally (`rating_count`, `rating_sum`) in the same transaction, so the
//! product page's summary is read off the product instead of counted on every view.

use std::collections::HashMap;

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::{NotSet, Set};
use sea_orm::{ConnectionTrait, DbErr, SqlErr};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::attributes;
use super::entity::{attribute_definition, product, review};
use super::model::{AttributeScope, AttributeValues};
use super::products::model::RatingSummary;
use super::products::{self, store as product_store, storefront};
use super::store as catalog_store;
use crate::app::AppState;
use crate::customers::service as customers;
use crate::identity::service::{Actor, audit};
use crate::orders::purchases;
use crate::platform::concurrency::Expected;
use crate::platform::error::Validator;
use crate::platform::list::{ListParams, Page, SortFields};
use crate::platform::{ApiError, ApiResult};

const RESOURCE: &str = "review";
const TEXT_MAX: usize = 5000;
const DEFAULT_PER_PAGE: u64 = 20;
const MAX_PER_PAGE: u64 = 100;

const SORT: SortFields<review::Column> = SortFields(&[
    ("created_at", review::Column::CreatedAt),
    ("rating", review::Column::Rating),
]);

/// A customer's review of a product.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostReview {
    /// Whole stars, 1 to 5.
    pub rating: i32,
    /// Plain text (never rendered as HTML), at most 5000 characters; may be empty.
    #[serde(default)]
    pub body: String,
    /// Values of the product type's review fields, by code.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub fields: AttributeValues,
}

/// A review as shoppers see it: the author by public name only.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewView {
    pub id: i64,
    pub rating: i32,
    pub body: String,
    /// Review field values, by code.
    #[schema(value_type = Object)]
    pub fields: AttributeValues,
    /// First name and last initial, e.g. "Ada L.".
    pub author: String,
    pub created_at: DateTime<Utc>,
    /// The shop's answer.
    pub reply: Option<String>,
    pub replied_at: Option<DateTime<Utc>>,
}

/// A review as staff see it: who wrote it, who answered, and its version for edits.
#[derive(Debug, Serialize, ToSchema)]
pub struct StaffReviewView {
    #[serde(flatten)]
    pub review: ReviewView,
    pub product_id: i64,
    pub customer_id: i64,
    /// The staff member who replied.
    pub replied_by: Option<i64>,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
}

/// A page of a product's reviews with the summary of all of them.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductReviews {
    pub items: Vec<ReviewView>,
    /// Reviews matching the filter, on all pages.
    pub total: u64,
    pub page: u64,
    pub per_page: u64,
    /// Over all the product's reviews, whatever the filter.
    pub rating: RatingSummary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewSort {
    /// Most recent first.
    Newest,
    /// Lowest rating first, then most recent.
    Rating,
    /// Highest rating first, then most recent.
    #[serde(rename = "-rating")]
    RatingDesc,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReviewQuery {
    /// Only reviews with this many stars.
    pub rating: Option<i32>,
    pub sort: Option<ReviewSort>,
    pub page: Option<u64>,
    /// 1 to 100; default 20.
    pub per_page: Option<u64>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReviewFilter {
    pub product_id: Option<i64>,
    pub customer_id: Option<i64>,
    pub rating: Option<i32>,
    /// `true`: only answered reviews; `false`: only unanswered ones.
    pub replied: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyReview {
    /// Shown under the review on the storefront; replaces an earlier reply.
    pub reply: String,
    /// The version replied to, when the reply must not overwrite someone else's
    /// (`If-Match` works too); without either the reply is written unconditionally.
    pub version: Option<i64>,
}

fn not_found(id: i64) -> ApiError {
    ApiError::not_found(RESOURCE, id)
}

fn not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "review-not-allowed",
        "only customers with a verified email who have received this product (in an order \
         that shipped or completed) may review it",
    )
}

fn already_reviewed() -> ApiError {
    ApiError::conflict(
        "already-reviewed",
        "you have already reviewed this product; delete that review to write another",
    )
}

/// The one-review-per-customer index losing a race reads as the check it raced.
fn duplicate_review(err: DbErr) -> ApiError {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => already_reviewed(),
        _ => err.into(),
    }
}

fn on_sale(p: &product::Model, now: DateTime<Utc>) -> bool {
    product_store::visible(
        &p.status,
        p.publish_at,
        p.unpublish_at,
        p.deleted_at.is_some(),
        now,
    )
}

/// The product on sale now under `slug`: reviews of anything else are not shown or taken.
async fn product_on_sale(db: &impl ConnectionTrait, slug: &str) -> ApiResult<product::Model> {
    product_store::live_product_by_slug(db, slug)
        .await?
        .filter(|p| on_sale(p, Utc::now()))
        .ok_or_else(|| ApiError::not_found("product", slug))
}

/// Whether the customer may review the product: the one place that decides it, so the
/// rule can change without touching the routes. An active customer with a verified email
/// may review a product on sale that they have received: a line of it in one of their
/// orders that shipped or completed (an order awaiting payment, paid but not shipped yet,
/// or cancelled does not count).
pub async fn may_review(
    db: &impl ConnectionTrait,
    customer_id: i64,
    product_id: i64,
) -> ApiResult<bool> {
    let verified = customers::find_account(db, customer_id)
        .await?
        .is_some_and(|a| a.can_sign_in() && a.email_verified_at.is_some());
    if !verified {
        return Ok(false);
    }
    let on_sale_now = product_store::find_product(db, product_id)
        .await?
        .is_some_and(|p| on_sale(&p, Utc::now()));
    if !on_sale_now {
        return Ok(false);
    }
    purchases::has_received(db, customer_id, product_id).await
}

/// Plain text may hold line breaks and tabs but no other control characters (PostgreSQL
/// text cannot even hold NUL).
fn plain_text(text: &str) -> bool {
    !text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
}

/// The review fields a product's type asks for.
async fn review_fields_of(
    db: &impl ConnectionTrait,
    p: &product::Model,
) -> ApiResult<Vec<attribute_definition::Model>> {
    match p.product_type_id {
        Some(type_id) => Ok(catalog_store::attribute_definitions(
            db,
            Some(AttributeScope::Review.as_str()),
            Some(type_id),
        )
        .await?),
        None => Ok(Vec::new()),
    }
}

/// Every review field of the shop: a review keeps its values when its product changes type.
async fn all_review_field_ids(db: &impl ConnectionTrait) -> ApiResult<Vec<i64>> {
    Ok(
        catalog_store::attribute_definitions(db, Some(AttributeScope::Review.as_str()), None)
            .await?
            .into_iter()
            .map(|d| d.id)
            .collect(),
    )
}

/// Storefront views of reviews, with their fields and authors in two queries.
async fn public_views(
    db: &impl ConnectionTrait,
    reviews: &[review::Model],
) -> ApiResult<Vec<ReviewView>> {
    let definitions =
        catalog_store::attribute_definitions(db, Some(AttributeScope::Review.as_str()), None)
            .await?;
    let codes: HashMap<i64, &str> = definitions
        .iter()
        .map(|d| (d.id, d.code.as_str()))
        .collect();
    let ids: Vec<i64> = reviews.iter().map(|r| r.id).collect();
    let definition_ids: Vec<i64> = codes.keys().copied().collect();
    let mut fields: HashMap<i64, AttributeValues> = HashMap::new();
    for value in catalog_store::values_of_owners(db, &definition_ids, &ids).await? {
        if let Some(code) = codes.get(&value.definition_id) {
            fields.entry(value.owner_id).or_default().insert(
                (*code).to_owned(),
                serde_json::from_str(&value.value).unwrap_or(Value::Null),
            );
        }
    }
    let customer_ids: Vec<i64> = reviews.iter().map(|r| r.customer_id).collect();
    let authors = customers::public_names(db, &customer_ids).await?;
    Ok(reviews
        .iter()
        .map(|r| ReviewView {
            id: r.id,
            rating: r.rating,
            body: r.body.clone(),
            fields: fields.remove(&r.id).unwrap_or_default(),
            author: authors
                .get(&r.customer_id)
                .cloned()
                .unwrap_or_else(|| customers::public_name("")),
            created_at: r.created_at,
            reply: r.reply.clone(),
            replied_at: r.replied_at,
        })
        .collect())
}

async fn staff_views(
    db: &impl ConnectionTrait,
    reviews: Vec<review::Model>,
) -> ApiResult<Vec<StaffReviewView>> {
    let public = public_views(db, &reviews).await?;
    Ok(reviews
        .into_iter()
        .zip(public)
        .map(|(r, review)| StaffReviewView {
            review,
            product_id: r.product_id,
            customer_id: r.customer_id,
            replied_by: r.replied_by,
            version: r.version,
            updated_at: r.updated_at,
        })
        .collect())
}

async fn staff_view(db: &impl ConnectionTrait, r: review::Model) -> ApiResult<StaffReviewView> {
    let id = r.id;
    staff_views(db, vec![r])
        .await?
        .pop()
        .ok_or_else(|| not_found(id))
}

/// Posts the signed-in customer's review of the product on sale under `slug`.
pub async fn post_review(
    state: &AppState,
    customer_id: i64,
    slug: &str,
    input: PostReview,
) -> ApiResult<ReviewView> {
    let txn = state.db.begin().await?;
    let product = product_on_sale(&txn, slug).await?;
    if !may_review(&txn, customer_id, product.id).await? {
        return Err(not_allowed());
    }
    let definitions = review_fields_of(&txn, &product).await?;
    let body = input.body.trim();
    let mut v = Validator::default();
    v.check(
        (1..=5).contains(&input.rating),
        "rating",
        "must be a whole number of stars from 1 to 5",
    );
    v.check(
        body.chars().count() <= TEXT_MAX,
        "body",
        "must be at most 5000 characters",
    );
    v.check(
        plain_text(body),
        "body",
        "must not contain control characters",
    );
    let values = match attributes::validate_values(&definitions, &input.fields) {
        Ok(values) => values,
        Err(err) => {
            for e in err.problem().errors {
                let field = e.field.replacen("attributes.", "fields.", 1);
                v.check(false, &field, &e.message);
            }
            Vec::new()
        }
    };
    v.finish()?;
    if store::by_author(&txn, product.id, customer_id)
        .await?
        .is_some()
    {
        return Err(already_reviewed());
    }
    let now = Utc::now();
    let created = store::insert(
        &txn,
        review::ActiveModel {
            id: NotSet,
            version: Set(1),
            product_id: Set(product.id),
            customer_id: Set(customer_id),
            rating: Set(input.rating),
            body: Set(body.to_owned()),
            reply: Set(None),
            replied_at: Set(None),
            replied_by: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        },
    )
    .await
    .map_err(duplicate_review)?;
    let definition_ids: Vec<i64> = definitions.iter().map(|d| d.id).collect();
    catalog_store::replace_values(&txn, &definition_ids, created.id, values).await?;
    product_store::tally_rating(&txn, product.id, 1, created.rating).await?;
    let view = public_views(&txn, std::slice::from_ref(&created))
        .await?
        .pop()
        .ok_or_else(|| not_found(created.id))?;
    txn.commit().await?;
    products::after_write(state, &product).await;
    Ok(view)
}

/// The reviews of a product on sale, newest first by default, with its rating summary.
pub async fn product_reviews(
    state: &AppState,
    slug: &str,
    query: &ReviewQuery,
) -> ApiResult<ProductReviews> {
    let per_page = query.per_page.unwrap_or(DEFAULT_PER_PAGE);
    let page = query.page.unwrap_or(1);
    let mut v = Validator::default();
    v.check(
        (1..=MAX_PER_PAGE).contains(&per_page),
        "per_page",
        "must be 1 to 100",
    );
    v.check(page >= 1, "page", "must be at least 1");
    v.check(
        query.rating.is_none_or(|r| (1..=5).contains(&r)),
        "rating",
        "must be 1 to 5",
    );
    v.finish()
        .map_err(|e| e.with_status(StatusCode::BAD_REQUEST))?;
    let db = state.db.reader();
    let product = product_on_sale(db, slug).await?;
    let (total, reviews) = store::page_of_product(
        db,
        product.id,
        query.rating,
        query.sort.unwrap_or(ReviewSort::Newest),
        (page - 1).saturating_mul(per_page),
        per_page,
    )
    .await?;
    Ok(ProductReviews {
        items: public_views(db, &reviews).await?,
        total,
        page,
        per_page,
        rating: storefront::rating_summary(db, &product).await?,
    })
}

/// One of the customer's own reviews; someone else's is a 404, as if it did not exist.
pub async fn own_review(state: &AppState, customer_id: i64, id: i64) -> ApiResult<ReviewView> {
    let db = state.db.reader();
    let review = store::find(db, id)
        .await?
        .filter(|r| r.customer_id == customer_id)
        .ok_or_else(|| not_found(id))?;
    public_views(db, std::slice::from_ref(&review))
        .await?
        .pop()
        .ok_or_else(|| not_found(id))
}

/// Deletes a review with its field values and takes it off its product's tally, in the
/// caller's transaction. Returns the product, whose cached page must then be refreshed.
async fn remove(
    db: &impl ConnectionTrait,
    review: &review::Model,
) -> ApiResult<Option<product::Model>> {
    // Only the delete that removed the row moves the tally, whoever else deletes at once.
    if store::delete(db, review.id).await? == 0 {
        return Err(not_found(review.id));
    }
    let definition_ids = all_review_field_ids(db).await?;
    catalog_store::replace_values(db, &definition_ids, review.id, Vec::new()).await?;
    product_store::tally_rating(db, review.product_id, -1, -review.rating).await?;
    Ok(product_store::find_product(db, review.product_id).await?)
}

/// A customer withdraws their own review.
pub async fn delete_own_review(state: &AppState, customer_id: i64, id: i64) -> ApiResult<()> {
    let txn = state.db.begin().await?;
    let review = store::find(&txn, id)
        .await?
        .filter(|r| r.customer_id == customer_id)
        .ok_or_else(|| not_found(id))?;
    let product = remove(&txn, &review).await?;
    txn.commit().await?;
    if let Some(product) = product {
        products::after_write(state, &product).await;
    }
    Ok(())
}

/// Reviews of any product, newest first unless `sort` says otherwise.
pub async fn list_reviews(
    state: &AppState,
    list: &ListParams,
    filter: &ReviewFilter,
) -> ApiResult<Page<StaffReviewView>> {
    let mut spec = list.spec(&SORT)?;
    if spec.order.is_empty() {
        spec.order
            .push((review::Column::CreatedAt, sea_orm::Order::Desc));
    }
    let db = state.db.reader();
    let page = spec
        .fetch(db, store::filtered(filter), review::Column::Id)
        .await?;
    let items = staff_views(db, page.items).await?;
    Ok(Page {
        items,
        total: page.total,
        page: page.page,
        per_page: page.per_page,
    })
}

pub async fn get_review(state: &AppState, id: i64) -> ApiResult<StaffReviewView> {
    let db = state.db.reader();
    let review = store::find(db, id).await?.ok_or_else(|| not_found(id))?;
    staff_view(db, review).await
}

/// Answers a review (or replaces the answer); with `expected`, only the version replied to.
pub async fn reply_to_review(
    state: &AppState,
    actor: &Actor<'_>,
    id: i64,
    expected: Option<Expected>,
    input: ReplyReview,
) -> ApiResult<StaffReviewView> {
    let reply = input.reply.trim();
    let mut v = Validator::default();
    v.text(reply, "reply", TEXT_MAX);
    v.check(
        plain_text(reply),
        "reply",
        "must not contain control characters",
    );
    v.finish()?;
    let staff_id = actor.principal.ok_or_else(ApiError::unauthorized)?.staff_id;
    let txn = state.db.begin().await?;
    let answered = store::record_reply(
        &txn,
        id,
        reply,
        staff_id,
        Utc::now(),
        expected.map(Expected::version),
    )
    .await?;
    if !answered {
        return Err(match (store::find(&txn, id).await?, expected) {
            (Some(_), Some(expected)) => expected.stale(RESOURCE),
            _ => not_found(id),
        });
    }
    let review = store::find(&txn, id).await?.ok_or_else(|| not_found(id))?;
    audit(
        &txn,
        actor,
        "review_replied",
        Some(format!("review:{id}")),
        json!({ "product_id": review.product_id, "customer_id": review.customer_id }),
    )
    .await?;
    let view = staff_view(&txn, review).await?;
    txn.commit().await?;
    Ok(view)
}

/// Staff remove a review (abuse, spam); the product's summary follows at once.
pub async fn delete_review(state: &AppState, actor: &Actor<'_>, id: i64) -> ApiResult<()> {
    let txn = state.db.begin().await?;
    let review = store::find(&txn, id).await?.ok_or_else(|| not_found(id))?;
    let product = remove(&txn, &review).await?;
    audit(
        &txn,
        actor,
        "review_deleted",
        Some(format!("review:{id}")),
        json!({ "product_id": review.product_id, "customer_id": review.customer_id,
            "rating": review.rating, "body": review.body }),
    )
    .await?;
    txn.commit().await?;
    if let Some(product) = product {
        products::after_write(state, &product).await;
    }
    Ok(())
}

/// Queries of the reviews table.
mod store {
    use chrono::{DateTime, Utc};
    use sea_orm::sea_query::{Expr, ExprTrait};
    use sea_orm::{
        ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
        QuerySelect, Select,
    };

    use super::{ReviewFilter, ReviewSort};
    use crate::catalog::entity::review;

    pub async fn find(db: &impl ConnectionTrait, id: i64) -> Result<Option<review::Model>, DbErr> {
        review::Entity::find_by_id(id).one(db).await
    }

    pub async fn by_author(
        db: &impl ConnectionTrait,
        product_id: i64,
        customer_id: i64,
    ) -> Result<Option<review::Model>, DbErr> {
        review::Entity::find()
            .filter(review::Column::ProductId.eq(product_id))
            .filter(review::Column::CustomerId.eq(customer_id))
            .one(db)
            .await
    }

    pub async fn insert(
        db: &impl ConnectionTrait,
        row: review::ActiveModel,
    ) -> Result<review::Model, DbErr> {
        review::Entity::insert(row).exec_with_returning(db).await
    }

    /// Rows deleted: 0 when someone else deleted it first.
    pub async fn delete(db: &impl ConnectionTrait, id: i64) -> Result<u64, DbErr> {
        Ok(review::Entity::delete_by_id(id)
            .exec(db)
            .await?
            .rows_affected)
    }

    /// Whether the reply was recorded: false when the review is gone or, with
    /// `version`, at another version.
    pub async fn record_reply(
        db: &impl ConnectionTrait,
        id: i64,
        reply: &str,
        staff_id: i64,
        at: DateTime<Utc>,
        version: Option<i64>,
    ) -> Result<bool, DbErr> {
        let mut update = review::Entity::update_many()
            .col_expr(review::Column::Reply, Expr::value(reply))
            .col_expr(review::Column::RepliedAt, Expr::value(at))
            .col_expr(review::Column::RepliedBy, Expr::value(staff_id))
            .col_expr(review::Column::UpdatedAt, Expr::value(at))
            .col_expr(
                review::Column::Version,
                Expr::col(review::Column::Version).add(1),
            )
            .filter(review::Column::Id.eq(id));
        if let Some(version) = version {
            update = update.filter(review::Column::Version.eq(version));
        }
        Ok(update.exec(db).await?.rows_affected == 1)
    }

    /// One page of a product's reviews and how many match in all.
    pub async fn page_of_product(
        db: &impl ConnectionTrait,
        product_id: i64,
        rating: Option<i32>,
        sort: ReviewSort,
        offset: u64,
        limit: u64,
    ) -> Result<(u64, Vec<review::Model>), DbErr> {
        let mut select = review::Entity::find().filter(review::Column::ProductId.eq(product_id));
        if let Some(rating) = rating {
            select = select.filter(review::Column::Rating.eq(rating));
        }
        let total = select.clone().count(db).await?;
        select = match sort {
            ReviewSort::Newest => select,
            ReviewSort::Rating => select.order_by_asc(review::Column::Rating),
            ReviewSort::RatingDesc => select.order_by_desc(review::Column::Rating),
        };
        let reviews = select
            .order_by_desc(review::Column::CreatedAt)
            .order_by_desc(review::Column::Id)
            .offset(offset)
            .limit(limit)
            .all(db)
            .await?;
        Ok((total, reviews))
    }

    pub fn filtered(filter: &ReviewFilter) -> Select<review::Entity> {
        let mut query = review::Entity::find();
        if let Some(id) = filter.product_id {
            query = query.filter(review::Column::ProductId.eq(id));
        }
        if let Some(id) = filter.customer_id {
            query = query.filter(review::Column::CustomerId.eq(id));
        }
        if let Some(rating) = filter.rating {
            query = query.filter(review::Column::Rating.eq(rating));
        }
        query = match filter.replied {
            Some(true) => query.filter(review::Column::RepliedAt.is_not_null()),
            Some(false) => query.filter(review::Column::RepliedAt.is_null()),
            None => query,
        };
        query
    }
}
