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

/// Digits after the decimal point in `currency`'s minor unit (ISO 4217): none for yen or
/// won, three for the dinars, two for the rest.
pub fn minor_digits(currency: &str) -> u32 {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        _ => 2,
    }
}

/// `CNY 12.50`: for people (emails, documents); the API itself always sends minor units.
impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let digits = minor_digits(&self.currency);
        let sign = if self.amount < 0 { "-" } else { "" };
        let units = self.amount.unsigned_abs();
        if digits == 0 {
            return write!(f, "{} {sign}{units}", self.currency);
        }
        let scale = 10u64.pow(digits);
        write!(
            f,
            "{} {sign}{}.{:0width$}",
            self.currency,
            units / scale,
            units % scale,
            width = digits as usize
        )
    }
}

#[cfg(test)]
mod tests {
    use super::Money;

    #[test]
    fn shows_minor_units_in_the_currency_s_own_precision() {
        assert_eq!(Money::new(1250, "CNY").to_string(), "CNY 12.50");
        assert_eq!(Money::new(5, "USD").to_string(), "USD 0.05");
        assert_eq!(Money::new(-1999, "EUR").to_string(), "EUR -19.99");
        assert_eq!(Money::new(500, "JPY").to_string(), "JPY 500");
        assert_eq!(Money::new(1500, "KWD").to_string(), "KWD 1.500");
    }
}
