//! The `Cache` suite, for the in-process cache and for Redis.

use std::time::{Duration, Instant};

use platform::cache::Cache;
use platform::cache::memory::MemoryCache;
use platform::cache::redis::RedisCache;

use crate::{eventually, unique};

/// How long a test waits for something that should happen.
const PATIENCE: Duration = Duration::from_secs(5);
/// A time to live short enough to wait out.
const SHORT: Duration = Duration::from_millis(300);
/// Clock granularity (Redis counts milliseconds).
const CLOCK_SLACK: Duration = Duration::from_millis(10);

/// One adapter under test.
struct CacheFixture {
    cache: Box<dyn Cache>,
}

async fn open_memory() -> Option<CacheFixture> {
    Some(CacheFixture { cache: Box::new(MemoryCache::new(1000)) })
}

async fn open_redis() -> Option<CacheFixture> {
    let url = platform::testing::server_env("SHOP_TEST_REDIS_URL")?;
    let cache = RedisCache::connect(&url, format!("{}:", unique("conformance:"))).await.unwrap();
    Some(CacheFixture { cache: Box::new(cache) })
}

macro_rules! cache_suite {
    ($adapter:ident, $fixture:ident) => {
        mod $adapter {
            use super::*;

            instantiate!($fixture:
                get_returns_what_set_stored,
                delete_removes_a_key_and_says_whether_it_was_there,
                a_key_expires_after_its_ttl,
                set_if_absent_sets_only_once,
                delete_if_deletes_only_the_expected_value,
                increment_counts_within_a_fixed_window,
                ttl_reports_the_remaining_time_to_live,
                the_cache_answers_a_ping,
                a_versioned_value_is_replaced_only_by_a_newer_one,
            );
        }
    };
}

cache_suite!(memory, open_memory);
cache_suite!(redis, open_redis);

/// Waits until `key` is gone; the instant it was seen gone.
async fn gone(cache: &dyn Cache, key: &str) -> Instant {
    eventually(PATIENCE, || async move { cache.get(key).await.unwrap().is_none().then(Instant::now) })
        .await
        .unwrap_or_else(|| panic!("{key} did not expire in {PATIENCE:?}"))
}

// ---- the suite --------------------------------------------------------------------------------

async fn get_returns_what_set_stored(fx: &CacheFixture) {
    let cache = fx.cache.as_ref();
    assert_eq!(cache.get("session").await.unwrap(), None);
    let value: Vec<u8> = (0..=255).collect();
    cache.set("session", &value, None).await.unwrap();
    assert_eq!(cache.get("session").await.unwrap(), Some(value));
    cache.set("session", b"replaced", Some(Duration::from_secs(60))).await.unwrap();
    assert_eq!(cache.get("session").await.unwrap().as_deref(), Some(&b"replaced"[..]));
    cache.set("empty", b"", None).await.unwrap();
    assert_eq!(cache.get("empty").await.unwrap().as_deref(), Some(&b""[..]), "an empty value is a value");
    for key in ["session", "empty"] {
        cache.delete(key).await.unwrap();
    }
}

async fn delete_removes_a_key_and_says_whether_it_was_there(fx: &CacheFixture) {
    let cache = fx.cache.as_ref();
    cache.set("cart", b"3 items", None).await.unwrap();
    assert!(cache.delete("cart").await.unwrap());
    assert_eq!(cache.get("cart").await.unwrap(), None);
    assert!(!cache.delete("cart").await.unwrap());
    assert!(!cache.delete("never-set").await.unwrap());
}

async fn a_key_expires_after_its_ttl(fx: &CacheFixture) {
    let cache = fx.cache.as_ref();
    let set_at = Instant::now();
    cache.set("hot", b"value", Some(SHORT)).await.unwrap();
    cache.set("kept", b"value", Some(Duration::from_secs(60))).await.unwrap();
    if set_at.elapsed() < SHORT - CLOCK_SLACK {
        assert_eq!(cache.get("hot").await.unwrap().as_deref(), Some(&b"value"[..]));
    }
    let gone_at = gone(cache, "hot").await;
    assert!(gone_at + CLOCK_SLACK >= set_at + SHORT, "expired {:?} after a ttl of {SHORT:?}", gone_at - set_at);
    assert_eq!(cache.ttl("hot").await.unwrap(), None);
    assert!(!cache.delete("hot").await.unwrap(), "an expired key is not there to delete");
    assert_eq!(cache.get("kept").await.unwrap().as_deref(), Some(&b"value"[..]), "a longer ttl is untouched");
    cache.delete("kept").await.unwrap();
}

async fn set_if_absent_sets_only_once(fx: &CacheFixture) {
    let cache = fx.cache.as_ref();
    assert!(cache.set_if_absent("lock", b"first", None).await.unwrap());
    assert!(!cache.set_if_absent("lock", b"second", None).await.unwrap());
    assert_eq!(cache.get("lock").await.unwrap().as_deref(), Some(&b"first"[..]), "the loser changes nothing");
    assert!(cache.delete("lock").await.unwrap());
    assert!(cache.set_if_absent("lock", b"third", None).await.unwrap(), "free again once deleted");
    assert!(cache.delete("lock").await.unwrap());

    // With a ttl the key is free again once it expired.
    let set_at = Instant::now();
    assert!(cache.set_if_absent("lease", b"first", Some(SHORT)).await.unwrap());
    let taken = cache.set_if_absent("lease", b"second", Some(Duration::from_secs(60))).await.unwrap();
    let ttl = cache.ttl("lease").await.unwrap();
    if set_at.elapsed() < SHORT - CLOCK_SLACK {
        assert!(!taken, "taken twice within the ttl");
        assert!(ttl.is_some_and(|ttl| ttl <= SHORT), "the first set's ttl stands: {ttl:?}");
    } else if taken {
        // Too slow a machine to tell: the first lease expired already.
        cache.delete("lease").await.unwrap();
    }
    gone(cache, "lease").await;
    assert!(cache.set_if_absent("lease", b"third", Some(SHORT)).await.unwrap());
}

