//! Navigation menus: ordered items, one level of nesting, targets that exist.

use std::collections::HashMap;

use chrono::Utc;
use sea_orm::ActiveValue::Set;
use sea_orm::{ConnectionTrait, EntityTrait};
use serde_json::json;

use super::{check_url, set_if, trimmed};
use crate::app::AppState;
use crate::catalog::link_targets;
use crate::content::entity::{menu, menu_item};
use crate::content::model::{
    CreateMenu, MenuFilter, MenuItemInput, MenuItemKind, MenuItemView, MenuView, PublicMenu,
    PublicMenuItem, ReplaceMenuItems, UpdateMenu,
};
use crate::content::store::{self, NewMenuItem};
use crate::identity::service::{Actor, audit};
use crate::platform::concurrency::{Expected, update_versioned};
use crate::platform::crud::find_or_404;
use crate::platform::error::Validator;
use crate::platform::list::{ListParams, Page, SortFields};
use crate::platform::{ApiError, ApiResult};

const RESOURCE: &str = "menu";

const SORT: SortFields<menu::Column> = SortFields(&[
    ("code", menu::Column::Code),
    ("name", menu::Column::Name),
    ("created_at", menu::Column::CreatedAt),
]);

fn subject(id: i64) -> Option<String> {
    Some(format!("content_menu:{id}"))
}

/// Menu views with their items nested, in one item query for all of them.
async fn present(db: &impl ConnectionTrait, menus: Vec<menu::Model>) -> ApiResult<Vec<MenuView>> {
    let ids = menus.iter().map(|m| m.id).collect();
    let mut by_menu: HashMap<i64, Vec<menu_item::Model>> = HashMap::new();
    for item in store::menu_items(db, ids).await? {
        by_menu.entry(item.menu_id).or_default().push(item);
    }
    Ok(menus
        .into_iter()
        .map(|m| {
            let items = nest(by_menu.remove(&m.id).unwrap_or_default());
            MenuView::new(m, items)
        })
        .collect())
}

/// Top-level items with their children, both in the order the rows came in.
fn nest(items: Vec<menu_item::Model>) -> Vec<MenuItemView> {
    let (top, nested): (Vec<_>, Vec<_>) = items.into_iter().partition(|i| i.parent_id.is_none());
    let mut children: HashMap<i64, Vec<MenuItemView>> = HashMap::new();
    for item in nested {
        if let Some(parent) = item.parent_id {
            children.entry(parent).or_default().push(item.into());
        }
    }
    top.into_iter()
        .map(|item| {
            let id = item.id;
            let mut view = MenuItemView::from(item);
            view.children = children.remove(&id).unwrap_or_default();
            view
        })
        .collect()
}

async fn menu_view(db: &impl ConnectionTrait, menu: menu::Model) -> ApiResult<MenuView> {
    let id = menu.id;
    present(db, vec![menu])
        .await?
        .pop()
        .ok_or_else(|| ApiError::not_found(RESOURCE, id))
}

pub async fn list_menus(
    state: &AppState,
    list: &ListParams,
    filter: &MenuFilter,
) -> ApiResult<Page<MenuView>> {
    let db = state.db.reader();
    let page = list
        .spec(&SORT)?
        .fetch(db, store::menu_query(filter), menu::Column::Id)
        .await?;
    let Page {
        items,
        total,
        page,
        per_page,
    } = page;
    let items = present(db, items).await?;
    Ok(Page {
        items,
        total,
        page,
        per_page,
    })
}

pub async fn get_menu(state: &AppState, id: i64) -> ApiResult<MenuView> {
    let db = state.db.reader();
    let menu = find_or_404::<menu::Entity>(db, id, RESOURCE).await?;
    menu_view(db, menu).await
}

