//! Queries of the customers domain; nothing else touches its tables.

use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, ExprTrait, Func, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, Order, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Select,
};

use super::entity::{address, customer, feedback, membership, membership_level};
use super::model::{CustomerFilter, CustomerStatus, FeedbackFilter};

pub async fn find_customer(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<Option<customer::Model>, DbErr> {
    customer::Entity::find_by_id(id).one(db).await
}

pub async fn find_customer_by_email(
    db: &impl ConnectionTrait,
    email: &str,
) -> Result<Option<customer::Model>, DbErr> {
    customer::Entity::find()
        .filter(customer::Column::Email.eq(email))
        .one(db)
        .await
}

/// The names of the given customers, by id.
pub async fn names_by_id(
    db: &impl ConnectionTrait,
    ids: &[i64],
) -> Result<Vec<(i64, String)>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    customer::Entity::find()
        .select_only()
        .column(customer::Column::Id)
        .column(customer::Column::Name)
        .filter(customer::Column::Id.is_in(ids.iter().copied()))
        .into_tuple()
        .all(db)
        .await
}

/// What a new customer row starts with.
pub struct NewCustomer<'a> {
    pub email: Option<&'a str>,
    pub name: &'a str,
    pub phone: Option<&'a str>,
    pub password_hash: Option<&'a str>,
    pub email_verified_at: Option<DateTime<Utc>>,
}

