//! Request and response types of the customers domain.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::entity::{address, customer, feedback, membership, membership_level};

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

// ---- customers (staff) ------------------------------------------------------------------

/// A customer as staff see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerView {
    pub id: i64,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: String,
    pub phone: Option<String>,
    pub has_password: bool,
    pub is_active: bool,
    /// Set when the customer was deleted; deleted accounts are kept for orders and history.
    pub deleted_at: Option<DateTime<Utc>>,
    /// Staff-only remarks.
    pub note: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<customer::Model> for CustomerView {
    fn from(c: customer::Model) -> Self {
        Self {
            id: c.id,
            email: c.email,
            email_verified: c.email_verified_at.is_some(),
            name: c.name,
            phone: c.phone,
            has_password: c.password_hash.is_some(),
            is_active: c.is_active,
            deleted_at: c.deleted_at,
            note: c.note,
            version: c.version,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// One customer with what hangs off the account.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerDetail {
    #[serde(flatten)]
    pub customer: CustomerView,
    /// The membership in force now, if any.
    pub membership: Option<MembershipView>,
    pub addresses: Vec<AddressView>,
    /// Custom attribute values (shop-wide `customer` attributes), by code.
    #[schema(value_type = Object)]
    pub attributes: crate::catalog::model::AttributeValues,
}

/// Which customers a list shows; without `status`, deleted customers are left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CustomerStatus {
    /// Not deleted and allowed to sign in.
    Active,
    /// Not deleted, but disabled by staff.
    Inactive,
    Deleted,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CustomerFilter {
    /// Part of the email or name, case-insensitive.
    pub q: Option<String>,
    pub status: Option<CustomerStatus>,
    /// Whether the email address is verified.
    pub verified: Option<bool>,
    /// Customers whose current membership is at this level.
    pub membership_level_id: Option<i64>,
    /// Registered at or after this instant (RFC 3339).
    pub created_after: Option<DateTime<Utc>>,
    /// Registered before this instant (RFC 3339).
    pub created_before: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCustomer {
    pub email: String,
    pub name: String,
    pub phone: Option<String>,
    /// Without one, the customer is emailed a link to choose their password.
    pub password: Option<String>,
    /// Staff vouch for the address (e.g. a customer registered in the shop).
    #[serde(default)]
    pub email_verified: bool,
    #[serde(default)]
    pub note: String,
}

/// A partial update; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCustomer {
    pub name: Option<String>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "crate::platform::extract::double_option")]
    pub phone: Option<Option<String>>,
    /// A changed address counts as unverified unless `email_verified` says otherwise.
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    /// False signs the customer out everywhere and stops sign-in.
    pub is_active: Option<bool>,
    pub note: Option<String>,
    /// The version you edited, unless you send `If-Match`.
    pub version: Option<i64>,
}

/// `POST /customers/{id}/emails`: a message from the shop to one customer.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerMessage {
    pub subject: String,
    /// Plain text; it is escaped in the HTML part.
    pub body: String,
}

/// An email accepted into the outbox; it is delivered in the background.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmailQueued {
    pub email_id: i64,
}

