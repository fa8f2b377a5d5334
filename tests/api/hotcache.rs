//! The hot-read cache (R10.11) on the in-process store and on Redis: hits in one round
//! trip, one load per cold key, cached misses, the Bloom filter, and invalidation that a
//! racing load cannot undo.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Bytes;
use bazaar::platform::cache::{GroupState, KeyValue, Script, ScriptValue, StreamEntry};
use bazaar::platform::hotcache::{BloomBuild, HotCache, HotCacheSettings};
use tokio::sync::oneshot;

use crate::kv::both_stores;

both_stores!(
    a_second_read_is_a_hit_in_one_round_trip,
    fifty_cold_readers_share_one_load,
    unknown_keys_are_turned_away_once_the_filter_is_built,
    without_a_filter_every_key_reaches_the_loader,
    a_cached_miss_is_served_until_invalidated,
    invalidation_beats_a_racing_load,
    invalidate_all_reloads_every_key,
    loader_errors_reach_every_waiter_and_are_not_cached,
    added_keys_become_reachable,
    a_rebuild_drops_deleted_keys,
    keys_added_during_a_rebuild_are_kept,
    instances_starting_together_build_the_filter_once,
    entries_live_between_ttl_and_ttl_plus_jitter,
);

#[derive(Debug, Clone, PartialEq, Eq)]
struct LoadFailed;

type Loaded = Result<Option<Bytes>, LoadFailed>;

fn settings() -> HotCacheSettings {
    HotCacheSettings {
        ttl: Duration::from_secs(60),
        jitter: Duration::from_secs(10),
        miss_ttl: Duration::from_secs(12),
        expected_keys: 1_000,
        false_positive_rate: 0.01,
    }
}

fn product_cache() -> HotCache<LoadFailed> {
    HotCache::new("product", settings())
}

fn doc(value: &'static str) -> Loaded {
    Ok(Some(Bytes::from_static(value.as_bytes())))
}

/// A loader that counts its calls and returns `value`.
async fn counted(calls: &AtomicUsize, value: Option<&str>) -> Result<Option<Vec<u8>>, LoadFailed> {
    calls.fetch_add(1, Ordering::SeqCst);
    Ok(value.map(|v| v.as_bytes().to_vec()))
}

/// Reads `key` with a counting loader that finds `value`.
async fn read(
    cache: &HotCache<LoadFailed>,
    kv: &dyn KeyValue,
    calls: &AtomicUsize,
    key: &str,
    value: Option<&str>,
) -> Loaded {
    cache.get_or_load(kv, key, || counted(calls, value)).await
}

fn keys(keys: &[&str]) -> anyhow::Result<Vec<String>> {
    Ok(keys.iter().map(|k| (*k).to_owned()).collect())
}

/// Counts the round trips to the store it wraps.
struct Counting {
    inner: Arc<dyn KeyValue>,
    calls: AtomicUsize,
}

impl Counting {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn call(&self) -> &dyn KeyValue {
        self.calls.fetch_add(1, Ordering::SeqCst);
        &*self.inner
    }
}

#[async_trait]
impl KeyValue for Counting {
    async fn get(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        self.call().get(key).await
    }
    async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> anyhow::Result<()> {
        self.call().set(key, value, ttl).await
    }
    async fn delete(&self, key: &str) -> anyhow::Result<bool> {
        self.call().delete(key).await
    }
    async fn ttl(&self, key: &str) -> anyhow::Result<Option<Duration>> {
        self.call().ttl(key).await
    }
    async fn eval(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[String],
    ) -> anyhow::Result<ScriptValue> {
        self.call().eval(script, keys, args).await
    }
    async fn stream_read(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        count: usize,
    ) -> anyhow::Result<Vec<StreamEntry>> {
        self.call()
            .stream_read(stream, group, consumer, count)
            .await
    }
    async fn stream_claim(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> anyhow::Result<Vec<StreamEntry>> {
        self.call()
            .stream_claim(stream, group, consumer, min_idle, count)
            .await
    }
    async fn stream_ack(&self, stream: &str, group: &str, ids: &[String]) -> anyhow::Result<()> {
        self.call().stream_ack(stream, group, ids).await
    }
    async fn stream_entries(&self, stream: &str) -> anyhow::Result<Vec<StreamEntry>> {
        self.call().stream_entries(stream).await
    }
    async fn stream_group(&self, stream: &str, group: &str) -> anyhow::Result<Option<GroupState>> {
        self.call().stream_group(stream, group).await
    }
    async fn ping(&self) -> anyhow::Result<()> {
        self.call().ping().await
    }
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
}

async fn a_second_read_is_a_hit_in_one_round_trip(kv: Arc<dyn KeyValue>) {
    let kv = Counting {
        inner: kv,
        calls: AtomicUsize::new(0),
    };
    let cache = product_cache();
    let loads = AtomicUsize::new(0);
    // Binary, to show the cache does not assume text.
    let document: &[u8] = &[b'{', 0, 159, 146, 150, 255, b'\n', b'}'];
    let load = || async {
        loads.fetch_add(1, Ordering::SeqCst);
        Ok(Some(document.to_vec()))
    };

    let first = cache.get_or_load(&kv, "blue-shirt", load).await;
    assert_eq!(first, Ok(Some(Bytes::from_static(document))));
    let before = kv.calls();
    let second = cache.get_or_load(&kv, "blue-shirt", load).await;
    assert_eq!(second, Ok(Some(Bytes::from_static(document))));
    assert_eq!(loads.load(Ordering::SeqCst), 1, "the second read is a hit");
    assert_eq!(
        kv.calls() - before,
        1,
        "a hit is one round trip to the store"
    );
}

async fn fifty_cold_readers_share_one_load(kv: Arc<dyn KeyValue>) {
    let cache = Arc::new(product_cache());
    let loads = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..50)
        .map(|_| {
            let (kv, cache, loads) = (kv.clone(), cache.clone(), loads.clone());
            tokio::spawn(async move {
                cache
                    .get_or_load(&*kv, "blue-shirt", || async {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok(Some(b"doc".to_vec()))
                    })
                    .await
            })
        })
        .collect();
    for reader in readers {
        assert_eq!(reader.await.unwrap(), doc("doc"));
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1, "one load for 50 readers");
}

