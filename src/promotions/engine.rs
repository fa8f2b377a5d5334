//! The pricing engine: a pure function from a cart snapshot and the promotions that might apply
//! to priced lines, where every saving names the promotion that produced it. No I/O, no clock:
//! the caller passes `now`, the customer's facts and the candidates (entered coupon codes already
//! resolved to their promotions, usage limits already counted).
//!
//! Money is `i64` minor units, percentages are basis points (`1000` = 10%), and every division
//! rounds half up in one place, [`div_round_half_up`].
//!
//! # Semantics
//!
//! 1. **Eligibility.** A candidate outside its half-open window `[starts_at, ends_at)`
//!    (`outside_window`), with `uses_left <= 0` (`usage_limit_reached`), a coupon without an
//!    entered code (`coupon_code_missing`), or a failed membership / first-order condition
//!    (`condition_not_met`) is not applied. Guests hold no membership and never have a first order.
//! 2. **Scope.** `Categories` and `Skus` conditions are a scope: line actions touch only lines that
//!    match any of them (all lines when there is none). A promotion with a scope that matches no
//!    line, or with line actions and an empty cart, is not applied (`no_eligible_lines`).
//!    `MinSubtotal` and `MinQuantity` are measured on the scope, on the amounts the promotion
//!    itself computes on (that is, after earlier promotions, before this one).
//! 3. **Order.** Catalog promotions run first (they change the displayed price), then cart and
//!    coupon promotions together. Within each of these two phases, the `DiscountOnDiscount`
//!    promotions run first, in priority order (lower first, ties by id), each on the amounts left
//!    by the previous ones; then the `Stackable` promotions, each computed on the amounts as they
//!    stood before the stackable group (they do not compound with each other) and summed, clamped
//!    in priority order so that no line goes below zero. The actions of one promotion apply in
//!    their listed order, each on the result of the previous one.
//! 4. **Exclusive.** An `Exclusive` promotion never combines with another one. The engine prices
//!    the cart once with all non-exclusive candidates and once with each exclusive candidate
//!    alone, and keeps the lowest total; ties go to the lower priority value, then the lower id
//!    (the combination counts with its best-ranked applied promotion; an empty combination loses
//!    every tie). Losers are reported as `excluded_by_exclusive` (an exclusive promotion won) or
//!    `exclusive_not_best` (an exclusive promotion lost).
//! 5. **Actions.** `PercentOff` rounds each line half up. `AmountOff` takes at most the scope's
//!    amount and is allocated across scoped lines in proportion to their amounts by largest
//!    remainder, ties to the lower SKU id, so the parts add up exactly. `SpecialPrice` caps each
//!    scoped line at `price * quantity` and never raises it. `BuyXGetYFree` makes `get` of every
//!    `buy + get` scoped units free, cheapest units (by current unit amount) first; fewer than
//!    `buy + get` units is `condition_not_met`. `FreeShipping` takes off whatever shipping is
//!    left (and is reported even when no shipping method is chosen yet). `BonusPoints` and
//!    `GiftCoupon` only report what to credit or issue after payment.
//! 6. **Member-only.** A `MemberOnly` promotion in its window (whatever its usage limit) blocks
//!    its scoped lines for customers, guests included, who hold none of its `MembershipLevels`.
//!    A blocked line keeps its list price, gets no discount, does not count towards any
//!    promotion's conditions, and is listed in [`PricedCart::blocked`]: checkout must refuse while
//!    that list is not empty.
//! 7. **Bounds.** A line's discount never exceeds its subtotal, the shipping discount never exceeds
//!    the shipping fee, so `total = subtotal - discount + shipping - shipping_discount >= 0`.
//!    Negative prices, quantities and fees in the input count as zero; rule values out of range
//!    (which [`PromotionRule::validate`] rejects) are clamped rather than trusted.
//! 8. **Line order.** Lines are processed in a canonical order (by SKU id, then the rest of the
//!    line) and returned in input order, so the result does not depend on the order of the lines
//!    nor of the candidates. Lines of the same SKU are not merged: each is priced on its own, and
//!    identical lines get identical treatment up to allocation remainders.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Basis points in a whole: `10_000` bp = 100%.
pub const FULL_BP: i64 = 10_000;

/// Rounds `numerator / denominator` to the nearest integer, halves up (towards +infinity).
/// The engine's only rounding rule. `denominator` must be positive.
pub fn div_round_half_up(numerator: i128, denominator: i128) -> i64 {
    debug_assert!(denominator > 0);
    let rounded = (2 * numerator + denominator).div_euclid(2 * denominator);
    i64::try_from(rounded).unwrap_or(if rounded < 0 { i64::MIN } else { i64::MAX })
}

// ---------------------------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PromotionKind {
    /// Changes the displayed price; runs before the other kinds.
    Catalog,
    /// Evaluated on the cart.
    Cart,
    /// Needs a code the customer entered.
    Coupon,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Stacking {
    /// Never combines with any other promotion; the engine keeps whichever is best.
    Exclusive,
    /// Computed on the amounts before the stackable group of its phase; savings add up.
    Stackable,
    /// Computed on the amounts left by the promotions before it, in priority order.
    DiscountOnDiscount,
}

/// The conditions and actions of a promotion, stored as JSON in the promotions table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PromotionRule {
    pub conditions: Vec<Condition>,
    pub actions: Vec<Action>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Condition {
    /// The amount of the lines in scope (the whole cart without a scope), before this promotion.
    MinSubtotal { amount: i64 },
    /// Units in scope.
    MinQuantity { quantity: i64 },
    /// Scope: lines whose product is in any of these categories.
    Categories { ids: Vec<i64> },
    /// Scope: lines of these SKUs.
    Skus { ids: Vec<i64> },
    /// The customer holds one of these membership levels.
    MembershipLevels { ids: Vec<i64> },
    /// The customer has no earlier paid order (never met by guests).
    FirstOrder,
}

impl Condition {
    fn type_name(&self) -> &'static str {
        match self {
            Self::MinSubtotal { .. } => "min_subtotal",
            Self::MinQuantity { .. } => "min_quantity",
            Self::Categories { .. } => "categories",
            Self::Skus { .. } => "skus",
            Self::MembershipLevels { .. } => "membership_levels",
            Self::FirstOrder => "first_order",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// `percent_bp` (1..=10000) off each line in scope.
    PercentOff {
        percent_bp: i64,
    },
    /// Off the scope's amount, allocated across scoped lines in proportion to their amounts.
    AmountOff {
        amount: i64,
    },
    /// The unit price of scoped lines becomes `price` (never raised).
    SpecialPrice {
        price: i64,
    },
    /// Points credited after payment.
    BonusPoints {
        points: i64,
    },
    /// A coupon of that promotion is issued after payment.
    GiftCoupon {
        promotion_id: i64,
    },
    FreeShipping,
    /// For every `buy + get` units in scope, the `get` cheapest are free.
    BuyXGetYFree {
        buy: i64,
        get: i64,
    },
    /// Scoped lines may only be bought by holders of the `MembershipLevels` condition's levels.
    MemberOnly,
}

impl Action {
    fn type_name(&self) -> &'static str {
        match self {
            Self::PercentOff { .. } => "percent_off",
            Self::AmountOff { .. } => "amount_off",
            Self::SpecialPrice { .. } => "special_price",
            Self::BonusPoints { .. } => "bonus_points",
            Self::GiftCoupon { .. } => "gift_coupon",
            Self::FreeShipping => "free_shipping",
            Self::BuyXGetYFree { .. } => "buy_x_get_y_free",
            Self::MemberOnly => "member_only",
        }
    }

    /// Whether the action changes line amounts (and so needs lines to act on).
    fn touches_lines(&self) -> bool {
        matches!(
            self,
            Self::PercentOff { .. }
                | Self::AmountOff { .. }
                | Self::SpecialPrice { .. }
                | Self::BuyXGetYFree { .. }
        )
    }
}

