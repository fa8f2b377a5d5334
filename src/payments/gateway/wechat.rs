//! WeChat Pay API v3 for a directly connected merchant (Native QR codes and JSAPI).
//!
//! Every request carries a `WECHATPAY2-SHA256-RSA2048` Authorization header: the merchant
//! key signs "METHOD\nURL\nTIMESTAMP\nNONCE\nBODY\n". Every answer and notification is
//! signed by WeChat Pay's key over "TIMESTAMP\nNONCE\nBODY\n", and a notification's business
//! content is additionally sealed with AES-256-GCM under the APIv3 key, so both are
//! believed only after the signature, the key id, the age and (for notifications) the
//! decryption all check out.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, FixedOffset, Utc};
use rand::Rng as _;
use rand::distr::Alphanumeric;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, USER_AGENT};
use reqwest::{Method, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::crypto::{self, PrivateKey, PublicKey};
use super::{
    Ack, Channel, Checkout, Forged, Gateway, GatewayError, Incoming, Notice, NoticeSubject,
    PayRequest, RefundOutcome, RefundRequest, TradeState, TradeStatus,
};
use crate::config::WechatPayConfig;
use crate::system::model::PaymentProvider;

/// The signature scheme named in the Authorization header.
const SCHEME: &str = "WECHATPAY2-SHA256-RSA2048";
/// WeChat Pay refuses requests without a User-Agent.
const AGENT: &str = concat!("Bazaar/", env!("CARGO_PKG_VERSION"), " (WechatPay-APIv3)");
/// The only resource encryption API v3 uses.
const RESOURCE_ALGORITHM: &str = "AEAD_AES_256_GCM";
/// `description` is `string(127)`: bytes of UTF-8.
const DESCRIPTION_MAX: usize = 127;
/// A refund `reason` is `string(80)`.
const REASON_MAX: usize = 80;
/// The `message` of a notification answer is `string(64)`.
const ACK_MESSAGE_MAX: usize = 64;

pub struct WechatPay {
    mch_id: String,
    app_id: String,
    base_url: String,
    merchant_serial_no: String,
    private_key: PrivateKey,
    platform_key: PublicKey,
    platform_serial: String,
    api_v3_key: Vec<u8>,
    max_age_secs: u64,
    http: reqwest::Client,
}

impl WechatPay {
    /// Reads both keys; an APIv3 key that is not 32 bytes could never open a notification,
    /// so it stops start-up instead of failing on the first payment.
    pub fn new(
        config: &WechatPayConfig,
        max_age_secs: u64,
        http: reqwest::Client,
    ) -> anyhow::Result<Self> {
        let api_v3_key = config.api_v3_key.expose().as_bytes().to_vec();
        anyhow::ensure!(
            api_v3_key.len() == 32,
            "the WeChat Pay APIv3 key must be 32 bytes, not {}",
            api_v3_key.len()
        );
        Url::parse(&config.base_url)
            .map_err(|e| anyhow::anyhow!("WeChat Pay base_url {:?}: {e}", config.base_url))?;
        Ok(Self {
            mch_id: config.mch_id.clone(),
            app_id: config.app_id.clone(),
            base_url: config.base_url.trim_end_matches('/').to_owned(),
            merchant_serial_no: config.merchant_serial_no.clone(),
            private_key: PrivateKey::from_file(&config.private_key_path)?,
            platform_key: PublicKey::from_file(&config.platform_public_key_path)?,
            platform_serial: config.platform_serial.clone(),
            api_v3_key,
            max_age_secs,
            http,
        })
    }

    /// The Authorization header for one request; `url` is the path with its query string,
    /// exactly as sent, and `body` is empty for a GET.
    fn authorization(
        &self,
        method: &str,
        url: &str,
        timestamp: i64,
        nonce: &str,
        body: &str,
    ) -> String {
        let message = request_message(method, url, &timestamp.to_string(), nonce, body);
        let signature = self.private_key.sign_base64(message.as_bytes());
        format!(
            r#"{SCHEME} mchid="{}",nonce_str="{nonce}",signature="{signature}",timestamp="{timestamp}",serial_no="{}""#,
            self.mch_id, self.merchant_serial_no
        )
    }

    /// Checks a message WeChat Pay signed (an answer or a notification): the key id, the
    /// signature and that it was signed within `max_age_secs` of `now`, so a captured one
    /// cannot be replayed later.
    fn check_signed(
        &self,
        signed: &Signed<'_>,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), String> {
        if signed.serial != self.platform_serial {
            return Err(format!(
                "signed with key {:?}, not WeChat Pay's {:?}",
                signed.serial, self.platform_serial
            ));
        }
        let mut message = Vec::with_capacity(body.len() + 64);
        message.extend_from_slice(signed.timestamp.as_bytes());
        message.push(b'\n');
        message.extend_from_slice(signed.nonce.as_bytes());
        message.push(b'\n');
        message.extend_from_slice(body);
        message.push(b'\n');
        if !self.platform_key.verify_base64(&message, signed.signature) {
            return Err("the signature does not verify with WeChat Pay's key".into());
        }
        let timestamp: i64 = signed
            .timestamp
            .parse()
            .map_err(|_| format!("unreadable timestamp {:?}", signed.timestamp))?;
        if now.timestamp().abs_diff(timestamp) > self.max_age_secs {
            return Err(format!(
                "stale signature: timestamp {timestamp}, {}s from now",
                now.timestamp().abs_diff(timestamp)
            ));
        }
        Ok(())
    }

    /// The parameters `wx.requestPayment` / `WeixinJSBridge` takes, signed with the
    /// merchant key over "appId\ntimeStamp\nnonceStr\npackage\n".
    fn sdk_params(&self, prepay_id: &str, timestamp: i64, nonce: &str) -> BTreeMap<String, String> {
        let package = format!("prepay_id={prepay_id}");
        let timestamp = timestamp.to_string();
        let message = format!("{}\n{timestamp}\n{nonce}\n{package}\n", self.app_id);
        let pay_sign = self.private_key.sign_base64(message.as_bytes());
        BTreeMap::from([
            ("appId".to_owned(), self.app_id.clone()),
            ("timeStamp".to_owned(), timestamp),
            ("nonceStr".to_owned(), nonce.to_owned()),
            ("package".to_owned(), package),
            ("signType".to_owned(), "RSA".to_owned()),
            ("paySign".to_owned(), pay_sign),
        ])
    }

    /// Sends one signed request and returns the verified body of a 2xx answer.
    async fn call(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> Result<Vec<u8>, CallError> {
        let url = Url::parse(&format!("{}{path_and_query}", self.base_url))
            .map_err(|e| GatewayError::Unavailable(format!("bad WeChat Pay URL: {e}")))?;
        // Sign the URL as the parser will send it, not as we spelled it.
        let canonical = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        let body = body.map(Value::to_string).unwrap_or_default();
        let authorization = self.authorization(
            method.as_str(),
            &canonical,
            Utc::now().timestamp(),
            &nonce(),
            &body,
        );
        let mut request = self
            .http
            .request(method.clone(), url)
            .header(AUTHORIZATION, authorization)
            .header(ACCEPT, "application/json")
            .header(USER_AGENT, AGENT)
            .header("Wechatpay-Serial", &self.platform_serial);
        if method != Method::GET {
            request = request.header(CONTENT_TYPE, "application/json").body(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| GatewayError::Unavailable(format!("WeChat Pay: {e}")))?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| GatewayError::Unavailable(format!("WeChat Pay: {e}")))?;
        if status.is_server_error() {
            return Err(GatewayError::Unavailable(format!(
                "WeChat Pay answered HTTP {status}: {}",
                snippet(&bytes)
            ))
            .into());
        }
        if status.is_client_error() {
            let error: ApiError = serde_json::from_slice(&bytes).unwrap_or_else(|_| ApiError {
                code: format!("HTTP_{}", status.as_u16()),
                message: snippet(&bytes),
            });
            return Err(CallError::Api {
                status: status.as_u16(),
                code: error.code,
                message: error.message,
            });
        }
        if !status.is_success() {
            return Err(
                GatewayError::BadResponse(format!("WeChat Pay answered HTTP {status}")).into(),
            );
        }
        let signed = Signed::from_headers(&headers).map_err(GatewayError::BadResponse)?;
        self.check_signed(&signed, &bytes, Utc::now())
            .map_err(|e| GatewayError::BadResponse(format!("WeChat Pay answer: {e}")))?;
        Ok(bytes.to_vec())
    }

    fn decrypt(&self, resource: &Resource) -> Result<Vec<u8>, Forged> {
        if resource.algorithm != RESOURCE_ALGORITHM {
            return Err(Forged(format!(
                "resource encrypted with {:?}, not {RESOURCE_ALGORITHM}",
                resource.algorithm
            )));
        }
        open_resource(
            &self.api_v3_key,
            &resource.nonce,
            resource.associated_data.as_deref().unwrap_or(""),
            &resource.ciphertext,
        )
        .ok_or_else(|| Forged("the resource does not decrypt with the APIv3 key".into()))
    }

    fn payment_notice(&self, plain: &[u8]) -> Result<Notice, Forged> {
        let paid: PaidResource = serde_json::from_slice(plain)
            .map_err(|e| Forged(format!("unreadable transaction resource: {e}")))?;
        if paid.mchid != self.mch_id || paid.appid != self.app_id {
            return Err(Forged(format!(
                "the transaction belongs to merchant {:?} / app {:?}, not ours",
                paid.mchid, paid.appid
            )));
        }
        let state = trade_state(&paid.trade_state)
            .ok_or_else(|| Forged(format!("unknown trade_state {:?}", paid.trade_state)))?;
        Ok(Notice {
            subject: NoticeSubject::Payment,
            number: paid.out_trade_no,
            gateway_reference: Some(paid.transaction_id),
            state,
            amount: paid.amount.total,
            currency: paid.amount.currency.unwrap_or_else(|| "CNY".into()),
        })
    }

    fn refund_notice(&self, plain: &[u8]) -> Result<Notice, Forged> {
        let refund: RefundResource = serde_json::from_slice(plain)
            .map_err(|e| Forged(format!("unreadable refund resource: {e}")))?;
        if refund.mchid != self.mch_id {
            return Err(Forged(format!(
                "the refund belongs to merchant {:?}, not ours",
                refund.mchid
            )));
        }
        let state = refund_state(&refund.refund_status)
            .ok_or_else(|| Forged(format!("unknown refund_status {:?}", refund.refund_status)))?;
        Ok(Notice {
            subject: NoticeSubject::Refund,
            number: refund.out_refund_no,
            gateway_reference: Some(refund.refund_id),
            state,
            amount: refund.amount.refund,
            // Domestic refunds are in CNY; the notification does not repeat the currency.
            currency: "CNY".into(),
        })
    }
}

#[async_trait::async_trait]
impl Gateway for WechatPay {
    fn provider(&self) -> PaymentProvider {
        PaymentProvider::WechatPay
    }

    fn channels(&self) -> &'static [Channel] {
        &[Channel::Native, Channel::Jsapi]
    }

    async fn create(&self, request: &PayRequest) -> Result<Checkout, GatewayError> {
        let path = match request.channel {
            Channel::Native => "/v3/pay/transactions/native",
            Channel::Jsapi => "/v3/pay/transactions/jsapi",
            other => {
                return Err(GatewayError::Unsupported(format!(
                    "WeChat Pay does not offer the {} channel",
                    other.as_str()
                )));
            }
        };
        let mut body = json!({
            "appid": self.app_id,
            "mchid": self.mch_id,
            "description": truncate(&request.subject, DESCRIPTION_MAX),
            "out_trade_no": request.number,
            "time_expire": beijing_time(request.expires_at),
            "notify_url": request.notify_url,
            "amount": { "total": request.amount, "currency": request.currency },
        });
        if let Some(ip) = request.client_ip.as_deref().filter(|ip| !ip.is_empty()) {
            body["scene_info"] = json!({ "payer_client_ip": ip });
        }
        if request.channel == Channel::Jsapi {
            let openid = request
                .payer_id
                .as_deref()
                .filter(|id| !id.is_empty())
                .ok_or_else(|| {
                    GatewayError::Unsupported("JSAPI needs the payer's openid".into())
                })?;
            body["payer"] = json!({ "openid": openid });
        }
        let answer = self.call(Method::POST, path, Some(&body)).await?;
        if request.channel == Channel::Native {
            let prepay: NativePrepay = parse(&answer)?;
            Ok(Checkout::QrCode {
                content: prepay.code_url,
            })
        } else {
            let prepay: JsapiPrepay = parse(&answer)?;
            Ok(Checkout::Sdk {
                params: self.sdk_params(&prepay.prepay_id, Utc::now().timestamp(), &nonce()),
            })
        }
    }

    fn verify(&self, incoming: &Incoming, received_at: DateTime<Utc>) -> Result<Notice, Forged> {
        let header = |name: &str| {
            incoming
                .header(name)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| Forged(format!("no {name} header")))
        };
        let signed = Signed {
            timestamp: header("Wechatpay-Timestamp")?,
            nonce: header("Wechatpay-Nonce")?,
            signature: header("Wechatpay-Signature")?,
            serial: header("Wechatpay-Serial")?,
        };
        self.check_signed(&signed, incoming.body.as_bytes(), received_at)
            .map_err(Forged)?;
        let envelope: Envelope = serde_json::from_str(&incoming.body)
            .map_err(|e| Forged(format!("unreadable notification: {e}")))?;
        let plain = self.decrypt(&envelope.resource)?;
        match envelope.event_type.as_str() {
            "TRANSACTION.SUCCESS" => self.payment_notice(&plain),
            "REFUND.SUCCESS" | "REFUND.ABNORMAL" | "REFUND.CLOSED" => self.refund_notice(&plain),
            other => Err(Forged(format!("unexpected event_type {other:?}"))),
        }
    }

    fn verify_return(&self, _query: &str) -> Result<String, Forged> {
        Err(Forged("WeChat Pay does not sign browser returns".into()))
    }

    /// API v3: "接收成功：HTTP应答状态码需返回200或204，无需返回应答报文".
    fn acknowledge(&self) -> Ack {
        Ack {
            status: 200,
            content_type: "application/json",
            body: String::new(),
        }
    }

    /// API v3: a 4XX or 5XX with `{"code":"FAIL","message":…}` makes WeChat Pay retry.
    fn refuse(&self, reason: &str) -> Ack {
        let message = match truncate(reason, ACK_MESSAGE_MAX) {
            "" => "失败",
            message => message,
        };
        Ack {
            status: 400,
            content_type: "application/json",
            body: json!({ "code": "FAIL", "message": message }).to_string(),
        }
    }

    async fn query(&self, payment_number: &str) -> Result<TradeStatus, GatewayError> {
        let path = format!(
            "/v3/pay/transactions/out-trade-no/{}?mchid={}",
            encode(payment_number),
            encode(&self.mch_id)
        );
        let answer = match self.call(Method::GET, &path, None).await {
            Ok(answer) => answer,
            // Never placed (or placed so long ago it is gone): nothing was paid.
            Err(CallError::Api {
                status: 404, code, ..
            }) if code == "ORDER_NOT_EXIST" => {
                return Ok(TradeStatus {
                    state: TradeState::Pending,
                    gateway_reference: None,
                    amount: None,
                    currency: None,
                });
            }
            Err(e) => return Err(e.into()),
        };
        let trade: QueriedTrade = parse(&answer)?;
        if trade
            .out_trade_no
            .as_deref()
            .is_some_and(|n| n != payment_number)
        {
            return Err(GatewayError::BadResponse(format!(
                "asked for trade {payment_number:?}, WeChat Pay answered about {:?}",
                trade.out_trade_no
            )));
        }
        let state = trade_state(&trade.trade_state).ok_or_else(|| {
            GatewayError::BadResponse(format!("unknown trade_state {:?}", trade.trade_state))
        })?;
        let amount = trade.amount.unwrap_or_default();
        Ok(TradeStatus {
            state,
            gateway_reference: trade.transaction_id.filter(|id| !id.is_empty()),
            amount: amount.total,
            currency: amount.currency,
        })
    }

    async fn refund(&self, request: &RefundRequest) -> Result<RefundOutcome, GatewayError> {
        let mut body = json!({
            "out_trade_no": request.payment_number,
            "out_refund_no": request.refund_number,
            "notify_url": request.notify_url,
            "amount": {
                "refund": request.amount,
                "total": request.payment_amount,
                "currency": request.currency,
            },
        });
        let reason = truncate(&request.reason, REASON_MAX);
        if !reason.is_empty() {
            body["reason"] = json!(reason);
        }
        let answer = self
            .call(Method::POST, "/v3/refund/domestic/refunds", Some(&body))
            .await?;
        let refund: CreatedRefund = parse(&answer)?;
        let state = refund_state(&refund.status).ok_or_else(|| {
            GatewayError::BadResponse(format!("unknown refund status {:?}", refund.status))
        })?;
        Ok(RefundOutcome {
            state,
            gateway_reference: Some(refund.refund_id),
        })
    }

    async fn close(&self, payment_number: &str) -> Result<(), GatewayError> {
        let path = format!(
            "/v3/pay/transactions/out-trade-no/{}/close",
            encode(payment_number)
        );
        let body = json!({ "mchid": self.mch_id });
        self.call(Method::POST, &path, Some(&body)).await?;
        Ok(())
    }
}

