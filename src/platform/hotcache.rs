//! A read-through cache for hot keyed documents (product detail, category tree), built to
//! survive the three classic cache failures (R10.11):
//!
//! - avalanche: entries live `ttl` plus a random share of `jitter`, so entries filled
//!   together do not expire together;
//! - penetration: misses are cached too, and a Bloom filter of the existing keys turns a
//!   flood of unknown keys away before it reaches the database;
//! - breakdown: concurrent reads of one cold key in a process share one loader call.
//!
//! Everything instances must agree on lives in the key-value store, so one process (the
//! in-process store) and many (Redis) behave alike:
//!
//! | key | holds |
//! | --- | --- |
//! | `hot:{name}:e:{key}` | the entry: the stamp it was loaded under, then the value or a miss marker |
//! | `hot:{name}:v:{key}`, `hot:{name}:gen` | the key's version and the cache-wide generation; the stamp is `gen.version` |
//! | `hot:{name}:bloom:{bits}x{hashes}` | the Bloom filter, a bitmap (`:lock`, `:next`, `:upload:*` while rebuilding) |
//!
//! Only the single-flight table is per process, so hold one `HotCache` per application
//! (a field of `App`), not in a `static`: test processes run many applications on
//! different stores, and a shared table would hand one application another's load.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use axum::body::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::cache::{KeyValue, Keyspace, Script, ScriptValue, bit_position};

/// How long entries live and how the Bloom filter is sized.
#[derive(Debug, Clone)]
pub struct HotCacheSettings {
    pub ttl: Duration,
    /// Each entry lives `ttl` plus a random share of this, so a cold start does not turn
    /// into a synchronised expiry ten minutes later.
    pub jitter: Duration,
    /// Cached misses live shorter: they only have to absorb a burst. They are spread by the
    /// same proportion as values (`jitter / ttl`).
    pub miss_ttl: Duration,
    /// The number of keys the filter is sized for; beyond it false positives (reads that
    /// reach the loader for nothing) grow, but nothing is ever wrongly rejected.
    pub expected_keys: u64,
    /// The false positive rate at `expected_keys`.
    pub false_positive_rate: f64,
}

impl Default for HotCacheSettings {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(600),
            jitter: Duration::from_secs(120),
            miss_ttl: Duration::from_secs(30),
            expected_keys: 1_000_000,
            false_positive_rate: 0.01,
        }
    }
}

/// The outcome of a Bloom filter build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BloomBuild {
    /// A new filter of `keys` keys (plus those added while it was built) is in place.
    Built { keys: usize },
    /// `ensure_bloom` found a filter already in place.
    Present,
    /// Another instance is building one now; its filter will do.
    Busy,
}

/// What a loader produced, shared with the callers waiting on it; hence `E: Clone` in
/// `get_or_load`.
type Loaded<E> = Result<Option<Bytes>, E>;

/// A hot-read cache of keyed documents; see the module documentation. `E` is the loader's
/// error type, which every caller sharing a failed load receives a clone of.
pub struct HotCache<E> {
    name: &'static str,
    ttl: Duration,
    jitter: Duration,
    miss_ttl: Duration,
    miss_jitter: Duration,
    bloom: Bloom,
    /// Loads under way in this process, by key and the stamp their lookup saw.
    flights: Mutex<HashMap<FlightKey, watch::Receiver<Option<Loaded<E>>>>>,
}

/// A load is shared only by callers that saw the same stamp: a read that starts after an
/// invalidation must not receive the result of a load that started before it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FlightKey {
    key: String,
    /// `None` when the store could not be asked: such a load is not cached.
    stamp: Option<String>,
}

/// Entry layout after the stamp line: a tag byte, then the value.
const VALUE: u8 = b'+';
const MISS: u8 = b'-';

/// How long a Bloom filter build may take before another instance may start one.
const BUILD_LOCK_TTL: Duration = Duration::from_secs(600);

impl<E> HotCache<E> {
    /// One per cache and application, held by the application (see the module
    /// documentation); `name` keeps caches apart in the store and in metrics.
    pub fn new(name: &'static str, settings: HotCacheSettings) -> Self {
        let share = if settings.ttl.is_zero() {
            0.0
        } else {
            settings.jitter.as_secs_f64() / settings.ttl.as_secs_f64()
        };
        Self {
            name,
            ttl: settings.ttl,
            jitter: settings.jitter,
            miss_ttl: settings.miss_ttl,
            miss_jitter: settings.miss_ttl.mul_f64(share),
            bloom: Bloom::for_keys(settings.expected_keys, settings.false_positive_rate),
            flights: Mutex::default(),
        }
    }

