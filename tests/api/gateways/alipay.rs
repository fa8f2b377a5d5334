//! A double of Alipay's open platform gateway (`gateway.do`): it checks Bazaar's RSA2
//! signatures with the merchant's public key, keeps trades the way Alipay does, answers
//! `alipay.trade.precreate/query/refund/close` with signed JSON, and signs notifications
//! and return URLs with its own key.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::post;
use bazaar::config::{AlipayConfig, Config};
use bazaar::payments::gateway::{parse_yuan, yuan};
use chrono::{Duration, Utc};
use rsa::pkcs1v15::{SigningKey, VerifyingKey};
use rsa::sha2::Sha256;
use serde_json::{Value, json};

use super::{
    Notification, SandboxGateway, SeenRequest, Tamper, fixture, sign, signing_key, verify,
    verifying_key,
};

/// The app id Bazaar is configured with against this double.
pub const APP_ID: &str = "2021000000000001";
const SELLER_ID: &str = "2088101117955611";

#[derive(Clone)]
pub struct AlipayDouble {
    shared: Arc<Shared>,
    url: String,
}

struct Shared {
    alipay: SigningKey<Sha256>,
    /// Not Alipay's key: for `Tamper::WrongKey`.
    impostor: SigningKey<Sha256>,
    merchant: VerifyingKey<Sha256>,
    trades: Mutex<HashMap<String, Trade>>,
    seen: Mutex<Vec<SeenRequest>>,
    refuse_refunds: AtomicBool,
    serial: AtomicU64,
}

#[derive(Debug, Clone)]
struct Trade {
    out_trade_no: String,
    trade_no: String,
    subject: String,
    amount: i64,
    /// WAIT_BUYER_PAY, TRADE_SUCCESS or TRADE_CLOSED, as Alipay says it.
    status: &'static str,
    qr_code: Option<String>,
    /// out_request_no → amount
    refunds: BTreeMap<String, i64>,
}