/// "METHOD\nURL\nTIMESTAMP\nNONCE\nBODY\n", the string a request signature covers.
fn request_message(method: &str, url: &str, timestamp: &str, nonce: &str, body: &str) -> String {
    format!("{method}\n{url}\n{timestamp}\n{nonce}\n{body}\n")
}

/// Opens a notification resource: base64 ciphertext with its GCM tag appended, sealed
/// under the APIv3 key with the resource's nonce and associated data as given (text).
fn open_resource(
    api_v3_key: &[u8],
    nonce: &str,
    associated_data: &str,
    ciphertext: &str,
) -> Option<Vec<u8>> {
    let sealed = STANDARD.decode(ciphertext.trim()).ok()?;
    crypto::aes_256_gcm_open(
        api_v3_key,
        nonce.as_bytes(),
        associated_data.as_bytes(),
        &sealed,
    )
}

/// A trade's `trade_state`; a refunded trade was paid first, so it counts as paid.
fn trade_state(state: &str) -> Option<TradeState> {
    Some(match state {
        "SUCCESS" | "REFUND" => TradeState::Succeeded,
        "NOTPAY" | "USERPAYING" | "ACCEPT" => TradeState::Pending,
        "CLOSED" | "REVOKED" => TradeState::Closed,
        "PAYERROR" => TradeState::Failed,
        _ => return None,
    })
}

