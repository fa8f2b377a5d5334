//! Staff administration of customer accounts. Every write is in the security log.

use chrono::Utc;
use sea_orm::ActiveValue::Set;
use sea_orm::ConnectionTrait;
use serde_json::json;

use super::{check_phone, live_customer, memberships};
use crate::app::AppState;
use crate::catalog::attributes;
use crate::catalog::model::{AttributeScope, AttributeValues};
use crate::customers::entity::customer;
use crate::customers::model::{
    AddressView, CreateCustomer, CustomerDetail, CustomerFilter, CustomerMessage, CustomerView,
    EmailQueued, UpdateCustomer,
};
use crate::customers::store::{self, NewCustomer};
use crate::identity::accounts::send_password_reset;
use crate::identity::password;
use crate::identity::service::{Actor, audit, check_email, normalize_email};
use crate::identity::tokens::{Subject, revoke_subject};
use crate::notify::email::queue_email;
use crate::platform::concurrency::{Expected, update_versioned};
use crate::platform::error::Validator;
use crate::platform::list::{ListParams, Page, SortFields};
use crate::platform::{ApiError, ApiResult};

const SORT: SortFields<customer::Column> = SortFields(&[
    ("created_at", customer::Column::CreatedAt),
    ("name", customer::Column::Name),
    ("email", customer::Column::Email),
    ("id", customer::Column::Id),
]);

const NOTE_MAX: usize = 2000;

fn customer_exists(email: &str) -> ApiError {
    ApiError::conflict(
        "customer-exists",
        format!("a customer with email {email} already exists"),
    )
}

fn subject(id: i64) -> Option<String> {
    Some(format!("customer:{id}"))
}

pub async fn list_customers(
    state: &AppState,
    list: &ListParams,
    filter: &CustomerFilter,
) -> ApiResult<Page<CustomerView>> {
    let page = list
        .spec(&SORT)?
        .fetch(
            state.db.reader(),
            store::customer_query(filter, Utc::now()),
            customer::Column::Id,
        )
        .await?;
    Ok(page.map(CustomerView::from))
}

pub async fn customer_detail(
    db: &impl ConnectionTrait,
    customer: customer::Model,
) -> ApiResult<CustomerDetail> {
    let membership = memberships::current_view(db, customer.id).await?;
    let addresses = store::list_addresses(db, customer.id)
        .await?
        .into_iter()
        .map(AddressView::from)
        .collect();
    let attributes = attributes::values_for(db, AttributeScope::Customer, customer.id).await?;
    Ok(CustomerDetail {
        customer: customer.into(),
        membership,
        addresses,
        attributes,
    })
}

/// Deleted customers too: staff look them up from old orders.
pub async fn get_customer(state: &AppState, id: i64) -> ApiResult<CustomerDetail> {
    let db = state.db.reader();
    let customer = store::find_customer(db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("customer", id))?;
    customer_detail(db, customer).await
}

/// Creates an account; without a password the customer is emailed a link to choose one.
pub async fn create_customer(
    state: &AppState,
    actor: &Actor<'_>,
    input: CreateCustomer,
) -> ApiResult<CustomerDetail> {
    let email = normalize_email(&input.email);
    let mut v = Validator::default();
    check_email(&mut v, &email);
    v.text(&input.name, "name", 100);
    if let Some(phone) = &input.phone {
        check_phone(&mut v, phone);
    }
    if let Some(Err(message)) = input.password.as_deref().map(password::check_policy) {
        v.check(false, "password", message);
    }
    v.check(
        input.note.chars().count() <= NOTE_MAX,
        "note",
        "must be at most 2000 characters",
    );
    v.finish()?;
    let hash = match &input.password {
        Some(p) => Some(password::hash(p).await?),
        None => None,
    };

    let txn = state.db.begin().await?;
    if store::find_customer_by_email(&txn, &email).await?.is_some() {
        return Err(customer_exists(&email));
    }
    let phone = input.phone.as_deref().map(str::trim);
    let mut customer = store::insert_customer(
        &txn,
        NewCustomer {
            email: Some(&email),
            name: input.name.trim(),
            phone,
            password_hash: hash.as_deref(),
            email_verified_at: input.email_verified.then(Utc::now),
        },
    )
    .await
    .map_err(|e| ApiError::unique_as(e, customer_exists(&email)))?;
    if !input.note.is_empty() {
        store::update_customer(
            &txn,
            customer.id,
            customer::ActiveModel {
                note: Set(input.note.clone()),
                ..Default::default()
            },
        )
        .await?;
        customer.note = input.note;
    }
    if hash.is_none() {
        send_password_reset(state, &txn, &customer).await?;
    }
    audit(
        &txn,
        actor,
        "customer_created",
        subject(customer.id),
        json!({ "email": email, "email_verified": input.email_verified,
            "password_set": hash.is_some() }),
    )
    .await?;
    let detail = customer_detail(&txn, customer).await?;
    txn.commit().await?;
    Ok(detail)
}

