//! Order requests, responses and the status machine.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::entity::{order, order_history, order_line, refund, shipment};
use crate::promotions::engine::AppliedPromotion;

/// Where an order is in its life. Moves only forward, or to `cancelled` before shipping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    PendingPayment,
    Paid,
    ReadyForPicking,
    Shipped,
    Completed,
    Cancelled,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingPayment => "pending_payment",
            Self::Paid => "paid",
            Self::ReadyForPicking => "ready_for_picking",
            Self::Shipped => "shipped",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            Self::PendingPayment,
            Self::Paid,
            Self::ReadyForPicking,
            Self::Shipped,
            Self::Completed,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == value)
    }

    /// Still holds reserved stock that cancelling gives back.
    pub fn cancellable(self) -> bool {
        matches!(
            self,
            Self::PendingPayment | Self::Paid | Self::ReadyForPicking
        )
    }
}

/// A delivery address as the order keeps it: copied, so later address-book edits do not
/// change where a placed order goes.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ShipTo {
    pub recipient: String,
    pub phone: String,
    pub region_id: i64,
    /// Region names from the top down, e.g. `["Zhejiang", "Hangzhou", "Xihu"]`.
    pub region_path: Vec<String>,
    pub line1: String,
    pub line2: Option<String>,
    pub postal_code: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressInput {
    pub recipient: String,
    pub phone: String,
    pub region_id: i64,
    pub line1: String,
    pub line2: Option<String>,
    pub postal_code: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GiftTender {
    pub code: String,
    /// Most to take from it (default: as much as the order needs).
    pub amount: Option<i64>,
}

/// `POST /checkout`: turns the customer's cart into an order.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    /// One of the customer's saved addresses…
    pub address_id: Option<i64>,
    /// …or an address typed in (required for physical goods, one of the two).
    pub address: Option<AddressInput>,
    /// Required when the cart holds physical goods.
    pub shipping_method_id: Option<i64>,
    pub packaging_id: Option<i64>,
    /// Replaces the cart's coupon codes when given.
    pub coupon_codes: Option<Vec<String>>,
    #[serde(default)]
    pub gift_certificates: Vec<GiftTender>,
    pub note: Option<String>,
    /// The total the customer was shown; a different total is a 409 instead of a surprise.
    pub expected_total: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderLineView {
    pub id: i64,
    pub sku_id: i64,
    pub product_id: i64,
    pub sku_code: String,
    pub title: String,
    pub unit_price: i64,
    pub quantity: i64,
    /// Promotions' share of this line.
    pub discount: i64,
    /// Staff price adjustment (negative lowers the price), with its reason.
    pub adjustment: i64,
    pub adjustment_reason: Option<String>,
    pub total: i64,
    pub shipped_quantity: i64,
    pub returned_quantity: i64,
}

impl From<order_line::Model> for OrderLineView {
    fn from(l: order_line::Model) -> Self {
        Self {
            id: l.id,
            sku_id: l.sku_id,
            product_id: l.product_id,
            sku_code: l.sku_code,
            title: l.title,
            unit_price: l.unit_price,
            quantity: l.quantity,
            discount: l.discount,
            adjustment: l.adjustment,
            adjustment_reason: l.adjustment_reason,
            total: l.total,
            shipped_quantity: l.shipped_quantity,
            returned_quantity: l.returned_quantity,
        }
    }
}

/// The promotions an order was priced with, frozen at checkout (or the last edit).
#[derive(Debug, Default, Clone, Serialize, Deserialize, ToSchema)]
pub struct FrozenPricing {
    pub promotions: Vec<AppliedPromotion>,
    pub gift_coupon_promotion_ids: Vec<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderView {
    pub id: i64,
    pub number: String,
    pub version: i64,
    pub status: OrderStatus,
    pub customer_id: Option<i64>,
    pub email: String,
    pub currency: String,
    pub lines: Vec<OrderLineView>,
    pub subtotal: i64,
    pub discount: i64,
    pub shipping_fee: i64,
    pub shipping_discount: i64,
    pub packaging_fee: i64,
    /// Order-level staff adjustment.
    pub adjustment: i64,
    pub total: i64,
    pub gift_certificate_amount: i64,
    /// What a payment must still cover.
    pub amount_due: i64,
    pub bonus_points: i64,
    pub promotions: Vec<AppliedPromotion>,
    pub coupon_codes: Vec<String>,
    pub ship_to: Option<ShipTo>,
    pub shipping_method_id: Option<i64>,
    pub shipping_method_name: Option<String>,
    pub packaging_id: Option<i64>,
    pub note: Option<String>,
    pub parent_order_id: Option<i64>,
    pub locked_by: Option<i64>,
    pub placed_at: DateTime<Utc>,
    pub payment_due_at: Option<DateTime<Utc>>,
    pub paid_at: Option<DateTime<Utc>>,
    pub shipped_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub cancel_reason: Option<String>,
}

impl OrderView {
    pub fn new(o: order::Model, lines: Vec<order_line::Model>) -> Self {
        let pricing: FrozenPricing = serde_json::from_str(&o.pricing).unwrap_or_default();
        Self {
            id: o.id,
            number: o.number,
            version: o.version,
            status: OrderStatus::parse(&o.status).unwrap_or(OrderStatus::Cancelled),
            customer_id: o.customer_id,
            email: o.email,
            currency: o.currency,
            lines: lines.into_iter().map(Into::into).collect(),
            subtotal: o.subtotal,
            discount: o.discount,
            shipping_fee: o.shipping_fee,
            shipping_discount: o.shipping_discount,
            packaging_fee: o.packaging_fee,
            adjustment: o.adjustment,
            total: o.total,
            gift_certificate_amount: o.gift_certificate_amount,
            amount_due: o.amount_due,
            bonus_points: o.bonus_points,
            promotions: pricing.promotions,
            coupon_codes: serde_json::from_str(&o.coupon_codes).unwrap_or_default(),
            ship_to: serde_json::from_str(&o.ship_to).ok(),
            shipping_method_id: o.shipping_method_id,
            shipping_method_name: o.shipping_method_name,
            packaging_id: o.packaging_id,
            note: o.note,
            parent_order_id: o.parent_order_id,
            locked_by: o.locked_by,
            placed_at: o.placed_at,
            payment_due_at: o.payment_due_at,
            paid_at: o.paid_at,
            shipped_at: o.shipped_at,
            completed_at: o.completed_at,
            cancelled_at: o.cancelled_at,
            cancel_reason: o.cancel_reason,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryView {
    pub id: i64,
    pub action: String,
    pub from_status: Option<String>,
    pub to_status: Option<String>,
    pub staff_id: Option<i64>,
    pub customer_id: Option<i64>,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    pub at: DateTime<Utc>,
}

impl From<order_history::Model> for HistoryView {
    fn from(h: order_history::Model) -> Self {
        Self {
            id: h.id,
            action: h.action,
            from_status: h.from_status,
            to_status: h.to_status,
            staff_id: h.staff_id,
            customer_id: h.customer_id,
            detail: serde_json::from_str(&h.detail).unwrap_or_default(),
            at: h.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ShipmentView {
    pub id: i64,
    pub order_id: i64,
    pub number: String,
    /// `pending` or `shipped`.
    pub status: String,
    pub picking_list_id: Option<i64>,
    pub carrier_id: Option<i64>,
    pub tracking_number: Option<String>,
    pub shipped_at: Option<DateTime<Utc>>,
    pub lines: Vec<ShipmentLineView>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ShipmentLineView {
    pub order_line_id: i64,
    pub quantity: i64,
}

impl ShipmentView {
    pub fn new(s: shipment::Model, lines: Vec<ShipmentLineView>) -> Self {
        Self {
            id: s.id,
            order_id: s.order_id,
            number: s.number,
            status: s.status,
            picking_list_id: s.picking_list_id,
            carrier_id: s.carrier_id,
            tracking_number: s.tracking_number,
            shipped_at: s.shipped_at,
            lines,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RefundView {
    pub id: i64,
    /// Our refund number at the gateway (`out_refund_no`).
    pub number: Option<String>,
    pub order_id: i64,
    pub payment_id: Option<i64>,
    pub return_id: Option<i64>,
    pub amount: i64,
    pub currency: String,
    /// `pending` (waiting for staff), `processing` (sent to the gateway), `succeeded` or
    /// `failed`.
    pub status: String,
    pub reason: String,
    pub gateway_reference: Option<String>,
    pub failure: Option<String>,
    pub staff_id: Option<i64>,
    pub refunded_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<refund::Model> for RefundView {
    fn from(r: refund::Model) -> Self {
        Self {
            id: r.id,
            number: r.number,
            order_id: r.order_id,
            payment_id: r.payment_id,
            return_id: r.return_id,
            amount: r.amount,
            currency: r.currency,
            status: r.status,
            reason: r.reason,
            gateway_reference: r.gateway_reference,
            failure: r.failure,
            staff_id: r.staff_id,
            refunded_at: r.refunded_at,
            created_at: r.created_at,
        }
    }
}

/// The staff view: the order with its history, shipments and refunds.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderDetail {
    #[serde(flatten)]
    pub order: OrderView,
    pub history: Vec<HistoryView>,
    pub shipments: Vec<ShipmentView>,
    pub refunds: Vec<RefundView>,
}

/// Staff order search.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrderFilter {
    pub status: Option<OrderStatus>,
    pub customer_id: Option<i64>,
    /// Order number or email, contains.
    pub q: Option<String>,
    /// Orders holding this SKU.
    pub sku_id: Option<i64>,
    pub placed_after: Option<DateTime<Utc>>,
    pub placed_before: Option<DateTime<Utc>>,
    pub min_total: Option<i64>,
    pub max_total: Option<i64>,
    pub locked: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkPaid {
    /// Bank transfer reference or similar.
    pub reference: String,
    /// Where the proof is: a scan's URL, the bank statement line.
    pub proof: Option<String>,
}

/// Staff edit of a pending order. Every change is applied to the order as it stands at
/// `version`, then promotions are recomputed; `dry_run` shows the difference only.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditOrder {
    pub version: Option<i64>,
    #[serde(default)]
    pub add: Vec<AddItem>,
    /// Order line ids to remove.
    #[serde(default)]
    pub remove: Vec<i64>,
    #[serde(default)]
    pub quantities: Vec<LineQuantity>,
    #[serde(default)]
    pub adjustments: Vec<PriceAdjustment>,
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddItem {
    pub sku_id: i64,
    pub quantity: i64,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineQuantity {
    pub line_id: i64,
    pub quantity: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceAdjustment {
    pub line_id: i64,
    /// Change to the line's total in minor units; negative lowers it. Replaces an earlier
    /// adjustment of the line.
    pub amount: i64,
    pub reason: String,
}

/// Totals before and after an edit, and the difference.
#[derive(Debug, Serialize, ToSchema)]
pub struct EditResult {
    pub dry_run: bool,
    pub before: Totals,
    pub after: Totals,
    /// `after.total - before.total`.
    pub difference: i64,
    /// Promotions that apply after the edit.
    pub promotions: Vec<AppliedPromotion>,
    pub order: OrderView,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Totals {
    pub subtotal: i64,
    pub discount: i64,
    pub shipping_fee: i64,
    pub shipping_discount: i64,
    pub packaging_fee: i64,
    pub adjustment: i64,
    pub total: i64,
    pub amount_due: i64,
}

impl From<&order::Model> for Totals {
    fn from(o: &order::Model) -> Self {
        Self {
            subtotal: o.subtotal,
            discount: o.discount,
            shipping_fee: o.shipping_fee,
            shipping_discount: o.shipping_discount,
            packaging_fee: o.packaging_fee,
            adjustment: o.adjustment,
            total: o.total,
            amount_due: o.amount_due,
        }
    }
}

/// Split: each part lists the lines (and quantities) that move to a new order; what is
/// left stays in the original.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SplitOrder {
    pub parts: Vec<Vec<LineQuantity>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SplitResult {
    pub original: OrderView,
    pub created: Vec<OrderView>,
}

/// A shipment of some of a paid order's lines.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateShipment {
    /// Lines and quantities; default: everything not yet in a shipment.
    pub lines: Option<Vec<LineQuantity>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShipRequest {
    pub carrier_id: Option<i64>,
    /// Required unless set before (e.g. for the label).
    pub tracking_number: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetTracking {
    pub carrier_id: Option<i64>,
    pub tracking_number: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePickingList {
    /// Pending shipments to pick; default: every pending shipment not on a list yet.
    pub shipment_ids: Option<Vec<i64>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PickingListView {
    pub id: i64,
    pub number: String,
    pub created_at: DateTime<Utc>,
    pub shipments: Vec<ShipmentView>,
}
