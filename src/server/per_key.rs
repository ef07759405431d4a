//! A count per key with a cap: connections per client address, event streams per user.
//! A place is taken while the count is under the cap and given back when its guard
//! drops, whatever ends the connection or stream; keys at zero are forgotten, so the
//! map holds only keys in use.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Places in use, by key, at most `cap` each.
#[derive(Debug)]
pub struct PerKey {
    counts: Arc<Mutex<HashMap<String, usize>>>,
    cap: usize,
}

/// One place, given back when dropped.
#[derive(Debug)]
pub struct Place {
    counts: Arc<Mutex<HashMap<String, usize>>>,
    key: String,
}

impl PerKey {
    pub fn new(cap: usize) -> PerKey {
        PerKey {
            counts: Arc::default(),
            cap: cap.max(1),
        }
    }

    /// A place for `key`, or `None` when it has `cap` already.
    pub fn take(&self, key: String) -> Option<Place> {
        let mut counts = self.counts.lock().expect("per-key lock");
        let n = counts.entry(key.clone()).or_insert(0);
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(Place {
            counts: Arc::clone(&self.counts),
            key,
        })
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().expect("per-key lock");
        if let Some(n) = counts.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_capped_per_key_and_come_back() {
        let per_key = PerKey::new(2);
        let a: Vec<Place> = (0..3).filter_map(|_| per_key.take("a".into())).collect();
        assert_eq!(a.len(), 2);
        assert!(per_key.take("b".into()).is_some(), "keys are separate");
        drop(a);
        assert!(per_key.take("a".into()).is_some());
        assert!(
            per_key.counts.lock().unwrap().get("b").is_none(),
            "zero is forgotten"
        );
    }
}
