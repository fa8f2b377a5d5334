//! Request and response types of the customers domain.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::entity::customer;

/// A customer's own view of their account.
#[derive(Debug, Serialize, ToSchema)]
pub struct Profile {
    pub id: i64,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: String,
    pub phone: Option<String>,
    /// False for accounts made through a third-party login that never set one.
    pub has_password: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
}

impl From<customer::Model> for Profile {
    fn from(c: customer::Model) -> Self {
        Self {
            id: c.id,
            email: c.email,
            email_verified: c.email_verified_at.is_some(),
            name: c.name,
            phone: c.phone,
            has_password: c.password_hash.is_some(),
            version: c.version,
            created_at: c.created_at,
        }
    }
}

/// `PATCH /me`: the fields a customer edits themselves. The email changes only through
/// a verified flow, so it is not here.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProfile {
    pub name: Option<String>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "crate::platform::extract::double_option")]
    pub phone: Option<Option<String>>,
    pub version: Option<i64>,
}