impl AlipayDouble {
    /// Listens on a loopback port of the current Tokio runtime.
    pub async fn start() -> Self {
        let shared = Arc::new(Shared {
            alipay: signing_key("alipay_private.pem"),
            impostor: signing_key("wechat_private.pem"),
            merchant: verifying_key("merchant_public.pem"),
            trades: Mutex::new(HashMap::new()),
            seen: Mutex::new(Vec::new()),
            refuse_refunds: AtomicBool::new(false),
            serial: AtomicU64::new(1),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/gateway.do", listener.local_addr().unwrap());
        let app = Router::new()
            .route("/gateway.do", post(gateway))
            .with_state(shared.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { shared, url }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The signed query string Alipay appends to `return_url` after a page payment.
    pub fn return_query(&self, payment_number: &str) -> String {
        let trade = self.shared.trade(payment_number);
        let mut params = BTreeMap::from([
            ("app_id", APP_ID.to_owned()),
            ("auth_app_id", APP_ID.to_owned()),
            ("charset", "utf-8".to_owned()),
            ("method", "alipay.trade.page.pay.return".to_owned()),
            ("out_trade_no", trade.out_trade_no.clone()),
            ("seller_id", SELLER_ID.to_owned()),
            ("sign_type", "RSA2".to_owned()),
            ("timestamp", china_time(0)),
            ("total_amount", yuan(trade.amount)),
            ("trade_no", trade.trade_no.clone()),
            ("version", "1.0".to_owned()),
        ]);
        let sign = sign(&self.shared.alipay, &notification_content(&params));
        params.insert("sign", sign);
        encode(&params)
    }
}

impl Shared {
    fn trade(&self, number: &str) -> Trade {
        self.trades
            .lock()
            .unwrap()
            .get(number)
            .cloned()
            .unwrap_or_else(|| panic!("the Alipay double has no trade {number}"))
    }

    fn next(&self) -> u64 {
        self.serial.fetch_add(1, Ordering::Relaxed)
    }

    fn trade_no(&self) -> String {
        format!(
            "{}2200140{:011}",
            (Utc::now() + Duration::hours(8)).format("%Y%m%d"),
            self.next()
        )
    }

    fn record(&self, operation: &str, signature_valid: bool, params: &BTreeMap<String, String>) {
        let mut object = serde_json::Map::new();
        for (k, v) in params {
            let value = if k == "biz_content" {
                serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.clone()))
            } else {
                Value::String(v.clone())
            };
            object.insert(k.clone(), value);
        }
        self.seen.lock().unwrap().push(SeenRequest {
            operation: operation.to_owned(),
            signature_valid,
            params: Value::Object(object),
        });
    }

    /// Whether `params` carry a valid merchant signature: RSA2 over every non-empty
    /// parameter but `sign`, sorted, unencoded.
    fn merchant_signed(&self, params: &BTreeMap<String, String>) -> bool {
        let content = params
            .iter()
            .filter(|(k, v)| k.as_str() != "sign" && !v.is_empty())
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        params
            .get("sign")
            .is_some_and(|s| verify(&self.merchant, &content, s))
    }

    /// A signed `{"<method>_response": {...}, "sign": "..."}` body; `/` is escaped as `\/`,
    /// as Alipay does, so only a check over the raw text passes.
    fn answer(&self, method: &str, response: Value) -> String {
        let inner = response.to_string().replace('/', "\\/");
        let sign = sign(&self.alipay, &inner);
        format!(
            "{{\"{}_response\":{inner},\"sign\":\"{sign}\"}}",
            method.replace('.', "_")
        )
    }
}

fn refused(code: &str, sub_code: &str, sub_msg: &str) -> Value {
    json!({
        "code": code,
        "msg": if code == "40004" { "Business Failed" } else { "Invalid Arguments" },
        "sub_code": sub_code,
        "sub_msg": sub_msg,
    })
}

async fn gateway(
    State(shared): State<Arc<Shared>>,
    RawQuery(raw_query): RawQuery,
    body: String,
) -> impl IntoResponse {
    let mut params = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(raw_query.unwrap_or_default().as_bytes())
        .chain(form_urlencoded::parse(body.as_bytes()))
    {
        params.insert(k.into_owned(), v.into_owned());
    }
    let method = params.get("method").cloned().unwrap_or_default();
    let valid = shared.merchant_signed(&params);
    shared.record(&method, valid, &params);
    let response = if !valid {
        refused("40002", "isv.invalid-signature", "验签出错")
    } else if params.get("app_id").map(String::as_str) != Some(APP_ID) {
        refused("40002", "isv.invalid-app-id", "无效的AppID参数")
    } else {
        let biz: Value = params
            .get("biz_content")
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null);
        match method.as_str() {
            "alipay.trade.precreate" => precreate(&shared, &biz),
            "alipay.trade.query" => query(&shared, &biz),
            "alipay.trade.refund" => refund(&shared, &biz),
            "alipay.trade.close" => close(&shared, &biz),
            _ => refused("40002", "isv.invalid-method", "不存在的方法名"),
        }
    };
    (
        [(header::CONTENT_TYPE, "application/json;charset=utf-8")],
        shared.answer(&method, response),
    )
}

fn field<'a>(biz: &'a Value, name: &str) -> &'a str {
    biz.get(name).and_then(Value::as_str).unwrap_or("")
}

fn precreate(shared: &Shared, biz: &Value) -> Value {
    let number = field(biz, "out_trade_no").to_owned();
    let Some(amount) = parse_yuan(field(biz, "total_amount")) else {
        return refused("40002", "isv.invalid-parameter", "total_amount");
    };
    let mut trades = shared.trades.lock().unwrap();
    if trades
        .get(&number)
        .is_some_and(|t| t.status != "WAIT_BUYER_PAY")
    {
        return refused("40004", "ACQ.TRADE_HAS_SUCCESS", "交易已被支付");
    }
    let qr_code = format!("https://qr.alipay.com/bax0{}", shared.next());
    trades.insert(
        number.clone(),
        Trade {
            out_trade_no: number.clone(),
            trade_no: shared.trade_no(),
            subject: field(biz, "subject").to_owned(),
            amount,
            status: "WAIT_BUYER_PAY",
            qr_code: Some(qr_code.clone()),
            refunds: BTreeMap::new(),
        },
    );
    json!({"code": "10000", "msg": "Success", "out_trade_no": number, "qr_code": qr_code})
}

