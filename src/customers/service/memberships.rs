//! Membership levels and memberships: at most one membership is open per customer; a
//! grant ends the open one (`changed`), staff revoke (`revoked`), and the
//! `expire_memberships` job ends those past their expiry (`expired`) and tells the customer.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::{NotSet, Set};
use sea_orm::ConnectionTrait;
use serde_json::json;

use super::live_customer;
use crate::app::AppState;
use crate::customers::entity::{membership, membership_level};
use crate::customers::model::{
    CreateLevel, GrantMembership, LevelBenefits, LevelView, MembershipView, MyMembership,
    UpdateLevel,
};
use crate::customers::store;
use crate::identity::service::{Actor, audit};
use crate::notify::email::{parse_address, queue_email};
use crate::platform::concurrency::{Expected, update_versioned};
use crate::platform::error::Validator;
use crate::platform::list::{ListParams, Page, SortFields};
use crate::platform::{ApiError, ApiResult};

const SORT: SortFields<membership_level::Column> = SortFields(&[
    ("name", membership_level::Column::Name),
    (
        "discount_percent",
        membership_level::Column::DiscountPercent,
    ),
    ("created_at", membership_level::Column::CreatedAt),
    ("id", membership_level::Column::Id),
]);

pub const END_CHANGED: &str = "changed";
pub const END_REVOKED: &str = "revoked";
pub const END_EXPIRED: &str = "expired";
pub const END_ACCOUNT_DELETED: &str = "account_deleted";

/// Ends every open membership of a customer whose account is being deleted, in the
/// caller's transaction; returns the ids ended.
pub async fn end_for_deleted_account(
    db: &impl ConnectionTrait,
    customer_id: i64,
    now: DateTime<Utc>,
) -> ApiResult<Vec<i64>> {
    let mut ended = Vec::new();
    for open in store::open_memberships_of(db, customer_id).await? {
        if store::end_membership(db, open.id, now, END_ACCOUNT_DELETED).await? {
            ended.push(open.id);
        }
    }
    Ok(ended)
}

fn level_not_found(id: i64) -> ApiError {
    ApiError::not_found("membership level", id)
}

fn level_exists(name: &str) -> ApiError {
    ApiError::conflict(
        "membership-level-exists",
        format!("a membership level named {name:?} already exists"),
    )
}

fn check_level(
    v: &mut Validator,
    name: Option<&String>,
    description: Option<&String>,
    discount: Option<i64>,
) {
    v.text_if(name, "name", 100);
    if let Some(description) = description {
        v.check(
            description.chars().count() <= 1000,
            "description",
            "must be at most 1000 characters",
        );
    }
    if let Some(discount) = discount {
        v.check(
            (0..=100).contains(&discount),
            "discount_percent",
            "must be a whole number from 0 to 100",
        );
    }
}

/// Discounts are checked to be 0..=100 first, so the conversion cannot fail.
fn percent(discount: i64) -> i32 {
    i32::try_from(discount.clamp(0, 100)).unwrap_or(0)
}

pub async fn list_levels(state: &AppState, list: &ListParams) -> ApiResult<Page<LevelView>> {
    let page = list
        .spec(&SORT)?
        .fetch(
            state.db.reader(),
            store::all_levels(),
            membership_level::Column::Id,
        )
        .await?;
    Ok(page.map(LevelView::from))
}

pub async fn get_level(state: &AppState, id: i64) -> ApiResult<LevelView> {
    store::find_level(state.db.reader(), id)
        .await?
        .map(LevelView::from)
        .ok_or_else(|| level_not_found(id))
}

pub async fn create_level(
    state: &AppState,
    actor: &Actor<'_>,
    input: CreateLevel,
) -> ApiResult<LevelView> {
    let mut v = Validator::default();
    check_level(
        &mut v,
        Some(&input.name),
        Some(&input.description),
        Some(input.discount_percent),
    );
    v.finish()?;
    let name = input.name.trim();
    let txn = state.db.begin().await?;
    if store::level_name_taken(&txn, name, None).await? {
        return Err(level_exists(name));
    }
    let level = store::insert_level(
        &txn,
        name,
        input.description.trim(),
        percent(input.discount_percent),
        input.free_shipping,
    )
    .await
    .map_err(|e| ApiError::unique_as(e, level_exists(name)))?;
    audit(
        &txn,
        actor,
        "membership_level_created",
        Some(format!("membership_level:{}", level.id)),
        json!({ "name": level.name, "discount_percent": level.discount_percent,
            "free_shipping": level.free_shipping }),
    )
    .await?;
    txn.commit().await?;
    Ok(level.into())
}