    /// The document under `key`: from the cache in one store round trip, else from `load`.
    /// `Ok(None)` means there is no such document: the Bloom filter ruled it out, or a
    /// recent load found nothing. A failing store is logged and bypassed: reads then go to
    /// the loader (still one per key and process) instead of failing.
    pub async fn get_or_load<F, Fut>(&self, kv: &dyn KeyValue, key: &str, load: F) -> Loaded<E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<Vec<u8>>, E>>,
        E: Clone,
    {
        let stamp = match self.lookup(kv, key).await {
            Ok(Lookup::Absent) => {
                self.count("rejected");
                return Ok(None);
            }
            Ok(Lookup::Found { cached, stamp }) => match cached {
                Some(Cached::Value(bytes)) => {
                    self.count("hit");
                    return Ok(Some(bytes));
                }
                Some(Cached::Miss) => {
                    self.count("negative_hit");
                    return Ok(None);
                }
                None => Some(stamp),
            },
            Err(err) => {
                tracing::warn!(
                    error = format!("{err:#}"),
                    cache = self.name,
                    "cache lookup failed; loading directly"
                );
                None
            }
        };
        self.count("miss");
        let flight = FlightKey {
            key: key.to_owned(),
            stamp,
        };
        loop {
            match self.join_or_lead(&flight) {
                Role::Follow(mut rx) => {
                    let loaded = rx
                        .wait_for(Option::is_some)
                        .await
                        .ok()
                        .and_then(|v| (*v).clone());
                    if let Some(loaded) = loaded {
                        return loaded;
                    }
                    // The leading call was dropped (its client went away): take over.
                }
                Role::Lead(lead) => return self.lead(kv, lead, load).await,
            }
        }
    }

    /// Call after a write that changed the document under `key` has committed: readers
    /// that start afterwards load afresh, and neither join nor read what a load that began
    /// before the write produces.
    /// Errors are logged, like `CachedDocument::invalidate`: the write has happened.
    pub async fn invalidate(&self, kv: &dyn KeyValue, key: &str) {
        if let Err(err) = kv.increment(&self.version_key(key), 1, None).await {
            tracing::error!(error = %err, cache = self.name, key, "cannot invalidate a cached document");
        }
    }

    /// Invalidates every key at once, for writes that change many documents (a category
    /// rename changes every product's breadcrumbs).
    pub async fn invalidate_all(&self, kv: &dyn KeyValue) {
        if let Err(err) = kv.increment(&self.generation_key(), 1, None).await {
            tracing::error!(error = %err, cache = self.name, "cannot invalidate a cache");
        }
    }

    /// Call after the write that created `key` (or renamed a document to it) has committed:
    /// adds it to the Bloom filter (and to one being rebuilt), and drops a cached miss.
    /// Errors are logged; the key is then turned away until the next rebuild.
    pub async fn add(&self, kv: &dyn KeyValue, key: &str) {
        let bloom = self.bloom_key();
        let (next, version) = (format!("{bloom}:next"), self.version_key(key));
        let positions = self
            .bloom
            .positions(key)
            .map(|p| p.to_string())
            .collect::<Vec<_>>();
        if let Err(err) = kv
            .eval(
                &ADD,
                &[&bloom, &next, &version].map(String::as_str),
                &positions,
            )
            .await
        {
            tracing::error!(error = %err, cache = self.name, key, "cannot add a key to the Bloom filter; it is unreachable until the next rebuild");
        }
    }

    /// Builds the Bloom filter from `list_keys` if there is none yet. Call at start-up;
    /// until a filter exists nothing is rejected, so a slow or failed build costs
    /// protection, never correctness. Instances starting together build it once.
    pub async fn ensure_bloom<F, Fut, I>(
        &self,
        kv: &dyn KeyValue,
        list_keys: F,
    ) -> anyhow::Result<BloomBuild>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = anyhow::Result<I>>,
        I: IntoIterator<Item = String>,
    {
        self.build_bloom(kv, true, list_keys).await
    }

