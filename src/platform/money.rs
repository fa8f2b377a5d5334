//! Money is an integer count of the currency's minor unit (fen, cent): never a float.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An exact amount with its ISO 4217 currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Money {
    /// Minor units, e.g. 1250 = 12.50.
    pub amount: i64,
    pub currency: String,
}

impl Money {
    pub fn new(amount: i64, currency: impl Into<String>) -> Self {
        Self {
            amount,
            currency: currency.into(),
        }
    }
}
