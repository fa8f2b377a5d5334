use axum::extract::State;

use crate::app::AppState;
use crate::identity::entity::security_log;
use crate::identity::model::{SecurityEvent, SecurityLogFilter};
use crate::identity::store;
use crate::platform::ApiResult;
use crate::platform::extract::Query;
use crate::platform::list::{ListParams, Page, SortFields};

const SORT: SortFields<security_log::Column> = SortFields(&[
    ("created_at", security_log::Column::CreatedAt),
    ("event", security_log::Column::Event),
]);

/// Logins, failures, logouts and permission changes, newest first unless sorted otherwise.
#[utoipa::path(get, path = "/security-log", tag = "security log", params(ListParams, SecurityLogFilter),
    responses((status = 200, body = Page<SecurityEvent>)))]
pub async fn list_security_log(
    State(state): State<AppState>,
    Query(mut list): Query<ListParams>,
    Query(filter): Query<SecurityLogFilter>,
) -> ApiResult<axum::Json<Page<SecurityEvent>>> {
    if list.sort.is_none() {
        list.sort = Some("-created_at".into());
    }
    let page = list
        .spec(&SORT)?
        .fetch(
            state.db.reader(),
            store::security_log_query(&filter),
            security_log::Column::Id,
        )
        .await?;
    Ok(axum::Json(page.map(SecurityEvent::from)))
}