pub async fn create_menu(
    state: &AppState,
    actor: &Actor<'_>,
    input: CreateMenu,
) -> ApiResult<MenuView> {
    Validator::default()
        .code(&input.code, "code")
        .text(&input.name, "name", 100)
        .finish()?;
    let txn = state.db.begin().await?;
    let now = Utc::now();
    let menu = menu::Entity::insert(menu::ActiveModel {
        version: Set(1),
        code: Set(input.code),
        name: Set(input.name.trim().to_owned()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec_with_returning(&txn)
    .await?;
    audit(
        &txn,
        actor,
        "content.menu.created",
        subject(menu.id),
        json!({"code": menu.code}),
    )
    .await?;
    txn.commit().await?;
    Ok(MenuView::new(menu, Vec::new()))
}

pub async fn update_menu(
    state: &AppState,
    actor: &Actor<'_>,
    id: i64,
    expected: Expected,
    input: UpdateMenu,
) -> ApiResult<MenuView> {
    let mut v = Validator::default();
    v.code_if(input.code.as_ref(), "code")
        .text_if(input.name.as_ref(), "name", 100);
    v.finish()?;
    let txn = state.db.begin().await?;
    let changes = menu::ActiveModel {
        code: set_if(input.code),
        name: set_if(trimmed(input.name.as_ref())),
        updated_at: Set(Utc::now()),
        ..Default::default()
    };
    let columns = [menu::Column::Id, menu::Column::Version];
    update_versioned(&txn, changes, columns, id, expected, RESOURCE).await?;
    let menu = find_or_404::<menu::Entity>(&txn, id, RESOURCE).await?;
    audit(
        &txn,
        actor,
        "content.menu.updated",
        subject(id),
        json!({"code": menu.code, "version": menu.version}),
    )
    .await?;
    let view = menu_view(&txn, menu).await?;
    txn.commit().await?;
    Ok(view)
}

pub async fn delete_menu(state: &AppState, actor: &Actor<'_>, id: i64) -> ApiResult<()> {
    let txn = state.db.begin().await?;
    let menu = find_or_404::<menu::Entity>(&txn, id, RESOURCE).await?;
    store::delete_menu_items(&txn, id).await?;
    menu::Entity::delete_by_id(id).exec(&txn).await?;
    audit(
        &txn,
        actor,
        "content.menu.deleted",
        subject(id),
        json!({"code": menu.code}),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Checks one item's own fields; `path` is its position, e.g. `items[2].children[0]`.
fn check_item(v: &mut Validator, item: &MenuItemInput, path: &str, nested: bool) {
    v.text(&item.label, &format!("{path}.label"), 100);
    match item.kind {
        MenuItemKind::Url => {
            let url = item.url.as_deref().unwrap_or_default();
            check_url(v, url, &format!("{path}.url"), true);
            v.check(
                item.target_id.is_none(),
                &format!("{path}.target_id"),
                "a url item has no target_id",
            );
        }
        MenuItemKind::Page
        | MenuItemKind::Directory
        | MenuItemKind::Category
        | MenuItemKind::Product => {
            v.check(
                item.target_id.is_some(),
                &format!("{path}.target_id"),
                &format!("must name the {}", item.kind.as_str()),
            );
            v.check(
                item.url.is_none(),
                &format!("{path}.url"),
                "only a url item has a url",
            );
        }
    }
    v.check(
        !nested || item.children.is_empty(),
        &format!("{path}.children"),
        "menus nest one level deep",
    );
}

/// Every page, directory, category and product an item points at must exist; the error
/// names the item.
async fn check_targets(
    db: &impl ConnectionTrait,
    items: &[(String, &MenuItemInput)],
) -> ApiResult<()> {
    let ids = |kind| {
        items
            .iter()
            .filter(|(_, i)| i.kind == kind)
            .filter_map(|(_, i)| i.target_id)
            .collect::<Vec<_>>()
    };
    let pages: Vec<i64> = store::pages_by_ids(db, ids(MenuItemKind::Page))
        .await?
        .into_iter()
        .map(|p| p.id)
        .collect();
    let dirs: Vec<i64> = store::directories_by_ids(db, ids(MenuItemKind::Directory))
        .await?
        .into_iter()
        .map(|d| d.id)
        .collect();
    let categories: Vec<i64> = link_targets::category_slugs(db, ids(MenuItemKind::Category), false)
        .await?
        .into_keys()
        .collect();
    let products: Vec<i64> = link_targets::product_slugs(db, ids(MenuItemKind::Product), false)
        .await?
        .into_keys()
        .collect();
    let mut v = Validator::default();
    for (path, item) in items {
        let (known, what) = match item.kind {
            MenuItemKind::Url => continue,
            MenuItemKind::Page => (&pages, "page"),
            MenuItemKind::Directory => (&dirs, "directory"),
            MenuItemKind::Category => (&categories, "category"),
            MenuItemKind::Product => (&products, "product"),
        };
        if let Some(id) = item.target_id {
            v.check(
                known.contains(&id),
                &format!("{path}.target_id"),
                &format!("{what} {id} does not exist"),
            );
        }
    }
    v.finish()
}

/// Replaces a menu's items as a whole, in one transaction.
pub async fn replace_items(
    state: &AppState,
    actor: &Actor<'_>,
    id: i64,
    input: ReplaceMenuItems,
) -> ApiResult<MenuView> {
    let mut v = Validator::default();
    let mut flat = Vec::new();
    for (i, item) in input.items.iter().enumerate() {
        let path = format!("items[{i}]");
        check_item(&mut v, item, &path, false);
        for (j, child) in item.children.iter().enumerate() {
            let path = format!("{path}.children[{j}]");
            check_item(&mut v, child, &path, true);
            flat.push((path, child));
        }
        flat.push((path, item));
    }
    v.finish()?;
    let txn = state.db.begin().await?;
    let menu = find_or_404::<menu::Entity>(&txn, id, RESOURCE).await?;
    check_targets(&txn, &flat).await?;
    let count = flat.len();
    store::delete_menu_items(&txn, id).await?;
    let now = Utc::now();
    for item in &input.items {
        let parent = store::insert_menu_item(&txn, id, new_item(item, None), now).await?;
        for child in &item.children {
            store::insert_menu_item(&txn, id, new_item(child, Some(parent.id)), now).await?;
        }
    }
    audit(
        &txn,
        actor,
        "content.menu.items_replaced",
        subject(id),
        json!({"code": menu.code, "items": count}),
    )
    .await?;
    let view = menu_view(&txn, menu).await?;
    txn.commit().await?;
    Ok(view)
}

fn new_item(item: &MenuItemInput, parent_id: Option<i64>) -> NewMenuItem {
    NewMenuItem {
        parent_id,
        label: item.label.trim().to_owned(),
        kind: item.kind.as_str(),
        url: item.url.clone(),
        target_id: item.target_id,
        sort_order: item.sort_order,
    }
}

/// A menu for the storefront: page, directory, category and product items become
/// addresses; items whose target is unpublished, hidden, off sale or gone (and their
/// children) are left out.
pub async fn public_menu(state: &AppState, code: &str) -> ApiResult<PublicMenu> {
    let db = state.db.reader();
    let menu = store::menu_by_code(db, code)
        .await?
        .ok_or_else(|| ApiError::not_found(RESOURCE, code))?;
    let items = store::menu_items(db, vec![menu.id]).await?;
    let targets = |kind: MenuItemKind| {
        items
            .iter()
            .filter(|i| i.kind == kind.as_str())
            .filter_map(|i| i.target_id)
            .collect::<Vec<_>>()
    };
    let pages: HashMap<i64, String> = store::pages_by_ids(db, targets(MenuItemKind::Page))
        .await?
        .into_iter()
        .filter(|p| p.published)
        .map(|p| (p.id, p.slug))
        .collect();
    let dirs: HashMap<i64, (String, Option<String>)> =
        store::directories_by_ids(db, targets(MenuItemKind::Directory))
            .await?
            .into_iter()
            .map(|d| (d.id, (d.slug, d.link_url)))
            .collect();
    let categories =
        link_targets::category_slugs(db, targets(MenuItemKind::Category), true).await?;
    let products = link_targets::product_slugs(db, targets(MenuItemKind::Product), true).await?;
    let resolve = |item: MenuItemView| -> Option<PublicMenuItem> {
        let (url, slug) = match item.kind {
            MenuItemKind::Category => {
                let slug = categories.get(&item.target_id?)?.clone();
                (format!("/categories/{slug}"), Some(slug))
            }
            MenuItemKind::Product => {
                let slug = products.get(&item.target_id?)?.clone();
                (format!("/products/{slug}"), Some(slug))
            }
            MenuItemKind::Url => (item.url?, None),
            MenuItemKind::Page => {
                let slug = pages.get(&item.target_id?)?.clone();
                (format!("/pages/{slug}"), Some(slug))
            }
            MenuItemKind::Directory => {
                let (slug, link) = dirs.get(&item.target_id?)?.clone();
                (
                    link.unwrap_or_else(|| format!("/content/{slug}")),
                    Some(slug),
                )
            }
        };
        Some(PublicMenuItem {
            label: item.label,
            kind: item.kind,
            url,
            slug,
            children: Vec::new(),
        })
    };
    let items = nest(items)
        .into_iter()
        .filter_map(|mut item| {
            let children = std::mem::take(&mut item.children);
            let mut public = resolve(item)?;
            public.children = children.into_iter().filter_map(&resolve).collect();
            Some(public)
        })
        .collect();
    Ok(PublicMenu {
        code: menu.code,
        name: menu.name,
        items,
    })
}