fn refund_state(status: &str) -> Option<TradeState> {
    Some(match status {
        "SUCCESS" => TradeState::Succeeded,
        "PROCESSING" => TradeState::Pending,
        "ABNORMAL" | "CLOSED" => TradeState::Failed,
        _ => return None,
    })
}

/// 32 random letters and digits, as the API's `nonce_str` and `nonceStr`.
fn nonce() -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// RFC 3339 in Beijing time, which is how every WeChat Pay example writes `time_expire`.
fn beijing_time(at: DateTime<Utc>) -> String {
    let beijing = FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset");
    at.with_timezone(&beijing)
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so the URL we sign is
/// the URL the parser sends.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn snippet(bytes: &[u8]) -> String {
    truncate(&String::from_utf8_lossy(bytes), 200).to_owned()
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, GatewayError> {
    serde_json::from_slice(bytes)
        .map_err(|e| GatewayError::BadResponse(format!("unreadable WeChat Pay answer: {e}")))
}

/// The four headers WeChat Pay signs answers and notifications with.
struct Signed<'a> {
    timestamp: &'a str,
    nonce: &'a str,
    signature: &'a str,
    serial: &'a str,
}

impl<'a> Signed<'a> {
    fn from_headers(headers: &'a HeaderMap) -> Result<Self, String> {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("WeChat Pay answer without {name}"))
        };
        Ok(Self {
            timestamp: header("Wechatpay-Timestamp")?,
            nonce: header("Wechatpay-Nonce")?,
            signature: header("Wechatpay-Signature")?,
            serial: header("Wechatpay-Serial")?,
        })
    }
}

