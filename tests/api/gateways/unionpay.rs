//! A double of UnionPay's online gateway (5.1.0): it checks Bazaar's signatures (SHA-256
//! hex digest, then SHA256withRSA) with the merchant's public key, takes the front-end form
//! as the customer's browser would post it, answers `queryTrans.do` and `backTransReq.do`
//! with signed raw `k=v&…` text, and signs back notifications with its own key.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bazaar::config::{Config, UnionpayConfig};
use chrono::{Duration, Utc};
use rsa::pkcs1v15::{SigningKey, VerifyingKey};
use rsa::sha2::{Digest, Sha256};
use rsa::signature::{SignatureEncoding, Signer};
use serde_json::Value;

use super::{
    Notification, SandboxGateway, SeenRequest, Tamper, fixture, signing_key, verify, verifying_key,
};

/// The merchant number and signing certificate id Bazaar is configured with.
pub const MER_ID: &str = "777290058110048";
pub const CERT_ID: &str = "69629715588";
const FRONT_PATH: &str = "/gateway/api/frontTransReq.do";

type Fields = BTreeMap<String, String>;

#[derive(Clone)]
pub struct UnionpayDouble {
    shared: Arc<Shared>,
    base_url: String,
}

struct Shared {
    unionpay: SigningKey<Sha256>,
    /// Not UnionPay's key: for `Tamper::WrongKey`.
    impostor: SigningKey<Sha256>,
    merchant: VerifyingKey<Sha256>,
    /// orderId → paid consumption
    trades: Mutex<HashMap<String, Trade>>,
    /// orderId of the refund → refund
    refunds: Mutex<HashMap<String, Refund>>,
    seen: Mutex<Vec<SeenRequest>>,
    refuse_refunds: AtomicBool,
    serial: AtomicU64,
}

#[derive(Debug, Clone)]
struct Trade {
    order_id: String,
    txn_time: String,
    amount: i64,
    query_id: String,
}

#[derive(Debug, Clone)]
struct Refund {
    order_id: String,
    txn_time: String,
    amount: i64,
    query_id: String,
    orig_qry_id: String,
}

