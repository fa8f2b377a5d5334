//! The gate: every purchase attempt is decided by one atomic script in the key-value
//! store (a Lua script run by EVALSHA on Redis, the same steps natively in process), before
//! any database work. It checks the window, the customer's count and the stock, takes the
//! units, and appends the accepted purchase to the sale's stream, all at once, so two
//! instances can never sell the same unit and a refused customer costs one round trip.
//!
//! Keys of sale `E` share the hash tag `{E}` (one Redis Cluster slot):
//! `flash:{E}:meta` (`start_ms end_ms limit rebuilt`), `:stock` (units left), `:accepted`
//! and `:returned` (units ever taken and given back), `:bought:<customer>`,
//! `:key:<customer>:<idempotency key>` (purchase id), `:purchase:<id>` (`customer qty`),
//! `:returned:<purchase>` (a give-back marker) and `:stream`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;

use super::entity::flash_sale;
use crate::platform::cache::{KeyValue, Keyspace, Script, ScriptValue};

/// The consumer group that turns accepted purchases into orders.
pub const GROUP: &str = "orders";

/// Gate keys outlive the sale by this much, for polls, retries and the checker.
const KEEP_AFTER_END_MS: i64 = 7 * 24 * 3600 * 1000;

pub fn key(sale_id: i64, suffix: &str) -> String {
    format!("flash:{{{sale_id}}}:{suffix}")
}

pub fn stream(sale_id: i64) -> String {
    key(sale_id, "stream")
}

/// A new purchase id; it names its sale so a poll finds the gate keys.
pub fn new_purchase_id(sale_id: i64) -> String {
    format!("{sale_id}-{}", ulid::Ulid::generate())
}

/// The sale a purchase id belongs to.
pub fn sale_of(purchase_id: &str) -> Option<i64> {
    purchase_id.split_once('-')?.0.parse().ok()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// What the gate answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Accepted {
        purchase_id: String,
        remaining: i64,
    },
    /// The same idempotency key again: the first answer's purchase.
    Replayed {
        purchase_id: String,
        remaining: i64,
    },
    SoldOut {
        remaining: i64,
    },
    LimitReached,
    NotStarted,
    Ended,
    /// The gate holds nothing for this sale (never primed, or the store was emptied).
    Unknown,
}

/// Inputs: KEYS meta, stock, bought, key, stream, accepted, purchase; ARGV customer,
/// quantity, purchase id. Answers `{code, purchase id, remaining}`.
pub static PURCHASE: Script = Script {
    name: "flash_purchase",
    lua: r#"
local meta = redis.call('GET', KEYS[1])
if not meta then return {0, '', 0} end
local s, e, limit = string.match(meta, '^(%d+) (%d+) (%d+)')
s = tonumber(s); e = tonumber(e); limit = tonumber(limit)
local stock = tonumber(redis.call('GET', KEYS[2]) or '0')
local prior = redis.call('GET', KEYS[4])
if prior then return {2, prior, stock} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now < s then return {-3, '', stock} end
if now >= e then return {-4, '', stock} end
local qty = tonumber(ARGV[2])
if stock < qty then return {-1, '', stock} end
local bought = tonumber(redis.call('GET', KEYS[3]) or '0')
if bought + qty > limit then return {-2, '', stock} end
local keep = e - now + 604800000
redis.call('DECRBY', KEYS[2], qty)
redis.call('SET', KEYS[3], bought + qty, 'PX', keep)
redis.call('SET', KEYS[4], ARGV[3], 'PX', keep)
redis.call('SET', KEYS[7], ARGV[1] .. ' ' .. ARGV[2], 'PX', keep)
redis.call('INCRBY', KEYS[6], qty)
redis.call('XADD', KEYS[5], '*', 'purchase', ARGV[3], 'customer', ARGV[1], 'quantity', ARGV[2])
return {1, ARGV[3], stock - qty}
"#,
    native: purchase_native,
};