fn query(shared: &Shared, biz: &Value) -> Value {
    let trades = shared.trades.lock().unwrap();
    let Some(trade) = trades.get(field(biz, "out_trade_no")) else {
        return refused("40004", "ACQ.TRADE_NOT_EXIST", "交易不存在");
    };
    json!({
        "code": "10000",
        "msg": "Success",
        "trade_no": trade.trade_no,
        "out_trade_no": trade.out_trade_no,
        "buyer_logon_id": "buy***@example.com",
        "trade_status": trade.status,
        "total_amount": yuan(trade.amount),
        "buyer_pay_amount": if trade.status == "WAIT_BUYER_PAY" { "0.00".into() } else { yuan(trade.amount) },
        "send_pay_date": china_time(0),
    })
}

fn refund(shared: &Shared, biz: &Value) -> Value {
    if shared.refuse_refunds.load(Ordering::Relaxed) {
        return refused("40004", "ACQ.SELLER_BALANCE_NOT_ENOUGH", "卖家余额不足");
    }
    let mut trades = shared.trades.lock().unwrap();
    let Some(trade) = trades.get_mut(field(biz, "out_trade_no")) else {
        return refused("40004", "ACQ.TRADE_NOT_EXIST", "交易不存在");
    };
    let Some(amount) = parse_yuan(field(biz, "refund_amount")).filter(|a| *a > 0) else {
        return refused("40002", "isv.invalid-parameter", "refund_amount");
    };
    let request_no = field(biz, "out_request_no").to_owned();
    // A repeated out_request_no refunds nothing more: Alipay answers with fund_change N.
    let fund_change = if let Some(earlier) = trade.refunds.get(&request_no) {
        if *earlier != amount {
            return refused(
                "40004",
                "ACQ.REFUND_AMT_RESTRICTION",
                "退款金额与原请求不一致",
            );
        }
        "N"
    } else {
        if trade.status == "WAIT_BUYER_PAY" {
            return refused("40004", "ACQ.TRADE_STATUS_ERROR", "交易状态不合法");
        }
        let refunded: i64 = trade.refunds.values().sum();
        if refunded + amount > trade.amount {
            return refused("40004", "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限");
        }
        trade.refunds.insert(request_no, amount);
        if refunded + amount == trade.amount {
            trade.status = "TRADE_CLOSED";
        }
        "Y"
    };
    json!({
        "code": "10000",
        "msg": "Success",
        "trade_no": trade.trade_no,
        "out_trade_no": trade.out_trade_no,
        "buyer_logon_id": "buy***@example.com",
        "fund_change": fund_change,
        "refund_fee": yuan(trade.refunds.values().sum()),
        "gmt_refund_pay": china_time(0),
    })
}

fn close(shared: &Shared, biz: &Value) -> Value {
    let mut trades = shared.trades.lock().unwrap();
    let Some(trade) = trades.get_mut(field(biz, "out_trade_no")) else {
        // As at Alipay: a page or WAP trade nobody opened does not exist to be closed.
        return refused("40004", "ACQ.TRADE_NOT_EXIST", "交易不存在");
    };
    if trade.status == "TRADE_SUCCESS" {
        return refused("40004", "ACQ.TRADE_STATUS_ERROR", "交易状态不合法");
    }
    trade.status = "TRADE_CLOSED";
    json!({
        "code": "10000",
        "msg": "Success",
        "trade_no": trade.trade_no,
        "out_trade_no": trade.out_trade_no,
    })
}