pub async fn update_customer(
    state: &AppState,
    actor: &Actor<'_>,
    id: i64,
    expected: Expected,
    input: UpdateCustomer,
) -> ApiResult<CustomerDetail> {
    let email = input.email.as_deref().map(normalize_email);
    let mut v = Validator::default();
    v.text_if(input.name.as_ref(), "name", 100);
    if let Some(Some(phone)) = &input.phone {
        check_phone(&mut v, phone);
    }
    if let Some(email) = &email {
        check_email(&mut v, email);
    }
    if let Some(note) = &input.note {
        v.check(
            note.chars().count() <= NOTE_MAX,
            "note",
            "must be at most 2000 characters",
        );
    }
    v.finish()?;

    let txn = state.db.begin().await?;
    let current = live_customer(&txn, id).await?;
    let now = Utc::now();
    let mut changes = customer::ActiveModel {
        updated_at: Set(now),
        ..Default::default()
    };
    if let Some(name) = &input.name {
        changes.name = Set(name.trim().to_owned());
    }
    if let Some(phone) = &input.phone {
        changes.phone = Set(phone.as_deref().map(|p| p.trim().to_owned()));
    }
    if let Some(note) = &input.note {
        changes.note = Set(note.clone());
    }
    if let Some(is_active) = input.is_active {
        changes.is_active = Set(is_active);
    }
    let email_changed = email.is_some() && email != current.email;
    if let Some(email) = email.as_ref().filter(|_| email_changed) {
        if store::find_customer_by_email(&txn, email).await?.is_some() {
            return Err(customer_exists(email));
        }
        changes.email = Set(Some(email.clone()));
        changes.email_verified_at = Set(None);
    }
    if let Some(verified) = input.email_verified {
        let since = match current.email_verified_at {
            Some(at) if !email_changed => at,
            _ => now,
        };
        changes.email_verified_at = Set(verified.then_some(since));
    }
    update_versioned(
        &txn,
        changes,
        [customer::Column::Id, customer::Column::Version],
        id,
        expected,
        "customer",
    )
    .await
    .map_err(|e| match &email {
        Some(email) if e.problem().code == "already-exists" => customer_exists(email),
        _ => e,
    })?;
    if input.is_active == Some(false) && current.is_active {
        revoke_subject(&txn, Subject::Customer(id)).await?;
    }
    let changed: Vec<&str> = [
        ("name", input.name.is_some()),
        ("phone", input.phone.is_some()),
        ("email", email_changed),
        ("email_verified", input.email_verified.is_some()),
        ("is_active", input.is_active.is_some()),
        ("note", input.note.is_some()),
    ]
    .into_iter()
    .filter_map(|(field, present)| present.then_some(field))
    .collect();
    audit(
        &txn,
        actor,
        "customer_updated",
        subject(id),
        json!({ "changed": changed, "email_before": email_changed.then_some(&current.email),
            "is_active": input.is_active }),
    )
    .await?;
    let updated = store::find_customer(&txn, id)
        .await?
        .ok_or_else(|| ApiError::not_found("customer", id))?;
    let detail = customer_detail(&txn, updated).await?;
    txn.commit().await?;
    Ok(detail)
}

/// Soft delete: the row stays for orders and history, the customer can no longer sign in
/// and every refresh token they hold is revoked.
pub async fn delete_customer(state: &AppState, actor: &Actor<'_>, id: i64) -> ApiResult<()> {
    let txn = state.db.begin().await?;
    let current = live_customer(&txn, id).await?;
    let now = Utc::now();
    store::update_customer(
        &txn,
        id,
        customer::ActiveModel {
            deleted_at: Set(Some(now)),
            is_active: Set(false),
            version: Set(current.version + 1),
            ..Default::default()
        },
    )
    .await?;
    revoke_subject(&txn, Subject::Customer(id)).await?;
    let memberships = super::memberships::end_for_deleted_account(&txn, id, now).await?;
    audit(
        &txn,
        actor,
        "customer_deleted",
        subject(id),
        json!({ "email": current.email, "memberships_ended": memberships }),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Emails the customer a link to choose a new password; the current one keeps working
/// until they do.
pub async fn send_reset_link(state: &AppState, actor: &Actor<'_>, id: i64) -> ApiResult<()> {
    let txn = state.db.begin().await?;
    let customer = live_customer(&txn, id).await?;
    send_password_reset(state, &txn, &customer).await?;
    audit(
        &txn,
        actor,
        "customer_password_reset_sent",
        subject(id),
        json!({ "email": customer.email }),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Queues a message from staff to the customer through the outbox.
pub async fn email_customer(
    state: &AppState,
    actor: &Actor<'_>,
    id: i64,
    input: CustomerMessage,
) -> ApiResult<EmailQueued> {
    let mut v = Validator::default();
    v.text(&input.subject, "subject", 200);
    v.check(
        !input.subject.contains(['\r', '\n']),
        "subject",
        "must be a single line",
    );
    v.text(&input.body, "body", 10_000);
    v.finish()?;
    let txn = state.db.begin().await?;
    let customer = live_customer(&txn, id).await?;
    let Some(to) = &customer.email else {
        return Err(ApiError::conflict(
            "no-email",
            "the customer has no email address",
        ));
    };
    let email_id = queue_email(
        &txn,
        &state.config,
        to,
        "customer_message",
        &json!({ "shop": state.config.shop.name, "name": customer.name,
            "subject": input.subject.trim(), "body": input.body }),
    )
    .await?;
    audit(
        &txn,
        actor,
        "customer_emailed",
        subject(id),
        json!({ "email_id": email_id, "subject": input.subject.trim() }),
    )
    .await?;
    txn.commit().await?;
    Ok(EmailQueued { email_id })
}

/// Replaces the customer's custom attribute values, checked against the shop-wide
/// `customer` attributes.
pub async fn set_customer_attributes(
    state: &AppState,
    actor: &Actor<'_>,
    id: i64,
    values: AttributeValues,
) -> ApiResult<CustomerDetail> {
    let txn = state.db.begin().await?;
    let customer = live_customer(&txn, id).await?;
    attributes::set_values_for(&txn, AttributeScope::Customer, id, &values).await?;
    audit(
        &txn,
        actor,
        "customer_attributes_set",
        subject(id),
        json!({ "codes": values.keys().collect::<Vec<_>>() }),
    )
    .await?;
    let detail = customer_detail(&txn, customer).await?;
    txn.commit().await?;
    Ok(detail)
}
