//! The content directory tree.

use std::collections::HashMap;

use chrono::Utc;
use sea_orm::ActiveValue::Set;
use sea_orm::{ConnectionTrait, EntityTrait};
use serde_json::json;

use super::{check_url, set_if, trimmed};
use crate::app::AppState;
use crate::content::entity::{directory, page};
use crate::content::model::{
    CreateDirectory, DirectoryFilter, DirectoryNode, DirectoryView, PageLink, UpdateDirectory,
};
use crate::content::store;
use crate::identity::service::{Actor, audit};
use crate::platform::concurrency::{Expected, update_versioned};
use crate::platform::crud::find_or_404;
use crate::platform::error::Validator;
use crate::platform::list::{ListParams, Page, SortFields};
use crate::platform::{ApiError, ApiResult};

const RESOURCE: &str = "directory";

const SORT: SortFields<directory::Column> = SortFields(&[
    ("name", directory::Column::Name),
    ("slug", directory::Column::Slug),
    ("sort_order", directory::Column::SortOrder),
    ("created_at", directory::Column::CreatedAt),
]);

fn subject(id: i64) -> Option<String> {
    Some(format!("content_directory:{id}"))
}

pub async fn list_directories(
    state: &AppState,
    list: &ListParams,
    filter: &DirectoryFilter,
) -> ApiResult<Page<DirectoryView>> {
    let page = list
        .spec(&SORT)?
        .fetch(
            state.db.reader(),
            store::directory_query(filter),
            directory::Column::Id,
        )
        .await?;
    Ok(page.map(DirectoryView::from))
}

pub async fn get_directory(state: &AppState, id: i64) -> ApiResult<DirectoryView> {
    Ok(
        find_or_404::<directory::Entity>(state.db.reader(), id, RESOURCE)
            .await?
            .into(),
    )
}

/// The parent must exist and hold pages, not be a link.
async fn check_parent(db: &impl ConnectionTrait, parent_id: i64) -> ApiResult<()> {
    match store::find_directory(db, parent_id).await? {
        None => Err(ApiError::invalid(
            "parent_id",
            format!("directory {parent_id} does not exist"),
        )),
        Some(parent) if parent.link_url.is_some() => Err(ApiError::invalid(
            "parent_id",
            format!("directory {parent_id} is a link and cannot hold directories"),
        )),
        Some(_) => Ok(()),
    }
}