async fn unknown_keys_are_turned_away_once_the_filter_is_built(kv: Arc<dyn KeyValue>) {
    let cache = product_cache();
    let loads = AtomicUsize::new(0);
    let built = cache
        .rebuild(&*kv, || async { keys(&["blue-shirt", "red-hat"]) })
        .await
        .unwrap();
    assert_eq!(built, BloomBuild::Built { keys: 2 });

    for i in 0..100 {
        let unknown = format!("no-such-product-{i}");
        assert_eq!(read(&cache, &*kv, &loads, &unknown, None).await, Ok(None));
    }
    assert_eq!(
        loads.load(Ordering::SeqCst),
        0,
        "a flood of unknown keys never reaches the loader"
    );
    assert_eq!(
        read(&cache, &*kv, &loads, "red-hat", Some("hat")).await,
        doc("hat")
    );
    assert_eq!(loads.load(Ordering::SeqCst), 1, "known keys are loaded");
}

async fn without_a_filter_every_key_reaches_the_loader(kv: Arc<dyn KeyValue>) {
    let cache = product_cache();
    let loads = AtomicUsize::new(0);
    assert_eq!(
        read(&cache, &*kv, &loads, "blue-shirt", Some("shirt")).await,
        doc("shirt"),
        "no filter yet: nothing is rejected"
    );
    assert_eq!(
        read(&cache, &*kv, &loads, "no-such-product", None).await,
        Ok(None)
    );
    assert_eq!(loads.load(Ordering::SeqCst), 2);
}

async fn a_cached_miss_is_served_until_invalidated(kv: Arc<dyn KeyValue>) {
    let cache = product_cache();
    let loads = AtomicUsize::new(0);
    for _ in 0..3 {
        assert_eq!(
            read(&cache, &*kv, &loads, "coming-soon", None).await,
            Ok(None)
        );
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1, "the miss is cached");
    let ttl = kv
        .ttl("hot:product:e:coming-soon")
        .await
        .unwrap()
        .expect("a cached miss expires");
    // miss_ttl 12 s, spread like values by jitter / ttl = 1/6: up to 2 s.
    assert!(
        ttl > Duration::from_secs(11) && ttl <= Duration::from_secs(14),
        "a miss lives miss_ttl plus its share of jitter: {ttl:?}"
    );

    // The product is created: the write calls `add` (or `invalidate`) after committing.
    cache.invalidate(&*kv, "coming-soon").await;
    assert_eq!(
        read(&cache, &*kv, &loads, "coming-soon", Some("new")).await,
        doc("new")
    );
    assert_eq!(loads.load(Ordering::SeqCst), 2);
}