#[async_trait::async_trait]
impl SandboxGateway for AlipayDouble {
    fn provider(&self) -> &'static str {
        "alipay"
    }

    fn configure(&self, config: &mut Config) {
        config.payments.alipay = Some(AlipayConfig {
            app_id: APP_ID.into(),
            gateway_url: self.url.clone(),
            private_key_path: fixture("merchant_private.pem"),
            alipay_public_key_path: fixture("alipay_public.pem"),
        });
    }

    async fn pay(&self, checkout: &Value) -> String {
        let shared = &self.shared;
        match checkout.get("kind").and_then(Value::as_str) {
            Some("redirect") => {
                let url = checkout["url"].as_str().expect("a redirect has a url");
                let (base, query) = url.split_once('?').expect("a signed query string");
                assert_eq!(base, self.url, "the checkout URL is not this gateway's");
                let params: BTreeMap<String, String> = form_urlencoded::parse(query.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect();
                let method = params.get("method").cloned().unwrap_or_default();
                let valid = shared.merchant_signed(&params);
                shared.record(&method, valid, &params);
                assert!(
                    valid,
                    "the Alipay checkout URL is not signed by the merchant's key"
                );
                assert_eq!(params.get("app_id").map(String::as_str), Some(APP_ID));
                let biz: Value = serde_json::from_str(&params["biz_content"]).unwrap();
                let product = match method.as_str() {
                    "alipay.trade.page.pay" => "FAST_INSTANT_TRADE_PAY",
                    "alipay.trade.wap.pay" => "QUICK_WAP_WAY",
                    other => panic!("{other} is not a page payment"),
                };
                assert_eq!(field(&biz, "product_code"), product);
                assert!(!params["notify_url"].is_empty(), "no notify_url");
                let number = field(&biz, "out_trade_no").to_owned();
                let amount = parse_yuan(field(&biz, "total_amount")).expect("total_amount");
                let mut trades = shared.trades.lock().unwrap();
                let trade = trades.entry(number.clone()).or_insert_with(|| Trade {
                    out_trade_no: number.clone(),
                    trade_no: shared.trade_no(),
                    subject: field(&biz, "subject").to_owned(),
                    amount,
                    status: "WAIT_BUYER_PAY",
                    qr_code: None,
                    refunds: BTreeMap::new(),
                });
                assert_ne!(
                    trade.status, "TRADE_CLOSED",
                    "Alipay refuses a closed trade"
                );
                trade.status = "TRADE_SUCCESS";
                number
            }
            Some("qr_code") => {
                let content = checkout["content"].as_str().expect("a QR code's content");
                let mut trades = shared.trades.lock().unwrap();
                let trade = trades
                    .values_mut()
                    .find(|t| t.qr_code.as_deref() == Some(content))
                    .unwrap_or_else(|| panic!("no trade was placed for QR code {content}"));
                assert_eq!(trade.status, "WAIT_BUYER_PAY", "the trade cannot be paid");
                trade.status = "TRADE_SUCCESS";
                trade.out_trade_no.clone()
            }
            other => panic!("Alipay cannot pay a {other:?} checkout"),
        }
    }

    fn paid_notification(&self, payment_number: &str, tamper: Tamper) -> Notification {
        let trade = self.shared.trade(payment_number);
        let amount = match tamper {
            Tamper::SignedAmount(amount) => amount,
            _ => trade.amount,
        };
        let total = yuan(amount);
        let mut params = BTreeMap::from([
            ("app_id", APP_ID.to_owned()),
            ("auth_app_id", APP_ID.to_owned()),
            ("buyer_id", "2088102177846880".to_owned()),
            ("buyer_logon_id", "buy***@example.com".to_owned()),
            ("buyer_pay_amount", total.clone()),
            ("charset", "utf-8".to_owned()),
            (
                "fund_bill_list",
                json!([{ "amount": total, "fundChannel": "ALIPAYACCOUNT" }]).to_string(),
            ),
            ("gmt_create", china_time(-60)),
            ("gmt_payment", china_time(-5)),
            ("invoice_amount", total.clone()),
            ("notify_id", format!("2026{:030}", self.shared.next())),
            ("notify_time", china_time(0)),
            ("notify_type", "trade_status_sync".to_owned()),
            ("out_trade_no", trade.out_trade_no.clone()),
            ("point_amount", "0.00".to_owned()),
            ("receipt_amount", total.clone()),
            ("seller_id", SELLER_ID.to_owned()),
            ("sign_type", "RSA2".to_owned()),
            ("subject", trade.subject.clone()),
            ("total_amount", total),
            ("trade_no", trade.trade_no.clone()),
            ("trade_status", "TRADE_SUCCESS".to_owned()),
            ("version", "1.0".to_owned()),
        ]);
        let key = match tamper {
            Tamper::WrongKey => &self.shared.impostor,
            _ => &self.shared.alipay,
        };
        let sign = sign(key, &notification_content(&params));
        params.insert("sign", sign);
        if let Tamper::AmountAfterSigning(amount) = tamper {
            params.insert("total_amount", yuan(amount));
        }
        Notification {
            headers: vec![],
            content_type: "application/x-www-form-urlencoded; charset=utf-8",
            body: encode(&params),
        }
    }

    /// Alipay answers refunds synchronously (`fund_change`), so there is no notification
    /// of their own to wait for.
    fn refund_notification(&self, _refund_number: &str) -> Option<Notification> {
        None
    }

    fn requests(&self) -> Vec<SeenRequest> {
        self.shared.seen.lock().unwrap().clone()
    }

    fn refuse_refunds(&self, refuse: bool) {
        self.shared.refuse_refunds.store(refuse, Ordering::Relaxed);
    }
}

