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

use sha2::Digest as _;

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
    /// How the client's address is read.
    pub client: ClientAddress,
}

/// The header a trusted edge proves itself with (see [`ClientAddress::edge_secret`]).
pub const EDGE_HEADER: &str = "x-shop-edge";

/// How a service reads its client's address: the peer's; the one a trusted edge writes in a header
/// of its own (CloudFront's `CloudFront-Viewer-Address`: `ip:port`); or, behind proxies that each
/// append the address they saw to `X-Forwarded-For`, the entry that many from the right (entries
/// further left are the client's own to write, so never trusted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientAddress {
    /// Proxies that append to `X-Forwarded-For` (0: the peer address).
    pub trusted_proxy_hops: u8,
    /// The edge's header naming the viewer, preferred when present.
    pub header: Option<String>,
    /// The SHA-256 of the secret the edges send in [`EDGE_HEADER`], when the load balancer is
    /// reachable without them too: a request without it passed one proxy only (the load balancer),
    /// and is read as such, so a caller going round the edge cannot write its own address.
    pub edge_secret: Option<[u8; 32]>,
}

impl ClientAddress {
    /// The rule a configuration names.
    pub fn from_config(config: &crate::Config) -> Self {
        use secrecy::ExposeSecret;
        Self {
            trusted_proxy_hops: config.trusted_proxy_hops,
            header: config.client_address_header.as_ref().map(|h| h.to_ascii_lowercase()),
            edge_secret: config
                .edge_secret
                .as_ref()
                .filter(|secret| !secret.expose_secret().is_empty())
                .map(|secret| sha2::Sha256::digest(secret.expose_secret().as_bytes()).into()),
        }
    }

    /// Whether a request with `headers` came through a trusted edge (always, without a secret).
    fn through_edge(&self, headers: &axum::http::HeaderMap) -> bool {
        let Some(expected) = &self.edge_secret else { return true };
        // Digests compared, so the time taken says nothing about the secret.
        headers.get(EDGE_HEADER).is_some_and(|sent| {
            let sent: [u8; 32] = sha2::Sha256::digest(sent.as_bytes()).into();
            &sent == expected
        })
    }

    /// The headers of a request with `headers` that say whose it is — `X-Forwarded-For`, the edge's
    /// proof ([`EDGE_HEADER`]) and its viewer header — for a call made on its behalf to a service
    /// configured alike, which then reads the same viewer from them.
    pub fn forwarding(
        &self,
        headers: &axum::http::HeaderMap,
    ) -> Vec<(axum::http::HeaderName, axum::http::HeaderValue)> {
        let mut names = vec![
            axum::http::HeaderName::from_static("x-forwarded-for"),
            axum::http::HeaderName::from_static(EDGE_HEADER),
        ];
        if let Some(name) = self.header.as_deref().and_then(|n| axum::http::HeaderName::from_bytes(n.as_bytes()).ok()) {
            names.push(name);
        }
        names
            .into_iter()
            .flat_map(|name| headers.get_all(&name).iter().map(|v| (name.clone(), v.clone())).collect::<Vec<_>>())
            .collect()
    }

    /// The client's address of a request from `peer` with `headers`.
    pub fn of(&self, headers: &axum::http::HeaderMap, peer: Option<IpAddr>) -> Option<IpAddr> {
        if !self.through_edge(headers) {
            return client_ip(headers, peer, self.trusted_proxy_hops.min(1));
        }
        let named = self.header.as_deref().and_then(|name| headers.get(name)).and_then(|v| v.to_str().ok());
        if let Some(address) = named.and_then(parse_viewer_address) {
            return Some(address);
        }
        client_ip(headers, peer, self.trusted_proxy_hops)
    }
}

/// An address as an edge writes it: `ip`, `ip:port`, `[v6]:port` or CloudFront's `v6:port`.
fn parse_viewer_address(value: &str) -> Option<IpAddr> {
    let value = value.trim();
    if let Ok(ip) = value.parse() {
        return Some(ip);
    }
    if let Ok(socket) = value.parse::<SocketAddr>() {
        return Some(socket.ip());
    }
    // CloudFront writes an IPv6 viewer as `2001:db8::1:46532`: the address, then the port.
    let (address, port) = value.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    address.parse().ok()
}

