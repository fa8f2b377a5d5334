//! Requests and views of the payments API.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::entity::{ledger, notification, payment};
use super::gateway::{Channel, Checkout};
pub use crate::orders::model::RefundView;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Recorded; the gateway has not been asked yet.
    Created,
    /// Waiting for the customer, the bank transfer or the carrier.
    Pending,
    Succeeded,
    /// The gateway refused to place it.
    Failed,
    /// Closed unpaid (the order was cancelled or timed out).
    Closed,
    /// Money arrived that does not match, or that the order no longer wants: staff decide.
    Review,
}

impl PaymentStatus {
    const ALL: [Self; 6] = [
        Self::Created,
        Self::Pending,
        Self::Succeeded,
        Self::Failed,
        Self::Closed,
        Self::Review,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Closed => "closed",
            Self::Review => "review",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartPayment {
    /// A payment method's code (`GET /payment-methods`).
    pub method: String,
    /// Defaults to the gateway's first channel.
    pub channel: Option<Channel>,
    /// The payer's id at the gateway (WeChat openid), for in-app payment.
    pub payer_id: Option<String>,
    #[serde(skip)]
    pub client_ip: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentView {
    pub id: i64,
    pub number: String,
    pub order_id: i64,
    pub provider: String,
    pub method_code: Option<String>,
    pub channel: String,
    pub amount: i64,
    pub currency: String,
    pub status: PaymentStatus,
    /// What the client does next: follow a URL, submit a form, show a QR code.
    pub checkout: Option<Checkout>,
    pub gateway_reference: Option<String>,
    pub refunded_amount: i64,
    pub review_reason: Option<String>,
    pub reference: Option<String>,
    pub staff_id: Option<i64>,
    pub paid_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<payment::Model> for PaymentView {
    fn from(p: payment::Model) -> Self {
        Self {
            id: p.id,
            status: PaymentStatus::parse(&p.status).unwrap_or(PaymentStatus::Review),
            checkout: p
                .checkout
                .as_deref()
                .and_then(|c| serde_json::from_str(c).ok()),
            number: p.number,
            order_id: p.order_id,
            provider: p.provider,
            method_code: p.method_code,
            channel: p.channel,
            amount: p.amount,
            currency: p.currency,
            gateway_reference: p.gateway_reference,
            refunded_amount: p.refunded_amount,
            review_reason: p.review_reason,
            reference: p.reference,
            staff_id: p.staff_id,
            paid_at: p.paid_at,
            closed_at: p.closed_at,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationView {
    pub id: i64,
    pub provider: String,
    pub status: String,
    pub payment_number: Option<String>,
    pub outcome: Option<String>,
    pub remote_ip: Option<String>,
    /// The body exactly as received.
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub processed_at: Option<DateTime<Utc>>,
}

impl From<notification::Model> for NotificationView {
    fn from(n: notification::Model) -> Self {
        Self {
            id: n.id,
            provider: n.provider,
            status: n.status,
            payment_number: n.payment_number,
            outcome: n.outcome,
            remote_ip: n.remote_ip,
            body: n.body,
            created_at: n.created_at,
            processed_at: n.processed_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerView {
    pub id: i64,
    pub kind: String,
    pub amount: i64,
    pub currency: String,
    pub reference: String,
    pub staff_id: Option<i64>,
    pub created_at: DateTime<Utc>,
}

impl From<ledger::Model> for LedgerView {
    fn from(l: ledger::Model) -> Self {
        Self {
            id: l.id,
            kind: l.kind,
            amount: l.amount,
            currency: l.currency,
            reference: l.reference,
            staff_id: l.staff_id,
            created_at: l.created_at,
        }
    }
}

/// A payment with everything that happened to it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentDetail {
    #[serde(flatten)]
    pub payment: PaymentView,
    pub notifications: Vec<NotificationView>,
    pub ledger: Vec<LedgerView>,
    pub refunds: Vec<RefundView>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PaymentFilter {
    pub provider: Option<String>,
    pub status: Option<PaymentStatus>,
    pub order_id: Option<i64>,
    /// Created at or after.
    pub from: Option<DateTime<Utc>>,
    /// Created before.
    pub to: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NotificationFilter {
    pub provider: Option<String>,
    pub status: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ManualPayment {
    /// The bank's transfer reference.
    pub reference: String,
    /// Where the proof is (a scan's URL, the statement line).
    pub proof: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRefund {
    /// Minor units; at most what the order's payments can still refund.
    pub amount: i64,
    pub reason: String,
    /// For money paid outside a gateway: the reference of the transfer back.
    pub reference: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ExecuteRefund {
    /// For money paid outside a gateway: the reference of the transfer back.
    pub reference: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RefundFilter {
    pub status: Option<String>,
    pub order_id: Option<i64>,
}
