//! Queries of the identity domain; nothing else touches its tables.

use std::collections::{BTreeSet, HashMap};

use chrono::Utc;
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Select,
};

use super::entity::{oauth_identity, role, role_permission, security_log, staff, staff_role};
use super::model::{SecurityLogFilter, StaffFilter};
use super::oauth::ExternalUser;

pub async fn find_staff(db: &impl ConnectionTrait, id: i64) -> Result<Option<staff::Model>, DbErr> {
    staff::Entity::find_by_id(id).one(db).await
}

pub async fn count_staff(db: &impl ConnectionTrait) -> Result<u64, DbErr> {
    staff::Entity::find().count(db).await
}

pub async fn find_staff_by_email(
    db: &impl ConnectionTrait,
    email: &str,
) -> Result<Option<staff::Model>, DbErr> {
    staff::Entity::find()
        .filter(staff::Column::Email.eq(email))
        .one(db)
        .await
}

/// The union of the permissions of the staff member's roles.
pub async fn permissions_of(
    db: &impl ConnectionTrait,
    staff_id: i64,
) -> Result<BTreeSet<String>, DbErr> {
    let role_ids = staff_role::Entity::find()
        .select_only()
        .column(staff_role::Column::RoleId)
        .filter(staff_role::Column::StaffId.eq(staff_id))
        .into_tuple::<i64>()
        .all(db)
        .await?;
    Ok(permissions_by_role(db, &role_ids)
        .await?
        .into_values()
        .flatten()
        .collect())
}

/// Emails of the active staff holding `permission` through a role, and of every active
/// superuser.
pub async fn active_staff_emails_with(
    db: &impl ConnectionTrait,
    permission: &str,
) -> Result<Vec<String>, DbErr> {
    let holders = sea_orm::sea_query::Query::select()
        .column(staff_role::Column::StaffId)
        .from(staff_role::Entity)
        .and_where(
            staff_role::Column::RoleId.in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(role_permission::Column::RoleId)
                    .from(role_permission::Entity)
                    .and_where(role_permission::Column::Permission.eq(permission))
                    .to_owned(),
            ),
        )
        .to_owned();
    staff::Entity::find()
        .select_only()
        .column(staff::Column::Email)
        .filter(staff::Column::IsActive.eq(true))
        .filter(
            sea_orm::Condition::any()
                .add(staff::Column::IsSuperuser.eq(true))
                .add(staff::Column::Id.in_subquery(holders)),
        )
        .order_by_asc(staff::Column::Id)
        .into_tuple()
        .all(db)
        .await
}

