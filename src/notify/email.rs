//! Email: templates rendered when the email is queued, an outbox row written in the
//! caller's transaction together with its delivery job, and delivery over SMTP (or to
//! `.eml` files in the data dir when no SMTP server is configured).

use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::Duration;

use chrono::Utc;
use lettre::message::{Mailbox, MultiPart, header::MessageId};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use minijinja::Environment;
use sea_orm::ActiveValue::Set;
use sea_orm::{ConnectionTrait, EntityTrait};
use serde::{Deserialize, Serialize};

use super::entity as email;
use crate::app::AppState;
use crate::config::{Config, SmtpSecurity};
use crate::jobs::{self, Enqueue, Job, JobContext, JobError, RetryPolicy};
use crate::platform::{ApiError, ApiResult};

/// `(file name, source)` of the text and HTML halves of each named template, compiled in.
macro_rules! email_templates {
    ($($name:literal),* $(,)?) => {
        [$(
            (concat!($name, ".txt"), include_str!(concat!("../../templates/email/", $name, ".txt"))),
            (concat!($name, ".html"), include_str!(concat!("../../templates/email/", $name, ".html"))),
        )*]
    };
}

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, source) in email_templates![
        "test",
        "customer_verify_email",
        "customer_already_registered",
        "customer_password_reset",
        "customer_message",
        "feedback_reply",
        "membership_expired",
        "gift_certificate",
        "low_stock",
    ] {
        if let Err(err) = env.add_template(name, source) {
            tracing::error!(template = name, error = %err, "invalid email template");
        }
    }
    env
});

/// A rendered email: `<template>.txt` gives the subject and text blocks, `<template>.html`
/// the HTML part (autoescaped).
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub fn render(template: &str, context: &serde_json::Value) -> anyhow::Result<Rendered> {
    let context = minijinja::Value::from(minijinja::value::Serde(context));
    let mut captured = TEMPLATES
        .get_template(&format!("{template}.txt"))?
        .render_captured(context.clone())?;
    let (subject, text) = captured.with_state_mut(|state| {
        Ok::<_, minijinja::Error>((state.render_block("subject")?, state.render_block("text")?))
    })?;
    let (subject, text) = (subject.trim().to_owned(), text.trim_start().to_owned());
    let html = TEMPLATES
        .get_template(&format!("{template}.html"))?
        .render(context)?;
    Ok(Rendered {
        subject,
        text,
        html,
    })
}

pub fn parse_address(address: &str) -> Result<Mailbox, String> {
    address
        .trim()
        .parse::<Mailbox>()
        .map_err(|e| format!("not an email address: {e}"))
}

/// Queues an email on `db` (the caller's transaction): the outbox row and its delivery job
/// commit or roll back with the change that sends it.
pub async fn queue_email(
    db: &impl ConnectionTrait,
    config: &Config,
    to: &str,
    template: &str,
    context: &serde_json::Value,
) -> ApiResult<i64> {
    parse_address(to).map_err(|message| ApiError::invalid("to", message))?;
    let rendered = render(template, context)?;
    let now = Utc::now();
    let row = email::Entity::insert(email::ActiveModel {
        to_address: Set(to.trim().to_owned()),
        subject: Set(rendered.subject),
        text_body: Set(rendered.text),
        html_body: Set(rendered.html),
        template: Set(template.to_owned()),
        status: Set(Status::Pending.as_str().to_owned()),
        attempts: Set(0),
        last_error: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        sent_at: Set(None),
        ..Default::default()
    })
    .exec_with_returning(db)
    .await?;
    jobs::enqueue(
        db,
        config,
        &SendEmail { email_id: row.id },
        Enqueue::default(),
    )
    .await?;
    Ok(row.id)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Sent,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }
}

/// Where mail goes: an SMTP server, or `.eml` files when none is configured.
pub enum Mailer {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(PathBuf),
}

