//! Bounded in-memory stores: downloaded files (so a photo is fetched from Telegram once) and
//! finished results (for "send as file" and the follow-up buttons).
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use crate::i18n::Lang;
use crate::session::Draft;

/// Entries with their sizes, oldest first in `order`.
struct Entries<V> {
    map: HashMap<String, (Arc<V>, usize)>,
    order: VecDeque<String>,
    total: usize,
}

/// A least-recently-inserted map bounded by the total size of its values.
pub struct Bounded<V> {
    inner: Mutex<Entries<V>>,
    capacity: usize,
}

impl<V> Bounded<V> {
    /// A store holding at most `capacity` bytes of values.
    pub fn new(capacity: usize) -> Self {
        Bounded {
            inner: Mutex::new(Entries {
                map: HashMap::new(),
                order: VecDeque::new(),
                total: 0,
            }),
            capacity,
        }
    }

    /// The value under `key`, if still held.
    pub fn get(&self, key: &str) -> Option<Arc<V>> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.map.get(key).map(|(v, _)| v.clone())
    }

    /// Stores `value` of `size` bytes, evicting the oldest entries beyond the capacity.
    pub fn insert(&self, key: String, value: Arc<V>, size: usize) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Entries { map, order, total } = &mut *inner;
        if let Some((_, old)) = map.insert(key.clone(), (value, size)) {
            *total -= old;
            order.retain(|k| *k != key);
        }
        order.push_back(key);
        *total += size;
        while *total > self.capacity && order.len() > 1 {
            if let Some(oldest) = order.pop_front()
                && let Some((_, s)) = map.remove(&oldest)
            {
                *total -= s;
            }
        }
    }
}

/// A finished job, kept for the buttons under its result.
pub struct Finished {
    /// Who it was for.
    pub user: u64,
    /// In which language.
    pub lang: Lang,
    /// What was painted (to repaint it stronger, weaker, in quality mode...).
    pub draft: Draft,
    /// The result at full resolution (JPEG).
    pub jpeg: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_entries_go_when_the_store_is_full() {
        let store = Bounded::new(10);
        store.insert("a".into(), Arc::new(1), 4);
        store.insert("b".into(), Arc::new(2), 4);
        store.insert("c".into(), Arc::new(3), 4);
        assert!(store.get("a").is_none());
        assert_eq!(store.get("b").as_deref(), Some(&2));
        assert_eq!(store.get("c").as_deref(), Some(&3));
    }
}
