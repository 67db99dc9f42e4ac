//! The Redis adapter (ElastiCache on AWS), over one multiplexed, reconnecting connection. Keys are
//! namespaced by a prefix so services can share a cluster.

use std::time::Duration;

use async_trait::async_trait;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;

use super::{Cache, CacheError};

/// A cache in Redis.
#[derive(Clone)]
pub struct RedisCache {
    connection: ConnectionManager,
    prefix: String,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache").field("prefix", &self.prefix).finish()
    }
}

fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// A reconnecting connection to the Redis at `url`, with the platform's connect and response
/// timeouts (5 s each), for every Redis adapter.
pub async fn connection_manager(url: &str) -> redis::RedisResult<ConnectionManager> {
    let client = redis::Client::open(url)?;
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(Duration::from_secs(5)));
    ConnectionManager::new_with_config(client, config).await
}

impl RedisCache {
    /// Connects to `url`; every key is stored under `prefix`.
    pub async fn connect(url: &str, prefix: impl Into<String>) -> Result<Self, CacheError> {
        Ok(Self { connection: connection_manager(url).await?, prefix: prefix.into() })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

#[async_trait]
impl Cache for RedisCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        Ok(self.connection.clone().get(self.key(key)).await?)
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), CacheError> {
        let mut connection = self.connection.clone();
        match ttl {
            Some(ttl) => connection.pset_ex::<_, _, ()>(self.key(key), value, millis(ttl)).await?,
            None => connection.set::<_, _, ()>(self.key(key), value).await?,
        }
        Ok(())
    }

    async fn set_if_absent(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<bool, CacheError> {
        let mut command = redis::cmd("SET");
        command.arg(self.key(key)).arg(value).arg("NX");
        if let Some(ttl) = ttl {
            command.arg("PX").arg(millis(ttl));
        }
        let reply: Option<String> = command.query_async(&mut self.connection.clone()).await?;
        Ok(reply.is_some())
    }

    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        let removed: i64 = self.connection.clone().del(self.key(key)).await?;
        Ok(removed > 0)
    }

    async fn delete_if(&self, key: &str, expected: &[u8]) -> Result<bool, CacheError> {
        // Compare and delete in one step on the server.
        static SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
            redis::Script::new(
                "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
                 return 0",
            )
        });
        let removed: i64 = SCRIPT.key(self.key(key)).arg(expected).invoke_async(&mut self.connection.clone()).await?;
        Ok(removed > 0)
    }

    async fn increment(&self, key: &str, by: i64, ttl: Duration) -> Result<i64, CacheError> {
        // INCRBY and a first-write-only expiry in one round trip; PEXPIRE NX keeps a window fixed.
        let key = self.key(key);
        let (value, _): (i64, i64) = redis::pipe()
            .atomic()
            .cmd("INCRBY")
            .arg(&key)
            .arg(by)
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(millis(ttl))
            .arg("NX")
            .query_async(&mut self.connection.clone())
            .await?;
        Ok(value)
    }

    async fn ttl(&self, key: &str) -> Result<Option<Duration>, CacheError> {
        let ms: i64 = redis::cmd("PTTL").arg(self.key(key)).query_async(&mut self.connection.clone()).await?;
        Ok((ms >= 0).then(|| Duration::from_millis(ms as u64)))
    }

    async fn ping(&self) -> Result<(), CacheError> {
        let _: String = redis::cmd("PING").query_async(&mut self.connection.clone()).await?;
        Ok(())
    }

    async fn set_newer(&self, key: &str, version: u64, value: &[u8], ttl: Duration) -> Result<bool, CacheError> {
        // Compare and set in one step on the server: the held version is the value's fixed-width
        // decimal prefix.
        static SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
            redis::Script::new(&format!(
                "local held = redis.call('GET', KEYS[1])
                 if held then
                   local version = tonumber(string.sub(held, 1, {width}))
                   if version and version >= tonumber(ARGV[1]) then return 0 end
                 end
                 redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
                 return 1",
                width = super::VERSION_WIDTH
            ))
        });
        let set: i64 = SCRIPT
            .key(self.key(key))
            .arg(version.to_string())
            .arg(super::versioned(version, value))
            .arg(millis(ttl))
            .invoke_async(&mut self.connection.clone())
            .await?;
        Ok(set == 1)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_tls_url_is_taken() {
        // ElastiCache with encryption in transit is reached over `rediss://`.
        crate::install_crypto_provider();
        assert!(redis::Client::open("rediss://cache.internal:6379").is_ok());
        assert!(redis::Client::open("redis://cache.internal:6379").is_ok());
    }
}