    /// Replaces the Bloom filter with one of the keys `list_keys` returns, so deleted keys
    /// drop out; run it periodically. Readers see the old filter until the new one is
    /// complete, and keys `add`ed while it is built are kept. `list_keys` is called only
    /// once the build has begun, which is what makes those adds safe to merge.
    pub async fn rebuild<F, Fut, I>(
        &self,
        kv: &dyn KeyValue,
        list_keys: F,
    ) -> anyhow::Result<BloomBuild>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = anyhow::Result<I>>,
        I: IntoIterator<Item = String>,
    {
        self.build_bloom(kv, false, list_keys).await
    }

    async fn build_bloom<F, Fut, I>(
        &self,
        kv: &dyn KeyValue,
        only_if_missing: bool,
        list_keys: F,
    ) -> anyhow::Result<BloomBuild>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = anyhow::Result<I>>,
        I: IntoIterator<Item = String>,
    {
        let token = ulid::Ulid::generate().to_string();
        let bloom = self.bloom_key();
        let (lock, next) = (format!("{bloom}:lock"), format!("{bloom}:next"));
        let upload = format!("{bloom}:upload:{token}");
        let args = [
            token.clone(),
            BUILD_LOCK_TTL.as_millis().to_string(),
            u8::from(only_if_missing).to_string(),
        ];
        let began = kv
            .eval(
                &BEGIN_BUILD,
                &[&lock, &next, &bloom].map(String::as_str),
                &args,
            )
            .await?;
        match began.as_int() {
            Some(1) => {}
            Some(0) => return Ok(BloomBuild::Present),
            Some(-1) => return Ok(BloomBuild::Busy),
            _ => anyhow::bail!("{} returned {began:?}", BEGIN_BUILD.name),
        }
        let built = async {
            let mut bitmap = vec![0u8; self.bloom.bits.div_ceil(8) as usize];
            let mut count = 0;
            for key in list_keys().await? {
                for position in self.bloom.positions(&key) {
                    let (byte, mask) = bit_position(position);
                    bitmap[byte] |= mask;
                }
                count += 1;
            }
            kv.set(&upload, &bitmap, Some(BUILD_LOCK_TTL)).await?;
            anyhow::Ok(count)
        }
        .await;
        let outcome = if built.is_ok() { "commit" } else { "abort" };
        let finished = kv
            .eval(
                &FINISH_BUILD,
                &[&lock, &next, &upload, &bloom].map(String::as_str),
                &[token, outcome.to_owned()],
            )
            .await;
        let keys = built.with_context(|| format!("cannot build the {} Bloom filter", self.name))?;
        if finished?.as_int() != Some(1) {
            anyhow::bail!(
                "the {} Bloom filter build took longer than its lock ({BUILD_LOCK_TTL:?}); it was dropped",
                self.name
            );
        }
        Ok(BloomBuild::Built { keys })
    }

    /// The Bloom verdict, the current stamp and the entry, in one script run.
    async fn lookup(&self, kv: &dyn KeyValue, key: &str) -> anyhow::Result<Lookup> {
        let keys = [
            self.bloom_key(),
            self.generation_key(),
            self.version_key(key),
            self.entry_key(key),
        ];
        let keys = keys.iter().map(String::as_str).collect::<Vec<_>>();
        let positions = self
            .bloom
            .positions(key)
            .map(|p| p.to_string())
            .collect::<Vec<_>>();
        let reply = kv.eval(&LOOKUP, &keys, &positions).await?;
        let ScriptValue::List(items) = reply else {
            anyhow::bail!("{} returned {reply:?}", LOOKUP.name);
        };
        let mut items = items.into_iter();
        match (items.next(), items.next(), items.next(), items.next()) {
            (Some(ScriptValue::Int(0)), None, None, None) => Ok(Lookup::Absent),
            (Some(ScriptValue::Int(1)), Some(generation), Some(version), Some(entry)) => {
                let counter = |v: ScriptValue| {
                    v.into_bytes()
                        .and_then(|b| String::from_utf8(b).ok())
                        .with_context(|| format!("{} returned a malformed counter", LOOKUP.name))
                };
                let stamp = format!("{}.{}", counter(generation)?, counter(version)?);
                let cached = entry.into_bytes().and_then(|e| decode(e, &stamp));
                Ok(Lookup::Found { stamp, cached })
            }
            _ => anyhow::bail!("{} returned a malformed reply", LOOKUP.name),
        }
    }

