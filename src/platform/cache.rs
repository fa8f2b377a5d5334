//! Key-value store for cache, sessions and counters: in-process on one machine, Redis when
//! several instances must share it. Both pass the same test suite.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use redis::aio::ConnectionManager;

use super::stream::MemoryStream;
pub use super::stream::{GroupState, StreamEntry};

/// The result of a script: Redis' reply types that Bazaar's scripts use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptValue {
    Nil,
    Int(i64),
    Text(String),
    /// A stored value that is not UTF-8 (e.g. a cached binary document): kept intact, where
    /// `Text` would have to mangle it.
    Bytes(Vec<u8>),
    List(Vec<ScriptValue>),
    /// A script error (Redis' error reply); `eval` turns it into `Err`.
    Error(String),
}

impl ScriptValue {
    pub fn as_int(&self) -> Option<i64> {
        match self {
            ScriptValue::Int(n) => Some(*n),
            ScriptValue::Text(s) => s.parse().ok(),
            _ => None,
        }
    }

    /// A stored value as a script returns it: `Text` when it is UTF-8, else `Bytes`, the
    /// same way a Redis reply is read, so native variants answer like their Lua twins.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        match String::from_utf8(bytes) {
            Ok(text) => ScriptValue::Text(text),
            Err(err) => ScriptValue::Bytes(err.into_bytes()),
        }
    }

    /// The bytes of a `Text` or `Bytes` value.
    pub fn into_bytes(self) -> Option<Vec<u8>> {
        match self {
            ScriptValue::Text(text) => Some(text.into_bytes()),
            ScriptValue::Bytes(bytes) => Some(bytes),
            _ => None,
        }
    }
}

/// Where bit `offset` of a value lives, in Redis' layout (SETBIT/GETBIT): byte `offset / 8`,
/// counting from the most significant bit. A bitmap built in memory with it can be stored
/// with `set` and read with GETBIT.
pub fn bit_position(offset: u64) -> (usize, u8) {
    ((offset / 8) as usize, 0x80 >> (offset % 8))
}

/// The in-process keyspace a native script variant runs on, locked for its whole run.
pub struct Keyspace<'a> {
    map: &'a mut HashMap<String, Entry>,
    streams: &'a mut HashMap<String, MemoryStream>,
    now: Instant,
}

/// An atomic multi-step operation: a Lua script for Redis and the same operation written
/// natively for the in-process store. Scripts address keys only through `keys`.
pub struct Script {
    pub name: &'static str,
    pub lua: &'static str,
    pub native: fn(&mut Keyspace<'_>, &[String], &[String]) -> ScriptValue,
}

#[async_trait]
pub trait KeyValue: Send + Sync + 'static {
    async fn get(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>>;
    /// Stores `value`; `ttl` of `None` keeps it until deleted.
    async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> anyhow::Result<()>;
    /// Returns whether the key existed.
    async fn delete(&self, key: &str) -> anyhow::Result<bool>;
    /// Atomically adds `by`; a new counter starts at 0 and expires after `ttl`.
    async fn increment(&self, key: &str, by: i64, ttl: Option<Duration>) -> anyhow::Result<i64> {
        let args = [
            by.to_string(),
            ttl.map_or(0, |t| t.as_millis().max(1) as u64).to_string(),
        ];
        let value = self.eval(&INCREMENT, &[key], &args).await?;
        value
            .as_int()
            .context("increment script returned a non-integer")
    }
    /// Remaining time to live; `None` when the key is missing or never expires.
    async fn ttl(&self, key: &str) -> anyhow::Result<Option<Duration>>;
    async fn eval(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[String],
    ) -> anyhow::Result<ScriptValue>;
    /// Reads up to `count` entries never delivered to `group` (created at the stream's
    /// start if missing); they stay pending for `consumer` until acknowledged.
    async fn stream_read(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        count: usize,
    ) -> anyhow::Result<Vec<StreamEntry>>;
    /// Takes over up to `count` entries pending in `group` for at least `min_idle` (their
    /// consumer died or hangs), for `consumer`.
    async fn stream_claim(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> anyhow::Result<Vec<StreamEntry>>;
    /// Acknowledges entries: they leave the group's pending list.
    async fn stream_ack(&self, stream: &str, group: &str, ids: &[String]) -> anyhow::Result<()>;
    /// Every entry of the stream, oldest first.
    async fn stream_entries(&self, stream: &str) -> anyhow::Result<Vec<StreamEntry>>;
    /// The group's position and pending entries; `None` when the group does not exist.
    async fn stream_group(&self, stream: &str, group: &str) -> anyhow::Result<Option<GroupState>>;
    async fn ping(&self) -> anyhow::Result<()>;
    /// `memory` or `redis`, for readiness reports.
    fn kind(&self) -> &'static str;
}

pub type SharedKeyValue = Arc<dyn KeyValue>;

#[derive(Debug, Clone)]
struct Entry {
    value: Vec<u8>,
    expires_at: Option<Instant>,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }
}

impl Keyspace<'_> {
    pub fn get(&mut self, key: &str) -> Option<Vec<u8>> {
        self.live(key).map(|e| e.value.clone())
    }

