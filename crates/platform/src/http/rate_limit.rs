//! Per-client rate limiting: a token bucket per client address. The edge (API Gateway) throttles the
//! whole API; this keeps one client from starving the others at each service.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

const SHARDS: usize = 16;
/// Buckets a shard keeps before it forgets idle (full) ones.
const SHARD_CAPACITY: usize = 8_192;

/// The limits of each client.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimits {
    /// Tokens added a second.
    pub per_second: u32,
    /// Largest number of tokens a bucket holds.
    pub burst: u32,
    /// How many proxies in front of us append to `X-Forwarded-For` (0: use the peer address).
    pub trusted_proxy_hops: u8,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Token buckets by client address.
#[derive(Debug)]
pub struct RateLimiter {
    limits: RateLimits,
    shards: Vec<Mutex<HashMap<IpAddr, Bucket>>>,
}

impl RateLimiter {
    /// An empty limiter.
    pub fn new(limits: RateLimits) -> Self {
        Self { limits, shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect() }
    }

    /// Takes a token for `client` at `now`; `Err(seconds)` tells how long until one is free.
    pub fn acquire(&self, client: IpAddr, now: Instant) -> Result<(), u64> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        client.hash(&mut hasher);
        let shard = &self.shards[hasher.finish() as usize % SHARDS];
        let mut buckets = shard.lock().unwrap_or_else(|e| e.into_inner());
        let rate = f64::from(self.limits.per_second);
        let burst = f64::from(self.limits.burst);
        if buckets.len() >= SHARD_CAPACITY && !buckets.contains_key(&client) {
            buckets.retain(|_, b| b.tokens + now.duration_since(b.updated).as_secs_f64() * rate < burst);
        }
        let bucket = buckets.entry(client).or_insert(Bucket { tokens: burst, updated: now });
        bucket.tokens = (bucket.tokens + now.duration_since(bucket.updated).as_secs_f64() * rate).min(burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - bucket.tokens) / rate).ceil().max(1.0) as u64)
        }
    }

    /// The address the limit applies to: the peer, or the client a trusted proxy reports.
    fn client(&self, request: &Request) -> Option<IpAddr> {
        let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        client_ip(request.headers(), peer, self.limits.trusted_proxy_hops)
    }

    /// Middleware: answers 429 with `Retry-After` when the client's bucket is empty.
    pub async fn middleware(&self, request: Request, next: Next) -> Response {
        if let Some(client) = self.client(&request)
            && let Err(retry_after) = self.acquire(client, Instant::now())
        {
            metrics::counter!("http_rate_limited_total").increment(1);
            return ApiError::too_many_requests(retry_after).into_response();
        }
        next.run(request).await
    }
}

/// The client's address: the peer's, or — behind `trusted_proxy_hops` proxies that each append the
/// address they saw to `X-Forwarded-For` — the one that many entries from the right.
pub fn client_ip(headers: &axum::http::HeaderMap, peer: Option<IpAddr>, trusted_proxy_hops: u8) -> Option<IpAddr> {
    let hops = usize::from(trusted_proxy_hops);
    if hops == 0 {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    forwarded.len().checked_sub(hops).and_then(|i| forwarded.get(i).copied()).or(peer)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limiter(hops: u8) -> RateLimiter {
        RateLimiter::new(RateLimits { per_second: 2, burst: 3, trusted_proxy_hops: hops })
    }

    #[test]
    fn a_client_gets_its_burst_then_waits() {
        let limiter = limiter(0);
        let now = Instant::now();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..3 {
            assert!(limiter.acquire(a, now).is_ok());
        }
        assert_eq!(limiter.acquire(a, now), Err(1));
        // Another client is unaffected.
        assert!(limiter.acquire("10.0.0.2".parse().unwrap(), now).is_ok());
        // Half a second later one token (2/s) has come back.
        assert!(limiter.acquire(a, now + Duration::from_millis(500)).is_ok());
        assert!(limiter.acquire(a, now + Duration::from_millis(500)).is_err());
    }

    #[test]
    fn the_client_behind_trusted_proxies_is_the_one_limited() {
        let limiter = limiter(1);
        let mut request = Request::new(axum::body::Body::empty());
        request.headers_mut().insert("x-forwarded-for", "1.1.1.1, 2.2.2.2".parse().unwrap());
        request.extensions_mut().insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 9], 1234))));
        assert_eq!(limiter.client(&request), Some("2.2.2.2".parse().unwrap()));
        let limiter = self::limiter(0);
        assert_eq!(limiter.client(&request), Some("10.0.0.9".parse().unwrap()));
    }
}
