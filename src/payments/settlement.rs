//! Carrier settlement (R4.4): the monthly statement of what a carrier shipped for us, and
//! the carrier's cash-on-delivery remittance file, which settles the COD orders it pays.
//!
//! **Statement rules.** A month is a calendar month in UTC; a shipment belongs to it when
//! its `shipped_at` falls inside. Order-level money is counted once per order, on the
//! order's *first shipment overall* (earliest `shipped_at`, then lowest id), so a split
//! order shipped across two months or two statements is never counted twice; its later
//! shipments show zeros. On that line:
//! * `shipping_fee` is what the customer was charged for shipping
//!   (`shipping_fee - shipping_discount`);
//! * `cod_due` is the order's `amount_due` when it is cash on delivery, else 0;
//! * `cod_collected` is what remittances settled for the order (lines `matched`), and
//!   `cod_outstanding` what the carrier still owes (never below 0).
//!
//! **Remittance import.** The file is parsed and checked in full first (see [`upload`]);
//! then, in one transaction, every line is matched by tracking number to a shipment of
//! that carrier, and the orders found are settled through
//! [`settle_cod`](super::service::settle_cod). Re-importing a file settles nothing twice:
//! its lines come back `already_settled`.

pub mod export;
pub mod upload;

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, Order, QueryFilter, QueryOrder};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::entity::{remittance, remittance_line};
use super::service::{CodSettlement, settle_cod};
use crate::app::AppState;
use crate::identity::guard::Principal;
use crate::identity::service::{Actor, audit};
use crate::orders::entity::{order, shipment};
use crate::platform::list::{ListParams, Page, SortFields};
use crate::platform::money::minor_digits;
use crate::platform::request::RequestMeta;
use crate::platform::{ApiError, ApiResult};
use crate::system::entity::carrier;
use upload::FileKind;

/// Ids per `IN (...)` list: well inside SQLite's and PostgreSQL's parameter limits.
const CHUNK: usize = 500;

// ---------------------------------------------------------------------------------------
// Amounts
// ---------------------------------------------------------------------------------------

/// Minor units as a plain decimal with the currency's digits: `12850` → `128.50`.
pub fn decimal(amount: i64, digits: u32) -> String {
    let sign = if amount < 0 { "-" } else { "" };
    let units = amount.unsigned_abs();
    if digits == 0 {
        return format!("{sign}{units}");
    }
    let scale = 10u64.pow(digits);
    format!(
        "{sign}{}.{:0width$}",
        units / scale,
        units % scale,
        width = digits as usize
    )
}

/// A decimal in major units (`128.50`, `128.5`, `128`) → minor units; the message says
/// what is wrong otherwise.
pub fn parse_amount(text: &str, digits: u32) -> Result<i64, String> {
    if text.is_empty() {
        return Err("must not be empty".into());
    }
    if text.starts_with('-') {
        return Err("must not be negative".into());
    }
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) {
        return Err(format!(
            "{text:?} is not an amount; write it like 128.50 (a dot, no thousands separators)"
        ));
    }
    if text.contains('.') && fraction.is_empty() {
        return Err(format!("{text:?} ends in a dot"));
    }
    if fraction.len() > digits as usize {
        return Err(format!("has more than {digits} decimal places"));
    }
    let padded = format!("{fraction:0<width$}", width = digits as usize);
    whole
        .parse::<i64>()
        .ok()
        .and_then(|w| w.checked_mul(10i64.pow(digits)))
        .and_then(|w| w.checked_add(padded.parse::<i64>().unwrap_or(0)))
        .filter(|a| *a < 1_000_000_000_000_000)
        .ok_or_else(|| "is too large".into())
}

// ---------------------------------------------------------------------------------------
// Monthly statement
// ---------------------------------------------------------------------------------------

