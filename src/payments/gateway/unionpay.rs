//! UnionPay's online gateway (网关支付, interface version 5.1.0, `signMethod` 01).
//!
//! Every message is signed the same way, both directions: the fields but `signature`,
//! sorted by name and joined as `k=v&…`, are hashed with SHA-256; the lower-case hex of
//! that hash is signed with SHA256withRSA and sent base64-encoded.
//!
//! UnionPay wants the original `txnTime` to find a trade, so payment and refund numbers
//! start with their own `yyyyMMddHHmmss` (China time) and the time is read back from them.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

use super::crypto::{PrivateKey, PublicKey};
use super::{
    Ack, Channel, Checkout, Forged, Gateway, GatewayError, Incoming, Notice, NoticeSubject,
    PayRequest, RefundOutcome, RefundRequest, TradeState, TradeStatus,
};
use crate::config::UnionpayConfig;
use crate::system::model::PaymentProvider;

const VERSION: &str = "5.1.0";
/// ISO 4217 numeric code of the yuan, the only currency Bazaar collects through UnionPay.
const CNY: &str = "156";
/// Answer codes meaning "in progress or unknown": ask again later.
const IN_PROGRESS: [&str; 3] = ["03", "04", "05"];

pub struct Unionpay {
    mer_id: String,
    base_url: String,
    cert_id: String,
    key: PrivateKey,
    unionpay_key: PublicKey,
    http: reqwest::Client,
}

impl Unionpay {
    pub fn new(config: &UnionpayConfig, http: reqwest::Client) -> anyhow::Result<Self> {
        Ok(Self {
            mer_id: config.mer_id.clone(),
            base_url: config.base_url.trim_end_matches('/').to_owned(),
            cert_id: config.cert_id.clone(),
            key: PrivateKey::from_file(&config.private_key_path)?,
            unionpay_key: PublicKey::from_file(&config.unionpay_public_key_path)?,
            http,
        })
    }

    /// The fields every request carries, for `orderId` and its `txnTime`.
    fn base_fields(&self, txn_type: &str, order_id: &str, txn_time: &str) -> Fields {
        let mut fields = Fields::new();
        for (k, v) in [
            ("version", VERSION),
            ("encoding", "UTF-8"),
            ("signMethod", "01"),
            ("txnType", txn_type),
            ("accessType", "0"),
            ("merId", &self.mer_id),
            ("orderId", order_id),
            ("txnTime", txn_time),
            ("certId", &self.cert_id),
        ] {
            fields.insert(k.to_owned(), v.to_owned());
        }
        fields
    }

    fn sign(&self, fields: &mut Fields) {
        fields.remove("signature");
        let digest = digest_hex(&sign_content(fields));
        let signature = self.key.sign_base64(digest.as_bytes());
        fields.insert("signature".into(), signature);
    }

    /// Checks UnionPay's signature over `fields` (all but `signature`, empty ones included,
    /// as UnionPay's SDK does).
    ///
    /// UnionPay puts its signing certificate in `signPubKeyCert` and expects it checked
    /// against its root certificate; Bazaar instead verifies with the UnionPay public key
    /// configured from that certificate, so a message signed by any other key fails.
    fn verify_fields(&self, fields: &Fields) -> bool {
        let Some(signature) = fields.get("signature") else {
            return false;
        };
        let content = fields
            .iter()
            .filter(|(k, _)| k.as_str() != "signature")
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        self.unionpay_key
            .verify_base64(digest_hex(&content).as_bytes(), signature)
    }

    /// A signed notification or front-return form, checked and confirmed to be for us.
    fn verify_form(&self, form: &str) -> Result<Fields, Forged> {
        let fields = parse_form(form)?;
        if fields.get("signMethod").map(String::as_str) != Some("01") {
            return Err(Forged(
                "not signed with a certificate (signMethod 01)".into(),
            ));
        }
        if !self.verify_fields(&fields) {
            return Err(Forged("the signature does not verify".into()));
        }
        if fields.get("merId") != Some(&self.mer_id) {
            return Err(Forged("merId is not this shop's".into()));
        }
        Ok(fields)
    }

