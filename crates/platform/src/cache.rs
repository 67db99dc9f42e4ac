//! The cache port: sessions, login-throttle counters, hot carts and hot reads. In-process in the
//! embedded mode ([`memory::MemoryCache`]), Redis (ElastiCache) in the local stack and on AWS
//! ([`redis::RedisCache`]). Values are bytes; callers choose the encoding.

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
    /// Adds `by` to the counter under `key` and returns the new value. A new counter starts at 0 and
    /// expires after `ttl` (a fixed window: later increments keep the first expiry).
    async fn increment(&self, key: &str, by: i64, ttl: Duration) -> Result<i64, CacheError>;
    /// Remaining time to live of `key`, if it exists and expires.
    async fn ttl(&self, key: &str) -> Result<Option<Duration>, CacheError>;
    /// Whether the cache answers (for `/ready`).
    async fn ping(&self) -> Result<(), CacheError>;
}