impl UnionpayDouble {
    /// Listens on a loopback port of the current Tokio runtime.
    pub async fn start() -> Self {
        let shared = Arc::new(Shared {
            unionpay: signing_key("unionpay_private.pem"),
            impostor: signing_key("wechat_private.pem"),
            merchant: verifying_key("merchant_public.pem"),
            trades: Mutex::new(HashMap::new()),
            refunds: Mutex::new(HashMap::new()),
            seen: Mutex::new(Vec::new()),
            refuse_refunds: AtomicBool::new(false),
            serial: AtomicU64::new(1),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new()
            .route("/gateway/api/queryTrans.do", post(query_trans))
            .route("/gateway/api/backTransReq.do", post(back_trans))
            .with_state(shared.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { shared, base_url }
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The signed form UnionPay's front end posts to `frontUrl` when the customer returns.
    pub fn front_return(&self, payment_number: &str) -> String {
        let trade = self.shared.trade(payment_number);
        let mut fields = self.shared.consumption(&trade, trade.amount);
        self.shared.sign(&mut fields, &self.shared.unionpay);
        encode(&fields)
    }
}

impl Shared {
    fn trade(&self, order_id: &str) -> Trade {
        self.trades
            .lock()
            .unwrap()
            .get(order_id)
            .cloned()
            .unwrap_or_else(|| panic!("the UnionPay double has no paid trade {order_id}"))
    }

    /// A 21-digit `queryId` as UnionPay hands them out.
    fn query_id(&self) -> String {
        format!(
            "{}{:09}",
            (Utc::now() + Duration::hours(8)).format("%y%m%d%H%M%S"),
            self.serial.fetch_add(1, Ordering::Relaxed)
        )
    }

    fn record(&self, operation: &str, signature_valid: bool, fields: &Fields) {
        let params = fields
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        self.seen.lock().unwrap().push(SeenRequest {
            operation: operation.to_owned(),
            signature_valid,
            params: Value::Object(params),
        });
    }

    /// Whether `fields` carry the merchant's signature under the configured certificate.
    fn merchant_signed(&self, fields: &Fields) -> bool {
        fields.get("signMethod").map(String::as_str) == Some("01")
            && fields.get("certId").map(String::as_str) == Some(CERT_ID)
            && fields
                .get("signature")
                .is_some_and(|s| verify(&self.merchant, &digest_hex(fields), s))
    }

    fn sign(&self, fields: &mut Fields, key: &SigningKey<Sha256>) {
        let digest = digest_hex(fields);
        let signature = STANDARD.encode(key.sign(digest.as_bytes()).to_bytes());
        fields.insert("signature".into(), signature);
    }

    /// A signed answer, raw `k=v&…` as UnionPay sends it (nothing URL-encoded).
    fn answer(&self, mut fields: Fields) -> impl IntoResponse + use<> {
        self.sign(&mut fields, &self.unionpay);
        let text = fields
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        ([(header::CONTENT_TYPE, "text/plain;charset=UTF-8")], text)
    }

    /// The fields UnionPay reports a paid consumption with, unsigned.
    fn consumption(&self, trade: &Trade, amount: i64) -> Fields {
        let china = Utc::now() + Duration::hours(8);
        fields([
            ("accessType", "0"),
            ("bizType", "000201"),
            ("currencyCode", "156"),
            ("encoding", "UTF-8"),
            ("merId", MER_ID),
            ("orderId", &trade.order_id),
            ("queryId", &trade.query_id),
            ("respCode", "00"),
            ("respMsg", "成功[0000000]"),
            ("settleAmt", &amount.to_string()),
            ("settleCurrencyCode", "156"),
            ("settleDate", &china.format("%m%d").to_string()),
            ("signMethod", "01"),
            ("traceNo", &trade.query_id[15..]),
            ("traceTime", &china.format("%m%d%H%M%S").to_string()),
            ("txnAmt", &amount.to_string()),
            ("txnSubType", "01"),
            ("txnTime", &trade.txn_time),
            ("txnType", "01"),
            ("version", "5.1.0"),
        ])
    }
}

/// What the signature covers: SHA-256 (lower-case hex) of every non-empty field but
/// `signature`, sorted, unencoded.
fn digest_hex(fields: &Fields) -> String {
    let content = fields
        .iter()
        .filter(|(k, v)| k.as_str() != "signature" && !v.is_empty())
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    hex::encode(Sha256::digest(content.as_bytes()))
}

fn fields<const N: usize>(pairs: [(&str, &str); N]) -> Fields {
    pairs
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn parse(body: &str) -> Fields {
    form_urlencoded::parse(body.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn get<'a>(fields: &'a Fields, name: &str) -> &'a str {
    fields.get(name).map(String::as_str).unwrap_or("")
}

/// The common part of every answer, echoing the request.
fn echo(request: &Fields, resp_code: &str, resp_msg: &str) -> Fields {
    let mut answer = Fields::new();
    for name in [
        "accessType",
        "bizType",
        "encoding",
        "merId",
        "orderId",
        "txnSubType",
        "txnTime",
        "txnType",
        "version",
    ] {
        answer.insert(name.into(), get(request, name).into());
    }
    answer.insert("signMethod".into(), "01".into());
    answer.insert("respCode".into(), resp_code.into());
    answer.insert("respMsg".into(), resp_msg.into());
    answer
}

async fn query_trans(State(shared): State<Arc<Shared>>, body: String) -> impl IntoResponse {
    let request = parse(&body);
    let valid = shared.merchant_signed(&request);
    shared.record("queryTrans", valid, &request);
    if !valid {
        return shared.answer(echo(&request, "11", "验证签名失败"));
    }
    let order_id = get(&request, "orderId");
    let txn_time = get(&request, "txnTime");
    let found = shared
        .trades
        .lock()
        .unwrap()
        .get(order_id)
        .filter(|t| t.txn_time == txn_time)
        .map(|t| (t.query_id.clone(), t.amount))
        .or_else(|| {
            shared
                .refunds
                .lock()
                .unwrap()
                .get(order_id)
                .filter(|r| r.txn_time == txn_time)
                .map(|r| (r.query_id.clone(), r.amount))
        });
    let Some((query_id, amount)) = found else {
        return shared.answer(echo(&request, "34", "查无此交易"));
    };
    let mut answer = echo(&request, "00", "成功[0000000]");
    answer.insert("origRespCode".into(), "00".into());
    answer.insert("origRespMsg".into(), "成功[0000000]".into());
    answer.insert("queryId".into(), query_id);
    answer.insert("txnAmt".into(), amount.to_string());
    answer.insert("currencyCode".into(), "156".into());
    shared.answer(answer)
}

async fn back_trans(State(shared): State<Arc<Shared>>, body: String) -> impl IntoResponse {
    let request = parse(&body);
    let valid = shared.merchant_signed(&request);
    shared.record("backTransReq", valid, &request);
    if !valid {
        return shared.answer(echo(&request, "11", "验证签名失败"));
    }
    if get(&request, "txnType") != "04" {
        return shared.answer(echo(&request, "10", "报文格式错误"));
    }
    if shared.refuse_refunds.load(Ordering::Relaxed) {
        return shared.answer(echo(&request, "01", "交易失败"));
    }
    let orig = get(&request, "origQryId");
    let Some(trade) = shared
        .trades
        .lock()
        .unwrap()
        .values()
        .find(|t| t.query_id == orig)
        .cloned()
    else {
        return shared.answer(echo(&request, "35", "原交易不存在或状态不正确"));
    };
    let Some(amount) = get(&request, "txnAmt")
        .parse::<i64>()
        .ok()
        .filter(|a| *a > 0)
    else {
        return shared.answer(echo(&request, "10", "报文格式错误"));
    };
    let mut refunds = shared.refunds.lock().unwrap();
    let order_id = get(&request, "orderId").to_owned();
    if refunds.contains_key(&order_id) {
        return shared.answer(echo(&request, "12", "重复交易"));
    }
    let refunded: i64 = refunds
        .values()
        .filter(|r| r.orig_qry_id == trade.query_id)
        .map(|r| r.amount)
        .sum();
    if refunded + amount > trade.amount {
        return shared.answer(echo(&request, "01", "交易失败：退货金额超限"));
    }
    let refund = Refund {
        order_id: order_id.clone(),
        txn_time: get(&request, "txnTime").into(),
        amount,
        query_id: shared.query_id(),
        orig_qry_id: trade.query_id,
    };
    let mut answer = echo(&request, "00", "成功[0000000]");
    answer.insert("queryId".into(), refund.query_id.clone());
    answer.insert("origQryId".into(), refund.orig_qry_id.clone());
    answer.insert("txnAmt".into(), amount.to_string());
    refunds.insert(order_id, refund);
    drop(refunds);
    shared.answer(answer)
}

#[async_trait::async_trait]
impl SandboxGateway for UnionpayDouble {
    fn provider(&self) -> &'static str {
        "unionpay"
    }

    fn configure(&self, config: &mut Config) {
        config.payments.unionpay = Some(UnionpayConfig {
            mer_id: MER_ID.into(),
            base_url: self.base_url.clone(),
            cert_id: CERT_ID.into(),
            private_key_path: fixture("merchant_private.pem"),
            unionpay_public_key_path: fixture("unionpay_public.pem"),
        });
    }

    async fn pay(&self, checkout: &Value) -> String {
        assert_eq!(
            checkout.get("kind").and_then(Value::as_str),
            Some("form"),
            "UnionPay is paid through a posted form, not {checkout}"
        );
        assert_eq!(
            checkout["action"].as_str(),
            Some(format!("{}{FRONT_PATH}", self.base_url).as_str()),
            "the form does not post to this gateway's front end"
        );
        assert_eq!(checkout["method"], "POST");
        let fields: Fields = serde_json::from_value(checkout["fields"].clone()).unwrap();
        let valid = self.shared.merchant_signed(&fields);
        self.shared.record("frontTransReq", valid, &fields);
        assert!(
            valid,
            "the UnionPay form is not signed by the merchant's key"
        );
        for (name, expected) in [
            ("version", "5.1.0"),
            ("encoding", "UTF-8"),
            ("merId", MER_ID),
            ("txnType", "01"),
            ("txnSubType", "01"),
            ("bizType", "000201"),
            ("accessType", "0"),
            ("currencyCode", "156"),
        ] {
            assert_eq!(get(&fields, name), expected, "{name}");
        }
        assert!(matches!(get(&fields, "channelType"), "07" | "08"));
        assert!(!get(&fields, "backUrl").is_empty(), "no backUrl");
        assert_eq!(get(&fields, "payTimeout").len(), 14, "payTimeout");
        let order_id = get(&fields, "orderId").to_owned();
        let amount = get(&fields, "txnAmt").parse().expect("txnAmt in fen");
        let mut trades = self.shared.trades.lock().unwrap();
        if !trades.contains_key(&order_id) {
            let trade = Trade {
                order_id: order_id.clone(),
                txn_time: get(&fields, "txnTime").into(),
                amount,
                query_id: self.shared.query_id(),
            };
            trades.insert(order_id.clone(), trade);
        }
        order_id
    }

    fn paid_notification(&self, payment_number: &str, tamper: Tamper) -> Notification {
        let trade = self.shared.trade(payment_number);
        let amount = match tamper {
            Tamper::SignedAmount(amount) => amount,
            _ => trade.amount,
        };
        let mut fields = self.shared.consumption(&trade, amount);
        fields.insert("accNo".into(), "6216****0018".into());
        fields.insert("payType".into(), "0001".into());
        let key = match tamper {
            Tamper::WrongKey => &self.shared.impostor,
            _ => &self.shared.unionpay,
        };
        self.shared.sign(&mut fields, key);
        if let Tamper::AmountAfterSigning(amount) = tamper {
            fields.insert("txnAmt".into(), amount.to_string());
        }
        Notification {
            headers: vec![],
            content_type: "application/x-www-form-urlencoded; charset=UTF-8",
            body: encode(&fields),
        }
    }

    /// The back notification of a refund this double accepted.
    fn refund_notification(&self, refund_number: &str) -> Option<Notification> {
        let refund = self
            .shared
            .refunds
            .lock()
            .unwrap()
            .get(refund_number)?
            .clone();
        let china = Utc::now() + Duration::hours(8);
        let mut fields = fields([
            ("accessType", "0"),
            ("bizType", "000201"),
            ("currencyCode", "156"),
            ("encoding", "UTF-8"),
            ("merId", MER_ID),
            ("orderId", &refund.order_id),
            ("origQryId", &refund.orig_qry_id),
            ("queryId", &refund.query_id),
            ("respCode", "00"),
            ("respMsg", "成功[0000000]"),
            ("settleAmt", &refund.amount.to_string()),
            ("settleCurrencyCode", "156"),
            ("settleDate", &china.format("%m%d").to_string()),
            ("signMethod", "01"),
            ("traceNo", &refund.query_id[15..]),
            ("traceTime", &china.format("%m%d%H%M%S").to_string()),
            ("txnAmt", &refund.amount.to_string()),
            ("txnSubType", "00"),
            ("txnTime", &refund.txn_time),
            ("txnType", "04"),
            ("version", "5.1.0"),
        ]);
        self.shared.sign(&mut fields, &self.shared.unionpay);
        Some(Notification {
            headers: vec![],
            content_type: "application/x-www-form-urlencoded; charset=UTF-8",
            body: encode(&fields),
        })
    }

    fn requests(&self) -> Vec<SeenRequest> {
        self.shared.seen.lock().unwrap().clone()
    }

    fn refuse_refunds(&self, refuse: bool) {
        self.shared.refuse_refunds.store(refuse, Ordering::Relaxed);
    }
}

fn encode(fields: &Fields) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

/// Bazaar's UnionPay gateway against the double, without the HTTP application.
mod round_trip {
    use bazaar::payments::gateway::unionpay::Unionpay;
    use bazaar::payments::gateway::{
        Channel, Checkout, Gateway, GatewayError, Incoming, NoticeSubject, PayRequest,
        RefundRequest, TradeState,
    };

    use super::*;

    async fn setup() -> (UnionpayDouble, Unionpay) {
        let double = UnionpayDouble::start().await;
        let mut config = Config::default();
        double.configure(&mut config);
        let unionpay = Unionpay::new(
            config.payments.unionpay.as_ref().unwrap(),
            reqwest::Client::new(),
        )
        .unwrap();
        (double, unionpay)
    }

    /// A payment or refund number as the lead's numbering makes them: China time, then
    /// 8 digits.
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
            notify_url: "https://shop.example/api/v1/payments/notify/unionpay".into(),
            return_url: Some("https://shop.example/checkout/done".into()),
            client_ip: None,
            payer_id: None,
            expires_at: Utc::now() + Duration::minutes(30),
        }
    }

    fn refund_request(payment: &str, reference: Option<String>, refund: &str) -> RefundRequest {
        RefundRequest {
            payment_number: payment.into(),
            gateway_reference: reference,
            refund_number: refund.into(),
            amount: 1000,
            payment_amount: 8880,
            currency: "CNY".into(),
            reason: "damaged in transit".into(),
            notify_url: "https://shop.example/api/v1/payments/notify/unionpay".into(),
        }
    }

    /// The notification as Bazaar would store it on arrival.
    fn incoming(notification: Notification) -> Incoming {
        let mut headers = vec![("content-type".into(), notification.content_type.into())];
        headers.extend(notification.headers);
        Incoming {
            headers,
            body: notification.body,
        }
    }

    #[tokio::test]
    async fn front_payment_query_notification_and_refund() {
        let (double, unionpay) = setup().await;
        assert_eq!(double.provider(), unionpay.provider().as_str());
        let number = numbered(1);

        // Not submitted yet: UnionPay knows no such trade.
        let status = unionpay.query(&number).await.unwrap();
        assert_eq!(status.state, TradeState::Pending);
        assert_eq!(status.gateway_reference, None);

        let checkout = unionpay
            .create(&request(&number, Channel::Page))
            .await
            .unwrap();
        let Checkout::Form { action, .. } = &checkout else {
            panic!("a form, not {checkout:?}");
        };
        assert!(action.starts_with(double.base_url()));
        assert_eq!(
            double.pay(&serde_json::to_value(&checkout).unwrap()).await,
            number
        );

        let status = unionpay.query(&number).await.unwrap();
        assert_eq!(status.state, TradeState::Succeeded);
        assert_eq!(status.amount, Some(8880));
        let query_id = status.gateway_reference.clone().unwrap();

        let notice = unionpay
            .verify(
                &incoming(double.paid_notification(&number, Tamper::None)),
                Utc::now(),
            )
            .unwrap();
        assert_eq!(notice.subject, NoticeSubject::Payment);
        assert_eq!(notice.number, number);
        assert_eq!(notice.state, TradeState::Succeeded);
        assert_eq!(notice.amount, 8880);
        assert_eq!(notice.currency, "CNY");
        assert_eq!(notice.gateway_reference.as_deref(), Some(query_id.as_str()));
        assert_eq!(
            unionpay
                .verify_return(&double.front_return(&number))
                .unwrap(),
            number
        );

        let refund_number = numbered(2);
        let outcome = unionpay
            .refund(&refund_request(
                &number,
                Some(query_id.clone()),
                &refund_number,
            ))
            .await
            .unwrap();
        assert_eq!(outcome.state, TradeState::Pending);
        let refund_query_id = outcome.gateway_reference.unwrap();
        let notice = unionpay
            .verify(
                &incoming(double.refund_notification(&refund_number).unwrap()),
                Utc::now(),
            )
            .unwrap();
        assert_eq!(notice.subject, NoticeSubject::Refund);
        assert_eq!(notice.number, refund_number);
        assert_eq!(notice.state, TradeState::Succeeded);
        assert_eq!(notice.amount, 1000);
        assert_eq!(notice.gateway_reference, Some(refund_query_id));
        assert!(double.refund_notification(&numbered(9)).is_none());

        double.refuse_refunds(true);
        let refused = unionpay
            .refund(&refund_request(&number, Some(query_id), &numbered(3)))
            .await;
        assert!(
            matches!(&refused, Err(GatewayError::Refused(m)) if m.starts_with("01:")),
            "{refused:?}"
        );
        assert!(matches!(
            unionpay
                .refund(&refund_request(&number, None, &numbered(4)))
                .await,
            Err(GatewayError::Unsupported(_))
        ));
        assert!(matches!(
            unionpay.close(&number).await,
            Err(GatewayError::Unsupported(_))
        ));

        let seen = double.requests();
        assert!(seen.iter().all(|r| r.signature_valid));
        let operations: Vec<&str> = seen.iter().map(|r| r.operation.as_str()).collect();
        assert_eq!(
            operations,
            [
                "queryTrans",
                "frontTransReq",
                "queryTrans",
                "backTransReq",
                "backTransReq"
            ]
        );
        assert_eq!(seen[3].params["txnType"], "04");
        assert_eq!(seen[3].params["orderId"], refund_number.as_str());
        assert_eq!(seen[3].params["txnTime"], &refund_number[..14]);
    }

    #[tokio::test]
    async fn tampered_notifications_are_refused() {
        let (double, unionpay) = setup().await;
        let number = numbered(5);
        let checkout = unionpay
            .create(&request(&number, Channel::Wap))
            .await
            .unwrap();
        double.pay(&serde_json::to_value(&checkout).unwrap()).await;
        let verify = |n| unionpay.verify(&incoming(n), Utc::now());

        assert!(verify(double.paid_notification(&number, Tamper::AmountAfterSigning(1))).is_err());
        assert!(verify(double.paid_notification(&number, Tamper::WrongKey)).is_err());
        assert_eq!(
            verify(double.paid_notification(&number, Tamper::SignedAmount(1)))
                .unwrap()
                .amount,
            1
        );
        assert!(verify(double.paid_notification(&number, Tamper::Stale)).is_ok());
    }

    #[tokio::test]
    async fn untrusted_answers_and_unsupported_requests() {
        let (double, unionpay) = setup().await;
        let number = numbered(6);
        assert!(matches!(
            unionpay.create(&request(&number, Channel::Native)).await,
            Err(GatewayError::Unsupported(_))
        ));

        let mut config = Config::default();
        double.configure(&mut config);
        let mut unionpay_config = config.payments.unionpay.clone().unwrap();
        unionpay_config.unionpay_public_key_path = fixture("alipay_public.pem");
        let misconfigured = Unionpay::new(&unionpay_config, reqwest::Client::new()).unwrap();
        assert!(matches!(
            misconfigured.query(&number).await,
            Err(GatewayError::BadResponse(_))
        ));

        // A certificate id UnionPay does not know: it refuses the signature.
        unionpay_config = config.payments.unionpay.clone().unwrap();
        unionpay_config.cert_id = "1".into();
        let wrong_cert = Unionpay::new(&unionpay_config, reqwest::Client::new()).unwrap();
        assert!(matches!(
            wrong_cert.query(&number).await,
            Err(GatewayError::Refused(m)) if m.starts_with("11:")
        ));
        assert!(!double.requests().last().unwrap().signature_valid);
    }
}
