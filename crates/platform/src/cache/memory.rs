//! The in-process cache: a sharded map with expiry and bounds on its entries and on its bytes (the
//! values differ a thousandfold in size — a rate-limit counter, a cart — so a count of entries
//! alone says little of the memory they take).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{Cache, CacheError};

const SHARDS: usize = 16;

/// What an entry is counted as besides its key's and value's bytes: the map's slot and the two
/// allocations' headers.
const ENTRY_OVERHEAD: usize = 64;

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

fn size(key: &str, entry: &Entry) -> usize {
    key.len() + entry.value.len() + ENTRY_OVERHEAD
}

/// One shard's entries and the bytes they take (kept in step by every change).
#[derive(Debug, Default)]
struct Shard {
    entries: HashMap<String, Entry>,
    bytes: usize,
}

impl Shard {
    fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }

    fn insert(&mut self, key: &str, entry: Entry) {
        self.bytes += size(key, &entry);
        if let Some(old) = self.entries.insert(key.to_owned(), entry) {
            self.bytes -= size(key, &old);
        }
    }

    fn remove(&mut self, key: &str) -> Option<Entry> {
        let entry = self.entries.remove(key)?;
        self.bytes -= size(key, &entry);
        Some(entry)
    }

    /// Drops the entries expired at `now`.
    fn retain_live(&mut self, now: Instant) {
        let mut expired = 0;
        self.entries.retain(|key, entry| {
            let live = entry.live(now);
            if !live {
                expired += size(key, entry);
            }
            live
        });
        self.bytes -= expired;
    }
}

/// A bounded in-process cache.
#[derive(Debug)]
pub struct MemoryCache {
    shards: Vec<Mutex<Shard>>,
    per_shard: usize,
    bytes_per_shard: usize,
}

impl MemoryCache {
    /// A cache holding at most about `max_entries` entries (and no bound on their bytes).
    pub fn new(max_entries: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard: max_entries.div_ceil(SHARDS).max(1),
            bytes_per_shard: usize::MAX,
        }
    }

    /// The same holding at most about `max_bytes` (keys, values and their overhead) as well.
    pub fn with_max_bytes(mut self, max_bytes: usize) -> Self {
        self.bytes_per_shard = max_bytes.div_ceil(SHARDS).max(1);
        self
    }

    fn shard_of(key: &str) -> usize {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut hasher);
        hasher.finish() as usize % SHARDS
    }

    fn shard(&self, key: &str) -> std::sync::MutexGuard<'_, Shard> {
        self.shards[Self::shard_of(key)].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The bytes held (as counted).
    pub fn bytes(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).bytes).sum()
    }

    /// Makes room in `shard` for an entry of `key` taking `incoming` bytes: expired entries go
    /// first, then others until a tenth of the shard's entries and bytes are free (which ones is
    /// arbitrary, as in an LRU-less cache; the cache is an optimisation, never the source of
    /// truth). An entry bigger than a shard's bytes is not kept.
    fn make_room(&self, shard: &mut Shard, key: &str, incoming: usize, now: Instant) -> bool {
        shard.remove(key); // replaced: its room is the new entry's
        if incoming > self.bytes_per_shard {
            return false;
        }
        // What must go for the entry to fit, leaving a tenth of each bound free when `spare`.
        let excess = |shard: &Shard, spare: bool| {
            let (spare_entries, spare_bytes) =
                if spare { (self.per_shard / 10, self.bytes_per_shard / 10) } else { (0, 0) };
            let entries = (shard.entries.len() + 1 + spare_entries).saturating_sub(self.per_shard);
            let bytes =
                shard.bytes.saturating_add(incoming).saturating_add(spare_bytes).saturating_sub(self.bytes_per_shard);
            (entries, bytes)
        };
        if excess(shard, false) == (0, 0) {
            return true;
        }
        shard.retain_live(now);
        if excess(shard, false) == (0, 0) {
            return true;
        }
        // Still full: only as many victims as leave the spare tenth.
        let (mut entries, mut bytes) = excess(shard, true);
        let mut victims = Vec::new();
        for (victim, entry) in &shard.entries {
            if entries == 0 && bytes == 0 {
                break;
            }
            entries = entries.saturating_sub(1);
            bytes = bytes.saturating_sub(size(victim, entry));
            victims.push(victim.clone());
        }
        for victim in victims {
            shard.remove(&victim);
        }
        true
    }

    /// Keeps `entry` under `key` when there is room for it (else drops what `key` held).
    fn put(&self, shard: &mut Shard, key: &str, entry: Entry, now: Instant) {
        if self.make_room(shard, key, size(key, &entry), now) {
            shard.insert(key, entry);
        }
    }
}

