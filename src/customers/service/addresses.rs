//! The signed-in customer's address book: at most one default, the first address is the
//! default, and a customer only ever sees their own addresses.

use sea_orm::ActiveValue::Set;
use sea_orm::ConnectionTrait;

use super::check_phone;
use crate::app::AppState;
use crate::customers::entity::address;
use crate::customers::model::{AddressView, CreateAddress, UpdateAddress};
use crate::customers::store;
use crate::platform::concurrency::{Expected, update_versioned};
use crate::platform::error::Validator;
use crate::platform::{ApiError, ApiResult};

/// More than any household needs; bounds what a script can store per account.
pub const MAX_ADDRESSES: u64 = 50;

fn check_optional(v: &mut Validator, value: Option<&String>, field: &str, max: usize) {
    if let Some(value) = value {
        v.check(
            value.trim().chars().count() <= max,
            field,
            &format!("must be at most {max} characters"),
        );
    }
}

/// Blank optional lines are stored as absent.
fn optional(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// The region must exist; regions are the system domain's, read through its service.
async fn check_region(db: &impl ConnectionTrait, region_id: i64) -> ApiResult<()> {
    if crate::system::service::region_exists(db, region_id).await? {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "region_id",
            format!("region {region_id} does not exist"),
        ))
    }
}

/// The customer row is locked first, so concurrent writes to one address book serialise.
/// A bearer token outlives a deactivation by up to its lifetime, so the account is
/// checked here too.
async fn lock_owner(db: &impl ConnectionTrait, customer_id: i64) -> ApiResult<()> {
    match store::lock_customer(db, customer_id).await? {
        Some(customer) if customer.can_sign_in() => Ok(()),
        _ => Err(ApiError::unauthorized()),
    }
}

fn address_not_found(id: i64) -> ApiError {
    ApiError::not_found("address", id)
}

pub async fn list_addresses(state: &AppState, customer_id: i64) -> ApiResult<Vec<AddressView>> {
    Ok(store::list_addresses(state.db.reader(), customer_id)
        .await?
        .into_iter()
        .map(AddressView::from)
        .collect())
}

/// Another customer's address is a 404, never a 403, so ids reveal nothing.
pub async fn get_address(state: &AppState, customer_id: i64, id: i64) -> ApiResult<AddressView> {
    store::find_address(state.db.reader(), customer_id, id)
        .await?
        .map(AddressView::from)
        .ok_or_else(|| address_not_found(id))
}

pub async fn create_address(
    state: &AppState,
    customer_id: i64,
    input: CreateAddress,
) -> ApiResult<AddressView> {
    let mut v = Validator::default();
    v.text(&input.recipient, "recipient", 100);
    check_phone(&mut v, &input.phone);
    v.text(&input.line1, "line1", 200);
    check_optional(&mut v, input.line2.as_ref(), "line2", 200);
    check_optional(&mut v, input.postal_code.as_ref(), "postal_code", 20);
    v.finish()?;

    let txn = state.db.begin().await?;
    lock_owner(&txn, customer_id).await?;
    check_region(&txn, input.region_id).await?;
    let count = store::count_addresses(&txn, customer_id).await?;
    if count >= MAX_ADDRESSES {
        return Err(ApiError::invalid(
            "addresses",
            format!("a customer keeps at most {MAX_ADDRESSES} addresses; delete one first"),
        )
        .with_code("too-many-addresses"));
    }
    let is_default = input.is_default || count == 0;
    if is_default {
        store::clear_default_address(&txn, customer_id, None).await?;
    }
    let row = store::insert_address(
        &txn,
        address::ActiveModel {
            customer_id: Set(customer_id),
            recipient: Set(input.recipient.trim().to_owned()),
            phone: Set(input.phone.trim().to_owned()),
            region_id: Set(input.region_id),
            line1: Set(input.line1.trim().to_owned()),
            line2: Set(optional(input.line2)),
            postal_code: Set(optional(input.postal_code)),
            is_default: Set(is_default),
            ..Default::default()
        },
    )
    .await?;
    txn.commit().await?;
    Ok(row.into())
}

pub async fn update_address(
    state: &AppState,
    customer_id: i64,
    id: i64,
    expected: Expected,
    input: UpdateAddress,
) -> ApiResult<AddressView> {
    let mut v = Validator::default();
    v.text_if(input.recipient.as_ref(), "recipient", 100);
    if let Some(phone) = &input.phone {
        check_phone(&mut v, phone);
    }
    v.text_if(input.line1.as_ref(), "line1", 200);
    check_optional(
        &mut v,
        input.line2.as_ref().and_then(Option::as_ref),
        "line2",
        200,
    );
    check_optional(
        &mut v,
        input.postal_code.as_ref().and_then(Option::as_ref),
        "postal_code",
        20,
    );
    v.finish()?;

    let txn = state.db.begin().await?;
    lock_owner(&txn, customer_id).await?;
    store::find_address(&txn, customer_id, id)
        .await?
        .ok_or_else(|| address_not_found(id))?;
    if let Some(region_id) = input.region_id {
        check_region(&txn, region_id).await?;
    }
    let trimmed = |v: Option<String>| v.map_or(sea_orm::NotSet, |v| Set(v.trim().to_owned()));
    let changes = address::ActiveModel {
        recipient: trimmed(input.recipient),
        phone: trimmed(input.phone),
        line1: trimmed(input.line1),
        region_id: input.region_id.map_or(sea_orm::NotSet, Set),
        line2: input.line2.map_or(sea_orm::NotSet, |v| Set(optional(v))),
        postal_code: input
            .postal_code
            .map_or(sea_orm::NotSet, |v| Set(optional(v))),
        is_default: input.is_default.map_or(sea_orm::NotSet, Set),
        updated_at: Set(chrono::Utc::now()),
        ..Default::default()
    };
    update_versioned(
        &txn,
        changes,
        [address::Column::Id, address::Column::Version],
        id,
        expected,
        "address",
    )
    .await?;
    if input.is_default == Some(true) {
        store::clear_default_address(&txn, customer_id, Some(id)).await?;
    }
    let row = store::find_address(&txn, customer_id, id)
        .await?
        .ok_or_else(|| address_not_found(id))?;
    txn.commit().await?;
    Ok(row.into())
}

/// Deleting the default makes the oldest remaining address the default.
pub async fn delete_address(state: &AppState, customer_id: i64, id: i64) -> ApiResult<()> {
    let txn = state.db.begin().await?;
    lock_owner(&txn, customer_id).await?;
    if store::delete_address(&txn, customer_id, id).await? == 0 {
        return Err(address_not_found(id));
    }
    store::promote_oldest_address(&txn, customer_id).await?;
    txn.commit().await?;
    Ok(())
}