    /// Posts a signed request to a back-end endpoint and returns UnionPay's verified answer.
    async fn post(&self, path: &str, mut fields: Fields) -> Result<Fields, GatewayError> {
        self.sign(&mut fields);
        let response = self
            .http
            .post(format!("{}{path}", self.base_url))
            .form(&fields)
            .send()
            .await
            .map_err(|e| GatewayError::Unavailable(e.to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(GatewayError::Unavailable(format!("HTTP {status}")));
        }
        let body = response
            .text()
            .await
            .map_err(|e| GatewayError::Unavailable(e.to_string()))?;
        let answer = parse_answer(&body)
            .ok_or_else(|| GatewayError::BadResponse("a field appears twice".into()))?;
        if !self.verify_fields(&answer) {
            let code = answer.get("respCode").map_or("?", String::as_str);
            return Err(GatewayError::BadResponse(format!(
                "unsigned or wrongly signed answer (respCode {code})"
            )));
        }
        Ok(answer)
    }
}

#[async_trait::async_trait]
impl Gateway for Unionpay {
    fn provider(&self) -> PaymentProvider {
        PaymentProvider::Unionpay
    }

    fn channels(&self) -> &'static [Channel] {
        &[Channel::Page, Channel::Wap]
    }

    /// A signed form the browser posts to UnionPay's front end; nothing is sent beforehand.
    async fn create(&self, request: &PayRequest) -> Result<Checkout, GatewayError> {
        let channel_type = match request.channel {
            Channel::Page => "07",
            Channel::Wap => "08",
            other => {
                return Err(GatewayError::Unsupported(format!(
                    "UnionPay does not offer the {} channel",
                    other.as_str()
                )));
            }
        };
        if request.currency != "CNY" {
            return Err(GatewayError::Unsupported(format!(
                "UnionPay collects CNY, not {}",
                request.currency
            )));
        }
        if request.amount <= 0 {
            return Err(GatewayError::Unsupported(
                "UnionPay cannot collect a zero amount".into(),
            ));
        }
        let txn_time = txn_time(&request.number)?;
        let mut fields = self.base_fields("01", &request.number, txn_time);
        for (k, v) in [
            ("txnSubType", "01"),
            ("bizType", "000201"),
            ("channelType", channel_type),
            ("currencyCode", CNY),
            ("backUrl", &request.notify_url),
        ] {
            fields.insert(k.to_owned(), v.to_owned());
        }
        fields.insert("txnAmt".into(), request.amount.to_string());
        fields.insert("payTimeout".into(), china_time(request.expires_at));
        if let Some(url) = &request.return_url {
            fields.insert("frontUrl".into(), url.clone());
        }
        self.sign(&mut fields);
        Ok(Checkout::Form {
            action: format!("{}/gateway/api/frontTransReq.do", self.base_url),
            method: "POST".into(),
            fields,
        })
    }

