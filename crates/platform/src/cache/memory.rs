//! The in-process cache: a sharded map with expiry and a bound on its size.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{Cache, CacheError};

const SHARDS: usize = 16;

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

/// A bounded in-process cache.
#[derive(Debug)]
pub struct MemoryCache {
    shards: Vec<Mutex<HashMap<String, Entry>>>,
    per_shard: usize,
}

impl MemoryCache {
    /// A cache holding at most about `max_entries` entries.
    pub fn new(max_entries: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: max_entries.div_ceil(SHARDS).max(1),
        }
    }

    fn shard(&self, key: &str) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut hasher);
        self.shards[hasher.finish() as usize % SHARDS].lock().unwrap_or_else(|e| e.into_inner())
    }

    fn make_room(&self, shard: &mut HashMap<String, Entry>, now: Instant) {
        if shard.len() < self.per_shard {
            return;
        }
        shard.retain(|_, entry| entry.live(now));
        // Still full: drop entries until a tenth is free (which ones is arbitrary, as in an LRU-less
        // cache; the cache is an optimisation, never the source of truth).
        if shard.len() >= self.per_shard {
            let excess = shard.len() + 1 - self.per_shard + self.per_shard / 10;
            let victims: Vec<String> = shard.keys().take(excess).cloned().collect();
            for key in victims {
                shard.remove(&key);
            }
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
        if !shard.contains_key(key) {
            self.make_room(&mut shard, now);
        }
        shard.insert(key.to_owned(), Entry { value: value.to_vec(), expires_at: ttl.map(|t| now + t) });
        Ok(())
    }

    async fn set_if_absent(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<bool, CacheError> {
        let now = Instant::now();
        let mut shard = self.shard(key);
        if shard.get(key).is_some_and(|e| e.live(now)) {
            return Ok(false);
        }
        self.make_room(&mut shard, now);
        shard.insert(key.to_owned(), Entry { value: value.to_vec(), expires_at: ttl.map(|t| now + t) });
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
            None => {
                self.make_room(&mut shard, now);
                (by, Some(now + ttl))
            }
        };
        shard.insert(key.to_owned(), Entry { value: value.to_string().into_bytes(), expires_at });
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
        self.make_room(&mut shard, now);
        shard.insert(key.to_owned(), Entry { value: super::versioned(version, value), expires_at: Some(now + ttl) });
        Ok(true)
    }
}
