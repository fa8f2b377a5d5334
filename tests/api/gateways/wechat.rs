//! A WeChat Pay API v3 double: an HTTP server on a loopback port that checks Bazaar's
//! `WECHATPAY2-SHA256-RSA2048` request signatures with the merchant's public key (the `rsa`
//! crate, not Bazaar's aws-lc-rs code), keeps trades and refunds as WeChat Pay would, signs
//! its answers with its own key and sends notifications sealed with the APIv3 key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bazaar::config::{Config, Secret, WechatPayConfig};
use chrono::{DateTime, FixedOffset, Utc};
use rand::Rng as _;
use rand::distr::Alphanumeric;
use rsa::RsaPublicKey;
use rsa::pkcs1v15::{SigningKey, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::sha2::Sha256;
use serde_json::{Value, json};

use super::{
    Notification, SandboxGateway, SeenRequest, Tamper, fixture, sign, signing_key, verify,
};

pub const MCH_ID: &str = "1900000109";
pub const APP_ID: &str = "wxd678efh567hg6787";
/// The merchant API certificate's serial number, which names the key Bazaar signs with.
pub const MERCHANT_SERIAL: &str = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1";
/// The id of the key this double signs with (a WeChat Pay public key id).
pub const PLATFORM_SERIAL: &str = "PUB_KEY_ID_SANDBOX";
pub const API_V3_KEY: &str = "bazaarSandboxApiV3Key0123456789a";
const SCHEME: &str = "WECHATPAY2-SHA256-RSA2048";

pub struct WechatSandbox {
    url: String,
    inner: Arc<Inner>,
}

struct Inner {
    /// WeChat Pay's key: answers and notifications.
    wechat: SigningKey<Sha256>,
    /// Someone else's key, for `Tamper::WrongKey`.
    stranger: SigningKey<Sha256>,
    /// The shop's public key: checks Authorization headers and JSAPI `paySign`.
    merchant: VerifyingKey<Sha256>,
    state: Mutex<Sandbox>,
}

#[derive(Default)]
struct Sandbox {
    trades: HashMap<String, Trade>,
    refunds: HashMap<String, Refund>,
    requests: Vec<SeenRequest>,
    refuse_refunds: bool,
}

#[derive(Clone)]
struct Trade {
    out_trade_no: String,
    trade_type: &'static str,
    description: String,
    total: i64,
    currency: String,
    notify_url: String,
    /// Native: what the QR code says.
    code_url: Option<String>,
    /// JSAPI: what `requestPayment` names.
    prepay_id: Option<String>,
    openid: Option<String>,
    /// NOTPAY, SUCCESS, CLOSED or REFUND.
    state: &'static str,
    transaction_id: Option<String>,
}

#[derive(Clone)]
struct Refund {
    out_refund_no: String,
    out_trade_no: String,
    refund_id: String,
    refund: i64,
    total: i64,
    notify_url: String,
    /// PROCESSING until `refund_notification` reports it done.
    status: &'static str,
}

impl WechatSandbox {
    /// Starts the double on a free loopback port.
    pub async fn start() -> Self {
        let inner = Arc::new(Inner {
            wechat: signing_key("wechat_private.pem"),
            stranger: signing_key("alipay_private.pem"),
            merchant: VerifyingKey::new(
                RsaPublicKey::from_public_key_pem(&read(fixture("merchant_public.pem"))).unwrap(),
            ),
            state: Mutex::default(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(inner.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, inner }
    }

    /// Bazaar's configuration for this double.
    pub fn wechat_config(&self) -> WechatPayConfig {
        WechatPayConfig {
            mch_id: MCH_ID.into(),
            app_id: APP_ID.into(),
            base_url: self.url.clone(),
            merchant_serial_no: MERCHANT_SERIAL.into(),
            private_key_path: fixture("merchant_private.pem"),
            platform_public_key_path: fixture("wechat_public.pem"),
            platform_serial: PLATFORM_SERIAL.into(),
            api_v3_key: Secret::new(API_V3_KEY),
        }
    }

    /// Where WeChat Pay sends the trade's notifications (the `notify_url` Bazaar gave).
    pub fn notify_url(&self, out_trade_no: &str) -> Option<String> {
        let state = self.inner.lock();
        state.trades.get(out_trade_no).map(|t| t.notify_url.clone())
    }

    /// The trade's state as WeChat Pay holds it (`NOTPAY`, `SUCCESS`, `CLOSED`, `REFUND`).
    pub fn trade_state(&self, out_trade_no: &str) -> Option<&'static str> {
        self.inner.lock().trades.get(out_trade_no).map(|t| t.state)
    }

    /// The notification WeChat Pay would send for `resource`, signed by `key` at `timestamp`.
    fn notification(
        &self,
        event_type: &str,
        summary: &str,
        original_type: &str,
        resource: &Value,
        key: &SigningKey<Sha256>,
        timestamp: i64,
    ) -> Notification {
        let body = envelope(event_type, summary, original_type, resource);
        let nonce = random_text(32);
        let signature = sign(key, &format!("{timestamp}\n{nonce}\n{body}\n"));
        Notification {
            headers: vec![
                ("Wechatpay-Timestamp".into(), timestamp.to_string()),
                ("Wechatpay-Nonce".into(), nonce),
                ("Wechatpay-Signature".into(), signature),
                ("Wechatpay-Serial".into(), PLATFORM_SERIAL.into()),
                ("Wechatpay-Signature-Type".into(), SCHEME.into()),
            ],
            content_type: "application/json",
            body,
        }
    }
}

#[async_trait::async_trait]
impl SandboxGateway for WechatSandbox {
    fn provider(&self) -> &'static str {
        "wechat_pay"
    }

    fn configure(&self, config: &mut Config) {
        config.payments.wechat_pay = Some(self.wechat_config());
    }

    async fn pay(&self, checkout: &Value) -> String {
        let mut state = self.inner.lock();
        let trade = match checkout["kind"].as_str() {
            Some("qr_code") => {
                let content = checkout["content"].as_str().expect("a QR code's content");
                state
                    .trades
                    .values_mut()
                    .find(|t| t.code_url.as_deref() == Some(content))
                    .unwrap_or_else(|| panic!("no trade was placed for the QR code {content}"))
            }
            Some("sdk") => {
                let params = &checkout["params"];
                let param = |name: &str| {
                    params[name]
                        .as_str()
                        .unwrap_or_else(|| panic!("requestPayment without {name}"))
                };
                assert_eq!(param("appId"), APP_ID);
                assert_eq!(param("signType"), "RSA");
                let message = format!(
                    "{}\n{}\n{}\n{}\n",
                    param("appId"),
                    param("timeStamp"),
                    param("nonceStr"),
                    param("package")
                );
                assert!(
                    verify(&self.inner.merchant, &message, param("paySign")),
                    "the paySign does not verify with the merchant's key"
                );
                let prepay_id = param("package")
                    .strip_prefix("prepay_id=")
                    .expect("package is prepay_id=…");
                state
                    .trades
                    .values_mut()
                    .find(|t| t.prepay_id.as_deref() == Some(prepay_id))
                    .unwrap_or_else(|| panic!("no trade was placed for {prepay_id}"))
            }
            other => panic!("WeChat Pay cannot be paid with a {other:?} checkout"),
        };
        assert_eq!(
            trade.state, "NOTPAY",
            "trade {} cannot be paid",
            trade.out_trade_no
        );
        trade.state = "SUCCESS";
        trade.transaction_id = Some(format!("4200{}", random_digits(24)));
        trade.out_trade_no.clone()
    }

    fn paid_notification(&self, payment_number: &str, tamper: Tamper) -> Notification {
        let trade = self
            .inner
            .lock()
            .trades
            .get(payment_number)
            .cloned()
            .unwrap_or_else(|| panic!("no trade {payment_number}"));
        assert!(
            matches!(trade.state, "SUCCESS" | "REFUND"),
            "trade {payment_number} was not paid"
        );
        let now = Utc::now().timestamp();
        let (key, timestamp, amount) = match tamper {
            Tamper::None | Tamper::AmountAfterSigning(_) => (&self.inner.wechat, now, trade.total),
            Tamper::SignedAmount(amount) => (&self.inner.wechat, now, amount),
            Tamper::WrongKey => (&self.inner.stranger, now, trade.total),
            Tamper::Stale => (&self.inner.wechat, now - 3600, trade.total),
        };
        let event = |amount| {
            (
                "TRANSACTION.SUCCESS",
                "支付成功",
                "transaction",
                paid(&trade, amount),
            )
        };
        let (event_type, summary, original_type, resource) = event(amount);
        let mut notification = self.notification(
            event_type,
            summary,
            original_type,
            &resource,
            key,
            timestamp,
        );
        if let Tamper::AmountAfterSigning(changed) = tamper {
            // Re-sealed with the new amount (whoever did this has the APIv3 key), but the
            // signature is still the one over the original body.
            let (event_type, summary, original_type, resource) = event(changed);
            notification.body = envelope(event_type, summary, original_type, &resource);
        }
        notification
    }

    fn refund_notification(&self, refund_number: &str) -> Option<Notification> {
        let (refund, trade) = {
            let mut state = self.inner.lock();
            let refund = state
                .refunds
                .get_mut(refund_number)
                .unwrap_or_else(|| panic!("no refund {refund_number}"));
            refund.status = "SUCCESS";
            let refund = refund.clone();
            let trade = state.trades[&refund.out_trade_no].clone();
            (refund, trade)
        };
        let resource = json!({
            "mchid": MCH_ID,
            "out_trade_no": refund.out_trade_no,
            "transaction_id": trade.transaction_id,
            "out_refund_no": refund.out_refund_no,
            "refund_id": refund.refund_id,
            "refund_status": "SUCCESS",
            "success_time": beijing(Utc::now()),
            "user_received_account": "支付用户零钱",
            "amount": {
                "total": refund.total,
                "refund": refund.refund,
                "payer_total": refund.total,
                "payer_refund": refund.refund,
            },
        });
        assert!(!refund.notify_url.is_empty());
        Some(self.notification(
            "REFUND.SUCCESS",
            "退款成功",
            "refund",
            &resource,
            &self.inner.wechat,
            Utc::now().timestamp(),
        ))
    }

    fn requests(&self) -> Vec<SeenRequest> {
        self.inner.lock().requests.clone()
    }

    fn refuse_refunds(&self, refuse: bool) {
        self.inner.lock().refuse_refunds = refuse;
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Sandbox> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the Authorization header is a valid merchant signature of this request.
    fn authorized(&self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> bool {
        let Some(credentials) = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix(SCHEME))
            .and_then(|v| v.strip_prefix(' '))
        else {
            return false;
        };
        let fields: HashMap<&str, &str> = credentials
            .split(',')
            .filter_map(|pair| {
                let (name, value) = pair.trim().split_once('=')?;
                Some((name, value.strip_prefix('"')?.strip_suffix('"')?))
            })
            .collect();
        let field = |name| fields.get(name).copied().unwrap_or_default();
        if field("mchid") != MCH_ID || field("serial_no") != MERCHANT_SERIAL {
            return false;
        }
        let Ok(body) = std::str::from_utf8(body) else {
            return false;
        };
        let url = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let message = format!(
            "{method}\n{url}\n{}\n{}\n{body}\n",
            field("timestamp"),
            field("nonce_str")
        );
        verify(&self.merchant, &message, field("signature"))
    }

    /// An answer signed as WeChat Pay signs them; `None` is an empty 204.
    fn answer(&self, status: StatusCode, body: Option<Value>) -> Response {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let timestamp = Utc::now().timestamp().to_string();
        let nonce = random_text(32);
        let signature = sign(&self.wechat, &format!("{timestamp}\n{nonce}\n{body}\n"));
        let mut response = Response::builder()
            .status(status)
            .header("Request-ID", random_text(24))
            .header("Wechatpay-Timestamp", timestamp)
            .header("Wechatpay-Nonce", nonce)
            .header("Wechatpay-Signature", signature)
            .header("Wechatpay-Serial", PLATFORM_SERIAL);
        if !body.is_empty() {
            response = response.header("Content-Type", "application/json");
        }
        response.body(Body::from(body)).unwrap()
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> (StatusCode, Option<Value>) {
    (status, Some(json!({ "code": code, "message": message })))
}

/// Every request: check the signature, record it, answer as WeChat Pay does.
async fn handle(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let signature_valid = inner.authorized(&method, &uri, &headers, &body);
    let params: Value = if body.is_empty() {
        let query = uri.query().unwrap_or_default();
        let pairs: serde_json::Map<String, Value> = form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect();
        Value::Object(pairs)
    } else {
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    };
    let path = uri.path();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (operation, number) = match (method.as_str(), segments.as_slice()) {
        ("POST", ["v3", "pay", "transactions", kind @ ("native" | "jsapi")]) => {
            (format!("POST /v3/pay/transactions/{kind}"), None)
        }
        ("GET", ["v3", "pay", "transactions", "out-trade-no", n]) => (
            "GET /v3/pay/transactions/out-trade-no/{out_trade_no}".to_owned(),
            Some(n.to_string()),
        ),
        ("POST", ["v3", "pay", "transactions", "out-trade-no", n, "close"]) => (
            "POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close".to_owned(),
            Some(n.to_string()),
        ),
        _ => (format!("{method} {path}"), None),
    };
    let mut state = inner.lock();
    state.requests.push(SeenRequest {
        operation: operation.clone(),
        signature_valid,
        params: params.clone(),
    });
    let (status, answer) = if !signature_valid {
        error(StatusCode::UNAUTHORIZED, "SIGN_ERROR", "签名错误")
    } else {
        let number = number.unwrap_or_default();
        match operation.as_str() {
            "POST /v3/pay/transactions/native" => prepay(&mut state, &params, "NATIVE"),
            "POST /v3/pay/transactions/jsapi" => prepay(&mut state, &params, "JSAPI"),
            "GET /v3/pay/transactions/out-trade-no/{out_trade_no}" => {
                query(&state, &number, &params)
            }
            "POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close" => {
                close(&mut state, &number, &params)
            }
            "POST /v3/refund/domestic/refunds" => refund(&mut state, &params),
            _ => error(StatusCode::NOT_FOUND, "NOT_FOUND", "无此接口"),
        }
    };
    drop(state);
    inner.answer(status, answer)
}

fn prepay(
    state: &mut Sandbox,
    params: &Value,
    trade_type: &'static str,
) -> (StatusCode, Option<Value>) {
    let text = |name: &str| params[name].as_str().filter(|v| !v.is_empty());
    if text("mchid") != Some(MCH_ID) || text("appid") != Some(APP_ID) {
        return error(StatusCode::BAD_REQUEST, "PARAM_ERROR", "mchid与appid不匹配");
    }
    let (Some(description), Some(out_trade_no), Some(notify_url), Some(total)) = (
        text("description"),
        text("out_trade_no"),
        text("notify_url"),
        params["amount"]["total"].as_i64(),
    ) else {
        return error(StatusCode::BAD_REQUEST, "PARAM_ERROR", "缺少必填参数");
    };
    if description.len() > 127 || out_trade_no.len() > 32 || total <= 0 {
        return error(StatusCode::BAD_REQUEST, "PARAM_ERROR", "参数格式校验错误");
    }
    if let Some(expire) = text("time_expire")
        && DateTime::parse_from_rfc3339(expire).is_err()
    {
        return error(
            StatusCode::BAD_REQUEST,
            "PARAM_ERROR",
            "time_expire格式错误",
        );
    }
    let currency = params["amount"]["currency"].as_str().unwrap_or("CNY");
    let openid = params["payer"]["openid"].as_str().filter(|v| !v.is_empty());
    if trade_type == "JSAPI" && openid.is_none() {
        return error(
            StatusCode::BAD_REQUEST,
            "PARAM_ERROR",
            "缺少参数payer.openid",
        );
    }
    if let Some(existing) = state.trades.get(out_trade_no) {
        return match existing.state {
            "NOTPAY" if existing.total == total && existing.trade_type == trade_type => {
                (StatusCode::OK, Some(prepay_answer(existing)))
            }
            "NOTPAY" => error(
                StatusCode::BAD_REQUEST,
                "OUT_TRADE_NO_USED",
                "商户订单号重复",
            ),
            "CLOSED" => error(StatusCode::BAD_REQUEST, "ORDERCLOSED", "订单已关闭"),
            _ => error(StatusCode::BAD_REQUEST, "ORDERPAID", "该订单已支付"),
        };
    }
    let trade = Trade {
        out_trade_no: out_trade_no.to_owned(),
        trade_type,
        description: description.to_owned(),
        total,
        currency: currency.to_owned(),
        notify_url: notify_url.to_owned(),
        code_url: (trade_type == "NATIVE")
            .then(|| format!("weixin://wxpay/bizpayurl?pr={}", random_text(9))),
        prepay_id: (trade_type == "JSAPI").then(|| format!("wx{}", random_text(34))),
        openid: openid.map(str::to_owned),
        state: "NOTPAY",
        transaction_id: None,
    };
    let answer = prepay_answer(&trade);
    state.trades.insert(trade.out_trade_no.clone(), trade);
    (StatusCode::OK, Some(answer))
}

fn prepay_answer(trade: &Trade) -> Value {
    match (&trade.code_url, &trade.prepay_id) {
        (Some(code_url), _) => json!({ "code_url": code_url }),
        (_, Some(prepay_id)) => json!({ "prepay_id": prepay_id }),
        _ => unreachable!("every trade has a code_url or a prepay_id"),
    }
}

fn query(state: &Sandbox, number: &str, params: &Value) -> (StatusCode, Option<Value>) {
    if params["mchid"].as_str() != Some(MCH_ID) {
        return error(StatusCode::BAD_REQUEST, "PARAM_ERROR", "mchid错误");
    }
    let Some(trade) = state.trades.get(number) else {
        return error(StatusCode::NOT_FOUND, "ORDER_NOT_EXIST", "订单不存在");
    };
    let mut answer = json!({
        "appid": APP_ID,
        "mchid": MCH_ID,
        "out_trade_no": trade.out_trade_no,
        "trade_type": trade.trade_type,
        "trade_state": trade.state,
        "trade_state_desc": match trade.state {
            "NOTPAY" => "订单未支付",
            "CLOSED" => "订单已关闭",
            "REFUND" => "订单发生过退款",
            _ => "支付成功",
        },
        "amount": { "total": trade.total, "currency": trade.currency, "payer_currency": "CNY" },
    });
    if let Some(transaction_id) = &trade.transaction_id {
        answer["transaction_id"] = json!(transaction_id);
        answer["bank_type"] = json!("OTHERS");
        answer["success_time"] = json!(beijing(Utc::now()));
        answer["payer"] =
            json!({ "openid": trade.openid.as_deref().unwrap_or("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o") });
        answer["amount"]["payer_total"] = json!(trade.total);
    }
    (StatusCode::OK, Some(answer))
}

fn close(state: &mut Sandbox, number: &str, params: &Value) -> (StatusCode, Option<Value>) {
    if params["mchid"].as_str() != Some(MCH_ID) {
        return error(StatusCode::BAD_REQUEST, "PARAM_ERROR", "mchid错误");
    }
    let Some(trade) = state.trades.get_mut(number) else {
        return error(StatusCode::NOT_FOUND, "ORDER_NOT_EXIST", "订单不存在");
    };
    match trade.state {
        "NOTPAY" | "CLOSED" => {
            trade.state = "CLOSED";
            (StatusCode::NO_CONTENT, None)
        }
        _ => error(StatusCode::BAD_REQUEST, "ORDERPAID", "订单已支付"),
    }
}

fn refund(state: &mut Sandbox, params: &Value) -> (StatusCode, Option<Value>) {
    if state.refuse_refunds {
        return error(
            StatusCode::FORBIDDEN,
            "NOT_ENOUGH",
            "基本账户余额不足，请充值后重新发起",
        );
    }
    let text = |name: &str| params[name].as_str().filter(|v| !v.is_empty());
    let amount = &params["amount"];
    let (Some(out_trade_no), Some(out_refund_no), Some(refund), Some(total)) = (
        text("out_trade_no"),
        text("out_refund_no"),
        amount["refund"].as_i64(),
        amount["total"].as_i64(),
    ) else {
        return error(StatusCode::BAD_REQUEST, "PARAM_ERROR", "缺少必填参数");
    };
    if amount["currency"].as_str() != Some("CNY") {
        return error(StatusCode::BAD_REQUEST, "PARAM_ERROR", "币种错误");
    }
    let Some(trade) = state.trades.get(out_trade_no).cloned() else {
        return error(StatusCode::NOT_FOUND, "RESOURCE_NOT_EXISTS", "订单不存在");
    };
    if let Some(existing) = state.refunds.get(out_refund_no) {
        if existing.refund != refund || existing.out_trade_no != out_trade_no {
            return error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", "退款单号重复");
        }
        return (StatusCode::OK, Some(refund_answer(existing, &trade)));
    }
    if !matches!(trade.state, "SUCCESS" | "REFUND") {
        return error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", "订单未支付");
    }
    if total != trade.total {
        return error(
            StatusCode::BAD_REQUEST,
            "PARAM_ERROR",
            "订单金额与实际支付金额不一致",
        );
    }
    let refunded: i64 = state
        .refunds
        .values()
        .filter(|r| r.out_trade_no == out_trade_no && r.status != "CLOSED")
        .map(|r| r.refund)
        .sum();
    if refund <= 0 || refunded + refund > trade.total {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "申请退款金额超过订单可退金额",
        );
    }
    let created = Refund {
        out_refund_no: out_refund_no.to_owned(),
        out_trade_no: out_trade_no.to_owned(),
        refund_id: format!("5030{}", random_digits(25)),
        refund,
        total,
        notify_url: text("notify_url").unwrap_or_default().to_owned(),
        status: "PROCESSING",
    };
    let answer = refund_answer(&created, &trade);
    state.refunds.insert(created.out_refund_no.clone(), created);
    if let Some(trade) = state.trades.get_mut(out_trade_no) {
        trade.state = "REFUND";
    }
    (StatusCode::OK, Some(answer))
}

fn refund_answer(refund: &Refund, trade: &Trade) -> Value {
    json!({
        "refund_id": refund.refund_id,
        "out_refund_no": refund.out_refund_no,
        "transaction_id": trade.transaction_id,
        "out_trade_no": refund.out_trade_no,
        "channel": "ORIGINAL",
        "user_received_account": "支付用户零钱",
        "create_time": beijing(Utc::now()),
        "status": refund.status,
        "funds_account": "AVAILABLE",
        "amount": {
            "total": refund.total,
            "refund": refund.refund,
            "payer_total": refund.total,
            "payer_refund": refund.refund,
            "settlement_refund": refund.refund,
            "settlement_total": refund.total,
            "discount_refund": 0,
            "currency": "CNY",
        },
    })
}

/// The decrypted resource of a TRANSACTION.SUCCESS notification.
fn paid(trade: &Trade, total: i64) -> Value {
    json!({
        "mchid": MCH_ID,
        "appid": APP_ID,
        "out_trade_no": trade.out_trade_no,
        "transaction_id": trade.transaction_id,
        "trade_type": trade.trade_type,
        "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功",
        "bank_type": "OTHERS",
        "attach": "",
        "success_time": beijing(Utc::now()),
        "payer": { "openid": trade.openid.as_deref().unwrap_or("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o") },
        "amount": { "total": total, "payer_total": total, "currency": trade.currency, "payer_currency": "CNY" },
        "description": trade.description,
    })
}

/// A notification body: `resource` sealed with AES-256-GCM under the APIv3 key.
fn envelope(event_type: &str, summary: &str, original_type: &str, resource: &Value) -> String {
    let nonce = random_text(12);
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, API_V3_KEY.as_bytes()).unwrap());
    let mut sealed = resource.to_string().into_bytes();
    key.seal_in_place_append_tag(
        Nonce::try_assume_unique_for_key(nonce.as_bytes()).unwrap(),
        Aad::from(original_type.as_bytes()),
        &mut sealed,
    )
    .unwrap();
    json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "create_time": beijing(Utc::now()),
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": summary,
        "resource": {
            "original_type": original_type,
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": STANDARD.encode(sealed),
            "associated_data": original_type,
            "nonce": nonce,
        },
    })
    .to_string()
}

