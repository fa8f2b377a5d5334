//! Test doubles of the payment gateways. Each plays its gateway's side of the real wire
//! protocol with its own key pair: it checks Bazaar's signed requests with the gateway's
//! algorithm, written here independently of Bazaar (the `rsa` crate, not aws-lc-rs), and
//! signs the answers and notifications it sends.

pub mod alipay;
pub mod unionpay;
pub mod wechat;

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bazaar::config::Config;
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::sha2::Sha256;
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::Value;

/// Test keys, generated once with openssl (see `tests/fixtures/payments/README.md`).
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/payments")
        .join(name)
}

/// A gateway's (or the merchant's) RSA key from the fixtures, for signing.
pub fn signing_key(name: &str) -> SigningKey<Sha256> {
    let pem = std::fs::read_to_string(fixture(name)).unwrap();
    SigningKey::new(RsaPrivateKey::from_pkcs8_pem(&pem).unwrap())
}

/// A public key from the fixtures, for checking signatures.
pub fn verifying_key(name: &str) -> VerifyingKey<Sha256> {
    let pem = std::fs::read_to_string(fixture(name)).unwrap();
    VerifyingKey::new(RsaPublicKey::from_public_key_pem(&pem).unwrap())
}

/// SHA256withRSA, base64: how every gateway signs.
pub fn sign(key: &SigningKey<Sha256>, message: &str) -> String {
    STANDARD.encode(key.sign(message.as_bytes()).to_bytes())
}

pub fn verify(key: &VerifyingKey<Sha256>, message: &str, signature_b64: &str) -> bool {
    STANDARD
        .decode(signature_b64)
        .ok()
        .and_then(|bytes| Signature::try_from(bytes.as_slice()).ok())
        .is_some_and(|sig| key.verify(message.as_bytes(), &sig).is_ok())
}

/// What a gateway double does to a notification before sending it, for negative tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    /// Sent as the gateway sends it.
    None,
    /// The amount is changed after signing (the signature no longer matches).
    AmountAfterSigning(i64),
    /// Signed properly, but for a different amount than the payment asked for.
    SignedAmount(i64),
    /// Signed with a key that is not the gateway's.
    WrongKey,
    /// Signed long ago (a replayed capture); only meaningful where the scheme carries a
    /// timestamp (WeChat Pay).
    Stale,
}

/// A notification as the gateway would POST it.
#[derive(Debug, Clone)]
pub struct Notification {
    pub headers: Vec<(String, String)>,
    pub content_type: &'static str,
    pub body: String,
}

/// A request Bazaar sent to the gateway double.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    /// The gateway's name for it: `alipay.trade.query`, `POST /v3/pay/transactions/native`,
    /// `backTransReq` and so on.
    pub operation: String,
    /// Whether its signature verified with the merchant's public key.
    pub signature_valid: bool,
    /// The parameters or JSON body as the gateway read them.
    pub params: Value,
}

/// One gateway's double; the payment tests run against each of them in turn.
#[async_trait::async_trait]
pub trait SandboxGateway: Send + Sync {
    /// Bazaar's provider name: `alipay`, `wechat_pay` or `unionpay`.
    fn provider(&self) -> &'static str;

    /// Points Bazaar's configuration at this double (keys from `fixture`).
    fn configure(&self, config: &mut Config);

    /// Plays the customer paying: checks the checkout Bazaar handed to the client (a signed
    /// URL or form is verified here; a QR code must name a trade Bazaar placed with this
    /// double), records the trade as paid at the gateway and returns our payment number.
    /// Panics when the checkout is not properly signed.
    async fn pay(&self, checkout: &Value) -> String;

    /// The notification the gateway sends for a paid trade (`pay` first), or a tampered one.
    fn paid_notification(&self, payment_number: &str, tamper: Tamper) -> Notification;

    /// The notification of a refund's outcome, for gateways that send one (WeChat Pay,
    /// UnionPay); `None` where the refund call answers synchronously (Alipay).
    fn refund_notification(&self, refund_number: &str) -> Option<Notification>;

    /// Every request Bazaar made to this double so far.
    fn requests(&self) -> Vec<SeenRequest>;

    /// Makes the double report refunds as refused from now on (a `Refused` error to Bazaar).
    fn refuse_refunds(&self, refuse: bool);
}