    fn join_or_lead(&self, flight: &FlightKey) -> Role<'_, E> {
        let mut flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(rx) = flights.get(flight) {
            return Role::Follow(rx.clone());
        }
        let (tx, rx) = watch::channel(None);
        flights.insert(flight.clone(), rx);
        Role::Lead(Lead {
            flights: &self.flights,
            key: flight.clone(),
            tx,
        })
    }

    async fn lead<F, Fut>(&self, kv: &dyn KeyValue, lead: Lead<'_, E>, load: F) -> Loaded<E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<Vec<u8>>, E>>,
        E: Clone,
    {
        metrics::counter!("cache_loads_total", "cache" => self.name).increment(1);
        let loaded = load().await.map(|v| v.map(Bytes::from));
        lead.tx.send_replace(Some(loaded.clone()));
        // Errors are not cached: the next read tries again.
        if let (Ok(value), Some(stamp)) = (&loaded, &lead.key.stamp) {
            self.fill(kv, &lead.key.key, stamp, value.as_deref()).await;
        }
        loaded
    }

    /// Stores a load under the stamp its lookup saw. The write is unconditional: a load
    /// that raced an invalidation writes an old stamp, which readers treat as no entry.
    async fn fill(&self, kv: &dyn KeyValue, key: &str, stamp: &str, value: Option<&[u8]>) {
        let mut entry = Vec::with_capacity(stamp.len() + 2 + value.map_or(0, <[u8]>::len));
        entry.extend_from_slice(stamp.as_bytes());
        entry.push(b'\n');
        let ttl = match value {
            Some(bytes) => {
                entry.push(VALUE);
                entry.extend_from_slice(bytes);
                spread(self.ttl, self.jitter)
            }
            None => {
                entry.push(MISS);
                spread(self.miss_ttl, self.miss_jitter)
            }
        };
        if let Err(err) = kv.set(&self.entry_key(key), &entry, Some(ttl)).await {
            tracing::warn!(error = %err, cache = self.name, key, "cannot store a cache entry");
        }
    }

    fn count(&self, result: &'static str) {
        metrics::counter!("cache_requests_total", "cache" => self.name, "result" => result)
            .increment(1);
    }

    fn entry_key(&self, key: &str) -> String {
        format!("hot:{}:e:{key}", self.name)
    }

    fn version_key(&self, key: &str) -> String {
        format!("hot:{}:v:{key}", self.name)
    }

    fn generation_key(&self) -> String {
        format!("hot:{}:gen", self.name)
    }

    /// The filter's size is part of its key: an instance configured differently (during a
    /// rolling deploy) computes other bit positions and must not read this bitmap.
    fn bloom_key(&self) -> String {
        format!(
            "hot:{}:bloom:{}x{}",
            self.name, self.bloom.bits, self.bloom.hashes
        )
    }
}

enum Lookup {
    /// A Bloom bit is unset: no such key.
    Absent,
    Found {
        stamp: String,
        /// `None` when there is no entry under the current stamp.
        cached: Option<Cached>,
    },
}

enum Cached {
    Value(Bytes),
    Miss,
}

enum Role<'a, E> {
    Follow(watch::Receiver<Option<Loaded<E>>>),
    Lead(Lead<'a, E>),
}

/// The one load of a key in flight; when it ends, even by being dropped, it leaves the
/// table, and waiting callers either have its result or see the channel close.
struct Lead<'a, E> {
    flights: &'a Mutex<HashMap<FlightKey, watch::Receiver<Option<Loaded<E>>>>>,
    key: FlightKey,
    tx: watch::Sender<Option<Loaded<E>>>,
}

impl<E> Drop for Lead<'_, E> {
    fn drop(&mut self) {
        self.flights
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
    }
}

/// An entry as stored: `stamp\n` then `+value` or `-`. Anything under another stamp is
/// stale and reads as no entry.
fn decode(entry: Vec<u8>, stamp: &str) -> Option<Cached> {
    let header = stamp.len() + 1;
    if !entry.starts_with(stamp.as_bytes()) || entry.get(stamp.len()) != Some(&b'\n') {
        return None;
    }
    match entry.get(header) {
        Some(&VALUE) => Some(Cached::Value(Bytes::from(entry).slice(header + 1..))),
        Some(&MISS) => Some(Cached::Miss),
        _ => None,
    }
}

fn spread(base: Duration, jitter: Duration) -> Duration {
    base + Duration::from_millis(rand::random_range(0..=jitter.as_millis() as u64))
}

/// Bloom filter geometry. Bit positions come from one SHA-256 of the key by double
/// hashing, so every instance and every release computes the same ones (std's hasher is
/// seeded per process).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bloom {
    bits: u64,
    hashes: u32,
}

/// Redis strings hold at most 512 MB.
const MAX_BLOOM_BITS: u64 = 1 << 32;