pub async fn insert_staff(
    db: &impl ConnectionTrait,
    email: &str,
    name: &str,
    password_hash: &str,
    is_superuser: bool,
) -> Result<staff::Model, DbErr> {
    let now = Utc::now();
    staff::Entity::insert(staff::ActiveModel {
        version: Set(1),
        email: Set(email.to_owned()),
        name: Set(name.to_owned()),
        password_hash: Set(password_hash.to_owned()),
        is_superuser: Set(is_superuser),
        is_active: Set(true),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec_with_returning(db)
    .await
}

pub fn staff_query(filter: &StaffFilter) -> Select<staff::Entity> {
    let mut query = staff::Entity::find();
    if let Some(email) = &filter.email {
        query = query.filter(staff::Column::Email.contains(email.to_lowercase()));
    }
    if let Some(active) = filter.is_active {
        query = query.filter(staff::Column::IsActive.eq(active));
    }
    if let Some(role_id) = filter.role_id {
        query = query.filter(
            staff::Column::Id.in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(staff_role::Column::StaffId)
                    .from(staff_role::Entity)
                    .and_where(Expr::col(staff_role::Column::RoleId).eq(role_id))
                    .to_owned(),
            ),
        );
    }
    query
}

/// Role ids and names of each staff member in `staff_ids`.
pub async fn roles_by_staff(
    db: &impl ConnectionTrait,
    staff_ids: &[i64],
) -> Result<HashMap<i64, Vec<role::Model>>, DbErr> {
    let links = staff_role::Entity::find()
        .filter(staff_role::Column::StaffId.is_in(staff_ids.iter().copied()))
        .all(db)
        .await?;
    let roles: HashMap<i64, role::Model> = role::Entity::find()
        .filter(role::Column::Id.is_in(links.iter().map(|l| l.role_id)))
        .all(db)
        .await?
        .into_iter()
        .map(|r| (r.id, r))
        .collect();
    let mut out: HashMap<i64, Vec<role::Model>> = HashMap::new();
    for link in links {
        if let Some(role) = roles.get(&link.role_id) {
            out.entry(link.staff_id).or_default().push(role.clone());
        }
    }
    for list in out.values_mut() {
        list.sort_by_key(|r| r.id);
    }
    Ok(out)
}

pub async fn set_staff_roles(
    db: &impl ConnectionTrait,
    staff_id: i64,
    role_ids: &BTreeSet<i64>,
) -> Result<(), DbErr> {
    staff_role::Entity::delete_many()
        .filter(staff_role::Column::StaffId.eq(staff_id))
        .exec(db)
        .await?;
    if role_ids.is_empty() {
        return Ok(());
    }
    staff_role::Entity::insert_many(role_ids.iter().map(|role_id| staff_role::ActiveModel {
        staff_id: Set(staff_id),
        role_id: Set(*role_id),
    }))
    .exec(db)
    .await?;
    Ok(())
}

/// The ids in `ids` that name no role.
pub async fn missing_roles(
    db: &impl ConnectionTrait,
    ids: &BTreeSet<i64>,
) -> Result<Vec<i64>, DbErr> {
    let found: BTreeSet<i64> = role::Entity::find()
        .select_only()
        .column(role::Column::Id)
        .filter(role::Column::Id.is_in(ids.iter().copied()))
        .into_tuple::<i64>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    Ok(ids.difference(&found).copied().collect())
}

pub async fn delete_staff(db: &impl ConnectionTrait, id: i64) -> Result<bool, DbErr> {
    Ok(staff::Entity::delete_by_id(id)
        .exec(db)
        .await?
        .rows_affected
        > 0)
}

pub async fn find_role(db: &impl ConnectionTrait, id: i64) -> Result<Option<role::Model>, DbErr> {
    role::Entity::find_by_id(id).one(db).await
}

pub async fn insert_role(
    db: &impl ConnectionTrait,
    name: &str,
    description: &str,
) -> Result<role::Model, DbErr> {
    let now = Utc::now();
    role::Entity::insert(role::ActiveModel {
        version: Set(1),
        name: Set(name.to_owned()),
        description: Set(description.to_owned()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec_with_returning(db)
    .await
}

pub async fn permissions_by_role(
    db: &impl ConnectionTrait,
    role_ids: &[i64],
) -> Result<HashMap<i64, BTreeSet<String>>, DbErr> {
    let mut out: HashMap<i64, BTreeSet<String>> = HashMap::new();
    if role_ids.is_empty() {
        return Ok(out);
    }
    for row in role_permission::Entity::find()
        .filter(role_permission::Column::RoleId.is_in(role_ids.iter().copied()))
        .all(db)
        .await?
    {
        out.entry(row.role_id).or_default().insert(row.permission);
    }
    Ok(out)
}

pub async fn set_role_permissions(
    db: &impl ConnectionTrait,
    role_id: i64,
    permissions: &BTreeSet<String>,
) -> Result<(), DbErr> {
    role_permission::Entity::delete_many()
        .filter(role_permission::Column::RoleId.eq(role_id))
        .exec(db)
        .await?;
    if permissions.is_empty() {
        return Ok(());
    }
    role_permission::Entity::insert_many(permissions.iter().map(|permission| {
        role_permission::ActiveModel {
            role_id: Set(role_id),
            permission: Set(permission.clone()),
        }
    }))
    .exec(db)
    .await?;
    Ok(())
}

pub async fn delete_role(db: &impl ConnectionTrait, id: i64) -> Result<bool, DbErr> {
    Ok(role::Entity::delete_by_id(id).exec(db).await?.rows_affected > 0)
}

pub async fn insert_security_event(
    db: &impl ConnectionTrait,
    entry: security_log::ActiveModel,
) -> Result<(), DbErr> {
    security_log::Entity::insert(entry).exec(db).await?;
    Ok(())
}

pub fn security_log_query(filter: &SecurityLogFilter) -> Select<security_log::Entity> {
    let mut query = security_log::Entity::find();
    if let Some(event) = &filter.event {
        query = query.filter(security_log::Column::Event.eq(event));
    }
    if let Some(actor) = filter.actor_staff_id {
        query = query.filter(security_log::Column::ActorStaffId.eq(actor));
    }
    if let Some(actor) = filter.actor_customer_id {
        query = query.filter(security_log::Column::ActorCustomerId.eq(actor));
    }
    if let Some(ip) = &filter.ip {
        query = query.filter(security_log::Column::Ip.eq(ip));
    }
    if let Some(subject) = &filter.subject {
        query = query.filter(security_log::Column::Subject.eq(subject));
    }
    if let Some(since) = filter.since {
        query = query.filter(security_log::Column::CreatedAt.gte(since));
    }
    if let Some(until) = filter.until {
        query = query.filter(security_log::Column::CreatedAt.lt(until));
    }
    query
}

pub async fn find_oauth_identity(
    db: &impl ConnectionTrait,
    provider: &str,
    subject: &str,
) -> Result<Option<oauth_identity::Model>, DbErr> {
    oauth_identity::Entity::find()
        .filter(oauth_identity::Column::Provider.eq(provider))
        .filter(oauth_identity::Column::Subject.eq(subject))
        .one(db)
        .await
}

pub async fn oauth_identities_of(
    db: &impl ConnectionTrait,
    customer_id: i64,
) -> Result<Vec<oauth_identity::Model>, DbErr> {
    oauth_identity::Entity::find()
        .filter(oauth_identity::Column::CustomerId.eq(customer_id))
        .all(db)
        .await
}

pub async fn insert_oauth_identity(
    db: &impl ConnectionTrait,
    customer_id: i64,
    provider: &str,
    user: &ExternalUser,
) -> Result<(), DbErr> {
    oauth_identity::Entity::insert(oauth_identity::ActiveModel {
        customer_id: Set(customer_id),
        provider: Set(provider.to_owned()),
        subject: Set(user.subject.clone()),
        union_id: Set(user.union_id.clone()),
        display_name: Set(user.display_name.clone()),
        created_at: Set(Utc::now()),
        ..Default::default()
    })
    .exec(db)
    .await?;
    Ok(())
}

pub async fn delete_oauth_identity(db: &impl ConnectionTrait, id: i64) -> Result<(), DbErr> {
    oauth_identity::Entity::delete_by_id(id).exec(db).await?;
    Ok(())
}
