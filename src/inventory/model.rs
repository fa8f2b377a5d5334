//! Types of the inventory domain: movement kinds, the ledger row and stock level as the
//! API shows them, and the admin requests.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::entity::stock_movement;

/// What moved stock; stored as text in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MovementKind {
    /// The stock a SKU was created with (or had when the ledger began).
    Initial,
    /// A correction by staff (a count, a delivery).
    Adjust,
    /// Units promised to an order: reserved up.
    Reserve,
    /// A reservation given back (order cancelled or edited): reserved down.
    Release,
    /// Units that left with an order: on hand and reserved down.
    Ship,
    /// Returned units fit to sell again: on hand up.
    ReturnToStock,
    /// Returned units unfit to sell: damaged up.
    Damaged,
    /// Units lost, stolen or destroyed: on hand down.
    WriteOff,
    /// Units set aside for a flash sale: reserved up (its orders then hold them).
    FlashAllot,
    /// A flash sale's unsold units given back when it ends: reserved down.
    FlashRelease,
}

impl MovementKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Initial => "initial",
            Self::Adjust => "adjust",
            Self::Reserve => "reserve",
            Self::Release => "release",
            Self::Ship => "ship",
            Self::ReturnToStock => "return_to_stock",
            Self::Damaged => "damaged",
            Self::WriteOff => "write_off",
            Self::FlashAllot => "flash_allot",
            Self::FlashRelease => "flash_release",
        }
    }

    /// The kind a stored row names; rows are only written through `as_str`.
    pub fn parse(stored: &str) -> Option<Self> {
        [
            Self::Initial,
            Self::Adjust,
            Self::Reserve,
            Self::Release,
            Self::Ship,
            Self::ReturnToStock,
            Self::Damaged,
            Self::WriteOff,
            Self::FlashAllot,
            Self::FlashRelease,
        ]
        .into_iter()
        .find(|k| k.as_str() == stored)
    }
}

/// The two movements staff make by hand.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AdjustmentKind {
    /// Up or down: a count, a delivery, a correction.
    #[default]
    Adjust,
    /// Down only: units lost, stolen or destroyed.
    WriteOff,
}

impl From<AdjustmentKind> for MovementKind {
    fn from(kind: AdjustmentKind) -> Self {
        match kind {
            AdjustmentKind::Adjust => Self::Adjust,
            AdjustmentKind::WriteOff => Self::WriteOff,
        }
    }
}

/// Who and why, recorded on every ledger row.
#[derive(Debug, Clone, Default)]
pub struct MovementRef {
    pub reason: String,
    pub order_id: Option<i64>,
    pub staff_id: Option<i64>,
    pub customer_id: Option<i64>,
}

impl MovementRef {
    /// A movement a staff member made by hand.
    pub fn staff(staff_id: Option<i64>, reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            staff_id,
            ..Default::default()
        }
    }
}

/// One ledger row: the change and the levels right after it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Movement {
    pub id: i64,
    pub sku_id: i64,
    pub kind: MovementKind,
    pub on_hand_delta: i32,
    pub reserved_delta: i32,
    pub damaged_delta: i32,
    pub on_hand_after: i32,
    pub reserved_after: i32,
    pub damaged_after: i32,
    pub reason: String,
    pub order_id: Option<i64>,
    pub staff_id: Option<i64>,
    pub customer_id: Option<i64>,
    pub created_at: DateTime<Utc>,
}

impl From<stock_movement::Model> for Movement {
    fn from(m: stock_movement::Model) -> Self {
        Self {
            id: m.id,
            sku_id: m.sku_id,
            // Only this domain writes the ledger, always through `MovementKind::as_str`.
            kind: MovementKind::parse(&m.kind).unwrap_or(MovementKind::Adjust),
            on_hand_delta: m.on_hand_delta,
            reserved_delta: m.reserved_delta,
            damaged_delta: m.damaged_delta,
            on_hand_after: m.on_hand_after,
            reserved_after: m.reserved_after,
            damaged_after: m.damaged_after,
            reason: m.reason,
            order_id: m.order_id,
            staff_id: m.staff_id,
            customer_id: m.customer_id,
            created_at: m.created_at,
        }
    }
}

/// A SKU's stock as staff see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StockLevel {
    pub sku_id: i64,
    pub sku_code: String,
    pub product_id: i64,
    pub product_title: String,
    pub product_slug: String,
    pub is_active: bool,
    /// A bundle's SKUs keep no stock of their own: it comes from their parts.
    pub is_bundle: bool,
    pub on_hand: i32,
    /// Promised to orders that have not shipped.
    pub reserved: i32,
    /// `on_hand - reserved`: what checkouts may still take.
    pub available: i32,
    /// Returned units unfit to sell; not part of on hand.
    pub damaged: i32,
    /// Staff are alerted when available falls below it (0: never).
    pub safety_stock: i32,
    /// How many to order when restocking.
    pub reorder_qty: i32,
    /// Never runs out; no levels are kept for orders.
    pub always_available: bool,
    /// Available is below the safety stock.
    pub low_stock: bool,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StockFilter {
    /// `true`: only SKUs whose available stock is below their safety stock.
    pub low_stock: Option<bool>,
    /// `true`: only SKUs with nothing available that are not always available.
    pub out_of_stock: Option<bool>,
    /// Part of the SKU code or product title, in any case.
    pub q: Option<String>,
    pub product_id: Option<i64>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LedgerFilter {
    pub kind: Option<MovementKind>,
    pub order_id: Option<i64>,
    /// Movements at or after this instant (RFC 3339).
    pub created_after: Option<DateTime<Utc>>,
    /// Movements before this instant (RFC 3339).
    pub created_before: Option<DateTime<Utc>>,
}

/// Stock settings; absent fields stay. On hand changes only through adjustments.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateStockSettings {
    pub safety_stock: Option<i32>,
    pub reorder_qty: Option<i32>,
    pub always_available: Option<bool>,
}

/// A change of on hand by staff.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAdjustment {
    /// Units added (positive) or removed (negative); not zero.
    pub delta: i32,
    /// Why: shown in the ledger. At most 500 characters.
    pub reason: String,
    #[serde(default)]
    pub kind: AdjustmentKind,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_stored_names() {
        for kind in [
            MovementKind::Initial,
            MovementKind::ReturnToStock,
            MovementKind::WriteOff,
        ] {
            assert_eq!(MovementKind::parse(kind.as_str()), Some(kind));
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::Value::from(kind.as_str())
            );
        }
        assert_eq!(MovementKind::parse("teleport"), None);
    }
}