pub async fn create_directory(
    state: &AppState,
    actor: &Actor<'_>,
    input: CreateDirectory,
) -> ApiResult<DirectoryView> {
    let mut v = Validator::default();
    v.text(&input.name, "name", 100);
    v.slug(&input.slug, "slug");
    if let Some(url) = &input.link_url {
        check_url(&mut v, url, "link_url", true);
    }
    v.finish()?;
    let txn = state.db.begin().await?;
    if let Some(parent_id) = input.parent_id {
        check_parent(&txn, parent_id).await?;
    }
    let now = Utc::now();
    let dir = directory::Entity::insert(directory::ActiveModel {
        version: Set(1),
        parent_id: Set(input.parent_id),
        name: Set(input.name.trim().to_owned()),
        slug: Set(input.slug),
        sort_order: Set(input.sort_order),
        link_url: Set(input.link_url),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec_with_returning(&txn)
    .await?;
    audit(
        &txn,
        actor,
        "content.directory.created",
        subject(dir.id),
        json!({"slug": dir.slug, "parent_id": dir.parent_id}),
    )
    .await?;
    txn.commit().await?;
    Ok(dir.into())
}

/// Edits or moves a directory; a move under itself or its own subtree is refused, and a
/// directory holding pages cannot become a link.
pub async fn update_directory(
    state: &AppState,
    actor: &Actor<'_>,
    id: i64,
    expected: Expected,
    input: UpdateDirectory,
) -> ApiResult<DirectoryView> {
    let mut v = Validator::default();
    v.text_if(input.name.as_ref(), "name", 100);
    if let Some(slug) = &input.slug {
        v.slug(slug, "slug");
    }
    if let Some(Some(url)) = &input.link_url {
        check_url(&mut v, url, "link_url", true);
    }
    v.finish()?;
    let txn = state.db.begin().await?;
    find_or_404::<directory::Entity>(&txn, id, RESOURCE).await?;
    if let Some(Some(parent_id)) = input.parent_id {
        check_parent(&txn, parent_id).await?;
        let ancestors = store::directory_with_ancestors(&txn, parent_id).await?;
        if ancestors.iter().any(|d| d.id == id) {
            return Err(ApiError::invalid(
                "parent_id",
                "a directory cannot be moved under itself or its own subtree",
            ));
        }
    }
    if let Some(Some(_)) = &input.link_url
        && (store::count_pages_in(&txn, id).await? > 0
            || store::count_child_directories(&txn, id).await? > 0)
    {
        return Err(ApiError::invalid(
            "link_url",
            "a directory that holds pages or directories cannot become a link",
        ));
    }
    let changes = directory::ActiveModel {
        parent_id: set_if(input.parent_id),
        name: set_if(trimmed(input.name.as_ref())),
        slug: set_if(input.slug),
        sort_order: set_if(input.sort_order),
        link_url: set_if(input.link_url),
        updated_at: Set(Utc::now()),
        ..Default::default()
    };
    let columns = [directory::Column::Id, directory::Column::Version];
    update_versioned(&txn, changes, columns, id, expected, RESOURCE).await?;
    let dir = find_or_404::<directory::Entity>(&txn, id, RESOURCE).await?;
    audit(
        &txn,
        actor,
        "content.directory.updated",
        subject(id),
        json!({"slug": dir.slug, "parent_id": dir.parent_id, "version": dir.version}),
    )
    .await?;
    txn.commit().await?;
    Ok(dir.into())
}

/// Only an empty directory may go: its pages and sub-directories must move or go first.
pub async fn delete_directory(state: &AppState, actor: &Actor<'_>, id: i64) -> ApiResult<()> {
    let txn = state.db.begin().await?;
    let dir = find_or_404::<directory::Entity>(&txn, id, RESOURCE).await?;
    if store::count_child_directories(&txn, id).await? > 0
        || store::count_pages_in(&txn, id).await? > 0
    {
        return Err(ApiError::conflict(
            "directory-not-empty",
            format!("directory {id} still holds pages or directories; move or delete them first"),
        ));
    }
    directory::Entity::delete_by_id(id).exec(&txn).await?;
    audit(
        &txn,
        actor,
        "content.directory.deleted",
        subject(id),
        json!({"slug": dir.slug}),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// The storefront's content tree with the titles and slugs of published pages.
pub async fn directory_tree(state: &AppState) -> ApiResult<Vec<DirectoryNode>> {
    let db = state.db.reader();
    let dirs = store::all_directories(db).await?;
    let mut pages: HashMap<i64, Vec<PageLink>> = HashMap::new();
    for p in store::published_pages_in_directories(db).await? {
        if let Some(dir) = p.directory_id {
            pages.entry(dir).or_default().push(link(p));
        }
    }
    let mut children: HashMap<Option<i64>, Vec<directory::Model>> = HashMap::new();
    for dir in dirs {
        children.entry(dir.parent_id).or_default().push(dir);
    }
    fn build(
        parent: Option<i64>,
        children: &mut HashMap<Option<i64>, Vec<directory::Model>>,
        pages: &mut HashMap<i64, Vec<PageLink>>,
    ) -> Vec<DirectoryNode> {
        children
            .remove(&parent)
            .unwrap_or_default()
            .into_iter()
            .map(|d| DirectoryNode {
                children: build(Some(d.id), children, pages),
                pages: pages.remove(&d.id).unwrap_or_default(),
                id: d.id,
                name: d.name,
                slug: d.slug,
                link_url: d.link_url,
            })
            .collect()
    }
    Ok(build(None, &mut children, &mut pages))
}

fn link(p: page::Model) -> PageLink {
    PageLink {
        title: p.title,
        slug: p.slug,
    }
}
