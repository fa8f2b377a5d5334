//! Customer sign-up and sign-in: registration with email verification, password login
//! (session or tokens), password change and reset.
//!
//! Nothing here tells a caller whether an email has an account: registration and reset
//! requests answer the same way and cost the same (one argon2 run, one email queued).

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::entity::{account_token, security_log};
use super::guard::{Credential, CustomerPrincipal};
use super::oauth::ExternalUser;
use super::service::{Throttle, normalize_email, token_response};
use super::tokens::{Grant, Subject, TokenResponse};
use super::{password, session, store, tokens};
use crate::app::AppState;
use crate::customers::service::{self as customers, Account};
use crate::customers::store::NewCustomer;
use crate::jobs::{self, Enqueue, Job, JobContext, JobError};
use crate::notify::email::queue_email;
use crate::platform::error::Validator;
use crate::platform::request::RequestMeta;
use crate::platform::{ApiError, ApiResult};

/// Why a single-use emailed token was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    VerifyEmail,
    PasswordReset,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::VerifyEmail => "verify_email",
            Purpose::PasswordReset => "password_reset",
        }
    }
}

/// Appends a customer event to the security log, on `db` so it commits with the change.
pub async fn audit_customer(
    db: &impl ConnectionTrait,
    meta: &RequestMeta,
    event: &str,
    customer_id: Option<i64>,
    subject: Option<String>,
    detail: serde_json::Value,
) -> ApiResult<()> {
    store::insert_security_event(
        db,
        security_log::ActiveModel {
            event: Set(event.to_owned()),
            actor_customer_id: Set(customer_id),
            subject: Set(subject.or_else(|| customer_id.map(|id| format!("customer:{id}")))),
            ip: Set(meta.ip_string()),
            request_id: Set(meta.request_id.clone()),
            detail: Set(detail.to_string()),
            created_at: Set(Utc::now()),
            ..Default::default()
        },
    )
    .await?;
    tracing::info!(event, customer_id, "security event");
    Ok(())
}

/// Stores a single-use token and returns it with its expiry.
async fn issue_account_token(
    db: &impl ConnectionTrait,
    customer_id: i64,
    purpose: Purpose,
    ttl_secs: u64,
) -> ApiResult<(String, DateTime<Utc>)> {
    let token = session::random_token();
    let now = Utc::now();
    let expires_at = now + chrono::Duration::seconds(ttl_secs as i64);
    account_token::Entity::insert(account_token::ActiveModel {
        customer_id: Set(customer_id),
        purpose: Set(purpose.as_str().to_owned()),
        token_hash: Set(session::fingerprint(&token)),
        expires_at: Set(expires_at),
        created_at: Set(now),
        ..Default::default()
    })
    .exec(db)
    .await?;
    Ok((token, expires_at))
}

/// Spends a single-use token; a second use, an expired or unknown token is `invalid_grant`.
async fn consume_account_token(
    db: &impl ConnectionTrait,
    purpose: Purpose,
    token: &str,
) -> ApiResult<i64> {
    let row = account_token::Entity::find()
        .filter(account_token::Column::TokenHash.eq(session::fingerprint(token)))
        .filter(account_token::Column::Purpose.eq(purpose.as_str()))
        .one(db)
        .await?
        .ok_or_else(ApiError::invalid_grant)?;
    let now = Utc::now();
    let spent = account_token::Entity::update_many()
        .col_expr(
            account_token::Column::UsedAt,
            sea_orm::sea_query::Expr::value(now),
        )
        .filter(account_token::Column::Id.eq(row.id))
        .filter(account_token::Column::UsedAt.is_null())
        .filter(account_token::Column::ExpiresAt.gt(now))
        .exec(db)
        .await?
        .rows_affected
        == 1;
    if spent {
        Ok(row.customer_id)
    } else {
        Err(ApiError::invalid_grant())
    }
}

fn link(state: &AppState, path: &str, token: &str) -> String {
    format!(
        "{}/{path}?token={token}",
        state.config.shop.storefront_url.trim_end_matches('/')
    )
}

fn check_new_password(v: &mut Validator, field: &str, value: &str) {
    if let Err(message) = password::check_policy(value) {
        v.check(false, field, message);
    }
}

/// Registration details, as the storefront sends them.
pub struct Registration<'a> {
    pub email: &'a str,
    pub password: &'a str,
    pub name: &'a str,
}