fn purchase_native(ks: &mut Keyspace<'_>, keys: &[String], args: &[String]) -> ScriptValue {
    let answer = |code: i64, id: &str, stock: i64| {
        ScriptValue::List(vec![
            ScriptValue::Int(code),
            ScriptValue::Text(id.to_owned()),
            ScriptValue::Int(stock),
        ])
    };
    let int = |ks: &mut Keyspace<'_>, key: &str| -> i64 {
        ks.get(key)
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let Some(meta) = ks.get(&keys[0]).and_then(|v| String::from_utf8(v).ok()) else {
        return answer(0, "", 0);
    };
    let Some(Meta {
        start, end, limit, ..
    }) = Meta::parse(&meta)
    else {
        return ScriptValue::Error("flash sale meta is malformed".into());
    };
    let stock = int(ks, &keys[1]);
    if let Some(prior) = ks.get(&keys[3]) {
        return answer(2, &String::from_utf8_lossy(&prior), stock);
    }
    let now = now_ms();
    if now < start {
        return answer(-3, "", stock);
    }
    if now >= end {
        return answer(-4, "", stock);
    }
    let qty: i64 = args[1].parse().unwrap_or(i64::MAX);
    if stock < qty {
        return answer(-1, "", stock);
    }
    let bought = int(ks, &keys[2]);
    if bought + qty > limit {
        return answer(-2, "", stock);
    }
    let keep = Some(Duration::from_millis(
        (end - now + KEEP_AFTER_END_MS) as u64,
    ));
    ks.increment(&keys[1], -qty);
    ks.set(&keys[2], (bought + qty).to_string().into_bytes(), keep);
    ks.set(&keys[3], args[2].clone().into_bytes(), keep);
    ks.set(
        &keys[6],
        format!("{} {}", args[0], args[1]).into_bytes(),
        keep,
    );
    ks.increment(&keys[5], qty);
    ks.stream_add(
        &keys[4],
        vec![
            ("purchase".into(), args[2].clone()),
            ("customer".into(), args[0].clone()),
            ("quantity".into(), args[1].clone()),
        ],
    );
    answer(1, &args[2], stock - qty)
}

/// Asks the gate for `quantity` units for `customer`.
pub async fn purchase(
    kv: &dyn KeyValue,
    sale_id: i64,
    customer_id: i64,
    quantity: i64,
    idempotency_key: &str,
) -> anyhow::Result<Decision> {
    let purchase_id = new_purchase_id(sale_id);
    let keys = [
        key(sale_id, "meta"),
        key(sale_id, "stock"),
        key(sale_id, &format!("bought:{customer_id}")),
        key(sale_id, &format!("key:{customer_id}:{idempotency_key}")),
        stream(sale_id),
        key(sale_id, "accepted"),
        key(sale_id, &format!("purchase:{purchase_id}")),
    ];
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let args = [customer_id.to_string(), quantity.to_string(), purchase_id];
    let reply = kv.eval(&PURCHASE, &keys, &args).await?;
    let ScriptValue::List(items) = reply else {
        anyhow::bail!("the flash-sale gate answered {reply:?}");
    };
    let code = items.first().and_then(ScriptValue::as_int);
    let id = match items.get(1) {
        Some(ScriptValue::Text(id)) => id.clone(),
        _ => String::new(),
    };
    let remaining = items.get(2).and_then(ScriptValue::as_int).unwrap_or(0);
    Ok(match code {
        Some(1) => Decision::Accepted {
            purchase_id: id,
            remaining,
        },
        Some(2) => Decision::Replayed {
            purchase_id: id,
            remaining,
        },
        Some(-1) => Decision::SoldOut { remaining },
        Some(-2) => Decision::LimitReached,
        Some(-3) => Decision::NotStarted,
        Some(-4) => Decision::Ended,
        Some(0) => Decision::Unknown,
        _ => anyhow::bail!("the flash-sale gate answered {items:?}"),
    })
}

/// The window and limit as the gate holds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Meta {
    start: i64,
    end: i64,
    limit: i64,
    /// Rebuilt from the database (the store had lost the sale), so the stream lacks the
    /// purchases made before.
    rebuilt: bool,
}

impl Meta {
    fn of(sale: &flash_sale::Model, rebuilt: bool) -> Self {
        Self {
            start: sale.starts_at.timestamp_millis(),
            end: sale.ends_at.timestamp_millis(),
            limit: sale.per_customer_limit,
            rebuilt,
        }
    }

    fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split(' ').map(str::parse::<i64>);
        Some(Self {
            start: parts.next()?.ok()?,
            end: parts.next()?.ok()?,
            limit: parts.next()?.ok()?,
            rebuilt: parts.next().and_then(Result::ok) == Some(1),
        })
    }

    fn render(&self) -> String {
        format!(
            "{} {} {} {}",
            self.start,
            self.end,
            self.limit,
            u8::from(self.rebuilt)
        )
    }
}

/// What the database says the gate should hold, used when it holds nothing.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    /// Units taken by purchases still holding them (ordered, or being given back).
    pub holding: i64,
    /// Units of every purchase ever recorded.
    pub accepted: i64,
    /// Units given back to the gate.
    pub returned: i64,
    /// Per customer, the units they hold.
    pub bought: Vec<(i64, i64)>,
}