    pub fn set(&mut self, key: &str, value: Vec<u8>, ttl: Option<Duration>) {
        let expires_at = ttl.map(|t| self.now + t);
        self.map.insert(key.to_owned(), Entry { value, expires_at });
    }

    pub fn delete(&mut self, key: &str) -> bool {
        let stream = self.streams.remove(key).is_some();
        self.map.remove(key).is_some_and(|e| e.live(self.now)) || stream
    }

    /// XADD with an automatic id; the stream is created when missing.
    pub fn stream_add(&mut self, key: &str, fields: Vec<(String, String)>) -> String {
        self.streams.entry(key.to_owned()).or_default().add(fields)
    }

    /// INCRBY: a missing key counts from 0; the expiry is kept. Like Redis, a value that is
    /// not an integer (or an overflow) is an error and changes nothing.
    pub fn increment(&mut self, key: &str, by: i64) -> Option<i64> {
        let now = self.now;
        let current = self.live(key).cloned();
        let (value, expires_at) = match current {
            Some(e) => (
                std::str::from_utf8(&e.value).ok()?.parse::<i64>().ok()?,
                e.expires_at,
            ),
            None => (0, None),
        };
        let next = value.checked_add(by)?;
        self.map.insert(
            key.to_owned(),
            Entry {
                value: next.to_string().into_bytes(),
                expires_at: expires_at.filter(|at| *at > now),
            },
        );
        Some(next)
    }

    /// EXISTS.
    pub fn exists(&mut self, key: &str) -> bool {
        self.live(key).is_some()
    }

    /// GETBIT: bits past the end of the value, and of a missing key, are 0.
    pub fn get_bit(&mut self, key: &str, offset: u64) -> bool {
        let (byte, mask) = bit_position(offset);
        self.live(key)
            .and_then(|e| e.value.get(byte))
            .is_some_and(|b| b & mask != 0)
    }

    /// SETBIT to 1: the value grows with zero bytes as needed, and a missing key is created
    /// without expiry, as in Redis.
    pub fn set_bit(&mut self, key: &str, offset: u64) {
        let (byte, mask) = bit_position(offset);
        let _ = self.live(key);
        let entry = self.map.entry(key.to_owned()).or_insert_with(|| Entry {
            value: Vec::new(),
            expires_at: None,
        });
        if entry.value.len() <= byte {
            entry.value.resize(byte + 1, 0);
        }
        entry.value[byte] |= mask;
    }

    /// PEXPIRE on an existing key.
    pub fn expire(&mut self, key: &str, ttl: Duration) -> bool {
        let now = self.now;
        match self.map.get_mut(key) {
            Some(e) if e.live(now) => {
                e.expires_at = Some(now + ttl);
                true
            }
            _ => false,
        }
    }

    /// PTTL in milliseconds: -2 missing, -1 no expiry.
    pub fn pttl(&mut self, key: &str) -> i64 {
        let now = self.now;
        match self.live(key) {
            None => -2,
            Some(Entry {
                expires_at: None, ..
            }) => -1,
            Some(Entry {
                expires_at: Some(at),
                ..
            }) => at.duration_since(now).as_millis() as i64,
        }
    }

    fn live(&mut self, key: &str) -> Option<&Entry> {
        let now = self.now;
        if self.map.get(key).is_some_and(|e| !e.live(now)) {
            self.map.remove(key);
        }
        self.map.get(key)
    }
}

/// The in-process store: one map behind a mutex, so scripts are atomic like in Redis.
#[derive(Default)]
pub struct MemoryStore {
    space: Mutex<Space>,
    writes: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
struct Space {
    map: HashMap<String, Entry>,
    streams: HashMap<String, MemoryStream>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Keyspace<'_>) -> T) -> T {
        let mut space = self.space.lock().unwrap_or_else(|e| e.into_inner());
        let Space { map, streams } = &mut *space;
        let now = Instant::now();
        // Expired keys are dropped on access; sweep the rest now and then so the map stays
        // bounded by the live keys.
        let writes = self
            .writes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if writes % 4096 == 4095 {
            map.retain(|_, e| e.live(now));
        }
        f(&mut Keyspace { map, streams, now })
    }

