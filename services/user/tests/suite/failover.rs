//! A Redis failover as ElastiCache makes one: the primary endpoint moves to the new primary while
//! connections opened before stay on the old one, which is now a replica (`REPLICAOF`) and refuses
//! every write with `READONLY`. Sign-in (whose throttle writes to Redis) recovers without a
//! restart, and `/ready` checks that the cache takes a write.

use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use platform::config::CacheBackend;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};

use crate::http::start_with;

/// A Redis server of the test's own, stopped when dropped.
struct Server {
    port: u16,
    child: Child,
}

impl Server {
    async fn start() -> Self {
        let port = StdListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (scripts/dev-deps installs it)");
        let server = Self { port, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.command(&["PING"]).await.is_err() {
            assert!(Instant::now() < deadline, "redis-server on {port} did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        server
    }

    async fn command(&self, args: &[&str]) -> redis::RedisResult<redis::Value> {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}", self.port))?;
        let mut connection = client.get_multiplexed_async_connection().await?;
        let mut command = redis::cmd(args[0]);
        for arg in &args[1..] {
            command.arg(*arg);
        }
        command.query_async(&mut connection).await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The primary endpoint: a TCP forwarder whose new connections go to the current primary, while
/// connections made before keep their server (as DNS does for ElastiCache's primary endpoint).
async fn endpoint(primary: Arc<AtomicU16>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let target = primary.load(Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", target)).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn sign_in_recovers_from_a_redis_failover_without_a_restart() {
    if platform::testing::server_env("SHOP_TEST_REDIS_URL").is_none() {
        return;
    }
    let (old, new) = (Server::start().await, Server::start().await);
    let primary = Arc::new(AtomicU16::new(old.port));
    let url = format!("redis://127.0.0.1:{}", endpoint(primary.clone()).await);
    let app = start_with(None, |config| {
        config.cache = CacheBackend::Redis;
        config.redis_url = Some(url.into());
    })
    .await;
    let login = json!({"email": "fail@example.com", "password": "correct horse battery"});
    app.register("fail@example.com").await;
    assert_eq!(app.call("POST", "/v1/auth/login", Some(login.clone()), None).await.status, 200);
    assert_eq!(app.call("GET", "/ready", None, None).await.status, 200);

    // The failover: the endpoint now leads to the new primary, and the old one is its replica.
    primary.store(new.port, Ordering::SeqCst);
    old.command(&["REPLICAOF", "127.0.0.1", &new.port.to_string()]).await.unwrap();
    let refused = old.command(&["SET", "probe", "1"]).await.unwrap_err();
    assert!(platform::cache::redis::is_failover(&refused), "the old primary refuses writes: {refused}");

    let reply = app.call("POST", "/v1/auth/login", Some(login), None).await;
    assert_eq!(reply.status, 200, "sign-in works on the new primary: {}", reply.body);
    assert_eq!(app.call("GET", "/ready", None, None).await.status, 200);
    let keys = new.command(&["DBSIZE"]).await.unwrap();
    assert!(matches!(keys, redis::Value::Int(n) if n > 0), "the writes went to the new primary: {keys:?}");
    drop((old, new));
}

#[tokio::test]
async fn ready_fails_while_the_cache_refuses_writes() {
    if platform::testing::server_env("SHOP_TEST_REDIS_URL").is_none() {
        return;
    }
    // A replica with nowhere better to go: the endpoint still leads to it.
    let (replica, source) = (Server::start().await, Server::start().await);
    let url = format!("redis://127.0.0.1:{}", replica.port);
    let app = start_with(None, |config| {
        config.cache = CacheBackend::Redis;
        config.redis_url = Some(url.into());
    })
    .await;
    assert_eq!(app.call("GET", "/ready", None, None).await.status, 200);
    replica.command(&["REPLICAOF", "127.0.0.1", &source.port.to_string()]).await.unwrap();
    assert_eq!(app.call("GET", "/ready", None, None).await.status, 503, "PING would still pass");
    drop((replica, source));
}