/// How a statement is sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StatementFormat {
    #[default]
    Json,
    Csv,
    Xlsx,
    Pdf,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatementQuery {
    /// `json` (the default), or a download: `csv`, `xlsx` or `pdf`.
    pub format: Option<StatementFormat>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatementCarrier {
    pub id: i64,
    pub code: String,
    pub name: String,
}

/// One shipment the carrier took in the month.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatementLine {
    pub shipment_id: i64,
    pub shipment_number: String,
    pub order_id: i64,
    pub order_number: String,
    pub shipped_at: DateTime<Utc>,
    pub tracking_number: Option<String>,
    pub cash_on_delivery: bool,
    /// Shipping charged on the order, on its first shipment only (minor units).
    pub shipping_fee: i64,
    /// What the carrier collects from the customer, on the order's first shipment only.
    pub cod_due: i64,
    /// Settled by remittances so far.
    pub cod_collected: i64,
    pub cod_outstanding: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct StatementTotals {
    pub shipments: i64,
    pub shipping_fees: i64,
    pub cod_due: i64,
    pub cod_collected: i64,
    pub cod_outstanding: i64,
}

/// A carrier's month: what it shipped, what shipping the customers paid, and where the
/// cash it collected on delivery stands.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Statement {
    pub carrier: StatementCarrier,
    /// `YYYY-MM`, in UTC.
    pub month: String,
    /// The shop's currency; every amount is in its minor unit.
    pub currency: String,
    pub from: DateTime<Utc>,
    /// Exclusive.
    pub to: DateTime<Utc>,
    pub generated_at: DateTime<Utc>,
    pub lines: Vec<StatementLine>,
    pub totals: StatementTotals,
}

impl Statement {
    /// Digits after the decimal point in exports.
    pub fn digits(&self) -> u32 {
        minor_digits(&self.currency)
    }

    /// Download name, e.g. `statement-sf-2026-11.csv` (carrier codes are `[A-Za-z0-9_-]`).
    pub fn file_name(&self, extension: &str) -> String {
        format!("statement-{}-{}.{extension}", self.carrier.code, self.month)
    }
}

/// `YYYY-MM` → the month's first instant and the next month's, in UTC.
pub fn month_bounds(month: &str) -> ApiResult<(DateTime<Utc>, DateTime<Utc>)> {
    let invalid = || ApiError::invalid("month", "a month as YYYY-MM, e.g. 2026-11");
    let bytes = month.as_bytes();
    if bytes.len() != 7 || bytes[4] != b'-' {
        return Err(invalid());
    }
    let year: i32 = month[..4].parse().map_err(|_| invalid())?;
    let number: u32 = month[5..].parse().map_err(|_| invalid())?;
    let start = NaiveDate::from_ymd_opt(year, number, 1).ok_or_else(invalid)?;
    let next = if number == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, number + 1, 1)
    }
    .ok_or_else(invalid)?;
    let at = |d: NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .ok_or_else(invalid)
    };
    Ok((at(start)?, at(next)?))
}

async fn find_carrier(db: &impl ConnectionTrait, id: i64) -> ApiResult<carrier::Model> {
    carrier::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("carrier", id))
}

async fn orders_by_id(
    db: &impl ConnectionTrait,
    ids: &BTreeSet<i64>,
) -> ApiResult<HashMap<i64, order::Model>> {
    let ids: Vec<i64> = ids.iter().copied().collect();
    let mut found = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        for o in order::Entity::find()
            .filter(order::Column::Id.is_in(chunk.iter().copied()))
            .all(db)
            .await?
        {
            found.insert(o.id, o);
        }
    }
    Ok(found)
}

