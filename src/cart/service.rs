//! Cart rules: who owns a cart, what it may hold, and its live price.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};

use super::entity::{cart, cart_line};
use super::model::{CartLineView, CartView, MAX_LINES, MAX_QUANTITY, ShippingChoice};
use crate::app::AppState;
use crate::catalog::products::purchasable::{Purchasable, purchasable};
use crate::platform::{ApiError, ApiResult};
use crate::promotions::engine::{self, CartSnapshot, PricedCart};
use crate::promotions::usage::{self, Resolved};
use crate::system::model::{ShippingOption, ShippingQuery};

/// Whose cart a request means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Customer(i64),
    Guest(String),
}

/// A cart's lines priced against the promotions in force.
pub struct Quote {
    pub items: HashMap<i64, Purchasable>,
    pub resolved: Resolved,
    pub priced: PricedCart,
    pub weight_grams: i64,
    pub requires_shipping: bool,
}

impl Quote {
    /// Why the line cannot be bought as it is, if it cannot.
    pub fn problem(&self, sku_id: i64, quantity: i64) -> Option<String> {
        let Some(item) = self.items.get(&sku_id) else {
            return Some("this product no longer exists".into());
        };
        if let Some(reason) = item.unavailable {
            return Some(reason.into());
        }
        if let Some(blocked) = self.priced.blocked.iter().find(|b| b.sku_id == sku_id) {
            return Some(blocked.reason.clone());
        }
        match item.available {
            Some(available) if available < quantity => {
                Some(format!("only {} left in stock", available.max(0)))
            }
            _ => None,
        }
    }
}

/// Prices `lines` (sku id, quantity) for `customer_id` with the coupon `codes`. `frozen`
/// unit prices (an order's, when staff edit it) win over the catalog's.
pub async fn quote(
    db: &impl ConnectionTrait,
    lines: &[(i64, i64)],
    customer_id: Option<i64>,
    codes: &[String],
    shipping_fee: i64,
    frozen: &HashMap<i64, i64>,
    now: DateTime<Utc>,
) -> ApiResult<Quote> {
    let ids: Vec<i64> = lines.iter().map(|(sku, _)| *sku).collect();
    let mut items = purchasable(db, &ids, now).await?;
    for (sku, price) in frozen {
        if let Some(item) = items.get_mut(sku) {
            item.unit_price = *price;
        }
    }
    let resolved = usage::candidates(db, codes, customer_id, now).await?;
    let customer = match customer_id {
        Some(id) => Some(usage::customer_facts(db, id, now).await?),
        None => None,
    };
    let mut weight_grams = 0;
    let mut requires_shipping = false;
    let snapshot_lines = lines
        .iter()
        .filter_map(|&(sku_id, quantity)| {
            let item = items.get(&sku_id)?;
            if item.physical {
                requires_shipping = true;
                weight_grams += item.weight_grams * quantity;
            }
            Some(engine::CartLine {
                sku_id,
                product_id: item.product_id,
                category_ids: item.category_ids.clone(),
                unit_price: item.unit_price,
                quantity,
            })
        })
        .collect();
    let priced = engine::price(
        &CartSnapshot {
            lines: snapshot_lines,
            customer,
            shipping_fee,
            now,
        },
        &resolved.candidates,
    );
    Ok(Quote {
        items,
        resolved,
        priced,
        weight_grams,
        requires_shipping,
    })
}

pub async fn find(db: &impl ConnectionTrait, owner: &Owner) -> ApiResult<Option<cart::Model>> {
    let query = match owner {
        Owner::Customer(id) => cart::Entity::find().filter(cart::Column::CustomerId.eq(*id)),
        Owner::Guest(token) => cart::Entity::find()
            .filter(cart::Column::Token.eq(token.as_str()))
            .filter(cart::Column::CustomerId.is_null()),
    };
    Ok(query.one(db).await?)
}