async fn invalidation_beats_a_racing_load(kv: Arc<dyn KeyValue>) {
    let cache = Arc::new(product_cache());
    let loads = Arc::new(AtomicUsize::new(0));
    let (started, load_started) = oneshot::channel();
    let (finish, finish_load) = oneshot::channel::<()>();
    let stale = tokio::spawn({
        let (kv, cache, loads) = (kv.clone(), cache.clone(), loads.clone());
        async move {
            cache
                .get_or_load(&*kv, "blue-shirt", || async move {
                    loads.fetch_add(1, Ordering::SeqCst);
                    let _ = started.send(());
                    let _ = finish_load.await;
                    Ok(Some(b"old price".to_vec()))
                })
                .await
        }
    });
    load_started.await.unwrap();

    // The price changes and its write commits while the load above is still reading.
    cache.invalidate(&*kv, "blue-shirt").await;
    assert_eq!(
        read(&cache, &*kv, &loads, "blue-shirt", Some("new price")).await,
        doc("new price"),
        "a read that starts after the write does not join the load from before it"
    );

    finish.send(()).unwrap();
    assert_eq!(
        stale.await.unwrap(),
        doc("old price"),
        "the slow reader started before the write"
    );
    // Its fill landed last; it carries the old stamp and must not be served.
    assert_eq!(
        read(&cache, &*kv, &loads, "blue-shirt", Some("new price")).await,
        doc("new price")
    );
    assert_eq!(
        loads.load(Ordering::SeqCst),
        3,
        "the stale fill forced a reload"
    );
    assert_eq!(
        read(&cache, &*kv, &loads, "blue-shirt", Some("new price")).await,
        doc("new price")
    );
    assert_eq!(loads.load(Ordering::SeqCst), 3, "and the reload is cached");
}

async fn invalidate_all_reloads_every_key(kv: Arc<dyn KeyValue>) {
    let cache = product_cache();
    let loads = AtomicUsize::new(0);
    for key in ["blue-shirt", "red-hat", "blue-shirt", "red-hat"] {
        read(&cache, &*kv, &loads, key, Some("doc")).await.unwrap();
    }
    read(&cache, &*kv, &loads, "gone", None).await.unwrap();
    assert_eq!(loads.load(Ordering::SeqCst), 3);

    // A category rename changes every product's breadcrumbs.
    cache.invalidate_all(&*kv).await;
    for key in ["blue-shirt", "red-hat", "blue-shirt", "red-hat"] {
        assert_eq!(
            read(&cache, &*kv, &loads, key, Some("renamed")).await,
            doc("renamed")
        );
    }
    read(&cache, &*kv, &loads, "gone", None).await.unwrap();
    assert_eq!(
        loads.load(Ordering::SeqCst),
        6,
        "each key, misses too, loaded once more"
    );
}

async fn loader_errors_reach_every_waiter_and_are_not_cached(kv: Arc<dyn KeyValue>) {
    let cache = Arc::new(product_cache());
    let loads = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..10)
        .map(|_| {
            let (kv, cache, loads) = (kv.clone(), cache.clone(), loads.clone());
            tokio::spawn(async move {
                cache
                    .get_or_load(&*kv, "blue-shirt", || async {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Err(LoadFailed)
                    })
                    .await
            })
        })
        .collect();
    for reader in readers {
        assert_eq!(reader.await.unwrap(), Err(LoadFailed));
    }
    assert_eq!(
        loads.load(Ordering::SeqCst),
        1,
        "waiters share the failed load"
    );
    assert_eq!(
        read(&cache, &*kv, &loads, "blue-shirt", Some("doc")).await,
        doc("doc"),
        "the error was not cached"
    );
    assert_eq!(loads.load(Ordering::SeqCst), 2);
}

async fn added_keys_become_reachable(kv: Arc<dyn KeyValue>) {
    let cache = product_cache();
    let loads = AtomicUsize::new(0);
    cache
        .rebuild(&*kv, || async { keys(&["blue-shirt"]) })
        .await
        .unwrap();
    assert_eq!(
        read(&cache, &*kv, &loads, "green-sock", None).await,
        Ok(None)
    );
    assert_eq!(
        loads.load(Ordering::SeqCst),
        0,
        "not created yet: turned away"
    );

    // The product is created; after the commit:
    cache.add(&*kv, "green-sock").await;
    assert_eq!(
        read(&cache, &*kv, &loads, "green-sock", Some("sock")).await,
        doc("sock")
    );
    assert_eq!(loads.load(Ordering::SeqCst), 1);
}

async fn a_rebuild_drops_deleted_keys(kv: Arc<dyn KeyValue>) {
    let cache = product_cache();
    let loads = AtomicUsize::new(0);
    cache
        .rebuild(&*kv, || async {
            keys(&["blue-shirt", "red-hat", "green-sock"])
        })
        .await
        .unwrap();
    assert_eq!(
        read(&cache, &*kv, &loads, "green-sock", Some("sock")).await,
        doc("sock")
    );

    // The sock is deleted (its write invalidated it), then the periodic rebuild runs.
    cache.invalidate(&*kv, "green-sock").await;
    let rebuilt = cache
        .rebuild(&*kv, || async { keys(&["blue-shirt", "red-hat"]) })
        .await
        .unwrap();
    assert_eq!(rebuilt, BloomBuild::Built { keys: 2 });
    assert_eq!(
        read(&cache, &*kv, &loads, "green-sock", None).await,
        Ok(None)
    );
    assert_eq!(
        loads.load(Ordering::SeqCst),
        1,
        "a deleted key is turned away after the rebuild"
    );
    assert_eq!(
        read(&cache, &*kv, &loads, "red-hat", Some("hat")).await,
        doc("hat"),
        "the others are still reachable"
    );
}

