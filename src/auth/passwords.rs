//! Checking passwords at sign-in without hurting the server: argon2 runs on tokio's
//! blocking threads, at most one verification per CPU at a time, with a bounded number
//! of sign-ins allowed to wait (beyond that the answer is "busy, retry" at once). An
//! unknown user is verified against a dummy hash with the highest cost any configured
//! user has, so it takes at least as long as a wrong password and timing does not tell
//! the two apart.
//!
//! argon2's working memory (19 MiB at the default cost) is reused: at most one buffer
//! per CPU, handed from one verification to the next, and freed after ten seconds without
//! sign-ins. Allocating it afresh each time costs a page fault per 4 KiB, and the
//! allocator kept the freed blocks: a login flood left ftw hundreds of MB larger.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use argon2::Block;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::password;

/// Sign-ins allowed to queue per CPU before new ones are turned away.
const WAITING_PER_PERMIT: usize = 32;
/// Working memory is freed after this long without a sign-in.
const KEEP_MEMORY: Duration = Duration::from_secs(10);

/// Buffers for argon2, between verifications.
#[derive(Debug)]
struct Memory {
    free: Vec<Vec<Block>>,
    last_used: Instant,
    /// A task is waiting to free the buffers once they go unused.
    reaper: bool,
}

#[derive(Debug)]
pub struct Verifier {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    /// The dummy hash and the cost it was made with.
    dummy: RwLock<(password::Cost, String)>,
    memory: Arc<Mutex<Memory>>,
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
            memory: Arc::new(Mutex::new(Memory {
                free: Vec::new(),
                last_used: Instant::now(),
                reaper: false,
            })),
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
    ///
    /// A caller that goes away (the client hung up) gives its place in the queue back,
    /// but a verification already started keeps its permit until argon2 is done: the
    /// permits bound the hashing that really runs, not just the requests that wait.
    pub async fn verify(&self, hash: Option<&str>, password: &str) -> Result<bool, Busy> {
        if password::check_length(password.as_bytes()).is_err() {
            return Ok(false);
        }
        let place = Place::take(&self.waiting, self.max_waiting)?;
        let permit = Arc::clone(&self.permits).acquire_owned().await;
        drop(place);
        let permit = permit.map_err(|_| Busy)?;
        let known = hash.is_some();
        let hash = match hash {
            Some(h) => h.to_string(),
            None => self.dummy.read().expect("dummy lock").1.clone(),
        };
        let password = password.to_string();
        let pool = Arc::clone(&self.memory);
        let runtime = tokio::runtime::Handle::current();
        let matched = tokio::task::spawn_blocking(move || {
            let mut memory = take_memory(&pool);
            let matched = password::verify_with_memory(password.as_bytes(), &hash, &mut memory);
            // The buffer is back before the permit goes: never more buffers than permits.
            give_back(&pool, memory, &runtime);
            drop(permit);
            matched
        })
        .await
        .unwrap_or(false);
        Ok(known && matched)
    }

    /// Buffers kept for the next sign-ins.
    #[cfg(test)]
    fn kept_buffers(&self) -> usize {
        self.memory.lock().expect("memory lock").free.len()
    }
}

/// A place in the queue of sign-ins waiting for a permit, given back when dropped
/// (also when the caller is dropped mid-wait).
struct Place<'a>(&'a AtomicUsize);

impl<'a> Place<'a> {
    fn take(waiting: &'a AtomicUsize, max: usize) -> Result<Place<'a>, Busy> {
        if waiting.fetch_add(1, Ordering::SeqCst) >= max {
            waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(Busy);
        }
        Ok(Place(waiting))
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn take_memory(pool: &Mutex<Memory>) -> Vec<Block> {
    pool.lock()
        .expect("memory lock")
        .free
        .pop()
        .unwrap_or_default()
}

/// Keeps a buffer for the next verification, and makes sure the buffers are freed once
/// sign-ins stop.
fn give_back(pool: &Arc<Mutex<Memory>>, buffer: Vec<Block>, runtime: &tokio::runtime::Handle) {
    let mut memory = pool.lock().expect("memory lock");
    memory.free.push(buffer);
    memory.last_used = Instant::now();
    if memory.reaper {
        return;
    }
    memory.reaper = true;
    let shared = Arc::clone(pool);
    runtime.spawn(async move {
        let mut wait = KEEP_MEMORY;
        loop {
            tokio::time::sleep(wait).await;
            let mut memory = shared.lock().expect("memory lock");
            let idle = memory.last_used.elapsed();
            if idle >= KEEP_MEMORY {
                memory.free = Vec::new();
                memory.reaper = false;
                return;
            }
            wait = KEEP_MEMORY - idle;
        }
    });
}

fn dummy_hash(cost: password::Cost) -> String {
    let dummy = super::b64(&super::random::<24>());
    password::hash_with(dummy.as_bytes(), cost).expect("hashing a fixed-length password")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash_costing(password: &[u8], m: u32, t: u32) -> String {
        password::hash_with(password, password::Cost { m, t, p: 1 }).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn working_memory_is_reused_then_freed_when_idle() {
        let v = Verifier::new(2);
        let hash = password::hash(b"right").unwrap();
        for _ in 0..3 {
            assert_eq!(v.verify(Some(&hash), "right").await, Ok(true));
        }
        assert_eq!(v.kept_buffers(), 1, "one at a time: one buffer, reused");
        let (a, b) = tokio::join!(v.verify(Some(&hash), "x"), v.verify(None, "y"));
        assert_eq!((a, b), (Ok(false), Ok(false)));
        assert!(v.kept_buffers() <= 2, "never more than one per permit");
        tokio::time::sleep(KEEP_MEMORY + Duration::from_secs(1)).await;
        assert_eq!(v.kept_buffers(), 0, "freed once sign-ins stop");
    }

    #[tokio::test]
    async fn abandoned_sign_ins_free_their_place_but_not_a_running_permit() {
        let v = Verifier::new(1);
        let costly = hash_costing(b"right", 65_536, 8);
        // The first caller starts hashing and gives up; three more give up queued.
        for _ in 0..4 {
            let gave_up =
                tokio::time::timeout(Duration::from_millis(1), v.verify(Some(&costly), "x")).await;
            assert!(gave_up.is_err());
        }
        assert_eq!(v.waiting.load(Ordering::SeqCst), 0, "places given back");
        assert_eq!(
            v.permits.available_permits(),
            0,
            "the abandoned hashing still holds its permit"
        );
        assert_eq!(v.verify(Some(&costly), "right").await, Ok(true));
        assert_eq!(v.permits.available_permits(), 1);
    }

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
        let strong = hash_costing(b"x", 32768, 3);
        v.match_cost([strong.as_str()]);
        let dummy = v.dummy.read().unwrap().1.clone();
        assert!(password::cost_of(&strong).is_some_and(|c| c.m == 32768 && c.t == 3));
        assert_eq!(password::cost_of(&dummy), password::cost_of(&strong));
    }
}
