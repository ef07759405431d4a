//! Checking passwords at sign-in without hurting the server: argon2 runs on tokio's
//! blocking threads, at most one verification per CPU at a time, with a bounded number
//! of sign-ins allowed to wait (beyond that the answer is "busy, retry" at once). An
//! unknown user is verified against a dummy hash made at start-up with the same cost, so
//! it takes as long as a wrong password and nothing tells the two apart.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Semaphore;

use crate::password;

/// Sign-ins allowed to queue per CPU before new ones are turned away.
const WAITING_PER_PERMIT: usize = 32;

#[derive(Debug)]
pub struct Verifier {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    dummy_hash: String,
}

/// Too many sign-ins are already waiting.
#[derive(Debug, PartialEq, Eq)]
pub struct Busy;

impl Verifier {
    pub fn new(concurrency: usize) -> Verifier {
        let concurrency = concurrency.max(1);
        let dummy = super::b64(&super::random::<24>());
        Verifier {
            permits: Arc::new(Semaphore::new(concurrency)),
            waiting: AtomicUsize::new(0),
            max_waiting: concurrency * WAITING_PER_PERMIT,
            dummy_hash: password::hash(dummy.as_bytes()).expect("hashing a fixed-length password"),
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
        let hash = hash.unwrap_or(&self.dummy_hash).to_string();
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
}
