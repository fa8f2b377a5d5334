//! Rules of staff access control: login with throttling, staff and roles, the security log.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::Utc;
use sea_orm::ActiveValue::Set;
use sea_orm::ConnectionTrait;
use serde_json::json;

use super::entity::{role, security_log, staff};
use super::guard::{Credential, Principal};
use super::model::{CreateRole, CreateStaff, RoleView, StaffView, UpdateRole, UpdateStaff};
use super::tokens::{self, Grant, Subject, TokenResponse};
use super::{password, session, store};
use crate::app::AppState;
use crate::platform::concurrency::{Expected, update_versioned};
use crate::platform::error::{FieldError, Validator};
use crate::platform::request::RequestMeta;
use crate::platform::{ApiError, ApiResult};

/// Who did something and from where, for the security log.
pub struct Actor<'a> {
    pub principal: Option<&'a Principal>,
    pub meta: &'a RequestMeta,
}

impl<'a> Actor<'a> {
    /// A signed-in staff member acting through this request.
    pub fn staff(principal: &'a Principal, meta: &'a RequestMeta) -> Self {
        Self {
            principal: Some(principal),
            meta,
        }
    }
}

/// Appends to the security log. Runs on `db`, so an event inside a transaction is
/// recorded only if the change it describes commits.
pub async fn audit(
    db: &impl ConnectionTrait,
    actor: &Actor<'_>,
    event: &str,
    subject: Option<String>,
    detail: serde_json::Value,
) -> ApiResult<()> {
    store::insert_security_event(
        db,
        security_log::ActiveModel {
            event: Set(event.to_owned()),
            actor_staff_id: Set(actor.principal.map(|p| p.staff_id)),
            actor_email: Set(actor.principal.map(|p| p.email.clone())),
            subject: Set(subject),
            ip: Set(actor.meta.ip_string()),
            request_id: Set(actor.meta.request_id.clone()),
            detail: Set(detail.to_string()),
            created_at: Set(Utc::now()),
            ..Default::default()
        },
    )
    .await?;
    tracing::info!(event, "security event");
    Ok(())
}

/// Who to tell about work that needs a permission (a low-stock alert): the active staff
/// holding it, superusers included.
pub async fn staff_emails_with_permission(
    db: &impl ConnectionTrait,
    permission: &str,
) -> ApiResult<Vec<String>> {
    Ok(store::active_staff_emails_with(db, permission).await?)
}

pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

pub fn check_email(v: &mut Validator, email: &str) {
    let valid = email.split_once('@').is_some_and(|(user, domain)| {
        !user.is_empty() && domain.contains('.') && !domain.starts_with('.')
    }) && !email.contains(char::is_whitespace)
        && email.len() <= 254;
    v.check(valid, "email", "must be an email address");
}

/// Failed-login counters per account and per client IP: past either limit within the
/// window, sign-in is refused (429) even with the right password.
pub struct Throttle {
    account_key: String,
    ip_key: String,
}

impl Throttle {
    pub fn new(kind: &str, email: &str, meta: &RequestMeta) -> Self {
        Self {
            account_key: format!("login-failures:{kind}:{email}"),
            ip_key: format!("login-failures:ip:{}", meta.ip_string().unwrap_or_default()),
        }
    }

    pub async fn check(&self, state: &AppState) -> ApiResult<()> {
        let auth = &state.config.auth;
        for (key, limit) in [
            (&self.account_key, auth.max_failures_per_account),
            (&self.ip_key, auth.max_failures_per_ip),
        ] {
            let failures = state
                .kv
                .get(key)
                .await?
                .and_then(|v| String::from_utf8(v).ok())
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(0);
            if failures >= limit {
                let window = Duration::from_secs(auth.failure_window_secs);
                let retry = state.kv.ttl(key).await?.unwrap_or(window);
                return Err(ApiError::too_many_requests(retry.as_secs().max(1)));
            }
        }
        Ok(())
    }

    pub async fn record_failure(&self, state: &AppState) -> ApiResult<()> {
        let window = Some(Duration::from_secs(state.config.auth.failure_window_secs));
        state.kv.increment(&self.account_key, 1, window).await?;
        state.kv.increment(&self.ip_key, 1, window).await?;
        Ok(())
    }

    pub async fn clear(&self, state: &AppState) -> ApiResult<()> {
        state.kv.delete(&self.account_key).await?;
        Ok(())
    }
}

