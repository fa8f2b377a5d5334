//! Rules of the customers domain: accounts and profiles here; staff administration,
//! addresses, feedback and memberships in the submodules.

pub mod addresses;
pub mod admin;
pub mod feedback;
pub mod memberships;

use std::collections::HashMap;

use chrono::Utc;
use sea_orm::ActiveValue::Set;
use sea_orm::ConnectionTrait;

use super::entity::customer;
use super::model::{Profile, UpdateProfile};
use super::store::{self, NewCustomer};
use crate::app::AppState;
use crate::platform::concurrency::{Expected, update_versioned};
use crate::platform::error::Validator;
use crate::platform::{ApiError, ApiResult};

/// A customer account as sign-in sees it.
pub type Account = customer::Model;

impl customer::Model {
    /// Active and not deleted.
    pub fn can_sign_in(&self) -> bool {
        self.is_active && self.deleted_at.is_none()
    }
}

pub async fn find_account(db: &impl ConnectionTrait, id: i64) -> ApiResult<Option<Account>> {
    Ok(store::find_customer(db, id).await?)
}

/// `email` must already be normalised.
pub async fn find_account_by_email(
    db: &impl ConnectionTrait,
    email: &str,
) -> ApiResult<Option<Account>> {
    Ok(store::find_customer_by_email(db, email).await?)
}

pub async fn create_account(db: &impl ConnectionTrait, new: NewCustomer<'_>) -> ApiResult<Account> {
    Ok(store::insert_customer(db, new).await?)
}

/// Sets a new password hash and voids every session begun before now.
pub async fn set_password_hash(db: &impl ConnectionTrait, id: i64, hash: &str) -> ApiResult<()> {
    store::update_customer(
        db,
        id,
        customer::ActiveModel {
            password_hash: Set(Some(hash.to_owned())),
            credentials_changed_at: Set(Utc::now()),
            ..Default::default()
        },
    )
    .await?;
    Ok(())
}

/// Re-registration of an address that was never verified: whoever proves they own the
/// address by following the newest link gets the account with these details.
pub async fn replace_unverified(
    db: &impl ConnectionTrait,
    id: i64,
    name: &str,
    hash: &str,
) -> ApiResult<()> {
    store::update_customer(
        db,
        id,
        customer::ActiveModel {
            name: Set(name.to_owned()),
            password_hash: Set(Some(hash.to_owned())),
            credentials_changed_at: Set(Utc::now()),
            ..Default::default()
        },
    )
    .await?;
    Ok(())
}

pub async fn mark_email_verified(db: &impl ConnectionTrait, id: i64) -> ApiResult<()> {
    store::update_customer(
        db,
        id,
        customer::ActiveModel {
            email_verified_at: Set(Some(Utc::now())),
            ..Default::default()
        },
    )
    .await?;
    Ok(())
}

pub async fn profile(state: &AppState, customer_id: i64) -> ApiResult<Profile> {
    store::find_customer(state.db.writer(), customer_id)
        .await?
        .map(Profile::from)
        .ok_or_else(|| ApiError::not_found("customer", customer_id))
}

pub async fn update_profile(
    state: &AppState,
    customer_id: i64,
    expected: Expected,
    input: UpdateProfile,
) -> ApiResult<Profile> {
    let mut v = Validator::default();
    v.text_if(input.name.as_ref(), "name", 100);
    if let Some(Some(phone)) = &input.phone {
        check_phone(&mut v, phone);
    }
    v.finish()?;
    let mut changes = customer::ActiveModel {
        updated_at: Set(Utc::now()),
        ..Default::default()
    };
    if let Some(name) = input.name {
        changes.name = Set(name.trim().to_owned());
    }
    if let Some(phone) = input.phone {
        changes.phone = Set(phone.map(|p| p.trim().to_owned()));
    }
    update_versioned(
        state.db.writer(),
        changes,
        [customer::Column::Id, customer::Column::Version],
        customer_id,
        expected,
        "customer",
    )
    .await?;
    profile(state, customer_id).await
}

/// Digits with an optional leading `+`, spaces and dashes allowed, 5 to 20 digits.
pub fn check_phone(v: &mut Validator, phone: &str) {
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    let allowed = phone
        .trim()
        .chars()
        .enumerate()
        .all(|(i, c)| c.is_ascii_digit() || c == ' ' || c == '-' || (i == 0 && c == '+'));
    v.check(
        allowed && (5..=20).contains(&digits),
        "phone",
        "must be a phone number",
    );
}

/// How the shop names customers in public (a review's author): the first name and the
/// last name's initial, "Ada L.", so nothing that identifies or reaches them (the full
/// name, the email) is shown to other shoppers.
pub fn public_name(name: &str) -> String {
    let words: Vec<&str> = name.split_whitespace().collect();
    match words.as_slice() {
        [] => "Customer".to_owned(),
        [only] => (*only).to_owned(),
        [first, .., last] => {
            let initial: String = last.chars().flat_map(char::to_uppercase).take(1).collect();
            format!("{first} {initial}.")
        }
    }
}

/// `public_name` of each of the given customers, by id.
pub async fn public_names(
    db: &impl ConnectionTrait,
    ids: &[i64],
) -> ApiResult<HashMap<i64, String>> {
    Ok(store::names_by_id(db, ids)
        .await?
        .into_iter()
        .map(|(id, name)| (id, public_name(&name)))
        .collect())
}

/// The customer, locked for the transaction, for staff actions that need a live account:
/// a deleted customer is gone (410).
pub(crate) async fn live_customer(db: &impl ConnectionTrait, id: i64) -> ApiResult<Account> {
    let customer = store::lock_customer(db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("customer", id))?;
    if customer.deleted_at.is_some() {
        return Err(ApiError::new(
            axum::http::StatusCode::GONE,
            "customer-deleted",
            format!("customer {id} was deleted"),
        ));
    }
    Ok(customer)
}

#[cfg(test)]
mod tests {
    use super::public_name;

    #[test]
    fn public_names_show_first_name_and_last_initial() {
        assert_eq!(public_name("Ada Lovelace"), "Ada L.");
        assert_eq!(public_name("  Jean  Paul van der berg "), "Jean B.");
        assert_eq!(public_name("Cher"), "Cher");
        assert_eq!(public_name("Émile ßarth"), "Émile S.");
        assert_eq!(public_name("   "), "Customer");
    }
}
