//! Alipay's open platform (`alipay.trade.*`, RSA2 signatures).
//!
//! Requests are signed over their sorted, unencoded parameters. Alipay signs the exact text
//! of each answer's `*_response` member and, for notifications and return URLs, the sorted
//! decoded parameters without `sign` and `sign_type` (its "rsaCheckV1" rule).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value, json};

use super::crypto::{PrivateKey, PublicKey};
use super::{
    Ack, Channel, Checkout, Forged, Gateway, GatewayError, Incoming, Notice, NoticeSubject,
    PayRequest, RefundOutcome, RefundRequest, TradeState, TradeStatus, parse_yuan, yuan,
};
use crate::config::AlipayConfig;
use crate::system::model::PaymentProvider;

/// Alipay's answer code for a request that was carried out.
const SUCCESS_CODE: &str = "10000";

pub struct Alipay {
    app_id: String,
    gateway_url: String,
    key: PrivateKey,
    alipay_key: PublicKey,
    http: reqwest::Client,
}

impl Alipay {
    pub fn new(config: &AlipayConfig, http: reqwest::Client) -> anyhow::Result<Self> {
        Ok(Self {
            app_id: config.app_id.clone(),
            gateway_url: config.gateway_url.clone(),
            key: PrivateKey::from_file(&config.private_key_path)?,
            alipay_key: PublicKey::from_file(&config.alipay_public_key_path)?,
            http,
        })
    }

    /// The common parameters of every call, signed, with `biz_content` among them.
    fn signed_params(
        &self,
        method: &str,
        biz_content: &Value,
        notify_url: Option<&str>,
        return_url: Option<&str>,
        now: DateTime<Utc>,
    ) -> BTreeMap<String, String> {
        let mut params = BTreeMap::new();
        for (k, v) in [
            ("app_id", self.app_id.as_str()),
            ("method", method),
            ("format", "JSON"),
            ("charset", "utf-8"),
            ("sign_type", "RSA2"),
            ("version", "1.0"),
        ] {
            params.insert(k.to_owned(), v.to_owned());
        }
        params.insert("timestamp".into(), china_time(now));
        params.insert("biz_content".into(), biz_content.to_string());
        if let Some(url) = notify_url {
            params.insert("notify_url".into(), url.to_owned());
        }
        if let Some(url) = return_url {
            params.insert("return_url".into(), url.to_owned());
        }
        let sign = self.key.sign_base64(sign_content(&params).as_bytes());
        params.insert("sign".into(), sign);
        params
    }

    /// Calls `method` and returns its verified `*_response` object, whatever its `code`.
    async fn call(
        &self,
        method: &str,
        biz_content: Value,
        notify_url: Option<&str>,
    ) -> Result<Map<String, Value>, GatewayError> {
        let mut params = self.signed_params(method, &biz_content, notify_url, None, Utc::now());
        // As Alipay's SDKs do: the common parameters travel in the URL (so the gateway knows
        // the charset before it reads the body), the business content in the form.
        let biz = params.remove("biz_content").unwrap_or_default();
        let response = self
            .http
            .post(&self.gateway_url)
            .query(&params)
            .form(&[("biz_content", biz)])
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
        self.verify_response(method, &body)
    }

    /// Checks Alipay's signature over the raw text of the `*_response` member of `body`.
    fn verify_response(
        &self,
        method: &str,
        body: &str,
    ) -> Result<Map<String, Value>, GatewayError> {
        let key = format!("{}_response", method.replace('.', "_"));
        let parsed: Value = serde_json::from_str(body)
            .map_err(|e| GatewayError::BadResponse(format!("not JSON: {e}")))?;
        let Some(sign) = parsed.get("sign").and_then(Value::as_str) else {
            // Alipay answers some errors (a bad app_id, a bad request signature) unsigned.
            let hint = parsed
                .get(&key)
                .or_else(|| parsed.get("error_response"))
                .map(|r| refusal(r.as_object().unwrap_or(&Map::new())))
                .unwrap_or_default();
            return Err(GatewayError::BadResponse(format!("unsigned answer {hint}")));
        };
        let raw = raw_member(body, &key)
            .ok_or_else(|| GatewayError::BadResponse(format!("no {key} in the answer")))?;
        if !self.alipay_key.verify_base64(raw.as_bytes(), sign) {
            return Err(GatewayError::BadResponse(
                "the answer's signature does not verify".into(),
            ));
        }
        match parsed.get(&key) {
            Some(Value::Object(object)) => Ok(object.clone()),
            _ => Err(GatewayError::BadResponse(format!("{key} is not an object"))),
        }
    }

