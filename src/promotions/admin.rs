//! The promotions back office (R3.1): staff write promotions whose rules are data (the
//! engine's [`PromotionRule`] as JSON), issue coupon codes one by one or in batches, export
//! them, and see which orders used a promotion. Everything is checked here, before it is
//! stored, so the engine only ever prices sensible rules.

use std::collections::{HashMap, HashSet};

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use rand::Rng;
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Select, SqlErr, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::engine::{Action, PromotionKind, PromotionRule, Stacking};
use super::entity::{coupon, promotion, redemption};
use crate::app::AppState;
use crate::identity::service::{Actor, audit};
use crate::platform::concurrency::{Expected, update_versioned};
use crate::platform::crud::{delete_or_404, find_or_404};
use crate::platform::error::Validator;
use crate::platform::list::{ListParams, Page, SortFields, contains};
use crate::platform::{ApiError, ApiResult};

// ---------------------------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------------------------

/// How many coupons a coupon promotion has, and how many of them cannot be used again.
#[derive(Debug, Clone, Copy, Default, Serialize, ToSchema)]
pub struct CouponCounts {
    pub total: i64,
    /// Coupons whose `used_count` reached their `max_uses`.
    pub used_up: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PromotionView {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub kind: PromotionKind,
    pub rule: PromotionRule,
    /// Lower runs first.
    pub priority: i32,
    pub stacking: Stacking,
    pub starts_at: Option<DateTime<Utc>>,
    /// Exclusive: the promotion stops at this instant.
    pub ends_at: Option<DateTime<Utc>>,
    pub active: bool,
    pub usage_limit: Option<i64>,
    pub usage_limit_per_customer: Option<i64>,
    /// Redemptions by live orders.
    pub used_count: i64,
    /// Only for `coupon` promotions.
    pub coupons: Option<CouponCounts>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl PromotionView {
    fn new(p: promotion::Model, coupons: Option<CouponCounts>) -> ApiResult<Self> {
        Ok(Self {
            kind: parse_kind(&p.kind)?,
            stacking: parse_stacking(&p.stacking)?,
            rule: parse_rule(p.id, &p.rule)?,
            id: p.id,
            name: p.name,
            description: p.description,
            priority: p.priority,
            starts_at: p.starts_at,
            ends_at: p.ends_at,
            active: p.active,
            usage_limit: p.usage_limit,
            usage_limit_per_customer: p.usage_limit_per_customer,
            used_count: p.used_count,
            coupons,
            version: p.version,
            created_at: p.created_at,
            updated_at: p.updated_at,
        })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePromotion {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub kind: PromotionKind,
    pub rule: PromotionRule,
    /// Lower runs first; 100 when absent.
    #[serde(default = "default_priority")]
    pub priority: i32,
    pub stacking: Stacking,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    #[serde(default = "yes")]
    pub active: bool,
    /// Redemptions allowed in all; absent or `null` for no limit.
    pub usage_limit: Option<i64>,
    pub usage_limit_per_customer: Option<i64>,
}

fn default_priority() -> i32 {
    100
}

fn yes() -> bool {
    true
}

/// Absent fields stay; `null` clears a window end or a limit. The kind is fixed at creation:
/// coupons and gift-coupon references depend on it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePromotion {
    pub name: Option<String>,
    pub description: Option<String>,
    pub rule: Option<PromotionRule>,
    pub priority: Option<i32>,
    pub stacking: Option<Stacking>,
    #[serde(default, deserialize_with = "crate::platform::extract::double_option")]
    pub starts_at: Option<Option<DateTime<Utc>>>,
    #[serde(default, deserialize_with = "crate::platform::extract::double_option")]
    pub ends_at: Option<Option<DateTime<Utc>>>,
    pub active: Option<bool>,
    #[serde(default, deserialize_with = "crate::platform::extract::double_option")]
    pub usage_limit: Option<Option<i64>>,
    #[serde(default, deserialize_with = "crate::platform::extract::double_option")]
    pub usage_limit_per_customer: Option<Option<i64>>,
    pub version: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PromotionFilter {
    pub kind: Option<PromotionKind>,
    pub active: Option<bool>,
    /// `true`: active and inside its window now; `false`: everything else.
    pub live: Option<bool>,
    /// Part of the name, in any case.
    pub q: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CouponView {
    pub id: i64,
    pub promotion_id: i64,
    pub code: String,
    pub batch: Option<String>,
    /// `null`: any number of uses; 1: single use.
    pub max_uses: Option<i64>,
    pub used_count: i64,
    /// The one customer who may use it, if any.
    pub customer_id: Option<i64>,
    pub expires_at: Option<DateTime<Utc>>,
    pub active: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<coupon::Model> for CouponView {
    fn from(c: coupon::Model) -> Self {
        Self {
            id: c.id,
            promotion_id: c.promotion_id,
            code: c.code,
            batch: c.batch,
            max_uses: c.max_uses,
            used_count: c.used_count,
            customer_id: c.customer_id,
            expires_at: c.expires_at,
            active: c.active,
            version: c.version,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// Either one custom `code` or a `count` of random ones.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueCoupons {
    /// One custom code, e.g. `SUMMER10`: 3 to 32 letters, digits and dashes, any case (stored
    /// upper case).
    pub code: Option<String>,
    /// How many random codes to generate, 1 to 10000.
    pub count: Option<i64>,
    /// Uses per code; absent or `null` for any number, 1 for single use.
    pub max_uses: Option<i64>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Only with `code`: the one customer who may use it.
    pub customer_id: Option<i64>,
    /// A name to find the codes by later; generated for a `count` when absent.
    pub batch: Option<String>,
    /// Only with `count`: put before each random code, e.g. `SUMMER-`.
    pub prefix: Option<String>,
}

/// What was issued; the codes themselves only for up to 100 (export the rest as CSV).
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedCoupons {
    pub batch: Option<String>,
    pub count: i64,
    pub codes: Option<Vec<String>>,
    /// The coupon, when one custom code was issued.
    pub coupon: Option<CouponView>,
}

/// Absent fields stay; `expires_at: null` makes the coupon never expire.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCoupon {
    pub active: Option<bool>,
    #[serde(default, deserialize_with = "crate::platform::extract::double_option")]
    pub expires_at: Option<Option<DateTime<Utc>>>,
    pub version: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CouponFilter {
    pub batch: Option<String>,
    /// `true`: coupons that reached `max_uses`; `false`: those that can still be used.
    pub used_up: Option<bool>,
    pub active: Option<bool>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportFilter {
    /// Only this batch's codes.
    pub batch: Option<String>,
}

/// One order's use of a promotion.
#[derive(Debug, Serialize, ToSchema)]
pub struct RedemptionView {
    pub id: i64,
    pub order_id: i64,
    pub customer_id: Option<i64>,
    pub coupon_id: Option<i64>,
    pub coupon_code: Option<String>,
    /// What the promotion took off the order, in minor units.
    pub saving: i64,
    /// When a cancelled order gave the use back.
    pub released_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

// ---------------------------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------------------------

const PROMOTION: &str = "promotion";
const COUPON: &str = "coupon";
const NAME_MAX: usize = 200;
const DESCRIPTION_MAX: usize = 10_000;
const CODE_MIN: usize = 3;
const CODE_MAX: usize = 32;
/// Random characters of a generated code: 31^12 (about 2^59) codes, so guessing one is
/// hopeless.
const RANDOM_LEN: usize = 12;
const PREFIX_MAX: usize = CODE_MAX - RANDOM_LEN;
/// No 0/O, 1/I/L: codes are read off paper and typed in.
const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
const BATCH_MAX: i64 = 10_000;
/// Codes shown in the answer to a batch; larger batches are exported.
const SHOWN_MAX: usize = 100;
/// Rows per insert: well under both databases' bound-parameter limits.
const CHUNK: usize = 500;
/// Attempts at a chunk whose codes a concurrent writer took meanwhile.
const CHUNK_ATTEMPTS: usize = 5;

const PROMOTION_SORT: SortFields<promotion::Column> = SortFields(&[
    ("name", promotion::Column::Name),
    ("priority", promotion::Column::Priority),
    ("starts_at", promotion::Column::StartsAt),
    ("ends_at", promotion::Column::EndsAt),
    ("created_at", promotion::Column::CreatedAt),
]);

const COUPON_SORT: SortFields<coupon::Column> = SortFields(&[
    ("code", coupon::Column::Code),
    ("used_count", coupon::Column::UsedCount),
    ("expires_at", coupon::Column::ExpiresAt),
    ("created_at", coupon::Column::CreatedAt),
]);

const REDEMPTION_SORT: SortFields<redemption::Column> = SortFields(&[
    ("saving", redemption::Column::Saving),
    ("created_at", redemption::Column::CreatedAt),
]);

fn kind_text(kind: PromotionKind) -> &'static str {
    match kind {
        PromotionKind::Catalog => "catalog",
        PromotionKind::Cart => "cart",
        PromotionKind::Coupon => "coupon",
    }
}

fn stacking_text(stacking: Stacking) -> &'static str {
    match stacking {
        Stacking::Exclusive => "exclusive",
        Stacking::Stackable => "stackable",
        Stacking::DiscountOnDiscount => "discount_on_discount",
    }
}

fn parse_kind(text: &str) -> ApiResult<PromotionKind> {
    match text {
        "catalog" => Ok(PromotionKind::Catalog),
        "cart" => Ok(PromotionKind::Cart),
        "coupon" => Ok(PromotionKind::Coupon),
        other => Err(ApiError::internal(format!(
            "stored promotion kind {other:?}"
        ))),
    }
}

fn parse_stacking(text: &str) -> ApiResult<Stacking> {
    match text {
        "exclusive" => Ok(Stacking::Exclusive),
        "stackable" => Ok(Stacking::Stackable),
        "discount_on_discount" => Ok(Stacking::DiscountOnDiscount),
        other => Err(ApiError::internal(format!("stored stacking {other:?}"))),
    }
}

fn parse_rule(id: i64, text: &str) -> ApiResult<PromotionRule> {
    serde_json::from_str(text)
        .map_err(|e| ApiError::internal(format!("stored rule of promotion {id}: {e}")))
}

fn rule_text(rule: &PromotionRule) -> ApiResult<String> {
    serde_json::to_string(rule).map_err(ApiError::internal)
}

fn promotion_subject(id: i64) -> Option<String> {
    Some(format!("promotion:{id}"))
}

fn coupon_subject(id: i64) -> Option<String> {
    Some(format!("coupon:{id}"))
}

fn code_taken(code: &str) -> ApiError {
    ApiError::conflict(
        "code-taken",
        format!("the coupon code {code} already exists"),
    )
}

fn not_coupon_kind(id: i64) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "not-a-coupon-promotion",
        format!("promotion {id} is not of kind coupon, so it has no coupon codes"),
    )
}

fn check_description(v: &mut Validator, description: &str) {
    v.check(
        description.chars().count() <= DESCRIPTION_MAX,
        "description",
        "must be at most 10000 characters",
    );
}

fn check_limit(v: &mut Validator, limit: Option<i64>, field: &str) {
    v.check(limit.is_none_or(|n| n >= 1), field, "must be at least 1");
}

fn check_window(
    v: &mut Validator,
    starts_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
) {
    if let (Some(starts_at), Some(ends_at)) = (starts_at, ends_at) {
        v.check(starts_at < ends_at, "ends_at", "must be after starts_at");
    }
}

/// The engine's own checks, then what makes sense for the kind: member-only blocks belong to
/// promotions that apply without a code, cart-level rewards are not for catalog prices, and a
/// gift coupon must name a coupon promotion.
async fn check_rule(
    db: &impl ConnectionTrait,
    v: &mut Validator,
    kind: PromotionKind,
    rule: &PromotionRule,
) -> ApiResult<()> {
    if let Err(errors) = rule.validate() {
        for (field, message) in errors {
            v.check(false, &field, &message);
        }
    }
    for (i, action) in rule.actions.iter().enumerate() {
        let path = format!("rule.actions[{i}]");
        if matches!(action, Action::MemberOnly) {
            v.check(
                kind != PromotionKind::Coupon,
                &path,
                "member_only applies to catalog and cart promotions only",
            );
        }
        if matches!(
            action,
            Action::FreeShipping | Action::BonusPoints { .. } | Action::GiftCoupon { .. }
        ) {
            v.check(
                kind != PromotionKind::Catalog,
                &path,
                "a cart-level action; not for catalog promotions",
            );
        }
        if let Action::GiftCoupon { promotion_id } = action
            && *promotion_id >= 1
        {
            let target = promotion::Entity::find_by_id(*promotion_id).one(db).await?;
            v.check(
                target.is_some_and(|t| t.kind == kind_text(PromotionKind::Coupon)),
                &format!("{path}.promotion_id"),
                "must be the id of a coupon promotion",
            );
        }
    }
    Ok(())
}

/// Upper case, then 3 to 32 letters, digits and inner dashes: a code read aloud or typed.
fn normalize_code(code: &str) -> String {
    code.trim().to_ascii_uppercase()
}

fn code_ok(code: &str) -> bool {
    (CODE_MIN..=CODE_MAX).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
        && !code.starts_with('-')
        && !code.ends_with('-')
}

fn prefix_ok(prefix: &str) -> bool {
    (1..=PREFIX_MAX).contains(&prefix.len())
        && prefix
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
        && !prefix.starts_with('-')
}

/// A coupon code from an unambiguous alphabet after an optional prefix (batches, and the
/// gift coupons paid orders earn).
pub(crate) fn random_code(prefix: &str) -> String {
    let mut rng = rand::rng();
    let mut code = String::with_capacity(prefix.len() + RANDOM_LEN);
    code.push_str(prefix);
    for _ in 0..RANDOM_LEN {
        code.push(ALPHABET[rng.random_range(0..ALPHABET.len())] as char);
    }
    code
}

/// A batch name for a batch issued without one: when, plus a little randomness.
fn default_batch(now: DateTime<Utc>) -> String {
    let suffix = random_code("");
    format!("{}-{}", now.format("%Y%m%d-%H%M%S"), &suffix[..4])
}

// ---------------------------------------------------------------------------------------------
// Promotions
// ---------------------------------------------------------------------------------------------

/// Promotion pages for staff; by id unless `sort` says otherwise.
pub async fn list_promotions(
    state: &AppState,
    list: &ListParams,
    filter: &PromotionFilter,
) -> ApiResult<Page<PromotionView>> {
    let db = state.db.reader();
    let page = list
        .spec(&PROMOTION_SORT)?
        .fetch(
            db,
            promotion_query(filter, Utc::now()),
            promotion::Column::Id,
        )
        .await?;
    let coupon_ids: Vec<i64> = page
        .items
        .iter()
        .filter(|p| p.kind == kind_text(PromotionKind::Coupon))
        .map(|p| p.id)
        .collect();
    let counts = coupon_counts(db, &coupon_ids).await?;
    let Page {
        items,
        total,
        page,
        per_page,
    } = page;
    let items = items
        .into_iter()
        .map(|p| {
            let coupons = coupon_ids
                .contains(&p.id)
                .then(|| counts.get(&p.id).copied().unwrap_or_default());
            PromotionView::new(p, coupons)
        })
        .collect::<ApiResult<_>>()?;
    Ok(Page {
        items,
        total,
        page,
        per_page,
    })
}

pub async fn get_promotion(state: &AppState, id: i64) -> ApiResult<PromotionView> {
    promotion_view(state.db.reader(), id).await
}

async fn promotion_view(db: &impl ConnectionTrait, id: i64) -> ApiResult<PromotionView> {
    let p = find_or_404::<promotion::Entity>(db, id, PROMOTION).await?;
    let coupons = if p.kind == kind_text(PromotionKind::Coupon) {
        Some(
            coupon_counts(db, &[id])
                .await?
                .remove(&id)
                .unwrap_or_default(),
        )
    } else {
        None
    };
    PromotionView::new(p, coupons)
}

pub async fn create_promotion(
    state: &AppState,
    actor: &Actor<'_>,
    input: CreatePromotion,
) -> ApiResult<PromotionView> {
    let txn = state.db.begin().await?;
    let mut v = Validator::default();
    v.text(&input.name, "name", NAME_MAX);
    check_description(&mut v, &input.description);
    check_rule(&txn, &mut v, input.kind, &input.rule).await?;
    check_window(&mut v, input.starts_at, input.ends_at);
    check_limit(&mut v, input.usage_limit, "usage_limit");
    check_limit(
        &mut v,
        input.usage_limit_per_customer,
        "usage_limit_per_customer",
    );
    v.finish()?;

    let now = Utc::now();
    let created = promotion::Entity::insert(promotion::ActiveModel {
        version: Set(1),
        name: Set(input.name.trim().to_owned()),
        description: Set(input.description),
        kind: Set(kind_text(input.kind).to_owned()),
        rule: Set(rule_text(&input.rule)?),
        priority: Set(input.priority),
        stacking: Set(stacking_text(input.stacking).to_owned()),
        starts_at: Set(input.starts_at),
        ends_at: Set(input.ends_at),
        active: Set(input.active),
        usage_limit: Set(input.usage_limit),
        usage_limit_per_customer: Set(input.usage_limit_per_customer),
        used_count: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec_with_returning(&txn)
    .await?;
    audit(
        &txn,
        actor,
        "promotion_created",
        promotion_subject(created.id),
        json!({ "name": created.name, "kind": created.kind }),
    )
    .await?;
    let view = promotion_view(&txn, created.id).await?;
    txn.commit().await?;
    Ok(view)
}

pub async fn update_promotion(
    state: &AppState,
    actor: &Actor<'_>,
    id: i64,
    expected: Expected,
    input: UpdatePromotion,
) -> ApiResult<PromotionView> {
    let txn = state.db.begin().await?;
    let current = find_or_404::<promotion::Entity>(&txn, id, PROMOTION).await?;
    let kind = parse_kind(&current.kind)?;
    let mut v = Validator::default();
    v.text_if(input.name.as_ref(), "name", NAME_MAX);
    if let Some(description) = &input.description {
        check_description(&mut v, description);
    }
    if let Some(rule) = &input.rule {
        check_rule(&txn, &mut v, kind, rule).await?;
    }
    check_window(
        &mut v,
        input.starts_at.unwrap_or(current.starts_at),
        input.ends_at.unwrap_or(current.ends_at),
    );
    if let Some(limit) = input.usage_limit {
        check_limit(&mut v, limit, "usage_limit");
    }
    if let Some(limit) = input.usage_limit_per_customer {
        check_limit(&mut v, limit, "usage_limit_per_customer");
    }
    v.finish()?;

    let mut changes = promotion::ActiveModel {
        updated_at: Set(Utc::now()),
        ..Default::default()
    };
    if let Some(name) = &input.name {
        changes.name = Set(name.trim().to_owned());
    }
    if let Some(description) = input.description {
        changes.description = Set(description);
    }
    if let Some(rule) = &input.rule {
        changes.rule = Set(rule_text(rule)?);
    }
    if let Some(priority) = input.priority {
        changes.priority = Set(priority);
    }
    if let Some(stacking) = input.stacking {
        changes.stacking = Set(stacking_text(stacking).to_owned());
    }
    if let Some(starts_at) = input.starts_at {
        changes.starts_at = Set(starts_at);
    }
    if let Some(ends_at) = input.ends_at {
        changes.ends_at = Set(ends_at);
    }
    if let Some(active) = input.active {
        changes.active = Set(active);
    }
    if let Some(limit) = input.usage_limit {
        changes.usage_limit = Set(limit);
    }
    if let Some(limit) = input.usage_limit_per_customer {
        changes.usage_limit_per_customer = Set(limit);
    }
    update_versioned(
        &txn,
        changes,
        [promotion::Column::Id, promotion::Column::Version],
        id,
        expected,
        PROMOTION,
    )
    .await?;
    let view = promotion_view(&txn, id).await?;
    audit(
        &txn,
        actor,
        "promotion_updated",
        promotion_subject(id),
        json!({ "name": view.name, "active": view.active, "rule_changed": input.rule.is_some() }),
    )
    .await?;
    txn.commit().await?;
    Ok(view)
}

/// Deletes a promotion no order used (its coupons go with it). One that orders used stays for
/// their record: deactivate it instead.
pub async fn delete_promotion(state: &AppState, actor: &Actor<'_>, id: i64) -> ApiResult<()> {
    let txn = state.db.begin().await?;
    let current = find_or_404::<promotion::Entity>(&txn, id, PROMOTION).await?;
    let redemptions = redemption::Entity::find()
        .filter(redemption::Column::PromotionId.eq(id))
        .count(&txn)
        .await?;
    if redemptions > 0 {
        return Err(ApiError::conflict(
            "promotion-redeemed",
            format!("{redemptions} order(s) used promotion {id}; deactivate it instead"),
        ));
    }
    let gifting = promotions_gifting(&txn, id).await?;
    if !gifting.is_empty() {
        return Err(ApiError::conflict(
            "promotion-gifted",
            format!("promotion(s) {gifting:?} give coupons of promotion {id}; change them first"),
        ));
    }
    delete_or_404::<promotion::Entity>(&txn, id, PROMOTION).await?;
    audit(
        &txn,
        actor,
        "promotion_deleted",
        promotion_subject(id),
        json!({ "name": current.name, "kind": current.kind }),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// The orders that used the promotion, released uses included.
pub async fn list_redemptions(
    state: &AppState,
    id: i64,
    list: &ListParams,
) -> ApiResult<Page<RedemptionView>> {
    let db = state.db.reader();
    find_or_404::<promotion::Entity>(db, id, PROMOTION).await?;
    let page = list
        .spec(&REDEMPTION_SORT)?
        .fetch(
            db,
            redemption::Entity::find().filter(redemption::Column::PromotionId.eq(id)),
            redemption::Column::Id,
        )
        .await?;
    let coupon_ids: Vec<i64> = page.items.iter().filter_map(|r| r.coupon_id).collect();
    let codes = coupon_codes(db, &coupon_ids).await?;
    Ok(page.map(|r| RedemptionView {
        id: r.id,
        order_id: r.order_id,
        customer_id: r.customer_id,
        coupon_code: r.coupon_id.and_then(|c| codes.get(&c).cloned()),
        coupon_id: r.coupon_id,
        saving: r.saving,
        released_at: r.released_at,
        created_at: r.created_at,
    }))
}

// ---------------------------------------------------------------------------------------------
// Coupons
// ---------------------------------------------------------------------------------------------

/// The promotion, which must exist and be of kind coupon.
async fn coupon_promotion(db: &impl ConnectionTrait, id: i64) -> ApiResult<promotion::Model> {
    let p = find_or_404::<promotion::Entity>(db, id, PROMOTION).await?;
    if p.kind != kind_text(PromotionKind::Coupon) {
        return Err(not_coupon_kind(id));
    }
    Ok(p)
}

pub async fn list_coupons(
    state: &AppState,
    promotion_id: i64,
    list: &ListParams,
    filter: &CouponFilter,
) -> ApiResult<Page<CouponView>> {
    let db = state.db.reader();
    coupon_promotion(db, promotion_id).await?;
    let page = list
        .spec(&COUPON_SORT)?
        .fetch(db, coupon_query(promotion_id, filter), coupon::Column::Id)
        .await?;
    Ok(page.map(CouponView::from))
}

/// Issues one custom code or a batch of random ones, all or nothing.
pub async fn issue_coupons(
    state: &AppState,
    actor: &Actor<'_>,
    promotion_id: i64,
    input: IssueCoupons,
) -> ApiResult<IssuedCoupons> {
    let now = Utc::now();
    let code = input.code.as_deref().map(normalize_code);
    let prefix = input.prefix.as_deref().map(normalize_code);
    let mut v = Validator::default();
    match (&code, input.count) {
        (Some(_), Some(_)) | (None, None) => {
            v.check(false, "code", "send either one code or a count");
        }
        (Some(code), None) => {
            v.check(
                code_ok(code),
                "code",
                "must be 3 to 32 letters, digits and inner dashes",
            );
            v.check(
                prefix.is_none(),
                "prefix",
                "only for a count of random codes",
            );
        }
        (None, Some(count)) => {
            v.check(
                (1..=BATCH_MAX).contains(&count),
                "count",
                "must be between 1 and 10000",
            );
            v.check(
                input.customer_id.is_none(),
                "customer_id",
                "only for one custom code",
            );
            if let Some(prefix) = &prefix {
                v.check(
                    prefix_ok(prefix),
                    "prefix",
                    "must be 1 to 20 letters, digits and dashes, not starting with a dash",
                );
            }
        }
    }
    check_limit(&mut v, input.max_uses, "max_uses");
    v.check(
        input.expires_at.is_none_or(|at| at > now),
        "expires_at",
        "must be in the future",
    );
    if let Some(batch) = &input.batch {
        v.code(batch, "batch");
    }
    v.finish()?;
    if let Some(customer_id) = input.customer_id {
        check_customer(state, customer_id).await?;
    }

    let txn = state.db.begin().await?;
    coupon_promotion(&txn, promotion_id).await?;
    let template = coupon::ActiveModel {
        version: Set(1),
        promotion_id: Set(promotion_id),
        max_uses: Set(input.max_uses),
        used_count: Set(0),
        customer_id: Set(input.customer_id),
        expires_at: Set(input.expires_at),
        active: Set(true),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    };
    let issued = if let Some(code) = code {
        if find_coupon_by_code(&txn, &code).await?.is_some() {
            return Err(code_taken(&code));
        }
        let created = coupon::Entity::insert(coupon::ActiveModel {
            code: Set(code.clone()),
            batch: Set(input.batch.clone()),
            ..template
        })
        .exec_with_returning(&txn)
        .await
        .map_err(|e| ApiError::unique_as(e, code_taken(&code)))?;
        IssuedCoupons {
            batch: created.batch.clone(),
            count: 1,
            codes: Some(vec![created.code.clone()]),
            coupon: Some(created.into()),
        }
    } else {
        let count = input.count.unwrap_or_default() as usize;
        let batch = input.batch.clone().unwrap_or_else(|| default_batch(now));
        let codes = insert_batch(
            &txn,
            &template,
            &batch,
            prefix.as_deref().unwrap_or_default(),
            count,
        )
        .await?;
        IssuedCoupons {
            batch: Some(batch),
            count: codes.len() as i64,
            codes: (codes.len() <= SHOWN_MAX).then_some(codes),
            coupon: None,
        }
    };
    audit(
        &txn,
        actor,
        "coupons_issued",
        promotion_subject(promotion_id),
        json!({ "batch": issued.batch, "count": issued.count }),
    )
    .await?;
    txn.commit().await?;
    Ok(issued)
}

/// A coupon for one customer must name one that exists (deleted ones included: the
/// customers domain decides what they may still do).
async fn check_customer(state: &AppState, customer_id: i64) -> ApiResult<()> {
    match crate::customers::service::admin::get_customer(state, customer_id).await {
        Ok(_) => Ok(()),
        Err(e) if e.status() == StatusCode::NOT_FOUND => {
            Err(ApiError::invalid("customer_id", "no such customer"))
        }
        Err(e) => Err(e),
    }
}

/// Inserts `count` fresh random codes in chunks. Codes that already exist are drawn again
/// before each insert; should a concurrent writer take one in between, the chunk is rolled
/// back to its savepoint and drawn again.
async fn insert_batch(
    txn: &DatabaseTransaction,
    template: &coupon::ActiveModel,
    batch: &str,
    prefix: &str,
    count: usize,
) -> ApiResult<Vec<String>> {
    let mut drawn: HashSet<String> = HashSet::with_capacity(count);
    let mut all = Vec::with_capacity(count);
    while all.len() < count {
        let size = CHUNK.min(count - all.len());
        let mut chunk: Vec<String> = Vec::with_capacity(size);
        while chunk.len() < size {
            let code = random_code(prefix);
            if drawn.insert(code.clone()) {
                chunk.push(code);
            }
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            for taken in existing_codes(txn, &chunk).await? {
                let slot = chunk.iter().position(|c| *c == taken);
                if let Some(slot) = slot {
                    chunk[slot] = loop {
                        let code = random_code(prefix);
                        if drawn.insert(code.clone()) {
                            break code;
                        }
                    };
                }
            }
            let rows = chunk.iter().map(|code| coupon::ActiveModel {
                code: Set(code.clone()),
                batch: Set(Some(batch.to_owned())),
                ..template.clone()
            });
            let savepoint = txn.begin().await?;
            match coupon::Entity::insert_many(rows)
                .exec_without_returning(&savepoint)
                .await
            {
                Ok(_) => {
                    savepoint.commit().await?;
                    break;
                }
                Err(e)
                    if attempt < CHUNK_ATTEMPTS
                        && matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) =>
                {
                    savepoint.rollback().await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        all.append(&mut chunk);
    }
    Ok(all)
}

pub async fn update_coupon(
    state: &AppState,
    actor: &Actor<'_>,
    id: i64,
    expected: Expected,
    input: UpdateCoupon,
) -> ApiResult<CouponView> {
    let txn = state.db.begin().await?;
    let mut changes = coupon::ActiveModel {
        updated_at: Set(Utc::now()),
        ..Default::default()
    };
    if let Some(active) = input.active {
        changes.active = Set(active);
    }
    if let Some(expires_at) = input.expires_at {
        changes.expires_at = Set(expires_at);
    }
    update_versioned(
        &txn,
        changes,
        [coupon::Column::Id, coupon::Column::Version],
        id,
        expected,
        COUPON,
    )
    .await?;
    let updated = find_or_404::<coupon::Entity>(&txn, id, COUPON).await?;
    audit(
        &txn,
        actor,
        "coupon_updated",
        coupon_subject(id),
        json!({ "code": updated.code, "active": updated.active, "expires_at": updated.expires_at }),
    )
    .await?;
    txn.commit().await?;
    Ok(updated.into())
}

/// Deletes a coupon no order used; a used one stays for the orders' record (deactivate it).
pub async fn delete_coupon(state: &AppState, actor: &Actor<'_>, id: i64) -> ApiResult<()> {
    let txn = state.db.begin().await?;
    let current = find_or_404::<coupon::Entity>(&txn, id, COUPON).await?;
    let redeemed = redemption::Entity::find()
        .filter(redemption::Column::CouponId.eq(id))
        .count(&txn)
        .await?;
    if current.used_count > 0 || redeemed > 0 {
        return Err(ApiError::conflict(
            "coupon-used",
            format!("coupon {} was used; deactivate it instead", current.code),
        ));
    }
    delete_or_404::<coupon::Entity>(&txn, id, COUPON).await?;
    audit(
        &txn,
        actor,
        "coupon_deleted",
        coupon_subject(id),
        json!({ "code": current.code, "promotion_id": current.promotion_id }),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// The promotion's codes as CSV (RFC 4180), for printing or mailing.
pub async fn export_coupons(
    state: &AppState,
    promotion_id: i64,
    filter: &ExportFilter,
) -> ApiResult<String> {
    let db = state.db.reader();
    coupon_promotion(db, promotion_id).await?;
    let mut query = coupon::Entity::find().filter(coupon::Column::PromotionId.eq(promotion_id));
    if let Some(batch) = &filter.batch {
        query = query.filter(coupon::Column::Batch.eq(batch.as_str()));
    }
    let coupons = query.order_by_asc(coupon::Column::Id).all(db).await?;
    let mut out = String::with_capacity(64 * (coupons.len() + 1));
    csv_row(
        &mut out,
        &[
            "code",
            "batch",
            "max_uses",
            "used_count",
            "customer_id",
            "expires_at",
            "active",
        ],
    );
    for c in coupons {
        csv_row(
            &mut out,
            &[
                &c.code,
                c.batch.as_deref().unwrap_or_default(),
                &c.max_uses.map(|n| n.to_string()).unwrap_or_default(),
                &c.used_count.to_string(),
                &c.customer_id.map(|n| n.to_string()).unwrap_or_default(),
                &c.expires_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                if c.active { "true" } else { "false" },
            ],
        );
    }
    Ok(out)
}

/// One CSV record: fields with a comma, quote or line break are quoted, quotes doubled.
fn csv_row(out: &mut String, fields: &[&str]) {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if field.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&field.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(field);
        }
    }
    out.push_str("\r\n");
}

// ---------------------------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------------------------

/// Whether a promotion runs now: active, and `now` inside `[starts_at, ends_at)`.
fn live_condition(now: DateTime<Utc>) -> Condition {
    Condition::all()
        .add(promotion::Column::Active.eq(true))
        .add(
            Condition::any()
                .add(promotion::Column::StartsAt.is_null())
                .add(promotion::Column::StartsAt.lte(now)),
        )
        .add(
            Condition::any()
                .add(promotion::Column::EndsAt.is_null())
                .add(promotion::Column::EndsAt.gt(now)),
        )
}

fn promotion_query(filter: &PromotionFilter, now: DateTime<Utc>) -> Select<promotion::Entity> {
    let mut query = promotion::Entity::find();
    if let Some(kind) = filter.kind {
        query = query.filter(promotion::Column::Kind.eq(kind_text(kind)));
    }
    if let Some(active) = filter.active {
        query = query.filter(promotion::Column::Active.eq(active));
    }
    match filter.live {
        Some(true) => query = query.filter(live_condition(now)),
        Some(false) => query = query.filter(live_condition(now).not()),
        None => {}
    }
    if let Some(q) = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        query = query.filter(
            Expr::expr(Func::lower(Expr::col((
                promotion::Entity,
                promotion::Column::Name,
            ))))
            .like(contains(q)),
        );
    }
    query
}

/// Coupons that reached their `max_uses`.
fn used_up_condition() -> Condition {
    Condition::all()
        .add(coupon::Column::MaxUses.is_not_null())
        .add(Expr::col(coupon::Column::UsedCount).gte(Expr::col(coupon::Column::MaxUses)))
}

fn coupon_query(promotion_id: i64, filter: &CouponFilter) -> Select<coupon::Entity> {
    let mut query = coupon::Entity::find().filter(coupon::Column::PromotionId.eq(promotion_id));
    if let Some(batch) = &filter.batch {
        query = query.filter(coupon::Column::Batch.eq(batch.as_str()));
    }
    if let Some(active) = filter.active {
        query = query.filter(coupon::Column::Active.eq(active));
    }
    match filter.used_up {
        Some(true) => query = query.filter(used_up_condition()),
        Some(false) => query = query.filter(used_up_condition().not()),
        None => {}
    }
    query
}

/// Coupon counts of the given promotions, in one grouped query.
async fn coupon_counts(
    db: &impl ConnectionTrait,
    promotion_ids: &[i64],
) -> Result<HashMap<i64, CouponCounts>, DbErr> {
    if promotion_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let used_up = Expr::case(used_up_condition(), 1).finally(0);
    let rows: Vec<(i64, i64, Option<i64>)> = coupon::Entity::find()
        .select_only()
        .column(coupon::Column::PromotionId)
        .column_as(Expr::col(coupon::Column::Id).count(), "total")
        .column_as(Expr::expr(Func::sum(used_up)), "used_up")
        .filter(coupon::Column::PromotionId.is_in(promotion_ids.iter().copied()))
        .group_by(coupon::Column::PromotionId)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, total, used_up)| {
            (
                id,
                CouponCounts {
                    total,
                    used_up: used_up.unwrap_or_default(),
                },
            )
        })
        .collect())
}

async fn coupon_codes(
    db: &impl ConnectionTrait,
    ids: &[i64],
) -> Result<HashMap<i64, String>, DbErr> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(i64, String)> = coupon::Entity::find()
        .select_only()
        .column(coupon::Column::Id)
        .column(coupon::Column::Code)
        .filter(coupon::Column::Id.is_in(ids.iter().copied()))
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows.into_iter().collect())
}

async fn find_coupon_by_code(
    db: &impl ConnectionTrait,
    code: &str,
) -> Result<Option<coupon::Model>, DbErr> {
    coupon::Entity::find()
        .filter(coupon::Column::Code.eq(code))
        .one(db)
        .await
}

/// Which of `codes` are already taken.
async fn existing_codes(db: &impl ConnectionTrait, codes: &[String]) -> Result<Vec<String>, DbErr> {
    coupon::Entity::find()
        .select_only()
        .column(coupon::Column::Code)
        .filter(coupon::Column::Code.is_in(codes.iter().map(String::as_str)))
        .into_tuple()
        .all(db)
        .await
}

/// Ids of promotions whose rule gives a coupon of promotion `id`. Rules are stored as
/// serde_json writes them, so the action's text is exact.
async fn promotions_gifting(db: &impl ConnectionTrait, id: i64) -> Result<Vec<i64>, DbErr> {
    let needle = serde_json::to_string(&Action::GiftCoupon { promotion_id: id })
        .map_err(|e| DbErr::Custom(e.to_string()))?;
    promotion::Entity::find()
        .select_only()
        .column(promotion::Column::Id)
        .filter(Expr::col(promotion::Column::Rule).like(contains(&needle)))
        .filter(promotion::Column::Id.ne(id))
        .into_tuple()
        .all(db)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_codes_use_the_unambiguous_alphabet() {
        let mut seen = HashSet::new();
        for _ in 0..1000 {
            let code = random_code("SUMMER-");
            assert_eq!(code.len(), 7 + RANDOM_LEN);
            let random = code.strip_prefix("SUMMER-").unwrap();
            assert!(random.bytes().all(|b| ALPHABET.contains(&b)), "{code}");
            assert!(!random.contains(['0', 'O', '1', 'I', 'L']));
            assert!(code_ok(&code));
            seen.insert(code);
        }
        assert_eq!(seen.len(), 1000);
    }

    #[test]
    fn custom_codes_are_normalized_and_checked() {
        assert_eq!(normalize_code("  summer10 "), "SUMMER10");
        assert!(code_ok("SUMMER-10"));
        for bad in [
            "AB",
            "-ABC",
            "ABC-",
            "SUM MER",
            "SUMMER_10",
            "ÉTÉ10",
            &"A".repeat(33),
        ] {
            assert!(!code_ok(bad), "{bad:?} was accepted");
        }
        assert!(prefix_ok("SUMMER-"));
        assert!(!prefix_ok(&"A".repeat(PREFIX_MAX + 1)));
        assert!(!prefix_ok("-X"));
    }

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        let mut out = String::new();
        csv_row(&mut out, &["PLAIN", "a,b", "say \"hi\"", "two\nlines", ""]);
        assert_eq!(out, "PLAIN,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\r\n");
    }

    #[test]
    fn kinds_and_stackings_round_trip_through_their_column_text() {
        for kind in [
            PromotionKind::Catalog,
            PromotionKind::Cart,
            PromotionKind::Coupon,
        ] {
            assert_eq!(parse_kind(kind_text(kind)).unwrap(), kind);
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                json!(kind_text(kind)),
                "the column holds the API's spelling"
            );
        }
        for stacking in [
            Stacking::Exclusive,
            Stacking::Stackable,
            Stacking::DiscountOnDiscount,
        ] {
            assert_eq!(parse_stacking(stacking_text(stacking)).unwrap(), stacking);
            assert_eq!(
                serde_json::to_value(stacking).unwrap(),
                json!(stacking_text(stacking))
            );
        }
    }
}