impl PromotionRule {
    /// Checks the rule before it is stored. Errors are `(field path, message)` pairs, paths like
    /// `rule.actions[0].percent_bp`.
    pub fn validate(&self) -> Result<(), Vec<(String, String)>> {
        let mut errors: Vec<(String, String)> = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        for (i, condition) in self.conditions.iter().enumerate() {
            let path = format!("rule.conditions[{i}]");
            let name = condition.type_name();
            if seen.contains(&name) {
                errors.push((path.clone(), format!("duplicate {name} condition")));
            }
            seen.push(name);
            match condition {
                Condition::MinSubtotal { amount } if *amount < 0 => {
                    errors.push((format!("{path}.amount"), "must not be negative".into()));
                }
                Condition::MinQuantity { quantity } if *quantity < 1 => {
                    errors.push((format!("{path}.quantity"), "must be at least 1".into()));
                }
                Condition::Categories { ids }
                | Condition::Skus { ids }
                | Condition::MembershipLevels { ids }
                    if ids.is_empty() =>
                {
                    errors.push((format!("{path}.ids"), "must name at least one id".into()));
                }
                _ => {}
            }
        }

        if self.actions.is_empty() {
            errors.push((
                "rule.actions".into(),
                "at least one action is required".into(),
            ));
        }
        let has_levels = self
            .conditions
            .iter()
            .any(|c| matches!(c, Condition::MembershipLevels { .. }));
        let mut seen: Vec<&str> = Vec::new();
        for (i, action) in self.actions.iter().enumerate() {
            let path = format!("rule.actions[{i}]");
            let name = action.type_name();
            let once = matches!(
                action,
                Action::BonusPoints { .. }
                    | Action::GiftCoupon { .. }
                    | Action::FreeShipping
                    | Action::MemberOnly
            );
            if once && seen.contains(&name) {
                errors.push((path.clone(), format!("at most one {name} action")));
            }
            seen.push(name);
            match action {
                Action::PercentOff { percent_bp } if !(1..=FULL_BP).contains(percent_bp) => {
                    errors.push((
                        format!("{path}.percent_bp"),
                        format!("must be between 1 and {FULL_BP} basis points"),
                    ));
                }
                Action::AmountOff { amount } if *amount < 1 => {
                    errors.push((format!("{path}.amount"), "must be positive".into()));
                }
                Action::SpecialPrice { price } if *price < 0 => {
                    errors.push((format!("{path}.price"), "must not be negative".into()));
                }
                Action::BonusPoints { points } if *points < 1 => {
                    errors.push((format!("{path}.points"), "must be positive".into()));
                }
                Action::GiftCoupon { promotion_id } if *promotion_id < 1 => {
                    errors.push((
                        format!("{path}.promotion_id"),
                        "must be a promotion id".into(),
                    ));
                }
                Action::BuyXGetYFree { buy, get } => {
                    if *buy < 1 {
                        errors.push((format!("{path}.buy"), "must be at least 1".into()));
                    }
                    if *get < 1 {
                        errors.push((format!("{path}.get"), "must be at least 1".into()));
                    }
                }
                Action::MemberOnly if !has_levels => {
                    errors.push((
                        path,
                        "member_only needs a membership_levels condition".into(),
                    ));
                }
                _ => {}
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    fn has_scope(&self) -> bool {
        self.conditions
            .iter()
            .any(|c| matches!(c, Condition::Categories { .. } | Condition::Skus { .. }))
    }

    /// Whether the line is in the rule's scope (every line when the rule has no scope).
    fn in_scope(&self, line: &CartLine) -> bool {
        let mut scoped = false;
        for condition in &self.conditions {
            match condition {
                Condition::Categories { ids } => {
                    scoped = true;
                    if line.category_ids.iter().any(|c| ids.contains(c)) {
                        return true;
                    }
                }
                Condition::Skus { ids } => {
                    scoped = true;
                    if ids.contains(&line.sku_id) {
                        return true;
                    }
                }
                _ => {}
            }
        }
        !scoped
    }

    fn membership_level_ids(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self
            .conditions
            .iter()
            .filter_map(|c| match c {
                Condition::MembershipLevels { ids } => Some(ids.iter().copied()),
                _ => None,
            })
            .flatten()
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

// ---------------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartSnapshot {
    pub lines: Vec<CartLine>,
    pub customer: Option<CustomerFacts>,
    /// 0 when no shipping method is chosen yet.
    pub shipping_fee: i64,
    pub now: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartLine {
    pub sku_id: i64,
    pub product_id: i64,
    pub category_ids: Vec<i64>,
    pub unit_price: i64,
    pub quantity: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerFacts {
    pub customer_id: i64,
    pub membership_level_ids: Vec<i64>,
    /// No earlier paid order.
    pub first_order: bool,
}

/// One promotion that might apply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    pub id: i64,
    pub name: String,
    pub kind: PromotionKind,
    pub rule: PromotionRule,
    /// Lower runs first; ties broken by id.
    pub priority: i32,
    pub stacking: Stacking,
    /// Half-open window `[starts_at, ends_at)`.
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    /// The code the customer entered; needed by coupon promotions.
    pub coupon_code: Option<String>,
    /// `min(total limit left, per-customer limit left)`; `Some(0)` is exhausted.
    pub uses_left: Option<i64>,
}

// ---------------------------------------------------------------------------------------------
// Outputs
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct PricedCart {
    /// In input order.
    pub lines: Vec<PricedLine>,
    /// In application order.
    pub applied: Vec<AppliedPromotion>,
    /// Every candidate that did not apply, in evaluation order.
    pub not_applied: Vec<NotApplied>,
    /// Sum of `unit_price * quantity`.
    pub subtotal: i64,
    /// Sum of the line discounts.
    pub discount: i64,
    pub shipping: i64,
    pub shipping_discount: i64,
    /// `subtotal - discount + shipping - shipping_discount`, never negative.
    pub total: i64,
    pub bonus_points: i64,
    pub gift_coupon_promotion_ids: Vec<i64>,
    /// Member-only lines this customer may not buy; checkout refuses while any is listed.
    pub blocked: Vec<BlockedLine>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct PricedLine {
    pub sku_id: i64,
    pub quantity: i64,
    pub unit_price: i64,
    pub subtotal: i64,
    pub discount: i64,
    pub total: i64,
    /// Which promotions took how much off this line, in application order.
    pub savings: Vec<LineSaving>,
    /// A member-only line this customer may not buy (see [`PricedCart::blocked`]).
    pub blocked: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct LineSaving {
    pub promotion_id: i64,
    pub amount: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct AppliedPromotion {
    pub promotion_id: i64,
    pub name: String,
    pub kind: PromotionKind,
    pub stacking: Stacking,
    pub coupon_code: Option<String>,
    /// Line discounts plus shipping discount.
    pub saving: i64,
    pub free_shipping: bool,
    pub bonus_points: i64,
    pub gift_coupon_promotion_id: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotAppliedCode {
    OutsideWindow,
    UsageLimitReached,
    CouponCodeMissing,
    ConditionNotMet,
    NoEligibleLines,
    /// An exclusive promotion gave a lower total.
    ExcludedByExclusive,
    /// This exclusive promotion gave a higher total than the chosen alternative.
    ExclusiveNotBest,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct NotApplied {
    pub promotion_id: i64,
    pub name: String,
    pub kind: PromotionKind,
    pub coupon_code: Option<String>,
    pub code: NotAppliedCode,
    /// Human-readable; amounts in minor units.
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct BlockedLine {
    pub sku_id: i64,
    pub promotion_id: i64,
    pub required_membership_level_ids: Vec<i64>,
    pub reason: String,
}

// ---------------------------------------------------------------------------------------------
// The engine
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Refusal {
    code: NotAppliedCode,
    reason: String,
}

impl Refusal {
    fn new(code: NotAppliedCode, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }
}

/// A line in canonical order, with its input position and sanitised numbers.
struct Line<'a> {
    input: usize,
    source: &'a CartLine,
    quantity: i64,
    subtotal: i64,
    blocked: bool,
}

/// What one promotion does, before it is clamped to what is left.
#[derive(Default)]
struct Effect {
    line_discounts: Vec<(usize, i64)>,
    shipping_discount: i64,
    free_shipping: bool,
    bonus_points: i64,
    gift_coupon_promotion_id: Option<i64>,
}

/// The state of one pricing pass over a set of candidates.
struct Pass {
    amounts: Vec<i64>,
    savings: Vec<Vec<LineSaving>>,
    shipping_left: i64,
    applied: Vec<AppliedPromotion>,
    /// Candidate index (into the sorted candidates) to the reason it did not apply.
    refused: BTreeMap<usize, Refusal>,
}

impl Pass {
    fn total(&self) -> i64 {
        self.amounts
            .iter()
            .fold(self.shipping_left, |sum, a| sum.saturating_add(*a))
    }

    fn apply(&mut self, candidate: &Candidate, effect: Effect) {
        let mut saving = 0i64;
        for (i, discount) in effect.line_discounts {
            let discount = discount.clamp(0, self.amounts[i]);
            if discount > 0 {
                self.amounts[i] -= discount;
                self.savings[i].push(LineSaving {
                    promotion_id: candidate.id,
                    amount: discount,
                });
                saving = saving.saturating_add(discount);
            }
        }
        let shipping = effect.shipping_discount.clamp(0, self.shipping_left);
        self.shipping_left -= shipping;
        saving = saving.saturating_add(shipping);
        self.applied.push(AppliedPromotion {
            promotion_id: candidate.id,
            name: candidate.name.clone(),
            kind: candidate.kind,
            stacking: candidate.stacking,
            coupon_code: candidate.coupon_code.clone(),
            saving,
            free_shipping: effect.free_shipping,
            bonus_points: effect.bonus_points,
            gift_coupon_promotion_id: effect.gift_coupon_promotion_id,
        });
    }
}

fn is_catalog(candidate: &Candidate) -> bool {
    candidate.kind == PromotionKind::Catalog
}

/// Evaluation order: catalog first, then by priority, then by id.
fn candidate_order(a: &Candidate, b: &Candidate) -> Ordering {
    (!is_catalog(a), a.priority, a.id).cmp(&(!is_catalog(b), b.priority, b.id))
}

fn holds_any(customer: Option<&CustomerFacts>, ids: &[i64]) -> bool {
    customer.is_some_and(|c| c.membership_level_ids.iter().any(|l| ids.contains(l)))
}

fn in_window(candidate: &Candidate, now: DateTime<Utc>) -> bool {
    candidate.starts_at.is_none_or(|s| s <= now) && candidate.ends_at.is_none_or(|e| now < e)
}

/// The checks that do not depend on amounts.
fn check_eligible(candidate: &Candidate, cart: &CartSnapshot) -> Result<(), Refusal> {
    use NotAppliedCode::*;
    if !in_window(candidate, cart.now) {
        return Err(Refusal::new(OutsideWindow, "not running at this time"));
    }
    if candidate.uses_left.is_some_and(|n| n <= 0) {
        return Err(Refusal::new(UsageLimitReached, "usage limit reached"));
    }
    if candidate.kind == PromotionKind::Coupon
        && candidate.coupon_code.as_deref().is_none_or(str::is_empty)
    {
        return Err(Refusal::new(CouponCodeMissing, "no coupon code entered"));
    }
    let customer = cart.customer.as_ref();
    for condition in &candidate.rule.conditions {
        match condition {
            Condition::MembershipLevels { ids } if !holds_any(customer, ids) => {
                let reason = if customer.is_none() {
                    "for members only; sign in".to_string()
                } else {
                    format!("for holders of membership levels {ids:?} only")
                };
                return Err(Refusal::new(ConditionNotMet, reason));
            }
            Condition::FirstOrder if !customer.is_some_and(|c| c.first_order) => {
                return Err(Refusal::new(
                    ConditionNotMet,
                    "for a customer's first order only",
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Splits `amount` (at most the sum of `weights`) in proportion to `weights` by largest
/// remainder; equal remainders go to the lower index (the canonical, SKU-id order).
fn allocate(amount: i64, weights: &[i64]) -> Vec<i64> {
    let total: i128 = weights.iter().map(|w| i128::from(*w)).sum();
    if total <= 0 || amount <= 0 {
        return vec![0; weights.len()];
    }
    let amount = i128::from(amount);
    let mut shares: Vec<i64> = Vec::with_capacity(weights.len());
    let mut remainders: Vec<(i128, usize)> = Vec::with_capacity(weights.len());
    for (k, w) in weights.iter().enumerate() {
        let product = amount * i128::from(*w);
        shares.push(i64::try_from(product / total).unwrap_or(i64::MAX));
        remainders.push((product % total, k));
    }
    let given: i128 = shares.iter().map(|s| i128::from(*s)).sum();
    let left = usize::try_from(amount - given).unwrap_or(0);
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(remainder, k) in remainders.iter().take(left) {
        if remainder > 0 {
            shares[k] += 1;
        }
    }
    shares
}

/// What `candidate` would do to `amounts` (canonical order) and `shipping_left`, or why it
/// does not apply.
fn evaluate(
    candidate: &Candidate,
    lines: &[Line],
    amounts: &[i64],
    shipping_left: i64,
) -> Result<Effect, Refusal> {
    use NotAppliedCode::*;
    let rule = &candidate.rule;
    let scope: Vec<usize> = (0..lines.len())
        .filter(|&i| !lines[i].blocked && rule.in_scope(lines[i].source))
        .collect();
    let touches_lines = rule.actions.iter().any(Action::touches_lines);
    if scope.is_empty() && (rule.has_scope() || touches_lines) {
        return Err(Refusal::new(
            NoEligibleLines,
            "no line in the cart qualifies",
        ));
    }
    let scope_amount = scope
        .iter()
        .fold(0i64, |sum, &i| sum.saturating_add(amounts[i]));
    let scope_units = scope
        .iter()
        .fold(0i64, |sum, &i| sum.saturating_add(lines[i].quantity));
    for condition in &rule.conditions {
        match condition {
            Condition::MinSubtotal { amount } if scope_amount < *amount => {
                return Err(Refusal::new(
                    ConditionNotMet,
                    format!("minimum subtotal {amount} not reached ({scope_amount} qualifies)"),
                ));
            }
            Condition::MinQuantity { quantity } if scope_units < *quantity => {
                return Err(Refusal::new(
                    ConditionNotMet,
                    format!("minimum quantity {quantity} not reached ({scope_units} qualify)"),
                ));
            }
            _ => {}
        }
    }

    let mut effect = Effect::default();
    let mut work: Vec<i64> = scope.iter().map(|&i| amounts[i]).collect();
    for action in &rule.actions {
        match action {
            Action::PercentOff { percent_bp } => {
                let bp = i128::from((*percent_bp).clamp(0, FULL_BP));
                for w in work.iter_mut() {
                    *w -= div_round_half_up(i128::from(*w) * bp, i128::from(FULL_BP)).min(*w);
                }
            }
            Action::AmountOff { amount } => {
                let available = work.iter().fold(0i64, |sum, w| sum.saturating_add(*w));
                let shares = allocate((*amount).clamp(0, available), &work);
                for (w, share) in work.iter_mut().zip(shares) {
                    *w -= share.min(*w);
                }
            }
            Action::SpecialPrice { price } => {
                for (w, &i) in work.iter_mut().zip(&scope) {
                    let cap = (*price).max(0).saturating_mul(lines[i].quantity);
                    *w = (*w).min(cap);
                }
            }
            Action::BuyXGetYFree { buy, get } => {
                let group = buy.saturating_add(*get);
                if *buy < 1 || *get < 1 || scope_units < group {
                    return Err(Refusal::new(
                        ConditionNotMet,
                        format!(
                            "buy {buy} get {get} free needs {group} units ({scope_units} qualify)"
                        ),
                    ));
                }
                let mut free = (scope_units / group).saturating_mul(*get);
                // Cheapest unit first: compare w_a / q_a with w_b / q_b without dividing.
                let mut order: Vec<usize> = (0..scope.len())
                    .filter(|&k| lines[scope[k]].quantity > 0)
                    .collect();
                order.sort_by(|&a, &b| {
                    let (qa, qb) = (lines[scope[a]].quantity, lines[scope[b]].quantity);
                    (i128::from(work[a]) * i128::from(qb))
                        .cmp(&(i128::from(work[b]) * i128::from(qa)))
                        .then(a.cmp(&b))
                });
                for k in order {
                    if free == 0 {
                        break;
                    }
                    let quantity = lines[scope[k]].quantity;
                    let take = free.min(quantity);
                    let discount = if take == quantity {
                        work[k]
                    } else {
                        div_round_half_up(
                            i128::from(work[k]) * i128::from(take),
                            i128::from(quantity),
                        )
                    };
                    work[k] -= discount.clamp(0, work[k]);
                    free -= take;
                }
            }
            Action::BonusPoints { points } => {
                effect.bonus_points = effect.bonus_points.saturating_add((*points).max(0));
            }
            Action::GiftCoupon { promotion_id } => {
                effect.gift_coupon_promotion_id = Some(*promotion_id);
            }
            Action::FreeShipping => {
                effect.free_shipping = true;
                effect.shipping_discount = shipping_left;
            }
            Action::MemberOnly => {}
        }
    }
    effect.line_discounts = scope
        .iter()
        .zip(&work)
        .map(|(&i, w)| (i, amounts[i] - w))
        .collect();
    Ok(effect)
}

/// Prices the lines with `candidates` (sorted, already eligible), as one combination.
fn run(lines: &[Line], shipping: i64, candidates: &[(usize, &Candidate)]) -> Pass {
    let mut pass = Pass {
        amounts: lines.iter().map(|l| l.subtotal).collect(),
        savings: vec![Vec::new(); lines.len()],
        shipping_left: shipping,
        applied: Vec::new(),
        refused: BTreeMap::new(),
    };
    for catalog_phase in [true, false] {
        let phase: Vec<(usize, &Candidate)> = candidates
            .iter()
            .copied()
            .filter(|(_, c)| is_catalog(c) == catalog_phase)
            .collect();
        // Compounding first (an exclusive candidate is always alone, so it can go here too) ...
        for &(index, candidate) in phase
            .iter()
            .filter(|(_, c)| c.stacking != Stacking::Stackable)
        {
            match evaluate(candidate, lines, &pass.amounts, pass.shipping_left) {
                Ok(effect) => pass.apply(candidate, effect),
                Err(refusal) => {
                    pass.refused.insert(index, refusal);
                }
            }
        }
        // ... then the stackable group, all on the same base.
        let base = pass.amounts.clone();
        let base_shipping = pass.shipping_left;
        for &(index, candidate) in phase
            .iter()
            .filter(|(_, c)| c.stacking == Stacking::Stackable)
        {
            match evaluate(candidate, lines, &base, base_shipping) {
                Ok(effect) => pass.apply(candidate, effect),
                Err(refusal) => {
                    pass.refused.insert(index, refusal);
                }
            }
        }
    }
    pass
}

/// Prices a cart: see the module documentation for the rules.
pub fn price(cart: &CartSnapshot, candidates: &[Candidate]) -> PricedCart {
    // Canonical line order: by SKU id, then by the rest of the line.
    let mut order: Vec<usize> = (0..cart.lines.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&cart.lines[a], &cart.lines[b]);
        (
            x.sku_id,
            x.product_id,
            x.unit_price,
            x.quantity,
            &x.category_ids,
        )
            .cmp(&(
                y.sku_id,
                y.product_id,
                y.unit_price,
                y.quantity,
                &y.category_ids,
            ))
    });
    let mut lines: Vec<Line> = order
        .iter()
        .map(|&input| {
            let source = &cart.lines[input];
            let quantity = source.quantity.max(0);
            Line {
                input,
                source,
                quantity,
                subtotal: source.unit_price.max(0).saturating_mul(quantity),
                blocked: false,
            }
        })
        .collect();

    let mut sorted: Vec<&Candidate> = candidates.iter().collect();
    sorted.sort_by(|a, b| candidate_order(a, b));

    // Member-only restrictions hold while the promotion runs, whatever its usage limit.
    let customer = cart.customer.as_ref();
    let mut blocked: Vec<BlockedLine> = Vec::new();
    for candidate in &sorted {
        let rule = &candidate.rule;
        if !rule.actions.contains(&Action::MemberOnly) || !in_window(candidate, cart.now) {
            continue;
        }
        let levels = rule.membership_level_ids();
        if holds_any(customer, &levels) {
            continue;
        }
        for line in lines.iter_mut().filter(|l| rule.in_scope(l.source)) {
            line.blocked = true;
            blocked.push(BlockedLine {
                sku_id: line.source.sku_id,
                promotion_id: candidate.id,
                required_membership_level_ids: levels.clone(),
                reason: format!("\"{}\" is for members only", candidate.name),
            });
        }
    }
    blocked.sort_by_key(|b| (b.sku_id, b.promotion_id));
    blocked.dedup();

    let mut refused: BTreeMap<usize, Refusal> = BTreeMap::new();
    let mut combinable: Vec<(usize, &Candidate)> = Vec::new();
    let mut exclusive: Vec<(usize, &Candidate)> = Vec::new();
    for (index, candidate) in sorted.iter().copied().enumerate() {
        match check_eligible(candidate, cart) {
            Err(refusal) => {
                refused.insert(index, refusal);
            }
            Ok(()) if candidate.stacking == Stacking::Exclusive => {
                exclusive.push((index, candidate));
            }
            Ok(()) => combinable.push((index, candidate)),
        }
    }

    let shipping = cart.shipping_fee.max(0);
    let rank = |pass: &Pass| -> (i32, i64) {
        pass.applied
            .iter()
            .filter_map(|a| sorted.iter().find(|c| c.id == a.promotion_id))
            .map(|c| (c.priority, c.id))
            .min()
            .unwrap_or((i32::MAX, i64::MAX))
    };
    let combined = run(&lines, shipping, &combinable);
    let mut best_key = (combined.total(), rank(&combined));
    let mut best = combined;
    let mut winner: Option<usize> = None;
    let mut combined_pass: Option<Pass> = None;
    let mut exclusive_ok: Vec<usize> = Vec::new();
    for &(index, candidate) in &exclusive {
        let alone = run(&lines, shipping, &[(index, candidate)]);
        if let Some(refusal) = alone.refused.get(&index) {
            refused.insert(index, refusal.clone());
            continue;
        }
        exclusive_ok.push(index);
        let key = (alone.total(), (candidate.priority, candidate.id));
        if key < best_key {
            best_key = key;
            let previous = std::mem::replace(&mut best, alone);
            if winner.is_none() {
                combined_pass = Some(previous);
            }
            winner = Some(index);
        }
    }

    // Why every other candidate is not applied.
    match winner {
        None => {
            refused.extend(best.refused.iter().map(|(i, r)| (*i, r.clone())));
            for index in exclusive_ok {
                refused.insert(
                    index,
                    Refusal::new(
                        NotAppliedCode::ExclusiveNotBest,
                        "exclusive; the other promotions give a lower total",
                    ),
                );
            }
        }
        Some(won) => {
            let combined = combined_pass.as_ref().unwrap_or(&best);
            let name = &sorted[won].name;
            let excluded = Refusal::new(
                NotAppliedCode::ExcludedByExclusive,
                format!("the exclusive promotion \"{name}\" gives a lower total"),
            );
            for &(index, _) in &combinable {
                let own = combined.refused.get(&index).cloned();
                refused.insert(index, own.unwrap_or_else(|| excluded.clone()));
            }
            for index in exclusive_ok.into_iter().filter(|&i| i != won) {
                refused.insert(index, excluded.clone());
            }
        }
    }

    let mut priced: Vec<Option<PricedLine>> = vec![None; lines.len()];
    for (k, line) in lines.iter().enumerate() {
        let discount = line.subtotal - best.amounts[k];
        priced[line.input] = Some(PricedLine {
            sku_id: line.source.sku_id,
            quantity: line.quantity,
            unit_price: line.source.unit_price.max(0),
            subtotal: line.subtotal,
            discount,
            total: best.amounts[k],
            savings: std::mem::take(&mut best.savings[k]),
            blocked: line.blocked,
        });
    }
    let lines: Vec<PricedLine> = priced.into_iter().flatten().collect();
    let subtotal = lines.iter().fold(0i64, |s, l| s.saturating_add(l.subtotal));
    let discount = lines.iter().fold(0i64, |s, l| s.saturating_add(l.discount));
    let shipping_discount = shipping - best.shipping_left;
    PricedCart {
        subtotal,
        discount,
        shipping,
        shipping_discount,
        total: (subtotal - discount + shipping - shipping_discount).max(0),
        bonus_points: best
            .applied
            .iter()
            .fold(0i64, |s, a| s.saturating_add(a.bonus_points)),
        gift_coupon_promotion_ids: best
            .applied
            .iter()
            .filter_map(|a| a.gift_coupon_promotion_id)
            .collect(),
        not_applied: refused
            .into_iter()
            .map(|(index, refusal)| {
                let candidate = sorted[index];
                NotApplied {
                    promotion_id: candidate.id,
                    name: candidate.name.clone(),
                    kind: candidate.kind,
                    coupon_code: candidate.coupon_code.clone(),
                    code: refusal.code,
                    reason: refusal.reason,
                }
            })
            .collect(),
        applied: best.applied,
        lines,
        blocked,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};
    use proptest::prelude::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap()
    }

    fn line(sku_id: i64, category_ids: &[i64], unit_price: i64, quantity: i64) -> CartLine {
        CartLine {
            sku_id,
            product_id: sku_id * 10,
            category_ids: category_ids.to_vec(),
            unit_price,
            quantity,
        }
    }

    fn member(levels: &[i64], first_order: bool) -> Option<CustomerFacts> {
        Some(CustomerFacts {
            customer_id: 7,
            membership_level_ids: levels.to_vec(),
            first_order,
        })
    }

    fn cart(lines: Vec<CartLine>) -> CartSnapshot {
        CartSnapshot {
            lines,
            customer: member(&[], false),
            shipping_fee: 0,
            now: now(),
        }
    }

    fn promo(id: i64, conditions: Vec<Condition>, actions: Vec<Action>) -> Candidate {
        Candidate {
            id,
            name: format!("promo {id}"),
            kind: PromotionKind::Cart,
            rule: PromotionRule {
                conditions,
                actions,
            },
            priority: 0,
            stacking: Stacking::Stackable,
            starts_at: None,
            ends_at: None,
            coupon_code: None,
            uses_left: None,
        }
    }

    fn with(mut c: Candidate, edit: impl FnOnce(&mut Candidate)) -> Candidate {
        edit(&mut c);
        c
    }

    fn pct(bp: i64) -> Action {
        Action::PercentOff { percent_bp: bp }
    }

    fn ids_applied(p: &PricedCart) -> Vec<i64> {
        p.applied.iter().map(|a| a.promotion_id).collect()
    }

    fn code_of(p: &PricedCart, id: i64) -> Option<NotAppliedCode> {
        p.not_applied
            .iter()
            .find(|n| n.promotion_id == id)
            .map(|n| n.code)
    }

    /// The invariants every result must hold.
    fn check_invariants(p: &PricedCart, candidates: &[Candidate]) {
        assert!(p.total >= 0);
        let mut sum = 0;
        for l in &p.lines {
            assert!(l.discount >= 0 && l.discount <= l.subtotal, "{l:?}");
            assert_eq!(l.total, l.subtotal - l.discount);
            assert_eq!(l.savings.iter().map(|s| s.amount).sum::<i64>(), l.discount);
            assert!(!l.blocked || l.discount == 0);
            sum += l.discount;
        }
        assert_eq!(sum, p.discount);
        assert_eq!(p.lines.iter().map(|l| l.subtotal).sum::<i64>(), p.subtotal);
        assert!(p.shipping_discount >= 0 && p.shipping_discount <= p.shipping);
        assert_eq!(
            p.total,
            p.subtotal - p.discount + p.shipping - p.shipping_discount
        );
        assert_eq!(
            p.applied.iter().map(|a| a.saving).sum::<i64>(),
            p.discount + p.shipping_discount
        );
        if p.applied.iter().any(|a| a.stacking == Stacking::Exclusive) {
            assert_eq!(
                p.applied.len(),
                1,
                "an exclusive promotion combined: {:?}",
                p.applied
            );
        }
        let mut seen: Vec<i64> = p
            .applied
            .iter()
            .map(|a| a.promotion_id)
            .chain(p.not_applied.iter().map(|n| n.promotion_id))
            .collect();
        seen.sort_unstable();
        let mut expected: Vec<i64> = candidates.iter().map(|c| c.id).collect();
        expected.sort_unstable();
        assert_eq!(
            seen, expected,
            "every candidate is either applied or explained"
        );
    }

    #[test]
    fn rounding_is_half_up() {
        for (num, den, want) in [
            (5, 10, 1),
            (4, 10, 0),
            (15, 10, 2),
            (25, 10, 3),
            (-5, 10, 0),
            (-6, 10, -1),
            (0, 3, 0),
        ] {
            assert_eq!(div_round_half_up(num, den), want, "{num}/{den}");
        }
    }

    #[test]
    fn no_candidates_prices_at_list() {
        let mut c = cart(vec![line(1, &[], 250, 2), line(2, &[], 100, 1)]);
        c.shipping_fee = 500;
        let p = price(&c, &[]);
        assert_eq!(
            (p.subtotal, p.discount, p.shipping, p.total),
            (600, 0, 500, 1100)
        );
        assert!(p.applied.is_empty() && p.not_applied.is_empty());
    }

    #[test]
    fn conditions_met_and_not_met() {
        let c1 = cart(vec![line(1, &[10], 1000, 2), line(2, &[20], 500, 1)]);
        let guest = CartSnapshot {
            customer: None,
            ..c1.clone()
        };
        let gold = CartSnapshot {
            customer: member(&[3], false),
            ..c1.clone()
        };
        let first = CartSnapshot {
            customer: member(&[], true),
            ..c1.clone()
        };
        use Condition::*;
        // (name, cart, conditions, applies, expected discount of a 10% action)
        let table: Vec<(&str, &CartSnapshot, Vec<Condition>, bool, i64)> = vec![
            (
                "min subtotal met",
                &c1,
                vec![MinSubtotal { amount: 2500 }],
                true,
                250,
            ),
            (
                "min subtotal not met",
                &c1,
                vec![MinSubtotal { amount: 2501 }],
                false,
                0,
            ),
            (
                "min subtotal on scope",
                &c1,
                vec![Categories { ids: vec![20] }, MinSubtotal { amount: 600 }],
                false,
                0,
            ),
            (
                "min quantity met",
                &c1,
                vec![MinQuantity { quantity: 3 }],
                true,
                250,
            ),
            (
                "min quantity not met",
                &c1,
                vec![MinQuantity { quantity: 4 }],
                false,
                0,
            ),
            (
                "min quantity on scope",
                &c1,
                vec![Skus { ids: vec![1] }, MinQuantity { quantity: 2 }],
                true,
                200,
            ),
            (
                "category scope",
                &c1,
                vec![Categories { ids: vec![20] }],
                true,
                50,
            ),
            ("sku scope", &c1, vec![Skus { ids: vec![1] }], true, 200),
            (
                "category or sku scope",
                &c1,
                vec![Categories { ids: vec![20] }, Skus { ids: vec![1] }],
                true,
                250,
            ),
            (
                "membership held",
                &gold,
                vec![MembershipLevels { ids: vec![2, 3] }],
                true,
                250,
            ),
            (
                "membership not held",
                &c1,
                vec![MembershipLevels { ids: vec![3] }],
                false,
                0,
            ),
            (
                "membership guest",
                &guest,
                vec![MembershipLevels { ids: vec![3] }],
                false,
                0,
            ),
            ("first order", &first, vec![FirstOrder], true, 250),
            ("not first order", &c1, vec![FirstOrder], false, 0),
            ("first order guest", &guest, vec![FirstOrder], false, 0),
        ];
        for (name, c, conditions, applies, discount) in table {
            let candidates = [promo(1, conditions, vec![pct(1000)])];
            let p = price(c, &candidates);
            check_invariants(&p, &candidates);
            assert_eq!(!p.applied.is_empty(), applies, "{name}");
            assert_eq!(p.discount, discount, "{name}");
            if !applies {
                assert_eq!(
                    code_of(&p, 1),
                    Some(NotAppliedCode::ConditionNotMet),
                    "{name}"
                );
                assert!(!p.not_applied[0].reason.is_empty());
            }
        }
    }

    #[test]
    fn scope_without_matching_lines_is_no_eligible_lines() {
        let c = cart(vec![line(1, &[10], 1000, 1)]);
        for conditions in [
            vec![Condition::Categories { ids: vec![99] }],
            vec![Condition::Skus { ids: vec![99] }],
        ] {
            let p = price(&c, &[promo(1, conditions, vec![Action::FreeShipping])]);
            assert_eq!(code_of(&p, 1), Some(NotAppliedCode::NoEligibleLines));
        }
        let p = price(&cart(vec![]), &[promo(1, vec![], vec![pct(1000)])]);
        assert_eq!(code_of(&p, 1), Some(NotAppliedCode::NoEligibleLines));
    }

    #[test]
    fn min_subtotal_sees_the_price_before_the_promotion() {
        // 1000 list; a 50% DoD promotion runs first, leaving 500: a "min 600" DoD promotion after
        // it does not apply, but a "min 1000" one on the same base does (it is its own threshold).
        let c = cart(vec![line(1, &[], 1000, 1)]);
        let half = with(promo(1, vec![], vec![pct(5000)]), |p| {
            p.stacking = Stacking::DiscountOnDiscount
        });
        let later = with(
            promo(
                2,
                vec![Condition::MinSubtotal { amount: 600 }],
                vec![pct(1000)],
            ),
            |p| {
                p.stacking = Stacking::DiscountOnDiscount;
                p.priority = 1;
            },
        );
        let p = price(&c, &[half.clone(), later]);
        assert_eq!(ids_applied(&p), vec![1]);
        assert_eq!(code_of(&p, 2), Some(NotAppliedCode::ConditionNotMet));
        let own = promo(
            3,
            vec![Condition::MinSubtotal { amount: 1000 }],
            vec![pct(5000)],
        );
        let p = price(&c, &[own]);
        assert_eq!(p.discount, 500);
    }

    #[test]
    fn window_is_half_open() {
        let c = cart(vec![line(1, &[], 1000, 1)]);
        let h = Duration::hours(1);
        let table = [
            (Some(now() + h), None, false),
            (Some(now()), None, true),
            (None, Some(now()), false),
            (None, Some(now() + h), true),
            (Some(now() - h), Some(now() + h), true),
            (Some(now() - h * 2), Some(now() - h), false),
        ];
        for (starts_at, ends_at, applies) in table {
            let p = price(
                &c,
                &[with(promo(1, vec![], vec![pct(1000)]), |p| {
                    p.starts_at = starts_at;
                    p.ends_at = ends_at;
                })],
            );
            assert_eq!(!p.applied.is_empty(), applies, "{starts_at:?}..{ends_at:?}");
            if !applies {
                assert_eq!(code_of(&p, 1), Some(NotAppliedCode::OutsideWindow));
            }
        }
    }

    #[test]
    fn usage_limits_and_coupon_codes() {
        let c = cart(vec![line(1, &[], 1000, 1)]);
        for (uses_left, applies) in [
            (None, true),
            (Some(1), true),
            (Some(0), false),
            (Some(-1), false),
        ] {
            let p = price(
                &c,
                &[with(promo(1, vec![], vec![pct(1000)]), |p| {
                    p.uses_left = uses_left
                })],
            );
            assert_eq!(!p.applied.is_empty(), applies, "{uses_left:?}");
            if !applies {
                assert_eq!(code_of(&p, 1), Some(NotAppliedCode::UsageLimitReached));
            }
        }
        let coupon = with(promo(1, vec![], vec![pct(1000)]), |p| {
            p.kind = PromotionKind::Coupon
        });
        let p = price(&c, std::slice::from_ref(&coupon));
        assert_eq!(code_of(&p, 1), Some(NotAppliedCode::CouponCodeMissing));
        let p = price(
            &c,
            &[with(coupon, |p| p.coupon_code = Some("SUMMER".into()))],
        );
        assert_eq!(p.applied[0].coupon_code.as_deref(), Some("SUMMER"));
        assert_eq!(p.discount, 100);
    }

    #[test]
    fn percent_off_rounds_each_line_half_up() {
        // 10% of 1005 = 100.5 -> 101; 10% of 1004 = 100.4 -> 100.
        let c = cart(vec![line(1, &[], 1005, 1), line(2, &[], 502, 2)]);
        let p = price(&c, &[promo(1, vec![], vec![pct(1000)])]);
        assert_eq!(p.lines[0].discount, 101);
        assert_eq!(p.lines[1].discount, 100);
        assert_eq!(
            p.lines[0].savings,
            vec![LineSaving {
                promotion_id: 1,
                amount: 101
            }]
        );
        let p = price(&c, &[promo(1, vec![], vec![pct(10_000)])]);
        assert_eq!(p.total, 0);
    }

    #[test]
    fn amount_off_allocation_sums_exactly() {
        // 100 over three equal lines: 34 + 33 + 33, the extra unit to the lowest SKU id whatever
        // the line order.
        let lines = vec![
            line(3, &[], 100, 1),
            line(1, &[], 100, 1),
            line(2, &[], 100, 1),
        ];
        let p = price(
            &cart(lines),
            &[promo(1, vec![], vec![Action::AmountOff { amount: 100 }])],
        );
        let by_sku: Vec<(i64, i64)> = p.lines.iter().map(|l| (l.sku_id, l.discount)).collect();
        assert_eq!(by_sku, vec![(3, 33), (1, 34), (2, 33)]);
        assert_eq!(p.discount, 100);
        // Proportional: 1000 off 3000 + 1000 + 1 -> 750 / 250 / 0 (largest remainders).
        let lines = vec![
            line(1, &[], 3000, 1),
            line(2, &[], 1000, 1),
            line(3, &[], 1, 1),
        ];
        let p = price(
            &cart(lines),
            &[promo(1, vec![], vec![Action::AmountOff { amount: 1000 }])],
        );
        assert_eq!(
            p.lines.iter().map(|l| l.discount).collect::<Vec<_>>(),
            vec![750, 250, 0]
        );
        // Never more than the scope's amount, and only on the scope.
        let lines = vec![line(1, &[5], 300, 1), line(2, &[6], 900, 1)];
        let p = price(
            &cart(lines),
            &[promo(
                1,
                vec![Condition::Categories { ids: vec![5] }],
                vec![Action::AmountOff { amount: 1000 }],
            )],
        );
        assert_eq!(
            (p.lines[0].discount, p.lines[1].discount, p.total),
            (300, 0, 900)
        );
    }

    #[test]
    fn amount_off_allocation_table() {
        for (amount, weights, want) in [
            (0, vec![5, 5], vec![0, 0]),
            (10, vec![0, 0], vec![0, 0]),
            (7, vec![3, 3, 3], vec![3, 2, 2]),
            (2, vec![1, 1, 1], vec![1, 1, 0]),
            (5, vec![2, 3], vec![2, 3]),
            (1, vec![1, 3], vec![0, 1]),
        ] {
            let shares = allocate(amount, &weights);
            assert_eq!(shares, want, "{amount} over {weights:?}");
            assert!(shares.iter().zip(&weights).all(|(s, w)| s <= w));
        }
    }

    #[test]
    fn special_price_never_raises() {
        let c = cart(vec![line(1, &[], 1000, 2), line(2, &[], 300, 1)]);
        let p = price(
            &c,
            &[promo(1, vec![], vec![Action::SpecialPrice { price: 500 }])],
        );
        assert_eq!((p.lines[0].discount, p.lines[1].discount), (1000, 0));
        assert_eq!(p.total, 1300);
    }

    #[test]
    fn points_gift_and_free_shipping() {
        let mut c = cart(vec![line(1, &[], 1000, 1)]);
        c.shipping_fee = 800;
        let p = price(
            &c,
            &[promo(
                1,
                vec![],
                vec![
                    Action::BonusPoints { points: 50 },
                    Action::GiftCoupon { promotion_id: 9 },
                    Action::FreeShipping,
                ],
            )],
        );
        assert_eq!(
            (p.bonus_points, p.gift_coupon_promotion_ids.clone()),
            (50, vec![9])
        );
        assert_eq!((p.shipping, p.shipping_discount, p.total), (800, 800, 1000));
        let a = &p.applied[0];
        assert!(a.free_shipping);
        assert_eq!(
            (a.saving, a.bonus_points, a.gift_coupon_promotion_id),
            (800, 50, Some(9))
        );
        // Two free-shipping promotions never take more than the fee.
        let p = price(
            &c,
            &[
                promo(1, vec![], vec![Action::FreeShipping]),
                promo(2, vec![], vec![Action::FreeShipping]),
            ],
        );
        assert_eq!(p.shipping_discount, 800);
        check_invariants(&p, &[promo(1, vec![], vec![]), promo(2, vec![], vec![])]);
    }

    #[test]
    fn buy_x_get_y_makes_the_cheapest_units_free() {
        let buy2get1 = || promo(1, vec![], vec![Action::BuyXGetYFree { buy: 2, get: 1 }]);
        // 3 units: the 300 one is free.
        let p = price(
            &cart(vec![line(1, &[], 500, 2), line(2, &[], 300, 1)]),
            &[buy2get1()],
        );
        assert_eq!((p.lines[0].discount, p.lines[1].discount), (0, 300));
        // 7 units -> 2 free, both from the cheapest line of 4 (2 of 4 units at 100).
        let p = price(
            &cart(vec![line(1, &[], 100, 4), line(2, &[], 900, 3)]),
            &[buy2get1()],
        );
        assert_eq!((p.lines[0].discount, p.lines[1].discount), (200, 0));
        // 6 units over three lines: the two cheapest single units.
        let lines = vec![
            line(1, &[], 50, 1),
            line(2, &[], 70, 1),
            line(3, &[], 10, 1),
            line(4, &[], 60, 3),
        ];
        let p = price(&cart(lines), &[buy2get1()]);
        assert_eq!(
            p.lines.iter().map(|l| l.discount).collect::<Vec<_>>(),
            vec![50, 0, 10, 0]
        );
        // Too few units.
        let p = price(&cart(vec![line(1, &[], 500, 2)]), &[buy2get1()]);
        assert_eq!(code_of(&p, 1), Some(NotAppliedCode::ConditionNotMet));
    }

    #[test]
    fn member_only_lines_are_blocked_for_others() {
        let rule = || {
            promo(
                1,
                vec![
                    Condition::Skus { ids: vec![1] },
                    Condition::MembershipLevels { ids: vec![3] },
                ],
                vec![Action::MemberOnly, pct(2000)],
            )
        };
        let everyone = promo(2, vec![], vec![pct(1000)]);
        let lines = vec![line(1, &[], 1000, 1), line(2, &[], 500, 1)];
        // A member buys it at 20% + 10% (stackable on the same base).
        let c = CartSnapshot {
            customer: member(&[3], false),
            ..cart(lines.clone())
        };
        let p = price(&c, &[rule(), everyone.clone()]);
        assert!(p.blocked.is_empty());
        assert_eq!((p.lines[0].discount, p.lines[1].discount), (300, 50));
        // Others (and guests) may not: the line is blocked, not discounted, not counted.
        for customer in [member(&[4], false), None] {
            let c = CartSnapshot {
                customer,
                ..cart(lines.clone())
            };
            let p = price(&c, &[rule(), everyone.clone()]);
            assert_eq!(p.blocked.len(), 1);
            assert_eq!((p.blocked[0].sku_id, p.blocked[0].promotion_id), (1, 1));
            assert_eq!(p.blocked[0].required_membership_level_ids, vec![3]);
            assert!(p.lines[0].blocked && !p.lines[1].blocked);
            assert_eq!((p.lines[0].discount, p.lines[1].discount), (0, 50));
            assert_eq!(code_of(&p, 1), Some(NotAppliedCode::ConditionNotMet));
            assert_eq!(p.total, 1450);
        }
        // Out of its window it restricts nothing.
        let c = CartSnapshot {
            customer: None,
            ..cart(lines)
        };
        let p = price(&c, &[with(rule(), |p| p.ends_at = Some(now()))]);
        assert!(p.blocked.is_empty());
    }

    #[test]
    fn stackable_promotions_sum_on_the_same_base() {
        let c = cart(vec![line(1, &[], 1000, 1)]);
        let p = price(
            &c,
            &[
                promo(1, vec![], vec![pct(1000)]),
                promo(2, vec![], vec![pct(1000)]),
            ],
        );
        assert_eq!(
            p.applied.iter().map(|a| a.saving).collect::<Vec<_>>(),
            vec![100, 100]
        );
        // Summed savings are clamped, in priority order, to what is left.
        let p = price(
            &c,
            &[
                promo(1, vec![], vec![pct(6000)]),
                with(promo(2, vec![], vec![pct(6000)]), |p| p.priority = -1),
            ],
        );
        assert_eq!(
            p.applied
                .iter()
                .map(|a| (a.promotion_id, a.saving))
                .collect::<Vec<_>>(),
            vec![(2, 600), (1, 400)]
        );
        assert_eq!(p.total, 0);
    }

    #[test]
    fn discount_on_discount_compounds_in_priority_order() {
        let c = cart(vec![line(1, &[], 1000, 1)]);
        let dod = |id, priority, action| {
            with(promo(id, vec![], vec![action]), |p| {
                p.stacking = Stacking::DiscountOnDiscount;
                p.priority = priority;
            })
        };
        let p = price(&c, &[dod(1, 0, pct(1000)), dod(2, 1, pct(1000))]);
        assert_eq!(
            p.applied.iter().map(|a| a.saving).collect::<Vec<_>>(),
            vec![100, 90]
        );
        // Amount off then percent: 1000 - 100 = 900, less 10% = 810; the other way round: 800.
        let p = price(
            &c,
            &[
                dod(1, 0, Action::AmountOff { amount: 100 }),
                dod(2, 1, pct(1000)),
            ],
        );
        assert_eq!(p.total, 810);
        let p = price(
            &c,
            &[
                dod(1, 1, Action::AmountOff { amount: 100 }),
                dod(2, 0, pct(1000)),
            ],
        );
        assert_eq!(p.total, 800);
        assert_eq!(ids_applied(&p), vec![2, 1]);
        // Ties on priority go by id, whatever the candidates' order.
        let p = price(
            &c,
            &[
                dod(2, 0, pct(1000)),
                dod(1, 0, Action::AmountOff { amount: 100 }),
            ],
        );
        assert_eq!((ids_applied(&p), p.total), (vec![1, 2], 810));
    }

    #[test]
    fn discount_on_discount_runs_before_the_stackable_group() {
        let c = cart(vec![line(1, &[], 1000, 1)]);
        let dod = with(promo(1, vec![], vec![pct(5000)]), |p| {
            p.stacking = Stacking::DiscountOnDiscount;
            p.priority = 5;
        });
        let stack = promo(2, vec![], vec![pct(1000)]);
        let p = price(&c, &[stack, dod]);
        assert_eq!(ids_applied(&p), vec![1, 2]);
        assert_eq!(p.total, 450);
    }

    #[test]
    fn catalog_promotions_run_before_cart_promotions() {
        let c = cart(vec![line(1, &[], 1000, 1)]);
        let catalog = with(
            promo(1, vec![], vec![Action::SpecialPrice { price: 700 }]),
            |p| {
                p.kind = PromotionKind::Catalog;
                p.priority = 10;
            },
        );
        let threshold = promo(
            2,
            vec![Condition::MinSubtotal { amount: 800 }],
            vec![Action::AmountOff { amount: 100 }],
        );
        let coupon = with(promo(3, vec![], vec![pct(1000)]), |p| {
            p.kind = PromotionKind::Coupon;
            p.coupon_code = Some("X".into());
            p.stacking = Stacking::DiscountOnDiscount;
        });
        let p = price(&c, &[threshold, coupon, catalog]);
        assert_eq!(ids_applied(&p), vec![1, 3]);
        assert_eq!(code_of(&p, 2), Some(NotAppliedCode::ConditionNotMet));
        assert_eq!(
            p.lines[0].savings,
            vec![
                LineSaving {
                    promotion_id: 1,
                    amount: 300
                },
                LineSaving {
                    promotion_id: 3,
                    amount: 70
                }
            ]
        );
        assert_eq!(p.total, 630);
    }

    #[test]
    fn exclusive_picks_the_best_and_never_combines() {
        let c = cart(vec![line(1, &[], 1000, 1)]);
        let excl = |id, bp, priority| {
            with(promo(id, vec![], vec![pct(bp)]), |p| {
                p.stacking = Stacking::Exclusive;
                p.priority = priority;
            })
        };
        // 25% alone beats 10% + 10%.
        let candidates = [
            promo(1, vec![], vec![pct(1000)]),
            promo(2, vec![], vec![pct(1000)]),
            excl(3, 2500, 5),
        ];
        let p = price(&c, &candidates);
        check_invariants(&p, &candidates);
        assert_eq!((ids_applied(&p), p.total), (vec![3], 750));
        assert_eq!(code_of(&p, 1), Some(NotAppliedCode::ExcludedByExclusive));
        assert_eq!(code_of(&p, 2), Some(NotAppliedCode::ExcludedByExclusive));
        // 15% alone loses to 10% + 10%.
        let candidates = [
            promo(1, vec![], vec![pct(1000)]),
            promo(2, vec![], vec![pct(1000)]),
            excl(3, 1500, 5),
        ];
        let p = price(&c, &candidates);
        assert_eq!((ids_applied(&p), p.total), (vec![1, 2], 800));
        assert_eq!(code_of(&p, 3), Some(NotAppliedCode::ExclusiveNotBest));
        // Two exclusives: the better one; on a tie, the lower priority value, then the lower id.
        let p = price(&c, &[excl(1, 1000, 0), excl(2, 3000, 9)]);
        assert_eq!(ids_applied(&p), vec![2]);
        assert_eq!(code_of(&p, 1), Some(NotAppliedCode::ExcludedByExclusive));
        let p = price(&c, &[excl(1, 2000, 3), excl(2, 2000, 1)]);
        assert_eq!(ids_applied(&p), vec![2]);
        let p = price(&c, &[excl(2, 2000, 1), excl(1, 2000, 1)]);
        assert_eq!(ids_applied(&p), vec![1]);
        // Tie with the combination: the combination's best-ranked promotion counts.
        let p = price(
            &c,
            &[
                with(promo(1, vec![], vec![pct(2000)]), |p| p.priority = 2),
                excl(2, 2000, 1),
            ],
        );
        assert_eq!(ids_applied(&p), vec![2]);
        let p = price(
            &c,
            &[
                with(promo(1, vec![], vec![pct(2000)]), |p| p.priority = 0),
                excl(2, 2000, 1),
            ],
        );
        assert_eq!(ids_applied(&p), vec![1]);
        // An exclusive promotion whose conditions fail keeps its own reason.
        let p = price(
            &c,
            &[with(excl(1, 5000, 0), |p| {
                p.rule
                    .conditions
                    .push(Condition::MinSubtotal { amount: 5000 })
            })],
        );
        assert_eq!(code_of(&p, 1), Some(NotAppliedCode::ConditionNotMet));
        // A losing non-exclusive that never applied keeps its own reason too.
        let p = price(
            &c,
            &[
                promo(1, vec![Condition::FirstOrder], vec![pct(1000)]),
                excl(2, 2000, 0),
            ],
        );
        assert_eq!(code_of(&p, 1), Some(NotAppliedCode::ConditionNotMet));
    }

    #[test]
    fn line_order_does_not_matter() {
        let lines = vec![
            line(2, &[1], 333, 1),
            line(1, &[1], 333, 2),
            line(3, &[1], 334, 1),
        ];
        let candidates = [
            promo(1, vec![], vec![Action::AmountOff { amount: 101 }]),
            promo(2, vec![], vec![Action::BuyXGetYFree { buy: 1, get: 1 }]),
        ];
        let a = price(&cart(lines.clone()), &candidates);
        let mut reversed = lines;
        reversed.reverse();
        let b = price(&cart(reversed), &candidates);
        let mut lb = b.lines.clone();
        lb.reverse();
        assert_eq!(a.lines, lb);
        assert_eq!(
            (a.total, a.applied, a.not_applied),
            (b.total, b.applied, b.not_applied)
        );
    }

    #[test]
    fn duplicate_sku_lines_are_priced_separately() {
        let c = cart(vec![line(1, &[], 100, 1), line(1, &[], 100, 1)]);
        let p = price(
            &c,
            &[promo(1, vec![], vec![Action::AmountOff { amount: 101 }])],
        );
        assert_eq!(
            p.lines.iter().map(|l| l.discount).collect::<Vec<_>>(),
            vec![51, 50]
        );
    }

    #[test]
    fn negative_inputs_count_as_zero() {
        let mut c = cart(vec![line(1, &[], -100, 2), line(2, &[], 100, -3)]);
        c.shipping_fee = -5;
        let p = price(&c, &[promo(1, vec![], vec![pct(1000)])]);
        assert_eq!((p.subtotal, p.shipping, p.total), (0, 0, 0));
    }

    #[test]
    fn rule_json_shape() {
        let rule = PromotionRule {
            conditions: vec![
                Condition::MinSubtotal { amount: 10_000 },
                Condition::FirstOrder,
            ],
            actions: vec![pct(1000), Action::FreeShipping],
        };
        let json = serde_json::to_value(&rule).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "conditions": [{"type": "min_subtotal", "amount": 10000}, {"type": "first_order"}],
                "actions": [{"type": "percent_off", "percent_bp": 1000}, {"type": "free_shipping"}],
            })
        );
        assert_eq!(serde_json::from_value::<PromotionRule>(json).unwrap(), rule);
    }

    #[test]
    fn validate_accepts_sensible_rules() {
        use Action::*;
        use Condition::*;
        let rule = PromotionRule {
            conditions: vec![
                Categories { ids: vec![1] },
                Skus { ids: vec![2] },
                MembershipLevels { ids: vec![3] },
                MinSubtotal { amount: 0 },
                MinQuantity { quantity: 1 },
                FirstOrder,
            ],
            actions: vec![
                PercentOff { percent_bp: 10_000 },
                PercentOff { percent_bp: 1 },
                AmountOff { amount: 1 },
                SpecialPrice { price: 0 },
                BonusPoints { points: 1 },
                GiftCoupon { promotion_id: 4 },
                FreeShipping,
                BuyXGetYFree { buy: 1, get: 1 },
                MemberOnly,
            ],
        };
        assert_eq!(rule.validate(), Ok(()));
    }

    #[test]
    fn validate_rejects_nonsense() {
        use Action::*;
        use Condition::*;
        let ok = || vec![pct(1000)];
        let table: Vec<(Vec<Condition>, Vec<Action>, &str)> = vec![
            (vec![], vec![], "rule.actions"),
            (
                vec![],
                vec![PercentOff { percent_bp: 0 }],
                "rule.actions[0].percent_bp",
            ),
            (
                vec![],
                vec![PercentOff { percent_bp: 10_001 }],
                "rule.actions[0].percent_bp",
            ),
            (
                vec![],
                vec![pct(1), AmountOff { amount: -1 }],
                "rule.actions[1].amount",
            ),
            (
                vec![],
                vec![AmountOff { amount: 0 }],
                "rule.actions[0].amount",
            ),
            (
                vec![],
                vec![SpecialPrice { price: -1 }],
                "rule.actions[0].price",
            ),
            (
                vec![],
                vec![BonusPoints { points: -5 }],
                "rule.actions[0].points",
            ),
            (
                vec![],
                vec![GiftCoupon { promotion_id: 0 }],
                "rule.actions[0].promotion_id",
            ),
            (
                vec![],
                vec![BuyXGetYFree { buy: 0, get: 1 }],
                "rule.actions[0].buy",
            ),
            (
                vec![],
                vec![BuyXGetYFree { buy: 1, get: 0 }],
                "rule.actions[0].get",
            ),
            (vec![], vec![MemberOnly], "rule.actions[0]"),
            (vec![], vec![FreeShipping, FreeShipping], "rule.actions[1]"),
            (
                vec![],
                vec![BonusPoints { points: 1 }, BonusPoints { points: 2 }],
                "rule.actions[1]",
            ),
            (
                vec![MinSubtotal { amount: -1 }],
                ok(),
                "rule.conditions[0].amount",
            ),
            (
                vec![MinQuantity { quantity: 0 }],
                ok(),
                "rule.conditions[0].quantity",
            ),
            (
                vec![Categories { ids: vec![] }],
                ok(),
                "rule.conditions[0].ids",
            ),
            (vec![Skus { ids: vec![] }], ok(), "rule.conditions[0].ids"),
            (
                vec![MembershipLevels { ids: vec![] }],
                ok(),
                "rule.conditions[0].ids",
            ),
            (
                vec![MinSubtotal { amount: 1 }, MinSubtotal { amount: 2 }],
                ok(),
                "rule.conditions[1]",
            ),
            (vec![FirstOrder, FirstOrder], ok(), "rule.conditions[1]"),
            (
                vec![Skus { ids: vec![1] }, Skus { ids: vec![2] }],
                ok(),
                "rule.conditions[1]",
            ),
        ];
        for (conditions, actions, path) in table {
            let rule = PromotionRule {
                conditions,
                actions,
            };
            let errors = rule.validate().expect_err(path);
            assert!(
                errors.iter().any(|(p, m)| p == path && !m.is_empty()),
                "{path}: {errors:?}"
            );
        }
    }

    // ---- property tests ------------------------------------------------------------------

    fn arb_line() -> impl Strategy<Value = CartLine> {
        (
            1i64..8,
            prop::collection::vec(1i64..5, 0..3),
            0i64..20_000,
            1i64..6,
        )
            .prop_map(|(sku, cats, unit_price, quantity)| line(sku, &cats, unit_price, quantity))
    }

    fn arb_condition() -> impl Strategy<Value = Condition> {
        prop_oneof![
            (0i64..60_000).prop_map(|amount| Condition::MinSubtotal { amount }),
            (1i64..8).prop_map(|quantity| Condition::MinQuantity { quantity }),
            prop::collection::vec(1i64..5, 1..3).prop_map(|ids| Condition::Categories { ids }),
            prop::collection::vec(1i64..8, 1..4).prop_map(|ids| Condition::Skus { ids }),
            prop::collection::vec(1i64..4, 1..3)
                .prop_map(|ids| Condition::MembershipLevels { ids }),
            Just(Condition::FirstOrder),
        ]
    }

    fn arb_action() -> impl Strategy<Value = Action> {
        prop_oneof![
            (-100i64..12_000).prop_map(|percent_bp| Action::PercentOff { percent_bp }),
            (-100i64..50_000).prop_map(|amount| Action::AmountOff { amount }),
            (-10i64..20_000).prop_map(|price| Action::SpecialPrice { price }),
            (0i64..500).prop_map(|points| Action::BonusPoints { points }),
            (1i64..50).prop_map(|promotion_id| Action::GiftCoupon { promotion_id }),
            Just(Action::FreeShipping),
            (0i64..4, 0i64..3).prop_map(|(buy, get)| Action::BuyXGetYFree { buy, get }),
            Just(Action::MemberOnly),
        ]
    }

    fn arb_candidate() -> impl Strategy<Value = Candidate> {
        (
            prop::collection::vec(arb_condition(), 0..3),
            prop::collection::vec(arb_action(), 1..3),
            prop_oneof![
                Just(PromotionKind::Catalog),
                Just(PromotionKind::Cart),
                Just(PromotionKind::Coupon)
            ],
            prop_oneof![
                Just(Stacking::Exclusive),
                Just(Stacking::Stackable),
                Just(Stacking::DiscountOnDiscount)
            ],
            -2i32..3,
            prop::option::of(-3i64..3),
            prop::option::of(-3i64..3),
            prop::option::weighted(0.8, Just("CODE".to_string())),
            prop::option::of(0i64..3),
        )
            .prop_map(
                |(conditions, actions, kind, stacking, priority, start, end, code, uses_left)| {
                    Candidate {
                        id: 0,
                        name: String::new(),
                        kind,
                        rule: PromotionRule {
                            conditions,
                            actions,
                        },
                        priority,
                        stacking,
                        starts_at: start.map(|h| now() + Duration::hours(h)),
                        ends_at: end.map(|h| now() + Duration::hours(h)),
                        coupon_code: code,
                        uses_left,
                    }
                },
            )
    }

    fn arb_case() -> impl Strategy<Value = (CartSnapshot, Vec<Candidate>)> {
        (
            prop::collection::vec(arb_line(), 0..7),
            prop::option::of((prop::collection::vec(1i64..4, 0..3), any::<bool>())),
            0i64..2_000,
            prop::collection::vec(arb_candidate(), 0..7),
        )
            .prop_map(|(lines, customer, shipping_fee, mut candidates)| {
                for (i, c) in candidates.iter_mut().enumerate() {
                    c.id = i as i64 + 1;
                    c.name = format!("promo {}", c.id);
                }
                let customer = customer.map(|(levels, first)| CustomerFacts {
                    customer_id: 1,
                    membership_level_ids: levels,
                    first_order: first,
                });
                (
                    CartSnapshot {
                        lines,
                        customer,
                        shipping_fee,
                        now: now(),
                    },
                    candidates,
                )
            })
    }

    /// Per-SKU sums of (quantity, subtotal, discount, total, blocked lines).
    fn per_sku(p: &PricedCart) -> BTreeMap<i64, (i64, i64, i64, i64, usize)> {
        let mut sums = BTreeMap::new();
        for l in &p.lines {
            let e = sums.entry(l.sku_id).or_insert((0, 0, 0, 0, 0));
            e.0 += l.quantity;
            e.1 += l.subtotal;
            e.2 += l.discount;
            e.3 += l.total;
            e.4 += usize::from(l.blocked);
        }
        sums
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn invariants_hold((c, candidates) in arb_case()) {
            let p = price(&c, &candidates);
            check_invariants(&p, &candidates);
            prop_assert_eq!(p.lines.len(), c.lines.len());
            for (priced, input) in p.lines.iter().zip(&c.lines) {
                prop_assert_eq!(priced.sku_id, input.sku_id);
            }
        }

        #[test]
        fn independent_of_line_and_candidate_order(
            (c, candidates, lines, shuffled) in arb_case().prop_flat_map(|(c, candidates)| {
                let lines = c.lines.clone();
                let cands = candidates.clone();
                (Just(c), Just(candidates), Just(lines).prop_shuffle(), Just(cands).prop_shuffle())
            })
        ) {
            let a = price(&c, &candidates);
            let b = price(&CartSnapshot { lines, ..c.clone() }, &shuffled);
            prop_assert_eq!(per_sku(&a), per_sku(&b));
            prop_assert_eq!(
                (a.subtotal, a.discount, a.shipping_discount, a.total, a.bonus_points),
                (b.subtotal, b.discount, b.shipping_discount, b.total, b.bonus_points)
            );
            prop_assert_eq!(&a.applied, &b.applied);
            prop_assert_eq!(&a.not_applied, &b.not_applied);
            prop_assert_eq!(&a.blocked, &b.blocked);
            prop_assert_eq!(&a.gift_coupon_promotion_ids, &b.gift_coupon_promotion_ids);
        }

        #[test]
        fn exclusive_alone_never_beats_the_chosen_result((c, candidates) in arb_case()) {
            // Member-only candidates block lines whether or not they apply, so leaving them out
            // changes the cart: compare only runs that block the same lines.
            let p = price(&c, &candidates);
            for e in candidates.iter().filter(|c| c.stacking == Stacking::Exclusive) {
                let alone = price(&c, std::slice::from_ref(e));
                prop_assert!(alone.blocked != p.blocked || p.total <= alone.total);
            }
            let combinable: Vec<Candidate> =
                candidates.iter().filter(|c| c.stacking != Stacking::Exclusive).cloned().collect();
            let combined = price(&c, &combinable);
            prop_assert!(combined.blocked != p.blocked || p.total <= combined.total);
        }
    }
}