    /// Verifies signed parameters from Alipay (a notification body or a return query string)
    /// and returns them without `sign` and `sign_type`.
    fn verify_params(&self, form: &str) -> Result<BTreeMap<String, String>, Forged> {
        let mut params = parse_form(form)?;
        let sign = params
            .remove("sign")
            .ok_or_else(|| Forged("no sign".into()))?;
        params.remove("sign_type");
        // Unlike requests, empty values stay in: Alipay's own check (rsaCheckV1) keeps them.
        let content = params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        if !self.alipay_key.verify_base64(content.as_bytes(), &sign) {
            return Err(Forged("the signature does not verify".into()));
        }
        // A genuine notification for another app of the same Alipay account is not ours.
        if params.get("app_id") != Some(&self.app_id) {
            return Err(Forged("app_id is not this shop's".into()));
        }
        Ok(params)
    }
}

#[async_trait::async_trait]
impl Gateway for Alipay {
    fn provider(&self) -> PaymentProvider {
        PaymentProvider::Alipay
    }

    fn channels(&self) -> &'static [Channel] {
        &[Channel::Page, Channel::Wap, Channel::Native]
    }

    /// Page and WAP pay are a signed URL the browser opens (the trade only exists at Alipay
    /// once the customer opens it); native pay places the trade first to get its QR code.
    async fn create(&self, request: &PayRequest) -> Result<Checkout, GatewayError> {
        if request.currency != "CNY" {
            return Err(GatewayError::Unsupported(format!(
                "Alipay collects CNY, not {}",
                request.currency
            )));
        }
        if request.amount <= 0 {
            return Err(GatewayError::Unsupported(
                "Alipay cannot collect a zero amount".into(),
            ));
        }
        let mut biz = json!({
            "out_trade_no": request.number,
            "total_amount": yuan(request.amount),
            "subject": request.subject,
            "time_expire": china_time(request.expires_at),
        });
        let (method, product_code) = match request.channel {
            Channel::Page => ("alipay.trade.page.pay", "FAST_INSTANT_TRADE_PAY"),
            Channel::Wap => ("alipay.trade.wap.pay", "QUICK_WAP_WAY"),
            Channel::Native => {
                let answer = self
                    .call("alipay.trade.precreate", biz, Some(&request.notify_url))
                    .await?;
                succeeded(&answer)?;
                return match answer.get("qr_code").and_then(Value::as_str) {
                    Some(code) => Ok(Checkout::QrCode {
                        content: code.to_owned(),
                    }),
                    None => Err(GatewayError::BadResponse("no qr_code".into())),
                };
            }
            other => {
                return Err(GatewayError::Unsupported(format!(
                    "Alipay does not offer the {} channel",
                    other.as_str()
                )));
            }
        };
        biz["product_code"] = json!(product_code);
        let params = self.signed_params(
            method,
            &biz,
            Some(&request.notify_url),
            request.return_url.as_deref(),
            Utc::now(),
        );
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&params)
            .finish();
        let separator = if self.gateway_url.contains('?') {
            '&'
        } else {
            '?'
        };
        Ok(Checkout::Redirect {
            url: format!("{}{separator}{query}", self.gateway_url),
        })
    }

    /// Alipay's notifications carry no signing time, so `received_at` plays no part; a
    /// replayed one only repeats what was already applied.
    ///
    /// A refund also sends a `trade_status_sync` notification (still `TRADE_SUCCESS` after a
    /// partial refund, `TRADE_CLOSED` after a full one); those carry `out_biz_no` (our
    /// refund number) and are returned as a `Refund` notice whose amount is `refund_fee`,
    /// the total refunded on the trade so far.
    fn verify(&self, incoming: &Incoming, _received_at: DateTime<Utc>) -> Result<Notice, Forged> {
        let params = self.verify_params(&incoming.body)?;
        let field = |name: &str| {
            params
                .get(name)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| Forged(format!("no {name}")))
        };
        let amount = |name: &str| {
            field(name).and_then(|v| parse_yuan(v).ok_or_else(|| Forged(format!("bad {name}"))))
        };
        let trade_no = params.get("trade_no").cloned();
        if params.contains_key("refund_fee") || params.contains_key("gmt_refund") {
            return Ok(Notice {
                subject: NoticeSubject::Refund,
                number: field("out_biz_no")?.clone(),
                gateway_reference: trade_no,
                state: TradeState::Succeeded,
                amount: amount("refund_fee")?,
                currency: "CNY".into(),
            });
        }
        let state = match field("trade_status")?.as_str() {
            "TRADE_SUCCESS" | "TRADE_FINISHED" => TradeState::Succeeded,
            "TRADE_CLOSED" => TradeState::Closed,
            "WAIT_BUYER_PAY" => TradeState::Pending,
            other => return Err(Forged(format!("unknown trade_status {other}"))),
        };
        Ok(Notice {
            subject: NoticeSubject::Payment,
            number: field("out_trade_no")?.clone(),
            gateway_reference: trade_no,
            state,
            amount: amount("total_amount")?,
            currency: "CNY".into(),
        })
    }

    fn verify_return(&self, query: &str) -> Result<String, Forged> {
        let params = self.verify_params(query.trim_start_matches('?'))?;
        params
            .get("out_trade_no")
            .filter(|v| !v.is_empty())
            .cloned()
            .ok_or_else(|| Forged("no out_trade_no".into()))
    }

    /// Alipay stops retrying only when the body is exactly `success`.
    fn acknowledge(&self) -> Ack {
        Ack {
            status: 200,
            content_type: "text/plain",
            body: "success".into(),
        }
    }

    /// Any other body makes Alipay retry (up to eight times over about a day).
    fn refuse(&self, _reason: &str) -> Ack {
        Ack {
            status: 200,
            content_type: "text/plain",
            body: "fail".into(),
        }
    }

    async fn query(&self, payment_number: &str) -> Result<TradeStatus, GatewayError> {
        let answer = self
            .call(
                "alipay.trade.query",
                json!({ "out_trade_no": payment_number }),
                None,
            )
            .await?;
        if sub_code(&answer) == Some("ACQ.TRADE_NOT_EXIST") {
            // Page and WAP trades exist at Alipay only once the customer opened the cashier.
            return Ok(TradeStatus {
                state: TradeState::Pending,
                gateway_reference: None,
                amount: None,
                currency: None,
            });
        }
        succeeded(&answer)?;
        let state = match text(&answer, "trade_status") {
            Some("WAIT_BUYER_PAY") => TradeState::Pending,
            Some("TRADE_SUCCESS" | "TRADE_FINISHED") => TradeState::Succeeded,
            Some("TRADE_CLOSED") => TradeState::Closed,
            other => {
                return Err(GatewayError::BadResponse(format!(
                    "unknown trade_status {other:?}"
                )));
            }
        };
        Ok(TradeStatus {
            state,
            gateway_reference: text(&answer, "trade_no").map(str::to_owned),
            amount: text(&answer, "total_amount").and_then(parse_yuan),
            currency: Some("CNY".into()),
        })
    }

    /// Alipay refunds at once: `fund_change` "Y" means this call moved the money. "N" (a
    /// repeated `out_request_no`, or a refund still in progress) stays pending for a query.
    async fn refund(&self, request: &RefundRequest) -> Result<RefundOutcome, GatewayError> {
        if request.currency != "CNY" {
            return Err(GatewayError::Unsupported(format!(
                "Alipay refunds CNY, not {}",
                request.currency
            )));
        }
        let answer = self
            .call(
                "alipay.trade.refund",
                json!({
                    "out_trade_no": request.payment_number,
                    "refund_amount": yuan(request.amount),
                    "out_request_no": request.refund_number,
                    "refund_reason": request.reason,
                }),
                None,
            )
            .await?;
        succeeded(&answer)?;
        let state = if text(&answer, "fund_change") == Some("Y") {
            TradeState::Succeeded
        } else {
            TradeState::Pending
        };
        Ok(RefundOutcome {
            state,
            gateway_reference: text(&answer, "trade_no").map(str::to_owned),
        })
    }

    /// Refused with `ACQ.TRADE_NOT_EXIST` for a page or WAP trade the customer never opened:
    /// its signed URL then stays payable until `time_expire`.
    async fn close(&self, payment_number: &str) -> Result<(), GatewayError> {
        let answer = self
            .call(
                "alipay.trade.close",
                json!({ "out_trade_no": payment_number }),
                None,
            )
            .await?;
        succeeded(&answer)
    }
}