/// Inputs: KEYS meta, stock, accepted, returned, bought keys…; ARGV meta, stock,
/// accepted, returned, force, ttl ms, bought counts…. Sets everything when the gate is
/// empty (or `force` and nothing was ever taken), else only the window and limit.
pub static PRIME: Script = Script {
    name: "flash_prime",
    lua: r#"
local ttl = tonumber(ARGV[6])
local old = redis.call('GET', KEYS[1])
if old then
  local taken = tonumber(redis.call('GET', KEYS[3]) or '0')
  if not (ARGV[5] == '1' and taken == 0) then
    local rebuilt = string.match(old, ' (%d+)$') or '0'
    local meta = string.gsub(ARGV[1], '%d+$', rebuilt)
    redis.call('SET', KEYS[1], meta, 'PX', ttl)
    for i = 2, 4 do redis.call('PEXPIRE', KEYS[i], ttl) end
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
redis.call('SET', KEYS[2], ARGV[2], 'PX', ttl)
redis.call('SET', KEYS[3], ARGV[3], 'PX', ttl)
redis.call('SET', KEYS[4], ARGV[4], 'PX', ttl)
for i = 5, #KEYS do redis.call('SET', KEYS[i], ARGV[i + 2], 'PX', ttl) end
return 1
"#,
    native: prime_native,
};

fn prime_native(ks: &mut Keyspace<'_>, keys: &[String], args: &[String]) -> ScriptValue {
    let ttl = Some(Duration::from_millis(args[5].parse().unwrap_or(1)));
    if let Some(old) = ks.get(&keys[0]).and_then(|v| String::from_utf8(v).ok()) {
        let taken: i64 = ks
            .get(&keys[2])
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if !(args[4] == "1" && taken == 0) {
            let (Some(old), Some(new)) = (Meta::parse(&old), Meta::parse(&args[0])) else {
                return ScriptValue::Error("flash sale meta is malformed".into());
            };
            let meta = Meta {
                rebuilt: old.rebuilt,
                ..new
            };
            ks.set(&keys[0], meta.render().into_bytes(), ttl);
            for key in &keys[1..4] {
                if let Some(ttl) = ttl {
                    ks.expire(key, ttl);
                }
            }
            return ScriptValue::Int(0);
        }
    }
    for (key, value) in keys[..4].iter().zip(&args[..4]) {
        ks.set(key, value.clone().into_bytes(), ttl);
    }
    for (key, value) in keys[4..].iter().zip(&args[6..]) {
        ks.set(key, value.clone().into_bytes(), ttl);
    }
    ScriptValue::Int(1)
}

/// Loads the sale into the gate. `force` replaces the stock (a sale edited before any
/// sale); without it an existing gate keeps its counts and only takes the new window and
/// limit. `ledger` is what the database knows, for a gate that lost the sale.
pub async fn prime(
    kv: &dyn KeyValue,
    sale: &flash_sale::Model,
    ledger: &Ledger,
    force: bool,
) -> anyhow::Result<bool> {
    let rebuilt = ledger.accepted > 0;
    let mut keys = vec![
        key(sale.id, "meta"),
        key(sale.id, "stock"),
        key(sale.id, "accepted"),
        key(sale.id, "returned"),
    ];
    let ttl = (sale.ends_at.timestamp_millis() - now_ms()).max(0) + KEEP_AFTER_END_MS;
    let mut args = vec![
        Meta::of(sale, rebuilt).render(),
        (sale.stock - ledger.holding).to_string(),
        ledger.accepted.to_string(),
        ledger.returned.to_string(),
        if force { "1" } else { "0" }.to_owned(),
        ttl.to_string(),
    ];
    for (customer, units) in &ledger.bought {
        keys.push(key(sale.id, &format!("bought:{customer}")));
        args.push(units.to_string());
    }
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let reply = kv.eval(&PRIME, &keys, &args).await?;
    Ok(reply.as_int() == Some(1))
}

/// Inputs: KEYS meta, stock, bought, marker, returned; ARGV quantity, ttl ms. Gives a
/// purchase's units back once (the marker), lowering the customer's count. Answers 1
/// when given back, 0 when it had been, -1 when the gate holds nothing.
pub static GIVE_BACK: Script = Script {
    name: "flash_give_back",
    lua: r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if not redis.call('SET', KEYS[4], '1', 'NX', 'PX', ARGV[2]) then return 0 end
redis.call('INCRBY', KEYS[2], ARGV[1])
redis.call('DECRBY', KEYS[3], ARGV[1])
redis.call('INCRBY', KEYS[5], ARGV[1])
return 1
"#,
    native: |ks, keys, args| {
        if !ks.exists(&keys[0]) {
            return ScriptValue::Int(-1);
        }
        if ks.exists(&keys[3]) {
            return ScriptValue::Int(0);
        }
        let ttl = Duration::from_millis(args[1].parse().unwrap_or(1));
        ks.set(&keys[3], b"1".to_vec(), Some(ttl));
        let qty: i64 = args[0].parse().unwrap_or(0);
        ks.increment(&keys[1], qty);
        ks.increment(&keys[2], -qty);
        ks.increment(&keys[4], qty);
        ScriptValue::Int(1)
    },
};