/// Starts an account: a new address gets an account and a verification link; an address
/// that already has a verified account gets a note instead, so the answer reveals nothing.
pub async fn register(
    state: &AppState,
    meta: &RequestMeta,
    input: Registration<'_>,
) -> ApiResult<()> {
    let email = normalize_email(input.email);
    let mut v = Validator::default();
    super::service::check_email(&mut v, &email);
    v.text(input.name, "name", 100);
    check_new_password(&mut v, "password", input.password);
    v.finish()?;
    let name = input.name.trim();
    let hash = password::hash(input.password).await?;

    let txn = state.db.begin().await?;
    let existing = customers::find_account_by_email(&txn, &email).await?;
    let shop = &state.config.shop.name;
    match existing {
        // A deleted or deactivated account keeps its address; staff decide about it.
        Some(account) if !account.can_sign_in() => {
            audit_customer(
                &txn,
                meta,
                "register_blocked",
                None,
                Some(format!("customer:{}", account.id)),
                json!({}),
            )
            .await?;
        }
        Some(account) if account.email_verified_at.is_some() => {
            let (token, _) = issue_account_token(
                &txn,
                account.id,
                Purpose::PasswordReset,
                state.config.auth.password_reset_ttl_secs,
            )
            .await?;
            queue_email(
                &txn,
                &state.config,
                &email,
                "customer_already_registered",
                &json!({"shop": shop, "name": account.name,
                    "reset_link": link(state, "account/reset-password", &token)}),
            )
            .await?;
            audit_customer(
                &txn,
                meta,
                "register_existing",
                None,
                Some(format!("customer:{}", account.id)),
                json!({}),
            )
            .await?;
        }
        existing => {
            let id = match existing {
                Some(account) => {
                    customers::replace_unverified(&txn, account.id, name, &hash).await?;
                    account.id
                }
                None => {
                    customers::create_account(
                        &txn,
                        NewCustomer {
                            email: Some(&email),
                            name,
                            phone: None,
                            password_hash: Some(&hash),
                            email_verified_at: None,
                        },
                    )
                    .await?
                    .id
                }
            };
            send_verification(state, &txn, id, &email, name).await?;
            audit_customer(
                &txn,
                meta,
                "registered",
                None,
                Some(format!("customer:{id}")),
                json!({}),
            )
            .await?;
        }
    }
    txn.commit().await?;
    Ok(())
}

async fn send_verification(
    state: &AppState,
    db: &impl ConnectionTrait,
    customer_id: i64,
    email: &str,
    name: &str,
) -> ApiResult<()> {
    let (token, expires_at) = issue_account_token(
        db,
        customer_id,
        Purpose::VerifyEmail,
        state.config.auth.verification_ttl_secs,
    )
    .await?;
    queue_email(
        db,
        &state.config,
        email,
        "customer_verify_email",
        &json!({"shop": state.config.shop.name, "name": name,
            "link": link(state, "account/verify-email", &token),
            "expires_at": expires_at.format("%Y-%m-%d %H:%M UTC").to_string()}),
    )
    .await?;
    Ok(())
}

/// Sends a fresh verification link when the address has an unverified account. The
/// lookup runs in a job, so the request costs the same (one queued job) either way.
pub async fn resend_verification(
    state: &AppState,
    meta: &RequestMeta,
    email: &str,
) -> ApiResult<()> {
    queue_account_link(state, meta, LinkPurpose::Verification, email).await
}

async fn queue_account_link(
    state: &AppState,
    meta: &RequestMeta,
    purpose: LinkPurpose,
    email: &str,
) -> ApiResult<()> {
    let job = SendAccountLink {
        purpose,
        email: normalize_email(email),
        ip: meta.ip_string(),
        request_id: meta.request_id.clone(),
    };
    jobs::enqueue(state.db.writer(), &state.config, &job, Enqueue::default()).await?;
    Ok(())
}

/// Which link a `SendAccountLink` job emails.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkPurpose {
    Verification,
    PasswordReset,
}

/// Looks up an address and emails it a verification or reset link when it has a
/// matching account; queued by requests that must not reveal whether it has one.
#[derive(Debug, Serialize, Deserialize)]
pub struct SendAccountLink {
    pub purpose: LinkPurpose,
    pub email: String,
    pub ip: Option<String>,
    pub request_id: Option<String>,
}

impl Job for SendAccountLink {
    const NAME: &'static str = "send_account_link";

