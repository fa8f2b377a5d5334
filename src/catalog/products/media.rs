//! A product's images and video: uploaded to the media store, listed in order on its page.

use chrono::Utc;
use sea_orm::ActiveValue::{NotSet, Set};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::model::MediaView;
use super::{after_write, load_product, media_view};
use crate::app::AppState;
use crate::catalog::entity::product_media;
use crate::identity::service::{Actor, audit};
use crate::media::model::StoredMedia;
use crate::platform::concurrency::{Expected, update_versioned};
use crate::platform::crud::find_or_404;
use crate::platform::error::Validator;
use crate::platform::{ApiError, ApiResult};

const RESOURCE: &str = "product media";
const MAX_MEDIA: u64 = 50;
const ALT_MAX: usize = 300;

/// Where an upload goes in the product's gallery.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MediaPlacement {
    /// Text for screen readers and when the image cannot load.
    #[serde(default)]
    pub alt: String,
    /// Gallery position; default: after the others.
    pub sort_order: Option<i32>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMedia {
    pub alt: Option<String>,
    pub sort_order: Option<i32>,
    pub version: Option<i64>,
}

fn check_alt(alt: Option<&String>) -> ApiResult<()> {
    let mut v = Validator::default();
    v.check(
        alt.is_none_or(|a| a.chars().count() <= ALT_MAX),
        "alt",
        "must be at most 300 characters",
    );
    v.finish()
}

/// Checked before the upload is read, so a request for a missing product or a full
/// gallery stores nothing.
pub async fn check_room(
    state: &AppState,
    product_id: i64,
    placement: &MediaPlacement,
) -> ApiResult<()> {
    check_alt(Some(&placement.alt))?;
    let db = state.db.reader();
    load_product(db, product_id).await?;
    let count = product_media::Entity::find()
        .filter(product_media::Column::ProductId.eq(product_id))
        .count(db)
        .await?;
    if count >= MAX_MEDIA {
        return Err(ApiError::conflict(
            "too-many-media",
            "a product has at most 50 images and videos; delete one first",
        ));
    }
    Ok(())
}

pub async fn add_media(
    state: &AppState,
    actor: &Actor<'_>,
    product_id: i64,
    stored: StoredMedia,
    placement: MediaPlacement,
) -> ApiResult<MediaView> {
    let txn = state.db.begin().await?;
    let product = load_product(&txn, product_id).await?;
    let existing = super::store::media_of(&txn, product_id).await?;
    let sort_order = placement
        .sort_order
        .unwrap_or_else(|| existing.iter().map(|m| m.sort_order + 1).max().unwrap_or(0));
    let now = Utc::now();
    let row = product_media::Entity::insert(product_media::ActiveModel {
        id: NotSet,
        version: Set(1),
        product_id: Set(product_id),
        key: Set(stored.key.clone()),
        content_type: Set(stored.content_type.clone()),
        kind: Set(stored.kind.as_str().to_owned()),
        size: Set(stored.size as i64),
        alt: Set(placement.alt.trim().to_owned()),
        sort_order: Set(sort_order),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_with_returning(&txn)
    .await?;
    audit(
        &txn,
        actor,
        "product_media_added",
        Some(format!("product:{product_id}")),
        json!({ "media_id": row.id, "key": row.key, "size": row.size }),
    )
    .await?;
    txn.commit().await?;
    after_write(state, &product).await;
    Ok(media_view(state, row))
}

pub async fn update_media(
    state: &AppState,
    actor: &Actor<'_>,
    product_id: i64,
    media_id: i64,
    expected: Expected,
    input: UpdateMedia,
) -> ApiResult<MediaView> {
    check_alt(input.alt.as_ref())?;
    let txn = state.db.begin().await?;
    let product = load_product(&txn, product_id).await?;
    let current = find_or_404::<product_media::Entity>(&txn, media_id, RESOURCE).await?;
    if current.product_id != product_id {
        return Err(ApiError::not_found(RESOURCE, media_id));
    }
    update_versioned(
        &txn,
        product_media::ActiveModel {
            alt: input.alt.map_or(NotSet, |a| Set(a.trim().to_owned())),
            sort_order: input.sort_order.map_or(NotSet, Set),
            updated_at: Set(Utc::now()),
            ..Default::default()
        },
        [product_media::Column::Id, product_media::Column::Version],
        media_id,
        expected,
        RESOURCE,
    )
    .await?;
    audit(
        &txn,
        actor,
        "product_media_updated",
        Some(format!("product:{product_id}")),
        json!({ "media_id": media_id }),
    )
    .await?;
    let row = find_or_404::<product_media::Entity>(&txn, media_id, RESOURCE).await?;
    txn.commit().await?;
    after_write(state, &product).await;
    Ok(media_view(state, row))
}

/// Takes the file off the product. The stored file stays: its key names its content, so
/// copies of the product, other products or pages may show the same file.
pub async fn delete_media(
    state: &AppState,
    actor: &Actor<'_>,
    product_id: i64,
    media_id: i64,
) -> ApiResult<()> {
    let txn = state.db.begin().await?;
    let product = load_product(&txn, product_id).await?;
    let current = find_or_404::<product_media::Entity>(&txn, media_id, RESOURCE).await?;
    if current.product_id != product_id {
        return Err(ApiError::not_found(RESOURCE, media_id));
    }
    product_media::Entity::delete_by_id(media_id)
        .exec(&txn)
        .await?;
    audit(
        &txn,
        actor,
        "product_media_deleted",
        Some(format!("product:{product_id}")),
        json!({ "media_id": media_id, "key": current.key }),
    )
    .await?;
    txn.commit().await?;
    after_write(state, &product).await;
    Ok(())
}
