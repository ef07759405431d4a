//! Checking passwords at sign-in without hurting the server: argon2 runs on tokio's
//! blocking threads, at most one verification per CPU at a time, with a bounded number
//! of sign-ins allowed to wait (beyond that the answer is "busy, retry" at once). An
//! unknown user is verified against a dummy hash with the highest cost any configured
//! user has, so it takes at least as long as a wrong password and timing does not tell
//! the two apart.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::Semaphore;

use crate::password;

/// Sign-ins allowed to queue per CPU before new ones are turned away.
const WAITING_PER_PERMIT: usize = 32;

#[derive(Debug)]
pub struct Verifier {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    /// The dummy hash and the cost it was made with.
    dummy: RwLock<(password::Cost, String)>,
}

/// Too many sign-ins are already waiting.
#[derive(Debug, PartialEq, Eq)]
pub struct Busy;

impl Verifier {
    pub fn new(concurrency: usize) -> Verifier {
        let concurrency = concurrency.max(1);
        Verifier {
            permits: Arc::new(Semaphore::new(concurrency)),
            waiting: AtomicUsize::new(0),
            max_waiting: concurrency * WAITING_PER_PERMIT,
            dummy: RwLock::new((password::DEFAULT_COST, dummy_hash(password::DEFAULT_COST))),
        }
    }

    /// Makes the dummy hash as costly as the costliest of `hashes` (call it whenever
    /// the users change).
    pub fn match_cost<'a>(&self, hashes: impl IntoIterator<Item = &'a str>) {
        let cost = hashes.into_iter().filter_map(password::cost_of).fold(
            password::DEFAULT_COST,
            |a, b| password::Cost {
                m: a.m.max(b.m),
                t: a.t.max(b.t),
                p: a.p.max(b.p),
            },
        );
        if self.dummy.read().expect("dummy lock").0 != cost {
            *self.dummy.write().expect("dummy lock") = (cost, dummy_hash(cost));
        }
    }

    /// One verification per available CPU.
    pub fn for_this_machine() -> Verifier {
        Verifier::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// Whether `password` matches `hash`; `None` (no such user) is checked against the
    /// dummy hash and always fails. Over-long passwords fail before any hashing.
    pub async fn verify(&self, hash: Option<&str>, password: &str) -> Result<bool, Busy> {
        if password::check_length(password.as_bytes()).is_err() {
            return Ok(false);
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(Busy);
        }
        let permit = Arc::clone(&self.permits).acquire_owned().await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let permit = permit.map_err(|_| Busy)?;
        let known = hash.is_some();
        let hash = match hash {
            Some(h) => h.to_string(),
            None => self.dummy.read().expect("dummy lock").1.clone(),
        };
        let password = password.to_string();
        let matched = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            password::verify(password.as_bytes(), &hash)
        })
        .await
        .unwrap_or(false);
        Ok(known && matched)
    }
}

fn dummy_hash(cost: password::Cost) -> String {
    let dummy = super::b64(&super::random::<24>());
    password::hash_with(dummy.as_bytes(), cost).expect("hashing a fixed-length password")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn known_unknown_and_long() {
        let v = Verifier::new(1);
        let hash = password::hash(b"right").unwrap();
        assert_eq!(v.verify(Some(&hash), "right").await, Ok(true));
        assert_eq!(v.verify(Some(&hash), "wrong").await, Ok(false));
        assert_eq!(v.verify(None, "right").await, Ok(false));
        assert_eq!(v.verify(Some(&hash), &"x".repeat(1025)).await, Ok(false));
    }

    #[test]
    fn the_dummy_costs_what_the_costliest_user_costs() {
        let v = Verifier::new(1);
        let strong = password::hash_with(
            b"x",
            password::Cost {
                m: 32768,
                t: 3,
                p: 1,
            },
        )
        .unwrap();
        v.match_cost([strong.as_str()]);
        let dummy = v.dummy.read().unwrap().1.clone();
        assert_eq!(
            password::cost_of(&dummy),
            Some(password::Cost {
                m: 32768,
                t: 3,
                p: 1
            })
        );
    }
}