    async fn run(self, state: AppState, _: JobContext) -> Result<(), JobError> {
        let meta = RequestMeta {
            ip: self.ip.as_deref().and_then(|ip| ip.parse().ok()),
            request_id: self.request_id,
        };
        let failed = |e: ApiError| JobError::new(format!("{e:?}"));
        let txn = state.db.begin().await?;
        let account = customers::find_account_by_email(&txn, &self.email)
            .await
            .map_err(failed)?
            .filter(Account::can_sign_in);
        let Some(account) = account else {
            return Ok(());
        };
        let event = match self.purpose {
            LinkPurpose::PasswordReset => {
                send_password_reset(&state, &txn, &account)
                    .await
                    .map_err(failed)?;
                "password_reset_requested"
            }
            LinkPurpose::Verification if account.email_verified_at.is_none() => {
                send_verification(&state, &txn, account.id, &self.email, &account.name)
                    .await
                    .map_err(failed)?;
                "verification_resent"
            }
            LinkPurpose::Verification => return Ok(()),
        };
        audit_customer(&txn, &meta, event, Some(account.id), None, json!({}))
            .await
            .map_err(failed)?;
        txn.commit().await?;
        Ok(())
    }
}

/// Follows an emailed verification link.
pub async fn verify_email(state: &AppState, meta: &RequestMeta, token: &str) -> ApiResult<()> {
    let txn = state.db.begin().await?;
    let customer_id = consume_account_token(&txn, Purpose::VerifyEmail, token).await?;
    customers::mark_email_verified(&txn, customer_id).await?;
    audit_customer(
        &txn,
        meta,
        "email_verified",
        Some(customer_id),
        None,
        json!({}),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Checks a customer's password with the same throttle as staff sign-in. Accounts whose
/// address is unverified are refused after the password check, so the refusal tells
/// nothing to someone without the password.
async fn authenticate(
    state: &AppState,
    meta: &RequestMeta,
    email: &str,
    password_attempt: &str,
) -> ApiResult<Account> {
    let email = normalize_email(email);
    let db = state.db.writer();
    let throttle = Throttle::new("customer", &email, meta);
    if let Err(err) = throttle.check(state).await {
        audit_customer(db, meta, "login_throttled", None, Some(email), json!({})).await?;
        return Err(err);
    }
    let account = customers::find_account_by_email(db, &email).await?;
    let stored = account.as_ref().and_then(|a| a.password_hash.as_deref());
    let verified = password::verify(password_attempt, stored).await;
    match account {
        Some(account) if verified && account.can_sign_in() => {
            throttle.clear(state).await?;
            if account.email_verified_at.is_none() {
                return Err(ApiError::new(
                    axum::http::StatusCode::FORBIDDEN,
                    "email-not-verified",
                    "confirm your email address first: follow the link we sent, or ask for a new one",
                ));
            }
            Ok(account)
        }
        other => {
            throttle.record_failure(state).await?;
            let reason = match other {
                Some(_) if verified => "inactive",
                _ => "bad_credentials",
            };
            audit_customer(
                db,
                meta,
                "login_failed",
                other.map(|a| a.id),
                Some(email),
                json!({ "reason": reason }),
            )
            .await?;
            Err(ApiError::invalid_credentials())
        }
    }
}

/// A new customer session: its id (the cookie) and CSRF token.
pub struct CustomerSession {
    pub customer_id: i64,
    pub session_id: String,
    pub csrf_token: String,
}

/// Starts a server-side session for an authenticated customer.
pub async fn start_session(
    state: &AppState,
    meta: &RequestMeta,
    customer_id: i64,
    method: &str,
) -> ApiResult<CustomerSession> {
    let ttl = Duration::from_secs(state.config.auth.session_ttl_secs);
    let (session_id, session) =
        session::create(state.kv.as_ref(), session::Kind::Customer, customer_id, ttl).await?;
    audit_customer(
        state.db.writer(),
        meta,
        "login",
        Some(customer_id),
        None,
        json!({ "method": method }),
    )
    .await?;
    Ok(CustomerSession {
        customer_id,
        session_id,
        csrf_token: session.csrf_token,
    })
}

pub async fn login(
    state: &AppState,
    meta: &RequestMeta,
    email: &str,
    password_attempt: &str,
) -> ApiResult<CustomerSession> {
    let account = authenticate(state, meta, email, password_attempt).await?;
    start_session(state, meta, account.id, "password").await
}

/// Ends the session of this request on every instance, or for a bearer caller its access
/// token (its refresh token is revoked through `/auth/token/revoke`).
pub async fn logout(
    state: &AppState,
    meta: &RequestMeta,
    who: &CustomerPrincipal,
) -> ApiResult<()> {
    match &who.credential {
        Credential::Session { id, .. } => {
            session::destroy(state.kv.as_ref(), session::Kind::Customer, id).await?;
        }
        Credential::Bearer { jti, expires_at } => {
            tokens::revoke_access_token(state.kv.as_ref(), jti, *expires_at).await?;
        }
    }
    audit_customer(
        state.db.writer(),
        meta,
        "logout",
        Some(who.customer_id),
        None,
        json!({}),
    )
    .await
}

/// The grant of a customer's access token.
pub fn customer_grant(account: &Account) -> Grant {
    Grant {
        subject: Subject::Customer(account.id),
        scope: vec!["customer".into()],
        roles: vec!["customer".into()],
        email: account.email.clone(),
        name: account.name.clone(),
    }
}

/// `POST /auth/token`: a password grant for customers.
pub async fn issue_tokens(
    state: &AppState,
    meta: &RequestMeta,
    email: &str,
    password_attempt: &str,
) -> ApiResult<TokenResponse> {
    let account = authenticate(state, meta, email, password_attempt).await?;
    tokens_for(state, meta, &account, "password").await
}

/// A fresh token family for a signed-in customer (password or third-party login).
pub async fn tokens_for(
    state: &AppState,
    meta: &RequestMeta,
    account: &Account,
    method: &str,
) -> ApiResult<TokenResponse> {
    let txn = state.db.begin().await?;
    let response = token_response(state, &txn, &customer_grant(account), None).await?;
    audit_customer(
        &txn,
        meta,
        "token_issued",
        Some(account.id),
        None,
        json!({ "method": method }),
    )
    .await?;
    txn.commit().await?;
    Ok(response)
}

/// `POST /auth/token/refresh`: spends the refresh token and returns a new pair in the same
/// family. A spent token presented again revokes the family (it has leaked).
pub async fn refresh(
    state: &AppState,
    meta: &RequestMeta,
    refresh_token: &str,
) -> ApiResult<TokenResponse> {
    let txn = state.db.begin().await?;
    let redeemed = tokens::redeem_refresh_token(&txn, refresh_token).await?;
    let (subject, family_id) = match redeemed {
        tokens::Redeemed::Valid { subject, family_id } => (subject, family_id),
        tokens::Redeemed::Reused { subject, family_id } => {
            log_family_revoked(&txn, meta, &subject, &family_id, "refresh_token_reused").await?;
            txn.commit().await?;
            return Err(ApiError::invalid_grant());
        }
    };
    let response = match subject {
        Subject::Customer(id) => {
            let account = customers::find_account(&txn, id)
                .await?
                .filter(Account::can_sign_in)
                .ok_or_else(ApiError::invalid_grant)?;
            token_response(state, &txn, &customer_grant(&account), Some(family_id)).await?
        }
        Subject::Staff(id) => {
            let staff = store::find_staff(&txn, id)
                .await?
                .filter(|s| s.is_active)
                .ok_or_else(ApiError::invalid_grant)?;
            super::service::staff_token_response(state, &txn, &staff, Some(family_id)).await?
        }
    };
    txn.commit().await?;
    Ok(response)
}

async fn log_family_revoked(
    db: &impl ConnectionTrait,
    meta: &RequestMeta,
    subject: &str,
    family_id: &str,
    reason: &str,
) -> ApiResult<()> {
    let customer_id = match Subject::parse(subject) {
        Some(Subject::Customer(id)) => Some(id),
        _ => None,
    };
    audit_customer(
        db,
        meta,
        "token_family_revoked",
        customer_id,
        Some(subject.to_owned()),
        json!({ "family_id": family_id, "reason": reason }),
    )
    .await
}

/// `POST /auth/token/revoke` (RFC 7009): answers the same whether or not the token was
/// known.
pub async fn revoke(state: &AppState, meta: &RequestMeta, token: &str) -> ApiResult<()> {
    let txn = state.db.begin().await?;
    let revoked = tokens::revoke(
        &txn,
        &state.keys,
        &state.config.auth.tokens,
        state.kv.as_ref(),
        token,
    )
    .await?;
    match revoked {
        tokens::Revoked::Family { subject, family_id } => {
            log_family_revoked(&txn, meta, &subject, &family_id, "revoked").await?;
        }
        tokens::Revoked::AccessToken { subject } => {
            let customer_id = match Subject::parse(&subject) {
                Some(Subject::Customer(id)) => Some(id),
                _ => None,
            };
            audit_customer(
                &txn,
                meta,
                "access_token_revoked",
                customer_id,
                Some(subject),
                json!({}),
            )
            .await?;
        }
        tokens::Revoked::Nothing => {}
    }
    txn.commit().await?;
    Ok(())
}

/// Changes the password of a signed-in customer: every other session and every refresh
/// token ends; the caller gets a fresh session when it used one.
pub async fn change_password(
    state: &AppState,
    meta: &RequestMeta,
    who: &CustomerPrincipal,
    current: &str,
    new: &str,
) -> ApiResult<Option<CustomerSession>> {
    let mut v = Validator::default();
    check_new_password(&mut v, "new_password", new);
    v.finish()?;
    let account = customers::find_account(state.db.writer(), who.customer_id)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    // Accounts made through a third-party login have no password yet: they set one.
    if account.password_hash.is_some()
        && !password::verify(current, account.password_hash.as_deref()).await
    {
        audit_customer(
            state.db.writer(),
            meta,
            "password_change_failed",
            Some(account.id),
            None,
            json!({}),
        )
        .await?;
        return Err(ApiError::invalid(
            "current_password",
            "is not your current password",
        ));
    }
    let hash = password::hash(new).await?;
    let txn = state.db.begin().await?;
    customers::set_password_hash(&txn, account.id, &hash).await?;
    tokens::revoke_subject(&txn, Subject::Customer(account.id)).await?;
    audit_customer(
        &txn,
        meta,
        "password_changed",
        Some(account.id),
        None,
        json!({}),
    )
    .await?;
    txn.commit().await?;
    if let Some(id) = who.credential.session_id() {
        session::destroy(state.kv.as_ref(), session::Kind::Customer, id).await?;
        return Ok(Some(
            start_session(state, meta, account.id, "password_change").await?,
        ));
    }
    Ok(None)
}

/// Emails a reset link when the address has an account, from a job, so the request
/// costs the same either way.
pub async fn request_password_reset(
    state: &AppState,
    meta: &RequestMeta,
    email: &str,
) -> ApiResult<()> {
    queue_account_link(state, meta, LinkPurpose::PasswordReset, email).await
}

/// Queues the reset email for `account` (also used by staff from the customers admin).
pub async fn send_password_reset(
    state: &AppState,
    db: &impl ConnectionTrait,
    account: &Account,
) -> ApiResult<()> {
    let Some(email) = &account.email else {
        return Err(ApiError::conflict(
            "no-email",
            "the customer has no email address to send a reset link to",
        ));
    };
    let (token, expires_at) = issue_account_token(
        db,
        account.id,
        Purpose::PasswordReset,
        state.config.auth.password_reset_ttl_secs,
    )
    .await?;
    queue_email(
        db,
        &state.config,
        email,
        "customer_password_reset",
        &json!({"shop": state.config.shop.name, "name": account.name,
            "link": link(state, "account/reset-password", &token),
            "expires_at": expires_at.format("%Y-%m-%d %H:%M UTC").to_string()}),
    )
    .await?;
    Ok(())
}

/// Sets a new password from an emailed reset link. Following the link also proves the
/// address, so an unverified account becomes verified.
pub async fn confirm_password_reset(
    state: &AppState,
    meta: &RequestMeta,
    token: &str,
    new: &str,
) -> ApiResult<()> {
    let mut v = Validator::default();
    check_new_password(&mut v, "password", new);
    v.finish()?;
    let hash = password::hash(new).await?;
    let txn = state.db.begin().await?;
    let customer_id = consume_account_token(&txn, Purpose::PasswordReset, token).await?;
    customers::set_password_hash(&txn, customer_id, &hash).await?;
    let account = customers::find_account(&txn, customer_id).await?;
    if account.is_some_and(|a| a.email_verified_at.is_none()) {
        customers::mark_email_verified(&txn, customer_id).await?;
    }
    tokens::revoke_subject(&txn, Subject::Customer(customer_id)).await?;
    audit_customer(
        &txn,
        meta,
        "password_reset",
        Some(customer_id),
        None,
        json!({}),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// A third-party login bound to a customer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Binding {
    pub provider: String,
    pub display_name: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Signs in through a provider: the bound account, or on first use a new account bound
/// to the provider's user. A verified email from the provider fills in the new account's
/// address only when no other account uses it: taking over an existing account by
/// address would trust the provider with that account.
pub async fn oauth_sign_in(
    state: &AppState,
    meta: &RequestMeta,
    provider: &str,
    user: &ExternalUser,
) -> ApiResult<Account> {
    let txn = state.db.begin().await?;
    let account = match store::find_oauth_identity(&txn, provider, &user.subject).await? {
        Some(identity) => customers::find_account(&txn, identity.customer_id)
            .await?
            .filter(Account::can_sign_in)
            .ok_or_else(ApiError::invalid_credentials)?,
        None => {
            let email = match &user.verified_email {
                Some(email) => {
                    let email = normalize_email(email);
                    let taken = customers::find_account_by_email(&txn, &email)
                        .await?
                        .is_some();
                    (!taken).then_some(email)
                }
                None => None,
            };
            let fallback = format!("{provider} user");
            let name = user.display_name.as_deref().unwrap_or(&fallback);
            let account = customers::create_account(
                &txn,
                NewCustomer {
                    email: email.as_deref(),
                    name: truncate(name, 100),
                    phone: None,
                    password_hash: None,
                    email_verified_at: email.as_ref().map(|_| Utc::now()),
                },
            )
            .await?;
            store::insert_oauth_identity(&txn, account.id, provider, user).await?;
            audit_customer(
                &txn,
                meta,
                "oauth_bound",
                Some(account.id),
                None,
                json!({ "provider": provider, "new_account": true }),
            )
            .await?;
            account
        }
    };
    txn.commit().await?;
    Ok(account)
}

fn truncate(text: &str, max_chars: usize) -> &str {
    match text.char_indices().nth(max_chars) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

/// Binds the provider's user to a signed-in customer. A provider user bound to another
/// account, or a second binding of the same provider, is a conflict.
pub async fn bind_provider(
    state: &AppState,
    meta: &RequestMeta,
    customer_id: i64,
    provider: &str,
    user: &ExternalUser,
) -> ApiResult<Vec<Binding>> {
    let txn = state.db.begin().await?;
    match store::find_oauth_identity(&txn, provider, &user.subject).await? {
        Some(identity) if identity.customer_id == customer_id => {}
        Some(_) => {
            return Err(ApiError::conflict(
                "oauth-already-bound",
                format!("this {provider} account is bound to another customer"),
            ));
        }
        None => {
            let bound = store::oauth_identities_of(&txn, customer_id).await?;
            if bound.iter().any(|b| b.provider == provider) {
                return Err(ApiError::conflict(
                    "oauth-provider-bound",
                    format!("another {provider} account is already bound; unbind it first"),
                ));
            }
            store::insert_oauth_identity(&txn, customer_id, provider, user).await?;
            audit_customer(
                &txn,
                meta,
                "oauth_bound",
                Some(customer_id),
                None,
                json!({ "provider": provider, "new_account": false }),
            )
            .await?;
        }
    }
    let bindings = list_bindings(&txn, customer_id).await?;
    txn.commit().await?;
    Ok(bindings)
}

/// Unbinds a provider, unless it is the account's only way to sign in.
pub async fn unbind_provider(
    state: &AppState,
    meta: &RequestMeta,
    customer_id: i64,
    provider: &str,
) -> ApiResult<()> {
    let txn = state.db.begin().await?;
    let bound = store::oauth_identities_of(&txn, customer_id).await?;
    let Some(binding) = bound.iter().find(|b| b.provider == provider) else {
        return Err(ApiError::not_found("binding", provider));
    };
    let account = customers::find_account(&txn, customer_id)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    if account.password_hash.is_none() && bound.len() == 1 {
        return Err(ApiError::conflict(
            "last-sign-in-method",
            "set a password before unbinding your only third-party login",
        ));
    }
    store::delete_oauth_identity(&txn, binding.id).await?;
    audit_customer(
        &txn,
        meta,
        "oauth_unbound",
        Some(customer_id),
        None,
        json!({ "provider": provider }),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

pub async fn list_bindings(db: &impl ConnectionTrait, customer_id: i64) -> ApiResult<Vec<Binding>> {
    Ok(store::oauth_identities_of(db, customer_id)
        .await?
        .into_iter()
        .map(|b| Binding {
            provider: b.provider,
            display_name: b.display_name,
            created_at: b.created_at,
        })
        .collect())
}
