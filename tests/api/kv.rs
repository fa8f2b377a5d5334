//! One behavioural suite for the key-value store, run against the in-process store and
//! Redis: the application must not be able to tell them apart.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bazaar::platform::cache::{KeyValue, MemoryStore, RedisStore, Script, ScriptValue};

use crate::harness;

#[derive(Debug, Clone, Copy)]
pub(crate) enum Store {
    Memory,
    Redis,
}

/// A fresh store; on Redis, under a key prefix no other test uses (purged when the
/// returned guard is dropped).
pub(crate) async fn open(store: Store) -> (Arc<dyn KeyValue>, Option<harness::RedisPrefix>) {
    match store {
        Store::Memory => (Arc::new(MemoryStore::new()), None),
        Store::Redis => {
            let prefix = harness::RedisPrefix::new().await;
            let kv = Arc::new(redis_store(&prefix.prefix).await);
            (kv, Some(prefix))
        }
    }
}

async fn redis_store(prefix: &str) -> RedisStore {
    RedisStore::connect(&harness::redis_url().await, prefix)
        .await
        .expect("cannot connect to Redis")
}

/// Turns `async fn name(kv: Arc<dyn KeyValue>)` into the tests `name::memory` and
/// `name::redis`; other suites over the store use it too.
macro_rules! both_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                let (kv, _prefix) = $crate::kv::open($crate::kv::Store::Memory).await;
                $crate::harness::bounded(super::$name(kv)).await
            }

            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis() {
                let (kv, _prefix) = $crate::kv::open($crate::kv::Store::Redis).await;
                $crate::harness::bounded(super::$name(kv)).await
            }
        }
    )*};
}
pub(crate) use both_stores;

both_stores!(
    get_set_delete,
    values_expire_after_their_ttl,
    ttl_reports_remaining_lifetime,
    increment_counts_from_zero,
    increment_ttl_is_a_fixed_window,
    increment_keeps_an_existing_expiry,
    custom_script_compare_and_set,
    custom_script_decrement_if_positive,
    scripts_return_binary_values_intact,
    concurrent_script_runs_are_atomic,
    concurrent_increments_are_atomic,
    ping_answers,
    streams_deliver_each_entry_to_one_consumer_of_a_group,
    idle_pending_entries_pass_to_another_consumer,
    a_group_on_a_missing_stream_starts_empty,
    concurrent_appends_and_readers_see_each_entry_once,
);

fn text(value: Option<Vec<u8>>) -> Option<String> {
    value.map(|v| String::from_utf8(v).expect("stored value is not UTF-8"))
}

async fn get_set_delete(kv: Arc<dyn KeyValue>) {
    assert_eq!(kv.get("missing").await.unwrap(), None);

    kv.set("greeting", b"hello", None).await.unwrap();
    assert_eq!(
        text(kv.get("greeting").await.unwrap()).as_deref(),
        Some("hello")
    );

    kv.set("greeting", b"hello again", None).await.unwrap();
    assert_eq!(
        text(kv.get("greeting").await.unwrap()).as_deref(),
        Some("hello again"),
        "set overwrites"
    );

    let binary = [0u8, 159, 146, 150, 255, b'\n', 0];
    kv.set("binary", &binary, None).await.unwrap();
    assert_eq!(
        kv.get("binary").await.unwrap().as_deref(),
        Some(&binary[..])
    );

    kv.set("empty", b"", None).await.unwrap();
    assert_eq!(
        kv.get("empty").await.unwrap(),
        Some(Vec::new()),
        "an empty value is a value"
    );

    assert!(
        kv.delete("greeting").await.unwrap(),
        "delete reports an existing key"
    );
    assert_eq!(kv.get("greeting").await.unwrap(), None);
    assert!(
        !kv.delete("greeting").await.unwrap(),
        "delete reports a missing key"
    );
    assert!(!kv.delete("never-set").await.unwrap());
    assert_eq!(
        kv.get("binary").await.unwrap().as_deref(),
        Some(&binary[..]),
        "other keys stay"
    );
}