    /// The back notification (`backUrl`) of a payment (`txnType` 01) or a refund (04).
    /// UnionPay's notifications carry no freshness guarantee; `received_at` plays no part.
    fn verify(&self, incoming: &Incoming, _received_at: DateTime<Utc>) -> Result<Notice, Forged> {
        let fields = self.verify_form(&incoming.body)?;
        let field = |name: &str| {
            fields
                .get(name)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| Forged(format!("no {name}")))
        };
        let subject = match field("txnType")?.as_str() {
            "01" => NoticeSubject::Payment,
            "04" => NoticeSubject::Refund,
            other => return Err(Forged(format!("unexpected txnType {other}"))),
        };
        // A6 is UnionPay's "succeeded with a defect" and is treated as a success.
        let state = match field("respCode")?.as_str() {
            "00" | "A6" => TradeState::Succeeded,
            code if IN_PROGRESS.contains(&code) => TradeState::Pending,
            _ => TradeState::Failed,
        };
        let amount = fen(field("txnAmt")?).ok_or_else(|| Forged("bad txnAmt".into()))?;
        let currency = match fields.get("currencyCode").map(String::as_str) {
            Some(CNY) | None => "CNY",
            Some(other) => return Err(Forged(format!("unexpected currencyCode {other}"))),
        };
        Ok(Notice {
            subject,
            number: field("orderId")?.clone(),
            gateway_reference: fields.get("queryId").filter(|v| !v.is_empty()).cloned(),
            state,
            amount,
            currency: currency.into(),
        })
    }

    /// UnionPay brings the browser back by POSTing a signed form to `frontUrl`: pass that
    /// form body here. Returns the `orderId`.
    fn verify_return(&self, query: &str) -> Result<String, Forged> {
        let fields = self.verify_form(query.trim_start_matches('?'))?;
        fields
            .get("orderId")
            .filter(|v| !v.is_empty())
            .cloned()
            .ok_or_else(|| Forged("no orderId".into()))
    }

    /// UnionPay only needs HTTP 200; the body is not read.
    fn acknowledge(&self) -> Ack {
        Ack {
            status: 200,
            content_type: "text/plain",
            body: "ok".into(),
        }
    }

    /// Any status but 200 makes UnionPay send the notification again later.
    fn refuse(&self, reason: &str) -> Ack {
        Ack {
            status: 400,
            content_type: "text/plain",
            body: reason.to_owned(),
        }
    }

    /// `respCode` 34 ("no such trade") is a trade the customer has not submitted yet, so
    /// pending; it dies at `payTimeout` without any trace at UnionPay.
    async fn query(&self, payment_number: &str) -> Result<TradeStatus, GatewayError> {
        let txn_time = txn_time(payment_number)?;
        let mut fields = self.base_fields("00", payment_number, txn_time);
        fields.insert("txnSubType".into(), "00".into());
        fields.insert("bizType".into(), "000000".into());
        let answer = self.post("/gateway/api/queryTrans.do", fields).await?;
        let get = |name: &str| answer.get(name).map(String::as_str).unwrap_or("");
        match get("respCode") {
            "00" => {}
            "34" => {
                return Ok(TradeStatus {
                    state: TradeState::Pending,
                    gateway_reference: None,
                    amount: None,
                    currency: None,
                });
            }
            code => {
                return Err(GatewayError::Refused(format!("{code}: {}", get("respMsg"))));
            }
        }
        let state = match get("origRespCode") {
            "00" | "A6" => TradeState::Succeeded,
            code if IN_PROGRESS.contains(&code) => TradeState::Pending,
            _ => TradeState::Failed,
        };
        Ok(TradeStatus {
            state,
            gateway_reference: Some(get("queryId"))
                .filter(|v| !v.is_empty())
                .map(Into::into),
            amount: fen(get("txnAmt")),
            currency: Some("CNY".into()),
        })
    }

    /// A refund (退货, `txnType` 04) of the payment's `queryId`. Accepted is all UnionPay
    /// says at once: the outcome comes by a back notification to `notify_url` (or a query).
    async fn refund(&self, request: &RefundRequest) -> Result<RefundOutcome, GatewayError> {
        if request.currency != "CNY" {
            return Err(GatewayError::Unsupported(format!(
                "UnionPay refunds CNY, not {}",
                request.currency
            )));
        }
        let Some(orig_qry_id) = request.gateway_reference.as_deref() else {
            return Err(GatewayError::Unsupported(
                "a UnionPay refund needs the payment's queryId".into(),
            ));
        };
        let txn_time = txn_time(&request.refund_number)?;
        let mut fields = self.base_fields("04", &request.refund_number, txn_time);
        for (k, v) in [
            ("txnSubType", "00"),
            ("bizType", "000201"),
            ("channelType", "07"),
            ("currencyCode", CNY),
            ("origQryId", orig_qry_id),
            ("backUrl", &request.notify_url),
        ] {
            fields.insert(k.to_owned(), v.to_owned());
        }
        fields.insert("txnAmt".into(), request.amount.to_string());
        let answer = self.post("/gateway/api/backTransReq.do", fields).await?;
        let get = |name: &str| answer.get(name).map(String::as_str).unwrap_or("");
        match get("respCode") {
            code if code == "00" || IN_PROGRESS.contains(&code) => Ok(RefundOutcome {
                state: TradeState::Pending,
                gateway_reference: Some(get("queryId"))
                    .filter(|v| !v.is_empty())
                    .map(Into::into),
            }),
            code => Err(GatewayError::Refused(format!("{code}: {}", get("respMsg")))),
        }
    }

    /// UnionPay cannot close an unpaid front-end trade: it lapses at `payTimeout`.
    async fn close(&self, _payment_number: &str) -> Result<(), GatewayError> {
        Err(GatewayError::Unsupported(
            "UnionPay has no close; an unpaid trade lapses at its payTimeout".into(),
        ))
    }
}

