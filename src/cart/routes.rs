//! `/api/v1/cart`: open to guests (by `Cart-Token`) and customers alike.

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use utoipa_axum::routes;

use super::model::{AddLine, CartView, MergeCart, SetCoupons, SetQuantity, ShippingChoice};
use super::service::{self, Owner};
use crate::app::AppState;
use crate::identity::guard::{self, CurrentCustomer};
use crate::platform::extract::{self, Query};
use crate::platform::routing::{Access, ApiRouter};
use crate::platform::{ApiError, ApiResult};

/// The header a guest sends its cart token in.
pub const CART_TOKEN: &str = "cart-token";

pub fn storefront_router() -> ApiRouter {
    ApiRouter::new()
        .route(routes!(create_cart), Access::Public)
        .route(routes!(get_cart), Access::Public)
        .route(routes!(add_line), Access::Public)
        .route(routes!(set_line, remove_line), Access::Public)
        .route(routes!(set_coupons), Access::Public)
        .route(routes!(merge_cart), Access::Customer)
}

/// The cart a request means: the signed-in customer's, or the guest cart its `Cart-Token`
/// names. A customer who still sends a guest token gets that cart merged into theirs, so
/// a cart filled before signing in (by any sign-in method) follows the customer.
pub struct CartOwner(pub Owner);

impl FromRequestParts<AppState> for CartOwner {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let token = parts
            .headers
            .get(CART_TOKEN)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        let customer = guard::optional_customer(state, &parts.method, &parts.headers).await?;
        match (customer, token) {
            (Some(customer), token) => {
                if let Some(token) = token {
                    service::merge(state, customer.customer_id, &token).await?;
                }
                Ok(Self(Owner::Customer(customer.customer_id)))
            }
            (None, Some(token)) => Ok(Self(Owner::Guest(token))),
            (None, None) => Err(ApiError::bad_request(
                "sign in, or send the guest cart's token in the Cart-Token header",
            )
            .with_code("cart-token-required")),
        }
    }
}

/// Starts a guest cart; keep its `token` and send it as `Cart-Token`.
#[utoipa::path(post, path = "/carts", tag = "cart",
    responses((status = 201, body = CartView)))]
pub async fn create_cart(State(state): State<AppState>) -> ApiResult<(StatusCode, Json<CartView>)> {
    Ok((
        StatusCode::CREATED,
        Json(service::create_guest(&state).await?),
    ))
}

/// The cart with prices, applied promotions and, for a region, shipping options.
#[utoipa::path(get, path = "/cart", tag = "cart", params(ShippingChoice,
        ("Cart-Token" = Option<String>, Header, description = "A guest cart's token")),
    responses((status = 200, body = CartView), (status = 404, description = "No such guest cart")))]
pub async fn get_cart(
    State(state): State<AppState>,
    CartOwner(owner): CartOwner,
    Query(choice): Query<ShippingChoice>,
) -> ApiResult<Json<CartView>> {
    Ok(Json(service::view(&state, &owner, &choice).await?))
}

/// Adds units of a SKU (on top of what the cart holds).
#[utoipa::path(post, path = "/cart/lines", tag = "cart", request_body = AddLine,
    responses((status = 200, body = CartView), (status = 409, description = "Not on sale, or the cart is full"),
        (status = 422, description = "Unknown SKU or bad quantity")))]
pub async fn add_line(
    State(state): State<AppState>,
    CartOwner(owner): CartOwner,
    extract::Json(body): extract::Json<AddLine>,
) -> ApiResult<Json<CartView>> {
    service::add_line(&state, &owner, body.sku_id, body.quantity).await?;
    Ok(Json(
        service::view(&state, &owner, &ShippingChoice::default()).await?,
    ))
}

/// Sets a line's quantity.
#[utoipa::path(put, path = "/cart/lines/{sku_id}", tag = "cart", params(("sku_id" = i64, Path)),
    request_body = SetQuantity,
    responses((status = 200, body = CartView), (status = 404, description = "Not in the cart")))]
pub async fn set_line(
    State(state): State<AppState>,
    CartOwner(owner): CartOwner,
    Path(sku_id): Path<i64>,
    extract::Json(body): extract::Json<SetQuantity>,
) -> ApiResult<Json<CartView>> {
    service::set_line(&state, &owner, sku_id, body.quantity).await?;
    Ok(Json(
        service::view(&state, &owner, &ShippingChoice::default()).await?,
    ))
}

#[utoipa::path(delete, path = "/cart/lines/{sku_id}", tag = "cart", params(("sku_id" = i64, Path)),
    responses((status = 200, body = CartView), (status = 404, description = "Not in the cart")))]
pub async fn remove_line(
    State(state): State<AppState>,
    CartOwner(owner): CartOwner,
    Path(sku_id): Path<i64>,
) -> ApiResult<Json<CartView>> {
    service::remove_line(&state, &owner, sku_id).await?;
    Ok(Json(
        service::view(&state, &owner, &ShippingChoice::default()).await?,
    ))
}

/// Replaces the coupon codes; the answer says which ones apply and why others do not.
#[utoipa::path(put, path = "/cart/coupons", tag = "cart", request_body = SetCoupons,
    responses((status = 200, body = CartView)))]
pub async fn set_coupons(
    State(state): State<AppState>,
    CartOwner(owner): CartOwner,
    extract::Json(body): extract::Json<SetCoupons>,
) -> ApiResult<Json<CartView>> {
    service::set_coupons(&state, &owner, &body.codes).await?;
    Ok(Json(
        service::view(&state, &owner, &ShippingChoice::default()).await?,
    ))
}

/// Moves a guest cart into the signed-in customer's cart (also done automatically when a
/// signed-in request carries `Cart-Token`).
#[utoipa::path(post, path = "/cart/merge", tag = "cart", request_body = MergeCart,
    responses((status = 200, body = CartView)))]
pub async fn merge_cart(
    State(state): State<AppState>,
    CurrentCustomer(customer): CurrentCustomer,
    extract::Json(body): extract::Json<MergeCart>,
) -> ApiResult<Json<CartView>> {
    service::merge(&state, customer.customer_id, &body.token).await?;
    let owner = Owner::Customer(customer.customer_id);
    Ok(Json(
        service::view(&state, &owner, &ShippingChoice::default()).await?,
    ))
}
