//! The back office's home page (R1): counts that each come from one indexed query.

use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::catalog::entity::{product, review, sku};
use crate::catalog::products::store::visible_condition;
use crate::catalog::products::storefront::IN_STOCK_SQL;
use crate::customers::entity::{customer, feedback};
use crate::orders::entity::order;
use crate::orders::model::OrderStatus;
use crate::platform::ApiResult;

#[derive(Debug, Serialize, ToSchema)]
pub struct Dashboard {
    pub generated_at: DateTime<Utc>,
    pub customers: CustomerFigures,
    pub orders: OrderFigures,
    pub products: ProductFigures,
    pub stock: StockFigures,
    pub latest_reviews: Vec<LatestReview>,
    pub latest_feedback: Vec<LatestFeedback>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerFigures {
    pub total: u64,
    pub new_today: u64,
    /// Since Monday 00:00 UTC.
    pub new_this_week: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderFigures {
    pub pending_payment: u64,
    pub paid: u64,
    pub ready_for_picking: u64,
    pub shipped: u64,
    pub completed: u64,
    pub cancelled: u64,
    pub placed_today: u64,
    /// Totals of orders paid today and not cancelled, in minor units.
    pub revenue_today: i64,
    pub currency: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductFigures {
    /// On the storefront now.
    pub listed: u64,
    /// Drafts, delisted, or outside their listing window.
    pub unlisted: u64,
    /// Listed but nothing can be bought.
    pub out_of_stock: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StockFigures {
    /// Active SKUs whose available units fell below their safety stock.
    pub low_stock_skus: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LatestReview {
    pub id: i64,
    pub product_id: i64,
    pub rating: i32,
    pub excerpt: String,
    pub replied: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LatestFeedback {
    pub id: i64,
    pub customer_id: i64,
    pub subject: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
}

fn excerpt(text: &str) -> String {
    let mut out: String = text.chars().take(140).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

pub async fn dashboard(state: &AppState) -> ApiResult<Dashboard> {
    let db = state.db.reader();
    let now = Utc::now();
    let today = Utc.from_utc_datetime(&now.date_naive().and_hms_opt(0, 0, 0).unwrap_or_default());
    let week = today - Duration::days(now.weekday().num_days_from_monday().into());
    let live_customers = || customer::Entity::find().filter(customer::Column::DeletedAt.is_null());
    let customers = CustomerFigures {
        total: live_customers().count(db).await?,
        new_today: live_customers()
            .filter(customer::Column::CreatedAt.gte(today))
            .count(db)
            .await?,
        new_this_week: live_customers()
            .filter(customer::Column::CreatedAt.gte(week))
            .count(db)
            .await?,
    };
    let by_status: Vec<(String, i64)> = order::Entity::find()
        .select_only()
        .column(order::Column::Status)
        .column_as(Expr::col(order::Column::Id).count(), "n")
        .group_by(order::Column::Status)
        .into_tuple()
        .all(db)
        .await?;
    let count_of = |status: OrderStatus| {
        by_status
            .iter()
            .find(|(s, _)| s == status.as_str())
            .map_or(0, |(_, n)| *n as u64)
    };
    let revenue_today: Option<i64> = order::Entity::find()
        .select_only()
        // SUM of a BIGINT is NUMERIC on PostgreSQL.
        .column_as(Expr::cust("CAST(SUM(total) AS BIGINT)"), "revenue")
        .filter(order::Column::PaidAt.gte(today))
        .filter(order::Column::Status.ne(OrderStatus::Cancelled.as_str()))
        .into_tuple::<Option<i64>>()
        .one(db)
        .await?
        .flatten();
    let orders = OrderFigures {
        pending_payment: count_of(OrderStatus::PendingPayment),
        paid: count_of(OrderStatus::Paid),
        ready_for_picking: count_of(OrderStatus::ReadyForPicking),
        shipped: count_of(OrderStatus::Shipped),
        completed: count_of(OrderStatus::Completed),
        cancelled: count_of(OrderStatus::Cancelled),
        placed_today: order::Entity::find()
            .filter(order::Column::PlacedAt.gte(today))
            .count(db)
            .await?,
        revenue_today: revenue_today.unwrap_or(0),
        currency: state.config.shop.currency.clone(),
    };
    let listed = product::Entity::find()
        .filter(visible_condition(now))
        .count(db)
        .await?;
    let all_live = product::Entity::find()
        .filter(product::Column::DeletedAt.is_null())
        .count(db)
        .await?;
    let out_of_stock = product::Entity::find()
        .filter(visible_condition(now))
        .filter(Expr::cust(IN_STOCK_SQL).not())
        .count(db)
        .await?;
    let low_stock_skus = sku::Entity::find()
        .filter(sku::Column::SafetyStock.gt(0))
        .filter(sku::Column::IsActive.eq(true))
        .filter(sku::Column::AlwaysAvailable.eq(false))
        .filter(
            Expr::col(sku::Column::Stock)
                .sub(Expr::col(sku::Column::Reserved))
                .lt(Expr::col(sku::Column::SafetyStock)),
        )
        .count(db)
        .await?;
    let latest_reviews = review::Entity::find()
        .order_by_desc(review::Column::Id)
        .limit(5)
        .all(db)
        .await?
        .into_iter()
        .map(|r| LatestReview {
            id: r.id,
            product_id: r.product_id,
            rating: r.rating,
            excerpt: excerpt(&r.body),
            replied: r.reply.is_some(),
            created_at: r.created_at,
        })
        .collect();
    let latest_feedback = feedback::Entity::find()
        .order_by_desc(feedback::Column::Id)
        .limit(5)
        .all(db)
        .await?
        .into_iter()
        .map(|f| LatestFeedback {
            id: f.id,
            customer_id: f.customer_id,
            subject: f.subject,
            status: f.status,
            created_at: f.created_at,
        })
        .collect();
    Ok(Dashboard {
        generated_at: now,
        customers,
        orders,
        products: ProductFigures {
            listed,
            unlisted: all_live - listed,
            out_of_stock,
        },
        stock: StockFigures { low_stock_skus },
        latest_reviews,
        latest_feedback,
    })
}