/// The bucket a client's address counts in: the address itself, or for IPv6 its /64 (one
/// subscriber's network, which hands its devices any address inside it).
pub fn bucket(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
    }
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
        self.limits.client.of(request.headers(), peer).map(bucket)
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

    #[test]
    fn an_edge_header_names_the_viewer_and_ipv6_counts_by_its_64() {
        let rule = ClientAddress {
            trusted_proxy_hops: 1,
            header: Some("cloudfront-viewer-address".into()),
            edge_secret: None,
        };
        let peer: Option<IpAddr> = Some("10.0.0.9".parse().unwrap());
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("x-forwarded-for", "6.6.6.6, 203.0.113.7".parse().unwrap());
        assert_eq!(rule.of(&headers, peer), Some("203.0.113.7".parse().unwrap()), "no header: the trusted hop");
        for (written, viewer) in [
            ("198.51.100.10:46532", "198.51.100.10"),
            ("2001:db8::1:46532", "2001:db8::1"),
            ("[2001:db8::2]:443", "2001:db8::2"),
            ("192.0.2.1", "192.0.2.1"),
        ] {
            headers.insert("cloudfront-viewer-address", written.parse().unwrap());
            assert_eq!(rule.of(&headers, peer), Some(viewer.parse().unwrap()), "{written}");
        }
        headers.insert("cloudfront-viewer-address", "not an address".parse().unwrap());
        assert_eq!(rule.of(&headers, peer), Some("203.0.113.7".parse().unwrap()), "unreadable: the trusted hop");
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        assert_eq!(bucket(a), bucket(b));
        assert_ne!(bucket(a), bucket("2001:db8:1:3::1".parse().unwrap()));
        assert_eq!(bucket("192.0.2.1".parse().unwrap()), "192.0.2.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn with_an_edge_secret_only_the_edge_is_read_past_the_load_balancer() {
        let mut config = crate::Config {
            trusted_proxy_hops: 2,
            client_address_header: Some("CloudFront-Viewer-Address".into()),
            edge_secret: Some("s3cret-of-the-edges".to_owned().into()),
            ..Default::default()
        };
        let rule = ClientAddress::from_config(&config);
        let peer: Option<IpAddr> = Some("10.0.0.9".parse().unwrap());
        // Through CloudFront: the viewer it appended, or the address it names.
        let mut edge = axum::http::HeaderMap::new();
        edge.insert("x-forwarded-for", "6.6.6.6, 203.0.113.7, 130.176.0.1".parse().unwrap());
        edge.insert(EDGE_HEADER, "s3cret-of-the-edges".parse().unwrap());
        assert_eq!(rule.of(&edge, peer), Some("203.0.113.7".parse().unwrap()));
        edge.insert("cloudfront-viewer-address", "198.51.100.10:443".parse().unwrap());
        assert_eq!(rule.of(&edge, peer), Some("198.51.100.10".parse().unwrap()));
        // Straight to the load balancer, writing the headers an edge would: only the balancer's
        // own entry counts, whatever else the caller wrote.
        let mut direct = edge.clone();
        direct.remove(EDGE_HEADER);
        assert_eq!(rule.of(&direct, peer), Some("130.176.0.1".parse().unwrap()));
        direct.insert(EDGE_HEADER, "a guess".parse().unwrap());
        assert_eq!(rule.of(&direct, peer), Some("130.176.0.1".parse().unwrap()), "a wrong secret is no edge");
        // Without a secret configured, every request is read as through the edge (as before).
        config.edge_secret = None;
        assert_eq!(ClientAddress::from_config(&config).of(&direct, peer), Some("198.51.100.10".parse().unwrap()));
    }

    fn limiter(hops: u8) -> RateLimiter {
        RateLimiter::new(RateLimits {
            per_second: 2,
            burst: 3,
            client: ClientAddress { trusted_proxy_hops: hops, header: None, edge_secret: None },
        })
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

    #[test]
    fn a_call_made_for_a_viewer_carries_what_names_them_and_is_read_alike() {
        let rule = ClientAddress {
            trusted_proxy_hops: 2,
            header: Some("cloudfront-viewer-address".into()),
            edge_secret: None,
        };
        let mut incoming = axum::http::HeaderMap::new();
        incoming.insert("x-forwarded-for", "203.0.113.7, 198.51.100.2".parse().unwrap());
        incoming.insert("cloudfront-viewer-address", "203.0.113.7:50000".parse().unwrap());
        incoming.insert("cookie", "secret=1".parse().unwrap());
        let forwarded = rule.forwarding(&incoming);
        assert_eq!(forwarded.len(), 2, "{forwarded:?}");
        let mut outgoing = axum::http::HeaderMap::new();
        for (name, value) in forwarded {
            outgoing.append(name, value);
        }
        assert!(outgoing.get("cookie").is_none(), "only what names the viewer");
        let viewer: IpAddr = "203.0.113.7".parse().unwrap();
        assert_eq!(rule.of(&incoming, Some("10.0.0.1".parse().unwrap())), Some(viewer));
        assert_eq!(
            rule.of(&outgoing, Some("10.0.0.2".parse().unwrap())),
            Some(viewer),
            "the same viewer from the caller"
        );
    }
}