async fn values_expire_after_their_ttl(kv: Arc<dyn KeyValue>) {
    kv.set("short", b"v", Some(Duration::from_millis(200)))
        .await
        .unwrap();
    kv.set("forever", b"v", None).await.unwrap();
    kv.set("long", b"v", Some(Duration::from_secs(60)))
        .await
        .unwrap();
    assert!(kv.get("short").await.unwrap().is_some());

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        kv.get("short").await.unwrap(),
        None,
        "expired value is gone"
    );
    assert_eq!(kv.ttl("short").await.unwrap(), None);
    assert!(
        !kv.delete("short").await.unwrap(),
        "an expired key no longer exists"
    );
    assert!(kv.get("forever").await.unwrap().is_some());
    assert!(kv.get("long").await.unwrap().is_some());

    // Overwriting without a TTL makes a value permanent.
    kv.set("made-permanent", b"1", Some(Duration::from_millis(200)))
        .await
        .unwrap();
    kv.set("made-permanent", b"2", None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        text(kv.get("made-permanent").await.unwrap()).as_deref(),
        Some("2")
    );
}

async fn ttl_reports_remaining_lifetime(kv: Arc<dyn KeyValue>) {
    assert_eq!(kv.ttl("missing").await.unwrap(), None, "missing key");
    kv.set("forever", b"v", None).await.unwrap();
    assert_eq!(kv.ttl("forever").await.unwrap(), None, "key without expiry");

    kv.set("minute", b"v", Some(Duration::from_secs(60)))
        .await
        .unwrap();
    let ttl = kv
        .ttl("minute")
        .await
        .unwrap()
        .expect("a key with a TTL reports it");
    assert!(
        ttl <= Duration::from_secs(60) && ttl > Duration::from_secs(55),
        "ttl {ttl:?} should be just under 60 s"
    );

    kv.set("short", b"v", Some(Duration::from_millis(500)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ttl = kv.ttl("short").await.unwrap().expect("still alive");
    assert!(ttl <= Duration::from_millis(300), "ttl {ttl:?} counts down");
}

async fn increment_counts_from_zero(kv: Arc<dyn KeyValue>) {
    assert_eq!(
        kv.increment("hits", 1, None).await.unwrap(),
        1,
        "a new counter starts at 0"
    );
    assert_eq!(kv.increment("hits", 1, None).await.unwrap(), 2);
    assert_eq!(kv.increment("hits", 5, None).await.unwrap(), 7);
    assert_eq!(
        kv.increment("hits", -10, None).await.unwrap(),
        -3,
        "negative steps"
    );
    assert_eq!(
        text(kv.get("hits").await.unwrap()).as_deref(),
        Some("-3"),
        "stored as text"
    );
    assert_eq!(
        kv.ttl("hits").await.unwrap(),
        None,
        "no TTL asked, none set"
    );

    kv.set("preset", b"41", None).await.unwrap();
    assert_eq!(
        kv.increment("preset", 1, None).await.unwrap(),
        42,
        "counts on from a set value"
    );
}

async fn increment_ttl_is_a_fixed_window(kv: Arc<dyn KeyValue>) {
    let window = Duration::from_millis(400);
    assert_eq!(kv.increment("window", 1, Some(window)).await.unwrap(), 1);
    let first_ttl = kv
        .ttl("window")
        .await
        .unwrap()
        .expect("a new counter gets the TTL");
    assert!(
        first_ttl <= window && first_ttl > Duration::from_millis(250),
        "{first_ttl:?}"
    );

    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(kv.increment("window", 1, Some(window)).await.unwrap(), 2);
    let later_ttl = kv.ttl("window").await.unwrap().expect("still counting");
    assert!(
        later_ttl <= Duration::from_millis(260),
        "a later increment must not extend the window (ttl {later_ttl:?})"
    );

    tokio::time::sleep(later_ttl + Duration::from_millis(100)).await;
    assert_eq!(kv.get("window").await.unwrap(), None, "the window ended");
    assert_eq!(
        kv.increment("window", 1, Some(window)).await.unwrap(),
        1,
        "a new window counts from 0 again"
    );
    assert!(
        kv.ttl("window")
            .await
            .unwrap()
            .is_some_and(|t| t > Duration::from_millis(250))
    );
}

async fn increment_keeps_an_existing_expiry(kv: Arc<dyn KeyValue>) {
    kv.set("n", b"10", Some(Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(kv.increment("n", 1, None).await.unwrap(), 11);
    let ttl = kv
        .ttl("n")
        .await
        .unwrap()
        .expect("increment keeps the expiry");
    assert!(
        ttl > Duration::from_secs(25) && ttl <= Duration::from_secs(30),
        "{ttl:?}"
    );
    assert_eq!(
        kv.increment("n", 1, Some(Duration::from_secs(600)))
            .await
            .unwrap(),
        12
    );
    let ttl = kv
        .ttl("n")
        .await
        .unwrap()
        .expect("increment keeps the expiry");
    assert!(
        ttl <= Duration::from_secs(30),
        "the existing expiry wins: {ttl:?}"
    );
}

/// Sets `KEYS[1]` to `ARGV[2]` when it holds `ARGV[1]`; returns `{1, new}` or `{0, current}`
/// (`current` nil when the key is missing).
static COMPARE_AND_SET: Script = Script {
    name: "test-compare-and-set",
    lua: r#"
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return {1, ARGV[2]}
end
return {0, current}
"#,
    native: |ks, keys, args| {
        let current = ks.get(&keys[0]);
        if current.as_deref() == Some(args[0].as_bytes()) {
            ks.set(&keys[0], args[1].clone().into_bytes(), None);
            return ScriptValue::List(vec![
                ScriptValue::Int(1),
                ScriptValue::Text(args[1].clone()),
            ]);
        }
        let current = match current {
            Some(bytes) => ScriptValue::Text(String::from_utf8_lossy(&bytes).into_owned()),
            None => ScriptValue::Nil,
        };
        ScriptValue::List(vec![ScriptValue::Int(0), current])
    },
};

/// Takes one unit from the counter `KEYS[1]` if it is positive: returns the count left, or
/// -1 when there was nothing to take. Keeps the counter's expiry.
static DECREMENT_IF_POSITIVE: Script = Script {
    name: "test-decrement-if-positive",
    lua: r#"
local value = tonumber(redis.call('GET', KEYS[1]) or '0')
if value ~= nil and value > 0 then
  return redis.call('DECRBY', KEYS[1], 1)
end
return -1
"#,
    native: |ks, keys, _args| {
        let value = ks
            .get(&keys[0])
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0);
        if value > 0 {
            ScriptValue::Int(ks.increment(&keys[0], -1).unwrap_or(-1))
        } else {
            ScriptValue::Int(-1)
        }
    },
};

/// Returns `KEYS[1]`'s value.
static GET_VALUE: Script = Script {
    name: "test-get-value",
    lua: "return redis.call('GET', KEYS[1])",
    native: |ks, keys, _args| {
        ks.get(&keys[0])
            .map_or(ScriptValue::Nil, ScriptValue::from_bytes)
    },
};

fn args(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| (*v).to_owned()).collect()
}

async fn custom_script_compare_and_set(kv: Arc<dyn KeyValue>) {
    use ScriptValue::{Int, List, Nil, Text};

    let missing = kv
        .eval(&COMPARE_AND_SET, &["slot"], &args(&["a", "b"]))
        .await
        .unwrap();
    assert_eq!(missing, List(vec![Int(0), Nil]), "a missing key is nil");
    assert_eq!(
        kv.get("slot").await.unwrap(),
        None,
        "nothing written on a mismatch"
    );

    kv.set("slot", b"a", Some(Duration::from_secs(60)))
        .await
        .unwrap();
    let swapped = kv
        .eval(&COMPARE_AND_SET, &["slot"], &args(&["a", "b"]))
        .await
        .unwrap();
    assert_eq!(swapped, List(vec![Int(1), Text("b".into())]));
    assert_eq!(text(kv.get("slot").await.unwrap()).as_deref(), Some("b"));
    assert_eq!(
        kv.ttl("slot").await.unwrap(),
        None,
        "a plain SET in a script clears the TTL"
    );

    let stale = kv
        .eval(&COMPARE_AND_SET, &["slot"], &args(&["a", "c"]))
        .await
        .unwrap();
    assert_eq!(
        stale,
        List(vec![Int(0), Text("b".into())]),
        "a stale expectation sees the current value"
    );
    assert_eq!(text(kv.get("slot").await.unwrap()).as_deref(), Some("b"));

    // Keys given to a script are the same keys get/set see (prefixing included).
    kv.set("other", b"x", None).await.unwrap();
    let via_script = kv
        .eval(&COMPARE_AND_SET, &["other"], &args(&["x", "y"]))
        .await
        .unwrap();
    assert_eq!(via_script, List(vec![Int(1), Text("y".into())]));
    assert_eq!(text(kv.get("other").await.unwrap()).as_deref(), Some("y"));
}

async fn custom_script_decrement_if_positive(kv: Arc<dyn KeyValue>) {
    let run = |kv: Arc<dyn KeyValue>| async move {
        kv.eval(&DECREMENT_IF_POSITIVE, &["stock"], &[])
            .await
            .unwrap()
            .as_int()
            .expect("the script returns an integer")
    };
    assert_eq!(
        run(kv.clone()).await,
        -1,
        "a missing counter has nothing to take"
    );
    kv.set("stock", b"2", Some(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(run(kv.clone()).await, 1);
    assert_eq!(run(kv.clone()).await, 0);
    assert_eq!(run(kv.clone()).await, -1, "never below zero");
    assert_eq!(text(kv.get("stock").await.unwrap()).as_deref(), Some("0"));
    assert!(
        kv.ttl("stock").await.unwrap().is_some(),
        "the counter keeps its expiry"
    );
}

async fn scripts_return_binary_values_intact(kv: Arc<dyn KeyValue>) {
    let binary = vec![0u8, 159, 146, 150, 255, b'\n', 0];
    kv.set("binary", &binary, None).await.unwrap();
    kv.set("text", "grüße".as_bytes(), None).await.unwrap();
    let get = |key: &'static str| {
        let kv = kv.clone();
        async move { kv.eval(&GET_VALUE, &[key], &[]).await.unwrap() }
    };
    assert_eq!(get("binary").await, ScriptValue::Bytes(binary));
    assert_eq!(get("text").await, ScriptValue::Text("grüße".into()));
    assert_eq!(get("missing").await, ScriptValue::Nil);
}

async fn concurrent_script_runs_are_atomic(kv: Arc<dyn KeyValue>) {
    kv.set("stock", b"50", None).await.unwrap();
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let kv = kv.clone();
            tokio::spawn(async move {
                kv.eval(&DECREMENT_IF_POSITIVE, &["stock"], &[])
                    .await
                    .unwrap()
                    .as_int()
                    .unwrap()
            })
        })
        .collect();
    let mut left = Vec::new();
    for task in tasks {
        left.push(task.await.unwrap());
    }
    let taken: BTreeSet<i64> = left.iter().copied().filter(|n| *n >= 0).collect();
    assert_eq!(
        left.iter().filter(|n| **n >= 0).count(),
        50,
        "exactly the 50 units are taken"
    );
    assert_eq!(
        taken,
        (0..50).collect(),
        "each remaining count is seen exactly once"
    );
    assert_eq!(
        left.iter().filter(|n| **n == -1).count(),
        150,
        "the rest are refused"
    );
    assert_eq!(text(kv.get("stock").await.unwrap()).as_deref(), Some("0"));
}

async fn concurrent_increments_are_atomic(kv: Arc<dyn KeyValue>) {
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let kv = kv.clone();
            tokio::spawn(async move {
                kv.increment("hits", 1, Some(Duration::from_secs(60)))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut seen = BTreeSet::new();
    for task in tasks {
        assert!(
            seen.insert(task.await.unwrap()),
            "two increments saw the same count"
        );
    }
    assert_eq!(seen, (1..=200).collect());
    assert_eq!(text(kv.get("hits").await.unwrap()).as_deref(), Some("200"));
}

async fn ping_answers(kv: Arc<dyn KeyValue>) {
    kv.ping().await.expect("the store answers");
    assert!(["memory", "redis"].contains(&kv.kind()));
}

/// Instances of a scaled-out shop share what they store under one prefix, and shops (or
/// test runs) under different prefixes never see each other's keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_prefixes_share_and_isolate() {
    harness::bounded(async {
        let shop = harness::RedisPrefix::new().await;
        let other_shop = harness::RedisPrefix::new().await;
        let first = redis_store(&shop.prefix).await;
        let second = redis_store(&shop.prefix).await;
        let stranger = redis_store(&other_shop.prefix).await;

        first
            .set("session", b"s1", Some(Duration::from_secs(60)))
            .await
            .unwrap();
        assert_eq!(
            second.get("session").await.unwrap().as_deref(),
            Some(&b"s1"[..])
        );
        assert_eq!(stranger.get("session").await.unwrap(), None);

        assert_eq!(stranger.increment("count", 1, None).await.unwrap(), 1);
        assert_eq!(first.increment("count", 1, None).await.unwrap(), 1);
        assert_eq!(second.increment("count", 1, None).await.unwrap(), 2);

        assert!(second.delete("session").await.unwrap());
        assert_eq!(first.get("session").await.unwrap(), None);
        assert_eq!(first.kind(), "redis");
    })
    .await
}

// ---------------------------------------------------------------------------------------
// Streams with consumer groups
// ---------------------------------------------------------------------------------------

/// Appends an entry with the given fields (name, value, name, value, …) to `KEYS[1]` and
/// returns its id, as the flash-sale gate appends purchases.
static STREAM_APPEND: Script = Script {
    name: "test-stream-append",
    lua: "return redis.call('XADD', KEYS[1], '*', unpack(ARGV))",
    native: |ks, keys, args| {
        let fields = args
            .chunks(2)
            .map(|pair| (pair[0].clone(), pair.get(1).cloned().unwrap_or_default()))
            .collect();
        ScriptValue::Text(ks.stream_add(&keys[0], fields))
    },
};

async fn append(kv: &Arc<dyn KeyValue>, stream: &str, n: usize) -> String {
    let value = kv
        .eval(
            &STREAM_APPEND,
            &[stream],
            &args(&["n", &n.to_string(), "kind", "test"]),
        )
        .await
        .expect("the append script failed");
    match value {
        ScriptValue::Text(id) => id,
        other => panic!("the append script returned {other:?}, not an id"),
    }
}

fn ids(entries: &[bazaar::platform::cache::StreamEntry]) -> Vec<String> {
    entries.iter().map(|e| e.id.clone()).collect()
}

async fn streams_deliver_each_entry_to_one_consumer_of_a_group(kv: Arc<dyn KeyValue>) {
    let mut appended = Vec::new();
    for n in 0..5 {
        appended.push(append(&kv, "orders", n).await);
    }
    let all = kv
        .stream_entries("orders")
        .await
        .expect("cannot list the stream");
    assert_eq!(
        ids(&all),
        appended,
        "entries are kept in the order appended"
    );
    assert_eq!(all[3].field("n"), Some("3"));
    assert_eq!(all[3].field("kind"), Some("test"));
    assert_eq!(all[3].field("missing"), None);

    // Each entry goes to one consumer of the group.
    let a = kv
        .stream_read("orders", "workers", "a", 3)
        .await
        .expect("a cannot read");
    let b = kv
        .stream_read("orders", "workers", "b", 10)
        .await
        .expect("b cannot read");
    assert_eq!(ids(&a), appended[..3]);
    assert_eq!(ids(&b), appended[3..]);
    assert!(
        kv.stream_read("orders", "workers", "b", 10)
            .await
            .expect("b cannot read")
            .is_empty(),
        "nothing is delivered twice"
    );
    let state = kv
        .stream_group("orders", "workers")
        .await
        .expect("cannot read the group")
        .expect("the group exists");
    assert_eq!(state.last_delivered.as_deref(), Some(appended[4].as_str()));
    assert_eq!(
        state.pending, appended,
        "delivered entries wait for their ack"
    );

    // Acknowledged entries leave the pending list; acknowledging again changes nothing.
    kv.stream_ack("orders", "workers", &ids(&b))
        .await
        .expect("cannot acknowledge");
    kv.stream_ack("orders", "workers", &ids(&b))
        .await
        .expect("a repeated ack failed");
    let state = kv
        .stream_group("orders", "workers")
        .await
        .expect("cannot read the group")
        .expect("the group exists");
    assert_eq!(state.pending, appended[..3]);

    // A new entry goes to whoever reads next; another group reads the stream from its start.
    let sixth = append(&kv, "orders", 5).await;
    let next = kv
        .stream_read("orders", "workers", "a", 10)
        .await
        .expect("a cannot read");
    assert_eq!(ids(&next), [sixth]);
    let audit = kv
        .stream_read("orders", "audit", "x", 100)
        .await
        .expect("the second group cannot read");
    assert_eq!(audit.len(), 6, "groups are independent");
    assert_eq!(
        kv.stream_entries("orders")
            .await
            .expect("cannot list")
            .len(),
        6,
        "reading and acknowledging remove nothing from the stream"
    );
}

async fn idle_pending_entries_pass_to_another_consumer(kv: Arc<dyn KeyValue>) {
    let mut appended = Vec::new();
    for n in 0..3 {
        appended.push(append(&kv, "jobs", n).await);
    }
    let taken = kv
        .stream_read("jobs", "workers", "doomed", 10)
        .await
        .expect("cannot read");
    assert_eq!(taken.len(), 3);
    // The consumer dies without acknowledging. Entries are not taken from a live consumer.
    assert!(
        kv.stream_claim("jobs", "workers", "rescuer", Duration::from_secs(30), 10)
            .await
            .expect("cannot claim")
            .is_empty(),
        "entries were claimed before they were idle"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let first = kv
        .stream_claim("jobs", "workers", "rescuer", Duration::from_millis(200), 2)
        .await
        .expect("cannot claim");
    assert_eq!(ids(&first), appended[..2], "oldest first, at most `count`");
    assert_eq!(
        first[1].field("n"),
        Some("1"),
        "a claimed entry keeps its fields"
    );
    let rest = kv
        .stream_claim("jobs", "workers", "rescuer", Duration::from_millis(200), 10)
        .await
        .expect("cannot claim");
    assert_eq!(
        ids(&rest),
        appended[2..],
        "entries just claimed are not idle: only the last one is left"
    );
    // Still pending, now for the rescuer, until acknowledged.
    let state = kv
        .stream_group("jobs", "workers")
        .await
        .expect("cannot read the group")
        .expect("the group exists");
    assert_eq!(state.pending, appended);
    kv.stream_ack("jobs", "workers", &appended)
        .await
        .expect("cannot acknowledge");
    let state = kv
        .stream_group("jobs", "workers")
        .await
        .expect("cannot read the group")
        .expect("the group exists");
    assert!(state.pending.is_empty(), "{state:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        kv.stream_claim("jobs", "workers", "late", Duration::from_millis(200), 10)
            .await
            .expect("cannot claim")
            .is_empty(),
        "acknowledged entries are never claimed"
    );
}

async fn a_group_on_a_missing_stream_starts_empty(kv: Arc<dyn KeyValue>) {
    assert_eq!(
        kv.stream_group("nothing", "workers")
            .await
            .expect("cannot read the group"),
        None
    );
    assert!(
        kv.stream_entries("nothing")
            .await
            .expect("cannot list")
            .is_empty()
    );
    assert!(
        kv.stream_claim("nothing", "workers", "a", Duration::ZERO, 10)
            .await
            .expect("claiming from no group failed")
            .is_empty()
    );
    assert!(
        kv.stream_read("nothing", "workers", "a", 10)
            .await
            .expect("cannot read")
            .is_empty()
    );
    let state = kv
        .stream_group("nothing", "workers")
        .await
        .expect("cannot read the group")
        .expect("reading created the group");
    assert_eq!(state.last_delivered, None);
    assert!(state.pending.is_empty());
    // Entries appended after the group was made are delivered to it.
    let id = append(&kv, "nothing", 1).await;
    let read = kv
        .stream_read("nothing", "workers", "a", 10)
        .await
        .expect("cannot read");
    assert_eq!(ids(&read), [id]);
    // Deleting the key removes the stream.
    assert!(kv.delete("nothing").await.expect("cannot delete"));
    assert!(
        kv.stream_entries("nothing")
            .await
            .expect("cannot list")
            .is_empty()
    );
}

async fn concurrent_appends_and_readers_see_each_entry_once(kv: Arc<dyn KeyValue>) {
    let appends: Vec<_> = (0..200)
        .map(|n| {
            let kv = kv.clone();
            tokio::spawn(async move { append(&kv, "rush", n).await })
        })
        .collect();
    let mut appended = BTreeSet::new();
    for task in appends {
        appended.insert(task.await.expect("an append task panicked"));
    }
    assert_eq!(appended.len(), 200, "every append has an id of its own");
    let readers: Vec<_> = (0..4)
        .map(|r| {
            let kv = kv.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    let batch = kv
                        .stream_read("rush", "workers", &format!("r{r}"), 7)
                        .await
                        .expect("cannot read");
                    if batch.is_empty() {
                        return got;
                    }
                    kv.stream_ack("rush", "workers", &ids(&batch))
                        .await
                        .expect("cannot acknowledge");
                    got.extend(ids(&batch));
                }
            })
        })
        .collect();
    let mut delivered = Vec::new();
    for reader in readers {
        delivered.extend(reader.await.expect("a reader panicked"));
    }
    assert_eq!(delivered.len(), 200, "nothing delivered twice or lost");
    assert_eq!(delivered.into_iter().collect::<BTreeSet<_>>(), appended);
    let state = kv
        .stream_group("rush", "workers")
        .await
        .expect("cannot read the group")
        .expect("the group exists");
    assert!(state.pending.is_empty());
}