/// A successful staff login: the new session's id and CSRF token.
pub struct LoggedIn {
    pub session_id: String,
    pub csrf_token: String,
    pub principal: Principal,
}

/// Verifies staff credentials, refusing (429) while the account or the client IP has too
/// many recent failures; failures are in the security log.
async fn authenticate(
    state: &AppState,
    meta: &RequestMeta,
    email: &str,
    password_attempt: &str,
) -> ApiResult<staff::Model> {
    let email = normalize_email(email);
    let db = state.db.writer();
    let actor = Actor {
        principal: None,
        meta,
    };
    let throttle = Throttle::new("staff", &email, meta);
    if let Err(err) = throttle.check(state).await {
        audit(
            db,
            &actor,
            "login_throttled",
            Some(email.clone()),
            json!({}),
        )
        .await?;
        return Err(err);
    }

    let staff = store::find_staff_by_email(db, &email).await?;
    let stored_hash = staff.as_ref().map(|s| s.password_hash.as_str());
    let verified = password::verify(password_attempt, stored_hash).await;
    let staff = match staff {
        Some(staff) if verified && staff.is_active => staff,
        other => {
            throttle.record_failure(state).await?;
            let reason = match other {
                Some(s) if verified && !s.is_active => "inactive",
                _ => "bad_credentials",
            };
            audit(
                db,
                &actor,
                "login_failed",
                Some(email),
                json!({ "reason": reason }),
            )
            .await?;
            return Err(ApiError::invalid_credentials());
        }
    };
    throttle.clear(state).await?;
    Ok(staff)
}

/// Signs a staff member in with a new server-side session.
pub async fn login(
    state: &AppState,
    meta: &RequestMeta,
    email: &str,
    password_attempt: &str,
) -> ApiResult<LoggedIn> {
    let staff = authenticate(state, meta, email, password_attempt).await?;
    let db = state.db.writer();
    let ttl = Duration::from_secs(state.config.auth.session_ttl_secs);
    let (session_id, session) =
        session::create(state.kv.as_ref(), session::Kind::Staff, staff.id, ttl).await?;
    let permissions = store::permissions_of(db, staff.id).await?;
    let principal = Principal {
        staff_id: staff.id,
        email: staff.email.clone(),
        name: staff.name.clone(),
        is_superuser: staff.is_superuser,
        permissions,
        credential: Credential::Session {
            id: session_id.clone(),
            csrf_token: session.csrf_token.clone(),
        },
    };
    audit(
        db,
        &Actor {
            principal: Some(&principal),
            meta,
        },
        "login",
        Some(staff.email),
        json!({}),
    )
    .await?;
    Ok(LoggedIn {
        session_id,
        csrf_token: session.csrf_token,
        principal,
    })
}

/// Issues an access and refresh token pair to a staff member; the access token's scopes
/// are their permissions at this moment.
pub async fn issue_staff_tokens(
    state: &AppState,
    meta: &RequestMeta,
    email: &str,
    password_attempt: &str,
) -> ApiResult<TokenResponse> {
    let staff = authenticate(state, meta, email, password_attempt).await?;
    let txn = state.db.begin().await?;
    let response = staff_token_response(state, &txn, &staff, None).await?;
    audit(
        &txn,
        &Actor {
            principal: None,
            meta,
        },
        "token_issued",
        Some(format!("staff:{}", staff.id)),
        json!({}),
    )
    .await?;
    txn.commit().await?;
    Ok(response)
}

/// A token response for `staff`, continuing refresh-token `family` when given.
pub async fn staff_token_response(
    state: &AppState,
    db: &impl ConnectionTrait,
    staff: &staff::Model,
    family: Option<String>,
) -> ApiResult<TokenResponse> {
    let mut scope = vec!["staff".to_owned()];
    if staff.is_superuser {
        scope.push("superuser".to_owned());
    }
    scope.extend(store::permissions_of(db, staff.id).await?);
    let roles = store::roles_by_staff(db, &[staff.id])
        .await?
        .remove(&staff.id)
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.name)
        .collect();
    let grant = Grant {
        subject: Subject::Staff(staff.id),
        scope,
        roles,
        email: Some(staff.email.clone()),
        name: staff.name.clone(),
    };
    token_response(state, db, &grant, family).await
}