pub async fn update_level(
    state: &AppState,
    actor: &Actor<'_>,
    id: i64,
    expected: Expected,
    input: UpdateLevel,
) -> ApiResult<LevelView> {
    let mut v = Validator::default();
    check_level(
        &mut v,
        input.name.as_ref(),
        input.description.as_ref(),
        input.discount_percent,
    );
    v.finish()?;
    let name = input.name.as_deref().map(str::trim);
    let txn = state.db.begin().await?;
    store::find_level(&txn, id)
        .await?
        .ok_or_else(|| level_not_found(id))?;
    if let Some(name) = name
        && store::level_name_taken(&txn, name, Some(id)).await?
    {
        return Err(level_exists(name));
    }
    let changes = membership_level::ActiveModel {
        name: name.map_or(NotSet, |n| Set(n.to_owned())),
        description: input
            .description
            .as_deref()
            .map_or(NotSet, |d| Set(d.trim().to_owned())),
        discount_percent: input.discount_percent.map_or(NotSet, |d| Set(percent(d))),
        free_shipping: input.free_shipping.map_or(NotSet, Set),
        updated_at: Set(Utc::now()),
        ..Default::default()
    };
    update_versioned(
        &txn,
        changes,
        [
            membership_level::Column::Id,
            membership_level::Column::Version,
        ],
        id,
        expected,
        "membership level",
    )
    .await
    .map_err(|e| match name {
        Some(name) if e.problem().code == "already-exists" => level_exists(name),
        _ => e,
    })?;
    let level = store::find_level(&txn, id)
        .await?
        .ok_or_else(|| level_not_found(id))?;
    audit(
        &txn,
        actor,
        "membership_level_updated",
        Some(format!("membership_level:{id}")),
        json!({ "name": level.name, "discount_percent": level.discount_percent,
            "free_shipping": level.free_shipping }),
    )
    .await?;
    txn.commit().await?;
    Ok(level.into())
}

