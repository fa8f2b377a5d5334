//! Notifications: the email outbox and its delivery.

pub mod email;
pub mod entity;
pub mod routes;

use crate::platform::routing::Permission;

pub const EMAILS_READ: Permission = Permission::new("system.emails.read", "View the email queue");
pub const EMAILS_WRITE: Permission = Permission::new(
    "system.emails.write",
    "Retry and delete queued emails, send test emails",
);

/// Job types of this domain.
pub mod jobs {
    use crate::jobs::Registry;

    pub fn register(registry: &mut Registry) {
        registry.job::<super::email::SendEmail>();
    }
}
