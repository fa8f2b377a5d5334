//! PLACEHOLDER: the WechatPay wire format; being written.

use chrono::{DateTime, Utc};

use super::{
    Ack, Channel, Checkout, Forged, Gateway, GatewayError, Incoming, Notice, PayRequest,
    RefundOutcome, RefundRequest, TradeStatus,
};
use crate::config::WechatPayConfig;
use crate::system::model::PaymentProvider;

pub struct WechatPay;

impl WechatPay {
    pub fn new(
        _config: &WechatPayConfig,
        _max_age_secs: u64,
        _http: reqwest::Client,
    ) -> anyhow::Result<Self> {
        Ok(Self)
    }
}

#[async_trait::async_trait]
impl Gateway for WechatPay {
    fn provider(&self) -> PaymentProvider {
        PaymentProvider::WechatPay
    }

    fn channels(&self) -> &'static [Channel] {
        &[Channel::Page]
    }

    async fn create(&self, _request: &PayRequest) -> Result<Checkout, GatewayError> {
        Err(GatewayError::Unsupported("not yet".into()))
    }

    fn verify(&self, _incoming: &Incoming, _received_at: DateTime<Utc>) -> Result<Notice, Forged> {
        Err(Forged("not yet".into()))
    }

    fn verify_return(&self, _query: &str) -> Result<String, Forged> {
        Err(Forged("not yet".into()))
    }

    fn acknowledge(&self) -> Ack {
        Ack {
            status: 200,
            content_type: "text/plain",
            body: "success".into(),
        }
    }

    fn refuse(&self, _reason: &str) -> Ack {
        Ack {
            status: 400,
            content_type: "text/plain",
            body: "fail".into(),
        }
    }

    async fn query(&self, _payment_number: &str) -> Result<TradeStatus, GatewayError> {
        Err(GatewayError::Unsupported("not yet".into()))
    }

    async fn refund(&self, _request: &RefundRequest) -> Result<RefundOutcome, GatewayError> {
        Err(GatewayError::Unsupported("not yet".into()))
    }

    async fn close(&self, _payment_number: &str) -> Result<(), GatewayError> {
        Err(GatewayError::Unsupported("not yet".into()))
    }
}
