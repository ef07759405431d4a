//! The throttle's failures and blocks in the state database: written as they happen,
//! read back at start-up. Memory keeps `Instant`s (they never jump); the database keeps
//! Unix times, converted at this boundary.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::{ADDRESSES, Entry, Throttle, USERS};
use crate::store::{Store, ThrottleRecord, ThrottleStep, unix_ms};

impl Throttle {
    /// A throttle written to `store`, starting from the failures and blocks it kept.
    pub fn restore(capacity: usize, store: Arc<dyn Store>, kept: Vec<ThrottleRecord>) -> Throttle {
        let mut throttle = Throttle::new(capacity);
        let clock = Clock::now();
        for record in kept {
            let table = match record.table.as_str() {
                USERS => throttle.users.get_mut(),
                ADDRESSES => throttle.addresses.get_mut(),
                _ => continue,
            };
            let table = table.expect("throttle lock");
            if table.entries.len() >= throttle.capacity {
                continue;
            }
            let entry = Entry {
                failures: record
                    .failures
                    .iter()
                    .filter_map(|&ms| clock.instant(ms))
                    .collect(),
                blocked_until: record.blocked_until.and_then(|ms| clock.instant(ms)),
                last_seen: clock.now,
                in_flight: 0,
            };
            table.entries.insert(record.key, entry);
        }
        throttle.store = Some(store);
        throttle
    }

    /// Forgets in the database the keys memory let go, so the table there stays as
    /// bounded as the one here.
    pub(super) fn forget_evicted(&self, table: &'static str, t: &mut super::Table) {
        for key in t.evicted.drain(..) {
            // With replicas, the database's row is every replica's count: it stays.
            self.persist(table, &key, None);
        }
    }

    /// A user signed in: their name's failures and block go from the store too. With
    /// replicas as a step on the shared row, which stays (other replicas may be
    /// checking attempts against it), and whether or not this replica saw failures.
    pub(super) fn persist_cleared(&self, key: &str) {
        match &self.store {
            Some(store) if store.shared() => {
                drop(store.throttle_step(USERS, key, ThrottleStep::Clear));
            }
            Some(_) => self.persist(USERS, key, None),
            None => {}
        }
    }

    /// Writes a key's failures and block (or that it has none) to the store. With
    /// replicas, failures are counted in the database step by step (`shared`): nothing
    /// is written from here.
    pub(super) fn persist(&self, table: &'static str, key: &str, entry: Option<&Entry>) {
        let Some(store) = self.store.as_ref().filter(|s| !s.shared()) else {
            return;
        };
        match entry {
            Some(entry) => {
                let clock = Clock::now();
                drop(store.save_throttle(ThrottleRecord {
                    table: table.into(),
                    key: key.into(),
                    failures: entry.failures.iter().map(|t| clock.unix_ms(*t)).collect(),
                    blocked_until: entry.blocked_until.map(|t| clock.unix_ms(t)),
                }));
            }
            None => drop(store.forget_throttle(table, key)),
        }
    }
}

/// One moment on both clocks: `Instant`s are kept in memory, Unix times on disk.
struct Clock {
    now: Instant,
    unix_ms: i64,
}

impl Clock {
    fn now() -> Clock {
        Clock {
            now: Instant::now(),
            unix_ms: unix_ms(SystemTime::now()),
        }
    }

    fn unix_ms(&self, t: Instant) -> i64 {
        if t >= self.now {
            self.unix_ms + (t - self.now).as_millis() as i64
        } else {
            self.unix_ms - (self.now - t).as_millis() as i64
        }
    }

    /// The instant of a Unix time (`None` before this machine's monotonic clock began).
    fn instant(&self, ms: i64) -> Option<Instant> {
        let gap = Duration::from_millis(ms.abs_diff(self.unix_ms));
        if ms >= self.unix_ms {
            self.now.checked_add(gap)
        } else {
            self.now.checked_sub(gap)
        }
    }
}
