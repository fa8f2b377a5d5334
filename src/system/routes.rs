use crate::platform::routing::ApiRouter;
pub fn admin_router() -> ApiRouter { ApiRouter::new() }
pub fn storefront_router() -> ApiRouter { ApiRouter::new() }