// ---- addresses --------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct AddressView {
    pub id: i64,
    pub recipient: String,
    pub phone: String,
    pub region_id: i64,
    pub line1: String,
    pub line2: Option<String>,
    pub postal_code: Option<String>,
    pub is_default: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<address::Model> for AddressView {
    fn from(a: address::Model) -> Self {
        Self {
            id: a.id,
            recipient: a.recipient,
            phone: a.phone,
            region_id: a.region_id,
            line1: a.line1,
            line2: a.line2,
            postal_code: a.postal_code,
            is_default: a.is_default,
            version: a.version,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAddress {
    pub recipient: String,
    pub phone: String,
    /// A region from `GET /api/v1/regions`.
    pub region_id: i64,
    pub line1: String,
    pub line2: Option<String>,
    pub postal_code: Option<String>,
    /// The customer's first address is the default whatever this says.
    #[serde(default)]
    pub is_default: bool,
}

/// A partial update; `null` clears `line2` or `postal_code`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAddress {
    pub recipient: Option<String>,
    pub phone: Option<String>,
    pub region_id: Option<i64>,
    pub line1: Option<String>,
    #[serde(default, deserialize_with = "crate::platform::extract::double_option")]
    pub line2: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::platform::extract::double_option")]
    pub postal_code: Option<Option<String>>,
    /// True makes this the default and clears the others.
    pub is_default: Option<bool>,
    pub version: Option<i64>,
}

// ---- feedback ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackStatus {
    Open,
    Replied,
}

impl FeedbackStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Replied => "replied",
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FeedbackView {
    pub id: i64,
    pub customer_id: i64,
    pub subject: String,
    pub message: String,
    /// `open` or `replied`.
    pub status: String,
    pub reply: Option<String>,
    pub replied_by_staff_id: Option<i64>,
    pub replied_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<feedback::Model> for FeedbackView {
    fn from(f: feedback::Model) -> Self {
        Self {
            id: f.id,
            customer_id: f.customer_id,
            subject: f.subject,
            message: f.message,
            status: f.status,
            reply: f.reply,
            replied_by_staff_id: f.replied_by_staff_id,
            replied_at: f.replied_at,
            created_at: f.created_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateFeedback {
    pub subject: String,
    pub message: String,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedbackFilter {
    pub status: Option<FeedbackStatus>,
    pub customer_id: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyFeedback {
    /// Emailed to the customer; a second reply replaces the first and is emailed too.
    pub reply: String,
}

// ---- memberships ------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct LevelView {
    pub id: i64,
    pub name: String,
    pub description: String,
    /// Whole percent off, 0 to 100.
    pub discount_percent: i32,
    pub free_shipping: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<membership_level::Model> for LevelView {
    fn from(l: membership_level::Model) -> Self {
        Self {
            id: l.id,
            name: l.name,
            description: l.description,
            discount_percent: l.discount_percent,
            free_shipping: l.free_shipping,
            version: l.version,
            created_at: l.created_at,
            updated_at: l.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateLevel {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Whole percent off, 0 to 100.
    #[serde(default)]
    pub discount_percent: i64,
    #[serde(default)]
    pub free_shipping: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateLevel {
    pub name: Option<String>,
    pub description: Option<String>,
    pub discount_percent: Option<i64>,
    pub free_shipping: Option<bool>,
    pub version: Option<i64>,
}

/// The level a membership is at, with its benefits.
#[derive(Debug, Serialize, ToSchema)]
pub struct LevelBenefits {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub discount_percent: i32,
    pub free_shipping: bool,
}

impl From<membership_level::Model> for LevelBenefits {
    fn from(l: membership_level::Model) -> Self {
        Self {
            id: l.id,
            name: l.name,
            description: l.description,
            discount_percent: l.discount_percent,
            free_shipping: l.free_shipping,
        }
    }
}

/// One membership period; the history keeps ended ones with why they ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct MembershipView {
    pub id: i64,
    pub customer_id: i64,
    pub level: LevelBenefits,
    pub starts_at: DateTime<Utc>,
    /// None: until revoked or changed.
    pub expires_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// `changed`, `revoked` or `expired`.
    pub end_reason: Option<String>,
    pub granted_by_staff_id: Option<i64>,
}

impl MembershipView {
    pub fn new(m: membership::Model, level: membership_level::Model) -> Self {
        Self {
            id: m.id,
            customer_id: m.customer_id,
            level: level.into(),
            starts_at: m.starts_at,
            expires_at: m.expires_at,
            ended_at: m.ended_at,
            end_reason: m.end_reason,
            granted_by_staff_id: m.granted_by_staff_id,
        }
    }
}

/// `PUT /customers/{id}/membership`: grants a level, replacing the current membership.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantMembership {
    pub level_id: i64,
    /// RFC 3339, in the future; absent for a membership that does not expire.
    pub expires_at: Option<DateTime<Utc>>,
}

/// The signed-in customer's membership as the storefront shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MyMembership {
    pub level: LevelBenefits,
    pub starts_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}