async fn keys_added_during_a_rebuild_are_kept(kv: Arc<dyn KeyValue>) {
    let cache = product_cache();
    let loads = AtomicUsize::new(0);
    // A product created after the listing was read, and one created during the first
    // build of all (when no filter is in place yet).
    let first = cache
        .ensure_bloom(&*kv, || async {
            let listed = keys(&["blue-shirt"]);
            cache.add(&*kv, "early-bird").await;
            listed
        })
        .await
        .unwrap();
    assert_eq!(first, BloomBuild::Built { keys: 1 });
    cache
        .rebuild(&*kv, || async {
            let listed = keys(&["blue-shirt", "early-bird"]);
            cache.add(&*kv, "late-comer").await;
            listed
        })
        .await
        .unwrap();

    for key in ["blue-shirt", "early-bird", "late-comer"] {
        assert_eq!(
            read(&cache, &*kv, &loads, key, Some("doc")).await,
            doc("doc")
        );
    }
    assert_eq!(
        loads.load(Ordering::SeqCst),
        3,
        "every added key is reachable"
    );
    assert_eq!(
        read(&cache, &*kv, &loads, "never-made", None).await,
        Ok(None)
    );
    assert_eq!(loads.load(Ordering::SeqCst), 3);
}

async fn instances_starting_together_build_the_filter_once(kv: Arc<dyn KeyValue>) {
    // Two instances of one shop: their own caches, one shared store.
    let (first, second) = (product_cache(), product_cache());
    let listings = AtomicUsize::new(0);
    let list_keys = || async {
        listings.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
        keys(&["blue-shirt"])
    };
    let (a, b) = tokio::join!(
        first.ensure_bloom(&*kv, list_keys),
        second.ensure_bloom(&*kv, list_keys)
    );
    let mut outcomes = [a.unwrap(), b.unwrap()];
    outcomes.sort_by_key(|o| format!("{o:?}"));
    assert_eq!(outcomes, [BloomBuild::Built { keys: 1 }, BloomBuild::Busy]);
    assert_eq!(listings.load(Ordering::SeqCst), 1, "one instance built it");
    // 1000 keys at 1%: 9586 bits, 7 hashes.
    let filter = "hot:product:bloom:9586x7";
    assert!(kv.get(filter).await.unwrap().is_some());
    assert_eq!(
        kv.ttl(filter).await.unwrap(),
        None,
        "the filter does not expire"
    );
    for leftover in ["lock", "next"] {
        assert_eq!(kv.get(&format!("{filter}:{leftover}")).await.unwrap(), None);
    }

    assert_eq!(
        second.ensure_bloom(&*kv, list_keys).await.unwrap(),
        BloomBuild::Present
    );
    assert_eq!(
        listings.load(Ordering::SeqCst),
        1,
        "a present filter is kept"
    );
    assert_eq!(
        second.rebuild(&*kv, list_keys).await.unwrap(),
        BloomBuild::Built { keys: 1 },
        "the periodic rebuild replaces it"
    );

    let loads = AtomicUsize::new(0);
    assert_eq!(read(&first, &*kv, &loads, "unknown", None).await, Ok(None));
    assert_eq!(
        loads.load(Ordering::SeqCst),
        0,
        "both instances use the filter"
    );
}

async fn entries_live_between_ttl_and_ttl_plus_jitter(kv: Arc<dyn KeyValue>) {
    let cache = product_cache();
    let loads = AtomicUsize::new(0);
    let mut ttls = Vec::new();
    for i in 0..20 {
        let key = format!("product-{i}");
        read(&cache, &*kv, &loads, &key, Some("doc")).await.unwrap();
        let ttl = kv
            .ttl(&format!("hot:product:e:{key}"))
            .await
            .unwrap()
            .expect("entries expire");
        // ttl 60 s, jitter 10 s; a little time passes before PTTL answers.
        assert!(
            ttl > Duration::from_secs(59) && ttl <= Duration::from_secs(70),
            "{ttl:?} outside [ttl, ttl + jitter]"
        );
        ttls.push(ttl.as_millis() / 100);
    }
    ttls.sort_unstable();
    ttls.dedup();
    assert!(ttls.len() > 5, "expiries are spread: {ttls:?}");
}
