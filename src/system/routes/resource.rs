//! The five admin actions of a reference-data resource (list, get, create, update, delete),
//! written once. Each generated handler is thin: parse, call the service, respond.

/// Generates `mod $module` with `list`, `get`, `create`, `update`, `delete` handlers and a
/// `router(read, write)` that registers them with their permissions.
macro_rules! resource_routes {
    (
        mod $module:ident {
            tag: $tag:tt,
            resource: $resource:tt,
            collection: $collection:tt,
            item: $item:tt,
            entity: $entity:path,
            view: $view:ident,
            filter: $filter:ident => $query:path,
            sort: [$(($field:tt, $column:expr)),* $(,)?],
            present: $present:path,
            create: $create:ident => $create_fn:path,
            update: $update:ident => $update_fn:path,
            delete: $delete_fn:path $(,)?
        }
    ) => {
        pub mod $module {
            use axum::extract::{Path, State};
            use axum::http::{StatusCode, header};
            use axum::response::IntoResponse;

            use crate::app::AppState;
            use crate::platform::concurrency::{Expected, IfMatch, Tagged};
            use crate::platform::crud::find_or_404;
            use crate::platform::extract::{Json, Query};
            use crate::platform::list::{ListParams, Page, SortFields};
            use crate::platform::routing::{Access, ApiRouter, Permission};
            use crate::platform::{ApiError, ApiResult};
            use crate::system::model::*;

            type Entity = $entity;
            type Column = <Entity as sea_orm::EntityTrait>::Column;

            const SORT: SortFields<Column> = SortFields(&[$(($field, $column)),*]);

            pub fn router(read: Permission, write: Permission) -> ApiRouter {
                ApiRouter::new()
                    .route(utoipa_axum::routes!(list), Access::Permission(read))
                    .route(utoipa_axum::routes!(get), Access::Permission(read))
                    .route(utoipa_axum::routes!(create), Access::Permission(write))
                    .route(utoipa_axum::routes!(update), Access::Permission(write))
                    .route(utoipa_axum::routes!(delete), Access::Permission(write))
            }

            #[utoipa::path(get, path = $collection, tag = $tag,
                operation_id = concat!("list_", stringify!($module)),
                params(ListParams, $filter),
                responses((status = 200, body = Page<$view>)))]
            pub async fn list(
                State(state): State<AppState>,
                Query(list): Query<ListParams>,
                Query(filter): Query<$filter>,
            ) -> ApiResult<axum::Json<Page<$view>>> {
                let db = state.db.reader();
                let page = list.spec(&SORT)?.fetch(db, $query(&filter), Column::Id).await?;
                let Page { items, total, page, per_page } = page;
                let items = $present(db, items).await?;
                Ok(axum::Json(Page { items, total, page, per_page }))
            }

            #[utoipa::path(get, path = $item, tag = $tag,
                operation_id = concat!("get_", stringify!($module)),
                params(("id" = i64, Path)),
                responses((status = 200, body = $view, headers(("ETag" = String)))))]
            pub async fn get(
                State(state): State<AppState>,
                Path(id): Path<i64>,
            ) -> ApiResult<Tagged<$view>> {
                let db = state.db.reader();
                let row = find_or_404::<Entity>(db, id, $resource).await?;
                let view: $view = $present(db, vec![row])
                    .await?
                    .pop()
                    .ok_or_else(|| ApiError::not_found($resource, id))?;
                Ok(Tagged(view.version, view))
            }

            #[utoipa::path(post, path = $collection, tag = $tag,
                operation_id = concat!("create_", stringify!($module)),
                request_body = $create,
                responses((status = 201, body = $view, headers(("Location" = String), ("ETag" = String)))))]
            pub async fn create(
                State(state): State<AppState>,
                Json(body): Json<$create>,
            ) -> ApiResult<impl IntoResponse> {
                let view = $create_fn(&state, body).await?;
                let location = format!(concat!("/api/v1/admin", $collection, "/{}"), view.id);
                Ok((StatusCode::CREATED, [(header::LOCATION, location)], Tagged(view.version, view)))
            }

            /// A partial update; name the version you edited with `If-Match` or `version`.
            #[utoipa::path(patch, path = $item, tag = $tag,
                operation_id = concat!("update_", stringify!($module)),
                params(("id" = i64, Path)),
                request_body = $update,
                responses((status = 200, body = $view), (status = 409, description = "Stale version"),
                    (status = 412, description = "If-Match does not match"),
                    (status = 428, description = "No version given")))]
            pub async fn update(
                State(state): State<AppState>,
                Path(id): Path<i64>,
                if_match: IfMatch,
                Json(body): Json<$update>,
            ) -> ApiResult<Tagged<$view>> {
                let expected = Expected::from(if_match, body.version)?;
                let view = $update_fn(&state, id, expected, body).await?;
                Ok(Tagged(view.version, view))
            }

            #[utoipa::path(delete, path = $item, tag = $tag,
                operation_id = concat!("delete_", stringify!($module)),
                params(("id" = i64, Path)),
                responses((status = 204, description = "Deleted"),
                    (status = 409, description = "Still in use")))]
            pub async fn delete(
                State(state): State<AppState>,
                Path(id): Path<i64>,
            ) -> ApiResult<StatusCode> {
                $delete_fn(&state, id).await?;
                Ok(StatusCode::NO_CONTENT)
            }
        }
    };
}

pub(crate) use resource_routes;