    fn with_stream<T>(&self, stream: &str, f: impl FnOnce(&mut MemoryStream, Instant) -> T) -> T {
        self.with(|ks| f(ks.streams.entry(stream.to_owned()).or_default(), ks.now))
    }
}

#[async_trait]
impl KeyValue for MemoryStore {
    async fn get(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(self.with(|ks| ks.get(key)))
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> anyhow::Result<()> {
        self.with(|ks| ks.set(key, value.to_vec(), ttl));
        Ok(())
    }

    async fn delete(&self, key: &str) -> anyhow::Result<bool> {
        Ok(self.with(|ks| ks.delete(key)))
    }

    async fn ttl(&self, key: &str) -> anyhow::Result<Option<Duration>> {
        Ok(self.with(|ks| match ks.pttl(key) {
            ms if ms >= 0 => Some(Duration::from_millis(ms as u64)),
            _ => None,
        }))
    }

    async fn eval(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[String],
    ) -> anyhow::Result<ScriptValue> {
        let keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        match self.with(|ks| (script.native)(ks, &keys, args)) {
            ScriptValue::Error(message) => {
                anyhow::bail!("script {} failed: {message}", script.name)
            }
            value => Ok(value),
        }
    }

    async fn stream_read(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        count: usize,
    ) -> anyhow::Result<Vec<StreamEntry>> {
        Ok(self.with_stream(stream, |s, now| s.read_group(group, consumer, count, now)))
    }

    async fn stream_claim(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> anyhow::Result<Vec<StreamEntry>> {
        Ok(self.with_stream(stream, |s, now| {
            s.claim_idle(group, consumer, min_idle, count, now)
        }))
    }

    async fn stream_ack(&self, stream: &str, group: &str, ids: &[String]) -> anyhow::Result<()> {
        self.with_stream(stream, |s, _| s.ack(group, ids));
        Ok(())
    }

    async fn stream_entries(&self, stream: &str) -> anyhow::Result<Vec<StreamEntry>> {
        Ok(self.with(|ks| {
            ks.streams
                .get(stream)
                .map(MemoryStream::entries)
                .unwrap_or_default()
        }))
    }

    async fn stream_group(&self, stream: &str, group: &str) -> anyhow::Result<Option<GroupState>> {
        Ok(self.with(|ks| ks.streams.get(stream).and_then(|s| s.group(group))))
    }

    async fn ping(&self) -> anyhow::Result<()> {
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}

/// Redis through a reconnecting connection manager; every key is prefixed.
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    scripts: Mutex<HashMap<&'static str, Arc<redis::Script>>>,
}

impl RedisStore {
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).context("invalid redis.url")?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(5)));
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .context("cannot connect to Redis")?;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
            scripts: Mutex::default(),
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{}", self.prefix, key)
    }

    fn script(&self, script: &Script) -> Arc<redis::Script> {
        let mut scripts = self.scripts.lock().unwrap_or_else(|e| e.into_inner());
        scripts
            .entry(script.name)
            .or_insert_with(|| Arc::new(redis::Script::new(script.lua)))
            .clone()
    }
}

#[async_trait]
impl KeyValue for RedisStore {
    async fn get(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let mut conn = self.conn.clone();
        Ok(redis::cmd("GET")
            .arg(self.key(key))
            .query_async(&mut conn)
            .await?)
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> anyhow::Result<()> {
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(key)).arg(value);
        if let Some(ttl) = ttl {
            cmd.arg("PX").arg(ttl.as_millis().max(1) as u64);
        }
        cmd.query_async::<()>(&mut conn).await?;
        Ok(())
    }

    async fn delete(&self, key: &str) -> anyhow::Result<bool> {
        let mut conn = self.conn.clone();
        let removed: i64 = redis::cmd("DEL")
            .arg(self.key(key))
            .query_async(&mut conn)
            .await?;
        Ok(removed > 0)
    }

    async fn ttl(&self, key: &str) -> anyhow::Result<Option<Duration>> {
        let mut conn = self.conn.clone();
        let ms: i64 = redis::cmd("PTTL")
            .arg(self.key(key))
            .query_async(&mut conn)
            .await?;
        Ok((ms >= 0).then(|| Duration::from_millis(ms as u64)))
    }

