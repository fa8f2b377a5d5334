use axum::Json;
use axum::extract::State;

use crate::app::AppState;
use crate::platform::routing::PermissionInfo;

/// Every permission a role can grant, generated from the routes that require them.
#[utoipa::path(get, path = "/permissions", tag = "roles", responses((status = 200, body = Vec<PermissionInfo>)))]
pub async fn list_permissions(State(state): State<AppState>) -> Json<Vec<PermissionInfo>> {
    Json(state.permissions.clone())
}
