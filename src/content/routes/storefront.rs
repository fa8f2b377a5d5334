//! Public reads of content: published pages, the content tree, showing ads, menus.

use axum::Json;
use axum::extract::{Path, State};

use crate::app::AppState;
use crate::content::model::{DirectoryNode, PlacementQuery, PublicAd, PublicMenu, PublicPage};
use crate::content::service::{ads, directories, menus, pages};
use crate::platform::ApiResult;
use crate::platform::extract::Query;

/// A published page; drafts answer 404 like pages that do not exist.
#[utoipa::path(get, path = "/pages/{slug}", tag = "storefront",
    operation_id = "storefront_get_page",
    params(("slug" = String, Path)),
    responses((status = 200, body = PublicPage), (status = 404, description = "No published page")))]
pub async fn get_page_by_slug(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> ApiResult<Json<PublicPage>> {
    Ok(Json(pages::published_page(&state, &slug).await?))
}

/// The content tree with the titles and slugs of its published pages.
#[utoipa::path(get, path = "/content/directories", tag = "storefront",
    operation_id = "storefront_list_content_directories",
    responses((status = 200, body = Vec<DirectoryNode>)))]
pub async fn get_content_tree(
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<DirectoryNode>>> {
    Ok(Json(directories::directory_tree(&state).await?))
}

/// Active ads inside their validity window at this second, in display order.
#[utoipa::path(get, path = "/ads", tag = "storefront",
    operation_id = "storefront_list_ads",
    params(PlacementQuery),
    responses((status = 200, body = Vec<PublicAd>)))]
pub async fn list_showing_ads(
    State(state): State<AppState>,
    Query(query): Query<PlacementQuery>,
) -> ApiResult<Json<Vec<PublicAd>>> {
    Ok(Json(
        ads::showing_ads(&state, query.placement.as_deref()).await?,
    ))
}

/// A menu with page and directory items resolved to addresses.
#[utoipa::path(get, path = "/menus/{code}", tag = "storefront",
    operation_id = "storefront_get_menu",
    params(("code" = String, Path)),
    responses((status = 200, body = PublicMenu), (status = 404, description = "No such menu")))]
pub async fn get_menu_by_code(
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> ApiResult<Json<PublicMenu>> {
    Ok(Json(menus::public_menu(&state, &code).await?))
}