    async fn eval(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[String],
    ) -> anyhow::Result<ScriptValue> {
        let compiled = self.script(script);
        let mut invocation = compiled.prepare_invoke();
        for key in keys {
            invocation.key(self.key(key));
        }
        for arg in args {
            invocation.arg(arg);
        }
        let mut conn = self.conn.clone();
        // EVALSHA first; the script is loaded on the first NOSCRIPT reply only.
        let value: redis::Value = invocation
            .invoke_async(&mut conn)
            .await
            .with_context(|| format!("script {} failed", script.name))?;
        Ok(from_redis(value))
    }

    async fn stream_read(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        count: usize,
    ) -> anyhow::Result<Vec<StreamEntry>> {
        let key = self.key(stream);
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(group)
            .arg(consumer)
            .arg("COUNT")
            .arg(count)
            .arg("STREAMS")
            .arg(&key)
            .arg(">");
        let mut conn = self.conn.clone();
        // No BLOCK: the connection is shared, and a blocked read would stall every other
        // command behind it. Readers poll instead.
        let reply: redis::RedisResult<redis::Value> = cmd.query_async(&mut conn).await;
        let reply = match reply {
            Err(e) if e.code() == Some("NOGROUP") => {
                let created: redis::RedisResult<()> = redis::cmd("XGROUP")
                    .arg("CREATE")
                    .arg(&key)
                    .arg(group)
                    .arg("0")
                    .arg("MKSTREAM")
                    .query_async(&mut conn)
                    .await;
                match created {
                    Err(e) if e.code() != Some("BUSYGROUP") => return Err(e.into()),
                    _ => {}
                }
                cmd.query_async(&mut conn).await?
            }
            other => other?,
        };
        // [[stream, [entry, …]]] or nil.
        Ok(match reply {
            redis::Value::Array(streams) => streams
                .into_iter()
                .flat_map(|s| match s {
                    redis::Value::Array(mut pair) if pair.len() == 2 => entries_of(pair.remove(1)),
                    _ => Vec::new(),
                })
                .collect(),
            _ => Vec::new(),
        })
    }

    async fn stream_claim(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> anyhow::Result<Vec<StreamEntry>> {
        let mut conn = self.conn.clone();
        let reply: redis::RedisResult<redis::Value> = redis::cmd("XAUTOCLAIM")
            .arg(self.key(stream))
            .arg(group)
            .arg(consumer)
            .arg(min_idle.as_millis() as u64)
            .arg("0-0")
            .arg("COUNT")
            .arg(count)
            .query_async(&mut conn)
            .await;
        // [next start, [entry, …], [deleted ids]]; no group yet means nothing to claim.
        Ok(match reply {
            Err(e) if e.code() == Some("NOGROUP") => Vec::new(),
            Ok(redis::Value::Array(mut parts)) if parts.len() >= 2 => entries_of(parts.remove(1)),
            Ok(_) => Vec::new(),
            Err(e) => return Err(e.into()),
        })
    }

    async fn stream_ack(&self, stream: &str, group: &str, ids: &[String]) -> anyhow::Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn.clone();
        redis::cmd("XACK")
            .arg(self.key(stream))
            .arg(group)
            .arg(ids)
            .query_async::<i64>(&mut conn)
            .await?;
        Ok(())
    }

    async fn stream_entries(&self, stream: &str) -> anyhow::Result<Vec<StreamEntry>> {
        let mut conn = self.conn.clone();
        let reply: redis::Value = redis::cmd("XRANGE")
            .arg(self.key(stream))
            .arg("-")
            .arg("+")
            .query_async(&mut conn)
            .await?;
        Ok(entries_of(reply))
    }

    async fn stream_group(&self, stream: &str, group: &str) -> anyhow::Result<Option<GroupState>> {
        let key = self.key(stream);
        let mut conn = self.conn.clone();
        let groups: redis::RedisResult<Vec<HashMap<String, redis::Value>>> = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(&key)
            .query_async(&mut conn)
            .await;
        let groups = match groups {
            Err(e)
                if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError) =>
            {
                return Ok(None);
            }
            other => other?,
        };
        let Some(info) = groups.into_iter().find(|g| {
            g.get("name")
                .and_then(|v| redis::from_redis_value_ref::<String>(v).ok())
                .as_deref()
                == Some(group)
        }) else {
            return Ok(None);
        };
        let last_delivered = info
            .get("last-delivered-id")
            .and_then(|v| redis::from_redis_value_ref::<String>(v).ok())
            .filter(|id| id != "0-0");
        let pending: Vec<(String, String, i64, i64)> = redis::cmd("XPENDING")
            .arg(&key)
            .arg(group)
            .arg("-")
            .arg("+")
            .arg(i64::MAX)
            .query_async(&mut conn)
            .await?;
        Ok(Some(GroupState {
            last_delivered,
            pending: pending.into_iter().map(|(id, ..)| id).collect(),
        }))
    }

    async fn ping(&self) -> anyhow::Result<()> {
        let mut conn = self.conn.clone();
        redis::cmd("PING").query_async::<String>(&mut conn).await?;
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}