fn read(path: std::path::PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn random_text(len: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

fn random_digits(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

fn beijing(at: DateTime<Utc>) -> String {
    at.with_timezone(&FixedOffset::east_opt(8 * 3600).unwrap())
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

/// The double against Bazaar's gateway directly, without the application.
mod tests {
    use bazaar::payments::gateway::wechat::WechatPay;
    use bazaar::payments::gateway::{
        Channel, Checkout, Gateway, GatewayError, Incoming, NoticeSubject, PayRequest,
        RefundRequest, TradeState,
    };
    use chrono::{Duration, Utc};

    use super::*;

    async fn setup() -> (WechatSandbox, WechatPay) {
        let sandbox = WechatSandbox::start().await;
        let gateway =
            WechatPay::new(&sandbox.wechat_config(), 300, reqwest::Client::new()).unwrap();
        (sandbox, gateway)
    }

    fn order(number: &str, amount: i64, channel: Channel) -> PayRequest {
        PayRequest {
            number: number.into(),
            subject: format!("Bazaar order {number}"),
            amount,
            currency: "CNY".into(),
            channel,
            notify_url: "https://shop.example/api/v1/payments/notify/wechat_pay".into(),
            return_url: None,
            client_ip: Some("203.0.113.7".into()),
            payer_id: (channel == Channel::Jsapi).then(|| "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o".into()),
            expires_at: Utc::now() + Duration::minutes(30),
        }
    }

    fn incoming(notification: &Notification) -> Incoming {
        Incoming {
            headers: notification
                .headers
                .iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
                .collect(),
            body: notification.body.clone(),
        }
    }

    async fn placed_and_paid(sandbox: &WechatSandbox, gateway: &WechatPay, number: &str) {
        let checkout = gateway
            .create(&order(number, 8800, Channel::Native))
            .await
            .unwrap();
        let number = sandbox.pay(&serde_json::to_value(&checkout).unwrap()).await;
        assert_eq!(sandbox.trade_state(&number), Some("SUCCESS"));
    }

    #[tokio::test]
    async fn a_native_trade_is_placed_paid_and_queried() {
        let (sandbox, gateway) = setup().await;
        let checkout = gateway
            .create(&order("N20260101001", 8800, Channel::Native))
            .await
            .unwrap();
        let Checkout::QrCode { content } = &checkout else {
            panic!("a Native trade is a QR code, not {checkout:?}");
        };
        assert!(
            content.starts_with("weixin://wxpay/bizpayurl?pr="),
            "{content}"
        );
        let pending = gateway.query("N20260101001").await.unwrap();
        assert_eq!(
            (pending.state, pending.gateway_reference),
            (TradeState::Pending, None)
        );

        let number = sandbox.pay(&serde_json::to_value(&checkout).unwrap()).await;
        assert_eq!(number, "N20260101001");
        let paid = gateway.query(&number).await.unwrap();
        assert_eq!(paid.state, TradeState::Succeeded);
        assert_eq!(paid.amount, Some(8800));
        assert_eq!(paid.currency.as_deref(), Some("CNY"));
        assert!(
            paid.gateway_reference
                .is_some_and(|r| r.starts_with("4200"))
        );

        let requests = sandbox.requests();
        assert!(requests.iter().all(|r| r.signature_valid));
        let prepay = &requests[0];
        assert_eq!(prepay.operation, "POST /v3/pay/transactions/native");
        assert_eq!(
            prepay.params["amount"],
            json!({ "total": 8800, "currency": "CNY" })
        );
        assert_eq!(prepay.params["mchid"], MCH_ID);
        assert!(
            prepay.params["time_expire"]
                .as_str()
                .unwrap()
                .ends_with("+08:00")
        );
        assert_eq!(
            requests[1].operation,
            "GET /v3/pay/transactions/out-trade-no/{out_trade_no}"
        );
        assert_eq!(requests[1].params, json!({ "mchid": MCH_ID }));
    }

    #[tokio::test]
    async fn configure_points_bazaar_at_the_double() {
        let sandbox = WechatSandbox::start().await;
        let mut config = bazaar::config::Config::default();
        sandbox.configure(&mut config);
        assert_eq!(sandbox.provider(), "wechat_pay");
        let wechat = config.payments.wechat_pay.unwrap();
        assert_eq!(wechat.base_url, sandbox.wechat_config().base_url);
        assert_eq!(wechat.api_v3_key.expose().len(), 32);
        let gateway = WechatPay::new(&wechat, 300, reqwest::Client::new()).unwrap();
        gateway
            .create(&order("K1", 100, Channel::Native))
            .await
            .unwrap();
        assert_eq!(
            sandbox.notify_url("K1").as_deref(),
            Some("https://shop.example/api/v1/payments/notify/wechat_pay")
        );
    }

    #[tokio::test]
    async fn an_unknown_trade_is_pending_without_a_reference() {
        let (_sandbox, gateway) = setup().await;
        let status = gateway.query("NEVERPLACED").await.unwrap();
        assert_eq!(status.state, TradeState::Pending);
        assert_eq!(status.gateway_reference, None);
    }

    #[tokio::test]
    async fn a_jsapi_trade_hands_signed_parameters_to_the_client() {
        let (sandbox, gateway) = setup().await;
        let checkout = gateway
            .create(&order("J1", 100, Channel::Jsapi))
            .await
            .unwrap();
        let Checkout::Sdk { params } = &checkout else {
            panic!("JSAPI hands parameters to the SDK, not {checkout:?}");
        };
        assert_eq!(params["signType"], "RSA");
        assert!(params["package"].starts_with("prepay_id=wx"));
        // `pay` checks the paySign with the merchant's public key.
        assert_eq!(
            sandbox.pay(&serde_json::to_value(&checkout).unwrap()).await,
            "J1"
        );
        let request = &sandbox.requests()[0];
        assert_eq!(request.operation, "POST /v3/pay/transactions/jsapi");
        assert_eq!(
            request.params["payer"]["openid"],
            "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
        );

        let mut anonymous = order("J2", 100, Channel::Jsapi);
        anonymous.payer_id = None;
        assert!(matches!(
            gateway.create(&anonymous).await,
            Err(GatewayError::Unsupported(_))
        ));
        assert!(matches!(
            gateway.create(&order("P1", 100, Channel::Page)).await,
            Err(GatewayError::Unsupported(_))
        ));
    }

    #[tokio::test]
    async fn a_closed_trade_is_reported_closed() {
        let (sandbox, gateway) = setup().await;
        gateway
            .create(&order("C1", 500, Channel::Native))
            .await
            .unwrap();
        gateway.close("C1").await.unwrap();
        assert_eq!(sandbox.trade_state("C1"), Some("CLOSED"));
        assert_eq!(gateway.query("C1").await.unwrap().state, TradeState::Closed);
        let close = &sandbox.requests()[1];
        assert_eq!(
            close.operation,
            "POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close"
        );
        assert_eq!(close.params, json!({ "mchid": MCH_ID }));

        placed_and_paid(&sandbox, &gateway, "C2").await;
        let Err(GatewayError::Refused(reason)) = gateway.close("C2").await else {
            panic!("a paid trade cannot be closed");
        };
        assert!(reason.starts_with("ORDERPAID"), "{reason}");
    }

    #[tokio::test]
    async fn the_paid_notification_verifies_and_tampered_ones_do_not() {
        let (sandbox, gateway) = setup().await;
        placed_and_paid(&sandbox, &gateway, "T1").await;

        let notice = gateway
            .verify(
                &incoming(&sandbox.paid_notification("T1", Tamper::None)),
                Utc::now(),
            )
            .unwrap();
        assert_eq!(notice.subject, NoticeSubject::Payment);
        assert_eq!((notice.number.as_str(), notice.amount), ("T1", 8800));
        assert_eq!(notice.state, TradeState::Succeeded);
        assert!(notice.gateway_reference.is_some());

        // Properly signed for another amount: believed; the payment flow must compare it.
        let signed = sandbox.paid_notification("T1", Tamper::SignedAmount(1));
        assert_eq!(
            gateway
                .verify(&incoming(&signed), Utc::now())
                .unwrap()
                .amount,
            1
        );

        for tamper in [
            Tamper::AmountAfterSigning(1),
            Tamper::WrongKey,
            Tamper::Stale,
        ] {
            let notification = sandbox.paid_notification("T1", tamper);
            let verdict = gateway.verify(&incoming(&notification), Utc::now());
            assert!(verdict.is_err(), "{tamper:?} verified: {verdict:?}");
        }
        let stale = sandbox.paid_notification("T1", Tamper::Stale);
        let reason = gateway.verify(&incoming(&stale), Utc::now()).unwrap_err().0;
        assert!(reason.starts_with("stale"), "{reason}");
        // Kept and verified again later, a notification is judged by when it arrived.
        let fresh = sandbox.paid_notification("T1", Tamper::None);
        assert!(
            gateway
                .verify(&incoming(&fresh), Utc::now() + Duration::hours(1))
                .is_err()
        );
        assert!(gateway.verify(&incoming(&fresh), Utc::now()).is_ok());
    }

    #[tokio::test]
    async fn a_refund_is_pending_until_its_notification() {
        let (sandbox, gateway) = setup().await;
        placed_and_paid(&sandbox, &gateway, "R1").await;
        let request = RefundRequest {
            payment_number: "R1".into(),
            gateway_reference: None,
            refund_number: "R1-1".into(),
            amount: 300,
            payment_amount: 8800,
            currency: "CNY".into(),
            reason: "退货".into(),
            notify_url: "https://shop.example/api/v1/payments/notify/wechat_pay".into(),
        };
        let outcome = gateway.refund(&request).await.unwrap();
        assert_eq!(outcome.state, TradeState::Pending);
        let refund_id = outcome.gateway_reference.unwrap();
        // A refunded trade was still paid.
        assert_eq!(
            gateway.query("R1").await.unwrap().state,
            TradeState::Succeeded
        );

        let notification = sandbox.refund_notification("R1-1").unwrap();
        assert_eq!(notification.content_type, "application/json");
        let notice = gateway
            .verify(&incoming(&notification), Utc::now())
            .unwrap();
        assert_eq!(notice.subject, NoticeSubject::Refund);
        assert_eq!(notice.number, "R1-1");
        assert_eq!(notice.gateway_reference, Some(refund_id));
        assert_eq!((notice.state, notice.amount), (TradeState::Succeeded, 300));

        let seen = sandbox.requests();
        let refund = seen
            .iter()
            .find(|r| r.operation == "POST /v3/refund/domestic/refunds")
            .unwrap();
        assert_eq!(
            refund.params["amount"],
            json!({ "refund": 300, "total": 8800, "currency": "CNY" })
        );

        sandbox.refuse_refunds(true);
        let second = RefundRequest {
            refund_number: "R1-2".into(),
            ..request
        };
        let Err(GatewayError::Refused(reason)) = gateway.refund(&second).await else {
            panic!("the refund should have been refused");
        };
        assert!(reason.starts_with("NOT_ENOUGH: "), "{reason}");
    }

    #[tokio::test]
    async fn answers_under_another_key_id_are_not_trusted() {
        let sandbox = WechatSandbox::start().await;
        let mut config = sandbox.wechat_config();
        config.platform_serial = "PUB_KEY_ID_SOMEONE_ELSE".into();
        let gateway = WechatPay::new(&config, 300, reqwest::Client::new()).unwrap();
        assert!(matches!(
            gateway.create(&order("B1", 100, Channel::Native)).await,
            Err(GatewayError::BadResponse(_))
        ));
    }

    #[tokio::test]
    async fn requests_signed_with_another_key_are_refused_by_the_double() {
        let sandbox = WechatSandbox::start().await;
        let mut config = sandbox.wechat_config();
        config.private_key_path = fixture("alipay_private.pem");
        let gateway = WechatPay::new(&config, 300, reqwest::Client::new()).unwrap();
        let Err(GatewayError::Refused(reason)) = gateway.query("X1").await else {
            panic!("a wrongly signed request was answered");
        };
        assert!(reason.starts_with("SIGN_ERROR"), "{reason}");
        assert!(!sandbox.requests()[0].signature_valid);
    }

    #[tokio::test]
    async fn an_unreachable_gateway_is_unavailable() {
        let sandbox = WechatSandbox::start().await;
        let mut config = sandbox.wechat_config();
        // Nothing listens on the discard port.
        config.base_url = "http://127.0.0.1:9".into();
        let gateway = WechatPay::new(&config, 300, reqwest::Client::new()).unwrap();
        assert!(matches!(
            gateway.query("U1").await,
            Err(GatewayError::Unavailable(_))
        ));
    }
}
