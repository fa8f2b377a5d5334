//! Gift certificates (R3.2): staff issue them in batches and email them to customers; a
//! customer spends one at checkout, in part or whole. Every change to a balance is a
//! movement row written in the same transaction as the change, so a certificate's
//! movements always sum to its balance, and a balance never goes below zero.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use rand::Rng;
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Select,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::entity::{gift_certificate as certificate, gift_certificate_movement as movement};
use crate::app::AppState;
use crate::customers::service as customers;
use crate::identity::service::{Actor, audit};
use crate::notify::email::{parse_address, queue_email};
use crate::orders::entity::order;
use crate::platform::concurrency::{Expected, update_versioned};
use crate::platform::crud::find_or_404;
use crate::platform::error::Validator;
use crate::platform::list::{ListParams, Page, SortFields};
use crate::platform::money::Money;
use crate::platform::routing::Permission;
use crate::platform::{ApiError, ApiResult};

pub const GIFT_CERTIFICATES_READ: Permission = Permission::new(
    "promotions.gift_certificates.read",
    "View gift certificates and their balance history",
);
pub const GIFT_CERTIFICATES_WRITE: Permission = Permission::new(
    "promotions.gift_certificates.write",
    "Issue, edit, email and adjust gift certificates",
);

const RESOURCE: &str = "gift certificate";
/// The field checkout reports refused certificates under.
const CHECKOUT_FIELD: &str = "gift_certificates";
const MAX_BATCH: u32 = 1000;
/// Ten million in major units of a two-digit currency: a typo guard, and far from overflow.
const MAX_AMOUNT: i64 = 1_000_000_000;
const REASON_MAX: usize = 200;
/// Redemptions that lost a race re-read the balance and try again, this many times.
const REDEEM_ATTEMPTS: usize = 20;

/// No 0/O or 1/I: people read codes off paper and type them in. 32 symbols, 16 of them per
/// code: 80 random bits, so guessing a code is hopeless whatever the rate limits.
const CODE_ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
const CODE_CHARS: usize = 16;

const SORT: SortFields<certificate::Column> = SortFields(&[
    ("created_at", certificate::Column::CreatedAt),
    ("balance", certificate::Column::Balance),
    ("expires_at", certificate::Column::ExpiresAt),
]);

/// Movement reasons the system writes itself; staff adjustments carry their own.
const ISSUED: &str = "issued";
const REDEEMED: &str = "redeemed";

