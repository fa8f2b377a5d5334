//! Stateless access tokens (RS256 JWT) and the opaque refresh tokens that renew them.
//!
//! A refresh token is single use: each refresh returns a new one in the same family. A
//! token presented twice means it leaked, so the whole family is revoked.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use jsonwebtoken::{Algorithm, Header, Validation};
use sea_orm::ActiveValue::Set;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::entity::refresh_token;
use super::keys::KeyRing;
use super::session::fingerprint;
use crate::config::TokensConfig;
use crate::platform::cache::KeyValue;
use crate::platform::{ApiError, ApiResult};

/// Seconds of clock difference tolerated between the issuer and a verifier.
const LEEWAY_SECS: u64 = 5;

/// Whom a token speaks for: `customer:<id>` or `staff:<id>` in the `sub` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    Customer(i64),
    Staff(i64),
}

impl Subject {
    pub fn parse(sub: &str) -> Option<Self> {
        let (kind, id) = sub.split_once(':')?;
        let id = id.parse().ok()?;
        match kind {
            "customer" => Some(Self::Customer(id)),
            "staff" => Some(Self::Staff(id)),
            _ => None,
        }
    }
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subject::Customer(id) => write!(f, "customer:{id}"),
            Subject::Staff(id) => write!(f, "staff:{id}"),
        }
    }
}

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    /// Space-separated, as in OAuth 2: `customer`, or `staff` followed by the staff
    /// member's permissions (and `superuser` for superusers).
    pub scope: String,
    /// Role names: `customer`, or the staff member's roles.
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default)]
    pub name: String,
}

impl Claims {
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split_ascii_whitespace()
    }
}

/// What to put in a new access token beyond the standard claims.
pub struct Grant {
    pub subject: Subject,
    pub scope: Vec<String>,
    pub roles: Vec<String>,
    pub email: Option<String>,
    pub name: String,
}

/// The OAuth 2 token response (RFC 6749 §5.1).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub refresh_token: String,
    pub scope: String,
}

pub fn sign_access_token(
    keys: &KeyRing,
    config: &TokensConfig,
    grant: &Grant,
) -> ApiResult<String> {
    let key = keys.signing_key();
    let now = Utc::now().timestamp();
    let claims = Claims {
        iss: config.issuer.clone(),
        sub: grant.subject.to_string(),
        aud: config.audience.clone(),
        exp: now + config.access_ttl_secs as i64,
        iat: now,
        jti: ulid::Ulid::generate().to_string(),
        scope: grant.scope.join(" "),
        roles: grant.roles.clone(),
        email: grant.email.clone(),
        name: grant.name.clone(),
    };
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, &claims, &key.encoding).map_err(ApiError::internal)
}

/// Verifies signature, issuer, audience and expiry, and that the token was not revoked.
pub async fn verify_access_token(
    keys: &KeyRing,
    config: &TokensConfig,
    kv: &dyn KeyValue,
    token: &str,
) -> ApiResult<Claims> {
    let claims = decode(keys, config, token).ok_or_else(ApiError::invalid_token)?;
    if kv.get(&revoked_key(&claims.jti)).await?.is_some() {
        return Err(ApiError::invalid_token());
    }
    Ok(claims)
}

fn decode(keys: &KeyRing, config: &TokensConfig, token: &str) -> Option<Claims> {
    let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let now = Utc::now().timestamp();
    if let Some(claims) = keys
        .verified
        .get(&digest, now, |kid| keys.verification_key(kid).is_some())
    {
        return Some(claims);
    }
    let header = jsonwebtoken::decode_header(token).ok()?;
    if header.alg != Algorithm::RS256 {
        return None;
    }
    let kid = header.kid?;
    let key = keys.verification_key(&kid)?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.leeway = LEEWAY_SECS;
    validation.set_issuer(&[&config.issuer]);
    validation.set_audience(&[&config.audience]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    let claims = jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation)
        .ok()?
        .claims;
    keys.verified.put(digest, kid, claims.clone(), now);
    Some(claims)
}

/// Access tokens whose signature and claims already verified, by the SHA-256 of their
/// text. A client sends one token with every request for its lifetime, and the RSA check
/// is the costliest step of a bearer request (a fifth of the server's CPU in a flash-sale
/// rush), so it runs once per token per instance. Every hit checks the expiry and the
/// signing key's liveness again; the caller checks revocation every time.
#[derive(Default)]
pub struct VerifiedTokens(Mutex<HashMap<[u8; 32], Arc<Verified>>>);

struct Verified {
    kid: String,
    claims: Claims,
}

/// Bounds the memory to some tens of megabytes (a token and its claims take under 1 KiB).
const MAX_VERIFIED: usize = 50_000;