pub async fn insert_customer(
    db: &impl ConnectionTrait,
    new: NewCustomer<'_>,
) -> Result<customer::Model, DbErr> {
    let now = Utc::now();
    customer::Entity::insert(customer::ActiveModel {
        version: Set(1),
        email: Set(new.email.map(str::to_owned)),
        name: Set(new.name.to_owned()),
        phone: Set(new.phone.map(str::to_owned)),
        password_hash: Set(new.password_hash.map(str::to_owned)),
        email_verified_at: Set(new.email_verified_at),
        credentials_changed_at: Set(now),
        is_active: Set(true),
        deleted_at: Set(None),
        note: Set(String::new()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec_with_returning(db)
    .await
}

/// Applies `changes` to one customer, unconditionally (for account-level changes that
/// are not edits of a version the client saw: password, verification).
pub async fn update_customer(
    db: &impl ConnectionTrait,
    id: i64,
    mut changes: customer::ActiveModel,
) -> Result<(), DbErr> {
    changes.updated_at = Set(Utc::now());
    customer::Entity::update_many()
        .set(changes)
        .filter(customer::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// The customer row, locked until the transaction ends (PostgreSQL; SQLite has one writer
/// anyway), so that per-customer limits and "only one" rules hold under concurrency.
pub async fn lock_customer(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<Option<customer::Model>, DbErr> {
    customer::Entity::find_by_id(id)
        .lock_exclusive()
        .one(db)
        .await
}

/// The staff customer list; without a `status` filter deleted customers are left out.
pub fn customer_query(filter: &CustomerFilter, now: DateTime<Utc>) -> Select<customer::Entity> {
    let mut query = customer::Entity::find();
    if let Some(q) = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        let lower = |column: customer::Column| {
            Expr::expr(Func::lower(Expr::col((customer::Entity, column))))
                .like(crate::platform::list::contains(q))
        };
        query = query.filter(
            Condition::any()
                .add(lower(customer::Column::Email))
                .add(lower(customer::Column::Name)),
        );
    }
    query = match filter.status {
        None => query.filter(customer::Column::DeletedAt.is_null()),
        Some(CustomerStatus::Active) => query
            .filter(customer::Column::DeletedAt.is_null())
            .filter(customer::Column::IsActive.eq(true)),
        Some(CustomerStatus::Inactive) => query
            .filter(customer::Column::DeletedAt.is_null())
            .filter(customer::Column::IsActive.eq(false)),
        Some(CustomerStatus::Deleted) => query.filter(customer::Column::DeletedAt.is_not_null()),
    };
    if let Some(verified) = filter.verified {
        query = query.filter(if verified {
            customer::Column::EmailVerifiedAt.is_not_null()
        } else {
            customer::Column::EmailVerifiedAt.is_null()
        });
    }
    if let Some(level_id) = filter.membership_level_id {
        let mut holders = Query::select();
        holders
            .column(membership::Column::CustomerId)
            .from(membership::Entity)
            .and_where(membership::Column::LevelId.eq(level_id))
            .cond_where(current_membership(now));
        query = query.filter(customer::Column::Id.in_subquery(holders));
    }
    if let Some(after) = filter.created_after {
        query = query.filter(customer::Column::CreatedAt.gte(after));
    }
    if let Some(before) = filter.created_before {
        query = query.filter(customer::Column::CreatedAt.lt(before));
    }
    query
}

// ---- addresses --------------------------------------------------------------------------

/// The customer's addresses, the default first.
pub async fn list_addresses(
    db: &impl ConnectionTrait,
    customer_id: i64,
) -> Result<Vec<address::Model>, DbErr> {
    address::Entity::find()
        .filter(address::Column::CustomerId.eq(customer_id))
        .order_by(address::Column::IsDefault, Order::Desc)
        .order_by(address::Column::Id, Order::Asc)
        .all(db)
        .await
}

pub async fn count_addresses(db: &impl ConnectionTrait, customer_id: i64) -> Result<u64, DbErr> {
    address::Entity::find()
        .filter(address::Column::CustomerId.eq(customer_id))
        .count(db)
        .await
}

/// One of the customer's addresses; another customer's is `None`.
pub async fn find_address(
    db: &impl ConnectionTrait,
    customer_id: i64,
    id: i64,
) -> Result<Option<address::Model>, DbErr> {
    address::Entity::find_by_id(id)
        .filter(address::Column::CustomerId.eq(customer_id))
        .one(db)
        .await
}

pub async fn insert_address(
    db: &impl ConnectionTrait,
    mut row: address::ActiveModel,
) -> Result<address::Model, DbErr> {
    let now = Utc::now();
    row.version = Set(1);
    row.created_at = Set(now);
    row.updated_at = Set(now);
    address::Entity::insert(row).exec_with_returning(db).await
}

/// Clears the default flag on every address of the customer but `keep`.
pub async fn clear_default_address(
    db: &impl ConnectionTrait,
    customer_id: i64,
    keep: Option<i64>,
) -> Result<(), DbErr> {
    let mut update = address::Entity::update_many()
        .col_expr(address::Column::IsDefault, Expr::value(false))
        .col_expr(address::Column::UpdatedAt, Expr::value(Utc::now()))
        .col_expr(
            address::Column::Version,
            Expr::col(address::Column::Version).add(1),
        )
        .filter(address::Column::CustomerId.eq(customer_id))
        .filter(address::Column::IsDefault.eq(true));
    if let Some(keep) = keep {
        update = update.filter(address::Column::Id.ne(keep));
    }
    update.exec(db).await?;
    Ok(())
}

/// Makes the customer's oldest remaining address the default, when none is.
pub async fn promote_oldest_address(
    db: &impl ConnectionTrait,
    customer_id: i64,
) -> Result<(), DbErr> {
    let has_default = address::Entity::find()
        .filter(address::Column::CustomerId.eq(customer_id))
        .filter(address::Column::IsDefault.eq(true))
        .count(db)
        .await?
        > 0;
    if has_default {
        return Ok(());
    }
    let oldest = address::Entity::find()
        .filter(address::Column::CustomerId.eq(customer_id))
        .order_by(address::Column::Id, Order::Asc)
        .one(db)
        .await?;
    if let Some(oldest) = oldest {
        address::Entity::update_many()
            .col_expr(address::Column::IsDefault, Expr::value(true))
            .col_expr(address::Column::UpdatedAt, Expr::value(Utc::now()))
            .col_expr(
                address::Column::Version,
                Expr::col(address::Column::Version).add(1),
            )
            .filter(address::Column::Id.eq(oldest.id))
            .exec(db)
            .await?;
    }
    Ok(())
}

pub async fn delete_address(
    db: &impl ConnectionTrait,
    customer_id: i64,
    id: i64,
) -> Result<u64, DbErr> {
    Ok(address::Entity::delete_many()
        .filter(address::Column::Id.eq(id))
        .filter(address::Column::CustomerId.eq(customer_id))
        .exec(db)
        .await?
        .rows_affected)
}

// ---- feedback ---------------------------------------------------------------------------

pub async fn insert_feedback(
    db: &impl ConnectionTrait,
    customer_id: i64,
    subject: &str,
    message: &str,
) -> Result<feedback::Model, DbErr> {
    let now = Utc::now();
    feedback::Entity::insert(feedback::ActiveModel {
        version: Set(1),
        customer_id: Set(customer_id),
        subject: Set(subject.to_owned()),
        message: Set(message.to_owned()),
        status: Set("open".to_owned()),
        reply: Set(None),
        replied_by_staff_id: Set(None),
        replied_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec_with_returning(db)
    .await
}

pub fn feedback_query(filter: &FeedbackFilter) -> Select<feedback::Entity> {
    let mut query = feedback::Entity::find();
    if let Some(status) = filter.status {
        query = query.filter(feedback::Column::Status.eq(status.as_str()));
    }
    if let Some(customer_id) = filter.customer_id {
        query = query.filter(feedback::Column::CustomerId.eq(customer_id));
    }
    query
}

pub async fn find_feedback(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<Option<feedback::Model>, DbErr> {
    feedback::Entity::find_by_id(id).one(db).await
}

/// Stores a staff reply and marks the feedback replied.
pub async fn record_reply(
    db: &impl ConnectionTrait,
    id: i64,
    reply: &str,
    staff_id: i64,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    feedback::Entity::update_many()
        .col_expr(feedback::Column::Reply, Expr::value(reply))
        .col_expr(feedback::Column::Status, Expr::value("replied"))
        .col_expr(feedback::Column::RepliedByStaffId, Expr::value(staff_id))
        .col_expr(feedback::Column::RepliedAt, Expr::value(at))
        .col_expr(feedback::Column::UpdatedAt, Expr::value(at))
        .col_expr(
            feedback::Column::Version,
            Expr::col(feedback::Column::Version).add(1),
        )
        .filter(feedback::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

// ---- membership levels ------------------------------------------------------------------

pub async fn find_level(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<Option<membership_level::Model>, DbErr> {
    membership_level::Entity::find_by_id(id).one(db).await
}

/// Another level with this name (compared case-insensitively), other than `except`.
pub async fn level_name_taken(
    db: &impl ConnectionTrait,
    name: &str,
    except: Option<i64>,
) -> Result<bool, DbErr> {
    let mut query = membership_level::Entity::find().filter(
        Expr::expr(Func::lower(Expr::col((
            membership_level::Entity,
            membership_level::Column::Name,
        ))))
        .eq(name.to_lowercase()),
    );
    if let Some(id) = except {
        query = query.filter(membership_level::Column::Id.ne(id));
    }
    Ok(query.count(db).await? > 0)
}

pub async fn insert_level(
    db: &impl ConnectionTrait,
    name: &str,
    description: &str,
    discount_percent: i32,
    free_shipping: bool,
) -> Result<membership_level::Model, DbErr> {
    let now = Utc::now();
    membership_level::Entity::insert(membership_level::ActiveModel {
        version: Set(1),
        name: Set(name.to_owned()),
        description: Set(description.to_owned()),
        discount_percent: Set(discount_percent),
        free_shipping: Set(free_shipping),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec_with_returning(db)
    .await
}

pub async fn levels_by_ids(
    db: &impl ConnectionTrait,
    ids: &[i64],
) -> Result<Vec<membership_level::Model>, DbErr> {
    membership_level::Entity::find()
        .filter(membership_level::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await
}

/// Memberships, current or past, at this level.
pub async fn count_memberships_at_level(
    db: &impl ConnectionTrait,
    level_id: i64,
) -> Result<u64, DbErr> {
    membership::Entity::find()
        .filter(membership::Column::LevelId.eq(level_id))
        .count(db)
        .await
}

pub async fn delete_level(db: &impl ConnectionTrait, id: i64) -> Result<u64, DbErr> {
    Ok(membership_level::Entity::delete_by_id(id)
        .exec(db)
        .await?
        .rows_affected)
}

// ---- memberships ------------------------------------------------------------------------

/// Not ended and not past its expiry (the expiry job may not have run yet).
fn current_membership(now: DateTime<Utc>) -> Condition {
    Condition::all()
        .add(membership::Column::EndedAt.is_null())
        .add(
            Condition::any()
                .add(membership::Column::ExpiresAt.is_null())
                .add(membership::Column::ExpiresAt.gt(now)),
        )
}

/// The customer's membership in force at `now`.
pub async fn current_membership_of(
    db: &impl ConnectionTrait,
    customer_id: i64,
    now: DateTime<Utc>,
) -> Result<Option<membership::Model>, DbErr> {
    membership::Entity::find()
        .filter(membership::Column::CustomerId.eq(customer_id))
        .filter(current_membership(now))
        .order_by(membership::Column::Id, Order::Desc)
        .one(db)
        .await
}

/// The customer's memberships that have not been ended (expired ones the job has not
/// reached yet included).
pub async fn open_memberships_of(
    db: &impl ConnectionTrait,
    customer_id: i64,
) -> Result<Vec<membership::Model>, DbErr> {
    membership::Entity::find()
        .filter(membership::Column::CustomerId.eq(customer_id))
        .filter(membership::Column::EndedAt.is_null())
        .all(db)
        .await
}

/// Ends one membership unless something already ended it; true when this call did.
pub async fn end_membership(
    db: &impl ConnectionTrait,
    id: i64,
    at: DateTime<Utc>,
    reason: &str,
) -> Result<bool, DbErr> {
    let result = membership::Entity::update_many()
        .col_expr(membership::Column::EndedAt, Expr::value(at))
        .col_expr(membership::Column::EndReason, Expr::value(reason))
        .col_expr(membership::Column::UpdatedAt, Expr::value(at))
        .col_expr(
            membership::Column::Version,
            Expr::col(membership::Column::Version).add(1),
        )
        .filter(membership::Column::Id.eq(id))
        .filter(membership::Column::EndedAt.is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

pub async fn insert_membership(
    db: &impl ConnectionTrait,
    customer_id: i64,
    level_id: i64,
    expires_at: Option<DateTime<Utc>>,
    granted_by_staff_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<membership::Model, DbErr> {
    membership::Entity::insert(membership::ActiveModel {
        version: Set(1),
        customer_id: Set(customer_id),
        level_id: Set(level_id),
        starts_at: Set(now),
        expires_at: Set(expires_at),
        ended_at: Set(None),
        end_reason: Set(None),
        granted_by_staff_id: Set(granted_by_staff_id),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec_with_returning(db)
    .await
}

/// Every membership of the customer, newest first.
pub async fn membership_history(
    db: &impl ConnectionTrait,
    customer_id: i64,
) -> Result<Vec<membership::Model>, DbErr> {
    membership::Entity::find()
        .filter(membership::Column::CustomerId.eq(customer_id))
        .order_by(membership::Column::StartsAt, Order::Desc)
        .order_by(membership::Column::Id, Order::Desc)
        .all(db)
        .await
}

/// Up to `limit` memberships past their expiry that nothing has ended yet, oldest first.
pub async fn due_memberships(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<membership::Model>, DbErr> {
    membership::Entity::find()
        .filter(membership::Column::EndedAt.is_null())
        .filter(membership::Column::ExpiresAt.lte(now))
        .order_by(membership::Column::Id, Order::Asc)
        .limit(limit)
        .all(db)
        .await
}

pub fn all_levels() -> Select<membership_level::Entity> {
    membership_level::Entity::find()
}
