//! Server-side sessions of staff and customers in the shared key-value store: with Redis
//! configured, a session made on one instance is valid on every instance and ends on all
//! at logout.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::platform::cache::KeyValue;

/// Whose session: staff and customers sign in separately, with separate cookies, so a
/// staff member shopping in the same browser keeps both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Staff,
    Customer,
}

impl Kind {
    pub fn cookie(self) -> &'static str {
        match self {
            Kind::Staff => "bazaar_admin_session",
            Kind::Customer => "bazaar_session",
        }
    }

    /// Holds the session's CSRF token, readable by the page's scripts so they can echo it
    /// in `X-CSRF-Token`; one per kind, so the two sessions do not overwrite each other's.
    pub fn csrf_cookie(self) -> &'static str {
        match self {
            Kind::Staff => "bazaar_admin_csrf",
            Kind::Customer => "bazaar_csrf",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Kind::Staff => "session:staff:",
            Kind::Customer => "session:customer:",
        }
    }
}

pub const CSRF_HEADER: &str = "x-csrf-token";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub account_id: i64,
    pub csrf_token: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What is stored in place of a secret token (session id, refresh token, emailed link,
/// OAuth state): its SHA-256, so a dump of the store or database holds nothing usable.
pub fn fingerprint(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn key(kind: Kind, session_id: &str) -> String {
    format!("{}{}", kind.prefix(), fingerprint(session_id))
}

/// Creates a session and returns its id (the cookie value) and the session.
pub async fn create(
    kv: &dyn KeyValue,
    kind: Kind,
    account_id: i64,
    ttl: Duration,
) -> anyhow::Result<(String, Session)> {
    let id = random_token();
    let session = Session {
        account_id,
        csrf_token: random_token(),
        created_at: chrono::Utc::now(),
    };
    kv.set(&key(kind, &id), &serde_json::to_vec(&session)?, Some(ttl))
        .await?;
    Ok((id, session))
}

pub async fn load(
    kv: &dyn KeyValue,
    kind: Kind,
    session_id: &str,
) -> anyhow::Result<Option<Session>> {
    Ok(match kv.get(&key(kind, session_id)).await? {
        Some(bytes) => serde_json::from_slice(&bytes).ok(),
        None => None,
    })
}

pub async fn destroy(kv: &dyn KeyValue, kind: Kind, session_id: &str) -> anyhow::Result<()> {
    kv.delete(&key(kind, session_id)).await?;
    Ok(())
}