/// Signs an access token for `grant` and stores a refresh token beside it.
pub async fn token_response(
    state: &AppState,
    db: &impl ConnectionTrait,
    grant: &Grant,
    family: Option<String>,
) -> ApiResult<TokenResponse> {
    let config = &state.config.auth.tokens;
    let access_token = tokens::sign_access_token(&state.keys, config, grant)?;
    let refresh_token = tokens::issue_refresh_token(db, config, grant.subject, family).await?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer".into(),
        expires_in: config.access_ttl_secs,
        refresh_token,
        scope: grant.scope.join(" "),
    })
}

pub async fn logout(state: &AppState, actor: &Actor<'_>, principal: &Principal) -> ApiResult<()> {
    if let Some(id) = principal.credential.session_id() {
        session::destroy(state.kv.as_ref(), session::Kind::Staff, id).await?;
    }
    audit(
        state.db.writer(),
        actor,
        "logout",
        Some(principal.email.clone()),
        json!({}),
    )
    .await
}

/// Creates a staff account; used by the admin API and by `bazaar create-admin`.
pub async fn create_staff(
    state: &AppState,
    actor: &Actor<'_>,
    input: CreateStaff,
) -> ApiResult<StaffView> {
    let email = normalize_email(&input.email);
    let mut v = Validator::default();
    check_email(&mut v, &email);
    v.text(&input.name, "name", 100);
    if let Err(message) = password::check_policy(&input.password) {
        v.check(false, "password", message);
    }
    v.finish()?;
    if input.is_superuser && actor.principal.is_some_and(|p| !p.is_superuser) {
        return Err(ApiError::forbidden("superuser (only superusers grant it)"));
    }
    let role_ids: BTreeSet<i64> = input.role_ids.iter().copied().collect();
    let hash = password::hash(&input.password).await?;

    let txn = state.db.begin().await?;
    check_roles_exist(&txn, &role_ids).await?;
    if store::find_staff_by_email(&txn, &email).await?.is_some() {
        return Err(ApiError::conflict(
            "staff-exists",
            format!("a staff account with email {email} already exists"),
        ));
    }
    let staff =
        store::insert_staff(&txn, &email, input.name.trim(), &hash, input.is_superuser).await?;
    store::set_staff_roles(&txn, staff.id, &role_ids).await?;
    audit(
        &txn,
        actor,
        "staff_created",
        Some(format!("staff:{}", staff.id)),
        json!({ "email": staff.email, "is_superuser": staff.is_superuser, "role_ids": role_ids }),
    )
    .await?;
    let view = staff_view(&txn, staff).await?;
    txn.commit().await?;
    Ok(view)
}

async fn check_roles_exist(db: &impl ConnectionTrait, role_ids: &BTreeSet<i64>) -> ApiResult<()> {
    if role_ids.is_empty() {
        return Ok(());
    }
    let missing = store::missing_roles(db, role_ids).await?;
    if missing.is_empty() {
        return Ok(());
    }
    Err(ApiError::validation(
        missing
            .into_iter()
            .map(|id| FieldError {
                field: "role_ids".into(),
                message: format!("role {id} does not exist"),
            })
            .collect(),
    ))
}

pub async fn staff_view(db: &impl ConnectionTrait, staff: staff::Model) -> ApiResult<StaffView> {
    let mut roles = store::roles_by_staff(db, &[staff.id]).await?;
    let roles = roles.remove(&staff.id).unwrap_or_default();
    Ok(StaffView::new(staff, roles))
}

