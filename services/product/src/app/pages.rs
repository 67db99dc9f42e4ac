//! Rendered product pages (`GET /v1/products/{id}` bodies and their ETags) kept briefly in memory.
//! This process's own writes drop their entries at once; a change made by another instance (or a
//! stock change applied by another instance's indexer) shows after at most [`TTL`], well within
//! the minute the answer's `Cache-Control` already lets clients and the CDN keep it.

use std::time::{Duration, Instant};

use axum::http::HeaderValue;
use bytes::Bytes;
use platform::cache::bounded::BoundedMap;

/// How long a rendered page is reused (half the minute the answer's `Cache-Control` gives).
pub const TTL: Duration = Duration::from_secs(30);

/// Memory the pages may take at most (bodies, ETags and ids): the most requested of a large
/// catalog, not all of it.
pub const MAX_BYTES: usize = 32 * 1024 * 1024;

/// Rendered pages by product id.
#[derive(Debug)]
pub struct PageCache {
    pages: BoundedMap<String, (Instant, Bytes, HeaderValue)>,
}

impl Default for PageCache {
    fn default() -> Self {
        Self { pages: BoundedMap::new(MAX_BYTES) }
    }
}

impl PageCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The page of `id` and its ETag, if rendered less than [`TTL`] ago.
    pub fn get(&self, id: &str) -> Option<(Bytes, HeaderValue)> {
        let (at, bytes, etag) = self.pages.get(id)?;
        (at.elapsed() < TTL).then_some((bytes, etag))
    }

    /// Keeps the page of `id`.
    pub fn put(&self, id: &str, bytes: Bytes, etag: HeaderValue) {
        let size = id.len() + bytes.len() + etag.len();
        self.pages.insert(id.to_owned(), (Instant::now(), bytes, etag), size);
    }

    /// Drops the page of `id` (its product changed).
    pub fn forget(&self, id: &str) {
        self.pages.remove(id);
    }

    /// Drops every page.
    pub fn clear(&self) {
        self.pages.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn etag() -> HeaderValue {
        HeaderValue::from_static("\"e\"")
    }

    #[test]
    fn pages_are_kept_until_forgotten() {
        let cache = PageCache::new();
        assert!(cache.get("p1").is_none());
        cache.put("p1", Bytes::from_static(b"{}"), etag());
        assert_eq!(cache.get("p1").unwrap().1, "\"e\"");
        cache.forget("p1");
        assert!(cache.get("p1").is_none());
        cache.put("p2", Bytes::from_static(b"{}"), etag());
        cache.clear();
        assert!(cache.get("p2").is_none());
    }

    #[test]
    fn the_pages_stay_within_their_memory() {
        let cache = PageCache::new();
        let body = Bytes::from(vec![b'x'; 64 * 1024]);
        for i in 0..2_000 {
            cache.put(&format!("p{i}"), body.clone(), etag());
        }
        assert!(cache.pages.bytes() <= MAX_BYTES, "{}", cache.pages.bytes());
        assert!(cache.get("p1999").is_some());
        assert!(cache.get("p0").is_none());
    }
}