/// A level anyone holds or held is kept (409): the history refers to it.
pub async fn delete_level(state: &AppState, actor: &Actor<'_>, id: i64) -> ApiResult<()> {
    let txn = state.db.begin().await?;
    let level = store::find_level(&txn, id)
        .await?
        .ok_or_else(|| level_not_found(id))?;
    let held = store::count_memberships_at_level(&txn, id).await?;
    if held > 0 {
        return Err(ApiError::conflict(
            "membership-level-in-use",
            format!("{held} memberships, current or past, are at this level"),
        ));
    }
    store::delete_level(&txn, id).await?;
    audit(
        &txn,
        actor,
        "membership_level_deleted",
        Some(format!("membership_level:{id}")),
        json!({ "name": level.name }),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

async fn views(
    db: &impl ConnectionTrait,
    memberships: Vec<membership::Model>,
) -> ApiResult<Vec<MembershipView>> {
    let ids: Vec<i64> = memberships.iter().map(|m| m.level_id).collect();
    let levels: HashMap<i64, membership_level::Model> = store::levels_by_ids(db, &ids)
        .await?
        .into_iter()
        .map(|l| (l.id, l))
        .collect();
    memberships
        .into_iter()
        .map(|m| {
            let level = levels
                .get(&m.level_id)
                .cloned()
                .ok_or_else(|| ApiError::internal(format!("level {} is missing", m.level_id)))?;
            Ok(MembershipView::new(m, level))
        })
        .collect()
}

/// The customer's membership in force now, with its level.
pub async fn current_view(
    db: &impl ConnectionTrait,
    customer_id: i64,
) -> ApiResult<Option<MembershipView>> {
    let current = store::current_membership_of(db, customer_id, Utc::now()).await?;
    Ok(views(db, current.into_iter().collect()).await?.pop())
}

/// Every membership the customer held, newest first.
pub async fn history(state: &AppState, customer_id: i64) -> ApiResult<Vec<MembershipView>> {
    let db = state.db.reader();
    store::find_customer(db, customer_id)
        .await?
        .ok_or_else(|| ApiError::not_found("customer", customer_id))?;
    views(db, store::membership_history(db, customer_id).await?).await
}

/// Ends the open membership (`changed`) and starts one at `level_id`, in one transaction.
pub async fn grant(
    state: &AppState,
    actor: &Actor<'_>,
    customer_id: i64,
    input: GrantMembership,
) -> ApiResult<MembershipView> {
    let now = Utc::now();
    if input.expires_at.is_some_and(|at| at <= now) {
        return Err(ApiError::invalid("expires_at", "must be in the future"));
    }
    let staff_id = actor.principal.map(|p| p.staff_id);
    let txn = state.db.begin().await?;
    live_customer(&txn, customer_id).await?;
    let level = store::find_level(&txn, input.level_id)
        .await?
        .ok_or_else(|| {
            ApiError::invalid(
                "level_id",
                format!("membership level {} does not exist", input.level_id),
            )
        })?;
    let mut replaced = Vec::new();
    for open in store::open_memberships_of(&txn, customer_id).await? {
        // One whose expiry passed before the job reached it expired; it was not changed.
        let reason = match open.expires_at {
            Some(at) if at <= now => END_EXPIRED,
            _ => END_CHANGED,
        };
        if store::end_membership(&txn, open.id, now, reason).await? {
            replaced.push(open.id);
        }
    }
    let membership =
        store::insert_membership(&txn, customer_id, level.id, input.expires_at, staff_id, now)
            .await?;
    audit(
        &txn,
        actor,
        "membership_granted",
        Some(format!("customer:{customer_id}")),
        json!({ "membership_id": membership.id, "level_id": level.id, "level": level.name,
            "expires_at": input.expires_at, "replaced": replaced }),
    )
    .await?;
    txn.commit().await?;
    Ok(MembershipView::new(membership, level))
}

/// Ends the customer's open membership now; 404 when there is none.
pub async fn revoke(state: &AppState, actor: &Actor<'_>, customer_id: i64) -> ApiResult<()> {
    let now = Utc::now();
    let txn = state.db.begin().await?;
    store::lock_customer(&txn, customer_id)
        .await?
        .ok_or_else(|| ApiError::not_found("customer", customer_id))?;
    let mut revoked = Vec::new();
    for open in store::open_memberships_of(&txn, customer_id).await? {
        if store::end_membership(&txn, open.id, now, END_REVOKED).await? {
            revoked.push(open.id);
        }
    }
    if revoked.is_empty() {
        return Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "no-membership",
            format!("customer {customer_id} has no membership"),
        ));
    }
    audit(
        &txn,
        actor,
        "membership_revoked",
        Some(format!("customer:{customer_id}")),
        json!({ "membership_ids": revoked }),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// The signed-in customer's membership; `None` when they hold none.
pub async fn my_membership(state: &AppState, customer_id: i64) -> ApiResult<Option<MyMembership>> {
    let db = state.db.reader();
    let Some(current) = store::current_membership_of(db, customer_id, Utc::now()).await? else {
        return Ok(None);
    };
    let level = store::find_level(db, current.level_id)
        .await?
        .ok_or_else(|| level_not_found(current.level_id))?;
    Ok(Some(MyMembership {
        level: LevelBenefits::from(level),
        starts_at: current.starts_at,
        expires_at: current.expires_at,
    }))
}

/// Ends every membership whose expiry is at or before `now`, `batch` per transaction, and
/// queues a `membership_expired` email for each in the same transaction. Idempotent and
/// safe to run concurrently: a membership is ended by a conditional update, and only the
/// run whose update took effect sends the email. Returns how many this run ended.
pub async fn expire_due(state: &AppState, now: DateTime<Utc>, batch: u64) -> ApiResult<u64> {
    let mut ended = 0;
    loop {
        // The primary, not a replica: a lagging replica would hand back ended rows again.
        let due = store::due_memberships(state.db.writer(), now, batch).await?;
        if due.is_empty() {
            break;
        }
        let txn = state.db.begin().await?;
        let level_ids: Vec<i64> = due.iter().map(|m| m.level_id).collect();
        let levels: HashMap<i64, String> = store::levels_by_ids(&txn, &level_ids)
            .await?
            .into_iter()
            .map(|l| (l.id, l.name))
            .collect();
        for membership in &due {
            if !store::end_membership(&txn, membership.id, now, END_EXPIRED).await? {
                continue;
            }
            ended += 1;
            let level = levels
                .get(&membership.level_id)
                .cloned()
                .unwrap_or_default();
            notify_expired(state, &txn, membership, &level).await?;
        }
        txn.commit().await?;
        if (due.len() as u64) < batch {
            break;
        }
    }
    Ok(ended)
}

async fn notify_expired(
    state: &AppState,
    db: &impl ConnectionTrait,
    membership: &membership::Model,
    level: &str,
) -> ApiResult<()> {
    let Some(customer) = store::find_customer(db, membership.customer_id).await? else {
        return Ok(());
    };
    let to = match &customer.email {
        Some(to) if customer.deleted_at.is_none() && parse_address(to).is_ok() => to,
        _ => return Ok(()),
    };
    let expired_at = membership.expires_at.unwrap_or_else(Utc::now);
    queue_email(
        db,
        &state.config,
        to,
        "membership_expired",
        &json!({ "shop": state.config.shop.name, "name": customer.name, "level": level,
            "expired_at": expired_at.format("%Y-%m-%d %H:%M UTC").to_string() }),
    )
    .await?;
    Ok(())
}
