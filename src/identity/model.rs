//! Request and response types of the identity domain.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::entity::{role, security_log, staff};

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    pub staff: Me,
    /// Send this in `X-CSRF-Token` with every cookie-authenticated write.
    pub csrf_token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CsrfToken {
    pub csrf_token: String,
}

/// The signed-in staff member and what they may do.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub is_superuser: bool,
    pub permissions: Vec<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RoleRef {
    pub id: i64,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StaffView {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub is_superuser: bool,
    pub is_active: bool,
    pub roles: Vec<RoleRef>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl StaffView {
    pub fn new(staff: staff::Model, roles: Vec<role::Model>) -> Self {
        Self {
            id: staff.id,
            email: staff.email,
            name: staff.name,
            is_superuser: staff.is_superuser,
            is_active: staff.is_active,
            roles: roles
                .into_iter()
                .map(|r| RoleRef {
                    id: r.id,
                    name: r.name,
                })
                .collect(),
            version: staff.version,
            created_at: staff.created_at,
            updated_at: staff.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateStaff {
    pub email: String,
    pub name: String,
    pub password: String,
    #[serde(default)]
    pub is_superuser: bool,
    #[serde(default)]
    pub role_ids: Vec<i64>,
}

/// A partial update; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateStaff {
    pub name: Option<String>,
    pub password: Option<String>,
    pub is_active: Option<bool>,
    pub is_superuser: Option<bool>,
    pub role_ids: Option<Vec<i64>>,
    /// The version you edited, unless you send `If-Match`.
    pub version: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StaffFilter {
    /// Part of the email address.
    pub email: Option<String>,
    pub is_active: Option<bool>,
    /// Only staff holding this role.
    pub role_id: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RoleView {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub permissions: Vec<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl RoleView {
    pub fn new(role: role::Model, permissions: impl IntoIterator<Item = String>) -> Self {
        Self {
            id: role.id,
            name: role.name,
            description: role.description,
            permissions: permissions.into_iter().collect(),
            version: role.version,
            created_at: role.created_at,
            updated_at: role.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRole {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Names from `GET /api/v1/admin/permissions`.
    #[serde(default)]
    pub permissions: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRole {
    pub name: Option<String>,
    pub description: Option<String>,
    pub permissions: Option<Vec<String>>,
    pub version: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SecurityEvent {
    pub id: i64,
    /// `login`, `login_failed`, `login_throttled`, `logout`, `role_created`, …
    pub event: String,
    pub actor_staff_id: Option<i64>,
    pub actor_customer_id: Option<i64>,
    pub actor_email: Option<String>,
    pub subject: Option<String>,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

impl From<security_log::Model> for SecurityEvent {
    fn from(row: security_log::Model) -> Self {
        Self {
            id: row.id,
            event: row.event,
            actor_staff_id: row.actor_staff_id,
            actor_customer_id: row.actor_customer_id,
            actor_email: row.actor_email,
            subject: row.subject,
            ip: row.ip,
            request_id: row.request_id,
            detail: serde_json::from_str(&row.detail).unwrap_or_default(),
            created_at: row.created_at,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SecurityLogFilter {
    pub event: Option<String>,
    pub actor_staff_id: Option<i64>,
    pub actor_customer_id: Option<i64>,
    pub ip: Option<String>,
    /// What the event was about, e.g. `staff:3` or an email.
    pub subject: Option<String>,
    /// Events at or after this instant (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Events before this instant (RFC 3339).
    pub until: Option<DateTime<Utc>>,
}
