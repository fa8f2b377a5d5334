//! The bridge between stored promotions and the pure engine: which promotions may apply to
//! a cart, and the usage an order takes (and gives back when it is cancelled).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};

use super::engine::{Candidate, CustomerFacts, PricedCart, PromotionKind, PromotionRule, Stacking};
use super::entity::{coupon, promotion, redemption};
use crate::customers::store as customer_store;
use crate::orders::entity::order;
use crate::platform::{ApiError, ApiResult};

/// The promotions a cart is priced with, and the coupons its codes named.
#[derive(Debug, Default)]
pub struct Resolved {
    pub candidates: Vec<Candidate>,
    /// Promotion id → the coupon that brought it in.
    pub coupons: HashMap<i64, i64>,
    /// Entered codes that cannot be used, with the reason.
    pub rejected: Vec<RejectedCode>,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct RejectedCode {
    pub code: String,
    pub reason: String,
}

/// Codes as customers type them: trimmed, upper case, each once.
pub fn normalise_codes(codes: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for code in codes {
        let code = code.trim().to_uppercase();
        if !code.is_empty() && !out.contains(&code) {
            out.push(code);
        }
    }
    out
}

/// What the conditions ask about the customer.
pub async fn customer_facts(
    db: &impl ConnectionTrait,
    customer_id: i64,
    now: DateTime<Utc>,
) -> ApiResult<CustomerFacts> {
    let membership = customer_store::current_membership_of(db, customer_id, now).await?;
    let paid_orders = order::Entity::find()
        .filter(order::Column::CustomerId.eq(customer_id))
        .filter(order::Column::PaidAt.is_not_null())
        .count(db)
        .await?;
    Ok(CustomerFacts {
        customer_id,
        membership_level_ids: membership.map(|m| m.level_id).into_iter().collect(),
        first_order: paid_orders == 0,
    })
}

/// Active catalog and cart promotions, plus the coupon promotions `codes` unlock.
pub async fn candidates(
    db: &impl ConnectionTrait,
    codes: &[String],
    customer_id: Option<i64>,
    now: DateTime<Utc>,
) -> ApiResult<Resolved> {
    let mut resolved = Resolved::default();
    let automatic = promotion::Entity::find()
        .filter(promotion::Column::Active.eq(true))
        .filter(promotion::Column::Kind.is_in(["catalog", "cart"]))
        .filter(
            promotion::Column::EndsAt
                .is_null()
                .or(promotion::Column::EndsAt.gt(now)),
        )
        .all(db)
        .await?;
    for p in automatic {
        let uses_left = uses_left(db, &p, customer_id).await?;
        if let Some(candidate) = candidate(&p, None, uses_left) {
            resolved.candidates.push(candidate);
        }
    }
    if codes.is_empty() {
        return Ok(resolved);
    }
    let coupons: HashMap<String, coupon::Model> = coupon::Entity::find()
        .filter(coupon::Column::Code.is_in(codes.iter().cloned()))
        .all(db)
        .await?
        .into_iter()
        .map(|c| (c.code.clone(), c))
        .collect();
    for code in codes {
        let reject = |reason: &str| RejectedCode {
            code: code.clone(),
            reason: reason.to_owned(),
        };
        let Some(c) = coupons.get(code) else {
            resolved.rejected.push(reject("no such coupon"));
            continue;
        };
        if !c.active || c.expires_at.is_some_and(|at| at <= now) {
            resolved.rejected.push(reject("this coupon has expired"));
            continue;
        }
        if c.customer_id.is_some() && c.customer_id != customer_id {
            resolved
                .rejected
                .push(reject("this coupon belongs to another customer"));
            continue;
        }
        if c.max_uses.is_some_and(|max| c.used_count >= max) {
            resolved
                .rejected
                .push(reject("this coupon has been used up"));
            continue;
        }
        let Some(p) = promotion::Entity::find_by_id(c.promotion_id)
            .one(db)
            .await?
        else {
            resolved.rejected.push(reject("no such coupon"));
            continue;
        };
        if !p.active || p.kind != "coupon" {
            resolved.rejected.push(reject("this coupon is not active"));
            continue;
        }
        if resolved.coupons.contains_key(&p.id) {
            resolved
                .rejected
                .push(reject("another code of the same promotion is applied"));
            continue;
        }
        let uses_left = uses_left(db, &p, customer_id).await?;
        if let Some(candidate) = candidate(&p, Some(code.clone()), uses_left) {
            resolved.coupons.insert(p.id, c.id);
            resolved.candidates.push(candidate);
        }
    }
    Ok(resolved)
}

fn candidate(
    p: &promotion::Model,
    code: Option<String>,
    uses_left: Option<i64>,
) -> Option<Candidate> {
    let rule: PromotionRule = match serde_json::from_str(&p.rule) {
        Ok(rule) => rule,
        Err(err) => {
            tracing::error!(promotion = p.id, error = %err, "stored promotion rule is unreadable");
            return None;
        }
    };
    let kind = match p.kind.as_str() {
        "catalog" => PromotionKind::Catalog,
        "cart" => PromotionKind::Cart,
        _ => PromotionKind::Coupon,
    };
    let stacking = match p.stacking.as_str() {
        "exclusive" => Stacking::Exclusive,
        "discount_on_discount" => Stacking::DiscountOnDiscount,
        _ => Stacking::Stackable,
    };
    Some(Candidate {
        id: p.id,
        name: p.name.clone(),
        kind,
        rule,
        priority: p.priority,
        stacking,
        starts_at: p.starts_at,
        ends_at: p.ends_at,
        coupon_code: code,
        uses_left,
    })
}

/// The smaller of the total and the per-customer uses left; `None` when unlimited.
async fn uses_left(
    db: &impl ConnectionTrait,
    p: &promotion::Model,
    customer_id: Option<i64>,
) -> ApiResult<Option<i64>> {
    let total = p.usage_limit.map(|limit| Ord::max(limit - p.used_count, 0));
    let mine = match (p.usage_limit_per_customer, customer_id) {
        (Some(limit), Some(customer)) => {
            let used = redemption::Entity::find()
                .filter(redemption::Column::PromotionId.eq(p.id))
                .filter(redemption::Column::CustomerId.eq(customer))
                .filter(redemption::Column::ReleasedAt.is_null())
                .count(db)
                .await?;
            Some(Ord::max(limit - used as i64, 0))
        }
        _ => None,
    };
    Ok(match (total, mine) {
        (Some(a), Some(b)) => Some(Ord::min(a, b)),
        (a, b) => a.or(b),
    })
}

/// Takes one use of every promotion (and coupon) `priced` applied, for `order_id`. Runs in
/// the checkout's transaction; a limit reached by a concurrent order is a 409.
pub async fn redeem(
    db: &impl ConnectionTrait,
    priced: &PricedCart,
    resolved: &Resolved,
    order_id: i64,
    customer_id: Option<i64>,
) -> ApiResult<()> {
    let now = Utc::now();
    for applied in &priced.applied {
        let taken = promotion::Entity::update_many()
            .col_expr(
                promotion::Column::UsedCount,
                Expr::col(promotion::Column::UsedCount).add(1),
            )
            .filter(promotion::Column::Id.eq(applied.promotion_id))
            .filter(
                promotion::Column::UsageLimit
                    .is_null()
                    .or(Expr::col(promotion::Column::UsedCount)
                        .lt(Expr::col(promotion::Column::UsageLimit))),
            )
            .exec(db)
            .await?;
        if taken.rows_affected == 0 {
            return Err(ApiError::conflict(
                "promotion-used-up",
                format!("promotion {:?} has just been used up", applied.name),
            ));
        }
        let coupon_id = resolved.coupons.get(&applied.promotion_id).copied();
        if let Some(coupon_id) = coupon_id {
            let taken = coupon::Entity::update_many()
                .col_expr(
                    coupon::Column::UsedCount,
                    Expr::col(coupon::Column::UsedCount).add(1),
                )
                .filter(coupon::Column::Id.eq(coupon_id))
                .filter(coupon::Column::MaxUses.is_null().or(
                    Expr::col(coupon::Column::UsedCount).lt(Expr::col(coupon::Column::MaxUses)),
                ))
                .exec(db)
                .await?;
            if taken.rows_affected == 0 {
                return Err(ApiError::conflict(
                    "coupon-used-up",
                    format!(
                        "coupon {} has just been used up",
                        applied.coupon_code.as_deref().unwrap_or_default()
                    ),
                ));
            }
        }
        redemption::Entity::insert(redemption::ActiveModel {
            promotion_id: Set(applied.promotion_id),
            coupon_id: Set(coupon_id),
            order_id: Set(order_id),
            customer_id: Set(customer_id),
            saving: Set(applied.saving),
            released_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        })
        .exec(db)
        .await?;
    }
    Ok(())
}

/// Gives back the uses `order_id` took (it was cancelled). Idempotent: released
/// redemptions are skipped.
pub async fn release_for_order(db: &impl ConnectionTrait, order_id: i64) -> ApiResult<()> {
    let now = Utc::now();
    let taken = redemption::Entity::find()
        .filter(redemption::Column::OrderId.eq(order_id))
        .filter(redemption::Column::ReleasedAt.is_null())
        .all(db)
        .await?;
    for r in taken {
        redemption::Entity::update_many()
            .col_expr(redemption::Column::ReleasedAt, Expr::value(now))
            .filter(redemption::Column::Id.eq(r.id))
            .exec(db)
            .await?;
        promotion::Entity::update_many()
            .col_expr(
                promotion::Column::UsedCount,
                Expr::col(promotion::Column::UsedCount).sub(1),
            )
            .filter(promotion::Column::Id.eq(r.promotion_id))
            .filter(promotion::Column::UsedCount.gt(0))
            .exec(db)
            .await?;
        if let Some(coupon_id) = r.coupon_id {
            coupon::Entity::update_many()
                .col_expr(
                    coupon::Column::UsedCount,
                    Expr::col(coupon::Column::UsedCount).sub(1),
                )
                .filter(coupon::Column::Id.eq(coupon_id))
                .filter(coupon::Column::UsedCount.gt(0))
                .exec(db)
                .await?;
        }
    }
    Ok(())
}

/// Issues the single-use coupons a paid order earned (gift-coupon actions), bound to its
/// customer; returns their codes.
pub async fn issue_gift_coupons(
    db: &impl ConnectionTrait,
    promotion_ids: &[i64],
    customer_id: i64,
) -> ApiResult<Vec<String>> {
    let now = Utc::now();
    let mut codes = Vec::new();
    for &promotion_id in promotion_ids {
        let code = super::admin::random_code("GIFT-");
        coupon::Entity::insert(coupon::ActiveModel {
            promotion_id: Set(promotion_id),
            code: Set(code.clone()),
            batch: Set(Some("gift".into())),
            max_uses: Set(Some(1)),
            used_count: Set(0),
            customer_id: Set(Some(customer_id)),
            expires_at: Set(None),
            active: Set(true),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        })
        .exec(db)
        .await?;
        codes.push(code);
    }
    Ok(codes)
}