impl Bloom {
    /// m = -n ln p / (ln 2)^2 bits and k = m/n ln 2 hashes (1M keys at 1%: 9.6M bits, 7).
    fn for_keys(expected: u64, false_positive_rate: f64) -> Self {
        let n = expected.max(1) as f64;
        let p = false_positive_rate.clamp(1e-9, 0.5);
        let ln2 = std::f64::consts::LN_2;
        let bits = (-n * p.ln() / (ln2 * ln2))
            .ceil()
            .clamp(64.0, MAX_BLOOM_BITS as f64) as u64;
        let hashes = (bits as f64 / n * ln2).round().clamp(1.0, 30.0) as u32;
        Self { bits, hashes }
    }

    fn positions(&self, key: &str) -> impl Iterator<Item = u64> + use<> {
        let digest = Sha256::digest(key.as_bytes());
        let mut first = [0u8; 8];
        let mut second = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        second.copy_from_slice(&digest[8..16]);
        let (h1, h2) = (
            u128::from(u64::from_le_bytes(first)),
            u128::from(u64::from_le_bytes(second)),
        );
        let bits = u128::from(self.bits);
        (0..u128::from(self.hashes)).map(move |i| ((h1 + i * h2) % bits) as u64)
    }
}

/// KEYS: filter, generation, version, entry. ARGV: the key's bit positions. Returns `{0}`
/// when the filter exists and a bit is unset, else `{1, generation, version, entry}`.
static LOOKUP: Script = Script {
    name: "hotcache_lookup",
    lua: r#"
if redis.call('EXISTS', KEYS[1]) == 1 then
  for i = 1, #ARGV do
    if redis.call('GETBIT', KEYS[1], ARGV[i]) == 0 then
      return {0}
    end
  end
end
return {1, redis.call('GET', KEYS[2]) or '0', redis.call('GET', KEYS[3]) or '0',
  redis.call('GET', KEYS[4])}
"#,
    native: lookup_native,
};

fn lookup_native(ks: &mut Keyspace<'_>, keys: &[String], args: &[String]) -> ScriptValue {
    if ks.exists(&keys[0]) {
        for arg in args {
            let Ok(position) = arg.parse() else {
                return ScriptValue::Error("ERR bit offset is not an integer".into());
            };
            if !ks.get_bit(&keys[0], position) {
                return ScriptValue::List(vec![ScriptValue::Int(0)]);
            }
        }
    }
    let counter = |v: Option<Vec<u8>>| {
        v.map_or_else(|| ScriptValue::Text("0".into()), ScriptValue::from_bytes)
    };
    ScriptValue::List(vec![
        ScriptValue::Int(1),
        counter(ks.get(&keys[1])),
        counter(ks.get(&keys[2])),
        ks.get(&keys[3])
            .map_or(ScriptValue::Nil, ScriptValue::from_bytes),
    ])
}

/// KEYS: filter, filter being built, the key's version. ARGV: the key's bit positions.
/// Sets the bits in whichever filters exist (never creating one: a filter of one key would
/// reject every other) and bumps the version, dropping a cached miss.
static ADD: Script = Script {
    name: "hotcache_add",
    lua: r#"
for k = 1, 2 do
  if redis.call('EXISTS', KEYS[k]) == 1 then
    for i = 1, #ARGV do
      redis.call('SETBIT', KEYS[k], ARGV[i], 1)
    end
  end
end
return redis.call('INCR', KEYS[3])
"#,
    native: |ks, keys, args| {
        let Ok(positions) = args
            .iter()
            .map(|a| a.parse())
            .collect::<Result<Vec<u64>, _>>()
        else {
            return ScriptValue::Error("ERR bit offset is not an integer".into());
        };
        for filter in &keys[..2] {
            if ks.exists(filter) {
                for &position in &positions {
                    ks.set_bit(filter, position);
                }
            }
        }
        match ks.increment(&keys[2], 1) {
            Some(version) => ScriptValue::Int(version),
            None => ScriptValue::Error("ERR value is not an integer or out of range".into()),
        }
    },
};