impl Mailer {
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let Some(smtp) = &config.email.smtp else {
            return Ok(Self::Files(config.data_dir.join("outbox")));
        };
        let builder = match smtp.security {
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host)?,
            SmtpSecurity::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)?
            }
            SmtpSecurity::None => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
            }
        };
        let mut builder = builder
            .port(smtp.port)
            .timeout(Some(Duration::from_secs(smtp.timeout_secs)));
        if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
            builder =
                builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
        }
        Ok(Self::Smtp(builder.build()))
    }

    /// Delivers one message. The `.eml` file is named after the email, so a repeated
    /// delivery rewrites it rather than adding a copy.
    async fn deliver(&self, id: i64, message: Message) -> Result<(), String> {
        match self {
            Self::Smtp(transport) => transport
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| format!("SMTP delivery failed: {e}")),
            Self::Files(dir) => {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                let path = dir.join(format!("{id}.eml"));
                let temp = dir.join(format!(".{id}.eml.tmp"));
                tokio::fs::write(&temp, message.formatted())
                    .await
                    .and(tokio::fs::rename(&temp, &path).await)
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))
            }
        }
    }
}

/// Delivers one outbox email. Idempotent: an email already sent is not sent again; the
/// only duplicate possible is a crash between the SMTP server's acceptance and the status
/// update, and then both copies carry the same Message-ID.
#[derive(Debug, Serialize, Deserialize)]
pub struct SendEmail {
    pub email_id: i64,
}

impl Job for SendEmail {
    const NAME: &'static str = "send_email";

    fn policy(config: &Config) -> RetryPolicy {
        RetryPolicy {
            max_attempts: config.email.max_attempts,
            backoff: Duration::from_secs(config.email.retry_backoff_secs),
            max_backoff: Duration::from_secs(3600),
            timeout: Duration::from_secs(120),
        }
    }

    async fn run(self, state: AppState, context: JobContext) -> Result<(), JobError> {
        let db = state.db.writer();
        let Some(row) = email::Entity::find_by_id(self.email_id).one(db).await? else {
            // Deleted by staff while queued: nothing to do.
            return Ok(());
        };
        if row.status == Status::Sent.as_str() {
            return Ok(());
        }
        let outcome = match build_message(&state.config, &row) {
            Ok(message) => state.mailer.deliver(row.id, message).await,
            Err(err) => Err(err),
        };
        let now = Utc::now();
        let mut update = email::ActiveModel {
            id: Set(row.id),
            attempts: Set(row.attempts + 1),
            updated_at: Set(now),
            ..Default::default()
        };
        match &outcome {
            Ok(()) => {
                update.status = Set(Status::Sent.as_str().to_owned());
                update.sent_at = Set(Some(now));
                update.last_error = Set(None);
            }
            Err(error) => {
                update.last_error = Set(Some(error.clone()));
                if context.last_attempt {
                    update.status = Set(Status::Failed.as_str().to_owned());
                }
            }
        }
        email::Entity::update(update).exec(db).await?;
        outcome.map_err(JobError)
    }
}

fn build_message(config: &Config, row: &email::Model) -> Result<Message, String> {
    let from = parse_address(&config.email.from).map_err(|e| format!("email.from: {e}"))?;
    let to = parse_address(&row.to_address)?;
    let domain = from.email.domain().to_owned();
    Message::builder()
        .from(from)
        .to(to)
        .subject(row.subject.clone())
        .header(MessageId::from(format!("<email-{}@{domain}>", row.id)))
        .multipart(MultiPart::alternative_plain_html(
            row.text_body.clone(),
            row.html_body.clone(),
        ))
        .map_err(|e| format!("cannot build the message: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_subject_text_and_escaped_html() {
        let rendered = render(
            "test",
            &serde_json::json!({"shop": "Tom & Jerry's <Shop>", "sender": "ann@example.com"}),
        )
        .unwrap();
        assert_eq!(
            rendered.subject,
            "Bazaar test email from Tom & Jerry's <Shop>"
        );
        assert!(rendered.text.contains("Tom & Jerry's <Shop>"));
        assert!(
            rendered
                .html
                .contains("Tom &amp; Jerry&#x27;s &lt;Shop&gt;")
        );
    }
}