/// A failed call: WeChat Pay's own refusal (kept apart so `query` can read its code), or
/// anything else.
enum CallError {
    Api {
        status: u16,
        code: String,
        message: String,
    },
    Gateway(GatewayError),
}

impl From<GatewayError> for CallError {
    fn from(e: GatewayError) -> Self {
        Self::Gateway(e)
    }
}

impl From<CallError> for GatewayError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Api { code, message, .. } => Self::Refused(format!("{code}: {message}")),
            CallError::Gateway(e) => e,
        }
    }
}

#[derive(Deserialize)]
struct ApiError {
    code: String,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct NativePrepay {
    code_url: String,
}

#[derive(Deserialize)]
struct JsapiPrepay {
    prepay_id: String,
}

#[derive(Deserialize)]
struct QueriedTrade {
    trade_state: String,
    out_trade_no: Option<String>,
    transaction_id: Option<String>,
    amount: Option<QueriedAmount>,
}

#[derive(Deserialize, Default)]
struct QueriedAmount {
    total: Option<i64>,
    currency: Option<String>,
}

#[derive(Deserialize)]
struct CreatedRefund {
    refund_id: String,
    status: String,
}

#[derive(Deserialize)]
struct Envelope {
    event_type: String,
    resource: Resource,
}

#[derive(Deserialize)]
struct Resource {
    algorithm: String,
    ciphertext: String,
    associated_data: Option<String>,
    nonce: String,
}

#[derive(Deserialize)]
struct PaidResource {
    mchid: String,
    appid: String,
    out_trade_no: String,
    transaction_id: String,
    trade_state: String,
    amount: PaidAmount,
}

#[derive(Deserialize)]
struct PaidAmount {
    total: i64,
    currency: Option<String>,
}

#[derive(Deserialize)]
struct RefundResource {
    mchid: String,
    out_refund_no: String,
    refund_id: String,
    refund_status: String,
    amount: RefundAmount,
}

#[derive(Deserialize)]
struct RefundAmount {
    refund: i64,
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use chrono::{DateTime, Duration, Utc};
    use serde_json::{Value, json};