/// The string a request is signed over: its non-empty parameters but `sign`, sorted by
/// name, as unencoded `k=v` joined with `&`.
pub(crate) fn sign_content(params: &BTreeMap<String, String>) -> String {
    params
        .iter()
        .filter(|(k, v)| k.as_str() != "sign" && !v.is_empty())
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Alipay's times are China time (UTC+8) as `yyyy-MM-dd HH:mm:ss`.
fn china_time(at: DateTime<Utc>) -> String {
    (at + Duration::hours(8))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// A form or query string decoded; a repeated name makes it ambiguous, so refused.
fn parse_form(form: &str) -> Result<BTreeMap<String, String>, Forged> {
    let mut params = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(form.as_bytes()) {
        if params
            .insert(k.clone().into_owned(), v.into_owned())
            .is_some()
        {
            return Err(Forged(format!("{k} appears twice")));
        }
    }
    Ok(params)
}

fn text<'a>(answer: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    answer.get(name).and_then(Value::as_str)
}

fn sub_code(answer: &Map<String, Value>) -> Option<&str> {
    text(answer, "sub_code")
}

/// `Refused("sub_code: sub_msg")` unless the answer's code is 10000.
fn succeeded(answer: &Map<String, Value>) -> Result<(), GatewayError> {
    if text(answer, "code") == Some(SUCCESS_CODE) {
        Ok(())
    } else {
        Err(GatewayError::Refused(refusal(answer)))
    }
}

fn refusal(answer: &Map<String, Value>) -> String {
    let code = sub_code(answer).or_else(|| text(answer, "code"));
    let message = text(answer, "sub_msg").or_else(|| text(answer, "msg"));
    format!("{}: {}", code.unwrap_or("?"), message.unwrap_or(""))
}

/// The exact text of member `name`'s value in the JSON object `body`: Alipay signs those
/// bytes, so they are cut out rather than re-serialized (which could change escaping and
/// spacing).
fn raw_member<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    let b = body.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    loop {
        i = skip_ws(b, i);
        let key_end = skip_string(b, i)?;
        let key: String = serde_json::from_str(&body[i..key_end]).ok()?;
        i = skip_ws(b, key_end);
        if b.get(i) != Some(&b':') {
            return None;
        }
        let start = skip_ws(b, i + 1);
        let end = skip_value(b, start)?;
        if key == name {
            return Some(&body[start..end]);
        }
        i = skip_ws(b, end);
        if b.get(i) != Some(&b',') {
            return None;
        }
        i += 1;
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

/// The index after the JSON string starting at `i`.
fn skip_string(b: &[u8], mut i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    i += 1;
    loop {
        match b.get(i)? {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
}

/// The index after the JSON value starting at `i`.
fn skip_value(b: &[u8], mut i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => skip_string(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            loop {
                match b.get(i)? {
                    b'"' => {
                        i = skip_string(b, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            while b
                .get(i)
                .is_some_and(|c| !matches!(c, b',' | b'}' | b']') && !c.is_ascii_whitespace())
            {
                i += 1;
            }
            Some(i)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MERCHANT_PRIVATE: &str =
        include_str!("../../../tests/fixtures/payments/merchant_private.pem");
    const ALIPAY_PRIVATE: &str =
        include_str!("../../../tests/fixtures/payments/alipay_private.pem");
    const ALIPAY_PUBLIC: &str = include_str!("../../../tests/fixtures/payments/alipay_public.pem");
    const WECHAT_PRIVATE: &str =
        include_str!("../../../tests/fixtures/payments/wechat_private.pem");

    fn gateway(app_id: &str, alipay_public: &str) -> Alipay {
        Alipay {
            app_id: app_id.into(),
            gateway_url: "https://openapi.alipay.com/gateway.do".into(),
            key: PrivateKey::from_pem(MERCHANT_PRIVATE).unwrap(),
            alipay_key: PublicKey::from_pem(alipay_public).unwrap(),
            http: reqwest::Client::new(),
        }
    }

    fn incoming(body: String) -> Incoming {
        Incoming {
            headers: vec![(
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            )],
            body,
        }
    }

    /// A notification as Alipay signs it: all fields but `sign` and `sign_type`.
    fn notification(fields: &[(&str, &str)], signer: &str) -> String {
        let map: BTreeMap<String, String> = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let content = map
            .iter()
            .filter(|(k, _)| k.as_str() != "sign_type")
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let sign = PrivateKey::from_pem(signer)
            .unwrap()
            .sign_base64(content.as_bytes());
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .append_pair("sign", &sign)
            .finish()
    }

    fn paid(app_id: &str, amount: &str) -> Vec<(&'static str, String)> {
        vec![
            ("notify_time", "2026-11-23 10:00:05".into()),
            ("notify_type", "trade_status_sync".into()),
            ("notify_id", "ac05099524730693a8b330c5ecf72da9786".into()),
            ("app_id", app_id.into()),
            ("charset", "utf-8".into()),
            ("version", "1.0".into()),
            ("sign_type", "RSA2".into()),
            ("trade_no", "2026112322001400000000000001".into()),
            ("out_trade_no", "2026112310000012345678".into()),
            ("total_amount", amount.into()),
            ("receipt_amount", amount.into()),
            ("trade_status", "TRADE_SUCCESS".into()),
            ("subject", "Bazaar order 20261123-0001".into()),
            ("gmt_payment", "2026-11-23 10:00:04".into()),
        ]
    }

    fn borrowed<'a>(fields: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
        fields.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }

    #[test]
    fn signs_the_sorted_unencoded_non_empty_parameters() {
        let params: BTreeMap<String, String> = [
            ("timestamp", "2026-11-23 18:00:00"),
            ("method", "alipay.trade.page.pay"),
            ("app_id", "2021000000000001"),
            ("sign_type", "RSA2"),
            ("sign", "ignored"),
            ("charset", "utf-8"),
            ("version", "1.0"),
            ("format", "JSON"),
            ("return_url", ""),
            (
                "notify_url",
                "https://shop.example/api/v1/payments/notify/alipay?a=1&b=2",
            ),
            (
                "biz_content",
                r#"{"out_trade_no":"1","total_amount":"0.01"}"#,
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(
            sign_content(&params),
            "app_id=2021000000000001&biz_content={\"out_trade_no\":\"1\",\"total_amount\":\"0.01\"}\
             &charset=utf-8&format=JSON&method=alipay.trade.page.pay\
             &notify_url=https://shop.example/api/v1/payments/notify/alipay?a=1&b=2\
             &sign_type=RSA2&timestamp=2026-11-23 18:00:00&version=1.0"
        );
    }

    #[test]
    fn signed_params_verify_with_the_merchant_public_key() {
        let alipay = gateway("2021000000000001", ALIPAY_PUBLIC);
        let now = DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let params = alipay.signed_params(
            "alipay.trade.query",
            &json!({ "out_trade_no": "2026112318000012345678" }),
            None,
            None,
            now,
        );
        assert_eq!(params["timestamp"], "2026-11-23 18:00:00", "China time");
        let merchant_public = PublicKey::from_pem(include_str!(
            "../../../tests/fixtures/payments/merchant_public.pem"
        ))
        .unwrap();
        assert!(merchant_public.verify_base64(sign_content(&params).as_bytes(), &params["sign"]));
    }

    #[test]
    fn cuts_the_response_member_out_verbatim() {
        let body = "{ \"alipay_trade_query_response\" : {\"code\":\"10000\",\"url\":\"http:\\/\\/x\",\
                    \"list\":[{\"a\":\"}\"}],\"n\":1.5} , \"sign\":\"abc\"}";
        assert_eq!(
            raw_member(body, "alipay_trade_query_response"),
            Some(
                "{\"code\":\"10000\",\"url\":\"http:\\/\\/x\",\"list\":[{\"a\":\"}\"}],\"n\":1.5}"
            )
        );
        assert_eq!(raw_member(body, "sign"), Some("\"abc\""));
        assert_eq!(raw_member(body, "missing"), None);
        assert_eq!(raw_member("[1]", "sign"), None);
        assert_eq!(raw_member("{\"a\":", "a"), None);
    }

    #[test]
    fn verifies_responses_over_their_raw_text_only() {
        let alipay = gateway("2021000000000001", ALIPAY_PUBLIC);
        let signer = PrivateKey::from_pem(ALIPAY_PRIVATE).unwrap();
        let inner = r#"{"code":"10000","msg":"Success","trade_no":"2026","out_trade_no":"1","trade_status":"TRADE_SUCCESS","total_amount":"88.88"}"#;
        let sign = signer.sign_base64(inner.as_bytes());
        let body = format!(r#"{{"alipay_trade_query_response":{inner},"sign":"{sign}"}}"#);
        let answer = alipay.verify_response("alipay.trade.query", &body).unwrap();
        assert_eq!(text(&answer, "total_amount"), Some("88.88"));

        let tampered = body.replace("88.88", "88.89");
        assert!(matches!(
            alipay.verify_response("alipay.trade.query", &tampered),
            Err(GatewayError::BadResponse(_))
        ));
        let unsigned = format!(r#"{{"alipay_trade_query_response":{inner}}}"#);
        assert!(matches!(
            alipay.verify_response("alipay.trade.query", &unsigned),
            Err(GatewayError::BadResponse(_))
        ));
        // Signed for another method's member.
        assert!(matches!(
            alipay.verify_response("alipay.trade.refund", &body),
            Err(GatewayError::BadResponse(_))
        ));
    }

    #[test]
    fn a_genuine_notification_verifies_and_maps_to_a_payment() {
        let alipay = gateway("2021000000000001", ALIPAY_PUBLIC);
        let fields = paid("2021000000000001", "88.80");
        let body = notification(&borrowed(&fields), ALIPAY_PRIVATE);
        let notice = alipay.verify(&incoming(body), Utc::now()).unwrap();
        assert_eq!(
            notice,
            Notice {
                subject: NoticeSubject::Payment,
                number: "2026112310000012345678".into(),
                gateway_reference: Some("2026112322001400000000000001".into()),
                state: TradeState::Succeeded,
                amount: 8880,
                currency: "CNY".into(),
            }
        );
    }

    #[test]
    fn a_tampered_or_foreign_notification_is_forged() {
        let alipay = gateway("2021000000000001", ALIPAY_PUBLIC);
        let fields = paid("2021000000000001", "88.80");
        let body = notification(&borrowed(&fields), ALIPAY_PRIVATE);
        let tampered = body.replace("total_amount=88.80", "total_amount=0.01");
        assert_ne!(tampered, body);
        assert!(alipay.verify(&incoming(tampered), Utc::now()).is_err());

        let wrong_key = notification(&borrowed(&fields), WECHAT_PRIVATE);
        assert!(alipay.verify(&incoming(wrong_key), Utc::now()).is_err());

        let other_app = paid("2021000000000002", "88.80");
        let body = notification(&borrowed(&other_app), ALIPAY_PRIVATE);
        assert_eq!(
            alipay.verify(&incoming(body), Utc::now()),
            Err(Forged("app_id is not this shop's".into()))
        );

        let mut bad_amount = paid("2021000000000001", "88.8.0");
        bad_amount.truncate(10);
        let body = notification(&borrowed(&bad_amount), ALIPAY_PRIVATE);
        assert!(alipay.verify(&incoming(body), Utc::now()).is_err());

        let unsigned = "app_id=2021000000000001&out_trade_no=1&trade_status=TRADE_SUCCESS";
        assert!(
            alipay
                .verify(&incoming(unsigned.into()), Utc::now())
                .is_err()
        );
    }

    #[test]
    fn closed_waiting_and_refund_notifications() {
        let alipay = gateway("2021000000000001", ALIPAY_PUBLIC);
        let with = |status: &str| {
            let mut fields = paid("2021000000000001", "88.80");
            fields.retain(|(k, _)| *k != "trade_status");
            fields.push(("trade_status", status.into()));
            let body = notification(&borrowed(&fields), ALIPAY_PRIVATE);
            alipay.verify(&incoming(body), Utc::now())
        };
        assert_eq!(with("TRADE_CLOSED").unwrap().state, TradeState::Closed);
        assert_eq!(with("WAIT_BUYER_PAY").unwrap().state, TradeState::Pending);
        assert_eq!(with("TRADE_FINISHED").unwrap().state, TradeState::Succeeded);
        assert!(with("SOMETHING_ELSE").is_err());

        let mut fields = paid("2021000000000001", "88.80");
        fields.push(("out_biz_no", "2026112411000087654321".into()));
        fields.push(("refund_fee", "10.00".into()));
        fields.push(("gmt_refund", "2026-11-24 11:00:00.123".into()));
        let body = notification(&borrowed(&fields), ALIPAY_PRIVATE);
        let notice = alipay.verify(&incoming(body), Utc::now()).unwrap();
        assert_eq!(notice.subject, NoticeSubject::Refund);
        assert_eq!(notice.number, "2026112411000087654321");
        assert_eq!(notice.amount, 1000);
    }

    #[test]
    fn the_return_query_string_verifies() {
        let alipay = gateway("2021000000000001", ALIPAY_PUBLIC);
        let fields = [
            ("charset", "utf-8"),
            ("out_trade_no", "2026112310000012345678"),
            ("method", "alipay.trade.page.pay.return"),
            ("total_amount", "88.80"),
            ("trade_no", "2026112322001400000000000001"),
            ("auth_app_id", "2021000000000001"),
            ("version", "1.0"),
            ("app_id", "2021000000000001"),
            ("sign_type", "RSA2"),
            ("seller_id", "2088000000000000"),
            ("timestamp", "2026-11-23 10:00:06"),
        ];
        let query = notification(&fields, ALIPAY_PRIVATE);
        assert_eq!(
            alipay.verify_return(&format!("?{query}")).unwrap(),
            "2026112310000012345678"
        );
        let tampered = query.replace("88.80", "1.00");
        assert!(alipay.verify_return(&tampered).is_err());
    }

    /// A real `trade_status_sync` notification and Alipay's public key, published in the
    /// test suite of Alipay's Node.js SDK (alipay/alipay-sdk-nodejs-all, test/alipay.test.ts,
    /// "verify sign should delete sign_type"). `fund_bill_list` arrives as JSON text.
    #[test]
    fn verifies_alipays_published_notification() {
        let alipay_public = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAqObrdC7hrgAVM98tK0nv3hSQRGGKT4lBsQjHiGjeYZjOPIPHR5knm2jnnz/YGIXIofVHkA/tAlBAd5DrY7YpvI4tP5EONLtZKC2ghBMx7McI2wRD0xiqzxOQr1FuhZGJ8/AUokBzJrzY+aGX2xcOrxFYRlFilvVLTXg4LWjR1tdPkO6+i7wQZAIVMClPkwVRZEbaERRHlKqTzv2gGv5rDU8gRoe1LeaN+6BlbTqHWkQcNCUNrA8C6l17XAXGKDsm/9TFWwO8EPHHHCaQdjtV5/FdcWIt+L8SR1ss7EXTjYDFtxcKVv9rEoY1lX8T4mX+GbXfZHraG5NCF1+XioL5JwIDAQAB";
        let alipay = gateway("2019073166072302", alipay_public);
        let fields = [
            ("gmt_create", "2019-08-15 15:56:22"),
            ("charset", "utf-8"),
            ("seller_email", "z97-yuquerevenue@service.aliyun.com"),
            ("subject", "语雀空间 500人规模"),
            (
                "sign",
                "QfTb8tqE1BMhS5qAnXtvsF3/jBkEvu9q9en0pdbBUDDjvKycZhQb7h8GDs4FKfi049PynaNuatxSgLb/nLWZpXyyh0LEWdK2S6Ri7nPwrVgOs08zugLO20vOQz44y3ti2Ncm8/wZts1Fr2gZ7pShnVX3d1B50hbsXnObT1r/U8ONNQjWXd0HIul4TG+Q3fm3svmSvFEy0WnzuhcyHPX5Gm4ELNctL6Qd5YniGJFNcc7kopHYtI/XD9YCKCH6Ct02rzUs9i11C9CsadtZn+WhxF26Dqt9sGEFajkJ8cxUTLi8+VCpLHsgPE8P0y095uQcDdK0YjCh4x7wVSov+lrmOQ==",
            ),
            ("buyer_id", "2088102534368455"),
            ("invoice_amount", "0.10"),
            ("notify_id", "2019081500222155624068450559358070"),
            (
                "fund_bill_list",
                r#"[{"amount":"0.10","fundChannel":"ALIPAYACCOUNT"}]"#,
            ),
            ("notify_type", "trade_status_sync"),
            ("trade_status", "TRADE_SUCCESS"),
            ("receipt_amount", "0.10"),
            ("buyer_pay_amount", "0.10"),
            ("sign_type", "RSA2"),
            ("app_id", "2019073166072302"),
            ("seller_id", "2088531891668739"),
            ("gmt_payment", "2019-08-15 15:56:24"),
            ("notify_time", "2019-08-15 15:56:25"),
            ("version", "1.0"),
            ("out_trade_no", "20190815155618536-564-57"),
            ("total_amount", "0.10"),
            ("trade_no", "2019081522001468450512505578"),
            ("auth_app_id", "2019073166072302"),
            ("buyer_logon_id", "xud***@126.com"),
            ("point_amount", "0.00"),
        ];
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let notice = alipay.verify(&incoming(body.clone()), Utc::now()).unwrap();
        assert_eq!(notice.number, "20190815155618536-564-57");
        assert_eq!(notice.amount, 10);
        assert_eq!(notice.state, TradeState::Succeeded);

        let tampered = body.replace("total_amount=0.10", "total_amount=0.11");
        assert!(alipay.verify(&incoming(tampered), Utc::now()).is_err());
    }

    /// A real answer and Alipay's public key from the same SDK's tests ("checkResponseSign
    /// should work"; the key is test/fixtures/alipay-public-key.pem at commit bf1c026).
    #[test]
    fn verifies_alipays_published_answer() {
        let alipay_public = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAk7LzhmMa2c4qQd4fqAqenfbuFoA7stPKvoS1LrZEsVnOOGUUjwoa1oU9xsSPjcOWhIerU/VAN4J95GIAXx59ipcleIyfLn2FhHXPgLJpvo+b2jJFyn/1/DbeJDh+0yDVAOf50Z7HhI0mdUhFMkXlT7BU0ZMtJf/TmISFEfhDU/w6qFd6D42L97byAkq0K6LroglSVF24GqJEa7hSeUIkZWj7RasykXrc2uVJ1+ejkXE0LyPxa2AHykMGbJLf5SiZvaNzUZgnKIR36mLOHpQ/2JCXxhXZYUWHzy0kMH54JcUEeksFWBYLGvLjV1phbcUIc3Q76tIuqApY6E222OoZZQIDAQAB";
        let alipay = gateway("2021000122671080", alipay_public);
        let body = r#"{"alipay_open_file_upload_response":{"code":"10000","msg":"Success","file_id":"CAxAToWB1JsAAAAAAAAAAAAADgSLAQBr"},"sign":"F+LDzpTNiavn7xVZPGuPCSSVRSmWzJGgtuji6tVELGEaqMaNj0jRKXUEr5nloZJBBmwEnddOyCjjepMmrTKTvoOqQ0Efxpr/R1iEeHTHVbb/Q8TTh6Up5gHJDkILdaWS2q1cWeQ6VT+HQY9P3WRXS7uhILHuDODIhpAyCu5KhWGt0rMCIG+Im6NODJP2oohtSCtmTFXg58HH587Z2y2bdbjzOxLvzD9IrU1imghXQ2S/Q+wMIvRk9on6cWnBLkrNvJKapA2ReNGWOwyuASvB9zDVzhMPbR+3mfRGkVDxsq5HYLjBKGskJMXHw0HuugZij6ScRuaLPODhmHwr/pJ9yw=="}"#;
        let answer = alipay
            .verify_response("alipay.open.file.upload", body)
            .unwrap();
        assert_eq!(
            text(&answer, "file_id"),
            Some("CAxAToWB1JsAAAAAAAAAAAAADgSLAQBr")
        );
        let tampered = body.replace("CAxATo", "CAxATp");
        assert!(
            alipay
                .verify_response("alipay.open.file.upload", &tampered)
                .is_err()
        );
    }
}
