//! Rendered product pages (`GET /v1/products/{id}` bodies and their ETags) kept briefly in memory.
//! This process's own writes drop their entries at once; a change made by another instance (or a
//! stock change applied by another instance's indexer) shows after at most [`TTL`], well within
//! the minute the answer's `Cache-Control` already lets clients and the CDN keep it.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// How long a rendered page is reused.
pub const TTL: Duration = Duration::from_secs(5);

/// Pages kept at most (the cache is emptied when full).
pub const MAX_PAGES: usize = 100_000;

/// Rendered pages by product id.
#[derive(Debug, Default)]
pub struct PageCache {
    pages: RwLock<HashMap<String, (Instant, Bytes, String)>>,
}

impl PageCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The page of `id` and its ETag, if rendered less than [`TTL`] ago.
    pub fn get(&self, id: &str) -> Option<(Bytes, String)> {
        let pages = self.pages.read().expect("pages lock");
        let (at, bytes, etag) = pages.get(id)?;
        (at.elapsed() < TTL).then(|| (bytes.clone(), etag.clone()))
    }

    /// Keeps the page of `id`.
    pub fn put(&self, id: &str, bytes: Bytes, etag: String) {
        let mut pages = self.pages.write().expect("pages lock");
        if pages.len() >= MAX_PAGES {
            pages.clear();
        }
        pages.insert(id.to_owned(), (Instant::now(), bytes, etag));
    }

    /// Drops the page of `id` (its product changed).
    pub fn forget(&self, id: &str) {
        self.pages.write().expect("pages lock").remove(id);
    }

    /// Drops every page.
    pub fn clear(&self) {
        self.pages.write().expect("pages lock").clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_kept_until_forgotten() {
        let cache = PageCache::new();
        assert!(cache.get("p1").is_none());
        cache.put("p1", Bytes::from_static(b"{}"), "\"e\"".into());
        assert_eq!(cache.get("p1").unwrap().1, "\"e\"");
        cache.forget("p1");
        assert!(cache.get("p1").is_none());
        cache.put("p2", Bytes::from_static(b"{}"), "\"e\"".into());
        cache.clear();
        assert!(cache.get("p2").is_none());
    }
}
