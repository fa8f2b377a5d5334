//! Ads and banners: shown on the storefront only while active and inside their window.

use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::EntityTrait;
use serde_json::json;

use super::{check_url, set_if, trimmed};
use crate::app::AppState;
use crate::content::entity::ad;
use crate::content::model::{AdFilter, AdView, CreateAd, PublicAd, UpdateAd};
use crate::content::store;
use crate::identity::service::{Actor, audit};
use crate::platform::ApiResult;
use crate::platform::concurrency::{Expected, update_versioned};
use crate::platform::crud::find_or_404;
use crate::platform::error::Validator;
use crate::platform::list::{ListParams, Page, SortFields};

const RESOURCE: &str = "ad";

const SORT: SortFields<ad::Column> = SortFields(&[
    ("title", ad::Column::Title),
    ("placement", ad::Column::Placement),
    ("sort_order", ad::Column::SortOrder),
    ("starts_at", ad::Column::StartsAt),
    ("ends_at", ad::Column::EndsAt),
    ("created_at", ad::Column::CreatedAt),
]);

fn subject(id: i64) -> Option<String> {
    Some(format!("content_ad:{id}"))
}

fn check_window(
    v: &mut Validator,
    starts_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
) {
    if let (Some(starts_at), Some(ends_at)) = (starts_at, ends_at) {
        v.check(ends_at > starts_at, "ends_at", "must be after starts_at");
    }
}

/// Whether the ad is showing at `now`: from `starts_at` (inclusive) to `ends_at`
/// (exclusive).
pub fn is_showing(ad: &ad::Model, now: DateTime<Utc>) -> bool {
    ad.active
        && ad.starts_at.is_none_or(|starts| starts <= now)
        && ad.ends_at.is_none_or(|ends| now < ends)
}

pub async fn list_ads(
    state: &AppState,
    list: &ListParams,
    filter: &AdFilter,
) -> ApiResult<Page<AdView>> {
    let page = list
        .spec(&SORT)?
        .fetch(state.db.reader(), store::ad_query(filter), ad::Column::Id)
        .await?;
    Ok(page.map(AdView::from))
}

pub async fn get_ad(state: &AppState, id: i64) -> ApiResult<AdView> {
    Ok(find_or_404::<ad::Entity>(state.db.reader(), id, RESOURCE)
        .await?
        .into())
}

/// The ads showing right now, in display order; no job switches them on or off.
pub async fn showing_ads(state: &AppState, placement: Option<&str>) -> ApiResult<Vec<PublicAd>> {
    let now = Utc::now();
    Ok(store::active_ads(state.db.reader(), placement)
        .await?
        .into_iter()
        .filter(|ad| is_showing(ad, now))
        .map(PublicAd::from)
        .collect())
}

pub async fn create_ad(state: &AppState, actor: &Actor<'_>, input: CreateAd) -> ApiResult<AdView> {
    let mut v = Validator::default();
    v.text(&input.title, "title", 200)
        .code(&input.placement, "placement");
    check_url(&mut v, &input.image_url, "image_url", true);
    check_url(&mut v, &input.link_url, "link_url", false);
    check_window(&mut v, input.starts_at, input.ends_at);
    v.finish()?;
    let txn = state.db.begin().await?;
    let now = Utc::now();
    let ad = ad::Entity::insert(ad::ActiveModel {
        version: Set(1),
        title: Set(input.title.trim().to_owned()),
        image_url: Set(input.image_url),
        link_url: Set(input.link_url),
        placement: Set(input.placement),
        sort_order: Set(input.sort_order),
        starts_at: Set(input.starts_at),
        ends_at: Set(input.ends_at),
        active: Set(input.active),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec_with_returning(&txn)
    .await?;
    audit(
        &txn,
        actor,
        "content.ad.created",
        subject(ad.id),
        json!({"placement": ad.placement, "title": ad.title}),
    )
    .await?;
    txn.commit().await?;
    Ok(ad.into())
}

/// A partial update; the window is checked against the stored value of the bound the
/// request leaves out.
pub async fn update_ad(
    state: &AppState,
    actor: &Actor<'_>,
    id: i64,
    expected: Expected,
    input: UpdateAd,
) -> ApiResult<AdView> {
    let mut v = Validator::default();
    v.text_if(input.title.as_ref(), "title", 200)
        .code_if(input.placement.as_ref(), "placement");
    if let Some(url) = &input.image_url {
        check_url(&mut v, url, "image_url", true);
    }
    if let Some(url) = &input.link_url {
        check_url(&mut v, url, "link_url", false);
    }
    v.finish()?;
    let txn = state.db.begin().await?;
    let current = find_or_404::<ad::Entity>(&txn, id, RESOURCE).await?;
    let starts_at = input.starts_at.unwrap_or(current.starts_at);
    let ends_at = input.ends_at.unwrap_or(current.ends_at);
    let mut v = Validator::default();
    check_window(&mut v, starts_at, ends_at);
    v.finish()?;
    let changes = ad::ActiveModel {
        title: set_if(trimmed(input.title.as_ref())),
        image_url: set_if(input.image_url),
        link_url: set_if(input.link_url),
        placement: set_if(input.placement),
        sort_order: set_if(input.sort_order),
        starts_at: set_if(input.starts_at),
        ends_at: set_if(input.ends_at),
        active: set_if(input.active),
        updated_at: Set(Utc::now()),
        ..Default::default()
    };
    let columns = [ad::Column::Id, ad::Column::Version];
    update_versioned(&txn, changes, columns, id, expected, RESOURCE).await?;
    let ad = find_or_404::<ad::Entity>(&txn, id, RESOURCE).await?;
    audit(
        &txn,
        actor,
        "content.ad.updated",
        subject(id),
        json!({"placement": ad.placement, "active": ad.active, "version": ad.version}),
    )
    .await?;
    txn.commit().await?;
    Ok(ad.into())
}

pub async fn delete_ad(state: &AppState, actor: &Actor<'_>, id: i64) -> ApiResult<()> {
    let txn = state.db.begin().await?;
    let ad = find_or_404::<ad::Entity>(&txn, id, RESOURCE).await?;
    ad::Entity::delete_by_id(id).exec(&txn).await?;
    audit(
        &txn,
        actor,
        "content.ad.deleted",
        subject(id),
        json!({"placement": ad.placement, "title": ad.title}),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, Utc};

    use super::*;

    fn ad(starts: Option<i64>, ends: Option<i64>, now: DateTime<Utc>) -> ad::Model {
        ad::Model {
            id: 1,
            version: 1,
            created_at: now,
            updated_at: now,
            title: "t".into(),
            image_url: "/i.png".into(),
            link_url: String::new(),
            placement: "home_top".into(),
            sort_order: 0,
            starts_at: starts.map(|s| now + Duration::seconds(s)),
            ends_at: ends.map(|s| now + Duration::seconds(s)),
            active: true,
        }
    }

    #[test]
    fn window_includes_its_start_and_excludes_its_end() {
        let now = Utc::now();
        assert!(is_showing(&ad(Some(0), Some(1), now), now));
        assert!(!is_showing(&ad(Some(-1), Some(0), now), now));
        assert!(!is_showing(&ad(Some(1), None, now), now));
        assert!(is_showing(&ad(None, None, now), now));
    }
}
