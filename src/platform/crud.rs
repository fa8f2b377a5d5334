//! Lookups every resource needs, with the API's 404 built in.

use sea_orm::{ConnectionTrait, EntityTrait, PrimaryKeyTrait};

use super::error::{ApiError, ApiResult};

/// The row with primary key `id`, or a 404 naming the resource.
pub async fn find_or_404<E>(
    db: &impl ConnectionTrait,
    id: i64,
    resource: &str,
) -> ApiResult<E::Model>
where
    E: EntityTrait,
    <E::PrimaryKey as PrimaryKeyTrait>::ValueType: From<i64>,
{
    E::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found(resource, id))
}

/// Deletes the row with primary key `id`, or answers 404 when there is none.
pub async fn delete_or_404<E>(db: &impl ConnectionTrait, id: i64, resource: &str) -> ApiResult<()>
where
    E: EntityTrait,
    <E::PrimaryKey as PrimaryKeyTrait>::ValueType: From<i64>,
{
    match E::delete_by_id(id).exec(db).await?.rows_affected {
        0 => Err(ApiError::not_found(resource, id)),
        _ => Ok(()),
    }
}