pub async fn update_staff(
    state: &AppState,
    actor: &Actor<'_>,
    id: i64,
    expected: Expected,
    input: UpdateStaff,
) -> ApiResult<StaffView> {
    let mut v = Validator::default();
    v.text_if(input.name.as_ref(), "name", 100);
    if let Some(Err(message)) = input.password.as_deref().map(password::check_policy) {
        v.check(false, "password", message);
    }
    v.finish()?;
    let principal = actor.principal.ok_or_else(ApiError::unauthorized)?;
    if input.is_superuser.is_some() && !principal.is_superuser {
        return Err(ApiError::forbidden("superuser (only superusers grant it)"));
    }
    if principal.staff_id == id && input.is_active == Some(false) {
        return Err(ApiError::conflict(
            "cannot-deactivate-self",
            "you cannot deactivate your own account",
        ));
    }
    let hash = match &input.password {
        Some(p) => Some(password::hash(p).await?),
        None => None,
    };

    let txn = state.db.begin().await?;
    let current = store::find_staff(&txn, id)
        .await?
        .ok_or_else(|| ApiError::not_found("staff", id))?;
    if current.is_superuser && !principal.is_superuser {
        return Err(ApiError::forbidden(
            "superuser (only superusers edit superusers)",
        ));
    }
    let changes = staff::ActiveModel {
        name: input
            .name
            .as_ref()
            .map_or(sea_orm::NotSet, |n| Set(n.trim().to_owned())),
        password_hash: hash.map_or(sea_orm::NotSet, Set),
        is_active: input.is_active.map_or(sea_orm::NotSet, Set),
        is_superuser: input.is_superuser.map_or(sea_orm::NotSet, Set),
        updated_at: Set(Utc::now()),
        ..Default::default()
    };
    update_versioned(
        &txn,
        changes,
        [staff::Column::Id, staff::Column::Version],
        id,
        expected,
        "staff",
    )
    .await?;
    if let Some(role_ids) = &input.role_ids {
        let role_ids: BTreeSet<i64> = role_ids.iter().copied().collect();
        check_roles_exist(&txn, &role_ids).await?;
        store::set_staff_roles(&txn, id, &role_ids).await?;
    }
    let changed: Vec<&str> = [
        ("name", input.name.is_some()),
        ("password", input.password.is_some()),
        ("is_active", input.is_active.is_some()),
        ("is_superuser", input.is_superuser.is_some()),
        ("role_ids", input.role_ids.is_some()),
    ]
    .into_iter()
    .filter_map(|(field, present)| present.then_some(field))
    .collect();
    audit(
        &txn,
        actor,
        "staff_updated",
        Some(format!("staff:{id}")),
        json!({ "changed": changed, "role_ids": input.role_ids, "is_active": input.is_active, "is_superuser": input.is_superuser }),
    )
    .await?;
    let updated = store::find_staff(&txn, id)
        .await?
        .ok_or_else(|| ApiError::not_found("staff", id))?;
    let view = staff_view(&txn, updated).await?;
    txn.commit().await?;
    Ok(view)
}