#[async_trait]
impl Cache for MemoryCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let now = Instant::now();
        let mut shard = self.shard(key);
        match shard.get(key) {
            Some(entry) if entry.live(now) => Ok(Some(entry.value.clone())),
            Some(_) => {
                shard.remove(key);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), CacheError> {
        let now = Instant::now();
        let mut shard = self.shard(key);
        self.put(&mut shard, key, Entry { value: value.to_vec(), expires_at: ttl.map(|t| now + t) }, now);
        Ok(())
    }

    async fn set_if_absent(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<bool, CacheError> {
        let now = Instant::now();
        let mut shard = self.shard(key);
        if shard.get(key).is_some_and(|e| e.live(now)) {
            return Ok(false);
        }
        self.put(&mut shard, key, Entry { value: value.to_vec(), expires_at: ttl.map(|t| now + t) }, now);
        Ok(true)
    }

    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        let now = Instant::now();
        Ok(self.shard(key).remove(key).is_some_and(|e| e.live(now)))
    }

    async fn delete_if(&self, key: &str, expected: &[u8]) -> Result<bool, CacheError> {
        let now = Instant::now();
        let mut shard = self.shard(key);
        if !shard.get(key).is_some_and(|e| e.live(now) && e.value == expected) {
            return Ok(false);
        }
        shard.remove(key);
        Ok(true)
    }

    async fn increment(&self, key: &str, by: i64, ttl: Duration) -> Result<i64, CacheError> {
        let now = Instant::now();
        let mut shard = self.shard(key);
        let current = match shard.get(key) {
            Some(entry) if entry.live(now) => Some(entry.clone()),
            _ => None,
        };
        let (value, expires_at) = match current {
            Some(entry) => {
                let count = std::str::from_utf8(&entry.value).ok().and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
                (count + by, entry.expires_at)
            }
            None => (by, Some(now + ttl)),
        };
        self.put(&mut shard, key, Entry { value: value.to_string().into_bytes(), expires_at }, now);
        Ok(value)
    }

    async fn ttl(&self, key: &str) -> Result<Option<Duration>, CacheError> {
        let now = Instant::now();
        Ok(self.shard(key).get(key).filter(|e| e.live(now)).and_then(|e| e.expires_at).map(|at| at - now))
    }

    async fn ping(&self) -> Result<(), CacheError> {
        Ok(())
    }

    async fn set_newer(&self, key: &str, version: u64, value: &[u8], ttl: Duration) -> Result<bool, CacheError> {
        let now = Instant::now();
        let mut shard = self.shard(key);
        let held = shard.get(key).filter(|e| e.live(now)).and_then(|e| super::split_versioned(&e.value));
        if held.is_some_and(|(held, _)| held >= version) {
            return Ok(false);
        }
        self.put(&mut shard, key, Entry { value: super::versioned(version, value), expires_at: Some(now + ttl) }, now);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_bytes_held_stay_within_the_bound_and_the_newest_stay() {
        let cache = MemoryCache::new(1_000_000).with_max_bytes(64 * 1024);
        for i in 0..1_000 {
            cache.set(&format!("cart:{i}"), &[7u8; 1_000], None).await.unwrap();
            assert!(cache.bytes() <= 64 * 1024, "{} bytes after {i}", cache.bytes());
        }
        assert_eq!(cache.get("cart:999").await.unwrap().as_deref(), Some(&[7u8; 1_000][..]));
        let mut kept = 0;
        for i in 0..1_000 {
            kept += usize::from(cache.get(&format!("cart:{i}")).await.unwrap().is_some());
        }
        // Each shard holds what fits in its sixteenth (three of these), less at most a tenth.
        assert!((32..=48).contains(&kept), "{kept} of 1,000 kept");
    }

    #[tokio::test]
    async fn replacing_deleting_and_expiring_keep_the_count_right() {
        let cache = MemoryCache::new(1_000).with_max_bytes(1 << 20);
        cache.set("k", &[0; 100], None).await.unwrap();
        assert_eq!(cache.bytes(), 1 + 100 + ENTRY_OVERHEAD);
        cache.set("k", &[0; 300], None).await.unwrap();
        assert_eq!(cache.bytes(), 1 + 300 + ENTRY_OVERHEAD);
        assert_eq!(cache.increment("n", 2, Duration::from_secs(60)).await.unwrap(), 2);
        assert_eq!(cache.increment("n", 10, Duration::from_secs(60)).await.unwrap(), 12);
        assert_eq!(cache.bytes(), 1 + 300 + ENTRY_OVERHEAD + 1 + 2 + ENTRY_OVERHEAD);
        assert!(cache.delete("k").await.unwrap());
        assert!(cache.delete_if("n", b"12").await.unwrap());
        assert_eq!(cache.bytes(), 0);
        // Expired entries make room before live ones are dropped: three keys of one shard, which
        // holds two.
        let tight = MemoryCache::new(SHARDS * 2);
        let same: Vec<String> = (0..)
            .map(|i| format!("k{i}"))
            .filter(|k| MemoryCache::shard_of(k) == MemoryCache::shard_of("k0"))
            .take(3)
            .collect();
        tight.set(&same[0], b"x", Some(Duration::from_millis(1))).await.unwrap();
        tight.set(&same[1], b"y", None).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        tight.set(&same[2], b"z", None).await.unwrap();
        assert_eq!(tight.get(&same[1]).await.unwrap().as_deref(), Some(&b"y"[..]));
        assert_eq!(tight.get(&same[2]).await.unwrap().as_deref(), Some(&b"z"[..]));
        assert_eq!(tight.bytes(), same[1].len() + same[2].len() + 2 * (1 + ENTRY_OVERHEAD));
    }

    #[tokio::test]
    async fn an_entry_bigger_than_a_shard_is_not_kept_and_drops_what_its_key_held() {
        let cache = MemoryCache::new(1_000).with_max_bytes(16 * 1024);
        cache.set("big", b"small", None).await.unwrap();
        cache.set("big", &[0; 2_000], None).await.unwrap();
        assert_eq!(cache.get("big").await.unwrap(), None);
        assert_eq!(cache.bytes(), 0);
        // Without a byte bound, the same is kept.
        let unbounded = MemoryCache::new(1_000);
        unbounded.set("big", &[0; 2_000], None).await.unwrap();
        assert!(unbounded.get("big").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn the_entries_held_stay_within_their_bound() {
        let cache = MemoryCache::new(160);
        for i in 0..2_000 {
            cache.set(&format!("k{i}"), b"v", None).await.unwrap();
        }
        let held: usize = cache.shards.iter().map(|s| s.lock().unwrap().entries.len()).sum();
        assert!(held <= 160, "{held}");
        assert!(cache.get("k1999").await.unwrap().is_some());
    }
}
