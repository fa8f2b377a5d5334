//! The gateways Bazaar pays through, behind one interface, so the payment flow (create,
//! notify, query, refund, close) is written once and each provider only speaks its own
//! wire format and signature scheme.

pub mod alipay;
pub mod crypto;
pub mod unionpay;
pub mod wechat;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::config::Config;
use crate::system::model::PaymentProvider;

/// How the customer pays at the gateway; each gateway offers some of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// A desktop browser is sent to the gateway's cashier page.
    Page,
    /// A mobile browser is sent to the gateway's mobile cashier.
    Wap,
    /// A QR code the customer scans with the gateway's app.
    Native,
    /// Inside the gateway's app (WeChat official account or mini program).
    Jsapi,
    /// Paid outside any gateway: bank transfer or cash on delivery.
    Offline,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Page => "page",
            Self::Wap => "wap",
            Self::Native => "native",
            Self::Jsapi => "jsapi",
            Self::Offline => "offline",
        }
    }
}

/// What Bazaar asks a gateway to collect.
#[derive(Debug, Clone)]
pub struct PayRequest {
    /// Our trade number (`out_trade_no`): at most 32 letters and digits.
    pub number: String,
    /// Shown to the payer, e.g. "Bazaar order 20261123-0001".
    pub subject: String,
    /// Minor units (fen).
    pub amount: i64,
    pub currency: String,
    pub channel: Channel,
    pub notify_url: String,
    pub return_url: Option<String>,
    pub client_ip: Option<String>,
    /// The payer's id at the gateway (WeChat `openid`), needed for JSAPI.
    pub payer_id: Option<String>,
    /// The gateway closes the trade after this.
    pub expires_at: DateTime<Utc>,
}

/// What the client needs to pay, returned to it as is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Checkout {
    /// Send the browser here (a signed GET URL).
    Redirect { url: String },
    /// Auto-submit this form to the gateway.
    Form {
        action: String,
        method: String,
        fields: BTreeMap<String, String>,
    },
    /// Render this as a QR code.
    QrCode { content: String },
    /// Hand these to the gateway's in-app SDK (WeChat `requestPayment`).
    Sdk { params: BTreeMap<String, String> },
    /// Nothing to do at a gateway; shown to the customer (bank details, cash on delivery).
    Instructions { text: String },
}

/// A notification exactly as it arrived; stored before anything else is done with it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Incoming {
    /// Lower-case header names with their values, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Incoming {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The state of a trade or refund at the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TradeState {
    /// The money arrived (or, for a refund, left).
    Succeeded,
    /// Still waiting for the payer (or the refund is in progress).
    Pending,
    /// Closed or cancelled without money moving.
    Closed,
    /// Refused by the gateway.
    Failed,
}

/// What a verified notification says happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub subject: NoticeSubject,
    /// Our number: the payment's `out_trade_no`, or the refund's `out_refund_no`.
    pub number: String,
    /// The gateway's own trade or refund number.
    pub gateway_reference: Option<String>,
    pub state: TradeState,
    /// Minor units the gateway says moved (the trade total, or the refund amount).
    pub amount: i64,
    pub currency: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeSubject {
    Payment,
    Refund,
}

/// A trade as the gateway reports it when queried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TradeStatus {
    pub state: TradeState,
    pub gateway_reference: Option<String>,
    pub amount: Option<i64>,
    pub currency: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RefundRequest {
    pub payment_number: String,
    pub gateway_reference: Option<String>,
    /// Our refund number (`out_refund_no`); the gateway refunds once per number.
    pub refund_number: String,
    pub amount: i64,
    /// The original payment's amount (WeChat wants both).
    pub payment_amount: i64,
    pub currency: String,
    pub reason: String,
    pub notify_url: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundOutcome {
    /// `Succeeded` at once (Alipay), or `Pending` until a notification or query says so.
    pub state: TradeState,
    pub gateway_reference: Option<String>,
}

/// The answer a gateway expects to a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The gateway answered and refused (its business error code and message).
    #[error("the gateway refused: {0}")]
    Refused(String),
    /// The gateway could not be reached or failed (network, 5xx, time-out).
    #[error("the gateway is unavailable: {0}")]
    Unavailable(String),
    /// The answer was unsigned, wrongly signed or unreadable: never trusted.
    #[error("the gateway's answer cannot be trusted: {0}")]
    BadResponse(String),
    /// This gateway cannot do that (e.g. a channel it does not offer).
    #[error("{0}")]
    Unsupported(String),
}

/// Why a notification was not believed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Forged(pub String);