/// The carrier's statement for `month`.
pub async fn statement(state: &AppState, carrier_id: i64, month: &str) -> ApiResult<Statement> {
    let (from, to) = month_bounds(month)?;
    let db = state.db.reader();
    let c = find_carrier(db, carrier_id).await?;
    let shipments = shipment::Entity::find()
        .filter(shipment::Column::CarrierId.eq(carrier_id))
        .filter(shipment::Column::ShippedAt.gte(from))
        .filter(shipment::Column::ShippedAt.lt(to))
        .order_by_asc(shipment::Column::ShippedAt)
        .order_by_asc(shipment::Column::Id)
        .all(db)
        .await?;
    let order_ids: BTreeSet<i64> = shipments.iter().map(|s| s.order_id).collect();
    let orders = orders_by_id(db, &order_ids).await?;

    // Each order's first shipment overall, and what remittances collected for it.
    let ids: Vec<i64> = order_ids.iter().copied().collect();
    let mut first_shipment: HashMap<i64, (DateTime<Utc>, i64)> = HashMap::new();
    let mut collected: HashMap<i64, i64> = HashMap::new();
    for chunk in ids.chunks(CHUNK) {
        let shipped = shipment::Entity::find()
            .filter(shipment::Column::OrderId.is_in(chunk.iter().copied()))
            .filter(shipment::Column::ShippedAt.is_not_null())
            .all(db)
            .await?;
        for s in shipped {
            let Some(at) = s.shipped_at else { continue };
            let entry = first_shipment.entry(s.order_id).or_insert((at, s.id));
            if (at, s.id) < *entry {
                *entry = (at, s.id);
            }
        }
        let settled = remittance_line::Entity::find()
            .filter(remittance_line::Column::OrderId.is_in(chunk.iter().copied()))
            .filter(remittance_line::Column::Status.eq(LineStatus::Matched.as_str()))
            .all(db)
            .await?;
        for line in settled {
            if let Some(order_id) = line.order_id {
                *collected.entry(order_id).or_default() += line.amount;
            }
        }
    }

    let mut totals = StatementTotals::default();
    let mut lines = Vec::with_capacity(shipments.len());
    for s in shipments {
        let (Some(o), Some(shipped_at)) = (orders.get(&s.order_id), s.shipped_at) else {
            continue;
        };
        let first = first_shipment.get(&o.id).map(|f| f.1) == Some(s.id);
        let shipping_fee = if first {
            o.shipping_fee - o.shipping_discount
        } else {
            0
        };
        let cod_due = if first && o.cash_on_delivery {
            o.amount_due
        } else {
            0
        };
        let cod_collected = if first {
            collected.get(&o.id).copied().unwrap_or(0)
        } else {
            0
        };
        let cod_outstanding = (cod_due - cod_collected).max(0);
        totals.shipments += 1;
        totals.shipping_fees += shipping_fee;
        totals.cod_due += cod_due;
        totals.cod_collected += cod_collected;
        totals.cod_outstanding += cod_outstanding;
        lines.push(StatementLine {
            shipment_id: s.id,
            shipment_number: s.number,
            order_id: o.id,
            order_number: o.number.clone(),
            shipped_at,
            tracking_number: s.tracking_number,
            cash_on_delivery: o.cash_on_delivery,
            shipping_fee,
            cod_due,
            cod_collected,
            cod_outstanding,
        });
    }
    Ok(Statement {
        carrier: StatementCarrier {
            id: c.id,
            code: c.code,
            name: c.name,
        },
        month: month.to_owned(),
        currency: state.config.shop.currency.clone(),
        from,
        to,
        generated_at: Utc::now(),
        lines,
        totals,
    })
}

// ---------------------------------------------------------------------------------------
// Remittances
// ---------------------------------------------------------------------------------------

/// What became of one line of a carrier's remittance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LineStatus {
    /// The order was paid by this line.
    Matched,
    /// The order was paid before (an earlier import, or an earlier line of this file).
    AlreadySettled,
    /// The order was prepaid: the carrier should not have collected anything.
    NotCashOnDelivery,
    /// The order is not shipped (or was cancelled): there is nothing to collect yet.
    NotShipped,
    /// The carrier remitted another amount than the order is due; `detail` says both.
    AmountMismatch,
    /// No shipment of this carrier has the tracking number.
    UnknownTracking,
    /// The tracking number is on an earlier row of the same file.
    DuplicateInFile,
}

impl LineStatus {
    const ALL: [Self; 7] = [
        Self::Matched,
        Self::AlreadySettled,
        Self::NotCashOnDelivery,
        Self::NotShipped,
        Self::AmountMismatch,
        Self::UnknownTracking,
        Self::DuplicateInFile,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Matched => "matched",
            Self::AlreadySettled => "already_settled",
            Self::NotCashOnDelivery => "not_cash_on_delivery",
            Self::NotShipped => "not_shipped",
            Self::AmountMismatch => "amount_mismatch",
            Self::UnknownTracking => "unknown_tracking",
            Self::DuplicateInFile => "duplicate_in_file",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }

