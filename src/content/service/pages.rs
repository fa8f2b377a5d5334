//! Content pages: standalone or in a directory, bodies sanitised on every write.

use chrono::Utc;
use sea_orm::ActiveValue::Set;
use sea_orm::{ConnectionTrait, EntityTrait};
use serde_json::json;

use super::{check_optional_text, set_if, trimmed};
use crate::app::AppState;
use crate::catalog::attributes;
use crate::catalog::model::{AttributeScope, AttributeValues};
use crate::content::entity::page;
use crate::content::model::{CreatePage, PageFilter, PageView, PublicPage, UpdatePage};
use crate::content::store;
use crate::identity::service::{Actor, audit};
use crate::platform::concurrency::{Expected, update_versioned};
use crate::platform::crud::find_or_404;
use crate::platform::error::Validator;
use crate::platform::html;
use crate::platform::list::{ListParams, Page, SortFields};
use crate::platform::{ApiError, ApiResult};

const RESOURCE: &str = "page";
const BODY_MAX: usize = 200_000;

const SORT: SortFields<page::Column> = SortFields(&[
    ("title", page::Column::Title),
    ("slug", page::Column::Slug),
    ("created_at", page::Column::CreatedAt),
    ("updated_at", page::Column::UpdatedAt),
]);

fn subject(id: i64) -> Option<String> {
    Some(format!("content_page:{id}"))
}

fn check_page_fields(
    v: &mut Validator,
    slug: Option<&String>,
    body: Option<&String>,
    meta_title: Option<&String>,
    meta_description: Option<&String>,
) {
    if let Some(slug) = slug {
        v.slug(slug, "slug");
    }
    if let Some(body) = body {
        v.check(
            body.len() <= BODY_MAX,
            "body",
            "must be at most 200000 bytes",
        );
    }
    check_optional_text(v, meta_title, "meta_title", 200);
    check_optional_text(v, meta_description, "meta_description", 500);
}

/// A page's directory must exist and hold pages rather than be a link.
async fn check_directory(db: &impl ConnectionTrait, directory_id: i64) -> ApiResult<()> {
    match store::find_directory(db, directory_id).await? {
        None => Err(ApiError::invalid(
            "directory_id",
            format!("directory {directory_id} does not exist"),
        )),
        Some(d) if d.link_url.is_some() => Err(ApiError::invalid(
            "directory_id",
            format!("directory {directory_id} is a link and cannot hold pages"),
        )),
        Some(_) => Ok(()),
    }
}

pub async fn list_pages(
    state: &AppState,
    list: &ListParams,
    filter: &PageFilter,
) -> ApiResult<Page<PageView>> {
    let page = list
        .spec(&SORT)?
        .fetch(
            state.db.reader(),
            store::page_query(filter),
            page::Column::Id,
        )
        .await?;
    Ok(page.map(PageView::from))
}

pub async fn get_page(state: &AppState, id: i64) -> ApiResult<PageView> {
    Ok(find_or_404::<page::Entity>(state.db.reader(), id, RESOURCE)
        .await?
        .into())
}

/// A published page by its slug; drafts are as absent as pages that never existed.
pub async fn published_page(state: &AppState, slug: &str) -> ApiResult<PublicPage> {
    let db = state.db.reader();
    let page = store::published_page_by_slug(db, slug)
        .await?
        .ok_or_else(|| ApiError::not_found(RESOURCE, slug))?;
    let attributes = attributes::values_for(db, AttributeScope::Page, page.id).await?;
    Ok(PublicPage {
        attributes,
        ..PublicPage::from(page)
    })
}

/// The page's custom attribute values, by code.
pub async fn page_attributes(state: &AppState, id: i64) -> ApiResult<AttributeValues> {
    let db = state.db.reader();
    find_or_404::<page::Entity>(db, id, RESOURCE).await?;
    attributes::values_for(db, AttributeScope::Page, id).await
}

