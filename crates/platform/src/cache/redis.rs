//! The Redis adapter (ElastiCache on AWS), over one multiplexed, reconnecting connection. Keys are
//! namespaced by a prefix so services can share a cluster.
//!
//! The connection heals after a failover: a connection left on a demoted primary answers every
//! write with `READONLY` (the socket is fine, so the connection manager keeps it), so a
//! [`Connection`] that gets `READONLY` (or `MASTERDOWN`, `LOADING`) opens a new connection — which
//! resolves the primary endpoint again and reaches the new primary — and sends the refused command
//! once more on it (the server refused it, so nothing was applied).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Cmd, Pipeline, RedisFuture, Value};

use super::{Cache, CacheError};

/// A cache in Redis.
#[derive(Clone)]
pub struct RedisCache {
    connection: Connection,
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

fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(Duration::from_secs(5)))
}

/// A reconnecting connection to the Redis at `url`, with the platform's connect and response
/// timeouts (5 s each), that heals after a failover (see the module), for every Redis adapter.
/// Clones share it.
pub async fn connection_manager(url: &str) -> redis::RedisResult<Connection> {
    let client = redis::Client::open(url)?;
    let manager = ConnectionManager::new_with_config(client.clone(), manager_config()).await?;
    let db = manager.get_db();
    Ok(Connection { client, current: Arc::new(Mutex::new((0, manager))), db })
}

/// A Redis connection that is rebuilt when the server says it can no longer take writes.
#[derive(Clone)]
pub struct Connection {
    client: redis::Client,
    /// The connection in use and its generation (bumped by each rebuild).
    current: Arc<Mutex<(u64, ConnectionManager)>>,
    db: i64,
}

/// Whether `error` says this server cannot take the command now but a primary could: a demoted
/// primary (`READONLY`, also inside an aborted transaction), one without its primary
/// (`MASTERDOWN`), one loading its data (`LOADING`).
pub fn is_failover(error: &redis::RedisError) -> bool {
    use redis::{ErrorKind, ServerErrorKind};
    matches!(
        error.kind(),
        ErrorKind::Server(ServerErrorKind::ReadOnly | ServerErrorKind::MasterDown | ServerErrorKind::BusyLoading)
    ) || {
        // An aborted transaction (MULTI/EXEC) carries its commands' errors in its message.
        let text = error.to_string();
        text.contains("READONLY") || text.contains("ReadOnly")
    }
}

impl Connection {
    fn current(&self) -> (u64, ConnectionManager) {
        self.current.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces connection `generation` with a new one (unless another caller did already); the
    /// connection to use now.
    async fn rebuild(&self, generation: u64) -> redis::RedisResult<ConnectionManager> {
        {
            let current = self.current.lock().unwrap_or_else(|e| e.into_inner());
            if current.0 != generation {
                return Ok(current.1.clone());
            }
        }
        let fresh = ConnectionManager::new_with_config(self.client.clone(), manager_config()).await?;
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.0 == generation {
            tracing::warn!("Redis refused a write as a replica would (a failover): reconnected to the primary");
            metrics::counter!("redis_reconnects_total").increment(1);
            *current = (generation + 1, fresh);
        }
        Ok(current.1.clone())
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let (generation, mut connection) = self.current();
            match connection.req_packed_command(cmd).await {
                Err(error) if is_failover(&error) => self.rebuild(generation).await?.req_packed_command(cmd).await,
                other => other,
            }
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let (generation, mut connection) = self.current();
            match connection.req_packed_commands(pipeline, offset, count).await {
                Err(error) if is_failover(&error) => {
                    self.rebuild(generation).await?.req_packed_commands(pipeline, offset, count).await
                }
                other => other,
            }
        })
    }

    fn get_db(&self) -> i64 {
        self.db
    }
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
        // A write, not a PING: a demoted primary answers PING but refuses every write.
        let _: () = redis::cmd("SET")
            .arg(self.key("ready-probe"))
            .arg(1)
            .arg("PX")
            .arg(10_000)
            .query_async(&mut self.connection.clone())
            .await?;
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