/// What Alipay signs in notifications and return URLs: every field but `sign` and
/// `sign_type`, sorted, unencoded.
fn notification_content(params: &BTreeMap<&str, String>) -> String {
    params
        .iter()
        .filter(|(k, _)| !matches!(**k, "sign" | "sign_type"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(params: &BTreeMap<&str, String>) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

/// Now plus `offset_secs`, in China time as Alipay writes it.
fn china_time(offset_secs: i64) -> String {
    (Utc::now() + Duration::hours(8) + Duration::seconds(offset_secs))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// Bazaar's Alipay gateway against the double, without the HTTP application.
mod round_trip {
    use bazaar::payments::gateway::alipay::Alipay;
    use bazaar::payments::gateway::{
        Channel, Checkout, Gateway, GatewayError, Incoming, NoticeSubject, PayRequest,
        RefundRequest, TradeState,
    };
    use chrono::{DateTime, Duration, Utc};

    use super::*;

    async fn setup() -> (AlipayDouble, Alipay) {
        let double = AlipayDouble::start().await;
        let mut config = Config::default();
        double.configure(&mut config);
        let alipay = Alipay::new(
            config.payments.alipay.as_ref().unwrap(),
            reqwest::Client::new(),
        )
        .unwrap();
        (double, alipay)
    }

    /// A payment number as the lead's numbering makes them: China time, then 8 digits.
    fn numbered(serial: u32) -> String {
        format!(
            "{}{serial:08}",
            (Utc::now() + Duration::hours(8)).format("%Y%m%d%H%M%S")
        )
    }

    fn request(number: &str, channel: Channel) -> PayRequest {
        PayRequest {
            number: number.into(),
            subject: "Bazaar order 20261123-0001".into(),
            amount: 8880,
            currency: "CNY".into(),
            channel,
            notify_url: "https://shop.example/api/v1/payments/notify/alipay".into(),
            return_url: Some("https://shop.example/checkout/done".into()),
            client_ip: None,
            payer_id: None,
            expires_at: Utc::now() + Duration::minutes(30),
        }
    }

    fn refund_request(payment: &str, refund: &str, amount: i64) -> RefundRequest {
        RefundRequest {
            payment_number: payment.into(),
            gateway_reference: None,
            refund_number: refund.into(),
            amount,
            payment_amount: 8880,
            currency: "CNY".into(),
            reason: "damaged in transit".into(),
            notify_url: "https://shop.example/api/v1/payments/notify/alipay".into(),
        }
    }

    /// The notification as Bazaar would store it on arrival.
    fn incoming(notification: super::Notification) -> Incoming {
        let mut headers = vec![("content-type".into(), notification.content_type.into())];
        headers.extend(notification.headers);
        Incoming {
            headers,
            body: notification.body,
        }
    }

    fn now() -> DateTime<Utc> {
        Utc::now()
    }

    #[tokio::test]
    async fn page_payment_query_notification_and_refunds() {
        let (double, alipay) = setup().await;
        assert_eq!(double.provider(), alipay.provider().as_str());
        let number = numbered(1);
        let checkout = alipay
            .create(&request(&number, Channel::Page))
            .await
            .unwrap();
        let Checkout::Redirect { url } = &checkout else {
            panic!("a redirect, not {checkout:?}");
        };
        assert!(url.starts_with(double.url()));

        // Nobody opened the cashier yet: Alipay knows no such trade.
        let status = alipay.query(&number).await.unwrap();
        assert_eq!(status.state, TradeState::Pending);
        assert_eq!(status.gateway_reference, None);

        let paid = double.pay(&serde_json::to_value(&checkout).unwrap()).await;
        assert_eq!(paid, number);
        let status = alipay.query(&number).await.unwrap();
        assert_eq!(status.state, TradeState::Succeeded);
        assert_eq!(status.amount, Some(8880));
        let trade_no = status.gateway_reference.clone().unwrap();

        let notice = alipay
            .verify(
                &incoming(double.paid_notification(&number, Tamper::None)),
                now(),
            )
            .unwrap();
        assert_eq!(notice.subject, NoticeSubject::Payment);
        assert_eq!(notice.number, number);
        assert_eq!(notice.state, TradeState::Succeeded);
        assert_eq!(notice.amount, 8880);
        assert_eq!(notice.gateway_reference.as_deref(), Some(trade_no.as_str()));
        assert_eq!(
            alipay.verify_return(&double.return_query(&number)).unwrap(),
            number
        );

        let refund_number = numbered(2);
        let refund = alipay
            .refund(&refund_request(&number, &refund_number, 1000))
            .await
            .unwrap();
        assert_eq!(refund.state, TradeState::Succeeded);
        assert_eq!(refund.gateway_reference.as_deref(), Some(trade_no.as_str()));
        // The same refund number again moves no money.
        let again = alipay
            .refund(&refund_request(&number, &refund_number, 1000))
            .await
            .unwrap();
        assert_eq!(again.state, TradeState::Pending);

        double.refuse_refunds(true);
        let refused = alipay
            .refund(&refund_request(&number, &numbered(3), 1000))
            .await;
        assert!(
            matches!(&refused, Err(GatewayError::Refused(m)) if m.starts_with("ACQ.SELLER_BALANCE_NOT_ENOUGH")),
            "{refused:?}"
        );
        // A paid trade cannot be closed.
        assert!(matches!(
            alipay.close(&number).await,
            Err(GatewayError::Refused(_))
        ));

        let seen = double.requests();
        assert!(seen.iter().all(|r| r.signature_valid));
        let operations: Vec<&str> = seen.iter().map(|r| r.operation.as_str()).collect();
        assert!(operations.contains(&"alipay.trade.page.pay"));
        assert!(operations.contains(&"alipay.trade.refund"));
        let refund_seen = seen
            .iter()
            .find(|r| r.operation == "alipay.trade.refund")
            .unwrap();
        assert_eq!(refund_seen.params["biz_content"]["refund_amount"], "10.00");
        assert_eq!(refund_seen.params["sign_type"], "RSA2");
    }

    #[tokio::test]
    async fn tampered_notifications_are_refused() {
        let (double, alipay) = setup().await;
        let number = numbered(4);
        let checkout = alipay
            .create(&request(&number, Channel::Wap))
            .await
            .unwrap();
        double.pay(&serde_json::to_value(&checkout).unwrap()).await;

        let after = double.paid_notification(&number, Tamper::AmountAfterSigning(1));
        assert!(alipay.verify(&incoming(after), now()).is_err());
        let wrong = double.paid_notification(&number, Tamper::WrongKey);
        assert!(alipay.verify(&incoming(wrong), now()).is_err());
        // Properly signed for another amount: genuine, and the amount says so.
        let signed = double.paid_notification(&number, Tamper::SignedAmount(1));
        assert_eq!(alipay.verify(&incoming(signed), now()).unwrap().amount, 1);
        // Alipay's notifications carry no signing time: a stale one is just a notification.
        let stale = double.paid_notification(&number, Tamper::Stale);
        assert!(alipay.verify(&incoming(stale), now()).is_ok());
        assert!(double.refund_notification(&number).is_none());
    }

    #[tokio::test]
    async fn qr_payment_and_close() {
        let (double, alipay) = setup().await;
        let number = numbered(5);
        let checkout = alipay
            .create(&request(&number, Channel::Native))
            .await
            .unwrap();
        let Checkout::QrCode { content } = &checkout else {
            panic!("a QR code, not {checkout:?}");
        };
        assert!(content.starts_with("https://qr.alipay.com/"));
        let status = alipay.query(&number).await.unwrap();
        assert_eq!(status.state, TradeState::Pending);
        assert!(status.gateway_reference.is_some());

        alipay.close(&number).await.unwrap();
        assert_eq!(
            alipay.query(&number).await.unwrap().state,
            TradeState::Closed
        );

        let other = numbered(6);
        let checkout = alipay
            .create(&request(&other, Channel::Native))
            .await
            .unwrap();
        assert_eq!(
            double.pay(&serde_json::to_value(&checkout).unwrap()).await,
            other
        );
        assert_eq!(
            alipay.query(&other).await.unwrap().state,
            TradeState::Succeeded
        );

        // Closing a trade Alipay never saw is refused, as Alipay does.
        let unknown = alipay.close(&numbered(7)).await;
        assert!(
            matches!(&unknown, Err(GatewayError::Refused(m)) if m.starts_with("ACQ.TRADE_NOT_EXIST")),
            "{unknown:?}"
        );
        let seen = double.requests();
        assert!(seen.iter().any(|r| r.operation == "alipay.trade.precreate"
            && r.params["biz_content"]["total_amount"] == "88.80"));
    }

    #[tokio::test]
    async fn unsupported_requests_and_untrusted_answers() {
        let (double, alipay) = setup().await;
        let number = numbered(8);
        let mut usd = request(&number, Channel::Page);
        usd.currency = "USD".into();
        assert!(matches!(
            alipay.create(&usd).await,
            Err(GatewayError::Unsupported(_))
        ));
        assert!(matches!(
            alipay.create(&request(&number, Channel::Jsapi)).await,
            Err(GatewayError::Unsupported(_))
        ));

        // Answers signed by Alipay's key do not verify with another one.
        let mut config = Config::default();
        double.configure(&mut config);
        let mut alipay_config = config.payments.alipay.clone().unwrap();
        alipay_config.alipay_public_key_path = fixture("wechat_public.pem");
        let misconfigured = Alipay::new(&alipay_config, reqwest::Client::new()).unwrap();
        assert!(matches!(
            misconfigured.query(&number).await,
            Err(GatewayError::BadResponse(_))
        ));

        // Nothing listens there any more.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        alipay_config = config.payments.alipay.clone().unwrap();
        alipay_config.gateway_url = format!("http://127.0.0.1:{port}/gateway.do");
        let unreachable = Alipay::new(&alipay_config, reqwest::Client::new()).unwrap();
        assert!(matches!(
            unreachable.query(&number).await,
            Err(GatewayError::Unavailable(_))
        ));
    }
}