/// One payment gateway's side of the protocol.
#[async_trait::async_trait]
pub trait Gateway: Send + Sync {
    fn provider(&self) -> PaymentProvider;

    /// Channels this gateway offers, the first being the default.
    fn channels(&self) -> &'static [Channel];

    /// Signs and, where the gateway needs a server call first (WeChat prepay), places the
    /// order at the gateway; returns what the client needs to pay.
    async fn create(&self, request: &PayRequest) -> Result<Checkout, GatewayError>;

    /// Checks a notification's signature (and, for WeChat, decrypts its resource).
    /// `received_at` is when it arrived, so a stored notification verifies the same later.
    fn verify(&self, incoming: &Incoming, received_at: DateTime<Utc>) -> Result<Notice, Forged>;

    /// Checks the signed query string of a browser returning from the gateway; returns our
    /// payment number. Never marks anything paid: only notifications and queries do.
    fn verify_return(&self, query: &str) -> Result<String, Forged>;

    /// The answer that tells the gateway the notification was taken (it stops retrying).
    fn acknowledge(&self) -> Ack;

    /// The answer to a notification that was refused (the gateway will retry).
    fn refuse(&self, reason: &str) -> Ack;

    /// Asks the gateway how a trade stands.
    async fn query(&self, payment_number: &str) -> Result<TradeStatus, GatewayError>;

    async fn refund(&self, request: &RefundRequest) -> Result<RefundOutcome, GatewayError>;

    /// Closes an unpaid trade so it can no longer be paid.
    async fn close(&self, payment_number: &str) -> Result<(), GatewayError>;
}

/// The gateways configured for this shop.
#[derive(Clone, Default)]
pub struct Gateways(HashMap<PaymentProvider, Arc<dyn Gateway>>);

impl Gateways {
    /// Reads each configured gateway's keys; a key that cannot be read stops start-up.
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let payments = &config.payments;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()?;
        let mut gateways: HashMap<PaymentProvider, Arc<dyn Gateway>> = HashMap::new();
        if let Some(c) = &payments.alipay {
            gateways.insert(
                PaymentProvider::Alipay,
                Arc::new(alipay::Alipay::new(c, http.clone())?),
            );
        }
        if let Some(c) = &payments.wechat_pay {
            gateways.insert(
                PaymentProvider::WechatPay,
                Arc::new(wechat::WechatPay::new(
                    c,
                    payments.notification_max_age_secs,
                    http.clone(),
                )?),
            );
        }
        if let Some(c) = &payments.unionpay {
            gateways.insert(
                PaymentProvider::Unionpay,
                Arc::new(unionpay::Unionpay::new(c, http)?),
            );
        }
        Ok(Self(gateways))
    }

    pub fn get(&self, provider: PaymentProvider) -> Option<&Arc<dyn Gateway>> {
        self.0.get(&provider)
    }
}

/// Whether a payment method of `provider` can be offered: bank transfer and cash on
/// delivery always, a gateway only when its keys are configured.
pub fn offered(gateways: &Gateways, provider: &str) -> bool {
    match PaymentProvider::parse(provider) {
        Some(PaymentProvider::Manual | PaymentProvider::CashOnDelivery) => true,
        Some(gateway) => gateways.get(gateway).is_some(),
        None => false,
    }
}

/// Minor units as the decimal yuan string Alipay wants ("12.30").
pub fn yuan(amount: i64) -> String {
    let sign = if amount < 0 { "-" } else { "" };
    let abs = amount.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// Parses a decimal amount with at most two decimals ("12.3", "12.30", "12") into minor
/// units; anything else is refused rather than rounded.
pub fn parse_yuan(text: &str) -> Option<i64> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || frac.len() > 2 {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let frac: i64 = match frac.len() {
        0 => 0,
        1 => frac.parse::<i64>().ok()? * 10,
        _ => frac.parse().ok()?,
    };
    whole.checked_mul(100)?.checked_add(frac)
}

#[cfg(test)]
mod tests {
    use super::{parse_yuan, yuan};

    #[test]
    fn yuan_round_trips_minor_units() {
        for (minor, text) in [
            (0, "0.00"),
            (5, "0.05"),
            (1230, "12.30"),
            (100001, "1000.01"),
        ] {
            assert_eq!(yuan(minor), text);
            assert_eq!(parse_yuan(text), Some(minor));
        }
        assert_eq!(parse_yuan("12.3"), Some(1230));
        assert_eq!(parse_yuan("12"), Some(1200));
        for bad in ["", "1.234", "-1.00", "1,00", "abc", ".5", "1.x"] {
            assert_eq!(parse_yuan(bad), None, "{bad}");
        }
    }
}