    /// Lines staff must chase: everything but money that landed where it belongs.
    pub fn is_mismatch(self) -> bool {
        !matches!(self, Self::Matched | Self::AlreadySettled)
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RemittanceView {
    pub id: i64,
    pub carrier_id: i64,
    pub file_name: String,
    /// Who imported it.
    pub staff_id: Option<i64>,
    /// Lines in the file.
    pub rows: i64,
    /// Lines that paid an order.
    pub matched: i64,
    /// Lines that are neither `matched` nor `already_settled`.
    pub mismatched: i64,
    /// Sum of every line's amount: what the carrier says it remitted (minor units).
    pub total_amount: i64,
    pub created_at: DateTime<Utc>,
}

impl From<remittance::Model> for RemittanceView {
    fn from(r: remittance::Model) -> Self {
        Self {
            id: r.id,
            carrier_id: r.carrier_id,
            file_name: r.file_name,
            staff_id: r.staff_id,
            rows: r.rows,
            matched: r.matched,
            mismatched: r.mismatched,
            total_amount: r.total_amount,
            created_at: r.created_at,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RemittanceLineView {
    pub id: i64,
    /// The row in the file (the header is row 1).
    pub line_no: i64,
    pub tracking_number: String,
    /// Minor units.
    pub amount: i64,
    /// The carrier's id of the line, when the file has a `reference` column.
    pub reference: Option<String>,
    pub order_id: Option<i64>,
    pub order_number: Option<String>,
    pub status: LineStatus,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RemittanceDetail {
    #[serde(flatten)]
    pub remittance: RemittanceView,
    pub lines: Vec<RemittanceLineView>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RemittanceFilter {
    pub carrier_id: Option<i64>,
}

const SORT: SortFields<remittance::Column> = SortFields(&[
    ("created_at", remittance::Column::CreatedAt),
    ("total_amount", remittance::Column::TotalAmount),
    ("mismatched", remittance::Column::Mismatched),
]);

const LINE_SORT: SortFields<remittance_line::Column> = SortFields(&[
    ("line_no", remittance_line::Column::LineNo),
    ("amount", remittance_line::Column::Amount),
    ("status", remittance_line::Column::Status),
]);

/// An uploaded remittance file.
pub struct RemittanceFile {
    pub name: String,
    pub kind: FileKind,
    pub bytes: Vec<u8>,
}

/// Imports a carrier's remittance: every line recorded with its outcome, and the COD
/// orders it pays settled, all in one transaction.
pub async fn import(
    state: &AppState,
    carrier_id: i64,
    file: RemittanceFile,
    staff: &Principal,
    meta: &RequestMeta,
) -> ApiResult<RemittanceDetail> {
    let c = find_carrier(state.db.reader(), carrier_id).await?;
    let digits = minor_digits(&state.config.shop.currency);
    let rows = upload::parse(file.kind, &file.bytes, digits)?;

    let txn = state.db.begin().await?;
    // Tracking number → the carrier's shipment (the oldest, should one be reused).
    let tracking: BTreeSet<&str> = rows.iter().map(|r| r.tracking_number.as_str()).collect();
    let tracking: Vec<&str> = tracking.into_iter().collect();
    let mut shipments: HashMap<String, shipment::Model> = HashMap::new();
    for chunk in tracking.chunks(CHUNK) {
        for s in shipment::Entity::find()
            .filter(shipment::Column::CarrierId.eq(carrier_id))
            .filter(shipment::Column::TrackingNumber.is_in(chunk.iter().copied()))
            .order_by_desc(shipment::Column::Id)
            .all(&txn)
            .await?
        {
            if let Some(number) = s.tracking_number.clone() {
                shipments.insert(number, s);
            }
        }
    }
    let order_ids: BTreeSet<i64> = shipments.values().map(|s| s.order_id).collect();
    let orders = orders_by_id(&txn, &order_ids).await?;

    let mut first_row: HashMap<&str, i64> = HashMap::new();
    let mut outcomes = Vec::with_capacity(rows.len());
    for row in &rows {
        let number = row.tracking_number.as_str();
        let outcome = if let Some(first) = first_row.get(number) {
            (
                None,
                LineStatus::DuplicateInFile,
                Some(format!("the same tracking number is on row {first}")),
            )
        } else if let Some(o) = shipments.get(number).and_then(|s| orders.get(&s.order_id)) {
            let reference = row
                .reference
                .clone()
                .unwrap_or_else(|| format!("{}:{number}", c.code));
            let settled =
                settle_cod(&txn, o.id, row.amount, &reference, Some(staff.staff_id)).await?;
            let (status, detail) = describe(settled, o, row.amount, digits);
            (Some(o.id), status, Some(detail))
        } else {
            (
                None,
                LineStatus::UnknownTracking,
                Some(format!(
                    "no shipment by {} has this tracking number",
                    c.name
                )),
            )
        };
        first_row.entry(number).or_insert(row.row);
        outcomes.push(outcome);
    }

    let matched = outcomes
        .iter()
        .filter(|o| o.1 == LineStatus::Matched)
        .count() as i64;
    let mismatched = outcomes.iter().filter(|o| o.1.is_mismatch()).count() as i64;
    let total_amount: i64 = rows.iter().map(|r| r.amount).sum();
    let now = Utc::now();
    let r = remittance::Entity::insert(remittance::ActiveModel {
        created_at: Set(now),
        updated_at: Set(now),
        carrier_id: Set(carrier_id),
        file_name: Set(file.name.clone()),
        staff_id: Set(Some(staff.staff_id)),
        rows: Set(rows.len() as i64),
        matched: Set(matched),
        mismatched: Set(mismatched),
        total_amount: Set(total_amount),
        ..Default::default()
    })
    .exec_with_returning(&txn)
    .await?;
    let lines: Vec<remittance_line::ActiveModel> = rows
        .iter()
        .zip(outcomes)
        .map(
            |(row, (order_id, status, detail))| remittance_line::ActiveModel {
                remittance_id: Set(r.id),
                line_no: Set(row.row),
                tracking_number: Set(row.tracking_number.clone()),
                amount: Set(row.amount),
                reference: Set(row.reference.clone()),
                order_id: Set(order_id),
                status: Set(status.as_str().to_owned()),
                detail: Set(detail),
                ..Default::default()
            },
        )
        .collect();
    for chunk in lines.chunks(CHUNK) {
        remittance_line::Entity::insert_many(chunk.to_vec())
            .exec(&txn)
            .await?;
    }
    audit(
        &txn,
        &Actor::staff(staff, meta),
        "payment.cod_remittance_imported",
        Some(format!("cod_remittance:{}", r.id)),
        json!({
            "carrier": c.code,
            "file_name": file.name,
            "rows": r.rows,
            "matched": matched,
            "mismatched": mismatched,
            "total_amount": total_amount,
        }),
    )
    .await?;
    let detail = detail_of(&txn, r).await?;
    txn.commit().await?;
    Ok(detail)
}

/// A line's status and the sentence staff read.
fn describe(
    settled: CodSettlement,
    o: &order::Model,
    amount: i64,
    digits: u32,
) -> (LineStatus, String) {
    let number = &o.number;
    match settled {
        CodSettlement::Paid { .. } => (LineStatus::Matched, format!("order {number} is paid")),
        CodSettlement::AlreadySettled => (
            LineStatus::AlreadySettled,
            format!("order {number} was already paid"),
        ),
        CodSettlement::NotCashOnDelivery => (
            LineStatus::NotCashOnDelivery,
            format!("order {number} is not paid on delivery"),
        ),
        CodSettlement::NotShipped { status } => (
            LineStatus::NotShipped,
            format!("order {number} is not shipped ({status})"),
        ),
        CodSettlement::AmountMismatch { expected } => (
            LineStatus::AmountMismatch,
            format!(
                "order {number}: expected {}, got {}",
                decimal(expected, digits),
                decimal(amount, digits)
            ),
        ),
    }
}

fn line_view(
    line: remittance_line::Model,
    numbers: &HashMap<i64, String>,
) -> ApiResult<RemittanceLineView> {
    let status = LineStatus::parse(&line.status)
        .ok_or_else(|| ApiError::internal(format!("unknown line status {}", line.status)))?;
    Ok(RemittanceLineView {
        id: line.id,
        line_no: line.line_no,
        tracking_number: line.tracking_number,
        amount: line.amount,
        reference: line.reference,
        order_number: line.order_id.and_then(|id| numbers.get(&id).cloned()),
        order_id: line.order_id,
        status,
        detail: line.detail,
    })
}

async fn line_views(
    db: &impl ConnectionTrait,
    lines: Vec<remittance_line::Model>,
) -> ApiResult<Vec<RemittanceLineView>> {
    let ids: BTreeSet<i64> = lines.iter().filter_map(|l| l.order_id).collect();
    let numbers: HashMap<i64, String> = orders_by_id(db, &ids)
        .await?
        .into_iter()
        .map(|(id, o)| (id, o.number))
        .collect();
    lines.into_iter().map(|l| line_view(l, &numbers)).collect()
}

async fn detail_of(db: &impl ConnectionTrait, r: remittance::Model) -> ApiResult<RemittanceDetail> {
    let lines = remittance_line::Entity::find()
        .filter(remittance_line::Column::RemittanceId.eq(r.id))
        .order_by_asc(remittance_line::Column::LineNo)
        .all(db)
        .await?;
    Ok(RemittanceDetail {
        remittance: r.into(),
        lines: line_views(db, lines).await?,
    })
}

async fn find_remittance(db: &impl ConnectionTrait, id: i64) -> ApiResult<remittance::Model> {
    remittance::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("COD remittance", id))
}

/// Remittances, newest first unless sorted otherwise.
pub async fn list(
    state: &AppState,
    params: &ListParams,
    filter: &RemittanceFilter,
) -> ApiResult<Page<RemittanceView>> {
    let mut spec = params.spec(&SORT)?;
    if spec.order.is_empty() {
        spec.order
            .push((remittance::Column::CreatedAt, Order::Desc));
    }
    let mut query = remittance::Entity::find();
    if let Some(carrier_id) = filter.carrier_id {
        query = query.filter(remittance::Column::CarrierId.eq(carrier_id));
    }
    let page = spec
        .fetch(state.db.reader(), query, remittance::Column::Id)
        .await?;
    Ok(page.map(RemittanceView::from))
}

/// A remittance with all its lines, in file order.
pub async fn detail(state: &AppState, id: i64) -> ApiResult<RemittanceDetail> {
    let db = state.db.reader();
    let r = find_remittance(db, id).await?;
    detail_of(db, r).await
}

/// The remittance's lines staff must chase, in file order unless sorted otherwise.
pub async fn mismatches(
    state: &AppState,
    id: i64,
    params: &ListParams,
) -> ApiResult<Page<RemittanceLineView>> {
    let db = state.db.reader();
    find_remittance(db, id).await?;
    let spec = params.spec(&LINE_SORT)?;
    let settled = [LineStatus::Matched, LineStatus::AlreadySettled].map(LineStatus::as_str);
    let query = remittance_line::Entity::find()
        .filter(remittance_line::Column::RemittanceId.eq(id))
        .filter(remittance_line::Column::Status.is_not_in(settled));
    let page = spec
        .fetch(db, query, remittance_line::Column::LineNo)
        .await?;
    let items = line_views(db, page.items).await?;
    Ok(Page {
        items,
        total: page.total,
        page: page.page,
        per_page: page.per_page,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_round_trip_through_decimals() {
        assert_eq!(decimal(12850, 2), "128.50");
        assert_eq!(decimal(5, 2), "0.05");
        assert_eq!(decimal(-1999, 2), "-19.99");
        assert_eq!(decimal(500, 0), "500");
        assert_eq!(parse_amount("128.50", 2), Ok(12850));
        assert_eq!(parse_amount("128.5", 2), Ok(12850));
        assert_eq!(parse_amount("128", 2), Ok(12800));
        assert_eq!(parse_amount("0.05", 2), Ok(5));
        for bad in [
            "",
            "abc",
            "1,280.50",
            "12.345",
            "-1",
            "1.",
            ".5",
            "1e3",
            "99999999999999999999",
        ] {
            assert!(parse_amount(bad, 2).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn months_are_calendar_months_in_utc() {
        let (from, to) = month_bounds("2026-12").unwrap();
        assert_eq!(from.to_rfc3339(), "2026-12-01T00:00:00+00:00");
        assert_eq!(to.to_rfc3339(), "2027-01-01T00:00:00+00:00");
        for bad in [
            "2026-13",
            "2026-1",
            "26-11",
            "2026/11",
            "2026-11-01",
            "abcd-ef",
        ] {
            assert!(month_bounds(bad).is_err(), "{bad}");
        }
    }
}