async fn delete_if_deletes_only_the_expected_value(fx: &CacheFixture) {
    let cache = fx.cache.as_ref();
    assert!(cache.set_if_absent("claim", b"holder-1", Some(Duration::from_secs(60))).await.unwrap());
    assert!(!cache.delete_if("claim", b"holder-2").await.unwrap(), "another holder's claim stays");
    assert_eq!(cache.get("claim").await.unwrap().as_deref(), Some(&b"holder-1"[..]));
    assert!(cache.delete_if("claim", b"holder-1").await.unwrap(), "its holder gives it back");
    assert_eq!(cache.get("claim").await.unwrap(), None);
    assert!(!cache.delete_if("claim", b"holder-1").await.unwrap(), "nothing left to delete");
}

async fn increment_counts_within_a_fixed_window(fx: &CacheFixture) {
    let cache = fx.cache.as_ref();
    let window = Duration::from_millis(600);
    let started = Instant::now();
    assert_eq!(cache.increment("logins", 1, window).await.unwrap(), 1, "a new counter starts at 0");
    tokio::time::sleep(Duration::from_millis(150)).await;
    // A later increment keeps the window: its own (longer) ttl does not extend it.
    assert_eq!(cache.increment("logins", 2, Duration::from_secs(60)).await.unwrap(), 3);
    let ttl = cache.ttl("logins").await.unwrap().expect("the counter expires");
    assert!(ttl + Duration::from_millis(150) <= window + CLOCK_SLACK, "the window moved: {ttl:?} left");
    assert_eq!(cache.get("logins").await.unwrap().as_deref(), Some(&b"3"[..]), "a counter reads as its decimal");
    assert_eq!(cache.increment("logins", -1, window).await.unwrap(), 2);

    let gone_at = gone(cache, "logins").await;
    assert!(gone_at + CLOCK_SLACK >= started + window, "the window closed early");
    assert!(gone_at < started + window + Duration::from_secs(2), "the window closed late");
    assert_eq!(cache.increment("logins", 1, window).await.unwrap(), 1, "a new window starts at 0");
    cache.delete("logins").await.unwrap();
}

async fn ttl_reports_the_remaining_time_to_live(fx: &CacheFixture) {
    let cache = fx.cache.as_ref();
    assert_eq!(cache.ttl("missing").await.unwrap(), None);
    cache.set("forever", b"v", None).await.unwrap();
    assert_eq!(cache.ttl("forever").await.unwrap(), None, "a key without expiry has no ttl");
    cache.set("minute", b"v", Some(Duration::from_secs(60))).await.unwrap();
    let ttl = cache.ttl("minute").await.unwrap().expect("a ttl");
    assert!(ttl > Duration::from_secs(55) && ttl <= Duration::from_secs(60), "{ttl:?}");
    cache.set("minute", b"v", None).await.unwrap();
    assert_eq!(cache.ttl("minute").await.unwrap(), None, "a set without ttl makes the key permanent");
    for key in ["forever", "minute"] {
        cache.delete(key).await.unwrap();
    }
}

async fn the_cache_answers_a_ping(fx: &CacheFixture) {
    fx.cache.ping().await.unwrap();
}

async fn a_versioned_value_is_replaced_only_by_a_newer_one(fx: &CacheFixture) {
    let cache = fx.cache.as_ref();
    let minute = Duration::from_secs(60);
    assert!(cache.set_newer("cart", 2, b"second", minute).await.unwrap());
    assert!(!cache.set_newer("cart", 1, b"first", minute).await.unwrap(), "an older copy arriving late");
    assert!(!cache.set_newer("cart", 2, b"again", minute).await.unwrap(), "the same version");
    assert_eq!(cache.get_versioned("cart").await.unwrap(), Some((2, b"second".to_vec())));
    assert!(cache.set_newer("cart", 3, b"", minute).await.unwrap());
    assert_eq!(cache.get_versioned("cart").await.unwrap(), Some((3, Vec::new())), "an empty value is a value");
    assert!(cache.set_newer("cart", u64::MAX, b"gone", minute).await.unwrap());
    assert!(!cache.set_newer("cart", u64::MAX - 1, b"back", minute).await.unwrap());
    cache.set("plain", b"not versioned", None).await.unwrap();
    assert_eq!(cache.get_versioned("plain").await.unwrap(), None);
    assert!(cache.set_newer("plain", 0, b"now versioned", minute).await.unwrap(), "a plain value is replaced");
    assert!(cache.set_newer("short", 5, b"x", SHORT).await.unwrap());
    gone(cache, "short").await;
    assert!(cache.set_newer("short", 1, b"y", minute).await.unwrap(), "an expired copy holds nothing back");
}