/// Puts a cancelled purchase's units back on sale; `None` when the gate must be primed
/// first.
pub async fn give_back(
    kv: &dyn KeyValue,
    sale: &flash_sale::Model,
    purchase_id: &str,
    customer_id: i64,
    quantity: i64,
) -> anyhow::Result<Option<bool>> {
    let keys = [
        key(sale.id, "meta"),
        key(sale.id, "stock"),
        key(sale.id, &format!("bought:{customer_id}")),
        key(sale.id, &format!("returned:{purchase_id}")),
        key(sale.id, "returned"),
    ];
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let ttl = (sale.ends_at.timestamp_millis() - now_ms()).max(0) + KEEP_AFTER_END_MS;
    let reply = kv
        .eval(&GIVE_BACK, &keys, &[quantity.to_string(), ttl.to_string()])
        .await?;
    Ok(match reply.as_int() {
        Some(-1) => None,
        other => Some(other == Some(1)),
    })
}

/// The gate's counters for one sale.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Snapshot {
    pub remaining: i64,
    pub accepted: i64,
    pub returned: i64,
    /// The gate was rebuilt from the database, so the stream lacks earlier purchases.
    pub rebuilt: bool,
}

async fn int(kv: &dyn KeyValue, key: &str) -> anyhow::Result<i64> {
    Ok(match kv.get(key).await? {
        Some(v) => String::from_utf8(v)
            .ok()
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("{key} is not a number"))?,
        None => 0,
    })
}

/// Reads the gate's counters; `None` when it holds nothing for the sale.
pub async fn snapshot(kv: &dyn KeyValue, sale_id: i64) -> anyhow::Result<Option<Snapshot>> {
    let Some(meta) = kv.get(&key(sale_id, "meta")).await? else {
        return Ok(None);
    };
    let rebuilt = Meta::parse(&String::from_utf8_lossy(&meta)).is_some_and(|m| m.rebuilt);
    Ok(Some(Snapshot {
        remaining: int(kv, &key(sale_id, "stock")).await?,
        accepted: int(kv, &key(sale_id, "accepted")).await?,
        returned: int(kv, &key(sale_id, "returned")).await?,
        rebuilt,
    }))
}

/// Units the gate counts as bought by a customer.
pub async fn bought(kv: &dyn KeyValue, sale_id: i64, customer_id: i64) -> anyhow::Result<i64> {
    int(kv, &key(sale_id, &format!("bought:{customer_id}"))).await
}

/// A purchase the gate accepted, as its record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub customer_id: i64,
    pub quantity: i64,
    /// Set once the order is made, so polls of pending purchases need no database.
    pub order_number: Option<String>,
}

/// The gate's record of a purchase, if it has one.
pub async fn record(kv: &dyn KeyValue, purchase_id: &str) -> anyhow::Result<Option<Record>> {
    let Some(sale_id) = sale_of(purchase_id) else {
        return Ok(None);
    };
    let Some(value) = kv
        .get(&key(sale_id, &format!("purchase:{purchase_id}")))
        .await?
    else {
        return Ok(None);
    };
    let value = String::from_utf8_lossy(&value);
    let mut parts = value.split(' ');
    let (Some(customer), Some(qty)) = (parts.next(), parts.next()) else {
        anyhow::bail!("malformed purchase record {value:?}");
    };
    Ok(Some(Record {
        customer_id: customer.parse()?,
        quantity: qty.parse()?,
        order_number: parts.next().map(str::to_owned),
    }))
}

/// Notes the order a purchase became in its record.
pub async fn note_order(
    kv: &dyn KeyValue,
    sale: &flash_sale::Model,
    purchase_id: &str,
    record: &Record,
) -> anyhow::Result<()> {
    let ttl = (sale.ends_at.timestamp_millis() - now_ms()).max(0) + KEEP_AFTER_END_MS;
    let value = format!(
        "{} {} {}",
        record.customer_id,
        record.quantity,
        record.order_number.as_deref().unwrap_or_default()
    );
    kv.set(
        &key(sale.id, &format!("purchase:{purchase_id}")),
        value.trim_end().as_bytes(),
        Some(Duration::from_millis(ttl as u64)),
    )
    .await
}

/// When the gate accepted a purchase (its id is a ULID).
pub fn accepted_at(purchase_id: &str) -> Option<SystemTime> {
    let (_, ulid) = purchase_id.split_once('-')?;
    ulid::Ulid::from_string(ulid).ok().map(|u| u.datetime())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_round_trips() {
        let meta = Meta {
            start: 1,
            end: 2,
            limit: 3,
            rebuilt: true,
        };
        assert_eq!(Meta::parse(&meta.render()), Some(meta));
        assert_eq!(sale_of(&new_purchase_id(42)), Some(42));
    }
}
