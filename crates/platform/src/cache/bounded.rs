//! An in-process map bounded by bytes: the caches of rendered answers (product JSON, search pages,
//! result summaries), whose entries differ a hundredfold in size, so that a count of entries says
//! nothing of the memory they take.
//!
//! Two generations: entries go into the young one; when it holds half the budget it becomes the old
//! one (the previous old one is dropped) and a new young one starts. A hit in the old generation
//! moves the entry back to the young one, so what is used stays and what is not ages out within two
//! turns — close to LRU without a list to keep in order on every read.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;

/// What an entry is counted as besides its own bytes: the map's slot, the key's and value's
/// headers.
const ENTRY_OVERHEAD: usize = 64;

#[derive(Debug)]
struct Generation<K, V> {
    entries: HashMap<K, (V, usize)>,
    bytes: usize,
}

impl<K, V> Default for Generation<K, V> {
    fn default() -> Self {
        Self { entries: HashMap::new(), bytes: 0 }
    }
}

#[derive(Debug)]
struct Generations<K, V> {
    young: Generation<K, V>,
    old: Generation<K, V>,
}

/// A map of at most about `max_bytes` (keys, values and their overhead, as their sizes are given).
#[derive(Debug)]
pub struct BoundedMap<K, V> {
    inner: RwLock<Generations<K, V>>,
    max_bytes: usize,
}

impl<K: Hash + Eq, V: Clone> BoundedMap<K, V> {
    /// An empty map holding at most about `max_bytes`; 0 holds nothing.
    pub fn new(max_bytes: usize) -> Self {
        Self { inner: RwLock::new(Generations { young: Generation::default(), old: Generation::default() }), max_bytes }
    }

    /// The value of `key`, if held.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        {
            let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
            if let Some((value, _)) = inner.young.entries.get(key) {
                return Some(value.clone());
            }
            if !inner.old.entries.contains_key(key) {
                return None;
            }
        }
        // Used again: back into the young generation.
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        self.held(&mut inner, key)
    }

    /// The value of `key` in either generation, moved to the young one if it was in the old.
    fn held<Q>(&self, inner: &mut Generations<K, V>, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some((value, _)) = inner.young.entries.get(key) {
            return Some(value.clone());
        }
        let (key, (value, bytes)) = inner.old.entries.remove_entry(key)?;
        inner.old.bytes -= bytes;
        self.put(inner, key, value.clone(), bytes);
        Some(value)
    }

    /// Holds `value` under `key`, counted as `bytes` (the key's and value's own sizes).
    pub fn insert(&self, key: K, value: V, bytes: usize) {
        let bytes = bytes + ENTRY_OVERHEAD;
        if bytes > self.max_bytes / 2 {
            return; // would never fit in a generation
        }
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if let Some((_, held)) = inner.old.entries.remove(&key) {
            inner.old.bytes -= held;
        }
        self.put(&mut inner, key, value, bytes);
    }

    fn put(&self, inner: &mut Generations<K, V>, key: K, value: V, bytes: usize) {
        if let Some((_, held)) = inner.young.entries.remove(&key) {
            inner.young.bytes -= held;
        }
        if inner.young.bytes + bytes > self.max_bytes / 2 {
            inner.old = std::mem::take(&mut inner.young);
        }
        inner.young.entries.insert(key, (value, bytes));
        inner.young.bytes += bytes;
    }

    /// The value of `key`, or the one `make` makes (with its size) held under it: one atomic step,
    /// so that callers asking for the same missing key at once share one value (a cell they fill
    /// once, say) instead of each making its own.
    pub fn get_or_insert_with(&self, key: K, make: impl FnOnce() -> (V, usize)) -> V {
        if let Some(value) = self.get(&key) {
            return value;
        }
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if let Some(value) = self.held(&mut inner, &key) {
            return value; // made by another caller meanwhile
        }
        let (value, bytes) = make();
        let bytes = bytes + ENTRY_OVERHEAD;
        if bytes <= self.max_bytes / 2 {
            self.put(&mut inner, key, value.clone(), bytes);
        }
        value
    }

    /// Drops `key`.
    pub fn remove<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut guard = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let inner = &mut *guard;
        for generation in [&mut inner.young, &mut inner.old] {
            if let Some((_, bytes)) = generation.entries.remove(key) {
                generation.bytes -= bytes;
            }
        }
    }

    /// Drops everything.
    pub fn clear(&self) {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        inner.young = Generation::default();
        inner.old = Generation::default();
    }

    /// The bytes held (as counted).
    pub fn bytes(&self) -> usize {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        inner.young.bytes + inner.old.bytes
    }

    /// The entries held.
    pub fn len(&self) -> usize {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        inner.young.entries.len() + inner.old.entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_held_stays_within_the_budget() {
        let map = BoundedMap::new(10_000);
        for i in 0..1_000 {
            map.insert(i, vec![0u8; 100], 100);
            assert!(map.bytes() <= 10_000, "{} bytes after {i}", map.bytes());
        }
        assert!(map.len() >= 10_000 / 2 / 164, "{}", map.len());
        // The newest are held, the oldest gone.
        assert!(map.get(&999).is_some());
        assert!(map.get(&0).is_none());
    }

    #[test]
    fn an_entry_used_again_outlives_those_not_used() {
        let map = BoundedMap::new(4 * 164);
        map.insert("a", 1, 100);
        map.insert("b", 2, 100);
        map.insert("c", 3, 100); // the young generation would be over half: a and b become old
        assert_eq!(map.get("a"), Some(1)); // a moves back to the young generation, beside c
        map.insert("d", 4, 100); // c and a become old; b is dropped
        map.insert("e", 5, 100);
        assert_eq!(map.get("a"), Some(1)); // back again: d and e become old; c is dropped
        assert_eq!(map.get("b"), None);
        assert_eq!(map.get("c"), None);
        assert_eq!(map.get("e"), Some(5));
    }

    #[test]
    fn get_or_insert_with_makes_a_missing_value_once_and_counts_it() {
        let map = BoundedMap::new(10_000);
        let mut made = 0;
        for _ in 0..3 {
            let value = map.get_or_insert_with("k", || {
                made += 1;
                (7, 100)
            });
            assert_eq!(value, 7);
        }
        assert_eq!(made, 1);
        assert_eq!(map.bytes(), 164);
        // Too big to hold: made and answered, not kept.
        assert_eq!(map.get_or_insert_with("big", || (8, 6_000)), 8);
        assert_eq!(map.get("big"), None);
        assert_eq!(map.bytes(), 164);
    }

    #[test]
    fn replacing_removing_and_clearing_keep_the_count_right() {
        let map = BoundedMap::new(100_000);
        map.insert("k".to_owned(), 1, 10);
        map.insert("k".to_owned(), 2, 30);
        assert_eq!(map.bytes(), 30 + ENTRY_OVERHEAD);
        assert_eq!(map.get("k"), Some(2));
        map.remove("k");
        assert_eq!(map.bytes(), 0);
        assert!(map.is_empty());
        map.insert("j".to_owned(), 3, 10);
        map.clear();
        assert_eq!((map.len(), map.bytes()), (0, 0));
        // Too big for the budget: not held at all.
        map.insert("huge".to_owned(), 4, 60_000);
        assert!(map.is_empty());
        assert!(BoundedMap::<u8, u8>::new(0).get(&1).is_none());
    }
}
