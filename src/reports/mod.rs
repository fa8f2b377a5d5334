//! Reports: the back office's dashboard.

pub mod dashboard;

use axum::Json;
use axum::extract::State;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::platform::ApiResult;
use crate::platform::routing::{Access, ApiRouter, Permission};

pub const DASHBOARD_READ: Permission = Permission::new(
    "reports.dashboard.read",
    "View the dashboard's shop-wide figures",
);

/// Routes under `/api/v1/admin`.
pub fn admin_router() -> ApiRouter {
    ApiRouter::new().route(routes!(get_dashboard), Access::Permission(DASHBOARD_READ))
}

/// Customers, orders, products and stock at a glance, with the latest reviews and
/// feedback.
#[utoipa::path(get, path = "/dashboard", tag = "reports",
    responses((status = 200, body = dashboard::Dashboard)))]
pub async fn get_dashboard(State(state): State<AppState>) -> ApiResult<Json<dashboard::Dashboard>> {
    Ok(Json(dashboard::dashboard(&state).await?))
}