/// Replaces the page's custom attribute values, checked against the shop-wide `page`
/// attributes.
pub async fn set_page_attributes(
    state: &AppState,
    actor: &Actor<'_>,
    id: i64,
    values: AttributeValues,
) -> ApiResult<AttributeValues> {
    let txn = state.db.begin().await?;
    find_or_404::<page::Entity>(&txn, id, RESOURCE).await?;
    attributes::set_values_for(&txn, AttributeScope::Page, id, &values).await?;
    audit(
        &txn,
        actor,
        "page_attributes_set",
        Some(format!("page:{id}")),
        json!({ "codes": values.keys().collect::<Vec<_>>() }),
    )
    .await?;
    let stored = attributes::values_for(&txn, AttributeScope::Page, id).await?;
    txn.commit().await?;
    Ok(stored)
}

pub async fn create_page(
    state: &AppState,
    actor: &Actor<'_>,
    input: CreatePage,
) -> ApiResult<PageView> {
    let mut v = Validator::default();
    v.text(&input.title, "title", 200);
    check_page_fields(
        &mut v,
        Some(&input.slug),
        Some(&input.body),
        input.meta_title.as_ref(),
        input.meta_description.as_ref(),
    );
    v.finish()?;
    let txn = state.db.begin().await?;
    if let Some(directory_id) = input.directory_id {
        check_directory(&txn, directory_id).await?;
    }
    let now = Utc::now();
    let page = page::Entity::insert(page::ActiveModel {
        version: Set(1),
        directory_id: Set(input.directory_id),
        title: Set(input.title.trim().to_owned()),
        slug: Set(input.slug),
        body: Set(html::sanitize(&input.body)),
        published: Set(input.published),
        meta_title: Set(input.meta_title),
        meta_description: Set(input.meta_description),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec_with_returning(&txn)
    .await?;
    audit(
        &txn,
        actor,
        "content.page.created",
        subject(page.id),
        json!({"slug": page.slug, "published": page.published}),
    )
    .await?;
    txn.commit().await?;
    Ok(page.into())
}

pub async fn update_page(
    state: &AppState,
    actor: &Actor<'_>,
    id: i64,
    expected: Expected,
    input: UpdatePage,
) -> ApiResult<PageView> {
    let mut v = Validator::default();
    v.text_if(input.title.as_ref(), "title", 200);
    check_page_fields(
        &mut v,
        input.slug.as_ref(),
        input.body.as_ref(),
        input.meta_title.as_ref().and_then(Option::as_ref),
        input.meta_description.as_ref().and_then(Option::as_ref),
    );
    v.finish()?;
    let txn = state.db.begin().await?;
    if let Some(Some(directory_id)) = input.directory_id {
        check_directory(&txn, directory_id).await?;
    }
    let changes = page::ActiveModel {
        directory_id: set_if(input.directory_id),
        title: set_if(trimmed(input.title.as_ref())),
        slug: set_if(input.slug),
        body: set_if(input.body.as_deref().map(html::sanitize)),
        published: set_if(input.published),
        meta_title: set_if(input.meta_title),
        meta_description: set_if(input.meta_description),
        updated_at: Set(Utc::now()),
        ..Default::default()
    };
    let columns = [page::Column::Id, page::Column::Version];
    update_versioned(&txn, changes, columns, id, expected, RESOURCE).await?;
    let page = find_or_404::<page::Entity>(&txn, id, RESOURCE).await?;
    audit(
        &txn,
        actor,
        "content.page.updated",
        subject(id),
        json!({"slug": page.slug, "published": page.published, "version": page.version}),
    )
    .await?;
    txn.commit().await?;
    Ok(page.into())
}

pub async fn delete_page(state: &AppState, actor: &Actor<'_>, id: i64) -> ApiResult<()> {
    let txn = state.db.begin().await?;
    let page = find_or_404::<page::Entity>(&txn, id, RESOURCE).await?;
    page::Entity::delete_by_id(id).exec(&txn).await?;
    audit(
        &txn,
        actor,
        "content.page.deleted",
        subject(id),
        json!({"slug": page.slug}),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}