impl VerifiedTokens {
    /// The claims of a token verified before, if it is still unexpired at `now` (seconds)
    /// and its key still `live`; otherwise forgets it.
    fn get(&self, digest: &[u8; 32], now: i64, live: impl Fn(&str) -> bool) -> Option<Claims> {
        let hit = self.map().get(digest).cloned()?;
        if hit.claims.exp + LEEWAY_SECS as i64 >= now && live(&hit.kid) {
            return Some(hit.claims.clone());
        }
        self.map().remove(digest);
        None
    }

    /// Remembers a verified token; when full, drops the expired ones, or all of them.
    fn put(&self, digest: [u8; 32], kid: String, claims: Claims, now: i64) {
        let mut map = self.map();
        if map.len() >= MAX_VERIFIED {
            map.retain(|_, v| v.claims.exp + LEEWAY_SECS as i64 >= now);
            if map.len() >= MAX_VERIFIED {
                map.clear();
            }
        }
        map.insert(digest, Arc::new(Verified { kid, claims }));
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Arc<Verified>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn revoked_key(jti: &str) -> String {
    format!("revoked-token:{jti}")
}

/// Refuses the access token `jti` (expiring at `exp`) for the rest of its life, on every
/// instance.
pub async fn revoke_access_token(kv: &dyn KeyValue, jti: &str, exp: i64) -> ApiResult<()> {
    let left = (exp - Utc::now().timestamp()).max(0) as u64 + LEEWAY_SECS;
    kv.set(&revoked_key(jti), b"1", Some(Duration::from_secs(left)))
        .await?;
    Ok(())
}

/// Stores a new refresh token for `subject` in `family` (a new family when `None`) and
/// returns its value; only its hash is kept.
pub async fn issue_refresh_token(
    db: &impl ConnectionTrait,
    config: &TokensConfig,
    subject: Subject,
    family: Option<String>,
) -> ApiResult<String> {
    let token = super::session::random_token();
    let now = Utc::now();
    refresh_token::Entity::insert(refresh_token::ActiveModel {
        family_id: Set(family.unwrap_or_else(|| ulid::Ulid::generate().to_string())),
        token_hash: Set(fingerprint(&token)),
        subject: Set(subject.to_string()),
        expires_at: Set(now + chrono::Duration::seconds(config.refresh_ttl_secs as i64)),
        created_at: Set(now),
        ..Default::default()
    })
    .exec(db)
    .await?;
    Ok(token)
}

/// The outcome of presenting a refresh token.
pub enum Redeemed {
    /// Valid: it is now spent; continue the family with a new token.
    Valid { subject: Subject, family_id: String },
    /// Already spent: the family has just been revoked.
    Reused { subject: String, family_id: String },
}

/// Spends a refresh token. Unknown, expired and revoked tokens are `invalid_grant`.
pub async fn redeem_refresh_token(db: &impl ConnectionTrait, token: &str) -> ApiResult<Redeemed> {
    let row = refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(fingerprint(token)))
        .one(db)
        .await?
        .ok_or_else(ApiError::invalid_grant)?;
    let now = Utc::now();
    if row.revoked_at.is_some() || row.expires_at <= now {
        return Err(ApiError::invalid_grant());
    }
    // Conditional, so of two concurrent presentations exactly one spends it.
    let spent = refresh_token::Entity::update_many()
        .col_expr(
            refresh_token::Column::UsedAt,
            sea_orm::sea_query::Expr::value(now),
        )
        .filter(refresh_token::Column::Id.eq(row.id))
        .filter(refresh_token::Column::UsedAt.is_null())
        .exec(db)
        .await?
        .rows_affected
        == 1;
    if !spent {
        revoke_family(db, &row.family_id).await?;
        return Ok(Redeemed::Reused {
            subject: row.subject,
            family_id: row.family_id,
        });
    }
    let subject = Subject::parse(&row.subject).ok_or_else(ApiError::invalid_grant)?;
    Ok(Redeemed::Valid {
        subject,
        family_id: row.family_id,
    })
}

async fn revoke_family(db: &impl ConnectionTrait, family_id: &str) -> ApiResult<()> {
    refresh_token::Entity::update_many()
        .col_expr(
            refresh_token::Column::RevokedAt,
            sea_orm::sea_query::Expr::value(Utc::now()),
        )
        .filter(refresh_token::Column::FamilyId.eq(family_id))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Revokes every refresh token of `subject` (password change, account deleted).
pub async fn revoke_subject(db: &impl ConnectionTrait, subject: Subject) -> ApiResult<()> {
    refresh_token::Entity::update_many()
        .col_expr(
            refresh_token::Column::RevokedAt,
            sea_orm::sea_query::Expr::value(Utc::now()),
        )
        .filter(refresh_token::Column::Subject.eq(subject.to_string()))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// What `POST /auth/token/revoke` revoked, for the security log.
pub enum Revoked {
    AccessToken { subject: String },
    Family { subject: String, family_id: String },
    Nothing,
}

/// RFC 7009 revocation: an access token is refused until it expires; a refresh token
/// ends its whole family. Unknown tokens are not an error.
pub async fn revoke(
    db: &impl ConnectionTrait,
    keys: &KeyRing,
    config: &TokensConfig,
    kv: &dyn KeyValue,
    token: &str,
) -> ApiResult<Revoked> {
    if let Some(claims) = decode(keys, config, token) {
        revoke_access_token(kv, &claims.jti, claims.exp).await?;
        return Ok(Revoked::AccessToken {
            subject: claims.sub,
        });
    }
    let row = refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(fingerprint(token)))
        .one(db)
        .await?;
    Ok(match row {
        Some(row) if row.revoked_at.is_none() => {
            revoke_family(db, &row.family_id).await?;
            Revoked::Family {
                subject: row.subject,
                family_id: row.family_id,
            }
        }
        _ => Revoked::Nothing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> (tempfile::TempDir, KeyRing) {
        let dir = tempfile::tempdir().unwrap();
        let ring = KeyRing::open(dir.path(), Duration::from_secs(900)).unwrap();
        (dir, ring)
    }

    fn token(ring: &KeyRing, config: &TokensConfig) -> String {
        let grant = Grant {
            subject: Subject::Customer(7),
            scope: vec!["customer".into()],
            roles: vec!["customer".into()],
            email: None,
            name: "Ann".into(),
        };
        sign_access_token(ring, config, &grant).unwrap()
    }

    fn digest(token: &str) -> [u8; 32] {
        Sha256::digest(token.as_bytes()).into()
    }

    #[test]
    fn a_verified_token_is_remembered_until_it_expires() {
        let (_dir, ring) = ring();
        let config = TokensConfig::default();
        let token = token(&ring, &config);
        let first = decode(&ring, &config, &token).expect("a fresh token verifies");
        assert_eq!(first.sub, "customer:7");
        let again = decode(&ring, &config, &token).expect("and verifies again");
        assert_eq!(again.jti, first.jti);
        let cached = ring.verified.get(&digest(&token), first.exp, |_| true);
        assert_eq!(cached.map(|c| c.jti), Some(first.jti.clone()));

        // Past its expiry and the leeway, the memo refuses it and forgets it.
        let late = first.exp + LEEWAY_SECS as i64 + 1;
        assert!(ring.verified.get(&digest(&token), late, |_| true).is_none());
        assert!(ring.verified.map().is_empty());
    }

    #[test]
    fn a_token_of_a_withdrawn_key_is_not_served_from_the_memo() {
        let (_dir, ring) = ring();
        let config = TokensConfig::default();
        let token = token(&ring, &config);
        let claims = decode(&ring, &config, &token).unwrap();
        let now = claims.iat;
        assert!(ring.verified.get(&digest(&token), now, |_| false).is_none());
        assert!(ring.verified.map().is_empty());
    }

    #[test]
    fn refused_tokens_are_not_remembered() {
        let (_dir, ring) = ring();
        let config = TokensConfig::default();
        let token = token(&ring, &config);
        let other = TokensConfig {
            audience: "another-service".into(),
            ..TokensConfig::default()
        };
        assert!(decode(&ring, &other, &token).is_none());
        let (head, rest) = token.split_once('.').unwrap();
        let tampered = format!("{head}.e{rest}");
        assert!(decode(&ring, &config, &tampered).is_none());
        assert!(ring.verified.map().is_empty());
    }

    #[test]
    fn a_full_memo_drops_expired_tokens_first() {
        let verified = VerifiedTokens::default();
        let claims = |exp: i64| Claims {
            iss: "bazaar".into(),
            sub: "customer:1".into(),
            aud: "bazaar".into(),
            exp,
            iat: 0,
            jti: String::new(),
            scope: String::new(),
            roles: Vec::new(),
            email: None,
            name: String::new(),
        };
        for i in 0..MAX_VERIFIED {
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&(i as u64).to_le_bytes());
            // Half expired long ago, half live.
            let exp = if i % 2 == 0 { 0 } else { 10_000 };
            verified.put(key, "k".into(), claims(exp), 0);
        }
        verified.put([255; 32], "k".into(), claims(10_000), 1_000);
        assert_eq!(verified.map().len(), MAX_VERIFIED / 2 + 1);
        assert!(verified.get(&[255; 32], 1_000, |_| true).is_some());
    }
}