fn from_redis(value: redis::Value) -> ScriptValue {
    match value {
        redis::Value::Int(n) => ScriptValue::Int(n),
        redis::Value::BulkString(bytes) => ScriptValue::from_bytes(bytes),
        redis::Value::SimpleString(s) => ScriptValue::Text(s),
        redis::Value::Okay => ScriptValue::Text("OK".into()),
        redis::Value::Array(items) | redis::Value::Set(items) => {
            ScriptValue::List(items.into_iter().map(from_redis).collect())
        }
        _ => ScriptValue::Nil,
    }
}

/// Stream entries as XRANGE, XREADGROUP and XAUTOCLAIM return them: `[[id, [k, v, …]], …]`.
fn entries_of(value: redis::Value) -> Vec<StreamEntry> {
    let redis::Value::Array(items) = value else {
        return Vec::new();
    };
    items
        .into_iter()
        .filter_map(|item| {
            let (id, fields): (String, Vec<String>) = redis::from_redis_value(item).ok()?;
            let fields = fields
                .chunks_exact(2)
                .map(|kv| (kv[0].clone(), kv[1].clone()))
                .collect();
            Some(StreamEntry { id, fields })
        })
        .collect()
}

/// INCRBY that sets an expiry on a new counter only (a fixed window), returning the count.
pub static INCREMENT: Script = Script {
    name: "increment",
    lua: r#"
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = tonumber(ARGV[2])
if ttl > 0 and redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return value
"#,
    native: |ks, keys, args| {
        let by = args[0].parse().unwrap_or(0);
        let Some(value) = ks.increment(&keys[0], by) else {
            return ScriptValue::Error("ERR value is not an integer or out of range".into());
        };
        let ttl: u64 = args[1].parse().unwrap_or(0);
        if ttl > 0 && ks.pttl(&keys[0]) == -1 {
            ks.expire(&keys[0], Duration::from_millis(ttl));
        }
        ScriptValue::Int(value)
    },
};

/// Opens the configured store: Redis when `redis.url` is set, else in-process.
pub async fn open(config: &crate::config::Config) -> anyhow::Result<SharedKeyValue> {
    Ok(match &config.redis.url {
        Some(url) => Arc::new(RedisStore::connect(url.expose(), &config.redis.key_prefix).await?),
        None => Arc::new(MemoryStore::new()),
    })
}

/// A cached document (e.g. a storefront tree) that writes invalidate by bumping a version.
/// The key carries the version, so a reader that raced a write can only fill an old key,
/// never serve a stale document under the new one; with Redis every instance sees the bump.
pub struct CachedDocument {
    name: &'static str,
}

impl CachedDocument {
    pub const fn new(name: &'static str) -> Self {
        Self { name }
    }

    fn version_key(&self) -> String {
        format!("cache:{}:version", self.name)
    }

    /// The cached bytes, or `load`'s, stored for 10–12 minutes: expiries are spread so
    /// caches filled together do not expire together.
    pub async fn get_or_load<F, Fut, E>(&self, kv: &dyn KeyValue, load: F) -> Result<Vec<u8>, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Vec<u8>, E>>,
        E: From<anyhow::Error>,
    {
        let version = kv
            .get(&self.version_key())
            .await?
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .unwrap_or_default();
        let key = format!("cache:{}:{version}", self.name);
        if let Some(bytes) = kv.get(&key).await? {
            return Ok(bytes);
        }
        let bytes = load().await?;
        let ttl = Duration::from_secs(600 + rand::random_range(0..120));
        kv.set(&key, &bytes, Some(ttl)).await?;
        Ok(bytes)
    }

    /// Call after the write that changed the document has committed.
    pub async fn invalidate(&self, kv: &dyn KeyValue) {
        if let Err(err) = kv.increment(&self.version_key(), 1, None).await {
            tracing::error!(error = %err, document = self.name, "cannot invalidate a cached document");
        }
    }
}
