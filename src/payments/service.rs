//! Starting payments, and the one place money is recorded as received or returned: every
//! capture and refund writes a ledger row whose unique key (payment, kind, gateway
//! reference) makes a repeated announcement of the same event a no-op.

use chrono::{DateTime, Duration, FixedOffset, Utc};
use rand::Rng;
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::json;

use super::entity::{ledger, payment};
use super::gateway::{Channel, Checkout, GatewayError, PayRequest};
use super::model::{PaymentStatus, PaymentView, StartPayment};
use crate::app::AppState;
use crate::orders::entity::{order, refund};
use crate::orders::model::OrderStatus;
use crate::orders::service::{self as orders, By};
use crate::platform::{ApiError, ApiResult};
use crate::system::entity::payment_method;
use crate::system::model::PaymentProvider;

/// China Standard Time: the gateways' clocks, and the first 14 digits of our numbers.
pub fn china_time(at: DateTime<Utc>) -> DateTime<FixedOffset> {
    at.with_timezone(&FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset"))
}

/// A payment or refund number: `YYYYMMDDHHMMSS` in China time and 8 random digits. Every
/// gateway accepts it, and UnionPay recovers the original transaction time from it.
pub fn new_number() -> String {
    let digits: u32 = rand::rng().random_range(0..100_000_000);
    format!(
        "{}{digits:08}",
        china_time(Utc::now()).format("%Y%m%d%H%M%S")
    )
}

/// The payment, locked for the rest of the transaction.
pub async fn lock_by_number(
    db: &impl ConnectionTrait,
    number: &str,
) -> ApiResult<Option<payment::Model>> {
    Ok(payment::Entity::find()
        .filter(payment::Column::Number.eq(number))
        .lock_exclusive()
        .one(db)
        .await?)
}

/// Records money moving; `false` when this event was recorded already.
pub async fn record_money(
    db: &impl ConnectionTrait,
    p: &payment::Model,
    kind: &str,
    amount: i64,
    reference: &str,
    staff_id: Option<i64>,
) -> ApiResult<bool> {
    let inserted = ledger::Entity::insert(ledger::ActiveModel {
        created_at: Set(Utc::now()),
        payment_id: Set(p.id),
        order_id: Set(p.order_id),
        kind: Set(kind.to_owned()),
        amount: Set(amount),
        currency: Set(p.currency.clone()),
        reference: Set(reference.to_owned()),
        staff_id: Set(staff_id),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::columns([
            ledger::Column::PaymentId,
            ledger::Column::Kind,
            ledger::Column::Reference,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(inserted == 1)
}

/// What happened to a payment the gateway (or staff, or a carrier) says was paid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Captured {
    /// The order is paid now.
    Paid,
    /// This capture was recorded before; nothing changed.
    Duplicate,
    /// The amount or currency differs from what was asked: held for staff, order unpaid.
    Review(String),
    /// The money arrived but the order no longer wants it (cancelled, or paid another
    /// way): recorded, with a pending refund for staff.
    Unwanted(String),
}

/// Applies a confirmed payment: ledger, payment status and the order, in the caller's
/// transaction with the payment row locked.
pub async fn capture(
    db: &impl ConnectionTrait,
    p: &payment::Model,
    gateway_reference: Option<&str>,
    amount: i64,
    currency: &str,
    by: &By,
) -> ApiResult<Captured> {
    if p.status == PaymentStatus::Succeeded.as_str() {
        return Ok(Captured::Duplicate);
    }
    if amount != p.amount || currency != p.currency {
        let reason = format!(
            "the gateway reports {amount} {currency}; the payment asked for {} {}",
            p.amount, p.currency
        );
        if p.status != PaymentStatus::Review.as_str() {
            update(db, p, |a| {
                a.status = Set(PaymentStatus::Review.as_str().into());
                a.review_reason = Set(Some(reason.clone()));
            })
            .await?;
            orders::record(
                db,
                p.order_id,
                "payment_review",
                None,
                by,
                json!({ "payment": p.number, "reason": reason }),
            )
            .await?;
        }
        tracing::warn!(payment = %p.number, %reason, "payment amount mismatch held for review");
        return Ok(Captured::Review(reason));
    }
    let reference = gateway_reference.unwrap_or(&p.number);
    if !record_money(db, p, "capture", amount, reference, by.staff_id).await? {
        return Ok(Captured::Duplicate);
    }
    let now = Utc::now();
    let o = orders::lock(db, p.order_id).await?;
    let unwanted = match orders::status_of(&o) {
        OrderStatus::Cancelled => Some("the order was cancelled before the money arrived"),
        _ if o.paid_at.is_some() => Some("the order was already paid by another payment"),
        OrderStatus::PendingPayment => None,
        _ if o.cash_on_delivery => None,
        _ => Some("the order was not awaiting payment"),
    };
    update(db, p, |a| {
        a.status = Set(if unwanted.is_some() {
            PaymentStatus::Review
        } else {
            PaymentStatus::Succeeded
        }
        .as_str()
        .into());
        a.gateway_reference = Set(gateway_reference
            .map(str::to_owned)
            .or(p.gateway_reference.clone()));
        a.paid_at = Set(Some(now));
        a.review_reason = Set(unwanted.map(str::to_owned));
    })
    .await?;
    if let Some(reason) = unwanted {
        pending_refund(db, p, amount, reason, by.staff_id).await?;
        orders::record(
            db,
            p.order_id,
            "payment_unwanted",
            None,
            by,
            json!({ "payment": p.number, "reason": reason }),
        )
        .await?;
        return Ok(Captured::Unwanted(reason.to_owned()));
    }
    if orders::status_of(&o) == OrderStatus::PendingPayment {
        orders::mark_paid(db, o.id, &p.number, by).await?;
    } else {
        // Cash on delivery: the order has moved on to shipping; only the money is new.
        settle_in_place(db, &o, &p.number, by).await?;
    }
    Ok(Captured::Paid)
}

/// Marks a cash-on-delivery order paid without moving its status (it is already shipped).
async fn settle_in_place(
    db: &impl ConnectionTrait,
    o: &order::Model,
    reference: &str,
    by: &By,
) -> ApiResult<()> {
    order::Entity::update(order::ActiveModel {
        id: Set(o.id),
        version: Set(o.version + 1),
        paid_at: Set(Some(Utc::now())),
        payment_reference: Set(Some(reference.to_owned())),
        updated_at: Set(Utc::now()),
        ..Default::default()
    })
    .exec(db)
    .await?;
    orders::record(
        db,
        o.id,
        "paid",
        None,
        by,
        json!({ "reference": reference, "cash_on_delivery": true }),
    )
    .await
}

/// A refund for staff to carry out, tied to the payment it would return money from.
async fn pending_refund(
    db: &impl ConnectionTrait,
    p: &payment::Model,
    amount: i64,
    reason: &str,
    staff_id: Option<i64>,
) -> ApiResult<()> {
    let now = Utc::now();
    refund::Entity::insert(refund::ActiveModel {
        order_id: Set(p.order_id),
        amount: Set(amount),
        currency: Set(p.currency.clone()),
        status: Set("pending".into()),
        reason: Set(reason.to_owned()),
        staff_id: Set(staff_id),
        payment_id: Set(Some(p.id)),
        number: Set(Some(new_number())),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec(db)
    .await?;
    Ok(())
}

/// Writes `change` to the payment, bumping its version.
pub async fn update(
    db: &impl ConnectionTrait,
    p: &payment::Model,
    change: impl FnOnce(&mut payment::ActiveModel),
) -> ApiResult<payment::Model> {
    let mut active = payment::ActiveModel {
        id: Set(p.id),
        version: Set(p.version + 1),
        updated_at: Set(Utc::now()),
        ..Default::default()
    };
    change(&mut active);
    Ok(payment::Entity::update(active).exec(db).await?)
}

/// A customer starts paying their order with one of the shop's payment methods.
///
/// The payment row is committed before the gateway is called, so a gateway that
/// answers (or notifies) faster than we write never finds an unknown number.
pub async fn start(
    state: &AppState,
    customer_id: i64,
    order_number: &str,
    request: StartPayment,
) -> ApiResult<PaymentView> {
    let txn = state.db.begin().await?;
    let found = orders::find_for_customer(&txn, customer_id, order_number).await?;
    let o = orders::lock(&txn, found.id).await?;
    orders::expect_status(&o, &[OrderStatus::PendingPayment], "paid")?;
    if o.amount_due <= 0 {
        return Err(ApiError::conflict(
            "nothing-to-pay",
            format!("order {} has nothing left to pay", o.number),
        ));
    }
    if o.cash_on_delivery {
        return Err(ApiError::conflict(
            "cash-on-delivery-chosen",
            format!("order {} is paid on delivery", o.number),
        ));
    }
    let method = payment_method::Entity::find()
        .filter(payment_method::Column::Code.eq(request.method.as_str()))
        .filter(payment_method::Column::Active.eq(true))
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::invalid("method", "no active payment method has this code"))?;
    let provider = PaymentProvider::parse(&method.provider)
        .ok_or_else(|| ApiError::invalid("method", "this method has no known provider"))?;
    let gateway = match provider {
        PaymentProvider::Manual | PaymentProvider::CashOnDelivery => None,
        gateway_provider => Some(state.gateways.get(gateway_provider).cloned().ok_or_else(
            || {
                ApiError::invalid("method", "this payment method is not available right now")
                    .with_code("provider-unavailable")
            },
        )?),
    };
    let channel = match &gateway {
        None => Channel::Offline,
        Some(g) => match request.channel {
            None => g.channels()[0],
            Some(c) if g.channels().contains(&c) => c,
            Some(_) => {
                return Err(ApiError::invalid(
                    "channel",
                    format!(
                        "{} offers {}",
                        method.name,
                        g.channels()
                            .iter()
                            .map(|c| c.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        },
    };
    let offline_checkout = match provider {
        PaymentProvider::CashOnDelivery => Some(Checkout::Instructions {
            text: non_empty(
                &method.description,
                "Pay the courier when the parcel arrives.",
            ),
        }),
        PaymentProvider::Manual => Some(Checkout::Instructions {
            text: format!(
                "{} Quote order {} as the reference.",
                non_empty(&method.description, "Pay by bank transfer."),
                o.number
            ),
        }),
        _ => None,
    };
    let now = Utc::now();
    let p = payment::Entity::insert(payment::ActiveModel {
        created_at: Set(now),
        updated_at: Set(now),
        number: Set(new_number()),
        order_id: Set(o.id),
        customer_id: Set(o.customer_id),
        provider: Set(provider.as_str().into()),
        method_code: Set(Some(method.code.clone())),
        channel: Set(channel.as_str().into()),
        amount: Set(o.amount_due),
        currency: Set(o.currency.clone()),
        status: Set(if gateway.is_some() {
            PaymentStatus::Created
        } else {
            PaymentStatus::Pending
        }
        .as_str()
        .into()),
        checkout: Set(offline_checkout
            .as_ref()
            .map(|c| serde_json::to_string(c).unwrap_or_default())),
        ..Default::default()
    })
    .exec_with_returning(&txn)
    .await?;
    let by = By::customer(customer_id);
    if provider == PaymentProvider::CashOnDelivery {
        // No time-out: the order waits for the carrier, not for the customer.
        order::Entity::update(order::ActiveModel {
            id: Set(o.id),
            version: Set(o.version + 1),
            cash_on_delivery: Set(true),
            payment_due_at: Set(None),
            updated_at: Set(now),
            ..Default::default()
        })
        .exec(&txn)
        .await?;
    }
    orders::record(
        &txn,
        o.id,
        "payment_started",
        None,
        &by,
        json!({ "payment": p.number, "provider": provider.as_str(), "channel": channel.as_str() }),
    )
    .await?;
    txn.commit().await?;

    let Some(gateway) = gateway else {
        return Ok(PaymentView::from(p));
    };
    let request = PayRequest {
        number: p.number.clone(),
        subject: format!("{} order {}", state.config.shop.name, o.number),
        amount: p.amount,
        currency: p.currency.clone(),
        channel,
        notify_url: notify_url(state, provider),
        return_url: state.config.payments.return_url.clone(),
        client_ip: request.client_ip,
        payer_id: request.payer_id,
        expires_at: o.payment_due_at.unwrap_or_else(|| {
            now + Duration::seconds(state.config.orders.payment_timeout_secs.into())
        }),
    };
    let outcome = gateway.create(&request).await;
    let txn = state.db.begin().await?;
    let current = lock_by_number(&txn, &p.number)
        .await?
        .ok_or_else(|| ApiError::internal("payment vanished"))?;
    let result = match outcome {
        Ok(checkout) => {
            // A notification may have overtaken us; never move a payment backwards.
            let status = if current.status == PaymentStatus::Created.as_str() {
                PaymentStatus::Pending.as_str().to_owned()
            } else {
                current.status.clone()
            };
            let updated = update(&txn, &current, |a| {
                a.status = Set(status);
                a.checkout = Set(Some(serde_json::to_string(&checkout).unwrap_or_default()));
            })
            .await?;
            Ok(PaymentView::from(updated))
        }
        Err(err) => {
            update(&txn, &current, |a| {
                a.status = Set(PaymentStatus::Failed.as_str().into());
                a.review_reason = Set(Some(err.to_string()));
            })
            .await?;
            Err(gateway_problem(&err))
        }
    };
    txn.commit().await?;
    result
}

/// Where `provider` sends its notifications for this shop.
pub fn notify_url(state: &AppState, provider: PaymentProvider) -> String {
    format!(
        "{}/api/v1/payments/notify/{}",
        state.config.payments.notify_base_url.trim_end_matches('/'),
        provider.as_str()
    )
}

/// 502 for a gateway that failed us, with what it said.
pub fn gateway_problem(err: &GatewayError) -> ApiError {
    let code = match err {
        GatewayError::Refused(_) => "gateway-refused",
        GatewayError::Unsupported(_) => "gateway-unsupported",
        GatewayError::Unavailable(_) | GatewayError::BadResponse(_) => "gateway-unavailable",
    };
    ApiError::new(axum::http::StatusCode::BAD_GATEWAY, code, err.to_string())
}

fn non_empty(text: &str, fallback: &str) -> String {
    if text.trim().is_empty() {
        fallback.to_owned()
    } else {
        text.trim().to_owned()
    }
}

/// The payments of an order, newest first.
pub async fn of_order(db: &impl ConnectionTrait, order_id: i64) -> ApiResult<Vec<payment::Model>> {
    Ok(payment::Entity::find()
        .filter(payment::Column::OrderId.eq(order_id))
        .order_by_desc(payment::Column::Id)
        .all(db)
        .await?)
}

/// Staff record money received outside a gateway (a bank transfer, "pay before
/// shipping"): an audited back-fill that pays the order like a gateway capture would.
pub async fn record_manual(
    db: &impl ConnectionTrait,
    order_id: i64,
    reference: &str,
    proof: Option<&str>,
    staff_id: i64,
) -> ApiResult<(payment::Model, Captured)> {
    let o = orders::lock(db, order_id).await?;
    if o.paid_at.is_some() {
        // The same transfer recorded twice (a double click, a retried request): no change.
        let same = payment::Entity::find()
            .filter(payment::Column::OrderId.eq(o.id))
            .filter(payment::Column::Provider.eq(PaymentProvider::Manual.as_str()))
            .filter(payment::Column::Reference.eq(reference))
            .filter(payment::Column::Status.eq(PaymentStatus::Succeeded.as_str()))
            .one(db)
            .await?;
        if let Some(p) = same {
            return Ok((p, Captured::Duplicate));
        }
    }
    orders::expect_status(&o, &[OrderStatus::PendingPayment], "marked paid")?;
    // The customer may have chosen bank transfer already; otherwise staff start one.
    let p = pending_offline_payment(db, &o, PaymentProvider::Manual).await?;
    let p = update(db, &p, |a| {
        // What staff confirm is what the order asks now (it may have been edited since
        // the customer chose to pay by transfer).
        a.amount = Set(o.amount_due);
        a.staff_id = Set(Some(staff_id));
        a.reference = Set(Some(reference.to_owned()));
        a.proof = Set(proof.map(str::to_owned));
    })
    .await?;
    let captured = capture(
        db,
        &p,
        Some(reference),
        o.amount_due,
        &o.currency,
        &By::staff(staff_id),
    )
    .await?;
    let p = payment::Entity::find_by_id(p.id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::internal("payment vanished"))?;
    Ok((p, captured))
}

/// The order's pending payment by `provider` (bank transfer or cash on delivery), locked;
/// made now for the amount due if the customer never started one.
async fn pending_offline_payment(
    db: &impl ConnectionTrait,
    o: &order::Model,
    provider: PaymentProvider,
) -> ApiResult<payment::Model> {
    let existing = payment::Entity::find()
        .filter(payment::Column::OrderId.eq(o.id))
        .filter(payment::Column::Provider.eq(provider.as_str()))
        .filter(payment::Column::Status.eq(PaymentStatus::Pending.as_str()))
        .lock_exclusive()
        .one(db)
        .await?;
    if let Some(p) = existing {
        return Ok(p);
    }
    let now = Utc::now();
    Ok(payment::Entity::insert(payment::ActiveModel {
        created_at: Set(now),
        updated_at: Set(now),
        number: Set(new_number()),
        order_id: Set(o.id),
        customer_id: Set(o.customer_id),
        provider: Set(provider.as_str().into()),
        channel: Set(Channel::Offline.as_str().into()),
        amount: Set(o.amount_due),
        currency: Set(o.currency.clone()),
        status: Set(PaymentStatus::Pending.as_str().into()),
        ..Default::default()
    })
    .exec_with_returning(db)
    .await?)
}

/// How a carrier's remittance line settled a cash-on-delivery order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodSettlement {
    Paid {
        payment_id: i64,
    },
    AlreadySettled,
    NotCashOnDelivery,
    /// The carrier has not shipped it (or it was cancelled): no money should exist.
    NotShipped {
        status: String,
    },
    AmountMismatch {
        expected: i64,
    },
}

/// Settles a cash-on-delivery order from the carrier's remittance, in the caller's
/// transaction: the order's COD payment succeeds, the ledger records the money, and the
/// order is marked paid. Re-importing the same remittance changes nothing.
pub async fn settle_cod(
    db: &impl ConnectionTrait,
    order_id: i64,
    amount: i64,
    reference: &str,
    staff_id: Option<i64>,
) -> ApiResult<CodSettlement> {
    let o = orders::lock(db, order_id).await?;
    if !o.cash_on_delivery {
        return Ok(CodSettlement::NotCashOnDelivery);
    }
    if o.paid_at.is_some() {
        return Ok(CodSettlement::AlreadySettled);
    }
    let status = orders::status_of(&o);
    if !matches!(status, OrderStatus::Shipped | OrderStatus::Completed) {
        return Ok(CodSettlement::NotShipped {
            status: status.as_str().to_owned(),
        });
    }
    if amount != o.amount_due {
        return Ok(CodSettlement::AmountMismatch {
            expected: o.amount_due,
        });
    }
    // An order split from a cash-on-delivery order has no payment of its own yet.
    let p = pending_offline_payment(db, &o, PaymentProvider::CashOnDelivery).await?;
    let p = update(db, &p, |a| {
        a.reference = Set(Some(reference.to_owned()));
        a.staff_id = Set(staff_id);
    })
    .await?;
    let by = By {
        staff_id,
        customer_id: None,
    };
    match capture(db, &p, Some(reference), amount, &o.currency, &by).await? {
        Captured::Paid => Ok(CodSettlement::Paid { payment_id: p.id }),
        Captured::Duplicate => Ok(CodSettlement::AlreadySettled),
        Captured::Review(_) => Ok(CodSettlement::AmountMismatch {
            expected: o.amount_due,
        }),
        Captured::Unwanted(reason) => Ok(CodSettlement::NotShipped { status: reason }),
    }
}