/// KEYS: lock, filter being built, filter. ARGV: token, lock TTL ms, only-if-missing flag.
/// Returns 0 when the filter exists and only a missing one was asked for, -1 when another
/// build holds the lock, 1 when this build may go ahead; from then on `add` also writes
/// the (empty) filter being built.
static BEGIN_BUILD: Script = Script {
    name: "hotcache_begin_build",
    lua: r#"
if ARGV[3] == '1' and redis.call('EXISTS', KEYS[3]) == 1 then
  return 0
end
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return -1
end
redis.call('SET', KEYS[2], '', 'PX', ARGV[2])
return 1
"#,
    native: |ks, keys, args| {
        if args[2] == "1" && ks.exists(&keys[2]) {
            return ScriptValue::Int(0);
        }
        if ks.exists(&keys[0]) {
            return ScriptValue::Int(-1);
        }
        let ttl = Duration::from_millis(args[1].parse().unwrap_or(1));
        ks.set(&keys[0], args[0].clone().into_bytes(), Some(ttl));
        ks.set(&keys[1], Vec::new(), Some(ttl));
        ScriptValue::Int(1)
    },
};

/// KEYS: lock, filter being built, uploaded bitmap, filter. ARGV: token, `commit` or
/// `abort`. On commit, merges the keys added meanwhile into the upload and makes it the
/// filter (without expiry). Returns 0, dropping the upload, when the lock is no longer
/// this build's.
static FINISH_BUILD: Script = Script {
    name: "hotcache_finish_build",
    lua: r#"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  redis.call('DEL', KEYS[3])
  return 0
end
if ARGV[2] == 'commit' then
  if redis.call('EXISTS', KEYS[2]) == 1 then
    redis.call('BITOP', 'OR', KEYS[3], KEYS[3], KEYS[2])
  end
  redis.call('RENAME', KEYS[3], KEYS[4])
  redis.call('PERSIST', KEYS[4])
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return 1
"#,
    native: |ks, keys, args| {
        if ks.get(&keys[0]).as_deref() != Some(args[0].as_bytes()) {
            ks.delete(&keys[2]);
            return ScriptValue::Int(0);
        }
        if args[1] == "commit" {
            let Some(mut bitmap) = ks.get(&keys[2]) else {
                return ScriptValue::Error("ERR no such key".into());
            };
            let added = ks.get(&keys[1]).unwrap_or_default();
            if bitmap.len() < added.len() {
                bitmap.resize(added.len(), 0);
            }
            for (byte, added) in bitmap.iter_mut().zip(added) {
                *byte |= added;
            }
            ks.set(&keys[3], bitmap, None);
        }
        for key in &keys[..3] {
            ks.delete(key);
        }
        ScriptValue::Int(1)
    },
};

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;

    use super::*;
    use crate::platform::cache::{GroupState, MemoryStore, StreamEntry};

    #[test]
    fn bloom_is_sized_by_the_textbook_formula() {
        assert_eq!(
            Bloom::for_keys(1_000_000, 0.01),
            Bloom {
                bits: 9_585_059,
                hashes: 7
            }
        );
        assert_eq!(
            Bloom::for_keys(0, 0.01),
            Bloom {
                bits: 64,
                hashes: 30
            },
            "an empty shop still gets a usable filter"
        );
        assert_eq!(Bloom::for_keys(u64::MAX, 0.01).bits, MAX_BLOOM_BITS);
    }

    /// Instances of one shop, and releases of it, must agree on every bit: a change here
    /// makes every running filter reject existing keys.
    #[test]
    fn bit_positions_never_change() {
        let bloom = Bloom::for_keys(1_000_000, 0.01);
        assert_eq!(
            bloom.positions("blue-shirt").collect::<Vec<_>>(),
            PINNED_POSITIONS
        );
        assert!(bloom.positions("blue-shirt").all(|p| p < bloom.bits));
    }

    /// Computed independently: `sha256(key)`, h1 and h2 its first two little-endian u64s,
    /// position i = (h1 + i * h2) mod bits.
    const PINNED_POSITIONS: [u64; 7] =
        [518342, 8331567, 6559733, 4787899, 3016065, 1244231, 9057456];

    #[test]
    fn false_positives_stay_near_the_target_rate() {
        let bloom = Bloom::for_keys(5_000, 0.01);
        let mut bitmap = vec![0u8; bloom.bits.div_ceil(8) as usize];
        for i in 0..5_000 {
            for position in bloom.positions(&format!("product-{i}")) {
                let (byte, mask) = bit_position(position);
                bitmap[byte] |= mask;
            }
        }
        let contains = |key: &str| {
            bloom.positions(key).all(|p| {
                let (byte, mask) = bit_position(p);
                bitmap[byte] & mask != 0
            })
        };
        assert!((0..5_000).all(|i| contains(&format!("product-{i}"))));
        let false_positives = (0..10_000)
            .filter(|i| contains(&format!("unknown-{i}")))
            .count();
        assert!(
            (20..=200).contains(&false_positives),
            "{false_positives} false positives in 10000, expected about 100"
        );
    }

    #[test]
    fn entries_under_another_stamp_are_stale() {
        let entry = |s: &str| s.as_bytes().to_vec();
        assert!(matches!(decode(entry("1.2\n+doc"), "1.2"), Some(Cached::Value(v)) if v == "doc"));
        assert!(matches!(decode(entry("1.2\n+"), "1.2"), Some(Cached::Value(v)) if v.is_empty()));
        assert!(matches!(decode(entry("1.2\n-"), "1.2"), Some(Cached::Miss)));
        assert!(
            decode(entry("1.23\n+doc"), "1.2").is_none(),
            "a longer stamp"
        );
        assert!(
            decode(entry("1.2\n+doc"), "1.23").is_none(),
            "an older stamp"
        );
        assert!(
            decode(entry("0.2\n+doc"), "1.2").is_none(),
            "an older generation"
        );
        assert!(decode(entry("1.2"), "1.2").is_none(), "truncated");
    }

    #[tokio::test]
    async fn native_lookup_passes_until_a_filter_exists_and_add_never_creates_one() {
        let kv = MemoryStore::new();
        let positions = ["3".to_owned(), "9".to_owned()];
        let lookup = || async {
            let keys = ["f", "g", "v", "e"];
            kv.eval(&LOOKUP, &keys, &positions).await.unwrap()
        };
        let found = |stamp_v: &str, entry: ScriptValue| {
            ScriptValue::List(vec![
                ScriptValue::Int(1),
                ScriptValue::Text("0".into()),
                ScriptValue::Text(stamp_v.into()),
                entry,
            ])
        };
        assert_eq!(lookup().await, found("0", ScriptValue::Nil));

        let added = kv.eval(&ADD, &["f", "n", "v"], &positions).await.unwrap();
        assert_eq!(added, ScriptValue::Int(1), "add bumps the version");
        assert!(kv.get("f").await.unwrap().is_none(), "add created a filter");

        kv.set("f", &[0b0001_0000], None).await.unwrap();
        assert_eq!(
            lookup().await,
            ScriptValue::List(vec![ScriptValue::Int(0)]),
            "bit 9 is unset"
        );
        kv.eval(&ADD, &["f", "n", "v"], &positions).await.unwrap();
        assert_eq!(
            kv.get("f").await.unwrap().unwrap(),
            [0b0001_0000, 0b0100_0000],
            "SETBIT grows the bitmap, bits counted from the top"
        );
        kv.set("e", &[0, 255], None).await.unwrap();
        assert_eq!(
            lookup().await,
            found("2", ScriptValue::Bytes(vec![0, 255])),
            "binary entries come back intact"
        );
    }

    /// A store that is down.
    struct Unreachable;

    #[async_trait]
    impl KeyValue for Unreachable {
        async fn get(&self, _: &str) -> anyhow::Result<Option<Vec<u8>>> {
            anyhow::bail!("connection refused")
        }
        async fn set(&self, _: &str, _: &[u8], _: Option<Duration>) -> anyhow::Result<()> {
            anyhow::bail!("connection refused")
        }
        async fn delete(&self, _: &str) -> anyhow::Result<bool> {
            anyhow::bail!("connection refused")
        }
        async fn ttl(&self, _: &str) -> anyhow::Result<Option<Duration>> {
            anyhow::bail!("connection refused")
        }
        async fn eval(&self, _: &Script, _: &[&str], _: &[String]) -> anyhow::Result<ScriptValue> {
            anyhow::bail!("connection refused")
        }
        async fn stream_read(
            &self,
            _: &str,
            _: &str,
            _: &str,
            _: usize,
        ) -> anyhow::Result<Vec<StreamEntry>> {
            anyhow::bail!("connection refused")
        }
        async fn stream_claim(
            &self,
            _: &str,
            _: &str,
            _: &str,
            _: Duration,
            _: usize,
        ) -> anyhow::Result<Vec<StreamEntry>> {
            anyhow::bail!("connection refused")
        }
        async fn stream_ack(&self, _: &str, _: &str, _: &[String]) -> anyhow::Result<()> {
            anyhow::bail!("connection refused")
        }
        async fn stream_entries(&self, _: &str) -> anyhow::Result<Vec<StreamEntry>> {
            anyhow::bail!("connection refused")
        }
        async fn stream_group(&self, _: &str, _: &str) -> anyhow::Result<Option<GroupState>> {
            anyhow::bail!("connection refused")
        }
        async fn ping(&self) -> anyhow::Result<()> {
            anyhow::bail!("connection refused")
        }
        fn kind(&self) -> &'static str {
            "redis"
        }
    }

    #[tokio::test]
    async fn a_store_that_is_down_falls_back_to_one_load_per_key() {
        let cache = Arc::new(HotCache::<()>::new("down", HotCacheSettings::default()));
        let loads = Arc::new(AtomicUsize::new(0));
        let read = || {
            let (cache, loads) = (cache.clone(), loads.clone());
            tokio::spawn(async move {
                cache
                    .get_or_load(&Unreachable, "shirt", || async {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok(Some(b"doc".to_vec()))
                    })
                    .await
            })
        };
        let (first, second) = (read(), read());
        for read in [first, second] {
            assert_eq!(read.await.unwrap(), Ok(Some(Bytes::from_static(b"doc"))));
        }
        assert_eq!(
            loads.load(Ordering::SeqCst),
            1,
            "concurrent reads share the load"
        );

        cache.invalidate(&Unreachable, "shirt").await;
        cache.invalidate_all(&Unreachable).await;
        cache.add(&Unreachable, "shirt").await;
        assert!(
            cache
                .rebuild(&Unreachable, || async { Ok(Vec::new()) })
                .await
                .is_err(),
            "a rebuild reports the failure to its job"
        );
    }

    #[tokio::test]
    async fn a_waiting_reader_takes_over_when_the_loading_one_goes_away() {
        let kv = Arc::new(MemoryStore::new());
        let cache = Arc::new(HotCache::<()>::new("takeover", HotCacheSettings::default()));
        let (started, load_started) = tokio::sync::oneshot::channel();
        let leader = tokio::spawn({
            let (kv, cache) = (kv.clone(), cache.clone());
            async move {
                cache
                    .get_or_load(&*kv, "shirt", || async {
                        let _ = started.send(());
                        std::future::pending().await
                    })
                    .await
            }
        });
        load_started.await.unwrap();
        let follower = tokio::spawn({
            let (kv, cache) = (kv.clone(), cache.clone());
            async move {
                cache
                    .get_or_load(&*kv, "shirt", || async { Ok(Some(b"doc".to_vec())) })
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !follower.is_finished(),
            "the second reader waits for the first"
        );

        // The first reader's client disconnects; its handler future is dropped.
        leader.abort();
        let loaded = tokio::time::timeout(Duration::from_secs(5), follower)
            .await
            .expect("the waiting reader was left hanging")
            .unwrap();
        assert_eq!(loaded, Ok(Some(Bytes::from_static(b"doc"))));
        assert!(
            cache.flights.lock().unwrap().is_empty(),
            "no flight is left behind"
        );
    }

    #[tokio::test]
    async fn requests_and_loads_are_counted_by_result() {
        let metrics = crate::platform::telemetry::metrics_handle();
        let kv = MemoryStore::new();
        let cache = HotCache::<()>::new("metrics-test", HotCacheSettings::default());
        let load = |value: Option<&'static [u8]>| async move { Ok(value.map(<[u8]>::to_vec)) };
        cache
            .get_or_load(&kv, "a", || load(Some(b"doc")))
            .await
            .unwrap();
        cache
            .get_or_load(&kv, "a", || load(Some(b"doc")))
            .await
            .unwrap();
        cache.get_or_load(&kv, "b", || load(None)).await.unwrap();
        cache.get_or_load(&kv, "b", || load(None)).await.unwrap();
        cache
            .rebuild(&kv, || async { Ok(["a".to_owned()]) })
            .await
            .unwrap();
        cache.get_or_load(&kv, "c", || load(None)).await.unwrap();

        let rendered = metrics.render();
        for line in [
            r#"cache_requests_total{cache="metrics-test",result="miss"} 2"#,
            r#"cache_requests_total{cache="metrics-test",result="hit"} 1"#,
            r#"cache_requests_total{cache="metrics-test",result="negative_hit"} 1"#,
            r#"cache_requests_total{cache="metrics-test",result="rejected"} 1"#,
            r#"cache_loads_total{cache="metrics-test"} 2"#,
        ] {
            assert!(rendered.contains(line), "no {line} in\n{rendered}");
        }
    }
}