pub async fn delete_staff(state: &AppState, actor: &Actor<'_>, id: i64) -> ApiResult<()> {
    let principal = actor.principal.ok_or_else(ApiError::unauthorized)?;
    if principal.staff_id == id {
        return Err(ApiError::conflict(
            "cannot-delete-self",
            "you cannot delete your own account",
        ));
    }
    let txn = state.db.begin().await?;
    let staff = store::find_staff(&txn, id)
        .await?
        .ok_or_else(|| ApiError::not_found("staff", id))?;
    if staff.is_superuser && !principal.is_superuser {
        return Err(ApiError::forbidden(
            "superuser (only superusers delete superusers)",
        ));
    }
    store::delete_staff(&txn, id).await?;
    audit(
        &txn,
        actor,
        "staff_deleted",
        Some(format!("staff:{id}")),
        json!({ "email": staff.email }),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

fn check_permissions(
    v: &mut Validator,
    known: &[crate::platform::routing::PermissionInfo],
    permissions: &[String],
) -> BTreeSet<String> {
    for (i, name) in permissions.iter().enumerate() {
        v.check(
            known.iter().any(|p| &p.name == name),
            &format!("permissions[{i}]"),
            &format!("unknown permission {name:?}"),
        );
    }
    permissions.iter().cloned().collect()
}

pub async fn create_role(
    state: &AppState,
    actor: &Actor<'_>,
    input: CreateRole,
) -> ApiResult<RoleView> {
    let mut v = Validator::default();
    v.text(&input.name, "name", 100);
    v.check(
        input.description.chars().count() <= 1000,
        "description",
        "must be at most 1000 characters",
    );
    let permissions = check_permissions(&mut v, &state.permissions, &input.permissions);
    v.finish()?;
    let txn = state.db.begin().await?;
    let role = store::insert_role(&txn, input.name.trim(), &input.description).await?;
    store::set_role_permissions(&txn, role.id, &permissions).await?;
    audit(
        &txn,
        actor,
        "role_created",
        Some(format!("role:{}", role.id)),
        json!({ "name": role.name, "permissions": permissions }),
    )
    .await?;
    txn.commit().await?;
    Ok(RoleView::new(role, permissions))
}

pub async fn role_view(db: &impl ConnectionTrait, role: role::Model) -> ApiResult<RoleView> {
    let mut permissions = store::permissions_by_role(db, &[role.id]).await?;
    let permissions = permissions.remove(&role.id).unwrap_or_default();
    Ok(RoleView::new(role, permissions))
}

pub async fn update_role(
    state: &AppState,
    actor: &Actor<'_>,
    id: i64,
    expected: Expected,
    input: UpdateRole,
) -> ApiResult<RoleView> {
    let mut v = Validator::default();
    v.text_if(input.name.as_ref(), "name", 100);
    let permissions = input
        .permissions
        .as_ref()
        .map(|p| check_permissions(&mut v, &state.permissions, p));
    v.finish()?;
    let txn = state.db.begin().await?;
    let before = store::find_role(&txn, id)
        .await?
        .ok_or_else(|| ApiError::not_found("role", id))?;
    let before_permissions = store::permissions_by_role(&txn, &[id])
        .await?
        .remove(&id)
        .unwrap_or_default();
    let changes = role::ActiveModel {
        name: input
            .name
            .as_ref()
            .map_or(sea_orm::NotSet, |n| Set(n.trim().to_owned())),
        description: input.description.clone().map_or(sea_orm::NotSet, Set),
        updated_at: Set(Utc::now()),
        ..Default::default()
    };
    update_versioned(
        &txn,
        changes,
        [role::Column::Id, role::Column::Version],
        id,
        expected,
        "role",
    )
    .await?;
    if let Some(permissions) = &permissions {
        store::set_role_permissions(&txn, id, permissions).await?;
    }
    let granted: Vec<&String> = permissions
        .iter()
        .flatten()
        .filter(|p| !before_permissions.contains(*p))
        .collect();
    let revoked: Vec<&String> = permissions
        .as_ref()
        .map(|now| {
            before_permissions
                .iter()
                .filter(|p| !now.contains(*p))
                .collect()
        })
        .unwrap_or_default();
    audit(
        &txn,
        actor,
        "role_updated",
        Some(format!("role:{id}")),
        json!({ "name_before": before.name, "name": input.name, "granted": granted, "revoked": revoked }),
    )
    .await?;
    let role = store::find_role(&txn, id)
        .await?
        .ok_or_else(|| ApiError::not_found("role", id))?;
    let view = role_view(&txn, role).await?;
    txn.commit().await?;
    Ok(view)
}

pub async fn delete_role(state: &AppState, actor: &Actor<'_>, id: i64) -> ApiResult<()> {
    let txn = state.db.begin().await?;
    let role = store::find_role(&txn, id)
        .await?
        .ok_or_else(|| ApiError::not_found("role", id))?;
    store::delete_role(&txn, id).await?;
    audit(
        &txn,
        actor,
        "role_deleted",
        Some(format!("role:{id}")),
        json!({ "name": role.name }),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// `bazaar create-admin`: a superuser, refused when the email is taken.
pub async fn create_superuser(
    state: &AppState,
    email: &str,
    password: &str,
) -> ApiResult<StaffView> {
    let meta = RequestMeta {
        ip: None,
        request_id: None,
    };
    let name = email.split('@').next().unwrap_or("admin").to_owned();
    create_staff(
        state,
        &Actor {
            principal: None,
            meta: &meta,
        },
        CreateStaff {
            email: email.to_owned(),
            name,
            password: password.to_owned(),
            is_superuser: true,
            role_ids: Vec::new(),
        },
    )
    .await
}

pub const BOOTSTRAP_ADMIN_EMAIL: &str = "admin@bazaar.local";

/// Creates the first superuser with a random password when there is no staff at all, and
/// prints the credentials once.
pub async fn bootstrap_admin(state: &AppState) -> anyhow::Result<()> {
    if store::count_staff(state.db.writer()).await? > 0 {
        return Ok(());
    }
    let password = session::random_token();
    match create_superuser(state, BOOTSTRAP_ADMIN_EMAIL, &password).await {
        Ok(_) => {
            println!(
                "created the first staff account: {BOOTSTRAP_ADMIN_EMAIL} / {password}  (change it after signing in)"
            );
            Ok(())
        }
        // Another instance bootstrapped at the same moment.
        Err(err) if err.status() == axum::http::StatusCode::CONFLICT => Ok(()),
        Err(err) => anyhow::bail!("cannot create the first admin: {}", err.problem().detail),
    }
}
