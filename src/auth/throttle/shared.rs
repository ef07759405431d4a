//! The throttle across replicas: besides this process's memory, each attempt counts
//! in the database row of its user name and address, changed one locked step at a time
//! (`store::ThrottleStep`), so five failures spread over any number of replicas block,
//! and guesses checked in parallel on several replicas count while they are checked.
//! Memory still answers first (a key blocked here costs no query).

use std::time::{Duration, SystemTime};

use super::{ADDRESSES, Attempt, BUSY_WAIT, Throttle, USERS};
use crate::manifest::Throttle as Policy;
use crate::store::{Pending, ThrottleStep, unix_ms};

impl Throttle {
    /// Counts a locally begun attempt in the database too; refused (and taken back
    /// everywhere) when another replica's failures block its name or address. A
    /// database that does not answer refuses the attempt: a throttle that cannot
    /// count must not let guesses through.
    pub(super) async fn begin_shared<'a>(
        &'a self,
        mut attempt: Attempt<'a>,
    ) -> Result<Attempt<'a>, Duration> {
        let Some(store) = self.store.as_ref().filter(|s| s.shared()) else {
            return Ok(attempt);
        };
        let policy = attempt.policy;
        if policy.max_failures == 0 {
            return Ok(attempt);
        }
        let now = unix_ms(SystemTime::now());
        let step = ThrottleStep::Begin {
            now,
            window: policy.window.as_millis() as i64,
            max: policy.max_failures,
        };
        let keys: Vec<(&'static str, String)> = [
            attempt.user.clone().map(|k| (USERS, k)),
            attempt.address.clone().map(|k| (ADDRESSES, k)),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut counted = Vec::new();
        for (table, key) in keys {
            let refused = match store.throttle_step(table, &key, step).await {
                Ok(None) => None,
                Ok(Some(wait_ms)) => Some(Duration::from_millis(wait_ms.max(0) as u64)),
                Err(e) => {
                    tracing::error!("cannot count a sign-in attempt in the database: {e}");
                    Some(BUSY_WAIT)
                }
            };
            if let Some(wait) = refused {
                self.end_shared(&policy, now, counted, false);
                attempt.not_checked();
                return Err(wait.max(BUSY_WAIT));
            }
            counted.push((table, key));
        }
        attempt.shared = Some((now, counted));
        Ok(attempt)
    }

    /// `Some(wait)` if the database blocks `key` (with replicas; `None` without). A
    /// database that does not answer refuses, as `begin_shared` does.
    pub(super) async fn blocked_shared(&self, table: &'static str, key: &str) -> Option<Duration> {
        let store = self.store.as_ref().filter(|s| s.shared())?;
        let now = unix_ms(SystemTime::now());
        match store
            .throttle_step(table, key, ThrottleStep::Blocked { now })
            .await
        {
            Ok(wait) => wait.map(|ms| Duration::from_millis(ms.max(0) as u64).max(BUSY_WAIT)),
            Err(e) => {
                tracing::error!("cannot ask the database whether an address is blocked: {e}");
                Some(BUSY_WAIT)
            }
        }
    }

    /// Ends an attempt in the database: a failure stays counted (and may block), a
    /// success or an unchecked attempt is taken back. Queued at once, in order; the
    /// answers, for a caller that must know the step is in (`Attempt::failed`).
    pub(super) fn end_shared(
        &self,
        policy: &Policy,
        begun: i64,
        keys: Vec<(&'static str, String)>,
        failed: bool,
    ) -> Vec<Pending<Option<i64>>> {
        let Some(store) = &self.store else {
            return Vec::new();
        };
        let step = if failed {
            ThrottleStep::Failed {
                begun,
                now: unix_ms(SystemTime::now()),
                window: policy.window.as_millis() as i64,
                max: policy.max_failures,
                block: policy.block.as_millis() as i64,
            }
        } else {
            ThrottleStep::Release { begun }
        };
        keys.into_iter()
            .map(|(table, key)| store.throttle_step(table, &key, step))
            .collect()
    }
}