    use super::{WechatPay, open_resource, request_message, truncate};
    use crate::config::{Secret, WechatPayConfig};
    use crate::payments::gateway::crypto::{PrivateKey, PublicKey};
    use crate::payments::gateway::{Forged, Gateway, Incoming, Notice, NoticeSubject, TradeState};

    const API_V3_KEY: &str = "0123456789abcdefghijABCDEFGHIJ01";
    const PLATFORM_SERIAL: &str = "PUB_KEY_ID_0000000000000000000000000001";
    const WECHAT_PRIVATE: &str =
        include_str!("../../../tests/fixtures/payments/wechat_private.pem");
    const ALIPAY_PRIVATE: &str =
        include_str!("../../../tests/fixtures/payments/alipay_private.pem");
    const MERCHANT_PUBLIC: &str =
        include_str!("../../../tests/fixtures/payments/merchant_public.pem");

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/payments")
            .join(name)
    }

    fn gateway() -> WechatPay {
        let config = WechatPayConfig {
            mch_id: "1900000109".into(),
            app_id: "wxd678efh567hg6787".into(),
            base_url: "http://127.0.0.1:9".into(),
            merchant_serial_no: "1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C".into(),
            private_key_path: fixture("merchant_private.pem"),
            platform_public_key_path: fixture("wechat_public.pem"),
            platform_serial: PLATFORM_SERIAL.into(),
            api_v3_key: Secret::new(API_V3_KEY),
        };
        WechatPay::new(&config, 300, reqwest::Client::new()).unwrap()
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_225_600, 0).unwrap()
    }

    /// Seals `plain` as WeChat Pay does: AES-256-GCM, tag appended, base64.
    fn seal(plain: &str, nonce: &str, associated_data: &str) -> String {
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, API_V3_KEY.as_bytes()).unwrap());
        let mut buffer = plain.as_bytes().to_vec();
        key.seal_in_place_append_tag(
            Nonce::try_assume_unique_for_key(nonce.as_bytes()).unwrap(),
            Aad::from(associated_data.as_bytes()),
            &mut buffer,
        )
        .unwrap();
        STANDARD.encode(buffer)
    }

    fn envelope(event_type: &str, resource: &Value) -> String {
        json!({
            "id": "EV-2018022511223320873",
            "create_time": "2026-01-01T08:00:00+08:00",
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": "支付成功",
            "resource": {
                "original_type": "transaction",
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": seal(&resource.to_string(), "fdasflkja484", "transaction"),
                "associated_data": "transaction",
                "nonce": "fdasflkja484",
            },
        })
        .to_string()
    }

    fn signed(body: String, timestamp: i64, serial: &str, key_pem: &str) -> Incoming {
        let nonce = "5K8264ILTKCH16CQ2502SI8ZNMTM67VS";
        let message = format!("{timestamp}\n{nonce}\n{body}\n");
        let signature = PrivateKey::from_pem(key_pem)
            .unwrap()
            .sign_base64(message.as_bytes());
        Incoming {
            headers: vec![
                ("wechatpay-timestamp".into(), timestamp.to_string()),
                ("wechatpay-nonce".into(), nonce.into()),
                ("wechatpay-signature".into(), signature),
                ("wechatpay-serial".into(), serial.into()),
                (
                    "wechatpay-signature-type".into(),
                    "WECHATPAY2-SHA256-RSA2048".into(),
                ),
            ],
            body,
        }
    }

    fn transaction(mchid: &str, total: i64) -> Value {
        json!({
            "mchid": mchid,
            "appid": "wxd678efh567hg6787",
            "out_trade_no": "1217752501201407033233368018",
            "transaction_id": "4200000000000000000000000001",
            "trade_type": "NATIVE",
            "trade_state": "SUCCESS",
            "trade_state_desc": "支付成功",
            "bank_type": "CMC",
            "success_time": "2026-01-01T08:00:00+08:00",
            "payer": { "openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o" },
            "amount": { "total": total, "payer_total": total, "currency": "CNY", "payer_currency": "CNY" },
        })
    }

    fn paid(total: i64) -> Incoming {
        let body = envelope("TRANSACTION.SUCCESS", &transaction("1900000109", total));
        signed(body, now().timestamp(), PLATFORM_SERIAL, WECHAT_PRIVATE)
    }

    #[test]
    fn the_request_message_has_five_lines_each_ending_in_a_newline() {
        // The GET example of the v3 signing guide: an empty body still ends its own line.
        assert_eq!(
            request_message(
                "GET",
                "/v3/certificates",
                "1554208460",
                "593BEC0C930BF1AFEB40B4A08C8FB242",
                ""
            ),
            "GET\n/v3/certificates\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n\n"
        );
    }

    #[test]
    fn the_authorization_header_signs_the_request_with_the_merchant_key() {
        let gateway = gateway();
        let body = r#"{"mchid":"1900000109","out_trade_no":"N1"}"#;
        let header = gateway.authorization(
            "POST",
            "/v3/pay/transactions/native",
            1554208460,
            "593BEC0C930BF1AFEB40B4A08C8FB242",
            body,
        );
        let rest = header
            .strip_prefix(
                r#"WECHATPAY2-SHA256-RSA2048 mchid="1900000109",nonce_str="593BEC0C930BF1AFEB40B4A08C8FB242",signature=""#,
            )
            .unwrap();
        let (signature, tail) = rest.split_once('"').unwrap();
        assert_eq!(
            tail,
            r#",timestamp="1554208460",serial_no="1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C""#
        );
        let merchant = PublicKey::from_pem(MERCHANT_PUBLIC).unwrap();
        let message = format!(
            "POST\n/v3/pay/transactions/native\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n{body}\n"
        );
        assert!(merchant.verify_base64(message.as_bytes(), signature));
        assert!(!merchant.verify_base64(b"something else", signature));
    }

    #[test]
    fn jsapi_parameters_are_signed_over_four_lines() {
        let params = gateway().sdk_params("wx201410272009395522657a690389285100", 1414561699, "N");
        assert_eq!(params["appId"], "wxd678efh567hg6787");
        assert_eq!(params["timeStamp"], "1414561699");
        assert_eq!(
            params["package"],
            "prepay_id=wx201410272009395522657a690389285100"
        );
        assert_eq!(params["signType"], "RSA");
        let message =
            "wxd678efh567hg6787\n1414561699\nN\nprepay_id=wx201410272009395522657a690389285100\n";
        assert!(
            PublicKey::from_pem(MERCHANT_PUBLIC)
                .unwrap()
                .verify_base64(message.as_bytes(), &params["paySign"])
        );
    }

    #[test]
    fn a_signed_payment_notification_verifies() {
        let notice = gateway().verify(&paid(8800), now()).unwrap();
        assert_eq!(
            notice,
            Notice {
                subject: NoticeSubject::Payment,
                number: "1217752501201407033233368018".into(),
                gateway_reference: Some("4200000000000000000000000001".into()),
                state: TradeState::Succeeded,
                amount: 8800,
                currency: "CNY".into(),
            }
        );
    }

    #[test]
    fn a_signed_refund_notification_verifies() {
        let resource = json!({
            "mchid": "1900000109",
            "out_trade_no": "1217752501201407033233368018",
            "transaction_id": "4200000000000000000000000001",
            "out_refund_no": "R1",
            "refund_id": "50000000382019052709732678859",
            "refund_status": "SUCCESS",
            "success_time": "2026-01-01T08:00:00+08:00",
            "user_received_account": "招商银行信用卡0403",
            "amount": { "total": 8800, "refund": 300, "payer_total": 8800, "payer_refund": 300 },
        });
        let body = envelope("REFUND.SUCCESS", &resource);
        let incoming = signed(body, now().timestamp(), PLATFORM_SERIAL, WECHAT_PRIVATE);
        let notice = gateway().verify(&incoming, now()).unwrap();
        assert_eq!(notice.subject, NoticeSubject::Refund);
        assert_eq!(notice.number, "R1");
        assert_eq!(notice.state, TradeState::Succeeded);
        assert_eq!(notice.amount, 300);
        assert_eq!(
            notice.gateway_reference.as_deref(),
            Some("50000000382019052709732678859")
        );

        let mut abnormal = resource.clone();
        abnormal["refund_status"] = json!("ABNORMAL");
        let body = envelope("REFUND.ABNORMAL", &abnormal);
        let incoming = signed(body, now().timestamp(), PLATFORM_SERIAL, WECHAT_PRIVATE);
        assert_eq!(
            gateway().verify(&incoming, now()).unwrap().state,
            TradeState::Failed
        );
    }

    fn forged(incoming: &Incoming, received_at: DateTime<Utc>) -> String {
        let Err(Forged(reason)) = gateway().verify(incoming, received_at) else {
            panic!("a forged notification verified");
        };
        reason
    }

    #[test]
    fn another_key_id_is_refused() {
        let body = envelope("TRANSACTION.SUCCESS", &transaction("1900000109", 8800));
        let incoming = signed(body, now().timestamp(), "PUB_KEY_ID_OTHER", WECHAT_PRIVATE);
        assert!(forged(&incoming, now()).contains("PUB_KEY_ID_OTHER"));
    }

    #[test]
    fn another_key_is_refused() {
        let body = envelope("TRANSACTION.SUCCESS", &transaction("1900000109", 8800));
        let incoming = signed(body, now().timestamp(), PLATFORM_SERIAL, ALIPAY_PRIVATE);
        assert!(forged(&incoming, now()).contains("signature"));
    }

    #[test]
    fn a_body_changed_after_signing_is_refused() {
        let mut incoming = paid(8800);
        incoming.body = incoming.body.replace("EV-2018", "EV-2019");
        assert!(forged(&incoming, now()).contains("signature"));
        let mut incoming = paid(8800);
        incoming.body.push(' ');
        forged(&incoming, now());
    }

    #[test]
    fn a_ciphertext_that_does_not_open_is_refused_even_when_signed() {
        let mut envelope: Value = serde_json::from_str(&envelope(
            "TRANSACTION.SUCCESS",
            &transaction("1900000109", 1),
        ))
        .unwrap();
        let mut sealed = STANDARD
            .decode(envelope["resource"]["ciphertext"].as_str().unwrap())
            .unwrap();
        sealed[3] ^= 0x20;
        envelope["resource"]["ciphertext"] = json!(STANDARD.encode(sealed));
        let incoming = signed(
            envelope.to_string(),
            now().timestamp(),
            PLATFORM_SERIAL,
            WECHAT_PRIVATE,
        );
        assert!(forged(&incoming, now()).contains("decrypt"));

        // Sealed under the right key, but with other associated data than it names.
        envelope["resource"]["associated_data"] = json!("other");
        let incoming = signed(
            envelope.to_string(),
            now().timestamp(),
            PLATFORM_SERIAL,
            WECHAT_PRIVATE,
        );
        assert!(forged(&incoming, now()).contains("decrypt"));
    }

    #[test]
    fn a_notification_signed_too_long_ago_or_ahead_is_refused() {
        let incoming = paid(8800);
        let late = forged(&incoming, now() + Duration::seconds(301));
        assert!(late.starts_with("stale"), "{late}");
        let early = forged(&incoming, now() - Duration::seconds(301));
        assert!(early.starts_with("stale"), "{early}");
        assert!(
            gateway()
                .verify(&incoming, now() + Duration::seconds(300))
                .is_ok()
        );
    }

    #[test]
    fn another_merchants_transaction_is_refused() {
        let body = envelope("TRANSACTION.SUCCESS", &transaction("1900000999", 8800));
        let incoming = signed(body, now().timestamp(), PLATFORM_SERIAL, WECHAT_PRIVATE);
        assert!(forged(&incoming, now()).contains("1900000999"));

        let mut other_app = transaction("1900000109", 8800);
        other_app["appid"] = json!("wx0000000000000000");
        let body = envelope("TRANSACTION.SUCCESS", &other_app);
        let incoming = signed(body, now().timestamp(), PLATFORM_SERIAL, WECHAT_PRIVATE);
        forged(&incoming, now());
    }

    #[test]
    fn a_notification_missing_a_header_is_refused() {
        let mut incoming = paid(8800);
        incoming
            .headers
            .retain(|(name, _)| name != "wechatpay-nonce");
        assert!(forged(&incoming, now()).contains("Wechatpay-Nonce"));
    }

    #[test]
    fn browser_returns_are_never_believed() {
        assert!(gateway().verify_return("out_trade_no=N1").is_err());
    }

    #[test]
    fn acknowledgements_follow_the_v3_notification_rules() {
        let gateway = gateway();
        let ack = gateway.acknowledge();
        assert_eq!((ack.status, ack.body.as_str()), (200, ""));
        let refused = gateway.refuse("amount \"differs\"");
        assert_eq!(refused.status, 400);
        let body: Value = serde_json::from_str(&refused.body).unwrap();
        assert_eq!(
            body,
            json!({ "code": "FAIL", "message": "amount \"differs\"" })
        );
    }

    /// The AEAD_AES_256_GCM vector in WeChat Pay's own Java SDK (`AeadAesCipherTest`).
    #[test]
    fn the_published_wechatpay_java_vector_opens() {
        let key = b"a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb";
        assert_eq!(
            open_resource(
                key,
                "uluk4a9R25RW",
                "associatedData",
                "ulwSiIajGClcvcOYvOQ7+l+0PAbzzwI="
            )
            .as_deref(),
            Some(&b"message"[..])
        );
        assert_eq!(
            open_resource(
                key,
                "uluk4a9R25RW",
                "associated",
                "ulwSiIajGClcvcOYvOQ7+l+0PAbzzwI="
            ),
            None
        );
        assert_eq!(
            open_resource(key, "uluk4a9R25RW", "associatedData", "not base64"),
            None
        );
    }

    #[test]
    fn a_short_api_v3_key_stops_start_up() {
        let config = WechatPayConfig {
            mch_id: "1900000109".into(),
            app_id: "wxd678efh567hg6787".into(),
            base_url: "https://api.mch.weixin.qq.com".into(),
            merchant_serial_no: "S".into(),
            private_key_path: fixture("merchant_private.pem"),
            platform_public_key_path: fixture("wechat_public.pem"),
            platform_serial: PLATFORM_SERIAL.into(),
            api_v3_key: Secret::new("too short"),
        };
        assert!(WechatPay::new(&config, 300, reqwest::Client::new()).is_err());
    }

    #[test]
    fn descriptions_are_cut_at_a_character_boundary() {
        let subject = "订".repeat(50);
        let cut = truncate(&subject, 127);
        assert_eq!(cut.len(), 126);
        assert_eq!(truncate("short", 127), "short");
        assert_eq!(super::beijing_time(now()), "2026-01-01T08:00:00+08:00");
        assert_eq!(super::encode("a b/ü"), "a%20b%2F%C3%BC");
    }
}
