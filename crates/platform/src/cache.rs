//! The cache port: sessions, login-throttle counters, hot carts and hot reads. In-process in the
//! embedded mode ([`memory::MemoryCache`]), Redis (ElastiCache) in the local stack and on AWS
//! ([`redis::RedisCache`]). Values are bytes; callers choose the encoding.

pub mod bounded;
pub mod memory;
pub mod redis;

use std::time::Duration;

use async_trait::async_trait;

/// A failure of the cache.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// Redis failed.
    #[error("redis")]
    Redis(#[from] ::redis::RedisError),
}

/// The cache port.
#[async_trait]
pub trait Cache: Send + Sync {
    /// The value under `key`, if present and not expired.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError>;
    /// Sets `key`, expiring after `ttl` (never, when `None`).
    async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), CacheError>;
    /// Sets `key` only if absent; whether it was set.
    async fn set_if_absent(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<bool, CacheError>;
    /// Deletes `key`; whether it was there.
    async fn delete(&self, key: &str) -> Result<bool, CacheError>;
    /// Deletes `key` only while it holds `expected` (a lock or claim given back by its holder
    /// alone); whether it was deleted.
    async fn delete_if(&self, key: &str, expected: &[u8]) -> Result<bool, CacheError>;
    /// Adds `by` to the counter under `key` and returns the new value. A new counter starts at 0 and
    /// expires after `ttl` (a fixed window: later increments keep the first expiry).
    async fn increment(&self, key: &str, by: i64, ttl: Duration) -> Result<i64, CacheError>;
    /// Remaining time to live of `key`, if it exists and expires.
    async fn ttl(&self, key: &str) -> Result<Option<Duration>, CacheError>;
    /// Whether the cache answers and takes writes (for `/ready`: a demoted primary answers reads).
    async fn ping(&self) -> Result<(), CacheError>;

    /// Sets `key` to `value` at `version`, expiring after `ttl`, unless it holds a live value at
    /// `version` or a later one; whether it was set. So copies written out of order (two writers
    /// racing, or a reader filling the cache with what it read before a write) never replace a
    /// newer one. Read it back with [`Cache::get_versioned`].
    async fn set_newer(&self, key: &str, version: u64, value: &[u8], ttl: Duration) -> Result<bool, CacheError>;

    /// The value under `key` and its version, if it was set with [`Cache::set_newer`] and is live.
    async fn get_versioned(&self, key: &str) -> Result<Option<(u64, Vec<u8>)>, CacheError> {
        Ok(self.get(key).await?.and_then(|stored| {
            let (version, value) = split_versioned(&stored)?;
            Some((version, value.to_vec()))
        }))
    }
}

/// Width of the decimal version that prefixes a value set with [`Cache::set_newer`], then `|`.
const VERSION_WIDTH: usize = 20;

/// `value` stored at `version`: the version in fixed-width decimal (so Redis's Lua reads it with
/// `tonumber`), `|`, then the value.
fn versioned(version: u64, value: &[u8]) -> Vec<u8> {
    let mut stored = format!("{version:0VERSION_WIDTH$}|").into_bytes();
    stored.extend_from_slice(value);
    stored
}

/// The version and value of what [`versioned`] stored.
fn split_versioned(stored: &[u8]) -> Option<(u64, &[u8])> {
    if stored.len() <= VERSION_WIDTH || stored[VERSION_WIDTH] != b'|' {
        return None;
    }
    let version = std::str::from_utf8(&stored[..VERSION_WIDTH]).ok()?.parse().ok()?;
    Some((version, &stored[VERSION_WIDTH + 1..]))
}