type Fields = BTreeMap<String, String>;

/// The string a request is signed over: its non-empty fields but `signature`, sorted by
/// name, as unencoded `k=v` joined with `&`.
pub(crate) fn sign_content(fields: &Fields) -> String {
    fields
        .iter()
        .filter(|(k, v)| k.as_str() != "signature" && !v.is_empty())
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// SHA-256 as lower-case hex: what UnionPay's RSA signature actually covers.
pub(crate) fn digest_hex(content: &str) -> String {
    hex::encode(Sha256::digest(content.as_bytes()))
}

/// The `txnTime` a payment or refund number starts with.
fn txn_time(number: &str) -> Result<&str, GatewayError> {
    match number.get(..14) {
        Some(time) if time.bytes().all(|b| b.is_ascii_digit()) => Ok(time),
        _ => Err(GatewayError::Unsupported(format!(
            "{number} does not start with its yyyyMMddHHmmss time, which UnionPay needs"
        ))),
    }
}

/// UnionPay's times are China time (UTC+8) as `yyyyMMddHHmmss`.
fn china_time(at: DateTime<Utc>) -> String {
    (at + Duration::hours(8)).format("%Y%m%d%H%M%S").to_string()
}

/// Minor units written as UnionPay writes them: digits only.
fn fen(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A posted form decoded; a repeated name makes it ambiguous, so refused.
fn parse_form(form: &str) -> Result<Fields, Forged> {
    let mut fields = Fields::new();
    for (k, v) in form_urlencoded::parse(form.as_bytes()) {
        if fields
            .insert(k.clone().into_owned(), v.into_owned())
            .is_some()
        {
            return Err(Forged(format!("{k} appears twice")));
        }
    }
    Ok(fields)
}

/// A back-end answer: `k=v` pairs joined by `&`, NOT URL-encoded (UnionPay's SDK reads them
/// raw). A value in braces (`{…}`, as reserved fields are) may itself contain `&`.
fn parse_answer(body: &str) -> Option<Fields> {
    let mut fields = Fields::new();
    let mut depth = 0usize;
    let mut start = 0;
    let body = body.trim();
    let mut pairs = Vec::new();
    for (i, c) in body.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            '&' if depth == 0 => {
                pairs.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    pairs.push(&body[start..]);
    for pair in pairs.into_iter().filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if fields.insert(k.to_owned(), v.to_owned()).is_some() {
            return None;
        }
    }
    Some(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MERCHANT_PRIVATE: &str =
        include_str!("../../../tests/fixtures/payments/merchant_private.pem");
    const MERCHANT_PUBLIC: &str =
        include_str!("../../../tests/fixtures/payments/merchant_public.pem");
    const UNIONPAY_PRIVATE: &str =
        include_str!("../../../tests/fixtures/payments/unionpay_private.pem");
    const UNIONPAY_PUBLIC: &str =
        include_str!("../../../tests/fixtures/payments/unionpay_public.pem");
    const WECHAT_PRIVATE: &str =
        include_str!("../../../tests/fixtures/payments/wechat_private.pem");

    fn gateway() -> Unionpay {
        Unionpay {
            mer_id: "777290058110048".into(),
            base_url: "https://gateway.test.95516.com".into(),
            cert_id: "69629715588".into(),
            key: PrivateKey::from_pem(MERCHANT_PRIVATE).unwrap(),
            unionpay_key: PublicKey::from_pem(UNIONPAY_PUBLIC).unwrap(),
            http: reqwest::Client::new(),
        }
    }

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// Signs as UnionPay does and encodes as a posted form.
    fn signed_form(mut fields: Fields, signer: &str) -> String {
        let digest = digest_hex(&sign_content(&fields));
        let signature = PrivateKey::from_pem(signer)
            .unwrap()
            .sign_base64(digest.as_bytes());
        fields.insert("signature".into(), signature);
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&fields)
            .finish()
    }

    fn paid(mer_id: &str, amount: &str) -> Fields {
        fields(&[
            ("accessType", "0"),
            ("bizType", "000201"),
            ("currencyCode", "156"),
            ("encoding", "UTF-8"),
            ("merId", mer_id),
            ("orderId", "2026112310000012345678"),
            ("queryId", "782611231000041234567"),
            ("respCode", "00"),
            ("respMsg", "成功[0000000]"),
            ("settleAmt", amount),
            ("settleCurrencyCode", "156"),
            ("settleDate", "1123"),
            ("signMethod", "01"),
            ("traceNo", "123456"),
            ("traceTime", "1123100004"),
            ("txnAmt", amount),
            ("txnSubType", "01"),
            ("txnTime", "20261123100000"),
            ("txnType", "01"),
            ("version", "5.1.0"),
        ])
    }

    fn incoming(body: String) -> Incoming {
        Incoming {
            headers: vec![],
            body,
        }
    }

    #[test]
    fn signs_the_hex_digest_of_the_sorted_non_empty_fields() {
        let f = fields(&[
            ("version", "5.1.0"),
            ("txnAmt", "1000"),
            ("merId", "777290058110048"),
            ("frontUrl", ""),
            ("signature", "ignored"),
            ("backUrl", "https://shop.example/notify?a=1&b=2"),
        ]);
        let content = sign_content(&f);
        assert_eq!(
            content,
            "backUrl=https://shop.example/notify?a=1&b=2&merId=777290058110048&txnAmt=1000&version=5.1.0"
        );
        assert_eq!(
            digest_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );

        let unionpay = gateway();
        let mut signed = f.clone();
        unionpay.sign(&mut signed);
        let merchant = PublicKey::from_pem(MERCHANT_PUBLIC).unwrap();
        let digest = digest_hex(&sign_content(&signed));
        assert!(merchant.verify_base64(digest.as_bytes(), &signed["signature"]));
        // The signature is over the hex digest, not the content itself.
        assert!(!merchant.verify_base64(content.as_bytes(), &signed["signature"]));
    }

    #[tokio::test]
    async fn the_front_form_carries_the_documented_fields() {
        let unionpay = gateway();
        let request = PayRequest {
            number: "2026112310000012345678".into(),
            subject: "Bazaar order".into(),
            amount: 8880,
            currency: "CNY".into(),
            channel: Channel::Wap,
            notify_url: "https://shop.example/api/v1/payments/notify/unionpay".into(),
            return_url: None,
            client_ip: None,
            payer_id: None,
            expires_at: DateTime::parse_from_rfc3339("2026-11-23T02:30:00Z")
                .unwrap()
                .with_timezone(&Utc),
        };
        let Checkout::Form {
            action,
            method,
            fields,
        } = unionpay.create(&request).await.unwrap()
        else {
            panic!("a form");
        };
        assert_eq!(
            action,
            "https://gateway.test.95516.com/gateway/api/frontTransReq.do"
        );
        assert_eq!(method, "POST");
        assert_eq!(fields["txnTime"], "20261123100000");
        assert_eq!(fields["payTimeout"], "20261123103000");
        assert_eq!(fields["channelType"], "08");
        assert_eq!(fields["txnAmt"], "8880");
        assert_eq!(fields["certId"], "69629715588");
        assert!(!fields.contains_key("frontUrl"));

        let mut bad = request.clone();
        bad.currency = "USD".into();
        assert!(matches!(
            unionpay.create(&bad).await,
            Err(GatewayError::Unsupported(_))
        ));
        bad = request.clone();
        bad.number = "ORDER-1".into();
        assert!(matches!(
            unionpay.create(&bad).await,
            Err(GatewayError::Unsupported(_))
        ));
        bad = request;
        bad.channel = Channel::Native;
        assert!(unionpay.create(&bad).await.is_err());
    }

    #[test]
    fn a_genuine_payment_notification_verifies() {
        let unionpay = gateway();
        let body = signed_form(paid("777290058110048", "8880"), UNIONPAY_PRIVATE);
        assert_eq!(
            unionpay
                .verify(&incoming(body.clone()), Utc::now())
                .unwrap(),
            Notice {
                subject: NoticeSubject::Payment,
                number: "2026112310000012345678".into(),
                gateway_reference: Some("782611231000041234567".into()),
                state: TradeState::Succeeded,
                amount: 8880,
                currency: "CNY".into(),
            }
        );
        assert_eq!(
            unionpay.verify_return(&body).unwrap(),
            "2026112310000012345678"
        );
    }

    #[test]
    fn tampered_foreign_or_wrongly_signed_notifications_are_forged() {
        let unionpay = gateway();
        let body = signed_form(paid("777290058110048", "8880"), UNIONPAY_PRIVATE);
        let tampered = body.replace("txnAmt=8880", "txnAmt=1");
        assert_ne!(tampered, body);
        assert!(unionpay.verify(&incoming(tampered), Utc::now()).is_err());

        let wrong_key = signed_form(paid("777290058110048", "8880"), WECHAT_PRIVATE);
        assert!(unionpay.verify(&incoming(wrong_key), Utc::now()).is_err());

        let merchant_signed = signed_form(paid("777290058110048", "8880"), MERCHANT_PRIVATE);
        assert!(
            unionpay
                .verify(&incoming(merchant_signed), Utc::now())
                .is_err()
        );

        let other = signed_form(paid("777290058110049", "8880"), UNIONPAY_PRIVATE);
        assert_eq!(
            unionpay.verify(&incoming(other), Utc::now()),
            Err(Forged("merId is not this shop's".into()))
        );

        let bad_amount = signed_form(paid("777290058110048", "88.80"), UNIONPAY_PRIVATE);
        assert!(unionpay.verify(&incoming(bad_amount), Utc::now()).is_err());

        let doubled = format!("{body}&txnAmt=1");
        assert!(unionpay.verify(&incoming(doubled), Utc::now()).is_err());
    }

    #[test]
    fn refund_notifications_and_failures() {
        let unionpay = gateway();
        let mut refund = paid("777290058110048", "1000");
        refund.insert("txnType".into(), "04".into());
        refund.insert("txnSubType".into(), "00".into());
        refund.insert("orderId".into(), "2026112411000087654321".into());
        refund.insert("origQryId".into(), "782611231000041234567".into());
        refund.insert("queryId".into(), "782611241100041234599".into());
        let body = signed_form(refund.clone(), UNIONPAY_PRIVATE);
        let notice = unionpay.verify(&incoming(body), Utc::now()).unwrap();
        assert_eq!(notice.subject, NoticeSubject::Refund);
        assert_eq!(notice.number, "2026112411000087654321");
        assert_eq!(notice.state, TradeState::Succeeded);
        assert_eq!(notice.amount, 1000);

        refund.insert("respCode".into(), "01".into());
        let body = signed_form(refund, UNIONPAY_PRIVATE);
        let notice = unionpay.verify(&incoming(body), Utc::now()).unwrap();
        assert_eq!(notice.state, TradeState::Failed);
    }

    #[test]
    fn answers_are_read_raw_and_verified() {
        let unionpay = gateway();
        let mut answer = fields(&[
            ("merId", "777290058110048"),
            ("respCode", "00"),
            ("reqReserved", "{a=1&b=2}"),
            (
                "signPubKeyCert",
                "-----BEGIN CERTIFICATE-----\r\nMIIE+/=\r\n-----END",
            ),
        ]);
        let digest = digest_hex(&sign_content(&answer));
        let signature = PrivateKey::from_pem(UNIONPAY_PRIVATE)
            .unwrap()
            .sign_base64(digest.as_bytes());
        answer.insert("signature".into(), signature);
        let raw = answer
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let parsed = parse_answer(&raw).unwrap();
        assert_eq!(parsed, answer);
        assert!(unionpay.verify_fields(&parsed));
        let tampered = parse_answer(&raw.replace("respCode=00", "respCode=01")).unwrap();
        assert!(!unionpay.verify_fields(&tampered));
        assert_eq!(parse_answer("a=1&a=2"), None);
    }

    #[test]
    fn txn_time_comes_from_the_number() {
        assert_eq!(
            txn_time("2026112310000012345678").unwrap(),
            "20261123100000"
        );
        assert!(txn_time("2026").is_err());
        assert!(txn_time("2026-11-23-10000012345678").is_err());
        assert_eq!(fen("8880"), Some(8880));
        assert_eq!(fen("88.80"), None);
        assert_eq!(fen(""), None);
    }
}
