//! Queries of the customers domain; nothing else touches its tables.

use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

use super::entity::customer;

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
