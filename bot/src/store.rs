//! Bounded in-memory stores: downloaded files (so a photo is fetched from Telegram once) and
//! finished results (for "send as file" and the follow-up buttons). Each holds at most so many bytes
//! and, when given one, forgets entries older than its maximum age.
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::i18n::Lang;
use crate::session::Draft;

/// Entries with their sizes, oldest first in `order`.
struct Entries<V> {
    map: HashMap<String, (Arc<V>, usize, Instant)>,
    order: VecDeque<String>,
    total: usize,
}

/// A least-recently-inserted map bounded by the total size of its values (and optionally by age).
pub struct Bounded<V> {
    inner: Mutex<Entries<V>>,
    capacity: usize,
    max_age: Option<Duration>,
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
            max_age: None,
        }
    }

    /// The same store, forgetting entries older than `max_age`.
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries<V>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn expired(&self, at: Instant) -> bool {
        self.max_age.is_some_and(|age| at.elapsed() > age)
    }

    /// The value under `key`, if still held.
    pub fn get(&self, key: &str) -> Option<Arc<V>> {
        let inner = self.lock();
        inner
            .map
            .get(key)
            .filter(|(_, _, at)| !self.expired(*at))
            .map(|(v, _, _)| v.clone())
    }

    /// Forgets `key`'s value.
    pub fn remove(&self, key: &str) {
        let mut inner = self.lock();
        let Entries { map, order, total } = &mut *inner;
        if let Some((_, size, _)) = map.remove(key) {
            *total -= size;
            order.retain(|k| k != key);
        }
    }

    /// Stores `value` of `size` bytes, evicting the oldest entries beyond the capacity.
    pub fn insert(&self, key: String, value: Arc<V>, size: usize) {
        let mut inner = self.lock();
        let Entries { map, order, total } = &mut *inner;
        if let Some((_, old, _)) = map.insert(key.clone(), (value, size, Instant::now())) {
            *total -= old;
            order.retain(|k| *k != key);
        }
        order.push_back(key);
        *total += size;
        // The oldest go first: beyond the capacity, or past their age.
        while let Some(oldest) = order.front()
            && (*total > self.capacity && order.len() > 1
                || map.get(oldest).is_some_and(|(_, _, at)| self.expired(*at)))
        {
            if let Some(oldest) = order.pop_front()
                && let Some((_, s, _)) = map.remove(&oldest)
            {
                *total -= s;
            }
        }
    }
}

/// A finished job: what its delivery sends, and what the buttons under its result need.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Finished {
    /// Who it was for.
    pub user: u64,
    /// Where it goes.
    #[serde(default)]
    pub chat: i64,
    /// In which language.
    pub lang: Lang,
    /// What was painted (to repaint it stronger, weaker, in quality mode...).
    pub draft: Draft,
    /// The result's caption.
    #[serde(default)]
    pub caption: String,
    /// The job's status message, deleted once the result is there.
    #[serde(default)]
    pub status_message: Option<i32>,
    /// When the result was painted, in milliseconds since 1970.
    #[serde(default)]
    pub finished_ms: u64,
    /// The result at full resolution (JPEG); stored beside the record, not in it.
    #[serde(skip)]
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
        store.remove("b");
        assert!(store.get("b").is_none());
    }

    #[test]
    fn entries_past_their_age_are_forgotten() {
        let store = Bounded::new(100).with_max_age(Duration::from_millis(30));
        store.insert("a".into(), Arc::new(1), 4);
        assert_eq!(store.get("a").as_deref(), Some(&1));
        std::thread::sleep(Duration::from_millis(40));
        assert!(store.get("a").is_none(), "expired on read");
        store.insert("b".into(), Arc::new(2), 4);
        assert_eq!(
            store.inner.lock().unwrap().map.len(),
            1,
            "and dropped on the next insert"
        );
    }
}