// ---------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct GiftCertificateView {
    pub id: i64,
    /// `XXXX-XXXX-XXXX-XXXX`, what the customer types at checkout.
    pub code: String,
    pub batch: Option<String>,
    pub currency: String,
    /// Minor units, as issued.
    pub initial_amount: i64,
    /// Minor units left to spend.
    pub balance: i64,
    /// When set, only this customer can spend it.
    pub customer_id: Option<i64>,
    /// Where it is emailed unless the sender names another address.
    pub email: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub active: bool,
    /// When it was last emailed.
    pub sent_at: Option<DateTime<Utc>>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<certificate::Model> for GiftCertificateView {
    fn from(c: certificate::Model) -> Self {
        Self {
            id: c.id,
            code: c.code,
            batch: c.batch,
            currency: c.currency,
            initial_amount: c.initial_amount,
            balance: c.balance,
            customer_id: c.customer_id,
            email: c.email,
            expires_at: c.expires_at,
            active: c.active,
            sent_at: c.sent_at,
            version: c.version,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// One change to a balance.
#[derive(Debug, Serialize, ToSchema)]
pub struct MovementView {
    pub id: i64,
    /// Positive when issued, given back or credited; negative when spent or debited.
    pub delta: i64,
    pub balance_after: i64,
    /// The order that spent it, or that gave it back when cancelled.
    pub order_id: Option<i64>,
    pub reason: String,
    /// The staff member who adjusted or issued it.
    pub staff_id: Option<i64>,
    pub created_at: DateTime<Utc>,
}

impl From<movement::Model> for MovementView {
    fn from(m: movement::Model) -> Self {
        Self {
            id: m.id,
            delta: m.delta,
            balance_after: m.balance_after,
            order_id: m.order_id,
            reason: m.reason,
            staff_id: m.staff_id,
            created_at: m.created_at,
        }
    }
}

/// A certificate with its whole balance history, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct GiftCertificateDetail {
    #[serde(flatten)]
    pub certificate: GiftCertificateView,
    pub movements: Vec<MovementView>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBatch {
    /// 1 to 1000 certificates.
    pub count: u32,
    /// Minor units of the shop currency each certificate is worth, more than 0.
    pub amount: i64,
    pub expires_at: Option<DateTime<Utc>>,
    /// Names the batch for listing and sending it (letters, digits, `-`, `_`); a fresh one
    /// is made up when absent. A label already in use is refused.
    pub batch: Option<String>,
    /// One customer per certificate, in order; each certificate is then theirs alone.
    pub customer_ids: Option<Vec<i64>>,
    /// One recipient per certificate, in order.
    pub emails: Option<Vec<String>>,
}

/// Absent fields stay; `expires_at: null` makes it never expire.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateGiftCertificate {
    pub active: Option<bool>,
    #[serde(default, deserialize_with = "crate::platform::extract::double_option")]
    pub expires_at: Option<Option<DateTime<Utc>>>,
    pub version: Option<i64>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendGiftCertificate {
    /// Defaults to the certificate's email, then to its customer's.
    pub email: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendBatch {
    pub batch: String,
    /// Also send the certificates that were sent before.
    #[serde(default)]
    pub resend: bool,
}

/// A staff correction of a balance.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustBalance {
    /// Minor units; negative takes away. The balance never goes below zero.
    pub delta: i64,
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateSent {
    pub email_id: i64,
    pub to: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchSent {
    pub sent: usize,
    /// Inactive, expired or spent certificates of the batch, left unsent.
    pub skipped: usize,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GiftCertificateFilter {
    pub batch: Option<String>,
    pub active: Option<bool>,
    pub customer_id: Option<i64>,
    /// The start of a code, with or without dashes, in any case.
    pub q: Option<String>,
}

/// What a customer may know about a certificate they hold.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateBalance {
    pub code: String,
    /// Minor units left to spend.
    pub balance: i64,
    pub currency: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub active: bool,
    /// Whether checkout would take it now: active, unexpired, in the shop currency and
    /// not spent.
    pub usable: bool,
}

// ---------------------------------------------------------------------------------------
// Codes
// ---------------------------------------------------------------------------------------

fn group(chars: &[u8]) -> String {
    let mut code = String::with_capacity(chars.len() + chars.len() / 4);
    for (i, c) in chars.iter().enumerate() {
        if i > 0 && i % 4 == 0 {
            code.push('-');
        }
        code.push(char::from(*c));
    }
    code
}

fn new_code(rng: &mut impl Rng) -> String {
    let chars: Vec<u8> = (0..CODE_CHARS)
        .map(|_| CODE_ALPHABET[rng.random_range(0..CODE_ALPHABET.len())])
        .collect();
    group(&chars)
}

/// Upper-case code characters of what a person typed, spaces and dashes dropped; `None`
/// when something else is in it.
fn compact(input: &str) -> Option<Vec<u8>> {
    input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| {
            let c = c.to_ascii_uppercase();
            (c.is_ascii() && CODE_ALPHABET.contains(&(c as u8))).then_some(c as u8)
        })
        .collect()
}

/// The stored form of a typed code: case, spaces and dashes do not matter.
fn normalize_code(input: &str) -> Option<String> {
    compact(input)
        .filter(|chars| chars.len() == CODE_CHARS)
        .map(|chars| group(&chars))
}

/// A batch label for staff who did not name theirs: the time and a random suffix.
fn new_batch_label(now: DateTime<Utc>, rng: &mut impl Rng) -> String {
    let suffix: String = (0..4)
        .map(|_| char::from(CODE_ALPHABET[rng.random_range(0..CODE_ALPHABET.len())]))
        .collect();
    format!("{}-{suffix}", now.format("gc-%Y%m%d-%H%M%S"))
}

// ---------------------------------------------------------------------------------------
// Store
// ---------------------------------------------------------------------------------------

async fn find_by_code(
    db: &impl ConnectionTrait,
    code: &str,
) -> Result<Option<certificate::Model>, DbErr> {
    certificate::Entity::find()
        .filter(certificate::Column::Code.eq(code))
        .one(db)
        .await
}

async fn movements_of(
    db: &impl ConnectionTrait,
    certificate_id: i64,
) -> Result<Vec<movement::Model>, DbErr> {
    movement::Entity::find()
        .filter(movement::Column::CertificateId.eq(certificate_id))
        .order_by_asc(movement::Column::Id)
        .all(db)
        .await
}

fn certificate_query(filter: &GiftCertificateFilter) -> ApiResult<Select<certificate::Entity>> {
    let mut query = certificate::Entity::find();
    if let Some(batch) = &filter.batch {
        query = query.filter(certificate::Column::Batch.eq(batch.trim()));
    }
    if let Some(active) = filter.active {
        query = query.filter(certificate::Column::Active.eq(active));
    }
    if let Some(customer_id) = filter.customer_id {
        query = query.filter(certificate::Column::CustomerId.eq(customer_id));
    }
    if let Some(q) = filter.q.as_deref().filter(|q| !q.trim().is_empty()) {
        let chars = compact(q)
            .filter(|c| c.len() <= CODE_CHARS)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "q: a code has at most 16 letters and digits (no 0, 1, I or O), dashes aside",
                )
            })?;
        // Only code characters and dashes: nothing for LIKE to read as a wildcard.
        query = query.filter(certificate::Column::Code.starts_with(group(&chars)));
    }
    Ok(query)
}

/// `balance += delta` unless that takes it below zero, in one statement so that
/// concurrent changes cannot both pass a check made before either wrote. False when the
/// balance is too low (or there is no such certificate).
async fn change_balance(db: &impl ConnectionTrait, id: i64, delta: i64) -> Result<bool, DbErr> {
    let result = certificate::Entity::update_many()
        .col_expr(
            certificate::Column::Balance,
            Expr::col(certificate::Column::Balance).add(delta),
        )
        .col_expr(
            certificate::Column::Version,
            Expr::col(certificate::Column::Version).add(1),
        )
        .col_expr(certificate::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(certificate::Column::Id.eq(id))
        .filter(certificate::Column::Balance.gte(-delta))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// The balance as this transaction left it; it holds the row's write lock after
/// `change_balance`, so no one else has changed it since.
async fn balance_of(db: &impl ConnectionTrait, id: i64) -> ApiResult<i64> {
    certificate::Entity::find_by_id(id)
        .select_only()
        .column(certificate::Column::Balance)
        .into_tuple::<i64>()
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found(RESOURCE, id))
}

async fn record_movement(
    db: &impl ConnectionTrait,
    certificate_id: i64,
    delta: i64,
    balance_after: i64,
    order_id: Option<i64>,
    reason: &str,
    staff_id: Option<i64>,
) -> Result<movement::Model, DbErr> {
    let now = Utc::now();
    movement::Entity::insert(movement::ActiveModel {
        version: Set(1),
        certificate_id: Set(certificate_id),
        delta: Set(delta),
        balance_after: Set(balance_after),
        order_id: Set(order_id),
        reason: Set(reason.to_owned()),
        staff_id: Set(staff_id),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec_with_returning(db)
    .await
}

/// Stamps `sent_at` on certificates just emailed.
async fn mark_sent(
    db: &impl ConnectionTrait,
    ids: &[i64],
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    if ids.is_empty() {
        return Ok(());
    }
    certificate::Entity::update_many()
        .col_expr(certificate::Column::SentAt, Expr::value(now))
        .col_expr(certificate::Column::UpdatedAt, Expr::value(now))
        .col_expr(
            certificate::Column::Version,
            Expr::col(certificate::Column::Version).add(1),
        )
        .filter(certificate::Column::Id.is_in(ids.iter().copied()))
        .exec(db)
        .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Staff
// ---------------------------------------------------------------------------------------

fn subject(id: i64) -> Option<String> {
    Some(format!("gift_certificate:{id}"))
}

/// Why a certificate cannot be spent (or sent) now, if it cannot.
fn unusable(c: &certificate::Model, now: DateTime<Utc>) -> Option<&'static str> {
    if !c.active {
        Some("is not active")
    } else if c.expires_at.is_some_and(|at| at <= now) {
        Some("has expired")
    } else if c.balance <= 0 {
        Some("has no balance left")
    } else {
        None
    }
}

/// Certificate pages for staff; by id unless `sort` says otherwise.
pub async fn list_certificates(
    state: &AppState,
    list: &ListParams,
    filter: &GiftCertificateFilter,
) -> ApiResult<Page<GiftCertificateView>> {
    let page = list
        .spec(&SORT)?
        .fetch(
            state.db.reader(),
            certificate_query(filter)?,
            certificate::Column::Id,
        )
        .await?;
    Ok(page.map(GiftCertificateView::from))
}

pub async fn get_certificate(state: &AppState, id: i64) -> ApiResult<GiftCertificateDetail> {
    let db = state.db.reader();
    let certificate = find_or_404::<certificate::Entity>(db, id, RESOURCE).await?;
    let movements = movements_of(db, id).await?;
    Ok(GiftCertificateDetail {
        certificate: certificate.into(),
        movements: movements.into_iter().map(MovementView::from).collect(),
    })
}

fn check_batch(input: &CreateBatch, now: DateTime<Utc>) -> ApiResult<()> {
    let count = input.count as usize;
    let mut v = Validator::default();
    v.check(
        (1..=MAX_BATCH).contains(&input.count),
        "count",
        "must be 1 to 1000",
    );
    v.check(
        input.amount > 0 && input.amount <= MAX_AMOUNT,
        "amount",
        "must be more than 0 and at most 1000000000 minor units",
    );
    v.check(
        input.expires_at.is_none_or(|at| at > now),
        "expires_at",
        "must be in the future",
    );
    if let Some(batch) = &input.batch {
        v.code(batch, "batch");
    }
    if let Some(ids) = &input.customer_ids {
        v.check(
            ids.len() == count,
            "customer_ids",
            "must name one customer per certificate",
        );
    }
    if let Some(emails) = &input.emails {
        v.check(
            emails.len() == count,
            "emails",
            "must give one address per certificate",
        );
        for (i, email) in emails.iter().enumerate() {
            v.check(
                email.len() <= 254 && parse_address(email).is_ok(),
                &format!("emails[{i}]"),
                "is not an email address",
            );
        }
    }
    v.finish()
}

/// Issues `count` certificates with fresh codes, each with its `issued` movement, all in
/// one transaction: a batch exists whole or not at all.
pub async fn create_batch(
    state: &AppState,
    actor: &Actor<'_>,
    input: CreateBatch,
) -> ApiResult<Vec<GiftCertificateView>> {
    let now = Utc::now();
    check_batch(&input, now)?;
    // Drawn before the first await: the thread's generator stays on this thread.
    let (label, codes) = {
        let mut rng = rand::rng();
        let label = input
            .batch
            .clone()
            .unwrap_or_else(|| new_batch_label(now, &mut rng));
        let mut codes = BTreeSet::new();
        while codes.len() < input.count as usize {
            codes.insert(new_code(&mut rng));
        }
        (label, codes)
    };
    let batch_taken = || {
        ApiError::conflict(
            "gift-certificate-batch-exists",
            format!("the batch {label} exists already; name the new batch differently"),
        )
    };

    let txn = state.db.begin().await?;
    let existing = certificate::Entity::find()
        .filter(certificate::Column::Batch.eq(&label))
        .count(&txn)
        .await?;
    if existing > 0 {
        return Err(batch_taken());
    }
    if let Some(ids) = &input.customer_ids {
        for id in ids.iter().collect::<BTreeSet<_>>() {
            let live = customers::find_account(&txn, *id)
                .await?
                .is_some_and(|c| c.deleted_at.is_none());
            if !live {
                return Err(ApiError::invalid(
                    "customer_ids",
                    format!("customer {id} does not exist"),
                ));
            }
        }
    }
    let currency = &state.config.shop.currency;
    let staff_id = actor.principal.map(|p| p.staff_id);
    let rows = codes
        .iter()
        .enumerate()
        .map(|(i, code)| certificate::ActiveModel {
            version: Set(1),
            code: Set(code.clone()),
            batch: Set(Some(label.clone())),
            currency: Set(currency.clone()),
            initial_amount: Set(input.amount),
            balance: Set(input.amount),
            customer_id: Set(input.customer_ids.as_ref().map(|ids| ids[i])),
            email: Set(input.emails.as_ref().map(|e| e[i].trim().to_owned())),
            expires_at: Set(input.expires_at),
            active: Set(true),
            sent_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        });
    let mut created = certificate::Entity::insert_many(rows)
        .exec_with_returning(&txn)
        .await
        .map_err(|e| {
            // 80 random bits make this all but impossible; trying again draws new codes.
            ApiError::unique_as(
                e,
                ApiError::conflict(
                    "gift-certificate-code-taken",
                    "a generated code was taken; send the request again",
                ),
            )
        })?;
    created.sort_by_key(|c| c.id);
    movement::Entity::insert_many(created.iter().map(|c| movement::ActiveModel {
        version: Set(1),
        certificate_id: Set(c.id),
        delta: Set(c.initial_amount),
        balance_after: Set(c.balance),
        order_id: Set(None),
        reason: Set(ISSUED.to_owned()),
        staff_id: Set(staff_id),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }))
    .exec(&txn)
    .await?;
    audit(
        &txn,
        actor,
        "gift_certificates_issued",
        None,
        json!({ "batch": label, "count": created.len(), "amount": input.amount,
            "currency": currency }),
    )
    .await?;
    txn.commit().await?;
    Ok(created.into_iter().map(GiftCertificateView::from).collect())
}

/// Switches a certificate on or off, or moves its expiry.
pub async fn update_certificate(
    state: &AppState,
    actor: &Actor<'_>,
    id: i64,
    expected: Expected,
    input: UpdateGiftCertificate,
) -> ApiResult<GiftCertificateView> {
    let txn = state.db.begin().await?;
    let mut changes = certificate::ActiveModel {
        updated_at: Set(Utc::now()),
        ..Default::default()
    };
    if let Some(active) = input.active {
        changes.active = Set(active);
    }
    if let Some(expires_at) = input.expires_at {
        changes.expires_at = Set(expires_at);
    }
    update_versioned(
        &txn,
        changes,
        [certificate::Column::Id, certificate::Column::Version],
        id,
        expected,
        RESOURCE,
    )
    .await?;
    let updated = find_or_404::<certificate::Entity>(&txn, id, RESOURCE).await?;
    audit(
        &txn,
        actor,
        "gift_certificate_updated",
        subject(id),
        json!({ "active": updated.active, "expires_at": updated.expires_at }),
    )
    .await?;
    txn.commit().await?;
    Ok(updated.into())
}

/// The address a certificate goes to: the one given, else its own, else its customer's.
async fn recipient(
    db: &impl ConnectionTrait,
    c: &certificate::Model,
    given: Option<&str>,
) -> ApiResult<Option<String>> {
    if let Some(email) = given.or(c.email.as_deref()) {
        return Ok(Some(email.trim().to_owned()));
    }
    let Some(customer_id) = c.customer_id else {
        return Ok(None);
    };
    Ok(customers::find_account(db, customer_id)
        .await?
        .filter(|account| account.deleted_at.is_none())
        .and_then(|account| account.email))
}

/// Queues the certificate's email on `db` (the caller's transaction).
async fn queue_certificate_email(
    db: &impl ConnectionTrait,
    state: &AppState,
    c: &certificate::Model,
    to: &str,
) -> ApiResult<i64> {
    queue_email(
        db,
        &state.config,
        to,
        "gift_certificate",
        &json!({
            "shop": state.config.shop.name,
            "code": c.code,
            "amount": Money::new(c.balance, c.currency.clone()).to_string(),
            "expires_at": c.expires_at.map(|at| at.format("%Y-%m-%d %H:%M UTC").to_string()),
        }),
    )
    .await
}

/// Emails one certificate's code; an inactive, expired or spent one is refused (409).
pub async fn send_certificate(
    state: &AppState,
    actor: &Actor<'_>,
    id: i64,
    input: SendGiftCertificate,
) -> ApiResult<CertificateSent> {
    if let Some(email) = &input.email {
        let mut v = Validator::default();
        v.check(
            email.len() <= 254 && parse_address(email).is_ok(),
            "email",
            "is not an email address",
        );
        v.finish()?;
    }
    let now = Utc::now();
    let txn = state.db.begin().await?;
    let c = find_or_404::<certificate::Entity>(&txn, id, RESOURCE).await?;
    if let Some(why) = unusable(&c, now) {
        return Err(ApiError::conflict(
            "gift-certificate-unusable",
            format!("gift certificate {id} {why}; there is nothing to send"),
        ));
    }
    let to = recipient(&txn, &c, input.email.as_deref())
        .await?
        .ok_or_else(|| {
            ApiError::conflict(
                "no-email",
                format!(
                    "gift certificate {id} has no email address, nor a customer with one; name one"
                ),
            )
        })?;
    let email_id = queue_certificate_email(&txn, state, &c, &to).await?;
    mark_sent(&txn, &[id], now).await?;
    audit(
        &txn,
        actor,
        "gift_certificate_sent",
        subject(id),
        json!({ "email_id": email_id, "to": to }),
    )
    .await?;
    txn.commit().await?;
    Ok(CertificateSent { email_id, to })
}

/// Emails every usable certificate of a batch (not sent yet, unless `resend`), in one
/// transaction: when one has no address, none is sent.
pub async fn send_batch(
    state: &AppState,
    actor: &Actor<'_>,
    input: SendBatch,
) -> ApiResult<BatchSent> {
    let mut v = Validator::default();
    v.code(&input.batch, "batch");
    v.finish()?;
    let now = Utc::now();
    let txn = state.db.begin().await?;
    let all = certificate::Entity::find()
        .filter(certificate::Column::Batch.eq(&input.batch))
        .order_by_asc(certificate::Column::Id)
        .all(&txn)
        .await?;
    if all.is_empty() {
        return Err(ApiError::not_found("gift certificate batch", &input.batch));
    }
    let due: Vec<&certificate::Model> = all
        .iter()
        .filter(|c| input.resend || c.sent_at.is_none())
        .collect();
    let (usable, unusable_ones): (Vec<_>, Vec<_>) =
        due.into_iter().partition(|c| unusable(c, now).is_none());
    let mut addressed = Vec::with_capacity(usable.len());
    let mut unaddressed = Vec::new();
    for c in usable {
        match recipient(&txn, c, None).await? {
            Some(to) => addressed.push((c, to)),
            None => unaddressed.push(c.code.as_str()),
        }
    }
    if !unaddressed.is_empty() {
        return Err(ApiError::conflict(
            "no-email",
            format!(
                "{} certificate(s) of the batch have no address, e.g. {}; give them an email or a customer first",
                unaddressed.len(),
                unaddressed[0]
            ),
        ));
    }
    let mut sent_ids = Vec::with_capacity(addressed.len());
    for (c, to) in &addressed {
        queue_certificate_email(&txn, state, c, to).await?;
        sent_ids.push(c.id);
    }
    mark_sent(&txn, &sent_ids, now).await?;
    audit(
        &txn,
        actor,
        "gift_certificate_batch_sent",
        None,
        json!({ "batch": input.batch, "sent": sent_ids.len(), "skipped": unusable_ones.len() }),
    )
    .await?;
    txn.commit().await?;
    Ok(BatchSent {
        sent: sent_ids.len(),
        skipped: unusable_ones.len(),
    })
}

/// A staff correction: credits or debits the balance with a movement naming the reason
/// and the staff member. A debit beyond the balance is refused (409).
pub async fn adjust_balance(
    state: &AppState,
    actor: &Actor<'_>,
    id: i64,
    input: AdjustBalance,
) -> ApiResult<MovementView> {
    let mut v = Validator::default();
    v.check(
        input.delta != 0 && input.delta.abs() <= MAX_AMOUNT,
        "delta",
        "must not be 0, and at most 1000000000 minor units either way",
    );
    v.text(&input.reason, "reason", REASON_MAX);
    v.finish()?;
    let txn = state.db.begin().await?;
    let current = find_or_404::<certificate::Entity>(&txn, id, RESOURCE).await?;
    if !change_balance(&txn, id, input.delta).await? {
        return Err(ApiError::conflict(
            "gift-certificate-balance-too-low",
            format!(
                "the balance is {}; it cannot go below zero",
                current.balance
            ),
        ));
    }
    let after = balance_of(&txn, id).await?;
    let staff_id = actor.principal.map(|p| p.staff_id);
    let recorded = record_movement(
        &txn,
        id,
        input.delta,
        after,
        None,
        input.reason.trim(),
        staff_id,
    )
    .await?;
    audit(
        &txn,
        actor,
        "gift_certificate_adjusted",
        subject(id),
        json!({ "delta": input.delta, "balance_after": after, "reason": input.reason.trim() }),
    )
    .await?;
    txn.commit().await?;
    Ok(recorded.into())
}

// ---------------------------------------------------------------------------------------
// Customers and checkout
// ---------------------------------------------------------------------------------------

/// A certificate's balance for a signed-in customer. Someone else's certificate is as
/// unknown as a wrong code (404), so the lookup tells nothing about others' codes.
pub async fn balance_for_customer(
    state: &AppState,
    customer_id: i64,
    code: &str,
) -> ApiResult<CertificateBalance> {
    let missing = || ApiError::not_found(RESOURCE, code);
    let normalized = normalize_code(code).ok_or_else(missing)?;
    let c = find_by_code(state.db.reader(), &normalized)
        .await?
        .filter(|c| c.customer_id.is_none_or(|owner| owner == customer_id))
        .ok_or_else(missing)?;
    let usable = unusable(&c, Utc::now()).is_none() && c.currency == state.config.shop.currency;
    Ok(CertificateBalance {
        code: c.code,
        balance: c.balance,
        currency: c.currency,
        expires_at: c.expires_at,
        active: c.active,
        usable,
    })
}

fn refused(code: &str, why: &str) -> ApiError {
    ApiError::invalid(CHECKOUT_FIELD, format!("gift certificate {code} {why}"))
}

/// Why checkout may not take from the certificate, if it may not.
fn check_redeemable(
    c: &certificate::Model,
    currency: &str,
    customer_id: Option<i64>,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    if c.customer_id
        .is_some_and(|owner| Some(owner) != customer_id)
    {
        return Err(refused(&c.code, "belongs to another customer"));
    }
    if c.currency != currency {
        return Err(refused(
            &c.code,
            &format!("is in {}, the order in {currency}", c.currency),
        ));
    }
    match unusable(c, now) {
        Some(why) => Err(refused(&c.code, why)),
        None => Ok(()),
    }
}

/// Takes up to `amount` from the certificate for `order_id`; returns what was taken. 422
/// (field `gift_certificates`) for unknown, inactive, expired, other-currency or empty
/// certificates; a certificate bound to a customer only works for that customer.
///
/// Runs on the checkout's transaction, after it inserted the order: the order's currency
/// is the one the certificate must be in. Concurrent redemptions of one certificate each
/// take with one conditional update (`balance >= x`) and re-read on losing, so the
/// balance never goes negative and every take has its movement.
pub async fn redeem(
    db: &impl ConnectionTrait,
    code: &str,
    amount: i64,
    order_id: i64,
    customer_id: Option<i64>,
) -> ApiResult<i64> {
    if amount < 0 {
        return Err(ApiError::internal(format!(
            "asked to redeem {amount} from a gift certificate for order {order_id}"
        )));
    }
    let currency: String = order::Entity::find_by_id(order_id)
        .select_only()
        .column(order::Column::Currency)
        .into_tuple()
        .one(db)
        .await?
        .ok_or_else(|| {
            ApiError::internal(format!(
                "gift certificate redeemed for order {order_id}, which does not exist"
            ))
        })?;
    let normalized = normalize_code(code).ok_or_else(|| refused(code.trim(), "does not exist"))?;
    let mut c = find_by_code(db, &normalized)
        .await?
        .ok_or_else(|| refused(&normalized, "does not exist"))?;
    for _ in 0..REDEEM_ATTEMPTS {
        check_redeemable(&c, &currency, customer_id, Utc::now())?;
        if amount == 0 {
            return Ok(0);
        }
        let take = std::cmp::min(amount, c.balance);
        if change_balance(db, c.id, -take).await? {
            let after = balance_of(db, c.id).await?;
            record_movement(db, c.id, -take, after, Some(order_id), REDEEMED, None).await?;
            return Ok(take);
        }
        // Another checkout spent from it since we read it: read it again.
        c = find_or_404::<certificate::Entity>(db, c.id, RESOURCE).await?;
    }
    Err(ApiError::conflict(
        "gift-certificate-busy",
        format!("gift certificate {normalized} is being spent elsewhere; try again"),
    ))
}

/// Gives back everything `order_id` took from certificates (order cancelled); idempotent.
///
/// What is owed is the sum of the order's movements per certificate, read after locking
/// the certificates, so a second restore (even a concurrent one) finds nothing owed.
pub async fn restore_for_order(
    db: &impl ConnectionTrait,
    order_id: i64,
    reason: &str,
) -> ApiResult<()> {
    let certificate_ids: Vec<i64> = movement::Entity::find()
        .select_only()
        .column(movement::Column::CertificateId)
        .distinct()
        .filter(movement::Column::OrderId.eq(order_id))
        .into_tuple()
        .all(db)
        .await?;
    if certificate_ids.is_empty() {
        return Ok(());
    }
    certificate::Entity::find()
        .filter(certificate::Column::Id.is_in(certificate_ids.iter().copied()))
        .order_by_asc(certificate::Column::Id)
        .lock_exclusive()
        .all(db)
        .await?;
    let mut net: BTreeMap<i64, i64> = BTreeMap::new();
    let deltas: Vec<(i64, i64)> = movement::Entity::find()
        .select_only()
        .column(movement::Column::CertificateId)
        .column(movement::Column::Delta)
        .filter(movement::Column::OrderId.eq(order_id))
        .into_tuple()
        .all(db)
        .await?;
    for (certificate_id, delta) in deltas {
        *net.entry(certificate_id).or_default() += delta;
    }
    let reason = reason.trim();
    let reason = if reason.is_empty() {
        "order cancelled"
    } else {
        reason
    };
    for (certificate_id, owed) in net.into_iter().map(|(id, n)| (id, -n)) {
        if owed <= 0 {
            continue;
        }
        if !change_balance(db, certificate_id, owed).await? {
            return Err(ApiError::internal(format!(
                "cannot give {owed} back to gift certificate {certificate_id}"
            )));
        }
        let after = balance_of(db, certificate_id).await?;
        record_movement(
            db,
            certificate_id,
            owed,
            after,
            Some(order_id),
            reason,
            None,
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_grouped_from_the_unambiguous_alphabet() {
        let mut rng = rand::rng();
        let code = new_code(&mut rng);
        assert_eq!(code.len(), 19);
        let parts: Vec<&str> = code.split('-').collect();
        assert_eq!(parts.len(), 4);
        assert!(parts.iter().all(|p| p.len() == 4));
        assert!(
            code.bytes()
                .all(|b| b == b'-' || CODE_ALPHABET.contains(&b))
        );
        assert_ne!(new_code(&mut rng), code);
    }

    #[test]
    fn typed_codes_are_normalised() {
        assert_eq!(
            normalize_code(" abcd efgh-jkmn-pqrs ").as_deref(),
            Some("ABCD-EFGH-JKMN-PQRS")
        );
        assert_eq!(
            normalize_code("ABCDEFGHJKMNPQRS").as_deref(),
            Some("ABCD-EFGH-JKMN-PQRS")
        );
        assert_eq!(normalize_code("ABCD-EFGH-JKMN-PQR"), None, "too short");
        assert_eq!(
            normalize_code("ABCD-EFGH-JKMN-PQR0"),
            None,
            "0 is not a code character"
        );
        assert_eq!(normalize_code("ABCD-EFGH-JKMN-PQR%"), None);
        assert_eq!(normalize_code("ABCD-EFGH-JKMN-PQRÄ"), None);
    }
}
