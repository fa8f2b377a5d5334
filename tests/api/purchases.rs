//! Orders written straight to the database for tests of other domains that ask what a
//! customer bought, until checkout and the order lifecycle have an API to drive.

use std::sync::atomic::{AtomicU64, Ordering};

use bazaar::orders::entity::{order, order_line};
use chrono::{Duration, Utc};
use sea_orm::ActiveModelTrait;
use sea_orm::ActiveValue::{NotSet, Set};

use crate::harness::TestApp;

/// Makes order numbers unique across the tests of this process.
static NEXT_NUMBER: AtomicU64 = AtomicU64::new(1);

/// Records an order of the customer for one unit of the product's SKU, in `status`
/// (pending_payment, paid, ready_for_picking, shipped, completed or cancelled), with the
/// timestamps that status implies; returns the order's id.
pub async fn order_in_status(
    app: &TestApp,
    customer_id: i64,
    product_id: i64,
    sku_id: i64,
    status: &str,
) -> i64 {
    let db = app.state().db.writer();
    let number = NEXT_NUMBER.fetch_add(1, Ordering::Relaxed);
    let placed = Utc::now() - Duration::days(7);
    let paid = matches!(
        status,
        "paid" | "ready_for_picking" | "shipped" | "completed"
    );
    let shipped = matches!(status, "shipped" | "completed");
    let cancelled = status == "cancelled";
    let price = 1200;
    let created = order::ActiveModel {
        id: NotSet,
        version: Set(1),
        number: Set(format!("T{number:08}")),
        customer_id: Set(Some(customer_id)),
        email: Set(format!("buyer{customer_id}@example.com")),
        status: Set(status.to_owned()),
        currency: Set("CNY".to_owned()),
        subtotal: Set(price),
        discount: Set(0),
        shipping_fee: Set(0),
        shipping_discount: Set(0),
        packaging_fee: Set(0),
        adjustment: Set(0),
        total: Set(price),
        gift_certificate_amount: Set(0),
        amount_due: Set(price),
        bonus_points: Set(0),
        pricing: Set("{}".to_owned()),
        coupon_codes: Set("[]".to_owned()),
        ship_to: Set("null".to_owned()),
        shipping_method_id: Set(None),
        shipping_method_name: Set(None),
        carrier_id: Set(None),
        packaging_id: Set(None),
        note: Set(None),
        parent_order_id: Set(None),
        locked_by: Set(None),
        locked_at: Set(None),
        placed_at: Set(placed),
        payment_due_at: Set(Some(placed + Duration::hours(1))),
        paid_at: Set(paid.then(|| placed + Duration::minutes(5))),
        payment_reference: Set(paid.then(|| format!("PAY-{number}"))),
        shipped_at: Set(shipped.then(|| placed + Duration::days(1))),
        completed_at: Set((status == "completed").then(|| placed + Duration::days(3))),
        cancelled_at: Set(cancelled.then(|| placed + Duration::hours(2))),
        cancel_reason: Set(cancelled.then(|| "not paid in time".to_owned())),
        cash_on_delivery: Set(false),
        flash_sale_id: Set(None),
        created_at: Set(placed),
        updated_at: Set(placed),
    }
    .insert(db)
    .await
    .expect("cannot insert an order");
    order_line::ActiveModel {
        id: NotSet,
        version: Set(1),
        order_id: Set(created.id),
        sku_id: Set(sku_id),
        product_id: Set(product_id),
        sku_code: Set(format!("SKU-{sku_id}")),
        title: Set(format!("Product {product_id}")),
        unit_price: Set(price),
        quantity: Set(1),
        discount: Set(0),
        adjustment: Set(0),
        adjustment_reason: Set(None),
        total: Set(price),
        weight_grams: Set(0),
        shipped_quantity: Set(i64::from(shipped)),
        returned_quantity: Set(0),
        created_at: Set(placed),
        updated_at: Set(placed),
    }
    .insert(db)
    .await
    .expect("cannot insert an order line");
    created.id
}

/// Records a completed order in which the customer received one unit of the product's SKU.
pub async fn delivered(app: &TestApp, customer_id: i64, product_id: i64, sku_id: i64) -> i64 {
    order_in_status(app, customer_id, product_id, sku_id, "completed").await
}