/// The owner's cart; a customer's is created on first use, a guest's must exist.
async fn find_or_create(db: &impl ConnectionTrait, owner: &Owner) -> ApiResult<cart::Model> {
    if let Some(cart) = find(db, owner).await? {
        return Ok(cart);
    }
    match owner {
        Owner::Guest(_) => Err(guest_cart_missing()),
        Owner::Customer(id) => {
            let now = Utc::now();
            cart::Entity::insert(cart::ActiveModel {
                token: Set(new_token()),
                customer_id: Set(Some(*id)),
                coupon_codes: Set("[]".into()),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            })
            .on_conflict(
                OnConflict::column(cart::Column::CustomerId)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
            find(db, owner)
                .await?
                .ok_or_else(|| ApiError::internal("cart vanished after insert"))
        }
    }
}

fn guest_cart_missing() -> ApiError {
    ApiError::not_found("cart", "for this Cart-Token").with_code("cart-not-found")
}

fn new_token() -> String {
    format!(
        "{}{}",
        ulid::Ulid::generate(),
        uuid::Uuid::new_v4().simple()
    )
}

/// A new, empty guest cart.
pub async fn create_guest(state: &AppState) -> ApiResult<CartView> {
    let now = Utc::now();
    let token = new_token();
    cart::Entity::insert(cart::ActiveModel {
        token: Set(token.clone()),
        customer_id: Set(None),
        coupon_codes: Set("[]".into()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec_without_returning(state.db.writer())
    .await?;
    view(state, &Owner::Guest(token), &ShippingChoice::default()).await
}

pub async fn lines_of(db: &impl ConnectionTrait, cart_id: i64) -> ApiResult<Vec<(i64, i64)>> {
    Ok(cart_line::Entity::find()
        .filter(cart_line::Column::CartId.eq(cart_id))
        .order_by_asc(cart_line::Column::AddedAt)
        .order_by_asc(cart_line::Column::SkuId)
        .all(db)
        .await?
        .into_iter()
        .map(|l| (l.sku_id, l.quantity))
        .collect())
}

pub fn codes_of(cart: &cart::Model) -> Vec<String> {
    serde_json::from_str(&cart.coupon_codes).unwrap_or_default()
}

fn check_quantity(quantity: i64) -> ApiResult<()> {
    if !(1..=MAX_QUANTITY).contains(&quantity) {
        return Err(ApiError::invalid(
            "quantity",
            format!("must be between 1 and {MAX_QUANTITY}"),
        ));
    }
    Ok(())
}

/// Adds `quantity` units of a SKU that is on sale now.
pub async fn add_line(
    state: &AppState,
    owner: &Owner,
    sku_id: i64,
    quantity: i64,
) -> ApiResult<()> {
    check_quantity(quantity)?;
    let txn = state.db.begin().await?;
    let cart = find_or_create(&txn, owner).await?;
    let item = purchasable(&txn, &[sku_id], Utc::now())
        .await?
        .remove(&sku_id)
        .ok_or_else(|| ApiError::invalid("sku_id", format!("SKU {sku_id} does not exist")))?;
    if let Some(reason) = item.unavailable {
        return Err(ApiError::conflict(
            "unavailable",
            format!("{}: {reason}", item.code),
        ));
    }
    let lines = lines_of(&txn, cart.id).await?;
    let held = lines.iter().find(|(s, _)| *s == sku_id).map(|(_, q)| *q);
    if held.is_none() && lines.len() >= MAX_LINES {
        return Err(ApiError::conflict(
            "cart-full",
            format!("a cart holds at most {MAX_LINES} different products"),
        ));
    }
    let total = held.unwrap_or(0) + quantity;
    check_quantity(total)?;
    put_line(&txn, cart.id, sku_id, total).await?;
    txn.commit().await?;
    Ok(())
}

async fn put_line(
    db: &impl ConnectionTrait,
    cart_id: i64,
    sku_id: i64,
    quantity: i64,
) -> ApiResult<()> {
    cart_line::Entity::insert(cart_line::ActiveModel {
        cart_id: Set(cart_id),
        sku_id: Set(sku_id),
        quantity: Set(quantity),
        added_at: Set(Utc::now()),
    })
    .on_conflict(
        OnConflict::columns([cart_line::Column::CartId, cart_line::Column::SkuId])
            .update_column(cart_line::Column::Quantity)
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    touch(db, cart_id).await
}

async fn touch(db: &impl ConnectionTrait, cart_id: i64) -> ApiResult<()> {
    cart::Entity::update_many()
        .col_expr(
            cart::Column::UpdatedAt,
            sea_orm::sea_query::Expr::value(Utc::now()),
        )
        .filter(cart::Column::Id.eq(cart_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Sets a line's quantity; the line must be in the cart.
pub async fn set_line(
    state: &AppState,
    owner: &Owner,
    sku_id: i64,
    quantity: i64,
) -> ApiResult<()> {
    check_quantity(quantity)?;
    let txn = state.db.begin().await?;
    let cart = find(&txn, owner)
        .await?
        .ok_or_else(|| missing_line(sku_id))?;
    if !lines_of(&txn, cart.id)
        .await?
        .iter()
        .any(|(s, _)| *s == sku_id)
    {
        return Err(missing_line(sku_id));
    }
    put_line(&txn, cart.id, sku_id, quantity).await?;
    txn.commit().await?;
    Ok(())
}

fn missing_line(sku_id: i64) -> ApiError {
    ApiError::not_found("cart line", sku_id)
}

pub async fn remove_line(state: &AppState, owner: &Owner, sku_id: i64) -> ApiResult<()> {
    let txn = state.db.begin().await?;
    let cart = find(&txn, owner)
        .await?
        .ok_or_else(|| missing_line(sku_id))?;
    let removed = cart_line::Entity::delete_many()
        .filter(cart_line::Column::CartId.eq(cart.id))
        .filter(cart_line::Column::SkuId.eq(sku_id))
        .exec(&txn)
        .await?;
    if removed.rows_affected == 0 {
        return Err(missing_line(sku_id));
    }
    touch(&txn, cart.id).await?;
    txn.commit().await?;
    Ok(())
}

/// Replaces the cart's coupon codes; codes that do not apply stay, with the reason shown.
pub async fn set_coupons(state: &AppState, owner: &Owner, codes: &[String]) -> ApiResult<()> {
    let codes = usage::normalise_codes(codes);
    if codes.len() > 10 {
        return Err(ApiError::invalid("codes", "at most 10 codes"));
    }
    let txn = state.db.begin().await?;
    let cart = find_or_create(&txn, owner).await?;
    cart::Entity::update_many()
        .col_expr(
            cart::Column::CouponCodes,
            sea_orm::sea_query::Expr::value(serde_json::to_string(&codes).unwrap_or_default()),
        )
        .filter(cart::Column::Id.eq(cart.id))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(())
}

/// Moves a guest cart's lines and codes into the customer's cart (quantities add up, capped)
/// and deletes the guest cart. Unknown or already merged tokens change nothing.
pub async fn merge(state: &AppState, customer_id: i64, token: &str) -> ApiResult<bool> {
    let token_owner = Owner::Guest(token.to_owned());
    // A client may keep sending the token after the merge: answer that without a write lock.
    if find(state.db.writer(), &token_owner).await?.is_none() {
        return Ok(false);
    }
    let txn = state.db.begin().await?;
    let Some(guest) = find(&txn, &token_owner).await? else {
        return Ok(false);
    };
    let mine = find_or_create(&txn, &Owner::Customer(customer_id)).await?;
    let held: HashMap<i64, i64> = lines_of(&txn, mine.id).await?.into_iter().collect();
    for (sku_id, quantity) in lines_of(&txn, guest.id).await? {
        let total = (held.get(&sku_id).copied().unwrap_or(0) + quantity).min(MAX_QUANTITY);
        if held.len() >= MAX_LINES && !held.contains_key(&sku_id) {
            break;
        }
        put_line(&txn, mine.id, sku_id, total).await?;
    }
    let mut codes = codes_of(&mine);
    codes.extend(codes_of(&guest));
    let codes = usage::normalise_codes(&codes);
    cart::Entity::update_many()
        .col_expr(
            cart::Column::CouponCodes,
            sea_orm::sea_query::Expr::value(serde_json::to_string(&codes).unwrap_or_default()),
        )
        .filter(cart::Column::Id.eq(mine.id))
        .exec(&txn)
        .await?;
    cart::Entity::delete_by_id(guest.id).exec(&txn).await?;
    txn.commit().await?;
    Ok(true)
}

/// Empties a cart after checkout, inside the checkout's transaction.
pub async fn clear(db: &impl ConnectionTrait, cart_id: i64) -> ApiResult<()> {
    cart_line::Entity::delete_many()
        .filter(cart_line::Column::CartId.eq(cart_id))
        .exec(db)
        .await?;
    cart::Entity::update_many()
        .col_expr(
            cart::Column::CouponCodes,
            sea_orm::sea_query::Expr::value("[]"),
        )
        .filter(cart::Column::Id.eq(cart_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Shipping options for the parcel, and the chosen one's price.
pub async fn shipping_for(
    db: &impl ConnectionTrait,
    choice: &ShippingChoice,
    weight_grams: i64,
) -> ApiResult<(Vec<ShippingOption>, Option<ShippingOption>)> {
    let Some(region) = choice.region_id else {
        if choice.shipping_method_id.is_some() {
            return Err(ApiError::invalid(
                "region_id",
                "name the destination region to choose a shipping method",
            ));
        }
        return Ok((Vec::new(), None));
    };
    let options = crate::system::service::shipping_options(
        db,
        &ShippingQuery {
            region,
            weight_grams,
        },
    )
    .await?;
    let chosen = match choice.shipping_method_id {
        None => None,
        Some(id) => Some(
            options
                .iter()
                .find(|o| o.id == id)
                .cloned()
                .ok_or_else(|| {
                    ApiError::invalid(
                        "shipping_method_id",
                        format!("shipping method {id} does not deliver to region {region}"),
                    )
                })?,
        ),
    };
    Ok((options, chosen))
}

/// The cart as the customer sees it: lines, savings, shipping options and totals.
pub async fn view(state: &AppState, owner: &Owner, choice: &ShippingChoice) -> ApiResult<CartView> {
    let db = state.db.writer();
    let cart = find(db, owner).await?;
    if cart.is_none()
        && let Owner::Guest(_) = owner
    {
        return Err(guest_cart_missing());
    }
    let (lines, codes) = match &cart {
        Some(cart) => (lines_of(db, cart.id).await?, codes_of(cart)),
        None => (Vec::new(), Vec::new()),
    };
    let customer_id = match owner {
        Owner::Customer(id) => Some(*id),
        Owner::Guest(_) => None,
    };
    let now = Utc::now();
    // Weight first (shipping needs it), then the price with the chosen shipping.
    let draft = quote(db, &lines, customer_id, &codes, 0, &HashMap::new(), now).await?;
    let (options, chosen) = shipping_for(db, choice, draft.weight_grams).await?;
    let fee = chosen.as_ref().map_or(0, |o| o.price.amount);
    let quote = if fee == 0 {
        draft
    } else {
        quote(db, &lines, customer_id, &codes, fee, &HashMap::new(), now).await?
    };
    let priced_lines: HashMap<i64, &engine::PricedLine> =
        quote.priced.lines.iter().map(|l| (l.sku_id, l)).collect();
    let mut can_checkout = !lines.is_empty() && quote.priced.blocked.is_empty();
    let views = lines
        .iter()
        .map(|&(sku_id, quantity)| {
            let problem = quote.problem(sku_id, quantity);
            can_checkout &= problem.is_none();
            let item = quote.items.get(&sku_id);
            let priced = priced_lines.get(&sku_id);
            CartLineView {
                sku_id,
                product_id: item.map_or(0, |i| i.product_id),
                sku_code: item.map(|i| i.code.clone()).unwrap_or_default(),
                title: item.map(|i| i.title.clone()).unwrap_or_default(),
                slug: item.map(|i| i.slug.clone()).unwrap_or_default(),
                quantity,
                unit_price: priced.map_or(0, |p| p.unit_price),
                subtotal: priced.map_or(0, |p| p.subtotal),
                discount: priced.map_or(0, |p| p.discount),
                total: priced.map_or(0, |p| p.total),
                savings: priced.map(|p| p.savings.clone()).unwrap_or_default(),
                available: item.and_then(|i| i.available).map(|a| a.max(0)),
                problem,
            }
        })
        .collect();
    let priced = quote.priced;
    Ok(CartView {
        token: match owner {
            Owner::Guest(token) => Some(token.clone()),
            Owner::Customer(_) => None,
        },
        currency: state.config.shop.currency.clone(),
        lines: views,
        coupon_codes: codes,
        rejected_codes: quote.resolved.rejected,
        promotions: priced.applied,
        not_applied: priced.not_applied,
        blocked: priced.blocked,
        requires_shipping: quote.requires_shipping,
        weight_grams: quote.weight_grams,
        shipping_options: options,
        shipping_method_id: chosen.map(|o| o.id),
        subtotal: priced.subtotal,
        discount: priced.discount,
        shipping: priced.shipping,
        shipping_discount: priced.shipping_discount,
        total: priced.total,
        bonus_points: priced.bonus_points,
        can_checkout,
    })
}
